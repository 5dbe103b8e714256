//! `cargo rfuzz triage [TARGET | -o SYNC_DIR]`: replay every crash and hang
//! file of a sync directory and group them into bugs.

use super::build::BuildFlags;
use super::fuzz::{ResolvedTarget, resolve};
use super::{ProjectArgs, UsageError};
use crate::minimize::{CoverageRunner, tmin};
use crate::sync::layout;
use crate::triage::{self, replay::Replayer};
use anyhow::{Context, Result};
use clap::Args;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Options of `cargo rfuzz triage`.
#[derive(Debug, Args)]
pub struct TriageArgs {
    /// Fuzz target (built if needed; may be left out when the project has one).
    pub target: Option<String>,
    /// Sync directory (default: fuzz/sync/<target>/).
    #[arg(short = 'o', long = "output", value_name = "SYNC_DIR")]
    pub output: Option<PathBuf>,
    /// Replay with this prebuilt binary instead of building TARGET.
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,
    /// Print the report as a Markdown table (for a CI job summary).
    #[arg(long)]
    pub markdown: bool,
    /// Write a minimized reproducer of each bug (see `tmin`) into --out.
    #[arg(long)]
    pub minimize: bool,
    /// Where --minimize writes reproducers (default: fuzz/artifacts/<target>/).
    #[arg(long, value_name = "DIR", requires = "minimize")]
    pub out: Option<PathBuf>,
    /// Time limit of one replay in milliseconds (hang files run this long).
    #[arg(short = 't', long = "timeout", value_name = "MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Memory limit of the target in MiB, as for `fuzz -m`.
    #[arg(short = 'm', long = "memory", value_name = "MB")]
    pub memory: Option<u64>,
    /// Replays to run at once (default: one per core).
    #[arg(short = 'j', long = "jobs", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub jobs: Option<u64>,
    #[command(flatten)]
    pub project: ProjectArgs,
    #[command(flatten)]
    pub build: BuildFlags,
    /// Arguments for the target, as given to `fuzz` (`@@`: the input file).
    #[arg(last = true, value_name = "TARGET_ARGS")]
    pub target_args: Vec<OsString>,
}

/// The target an instance fuzzed, from its `fuzzer_stats` banner.
pub(super) fn banner(instance_dir: &Path) -> Option<String> {
    layout::read_stats(&instance_dir.join(layout::FUZZER_STATS))?.remove("afl_banner").filter(|b| !b.is_empty())
}

/// The target of `triage`, `tmin` or `cmin`: named, `--binary`, the
/// project's only one, or the one the instances of `sync_dir` fuzzed.
pub fn resolve_target(
    target: Option<&str>,
    binary: Option<&PathBuf>,
    project: &ProjectArgs,
    build: &BuildFlags,
    sync_dir: Option<&Path>,
) -> Result<ResolvedTarget> {
    if target.is_none() && binary.is_none() {
        let name = implied_target(project, sync_dir, " (or pass --binary PATH)")?;
        return resolve(Some(&name), None, project, build, true);
    }
    resolve(target, binary, project, build, true)
}

/// The target meant when none is named: the project's only one, or the one
/// the instances of `sync_dir` fuzzed. Otherwise a usage error listing the
/// targets, with `or` appended.
pub fn implied_target(project: &ProjectArgs, sync_dir: Option<&Path>, or: &str) -> Result<String> {
    let p = project.load()?;
    let fuzzed: BTreeSet<String> = sync_dir
        .map(|s| layout::instance_dirs(s).unwrap_or_default().iter().filter_map(|(_, dir)| banner(dir)).collect())
        .unwrap_or_default();
    let known: Vec<&String> = fuzzed.iter().filter(|b| p.targets.iter().any(|t| t.name == **b)).collect();
    match (p.targets.as_slice(), known.as_slice()) {
        ([only], _) => Ok(only.name.clone()),
        (_, [one]) => Ok(one.to_string()),
        _ => anyhow::bail!(UsageError(format!(
            "name the fuzz target: {}{or}",
            p.targets.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Leaves out the files of instances that fuzzed another target of the
/// project (several targets may share a sync directory); files of AFL++ or
/// unknown instances stay.
fn of_target(
    files: Vec<triage::CrashFile>,
    sync_dir: &Path,
    name: &str,
    project: &ProjectArgs,
) -> Vec<triage::CrashFile> {
    let Ok(p) = project.load() else { return files };
    let mut other: BTreeMap<String, bool> = BTreeMap::new();
    files
        .into_iter()
        .filter(|f| {
            !*other.entry(f.instance.clone()).or_insert_with(|| {
                banner(&sync_dir.join(&f.instance)).is_some_and(|b| b != name && p.targets.iter().any(|t| t.name == b))
            })
        })
        .collect()
}

/// The sync directory: `-o`, or the target's default one.
pub fn sync_dir_of(output: Option<&Path>, resolved: &ResolvedTarget) -> Result<PathBuf> {
    let dir = match (output, &resolved.default_sync_dir) {
        (Some(o), _) => super::absolute(o)?,
        (None, Some(d)) => d.clone(),
        (None, None) => anyhow::bail!(UsageError("with --binary, name the sync directory with -o DIR".into())),
    };
    if !dir.is_dir() {
        anyhow::bail!(UsageError(format!(
            "no sync directory at {}: start fuzzing with `cargo rfuzz run TARGET` first",
            dir.display()
        )));
    }
    Ok(dir)
}

/// Runs `cargo rfuzz triage`.
pub fn run(args: TriageArgs) -> Result<i32> {
    let resolved = resolve_target(
        args.target.as_deref(),
        args.binary.as_ref(),
        &args.project,
        &args.build,
        args.output.as_deref(),
    )?;
    let sync_dir = sync_dir_of(args.output.as_deref(), &resolved)?;
    let timeout = Duration::from_millis(args.timeout);
    let replayer = Replayer::new(&resolved.binary, &args.target_args, timeout, args.memory)?;
    let mut files = triage::collect(&sync_dir, true);
    if args.binary.is_none() {
        files = of_target(files, &sync_dir, &resolved.name, &args.project);
    }
    let jobs = args.jobs.map_or_else(triage::replay::default_jobs, |j| j as usize);
    let tty = std::io::stderr().is_terminal();
    let total = files.len();
    let progress = |n: usize| {
        if tty {
            eprint!("\r  replaying {n}/{total}");
        }
    };
    let mut report = triage::triage(&files, &|_| &replayer, jobs, &progress);
    if tty && total > 0 {
        eprintln!();
    }
    if args.minimize && !report.bugs.is_empty() {
        let out = match (&args.out, &args.binary) {
            (Some(o), _) => super::absolute(o)?,
            // cargo-fuzz keeps crash artifacts there too.
            (None, None) => args.project.load()?.fuzz_dir.join("artifacts").join(&resolved.name),
            (None, Some(_)) => {
                anyhow::bail!(UsageError("with --binary, name the directory for reproducers with --out DIR".into()))
            }
        };
        std::fs::create_dir_all(&out).with_context(|| format!("failed to create {}", out.display()))?;
        for bug in &mut report.bugs {
            let data =
                std::fs::read(&bug.smallest).with_context(|| format!("failed to read {}", bug.smallest.display()))?;
            let runner = CoverageRunner::start(&resolved.binary, &args.target_args, timeout, args.memory)?;
            let min = tmin::minimize(runner, &replayer, &out, &data)
                .with_context(|| format!("failed to minimize {}", bug.smallest.display()))?;
            let path = out.join(format!("{}-{}", bug.id, bug.signature.kind.name()));
            crate::sync::layout::write_atomic(&path, &min.data)?;
            bug.minimized_size = Some(min.data.len() as u64);
            bug.minimized = Some(path);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if args.markdown {
        print!("{}", triage::render_markdown(&report));
    } else {
        print!("{}", triage::render_text(&report));
        if let Some(b) = report.bugs.first() {
            println!(
                "\nReproduce with: {}",
                resolved.repro.replace("{}", &crate::sys::shell_quote(&b.smallest.to_string_lossy()))
            );
        }
    }
    Ok(crate::exit::SUCCESS)
}
