#!/usr/bin/env bash
# Builds and briefly fuzzes every cargo-fuzz project found under a folder
# (checkouts of real crates), unchanged, and prints one table row per target:
#
#   tests/bench/realworld.sh FOLDER [SECONDS] > table.md
#
# A project is a directory with a Cargo.toml and a fuzz_targets/ directory
# (cargo-fuzz's layout: usually <crate>/fuzz/), or whose Cargo.toml says
# `cargo-fuzz = true` (targets elsewhere). For each one it builds every
# target with `cargo rfuzz build` (nothing is fetched but what cargo fetches
# from package registries), checks that each binary carries the rfuzz
# runtime (RFUZZ_INFO=1 answers "rfuzz runtime ..."), fuzzes it for SECONDS
# (default 20) with `cargo rfuzz run -j 1 --no-ui`, and counts the corpus.
# Every command runs under `timeout`, so a hang shows as exit 124 instead of
# stopping the table. Columns:
#
#   project | target | build (exit code; first error line) | rfuzz binary | run exit | corpus | build s
#
# A run that exits other than 0 (no crash) or 1 (crashes saved) has its first
# error line after the code.
# Needs cargo-rfuzz on PATH (or CARGO_RFUZZ), GNU coreutils (timeout, find).
# The checkouts are modified only in their target/ directories and fuzz/sync/
# (which is removed again); Cargo.lock files are left as they were.
set -uo pipefail
rfuzz=${CARGO_RFUZZ:-cargo-rfuzz}
folder=${1:?usage: realworld.sh FOLDER [SECONDS]}
secs=${2:-20}
build_limit=${BUILD_LIMIT:-1800}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

first_error() { # FILE: the first line that says what went wrong, shortened
  grep -m1 -E '^(error|Error)' "$1" | cut -c1-160 | tr '|' '/'
}

echo "| project | target | build | rfuzz binary | run exit | corpus | build s |"
echo "|---|---|---|---|---|---|---|"
{
  find "$folder" -name fuzz_targets -type d -not -path '*/target/*' -exec dirname {} \;
  find "$folder" -name Cargo.toml -not -path '*/target/*' -exec grep -l '^cargo-fuzz *= *true' {} + | xargs -r -n1 dirname
} | sort -u | while read -r dir; do
  [ -f "$dir/Cargo.toml" ] || continue
  project=${dir#"$folder"/}
  if ! timeout -k 10 300 "$rfuzz" rfuzz list --fuzz-dir "$dir" >"$work/list" 2>"$work/list.err"; then
    echo "| $project | - | list failed: $(first_error "$work/list.err") | - | - | - | - |"
    continue
  fi
  start=$(date +%s)
  timeout -k 10 "$build_limit" "$rfuzz" rfuzz build --fuzz-dir "$dir" >"$work/bins" 2>"$work/build.err"
  build_rc=$?
  build_s=$(($(date +%s) - start))
  while read -r target; do
    [ -n "$target" ] || continue
    if [ "$build_rc" -ne 0 ]; then
      echo "| $project | $target | exit $build_rc: $(first_error "$work/build.err") | - | - | - | $build_s |"
      continue
    fi
    binary=$(grep -m1 "/$target\$" "$work/bins")
    info=$(RFUZZ_INFO=1 timeout -k 5 10 "$binary" </dev/null 2>/dev/null)
    case "$info" in
      "rfuzz runtime"*) kind=yes ;;
      *) kind=no ;;
    esac
    sync="$work/sync-$target"
    timeout -k 10 $((secs + 120)) "$rfuzz" rfuzz run --fuzz-dir "$dir" "$target" -j 1 --no-ui \
      --max-total-time "$secs" -o "$sync" >"$work/run.out" 2>&1 </dev/null
    run_rc=$?
    corpus=$(find "$sync" -path '*/main/queue/*' -type f 2>/dev/null | wc -l)
    case "$run_rc" in
      0 | 1) run="$run_rc" ;;
      *) run="$run_rc: $(first_error "$work/run.out")" ;;
    esac
    echo "| $project | $target | ok | $kind | $run | $corpus | $build_s |"
    rm -rf "$sync"
  done <"$work/list"
done
