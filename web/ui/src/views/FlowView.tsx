import { useEffect, useState } from 'preact/hooks';
import { getFlow, getOperations, getServices, jaegerTraces, lookbackChoices, timeRange } from '../lib/api';
import { flattenHops, type Flow, type HopNode } from '../lib/flow';
import { useAsync } from '../lib/useAsync';
import { href, navigate, type Loc } from '../lib/router';
import { fmtDuration, fmtPercent } from '../lib/format';
import { Empty, ErrorBox, ErrorShare, Loading, Note, serviceColor } from '../components/common';

// The payment-flow view: every trace of one entry operation folded into the hops it
// crosses and the paths it takes, with where the failures start.
export function FlowView({ loc }: { loc: Loc }) {
  const service = loc.query.get('service') ?? '';
  const operation = loc.query.get('operation') ?? '';
  const lookback = loc.query.get('lookback') ?? '1h';
  const limit = Math.min(2000, Math.max(10, parseInt(loc.query.get('limit') ?? '500', 10) || 500));
  return (
    <div class="page">
      <h1>Payment flow</h1>
      <p class="sub">
        Pick an entry operation: its traces are folded into the hops they cross and the paths they take, with error share, latency and where
        failures start.
      </p>
      <FlowForm service={service} operation={operation} lookback={lookback} limit={limit} />
      {operation ? <FlowResult service={service} operation={operation} lookback={lookback} limit={limit} /> : <EntryPicker lookback={lookback} />}
    </div>
  );
}

function FlowForm(p: { service: string; operation: string; lookback: string; limit: number }) {
  const [svc, setSvc] = useState(p.service);
  const [op, setOp] = useState(p.operation);
  const [lb, setLb] = useState(p.lookback);
  const [lim, setLim] = useState(String(p.limit));
  useEffect(() => {
    setSvc(p.service);
    setOp(p.operation);
    setLb(p.lookback);
    setLim(String(p.limit));
  }, [p.service, p.operation, p.lookback, p.limit]);
  const services = useAsync((s) => getServices(s), []);
  const ops = useAsync((s) => (svc ? getOperations(svc, s) : Promise.resolve([] as string[])), [svc]);
  return (
    <form
      class="search-form flow-form"
      onSubmit={(e) => {
        e.preventDefault();
        navigate(href('/flow', { service: svc, operation: op, lookback: lb, limit: lim }));
      }}
    >
      <label>
        Entry service
        <select value={svc} onChange={(e) => (setSvc(e.currentTarget.value), setOp(''))} name="service">
          <option value="">Any</option>
          {services.data?.map((s) => <option value={s}>{s}</option>)}
        </select>
      </label>
      <label>
        Entry operation
        <select value={op} onChange={(e) => setOp(e.currentTarget.value)} disabled={!svc} name="operation">
          <option value="">Choose…</option>
          {ops.data?.map((s) => <option value={s}>{s}</option>)}
          {op && !ops.data?.includes(op) && <option value={op}>{op}</option>}
        </select>
      </label>
      <label>
        Time range
        <select name="lookback" value={lb} onChange={(e) => setLb(e.currentTarget.value)}>
          {lookbackChoices.map((l) => (
            <option value={l}>Last {l}</option>
          ))}
        </select>
      </label>
      <label class="narrow">
        Traces
        <select name="limit" value={lim} onChange={(e) => setLim(e.currentTarget.value)}>
          {[100, 200, 500, 1000, 2000].map((n) => (
            <option value={String(n)}>{n}</option>
          ))}
        </select>
      </label>
      <div class="actions">
        <button class="btn btn-primary" type="submit" disabled={!op}>
          Show flow
        </button>
      </div>
    </form>
  );
}

// EntryPicker lists the root operations of recent traces, busiest first.
function EntryPicker({ lookback }: { lookback: string }) {
  const st = useAsync(async (signal) => {
    const [s, e] = timeRange({ lookback, start: '', end: '' });
    const traces = await jaegerTraces({ start: s, end: e, limit: 300 }, signal);
    const m = new Map<string, { service: string; operation: string; n: number; err: number }>();
    for (const t of traces) {
      const k = t.rootService + '\u0000' + t.rootOperation;
      let a = m.get(k);
      if (!a) m.set(k, (a = { service: t.rootService, operation: t.rootOperation, n: 0, err: 0 }));
      a.n++;
      if (t.errorCount) a.err++;
    }
    return [...m.values()].sort((a, b) => b.n - a.n);
  }, [lookback]);
  if (st.loading && !st.data) return <Loading what="entry operations" />;
  if (st.error) return <ErrorBox error={st.error} what="entry operations" retry={st.reload} />;
  if (!st.data?.length)
    return (
      <Empty title="No traces in this window">
        Nothing to fold yet. Run <code>spoor demo</code> to send checkout flows.
      </Empty>
    );
  return (
    <div>
      <h3>Entry operations seen recently</h3>
      <table class="grid" data-testid="entries">
        <thead>
          <tr>
            <th>Entry</th>
            <th class="num">Traces (sample)</th>
            <th>With errors</th>
          </tr>
        </thead>
        <tbody>
          {st.data.map((a) => (
            <tr>
              <td>
                <a href={href('/flow', { service: a.service, operation: a.operation, lookback })}>
                  <b>{a.service}</b> {a.operation}
                </a>
              </td>
              <td class="num">{a.n}</td>
              <td>
                <ErrorShare share={a.err / a.n} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function FlowResult(p: { service: string; operation: string; lookback: string; limit: number }) {
  const st = useAsync(
    async (signal) => {
      const [s, e] = timeRange({ lookback: p.lookback, start: '', end: '' });
      return getFlow({ service: p.service, operation: p.operation, start: s, end: e, limit: p.limit }, signal);
    },
    [p.service, p.operation, p.lookback, p.limit],
  );
  if (st.loading && !st.data) return <Loading what={`the traces of ${p.operation}`} />;
  if (st.error) return <ErrorBox error={st.error} what="the flow" retry={st.reload} />;
  if (!st.data) return null;
  const { flow, examined, truncated, source } = st.data;
  if (!flow.traces)
    return (
      <Empty title={`No trace of ${p.operation} in the last ${p.lookback}`}>
        Widen the time range, or check the operation name. <a href="/flow">Pick another entry</a>
      </Empty>
    );
  return (
    <div class={st.loading ? 'stale' : ''} data-testid="flow">
      <div class="flow-summary">
        <span>
          <b>{flow.traces}</b> traces of <b>{p.operation}</b>
        </span>
        <span>
          <b>{flow.paths.length}</b> distinct paths
        </span>
        <span>
          <ErrorShare share={flow.errorTraces / flow.traces} /> of traces have an error
        </span>
        {truncated && <span class="muted" data-testid="flow-truncated">(the {examined} most recent; raise “Traces” to fold more)</span>}
      </div>
      <FlowGraph flow={flow} />
      <h3>Paths</h3>
      <Paths flow={flow} p={p} />
      <h3>Hops</h3>
      <p class="sub">Every place a request of this flow entered a service, nested under its caller. ⚑ marks where failures started.</p>
      <Hops flow={flow} />
      <Note>
        {source === 'spoor'
          ? `Aggregated by Spoor from the ${examined} most recent stored traces of this entry.`
          : `Aggregated in the browser from the ${examined} traces the Jaeger search returned (no /spoor/api/v1/flows here).`}
      </Note>
    </div>
  );
}

// FlowGraph draws the hop tree left to right: each hop a box with its traffic and error
// share, each call a band as wide as the traffic it carries, red as far as it failed;
// ⚑ marks where failures started. A box opens an example trace (a failing one first).
function FlowGraph({ flow }: { flow: Flow }) {
  if (!flow.root) return null;
  const colW = 290;
  const NW = 220;
  const NH = 50;
  const rowH = 66;
  const pos = new Map<HopNode, { x: number; y: number }>();
  let next = 0;
  let maxDepth = 0;
  // Leaves take the next row, parents sit at the middle of their children (post-order,
  // without recursion).
  const stack: { n: HopNode; done: boolean }[] = [{ n: flow.root, done: false }];
  while (stack.length) {
    const top = stack.pop()!;
    const n = top.n;
    maxDepth = Math.max(maxDepth, n.depth);
    if (!n.children.length) {
      pos.set(n, { x: 20 + n.depth * colW, y: 16 + next++ * rowH });
    } else if (!top.done) {
      stack.push({ n, done: true });
      for (let i = n.children.length - 1; i >= 0; i--) stack.push({ n: n.children[i], done: false });
    } else {
      const ys = n.children.map((c) => pos.get(c)!.y);
      pos.set(n, { x: 20 + n.depth * colW, y: (Math.min(...ys) + Math.max(...ys)) / 2 });
    }
  }
  const W = 40 + maxDepth * colW + NW;
  const H = 32 + Math.max(1, next) * rowH - (rowH - NH);
  const maxTraces = Math.max(1, flow.root.traces);
  const nodes = [...pos.keys()];
  return (
    <div class="map-wrap flow-graph-wrap">
      <svg class="flow-graph" viewBox={`0 0 ${W} ${H}`} style={{ width: '100%', maxWidth: `${W}px`, height: 'auto' }} data-testid="flow-graph">
        {nodes.flatMap((n) =>
          n.children.map((c) => {
            const a = pos.get(n)!;
            const b = pos.get(c)!;
            const x1 = a.x + NW;
            const y1 = a.y + NH / 2;
            const x2 = b.x;
            const y2 = b.y + NH / 2;
            const w = 2 + 14 * (c.traces / maxTraces);
            const errShare = c.calls ? c.errors / c.calls : 0;
            const d = `M${x1},${y1} C${x1 + 40},${y1} ${x2 - 40},${y2} ${x2},${y2}`;
            return (
              <g class="flow-edge">
                <path d={d} stroke-width={w} class="band" />
                {errShare > 0 && <path d={d} stroke-width={Math.max(1.5, w * errShare)} class="band-err" />}
              </g>
            );
          }),
        )}
        {nodes.map((n) => {
          const p = pos.get(n)!;
          const errShare = n.calls ? n.errors / n.calls : 0;
          const example = n.exampleError[0] ?? n.exampleOk[0];
          const label = `${n.operation}`;
          return (
            <a href={example ? `/trace/${example}` : undefined} class={'flow-node' + (n.errors ? ' has-err' : '') + (n.origins ? ' origin' : '')} data-hop={`${n.service} ${n.operation}`}>
              <title>
                {n.service} {n.operation}: {n.traces} traces, {n.calls} calls, {fmtPercent(errShare)} failed, p50 {fmtDuration(n.p50)}, p99 {fmtDuration(n.p99)}
                {n.origins ? `; failures started here in ${n.origins} traces` : ''} — click for an example trace
              </title>
              <rect x={p.x} y={p.y} width={NW} height={NH} rx={7} />
              <rect x={p.x} y={p.y} width={5} height={NH} rx={2} fill={serviceColor(n.service)} />
              <text x={p.x + 13} y={p.y + 17} class="fn-svc">
                {n.service}
              </text>
              <text x={p.x + 13} y={p.y + 31} class="fn-op">
                {label.length > 30 ? label.slice(0, 29) + '…' : label}
              </text>
              <text x={p.x + 13} y={p.y + 44} class="fn-sub">
                {n.traces} · p99 {fmtDuration(n.p99)}
                {errShare > 0 ? ` · ${fmtPercent(errShare)} failed` : ''}
              </text>
              {n.origins > 0 && (
                <text x={p.x + NW - 8} y={p.y + 17} text-anchor="end" class="fn-origin">
                  ⚑ {n.origins}
                </text>
              )}
            </a>
          );
        })}
      </svg>
    </div>
  );
}

function Paths({ flow, p }: { flow: Flow; p: { service: string; operation: string } }) {
  return (
    <table class="grid paths" data-testid="flow-paths">
      <thead>
        <tr>
          <th>Path</th>
          <th class="num">Traces</th>
          <th>Error share</th>
          <th class="num">p50</th>
          <th class="num">p99</th>
          <th>Errors start at</th>
          <th>Examples</th>
        </tr>
      </thead>
      <tbody>
        {flow.paths.map((path) => (
          <tr class={path.errorTraces ? 'row-bad failing-path' : ''} data-testid={path.errorTraces ? 'failing-path' : 'path'}>
            <td class="path-cell">
              {path.hops.map((h, i) => (
                <>
                  {i > 0 && <span class="arrow">→</span>}
                  <span class="hop" style={{ borderColor: serviceColor(h.split(' ')[0]) }} title={h}>
                    {h}
                  </span>
                </>
              ))}
            </td>
            <td class="num">{path.count}</td>
            <td>
              <ErrorShare share={path.errorShare} />
            </td>
            <td class="num">{fmtDuration(path.p50)}</td>
            <td class="num">{fmtDuration(path.p99)}</td>
            <td>
              {path.origins.map((o) => (
                <div class="origin" data-testid="path-origin">
                  ⚑ {o.hop} <span class="muted">×{o.count}</span>
                  {o.spread.length > 0 && <div class="spread">↑ spread to {o.spread.map((h) => h.split(' ')[0]).join(' → ')}</div>}
                </div>
              ))}
            </td>
            <td class="examples">
              {path.exampleError.slice(0, 3).map((id) => (
                <span>
                  <a href={`/trace/${id}`} class="ex ex-err">
                    {id.slice(0, 6)}
                  </a>
                  <a href={href('/compare', { failing: id, service: p.service, operation: p.operation })} class="ex" title="Compare with a typical success" data-testid="compare-example">
                    ⇄
                  </a>
                </span>
              ))}
              {path.exampleOk.slice(0, 2).map((id) => (
                <a href={`/trace/${id}`} class="ex">
                  {id.slice(0, 6)}
                </a>
              ))}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Hops({ flow }: { flow: Flow }) {
  const nodes = flattenHops(flow.root);
  const maxP99 = Math.max(1, ...nodes.map((n) => n.p99));
  return (
    <div class="hops" data-testid="flow-hops">
      {nodes.map((n: HopNode) => (
        <div class={'hop-row' + (n.errors ? ' hop-err' : '') + (n.origins ? ' hop-origin' : '')} style={{ paddingLeft: `${n.depth * 22 + 8}px` }}>
          <span class="hop-name">
            <i class="dot" style={{ background: serviceColor(n.service) }} />
            <b>{n.service}</b> {n.operation}
          </span>
          <span class="num">{n.traces} traces{n.calls > n.traces ? ` · ${n.calls} calls` : ''}</span>
          <span>
            <ErrorShare share={n.calls ? n.errors / n.calls : 0} />
          </span>
          <span class="lat" title={`p50 ${fmtDuration(n.p50)}, p99 ${fmtDuration(n.p99)}`}>
            <span class="lat-bar" style={{ width: `${(n.p99 / maxP99) * 100}%` }}>
              <span style={{ width: `${(n.p50 / Math.max(n.p99, 1)) * 100}%` }} />
            </span>
            {fmtDuration(n.p50)} / {fmtDuration(n.p99)}
          </span>
          <span>{n.origins > 0 && <span class="origin-badge" data-testid="error-origin">⚑ errors start here ({n.origins})</span>}</span>
          <span class="examples">
            {n.exampleError.slice(0, 2).map((id) => (
              <a href={`/trace/${id}`} class="ex ex-err">
                {id.slice(0, 6)}
              </a>
            ))}
            {n.exampleOk.slice(0, 1).map((id) => (
              <a href={`/trace/${id}`} class="ex">
                {id.slice(0, 6)}
              </a>
            ))}
          </span>
        </div>
      ))}
      <div class="muted small">{fmtPercent(flow.errorTraces / Math.max(1, flow.traces))} of {flow.traces} traces had an error somewhere.</div>
    </div>
  );
}
