//! `cargo rfuzz run -j N` and `cargo rfuzz sync-status`: synced instances,
//! restarts, clean shutdown, bounded runs for CI.

use rfuzz_tests::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn run_cmd(targets: &[&str], out: &Path) -> Command {
    for t in targets {
        planted_binary(t);
    }
    let mut c = rfuzz_cmd();
    c.arg("run").args(targets).args(["--no-ui", "-o"]).arg(out).current_dir(planted_dir());
    c
}

fn sync_status_json(out: &Path) -> serde_json::Value {
    let o = output(rfuzz_cmd().args(["sync-status", "--json", "-o"]).arg(out));
    assert!(o.status.success());
    serde_json::from_slice(&o.stdout).expect("valid JSON")
}

fn instance<'a>(status: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    status["instances"].as_array().unwrap().iter().find(|i| i["id"] == id).unwrap_or_else(|| panic!("instance {id}"))
}

fn queue_names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("id:"))
                .collect()
        })
        .unwrap_or_default()
}

fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stats_pid(instance_dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(instance_dir.join("fuzzer_stats")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("fuzzer_pid").map(|v| v.trim_start_matches([' ', ':']).trim().parse().ok()))?
}

fn spawn_quiet(c: &mut Command, log: &Path) -> Child {
    let f = std::fs::File::create(log).unwrap();
    c.stdout(Stdio::null()).stderr(f).spawn().unwrap()
}

#[test]
fn instances_import_what_only_the_other_could_find() {
    let scratch = Scratch::new();
    let seeds = scratch.path().join("seeds");
    std::fs::create_dir_all(&seeds).unwrap();
    // Each door needs a key no mutation can guess; the seeds are dealt out,
    // so only `main` gets the first key and only `s01` the second.
    std::fs::write(seeds.join("a"), b"alpha door key!!x").unwrap();
    std::fs::write(seeds.join("b"), b"beta door key!!!x").unwrap();
    let out = scratch.path().join("sync");
    let o = output(run_cmd(&["doors"], &out).args(["-j", "2", "--max-total-time", "10"]).arg("-i").arg(&seeds));
    assert_eq!(o.status.code(), Some(0));
    let st = sync_status_json(&out);
    for id in ["main", "s01"] {
        let i = instance(&st, id);
        assert!(i["corpus_imported"].as_u64().unwrap() > 0, "{id} imported from its peer: {i}");
        assert_eq!(i["alive"], false);
    }
    let peer_entries = |me: &str, peer: &str| {
        queue_names(&out.join(me).join("queue")).into_iter().filter(|n| n.contains(&format!(",sync:{peer},"))).count()
    };
    assert!(peer_entries("s01", "main") > 0 && peer_entries("main", "s01") > 0);
    assert_eq!(st["totals"]["instances"], 2);
}

#[test]
fn a_killed_instance_shows_dead_and_is_restarted_without_losing_entries() {
    let scratch = Scratch::new();
    let out = scratch.path().join("sync");
    let log = scratch.path().join("run.log");
    let mut run = spawn_quiet(run_cmd(&["pairs"], &out).args(["-j", "2", "--max-total-time", "60"]), &log);
    let s01 = out.join("s01");
    wait_for("s01 to find entries", Duration::from_secs(30), || queue_names(&s01.join("queue")).len() > 10);
    let before = queue_names(&s01.join("queue"));
    let pid = stats_pid(&s01).unwrap();
    // SAFETY: killing the instance process we just read the pid of.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    wait_for("the restart", Duration::from_secs(20), || stats_pid(&s01).is_some_and(|p| p != pid));
    let after = queue_names(&s01.join("queue"));
    assert!(before.is_subset(&after), "no queue entry lost");
    wait_for("s01 alive again", Duration::from_secs(20), || instance(&sync_status_json(&out), "s01")["alive"] == true);
    // SAFETY: asking the supervisor to stop.
    unsafe { libc::kill(run.id() as i32, libc::SIGINT) };
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("instance s01 was killed by SIGKILL; restarting it"), "{text}");
}

#[test]
fn sync_status_reports_a_dead_instance() {
    let scratch = Scratch::new();
    let out = scratch.path().join("sync");
    let mut c = rfuzz_cmd();
    planted_binary("pairs");
    c.args(["fuzz", "pairs", "--no-ui", "-S", "lonely", "-o"]).arg(&out).current_dir(planted_dir());
    let mut child = spawn_quiet(&mut c, &scratch.path().join("log"));
    wait_for("stats", Duration::from_secs(30), || stats_pid(&out.join("lonely")).is_some());
    assert_eq!(instance(&sync_status_json(&out), "lonely")["alive"], true);
    child.kill().unwrap();
    child.wait().unwrap();
    let st = sync_status_json(&out);
    assert_eq!(instance(&st, "lonely")["alive"], false);
    assert_eq!(st["totals"]["alive"], 0);
    let text = output(rfuzz_cmd().args(["sync-status", "-o"]).arg(&out));
    assert!(String::from_utf8_lossy(&text.stdout).contains("dead"));
}

/// Start time of a process (field 22 of /proc/PID/stat), to tell a process
/// from a later one that reused its pid.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()
}

fn shm_segments_created_by(pids: &BTreeSet<u32>) -> usize {
    let o = Command::new("ipcs").args(["-m", "-p"]).output().unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).and_then(|c| c.parse::<u32>().ok()))
        .filter(|cpid| pids.contains(cpid))
        .count()
}

#[test]
fn ctrl_c_leaves_no_process_and_no_shared_memory_behind() {
    let scratch = Scratch::new();
    let out = scratch.path().join("sync");
    let marker = ProcessMarker::new("ctrl-c");
    let mut run = spawn_quiet(marker.mark(run_cmd(&["trivial"], &out).args(["-j", "2"])), &scratch.path().join("log"));
    wait_for("both instances", Duration::from_secs(30), || {
        stats_pid(&out.join("main")).is_some() && stats_pid(&out.join("s01")).is_some()
    });
    let mut pids: BTreeSet<u32> = marker.processes().into_iter().map(|(p, _)| p).collect();
    pids.extend(["main", "s01"].iter().filter_map(|i| stats_pid(&out.join(i))));
    assert!(pids.len() >= 4, "instances and their targets run: {pids:?}");
    let started: Vec<(u32, Option<u64>)> = pids.iter().map(|&p| (p, start_time(p))).collect();
    // SAFETY: asking the supervisor to stop, as Ctrl-C does.
    unsafe { libc::kill(run.id() as i32, libc::SIGINT) };
    let start = Instant::now();
    let status = run.wait().unwrap();
    assert!(start.elapsed() < Duration::from_secs(15));
    assert_eq!(status.code(), Some(130));
    marker.assert_all_gone(Duration::from_secs(10));
    for (p, t) in started {
        assert!(t.is_none() || start_time(p) != t, "process {p} left behind");
    }
    assert_eq!(shm_segments_created_by(&pids), 0, "no shared-memory segment left");
}

#[test]
fn a_bounded_run_with_a_crash_exits_1_and_names_the_bug() {
    let scratch = Scratch::new();
    let out = scratch.path().join("sync");
    let o = output(run_cmd(&["magic"], &out).args(["-j", "2", "--max-total-time", "30"]));
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains(", 1 bug:\n  panicked at ") && stderr.contains("'planted bug: magic prefix'"), "{stderr}");
    let line = stderr.lines().find_map(|l| l.trim().strip_prefix("smallest reproducer: ")).expect("names a crash file");
    let path = PathBuf::from(line.rsplit_once(" (").unwrap().0);
    assert!(path.is_file(), "{path:?}");
    assert!(stderr.contains("Reproduce with: cargo rfuzz repro"));
}

#[test]
fn a_bounded_run_of_two_crash_free_targets_exits_0() {
    let scratch = Scratch::new();
    let out = scratch.path().join("sync");
    let o = output(run_cmd(&["pairs", "trivial"], &out).args(["-j", "2", "--max-total-time", "8"]));
    assert_eq!(o.status.code(), Some(0));
    let st = sync_status_json(&out);
    assert_eq!(instance(&st, "main")["afl_banner"], "pairs");
    assert_eq!(instance(&st, "s01")["afl_banner"], "trivial");
}

#[test]
fn zero_jobs_is_a_usage_error() {
    let scratch = Scratch::new();
    let o = output(run_cmd(&["trivial"], &scratch.path().join("s")).args(["-j", "0"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("-j 0"));
    let o = output(rfuzz_cmd().args(["sync-status", "-o"]).arg(scratch.path().join("nope")));
    assert_eq!(o.status.code(), Some(2));
    // Several targets and none named: the error lists them.
    let o = output(&mut run_cmd(&[], &scratch.path().join("s")));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("magic, magic16"), "the targets are listed");
}

#[test]
#[ignore = "needs AFL++ (cargo install cargo-afl && cargo afl config --build)"]
fn afl_plus_plus_instances_share_our_sync_dir() {
    let afl = afl_fuzz().expect("afl-fuzz not found");
    let scratch = Scratch::new();
    let out = scratch.path().join("sync");
    let seeds = scratch.path().join("seeds");
    std::fs::create_dir_all(&seeds).unwrap();
    std::fs::write(seeds.join("a"), b"alpha door key!!x").unwrap();
    let log = scratch.path().join("run.log");
    let mut run =
        spawn_quiet(run_cmd(&["doors"], &out).args(["-j", "1", "--max-total-time", "40"]).arg("-i").arg(&seeds), &log);
    let afl_seeds = scratch.path().join("afl_seeds");
    std::fs::create_dir_all(&afl_seeds).unwrap();
    std::fs::write(afl_seeds.join("b"), b"beta door key!!!x").unwrap();
    let mut afl_child = Command::new(&afl)
        .args(["-S", "afl1", "-V", "30", "-i"])
        .arg(&afl_seeds)
        .arg("-o")
        .arg(&out)
        .arg("--")
        .arg(planted_binary("doors"))
        .env("AFL_NO_UI", "1")
        .env("AFL_SKIP_CPUFREQ", "1")
        .env("AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES", "1")
        .env("AFL_NO_AFFINITY", "1")
        .env("AFL_SYNC_TIME", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    afl_child.wait().unwrap();
    run.wait().unwrap();
    let ours = queue_names(&out.join("main/queue"));
    assert!(ours.iter().any(|n| n.contains(",sync:afl1,")), "we imported AFL++'s finds: {ours:?}");
    let theirs = queue_names(&out.join("afl1/queue"));
    assert!(theirs.iter().any(|n| n.contains("sync:main")), "AFL++ imported ours: {theirs:?}");
    let st = sync_status_json(&out);
    assert!(instance(&st, "afl1")["execs_done"].as_u64().unwrap() > 0);
}
