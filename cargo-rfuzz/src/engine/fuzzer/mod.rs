//! The fuzzing loop of one instance.
//!
//! ```text
//! setup: lock the instance dir, start the executor, load the queue (resume)
//!        or the seeds, dry-run and calibrate them, derive the timeout
//! loop:  pick an entry (weighted) -> compare-log stage once
//!        -> deterministic stage once (-D) -> havoc/splice batches
//!        every batch: handle the input it stopped at (new coverage:
//!        calibrate, trim, then queue, written once; crash: dedup and save;
//!        timeout: confirm and save), then housekeeping (stats, UI, sync,
//!        stop conditions)
//! ```
//!
//! The parts, one file each: `setup` (instance directory, executor,
//! dictionaries, resume or seeds), `feedback` (what an execution found),
//! `batch` (executor requests, imports), `stages` (mutation stages and
//! energy), `stats` (fuzzer_stats, plot_data, status screen).

mod batch;
mod feedback;
mod setup;
mod stages;
mod stats;

use super::bugs::{self, BugTable};
use super::config::{Config, ExecutorChoice, Role, Schedule};
use super::corpus::{Corpus, Testcase};
use super::coverage::{self, NewBits};
use super::dict::{self, Dictionary};
use super::executor::afl::{AflConfig, AflExecutor};
use super::executor::direct::{DirectConfig, DirectExecutor};
use super::executor::{BatchStop, BinaryKind, CrashCause, Executor, ExitKind, inspect_binary};
use super::mutator::{self, Deterministic, Sources};
use super::rng::Rng;
use super::ui::Ui;
use super::{TargetError, cmplog};
use crate::exit::UsageError;
use crate::report::InstanceStats;
use crate::sync::import::Importer;
use crate::sync::layout::{self, InstanceLock, LockError, Origin};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Runs per calibration of a new entry (more when coverage varies): AFL++'s
/// fast calibration. Calibration runs one input at a time, and in the first
/// second, when finds come every few hundred executions, 8 runs each took
/// a quarter of the time.
const CAL_CYCLES: usize = 3;
const CAL_CYCLES_LONG: usize = 40;
/// Havoc iterations per 100 points of performance score.
const HAVOC_CYCLES: f64 = 256.0;
/// Fewest havoc iterations per entry.
const HAVOC_MIN: usize = 16;
/// Input-to-state candidates tried per entry.
const I2S_MAX: usize = 256;
/// Inputs up to this size get the deterministic stage.
const DET_MAX_LEN: usize = 1024;
/// Default per-input timeout while nothing is calibrated yet.
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(1000);
/// Mutants start out no longer than this (or the longest seed) and the
/// limit grows while fuzzing, as libFuzzer's `-len_control` does: short
/// inputs run faster and keep mutations local.
const MIN_LEN_LIMIT: usize = 64;

/// Executions without a find, per bit of the length limit, before it grows.
const LEN_CONTROL: u64 = 100;

/// The operation name of a deep mutant, one that also repeats a chunk up to
/// the length limit (ordinary mutants stay within the short limit; see
/// [`batch::DeepCost`]), in queue and crash file names.
const DEEP_OP: &str = "havoc-deep";

/// Share of the run's time that trimming new entries may take, plus a
/// start-up allowance (the seeds and the first finds are trimmed in full),
/// and the most one entry's trimming may take.
const TRIM_SHARE: f64 = 0.1;
const TRIM_ALLOWANCE: Duration = Duration::from_secs(2);
const TRIM_MAX: Duration = Duration::from_millis(100);
/// Finds in the run's first seconds are queued untrimmed (seeds are still
/// trimmed): they come every few hundred executions, are no longer than the
/// short limit, and trimming them one run at a time cost more than it saved.
const TRIM_FROM: Duration = Duration::from_secs(2);

/// Share of the run's time that confirming hangs (runs at the hang timeout)
/// may take, after the first confirmation.
const CONFIRM_SHARE: f64 = 0.05;

/// Timeouts of an entry's mutants before it may be set aside.
const SET_ASIDE_TIMEOUTS: u32 = 3;

/// Most timeouts per minute before every further one sets its parent aside.
const MAX_TIMEOUTS_PER_MIN: u64 = 150;

/// Built-in seeds when no seed corpus is given.
const BUILTIN_SEEDS: [&[u8]; 2] = [b"0123456789abcdef", b"\n"];

/// How an instance ended.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Crash files saved (including those of earlier runs of the instance).
    pub saved_crashes: u64,
    /// Unique hangs saved.
    pub saved_hangs: u64,
    /// Crash files saved by this run.
    pub new_crashes: Vec<PathBuf>,
    /// Stopped by a signal rather than by a time limit.
    pub interrupted: bool,
}

/// An operation that produced a batch entry, for queue names.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// A mutant of entry `src`.
    Mutant {
        /// Index of the parent entry.
        src: usize,
        name: &'static str,
        rep: u32,
        other: Option<u32>,
    },
    /// Entry `id` of peer `peer` (an index into `Fuzzer::peers`).
    Import { peer: usize, id: u32 },
}

/// A batch should take about this long, so stats, the UI and stop requests
/// stay responsive on slow targets.
const BATCH_TARGET_US: u64 = 100_000;

/// One fuzzing instance.
pub struct Fuzzer {
    cfg: Config,
    dir: PathBuf,
    _lock: InstanceLock,
    exec: Box<dyn Executor>,
    corpus: Corpus,
    rng: Rng,
    user_dict: Dictionary,
    auto_dict: Dictionary,
    virgin_crash: Vec<u8>,
    virgin_tmout: Vec<u8>,
    /// Hit counts deep mutants reached that are kept out of the main virgin
    /// map (with `--cmp-progress` only, see `feedback::handle`).
    virgin_deep: Vec<u8>,
    /// Crash signatures seen, and the files kept per signature.
    crash_bugs: BugTable,
    /// Hang sites seen, and the files kept per site.
    hang_bugs: BugTable,
    /// Names the frames of fatal signals (the target's debug information,
    /// read at the first such crash).
    frame_namer: crate::triage::frames::FrameNamer,
    /// When the timeouts of the last minute happened.
    recent_timeouts: std::collections::VecDeque<Instant>,
    var_bytes: Vec<bool>,
    var_count: u32,
    importer: Option<Importer>,
    /// Peer instance ids seen by the importer (indexed by `Op::Import`).
    peers: Vec<String>,
    ui: Ui,
    buf: Vec<u8>,
    ops: Vec<Op>,
    /// Deep mutants waiting for their own batch (see [`batch::DeepCost`]).
    deep: Vec<(Vec<u8>, Op)>,
    /// What deep mutants cost against the others.
    deep_cost: batch::DeepCost,
    // Statistics.
    start: Instant,
    start_unix: u64,
    execs: u64,
    execs_before: u64,
    run_time_before: u64,
    cycles_done: u64,
    cycle_left: usize,
    corpus_found: u64,
    corpus_imported: u64,
    saved_crashes: u64,
    saved_hangs: u64,
    total_crashes: u64,
    total_tmout: u64,
    last_find: u64,
    last_crash: u64,
    last_hang: u64,
    last_import: u64,
    next_crash_id: u32,
    next_hang_id: u32,
    new_crashes: Vec<PathBuf>,
    stage: &'static str,
    cur_item: usize,
    eps_samples: Vec<(Instant, u64)>,
    next_housekeeping: Instant,
    next_plot: Instant,
    hang_timeout: Duration,
    max_len: usize,
    /// Current limit on mutant length (grows, see `grow_len_limit`): what
    /// the repeated-chunk mutation of a deep mutant may reach.
    len_limit: usize,
    /// Current limit on ordinary mutants (at most `len_limit`; grows in
    /// quiet stretches, see [`batch::LenPace`]).
    short_limit: usize,
    execs_at_last_find: u64,
    execs_at_last_growth: u64,
    /// What mutants cost per byte (length control; see [`batch::LenCost`]).
    len_cost: batch::LenCost,
    /// When the length limit may grow (see [`batch::LenPace`]).
    len_pace: batch::LenPace,
    batch_limit: usize,
    /// Time spent trimming new entries (see [`TRIM_SHARE`]).
    trim_time: Duration,
    /// Time spent confirming hangs (see [`CONFIRM_SHARE`]).
    confirm_time: Duration,
    /// Whether hitting `--max-procs` was reported (once).
    procs_cap_reported: bool,
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Fuzzer {
    fn elapsed_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64 + self.run_time_before * 1000
    }

    fn total_execs(&self) -> u64 {
        self.execs_before + self.execs
    }

    /// The main loop; returns when stopped.
    pub fn fuzz(&mut self) -> Result<Outcome> {
        let mut interrupted = false;
        // A stop signal reaches the target's forkserver too (Ctrl-C in a
        // terminal, `run`'s SIGTERM to the instance's group), which then
        // ends its child and exits: once a stop was requested, a target
        // that went away is the stop, not an error.
        let stopped = |r: Result<()>| match r {
            Err(_) if crate::sys::signal::stop_requested() => Ok(true),
            Err(e) => Err(e),
            Ok(()) => Ok(false),
        };
        loop {
            if stopped(self.housekeeping())? || crate::sys::signal::stop_requested() {
                interrupted = true;
                break;
            }
            if self.time_is_up() {
                break;
            }
            let exec = &self.exec;
            let idx = self.corpus.select(&mut self.rng, &|h| exec.path_hits(h));
            if stopped(self.fuzz_one(idx))? {
                interrupted = true;
                break;
            }
            self.cycle_left = self.cycle_left.saturating_sub(1);
            if self.cycle_left == 0 {
                self.cycles_done += 1;
                self.cycle_left = self.corpus.entries.len();
            }
        }
        // Mutants not run yet are dropped; nothing was learned from them.
        self.exec.batch_clear();
        self.ops.clear();
        self.deep.clear();
        self.stage = "stopped";
        // A last import, so nothing peers found in their final seconds is lost.
        stopped(self.sync_now())?;
        self.write_stats()?;
        Ok(Outcome {
            saved_crashes: self.saved_crashes,
            saved_hangs: self.saved_hangs,
            new_crashes: self.new_crashes.clone(),
            interrupted,
        })
    }

    fn time_is_up(&self) -> bool {
        self.cfg.max_total_time.is_some_and(|t| self.start.elapsed() >= t)
            || (self.cfg.exit_on_crash && !self.new_crashes.is_empty())
    }

    fn stopping(&self) -> bool {
        crate::sys::signal::stop_requested() || self.time_is_up()
    }

    fn fuzz_one(&mut self, idx: usize) -> Result<()> {
        self.cur_item = idx;
        if self.cfg.cmplog && !self.corpus.entries[idx].cmplog_done && !self.stopping() {
            self.cmplog_stage(idx)?;
        }
        let det = self.cfg.deterministic;
        if det && !self.corpus.entries[idx].det_done && !self.stopping() {
            self.det_stage(idx)?;
        }
        if !self.stopping() && self.cfg.havoc {
            self.havoc_stage(idx)?;
        } else if !self.stopping() {
            // Without havoc nothing else fills the batch: run what is pending.
            self.flush()?;
        }
        let e = &mut self.corpus.entries[idx];
        e.was_fuzzed = true;
        e.fuzz_level += 1;
        self.corpus.touch();
        Ok(())
    }
}

/// Runs an instance to the end.
pub fn run(cfg: Config) -> Result<Outcome> {
    use crate::sys::process::{become_subreaper, reap_orphans};
    become_subreaper();
    let result = Fuzzer::setup(cfg).and_then(|mut f| {
        let r = f.fuzz();
        f.finish_ui();
        r
    });
    // The executor is gone: collect any target process re-parented to us.
    for _ in 0..20 {
        reap_orphans(&[]);
        std::thread::sleep(Duration::from_millis(10));
    }
    result
}
