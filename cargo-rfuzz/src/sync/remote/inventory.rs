//! What each participant of a remote sync has: its name, and per instance
//! directory whether it is local to that host, a copy from another host, or
//! neither, with the names of its queue entries.
//!
//! A directory is *local* to a host when an instance ran there: it has a
//! `fuzzer_setup` whose `host:` line names that host (AFL++ writes no `host:`
//! line; its `fuzzer_setup` alone counts). A *copy* has our
//! [`layout::REMOTE_ORIGIN`] marker. Anything else (a directory moved from
//! another host, one whose instance never started) is *other*: never
//! exported, never written into.

use crate::sync::layout;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What an instance directory is to the host it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// An instance runs (or ran) on this host.
    Local,
    /// Copied here by `sync-remote` from the named host.
    Copy(String),
    /// Neither: its `host:` marker names another host, or it has no marker.
    Other(Option<String>),
}

/// One instance directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Local, copy or other.
    pub kind: Kind,
    /// Names of its queue entries (those that may travel: see [`syncable_name`]).
    pub queue: BTreeSet<String>,
}

/// One participant's sync directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// The host's name (what its instances write in `host:`).
    pub host: String,
    /// Instance directories by id.
    pub instances: BTreeMap<String, Instance>,
    /// Names that exist there but are not real directories (symlinks, files):
    /// never written into.
    pub blocked: BTreeSet<String>,
}

/// Whether a queue entry name may travel: it parses as an entry, and holds
/// only characters that are safe in a line-based listing and a tar file list.
pub fn syncable_name(name: &str) -> bool {
    layout::parse_id(name).is_some()
        && name.len() <= 255
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | ',' | '.' | '_' | '+' | '-'))
}

/// What an instance directory's markers say.
#[derive(Debug, Default)]
struct Markers {
    /// The origin in [`layout::REMOTE_ORIGIN`], for a copy.
    origin: Option<String>,
    /// For a directory with a `fuzzer_setup`: its `host:` line, if any.
    setup: Option<Option<String>>,
}

impl Markers {
    /// The kind of the directory on host `host`.
    fn kind(self, host: &str) -> Kind {
        match (self.origin, self.setup) {
            (Some(o), _) => Kind::Copy(o),
            // `fuzzer_setup` without a `host:` line: AFL++, which runs where it is.
            (None, Some(None)) => Kind::Local,
            (None, Some(Some(h))) if h == host => Kind::Local,
            (None, Some(Some(h))) => Kind::Other(Some(h)),
            (None, None) => Kind::Other(None),
        }
    }
}

/// The remote side of [`Inventory`]: prints `host NAME`, then per instance
/// directory a `copy ID ORIGIN`, `setup ID host: NAME`, `dir ID` or
/// `blocked ID` line followed by `q ./ID/queue/./NAME` lines for entries of at
/// most `$2` bytes, then `end`. Only sh, find, grep, head and uname.
pub const INVENTORY_SCRIPT: &str = r#"LC_ALL=C; export LC_ALL
cd -- "$1" 2>/dev/null || { echo "rfuzz: no sync directory" >&2; exit 3; }
printf 'host %s\n' "$(uname -n)"
for d in ./*; do
  id=${d#./}
  case $id in ''|.*|*[!A-Za-z0-9_-]*) continue;; esac
  if [ -L "$d" ] || [ ! -d "$d" ]; then printf 'blocked %s\n' "$id"; continue; fi
  if [ -f "$d/.rfuzz-remote" ] && [ ! -L "$d/.rfuzz-remote" ]; then
    printf 'copy %s %s\n' "$id" "$(head -n 1 "$d/.rfuzz-remote")"
  elif [ -f "$d/fuzzer_setup" ] && [ ! -L "$d/fuzzer_setup" ]; then
    printf 'setup %s %s\n' "$id" "$(grep '^host:' "$d/fuzzer_setup" | head -n 1)"
  else
    printf 'dir %s\n' "$id"
  fi
  if [ -d "$d/queue" ] && [ ! -L "$d/queue" ]; then
    find "$d/queue/." ! -name . -prune -type f -size -"$2"c -name 'id[:_]*' ! -name '*[!A-Za-z0-9:,._+-]*' -exec printf 'q %s\n' {} +
  fi
done
echo end
"#;

/// Parses the output of [`INVENTORY_SCRIPT`]; `name` overrides the host name
/// it reports.
pub fn parse_remote(text: &str, name: Option<&str>) -> Result<Inventory, String> {
    let mut inv = Inventory::default();
    let mut dirs: BTreeMap<String, (Markers, BTreeSet<String>)> = BTreeMap::new();
    let mut reported: Option<String> = None;
    let mut ended = false;
    for line in text.lines() {
        let (kw, rest) = line.split_once(' ').unwrap_or((line, ""));
        let (id, value) = rest.split_once(' ').unwrap_or((rest, ""));
        let value = value.trim();
        let valid_id = layout::validate_instance_id(id).is_ok();
        let markers = match kw {
            "host" => {
                reported = Some(rest.trim().to_string());
                continue;
            }
            "end" => {
                ended = true;
                continue;
            }
            "blocked" if valid_id => {
                inv.blocked.insert(id.to_string());
                continue;
            }
            "copy" if valid_id => Markers { origin: Some(value.to_string()).filter(|v| !v.is_empty()), setup: None },
            "setup" if valid_id => Markers { origin: None, setup: Some(layout::setup_host(value)) },
            "dir" if valid_id => Markers::default(),
            "q" => {
                // ./ID/queue/./NAME
                let mut parts = rest.split('/');
                if let (Some("."), Some(id), Some("queue"), Some("."), Some(name), None) =
                    (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
                    && syncable_name(name)
                    && let Some((_, queue)) = dirs.get_mut(id)
                {
                    queue.insert(name.to_string());
                }
                continue;
            }
            _ => continue,
        };
        dirs.insert(id.to_string(), (markers, BTreeSet::new()));
    }
    if !ended {
        return Err("its listing of the sync directory ended early".to_string());
    }
    let reported = reported.filter(|r| !r.is_empty()).ok_or("it did not report its host name")?;
    inv.host = name.map(str::to_string).unwrap_or(reported);
    inv.instances =
        dirs.into_iter().map(|(id, (m, queue))| (id, Instance { kind: m.kind(&inv.host), queue })).collect();
    Ok(inv)
}

/// The inventory of the local sync directory (`host` is this machine's
/// name), listing the entries that may travel: regular files of at most
/// `max_entry` bytes, as [`INVENTORY_SCRIPT`] does there.
pub fn scan_local(sync_dir: &Path, host: &str, max_entry: u64) -> std::io::Result<Inventory> {
    let mut inv = Inventory { host: host.to_string(), ..Default::default() };
    for e in std::fs::read_dir(sync_dir)? {
        let e = e?;
        let Ok(id) = e.file_name().into_string() else { continue };
        if id.starts_with('.') || layout::validate_instance_id(&id).is_err() {
            continue;
        }
        let dir = e.path();
        if !std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
            inv.blocked.insert(id);
            continue;
        }
        let setup_path = dir.join(layout::FUZZER_SETUP);
        let markers = Markers {
            origin: layout::remote_origin(&dir),
            setup: std::fs::symlink_metadata(&setup_path)
                .is_ok_and(|m| m.is_file())
                .then(|| std::fs::read_to_string(&setup_path).ok().and_then(|t| layout::setup_host(&t))),
        };
        let queue_dir = dir.join(layout::QUEUE);
        let mut queue = BTreeSet::new();
        if std::fs::symlink_metadata(&queue_dir).is_ok_and(|m| m.is_dir()) {
            for q in std::fs::read_dir(&queue_dir)?.flatten() {
                if let Ok(name) = q.file_name().into_string()
                    && syncable_name(&name)
                    && q.metadata().is_ok_and(|m| m.is_file() && m.len() <= max_entry)
                {
                    queue.insert(name);
                }
            }
        }
        inv.instances.insert(id, Instance { kind: markers.kind(host), queue });
    }
    Ok(inv)
}
