import type { Span, Trace } from './model';

// visibleRows lists the spans shown in the waterfall, depth first in start order, leaving
// out the descendants of collapsed spans. Iterative: deep traces must not overflow the stack.
export function visibleRows(trace: Trace, collapsed: ReadonlySet<string>): Span[] {
  const out: Span[] = [];
  const stack: Span[] = [];
  for (let i = trace.roots.length - 1; i >= 0; i--) stack.push(trace.roots[i]);
  while (stack.length) {
    const s = stack.pop()!;
    out.push(s);
    if (collapsed.has(s.spanID)) continue;
    for (let i = s.children.length - 1; i >= 0; i--) stack.push(s.children[i]);
  }
  return out;
}

// descendantCount counts every span below s.
export function descendantCount(s: Span): number {
  let n = 0;
  const stack = [...s.children];
  while (stack.length) {
    const c = stack.pop()!;
    n++;
    for (const g of c.children) stack.push(g);
  }
  return n;
}

// collapseToDepth returns the collapsed set that shows the tree down to depth d.
export function collapseToDepth(trace: Trace, d: number): Set<string> {
  const out = new Set<string>();
  for (const s of trace.spans) if (s.depth >= d && s.children.length) out.add(s.spanID);
  return out;
}

// ancestors lists s's ancestors, nearest first.
export function ancestors(s: Span): Span[] {
  const out: Span[] = [];
  for (let p = s.parent; p; p = p.parent) out.push(p);
  return out;
}

// collapseErrorFree returns the collapsed set that hides every subtree without an error
// span, so the paths to the errors stay open. One pass, children before parents.
export function collapseErrorFree(trace: Trace): Set<string> {
  const bad = new Set<Span>();
  const order: Span[] = [];
  const stack = [...trace.roots];
  while (stack.length) {
    const s = stack.pop()!;
    order.push(s);
    for (const c of s.children) stack.push(c);
  }
  for (let i = order.length - 1; i >= 0; i--) {
    const s = order[i];
    if (s.error || s.children.some((c) => bad.has(c))) bad.add(s);
  }
  const out = new Set<string>();
  for (const s of trace.spans) if (s.children.length && !bad.has(s)) out.add(s.spanID);
  return out;
}
