//! `cargo rfuzz run TARGET... -j N`: N synced instances and one dashboard.

use super::build::{BuildFlags, build_targets};
use super::common::FuzzingFlags;
use super::{ProjectArgs, UsageError};
use crate::engine::config::UiMode;
use crate::supervisor::{self, InstancePlan, Plan, cpu};
use crate::sys::shell_quote;
use crate::triage::replay::{self, Replayer};
use anyhow::Result;
use clap::Args;
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

/// Options of `cargo rfuzz run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Fuzz targets (may be left out when the project has one); with several,
    /// instances are spread over them and share the sync directory (each
    /// judges imports with its own binary).
    pub targets: Vec<String>,
    /// Fuzz this prebuilt instrumented binary (ours or AFL++'s) instead of
    /// building targets; needs -o.
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
    /// Instances to run (default: one per core).
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub flags: FuzzingFlags,
    /// Do not pin instances to cores.
    #[arg(long)]
    pub no_pin: bool,
    /// Which instances count partial progress on wide compares as coverage:
    /// `auto` (one in four secondaries: s03, s07, ...), `all` or `none`.
    #[arg(long, value_enum, default_value_t = CmpProgress::Auto)]
    pub cmp_progress: CmpProgress,
    /// Also share entries with other hosts over ssh, in the background: a
    /// `sync-remote` hosts file.
    #[arg(long, value_name = "FILE")]
    pub remote_sync: Option<PathBuf>,
    /// Time between two remote syncs (default 30m).
    #[arg(long, value_name = "DURATION", requires = "remote_sync", value_parser = crate::sync::remote::hosts::parse_duration)]
    pub remote_every: Option<Duration>,
    /// Extra target arguments for one instance: `ID=ARGS` (ARGS split like a
    /// shell would, quotes kept together).
    #[arg(long = "instance-args", value_name = "ID=ARGS")]
    pub instance_args: Vec<String>,
    #[command(flatten)]
    pub project: ProjectArgs,
    #[command(flatten)]
    pub build: BuildFlags,
    /// Arguments for every target (`@@` is replaced by the input file).
    #[arg(last = true, value_name = "TARGET_ARGS")]
    pub target_args: Vec<OsString>,
}

/// Which instances of a run count compare progress as coverage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CmpProgress {
    /// One in four secondaries (s03, s07, ...): it pays off on magic
    /// values, and costs speed on compare-heavy parsers.
    Auto,
    /// Every instance.
    All,
    /// No instance.
    None,
}

/// Instance id of the `k`-th instance.
pub fn instance_id(k: usize) -> String {
    if k == 0 { "main".to_string() } else { format!("s{k:02}") }
}

/// Runs `cargo rfuzz run`.
pub fn run(args: RunArgs) -> Result<i32> {
    let cores = cpu::allowed().len().max(1);
    let jobs = args.jobs.unwrap_or(cores);
    if jobs == 0 {
        anyhow::bail!(UsageError("-j 0 runs nothing: use -j 1 or more, or leave -j out to use every core".into()));
    }
    if jobs > 999 {
        anyhow::bail!(UsageError(format!("-j {jobs} is more instances than rfuzz names (at most 999)")));
    }
    if jobs > cores {
        eprintln!(
            "warning: {jobs} instances on {cores} core(s): they will share cores and each runs slower; -j {cores} uses every core once"
        );
    }
    let mut per_instance: Vec<(String, Vec<OsString>)> = Vec::new();
    for spec in &args.instance_args {
        let Some((id, rest)) = spec.split_once('=') else {
            anyhow::bail!(UsageError(format!("--instance-args `{spec}`: expected ID=ARGS, e.g. s01='--mode fast'")));
        };
        // Split like a shell would, so quoted arguments stay whole.
        let words = shell_words::split(rest)
            .map_err(|e| UsageError(format!("--instance-args `{spec}`: {e} (quote as in a shell)")))?;
        per_instance.push((id.to_string(), words.into_iter().map(OsString::from).collect()));
    }
    // Where the binaries, default directories and reproduce commands come from.
    let (names, binaries, project) = match &args.binary {
        Some(b) => {
            if args.targets.len() > 1 {
                anyhow::bail!(UsageError("--binary fuzzes one binary: name at most one target".into()));
            }
            let binary = super::absolute(b)?;
            if !binary.is_file() {
                anyhow::bail!(UsageError(format!("binary {} does not exist", binary.display())));
            }
            let name = args
                .targets
                .first()
                .cloned()
                .unwrap_or_else(|| binary.file_name().unwrap_or_default().to_string_lossy().into_owned());
            (vec![name], vec![binary], None)
        }
        None => {
            let project = args.project.load()?;
            let targets = match (args.targets.is_empty(), project.targets.as_slice()) {
                (false, _) => args.targets.clone(),
                // A project with one target needs no name.
                (true, [only]) => vec![only.name.clone()],
                (true, []) => {
                    anyhow::bail!(UsageError(
                        "the fuzz project has no targets: add one with `cargo rfuzz add NAME`".into()
                    ))
                }
                (true, _) => anyhow::bail!(UsageError(format!(
                    "name the fuzz target(s) to run: {} (or pass --binary)",
                    project.targets.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
                ))),
            };
            for t in &targets {
                project.target(t)?;
            }
            let built = build_targets(&project, &targets, &args.build, true)?;
            (targets, built.into_iter().map(|b| b.binary).collect::<Vec<_>>(), Some(project))
        }
    };
    let sync_dir = match (&args.flags.output, &project) {
        (Some(o), _) => super::absolute(o)?,
        (None, Some(p)) => p.sync_dir(&names.join("+")),
        (None, None) => anyhow::bail!(UsageError("with --binary, name the sync directory with -o DIR".into())),
    };
    args.flags.check_paths(&sync_dir)?;
    let remote_sync = match &args.remote_sync {
        Some(file) => {
            crate::sync::remote::hosts::load(file).map_err(UsageError)?;
            let every = args.remote_every.unwrap_or(crate::sync::remote::DEFAULT_PERIOD);
            let a: Vec<OsString> = vec![
                "sync-remote".into(),
                "--hosts".into(),
                super::absolute(file)?.into(),
                "-o".into(),
                sync_dir.clone().into(),
                "--every".into(),
                format!("{}s", every.as_secs()).into(),
            ];
            Some(a)
        }
        None => None,
    };
    // Each target's `.options` settings, where the command line is silent.
    let mut target_flags = Vec::new();
    for name in &names {
        target_flags.push(match &project {
            Some(p) => {
                let o = p.target_options(name);
                super::common::report_target_options(name, &o);
                args.flags.with_target_options(&o)
            }
            None => args.flags.clone(),
        });
    }
    let cpus = if args.no_pin { vec![None; jobs] } else { cpu::assign(jobs) };
    let ntargets = names.len();
    let mut instances = Vec::new();
    for k in 0..jobs {
        let id = instance_id(k);
        let target = &names[k % ntargets];
        let binary = &binaries[k % ntargets];
        let mut a: Vec<OsString> =
            vec![target.into(), "--binary".into(), binary.into(), "-o".into(), sync_dir.clone().into()];
        a.push(if k == 0 { "-M" } else { "-S" }.into());
        a.push(id.clone().into());
        a.extend(["--quiet".into(), "--flavor".into(), k.to_string().into()]);
        if k == 0 && args.flags.deterministic {
            a.push("-D".into());
        }
        let default_seeds = project.as_ref().map(|p| p.corpus_dir(target)).filter(|d| d.is_dir());
        let seeds = args.flags.input.clone().or(default_seeds);
        if let Some(s) = seeds {
            a.push("-i".into());
            a.push(super::absolute(&s)?.into());
            // Deal the seeds out among the instances of this target: each
            // starts elsewhere and imports the rest within seconds.
            let group = (jobs - k % ntargets).div_ceil(ntargets);
            a.push("--seed-shard".into());
            a.push(format!("{}/{}", k / ntargets, group).into());
        }
        a.extend(target_flags[k % ntargets].instance_args(k)?);
        let progress = match args.cmp_progress {
            CmpProgress::All => true,
            CmpProgress::None => false,
            CmpProgress::Auto => k % 4 == 3,
        };
        if progress {
            a.push("--cmp-progress".into());
        }
        let extra: Vec<OsString> =
            per_instance.iter().filter(|(i, _)| *i == id).flat_map(|(_, v)| v.iter().cloned()).collect();
        if !args.target_args.is_empty() || !extra.is_empty() {
            a.push("--".into());
            a.extend(args.target_args.iter().cloned());
            a.extend(extra);
        }
        instances.push(InstancePlan { id, target: target.clone(), args: a, cpu: cpus[k] });
    }
    let ui = if args.flags.no_ui || !std::io::stdout().is_terminal() { UiMode::Plain } else { UiMode::Screen };
    let repro = match &project {
        Some(p) => {
            names.iter().map(|t| (t.clone(), super::build::repro_command(&p.fuzz_dir, &args.build, t))).collect()
        }
        None => vec![(names[0].clone(), format!("{} {{}}", shell_quote(&binaries[0].to_string_lossy())))],
    };
    let replayers = names
        .iter()
        .zip(&binaries)
        .map(|(n, b)| Ok((n.clone(), Replayer::new(b, &args.target_args, replay::DEFAULT_TIMEOUT, args.flags.memory)?)))
        .collect::<Result<Vec<_>>>()?;
    let plan = Plan {
        title: format!("cargo rfuzz run :: {} :: -j {jobs} :: {}", names.join(" "), sync_dir.display()),
        sync_dir,
        instances,
        max_total_time: args.flags.max_total_time.map(Duration::from_secs),
        exit_on_crash: args.flags.exit_on_crash,
        ui,
        repro,
        replayers,
        remote_sync,
    };
    Ok(supervisor::run(plan)?.code)
}
