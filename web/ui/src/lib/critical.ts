import type { Span, Trace } from './model';

// A stretch of time during which a span itself (not one of its children) is what the
// trace waits for.
export interface Segment {
  spanID: string;
  start: number;
  end: number;
}

// criticalPath computes the trace's critical path as Jaeger UI does: from the end of the
// longest root, repeatedly descend into the child that finished last before the current
// point in time; time not covered by such a child belongs to the span itself. Children are
// first clipped to their parent's interval (clock skew, async children that outlive the
// parent). Iterative, so deep traces cannot overflow the stack.
export function criticalPath(trace: Trace): Segment[] {
  if (!trace.roots.length) return [];
  let root = trace.roots[0];
  for (const r of trace.roots) if (r.duration > root.duration) root = r;

  // Clipped intervals, top down.
  const cs = new Map<Span, number>();
  const ce = new Map<Span, number>();
  cs.set(root, root.start);
  ce.set(root, root.start + root.duration);
  const stack: Span[] = [root];
  while (stack.length) {
    const p = stack.pop()!;
    const ps = cs.get(p)!;
    const pe = ce.get(p)!;
    for (const c of p.children) {
      const s = Math.min(Math.max(c.start, ps), pe);
      const e = Math.max(Math.min(c.start + c.duration, pe), s);
      cs.set(c, s);
      ce.set(c, e);
      stack.push(c);
    }
  }

  // Each span's children by clipped end, latest first, with a cursor: for one parent the
  // limit only moves back in time, so a child skipped once never qualifies again, and the
  // walk stays O(n log n) even for a root with thousands of children.
  const sorted = new Map<Span, Span[]>();
  const cursor = new Map<Span, number>();
  const segments: Segment[] = [];
  const visited = new Set<Span>();
  let cur: Span | null = root;
  let limit = ce.get(root)!;
  while (cur) {
    visited.add(cur);
    let kids = sorted.get(cur);
    if (!kids) {
      kids = [...cur.children].sort((x, y) => ce.get(y)! - ce.get(x)!);
      sorted.set(cur, kids);
      cursor.set(cur, 0);
    }
    let i: number = cursor.get(cur)!;
    while (i < kids.length && (visited.has(kids[i]) || ce.get(kids[i])! > limit)) i++;
    cursor.set(cur, i);
    const next: Span | null = i < kids.length ? kids[i] : null;
    if (next) {
      const nextEnd = ce.get(next)!;
      if (limit > nextEnd) segments.push({ spanID: cur.spanID, start: nextEnd, end: limit });
      cur = next;
      limit = nextEnd;
    } else {
      const s = cs.get(cur)!;
      if (limit > s || cur.duration === 0) segments.push({ spanID: cur.spanID, start: s, end: limit });
      if (cur === root) break;
      limit = s;
      cur = cur.parent;
    }
  }
  return segments.sort((a, b) => a.start - b.start);
}

// bySpan groups segments by span ID.
export function segmentsBySpan(segs: Segment[]): Map<string, Segment[]> {
  const m = new Map<string, Segment[]>();
  for (const s of segs) {
    let l = m.get(s.spanID);
    if (!l) m.set(s.spanID, (l = []));
    l.push(s);
  }
  return m;
}
