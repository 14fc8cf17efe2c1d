import { useRef } from 'preact/hooks';
import { getTrace, jaegerTraces } from '../lib/api';
import { compareTraces, pickTypical, type CompareRow } from '../lib/compare';
import { useAsync } from '../lib/useAsync';
import { href, navigate, type Loc } from '../lib/router';
import { fmtDuration, fmtTime } from '../lib/format';
import { Empty, ErrorBox, Loading, serviceColor } from '../components/common';
import type { Trace } from '../lib/model';

// Compare a failing trace with a typical successful one of the same entry, span by span.
export function Compare({ loc }: { loc: Loc }) {
  const failingID = loc.query.get('failing') ?? '';
  const baseID = loc.query.get('base') ?? '';
  const service = loc.query.get('service') ?? '';
  const operation = loc.query.get('operation') ?? '';
  // The base this view picked itself and wrote into the URL: it needs no second load.
  const picked = useRef('');
  const st = useAsync(
    async (signal) => {
      if (!failingID) return null;
      const failing = (await getTrace(failingID, signal)).trace;
      const entry = { service: service || failing.rootService, operation: operation || failing.rootOperation };
      let base: Trace | undefined;
      if (baseID && baseID !== picked.current) base = (await getTrace(baseID, signal)).trace;
      else {
        const end = Date.now() * 1000;
        const start = Math.min(failing.start - 3600e6, end - 3600e6);
        const pool = await jaegerTraces({ service: entry.service, operation: entry.operation, start, end, limit: 300 }, signal);
        base = pickTypical(pool, failing, entry);
        if (base) {
          picked.current = base.traceID;
          navigate(href('/compare', { failing: failingID, base: base.traceID, service, operation }), true);
        }
      }
      return { failing, base, rows: base ? compareTraces(base, failing) : [], entry };
    },
    [failingID, baseID === picked.current ? '' : baseID],
  );
  return (
    <div class="page">
      <h1>Compare a failing trace with a typical success</h1>
      {!failingID && (
        <Empty title="No trace to compare">
          Open a trace with errors and choose “Compare with a typical success”, or pick a failing example in the <a href="/flow">payment flow</a>.
        </Empty>
      )}
      {st.loading && failingID && !st.data && <Loading what="the traces to compare" />}
      {st.error && <ErrorBox error={st.error} what="the traces to compare" retry={st.reload} />}
      {st.data && !st.data.base && (
        <Empty title="No successful trace of the same entry to compare with">
          No trace of <b>{st.data.entry.operation}</b> without errors was found in the last hour. <a href={`/trace/${failingID}`}>Back to the trace</a>
        </Empty>
      )}
      {st.data?.base && <CompareTable failing={st.data.failing} base={st.data.base} rows={st.data.rows} />}
    </div>
  );
}

const labels: Record<CompareRow['status'], string> = {
  same: 'same', slower: 'slower', faster: 'faster', missing: 'only in typical', extra: 'only in failing', error: 'failed',
};

function CompareTable({ failing, base, rows }: { failing: Trace; base: Trace; rows: CompareRow[] }) {
  const max = Math.max(1, failing.duration, base.duration);
  const diffs = rows.filter((r) => r.status !== 'same').length;
  return (
    <div data-testid="compare">
      <div class="compare-head">
        <div class="cmp-card ok">
          <div class="muted">Typical success</div>
          <a href={`/trace/${base.traceID}`} class="mono">{base.traceID}</a>
          <div>
            {fmtDuration(base.duration)} · {base.spans.length} spans · {fmtTime(base.start)}
          </div>
        </div>
        <div class="cmp-card bad">
          <div class="muted">Failing</div>
          <a href={`/trace/${failing.traceID}`} class="mono">{failing.traceID}</a>
          <div>
            {fmtDuration(failing.duration)} · {failing.spans.length} spans · {failing.errorCount} errors · {fmtTime(failing.start)}
          </div>
        </div>
        <div class="cmp-card">
          <div class="muted">Differences</div>
          <b>{diffs}</b> of {rows.length} spans differ
        </div>
        <form
          class="cmp-card cmp-other"
          onSubmit={(e) => {
            e.preventDefault();
            const id = String(new FormData(e.currentTarget).get('base') ?? '').trim().toLowerCase();
            if (id) navigate(href('/compare', { failing: failing.traceID, base: id }));
          }}
        >
          <label class="muted" for="cmp-base">
            Compare with another trace
          </label>
          <span>
            <input id="cmp-base" name="base" placeholder="trace ID" spellcheck={false} /> <button class="btn btn-small">Compare</button>
          </span>
        </form>
      </div>
      <table class="grid compare-table">
        <thead>
          <tr>
            <th>Span</th>
            <th>Typical</th>
            <th>Failing</th>
            <th class="num">Δ</th>
            <th>Status</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr class={'cmp-' + r.status + (r.origin ? ' cmp-origin' : '')} data-status={r.status}>
              <td style={{ paddingLeft: `${r.depth * 14 + 6}px` }}>
                <i class="dot" style={{ background: serviceColor(r.service) }} /> <b>{r.service}</b> {r.operation}
                {r.origin && <span class="origin-badge">⚑ failure starts here</span>}
              </td>
              <td class="cmp-bar-cell">{r.base && <DurBar t={base} s={r.base} max={max} />}</td>
              <td class="cmp-bar-cell">{r.other && <DurBar t={failing} s={r.other} max={max} />}</td>
              <td class="num">{r.base && r.other ? (r.deltaUs >= 0 ? '+' : '−') + fmtDuration(Math.abs(r.deltaUs)) : ''}</td>
              <td>
                <span class={'cmp-badge cmp-badge-' + r.status}>{labels[r.status]}</span>
                {r.other?.error && r.other.statusMessage && <div class="small muted">{r.other.statusMessage}</div>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function DurBar({ t, s, max }: { t: Trace; s: Trace['spans'][number]; max: number }) {
  return (
    <a class="cmp-bar" href={href(`/trace/${t.traceID}`, { span: s.spanID })} title={`${fmtDuration(s.duration)} at +${fmtDuration(s.start - t.start)}`}>
      <span
        class={s.error ? 'err' : ''}
        style={{ left: `${((s.start - t.start) / max) * 100}%`, width: `${Math.max(0.5, (s.duration / max) * 100)}%`, background: s.error ? undefined : serviceColor(s.service) }}
      />
      <em>{fmtDuration(s.duration)}</em>
    </a>
  );
}
