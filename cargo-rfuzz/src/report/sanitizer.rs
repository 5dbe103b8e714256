//! AddressSanitizer reports read back from the text ASan prints when a crash
//! is replayed standalone (`cargo rfuzz repro`): the kind of error and the
//! stack of the faulting access. While fuzzing the report goes to
//! /dev/null and the runtime hands the engine only the kind (the crash
//! name's `asan-<kind>`); what identifies a bug beyond its kind is the first
//! frames of this stack outside the sanitizer, std/core/alloc and the
//! runtime ([`AsanReport::user_frames`]).

/// One frame of an ASan stack: `#3 0x55e7 in crate::func /src/lib.rs:22:18`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The function (demangled by ASan's symbolizer), or `?` when unknown.
    pub function: String,
    /// `file:line[:col]`, when the symbolizer knew it.
    pub location: Option<String>,
}

/// What an ASan report says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsanReport {
    /// ASan's name for the error: `heap-buffer-overflow`, `SEGV`,
    /// `attempting double-free`, ...
    pub kind: String,
    /// The first stack of the report (where the bad access happened).
    pub frames: Vec<Frame>,
}

const BANNER: &str = "ERROR: AddressSanitizer: ";

/// Finds the first ASan report in `text` (a target's stderr).
pub fn parse(text: &str) -> Option<AsanReport> {
    let mut lines = text.lines().skip_while(|l| !l.contains(BANNER));
    let header = lines.next()?;
    let rest = &header[header.find(BANNER)? + BANNER.len()..];
    let kind = rest.split(" on ").next().unwrap_or(rest).split(" (").next().unwrap_or(rest).trim().to_string();
    let mut frames = Vec::new();
    for line in lines {
        let t = line.trim_start();
        match t.strip_prefix('#') {
            Some(f) => frames.extend(parse_frame(f)),
            // The first stack ends at the first other line after it began.
            None if !frames.is_empty() => break,
            None => {}
        }
    }
    Some(AsanReport { kind, frames })
}

fn parse_frame(f: &str) -> Option<Frame> {
    // `N 0xADDR in FUNCTION LOCATION`, or `N 0xADDR  (MODULE+0xOFF)` with no function.
    let (_, after_in) = f.split_once(" in ")?;
    let mut s = after_in.trim();
    if let Some(i) = s.find(" (BuildId:") {
        s = s[..i].trim_end();
    }
    // `func (module+0x1234)`: no source location.
    if s.ends_with(')')
        && let Some(i) = s.rfind(" (")
        && s[i..].contains("+0x")
    {
        return Some(Frame { function: s[..i].to_string(), location: None });
    }
    match s.rsplit_once(' ') {
        Some((func, loc)) if is_location(loc) => {
            Some(Frame { function: func.to_string(), location: Some(loc.to_string()) })
        }
        _ => Some(Frame { function: s.to_string(), location: None }),
    }
}

fn is_location(s: &str) -> bool {
    let mut parts = s.rsplitn(3, ':');
    let last = parts.next().unwrap_or("");
    !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) && parts.next().is_some()
}

/// Frames of the sanitizer, the standard library and the rfuzz runtime.
fn is_infrastructure(f: &Frame) -> bool {
    const PREFIXES: [&str; 8] =
        ["std::", "core::", "alloc::", "rfuzz::", "__asan", "__interceptor", "___interceptor", "__sanitizer"];
    let func = f.function.trim_start_matches('<');
    PREFIXES.iter().any(|p| func.starts_with(p))
        || f.location.as_deref().is_some_and(|l| l.starts_with("/rustc/") || l.contains("compiler-rt/"))
}

impl AsanReport {
    /// The first `n` frames of the faulting stack in the user's code (the
    /// part of a crash signature that tells bugs of one kind apart).
    pub fn user_frames(&self, n: usize) -> Vec<&Frame> {
        self.frames.iter().filter(|f| !is_infrastructure(f)).take(n).collect()
    }

    /// One line: the kind and where, e.g. `heap-buffer-overflow in
    /// cparse::oob_write (src/lib.rs:22:18)`.
    pub fn summary(&self) -> String {
        match self.user_frames(1).first() {
            Some(Frame { function, location: Some(l) }) => format!("{} in {function} ({l})", self.kind),
            Some(Frame { function, location: None }) => format!("{} in {function}", self.kind),
            None => self.kind.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "rfuzz: running crash (8 bytes)
=================================================================
==20753==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x7b4bdfbe0043 at pc 0x559e04d56c4f bp 0x7ffd0b44b2d0 sp 0x7ffd0b44b2c8
WRITE of size 1 at 0x7b4bdfbe0043 thread T0
    #0 0x559e04d56c4e in cparse::oob_write /src/cparse/src/lib.rs:22:18
    #1 0x559e04d56c00 in cparse_fuzz::rfuzz_harness /src/cparse/fuzz/fuzz_targets/oob.rs:2:1
    #2 0x559e04d56b00 in rfuzz::run_harness /cache/rfuzz-0.1.0/src/lib.rs:120:5
    #3 0x557208f8676d in main (/target/oob+0x10576d) (BuildId: 1b8120b67e050fa531c74c80d6e23dd37849db2b)

0x7b4bdfbe0043 is located 3 bytes after 16-byte region [0x7b4bdfbe0030,0x7b4bdfbe0040)
allocated by thread T0 here:
    #0 0x557208f54824 in malloc /rustc/llvm/src/llvm-project/compiler-rt/lib/asan/asan_malloc_linux.cpp:67:3
    #1 0x557208f867f5 in alloc::alloc::alloc /rustc/e50aa6/library/alloc/src/alloc.rs:94:9
";

    #[test]
    fn reads_the_kind_and_the_faulting_stack() {
        let r = parse(REPORT).unwrap();
        assert_eq!(r.kind, "heap-buffer-overflow");
        assert_eq!(r.frames.len(), 4, "only the first stack: {:?}", r.frames);
        assert_eq!(
            r.frames[0],
            Frame { function: "cparse::oob_write".into(), location: Some("/src/cparse/src/lib.rs:22:18".into()) }
        );
        assert_eq!(r.frames[3], Frame { function: "main".into(), location: None });
        let user: Vec<&str> = r.user_frames(3).iter().map(|f| f.function.as_str()).collect();
        assert_eq!(user, ["cparse::oob_write", "cparse_fuzz::rfuzz_harness", "main"]);
        assert_eq!(r.summary(), "heap-buffer-overflow in cparse::oob_write (/src/cparse/src/lib.rs:22:18)");
    }

    #[test]
    fn other_kinds_and_frames() {
        let r = parse(
            "==1==ERROR: AddressSanitizer: SEGV on unknown address 0x000000000000 (pc 0x1 bp 0x2 sp 0x3 T0)\n\
             ==1==The signal is caused by a WRITE memory access.\n\
             \x20   #0 0x55 in <alloc::vec::Vec<u8> as core::ops::Drop>::drop /rustc/x/vec.rs:1:1\n\
             \x20   #1 0x56 in cp_parse /src/csrc/parser.c:40:5\n",
        )
        .unwrap();
        assert_eq!(r.kind, "SEGV");
        assert_eq!(r.summary(), "SEGV in cp_parse (/src/csrc/parser.c:40:5)");
        let r = parse("==2==ERROR: AddressSanitizer: attempting double-free on 0x6020 in thread T0:\n").unwrap();
        assert_eq!(r.kind, "attempting double-free");
        assert_eq!(r.summary(), "attempting double-free");
        assert_eq!(parse("thread 'main' panicked at src/lib.rs:1:1"), None);
    }
}
