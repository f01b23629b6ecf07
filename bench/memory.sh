#!/usr/bin/env bash
# Memory of `footfall standalone` under steady traffic: 1,000 events/s (200 beacons of 5
# events per second, fixed rate, bench/src/fixed_rate.rs) for DURATION seconds, RSS sampled
# from /proc every SAMPLE seconds. Prints the samples, the peak and the last; the target is
# <= 100 MB after 10 minutes. Loopback only, bounded by DURATION.
#
#   bench/memory.sh                  # 600 s
#   DURATION=120 bench/memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-600}
SAMPLE=${SAMPLE:-30}
RATE=${RATE:-200}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

cargo build --quiet --release -p footfall -p footfall-bench
BIN=$CARGO_TARGET_DIR/release
DATA=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DATA"; }
trap cleanup EXIT
wait_port() { for _ in $(seq 1 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

PORT=18094
# Events are accepted only for registered sites.
"$BIN/footfall" sites add bench.test --data-dir "$DATA" >/dev/null
"$BIN/footfall" standalone --listen 127.0.0.1:$PORT --data-dir "$DATA" --admin-token memory-bench-token \
  --rate-limit 0 --log warn >/dev/null 2>&1 & SERVER=$!; PIDS+=($SERVER)
wait_port $PORT
source bench/lib.sh
rss_mb() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$SERVER/status"; }
start_rss=$(rss_mb)
echo "start: RSS $start_rss MB; $((RATE * 5)) events/s for $DURATION s"

"$BIN/fixed-rate" --url "http://127.0.0.1:$PORT/api/batch" --rate "$RATE" --duration "$DURATION" \
  --connections 8 >"$DATA/load.txt" & LOAD=$!; PIDS+=($LOAD)
peak=0
for ((t = SAMPLE; t <= DURATION; t += SAMPLE)); do
  sleep "$SAMPLE"
  now=$(rss_mb)
  peak=$(awk -v a="$peak" -v b="$now" 'BEGIN { print (b > a) ? b : a }')
  echo "t=${t}s RSS ${now} MB"
done
wait $LOAD || true
echo "load: $(cat "$DATA/load.txt")"
stored=$(curl -s -H 'Authorization: Bearer memory-bench-token' \
  "http://127.0.0.1:$PORT/api/stats/summary?site=bench.test" | sed -E 's/.*"events":([0-9]+).*/\1/')
hwm=$(awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$SERVER/status")
end_rss=$(rss_mb)
result memory_rss_start_mb "$start_rss"
result memory_rss_end_mb "$end_rss"
result memory_hwm_mb "$hwm"
echo "RSS after ${DURATION} s: $end_rss MB; peak sampled ${peak} MB; high-water mark ${hwm} MB (target <= 100 MB); events stored: $stored"
