//! # rfuzz: the runtime inside every `cargo rfuzz` fuzz target
//!
//! A fuzz target is a binary whose source starts with `#![no_main]` and calls
//! [`fuzz_target!`] once, exactly like a cargo-fuzz target:
//!
//! ```text
//! #![no_main]
//! rfuzz::fuzz_target!(|data: &[u8]| {
//!     let _ = my_crate::parse(data);
//! });
//! ```
//!
//! `cargo rfuzz build` compiles it with LLVM SanitizerCoverage on stable Rust
//! and links this crate, which provides:
//!
//! * **Coverage**: the SanitizerCoverage callbacks of both edge
//!   instrumentations `cargo rfuzz build` uses — inline 8-bit counter arrays
//!   (Rust, by default) and `trace-pc-guard` guards (Rust with `--coverage
//!   pc-guard`, and the C/C++ that build scripts compile with clang) — which
//!   may be mixed in one binary. The fuzzer sees one map, published into
//!   SysV shared memory that it created (`__AFL_SHM_ID`, or our own
//!   segment). This crate is never instrumented itself, so only the user's
//!   code shows up in the map.
//! * **Compare tracing**: the `trace-cmp` callbacks, and `memcmp`/`bcmp`/
//!   `strcmp`/`strncmp`/`strcasecmp`/`strncasecmp` (replaced in the binary,
//!   or through AddressSanitizer's weak hooks in `--sanitizer address`
//!   builds), record compare operands into a log when the fuzzer asks for
//!   it, for input-to-state comparison solving; otherwise they return at
//!   once.
//! * **Crash kinds**: panics, stack overflows, out-of-memory and — in
//!   AddressSanitizer builds, where the runtime's own malloc and SIGSEGV
//!   hooks step aside for ASan's — the kind of memory error ASan reported
//!   (`heap-buffer-overflow`, `heap-use-after-free`, ...) are recorded for
//!   the fuzzer, which names crash files after them.
//! * **A forkserver** on file descriptors 198/199 speaking the AFL++ 4.20+
//!   handshake (fork mode, persistent mode with `SIGSTOP`/`SIGCONT`,
//!   shared-memory test cases), so `afl-fuzz` can drive the binary; and a
//!   private direct protocol ([`protocol::direct`]) where the persistent child
//!   answers our engine itself and runs whole batches of inputs per request.
//! * **Standalone mode**: with no forkserver descriptors, the binary runs each
//!   file (or directory of files) named on its command line once, or standard
//!   input, and on a crash prints the panic and a backtrace. Any crash file a
//!   fuzzer saved reproduces with `./target crash-file`.
//!
//! * **Coverage reports**: in the build `cargo rfuzz coverage` makes (a flag
//!   per basic block and the blocks' address table), a standalone run writes
//!   which blocks it reached to the file named by
//!   [`protocol::coverage::OUT_ENV_VAR`] when it ends, crashes included.
//!
//! A panic anywhere in the target aborts the process (`SIGABRT`), so the fuzzer
//! sees it as a crash even if the code under test catches unwinds.
//!
//! With default features off, only [`protocol`] is compiled: that is how the
//! fuzzer shares the wire format without linking any callbacks.

#![warn(missing_docs)]

pub mod protocol;

#[cfg(feature = "runtime")]
mod cmp;
#[cfg(feature = "runtime")]
mod contain;
#[cfg(feature = "runtime")]
mod coverage;
#[cfg(feature = "runtime")]
mod fdio;
#[cfg(feature = "runtime")]
mod forkserver;
#[cfg(feature = "runtime")]
mod guard;
#[cfg(feature = "runtime")]
mod sancov;
#[cfg(feature = "runtime")]
mod shm;
#[cfg(feature = "runtime")]
mod standalone;

#[cfg(feature = "runtime")]
pub use arbitrary;

#[cfg(feature = "runtime")]
use core::sync::atomic::{AtomicPtr, Ordering::Relaxed};

/// The direct-protocol header once attached, so the panic hook can record why
/// the child is about to die.
#[cfg(feature = "runtime")]
static DIRECT_HEADER: AtomicPtr<protocol::direct::Header> = AtomicPtr::new(core::ptr::null_mut());

#[cfg(feature = "runtime")]
fn set_direct_header(h: &'static protocol::direct::Header) {
    DIRECT_HEADER.store(h as *const _ as *mut _, Relaxed);
}

/// Records why this process is about to die, for the fuzzer to read.
#[cfg(feature = "runtime")]
fn record_exit_reason(reason: u32) {
    let h = DIRECT_HEADER.load(Relaxed);
    if !h.is_null() {
        // SAFETY: set_direct_header stores a reference valid for the whole
        // process (the segment is never detached).
        unsafe { (*h).exit_reason.store(reason, Relaxed) };
    }
}

/// The direct protocol's header, or null outside a direct-protocol run.
#[cfg(feature = "runtime")]
fn direct_header() -> *const protocol::direct::Header {
    DIRECT_HEADER.load(Relaxed)
}

/// Records the signature hash of the crash about to happen (a panic's).
#[cfg(feature = "runtime")]
fn record_crash_sig(sig: u64) {
    let h = DIRECT_HEADER.load(Relaxed);
    if !h.is_null() {
        // SAFETY: as in record_exit_reason.
        unsafe { (*h).crash_sig.store(sig, Relaxed) };
    }
}

/// Records where a fault or the fuzzer's dump request interrupted the run
/// (async-signal-safe: one atomic store).
#[cfg(feature = "runtime")]
fn record_fault_pc(pc: u64) {
    let h = DIRECT_HEADER.load(Relaxed);
    if !h.is_null() {
        // SAFETY: as in record_exit_reason.
        unsafe { (*h).fault_pc.store(pc, Relaxed) };
    }
}

/// Records that a sanitizer is about to kill the process, and the kind of
/// error it reported.
#[cfg(all(feature = "runtime", rfuzz_sanitize_address))]
fn record_sanitizer_kind(kind: &[u8]) {
    let h = DIRECT_HEADER.load(Relaxed);
    if !h.is_null() {
        // SAFETY: as in record_exit_reason.
        unsafe { (*h).set_sanitizer_kind(kind) };
    }
    record_exit_reason(protocol::direct::EXIT_SANITIZER);
}

/// Tells the fuzzer that the coverage map was published on its request.
#[cfg(feature = "runtime")]
fn mark_map_dumped() {
    let h = DIRECT_HEADER.load(Relaxed);
    if !h.is_null() {
        // SAFETY: as in record_exit_reason.
        unsafe { (*h).map_dumped.store(1, Relaxed) };
    }
}

/// Runs the harness on one input. Never inlined: the loop around it lives in
/// this (uninstrumented) crate, only the harness body in the user's crate.
#[cfg(feature = "runtime")]
#[inline(never)]
fn run_harness(harness: fn(&[u8]), data: &[u8]) {
    harness(data)
}

/// Whether the process runs standalone (reproducing inputs for a human).
#[cfg(feature = "runtime")]
static STANDALONE: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

#[cfg(feature = "runtime")]
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        record_exit_reason(protocol::direct::EXIT_PANIC);
        // Std's report: "panicked at FILE:LINE:COL:\nmessage". The fuzzer
        // de-duplicates by the same key `cargo rfuzz triage` derives from
        // this text, so both call it one bug.
        let text = info.to_string();
        if let Some(loc) = info.location() {
            let location = format!("{}:{}:{}", loc.file(), loc.line(), loc.column());
            let message = text.split_once('\n').map_or("", |(_, m)| m);
            record_crash_sig(protocol::signature::hash(&protocol::signature::panic_key(&location, message)));
        }
        // While fuzzing, stderr is usually /dev/null: keep it cheap.
        eprintln!("{text}");
        // `RUST_BACKTRACE=0` skips the backtrace: `cargo rfuzz triage` needs
        // only the location above, and symbolizing takes a tenth of a second.
        if STANDALONE.load(Relaxed) {
            if std::env::var_os("RUST_BACKTRACE").is_none_or(|v| v != "0") {
                eprintln!("stack backtrace:\n{}", std::backtrace::Backtrace::force_capture());
            }
            eprintln!("rfuzz: the input above crashed the target (panic), aborting");
        }
        std::process::abort();
    }));
}

/// Items used by the [`fuzz_target!`] expansion. Not a stable API.
#[cfg(feature = "runtime")]
#[doc(hidden)]
pub mod __private {
    use super::*;

    /// Standalone mode with `RFUZZ_PRINT_INPUT=1`: prints a typed input's
    /// `Debug` form (as libfuzzer-sys, typed inputs must be `Debug`).
    pub fn print_input<T: core::fmt::Debug>(input: &T) {
        if STANDALONE.load(Relaxed) && std::env::var_os(protocol::PRINT_INPUT_ENV_VAR).is_some_and(|v| v == "1") {
            eprintln!("rfuzz: input as {}:\n{input:#?}", core::any::type_name::<T>());
        }
    }

    /// The target's entry point: called from the `main` that `fuzz_target!`
    /// defines. Runs the user's init once, then serves a fuzzer or runs the
    /// inputs named on the command line.
    #[inline(never)]
    pub fn main(init: fn(), harness: fn(&[u8])) -> ! {
        // Keep the signatures AFL++ looks for in the binary.
        core::hint::black_box(protocol::PERSIST_SIG.as_ptr());
        core::hint::black_box(protocol::SHM_ENV_VAR_SIG.as_ptr());
        core::hint::black_box(protocol::direct::BINARY_SIG.as_ptr());

        if std::env::var_os(protocol::INFO_ENV_VAR).is_some() {
            println!("rfuzz runtime {}", env!("CARGO_PKG_VERSION"));
            println!("guards: {}", sancov::edge_count());
            println!("map_size: {}", sancov::map_size());
            std::process::exit(0);
        }
        if std::env::var_os(protocol::DUMP_MAP_SIZE_ENV_VAR).is_some() {
            println!("{}", sancov::map_size());
            std::process::exit(0);
        }
        cmp::init();
        cmp::keep();
        guard::init_malloc_limit();
        guard::init_stack_overflow_handler();
        guard::init_sanitizer_report();
        guard::init_coverage_dumps();
        contain::init();
        // Fix the coverage layout before anything forks.
        sancov::map_size();
        install_panic_hook();
        // Coverage builds (`cargo rfuzz coverage`): the block table, and the
        // flags file written when the process ends.
        coverage::init();
        init();
        if fdio::is_open(protocol::CONTROL_FD) && fdio::is_open(protocol::STATUS_FD) {
            if std::env::var_os(protocol::direct::ENV_VAR).is_some() {
                forkserver::serve_direct(harness);
            }
            forkserver::serve_afl(harness);
        }
        STANDALONE.store(true, Relaxed);
        standalone::run(harness)
    }
}

/// Defines the fuzz target's entry point, in the syntax of `libfuzzer-sys`.
///
/// ```text
/// #![no_main]
/// rfuzz::fuzz_target!(|data: &[u8]| { /* use data */ });
/// rfuzz::fuzz_target!(|input: MyType| { /* MyType: arbitrary::Arbitrary */ });
/// rfuzz::fuzz_target!(init: { setup() }, |data: &[u8]| { /* ... */ });
/// rfuzz::fuzz_target!(|data: &[u8]| -> Corpus { /* libfuzzer-sys style */ });
/// ```
///
/// The file must start with `#![no_main]`: the macro defines `main`.
#[cfg(feature = "runtime")]
#[macro_export]
macro_rules! fuzz_target {
    // Bodies with a return type (libfuzzer-sys' `-> Corpus`): the value is
    // accepted and ignored; rfuzz keeps inputs by coverage.
    (init: $init:expr, |$bytes:ident: &[u8]| -> $rty:ty $body:block $(,)?) => {
        $crate::__fuzz_main!($init, |$bytes: &[u8]| {
            let _: $rty = (|| $body)();
        });
    };
    (init: $init:expr, |$data:ident: $dty:ty| -> $rty:ty $body:block $(,)?) => {
        $crate::__fuzz_main!($init, |bytes: &[u8]| {
            let u = $crate::arbitrary::Unstructured::new(bytes);
            let $data: $dty = match $crate::arbitrary::Arbitrary::arbitrary_take_rest(u) {
                Ok(d) => d,
                Err(_) => return,
            };
            $crate::__private::print_input(&$data);
            let _: $rty = (|| $body)();
        });
    };
    (|$bytes:ident: &[u8]| -> $rty:ty $body:block $(,)?) => {
        $crate::fuzz_target!(init: (), |$bytes: &[u8]| -> $rty $body);
    };
    (|$data:ident: $dty:ty| -> $rty:ty $body:block $(,)?) => {
        $crate::fuzz_target!(init: (), |$data: $dty| -> $rty $body);
    };
    (init: $init:expr, |$bytes:ident| $body:expr $(,)?) => {
        $crate::fuzz_target!(init: $init, |$bytes: &[u8]| $body);
    };
    (init: $init:expr, |$bytes:ident: &[u8]| $body:expr $(,)?) => {
        $crate::__fuzz_main!($init, |$bytes: &[u8]| { $body; });
    };
    (init: $init:expr, |$data:ident: $dty:ty| $body:expr $(,)?) => {
        $crate::__fuzz_main!($init, |bytes: &[u8]| {
            let u = $crate::arbitrary::Unstructured::new(bytes);
            let $data: $dty = match $crate::arbitrary::Arbitrary::arbitrary_take_rest(u) {
                Ok(d) => d,
                Err(_) => return,
            };
            $crate::__private::print_input(&$data);
            $body;
        });
    };
    (|$bytes:ident| $body:expr $(,)?) => {
        $crate::fuzz_target!(init: (), |$bytes: &[u8]| $body);
    };
    (|$bytes:ident: &[u8]| $body:expr $(,)?) => {
        $crate::fuzz_target!(init: (), |$bytes: &[u8]| $body);
    };
    (|$data:ident: $dty:ty| $body:expr $(,)?) => {
        $crate::fuzz_target!(init: (), |$data: $dty| $body);
    };
}

#[cfg(feature = "runtime")]
#[doc(hidden)]
#[macro_export]
macro_rules! __fuzz_main {
    ($init:expr, $harness:expr) => {
        #[unsafe(no_mangle)]
        pub extern "C" fn main(
            _argc: ::std::os::raw::c_int,
            _argv: *const *const ::std::os::raw::c_char,
        ) -> ::std::os::raw::c_int {
            fn rfuzz_init() {
                $init;
            }
            $crate::__private::main(rfuzz_init, $harness)
        }
    };
}
