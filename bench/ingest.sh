#!/usr/bin/env bash
# Ingest throughput: `footfall standalone` (validation, enrichment, durable group-commit
# appends to its journal; the store indexes behind) against a bare hyper server that only reads the body and answers 204 —
# same machine, same run, same request mix, same load generator. Prints req/s, p99 and the
# ratio; the CPU each server used per event (events/s per core); and p99 at half of
# standalone's maximum rate, open loop (bench/src/fixed-rate.rs), against the bare server at
# the same rate. Then how long the store took to catch up with the journal after each run, the
# store's own rate over load + catch-up, and that every acknowledged event is stored once.
# Loopback only; each run is bounded by DURATION.
#
#   bench/ingest.sh            # 10 s per target
#   DURATION=30s CONNECTIONS=64 bench/ingest.sh
set -euo pipefail
# Admin tokens are at least 16 characters.
TOKEN=bench-admin-token-0001
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
source bench/lib.sh
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }

cargo build --quiet --release -p footfall -p footfall-bench
BIN=$CARGO_TARGET_DIR/release
DATA=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DATA"; }
trap cleanup EXIT

wait_port() { for _ in $(seq 1 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

"$BIN/bare-hyper" 127.0.0.1:18091 2>/dev/null & BARE=$!; PIDS+=($BARE)
# Events are accepted only for registered sites.
"$BIN/footfall" sites add bench.test --data-dir "$DATA" >/dev/null
"$BIN/footfall" standalone --listen 127.0.0.1:18092 --data-dir "$DATA" --admin-token "$TOKEN" \
  --rate-limit 0 --log warn >/dev/null 2>&1 & FOOTFALL=$!; PIDS+=($FOOTFALL)
wait_port 18091; wait_port 18092

run() { # pid port -> "req/s p99_ms non_2xx cpu_seconds requests"
  local out rps p99 cpu_before requests
  cpu_before=$(cpu_seconds "$1")
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/ingest.lua "http://127.0.0.1:$2/api/batch")
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v=v*1000}; print v}' <<<"$out")
  local non2xx; non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out"); non2xx=${non2xx:-0}
  echo "$rps $p99 $non2xx $(awk -v a="$(cpu_seconds "$1")" -v b="$cpu_before" 'BEGIN {print a - b}') $requests"
}
metric() { curl -s "http://127.0.0.1:18092/metrics" | awk -v m="$1" '$1==m {print $2}'; }
# Seconds until the journal's backlog is 0 again (the gauge is sampled every 0.25 s).
catch_up() {
  local t0; t0=$(date +%s.%N)
  until [ "$(metric footfall_journal_backlog_bytes)" = "0" ]; do sleep 0.05; done
  awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN {printf "%.2f", a - b}'
}
secs=${DURATION%s}

read -r base_rps base_p99 _ base_cpu _ < <(run "$BARE" 18091)
read -r ff_rps ff_p99 ff_errors ff_cpu ff_requests < <(run "$FOOTFALL" 18092)
backlog_at_end=$(metric footfall_journal_backlog_bytes)
ff_catch_up=$(catch_up)
stored_after_run=$(metric footfall_processor_events_stored_total)
# Latency at half of standalone's maximum, open loop (no coordinated omission), and the bare
# server at the same rate: the bare figure is what loopback and the generator cost.
half=$(awk -v r="$ff_rps" 'BEGIN { printf "%d", r / 2 }')
half_p99() { "$BIN/fixed-rate" --url "http://127.0.0.1:$1/api/batch" --rate "$half" --duration "$secs" \
  --connections "$CONNECTIONS" | sed -E 's/.*p99_ms=([0-9.]+).*/\1/'; }
ff_half_p99=$(half_p99 18092)
half_catch_up=$(catch_up)
base_half_p99=$(half_p99 18091)
stored=$(curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:18092/api/stats/summary?site=bench.test" | sed -E 's/.*"events":([0-9]+).*/\1/')

printf '\n%-28s %12s %10s\n' "target (5 events/request)" "req/s" "p99 ms"
printf '%-28s %12.0f %10.2f\n' "bare hyper (204, baseline)" "$base_rps" "$base_p99"
printf '%-28s %12.0f %10.2f\n' "footfall standalone" "$ff_rps" "$ff_p99"
awk -v a="$ff_rps" -v b="$base_rps" 'BEGIN { printf "\nratio standalone / bare hyper: %.2f  (target >= 0.35, aim 0.50)\n", a / b }'
acknowledged=$(( (ff_requests - ff_errors) * 5 ))
echo "non-2xx answers from footfall: $ff_errors; events acknowledged in the closed-loop run: $acknowledged (at least; wrk leaves out answers in flight at its end)"
echo "store: caught up ${ff_catch_up} s after the closed-loop run (journal backlog at its end: ${backlog_at_end} bytes), having stored $stored_after_run events"
store_rate=$(awk -v n="$stored_after_run" -v s="$secs" -v c="$ff_catch_up" 'BEGIN {printf "%.0f", n / (s + c)}')
echo "store rate over load + catch-up: $store_rate events/s; after the half-load run it caught up in ${half_catch_up} s"
echo "events in the store's summary after both runs: $stored; counted once: $( [ "$stored" = "$(metric footfall_processor_events_stored_total)" ] && echo yes || echo NO)"
echo "p99 at half of standalone's maximum ($half req/s, open loop): standalone $ff_half_p99 ms, bare hyper $base_half_p99 ms (target <= 5 ms)"
# Events per CPU-second of each server process during the closed-loop run (5 events per request).
ff_per_core=$(div "$(awk -v r="$ff_rps" -v s="$secs" 'BEGIN {print r * 5 * s}')" "$ff_cpu")
base_per_core=$(div "$(awk -v r="$base_rps" -v s="$secs" 'BEGIN {print r * 5 * s}')" "$base_cpu")
echo "events/s per core: standalone $ff_per_core (CPU ${ff_cpu} s), bare hyper $base_per_core (CPU ${base_cpu} s)"
result ingest_bare_rps "$base_rps"
result ingest_standalone_rps "$ff_rps"
result ingest_standalone_non2xx "$ff_errors"
result ingest_store_catch_up_s "$ff_catch_up"
result ingest_store_events_per_s "$store_rate"
result ingest_half_load_catch_up_s "$half_catch_up"
result ingest_bare_half_p99_ms "$base_half_p99"
result ingest_standalone_half_p99_ms "$ff_half_p99"
result ingest_bare_events_per_core "$base_per_core"
result ingest_standalone_events_per_core "$ff_per_core"
