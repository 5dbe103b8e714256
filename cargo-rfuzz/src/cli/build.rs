//! `cargo rfuzz build`: instrumented builds.

use super::ProjectArgs;
use anyhow::{Context, Result};
use clap::Args;
use rfuzz_instrument::{BuildOptions, Built, FuzzProject, Profile};

/// Build options shared by `build`, `fuzz` and `run`.
#[derive(Debug, Clone, Default, Args)]
pub struct BuildFlags {
    /// Build without optimisations (default: release).
    #[arg(long, help_heading = "Build")]
    pub dev: bool,
    /// Features of the fuzz package to enable.
    #[arg(long, short = 'F', value_delimiter = ',', help_heading = "Build")]
    pub features: Vec<String>,
    /// Enable all features of the fuzz package.
    #[arg(long, help_heading = "Build")]
    pub all_features: bool,
    /// Disable the default features of the fuzz package.
    #[arg(long, help_heading = "Build")]
    pub no_default_features: bool,
    /// Target triple (default: the host's).
    #[arg(long = "target", value_name = "TRIPLE", help_heading = "Build")]
    pub triple: Option<String>,
    /// Show cargo's full output.
    #[arg(long, short = 'v', help_heading = "Build")]
    pub verbose: bool,
}

impl BuildFlags {
    /// The instrument crate's options for these flags.
    pub fn options(&self, quiet: bool) -> Result<BuildOptions> {
        Ok(BuildOptions {
            profile: if self.dev { Profile::Dev } else { Profile::Release },
            features: self.features.clone(),
            all_features: self.all_features,
            no_default_features: self.no_default_features,
            target_triple: self.triple.clone(),
            runtime_source: Some(crate::runtime_src::materialize()?),
            libfuzzer_sys_source: Some(crate::runtime_src::materialize_libfuzzer_sys()?),
            wrapper_exe: std::env::current_exe().context("failed to locate the cargo-rfuzz executable")?,
            quiet: quiet && !self.verbose,
            verbose: self.verbose,
        })
    }
}

/// Options of `cargo rfuzz build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Targets to build (default: all).
    pub targets: Vec<String>,
    #[command(flatten)]
    pub project: ProjectArgs,
    #[command(flatten)]
    pub build: BuildFlags,
}

/// How long the edge-count probe may take: an rfuzz binary answers at once.
const PROBE_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Edge count of a built binary, asked from its runtime (`RFUZZ_INFO=1`);
/// `None` when it prints none. A binary that does not answer within
/// [`PROBE_LIMIT`] (one that starts fuzzing or serving instead, such as a
/// real libFuzzer build) is killed with its process group and reported.
pub fn guard_count(binary: &std::path::Path) -> Result<Option<u32>> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let mut child = std::process::Command::new(binary)
        .env(rfuzz::protocol::INFO_ENV_VAR, "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .with_context(|| format!("failed to run {}", binary.display()))?;
    let Some(_) = crate::sys::process::wait_timeout(&mut child, PROBE_LIMIT)? else {
        crate::sys::process::signal_group(&child, libc::SIGKILL);
        let _ = child.wait();
        anyhow::bail!(crate::exit::TargetError(format!(
            "{} did not answer the edge-count probe (RFUZZ_INFO=1) within {} s: it is not an rfuzz binary (built against the real libFuzzer?)",
            binary.display(),
            PROBE_LIMIT.as_secs()
        )));
    };
    let mut text = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.by_ref().take(1 << 16).read_to_string(&mut text);
    }
    Ok(text.lines().find_map(|l| l.strip_prefix("guards: ").and_then(|n| n.trim().parse().ok())))
}

/// Builds `targets` of `project`, reporting each on stderr.
///
/// Ctrl-C during the build stops cargo (it is in our process group) but not
/// us: the project's files that the build changed for its duration (a
/// cargo-fuzz project's `Cargo.lock`) are put back before we exit.
pub fn build_targets(project: &FuzzProject, targets: &[String], flags: &BuildFlags, quiet: bool) -> Result<Vec<Built>> {
    let opts = flags.options(quiet)?;
    crate::sys::signal::install_stop_handlers();
    let result = rfuzz_instrument::build(project, targets, &opts);
    if crate::sys::signal::stop_requested() {
        anyhow::bail!(crate::exit::Interrupted("the build was stopped".into()));
    }
    let built = result?;
    for b in &built {
        match guard_count(&b.binary)? {
            Some(n) => eprintln!("       Built {} ({n} instrumented edges)", b.target),
            None => eprintln!("       Built {}", b.target),
        }
    }
    Ok(built)
}

/// Runs `cargo rfuzz build`.
pub fn run(args: BuildArgs) -> Result<i32> {
    let project = args.project.load()?;
    let built = build_targets(&project, &args.targets, &args.build, false)?;
    for b in built {
        println!("{}", b.binary.display());
    }
    Ok(crate::exit::SUCCESS)
}
