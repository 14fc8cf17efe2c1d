import { describe, expect, it } from 'vitest';
import { layout, NH, NW } from '../src/lib/layout';
import type { Graph } from '../src/lib/api';

const graph = (pairs: [string, string][]): Graph => {
  const names = [...new Set(pairs.flat())].sort();
  return {
    nodes: names.map((name) => ({ name, instrumented: true })),
    edges: pairs.map(([parent, child]) => ({ parent, child, calls: 1, errors: 0, errorShare: 0, p50Ms: 1, p99Ms: 1 })),
    source: 'traces',
    note: '',
  };
};

describe('service map layout', () => {
  it('puts callers left of callees, by longest chain', () => {
    const { pos } = layout(graph([['gw', 'orders'], ['orders', 'payments'], ['payments', 'fraud'], ['orders', 'notify'], ['payments', 'notify']]));
    const x = (n: string) => pos.get(n)!.x;
    expect(x('gw')).toBeLessThan(x('orders'));
    expect(x('orders')).toBeLessThan(x('payments'));
    expect(x('payments')).toBeLessThan(x('notify'));
    expect(x('payments')).toBeLessThan(x('fraud'));
  });

  it('keeps every service of a cyclic graph inside the picture, in few columns', () => {
    const g = graph([['a', 'b'], ['b', 'c'], ['c', 'a'], ['c', 'd'], ['d', 'b'], ['e', 'a']]);
    const { pos, width, height } = layout(g);
    const xs = new Set<number>();
    for (const n of g.nodes) {
      const p = pos.get(n.name)!;
      expect(p.x + NW).toBeLessThanOrEqual(width);
      expect(p.y + NH).toBeLessThanOrEqual(height);
      xs.add(p.x);
    }
    expect(xs.size).toBeLessThanOrEqual(5);
  });
});
