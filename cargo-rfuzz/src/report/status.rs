//! The single-instance status screen and the plain progress line, both pure
//! functions of an [`InstanceStats`] snapshot.

use super::{InstanceStats, ago, count, duration, files_and_bugs, micros};

fn row(left: (&str, String), right: (&str, String)) -> String {
    format!(" {:>16} : {:<22} {:>16} : {}", left.0, left.1, right.0, right.1)
}

/// The status screen, in the spirit of afl-fuzz's: timing, results,
/// coverage, stage and corpus. `now` is the unix time to measure ages from.
pub fn render(s: &InstanceStats, now: u64, width: usize) -> String {
    let width = width.clamp(60, 100);
    let version = s.afl_version.trim_start_matches("rfuzz-");
    let title = format!(" cargo rfuzz {version} :: {} ({}) ", s.afl_banner, s.id);
    let mut out = Vec::new();
    let rule = |name: &str| format!("-- {name} {}", "-".repeat(width.saturating_sub(name.len() + 4)));
    out.push(format!("{title:=^width$}"));
    out.push(rule("process timing / overall results"));
    out.push(row(("run time", duration(s.run_time)), ("cycles done", s.cycles_done.to_string())));
    out.push(row(("last new find", ago(now, s.last_find)), ("corpus count", s.corpus_count.to_string())));
    out.push(row(
        ("last saved crash", ago(now, s.last_crash)),
        (
            "saved crashes",
            format!("{} of {}", files_and_bugs(s.saved_crashes, s.crash_signatures), count(s.total_crashes)),
        ),
    ));
    out.push(row(
        ("last saved hang", ago(now, s.last_hang)),
        ("saved hangs", format!("{} of {}", files_and_bugs(s.saved_hangs, s.hang_signatures), count(s.total_tmout))),
    ));
    out.push(rule("stage / coverage"));
    out.push(row(("now trying", s.stage.clone()), ("map density", format!("{:.2}%", s.bitmap_cvg))));
    out.push(row(
        ("exec speed", format!("{}/sec", count(s.execs_per_sec as u64))),
        ("edges found", format!("{}/{}", s.edges_found, s.total_edges)),
    ));
    out.push(row(("total execs", count(s.execs_done)), ("stability", format!("{:.2}%", s.stability))));
    out.push(rule("corpus"));
    out.push(row(
        ("favored items", s.corpus_favored.to_string()),
        ("pending", format!("{} ({} favored)", s.pending_total, s.pending_favs)),
    ));
    out.push(row(("new finds", s.corpus_found.to_string()), ("imported", s.corpus_imported.to_string())));
    out.push(row(("depth", s.max_depth.to_string()), ("auto tokens", s.auto_dict_entries.to_string())));
    out.push(row(("timeout", format!("{} ms", s.exec_timeout)), ("executor", s.target_mode.clone())));
    out.push(row(
        ("exec time", format!("{} avg", micros(s.avg_exec_us))),
        ("slowest entry", format!("{} (id {})", micros(s.slowest_exec_us), s.slowest_entry)),
    ));
    out.push(row(
        ("timeouts/min", s.timeouts_last_min.to_string()),
        ("set aside", format!("{} (mutants time out)", s.corpus_set_aside)),
    ));
    if s.target_procs > 0 || s.target_procs_refused > 0 {
        // Only for targets that start processes.
        out.push(row(
            ("target procs", format!("{} started", count(s.target_procs))),
            ("killed / refused", format!("{} / {}", count(s.target_procs_killed), count(s.target_procs_refused))),
        ));
    }
    out.push("-".repeat(width));
    out.join("\n") + "\n"
}

/// One line of progress for logs and CI (not a tty, or `--no-ui`).
pub fn plain_line(s: &InstanceStats) -> String {
    format!(
        "[{}] {} {}: {} execs ({}/s), corpus {} (+{} found, {} imported), edges {}/{}, crashes {}, hangs {}, stability {:.1}%, exec {} avg",
        duration(s.run_time),
        s.afl_banner,
        s.id,
        count(s.execs_done),
        count(s.execs_per_sec as u64),
        s.corpus_count,
        s.corpus_found,
        s.corpus_imported,
        s.edges_found,
        s.total_edges,
        files_and_bugs(s.saved_crashes, s.crash_signatures),
        files_and_bugs(s.saved_hangs, s.hang_signatures),
        s.stability,
        micros(s.avg_exec_us)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> InstanceStats {
        InstanceStats {
            id: "main".into(),
            start_time: 1_000,
            last_update: 1_754,
            run_time: 754,
            cycles_done: 3,
            execs_done: 12_345_678,
            execs_per_sec: 45_210.0,
            corpus_count: 154,
            corpus_favored: 23,
            corpus_found: 120,
            corpus_imported: 30,
            pending_favs: 1,
            pending_total: 12,
            stability: 100.0,
            bitmap_cvg: 12.34,
            saved_crashes: 3,
            total_crashes: 657,
            crash_signatures: 1,
            avg_exec_us: 120,
            slowest_exec_us: 4_100,
            slowest_entry: 17,
            last_find: 1_752,
            last_crash: 1_500,
            exec_timeout: 40,
            edges_found: 1234,
            total_edges: 9984,
            max_depth: 5,
            auto_dict_entries: 17,
            afl_banner: "parse_json".into(),
            afl_version: "0.1.0".into(),
            target_mode: "rfuzz direct (persistent, batched)".into(),
            stage: "havoc".into(),
            ..Default::default()
        }
    }

    #[test]
    fn status_screen_snapshot() {
        insta::assert_snapshot!(render(&sample(), 1_754, 80));
    }

    #[test]
    fn plain_line_snapshot() {
        insta::assert_snapshot!(plain_line(&sample()));
    }
}
