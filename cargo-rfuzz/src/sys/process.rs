//! Child processes: describing how they ended, waiting with a deadline,
//! signalling their process groups, reaping orphans, and the tails of their
//! logs.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// Name of a signal ("SIGSEGV"), or its number.
pub fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig).map(|s| s.as_str().to_string()).unwrap_or_else(|_| format!("signal {sig}"))
}

/// Human description of a wait status ("exited with status 3", "was killed
/// by SIGKILL").
pub fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(s)) => format!("was killed by {}", signal_name(s)),
        _ => status.to_string(),
    }
}

/// A shell-style exit code: the status, or 128 + the signal.
pub fn exit_code(status: ExitStatus) -> i32 {
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// A descriptor that becomes readable when process `pid` exits, and through
/// which it can be signalled without a pid-reuse race.
pub fn pidfd(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    // SAFETY: on success the descriptor is new and ours.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Waits at most `limit` for `child` to exit; `None` if it still runs.
/// Sleeps in the kernel (a pidfd) where it can, polls where it cannot.
pub fn wait_timeout(child: &mut Child, limit: Duration) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + limit;
    let fd = pidfd(child.id());
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(Some(s));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        match &fd {
            Some(fd) => {
                let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
                let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
                // SAFETY: one valid pollfd; an interrupted poll just loops.
                unsafe { libc::poll(&mut p, 1, ms) };
            }
            None => std::thread::sleep(left.min(Duration::from_millis(10))),
        }
    }
}

/// Runs `child` (spawned as the leader of its own process group) for at most
/// `limit`, then kills whatever is left of its group and reaps it; `None`
/// when it was still running at the limit. The group is signalled while the
/// leader's zombie still pins its id: after reaping, the id may already
/// belong to an unrelated new group (pids wrap quickly on busy machines).
pub fn run_group_for(child: &mut Child, limit: Duration) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + limit;
    let fd = pidfd(child.id());
    let pid = child.id() as libc::pid_t;
    let mut exited = false;
    loop {
        // SAFETY: a zeroed siginfo is a valid out-parameter; WNOWAIT leaves
        // the child to be reaped below.
        let done = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let r =
                libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT);
            r == 0 && info.si_pid() != 0
        };
        if done {
            exited = true;
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match &fd {
            Some(fd) => {
                let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
                let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
                // SAFETY: one valid pollfd; an interrupted poll just loops.
                unsafe { libc::poll(&mut p, 1, ms) };
            }
            None => std::thread::sleep(left.min(Duration::from_millis(10))),
        }
    }
    // SAFETY: the group's leader is our unreaped child, so the id is its.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    let status = child.wait()?;
    Ok(exited.then_some(status))
}

/// Waits at most `grace` for `child`, then kills and reaps it.
pub fn wait_or_kill(child: &mut Child, grace: Duration) -> io::Result<ExitStatus> {
    if let Some(s) = wait_timeout(child, grace)? {
        return Ok(s);
    }
    let _ = child.kill();
    child.wait()
}

/// Sends `sig` to the process group led by `child` (spawned with
/// `process_group(0)`). Only for a child not reaped yet: a reaped leader's
/// id may already name another group (see [`run_group_for`]).
pub fn signal_group(child: &Child, sig: libc::c_int) {
    // SAFETY: signalling the process group we created for this child.
    unsafe { libc::kill(-(child.id() as libc::pid_t), sig) };
}

/// In a child between fork and exec: receive `sig` when `parent` dies, and
/// now if it already died. (The death signal fires when the thread that
/// forked exits: spawn from a thread that lives as long as the child should.)
pub fn die_with_parent(sig: libc::c_int, parent: libc::pid_t) {
    // SAFETY: prctl, getppid and raise are async-signal-safe.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, sig);
        if libc::getppid() != parent {
            libc::raise(sig);
        }
    }
}

/// Makes this process the reaper of its orphaned descendants: a target's
/// persistent child whose forkserver died is re-parented here instead of to
/// an init that may never reap it (containers).
pub fn become_subreaper() {
    // SAFETY: prctl with an integer argument.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
}

/// Reaps exited children other than `keep` (orphans re-parented to us).
pub fn reap_orphans(keep: &[i32]) {
    let me = std::process::id();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{me}/task")) else { return };
    for t in tasks.flatten() {
        let Ok(children) = std::fs::read_to_string(t.path().join("children")) else { continue };
        for pid in children.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
            if !keep.contains(&pid) {
                // SAFETY: non-blocking wait on our own child.
                unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
            }
        }
    }
}

/// The last `n` non-empty lines of `text`, joined with newlines.
pub fn tail_lines(text: &str, n: usize) -> String {
    let tail: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).rev().take(n).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// The last `max` bytes of a file (lossy UTF-8), empty if unreadable.
pub fn read_tail(path: &Path, max: u64) -> String {
    use std::io::{Read, Seek};
    let Ok(mut f) = std::fs::File::open(path) else { return String::new() };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(io::SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = f.take(max).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn wait_timeout_returns_early_and_times_out() {
        let mut quick = Command::new("true").spawn().unwrap();
        let s = wait_timeout(&mut quick, Duration::from_secs(30)).unwrap();
        assert!(s.is_some_and(|s| s.success()));
        let mut slow = Command::new("sleep").arg("30").spawn().unwrap();
        let t = Instant::now();
        assert!(wait_timeout(&mut slow, Duration::from_millis(100)).unwrap().is_none());
        assert!(t.elapsed() < Duration::from_secs(20));
        let s = wait_or_kill(&mut slow, Duration::ZERO).unwrap();
        assert_eq!(describe_status(s), "was killed by SIGKILL");
        assert_eq!(exit_code(s), 137);
    }

    #[test]
    fn tails_keep_the_last_non_empty_lines() {
        assert_eq!(tail_lines("a\n\nb\nc\n\n", 2), "b\nc");
        assert_eq!(tail_lines("", 3), "");
    }
}
