//! Staying fast where the bugs are: crashes, hangs and long inputs on fixture
//! targets. One instance per test, bounded in time; the assertions are about
//! files, counts and findings, never about speed.

use rfuzz_tests::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

fn fuzz(target: &str, out: &Path) -> Command {
    planted_binary(target);
    let mut c = rfuzz_cmd();
    c.args(["fuzz", target, "--no-ui", "-o"]).arg(out).current_dir(planted_dir());
    c
}

/// Names of the `id:` files of a directory.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("id:"))
        .collect();
    v.sort();
    v
}

fn stats(instance: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(instance.join("fuzzer_stats"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn num(stats: &BTreeMap<String, String>, key: &str) -> u64 {
    stats.get(key).unwrap_or_else(|| panic!("fuzzer_stats has no {key}")).parse().unwrap()
}

/// Seeds that the target runs cleanly on (so the instance starts).
fn seeds(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        std::fs::write(dir.join(format!("seed{i}")), format!("seed number {i}")).unwrap();
    }
}

#[test]
fn a_panic_on_a_third_of_inputs_leaves_at_most_three_files_and_counts_every_crash() {
    let scratch = Scratch::new();
    let seed_dir = scratch.path().join("seeds");
    seeds(&seed_dir, 10);
    let out = scratch.path().join("sync");
    let o = output(fuzz("often_panics", &out).arg("-i").arg(&seed_dir).args(["--max-total-time", "20"]));
    // A bounded run that saved crashes exits 1.
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let crashes = names(&out.join("main/crashes"));
    assert!(!crashes.is_empty() && crashes.len() <= 3, "at most 3 files for one panic site: {crashes:?}");
    let bug_fields: BTreeSet<&str> =
        crashes.iter().filter_map(|n| n.split(',').find(|f| f.starts_with("bug:"))).collect();
    assert_eq!(bug_fields.len(), 1, "one bug: {crashes:?}");
    let s = stats(&out.join("main"));
    assert_eq!(num(&s, "saved_crashes"), crashes.len() as u64);
    assert_eq!(num(&s, "crash_signatures"), 1);
    // About 30% of executions crash: the count covers all of them, not the files.
    let (total, execs) = (num(&s, "total_crashes"), num(&s, "execs_done"));
    assert!(total >= 1000 && total * 10 >= execs, "total_crashes {total} of {execs} execs");
    // `triage` calls it the same one bug, with the same id.
    let o = output(rfuzz_cmd().args(["triage", "often_panics", "--json", "-o"]).arg(&out).current_dir(planted_dir()));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("triage --json prints JSON");
    let bugs = report["bugs"].as_array().unwrap();
    assert_eq!(bugs.len(), 1, "{report}");
    let id = bugs[0]["id"].as_str().unwrap();
    assert_eq!(bug_fields.into_iter().next().unwrap(), format!("bug:{id}"));
    // sync-status shows files and bugs.
    let o = output(rfuzz_cmd().args(["sync-status", "-o"]).arg(&out).current_dir(planted_dir()));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains(&format!("{} (1 bug)", crashes.len())), "{text}");
}

#[test]
fn a_hang_a_few_mutations_away_leaves_one_file_and_few_timeouts() {
    let scratch = Scratch::new();
    let seed_dir = scratch.path().join("seeds");
    seeds(&seed_dir, 2);
    let out = scratch.path().join("sync");
    let o = output(fuzz("loop_near", &out).arg("-i").arg(&seed_dir).args(["-t", "20", "--max-total-time", "30"]));
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let hangs = names(&out.join("main/hangs"));
    assert!(!hangs.is_empty(), "the loop is found");
    assert_eq!(hangs.len(), 1, "one file for one loop: {hangs:?}");
    let s = stats(&out.join("main"));
    assert_eq!(num(&s, "hang_signatures"), 1);
    // Entries whose mutants keep timing out are set aside, and past 150
    // timeouts a minute (5% of the time at 20 ms) every further one sets its
    // parent aside: the run spends its time on inputs that finish. A bound,
    // not a speed: 30 s with a 20 ms timeout could hold over a thousand.
    let (tmout, aside) = (num(&s, "total_tmout"), num(&s, "corpus_set_aside"));
    assert!(tmout <= 150 + aside && tmout <= 300, "{tmout} timeouts in 30 s, {aside} entries set aside");
    // Hang files name their hang (the key of the looping function), and a
    // resumed instance knows it: the cap holds over both runs.
    assert!(hangs.iter().all(|n| n.split(',').any(|f| f.starts_with("bug:"))), "{hangs:?}");
    let o = output(fuzz("loop_near", &out).arg("-i").arg(&seed_dir).args(["-t", "20", "--max-total-time", "10"]));
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let again = names(&out.join("main/hangs"));
    assert_eq!(again, hangs, "one file for one loop over two runs");
    assert_eq!(num(&stats(&out.join("main")), "hang_signatures"), 1);
}

#[test]
fn a_fault_inside_memcpy_is_one_bug_per_caller() {
    // The fault lands at different instructions of the C library's memcpy
    // for different lengths; the bug is named by the first frames of the
    // user's code, so two callers are two bugs, each capped at 3 files.
    let scratch = Scratch::new();
    let seed_dir = scratch.path().join("seeds");
    std::fs::create_dir_all(&seed_dir).unwrap();
    std::fs::write(seed_dir.join("x"), b"x").unwrap();
    let out = scratch.path().join("sync");
    let o = output(fuzz("memcpy_faults", &out).arg("-i").arg(&seed_dir).args(["--max-total-time", "20"]));
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let crashes = names(&out.join("main/crashes"));
    let mut per_bug: BTreeMap<&str, usize> = BTreeMap::new();
    for n in &crashes {
        *per_bug.entry(n.split(',').find(|f| f.starts_with("bug:")).expect("a bug field")).or_default() += 1;
    }
    assert_eq!(per_bug.len(), 2, "one bug per caller: {crashes:?}");
    assert!(per_bug.values().all(|&n| n <= 3), "{crashes:?}");
    let s = stats(&out.join("main"));
    assert_eq!(num(&s, "crash_signatures"), 2);
    assert!(num(&s, "total_crashes") > crashes.len() as u64);
    // `triage` names them by the same frames, with the same ids.
    let o = output(rfuzz_cmd().args(["triage", "memcpy_faults", "--json", "-o"]).arg(&out).current_dir(planted_dir()));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("triage --json prints JSON");
    let mut found: Vec<(String, String)> = report["bugs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            assert_eq!(b["signature"]["kind"]["signal"], "SIGSEGV", "{b:#}");
            (format!("bug:{}", b["id"].as_str().unwrap()), b["signature"]["frames"][0].as_str().unwrap().to_string())
        })
        .collect();
    found.sort();
    let ids: Vec<&str> = found.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, per_bug.keys().copied().collect::<Vec<_>>(), "{report:#}");
    let mut frames: Vec<&str> = found.iter().map(|(_, f)| f.as_str()).collect();
    frames.sort();
    assert_eq!(frames, ["planted::memcpy_faults::copy_from_wild_a", "planted::memcpy_faults::copy_from_wild_b"]);
}

#[test]
fn deep_recursion_past_20k_levels_is_found_from_a_four_byte_seed() {
    let scratch = Scratch::new();
    let seed_dir = scratch.path().join("seeds");
    std::fs::create_dir_all(&seed_dir).unwrap();
    std::fs::write(seed_dir.join("small"), b"(())").unwrap();
    let out = scratch.path().join("sync");
    let o = output(fuzz("deep_nesting", &out).arg("-i").arg(&seed_dir).args([
        "--exit-on-crash",
        "--max-total-time",
        "120",
    ]));
    assert_eq!(o.status.code(), Some(1), "a stack overflow within 120 s: {}", String::from_utf8_lossy(&o.stderr));
    let crashes = names(&out.join("main/crashes"));
    let so = crashes.iter().find(|n| n.ends_with(",stack-overflow")).expect("a stack overflow");
    let data = std::fs::read(out.join("main/crashes").join(so)).unwrap();
    let opening = data.iter().take_while(|&&b| b == b'(').count();
    assert!(opening > 20_000, "{opening} levels");
}
