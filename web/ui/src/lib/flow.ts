import type { Span, Trace } from './model';
import { isServiceEntry, quantile } from './stats';

// Payment-flow aggregation: all traces of one entry operation folded into (1) a tree of
// hops — every place a request entered a service, keyed by the chain of hops above it —
// with counts, error share, latency and how often errors started there, and (2) the
// distinct paths (the ordered hops one trace took), each with its count, error share,
// latency and where its errors started.

export interface Entry {
  service?: string;
  operation: string;
}

export interface HopNode {
  key: string;
  service: string;
  operation: string;
  depth: number;
  // count of hop occurrences and of traces reaching the hop at least once.
  calls: number;
  traces: number;
  errors: number;
  // origins counts traces whose first failure happened inside this hop.
  origins: number;
  p50: number;
  p99: number;
  durations: number[];
  exampleOk: string[];
  exampleError: string[];
  children: HopNode[];
}

export interface FlowPath {
  signature: string;
  hops: string[];
  count: number;
  errorTraces: number;
  errorShare: number;
  p50: number;
  p99: number;
  // Where failures started (hop label) and the hops they spread to on the way up (the
  // failed ancestors' hops, nearest first), with how many traces failed that way.
  origins: { hop: string; spread: string[]; count: number }[];
  exampleOk: string[];
  exampleError: string[];
}

export interface Flow {
  entry: Entry;
  traces: number;
  errorTraces: number;
  root: HopNode | null;
  paths: FlowPath[];
}

const EXAMPLES = 5;

export function hopLabel(s: Span): string {
  return `${s.service} ${s.operation}`;
}

// findEntry returns the earliest span of t matching the entry operation.
export function findEntry(t: Trace, e: Entry): Span | undefined {
  for (const s of t.spans) if (s.operation === e.operation && (!e.service || s.service === e.service)) return s;
  return undefined;
}

// hopOf returns the service-entry span whose hop s belongs to (s itself when it is one).
export function hopOf(s: Span, top: Span): Span {
  let h: Span = s;
  while (h !== top && !isServiceEntry(h) && h.parent) h = h.parent;
  return h;
}

// errorOrigin finds where a trace's failure started, below top: among the error spans
// none of whose descendants erred (the deepest links of each error chain), the one that
// ended first — an error is reported up the chain after it happened. Undefined if no span
// under top erred.
export function errorOrigin(top: Span): Span | undefined {
  let best: Span | undefined;
  const stack: Span[] = [top];
  const hasErrBelow = new Map<Span, boolean>();
  // Post-order without recursion: a span's flag is known after its children's.
  const order: Span[] = [];
  while (stack.length) {
    const s = stack.pop()!;
    order.push(s);
    for (const c of s.children) stack.push(c);
  }
  for (let i = order.length - 1; i >= 0; i--) {
    const s = order[i];
    let below = false;
    for (const c of s.children) if (c.error || hasErrBelow.get(c)) below = true;
    hasErrBelow.set(s, below);
    if (s.error && !below) {
      const end = s.start + s.duration;
      if (!best || end < best.start + best.duration || (end === best.start + best.duration && s.start < best.start)) best = s;
    }
  }
  return best;
}

// spreadOf lists the hops an error reached on its way up from origin to top: the hops of
// origin's failed ancestors, nearest first, each once, origin's own hop left out.
export function spreadOf(origin: Span, top: Span): string[] {
  const out: string[] = [];
  const own = hopOf(origin, top);
  for (let a = origin.parent; a; a = a.parent) {
    if (a.error) {
      const h = hopOf(a, top);
      const label = hopLabel(h);
      if (h !== own && out[out.length - 1] !== label) out.push(label);
    }
    if (a === top) break;
  }
  return out;
}

interface Acc {
  node: HopNode;
  traceSeen: Set<string>;
}

// aggregateFlow folds the traces that contain the entry operation. Traces without it are
// skipped.
export function aggregateFlow(traces: Trace[], entry: Entry): Flow {
  const nodes = new Map<string, Acc>();
  const paths = new Map<string, { p: FlowPath; d: number[]; origins: Map<string, { hop: string; spread: string[]; count: number }> }>();
  let root: HopNode | null = null;
  let count = 0;
  let errorTraces = 0;

  const node = (key: string, s: Span, depth: number, parentKey: string | null): Acc => {
    let a = nodes.get(key);
    if (!a) {
      a = {
        node: {
          key, service: s.service, operation: s.operation, depth,
          calls: 0, traces: 0, errors: 0, origins: 0, p50: 0, p99: 0, durations: [],
          exampleOk: [], exampleError: [], children: [],
        },
        traceSeen: new Set(),
      };
      nodes.set(key, a);
      if (parentKey === null) root = a.node;
      else nodes.get(parentKey)!.node.children.push(a.node);
    }
    return a;
  };

  for (const t of traces) {
    const top = findEntry(t, entry);
    if (!top) continue;
    count++;
    const origin = errorOrigin(top);
    const originHop = origin ? hopOf(origin, top) : undefined;
    const traceErr = origin !== undefined || top.error;
    if (traceErr) errorTraces++;

    // Walk the entry's subtree; each hop span gets the key of the chain of hops above it.
    const hopErr = new Map<Span, boolean>();
    const hops: string[] = [];
    const stack: { s: Span; key: string; depth: number; hop: Span }[] = [];
    const rootKey = hopLabel(top);
    stack.push({ s: top, key: rootKey, depth: 0, hop: top });
    const hopKeys = new Map<Span, { key: string; depth: number; parentKey: string | null }>();
    hopKeys.set(top, { key: rootKey, depth: 0, parentKey: null });
    const ordered: Span[] = [];
    while (stack.length) {
      const { s, key, depth, hop } = stack.pop()!;
      if (s === hop) ordered.push(s);
      if (s.error) hopErr.set(hop, true);
      for (let i = s.children.length - 1; i >= 0; i--) {
        const c = s.children[i];
        if (isServiceEntry(c)) {
          // Repeated calls to the same hop (retries) share one node: the key is the chain.
          const ck = key + '\u0000' + hopLabel(c);
          hopKeys.set(c, { key: ck, depth: depth + 1, parentKey: key });
          stack.push({ s: c, key: ck, depth: depth + 1, hop: c });
        } else {
          stack.push({ s: c, key, depth, hop });
        }
      }
    }
    for (const h of ordered) {
      const hk = hopKeys.get(h)!;
      const a = node(hk.key, h, hk.depth, hk.parentKey);
      const n = a.node;
      n.calls++;
      n.durations.push(h.duration);
      const err = hopErr.get(h) === true;
      if (err) n.errors++;
      if (!a.traceSeen.has(t.traceID)) {
        a.traceSeen.add(t.traceID);
        n.traces++;
        if (originHop === h) n.origins++;
        const ex = err ? n.exampleError : n.exampleOk;
        if (ex.length < EXAMPLES) ex.push(t.traceID);
      }
      const label = hopLabel(h);
      if (hops.length && hops[hops.length - 1].replace(/ ×\d+$/, '') === label) {
        const m = / ×(\d+)$/.exec(hops[hops.length - 1]);
        hops[hops.length - 1] = `${label} ×${m ? +m[1] + 1 : 2}`;
      } else {
        hops.push(label);
      }
    }

    const sig = hops.join(' → ');
    let pa = paths.get(sig);
    if (!pa) {
      pa = {
        p: { signature: sig, hops, count: 0, errorTraces: 0, errorShare: 0, p50: 0, p99: 0, origins: [], exampleOk: [], exampleError: [] },
        d: [],
        origins: new Map(),
      };
      paths.set(sig, pa);
    }
    pa.p.count++;
    pa.d.push(top.duration);
    if (traceErr) {
      pa.p.errorTraces++;
      if (pa.p.exampleError.length < EXAMPLES) pa.p.exampleError.push(t.traceID);
      const where = originHop ? hopLabel(originHop) : hopLabel(top);
      const spread = origin ? spreadOf(origin, top) : [];
      const k = where + '\u0000' + spread.join('\u0000');
      const o = pa.origins.get(k);
      if (o) o.count++;
      else pa.origins.set(k, { hop: where, spread, count: 1 });
    } else if (pa.p.exampleOk.length < EXAMPLES) {
      pa.p.exampleOk.push(t.traceID);
    }
  }

  for (const { node: n } of nodes.values()) {
    n.p50 = quantile(n.durations, 0.5);
    n.p99 = quantile(n.durations, 0.99);
    n.children.sort((a, b) => b.traces - a.traces || a.key.localeCompare(b.key));
  }
  const outPaths = [...paths.values()].map(({ p, d, origins }) => ({
    ...p,
    errorShare: p.count ? p.errorTraces / p.count : 0,
    p50: quantile(d, 0.5),
    p99: quantile(d, 0.99),
    origins: [...origins.values()].sort((a, b) => b.count - a.count),
  }));
  outPaths.sort((a, b) => b.count - a.count || a.signature.localeCompare(b.signature));
  return { entry, traces: count, errorTraces, root, paths: outPaths };
}

// flattenHops lists the hop tree depth first, for display.
export function flattenHops(root: HopNode | null): HopNode[] {
  const out: HopNode[] = [];
  if (!root) return out;
  const stack = [root];
  while (stack.length) {
    const n = stack.pop()!;
    out.push(n);
    for (let i = n.children.length - 1; i >= 0; i--) stack.push(n.children[i]);
  }
  return out;
}

// ---- the server's flow (GET /spoor/api/v1/flows) ----

export interface APIHopRef {
  service: string;
  operation: string;
  spanKind: string;
}

export interface APIHop extends APIHopRef {
  depth: number;
  calls: number;
  traces: number;
  errors: number;
  errorShare: number;
  origins: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  exampleOk: string[];
  exampleError: string[];
  children: APIHop[];
}

export interface APIPath {
  hops: (APIHopRef & { calls: number })[];
  traces: number;
  errorTraces: number;
  errorShare: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  origins: { hop: APIHopRef; spread: APIHopRef[]; traces: number }[];
  exampleOk: string[];
  exampleError: string[];
}

export interface APIFlow {
  service: string;
  operation: string;
  limit: number;
  tracesExamined: number;
  truncated: boolean;
  traces: number;
  errorTraces: number;
  errorShare: number;
  root: APIHop | null;
  paths: APIPath[];
}

const refLabel = (h: APIHopRef) => `${h.service} ${h.operation}`;

// flowFromAPI turns the server's flow into the view's Flow (times in µs, hops labelled as
// aggregateFlow labels them).
export function flowFromAPI(f: APIFlow): Flow {
  const hop = (h: APIHop, parentKey: string | null): HopNode => {
    const key = (parentKey === null ? '' : parentKey + '\u0000') + refLabel(h) + '\u0000' + h.spanKind;
    return {
      key, service: h.service, operation: h.operation, depth: h.depth,
      calls: h.calls, traces: h.traces, errors: h.errors, origins: h.origins,
      p50: h.p50Ms * 1000, p99: h.p99Ms * 1000, durations: [],
      exampleOk: h.exampleOk ?? [], exampleError: h.exampleError ?? [],
      children: (h.children ?? []).map((c) => hop(c, key)),
    };
  };
  const paths: FlowPath[] = (f.paths ?? []).map((p) => {
    const hops = p.hops.map((h) => refLabel(h) + (h.calls > 1 ? ` ×${h.calls}` : ''));
    return {
      signature: hops.join(' → '), hops, count: p.traces, errorTraces: p.errorTraces, errorShare: p.errorShare,
      p50: p.p50Ms * 1000, p99: p.p99Ms * 1000,
      origins: (p.origins ?? []).map((o) => ({ hop: refLabel(o.hop), spread: o.spread.map(refLabel), count: o.traces })),
      exampleOk: p.exampleOk ?? [], exampleError: p.exampleError ?? [],
    };
  });
  return {
    entry: { service: f.service, operation: f.operation },
    traces: f.traces, errorTraces: f.errorTraces,
    root: f.root ? hop(f.root, null) : null,
    paths,
  };
}
