//! Running the inputs through the coverage build: one process per input
//! (a crash or a hang ends only that input's run), on several threads,
//! each process in its own group and killed with it at the time limit; the
//! flags each run writes are folded into per-block, per-line and
//! per-function counts of the inputs that reached them.

use super::symbols::{BlockMap, NONE};
use crate::exit::TargetError;
use crate::sys::process;
use crate::triage::replay::Replayer;
use anyhow::{Context, Result};
use rfuzz::protocol::coverage as proto;
use serde::Serialize;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How the runs went.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Runs {
    /// Inputs run.
    pub replayed: usize,
    /// Runs that ended with a signal (a panic's abort, a fault); their
    /// coverage counts (the runtime writes it before the process dies).
    pub crashed: usize,
    /// Runs killed at the time limit; their coverage does not count.
    pub timed_out: usize,
    /// Runs that ended without writing coverage (killed by something else
    /// than the time limit, such as the memory limit).
    pub no_coverage: usize,
}

/// Counts of the inputs that reached each block, line and function.
#[derive(Debug, Clone)]
pub struct Merged {
    /// Per block of the table.
    pub blocks: Vec<u32>,
    /// Per entry of [`BlockMap::lines`].
    pub lines: Vec<u32>,
    /// Per entry of [`BlockMap::functions`].
    pub functions: Vec<u32>,
    /// How the runs went.
    pub runs: Runs,
}

/// Folds the flags of one run after another into [`Merged`]: a line or
/// function counts an input once however many of its blocks the input
/// reached (an epoch per line and function, no clearing per input).
pub struct Merger<'a> {
    map: &'a BlockMap,
    merged: Merged,
    epoch: u32,
    line_seen: Vec<u32>,
    fn_seen: Vec<u32>,
}

impl<'a> Merger<'a> {
    /// A merger for the blocks of `map`.
    pub fn new(map: &'a BlockMap) -> Merger<'a> {
        Merger {
            map,
            merged: Merged {
                blocks: vec![0; map.blocks.len()],
                lines: vec![0; map.lines.len()],
                functions: vec![0; map.functions.len()],
                runs: Runs::default(),
            },
            epoch: 0,
            line_seen: vec![0; map.lines.len()],
            fn_seen: vec![0; map.functions.len()],
        }
    }

    /// Adds the flags of one input (one byte per block, nonzero: reached).
    pub fn add(&mut self, flags: &[u8]) {
        self.epoch += 1;
        for (i, _) in flags.iter().enumerate().filter(|(_, f)| **f != 0) {
            let Some(b) = self.map.blocks.get(i) else { break };
            self.merged.blocks[i] += 1;
            for &line in &b.lines {
                if self.line_seen[line as usize] != self.epoch {
                    self.line_seen[line as usize] = self.epoch;
                    self.merged.lines[line as usize] += 1;
                }
            }
            if b.function != NONE && self.fn_seen[b.function as usize] != self.epoch {
                self.fn_seen[b.function as usize] = self.epoch;
                self.merged.functions[b.function as usize] += 1;
            }
        }
    }

    /// The counts.
    pub fn finish(self) -> Merged {
        self.merged
    }
}

/// The result of the probe run: the block table.
pub fn probe(replayer: &Replayer, scratch: &Path) -> Result<Vec<(u64, u64)>> {
    let empty = scratch.join("probe-input");
    let pcs = scratch.join("probe-pcs");
    let flags = scratch.join("probe-flags");
    let stderr_path = scratch.join("probe-stderr");
    std::fs::write(&empty, b"").with_context(|| format!("failed to write {}", empty.display()))?;
    let stderr =
        std::fs::File::create(&stderr_path).with_context(|| format!("failed to create {}", stderr_path.display()))?;
    let mut c = replayer.command(&empty, false)?;
    c.env(proto::PCS_ENV_VAR, &pcs).env(proto::OUT_ENV_VAR, &flags).stderr(stderr);
    let mut child = c.spawn().with_context(|| format!("failed to run {}", replayer.binary().display()))?;
    // Start-up alone: a generous limit.
    let status = process::run_group_for(&mut child, replayer.timeout().max(Duration::from_secs(10)))?;
    let tail = process::read_tail(&stderr_path, 4096);
    // What it said, on one line.
    let said = process::tail_lines(&tail, 3).lines().map(str::trim).collect::<Vec<_>>().join(" ");
    let said = if said.is_empty() { String::new() } else { format!(" ({said})") };
    let binary = replayer.binary().display();
    let Some(table) = std::fs::read(&pcs).ok().and_then(|d| proto::parse_pcs(&d)) else {
        let how = status.map_or_else(|| "did not finish in time".to_string(), process::describe_status);
        anyhow::bail!(TargetError(format!(
            "the coverage build {binary} wrote no block table: it {how} before its harness ran{said}; check that it starts with `{binary} /dev/null`"
        )));
    };
    // The probe's empty input runs after start-up: a crash before it is a
    // crash at start-up (every input would crash the same way).
    if status.is_some_and(|s| s.signal().is_some()) && !tail.contains("rfuzz: running") {
        anyhow::bail!(TargetError(format!(
            "the coverage build {binary} crashes at start-up, before any input runs{said}: fix the target's `init:` code or environment (`{binary} /dev/null` shows the crash)"
        )));
    }
    if table.is_empty() {
        anyhow::bail!(TargetError(format!("{binary} has no coverage blocks: it is not a coverage build")));
    }
    if let Some(f) = std::fs::read(&flags).ok().as_deref().and_then(proto::parse_flags)
        && f.len() != table.len()
    {
        anyhow::bail!(TargetError(format!(
            "{binary} has {} block flags but {} table entries: its blocks cannot be told apart (was C code instrumented into it?)",
            f.len(),
            table.len()
        )));
    }
    Ok(table)
}

/// Runs every input on `jobs` threads and merges their flags. `progress`
/// is called after each run with the number done.
pub fn replay_all(
    replayer: &Replayer,
    inputs: &[PathBuf],
    scratch: &Path,
    map: &BlockMap,
    jobs: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Merged> {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let merger = Mutex::new(Merger::new(map));
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for worker in 0..jobs.clamp(1, inputs.len().max(1)) {
            let (next, done, merger, failure) = (&next, &done, &merger, &failure);
            s.spawn(move || {
                let out = scratch.join(format!("flags-{worker}"));
                loop {
                    if crate::sys::signal::stop_requested() {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(input) = inputs.get(i) else { break };
                    match run_one(replayer, input, &out) {
                        Ok(outcome) => {
                            let mut m = merger.lock().unwrap_or_else(|e| e.into_inner());
                            m.merged.runs.replayed += 1;
                            match outcome {
                                Outcome::TimedOut => m.merged.runs.timed_out += 1,
                                Outcome::Ended { crashed, flags } => {
                                    m.merged.runs.crashed += crashed as usize;
                                    match flags {
                                        Some(f) => m.add(&f),
                                        None => m.merged.runs.no_coverage += 1,
                                    }
                                }
                            }
                        }
                        Err(e) => {
                            failure.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(e);
                            break;
                        }
                    }
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1);
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    if crate::sys::signal::stop_requested() {
        anyhow::bail!(crate::exit::Interrupted("the replays were stopped".into()));
    }
    Ok(merger.into_inner().unwrap_or_else(|e| e.into_inner()).finish())
}

enum Outcome {
    TimedOut,
    Ended { crashed: bool, flags: Option<Vec<u8>> },
}

/// One run of `input`, its flags written to `out`.
fn run_one(replayer: &Replayer, input: &Path, out: &Path) -> Result<Outcome> {
    // A run that dies before the runtime opens the file must not leave the
    // previous run's flags there.
    match std::fs::remove_file(out) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("failed to remove {}", out.display()));
        }
        _ => {}
    }
    let mut c = replayer.command(input, false)?;
    c.env(proto::OUT_ENV_VAR, out);
    let mut child = c.spawn().with_context(|| format!("failed to run {}", replayer.binary().display()))?;
    let Some(status) = process::run_group_for(&mut child, replayer.timeout())? else {
        return Ok(Outcome::TimedOut);
    };
    let flags = std::fs::read(out).ok().and_then(|d| proto::parse_flags(&d).map(<[u8]>::to_vec));
    Ok(Outcome::Ended { crashed: status.signal().is_some(), flags })
}

#[cfg(test)]
mod tests {
    use super::super::symbols::{Block, Function};
    use super::*;

    #[test]
    fn lines_and_functions_count_each_input_once() {
        // Two functions; line 0 has two blocks, line 1 one (and one block
        // that spans both lines); block 3 has no line.
        let map = BlockMap {
            files: vec!["/r/src/lib.rs".into()],
            lines: vec![(0, 10), (0, 11)],
            functions: vec![
                Function { name: "a".into(), file: 0, line: 10 },
                Function { name: "b".into(), file: 0, line: 11 },
            ],
            blocks: vec![
                Block { lines: vec![0], function: 0 },
                Block { lines: vec![0, 1], function: 0 },
                Block { lines: vec![1], function: 1 },
                Block { lines: vec![], function: 1 },
            ],
        };
        let mut m = Merger::new(&map);
        m.add(&[1, 1, 0, 0]);
        m.add(&[1, 0, 0, 1]);
        m.add(&[0, 0, 0, 0]);
        m.add(&[1, 1]); // a short file reaches what it names
        let r = m.finish();
        assert_eq!(r.blocks, vec![3, 2, 0, 1]);
        assert_eq!(r.lines, vec![3, 2], "a line counts an input once, however many of its blocks it reached");
        assert_eq!(r.functions, vec![3, 1]);
    }
}
