#!/usr/bin/env bash
# The AFL++ side of scaling.sh: N afl-fuzz instances (-M main, -S s1...) over
# one sync directory, each bound to its own core by afl-fuzz, for the same
# time; prints aggregate exec/s and efficiency rate(N) / (N * rate(1)).
#
#   tests/bench/afl-scaling.sh AFL_BINARY SEEDS "1 2" [SECONDS]
#
# AFL_BINARY comes from `cargo afl build --release`; afl-fuzz from `cargo afl
# config --build` (or AFL_FUZZ).
set -euo pipefail
afl=${AFL_FUZZ:-afl-fuzz}
binary=$1
seeds=$2
jobs_list=${3:-"1 2"}
secs=${4:-30}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1

printf '%-6s %14s %12s %12s %10s\n' "jobs" "execs" "exec/s" "per job" "eff."
base=""
for n in $jobs_list; do
  out="$work/j$n"
  pids=()
  "$afl" -M main -i "$seeds" -o "$out" -V "$secs" -- "$binary" >/dev/null 2>&1 &
  pids+=($!)
  for ((i = 1; i < n; i++)); do
    "$afl" -S "s$i" -i "$seeds" -o "$out" -V "$secs" -- "$binary" >/dev/null 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}" || true
  execs=$(awk '$1 == "execs_done" { s += $3 } END { printf "%d", s }' "$out"/*/fuzzer_stats)
  runtime=$(awk '$1 == "run_time" { if ($3 > m) m = $3 } END { print m }' "$out"/*/fuzzer_stats)
  rate=$(awk -v e="$execs" -v t="$runtime" 'BEGIN { printf "%.0f", e / t }')
  [ -n "$base" ] || base=$rate
  eff=$(awk -v r="$rate" -v b="$base" -v n="$n" 'BEGIN { printf "%.2f", r / (n * b) }')
  printf '%-6s %14s %12s %12s %10s\n' "$n" "$execs" "$rate" "$((rate / n))" "$eff"
done
