//! `fuzzer_stats`: the statistics file every instance (ours or AFL++'s)
//! keeps in its directory of the sync dir, and the snapshot type it is read
//! into. Part of the on-disk format, like [`super::layout`]; the renderers in
//! `report` draw it.

use std::collections::BTreeMap;

/// One instance's statistics, as written to `fuzzer_stats` (AFL++ keys) and
/// read back by `sync-status` and the dashboard, for our instances and
/// AFL++'s alike.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct InstanceStats {
    /// Instance id (directory name; not a stats key).
    pub id: String,
    /// Unix time the instance started.
    pub start_time: u64,
    /// Unix time of this snapshot.
    pub last_update: u64,
    /// Seconds fuzzed.
    pub run_time: u64,
    /// Pid of the instance.
    pub fuzzer_pid: u32,
    /// Queue cycles completed.
    pub cycles_done: u64,
    /// Executions.
    pub execs_done: u64,
    /// Current executions per second.
    pub execs_per_sec: f64,
    /// Queue entries.
    pub corpus_count: u64,
    /// Favoured entries.
    pub corpus_favored: u64,
    /// Entries found by this instance.
    pub corpus_found: u64,
    /// Entries imported from other instances.
    pub corpus_imported: u64,
    /// Entries with variable coverage.
    pub corpus_variable: u64,
    /// Deepest entry.
    pub max_depth: u64,
    /// Entry being fuzzed.
    pub cur_item: u64,
    /// Favoured entries not fuzzed yet.
    pub pending_favs: u64,
    /// Entries not fuzzed yet.
    pub pending_total: u64,
    /// Percentage of edges with stable coverage.
    pub stability: f64,
    /// Percentage of the map covered.
    pub bitmap_cvg: f64,
    /// Crash files saved (AFL++'s meaning: files, not bugs).
    pub saved_crashes: u64,
    /// Hang files saved.
    pub saved_hangs: u64,
    /// All crashing executions.
    pub total_crashes: u64,
    /// All timed-out executions.
    pub total_tmout: u64,
    /// Distinct crash signatures seen ("bugs"; ours only, 0 from AFL++).
    pub crash_signatures: u64,
    /// Distinct hangs seen: looping functions or sites (ours only).
    pub hang_signatures: u64,
    /// Entries set aside because their mutants kept timing out.
    pub corpus_set_aside: u64,
    /// Timeouts in the last minute.
    pub timeouts_last_min: u64,
    /// Average execution time of the selectable entries, in µs.
    pub avg_exec_us: u64,
    /// Execution time of the slowest selectable entry, in µs.
    pub slowest_exec_us: u64,
    /// Id of the slowest selectable entry.
    pub slowest_entry: u64,
    /// Unix time of the last new entry (0: none).
    pub last_find: u64,
    /// Unix time of the last saved crash (0: none).
    pub last_crash: u64,
    /// Unix time of the last saved hang (0: none).
    pub last_hang: u64,
    /// Unix time of the last import (0: none).
    pub last_import: u64,
    /// Per-input timeout in ms.
    pub exec_timeout: u64,
    /// Peak memory of the instance in MB.
    pub peak_rss_mb: u64,
    /// Edges seen.
    pub edges_found: u64,
    /// Map size in bytes (edges the target has, rounded up).
    pub total_edges: u64,
    /// Tokens in the automatic dictionary.
    pub auto_dict_entries: u64,
    /// Current limit on the length of generated inputs.
    pub len_limit: u64,
    /// Processes the target started.
    pub target_procs: u64,
    /// Processes of the target still running when their input ended (killed).
    pub target_procs_killed: u64,
    /// Spawns of the target refused at the `--max-procs` cap.
    pub target_procs_refused: u64,
    /// Target name.
    pub afl_banner: String,
    /// Fuzzer version.
    pub afl_version: String,
    /// Executor description.
    pub target_mode: String,
    /// Host the instance runs on.
    pub host: String,
    /// Current stage (havoc, det, sync, ...).
    pub stage: String,
    /// Instance command line.
    pub command_line: String,
}

fn secs_or_zero(v: Option<&String>) -> u64 {
    v.and_then(|s| s.parse::<f64>().ok()).map(|f| f as u64).unwrap_or(0)
}

impl InstanceStats {
    /// Renders `fuzzer_stats` (AFL++'s `%-18s: value` layout).
    pub fn to_fuzzer_stats(&self) -> String {
        let mut out = String::new();
        let mut kv = |k: &str, v: String| out.push_str(&format!("{k:<18}: {v}\n"));
        kv("start_time", self.start_time.to_string());
        kv("last_update", self.last_update.to_string());
        kv("run_time", self.run_time.to_string());
        kv("fuzzer_pid", self.fuzzer_pid.to_string());
        kv("cycles_done", self.cycles_done.to_string());
        kv("execs_done", self.execs_done.to_string());
        kv("execs_per_sec", format!("{:.2}", self.execs_per_sec));
        kv("corpus_count", self.corpus_count.to_string());
        kv("corpus_favored", self.corpus_favored.to_string());
        kv("corpus_found", self.corpus_found.to_string());
        kv("corpus_imported", self.corpus_imported.to_string());
        kv("corpus_variable", self.corpus_variable.to_string());
        kv("max_depth", self.max_depth.to_string());
        kv("cur_item", self.cur_item.to_string());
        kv("pending_favs", self.pending_favs.to_string());
        kv("pending_total", self.pending_total.to_string());
        kv("stability", format!("{:.2}%", self.stability));
        kv("bitmap_cvg", format!("{:.2}%", self.bitmap_cvg));
        kv("saved_crashes", self.saved_crashes.to_string());
        kv("saved_hangs", self.saved_hangs.to_string());
        kv("total_crashes", self.total_crashes.to_string());
        kv("total_tmout", self.total_tmout.to_string());
        kv("crash_signatures", self.crash_signatures.to_string());
        kv("hang_signatures", self.hang_signatures.to_string());
        kv("corpus_set_aside", self.corpus_set_aside.to_string());
        kv("timeouts_last_min", self.timeouts_last_min.to_string());
        kv("avg_exec_us", self.avg_exec_us.to_string());
        kv("slowest_exec_us", self.slowest_exec_us.to_string());
        kv("slowest_entry", self.slowest_entry.to_string());
        kv("last_find", self.last_find.to_string());
        kv("last_crash", self.last_crash.to_string());
        kv("last_hang", self.last_hang.to_string());
        kv("last_import", self.last_import.to_string());
        kv("exec_timeout", self.exec_timeout.to_string());
        kv("peak_rss_mb", self.peak_rss_mb.to_string());
        kv("edges_found", self.edges_found.to_string());
        kv("total_edges", self.total_edges.to_string());
        kv("auto_dict_entries", self.auto_dict_entries.to_string());
        kv("len_limit", self.len_limit.to_string());
        kv("target_procs", self.target_procs.to_string());
        kv("target_procs_killed", self.target_procs_killed.to_string());
        kv("target_procs_refused", self.target_procs_refused.to_string());
        kv("afl_banner", self.afl_banner.clone());
        kv("afl_version", self.afl_version.clone());
        kv("target_mode", self.target_mode.clone());
        kv("host", self.host.clone());
        kv("stage", self.stage.clone());
        kv("command_line", self.command_line.clone());
        out
    }

    /// Reads stats written by us or by AFL++ (missing keys stay zero; AFL++'s
    /// older names `paths_*` and `unique_*` are understood).
    pub fn from_fuzzer_stats(id: &str, m: &BTreeMap<String, String>) -> InstanceStats {
        let num = |keys: &[&str]| keys.iter().find_map(|k| m.get(*k)).map(|v| secs_or_zero(Some(v))).unwrap_or(0);
        let float = |k: &str| m.get(k).and_then(|v| v.trim_end_matches('%').parse::<f64>().ok()).unwrap_or(0.0);
        let text = |k: &str| m.get(k).cloned().unwrap_or_default();
        InstanceStats {
            id: id.to_string(),
            start_time: num(&["start_time"]),
            last_update: num(&["last_update"]),
            run_time: num(&["run_time"]),
            fuzzer_pid: num(&["fuzzer_pid"]) as u32,
            cycles_done: num(&["cycles_done"]),
            execs_done: num(&["execs_done"]),
            execs_per_sec: float("execs_per_sec"),
            corpus_count: num(&["corpus_count", "paths_total"]),
            corpus_favored: num(&["corpus_favored", "paths_favored"]),
            corpus_found: num(&["corpus_found", "paths_found"]),
            corpus_imported: num(&["corpus_imported", "paths_imported"]),
            corpus_variable: num(&["corpus_variable", "variable_paths"]),
            max_depth: num(&["max_depth"]),
            cur_item: num(&["cur_item", "cur_path"]),
            pending_favs: num(&["pending_favs"]),
            pending_total: num(&["pending_total"]),
            stability: float("stability"),
            bitmap_cvg: float("bitmap_cvg"),
            saved_crashes: num(&["saved_crashes", "unique_crashes"]),
            saved_hangs: num(&["saved_hangs", "unique_hangs"]),
            total_crashes: num(&["total_crashes"]),
            total_tmout: num(&["total_tmout"]),
            crash_signatures: num(&["crash_signatures"]),
            hang_signatures: num(&["hang_signatures"]),
            corpus_set_aside: num(&["corpus_set_aside"]),
            timeouts_last_min: num(&["timeouts_last_min"]),
            avg_exec_us: num(&["avg_exec_us"]),
            slowest_exec_us: num(&["slowest_exec_us"]),
            slowest_entry: num(&["slowest_entry"]),
            last_find: num(&["last_find", "last_path"]),
            last_crash: num(&["last_crash"]),
            last_hang: num(&["last_hang"]),
            last_import: num(&["last_import"]),
            exec_timeout: num(&["exec_timeout"]),
            peak_rss_mb: num(&["peak_rss_mb"]),
            edges_found: num(&["edges_found"]),
            total_edges: num(&["total_edges"]),
            auto_dict_entries: num(&["auto_dict_entries"]),
            len_limit: num(&["len_limit"]),
            target_procs: num(&["target_procs"]),
            target_procs_killed: num(&["target_procs_killed"]),
            target_procs_refused: num(&["target_procs_refused"]),
            afl_banner: text("afl_banner"),
            afl_version: text("afl_version"),
            target_mode: text("target_mode"),
            host: text("host"),
            stage: text("stage"),
            command_line: text("command_line"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzzer_stats_round_trip() {
        let s = InstanceStats {
            id: "main".into(),
            start_time: 100,
            execs_done: 12345,
            execs_per_sec: 999.5,
            corpus_count: 7,
            corpus_imported: 2,
            stability: 99.5,
            saved_crashes: 1,
            crash_signatures: 1,
            slowest_exec_us: 1234,
            afl_banner: "parse".into(),
            host: "box".into(),
            ..Default::default()
        };
        let text = s.to_fuzzer_stats();
        assert!(text.contains("execs_done        : 12345\n"));
        let map: BTreeMap<String, String> = text
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        assert_eq!(InstanceStats::from_fuzzer_stats("main", &map), s);
    }

    #[test]
    fn reads_old_afl_key_names() {
        let map: BTreeMap<String, String> = [("paths_total", "5"), ("unique_crashes", "2"), ("execs_per_sec", "10.5")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let s = InstanceStats::from_fuzzer_stats("x", &map);
        assert_eq!((s.corpus_count, s.saved_crashes, s.execs_per_sec), (5, 2, 10.5));
    }
}
