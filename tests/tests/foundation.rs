//! The foundation: `cargo rfuzz init/add/list/build` on real crates, the
//! runtime's standalone mode, and its AFL++ forkserver protocol.

use rfuzz_tests::afl_driver::AflDriver;
use rfuzz_tests::*;
use std::process::Command;

#[test]
fn init_and_build_a_fresh_library_crate() {
    let scratch = Scratch::new();
    let krate = scratch.new_lib_crate("fresh");
    let out = output(rfuzz_cmd().arg("init").current_dir(&krate));
    assert!(out.status.success());
    let manifest = std::fs::read_to_string(krate.join("fuzz/Cargo.toml")).unwrap();
    assert!(manifest.contains("rfuzz = \"0.1\""), "portable dependency on the runtime");
    assert!(!manifest.contains(&*krate.to_string_lossy()), "no absolute paths in fuzz/Cargo.toml");
    // The one target needs no name.
    let out = output(rfuzz_cmd().args(["run", "-j", "1", "--no-ui", "--max-total-time", "2"]).current_dir(&krate));
    assert_eq!(out.status.code(), Some(0));
    assert!(krate.join("fuzz/sync/fuzz_target_1/main/queue").is_dir());

    let out = output(rfuzz_cmd().arg("add").arg("second").current_dir(&krate));
    assert!(out.status.success());
    let out = output(rfuzz_cmd().arg("list").current_dir(krate.join("src")));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "fuzz_target_1\nsecond\n");

    let out = output(rfuzz_cmd().args(["build", "fuzz_target_1"]).current_dir(&krate));
    assert!(out.status.success());
    let binary = std::path::PathBuf::from(last_stdout_line(&out));
    assert!(binary.is_absolute() && binary.is_file(), "build prints the binary path last: {binary:?}");

    // The runtime is not instrumented: a trivial target has few edges.
    let guards = guard_count(&binary);
    assert!(guards > 0 && guards < 100, "trivial target has {guards} guards");

    // Standalone: runs a file once and exits 0.
    let input = scratch.write("input", b"hello");
    let out = output(Command::new(&binary).arg(&input));
    assert!(out.status.success());
}

#[test]
fn a_crate_with_a_proc_macro_dependency_builds() {
    let scratch = Scratch::new();
    let krate = scratch.new_lib_crate("withderive");
    let manifest = krate.join("Cargo.toml");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push_str("serde = { version = \"1\", features = [\"derive\"] }\n");
    std::fs::write(&manifest, text).unwrap();
    std::fs::write(
        krate.join("src/lib.rs"),
        "#[derive(serde::Serialize, serde::Deserialize, Debug, Default)]\npub struct Point { pub x: i32, pub y: i32 }\n\
         pub fn parse(data: &[u8]) -> Point { Point { x: data.len() as i32, y: 0 } }\n",
    )
    .unwrap();
    assert!(output(rfuzz_cmd().arg("init").current_dir(&krate)).status.success());
    std::fs::write(
        krate.join("fuzz/fuzz_targets/fuzz_target_1.rs"),
        "#![no_main]\nrfuzz::fuzz_target!(|data: &[u8]| { let _ = withderive::parse(data); });\n",
    )
    .unwrap();
    let out = output(rfuzz_cmd().arg("build").current_dir(&krate));
    assert!(out.status.success(), "serde_derive (a proc-macro) must stay uninstrumented");
    assert!(std::path::Path::new(&last_stdout_line(&out)).is_file());
}

#[test]
fn typed_targets_take_arbitrary_inputs() {
    let scratch = Scratch::new();
    let krate = scratch.new_lib_crate("typed");
    assert!(output(rfuzz_cmd().arg("init").current_dir(&krate)).status.success());
    std::fs::write(
        krate.join("fuzz/fuzz_targets/fuzz_target_1.rs"),
        "#![no_main]\nrfuzz::fuzz_target!(|input: (u8, bool)| {\n    if input.0 == 7 && input.1 { panic!(\"typed crash\") }\n});\n",
    )
    .unwrap();
    let out = output(rfuzz_cmd().arg("build").current_dir(&krate));
    assert!(out.status.success());
    let binary = last_stdout_line(&out);
    let ok = scratch.write("ok", [1u8, 1]);
    let bad = scratch.write("bad", [7u8, 1]);
    assert!(output(Command::new(&binary).arg(&ok)).status.success());
    let out = output(Command::new(&binary).arg(&bad));
    assert!(String::from_utf8_lossy(&out.stderr).contains("typed crash"));

    // tmin shows what the target makes of the minimized bytes.
    let padded = scratch.write("padded", [7u8, 1, 9, 9, 9, 9, 9, 9]);
    let min = scratch.path().join("min");
    let out = output(rfuzz_cmd().args(["tmin", "fuzz_target_1"]).arg(&padded).arg("-o").arg(&min).current_dir(&krate));
    assert!(out.status.success());
    assert!(std::fs::read(&min).unwrap().len() < 8);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the target reads it as (u8, bool): (\n    7,\n    true,\n)"), "{stderr}");
}

#[test]
fn standalone_mode_reproduces_a_crash_with_a_backtrace() {
    let binary = planted_binary("magic");
    let scratch = Scratch::new();
    let harmless = scratch.write("harmless", b"RFZ?");
    let crash = scratch.write("crash", b"RFZ!tail");
    let out = output(Command::new(&binary).arg(&harmless));
    assert_eq!(out.status.code(), Some(0));

    let out = output(Command::new(&binary).arg(&crash));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "a panic aborts");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("planted bug: magic prefix"), "names the panic");
    assert!(stderr.contains("stack backtrace:") && stderr.contains("planted::magic"), "prints a backtrace");

    // A directory argument runs every file in it; stdin works too.
    let out = output(Command::new(&binary).arg(scratch.path()));
    assert_eq!(out.status.signal(), Some(libc::SIGABRT));
    let out = output(Command::new("sh").arg("-c").arg(format!("printf 'RFZ!' | {}", binary.display())));
    assert!(!out.status.success());
}

#[test]
fn afl_protocol_fork_mode_gives_distinct_coverage_and_crash_status() {
    let binary = planted_binary("nested");
    let mut d = AflDriver::start(&binary, false).expect("handshake");
    assert!(d.options & rfuzz::protocol::afl::OPT_SHDMEM_FUZZ != 0, "test cases through shared memory");
    assert_eq!(d.map_size % 64, 0);
    let a = d.run(b"x").unwrap();
    let b = d.run(b"ne").unwrap();
    let c = d.run(b"nes").unwrap();
    assert!(a.ok() && b.ok(), "harmless inputs exit normally: {a:?} {b:?}");
    assert_ne!(a.map, b.map, "distinct inputs give distinct coverage");
    assert_ne!(a.pid, b.pid, "fork mode forks per execution");
    assert!(c.signaled(libc::SIGABRT), "crashing input gives a crash status: {c:?}");
    assert_eq!(a.map[0], 1, "slot 0 is set on every run");
}

#[test]
fn afl_protocol_persistent_mode_reuses_the_child_and_is_stable() {
    let binary = planted_binary("pairs");
    let mut d = AflDriver::start(&binary, true).expect("handshake");
    let first = d.run(b"key=\"value\";n=12").unwrap();
    assert!(first.ok());
    let mut pids = std::collections::HashSet::new();
    for _ in 0..50 {
        let r = d.run(b"key=\"value\";n=12").unwrap();
        assert_eq!(r.map, first.map, "the same input always gives the same map");
        pids.insert(r.pid);
        let other = d.run(b"zzz").unwrap();
        assert_ne!(other.map, first.map);
    }
    assert_eq!(pids.len(), 1, "persistent mode keeps one child");

    let binary = planted_binary("nested");
    let mut d = AflDriver::start(&binary, true).expect("handshake");
    assert!(d.run(b"n").unwrap().ok());
    let crash = d.run(b"nes").unwrap();
    assert!(crash.signaled(libc::SIGABRT), "{crash:?}");
    // After a crash the forkserver forks a fresh child.
    let after = d.run(b"ne").unwrap();
    assert!(after.ok());
    assert_ne!(after.pid, crash.pid);
}

#[test]
fn unknown_target_lists_the_known_ones() {
    planted_binary("trivial");
    let out = output(rfuzz_cmd().args(["build", "no_such_target"]).current_dir(planted_dir()));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown fuzz target `no_such_target`"));
    assert!(stderr.contains("magic") && stderr.contains("trivial"), "lists known targets: {stderr}");
}

#[test]
fn outside_a_cargo_project_is_a_clear_error() {
    let scratch = Scratch::new();
    let out = output(rfuzz_cmd().arg("build").current_dir(scratch.path()));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not in a cargo project"));

    let krate = scratch.new_lib_crate("nofuzz");
    let out = output(rfuzz_cmd().arg("list").current_dir(&krate));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cargo rfuzz init"));
}

#[test]
fn a_build_failure_shows_cargos_error() {
    let scratch = Scratch::new();
    let krate = scratch.new_lib_crate("broken");
    assert!(output(rfuzz_cmd().arg("init").current_dir(&krate)).status.success());
    std::fs::write(
        krate.join("fuzz/fuzz_targets/fuzz_target_1.rs"),
        "#![no_main]\nrfuzz::fuzz_target!(|data: &[u8]| { not_a_function(data) });\n",
    )
    .unwrap();
    let out = output(rfuzz_cmd().arg("build").current_dir(&krate));
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not_a_function"), "cargo's diagnostic is shown");
    assert!(stderr.contains("failed to build fuzz target"));
}

#[test]
#[ignore = "needs AFL++ (cargo install cargo-afl && cargo afl config --build)"]
fn afl_fuzz_drives_our_binary_in_persistent_shared_memory_mode() {
    let afl = afl_fuzz().expect("afl-fuzz not found");
    let scratch = Scratch::new();
    let seeds = scratch.path().join("in");
    std::fs::create_dir_all(&seeds).unwrap();
    std::fs::write(seeds.join("seed"), b"hello").unwrap();
    let out = scratch.path().join("out");
    let o = output(
        Command::new(afl)
            .arg("-i")
            .arg(&seeds)
            .arg("-o")
            .arg(&out)
            .args(["-V", "60", "--"])
            .arg(planted_binary("magic_steps"))
            .env("AFL_NO_UI", "1")
            .env("AFL_SKIP_CPUFREQ", "1")
            .env("AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES", "1")
            .env("AFL_BENCH_UNTIL_CRASH", "1"),
    );
    let log = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(log.contains("Persistent mode binary detected"), "{log}");
    assert!(log.contains("SHARED MEMORY FUZZING"), "{log}");
    let stats = std::fs::read_to_string(out.join("default/fuzzer_stats")).unwrap();
    let get = |k: &str| stats.lines().find(|l| l.starts_with(k)).unwrap().split(':').nth(1).unwrap().trim().to_string();
    eprintln!("afl-fuzz: {} exec/s, stability {}", get("execs_per_sec"), get("stability"));
    assert_eq!(get("saved_crashes"), "1", "afl-fuzz found the 4-byte magic");
    assert_eq!(get("stability"), "100.00%");
    let crash = std::fs::read_dir(out.join("default/crashes"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name() != "README.txt")
        .unwrap();
    let repro = output(Command::new(planted_binary("magic_steps")).arg(crash.path()));
    assert!(String::from_utf8_lossy(&repro.stderr).contains("planted bug: magic reached step by step"));
}

#[test]
fn a_cargo_fuzz_project_builds_and_fuzzes_unchanged() {
    let scratch = Scratch::new();
    let krate = scratch.new_lib_crate("legacy");
    std::fs::write(
        krate.join("src/lib.rs"),
        "pub fn check(data: &[u8]) -> bool {\n    if data.len() > 3 && data[0] == b'c' && data[1] == b'f' && data[2] == b'!' {\n        panic!(\"cargo-fuzz target crash\");\n    }\n    true\n}\n",
    )
    .unwrap();
    // Exactly what `cargo fuzz init` writes (libfuzzer-sys, [package.metadata] cargo-fuzz).
    scratch.write(
        "legacy/fuzz/Cargo.toml",
        "[package]\nname = \"legacy-fuzz\"\nversion = \"0.0.0\"\npublish = false\nedition = \"2021\"\n\n\
         [package.metadata]\ncargo-fuzz = true\n\n[dependencies]\nlibfuzzer-sys = \"0.4\"\n\n\
         [dependencies.legacy]\npath = \"..\"\n\n[[bin]]\nname = \"fuzz_target_1\"\npath = \"fuzz_targets/fuzz_target_1.rs\"\n\
         test = false\ndoc = false\nbench = false\n\n[[bin]]\nname = \"with_corpus\"\npath = \"fuzz_targets/with_corpus.rs\"\n\
         test = false\ndoc = false\nbench = false\n",
    );
    scratch.write(
        "legacy/fuzz/fuzz_targets/fuzz_target_1.rs",
        "#![no_main]\n\nuse libfuzzer_sys::fuzz_target;\n\nfuzz_target!(|data: &[u8]| {\n    legacy::check(data);\n});\n",
    );
    scratch.write(
        "legacy/fuzz/fuzz_targets/with_corpus.rs",
        "#![no_main]\nuse libfuzzer_sys::{fuzz_mutator, fuzz_target, Corpus};\n\nfuzz_target!(|data: &[u8]| -> Corpus {\n    if data.is_empty() {\n        return Corpus::Reject;\n    }\n    legacy::check(data);\n    Corpus::Keep\n});\n\n\
         fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, _seed: u32| {\n    \
         libfuzzer_sys::fuzzer_mutate(data, size, max_size)\n});\n",
    );
    // The project's lock file, as `cargo fuzz` resolved it.
    assert!(output(Command::new("cargo").arg("generate-lockfile").current_dir(krate.join("fuzz"))).status.success());
    let lock = std::fs::read(krate.join("fuzz/Cargo.lock")).unwrap();
    let out = output(rfuzz_cmd().arg("build").current_dir(&krate));
    assert!(out.status.success(), "libfuzzer-sys targets build against the rfuzz runtime");
    assert!(std::fs::read(krate.join("fuzz/Cargo.lock")).unwrap() == lock, "cargo fuzz's lock file is left as it was");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cargo rfuzz ignores custom mutators"),
        "a custom mutator is accepted with a warning"
    );
    let binaries: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(binaries.len(), 2);
    for b in &binaries {
        assert!(guard_count(std::path::Path::new(b)) < 100, "the compatibility crate is not instrumented");
        let crash = scratch.write("crash", b"cf!x");
        let o = output(Command::new(b).arg(&crash));
        assert!(String::from_utf8_lossy(&o.stderr).contains("cargo-fuzz target crash"));
    }
    let o = output(
        rfuzz_cmd()
            .args(["run", "fuzz_target_1", "-j", "1", "--no-ui", "--exit-on-crash", "--max-total-time", "60"])
            .current_dir(&krate),
    );
    assert_eq!(o.status.code(), Some(1), "fuzzing the cargo-fuzz target finds its bug");
}

#[test]
fn ctrl_c_during_a_build_puts_a_cargo_fuzz_lock_file_back() {
    // Regression: Ctrl-C killed cargo-rfuzz during the build, before it put
    // back the Cargo.lock it had edited for the build's duration.
    use std::os::unix::process::CommandExt;
    let scratch = Scratch::new();
    let krate = scratch.new_lib_crate("interrupted");
    scratch.write(
        "interrupted/fuzz/Cargo.toml",
        "[package]\nname = \"interrupted-fuzz\"\nversion = \"0.0.0\"\npublish = false\nedition = \"2021\"\n\n\
         [package.metadata]\ncargo-fuzz = true\n\n[dependencies]\nlibfuzzer-sys = \"0.4\"\n\n\
         [dependencies.interrupted]\npath = \"..\"\n\n[[bin]]\nname = \"fuzz_target_1\"\npath = \"fuzz_targets/fuzz_target_1.rs\"\n\
         test = false\ndoc = false\nbench = false\n",
    );
    scratch.write(
        "interrupted/fuzz/fuzz_targets/fuzz_target_1.rs",
        "#![no_main]\nuse libfuzzer_sys::fuzz_target;\nfuzz_target!(|data: &[u8]| { let _ = data; });\n",
    );
    assert!(output(Command::new("cargo").arg("generate-lockfile").current_dir(krate.join("fuzz"))).status.success());
    let lock_path = krate.join("fuzz/Cargo.lock");
    let lock = std::fs::read(&lock_path).unwrap();
    // In a process group of its own, like a shell job: Ctrl-C reaches
    // cargo-rfuzz and the cargo it runs.
    let mut child = rfuzz_cmd()
        .arg("build")
        .current_dir(&krate)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    // The build has edited the lock (the registry libfuzzer-sys is taken out).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read(&lock_path).unwrap_or_default() == lock {
        assert!(child.try_wait().unwrap().is_none(), "the build ended before it edited the lock");
        assert!(std::time::Instant::now() < deadline, "the build never edited the lock");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: signalling the process group we created.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "an interrupted build exits 130");
    assert!(std::fs::read(&lock_path).unwrap() == lock, "the lock file is back as it was");
}
