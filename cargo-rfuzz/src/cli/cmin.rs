//! `cargo rfuzz cmin TARGET`: the smallest corpus with the coverage of every
//! instance's queue and the given directories, swapped in atomically.

use super::build::BuildFlags;
use super::triage::resolve_target;
use super::{ProjectArgs, UsageError};
use crate::minimize::{CoverageRunner, cmin};
use anyhow::Result;
use clap::Args;
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Options of `cargo rfuzz cmin`.
#[derive(Debug, Args)]
pub struct CminArgs {
    /// Fuzz target (built if needed; may be left out when the project has one).
    pub target: Option<String>,
    /// Sync directory whose instances' queues are read (default:
    /// fuzz/sync/<target>/ when it exists).
    #[arg(short = 'o', long = "output", value_name = "SYNC_DIR")]
    pub output: Option<PathBuf>,
    /// Corpus directory to read too; repeatable (default: fuzz/corpus/<target>/).
    #[arg(short = 'i', long = "input", value_name = "DIR")]
    pub input: Vec<PathBuf>,
    /// Directory that receives the result, replaced atomically (default:
    /// fuzz/corpus/<target>/).
    #[arg(long, value_name = "DIR")]
    pub into: Option<PathBuf>,
    /// Use this prebuilt binary instead of building TARGET.
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
    /// Per-input timeout in milliseconds (inputs that run longer are left out).
    #[arg(short = 't', long = "timeout", value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Memory limit of the target in MiB, as for `fuzz -m`.
    #[arg(short = 'm', long = "memory", value_name = "MB")]
    pub memory: Option<u64>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub project: ProjectArgs,
    #[command(flatten)]
    pub build: BuildFlags,
    /// Arguments for the target, as given to `fuzz` (`@@`: the input file).
    #[arg(last = true, value_name = "TARGET_ARGS")]
    pub target_args: Vec<OsString>,
}

fn kib(bytes: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

/// Runs `cargo rfuzz cmin`.
pub fn run(args: CminArgs) -> Result<i32> {
    let resolved = resolve_target(
        args.target.as_deref(),
        args.binary.as_ref(),
        &args.project,
        &args.build,
        args.output.as_deref(),
    )?;
    let corpus = match args.binary {
        Some(_) => None,
        None => Some(args.project.load()?.corpus_dir(&resolved.name)),
    };
    let into = match (&args.into, &corpus) {
        (Some(d), _) => super::absolute(d)?,
        (None, Some(c)) => c.clone(),
        (None, None) => anyhow::bail!(UsageError("with --binary, name the result directory with --into DIR".into())),
    };
    let sync_dir = match (&args.output, &resolved.default_sync_dir) {
        (Some(o), _) if !o.is_dir() => anyhow::bail!(UsageError(format!("no sync directory at {}", o.display()))),
        (Some(o), _) => Some(super::absolute(o)?),
        (None, d) => d.clone().filter(|d| d.is_dir()),
    };
    let mut dirs = Vec::new();
    for d in &args.input {
        if !d.is_dir() {
            anyhow::bail!(UsageError(format!("input directory {} does not exist", d.display())));
        }
        dirs.push(super::absolute(d)?);
    }
    if args.input.is_empty()
        && let Some(c) = corpus.filter(|c| c.is_dir())
    {
        dirs.push(c);
    }
    let files = cmin::gather(sync_dir.as_deref(), &dirs);
    if files.is_empty() {
        anyhow::bail!(UsageError(
            "no inputs: nothing in the queues of the sync directory or in the input directories".into()
        ));
    }
    let start = Instant::now();
    let mut runner =
        CoverageRunner::start(&resolved.binary, &args.target_args, Duration::from_millis(args.timeout), args.memory)?;
    let tty = std::io::stderr().is_terminal();
    let s = cmin::cmin(&mut runner, &files, &into, &|n, total| {
        if tty && (n % 64 == 0 || n == total) {
            eprint!("\r  running {n}/{total}");
        }
    })?;
    if tty {
        eprintln!();
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        println!(
            "cmin: {} files ({}) -> {} files ({}), {} coverage tuples ({} variable ones not counted), {} crashing or hanging left out, {:.1}s",
            s.files_before,
            kib(s.bytes_before),
            s.files_after,
            kib(s.bytes_after),
            s.tuples,
            s.variable,
            s.skipped,
            start.elapsed().as_secs_f64()
        );
        println!(
            "cmin: {} {}",
            into.display(),
            if s.changed { "replaced with the result" } else { "already is the result: unchanged" }
        );
    }
    Ok(crate::exit::SUCCESS)
}
