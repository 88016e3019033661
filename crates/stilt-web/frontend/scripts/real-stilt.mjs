// Browser test against a real `stilt up` (the engine, not the demo's simulation), once the web
// UI is wired into the binary:  STILT_BIN=target/debug/stilt node scripts/real-stilt.mjs
// Local resources only (no Docker, no cluster). Prints `real stilt: N passed, N failed`.

import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ARTIFACTS, launch } from "./harness.mjs";

const BIN = process.env.STILT_BIN;
if (!BIN) {
  console.log("real stilt: STILT_BIN not set, skipped");
  process.exit(0);
}
const PORT = Number(process.env.STILT_REAL_PORT ?? 10377);
const dir = mkdtempSync(join(tmpdir(), "stilt-web-real-"));
mkdirSync(join(dir, "src"));
writeFileSync(
  join(dir, "Tiltfile"),
  `local_resource('setup', 'echo installing deps; sleep 1; echo deps ok', labels=['backend'])
local_resource('server', serve_cmd='i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 1; done', deps=['src'], resource_deps=['setup'], labels=['backend'], links=['http://localhost:8080'])
local_resource('lint', 'echo lint ok', trigger_mode=TRIGGER_MODE_MANUAL, labels=['tools'])
local_resource('broken', 'echo oops >&2; exit 1', labels=['tools'])
`,
);
const proc = spawn(BIN, ["up", "--port", String(PORT), "--stream", "-f", join(dir, "Tiltfile")], {
  env: { ...process.env, STILT_HOME: join(dir, "home") },
  stdio: ["ignore", "pipe", "pipe"],
});
let log = "";
proc.stdout.on("data", (d) => (log += d));
proc.stderr.on("data", (d) => (log += d));
const url = `http://localhost:${PORT}/`;

let passed = 0;
let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok    real stilt: ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL  real stilt: ${name}\n      ${String(e.message ?? e).split("\n")[0]}`);
  }
}

const b = await launch();
try {
  const page = await b.context.newPage();
  for (let i = 0; i < 100; i++) {
    try {
      await page.goto(url);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  await check("resources turn healthy; the failing one shows an error", async () => {
    await page.waitForSelector('[data-testid="row-server"][data-status="ok"]', { timeout: 20000 });
    await page.waitForSelector('[data-testid="row-broken"][data-status="error"]', { timeout: 20000 });
    await page.screenshot({ path: join(ARTIFACTS, "real-overview.png") });
  });
  await check("trigger runs a manual resource again", async () => {
    await page.goto(url + "r/lint/history");
    await page.waitForSelector('[data-testid="build-row"]');
    const n = await page.locator('[data-testid="build-row"]').count();
    await page.click('[data-testid="trigger-lint"]');
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="build-row"]').length > n, n, {
      timeout: 15000,
    });
  });
  await check("disable stops the server, enable brings it back", async () => {
    await page.goto(url);
    await page.click('[data-testid="disable-server"]');
    await page.waitForSelector('[data-testid="row-server"][data-status="disabled"]', { timeout: 15000 });
    await page.click('[data-testid="disable-server"]');
    await page.waitForSelector('[data-testid="row-server"][data-status="ok"]', { timeout: 20000 });
  });
  await check("trigger mode override survives the engine's next status write", async () => {
    await page.click('[data-testid="mode-setup"]');
    await page.waitForFunction(() => document.querySelector('[data-testid="mode-setup"]').textContent === "manual");
    await new Promise((r) => setTimeout(r, 1500));
    const m = await page.textContent('[data-testid="mode-setup"]');
    if (m !== "manual") throw new Error(`mode flipped back to ${m}`);
    await page.click('[data-testid="mode-setup"]');
  });
  await check("graph, timeline, objects and logs render", async () => {
    await page.goto(url + "graph");
    await page.waitForSelector('[data-testid="node-server"]');
    if ((await page.locator(".edge").count()) !== 1) throw new Error("setup -> server edge");
    await page.screenshot({ path: join(ARTIFACTS, "real-graph.png") });
    await page.goto(url + "timeline");
    await page.waitForSelector('[data-testid="gtl-setup"] .gtl-bar');
    await page.screenshot({ path: join(ARTIFACTS, "real-timeline.png") });
    await page.goto(url + "r/server/objects");
    await page.waitForFunction(() => document.querySelector('[data-testid="objects"]')?.textContent.includes("Cmd"));
    await page.goto(url + "logs");
    await page.waitForFunction(() => [...document.querySelectorAll(".log-line")].some((l) => l.textContent.includes("tick")));
    await page.screenshot({ path: join(ARTIFACTS, "real-logs.png") });
  });
} finally {
  await b.close();
  proc.kill("SIGTERM");
  await new Promise((r) => (proc.exitCode !== null ? r() : proc.once("exit", r)));
  rmSync(dir, { recursive: true, force: true });
}
if (failed) console.log(log.split("\n").slice(-30).join("\n"));
console.log(`real stilt: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
