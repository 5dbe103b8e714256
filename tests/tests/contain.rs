//! Containing the target: no process a target starts outlives its input or
//! the run, on every way a run ends (bounded, Ctrl-C, SIGKILL of `run`).
//!
//! Every process of a test carries a marker in its environment that is
//! unique to that test (`cargo rfuzz run` passes its environment on to the
//! instances, their targets and what the targets start), so the checks see
//! only processes this test started, whatever else runs on the machine.

use rfuzz_tests::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn sleeps(marker: &ProcessMarker) -> usize {
    marker.processes().iter().filter(|(_, c)| c == "sleep").count()
}

fn stat(dir: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("fuzzer_stats")).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim().parse().ok())?
    })
}

fn forker_run(scratch: &Scratch, marker: &ProcessMarker, max_total_time: u64) -> Command {
    planted_binary("forker");
    let seeds = scratch.path().join("seeds");
    std::fs::create_dir_all(&seeds).unwrap();
    // One seed that spawns directly, one through a backgrounding shell, one
    // that does not spawn.
    std::fs::write(seeds.join("direct"), b"\x03x\x03").unwrap();
    std::fs::write(seeds.join("orphan"), b"\x06D").unwrap();
    std::fs::write(seeds.join("none"), b"a").unwrap();
    let mut c = rfuzz_cmd();
    c.args(["run", "forker", "-j", "2", "--no-ui", "--max-total-time", &max_total_time.to_string(), "-o"])
        .arg(scratch.path().join("sync"))
        .arg("-i")
        .arg(&seeds)
        .current_dir(planted_dir());
    marker.mark(&mut c);
    c
}

fn spawn_logged(c: &mut Command, log: &Path) -> Child {
    let f = std::fs::File::create(log).unwrap();
    c.stdout(Stdio::null()).stderr(f).spawn().unwrap()
}

/// Waits until both instances ran inputs that started processes.
fn wait_for_spawns(sync: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let both = ["main", "s01"].iter().all(|id| stat(&sync.join(id), "target_procs").unwrap_or(0) > 0);
        if both {
            return;
        }
        assert!(child.try_wait().unwrap().is_none(), "the run ended before its instances started processes");
        assert!(Instant::now() < deadline, "no instance reported processes started by the target");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_bounded_run_leaves_no_process_the_target_started() {
    let scratch = Scratch::new();
    let marker = ProcessMarker::new("bounded");
    let log = scratch.path().join("run.log");
    let mut child = spawn_logged(&mut forker_run(&scratch, &marker, 20), &log);
    let sync = scratch.path().join("sync");
    wait_for_spawns(&sync, &mut child);
    // While it runs, what an input started ends with the input: a handful
    // at most, not one per spawning input.
    let mut most = 0;
    for _ in 0..20 {
        most = most.max(sleeps(&marker));
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = child.wait().unwrap();
    eprintln!("{}", std::fs::read_to_string(&log).unwrap_or_default());
    assert_eq!(status.code(), Some(0), "a crash-free bounded run exits 0");
    marker.assert_all_gone(Duration::from_secs(10));
    for id in ["main", "s01"] {
        let dir = sync.join(id);
        let started = stat(&dir, "target_procs").unwrap();
        let killed = stat(&dir, "target_procs_killed").unwrap();
        eprintln!("{id}: target_procs {started}, killed {killed}, execs {:?}", stat(&dir, "execs_done"));
        assert!(started >= 10, "{id} ran many inputs that started a process: {started}");
        assert!(
            killed >= started / 2,
            "{id}: what the inputs started was killed when they ended ({killed} of {started})"
        );
    }
    assert!(most <= 20, "at most a few helper processes alive at once while fuzzing, saw {most}");
}

#[test]
fn ctrl_c_of_run_leaves_no_process_the_target_started() {
    let scratch = Scratch::new();
    let marker = ProcessMarker::new("sigint");
    let mut child = spawn_logged(&mut forker_run(&scratch, &marker, 300), &scratch.path().join("run.log"));
    wait_for_spawns(&scratch.path().join("sync"), &mut child);
    // SAFETY: signalling the child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "an interrupted run exits 130");
    marker.assert_all_gone(Duration::from_secs(10));
}

#[test]
fn sigkill_of_run_leaves_no_process_the_target_started() {
    let scratch = Scratch::new();
    let marker = ProcessMarker::new("sigkill");
    let mut child = spawn_logged(&mut forker_run(&scratch, &marker, 300), &scratch.path().join("run.log"));
    wait_for_spawns(&scratch.path().join("sync"), &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    // The instances get SIGTERM when the supervisor dies and stop as on
    // Ctrl-C; their targets' processes go with them.
    marker.assert_all_gone(Duration::from_secs(20));
}

#[test]
fn max_procs_caps_the_processes_a_target_runs_at_once() {
    let scratch = Scratch::new();
    let marker = ProcessMarker::new("cap");
    let sync = scratch.path().join("sync");
    let mut c = forker_run(&scratch, &marker, 300);
    c.args(["--max-procs", "2"]);
    let log = scratch.path().join("run.log");
    let mut child = spawn_logged(&mut c, &log);
    // The `direct` seed starts four helpers in one input: two are refused.
    let deadline = Instant::now() + Duration::from_secs(90);
    while ["main", "s01"].iter().all(|id| stat(&sync.join(id), "target_procs_refused").unwrap_or(0) == 0) {
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        assert!(Instant::now() < deadline, "no spawn was refused at --max-procs 2");
        std::thread::sleep(Duration::from_millis(200));
    }
    // SAFETY: signalling the child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    eprintln!("{text}");
    assert_eq!(status.code(), Some(130), "refused spawns are not crashes");
    for id in ["main", "s01"] {
        assert_eq!(stat(&sync.join(id), "saved_crashes"), Some(0), "{id} saved no crash");
    }
    marker.assert_all_gone(Duration::from_secs(10));
}
