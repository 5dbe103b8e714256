#!/usr/bin/env bash
# cargo-rfuzz vs AFL++ (cargo-afl's afl-fuzz) vs libFuzzer (cargo-fuzz, nightly),
# same targets, same seeds, each fuzzer pinned to one core, side by side.
#
#   tests/bench/compare.sh speed [SECONDS]      exec/s and edges: trivial, semver 1, toml 0.8
#   tests/bench/compare.sh crash [TRIALS]       time to first crash on the planted bugs
#
# Needs: cargo-rfuzz on PATH (or CARGO_RFUZZ), `cargo install cargo-afl && cargo afl
# config --build`, and for libFuzzer `cargo install cargo-fuzz` plus a nightly toolchain
# (drop it with TOOLS=rfuzz,afl). CORE picks the core (default 1).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rfuzz=${CARGO_RFUZZ:-cargo-rfuzz}
tools=${TOOLS:-rfuzz,afl,libfuzzer}
core=${CORE:-1}
mode=${1:-speed}
case "$mode" in
  speed)
    secs=${2:-30}
    "$rfuzz" rfuzz bench-compare --bench-dir "$here" --tools "$tools" --core "$core" \
      --targets trivial,semver,toml --seconds "$secs" --trials "${TRIALS:-1}"
    ;;
  crash)
    trials=${2:-3}
    "$rfuzz" rfuzz bench-compare --bench-dir "$here" --tools "$tools" --core "$core" \
      --targets magic,nested,length_field,overflow --seconds 60 --trials "$trials" --until-crash
    ;;
  *)
    echo "usage: $0 speed [SECONDS] | crash [TRIALS]" >&2
    exit 2
    ;;
esac
