//! `cargo rfuzz bench-exec BINARY`: executions per second of each way of
//! running a target, side by side in one command (hidden; used by the
//! benchmark scripts under tests/bench/).

use crate::engine::executor::afl::{AflConfig, AflExecutor};
use crate::engine::executor::direct::{DirectConfig, DirectExecutor};
use crate::engine::executor::{Executor, TargetCommand};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Options of `cargo rfuzz bench-exec`.
#[derive(Debug, Args)]
pub struct BenchExecArgs {
    /// Instrumented binary (built with `cargo rfuzz build`).
    pub binary: PathBuf,
    /// Seconds per variant.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Input to run (default: 16 bytes of text).
    #[arg(long)]
    pub input: Option<PathBuf>,
}

fn measure(name: &str, exec: &mut dyn Executor, input: &[u8], secs: f64, batched: bool) -> Result<f64> {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut n: u64 = 0;
    if batched {
        exec.batch_clear();
        while exec.batch_push(input) {}
    }
    while Instant::now() < deadline {
        if batched {
            exec.run_batch(0, false)?;
            n += exec.batch_len() as u64;
        } else {
            for _ in 0..64 {
                exec.run_one(input)?;
            }
            n += 64;
        }
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    println!("{name:<34} {rate:>12.0} exec/s");
    Ok(rate)
}

/// Runs the benchmark.
pub fn run(args: BenchExecArgs) -> Result<i32> {
    let input = match &args.input {
        Some(p) => std::fs::read(p)?,
        None => b"benchmark input!".to_vec(),
    };
    let cmd = TargetCommand { binary: args.binary.clone(), ..Default::default() };
    let tmp = std::env::temp_dir().join(format!("rfuzz-bench-{}", std::process::id()));
    let afl = |persistent| AflConfig {
        persistent,
        input_file: tmp.clone(),
        init_timeout: Duration::from_secs(10),
        timeout: Duration::from_secs(1),
        max_input: 1 << 20,
    };
    println!("binary: {}", args.binary.display());
    let fork = measure(
        "AFL++ protocol, fork per exec",
        &mut AflExecutor::start(&cmd, &afl(false))?,
        &input,
        args.seconds,
        false,
    )?;
    let sigstop = measure(
        "AFL++ protocol, persistent SIGSTOP",
        &mut AflExecutor::start(&cmd, &afl(true))?,
        &input,
        args.seconds,
        false,
    )?;
    let mut direct = DirectExecutor::start(&cmd, &DirectConfig::default())?;
    let single = measure("direct, one input per request", &mut direct, &input, args.seconds, false)?;
    let batch = measure("direct, batches of 512", &mut direct, &input, args.seconds, true)?;
    let _ = std::fs::remove_file(&tmp);
    println!(
        "ratios vs fork: persistent {:.1}x, direct {:.1}x, batched {:.1}x",
        sigstop / fork,
        single / fork,
        batch / fork
    );
    Ok(crate::exit::SUCCESS)
}
