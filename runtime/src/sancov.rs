//! SanitizerCoverage callbacks: edge counters and compare tracing.
//!
//! LLVM's `trace-pc-guard` instrumentation gives every edge of the instrumented
//! crates a 32-bit guard and calls [`__sanitizer_cov_trace_pc_guard`] when the
//! edge runs. We number the guards 1..=N at start-up; the guard value is the
//! edge's index in the coverage map. This crate itself is built without
//! instrumentation (the build wrapper skips it), so its own code never shows up
//! in the map and the map stays stable.

use core::sync::atomic::{AtomicPtr, AtomicU8, AtomicU32, AtomicUsize, Ordering::Relaxed};

/// Small map used until the guards are numbered: instrumented code may run in
/// other constructors before our guard init, and guard value 0 lands here.
static EARLY_MAP: [AtomicU8; 64] = [const { AtomicU8::new(0) }; 64];

/// Where edge counters go. Never null: the early map, then a private map sized
/// for all guards, then the fuzzer's shared memory once attached.
static MAP_PTR: AtomicPtr<u8> = AtomicPtr::new(EARLY_MAP.as_ptr() as *mut u8);
/// Bytes writable at `MAP_PTR`.
static MAP_CAPACITY: AtomicUsize = AtomicUsize::new(64);
/// Highest guard id assigned so far.
static GUARDS: AtomicU32 = AtomicU32::new(0);
/// Set once a fuzzer's map is installed: later guard ranges that would not fit
/// are pointed at index 0 instead of writing out of bounds.
static MAP_IS_EXTERNAL: AtomicU32 = AtomicU32::new(0);

/// Number of instrumented edges in this binary.
pub fn guard_count() -> u32 {
    GUARDS.load(Relaxed)
}

/// Map size the fuzzer must provide for this binary.
pub fn map_size() -> usize {
    crate::protocol::map_size_for_guards(guard_count()) as usize
}

/// Pointer to the map currently receiving counters.
pub fn map_ptr() -> *mut u8 {
    MAP_PTR.load(Relaxed)
}

/// Makes the counters go to `map`, which must be valid for `len` bytes for as
/// long as the process runs.
///
/// # Safety
/// `map` must point to `len` writable bytes that stay mapped until exit, and
/// `len` must be at least [`map_size`].
pub unsafe fn install_map(map: *mut u8, len: usize) {
    debug_assert!(len >= map_size());
    MAP_CAPACITY.store(len, Relaxed);
    MAP_PTR.store(map, Relaxed);
    MAP_IS_EXTERNAL.store(1, Relaxed);
}

/// Clears the first [`map_size`] bytes of the current map.
pub fn clear_map() {
    let len = map_size().min(MAP_CAPACITY.load(Relaxed));
    // SAFETY: MAP_PTR always points to at least MAP_CAPACITY writable bytes.
    unsafe { core::ptr::write_bytes(map_ptr(), 0, len) };
}

/// Allocates a private zeroed map of `len` bytes with mmap (usable from a
/// constructor, before the Rust runtime is up). Returns null on failure.
fn alloc_private_map(len: usize) -> *mut u8 {
    // SAFETY: anonymous private mapping; no existing memory is touched.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED { core::ptr::null_mut() } else { p.cast() }
}

/// Called by each instrumented module's constructor with its guard array.
///
/// # Safety
/// Called by LLVM-generated code with a valid `[start, stop)` range of guards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __sanitizer_cov_trace_pc_guard_init(start: *mut u32, stop: *mut u32) {
    // SAFETY: LLVM passes a valid, possibly empty, range of guards. The same
    // range can be passed more than once (several constructors of one module
    // under codegen-units=1 or LTO): numbered guards are left alone.
    unsafe {
        if start == stop || *start != 0 {
            return;
        }
        let count = stop.offset_from(start) as u32;
        let first = GUARDS.fetch_add(count, Relaxed) + 1;
        let needed = crate::protocol::map_size_for_guards(first + count - 1) as usize;
        if needed > MAP_CAPACITY.load(Relaxed) && MAP_IS_EXTERNAL.load(Relaxed) == 0 {
            let fresh = alloc_private_map(needed.next_power_of_two());
            if !fresh.is_null() {
                MAP_CAPACITY.store(needed.next_power_of_two(), Relaxed);
                MAP_PTR.store(fresh, Relaxed);
            }
        }
        let capacity = MAP_CAPACITY.load(Relaxed) as u32;
        let mut g = start;
        let mut id = first;
        while g < stop {
            // A guard that would not fit the installed map shares slot 0.
            *g = if id < capacity { id } else { 0 };
            id += 1;
            g = g.add(1);
        }
    }
}

/// Called on every instrumented edge.
///
/// # Safety
/// Called by LLVM-generated code with a guard numbered by the init above.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __sanitizer_cov_trace_pc_guard(guard: *mut u32) {
    // SAFETY: every guard holds an index below MAP_CAPACITY (see init), and
    // MAP_PTR points to MAP_CAPACITY writable bytes. The increment never wraps
    // to zero ("NeverZero"): an edge hit a multiple of 256 times still counts.
    unsafe {
        let slot = MAP_PTR.load(Relaxed).add(*guard as usize);
        let (v, carry) = (*slot).overflowing_add(1);
        *slot = v + carry as u8;
    }
}

pub(crate) mod cmp {
    //! Compare tracing. The callbacks are a load and a branch until the fuzzer
    //! asks for a compare log for one run.

    use super::*;
    use crate::protocol::cmplog::{self, LogHeader, Record};

    /// The compare log, or null while logging is off.
    static LOG: AtomicPtr<LogHeader> = AtomicPtr::new(core::ptr::null_mut());

    /// Turns compare logging on (`Some`) or off.
    ///
    /// # Safety
    /// `log` must point to a log area of the size its header's capacity says,
    /// mapped for as long as logging stays on.
    pub unsafe fn set_log(log: Option<*mut LogHeader>) {
        LOG.store(log.unwrap_or(core::ptr::null_mut()), Relaxed);
    }

    #[inline(always)]
    fn push(kind: u8, size: u8, is_const: u8, a: &[u8], b: &[u8]) {
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
                site: 0,
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

    macro_rules! int_cmp {
        ($name:ident, $const_name:ident, $t:ty) => {
            /// SanitizerCoverage compare hook.
            #[unsafe(no_mangle)]
            pub extern "C" fn $name(a: $t, b: $t) {
                push(cmplog::KIND_INT, size_of::<$t>() as u8, 0, &a.to_le_bytes(), &b.to_le_bytes());
            }
            /// SanitizerCoverage compare hook (first operand is a constant).
            #[unsafe(no_mangle)]
            pub extern "C" fn $const_name(a: $t, b: $t) {
                push(cmplog::KIND_INT, size_of::<$t>() as u8, 1, &a.to_le_bytes(), &b.to_le_bytes());
            }
        };
    }
    int_cmp!(__sanitizer_cov_trace_cmp1, __sanitizer_cov_trace_const_cmp1, u8);
    int_cmp!(__sanitizer_cov_trace_cmp2, __sanitizer_cov_trace_const_cmp2, u16);
    int_cmp!(__sanitizer_cov_trace_cmp4, __sanitizer_cov_trace_const_cmp4, u32);
    int_cmp!(__sanitizer_cov_trace_cmp8, __sanitizer_cov_trace_const_cmp8, u64);

    /// SanitizerCoverage `switch` hook: `cases[0]` is the number of cases,
    /// `cases[1]` the operand width in bits, then the case values.
    ///
    /// # Safety
    /// Called by LLVM-generated code with a valid case table.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn __sanitizer_cov_trace_switch(val: u64, cases: *const u64) {
        if LOG.load(Relaxed).is_null() {
            return;
        }
        // SAFETY: LLVM's table holds `cases[0] + 2` u64 values.
        unsafe {
            let n = *cases as usize;
            let bits = *cases.add(1);
            let size = (bits / 8).clamp(1, 8) as usize;
            for i in 0..n {
                let c = *cases.add(2 + i);
                push(cmplog::KIND_SWITCH, size as u8, 1, &val.to_le_bytes()[..size], &c.to_le_bytes()[..size]);
            }
        }
    }
}
