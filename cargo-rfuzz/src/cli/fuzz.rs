//! `cargo rfuzz fuzz`: one fuzzing instance, with afl-fuzz's flags.

use super::build::{BuildFlags, build_targets};
use super::common::FuzzingFlags;
use super::{ProjectArgs, UsageError};
use crate::engine::config::{Config, ExecutorChoice, Flavor, Role, UiMode};
use crate::engine::executor::TargetCommand;
use crate::engine::fuzzer;
use crate::exit;
use crate::sys::shell_quote;
use crate::triage::replay::{self, Replayer};
use anyhow::Result;
use clap::Args;
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

/// Options of `cargo rfuzz fuzz`.
#[derive(Debug, Clone, Args)]
pub struct FuzzArgs {
    /// Fuzz target to run (built if needed).
    pub target: Option<String>,
    #[command(flatten)]
    pub flags: FuzzingFlags,
    /// Run as the main instance with this id (default: -M main).
    #[arg(short = 'M', long = "main", value_name = "ID", conflicts_with = "secondary")]
    pub main: Option<String>,
    /// Run as a secondary instance with this id.
    #[arg(short = 'S', long = "secondary", value_name = "ID")]
    pub secondary: Option<String>,
    /// Fuzz this prebuilt instrumented binary (ours or AFL++'s) instead of
    /// building TARGET.
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
    /// Count partial progress on compares against 4- and 8-byte constants
    /// and byte strings (more equal bytes) as coverage: finds magic values
    /// that compare logging cannot see, at some cost in speed.
    #[arg(long)]
    pub cmp_progress: bool,
    /// Skip the havoc stage (to test the compare solver alone).
    #[arg(long, hide = true)]
    pub no_havoc: bool,
    /// Do not import entries from other instances.
    #[arg(long)]
    pub no_sync: bool,
    /// Drive an rfuzz target through the AFL++ protocol (slower; for comparisons).
    #[arg(long)]
    pub afl_protocol: bool,
    /// Let the target print to the terminal (debugging).
    #[arg(long)]
    pub show_output: bool,
    /// Seed shard `K/N` (set by `run`: instances start from different seeds).
    #[arg(long, hide = true, value_parser = parse_shard)]
    pub seed_shard: Option<(usize, usize)>,
    /// Mutation flavour (set by `run` to diversify instances).
    #[arg(long, hide = true, default_value_t = 0)]
    pub flavor: usize,
    /// Print nothing but errors and crashes (set by `run`).
    #[arg(long, hide = true)]
    pub quiet: bool,
    #[command(flatten)]
    pub project: ProjectArgs,
    #[command(flatten)]
    pub build: BuildFlags,
    /// Arguments for the target (`@@` is replaced by the input file).
    #[arg(last = true, value_name = "TARGET_ARGS")]
    pub target_args: Vec<OsString>,
}

fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (k, n) = s.split_once('/').ok_or("expected K/N")?;
    let (k, n): (usize, usize) = (k.parse().map_err(|_| "bad K")?, n.parse().map_err(|_| "bad N")?);
    if n == 0 || k >= n {
        return Err("need K < N".into());
    }
    Ok((k, n))
}

/// The binary to fuzz, its display name and how to reproduce a crash.
pub struct ResolvedTarget {
    /// Target name.
    pub name: String,
    /// Instrumented binary.
    pub binary: PathBuf,
    /// Reproduce command with `{}` for the input path.
    pub repro: String,
    /// Default sync dir.
    pub default_sync_dir: Option<PathBuf>,
    /// Default seed dir.
    pub default_seeds: Option<PathBuf>,
    /// Settings from the target's `.options` file and dictionary.
    pub options: rfuzz_instrument::TargetOptions,
}

/// Finds (building if needed) the binary for `target` or `--binary`.
pub fn resolve(
    target: Option<&str>,
    binary: Option<&PathBuf>,
    project: &ProjectArgs,
    build: &BuildFlags,
    quiet: bool,
) -> Result<ResolvedTarget> {
    if let Some(b) = binary {
        let binary = super::absolute(b)?;
        let name = target
            .map(str::to_string)
            .unwrap_or_else(|| binary.file_name().unwrap_or_default().to_string_lossy().into_owned());
        return Ok(ResolvedTarget {
            repro: format!("{} {{}}", shell_quote(&binary.to_string_lossy())),
            name,
            binary,
            default_sync_dir: None,
            default_seeds: None,
            options: Default::default(),
        });
    }
    let Some(name) = target else {
        anyhow::bail!(UsageError("name a fuzz target (see `cargo rfuzz list`) or pass --binary PATH".into()));
    };
    let p = project.load()?;
    p.target(name)?;
    let built = build_targets(&p, &[name.to_string()], build, quiet)?;
    let binary = built.into_iter().next().expect("one target built").binary;
    Ok(ResolvedTarget {
        repro: super::build::repro_command(&p.fuzz_dir, build, name),
        name: name.to_string(),
        binary,
        default_sync_dir: Some(p.sync_dir(name)),
        default_seeds: Some(p.corpus_dir(name)).filter(|d| d.is_dir()),
        options: p.target_options(name),
    })
}

impl FuzzArgs {
    /// Validates the flags into an instance configuration.
    pub fn config(&self, resolved: &ResolvedTarget) -> Result<Config> {
        let flags = self.flags.with_target_options(&resolved.options);
        let (id, role) = match (&self.main, &self.secondary) {
            (Some(m), _) => (m.clone(), Role::Main),
            (None, Some(s)) => (s.clone(), Role::Secondary),
            (None, None) => ("main".to_string(), Role::Main),
        };
        crate::sync::layout::validate_instance_id(&id).map_err(UsageError)?;
        let sync_dir = match (&flags.output, &resolved.default_sync_dir) {
            (Some(o), _) => super::absolute(o)?,
            (None, Some(d)) => d.clone(),
            (None, None) => anyhow::bail!(UsageError("with --binary, name the sync directory with -o DIR".into())),
        };
        flags.check_paths(&sync_dir)?;
        let seeds = match &flags.input {
            Some(i) => Some(super::absolute(i)?),
            None => resolved.default_seeds.clone(),
        };
        let ui = if self.quiet {
            UiMode::Quiet
        } else if flags.no_ui || !std::io::stdout().is_terminal() {
            UiMode::Plain
        } else {
            UiMode::Screen
        };
        // Arguments need not be UTF-8 (paths): never `std::env::args()`.
        let command_line = std::env::args_os().map(|a| crate::sys::shell_quote_os(&a)).collect::<Vec<_>>().join(" ");
        Ok(Config {
            sync_dir,
            id,
            role,
            deterministic: flags.deterministic,
            seeds,
            seed_shard: self.seed_shard,
            dicts: flags.dict.clone(),
            timeout: flags.timeout.map(Duration::from_millis),
            mem_limit_mb: flags.memory,
            max_total_time: flags.max_total_time.map(Duration::from_secs),
            exit_on_crash: flags.exit_on_crash,
            target: TargetCommand {
                binary: resolved.binary.clone(),
                args: self.target_args.clone(),
                env: Vec::new(),
                mem_limit_mb: flags.memory,
                max_procs: flags.max_procs,
                show_output: self.show_output,
            },
            banner: resolved.name.clone(),
            ui,
            cmplog: !flags.no_cmplog,
            cmp_progress: self.cmp_progress,
            havoc: !self.no_havoc,
            max_len: flags.max_len.unwrap_or(1 << 20) as usize,
            rng_seed: flags.seed,
            sync: !self.no_sync,
            flavor: Flavor::for_instance(self.flavor),
            executor: if self.afl_protocol { ExecutorChoice::Afl } else { ExecutorChoice::Auto },
            command_line,
            repro_command: resolved.repro.clone(),
        })
    }
}

/// Runs `cargo rfuzz fuzz`.
pub fn run(args: FuzzArgs) -> Result<i32> {
    let resolved = resolve(args.target.as_deref(), args.binary.as_ref(), &args.project, &args.build, true)?;
    if !args.quiet {
        super::common::report_target_options(&resolved.name, &resolved.options);
    }
    let cfg = args.config(&resolved)?;
    crate::sys::signal::install_stop_handlers();
    let (id, dir, quiet) = (cfg.id.clone(), cfg.sync_dir.join(&cfg.id), cfg.ui == UiMode::Quiet);
    let own_crashes = |sync_dir: &std::path::Path| {
        let mut files = crate::triage::collect(sync_dir, false);
        files.retain(|f| f.instance == id);
        files
    };
    let before: std::collections::BTreeSet<PathBuf> = own_crashes(&cfg.sync_dir).into_iter().map(|f| f.path).collect();
    let (sync_dir, memory) = (cfg.sync_dir.clone(), cfg.mem_limit_mb);
    let outcome = fuzzer::run(cfg)?;
    // Under `run` the supervisor triages every instance's crashes at the end.
    let failed = if quiet {
        !outcome.new_crashes.is_empty()
    } else {
        eprintln!(
            "rfuzz: {id} stopped: {} crash(es) and {} hang(s) saved in {}",
            outcome.saved_crashes,
            outcome.saved_hangs,
            dir.display()
        );
        let replayer = Replayer::new(&resolved.binary, &args.target_args, replay::DEFAULT_TIMEOUT, memory)?;
        let repro =
            |f: &crate::triage::CrashFile| Some(resolved.repro.replace("{}", &shell_quote(&f.path.to_string_lossy())));
        let summary = crate::triage::end_of_run(own_crashes(&sync_dir), &before, &|_| &replayer, &repro);
        eprint!("{}", summary.text);
        summary.failed()
    };
    Ok(if failed {
        exit::CRASHES_FOUND
    } else if outcome.interrupted {
        exit::INTERRUPTED
    } else {
        exit::SUCCESS
    })
}
