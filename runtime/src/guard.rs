//! Telling crashes apart: out-of-memory and stack overflow.
//!
//! * **Memory**: on glibc the runtime interposes `malloc` and friends (they
//!   forward to glibc's `__libc_*` allocator). An allocation above the limit
//!   the fuzzer sets (`RFUZZ_MALLOC_LIMIT_MB`, like libFuzzer's
//!   `-malloc_limit_mb`) or one the system refuses is recorded as an
//!   out-of-memory exit, so a `Vec::with_capacity(len_from_input)` bug is
//!   reported as such instead of as an anonymous abort.
//! * **Stack overflow**: a `SIGSEGV`/`SIGBUS` handler on an alternate stack
//!   checks whether the faulting address is just below the main thread's
//!   stack and records a stack overflow before the process dies of the signal.
//!   (The Rust runtime installs such a handler in `lang_start`, which a
//!   `#![no_main]` fuzz target never runs.)
//! * **AddressSanitizer** (`--sanitizer address` builds, `--cfg
//!   rfuzz_sanitize_address`): the malloc and SIGSEGV hooks above step aside
//!   (ASan owns the allocator and reports wild accesses and stack overflows
//!   itself); a death callback records the kind of error ASan reported, and
//!   default options make ASan abort (a crash the fuzzer sees) without
//!   hunting leaks.

use crate::protocol::direct;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::os::raw::{c_int, c_void};

/// Largest single allocation, in bytes.
static MALLOC_LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);
/// Lowest address of the main thread's stack, and how far below it a fault
/// still counts as an overflow.
static STACK_LOW: AtomicUsize = AtomicUsize::new(0);
const GUARD_SPAN: usize = 1 << 20;
/// Load address of the executable, so fault addresses reported to the
/// fuzzer are offsets into it (see [`direct::Header::fault_pc`]).
static EXE_BASE: AtomicUsize = AtomicUsize::new(0);

/// The instruction address a signal interrupted, from the handler's context.
fn interrupted_pc(ctx: *mut c_void) -> usize {
    if ctx.is_null() {
        return 0;
    }
    let uc = ctx as *const libc::ucontext_t;
    // SAFETY: the kernel passes a valid ucontext_t to SA_SIGINFO handlers;
    // reading the saved program counter is a plain load.
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    let pc = unsafe { (*uc).uc_mcontext.gregs[libc::REG_RIP as usize] as usize };
    // SAFETY: as above.
    #[cfg(all(target_os = "linux", target_arch = "aarch64"))]
    let pc = unsafe { (*uc).uc_mcontext.pc as usize };
    #[cfg(not(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64"))))]
    let pc = {
        let _ = uc;
        0
    };
    pc
}

/// Records where a signal hit, as an offset into the executable (an address
/// in another module stays absolute: it is still stable for every child of
/// one forkserver, which is all the fuzzer's de-duplication needs).
fn record_pc(ctx: *mut c_void) {
    let pc = interrupted_pc(ctx);
    if pc != 0 {
        let base = EXE_BASE.load(Relaxed);
        crate::record_fault_pc(if base != 0 && pc >= base { pc - base } else { pc } as u64);
    }
}

/// Records the faulting thread's stack in the direct protocol's header
/// ([`direct::Header::frames`]), from the interrupted function outwards, so
/// the fuzzer can name a signal's bug by the first frames of the user's code.
///
/// `_Unwind_Backtrace` is not on POSIX's list of async-signal-safe
/// functions, but it only reads the unwind tables (found through
/// `_dl_find_object`/`dl_iterate_phdr`) and the stack, allocates nothing, and
/// the process is about to die of the signal anyway; libFuzzer's and the
/// sanitizers' fault handlers unwind the same way. A fault while unwinding
/// (a smashed stack) kills the process with the signal it was dying of,
/// with the frames found so far recorded.
fn record_frames() {
    use core::sync::atomic::AtomicUsize;
    type Ctx = c_void;
    unsafe extern "C" {
        fn _Unwind_Backtrace(trace: extern "C" fn(*mut Ctx, *mut c_void) -> c_int, arg: *mut c_void) -> c_int;
        fn _Unwind_GetIPInfo(ctx: *mut Ctx, ip_before_insn: *mut c_int) -> usize;
    }
    /// `_URC_NO_REASON` and `_URC_END_OF_STACK`.
    const CONTINUE: c_int = 0;
    const STOP: c_int = 5;
    // Frames recorded; usize::MAX until the signal frame was seen (the
    // handler's own frames come first and are skipped).
    static NEXT: AtomicUsize = AtomicUsize::new(usize::MAX);
    extern "C" fn each(ctx: *mut Ctx, _: *mut c_void) -> c_int {
        let mut before: c_int = 0;
        // SAFETY: `ctx` is the unwinder's context for this frame.
        let ip = unsafe { _Unwind_GetIPInfo(ctx, &mut before) };
        if NEXT.load(Relaxed) == usize::MAX {
            // The interrupted frame is the one the unwinder marks as a
            // signal frame (its IP is the faulting instruction itself).
            if before == 0 {
                return CONTINUE;
            }
            NEXT.store(0, Relaxed);
        }
        let n = NEXT.load(Relaxed);
        if n >= direct::FRAMES || ip == 0 {
            return STOP;
        }
        // One byte back, into the call (or the faulting) instruction, as
        // std's backtraces symbolize every frame.
        let pc = ip - 1;
        let base = EXE_BASE.load(Relaxed);
        FRAMES[n].store(if base != 0 && pc >= base { pc - base } else { pc } as u64, Relaxed);
        NEXT.store(n + 1, Relaxed);
        CONTINUE
    }
    NEXT.store(usize::MAX, Relaxed);
    // SAFETY: the callback only reads the unwinder's context and stores atomics.
    unsafe { _Unwind_Backtrace(each, core::ptr::null_mut()) };
    let n = NEXT.load(Relaxed).min(direct::FRAMES);
    if n < direct::FRAMES {
        FRAMES[n].store(0, Relaxed);
    }
    let h = crate::direct_header();
    if !h.is_null() {
        // SAFETY: the header lives as long as the process (see record_exit_reason).
        let out = unsafe { &(*h).frames };
        for (o, f) in out.iter().zip(FRAMES.iter()) {
            o.store(f.load(Relaxed), Relaxed);
        }
    }
}

/// The frames [`record_frames`] found (offsets as in
/// [`direct::Header::frames`]; 0 ends the list).
static FRAMES: [AtomicU64; direct::FRAMES] = [const { AtomicU64::new(0) }; direct::FRAMES];

/// The frames the last fatal signal recorded, as `standalone` prints them
/// for `cargo rfuzz triage` (`rfuzz: fault frames: 1a2b 3c4d`).
pub(crate) fn recorded_frames() -> Vec<u64> {
    FRAMES.iter().map(|f| f.load(Relaxed)).take_while(|&f| f != 0).collect()
}

/// Finds the executable's load address (once, outside any signal handler:
/// `dladdr` is not async-signal-safe).
fn init_exe_base() {
    let mut info: libc::Dl_info = unsafe_zeroed_dl_info();
    // SAFETY: dladdr reads the dynamic linker's tables for an address of
    // this executable and fills `info`.
    if unsafe { libc::dladdr(init_exe_base as *const c_void, &mut info) } != 0 {
        EXE_BASE.store(info.dli_fbase as usize, Relaxed);
    }
}

fn unsafe_zeroed_dl_info() -> libc::Dl_info {
    // SAFETY: Dl_info is plain old data (pointers); all-zero is valid.
    unsafe { core::mem::zeroed() }
}

fn write_stderr(msg: &[u8]) {
    // SAFETY: write(2) from a valid buffer; async-signal-safe.
    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
}

// Only in fuzz-target builds (`--cfg fuzzing`, set by `cargo rfuzz build`):
// a program that merely links this crate for its protocol module (the fuzzer,
// whose workspace build unifies this crate's features) must keep the C
// library's allocator.
#[cfg(all(target_os = "linux", target_env = "gnu", fuzzing, not(rfuzz_sanitize_address)))]
mod interpose {
    //! glibc supports replacing its allocator by defining these symbols in
    //! the executable; we forward to its own implementation.
    use super::*;

    fn out_of_memory(size: usize) -> ! {
        crate::record_exit_reason(direct::EXIT_OOM);
        // Format without allocating: we are inside malloc.
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut n = size;
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        write_stderr(b"rfuzz: out of memory: an allocation of ");
        write_stderr(&digits[i..]);
        write_stderr(b" bytes exceeds the limit (-m, RFUZZ_MALLOC_LIMIT_MB)\n");
        std::process::abort();
    }

    #[inline]
    fn check(size: usize) {
        if size > MALLOC_LIMIT.load(Relaxed) {
            out_of_memory(size);
        }
    }

    #[inline]
    fn refused(p: *mut c_void, size: usize) -> *mut c_void {
        if p.is_null() && size != 0 {
            // The system refused (address-space limit): let the caller fail,
            // but remember why the process is about to die.
            crate::record_exit_reason(direct::EXIT_OOM);
        }
        p
    }

    unsafe extern "C" {
        fn __libc_malloc(size: usize) -> *mut c_void;
        fn __libc_calloc(n: usize, size: usize) -> *mut c_void;
        fn __libc_realloc(p: *mut c_void, size: usize) -> *mut c_void;
        fn __libc_memalign(align: usize, size: usize) -> *mut c_void;
    }

    /// `malloc` with the fuzzer's limit.
    #[unsafe(no_mangle)]
    pub extern "C" fn malloc(size: usize) -> *mut c_void {
        check(size);
        // SAFETY: forwarding to glibc's allocator.
        refused(unsafe { __libc_malloc(size) }, size)
    }

    /// `calloc` with the fuzzer's limit.
    #[unsafe(no_mangle)]
    pub extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
        let Some(total) = n.checked_mul(size) else { return core::ptr::null_mut() };
        check(total);
        // SAFETY: forwarding to glibc's allocator.
        refused(unsafe { __libc_calloc(n, size) }, total)
    }

    /// `realloc` with the fuzzer's limit.
    ///
    /// # Safety
    /// `p` is null or was returned by this allocator and not freed.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
        check(size);
        // SAFETY: the caller's contract is realloc's.
        refused(unsafe { __libc_realloc(p, size) }, size)
    }

    /// `posix_memalign` with the fuzzer's limit.
    ///
    /// # Safety
    /// `out` must be valid for a write.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
        if !align.is_power_of_two() || !align.is_multiple_of(size_of::<usize>()) {
            return libc::EINVAL;
        }
        check(size);
        // SAFETY: forwarding to glibc's allocator.
        let p = refused(unsafe { __libc_memalign(align, size) }, size);
        if p.is_null() {
            return libc::ENOMEM;
        }
        // SAFETY: the caller passes a valid out-pointer.
        unsafe { *out = p };
        0
    }

    /// `aligned_alloc` with the fuzzer's limit.
    #[unsafe(no_mangle)]
    pub extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
        check(size);
        // SAFETY: forwarding to glibc's allocator.
        refused(unsafe { __libc_memalign(align, size) }, size)
    }

    /// `memalign` with the fuzzer's limit.
    #[unsafe(no_mangle)]
    pub extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
        check(size);
        // SAFETY: forwarding to glibc's allocator.
        refused(unsafe { __libc_memalign(align, size) }, size)
    }

    /// Keeps the interposed symbols linked (see `__private::main`).
    pub fn keep() {
        core::hint::black_box(malloc as extern "C" fn(usize) -> *mut c_void);
        core::hint::black_box(calloc as extern "C" fn(usize, usize) -> *mut c_void);
        core::hint::black_box(realloc as unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void);
        core::hint::black_box(posix_memalign as unsafe extern "C" fn(*mut *mut c_void, usize, usize) -> c_int);
        core::hint::black_box(aligned_alloc as extern "C" fn(usize, usize) -> *mut c_void);
        core::hint::black_box(memalign as extern "C" fn(usize, usize) -> *mut c_void);
    }
}

/// Sets the single-allocation limit from the environment.
pub fn init_malloc_limit() {
    #[cfg(all(target_os = "linux", target_env = "gnu", fuzzing, not(rfuzz_sanitize_address)))]
    interpose::keep();
    let mb = std::env::var(crate::protocol::MALLOC_LIMIT_ENV_VAR).ok().and_then(|v| v.trim().parse::<usize>().ok());
    if let Some(mb) = mb.filter(|&m| m > 0) {
        MALLOC_LIMIT.store(mb.saturating_mul(1 << 20), Relaxed);
    }
}

extern "C" fn on_fault(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    // The run's coverage, for the fuzzer's crash de-duplication (and, in a
    // coverage build, for the report).
    crate::sancov::copy_to_shared();
    crate::coverage::dump();
    record_pc(ctx);
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let (addr, code) = unsafe { ((*info).si_addr() as usize, (*info).si_code) };
    // SI_USER, SI_QUEUE, SI_TKILL (<= 0): sent by a process (`kill -SEGV`),
    // not raised by an instruction, so returning would not fault again.
    let sent = code <= 0;
    let low = STACK_LOW.load(Relaxed);
    if !sent && low != 0 && addr < low + 4096 && addr + GUARD_SPAN >= low {
        crate::record_exit_reason(direct::EXIT_STACK_OVERFLOW);
        write_stderr(b"rfuzz: stack overflow (the input makes the code recurse too deeply)\n");
    } else if !sent {
        record_frames();
    }
    // Die of the original signal: restore the default action and return, so
    // the faulting instruction runs again; a sent signal is raised again.
    // SAFETY: resetting a signal disposition and raising are async-signal-safe.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        if sent {
            libc::raise(sig);
        }
    }
    if !sent && crate::STANDALONE.load(Relaxed) && !(low != 0 && addr < low + 4096 && addr + GUARD_SPAN >= low) {
        crate::standalone::fault_backtrace(sig);
    }
}

/// Aborts and other fatal signals: publish the run's coverage (and where an
/// illegal instruction or arithmetic fault hit), then die of the same signal.
extern "C" fn on_fatal(sig: c_int, _info: *mut libc::siginfo_t, ctx: *mut c_void) {
    crate::sancov::copy_to_shared();
    crate::coverage::dump();
    if sig != libc::SIGABRT {
        record_pc(ctx);
        record_frames();
    }
    // SAFETY: restoring the default action and re-raising are
    // async-signal-safe; the raised signal is delivered when we return.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
    // A panic's abort already printed its backtrace.
    if sig != libc::SIGABRT && crate::STANDALONE.load(Relaxed) {
        crate::standalone::fault_backtrace(sig);
    }
}

/// The fuzzer's request before it kills a hung run: publish its coverage
/// and where it was looping (the hang's site, for de-duplication).
extern "C" fn on_dump_request(_: c_int, _info: *mut libc::siginfo_t, ctx: *mut c_void) {
    crate::sancov::copy_to_shared();
    record_pc(ctx);
    crate::mark_map_dumped();
}

extern "C" fn at_exit() {
    crate::sancov::copy_to_shared();
    crate::coverage::dump();
}

/// Publishes coverage on aborts, illegal instructions, arithmetic faults, a
/// normal exit and the fuzzer's dump request.
pub fn init_coverage_dumps() {
    init_exe_base();
    // SAFETY: installing handlers that only copy memory, store atomics and
    // re-raise, on a zeroed sigaction with an empty mask.
    unsafe {
        let install = |sig: c_int, handler: usize| {
            let mut sa: libc::sigaction = core::mem::zeroed();
            sa.sa_sigaction = handler;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, core::ptr::null_mut());
        };
        for sig in [libc::SIGABRT, libc::SIGILL, libc::SIGFPE] {
            install(sig, on_fatal as *const () as usize);
        }
        install(crate::protocol::direct::DUMP_SIGNAL, on_dump_request as *const () as usize);
        libc::atexit(at_exit);
    }
}

/// Installs the stack-overflow detector for the main thread (not under
/// ASan, whose own SIGSEGV handler reports stack overflows).
pub fn init_stack_overflow_handler() {
    if cfg!(rfuzz_sanitize_address) {
        return;
    }
    // SAFETY: plain libc calls on a zeroed attribute struct and a fresh
    // mapping; failures leave the detector off.
    unsafe {
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) == 0 {
            let mut addr: *mut c_void = core::ptr::null_mut();
            let mut size: usize = 0;
            if libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0 {
                STACK_LOW.store(addr as usize, Relaxed);
            }
            libc::pthread_attr_destroy(&mut attr);
        }
        let alt_size = 64 * 1024;
        let alt = libc::mmap(
            core::ptr::null_mut(),
            alt_size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if alt == libc::MAP_FAILED {
            return;
        }
        let ss = libc::stack_t { ss_sp: alt, ss_flags: 0, ss_size: alt_size };
        if libc::sigaltstack(&ss, core::ptr::null_mut()) != 0 {
            return;
        }
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = on_fault as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGSEGV, &sa, core::ptr::null_mut());
        libc::sigaction(libc::SIGBUS, &sa, core::ptr::null_mut());
    }
}

#[cfg(rfuzz_sanitize_address)]
mod asan {
    //! AddressSanitizer's interface (its runtime is linked into ASan builds).
    use std::os::raw::c_char;

    unsafe extern "C" {
        fn __sanitizer_set_death_callback(callback: extern "C" fn());
        fn __asan_get_report_description() -> *const c_char;
    }

    /// Called by ASan after it printed a report, before it aborts.
    extern "C" fn on_death() {
        // SAFETY: ASan returns a static NUL-terminated description of the
        // report being printed (or null when there is none).
        let kind = unsafe {
            let p = __asan_get_report_description();
            if p.is_null() { &b"error"[..] } else { core::ffi::CStr::from_ptr(p).to_bytes() }
        };
        crate::record_sanitizer_kind(if kind.is_empty() { b"error" } else { kind });
        crate::sancov::copy_to_shared();
    }

    pub fn init() {
        // SAFETY: registering a plain function; ASan calls it at most once.
        unsafe { __sanitizer_set_death_callback(on_death) };
    }

    /// ASan's defaults for fuzz targets (`ASAN_OPTIONS` still overrides):
    /// abort on an error, so a report is a crash, and no leak hunting at
    /// exit (the fuzzer does not look for leaks).
    #[unsafe(no_mangle)]
    pub extern "C" fn __asan_default_options() -> *const c_char {
        c"abort_on_error=1:detect_leaks=0:allocator_may_return_null=0:handle_abort=0".as_ptr()
    }
}

/// In AddressSanitizer builds, records the kind of each ASan report for the
/// fuzzer. Nothing otherwise.
pub fn init_sanitizer_report() {
    #[cfg(rfuzz_sanitize_address)]
    asan::init();
}
