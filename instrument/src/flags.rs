//! The compiler flags of an instrumented build, one at a time, each with why.
//!
//! Flags reach rustc through our `RUSTC_WRAPPER` (see [`crate::wrapper`]), not
//! RUSTFLAGS: stable cargo has no per-crate RUSTFLAGS, and the runtime crate
//! must stay uninstrumented (instrumenting it puts its own edges in the map and
//! costs stability). The user's RUSTFLAGS and `build.rustflags` are left to
//! cargo, which passes them as usual; ours are appended after them.

/// Build profile of the fuzz targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Optimised (the default): what fuzzing should run.
    Release,
    /// Unoptimised, for debugging a target.
    Dev,
}

impl Profile {
    /// Cargo's directory name for the profile's artifacts.
    pub fn dir_name(self) -> &'static str {
        match self {
            Profile::Release => "release",
            Profile::Dev => "debug",
        }
    }
}

/// Flags for every crate compiled for the target (the runtime included).
pub fn common_flags(profile: Profile) -> Vec<String> {
    let mut f: Vec<String> = Vec::new();
    // Code can special-case fuzzing (skip checksums, fixed seeds) with
    // `#[cfg(fuzzing)]`, as with cargo-fuzz and afl.rs.
    f.extend(["--cfg".into(), "fuzzing".into()]);
    // Declare it so crates with check-cfg lints do not warn about it.
    f.extend(["--check-cfg".into(), "cfg(fuzzing)".into()]);
    // Assertions and arithmetic overflow are bugs the fuzzer should see.
    f.extend(["-C".into(), "debug-assertions".into()]);
    f.extend(["-C".into(), "overflow-checks".into()]);
    if profile == Profile::Release {
        // One codegen unit: faster code, and each module's guard array is
        // initialised by a single constructor.
        f.extend(["-C".into(), "codegen-units=1".into()]);
        f.extend(["-C".into(), "opt-level=3".into()]);
    }
    // Never `-C target-cpu=native`: binaries cached by CI would die with
    // SIGILL on another machine.
    f
}

/// SanitizerCoverage flags, only for the crates whose coverage we want (not
/// the runtime, build scripts or proc-macros).
pub fn coverage_flags() -> Vec<String> {
    let llvm = |a: &str| ["-C".to_string(), format!("llvm-args={a}")];
    let mut f: Vec<String> = Vec::new();
    // Run LLVM's SanitizerCoverage module pass (stable spelling of
    // -Zsanitizer=... for coverage only).
    f.extend(["-C".into(), "passes=sancov-module".into()]);
    // Edge coverage: critical edges are split so every edge gets a guard.
    f.extend(llvm("-sanitizer-coverage-level=3"));
    // An 8-bit counter per edge, incremented inline (no call per edge, as
    // libFuzzer's builds do); the runtime registers each module's counter
    // array and publishes the counters as the coverage map.
    f.extend(llvm("-sanitizer-coverage-inline-8bit-counters"));
    // Keep all blocks: pruning would drop edges a fuzzer can still tell apart.
    f.extend(llvm("-sanitizer-coverage-prune-blocks=0"));
    // Callbacks on integer compares and switches: the runtime records their
    // operands on request for input-to-state comparison solving.
    f.extend(llvm("-sanitizer-coverage-trace-compares"));
    // Keep memcmp/bcmp of a known small size a call instead of inline loads
    // (slice and `str` equality against keywords and magic strings), so the
    // runtime's memcmp hook sees both operands.
    f.extend(llvm("-max-loads-per-memcmp=0"));
    f
}

/// A stamp of the whole flag set: artifacts built with another set must not
/// be reused, and cargo's fingerprint does not see wrapper flags.
pub fn flag_stamp(profile: Profile) -> String {
    let mut all = common_flags(profile);
    all.extend(coverage_flags());
    all.push(format!("instrument-{}", env!("CARGO_PKG_VERSION")));
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in all.join("\u{1f}").bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Joins flags the way `CARGO_ENCODED_RUSTFLAGS` does (0x1f separators), so
/// flags with spaces survive the trip through an environment variable.
pub fn encode(flags: &[String]) -> String {
    flags.join("\u{1f}")
}

/// Inverse of [`encode`].
pub fn decode(s: &str) -> Vec<String> {
    if s.is_empty() { Vec::new() } else { s.split('\u{1f}').map(str::to_string).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_round_trips() {
        let f = coverage_flags();
        assert_eq!(decode(&encode(&f)), f);
        assert!(decode("").is_empty());
    }

    #[test]
    fn dev_profile_does_not_force_optimisation() {
        assert!(!common_flags(Profile::Dev).iter().any(|f| f.starts_with("opt-level")));
        assert!(common_flags(Profile::Release).iter().any(|f| f == "opt-level=3"));
    }

    #[test]
    fn stamp_depends_on_profile() {
        assert_ne!(flag_stamp(Profile::Dev), flag_stamp(Profile::Release));
        assert_eq!(flag_stamp(Profile::Dev), flag_stamp(Profile::Dev));
    }
}
