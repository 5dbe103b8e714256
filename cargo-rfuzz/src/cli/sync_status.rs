//! `cargo rfuzz sync-status`: a summary of a sync directory, like
//! afl-whatsup, for our instances and AFL++'s.

use super::ProjectArgs;
use crate::report::dashboard;
use crate::sync::status;
use anyhow::Result;
use clap::Args;
use crossterm::{cursor, execute, terminal};
use std::path::PathBuf;
use std::time::Duration;

/// Options of `cargo rfuzz sync-status`.
#[derive(Debug, Args)]
pub struct SyncStatusArgs {
    /// Fuzz target whose default sync directory to show (fuzz/sync/<target>/).
    pub target: Option<String>,
    /// The sync directory.
    #[arg(short = 'o', long = "output", value_name = "SYNC_DIR", conflicts_with = "target")]
    pub output: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Refresh every two seconds until Ctrl-C.
    #[arg(long, conflicts_with = "json")]
    pub watch: bool,
    #[command(flatten)]
    pub project: ProjectArgs,
}

/// Runs `cargo rfuzz sync-status`.
pub fn run(args: SyncStatusArgs) -> Result<i32> {
    let dir = super::existing_sync_dir(args.output.as_deref(), args.target.as_deref(), &args.project)?;
    let title = |st: &status::SyncStatus| format!("sync dir {} on {}", st.sync_dir.display(), st.host);
    if args.json {
        let st = status::scan(&dir)?;
        println!("{}", serde_json::to_string_pretty(&st)?);
        return Ok(crate::exit::SUCCESS);
    }
    if !args.watch {
        let st = status::scan(&dir)?;
        print!("{}", dashboard::render(&st, &title(&st), &[]));
        return Ok(crate::exit::SUCCESS);
    }
    crate::sys::signal::install_stop_handlers();
    let mut out = std::io::stdout();
    while !crate::sys::signal::stop_requested() {
        let st = status::scan(&dir)?;
        let _ = execute!(out, cursor::MoveTo(0, 0), terminal::Clear(terminal::ClearType::All));
        print!("{}", dashboard::render(&st, &title(&st), &[]).replace('\n', "\r\n"));
        use std::io::Write;
        let _ = out.flush();
        for _ in 0..20 {
            if crate::sys::signal::stop_requested() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    println!();
    Ok(crate::exit::SUCCESS)
}
