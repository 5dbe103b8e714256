//! The multi-instance view: the live dashboard of `run` and the text output
//! of `sync-status`, both pure functions of a [`SyncStatus`].

use super::{ago, count, cut, duration, files_and_bugs};
use crate::sync::status::SyncStatus;

/// A table with a row per instance and a totals row.
pub fn render(status: &SyncStatus, title: &str, notices: &[String]) -> String {
    let now = status.now;
    let mut out = String::new();
    out.push_str(title);
    out.push('\n');
    let remote = status.instances.iter().any(|i| i.remote);
    let header = format!(
        "{:<10} {:<14} {}{:<6} {:>8} {:>9} {:>9} {:>7} {:>7} {:>8} {:>8} {:>12} {:>5}  {}",
        "instance",
        "target",
        if remote { format!("{:<12} ", "host") } else { String::new() },
        "state",
        "run time",
        "exec/s",
        "execs",
        "corpus",
        "found",
        "imported",
        "pending",
        "crashes",
        "hangs",
        "last find"
    );
    out.push_str(&header);
    out.push('\n');
    for i in &status.instances {
        let s = &i.stats;
        // Banners and host names come from other fuzzers and machines: cut
        // by characters, never at a byte index.
        let target = cut(&s.afl_banner, 14);
        let host = cut(&s.host, 12);
        // Whether an instance on another host runs cannot be seen from here
        // (a copy made by sync-remote carries only its queue).
        let state = match (i.alive, i.remote) {
            (_, true) => "remote",
            (true, false) => "alive",
            (false, false) => "dead",
        };
        out.push_str(&format!(
            "{:<10} {:<14} {}{:<6} {:>8} {:>9} {:>9} {:>7} {:>7} {:>8} {:>8} {:>12} {:>5}  {}\n",
            s.id,
            target,
            if remote { format!("{host:<12} ") } else { String::new() },
            state,
            if i.remote { "-".into() } else { duration(s.run_time) },
            if i.alive { count(s.execs_per_sec as u64) } else { "-".into() },
            count(s.execs_done),
            i.queue_files,
            s.corpus_found,
            s.corpus_imported,
            s.pending_total,
            files_and_bugs(i.crash_files, i.crash_bugs),
            i.hang_files,
            ago(now, s.last_find)
        ));
    }
    let t = &status.totals;
    out.push_str(&format!(
        "{:<10} {:<14} {}{:<6} {:>8} {:>9} {:>9} {:>7} {:>7} {:>8} {:>8} {:>12} {:>5}  {}\n",
        "total",
        "",
        if remote { format!("{:<12} ", "") } else { String::new() },
        format!("{}/{}", t.alive, t.instances),
        // Summed like the execs: the fuzzing time all instances spent.
        duration(status.instances.iter().map(|i| i.stats.run_time).sum()),
        count(t.execs_per_sec as u64),
        count(t.execs_done),
        t.corpus_max,
        t.corpus_found,
        t.corpus_imported,
        t.pending_total,
        files_and_bugs(t.saved_crashes, t.crash_bugs),
        t.saved_hangs,
        ago(now, t.last_find)
    ));
    for n in notices {
        out.push_str(n);
        out.push('\n');
    }
    out
}

/// One progress line for a whole run (CI logs, `--no-ui`).
pub fn summary_line(status: &SyncStatus, elapsed_secs: u64) -> String {
    let t = &status.totals;
    format!(
        "[{}] {}/{} instances alive, {}/s, {} execs, corpus {} (+{} found, {} imported), crashes {}, hangs {}",
        duration(elapsed_secs),
        t.alive,
        t.instances,
        count(t.execs_per_sec as u64),
        count(t.execs_done),
        t.corpus_max,
        t.corpus_found,
        t.corpus_imported,
        files_and_bugs(t.saved_crashes, t.crash_bugs),
        t.saved_hangs
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::InstanceStats;
    use crate::sync::status::{InstanceStatus, Totals};

    fn inst(id: &str, alive: bool, eps: f64, imported: u64, crashes: u64) -> InstanceStatus {
        InstanceStatus {
            stats: InstanceStats {
                id: id.into(),
                afl_banner: "parse_json".into(),
                execs_done: 1_234_567,
                execs_per_sec: eps,
                corpus_found: 40,
                corpus_imported: imported,
                pending_total: 3,
                last_find: 990,
                run_time: 3_725,
                host: "box".into(),
                ..Default::default()
            },
            alive,
            main: id == "main",
            remote: false,
            queue_files: 120,
            crash_files: crashes,
            hang_files: 0,
            crash_bugs: crashes.min(1),
        }
    }

    fn sample() -> SyncStatus {
        let instances = vec![inst("main", true, 45_000.0, 12, 1), inst("s01", false, 0.0, 30, 0)];
        SyncStatus {
            sync_dir: "fuzz/sync/parse_json".into(),
            host: "box".into(),
            now: 1000,
            totals: Totals {
                instances: 2,
                alive: 1,
                execs_done: 2_469_134,
                execs_per_sec: 45_000.0,
                corpus_max: 120,
                corpus_found: 80,
                corpus_imported: 42,
                pending_total: 6,
                saved_crashes: 1,
                saved_hangs: 0,
                crash_bugs: 1,
                total_crashes: 57,
                last_find: 990,
            },
            instances,
        }
    }

    #[test]
    fn dashboard_snapshot() {
        let notices = vec!["s01 died (killed by SIGKILL); restarting".to_string()];
        insta::assert_snapshot!(render(&sample(), "cargo rfuzz run :: parse_json -j 2 :: 1m 05s", &notices));
    }

    #[test]
    fn dashboard_with_a_copy_from_another_host_snapshot() {
        let mut st = sample();
        let mut copy = inst("hostA-a1", false, 0.0, 0, 0);
        copy.remote = true;
        copy.stats = InstanceStats { id: "hostA-a1".into(), host: "hostA".into(), ..Default::default() };
        copy.queue_files = 57;
        st.instances.push(copy);
        insta::assert_snapshot!(render(&st, "sync dir fuzz/sync/parse_json on box", &[]));
    }

    #[test]
    fn summary_line_snapshot() {
        insta::assert_snapshot!(summary_line(&sample(), 65));
    }

    #[test]
    fn multi_byte_banners_and_host_names_do_not_panic() {
        // Regression: names were cut with String::truncate at a byte index,
        // which panics inside a multi-byte character (an AFL++ -T banner,
        // a remote host's name).
        let mut st = sample();
        let mut other = inst("ünï", true, 10.0, 5, 0);
        other.remote = true;
        other.stats.afl_banner = "パーサー_ファズ_ターゲット".into();
        other.stats.host = "hôte-ßéèçàù-über".into();
        st.instances.push(other);
        let text = render(&st, "title", &[]);
        assert!(text.contains("パーサー_ファズ_ターゲ"), "{text}");
        assert!(text.contains("hôte-ßéèçàù-"), "{text}");
    }
}
