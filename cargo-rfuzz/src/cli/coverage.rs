//! `cargo rfuzz coverage TARGET`: which lines of the user's code the corpus
//! and every instance's queue reach, as HTML, `lcov.info`, JSON and a table
//! on the terminal. Needs nothing but stable rustc: a coverage build of the
//! target of its own (see [`crate::coverage`]), no llvm-tools.

use super::build::BuildFlags;
use super::triage::{banner, implied_target};
use super::{ProjectArgs, UsageError};
use crate::coverage::{self, inputs, replay, symbols};
use crate::report;
use crate::sync::layout;
use crate::triage::replay::Replayer;
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use rfuzz_instrument::{CoverageMode, Instrumentation, Profile};
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `--format`: what to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// index.html and a page per source file.
    Html,
    /// lcov.info (for genhtml, editors, coverage services).
    Lcov,
    /// coverage.json.
    Json,
    /// The per-file table on the terminal.
    Text,
}

/// Options of `cargo rfuzz coverage`.
#[derive(Debug, Args)]
pub struct CoverageArgs {
    /// Fuzz target (may be left out when the project has one).
    pub target: Option<String>,
    /// Sync directory whose instances' queues are replayed (default:
    /// fuzz/sync/<target>/ when it exists).
    #[arg(short = 'o', long = "output", value_name = "SYNC_DIR")]
    pub output: Option<PathBuf>,
    /// Corpus directory to replay too; repeatable (fuzz/corpus/<target>/ is
    /// always replayed when it exists).
    #[arg(short = 'i', long = "input", value_name = "DIR")]
    pub input: Vec<PathBuf>,
    /// Where to write the report (default: fuzz/coverage/<target>/, or
    /// <SYNC_DIR>-coverage/ beside a sync directory given with -o).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// What to write, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "html,lcov,json,text")]
    pub format: Vec<Format>,
    /// Show dependencies' files too (the standard library never).
    #[arg(long)]
    pub include_deps: bool,
    /// Replay the instances' crashes and hangs too (a crashing input's
    /// coverage counts up to the crash).
    #[arg(long)]
    pub crashes: bool,
    /// Replays to run at once (default: one per core).
    #[arg(short = 'j', long = "jobs", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub jobs: Option<u64>,
    /// Time limit of one replay in milliseconds; an input that runs longer
    /// is killed and its coverage not counted.
    #[arg(short = 't', long = "timeout", value_name = "MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Memory limit of the target in MiB, as for `fuzz -m`.
    #[arg(short = 'm', long = "memory", value_name = "MB")]
    pub memory: Option<u64>,
    /// Features of the fuzz package to enable.
    #[arg(long, short = 'F', value_delimiter = ',', help_heading = "Build")]
    pub features: Vec<String>,
    /// Enable all features of the fuzz package.
    #[arg(long, help_heading = "Build")]
    pub all_features: bool,
    /// Disable the default features of the fuzz package.
    #[arg(long, help_heading = "Build")]
    pub no_default_features: bool,
    /// Show cargo's full output.
    #[arg(long, short = 'v', help_heading = "Build")]
    pub verbose: bool,
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Arguments for the target, as given to `fuzz` (`@@`: the input file).
    #[arg(last = true, value_name = "TARGET_ARGS")]
    pub target_args: Vec<OsString>,
}

/// Builds the coverage binary of `name`; returns it and the source
/// directories of the runtime (and libfuzzer-sys stand-in) patched in, which
/// are never part of a report (`fuzz_target!` expands to code there).
fn build(project: &rfuzz_instrument::FuzzProject, name: &str, args: &CoverageArgs) -> Result<(PathBuf, Vec<PathBuf>)> {
    let flags = BuildFlags {
        features: args.features.clone(),
        all_features: args.all_features,
        no_default_features: args.no_default_features,
        verbose: args.verbose,
        ..BuildFlags::default()
    };
    let opts = rfuzz_instrument::BuildOptions {
        // Cargo's dev profile (no LTO a release profile may ask for); the
        // coverage flags set the optimisation and debug info themselves.
        profile: Profile::Dev,
        instrumentation: Instrumentation { coverage: CoverageMode::Report, instrument_c: false, sanitizer: None },
        ..flags.options(project, false)?
    };
    let ours: Vec<PathBuf> = opts.runtime_source.iter().chain(&opts.libfuzzer_sys_source).cloned().collect();
    crate::sys::signal::install_stop_handlers();
    let result = rfuzz_instrument::build(project, &[name.to_string()], &opts);
    if crate::sys::signal::stop_requested() {
        anyhow::bail!(crate::exit::Interrupted("the build was stopped".into()));
    }
    let out = result?;
    for w in &out.warnings {
        eprintln!("warning: {w}");
    }
    let binary = out.binaries.into_iter().next().expect("one target built").binary;
    super::build::check_rfuzz_binary(&binary)?;
    Ok((binary, ours))
}

/// Refuses an output directory inside the sync directory: the sync
/// directory is only ever read.
fn check_out_dir(sync_dir: Option<&Path>, out: &Path) -> Result<()> {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    if let Some(s) = sync_dir
        && abs(out).starts_with(abs(s))
    {
        anyhow::bail!(UsageError(format!(
            "--out {} is inside the sync directory {}, which coverage never writes to: choose a directory outside it",
            out.display(),
            s.display()
        )));
    }
    Ok(())
}

/// Runs `cargo rfuzz coverage`.
pub fn run(args: CoverageArgs) -> Result<i32> {
    let sync_given = match &args.output {
        Some(o) if !o.is_dir() => anyhow::bail!(UsageError(format!("no sync directory at {}", o.display()))),
        Some(o) => Some(super::absolute(o)?),
        None => None,
    };
    let project = args.project.load()?;
    let name = match &args.target {
        Some(t) => {
            project.target(t)?;
            t.clone()
        }
        None => implied_target(&args.project, sync_given.as_deref(), "")?,
    };
    let sync_dir = sync_given.clone().or_else(|| Some(project.sync_dir(&name)).filter(|d| d.is_dir()));
    let mut corpus_dirs = Vec::new();
    for d in &args.input {
        if !d.is_dir() {
            anyhow::bail!(UsageError(format!("input directory {} does not exist", d.display())));
        }
        corpus_dirs.push(super::absolute(d)?);
    }
    let default_corpus = project.corpus_dir(&name);
    if default_corpus.is_dir() && !corpus_dirs.contains(&default_corpus) {
        corpus_dirs.push(default_corpus);
    }
    let out_dir = match (&args.out, &sync_given) {
        (Some(o), _) => super::absolute(o)?,
        (None, Some(s)) => {
            let n = s.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            s.with_file_name(format!("{n}-coverage"))
        }
        (None, None) => project.fuzz_dir.join("coverage").join(&name),
    };
    check_out_dir(sync_dir.as_deref(), &out_dir)?;

    // Only the queues of instances that fuzzed this target (several targets
    // may share a sync directory); AFL++ and unknown instances stay.
    let other_target =
        |dir: &Path| banner(dir).is_some_and(|b| b != name && project.targets.iter().any(|t| t.name == b));
    let files = inputs::list(sync_dir.as_deref(), &corpus_dirs, args.crashes, &|d| !other_target(d));
    if files.is_empty() {
        let looked: Vec<String> = sync_dir.iter().chain(corpus_dirs.iter()).map(|d| d.display().to_string()).collect();
        anyhow::bail!(UsageError(format!(
            "no inputs for {name}: nothing in {}; fuzz first (`cargo rfuzz run {name}`) or pass a corpus with -i DIR",
            if looked.is_empty() {
                "the default sync or corpus directory (neither exists)".to_string()
            } else {
                looked.join(", ")
            }
        )));
    }

    let t0 = Instant::now();
    let (binary, runtime_dirs) = build(&project, &name, &args)?;
    let built = t0.elapsed();
    let staged = inputs::stage(&files)?;
    let t1 = Instant::now();
    let replayer = Replayer::new(&binary, &args.target_args, Duration::from_millis(args.timeout), args.memory)?;
    let table = replay::probe(&replayer, staged.dir())?;
    let root = symbols::user_root(&project.fuzz_dir);
    let mut exclude = vec![project.target_directory.clone(), root.join("target")];
    exclude.extend(runtime_dirs);
    let filter = symbols::PathFilter { root, exclude, include_deps: args.include_deps };
    let map = symbols::symbolize(&binary, &table, &filter)?;
    let symbolized = t1.elapsed();
    let jobs = args.jobs.map_or_else(crate::triage::replay::default_jobs, |j| j as usize);
    let tty = std::io::stderr().is_terminal();
    let total = staged.inputs.len();
    let progress = |n: usize| {
        if tty && (n.is_multiple_of(16) || n == total) {
            eprint!("\r  replaying {n}/{total}");
        }
    };
    let paths: Vec<PathBuf> = staged.inputs.iter().map(|i| i.staged.clone()).collect();
    let merged = replay::replay_all(&replayer, &paths, staged.dir(), &map, jobs, &progress)?;
    if tty {
        eprintln!();
    }
    let report = coverage::build(&name, &filter.root, &map, &merged, staged.found.clone());
    let written = write(&report, &out_dir, &args.format)?;
    let replayed = t1.elapsed();
    if args.format.contains(&Format::Text) {
        print!("{}", report::coverage::render_text(&report));
    } else {
        println!("{}", report::coverage::runs_line(&report));
    }
    for w in &written {
        println!("{}", w.display());
    }
    eprintln!(
        "rfuzz: coverage build {:.1}s; {} blocks symbolized in {:.1}s; {} inputs replayed and the report written in {:.1}s on {jobs} jobs",
        built.as_secs_f64(),
        table.len(),
        symbolized.as_secs_f64(),
        report.runs.replayed,
        (replayed - symbolized).as_secs_f64()
    );
    Ok(crate::exit::SUCCESS)
}

/// Writes the report's files into `out`; returns their paths (index.html
/// first).
fn write(report: &coverage::Report, out: &Path, formats: &[Format]) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    if formats.iter().all(|f| *f == Format::Text) {
        return Ok(written);
    }
    std::fs::create_dir_all(out).with_context(|| format!("failed to create {}", out.display()))?;
    if formats.contains(&Format::Html) {
        let pages = out.join("files");
        std::fs::create_dir_all(&pages).with_context(|| format!("failed to create {}", pages.display()))?;
        let mut keep = std::collections::HashSet::new();
        for (i, f) in report.files.iter().enumerate() {
            let source = layout::read_capped(&f.path, 16 << 20).map(|b| String::from_utf8_lossy(&b).into_owned());
            let page = report::coverage::file_page(report, i);
            layout::write_atomic(
                &pages.join(&page),
                report::coverage::render_file(report, f, source.as_deref()).as_bytes(),
            )?;
            keep.insert(page);
        }
        // Pages of files an earlier report had and this one has not.
        for e in std::fs::read_dir(&pages).into_iter().flatten().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.ends_with(".html") && !keep.contains(&n) && e.file_type().is_ok_and(|t| t.is_file()) {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let index = out.join("index.html");
        layout::write_atomic(&index, report::coverage::render_index(report, "files").as_bytes())?;
        written.push(index);
    }
    if formats.contains(&Format::Lcov) {
        let p = out.join("lcov.info");
        layout::write_atomic(&p, report::lcov::render(report).as_bytes())?;
        written.push(p);
    }
    if formats.contains(&Format::Json) {
        let p = out.join("coverage.json");
        layout::write_atomic(&p, serde_json::to_string_pretty(report)?.as_bytes())?;
        written.push(p);
    }
    Ok(written)
}
