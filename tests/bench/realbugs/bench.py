#!/usr/bin/env python3
"""The real-bugs benchmark behind run.sh: trials, replay and classification, the table.

Only the standard library: anyone with python3 can run it.
"""
import argparse
import json
import math
import os
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOOLS = {"rfuzz": "cargo-rfuzz", "afl": "AFL++", "libfuzzer": "libFuzzer"}
# Address-space limit of a replay: a huge allocation fails as it would under each fuzzer's
# memory limit (2 GiB by default in all three: cargo-rfuzz's largest single allocation,
# AFL++'s -m 2048 given below, libFuzzer's -malloc_limit_mb) instead of being overcommitted.
REPLAY_AS_LIMIT = 2048 << 20
REPLAY_TIMEOUT_S = 30


def load_bugs():
    bugs = {}
    for line in (HERE / "bugs.tsv").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        name, crate, kind, sig, link = line.split("\t")
        bugs[name] = {"name": name, "crate": crate, "kind": kind, "signature": sig, "link": link}
    return bugs


def host_triple():
    out = subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True).stdout
    return next(line.split()[1] for line in out.splitlines() if line.startswith("host:"))


def binary(tool, name):
    if tool == "rfuzz":
        # `cargo rfuzz build` puts the default mode in target/rfuzz, or in target/rfuzz-no-c
        # where no clang is found to instrument C: the newer of the two is the last build.
        found = [d / host_triple() / "release" / name
                 for d in (HERE / "rfuzz/target/rfuzz", HERE / "rfuzz/target/rfuzz-no-c")]
        found = [f for f in found if f.is_file()]
        if not found:
            return HERE / "rfuzz/target/rfuzz" / host_triple() / "release" / name
        return max(found, key=lambda f: f.stat().st_mtime)
    if tool == "afl":
        return HERE / "afl/target/release" / name
    return HERE / "libfuzzer/target" / host_triple() / "release" / name


def limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (REPLAY_AS_LIMIT, REPLAY_AS_LIMIT))


def replay(name, data):
    """Runs one input through the AFL++ build of `name` (standalone: the input on stdin).

    Returns (kind, detail): kind is `panic`, `stack-overflow`, `oom`, `timeout`, `crash`
    (another signal) or `none` (it did not crash); detail is the panic's location and message.
    """
    try:
        p = subprocess.run([str(binary("afl", name))], input=data, capture_output=True,
                           timeout=REPLAY_TIMEOUT_S, preexec_fn=limit_memory)
    except subprocess.TimeoutExpired:
        return "timeout", ""
    err = p.stderr.decode("utf-8", "replace")
    lines = err.splitlines()
    for i, line in enumerate(lines):
        if "panicked at" in line:
            loc = line.split("panicked at", 1)[1].strip().rstrip(":")
            msg = lines[i + 1].strip() if i + 1 < len(lines) else ""
            return "panic", f"{loc} {msg}"
    if "has overflowed its stack" in err:
        return "stack-overflow", ""
    if "memory allocation of" in err or "capacity overflow" in err:
        return "oom", ""
    if p.returncode == 0:
        return "none", ""
    return "crash", f"exit {p.returncode}"


def matches(bug, kind, detail):
    sig = bug["signature"]
    if sig in ("stack-overflow", "oom", "timeout"):
        return kind == sig
    return kind == "panic" and sig in detail


def short(kind, detail):
    """A short name for a crash that is not the intended bug: the panic's file:line and message."""
    if kind != "panic":
        return kind
    loc, _, msg = detail.partition(" ")
    parts = loc.split("/")
    # registry paths: .../<crate>-<version>/src/file.rs:L:C -> <crate>-<version>/file.rs:L
    for j in range(len(parts) - 1, 0, -1):
        if parts[j] == "src":
            loc = parts[j - 1] + "/" + "/".join(parts[j + 1:])
            break
    loc = ":".join(loc.split(":")[:2])
    return f"{loc} {msg[:60]}".strip()


def check(args):
    bugs = load_bugs()
    ok = True
    for name, bug in bugs.items():
        for what, path in (("repro", HERE / "repro" / name), ("seed", HERE / "seeds" / name / "seed")):
            kind, detail = replay(name, path.read_bytes())
            good = matches(bug, kind, detail) if what == "repro" else kind == "none"
            ok &= good
            print(f"{'ok  ' if good else 'FAIL'} {name:28} {what:5} {kind} {detail[:110]}")
    return 0 if ok else 1


def crash_files(tool, out):
    if tool == "rfuzz":
        d, pre = out / "main/crashes", ("id:",)
    elif tool == "afl":
        d, pre = out / "default/crashes", ("id:",)
    else:
        d, pre = out / "crashes", ("crash-", "oom-", "timeout-", "leak-")
    try:
        return [f for f in d.iterdir() if f.name.startswith(pre)]
    except FileNotFoundError:
        return []


def command(tool, name, seeds, out, secs, extra):
    b = str(binary(tool, name))
    if tool == "rfuzz":
        return [args_rfuzz, "rfuzz", "fuzz", "--no-ui", "--no-sync", "-M", "main", "--binary", b,
                "-o", str(out), "-i", str(seeds), "--max-total-time", str(secs),
                "--exit-on-crash", *extra], {}
    if tool == "afl":
        env = {"AFL_NO_UI": "1", "AFL_SKIP_CPUFREQ": "1", "AFL_NO_AFFINITY": "1",
               "AFL_BENCH_UNTIL_CRASH": "1", "AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES": "1"}
        # -m 2048: the memory limit libFuzzer and cargo-rfuzz apply by default.
        return ["cargo", "afl", "fuzz", "-i", str(seeds), "-o", str(out), "-V", str(secs),
                "-m", "2048", "--", b], env
    (out / "corpus").mkdir(parents=True, exist_ok=True)
    (out / "crashes").mkdir(parents=True, exist_ok=True)
    return [b, f"-max_total_time={secs}", f"-artifact_prefix={out}/crashes/",
            str(out / "corpus"), str(seeds)], {}


args_rfuzz = "cargo-rfuzz"


def trial(tool, label, name, n, secs, core, work, extra):
    out = work / f"{name}-{label}-{n}"
    subprocess.run(["rm", "-rf", str(out)], check=True)
    out.mkdir(parents=True)
    cmd, env = command(tool, name, HERE / "seeds" / name, out, secs, extra)
    log = open(out / "tool.log", "wb")
    start = time.time()
    p = subprocess.Popen(["taskset", "-c", str(core), *cmd], stdin=subprocess.DEVNULL, stdout=log,
                         stderr=subprocess.STDOUT, env={**os.environ, **env}, start_new_session=True)
    first = None
    while True:
        files = crash_files(tool, out)
        if files and first is None:
            first = min(files, key=lambda f: (f.stat().st_mtime, f.name))
            found_at = first.stat().st_mtime - start
            # The tools stop themselves at a crash; give them a moment, then make sure.
            time.sleep(0.5)
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGINT)
        if p.poll() is not None:
            break
        if time.time() - start > secs + 60:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            break
        time.sleep(0.05)
    try:
        os.killpg(p.pid, signal.SIGKILL)  # stray children of the tool, if any
    except ProcessLookupError:
        pass
    if first is None:
        files = crash_files(tool, out)
        if files:
            first = min(files, key=lambda f: (f.stat().st_mtime, f.name))
            found_at = first.stat().st_mtime - start
    res = {"bug": name, "tool": label, "trial": n, "seconds": secs, "core": core,
           "crash": None, "time": None, "kind": None, "detail": None, "intended": False}
    if first is not None:
        kind, detail = replay(name, first.read_bytes())
        if kind == "none" and first.name.startswith(("oom-", "timeout-")):
            kind = first.name.split("-")[0]  # libFuzzer's own verdict (not reproducible in a replay)
        res.update(crash=str(first), time=round(max(found_at, 0.0), 2), kind=kind, detail=detail,
                   intended=matches(load_bugs()[name], kind, detail))
    return res


def fuzz(args):
    global args_rfuzz
    args_rfuzz = args.rfuzz
    bugs = load_bugs()
    names = args.bugs.split(",") if args.bugs else list(bugs)
    for n in names:
        if n not in bugs:
            sys.exit(f"unknown bug `{n}`")
    tools = args.tools.split(",")
    extra = args.rfuzz_flags.split() if args.rfuzz_flags else []
    work = Path(args.out).resolve()
    work.mkdir(parents=True, exist_ok=True)
    for t in tools:
        for n in names:
            if not binary(t, n).is_file():
                sys.exit(f"missing {binary(t, n)}: run `run.sh build` first")
    jobs = [(t, n, k) for n in names for k in range(args.trials) for t in tools]
    lock = threading.Lock()
    results_path = work / "results.jsonl"

    def worker(core):
        while True:
            with lock:
                if not jobs:
                    return
                t, n, k = jobs.pop(0)
            label = args.label if (args.label and t == "rfuzz") else t
            r = trial(t, label, n, k, args.seconds, core, work / "runs", extra)
            with lock:
                with open(results_path, "a") as f:
                    f.write(json.dumps(r) + "\n")
                verdict = "found" if r["intended"] else (f"other: {short(r['kind'], r['detail'])}"
                                                         if r["crash"] else "nothing")
                print(f"{n} {label} #{k} core {core}: {verdict} "
                      f"{'' if r['time'] is None else '%.1fs' % r['time']}", file=sys.stderr, flush=True)

    threads = [threading.Thread(target=worker, args=(int(c),)) for c in args.cores.split(",")]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return report_table(work, tools if not args.label else None)


def fmt_times(ts):
    if not ts:
        return "-"
    med = statistics.median(ts)
    return f"{med:.2f} ({min(ts):.2f}–{max(ts):.2f})"


def all_trials_median(ts, n):
    """Median time to the bug over all `n` trials, a trial without it counting as never (it
    stopped at another bug or at the budget): `-` when fewer than half found it."""
    if 2 * len(ts) < n or n == 0:
        return "-"
    ts = sorted(ts) + [math.inf] * (n - len(ts))
    med = statistics.median(ts)
    return f"{med:.2f}" if med != math.inf else "-"


def reclassify(work):
    """Replays every trial's first crash again (after a change to a signature or to the replay)."""
    path = Path(work) / "results.jsonl"
    bugs = load_bugs()
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    for r in rows:
        if r["crash"] and Path(r["crash"]).is_file():
            kind, detail = replay(r["bug"], Path(r["crash"]).read_bytes())
            if kind == "none" and Path(r["crash"]).name.startswith(("oom-", "timeout-")):
                kind = Path(r["crash"]).name.split("-")[0]
            r.update(kind=kind, detail=detail, intended=matches(bugs[r["bug"]], kind, detail))
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def report_table(works, tools=None, merge=None, all_trials=False):
    """The table of one or more campaign directories. Trials of several directories are pooled
    by tool label; `DIR@tool,...` takes only those tools' trials of DIR; `merge` maps labels onto
    others first (e.g. a variant's label onto `rfuzz`)."""
    bugs = load_bugs()
    if isinstance(works, (str, Path)):
        works = [works]
    rows = []
    for work in works:
        # DIR@tool,tool: only those tools' trials of DIR (e.g. the rivals' trials of an older
        # campaign, pooled with this engine's trials of a newer one).
        work, _, only = str(work).partition("@")
        only = set(filter(None, only.split(",")))
        path = Path(work) / "results.jsonl"
        if not path.is_file():
            sys.exit(f"error: {path} not found: give a directory written by `run.sh fuzz --out`")
        rows += [r for r in (json.loads(line) for line in path.read_text().splitlines() if line)
                 if not only or r["tool"] in only]
    for r in rows:
        r["tool"] = (merge or {}).get(r["tool"], r["tool"])
    labels = []
    for r in rows:
        if r["tool"] not in labels and (tools is None or r["tool"] in tools):
            labels.append(r["tool"])
    secs = sorted({r["seconds"] for r in rows})
    print(f"Budget per trial: {', '.join(map(str, secs))} s. Cells: found/trials, median time to the "
          "intended bug in s (min–max over the trials that found it).\n")
    print("| bug | crate | kind | " + " | ".join(TOOLS.get(t, t) for t in labels) + " | first crashes that were another bug |")
    print("|---|---|---|" + "---|" * len(labels) + "---|")
    for name, bug in bugs.items():
        mine = [r for r in rows if r["bug"] == name]
        if not mine:
            continue
        cells, others = [], []
        for t in labels:
            rs = [r for r in mine if r["tool"] == t]
            if not rs:
                cells.append("-")
                continue
            ts = [r["time"] for r in rs if r["intended"]]
            cell = f"{len(ts)}/{len(rs)} {fmt_times(ts)}" if ts else f"0/{len(rs)}"
            if all_trials:
                cell += f"; all trials {all_trials_median(ts, len(rs))}"
            cells.append(cell)
            for r in rs:
                if r["crash"] and not r["intended"]:
                    others.append(f"{TOOLS.get(t, t)}: {short(r['kind'], r['detail'])}")
        other = "; ".join(f"{o} ×{others.count(o)}" if others.count(o) > 1 else o
                          for o in dict.fromkeys(others)) or ""
        print(f"| [{name}]({bug['link']}) | {bug['crate']} | {bug['kind']} | " + " | ".join(cells) + f" | {other} |")
    return 0


def main():
    ap = argparse.ArgumentParser(prog="run.sh")
    ap.add_argument("mode", choices=["check", "fuzz", "report"])
    ap.add_argument("dir", nargs="*", help="report: one or more --out directories, pooled")
    ap.add_argument("--rfuzz", default="cargo-rfuzz")
    ap.add_argument("--tools", default="rfuzz,afl,libfuzzer")
    ap.add_argument("--bugs", default="")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=300)
    ap.add_argument("--cores", default="1")
    ap.add_argument("--out", default="realbugs-out")
    ap.add_argument("--rfuzz-flags", default="")
    ap.add_argument("--label", default="")
    ap.add_argument("--replay", action="store_true", help="report: classify the first crashes again")
    ap.add_argument("--all-trials", action="store_true",
                    help="report: also the median over all trials (a trial without the bug counts as never)")
    ap.add_argument("--merge", default="", help="report: LABEL=TOOL,... pool a variant's trials under TOOL")
    args = ap.parse_args()
    if args.mode == "check":
        return check(args)
    if args.mode == "report":
        if not args.dir:
            sys.exit("usage: run.sh report DIR... [--tools ...] [--merge LABEL=TOOL,...] [--replay]")
        merge = {}
        for pair in filter(None, args.merge.split(",")):
            label, sep, tool = pair.partition("=")
            if not sep or not label or not tool:
                sys.exit(f"error: --merge takes LABEL=TOOL pairs, got `{pair}`")
            merge[label] = tool
        if args.replay:
            for d in args.dir:
                reclassify(d.partition("@")[0])
        return report_table(args.dir, args.tools.split(",") if "--tools" in sys.argv else None, merge,
                            args.all_trials)
    return fuzz(args)


if __name__ == "__main__":
    sys.exit(main())
