//! `cargo rfuzz plot`: charts of a sync directory's progress from every
//! instance's `plot_data` (ours and AFL++'s), drawn without gnuplot.

use super::{ProjectArgs, UsageError};
use crate::report::plot::{self, InstanceSeries, TimeUnit};
use crate::sync::{layout, plot_data};
use anyhow::{Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Options of `cargo rfuzz plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// Fuzz target whose default sync directory to chart (fuzz/sync/<target>/).
    pub target: Option<String>,
    /// The sync directory.
    #[arg(short = 'o', long = "output", value_name = "SYNC_DIR", conflicts_with = "target")]
    pub output: Option<PathBuf>,
    /// Where to write the charts and index.html (default: fuzz/plot/<target>/
    /// for a target, <SYNC_DIR>-plot/ beside a sync directory given with -o).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Redraw every SECS seconds until Ctrl-C (index.html reloads itself).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub watch: Option<u64>,
    #[command(flatten)]
    pub project: ProjectArgs,
}

/// Runs `cargo rfuzz plot`.
pub fn run(args: PlotArgs) -> Result<i32> {
    let sync_dir = super::existing_sync_dir(args.output.as_deref(), args.target.as_deref(), &args.project)?;
    let out = match (&args.out, &args.target) {
        (Some(o), _) => o.clone(),
        (None, Some(t)) => args.project.load()?.fuzz_dir.join("plot").join(t),
        (None, None) => {
            let name = sync_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            sync_dir.with_file_name(format!("{name}-plot"))
        }
    };
    check_out_dir(&sync_dir, &out)?;
    let Some(secs) = args.watch else {
        draw_once(&sync_dir, &out, None, true)?;
        return Ok(crate::exit::SUCCESS);
    };
    crate::sys::signal::install_stop_handlers();
    let mut told = false;
    while !crate::sys::signal::stop_requested() {
        // Messages once; later rounds only redraw (index.html keeps the notes).
        draw_once(&sync_dir, &out, Some(secs), !told)?;
        told = true;
        for _ in 0..secs * 10 {
            if crate::sys::signal::stop_requested() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(crate::exit::SUCCESS)
}

/// An output directory directly inside the sync directory would look like
/// an instance to every tool that lists instances.
fn check_out_dir(sync_dir: &Path, out: &Path) -> Result<()> {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (s, o) = (abs(sync_dir), abs(out));
    let inside_as_instance = o.parent() == Some(s.as_path())
        && o.file_name().and_then(|n| n.to_str()).is_some_and(|n| layout::validate_instance_id(n).is_ok());
    if inside_as_instance || o == s {
        anyhow::bail!(UsageError(format!(
            "--out {} would sit among the instances of {}: choose a directory outside it",
            out.display(),
            sync_dir.display()
        )));
    }
    Ok(())
}

/// Reads every instance and draws the charts; with `tell`, prints the notes
/// and the page's path, or one line when there is nothing to draw. Returns
/// whether anything was drawn.
fn draw_once(sync_dir: &Path, out: &Path, refresh: Option<u64>, tell: bool) -> Result<bool> {
    let mut series = Vec::new();
    let mut notes = Vec::new();
    let instances =
        layout::instance_dirs(sync_dir).with_context(|| format!("failed to list {}", sync_dir.display()))?;
    for (id, dir) in &instances {
        match plot_data::read(dir) {
            Ok(data) => {
                if data.skipped > 0 {
                    notes.push(format!("{id}: {} line(s) of plot_data did not parse and were left out", data.skipped));
                }
                series.push(InstanceSeries {
                    id: id.clone(),
                    start: plot_data::start_time(dir),
                    data,
                    imports: plot_data::import_times(dir),
                });
            }
            Err(problem) => notes.push(format!("{id}: {problem}")),
        }
    }
    if series.is_empty() {
        if tell {
            let why = if instances.is_empty() {
                "it has no instance directories".to_string()
            } else {
                format!("no instance has plot data yet ({} instance(s); rows come every 5 s)", instances.len())
            };
            eprintln!("rfuzz: nothing to plot in {}: {why}", sync_dir.display());
        }
        return Ok(false);
    }
    let charts = plot::charts(&series);
    std::fs::create_dir_all(out).with_context(|| format!("failed to create {}", out.display()))?;
    let span = plot::span(&charts);
    let unit = TimeUnit::for_span(span);
    for c in &charts {
        plot::draw(c, out, unit, span)?;
    }
    let title = format!("cargo rfuzz plot: {}", sync_dir.display());
    let index = out.join("index.html");
    layout::write_atomic(&index, plot::index_html(&title, &charts, &notes, refresh).as_bytes())?;
    if tell {
        for n in &notes {
            eprintln!("rfuzz: {n}");
        }
        println!("{}", index.display());
    }
    Ok(true)
}
