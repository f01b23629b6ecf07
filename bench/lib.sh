# shellcheck shell=bash
# What the benchmark scripts share. `source "$(dirname "$0")/lib.sh"`.
#
# Each script prints its own readable report and, for `bench/run`, one `RESULT <key> <value>`
# line per figure; `bench/run` knows what each key means (label, unit, baseline, target) and
# writes the table.

# RESULT line for bench/run: key value.
result() { printf 'RESULT %s %s\n' "$1" "$2"; }

# CPU time a process has used so far (user + system), in seconds.
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f\n", ($14 + $15) / hz}' "/proc/$1/stat"
}

# a / b with two decimals ("nan" when b is 0), for ratios and per-core figures.
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "nan"; else printf "%.2f\n", a / b }'; }

# A free TCP port on loopback.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits up to 20 s for a listener on 127.0.0.1:PORT.
wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "port $1 never opened" >&2
  return 1
}

# Starts a tansu broker (memory storage) on 127.0.0.1:PORT and waits for it. It works in DIR
# (tansu reads a .env from its working directory) and logs to DIR/tansu.log; its pid is left
# in TANSU_PID.
start_tansu() { # tansu-binary port dir
  (cd "$3" && exec "$1" broker --listener-url "tcp://127.0.0.1:$2" \
    --advertised-listener-url "tcp://127.0.0.1:$2" --storage-engine memory://tansu/ \
    >"$3/tansu.log" 2>&1) &
  TANSU_PID=$!
  wait_port "$2"
}
