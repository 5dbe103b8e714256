//! `cargo rfuzz repro TARGET INPUT...`: run inputs through the target once,
//! with the panic message and a backtrace on a crash.

use super::ProjectArgs;
use super::build::{BuildFlags, build_targets};
use anyhow::{Context, Result};
use clap::Args;
use std::io::{Read, Write};
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
    let mut child = std::process::Command::new(binary)
        .args(&args.inputs)
        .env("RUST_BACKTRACE", "1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("failed to run {}", binary.display()))?;
    // Shown as it comes, and kept (the last MiB) to sum up an ASan report.
    let mut kept: Vec<u8> = Vec::new();
    if let Some(mut err) = child.stderr.take() {
        let mut buf = [0u8; 8192];
        let mut out = std::io::stderr();
        loop {
            match err.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let _ = out.write_all(&buf[..n]);
                    kept.extend_from_slice(&buf[..n]);
                    if kept.len() > 2 << 20 {
                        kept.drain(..kept.len() - (1 << 20));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }
    let status = child.wait().with_context(|| format!("failed to wait for {}", binary.display()))?;
    if let Some(report) = crate::report::sanitizer::parse(&String::from_utf8_lossy(&kept)) {
        eprintln!("rfuzz: AddressSanitizer: {}", report.summary());
    }
    use std::os::unix::process::ExitStatusExt;
    Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}
