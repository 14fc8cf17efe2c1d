// The UI's trace model, built from the Jaeger /api JSON (REFERENCE.md §1.2): spans with
// their service, status, attributes split into span / resource / scope, events, links and
// the parent-child tree. Times are µs since the epoch, as Jaeger sends them.

export interface KV {
  key: string;
  type?: string;
  value: unknown;
}

export interface JaegerRef {
  refType: string;
  traceID: string;
  spanID: string;
}

export interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references?: JaegerRef[] | null;
  startTime: number;
  duration: number;
  tags?: KV[] | null;
  logs?: { timestamp: number; fields: KV[] }[] | null;
  processID: string;
  warnings?: string[] | null;
  flags?: number;
}

export interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string; tags?: KV[] | null }>;
  warnings?: string[] | null;
}

export interface SpanEvent {
  timestamp: number;
  name: string;
  fields: KV[];
}

export interface SpanLink {
  traceID: string;
  spanID: string;
  refType: string;
}

export interface Span {
  traceID: string;
  spanID: string;
  parentID: string | null;
  service: string;
  operation: string;
  kind: string;
  start: number;
  duration: number;
  error: boolean;
  // ok: the span's status is explicitly OK (neither ok nor error: unset).
  ok: boolean;
  statusMessage: string;
  tags: KV[];
  resource: KV[];
  scope: KV[];
  events: SpanEvent[];
  links: SpanLink[];
  warnings: string[];
  parent: Span | null;
  children: Span[];
  depth: number;
}

export interface ServiceCount {
  name: string;
  spans: number;
  errors: number;
}

export interface Trace {
  traceID: string;
  spans: Span[];
  roots: Span[];
  byID: Map<string, Span>;
  start: number;
  end: number;
  duration: number;
  services: ServiceCount[];
  errorCount: number;
  rootService: string;
  rootOperation: string;
  warnings: string[];
}

const scopeKeys = new Set(['otel.scope.name', 'otel.scope.version', 'otel.library.name', 'otel.library.version']);
const hiddenKeys = new Set(['span.kind', 'error', 'otel.status_code', 'otel.status_description']);

function tagValue(tags: KV[], key: string): unknown {
  for (const t of tags) if (t.key === key) return t.value;
  return undefined;
}

// isErrorTags reports the span's status as Jaeger's JSON carries it: error=true, or
// otel.status_code=ERROR.
export function isErrorTags(tags: KV[]): boolean {
  const e = tagValue(tags, 'error');
  if (e === true || e === 'true') return true;
  return tagValue(tags, 'otel.status_code') === 'ERROR';
}

// fromJaeger builds a Trace. Spans whose parent is missing become roots (an incomplete
// trace still shows every span); children are ordered by start time.
export function fromJaeger(jt: JaegerTrace): Trace {
  const byID = new Map<string, Span>();
  const spans: Span[] = [];
  for (const js of jt.spans) {
    const proc = jt.processes[js.processID];
    const tags = js.tags ?? [];
    const own: KV[] = [];
    const scope: KV[] = [];
    for (const t of tags) {
      if (scopeKeys.has(t.key)) scope.push(t);
      else if (!hiddenKeys.has(t.key)) own.push(t);
    }
    const refs = js.references ?? [];
    let parentID: string | null = null;
    const links: SpanLink[] = [];
    for (const r of refs) {
      if (parentID === null && r.refType === 'CHILD_OF' && r.traceID === js.traceID) parentID = r.spanID;
      else links.push({ traceID: r.traceID, spanID: r.spanID, refType: r.refType });
    }
    const s: Span = {
      traceID: js.traceID,
      spanID: js.spanID,
      parentID,
      service: proc?.serviceName ?? 'unknown',
      operation: js.operationName,
      kind: String(tagValue(tags, 'span.kind') ?? ''),
      start: js.startTime,
      duration: js.duration,
      error: isErrorTags(tags),
      ok: !isErrorTags(tags) && tagValue(tags, 'otel.status_code') === 'OK',
      statusMessage: String(tagValue(tags, 'otel.status_description') ?? ''),
      tags: own,
      resource: proc?.tags ?? [],
      scope,
      events: (js.logs ?? []).map((l) => {
        const name = l.fields.find((f) => f.key === 'event');
        return {
          timestamp: l.timestamp,
          name: name ? String(name.value) : 'log',
          fields: l.fields.filter((f) => f !== name),
        };
      }),
      links,
      warnings: js.warnings ?? [],
      parent: null,
      children: [],
      depth: 0,
    };
    if (!byID.has(s.spanID)) byID.set(s.spanID, s);
    spans.push(s);
  }
  return link(jt.traceID, spans, byID, jt.warnings ?? []);
}

function link(traceID: string, spans: Span[], byID: Map<string, Span>, warnings: string[]): Trace {
  spans.sort((a, b) => a.start - b.start || (a.spanID < b.spanID ? -1 : a.spanID > b.spanID ? 1 : 0));
  const roots: Span[] = [];
  for (const s of spans) {
    const p = s.parentID ? byID.get(s.parentID) : undefined;
    if (p && p !== s) {
      s.parent = p;
      p.children.push(s);
    } else {
      roots.push(s);
    }
  }
  // Depths iteratively: a 10,000-span chain must not overflow the stack. Spans caught in
  // a parent cycle (bad data) are never reached from a root: each is cut from its parent
  // and shown as a root, so every span appears exactly once.
  const seen = new Set<Span>();
  const walk = (r: Span) => {
    const stack: Span[] = [r];
    seen.add(r);
    while (stack.length) {
      const s = stack.pop()!;
      for (let i = s.children.length - 1; i >= 0; i--) {
        const c = s.children[i];
        if (seen.has(c)) continue;
        seen.add(c);
        c.depth = s.depth + 1;
        stack.push(c);
      }
    }
  };
  for (const r of roots) walk(r);
  if (seen.size < spans.length) {
    for (const s of spans) {
      if (seen.has(s)) continue;
      if (s.parent) s.parent.children = s.parent.children.filter((c) => c !== s);
      s.parent = null;
      s.depth = 0;
      roots.push(s);
      walk(s);
    }
  }
  let start = Infinity;
  let end = -Infinity;
  const svc = new Map<string, ServiceCount>();
  let errorCount = 0;
  for (const s of spans) {
    start = Math.min(start, s.start);
    end = Math.max(end, s.start + s.duration);
    let c = svc.get(s.service);
    if (!c) svc.set(s.service, (c = { name: s.service, spans: 0, errors: 0 }));
    c.spans++;
    if (s.error) {
      c.errors++;
      errorCount++;
    }
  }
  if (!spans.length) start = end = 0;
  const root = roots[0];
  return {
    traceID,
    spans,
    roots,
    byID,
    start,
    end,
    duration: end - start,
    services: [...svc.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    errorCount,
    rootService: root?.service ?? '',
    rootOperation: root?.operation ?? '',
    warnings,
  };
}

// Test helper and synthetic-trace builder: spans described compactly.
export interface SpanSpec {
  id: string;
  parent?: string;
  service: string;
  op: string;
  start: number;
  duration: number;
  error?: boolean;
  kind?: string;
}

export function makeTrace(traceID: string, specs: SpanSpec[]): Trace {
  const procs: Record<string, { serviceName: string; tags: KV[] }> = {};
  const spans: JaegerSpan[] = specs.map((s) => {
    procs[s.service] = { serviceName: s.service, tags: [] };
    const tags: KV[] = [{ key: 'span.kind', type: 'string', value: s.kind ?? 'internal' }];
    if (s.error) tags.push({ key: 'error', type: 'bool', value: true });
    return {
      traceID,
      spanID: s.id,
      operationName: s.op,
      references: s.parent ? [{ refType: 'CHILD_OF', traceID, spanID: s.parent }] : [],
      startTime: s.start,
      duration: s.duration,
      tags,
      logs: [],
      processID: s.service,
    };
  });
  return fromJaeger({ traceID, spans, processes: procs });
}
