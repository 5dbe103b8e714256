//! From crash files to bugs: `triage`, `tmin` and `cmin` on fixture targets
//! with planted bugs.

use rfuzz_tests::afl_driver::AflDriver;
use rfuzz_tests::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Crash names as our engine writes them, and one as AFL++ writes them.
const OURS: &str = "sig:06,src:000001,time:1200,execs:5000,op:havoc,rep:2,panic";
const AFL: &str = "sig:06,src:000003,time:1234,execs:5678,op:havoc,rep:4";

fn put(dir: &Path, rel: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, data).unwrap();
    p
}

/// A sync directory in which `main` and `s01` found the two bugs of
/// `two_panics` (three files of the long one, two of the short one), with a
/// file that no longer crashes and a hang that no longer hangs.
fn two_bug_sync_dir(sync: &Path, foreign_afl: bool) {
    put(sync, &format!("main/crashes/id:000000,{OURS}"), b"xxxxxxxxxxxx!");
    put(sync, &format!("main/crashes/id:000001,{OURS}"), b"?!");
    put(sync, "main/crashes/README.txt", b"not a crash");
    put(sync, &format!("s01/crashes/id:000000,{OURS}"), b"abcdefgh!");
    put(sync, &format!("s01/crashes/id:000001,{OURS}"), b"?x!");
    put(sync, &format!("s01/crashes/id:000002,{OURS}"), b"fixed since");
    put(sync, "s01/hangs/id:000000,src:000002,time:9,execs:9,op:havoc", b"not a hang");
    if foreign_afl {
        // An AFL++ instance from another host: its own names and layout.
        put(sync, &format!("afl-box/crashes/id:000000,{AFL}"), b"??????????????????!");
        put(sync, "afl-box/fuzzer_stats", b"afl_banner : two_panics\n");
    }
}

fn triage_json(sync: &Path, target: Option<&str>) -> serde_json::Value {
    planted_binary("two_panics");
    let o = output(rfuzz_cmd().arg("triage").args(target).args(["--json", "-o"]).arg(sync).current_dir(planted_dir()));
    assert_eq!(o.status.code(), Some(0));
    serde_json::from_slice(&o.stdout).expect("triage --json prints JSON")
}

/// (message, file count, instances) per bug.
fn bugs(report: &serde_json::Value) -> BTreeMap<String, (usize, Vec<String>)> {
    report["bugs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let instances =
                b["instances"].as_array().unwrap().iter().map(|i| i.as_str().unwrap().to_string()).collect();
            (b["signature"]["message"].as_str().unwrap().to_string(), (b["files"].as_array().unwrap().len(), instances))
        })
        .collect()
}

#[test]
fn triage_groups_crash_files_of_two_instances_into_two_bugs() {
    let scratch = Scratch::new();
    let sync = scratch.path().join("sync");
    two_bug_sync_dir(&sync, false);
    // An instance of another target sharing the sync directory: not ours.
    put(&sync, &format!("s02/crashes/id:000000,{OURS}"), b"RFZ!");
    put(&sync, "s02/fuzzer_stats", b"afl_banner : magic\n");
    let report = triage_json(&sync, Some("two_panics"));
    let b = bugs(&report);
    assert_eq!(b.len(), 2, "{report:#}");
    assert_eq!(b["planted bug: a long shout"], (2, vec!["main".to_string(), "s01".to_string()]));
    assert_eq!(b["planted bug: a short question"], (2, vec!["main".to_string(), "s01".to_string()]));
    assert_eq!(report["files"], 6, "5 crash files and a hang; README.txt is not a crash file");
    let gone: Vec<&str> = report["not_reproducing"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert_eq!(gone.len(), 2, "{gone:?}");
    assert!(gone.iter().any(|p| p.ends_with("id:000002,sig:06,src:000001,time:1200,execs:5000,op:havoc,rep:2,panic")));
    let short = report["bugs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["signature"]["message"] == "planted bug: a short question");
    assert_eq!(short.unwrap()["smallest_size"], 2);
    assert!(short.unwrap()["signature"]["location"].as_str().unwrap().contains("src/lib.rs:"));

    // The same as a table: one row per bug.
    let o = output(rfuzz_cmd().args(["triage", "two_panics", "-o"]).arg(&sync).current_dir(planted_dir()));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.starts_with("6 files replayed: 2 bugs, 2 no longer crashing"), "{text}");
    assert_eq!(text.lines().filter(|l| l.contains("  panic  ")).count(), 2, "{text}");
}

#[test]
fn triage_counts_the_crash_dir_of_a_foreign_afl_instance() {
    let scratch = Scratch::new();
    let sync = scratch.path().join("sync");
    two_bug_sync_dir(&sync, true);
    // No target named: the instances' banner says which.
    let report = triage_json(&sync, None);
    let b = bugs(&report);
    assert_eq!(b.len(), 2, "{report:#}");
    assert_eq!(b["planted bug: a long shout"], (3, vec!["afl-box".into(), "main".into(), "s01".into()]));
    assert_eq!(b["planted bug: a short question"].0, 2);
}

#[test]
fn triage_tells_two_segfaults_apart_by_their_frames() {
    let scratch = Scratch::new();
    let sync = scratch.path().join("sync");
    put(&sync, "main/crashes/id:000000,sig:11,src:000001,time:1,execs:1,op:havoc", b"A1");
    put(&sync, "main/crashes/id:000001,sig:11,src:000001,time:2,execs:2,op:havoc", b"A22");
    put(&sync, "s01/crashes/id:000000,sig:11,src:000001,time:1,execs:1,op:havoc", b"B333");
    planted_binary("two_segvs");
    let o = output(rfuzz_cmd().args(["triage", "two_segvs", "--json", "-o"]).arg(&sync).current_dir(planted_dir()));
    assert_eq!(o.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut bugs: Vec<(String, usize)> = report["bugs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            assert_eq!(b["signature"]["kind"]["signal"], "SIGSEGV", "{b:#}");
            (b["signature"]["frames"][0].as_str().unwrap().to_string(), b["files"].as_array().unwrap().len())
        })
        .collect();
    bugs.sort();
    assert_eq!(
        bugs,
        vec![
            ("planted::two_segvs::write_through_null_a".to_string(), 2),
            ("planted::two_segvs::write_through_null_b".to_string(), 1)
        ]
    );
}

#[test]
fn triage_minimize_writes_one_small_reproducer_per_bug() {
    let scratch = Scratch::new();
    let sync = scratch.path().join("sync");
    two_bug_sync_dir(&sync, true);
    planted_binary("two_panics");
    let out = scratch.path().join("repro");
    let o = output(
        rfuzz_cmd()
            .args(["triage", "two_panics", "--markdown", "--minimize", "-o"])
            .arg(&sync)
            .arg("--out")
            .arg(&out)
            .current_dir(planted_dir()),
    );
    assert_eq!(o.status.code(), Some(0));
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(md.contains("### Crash triage: 2 bugs") && md.contains("| bug | kind |"), "{md}");
    let mut sizes: Vec<usize> =
        std::fs::read_dir(&out).unwrap().flatten().map(|e| std::fs::read(e.path()).unwrap().len()).collect();
    sizes.sort();
    assert_eq!(sizes, vec![2, 8], "the short bug needs `?!`, the long one 8 bytes");
}

#[test]
fn tmin_keeps_the_panic_and_refuses_a_different_one_on_the_way() {
    let scratch = Scratch::new();
    // `?` + padding + `!`: the long-shout panic. Deleting the padding below
    // 8 bytes reaches the short-question panic, which must not be taken.
    let mut padded = b"?".to_vec();
    padded.extend(std::iter::repeat_n(b'x', 40));
    padded.push(b'!');
    let input = put(scratch.path(), "crash", &padded);
    let min = scratch.path().join("crash.min");
    planted_binary("two_panics");
    let o = output(rfuzz_cmd().args(["tmin", "two_panics"]).arg(&input).arg("-o").arg(&min).current_dir(planted_dir()));
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(std::fs::read(&input).unwrap(), padded, "the input is never modified");
    let small = std::fs::read(&min).unwrap();
    assert_eq!(small.len(), 8, "{:?}", String::from_utf8_lossy(&small));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("42 bytes -> 8 bytes"), "{stderr}");
    let replay = output(Command::new(planted_binary("two_panics")).arg(&min));
    assert!(String::from_utf8_lossy(&replay.stderr).contains("planted bug: a long shout"));

    let o =
        output(rfuzz_cmd().args(["tmin", "two_panics"]).arg(&input).arg("-o").arg(&input).current_dir(planted_dir()));
    assert_eq!(o.status.code(), Some(2), "-o INPUT is refused");
    assert_eq!(std::fs::read(&input).unwrap(), padded);
}

#[test]
fn tmin_shrinks_an_input_that_does_not_crash_to_the_same_coverage() {
    let scratch = Scratch::new();
    // Forty pairs: hit counts fall in the same buckets (32-127 loop turns)
    // with fewer of them.
    let input = put(scratch.path(), "in", "a=1;".repeat(40).as_bytes());
    let min = scratch.path().join("min");
    planted_binary("pairs");
    let o = output(rfuzz_cmd().args(["tmin", "pairs"]).arg(&input).arg("-o").arg(&min).current_dir(planted_dir()));
    assert_eq!(o.status.code(), Some(0));
    let (before, after) = (std::fs::read(&input).unwrap(), std::fs::read(&min).unwrap());
    assert!(after.len() < before.len(), "{after:?}");
    assert_eq!(coverage_of(&planted_binary("pairs"), &[before]), coverage_of(&planted_binary("pairs"), &[after]));
}

#[test]
fn tmin_shrinks_a_hang_while_it_still_hangs() {
    let scratch = Scratch::new();
    let input = put(scratch.path(), "hang", b"H!and some more bytes that do not matter");
    let min = scratch.path().join("min");
    planted_binary("sleepy");
    let o = output(
        rfuzz_cmd().args(["tmin", "sleepy", "-t", "200"]).arg(&input).arg("-o").arg(&min).current_dir(planted_dir()),
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("kept hang"));
    assert_eq!(std::fs::read(&min).unwrap(), b"H!", "the two bytes that make it sleep");
}

/// The (edge, hit-count bucket) tuples `inputs` cover together, read with
/// the test suite's own AFL++-protocol driver (not the engine's executor).
fn coverage_of(binary: &Path, inputs: &[Vec<u8>]) -> BTreeSet<(usize, u8)> {
    let mut d = AflDriver::start(binary, true).expect("start the target");
    let mut out = BTreeSet::new();
    for data in inputs {
        let run = d.run(data).expect("run an input");
        assert!(run.ok(), "input {data:?} does not crash");
        for (i, &c) in run.map.iter().enumerate() {
            if c != 0 {
                out.insert((i, rfuzz::protocol::BUCKETS[c as usize]));
            }
        }
    }
    out
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect()
}

#[test]
fn cmin_keeps_exactly_the_coverage_with_fewer_files_and_a_second_run_changes_nothing() {
    let scratch = Scratch::new();
    let sync = scratch.path().join("sync");
    // A real queue from a short run, plus a corpus that repeats part of it.
    let o = output(
        rfuzz_cmd()
            .args(["fuzz", "pairs", "--no-ui", "--max-total-time", "3", "-o"])
            .arg(&sync)
            .current_dir(planted_dir()),
    );
    assert_eq!(o.status.code(), Some(0));
    let corpus = scratch.path().join("corpus");
    std::fs::create_dir(&corpus).unwrap();
    let queue = files(&sync.join("main/queue"));
    for (i, data) in queue.values().enumerate().filter(|(i, _)| i % 2 == 0) {
        std::fs::write(corpus.join(format!("copy{i}")), data).unwrap();
    }
    std::fs::write(corpus.join("dup-a"), b"a=1").unwrap();
    std::fs::write(corpus.join("dup-b"), b"a=1").unwrap();
    let mut before: Vec<Vec<u8>> = queue.values().cloned().collect();
    before.extend(files(&corpus).into_values());

    let cmin = || {
        output(
            rfuzz_cmd()
                .args(["cmin", "pairs", "-o"])
                .arg(&sync)
                .arg("-i")
                .arg(&corpus)
                .arg("--into")
                .arg(&corpus)
                .current_dir(planted_dir()),
        )
    };
    let o = cmin();
    assert_eq!(o.status.code(), Some(0));
    let after = files(&corpus);
    assert!(after.len() < before.len(), "{} files from {}", after.len(), before.len());
    for (name, data) in &after {
        assert_eq!(name.len(), 16, "content-hash names: {name}");
        assert!(before.contains(data));
    }
    let binary = planted_binary("pairs");
    assert_eq!(coverage_of(&binary, &before), coverage_of(&binary, &after.values().cloned().collect::<Vec<_>>()));

    let o = cmin();
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("unchanged"));
    assert_eq!(files(&corpus), after, "a second cmin changes nothing");
}

#[test]
fn cmin_killed_in_the_middle_leaves_the_corpus_byte_for_byte() {
    let scratch = Scratch::new();
    let corpus = scratch.path().join("corpus");
    for (name, data) in [("a", &b"x"[..]), ("b", b"Hx"), ("c", b"Hx"), ("d", b"H!"), ("e", b"yy")] {
        put(&corpus, name, data);
    }
    let before = files(&corpus);
    planted_binary("sleepy");
    // `H!` sleeps for a minute: with a 20 s timeout, cmin is still running it
    // when it is killed.
    let mut child = rfuzz_cmd()
        .args(["cmin", "sleepy", "-t", "20000", "-i"])
        .arg(&corpus)
        .arg("--into")
        .arg(&corpus)
        .current_dir(planted_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let staging = scratch.path().join(format!(".corpus.rfuzz-cmin-{}", child.id()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !staging.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(staging.exists(), "cmin stages its result beside the corpus");
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(files(&corpus), before, "the corpus is as it was");

    // The next cmin (hangs left out) finishes and clears the stale staging.
    let o = output(
        rfuzz_cmd()
            .args(["cmin", "sleepy", "-t", "200", "-i"])
            .arg(&corpus)
            .arg("--into")
            .arg(&corpus)
            .current_dir(planted_dir()),
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(!staging.exists());
    let after = files(&corpus);
    assert!(!after.values().any(|d| d == b"H!"), "a hanging input is left out");
    assert!(after.len() < before.len());
}
