//! Executors: run inputs through a target's forkserver and say how each run
//! ended.
//!
//! * [`direct::DirectExecutor`] speaks our private protocol with targets built
//!   with the rfuzz runtime: a persistent child that runs whole batches of
//!   inputs from shared memory and stops at the first one with new coverage.
//! * [`afl::AflExecutor`] speaks the AFL++ 4.20+ protocol with any
//!   AFL++-compatible binary: fork or persistent (`SIGSTOP`) mode, test cases
//!   in shared memory when the target supports it, else a file or stdin.
//!
//! Both offer the same batch interface, so the fuzzing loop is one piece of
//! code: fill a batch, run it, handle the input it stopped at. Only the
//! direct protocol tells why a run died (panic, out-of-memory, stack
//! overflow, sanitizer report: see [`CrashCause`]); through the AFL++
//! protocol a crash is known by its signal alone.

pub mod afl;
pub mod direct;
pub mod process;

pub use process::TargetCommand;

use anyhow::Result;
use std::path::Path;
use std::time::Duration;

/// Why a crashing run died, beyond its signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrashCause {
    /// A Rust panic (the runtime aborts after recording it).
    Panic,
    /// The stack overflowed.
    StackOverflow,
    /// AddressSanitizer reported a memory error of this kind.
    Sanitizer(SanitizerKind),
    /// Any other fatal signal.
    Signal,
}

/// The kind of error a sanitizer reported (ASan's bug type, such as
/// `heap-buffer-overflow`), spelled for a file name: lowercase ASCII letters,
/// digits and single dashes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SanitizerKind {
    bytes: [u8; rfuzz::protocol::direct::SANITIZER_KIND_LEN],
    len: u8,
}

impl SanitizerKind {
    /// Normalises what the runtime recorded (`SEGV` → `segv`, `attempting
    /// double-free` → `attempting-double-free`); `error` when empty.
    pub fn new(raw: &[u8]) -> SanitizerKind {
        let mut k = SanitizerKind { bytes: [0; rfuzz::protocol::direct::SANITIZER_KIND_LEN], len: 0 };
        let push = |k: &mut SanitizerKind, c: u8| {
            if (k.len as usize) < k.bytes.len() {
                k.bytes[k.len as usize] = c;
                k.len += 1;
            }
        };
        for &c in raw {
            if c.is_ascii_alphanumeric() {
                push(&mut k, c.to_ascii_lowercase());
            } else if k.len > 0 && k.bytes[k.len as usize - 1] != b'-' {
                push(&mut k, b'-');
            }
        }
        while k.len > 0 && k.bytes[k.len as usize - 1] == b'-' {
            k.len -= 1;
        }
        if k.len == 0 {
            return SanitizerKind::new(b"error");
        }
        k
    }

    /// The kind as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).expect("ASCII by construction")
    }
}

impl std::fmt::Debug for SanitizerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SanitizerKind({})", self.as_str())
    }
}

impl std::fmt::Display for SanitizerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// Finished normally.
    Ok,
    /// Killed by a signal.
    Crash {
        /// The signal number.
        signal: i32,
        /// What the runtime recorded about it.
        cause: CrashCause,
    },
    /// An allocation failed or exceeded the memory limit.
    Oom,
    /// Ran longer than the timeout and was killed.
    Timeout,
}

impl ExitKind {
    /// Crashes and OOMs are saved under `crashes/`.
    pub fn is_crash(self) -> bool {
        matches!(self, ExitKind::Crash { .. } | ExitKind::Oom)
    }
}

/// Where a batch stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchStop {
    /// Every input ran; none had new coverage.
    Completed,
    /// Input `index` has new coverage; the map holds its raw counters.
    Interesting(usize),
    /// Input `index` ended the run abnormally (or the process exited); the
    /// map holds what it covered until then.
    Ended {
        /// Index of the input.
        index: usize,
        /// How it ended.
        kind: ExitKind,
    },
}

/// Runs inputs through a target.
/// Counts of the processes a target started (see the runtime's `contain`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetProcs {
    /// Processes started.
    pub started: u64,
    /// Processes still running when their input ended, killed.
    pub killed: u64,
    /// Spawns refused at the `--max-procs` cap.
    pub refused: u64,
}

pub trait Executor {
    /// Bytes of the coverage map the target uses.
    fn map_size(&self) -> usize;
    /// The coverage map of the last run.
    fn map(&self) -> &[u8];
    /// The coverage map and the virgin map, for classifying and updating.
    /// (The virgin map lives with the executor: our direct protocol's child
    /// reads it to decide which inputs are worth stopping for.)
    fn map_and_virgin(&mut self) -> (&mut [u8], &mut [u8]);
    /// Sets the per-input timeout.
    fn set_timeout(&mut self, timeout: Duration);
    /// The per-input timeout.
    fn timeout(&self) -> Duration;
    /// Largest input a batch entry or single run can hold.
    fn max_input_len(&self) -> usize;
    /// Empties the batch.
    fn batch_clear(&mut self);
    /// Adds an input to the batch; false when the batch is full (inputs
    /// longer than [`Executor::max_input_len`] are truncated).
    fn batch_push(&mut self, input: &[u8]) -> bool;
    /// Number of inputs in the batch.
    fn batch_len(&self) -> usize;
    /// Input `i` of the batch.
    fn batch_input(&self, i: usize) -> &[u8];
    /// Runs batch inputs from `from` on; with `stop_on_new`, stops after the
    /// first input whose coverage has bits still set in the virgin map.
    fn run_batch(&mut self, from: usize, stop_on_new: bool) -> Result<BatchStop>;
    /// Runs one input without touching the batch.
    fn run_one(&mut self, input: &[u8]) -> Result<ExitKind>;
    /// Runs one input with compare logging; returns the log's records, or
    /// `None` if the target cannot log compares.
    fn run_cmplog(&mut self, input: &[u8]) -> Result<Option<Vec<rfuzz::protocol::cmplog::Record>>>;
    /// How many batch executions took the path with this hash (approximate:
    /// a fixed-size table indexed by hash).
    fn path_hits(&self, hash: u64) -> u32;
    /// Short description for status lines ("direct persistent", ...).
    fn describe(&self) -> String;
    /// What the runtime said about the last run that died or was killed.
    /// `None` where the protocol cannot say (AFL++'s): then crashes and
    /// hangs are de-duplicated by coverage alone.
    fn death_info(&self) -> Option<Death> {
        None
    }
    /// Processes the target started, killed at the end of their input, and
    /// refused under `--max-procs` (zero where the protocol does not say).
    fn target_procs(&self) -> TargetProcs {
        TargetProcs::default()
    }
}

/// What the runtime said about a run that died or was killed, as in the
/// direct protocol's header ([`rfuzz::protocol::direct::Header`]); 0 or
/// empty where unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Death {
    /// A panic's signature hash (`crash_sig`).
    pub crash_sig: u64,
    /// Where a fault or the dump request interrupted the run (`fault_pc`).
    pub fault_pc: u64,
    /// A fatal signal's stack, innermost first (`frames`).
    pub frames: Vec<u64>,
}

/// Which protocol a binary speaks, from the signatures its runtime embeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryKind {
    /// Built with the rfuzz runtime: direct protocol available.
    Rfuzz,
    /// AFL++-instrumented (has `__AFL_SHM_ID`), persistent or not.
    Afl {
        /// `##SIG_AFL_PERSISTENT##` present.
        persistent: bool,
    },
    /// Neither: not instrumented.
    Plain,
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let mut i = 0;
    while i + needle.len() <= haystack.len() {
        match haystack[i..haystack.len() - rest.len()].iter().position(|&b| b == first) {
            Some(p) => {
                let at = i + p;
                if &haystack[at + 1..at + needle.len()] == rest {
                    return true;
                }
                i = at + 1;
            }
            None => return false,
        }
    }
    false
}

/// Inspects a binary for the runtime signatures.
pub fn inspect_binary(path: &Path) -> Result<BinaryKind> {
    use anyhow::Context;
    let data = std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    Ok(if contains(&data, rfuzz::protocol::direct::BINARY_SIG) {
        BinaryKind::Rfuzz
    } else if contains(&data, rfuzz::protocol::SHM_ENV_VAR_SIG) {
        BinaryKind::Afl { persistent: contains(&data, rfuzz::protocol::PERSIST_SIG) }
    } else {
        BinaryKind::Plain
    })
}

/// Whether a binary links libFuzzer (its entry points and banner are in it).
pub fn is_libfuzzer_binary(path: &Path) -> Result<bool> {
    use anyhow::Context;
    let data = std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    Ok(contains(&data, b"LLVMFuzzerTestOneInput") && contains(&data, b"libFuzzer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizer_kinds_are_spelled_for_file_names() {
        assert_eq!(SanitizerKind::new(b"heap-buffer-overflow").as_str(), "heap-buffer-overflow");
        assert_eq!(SanitizerKind::new(b"SEGV").as_str(), "segv");
        assert_eq!(SanitizerKind::new(b"attempting double-free").as_str(), "attempting-double-free");
        assert_eq!(SanitizerKind::new(b"../x,y").as_str(), "x-y");
        assert_eq!(SanitizerKind::new(b"").as_str(), "error");
        assert_eq!(SanitizerKind::new(&[b'a'; 100]).as_str().len(), rfuzz::protocol::direct::SANITIZER_KIND_LEN);
    }

    #[test]
    fn substring_search() {
        assert!(contains(b"xx##SIG##yy", b"##SIG##"));
        assert!(!contains(b"xx##SIG#yy", b"##SIG##"));
        assert!(contains(b"##SIG##", b"##SIG##"));
        assert!(!contains(b"#", b"##"));
        assert!(contains(b"a#b##c", b"##c"));
    }
}
