// UI figures in headless chromium against a live bin/spoor: how fast the search page
// answers, and how fast a 10,000-span trace renders and scrolls. Targets (issue 7):
// search under 300 ms, 10,000-span trace under 1 s.
import { launchBrowser, otlpTrace, postOTLP, runDemo, startSpoor } from './harness.mjs';

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const max = (a) => Math.max(...a);
const fmt = (a) => `median ${median(a).toFixed(0)} ms, max ${max(a).toFixed(0)} ms (n=${a.length})`;

const spoor = await startSpoor();
let browser;
try {
  await runDemo(spoor, 50, '6s');
  const big = otlpTrace(10000);
  await postOTLP(spoor, big.resourceSpans);
  browser = await launchBrowser();
  const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 }, baseURL: spoor.base });
  const page = await ctx.newPage();

  // Warm up: assets into the cache, as for a user who has the UI open.
  await page.goto('/search?service=api-gateway');
  await page.waitForSelector('[data-testid=trace-list] li');

  // 1. Search page, full load: navigation to the rendered list of 20 traces.
  const load = [];
  const parts = { doc: [], script: [], api: [], render: [] };
  for (let i = 0; i < 7; i++) {
    const t0 = Date.now();
    await page.goto(`/search?service=api-gateway&limit=20&n=${i}`);
    await page.waitForSelector('[data-testid=trace-list] li');
    load.push(Date.now() - t0);
    const p = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const api = performance.getEntriesByType('resource').filter((e) => /\/spoor\/api\/v1\/search|\/api\/traces\?/.test(e.name)).at(-1);
      return { doc: nav.responseEnd, script: api ? api.startTime - nav.responseEnd : NaN, api: api ? api.responseEnd - api.startTime : NaN, render: api ? (performance.getEntriesByName('search:rendered').at(-1)?.startTime ?? NaN) - api.responseEnd : NaN };
    });
    for (const k of Object.keys(parts)) parts[k].push(p[k]);
  }
  // 2. Search inside the app: submit to the new list rendered.
  const submit = [];
  for (let i = 0; i < 7; i++) {
    const op = i % 2 ? 'POST /checkout' : '';
    await page.goto(`/search?service=api-gateway${op ? '' : '&operation=' + encodeURIComponent('POST /checkout')}`);
    await page.waitForSelector('[data-testid=trace-list] li');
    await page.selectOption('select[name=operation]', op);
    const t = await page.evaluate(
      () =>
        new Promise((res) => {
          const t0 = performance.now();
          const before = location.search;
          document.querySelector('[data-testid=search-submit]').click();
          const check = () => {
            const r = document.querySelector('[data-testid=results]');
            const key = new URLSearchParams(location.search).toString();
            if (location.search !== before && r && r.getAttribute('data-key') === key && document.querySelector('[data-testid=trace-list] li')) res(performance.now() - t0);
            else requestAnimationFrame(check);
          };
          requestAnimationFrame(check);
        }),
    );
    submit.push(t);
  }
  // Payment flow of POST /checkout over the demo's 300 traces (fetched whole, folded here).
  const flow = [];
  for (let i = 0; i < 3; i++) {
    await page.goto('/search');
    const t0 = Date.now();
    await page.goto(`/flow?service=api-gateway&operation=${encodeURIComponent('POST /checkout')}&limit=500&n=${i}`);
    await page.waitForSelector('[data-testid=flow-paths] tbody tr');
    flow.push(Date.now() - t0);
  }
  const flowTraces = await page.textContent('.flow-summary b');
  // 3. A 10,000-span trace: navigation to the first waterfall rows, and from the trace's
  //    JSON arriving to the rows (parse, tree, critical path, render).
  const render = [];
  const afterFetch = [];
  const phases = { download: [], model: [], rows: [], critical: [] };
  for (let i = 0; i < 5; i++) {
    await page.goto('/search');
    const t0 = Date.now();
    const resp = page.waitForResponse((r) => r.url().includes(`/api/traces/${big.traceId}`));
    await page.goto(`/trace/${big.traceId}`);
    await resp;
    const t1 = Date.now();
    await page.waitForSelector('[data-testid=waterfall] .wf-row');
    const t2 = Date.now();
    render.push(t2 - t0);
    afterFetch.push(t2 - t1);
    await page.waitForFunction(() => performance.getEntriesByName('trace:critical').length > 0);
    const m = await page.evaluate(() => {
      const at = (n) => performance.getEntriesByName(n).at(-1)?.startTime ?? NaN;
      const nav = performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/traces/')).at(-1);
      return { reqStart: nav?.startTime ?? NaN, respEnd: nav?.responseEnd ?? NaN, json: at('trace:json'), model: at('trace:model'), rows: at('trace:rows'), critical: at('trace:critical') };
    });
    phases.download.push(m.json - m.reqStart);
    phases.model.push(m.model - m.json);
    phases.rows.push(m.rows - m.model);
    phases.critical.push(m.critical - m.rows);
  }
  const rows = await page.$eval('[data-testid=waterfall]', (w) => Number(w.getAttribute('data-rows')));
  const domRows = await page.$$eval('[data-testid=waterfall] .wf-row', (l) => l.length);
  // 4. Scrolling it: 40 jumps through the 10,000 rows, each to the next painted frame.
  const frames = await page.evaluate(async () => {
    const w = document.querySelector('[data-testid=waterfall]');
    const out = [];
    for (let i = 1; i <= 40; i++) {
      const t0 = performance.now();
      w.scrollTop = (w.scrollHeight * i) / 40;
      w.dispatchEvent(new Event('scroll'));
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      out.push(performance.now() - t0);
    }
    return out;
  });
  const bottom = await page.$$eval('[data-testid=waterfall] .wf-row', (l) => l.length);

  const load1 = (await import('node:os')).loadavg()[0];
  console.log(`machine load average ${load1.toFixed(1)} on ${(await import('node:os')).cpus().length} cores (figures scale with it)`);
  console.log('UI benchmark (headless chromium, bin/spoor fed by spoor demo, Spoor API ' + ((await fetch(spoor.base + '/spoor/api/v1/search?limit=1')).ok ? 'search' : 'absent: Jaeger /api search') + ')');
  console.log(`  search page, full load to 20 rendered traces:  ${fmt(load)}   target < 300 ms`);
  console.log(`    document ${fmt(parts.doc)}; scripts until the search request ${fmt(parts.script)}; search API ${fmt(parts.api)}; render ${fmt(parts.render)}`);
  console.log(`  search submitted in the app, to rendered list: ${fmt(submit)}   target < 300 ms`);
  console.log(`  payment flow of POST /checkout over ${flowTraces} traces, navigation to paths: ${fmt(flow)}`);
  console.log(`  10,000-span trace, navigation to waterfall:    ${fmt(render)}   target < 1000 ms`);
  console.log(`    of which after the response headers (download, parse, model, render): ${fmt(afterFetch)}`);
  console.log(`    request to parsed JSON ${fmt(phases.download)}; trace model ${fmt(phases.model)}; model to rows painted ${fmt(phases.rows)}; critical path after that ${fmt(phases.critical)}`);
  console.log(`    rows ${rows}, DOM rows ${domRows} (virtualized); scroll jump to the next-but-one frame ${fmt(frames)} (two frames at 60 Hz are 33 ms); rows at bottom ${bottom}`);
  // A figure, not a test: a busy machine misses targets it meets when idle, so this
  // says so and make bench goes on.
  const missed = [median(load) >= 300 && 'search page', median(submit) >= 300 && 'in-app search', median(render) >= 1000 && '10,000-span trace'].filter(Boolean);
  console.log(missed.length ? `  TARGET MISSED: ${missed.join(', ')} (load average ${load1.toFixed(1)})` : '  all UI targets met');
} finally {
  await browser?.close();
  await spoor.stop();
}
process.exit(0);
