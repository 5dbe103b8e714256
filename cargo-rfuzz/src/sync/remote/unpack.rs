//! Unpacking queue entries that another host sent, as if it were hostile.
//!
//! The archive comes from a remote `tar`; we read it with the `tar` crate but
//! never let it write anything: each entry is checked and copied by hand.
//! Accepted are regular files at `[./]<id>/queue/<name>` where `<id>` is one
//! of the instances we asked that host for and `<name>` parses as an entry
//! name; directory entries of those paths are ignored; everything else
//! (absolute paths, `..`, links, devices, sparse files, other ids or names)
//! is refused and counted. Data goes to a fresh file in a private staging
//! directory, at most `max_entry` bytes of it (an entry's header size is
//! never trusted, nor used to allocate); at the end the staged files are
//! hard-linked into `<local id>/queue/` in id order, which fails rather than
//! replace a file that exists. A new copy directory is assembled in staging
//! with its [`layout::REMOTE_ORIGIN`] marker and moved into place with
//! `renameat2(RENAME_NOREPLACE)`, so no half-made directory is ever seen.

use super::inventory::syncable_name;
use crate::sync::layout;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where the entries of one remote instance go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Local instance id (the remote id with the host's prefix).
    pub id: String,
    /// The remote host's name, written in the copy's marker.
    pub origin: String,
}

/// What an unpack did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unpacked {
    /// Entries written, per local instance id.
    pub written: BTreeMap<String, u64>,
    /// Entries that already existed here (left alone).
    pub existing: u64,
    /// Entries refused.
    pub refused: u64,
    /// Why, for the first few refused entries.
    pub reasons: Vec<String>,
}

impl Unpacked {
    /// Entries written in total.
    pub fn total_written(&self) -> u64 {
        self.written.values().sum()
    }

    fn refuse(&mut self, path: &str, why: &str) {
        self.refused += 1;
        if self.reasons.len() < 5 {
            let mut p: String = path.chars().map(|c| if c.is_control() { '?' } else { c }).take(80).collect();
            if path.len() > 80 {
                p.push('…');
            }
            self.reasons.push(format!("`{p}`: {why}"));
        }
    }
}

/// Unpacks the entries of some instances of one host into a sync directory.
#[derive(Debug)]
pub struct Unpacker<'a> {
    sync_dir: &'a Path,
    /// Remote instance id → where its entries go.
    map: BTreeMap<String, Destination>,
    max_entry: u64,
}

struct Staged {
    dest: String,
    id: u32,
    name: String,
    file: PathBuf,
}

/// Splits an archive path into `(id, Some(name))` for an entry file,
/// `(id, None)` for the directories `id/` and `id/queue/`.
fn split_path(path: &str) -> Option<(&str, Option<&str>)> {
    let p = path.strip_prefix("./").unwrap_or(path);
    let p = p.strip_suffix('/').unwrap_or(p);
    let parts: Vec<&str> = p.split('/').collect();
    match parts.as_slice() {
        [id] => Some((id, None)),
        [id, q] if *q == layout::QUEUE => Some((id, None)),
        [id, q, name] if *q == layout::QUEUE => Some((id, Some(name))),
        _ => None,
    }
}

impl<'a> Unpacker<'a> {
    /// An unpacker into `sync_dir` for the instances in `map`.
    pub fn new(sync_dir: &'a Path, map: BTreeMap<String, Destination>, max_entry: u64) -> Unpacker<'a> {
        Unpacker { sync_dir, map, max_entry }
    }

    /// Reads a whole archive. Entries received completely are published even
    /// when the archive turns out broken (the error is returned after).
    pub fn unpack(&self, reader: impl Read) -> Result<Unpacked> {
        let staging = tempfile::Builder::new()
            .prefix(layout::REMOTE_STAGING_PREFIX)
            .tempdir_in(self.sync_dir)
            .with_context(|| format!("failed to create a staging directory in {}", self.sync_dir.display()))?;
        let mut report = Unpacked::default();
        let mut staged = Vec::new();
        let read = self.read_entries(reader, staging.path(), &mut staged, &mut report);
        let publish = self.publish(staging.path(), staged, &mut report);
        read.context("failed to read the archive it sent")?;
        publish?;
        Ok(report)
    }

    fn read_entries(
        &self,
        reader: impl Read,
        staging: &Path,
        staged: &mut Vec<Staged>,
        report: &mut Unpacked,
    ) -> Result<()> {
        let mut archive = tar::Archive::new(reader);
        for (n, entry) in archive.entries()?.enumerate() {
            let mut entry = entry?;
            let raw = entry.path_bytes().into_owned();
            let shown = String::from_utf8_lossy(&raw).into_owned();
            let Ok(path) = std::str::from_utf8(&raw) else {
                report.refuse(&shown, "not UTF-8");
                continue;
            };
            let kind = entry.header().entry_type();
            let Some((id, name)) = split_path(path) else {
                report.refuse(path, "not a queue entry (<id>/queue/<name>)");
                continue;
            };
            let Some(dest) = self.map.get(id) else {
                report.refuse(path, "not an instance asked for");
                continue;
            };
            let Some(name) = name else {
                if !kind.is_dir() {
                    report.refuse(path, "not a directory");
                }
                continue;
            };
            if !kind.is_file() {
                report.refuse(path, "not a regular file");
                continue;
            }
            let Some(entry_id) = layout::parse_id(name).filter(|_| syncable_name(name)) else {
                report.refuse(path, "not an entry name");
                continue;
            };
            if entry.size() > self.max_entry {
                report.refuse(path, "too large");
                continue;
            }
            let file = staging.join(n.to_string());
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&file)
                .with_context(|| format!("failed to create {}", file.display()))?;
            // Never more than the cap, whatever the header says.
            let copied = std::io::copy(&mut (&mut entry).take(self.max_entry + 1), &mut out)
                .with_context(|| format!("failed to receive {path}"))?;
            if copied > self.max_entry {
                drop(out);
                let _ = std::fs::remove_file(&file);
                report.refuse(path, "too large");
                continue;
            }
            if copied != entry.size() {
                drop(out);
                let _ = std::fs::remove_file(&file);
                anyhow::bail!("the archive ends inside {path}");
            }
            // Keep the finder's time (never a future one), as tar would.
            let now = std::time::SystemTime::now();
            let mtime = entry.header().mtime().ok().map(|t| std::time::UNIX_EPOCH + std::time::Duration::from_secs(t));
            let _ = out.set_modified(mtime.filter(|t| *t <= now).unwrap_or(now));
            staged.push(Staged { dest: dest.id.clone(), id: entry_id, name: name.to_string(), file });
        }
        Ok(())
    }

    /// Links the staged entries into place, in id order per instance.
    fn publish(&self, staging: &Path, mut staged: Vec<Staged>, report: &mut Unpacked) -> Result<()> {
        staged.sort_by(|a, b| (&a.dest, a.id, &a.name).cmp(&(&b.dest, b.id, &b.name)));
        let mut ready: BTreeMap<String, Option<PathBuf>> = BTreeMap::new();
        for s in staged {
            let queue = match ready.get(&s.dest) {
                Some(q) => q.clone(),
                None => {
                    let origin = &self.map.values().find(|d| d.id == s.dest).expect("staged for a mapped id").origin;
                    let q = self.queue_dir(staging, &s.dest, origin)?;
                    ready.insert(s.dest.clone(), q.clone());
                    q
                }
            };
            let Some(queue) = queue else {
                report.refuse(
                    &format!("{}/queue/{}", s.dest, s.name),
                    "that instance directory here is not a copy from that host",
                );
                continue;
            };
            match std::fs::hard_link(&s.file, queue.join(&s.name)) {
                Ok(()) => *report.written.entry(s.dest.clone()).or_default() += 1,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => report.existing += 1,
                Err(e) => {
                    return Err(e).with_context(|| format!("failed to link {} into {}", s.name, queue.display()));
                }
            }
        }
        Ok(())
    }

    /// The queue directory of copy `dest` from `origin`, creating the copy
    /// when it does not exist; `None` when `dest` exists but is not a copy
    /// from `origin` (a local instance, another host's, a symlink).
    fn queue_dir(&self, staging: &Path, dest: &str, origin: &str) -> Result<Option<PathBuf>> {
        let dir = self.sync_dir.join(dest);
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Assemble the copy in staging, then move it into place whole.
                let new = staging.join(format!("new-{dest}"));
                std::fs::create_dir_all(new.join(layout::QUEUE))
                    .with_context(|| format!("failed to create {}", new.display()))?;
                std::fs::write(new.join(layout::REMOTE_ORIGIN), format!("{origin}\n"))
                    .with_context(|| format!("failed to write the marker of {dest}"))?;
                match rename_noreplace(&new, &dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    // A file system without RENAME_NOREPLACE: mkdir never
                    // replaces anything either, the marker follows at once.
                    Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {
                        if std::fs::create_dir(&dir).is_ok() {
                            std::fs::write(dir.join(layout::REMOTE_ORIGIN), format!("{origin}\n"))
                                .with_context(|| format!("failed to write the marker of {dest}"))?;
                        }
                    }
                    Err(e) => return Err(e).with_context(|| format!("failed to create {}", dir.display())),
                }
            }
            Err(e) => return Err(e).with_context(|| format!("failed to inspect {}", dir.display())),
        }
        if std::fs::symlink_metadata(&dir).map(|m| m.is_dir()).unwrap_or(false)
            && layout::remote_origin(&dir).as_deref() == Some(origin)
        {
            let queue = dir.join(layout::QUEUE);
            match std::fs::symlink_metadata(&queue) {
                Ok(m) if m.is_dir() => return Ok(Some(queue)),
                Ok(_) => return Ok(None),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir(&queue).with_context(|| format!("failed to create {}", queue.display()))?;
                    return Ok(Some(queue));
                }
                Err(e) => return Err(e).with_context(|| format!("failed to inspect {}", queue.display())),
            }
        }
        Ok(None)
    }
}

/// Renames `from` to `to` unless `to` exists (which `rename(2)` would
/// replace when it is an empty directory).
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
    let (from_c, to_c) = (c(from)?, c(to)?);
    // SAFETY: two valid NUL-terminated paths; renameat2 reads them only.
    let r = unsafe {
        libc::renameat2(libc::AT_FDCWD, from_c.as_ptr(), libc::AT_FDCWD, to_c.as_ptr(), libc::RENAME_NOREPLACE)
    };
    if r == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// One raw tar record: a header with `path` written as is (the `tar`
    /// crate's builder refuses hostile paths, which is the point here), then
    /// the data padded to 512 bytes. `claimed` overrides the size field.
    fn raw(path: &[u8], kind: tar::EntryType, data: &[u8], link: &[u8], claimed: Option<u64>) -> Vec<u8> {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..path.len()].copy_from_slice(path);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(claimed.unwrap_or(data.len() as u64));
        h.set_cksum();
        let mut out = h.as_bytes().to_vec();
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out
    }

    /// A GNU sparse file of `real` bytes with 512 bytes of data at the end.
    fn sparse(path: &str, real: u64) -> Vec<u8> {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_entry_type(tar::EntryType::GNUSparse);
        h.set_mode(0o644);
        h.set_size(512);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.set_real_size(real);
        let octal = |field: &mut [u8; 12], v: u64| {
            let s = format!("{v:011o}\0");
            field.copy_from_slice(s.as_bytes());
        };
        octal(&mut gnu.sparse[0].offset, real - 512);
        octal(&mut gnu.sparse[0].numbytes, 512);
        h.set_cksum();
        let mut out = h.as_bytes().to_vec();
        out.extend_from_slice(&[b's'; 512]);
        out
    }

    fn file(path: &str, data: &[u8]) -> Vec<u8> {
        raw(path.as_bytes(), tar::EntryType::Regular, data, b"", None)
    }

    /// A PAX or GNU long-name record naming the next entry `path`.
    fn long_name(kind: tar::EntryType, path: &str) -> Vec<u8> {
        let data = if kind == tar::EntryType::XHeader {
            let rec = format!(" path={path}\n");
            let mut len = rec.len() + 2;
            if (len + len.to_string().len() - 2) != len {
                len += 1;
            }
            format!("{}{rec}", len).into_bytes()
        } else {
            format!("{path}\0").into_bytes()
        };
        raw(b"././@LongLink", kind, &data, b"", None)
    }

    fn end(mut v: Vec<u8>) -> Vec<u8> {
        v.extend_from_slice(&[0u8; 1024]);
        v
    }

    /// Every path under `root` with its content (or `->target` / `dir`).
    fn tree(root: &Path) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                let m = std::fs::symlink_metadata(&p).unwrap();
                let what = if m.file_type().is_symlink() {
                    format!("->{}", std::fs::read_link(&p).unwrap().display())
                } else if m.is_dir() {
                    stack.push(p);
                    "dir".to_string()
                } else {
                    String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned()
                };
                out.insert((rel, what));
            }
        }
        out
    }

    fn unpacker(sync: &Path, max: u64) -> Unpacker<'_> {
        let map = BTreeMap::from([(
            "a1".to_string(),
            Destination { id: "hostA-a1".to_string(), origin: "hostA".to_string() },
        )]);
        Unpacker::new(sync, map, max)
    }

    #[test]
    fn hostile_archives_change_nothing_outside_the_queue_and_overwrite_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let sync = tmp.path().join("sync");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("victim"), "untouched").unwrap();
        // A copy from hostA that already holds one entry.
        let q = sync.join("hostA-a1/queue");
        std::fs::create_dir_all(&q).unwrap();
        std::fs::write(sync.join("hostA-a1/.rfuzz-remote"), "hostA\n").unwrap();
        std::fs::write(q.join("id:000001,orig:b"), "precious").unwrap();
        // A local instance whose id a hostile sender might aim at.
        std::fs::create_dir_all(sync.join("a1/queue")).unwrap();
        std::fs::write(sync.join("a1/fuzzer_setup"), "host: here\n").unwrap();
        let before = tree(tmp.path());

        use tar::EntryType as T;
        let victim = outside.join("victim");
        let v = victim.to_str().unwrap().as_bytes();
        let mut ar = Vec::new();
        ar.extend(raw(b"a1/", T::Directory, b"", b"", None));
        ar.extend(raw(b"a1/queue/", T::Directory, b"", b"", None));
        ar.extend(file("a1/queue/id:000002,src:000001,op:havoc", b"good two"));
        ar.extend(file("../outside/victim", b"owned"));
        ar.extend(file(victim.to_str().unwrap(), b"owned"));
        ar.extend(file("a1/queue/../../../outside/victim", b"owned"));
        ar.extend(file("./a1/queue/id:000000,orig:a", b"good zero"));
        // A symlink, then a file written through it.
        ar.extend(raw(b"a1/queue/id:000003,link", T::Symlink, b"", v, None));
        ar.extend(file("a1/queue/id:000003,link", b"through the link"));
        ar.extend(raw(b"a1/queue", T::Symlink, b"", outside.to_str().unwrap().as_bytes(), None));
        ar.extend(raw(b"a1/queue/id:000004,hard", T::Link, b"", v, None));
        ar.extend(raw(b"a1/queue/id:000005,dev", T::Char, b"", b"", None));
        ar.extend(raw(b"a1/queue/id:000006,blk", T::Block, b"", b"", None));
        ar.extend(raw(b"a1/queue/id:000007,fifo", T::Fifo, b"", b"", None));
        ar.extend(raw(b"a1/queue/id:000008,dir", T::Directory, b"", b"", None));
        // Not the queue, not an entry name, not an instance asked for.
        ar.extend(file("a1/crashes/id:000000,sig:06", b"crash"));
        ar.extend(file("a1/.rfuzz-remote", b"evil\n"));
        ar.extend(file("a1/queue/README.txt", b"x"));
        ar.extend(file("a1/queue/id:000009,bad name", b"x"));
        ar.extend(file("zz/queue/id:000000,orig:z", b"x"));
        ar.extend(file("a1/queue/id:000001,orig:b", b"overwrite attempt"));
        // Long names (PAX and GNU) pointing outside.
        ar.extend(long_name(T::XHeader, "../outside/victim"));
        ar.extend(file("a1/queue/id:000010,pax", b"owned"));
        ar.extend(long_name(T::GNULongName, "../../outside/victim"));
        ar.extend(file("a1/queue/id:000011,gnu", b"owned"));
        // Too large, and a sparse file claiming a gigabyte.
        ar.extend(file("a1/queue/id:000012,big", &[b'x'; 2000]));
        ar.extend(sparse("a1/queue/id:000013,sparse", 1 << 30));
        // The same good entry twice: the second does not replace the first.
        ar.extend(file("a1/queue/id:000014,twice", b"first"));
        ar.extend(file("a1/queue/id:000014,twice", b"second"));

        let got = unpacker(&sync, 1000).unpack(end(ar).as_slice()).unwrap();
        assert_eq!(got.written, BTreeMap::from([("hostA-a1".to_string(), 4)]), "{got:?}");
        assert_eq!(got.existing, 2, "{got:?}");
        assert_eq!(got.refused, 19, "{got:?}");

        let after = tree(tmp.path());
        let added: BTreeSet<_> = after.difference(&before).cloned().collect();
        let expect: BTreeSet<(String, String)> = [
            ("sync/hostA-a1/queue/id:000000,orig:a", "good zero"),
            ("sync/hostA-a1/queue/id:000002,src:000001,op:havoc", "good two"),
            // The link was never made: this is a plain new file in the queue.
            ("sync/hostA-a1/queue/id:000003,link", "through the link"),
            ("sync/hostA-a1/queue/id:000014,twice", "first"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(added, expect);
        assert!(before.difference(&after).next().is_none(), "nothing changed or removed");
    }

    #[test]
    fn a_header_claiming_a_gigabyte_allocates_nothing_and_keeps_what_came_before() {
        let tmp = tempfile::tempdir().unwrap();
        let sync = tmp.path();
        let mut ar = file("a1/queue/id:000000,orig:a", b"complete");
        // Claims 1 GiB, sends 512 bytes and ends.
        ar.extend(raw(b"a1/queue/id:000001,huge", tar::EntryType::Regular, &[b'y'; 512], b"", Some(1 << 30)));
        let err = unpacker(sync, 1 << 20).unpack(ar.as_slice()).unwrap_err();
        assert!(format!("{err:#}").contains("failed to read the archive"), "{err:#}");
        assert_eq!(std::fs::read(sync.join("hostA-a1/queue/id:000000,orig:a")).unwrap(), b"complete");
        assert!(!sync.join("hostA-a1/queue/id:000001,huge").exists());
        // Within the cap, a lying header still cannot make us write more
        // than the data that is there.
        let mut ar = raw(b"a1/queue/id:000002,short", tar::EntryType::Regular, &[b'z'; 512], b"", Some(2048));
        ar.extend([0u8; 1024]);
        assert!(unpacker(sync, 1 << 20).unpack(ar.as_slice()).is_err());
        assert!(!sync.join("hostA-a1/queue/id:000002,short").exists());
        // No staging directory is left behind.
        let left: Vec<_> = std::fs::read_dir(sync)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(layout::REMOTE_STAGING_PREFIX))
            .collect();
        assert!(left.is_empty());
    }

    #[test]
    fn never_writes_into_an_instance_that_is_not_a_copy_from_that_host() {
        let tmp = tempfile::tempdir().unwrap();
        let sync = tmp.path().join("sync");
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::fs::create_dir_all(&sync).unwrap();
        let ar = end(file("a1/queue/id:000000,orig:a", b"x"));
        // A local instance with the target id.
        std::fs::create_dir_all(sync.join("hostA-a1/queue")).unwrap();
        std::fs::write(sync.join("hostA-a1/fuzzer_setup"), "host: here\n").unwrap();
        let got = unpacker(&sync, 100).unpack(ar.as_slice()).unwrap();
        assert_eq!((got.total_written(), got.refused), (0, 1));
        assert!(!sync.join("hostA-a1/queue/id:000000,orig:a").exists());
        // A copy from another host.
        std::fs::remove_file(sync.join("hostA-a1/fuzzer_setup")).unwrap();
        std::fs::write(sync.join("hostA-a1/.rfuzz-remote"), "hostB\n").unwrap();
        assert_eq!(unpacker(&sync, 100).unpack(ar.as_slice()).unwrap().total_written(), 0);
        // A symlink to a directory elsewhere, even one with a fitting marker.
        std::fs::remove_dir_all(sync.join("hostA-a1")).unwrap();
        std::fs::create_dir_all(elsewhere.join("queue")).unwrap();
        std::fs::write(elsewhere.join(".rfuzz-remote"), "hostA\n").unwrap();
        std::os::unix::fs::symlink(&elsewhere, sync.join("hostA-a1")).unwrap();
        assert_eq!(unpacker(&sync, 100).unpack(ar.as_slice()).unwrap().total_written(), 0);
        assert_eq!(std::fs::read_dir(elsewhere.join("queue")).unwrap().count(), 0);
        // Nothing there yet: a new copy with its marker.
        std::fs::remove_file(sync.join("hostA-a1")).unwrap();
        assert_eq!(unpacker(&sync, 100).unpack(ar.as_slice()).unwrap().total_written(), 1);
        assert_eq!(layout::remote_origin(&sync.join("hostA-a1")).as_deref(), Some("hostA"));
    }
}
