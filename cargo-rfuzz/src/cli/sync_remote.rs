//! `cargo rfuzz sync-remote`: share queue entries with instances on other
//! hosts over ssh, every 30 minutes or once.

use super::{ProjectArgs, UsageError};
use crate::exit;
use crate::sync::remote::{self, HostOutcome, RoundOutcome, Settings, hosts, ssh::Ssh};
use crate::sys::signal::{STOP, install_stop_handlers};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Options of `cargo rfuzz sync-remote`.
#[derive(Debug, Args)]
pub struct SyncRemoteArgs {
    /// Fuzz target whose default sync directory to share (fuzz/sync/<target>/).
    pub target: Option<String>,
    /// This machine's sync directory.
    #[arg(short = 'o', long = "output", value_name = "SYNC_DIR", conflicts_with = "target")]
    pub output: Option<PathBuf>,
    /// The other hosts, one per line: `[user@]host[:port] SYNC_DIR [name=NAME]
    /// [prefix=PREFIX] [identity=KEYFILE] [ssh-option=KEY=VALUE]...`.
    #[arg(long, value_name = "FILE")]
    pub hosts: PathBuf,
    /// Time between two syncs (e.g. 30m, 90s, 2h).
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = hosts::parse_duration)]
    pub every: Duration,
    /// Sync once and exit: 0 when every host synced, 5 otherwise.
    #[arg(long)]
    pub once: bool,
    /// Show what would be copied, copy nothing (implies --once).
    #[arg(long)]
    pub dry_run: bool,
    /// Largest queue entry to copy, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = remote::DEFAULT_MAX_ENTRY, value_parser = clap::value_parser!(u64).range(1..=(64 << 20)))]
    pub max_entry_size: u64,
    #[command(flatten)]
    pub project: ProjectArgs,
}

fn print_host(o: &HostOutcome, dry_run: bool) {
    for w in &o.warnings {
        eprintln!("warning: host {}: {w}", o.label);
    }
    if let Some(e) = &o.error {
        eprintln!("error: host {}: {e}", o.label);
        return;
    }
    let verb = if dry_run { "would copy" } else { "copied" };
    println!(
        "host {}: {verb} {} of {} from it, {} of {} to it",
        o.label,
        plural(o.pulled, "entry", "entries"),
        plural(o.pulled_instances as u64, "instance", "instances"),
        plural(o.pushed, "entry", "entries"),
        plural(o.pushed_instances as u64, "instance", "instances"),
    );
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn summary(r: &RoundOutcome) -> String {
    let ok = r.hosts.iter().filter(|h| h.error.is_none()).count();
    let pulled: u64 = r.hosts.iter().map(|h| h.pulled).sum();
    let pushed: u64 = r.hosts.iter().map(|h| h.pushed).sum();
    format!(
        "remote sync: {ok} of {} synced, {} in, {pushed} out",
        plural(r.hosts.len() as u64, "host", "hosts"),
        plural(pulled, "entry", "entries")
    )
}

/// Runs `cargo rfuzz sync-remote`.
pub fn run(args: SyncRemoteArgs) -> Result<i32> {
    let dir = super::existing_sync_dir(args.output.as_deref(), args.target.as_deref(), &args.project)?;
    let sync_dir = super::absolute(&dir)?;
    let hosts = hosts::load(&args.hosts).map_err(UsageError)?;
    let settings = Settings {
        sync_dir,
        hosts,
        hosts_file: args.hosts.clone(),
        max_entry: args.max_entry_size,
        dry_run: args.dry_run,
    };
    let once = args.once || args.dry_run;
    install_stop_handlers();
    let ssh = Ssh::new()?;
    loop {
        let started = Instant::now();
        let code = match remote::round(&settings, &ssh, &STOP) {
            Ok(r) => {
                for h in &r.hosts {
                    print_host(h, args.dry_run);
                }
                let mut line = summary(&r);
                if !once {
                    line.push_str(&format!("; next in {}", crate::report::duration(args.every.as_secs())));
                }
                println!("{line}");
                if r.all_synced() { exit::SUCCESS } else { exit::REMOTE_SYNC_FAILED }
            }
            Err(e) if once => return Err(e),
            Err(e) => {
                eprintln!("error: {e:#}");
                exit::REMOTE_SYNC_FAILED
            }
        };
        if once || STOP.load(Ordering::Relaxed) {
            return Ok(code);
        }
        while started.elapsed() < args.every {
            if STOP.load(Ordering::Relaxed) {
                return Ok(code);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
