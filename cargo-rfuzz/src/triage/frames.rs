//! Naming the frames a fatal signal recorded: the runtime unwinds the
//! faulting thread in its signal handler and reports the frames' offsets in
//! the executable (through the direct protocol's header to the fuzzer, and on
//! stderr in a standalone replay to `triage`). Both name them here, with the
//! binary's debug information (inlined frames included, as std's backtraces
//! show them), so both give a signal's bug the same id.

use super::signature::{is_plumbing, strip_hash};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Offsets from here on are addresses in other modules (the C library, the
/// vDSO): no executable is a terabyte.
pub const OUTSIDE_EXECUTABLE: u64 = 1 << 40;

/// Names frames of one binary, loading its debug information on first use.
pub struct FrameNamer {
    binary: PathBuf,
    /// The loader and the address of the load base in the binary's
    /// symbols (0 for a position-independent executable).
    loader: Option<Option<(addr2line::Loader, u64)>>,
    cache: HashMap<u64, Vec<String>>,
}

impl std::fmt::Debug for FrameNamer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameNamer").field("binary", &self.binary).field("named", &self.cache.len()).finish()
    }
}

impl FrameNamer {
    /// A namer for `binary` (nothing is read yet).
    pub fn new(binary: &Path) -> FrameNamer {
        FrameNamer { binary: binary.to_path_buf(), loader: None, cache: HashMap::new() }
    }

    /// The functions at `offset` (an offset from the executable's load
    /// address), innermost inlined one first, hashes dropped; empty when the
    /// offset is outside the executable or unknown.
    pub fn names(&mut self, offset: u64) -> &[String] {
        if !self.cache.contains_key(&offset) {
            let names = self.lookup(offset);
            self.cache.insert(offset, names);
        }
        &self.cache[&offset]
    }

    fn lookup(&mut self, offset: u64) -> Vec<String> {
        if offset == 0 || offset >= OUTSIDE_EXECUTABLE {
            return Vec::new();
        }
        let binary = &self.binary;
        let Some((loader, base)) =
            self.loader.get_or_insert_with(|| Some((addr2line::Loader::new(binary).ok()?, load_base(binary))))
        else {
            return Vec::new();
        };
        let addr = offset + *base;
        let mut names = Vec::new();
        if let Ok(mut frames) = loader.find_frames(addr) {
            while let Ok(Some(frame)) = frames.next() {
                if let Some(f) = frame.function
                    && let Ok(name) = f.demangle()
                {
                    names.push(strip_hash(&name).to_string());
                }
            }
        }
        if names.is_empty()
            && let Some(sym) = loader.find_symbol(addr)
        {
            let name = addr2line::demangle(sym, addr2line::gimli::DW_LANG_Rust).unwrap_or_else(|| sym.to_string());
            names.push(strip_hash(&name).to_string());
        }
        names
    }

    /// The first `n` functions of the user's code among `frames` (innermost
    /// first): frames outside the executable, in std, core, alloc or the
    /// runtime are skipped.
    pub fn user_frames(&mut self, frames: &[u64], n: usize) -> Vec<String> {
        let mut out = Vec::new();
        for &f in frames {
            for name in self.names(f) {
                if out.len() < n && !is_plumbing(name) {
                    out.push(name.clone());
                }
            }
        }
        out
    }
}

/// Where a binary's first segment is in its own addresses when it is not
/// position-independent (the runtime's offsets are from the address the
/// first segment was mapped at); 0 for a PIE.
fn load_base(binary: &Path) -> u64 {
    use object::{Object, ObjectSegment};
    let Ok(data) = std::fs::read(binary) else { return 0 };
    let Ok(file) = object::File::parse(&*data) else { return 0 };
    if file.kind() != object::ObjectKind::Executable {
        return 0;
    }
    file.segments().map(|s| s.address()).min().map_or(0, |a| a & !0xfff)
}

/// The offsets of a standalone replay's `rfuzz: fault frames:` line.
pub fn parse_fault_frames(stderr: &str) -> Option<Vec<u64>> {
    let line = stderr.lines().find_map(|l| l.strip_prefix(rfuzz::protocol::FAULT_FRAMES_PREFIX))?;
    let frames: Vec<u64> = line.split_whitespace().filter_map(|w| u64::from_str_radix(w, 16).ok()).collect();
    (!frames.is_empty()).then_some(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_frames_parse_and_other_modules_have_no_names() {
        let err = "rfuzz: fault frames: 1a2b 7f0000001000 c0\nrfuzz: the input crashed the target\n";
        assert_eq!(parse_fault_frames(err), Some(vec![0x1a2b, 0x7f00_0000_1000, 0xc0]));
        assert_eq!(parse_fault_frames("no such line"), None);
        let mut namer = FrameNamer::new(Path::new("/nonexistent"));
        assert!(namer.names(0x7f00_0000_1000).is_empty());
        assert!(namer.user_frames(&[0x1a2b], 3).is_empty(), "no binary, no names");
    }

    #[test]
    fn names_functions_of_this_test_binary() {
        // This test binary is a PIE with debug information: the offset of a
        // function of this crate names it, and std's functions are plumbing.
        let exe = std::env::current_exe().unwrap();
        let base = {
            // SAFETY: Dl_info is plain old data (pointers); all-zero is valid.
            let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
            // SAFETY: dladdr fills `info` for an address of this executable.
            assert_ne!(unsafe { libc::dladdr(parse_fault_frames as *const libc::c_void, &mut info) }, 0);
            info.dli_fbase as u64
        };
        let offset = parse_fault_frames as *const () as u64 - base;
        let mut namer = FrameNamer::new(&exe);
        let names = namer.names(offset + 1).to_vec();
        assert!(names.iter().any(|n| n.ends_with("frames::parse_fault_frames")), "{names:?}");
        assert_eq!(namer.user_frames(&[0x7f00_0000_1000, offset + 1], 3), names);
    }
}
