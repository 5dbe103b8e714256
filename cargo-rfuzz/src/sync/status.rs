//! The state of a sync directory: every instance in it (ours and AFL++'s),
//! alive or dead, with its statistics. Used by `sync-status` and by the
//! dashboard of `run`.

use super::layout::{self, InstanceLock};
use super::stats::InstanceStats;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Statistics older than this mark an instance without a lock as dead
/// (AFL++ rewrites fuzzer_stats about once a minute).
pub const STALE_SECS: u64 = 180;

/// One instance directory.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InstanceStatus {
    /// Statistics (zeroes where the instance never wrote any).
    #[serde(flatten)]
    pub stats: InstanceStats,
    /// Running now.
    pub alive: bool,
    /// Has `is_main_node`.
    pub main: bool,
    /// Runs on another host (its files arrived by `sync-remote`).
    pub remote: bool,
    /// Entries in `queue/`.
    pub queue_files: u64,
    /// Files in `crashes/` (without README.txt).
    pub crash_files: u64,
    /// Files in `hangs/` (without README.txt).
    pub hang_files: u64,
    /// Distinct bugs among its crash files (their `bug:` fields).
    pub crash_bugs: u64,
}

/// Sums over the instances.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Totals {
    /// Instances.
    pub instances: usize,
    /// Instances running.
    pub alive: usize,
    /// Executions of all instances.
    pub execs_done: u64,
    /// Current speed of the live instances.
    pub execs_per_sec: f64,
    /// Largest corpus of an instance.
    pub corpus_max: u64,
    /// Entries found (by all instances; the same path may be found twice).
    pub corpus_found: u64,
    /// Entries imported.
    pub corpus_imported: u64,
    /// Entries not fuzzed yet.
    pub pending_total: u64,
    /// Crash files.
    pub saved_crashes: u64,
    /// Hang files.
    pub saved_hangs: u64,
    /// Distinct bugs among all crash files (`bug:` fields; AFL++'s files
    /// carry none).
    pub crash_bugs: u64,
    /// Crashing executions of all instances.
    pub total_crashes: u64,
    /// Most recent find of any instance (unix time).
    pub last_find: u64,
}

/// The state of a whole sync directory.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SyncStatus {
    /// The directory.
    pub sync_dir: PathBuf,
    /// This machine's name.
    pub host: String,
    /// Unix time of the scan.
    pub now: u64,
    /// Instances, sorted (main first).
    pub instances: Vec<InstanceStatus>,
    /// Sums.
    pub totals: Totals,
}

fn count_entries(dir: &Path) -> u64 {
    layout::list_entries(dir).len() as u64
}

/// The `bug:` fields of the files in a crash directory.
fn bug_ids(dir: &Path) -> std::collections::BTreeSet<String> {
    layout::list_entries(dir)
        .into_iter()
        .filter_map(|(_, name)| layout::name_field(&name, "bug").map(str::to_string))
        .collect()
}

fn pid_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// This machine's name as instances record it in their `host:` marker:
/// `RFUZZ_HOST` when set, the host name otherwise.
pub fn local_host() -> String {
    if let Some(h) = std::env::var(layout::HOST_ENV).ok().map(|h| h.trim().to_string()).filter(|h| !h.is_empty()) {
        return h;
    }
    nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".to_string())
}

/// Host an instance runs on: for a copy made by `sync-remote`, the host it
/// came from; otherwise from its stats or the `host:` line of `fuzzer_setup`.
pub fn instance_host(dir: &Path, stats: &InstanceStats) -> Option<String> {
    if let Some(origin) = layout::remote_origin(dir) {
        return Some(origin);
    }
    if !stats.host.is_empty() {
        return Some(stats.host.clone());
    }
    let setup = std::fs::read_to_string(dir.join(layout::FUZZER_SETUP)).ok()?;
    layout::setup_host(&setup)
}

/// Scans a sync directory.
pub fn scan(sync_dir: &Path) -> Result<SyncStatus> {
    let dirs = layout::instance_dirs(sync_dir)
        .with_context(|| format!("failed to read sync directory {}", sync_dir.display()))?;
    let host = local_host();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut instances = Vec::new();
    let mut all_bugs = std::collections::BTreeSet::new();
    for (name, dir) in dirs {
        let stats_map = layout::read_stats(&dir.join(layout::FUZZER_STATS));
        if stats_map.is_none() && !dir.join(layout::QUEUE).is_dir() {
            continue;
        }
        let stats = InstanceStats::from_fuzzer_stats(&name, &stats_map.unwrap_or_default());
        let inst_host = instance_host(&dir, &stats);
        let remote = inst_host.as_deref().is_some_and(|h| h != host);
        let alive = if dir.join(layout::LOCK).exists() && !remote {
            InstanceLock::is_held(&dir)
        } else if remote {
            stats.last_update > 0 && now.saturating_sub(stats.last_update) < STALE_SECS
        } else {
            pid_alive(stats.fuzzer_pid) && now.saturating_sub(stats.last_update) < STALE_SECS
        };
        let mut stats = stats;
        if !alive {
            stats.execs_per_sec = 0.0;
        }
        if stats.host.is_empty() {
            stats.host = inst_host.unwrap_or_default();
        }
        let bugs = bug_ids(&dir.join(layout::CRASHES));
        let crash_bugs = bugs.len() as u64;
        all_bugs.extend(bugs);
        instances.push(InstanceStatus {
            crash_bugs,
            alive,
            main: dir.join(layout::IS_MAIN_NODE).exists(),
            remote,
            queue_files: count_entries(&dir.join(layout::QUEUE)),
            crash_files: count_entries(&dir.join(layout::CRASHES)),
            hang_files: count_entries(&dir.join(layout::HANGS)),
            stats,
        });
    }
    instances.sort_by(|a, b| b.main.cmp(&a.main).then(a.stats.id.cmp(&b.stats.id)));
    let totals = Totals {
        instances: instances.len(),
        alive: instances.iter().filter(|i| i.alive).count(),
        execs_done: instances.iter().map(|i| i.stats.execs_done).sum(),
        execs_per_sec: instances.iter().map(|i| i.stats.execs_per_sec).sum(),
        corpus_max: instances.iter().map(|i| i.queue_files).max().unwrap_or(0),
        corpus_found: instances.iter().map(|i| i.stats.corpus_found).sum(),
        corpus_imported: instances.iter().map(|i| i.stats.corpus_imported).sum(),
        pending_total: instances.iter().map(|i| i.stats.pending_total).sum(),
        saved_crashes: instances.iter().map(|i| i.crash_files).sum(),
        saved_hangs: instances.iter().map(|i| i.hang_files).sum(),
        crash_bugs: all_bugs.len() as u64,
        total_crashes: instances.iter().map(|i| i.stats.total_crashes).sum(),
        last_find: instances.iter().map(|i| i.stats.last_find).max().unwrap_or(0),
    };
    Ok(SyncStatus { sync_dir: sync_dir.to_path_buf(), host, now, instances, totals })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_live_dead_and_afl_instances_and_ignores_junk() {
        let tmp = tempfile::tempdir().unwrap();
        let sync = tmp.path();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        // A live instance of ours: holds its lock.
        std::fs::create_dir_all(sync.join("main/queue")).unwrap();
        std::fs::write(sync.join("main/is_main_node"), "").unwrap();
        std::fs::write(sync.join("main/queue/id:000000,orig:a"), "x").unwrap();
        let _lock = InstanceLock::acquire(&sync.join("main")).unwrap();
        let s = InstanceStats {
            execs_done: 10,
            execs_per_sec: 5.0,
            last_update: now,
            host: local_host(),
            ..Default::default()
        };
        std::fs::write(sync.join("main/fuzzer_stats"), s.to_fuzzer_stats()).unwrap();
        // A dead one: lock file, nobody holds it.
        std::fs::create_dir_all(sync.join("s01/queue")).unwrap();
        std::fs::write(sync.join("s01/.rfuzz.lock"), "1").unwrap();
        std::fs::write(sync.join("s01/fuzzer_stats"), s.to_fuzzer_stats()).unwrap();
        std::fs::create_dir_all(sync.join("s01/crashes")).unwrap();
        std::fs::write(sync.join("s01/crashes/id:000000,sig:06"), "c").unwrap();
        std::fs::create_dir_all(sync.join("main/crashes")).unwrap();
        std::fs::write(sync.join("main/crashes/id:000000,sig:06,src:000000,bug:0000abcd,panic"), "c").unwrap();
        std::fs::write(sync.join("main/crashes/id:000001,sig:06,src:000000,bug:0000abcd,panic"), "c").unwrap();
        std::fs::write(sync.join("s01/crashes/README.txt"), "r").unwrap();
        // An AFL++ instance: no lock, live pid (ours), fresh stats, old key names.
        std::fs::create_dir_all(sync.join("afl1/queue")).unwrap();
        std::fs::write(
            sync.join("afl1/fuzzer_stats"),
            format!("fuzzer_pid : {}\nlast_update : {now}\nexecs_done : 7\nexecs_per_sec : 3.5\n", std::process::id()),
        )
        .unwrap();
        // Junk: a file, a hidden dir, a symlink to a directory.
        std::fs::write(sync.join("file"), "").unwrap();
        std::fs::create_dir_all(sync.join(".hidden/queue")).unwrap();
        std::os::unix::fs::symlink(sync.join("main"), sync.join("link")).unwrap();

        let st = scan(sync).unwrap();
        let ids: Vec<&str> = st.instances.iter().map(|i| i.stats.id.as_str()).collect();
        assert_eq!(ids, vec!["main", "afl1", "s01"]);
        let by = |id: &str| st.instances.iter().find(|i| i.stats.id == id).unwrap();
        assert!(by("main").alive && by("main").main);
        assert!(!by("s01").alive);
        assert_eq!(by("s01").stats.execs_per_sec, 0.0);
        assert_eq!(by("s01").crash_files, 1);
        assert!(by("afl1").alive);
        assert_eq!(st.totals.alive, 2);
        assert_eq!(st.totals.execs_done, 27);
        assert_eq!(st.totals.saved_crashes, 3);
        assert_eq!((by("main").crash_bugs, by("s01").crash_bugs, st.totals.crash_bugs), (1, 0, 1));
    }

    #[test]
    fn copies_from_other_hosts_show_as_remote_with_their_host() {
        let tmp = tempfile::tempdir().unwrap();
        let sync = tmp.path();
        std::fs::create_dir_all(sync.join("hostA-a1/queue")).unwrap();
        std::fs::write(sync.join("hostA-a1/.rfuzz-remote"), "hostA\n").unwrap();
        std::fs::write(sync.join("hostA-a1/queue/id:000000,orig:a"), "x").unwrap();
        // A directory moved from elsewhere whole, with its setup file.
        std::fs::create_dir_all(sync.join("moved/queue")).unwrap();
        std::fs::write(sync.join("moved/fuzzer_setup"), "host: far-away-host\n").unwrap();
        let st = scan(sync).unwrap();
        let by = |id: &str| st.instances.iter().find(|i| i.stats.id == id).unwrap();
        let copy = by("hostA-a1");
        assert!(copy.remote && !copy.alive);
        assert_eq!((copy.stats.host.as_str(), copy.queue_files), ("hostA", 1));
        assert!(by("moved").remote);
        assert_eq!(by("moved").stats.host, "far-away-host");
    }
}
