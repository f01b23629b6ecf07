#!/usr/bin/env bash
# The dashboard's suite, in the order that fails fastest:
#   1. host unit tests            cargo test -p footfall-dashboard (reducer, shaping, API shapes)
#   2. clippy on wasm32           the browser build (host clippy runs in the workspace step)
#   3. cargo xtask dashboard      dist/dashboard/, fails over the 250 KB gzip budget
#   4. cargo build -p footfall    the binary the browser tests start
#   5. node --test npm/test-dashboard/
#                                 headless Chromium against `footfall standalone`: login, live
#                                 updates, restart → reconnecting → live, history = REST API
#                                 (dashboard.test.js); filters, bookmarks, comparison, CSV,
#                                 goals, share links (insights.test.js); screenshots in
#                                 artifacts/ (ignored by git)
# Needs what .ci/install-wasm.sh installs (wasm target, wasm-bindgen CLI, npm/ deps, Chromium);
# runs it first when something is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { echo; echo "==> dashboard: $*"; }

if ! command -v wasm-bindgen >/dev/null || [ ! -d npm/node_modules/playwright-core ] \
  || [ ! -x /usr/bin/chromium ]; then
  if [ -f .ci/install-wasm.sh ]; then bash .ci/install-wasm.sh; fi
fi

step "host unit tests"
cargo test -p footfall-dashboard

step "clippy (wasm32)"
cargo clippy -p footfall-dashboard --all-targets --target wasm32-unknown-unknown -- -D warnings

step "cargo xtask dashboard (size budget)"
cargo xtask dashboard

step "cargo build -p footfall"
cargo build -p footfall
export FOOTFALL_BIN="${FOOTFALL_BIN:-${CARGO_TARGET_DIR:-target}/debug/footfall}"

step "browser tests in Chromium against footfall standalone"
node --test npm/test-dashboard/
