//! # rfuzz-instrument: how `cargo rfuzz` builds fuzz targets
//!
//! Concepts:
//!
//! * **Fuzz project** ([`project`]): the `fuzz/` package beside a crate, in
//!   cargo-fuzz's layout; its binaries are the fuzz targets. Found from any
//!   directory of the crate and read with `cargo metadata --no-deps`.
//! * **Flag set** ([`flags`]): SanitizerCoverage for the crates under test —
//!   inline 8-bit counters (`--coverage counters`, the default) or
//!   `trace-pc-guard` callbacks (`--coverage pc-guard`), both with compare
//!   tracing — and `--cfg fuzzing`, debug assertions and overflow checks for
//!   all target crates. Everything works on stable Rust except
//!   `--sanitizer address` (`-Zsanitizer=address`, run with the rustup
//!   toolchain `nightly`). A third mode, [`CoverageMode::Report`], is not for
//!   fuzzing: the unoptimised build with a flag per block and the blocks'
//!   address table that `cargo rfuzz coverage` replays inputs with.
//! * **C and C++** ([`cc`]): code that build scripts compile with the `cc`
//!   crate (and `cmake` builds that honour `CC`/`CFLAGS`) is compiled by
//!   clang with `trace-pc-guard`, `trace-cmp` and calls kept for
//!   `memcmp`/`strcmp`, through the variables the `cc` crate reads, set on
//!   the instrumented build's cargo only.
//! * **Wrapper** ([`wrapper`]): stable cargo cannot set RUSTFLAGS per crate, so
//!   `cargo-rfuzz` acts as `RUSTC_WRAPPER` and adds the flags per invocation,
//!   leaving the runtime, build scripts and proc-macros uninstrumented.
//! * **Build** ([`build`]): runs `cargo build --target <host>` into a target
//!   directory of its own per mode (`target/rfuzz`, `target/rfuzz-pc-guard`,
//!   `target/rfuzz-asan`, ...) and reports each binary's path.
//! * **Patches** ([`patch`]): the runtime, and for cargo-fuzz projects a
//!   `libfuzzer-sys` stand-in, replace the crates the fuzz package names,
//!   from crates.io or git; a patch cargo would not use is an error.

#![deny(missing_docs)]

pub mod build;
pub mod cc;
pub mod elf;
pub mod flags;
pub mod patch;
pub mod project;
pub mod wrapper;

pub use build::{BuildOptions, BuildOutput, Built, build};
pub use flags::{CoverageMode, Instrumentation, Profile, Sanitizer};
pub use project::{FuzzProject, FuzzTarget, RuntimeDep, TargetOptions};

use std::path::PathBuf;

/// Why finding or building fuzz targets failed. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No `Cargo.toml` here or above.
    #[error("not in a cargo project: no Cargo.toml in {} or any parent directory; run this inside a crate", .0.display())]
    NotACargoProject(PathBuf),
    /// A crate without a `fuzz/` directory.
    #[error("no fuzz project found for the crate in {}: run `cargo rfuzz init` there to create fuzz/", .0.display())]
    NoFuzzDir(PathBuf),
    /// A target name that the fuzz package does not have.
    #[error("unknown fuzz target `{name}`; known targets: {known}")]
    UnknownTarget {
        /// The name asked for.
        name: String,
        /// The known names.
        known: String,
    },
    /// A fuzz package with no binaries.
    #[error("no fuzz targets in {}: add one with `cargo rfuzz add NAME`", .0.display())]
    NoTargets(PathBuf),
    /// `cargo metadata` failed (usually a broken manifest).
    #[error("failed to read {}: {msg}", manifest.display())]
    Metadata {
        /// The manifest read.
        manifest: PathBuf,
        /// What cargo said.
        msg: String,
    },
    /// The fuzz package does not depend on the runtime.
    #[error("{} depends on neither rfuzz nor libfuzzer-sys: add `rfuzz = \"0.1\"` under [dependencies]", .0.display())]
    MissingRuntime(PathBuf),
    /// A sanitizer was asked for without a nightly toolchain.
    #[error(
        "--sanitizer {sanitizer} needs a nightly Rust toolchain ({detail}): install it with `rustup toolchain install nightly` (or name one in RFUZZ_NIGHTLY_TOOLCHAIN)"
    )]
    NightlyRequired {
        /// The sanitizer asked for.
        sanitizer: &'static str,
        /// What rustup or rustc said.
        detail: String,
    },
    /// The runtime or the libfuzzer-sys stand-in cannot be patched in, or
    /// cargo would not use the patch: the build would link something else
    /// (for libfuzzer-sys: the real libFuzzer).
    #[error("{dependency} in {} cannot be replaced by cargo rfuzz: {why}; fix: {fix}", manifest.display())]
    PatchNotUsed {
        /// The dependency, as a manifest line.
        dependency: String,
        /// The manifest that declares it.
        manifest: PathBuf,
        /// Why the patch does not apply.
        why: String,
        /// What to change.
        fix: String,
    },
    /// Cargo failed.
    #[error("failed to build fuzz target(s) {targets} (cargo {status}); cargo's errors are shown above")]
    BuildFailed {
        /// Targets being built.
        targets: String,
        /// Cargo's exit status.
        status: String,
    },
    /// Cargo succeeded but did not report the binary.
    #[error("cargo built `{0}` but reported no executable for it")]
    NoExecutable(String),
    /// An I/O or process error.
    #[error("failed to {what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}
