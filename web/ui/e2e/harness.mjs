// Shared by the browser e2e tests and the UI benchmark: start bin/spoor on free loopback
// ports with a fresh data directory, feed it with `spoor demo`, and drive Debian's
// chromium through playwright-core.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const uiDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const repoRoot = resolve(uiDir, '..', '..');
export const artifacts = join(uiDir, 'test-artifacts');
export const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

async function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

export async function startSpoor(extraEnv = {}) {
  const bin = process.env.SPOOR_BIN || join(repoRoot, 'bin', 'spoor');
  if (!existsSync(bin)) throw new Error(`${bin} does not exist: run make build (after make ui) first`);
  const ports = [];
  while (ports.length < 6) {
    const p = await freePort();
    if (!ports.includes(p)) ports.push(p);
  }
  const [grpc, http, zipkin, query, metrics, sampling] = ports.map((p) => `127.0.0.1:${p}`);
  const dataDir = mkdtempSync(join(tmpdir(), 'spoor-ui-e2e-'));
  const env = {
    ...process.env,
    SPOOR_DATA_DIR: dataDir,
    SPOOR_OTLP_GRPC_ENDPOINT: grpc,
    SPOOR_OTLP_HTTP_ENDPOINT: http,
    SPOOR_ZIPKIN_ENDPOINT: zipkin,
    SPOOR_QUERY_ENDPOINT: query,
    SPOOR_METRICS_ENDPOINT: metrics,
    SPOOR_SAMPLING_ENDPOINT: sampling,
    ...extraEnv,
  };
  const proc = spawn(bin, [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let logs = '';
  proc.stdout.on('data', (d) => (logs += d));
  proc.stderr.on('data', (d) => (logs += d));
  const exited = new Promise((res) => proc.on('exit', (code, sig) => res({ code, sig })));
  const base = `http://${query}`;
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`spoor exited early (${proc.exitCode}):\n${logs.slice(-4000)}`);
    try {
      const r = await fetch(base + '/healthz');
      if (r.status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`spoor not healthy after 90s:\n${logs.slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    bin, env, base, otlpHTTP: `http://${http}`, dataDir,
    logs: () => logs,
    async stop() {
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function runDemo(spoor, rate, duration) {
  return new Promise((res, rej) => {
    const p = spawn(spoor.bin, ['demo', '--rate', String(rate), '--duration', duration], { env: spoor.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('exit', (code) => (code === 0 ? res(out) : rej(new Error(`spoor demo exited ${code}:\n${out.slice(-3000)}`))));
  });
}

export async function launchBrowser() {
  const { chromium } = await import('playwright-core');
  if (!existsSync(chromiumPath)) {
    throw new Error(`${chromiumPath} is missing: apt-get install -y chromium (make test does it), or set CHROMIUM`);
  }
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
}

export function ensureArtifacts() {
  rmSync(artifacts, { recursive: true, force: true });
  mkdirSync(artifacts, { recursive: true });
  return artifacts;
}

// otlpTrace builds one OTLP/JSON trace of n spans: a 4-ary tree spread over services,
// with an error every 97 spans and an event on every tenth.
export function otlpTrace(n, nowMs = Date.now()) {
  const hex = (len) => [...crypto.getRandomValues(new Uint8Array(len / 2))].map((b) => b.toString(16).padStart(2, '0')).join('');
  const traceId = hex(32);
  const services = ['edge', 'checkout', 'cart', 'pricing', 'payments', 'risk', 'ledger', 'mailer'];
  const ids = Array.from({ length: n }, () => hex(16));
  const start = BigInt(nowMs - 5000) * 1000000n;
  const bySvc = new Map();
  // Children run inside their parent: child i of parent p starts after p's start.
  const startOf = new Array(n);
  const durOf = new Array(n);
  startOf[0] = 0n;
  durOf[0] = 4000_000_000n;
  for (let i = 1; i < n; i++) {
    const p = Math.floor((i - 1) / 4);
    const k = BigInt((i - 1) % 4);
    const pd = durOf[p];
    durOf[i] = pd / 5n > 1000n ? pd / 5n : 1000n;
    startOf[i] = startOf[p] + (pd / 5n) * k + pd / 40n;
  }
  for (let i = 0; i < n; i++) {
    const depth = Math.floor(Math.log(3 * i + 1) / Math.log(4));
    const svc = services[(depth + (i % 3)) % services.length];
    const span = {
      traceId,
      spanId: ids[i],
      parentSpanId: i ? ids[Math.floor((i - 1) / 4)] : '',
      name: `op-${depth}-${i % 7}`,
      kind: i === 0 ? 2 : 1,
      startTimeUnixNano: String(start + startOf[i]),
      endTimeUnixNano: String(start + startOf[i] + durOf[i]),
      attributes: [{ key: 'i', value: { intValue: String(i) } }],
      events: i % 10 === 0 ? [{ timeUnixNano: String(start + startOf[i] + durOf[i] / 2n), name: 'tick', attributes: [] }] : [],
      status: i % 97 === 5 ? { code: 2, message: 'synthetic failure' } : {},
    };
    if (!bySvc.has(svc)) bySvc.set(svc, []);
    bySvc.get(svc).push(span);
  }
  const resourceSpans = [...bySvc.entries()].map(([svc, spans]) => ({
    resource: { attributes: [{ key: 'service.name', value: { stringValue: svc } }] },
    scopeSpans: [{ scope: { name: 'bench' }, spans }],
  }));
  return { traceId, resourceSpans };
}

export async function postOTLP(spoor, resourceSpans) {
  // Several requests: one 10,000-span body is far larger than any SDK batch.
  const chunks = [];
  for (const rs of resourceSpans) {
    for (let i = 0; i < rs.scopeSpans[0].spans.length; i += 1000) {
      chunks.push({ resource: rs.resource, scopeSpans: [{ scope: rs.scopeSpans[0].scope, spans: rs.scopeSpans[0].spans.slice(i, i + 1000) }] });
    }
  }
  for (const c of chunks) {
    const r = await fetch(spoor.otlpHTTP + '/v1/traces', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ resourceSpans: [c] }),
    });
    if (!r.ok) throw new Error(`POST /v1/traces: ${r.status} ${await r.text()}`);
  }
}
