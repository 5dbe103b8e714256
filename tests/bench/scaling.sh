#!/usr/bin/env bash
# Aggregate exec/s of `cargo rfuzz run -j N` for several N on one target, the
# scaling efficiency rate(N) / (N * rate(1)), and how long an entry found by
# one instance takes to be imported by another.
#
#   tests/bench/scaling.sh BINARY SEEDS "1 2" [SECONDS]
#
# BINARY is an instrumented target (`cargo rfuzz build` prints its path), SEEDS
# a seed directory. Needs cargo-rfuzz on PATH (or CARGO_RFUZZ), GNU find and
# awk: the numbers come from fuzzer_stats and file times.
set -euo pipefail
rfuzz=${CARGO_RFUZZ:-cargo-rfuzz}
binary=$1
seeds=$2
jobs_list=${3:-"1 2"}
secs=${4:-30}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

stat_sum() { # KEY DIR: sum of KEY over the instances' fuzzer_stats
  awk -v k="$1" '$1 == k { s += $3 } END { printf "%d", s }' "$2"/*/fuzzer_stats
}

# Import latency: for every entry an instance imported from a peer, the time
# between the peer writing its entry and the importer writing its copy (one
# pass over all queue files: `find -printf` gives names and times).
latencies() {
  find "$1" -path '*/queue/id:*' -printf '%T@ %p\n' | awk '
    {
      n = split($2, parts, "/"); inst = parts[n - 2]; name = parts[n]
      id = substr(name, 4, 6)
      time[inst "/" id] = $1
      if (match(name, /,sync:[^,]+/)) {
        peer = substr(name, RSTART + 6, RLENGTH - 6)
        if (match(name, /,src:[0-9]+/)) { imports[++k] = $1 " " peer "/" substr(name, RSTART + 5, RLENGTH - 5) }
      }
    }
    END {
      for (i = 1; i <= k; i++) {
        split(imports[i], f, " ")
        if (f[2] in time) printf "%.3f\n", f[1] - time[f[2]]
      }
    }'
}

printf '%-6s %14s %12s %12s %10s %14s\n' "jobs" "execs" "exec/s" "per job" "eff." "import median"
base=""
for n in $jobs_list; do
  out="$work/j$n"
  start=$(date +%s.%N)
  "$rfuzz" rfuzz run --binary "$binary" -i "$seeds" -o "$out" -j "$n" --max-total-time "$secs" --no-ui >/dev/null 2>&1 || true
  execs=$(stat_sum execs_done "$out")
  # The instances' own fuzzing time (their run_time), not start-up.
  runtime=$(awk '$1 == "run_time" { if ($3 > m) m = $3 } END { print m }' "$out"/*/fuzzer_stats)
  rate=$(awk -v e="$execs" -v t="$runtime" 'BEGIN { printf "%.0f", e / t }')
  [ -n "$base" ] || base=$rate
  eff=$(awk -v r="$rate" -v b="$base" -v n="$n" 'BEGIN { printf "%.2f", r / (n * b) }')
  med=$(latencies "$out" | sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else print a[int((NR + 1) / 2)] "s" }')
  printf '%-6s %14s %12s %12s %10s %14s\n' "$n" "$execs" "$rate" "$((rate / n))" "$eff" "$med"
done
