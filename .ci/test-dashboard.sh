#!/usr/bin/env bash
# The dashboard's part of `cargo xtask test`, for working on the dashboard alone:
#   dist               cargo xtask dist: the dashboard (and tracker) into dist/, size budgets
#   dashboard browser  node --test npm/test-dashboard/: headless Chromium against the real
#                      `footfall standalone` (login, live updates, restart → reconnecting →
#                      live, history = REST API: dashboard.test.js; filters, bookmarks,
#                      comparison, CSV, goals, share links: insights.test.js); screenshots
#                      in artifacts/ (ignored by git)
# Host unit tests (`cargo test -p footfall-dashboard`) and wasm32 clippy run in the
# `cargo test` and `clippy` steps. Needs .ci/install.sh to have run.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo xtask test dist "dashboard browser"
