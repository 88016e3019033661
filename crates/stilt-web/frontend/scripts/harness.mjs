// Shared by the browser tests and the benchmark: start the demo server (a real stilt-web server
// over a simulated engine) and a headless Debian chromium driven by playwright-core.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, "../../../..");
export const ARTIFACTS = process.env.STILT_ARTIFACTS ?? join(REPO, "artifacts");
const TARGET = process.env.CARGO_TARGET_DIR ?? "/work/target-web";
export const DEMO = process.env.STILT_DEMO_SERVER ?? join(TARGET, "release/examples/demo_server");

mkdirSync(ARTIFACTS, { recursive: true });

/// Starts demo_server with the given arguments; resolves once it prints its URL.
export function startServer(args = []) {
  return new Promise((resolveP, reject) => {
    // STILT_WEB_ASSETS=<dir> serves a fresh `vite build` without rebuilding the binary.
    const assets = process.env.STILT_WEB_ASSETS ? ["--assets-dir", process.env.STILT_WEB_ASSETS] : [];
    const proc = spawn(DEMO, ["--port", "0", ...assets, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`demo_server did not start: ${err}`)), 30_000);
    proc.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/STILT_WEB_READY (\S+) (\S+)/);
      if (m) {
        clearTimeout(timer);
        resolveP({
          url: m[1],
          token: m[2],
          proc,
          stop: () =>
            new Promise((r) => {
              if (proc.exitCode !== null) return r();
              proc.once("exit", () => r());
              proc.kill("SIGTERM");
            }),
        });
      }
    });
    proc.stderr.on("data", (d) => (err += d));
    proc.on("exit", (code) => {
      clearTimeout(timer);
      if (!out.includes("STILT_WEB_READY")) reject(new Error(`demo_server exited ${code}: ${err}`));
    });
  });
}

export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-quic",
  "--no-first-run",
  "--disable-component-update",
  "--disable-sync",
];

/// A browser context with a fresh user data dir (removed on close).
export async function launch(viewport = { width: 1440, height: 900 }) {
  const dir = mkdtempSync(join(tmpdir(), "stilt-web-chromium-"));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
    viewport,
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
