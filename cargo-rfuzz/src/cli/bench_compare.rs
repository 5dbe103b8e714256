//! `cargo rfuzz bench-compare`: cargo-rfuzz, AFL++ and libFuzzer side by
//! side on the same targets (hidden; driven by tests/bench/compare.sh).
//!
//! The bench directory holds one harness crate per tool over the same code
//! (`rfuzz/`, `afl/`, `libfuzzer/`) and `seeds/<target>/`. For every target,
//! tool and trial the harness runs the fuzzer pinned to one core with a fresh
//! output directory and a time budget, and records:
//! * executions per second (executions the tool reports / wall time),
//! * wall time from start to the first crash file (when one appears),
//! * edges covered at the end, measured the same way for every tool: each
//!   tool's corpus is replayed through the rfuzz build of the target.
//!
//! With `--cost` (targets that crash, hang or slow down: issue 10) it also
//! records the average exec/s over the whole run (`execs_done / run_time`),
//! the exec/s of the first and of the last minute (from `plot_data`), corpus
//! size, crash and hang files, and distinct crash signatures (every tool's
//! crash files replayed through the rfuzz build and grouped as `triage`
//! does), and prints medians with min-max.
//!
//! libFuzzer in `--cost` runs as a user keeps it going past crashes and hangs:
//! `-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 -timeout=1`
//! (one job at a time on its core; 1 s is its smallest timeout). It has no
//! plot_data: its `#N` status lines are timestamped as they arrive, the
//! whole-run exec/s is the last `#N` over the wall time, and a minute's
//! exec/s the growth of `#N` over it (from the last line before the minute
//! began). Its crash, out-of-memory and timeout artifacts are counted and
//! replayed like the other tools' files.

use crate::engine::coverage;
use crate::engine::executor::direct::{DirectConfig, DirectExecutor};
use crate::engine::executor::{Executor, ExitKind, TargetCommand};
use crate::supervisor::cpu;
use anyhow::{Context, Result, bail};
use clap::Args;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Options of `cargo rfuzz bench-compare`.
#[derive(Debug, Args)]
pub struct BenchCompareArgs {
    /// The bench directory (rfuzz/, afl/, libfuzzer/, seeds/).
    #[arg(long, default_value = "tests/bench")]
    pub bench_dir: PathBuf,
    /// Targets (harness names), comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub targets: Vec<String>,
    /// Tools, comma-separated: rfuzz, afl, libfuzzer; `rfuzz[FLAGS]` is a
    /// cargo-rfuzz variant with extra `fuzz` flags (space-separated).
    #[arg(long, value_delimiter = ',', default_value = "rfuzz,afl,libfuzzer")]
    pub tools: Vec<String>,
    /// Time budget per trial in seconds.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Trials per target and tool.
    #[arg(long, default_value_t = 1)]
    pub trials: usize,
    /// Stop a trial at its first crash (time-to-crash runs).
    #[arg(long)]
    pub until_crash: bool,
    /// Targets (comma-separated) that run until the first crash; the others
    /// use the full budget.
    #[arg(long, value_delimiter = ',')]
    pub until_crash_for: Vec<String>,
    /// Core to pin the fuzzers to.
    #[arg(long, default_value_t = 1)]
    pub core: usize,
    /// afl-fuzz to run (default: the one `cargo afl config --build` built).
    #[arg(long)]
    pub afl_fuzz: Option<PathBuf>,
    /// Working directory for outputs.
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Skip building the harnesses.
    #[arg(long)]
    pub no_build: bool,
    /// The cost table: whole-run and first/last-minute exec/s, files and
    /// signatures (see the module docs).
    #[arg(long)]
    pub cost: bool,
}

/// A tool and, for cargo-rfuzz, extra flags (a variant to compare).
#[derive(Debug, Clone)]
struct ToolSpec {
    tool: Tool,
    extra: Vec<String>,
    label: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Rfuzz,
    Afl,
    LibFuzzer,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Rfuzz => "cargo-rfuzz",
            Tool::Afl => "AFL++",
            Tool::LibFuzzer => "libFuzzer",
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Trial {
    execs: u64,
    wall: f64,
    first_crash: Option<f64>,
    edges: u32,
    /// `execs_done / run_time` from fuzzer_stats (0 where the tool has none).
    avg_eps: f64,
    /// Mean exec/s of the plot_data rows of the first and the last minute.
    first_min_eps: Option<f64>,
    last_min_eps: Option<f64>,
    corpus: u64,
    crash_files: u64,
    hang_files: u64,
    signatures: u64,
}

/// Mean exec/s of the `plot_data` rows in the first and in the last minute.
fn minute_speeds(instance: &Path) -> (Option<f64>, Option<f64>) {
    use crate::sync::plot_data::{self, Metric};
    let Ok(pd) = plot_data::read(instance) else { return (None, None) };
    let Some(t0) = pd.rows.first().map(|r| r.time) else { return (None, None) };
    let end = pd.rows.last().map_or(t0, |r| r.time);
    let mean = |lo: u64, hi: u64| {
        let v: Vec<f64> = pd
            .rows
            .iter()
            .filter(|r| r.time >= lo && r.time <= hi)
            .filter_map(|r| r.get(Metric::ExecsPerSec))
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    (mean(t0, t0 + 60), mean(end.saturating_sub(60), end))
}

/// The execution count of a libFuzzer status line (`#123 NEW ...`,
/// `#4096 pulse ...`, fork mode's `#123: cov: ...`).
fn status_execs(line: &str) -> Option<u64> {
    let digits: String = line.strip_prefix('#')?.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// libFuzzer's exec/s in the first and the last minute from timestamped
/// execution counts (`(seconds, #N)`), `last` executions at `wall` seconds.
fn libfuzzer_minute_speeds(samples: &[(f64, u64)], wall: f64, last: u64) -> (Option<f64>, Option<f64>) {
    if samples.is_empty() || wall <= 0.0 {
        return (None, None);
    }
    // The count at `t`: the last line at or before it.
    let at = |t: f64| samples.iter().rev().find(|&&(s, _)| s <= t).copied().unwrap_or((0.0, 0));
    let first = {
        let (s, n) = at(60.0_f64.min(wall));
        (s > 0.0).then(|| n as f64 / s)
    };
    let from = (wall - 60.0).max(0.0);
    let (s, n) = at(from);
    let last_min = (wall > s).then(|| last.saturating_sub(n) as f64 / (wall - s));
    (first, last_min)
}

/// Distinct signatures of crash files, replayed through `binary` (an rfuzz
/// build) and grouped as `cargo rfuzz triage` groups them.
fn signatures(files: &[crate::triage::CrashFile], binary: &Path) -> u64 {
    if files.is_empty() {
        return 0;
    }
    let Ok(replayer) = crate::triage::replay::Replayer::new(binary, &[], Duration::from_secs(2), None) else {
        return 0;
    };
    let jobs = crate::triage::replay::default_jobs();
    crate::triage::triage(files, &|_| &replayer, jobs, &|_| {}).bugs.len() as u64
}

/// The afl-fuzz that `cargo afl config --build` installs.
pub fn find_afl_fuzz() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let root = Path::new(&home).join(".local/share/afl.rs");
    let mut found: Vec<PathBuf> = std::fs::read_dir(root)
        .ok()?
        .flatten()
        .filter_map(|e| std::fs::read_dir(e.path()).ok())
        .flatten()
        .flatten()
        .map(|e| e.path().join("afl/bin/afl-fuzz"))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.pop()
}

fn run_quiet(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd.output().with_context(|| format!("failed to run {what}"))?;
    if !out.status.success() {
        bail!("{what} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn newest_file_time(dir: &Path) -> Option<std::time::SystemTime> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with("id:") || n.starts_with("crash-") || n.starts_with("oom-") || n.starts_with("timeout-")
        })
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .min()
}

/// Edges that the files of `dirs` cover in `binary` (an rfuzz build).
fn replay_edges(binary: &Path, dirs: &[PathBuf]) -> Result<u32> {
    let cmd = TargetCommand { binary: binary.to_path_buf(), ..Default::default() };
    let mut exec =
        DirectExecutor::start(&cmd, &DirectConfig { timeout: Duration::from_secs(2), ..Default::default() })?;
    for d in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.') && e.file_name() != "README.txt")
            .map(|e| e.path())
            .collect();
        files.sort();
        for f in files {
            let Ok(data) = std::fs::read(&f) else { continue };
            if exec.run_one(&data)? == ExitKind::Ok {
                let (map, virgin) = exec.map_and_virgin();
                coverage::classify(map);
                coverage::update_virgin(map, virgin);
            }
        }
    }
    Ok(coverage::count_seen(&exec.map_and_virgin().1[1..]))
}

struct Bench {
    args: BenchCompareArgs,
    work: PathBuf,
    afl_fuzz: Option<PathBuf>,
}

impl Bench {
    fn binary(&self, tool: Tool, target: &str) -> PathBuf {
        let b = &self.args.bench_dir;
        match tool {
            Tool::Rfuzz => {
                // `cargo rfuzz build` puts the default mode in target/rfuzz, or in
                // target/rfuzz-no-c where no clang is found to instrument C: the newer
                // of the two is the last build.
                let at = |mode: &str| b.join("rfuzz/target").join(mode).join(host_dir()).join("release").join(target);
                let built = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
                let (with_c, no_c) = (at("rfuzz"), at("rfuzz-no-c"));
                match (built(&with_c), built(&no_c)) {
                    (Some(a), Some(n)) if n > a => no_c,
                    (None, Some(_)) => no_c,
                    _ => with_c,
                }
            }
            Tool::Afl => b.join("afl/target/release").join(target),
            Tool::LibFuzzer => b.join("libfuzzer/target").join(host_dir()).join("release").join(target),
        }
    }

    fn build(&self, tools: &[Tool]) -> Result<()> {
        let b = &self.args.bench_dir;
        for &t in tools {
            eprintln!("building the {} harnesses", t.name());
            match t {
                Tool::Rfuzz => run_quiet(
                    Command::new(std::env::current_exe()?).args(["rfuzz", "build", "--fuzz-dir"]).arg(b.join("rfuzz")),
                    "cargo rfuzz build",
                )?,
                Tool::Afl => run_quiet(
                    Command::new("cargo").args(["afl", "build", "--release"]).current_dir(b.join("afl")),
                    "cargo afl build",
                )?,
                Tool::LibFuzzer => run_quiet(
                    Command::new("cargo")
                        .args(["+nightly", "fuzz", "build", "-O", "-a", "-s", "none", "--fuzz-dir", "libfuzzer"])
                        .current_dir(b),
                    "cargo +nightly fuzz build",
                )?,
            }
        }
        Ok(())
    }

    fn trial(&self, spec: &ToolSpec, target: &str, n: usize) -> Result<Trial> {
        let tool = spec.tool;
        let until_crash = self.args.until_crash || self.args.until_crash_for.iter().any(|t| t == target);
        let tag: String = spec.label.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        let out = self.work.join(format!("{target}-{tag}-{n}"));
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out)?;
        let seeds = self.args.bench_dir.join("seeds").join(target);
        let binary = self.binary(tool, target);
        let secs = self.args.seconds;
        let (mut cmd, crash_dir, queue_dirs, instance) = match tool {
            Tool::Rfuzz => {
                let mut c = Command::new(std::env::current_exe()?);
                c.args(["rfuzz", "fuzz", "--no-ui", "--no-sync", "-M", "main", "--binary"])
                    .arg(&binary)
                    .arg("-o")
                    .arg(&out)
                    .arg("-i")
                    .arg(&seeds)
                    .args(["--max-total-time", &secs.to_string()])
                    .args(&spec.extra);
                if until_crash {
                    c.arg("--exit-on-crash");
                }
                (c, out.join("main/crashes"), vec![out.join("main/queue")], out.join("main"))
            }
            Tool::Afl => {
                let afl = self
                    .afl_fuzz
                    .clone()
                    .context("afl-fuzz not found: cargo install cargo-afl && cargo afl config --build")?;
                let mut c = Command::new(afl);
                c.arg("-i").arg(&seeds).arg("-o").arg(&out).args(["-V", &secs.to_string(), "--"]).arg(&binary);
                c.env("AFL_NO_UI", "1")
                    .env("AFL_SKIP_CPUFREQ", "1")
                    .env("AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES", "1")
                    .env("AFL_NO_AFFINITY", "1");
                if until_crash {
                    c.env("AFL_BENCH_UNTIL_CRASH", "1");
                }
                (c, out.join("default/crashes"), vec![out.join("default/queue")], out.join("default"))
            }
            Tool::LibFuzzer => {
                let corpus = out.join("corpus");
                let crashes = out.join("crashes");
                std::fs::create_dir_all(&corpus)?;
                std::fs::create_dir_all(&crashes)?;
                let mut c = Command::new(&binary);
                if self.args.cost {
                    c.args(["-fork=1", "-ignore_crashes=1", "-ignore_timeouts=1", "-ignore_ooms=1", "-timeout=1"]);
                }
                c.arg(format!("-max_total_time={secs}"))
                    .arg("-print_final_stats=1")
                    .arg(format!("-artifact_prefix={}/", crashes.display()))
                    .arg(&corpus)
                    .arg(&seeds);
                (c, crashes.clone(), vec![corpus], crashes)
            }
        };
        let core = self.args.core;
        // SAFETY: only sched_setaffinity between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                cpu::pin_self(core);
                Ok(())
            });
        }
        let mut log = std::fs::File::create(out.join("tool.log"))?;
        let start = Instant::now();
        let start_time = std::time::SystemTime::now();
        // libFuzzer's status lines, timestamped (see the module docs).
        let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(f64, u64)>::new()));
        let mut reader = None;
        let mut child = if tool == Tool::LibFuzzer {
            let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn()?;
            let err = child.stderr.take().context("no stderr pipe")?;
            let samples = samples.clone();
            reader = Some(std::thread::spawn(move || {
                use std::io::{BufRead, Write};
                for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                    let _ = writeln!(log, "{line}");
                    if let Some(n) = status_execs(&line) {
                        samples.lock().unwrap_or_else(|e| e.into_inner()).push((start.elapsed().as_secs_f64(), n));
                    }
                }
            }));
            child
        } else {
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log).spawn()?
        };
        let mut first_crash = None;
        let limit = Duration::from_secs(secs + 30);
        loop {
            if first_crash.is_none() && newest_file_time(&crash_dir).is_some() {
                first_crash = Some(start.elapsed().as_secs_f64());
                if until_crash {
                    // libFuzzer stops itself; the others are told to.
                    std::thread::sleep(Duration::from_millis(200));
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(child.id() as i32),
                        nix::sys::signal::Signal::SIGINT,
                    );
                }
            }
            if child.try_wait()?.is_some() {
                break;
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let wall = start.elapsed().as_secs_f64();
        if let Some(r) = reader {
            let _ = r.join();
        }
        if first_crash.is_none() && newest_file_time(&crash_dir).is_some() {
            first_crash = Some(wall);
        }
        let execs = match tool {
            Tool::Rfuzz => stat(&out.join("main/fuzzer_stats"), "execs_done"),
            Tool::Afl => stat(&out.join("default/fuzzer_stats"), "execs_done"),
            Tool::LibFuzzer => std::fs::read_to_string(out.join("tool.log"))
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix("stat::number_of_executed_units:").and_then(|v| v.trim().parse().ok()))
                .unwrap_or(0),
        };
        let rfuzz_binary = self.binary(Tool::Rfuzz, target);
        let edges = replay_edges(&rfuzz_binary, &queue_dirs).unwrap_or(0);
        let mut t = Trial { execs, wall, first_crash, edges, ..Trial::default() };
        if self.args.cost && tool != Tool::LibFuzzer {
            let stats = instance.join("fuzzer_stats");
            let run_time = stat(&stats, "run_time");
            t.avg_eps = if run_time > 0 { stat(&stats, "execs_done") as f64 / run_time as f64 } else { 0.0 };
            (t.first_min_eps, t.last_min_eps) = minute_speeds(&instance);
            let count = |sub: &str| crate::sync::layout::list_entries(&instance.join(sub)).len() as u64;
            t.corpus = count("queue");
            t.crash_files = count("crashes");
            t.hang_files = count("hangs");
            t.signatures = signatures(&crate::triage::collect(&out, false), &rfuzz_binary);
        }
        if self.args.cost && tool == Tool::LibFuzzer {
            let samples = samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let last = samples.last().map_or(t.execs, |&(_, n)| n.max(t.execs));
            t.execs = last;
            t.avg_eps = last as f64 / wall.max(0.001);
            (t.first_min_eps, t.last_min_eps) = libfuzzer_minute_speeds(&samples, wall, last);
            t.corpus = std::fs::read_dir(out.join("corpus")).map_or(0, |d| d.flatten().count() as u64);
            let artifacts = |prefixes: &[&str]| -> Vec<crate::triage::CrashFile> {
                let mut v: Vec<_> = std::fs::read_dir(&crash_dir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter(|e| prefixes.iter().any(|p| e.file_name().to_string_lossy().starts_with(p)))
                    .map(|e| crate::triage::CrashFile {
                        path: e.path(),
                        instance: "libfuzzer".into(),
                        hang: false,
                        size: e.metadata().map_or(0, |m| m.len()),
                        saved: 0,
                    })
                    .collect();
                v.sort_by(|a, b| a.path.cmp(&b.path));
                v
            };
            let crashes = artifacts(&["crash-", "oom-"]);
            // Its timeouts share the artifact directory: the first crash is
            // the oldest crash or out-of-memory file.
            t.first_crash = crashes
                .iter()
                .filter_map(|c| std::fs::metadata(&c.path).ok()?.modified().ok()?.duration_since(start_time).ok())
                .map(|d| d.as_secs_f64())
                .reduce(f64::min);
            t.crash_files = crashes.len() as u64;
            t.hang_files = artifacts(&["timeout-"]).len() as u64;
            t.signatures = signatures(&crashes, &rfuzz_binary);
        }
        Ok(t)
    }
}

fn stat(path: &Path, key: &str) -> u64 {
    crate::sync::layout::read_stats(path).and_then(|m| m.get(key).and_then(|v| v.parse().ok())).unwrap_or(0)
}

fn host_dir() -> String {
    rfuzz_instrument::build::host_triple().unwrap_or_else(|_| "x86_64-unknown-linux-gnu".into())
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// Runs the comparison and prints a markdown table.
pub fn run(args: BenchCompareArgs) -> Result<i32> {
    let mut specs = Vec::new();
    for t in &args.tools {
        let (name, extra) = match t.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').split_whitespace().map(str::to_string).collect()),
            None => (t.as_str(), Vec::new()),
        };
        let tool = match name {
            "rfuzz" => Tool::Rfuzz,
            "afl" => Tool::Afl,
            "libfuzzer" => Tool::LibFuzzer,
            other => bail!(super::UsageError(format!("unknown tool `{other}` (rfuzz, afl, libfuzzer)"))),
        };
        let label =
            if extra.is_empty() { tool.name().to_string() } else { format!("{} {}", tool.name(), extra.join(" ")) };
        specs.push(ToolSpec { tool, extra, label });
    }
    let mut tools: Vec<Tool> = Vec::new();
    for s in &specs {
        if !tools.contains(&s.tool) {
            tools.push(s.tool);
        }
    }
    let work = args.work_dir.clone().unwrap_or_else(|| std::env::temp_dir().join("rfuzz-bench"));
    let bench = Bench { afl_fuzz: args.afl_fuzz.clone().or_else(find_afl_fuzz), work, args };
    if !bench.args.no_build {
        bench.build(&tools)?;
    }
    if bench.args.cost {
        println!(
            "| target | tool | trials | avg exec/s (min-max) | first min exec/s | last min exec/s | corpus | edges (min-max) | crash files | hang files | signatures | time to 1st crash (s) |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
        );
    } else {
        println!(
            "| target | tool | trials | crashed | median time to crash (s) | median exec/s | median edges | edges min-max |\n|---|---|---|---|---|---|---|---|"
        );
    }
    for target in &bench.args.targets {
        for spec in &specs {
            let mut trials = Vec::new();
            for n in 0..bench.args.trials {
                let t = bench.trial(spec, target, n)?;
                eprintln!(
                    "{target} {} #{n}: {} execs in {:.1}s, crash {:?}, {} edges",
                    spec.label, t.execs, t.wall, t.first_crash, t.edges
                );
                trials.push(t);
            }
            let crashed = trials.iter().filter(|t| t.first_crash.is_some()).count();
            let ttc = median(trials.iter().filter_map(|t| t.first_crash).collect());
            let eps = median(trials.iter().map(|t| t.execs as f64 / t.wall.max(0.001)).collect()).unwrap_or(0.0);
            let edges = median(trials.iter().map(|t| t.edges as f64).collect()).unwrap_or(0.0);
            // The spread says whether a difference in medians is noise.
            let lo = trials.iter().map(|t| t.edges).min().unwrap_or(0);
            let hi = trials.iter().map(|t| t.edges).max().unwrap_or(0);
            if bench.args.cost {
                let spread = |v: Vec<f64>| match (
                    median(v.clone()),
                    v.iter().cloned().reduce(f64::min),
                    v.iter().cloned().reduce(f64::max),
                ) {
                    (Some(m), Some(a), Some(b)) => format!("{m:.0} ({a:.0}-{b:.0})"),
                    _ => "-".into(),
                };
                let med = |v: Vec<f64>| median(v).map_or("-".into(), |m| format!("{m:.0}"));
                println!(
                    "| {target} | {} | {} | {} | {} | {} | {} | {edges:.0} ({lo}-{hi}) | {} | {} | {} | {} |",
                    spec.label,
                    trials.len(),
                    spread(trials.iter().map(|t| t.avg_eps).collect()),
                    med(trials.iter().filter_map(|t| t.first_min_eps).collect()),
                    med(trials.iter().filter_map(|t| t.last_min_eps).collect()),
                    med(trials.iter().map(|t| t.corpus as f64).collect()),
                    spread(trials.iter().map(|t| t.crash_files as f64).collect()),
                    spread(trials.iter().map(|t| t.hang_files as f64).collect()),
                    spread(trials.iter().map(|t| t.signatures as f64).collect()),
                    ttc.map(|t| format!("{t:.1} ({crashed}/{})", trials.len())).unwrap_or_else(|| "-".into()),
                );
                continue;
            }
            println!(
                "| {target} | {} | {} | {crashed} | {} | {:.0} | {:.0} | {lo}-{hi} |",
                spec.label,
                trials.len(),
                ttc.map(|t| format!("{t:.2}")).unwrap_or_else(|| "-".into()),
                eps,
                edges
            );
        }
    }
    Ok(crate::exit::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libfuzzer_status_lines_give_execution_counts() {
        assert_eq!(status_execs("#4096\tpulse  cov: 12 ft: 13 corp: 4/20b exec/s: 2048 rss: 30Mb"), Some(4096));
        assert_eq!(
            status_execs("#123456: cov: 45 ft: 60 corp: 30 exec/s: 12345 oom/timeout/crash: 0/0/5"),
            Some(123456)
        );
        assert_eq!(status_execs("INFO: Seed: 1234"), None);
        assert_eq!(status_execs("#"), None);
    }

    #[test]
    fn libfuzzer_minute_speeds_come_from_the_counts_around_each_minute() {
        // 1000 exec/s for the first minute, then 100 exec/s to 300 s.
        let samples: Vec<(f64, u64)> = (1..=300)
            .step_by(10)
            .map(|t| (t as f64, if t <= 60 { t * 1000 } else { 60_000 + (t - 60) * 100 }))
            .collect();
        let (first, last) = libfuzzer_minute_speeds(&samples, 300.0, 84_000);
        assert!((first.unwrap() - 1000.0).abs() < 1.0, "{first:?}");
        assert!((last.unwrap() - 100.0).abs() < 5.0, "{last:?}");
        assert_eq!(libfuzzer_minute_speeds(&[], 300.0, 0), (None, None));
    }
}
