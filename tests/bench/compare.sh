#!/usr/bin/env bash
# cargo-rfuzz vs AFL++ (cargo-afl's afl-fuzz) vs libFuzzer (cargo-fuzz, nightly),
# same targets, same seeds, each fuzzer pinned to one core, side by side.
#
#   tests/bench/compare.sh speed [SECONDS]    exec/s and edges: trivial, semver 1, toml 0.8
#   tests/bench/compare.sh crash [TRIALS]     time to first crash on the planted bugs
#   tests/bench/compare.sh report [SECONDS] [TRIALS]
#                                             the bug-finding report: magic-value fixtures
#                                             (time to crash) and eight real parsers (edges),
#                                             cargo-rfuzz vs AFL++, two halves on two cores
#   tests/bench/compare.sh cost [SECONDS] [TRIALS]
#                                             targets that crash, hang or slow down (issue 10):
#                                             TOOLS (rfuzz,afl; add libfuzzer) on CORES (0,1),
#                                             tool i on core i mod the count, side by side;
#                                             whole-run and first/last-minute exec/s, corpus,
#                                             edges, crash/hang files, signatures. TARGETS and
#                                             BENCH_DIR (e.g. tests/bench/realbugs) pick others;
#                                             NO_BUILD=1 uses the harnesses as built
#
# Needs: cargo-rfuzz on PATH (or CARGO_RFUZZ), `cargo install cargo-afl && cargo afl
# config --build`, and for libFuzzer `cargo install cargo-fuzz` plus a nightly toolchain
# (leave it out with TOOLS=rfuzz,afl). CORE picks the core (default 1).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rfuzz=${CARGO_RFUZZ:-cargo-rfuzz}
core=${CORE:-1}
mode=${1:-speed}
bench() { "$rfuzz" rfuzz bench-compare --bench-dir "${BENCH_DIR:-$here}" "$@"; }
case "$mode" in
  speed)
    bench --tools "${TOOLS:-rfuzz,afl,libfuzzer}" --core "$core" \
      --targets trivial,semver,toml --seconds "${2:-30}" --trials "${TRIALS:-1}"
    ;;
  crash)
    bench --tools "${TOOLS:-rfuzz,afl,libfuzzer}" --core "$core" \
      --targets magic,nested,length_field,overflow --seconds 60 --trials "${2:-3}" --until-crash
    ;;
  report)
    secs=${2:-60}
    trials=${3:-2}
    tools=${TOOLS:-rfuzz,afl}
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    echo "# cargo-rfuzz vs AFL++: bug-finding benchmark"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(uname -srm), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores"
    echo "- tools: $("$rfuzz" rfuzz --version), $(cargo afl --version 2>/dev/null || echo "afl-fuzz ${AFL_FUZZ:-}") in persistent shared-memory mode, without cmplog (its LLVM plugins need a nightly-matching LLVM)"
    echo "- each trial: one core, ${secs} s budget (magic fixtures: until the first crash), ${trials} trials"
    echo "- edges: every tool's corpus replayed through the same cargo-rfuzz build of the target"
    echo
    "$here/compare.sh" build-only >/dev/null
    # Two halves in parallel, one per core.
    bench --no-build --tools "$tools" --core 0 --targets magic,magic8,magic16,switch4,json,regex,http \
      --seconds "$secs" --trials "$trials" --until-crash-for magic,magic8,magic16,switch4 >"$work/a" 2>"$work/a.log" &
    bench --no-build --tools "$tools" --core 1 --targets xml,csv,png,toml,semver \
      --seconds "$secs" --trials "$trials" >"$work/b" 2>"$work/b.log" &
    wait
    cat "$work/a"
    tail -n +3 "$work/b"
    ;;
  cost)
    secs=${2:-300}
    trials=${3:-3}
    targets=${TARGETS:-quadratic,few_panics,loop_near,deep_nesting,boundary}
    tools=${TOOLS:-rfuzz,afl}
    cores=${CORES:-0,1}
    work=$(mktemp -d)
    # KEEP=1 keeps every trial's output directory (the path is printed on stderr).
    if [ -n "${KEEP:-}" ]; then echo "trial outputs in $work" >&2; else trap 'rm -rf "$work"' EXIT; fi
    IFS=, read -r -a tool_list <<<"$tools"
    IFS=, read -r -a core_list <<<"$cores"
    echo "# cargo-rfuzz vs AFL++ (and libFuzzer) where the bugs are: crashes, hangs, slow inputs"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(uname -srm), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores"
    echo "- tools: $("$rfuzz" rfuzz --version), $(cargo afl --version 2>/dev/null || echo afl-fuzz) (persistent, shared memory)$(case ",$tools," in *,libfuzzer,*) echo ", libFuzzer (cargo-fuzz, nightly, -O -a -s none; fork mode ignoring crashes, timeouts and OOMs, -timeout=1)";; esac)"
    echo "- each trial: ${secs} s, ${trials} trials; tools ${tools} on cores ${cores} (tool i on core i mod the count, side by side)"
    echo "- avg exec/s = execs_done / run_time; first/last min = mean plot_data exec/s of the run's first and last 60 s"
    echo "  (libFuzzer: its #N status lines, timestamped as they arrive)"
    echo "- edges: every tool's queue replayed through one cargo-rfuzz build; signatures: every tool's crash files"
    echo "  replayed through that build and grouped as \`cargo rfuzz triage\` groups them"
    echo
    [ -n "${NO_BUILD:-}" ] || TOOLS=$tools "$0" build-only >/dev/null 2>&1 || true
    # One lane per core; a lane runs its tools one after the other.
    for i in "${!core_list[@]}"; do
      (
        for j in "${!tool_list[@]}"; do
          [ $((j % ${#core_list[@]})) -eq "$i" ] || continue
          t=${tool_list[$j]}
          bench --no-build --cost --tools "$t" --core "${core_list[$i]}" --targets "$targets" \
            --seconds "$secs" --trials "$trials" --work-dir "$work/$t" >"$work/$t.md" 2>"$work/$t.log"
        done
      ) &
    done
    wait
    # Interleave: the tools' rows of each target together.
    head -n 2 "$work/${tool_list[0]}.md"
    rows=()
    for t in "${tool_list[@]}"; do
      tail -n +3 "$work/$t.md" >"$work/$t.rows"
      rows+=("$work/$t.rows")
    done
    paste -d '\n' "${rows[@]}"
    ;;
  build-only)
    bench --tools "${TOOLS:-rfuzz,afl}" --targets trivial --seconds 1 --trials 1 >/dev/null 2>&1 || true
    ;;
  *)
    echo "usage: $0 speed [SECONDS] | crash [TRIALS] | report [SECONDS] [TRIALS] | cost [SECONDS] [TRIALS]" >&2
    exit 2
    ;;
esac
