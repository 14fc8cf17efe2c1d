import type { Span, Trace } from './model';
import { errorOrigin, findEntry, type Entry } from './flow';
import { quantile } from './stats';

// Span-by-span comparison of a failing trace against a typical successful one. Spans are
// aligned by their position in the tree: the chain of (service, operation) from the root,
// plus the occurrence number among same-named siblings (the second retry matches the second
// retry).

export type RowStatus = 'same' | 'slower' | 'faster' | 'missing' | 'extra' | 'error';

export interface CompareRow {
  key: string;
  depth: number;
  service: string;
  operation: string;
  base?: Span;
  other?: Span;
  status: RowStatus;
  deltaUs: number;
  origin: boolean;
}

function keyed(t: Trace): { keys: Map<string, Span>; order: string[] } {
  const keys = new Map<string, Span>();
  const order: string[] = [];
  const stack: { s: Span; key: string }[] = [];
  const rootCount = new Map<string, number>();
  const push = (list: Span[], prefix: string, counts: Map<string, number>) => {
    const entries: { s: Span; key: string }[] = [];
    for (const c of list) {
      const name = `${c.service} ${c.operation}`;
      const n = (counts.get(name) ?? 0) + 1;
      counts.set(name, n);
      // NUL separates levels: operation names hold slashes (POST /checkout).
      entries.push({ s: c, key: `${prefix}\u0000${name}#${n}` });
    }
    for (let i = entries.length - 1; i >= 0; i--) stack.push(entries[i]);
  };
  push(t.roots, '', rootCount);
  while (stack.length) {
    const { s, key } = stack.pop()!;
    keys.set(key, s);
    order.push(key);
    push(s.children, key, new Map());
  }
  return { keys, order };
}

// Durations within this share (or 1 ms) of each other count as the same.
const SAME_SHARE = 0.2;
const SAME_US = 1000;

export function compareTraces(base: Trace, other: Trace): CompareRow[] {
  const a = keyed(base);
  const b = keyed(other);
  const origin = other.roots.length ? errorOrigin(other.roots[0]) : undefined;
  // Merge the two orders: the failing trace's order, with spans only the typical trace has
  // inserted after their nearest preceding key.
  const order: string[] = [];
  const inB = new Set(b.order);
  let bi = 0;
  for (const k of a.order) {
    if (inB.has(k)) {
      while (bi < b.order.length && b.order[bi] !== k) {
        if (!a.keys.has(b.order[bi])) order.push(b.order[bi]);
        bi++;
      }
      bi++;
    }
    order.push(k);
  }
  for (; bi < b.order.length; bi++) if (!a.keys.has(b.order[bi])) order.push(b.order[bi]);

  return order.map((key) => {
    const x = a.keys.get(key);
    const y = b.keys.get(key);
    const s = (y ?? x)!;
    let status: RowStatus;
    let delta = 0;
    if (!y) status = 'missing';
    else if (!x) status = y.error ? 'error' : 'extra';
    else {
      delta = y.duration - x.duration;
      if (y.error && !x.error) status = 'error';
      else if (Math.abs(delta) <= Math.max(SAME_US, SAME_SHARE * x.duration)) status = 'same';
      else status = delta > 0 ? 'slower' : 'faster';
    }
    return {
      key,
      depth: s.depth,
      service: s.service,
      operation: s.operation,
      base: x,
      other: y,
      status,
      deltaUs: delta,
      origin: !!y && y === origin,
    };
  });
}

// pickTypical chooses the successful trace to compare a failing one against: among the
// traces without an error span that contain the entry, the one whose entry duration is
// closest to their median, preferring traces crossing the same services as the failing one.
export function pickTypical(traces: Trace[], failing: Trace, entry?: Entry): Trace | undefined {
  const ok = traces.filter((t) => t.errorCount === 0 && t.traceID !== failing.traceID && (!entry || findEntry(t, entry)));
  if (!ok.length) return undefined;
  const sameServices = (t: Trace) => t.services.map((s) => s.name).join() === failing.services.map((s) => s.name).join();
  const pool = ok.filter(sameServices).length ? ok.filter(sameServices) : ok;
  const med = quantile(pool.map((t) => t.duration), 0.5);
  let best = pool[0];
  for (const t of pool) if (Math.abs(t.duration - med) < Math.abs(best.duration - med)) best = t;
  return best;
}
