import { describe, expect, it } from 'vitest';
import { makeTrace, type SpanSpec } from '../src/lib/model';
import { aggregateFlow, errorOrigin, flattenHops, flowFromAPI, type APIFlow, type APIHop } from '../src/lib/flow';
import { compareTraces, pickTypical } from '../src/lib/compare';
import { edgesFromTraces, quantile, serviceStatsFromTraces } from '../src/lib/stats';

// A checkout: gateway → orders → payments (→ fraud); the payment can fail in fraud, the
// failure reported up through payments and orders.
function checkout(id: string, opts: { fraudFails?: boolean; dur?: number; retryInventory?: boolean } = {}) {
  const d = opts.dur ?? 100;
  const specs: SpanSpec[] = [
    { id: id + 'gw', service: 'gateway', op: 'POST /checkout', start: 0, duration: d, kind: 'server', error: opts.fraudFails },
    { id: id + 'gwc', parent: id + 'gw', service: 'gateway', op: 'CreateOrder', start: 1, duration: d - 2, kind: 'client', error: opts.fraudFails },
    { id: id + 'ord', parent: id + 'gwc', service: 'orders', op: 'CreateOrder', start: 2, duration: d - 4, kind: 'server', error: opts.fraudFails },
    { id: id + 'db', parent: id + 'ord', service: 'orders', op: 'INSERT', start: 3, duration: 5, kind: 'client' },
    { id: id + 'inv', parent: id + 'ord', service: 'inventory', op: 'reserve', start: 9, duration: 5, kind: 'server' },
    { id: id + 'pay', parent: id + 'ord', service: 'payments', op: 'charge', start: 20, duration: d / 2, kind: 'server', error: opts.fraudFails },
    { id: id + 'fr', parent: id + 'pay', service: 'fraud', op: 'score', start: 22, duration: 10, kind: 'server', error: opts.fraudFails },
  ];
  if (opts.retryInventory) specs.push({ id: id + 'inv2', parent: id + 'ord', service: 'inventory', op: 'reserve', start: 15, duration: 4, kind: 'server' });
  return makeTrace(id, specs);
}

describe('flow aggregation', () => {
  const traces = [
    checkout('a'), checkout('b', { dur: 200 }), checkout('c', { fraudFails: true }), checkout('d', { retryInventory: true }),
    makeTrace('other', [{ id: 'x', service: 'gateway', op: 'GET /health', start: 0, duration: 1 }]),
  ];
  const flow = aggregateFlow(traces, { service: 'gateway', operation: 'POST /checkout' });

  it('counts only traces of the entry operation', () => {
    expect(flow.traces).toBe(4);
    expect(flow.errorTraces).toBe(1);
  });

  it('folds hops into a tree with counts, errors and where errors start', () => {
    const hops = flattenHops(flow.root);
    const by = (svc: string) => hops.find((h) => h.service === svc)!;
    expect(hops.map((h) => [h.depth, h.service])).toEqual([[0, 'gateway'], [1, 'orders'], [2, 'inventory'], [2, 'payments'], [3, 'fraud']]);
    expect(by('gateway').traces).toBe(4);
    expect(by('inventory').traces).toBe(4);
    expect(by('inventory').calls).toBe(5); // the retry
    expect(by('fraud').errors).toBe(1);
    expect(by('fraud').origins).toBe(1);
    expect(by('payments').origins).toBe(0);
    expect(by('payments').errors).toBe(1); // the failure spread up
    expect(by('fraud').exampleError).toEqual(['c']);
  });

  it('lists distinct paths with error share and origin', () => {
    expect(flow.paths.length).toBe(2);
    const main = flow.paths[0];
    expect(main.count).toBe(3);
    expect(main.hops).toEqual(['gateway POST /checkout', 'orders CreateOrder', 'inventory reserve', 'payments charge', 'fraud score']);
    expect(main.errorTraces).toBe(1);
    expect(main.errorShare).toBeCloseTo(1 / 3);
    expect(main.origins).toEqual([{ hop: 'fraud score', spread: ['payments charge', 'orders CreateOrder', 'gateway POST /checkout'], count: 1 }]);
    expect(main.exampleError).toEqual(['c']);
    expect(flow.paths[1].hops).toContain('inventory reserve ×2');
    expect(main.p50).toBe(100);
  });

  it('finds the first failure at the deepest error', () => {
    const t = checkout('z', { fraudFails: true });
    expect(errorOrigin(t.roots[0])!.spanID).toBe('zfr');
    expect(errorOrigin(checkout('ok').roots[0])).toBeUndefined();
  });
});

describe('compare', () => {
  it('aligns spans by tree position and marks failed, missing and slower spans', () => {
    const ok = checkout('ok', { dur: 100 });
    const bad = checkout('bad', { fraudFails: true, dur: 300, retryInventory: true });
    const rows = compareTraces(ok, bad);
    const by = (svc: string, n = 1) => rows.filter((r) => r.service === svc)[n - 1];
    expect(by('fraud').status).toBe('error');
    expect(by('fraud').origin).toBe(true);
    expect(by('orders', 2).status).toBe('same'); // INSERT 5 vs 5
    expect(by('inventory', 2).status).toBe('extra'); // the retry exists only in the failing trace
    expect(rows.length).toBe(8);
    expect(rows.map((r) => r.depth)).toEqual([0, 1, 2, 3, 3, 3, 3, 4]);
    const okOnly = compareTraces(bad, ok).filter((r) => r.status === 'missing');
    expect(okOnly.length).toBe(1);
  });

  it('picks a typical success near the median of the same shape', () => {
    const pool = [checkout('s1', { dur: 90 }), checkout('s2', { dur: 100 }), checkout('s3', { dur: 500 }), checkout('f', { fraudFails: true })];
    expect(pickTypical(pool, pool[3], { operation: 'POST /checkout' })!.traceID).toBe('s2');
    expect(pickTypical([pool[3]], pool[3])).toBeUndefined();
  });
});

describe('stats', () => {
  it('quantiles by nearest rank', () => {
    expect(quantile([5, 1, 3, 2, 4], 0.5)).toBe(3);
    expect(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.99)).toBe(10);
    expect(Number.isNaN(quantile([], 0.5))).toBe(true);
  });

  it('derives service edges and RED from traces', () => {
    const traces = [checkout('a'), checkout('b', { fraudFails: true })];
    const edges = edgesFromTraces(traces);
    expect(edges.map((e) => `${e.parent}->${e.child}`)).toEqual(['gateway->orders', 'orders->inventory', 'orders->payments', 'payments->fraud']);
    const fraud = edges.find((e) => e.child === 'fraud')!;
    expect([fraud.calls, fraud.errors, fraud.errorShare]).toEqual([2, 1, 0.5]);
    const red = serviceStatsFromTraces(traces, 0, 10e6, false);
    const gw = red.find((s) => s.service === 'gateway')!;
    expect(gw.requests).toBe(2);
    expect(gw.ratePerSec).toBeCloseTo(0.2);
    expect(red.find((s) => s.service === 'orders')!.requests).toBe(2); // INSERT is not an entry
  });
});

describe('server flow', () => {
  it('turns /spoor/api/v1/flows into the view model', () => {
    const ref = (service: string, operation: string) => ({ service, operation, spanKind: 'server' });
    const hop = (service: string, operation: string, depth: number, extra: Partial<APIHop> = {}): APIHop => ({
      ...ref(service, operation), depth, calls: 2, traces: 2, errors: 0, errorShare: 0, origins: 0,
      p50Ms: 1.5, p95Ms: 2, p99Ms: 2.25, exampleOk: ['a'], exampleError: [], children: [], ...extra,
    });
    const api: APIFlow = {
      service: 'gateway', operation: 'POST /checkout', limit: 500, tracesExamined: 2, truncated: false, traces: 2, errorTraces: 1, errorShare: 0.5,
      root: hop('gateway', 'POST /checkout', 0, { children: [hop('fraud', 'score', 1, { errors: 1, origins: 1, exampleError: ['b'] })] }),
      paths: [{
        hops: [{ ...ref('gateway', 'POST /checkout'), calls: 1 }, { ...ref('fraud', 'score'), calls: 2 }],
        traces: 2, errorTraces: 1, errorShare: 0.5, p50Ms: 10, p95Ms: 12, p99Ms: 12,
        origins: [{ hop: ref('fraud', 'score'), spread: [ref('gateway', 'POST /checkout')], traces: 1 }],
        exampleOk: ['a'], exampleError: ['b'],
      }],
    };
    const f = flowFromAPI(api);
    expect(f.traces).toBe(2);
    expect(f.errorTraces).toBe(1);
    const hops = flattenHops(f.root);
    expect(hops.map((h) => [h.depth, h.service, h.p50, h.p99])).toEqual([[0, 'gateway', 1500, 2250], [1, 'fraud', 1500, 2250]]);
    expect(hops[1].origins).toBe(1);
    expect(hops[1].key.startsWith(hops[0].key)).toBe(true);
    expect(f.paths[0].hops).toEqual(['gateway POST /checkout', 'fraud score ×2']);
    expect(f.paths[0].origins).toEqual([{ hop: 'fraud score', spread: ['gateway POST /checkout'], count: 1 }]);
    expect(f.paths[0].p50).toBe(10000);
  });
});
