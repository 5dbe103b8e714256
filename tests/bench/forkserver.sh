#!/usr/bin/env bash
# Executions per second of each way of running a target, side by side on one
# pinned core: AFL++ protocol fork per exec, AFL++ persistent (SIGSTOP), our
# direct protocol one input per request, and direct batches.
#
#   tests/bench/forkserver.sh [SECONDS]      (CORE picks the core, default 1)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rfuzz=${CARGO_RFUZZ:-cargo-rfuzz}
binary=$("$rfuzz" rfuzz build --fuzz-dir "$here/rfuzz" trivial 2>/dev/null | tail -n 1)
taskset -c "${CORE:-1}" "$rfuzz" rfuzz bench-exec "$binary" --seconds "${1:-3}"
