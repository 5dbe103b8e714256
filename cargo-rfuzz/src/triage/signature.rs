//! Crash signatures: the one definition of "the same bug", used by `triage`,
//! `tmin` and the end-of-run summary of `run` and `fuzz`.
//!
//! A panic is identified by its location (`file:line:col`) and the first
//! line of its message. Any other crash by its kind (signal name, stack
//! overflow, out of memory, timeout, AddressSanitizer's error kind) and the
//! first few frames of its stack outside std, core, alloc and the rfuzz
//! runtime, from the backtrace the replay printed (the runtime prints one
//! for panics and, in standalone mode, for fatal signals; ASan prints its
//! own).

use serde::Serialize;

/// Frames of a backtrace that identify a crash that is not a panic.
pub(crate) const FRAMES: usize = 3;
/// Longest message kept, in characters.
const MESSAGE_CHARS: usize = 200;

/// What kind of crash.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A Rust panic.
    Panic,
    /// The stack overflowed.
    StackOverflow,
    /// An allocation over the limit, or failed.
    Oom,
    /// Ran past the timeout.
    Timeout,
    /// Killed by another signal (its name, e.g. `SIGSEGV`).
    Signal(String),
    /// An AddressSanitizer report: `asan-` and ASan's kind, e.g.
    /// `asan-heap-buffer-overflow`.
    Sanitizer(String),
}

impl Kind {
    /// Short name: `panic`, `stack-overflow`, `oom`, `timeout` or the signal.
    pub fn name(&self) -> &str {
        match self {
            Kind::Panic => "panic",
            Kind::StackOverflow => "stack-overflow",
            Kind::Oom => "oom",
            Kind::Timeout => "timeout",
            Kind::Signal(s) | Kind::Sanitizer(s) => s,
        }
    }
}

/// How a replay of one input ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The process exited with this status.
    Exited(i32),
    /// The process was killed by this signal.
    Signaled(i32),
    /// It ran past the timeout and was killed.
    TimedOut,
}

/// The identity of a bug.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Signature {
    /// Kind of crash.
    pub kind: Kind,
    /// A panic's `file:line:col`.
    pub location: Option<String>,
    /// First line of a panic's message, or what the runtime said.
    pub message: String,
    /// First frames outside std/core/alloc and the runtime (not part of a
    /// panic's identity: its location already pins it).
    pub frames: Vec<String>,
}

impl Signature {
    /// The string two crashes of the same bug share.
    /// A panic's key is [`rfuzz::protocol::signature::panic_key`] (digits in
    /// the message normalised), which the runtime also hashes into the
    /// direct protocol's header, so the fuzzer's per-bug file cap and
    /// `triage` agree on what one bug is.
    pub fn key(&self) -> String {
        match (&self.kind, &self.location) {
            (Kind::Panic, Some(loc)) => rfuzz::protocol::signature::panic_key(loc, &self.message),
            _ => format!("{}|{}", self.kind.name(), self.frames.join("|")),
        }
    }

    /// A short stable id of the bug (hash of [`Signature::key`]); for a
    /// panic it is also the `bug:` field of the crash files the fuzzer saved.
    pub fn id(&self) -> String {
        use rfuzz::protocol::signature;
        format!("{:08x}", signature::short_id(signature::hash(&self.key())))
    }

    /// One line for humans: "panicked at src/lib.rs:12:9 'magic'",
    /// "SIGSEGV in parse::read", "timeout".
    pub fn describe(&self) -> String {
        match (&self.kind, &self.location) {
            (Kind::Panic, Some(loc)) if self.message.is_empty() => format!("panicked at {loc}"),
            (Kind::Panic, Some(loc)) => format!("panicked at {loc} '{}'", self.message),
            (kind, _) => match self.frames.first() {
                Some(f) => format!("{} in {f}", kind.name()),
                None => kind.name().to_string(),
            },
        }
    }

    /// The signature of a replay: how it ended and what it wrote to stderr.
    /// `None` when the input ran cleanly (a non-zero exit is not a crash,
    /// as for the fuzzer).
    pub fn from_replay(ending: Ending, stderr: &str) -> Option<Signature> {
        let frames = frames(stderr);
        let sig =
            |kind, message: &str| Signature { kind, location: None, message: cut(message), frames: frames.clone() };
        // ASan exits 1 unless asked to abort: its report decides.
        if ending != Ending::TimedOut
            && let Some(r) = crate::report::sanitizer::parse(stderr)
        {
            let user = r.user_frames(FRAMES);
            return Some(Signature {
                kind: Kind::Sanitizer(format!("asan-{}", r.kind.replace(' ', "-"))),
                location: user.first().and_then(|f| f.location.clone()),
                message: cut(&r.summary()),
                frames: user.iter().map(|f| f.function.clone()).collect(),
            });
        }
        match ending {
            Ending::Exited(_) => None,
            Ending::TimedOut => Some(sig(Kind::Timeout, "")),
            Ending::Signaled(signal) => {
                if let Some((location, message)) = panic_location(stderr) {
                    return Some(Signature { kind: Kind::Panic, location: Some(location), message, frames });
                }
                let line = |needle: &str| stderr.lines().find(|l| l.contains(needle)).map(str::trim);
                if let Some(l) = line("rfuzz: stack overflow").or_else(|| line("has overflowed its stack")) {
                    return Some(sig(Kind::StackOverflow, l));
                }
                if let Some(l) = line("rfuzz: out of memory").or_else(|| line("memory allocation of")) {
                    return Some(sig(Kind::Oom, l));
                }
                Some(sig(Kind::Signal(crate::sys::process::signal_name(signal)), ""))
            }
        }
    }
}

fn cut(s: &str) -> String {
    s.chars().take(MESSAGE_CHARS).collect()
}

/// `("src/lib.rs:12:9", "first line of the message")` from a panic report:
/// `panicked at FILE:LINE:COL:` (the runtime's hook) or `thread 'x'
/// panicked at FILE:LINE:COL:` (std's), the message on the next line.
fn panic_location(stderr: &str) -> Option<(String, String)> {
    let mut lines = stderr.lines();
    while let Some(l) = lines.next() {
        let Some(at) = l.find("panicked at ") else { continue };
        let rest = l[at + "panicked at ".len()..].trim_end();
        // Older formats: `panicked at 'msg', src/lib.rs:1:2`.
        if let Some(old) = rest.strip_prefix('\'')
            && let Some((msg, loc)) = old.rsplit_once("', ")
        {
            return Some((loc.to_string(), cut(msg.lines().next().unwrap_or(""))));
        }
        let loc = rest.strip_suffix(':').unwrap_or(rest).to_string();
        let msg = lines.next().unwrap_or("").trim_end();
        return Some((loc, cut(msg)));
    }
    None
}

/// Whether a frame's function belongs to the standard library, the rfuzz
/// runtime or the process start-up, which say nothing about the bug.
pub(crate) fn is_plumbing(func: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "std::",
        "core::",
        "alloc::",
        "rfuzz::",
        "<std::",
        "<core::",
        "<alloc::",
        "<rfuzz::",
        "backtrace::",
        "__rust",
        "__rustc::",
        "rust_begin_unwind",
        "rust_panic",
        "__libc",
        "__GI_",
        "_start",
        "__sanitizer",
        "__restore_rt",
    ];
    const EXACT: &[&str] = &["main", "abort", "raise", "gsignal", "<unknown>", "__clone", "__clone3", "start_thread"];
    PREFIXES.iter().any(|p| func.starts_with(p)) || EXACT.contains(&func) || is_primitive_method(func)
}

/// A standard library method of a primitive type, slice or pointer, as a
/// symboliser names it: `<u64>::wrapping_add`, `<[u8]>::len`,
/// `<*const T>::add`, `<u32 as core::ops::Add>::add`. (A hang in a loop
/// around `x.wrapping_add(1)` was keyed by whichever of these two names the
/// interrupted instruction had.) A user's trait on a primitive stays:
/// `<u64 as my_crate::Trait>::f`.
fn is_primitive_method(func: &str) -> bool {
    const PRIMITIVES: &[&str] = &[
        "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize", "f32", "f64", "bool",
        "char", "str",
    ];
    let Some(ty) = func.strip_prefix('<') else { return false };
    let ty = ty.trim_start_matches('&').trim_start_matches("mut ");
    let ty = ty.strip_prefix("*const ").or_else(|| ty.strip_prefix("*mut ")).unwrap_or(ty);
    // What follows the type: `>::method` or ` as Trait>::method`.
    let after = if let Some(slice) = ty.strip_prefix('[') {
        // The element type may itself hold brackets: find the matching one.
        let mut depth = 1usize;
        let Some(end) = slice.char_indices().find_map(|(i, c)| {
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                _ => {}
            }
            (depth == 0).then_some(i)
        }) else {
            return false;
        };
        &slice[end + 1..]
    } else {
        match PRIMITIVES.iter().find(|p| ty.starts_with(*p) && ty[p.len()..].starts_with(['>', ' '])) {
            Some(p) => &ty[p.len()..],
            None if func.starts_with("<*const ") || func.starts_with("<*mut ") => {
                // A raw pointer to any type: its methods are core's.
                return ty.contains(">::") && !ty.contains(" as ");
            }
            None => return false,
        }
    };
    after.starts_with(">::")
        || ["core::", "std::", "alloc::"].iter().any(|c| after.strip_prefix(" as ").is_some_and(|t| t.starts_with(c)))
}

/// Drops a symbol's trailing `::h0123456789abcdef` hash.
pub(crate) fn strip_hash(func: &str) -> &str {
    match func.rsplit_once("::h") {
        Some((head, h)) if h.len() == 16 && h.chars().all(|c| c.is_ascii_hexdigit()) => head,
        _ => func,
    }
}

/// The first frames outside the plumbing of a std-format backtrace
/// (`  12: crate::func` lines).
fn frames(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| {
            let (n, func) = l.trim_start().split_once(": ")?;
            n.chars().all(|c| c.is_ascii_digit()).then_some(strip_hash(func.trim()))
        })
        .filter(|f| !f.is_empty() && !is_plumbing(f))
        .take(FRAMES)
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_methods_of_primitive_types_are_plumbing_user_traits_are_not() {
        for f in [
            "<u64>::wrapping_add",
            "<[u8]>::len",
            "<[[u8; 4]]>::iter",
            "<str>::find",
            "<&str>::len",
            "<*const u8>::add",
            "<*mut my_crate::Node>::offset",
            "<u32 as core::ops::arith::Add>::add",
            "<usize as core::iter::range::Step>::forward_unchecked",
        ] {
            assert!(is_plumbing(f), "{f}");
        }
        for f in [
            "planted::loop_near",
            "<u64 as my_crate::Checksum>::sum",
            "<[u8] as my_crate::Parse>::parse",
            "<my_crate::Parser>::next",
            "<usizes::Thing>::f",
            "<my_crate::Parser as core::iter::Iterator>::next",
        ] {
            assert!(!is_plumbing(f), "{f}");
        }
    }

    const PANIC: &str = "rfuzz: running crashes/id:000000 (9 bytes)\n\
        panicked at planted/src/lib.rs:12:9:\n\
        planted bug: a long shout\nsecond line\n\
        stack backtrace:\n   0: std::backtrace::Backtrace::force_capture\n             at /rustc/x/library/std/src/backtrace.rs:1:1\n\
           1: rfuzz::install_panic_hook::{{closure}}\n   2: planted::two_panics::h0123456789abcdef\n";

    #[test]
    fn a_panic_is_its_location_and_first_message_line() {
        let s = Signature::from_replay(Ending::Signaled(6), PANIC).unwrap();
        assert_eq!(s.kind, Kind::Panic);
        assert_eq!(s.location.as_deref(), Some("planted/src/lib.rs:12:9"));
        assert_eq!(s.message, "planted bug: a long shout");
        assert_eq!(s.frames, vec!["planted::two_panics"]);
        assert_eq!(s.describe(), "panicked at planted/src/lib.rs:12:9 'planted bug: a long shout'");
        let other = PANIC.replace("12:9", "15:9");
        assert_ne!(s.key(), Signature::from_replay(Ending::Signaled(6), &other).unwrap().key());
        // std's own hook (AFL++ binaries) words it differently.
        let std_hook = "thread 'main' panicked at planted/src/lib.rs:12:9:\nplanted bug: a long shout\n";
        assert_eq!(s.key(), Signature::from_replay(Ending::Signaled(6), std_hook).unwrap().key());
        // The id is the one layout hash of the key, as before, and the
        // runtime's panic hash agrees with it.
        assert_eq!(s.id(), format!("{:08x}", crate::sync::layout::fnv1a([s.key().as_bytes()]) >> 32));
        let runtime =
            rfuzz::protocol::signature::panic_key("planted/src/lib.rs:12:9", "planted bug: a long shout\nsecond line");
        assert_eq!(s.key(), runtime);
        // Digits in a message do not split a bug.
        let a =
            Signature::from_replay(Ending::Signaled(6), "panicked at a.rs:1:1:\nindex 3 out of range for length 2\n");
        let b =
            Signature::from_replay(Ending::Signaled(6), "panicked at a.rs:1:1:\nindex 70 out of range for length 9\n");
        assert_eq!(a.unwrap().id(), b.unwrap().id());
    }

    #[test]
    fn other_crashes_are_their_kind_and_first_frames_outside_std() {
        let bt = "stack backtrace:\n   0: std::sys::backtrace\n   1: parser::read_value::h0123456789abcdef\n   2: parser::parse\n   3: fuzz::main::{{closure}}\n   4: parser::deep\n   5: main\n";
        let s = Signature::from_replay(Ending::Signaled(11), bt).unwrap();
        assert_eq!(s.kind, Kind::Signal("SIGSEGV".into()));
        assert_eq!(s.frames, vec!["parser::read_value", "parser::parse", "fuzz::main::{{closure}}"]);
        assert_eq!(s.describe(), "SIGSEGV in parser::read_value");
        assert_eq!(s.key(), "SIGSEGV|parser::read_value|parser::parse|fuzz::main::{{closure}}");
        let so = Signature::from_replay(Ending::Signaled(11), "rfuzz: stack overflow (deep)\n").unwrap();
        assert_eq!(so.kind, Kind::StackOverflow);
        let oom = Signature::from_replay(Ending::Signaled(6), "rfuzz: out of memory: an allocation of 9 bytes\n");
        assert_eq!(oom.unwrap().kind, Kind::Oom);
        assert_eq!(Signature::from_replay(Ending::TimedOut, "").unwrap().kind, Kind::Timeout);
        assert_eq!(Signature::from_replay(Ending::Exited(0), PANIC), None);
    }

    #[test]
    fn an_asan_report_is_its_kind_and_user_frames() {
        let report = "==1==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x7b4b at pc 0x55\n\
            WRITE of size 1 at 0x7b4b thread T0\n\
                #0 0x559e in cparse::oob_write /src/lib.rs:22:18\n\
                #1 0x559f in fuzz::main::{{closure}} /fuzz/t.rs:3:5\n\
                #2 0x55a0 in rfuzz::standalone::run /x/standalone.rs:70:9\n";
        let s = Signature::from_replay(Ending::Exited(1), report).unwrap();
        assert_eq!(s.kind, Kind::Sanitizer("asan-heap-buffer-overflow".into()));
        assert_eq!(s.location.as_deref(), Some("/src/lib.rs:22:18"));
        assert_eq!(s.key(), "asan-heap-buffer-overflow|cparse::oob_write|fuzz::main::{{closure}}");
    }

    #[test]
    fn old_panic_format_and_long_messages() {
        let s =
            Signature::from_replay(Ending::Signaled(6), "thread 'main' panicked at 'boom', src/lib.rs:1:2\n").unwrap();
        assert_eq!((s.location.as_deref(), s.message.as_str()), (Some("src/lib.rs:1:2"), "boom"));
        let long = format!("panicked at a.rs:1:1:\n{}\n", "é".repeat(500));
        let s = Signature::from_replay(Ending::Signaled(6), &long).unwrap();
        assert_eq!(s.message.chars().count(), MESSAGE_CHARS);
    }
}
