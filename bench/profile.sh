#!/usr/bin/env bash
# Where `footfall standalone` spends its time under the ingest benchmark's load
# (bench/ingest.lua: 5-event beacons, durable group commits). Loopback only, bounded.
#
#   bench/profile.sh            # perf (cpu-clock samples): top frames by self time, by thread
#   bench/profile.sh callgrind  # valgrind: instructions per request, repeatable on a busy machine
#
# perf needs no hardware counters (cpu-clock is a software event), so it works on VMs
# without a PMU. callgrind runs the server ~50x slower but counts instructions exactly, so
# two builds compare by instructions per request whatever else the machine is doing.
# Env: DURATION (perf: 10s, callgrind: 20s), CONNECTIONS (32), THREADS (2), TOP (25),
# KEEP (callgrind: copy the profile there, for callgrind_annotate).
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-perf}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
TOP=${TOP:-25}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }

cargo build --quiet --release -p footfall
BIN=$CARGO_TARGET_DIR/release/footfall
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
wait_port() { for _ in $(seq 1 600); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
PORT=18093
# Events are accepted only for registered sites.
"$BIN" sites add bench.test --data-dir "$WORK/data" >/dev/null
ARGS=(standalone --listen 127.0.0.1:$PORT --data-dir "$WORK/data" --admin-token profile-token-0123 --rate-limit 0 --log warn)

case "$MODE" in
perf)
  command -v perf >/dev/null || { echo "perf is missing: apt-get install -y linux-perf" >&2; exit 1; }
  DURATION=${DURATION:-10s}
  "$BIN" "${ARGS[@]}" >/dev/null 2>&1 & SERVER=$!; PIDS+=($SERVER)
  wait_port $PORT
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -s bench/ingest.lua "http://127.0.0.1:$PORT/api/batch" >/dev/null
  perf record -q -e cpu-clock -F 1999 -p "$SERVER" -o "$WORK/perf.data" 2>/dev/null & REC=$!
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s bench/ingest.lua "http://127.0.0.1:$PORT/api/batch" \
    | awk '/Requests\/sec|Non-2xx/'
  kill -INT $REC; wait $REC 2>/dev/null || true
  echo; echo "== CPU by thread"
  perf report -i "$WORK/perf.data" --stdio --sort comm 2>/dev/null | grep -E '^ +[0-9]' | head -10 | sed -E 's/ +$//'
  echo; echo "== top $TOP frames by self time (all threads)"
  perf report -i "$WORK/perf.data" --stdio --no-children --sort symbol 2>/dev/null \
    | grep -E '^ +[0-9]' | head -"$TOP" | sed -E 's/ +- +- *$//; s/ +$//'
  for thread in tokio-rt-worker footfall-journal footfall-sqlite; do
    echo; echo "== top frames of $thread"
    # perf keeps the first 15 characters of a thread's name.
    perf report -i "$WORK/perf.data" --stdio --no-children --comm "${thread:0:15}" --sort symbol 2>/dev/null \
      | grep -E '^ +[0-9]' | head -15 | sed -E 's/ +- +- *$//; s/ +$//'
  done
  ;;
callgrind)
  command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install -y valgrind" >&2; exit 1; }
  DURATION=${DURATION:-20s}
  # Counting starts when the load does and stops before the stats query, so the figure is
  # the ingest path alone (start-up and the query's reads are not in it).
  valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" --separate-threads=no \
    --instr-atstart=no "$BIN" "${ARGS[@]}" >/dev/null 2>"$WORK/valgrind.log" & SERVER=$!; PIDS+=($SERVER)
  wait_port $PORT
  callgrind_control -i on $SERVER >/dev/null
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s bench/ingest.lua "http://127.0.0.1:$PORT/api/batch")
  callgrind_control -i off $SERVER >/dev/null
  callgrind_control -d $SERVER >/dev/null
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  stored=$(curl -s -H 'Authorization: Bearer profile-token-0123' \
    "http://127.0.0.1:$PORT/api/stats/summary?site=bench.test" | sed -E 's/.*"events":([0-9]+).*/\1/')
  kill -TERM $SERVER; wait $SERVER 2>/dev/null || true
  dump=$(ls "$WORK"/cg.out.* | head -1)
  total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
  echo "requests answered: $requests; events stored: $stored"
  awk -v t="$total" -v r="$requests" -v e="$stored" 'BEGIN {
    printf "instructions under load: %d, %.0f per request, %.0f per stored event\n", t, t / r, t / e }'
  [ -n "${KEEP:-}" ] && cp "$dump" "$KEEP"
  echo; echo "== top $TOP functions by instructions (self)"
  callgrind_annotate --threshold=99 "$dump" 2>/dev/null | grep -E '^ *[0-9,]+ \(' | head -"$TOP"
  echo; echo "== top $TOP functions by instructions (inclusive)"
  callgrind_annotate --inclusive=yes --threshold=99 "$dump" 2>/dev/null | grep -E '^ *[0-9,]+ \(' | head -"$TOP"
  ;;
*) echo "usage: $0 [perf|callgrind]" >&2; exit 2 ;;
esac
