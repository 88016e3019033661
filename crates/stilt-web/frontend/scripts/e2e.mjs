// Browser tests: a real stilt-web server (examples/demo_server.rs) in headless chromium.
// Prints one line per test and a final `N passed, N failed`; exits non-zero on failure.
// Screenshots go to <repo>/artifacts/web-*.png.

import { join } from "node:path";
import { ARTIFACTS, launch, startServer } from "./harness.mjs";

const only = process.argv[2] ?? "";
const tests = [];
const test = (name, fn) => tests.push({ name, fn });

async function shot(page, name) {
  await page.screenshot({ path: join(ARTIFACTS, `web-${name}.png`) });
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function statusOf(page, name) {
  return page.getAttribute(`[data-testid="row-${name}"]`, "data-status");
}

async function waitStatus(page, name, want, timeout = 10_000) {
  await page.waitForSelector(`[data-testid="row-${name}"][data-status="${want}"]`, { timeout });
}

async function view(srv) {
  const r = await fetch(srv.url + "api/view");
  return r.json();
}

const RESOURCES = ["web", "api", "db", "worker", "broken", "docs", "cache", "queue"];

test("overview lists every resource grouped by label, and they turn healthy", async ({ page, srv }) => {
  await page.goto(srv.url);
  await page.waitForSelector('[data-testid="row-web"]');
  // Before the simulated engine settles, resources are updating.
  const early = await statusOf(page, "web");
  assert(early === "building" || early === "pending", `web starts updating, got ${early}`);
  await shot(page, "overview-starting");
  // The simulated engine finishes the initial builds when the Tiltfile is triggered.
  await page.click('[data-testid="trigger-(Tiltfile)"]');
  for (const g of ["frontend", "backend", "infra"]) await page.waitForSelector(`[data-testid="group-${g}"]`);
  for (const r of RESOURCES) {
    if (r === "broken") await waitStatus(page, r, "error");
    else await waitStatus(page, r, "ok");
  }
  const summary = await page.textContent('[data-testid="summary"]');
  assert(summary.includes("7 ok") && summary.includes("1 error"), `summary: ${summary}`);
  const links = await page.$$eval('[data-testid="row-web"] .endpoint', (as) => as.map((a) => a.textContent));
  assert(links.includes("admin") && links.includes("localhost:8000"), `web links: ${links}`);
  assert(await page.isVisible('[data-testid="pending-worker"]'), "worker shows pending changes");
  await shot(page, "overview-healthy");
});

test("trigger button queues a build and a new build appears in the history", async ({ page, srv }) => {
  await page.goto(srv.url + "r/web/history");
  await page.waitForSelector('[data-testid="build-row"]');
  await page.waitForSelector('[data-testid="detail-status"][data-tone="ok"]');
  const before = await page.locator('[data-testid="build-row"]').count();
  await page.click('[data-testid="trigger-web"]');
  // The engine (simulated) consumes the trigger queue and builds for ~600 ms.
  await page.waitForSelector('[data-testid="detail-status"][data-tone="building"]', { timeout: 5000 });
  await shot(page, "trigger-building");
  await page.waitForFunction(
    (n) => document.querySelectorAll('[data-testid="build-row"]').length === n + 1,
    before,
    { timeout: 5000 },
  );
  await page.waitForSelector('[data-testid="detail-status"][data-tone="ok"]');
  const v = await view(srv);
  const q = v.objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === "tilt-trigger-queue");
  assert(q, "tilt-trigger-queue exists");
  await shot(page, "trigger-history");
});

test("disable toggle writes <res>-disable and the resource shows disabled, then enabled", async ({ page, srv }) => {
  await page.goto(srv.url);
  await waitStatus(page, "api", "ok");
  await page.click('[data-testid="disable-api"]');
  await waitStatus(page, "api", "disabled");
  let cm = (await view(srv)).objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === "api-disable");
  assert(cm.data.isDisabled === "true", `api-disable: ${JSON.stringify(cm.data)}`);
  await shot(page, "disabled");
  await page.click('[data-testid="disable-api"]');
  await waitStatus(page, "api", "ok");
  cm = (await view(srv)).objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === "api-disable");
  assert(cm.data.isDisabled === "false", "re-enabled");
});

test("trigger mode toggles between auto and manual", async ({ page, srv }) => {
  await page.goto(srv.url);
  await page.waitForSelector('[data-testid="mode-docs"]');
  assert((await page.textContent('[data-testid="mode-docs"]')) === "manual", "docs starts manual");
  await page.click('[data-testid="mode-docs"]');
  await page.waitForFunction(() => document.querySelector('[data-testid="mode-docs"]').textContent === "auto");
  await page.click('[data-testid="mode-docs"]');
  await page.waitForFunction(() => document.querySelector('[data-testid="mode-docs"]').textContent === "manual");
});

test("UIButtons from the API: global and per-resource with inputs", async ({ page, srv }) => {
  await page.goto(srv.url + "r/web");
  await page.click('[data-testid="button-web-migrate"]');
  await page.fill('[data-testid="input-web-migrate-target"]', "v42");
  await shot(page, "button-inputs");
  await page.click('[data-testid="submit-web-migrate"]');
  await page.fill('[data-testid="log-filter"]', "clicked");
  await page.waitForFunction(
    () => [...document.querySelectorAll(".log-line")].some((l) => l.textContent.includes("v42")),
    null,
    { timeout: 5000 },
  );
  const b = (await view(srv)).objects.find((o) => o.kind === "UIButton" && o.metadata.name === "web-migrate");
  assert(b.status?.lastClickedAt, "lastClickedAt written");
  assert(b.status.inputs[0].text.value === "v42", "inputs written");
  await page.click('[data-testid="button-clear-cache"]');
  let g;
  for (let i = 0; i < 50 && !g?.status?.lastClickedAt; i++) {
    await new Promise((r) => setTimeout(r, 100));
    g = (await view(srv)).objects.find((o) => o.kind === "UIButton" && o.metadata.name === "clear-cache");
  }
  assert(g?.status?.lastClickedAt, "global button clicked");
});

test("all-logs view: interleaved, filter by resource, level and text, errors highlighted", async ({ page, srv }) => {
  await page.goto(srv.url + "logs");
  await page.waitForSelector(".log-line");
  const count = async () => Number((await page.getAttribute('[data-testid="log-view"]', "data-lines")) ?? "0");
  await page.waitForFunction(() => Number(document.querySelector('[data-testid="log-view"]').dataset.lines) > 150);
  const all = await count();
  const names = await page.$$eval(".log-res", (els) => new Set(els.map((e) => e.textContent)).size);
  assert(names >= 2, `several resources interleaved (${names})`);
  await shot(page, "logs-all");
  await page.selectOption('[data-testid="log-resource"]', "broken");
  await page.waitForFunction((n) => Number(document.querySelector('[data-testid="log-view"]').dataset.lines) < n, all);
  const res = await page.$$eval(".log-res", (els) => [...new Set(els.map((e) => e.textContent))]);
  assert(res.length === 1 && res[0] === "broken", `only broken: ${res}`);
  await page.click('[data-testid="level-2"]');
  await page.waitForFunction(() => document.querySelector('[data-testid="log-view"]').dataset.lines === "1");
  assert((await page.locator(".log-line.err").count()) === 1, "error line highlighted");
  await shot(page, "logs-errors");
  await page.selectOption('[data-testid="log-resource"]', "");
  await page.click('[data-testid="level-0"]');
  await page.fill('[data-testid="log-filter"]', "step 1");
  await page.waitForFunction(() => document.querySelectorAll(".log-line mark").length > 0);
  const texts = await page.$$eval(".log-line .log-text", (els) => els.map((e) => e.textContent));
  assert(texts.length > 0 && texts.every((t) => t.toLowerCase().includes("step 1")), "text filter");
  await page.fill('[data-testid="log-filter"]', "");
  await page.waitForSelector(".log-line.warn");
  await shot(page, "logs-filtered-cleared");
  // The page bounds its memory: trimming keeps the newest lines with consistent indexes.
  const trimOk = await page.evaluate(() => {
    const L = window.__stilt.logs;
    const t = L.trimmed(10);
    const last = L.length - 1;
    return (
      t.length === 10 &&
      t.text[9] === L.text[last] &&
      t.names[t.resource[9]] === L.names[L.resource[last]] &&
      t.byResource.reduce((a, b) => a + b.length, 0) === 10
    );
  });
  assert(trimOk, "LogColumns.trimmed keeps the newest lines");
});

test("ANSI colours in log lines are rendered, and filters ignore the escape codes", async ({ page, srv }) => {
  await page.goto(srv.url + "r/web");
  await page.waitForSelector(".log-line .ansi-32");
  assert((await page.textContent(".log-line .ansi-32")) === "✔ compiled", "green span");
  assert(!(await page.textContent('[data-testid="log-view"]')).includes("\x1b"), "no raw escapes");
  await page.fill('[data-testid="log-filter"]', "compiled successfully");
  await page.waitForFunction(() => document.querySelector('[data-testid="log-view"]').dataset.lines === "1");
  await shot(page, "ansi");
});

test("follow mode sticks to the newest line and stops when scrolled up", async ({ page, srv }) => {
  await page.goto(srv.url + "logs");
  await page.waitForSelector(".log-line");
  const atBottom = () =>
    page.evaluate(() => {
      const el = document.querySelector('[data-testid="log-view"]');
      return el.scrollTop + el.clientHeight >= el.scrollHeight - 20;
    });
  assert(await atBottom(), "following: at bottom");
  assert((await page.textContent('[data-testid="follow"]')).includes("Following"), "follow on");
  await page.evaluate(() => (document.querySelector('[data-testid="log-view"]').scrollTop = 0));
  await page.waitForFunction(() => !document.querySelector('[data-testid="follow"]').textContent.includes("Following"));
  // New lines arrive; the view stays where the user put it.
  await fetch(srv.url + "api/trigger", {
    method: "POST",
    headers: { "X-Stilt-Token": srv.token },
    body: JSON.stringify({ manifest_names: ["db"] }),
  });
  await new Promise((r) => setTimeout(r, 800));
  assert((await page.evaluate(() => document.querySelector('[data-testid="log-view"]').scrollTop)) === 0, "stays");
  await page.click('[data-testid="follow"]');
  await page.waitForFunction(() => {
    const el = document.querySelector('[data-testid="log-view"]');
    return el.scrollTop + el.clientHeight >= el.scrollHeight - 20;
  });
});

test("dependency graph draws every resource and its edges; a click opens the resource", async ({ page, srv }) => {
  await page.goto(srv.url + "graph");
  await page.waitForSelector('[data-testid="node-web"]');
  const nodes = await page.locator(".node").count();
  const edges = await page.locator(".edge").count();
  assert(nodes === RESOURCES.length, `nodes ${nodes}`);
  assert(edges === 6, `edges ${edges}`); // web→api, api→db, api→cache, worker→queue, worker→db, broken→api
  // db has no deps: left of api, which is left of web.
  const x = async (n) => (await page.locator(`[data-testid="node-${n}"]`).boundingBox()).x;
  assert((await x("db")) < (await x("api")) && (await x("api")) < (await x("web")), "layered left to right");
  await page.hover('[data-testid="node-api"]');
  await shot(page, "graph");
  await page.click('[data-testid="node-api"]');
  await page.waitForURL(/\/r\/api$/);
});

test("timeline shows each build split into stages, and live update timings", async ({ page, srv }) => {
  await page.goto(srv.url + "r/web/timeline");
  await page.waitForSelector('[data-testid="timeline-builds"] .tl-seg');
  const stages = await page.$$eval('[data-testid="timeline-builds"] .tl-seg', (s) => [...new Set(s.map((e) => e.dataset.stage))]);
  for (const s of ["docker build", "push", "k8s apply", "pod ready"]) assert(stages.includes(s), `stage ${s} in ${stages}`);
  await page.waitForSelector('[data-testid="timeline-live"] .tl-seg');
  const live = await page.$$eval('[data-testid="timeline-live"] .tl-seg', (s) => s.map((e) => e.dataset.stage));
  assert(live.includes("transfer") && live.includes("run steps"), `live stages ${live}`);
  await shot(page, "timeline");
});

test("global timeline puts every resource's updates on one axis, split into stages", async ({ page, srv }) => {
  await page.goto(srv.url + "timeline");
  await page.waitForSelector('[data-testid="global-timeline"] .gtl-stage');
  for (const r of RESOURCES) await page.waitForSelector(`[data-testid="gtl-${r}"] .gtl-bar`);
  const stages = await page.$$eval(".gtl-stage", (s) => [...new Set(s.map((e) => e.dataset.stage))]);
  assert(stages.includes("docker build") && stages.includes("pod ready"), `stages ${stages}`);
  assert((await page.locator('[data-testid="gtl-broken"] .gtl-bar.err').count()) >= 1, "failed build marked");
  await shot(page, "global-timeline");
  await page.click('[data-testid="gtl-web"] .gtl-label');
  await page.waitForURL(/\/r\/web\/timeline$/);
});

test("resource page lists the objects behind the resource", async ({ page, srv }) => {
  await page.goto(srv.url + "r/web/objects");
  await page.waitForSelector('[data-testid="objects"]');
  await page.waitForFunction(() => document.querySelectorAll(".object").length >= 6);
  const kinds = await page.$$eval(".object-head .kind", (k) => k.map((e) => e.textContent));
  assert((await page.textContent('[data-testid="objects"]')).includes("web-7d9f8-x2k4z Running"), "pods listed");
  for (const k of ["FileWatch", "KubernetesApply", "KubernetesDiscovery", "LiveUpdate", "PortForward", "ConfigMap"])
    assert(kinds.includes(k), `${k} in ${kinds}`);
  await page.click(".object-head >> text=KubernetesApply");
  await page.waitForSelector(".object-json");
  await shot(page, "objects");
  // Leaving the page unsubscribes: other resources' objects are not kept.
  await page.click('[data-testid="nav-overview"]');
  await page.waitForFunction(() => (window.__stilt.objects.get("FileWatch")?.size ?? 0) === 0);
});

test("the page never polls: after load only the websocket carries updates", async ({ page, srv }) => {
  const requests = [];
  page.on("request", (r) => requests.push(r.url()));
  await page.goto(srv.url);
  await page.waitForSelector('[data-testid="row-web"]');
  const n = requests.length;
  await page.click('[data-testid="trigger-db"]');
  await new Promise((r) => setTimeout(r, 2500));
  const later = requests.slice(n).filter((u) => !u.includes("/api/trigger"));
  assert(later.length === 0, `no polling requests, saw: ${later}`);
});

test("security: token on POST and websocket, Origin and Host checked", async ({ page, srv }) => {
  const post = (headers) =>
    fetch(srv.url + "api/trigger", { method: "POST", headers, body: '{"manifest_names":["web"]}' }).then((r) => r.status);
  assert((await post({})) === 403, "no token");
  assert((await post({ "X-Stilt-Token": "nope" })) === 403, "wrong token");
  assert((await post({ "X-Stilt-Token": srv.token, Origin: "http://evil.example" })) === 403, "cross origin");
  assert((await post({ "X-Stilt-Token": srv.token })) === 200, "good token");
  const wsOk = (url) =>
    page.evaluate(
      (u) =>
        new Promise((res) => {
          const ws = new WebSocket(u);
          ws.onmessage = () => (ws.close(), res(true));
          ws.onerror = () => res(false);
        }),
      url,
    );
  await page.goto(srv.url);
  const base = srv.url.replace("http", "ws") + "ws/view?csrf=";
  assert((await wsOk(base + "wrong")) === false, "ws with a wrong token refused");
  assert((await wsOk(base + encodeURIComponent(srv.token))) === true, "ws with the token accepted");
  // An attacker page on another origin cannot open the websocket even with the token.
  const other = await page.context().newPage();
  await other.goto("about:blank");
  const crossOrigin = await other.evaluate(
    (u) =>
      new Promise((res) => {
        const ws = new WebSocket(u);
        ws.onmessage = () => res(true);
        ws.onerror = () => res(false);
      }),
    base + encodeURIComponent(srv.token),
  );
  assert(crossOrigin === false, "ws from another origin refused");
  await other.close();
});

test("Tiltfile errors show in a banner", async ({ page, srv }) => {
  await page.goto(srv.url);
  await page.waitForSelector('[data-testid="row-web"]');
  assert(!(await page.isVisible('[data-testid="banner"]')), "no banner while the Tiltfile is fine");
  // The simulated engine fails the next Tiltfile reload, and passes the one after.
  await page.click('[data-testid="trigger-(Tiltfile)"]');
  await page.waitForSelector('[data-testid="banner"]:has-text("k8s_yamll")', { timeout: 5000 });
  await waitStatus(page, "(Tiltfile)", "error");
  await shot(page, "tiltfile-error");
  await page.click('[data-testid="trigger-(Tiltfile)"]');
  await page.waitForSelector('[data-testid="banner"]', { state: "detached", timeout: 5000 });
});

test("a cluster connection error shows in a banner naming the cluster", async ({ page }) => {
  const srv = await startServer(["--settle-ms", "0", "--resources", "2", "--cluster-error", "cannot reach the Kubernetes cluster"]);
  try {
    await page.goto(srv.url);
    await page.waitForSelector('[data-testid="cluster-banner"]:has-text("Cluster default: cannot reach the Kubernetes cluster")', { timeout: 5000 });
    await shot(page, "cluster-error");
  } finally {
    await srv.stop();
  }
});

test("after a restart the page reconnects, picks up the new token and replays everything", async ({ page, ctx }) => {
  await page.goto(ctx.srv.url);
  await page.waitForSelector('[data-testid="connection"]:has-text("live")');
  await page.waitForSelector('[data-testid="row-web"]');
  const port = new URL(ctx.srv.url).port;
  await ctx.srv.stop();
  await page.waitForSelector('[data-testid="connection"]:has-text("reconnecting")');
  ctx.srv = await startServer(["--port", port, "--settle-ms", "0", "--resources", "3", "--log-lines", "5"]);
  assert(ctx.srv.token !== "", "new token");
  await page.waitForSelector('[data-testid="connection"]:has-text("live")', { timeout: 15_000 });
  // The new server has 3 resources (+ the Tiltfile) and its own, shorter log.
  await page.waitForFunction(() => document.querySelector('[data-testid="overview"]')?.dataset.count === "4");
  assert(!(await page.isVisible('[data-testid="row-worker"]')), "old resources are gone");
  await waitStatus(page, "db", "ok");
  // Actions use the new token.
  await page.click('[data-testid="disable-db"]');
  await waitStatus(page, "db", "disabled");
  await page.click('[data-testid="nav-logs"]');
  await page.waitForSelector(".log-line");
  const lines = Number(await page.getAttribute('[data-testid="log-view"]', "data-lines"));
  assert(lines > 0 && lines < 40, `logs replayed from the new server only (${lines} lines)`);
  await shot(page, "reconnected");
});

async function main() {
  const browser = await launch();
  const ctx = { srv: await startServer(["--settle-ms", "600000", "--log-lines", "20"]) };
  let passed = 0;
  let failed = 0;
  try {
    for (const t of tests) {
      if (only && !t.name.includes(only)) continue;
      const page = await browser.context.newPage();
      const errors = [];
      page.on("pageerror", (e) => errors.push(e.message));
      const t0 = Date.now();
      try {
        await t.fn({ page, srv: ctx.srv, ctx });
        if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
        passed++;
        console.log(`ok    ${t.name} (${Date.now() - t0} ms)`);
      } catch (e) {
        failed++;
        console.log(`FAIL  ${t.name} (${Date.now() - t0} ms)\n      ${String(e.stack ?? e).split("\n").slice(0, 3).join("\n      ")}`);
        await page.screenshot({ path: join(ARTIFACTS, `web-FAIL-${tests.indexOf(t)}.png`) }).catch(() => {});
      }
      await page.close();
    }
  } finally {
    await browser.close();
    await ctx.srv.stop();
  }
  console.log(`browser tests: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  console.log("browser tests: 0 passed, 1 failed");
  process.exit(1);
});
