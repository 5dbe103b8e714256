//! Helpers for cargo-rfuzz's end-to-end tests: where the binaries are, the
//! fixture crates, a scratch directory type, and a minimal AFL++-protocol
//! driver that talks to a built target the way `afl-fuzz` does, independent
//! of our engine.

pub mod afl_driver;
pub mod sshd;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};

/// Root of the repository.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The `cargo-rfuzz` binary built by this `cargo test` run (it sits beside
/// the `deps/` directory of the test executable), or `CARGO_RFUZZ_BIN`.
pub fn cargo_rfuzz_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CARGO_RFUZZ_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe.parent().and_then(Path::parent).expect("test exe in target/<profile>/deps");
    let bin = profile_dir.join("cargo-rfuzz");
    assert!(bin.is_file(), "{} is missing: run the tests with `cargo test --workspace`", bin.display());
    bin
}

/// A `cargo rfuzz` command (the binary invoked the way cargo does).
pub fn rfuzz_cmd() -> Command {
    let mut c = Command::new(cargo_rfuzz_bin());
    c.arg("rfuzz");
    c
}

/// Runs a command and returns its output, with stderr echoed for debugging
/// when the test fails.
pub fn output(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("failed to run {cmd:?}: {e}"));
    eprintln!(
        "$ {cmd:?}\n--- status: {}\n--- stdout:\n{}\n--- stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Directory of the `planted` fixture crate.
pub fn planted_dir() -> PathBuf {
    repo_root().join("tests").join("fixtures").join("planted")
}

/// Directory of the `cparse` fixture crate (a C parser built with the `cc`
/// crate, and an unsafe out-of-bounds write).
pub fn cparse_dir() -> PathBuf {
    repo_root().join("tests").join("fixtures").join("cparse")
}

/// Builds all targets of the fuzz project in `fuzz_dir` with the extra
/// `cargo rfuzz build` flags `args`, once per test process and set of flags,
/// and returns the binary of `target`.
pub fn built_binary(fuzz_dir: &Path, args: &[&str], target: &str) -> PathBuf {
    type Builds = Mutex<HashMap<(PathBuf, Vec<String>), Arc<OnceLock<Vec<PathBuf>>>>>;
    static BUILDS: OnceLock<Builds> = OnceLock::new();
    let key = (fuzz_dir.to_path_buf(), args.iter().map(|a| a.to_string()).collect());
    let cell = BUILDS.get_or_init(Default::default).lock().unwrap().entry(key).or_default().clone();
    let all = cell.get_or_init(|| {
        let out = output(rfuzz_cmd().arg("build").args(args).current_dir(fuzz_dir));
        assert!(out.status.success(), "building {} with {args:?} failed", fuzz_dir.display());
        String::from_utf8_lossy(&out.stdout).lines().map(PathBuf::from).collect()
    });
    all.iter()
        .find(|p| p.file_name().is_some_and(|n| n == target))
        .unwrap_or_else(|| panic!("fixture target {target} not built"))
        .clone()
}

/// Builds all targets of the `planted` fixture once per test process and
/// returns the binary of `target`.
pub fn planted_binary(target: &str) -> PathBuf {
    built_binary(&planted_dir().join("fuzz"), &[], target)
}

/// Whether a tool that some tests need is there. When it is missing the test
/// is skipped with a message naming how to install it, unless `require_env`
/// is set (CI sets it after installing the tool), which makes it a failure.
pub fn have_or_skip(present: bool, what: &str, install: &str, require_env: &str) -> bool {
    if !present {
        assert!(std::env::var_os(require_env).is_none(), "{what} is missing and {require_env} is set: {install}");
        eprintln!("skipping: {what} is not installed ({install}); set {require_env}=1 to fail instead");
    }
    present
}

/// Whether clang is in `PATH` (C instrumentation needs it).
pub fn clang_present() -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("clang").is_file()))
}

/// Whether rustup has a nightly toolchain (`--sanitizer address` needs it).
pub fn nightly_present() -> bool {
    Command::new("rustc")
        .arg("-vV")
        .env("RUSTUP_TOOLCHAIN", "nightly")
        .env("RUSTUP_AUTO_INSTALL", "0")
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("nightly"))
}

/// A scratch directory removed at the end of the test.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    /// A new empty directory.
    pub fn new() -> Scratch {
        Scratch { dir: tempfile::Builder::new().prefix("rfuzz-test-").tempdir().expect("tempdir") }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` to `rel` (creating parents) and returns the full path.
    pub fn write(&self, rel: &str, text: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Creates a library crate named `name` inside and returns its directory.
    pub fn new_lib_crate(&self, name: &str) -> PathBuf {
        let out = output(Command::new("cargo").args(["new", "--lib", "--vcs", "none", name]).current_dir(self.path()));
        assert!(out.status.success(), "cargo new failed");
        self.path().join(name)
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::new()
    }
}

/// The last non-empty line of a command's stdout.
pub fn last_stdout_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().to_string()
}

/// Number of instrumented edges a target reports (`RFUZZ_INFO=1`).
pub fn guard_count(binary: &Path) -> u32 {
    let out = output(Command::new(binary).env("RFUZZ_INFO", "1"));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("guards: ").map(|n| n.trim().parse().unwrap()))
        .expect("guards line")
}

/// afl-fuzz from `cargo install cargo-afl && cargo afl config --build`, or
/// `AFL_FUZZ`.
pub fn afl_fuzz() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AFL_FUZZ") {
        return Some(PathBuf::from(p));
    }
    let root = Path::new(&std::env::var_os("HOME")?).join(".local/share/afl.rs");
    let mut found: Vec<PathBuf> = std::fs::read_dir(root)
        .ok()?
        .flatten()
        .filter_map(|e| std::fs::read_dir(e.path()).ok())
        .flatten()
        .flatten()
        .map(|e| e.path().join("afl/bin/afl-fuzz"))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.pop()
}

/// Marks the processes one test starts: a variable in their environment,
/// unique to the test, that every descendant inherits (cargo-rfuzz passes
/// its environment on to instances, targets and what targets start). Checks
/// for leftover processes then see only this test's, however many other
/// tests run the same binaries at the same time.
pub struct ProcessMarker {
    value: String,
}

impl ProcessMarker {
    /// The environment variable that carries markers.
    pub const VAR: &'static str = "RFUZZ_TEST_PROCESS_MARKER";

    /// A marker unique to this test process and `test`.
    pub fn new(test: &str) -> ProcessMarker {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        ProcessMarker { value: format!("{test}-{}-{nanos}", std::process::id()) }
    }

    /// Marks `cmd` and everything it starts.
    pub fn mark<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        cmd.env(Self::VAR, &self.value)
    }

    /// Live (not zombie) marked processes, with their command names.
    pub fn processes(&self) -> Vec<(u32, String)> {
        let needle = format!("{}={}\0", Self::VAR, self.value).into_bytes();
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            let Ok(env) = std::fs::read(e.path().join("environ")) else { continue };
            if !env.windows(needle.len()).any(|w| w == needle.as_slice()) {
                continue;
            }
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            // "pid (comm) S ...": a zombie is dead, only not reaped yet.
            if stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next()) == Some('Z') {
                continue;
            }
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default().trim().to_string();
            out.push((pid, comm));
        }
        out
    }

    /// Waits up to `limit` for every marked process to end; otherwise kills
    /// the survivors (so they do not disturb other tests) and fails, naming
    /// them.
    pub fn assert_all_gone(&self, limit: std::time::Duration) {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = self.processes();
            if left.is_empty() {
                return;
            }
            if std::time::Instant::now() > deadline {
                for (pid, _) in &left {
                    // SAFETY: signalling processes this test started.
                    unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
                }
                panic!("processes started by this test outlived it: {left:?}");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}
