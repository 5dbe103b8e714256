//! The compiler flags of an instrumented build, one at a time, each with why.
//!
//! Flags reach rustc through our `RUSTC_WRAPPER` (see [`crate::wrapper`]), not
//! RUSTFLAGS: stable cargo has no per-crate RUSTFLAGS, and the runtime crate
//! must stay uninstrumented (instrumenting it puts its own edges in the map and
//! costs stability). The user's RUSTFLAGS and `build.rustflags` are left to
//! cargo, which passes them as usual; ours are appended after them.

/// How edges of Rust code are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CoverageMode {
    /// Inline 8-bit counters (the default): an increment per edge, no call.
    /// About 1.5x faster than a callback per edge on real parsers.
    #[default]
    Counters,
    /// `trace-pc-guard`: a call to `__sanitizer_cov_trace_pc_guard` per edge,
    /// the classic SanitizerCoverage interface (what clang's C code uses).
    PcGuard,
    /// Not for fuzzing: the build `cargo rfuzz coverage` replays inputs
    /// with. A byte flag per block (`inline-bool-flag`, set on every visit:
    /// counters would wrap to zero after 256) and the table of the blocks'
    /// addresses (`pc-table`), unoptimised with line tables, so each block
    /// maps to one source line.
    Report,
}

impl CoverageMode {
    /// The spelling on the command line (`--coverage`).
    pub fn name(self) -> &'static str {
        match self {
            CoverageMode::Counters => "counters",
            CoverageMode::PcGuard => "pc-guard",
            CoverageMode::Report => "report",
        }
    }
}

/// A sanitizer compiled into the target (nightly Rust only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sanitizer {
    /// AddressSanitizer: out-of-bounds accesses, use after free, double
    /// free, ... in Rust (`-Zsanitizer=address`) and in instrumented C.
    Address,
}

impl Sanitizer {
    /// The spelling on the command line (`--sanitizer`).
    pub fn name(self) -> &'static str {
        match self {
            Sanitizer::Address => "address",
        }
    }
}

/// What a build instruments and how: the part of the flag set a user picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instrumentation {
    /// Edge counting of Rust code.
    pub coverage: CoverageMode,
    /// Instrument C/C++ that build scripts compile with the `cc` crate
    /// (when clang is found).
    pub instrument_c: bool,
    /// A sanitizer, if any.
    pub sanitizer: Option<Sanitizer>,
}

impl Default for Instrumentation {
    fn default() -> Self {
        Instrumentation { coverage: CoverageMode::Counters, instrument_c: true, sanitizer: None }
    }
}

impl Instrumentation {
    /// Name of the target directory of this mode under cargo's target dir:
    /// `rfuzz` for the default, with a suffix per deviation (`rfuzz-pc-guard`,
    /// `rfuzz-no-c`, `rfuzz-asan`, ...). Modes never share artifacts, so
    /// switching between them rebuilds nothing twice and mixes nothing.
    pub fn dir_name(&self) -> String {
        if self.coverage == CoverageMode::Report {
            // C is never instrumented there (its pc-table would not line up
            // with the Rust block flags), and no sanitizer applies.
            return "rfuzz-coverage".into();
        }
        let mut n = String::from("rfuzz");
        if self.coverage != CoverageMode::Counters {
            n.push('-');
            n.push_str(self.coverage.name());
        }
        if !self.instrument_c {
            n.push_str("-no-c");
        }
        if self.sanitizer == Some(Sanitizer::Address) {
            n.push_str("-asan");
        }
        n
    }
}

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

/// `--cfg` the runtime sees in AddressSanitizer builds: its malloc, memcmp
/// and SIGSEGV hooks step aside for ASan's own.
pub const ASAN_CFG: &str = "rfuzz_sanitize_address";

/// Flags for every crate compiled for the target (the runtime included).
pub fn common_flags(profile: Profile, sanitizer: Option<Sanitizer>) -> Vec<String> {
    let mut f: Vec<String> = Vec::new();
    // Code can special-case fuzzing (skip checksums, fixed seeds) with
    // `#[cfg(fuzzing)]`, as with cargo-fuzz and afl.rs.
    f.extend(["--cfg".into(), "fuzzing".into()]);
    // Declare it so crates with check-cfg lints do not warn about it.
    f.extend(["--check-cfg".into(), "cfg(fuzzing)".into()]);
    f.extend(["--check-cfg".into(), format!("cfg({ASAN_CFG})")]);
    if sanitizer == Some(Sanitizer::Address) {
        // Stable code cannot ask `cfg(sanitize = "address")`: tell the
        // runtime with a cfg of its own.
        f.extend(["--cfg".into(), ASAN_CFG.into()]);
    }
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

/// Flags for every crate of a coverage-report build ([`CoverageMode::Report`]),
/// after the common ones (so they win over the profile's).
pub fn report_flags() -> Vec<String> {
    let mut f: Vec<String> = Vec::new();
    // No optimisation: blocks are not merged or moved, so each one's
    // address maps to the source line it came from.
    f.extend(["-C".into(), "opt-level=0".into()]);
    // Line tables are all symbolizing needs (function names come from the
    // symbol table).
    f.extend(["-C".into(), "debuginfo=line-tables-only".into()]);
    // No unwinding: landing pads would be blocks no input reaches (the
    // runtime aborts on a panic anyway), shown as uncovered code on every
    // line that drops a value.
    f.extend(["-C".into(), "panic=abort".into()]);
    f
}

/// SanitizerCoverage (and sanitizer) flags, only for the crates whose
/// coverage we want (not the runtime, build scripts or proc-macros).
pub fn coverage_flags(mode: CoverageMode, sanitizer: Option<Sanitizer>) -> Vec<String> {
    let llvm = |a: &str| ["-C".to_string(), format!("llvm-args={a}")];
    let mut f: Vec<String> = Vec::new();
    // Run LLVM's SanitizerCoverage module pass (stable spelling of
    // -Zsanitizer=... for coverage only).
    f.extend(["-C".into(), "passes=sancov-module".into()]);
    // Edge coverage: critical edges are split so every edge gets a guard.
    f.extend(llvm("-sanitizer-coverage-level=3"));
    match mode {
        // An 8-bit counter per edge, incremented inline (no call per edge, as
        // libFuzzer's builds do); the runtime registers each module's counter
        // array and publishes the counters as the coverage map.
        CoverageMode::Counters => f.extend(llvm("-sanitizer-coverage-inline-8bit-counters")),
        // A numbered guard per edge and a call into the runtime, which counts
        // the edge in its guard map (AFL++'s and the design card's way).
        CoverageMode::PcGuard => f.extend(llvm("-sanitizer-coverage-trace-pc-guard")),
        // A flag per block, set (not incremented) on every visit, and the
        // blocks' addresses, which the runtime writes out for the report.
        CoverageMode::Report => {
            f.extend(llvm("-sanitizer-coverage-inline-bool-flag"));
            f.extend(llvm("-sanitizer-coverage-pc-table"));
        }
    }
    // Keep all blocks: pruning would drop edges a fuzzer can still tell apart.
    f.extend(llvm("-sanitizer-coverage-prune-blocks=0"));
    if mode != CoverageMode::Report {
        // Callbacks on integer compares and switches: the runtime records their
        // operands on request for input-to-state comparison solving.
        f.extend(llvm("-sanitizer-coverage-trace-compares"));
        // Keep memcmp/bcmp of a known small size a call instead of inline loads
        // (slice and `str` equality against keywords and magic strings), so the
        // runtime's memcmp hook sees both operands.
        f.extend(llvm("-max-loads-per-memcmp=0"));
    }
    if sanitizer == Some(Sanitizer::Address) {
        // Nightly only; the crate that links the binary (instrumented) pulls
        // in ASan's runtime. The rfuzz runtime stays uninstrumented: its
        // per-edge callbacks would pay for shadow checks on every edge.
        f.push("-Zsanitizer=address".into());
    }
    f
}

/// Flags for C and C++ compiled by build scripts through the `cc` crate
/// (clang only: gcc has no trace-pc-guard).
pub fn c_flags(sanitizer: Option<Sanitizer>) -> Vec<String> {
    let mut f: Vec<String> = vec![
        // A guard and a call per edge (the runtime numbers the guards), the
        // compare callbacks the Rust code also uses, and a PC table whose
        // only job is to let the runtime count how many edges are C.
        "-fsanitize-coverage=trace-pc-guard,trace-cmp,pc-table".into(),
    ];
    // Keep byte-string compares calls, so the runtime's memcmp/strcmp hooks
    // see their operands (clang otherwise inlines small constant ones).
    for func in ["memcmp", "bcmp", "strcmp", "strncmp", "strcasecmp", "strncasecmp"] {
        f.push(format!("-fno-builtin-{func}"));
    }
    if sanitizer == Some(Sanitizer::Address) {
        f.push("-fsanitize=address".into());
    }
    f
}

/// A stamp of the whole flag set: artifacts built with another set must not
/// be reused, and cargo's fingerprint does not see wrapper flags.
pub fn flag_stamp(profile: Profile, inst: &Instrumentation, c_compiler: Option<&str>) -> String {
    let mut all = common_flags(profile, inst.sanitizer);
    if inst.coverage == CoverageMode::Report {
        all.extend(report_flags());
    }
    all.extend(coverage_flags(inst.coverage, inst.sanitizer));
    if let Some(cc) = c_compiler {
        all.push(format!("cc={cc}"));
        all.extend(c_flags(inst.sanitizer));
    }
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
        let f = coverage_flags(CoverageMode::Counters, None);
        assert_eq!(decode(&encode(&f)), f);
        assert!(decode("").is_empty());
    }

    #[test]
    fn dev_profile_does_not_force_optimisation() {
        assert!(!common_flags(Profile::Dev, None).iter().any(|f| f.starts_with("opt-level")));
        assert!(common_flags(Profile::Release, None).iter().any(|f| f == "opt-level=3"));
    }

    #[test]
    fn stamp_depends_on_profile_and_every_mode_setting() {
        let d = Instrumentation::default();
        let stamp = |p, i: Instrumentation, cc| flag_stamp(p, &i, cc);
        assert_ne!(stamp(Profile::Dev, d, None), stamp(Profile::Release, d, None));
        assert_eq!(stamp(Profile::Dev, d, None), stamp(Profile::Dev, d, None));
        let pc = Instrumentation { coverage: CoverageMode::PcGuard, ..d };
        let asan = Instrumentation { sanitizer: Some(Sanitizer::Address), ..d };
        let all = [
            stamp(Profile::Release, d, None),
            stamp(Profile::Release, d, Some("/usr/bin/clang")),
            stamp(Profile::Release, pc, None),
            stamp(Profile::Release, asan, None),
            stamp(Profile::Release, asan, Some("/usr/bin/clang")),
        ];
        for (i, a) in all.iter().enumerate() {
            assert!(all[i + 1..].iter().all(|b| b != a), "stamp {i} is unique: {all:?}");
        }
    }

    #[test]
    fn each_mode_has_its_own_target_directory() {
        let d = Instrumentation::default();
        assert_eq!(d.dir_name(), "rfuzz");
        let pc = Instrumentation { coverage: CoverageMode::PcGuard, ..d };
        assert_eq!(pc.dir_name(), "rfuzz-pc-guard");
        let odd = Instrumentation {
            coverage: CoverageMode::PcGuard,
            instrument_c: false,
            sanitizer: Some(Sanitizer::Address),
        };
        assert_eq!(odd.dir_name(), "rfuzz-pc-guard-no-c-asan");
        let report = Instrumentation { coverage: CoverageMode::Report, instrument_c: false, sanitizer: None };
        assert_eq!(report.dir_name(), "rfuzz-coverage");
    }

    #[test]
    fn coverage_modes_pick_their_llvm_option() {
        let has = |f: &[String], s: &str| f.iter().any(|x| x.ends_with(s));
        let c = coverage_flags(CoverageMode::Counters, None);
        assert!(has(&c, "inline-8bit-counters") && !has(&c, "trace-pc-guard"));
        let g = coverage_flags(CoverageMode::PcGuard, Some(Sanitizer::Address));
        assert!(has(&g, "trace-pc-guard") && !has(&g, "inline-8bit-counters"));
        assert!(g.iter().any(|x| x == "-Zsanitizer=address"));
        assert!(!common_flags(Profile::Release, None).iter().any(|x| x == ASAN_CFG));
        assert!(common_flags(Profile::Release, Some(Sanitizer::Address)).iter().any(|x| x == ASAN_CFG));
        assert!(c_flags(Some(Sanitizer::Address)).iter().any(|x| x == "-fsanitize=address"));
        assert!(c_flags(None).iter().all(|x| x != "-fsanitize=address"));
        let r = coverage_flags(CoverageMode::Report, None);
        assert!(has(&r, "inline-bool-flag") && has(&r, "pc-table"));
        assert!(!has(&r, "inline-8bit-counters") && !has(&r, "trace-compares"), "{r:?}");
        assert!(report_flags().iter().any(|x| x == "opt-level=0"));
        let d = Instrumentation::default();
        let rep = Instrumentation { coverage: CoverageMode::Report, ..d };
        assert_ne!(flag_stamp(Profile::Dev, &rep, None), flag_stamp(Profile::Dev, &d, None));
    }
}
