//! `cargo rfuzz build`: instrumented builds.

use super::ProjectArgs;
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use rfuzz_instrument::{
    BuildOptions, Built, CoverageMode, FuzzProject, Instrumentation, Profile, RuntimeDep, Sanitizer,
};
use std::ffi::OsString;

/// `--coverage`: how edges of Rust code are counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum CoverageArg {
    /// Inline 8-bit counters: an increment per edge, no call.
    #[default]
    Counters,
    /// trace-pc-guard: a call into the runtime per edge.
    PcGuard,
}

/// `--sanitizer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SanitizerArg {
    /// AddressSanitizer (Rust and instrumented C; nightly toolchain).
    Address,
}

/// Build options shared by `build`, `fuzz` and `run`.
#[derive(Debug, Clone, Default, Args)]
pub struct BuildFlags {
    /// Build without optimisations (default: release).
    #[arg(long, help_heading = "Build")]
    pub dev: bool,
    /// Features of the fuzz package to enable.
    #[arg(long, short = 'F', value_delimiter = ',', help_heading = "Build")]
    pub features: Vec<String>,
    /// Enable all features of the fuzz package.
    #[arg(long, help_heading = "Build")]
    pub all_features: bool,
    /// Disable the default features of the fuzz package.
    #[arg(long, help_heading = "Build")]
    pub no_default_features: bool,
    /// Target triple (default: the host's).
    #[arg(long = "target", value_name = "TRIPLE", help_heading = "Build")]
    pub triple: Option<String>,
    /// How edges of Rust code are counted. `counters` (default): inline 8-bit
    /// counters, no call per edge, about 1.5x faster on real parsers.
    /// `pc-guard`: SanitizerCoverage trace-pc-guard, a call into the runtime
    /// per edge (the interface AFL++ and clang's C instrumentation use).
    /// C code is always trace-pc-guard.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = CoverageArg::Counters, help_heading = "Build")]
    pub coverage: CoverageArg,
    /// Leave C/C++ that build scripts compile with the `cc` crate
    /// uninstrumented (default: instrumented with clang when it is installed).
    #[arg(long, help_heading = "Build")]
    pub no_instrument_c: bool,
    /// Build with a sanitizer: `address` (AddressSanitizer for Rust and the
    /// instrumented C; needs `rustup toolchain install nightly`). Memory
    /// errors become crashes named by their kind.
    #[arg(long, value_enum, value_name = "SANITIZER", help_heading = "Build")]
    pub sanitizer: Option<SanitizerArg>,
    /// Show cargo's full output.
    #[arg(long, short = 'v', help_heading = "Build")]
    pub verbose: bool,
}

impl BuildFlags {
    /// The instrument crate's options for these flags, building `project`.
    pub fn options(&self, project: &FuzzProject, quiet: bool) -> Result<BuildOptions> {
        // The stand-in takes a version the project's requirement accepts; when
        // none fits, the default one, which the build then reports as unused.
        let shim_version = match &project.runtime_dep {
            RuntimeDep::LibfuzzerSys(dep) => rfuzz_instrument::patch::shim_version(&dep.req).map(|v| v.to_string()),
            _ => None,
        }
        .unwrap_or_else(|| rfuzz_instrument::patch::SHIM_VERSION.to_string());
        Ok(BuildOptions {
            profile: if self.dev { Profile::Dev } else { Profile::Release },
            features: self.features.clone(),
            all_features: self.all_features,
            no_default_features: self.no_default_features,
            target_triple: self.triple.clone(),
            instrumentation: self.instrumentation(),
            runtime_source: Some(crate::runtime_src::materialize()?),
            libfuzzer_sys_source: Some(crate::runtime_src::materialize_libfuzzer_sys(&shim_version)?),
            wrapper_exe: std::env::current_exe().context("failed to locate the cargo-rfuzz executable")?,
            quiet: quiet && !self.verbose,
            verbose: self.verbose,
        })
    }

    /// Coverage mode, C instrumentation and sanitizer of these flags.
    pub fn instrumentation(&self) -> Instrumentation {
        Instrumentation {
            coverage: match self.coverage {
                CoverageArg::Counters => CoverageMode::Counters,
                CoverageArg::PcGuard => CoverageMode::PcGuard,
            },
            instrument_c: !self.no_instrument_c,
            sanitizer: self.sanitizer.map(|s| match s {
                SanitizerArg::Address => Sanitizer::Address,
            }),
        }
    }

    /// The command-line flags that reproduce this build (for the
    /// "Reproduce with" commands): every field, so none is dropped silently.
    pub fn args(&self) -> Vec<OsString> {
        let BuildFlags {
            dev,
            features,
            all_features,
            no_default_features,
            triple,
            coverage,
            no_instrument_c,
            sanitizer,
            verbose: _,
        } = self;
        let mut a: Vec<OsString> = Vec::new();
        if *dev {
            a.push("--dev".into());
        }
        if !features.is_empty() {
            a.push("--features".into());
            a.push(features.join(",").into());
        }
        if *all_features {
            a.push("--all-features".into());
        }
        if *no_default_features {
            a.push("--no-default-features".into());
        }
        if let Some(t) = triple {
            a.push("--target".into());
            a.push(t.into());
        }
        if *coverage != CoverageArg::Counters {
            a.push("--coverage".into());
            a.push(coverage.to_possible_value().expect("no skipped variants").get_name().into());
        }
        if *no_instrument_c {
            a.push("--no-instrument-c".into());
        }
        if let Some(s) = sanitizer {
            a.push("--sanitizer".into());
            a.push(s.to_possible_value().expect("no skipped variants").get_name().into());
        }
        a
    }
}

/// The `cargo rfuzz repro` command (with `{}` for the input) that rebuilds
/// `target` of the project in `fuzz_dir` with the same flags: an ASan crash,
/// say, does not reproduce in a build without ASan.
pub fn repro_command(fuzz_dir: &std::path::Path, flags: &BuildFlags, target: &str) -> String {
    use crate::sys::shell_quote;
    let build_args: String = flags.args().iter().map(|a| format!("{} ", shell_quote(&a.to_string_lossy()))).collect();
    format!("cargo rfuzz repro --fuzz-dir {} {build_args}{target} {{}}", shell_quote(&fuzz_dir.to_string_lossy()))
}

/// Options of `cargo rfuzz build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Targets to build (default: all).
    pub targets: Vec<String>,
    #[command(flatten)]
    pub project: ProjectArgs,
    #[command(flatten)]
    pub build: BuildFlags,
}

/// How long the edge-count probe may take: an rfuzz binary answers at once.
const PROBE_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Edge counts of a built binary: all edges, asked from its runtime
/// (`RFUZZ_INFO=1`), and how many of them are in C/C++ (its `pc-table`);
/// `None` when it prints no count. A binary that does not answer within
/// [`PROBE_LIMIT`] (one that starts fuzzing or serving instead, such as a
/// real libFuzzer build) is killed with its process group and reported.
pub fn edge_counts(binary: &std::path::Path) -> Result<Option<(u64, u64)>> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let mut child = std::process::Command::new(binary)
        .env(rfuzz::protocol::INFO_ENV_VAR, "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .with_context(|| format!("failed to run {}", binary.display()))?;
    let Some(_) = crate::sys::process::wait_timeout(&mut child, PROBE_LIMIT)? else {
        crate::sys::process::signal_group(&child, libc::SIGKILL);
        let _ = child.wait();
        anyhow::bail!(crate::exit::TargetError(format!(
            "{} did not answer the edge-count probe (RFUZZ_INFO=1) within {} s: it is not an rfuzz binary (built against the real libFuzzer?)",
            binary.display(),
            PROBE_LIMIT.as_secs()
        )));
    };
    let mut text = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.by_ref().take(1 << 16).read_to_string(&mut text);
    }
    let all = text.lines().find_map(|l| l.strip_prefix("guards: ").and_then(|n| n.trim().parse().ok()));
    Ok(all.map(|all| (all, rfuzz_instrument::elf::c_edges(binary).unwrap_or(0))))
}

/// Fails unless `binary` was built with the rfuzz runtime, before it is run
/// at all: a libFuzzer binary (the real libfuzzer-sys got built) would start
/// fuzzing on its own when probed.
pub fn check_rfuzz_binary(binary: &std::path::Path) -> Result<()> {
    use crate::engine::executor::{BinaryKind, inspect_binary};
    let what = match inspect_binary(binary)? {
        BinaryKind::Rfuzz => return Ok(()),
        _ if crate::engine::executor::is_libfuzzer_binary(binary)? => {
            "a libFuzzer binary: the real libfuzzer-sys was built instead of cargo rfuzz's stand-in (is a `[patch]` of the project replacing it?)"
        }
        BinaryKind::Afl { .. } => "an AFL++ binary, not an rfuzz one (fuzz it with `--binary`)",
        BinaryKind::Plain => "not built with the rfuzz runtime (no rfuzz signature in it)",
    };
    anyhow::bail!(crate::exit::TargetError(format!("{} is {what}", binary.display())))
}

/// Builds `targets` of `project`, reporting each on stderr.
///
/// Ctrl-C during the build stops cargo (it is in our process group) but not
/// us: the project's files that the build changed for its duration (a
/// cargo-fuzz project's `Cargo.lock`) are put back before we exit.
pub fn build_targets(project: &FuzzProject, targets: &[String], flags: &BuildFlags, quiet: bool) -> Result<Vec<Built>> {
    let opts = flags.options(project, quiet)?;
    crate::sys::signal::install_stop_handlers();
    let result = rfuzz_instrument::build(project, targets, &opts);
    if crate::sys::signal::stop_requested() {
        anyhow::bail!(crate::exit::Interrupted("the build was stopped".into()));
    }
    let out = result?;
    for w in &out.warnings {
        eprintln!("warning: {w}");
    }
    let mode = opts.instrumentation;
    let asan = if mode.sanitizer.is_some() { ", AddressSanitizer" } else { "" };
    for b in &out.binaries {
        check_rfuzz_binary(&b.binary)?;
        match edge_counts(&b.binary)? {
            Some((n, c)) => eprintln!(
                "       Built {} ({n} instrumented edges, {c} of them in C/C++; Rust: {}{asan})",
                b.target,
                mode.coverage.name()
            ),
            None => eprintln!("       Built {}", b.target),
        }
    }
    Ok(out.binaries)
}

/// Runs `cargo rfuzz build`.
pub fn run(args: BuildArgs) -> Result<i32> {
    let project = args.project.load()?;
    let built = build_targets(&project, &args.targets, &args.build, false)?;
    for b in built {
        println!("{}", b.binary.display());
    }
    Ok(crate::exit::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Probe {
        #[command(flatten)]
        build: BuildFlags,
    }

    #[test]
    fn binaries_without_the_runtime_are_refused_before_they_run() {
        let tmp = tempfile::tempdir().unwrap();
        let libfuzzer = tmp.path().join("libfuzzer_target");
        std::fs::write(&libfuzzer, b"\x7fELF...LLVMFuzzerTestOneInput...INFO: Running with libFuzzer").unwrap();
        let err = check_rfuzz_binary(&libfuzzer).unwrap_err();
        assert!(err.to_string().contains("is a libFuzzer binary"), "{err}");
        assert_eq!(crate::exit::code_for(&err), crate::exit::TARGET_UNUSABLE);
        let plain = tmp.path().join("plain");
        std::fs::write(&plain, b"\x7fELF nothing here").unwrap();
        assert!(check_rfuzz_binary(&plain).unwrap_err().to_string().contains("not built with the rfuzz runtime"));
        let ours = tmp.path().join("ours");
        let mut bytes = b"\x7fELF ".to_vec();
        bytes.extend_from_slice(rfuzz::protocol::direct::BINARY_SIG);
        std::fs::write(&ours, bytes).unwrap();
        assert!(check_rfuzz_binary(&ours).is_ok());
    }

    #[test]
    fn build_flags_print_back_to_the_same_build() {
        let argv = [
            "x",
            "--dev",
            "-F",
            "a,b",
            "--no-default-features",
            "--target",
            "x86_64-unknown-linux-gnu",
            "--coverage",
            "pc-guard",
            "--no-instrument-c",
            "--sanitizer",
            "address",
        ];
        let first = Probe::try_parse_from(argv).unwrap().build;
        let mut again_argv: Vec<OsString> = vec!["x".into()];
        again_argv.extend(first.args());
        let again = Probe::try_parse_from(again_argv).unwrap().build;
        assert_eq!(again.args(), first.args());
        assert_eq!(again.instrumentation(), first.instrumentation());
        let inst = again.instrumentation();
        assert_eq!(inst.coverage, CoverageMode::PcGuard);
        assert!(!inst.instrument_c);
        assert_eq!(inst.sanitizer, Some(Sanitizer::Address));
        assert!(again.dev && again.no_default_features && again.features == ["a", "b"]);
        // The defaults print nothing.
        assert!(Probe::try_parse_from(["x"]).unwrap().build.args().is_empty());
        assert_eq!(Probe::try_parse_from(["x"]).unwrap().build.instrumentation(), Instrumentation::default());
    }
}
