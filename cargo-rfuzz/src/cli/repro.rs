//! `cargo rfuzz repro TARGET INPUT...`: run inputs through the target once,
//! with the panic message and a backtrace on a crash.

use super::ProjectArgs;
use super::build::{BuildFlags, build_targets};
use crate::sys::process;
use anyhow::{Context, Result};
use clap::Args;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

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
    /// Kill the target (and what it started) if it still runs after this
    /// many seconds on all the inputs: a hang is reported, not waited for.
    #[arg(long, value_name = "S", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    #[command(flatten)]
    pub build: BuildFlags,
}

/// Runs `cargo rfuzz repro`; exits like the target (128+signal on a crash,
/// 137 when it was killed after `--timeout`).
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
    use std::os::unix::process::CommandExt;
    // A process group of its own, so a hang is killed with whatever the
    // target started; Ctrl-C reaches us (the stop handlers are installed by
    // the build) and we stop the group.
    let mut child = std::process::Command::new(binary)
        .args(&args.inputs)
        .env("RUST_BACKTRACE", "1")
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .with_context(|| format!("failed to run {}", binary.display()))?;
    // Shown as it comes, and kept (the last MiB) to sum up an ASan report.
    let reader = child.stderr.take().map(|err| std::thread::spawn(move || pump(err)));
    let limit = Duration::from_secs(args.timeout);
    let started = Instant::now();
    let status = loop {
        let slice = limit.saturating_sub(started.elapsed()).min(Duration::from_millis(200));
        if let Some(s) = process::wait_timeout(&mut child, slice)? {
            break Some(s);
        }
        if crate::sys::signal::stop_requested() || started.elapsed() >= limit {
            process::signal_group(&child, libc::SIGKILL);
            let _ = child.wait();
            break None;
        }
    };
    let kept = reader.and_then(|r| r.join().ok()).unwrap_or_default();
    let Some(status) = status else {
        if crate::sys::signal::stop_requested() {
            anyhow::bail!(crate::exit::Interrupted(format!("{} was stopped", binary.display())));
        }
        eprintln!(
            "rfuzz: {} still ran after {} s (a hang?): killed with its process group; `--timeout S` allows longer",
            binary.display(),
            args.timeout
        );
        return Ok(128 + libc::SIGKILL);
    };
    if let Some(report) = crate::report::sanitizer::parse(&String::from_utf8_lossy(&kept)) {
        eprintln!("rfuzz: AddressSanitizer: {}", report.summary());
    }
    Ok(process::exit_code(status))
}

/// Copies the target's stderr to ours as it comes and returns its last MiB.
fn pump(mut err: impl Read) -> Vec<u8> {
    let mut kept: Vec<u8> = Vec::new();
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
    kept
}
