//! Running commands on a host with the system OpenSSH client.
//!
//! Every command goes through `ssh -o BatchMode=yes` (keys from the agent or
//! `~/.ssh`, never a prompt) with compression and one shared connection per
//! host: the first command opens a control master (`ControlPersist`) whose
//! socket lives in a private temporary directory, later ones reuse it, and
//! [`Ssh::close`] ends it. The remote side runs `sh -c SCRIPT rfuzz ARG`:
//! the scripts are constants and the only variable part (the sync directory)
//! travels as a quoted positional argument.

use super::hosts::HostSpec;
use anyhow::{Context, Result};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

/// Environment variable naming the ssh program to use instead of `ssh`.
pub const SSH_ENV: &str = "RFUZZ_SSH";

/// Exit status of our remote scripts when the sync directory is missing.
pub const NO_SYNC_DIR: i32 = 3;

/// How long a master connection outlives its last command (in case we are
/// killed before [`Ssh::close`]).
const CONTROL_PERSIST_S: u32 = 30;

/// Quotes a word for a POSIX shell (and for csh or fish: no backslash ever
/// appears inside the quotes).
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The ssh client of one sync process.
#[derive(Debug)]
pub struct Ssh {
    program: OsString,
    /// Private (0700) directory of the control sockets and captured stderr.
    dir: tempfile::TempDir,
    seq: AtomicU32,
}

/// What a command did.
#[derive(Debug)]
pub struct Finished<W, R> {
    /// Exit status of `ssh` (the remote script's, or 255 for ssh's own errors).
    pub status: ExitStatus,
    /// Its stderr (the end of it).
    pub stderr: String,
    /// What the stdin writer returned.
    pub input: W,
    /// What the stdout reader returned.
    pub output: R,
    /// Stopped by the stop flag.
    pub stopped: bool,
}

impl<W, R> Finished<W, R> {
    /// Whether ssh and the remote script succeeded.
    pub fn ok(&self) -> bool {
        self.status.success() && !self.stopped
    }
}

impl Ssh {
    /// A client using `RFUZZ_SSH` or `ssh`.
    pub fn new() -> Result<Ssh> {
        let program = std::env::var_os(SSH_ENV).filter(|p| !p.is_empty()).unwrap_or_else(|| "ssh".into());
        let dir = tempfile::Builder::new()
            .prefix("rfuzz-ssh-")
            .tempdir()
            .context("failed to create a private directory for ssh control sockets")?;
        Ok(Ssh { program, dir, seq: AtomicU32::new(0) })
    }

    fn base(&self, host: &HostSpec) -> Command {
        let mut c = Command::new(&self.program);
        // Its own process group: a Ctrl-C or a SIGTERM to our group must not
        // kill an `ssh -O exit` halfway (leaving the master running); we stop
        // ssh ourselves when the stop flag is set.
        c.process_group(0);
        // One connection per hosts-file line: two lines may reach one account
        // with different keys or options.
        let control_path = self.dir.path().join(format!("line{}", host.line));
        let mut opts: Vec<String> = vec![
            // Never prompt: keys from the agent or ~/.ssh only.
            "BatchMode=yes".into(),
            "ConnectTimeout=20".into(),
            // Notice a dead connection in a minute instead of hanging.
            "ServerAliveInterval=15".into(),
            "ServerAliveCountMax=4".into(),
            "ControlMaster=auto".into(),
            format!("ControlPath={}", control_path.display()),
            format!("ControlPersist={CONTROL_PERSIST_S}"),
        ];
        if host.identity.is_some() {
            // Offer only that key (an agent with many keys can exhaust the
            // server's MaxAuthTries before reaching it).
            opts.push("IdentitiesOnly=yes".into());
        }
        opts.extend(host.ssh_options.iter().cloned());
        for o in opts {
            c.arg("-o").arg(o);
        }
        c.arg("-C");
        if let Some(p) = host.port {
            c.arg("-p").arg(p.to_string());
        }
        if let Some(i) = &host.identity {
            c.arg("-i").arg(i);
        }
        c
    }

    /// `ssh ... HOST sh -c SCRIPT rfuzz ARGS...`.
    fn command(&self, host: &HostSpec, script: &str, args: &[String]) -> Command {
        let mut remote = format!("sh -c {} rfuzz", quote(script));
        for a in args {
            remote.push(' ');
            remote.push_str(&quote(a));
        }
        let mut c = self.base(host);
        c.arg("--").arg(host.destination()).arg(remote);
        c
    }

    /// Runs `script` with positional `args` on `host`, feeding stdin with
    /// `feed` and reading stdout with `read`, both on their own threads.
    /// Polls `stop` and kills ssh when it is set (the reader and writer then
    /// see their pipes close).
    pub fn run<W: Send, R: Send>(
        &self,
        host: &HostSpec,
        script: &str,
        args: &[String],
        feed: impl FnOnce(ChildStdin) -> W + Send,
        read: impl FnOnce(ChildStdout) -> R + Send,
        stop: &AtomicBool,
    ) -> Result<Finished<W, R>> {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let err_path = self.dir.path().join(format!("stderr-{n}"));
        // A file, not a pipe: a master connection forked by this ssh must not
        // keep our end of a pipe open.
        let err_file = std::fs::File::create(&err_path).context("failed to create a file for ssh's stderr")?;
        let mut cmd = self.command(host, script, args);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(err_file);
        let mut child = cmd.spawn().with_context(|| format!("failed to run {}", self.program.to_string_lossy()))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (status, input, output, stopped) = std::thread::scope(|s| {
            let writer = s.spawn(move || feed(stdin));
            let reader = s.spawn(move || read(stdout));
            let (status, stopped) = wait_or_stop(&mut child, stop);
            let input = writer.join().expect("the ssh input writer panicked");
            let output = reader.join().expect("the ssh output reader panicked");
            (status, input, output, stopped)
        });
        let stderr = crate::sys::process::read_tail(&err_path, 16 << 10);
        let _ = std::fs::remove_file(&err_path);
        Ok(Finished { status: status.context("failed to wait for ssh")?, stderr, input, output, stopped })
    }

    /// Ends the master connection to `host`, if there is one.
    pub fn close(&self, host: &HostSpec) {
        let mut c = self.base(host);
        c.arg("-O").arg("exit").arg("--").arg(host.destination());
        c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        if let Ok(mut child) = c.spawn() {
            // Closing a master is local and quick; never wait on it for long.
            let _ = crate::sys::process::wait_or_kill(&mut child, Duration::from_secs(10));
        }
    }
}

/// Waits for `child`, killing it when `stop` is set; always reaps it.
fn wait_or_stop(child: &mut Child, stop: &AtomicBool) -> (std::io::Result<ExitStatus>, bool) {
    let mut stopped = false;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return (Ok(st), stopped),
            Ok(None) => {}
            Err(e) => return (Err(e), stopped),
        }
        if !stopped && stop.load(Ordering::Relaxed) {
            stopped = true;
            let _ = child.kill();
        }
        let _ = crate::sys::process::wait_timeout(child, Duration::from_millis(50));
    }
}

/// Writes `data` to stdin and closes it.
pub fn feed_bytes(data: Vec<u8>) -> impl FnOnce(ChildStdin) -> std::io::Result<()> + Send {
    move |mut stdin| stdin.write_all(&data)
}

/// Reads all of stdout, up to `max` bytes (the rest is drained).
pub fn read_text(max: usize) -> impl FnOnce(ChildStdout) -> std::io::Result<String> + Send {
    move |stdout| {
        let mut buf = Vec::new();
        let mut r = stdout;
        (&mut r).take(max as u64).read_to_end(&mut buf)?;
        std::io::copy(&mut r, &mut std::io::sink())?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

/// Why a command on a host failed, in one line with the fix.
pub fn explain_failure(status: &ExitStatus, stderr: &str, host: &HostSpec, hosts_file: &str) -> String {
    let code = status.code();
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    let has = |s: &str| stderr.contains(s);
    let line = host.line;
    if code == Some(NO_SYNC_DIR) && has("rfuzz: no sync directory") {
        return format!(
            "there is no sync directory {} there: create it (mkdir -p {}) or fix line {line} of {hosts_file}",
            host.dir, host.dir
        );
    }
    if code == Some(255) || code.is_none() {
        if has("Permission denied") {
            return "ssh refused the key: add your public key to ~/.ssh/authorized_keys there, or load it into ssh-agent (ssh-add)".to_string();
        }
        if has("Host key verification failed") || has("REMOTE HOST IDENTIFICATION HAS CHANGED") {
            return format!(
                "its host key is unknown or changed: check it with `ssh {}` once and accept it",
                host.destination()
            );
        }
        if has("Could not resolve hostname")
            || has("Connection refused")
            || has("timed out")
            || has("No route to host")
            || has("Network is unreachable")
            || has("Connection closed by")
            || has("Connection reset")
        {
            return format!(
                "cannot reach it over ssh ({last}): check the address and port in line {line} of {hosts_file} and that sshd runs there"
            );
        }
    }
    if code == Some(127) {
        return format!("a tool is missing there ({last}): the remote side needs sh, tar, find, grep and head");
    }
    match code {
        Some(c) => format!("ssh failed (exit {c}): {last}"),
        None => format!("ssh was killed ({status})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(quote("/a b/c"), "'/a b/c'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", quote("x'y $HOME `z`")))
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"x'y $HOME `z`");
    }
}
