//! The inputs of a coverage report: corpus directories, every instance's
//! queue and, when asked, its crashes and hangs; read without following
//! symlinks, capped in size, de-duplicated by content and copied into a
//! private staging directory, so the sync directory is only ever read and a
//! file changed under us cannot change what the target runs.

use crate::sync::layout;
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Largest input read (larger files are skipped and counted): far above
/// what the fuzzer writes (`--max-len`, 1 MiB by default).
pub const MAX_INPUT: u64 = 16 << 20;

/// Where an input came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A corpus directory (`-i`, `fuzz/corpus/<target>/`).
    Corpus,
    /// An instance's `queue/`.
    Queue,
    /// An instance's `crashes/` (with `--crashes`).
    Crash,
    /// An instance's `hangs/` (with `--crashes`).
    Hang,
}

/// One distinct input, staged.
#[derive(Debug, Clone)]
pub struct Input {
    /// Its staged copy.
    pub staged: PathBuf,
    /// The file it was read from (the first one with this content).
    pub origin: PathBuf,
    /// Where that file was.
    pub source: Source,
}

/// What was found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Found {
    /// Files listed (regular files only: symlinks and others are never listed).
    pub files: usize,
    /// Files whose content an earlier file already had.
    pub duplicates: usize,
    /// Files left out: larger than [`MAX_INPUT`], or gone or changed into
    /// something else than a regular file while being read.
    pub unreadable: usize,
}

/// The staged inputs; the staging directory goes when this is dropped.
pub struct Staged {
    /// The distinct inputs, in the order found.
    pub inputs: Vec<Input>,
    /// Counts of what was found.
    pub found: Found,
    dir: tempfile::TempDir,
}

impl Staged {
    /// The private staging directory (also a scratch place for replays).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// The files to read: each corpus directory's regular, non-hidden files,
/// then per instance of `sync_dir` for which `instance` holds its queue and,
/// with `crashes`, its crashes and hangs (entries only: names that parse,
/// regular files).
pub fn list(
    sync_dir: Option<&Path>,
    corpus_dirs: &[PathBuf],
    crashes: bool,
    instance: &dyn Fn(&Path) -> bool,
) -> Vec<(PathBuf, Source)> {
    let mut out: Vec<(PathBuf, Source)> = Vec::new();
    for d in corpus_dirs {
        out.extend(crate::minimize::cmin::corpus_files(d).into_iter().map(|p| (p, Source::Corpus)));
    }
    if let Some(s) = sync_dir {
        for (_, dir) in layout::instance_dirs(s).unwrap_or_default().into_iter().filter(|(_, d)| instance(d)) {
            let mut subs = vec![(layout::QUEUE, Source::Queue)];
            if crashes {
                subs.extend([(layout::CRASHES, Source::Crash), (layout::HANGS, Source::Hang)]);
            }
            for (sub, source) in subs {
                let d = dir.join(sub);
                out.extend(layout::list_entries(&d).into_iter().map(|(_, n)| (d.join(n), source)));
            }
        }
    }
    out
}

/// Reads `files` (capped, never through a symlink), keeps the first file of
/// each content and copies it into a new private staging directory.
pub fn stage(files: &[(PathBuf, Source)]) -> Result<Staged> {
    let dir = tempfile::Builder::new()
        .prefix("rfuzz-coverage-")
        .tempdir()
        .context("failed to create a temporary directory")?;
    let mut seen: HashSet<(u64, usize)> = HashSet::new();
    let mut found = Found { files: files.len(), ..Found::default() };
    let mut inputs = Vec::new();
    for (path, source) in files {
        let Some(data) = layout::read_capped(path, MAX_INPUT) else {
            found.unreadable += 1;
            continue;
        };
        if !seen.insert((layout::fnv1a([data.as_slice()]), data.len())) {
            found.duplicates += 1;
            continue;
        }
        let staged = dir.path().join(format!("input-{:06}", inputs.len()));
        std::fs::write(&staged, &data).with_context(|| format!("failed to write {}", staged.display()))?;
        inputs.push(Input { staged, origin: path.clone(), source: *source });
    }
    Ok(Staged { inputs, found, dir })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_symlinks_and_huge_files_are_left_out() {
        let tmp = tempfile::tempdir().unwrap();
        let sync = tmp.path().join("sync");
        let q = sync.join("main").join(layout::QUEUE);
        let c = sync.join("main").join(layout::CRASHES);
        std::fs::create_dir_all(&q).unwrap();
        std::fs::create_dir_all(&c).unwrap();
        std::fs::write(q.join("id:000000,orig:a"), b"same").unwrap();
        std::fs::write(q.join("id:000001,src:000000"), b"same").unwrap();
        std::fs::write(q.join("id:000002,src:000000"), b"other").unwrap();
        std::fs::write(q.join("not-an-entry"), b"skipped").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", q.join("id:000003,src:000000")).unwrap();
        std::fs::write(c.join("id:000000,sig:06"), b"crash").unwrap();
        let corpus = tmp.path().join("corpus");
        std::fs::create_dir_all(&corpus).unwrap();
        std::fs::write(corpus.join("seed"), b"other").unwrap();
        std::fs::write(corpus.join(".hidden"), b"hidden").unwrap();
        let big = std::fs::File::create(corpus.join("big")).unwrap();
        big.set_len(MAX_INPUT + 1).unwrap();

        let without = list(Some(&sync), std::slice::from_ref(&corpus), false, &|_| true);
        assert_eq!(without.len(), 5, "big, seed and three queue entries: {without:?}");
        let staged = stage(&without).unwrap();
        assert_eq!(staged.found.unreadable, 1, "the file over the cap");
        assert_eq!(staged.found.duplicates, 2);
        let contents: Vec<Vec<u8>> = staged.inputs.iter().map(|i| std::fs::read(&i.staged).unwrap()).collect();
        assert_eq!(contents, vec![b"other".to_vec(), b"same".to_vec()]);
        assert_eq!(staged.inputs[0].source, Source::Corpus);

        let with = list(Some(&sync), &[], true, &|_| true);
        assert!(list(Some(&sync), &[], true, &|_| false).is_empty(), "instances of other targets are left out");
        assert!(with.iter().any(|(p, s)| *s == Source::Crash && p.ends_with("id:000000,sig:06")));
    }
}
