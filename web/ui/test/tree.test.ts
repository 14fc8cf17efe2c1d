import { describe, expect, it } from 'vitest';
import { fromJaeger, makeTrace } from '../src/lib/model';
import { collapseErrorFree, collapseToDepth, descendantCount, visibleRows } from '../src/lib/tree';

const t = () =>
  makeTrace('t1', [
    { id: 'c2', parent: 'r', service: 'b', op: 'second', start: 50, duration: 20 },
    { id: 'r', service: 'a', op: 'root', start: 0, duration: 100 },
    { id: 'c1', parent: 'r', service: 'b', op: 'first', start: 10, duration: 30 },
    { id: 'g1', parent: 'c1', service: 'c', op: 'grand', start: 15, duration: 5, error: true },
    { id: 'orphan', parent: 'missing', service: 'd', op: 'lost', start: 60, duration: 1 },
  ]);

describe('span tree', () => {
  it('links children in start order and makes spans with a missing parent roots', () => {
    const tr = t();
    expect(tr.roots.map((s) => s.spanID)).toEqual(['r', 'orphan']);
    expect(tr.byID.get('r')!.children.map((s) => s.spanID)).toEqual(['c1', 'c2']);
    expect(tr.byID.get('g1')!.depth).toBe(2);
    expect(tr.byID.get('orphan')!.depth).toBe(0);
    expect(tr.errorCount).toBe(1);
    expect(tr.services.map((s) => [s.name, s.spans, s.errors])).toEqual([['a', 1, 0], ['b', 2, 0], ['c', 1, 1], ['d', 1, 0]]);
    expect(tr.duration).toBe(100);
    expect(tr.rootService).toBe('a');
  });

  it('lists rows depth first and hides collapsed subtrees', () => {
    const tr = t();
    expect(visibleRows(tr, new Set()).map((s) => s.spanID)).toEqual(['r', 'c1', 'g1', 'c2', 'orphan']);
    expect(visibleRows(tr, new Set(['c1'])).map((s) => s.spanID)).toEqual(['r', 'c1', 'c2', 'orphan']);
    expect(visibleRows(tr, new Set(['r'])).map((s) => s.spanID)).toEqual(['r', 'orphan']);
    expect(descendantCount(tr.byID.get('r')!)).toBe(3);
    expect([...collapseToDepth(tr, 1)]).toEqual(['c1']);
    // Only c1's subtree holds the error: r and c1 stay open, nothing else has children.
    expect([...collapseErrorFree(tr)]).toEqual([]);
    const ok = makeTrace('t3', [
      { id: 'r', service: 'a', op: 'root', start: 0, duration: 10 },
      { id: 'x', parent: 'r', service: 'a', op: 'x', start: 1, duration: 2 },
      { id: 'y', parent: 'x', service: 'a', op: 'y', start: 1, duration: 1 },
      { id: 'z', parent: 'r', service: 'a', op: 'z', start: 5, duration: 2, error: true },
      { id: 'w', parent: 'z', service: 'a', op: 'w', start: 5, duration: 1 },
    ]);
    expect([...collapseErrorFree(ok)]).toEqual(['x']); // z failed itself: it stays open
  });

  it('survives a parent cycle in bad data, showing every span once', () => {
    const tr = makeTrace('t2', [
      { id: 'a', parent: 'b', service: 's', op: 'a', start: 0, duration: 10 },
      { id: 'b', parent: 'a', service: 's', op: 'b', start: 1, duration: 5 },
    ]);
    expect(visibleRows(tr, new Set()).length).toBe(2);
  });

  it('handles a 10,000-deep chain without recursion', () => {
    const specs = Array.from({ length: 10000 }, (_, i) => ({ id: 's' + i, parent: i ? 's' + (i - 1) : undefined, service: 'x', op: 'o', start: i, duration: 20000 - 2 * i }));
    const tr = makeTrace('deep', specs);
    expect(tr.byID.get('s9999')!.depth).toBe(9999);
    expect(visibleRows(tr, new Set()).length).toBe(10000);
  });

  it('splits Jaeger tags into span, resource and scope, and links into references', () => {
    const tr = fromJaeger({
      traceID: 'abc',
      processes: { p1: { serviceName: 'svc', tags: [{ key: 'host.name', type: 'string', value: 'h1' }] } },
      spans: [
        {
          traceID: 'abc', spanID: '1', operationName: 'op', startTime: 10, duration: 5, processID: 'p1',
          references: [{ refType: 'FOLLOWS_FROM', traceID: 'other', spanID: '9' }],
          tags: [
            { key: 'otel.scope.name', type: 'string', value: 'lib' },
            { key: 'span.kind', type: 'string', value: 'server' },
            { key: 'otel.status_code', type: 'string', value: 'ERROR' },
            { key: 'otel.status_description', type: 'string', value: 'boom' },
            { key: 'http.route', type: 'string', value: '/x' },
          ],
          logs: [{ timestamp: 12, fields: [{ key: 'event', type: 'string', value: 'exception' }, { key: 'exception.type', type: 'string', value: 'E' }] }],
        },
      ],
    });
    const s = tr.spans[0];
    expect(s.error).toBe(true);
    expect(s.statusMessage).toBe('boom');
    expect(s.kind).toBe('server');
    expect(s.tags.map((k) => k.key)).toEqual(['http.route']);
    expect(s.scope.map((k) => k.key)).toEqual(['otel.scope.name']);
    expect(s.resource[0].value).toBe('h1');
    expect(s.parentID).toBeNull();
    expect(s.links).toEqual([{ traceID: 'other', spanID: '9', refType: 'FOLLOWS_FROM' }]);
    expect(s.events[0].name).toBe('exception');
    expect(s.events[0].fields.map((f) => f.key)).toEqual(['exception.type']);
  });
});
