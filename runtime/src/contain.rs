//! Containing the processes a target starts.
//!
//! A harness may spawn processes (`std::process::Command`, `system`, a
//! library that forks a helper). Left alone, a persistent child that runs
//! millions of inputs would leave a process behind for every input that
//! spawned one. The rules:
//!
//! * Every forkserver child is the leader of a process group of its own and a
//!   child subreaper: what it starts stays in its group, and orphans of its
//!   descendants are re-parented to it rather than to init.
//! * When an input ends, the processes it started that are still running are
//!   killed and reaped. Spawns are noticed by interposing `fork`,
//!   `posix_spawn`, `posix_spawnp`, `system` and `popen` (only in fuzz-target
//!   builds, like the allocator hooks), so inputs that spawn nothing pay one
//!   atomic load; spawns that bypass libc (a raw `clone`) are caught by a
//!   cheap probe for children after every batch. (In AddressSanitizer builds
//!   ASan intercepts these functions itself, so only the probe is used.)
//! * When a child ends (crash, timeout kill, replacement), the forkserver
//!   kills the child's whole process group before reaping the child.
//! * When the forkserver is stopped (`SIGTERM`, `SIGHUP`, or its parent dies:
//!   `PR_SET_PDEATHSIG`), it kills its child's group and exits (`SIGINT`, a
//!   terminal's Ctrl-C, is left to the fuzzer, which then closes the pipe);
//!   when the forkserver itself dies (even of `SIGKILL`), its child gets
//!   `SIGTERM` and kills its own group.
//! * `RFUZZ_MAX_PROCS=N` caps the processes the target may have running at
//!   once: a spawn beyond the cap fails with `EAGAIN` and is counted.
//!
//! The counts (started, killed when their input ended, refused) go to the
//! fuzzer through the direct protocol's header.

use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering::Relaxed};
use std::os::raw::c_int;

/// Set by the interposed spawn functions: the current input started a process.
static SPAWNED: AtomicBool = AtomicBool::new(false);
/// `RFUZZ_MAX_PROCS` (0: no cap).
static MAX_PROCS: AtomicU32 = AtomicU32::new(0);
/// In the forkserver: its current child (0 when none).
static CHILD: AtomicI32 = AtomicI32::new(0);
/// In a forkserver child: its pid, so that the stop handler a forked (not
/// exec'd) grandchild inherits does not kill the group on its behalf.
static OWNER: AtomicI32 = AtomicI32::new(0);

/// Reads `RFUZZ_MAX_PROCS` and keeps the interposed symbols linked.
pub fn init() {
    #[cfg(all(target_os = "linux", target_env = "gnu", fuzzing, not(rfuzz_sanitize_address)))]
    interpose::keep();
    let cap = std::env::var(crate::protocol::MAX_PROCS_ENV_VAR).ok().and_then(|v| v.trim().parse::<u32>().ok());
    MAX_PROCS.store(cap.unwrap_or(0), Relaxed);
}

/// `fork` for the forkserver itself: glibc's, never counted as a spawn of
/// the target.
pub fn real_fork() -> libc::pid_t {
    unsafe extern "C" {
        fn __fork() -> libc::pid_t;
    }
    // SAFETY: the forkserver forks before the harness runs and, with a
    // harness that started threads in `init`, only the forking thread goes
    // on in the child, which runs the runtime's own loop.
    unsafe { __fork() }
}

fn add_to_header(field: fn(&crate::protocol::direct::Header) -> &core::sync::atomic::AtomicU64, n: u64) {
    let h = crate::DIRECT_HEADER.load(Relaxed);
    if !h.is_null() {
        // SAFETY: set_direct_header stores a reference valid for the whole
        // process (the segment is never detached).
        field(unsafe { &*h }).fetch_add(n, Relaxed);
    }
}

/// Direct children of this process (all its threads'), from
/// `/proc/self/task/*/children`.
fn children() -> Vec<libc::pid_t> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return out };
    for t in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(list.split_whitespace().filter_map(|p| p.parse::<libc::pid_t>().ok()));
        }
    }
    out
}

/// Before a spawn: whether it may go ahead under `--max-procs`.
#[cfg(all(target_os = "linux", target_env = "gnu", fuzzing, not(rfuzz_sanitize_address)))]
fn may_spawn() -> bool {
    let cap = MAX_PROCS.load(Relaxed);
    // Only forkserver children are capped and counted; the cap counts this
    // process's children, which (as a subreaper) include orphaned descendants.
    if cap == 0 || OWNER.load(Relaxed) == 0 || children().len() < cap as usize {
        return true;
    }
    add_to_header(|h| &h.procs_refused, 1);
    false
}

#[cfg(all(target_os = "linux", target_env = "gnu", fuzzing, not(rfuzz_sanitize_address)))]
fn spawned() {
    SPAWNED.store(true, Relaxed);
    add_to_header(|h| &h.procs_started, 1);
}

/// Kills and reaps every descendant of this process; returns how many there
/// were. Orphans of killed processes come back to us (we are a subreaper),
/// so a few rounds over our direct children reach the whole tree.
pub fn kill_descendants() -> u64 {
    let mut total = 0u64;
    for _round in 0..64 {
        let kids = children();
        if kids.is_empty() {
            break;
        }
        for &pid in &kids {
            // SAFETY: signalling our own children (and the groups they lead).
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        for &pid in &kids {
            // SAFETY: reaping our own child; SIGKILL makes this short.
            unsafe { libc::waitpid(pid, core::ptr::null_mut(), libc::__WALL) };
        }
        total += kids.len() as u64;
    }
    if total > 0 {
        add_to_header(|h| &h.procs_killed, total);
    }
    total
}

/// After each input: kills what the input started, if it started anything
/// (one atomic load otherwise).
#[inline]
pub fn end_of_input() {
    if SPAWNED.load(Relaxed) {
        SPAWNED.store(false, Relaxed);
        kill_descendants();
    }
}

/// After a batch: one `waitid` probe for children the interposed functions
/// did not see (a raw `clone`, a libc-internal spawn); kills them.
pub fn sweep() {
    // SAFETY: a zeroed siginfo is a valid out-parameter; WNOWAIT leaves any
    // child as it is.
    let r = unsafe {
        let mut info: libc::siginfo_t = core::mem::zeroed();
        libc::waitid(libc::P_ALL, 0, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT | libc::__WALL)
    };
    // ECHILD: no children at all, the common case.
    if r == 0 {
        SPAWNED.store(false, Relaxed);
        kill_descendants();
    }
}

extern "C" fn child_stop(sig: c_int) {
    // SAFETY: getpid, kill, signal and raise are async-signal-safe.
    unsafe {
        if libc::getpid() == OWNER.load(Relaxed) {
            // Our group: this child and what it started.
            libc::kill(0, libc::SIGKILL);
        }
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// In a freshly forked forkserver child: lead a process group, adopt
/// orphans, and die (taking the group along) with the forkserver.
pub fn enter_child(forkserver: libc::pid_t) {
    // SAFETY: plain syscalls; the handler only makes async-signal-safe calls.
    unsafe {
        OWNER.store(libc::getpid(), Relaxed);
        libc::setpgid(0, 0);
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
        // The forkserver's stop handlers are not ours.
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        libc::signal(libc::SIGHUP, libc::SIG_DFL);
        libc::signal(libc::SIGTERM, child_stop as *const () as libc::sighandler_t);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
        if libc::getppid() != forkserver {
            libc::kill(0, libc::SIGKILL);
            libc::_exit(0);
        }
    }
}

extern "C" fn ignore_signal(_sig: c_int) {}

extern "C" fn forkserver_stop(_sig: c_int) {
    let child = CHILD.load(Relaxed);
    // SAFETY: kill and _exit are async-signal-safe.
    unsafe {
        if child > 0 {
            libc::kill(-child, libc::SIGKILL);
            libc::kill(child, libc::SIGKILL);
        }
        libc::_exit(0);
    }
}

/// In the forkserver, before its first fork: on a stop signal, or when the
/// fuzzer that started it dies, kill the child's group and exit.
pub fn enter_forkserver() {
    // SAFETY: getppid/prctl/signal are plain calls; the handler only makes
    // async-signal-safe calls.
    unsafe {
        let parent = libc::getppid();
        for sig in [libc::SIGTERM, libc::SIGHUP] {
            libc::signal(sig, forkserver_stop as *const () as libc::sighandler_t);
        }
        // Ctrl-C in a terminal reaches the fuzzer's whole process group: the
        // fuzzer stops and closes our pipe, which ends us cleanly. (A no-op
        // handler rather than SIG_IGN, which would be inherited through exec
        // by every process the target starts.)
        libc::signal(libc::SIGINT, ignore_signal as *const () as libc::sighandler_t);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
        if parent == 1 || libc::getppid() != parent {
            libc::_exit(0);
        }
    }
}

/// In the forkserver: the child it just forked (or 0 after it was reaped).
pub fn set_child(pid: libc::pid_t) {
    CHILD.store(pid, Relaxed);
}

/// In the forkserver: waits for `child` to stop or end; when it ended, kills
/// its process group while the child's pid still names it (before the
/// reaping that frees the pid). Returns the wait status.
pub fn wait_child(child: libc::pid_t, stopped_too: bool) -> Option<c_int> {
    let mut flags = libc::WEXITED | libc::WNOWAIT;
    if stopped_too {
        flags |= libc::WSTOPPED;
    }
    loop {
        // SAFETY: a zeroed siginfo is a valid out-parameter.
        let (r, code) = unsafe {
            let mut info: libc::siginfo_t = core::mem::zeroed();
            let r = libc::waitid(libc::P_PID, child as libc::id_t, &mut info, flags);
            (r, info.si_code)
        };
        if r < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return None;
        }
        if code == libc::CLD_STOPPED {
            // A persistent AFL++ child stopped itself after a run: collect
            // the stop (WNOWAIT left it pending).
            return reap(child, libc::WUNTRACED);
        }
        // SAFETY: the child is a zombie and still leads its group.
        unsafe { libc::kill(-child, libc::SIGKILL) };
        // Forgotten before it is reaped: once reaped its pid may name
        // another process, which the stop handler must never signal.
        set_child(0);
        return reap(child, 0);
    }
}

fn reap(pid: libc::pid_t, options: c_int) -> Option<c_int> {
    let mut status: c_int = 0;
    loop {
        // SAFETY: `status` is a valid out-parameter.
        let r = unsafe { libc::waitpid(pid, &mut status, options) };
        if r == pid {
            return Some(status);
        }
        if r < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        return None;
    }
}

/// In the forkserver: kills the child and its group and reaps it (the fuzzer
/// went away).
pub fn kill_child(child: libc::pid_t) {
    if child > 0 {
        // SAFETY: signalling our own child and the group it leads.
        unsafe {
            libc::kill(-child, libc::SIGKILL);
            libc::kill(child, libc::SIGKILL);
        }
        set_child(0);
        reap(child, 0);
    }
}

// Only in fuzz-target builds (`--cfg fuzzing`), as the allocator hooks: the
// fuzzer, which links this crate for its protocol module, keeps libc's.
#[cfg(all(target_os = "linux", target_env = "gnu", fuzzing, not(rfuzz_sanitize_address)))]
mod interpose {
    //! The spawn functions of glibc, counted and capped. Each forwards to
    //! glibc's own implementation.
    use super::*;
    use core::sync::atomic::AtomicUsize;
    use std::os::raw::{c_char, c_void};

    unsafe extern "C" {
        fn __fork() -> libc::pid_t;
        fn __libc_system(cmd: *const c_char) -> c_int;
    }

    /// Looks up the next definition of `name` (glibc's), once.
    fn next(cache: &AtomicUsize, name: &core::ffi::CStr) -> usize {
        let mut f = cache.load(Relaxed);
        if f == 0 {
            // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name.
            f = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) } as usize;
            cache.store(f, Relaxed);
        }
        f
    }

    fn set_errno(e: c_int) {
        // SAFETY: errno is thread-local and always valid.
        unsafe { *libc::__errno_location() = e };
    }

    /// `fork`, counted and capped.
    #[unsafe(no_mangle)]
    pub extern "C" fn fork() -> libc::pid_t {
        if !may_spawn() {
            set_errno(libc::EAGAIN);
            return -1;
        }
        // SAFETY: glibc's fork, with fork's own contract for the caller.
        let pid = unsafe { __fork() };
        if pid > 0 {
            spawned();
        }
        pid
    }

    type SpawnFn = unsafe extern "C" fn(
        *mut libc::pid_t,
        *const c_char,
        *const libc::posix_spawn_file_actions_t,
        *const libc::posix_spawnattr_t,
        *const *mut c_char,
        *const *mut c_char,
    ) -> c_int;

    static POSIX_SPAWN: AtomicUsize = AtomicUsize::new(0);
    static POSIX_SPAWNP: AtomicUsize = AtomicUsize::new(0);
    static POPEN: AtomicUsize = AtomicUsize::new(0);

    /// Runs a `posix_spawn`-shaped call through glibc's `name`, counted and
    /// capped.
    fn spawn_with(cache: &AtomicUsize, name: &core::ffi::CStr, call: impl FnOnce(SpawnFn) -> c_int) -> c_int {
        if !may_spawn() {
            return libc::EAGAIN;
        }
        let f = next(cache, name);
        if f == 0 {
            return libc::ENOSYS;
        }
        // SAFETY: `f` is glibc's function of this exact signature.
        let r = call(unsafe { core::mem::transmute::<usize, SpawnFn>(f) });
        if r == 0 {
            spawned();
        }
        r
    }

    /// `posix_spawn`, counted and capped.
    ///
    /// # Safety
    /// As `posix_spawn`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn posix_spawn(
        pid: *mut libc::pid_t,
        path: *const c_char,
        actions: *const libc::posix_spawn_file_actions_t,
        attr: *const libc::posix_spawnattr_t,
        argv: *const *mut c_char,
        envp: *const *mut c_char,
    ) -> c_int {
        // SAFETY: the caller's contract is posix_spawn's, passed through unchanged.
        spawn_with(&POSIX_SPAWN, c"posix_spawn", |f| unsafe { f(pid, path, actions, attr, argv, envp) })
    }

    /// `posix_spawnp`, counted and capped (what `std::process::Command` uses).
    ///
    /// # Safety
    /// As `posix_spawnp`.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn posix_spawnp(
        pid: *mut libc::pid_t,
        file: *const c_char,
        actions: *const libc::posix_spawn_file_actions_t,
        attr: *const libc::posix_spawnattr_t,
        argv: *const *mut c_char,
        envp: *const *mut c_char,
    ) -> c_int {
        // SAFETY: the caller's contract is posix_spawnp's, passed through unchanged.
        spawn_with(&POSIX_SPAWNP, c"posix_spawnp", |f| unsafe { f(pid, file, actions, attr, argv, envp) })
    }

    /// `system`, counted and capped (it waits for its shell itself).
    ///
    /// # Safety
    /// `cmd` is null or a NUL-terminated string.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn system(cmd: *const c_char) -> c_int {
        if !cmd.is_null() {
            if !may_spawn() {
                set_errno(libc::EAGAIN);
                return -1;
            }
            spawned();
        }
        // SAFETY: the caller's contract is system's.
        unsafe { __libc_system(cmd) }
    }

    /// `popen`, counted and capped.
    ///
    /// # Safety
    /// `cmd` and `mode` are NUL-terminated strings.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn popen(cmd: *const c_char, mode: *const c_char) -> *mut c_void {
        if !may_spawn() {
            set_errno(libc::EAGAIN);
            return core::ptr::null_mut();
        }
        let f = next(&POPEN, c"popen");
        if f == 0 {
            set_errno(libc::ENOSYS);
            return core::ptr::null_mut();
        }
        // SAFETY: `f` is glibc's popen; arguments passed through.
        let r = unsafe {
            core::mem::transmute::<usize, unsafe extern "C" fn(*const c_char, *const c_char) -> *mut c_void>(f)(
                cmd, mode,
            )
        };
        if !r.is_null() {
            spawned();
        }
        r
    }

    /// Keeps the interposed symbols linked (see `__private::main`).
    pub fn keep() {
        core::hint::black_box(fork as extern "C" fn() -> libc::pid_t);
        core::hint::black_box(posix_spawn as unsafe extern "C" fn(_, _, _, _, _, _) -> c_int);
        core::hint::black_box(posix_spawnp as unsafe extern "C" fn(_, _, _, _, _, _) -> c_int);
        core::hint::black_box(system as unsafe extern "C" fn(*const c_char) -> c_int);
        core::hint::black_box(popen as unsafe extern "C" fn(*const c_char, *const c_char) -> *mut c_void);
    }
}
