//! cargo-fuzz projects as they are found in the wild build and fuzz on
//! rfuzz unchanged, or fail at once with the cause and the fix: fixture
//! projects modelled on real `fuzz/` directories (feature flags, a git
//! source, a workspace member, a checked-in Cargo.lock, `init:`, `-> Corpus`,
//! OSS-Fuzz `.options` files and dictionaries).

use rfuzz_tests::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A cargo-fuzz `fuzz/Cargo.toml` with `dependency` as its libfuzzer-sys
/// line, the crate under test as `krate`, and one `[[bin]]` per target.
fn fuzz_manifest(krate: &str, dependency: &str, targets: &[&str], own_workspace: bool) -> String {
    let mut m = format!(
        "[package]\nname = \"{krate}-fuzz\"\nversion = \"0.0.0\"\npublish = false\nedition = \"2021\"\n\n\
         [package.metadata]\ncargo-fuzz = true\n\n[dependencies]\n{dependency}\n\n[dependencies.{krate}]\npath = \"..\"\n"
    );
    if own_workspace {
        m.push_str("\n# Prevent this from interfering with workspaces\n[workspace]\nmembers = [\".\"]\n");
    }
    for t in targets {
        m.push_str(&format!(
            "\n[[bin]]\nname = \"{t}\"\npath = \"fuzz_targets/{t}.rs\"\ntest = false\ndoc = false\nbench = false\n"
        ));
    }
    m
}

fn generate_lockfile(dir: &Path) -> Vec<u8> {
    let out = output(Command::new("cargo").arg("generate-lockfile").current_dir(dir));
    assert!(out.status.success(), "cargo generate-lockfile failed");
    std::fs::read(dir.join("Cargo.lock")).unwrap()
}

fn git(dir: &Path, args: &[&str]) {
    let out = output(
        Command::new("git")
            .args(["-c", "user.name=rfuzz", "-c", "user.email=rfuzz@example.com", "-c", "init.defaultBranch=main"])
            .args(args)
            .current_dir(dir),
    );
    assert!(out.status.success(), "git {args:?} failed");
}

/// A git repository holding a crate called libfuzzer-sys that must never be
/// built: the patch has to replace it.
fn fake_libfuzzer_repo(scratch: &Scratch, version: &str) -> PathBuf {
    let repo = scratch.path().join("libfuzzer-git");
    scratch.write(
        "libfuzzer-git/Cargo.toml",
        format!(
            "[package]\nname = \"libfuzzer-sys\"\nversion = \"{version}\"\nedition = \"2021\"\n\n[features]\n\
             arbitrary-derive = []\nonly-upstream = []\n\n[workspace]\n"
        ),
    );
    scratch.write("libfuzzer-git/src/lib.rs", "compile_error!(\"the real libfuzzer-sys from git was built\");\n");
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "libfuzzer-sys"]);
    repo
}

#[test]
fn a_cargo_fuzz_project_with_features_init_corpus_options_and_a_dictionary_fuzzes() {
    let scratch = Scratch::new();
    let krate = scratch.new_lib_crate("wild");
    std::fs::write(
        krate.join("src/lib.rs"),
        "pub fn parse(data: &[u8]) {\n    if data.len() > 3 && &data[..3] == b\"fz!\" {\n        panic!(\"wild crash\");\n    }\n}\n",
    )
    .unwrap();
    // regex's line: a feature and a patch-level requirement.
    let dep = "libfuzzer-sys = { version = \"0.4.1\", features = [\"arbitrary-derive\"] }";
    scratch.write("wild/fuzz/Cargo.toml", fuzz_manifest("wild", dep, &["bytes", "derived", "hangs"], true));
    scratch.write(
        "wild/fuzz/fuzz_targets/bytes.rs",
        "#![no_main]\nuse libfuzzer_sys::{fuzz_target, Corpus};\nuse std::sync::OnceLock;\n\n\
         static READY: OnceLock<bool> = OnceLock::new();\n\n\
         fuzz_target!(init: { READY.set(true).unwrap(); }, |data: &[u8]| -> Corpus {\n    \
         assert!(READY.get().copied().unwrap_or(false), \"init ran first\");\n    \
         if data.is_empty() {\n        return Corpus::Reject;\n    }\n    wild::parse(data);\n    Corpus::Keep\n});\n",
    );
    scratch.write(
        "wild/fuzz/fuzz_targets/derived.rs",
        "#![no_main]\nuse libfuzzer_sys::arbitrary::{self, Arbitrary};\nuse libfuzzer_sys::fuzz_target;\n\n\
         #[derive(Arbitrary, Debug)]\nenum Op {\n    Push(u8),\n    Pop,\n}\n\n\
         fuzz_target!(|ops: Vec<Op>| {\n    let mut stack = Vec::new();\n    for op in ops {\n        \
         match op {\n            Op::Push(b) => stack.push(b),\n            Op::Pop => { stack.pop(); }\n        }\n    }\n});\n",
    );
    scratch.write(
        "wild/fuzz/fuzz_targets/hangs.rs",
        "#![no_main]\nlibfuzzer_sys::fuzz_target!(|data: &[u8]| {\n    if data == b\"hang\" {\n        \
         loop { std::thread::sleep(std::time::Duration::from_millis(10)); }\n    }\n});\n",
    );
    // OSS-Fuzz settings beside the target, and a dictionary it names.
    scratch.write("wild/fuzz/bytes.dict", "magic=\"fz!\"\n");
    scratch.write("wild/fuzz/bytes.options", "[libfuzzer]\nmax_len = 4096\ndict = bytes.dict\nrss_limit_mb = 2560\n");
    let fuzz = krate.join("fuzz");
    let lock = generate_lockfile(&fuzz);

    let out = output(rfuzz_cmd().arg("build").current_dir(&krate));
    assert!(out.status.success(), "the project builds on the stand-in");
    assert!(std::fs::read(fuzz.join("Cargo.lock")).unwrap() == lock, "the checked-in lock file is left as it was");
    let bins: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout).lines().map(PathBuf::from).collect();
    assert_eq!(bins.len(), 3);
    for b in &bins {
        assert!(guard_count(b) > 0, "{} is an instrumented rfuzz binary", b.display());
    }

    // `cargo fuzz fmt` reads the Debug form of a typed input through
    // RUST_LIBFUZZER_DEBUG_PATH.
    let input = scratch.write("ops", [0u8, 7, 1, 0, 9]);
    let debug = scratch.path().join("debug.txt");
    let o = output(Command::new(&bins[1]).arg(&input).env("RUST_LIBFUZZER_DEBUG_PATH", &debug));
    assert!(o.status.success());
    let text = std::fs::read_to_string(&debug).unwrap();
    assert!(text.starts_with('['), "the pretty Debug form of the Vec<Op>: {text}");

    // A hang in repro is killed after the limit, with what it started.
    let hang = scratch.write("hang", b"hang");
    let o = output(rfuzz_cmd().args(["repro", "--timeout", "1", "hangs"]).arg(&hang).current_dir(&krate));
    assert_eq!(o.status.code(), Some(137));
    assert!(String::from_utf8_lossy(&o.stderr).contains("still ran after 1 s"));

    // The .options file's settings are used, the rest named; the dictionary
    // holds the magic, so the crash is found.
    let o = output(
        rfuzz_cmd()
            .args(["run", "bytes", "-j", "1", "--no-ui", "--exit-on-crash", "--max-total-time", "60"])
            .current_dir(&krate),
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("max_len 4096") && stderr.contains("bytes.dict"), "{stderr}");
    assert!(stderr.contains("rss_limit_mb = 2560"), "ignored keys are named: {stderr}");
    assert_eq!(o.status.code(), Some(1), "the planted crash is found");
    let stats = std::fs::read_to_string(fuzz.join("sync/bytes/main/fuzzer_stats")).unwrap_or_default();
    let cmdline = stats.lines().find(|l| l.starts_with("command_line")).unwrap_or_default();
    assert!(
        cmdline.contains("--max-len 4096") && cmdline.contains("bytes.dict"),
        "passed on to the instance: {cmdline}"
    );
    assert!(std::fs::read(fuzz.join("Cargo.lock")).unwrap() == lock);
}

#[test]
fn a_git_sourced_libfuzzer_sys_in_a_workspace_member_is_patched_by_its_url() {
    let scratch = Scratch::new();
    let repo = fake_libfuzzer_repo(&scratch, "0.4.12");
    let krate = scratch.new_lib_crate("member");
    // image-png's line (a git source), in a fuzz package that is a member of
    // the crate's workspace: one lock file, at the root.
    let mut root = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
    root.push_str("\n[workspace]\nmembers = [\"fuzz\"]\n");
    std::fs::write(krate.join("Cargo.toml"), root).unwrap();
    let dep = format!("[dependencies.libfuzzer-sys]\ngit = \"file://{}\"", repo.display());
    scratch.write("member/fuzz/Cargo.toml", fuzz_manifest("member", &dep, &["fuzz_target_1"], false));
    scratch.write(
        "member/fuzz/fuzz_targets/fuzz_target_1.rs",
        "#![no_main]\nuse libfuzzer_sys::fuzz_target;\nfuzz_target!(|data: &[u8]| {\n    if data == b\"git\" {\n        panic!(\"git crash\");\n    }\n});\n",
    );
    let lock = generate_lockfile(&krate);
    assert!(String::from_utf8_lossy(&lock).contains("git+file://"), "the lock has the git entry");
    let out = output(rfuzz_cmd().arg("build").current_dir(&krate));
    assert!(out.status.success(), "a patch keyed by the git URL replaces the git crate");
    assert!(std::fs::read(krate.join("Cargo.lock")).unwrap() == lock, "the workspace's lock file is restored");
    let binary = last_stdout_line(&out);
    let crash = scratch.write("crash", b"git");
    let o = output(Command::new(&binary).arg(&crash));
    assert!(String::from_utf8_lossy(&o.stderr).contains("git crash"));
}

#[test]
fn a_libfuzzer_sys_dependency_the_stand_in_cannot_replace_fails_fast_with_the_fix() {
    let scratch = Scratch::new();
    let repo = fake_libfuzzer_repo(&scratch, "0.2.0");
    let krate = scratch.new_lib_crate("stuck");
    scratch.write(
        "stuck/fuzz/fuzz_targets/fuzz_target_1.rs",
        "#![no_main]\nlibfuzzer_sys::fuzz_target!(|data: &[u8]| { let _ = data; });\n",
    );
    let manifest = krate.join("fuzz/Cargo.toml");
    let cases = [
        // A version no stand-in can take: cargo would use the real crate.
        (format!("libfuzzer-sys = {{ git = \"file://{}\", version = \"0.2\" }}", repo.display()), "0.2"),
        // A feature the stand-in lacks.
        (
            format!("libfuzzer-sys = {{ git = \"file://{}\", features = [\"only-upstream\"] }}", repo.display()),
            "no feature `only-upstream`",
        ),
        // A path: cargo cannot patch it.
        (format!("libfuzzer-sys = {{ path = \"{}\" }}", repo.display()), "cannot patch a path dependency"),
    ];
    for (dep, why) in cases {
        std::fs::write(&manifest, fuzz_manifest("stuck", &dep, &["fuzz_target_1"], true)).unwrap();
        let _ = std::fs::remove_file(krate.join("fuzz/Cargo.lock"));
        let lock = generate_lockfile(&krate.join("fuzz"));
        let out = output(rfuzz_cmd().arg("build").current_dir(&krate).stdin(std::process::Stdio::null()));
        assert_eq!(out.status.code(), Some(3), "{dep}: an unusable patch is a build failure");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("cannot be replaced by cargo rfuzz"), "{stderr}");
        assert!(stderr.contains("libfuzzer-sys = {"), "names the dependency line: {stderr}");
        assert!(stderr.contains(why), "says why ({why}): {stderr}");
        assert!(stderr.contains("fix: depend on `libfuzzer-sys = \"0.4\"`"), "says what to change: {stderr}");
        assert!(!stderr.contains("the real libfuzzer-sys from git was built"), "nothing was compiled: {stderr}");
        assert!(std::fs::read(krate.join("fuzz/Cargo.lock")).unwrap() == lock, "the lock file is left as it was");
    }
}

#[test]
fn a_libfuzzer_binary_is_refused_without_being_run() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = Scratch::new();
    let ran = scratch.path().join("ran");
    // Carries libFuzzer's entry point and banner, and records being run.
    let binary = scratch.write(
        "fuzz_regex_match",
        format!("#!/bin/sh\n# LLVMFuzzerTestOneInput INFO: Running with libFuzzer\ntouch '{}'\n", ran.display()),
    );
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = output(
        rfuzz_cmd()
            .args(["fuzz", "--no-ui", "--max-total-time", "5", "--binary"])
            .arg(&binary)
            .arg("-o")
            .arg(scratch.path().join("sync")),
    );
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a libFuzzer binary"));
    assert!(!ran.exists(), "the binary was never started");
}
