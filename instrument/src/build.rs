//! Running cargo to build instrumented fuzz targets.

use crate::flags::{self, Instrumentation, Profile, Sanitizer};
use crate::patch::{self, DepSource, Dependency};
use crate::project::{FuzzProject, RuntimeDep};
use crate::{Error, cc, wrapper};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Release (default) or dev.
    pub profile: Profile,
    /// `--features` of the fuzz package.
    pub features: Vec<String>,
    /// `--all-features`.
    pub all_features: bool,
    /// `--no-default-features`.
    pub no_default_features: bool,
    /// Target triple; the host's when `None`.
    pub target_triple: Option<String>,
    /// Coverage mode, C instrumentation and sanitizer.
    pub instrumentation: Instrumentation,
    /// Runtime source to patch in for a crates.io `rfuzz` dependency.
    pub runtime_source: Option<PathBuf>,
    /// The libfuzzer-sys compatibility crate, patched in for cargo-fuzz
    /// projects (`RuntimeDep::LibfuzzerSys`).
    pub libfuzzer_sys_source: Option<PathBuf>,
    /// Executable that acts as `RUSTC_WRAPPER` (the `cargo-rfuzz` binary).
    pub wrapper_exe: PathBuf,
    /// Pass `--quiet` to cargo.
    pub quiet: bool,
    /// Pass `--verbose` to cargo.
    pub verbose: bool,
}

/// A built fuzz target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// Target name.
    pub target: String,
    /// Absolute path of the instrumented binary.
    pub binary: PathBuf,
}

/// What a build produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOutput {
    /// The binaries, in the order asked.
    pub binaries: Vec<Built>,
    /// Problems that did not stop the build (one line each), e.g. C code
    /// left uninstrumented for want of clang.
    pub warnings: Vec<String>,
}

/// The host triple of the active rustc (`rustc -vV`).
pub fn host_triple() -> Result<String, Error> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out =
        Command::new(&rustc).arg("-vV").output().map_err(|source| Error::Io { what: "rustc -vV".into(), source })?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| l.strip_prefix("host: ").map(str::to_string)).ok_or_else(
        || Error::Io { what: "rustc -vV".into(), source: std::io::Error::other("no host line in its output") },
    )
}

/// The rustup toolchain sanitizer builds use, unless [`TOOLCHAIN_ENV`] names
/// another (a dated nightly, say).
pub const NIGHTLY_TOOLCHAIN: &str = "nightly";

/// Names the rustup toolchain of sanitizer builds.
pub const TOOLCHAIN_ENV: &str = "RFUZZ_NIGHTLY_TOOLCHAIN";

/// The rustup toolchain sanitizer builds use.
pub fn nightly_toolchain() -> String {
    std::env::var(TOOLCHAIN_ENV).ok().filter(|t| !t.is_empty()).unwrap_or_else(|| NIGHTLY_TOOLCHAIN.into())
}

/// Checks that rustup has a nightly toolchain (sanitizers are nightly-only
/// rustc flags): `rustc -vV` through the rustup proxy must say nightly.
pub fn check_nightly(sanitizer: Sanitizer) -> Result<(), Error> {
    let toolchain = nightly_toolchain();
    let missing = |detail: String| Error::NightlyRequired { sanitizer: sanitizer.name(), detail };
    let out = Command::new("rustc")
        .arg("-vV")
        .env("RUSTUP_TOOLCHAIN", &toolchain)
        // Never download a toolchain as a side effect of a check.
        .env("RUSTUP_AUTO_INSTALL", "0")
        .env_remove("RUSTC")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| missing(format!("running rustc failed: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let release = text.lines().find_map(|l| l.strip_prefix("release: ")).unwrap_or("").to_string();
    if out.status.success() && (release.contains("nightly") || release.contains("-dev")) {
        return Ok(());
    }
    let why = if out.status.success() {
        format!("toolchain `{toolchain}` is rustc {release}")
    } else {
        let said = String::from_utf8_lossy(&out.stderr);
        let first = said.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
        format!("toolchain `{toolchain}`: {first}")
    };
    Err(missing(why))
}

/// Where instrumented artifacts go: a directory of their own per mode,
/// because cargo's fingerprints do not cover wrapper flags.
pub fn rfuzz_target_dir(project: &FuzzProject, inst: &Instrumentation) -> PathBuf {
    project.target_directory.join(inst.dir_name())
}

/// Path the binary of `target` will have after a build.
pub fn binary_path(
    project: &FuzzProject,
    inst: &Instrumentation,
    target: &str,
    triple: &str,
    profile: Profile,
) -> PathBuf {
    rfuzz_target_dir(project, inst).join(triple).join(profile.dir_name()).join(target)
}

/// Clears artifacts built with another flag set (older cargo-rfuzz), so cargo
/// does not reuse objects whose instrumentation differs.
/// Concurrent builds (several `cargo rfuzz` commands at once) take a lock
/// around this check, and the stamp is replaced atomically, so a build never
/// deletes artifacts another one of the same flag set is using.
fn check_stamp(target_dir: &Path, profile_dir: &Path, stamp: &str) -> Result<(), Error> {
    let io = |what: String| move |source| Error::Io { what, source };
    std::fs::create_dir_all(profile_dir).map_err(io(format!("create {}", profile_dir.display())))?;
    let lock_path = target_dir.join(".rfuzz-stamp.lock");
    let lock = std::fs::File::create(&lock_path).map_err(io(format!("create {}", lock_path.display())))?;
    lock.lock().map_err(io(format!("lock {}", lock_path.display())))?;
    let stamp_file = profile_dir.join(".rfuzz-flags");
    if std::fs::read_to_string(&stamp_file).ok().as_deref() != Some(stamp) {
        std::fs::remove_dir_all(profile_dir)
            .map_err(io(format!("remove stale artifacts in {}", profile_dir.display())))?;
        std::fs::create_dir_all(profile_dir).map_err(io(format!("create {}", profile_dir.display())))?;
        let tmp = profile_dir.join(format!(".rfuzz-flags.{}", std::process::id()));
        std::fs::write(&tmp, stamp)
            .and_then(|_| std::fs::rename(&tmp, &stamp_file))
            .map_err(io(format!("write {}", stamp_file.display())))?;
    }
    Ok(())
}

/// Builds `targets` (all targets when empty) and returns their binaries in
/// the order asked.
pub fn build(project: &FuzzProject, targets: &[String], opts: &BuildOptions) -> Result<BuildOutput, Error> {
    let names: Vec<String> = if targets.is_empty() {
        if project.targets.is_empty() {
            return Err(Error::NoTargets(project.fuzz_dir.clone()));
        }
        project.targets.iter().map(|t| t.name.clone()).collect()
    } else {
        for t in targets {
            project.target(t)?;
        }
        targets.to_vec()
    };
    let triple = match &opts.target_triple {
        Some(t) => t.clone(),
        None => host_triple()?,
    };
    let inst = opts.instrumentation;
    if let Some(s) = inst.sanitizer {
        check_nightly(s)?;
    }
    // Coverage-report builds leave C alone: its pc-table entries would be
    // mixed into the Rust blocks' table.
    let clang = if inst.instrument_c && inst.coverage != flags::CoverageMode::Report { cc::find_clang() } else { None };
    // Without clang the C code is not instrumented: that build is the
    // `--no-instrument-c` one, in its directory.
    let built_inst = Instrumentation { instrument_c: clang.is_some(), ..inst };
    let target_dir = rfuzz_target_dir(project, &built_inst);
    let profile_dir = target_dir.join(&triple).join(opts.profile.dir_name());
    let stamp = flags::flag_stamp(opts.profile, &built_inst, clang.as_ref().map(|c| c.cc.to_str().unwrap_or("clang")));
    check_stamp(&target_dir, &profile_dir, &stamp)?;

    let mut cmd = match inst.sanitizer {
        // The rustup proxy with the nightly toolchain (cargo's own `CARGO`
        // is the stable one that runs us).
        Some(_) => {
            let mut c = Command::new("cargo");
            c.env("RUSTUP_TOOLCHAIN", nightly_toolchain()).env_remove("RUSTC");
            c
        }
        None => Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())),
    };
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(&project.manifest_path)
        // With --target, build scripts and proc-macros are compiled for the
        // host without --target, which is how the wrapper tells them apart
        // (they must not be instrumented: proc-macro2's build script would
        // fail to link against the coverage callbacks).
        .arg("--target")
        .arg(&triple)
        .arg("--target-dir")
        .arg(&target_dir)
        .arg("--message-format=json-render-diagnostics");
    if opts.profile == Profile::Release {
        cmd.arg("--release");
    }
    for n in &names {
        cmd.arg("--bin").arg(n);
    }
    feature_args(&mut cmd, opts);
    if opts.quiet {
        cmd.arg("--quiet");
    }
    if opts.verbose {
        cmd.arg("--verbose");
    }
    // What is patched in, and from which directory.
    let mut patches: Vec<(Dependency, PathBuf)> = Vec::new();
    match (&project.runtime_dep, &opts.runtime_source, &opts.libfuzzer_sys_source) {
        // The runtime matching this cargo-rfuzz, whether or not `rfuzz` is
        // published: the wire protocol must match the engine's.
        (RuntimeDep::Rfuzz(dep), Some(rt), _) => patches.push((dep.clone(), rt.clone())),
        // A cargo-fuzz project: libfuzzer-sys' API on our runtime (which the
        // stand-in takes from crates.io).
        (RuntimeDep::LibfuzzerSys(dep), Some(rt), Some(shim)) => {
            patches.push((stand_in_runtime_dep(), rt.clone()));
            patches.push((dep.clone(), shim.clone()));
        }
        _ => {}
    }
    let mut config_args: Vec<String> = Vec::new();
    for (dep, dir) in &patches {
        let key = patch::check_patchable(dep, &project.manifest_path)?;
        config_args.push(patch::patch_config(&key, &dep.name, dir));
    }
    for c in &config_args {
        cmd.arg("--config").arg(c);
    }
    let mut common = flags::common_flags(opts.profile, inst.sanitizer);
    if inst.coverage == flags::CoverageMode::Report {
        common.extend(flags::report_flags());
    }
    let inner = std::env::var_os("RUSTC_WRAPPER").filter(|w| Path::new(w) != opts.wrapper_exe && !w.is_empty());
    if let Some(clang) = &clang {
        // Scoped to this cargo: C built by build scripts for the target.
        for v in cc::env_remove(&triple) {
            cmd.env_remove(v);
        }
        cmd.envs(cc::env(clang, &triple, inst.sanitizer));
    }
    cmd.env("RUSTC_WRAPPER", &opts.wrapper_exe)
        .env(wrapper::WRAPPER_ENV, "1")
        .env(wrapper::COMMON_FLAGS_ENV, flags::encode(&common))
        .env(wrapper::COVERAGE_FLAGS_ENV, flags::encode(&flags::coverage_flags(inst.coverage, inst.sanitizer)))
        .env(wrapper::INNER_WRAPPER_ENV, inner.unwrap_or_default())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // Cargo ignores a patch whose version differs from the one locked from
    // a registry or git, so those entries of a patched crate are taken out of
    // the lock before the build (cargo then locks the patch and keeps every
    // other version). A cargo-fuzz project's lock file belongs to `cargo
    // fuzz`: it is put back as it was afterwards.
    let lock_path = project.workspace_root.join("Cargo.lock");
    let lock_guard =
        matches!(project.runtime_dep, RuntimeDep::LibfuzzerSys(_)).then(|| LockGuard::save(lock_path.clone()));
    for (dep, _) in &patches {
        if let Ok(text) = std::fs::read_to_string(&lock_path) {
            let stripped = patch::without_sourced_package(&text, &dep.name);
            if stripped != text {
                let _ = std::fs::write(&lock_path, stripped);
            }
        }
    }
    // Before anything compiles: a patch cargo does not use would build the
    // real crate (libFuzzer, for libfuzzer-sys) in its place.
    if !patches.is_empty() {
        let mut meta = metadata_command(&cmd);
        meta.arg("--manifest-path").arg(&project.manifest_path).arg("--filter-platform").arg(&triple);
        for c in &config_args {
            meta.arg("--config").arg(c);
        }
        feature_args(&mut meta, opts);
        if let Some((metadata, said)) = resolve(&mut meta)? {
            for (dep, dir) in &patches {
                patch::check_used(dep, &project.manifest_path, &metadata, dir, &said)?;
            }
        }
    }
    let mut child = cmd.spawn().map_err(|source| Error::Io { what: "cargo build".into(), source })?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut built: Vec<Built> = Vec::new();
    let mut uses_cc = false;
    for message in cargo_metadata::Message::parse_stream(BufReader::new(stdout)) {
        let Ok(cargo_metadata::Message::CompilerArtifact(artifact)) = message else {
            continue;
        };
        // The `cc` crate is a build dependency: some build script compiles C.
        uses_cc |= artifact.target.name == "cc" && artifact.target.is_lib();
        if !artifact.target.is_bin() || !names.contains(&artifact.target.name) {
            continue;
        }
        if let Some(exe) = artifact.executable {
            built.retain(|b| b.target != artifact.target.name);
            built.push(Built { target: artifact.target.name.clone(), binary: exe.into() });
        }
    }
    let status = child.wait().map_err(|source| Error::Io { what: "cargo build".into(), source })?;
    drop(lock_guard);
    if !status.success() {
        return Err(Error::BuildFailed { targets: names.join(", "), status: status.to_string() });
    }
    let binaries = names
        .iter()
        .map(|n| built.iter().find(|b| &b.target == n).cloned().ok_or_else(|| Error::NoExecutable(n.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    let mut warnings = Vec::new();
    if inst.instrument_c && clang.is_none() && uses_cc {
        warnings.push(format!(
            "clang not found: C/C++ code compiled by the `cc` crate is not instrumented (no coverage, no compare solving); {}",
            cc::INSTALL_HINT
        ));
    }
    Ok(BuildOutput { binaries, warnings })
}

fn feature_args(cmd: &mut Command, opts: &BuildOptions) {
    if !opts.features.is_empty() {
        cmd.arg("--features").arg(opts.features.join(","));
    }
    if opts.all_features {
        cmd.arg("--all-features");
    }
    if opts.no_default_features {
        cmd.arg("--no-default-features");
    }
}

/// The stand-in's own dependency on the runtime (`rfuzz = "0.1"`).
fn stand_in_runtime_dep() -> Dependency {
    Dependency {
        name: wrapper::RUNTIME_CRATE.into(),
        req: cargo_metadata::semver::VersionReq::parse("0.1").expect("a valid requirement"),
        features: Vec::new(),
        default_features: true,
        source: DepSource::CratesIo,
    }
}

/// `cargo metadata` run by the same cargo (toolchain) as `build`.
fn metadata_command(build: &Command) -> Command {
    let mut meta = Command::new(build.get_program());
    for (k, v) in build.get_envs() {
        match v {
            Some(v) => meta.env(k, v),
            None => meta.env_remove(k),
        };
    }
    meta.args(["metadata", "--format-version", "1"]).stdin(Stdio::null());
    meta
}

/// The resolved graph and cargo's stderr; `None` when cargo fails (the
/// build that follows shows why). Cargo killed by a signal (Ctrl-C reaches
/// it too) is an error: no build follows.
fn resolve(meta: &mut Command) -> Result<Option<(cargo_metadata::Metadata, String)>, Error> {
    use std::os::unix::process::ExitStatusExt;
    let Ok(out) = meta.output() else { return Ok(None) };
    if let Some(sig) = out.status.signal() {
        return Err(Error::BuildFailed {
            targets: "(resolving dependencies)".into(),
            status: format!("metadata was killed by signal {sig}"),
        });
    }
    if !out.status.success() {
        return Ok(None);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let parsed =
        stdout.lines().find(|l| l.starts_with('{')).and_then(|json| cargo_metadata::MetadataCommand::parse(json).ok());
    Ok(parsed.map(|metadata| (metadata, String::from_utf8_lossy(&out.stderr).into_owned())))
}

/// Puts a `Cargo.lock` back as it was (or removes one that did not exist)
/// when dropped.
struct LockGuard {
    path: PathBuf,
    saved: Option<Vec<u8>>,
}

impl LockGuard {
    fn save(path: PathBuf) -> LockGuard {
        let saved = std::fs::read(&path).ok();
        LockGuard { path, saved }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let now = std::fs::read(&self.path).ok();
        if now == self.saved {
            return;
        }
        // Best effort: a lock file cargo rewrote is still a valid one.
        let _ = match &self.saved {
            Some(bytes) => std::fs::write(&self.path, bytes),
            None => std::fs::remove_file(&self.path),
        };
    }
}
