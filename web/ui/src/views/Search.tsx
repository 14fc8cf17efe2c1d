import { useEffect, useState } from 'preact/hooks';
import { emptyQuery, getOperations, getServices, lookbackChoices, search, timeRange, type SearchQuery, type Summary } from '../lib/api';
import { useAsync } from '../lib/useAsync';
import { href, navigate, type Loc } from '../lib/router';
import { fmtAgo, fmtClock, fmtClockMs, fmtDuration, fmtTime, shortID } from '../lib/format';
import { Empty, ErrorBox, Loading, Note, ServiceChip } from '../components/common';

const keys: (keyof SearchQuery)[] = [
  'service', 'operation', 'attrs', 'status', 'minDuration', 'maxDuration', 'minTraceDuration', 'maxTraceDuration', 'lookback', 'start', 'end', 'limit', 'at',
];

export function queryFromURL(q: URLSearchParams): SearchQuery {
  const out: any = { ...emptyQuery };
  for (const k of keys) {
    const v = q.get(k);
    if (v !== null) out[k] = k === 'limit' ? Math.min(200, Math.max(1, parseInt(v, 10) || 20)) : v;
  }
  return out;
}

export function searchHref(q: Partial<SearchQuery>, cursor = ''): string {
  const p: Record<string, string> = {};
  for (const k of keys) {
    const v = (q as any)[k];
    if (v !== undefined && v !== '' && v !== (emptyQuery as any)[k]) p[k] = String(v);
  }
  return href('/search', { ...p, cursor });
}

export function Search({ loc }: { loc: Loc }) {
  const q = queryFromURL(loc.query);
  const cursor = loc.query.get('cursor') ?? '';
  const sort = loc.query.get('sort') ?? '';
  const submitted = loc.query.toString() !== '';
  // The sort only reorders the page in hand: it is not part of the query.
  const kq = new URLSearchParams(loc.query);
  kq.delete('sort');
  const key = kq.toString();
  const res = useAsync(
    async (signal) => {
      const t0 = performance.now();
      const page = await search(q, cursor, signal);
      const range = timeRange(q);
      return { page, ms: performance.now() - t0, range, key, anchor: q.at || String(Math.round(range[1] / 1000)) };
    },
    [key],
  );
  useEffect(() => {
    if (res.data && !res.loading) performance.mark('search:rendered');
  }, [res.data, res.loading]);
  return (
    <div class="page">
      <h1>Search traces</h1>
      <SearchForm initial={q} />
      {res.loading && !res.data && <Loading what="traces" />}
      {res.error && <ErrorBox error={res.error} what="the search" retry={res.reload} />}
      {res.data && (
        <div class={'results' + (res.loading ? ' stale' : '')} data-testid="results" data-ms={res.data.ms.toFixed(0)} data-key={res.data.key}>
          {res.data.page.summaries.length === 0 ? (
            <Empty title={cursor ? 'No older traces match' : 'No trace matches'}>
              {submitted ? 'Widen the time range, or drop a condition.' : 'Nothing was stored in the last hour.'}{' '}
              {cursor && <a href={searchHref({ ...q, at: '' })}>Back to the newest</a>}
            </Empty>
          ) : (
            <>
              <Scatter
                traces={res.data.page.summaries}
                range={res.data.range}
                onRange={(a, b) => navigate(searchHref({ ...q, at: '', lookback: 'custom', start: localInput(a), end: localInput(b + 999_999) }))}
              />
              <div class="result-head">
                <SortSelect value={sort} />
                <span data-testid="result-count">
                  {res.data.page.summaries.length} trace{res.data.page.summaries.length === 1 ? '' : 's'}
                  {res.data.page.total && (
                    <span data-testid="result-total" title={res.data.page.total.exact ? 'every match counted' : 'an upper bound from the search index'}>
                      {' '}of {res.data.page.total.exact ? '' : 'at most '}
                      {res.data.page.total.count.toLocaleString('en')}
                    </span>
                  )}
                  {cursor ? ' (older page)' : ''}, newest first{sort ? ` (this page ${sorts[sort]?.[0].toLowerCase() ?? ''})` : ''}
                </span>
                <span class="muted">answered in {res.data.ms.toFixed(0)} ms</span>
              </div>
              <TraceList traces={sortSummaries(res.data.page.summaries, sort)} />
              <div class="pager">
                {cursor && (
                  <a class="btn" href={searchHref({ ...q, at: '' })}>
                    ← Newest
                  </a>
                )}
                {res.data.page.nextCursor && (
                  <a class="btn" href={searchHref(q.lookback === 'custom' ? q : { ...q, at: res.data.anchor }, res.data.page.nextCursor)} data-testid="older">
                    Older →
                  </a>
                )}
              </div>
            </>
          )}
          {res.data.page.notes.map((n) => (
            <Note>{n}</Note>
          ))}
        </div>
      )}
    </div>
  );
}

function SearchForm({ initial }: { initial: SearchQuery }) {
  const [q, setQ] = useState<SearchQuery>(initial);
  useEffect(() => setQ(initial), [JSON.stringify(initial)]);
  const services = useAsync((s) => getServices(s), []);
  const ops = useAsync((s) => (q.service ? getOperations(q.service, s) : Promise.resolve([] as string[])), [q.service]);
  const set = (k: keyof SearchQuery) => (e: Event) => setQ({ ...q, [k]: (e.currentTarget as HTMLInputElement).value });
  return (
    <form
      class="search-form"
      onSubmit={(e) => {
        e.preventDefault();
        navigate(searchHref({ ...q, at: '' }));
      }}
    >
      <label>
        Service
        <select name="service" value={q.service} onChange={(e) => setQ({ ...q, service: e.currentTarget.value, operation: '' })}>
          <option value="">All services</option>
          {services.data?.map((s) => <option value={s}>{s}</option>)}
          {q.service && !services.data?.includes(q.service) && <option value={q.service}>{q.service}</option>}
        </select>
      </label>
      <label>
        Operation
        <select name="operation" value={q.operation} onChange={set('operation')} disabled={!q.service}>
          <option value="">All operations</option>
          {ops.data?.map((s) => <option value={s}>{s}</option>)}
          {q.operation && !ops.data?.includes(q.operation) && <option value={q.operation}>{q.operation}</option>}
        </select>
      </label>
      <label class="wide">
        Attributes
        <input name="attrs" value={q.attrs} onInput={set('attrs')} placeholder='payment.method=card http.response.status_code!=200 error.type=~"time.*"' spellcheck={false} />
      </label>
      <label>
        Status
        <select name="status" value={q.status} onChange={set('status')}>
          <option value="">Any</option>
          <option value="error">A matching span failed</option>
          <option value="trace-error">Any span failed</option>
          <option value="ok">Matching span status OK</option>
          <option value="unset">Matching span status unset</option>
        </select>
      </label>
      <label class="pair">
        Span duration
        <span>
          <input name="minDuration" value={q.minDuration} onInput={set('minDuration')} placeholder="min, e.g. 100ms" />
          <input name="maxDuration" value={q.maxDuration} onInput={set('maxDuration')} placeholder="max" />
        </span>
      </label>
      <label class="pair">
        Trace duration
        <span>
          <input name="minTraceDuration" value={q.minTraceDuration} onInput={set('minTraceDuration')} placeholder="min, e.g. 1s" />
          <input name="maxTraceDuration" value={q.maxTraceDuration} onInput={set('maxTraceDuration')} placeholder="max" />
        </span>
      </label>
      <label>
        Time range
        <select name="lookback" value={q.lookback} onChange={set('lookback')}>
          {lookbackChoices.map((l) => (
            <option value={l}>Last {l}</option>
          ))}
          <option value="custom">Custom…</option>
        </select>
      </label>
      {q.lookback === 'custom' && (
        <label class="pair">
          From – to
          <span>
            <input type="datetime-local" step="1" name="start" value={q.start} onInput={set('start')} />
            <input type="datetime-local" step="1" name="end" value={q.end} onInput={set('end')} />
          </span>
        </label>
      )}
      <label class="narrow">
        Per page
        <select name="limit" value={String(q.limit)} onChange={(e) => setQ({ ...q, limit: parseInt(e.currentTarget.value, 10) })}>
          {[20, 50, 100, 200].map((n) => (
            <option value={String(n)}>{n}</option>
          ))}
        </select>
      </label>
      <div class="actions">
        <button class="btn btn-primary" type="submit" data-testid="search-submit">
          Find traces
        </button>
        <a class="btn" href="/search">
          Reset
        </a>
      </div>
    </form>
  );
}

// localInput writes a µs time as a datetime-local value (local time, seconds).
function localInput(us: number): string {
  const d = new Date(us / 1000);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

// Scatter of trace duration over time; errors in red. Click a point to open the trace;
// drag across the chart to search that time range.
export function Scatter({ traces, range, onRange }: { traces: Summary[]; range: [number, number]; onRange?: (startUs: number, endUs: number) => void }) {
  const [drag, setDrag] = useState<[number, number] | null>(null);
  const W = 1000;
  const H = 160;
  const pad = { l: 56, r: 12, t: 10, b: 22 };
  let t0 = Math.min(...traces.map((t) => t.start));
  let t1 = Math.max(...traces.map((t) => t.start));
  if (t1 - t0 < 1e6) {
    t0 = Math.max(range[0], t0 - 30e6);
    t1 = Math.min(range[1], t1 + 30e6);
  }
  if (t1 <= t0) t1 = t0 + 1;
  const dmax = Math.max(...traces.map((t) => t.duration), 1) * 1.1;
  const x = (t: number) => pad.l + ((t - t0) / (t1 - t0)) * (W - pad.l - pad.r);
  const y = (d: number) => H - pad.b - (d / dmax) * (H - pad.t - pad.b);
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  const toX = (e: PointerEvent, el: SVGSVGElement) => {
    const r = el.getBoundingClientRect();
    return Math.min(W - pad.r, Math.max(pad.l, ((e.clientX - r.left) / r.width) * W));
  };
  const toT = (vx: number) => t0 + ((vx - pad.l) / (W - pad.l - pad.r)) * (t1 - t0);
  return (
    <svg
      class="scatter"
      viewBox={`0 0 ${W} ${H}`}
      data-testid="scatter"
      role="img"
      aria-label="Trace duration over time; drag to search a time range"
      onPointerDown={(e) => {
        if ((e.target as Element).closest('a') || !onRange) return;
        const el = e.currentTarget as SVGSVGElement;
        const a = toX(e, el);
        setDrag([a, a]);
        el.setPointerCapture(e.pointerId);
        const move = (ev: PointerEvent) => setDrag([a, toX(ev, el)]);
        const up = (ev: PointerEvent) => {
          el.removeEventListener('pointermove', move);
          el.removeEventListener('pointerup', up);
          setDrag(null);
          const b = toX(ev, el);
          if (Math.abs(b - a) > 6) onRange(toT(Math.min(a, b)), toT(Math.max(a, b)));
        };
        el.addEventListener('pointermove', move);
        el.addEventListener('pointerup', up);
      }}
    >
      {drag && <rect x={Math.min(...drag)} y={pad.t} width={Math.abs(drag[1] - drag[0])} height={H - pad.t - pad.b} class="brush" />}
      {ticks.map((f) => (
        <g>
          <line x1={pad.l} x2={W - pad.r} y1={y(f * dmax)} y2={y(f * dmax)} class="gridline" />
          <text x={pad.l - 6} y={y(f * dmax) + 4} class="axis" text-anchor="end">
            {fmtDuration(f * dmax)}
          </text>
          <text x={x(t0 + f * (t1 - t0))} y={H - 6} class="axis" text-anchor={f === 0 ? 'start' : f === 1 ? 'end' : 'middle'}>
            {t1 - t0 < 60e6 ? fmtClockMs(t0 + f * (t1 - t0)) : fmtClock(t0 + f * (t1 - t0))}
          </text>
        </g>
      ))}
      {traces.map((t) => (
        <a href={`/trace/${t.traceID}`}>
          <circle
            cx={x(t.start)}
            cy={y(t.duration)}
            r={Math.min(9, 3 + Math.sqrt(t.spanCount) / 2)}
            class={t.errorCount ? 'pt pt-err' : 'pt'}
           
          >
            <title>
              {t.rootService} {t.rootOperation} — {fmtDuration(t.duration)}, {t.spanCount} spans{t.errorCount ? `, ${t.errorCount} errors` : ''} — {fmtTime(t.start)}
            </title>
          </circle>
        </a>
      ))}
    </svg>
  );
}

const sorts: Record<string, [string, (a: Summary, b: Summary) => number]> = {
  '': ['Newest first', (a, b) => b.start - a.start],
  longest: ['Longest first', (a, b) => b.duration - a.duration],
  errors: ['Most errors first', (a, b) => b.errorCount - a.errorCount || b.start - a.start],
  spans: ['Most spans first', (a, b) => b.spanCount - a.spanCount || b.start - a.start],
};

function sortSummaries(list: Summary[], sort: string): Summary[] {
  const f = sorts[sort]?.[1];
  return sort && f !== undefined ? [...list].sort(f) : list;
}

function SortSelect({ value }: { value: string }) {
  return (
    <select
      class="sort"
      value={value}
      aria-label="Order of this page"
      onChange={(e) => {
        const q = new URLSearchParams(location.search);
        if (e.currentTarget.value) q.set('sort', e.currentTarget.value);
        else q.delete('sort');
        navigate(`/search?${q}`, true);
      }}
    >
      {Object.entries(sorts).map(([k, [label]]) => (
        <option value={k}>{label}</option>
      ))}
    </select>
  );
}

export function TraceList({ traces }: { traces: Summary[] }) {
  const maxD = Math.max(...traces.map((t) => t.duration), 1);
  return (
    <ul class="trace-list" data-testid="trace-list">
      {traces.map((t) => (
        <li class={t.errorCount ? 'has-err' : ''} data-trace-id={t.traceID}>
          <a href={`/trace/${t.traceID}`} class="tl-main">
            <span class="tl-title">
              <b>{t.rootService || '(no root)'}</b> {t.rootOperation}
              <span class="mono muted"> {shortID(t.traceID)}</span>
            </span>
            <span class="tl-dur">
              <span class="tl-bar" style={{ width: `${(t.duration / maxD) * 100}%` }} />
              {fmtDuration(t.duration)}
            </span>
          </a>
          <div class="tl-meta">
            <span>{t.spanCount} spans</span>
            {t.errorCount > 0 && <span class="err-badge">{t.errorCount} error{t.errorCount > 1 ? 's' : ''}</span>}
            <span class="muted" title={fmtTime(t.start)}>
              {fmtTime(t.start)} · {fmtAgo(t.start)}
            </span>
          </div>
          <div class="tl-services">
            {t.services.map((s) => (
              <ServiceChip name={s.name} count={s.spanCount} errors={s.errorCount} />
            ))}
          </div>
        </li>
      ))}
    </ul>
  );
}
