//! Importing other instances' queue entries.
//!
//! Every instance scans the other instance directories of the sync dir on a
//! short, adaptive period (a second when peers are finding things, backing
//! off to ten seconds when they are not), runs each new entry once and keeps
//! it only if it gives locally new coverage. Progress per peer is stored in
//! `.synced/<peer>` (the next id to look at), so a restarted instance does
//! not import anything twice.
//!
//! Peers write at the same time and may be hostile or broken: symlinks (to
//! directories or files) are never followed, names that do not parse, empty
//! and oversized files are skipped, files modified in the last 200 ms are left
//! for the next round (AFL++ writes queue entries in place), and nothing here
//! ever writes outside our own instance directory.

use super::layout;
use anyhow::Result;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// Shortest and longest time between two scans.
const MIN_INTERVAL: Duration = Duration::from_secs(1);
const MAX_INTERVAL: Duration = Duration::from_secs(10);
/// Files younger than this may still be being written by an AFL++ peer (our
/// instances write entries atomically; AFL++ writes them in place).
const SETTLE: Duration = Duration::from_millis(200);

/// A peer's entry not looked at yet.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Peer instance id.
    pub peer: String,
    /// Entry id in the peer's queue.
    pub id: u32,
    /// The input.
    pub data: Vec<u8>,
}

/// Imports entries from the other instances of one sync directory.
#[derive(Debug)]
pub struct Importer {
    sync_dir: PathBuf,
    me: String,
    next_due: Instant,
    interval: Duration,
    progress: HashMap<String, u32>,
    /// Progress to store once the candidates of the last scan have run.
    pending: Vec<(String, u32)>,
    /// Largest entry imported.
    pub max_len: usize,
    /// Files looked at in total.
    pub seen: u64,
}

/// Reads a non-empty regular file without following a symlink, up to `max` bytes.
fn read_regular(path: &Path, max: usize) -> Option<Vec<u8>> {
    layout::read_capped(path, max as u64).filter(|d| !d.is_empty())
}

impl Importer {
    /// An importer for instance `me` of `sync_dir`.
    pub fn new(sync_dir: &Path, me: &str) -> Importer {
        Importer {
            sync_dir: sync_dir.to_path_buf(),
            me: me.to_string(),
            next_due: Instant::now() + MIN_INTERVAL,
            interval: MIN_INTERVAL,
            progress: HashMap::new(),
            pending: Vec::new(),
            max_len: 1 << 20,
            seen: 0,
        }
    }

    /// Whether a scan is due.
    pub fn due(&self, now: Instant) -> bool {
        now >= self.next_due
    }

    fn synced_file(&self, peer: &str) -> PathBuf {
        self.sync_dir.join(&self.me).join(layout::SYNCED).join(peer)
    }

    fn next_id(&mut self, peer: &str) -> u32 {
        if let Some(&n) = self.progress.get(peer) {
            return n;
        }
        let n = std::fs::read_to_string(self.synced_file(peer)).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
        self.progress.insert(peer.to_string(), n);
        n
    }

    /// The other instances: real directories (not symlinks) with a real
    /// `queue/` directory, sorted by name.
    pub fn peers(&self) -> Vec<String> {
        layout::instance_dirs(&self.sync_dir)
            .unwrap_or_default()
            .into_iter()
            .filter(|(name, dir)| {
                *name != self.me && std::fs::symlink_metadata(dir.join(layout::QUEUE)).is_ok_and(|m| m.is_dir())
            })
            .map(|(name, _)| name)
            .collect()
    }

    /// Scans every peer for entries not looked at yet. Call [`Importer::commit`]
    /// once they have run, so a crash in between re-offers them.
    pub fn collect(&mut self) -> Vec<Candidate> {
        let mut out = Vec::new();
        let mut found_new = false;
        let now = SystemTime::now();
        for peer in self.peers() {
            let start = self.next_id(&peer);
            let queue = self.sync_dir.join(&peer).join(layout::QUEUE);
            let entries: Vec<(u32, String)> =
                layout::list_entries(&queue).into_iter().filter(|(id, _)| *id >= start).collect();
            let mut next = start;
            for (id, name) in entries {
                let path = queue.join(&name);
                let Ok(meta) = std::fs::symlink_metadata(&path) else {
                    continue;
                };
                if meta.file_type().is_symlink() || !meta.is_file() {
                    next = id + 1;
                    continue;
                }
                // A file still being written: stop here, retry next round.
                if meta.modified().ok().and_then(|m| now.duration_since(m).ok()).is_none_or(|age| age < SETTLE) {
                    break;
                }
                next = id + 1;
                self.seen += 1;
                found_new = true;
                // Entries a peer imported itself came from elsewhere in the
                // sync dir; their original is imported from its finder.
                if layout::name_field(&name, "sync").is_some() {
                    continue;
                }
                if let Some(data) = read_regular(&path, self.max_len) {
                    out.push(Candidate { peer: peer.clone(), id, data });
                }
            }
            if next != start {
                self.progress.insert(peer.clone(), next);
                self.pending.push((peer, next));
            }
        }
        self.interval = if found_new { MIN_INTERVAL } else { (self.interval * 2).min(MAX_INTERVAL) };
        self.next_due = Instant::now() + self.interval;
        out
    }

    /// Stores the progress of the last [`Importer::collect`] in `.synced/`.
    pub fn commit(&mut self) -> Result<()> {
        for (peer, next) in std::mem::take(&mut self.pending) {
            layout::write_atomic(&self.synced_file(&peer), next.to_string().as_bytes())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn old_file(path: &Path, data: &[u8]) {
        std::fs::write(path, data).unwrap();
        let past = SystemTime::now() - Duration::from_secs(10);
        std::fs::File::options().write(true).open(path).unwrap().set_modified(past).unwrap();
    }

    #[test]
    fn imports_new_entries_once_and_skips_hostile_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let sync = tmp.path();
        for d in ["me/.synced", "peer/queue", "evil/queue"] {
            std::fs::create_dir_all(sync.join(d)).unwrap();
        }
        let q = sync.join("peer/queue");
        old_file(&q.join("id:000000,time:0,execs:0,orig:a"), b"first");
        old_file(&q.join("id:000001,src:000000,op:havoc"), b"second");
        old_file(&q.join("id:000002,sync:other,src:000001"), b"imported by peer");
        old_file(&q.join("not-an-entry"), b"junk");
        old_file(&q.join("id:000003,empty"), b"");
        std::os::unix::fs::symlink("/etc/passwd", q.join("id:000004,link")).unwrap();
        old_file(&q.join("id:000005,big"), &[0u8; 100]);
        // A peer that is a symlink to somewhere else entirely.
        std::os::unix::fs::symlink(sync.join("peer"), sync.join("linked")).unwrap();
        old_file(&sync.join("evil/queue/id:000000,x"), b"evil but valid");

        let mut imp = Importer::new(sync, "me");
        imp.max_len = 50;
        let got: Vec<(String, u32, Vec<u8>)> = imp.collect().into_iter().map(|c| (c.peer, c.id, c.data)).collect();
        assert!(!sync.join("me/.synced/peer").exists(), "progress is stored on commit");
        imp.commit().unwrap();
        assert_eq!(
            got,
            vec![
                ("evil".to_string(), 0, b"evil but valid".to_vec()),
                ("peer".to_string(), 0, b"first".to_vec()),
                ("peer".to_string(), 1, b"second".to_vec()),
            ]
        );
        assert_eq!(std::fs::read_to_string(sync.join("me/.synced/peer")).unwrap(), "6");

        // Nothing twice, also for a new importer reading .synced.
        old_file(&q.join("id:000006,src:000001"), b"third");
        let mut again = Importer::new(sync, "me");
        let got: Vec<u32> = again.collect().into_iter().map(|c| c.id).collect();
        assert_eq!(got, vec![6]);
    }

    #[test]
    fn fresh_files_wait_for_the_next_round() {
        let tmp = tempfile::tempdir().unwrap();
        let sync = tmp.path();
        std::fs::create_dir_all(sync.join("peer/queue")).unwrap();
        std::fs::create_dir_all(sync.join("me/.synced")).unwrap();
        std::fs::write(sync.join("peer/queue/id:000000,new"), b"being written").unwrap();
        let mut imp = Importer::new(sync, "me");
        assert!(imp.collect().is_empty());
        imp.commit().unwrap();
        assert!(!sync.join("me/.synced/peer").exists());
    }
}
