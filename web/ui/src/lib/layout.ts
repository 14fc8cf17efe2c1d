import type { Graph } from './api';

export const NW = 180;
export const NH = 46;

// layout places the service map: services in columns by their longest call chain from a
// caller-less service, cycles broken; within a column near their callers' rows.
export function layout(g: Graph): { pos: Map<string, { x: number; y: number }>; width: number; height: number } {
  const names = g.nodes.map((n) => n.name).sort();
  // Break cycles first: a depth-first walk from the caller-less services (then any left)
  // drops the edges that lead back to a service on the current path. Columns are then the
  // longest call chain over what remains, so a cycle cannot push services off the map.
  const out = new Map<string, string[]>(names.map((n) => [n, []]));
  const indeg = new Map<string, number>(names.map((n) => [n, 0]));
  for (const e of g.edges) {
    if (e.parent === e.child || !out.has(e.parent) || !out.has(e.child)) continue;
    out.get(e.parent)!.push(e.child);
    indeg.set(e.child, indeg.get(e.child)! + 1);
  }
  const state = new Map<string, number>(); // 1 on the path, 2 done
  const dag = new Map<string, string[]>(names.map((n) => [n, []]));
  const visit = (root: string) => {
    const stack: { n: string; i: number }[] = [{ n: root, i: 0 }];
    state.set(root, 1);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const kids = out.get(top.n)!;
      if (top.i >= kids.length) {
        state.set(top.n, 2);
        stack.pop();
        continue;
      }
      const c = kids[top.i++];
      if (state.get(c) === 1) continue; // back edge
      dag.get(top.n)!.push(c);
      if (!state.has(c)) {
        state.set(c, 1);
        stack.push({ n: c, i: 0 });
      }
    }
  };
  for (const n of names) if (indeg.get(n) === 0 && !state.has(n)) visit(n);
  for (const n of names) if (!state.has(n)) visit(n);
  const layer = new Map(names.map((n) => [n, 0]));
  // Longest path on the DAG, in topological order (Kahn).
  const din = new Map<string, number>(names.map((n) => [n, 0]));
  for (const n of names) for (const c of dag.get(n)!) din.set(c, din.get(c)! + 1);
  const queue = names.filter((n) => din.get(n) === 0);
  while (queue.length) {
    const n = queue.shift()!;
    for (const c of dag.get(n)!) {
      layer.set(c, Math.max(layer.get(c)!, layer.get(n)! + 1));
      din.set(c, din.get(c)! - 1);
      if (din.get(c) === 0) queue.push(c);
    }
  }
  const cols = new Map<number, string[]>();
  for (const n of names) {
    const l = layer.get(n)!;
    if (!cols.has(l)) cols.set(l, []);
    cols.get(l)!.push(n);
  }
  const colW = 340;
  const rowH = 104;
  const maxRows = Math.max(1, ...[...cols.values()].map((c) => c.length));
  const pos = new Map<string, { x: number; y: number }>();
  // Columns left to right; within a column, services sit near the mean row of their
  // callers (one barycentre sweep), which keeps fan-outs from crossing.
  const rowOf = new Map<string, number>();
  for (const l of [...cols.keys()].sort((a, b) => a - b)) {
    const c = cols.get(l)!;
    const bary = (n: string) => {
      const ps = g.edges.filter((e) => e.child === n && rowOf.has(e.parent)).map((e) => rowOf.get(e.parent)!);
      return ps.length ? ps.reduce((a, b) => a + b, 0) / ps.length : Infinity;
    };
    const key = new Map(c.map((n) => [n, bary(n)]));
    c.sort((a, b) => key.get(a)! - key.get(b)! || (a < b ? -1 : 1));
    const off = (maxRows - c.length) / 2;
    c.forEach((n, i) => {
      rowOf.set(n, off + i);
      pos.set(n, { x: 30 + l * colW, y: 30 + (off + i) * rowH });
    });
  }
  const maxLayer = Math.max(0, ...layer.values());
  return { pos, width: 30 + (maxLayer + 1) * colW - (colW - NW) + 30, height: 30 + maxRows * rowH };
}

