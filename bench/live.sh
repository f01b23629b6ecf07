#!/usr/bin/env bash
# Live latency: HTTP request → the WebSocket tick that shows the event, p50/p95/p99 over
# EVENTS events against `footfall standalone` (target p95 ≤ 250 ms), then the same with
# 1,000 idle + 100 active WebSocket clients connected, printed as a ratio to the first run.
# Loopback only, bounded by EVENTS × GAP.
set -euo pipefail
# Admin tokens are at least 16 characters.
TOKEN=bench-admin-token-0001
cd "$(dirname "$0")/.."
EVENTS=${EVENTS:-1000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
ulimit -n 8192 2>/dev/null || true
cargo build --quiet --release -p footfall -p footfall-bench
BIN=$CARGO_TARGET_DIR/release
DATA=$(mktemp -d)
# Events are accepted only for registered sites.
"$BIN/footfall" sites add latency.bench --data-dir "$DATA" >/dev/null
"$BIN/footfall" standalone --listen 127.0.0.1:18094 --data-dir "$DATA" --admin-token "$TOKEN" \
  --rate-limit 0 --log warn >/dev/null 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$DATA"' EXIT
for _ in $(seq 1 200); do (exec 3<>/dev/tcp/127.0.0.1/18094) 2>/dev/null && break; sleep 0.05; done

source bench/lib.sh
cpu() { awk '{print $14 + $15}' /proc/"$PID"/stat; }
run() {
  local before after out
  before=$(cpu)
  out=$("$BIN/live-latency" --base http://127.0.0.1:18094 --token "$TOKEN" --events "$EVENTS" "$@")
  after=$(cpu)
  echo "$out cpu_ticks=$((after - before))"
}
single=$(run --active 1 --idle 0)
fanout=$(run --active 100 --idle 1000)
echo "single client:           $single"
echo "1000 idle + 100 active:  $fanout"
p95() { sed -E 's/.*p95_ms=([0-9.]+).*/\1/' <<<"$1"; }
ticks() { sed -E 's/.*cpu_ticks=([0-9]+).*/\1/' <<<"$1"; }
result live_p95_ms "$(p95 "$single")"
result live_fanout_p95_ms "$(p95 "$fanout")"
awk -v a="$(p95 "$fanout")" -v b="$(p95 "$single")" -v c="$(ticks "$fanout")" -v d="$(ticks "$single")" \
  'BEGIN { printf "fan-out / single: p95 latency x%.2f, server CPU x%.2f (target p95 <= 250 ms)\n", a / b, (d > 0 ? c / d : 0) }'
