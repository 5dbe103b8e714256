//! Reading an instance's progress over time: its `plot_data` (ours and every
//! AFL++ version's, parsed by the header line since the columns differ) and
//! the times at which it imported peers' entries (from its queue).
//!
//! Header lines seen in the wild:
//!
//! ```text
//! ours:       # relative_time, cycles_done, cur_item, corpus_count, pending_total, pending_favs,
//!               map_size, saved_crashes, saved_hangs, max_depth, execs_per_sec, total_execs, edges_found
//! AFL++ 4.x:  ... the same, then total_crashes, servers_count
//! AFL++ 3.x:  # relative_time, cycles_done, cur_path, paths_total, pending_total, pending_favs,
//!               map_size, unique_crashes, unique_hangs, max_depth, execs_per_sec, total_execs, edges_found
//! AFL 2.x:    # unix_time, cycles_done, cur_path, paths_total, paths_not_fuzzed, favored_not_fuzzed,
//!               unique_crashes, unique_hangs, max_depth, execs_per_sec
//! ```

use super::layout;
use std::path::Path;

/// The largest `plot_data` read (a row every 5 s is about 6 MB a month).
pub const MAX_PLOT_DATA: u64 = 256 << 20;

/// A quantity that `plot_data` records over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Coverage-map entries (edges) seen.
    Edges,
    /// Executions per second (the instance's recent average).
    ExecsPerSec,
    /// Queue entries.
    Corpus,
    /// Saved crashes.
    Crashes,
    /// Saved hangs.
    Hangs,
}

impl Metric {
    /// Every metric, in the order of [`PlotRow::values`].
    pub const ALL: [Metric; 5] = [Metric::Edges, Metric::ExecsPerSec, Metric::Corpus, Metric::Crashes, Metric::Hangs];

    /// The column names that hold this metric, newest first.
    fn columns(self) -> &'static [&'static str] {
        match self {
            Metric::Edges => &["edges_found"],
            Metric::ExecsPerSec => &["execs_per_sec"],
            Metric::Corpus => &["corpus_count", "paths_total"],
            Metric::Crashes => &["saved_crashes", "unique_crashes"],
            Metric::Hangs => &["saved_hangs", "unique_hangs"],
        }
    }

    fn index(self) -> usize {
        Metric::ALL.iter().position(|m| *m == self).unwrap_or(0)
    }
}

/// How a file's time column counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeBase {
    /// Seconds since the instance started (`relative_time`).
    Relative,
    /// Seconds since the Unix epoch (`unix_time`, AFL 2.x).
    Unix,
}

/// One line of `plot_data`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotRow {
    /// The time column, in seconds ([`PlotData::time_base`] says from when).
    pub time: u64,
    /// Each metric of [`Metric::ALL`], `None` where the file has no such column.
    pub values: [Option<f64>; 5],
}

impl PlotRow {
    /// The value of `m` on this row.
    pub fn get(&self, m: Metric) -> Option<f64> {
        self.values[m.index()]
    }
}

/// A parsed `plot_data`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotData {
    /// What the time column counts from.
    pub time_base: TimeBase,
    /// The rows that parsed, in file order.
    pub rows: Vec<PlotRow>,
    /// Lines that did not parse (a line being written, a truncated file).
    pub skipped: usize,
}

/// Why an instance's `plot_data` gives nothing to draw.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlotDataProblem {
    /// No file (an instance that never wrote one, or a remote copy).
    #[error("no plot_data")]
    Missing,
    /// Larger than [`MAX_PLOT_DATA`], or a symlink.
    #[error("plot_data is not a regular file of at most {} MiB", MAX_PLOT_DATA >> 20)]
    Unreadable,
    /// No `# ...` header line with a time column.
    #[error("plot_data has no header line naming relative_time or unix_time")]
    NoHeader,
    /// A header but no row yet (rows come every 5 s).
    #[error("plot_data has no rows yet")]
    NoRows,
}

/// Parses the text of a `plot_data` file.
pub fn parse(text: &str) -> Result<PlotData, PlotDataProblem> {
    let mut lines = text.lines();
    let header = lines.by_ref().find(|l| l.trim_start().starts_with('#')).ok_or(PlotDataProblem::NoHeader)?;
    let names: Vec<&str> = header.trim_start().trim_start_matches('#').split(',').map(str::trim).collect();
    let col = |name: &str| names.iter().position(|n| *n == name);
    let (time_col, time_base) = match (col("relative_time"), col("unix_time")) {
        (Some(c), _) => (c, TimeBase::Relative),
        (None, Some(c)) => (c, TimeBase::Unix),
        (None, None) => return Err(PlotDataProblem::NoHeader),
    };
    let metric_cols: Vec<Option<usize>> =
        Metric::ALL.iter().map(|m| m.columns().iter().find_map(|name| col(name))).collect();
    let mut rows = Vec::new();
    let mut skipped = 0;
    for line in lines {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        // A row shorter than the header is one being written (or a cut file).
        let row = (fields.len() >= names.len())
            .then(|| {
                let time = fields[time_col].parse::<u64>().ok()?;
                let mut values = [None; 5];
                for (slot, c) in values.iter_mut().zip(&metric_cols) {
                    if let Some(c) = c {
                        *slot = Some(number(fields[*c])?);
                    }
                }
                Some(PlotRow { time, values })
            })
            .flatten();
        match row {
            Some(r) => rows.push(r),
            None => skipped += 1,
        }
    }
    if rows.is_empty() {
        return Err(PlotDataProblem::NoRows);
    }
    Ok(PlotData { time_base, rows, skipped })
}

/// A number as plot_data writes it (`12`, `3.50`, `0.42%`).
fn number(s: &str) -> Option<f64> {
    s.trim_end_matches('%').parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Reads and parses `<instance_dir>/plot_data` (capped, never through a symlink).
pub fn read(instance_dir: &Path) -> Result<PlotData, PlotDataProblem> {
    let path = instance_dir.join(layout::PLOT_DATA);
    if std::fs::symlink_metadata(&path).is_err() {
        return Err(PlotDataProblem::Missing);
    }
    let bytes = layout::read_capped(&path, MAX_PLOT_DATA).ok_or(PlotDataProblem::Unreadable)?;
    parse(&String::from_utf8_lossy(&bytes))
}

/// The instance's start (Unix seconds) from its `fuzzer_stats`, if it says.
pub fn start_time(instance_dir: &Path) -> Option<u64> {
    layout::read_stats(&instance_dir.join(layout::FUZZER_STATS))?.get("start_time")?.parse().ok()
}

/// When the instance imported each entry it holds from a peer (Unix seconds,
/// sorted): the modification times of its `sync:` queue entries, which are
/// written once, when imported.
pub fn import_times(instance_dir: &Path) -> Vec<u64> {
    let queue = instance_dir.join(layout::QUEUE);
    let mut times: Vec<u64> = layout::list_entries(&queue)
        .into_iter()
        .filter(|(_, name)| layout::name_field(name, "sync").is_some())
        .filter_map(|(_, name)| std::fs::symlink_metadata(queue.join(name)).ok()?.modified().ok())
        .filter_map(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .collect();
    times.sort_unstable();
    times
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "# relative_time, cycles_done, cur_item, corpus_count, pending_total, pending_favs, map_size, saved_crashes, saved_hangs, max_depth, execs_per_sec, total_execs, edges_found\n\
        5, 0, 1, 10, 3, 1, 0.42%, 0, 0, 2, 1234.50, 6000, 57\n\
        10, 1, 4, 12, 2, 0, 0.50%, 1, 0, 3, 1500.00, 13000, 61\n";

    #[test]
    fn parses_our_header() {
        let d = parse(OURS).unwrap();
        assert_eq!(d.time_base, TimeBase::Relative);
        assert_eq!(d.skipped, 0);
        assert_eq!(d.rows.len(), 2);
        assert_eq!(d.rows[1].time, 10);
        assert_eq!(d.rows[0].get(Metric::Edges), Some(57.0));
        assert_eq!(d.rows[0].get(Metric::ExecsPerSec), Some(1234.5));
        assert_eq!(d.rows[1].get(Metric::Corpus), Some(12.0));
        assert_eq!(d.rows[1].get(Metric::Crashes), Some(1.0));
        assert_eq!(d.rows[1].get(Metric::Hangs), Some(0.0));
    }

    #[test]
    fn parses_aflpp_4_with_extra_columns() {
        let text = "# relative_time, cycles_done, cur_item, corpus_count, pending_total, pending_favs, map_size, saved_crashes, saved_hangs, max_depth, execs_per_sec, total_execs, edges_found, total_crashes, servers_count\n\
            3, 0, 0, 7, 7, 1, 1.10%, 2, 1, 1, 800.00, 2400, 90, 5, 0\n";
        let d = parse(text).unwrap();
        assert_eq!(d.rows[0].get(Metric::Crashes), Some(2.0));
        assert_eq!(d.rows[0].get(Metric::Hangs), Some(1.0));
        assert_eq!(d.rows[0].get(Metric::Edges), Some(90.0));
    }

    #[test]
    fn parses_old_afl_without_edges() {
        let text = "# unix_time, cycles_done, cur_path, paths_total, paths_not_fuzzed, favored_not_fuzzed, unique_crashes, unique_hangs, max_depth, execs_per_sec\n\
            1700000000, 0, 0, 4, 4, 1, 0, 0, 1, 250.00\n";
        let d = parse(text).unwrap();
        assert_eq!(d.time_base, TimeBase::Unix);
        assert_eq!(d.rows[0].time, 1_700_000_000);
        assert_eq!(d.rows[0].get(Metric::Corpus), Some(4.0));
        assert_eq!(d.rows[0].get(Metric::Edges), None);
    }

    #[test]
    fn partial_last_line_is_skipped_not_fatal() {
        let d = parse(&format!("{OURS}15, 1, 4, 1")).unwrap();
        assert_eq!((d.rows.len(), d.skipped), (2, 1));
    }

    #[test]
    fn empty_and_header_only_are_problems() {
        assert_eq!(parse(""), Err(PlotDataProblem::NoHeader));
        assert_eq!(parse(OURS.lines().next().unwrap()), Err(PlotDataProblem::NoRows));
        assert_eq!(parse("# cycles_done, corpus_count\n1, 2\n"), Err(PlotDataProblem::NoHeader));
    }
}
