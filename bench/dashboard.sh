#!/usr/bin/env bash
# Dashboard budget: wasm + JS gzip size (goal ≤ 250 KB) and time from navigation to the
# first live numbers in headless Chromium against `footfall standalone` on loopback.
# Builds what it measures (release binary, so the server is not what is slow), unless
# FOOTFALL_BIN names a binary to use.
#   bench/dashboard.sh            RUNS=7 by default; results in bench/results/dashboard.json
set -euo pipefail
cd "$(dirname "$0")/.."
cargo xtask dashboard
if [ -z "${FOOTFALL_BIN:-}" ]; then
  cargo build --release -p footfall
  export FOOTFALL_BIN="${CARGO_TARGET_DIR:-target}/release/footfall"
fi
node npm/test-dashboard/bench.mjs
