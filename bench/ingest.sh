#!/usr/bin/env bash
# Ingest throughput: `footfall standalone` (validation, enrichment, durable group-commit
# appends to its journal; the store indexes behind) against a bare hyper server that only reads the body and answers 204 —
# same machine, same run, same request mix, same load generator. Prints req/s, p99 and the
# ratio; the CPU each server used per event (events/s per core); and p99 at half of
# standalone's maximum rate, open loop (bench/src/fixed-rate.rs), against the bare server at
# the same rate. Then how long the store took to catch up with the journal after each run, the
# store's own rate over load + catch-up, and that every acknowledged event is stored once.
#
# Both servers are measured ROUNDS times, alternately (bare, standalone, bare, ...), and the
# figures are the medians, printed with every round: on a shared 2-core machine one 10 s run
# of either server moves by several percent from one minute to the next, and alternating
# puts both under the same conditions. The next round starts once the store has caught up,
# so its indexing never runs during the bare server's turn.
# Loopback only; each run is bounded by DURATION.
#
#   bench/ingest.sh            # 3 rounds of 10 s per target
#   DURATION=30s CONNECTIONS=64 ROUNDS=5 bench/ingest.sh
set -euo pipefail
# Admin tokens are at least 16 characters.
TOKEN=bench-admin-token-0001
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
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
# Seconds until the journal's backlog is 0 again (the gauge is sampled every 0.25 s). Then
# the page cache's dirty data goes to disk (not counted): otherwise the kernel writes back the
# store's catch-up during the next run, and that run, bare or not, pays for the one before.
catch_up() {
  local t0; t0=$(date +%s.%N)
  until [ "$(metric footfall_journal_backlog_bytes)" = "0" ]; do sleep 0.05; done
  awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN {printf "%.2f", a - b}'
  sync
}
secs=${DURATION%s}

# The middle value of its arguments (the lower middle of an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
range() { printf '%s\n' "$@" | sort -g | awk 'NR==1 {lo=$1} {hi=$1} END {print lo "–" hi}'; }

bare_rpss=(); bare_p99s=(); bare_cpus=(); ff_rpss=(); ff_p99s=(); ff_cpus=(); catch_ups=()
ff_errors=0; ff_requests=0
sync
for round in $(seq 1 "$ROUNDS"); do
  read -r rps p99 _ cpu _ < <(run "$BARE" 18091)
  bare_rpss+=("$rps"); bare_p99s+=("$p99"); bare_cpus+=("$cpu")
  read -r rps p99 errors cpu requests < <(run "$FOOTFALL" 18092)
  ff_rpss+=("$rps"); ff_p99s+=("$p99"); ff_cpus+=("$cpu")
  ff_errors=$((ff_errors + errors)); ff_requests=$((ff_requests + requests))
  backlog_at_end=$(metric footfall_journal_backlog_bytes)
  catch_ups+=("$(catch_up)")
  echo "round $round: bare hyper ${bare_rpss[-1]} req/s, standalone ${ff_rpss[-1]} req/s ($(div "${ff_rpss[-1]}" "${bare_rpss[-1]}")); store caught up ${catch_ups[-1]} s after (journal backlog at the run's end: $backlog_at_end bytes)"
done
stored_after_runs=$(metric footfall_processor_events_stored_total)
base_rps=$(median "${bare_rpss[@]}"); base_p99=$(median "${bare_p99s[@]}")
ff_rps=$(median "${ff_rpss[@]}"); ff_p99=$(median "${ff_p99s[@]}")
ff_catch_up=$(median "${catch_ups[@]}")
# Latency at half of standalone's maximum, open loop (no coordinated omission), and the bare
# server at the same rate: the bare figure is what loopback and the generator cost.
half=$(awk -v r="$ff_rps" 'BEGIN { printf "%d", r / 2 }')
half_p99() { "$BIN/fixed-rate" --url "http://127.0.0.1:$1/api/batch" --rate "$half" --duration "$secs" \
  --connections "$CONNECTIONS" | sed -E 's/.*p99_ms=([0-9.]+).*/\1/'; }
ff_half_p99s=(); base_half_p99s=(); half_catch_ups=()
for round in $(seq 1 "$ROUNDS"); do
  ff_half_p99s+=("$(half_p99 18092)")
  half_catch_ups+=("$(catch_up)")
  base_half_p99s+=("$(half_p99 18091)")
  echo "round $round at $half req/s: p99 standalone ${ff_half_p99s[-1]} ms, bare hyper ${base_half_p99s[-1]} ms"
done
ff_half_p99=$(median "${ff_half_p99s[@]}"); base_half_p99=$(median "${base_half_p99s[@]}")
half_catch_up=$(median "${half_catch_ups[@]}")
stored=$(curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:18092/api/stats/summary?site=bench.test" | sed -E 's/.*"events":([0-9]+).*/\1/')

printf '\n%-28s %12s %16s %10s\n' "target (5 events/request)" "req/s (median)" "rounds" "p99 ms"
printf '%-28s %14.0f %16s %10.2f\n' "bare hyper (204, baseline)" "$base_rps" "$(range "${bare_rpss[@]}")" "$base_p99"
printf '%-28s %14.0f %16s %10.2f\n' "footfall standalone" "$ff_rps" "$(range "${ff_rpss[@]}")" "$ff_p99"
awk -v a="$ff_rps" -v b="$base_rps" 'BEGIN { printf "\nratio standalone / bare hyper (medians): %.2f  (target >= 0.35, aim 0.50)\n", a / b }'
acknowledged=$(( (ff_requests - ff_errors) * 5 ))
echo "non-2xx answers from footfall: $ff_errors; events acknowledged in the closed-loop runs: $acknowledged (at least; wrk leaves out answers in flight at its end)"
echo "store: caught up ${ff_catch_up} s (median) after a closed-loop run, $(range "${catch_ups[@]}") s; $stored_after_runs events stored after the $ROUNDS runs"
catch_up_total=$(printf '%s\n' "${catch_ups[@]}" | awk '{t+=$1} END {print t}')
store_rate=$(awk -v n="$stored_after_runs" -v s="$secs" -v r="$ROUNDS" -v c="$catch_up_total" 'BEGIN {printf "%.0f", n / (s * r + c)}')
echo "store rate over load + catch-up: $store_rate events/s; after a half-load run it caught up in ${half_catch_up} s (median)"
echo "events in the store's summary after all runs: $stored; counted once: $( [ "$stored" = "$(metric footfall_processor_events_stored_total)" ] && echo yes || echo NO)"
echo "p99 at half of standalone's maximum ($half req/s, open loop), median of $ROUNDS: standalone $ff_half_p99 ms ($(range "${ff_half_p99s[@]}")), bare hyper $base_half_p99 ms ($(range "${base_half_p99s[@]}")) (target <= 5 ms)"
# Events per CPU-second of each server process during its closed-loop runs (5 events per
# request), the median of the rounds.
per_core() { # rps cpu_seconds
  div "$(awk -v r="$1" -v s="$secs" 'BEGIN {print r * 5 * s}')" "$2"
}
ff_per_cores=(); base_per_cores=()
for i in "${!ff_rpss[@]}"; do
  ff_per_cores+=("$(per_core "${ff_rpss[$i]}" "${ff_cpus[$i]}")")
  base_per_cores+=("$(per_core "${bare_rpss[$i]}" "${bare_cpus[$i]}")")
done
ff_per_core=$(median "${ff_per_cores[@]}"); base_per_core=$(median "${base_per_cores[@]}")
echo "events/s per core: standalone $ff_per_core, bare hyper $base_per_core (medians)"
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
