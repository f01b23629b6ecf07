#!/usr/bin/env bash
# Kafka-mode ingest against a raw producer, same broker, same run (issue 15):
#   raw       `kafka-bench` (bench/src/kafka_bench.rs): an rdkafka FutureProducer with the
#             collector's own producer settings (acks=all, idempotence, lz4, linger) sending
#             the collector's own messages (same key, header, payload bytes) with
#             BENCH_CONNS beacons in flight, each awaiting all its delivery reports;
#   collector `footfall collector` (release) fed 5-event beacons over HTTP by wrk
#             (bench/ingest.lua) with BENCH_CONNS connections; events/s counts 2xx only.
# Rounds alternate raw, collector, raw, collector... on one tansu broker so that the
# machine's drift hits both; prints each round, the per-pair ratios and their spread.
# Loopback only, bounded: about 4 x BENCH_SECS per level + 15 s after the build.
# Needs: .ci/install-kafka.sh (tansu; or FOOTFALL_TANSU), wrk (apt).
# Env: BENCH_SECS (8), BENCH_CONNS ("32 256": rounds at each level), BENCH_ROUNDS (2 pairs), BENCH_BUILD (1; 0 skips cargo build).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${BENCH_SECS:-8}
# Beacons in flight: 32 is bench/ingest.sh's level, where both sides mostly wait on linger
# and the broker; 256 saturates the machine, where the collector's own cost shows.
CONNS_LIST=${BENCH_CONNS:-32 256}
ROUNDS=${BENCH_ROUNDS:-2}
EVENTS=5 # per beacon, as bench/ingest.lua sends them
# The producer settings both sides use (the collector's defaults, spelled out).
LINGER_MS=5
DELIVERY_TIMEOUT_MS=5000
PRODUCER_QUEUE=100000
TOPIC=footfall.events
TANSU=${FOOTFALL_TANSU:-$ROOT/.ci/cache/bin/tansu}
[ -x "$TANSU" ] || { echo "tansu missing: run .ci/install-kafka.sh" >&2; exit 1; }
source "$ROOT/bench/lib.sh"
command -v wrk >/dev/null || { echo "wrk missing: apt-get install wrk" >&2; exit 1; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

# BENCH_BUILD=0 runs the binaries already built (footfall's build script reruns whenever
# dist/ is missing, which costs minutes on a busy machine).
[ "${BENCH_BUILD:-1}" = 0 ] || cargo build --release -q -p footfall -p footfall-bench
BIN=$CARGO_TARGET_DIR/release
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

KPORT=$(free_port)
start_tansu "$TANSU" "$KPORT" "$WORK"
PIDS+=($TANSU_PID)

CPORT=$(free_port)
"$BIN/footfall" collector --listen 127.0.0.1:$CPORT --brokers 127.0.0.1:$KPORT --events-topic $TOPIC \
    --accept-any-site --rate-limit 0 --log warn --linger-ms $LINGER_MS \
    --delivery-timeout-ms $DELIVERY_TIMEOUT_MS --producer-queue $PRODUCER_QUEUE \
    >"$WORK/collector.log" 2>&1 &
COLLECTOR=$!
PIDS+=($COLLECTOR)
wait_port "$CPORT"
for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$CPORT/readyz" && break; sleep 0.1; done

# The first beacon, shaped like bench/ingest.lua's: its 5 messages, as the collector wrote
# them, are the raw producer's template (kafka-bench checks they re-encode byte for byte).
UA='Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0'
BODY='{"site":"bench.test","events":['
for i in 1 2 3 4 5; do
  [ "$i" = 1 ] || BODY+=','
  BODY+="{\"event\":\"page_view\",\"eventId\":\"b00000000-000000000-$i\",\"page\":\"https://bench.test/p/0?utm_source=wrk\",\"sessionId\":\"s0\",\"timezone\":\"Europe/Berlin\"}"
done
BODY+=']}'
curl -fsS -o /dev/null -X POST -H 'Content-Type: text/plain;charset=UTF-8' -A "$UA" --data "$BODY" \
  "http://127.0.0.1:$CPORT/api/batch"

raw_round() { # -> "events/s p99_ms failed cpu_seconds"
  local out cpu TIMEFORMAT='%U %S'
  # `time` reports the producer process's own CPU (user, system) on stderr.
  { time "$BIN/kafka-bench" --brokers 127.0.0.1:$KPORT --topic $TOPIC --duration "$SECS" \
    --connections "$CONNS" --events $EVENTS --linger-ms $LINGER_MS \
    --delivery-timeout-ms $DELIVERY_TIMEOUT_MS --producer-queue $PRODUCER_QUEUE >"$WORK/raw.out"; } 2>"$WORK/raw.time"
  out=$(cat "$WORK/raw.out")
  cpu=$(awk 'END {print $1 + $2}' "$WORK/raw.time")
  echo "$out" >>"$WORK/raw.log"
  awk -v cpu="$cpu" '{for (i = 1; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]}} END {print v["events_per_sec"], v["p99_ms"], v["failed"], cpu}' <<<"$out"
}

collector_round() { # -> "events/s p99_ms non2xx cpu_seconds"
  local out before
  before=$(cpu_seconds "$COLLECTOR")
  out=$(wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$ROOT/bench/ingest.lua" "http://127.0.0.1:$CPORT/api/batch")
  echo "$out" >>"$WORK/wrk.log"
  awk -v ev=$EVENTS -v cpu="$(awk -v a="$(cpu_seconds "$COLLECTOR")" -v b="$before" 'BEGIN {print a - b}')" '
    / requests in / {n = $1; s = $4; sub(/s,$/, "", s)}
    /Non-2xx/ {bad = $NF}
    $1 == "99%" {v = $2; if (v ~ /us$/) {sub(/us$/, "", v); v /= 1000} else if (v ~ /ms$/) {sub(/ms$/, "", v)} else if (v ~ /s$/) {sub(/s$/, "", v); v *= 1000}; p99 = v}
    END {printf "%.0f %.2f %d %.2f\n", (n - bad) * ev / s, p99, bad, cpu}' <<<"$out"
}

summary() { # raw.txt coll.txt conns -> medians, spread, ratios, RESULT lines
python3 - "$1" "$2" "$3" "$SECS" <<'PY'
import statistics, sys
raw = [tuple(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
coll = [tuple(map(float, l.split())) for l in open(sys.argv[2]) if l.strip()]
ratios = [c[0] / r[0] for r, c in zip(raw, coll) if r[0] > 0]
med = statistics.median
print(f"raw producer:  median {med([r[0] for r in raw]):,.0f} events/s "
      f"(min {min(r[0] for r in raw):,.0f}, max {max(r[0] for r in raw):,.0f}), p99 median {med([r[1] for r in raw]):.2f} ms")
print(f"collector:     median {med([c[0] for c in coll]):,.0f} events/s "
      f"(min {min(c[0] for c in coll):,.0f}, max {max(c[0] for c in coll):,.0f}), p99 median {med([c[1] for c in coll]):.2f} ms")
print("ratio collector / raw per pair: " + ", ".join(f"{x:.2f}" for x in ratios))
overall = med([c[0] for c in coll]) / med([r[0] for r in raw])
print(f"ratio of medians: {overall:.2f}  (target >= 0.80: {'met' if overall >= 0.8 else 'NOT met'})")
# Events per CPU-second of each side's own process (the broker's CPU is in neither).
secs = float(sys.argv[4])
per_core = lambda rows: med([r[0] * secs / r[2] for r in rows if r[2] > 0] or [float('nan')])
print(f"events/s per core: raw producer {per_core(raw):,.0f}, collector {per_core(coll):,.0f}")
c = sys.argv[3]
print(f"RESULT kafka_raw_eps_c{c} {med([r[0] for r in raw]):.0f}")
print(f"RESULT kafka_collector_eps_c{c} {med([x[0] for x in coll]):.0f}")
print(f"RESULT kafka_raw_events_per_core_c{c} {per_core(raw):.0f}")
print(f"RESULT kafka_collector_events_per_core_c{c} {per_core(coll):.0f}")
PY
}

for CONNS in $CONNS_LIST; do
  echo "== Kafka-mode ingest: $ROUNDS x (raw, collector), $SECS s each, $CONNS beacons in flight, $EVENTS events each"
  echo "   load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
  printf '%-6s %-10s %12s %10s %8s %8s\n' round side events/s p99_ms errors cpu_s
  : >"$WORK/raw.txt"; : >"$WORK/coll.txt"
  for r in $(seq 1 "$ROUNDS"); do
    # Not `< <(...)`: a failing round must stop the script (set -e), not read blanks.
    raw_round >"$WORK/round"; read -r eps p99 bad cpu <"$WORK/round"
    printf '%-6s %-10s %12s %10s %8s %8s\n' "$r" raw "$eps" "$p99" "$bad" "$cpu"
    echo "$eps $p99 $cpu" >>"$WORK/raw.txt"
    collector_round >"$WORK/round"; read -r eps p99 bad cpu <"$WORK/round"
    printf '%-6s %-10s %12s %10s %8s %8s\n' "$r" collector "$eps" "$p99" "$bad" "$cpu"
    echo "$eps $p99 $cpu" >>"$WORK/coll.txt"
  done
  echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  summary "$WORK/raw.txt" "$WORK/coll.txt" "$CONNS"
done
# Cross-check: every event wrk saw answered 2xx was acknowledged by Kafka to the collector.
# The collector's count is a little higher: the template beacon, and the beacons still in
# flight when wrk stopped counting (up to one per connection per round).
echo "collector's count of events Kafka acknowledged (>= wrk's 2xx x $EVENTS):"
curl -fsS "http://127.0.0.1:$CPORT/metrics" | grep -E '^footfall_kafka_(produced|delivery_errors)' || true
awk -v ev=$EVENTS '/ requests in / {n += $1} /Non-2xx/ {bad += $NF} END {printf "wrk: %d x %d = %d\n", n - bad, ev, (n - bad) * ev}' "$WORK/wrk.log"
