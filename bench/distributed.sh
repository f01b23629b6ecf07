#!/usr/bin/env bash
# Distributed-mode benchmarks, bounded in time, loopback only. Prints ratios against
# baselines measured in the same run on the same machine:
#   1. collector in Kafka mode (acks=all, awaiting every delivery) vs a bare hyper server
#      answering 204 — max req/s with wrk, and p99 latency at half the collector's max load
#      with oha (fixed request rate; skipped with a note when oha is not installed);
#   2. the processor pipeline (Kafka -> SQLite, commit after store) vs a raw bulk insert of
#      the same events into the same store (bench/src/processor_bench.rs).
# Needs: .ci/install-kafka.sh (tansu), wrk (apt), optionally oha (cargo install oha).
# Env: BENCH_SECS (default 10), BENCH_CONNS (default 64), BENCH_EVENTS (default 50000).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${BENCH_SECS:-10}
CONNS=${BENCH_CONNS:-64}
EVENTS=${BENCH_EVENTS:-50000}
TANSU=${FOOTFALL_TANSU:-$ROOT/.ci/cache/bin/tansu}
[ -x "$TANSU" ] || { echo "tansu missing: run .ci/install-kafka.sh" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk missing: apt-get install wrk" >&2; exit 1; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
source "$ROOT/bench/lib.sh"

cargo build --release -q -p footfall -p footfall-bench
BIN=$CARGO_TARGET_DIR/release
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

KPORT=$(free_port)
start_tansu "$TANSU" "$KPORT" "$WORK"
PIDS+=($TANSU_PID)

CPORT=$(free_port)
"$BIN/footfall" collector --listen 127.0.0.1:$CPORT --brokers 127.0.0.1:$KPORT --accept-any-site \
    --rate-limit 0 --log warn >"$WORK/collector.log" 2>&1 &
PIDS+=($!)
HPORT=$(free_port)
"$BIN/bare-hyper" 127.0.0.1:$HPORT >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$CPORT"; wait_port "$HPORT"

# A typical tracker beacon: three events, text/plain (no CORS preflight).
BODY='{"site":"bench.test","events":[{"event":"page_view","page":"/a","sessionId":"s1"},{"event":"click","page":"/a","sessionId":"s1","target":{"tag":"a","href":"/b"}},{"event":"page_view","page":"/b","sessionId":"s1"}]}'
UA='Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0'
cat >"$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "text/plain"
wrk.headers["User-Agent"] = "$UA"
LUA

rps() { awk '/Requests\/sec/ {print $2}'; }
echo "== ingest: $SECS s per run, $CONNS connections, 3 events per request"
curl -fsS -o /dev/null -X POST -H 'Content-Type: text/plain' -A "$UA" --data "$BODY" http://127.0.0.1:$CPORT/api/batch
wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$WORK/post.lua" http://127.0.0.1:$HPORT/api/batch >"$WORK/bare.txt"
wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$WORK/post.lua" http://127.0.0.1:$CPORT/api/batch >"$WORK/coll.txt"
BARE=$(rps <"$WORK/bare.txt"); COLL=$(rps <"$WORK/coll.txt")
NON2XX=$(awk '/Non-2xx/ {print $5}' "$WORK/coll.txt"); NON2XX=${NON2XX:-0}
echo "bare hyper 204:         $BARE req/s   (p99 $(awk '/ 99%/ {print $2}' "$WORK/bare.txt"))"
echo "collector (kafka acks): $COLL req/s   (p99 $(awk '/ 99%/ {print $2}' "$WORK/coll.txt")), non-2xx: $NON2XX"
python3 -c "print(f'ratio: {100*float($COLL)/float($BARE):.1f}% of bare hyper (target >= 30%)')"
result distributed_bare_rps "$BARE"
result distributed_collector_rps "$COLL"

HALF=$(python3 -c "print(max(1,int(float($COLL)/2)))")
if command -v oha >/dev/null; then
    oha -z "${SECS}s" -q "$HALF" -c "$CONNS" --no-tui -m POST -H "Content-Type: text/plain" \
        -H "User-Agent: $UA" -d "$BODY" http://127.0.0.1:$CPORT/api/batch >"$WORK/half.txt"
    P99=$(awk '/99.00%/ {print $3, $4; exit}' "$WORK/half.txt")
    echo "collector at half max load ($HALF req/s, fixed rate): p99 $P99 (target <= 25 ms)"
    grep -A6 "Status code distribution" "$WORK/half.txt" || true
else
    echo "oha not installed (cargo install oha): p99 at half load not measured"
fi
curl -fsS http://127.0.0.1:$CPORT/metrics | grep -E '^footfall_kafka_(produced|delivery_errors)' || true

echo "== processor: $EVENTS events"
"$BIN/processor-bench" 127.0.0.1:$KPORT "$EVENTS"
