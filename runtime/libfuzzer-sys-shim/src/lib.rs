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
//! Supported: `fuzz_target!` with `&[u8]` or `arbitrary` inputs, `init:`,
//! and bodies returning [`Corpus`]. Custom mutators (`fuzz_mutator!`,
//! `fuzz_crossover!`) are libFuzzer-specific: they are accepted so the target
//! builds, ignored, and the build warns about it.

#![deny(missing_docs)]

pub use rfuzz::arbitrary;
pub use rfuzz::fuzz_target;

/// Whether an input should be kept in the corpus (libfuzzer-sys 0.4.6+).
/// cargo rfuzz keeps inputs by coverage; `Reject` is accepted and has no
/// effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corpus {
    /// Keep the input if it gives new coverage.
    Keep,
    /// libFuzzer would not add the input to the corpus.
    Reject,
}

/// What `fuzz_mutator!`/`fuzz_crossover!` expand to: a use of this item, so
/// the build shows the warning below at the macro call.
#[doc(hidden)]
#[deprecated(
    note = "cargo rfuzz ignores custom mutators (fuzz_mutator!, fuzz_crossover!): this target is fuzzed with rfuzz's own mutations"
)]
pub const CUSTOM_MUTATOR_IGNORED: () = ();

/// libFuzzer's custom mutator hook: accepted and ignored (with a warning).
#[macro_export]
macro_rules! fuzz_mutator {
    ($($body:tt)*) => {
        const _: () = $crate::CUSTOM_MUTATOR_IGNORED;
    };
}

/// libFuzzer's custom crossover hook: accepted and ignored (with a warning).
#[macro_export]
macro_rules! fuzz_crossover {
    ($($body:tt)*) => {
        const _: () = $crate::CUSTOM_MUTATOR_IGNORED;
    };
}
