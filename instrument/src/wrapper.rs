//! `RUSTC_WRAPPER` mode: decides, per rustc invocation, which flags to add.
//!
//! Cargo runs `$RUSTC_WRAPPER /path/to/rustc ARGS...` for every crate. The
//! `cargo-rfuzz` binary re-invokes itself in this role (see
//! [`crate::build`]), reading the flag sets from the environment:
//!
//! * queries (`rustc -vV`, `--print`) and host artifacts (build scripts,
//!   proc-macros: with `--target` on cargo's command line they are compiled
//!   without `--target`) are passed through untouched;
//! * the runtime crate `rfuzz` gets the common flags only;
//! * every other crate compiled for the target gets common + coverage flags.

use crate::flags;
use std::ffi::OsString;
use std::process::Command;

/// Set to `1` in the environment of cargo when the wrapper is ours.
pub const WRAPPER_ENV: &str = "RFUZZ_RUSTC_WRAPPER";
/// Encoded flags for every target crate.
pub const COMMON_FLAGS_ENV: &str = "RFUZZ_COMMON_FLAGS";
/// Encoded flags for instrumented crates.
pub const COVERAGE_FLAGS_ENV: &str = "RFUZZ_COVERAGE_FLAGS";
/// A wrapper the user had configured (sccache, ...), chained after ours.
pub const INNER_WRAPPER_ENV: &str = "RFUZZ_INNER_RUSTC_WRAPPER";
/// Name of the runtime crate, never instrumented.
pub const RUNTIME_CRATE: &str = "rfuzz";
/// Package of the libfuzzer-sys compatibility crate, never instrumented.
pub const COMPAT_CRATE: &str = "libfuzzer-sys";

/// What to add to one rustc invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Pass through untouched.
    Untouched,
    /// Common flags only (the runtime).
    CommonOnly,
    /// Common and coverage flags.
    Instrumented,
}

fn arg_value<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let prefixed = format!("{name}=");
    args.iter()
        .enumerate()
        .find_map(|(i, a)| if a == name { args.get(i + 1).map(String::as_str) } else { a.strip_prefix(&prefixed) })
}

/// Decides the flags for one invocation from its arguments (without the
/// rustc path) and the package cargo is compiling (`CARGO_PKG_NAME`).
pub fn decide(args: &[String], package: Option<&str>) -> Decision {
    let Some(crate_name) = arg_value(args, "--crate-name") else {
        return Decision::Untouched;
    };
    if crate_name == "___" || arg_value(args, "--target").is_none() {
        return Decision::Untouched;
    }
    if arg_value(args, "--crate-type") == Some("proc-macro") {
        return Decision::Untouched;
    }
    // The runtime, and the libfuzzer-sys compatibility crate over it.
    if crate_name == RUNTIME_CRATE || package == Some(RUNTIME_CRATE) || package == Some(COMPAT_CRATE) {
        return Decision::CommonOnly;
    }
    Decision::Instrumented
}

/// Runs as the wrapper: `args[0]` is rustc, the rest its arguments. Replaces
/// the process with rustc (or the chained wrapper); returns only on failure.
pub fn run(args: Vec<OsString>) -> std::io::Error {
    let mut it = args.into_iter();
    let Some(rustc) = it.next() else {
        return std::io::Error::other("RUSTC_WRAPPER invoked without a rustc path");
    };
    let rest: Vec<OsString> = it.collect();
    let lossy: Vec<String> = rest.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let package = std::env::var("CARGO_PKG_NAME").ok();
    let env_flags = |var: &str| flags::decode(&std::env::var(var).unwrap_or_default());
    let extra = match decide(&lossy, package.as_deref()) {
        Decision::Untouched => Vec::new(),
        Decision::CommonOnly => env_flags(COMMON_FLAGS_ENV),
        Decision::Instrumented => {
            let mut f = env_flags(COMMON_FLAGS_ENV);
            f.extend(env_flags(COVERAGE_FLAGS_ENV));
            f
        }
    };
    let mut cmd = match std::env::var_os(INNER_WRAPPER_ENV).filter(|w| !w.is_empty()) {
        Some(inner) => {
            let mut c = Command::new(inner);
            c.arg(rustc);
            c
        }
        None => Command::new(rustc),
    };
    cmd.args(rest).args(extra);
    use std::os::unix::process::CommandExt;
    cmd.exec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn queries_and_host_artifacts_are_untouched() {
        assert_eq!(decide(&args("-vV"), None), Decision::Untouched);
        assert_eq!(
            decide(&args("- --crate-name ___ --print=file-names --target x86_64-unknown-linux-gnu"), None),
            Decision::Untouched
        );
        // A build script: no --target.
        assert_eq!(decide(&args("--crate-name build_script_build build.rs"), Some("serde")), Decision::Untouched);
        // A proc-macro.
        assert_eq!(
            decide(&args("--crate-name serde_derive --crate-type proc-macro src/lib.rs"), Some("serde_derive")),
            Decision::Untouched
        );
    }

    #[test]
    fn runtime_gets_common_flags_only() {
        let a = args("--crate-name rfuzz --edition=2024 src/lib.rs --crate-type lib --target x86_64-unknown-linux-gnu");
        assert_eq!(decide(&a, Some("rfuzz")), Decision::CommonOnly);
    }

    #[test]
    fn target_crates_are_instrumented() {
        let a = args("--crate-name semver src/lib.rs --crate-type lib --target=x86_64-unknown-linux-gnu");
        assert_eq!(decide(&a, Some("semver")), Decision::Instrumented);
    }
}
