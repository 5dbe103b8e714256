//! The `libfuzzer-sys` API on the rfuzz runtime.
//!
//! `cargo rfuzz build` patches this crate in for `libfuzzer-sys` when a fuzz
//! package depends on `libfuzzer-sys` instead of `rfuzz`, so cargo-fuzz
//! targets build and fuzz unchanged:
//!
//! ```text
//! #![no_main]
//! use libfuzzer_sys::fuzz_target;
//! fuzz_target!(|data: &[u8]| { ... });
//! ```
//!
//! The public surface of libfuzzer-sys 0.4: [`fuzz_target!`] in all its
//! forms (`&[u8]` or [`arbitrary::Arbitrary`] inputs, `init:`, bodies
//! returning [`Corpus`] or anything that converts into it), the re-exported
//! [`arbitrary`] crate, [`Corpus`], [`fuzzer_mutate`], [`initialize`] and
//! `RUST_LIBFUZZER_DEBUG_PATH` (the `Debug` form of each input is written to
//! that file instead of running the body, as `cargo fuzz fmt` expects), and
//! the features `arbitrary-derive` and `link_libfuzzer`. Custom mutators
//! (`fuzz_mutator!`, `fuzz_crossover!`) are libFuzzer-specific: they are
//! type-checked so the target builds as before, never called, and the build
//! warns about it.

#![deny(missing_docs)]

pub use arbitrary;

#[doc(hidden)]
pub use rfuzz as __rfuzz;

/// Whether an input should be kept in the corpus (libfuzzer-sys 0.4.6+).
/// cargo rfuzz keeps inputs by coverage; a rejected input has no effect
/// beyond the run itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corpus {
    /// Keep the input if it gives new coverage.
    Keep,
    /// libFuzzer would not add the input to the corpus.
    Reject,
}

impl From<()> for Corpus {
    fn from(_: ()) -> Self {
        Corpus::Keep
    }
}

impl Corpus {
    /// libFuzzer's code for this value: 0 to keep, -1 to reject.
    pub fn to_libfuzzer_code(self) -> i32 {
        match self {
            Corpus::Keep => 0,
            Corpus::Reject => -1,
        }
    }
}

/// libFuzzer's `LLVMFuzzerInitialize` helper, which installs a panic hook
/// that aborts. The rfuzz runtime installs its own aborting hook before the
/// target's `init:` runs, so this leaves it in place and returns 0.
pub fn initialize(_argc: *const isize, _argv: *const *const *const u8) -> isize {
    0
}

/// The file named by `RUST_LIBFUZZER_DEBUG_PATH`, read once.
#[doc(hidden)]
pub fn rust_libfuzzer_debug_path() -> &'static Option<String> {
    static PATH: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    PATH.get_or_init(|| std::env::var("RUST_LIBFUZZER_DEBUG_PATH").ok())
}

/// Writes `what` to the `RUST_LIBFUZZER_DEBUG_PATH` file.
#[doc(hidden)]
pub fn write_debug(path: &str, what: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).expect("failed to create `RUST_LIBFUZZER_DEBUG_PATH` file");
    file.write_fmt(what).expect("failed to write to `RUST_LIBFUZZER_DEBUG_PATH` file");
}

/// libFuzzer's default mutation of `data[..size]` in place, for custom
/// mutators: returns the new size, at most `max_size`. Here a few random
/// byte-level edits (flip, replace, insert, erase) drawn from a generator
/// seeded by the input, so the same input always mutates the same way.
pub fn fuzzer_mutate(data: &mut [u8], size: usize, max_size: usize) -> usize {
    assert!(size <= data.len());
    assert!(max_size <= data.len());
    let mut state = data[..size].iter().fold(0x9e37_79b9_7f4a_7c15u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut size = size.min(max_size);
    for _ in 0..1 + next() % 4 {
        let op = next() % 4;
        match op {
            0 if size > 0 => {
                let i = (next() % size as u64) as usize;
                data[i] ^= 1 << (next() % 8);
            }
            1 if size > 0 => {
                let i = (next() % size as u64) as usize;
                data[i] = next() as u8;
            }
            2 if size < max_size => {
                let i = (next() % (size as u64 + 1)) as usize;
                data.copy_within(i..size, i + 1);
                data[i] = next() as u8;
                size += 1;
            }
            3 if size > 1 => {
                let i = (next() % size as u64) as usize;
                data.copy_within(i + 1..size, i);
                size -= 1;
            }
            _ => {}
        }
    }
    size
}

/// Defines the fuzz target, as libfuzzer-sys does:
///
/// ```text
/// fuzz_target!(|data: &[u8]| { ... });
/// fuzz_target!(|input: MyType| { ... });            // MyType: Arbitrary
/// fuzz_target!(init: { setup() }, |data: &[u8]| { ... });
/// fuzz_target!(|data: &[u8]| -> Corpus { ... });    // any Into<Corpus>
/// ```
///
/// Typed inputs shorter than the type's `size_hint` are skipped, as
/// libfuzzer-sys does. The file must start with `#![no_main]`.
#[macro_export]
macro_rules! fuzz_target {
    (|$bytes:ident| $body:expr $(,)?) => {
        $crate::fuzz_target!(init: (), |$bytes: &[u8]| -> () { $body });
    };
    (|$bytes:ident: &[u8]| $body:expr $(,)?) => {
        $crate::fuzz_target!(init: (), |$bytes: &[u8]| -> () { $body });
    };
    (|$bytes:ident: &[u8]| -> $rty:ty $body:block $(,)?) => {
        $crate::fuzz_target!(init: (), |$bytes: &[u8]| -> $rty { $body });
    };
    (init: $init:expr, |$bytes:ident| $body:expr $(,)?) => {
        $crate::fuzz_target!(init: $init, |$bytes: &[u8]| -> () { $body });
    };
    (init: $init:expr, |$bytes:ident: &[u8]| $body:expr $(,)?) => {
        $crate::fuzz_target!(init: $init, |$bytes: &[u8]| -> () { $body });
    };
    (init: $init:expr, |$bytes:ident: &[u8]| -> $rty:ty $body:block $(,)?) => {
        const _: () = {
            // Never inlined and named per target, as in libfuzzer-sys: a
            // crash's frames then name this target's harness.
            #[inline(never)]
            fn __libfuzzer_sys_run($bytes: &[u8]) -> $rty {
                $body
            }
            $crate::__rfuzz::__fuzz_main!($init, |bytes: &[u8]| {
                if let Some(path) = $crate::rust_libfuzzer_debug_path() {
                    $crate::write_debug(path, format_args!("{:?}\n", bytes));
                    return;
                }
                let _ = $crate::Corpus::from(__libfuzzer_sys_run(bytes));
            });
        };
    };
    (|$data:ident: $dty:ty| $body:expr $(,)?) => {
        $crate::fuzz_target!(init: (), |$data: $dty| -> () { $body });
    };
    (|$data:ident: $dty:ty| -> $rty:ty $body:block $(,)?) => {
        $crate::fuzz_target!(init: (), |$data: $dty| -> $rty { $body });
    };
    (init: $init:expr, |$data:ident: $dty:ty| $body:expr $(,)?) => {
        $crate::fuzz_target!(init: $init, |$data: $dty| -> () { $body });
    };
    (init: $init:expr, |$data:ident: $dty:ty| -> $rty:ty $body:block $(,)?) => {
        const _: () = {
            #[inline(never)]
            fn __libfuzzer_sys_run($data: $dty) -> $rty {
                $body
            }
            $crate::__rfuzz::__fuzz_main!($init, |bytes: &[u8]| {
                use $crate::arbitrary::{Arbitrary, Unstructured};
                if bytes.len() < <$dty as Arbitrary>::size_hint(0).0 {
                    return;
                }
                let data = <$dty as Arbitrary>::arbitrary_take_rest(Unstructured::new(bytes));
                if let Some(path) = $crate::rust_libfuzzer_debug_path() {
                    match &data {
                        Ok(d) => $crate::write_debug(path, format_args!("{:#?}\n", d)),
                        Err(e) => $crate::write_debug(path, format_args!("Arbitrary Error: {}\n", e)),
                    }
                    return;
                }
                if let Ok(d) = data {
                    let _ = $crate::Corpus::from(__libfuzzer_sys_run(d));
                }
            });
        };
    };
}

/// What `fuzz_mutator!`/`fuzz_crossover!` expand to: a use of this item, so
/// the build shows the warning below at the macro call.
#[doc(hidden)]
#[deprecated(
    note = "cargo rfuzz ignores custom mutators (fuzz_mutator!, fuzz_crossover!): this target is fuzzed with rfuzz's own mutations"
)]
pub const CUSTOM_MUTATOR_IGNORED: () = ();

/// libFuzzer's custom mutator hook: type-checked, never called, and the
/// build warns that it is ignored.
#[macro_export]
macro_rules! fuzz_mutator {
    (|$data:ident: &mut [u8], $size:ident: usize, $max_size:ident: usize, $seed:ident: u32 $(,)*| $body:block) => {
        const _: () = {
            #[allow(dead_code)]
            fn custom_mutator($data: &mut [u8], $size: usize, $max_size: usize, $seed: u32) -> usize {
                $body
            }
            $crate::CUSTOM_MUTATOR_IGNORED
        };
    };
    ($($body:tt)*) => {
        const _: () = $crate::CUSTOM_MUTATOR_IGNORED;
    };
}

/// libFuzzer's custom crossover hook: type-checked, never called, and the
/// build warns that it is ignored.
#[macro_export]
macro_rules! fuzz_crossover {
    (|$data1:ident: &[u8], $data2:ident: &[u8], $out:ident: &mut [u8], $seed:ident: u32 $(,)*| $body:block) => {
        const _: () = {
            #[allow(dead_code)]
            fn custom_crossover($data1: &[u8], $data2: &[u8], $out: &mut [u8], $seed: u32) -> usize {
                $body
            }
            $crate::CUSTOM_MUTATOR_IGNORED
        };
    };
    ($($body:tt)*) => {
        const _: () = $crate::CUSTOM_MUTATOR_IGNORED;
    };
}
