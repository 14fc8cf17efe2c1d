import { fromJaeger, type JaegerTrace, type Trace } from './model';
import { edgesFromTraces, serviceStatsFromTraces, sparkIndex, SPARK_BUCKETS, type Edge, type ServiceStats } from './stats';
import { goDuration, parseDuration } from './format';
import { aggregateFlow, flowFromAPI, type APIFlow, type Flow } from './flow';

// The data layer. Spoor's own API (/spoor/api/v1: search with summaries and cursors, RED
// and service-graph rollups, alerts) is used when it answers; when a build does not have
// it (404, or 501 from a store without rollups) every view falls back to the Jaeger /api
// surface and computes what it needs from traces, and says so.

export class HttpError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

// unavailable reports answers that mean "this endpoint does not exist here".
export function unavailable(e: unknown): boolean {
  return e instanceof HttpError && (e.status === 404 || e.status === 501 || e.status === 405);
}

// The bearer token for a Spoor started with SPOOR_QUERY_AUTH_TOKEN, kept in this browser.
const TOKEN_KEY = 'spoor.token';
export function setToken(token: string): void {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

async function getJSON<T>(url: string, signal?: AbortSignal): Promise<T> {
  let resp: Response;
  const headers: Record<string, string> = { Accept: 'application/json' };
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    resp = await fetch(url, { signal, headers });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new HttpError(0, `Spoor did not answer (${(e as Error).message}). Is it running?`);
  }
  const text = await resp.text();
  let body: any = undefined;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON: keep the text for the message */
  }
  if (!resp.ok) {
    const msg =
      body?.errors?.[0]?.msg ?? body?.error?.message ?? (typeof body === 'string' ? body : '') ?? '';
    throw new HttpError(resp.status, `${resp.status} ${resp.statusText}${msg ? ': ' + msg : text && !body ? ': ' + text.slice(0, 200) : ''}`);
  }
  return body as T;
}

interface Envelope<T> {
  data: T;
  errors?: { code?: number; msg: string; traceID?: string }[] | null;
}

export async function getServices(signal?: AbortSignal): Promise<string[]> {
  const r = await getJSON<Envelope<string[]>>('/api/services', signal);
  return (r.data ?? []).slice().sort();
}

export async function getOperations(service: string, signal?: AbortSignal): Promise<string[]> {
  const r = await getJSON<Envelope<string[]>>(`/api/services/${encodeURIComponent(service)}/operations`, signal);
  return (r.data ?? []).slice().sort();
}

export async function getTrace(id: string, signal?: AbortSignal): Promise<{ trace: Trace; raw: JaegerTrace }> {
  const r = await getJSON<Envelope<JaegerTrace[]>>(`/api/traces/${encodeURIComponent(id)}`, signal);
  if (!r.data?.length) throw new HttpError(404, `trace ${id} not found`);
  // Marks for make bench: where the time of opening a big trace goes.
  performance.mark('trace:json');
  const trace = fromJaeger(r.data[0]);
  performance.mark('trace:model');
  return { trace, raw: r.data[0] };
}

// ---- search ----

export interface SearchQuery {
  service: string;
  operation: string;
  // attrs: "key=value" terms separated by spaces; "key!=value" negates, "key=~re" is a
  // regular expression (Spoor's API only).
  attrs: string;
  // status: '' any, 'error' a matching span failed, 'trace-error' any span failed, 'ok' a
  // matching span's status is OK, 'unset' a matching span's status is unset.
  status: string;
  minDuration: string;
  maxDuration: string;
  minTraceDuration: string;
  maxTraceDuration: string;
  // lookback like '1h', or 'custom' with start/end (datetime-local strings).
  lookback: string;
  start: string;
  end: string;
  limit: number;
  // at anchors a relative range (unix ms): the pages after the first carry the first's
  // anchor, so a cursor always continues the same window.
  at: string;
}

export const emptyQuery: SearchQuery = {
  service: '', operation: '', attrs: '', status: '', minDuration: '', maxDuration: '',
  minTraceDuration: '', maxTraceDuration: '', lookback: '1h', start: '', end: '', limit: 20, at: '',
};

export interface ServiceSpanCount {
  name: string;
  spanCount: number;
  errorCount: number;
}

export interface Summary {
  traceID: string;
  rootService: string;
  rootOperation: string;
  start: number; // µs
  duration: number; // µs
  spanCount: number;
  errorCount: number;
  services: ServiceSpanCount[];
}

export interface SearchPage {
  summaries: Summary[];
  nextCursor: string;
  source: 'spoor' | 'jaeger';
  // total: how many traces the whole search matches, when the server says (exact, or an
  // upper bound).
  total?: { count: number; exact: boolean };
  // notes say what the fallback could not do on the server.
  notes: string[];
}

const lookbacks: Record<string, number> = {
  '5m': 300, '15m': 900, '30m': 1800, '1h': 3600, '3h': 10800, '6h': 21600, '12h': 43200,
  '24h': 86400, '2d': 172800, '7d': 604800,
};
export const lookbackChoices = Object.keys(lookbacks);

// timeRange turns the query's range into µs [start, end].
export function timeRange(q: Pick<SearchQuery, 'lookback' | 'start' | 'end'> & { at?: string }, nowMs = Date.now()): [number, number] {
  if (q.at && Number(q.at) > 0) nowMs = Number(q.at);
  if (q.lookback === 'custom') {
    const s = q.start ? Date.parse(q.start) : nowMs - 3600e3;
    const e = q.end ? Date.parse(q.end) : nowMs;
    return [(isNaN(s) ? nowMs - 3600e3 : s) * 1000, (isNaN(e) ? nowMs : e) * 1000];
  }
  const secs = lookbacks[q.lookback] ?? 3600;
  return [(nowMs - secs * 1000) * 1000, nowMs * 1000];
}

export interface AttrTerm {
  key: string;
  op: '=' | '!=' | '=~';
  value: string;
}

// parseAttrs reads `key=value key2!=v "key 3"="a b"`-style terms.
export function parseAttrs(s: string): AttrTerm[] {
  const out: AttrTerm[] = [];
  const re = /\s*(?:"([^"]*)"|([^\s=!"]+))\s*(!=|=~|=)\s*(?:"([^"]*)"|(\S*))/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) {
    const key = m[1] ?? m[2];
    if (!key) continue;
    out.push({ key, op: m[3] as AttrTerm['op'], value: m[4] ?? m[5] ?? '' });
  }
  return out;
}

function toMicros(s: string): number | undefined {
  if (!s.trim()) return undefined;
  const us = parseDuration(s);
  if (isNaN(us)) throw new HttpError(400, `"${s}" is not a duration: write 250ms, 1.5s, 300us, 2m or 1h`);
  return us;
}

let spoorSearchMissing = false;

export async function search(q: SearchQuery, cursor: string, signal?: AbortSignal): Promise<SearchPage> {
  if (!spoorSearchMissing && !cursor.startsWith('jaeger:')) {
    try {
      return await spoorSearch(q, cursor, signal);
    } catch (e) {
      if (!unavailable(e)) throw e;
      spoorSearchMissing = true;
    }
  }
  return jaegerSearch(q, cursor, signal);
}

async function spoorSearch(q: SearchQuery, cursor: string, signal?: AbortSignal): Promise<SearchPage> {
  const p = new URLSearchParams();
  if (q.service) p.set('service', q.service);
  if (q.operation) p.set('operation', q.operation);
  const [s, e] = timeRange(q);
  p.set('start', new Date(s / 1000).toISOString());
  p.set('end', new Date(e / 1000).toISOString());
  for (const [name, v] of [
    ['minDuration', q.minDuration], ['maxDuration', q.maxDuration],
    ['minTraceDuration', q.minTraceDuration], ['maxTraceDuration', q.maxTraceDuration],
  ] as const) {
    const us = toMicros(v);
    if (us !== undefined) p.set(name, goDuration(us));
  }
  if (q.status === 'error' || q.status === 'ok' || q.status === 'unset') p.set('status', q.status);
  if (q.status === 'trace-error') p.set('traceStatus', 'error');
  for (const t of parseAttrs(q.attrs)) {
    if (t.op === '=') p.append('attr', `${t.key}=${t.value}`);
    else if (t.op === '!=') p.append('notAttr', `${t.key}=${t.value}`);
    else p.append('attrMatch', `${t.key}=${t.value}`);
  }
  p.set('limit', String(q.limit));
  if (cursor) p.set('cursor', cursor);
  const r = await getJSON<{ traces: any[]; nextCursor: string; estimatedTotal?: number; estimatedTotalExact?: boolean }>(
    `/spoor/api/v1/search?${p}`, signal);
  return {
    summaries: r.traces.map((t) => ({
      traceID: t.traceId,
      rootService: t.rootService,
      rootOperation: t.rootOperation,
      start: Number(BigInt(t.startUnixNano) / 1000n),
      duration: t.durationNanos / 1000,
      spanCount: t.spanCount,
      errorCount: t.errorCount,
      services: t.services ?? [],
    })),
    nextCursor: r.nextCursor ?? '',
    source: 'spoor',
    total: r.estimatedTotal === undefined ? undefined : { count: r.estimatedTotal, exact: !!r.estimatedTotalExact },
    notes: [],
  };
}

export function summarize(t: Trace): Summary {
  return {
    traceID: t.traceID,
    rootService: t.rootService,
    rootOperation: t.rootOperation,
    start: t.start,
    duration: t.duration,
    spanCount: t.spans.length,
    errorCount: t.errorCount,
    services: t.services.map((s) => ({ name: s.name, spanCount: s.spans, errorCount: s.errors })),
  };
}

// jaegerTraces runs a Jaeger /api/traces search and returns whole traces.
export async function jaegerTraces(
  p: { service?: string; operation?: string; tags?: Record<string, string>; start: number; end: number; minDuration?: number; maxDuration?: number; limit: number },
  signal?: AbortSignal,
): Promise<Trace[]> {
  const u = new URLSearchParams();
  if (p.service) u.set('service', p.service);
  if (p.operation) u.set('operation', p.operation);
  if (p.tags && Object.keys(p.tags).length) u.set('tags', JSON.stringify(p.tags));
  u.set('start', String(Math.floor(p.start)));
  u.set('end', String(Math.ceil(p.end)));
  if (p.minDuration) u.set('minDuration', goDuration(p.minDuration));
  if (p.maxDuration) u.set('maxDuration', goDuration(p.maxDuration));
  u.set('limit', String(p.limit));
  const r = await getJSON<Envelope<JaegerTrace[]>>(`/api/traces?${u}`, signal);
  return (r.data ?? []).map(fromJaeger);
}

// jaegerSearch is the fallback: the Jaeger search cannot filter on status, trace duration,
// negation or regular expressions, so it fetches more and filters here; its cursor is the
// end of the next window (just before the oldest trace seen).
async function jaegerSearch(q: SearchQuery, cursor: string, signal?: AbortSignal): Promise<SearchPage> {
  const [s, e0] = timeRange(q);
  const e = cursor.startsWith('jaeger:') ? Number(cursor.slice(7)) : e0;
  const terms = parseAttrs(q.attrs);
  const tags: Record<string, string> = {};
  for (const t of terms) if (t.op === '=') tags[t.key] = t.value;
  const clientSide = terms.some((t) => t.op !== '=') || !!q.status || !!q.minTraceDuration || !!q.maxTraceDuration;
  const fetchLimit = clientSide ? Math.min(1500, q.limit * 10) : q.limit;
  const traces = await jaegerTraces(
    { service: q.service, operation: q.operation, tags, start: s, end: e, minDuration: toMicros(q.minDuration), maxDuration: toMicros(q.maxDuration), limit: fetchLimit },
    signal,
  );
  traces.sort((a, b) => b.start - a.start);
  const minT = toMicros(q.minTraceDuration);
  const maxT = toMicros(q.maxTraceDuration);
  const kept = traces.filter((t) => {
    if (minT !== undefined && t.duration < minT) return false;
    if (maxT !== undefined && t.duration > maxT) return false;
    const spanOK = (sp: Trace['spans'][number]) => {
      if (q.service && sp.service !== q.service) return false;
      if (q.operation && sp.operation !== q.operation) return false;
      for (const term of terms) {
        const all = [...sp.tags, ...sp.resource, ...sp.scope];
        const vals = all.filter((kv) => kv.key === term.key).map((kv) => String(kv.value));
        if (term.op === '!=' && vals.includes(term.value)) return false;
        if (term.op === '=~') {
          let re: RegExp;
          try {
            re = new RegExp(term.value);
          } catch {
            return false;
          }
          if (!vals.some((v) => re.test(v))) return false;
        }
      }
      if (q.status === 'error' && !sp.error) return false;
      if (q.status === 'ok' && !sp.ok) return false;
      if (q.status === 'unset' && (sp.ok || sp.error)) return false;
      return true;
    };
    if (q.status === 'trace-error' && t.errorCount === 0) return false;
    return t.spans.some(spanOK);
  });
  const page = kept.slice(0, q.limit);
  const full = traces.length >= fetchLimit;
  let next = '';
  if (page.length === q.limit || (full && traces.length)) {
    const last = page.length === q.limit ? page[page.length - 1] : traces[traces.length - 1];
    next = 'jaeger:' + String(last.start - 1);
  }
  const notes = ['This Spoor has no /spoor/api/v1/search: searched through the Jaeger API'];
  if (clientSide) notes.push('status, trace duration, != and =~ filtered in the browser');
  return { summaries: page.map(summarize), nextCursor: next, source: 'jaeger', notes };
}

// ---- payment flow ----

export interface FlowResult {
  flow: Flow;
  // examined: traces read; truncated: more traces of the entry are in the window.
  examined: number;
  truncated: boolean;
  source: 'spoor' | 'browser';
}

// The Jaeger search behind the fallback takes at most this many traces.
const jaegerMaxLimit = 1500;

let spoorFlowsMissing = false;

// getFlow asks Spoor for the aggregated flow of an entry operation; a Spoor without
// /spoor/api/v1/flows gets the traces through the Jaeger API and the browser folds them.
export async function getFlow(
  p: { service: string; operation: string; start: number; end: number; limit: number },
  signal?: AbortSignal,
): Promise<FlowResult> {
  const u = new URLSearchParams({
    service: p.service, operation: p.operation,
    start: String(Math.floor(p.start / 1000)), end: String(Math.ceil(p.end / 1000)), limit: String(p.limit),
  });
  // The server's flow needs the entry's service; without one, the browser folds.
  if (p.service && !spoorFlowsMissing) {
    try {
      const r = await getJSON<APIFlow>(`/spoor/api/v1/flows?${u}`, signal);
      return { flow: flowFromAPI(r), examined: r.tracesExamined, truncated: r.truncated, source: 'spoor' };
    } catch (e) {
      if (!unavailable(e)) throw e;
      spoorFlowsMissing = true;
    }
  }
  const limit = Math.min(p.limit, jaegerMaxLimit);
  const traces = await jaegerTraces({ service: p.service, operation: p.operation, start: p.start, end: p.end, limit }, signal);
  return {
    flow: aggregateFlow(traces, { service: p.service || undefined, operation: p.operation }),
    examined: traces.length, truncated: traces.length >= limit, source: 'browser',
  };
}

// ---- start page: RED per service ----

export interface RedResult {
  stats: ServiceStats[];
  source: 'rollups' | 'traces';
  note: string;
}

interface RedSeries {
  service: string;
  operation: string;
  spanKind: string;
  calls: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  points?: { minute: string; calls: number; errors: number }[];
}

interface RedService {
  service: string;
  calls: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

export async function serviceRED(services: string[], signal?: AbortSignal): Promise<RedResult> {
  const end = Date.now();
  const start = end - 3600e3;
  try {
    const r = await getJSON<{ series: RedSeries[]; services?: RedService[] }>(`/spoor/api/v1/red?start=${start}&end=${end}`, signal);
    // Per-service percentiles from the merged histograms, when this Spoor serves them.
    const svcRow = new Map((r.services ?? []).map((s) => [s.service, s]));
    const by = new Map<string, RedSeries[]>();
    for (const s of r.series ?? []) {
      let l = by.get(s.service);
      if (!l) by.set(s.service, (l = []));
      l.push(s);
    }
    const stats: ServiceStats[] = [];
    for (const name of new Set([...services, ...by.keys()])) {
      const all = by.get(name) ?? [];
      const entry = all.filter((s) => s.spanKind === 'server' || s.spanKind === 'consumer');
      const l = entry.length ? entry : all;
      const calls = l.reduce((a, s) => a + s.calls, 0);
      const errors = l.reduce((a, s) => a + s.errors, 0);
      // Percentiles do not add up across operations: without the server's per-service
      // rows (merged histograms), show the slowest operation that carries at least 1% of
      // the service's calls.
      const big = l.filter((s) => s.calls >= 0.01 * calls);
      const spark = { calls: new Array(SPARK_BUCKETS).fill(0), errors: new Array(SPARK_BUCKETS).fill(0) };
      for (const s of l)
        for (const p of s.points ?? []) {
          const b = sparkIndex(Date.parse(p.minute) * 1000, start * 1000, end * 1000);
          spark.calls[b] += p.calls;
          spark.errors[b] += p.errors;
        }
      stats.push({
        spark,
        service: name,
        requests: calls,
        errors,
        ratePerSec: calls / 3600,
        errorShare: calls ? errors / calls : 0,
        p50Ms: svcRow.get(name)?.p50Ms ?? (big.length ? Math.max(...big.map((s) => s.p50Ms)) : NaN),
        p99Ms: svcRow.get(name)?.p99Ms ?? (big.length ? Math.max(...big.map((s) => s.p99Ms)) : NaN),
        source: 'rollups',
      });
    }
    stats.sort((a, b) => a.service.localeCompare(b.service));
    const note = r.services
      ? 'From the analytics rollups: every span, before sampling; percentiles over the calls each service answered.'
      : 'From the analytics rollups: every span, before sampling. p99 of the slowest operation.';
    return { stats, source: 'rollups', note };
  } catch (e) {
    if (!unavailable(e)) throw e;
  }
  // A sample is enough for shares and percentiles, and the rate divides by the time it
  // covers; whole traces are heavy, so it stays small.
  const limit = 300;
  const traces = await jaegerTraces({ start: start * 1000, end: end * 1000, limit }, signal);
  const stats = serviceStatsFromTraces(traces, start * 1000, end * 1000, traces.length >= limit);
  const seen = new Set(stats.map((s) => s.service));
  for (const s of services)
    if (!seen.has(s)) stats.push({ service: s, requests: 0, errors: 0, ratePerSec: 0, errorShare: 0, p50Ms: NaN, p99Ms: NaN, source: 'traces' });
  stats.sort((a, b) => a.service.localeCompare(b.service));
  return {
    stats,
    source: 'traces',
    note: `Estimated from the ${traces.length} most recent stored traces of the last hour (no /spoor/api/v1/red here).`,
  };
}

// ---- service map ----

export interface Graph {
  nodes: { name: string; instrumented: boolean }[];
  edges: Edge[];
  source: 'rollups' | 'dependencies' | 'traces';
  note: string;
}

export async function serviceGraph(lookbackSecs: number, signal?: AbortSignal): Promise<Graph> {
  const end = Date.now();
  const start = end - lookbackSecs * 1000;
  try {
    const r = await getJSON<{ nodes: { name: string; instrumented: boolean }[]; edges: any[] }>(
      `/spoor/api/v1/graph?start=${start}&end=${end}`, signal);
    return {
      nodes: r.nodes ?? [],
      edges: (r.edges ?? []).map((e) => ({
        parent: e.parent, child: e.child, calls: e.calls, errors: e.errors, errorShare: e.errorRate ?? (e.calls ? e.errors / e.calls : 0),
        p50Ms: e.p50Ms, p99Ms: e.p99Ms,
      })),
      source: 'rollups',
      note: 'From the analytics rollups: every call, before sampling.',
    };
  } catch (e) {
    if (!unavailable(e)) throw e;
  }
  // Fallback: Jaeger dependencies give the edges and their call counts; error share and
  // latency come from a sample of recent traces.
  const limit = 300;
  const [deps, traces] = await Promise.all([
    getJSON<Envelope<{ parent: string; child: string; callCount: number }[]>>(`/api/dependencies?endTs=${end}&lookback=${lookbackSecs * 1000}`, signal)
      .then((r) => r.data ?? [])
      .catch((e) => {
        if (unavailable(e)) return null;
        throw e;
      }),
    jaegerTraces({ start: start * 1000, end: end * 1000, limit }, signal),
  ]);
  const sampled = edgesFromTraces(traces);
  const key = (p: string, c: string) => p + '\u0000' + c;
  const byKey = new Map(sampled.map((e) => [key(e.parent, e.child), e]));
  let edges: Edge[];
  if (deps) {
    edges = deps.map((d) => {
      const s = byKey.get(key(d.parent, d.child));
      return {
        parent: d.parent, child: d.child, calls: d.callCount,
        errors: s ? Math.round(s.errorShare * d.callCount) : 0,
        errorShare: s?.errorShare ?? 0, p50Ms: s?.p50Ms ?? NaN, p99Ms: s?.p99Ms ?? NaN,
      };
    });
    for (const s of sampled) if (!deps.some((d) => d.parent === s.parent && d.child === s.child)) edges.push(s);
  } else {
    edges = sampled;
  }
  const names = new Set<string>();
  for (const e of edges) {
    names.add(e.parent);
    names.add(e.child);
  }
  return {
    nodes: [...names].sort().map((name) => ({ name, instrumented: true })),
    edges,
    source: deps ? 'dependencies' : 'traces',
    note: deps
      ? `Calls from /api/dependencies; error share and latency from the ${traces.length} most recent traces (no /spoor/api/v1/graph here).`
      : `From the ${traces.length} most recent traces (no /spoor/api/v1/graph or /api/dependencies here).`,
  };
}

// ---- alerts ----

export interface AlertRule {
  group: string;
  alert: string;
  condition: string;
  window: string;
  for: string;
  labels: Record<string, string> | null;
  annotations: Record<string, string> | null;
  state: string;
  value: number;
  activeAt?: string;
  firedAt?: string;
  resolvedAt?: string;
  traceIDs: string[] | null;
}

export interface AlertFiring {
  group: string;
  alert: string;
  startsAt: string;
  endsAt?: string;
  value: number;
  traceIDs: string[] | null;
}

export interface AlertsDoc {
  updatedAt?: string;
  rules: AlertRule[] | null;
  firings: AlertFiring[] | null;
  webhook?: { url: string; delivered: number; failed: number; consecutiveFailures: number; lastError?: string; lastDelivery?: string; pending: number };
}

// getAlerts returns null when this Spoor has no alerts endpoint.
export async function getAlerts(signal?: AbortSignal): Promise<AlertsDoc | null> {
  try {
    return await getJSON<AlertsDoc>('/spoor/api/v1/alerts', signal);
  } catch (e) {
    if (unavailable(e)) return null;
    throw e;
  }
}
