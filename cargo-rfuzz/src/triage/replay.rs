//! Replaying inputs through a target's standalone mode, one process per
//! input, in parallel, each with a time limit: the panic message and
//! backtrace it prints give the crash signature.

use super::signature::{Ending, Kind, Signature};
use crate::engine::executor::{BinaryKind, inspect_binary};
use crate::sys::process;
use anyhow::{Context, Result};
use std::ffi::OsString;
use std::io::{Read, Seek};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Most of a replay's stderr that is kept (a backtrace is a few KiB).
const STDERR_CAP: u64 = 256 << 10;

/// Default time limit of one replay: symbolizing the backtrace of a panic
/// alone takes a tenth of a second.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// How the input reaches the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// As a file argument (rfuzz's standalone mode).
    Argument,
    /// In place of `@@` in the target arguments.
    Placeholder,
    /// On standard input (AFL++ binaries without `@@`).
    Stdin,
}

/// Runs one binary on inputs.
#[derive(Debug, Clone)]
pub struct Replayer {
    binary: PathBuf,
    args: Vec<OsString>,
    delivery: Delivery,
    timeout: Duration,
    mem_limit_mb: Option<u64>,
    /// Names the frames a fatal signal recorded (shared by clones: the
    /// debug information is read once).
    namer: std::sync::Arc<Mutex<super::frames::FrameNamer>>,
}

/// What one replay showed.
#[derive(Debug, Clone)]
pub struct Replay {
    /// How the process ended.
    pub ending: Ending,
    /// Its signature; `None` when the input ran cleanly.
    pub signature: Option<Signature>,
    /// What it printed on stderr (capped).
    pub stderr: String,
}

impl Replayer {
    /// A replayer for `binary` with the fuzzing run's target arguments.
    pub fn new(binary: &Path, args: &[OsString], timeout: Duration, mem_limit_mb: Option<u64>) -> Result<Replayer> {
        let kind = inspect_binary(binary)?;
        let delivery = if args.iter().any(|a| a == "@@") {
            Delivery::Placeholder
        } else if kind == BinaryKind::Rfuzz {
            Delivery::Argument
        } else {
            Delivery::Stdin
        };
        let namer = std::sync::Arc::new(Mutex::new(super::frames::FrameNamer::new(binary)));
        Ok(Replayer { binary: binary.to_path_buf(), args: args.to_vec(), delivery, timeout, mem_limit_mb, namer })
    }

    /// The binary.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Replays the file at `path`: without a backtrace first (a panic's
    /// location is its signature), again with one for any other crash.
    pub fn replay(&self, path: &Path) -> Result<Replay> {
        let first = self.run(path, false, false)?;
        match &first.signature {
            // A panic's location and an ASan report need no backtrace.
            Some(s) if matches!(s.kind, Kind::StackOverflow | Kind::Oom | Kind::Signal(_)) => {
                let again = self.run(path, true, false)?;
                Ok(if again.signature.as_ref().is_some_and(|a| a.kind == s.kind) { again } else { first })
            }
            _ => Ok(first),
        }
    }

    /// The `Debug` form of the typed (`arbitrary`) value the target makes of
    /// the file at `path`; `None` for targets that take bytes.
    pub fn debug_form(&self, path: &Path) -> Result<Option<String>> {
        let r = self.run(path, false, true)?;
        let mut lines = r.stderr.lines().skip_while(|l| !l.starts_with("rfuzz: input as "));
        let Some(head) = lines.next() else { return Ok(None) };
        let ty = head.trim_start_matches("rfuzz: input as ").trim_end_matches(':');
        let body: Vec<&str> = lines.take_while(|l| !l.starts_with("rfuzz: ") && !l.contains("panicked at ")).collect();
        Ok(Some(format!("{ty}: {}", body.join("\n"))))
    }

    /// The time limit of one replay.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The command that replays the file at `path`: its own process group,
    /// no core dump, the memory limit, killed when we die, stdout and
    /// stderr discarded. Run it with [`process::run_group_for`].
    pub fn command(&self, path: &Path, backtrace: bool) -> Result<Command> {
        let mut c = Command::new(&self.binary);
        for a in &self.args {
            if a == "@@" {
                c.arg(path)
            } else {
                c.arg(a)
            };
        }
        match self.delivery {
            Delivery::Argument => {
                c.arg(path).stdin(Stdio::null());
            }
            Delivery::Placeholder => {
                c.stdin(Stdio::null());
            }
            Delivery::Stdin => {
                let f = std::fs::File::open(path).with_context(|| format!("failed to open {}", path.display()))?;
                c.stdin(f);
            }
        }
        c.stdout(Stdio::null()).stderr(Stdio::null());
        c.env("RUST_BACKTRACE", if backtrace { "1" } else { "0" });
        c.env(rfuzz::protocol::MALLOC_LIMIT_ENV_VAR, self.mem_limit_mb.unwrap_or(2048).to_string());
        for var in [rfuzz::protocol::SHM_ENV_VAR, rfuzz::protocol::direct::ENV_VAR] {
            c.env_remove(var);
        }
        // Its own process group, so a timeout kills everything it started.
        c.process_group(0);
        let mem = self.mem_limit_mb;
        // SAFETY: between fork and exec only async-signal-safe calls are
        // made (setrlimit, prctl) on local values.
        unsafe {
            c.pre_exec(move || {
                let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                libc::setrlimit(libc::RLIMIT_CORE, &zero);
                if let Some(mb) = mem {
                    let bytes = mb.saturating_mul(1 << 20);
                    libc::setrlimit(libc::RLIMIT_DATA, &libc::rlimit { rlim_cur: bytes, rlim_max: bytes });
                }
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        Ok(c)
    }

    fn run(&self, path: &Path, backtrace: bool, print_input: bool) -> Result<Replay> {
        let mut c = self.command(path, backtrace)?;
        let mut err = tempfile::tempfile().context("failed to create a temporary file")?;
        c.stderr(err.try_clone()?);
        if print_input {
            c.env(rfuzz::protocol::PRINT_INPUT_ENV_VAR, "1");
        }
        let mut child = c.spawn().with_context(|| format!("failed to run {}", self.binary.display()))?;
        // Anything it left behind, or all of it on a timeout, is killed
        // with its group before it is reaped.
        let status = process::run_group_for(&mut child, self.timeout)?;
        let ending = match status {
            Some(s) => match (s.code(), s.signal()) {
                (Some(c), _) => Ending::Exited(c),
                (None, Some(sig)) => Ending::Signaled(sig),
                _ => Ending::Exited(0),
            },
            None => Ending::TimedOut,
        };
        let mut buf = Vec::new();
        err.rewind()?;
        err.take(STDERR_CAP).read_to_end(&mut buf)?;
        let stderr = String::from_utf8_lossy(&buf).into_owned();
        let mut signature = Signature::from_replay(ending, &stderr);
        // A fatal signal: the frames the runtime recorded name it, as the
        // fuzzer named it (the printed backtrace is the fallback).
        if let Some(sig) = signature.as_mut()
            && matches!(sig.kind, super::signature::Kind::Signal(_))
            && let Some(frames) = super::frames::parse_fault_frames(&stderr)
        {
            let mut namer = self.namer.lock().unwrap_or_else(|e| e.into_inner());
            let named = namer.user_frames(&frames, super::signature::FRAMES);
            if !named.is_empty() {
                sig.frames = named;
            }
        }
        Ok(Replay { ending, signature, stderr })
    }

    /// Replays `data`, written to a temporary file in `dir`.
    pub fn replay_data(&self, data: &[u8], dir: &Path) -> Result<Replay> {
        let mut f = tempfile::Builder::new().prefix(".rfuzz-replay-").tempfile_in(dir)?;
        std::io::Write::write_all(&mut f, data)?;
        self.replay(f.path())
    }
}

/// Worker threads for parallel replays: one per available core.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Replays every `(replayer, path)` job on `jobs` threads; results in order.
/// `progress` is called after each replay with the number done.
pub fn replay_all(work: &[(&Replayer, &Path)], jobs: usize, progress: &(dyn Fn(usize) + Sync)) -> Vec<Result<Replay>> {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Replay>>>> = Mutex::new((0..work.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, work.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((r, p)) = work.get(i) else { break };
                    let out = r.replay(p);
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(out);
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(anyhow::anyhow!("replay did not run"))))
        .collect()
}
