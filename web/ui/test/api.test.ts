import { describe, expect, it } from 'vitest';
import { parseAttrs, timeRange } from '../src/lib/api';
import { fmtDuration, parseDuration } from '../src/lib/format';

describe('search parameters', () => {
  it('parses attribute terms with =, != and =~, quoted or not', () => {
    expect(parseAttrs('payment.method=card  http.status!=200 error.type=~"time.*" "a b"="c d"')).toEqual([
      { key: 'payment.method', op: '=', value: 'card' },
      { key: 'http.status', op: '!=', value: '200' },
      { key: 'error.type', op: '=~', value: 'time.*' },
      { key: 'a b', op: '=', value: 'c d' },
    ]);
    expect(parseAttrs('')).toEqual([]);
  });

  it('turns relative and absolute ranges into µs', () => {
    const now = Date.UTC(2026, 0, 1, 12);
    expect(timeRange({ lookback: '1h', start: '', end: '' }, now)).toEqual([(now - 3600e3) * 1000, now * 1000]);
    const [s, e] = timeRange({ lookback: 'custom', start: '2026-01-01T10:00:00Z', end: '2026-01-01T11:00:00Z' }, now);
    expect(e - s).toBe(3600e6);
  });

  it('reads and writes durations', () => {
    expect(parseDuration('250ms')).toBe(250e3);
    expect(parseDuration('1.5s')).toBe(1.5e6);
    expect(parseDuration('300us')).toBe(300);
    expect(parseDuration('2m')).toBe(120e6);
    expect(parseDuration('1h')).toBe(3600e6);
    expect(parseDuration('12')).toBe(12e3);
    expect(parseDuration('fast')).toBeNaN();
    expect(fmtDuration(850)).toBe('850µs');
    expect(fmtDuration(12345)).toBe('12.3ms');
    expect(fmtDuration(1_250_000)).toBe('1.25s');
  });
});

describe('span status', () => {
  it('tells ok, error and unset apart from the Jaeger tags', async () => {
    const { fromJaeger } = await import('../src/lib/model');
    const span = (id: string, tags: { key: string; value: unknown }[]) => ({
      traceID: 't', spanID: id, operationName: 'op', startTime: 1, duration: 1, tags, processID: 'p',
    });
    const t = fromJaeger({
      traceID: 't',
      processes: { p: { serviceName: 's' } },
      spans: [span('a', [{ key: 'otel.status_code', value: 'OK' }]), span('b', [{ key: 'otel.status_code', value: 'ERROR' }]), span('c', [])],
    });
    const by = (id: string) => t.spans.find((s) => s.spanID === id)!;
    expect([by('a').ok, by('a').error]).toEqual([true, false]);
    expect([by('b').ok, by('b').error]).toEqual([false, true]);
    expect([by('c').ok, by('c').error]).toEqual([false, false]);
  });
});
