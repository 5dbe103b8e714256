//! Crash triage: replay every crash and hang file of a sync directory (ours,
//! AFL++'s, copies from other hosts) and group them into bugs by
//! [`signature::Signature`]. Used by `cargo rfuzz triage` and by the
//! end-of-run summary of `run` and `fuzz`, which reports bugs rather than
//! files and fails only on crashes that still reproduce.

pub mod frames;
pub mod replay;
pub mod signature;

use crate::report;
use crate::sync::layout;
use anyhow::Result;
use replay::{Replay, Replayer};
use serde::Serialize;
use signature::Signature;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A file of an instance's `crashes/` or `hangs/`.
#[derive(Debug, Clone, Serialize)]
pub struct CrashFile {
    /// Its path.
    pub path: PathBuf,
    /// The instance directory it is in.
    pub instance: String,
    /// From `hangs/` rather than `crashes/`.
    pub hang: bool,
    /// Size in bytes.
    pub size: u64,
    /// Modification time (unix seconds): when it was saved.
    pub saved: u64,
}

/// The crash files (and with `hangs`, hang files) of every instance of a
/// sync directory, in instance and id order.
pub fn collect(sync_dir: &Path, hangs: bool) -> Vec<CrashFile> {
    let mut out = Vec::new();
    for (id, _) in layout::instance_dirs(sync_dir).unwrap_or_default() {
        let dirs: &[(&str, bool)] =
            if hangs { &[(layout::CRASHES, false), (layout::HANGS, true)] } else { &[(layout::CRASHES, false)] };
        for &(sub, hang) in dirs {
            let dir = sync_dir.join(&id).join(sub);
            for (_, name) in layout::list_entries(&dir) {
                let path = dir.join(name);
                let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
                let saved = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_secs());
                out.push(CrashFile { path, instance: id.clone(), hang, size: meta.len(), saved });
            }
        }
    }
    out
}

/// One bug: the crash files that share a signature.
#[derive(Debug, Clone, Serialize)]
pub struct Bug {
    /// Short id (hash of the signature).
    pub id: String,
    /// Its signature.
    pub signature: Signature,
    /// The files that reproduce it, smallest first.
    pub files: Vec<PathBuf>,
    /// Instances that saved one.
    pub instances: Vec<String>,
    /// When the first of them was saved (unix seconds).
    pub first_seen: u64,
    /// The smallest reproducer.
    pub smallest: PathBuf,
    /// Its size in bytes.
    pub smallest_size: u64,
    /// A minimized reproducer written by `triage --minimize`.
    pub minimized: Option<PathBuf>,
    /// Its size in bytes.
    pub minimized_size: Option<u64>,
}

/// Bugs of a set of crash files.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Files replayed.
    pub files: usize,
    /// Bugs, in the order they were first seen.
    pub bugs: Vec<Bug>,
    /// Files that ran cleanly (or no longer hang).
    pub not_reproducing: Vec<PathBuf>,
    /// Files that could not be replayed, with why.
    pub errors: Vec<(PathBuf, String)>,
}

/// Replays `files` (each with the replayer `replayer_for` picks) on `jobs`
/// threads and groups them into bugs.
pub fn triage<'a>(
    files: &[CrashFile],
    replayer_for: &dyn Fn(&CrashFile) -> &'a Replayer,
    jobs: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> Report {
    let work: Vec<(&Replayer, &Path)> = files.iter().map(|f| (replayer_for(f), f.path.as_path())).collect();
    let replays = replay::replay_all(&work, jobs, progress);
    group(files, replays)
}

/// Groups replayed files into bugs.
pub fn group(files: &[CrashFile], replays: Vec<Result<Replay>>) -> Report {
    let mut report = Report { files: files.len(), ..Report::default() };
    let mut by_key: BTreeMap<String, (Signature, Vec<&CrashFile>)> = BTreeMap::new();
    for (f, r) in files.iter().zip(replays) {
        match r {
            Err(e) => report.errors.push((f.path.clone(), format!("{e:#}"))),
            Ok(Replay { signature: Some(sig), .. }) => {
                by_key.entry(sig.key()).or_insert_with(|| (sig, Vec::new())).1.push(f);
            }
            Ok(_) => report.not_reproducing.push(f.path.clone()),
        }
    }
    for (_, (signature, mut members)) in by_key {
        members.sort_by(|a, b| (a.size, &a.path).cmp(&(b.size, &b.path)));
        let instances: BTreeSet<String> = members.iter().map(|f| f.instance.clone()).collect();
        report.bugs.push(Bug {
            id: signature.id(),
            first_seen: members.iter().map(|f| f.saved).min().unwrap_or(0),
            smallest: members[0].path.clone(),
            smallest_size: members[0].size,
            files: members.iter().map(|f| f.path.clone()).collect(),
            instances: instances.into_iter().collect(),
            minimized: None,
            minimized_size: None,
            signature,
        });
    }
    report.bugs.sort_by(|a, b| (a.first_seen, &a.id).cmp(&(b.first_seen, &b.id)));
    report
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The end of `s` in at most `chars` characters (a location's line and
/// column matter more than its directory).
fn short_left(s: &str, chars: usize) -> String {
    let n = s.chars().count();
    if n <= chars { s.to_string() } else { format!("…{}", s.chars().skip(n - chars + 1).collect::<String>()) }
}

fn short(s: &str, chars: usize) -> String {
    if s.chars().count() <= chars {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(chars - 1).collect::<String>())
    }
}

/// Where a bug is: a panic's location, else its first frame.
fn location(sig: &Signature) -> String {
    sig.location.clone().or_else(|| sig.frames.first().cloned()).unwrap_or_else(|| "-".into())
}

/// The triage table for a terminal: one row per bug.
pub fn render_text(r: &Report) -> String {
    let now = unix_now();
    let mut out = format!(
        "{} replayed: {}, {} no longer crashing{}\n",
        plural(r.files, "file", "files"),
        plural(r.bugs.len(), "bug", "bugs"),
        r.not_reproducing.len(),
        if r.errors.is_empty() { String::new() } else { format!(", {} failed to run", r.errors.len()) }
    );
    if !r.bugs.is_empty() {
        out.push_str(&format!(
            "\n{:<8}  {:<14}  {:<32}  {:<30}  {:>5}  {:<12}  {:<12}  SMALLEST\n",
            "BUG", "KIND", "LOCATION", "MESSAGE", "FILES", "INSTANCES", "FIRST SEEN"
        ));
    }
    for b in &r.bugs {
        let smallest = match (&b.minimized, b.minimized_size) {
            (Some(m), Some(n)) => {
                format!("{} ({} bytes; minimized: {}, {} bytes)", b.smallest.display(), b.smallest_size, m.display(), n)
            }
            _ => format!("{} ({} bytes)", b.smallest.display(), b.smallest_size),
        };
        out.push_str(&format!(
            "{:<8}  {:<14}  {:<32}  {:<30}  {:>5}  {:<12}  {:<12}  {}\n",
            b.id,
            short(b.signature.kind.name(), 14),
            short_left(&location(&b.signature), 32),
            short(&b.signature.message, 30),
            b.files.len(),
            short(&b.instances.join(","), 12),
            short(&report::ago(now, b.first_seen), 12),
            smallest
        ));
    }
    if !r.not_reproducing.is_empty() {
        out.push_str("\nno longer crashing (fixed, or flaky):\n");
        for p in &r.not_reproducing {
            out.push_str(&format!("  {}\n", p.display()));
        }
    }
    for (p, e) in &r.errors {
        out.push_str(&format!("error: failed to replay {}: {e}\n", p.display()));
    }
    out
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The triage table in Markdown (for a CI job summary).
pub fn render_markdown(r: &Report) -> String {
    let mut out = format!(
        "### Crash triage: {}\n\n{} replayed, {} no longer crashing.\n\n",
        plural(r.bugs.len(), "bug", "bugs"),
        plural(r.files, "file", "files"),
        r.not_reproducing.len()
    );
    if !r.bugs.is_empty() {
        out.push_str("| bug | kind | location | message | files | instances | smallest reproducer |\n");
        out.push_str("|---|---|---|---|---:|---|---|\n");
        for b in &r.bugs {
            let name = b.minimized.as_ref().unwrap_or(&b.smallest);
            let size = b.minimized_size.unwrap_or(b.smallest_size);
            out.push_str(&format!(
                "| `{}` | {} | `{}` | {} | {} | {} | `{}` ({} bytes) |\n",
                b.id,
                md_cell(b.signature.kind.name()),
                md_cell(&location(&b.signature)),
                md_cell(&short(&b.signature.message, 80)),
                b.files.len(),
                md_cell(&b.instances.join(", ")),
                md_cell(&name.file_name().unwrap_or_default().to_string_lossy()),
                size
            ));
        }
    }
    out
}

/// The crash files of a sync directory now: taken before a run, so the
/// summary after it can tell files of this run from older ones.
pub fn crash_paths(sync_dir: &Path) -> BTreeSet<PathBuf> {
    collect(sync_dir, false).into_iter().map(|f| f.path).collect()
}

/// What a fuzzing run's end-of-run summary found.
#[derive(Debug, Clone, Default)]
pub struct EndOfRun {
    /// Crash files saved by this run.
    pub new_files: usize,
    /// Crash files of earlier runs that still crash.
    pub old_reproducing: usize,
    /// Crash files of earlier runs that no longer crash (fixed since).
    pub fixed: Vec<PathBuf>,
    /// The summary for the terminal.
    pub text: String,
}

impl EndOfRun {
    /// Whether the run should exit 1: a crash saved now, or an old one that
    /// still reproduces.
    pub fn failed(&self) -> bool {
        self.new_files > 0 || self.old_reproducing > 0
    }
}

/// Replays crash `files` (of a sync directory, or of one instance) after a
/// run and summarises them as bugs. `before` holds the files from earlier
/// runs; `repro_for` gives the command that reproduces a file, if known.
pub fn end_of_run<'a>(
    files: Vec<CrashFile>,
    before: &BTreeSet<PathBuf>,
    replayer_for: &dyn Fn(&CrashFile) -> &'a Replayer,
    repro_for: &dyn Fn(&CrashFile) -> Option<String>,
) -> EndOfRun {
    if files.is_empty() {
        return EndOfRun::default();
    }
    let report = triage(&files, replayer_for, replay::default_jobs(), &|_| {});
    let is_old = |p: &Path| before.contains(p);
    let new_files = files.iter().filter(|f| !is_old(&f.path)).count();
    let old_reproducing = report.bugs.iter().flat_map(|b| &b.files).filter(|p| is_old(p)).count();
    let fixed: Vec<PathBuf> = report.not_reproducing.iter().filter(|p| is_old(p)).cloned().collect();
    let mut text = String::new();
    let crashing: usize = report.bugs.iter().map(|b| b.files.len()).sum();
    if !report.bugs.is_empty() {
        text.push_str(&format!(
            "{}, {}:\n",
            plural(crashing, "crash file", "crash files"),
            plural(report.bugs.len(), "bug", "bugs")
        ));
        for b in &report.bugs {
            let old = b.files.iter().filter(|p| is_old(p)).count();
            let when = match (old, b.files.len() - old) {
                (0, _) => "new".to_string(),
                (_, 0) => "from an earlier run, still reproduces".to_string(),
                (o, n) => format!("{n} new, {o} from earlier runs"),
            };
            text.push_str(&format!(
                "  {} ({}, {}; {})\n    smallest reproducer: {} ({} bytes)\n",
                b.signature.describe(),
                plural(b.files.len(), "file", "files"),
                b.instances.join(" "),
                when,
                b.smallest.display(),
                b.smallest_size
            ));
            let file = files.iter().find(|f| f.path == b.smallest);
            if let Some(cmd) = file.and_then(repro_for) {
                text.push_str(&format!("    Reproduce with: {cmd}\n"));
            }
        }
    }
    let flaky: Vec<&PathBuf> = report.not_reproducing.iter().filter(|p| !is_old(p)).collect();
    if !flaky.is_empty() {
        text.push_str(&format!(
            "{} saved by this run did not crash when replayed alone (flaky, or state from earlier inputs):\n",
            plural(flaky.len(), "crash file", "crash files")
        ));
        for p in flaky {
            text.push_str(&format!("  {}\n", p.display()));
        }
    }
    if !fixed.is_empty() {
        text.push_str(&format!(
            "{} from earlier runs no longer reproduce{} (fixed; delete them or keep them as regression inputs):\n",
            plural(fixed.len(), "crash file", "crash files"),
            if fixed.len() == 1 { "s" } else { "" }
        ));
        for p in &fixed {
            text.push_str(&format!("  {}\n", p.display()));
        }
    }
    for (p, e) in &report.errors {
        text.push_str(&format!("error: failed to replay {}: {e}\n", p.display()));
    }
    // A file that could not be replayed counts as still crashing: never
    // pass a run on a crash nobody looked at.
    let unreplayed_old = report.errors.iter().filter(|(p, _)| is_old(p)).count();
    EndOfRun { new_files, old_reproducing: old_reproducing + unreplayed_old, fixed, text }
}

#[cfg(test)]
mod tests {
    use super::*;
    use signature::{Ending, Kind};

    fn file(path: &str, instance: &str, size: u64, saved: u64) -> CrashFile {
        CrashFile { path: path.into(), instance: instance.into(), hang: false, size, saved }
    }

    fn panic_at(loc: &str) -> Result<Replay> {
        let stderr = format!("panicked at {loc}:\nboom\n");
        Ok(Replay {
            ending: Ending::Signaled(6),
            signature: Signature::from_replay(Ending::Signaled(6), &stderr),
            stderr,
        })
    }

    #[test]
    fn files_group_by_signature_with_counts_instances_and_smallest() {
        let files = vec![
            file("/s/main/crashes/id:000000", "main", 30, 20),
            file("/s/main/crashes/id:000001", "main", 9, 21),
            file("/s/s01/crashes/id:000000", "s01", 12, 10),
            file("/s/s01/crashes/id:000001", "s01", 5, 30),
            file("/s/afl/crashes/id:000000", "afl", 5, 40),
        ];
        let clean = Ok(Replay { ending: Ending::Exited(0), signature: None, stderr: String::new() });
        let replays =
            vec![panic_at("a.rs:1:1"), panic_at("a.rs:1:1"), panic_at("b.rs:2:2"), clean, panic_at("b.rs:2:2")];
        let r = group(&files, replays);
        assert_eq!(r.bugs.len(), 2);
        let b = &r.bugs[0];
        assert_eq!((b.signature.location.as_deref(), b.files.len(), b.first_seen), (Some("b.rs:2:2"), 2, 10));
        assert_eq!(b.instances, vec!["afl", "s01"]);
        assert_eq!(b.smallest, PathBuf::from("/s/afl/crashes/id:000000"));
        assert_eq!(r.bugs[1].smallest_size, 9);
        assert_eq!(r.not_reproducing, vec![PathBuf::from("/s/s01/crashes/id:000001")]);
        assert_eq!(r.bugs[0].signature.kind, Kind::Panic);
        let md = render_markdown(&r);
        assert!(md.contains("| `b.rs:2:2` |") && md.contains("Crash triage: 2 bugs"), "{md}");
        assert!(render_text(&r).contains("5 files replayed: 2 bugs, 1 no longer crashing"));
    }
}
