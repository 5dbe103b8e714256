//! The on-disk format of a sync directory, AFL++-compatible:
//!
//! ```text
//! sync_dir/<id>/queue/id:000042,src:000017,time:1234,execs:98765,op:havoc,rep:4,+cov
//! sync_dir/<id>/queue/id:000043,sync:s02,src:000008
//! sync_dir/<id>/crashes/id:000000,sig:06,src:000003,time:..,execs:..,op:havoc,rep:2
//! sync_dir/<id>/hangs/id:000000,src:...
//! sync_dir/<id>/.synced/<peer>     next peer id to import (decimal)
//! sync_dir/<id>/fuzzer_stats       "key : value" lines (tmp + rename)
//! sync_dir/<id>/plot_data, fuzzer_setup, cmdline, target_hash, is_main_node
//! sync_dir/<id>/.rfuzz.lock        flock'ed by the live instance, holds its pid
//! sync_dir/<id>/.rfuzz-remote      a copy made by `sync-remote`: the host it came from
//! sync_dir/.rfuzz-remote-XXXXXX/   `sync-remote`'s staging area while it unpacks
//! sync_dir/.rfuzz-sync-remote.log  output of the remote sync that `run --remote-sync` starts
//! ```
//!
//! This module is the single place that knows these names; the engine, the
//! importer, the supervisor and `sync-status` all go through it.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Queue directory.
pub const QUEUE: &str = "queue";
/// Crash directory.
pub const CRASHES: &str = "crashes";
/// Hang directory.
pub const HANGS: &str = "hangs";
/// Import progress per peer.
pub const SYNCED: &str = ".synced";
/// Statistics file.
pub const FUZZER_STATS: &str = "fuzzer_stats";
/// Plot data.
pub const PLOT_DATA: &str = "plot_data";
/// Present in the main instance's directory.
pub const IS_MAIN_NODE: &str = "is_main_node";
/// Setup: environment and command line (and our host marker).
pub const FUZZER_SETUP: &str = "fuzzer_setup";
/// The target's command line, one argument per line.
pub const CMDLINE: &str = "cmdline";
/// Hash of the target binary.
pub const TARGET_HASH: &str = "target_hash";
/// Lock held by the live instance.
pub const LOCK: &str = ".rfuzz.lock";
/// Test-case file for targets that read a file or stdin.
pub const CUR_INPUT: &str = ".cur_input";
/// `README.txt` in crashes/ and hangs/.
pub const README: &str = "README.txt";
/// In an instance directory that `sync-remote` copied from another host (only
/// its `queue/` travels): the name of the host it runs on. Such a copy is
/// never exported again, and `sync-status` shows it as remote.
pub const REMOTE_ORIGIN: &str = ".rfuzz-remote";
/// Prefix of the staging directory `sync-remote` unpacks into before it links
/// entries into place (hidden: instances and `sync-status` skip it).
pub const REMOTE_STAGING_PREFIX: &str = ".rfuzz-remote-";
/// Log of the remote sync that `run --remote-sync` runs beside the instances.
pub const REMOTE_LOG: &str = ".rfuzz-sync-remote.log";
/// Environment variable naming this machine in the `host:` markers (default:
/// its host name), for machines whose host names are not unique.
pub const HOST_ENV: &str = "RFUZZ_HOST";

/// Checks an instance id: it names a directory and appears in file names.
pub fn validate_instance_id(id: &str) -> std::result::Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 32
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !id.starts_with('.');
    if ok { Ok(()) } else { Err(format!("invalid instance id `{id}`: use 1-32 letters, digits, `_` or `-`")) }
}

/// How a queue entry came to be, for its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A seed from `-i`, with its original file name.
    Seed {
        /// Original name (sanitised).
        orig: String,
    },
    /// Found by mutating entries `src` with operator `op` (`rep` stacked edits).
    Mutation {
        /// Parent ids (two for splices).
        src: Vec<u32>,
        /// Operator name.
        op: String,
        /// Stacked edits (havoc), 0 if not applicable.
        rep: u32,
    },
    /// Imported from peer `peer`'s entry `src`.
    Sync {
        /// Peer instance id.
        peer: String,
        /// Its entry id.
        src: u32,
    },
}

/// Keeps only characters that are safe inside an AFL++ entry name.
pub fn sanitize(name: &str) -> String {
    name.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')).take(64).collect()
}

fn src_list(src: &[u32]) -> String {
    src.iter().map(|s| format!("{s:06}")).collect::<Vec<_>>().join("+")
}

/// Name of a queue entry.
pub fn queue_name(id: u32, origin: &Origin, time_ms: u64, execs: u64, new_cov: bool) -> String {
    let mut n = match origin {
        Origin::Seed { orig } => format!("id:{id:06},time:0,execs:0,orig:{}", sanitize(orig)),
        Origin::Mutation { src, op, rep } => {
            let mut s = format!("id:{id:06},src:{},time:{time_ms},execs:{execs},op:{op}", src_list(src));
            if *rep > 0 {
                s.push_str(&format!(",rep:{rep}"));
            }
            s
        }
        Origin::Sync { peer, src } => format!("id:{id:06},sync:{},src:{src:06}", sanitize(peer)),
    };
    if new_cov {
        n.push_str(",+cov");
    }
    n
}

/// Name of a crash (`tag` adds our classification, e.g. `oom`).
pub fn crash_name(id: u32, signal: i32, origin: &Origin, time_ms: u64, execs: u64, tag: Option<&str>) -> String {
    let mut n = format!("id:{id:06},sig:{signal:02},{}", origin_fields(origin, time_ms, execs));
    if let Some(t) = tag {
        n.push_str(&format!(",{t}"));
    }
    n
}

/// Name of a hang; `tag` is appended as extra fields (`bug:<8 hex>` or `site:<hex>`).
pub fn hang_name(id: u32, origin: &Origin, time_ms: u64, execs: u64, tag: Option<&str>) -> String {
    let mut n = format!("id:{id:06},{}", origin_fields(origin, time_ms, execs));
    if let Some(t) = tag {
        n.push_str(&format!(",{t}"));
    }
    n
}

fn origin_fields(origin: &Origin, time_ms: u64, execs: u64) -> String {
    match origin {
        Origin::Seed { orig } => format!("time:{time_ms},execs:{execs},orig:{}", sanitize(orig)),
        Origin::Mutation { src, op, rep } => {
            let mut s = format!("src:{},time:{time_ms},execs:{execs},op:{op}", src_list(src));
            if *rep > 0 {
                s.push_str(&format!(",rep:{rep}"));
            }
            s
        }
        Origin::Sync { peer, src } => format!("sync:{},src:{src:06},time:{time_ms},execs:{execs}", sanitize(peer)),
    }
}

/// The id of an entry name (`id:000042,...`, or `id_000042` as AFL++ writes
/// on file systems without colons). `None` for names that do not parse.
pub fn parse_id(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("id:").or_else(|| name.strip_prefix("id_"))?;
    let digits: &str = &rest[..rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len())];
    if digits.is_empty() || digits.len() > 9 {
        return None;
    }
    let end = &rest[digits.len()..];
    if !(end.is_empty() || end.starts_with(',')) {
        return None;
    }
    digits.parse().ok()
}

/// The value of field `key` in an entry name (`sync`, `src`, `op`, ...).
pub fn name_field<'a>(name: &'a str, key: &str) -> Option<&'a str> {
    name.split(',').find_map(|f| f.strip_prefix(key).and_then(|v| v.strip_prefix(':')))
}

/// Writes a file atomically: a temporary name in the same directory, then
/// rename, so readers never see it half-written.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().context("path without a parent")?;
    let tmp =
        dir.join(format!(".tmp.{}.{}", std::process::id(), path.file_name().unwrap_or_default().to_string_lossy()));
    std::fs::write(&tmp, data).with_context(|| format!("failed to write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("failed to rename {} to {}", tmp.display(), path.display()))
}

/// The host named by the `host:` line of a `fuzzer_setup` file's text (AFL++
/// writes none; ours always does).
pub fn setup_host(setup: &str) -> Option<String> {
    setup.lines().find_map(|l| l.strip_prefix("host:")).map(|h| h.trim().to_string()).filter(|h| !h.is_empty())
}

/// The origin host of an instance directory that `sync-remote` copied here
/// ([`REMOTE_ORIGIN`]), read without following a symlink.
pub fn remote_origin(instance_dir: &Path) -> Option<String> {
    use std::io::Read;
    let (f, _) = open_regular(&instance_dir.join(REMOTE_ORIGIN))?;
    let mut text = String::new();
    f.take(256).read_to_string(&mut text).ok()?;
    text.lines().next().map(|l| l.trim().to_string()).filter(|l| !l.is_empty())
}

/// Entries of a `queue/`, `crashes/` or `hangs/` directory: regular files
/// (never symlinks) whose names parse as entries, sorted by id. Empty when
/// the directory is missing.
pub fn list_entries(dir: &Path) -> Vec<(u32, String)> {
    let mut out: Vec<(u32, String)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        // DirEntry::file_type does not follow symlinks.
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            parse_id(&name).map(|id| (id, name))
        })
        .collect();
    out.sort();
    out
}

/// Instance directories of a sync dir: real directories (never symlinks)
/// whose names are valid instance ids, hidden ones skipped, sorted by name.
pub fn instance_dirs(sync_dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(sync_dir)? {
        let e = e?;
        let Ok(id) = e.file_name().into_string() else { continue };
        if id.starts_with('.') || validate_instance_id(&id).is_err() {
            continue;
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.push((id, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Opens a regular file for reading without following a symlink or
/// blocking on a FIFO; `None` for anything else (or when it is missing).
pub fn open_regular(path: &Path) -> Option<(File, std::fs::Metadata)> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path).ok()?;
    let meta = f.metadata().ok()?;
    meta.is_file().then_some((f, meta))
}

/// Reads a regular file (see [`open_regular`]) of at most `max` bytes;
/// `None` when it is larger, whatever its metadata claimed.
pub fn read_capped(path: &Path, max: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    let (f, meta) = open_regular(path)?;
    if meta.len() > max {
        return None;
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    f.take(max + 1).read_to_end(&mut data).ok()?;
    (data.len() as u64 <= max).then_some(data)
}

/// FNV-1a over `parts` (each followed by a zero byte, so the boundaries
/// count): stable content hashes for file names and cache keys.
pub fn fnv1a<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.iter().chain([0u8].iter()) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100_0000_01b3);
        }
    }
    h
}

/// Reads a `key : value` stats file (fuzzer_stats).
pub fn read_stats(path: &Path) -> Option<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(
        text.lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .filter(|(k, _)| !k.is_empty())
            .collect(),
    )
}

/// The instance directory `sync_dir/<id>`.
pub fn instance_dir(sync_dir: &Path, id: &str) -> PathBuf {
    sync_dir.join(id)
}

/// Held by a live instance for its whole life: a second process for the same
/// id fails to take it. The kernel drops the lock when the process dies, so a
/// killed instance never leaves a stale lock.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

/// Why the lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it; its pid as it wrote it.
    Held(Option<u32>),
    /// An I/O error.
    Io(std::io::Error),
}

impl InstanceLock {
    /// Takes the lock of an instance directory and records our pid in it.
    pub fn acquire(dir: &Path) -> std::result::Result<InstanceLock, LockError> {
        let path = dir.join(LOCK);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(LockError::Io)?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let pid = std::fs::read_to_string(&path).ok().and_then(|s| s.trim().parse().ok());
            return Err(LockError::Held(pid));
        }
        file.set_len(0).map_err(LockError::Io)?;
        write!(file, "{}", std::process::id()).map_err(LockError::Io)?;
        Ok(InstanceLock { _file: file })
    }

    /// Whether some live process holds the lock of `dir` (without taking it
    /// for long: used by sync-status and the supervisor).
    pub fn is_held(dir: &Path) -> bool {
        let Ok(file) = File::open(dir.join(LOCK)) else {
            return false;
        };
        // SAFETY: flock on a descriptor we own; released at once if we got it.
        unsafe {
            if libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) == 0 {
                libc::flock(file.as_raw_fd(), libc::LOCK_UN);
                false
            } else {
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_afl_plus_plus() {
        let m = Origin::Mutation { src: vec![17], op: "havoc".into(), rep: 4 };
        assert_eq!(
            queue_name(42, &m, 1234, 98765, true),
            "id:000042,src:000017,time:1234,execs:98765,op:havoc,rep:4,+cov"
        );
        let s = Origin::Sync { peer: "s02".into(), src: 8 };
        assert_eq!(queue_name(43, &s, 0, 0, false), "id:000043,sync:s02,src:000008");
        let seed = Origin::Seed { orig: "my seed,1.json".into() };
        assert_eq!(queue_name(0, &seed, 0, 0, false), "id:000000,time:0,execs:0,orig:myseed1.json");
        assert_eq!(crash_name(0, 6, &m, 10, 20, None), "id:000000,sig:06,src:000017,time:10,execs:20,op:havoc,rep:4");
        let splice = Origin::Mutation { src: vec![1, 2], op: "splice".into(), rep: 8 };
        assert!(queue_name(1, &splice, 0, 0, false).contains("src:000001+000002"));
    }

    #[test]
    fn ids_parse_strictly() {
        assert_eq!(parse_id("id:000042,src:000017"), Some(42));
        assert_eq!(parse_id("id_000007"), Some(7));
        assert_eq!(parse_id("id:12"), Some(12));
        assert_eq!(parse_id("id:x"), None);
        assert_eq!(parse_id("id:12abc"), None);
        assert_eq!(parse_id("README.txt"), None);
        assert_eq!(parse_id(".id:000001"), None);
        assert_eq!(name_field("id:000043,sync:s02,src:000008", "sync"), Some("s02"));
        assert_eq!(name_field("id:000043,sync:s02,src:000008", "op"), None);
    }

    #[test]
    fn instance_ids_are_checked() {
        assert!(validate_instance_id("main").is_ok());
        assert!(validate_instance_id("s01").is_ok());
        assert!(validate_instance_id("../x").is_err());
        assert!(validate_instance_id("").is_err());
        assert!(validate_instance_id(".hidden").is_err());
    }

    #[test]
    fn lock_is_exclusive_and_released_on_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let l = InstanceLock::acquire(tmp.path()).unwrap();
        assert!(InstanceLock::is_held(tmp.path()));
        assert!(matches!(InstanceLock::acquire(tmp.path()), Err(LockError::Held(Some(p))) if p == std::process::id()));
        drop(l);
        assert!(!InstanceLock::is_held(tmp.path()));
        assert!(InstanceLock::acquire(tmp.path()).is_ok());
    }
}
