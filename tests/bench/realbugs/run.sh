#!/usr/bin/env bash
# Real historical bugs: time to find each with cargo-rfuzz, AFL++ (cargo-afl) and libFuzzer
# (cargo-fuzz), same harness code, same seed, each run pinned to one core.
#
#   tests/bench/realbugs/run.sh build               build the three harness sets
#   tests/bench/realbugs/run.sh check               every reproducer in repro/ triggers its
#                                                   bug's signature; no seed triggers anything
#   tests/bench/realbugs/run.sh fuzz [OPTIONS]      run the campaign, print the table
#       --tools rfuzz,afl,libfuzzer   --bugs NAME,...   --trials N (5)   --seconds S (300)
#       --cores 0,1 (one run per listed core at a time)  --out DIR (results.jsonl is appended)
#       --rfuzz-flags "..." (extra `cargo rfuzz fuzz` flags, e.g. to compare variants)
#       --label NAME (the tool name in the table, for such variants)
#   tests/bench/realbugs/run.sh report DIR... [--tools ...] [--merge LABEL=TOOL,...] [--all-trials]
#                                       [--replay]
#                                                   the table from DIR/results.jsonl; several
#                                                   DIRs pool their trials per tool (DIR@afl,...:
#                                                   only those tools' trials of DIR; --merge:
#                                                   count a --label variant's trials as TOOL's;
#                                                   --all-trials: also the median over all trials,
#                                                   a trial without the bug counting as never;
#                                                   --replay: classify the saved first crashes again)
#
# A trial stops at the first crash the tool saves (or at the budget). That crash is replayed
# through the AFL++ build of the same harness (plain Rust panic and stack-overflow messages,
# 2 GiB address-space limit) and matched against the bug's signature in bugs.tsv: a panic
# location or message, or a kind (stack-overflow, oom). A first crash that matches is a find;
# any other is reported as a different bug.
#
# Needs: cargo, cargo-rfuzz on PATH (or CARGO_RFUZZ=path), cargo-afl (`cargo install
# cargo-afl && cargo afl config --build`), cargo-fuzz with a nightly toolchain, taskset,
# python3. Leave a tool out with --tools.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rfuzz=${CARGO_RFUZZ:-cargo-rfuzz}
mode=${1:-}
case "$mode" in
  build)
    shift
    tools=${1:-rfuzz,afl,libfuzzer}
    case ",$tools," in *,afl,*)
      echo "building the AFL++ harnesses" >&2
      (cd "$here/afl" && cargo afl build --release --locked) ;;
    esac
    case ",$tools," in *,rfuzz,*)
      echo "building the cargo-rfuzz harnesses" >&2
      "$rfuzz" rfuzz build --fuzz-dir "$here/rfuzz" >/dev/null ;;
    esac
    case ",$tools," in *,libfuzzer,*)
      echo "building the libFuzzer harnesses" >&2
      (cd "$here" && cargo +nightly fuzz build -O -a -s none --fuzz-dir libfuzzer) ;;
    esac
    ;;
  check | fuzz | report)
    shift
    exec python3 "$here/bench.py" "$mode" "$@" --rfuzz "$rfuzz"
    ;;
  *)
    sed -n '2,30p' "$0" >&2
    exit 2
    ;;
esac
