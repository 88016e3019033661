#!/bin/sh
# Build the in-container helper as a small static binary (glibc static-pie; no musl target here).
# Prints the path of the binary. Honors CARGO_TARGET_DIR.
set -eu
cd "$(dirname "$0")/../.."
RUSTFLAGS="-C target-feature=+crt-static" \
CARGO_PROFILE_RELEASE_STRIP=symbols CARGO_PROFILE_RELEASE_OPT_LEVEL=s \
CARGO_PROFILE_RELEASE_PANIC=abort CARGO_PROFILE_RELEASE_LTO=true CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
  cargo build -q --target x86_64-unknown-linux-gnu -p stilt-syncer --release --no-default-features >&2
echo "${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release/stilt-syncer"
