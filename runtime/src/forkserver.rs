//! The forkserver: AFL++'s protocol for any AFL++-compatible fuzzer, and our
//! direct protocol for the `cargo rfuzz` engine (see [`crate::protocol`]).

use crate::fdio::{read_u32, write_all, write_pair, write_u32};
use crate::protocol::{self, CONTROL_FD, STATUS_FD, afl, direct};
use crate::{contain, sancov, shm};
use core::sync::atomic::Ordering::Relaxed;
use std::os::raw::c_int;

/// Runs of one persistent child before the forkserver forks a fresh one
/// (AFL++ protocol; the direct protocol lets the engine decide).
const AFL_PERSISTENT_ITERATIONS: u32 = 10_000;

/// The forkserver forks a copy of the thread that calls it only: threads the
/// user's `init` started keep running in the forkserver, not in the children
/// that run inputs. Legal, but rarely what was meant: say so once.
fn warn_about_threads() {
    let threads = std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(1);
    if threads > 1 {
        eprintln!(
            "rfuzz: warning: the target's init started {} thread(s); they run in the forkserver only, not in the processes that run inputs (start per-input threads in the harness)",
            threads - 1
        );
    }
}

fn exit_now(code: c_int) -> ! {
    // SAFETY: _exit never returns and skips atexit handlers, which is what a
    // forkserver wants when its fuzzer is gone.
    unsafe { libc::_exit(code) }
}

/// Forks a child for the forkserver and, in the child, sets up containment
/// (own process group, subreaper, death with the forkserver).
fn fork_child(forkserver: libc::pid_t) -> libc::pid_t {
    let pid = contain::real_fork();
    match pid {
        0 => contain::enter_child(forkserver),
        p if p > 0 => contain::set_child(p),
        _ => {}
    }
    pid
}

/// Where an AFL++ child gets its test case.
enum AflInput {
    /// `__AFL_SHM_FUZZ_ID`: a `u32` length followed by the bytes; the
    /// segment's start and how many bytes of data it can hold.
    SharedMemory(*const u8, usize),
    /// A file named on the command line (`@@`).
    File(std::ffi::OsString),
    /// Standard input, rewound before every read.
    Stdin,
}

impl AflInput {
    fn read(&self, buf: &mut Vec<u8>) -> bool {
        buf.clear();
        match self {
            AflInput::SharedMemory(p, capacity) => {
                // SAFETY: the segment holds a u32 length then `capacity`
                // bytes (its attached size minus the header); the length the
                // fuzzer wrote is clamped to that and to MAX_FILE.
                unsafe {
                    let len = (p.cast::<u32>().read_unaligned() as usize).min(afl::MAX_FILE).min(*capacity);
                    buf.extend_from_slice(core::slice::from_raw_parts(p.add(afl::SHMEM_FUZZ_HDR_SIZE), len));
                }
                true
            }
            AflInput::File(path) => match std::fs::read(path) {
                Ok(data) => {
                    *buf = data;
                    true
                }
                Err(_) => false,
            },
            AflInput::Stdin => {
                use std::io::Read;
                // SAFETY: rewinding fd 0; harmless if it is not seekable.
                unsafe { libc::lseek(0, 0, libc::SEEK_SET) };
                std::io::stdin().lock().read_to_end(buf).is_ok()
            }
        }
    }
}

/// AFL++ forkserver. Returns only in a forked child, which then runs test
/// cases as `afl-fuzz` expects and exits.
pub fn serve_afl(harness: fn(&[u8])) -> ! {
    let needed = sancov::map_size();
    let mut error = 0;
    match shm::attach_env(protocol::SHM_ENV_VAR) {
        Some(Some(seg)) if seg.size >= needed => {
            // SAFETY: the segment is attached for the life of the process and
            // is at least `needed` bytes long.
            unsafe { sancov::set_shared_map(seg.ptr) };
        }
        // Too small: tell the fuzzer our size in the handshake; AFL++ then
        // re-creates a larger segment.
        Some(Some(_)) => {}
        Some(None) => error = afl::ERROR_SHMAT,
        None => {}
    }
    if error != 0 {
        write_u32(STATUS_FD, afl::ERROR | error);
        exit_now(1);
    }
    let shm_input = match shm::attach_env(protocol::SHM_FUZZ_ENV_VAR) {
        Some(Some(seg)) if seg.size > afl::SHMEM_FUZZ_HDR_SIZE => {
            Some((seg.ptr as *const u8, seg.size - afl::SHMEM_FUZZ_HDR_SIZE))
        }
        Some(Some(_)) => {
            write_u32(STATUS_FD, afl::ERROR | afl::ERROR_SHM_OPEN);
            exit_now(1);
        }
        Some(None) => {
            write_u32(STATUS_FD, afl::ERROR | afl::ERROR_SHM_OPEN);
            exit_now(1);
        }
        None => None,
    };
    let persistent = std::env::var_os(protocol::PERSIST_ENV_VAR).is_some();

    if !write_u32(STATUS_FD, afl::HELLO) {
        exit_now(1);
    }
    let Some(reply) = read_u32(CONTROL_FD) else { exit_now(1) };
    // A fuzzer that predates the 4.20 handshake sends no reply: the word we
    // just read is its first "run" command, and test cases come from a file.
    let new_protocol = reply == afl::HELLO_REPLY;
    let mut pending_command = (!new_protocol).then_some(reply);
    let use_shm_input = new_protocol && shm_input.is_some();
    if new_protocol {
        let mut options = afl::OPT_MAPSIZE;
        if use_shm_input {
            options |= afl::OPT_SHDMEM_FUZZ;
        }
        let ok =
            write_u32(STATUS_FD, options) && write_u32(STATUS_FD, needed as u32) && write_u32(STATUS_FD, afl::HELLO);
        if !ok {
            exit_now(1);
        }
    }

    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    contain::enter_forkserver();
    warn_about_threads();
    let mut child: libc::pid_t = 0;
    let mut child_stopped = false;
    loop {
        let was_killed = match pending_command.take() {
            Some(c) => c,
            None => match read_u32(CONTROL_FD) {
                Some(c) => c,
                None => {
                    // The fuzzer is gone: a stopped persistent child would
                    // otherwise outlive it.
                    contain::kill_child(child);
                    exit_now(0);
                }
            },
        };
        if child_stopped && was_killed != 0 {
            // afl-fuzz killed the stopped child after a timeout race.
            contain::wait_child(child, false);
            child_stopped = false;
        }
        if child_stopped {
            // SAFETY: resuming our own stopped child.
            unsafe { libc::kill(child, libc::SIGCONT) };
        } else {
            child = fork_child(me);
            if child < 0 {
                exit_now(1);
            }
            if child == 0 {
                // SAFETY: the child must not talk on the forkserver pipes.
                unsafe {
                    libc::close(CONTROL_FD);
                    libc::close(STATUS_FD);
                }
                let input = if use_shm_input {
                    let (p, capacity) = shm_input.expect("checked above");
                    AflInput::SharedMemory(p, capacity)
                } else {
                    match std::env::args_os().nth(1) {
                        Some(path) => AflInput::File(path),
                        None => AflInput::Stdin,
                    }
                };
                afl_child(harness, input, persistent);
            }
        }
        if !write_u32(STATUS_FD, child as u32) {
            contain::kill_child(child);
            exit_now(1);
        }
        let Some(status) = contain::wait_child(child, persistent) else { exit_now(1) };
        child_stopped = libc::WIFSTOPPED(status);
        if !write_u32(STATUS_FD, status as u32) {
            contain::kill_child(child);
            exit_now(1);
        }
    }
}

fn afl_child(harness: fn(&[u8]), input: AflInput, persistent: bool) -> ! {
    let mut buf = Vec::new();
    let iterations = if persistent { AFL_PERSISTENT_ITERATIONS } else { 1 };
    for i in 0..iterations {
        if i > 0 {
            // Tell the forkserver this run is done; afl-fuzz clears the map
            // and sends SIGCONT for the next one.
            // SAFETY: raising a signal at ourselves.
            unsafe { libc::raise(libc::SIGSTOP) };
        }
        sancov::clear();
        if input.read(&mut buf) {
            crate::run_harness(harness, &buf);
        }
        // What this input started ends with it (a stop per input already
        // costs more than the probe).
        contain::end_of_input();
        contain::sweep();
        sancov::copy_to_shared();
    }
    std::process::exit(0)
}

/// Direct forkserver for the `cargo rfuzz` engine.
pub fn serve_direct(harness: fn(&[u8])) -> ! {
    warn_about_threads();
    let map_size = sancov::map_size() as u32;
    let mut hello = [0u8; 16];
    for (i, w) in [direct::HELLO, direct::VERSION, map_size, direct::HELLO_FLAG_CMP].iter().enumerate() {
        hello[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
    }
    if !write_all(STATUS_FD, &hello) {
        exit_now(1);
    }
    let Some(shm_id) = read_u32(CONTROL_FD) else { exit_now(1) };
    let Some(seg) = shm::attach(shm_id as i32) else {
        write_pair(STATUS_FD, direct::MSG_ERROR, direct::ERR_SHMAT);
        exit_now(1);
    };
    // SAFETY: the segment starts with a Header written by the fuzzer and is at
    // least HEADER_SIZE bytes (checked before use).
    let header: &'static direct::Header = unsafe {
        if seg.size < direct::HEADER_SIZE {
            write_pair(STATUS_FD, direct::MSG_ERROR, direct::ERR_LAYOUT);
            exit_now(1);
        }
        &*(seg.ptr as *const direct::Header)
    };
    let layout = direct::Layout::from_header(header);
    let valid = header.magic.load(Relaxed) == direct::SHM_MAGIC
        && header.version.load(Relaxed) == direct::VERSION
        && layout.is_valid(seg.size)
        && layout.map_size >= map_size as usize;
    if !valid {
        write_pair(STATUS_FD, direct::MSG_ERROR, direct::ERR_LAYOUT);
        exit_now(1);
    }
    // SAFETY: the layout was validated against the segment size above.
    unsafe { sancov::set_shared_map(seg.ptr.add(layout.map_off)) };
    crate::set_direct_header(header);
    if !write_pair(STATUS_FD, direct::MSG_READY, 0) {
        exit_now(1);
    }
    if std::env::var_os(direct::SILENCE_ENV_VAR).is_some() {
        // The fuzzer read start-up errors from our stderr; from here on the
        // target's output would only slow fuzzing down.
        // SAFETY: replacing fd 2 with /dev/null via open/dup2/close.
        unsafe {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
            if null >= 0 {
                libc::dup2(null, 2);
                libc::close(null);
            }
        }
    }
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    contain::enter_forkserver();

    loop {
        match read_u32(CONTROL_FD) {
            Some(direct::CMD_FORK) => {}
            // Unknown command or the fuzzer is gone.
            _ => exit_now(0),
        }
        let child = fork_child(me);
        if child < 0 {
            exit_now(1);
        }
        if child == 0 {
            direct_child(harness, header, seg.ptr, layout);
        }
        if !write_pair(STATUS_FD, direct::MSG_PID, child as u32) {
            contain::kill_child(child);
            exit_now(1);
        }
        let Some(status) = contain::wait_child(child, false) else { exit_now(1) };
        if !write_pair(STATUS_FD, direct::MSG_DIED, status as u32) {
            exit_now(1);
        }
    }
}

fn direct_child(harness: fn(&[u8]), header: &direct::Header, base: *mut u8, layout: direct::Layout) -> ! {
    let words = layout.map_size / 8;
    // SAFETY: the layout was validated against the segment, areas are 8-byte
    // aligned, and the segment stays attached for the life of the process.
    let (virgin, table, data) = unsafe {
        (
            core::slice::from_raw_parts(base.add(layout.virgin_off) as *const core::sync::atomic::AtomicU64, words),
            core::slice::from_raw_parts(base.add(layout.table_off) as *const direct::Entry, layout.table_cap),
            base.add(layout.data_off) as *const u8,
        )
    };
    // SAFETY: the path-count table lies inside the validated segment.
    let paths = unsafe {
        core::slice::from_raw_parts(
            base.add(layout.paths_off) as *const core::sync::atomic::AtomicU32,
            layout.paths_len,
        )
    };
    let cmp_log = (layout.cmp_size >= protocol::cmplog::HEADER_SIZE)
        // SAFETY: the compare log area lies inside the validated segment.
        .then(|| unsafe { base.add(layout.cmp_off) as *mut protocol::cmplog::LogHeader });
    loop {
        match read_u32(CONTROL_FD) {
            Some(direct::CMD_RUN) => {}
            Some(direct::CMD_EXIT) | None => std::process::exit(0),
            Some(_) => std::process::exit(0),
        }
        let start = header.batch_start.load(Relaxed) as usize;
        let count = (header.batch_count.load(Relaxed) as usize).min(layout.table_cap);
        let flags = header.flags.load(Relaxed);
        let log = if flags & direct::RUN_CMPLOG != 0 { cmp_log } else { None };
        if let Some(log) = log {
            // SAFETY: `log` points into the validated compare log area.
            unsafe {
                (*log).count.store(0, Relaxed);
                let cap = (layout.cmp_size - protocol::cmplog::HEADER_SIZE) / size_of::<protocol::cmplog::Record>();
                (*log).capacity.store(cap as u32, Relaxed);
            }
        }
        // SAFETY: the log area stays mapped; it is switched off after the batch.
        unsafe { crate::cmp::set_log(log) };
        let mut stop = count;
        for (i, entry) in table.iter().enumerate().take(count).skip(start) {
            header.cur_index.store(i as u32, Relaxed);
            header.exec_seq.fetch_add(1, Relaxed);
            let off = entry.offset.load(Relaxed) as usize;
            let len = entry.len.load(Relaxed) as usize;
            if off.checked_add(len).is_none_or(|end| end > layout.data_cap) {
                continue;
            }
            // Clears the counters and sets the "harness ran" marker, so even a
            // run that crashes before any instrumented edge has a map.
            sancov::clear();
            // SAFETY: the entry lies inside the data area (checked above).
            let input = unsafe { core::slice::from_raw_parts(data.add(off), len) };
            crate::run_harness(harness, input);
            contain::end_of_input();
            if flags & (direct::RUN_STOP_ON_NEW | direct::RUN_COUNT_PATHS) == 0 {
                // A single run: the fuzzer reads the map.
                sancov::copy_to_shared();
                continue;
            }
            let (new, hash) = sancov::scan(virgin);
            if flags & direct::RUN_COUNT_PATHS != 0 && !paths.is_empty() {
                let slot = &paths[hash as usize & (paths.len() - 1)];
                slot.store(slot.load(Relaxed).wrapping_add(1), Relaxed);
            }
            if new && flags & direct::RUN_STOP_ON_NEW != 0 {
                sancov::copy_to_shared();
                stop = i;
                break;
            }
        }
        // SAFETY: turning logging off.
        unsafe { crate::cmp::set_log(None) };
        contain::sweep();
        if !write_pair(STATUS_FD, direct::MSG_DONE, stop as u32) {
            std::process::exit(0);
        }
    }
}
