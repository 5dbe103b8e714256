//! `cargo rfuzz run`: N fuzzing instances over one sync directory.
//!
//! The supervisor owns the instances (each a `cargo-rfuzz fuzz` process in
//! its own process group, pinned to a free core when there is one) and runs
//! an event loop: every 200 ms it reaps instances that exited and checks for
//! stop requests; every second it scans the sync directory and redraws the
//! dashboard. An instance that dies is reported and restarted (it resumes
//! from its queue); one that fails at start-up stops the run with its error.
//! Ctrl-C sends SIGTERM to every instance group, waits for a grace period,
//! then SIGKILLs; a second Ctrl-C kills at once.
//!
//! With `--remote-sync`, a `cargo-rfuzz sync-remote` child (its own process
//! group too, output in the sync dir's `.rfuzz-sync-remote.log`) shares
//! entries with other hosts; its round summaries and errors become notices,
//! and it is stopped with the instances, or when the last of them exits.

pub mod cpu;

use crate::engine::config::UiMode;
use crate::exit;
use crate::report::dashboard;
use crate::report::screen::Screen;
use crate::sync::{layout, status};
use crate::sys::process::{self, signal_group};
use crate::sys::signal;
use anyhow::{Context, Result};
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long instances get to stop after SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(10);
/// An instance that exits this soon after starting failed to start.
const STARTUP: Duration = Duration::from_secs(15);
/// Restarts after quick deaths before the run gives up on an instance.
const MAX_QUICK_RESTARTS: u32 = 3;

/// One instance to run.
#[derive(Debug, Clone)]
pub struct InstancePlan {
    /// Instance id (`main`, `s01`, ...).
    pub id: String,
    /// Fuzz target name.
    pub target: String,
    /// Arguments after `cargo-rfuzz rfuzz fuzz`.
    pub args: Vec<OsString>,
    /// Core to pin it to.
    pub cpu: Option<usize>,
}

/// A whole run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The shared sync directory.
    pub sync_dir: PathBuf,
    /// Instances.
    pub instances: Vec<InstancePlan>,
    /// Time limit of the run.
    pub max_total_time: Option<Duration>,
    /// Stop everything at the first crash.
    pub exit_on_crash: bool,
    /// Dashboard on a terminal, or plain lines.
    pub ui: UiMode,
    /// Title line of the dashboard.
    pub title: String,
    /// Reproduce command per target, with `{}` for the file.
    pub repro: Vec<(String, String)>,
    /// Replayer per target, for the end-of-run triage of crash files (the
    /// first one also replays files of instances of unknown targets).
    pub replayers: Vec<(String, crate::triage::replay::Replayer)>,
    /// Arguments after `cargo-rfuzz rfuzz` of a `sync-remote` to run beside
    /// the instances.
    pub remote_sync: Option<Vec<OsString>>,
}

struct Instance {
    plan: InstancePlan,
    child: Option<Child>,
    started: Instant,
    restarts: u32,
    quick_failures: u32,
    exit: Option<i32>,
}

fn log_path(plan: &Plan, id: &str) -> PathBuf {
    plan.sync_dir.join(id).join("rfuzz.log")
}

/// Last non-empty lines of an instance's log.
fn log_tail(plan: &Plan, id: &str, lines: usize) -> String {
    process::tail_lines(&process::read_tail(&log_path(plan, id), 64 << 10), lines)
}

fn spawn(plan: &Plan, inst: &InstancePlan) -> Result<Child> {
    let dir = plan.sync_dir.join(&inst.id);
    std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(plan, &inst.id))
        .with_context(|| format!("failed to open the log of instance {}", inst.id))?;
    let exe = std::env::current_exe().context("failed to locate the cargo-rfuzz executable")?;
    let supervisor = std::process::id() as libc::pid_t;
    let mut cmd = Command::new(exe);
    cmd.arg("rfuzz").arg("fuzz").args(&inst.args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
    // Its own process group: the terminal's Ctrl-C reaches the supervisor
    // only, which then stops every instance (and its target) as a group.
    cmd.process_group(0);
    let cpu = inst.cpu;
    // SAFETY: between fork and exec only async-signal-safe calls are made:
    // sched_setaffinity on a local CPU set, prctl, getppid, kill.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(cpu) = cpu {
                cpu::pin_self(cpu);
            }
            // Should the supervisor die, even of SIGKILL, the instance stops
            // as on Ctrl-C (and stops its target's processes).
            process::die_with_parent(libc::SIGTERM, supervisor);
            Ok(())
        });
    }
    cmd.spawn().with_context(|| format!("failed to start instance {}", inst.id))
}

/// The background `sync-remote`, with its log.
struct RemoteSync {
    child: Option<Child>,
    log: PathBuf,
    /// How much of the log has been shown.
    shown: u64,
}

impl RemoteSync {
    fn start(plan: &Plan, args: &[OsString]) -> Result<RemoteSync> {
        let log = plan.sync_dir.join(layout::REMOTE_LOG);
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("failed to open {}", log.display()))?;
        let shown = out.metadata().map(|m| m.len()).unwrap_or(0);
        let err = out.try_clone().with_context(|| format!("failed to open {}", log.display()))?;
        let exe = std::env::current_exe().context("failed to locate the cargo-rfuzz executable")?;
        let mut cmd = Command::new(exe);
        cmd.arg("rfuzz").args(args).stdin(Stdio::null()).stdout(out).stderr(err);
        // Its own group, like the instances: it and its ssh clients stop together.
        cmd.process_group(0);
        let child = cmd.spawn().context("failed to start the remote sync")?;
        Ok(RemoteSync { child: Some(child), log, shown })
    }

    /// Round summaries, errors and warnings written since the last call.
    fn new_lines(&mut self) -> Vec<String> {
        use std::io::{Read, Seek};
        let Ok(mut f) = std::fs::File::open(&self.log) else { return Vec::new() };
        if f.seek(std::io::SeekFrom::Start(self.shown)).is_err() {
            return Vec::new();
        }
        let mut text = String::new();
        let _ = f.take(1 << 16).read_to_string(&mut text);
        // Only whole lines.
        let whole = text.rfind('\n').map_or(0, |i| i + 1);
        self.shown += whole as u64;
        text[..whole]
            .lines()
            .filter(|l| l.starts_with("remote sync:") || l.starts_with("error:") || l.starts_with("warning:"))
            .map(|l| if l.starts_with("remote sync:") { l.to_string() } else { format!("remote sync: {l}") })
            .collect()
    }

    fn signal(&self, sig: libc::c_int) {
        if let Some(c) = &self.child {
            signal_group(c, sig);
        }
    }

    /// Stops it (SIGTERM, then SIGKILL after a few seconds) and reaps it.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        signal_group(&child, libc::SIGTERM);
        if let Ok(Some(_)) = process::wait_timeout(&mut child, Duration::from_secs(5)) {
            return;
        }
        signal_group(&child, libc::SIGKILL);
        let _ = child.wait();
    }
}

impl Drop for RemoteSync {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How a run ended.
#[derive(Debug, Clone, Default)]
pub struct RunOutcome {
    /// Exit code for the process.
    pub code: i32,
}

/// What the supervisor knows when an instance exits.
#[derive(Debug, Clone, Copy)]
pub struct ExitFacts {
    /// Its exit code (128 + signal when killed).
    pub code: i32,
    /// How long it ran since it was (re)started.
    pub ran: Duration,
    /// The run is stopping (Ctrl-C, a fatal error, --exit-on-crash).
    pub stopping: bool,
    /// `--max-total-time` has passed.
    pub time_is_up: bool,
    /// `--exit-on-crash` was given.
    pub exit_on_crash: bool,
    /// Quick deaths in a row before this one.
    pub quick_failures: u32,
}

/// What to do about an instance that exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterExit {
    /// It finished as it should: leave it.
    Done,
    /// It failed during start-up with an error that a restart cannot fix
    /// (usage, build, unusable target): stop the run with its error.
    FailedToStart,
    /// It died within its first seconds too many times in a row: give up.
    KeepsDying,
    /// It died: start it again (it resumes its queue).
    Restart {
        /// Quick deaths in a row, this one included.
        quick_failures: u32,
    },
}

/// The restart policy, as a pure function of what is known at an exit.
pub fn after_exit(f: &ExitFacts) -> AfterExit {
    let finished_normally = matches!(f.code, exit::SUCCESS | exit::CRASHES_FOUND) && f.time_is_up;
    if f.stopping || finished_normally || (f.exit_on_crash && f.code == exit::CRASHES_FOUND) {
        return AfterExit::Done;
    }
    let quick = f.ran < STARTUP;
    if quick && matches!(f.code, exit::USAGE | exit::TARGET_UNUSABLE | exit::BUILD_FAILED) {
        return AfterExit::FailedToStart;
    }
    let quick_failures = if quick { f.quick_failures + 1 } else { 0 };
    if quick_failures > MAX_QUICK_RESTARTS {
        return AfterExit::KeepsDying;
    }
    AfterExit::Restart { quick_failures }
}

/// Runs the plan to the end.
pub fn run(plan: Plan) -> Result<RunOutcome> {
    // Ctrl-C / SIGTERM: the first stops gracefully, the second kills.
    signal::install_stop_handlers();
    process::become_subreaper();
    std::fs::create_dir_all(&plan.sync_dir)
        .with_context(|| format!("failed to create sync directory {}", plan.sync_dir.display()))?;
    let crashes_before = status::scan(&plan.sync_dir).map(|s| s.totals.saved_crashes).unwrap_or(0);
    let crash_files_before = crate::triage::crash_paths(&plan.sync_dir);
    let start = Instant::now();
    // Started first: should an instance fail to start, its Drop stops it.
    let mut remote = match &plan.remote_sync {
        Some(args) => Some(RemoteSync::start(&plan, args)?),
        None => None,
    };
    let mut instances = Vec::new();
    for p in &plan.instances {
        let child = spawn(&plan, p)?;
        instances.push(Instance {
            plan: p.clone(),
            child: Some(child),
            started: Instant::now(),
            restarts: 0,
            quick_failures: 0,
            exit: None,
        });
    }
    let mut screen = Screen::new(plan.ui == UiMode::Screen);
    let mut notices: Vec<String> = Vec::new();
    let mut stopping_since: Option<Instant> = None;
    let mut interrupted = false;
    let mut fatal: Option<(i32, String)> = None;
    let mut next_draw = Instant::now();
    let mut next_plain = Instant::now() + Duration::from_secs(5);
    let mut killed = false;
    let notice = |notices: &mut Vec<String>, screen: &Screen, text: String| {
        if !screen.is_active() {
            eprintln!("{text}");
        }
        notices.push(text);
        if notices.len() > 6 {
            notices.remove(0);
        }
    };

    loop {
        std::thread::sleep(Duration::from_millis(200));
        let requests = signal::stop_requests();
        if requests > 0 && stopping_since.is_none() {
            interrupted = true;
        }
        let over_time = plan.max_total_time.is_some_and(|t| start.elapsed() > t + Duration::from_secs(30));
        if (requests > 0 || over_time) && stopping_since.is_none() {
            stopping_since = Some(Instant::now());
            signal_all(&instances, &remote, libc::SIGTERM);
        }
        if let Some(since) = stopping_since
            && !killed
            && (requests > 1 || since.elapsed() > GRACE)
        {
            killed = true;
            signal_all(&instances, &remote, libc::SIGKILL);
        }
        // Reap and restart.
        for inst in &mut instances {
            let Some(child) = &mut inst.child else { continue };
            let Some(status) = child.try_wait()? else { continue };
            inst.child = None;
            let code = process::exit_code(status);
            let facts = ExitFacts {
                code,
                ran: inst.started.elapsed(),
                stopping: stopping_since.is_some(),
                time_is_up: plan.max_total_time.is_some_and(|t| start.elapsed() >= t),
                exit_on_crash: plan.exit_on_crash,
                quick_failures: inst.quick_failures,
            };
            let how = process::describe_status(status);
            match after_exit(&facts) {
                AfterExit::Done => {
                    inst.exit = Some(code);
                    continue;
                }
                AfterExit::FailedToStart => {
                    fatal = Some((
                        code,
                        format!("instance {} failed to start: {}", inst.plan.id, log_tail(&plan, &inst.plan.id, 6)),
                    ));
                    inst.exit = Some(code);
                    continue;
                }
                AfterExit::KeepsDying => {
                    fatal = Some((
                        exit::TARGET_UNUSABLE,
                        format!(
                            "instance {} keeps dying ({how}); giving up. Its last output:\n{}",
                            inst.plan.id,
                            log_tail(&plan, &inst.plan.id, 6)
                        ),
                    ));
                    inst.exit = Some(code);
                    continue;
                }
                AfterExit::Restart { quick_failures } => inst.quick_failures = quick_failures,
            }
            inst.restarts += 1;
            notice(
                &mut notices,
                &screen,
                format!("rfuzz: instance {} {how}; restarting it (restart {})", inst.plan.id, inst.restarts),
            );
            inst.child = Some(spawn(&plan, &inst.plan)?);
            inst.started = Instant::now();
        }
        if fatal.is_some() && stopping_since.is_none() {
            stopping_since = Some(Instant::now());
            signal_all(&instances, &remote, libc::SIGTERM);
        }
        if let Some(r) = &mut remote
            && let Some(child) = &mut r.child
            && let Some(status) = child.try_wait()?
        {
            r.child = None;
            if stopping_since.is_none() {
                let how = process::describe_status(status);
                notice(&mut notices, &screen, format!("rfuzz: the remote sync {how}; see {}", r.log.display()));
            }
        }
        // Targets of killed instances (and ssh's backgrounded connections)
        // are re-parented to us: reap them.
        let mut live: Vec<i32> = instances.iter().filter_map(|i| i.child.as_ref().map(|c| c.id() as i32)).collect();
        live.extend(remote.as_ref().and_then(|r| r.child.as_ref()).map(|c| c.id() as i32));
        process::reap_orphans(&live);
        if instances.iter().all(|i| i.child.is_none()) {
            break;
        }
        let now = Instant::now();
        if now >= next_draw {
            next_draw = now + Duration::from_secs(1);
            if let Ok(st) = status::scan(&plan.sync_dir) {
                if plan.exit_on_crash && st.totals.saved_crashes > crashes_before && stopping_since.is_none() {
                    stopping_since = Some(Instant::now());
                    signal_all(&instances, &remote, libc::SIGTERM);
                }
                for line in remote.as_mut().map(RemoteSync::new_lines).unwrap_or_default() {
                    notice(&mut notices, &screen, line);
                }
                let title = format!("{} :: {}", plan.title, crate::report::duration(start.elapsed().as_secs()));
                if screen.is_active() {
                    screen.draw(&dashboard::render(&st, &title, &notices));
                } else if plan.ui != UiMode::Quiet && now >= next_plain {
                    next_plain = now + Duration::from_secs(10);
                    eprintln!("{}", dashboard::summary_line(&st, start.elapsed().as_secs()));
                }
            }
        }
    }
    screen.leave();
    if let Some(r) = &mut remote {
        r.stop();
        if plan.ui != UiMode::Quiet {
            for line in r.new_lines() {
                eprintln!("{line}");
            }
        }
    }
    let st = status::scan(&plan.sync_dir)?;
    if plan.ui != UiMode::Quiet {
        eprint!("{}", dashboard::render(&st, &format!("{} :: finished", plan.title), &[]));
    }
    if let Some((code, msg)) = fatal {
        eprintln!("error: {msg}");
        return Ok(RunOutcome { code });
    }
    let summary = summarize_crashes(&plan, &st, &crash_files_before);
    let code = if summary.failed() {
        exit::CRASHES_FOUND
    } else if interrupted {
        exit::INTERRUPTED
    } else {
        exit::SUCCESS
    };
    Ok(RunOutcome { code })
}

fn signal_all(instances: &[Instance], remote: &Option<RemoteSync>, sig: libc::c_int) {
    for i in instances {
        if let Some(c) = &i.child {
            signal_group(c, sig);
        }
    }
    if let Some(r) = remote {
        r.signal(sig);
    }
}

/// Replays the crash files and prints them as bugs, with the command that
/// reproduces each; crash files of earlier runs that no longer crash are
/// reported as fixed.
fn summarize_crashes(
    plan: &Plan,
    st: &status::SyncStatus,
    before: &std::collections::BTreeSet<PathBuf>,
) -> crate::triage::EndOfRun {
    let Some((_, first)) = plan.replayers.first() else {
        return crate::triage::EndOfRun::default();
    };
    let target_of = |f: &crate::triage::CrashFile| {
        st.instances.iter().find(|i| i.stats.id == f.instance).map(|i| i.stats.afl_banner.clone()).unwrap_or_default()
    };
    let replayer_for = |f: &crate::triage::CrashFile| {
        let t = target_of(f);
        plan.replayers.iter().find(|(name, _)| *name == t).map_or(first, |(_, r)| r)
    };
    let repro_for = |f: &crate::triage::CrashFile| {
        let t = target_of(f);
        let (_, r) = plan.repro.iter().find(|(name, _)| *name == t).or(plan.repro.first())?;
        Some(r.replace("{}", &crate::sys::shell_quote(&f.path.to_string_lossy())))
    };
    let summary =
        crate::triage::end_of_run(crate::triage::collect(&plan.sync_dir, false), before, &replayer_for, &repro_for);
    eprint!("{}", summary.text);
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(code: i32, ran_secs: u64) -> ExitFacts {
        ExitFacts {
            code,
            ran: Duration::from_secs(ran_secs),
            stopping: false,
            time_is_up: false,
            exit_on_crash: false,
            quick_failures: 0,
        }
    }

    #[test]
    fn instances_that_finish_or_are_stopped_stay_down() {
        let time_up = ExitFacts { time_is_up: true, ..facts(exit::CRASHES_FOUND, 100) };
        assert_eq!(after_exit(&time_up), AfterExit::Done);
        assert_eq!(after_exit(&ExitFacts { stopping: true, ..facts(137, 1) }), AfterExit::Done);
        let crash = ExitFacts { exit_on_crash: true, ..facts(exit::CRASHES_FOUND, 3) };
        assert_eq!(after_exit(&crash), AfterExit::Done);
        // Exit 0 before the time is up is not a normal end: restart.
        assert_eq!(after_exit(&facts(exit::SUCCESS, 100)), AfterExit::Restart { quick_failures: 0 });
    }

    #[test]
    fn start_up_errors_stop_the_run_and_deaths_are_restarted_until_they_repeat() {
        assert_eq!(after_exit(&facts(exit::TARGET_UNUSABLE, 2)), AfterExit::FailedToStart);
        assert_eq!(after_exit(&facts(exit::USAGE, 1)), AfterExit::FailedToStart);
        // The same code after a long run is a death, not a start-up failure.
        assert_eq!(after_exit(&facts(exit::TARGET_UNUSABLE, 600)), AfterExit::Restart { quick_failures: 0 });
        let mut quick = 0;
        for _ in 0..MAX_QUICK_RESTARTS {
            match after_exit(&ExitFacts { quick_failures: quick, ..facts(137, 1) }) {
                AfterExit::Restart { quick_failures } => quick = quick_failures,
                other => panic!("restarted while under the limit, got {other:?}"),
            }
        }
        assert_eq!(after_exit(&ExitFacts { quick_failures: quick, ..facts(137, 1) }), AfterExit::KeepsDying);
        // A long run in between resets the count.
        assert_eq!(
            after_exit(&ExitFacts { quick_failures: quick, ..facts(137, 600) }),
            AfterExit::Restart { quick_failures: 0 }
        );
    }
}
