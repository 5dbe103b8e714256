//! SanitizerCoverage: edge counters, guards and compare tracing.
//!
//! A binary can mix two kinds of edge instrumentation, and this module
//! takes both:
//!
//! * **Inline 8-bit counters** (`cargo rfuzz build`'s default for Rust,
//!   `--coverage counters`): every edge increments a byte in a counter array
//!   that LLVM places in the binary (`__sancov_cntrs`), with no call per
//!   edge; each module registers its array through
//!   [`__sanitizer_cov_8bit_counters_init`].
//! * **`trace-pc-guard`** (Rust with `--coverage pc-guard`, and C/C++ that
//!   build scripts compile with clang's `-fsanitize-coverage=trace-pc-guard`):
//!   each module's guards are numbered by
//!   [`__sanitizer_cov_trace_pc_guard_init`] and every edge calls
//!   [`__sanitizer_cov_trace_pc_guard`], which counts it in a private guard
//!   map. (C code is also built with `pc-table`, a table of its edges in the
//!   binary's `__sancov_pcs` section that `cargo rfuzz build` reads to say
//!   how many edges are C; [`__sanitizer_cov_pcs_init`] has nothing to do.)
//!
//! The fuzzer sees one coverage map, the concatenation of the guard map
//! (whose slot 0 marks "the harness ran") and the counter arrays, each
//! starting at an 8-byte boundary so the map can be scanned a word at a time:
//!
//! ```text
//! map offset 0            8k                 8m
//!            [guard map: marker, guards...][pad][counters of module 1][pad][module 2]...
//! ```
//!
//! The counters and guards stay in the target's own memory; the forkserver
//! child clears them before each input, scans them itself for new bits
//! (direct protocol), and copies them into the fuzzer's shared map when the
//! fuzzer needs the map (after an interesting input, a single run, a crash,
//! a timeout). This crate is built without instrumentation, so its own code
//! never shows up.

use core::sync::atomic::{AtomicPtr, AtomicU8, AtomicU32, AtomicUsize, Ordering::Relaxed};
use std::sync::OnceLock;

/// Small guard map used until guards are numbered: instrumented code may run
/// in other constructors first, and guard value 0 lands in slot 0.
static EARLY_MAP: [AtomicU8; 64] = [const { AtomicU8::new(0) }; 64];

/// Guard map for `trace-pc-guard` code (never null).
static GUARD_MAP: AtomicPtr<u8> = AtomicPtr::new(EARLY_MAP.as_ptr() as *mut u8);
/// Bytes writable at `GUARD_MAP`.
static GUARD_CAPACITY: AtomicUsize = AtomicUsize::new(64);
/// Highest guard id assigned so far.
static GUARDS: AtomicU32 = AtomicU32::new(0);

/// Counter arrays registered by the module constructors (merged when
/// adjacent), before the layout is fixed.
const MAX_REGIONS: usize = 4096;
static REGION_START: [AtomicUsize; MAX_REGIONS] = [const { AtomicUsize::new(0) }; MAX_REGIONS];
static REGION_END: [AtomicUsize; MAX_REGIONS] = [const { AtomicUsize::new(0) }; MAX_REGIONS];
static REGIONS: AtomicUsize = AtomicUsize::new(0);

/// The fuzzer's shared coverage map, once attached (null before).
static SHARED_MAP: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());

/// One piece of the coverage map.
#[derive(Debug, Clone, Copy)]
struct Region {
    ptr: *mut u8,
    len: usize,
    map_off: usize,
}

/// The fixed layout of the coverage map.
#[derive(Debug)]
struct Layout {
    regions: Vec<Region>,
    map_size: usize,
    edges: usize,
}

// SAFETY: the regions point to memory that lives for the whole process and
// is only written by the (single) thread running inputs.
unsafe impl Send for Layout {}
// SAFETY: as above; the layout itself is immutable once built.
unsafe impl Sync for Layout {}

static LAYOUT: OnceLock<Layout> = OnceLock::new();

fn layout() -> &'static Layout {
    LAYOUT.get_or_init(|| {
        let guards = GUARDS.load(Relaxed) as usize;
        let guard_len = (guards + 1).min(GUARD_CAPACITY.load(Relaxed));
        let mut regions = vec![Region { ptr: GUARD_MAP.load(Relaxed), len: guard_len, map_off: 0 }];
        let mut off = guard_len.next_multiple_of(8);
        let mut edges = guards;
        if crate::cmp::progress_enabled() {
            let (ptr, len) = crate::cmp::progress_region();
            regions.push(Region { ptr, len, map_off: off });
            off += len;
        }
        let mut counters: Vec<(usize, usize)> = (0..REGIONS.load(Relaxed).min(MAX_REGIONS))
            .map(|i| (REGION_START[i].load(Relaxed), REGION_END[i].load(Relaxed)))
            .filter(|(s, e)| e > s)
            .collect();
        counters.sort();
        for (start, end) in counters {
            let len = end - start;
            regions.push(Region { ptr: start as *mut u8, len, map_off: off });
            off = (off + len).next_multiple_of(8);
            edges += len;
        }
        Layout { regions, map_size: off.max(1).next_multiple_of(64), edges }
    })
}

/// Number of instrumented edges (counters and guards) in this binary.
pub fn edge_count() -> usize {
    layout().edges
}

/// Size of the coverage map the fuzzer must provide.
pub fn map_size() -> usize {
    layout().map_size
}

/// Makes [`copy_to_shared`] write to `map` from now on.
///
/// # Safety
/// `map` must point to at least [`map_size`] writable bytes that stay mapped
/// until the process exits.
pub unsafe fn set_shared_map(map: *mut u8) {
    SHARED_MAP.store(map, Relaxed);
}

/// Clears every counter and sets the "harness ran" marker.
pub fn clear() {
    for r in &layout().regions {
        // SAFETY: each region is `len` writable bytes (a counter array or the
        // guard map), valid for the life of the process.
        unsafe { core::ptr::write_bytes(r.ptr, 0, r.len) };
    }
    // SAFETY: the guard map always has slot 0.
    unsafe { *GUARD_MAP.load(Relaxed) = 1 };
}

/// Copies the counters into the shared map (zero where no region is).
/// Async-signal-safe: plain loads and stores, no allocation, no locks.
pub fn copy_to_shared() {
    let map = SHARED_MAP.load(Relaxed);
    let Some(layout) = LAYOUT.get() else { return };
    if map.is_null() {
        return;
    }
    // SAFETY: set_shared_map's contract gives map_size bytes at `map`; every
    // region lies inside the map by construction of the layout.
    unsafe {
        core::ptr::write_bytes(map, 0, layout.map_size);
        for r in &layout.regions {
            core::ptr::copy_nonoverlapping(r.ptr, map.add(r.map_off), r.len);
        }
    }
}

use crate::protocol::BUCKETS;

#[inline(always)]
fn bucket_word(w: u64) -> u64 {
    let mut out = 0u64;
    for (i, b) in w.to_le_bytes().iter().enumerate() {
        out |= (BUCKETS[*b as usize] as u64) << (i * 8);
    }
    out
}

/// Classifies the counters on the fly (AFL hit-count buckets) and compares
/// them with the fuzzer's virgin map (indexed like the shared map): returns
/// whether any bucket bit is still virgin, and the path hash of the
/// classified map (the same hash the fuzzer computes on the shared map).
///
/// The virgin map lives in memory the fuzzer rewrites between batches, so it
/// is read through atomics (a relaxed load is a plain load on every target we
/// run on) rather than a `&[u64]` whose contents must not change.
pub fn scan(virgin: &[core::sync::atomic::AtomicU64]) -> (bool, u64) {
    let layout = layout();
    let mut new = false;
    let mut hasher = crate::protocol::PathHasher::new(layout.map_size);
    for r in &layout.regions {
        let base_word = r.map_off / 8;
        let full = r.len / 8;
        let mut visit = |i: usize, w: u64| {
            if w != 0 {
                let b = bucket_word(w);
                if let Some(v) = virgin.get(base_word + i) {
                    new |= b & v.load(core::sync::atomic::Ordering::Relaxed) != 0;
                }
                hasher.word(base_word + i, b);
            }
        };
        for i in 0..full {
            // SAFETY: word `i` lies inside the region; unaligned loads are fine.
            let w = unsafe { (r.ptr.add(i * 8) as *const u64).read_unaligned() };
            visit(i, w);
        }
        let tail = r.len % 8;
        if tail != 0 {
            let mut bytes = [0u8; 8];
            // SAFETY: the last `tail` bytes of the region.
            unsafe { core::ptr::copy_nonoverlapping(r.ptr.add(full * 8), bytes.as_mut_ptr(), tail) };
            visit(full, u64::from_le_bytes(bytes));
        }
    }
    (new, hasher.finish())
}

/// Allocates a private zeroed mapping (usable from a constructor, before the
/// Rust runtime is up). Returns null on failure.
fn alloc_private(len: usize) -> *mut u8 {
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

/// Called by each instrumented module's constructor with its counter array.
///
/// # Safety
/// Called by LLVM-generated code with a valid `[start, stop)` byte range.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __sanitizer_cov_8bit_counters_init(start: *mut u8, stop: *mut u8) {
    let (s, e) = (start as usize, stop as usize);
    if e <= s || LAYOUT.get().is_some() {
        return;
    }
    let n = REGIONS.load(Relaxed).min(MAX_REGIONS);
    for i in 0..n {
        let (rs, re) = (REGION_START[i].load(Relaxed), REGION_END[i].load(Relaxed));
        if s >= rs && e <= re {
            return; // the same module again (several constructors)
        }
        // Adjacent (up to alignment padding): extend, keeping one region.
        if s >= re && s - re < 64 {
            REGION_END[i].store(e, Relaxed);
            return;
        }
        if e <= rs && rs - e < 64 {
            REGION_START[i].store(s, Relaxed);
            return;
        }
    }
    if n < MAX_REGIONS {
        REGION_START[n].store(s, Relaxed);
        REGION_END[n].store(e, Relaxed);
        REGIONS.store(n + 1, Relaxed);
    }
}

/// Called by each `trace-pc-guard` module's constructor with its guards.
///
/// # Safety
/// Called by LLVM-generated code with a valid `[start, stop)` range of guards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __sanitizer_cov_trace_pc_guard_init(start: *mut u32, stop: *mut u32) {
    // SAFETY: LLVM passes a valid, possibly empty, range of guards. The same
    // range can be passed more than once: numbered guards are left alone.
    unsafe {
        if start == stop || *start != 0 || LAYOUT.get().is_some() {
            return;
        }
        let count = stop.offset_from(start) as u32;
        let first = GUARDS.fetch_add(count, Relaxed) + 1;
        let needed = (first + count) as usize;
        if needed > GUARD_CAPACITY.load(Relaxed) {
            let cap = needed.next_power_of_two();
            let fresh = alloc_private(cap);
            if !fresh.is_null() {
                GUARD_CAPACITY.store(cap, Relaxed);
                GUARD_MAP.store(fresh, Relaxed);
            }
        }
        let capacity = GUARD_CAPACITY.load(Relaxed) as u32;
        let mut g = start;
        let mut id = first;
        while g < stop {
            // A guard that does not fit shares slot 0.
            *g = if id < capacity { id } else { 0 };
            id += 1;
            g = g.add(1);
        }
    }
}

/// Called by modules built with `pc-table` with their table of `(pc,
/// flags)` pairs: the C code of `cargo rfuzz build` (whose table the build
/// reads from the binary to count C edges; only one such call happens per
/// binary in `pc-guard` builds: the linker keeps one module constructor of a
/// kind) and coverage builds, whose table [`crate::coverage`] writes out.
/// Only the range is recorded here; it is read when a coverage report asks.
///
/// # Safety
/// Called by LLVM-generated code with a valid range.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __sanitizer_cov_pcs_init(beg: *const usize, end: *const usize) {
    crate::coverage::register_pcs(beg, end);
}

/// Called on every edge of `trace-pc-guard` code.
///
/// # Safety
/// Called by LLVM-generated code with a guard numbered by the init above.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __sanitizer_cov_trace_pc_guard(guard: *mut u32) {
    // SAFETY: every guard holds an index below GUARD_CAPACITY, and GUARD_MAP
    // points to GUARD_CAPACITY writable bytes. The increment never wraps to
    // zero ("NeverZero").
    unsafe {
        let slot = GUARD_MAP.load(Relaxed).add(*guard as usize);
        let (v, carry) = (*slot).overflowing_add(1);
        *slot = v + carry as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_match_afl() {
        assert_eq!(bucket_word(3), 4);
        assert_eq!(bucket_word(7 << 8), 8 << 8);
        assert_eq!(bucket_word(200), 128);
    }
}
