//! Build modes: Rust instrumented with `trace-pc-guard` instead of inline
//! counters, C from the `cc` crate instrumented with clang, and
//! AddressSanitizer on a nightly toolchain.

use rfuzz_tests::afl_driver::AflDriver;
use rfuzz_tests::*;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PC_GUARD: &[&str] = &["--coverage", "pc-guard"];
const NO_C: &[&str] = &["--no-instrument-c"];
const ASAN: &[&str] = &["--sanitizer", "address"];

/// Set by `.ci/run` after installing clang: a missing clang fails the tests.
const REQUIRE_CLANG_ENV: &str = "RFUZZ_REQUIRE_CLANG";
/// Set where a nightly toolchain is installed on purpose.
const REQUIRE_NIGHTLY_ENV: &str = "RFUZZ_REQUIRE_NIGHTLY";

/// `cargo rfuzz fuzz TARGET` in `fuzz_dir` with build flags `build`, after
/// building once for the whole test process.
fn fuzz(fuzz_dir: &Path, target: &str, build: &[&str], out: &Path) -> Command {
    built_binary(fuzz_dir, build, target);
    let mut c = rfuzz_cmd();
    c.args(["fuzz", target, "--no-ui", "-o"]).arg(out).args(build).current_dir(fuzz_dir);
    c
}

fn crash_files(instance: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(instance.join("crashes"))
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.file_name().is_some_and(|n| n != "README.txt")).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The "N of them in C/C++" of `cargo rfuzz build`'s line for `target`.
fn c_edges_reported(build_stderr: &str, target: &str) -> u64 {
    let line = build_stderr
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("Built {target} (")))
        .unwrap_or_else(|| panic!("no Built line for {target}: {build_stderr}"));
    let before = line.split(" of them in C/C++").next().unwrap();
    before.rsplit(' ').next().unwrap().parse().unwrap_or_else(|_| panic!("no C edge count in {line:?}"))
}

#[test]
fn planted_bugs_are_found_in_pc_guard_mode() {
    let fuzz_dir = planted_dir().join("fuzz");
    let guard_bin = built_binary(&fuzz_dir, PC_GUARD, "magic");
    assert!(guard_bin.to_string_lossy().contains("/rfuzz-pc-guard/"), "a target directory of its own: {guard_bin:?}");
    assert_eq!(
        guard_count(&guard_bin),
        guard_count(&planted_binary("magic")),
        "guards and counters instrument the same edges"
    );
    for (target, message) in [
        ("magic", "planted bug: magic prefix"),
        ("nested", "planted bug: nested compares"),
        ("length_field", "planted bug: length field"),
        ("magic8", "planted bug: 8-byte magic"),
    ] {
        let scratch = Scratch::new();
        let out = scratch.path().join("sync");
        let o = output(fuzz(&fuzz_dir, target, PC_GUARD, &out).args(["--exit-on-crash", "--max-total-time", "60"]));
        assert_eq!(o.status.code(), Some(1), "{target}: found in pc-guard mode");
        assert!(stderr(&o).contains("--coverage pc-guard"), "the reproduce command names the mode");
        let crash = crash_files(&out.join("main")).into_iter().next().expect("a crash file");
        let repro = output(Command::new(built_binary(&fuzz_dir, PC_GUARD, target)).arg(&crash));
        assert_eq!(repro.status.signal(), Some(libc::SIGABRT));
        assert!(stderr(&repro).contains(message), "{target}: the crash reproduces");
    }
}

#[test]
fn a_pc_guard_build_is_stable_under_the_afl_protocol() {
    let binary = built_binary(&planted_dir().join("fuzz"), PC_GUARD, "pairs");
    let mut d = AflDriver::start(&binary, true).expect("handshake");
    let first = d.run(b"key=\"value\";n=12").unwrap();
    assert!(first.ok());
    assert!(first.map.iter().filter(|&&b| b != 0).count() > 3, "guards land in the map");
    for _ in 0..50 {
        assert_eq!(d.run(b"key=\"value\";n=12").unwrap().map, first.map, "the same input gives the same map");
        assert_ne!(d.run(b"zzz").unwrap().map, first.map);
    }
}

#[test]
fn a_binary_mixing_rust_counters_and_c_guards_is_stable_and_tells_c_paths_apart() {
    if !have_or_skip(clang_present(), "clang", "apt-get install clang", REQUIRE_CLANG_ENV) {
        return;
    }
    let binary = built_binary(&cparse_dir().join("fuzz"), &[], "parse");
    let mut d = AflDriver::start(&binary, true).expect("handshake");
    let deep: &[u8] = b"CPK1HEAD\x07\x02rfuzz\0\0\0";
    let first = d.run(deep).unwrap();
    assert!(first.ok());
    for _ in 0..50 {
        assert_eq!(d.run(deep).unwrap().map, first.map, "the same input gives the same map");
    }
    // The Rust harness does the same for all three inputs: only the C
    // parser's edges (a different return for each) tell them apart.
    let shallow = d.run(b"CPK1HEAD\x07\x02zzzzzzzzzzzz").unwrap();
    let nothing = d.run(b"zzzzzzzzzzzzzzzzzzzzzz").unwrap();
    assert_ne!(first.map, shallow.map);
    assert_ne!(shallow.map, nothing.map);
    assert_ne!(first.map, nothing.map);
}

#[test]
fn afl_fuzz_drives_a_pc_guard_build_at_full_stability() {
    let Some(afl) = afl_fuzz() else {
        eprintln!("skipping: afl-fuzz not found (cargo install cargo-afl && cargo afl config --build, or AFL_FUZZ)");
        return;
    };
    let binary = built_binary(&planted_dir().join("fuzz"), PC_GUARD, "magic_steps");
    let scratch = Scratch::new();
    let seeds = scratch.write("in/seed", b"hello");
    let out = scratch.path().join("out");
    let o = output(
        Command::new(afl)
            .arg("-i")
            .arg(seeds.parent().unwrap())
            .arg("-o")
            .arg(&out)
            .args(["-V", "30", "--"])
            .arg(&binary)
            .env("AFL_NO_UI", "1")
            .env("AFL_SKIP_CPUFREQ", "1")
            .env("AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES", "1")
            .env("AFL_BENCH_UNTIL_CRASH", "1"),
    );
    let log = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(log.contains("Persistent mode binary detected"), "{log}");
    let stats = std::fs::read_to_string(out.join("default/fuzzer_stats")).unwrap();
    let get = |k: &str| stats.lines().find(|l| l.starts_with(k)).unwrap().split(':').nth(1).unwrap().trim().to_string();
    eprintln!("afl-fuzz on a pc-guard build: {} exec/s, stability {}", get("execs_per_sec"), get("stability"));
    assert_eq!(get("stability"), "100.00%");
    assert_eq!(get("saved_crashes"), "1", "afl-fuzz found the magic value");
}

#[test]
fn c_code_built_by_the_cc_crate_is_instrumented_and_its_bug_found() {
    if !have_or_skip(clang_present(), "clang", "apt-get install clang", REQUIRE_CLANG_ENV) {
        return;
    }
    let fuzz_dir = cparse_dir().join("fuzz");
    let o = output(rfuzz_cmd().args(["build", "parse"]).current_dir(&fuzz_dir));
    assert!(o.status.success());
    let c_edges = c_edges_reported(&stderr(&o), "parse");
    assert!(c_edges >= 6, "the C parser's edges are counted: {c_edges}");
    assert!(u64::from(guard_count(Path::new(&last_stdout_line(&o)))) > c_edges, "and the Rust ones too");

    // With C instrumentation: C edges and C compares (integers, memcmp,
    // strcmp) feed the engine, and the planted abort() is found.
    let scratch = Scratch::new();
    let out = scratch.path().join("with-c");
    let o =
        output(fuzz(&fuzz_dir, "parse", &[], &out).args(["--exit-on-crash", "--max-total-time", "60", "--seed", "1"]));
    assert_eq!(o.status.code(), Some(1), "the C bug is found");
    let crash = crash_files(&out.join("main")).into_iter().next().expect("a crash file");
    let data = std::fs::read(&crash).unwrap();
    assert!(data.starts_with(b"CPK1HEAD\x07\x02rfuzz\0"), "the whole record was solved: {data:?}");
    let repro = output(Command::new(built_binary(&fuzz_dir, &[], "parse")).arg(&crash));
    assert_eq!(repro.status.signal(), Some(libc::SIGABRT), "the crash reproduces");

    // Without it the C code is a blind spot: the same seed finds nothing in
    // a run of the same kind.
    let out = scratch.path().join("without-c");
    let o =
        output(fuzz(&fuzz_dir, "parse", NO_C, &out).args(["--exit-on-crash", "--max-total-time", "5", "--seed", "1"]));
    assert_eq!(o.status.code(), Some(0), "no crash without C instrumentation");
    assert!(crash_files(&out.join("main")).is_empty());
    assert_eq!(c_edges_reported(&stderr(&o), "parse"), 0, "no C edges without C instrumentation");

    // No clang: a one-line warning naming the fix; the build goes on.
    let o =
        output(rfuzz_cmd().args(["build", "parse"]).env("RFUZZ_CLANG", "/nonexistent/clang").current_dir(&fuzz_dir));
    assert!(o.status.success());
    let err = stderr(&o);
    let warning: Vec<&str> = err.lines().filter(|l| l.starts_with("warning: clang not found")).collect();
    assert_eq!(warning.len(), 1, "{err}");
    assert!(warning[0].contains("not instrumented") && warning[0].contains("apt-get install clang"), "{err}");
    assert_eq!(c_edges_reported(&err, "parse"), 0);
    assert!(last_stdout_line(&o).contains("/rfuzz-no-c/"), "an uninstrumented-C build has its own directory");
}

#[test]
fn address_sanitizer_finds_and_names_an_out_of_bounds_write_that_does_not_crash_without_it() {
    if !have_or_skip(nightly_present(), "a nightly toolchain", "rustup toolchain install nightly", REQUIRE_NIGHTLY_ENV)
    {
        return;
    }
    let fuzz_dir = cparse_dir().join("fuzz");
    let scratch = Scratch::new();
    let out = scratch.path().join("sync");
    let o = output(fuzz(&fuzz_dir, "oob", ASAN, &out).args(["--exit-on-crash", "--max-total-time", "60"]));
    assert_eq!(o.status.code(), Some(1), "ASan turns the write into a crash");
    let err = stderr(&o);
    assert!(err.contains("AddressSanitizer: heap-buffer-overflow"), "{err}");
    assert!(err.contains("--sanitizer address"), "the reproduce command builds with ASan too: {err}");
    let crash = crash_files(&out.join("main")).into_iter().next().expect("a crash file");
    let name = crash.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("id:000000,sig:06,") && name.ends_with(",asan-heap-buffer-overflow"), "{name}");

    let plain = output(Command::new(built_binary(&fuzz_dir, &[], "oob")).arg(&crash));
    assert_eq!(plain.status.code(), Some(0), "without ASan the same input runs fine");
    let asan = output(Command::new(built_binary(&fuzz_dir, ASAN, "oob")).arg(&crash));
    assert_eq!(asan.status.signal(), Some(libc::SIGABRT));
    let report = stderr(&asan);
    assert!(report.contains("ERROR: AddressSanitizer: heap-buffer-overflow"), "{report}");
    assert!(report.contains("oob_write"), "ASan's stack names the function: {report}");
    // `run` builds the same way and says how to reproduce with ASan.
    let o = output(
        rfuzz_cmd()
            .args(["run", "oob", "-j", "1", "--no-ui", "--exit-on-crash", "--max-total-time", "60", "-o"])
            .arg(scratch.path().join("run"))
            .args(ASAN)
            .current_dir(&fuzz_dir),
    );
    assert_eq!(o.status.code(), Some(1));
    let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(all.contains("repro --fuzz-dir") && all.contains("--sanitizer address oob"), "{all}");
    // `repro` sums the report up: its kind and the first frame in user code.
    let summary = |target: &str, crash: &Path| {
        let o = output(rfuzz_cmd().args(["repro", "--sanitizer", "address", target]).arg(crash).current_dir(&fuzz_dir));
        assert_eq!(o.status.code(), Some(128 + libc::SIGABRT));
        stderr(&o).lines().find(|l| l.starts_with("rfuzz: AddressSanitizer: ")).unwrap_or_default().to_string()
    };
    let line = summary("oob", &crash);
    assert!(
        line.starts_with("rfuzz: AddressSanitizer: heap-buffer-overflow in cparse::oob_write (")
            && line.contains("src/lib.rs:"),
        "{line}"
    );

    // The C code is built with ASan too: a heap overflow inside C is named.
    let out = scratch.path().join("c");
    let o = output(fuzz(&fuzz_dir, "cname", ASAN, &out).args(["--exit-on-crash", "--max-total-time", "60"]));
    assert_eq!(o.status.code(), Some(1));
    let crash = crash_files(&out.join("main")).into_iter().next().expect("a crash file");
    assert!(crash.to_string_lossy().ends_with(",asan-heap-buffer-overflow"), "{crash:?}");
    let line = summary("cname", &crash);
    assert!(
        line.starts_with("rfuzz: AddressSanitizer: heap-buffer-overflow in cp_name (") && line.contains("parser.c:"),
        "{line}"
    );
}

#[test]
fn a_sanitizer_without_nightly_is_a_clear_error() {
    let o = output(
        rfuzz_cmd()
            .args(["build", "--sanitizer", "address"])
            .env("RFUZZ_NIGHTLY_TOOLCHAIN", "stable")
            .current_dir(planted_dir()),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("--sanitizer address needs a nightly Rust toolchain")
            && err.contains("rustup toolchain install nightly"),
        "{err}"
    );
}
