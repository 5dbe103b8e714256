//! Client of the direct protocol ([`rfuzz::protocol::direct`]): targets built
//! with the rfuzz runtime.

use super::process::{Forkserver, ReadOutcome, TargetChild, TargetCommand};
use super::{BatchStop, CrashCause, Executor, ExitKind};
use crate::engine::TargetError;
use crate::engine::shm::Segment;
use anyhow::{Context, Result, bail};
use rfuzz::protocol::cmplog::{self, LogHeader, Record};
use rfuzz::protocol::direct::{self, Entry, Header, Layout};
use std::process::Stdio;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// Sizes of the shared segment and start-up limits.
#[derive(Debug, Clone)]
pub struct DirectConfig {
    /// Inputs per batch.
    pub batch_entries: usize,
    /// Bytes of batch input data.
    pub batch_bytes: usize,
    /// Largest single input.
    pub max_input: usize,
    /// Compare-log capacity in records.
    pub cmp_records: usize,
    /// How long the target may take to start its forkserver.
    pub init_timeout: Duration,
    /// Per-input timeout.
    pub timeout: Duration,
}

impl Default for DirectConfig {
    fn default() -> Self {
        DirectConfig {
            batch_entries: 512,
            batch_bytes: 8 << 20,
            max_input: 1 << 20,
            cmp_records: 16384,
            init_timeout: Duration::from_secs(20),
            timeout: Duration::from_millis(1000),
        }
    }
}

/// Entries of the path-count table.
pub const PATH_COUNTS: usize = 1 << 16;

/// A persistent child recycles after this many inputs, so leaks in the code
/// under test cannot pile up (a fork costs well under a millisecond).
const RECYCLE_AFTER: u64 = 200_000;

enum Reply {
    Done(usize),
    Died(i32),
    TimedOut(usize),
}

/// Runs inputs through a target built with the rfuzz runtime.
#[derive(Debug)]
pub struct DirectExecutor {
    fs: Forkserver,
    seg: Segment,
    layout: Layout,
    child: Option<TargetChild>,
    timeout: Duration,
    init_timeout: Duration,
    batch_cap: usize,
    batch_len: usize,
    batch_used: usize,
    batch_bytes: usize,
    max_input: usize,
    execs_since_fork: u64,
    describe: String,
}

fn protocol_error(binary: &std::path::Path, what: &str) -> anyhow::Error {
    TargetError(format!(
        "{} {what}; rebuild it with this version of cargo rfuzz (`cargo rfuzz build`)",
        binary.display()
    ))
    .into()
}

impl DirectExecutor {
    /// Starts the target and completes the handshake.
    pub fn start(cmd: &TargetCommand, cfg: &DirectConfig) -> Result<DirectExecutor> {
        let mut env = vec![(direct::ENV_VAR, direct::VERSION.to_string())];
        if !cmd.show_output {
            env.push((direct::SILENCE_ENV_VAR, "1".to_string()));
        }
        let mut fs = Forkserver::spawn(cmd, &env, None, Stdio::null(), !cmd.show_output)
            .with_context(|| format!("failed to start {}", cmd.binary.display()))?;
        let mut hello = [0u8; 16];
        match fs.read_timeout(&mut hello, cfg.init_timeout)? {
            ReadOutcome::Done => {}
            ReadOutcome::Eof => bail!(TargetError(format!(
                "the target {} during start-up, before its forkserver started: check its init code, or run `{} < /dev/null` to see",
                fs.startup_failure(),
                cmd.binary.display()
            ))),
            ReadOutcome::TimedOut => bail!(TargetError(format!(
                "the target did not start its forkserver within {}s: does its init code hang? Run `{} < /dev/null` to see",
                cfg.init_timeout.as_secs(),
                cmd.binary.display()
            ))),
        }
        let word = |i: usize| u32::from_ne_bytes(hello[i * 4..i * 4 + 4].try_into().unwrap());
        if word(0) != direct::HELLO {
            return Err(protocol_error(&cmd.binary, &format!("sent an unexpected handshake ({:#x})", word(0))));
        }
        if word(1) != direct::VERSION {
            return Err(protocol_error(
                &cmd.binary,
                &format!("speaks rfuzz protocol v{} (this engine: v{})", word(1), direct::VERSION),
            ));
        }
        let map_size = word(2) as usize;
        if map_size == 0 || !map_size.is_multiple_of(64) || map_size > 256 << 20 {
            return Err(protocol_error(&cmd.binary, &format!("reported an invalid map size {map_size}")));
        }
        let table_cap = cfg.batch_entries + 1;
        let layout = Layout::new(
            map_size,
            table_cap,
            cfg.batch_bytes + cfg.max_input,
            cmplog::log_size(cfg.cmp_records),
            PATH_COUNTS,
        );
        let seg = Segment::create(layout.total_size).context("failed to create the shared-memory segment")?;
        let mut exec = DirectExecutor {
            fs,
            seg,
            layout,
            child: None,
            timeout: cfg.timeout,
            init_timeout: cfg.init_timeout,
            batch_cap: cfg.batch_entries,
            batch_len: 0,
            batch_used: 0,
            batch_bytes: cfg.batch_bytes,
            max_input: cfg.max_input,
            execs_since_fork: 0,
            describe: "rfuzz direct (persistent, batched)".to_string(),
        };
        layout.store(exec.header());
        exec.seg.slice_mut(layout.virgin_off, map_size).fill(0xff);
        exec.fs.write_u32(exec.seg.id() as u32)?;
        let mut reply = [0u8; 8];
        match exec.fs.read_timeout(&mut reply, cfg.init_timeout)? {
            ReadOutcome::Done => {}
            _ => bail!(TargetError(format!("the target failed the handshake: it {}", exec.fs.startup_failure()))),
        }
        let (tag, value) = split(&reply);
        if tag != direct::MSG_READY {
            return Err(protocol_error(
                &cmd.binary,
                &format!("refused the shared memory (reply {tag:#x}, code {value})"),
            ));
        }
        if !cmd.show_output {
            // Shown once, in the instance's output (its log under `run`).
            for w in exec.fs.startup_warnings() {
                eprintln!("{w}");
            }
            exec.fs.release_stderr();
        }
        Ok(exec)
    }

    fn header(&self) -> &Header {
        // SAFETY: the segment starts with a page reserved for the header,
        // is page-aligned, and Header is repr(C) of atomics, valid for any
        // bit pattern.
        unsafe { &*(self.seg.as_ptr() as *const Header) }
    }

    fn table(&self) -> &[Entry] {
        // SAFETY: the table area lies inside the segment (Layout::new), is
        // page-aligned, and Entry is repr(C) of atomics.
        unsafe {
            std::slice::from_raw_parts(
                self.seg.as_ptr().add(self.layout.table_off) as *const Entry,
                self.layout.table_cap,
            )
        }
    }

    fn single_slot(&self) -> usize {
        self.layout.table_cap - 1
    }

    fn ensure_child(&mut self) -> Result<()> {
        if self.child.is_some() && self.execs_since_fork >= RECYCLE_AFTER {
            let seq = self.header().exec_seq.load(Relaxed);
            self.fs.write_u32(direct::CMD_EXIT)?;
            self.wait_reply(None, seq)?;
            self.child = None;
        }
        if self.child.is_some() {
            return Ok(());
        }
        self.fs.write_u32(direct::CMD_FORK).context("the forkserver is gone")?;
        let mut reply = [0u8; 8];
        match self.fs.read_timeout(&mut reply, self.init_timeout)? {
            ReadOutcome::Done => {}
            _ => bail!(TargetError(format!("the forkserver stopped answering: it {}", self.fs.startup_failure()))),
        }
        let (tag, pid) = split(&reply);
        if tag != direct::MSG_PID {
            bail!(TargetError(format!("unexpected forkserver reply {tag:#x} to a fork request")));
        }
        self.child = Some(TargetChild::new(pid as i32));
        self.execs_since_fork = 0;
        Ok(())
    }

    /// Waits for the child's answer to a run command. With a timeout, a child
    /// that makes no progress for that long is killed — once it has started
    /// the command: a child killed before it read the command would leave it
    /// in the pipe, for the forkserver to take as its next command. (A fresh
    /// child on a loaded machine can take longer than a short timeout to be
    /// scheduled at all; it gets the start-up limit instead.)
    /// `sent_seq` is the execution counter read before the command was sent.
    fn wait_reply(&mut self, timeout: Option<Duration>, sent_seq: u64) -> Result<Reply> {
        let sent = std::time::Instant::now();
        let mut last_seq = sent_seq;
        let mut killed_at = None;
        loop {
            let mut msg = [0u8; 8];
            let wait = if killed_at.is_some() { self.init_timeout } else { timeout.unwrap_or(self.init_timeout) };
            match self.fs.read_timeout(&mut msg, wait)? {
                ReadOutcome::Done => {
                    let (tag, value) = split(&msg);
                    match tag {
                        direct::MSG_DONE if killed_at.is_some() => {
                            // The child finished just before our kill hit it:
                            // the run is complete, and the forkserver's report
                            // of the killed child follows. Consume it now, or
                            // the next command would take it for a crash.
                            let mut died = [0u8; 8];
                            if self.fs.read_timeout(&mut died, self.init_timeout)? != ReadOutcome::Done
                                || split(&died).0 != direct::MSG_DIED
                            {
                                bail!(TargetError("the forkserver did not report a killed child".into()));
                            }
                            self.child = None;
                            return Ok(Reply::Done(value as usize));
                        }
                        direct::MSG_DONE => return Ok(Reply::Done(value as usize)),
                        direct::MSG_DIED => {
                            self.child = None;
                            return Ok(match killed_at {
                                Some(i) => Reply::TimedOut(i),
                                None => Reply::Died(value as i32),
                            });
                        }
                        other => bail!(TargetError(format!("unexpected message {other:#x} from the target"))),
                    }
                }
                ReadOutcome::Eof => {
                    bail!(TargetError(format!("the forkserver died: it {}", self.fs.startup_failure())))
                }
                ReadOutcome::TimedOut => {
                    if killed_at.is_some() {
                        bail!(TargetError("the forkserver did not report a killed child".into()));
                    }
                    let seq = self.header().exec_seq.load(Relaxed);
                    if seq != last_seq && timeout.is_some() {
                        // Another input started since the last check: the
                        // batch is slow, not hung.
                        last_seq = seq;
                        continue;
                    }
                    if seq == sent_seq && timeout.is_some() {
                        if sent.elapsed() < self.init_timeout {
                            continue;
                        }
                        bail!(TargetError(format!(
                            "the target's child did not start its input within {}s",
                            self.init_timeout.as_secs()
                        )));
                    }
                    killed_at = Some(self.header().cur_index.load(Relaxed) as usize);
                    if let Some(child) = &self.child {
                        // Ask the child to publish the hung run's coverage
                        // (for hang de-duplication), then kill it.
                        child.signal(direct::DUMP_SIGNAL);
                        let deadline = std::time::Instant::now() + Duration::from_millis(50);
                        while self.header().map_dumped.load(Relaxed) == 0 && std::time::Instant::now() < deadline {
                            std::thread::sleep(Duration::from_micros(200));
                        }
                        child.kill();
                    }
                }
            }
        }
    }

    fn exit_kind(&self, status: i32) -> ExitKind {
        if !libc::WIFSIGNALED(status) {
            return ExitKind::Ok;
        }
        let signal = libc::WTERMSIG(status);
        match self.header().exit_reason.load(Relaxed) {
            direct::EXIT_OOM => ExitKind::Oom,
            direct::EXIT_STACK_OVERFLOW => ExitKind::Crash { signal, cause: CrashCause::StackOverflow },
            direct::EXIT_PANIC => ExitKind::Crash { signal, cause: CrashCause::Panic },
            direct::EXIT_SANITIZER => ExitKind::Crash {
                signal,
                cause: CrashCause::Sanitizer(super::SanitizerKind::new(&self.header().sanitizer_kind())),
            },
            _ => ExitKind::Crash { signal, cause: CrashCause::Signal },
        }
    }

    fn start_command(&mut self, start: usize, count: usize, flags: u32) -> Result<Reply> {
        self.ensure_child()?;
        let h = self.header();
        h.batch_start.store(start as u32, Relaxed);
        h.batch_count.store(count as u32, Relaxed);
        h.flags.store(flags, Relaxed);
        h.exit_reason.store(direct::EXIT_NONE, Relaxed);
        h.map_dumped.store(0, Relaxed);
        h.crash_sig.store(0, Relaxed);
        h.fault_pc.store(0, Relaxed);
        h.frames[0].store(0, Relaxed);
        h.cur_index.store(start as u32, Relaxed);
        let seq = h.exec_seq.load(Relaxed);
        self.fs.write_u32(direct::CMD_RUN).context("the target's forkserver is gone")?;
        let reply = self.wait_reply(Some(self.timeout), seq)?;
        let ran = match reply {
            Reply::Done(stop) => stop.min(count) - start + usize::from(stop < count),
            Reply::Died(_) | Reply::TimedOut(_) => self.header().cur_index.load(Relaxed) as usize + 1 - start,
        };
        self.execs_since_fork += ran as u64;
        Ok(reply)
    }

    fn write_single(&mut self, input: &[u8]) -> usize {
        let len = input.len().min(self.max_input);
        let off = self.batch_bytes;
        self.seg.slice_mut(self.layout.data_off + off, len).copy_from_slice(&input[..len]);
        let slot = self.single_slot();
        let e = &self.table()[slot];
        e.offset.store(off as u32, Relaxed);
        e.len.store(len as u32, Relaxed);
        slot
    }
}

fn split(msg: &[u8; 8]) -> (u32, u32) {
    (u32::from_ne_bytes(msg[..4].try_into().unwrap()), u32::from_ne_bytes(msg[4..].try_into().unwrap()))
}

impl Executor for DirectExecutor {
    fn map_size(&self) -> usize {
        self.layout.map_size
    }

    fn map(&self) -> &[u8] {
        self.seg.slice(self.layout.map_off, self.layout.map_size)
    }

    fn map_and_virgin(&mut self) -> (&mut [u8], &mut [u8]) {
        let (m, v, n) = (self.layout.map_off, self.layout.virgin_off, self.layout.map_size);
        let base = self.seg.as_ptr();
        // SAFETY: both ranges lie inside the segment (Layout::new) and do not
        // overlap; `&mut self` gives unique access on this side while the
        // child is idle.
        unsafe { (std::slice::from_raw_parts_mut(base.add(m), n), std::slice::from_raw_parts_mut(base.add(v), n)) }
    }

    fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn max_input_len(&self) -> usize {
        self.max_input
    }

    fn batch_clear(&mut self) {
        self.batch_len = 0;
        self.batch_used = 0;
    }

    fn batch_push(&mut self, input: &[u8]) -> bool {
        let len = input.len().min(self.max_input);
        if self.batch_len == self.batch_cap || self.batch_used + len > self.batch_bytes {
            return false;
        }
        let off = self.batch_used;
        self.seg.slice_mut(self.layout.data_off + off, len).copy_from_slice(&input[..len]);
        let e = &self.table()[self.batch_len];
        e.offset.store(off as u32, Relaxed);
        e.len.store(len as u32, Relaxed);
        self.batch_used += len;
        self.batch_len += 1;
        true
    }

    fn batch_len(&self) -> usize {
        self.batch_len
    }

    fn batch_input(&self, i: usize) -> &[u8] {
        let e = &self.table()[i];
        self.seg.slice(self.layout.data_off + e.offset.load(Relaxed) as usize, e.len.load(Relaxed) as usize)
    }

    fn run_batch(&mut self, from: usize, stop_on_new: bool) -> Result<BatchStop> {
        if from >= self.batch_len {
            return Ok(BatchStop::Completed);
        }
        let flags = direct::RUN_COUNT_PATHS | if stop_on_new { direct::RUN_STOP_ON_NEW } else { 0 };
        Ok(match self.start_command(from, self.batch_len, flags)? {
            Reply::Done(stop) if stop >= self.batch_len => BatchStop::Completed,
            Reply::Done(stop) => BatchStop::Interesting(stop),
            Reply::Died(status) => {
                let index = self.header().cur_index.load(Relaxed) as usize;
                BatchStop::Ended { index, kind: self.exit_kind(status) }
            }
            Reply::TimedOut(index) => BatchStop::Ended { index, kind: ExitKind::Timeout },
        })
    }

    fn run_one(&mut self, input: &[u8]) -> Result<ExitKind> {
        let slot = self.write_single(input);
        Ok(match self.start_command(slot, slot + 1, 0)? {
            Reply::Done(_) => ExitKind::Ok,
            Reply::Died(status) => self.exit_kind(status),
            Reply::TimedOut(_) => ExitKind::Timeout,
        })
    }

    fn run_cmplog(&mut self, input: &[u8]) -> Result<Option<Vec<Record>>> {
        let slot = self.write_single(input);
        self.start_command(slot, slot + 1, direct::RUN_CMPLOG)?;
        let off = self.layout.cmp_off;
        let bytes = self.seg.slice(off, self.layout.cmp_size);
        // SAFETY: the log area starts with a LogHeader (repr(C) atomics) and
        // is page-aligned inside the segment.
        let header = unsafe { &*(bytes.as_ptr() as *const LogHeader) };
        let cap = (self.layout.cmp_size - cmplog::HEADER_SIZE) / size_of::<Record>();
        let n = (header.count.load(Relaxed) as usize).min(cap);
        let records = &bytes[cmplog::HEADER_SIZE..cmplog::HEADER_SIZE + n * size_of::<Record>()];
        Ok(Some(
            records
                .chunks_exact(size_of::<Record>())
                // SAFETY: each chunk is one Record written by the child;
                // Record is plain old data valid for any bit pattern.
                .map(|c| unsafe { (c.as_ptr() as *const Record).read_unaligned() })
                .collect(),
        ))
    }

    fn path_hits(&self, hash: u64) -> u32 {
        let len = self.layout.paths_len;
        let off = self.layout.paths_off + (hash as usize & (len - 1)) * 4;
        u32::from_ne_bytes(self.seg.slice(off, 4).try_into().expect("4 bytes"))
    }

    fn death_info(&self) -> Option<super::Death> {
        let h = self.header();
        Some(super::Death {
            crash_sig: h.crash_sig.load(Relaxed),
            fault_pc: h.fault_pc.load(Relaxed),
            frames: h.frames.iter().map(|f| f.load(Relaxed)).take_while(|&f| f != 0).collect(),
        })
    }

    fn target_procs(&self) -> super::TargetProcs {
        let h = self.header();
        super::TargetProcs {
            started: h.procs_started.load(Relaxed),
            killed: h.procs_killed.load(Relaxed),
            refused: h.procs_refused.load(Relaxed),
        }
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}

impl Drop for DirectExecutor {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            child.kill();
            // The forkserver reaps the child and reports it; then Forkserver's
            // Drop closes the control pipe and the forkserver exits.
            let mut msg = [0u8; 8];
            let _ = self.fs.read_timeout(&mut msg, Duration::from_secs(2));
        }
    }
}
