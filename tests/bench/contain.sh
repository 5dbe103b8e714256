#!/usr/bin/env bash
# Exec/s and leftover processes on a target that starts a long-lived helper
# process on a third of its inputs (tests/fixtures/planted: `forker`).
#
#   tests/bench/contain.sh [SECONDS] [CARGO_RFUZZ...]
#
# Runs `cargo rfuzz run forker -j 2 --max-total-time SECONDS` with each given
# cargo-rfuzz binary (default: target/debug/cargo-rfuzz), one after the
# other, and prints per binary: executions per second over the whole run
# (sum over the instances of execs_done / run_time), processes the target
# started, and `sleep` processes of the run still alive afterwards (found by
# a marker in their environment; they are killed after counting).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-20}
shift || true
bins=("$@")
[ ${#bins[@]} -eq 0 ] && bins=(target/debug/cargo-rfuzz)
fuzz_dir=$PWD/tests/fixtures/planted/fuzz
printf '%-48s %10s %12s %10s\n' binary exec/s target_procs left
for bin in "${bins[@]}"; do
  out=$(mktemp -d)
  marker="contain-bench-$$-$RANDOM"
  seeds=$out/seeds
  mkdir -p "$seeds"
  printf '\003x\003' >"$seeds/direct"
  printf '\006D' >"$seeds/orphan"
  printf 'a' >"$seeds/none"
  "$bin" rfuzz build forker --fuzz-dir "$fuzz_dir" >/dev/null 2>&1
  RFUZZ_BENCH_MARKER=$marker "$bin" rfuzz run forker -j 2 --no-ui --max-total-time "$secs" \
    --fuzz-dir "$fuzz_dir" -o "$out/sync" -i "$seeds" >/dev/null 2>&1 || true
  sleep 2
  left=0
  for p in /proc/[0-9]*; do
    if { tr "\0" "\n" <"$p/environ"; } 2>/dev/null | grep -qx "RFUZZ_BENCH_MARKER=$marker"; then
      if [ "$(cat "$p/comm" 2>/dev/null)" = sleep ]; then left=$((left + 1)); fi
      kill -9 "${p#/proc/}" 2>/dev/null || true
    fi
  done
  eps=0
  procs=0
  for st in "$out"/sync/*/fuzzer_stats; do
    execs=$(awk -F' *: *' '$1=="execs_done"{print $2}' "$st")
    rt=$(awk -F' *: *' '$1=="run_time"{print $2}' "$st")
    tp=$(awk -F' *: *' '$1=="target_procs"{print $2}' "$st")
    eps=$(python3 -c "print(round($eps + $execs / max($rt, 1)))")
    procs=$((procs + ${tp:-0}))
  done
  printf '%-48s %10s %12s %10s\n' "$bin" "$eps" "${procs:-n/a}" "$left"
  rm -rf "$out"
done
