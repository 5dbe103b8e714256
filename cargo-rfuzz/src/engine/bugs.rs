//! Bugs, not files: which crash and hang files an instance keeps.
//!
//! Every crashing run gets a signature key (a `u64`) from what the runtime
//! reported through the direct protocol's header:
//!
//! * a panic: the hash of its location and first message line with digits
//!   normalised ([`rfuzz::protocol::signature::panic_key`]), the same key
//!   `cargo rfuzz triage` derives from a replay's output, so the engine and
//!   `triage` count the same bugs;
//! * a stack overflow, an out-of-memory, an AddressSanitizer report: the kind
//!   alone (`stack-overflow`, `oom`, `asan-<kind>`), as `triage` names them;
//! * another signal: its name and the first three functions of the user's
//!   code on the faulting thread's stack (the runtime unwinds it in its
//!   signal handler; the engine names the frames with the binary's debug
//!   information, [`crate::triage::frames`], as `triage` does for a replay),
//!   so a fault inside `memcpy` is told apart by its caller and one bug that
//!   faults at varying places inside the C library stays one bug; where no
//!   frames could be recorded, the faulting instruction's offset.
//!
//! Hangs are grouped by the function of the user's code the fuzzer's dump
//! request interrupted (the innermost one, inlined frames included: one
//! loop is one hang wherever in its body the run was stopped); where the
//! place has no name in the binary's debug information, by site: the
//! interrupted instruction, within [`HANG_SITE_SPAN`] bytes of code.
//!
//! An instance keeps at most [`FILES_PER_BUG`] files per crash key: the
//! first, and later ones only while they are smaller than every file kept
//! so far; and [`HANG_FILES_PER_BUG`] per hang key (every hang file costs a
//! confirming run at the long hang timeout). Every occurrence is counted.

use super::executor::{CrashCause, ExitKind};
use rfuzz::protocol::signature;
use std::collections::HashMap;

use crate::triage::frames::OUTSIDE_EXECUTABLE;

/// Most files kept per signature (crashes) or site (hangs).
pub const FILES_PER_BUG: u32 = 3;
/// Most files kept per hang (function or site).
pub const HANG_FILES_PER_BUG: u32 = 1;
/// Interrupted program counters this close together are one hang site (the
/// instructions of one loop).
pub const HANG_SITE_SPAN: u64 = 512;

/// The engine's signature key of a crash; `crash_sig` and `fault_pc` as the
/// executor's [`super::executor::Executor::death_info`] gave them. It is the
/// short id ([`signature::short_id`]) of the key's hash: for a panic the bug
/// id `cargo rfuzz triage` shows, and what crash file names carry as
/// `bug:<8 hex digits>`, so a resumed instance knows its files' bugs.
pub fn crash_key(kind: ExitKind, crash_sig: u64, fault_pc: u64) -> u64 {
    let text = match kind {
        ExitKind::Crash { cause: CrashCause::Panic, .. } if crash_sig != 0 => {
            return signature::short_id(crash_sig) as u64;
        }
        ExitKind::Crash { cause: CrashCause::Panic, .. } => "panic".to_string(),
        ExitKind::Crash { cause: CrashCause::StackOverflow, .. } => "stack-overflow".to_string(),
        ExitKind::Crash { cause: CrashCause::Sanitizer(k), .. } => format!("asan-{k}"),
        ExitKind::Crash { signal, cause: CrashCause::Signal } => {
            let name = crate::sys::process::signal_name(signal);
            if fault_pc != 0 { format!("{name}|pc:{fault_pc:x}") } else { name }
        }
        ExitKind::Oom => "oom".to_string(),
        ExitKind::Timeout => format!("timeout|pc:{fault_pc:x}"),
        ExitKind::Ok => "ok".to_string(),
    };
    signature::short_id(signature::hash(&text)) as u64
}

/// The key of a fatal signal whose stack showed these functions of the
/// user's code (innermost first): the id `triage` gives the same crash.
pub fn signal_key(signal: i32, user_frames: &[String]) -> u64 {
    let name = crate::sys::process::signal_name(signal);
    signature::short_id(signature::hash(&format!("{name}|{}", user_frames.join("|")))) as u64
}

/// The key of a hang interrupted in the user's function `function`.
pub fn hang_function_key(function: &str) -> u64 {
    signature::short_id(signature::hash(&format!("timeout|{function}"))) as u64
}

/// The `bug:` field of a file name.
pub fn name_field(key: u64) -> String {
    format!("bug:{key:08x}")
}

/// The key in a file name's `bug:` field.
pub fn parse_name(name: &str) -> Option<u64> {
    crate::sync::layout::name_field(name, "bug").and_then(|v| u64::from_str_radix(v, 16).ok())
}

/// What is known of one bug.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bug {
    /// Runs that hit it.
    pub hits: u64,
    /// Files kept.
    pub files: u32,
    /// Length of the smallest file kept.
    pub smallest: usize,
    /// Hangs only: confirmations that ended before the hang timeout (a slow
    /// input, not a hang), and `hits` at the last of them.
    pub slow: u32,
    pub hits_at_slow: u64,
}

/// Bugs by key, and the decision which inputs to keep.
#[derive(Debug)]
pub struct BugTable {
    bugs: HashMap<u64, Bug>,
    /// Hang sites seen (interrupted program counters).
    sites: Vec<u64>,
    /// Most files per key.
    cap: u32,
}

impl Default for BugTable {
    fn default() -> BugTable {
        BugTable { bugs: HashMap::new(), sites: Vec::new(), cap: FILES_PER_BUG }
    }
}

impl BugTable {
    /// A table of hangs: [`HANG_FILES_PER_BUG`] files per key.
    pub fn hangs() -> BugTable {
        BugTable { cap: HANG_FILES_PER_BUG, ..BugTable::default() }
    }

    /// Whether an input of `len` bytes of bug `key` would be kept (without
    /// counting it): the first of its bug, or smaller than all kept, while
    /// fewer than the table's cap are kept.
    pub fn would_keep(&self, key: u64, len: usize) -> bool {
        match self.bugs.get(&key) {
            None => true,
            Some(b) => b.files == 0 || (b.files < self.cap && len < b.smallest),
        }
    }

    /// Whether a timeout of hang `key` is worth its confirmation run: yes,
    /// unless confirmations of the key ended before the hang timeout (slow
    /// inputs, not hangs; each cost up to the hang timeout); after `k` of
    /// those, only once 2^k more timeouts of the key came.
    pub fn may_confirm(&self, key: u64) -> bool {
        match self.bugs.get(&key) {
            None => true,
            Some(b) => b.slow == 0 || b.hits - b.hits_at_slow >= 1u64 << b.slow.min(32),
        }
    }

    /// Records that a confirmation of hang `key` ended before the hang timeout.
    pub fn confirmed_slow(&mut self, key: u64) {
        let b = self.bugs.entry(key).or_default();
        b.slow += 1;
        b.hits_at_slow = b.hits;
    }

    /// Whether a file of bug `key` was kept.
    pub fn has_files(&self, key: u64) -> bool {
        self.bugs.get(&key).is_some_and(|b| b.files > 0)
    }

    /// Counts a hit of bug `key`.
    pub fn hit(&mut self, key: u64) {
        self.bugs.entry(key).or_default().hits += 1;
    }

    /// Records that an input of `len` bytes of bug `key` was kept.
    pub fn kept(&mut self, key: u64, len: usize) {
        let b = self.bugs.entry(key).or_default();
        b.smallest = if b.files == 0 { len } else { b.smallest.min(len) };
        b.files += 1;
    }

    /// Distinct bugs seen.
    pub fn len(&self) -> usize {
        self.bugs.len()
    }

    /// No bug seen.
    pub fn is_empty(&self) -> bool {
        self.bugs.is_empty()
    }

    /// Distinct hangs seen: functions and sites, the unknown place (the
    /// run did not answer the dump request) counting as one.
    pub fn hang_sites(&self) -> usize {
        self.bugs.len()
    }

    /// The site of a hang interrupted at `pc`: an already known site within
    /// [`HANG_SITE_SPAN`] bytes of code, else a new one; `None` when the
    /// place is unknown or outside the executable (a shared library, the
    /// kernel's code).
    pub fn hang_site(&mut self, pc: u64) -> Option<u64> {
        if pc == 0 || pc >= OUTSIDE_EXECUTABLE {
            return None;
        }
        Some(match self.sites.iter().find(|&&s| s.abs_diff(pc) <= HANG_SITE_SPAN) {
            Some(&s) => s,
            None => {
                self.sites.push(pc);
                pc
            }
        })
    }

    /// The key of a hang interrupted at `pc` (see [`BugTable::hang_site`]);
    /// the unknown site is a class of its own, capped like a site.
    pub fn hang_key(&mut self, pc: u64) -> u64 {
        site_key(self.hang_site(pc))
    }

    /// Counts a hang file of an earlier run against its key's cap: its
    /// name's `bug:` field (a function's hang), else its `site:` field.
    pub fn restore_hang(&mut self, name: &str, len: usize) {
        let key = match parse_name(name) {
            Some(key) => key,
            None => site_key(parse_site(name).and_then(|s| self.hang_site(s))),
        };
        self.hit(key);
        self.kept(key, len);
    }
}

/// The key of a hang site (`None`: unknown).
pub fn site_key(site: Option<u64>) -> u64 {
    crash_key(ExitKind::Timeout, 0, site.unwrap_or(0))
}

/// The `site:` field of a hang file's name.
pub fn site_field(site: u64) -> String {
    format!("site:{site:x}")
}

/// The site in a hang file's name.
pub fn parse_site(name: &str) -> Option<u64> {
    crate::sync::layout::name_field(name, "site").and_then(|v| u64::from_str_radix(v, 16).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_then_only_smaller_inputs_up_to_the_cap() {
        let mut t = BugTable::default();
        let keep = |t: &mut BugTable, len| {
            t.hit(7);
            let k = t.would_keep(7, len);
            if k {
                t.kept(7, len);
            }
            k
        };
        assert!(keep(&mut t, 100));
        assert!(!keep(&mut t, 100));
        assert!(!keep(&mut t, 150));
        assert!(keep(&mut t, 50));
        assert!(keep(&mut t, 10));
        assert!(!keep(&mut t, 5), "at most FILES_PER_BUG files");
        assert_eq!(t.bugs[&7], Bug { hits: 6, files: 3, smallest: 10, ..Bug::default() });
        assert_eq!(t.len(), 1);
        let mut h = BugTable::hangs();
        assert!(keep(&mut h, 100));
        assert!(!keep(&mut h, 50), "one file per hang");
    }

    #[test]
    fn a_panic_key_is_the_runtime_hash_and_kinds_differ() {
        let panic = ExitKind::Crash { signal: 6, cause: CrashCause::Panic };
        assert_eq!(crash_key(panic, 42 << 32, 0), 42);
        assert_eq!(parse_name(&format!("id:000001,sig:06,{},panic", name_field(0xabc))), Some(0xabc));
        let segv = |pc| crash_key(ExitKind::Crash { signal: 11, cause: CrashCause::Signal }, 0, pc);
        assert_ne!(segv(0x1000), segv(0x2000));
        assert_eq!(segv(0x1000), segv(0x1000));
        assert_ne!(crash_key(ExitKind::Oom, 0, 0), crash_key(panic, 0, 0));
    }

    #[test]
    fn a_hang_whose_confirmations_end_early_is_confirmed_ever_more_rarely() {
        let mut t = BugTable::hangs();
        t.hit(7);
        assert!(t.may_confirm(7));
        t.confirmed_slow(7);
        // Then at the 2nd, 4th, 8th timeout after each early end.
        let mut confirmed_at = Vec::new();
        for n in 1..=16 {
            t.hit(7);
            if t.may_confirm(7) {
                confirmed_at.push(n);
                t.confirmed_slow(7);
            }
        }
        assert_eq!(confirmed_at, [2, 6, 14]);
        // Another key is not affected, nor a key whose confirmation hung.
        t.hit(8);
        assert!(t.may_confirm(8));
        t.kept(8, 10);
        t.hit(8);
        assert!(t.may_confirm(8));
    }

    #[test]
    fn hangs_in_one_loop_share_a_site() {
        let mut t = BugTable::default();
        let a = t.hang_key(0x5000);
        assert_eq!(t.hang_key(0x5010), a);
        assert_eq!(t.hang_key(0x4f00), a);
        assert_ne!(t.hang_key(0x9000), a);
        t.hit(a);
        let unknown = t.hang_key(0);
        t.hit(unknown);
        assert_eq!(t.hang_sites(), 2, "the unknown class is no site of its own");
    }

    #[test]
    fn a_resumed_table_knows_its_hang_sites_and_their_files() {
        let mut t = BugTable::default();
        let site = t.hang_site(0x5000).unwrap();
        let name = format!("id:000003,src:000001,time:5,execs:9,op:havoc,{}", site_field(site));
        assert_eq!(parse_site(&name), Some(0x5000));
        let mut resumed = BugTable::hangs();
        resumed.restore_hang(&name, 10);
        assert_eq!(resumed.hang_sites(), 1);
        // A hang a few instructions away is the same site: its cap is full.
        let key = resumed.hang_key(0x5020);
        assert_eq!(key, t.hang_key(0x5000));
        assert!(!resumed.would_keep(key, 5));
        let other = resumed.hang_key(0x9000);
        assert!(resumed.would_keep(other, 5));
        // A function's hang: its key is in the name.
        let key = hang_function_key("cpp_demangle::ast::Substitution::demangle");
        assert_ne!(key, hang_function_key("cpp_demangle::ast::Name::demangle"));
        let name = format!("id:000004,src:000001,time:5,execs:9,op:havoc,{}", name_field(key));
        resumed.restore_hang(&name, 10);
        assert_eq!(resumed.hang_sites(), 2);
        assert!(!resumed.would_keep(key, 5));
    }
}
