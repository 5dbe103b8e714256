//! Command-line interface: one module per subcommand. `main.rs` parses with
//! [`Cli`] and calls [`run`].

mod add;
mod bench;
mod bench_compare;
pub mod build;
mod ci_workflow;
mod cmin;
pub mod common;
mod coverage;
pub mod fuzz;
mod init;
mod list;
mod plot;
mod repro;
mod run;
mod sync_remote;
mod sync_status;
mod tmin;
mod triage;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};

/// `cargo rfuzz`: invoked by cargo as `cargo-rfuzz rfuzz ARGS...`.
#[derive(Debug, Parser)]
#[command(name = "cargo", bin_name = "cargo", styles = clap::builder::Styles::styled())]
pub enum Cli {
    /// Coverage-guided fuzzing of Rust crates on every core, on stable Rust.
    #[command(name = "rfuzz", version, about, long_about = None)]
    Rfuzz(Rfuzz),
}

/// The subcommand and its options.
#[derive(Debug, Args)]
pub struct Rfuzz {
    #[command(subcommand)]
    pub command: Command,
}

/// `cargo rfuzz` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create fuzz/ with an example target (cargo-fuzz layout).
    Init(init::InitArgs),
    /// Add a fuzz target to fuzz/.
    Add(add::AddArgs),
    /// List the fuzz targets.
    List(list::ListArgs),
    /// Build instrumented fuzz targets; prints each binary's path on stdout.
    Build(build::BuildArgs),
    /// Fuzz one target with one instance (afl-fuzz's flags).
    Fuzz(Box<fuzz::FuzzArgs>),
    /// Fuzz targets with N synced instances (default: one per core) and a live dashboard.
    Run(Box<run::RunArgs>),
    /// Summarise a sync directory: instances alive or dead, execs, corpus, imports, crashes.
    SyncStatus(sync_status::SyncStatusArgs),
    /// Which source lines the corpus and every instance's queue reach: HTML, lcov.info, JSON, a table.
    ///
    /// Builds the target for coverage (its own target directory, stable rustc only, no
    /// llvm-tools), replays every input in its own process on all cores (a crash or a hang loses
    /// nothing of the others; --crashes adds crash and hang files) and writes index.html with a
    /// page per source file (reached lines green, partly reached yellow, missed red, with the
    /// number of inputs that reached each line), lcov.info and coverage.json.
    Coverage(Box<coverage::CoverageArgs>),
    /// Chart every instance's progress (edges, exec/s, corpus, imports, crashes, hangs) as PNG, SVG and index.html.
    ///
    /// Reads every instance's plot_data (ours and AFL++'s, any version) and writes edges.*,
    /// exec_speed.*, corpus.*, imports.*, crashes.* and hangs.* (PNG and SVG, drawn in Rust: no
    /// gnuplot) and an index.html that shows them. Each chart has one line per instance and one
    /// for all of them: summed where counts add up, the best instance for edges and corpus size
    /// (which peers share through sync).
    Plot(plot::PlotArgs),
    /// Share queue entries with instances on other hosts over ssh (every 30 minutes, or --once).
    SyncRemote(sync_remote::SyncRemoteArgs),
    /// Run inputs (crash files) through a target once, with a backtrace.
    Repro(repro::ReproArgs),
    /// Replay every crash and hang file of a sync directory and group them into bugs.
    Triage(Box<triage::TriageArgs>),
    /// Shrink one input, keeping its crash signature, its hang or its coverage.
    Tmin(Box<tmin::TminArgs>),
    /// Reduce the queues and corpus to a smallest corpus with the same coverage.
    Cmin(Box<cmin::CminArgs>),
    /// Print a GitHub Actions workflow that smoke-fuzzes every target in CI.
    CiWorkflow(ci_workflow::CiWorkflowArgs),
    /// Measure exec/s of each executor on a built binary.
    #[command(hide = true)]
    BenchExec(bench::BenchExecArgs),
    /// Compare cargo-rfuzz, AFL++ and libFuzzer on the same targets.
    #[command(hide = true)]
    BenchCompare(bench_compare::BenchCompareArgs),
}

/// Where the fuzz project is (shared by the subcommands that need one).
#[derive(Debug, Clone, Default, Args)]
pub struct ProjectArgs {
    /// The fuzz project directory (default: fuzz/ of the crate around the
    /// current directory).
    #[arg(long, value_name = "DIR", global = true)]
    pub fuzz_dir: Option<PathBuf>,
}

impl ProjectArgs {
    /// Finds and loads the fuzz project.
    pub fn load(&self) -> Result<rfuzz_instrument::FuzzProject> {
        let dir = match &self.fuzz_dir {
            Some(d) => {
                if !d.join("Cargo.toml").is_file() {
                    anyhow::bail!(UsageError(format!(
                        "{} is not a fuzz project (no Cargo.toml): pass the fuzz/ directory of your crate",
                        d.display()
                    )));
                }
                absolute(d)?
            }
            None => rfuzz_instrument::project::find_fuzz_dir(&std::env::current_dir()?)?,
        };
        Ok(rfuzz_instrument::project::load(&dir)?)
    }
}

/// The existing sync directory a command works on: `-o DIR`, or the default
/// one of fuzz target `target` (for sync-status and sync-remote).
pub fn existing_sync_dir(output: Option<&Path>, target: Option<&str>, project: &ProjectArgs) -> Result<PathBuf> {
    let dir = match (output, target) {
        (Some(o), _) => o.to_path_buf(),
        (None, Some(t)) => {
            let p = project.load()?;
            p.target(t)?;
            p.sync_dir(t)
        }
        (None, None) => anyhow::bail!(UsageError("name a fuzz target or a sync directory (-o DIR)".into())),
    };
    if !dir.is_dir() {
        anyhow::bail!(UsageError(format!(
            "no sync directory at {}: start fuzzing with `cargo rfuzz run TARGET` first",
            dir.display()
        )));
    }
    Ok(dir)
}

pub use crate::exit::{TargetError, UsageError};

/// Absolute form of `p` (relative to the current directory), without
/// resolving symlinks.
pub fn absolute(p: &Path) -> Result<PathBuf> {
    Ok(std::path::absolute(p)?)
}

/// Runs the parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    let Cli::Rfuzz(rfuzz) = cli;
    match rfuzz.command {
        Command::Init(a) => init::run(a),
        Command::Add(a) => add::run(a),
        Command::List(a) => list::run(a),
        Command::Build(a) => build::run(a),
        Command::Fuzz(a) => fuzz::run(*a),
        Command::Repro(a) => repro::run(a),
        Command::Run(a) => run::run(*a),
        Command::SyncStatus(a) => sync_status::run(a),
        Command::SyncRemote(a) => sync_remote::run(a),
        Command::Triage(a) => triage::run(*a),
        Command::Tmin(a) => tmin::run(*a),
        Command::Cmin(a) => cmin::run(*a),
        Command::Coverage(a) => coverage::run(*a),
        Command::Plot(a) => plot::run(a),
        Command::CiWorkflow(a) => ci_workflow::run(a),
        Command::BenchExec(a) => bench::run(a),
        Command::BenchCompare(a) => bench_compare::run(a),
    }
}

/// Exit code for an error that ended the command (see [`crate::exit`]).
pub fn exit_code_for(err: &anyhow::Error) -> i32 {
    crate::exit::code_for(err)
}
