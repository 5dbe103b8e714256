//! Starting a target as a forkserver and talking to it over fds 198/199.

use crate::sys::process;
use rfuzz::protocol;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

/// How to start the target: binary, arguments (`@@` is replaced by the input
/// file's path), environment and limits.
#[derive(Debug, Clone, Default)]
pub struct TargetCommand {
    /// The instrumented binary.
    pub binary: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Extra environment variables.
    pub env: Vec<(OsString, OsString)>,
    /// Memory limit of the target in MiB: its data size (heap and private
    /// mappings; RLIMIT_DATA) and its largest single allocation.
    pub mem_limit_mb: Option<u64>,
    /// Most processes the target may have running at once (`--max-procs`).
    pub max_procs: Option<u64>,
    /// Let the target write to our stdout/stderr (debugging).
    pub show_output: bool,
}

impl TargetCommand {
    /// Whether an argument is the `@@` input-file placeholder.
    pub fn takes_file_argument(&self) -> bool {
        self.args.iter().any(|a| a == "@@")
    }
}

/// Outcome of a read with a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// The buffer is full.
    Done,
    /// Nothing (or not enough) arrived in time.
    TimedOut,
    /// The other side closed the pipe.
    Eof,
}

/// A running forkserver process.
#[derive(Debug)]
pub struct Forkserver {
    child: Child,
    ctl: Option<File>,
    st: File,
    stderr: Option<ChildStderr>,
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid out-array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two fresh descriptors that we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `ASAN_OPTIONS` for a target while fuzzing: an error aborts (a crash the
/// fuzzer sees; the runtime has recorded its kind), no symbolizing or
/// allocation stacks (the report goes to /dev/null; `repro` prints a full
/// one), no leak hunting, and the single-allocation limit as ASan's own.
pub fn asan_options(malloc_limit_mb: u64, user: Option<OsString>) -> OsString {
    let mut o = OsString::from(format!(
        "abort_on_error=1:symbolize=0:malloc_context_size=0:detect_leaks=0:handle_abort=0:\
         allocator_may_return_null=0:max_allocation_size_mb={malloc_limit_mb}"
    ));
    if let Some(u) = user.filter(|u| !u.is_empty()) {
        o.push(":");
        o.push(u);
    }
    o
}

/// Whether a binary was built with AddressSanitizer (its runtime's report
/// banner is in the binary).
pub fn is_asan_binary(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|data| data.windows(ASAN_MARK.len()).any(|w| w == ASAN_MARK))
}

const ASAN_MARK: &[u8] = b"ERROR: AddressSanitizer: ";

impl Forkserver {
    /// Starts `cmd` with the forkserver pipes on fds 198/199. `input_file`
    /// replaces `@@`; `stdin` is the target's standard input.
    pub fn spawn(
        cmd: &TargetCommand,
        env: &[(&str, String)],
        input_file: Option<&Path>,
        stdin: Stdio,
        capture_stderr: bool,
    ) -> io::Result<Forkserver> {
        let (ctl_read, ctl_write) = pipe()?;
        let (st_read, st_write) = pipe()?;
        let mut c = Command::new(&cmd.binary);
        for a in &cmd.args {
            match (a.to_str(), input_file) {
                (Some("@@"), Some(f)) => c.arg(f),
                _ => c.arg(a),
            };
        }
        // Single allocations above the limit (2 GiB by default, as
        // libFuzzer's -malloc_limit_mb) are out-of-memory bugs.
        let malloc_limit = cmd.mem_limit_mb.unwrap_or(2048);
        c.env(protocol::MALLOC_LIMIT_ENV_VAR, malloc_limit.to_string());
        if let Some(n) = cmd.max_procs {
            c.env(protocol::MAX_PROCS_ENV_VAR, n.to_string());
        }
        // Read only by AddressSanitizer builds; the user's options come last
        // and win.
        c.env("ASAN_OPTIONS", asan_options(malloc_limit, std::env::var_os("ASAN_OPTIONS")));
        c.envs(cmd.env.iter().map(|(k, v)| (k, v)));
        c.envs(env.iter().map(|(k, v)| (k, v)));
        c.stdin(stdin);
        if cmd.show_output {
            c.stdout(Stdio::inherit()).stderr(Stdio::inherit());
        } else {
            c.stdout(Stdio::null()).stderr(if capture_stderr { Stdio::piped() } else { Stdio::null() });
        }
        let ctl_fd = ctl_read.as_raw_fd();
        let st_fd = st_write.as_raw_fd();
        // ASan reserves terabytes of shadow memory, which a data limit would
        // refuse: its builds get ASan's own allocation limit instead.
        let mem = cmd.mem_limit_mb.filter(|_| !is_asan_binary(&cmd.binary));
        // SAFETY: between fork and exec only async-signal-safe calls are made
        // (dup2, setrlimit, prctl), on descriptors that stay open until exec.
        unsafe {
            c.pre_exec(move || {
                if libc::dup2(ctl_fd, protocol::CONTROL_FD) < 0 || libc::dup2(st_fd, protocol::STATUS_FD) < 0 {
                    return Err(io::Error::last_os_error());
                }
                // Crashes are expected by the thousand: no core dumps.
                let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                libc::setrlimit(libc::RLIMIT_CORE, &zero);
                if let Some(mb) = mem {
                    // Data, not address space: the shared-memory segments and
                    // the binary itself must not count against the target.
                    let bytes = mb.saturating_mul(1 << 20);
                    let lim = libc::rlimit { rlim_cur: bytes, rlim_max: bytes };
                    libc::setrlimit(libc::RLIMIT_DATA, &lim);
                }
                // The forkserver dies with us, even on SIGKILL.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = c.spawn()?;
        drop(ctl_read);
        drop(st_write);
        let stderr = child.stderr.take();
        Ok(Forkserver { child, ctl: Some(File::from(ctl_write)), st: File::from(st_read), stderr })
    }

    /// Writes a native-endian `u32` command.
    pub fn write_u32(&mut self, v: u32) -> io::Result<()> {
        match &mut self.ctl {
            Some(c) => c.write_all(&v.to_ne_bytes()),
            None => Err(io::Error::from(io::ErrorKind::BrokenPipe)),
        }
    }

    /// Fills `buf` from the status pipe, waiting at most `timeout`.
    pub fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<ReadOutcome> {
        let deadline = Instant::now() + timeout;
        let mut done = 0;
        while done < buf.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut pfd = libc::pollfd { fd: self.st.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            let ms = left.as_millis().min(i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if r == 0 {
                return Ok(ReadOutcome::TimedOut);
            }
            match self.st.read(&mut buf[done..]) {
                Ok(0) => return Ok(ReadOutcome::Eof),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(ReadOutcome::Done)
    }

    /// Reads a `u32`, or says why not.
    pub fn read_u32(&mut self, timeout: Duration) -> io::Result<Result<u32, ReadOutcome>> {
        let mut b = [0u8; 4];
        Ok(match self.read_timeout(&mut b, timeout)? {
            ReadOutcome::Done => Ok(u32::from_ne_bytes(b)),
            other => Err(other),
        })
    }

    /// After the forkserver failed during start-up: how it ended and the
    /// tail of what it printed (when its stderr was captured).
    pub fn startup_failure(&mut self) -> String {
        let status = process::wait_timeout(&mut self.child, Duration::from_millis(500)).ok().flatten();
        let how = match status {
            Some(s) => process::describe_status(s),
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                "stopped answering".to_string()
            }
        };
        let mut text = String::new();
        if let Some(mut e) = self.stderr.take() {
            let mut buf = Vec::new();
            let _ = (&mut e).take(1 << 20).read_to_end(&mut buf);
            text = String::from_utf8_lossy(&buf).into_owned();
        }
        let tail = process::tail_lines(&text, 12);
        if tail.is_empty() { how } else { format!("{how}; its last output:\n  {}", tail.replace('\n', "\n  ")) }
    }

    /// Warnings the runtime printed during start-up (lines starting with
    /// `rfuzz: warning:`), read without blocking from the captured stderr.
    pub fn startup_warnings(&mut self) -> Vec<String> {
        let Some(e) = &mut self.stderr else { return Vec::new() };
        let fd = e.as_raw_fd();
        let mut buf = vec![0u8; 64 << 10];
        let mut len = 0;
        // SAFETY: a non-blocking read into our buffer from our pipe end.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
            while len < buf.len() {
                let n = libc::read(fd, buf[len..].as_mut_ptr().cast(), buf.len() - len);
                if n <= 0 {
                    break;
                }
                len += n as usize;
            }
            libc::fcntl(fd, libc::F_SETFL, flags);
        }
        String::from_utf8_lossy(&buf[..len])
            .lines()
            .filter(|l| l.starts_with("rfuzz: warning:"))
            .map(str::to_string)
            .collect()
    }

    /// Drops the captured stderr (after a successful handshake the runtime
    /// points its stderr at /dev/null).
    pub fn release_stderr(&mut self) {
        self.stderr = None;
    }
}

impl Drop for Forkserver {
    fn drop(&mut self) {
        // Closing the control pipe makes the forkserver kill and reap its
        // child and exit; only if it does not, kill it.
        self.ctl = None;
        let _ = process::wait_or_kill(&mut self.child, Duration::from_millis(500));
    }
}

/// A child of the target's forkserver, held through a pidfd opened as soon
/// as the forkserver names it. The forkserver, not us, reaps it: a plain
/// `kill(pid)` after that could hit whatever process got the pid next (pids
/// wrap quickly when targets start processes), a pidfd never does.
#[derive(Debug)]
pub struct TargetChild {
    pid: i32,
    fd: Option<OwnedFd>,
}

impl TargetChild {
    /// The forkserver's child `pid`, just reported.
    pub fn new(pid: i32) -> TargetChild {
        TargetChild { pid, fd: process::pidfd(pid as u32) }
    }

    /// Sends `sig`; nothing happens once the process is gone.
    pub fn signal(&self, sig: i32) {
        match &self.fd {
            // SAFETY: pidfd_send_signal on our own pidfd with no siginfo.
            Some(fd) => unsafe {
                libc::syscall(libc::SYS_pidfd_send_signal, fd.as_raw_fd(), sig, std::ptr::null::<libc::siginfo_t>(), 0);
            },
            // No pidfds (Linux before 5.3): the pid itself, as before.
            None => {
                // SAFETY: signalling the pid the forkserver reported.
                unsafe { libc::kill(self.pid, sig) };
            }
        }
    }

    /// Its pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Kills it (the forkserver reaps it and reports its death).
    pub fn kill(&self) {
        self.signal(libc::SIGKILL);
    }
}

/// Opens the input file for file and stdin delivery: a handle to rewrite it
/// with, and a duplicate sharing its offset for the target's stdin.
pub fn open_input_file(path: &Path) -> io::Result<(File, File)> {
    let w = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)?;
    let dup = w.try_clone()?;
    Ok((w, dup))
}
