import { serviceGraph, type Graph } from '../lib/api';
import { useAsync } from '../lib/useAsync';
import { href, navigate, type Loc } from '../lib/router';
import { fmtMs, fmtPercent } from '../lib/format';
import type { Edge } from '../lib/stats';
import { Empty, ErrorBox, ErrorShare, Loading, Note, serviceColor } from '../components/common';
import { searchHref } from './Search';

const choices: Record<string, number> = { '15m': 900, '1h': 3600, '6h': 21600, '24h': 86400, '7d': 604800 };

import { layout, NW, NH } from '../lib/layout';

export function ServiceMap({ loc }: { loc: Loc }) {
  const lb = loc.query.get('lookback') ?? '1h';
  const focus = loc.query.get('focus') ?? '';
  const st = useAsync((s) => serviceGraph(choices[lb] ?? 3600, s), [lb]);
  return (
    <div class="page">
      <h1>Service map</h1>
      <div class="toolbar">
        <span class="sub">Calls between services with their rate, error share and p99. Click a service or a call to search its traces.</span>
        <span class="spacer" />
        <label>
          Over the last{' '}
          <select value={lb} onChange={(e) => navigate(href('/map', { lookback: e.currentTarget.value, focus }))}>
            {Object.keys(choices).map((c) => (
              <option value={c}>{c}</option>
            ))}
          </select>
        </label>
      </div>
      {st.loading && !st.data && <Loading what="the service graph" />}
      {st.error && <ErrorBox error={st.error} what="the service graph" retry={st.reload} />}
      {st.data && !st.data.edges.length && (
        <Empty title="No calls between services in this window">
          A map needs spans whose parent ran in another service. Widen the window, or run <code>spoor demo</code>.
        </Empty>
      )}
      {st.data && st.data.edges.length > 0 && <MapSVG g={st.data} focus={focus} lookbackSecs={choices[lb] ?? 3600} lb={lb} />}
      {st.data && st.data.edges.length > 0 && <EdgeTable edges={st.data.edges} lb={lb} lookbackSecs={choices[lb] ?? 3600} />}
      {st.data && <Note>{st.data.note}</Note>}
    </div>
  );
}

function edgeSearch(e: Edge, lb: string) {
  return searchHref({ service: e.child, lookback: lb });
}

function MapSVG({ g, focus, lookbackSecs, lb }: { g: Graph; focus: string; lookbackSecs: number; lb: string }) {
  const { pos, width, height } = layout(g);
  const maxCalls = Math.max(1, ...g.edges.map((e) => e.calls));
  const inst = new Map(g.nodes.map((n) => [n.name, n.instrumented]));
  return (
    <div class="map-wrap">
      <svg class="map" viewBox={`0 0 ${width} ${height}`} style={{ width: '100%', maxWidth: `${width}px`, height: 'auto' }} data-testid="service-map">
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="11" markerHeight="11" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" fill="#868e96" />
          </marker>
          <marker id="arrow-err" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="11" markerHeight="11" orient="auto-start-reverse">
            <path d="M0,0 L10,5 L0,10 z" fill="#e03131" />
          </marker>
        </defs>
        {g.edges.map((e) => {
          const a = pos.get(e.parent);
          const b = pos.get(e.child);
          if (!a || !b) return null;
          const x1 = a.x + NW;
          const y1 = a.y + NH / 2;
          const x2 = b.x;
          const y2 = b.y + NH / 2;
          const back = x2 <= x1;
          const d = back
            ? `M${a.x + NW / 2},${a.y + NH} C${a.x + NW / 2},${a.y + NH + 60} ${b.x + NW / 2},${b.y + NH + 60} ${b.x + NW / 2},${b.y + NH}`
            : `M${x1},${y1} C${x1 + 60},${y1} ${x2 - 60},${y2} ${x2},${y2}`;
          // Labels sit past the middle, towards the callee, so a fan-out's labels spread
          // with its callees instead of piling up at the caller.
          const t = 0.62;
          const bez = (p0: number, p1: number, p2: number, p3: number) =>
            (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t * t * p2 + t ** 3 * p3;
          const mx = back ? (a.x + b.x) / 2 + NW / 2 : bez(x1, x1 + 60, x2 - 60, x2);
          const my = back ? Math.max(a.y, b.y) + NH + 48 : bez(y1, y1, y2, y2);
          const err = e.errors > 0 || e.errorShare > 0;
          const dim = focus && e.parent !== focus && e.child !== focus;
          const rate = e.calls / lookbackSecs;
          return (
            <a href={edgeSearch(e, lb)} class={'edge' + (err ? ' edge-err' : '') + (dim ? ' dim' : '')} data-edge={`${e.parent}->${e.child}`} data-testid="map-edge">
              <path d={d} stroke-width={1.2 + 3 * Math.sqrt(e.calls / maxCalls)} marker-end={err ? 'url(#arrow-err)' : 'url(#arrow)'} />
              <title>
                {e.parent} → {e.child}: {Math.round(e.calls)} calls, {fmtPercent(e.errorShare)} errors, p50 {fmtMs(e.p50Ms)}, p99 {fmtMs(e.p99Ms)}
              </title>
              <text x={mx} y={my - 4} text-anchor="middle" class="edge-label">
                {rate >= 1 ? `${rate.toFixed(1)}/s` : `${(rate * 60).toFixed(1)}/min`} · p99 {fmtMs(e.p99Ms)}
              </text>
              {err && (
                <text x={mx} y={my + 9} text-anchor="middle" class="edge-label edge-label-err">
                  {fmtPercent(e.errorShare)} errors
                </text>
              )}
            </a>
          );
        })}
        {g.nodes.map((n) => {
          const p = pos.get(n.name)!;
          const dim = focus && focus !== n.name && !g.edges.some((e) => (e.parent === focus && e.child === n.name) || (e.child === focus && e.parent === n.name));
          const errIn = g.edges.some((e) => e.child === n.name && e.errors > 0);
          return (
            <a href={searchHref({ service: n.name, lookback: lb })} class={'node' + (dim ? ' dim' : '') + (focus === n.name ? ' focus' : '')} data-node={n.name}>
              <rect x={p.x} y={p.y} width={NW} height={NH} rx={8} class={errIn ? 'node-err' : ''} stroke-dasharray={inst.get(n.name) === false ? '4 3' : undefined} />
              <rect x={p.x} y={p.y} width={6} height={NH} rx={3} fill={serviceColor(n.name)} />
              <text x={p.x + 16} y={p.y + 20} class="node-name">
                {n.name.length > 22 ? n.name.slice(0, 21) + '…' : n.name}
              </text>
              <text x={p.x + 16} y={p.y + 36} class="node-sub">
                {inst.get(n.name) === false ? 'not instrumented' : `${g.edges.filter((e) => e.parent === n.name).length} out · ${g.edges.filter((e) => e.child === n.name).length} in`}
              </text>
            </a>
          );
        })}
      </svg>
    </div>
  );
}

function EdgeTable({ edges, lb, lookbackSecs }: { edges: Edge[]; lb: string; lookbackSecs: number }) {
  const sorted = [...edges].sort((a, b) => b.errorShare - a.errorShare || b.calls - a.calls);
  return (
    <table class="grid" data-testid="edge-table">
      <thead>
        <tr>
          <th>Caller → callee</th>
          <th class="num">Calls</th>
          <th class="num">Rate</th>
          <th>Error share</th>
          <th class="num">p50</th>
          <th class="num">p99</th>
        </tr>
      </thead>
      <tbody>
        {sorted.map((e) => (
          <tr class={e.errors > 0 ? 'row-bad' : ''}>
            <td>
              <a href={edgeSearch(e, lb)}>
                {e.parent} → {e.child}
              </a>
            </td>
            <td class="num">{Math.round(e.calls)}</td>
            <td class="num">{(e.calls / lookbackSecs >= 1 ? (e.calls / lookbackSecs).toFixed(1) + '/s' : ((e.calls / lookbackSecs) * 60).toFixed(1) + '/min')}</td>
            <td>
              <ErrorShare share={e.errorShare} />
            </td>
            <td class="num">{fmtMs(e.p50Ms)}</td>
            <td class="num">{fmtMs(e.p99Ms)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
