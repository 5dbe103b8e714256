//! Standalone mode: run inputs from the command line once each, for humans
//! reproducing a crash (`./target crashes/id:000000,...`) and for tools that
//! run the binary without a forkserver (`AFL_NO_FORKSRV`).

use crate::{protocol, sancov, shm};
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// Print a backtrace when a fatal signal ends a standalone run (off under
/// `RUST_BACKTRACE=0`).
static FAULT_BACKTRACE: AtomicBool = AtomicBool::new(false);

fn collect(arg: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if arg.is_dir() {
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(arg)?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
        entries.sort();
        out.extend(entries);
    } else {
        out.push(arg.to_path_buf());
    }
    Ok(())
}

/// Runs every input named by `args` (files, or directories of files), or
/// standard input when there are none, then exits 0. A crash aborts with the
/// panic message and a backtrace (see the panic hook).
pub fn run(harness: fn(&[u8])) -> ! {
    FAULT_BACKTRACE.store(std::env::var_os("RUST_BACKTRACE").is_none_or(|v| v != "0"), Relaxed);
    // Without a forkserver an AFL-style tool may still pass a map.
    if let Some(Some(seg)) = shm::attach_env(protocol::SHM_ENV_VAR)
        && seg.size >= sancov::map_size()
    {
        // SAFETY: attached for the life of the process, large enough.
        unsafe { sancov::set_shared_map(seg.ptr) };
    }
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let quiet = std::env::var_os(protocol::SHM_ENV_VAR).is_some();
    if args.is_empty() {
        let mut data = Vec::new();
        if let Err(e) = std::io::stdin().lock().read_to_end(&mut data) {
            eprintln!("rfuzz: failed to read standard input: {e}");
            std::process::exit(2);
        }
        sancov::clear();
        crate::run_harness(harness, &data);
        sancov::copy_to_shared();
        std::process::exit(0);
    }
    let mut inputs = Vec::new();
    for arg in &args {
        let path = Path::new(arg);
        if arg.to_string_lossy().starts_with('-') && !path.exists() {
            eprintln!("rfuzz: ignoring option {} (this binary takes input files or directories)", path.display());
            continue;
        }
        if let Err(e) = collect(path, &mut inputs) {
            eprintln!("rfuzz: failed to read {}: {e}", path.display());
            std::process::exit(2);
        }
    }
    for path in &inputs {
        let data = match std::fs::read(path) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("rfuzz: failed to read {}: {e}", path.display());
                std::process::exit(2);
            }
        };
        if !quiet {
            eprintln!("rfuzz: running {} ({} bytes)", path.display(), data.len());
        }
        sancov::clear();
        crate::run_harness(harness, &data);
        sancov::copy_to_shared();
    }
    if !quiet {
        eprintln!("rfuzz: {} input(s) ran without crashing", inputs.len());
    }
    std::process::exit(0)
}

/// Called from the fault handlers with the signal's default action already
/// restored: in a standalone run, prints a backtrace of the faulting thread,
/// so crashes of one signal can be told apart by where they happened (`cargo
/// rfuzz triage` reads the first frames outside std and the runtime).
///
/// This allocates, which a signal handler must not: it runs only in
/// standalone mode, when the process is about to die anyway and no fuzzer
/// depends on it. A fault inside the allocator can hang here; the replays of
/// `triage` have a time limit and then fall back to the signal alone. A
/// fault while printing kills the process with the default action.
pub(crate) fn fault_backtrace(sig: libc::c_int) {
    if !FAULT_BACKTRACE.swap(false, Relaxed) {
        return;
    }
    // Unwinding needs little stack (the handler may run on the small
    // alternate one); symbolizing needs more: it runs on a thread of its own.
    let bt = std::backtrace::Backtrace::force_capture();
    // The frames the fuzzer names the bug by (see guard::record_frames):
    // `triage` symbolizes these, so it and the fuzzer agree on the bug.
    let frames: Vec<String> = crate::guard::recorded_frames().iter().map(|f| format!("{f:x}")).collect();
    let print = move || {
        if !frames.is_empty() {
            eprintln!("{}{}", crate::protocol::FAULT_FRAMES_PREFIX, frames.join(" "));
        }
        eprintln!("rfuzz: the input crashed the target (signal {sig}); stack backtrace:\n{bt}")
    };
    if let Ok(t) = std::thread::Builder::new().stack_size(8 << 20).spawn(print) {
        let _ = t.join();
    }
}
