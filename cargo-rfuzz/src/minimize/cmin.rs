//! `cmin`: reduce a corpus to a smallest set of inputs with the same
//! coverage, afl-cmin's way: every input runs once; for each (edge,
//! hit-count bucket) tuple the smallest input that has it is the candidate;
//! going through the tuples in order, the candidate of each tuple not yet
//! covered joins the result, covering all of its tuples.
//!
//! Every input runs twice; tuples that differ between the two runs of any
//! input are variable and not counted (hash seeds, caches, state a
//! persistent child keeps), so cmin of such a target is repeatable.
//!
//! The result is written into a new directory beside the destination, files
//! named by a hash of their content, and exchanged with the destination in
//! one `renameat2(RENAME_EXCHANGE)`: until then the destination is untouched,
//! so a failure, Ctrl-C or SIGKILL leaves it as it was.

use super::{CoverageRunner, tuples};
use crate::engine::executor::ExitKind;
use crate::sync::layout;
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Infix of the staging directory's name: `.<dest>.rfuzz-cmin-<pid>`.
const STAGING_INFIX: &str = ".rfuzz-cmin-";

/// What a cmin did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    /// Input files read (before removing duplicates).
    pub files_before: usize,
    /// Their total size.
    pub bytes_before: u64,
    /// Inputs that crashed or hung (left out).
    pub skipped: usize,
    /// Coverage tuples of the inputs kept.
    pub tuples: usize,
    /// Variable tuples (not counted).
    pub variable: usize,
    /// Files in the result.
    pub files_after: usize,
    /// Their total size.
    pub bytes_after: u64,
    /// Whether the destination changed (false: it already was the result).
    pub changed: bool,
}

/// The input files of a cmin: every instance's queue in `sync_dir` and the
/// regular, non-hidden files of `dirs`.
pub fn gather(sync_dir: Option<&Path>, dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(s) = sync_dir {
        for (id, _) in layout::instance_dirs(s).unwrap_or_default() {
            let q = s.join(&id).join(layout::QUEUE);
            out.extend(layout::list_entries(&q).into_iter().map(|(_, n)| q.join(n)));
        }
    }
    for d in dirs {
        out.extend(corpus_files(d));
    }
    out
}

/// Regular, non-hidden files of a corpus directory, sorted by name.
pub fn corpus_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

/// A file's name in the result: 16 hex digits of a hash of its content.
pub fn content_name(data: &[u8]) -> String {
    format!("{:016x}", layout::fnv1a([data]))
}

fn staging_prefix(dest: &Path) -> String {
    format!(".{}{STAGING_INFIX}", dest.file_name().unwrap_or_default().to_string_lossy())
}

/// Removes staging directories of earlier cmins of `dest` that were killed.
fn remove_stale_staging(dest: &Path) {
    let (Some(parent), prefix) = (dest.parent(), staging_prefix(dest)) else { return };
    for e in std::fs::read_dir(parent).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(&prefix).and_then(|p| p.parse::<i32>().ok()) else { continue };
        // SAFETY: signal 0 only checks whether the process exists.
        let alive = pid > 0 && unsafe { libc::kill(pid, 0) } == 0;
        if !alive && std::fs::symlink_metadata(e.path()).is_ok_and(|m| m.is_dir()) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Exchanges two paths atomically (both must exist).
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    let ca = CString::new(a.as_os_str().as_bytes())?;
    let cb = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: two valid NUL-terminated paths; renameat2 reads them only.
    let r = unsafe { libc::renameat2(libc::AT_FDCWD, ca.as_ptr(), libc::AT_FDCWD, cb.as_ptr(), libc::RENAME_EXCHANGE) };
    if r == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// Picks the inputs to keep, afl-cmin's way. `inputs` are (data, tuples).
fn select(inputs: &[(Vec<u8>, Vec<u32>)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..inputs.len()).collect();
    order.sort_by(|&a, &b| (inputs[a].0.len(), &inputs[a].0).cmp(&(inputs[b].0.len(), &inputs[b].0)));
    let mut best: BTreeMap<u32, usize> = BTreeMap::new();
    for &i in &order {
        for &t in &inputs[i].1 {
            best.entry(t).or_insert(i);
        }
    }
    let mut covered: BTreeSet<u32> = BTreeSet::new();
    let mut chosen = Vec::new();
    for (t, &i) in &best {
        if !covered.contains(t) {
            chosen.push(i);
            covered.extend(inputs[i].1.iter().copied());
        }
    }
    chosen.sort_by(|&a, &b| (inputs[a].0.len(), &inputs[a].0).cmp(&(inputs[b].0.len(), &inputs[b].0)));
    chosen
}

/// Runs `files` through `runner` and makes `dest` the smallest set with the
/// same coverage. `progress` gets (done, total).
pub fn cmin(
    runner: &mut CoverageRunner,
    files: &[PathBuf],
    dest: &Path,
    progress: &dyn Fn(usize, usize),
) -> Result<Summary> {
    let parent = dest.parent().context("the destination has no parent directory")?;
    std::fs::create_dir_all(parent).with_context(|| format!("failed to create {}", parent.display()))?;
    remove_stale_staging(dest);
    // Created before anything runs, removed on every error: only a killed
    // cmin leaves it, and the next one removes it.
    let staging = parent.join(format!("{}{}", staging_prefix(dest), std::process::id()));
    std::fs::create_dir(&staging).with_context(|| format!("failed to create {}", staging.display()))?;
    let result = run_and_stage(runner, files, dest, &staging, progress);
    let _ = std::fs::remove_dir_all(&staging);
    result
}

fn run_and_stage(
    runner: &mut CoverageRunner,
    files: &[PathBuf],
    dest: &Path,
    staging: &Path,
    progress: &dyn Fn(usize, usize),
) -> Result<Summary> {
    let mut summary = Summary { files_before: files.len(), ..Summary::default() };
    let mut unique: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for f in files {
        let data = std::fs::read(f).with_context(|| format!("failed to read {}", f.display()))?;
        summary.bytes_before += data.len() as u64;
        if data.len() <= super::MAX_INPUT {
            unique.entry(content_name(&data)).or_insert(data);
        }
    }
    let mut inputs = Vec::new();
    let total = unique.len();
    // Each input runs twice. A tuple that one of the two runs of any input
    // missed is variable (hash seeds, caches, state a persistent child keeps)
    // and is not counted for any input, as AFL++ ignores variable bytes;
    // otherwise every cmin of such a target would see a slightly different
    // coverage and choose a different result.
    let mut variable: BTreeSet<u32> = BTreeSet::new();
    for (n, data) in unique.into_values().enumerate() {
        progress(n + 1, total);
        let (kind, map) = runner.run(&data)?;
        if kind != ExitKind::Ok {
            summary.skipped += 1;
            continue;
        }
        let first: BTreeSet<u32> = tuples(map).into_iter().collect();
        let (again, map) = runner.run(&data)?;
        if again != ExitKind::Ok {
            summary.skipped += 1;
            continue;
        }
        let second: BTreeSet<u32> = tuples(map).into_iter().collect();
        variable.extend(first.symmetric_difference(&second).copied());
        inputs.push((data, first.intersection(&second).copied().collect::<Vec<u32>>()));
    }
    for (_, t) in &mut inputs {
        t.retain(|x| !variable.contains(x));
    }
    summary.variable = variable.len();
    let chosen = select(&inputs);
    let all: BTreeSet<u32> = inputs.iter().flat_map(|(_, t)| t.iter().copied()).collect();
    summary.tuples = all.len();
    let result: BTreeMap<String, &[u8]> =
        chosen.iter().map(|&i| (content_name(&inputs[i].0), inputs[i].0.as_slice())).collect();
    summary.files_after = result.len();
    summary.bytes_after = result.values().map(|d| d.len() as u64).sum();
    // Nothing to do when the destination already is a cmin result of these
    // inputs that is no larger and has the same coverage (what a second cmin
    // finds, even where variable behaviour made the selection differ).
    let current: BTreeMap<String, Vec<u8>> = corpus_files(dest)
        .into_iter()
        .filter_map(|p| Some((p.file_name()?.to_string_lossy().into_owned(), std::fs::read(&p).ok()?)))
        .collect();
    let by_data: BTreeMap<&[u8], &Vec<u32>> = inputs.iter().map(|(d, t)| (d.as_slice(), t)).collect();
    let current_tuples: Option<BTreeSet<u32>> = current
        .iter()
        .map(|(name, data)| (*name == content_name(data)).then(|| by_data.get(data.as_slice())).flatten())
        .try_fold(BTreeSet::new(), |mut acc, t| {
            acc.extend(t?.iter().copied());
            Some(acc)
        });
    let current_bytes: u64 = current.values().map(|d| d.len() as u64).sum();
    if current_tuples.is_some_and(|c| c == all)
        && (current.len(), current_bytes) <= (summary.files_after, summary.bytes_after)
    {
        summary.files_after = current.len();
        summary.bytes_after = current_bytes;
        return Ok(summary);
    }
    for (name, data) in &result {
        let p = staging.join(name);
        std::fs::write(&p, data).with_context(|| format!("failed to write {}", p.display()))?;
    }
    // Durable before it becomes the corpus: one syncfs, not an fsync per
    // file (743 of them took two seconds).
    let dir = std::fs::File::open(staging)?;
    // SAFETY: syncfs on a descriptor we own.
    if unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&dir)) } != 0 {
        return Err(std::io::Error::last_os_error()).context("failed to sync the new corpus to disk");
    }
    if std::fs::symlink_metadata(dest).is_ok() {
        exchange(staging, dest).with_context(|| format!("failed to swap {} into place", dest.display()))?;
    } else {
        std::fs::rename(staging, dest).with_context(|| format!("failed to move {} into place", dest.display()))?;
        std::fs::create_dir(staging)?;
    }
    summary.changed = true;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_smallest_input_per_tuple_and_covers_everything() {
        let inputs = vec![
            (b"abcdef".to_vec(), vec![1, 2, 3]),
            (b"ab".to_vec(), vec![1, 2]),
            (b"x".to_vec(), vec![1]),
            (b"zzz".to_vec(), vec![3]),
            (b"yy".to_vec(), vec![2]),
        ];
        let chosen = select(&inputs);
        let kept: Vec<&[u8]> = chosen.iter().map(|&i| inputs[i].0.as_slice()).collect();
        // "ab" is the smallest with tuple 2 ("yy" sorts after it), "zzz" the only one with 3.
        assert_eq!(kept, vec![&b"x"[..], b"ab", b"zzz"]);
    }

    #[test]
    fn exchange_swaps_two_directories() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        std::fs::write(a.join("1"), "a").unwrap();
        exchange(&a, &b).unwrap();
        assert!(b.join("1").is_file() && !a.join("1").exists());
    }
}
