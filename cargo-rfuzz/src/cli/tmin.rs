//! `cargo rfuzz tmin TARGET FILE [-o OUT]`: shrink one input, keeping its
//! crash signature, its hang, or its coverage.

use super::build::BuildFlags;
use super::triage::resolve_target;
use super::{ProjectArgs, UsageError};
use crate::minimize::{CoverageRunner, tmin};
use crate::triage::replay::Replayer;
use anyhow::{Context, Result};
use clap::Args;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// Options of `cargo rfuzz tmin`.
#[derive(Debug, Args)]
pub struct TminArgs {
    /// Fuzz target (built if needed).
    pub target: String,
    /// The input to shrink (never modified).
    pub file: PathBuf,
    /// Where to write the result (default: minimized-<hash> in the current
    /// directory).
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Use this prebuilt binary instead of building TARGET.
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
    /// Per-input timeout in milliseconds (an input that runs longer hangs).
    #[arg(short = 't', long = "timeout", value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Memory limit of the target in MiB, as for `fuzz -m`.
    #[arg(short = 'm', long = "memory", value_name = "MB")]
    pub memory: Option<u64>,
    #[command(flatten)]
    pub project: ProjectArgs,
    #[command(flatten)]
    pub build: BuildFlags,
    /// Arguments for the target, as given to `fuzz` (`@@`: the input file).
    #[arg(last = true, value_name = "TARGET_ARGS")]
    pub target_args: Vec<OsString>,
}

/// Runs `cargo rfuzz tmin`.
pub fn run(args: TminArgs) -> Result<i32> {
    let data =
        std::fs::read(&args.file).map_err(|e| UsageError(format!("cannot read input {}: {e}", args.file.display())))?;
    let resolved = resolve_target(Some(&args.target), args.binary.as_ref(), &args.project, &args.build, None)?;
    let out = match &args.output {
        Some(o) => super::absolute(o)?,
        None => {
            std::env::current_dir()?.join(format!("minimized-{}", &crate::minimize::cmin::content_name(&data)[..12]))
        }
    };
    let input = super::absolute(&args.file)?;
    if out == input
        || std::fs::canonicalize(&out).ok().is_some_and(|o| std::fs::canonicalize(&input).is_ok_and(|i| i == o))
    {
        anyhow::bail!(UsageError(format!("-o {} is the input itself: tmin never overwrites its input", out.display())));
    }
    let timeout = Duration::from_millis(args.timeout);
    let replayer =
        Replayer::new(&resolved.binary, &args.target_args, timeout.max(Duration::from_secs(2)), args.memory)?;
    let runner = CoverageRunner::start(&resolved.binary, &args.target_args, timeout, args.memory)?;
    let scratch = tempfile::Builder::new().prefix("rfuzz-tmin-").tempdir()?;
    let min = tmin::minimize(runner, &replayer, scratch.path(), &data)?;
    crate::sync::layout::write_atomic(&out, &min.data).with_context(|| format!("failed to write {}", out.display()))?;
    eprintln!(
        "tmin: kept {} ({} executions, {} replays)\ntmin: {} bytes -> {} bytes, written to {}",
        min.goal.describe(),
        min.execs,
        min.replays,
        data.len(),
        min.data.len(),
        out.display()
    );
    if let Some(debug) = replayer.debug_form(&out)? {
        eprintln!("tmin: the target reads it as {debug}");
    }
    Ok(crate::exit::SUCCESS)
}
