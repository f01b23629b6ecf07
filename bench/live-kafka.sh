#!/usr/bin/env bash
# Live latency through Kafka: HTTP request to `footfall collector` → Kafka → `footfall
# processor` (store, delta published to footfall.metrics) → the processor's gateway merges the
# topic → WebSocket tick. p50/p95/p99 over EVENTS events (target p95 ≤ 1 s). Needs tansu
# (.ci/install-kafka.sh). Loopback only, bounded by EVENTS × GAP.
set -euo pipefail
# Admin tokens are at least 16 characters.
TOKEN=bench-admin-token-0001
cd "$(dirname "$0")/.."
EVENTS=${EVENTS:-1000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
TANSU=${FOOTFALL_TANSU:-.ci/cache/bin/tansu}
[ -x "$TANSU" ] || bash .ci/install-kafka.sh >/dev/null
cargo build --quiet --release -p footfall -p footfall-bench
BIN=$CARGO_TARGET_DIR/release
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 1; rm -rf "$WORK"; }
trap cleanup EXIT
wait_port() { for _ in $(seq 1 400); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

TANSU=$(realpath "$TANSU")
# tansu reads a .env from its working directory: give it an empty one.
(cd "$WORK" && exec "$TANSU" broker --listener-url tcp://127.0.0.1:19092 \
  --advertised-listener-url tcp://127.0.0.1:19092 --storage-engine memory:// >"$WORK/tansu.log" 2>&1) &
PIDS+=($!)
wait_port 19092
"$BIN/footfall" collector --listen 127.0.0.1:18095 --brokers 127.0.0.1:19092 --rate-limit 0 --accept-any-site --log warn \
  >/dev/null 2>"$WORK/collector.log" &
PIDS+=($!)
"$BIN/footfall" processor --listen 127.0.0.1:18096 --brokers 127.0.0.1:19092 --admin-token "$TOKEN" \
  --data-dir "$WORK/data" --log warn >/dev/null 2>"$WORK/processor.log" &
PIDS+=($!)
wait_port 18095; wait_port 18096

out=$("$BIN/live-latency" --base http://127.0.0.1:18096 --ingest http://127.0.0.1:18095 --token "$TOKEN" \
  --events "$EVENTS" --site kafka-latency.bench)
echo "$out"
source bench/lib.sh
result live_kafka_p95_ms "$(sed -E 's/.*p95_ms=([0-9.]+).*/\1/' <<<"$out")"
