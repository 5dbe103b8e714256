//! C and C++ from build scripts: instrumenting what the `cc` crate compiles.
//!
//! `-sys` crates build their bundled C (a decoder, zlib, sqlite) in a build
//! script through the `cc` crate (the `cmake` crate asks `cc` for its
//! compiler and flags too). Both read the compiler and its flags from the
//! environment, most specific first: `CC_<target>`, `CC_<target with
//! underscores>`, `TARGET_CC`/`HOST_CC`, `CC` (likewise `CFLAGS`, `CXX`,
//! `CXXFLAGS`). The instrumented build sets the target-specific variables on
//! the cargo it runs (nowhere else), naming clang and adding
//! [`crate::flags::c_flags`] to whatever flags the user had set, so the C
//! code reports edges and compares to the same runtime as the Rust code.
//!
//! gcc has no `trace-pc-guard`, so without clang the C code stays
//! uninstrumented and the build says so.

use crate::flags::{self, Sanitizer};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The C and C++ compilers used for instrumented C.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clang {
    /// `clang`.
    pub cc: PathBuf,
    /// `clang++` (beside `clang`).
    pub cxx: PathBuf,
}

/// Overrides the clang to use (a path, or a name looked up in `PATH`).
pub const CLANG_ENV: &str = "RFUZZ_CLANG";

/// How to get clang where it is missing.
pub const INSTALL_HINT: &str = "install clang (Debian/Ubuntu: `apt-get install clang`)";

fn executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn in_path(name: &str, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name)).filter(|p| executable(p));
    }
    std::env::split_paths(path?).map(|d| d.join(name)).find(|p| executable(p))
}

/// Finds clang (`RFUZZ_CLANG`, else `clang` in `PATH`) and the `clang++`
/// beside it, without running anything.
pub fn find_clang() -> Option<Clang> {
    let path = std::env::var_os("PATH");
    let name = std::env::var(CLANG_ENV).ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "clang".into());
    let cc = in_path(&name, path.as_deref())?;
    // clang-14 → clang++-14, clang → clang++.
    let file = cc.file_name()?.to_string_lossy().into_owned();
    let cxx_name = match file.split_once('-') {
        Some((base, version)) => format!("{base}++-{version}"),
        None => format!("{file}++"),
    };
    let cxx = cc.with_file_name(cxx_name);
    Some(Clang { cxx: if executable(&cxx) { cxx } else { cc.clone() }, cc })
}

/// The first value the `cc` crate would read for `var` (`CFLAGS`, ...) when
/// building for `triple`, from `lookup`.
fn user_value(var: &str, triple: &str, lookup: &dyn Fn(&str) -> Option<OsString>) -> Option<OsString> {
    let names =
        [format!("{var}_{triple}"), format!("{var}_{}", triple.replace('-', "_")), format!("TARGET_{var}"), var.into()];
    names.iter().find_map(|n| lookup(n))
}

/// Environment for the cargo of an instrumented build: clang as the C and
/// C++ compiler of `triple`, with the coverage flags before the user's own.
pub fn env(clang: &Clang, triple: &str, sanitizer: Option<Sanitizer>) -> Vec<(String, OsString)> {
    env_with(clang, triple, sanitizer, &|n| std::env::var_os(n))
}

fn env_with(
    clang: &Clang,
    triple: &str,
    sanitizer: Option<Sanitizer>,
    lookup: &dyn Fn(&str) -> Option<OsString>,
) -> Vec<(String, OsString)> {
    let ours = flags::c_flags(sanitizer).join(" ");
    let t = triple.replace('-', "_");
    let mut out = Vec::new();
    for (compiler_var, flags_var, compiler) in [("CC", "CFLAGS", &clang.cc), ("CXX", "CXXFLAGS", &clang.cxx)] {
        out.push((format!("{compiler_var}_{t}"), compiler.as_os_str().to_owned()));
        let mut value = OsString::from(&ours);
        if let Some(user) = user_value(flags_var, triple, lookup).filter(|u| !u.is_empty()) {
            value.push(" ");
            value.push(user);
        }
        out.push((format!("{flags_var}_{t}"), value));
    }
    out
}

/// Variables to remove from the cargo of an instrumented build: the dashed
/// target spellings, which the `cc` crate reads before ours (their values
/// were folded into ours by [`env`]).
pub fn env_remove(triple: &str) -> Vec<String> {
    ["CC", "CFLAGS", "CXX", "CXXFLAGS"].iter().map(|v| format!("{v}_{triple}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clang() -> Clang {
        Clang { cc: "/usr/bin/clang".into(), cxx: "/usr/bin/clang++".into() }
    }

    #[test]
    fn sets_the_target_specific_variables_with_our_flags_first() {
        let lookup = |n: &str| (n == "CFLAGS").then(|| OsString::from("-DUSER=1"));
        let env = env_with(&clang(), "x86_64-unknown-linux-gnu", None, &lookup);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.to_string_lossy().into_owned());
        assert_eq!(get("CC_x86_64_unknown_linux_gnu").as_deref(), Some("/usr/bin/clang"));
        assert_eq!(get("CXX_x86_64_unknown_linux_gnu").as_deref(), Some("/usr/bin/clang++"));
        let cflags = get("CFLAGS_x86_64_unknown_linux_gnu").unwrap();
        assert!(cflags.starts_with("-fsanitize-coverage=trace-pc-guard,trace-cmp,pc-table "), "{cflags}");
        assert!(cflags.ends_with(" -DUSER=1"), "the user's CFLAGS are kept: {cflags}");
        assert!(!get("CXXFLAGS_x86_64_unknown_linux_gnu").unwrap().contains("USER"));
    }

    #[test]
    fn the_most_specific_user_value_is_kept_like_the_cc_crate_reads_it() {
        let lookup = |n: &str| match n {
            "CFLAGS_x86_64-unknown-linux-gnu" => Some(OsString::from("-DDASHED")),
            "CFLAGS" => Some(OsString::from("-DPLAIN")),
            _ => None,
        };
        let env = env_with(&clang(), "x86_64-unknown-linux-gnu", Some(Sanitizer::Address), &lookup);
        let cflags = &env.iter().find(|(n, _)| n == "CFLAGS_x86_64_unknown_linux_gnu").unwrap().1;
        let cflags = cflags.to_string_lossy();
        assert!(cflags.contains("-fsanitize=address") && cflags.ends_with("-DDASHED"), "{cflags}");
        assert!(env_remove("x86_64-unknown-linux-gnu").contains(&"CFLAGS_x86_64-unknown-linux-gnu".to_string()));
    }

    #[test]
    fn clang_is_found_from_an_explicit_path_only_if_executable() {
        let tmp = tempfile::tempdir().unwrap();
        let fake = tmp.path().join("clang-99");
        std::fs::write(&fake, "#!/bin/sh\n").unwrap();
        assert_eq!(in_path(&fake.to_string_lossy(), None), None, "not executable");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(in_path("clang-99", Some(tmp.path().as_os_str())), Some(fake));
    }
}
