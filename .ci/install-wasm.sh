#!/usr/bin/env bash
# Installs what the tracker's build and browser tests need, idempotently (skips what is
# present), from the registries this project can reach: rustup's wasm target, the
# wasm-bindgen CLI of exactly the version in Cargo.lock (crates.io), wasm-opt/esbuild/
# playwright-core (npm, pinned by npm/package-lock.json), Chromium + ChromeDriver (Debian).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "install-wasm: $*"; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# The CLI must match the wasm-bindgen crate in Cargo.lock exactly, or its glue does not fit.
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ -z "$want" ]; then
  echo "install-wasm: wasm-bindgen not found in Cargo.lock" >&2
  exit 1
fi
if [ "$have" != "$want" ]; then
  # No --locked: the CLI's own lockfile names a crate version missing from the mirror.
  log "cargo install wasm-bindgen-cli --version $want (was: ${have:-none}; ~7 min cold)"
  cargo install wasm-bindgen-cli --version "$want"
fi

# npm dev dependencies: binaryen (wasm-opt) 132, esbuild, terser, playwright-core.
if [ ! -x npm/node_modules/.bin/wasm-opt ] || [ ! -x npm/node_modules/.bin/esbuild ] \
  || [ ! -x npm/node_modules/.bin/terser ] \
  || [ ! -d npm/node_modules/playwright-core ] \
  || [ npm/package-lock.json -nt npm/node_modules/.package-lock.json ]; then
  log "npm ci (npm/)"
  (cd npm && npm ci --no-audit --no-fund)
fi

# Debian's Chromium and its matching ChromeDriver (never `npx playwright install`).
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  log "apt-get install chromium chromium-driver"
  apt-get update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends chromium chromium-driver
fi
log "ok (wasm-bindgen $want, $(npm/node_modules/.bin/wasm-opt --version | head -1))"
