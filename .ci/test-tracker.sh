#!/usr/bin/env bash
# The tracker's own suite, in the order that fails fastest:
#   1. cargo xtask dist        build wasm + npm package + demo, fail over the size budget
#   2. host unit tests         cargo test -p footfall-sdk-wasm (core logic, injectable clock)
#   3. clippy on wasm32        the browser edge only compiles for wasm32
#   4. wasm-bindgen-test       the browser edge in headless Chromium
#   5. cargo build -p footfall the debug binary, which embeds dist/ (built in step 1)
#   6. node --test npm/test/   end-to-end in Chromium (recording stand-in collector, and the
#                              real `footfall standalone`), npm pack/install/import; the field
#                              tests: a page on another origin with the script tag and with
#                              the npm build, the binary started from another folder, bytes
#                              on the wire against the budgets, and nginx running
#                              deploy/nginx.conf in front of footfall (cdn.test.js)
# Needs .ci/install-wasm.sh to have run.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { echo; echo "==> tracker: $*"; }

step "cargo xtask dist (size budget)"
cargo xtask dist

step "host unit tests"
cargo test -p footfall-sdk-wasm

step "clippy (wasm32)"
cargo clippy -p footfall-sdk-wasm --all-targets --target wasm32-unknown-unknown -- -D warnings

step "wasm-bindgen-test in headless Chromium"
CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}" \
  cargo test -p footfall-sdk-wasm --target wasm32-unknown-unknown

step "cargo build -p footfall (embeds dist/)"
cargo build -p footfall

step "end-to-end in Chromium (stand-in collector, footfall standalone, another origin, nginx), npm pack"
# A per-test timeout: a hung browser fails the test instead of the whole CI run.
(cd npm && node --test --test-timeout=120000 test/)
