//! A minimal fuzzer driver speaking the AFL++ 4.20+ forkserver protocol, the
//! way `afl-fuzz` drives a target: SysV shared memory for the coverage map and
//! the test case, fds 198/199, fork mode or persistent mode (the child stops
//! itself after each run and the forkserver relays it).
//!
//! Written from the protocol description, independent of the engine, so the
//! runtime is tested against the protocol rather than against our own client.

use rfuzz::protocol::{self, afl};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A SysV segment, removed as soon as both sides can have attached it.
struct Shm {
    id: i32,
    ptr: *mut u8,
    size: usize,
}

impl Shm {
    fn new(size: usize) -> io::Result<Shm> {
        // SAFETY: plain syscalls; the result is checked.
        unsafe {
            let id = libc::shmget(libc::IPC_PRIVATE, size, libc::IPC_CREAT | libc::IPC_EXCL | 0o600);
            if id < 0 {
                return Err(io::Error::last_os_error());
            }
            let ptr = libc::shmat(id, std::ptr::null(), 0);
            if ptr as isize == -1 {
                let e = io::Error::last_os_error();
                libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut());
                return Err(e);
            }
            Ok(Shm { id, ptr: ptr.cast(), size })
        }
    }

    fn slice(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is `size` bytes and lives as long as `self`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.size) }
    }
}

impl Drop for Shm {
    fn drop(&mut self) {
        // SAFETY: detaching and removing our own segment.
        unsafe {
            libc::shmdt(self.ptr.cast());
            libc::shmctl(self.id, libc::IPC_RMID, std::ptr::null_mut());
        }
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid out-array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two fresh descriptors we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Result of one execution.
#[derive(Debug, Clone)]
pub struct Run {
    /// Wait status the forkserver relayed.
    pub status: i32,
    /// The coverage map after the run (the target's map size).
    pub map: Vec<u8>,
    /// Pid of the child that ran it.
    pub pid: i32,
}

impl Run {
    /// Whether the child died of `signal`.
    pub fn signaled(&self, signal: i32) -> bool {
        libc::WIFSIGNALED(self.status) && libc::WTERMSIG(self.status) == signal
    }

    /// Whether the run finished normally (exited 0, or stopped itself in
    /// persistent mode).
    pub fn ok(&self) -> bool {
        libc::WIFSTOPPED(self.status) || (libc::WIFEXITED(self.status) && libc::WEXITSTATUS(self.status) == 0)
    }
}

/// A forkserver started from a target binary.
pub struct AflDriver {
    forkserver: Child,
    ctl: File,
    st: File,
    map: Shm,
    input: Shm,
    /// Option bits the target announced.
    pub options: u32,
    /// Map size the target announced.
    pub map_size: usize,
    persistent: bool,
    stopped_child: Option<i32>,
}

impl AflDriver {
    /// Starts `binary` as a forkserver and completes the handshake.
    pub fn start(binary: &Path, persistent: bool) -> io::Result<AflDriver> {
        let map = Shm::new(1 << 16)?;
        let input = Shm::new(afl::MAX_FILE + afl::SHMEM_FUZZ_HDR_SIZE)?;
        let (ctl_read, ctl_write) = pipe()?;
        let (st_read, st_write) = pipe()?;
        let (ctl_fd, st_fd) = (ctl_read.into_raw_fd(), st_write.into_raw_fd());
        let mut cmd = Command::new(binary);
        cmd.env(protocol::SHM_ENV_VAR, map.id.to_string())
            .env(protocol::SHM_FUZZ_ENV_VAR, input.id.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if persistent {
            cmd.env(protocol::PERSIST_ENV_VAR, "1");
        }
        // SAFETY: only async-signal-safe dup2 calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(ctl_fd, protocol::CONTROL_FD) < 0 || libc::dup2(st_fd, protocol::STATUS_FD) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let spawned = cmd.spawn();
        // SAFETY: closing our copies of the target's pipe ends.
        unsafe {
            libc::close(ctl_fd);
            libc::close(st_fd);
        }
        let forkserver = spawned?;
        let mut d = AflDriver {
            forkserver,
            ctl: File::from(ctl_write),
            st: File::from(st_read),
            map,
            input,
            options: 0,
            map_size: 0,
            persistent,
            stopped_child: None,
        };
        let hello = d.read_u32()?;
        if hello != afl::HELLO {
            return Err(io::Error::other(format!("unexpected hello {hello:#x}")));
        }
        d.write_u32(afl::HELLO_REPLY)?;
        d.options = d.read_u32()?;
        if d.options & afl::OPT_MAPSIZE != 0 {
            d.map_size = d.read_u32()? as usize;
        }
        if d.options & afl::OPT_AUTODICT != 0 {
            let len = d.read_u32()? as usize;
            let mut dict = vec![0; len];
            d.st.read_exact(&mut dict)?;
        }
        let again = d.read_u32()?;
        if again != afl::HELLO {
            return Err(io::Error::other(format!("unexpected final hello {again:#x}")));
        }
        Ok(d)
    }

    fn read_u32(&mut self) -> io::Result<u32> {
        let mut b = [0u8; 4];
        self.st.read_exact(&mut b)?;
        Ok(u32::from_ne_bytes(b))
    }

    fn write_u32(&mut self, v: u32) -> io::Result<()> {
        self.ctl.write_all(&v.to_ne_bytes())
    }

    /// Runs one test case and returns its status and map.
    pub fn run(&mut self, data: &[u8]) -> io::Result<Run> {
        let input = self.input.slice();
        input[..4].copy_from_slice(&(data.len() as u32).to_ne_bytes());
        input[4..4 + data.len()].copy_from_slice(data);
        self.map.slice().fill(0);
        self.write_u32(0)?;
        let pid = self.read_u32()? as i32;
        let status = self.read_u32()? as i32;
        self.stopped_child = (self.persistent && libc::WIFSTOPPED(status)).then_some(pid);
        Ok(Run { status, map: self.map.slice()[..self.map_size].to_vec(), pid })
    }
}

impl Drop for AflDriver {
    fn drop(&mut self) {
        if let Some(pid) = self.stopped_child {
            // SAFETY: killing the stopped child the forkserver reported.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = self.forkserver.kill();
        let _ = self.forkserver.wait();
    }
}
