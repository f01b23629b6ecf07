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
