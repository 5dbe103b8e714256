//! Standalone mode: run inputs from the command line once each, for humans
//! reproducing a crash (`./target crashes/id:000000,...`) and for tools that
//! run the binary without a forkserver (`AFL_NO_FORKSRV`).

use crate::{protocol, sancov, shm};
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};

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
