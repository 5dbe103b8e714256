//! The runtime crate's source, shipped inside this binary.
//!
//! A user's `fuzz/Cargo.toml` says `rfuzz = "0.1"` as if the runtime were
//! published. `cargo rfuzz build` writes the source it carries to a cache
//! directory keyed by its content and patches it in with `--config
//! patch.crates-io.rfuzz.path=...`: nothing needs publishing, the fuzz
//! project stays portable (no absolute paths in it), and the runtime always
//! speaks the same protocol version as the engine that drives it.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

include!(concat!(env!("OUT_DIR"), "/runtime_files.rs"));

/// Overrides the runtime source directory (for developing the runtime).
pub const RUNTIME_SRC_ENV: &str = "RFUZZ_RUNTIME_SRC";

/// Hash of embedded files (FNV-1a), naming their cache directory.
pub fn content_hash_of(files: &[(&str, &str)]) -> String {
    let h = crate::sync::layout::fnv1a(files.iter().flat_map(|(path, text)| [path.as_bytes(), text.as_bytes()]));
    format!("{h:016x}")
}

fn cache_root() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("cargo-rfuzz");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h).join(".cache").join("cargo-rfuzz");
    }
    std::env::temp_dir().join(format!("cargo-rfuzz-{}", nix::unistd::getuid()))
}

/// Hash of the runtime's files.
pub fn content_hash() -> String {
    content_hash_of(RUNTIME_FILES)
}

/// Writes the runtime source (once per content hash) and returns its directory.
pub fn materialize() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(RUNTIME_SRC_ENV).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    materialize_files("rfuzz", RUNTIME_FILES)
}

/// Writes the libfuzzer-sys compatibility crate, with package version
/// `version` (what the project's requirement accepts, see
/// `rfuzz_instrument::patch::shim_version`), and returns its directory:
/// patched in for `libfuzzer-sys` so cargo-fuzz projects build unchanged.
pub fn materialize_libfuzzer_sys(version: &str) -> Result<PathBuf> {
    let files = libfuzzer_sys_files(version);
    let borrowed: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    materialize_files("libfuzzer-sys", &borrowed)
}

/// The stand-in's files with its manifest's version set to `version`.
fn libfuzzer_sys_files(version: &str) -> Vec<(&'static str, String)> {
    let default_line = format!("version = \"{}\"", rfuzz_instrument::patch::SHIM_VERSION);
    LIBFUZZER_SYS_FILES
        .iter()
        .map(|(path, text)| {
            let text = if *path == "Cargo.toml" {
                text.replacen(&default_line, &format!("version = \"{version}\""), 1)
            } else {
                text.to_string()
            };
            (*path, text)
        })
        .collect()
}

fn materialize_files(name: &str, files: &[(&str, &str)]) -> Result<PathBuf> {
    let hash = content_hash_of(files);
    let root = cache_root();
    let dir = root.join(format!("{name}-{}-{hash}", env!("CARGO_PKG_VERSION")));
    if dir.join(".complete").is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&root).with_context(|| format!("failed to create {}", root.display()))?;
    // Write into a private directory and rename it into place, so concurrent
    // builds never see a half-written runtime.
    let tmp = root.join(format!(".tmp-{}-{name}-{hash}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    write_files(&tmp, files, &hash)?;
    match std::fs::rename(&tmp, &dir) {
        Ok(()) => Ok(dir),
        Err(_) if dir.join(".complete").is_file() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(dir)
        }
        Err(e) => {
            // A stale incomplete directory: replace it.
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::rename(&tmp, &dir).with_context(|| format!("failed to create {} ({e})", dir.display()))?;
            Ok(dir)
        }
    }
}

fn write_files(dir: &Path, files: &[(&str, &str)], hash: &str) -> Result<()> {
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("failed to create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("failed to write {}", path.display()))?;
    }
    std::fs::write(dir.join(".complete"), hash).with_context(|| format!("failed to write {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeds_the_runtime_manifest_and_sources() {
        assert!(RUNTIME_FILES.iter().any(|(p, t)| *p == "Cargo.toml" && t.contains("name = \"rfuzz\"")));
        assert!(RUNTIME_FILES.iter().any(|(p, _)| *p == "src/lib.rs"));
        assert!(RUNTIME_FILES.iter().any(|(p, _)| *p == "src/protocol.rs"));
    }

    #[test]
    fn materialises_into_the_cache_once() {
        let tmp = tempfile::tempdir().unwrap();
        write_files(tmp.path(), RUNTIME_FILES, &content_hash()).unwrap();
        assert!(tmp.path().join("src/lib.rs").is_file());
        assert_eq!(std::fs::read_to_string(tmp.path().join(".complete")).unwrap(), content_hash());
        assert!(LIBFUZZER_SYS_FILES.iter().any(|(p, t)| *p == "Cargo.toml" && t.contains("name = \"libfuzzer-sys\"")));
    }

    #[test]
    fn the_stand_in_declares_its_version_and_features() {
        let manifest = |files: &[(&str, String)]| files.iter().find(|(p, _)| *p == "Cargo.toml").unwrap().1.clone();
        let default = manifest(&libfuzzer_sys_files(rfuzz_instrument::patch::SHIM_VERSION));
        let doc: toml_edit::DocumentMut = default.parse().unwrap();
        assert_eq!(doc["package"]["version"].as_str(), Some(rfuzz_instrument::patch::SHIM_VERSION));
        for f in rfuzz_instrument::patch::SHIM_FEATURES {
            assert!(doc["features"].get(f).is_some(), "feature {f} is declared");
        }
        let exact: toml_edit::DocumentMut = manifest(&libfuzzer_sys_files("0.4.7")).parse().unwrap();
        assert_eq!(exact["package"]["version"].as_str(), Some("0.4.7"));
    }
}
