// Benchmark of the web UI in headless chromium against the demo server (release build):
//   A. 300 resources (20 log lines each) while logs stream
//   B. 50 resources × 2,000 log lines (100,000 lines) while logs stream
//   C. 1,000 resources (20 log lines each) while logs stream (the scale target: interactive ≤ 1 s)
// Prints time to first render, time to interactive, the websocket message rate while logs stream,
// main-thread long tasks, interaction latencies and log scrolling frame times.
// Exits non-zero when a budget is blown (budgets are generous: they catch regressions, not noise).

import { ARTIFACTS, launch, startServer } from "./harness.mjs";
import { join } from "node:path";
import { writeFileSync } from "node:fs";

const STREAM_SECONDS = Number(process.env.BENCH_STREAM_SECONDS ?? 5);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Long tasks (>50 ms on the main thread) are recorded from the very start.
const INIT = () => {
  window.__longTasks = [];
  try {
    new PerformanceObserver((l) => {
      for (const e of l.getEntries()) window.__longTasks.push({ start: e.startTime, dur: e.duration });
    }).observe({ type: "longtask", buffered: true });
  } catch {}
};

async function load(page, url, readySelector) {
  await page.goto(url);
  await page.waitForSelector(readySelector, { timeout: 60_000 });
  await page.waitForFunction(() => window.__stilt?.stats.interactiveAt > 0, null, { timeout: 60_000 });
  return page.evaluate(() => ({ ...window.__stilt.stats }));
}

async function streamRate(page, seconds) {
  const a = await page.evaluate(() => ({ ...window.__stilt.stats, t: performance.now(), lt: window.__longTasks.length }));
  await sleep(seconds * 1000);
  const b = await page.evaluate(() => ({ ...window.__stilt.stats, t: performance.now() }));
  const longTasks = await page.evaluate((from) => window.__longTasks.slice(from), a.lt);
  const dt = (b.t - a.t) / 1000;
  return {
    msgsPerSec: (b.messages - a.messages) / dt,
    linesPerSec: (b.lines - a.lines) / dt,
    kbPerSec: (b.bytes - a.bytes) / 1024 / dt,
    longTasks: longTasks.length,
    longestTaskMs: Math.max(0, ...longTasks.map((t) => t.dur)),
  };
}

/// Time from an action to a condition being true in the page (polled every frame in the page).
async function latency(page, action, condition, arg) {
  const t0 = await page.evaluate(() => performance.now());
  await action();
  await page.waitForFunction(condition, arg, { timeout: 10_000, polling: "raf" });
  return (await page.evaluate(() => performance.now())) - t0;
}

/// Scrolls the log view from top to bottom over ~2 s and measures frame intervals.
async function scrollFrames(page) {
  return page.evaluate(
    () =>
      new Promise((resolve) => {
        const el = document.querySelector('[data-testid="log-view"]');
        el.scrollTop = 0;
        const frames = [];
        let last = performance.now();
        const start = last;
        let maxRows = 0;
        const step = () => {
          const now = performance.now();
          frames.push(now - last);
          last = now;
          const p = Math.min(1, (now - start) / 2000);
          el.scrollTop = p * (el.scrollHeight - el.clientHeight);
          el.dispatchEvent(new Event("scroll"));
          maxRows = Math.max(maxRows, el.querySelectorAll(".log-line").length);
          if (p < 1) requestAnimationFrame(step);
          else {
            frames.sort((a, b) => a - b);
            resolve({
              frames: frames.length,
              p50: frames[Math.floor(frames.length * 0.5)],
              p95: frames[Math.floor(frames.length * 0.95)],
              max: frames[frames.length - 1],
              domRows: maxRows,
            });
          }
        };
        requestAnimationFrame(step);
      }),
  );
}

const f = (n, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : "-");

async function scenario(name, serverArgs, checks) {
  const srv = await startServer(["--settle-ms", "300", ...serverArgs]);
  const browser = await launch();
  const out = { name };
  try {
    const page = await browser.context.newPage();
    await page.addInitScript(INIT);
    const s = await load(page, srv.url, ".res-row");
    out.overview = {
      firstMessage: s.firstMessageAt,
      firstRender: s.firstRenderAt,
      interactive: s.interactiveAt,
      initialLines: s.lines,
      initialMessages: s.messages,
      initialKB: s.bytes / 1024,
      resources: Number(await page.getAttribute('[data-testid="overview"]', "data-count")),
      rows: await page.locator(".res-row").count(),
    };
    await sleep(1000);
    out.streamOverview = await streamRate(page, STREAM_SECONDS);
    out.filterLatency = await latency(
      page,
      () => page.fill('[data-testid="resource-filter"]', "svc-01"),
      () => document.querySelector('[data-testid="overview"]').dataset.count === "10" &&
        document.querySelectorAll(".res-row").length === 10,
    );
    await page.fill('[data-testid="resource-filter"]', "");
    await page.screenshot({ path: join(ARTIFACTS, `bench-${name}-overview.png`) });
    // Client-side navigation to all logs, then scroll through every line.
    out.toLogsLatency = await latency(
      page,
      () => page.click('[data-testid="nav-logs"]'),
      () => document.querySelectorAll(".log-line").length > 0,
    );
    out.streamLogs = await streamRate(page, STREAM_SECONDS);
    out.textFilterLatency = await latency(
      page,
      () => page.fill('[data-testid="log-filter"]', "module 42 "),
      () => {
        const v = document.querySelector('[data-testid="log-view"]');
        return v && Number(v.dataset.lines) < 5000 && document.querySelectorAll(".log-line mark").length > 0;
      },
    );
    await page.fill('[data-testid="log-filter"]', "");
    await page.click('[data-testid="follow"]');
    out.scroll = await scrollFrames(page);
    out.totalLines = Number(await page.getAttribute('[data-testid="log-view"]', "data-lines"));
    await page.screenshot({ path: join(ARTIFACTS, `bench-${name}-logs.png`) });
    // A fresh load straight onto the all-logs page.
    const page2 = await browser.context.newPage();
    await page2.addInitScript(INIT);
    const s2 = await load(page2, srv.url + "logs", ".log-line");
    out.logsPage = { firstRender: s2.firstRenderAt, interactive: s2.interactiveAt, lines: s2.lines };
  } finally {
    await browser.close();
    await srv.stop();
  }
  const o = out;
  console.log(`\n== ${name}`);
  console.log(
    `overview (${o.overview.resources} resources, ${o.overview.rows} rows in the DOM, ${o.overview.initialLines} log lines in ${o.overview.initialMessages} msgs / ${f(o.overview.initialKB)} KiB): ` +
      `first message ${f(o.overview.firstMessage)} ms, first render ${f(o.overview.firstRender)} ms, interactive ${f(o.overview.interactive)} ms`,
  );
  console.log(
    `all-logs page load (${o.logsPage.lines} lines): first render ${f(o.logsPage.firstRender)} ms, interactive ${f(o.logsPage.interactive)} ms`,
  );
  for (const [k, v] of [
    ["streaming, overview shown", o.streamOverview],
    ["streaming, all logs shown", o.streamLogs],
  ])
    console.log(
      `${k}: ${f(v.msgsPerSec, 1)} ws msgs/s, ${f(v.linesPerSec)} lines/s, ${f(v.kbPerSec, 1)} KiB/s, ` +
        `${v.longTasks} long tasks (longest ${f(v.longestTaskMs)} ms)`,
    );
  console.log(
    `latency: resource filter ${f(o.filterLatency)} ms, open all logs ${f(o.toLogsLatency)} ms, log text filter over ${o.totalLines} lines ${f(o.textFilterLatency)} ms`,
  );
  console.log(
    `scrolling ${o.totalLines} lines: ${o.scroll.frames} frames, frame p50 ${f(o.scroll.p50, 1)} ms, p95 ${f(o.scroll.p95, 1)} ms, max ${f(o.scroll.max, 1)} ms, at most ${o.scroll.domRows} rows in the DOM`,
  );
  const failures = checks(o).filter(([ok]) => !ok).map(([, msg]) => msg);
  for (const m of failures) console.log(`BUDGET EXCEEDED: ${m}`);
  return { out, failures };
}

const budgets = (o) => [
  [o.overview.firstRender < 3000, `first render ${f(o.overview.firstRender)} ms >= 3000`],
  [o.overview.interactive < 6000, `interactive ${f(o.overview.interactive)} ms >= 6000`],
  [o.streamLogs.msgsPerSec <= 21, `ws message rate ${f(o.streamLogs.msgsPerSec, 1)}/s > 20/s (50 ms batching)`],
  [o.streamLogs.msgsPerSec >= 5, `ws message rate ${f(o.streamLogs.msgsPerSec, 1)}/s: logs are not streaming`],
  [o.scroll.domRows < 300, `${o.scroll.domRows} log rows in the DOM: not virtualized`],
  [o.scroll.p95 < 100, `scroll frame p95 ${f(o.scroll.p95)} ms`],
];

const results = [];
let failed = 0;
const which = process.argv[2] ?? "all";
if (which === "all" || which === "300") {
  const r = await scenario("300-resources", ["--resources", "300", "--log-lines", "20", "--stream-lines-per-sec", "500"], budgets);
  results.push(r.out);
  failed += r.failures.length;
}
if (which === "all" || which === "1000") {
  const r = await scenario("1000-resources", ["--resources", "1000", "--log-lines", "20", "--stream-lines-per-sec", "500"], budgets);
  results.push(r.out);
  failed += r.failures.length;
}
if (which === "all" || which === "100k") {
  const r = await scenario("50x2000-lines", ["--resources", "50", "--log-lines", "2000", "--stream-lines-per-sec", "1000"], budgets);
  results.push(r.out);
  failed += r.failures.length;
}
writeFileSync(join(ARTIFACTS, "bench.json"), JSON.stringify(results, null, 2));
console.log(`\nbenchmark: ${results.length} scenarios, ${failed} budgets exceeded (details in artifacts/bench.json)`);
process.exit(failed ? 1 : 0);
