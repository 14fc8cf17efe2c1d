import type { Span, Trace } from './model';

// quantile of values by nearest rank (q in [0,1]); NaN when empty. Sorts a copy.
export function quantile(values: number[], q: number): number {
  if (!values.length) return NaN;
  const v = [...values].sort((a, b) => a - b);
  const i = Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1));
  return v[i];
}

// isServiceEntry reports whether a span is where a request enters its service: a root, a
// server or consumer span, or a span whose parent ran in another service.
export function isServiceEntry(s: Span): boolean {
  if (!s.parent) return true;
  if (s.kind === 'server' || s.kind === 'consumer') return true;
  return s.parent.service !== s.service;
}

export interface ServiceStats {
  service: string;
  requests: number;
  errors: number;
  ratePerSec: number;
  errorShare: number;
  p50Ms: number;
  p99Ms: number;
  source: 'rollups' | 'traces';
  // Requests and errors per minute over the window, oldest first (SPARK_BUCKETS).
  spark?: { calls: number[]; errors: number[] };
}

export const SPARK_BUCKETS = 60;

// sparkIndex places time t (µs) in one of SPARK_BUCKETS equal buckets of [from, to].
export function sparkIndex(t: number, from: number, to: number): number {
  const i = Math.floor(((t - from) / Math.max(1, to - from)) * SPARK_BUCKETS);
  return Math.min(SPARK_BUCKETS - 1, Math.max(0, i));
}

// serviceStatsFromTraces estimates RED per service from a sample of traces: requests are
// the service's entry spans, and the rate divides them by the time the sample covers
// (from windowStart, or the oldest trace when the search hit its limit, to now).
export function serviceStatsFromTraces(traces: Trace[], windowStartUs: number, nowUs: number, limitHit: boolean): ServiceStats[] {
  let from = windowStartUs;
  if (limitHit && traces.length) from = Math.max(from, Math.min(...traces.map((t) => t.start)));
  const secs = Math.max(1, (nowUs - from) / 1e6);
  const acc = new Map<string, { n: number; e: number; d: number[]; calls: number[]; errors: number[] }>();
  for (const t of traces) {
    for (const s of t.spans) {
      if (!isServiceEntry(s)) continue;
      let a = acc.get(s.service);
      if (!a) acc.set(s.service, (a = { n: 0, e: 0, d: [], calls: new Array(SPARK_BUCKETS).fill(0), errors: new Array(SPARK_BUCKETS).fill(0) }));
      a.n++;
      const b = sparkIndex(s.start, windowStartUs, nowUs);
      a.calls[b]++;
      if (s.error) {
        a.e++;
        a.errors[b]++;
      }
      a.d.push(s.duration);
    }
  }
  return [...acc.entries()]
    .map(([service, a]) => ({
      service,
      requests: a.n,
      errors: a.e,
      ratePerSec: a.n / secs,
      errorShare: a.n ? a.e / a.n : 0,
      p50Ms: quantile(a.d, 0.5) / 1000,
      p99Ms: quantile(a.d, 0.99) / 1000,
      source: 'traces' as const,
      spark: { calls: a.calls, errors: a.errors },
    }))
    .sort((x, y) => x.service.localeCompare(y.service));
}

export interface Edge {
  parent: string;
  child: string;
  calls: number;
  errors: number;
  errorShare: number;
  p50Ms: number;
  p99Ms: number;
}

// edgesFromTraces derives service-graph edges: a call is a span whose parent ran in
// another service; it failed when that span erred; its latency is that span's duration.
export function edgesFromTraces(traces: Trace[]): Edge[] {
  const acc = new Map<string, { parent: string; child: string; n: number; e: number; d: number[] }>();
  for (const t of traces) {
    for (const s of t.spans) {
      if (!s.parent || s.parent.service === s.service) continue;
      const k = s.parent.service + '\u0000' + s.service;
      let a = acc.get(k);
      if (!a) acc.set(k, (a = { parent: s.parent.service, child: s.service, n: 0, e: 0, d: [] }));
      a.n++;
      if (s.error) a.e++;
      a.d.push(s.duration);
    }
  }
  return [...acc.values()]
    .map((a) => ({
      parent: a.parent,
      child: a.child,
      calls: a.n,
      errors: a.e,
      errorShare: a.n ? a.e / a.n : 0,
      p50Ms: quantile(a.d, 0.5) / 1000,
      p99Ms: quantile(a.d, 0.99) / 1000,
    }))
    .sort((x, y) => x.parent.localeCompare(y.parent) || x.child.localeCompare(y.child));
}
