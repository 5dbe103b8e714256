//! One fuzzing instance (`cargo rfuzz fuzz`) on fixture targets with planted
//! bugs: finding them, the output directory, resume, and bad targets.

use rfuzz_tests::*;
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn fuzz(target: &str, out: &Path) -> Command {
    planted_binary(target);
    let mut c = rfuzz_cmd();
    c.args(["fuzz", target, "--no-ui", "-o"]).arg(out).current_dir(planted_dir());
    c
}

fn entries(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("id:"))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect()
}

fn stats(instance: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(instance.join("fuzzer_stats"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Fuzzes `target` until the first crash (at most 60 s) and checks that the
/// crash file reproduces through the standalone binary.
fn finds_bug(target: &str, message: &str) {
    let scratch = Scratch::new();
    let out = scratch.path().join("sync");
    let start = Instant::now();
    let o = output(fuzz(target, &out).args(["--exit-on-crash", "--max-total-time", "60"]));
    let took = start.elapsed();
    assert_eq!(o.status.code(), Some(1), "exit code 1 when a crash was saved");
    assert!(took < Duration::from_secs(60), "{target}: took {took:?}");
    let crashes = entries(&out.join("main/crashes"));
    let (name, _) = crashes.iter().next().expect("a crash file");
    assert!(name.starts_with("id:000000,sig:06,"), "{name}");
    assert!(out.join("main/crashes/README.txt").is_file());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("Reproduce with:"), "prints a reproduce command");
    let repro = output(Command::new(planted_binary(target)).arg(out.join("main/crashes").join(name)));
    assert_eq!(repro.status.signal(), Some(libc::SIGABRT));
    assert!(String::from_utf8_lossy(&repro.stderr).contains(message), "{target}: crash reproduces");
    eprintln!("{target}: first crash after {took:?}");
}

#[test]
fn finds_a_four_byte_magic_prefix() {
    finds_bug("magic", "planted bug: magic prefix");
}

#[test]
fn finds_three_nested_byte_compares() {
    finds_bug("nested", "planted bug: nested compares");
}

#[test]
fn finds_a_length_field_check() {
    finds_bug("length_field", "planted bug: length field");
}

#[test]
fn finds_an_arithmetic_overflow() {
    finds_bug("overflow", "attempt to multiply with overflow");
}

#[test]
fn the_afl_protocol_executor_fuzzes_too() {
    let scratch = Scratch::new();
    let out = scratch.path().join("sync");
    let o = output(fuzz("nested", &out).args(["--afl-protocol", "--exit-on-crash", "--max-total-time", "60"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stats(&out.join("main"))["target_mode"].starts_with("AFL++ persistent"));
}

#[test]
fn output_directory_has_the_afl_layout_and_consistent_stats() {
    let scratch = Scratch::new();
    let out = scratch.path().join("sync");
    let o = output(fuzz("pairs", &out).args(["-D", "--max-total-time", "6"]));
    assert_eq!(o.status.code(), Some(0), "no crash: exit 0");
    let main = out.join("main");
    for f in [
        "queue",
        "crashes",
        "hangs",
        ".synced",
        "fuzzer_stats",
        "plot_data",
        "fuzzer_setup",
        "cmdline",
        "target_hash",
        "is_main_node",
    ] {
        assert!(main.join(f).exists(), "{f} exists");
    }
    let s = stats(&main);
    for key in [
        "start_time",
        "last_update",
        "run_time",
        "fuzzer_pid",
        "cycles_done",
        "execs_done",
        "execs_per_sec",
        "corpus_count",
        "corpus_favored",
        "corpus_found",
        "corpus_imported",
        "pending_favs",
        "pending_total",
        "stability",
        "bitmap_cvg",
        "saved_crashes",
        "saved_hangs",
        "last_find",
        "last_crash",
        "edges_found",
        "total_edges",
        "exec_timeout",
        "afl_banner",
        "target_mode",
        "command_line",
    ] {
        assert!(s.contains_key(key), "fuzzer_stats has {key}");
    }
    let queue = entries(&main.join("queue"));
    assert_eq!(s["corpus_count"].parse::<usize>().unwrap(), queue.len());
    assert_eq!(s["saved_crashes"], "0");
    assert!(queue.len() > 10, "pairs has plenty to find: {}", queue.len());
    assert!(queue.keys().any(|n| n.contains(",op:") && n.contains(",src:")), "mutation entries name their origin");
    assert!(queue.keys().any(|n| n.ends_with(",+cov")));
    let found: usize = s["corpus_found"].parse().unwrap();
    let seeds = queue.keys().filter(|n| n.contains(",orig:")).count();
    assert_eq!(found + seeds, queue.len(), "seeds plus what was found");
    assert!(s["execs_done"].parse::<u64>().unwrap() > 1000);
    assert_eq!(s["stability"], "100.00%");
    assert!(std::fs::read_to_string(main.join("plot_data")).unwrap().starts_with("# relative_time, cycles_done"));
    assert!(std::fs::read_to_string(main.join("fuzzer_setup")).unwrap().contains("host: "));
    assert_eq!(
        std::fs::read_to_string(main.join("cmdline")).unwrap().trim(),
        planted_binary("pairs").to_string_lossy()
    );
    // Queue ids are unique and dense.
    let ids: Vec<u32> = queue.keys().map(|n| n[3..9].parse().unwrap()).collect();
    assert_eq!(ids, (0..queue.len() as u32).collect::<Vec<_>>());
}

#[test]
fn sigkill_and_restart_resumes_the_same_queue() {
    let scratch = Scratch::new();
    let out = scratch.path().join("sync");
    let marker = ProcessMarker::new("sigkill-restart");
    let mut child = marker.mark(&mut fuzz("pairs", &out)).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let queue = out.join("main/queue");
    let deadline = Instant::now() + Duration::from_secs(30);
    while (!queue.exists() || entries(&queue).len() < 20) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = entries(&queue);
    assert!(before.len() >= 20);
    // No target process outlives a killed fuzzer.
    marker.assert_all_gone(Duration::from_secs(10));

    let o = output(fuzz("pairs", &out).args(["--max-total-time", "3"]));
    assert_eq!(o.status.code(), Some(0));
    let after = entries(&queue);
    for (name, data) in &before {
        assert_eq!(after.get(name), Some(data), "{name} kept as it was");
    }
    let mut contents: Vec<&Vec<u8>> = after.values().collect();
    contents.sort();
    contents.dedup();
    assert_eq!(contents.len(), after.len(), "no entry duplicated");
    let s = stats(&out.join("main"));
    assert_eq!(s["corpus_count"].parse::<usize>().unwrap(), after.len());
}

#[test]
fn a_second_process_cannot_take_a_running_instance_id() {
    let scratch = Scratch::new();
    let out = scratch.path().join("sync");
    let mut first = fuzz("pairs", &out)
        .args(["--max-total-time", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stats_file = out.join("main/fuzzer_stats");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !stats_file.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let o = output(fuzz("pairs", &out).args(["--max-total-time", "5"]));
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is in use by a running fuzzer"));
}

#[test]
fn a_target_that_always_crashes_is_a_clear_error_with_the_crash_saved() {
    let scratch = Scratch::new();
    let out = scratch.path().join("sync");
    let o = output(fuzz("always_crash", &out).args(["--max-total-time", "30"]));
    assert_eq!(o.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("crashes on every seed") && stderr.contains("Reproduce with"), "{stderr}");
    assert_eq!(entries(&out.join("main/crashes")).len(), 1);
}

#[test]
fn a_target_that_always_hangs_is_a_clear_error() {
    let scratch = Scratch::new();
    let out = scratch.path().join("sync");
    let start = Instant::now();
    let o = output(fuzz("always_hang", &out).args(["-t", "200", "--max-total-time", "30"]));
    assert_eq!(o.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&o.stderr).contains("hangs"));
    assert!(start.elapsed() < Duration::from_secs(30), "never hangs the fuzzer");
}

#[test]
fn a_target_that_exits_during_start_up_is_a_clear_error() {
    let scratch = Scratch::new();
    let o = output(fuzz("exit_early", &scratch.path().join("sync")).args(["--max-total-time", "30"]));
    assert_eq!(o.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&o.stderr).contains("during start-up"));
}

#[test]
fn an_uninstrumented_binary_is_a_clear_error() {
    let scratch = Scratch::new();
    let o =
        output(rfuzz_cmd().args(["fuzz", "--no-ui", "--binary", "/bin/cat", "-o"]).arg(scratch.path().join("sync")));
    assert_eq!(o.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not instrumented"));
}

#[test]
fn bad_output_directories_and_ids_are_usage_errors() {
    let scratch = Scratch::new();
    let file = scratch.write("file", "x");
    let o = output(fuzz("trivial", &file).args(["--max-total-time", "1"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is a file"));
    let o = output(fuzz("trivial", &scratch.path().join("s")).args(["-S", "../evil", "--max-total-time", "1"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(!scratch.path().join("evil").exists());
}

#[test]
fn hangs_oom_and_stack_overflows_are_classified() {
    let scratch = Scratch::new();
    let out = scratch.path().join("sync");
    let o = output(fuzz("sleepy", &out).args(["-t", "50", "--max-total-time", "8"]));
    assert_eq!(o.status.code(), Some(0));
    assert!(!entries(&out.join("main/hangs")).is_empty(), "a hang saved under hangs/");

    let out = scratch.path().join("oom");
    let o = output(fuzz("oom", &out).args(["--exit-on-crash", "--max-total-time", "60"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(entries(&out.join("main/crashes")).keys().any(|n| n.ends_with(",oom")));

    let seeds = scratch.path().join("deep");
    std::fs::create_dir_all(&seeds).unwrap();
    // Overflowing the stack needs thousands of nested brackets: the engine
    // has to grow the input from four bytes by repeating chunks.
    std::fs::write(seeds.join("harmless"), b"[[]]").unwrap();
    let out = scratch.path().join("so");
    let o = output(fuzz("recursion", &out).arg("-i").arg(&seeds).args(["--exit-on-crash", "--max-total-time", "60"]));
    assert_eq!(o.status.code(), Some(1));
    let crashes: Vec<String> = entries(&out.join("main/crashes")).into_keys().collect();
    assert!(crashes.iter().any(|n| n.contains("sig:11") && n.ends_with(",stack-overflow")), "{crashes:?}");
}

#[test]
fn an_empty_seed_directory_gets_built_in_seeds() {
    let scratch = Scratch::new();
    let seeds = scratch.path().join("empty");
    std::fs::create_dir_all(&seeds).unwrap();
    let out = scratch.path().join("sync");
    let o = output(fuzz("nested", &out).arg("-i").arg(&seeds).args(["--exit-on-crash", "--max-total-time", "60"]));
    assert_eq!(o.status.code(), Some(1));
    let queue: Vec<PathBuf> = std::fs::read_dir(out.join("main/queue")).unwrap().flatten().map(|e| e.path()).collect();
    assert!(queue.iter().any(|p| p.to_string_lossy().contains("orig:builtin")));
}

fn execs_done(instance: &Path) -> u64 {
    stats(instance)["execs_done"].parse().unwrap()
}

#[test]
fn the_compare_solver_alone_solves_wide_magic_values_and_a_tag_switch() {
    for (target, message) in [
        ("magic", "planted bug: magic prefix"),
        ("magic8", "planted bug: 8-byte magic"),
        ("magic16", "planted bug: 16-byte magic"),
        ("switch4", "planted bug: IEND tag"),
    ] {
        let scratch = Scratch::new();
        let out = scratch.path().join("sync");
        // No havoc, no dictionary stage: only input-to-state replacements
        // from the compare log of the built-in seeds.
        let o =
            output(fuzz(target, &out).args(["--no-havoc", "--no-sync", "--exit-on-crash", "--max-total-time", "30"]));
        assert_eq!(o.status.code(), Some(1), "{target}: the solver finds the crash");
        let crashes = entries(&out.join("main/crashes"));
        let (name, data) = crashes.iter().next().unwrap();
        assert!(name.contains(",op:i2s"), "{target}: {name}");
        assert!(execs_done(&out.join("main")) < 1000, "{target}: a handful of executions");
        let repro = output(Command::new(planted_binary(target)).arg(out.join("main/crashes").join(name)));
        assert!(String::from_utf8_lossy(&repro.stderr).contains(message), "{target}: {data:?}");
    }
}

#[test]
fn partial_progress_alone_reaches_32_and_64_bit_magic_values() {
    for target in ["magic", "magic8"] {
        let scratch = Scratch::new();
        let out = scratch.path().join("sync");
        // No compare log: havoc guided by the number of equal bits only.
        let o = output(fuzz(target, &out).args([
            "--no-cmplog",
            "--cmp-progress",
            "--no-sync",
            "--exit-on-crash",
            "--max-total-time",
            "60",
        ]));
        assert_eq!(o.status.code(), Some(1), "{target}: found by progress feedback");
    }
}

#[test]
fn non_utf8_arguments_are_fuzzed_not_a_panic() {
    // Regression: the recorded command line was built from
    // `std::env::args()`, which panics on an argument that is not UTF-8
    // (under `run`, every instance then died and the run gave up).
    use std::os::unix::ffi::OsStrExt;
    let scratch = Scratch::new();
    let out = scratch.path().join(std::ffi::OsStr::from_bytes(b"sync-\xff\xfe"));
    let o = output(fuzz("pairs", &out).args(["--max-total-time", "2"]));
    assert_eq!(o.status.code(), Some(0));
    let s = stats(&out.join("main"));
    assert!(s["execs_done"].parse::<u64>().unwrap() > 0);
    assert!(s["command_line"].contains("sync-"), "{}", s["command_line"]);

    let o = output(
        rfuzz_cmd()
            .args(["run", "pairs", "-j", "1", "--no-ui", "--max-total-time", "2", "-o"])
            .arg(scratch.path().join(std::ffi::OsStr::from_bytes(b"run-\xff")))
            .current_dir(planted_dir()),
    );
    assert_eq!(o.status.code(), Some(0), "a run whose sync dir is not UTF-8 fuzzes");
}

#[test]
fn ctrl_c_in_a_terminal_stops_fuzz_cleanly() {
    // Ctrl-C reaches the terminal's whole foreground group, the target's
    // forkserver included: the instance must stop as interrupted (130), not
    // report its target as gone (4).
    use std::os::unix::process::CommandExt;
    let scratch = Scratch::new();
    let out = scratch.path().join("sync");
    let log = scratch.path().join("log");
    let mut child = fuzz("pairs", &out)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !out.join("main/fuzzer_stats").exists() {
        assert!(child.try_wait().unwrap().is_none(), "fuzz ended early");
        assert!(Instant::now() < deadline, "fuzz never wrote its stats");
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: signalling the process group we created, as a terminal does.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) };
    let status = child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(!text.contains("error:"), "{text}");
}
