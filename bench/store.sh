#!/usr/bin/env bash
# Store benchmark: MongoDB store insert throughput (rollups included) vs raw insert_many, and
# "last 30 days, top pages" latency from rollups vs a scan of the raw events, on a real
# MongoDB-protocol server (SecantusDB) started here and stopped at the end.
#
#   bench/store.sh [store-bench options]      e.g. --insert-events 5000 --query-events 200000
#
# SecantusDB is a Python server (~3k inserts/s): figures are ratios on the same server in the
# same run, not MongoDB's absolute speed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ -n "${FOOTFALL_SECANTUSD:-}" ] || bash "$root/.ci/install-mongo.sh" >/dev/null
server="${FOOTFALL_SECANTUSD:-$root/.ci/.venv-secantus/bin/secantusd-py}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
cargo build --release -q -p footfall-bench --bin store-bench

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
data="$(mktemp -d)"
# --sync-on-commit: SecantusDB honours a transaction commit's `j: true` only with it (mongod
# always does); single writes with `j: true`, as the raw baseline's, are fsynced either way.
"$server" --host 127.0.0.1 --port "$port" --storage-path "$data" --log-level WARNING --sync-on-commit &
pid=$!
cleanup() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$data"
}
trap cleanup EXIT
for _ in $(seq 100); do
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done
"$CARGO_TARGET_DIR/release/store-bench" "mongodb://127.0.0.1:$port/?directConnection=true" "$@"
