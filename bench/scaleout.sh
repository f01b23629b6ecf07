#!/usr/bin/env bash
# Scale-out benchmark: the deployment of footfall/tests/scaleout.rs (tansu, SecantusDB,
# 2 collectors, N processors, nginx running deploy/nginx.conf) fed BENCH_EVENTS events
# (default 100,000) through the balancer, with 1 processor, then 3, then 3 with one killed
# (SIGKILL) half-way. Each run still checks that every history answer equals a standalone's.
# Prints a Markdown table: end-to-end events/s (first request to everything queryable) and
# the ratio of each run to the 1-processor run measured here, in this run.
#
# SecantusDB is a Python MongoDB-protocol server and everything shares this machine's cores:
# the figures say how the pipeline scales against itself, not MongoDB's absolute speed.
# Needs: .ci/install-kafka.sh, .ci/install-mongo.sh, nginx (.ci/install.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
EVENTS=${BENCH_EVENTS:-100000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export FOOTFALL_TANSU=${FOOTFALL_TANSU:-$ROOT/.ci/cache/bin/tansu}
export FOOTFALL_SECANTUSD=${FOOTFALL_SECANTUSD:-$ROOT/.ci/.venv-secantus/bin/secantusd-py}
cd "$ROOT"
cargo test --release -q -p footfall --test scaleout --no-run

LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
run() { # processors kill
    if ! FOOTFALL_SCALEOUT_EVENTS=$EVENTS FOOTFALL_SCALEOUT_PROCESSORS=$1 FOOTFALL_SCALEOUT_KILL=$2 \
        cargo test --release -q -p footfall --test scaleout -- --nocapture >"$LOG" 2>&1; then
        { echo "run with $1 processor(s) failed:"; tail -30 "$LOG"; } >&2
        exit 1
    fi
    grep -E '^scaleout:' "$LOG"
}
rate() { sed -E 's/.*queryable after [0-9.]+s \(([0-9]+) events\/s\).*/\1/'; }

one=$(run 1 0); three=$(run 3 0); killed=$(run 3 1)
r1=$(rate <<<"$one"); r3=$(rate <<<"$three"); rk=$(rate <<<"$killed")
echo "## Scale-out ($EVENTS events, $(nproc) cores, $(date -u +%F), load $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "| deployment | events/s end to end | ratio to 1 processor |"
echo "|---|---|---|"
echo "| 2 collectors, 1 processor | $r1 | 1.00 |"
echo "| 2 collectors, 3 processors | $r3 | $(python3 -c "print(f'{$r3/$r1:.2f}')") |"
echo "| 2 collectors, 3 processors, one killed half-way | $rk | $(python3 -c "print(f'{$rk/$r1:.2f}')") |"
echo
printf '%s\n' "$one" "$three" "$killed"
source "$ROOT/bench/lib.sh"
result scaleout_1_eps "$r1"
result scaleout_3_eps "$r3"
result scaleout_3_killed_eps "$rk"
