#!/usr/bin/env bash
# One command for the web UI's checks: the committed bundle is current, the browser tests in
# headless chromium against a real server, and the benchmark. Prints `N passed, N failed` last
# and exits non-zero on any failure. Screenshots and bench.json land in <repo>/artifacts/.
#   crates/stilt-web/frontend/scripts/e2e.sh            # everything
#   SKIP_BENCH=1 crates/stilt-web/frontend/scripts/e2e.sh
#   STILT_BIN=/path/to/stilt crates/stilt-web/frontend/scripts/e2e.sh   # + a real `stilt up`
set -uo pipefail
FRONTEND="$(cd "$(dirname "$0")/.." && pwd)"
REPO="$(cd "$FRONTEND/../../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-web}"
passed=0
failed=0
step() { # name, command...
  local name="$1"; shift
  echo "---- $name"
  if "$@"; then passed=$((passed + 1)); echo "ok    $name"; else failed=$((failed + 1)); echo "FAIL  $name"; fi
}

cd "$FRONTEND"
"$FRONTEND/scripts/setup-browser.sh" || { echo "chromium could not be installed"; echo "0 passed, 1 failed"; exit 1; }
[ -d node_modules ] || npm ci --no-audit --no-fund >/dev/null || { echo "npm ci failed"; echo "0 passed, 1 failed"; exit 1; }

bundle_current() {
  local tmp; tmp="$(mktemp -d)"
  npx --no-install vite build --outDir "$tmp" --emptyOutDir --logLevel error >/dev/null &&
    diff -r "$tmp" "$FRONTEND/dist" && rm -rf "$tmp"
}
step "typecheck (tsc --noEmit)" npx --no-install tsc --noEmit
step "committed bundle (frontend/dist) matches the sources" bundle_current
step "build the demo server (release)" cargo build --release -q -p stilt-web --example demo_server --manifest-path "$REPO/Cargo.toml"

echo "---- browser tests"
node scripts/e2e.mjs > >(tee /tmp/stilt-web-e2e.$$.log) 2>&1
rc=$?
wait
p=$(sed -n 's/^browser tests: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' /tmp/stilt-web-e2e.$$.log)
f=$(sed -n 's/^browser tests: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' /tmp/stilt-web-e2e.$$.log)
rm -f /tmp/stilt-web-e2e.$$.log
passed=$((passed + ${p:-0}))
failed=$((failed + ${f:-0}))
if [ "$rc" != 0 ] && [ "${f:-0}" = 0 ]; then failed=$((failed + 1)); fi

# With a stilt binary that serves the UI (STILT_BIN=...), the same checks against the real engine.
if [ -n "${STILT_BIN:-}" ]; then
  step "browser tests against a real stilt up ($STILT_BIN)" node scripts/real-stilt.mjs
fi

if [ "${SKIP_BENCH:-}" = "" ]; then
  step "benchmark (300 and 1,000 resources; 50 x 2,000 log lines)" node scripts/bench.mjs
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
