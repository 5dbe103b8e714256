//! Crash regression across runs: a bounded run fails on a crash saved now or
//! on an old crash that still reproduces, and passes once the bug is fixed.
//! (Its own test binary: it rebuilds the `fixable` target with the `fixed`
//! feature, which no other test may see half-way.)

use rfuzz_tests::*;
use std::path::Path;
use std::process::Output;

fn run_fixable(sync: &Path, extra: &[&str]) -> Output {
    output(
        rfuzz_cmd()
            .args(["run", "fixable", "-j", "1", "--no-ui", "--no-pin", "-o"])
            .arg(sync)
            .args(extra)
            .current_dir(planted_dir().join("fuzz")),
    )
}

#[test]
fn a_fixed_bug_no_longer_fails_the_next_bounded_run() {
    let scratch = Scratch::new();
    let sync = scratch.path().join("sync");
    let found = run_fixable(&sync, &["--exit-on-crash", "--max-total-time", "60"]);
    assert_eq!(found.status.code(), Some(1), "the crash fails the run");
    let stderr = String::from_utf8_lossy(&found.stderr);
    assert!(stderr.contains(", 1 bug:") && stderr.contains("'planted bug: fixable' ("), "{stderr}");
    assert!(
        stderr.contains("smallest reproducer:") && stderr.contains("Reproduce with: cargo rfuzz repro"),
        "{stderr}"
    );
    let crashes = std::fs::read_dir(sync.join("main/crashes")).unwrap().count();
    assert!(crashes >= 2, "a crash file and README.txt");

    // The fix, rebuilt by the next run.
    let fixed = run_fixable(&sync, &["--features", "fixed", "--max-total-time", "3"]);
    let stderr = String::from_utf8_lossy(&fixed.stderr);
    assert_eq!(fixed.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("from earlier runs no longer reproduce"), "{stderr}");
    assert!(!stderr.contains(" bug:"), "no bug left: {stderr}");
}
