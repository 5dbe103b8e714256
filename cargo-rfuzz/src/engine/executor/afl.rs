//! Client of the AFL++ 4.20+ forkserver protocol, for any AFL++-compatible
//! binary (ours included, when asked to behave like afl-fuzz).

use super::process::{Forkserver, ReadOutcome, TargetChild, TargetCommand, open_input_file};
use super::{BatchStop, CrashCause, Executor, ExitKind};
use crate::engine::TargetError;
use crate::engine::coverage::BUCKETS;
use crate::engine::shm::Segment;
use anyhow::{Context, Result, bail};
use rfuzz::protocol::{self, afl};
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

/// Largest map we offer an AFL++ target before it tells us its size.
const MAP_MAX: usize = 8 << 20;

/// How to drive an AFL++ target.
#[derive(Debug, Clone)]
pub struct AflConfig {
    /// Persistent mode (the binary has `##SIG_AFL_PERSISTENT##`).
    pub persistent: bool,
    /// File for file or stdin delivery of test cases.
    pub input_file: PathBuf,
    /// How long start-up may take.
    pub init_timeout: Duration,
    /// Per-input timeout.
    pub timeout: Duration,
    /// Largest input.
    pub max_input: usize,
}

/// Runs inputs through an AFL++-protocol forkserver.
#[derive(Debug)]
pub struct AflExecutor {
    fs: Forkserver,
    map_seg: Segment,
    map_size: usize,
    input_seg: Segment,
    virgin: Vec<u8>,
    use_shm_input: bool,
    input_file: File,
    persistent: bool,
    was_killed: bool,
    stopped_child: Option<TargetChild>,
    timeout: Duration,
    init_timeout: Duration,
    max_input: usize,
    batch: Vec<Vec<u8>>,
    batch_len: usize,
    path_counts: Vec<u32>,
    scratch: Vec<u8>,
    /// Tokens the target sent in its handshake (AFL++ auto-dictionary).
    pub autodict: Vec<Vec<u8>>,
}

/// Parses AFL++'s auto-dictionary: a sequence of `[len: u8][bytes]`.
fn parse_autodict(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < data.len() {
        let len = data[i] as usize;
        i += 1;
        if len == 0 || i + len > data.len() {
            break;
        }
        out.push(data[i..i + len].to_vec());
        i += len;
    }
    out
}

impl AflExecutor {
    /// Starts the target and completes the handshake.
    pub fn start(cmd: &TargetCommand, cfg: &AflConfig) -> Result<AflExecutor> {
        let map_seg = Segment::create(MAP_MAX).context("failed to create the coverage map")?;
        let input_seg = Segment::create(afl::MAX_FILE + afl::SHMEM_FUZZ_HDR_SIZE)
            .context("failed to create the test-case segment")?;
        let (input_file, stdin_dup) = open_input_file(&cfg.input_file)
            .with_context(|| format!("failed to create {}", cfg.input_file.display()))?;
        let stdin = if cmd.takes_file_argument() { Stdio::null() } else { Stdio::from(stdin_dup) };
        let mut env = vec![
            (protocol::SHM_ENV_VAR, map_seg.id().to_string()),
            (protocol::SHM_FUZZ_ENV_VAR, input_seg.id().to_string()),
            ("AFL_MAP_SIZE", MAP_MAX.to_string()),
        ];
        if cfg.persistent {
            env.push((protocol::PERSIST_ENV_VAR, "1".to_string()));
        }
        let mut fs = Forkserver::spawn(cmd, &env, Some(&cfg.input_file), stdin, false)
            .with_context(|| format!("failed to start {}", cmd.binary.display()))?;
        let hello = match fs.read_u32(cfg.init_timeout)? {
            Ok(h) => h,
            Err(ReadOutcome::TimedOut) => bail!(TargetError(format!(
                "{} did not start a forkserver within {}s: is it built with AFL++ or cargo rfuzz instrumentation?",
                cmd.binary.display(),
                cfg.init_timeout.as_secs()
            ))),
            Err(_) => bail!(TargetError(format!(
                "the target {} before its forkserver started: is {} instrumented (cargo rfuzz build, or AFL++)?",
                fs.startup_failure(),
                cmd.binary.display()
            ))),
        };
        let mut map_size = 1 << 16;
        let mut use_shm_input = false;
        let mut autodict = Vec::new();
        if hello & 0xffff_0000 == afl::ERROR {
            bail!(TargetError(format!("the target's forkserver reported error code {:#x}", hello & 0xffff)));
        } else if hello & 0xffff_ff00 == afl::FS_VERSION {
            fs.write_u32(hello ^ 0xffff_ffff)?;
            let read = |fs: &mut Forkserver| -> Result<u32> {
                fs.read_u32(cfg.init_timeout)?
                    .map_err(|_| TargetError("the forkserver handshake broke off".into()).into())
            };
            let options = read(&mut fs)?;
            if options & afl::OPT_MAPSIZE != 0 {
                map_size = (read(&mut fs)? as usize).div_ceil(64) * 64;
            }
            use_shm_input = options & afl::OPT_SHDMEM_FUZZ != 0;
            if options & afl::OPT_AUTODICT != 0 {
                let len = read(&mut fs)? as usize;
                if !(2..=0xff_ffff).contains(&len) {
                    bail!(TargetError(format!("the target sent an auto-dictionary of invalid size {len}")));
                }
                let mut dict = vec![0u8; len];
                if fs.read_timeout(&mut dict, cfg.init_timeout)? != ReadOutcome::Done {
                    bail!(TargetError("the forkserver handshake broke off".into()));
                }
                autodict = parse_autodict(&dict);
            }
            let again = read(&mut fs)?;
            if again != hello {
                bail!(TargetError(format!("unexpected end of the forkserver handshake ({again:#x})")));
            }
        } else if hello & 0x8000_0001 == 0x8000_0001 {
            bail!(TargetError(
                "the target was built with an AFL++ older than 4.20 (legacy forkserver options); rebuild it with a current AFL++".into()
            ));
        }
        if map_size == 0 || map_size > MAP_MAX {
            bail!(TargetError(format!("the target needs a map of {map_size} bytes (at most {MAP_MAX} supported)")));
        }
        Ok(AflExecutor {
            fs,
            map_seg,
            map_size,
            input_seg,
            virgin: vec![0xff; map_size],
            use_shm_input,
            input_file,
            persistent: cfg.persistent,
            was_killed: false,
            stopped_child: None,
            timeout: cfg.timeout,
            init_timeout: cfg.init_timeout,
            max_input: if use_shm_input { cfg.max_input.min(afl::MAX_FILE) } else { cfg.max_input },
            batch: Vec::new(),
            batch_len: 0,
            path_counts: vec![0; super::direct::PATH_COUNTS],
            scratch: Vec::new(),
            autodict,
        })
    }

    fn deliver(&mut self, input: &[u8]) -> Result<()> {
        let input = &input[..input.len().min(self.max_input)];
        if self.use_shm_input {
            let seg = self.input_seg.slice_mut(0, afl::SHMEM_FUZZ_HDR_SIZE + input.len());
            seg[..4].copy_from_slice(&(input.len() as u32).to_ne_bytes());
            seg[4..].copy_from_slice(input);
        } else {
            self.input_file.set_len(0)?;
            self.input_file.seek(SeekFrom::Start(0))?;
            self.input_file.write_all(input)?;
            self.input_file.seek(SeekFrom::Start(0))?;
        }
        Ok(())
    }

    fn exec(&mut self, input: &[u8]) -> Result<ExitKind> {
        self.deliver(input)?;
        self.map_seg.slice_mut(0, self.map_size).fill(0);
        self.fs.write_u32(u32::from(self.was_killed)).context("the target's forkserver is gone")?;
        self.was_killed = false;
        let pid = match self.fs.read_u32(self.init_timeout)? {
            Ok(p) => p as i32,
            Err(_) => bail!(TargetError(format!("the forkserver died: it {}", self.fs.startup_failure()))),
        };
        // A persistent child keeps its pid (and our pidfd of it) across runs.
        let child = match self.stopped_child.take() {
            Some(c) if c.pid() == pid => c,
            _ => TargetChild::new(pid),
        };
        let status = match self.fs.read_u32(self.timeout)? {
            Ok(s) => s as i32,
            Err(ReadOutcome::TimedOut) => {
                child.kill();
                self.was_killed = self.persistent;
                self.stopped_child = None;
                match self.fs.read_u32(self.init_timeout)? {
                    Ok(_) => return Ok(ExitKind::Timeout),
                    Err(_) => bail!(TargetError("the forkserver did not report a killed child".into())),
                }
            }
            Err(_) => bail!(TargetError(format!("the forkserver died: it {}", self.fs.startup_failure()))),
        };
        if libc::WIFSTOPPED(status) {
            self.stopped_child = Some(child);
            return Ok(ExitKind::Ok);
        }
        self.stopped_child = None;
        if libc::WIFSIGNALED(status) {
            return Ok(ExitKind::Crash { signal: libc::WTERMSIG(status), cause: CrashCause::Signal });
        }
        Ok(ExitKind::Ok)
    }
}

/// Whether raw counters have a bucket bit still set in `virgin`.
fn has_new_bits_raw(map: &[u8], virgin: &[u8]) -> bool {
    map.chunks_exact(8).zip(virgin.chunks_exact(8)).any(|(m, v)| {
        u64::from_ne_bytes(m.try_into().unwrap()) != 0 && m.iter().zip(v).any(|(&c, &vb)| BUCKETS[c as usize] & vb != 0)
    })
}

impl Executor for AflExecutor {
    fn map_size(&self) -> usize {
        self.map_size
    }

    fn map(&self) -> &[u8] {
        self.map_seg.slice(0, self.map_size)
    }

    fn map_and_virgin(&mut self) -> (&mut [u8], &mut [u8]) {
        (self.map_seg.slice_mut(0, self.map_size), &mut self.virgin)
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
    }

    fn batch_push(&mut self, input: &[u8]) -> bool {
        if self.batch_len == 256 {
            return false;
        }
        if self.batch.len() == self.batch_len {
            self.batch.push(Vec::new());
        }
        let slot = &mut self.batch[self.batch_len];
        slot.clear();
        slot.extend_from_slice(&input[..input.len().min(self.max_input)]);
        self.batch_len += 1;
        true
    }

    fn batch_len(&self) -> usize {
        self.batch_len
    }

    fn batch_input(&self, i: usize) -> &[u8] {
        &self.batch[i]
    }

    fn run_batch(&mut self, from: usize, stop_on_new: bool) -> Result<BatchStop> {
        for i in from..self.batch_len {
            let input = std::mem::take(&mut self.batch[i]);
            let kind = self.exec(&input);
            self.batch[i] = input;
            match kind? {
                ExitKind::Ok => {}
                kind => return Ok(BatchStop::Ended { index: i, kind }),
            }
            // Count the path, as the rfuzz runtime does in its child.
            self.scratch.clear();
            self.scratch.extend_from_slice(self.map_seg.slice(0, self.map_size));
            crate::engine::coverage::classify(&mut self.scratch);
            let slot = crate::engine::coverage::hash(&self.scratch) as usize & (self.path_counts.len() - 1);
            self.path_counts[slot] = self.path_counts[slot].wrapping_add(1);
            if stop_on_new && has_new_bits_raw(self.map(), &self.virgin) {
                return Ok(BatchStop::Interesting(i));
            }
        }
        Ok(BatchStop::Completed)
    }

    fn run_one(&mut self, input: &[u8]) -> Result<ExitKind> {
        self.exec(input)
    }

    fn run_cmplog(&mut self, _input: &[u8]) -> Result<Option<Vec<rfuzz::protocol::cmplog::Record>>> {
        Ok(None)
    }

    fn path_hits(&self, hash: u64) -> u32 {
        self.path_counts[hash as usize & (self.path_counts.len() - 1)]
    }

    fn describe(&self) -> String {
        format!(
            "AFL++ {}{}",
            if self.persistent { "persistent" } else { "fork" },
            if self.use_shm_input { ", shared-memory input" } else { "" }
        )
    }
}

impl Drop for AflExecutor {
    fn drop(&mut self) {
        if let Some(child) = self.stopped_child.take() {
            child.kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autodict_entries_are_length_prefixed() {
        assert_eq!(parse_autodict(b"\x03abc\x01z"), vec![b"abc".to_vec(), b"z".to_vec()]);
        assert_eq!(parse_autodict(b"\x05ab"), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn raw_new_bits_use_buckets() {
        let mut virgin = vec![0xffu8; 8];
        virgin[0] = !4; // bucket 4 (3 hits) seen
        let mut map = vec![0u8; 8];
        map[0] = 3;
        assert!(!has_new_bits_raw(&map, &virgin));
        map[0] = 4;
        assert!(has_new_bits_raw(&map, &virgin));
    }
}
