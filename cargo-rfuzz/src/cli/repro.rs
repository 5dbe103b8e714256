//! `cargo rfuzz repro TARGET INPUT...`: run inputs through the target once,
//! with the panic message and a backtrace on a crash.

use super::ProjectArgs;
use super::build::{BuildFlags, build_targets};
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;

/// Options of `cargo rfuzz repro`.
#[derive(Debug, Args)]
pub struct ReproArgs {
    /// Fuzz target.
    pub target: String,
    /// Input files or directories (e.g. a crash file from crashes/).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub project: ProjectArgs,
    #[command(flatten)]
    pub build: BuildFlags,
}

/// Runs `cargo rfuzz repro`; exits like the target (128+signal on a crash).
pub fn run(args: ReproArgs) -> Result<i32> {
    let project = args.project.load()?;
    project.target(&args.target)?;
    let built = build_targets(&project, std::slice::from_ref(&args.target), &args.build, true)?;
    let binary = &built[0].binary;
    for i in &args.inputs {
        if !i.exists() {
            anyhow::bail!(super::UsageError(format!("input {} does not exist", i.display())));
        }
    }
    let status = std::process::Command::new(binary)
        .args(&args.inputs)
        .env("RUST_BACKTRACE", "1")
        .status()
        .with_context(|| format!("failed to run {}", binary.display()))?;
    use std::os::unix::process::ExitStatusExt;
    Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}
