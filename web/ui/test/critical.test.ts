import { describe, expect, it } from 'vitest';
import { makeTrace } from '../src/lib/model';
import { criticalPath } from '../src/lib/critical';

const sum = (segs: { start: number; end: number }[]) => segs.reduce((a, s) => a + s.end - s.start, 0);

describe('critical path', () => {
  it('follows the last-finishing child, then what ended before it started', () => {
    // root 0-100; a 10-40 and b 20-60 overlap, c 65-90 runs after them.
    const tr = makeTrace('t', [
      { id: 'r', service: 's', op: 'root', start: 0, duration: 100 },
      { id: 'a', parent: 'r', service: 's', op: 'a', start: 10, duration: 30 },
      { id: 'b', parent: 'r', service: 's', op: 'b', start: 20, duration: 40 },
      { id: 'c', parent: 'r', service: 's', op: 'c', start: 65, duration: 25 },
      { id: 'c1', parent: 'c', service: 's', op: 'c1', start: 70, duration: 10 },
    ]);
    const segs = criticalPath(tr);
    expect(segs.map((s) => [s.spanID, s.start, s.end])).toEqual([
      ['r', 0, 20],
      ['b', 20, 60],
      ['r', 60, 65],
      ['c', 65, 70],
      ['c1', 70, 80],
      ['c', 80, 90],
      ['r', 90, 100],
    ]);
    expect(sum(segs)).toBe(100);
    expect(segs.some((s) => s.spanID === 'a')).toBe(false);
  });

  it('clips children that outlive their parent', () => {
    const tr = makeTrace('t', [
      { id: 'r', service: 's', op: 'root', start: 0, duration: 50 },
      { id: 'async', parent: 'r', service: 's', op: 'fire-and-forget', start: 40, duration: 100 },
    ]);
    const segs = criticalPath(tr);
    expect(segs.map((s) => [s.spanID, s.start, s.end])).toEqual([
      ['r', 0, 40],
      ['async', 40, 50],
    ]);
  });

  it('covers sequential children that touch, and zero-length spans', () => {
    const tr = makeTrace('t', [
      { id: 'r', service: 's', op: 'root', start: 0, duration: 30 },
      { id: 'a', parent: 'r', service: 's', op: 'a', start: 0, duration: 10 },
      { id: 'b', parent: 'r', service: 's', op: 'b', start: 10, duration: 10 },
      { id: 'z', parent: 'r', service: 's', op: 'z', start: 20, duration: 0 },
      { id: 'c', parent: 'r', service: 's', op: 'c', start: 20, duration: 10 },
    ]);
    const segs = criticalPath(tr);
    expect(sum(segs)).toBe(30);
    expect(segs.filter((s) => s.end > s.start).map((s) => s.spanID)).toEqual(['a', 'b', 'c']);
  });

  it('is fast and total on a wide 10,000-span trace', () => {
    const specs = [{ id: 'r', service: 's', op: 'root', start: 0, duration: 10000 }];
    for (let i = 0; i < 9999; i++) specs.push({ id: 'c' + i, parent: 'r', service: 's', op: 'c', start: i, duration: 1 } as any);
    const tr = makeTrace('wide', specs as any);
    const t0 = performance.now();
    const segs = criticalPath(tr);
    expect(performance.now() - t0).toBeLessThan(500);
    expect(sum(segs)).toBe(10000);
  });
});
