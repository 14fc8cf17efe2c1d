import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { getTrace } from '../lib/api';
import { useAsync } from '../lib/useAsync';
import { href, navigate, type Loc } from '../lib/router';
import type { JaegerTrace, KV, Span, Trace } from '../lib/model';
import { criticalPath, segmentsBySpan, type Segment } from '../lib/critical';
import { ancestors, collapseErrorFree, collapseToDepth, descendantCount, visibleRows } from '../lib/tree';
import { fmtDuration, fmtTime } from '../lib/format';
import { Empty, ErrorBox, Loading, ServiceChip, serviceColor } from '../components/common';
import { HttpError } from '../lib/api';

const ROW = 24;
const MINI = 40;
const HEAD = ROW + MINI;
const OVERSCAN = 12;

export function TraceView({ id, loc }: { id: string; loc: Loc }) {
  const st = useAsync((signal) => getTrace(id, signal), [id]);
  const view = loc.query.get('view') === 'json' ? 'json' : 'waterfall';
  const spanParam = loc.query.get('span') ?? '';
  if (st.loading && !st.data) return <div class="page"><Loading what={`trace ${id}`} /></div>;
  if (st.error)
    return (
      <div class="page">
        {st.error instanceof HttpError && st.error.status === 404 ? (
          <Empty title="Trace not found">
            No trace <span class="mono">{id}</span> is stored. It may have expired (retention), been sampled out, or not arrived yet.{' '}
            <a href="/search">Search traces</a>
          </Empty>
        ) : (
          <ErrorBox error={st.error} what={`trace ${id}`} retry={st.reload} />
        )}
      </div>
    );
  if (!st.data) return null;
  const zp = (loc.query.get('zoom') ?? '').split(',').map(Number);
  const zoom: [number, number] | null = zp.length === 2 && zp[0] >= 0 && zp[1] <= 1 && zp[0] < zp[1] ? [zp[0], zp[1]] : null;
  return <TraceLoaded key={id} trace={st.data.trace} raw={st.data.raw} view={view} spanParam={spanParam} zoom={zoom} fold={loc.query.get('fold') ?? ''} />;
}

function setParam(name: string, value: string) {
  const q = new URLSearchParams(location.search);
  if (value) q.set(name, value);
  else q.delete(name);
  const s = q.toString();
  navigate(location.pathname + (s ? '?' + s : ''), true);
}

// foldSet is the collapsed set a fold= URL parameter names: how the tree was folded by the
// toolbar (single toggles are not kept in the URL).
function foldSet(trace: Trace, fold: string): Set<string> {
  if (fold === 'depth1') return collapseToDepth(trace, 1);
  if (fold === 'errors') return collapseErrorFree(trace);
  return new Set();
}

function TraceLoaded(props: { trace: Trace; raw: JaegerTrace; view: string; spanParam: string; zoom: [number, number] | null; fold: string }) {
  const { trace, raw, view, spanParam, zoom, fold } = props;
  const [collapsed, setCollapsed] = useState<Set<string>>(() => foldSet(trace, fold));
  useEffect(() => setCollapsed(foldSet(trace, fold)), [fold]);
  const [showCP, setShowCP] = useState(true);
  // The critical path is computed right after the first paint, so a 10,000-span trace
  // shows its rows without waiting for it.
  const [cpBySpan, setCP] = useState<Map<string, Segment[]>>(() => new Map());
  useEffect(() => {
    const t = setTimeout(() => {
      setCP(segmentsBySpan(criticalPath(trace)));
      performance.mark('trace:critical');
    }, 0);
    return () => clearTimeout(t);
  }, [trace]);
  const rows = useMemo(() => visibleRows(trace, collapsed), [trace, collapsed]);
  const selected = spanParam ? trace.byID.get(spanParam) : undefined;

  // A span named in the URL is shown: its ancestors are expanded.
  useEffect(() => {
    if (!selected) return;
    const anc = ancestors(selected);
    if (anc.some((a) => collapsed.has(a.spanID))) {
      const next = new Set(collapsed);
      anc.forEach((a) => next.delete(a.spanID));
      setCollapsed(next);
    }
  }, [selected]);

  const select = (s: Span | undefined) => setParam('span', s ? s.spanID : '');

  // Find: spans whose service, operation, ID or any attribute contains the text.
  const [find, setFind] = useState('');
  const matches = useMemo(() => {
    const q = find.trim().toLowerCase();
    if (!q) return [] as Span[];
    const hit = (kvs: KV[]) => kvs.some((kv) => kv.key.toLowerCase().includes(q) || String(kv.value).toLowerCase().includes(q));
    return trace.spans
      .filter((s) => s.service.toLowerCase().includes(q) || s.operation.toLowerCase().includes(q) || s.spanID === q || hit(s.tags) || hit(s.resource))
      .sort((a, b) => a.start - b.start);
  }, [trace, find]);
  const matchSet = useMemo(() => new Set(matches), [matches]);
  const findNext = (dir: 1 | -1) => {
    if (!matches.length) return;
    const i = selected ? matches.indexOf(selected) : -1;
    select(matches[(i + dir + matches.length) % matches.length]);
  };
  const findBox = useRef<HTMLInputElement>(null);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === '/' && !(e.target as HTMLElement).closest('input,textarea,select')) {
        e.preventDefault();
        findBox.current?.focus();
      }
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, []);
  const toggle = (s: Span) => {
    const next = new Set(collapsed);
    if (next.has(s.spanID)) next.delete(s.spanID);
    else next.add(s.spanID);
    setCollapsed(next);
  };

  return (
    <div class="trace-page" data-testid="trace-view">
      <TraceHeader trace={trace} cpCount={cpBySpan.size} />
      <div class="toolbar">
        <div class="tabs">
          <button class={view === 'waterfall' ? 'tab active' : 'tab'} onClick={() => setParam('view', '')}>
            Waterfall
          </button>
          <button class={view === 'json' ? 'tab active' : 'tab'} onClick={() => setParam('view', 'json')} data-testid="json-tab">
            JSON
          </button>
        </div>
        {view === 'waterfall' && (
          <>
            <button class="btn btn-small" onClick={() => (fold ? setParam('fold', '') : setCollapsed(new Set()))}>
              Expand all
            </button>
            <button class={'btn btn-small' + (fold === 'depth1' ? ' on' : '')} onClick={() => (fold === 'depth1' ? setCollapsed(foldSet(trace, fold)) : setParam('fold', 'depth1'))}>
              Collapse to depth 1
            </button>
            <button class={'btn btn-small' + (fold === 'errors' ? ' on' : '')} onClick={() => (fold === 'errors' ? setCollapsed(foldSet(trace, fold)) : setParam('fold', 'errors'))} data-testid="fold-errors">
              Errors only
            </button>
            <label class="check">
              <input type="checkbox" checked={showCP} onChange={(e) => setShowCP(e.currentTarget.checked)} /> Critical path
            </label>
            {zoom && (
              <button class="btn btn-small" onClick={() => setParam('zoom', '')} data-testid="zoom-reset">
                Reset zoom
              </button>
            )}
            <span class="find">
              <input
                ref={findBox}
                value={find}
                onInput={(e) => setFind(e.currentTarget.value)}
                onKeyDown={(e) => {
                  if (e.key === 'Enter') {
                    e.preventDefault();
                    findNext(e.shiftKey ? -1 : 1);
                  } else if (e.key === 'Escape') setFind('');
                }}
                placeholder="Find span…  ( / )"
                aria-label="Find spans by service, operation, ID or attribute"
                data-testid="find"
              />
              {find.trim() && (
                <span class="muted small" data-testid="find-count">
                  {matches.length ? `${selected && matchSet.has(selected) ? matches.indexOf(selected) + 1 : '–'} of ${matches.length}` : 'no match'}
                </span>
              )}
            </span>
          </>
        )}
        <span class="spacer" />
        {trace.errorCount > 0 && (
          <a class="btn btn-small" href={href('/compare', { failing: trace.traceID })} data-testid="compare-link">
            Compare with a typical success
          </a>
        )}
        <a class="btn btn-small" href={href('/flow', { service: trace.rootService, operation: trace.rootOperation })}>
          Flow of {trace.rootOperation || 'this entry'}
        </a>
        <span class="muted keys" title="j/k or ↑/↓ move, ←/→ collapse/expand or go to parent/child, Enter toggles, Esc closes, / finds, drag the time axis to zoom">
          ⌨
        </span>
      </div>
      {view === 'json' ? (
        <pre class="json" data-testid="json-view">{JSON.stringify(raw, null, 2)}</pre>
      ) : (
        <div class="trace-body">
          <Waterfall
            trace={trace}
            rows={rows}
            collapsed={collapsed}
            toggle={toggle}
            selected={selected}
            select={select}
            cp={showCP ? cpBySpan : null}
            matches={matchSet}
            zoom={zoom}
            setZoom={(z) => setParam('zoom', z ? `${z[0].toFixed(4)},${z[1].toFixed(4)}` : '')}
          />
          {selected && <SpanDetail span={selected} trace={trace} cp={cpBySpan.get(selected.spanID)} onClose={() => select(undefined)} />}
        </div>
      )}
    </div>
  );
}

function TraceHeader({ trace, cpCount }: { trace: Trace; cpCount: number }) {
  return (
    <div class="trace-head">
      <h1>
        <span style={{ color: serviceColor(trace.rootService) }}>{trace.rootService}</span> {trace.rootOperation}
      </h1>
      <div class="facts">
        <span>
          Trace <span class="mono" data-testid="trace-id">{trace.traceID}</span>
        </span>
        <span>Started {fmtTime(trace.start)}</span>
        <span>
          Duration <b>{fmtDuration(trace.duration)}</b>
        </span>
        <span>
          <b data-testid="span-count">{trace.spans.length}</b> spans
        </span>
        <span>
          <b>{trace.services.length}</b> services
        </span>
        {trace.errorCount > 0 ? <span class="err-badge">{trace.errorCount} error spans</span> : <span class="ok-badge">no errors</span>}
        <span class="muted">{cpCount} spans on the critical path</span>
      </div>
      <div class="tl-services" data-testid="trace-services">
        {trace.services.map((s) => (
          <ServiceChip name={s.name} count={s.spans} errors={s.errors} />
        ))}
      </div>
      {trace.warnings.length > 0 && <div class="note">{trace.warnings.join('; ')}</div>}
    </div>
  );
}

function ticks(duration: number): number[] {
  return [0, 0.2, 0.4, 0.6, 0.8, 1].map((f) => f * duration);
}

function Waterfall(props: {
  trace: Trace;
  rows: Span[];
  collapsed: Set<string>;
  toggle: (s: Span) => void;
  selected: Span | undefined;
  select: (s: Span | undefined) => void;
  cp: Map<string, Segment[]> | null;
  matches: Set<Span>;
  zoom: [number, number] | null;
  setZoom: (z: [number, number] | null) => void;
}) {
  const { trace, rows, collapsed, toggle, selected, select, cp, matches, zoom, setZoom } = props;
  const [drag, setDrag] = useState<[number, number] | null>(null);
  const box = useRef<HTMLDivElement>(null);
  const [scroll, setScroll] = useState(0);
  const [height, setHeight] = useState(600);
  const rowIndex = useMemo(() => new Map(rows.map((s, i) => [s, i])), [rows]);

  useEffect(() => {
    const el = box.current!;
    const measure = () => setHeight(el.clientHeight || 600);
    measure();
    performance.mark('trace:rows');
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    el.focus({ preventScroll: true });
    return () => ro.disconnect();
  }, []);

  // Keep the selected row in view.
  useEffect(() => {
    if (!selected) return;
    const i = rowIndex.get(selected);
    const el = box.current;
    if (i === undefined || !el) return;
    // Rows sit below the sticky overview and time axis, HEAD high.
    const top = i * ROW;
    if (top < el.scrollTop) el.scrollTop = top;
    else if (top + ROW + HEAD > el.scrollTop + el.clientHeight) el.scrollTop = top + ROW + HEAD - el.clientHeight;
  }, [selected, rowIndex]);

  const onKey = (e: KeyboardEvent) => {
    if ((e.target as HTMLElement).closest('input,textarea,select')) return;
    const i = selected ? rowIndex.get(selected) ?? -1 : -1;
    const go = (j: number) => {
      if (rows.length) select(rows[Math.max(0, Math.min(rows.length - 1, j))]);
    };
    switch (e.key) {
      case 'ArrowDown':
      case 'j':
        go(i + 1);
        break;
      case 'ArrowUp':
      case 'k':
        go(i < 0 ? 0 : i - 1);
        break;
      case 'PageDown':
        go(i + Math.floor(height / ROW));
        break;
      case 'PageUp':
        go(i - Math.floor(height / ROW));
        break;
      case 'Home':
        go(0);
        break;
      case 'End':
        go(rows.length - 1);
        break;
      case 'ArrowRight':
      case 'l':
        if (selected?.children.length) {
          if (collapsed.has(selected.spanID)) toggle(selected);
          else select(selected.children[0]);
        }
        break;
      case 'ArrowLeft':
      case 'h':
        if (selected && selected.children.length && !collapsed.has(selected.spanID)) toggle(selected);
        else if (selected?.parent) select(selected.parent);
        break;
      case 'Enter':
      case ' ':
        if (selected?.children.length) toggle(selected);
        break;
      case 'Escape':
        select(undefined);
        break;
      default:
        return;
    }
    e.preventDefault();
  };

  const first = Math.max(0, Math.floor(scroll / ROW) - OVERSCAN);
  const last = Math.min(rows.length, Math.ceil((scroll + height) / ROW) + OVERSCAN);
  // The time window shown: the whole trace, or the zoomed part [z0, z1] (fractions).
  const [z0, z1] = zoom ?? [0, 1];
  const full = Math.max(trace.duration, 1);
  const w0 = trace.start + z0 * full;
  const dur = Math.max((z1 - z0) * full, 1);
  const pct = (t: number) => ((t - w0) / dur) * 100;
  const out = [];
  for (let i = first; i < last; i++) {
    const s = rows[i];
    const segs = cp?.get(s.spanID);
    const left = pct(s.start);
    const width = Math.max(0.15, (s.duration / dur) * 100);
    const isCol = collapsed.has(s.spanID);
    out.push(
      <div
        key={s.spanID + ':' + i}
        class={'wf-row' + (s === selected ? ' sel' : '') + (s.error ? ' err' : '') + (segs ? ' cp' : '') + (matches.has(s) ? ' match' : '')}
        style={{ top: `${i * ROW}px` }}
        onClick={() => select(s === selected ? undefined : s)}
        data-span-id={s.spanID}
        data-service={s.service}
        data-error={s.error ? 'true' : undefined}
        role="row"
        aria-selected={s === selected}
      >
        <div class="wf-label" style={{ paddingLeft: `${Math.min(s.depth, 30) * 14 + 4}px` }} title={`${s.service} ${s.operation}`}>
          {s.children.length ? (
            <button
              class="wf-toggle"
              onClick={(e) => {
                e.stopPropagation();
                toggle(s);
              }}
              aria-label={isCol ? 'Expand' : 'Collapse'}
            >
              {isCol ? '▸' : '▾'}
            </button>
          ) : (
            <span class="wf-toggle" />
          )}
          <i class="dot" style={{ background: serviceColor(s.service) }} />
          {s.error && (
            <span class="err-icon" title={s.statusMessage || 'error'} data-testid="error-marker">
              !
            </span>
          )}
          <b>{s.service}</b>
          <span class="op">{s.operation}</span>
          {isCol && <span class="hidden-count">+{descendantCount(s)}</span>}
          {s.depth > 30 && <span class="muted"> ⋯{s.depth}</span>}
        </div>
        <div class="wf-track">
          <div class="wf-bar" style={{ left: `${left}%`, width: `${width}%`, background: serviceColor(s.service) }}>
            {segs?.map((g) => (
              <span class="cp-seg" style={{ left: `${((g.start - s.start) / Math.max(s.duration, 1)) * 100}%`, width: `${((g.end - g.start) / Math.max(s.duration, 1)) * 100}%` }} />
            ))}
            {s.events.map((ev) => (
              <span class="ev-tick" style={{ left: `${((ev.timestamp - s.start) / Math.max(s.duration, 1)) * 100}%` }} title={ev.name} />
            ))}
          </div>
          <span class="wf-dur" style={left + width > 82 ? { right: `${100 - left + 0.5}%` } : { left: `${left + width + 0.5}%` }}>
            {fmtDuration(s.duration)}
          </span>
        </div>
      </div>,
    );
  }
  return (
    <div
      class={'waterfall' + (cp?.size ? ' show-cp' : '')}
      ref={box}
      tabIndex={0}
      onKeyDown={onKey}
      onScroll={(e) => setScroll((e.currentTarget as HTMLDivElement).scrollTop)}
      data-testid="waterfall"
      data-rows={rows.length}
      role="grid"
      aria-label="Spans"
    >
      <div class="wf-head">
        <div class="wf-mini-row">
          <div class="wf-label muted">
            Overview · {zoom ? 'zoomed' : 'whole trace'}
          </div>
          <Minimap trace={trace} rows={rows} zoom={zoom} setZoom={setZoom} />
        </div>
        <div class="wf-axis">
          <div class="wf-label">Service · operation</div>
          <div
            class="wf-track wf-zoom"
            title="Drag to zoom into a time range"
            data-testid="time-axis"
            onPointerDown={(e) => {
              const el = e.currentTarget as HTMLDivElement;
              const r = el.getBoundingClientRect();
              const at = (x: number) => Math.min(1, Math.max(0, (x - r.left) / r.width));
              const a = at(e.clientX);
              setDrag([a, a]);
              el.setPointerCapture(e.pointerId);
              const move = (ev: PointerEvent) => setDrag([a, at(ev.clientX)]);
              const up = (ev: PointerEvent) => {
                el.removeEventListener('pointermove', move);
                el.removeEventListener('pointerup', up);
                setDrag(null);
                const b = at(ev.clientX);
                const lo = Math.min(a, b);
                const hi = Math.max(a, b);
                if (hi - lo > 0.005) setZoom([z0 + lo * (z1 - z0), z0 + hi * (z1 - z0)]);
              };
              el.addEventListener('pointermove', move);
              el.addEventListener('pointerup', up);
            }}
          >
            {ticks(dur).map((t, i, a) => (
              <span class="tick" style={i === a.length - 1 ? { right: '0' } : { left: `${(t / dur) * 100}%` }}>
                {fmtDuration(w0 - trace.start + t)}
              </span>
            ))}
            {drag && <span class="zoom-sel" style={{ left: `${Math.min(...drag) * 100}%`, width: `${Math.abs(drag[1] - drag[0]) * 100}%` }} />}
          </div>
        </div>
      </div>
      <div style={{ height: `${rows.length * ROW}px`, position: 'relative' }}>{out}</div>
    </div>
  );
}

// Minimap draws every shown row of the trace on a canvas, the zoomed window bright and the
// rest dimmed; dragging on it zooms, a double click shows the whole trace again.
function Minimap({ trace, rows, zoom, setZoom }: { trace: Trace; rows: Span[]; zoom: [number, number] | null; setZoom: (z: [number, number] | null) => void }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const [width, setWidth] = useState(0);
  const [drag, setDrag] = useState<[number, number] | null>(null);
  useEffect(() => {
    const el = canvas.current!.parentElement!;
    const ro = new ResizeObserver(() => setWidth(el.clientWidth));
    ro.observe(el);
    setWidth(el.clientWidth);
    return () => ro.disconnect();
  }, []);
  useEffect(() => {
    const c = canvas.current;
    if (!c || !width) return;
    const dpr = window.devicePixelRatio || 1;
    c.width = Math.round(width * dpr);
    c.height = Math.round(MINI * dpr);
    const g = c.getContext('2d');
    if (!g) return;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, width, MINI);
    const dur = Math.max(trace.duration, 1);
    const n = Math.max(rows.length, 1);
    const h = Math.max(1, (MINI - 4) / n);
    for (let i = 0; i < rows.length; i++) {
      const s = rows[i];
      g.fillStyle = s.error ? '#e03131' : serviceColor(s.service);
      g.fillRect(((s.start - trace.start) / dur) * width, 2 + (i / n) * (MINI - 4), Math.max(1, (s.duration / dur) * width), h);
    }
  }, [trace, rows, width]);
  const at = (e: PointerEvent, el: Element) => {
    const r = el.getBoundingClientRect();
    return Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
  };
  const [z0, z1] = zoom ?? [0, 1];
  return (
    <div
      class="wf-track wf-mini"
      data-testid="minimap"
      title="Drag to zoom, double-click for the whole trace"
      onDblClick={() => setZoom(null)}
      onPointerDown={(e) => {
        const el = e.currentTarget as HTMLDivElement;
        const a = at(e, el);
        setDrag([a, a]);
        el.setPointerCapture(e.pointerId);
        const move = (ev: PointerEvent) => setDrag([a, at(ev, el)]);
        const up = (ev: PointerEvent) => {
          el.removeEventListener('pointermove', move);
          el.removeEventListener('pointerup', up);
          setDrag(null);
          const b = at(ev, el);
          if (Math.abs(b - a) > 0.005) setZoom([Math.min(a, b), Math.max(a, b)]);
        };
        el.addEventListener('pointermove', move);
        el.addEventListener('pointerup', up);
      }}
    >
      <canvas ref={canvas} style={{ width: `${width}px`, height: `${MINI}px` }} />
      {zoom && <span class="mini-shade" style={{ left: 0, width: `${z0 * 100}%` }} />}
      {zoom && <span class="mini-shade" style={{ left: `${z1 * 100}%`, right: 0 }} />}
      {drag && <span class="zoom-sel" style={{ left: `${Math.min(...drag) * 100}%`, width: `${Math.abs(drag[1] - drag[0]) * 100}%` }} />}
    </div>
  );
}

function KVTable({ title, kvs }: { title: string; kvs: KV[] }) {
  if (!kvs.length) return null;
  return (
    <section>
      <h4>
        {title} <span class="muted">({kvs.length})</span>
      </h4>
      <table class="kv">
        {kvs.map((kv) => (
          <tr>
            <th>{kv.key}</th>
            <td class={kv.type && kv.type !== 'string' ? 'typed' : ''}>{String(kv.value)}</td>
          </tr>
        ))}
      </table>
    </section>
  );
}

function SpanDetail({ span, trace, cp, onClose }: { span: Span; trace: Trace; cp?: Segment[]; onClose: () => void }) {
  const cpTime = cp?.reduce((a, g) => a + g.end - g.start, 0) ?? 0;
  return (
    <aside class="detail" data-testid="span-detail">
      <div class="detail-head">
        <div>
          <div class="muted">
            <i class="dot" style={{ background: serviceColor(span.service) }} /> {span.service} · {span.kind || 'span'}
          </div>
          <h3>{span.operation}</h3>
        </div>
        <button class="btn btn-small" onClick={onClose} aria-label="Close">
          ✕
        </button>
      </div>
      {span.error && (
        <div class="status-err" data-testid="span-error">
          <b>Error</b> {span.statusMessage}
        </div>
      )}
      <table class="kv facts-kv">
        <tr>
          <th>Duration</th>
          <td>{fmtDuration(span.duration)}</td>
        </tr>
        <tr>
          <th>Starts at</th>
          <td>+{fmtDuration(span.start - trace.start)}</td>
        </tr>
        <tr>
          <th>Critical path</th>
          <td>{!cp ? 'not on it' : cpTime >= span.duration ? 'on it, all of its time' : `on it: ${fmtDuration(cpTime)} of its own; the rest of its path runs in children`}</td>
        </tr>
        <tr>
          <th>Span ID</th>
          <td class="mono">{span.spanID}</td>
        </tr>
        <tr>
          <th>Parent</th>
          <td class="mono">{span.parent ? <a href={href(`/trace/${trace.traceID}`, { span: span.parent.spanID })}>{span.parentID}</a> : span.parentID ?? 'root'}</td>
        </tr>
        <tr>
          <th>Children</th>
          <td>{span.children.length}</td>
        </tr>
      </table>
      <KVTable title="Span attributes" kvs={span.tags} />
      <KVTable title="Resource (process)" kvs={span.resource} />
      <KVTable title="Instrumentation scope" kvs={span.scope} />
      {span.events.length > 0 && (
        <section>
          <h4>
            Events <span class="muted">({span.events.length})</span>
          </h4>
          <div class="ev-line">
            {span.events.map((e) => (
              <span class="ev-dot" style={{ left: `${((e.timestamp - span.start) / Math.max(span.duration, 1)) * 100}%` }} title={e.name} />
            ))}
          </div>
          <ul class="events">
            {span.events.map((e) => (
              <li>
                <span class="muted">+{fmtDuration(e.timestamp - span.start)}</span> <b>{e.name}</b>
                {e.fields.length > 0 && (
                  <table class="kv">
                    {e.fields.map((f) => (
                      <tr>
                        <th>{f.key}</th>
                        <td>{String(f.value)}</td>
                      </tr>
                    ))}
                  </table>
                )}
              </li>
            ))}
          </ul>
        </section>
      )}
      {span.links.length > 0 && (
        <section>
          <h4>Links</h4>
          <ul class="links-list">
            {span.links.map((l) => (
              <li>
                <a href={href(`/trace/${l.traceID}`, { span: l.spanID })} data-testid="span-link">
                  {l.traceID === trace.traceID ? 'this trace' : `trace ${l.traceID.slice(0, 12)}…`} · span {l.spanID}
                </a>{' '}
                <span class="muted">{l.refType}</span>
              </li>
            ))}
          </ul>
        </section>
      )}
      {span.warnings.length > 0 && <div class="note">{span.warnings.join('; ')}</div>}
    </aside>
  );
}
