//! Syncing one logical sync directory over several hosts (`sync-remote`),
//! the way AFL's parallel-fuzzing guide describes it: each host's *local*
//! instances' `queue/` directories are copied to every other host, never
//! overwriting a file, and never `crashes/` or `hangs/`.
//!
//! This machine is one of the participants and the hub. One round:
//!
//! ```text
//! 1. inventory  ssh HOST  list instance dirs: host marker or copy marker, queue entry names
//! 2. pull       ssh HOST  tar -cf - -T -  (the entries we lack)  ──► Unpacker ──► <prefix><id>/queue/
//! 3. push       local tar of the entries HOST lacks  ──► ssh HOST  tar -x (never overwriting)
//! ```
//!
//! Which instances are local to a host is decided by the markers instances
//! write (see [`inventory`]), never by their names; copies carry their own
//! marker and are never exported again, so an entry travels from the host
//! that found it to each other host once. A host's instance `id` is called
//! `<prefix><id>` elsewhere (prefix: its name and `-` unless the hosts file
//! says otherwise), so every host's `main` can coexist. Only `sh`, `tar`,
//! `find`, `grep`, `head` and `uname` are needed on the remote side.

pub mod hosts;
pub mod inventory;
pub mod ssh;
pub mod unpack;

use super::layout;
use super::status;
use anyhow::{Context, Result};
use hosts::HostSpec;
use inventory::{Inventory, Kind};
use ssh::Ssh;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};
use unpack::{Destination, Unpacker};

/// Default time between two rounds (AFL's guide suggests 30 minutes).
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(30 * 60);
/// Default largest entry to copy (the engine's largest input).
pub const DEFAULT_MAX_ENTRY: u64 = 1 << 20;
/// Local files younger than this may still be being written by an AFL++
/// instance (ours write atomically): they travel in the next round.
const SETTLE: Duration = Duration::from_secs(1);

/// The remote side of a pull: archive the entries named on stdin.
const PULL_SCRIPT: &str = r#"cd -- "$1" 2>/dev/null || { echo "rfuzz: no sync directory" >&2; exit 3; }
exec tar -cf - -T -
"#;

/// The remote side of a push: unpack, never replacing a file that exists.
const PUSH_SCRIPT: &str = r#"cd -- "$1" 2>/dev/null || { echo "rfuzz: no sync directory" >&2; exit 3; }
if tar --version 2>/dev/null | grep -q 'GNU tar'; then exec tar --skip-old-files --no-same-owner -xf -; fi
exec tar -xkof -
"#;

/// What one round is to do.
#[derive(Debug, Clone)]
pub struct Settings {
    /// This machine's sync directory.
    pub sync_dir: PathBuf,
    /// The other hosts.
    pub hosts: Vec<HostSpec>,
    /// The hosts file, for messages.
    pub hosts_file: PathBuf,
    /// Largest entry to copy.
    pub max_entry: u64,
    /// Only report what would be copied.
    pub dry_run: bool,
}

/// How one host fared in a round.
#[derive(Debug, Clone, Default)]
pub struct HostOutcome {
    /// How messages name it.
    pub label: String,
    /// Why it could not be synced (one line, with the fix).
    pub error: Option<String>,
    /// Entries copied from it (or that would be, with --dry-run).
    pub pulled: u64,
    /// Its instances they belong to.
    pub pulled_instances: usize,
    /// Entries copied to it.
    pub pushed: u64,
    /// Instances they belong to.
    pub pushed_instances: usize,
    /// Things skipped (one line each).
    pub warnings: Vec<String>,
}

/// How a round went.
#[derive(Debug, Clone, Default)]
pub struct RoundOutcome {
    /// Per host, in hosts-file order.
    pub hosts: Vec<HostOutcome>,
}

impl RoundOutcome {
    /// Whether every host synced.
    pub fn all_synced(&self) -> bool {
        self.hosts.iter().all(|h| h.error.is_none())
    }
}

/// Where instance `id` of a host may be written on a participant, or why not.
fn may_write(dst: &Inventory, id: &str, origin: &str) -> std::result::Result<(), String> {
    if dst.blocked.contains(id) {
        return Err(format!("`{id}` there is not a directory"));
    }
    match dst.instances.get(id).map(|i| &i.kind) {
        None => Ok(()),
        Some(Kind::Copy(o)) if o == origin => Ok(()),
        Some(Kind::Copy(o)) => Err(format!("`{id}` there is already a copy from {o}")),
        Some(Kind::Local) => Err(format!("`{id}` there is an instance of its own")),
        Some(Kind::Other(_)) => Err(format!("`{id}` there exists and is not a copy from {origin}")),
    }
}

/// Entries of instance `src` that `dst` lacks in its instance `dest`, in id
/// order.
fn missing(src: &inventory::Instance, dst: &Inventory, dest: &str) -> Vec<String> {
    let have = dst.instances.get(dest).map(|i| &i.queue);
    let mut names: Vec<String> = src.queue.iter().filter(|n| have.is_none_or(|h| !h.contains(*n))).cloned().collect();
    names.sort_by_key(|n| (layout::parse_id(n), n.clone()));
    names
}

/// One instance's part of a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// Id on the sending side.
    pub from: String,
    /// Id on the receiving side.
    pub to: String,
    /// Host the instance runs on.
    pub origin: String,
    /// The receiver has no directory for it yet.
    pub new_dir: bool,
    /// Entry names, in id order.
    pub names: Vec<String>,
}

/// What to copy from `src` (whose instances get `prefix`) to `dst`: `src`'s
/// local instances, and with `copies`, the copies it holds from hosts other
/// than `dst`.
fn plan(src: &Inventory, prefix: &str, copies: bool, dst: &Inventory, warnings: &mut Vec<String>) -> Vec<Transfer> {
    let mut out = Vec::new();
    for (id, inst) in &src.instances {
        let (to, origin) = match &inst.kind {
            Kind::Local => (format!("{prefix}{id}"), src.host.clone()),
            Kind::Copy(o) if copies && *o != dst.host => (id.clone(), o.clone()),
            _ => continue,
        };
        if layout::validate_instance_id(&to).is_err() {
            warnings.push(format!(
                "skipped instance `{id}` of {src_host}: `{to}` is not a valid instance id (set a shorter prefix=)",
                src_host = src.host
            ));
            continue;
        }
        if let Err(why) = may_write(dst, &to, &origin) {
            warnings
                .push(format!("skipped instance `{id}` of {origin}: {why} (give the hosts distinct prefix= values)"));
            continue;
        }
        let names = missing(inst, dst, &to);
        if !names.is_empty() {
            out.push(Transfer {
                from: id.clone(),
                to: to.clone(),
                origin,
                new_dir: !dst.instances.contains_key(&to),
                names,
            });
        }
    }
    out
}

fn remote_inventory(
    ssh: &Ssh,
    h: &HostSpec,
    s: &Settings,
    stop: &AtomicBool,
) -> std::result::Result<Inventory, String> {
    let args = [h.dir.clone(), (s.max_entry + 1).to_string()];
    let done = ssh
        .run(h, inventory::INVENTORY_SCRIPT, &args, |_stdin| (), ssh::read_text(64 << 20), stop)
        .map_err(|e| format!("{e:#}"))?;
    if !done.ok() {
        return Err(failure(&done.status, &done.stderr, done.stopped, h, s));
    }
    let text = done.output.map_err(|e| format!("failed to read its listing: {e}"))?;
    inventory::parse_remote(&text, h.name.as_deref())
}

fn failure(status: &std::process::ExitStatus, stderr: &str, stopped: bool, h: &HostSpec, s: &Settings) -> String {
    if stopped {
        return "interrupted".to_string();
    }
    ssh::explain_failure(status, stderr, h, &s.hosts_file.display().to_string())
}

/// Copies entries from host `h` into the local sync directory.
fn pull(
    ssh: &Ssh,
    h: &HostSpec,
    s: &Settings,
    transfers: &[Transfer],
    stop: &AtomicBool,
) -> std::result::Result<unpack::Unpacked, String> {
    let map: BTreeMap<String, Destination> = transfers
        .iter()
        .map(|t| (t.from.clone(), Destination { id: t.to.clone(), origin: t.origin.clone() }))
        .collect();
    let mut list = String::new();
    for t in transfers {
        for n in &t.names {
            // `./` keeps an id that starts with `-` from reading as an option.
            list.push_str(&format!("./{}/{}/{n}\n", t.from, layout::QUEUE));
        }
    }
    let unpacker = Unpacker::new(&s.sync_dir, map, s.max_entry);
    let done = ssh
        .run(
            h,
            PULL_SCRIPT,
            std::slice::from_ref(&h.dir),
            ssh::feed_bytes(list.into_bytes()),
            |out| unpacker.unpack(out),
            stop,
        )
        .map_err(|e| format!("{e:#}"))?;
    if !done.ok() {
        // What arrived complete was published; report the failure.
        return Err(failure(&done.status, &done.stderr, done.stopped, h, s));
    }
    done.output.map_err(|e| format!("{e:#}"))
}

/// Reads a local entry to send: a regular file (not a symlink), settled, at
/// most `max` bytes.
fn read_entry(path: &Path, max: u64) -> Option<(Vec<u8>, u64)> {
    let (f, meta) = layout::open_regular(path)?;
    if meta.len() > max {
        return None;
    }
    let now = SystemTime::now();
    let mtime = meta.modified().ok()?.min(now);
    if now.duration_since(mtime).is_ok_and(|age| age < SETTLE) {
        return None;
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    f.take(max + 1).read_to_end(&mut data).ok()?;
    let secs = mtime.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    (data.len() as u64 <= max).then_some((data, secs))
}

/// Writes the archive of a push: per instance a marker for a new copy, then
/// its entries in id order (regular files only: a symlink, a file too large
/// or too young is left out). Returns the entries written per instance.
pub fn write_push_archive(
    sync_dir: &Path,
    transfers: &[Transfer],
    max: u64,
    out: impl Write,
) -> std::io::Result<BTreeMap<String, u64>> {
    let mut b = tar::Builder::new(out);
    let mut sent = BTreeMap::new();
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let file_header = |size: u64, mtime: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_mtime(mtime);
        h
    };
    for Transfer { from, to, origin, new_dir, names } in transfers {
        if *new_dir {
            let marker = format!("{origin}\n");
            b.append_data(
                &mut file_header(marker.len() as u64, now),
                format!("{to}/{}", layout::REMOTE_ORIGIN),
                marker.as_bytes(),
            )?;
        }
        let queue = sync_dir.join(from).join(layout::QUEUE);
        let mut n = 0;
        for name in names {
            let Some((data, mtime)) = read_entry(&queue.join(name), max) else { continue };
            b.append_data(
                &mut file_header(data.len() as u64, mtime),
                format!("{to}/{}/{name}", layout::QUEUE),
                data.as_slice(),
            )?;
            n += 1;
        }
        sent.insert(to.clone(), n);
    }
    b.into_inner()?.flush()?;
    Ok(sent)
}

/// Copies entries from the local sync directory to host `h`.
fn push(
    ssh: &Ssh,
    h: &HostSpec,
    s: &Settings,
    transfers: &[Transfer],
    stop: &AtomicBool,
) -> std::result::Result<BTreeMap<String, u64>, String> {
    let items = transfers.to_vec();
    let sync_dir = s.sync_dir.clone();
    let max = s.max_entry;
    let done = ssh
        .run(
            h,
            PUSH_SCRIPT,
            std::slice::from_ref(&h.dir),
            move |stdin| write_push_archive(&sync_dir, &items, max, stdin),
            ssh::read_text(1 << 16),
            stop,
        )
        .map_err(|e| format!("{e:#}"))?;
    if !done.ok() {
        return Err(failure(&done.status, &done.stderr, done.stopped, h, s));
    }
    done.input.map_err(|e| format!("failed to send entries: {e}"))
}

/// Runs one round: inventories, pulls into this machine, pushes from it;
/// then closes the connections.
pub fn round(s: &Settings, ssh: &Ssh, stop: &AtomicBool) -> Result<RoundOutcome> {
    let outcome = sync_all(s, ssh, stop);
    for h in &s.hosts {
        ssh.close(h);
    }
    outcome
}

fn sync_all(s: &Settings, ssh: &Ssh, stop: &AtomicBool) -> Result<RoundOutcome> {
    let local_name = status::local_host();
    let local_prefix = hosts::default_prefix(&local_name);
    let mut outcomes: Vec<HostOutcome> =
        s.hosts.iter().map(|h| HostOutcome { label: h.label(), ..Default::default() }).collect();
    let scan = |dir: &Path| {
        inventory::scan_local(dir, &local_name, s.max_entry)
            .with_context(|| format!("failed to read sync directory {}", dir.display()))
    };
    let mut local = scan(&s.sync_dir)?;

    // 1. Who is there, and what do they have.
    let mut remotes: Vec<Option<Inventory>> = Vec::new();
    let mut names: BTreeMap<String, String> = BTreeMap::from([(local_name.clone(), "this machine".to_string())]);
    for (h, o) in s.hosts.iter().zip(&mut outcomes) {
        let inv = match remote_inventory(ssh, h, s, stop) {
            Ok(inv) => inv,
            Err(e) => {
                o.error = Some(e);
                remotes.push(None);
                continue;
            }
        };
        if let Some(other) = names.get(&inv.host) {
            o.error = Some(format!(
                "it is called `{}` like {other}: give it another name= in line {} of {} and run its instances with RFUZZ_HOST set to that name",
                inv.host,
                h.line,
                s.hosts_file.display()
            ));
            remotes.push(None);
            continue;
        }
        names.insert(inv.host.clone(), format!("the host in line {}", h.line));
        remotes.push(Some(inv));
    }

    // 2. Pull every host's local instances here.
    for ((h, o), inv) in s.hosts.iter().zip(&mut outcomes).zip(&remotes) {
        let Some(inv) = inv else { continue };
        let prefix = h.prefix.clone().unwrap_or_else(|| hosts::default_prefix(&inv.host));
        let transfers = plan(inv, &prefix, false, &local, &mut o.warnings);
        let count: u64 = transfers.iter().map(|t| t.names.len() as u64).sum();
        if s.dry_run || transfers.is_empty() {
            o.pulled = count;
            o.pulled_instances = transfers.len();
            continue;
        }
        match pull(ssh, h, s, &transfers, stop) {
            Ok(u) => {
                o.pulled = u.total_written();
                o.pulled_instances = u.written.len();
                if u.refused > 0 {
                    o.warnings.push(format!("refused {} entries it sent: {}", u.refused, u.reasons.join("; ")));
                }
            }
            Err(e) => o.error = Some(e),
        }
    }
    if !s.dry_run {
        local = scan(&s.sync_dir)?;
    }

    // 3. Push this machine's instances, and its copies, to every host.
    for ((h, o), inv) in s.hosts.iter().zip(&mut outcomes).zip(&remotes) {
        let Some(inv) = inv else { continue };
        if o.error.is_some() {
            continue;
        }
        let transfers = plan(&local, &local_prefix, true, inv, &mut o.warnings);
        if s.dry_run || transfers.is_empty() {
            o.pushed = transfers.iter().map(|t| t.names.len() as u64).sum();
            o.pushed_instances = transfers.len();
            continue;
        }
        match push(ssh, h, s, &transfers, stop) {
            Ok(sent) => {
                o.pushed = sent.values().sum();
                o.pushed_instances = sent.values().filter(|n| **n > 0).count();
            }
            Err(e) => o.error = Some(e),
        }
    }
    Ok(RoundOutcome { hosts: outcomes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn old_file(path: &Path, data: &[u8]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
        let past = SystemTime::now() - Duration::from_secs(60);
        std::fs::File::options().write(true).open(path).unwrap().set_modified(past).unwrap();
    }

    /// Runs one of the remote scripts here, the way ssh runs it there.
    fn sh(script: &str, args: &[&str], stdin: &[u8]) -> std::process::Output {
        let mut c = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("rfuzz")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(stdin).unwrap();
        c.wait_with_output().unwrap()
    }

    /// A sync dir as a remote host `hostA` would have it.
    fn remote_dir(root: &Path) -> PathBuf {
        let d = root.join("A");
        old_file(&d.join("a1/fuzzer_setup"), b"# cargo rfuzz\nhost: hostA\ninstance: a1\n");
        old_file(&d.join("a1/queue/id:000000,time:0,execs:0,orig:seed"), b"zero");
        old_file(&d.join("a1/queue/id:000001,src:000000,op:havoc,+cov"), b"one");
        old_file(&d.join("a1/queue/id:000002,big"), &[b'x'; 3000]);
        old_file(&d.join("a1/queue/id:000003,new\nline"), b"bad");
        old_file(&d.join("a1/queue/.state/id:000004"), b"nested");
        std::os::unix::fs::symlink("/etc/passwd", d.join("a1/queue/id:000005,link")).unwrap();
        old_file(&d.join("a1/crashes/id:000000,sig:06"), b"crash");
        // AFL++ writes no host line.
        old_file(&d.join("afl/fuzzer_setup"), b"# environment variables:\n");
        old_file(&d.join("afl/queue/id:000000,orig:x"), b"afl");
        // A copy from another host, and a directory moved from another host.
        old_file(&d.join("hostB-b1/.rfuzz-remote"), b"hostB\n");
        old_file(&d.join("hostB-b1/queue/id:000000,orig:b"), b"b");
        old_file(&d.join("moved/fuzzer_setup"), b"host: hostC\n");
        old_file(&d.join("moved/queue/id:000000,orig:c"), b"c");
        std::os::unix::fs::symlink("/etc", d.join("linked")).unwrap();
        d
    }

    #[test]
    fn the_remote_scripts_use_the_layout_names() {
        for name in [layout::QUEUE, layout::FUZZER_SETUP, layout::REMOTE_ORIGIN] {
            assert!(inventory::INVENTORY_SCRIPT.contains(&format!("/{name}")), "{name}");
        }
        assert!(inventory::INVENTORY_SCRIPT.contains(&format!("exit {}", ssh::NO_SYNC_DIR)));
        assert!(PULL_SCRIPT.contains(&format!("exit {}", ssh::NO_SYNC_DIR)));
        assert!(PUSH_SCRIPT.contains(&format!("exit {}", ssh::NO_SYNC_DIR)));
    }

    #[test]
    fn the_inventory_script_lists_what_may_travel_and_classifies_by_marker() {
        let tmp = tempfile::tempdir().unwrap();
        let d = remote_dir(tmp.path());
        let out = sh(inventory::INVENTORY_SCRIPT, &[d.to_str().unwrap(), "1001"], b"");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let inv = inventory::parse_remote(&String::from_utf8_lossy(&out.stdout), Some("hostA")).unwrap();
        assert_eq!(inv.host, "hostA");
        let kind = |id: &str| inv.instances[id].kind.clone();
        assert_eq!(kind("a1"), Kind::Local);
        assert_eq!(kind("afl"), Kind::Local);
        assert_eq!(kind("hostB-b1"), Kind::Copy("hostB".into()));
        assert_eq!(kind("moved"), Kind::Other(Some("hostC".into())));
        assert!(inv.blocked.contains("linked"));
        let q: Vec<&str> = inv.instances["a1"].queue.iter().map(String::as_str).collect();
        assert_eq!(q, vec!["id:000000,time:0,execs:0,orig:seed", "id:000001,src:000000,op:havoc,+cov"]);
        // Without name=, the host is what uname -n says.
        let own = inventory::parse_remote(&String::from_utf8_lossy(&out.stdout), None).unwrap();
        assert_eq!(own.host, nix::unistd::gethostname().unwrap().into_string().unwrap());
        // A missing directory is told apart.
        let out = sh(inventory::INVENTORY_SCRIPT, &["/nonexistent/sync", "10"], b"");
        assert_eq!(out.status.code(), Some(ssh::NO_SYNC_DIR));
        assert!(String::from_utf8_lossy(&out.stderr).contains("rfuzz: no sync directory"));
        // A listing cut short is an error, not an empty host.
        assert!(inventory::parse_remote("host x\ndir a1\n", None).is_err());
    }

    #[test]
    fn plans_export_local_instances_once_with_prefixes_and_never_over_other_instances() {
        let tmp = tempfile::tempdir().unwrap();
        let d = remote_dir(tmp.path());
        let a = inventory::scan_local(&d, "hostA", 1000).unwrap();
        let mut warnings = Vec::new();
        // To an empty host L: only hostA's own instances, renamed.
        let empty = Inventory { host: "hostL".into(), ..Default::default() };
        let t = plan(&a, "hostA-", false, &empty, &mut warnings);
        let ids: Vec<(&str, &str, bool)> = t.iter().map(|t| (t.from.as_str(), t.to.as_str(), t.new_dir)).collect();
        assert_eq!(ids, vec![("a1", "hostA-a1", true), ("afl", "hostA-afl", true)]);
        assert_eq!(t[0].origin, "hostA");
        assert!(warnings.is_empty());
        // With copies (as the hub pushes): hostB's copy goes to L but never back to hostB.
        let t = plan(&a, "hostA-", true, &empty, &mut warnings);
        assert!(t.iter().any(|t| t.to == "hostB-b1" && t.origin == "hostB"));
        let b = Inventory { host: "hostB".into(), ..Default::default() };
        assert!(!plan(&a, "hostA-", true, &b, &mut warnings).iter().any(|t| t.origin == "hostB"));
        // Only what the receiver lacks; and nothing over a local instance or another host's copy.
        let mut l = inventory::scan_local(&d, "hostL", 1000).unwrap();
        l.host = "hostL".into();
        let mut have = inventory::Instance { kind: Kind::Copy("hostA".into()), queue: Default::default() };
        have.queue.insert("id:000000,time:0,execs:0,orig:seed".into());
        l.instances.insert("hostA-a1".into(), have);
        l.instances.insert("hostA-afl".into(), inventory::Instance { kind: Kind::Local, queue: Default::default() });
        let t = plan(&a, "hostA-", false, &l, &mut warnings);
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].to.as_str(), t[0].new_dir), ("hostA-a1", false));
        assert_eq!(t[0].names, vec!["id:000001,src:000000,op:havoc,+cov".to_string()]);
        assert!(warnings.iter().any(|w| w.contains("`hostA-afl` there is an instance of its own")), "{warnings:?}");
        // Ids that would be invalid are skipped with a warning.
        let t = plan(&a, "a-very-long-prefix-for-ids-", false, &empty, &mut warnings);
        assert!(t.iter().all(|t| t.to.len() <= 32));
    }

    #[test]
    fn push_archives_unpack_with_the_remote_script_without_overwriting() {
        let tmp = tempfile::tempdir().unwrap();
        let local = tmp.path().join("L");
        old_file(&local.join("l1/queue/id:000000,orig:a"), b"new zero");
        old_file(&local.join("l1/queue/id:000001,src:000000"), b"new one");
        old_file(&local.join("l1/queue/id:000002,big"), &[b'x'; 3000]);
        std::fs::write(local.join("l1/queue/id:000003,fresh"), b"still being written").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", local.join("l1/queue/id:000004,link")).unwrap();
        let remote = tmp.path().join("R");
        // The receiver already has entry 1, with other content.
        old_file(&remote.join("hostL-l1/queue/id:000001,src:000000"), b"theirs");
        let names: Vec<String> =
            ["id:000000,orig:a", "id:000001,src:000000", "id:000002,big", "id:000003,fresh", "id:000004,link"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        let t = Transfer { from: "l1".into(), to: "hostL-l1".into(), origin: "hostL".into(), new_dir: true, names };
        let mut archive = Vec::new();
        let sent = write_push_archive(&local, std::slice::from_ref(&t), 1000, &mut archive).unwrap();
        assert_eq!(sent["hostL-l1"], 2, "not the big, fresh or linked ones");
        let out = sh(PUSH_SCRIPT, &[remote.to_str().unwrap()], &archive);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let q = remote.join("hostL-l1/queue");
        assert_eq!(std::fs::read(q.join("id:000000,orig:a")).unwrap(), b"new zero");
        assert_eq!(std::fs::read(q.join("id:000001,src:000000")).unwrap(), b"theirs");
        assert_eq!(std::fs::read_dir(&q).unwrap().count(), 2);
        assert_eq!(layout::remote_origin(&remote.join("hostL-l1")).as_deref(), Some("hostL"));
        // The same archive through our own unpacker gives the same result.
        let mine = tmp.path().join("M");
        std::fs::create_dir_all(&mine).unwrap();
        let map =
            BTreeMap::from([("hostL-l1".to_string(), Destination { id: "hostL-l1".into(), origin: "hostL".into() })]);
        let u = Unpacker::new(&mine, map, 1000).unpack(archive.as_slice()).unwrap();
        assert_eq!((u.total_written(), u.refused), (2, 1), "the marker is not a queue entry: {u:?}");
    }
}
