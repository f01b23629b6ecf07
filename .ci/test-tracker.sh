#!/usr/bin/env bash
# The tracker's part of `cargo xtask test`, for working on the tracker alone:
#   dist             cargo xtask dist: wasm + npm package + demo + dashboard, size budgets
#   tracker wasm     wasm-bindgen-test: the browser edge in headless Chromium
#   tracker browser  node --test npm/test/: end to end in Chromium (stand-in collector, the
#                    real binary, a page on another origin, behind nginx), npm pack/import
# Host unit tests (`cargo test -p footfall-sdk-wasm`) and wasm32 clippy run in the
# `cargo test` and `clippy` steps. Needs .ci/install.sh to have run.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo xtask test dist "tracker wasm" "tracker browser"
