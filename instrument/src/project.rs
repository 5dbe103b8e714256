//! Finding the fuzz project and its targets.
//!
//! The layout is cargo-fuzz's: a crate has a `fuzz/` directory holding its own
//! package (`fuzz/Cargo.toml`, its own `[workspace]`) whose binaries are the
//! fuzz targets, with sources in `fuzz/fuzz_targets/NAME.rs`.

use crate::Error;
use crate::patch::{DepSource, Dependency};
use std::path::{Path, PathBuf};

/// How the fuzz package depends on the runtime crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeDep {
    /// `rfuzz = "0.1"` from crates.io (or git): `cargo rfuzz` patches in the
    /// runtime source it ships with, so the runtime always matches the engine.
    Rfuzz(Dependency),
    /// A path dependency on `rfuzz` (a runtime checkout): used as written.
    Other,
    /// A cargo-fuzz project (`libfuzzer-sys`, no `rfuzz`): `cargo rfuzz`
    /// patches in a `libfuzzer-sys` with the same API on the rfuzz runtime,
    /// so its targets build and fuzz unchanged.
    LibfuzzerSys(Dependency),
}

/// One fuzz target (a binary of the fuzz package).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuzzTarget {
    /// Binary name, e.g. `parse_header`.
    pub name: String,
    /// Source file.
    pub src_path: PathBuf,
}

/// A located fuzz project.
#[derive(Debug, Clone)]
pub struct FuzzProject {
    /// The `fuzz/` directory.
    pub fuzz_dir: PathBuf,
    /// `fuzz/Cargo.toml`.
    pub manifest_path: PathBuf,
    /// Name of the fuzz package.
    pub package_name: String,
    /// Its binaries, sorted by name.
    pub targets: Vec<FuzzTarget>,
    /// Cargo's target directory for the fuzz package.
    pub target_directory: PathBuf,
    /// Root of the fuzz package's workspace (where its `Cargo.lock` is).
    pub workspace_root: PathBuf,
    /// How the runtime is depended on.
    pub runtime_dep: RuntimeDep,
}

impl FuzzProject {
    /// The target called `name`, or an error listing the known ones.
    pub fn target(&self, name: &str) -> Result<&FuzzTarget, Error> {
        self.targets
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| Error::UnknownTarget { name: name.to_string(), known: self.known_targets() })
    }

    /// Comma-separated target names, for messages.
    pub fn known_targets(&self) -> String {
        if self.targets.is_empty() {
            "(none: add one with `cargo rfuzz add NAME`)".to_string()
        } else {
            self.targets.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
        }
    }

    /// Default seed corpus of a target: `fuzz/corpus/<target>/`.
    pub fn corpus_dir(&self, target: &str) -> PathBuf {
        self.fuzz_dir.join("corpus").join(target)
    }

    /// Settings of `target` from the files cargo-fuzz and OSS-Fuzz projects
    /// keep beside their targets (see [`TargetOptions`]).
    pub fn target_options(&self, target: &str) -> TargetOptions {
        TargetOptions::find(&self.fuzz_dir, target)
    }

    /// Default sync directory of a run: `fuzz/sync/<target>/`.
    pub fn sync_dir(&self, target: &str) -> PathBuf {
        self.fuzz_dir.join("sync").join(target)
    }
}

/// A target's libFuzzer settings from an OSS-Fuzz style `<target>.options`
/// file (`[libfuzzer]` section: `dict`, `max_len`, `timeout` in seconds) and
/// a `<target>.dict` dictionary, looked for in `fuzz/` and
/// `fuzz/fuzz_targets/`. Keys without an rfuzz counterpart are ignored and
/// named in [`TargetOptions::notes`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetOptions {
    /// The options file read, if any.
    pub file: Option<PathBuf>,
    /// Dictionaries (`dict =`, or `<target>.dict`).
    pub dicts: Vec<PathBuf>,
    /// `max_len`: longest input, in bytes.
    pub max_len: Option<u64>,
    /// `timeout`: per-input timeout, in milliseconds (libFuzzer says seconds).
    pub timeout_ms: Option<u64>,
    /// One line each about what was ignored.
    pub notes: Vec<String>,
}

impl TargetOptions {
    /// Reads the settings of `target` in `fuzz_dir`.
    pub fn find(fuzz_dir: &Path, target: &str) -> TargetOptions {
        let dirs = [fuzz_dir.to_path_buf(), fuzz_dir.join("fuzz_targets")];
        let mut opts = TargetOptions::default();
        if let Some(file) = dirs.iter().map(|d| d.join(format!("{target}.options"))).find(|f| f.is_file()) {
            match std::fs::read_to_string(&file) {
                Ok(text) => opts.parse(&text, &file),
                Err(e) => opts.notes.push(format!("{} could not be read ({e}); ignored", file.display())),
            }
            opts.file = Some(file);
        }
        if opts.dicts.is_empty()
            && let Some(dict) = dirs.iter().map(|d| d.join(format!("{target}.dict"))).find(|f| f.is_file())
        {
            opts.dicts.push(dict);
        }
        opts
    }

    fn parse(&mut self, text: &str, file: &Path) {
        let base = file.parent().unwrap_or(Path::new("."));
        let mut section = String::new();
        let mut ignored: Vec<String> = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.trim().to_string();
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                ignored.push(line.to_string());
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            let number = value.parse::<u64>().ok().filter(|n| *n > 0);
            match (section.as_str(), key) {
                ("libfuzzer", "dict") => {
                    let dict = base.join(value);
                    if dict.is_file() {
                        self.dicts.push(dict);
                    } else {
                        self.notes.push(format!(
                            "{}: dictionary {} not found; ignored",
                            file.display(),
                            dict.display()
                        ));
                    }
                }
                ("libfuzzer", "max_len") if number.is_some() => self.max_len = number,
                ("libfuzzer", "timeout") if number.is_some() => self.timeout_ms = number.map(|s| s * 1000),
                ("libfuzzer", _) => ignored.push(format!("{key} = {value}")),
                (other, _) => ignored.push(format!("[{other}] {key}")),
            }
        }
        if !ignored.is_empty() {
            self.notes.push(format!(
                "{}: ignored (no rfuzz counterpart): {}; used: dict, max_len, timeout",
                file.display(),
                ignored.join(", ")
            ));
        }
    }
}

fn is_fuzz_dir(dir: &Path) -> bool {
    dir.join("Cargo.toml").is_file() && dir.join("fuzz_targets").is_dir()
}

/// Nearest directory at or above `start` with a `Cargo.toml`.
pub fn find_crate_root(start: &Path) -> Result<PathBuf, Error> {
    start
        .ancestors()
        .find(|d| d.join("Cargo.toml").is_file())
        .map(Path::to_path_buf)
        .ok_or_else(|| Error::NotACargoProject(start.to_path_buf()))
}

/// Finds the fuzz directory for a command run in `start`: `start` itself or
/// an ancestor if it is a fuzz package, else the `fuzz/` of the nearest
/// ancestor crate that has one.
pub fn find_fuzz_dir(start: &Path) -> Result<PathBuf, Error> {
    let crate_root = find_crate_root(start)?;
    for dir in start.ancestors() {
        if is_fuzz_dir(dir) {
            return Ok(dir.to_path_buf());
        }
        let fuzz = dir.join("fuzz");
        if is_fuzz_dir(&fuzz) {
            return Ok(fuzz);
        }
    }
    Err(Error::NoFuzzDir(crate_root))
}

/// Reads the fuzz package's metadata (no dependency resolution, no network).
pub fn load(fuzz_dir: &Path) -> Result<FuzzProject, Error> {
    let manifest_path = fuzz_dir.join("Cargo.toml");
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(&manifest_path)
        .no_deps()
        .exec()
        .map_err(|e| Error::Metadata { manifest: manifest_path.clone(), msg: first_line_of_metadata_error(&e) })?;
    let canonical = std::fs::canonicalize(&manifest_path).unwrap_or(manifest_path.clone());
    let package = metadata
        .packages
        .iter()
        .find(|p| std::fs::canonicalize(&p.manifest_path).ok().as_deref() == Some(canonical.as_path()))
        .ok_or_else(|| Error::Metadata {
            manifest: manifest_path.clone(),
            msg: "it has no [package] section".to_string(),
        })?;
    let mut targets: Vec<FuzzTarget> = package
        .targets
        .iter()
        .filter(|t| t.is_bin())
        .map(|t| FuzzTarget { name: t.name.clone(), src_path: t.src_path.clone().into() })
        .collect();
    targets.sort_by(|a, b| a.name.cmp(&b.name));
    // Normal dependencies only: a dev- or build-dependency is not what the
    // targets link.
    let normal = |name: &str| {
        package
            .dependencies
            .iter()
            .find(|d| d.name == name && d.kind == cargo_metadata::DependencyKind::Normal)
            .map(Dependency::from_metadata)
    };
    let runtime_dep = match (normal(crate::wrapper::RUNTIME_CRATE), normal(crate::wrapper::COMPAT_CRATE)) {
        (Some(d), _) if matches!(d.source, DepSource::Path(_)) => RuntimeDep::Other,
        (Some(d), _) => RuntimeDep::Rfuzz(d),
        (None, Some(d)) => RuntimeDep::LibfuzzerSys(d),
        (None, None) => return Err(Error::MissingRuntime(manifest_path)),
    };
    Ok(FuzzProject {
        fuzz_dir: fuzz_dir.to_path_buf(),
        manifest_path,
        package_name: package.name.to_string(),
        targets,
        target_directory: metadata.target_directory.into(),
        workspace_root: metadata.workspace_root.into(),
        runtime_dep,
    })
}

/// Name of the package whose manifest is `manifest`, or `None` for a virtual
/// workspace manifest (used by `init` to depend on the crate under test).
pub fn load_root_package(manifest: &Path) -> Result<Option<String>, Error> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(manifest)
        .no_deps()
        .exec()
        .map_err(|e| Error::Metadata { manifest: manifest.to_path_buf(), msg: first_line_of_metadata_error(&e) })?;
    let canonical = std::fs::canonicalize(manifest).unwrap_or(manifest.to_path_buf());
    Ok(metadata
        .packages
        .iter()
        .find(|p| std::fs::canonicalize(&p.manifest_path).ok().as_deref() == Some(canonical.as_path()))
        .map(|p| p.name.to_string()))
}

/// `cargo metadata` errors carry cargo's whole stderr; keep the part that
/// says what is wrong.
fn first_line_of_metadata_error(e: &cargo_metadata::Error) -> String {
    let text = e.to_string();
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines
        .iter()
        .find(|l| l.starts_with("error:") || l.starts_with("Caused by"))
        .map(|_| lines.join(" "))
        .unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_fuzz_dir_from_crate_and_from_inside() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::write(root.join("Cargo.toml"), "[package]\nname='x'\n").unwrap();
        std::fs::create_dir_all(root.join("src/deep")).unwrap();
        assert!(matches!(find_fuzz_dir(&root.join("src/deep")), Err(Error::NoFuzzDir(_))));
        std::fs::create_dir_all(root.join("fuzz/fuzz_targets")).unwrap();
        std::fs::write(root.join("fuzz/Cargo.toml"), "").unwrap();
        assert_eq!(find_fuzz_dir(&root.join("src/deep")).unwrap(), root.join("fuzz"));
        assert_eq!(find_fuzz_dir(&root.join("fuzz/fuzz_targets")).unwrap(), root.join("fuzz"));
    }

    #[test]
    fn options_files_map_to_rfuzz_settings() {
        let tmp = tempfile::tempdir().unwrap();
        let fuzz = tmp.path();
        std::fs::create_dir_all(fuzz.join("fuzz_targets")).unwrap();
        assert_eq!(TargetOptions::find(fuzz, "t"), TargetOptions::default());
        std::fs::write(fuzz.join("words.dict"), "\"GET\"\n").unwrap();
        std::fs::write(
            fuzz.join("fuzz_targets/t.options"),
            "# OSS-Fuzz\n[libfuzzer]\nmax_len = 65536\ntimeout = 25\ndict = ../words.dict\nrss_limit_mb = 4096\n\n[asan]\ndetect_leaks = 0\n",
        )
        .unwrap();
        let o = TargetOptions::find(fuzz, "t");
        assert_eq!(o.max_len, Some(65536));
        assert_eq!(o.timeout_ms, Some(25_000));
        assert_eq!(o.dicts, vec![fuzz.join("fuzz_targets/../words.dict")]);
        assert_eq!(o.notes.len(), 1, "{:?}", o.notes);
        assert!(o.notes[0].contains("rss_limit_mb = 4096") && o.notes[0].contains("[asan] detect_leaks"));
        // A dictionary beside the target is used when no options file names one.
        std::fs::write(fuzz.join("u.dict"), "\"x\"\n").unwrap();
        assert_eq!(TargetOptions::find(fuzz, "u").dicts, vec![fuzz.join("u.dict")]);
        std::fs::write(fuzz.join("v.options"), "[libfuzzer]\ndict = missing.dict\n").unwrap();
        let v = TargetOptions::find(fuzz, "v");
        assert!(v.dicts.is_empty() && v.notes[0].contains("not found"));
    }

    #[test]
    fn outside_any_crate_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(matches!(find_fuzz_dir(tmp.path()), Err(Error::NotACargoProject(_))));
    }
}
