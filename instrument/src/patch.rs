//! Patching the runtime (and the libfuzzer-sys stand-in) into a fuzz build.
//!
//! A fuzz package takes `rfuzz` or `libfuzzer-sys` from some source, and a
//! cargo `[patch]` is keyed by that source: `crates-io` for crates.io, the
//! repository URL for a git dependency. A path dependency cannot be patched
//! (cargo has no key for it). A patch cargo does not use — a version
//! requirement the stand-in does not meet, a feature it lacks — would
//! silently build the real crate (for libfuzzer-sys: libFuzzer itself), so
//! the resolved graph is checked before anything is compiled.

use crate::Error;
use cargo_metadata::semver::{Version, VersionReq};
use std::path::{Path, PathBuf};

/// Where a dependency comes from, as the fuzz package's manifest says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepSource {
    /// crates.io.
    CratesIo,
    /// Another registry (its index URL).
    Registry(String),
    /// A git repository (its URL, without branch, tag or rev).
    Git(String),
    /// A local path.
    Path(PathBuf),
}

/// A dependency of the fuzz package on the runtime or on libfuzzer-sys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// Package name (`rfuzz`, `libfuzzer-sys`).
    pub name: String,
    /// Version requirement (`*` when none is written).
    pub req: VersionReq,
    /// Features asked for.
    pub features: Vec<String>,
    /// Whether default features are on.
    pub default_features: bool,
    /// Where it comes from.
    pub source: DepSource,
}

impl Dependency {
    /// Reads one from `cargo metadata`'s view of the manifest.
    pub fn from_metadata(d: &cargo_metadata::Dependency) -> Dependency {
        let repr = d.source.as_ref().map(|s| s.repr.clone()).unwrap_or_default();
        let source = if let Some(p) = &d.path {
            DepSource::Path(p.clone().into())
        } else if let Some(git) = repr.strip_prefix("git+") {
            // `git+URL?branch=x#rev`: a patch is keyed by the URL alone.
            DepSource::Git(git.split(['?', '#']).next().unwrap_or(git).to_string())
        } else if is_crates_io(&repr) || repr.is_empty() {
            DepSource::CratesIo
        } else {
            DepSource::Registry(repr.split_once('+').map_or(repr.as_str(), |(_, url)| url).to_string())
        };
        Dependency {
            name: d.name.clone(),
            req: d.req.clone(),
            features: d.features.clone(),
            default_features: d.uses_default_features,
            source,
        }
    }

    /// The dependency as a manifest line, for messages:
    /// `libfuzzer-sys = { version = "=0.4.7", features = ["x"] }`.
    pub fn manifest_line(&self) -> String {
        let mut parts = Vec::new();
        match &self.source {
            DepSource::Git(url) => parts.push(format!("git = \"{url}\"")),
            DepSource::Path(p) => parts.push(format!("path = \"{}\"", p.display())),
            DepSource::Registry(url) => parts.push(format!("registry-index = \"{url}\"")),
            DepSource::CratesIo => {}
        }
        if self.req != VersionReq::STAR || parts.is_empty() {
            parts.insert(0, format!("version = \"{}\"", self.req));
        }
        if !self.default_features {
            parts.push("default-features = false".into());
        }
        if !self.features.is_empty() {
            let f: Vec<String> = self.features.iter().map(|f| format!("\"{f}\"")).collect();
            parts.push(format!("features = [{}]", f.join(", ")));
        }
        format!("{} = {{ {} }}", self.name, parts.join(", "))
    }

    /// The `[patch]` table key for this dependency's source, or `None` for a
    /// path, which cargo cannot patch.
    pub fn patch_key(&self) -> Option<String> {
        match &self.source {
            DepSource::CratesIo => Some("crates-io".into()),
            DepSource::Registry(url) | DepSource::Git(url) => Some(toml_string(url)),
            DepSource::Path(_) => None,
        }
    }
}

fn is_crates_io(repr: &str) -> bool {
    repr == "registry+https://github.com/rust-lang/crates.io-index" || repr == "sparse+https://index.crates.io/"
}

/// Features of the libfuzzer-sys stand-in (runtime/libfuzzer-sys-shim):
/// every feature of libfuzzer-sys 0.4.
pub const SHIM_FEATURES: &[&str] = &["default", "link_libfuzzer", "arbitrary-derive"];

/// The stand-in's version when the requirement allows it: above every real
/// 0.4 release, so `0.4`, `0.4.1`, `^0.4.9` and `~0.4` all accept it.
pub const SHIM_VERSION: &str = "0.4.9999";

/// The version to give the stand-in for a requirement: 0.4.9999, else
/// 0.3.9999 (projects still on libfuzzer-sys 0.3, whose `fuzz_target!` is the
/// same), else an exact version the requirement names (`=0.4.7`). `None`
/// when no 0.3/0.4 version fits.
pub fn shim_version(req: &VersionReq) -> Option<Version> {
    let mut candidates: Vec<Version> = vec![Version::new(0, 4, 9999), Version::new(0, 3, 9999)];
    for c in &req.comparators {
        if let (0, Some(minor @ (3 | 4)), Some(patch)) = (c.major, c.minor, c.patch) {
            candidates.push(Version::new(0, minor, patch));
        }
    }
    candidates.into_iter().find(|v| req.matches(v))
}

/// A TOML basic string.
pub fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `--config` value that patches `name` of `dep`'s source with the crate in
/// `dir`.
pub fn patch_config(key: &str, name: &str, dir: &Path) -> String {
    format!("patch.{key}.{name}.path={}", toml_string(&dir.to_string_lossy()))
}

/// Why a patch cannot be applied or was not used, and what to change.
pub fn unusable(dep: &Dependency, manifest: &Path, why: String, fix: String) -> Error {
    Error::PatchNotUsed { dependency: dep.manifest_line(), manifest: manifest.to_path_buf(), why, fix }
}

/// The advice for a libfuzzer-sys dependency the stand-in cannot replace.
fn libfuzzer_fix() -> String {
    "depend on `libfuzzer-sys = \"0.4\"` (from crates.io or its git repository) and no other version or features"
        .to_string()
}

/// Checks, before a build, that a path dependency is not what is to be
/// patched.
pub fn check_patchable(dep: &Dependency, manifest: &Path) -> Result<String, Error> {
    dep.patch_key().ok_or_else(|| {
        let fix = if dep.name == "libfuzzer-sys" {
            libfuzzer_fix()
        } else {
            format!("depend on `{} = \"0.1\"` from crates.io", dep.name)
        };
        unusable(
            dep,
            manifest,
            format!("cargo cannot patch a path dependency, so `{}` would be built from that path", dep.name),
            fix,
        )
    })
}

/// After resolution (`cargo metadata` with the build's `--config` patches):
/// every package called `dep.name` must be the patched crate in `dir`.
/// `cargo_said` is cargo's stderr, which names an unused patch.
pub fn check_used(
    dep: &Dependency,
    manifest: &Path,
    metadata: &cargo_metadata::Metadata,
    dir: &Path,
    cargo_said: &str,
) -> Result<(), Error> {
    let canonical_dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let ours = |p: &cargo_metadata::Package| {
        let m: &Path = p.manifest_path.as_std_path();
        std::fs::canonicalize(m).unwrap_or_else(|_| m.to_path_buf()).starts_with(&canonical_dir)
    };
    let Some(other) = metadata.packages.iter().find(|p| p.name.as_str() == dep.name && !ours(p)) else {
        return Ok(());
    };
    let resolved = format!("{} {}", other.name, other.version);
    let missing: Vec<&String> = dep.features.iter().filter(|f| !SHIM_FEATURES.contains(&f.as_str())).collect();
    let is_libfuzzer = dep.name == "libfuzzer-sys";
    let stand_in = if is_libfuzzer { "the libfuzzer-sys stand-in" } else { "the shipped rfuzz runtime" };
    let why = if is_libfuzzer && shim_version(&dep.req).is_none() {
        format!(
            "cargo resolved it to the real {resolved} (which links libFuzzer, not rfuzz): the requirement `{}` accepts no 0.3 or 0.4 version {stand_in} can take",
            dep.req
        )
    } else if is_libfuzzer && !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|f| format!("`{f}`")).collect();
        format!(
            "cargo resolved it to the real {resolved} (which links libFuzzer, not rfuzz): {stand_in} has no feature {}",
            names.join(", ")
        )
    } else {
        let warning = cargo_said.lines().find(|l| l.contains("was not used in the crate graph")).map(str::trim);
        match warning {
            Some(w) => format!("cargo resolved it to {resolved}, not {stand_in} (cargo: {w})"),
            None => format!("cargo resolved it to {resolved}, not {stand_in}"),
        }
    };
    let fix = if is_libfuzzer { libfuzzer_fix() } else { format!("depend on `{} = \"0.1\"`", dep.name) };
    Err(unusable(dep, manifest, why, fix))
}

/// `Cargo.lock` text without the `[[package]]` entries of `name` that come
/// from a registry or a git repository (every entry with a `source`): cargo
/// ignores a patch whose version differs from a locked one, so the entries
/// the patch replaces must go; cargo then locks the patch and keeps every
/// other package as it was. A lock file that does not parse is returned as
/// it is (cargo will say what is wrong with it).
pub fn without_sourced_package(lock: &str, name: &str) -> String {
    let Ok(mut doc) = lock.parse::<toml_edit::DocumentMut>() else { return lock.to_string() };
    let Some(packages) = doc.get_mut("package").and_then(|p| p.as_array_of_tables_mut()) else {
        return lock.to_string();
    };
    let before = packages.len();
    packages.retain(|t| !(t.get("name").and_then(|n| n.as_str()) == Some(name) && t.contains_key("source")));
    if packages.len() == before { lock.to_string() } else { doc.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(s: &str) -> VersionReq {
        VersionReq::parse(s).unwrap()
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string(r#"/a "b"\c"#), r#""/a \"b\"\\c""#);
    }

    #[test]
    fn the_stand_in_takes_a_version_each_requirement_accepts() {
        assert_eq!(shim_version(&req("0.4")).unwrap().to_string(), "0.4.9999");
        assert_eq!(shim_version(&req("0.4.1")).unwrap().to_string(), "0.4.9999");
        assert_eq!(shim_version(&req("~0.4.7")).unwrap().to_string(), "0.4.9999");
        assert_eq!(shim_version(&req("*")).unwrap().to_string(), "0.4.9999");
        assert_eq!(shim_version(&req("0.3.4")).unwrap().to_string(), "0.3.9999");
        assert_eq!(shim_version(&req("=0.4.7")).unwrap().to_string(), "0.4.7");
        // No 0.3/0.4 version fits a range between two releases.
        assert_eq!(shim_version(&req(">=0.4, <0.4.5")), None);
        assert_eq!(shim_version(&req("0.2")), None);
        assert_eq!(shim_version(&req("1")), None);
    }

    #[test]
    fn git_sources_are_patched_by_url() {
        let dep = |source| Dependency {
            name: "libfuzzer-sys".into(),
            req: VersionReq::STAR,
            features: vec!["arbitrary-derive".into()],
            default_features: true,
            source,
        };
        let git = dep(DepSource::Git("https://github.com/rust-fuzz/libfuzzer-sys.git".into()));
        assert_eq!(git.patch_key().unwrap(), "\"https://github.com/rust-fuzz/libfuzzer-sys.git\"");
        assert_eq!(
            git.manifest_line(),
            "libfuzzer-sys = { git = \"https://github.com/rust-fuzz/libfuzzer-sys.git\", features = [\"arbitrary-derive\"] }"
        );
        assert_eq!(dep(DepSource::CratesIo).patch_key().unwrap(), "crates-io");
        let path = dep(DepSource::Path("../libfuzzer".into()));
        assert!(path.patch_key().is_none());
        let err = check_patchable(&path, Path::new("fuzz/Cargo.toml")).unwrap_err().to_string();
        assert!(err.contains("path = \"../libfuzzer\"") && err.contains("libfuzzer-sys = \"0.4\""), "{err}");
        assert_eq!(
            patch_config(&git.patch_key().unwrap(), "libfuzzer-sys", Path::new("/c/shim")),
            "patch.\"https://github.com/rust-fuzz/libfuzzer-sys.git\".libfuzzer-sys.path=\"/c/shim\""
        );
    }

    #[test]
    fn registry_and_git_entries_are_taken_out_of_a_lock_file() {
        let reg = "source = \"registry+https://github.com/rust-lang/crates.io-index\"";
        let git = "source = \"git+https://github.com/rust-fuzz/libfuzzer-sys.git#0123abcd\"";
        let lock = format!(
            "version = 4\n\n[[package]]\nname = \"cc\"\nversion = \"1.2.0\"\n{reg}\n\n[[package]]\n\
             name = \"libfuzzer-sys\"\nversion = \"0.4.13\"\n{reg}\ndependencies = [\n \"cc\",\n]\n\n\
             [[package]]\nname = \"libfuzzer-sys-extra\"\nversion = \"1.0.0\"\n{reg}\n"
        );
        let out = without_sourced_package(&lock, "libfuzzer-sys");
        assert_eq!(
            out,
            format!(
                "version = 4\n\n[[package]]\nname = \"cc\"\nversion = \"1.2.0\"\n{reg}\n\n\
                 [[package]]\nname = \"libfuzzer-sys-extra\"\nversion = \"1.0.0\"\n{reg}\n"
            )
        );
        let lock = format!("version = 4\n\n[[package]]\nname = \"libfuzzer-sys\"\nversion = \"0.4.12\"\n{git}\n");
        assert_eq!(without_sourced_package(&lock, "libfuzzer-sys"), "version = 4\n");
        // A patched (path) entry stays.
        let patched = "version = 4\n\n[[package]]\nname = \"rfuzz\"\nversion = \"0.1.0\"\n";
        assert_eq!(without_sourced_package(patched, "rfuzz"), patched);
    }
}
