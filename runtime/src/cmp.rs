//! Compare tracing: the compare log for input-to-state solving, and partial
//! progress on wide compares as extra coverage.
//!
//! SanitizerCoverage (`trace-compares`) calls `__sanitizer_cov_trace_cmp{1,2,4,8}`,
//! `__sanitizer_cov_trace_const_cmp{1,2,4,8}` and `__sanitizer_cov_trace_switch`
//! on integer compares. Byte-string compares (slice and `str` equality lower to
//! `memcmp`/`bcmp`; C code calls `memcmp`, `strcmp`, `strncmp`,
//! `strcasecmp`, `strncasecmp`, kept as calls by `-fno-builtin-*`) are
//! caught by defining those functions here; they forward to the C library's.
//! In AddressSanitizer builds ASan defines them (to check their arguments)
//! and calls `__sanitizer_weak_hook_*` after each, which this module defines
//! instead.
//!
//! * **Compare log** (on request, one run): the operands of every compare,
//!   the site that made it, and up to 32 bytes of each side of a byte-string
//!   compare. The engine finds operand bytes in the input and substitutes the
//!   other operand (input-to-state), and learns dictionary tokens.
//! * **Progress** (when the engine sets `RFUZZ_CMP_PROGRESS=1`): for a
//!   compare against a constant of four or more bytes that fails, the number
//!   of equal bits (for byte strings: of the equal prefix, in bits) is
//!   recorded per compare site in a small extra coverage region, one
//!   hit-count bucket per level, so an input that gets more of a magic value
//!   right counts as new coverage (libFuzzer's value profile idea). This is what splitting wide compares gives AFL++, at the cost
//!   of a few instructions per compare.
//!
//! The site is the caller's return address, which the callbacks obtain from a
//! two-instruction naked trampoline on x86-64 and AArch64 (site 0 elsewhere).

use crate::protocol::cmplog::{self, LogHeader, Record};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::os::raw::{c_char, c_int, c_void};

/// The compare log, or null while logging is off.
static LOG: AtomicPtr<LogHeader> = AtomicPtr::new(core::ptr::null_mut());
/// Whether compare progress is recorded (set once at start-up).
static PROGRESS_ON: AtomicBool = AtomicBool::new(false);
/// Slots of the progress region (a power of two).
pub const PROGRESS_SLOTS: usize = 2048;
/// The progress region: one byte per (site, level group).
static PROGRESS: [AtomicU8; PROGRESS_SLOTS] = [const { AtomicU8::new(0) }; PROGRESS_SLOTS];
/// Counter value per level (1..=8): each lands in its own AFL hit-count bucket.
const LEVEL_VALUE: [u8; 9] = [0, 1, 2, 3, 4, 8, 16, 32, 128];

/// Turns compare logging on (`Some`) or off.
///
/// # Safety
/// `log` must point to a log area of the size its header's capacity says,
/// mapped for as long as logging stays on.
pub unsafe fn set_log(log: Option<*mut LogHeader>) {
    LOG.store(log.unwrap_or(core::ptr::null_mut()), Relaxed);
}

/// Reads `RFUZZ_CMP_PROGRESS` and resolves the C library's `memcmp`. Called
/// once from the entry point, before the coverage layout is fixed.
pub fn init() {
    let on = std::env::var_os(crate::protocol::CMP_PROGRESS_ENV_VAR).is_some_and(|v| v == "1");
    PROGRESS_ON.store(on, Relaxed);
    resolve_memcmp();
    #[cfg(all(fuzzing, not(rfuzz_sanitize_address)))]
    strings::resolve();
}

/// Whether the progress region is part of the coverage map.
pub fn progress_enabled() -> bool {
    PROGRESS_ON.load(Relaxed)
}

/// The progress region, for the coverage layout.
pub fn progress_region() -> (*mut u8, usize) {
    (PROGRESS.as_ptr() as *mut u8, PROGRESS_SLOTS)
}

#[inline(always)]
fn slot_for(site: usize, group: usize) -> usize {
    let h = (site as u64 ^ (group as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    (h >> 40) as usize & (PROGRESS_SLOTS - 1)
}

#[inline(always)]
fn record_level(site: usize, level: usize) {
    if level == 0 {
        return;
    }
    let slot = &PROGRESS[slot_for(site, (level - 1) / 8)];
    let v = LEVEL_VALUE[(level - 1) % 8 + 1];
    if slot.load(Relaxed) < v {
        slot.store(v, Relaxed);
    }
}

/// Number of equal bits among the low `width` bytes of `a` and `b`.
#[inline(always)]
fn equal_bits(a: u64, b: u64, width: usize) -> usize {
    let mask = if width >= 8 { u64::MAX } else { (1u64 << (width * 8)) - 1 };
    width * 8 - ((a ^ b) & mask).count_ones() as usize
}

#[inline(always)]
fn push(kind: u8, size: u8, is_const: u8, site: usize, a: &[u8], b: &[u8]) {
    let log = LOG.load(Relaxed);
    if log.is_null() {
        return;
    }
    // SAFETY: set_log's contract: the log is mapped with room for
    // `capacity` records after the header.
    unsafe {
        let header = &*log;
        let idx = header.count.fetch_add(1, Relaxed);
        if idx >= header.capacity.load(Relaxed) {
            return;
        }
        let records = (log as *mut u8).add(cmplog::HEADER_SIZE) as *mut Record;
        let mut rec = Record {
            kind,
            size,
            is_const,
            reserved: 0,
            site: (site ^ (site >> 32)) as u32,
            a: [0; cmplog::BYTES_MAX],
            b: [0; cmplog::BYTES_MAX],
        };
        let n = a.len().min(cmplog::BYTES_MAX);
        rec.a[..n].copy_from_slice(&a[..n]);
        let n = b.len().min(cmplog::BYTES_MAX);
        rec.b[..n].copy_from_slice(&b[..n]);
        records.add(idx as usize).write(rec);
    }
}

#[inline(always)]
fn on_int_cmp(a: u64, b: u64, width: usize, is_const: u8, site: usize) {
    // Progress only against constants: compares of two variables are mostly
    // loop bounds, which never "almost match" anything worth rewarding.
    if is_const == 1 && width >= 4 && a != b && PROGRESS_ON.load(Relaxed) {
        record_level(site, equal_bits(a, b, width));
    }
    if !LOG.load(Relaxed).is_null() {
        push(cmplog::KIND_INT, width as u8, is_const, site, &a.to_le_bytes()[..width], &b.to_le_bytes()[..width]);
    }
}

/// The trampolines: pass the caller's return address as one more argument.
macro_rules! trampoline {
    ($name:ident, $impl:ident, $arg:literal) => {
        #[cfg(target_arch = "x86_64")]
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        /// SanitizerCoverage hook (trampoline adding the call site).
        pub extern "C" fn $name() {
            core::arch::naked_asm!(concat!("mov ", $arg, ", [rsp]"), "jmp {f}", f = sym $impl)
        }
        #[cfg(target_arch = "aarch64")]
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        /// SanitizerCoverage hook (trampoline adding the call site).
        pub extern "C" fn $name() {
            core::arch::naked_asm!(concat!("mov ", $arg, ", x30"), "b {f}", f = sym $impl)
        }
    };
}

macro_rules! int_hooks {
    ($name:ident, $const_name:ident, $impl:ident, $const_impl:ident, $t:ty) => {
        extern "C" fn $impl(a: $t, b: $t, site: usize) {
            on_int_cmp(a as u64, b as u64, size_of::<$t>(), 0, site);
        }
        extern "C" fn $const_impl(a: $t, b: $t, site: usize) {
            on_int_cmp(a as u64, b as u64, size_of::<$t>(), 1, site);
        }
        #[cfg(target_arch = "x86_64")]
        trampoline!($name, $impl, "rdx");
        #[cfg(target_arch = "x86_64")]
        trampoline!($const_name, $const_impl, "rdx");
        #[cfg(target_arch = "aarch64")]
        trampoline!($name, $impl, "x2");
        #[cfg(target_arch = "aarch64")]
        trampoline!($const_name, $const_impl, "x2");
        /// SanitizerCoverage compare hook.
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        #[unsafe(no_mangle)]
        pub extern "C" fn $name(a: $t, b: $t) {
            $impl(a, b, 0)
        }
        /// SanitizerCoverage compare hook (first operand is a constant).
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        #[unsafe(no_mangle)]
        pub extern "C" fn $const_name(a: $t, b: $t) {
            $const_impl(a, b, 0)
        }
    };
}

int_hooks!(__sanitizer_cov_trace_cmp1, __sanitizer_cov_trace_const_cmp1, cmp1, const_cmp1, u8);
int_hooks!(__sanitizer_cov_trace_cmp2, __sanitizer_cov_trace_const_cmp2, cmp2, const_cmp2, u16);
int_hooks!(__sanitizer_cov_trace_cmp4, __sanitizer_cov_trace_const_cmp4, cmp4, const_cmp4, u32);
int_hooks!(__sanitizer_cov_trace_cmp8, __sanitizer_cov_trace_const_cmp8, cmp8, const_cmp8, u64);

/// `switch` hook body: `cases[0]` is the number of cases, `cases[1]` the
/// operand width in bits, then the case values.
///
/// # Safety
/// `cases` must be LLVM's case table.
unsafe extern "C" fn switch_impl(val: u64, cases: *const u64, site: usize) {
    let progress = PROGRESS_ON.load(Relaxed);
    let log = !LOG.load(Relaxed).is_null();
    if !progress && !log {
        return;
    }
    // SAFETY: LLVM's table holds `cases[0] + 2` u64 values.
    unsafe {
        let n = *cases as usize;
        let size = ((*cases.add(1)) / 8).clamp(1, 8) as usize;
        let mut best = 0;
        for i in 0..n {
            let c = *cases.add(2 + i);
            if log {
                push(cmplog::KIND_SWITCH, size as u8, 1, site, &val.to_le_bytes()[..size], &c.to_le_bytes()[..size]);
            }
            if progress && size >= 4 && n <= 64 && c != val {
                best = best.max(equal_bits(val, c, size));
            }
        }
        if progress {
            record_level(site, best);
        }
    }
}

#[cfg(target_arch = "x86_64")]
trampoline!(__sanitizer_cov_trace_switch, switch_impl, "rdx");
#[cfg(target_arch = "aarch64")]
trampoline!(__sanitizer_cov_trace_switch, switch_impl, "x2");
/// SanitizerCoverage `switch` hook.
///
/// # Safety
/// Called by LLVM-generated code with a valid case table.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __sanitizer_cov_trace_switch(val: u64, cases: *const u64) {
    // SAFETY: forwarded contract.
    unsafe { switch_impl(val, cases, 0) }
}

type MemcmpFn = unsafe extern "C" fn(*const c_void, *const c_void, usize) -> c_int;

/// The C library's `memcmp`, once resolved.
static REAL_MEMCMP: AtomicUsize = AtomicUsize::new(0);

fn resolve_memcmp() {
    // SAFETY: dlsym with RTLD_NEXT finds the next definition after ours (the
    // C library's); the name is a NUL-terminated literal.
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, c"memcmp".as_ptr()) };
    REAL_MEMCMP.store(p as usize, Relaxed);
}

/// Byte-wise compare used before `memcmp` is resolved (volatile reads keep
/// the compiler from turning the loop back into a `memcmp` call).
///
/// # Safety
/// `a` and `b` must be valid for `n` bytes.
unsafe fn slow_memcmp(a: *const u8, b: *const u8, n: usize) -> c_int {
    for i in 0..n {
        // SAFETY: i < n, within both buffers.
        let (x, y) = unsafe { (core::ptr::read_volatile(a.add(i)), core::ptr::read_volatile(b.add(i))) };
        if x != y {
            return x as c_int - y as c_int;
        }
    }
    0
}

/// Whether byte-string compares are being watched (progress or a log).
#[inline(always)]
fn watching() -> bool {
    PROGRESS_ON.load(Relaxed) || !LOG.load(Relaxed).is_null()
}

/// A failed byte-string compare of `x` and `y` (same length): records the
/// equal prefix as progress and both sides in the compare log.
fn on_bytes_cmp(x: &[u8], y: &[u8], site: usize) {
    if PROGRESS_ON.load(Relaxed) {
        let prefix = x.iter().zip(y).take_while(|(p, q)| p == q).count();
        let partial = x.get(prefix).zip(y.get(prefix)).map_or(0, |(p, q)| 8 - (p ^ q).count_ones() as usize);
        record_level(site, prefix * 8 + partial);
    }
    let k = x.len().min(y.len()).min(cmplog::BYTES_MAX);
    push(cmplog::KIND_BYTES, k as u8, 0, site, &x[..k], &y[..k]);
}

/// `memcmp`/`bcmp` body: compare, then log and record progress when asked.
///
/// # Safety
/// `a` and `b` must be valid for `n` bytes.
unsafe extern "C" fn memcmp_impl(a: *const c_void, b: *const c_void, n: usize, site: usize) -> c_int {
    let real = REAL_MEMCMP.load(Relaxed);
    let r = if real == 0 {
        // SAFETY: forwarded contract.
        unsafe { slow_memcmp(a.cast(), b.cast(), n) }
    } else {
        // SAFETY: `real` is the C library's memcmp; forwarded contract.
        unsafe { core::mem::transmute::<usize, MemcmpFn>(real)(a, b, n) }
    };
    // SAFETY: forwarded contract.
    unsafe { after_memcmp(a, b, n, r, site) };
    r
}

/// Watches a finished `memcmp` of `n` bytes that returned `r`.
///
/// # Safety
/// `a` and `b` must be valid for `n` bytes.
unsafe fn after_memcmp(a: *const c_void, b: *const c_void, n: usize, r: c_int, site: usize) {
    if r != 0 && n >= 4 && watching() {
        // SAFETY: both buffers are valid for n bytes.
        let (x, y) =
            unsafe { (core::slice::from_raw_parts(a as *const u8, n), core::slice::from_raw_parts(b as *const u8, n)) };
        on_bytes_cmp(x, y, site);
    }
}

/// Up to `BYTES_MAX` (and at most `limit`) bytes of a C string, zero-padded,
/// and how many there were before its NUL.
///
/// # Safety
/// `p` must be a NUL-terminated string or valid for `limit` bytes.
unsafe fn c_prefix(p: *const c_char, limit: usize) -> ([u8; cmplog::BYTES_MAX], usize) {
    let mut out = [0u8; cmplog::BYTES_MAX];
    let mut n = 0;
    while n < limit.min(cmplog::BYTES_MAX) {
        // SAFETY: n is before the NUL (or below limit), inside the string.
        let c = unsafe { *p.add(n) } as u8;
        if c == 0 {
            break;
        }
        out[n] = c;
        n += 1;
    }
    (out, n)
}

/// Watches a finished string compare (`strcmp` family; `limit` is `n` of the
/// `strn*` ones) that returned `r`.
///
/// # Safety
/// `a` and `b` must be NUL-terminated or valid for `limit` bytes.
unsafe fn after_strcmp(a: *const c_char, b: *const c_char, limit: usize, r: c_int, site: usize) {
    if r == 0 || !watching() || a.is_null() || b.is_null() {
        return;
    }
    // SAFETY: forwarded contract.
    let ((x, la), (y, lb)) = unsafe { (c_prefix(a, limit), c_prefix(b, limit)) };
    // Both sides as long as the longer one, the shorter padded with its NUL:
    // replacing the input's bytes by the other side then ends the string
    // where the other one ends.
    let k = la.max(lb);
    if k >= 2 {
        on_bytes_cmp(&x[..k], &y[..k], site);
    }
}

#[cfg(all(fuzzing, not(rfuzz_sanitize_address)))]
mod strings {
    //! `strcmp` and friends, replaced in the whole program (C code built by
    //! `cargo rfuzz build` calls them instead of inlining them).
    use super::*;

    type StrcmpFn = unsafe extern "C" fn(*const c_char, *const c_char) -> c_int;
    type StrncmpFn = unsafe extern "C" fn(*const c_char, *const c_char, usize) -> c_int;

    /// The C library's functions, once resolved (0 before).
    static REAL: [AtomicUsize; 4] = [const { AtomicUsize::new(0) }; 4];
    const STRCMP: usize = 0;
    const STRNCMP: usize = 1;
    const STRCASECMP: usize = 2;
    const STRNCASECMP: usize = 3;

    pub fn resolve() {
        for (i, name) in [c"strcmp", c"strncmp", c"strcasecmp", c"strncasecmp"].iter().enumerate() {
            // SAFETY: as in resolve_memcmp.
            REAL[i].store(unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) } as usize, Relaxed);
        }
    }

    /// Byte-wise compare used before resolution (C semantics, ASCII folding).
    ///
    /// # Safety
    /// `a` and `b` must be NUL-terminated or valid for `n` bytes.
    unsafe fn slow(a: *const c_char, b: *const c_char, n: usize, fold: bool) -> c_int {
        for i in 0..n {
            // SAFETY: i is before both NULs (or below n).
            let (x, y) =
                unsafe { (core::ptr::read_volatile(a.add(i)) as u8, core::ptr::read_volatile(b.add(i)) as u8) };
            let (x, y) = if fold { (x.to_ascii_lowercase(), y.to_ascii_lowercase()) } else { (x, y) };
            if x != y || x == 0 {
                return x as c_int - y as c_int;
            }
        }
        0
    }

    /// # Safety
    /// C's `strcmp` contract.
    unsafe extern "C" fn two(which: usize, a: *const c_char, b: *const c_char, site: usize) -> c_int {
        let real = REAL[which].load(Relaxed);
        let r = if real == 0 {
            // SAFETY: forwarded contract.
            unsafe { slow(a, b, usize::MAX, which == STRCASECMP) }
        } else {
            // SAFETY: the C library's function of the same signature.
            unsafe { core::mem::transmute::<usize, StrcmpFn>(real)(a, b) }
        };
        // SAFETY: forwarded contract.
        unsafe { after_strcmp(a, b, usize::MAX, r, site) };
        r
    }

    /// # Safety
    /// C's `strncmp` contract.
    unsafe extern "C" fn three(which: usize, a: *const c_char, b: *const c_char, n: usize, site: usize) -> c_int {
        let real = REAL[which].load(Relaxed);
        let r = if real == 0 {
            // SAFETY: forwarded contract.
            unsafe { slow(a, b, n, which == STRNCASECMP) }
        } else {
            // SAFETY: the C library's function of the same signature.
            unsafe { core::mem::transmute::<usize, StrncmpFn>(real)(a, b, n) }
        };
        // SAFETY: forwarded contract.
        unsafe { after_strcmp(a, b, n, r, site) };
        r
    }

    unsafe extern "C" fn strcmp_impl(a: *const c_char, b: *const c_char, site: usize) -> c_int {
        // SAFETY: forwarded contract.
        unsafe { two(STRCMP, a, b, site) }
    }
    unsafe extern "C" fn strcasecmp_impl(a: *const c_char, b: *const c_char, site: usize) -> c_int {
        // SAFETY: forwarded contract.
        unsafe { two(STRCASECMP, a, b, site) }
    }
    unsafe extern "C" fn strncmp_impl(a: *const c_char, b: *const c_char, n: usize, site: usize) -> c_int {
        // SAFETY: forwarded contract.
        unsafe { three(STRNCMP, a, b, n, site) }
    }
    unsafe extern "C" fn strncasecmp_impl(a: *const c_char, b: *const c_char, n: usize, site: usize) -> c_int {
        // SAFETY: forwarded contract.
        unsafe { three(STRNCASECMP, a, b, n, site) }
    }

    #[cfg(target_arch = "x86_64")]
    trampoline!(strcmp, strcmp_impl, "rdx");
    #[cfg(target_arch = "x86_64")]
    trampoline!(strcasecmp, strcasecmp_impl, "rdx");
    #[cfg(target_arch = "x86_64")]
    trampoline!(strncmp, strncmp_impl, "rcx");
    #[cfg(target_arch = "x86_64")]
    trampoline!(strncasecmp, strncasecmp_impl, "rcx");
    #[cfg(target_arch = "aarch64")]
    trampoline!(strcmp, strcmp_impl, "x2");
    #[cfg(target_arch = "aarch64")]
    trampoline!(strcasecmp, strcasecmp_impl, "x2");
    #[cfg(target_arch = "aarch64")]
    trampoline!(strncmp, strncmp_impl, "x3");
    #[cfg(target_arch = "aarch64")]
    trampoline!(strncasecmp, strncasecmp_impl, "x3");

    pub fn keep() {
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        for f in [strcmp as extern "C" fn(), strcasecmp, strncmp, strncasecmp] {
            core::hint::black_box(f);
        }
        core::hint::black_box(strcmp_impl as unsafe extern "C" fn(*const c_char, *const c_char, usize) -> c_int);
        core::hint::black_box(strcasecmp_impl as unsafe extern "C" fn(*const c_char, *const c_char, usize) -> c_int);
        core::hint::black_box(
            strncmp_impl as unsafe extern "C" fn(*const c_char, *const c_char, usize, usize) -> c_int,
        );
        core::hint::black_box(
            strncasecmp_impl as unsafe extern "C" fn(*const c_char, *const c_char, usize, usize) -> c_int,
        );
    }
}

#[cfg(rfuzz_sanitize_address)]
mod sanitizer_hooks {
    //! AddressSanitizer intercepts `memcmp` and the `strcmp` family itself
    //! and calls these (weak in its runtime) after each compare.
    use super::*;

    /// ASan hook after `memcmp`/`bcmp`.
    ///
    /// # Safety
    /// Called by ASan with the compare's (already checked) arguments.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn __sanitizer_weak_hook_memcmp(
        pc: *const c_void,
        a: *const c_void,
        b: *const c_void,
        n: usize,
        r: c_int,
    ) {
        // SAFETY: forwarded contract.
        unsafe { after_memcmp(a, b, n, r, pc as usize) }
    }

    /// ASan hook after `strcmp`.
    ///
    /// # Safety
    /// Called by ASan with the compare's arguments.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn __sanitizer_weak_hook_strcmp(
        pc: *const c_void,
        a: *const c_char,
        b: *const c_char,
        r: c_int,
    ) {
        // SAFETY: forwarded contract.
        unsafe { after_strcmp(a, b, usize::MAX, r, pc as usize) }
    }

    /// ASan hook after `strcasecmp`.
    ///
    /// # Safety
    /// Called by ASan with the compare's arguments.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn __sanitizer_weak_hook_strcasecmp(
        pc: *const c_void,
        a: *const c_char,
        b: *const c_char,
        r: c_int,
    ) {
        // SAFETY: forwarded contract.
        unsafe { after_strcmp(a, b, usize::MAX, r, pc as usize) }
    }

    /// ASan hook after `strncmp`.
    ///
    /// # Safety
    /// Called by ASan with the compare's arguments.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn __sanitizer_weak_hook_strncmp(
        pc: *const c_void,
        a: *const c_char,
        b: *const c_char,
        n: usize,
        r: c_int,
    ) {
        // SAFETY: forwarded contract.
        unsafe { after_strcmp(a, b, n, r, pc as usize) }
    }

    /// ASan hook after `strncasecmp`.
    ///
    /// # Safety
    /// Called by ASan with the compare's arguments.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn __sanitizer_weak_hook_strncasecmp(
        pc: *const c_void,
        a: *const c_char,
        b: *const c_char,
        n: usize,
        r: c_int,
    ) {
        // SAFETY: forwarded contract.
        unsafe { after_strcmp(a, b, n, r, pc as usize) }
    }
}

// Defining memcmp/bcmp replaces them for the whole program: only in fuzz-
// target builds (`--cfg fuzzing`), never in a program that links this crate
// for its protocol module, and not under ASan (which defines them).
#[cfg(all(fuzzing, not(rfuzz_sanitize_address), target_arch = "x86_64"))]
trampoline!(memcmp, memcmp_impl, "rcx");
#[cfg(all(fuzzing, not(rfuzz_sanitize_address), target_arch = "x86_64"))]
trampoline!(bcmp, memcmp_impl, "rcx");
#[cfg(all(fuzzing, not(rfuzz_sanitize_address), target_arch = "aarch64"))]
trampoline!(memcmp, memcmp_impl, "x3");
#[cfg(all(fuzzing, not(rfuzz_sanitize_address), target_arch = "aarch64"))]
trampoline!(bcmp, memcmp_impl, "x3");

/// Keeps the byte-compare hooks linked (see `__private::main`).
pub fn keep() {
    #[cfg(all(fuzzing, not(rfuzz_sanitize_address), any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        core::hint::black_box(memcmp as extern "C" fn());
        core::hint::black_box(bcmp as extern "C" fn());
    }
    #[cfg(all(fuzzing, not(rfuzz_sanitize_address)))]
    strings::keep();
    core::hint::black_box(memcmp_impl as unsafe extern "C" fn(*const c_void, *const c_void, usize, usize) -> c_int);
    // Called by the string hooks, which only fuzz-target builds have.
    core::hint::black_box(after_strcmp as unsafe fn(*const c_char, *const c_char, usize, c_int, usize));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_bits_is_the_hamming_similarity() {
        assert_eq!(equal_bits(0x1122_3344, 0x1122_3344, 4), 32);
        assert_eq!(equal_bits(0x1122_3344, 0x1122_3345, 4), 31);
        assert_eq!(equal_bits(0xff, 0x00, 1), 0);
        assert_eq!(equal_bits(u64::MAX, u64::MAX ^ 3, 8), 62);
        assert_eq!(equal_bits(0xffff_0000_0000, 0, 4), 32, "only the compared width counts");
    }

    #[test]
    fn each_level_has_its_own_bucket() {
        let mut buckets: Vec<u8> = LEVEL_VALUE[1..].iter().map(|&v| crate::protocol::bucket(v)).collect();
        buckets.dedup();
        assert_eq!(buckets.len(), 8, "{buckets:?}");
    }

    #[test]
    fn string_prefixes_stop_at_the_nul_and_the_limit() {
        // SAFETY: NUL-terminated literals.
        unsafe {
            let (b, n) = c_prefix(c"GET /".as_ptr(), usize::MAX);
            assert_eq!((&b[..n], b[n]), (&b"GET /"[..], 0));
            let (b, n) = c_prefix(c"GET /".as_ptr(), 3);
            assert_eq!(&b[..n], b"GET");
        }
    }

    #[test]
    fn slow_memcmp_orders_like_memcmp() {
        // SAFETY: both slices are valid for their length.
        unsafe {
            assert_eq!(slow_memcmp(b"abc".as_ptr(), b"abc".as_ptr(), 3), 0);
            assert!(slow_memcmp(b"abd".as_ptr(), b"abc".as_ptr(), 3) > 0);
            assert!(slow_memcmp(b"abb".as_ptr(), b"abc".as_ptr(), 3) < 0);
        }
    }
}
