//! The fuzzing loop of one instance.
//!
//! ```text
//! setup: lock the instance dir, start the executor, load the queue (resume)
//!        or the seeds, dry-run and calibrate them, derive the timeout
//! loop:  pick an entry (weighted) -> trim once -> compare-log stage once
//!        -> deterministic stage once (-D) -> havoc/splice batches
//!        every batch: handle the input it stopped at (new coverage: calibrate
//!        and queue; crash: dedup and save; timeout: confirm and save),
//!        then housekeeping (stats, UI, sync, stop conditions)
//! ```

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

/// Runs per calibration of a new entry (more when coverage varies).
const CAL_CYCLES: usize = 8;
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

/// Built-in seeds when no seed corpus is given.
const BUILTIN_SEEDS: [&[u8]; 2] = [b"0123456789abcdef", b"\n"];

/// How an instance ended.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Unique crashes saved (including those of earlier runs of the instance).
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
    var_bytes: Vec<bool>,
    var_count: u32,
    importer: Option<Importer>,
    /// Peer instance ids seen by the importer (indexed by `Op::Import`).
    peers: Vec<String>,
    ui: Ui,
    buf: Vec<u8>,
    ops: Vec<Op>,
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
    /// Current limit on mutant length (grows, see `grow_len_limit`).
    len_limit: usize,
    execs_at_last_find: u64,
    execs_at_last_growth: u64,
    batch_limit: usize,
    /// Whether hitting `--max-procs` was reported (once).
    procs_cap_reported: bool,
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Seed files of a directory (recursively, hidden files skipped), sorted.
fn list_seeds(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let Ok(t) = e.file_type() else { continue };
        if t.is_file() {
            out.push(e.path());
        } else if t.is_dir() && depth < 8 {
            list_seeds(&e.path(), out, depth + 1);
        }
    }
}

impl Fuzzer {
    /// Prepares the instance directory, starts the target and loads the
    /// queue or seeds.
    pub fn setup(cfg: Config) -> Result<Fuzzer> {
        layout::validate_instance_id(&cfg.id).map_err(UsageError)?;
        if cfg.sync_dir.exists() && !cfg.sync_dir.is_dir() {
            bail!(UsageError(format!(
                "-o {} is a file, not a directory: pass a directory for the sync dir",
                cfg.sync_dir.display()
            )));
        }
        let dir = layout::instance_dir(&cfg.sync_dir, &cfg.id);
        std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
        let lock = match InstanceLock::acquire(&dir) {
            Ok(l) => l,
            Err(LockError::Held(pid)) => bail!(UsageError(format!(
                "instance `{}` in {} is in use by a running fuzzer{}: pick another id (-S NAME) or stop it first",
                cfg.id,
                cfg.sync_dir.display(),
                pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
            ))),
            Err(LockError::Io(e)) => {
                return Err(e).with_context(|| format!("failed to lock {}", dir.display()));
            }
        };
        for sub in [layout::QUEUE, layout::CRASHES, layout::HANGS, layout::SYNCED] {
            let p = dir.join(sub);
            std::fs::create_dir_all(&p).with_context(|| format!("failed to create {}", p.display()))?;
        }
        let main_marker = dir.join(layout::IS_MAIN_NODE);
        match cfg.role {
            Role::Main => std::fs::write(&main_marker, "")
                .with_context(|| format!("failed to write {}", main_marker.display()))?,
            Role::Secondary => {
                let _ = std::fs::remove_file(&main_marker);
            }
        }

        if !cfg.target.binary.is_file() {
            bail!(UsageError(format!("target binary {} does not exist", cfg.target.binary.display())));
        }
        let kind = inspect_binary(&cfg.target.binary)?;
        let initial_timeout = cfg.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let init_timeout = Duration::from_secs(20).max(initial_timeout * 10);
        let mut target = cfg.target.clone();
        target.mem_limit_mb = cfg.mem_limit_mb;
        if cfg.cmp_progress {
            target.env.push((rfuzz::protocol::CMP_PROGRESS_ENV_VAR.into(), "1".into()));
        }
        let afl_cfg = |persistent| AflConfig {
            persistent,
            input_file: dir.join(layout::CUR_INPUT),
            init_timeout,
            timeout: initial_timeout,
            max_input: cfg.max_len,
        };
        let mut autodict = Vec::new();
        let exec: Box<dyn Executor> = match (kind, cfg.executor) {
            (BinaryKind::Rfuzz, ExecutorChoice::Auto) => Box::new(DirectExecutor::start(
                &target,
                &DirectConfig {
                    max_input: cfg.max_len,
                    timeout: initial_timeout,
                    init_timeout,
                    ..DirectConfig::default()
                },
            )?),
            (BinaryKind::Rfuzz, ExecutorChoice::Afl) => Box::new(AflExecutor::start(&target, &afl_cfg(true))?),
            (BinaryKind::Afl { persistent }, _) => {
                let e = AflExecutor::start(&target, &afl_cfg(persistent))?;
                autodict = e.autodict.clone();
                Box::new(e)
            }
            (BinaryKind::Plain, _) if super::executor::is_libfuzzer_binary(&cfg.target.binary)? => {
                bail!(TargetError(format!(
                    "{} is a libFuzzer binary (built by `cargo fuzz`, or against the real libfuzzer-sys), not an rfuzz one: build it with `cargo rfuzz build`",
                    cfg.target.binary.display()
                )))
            }
            (BinaryKind::Plain, _) => bail!(TargetError(format!(
                "{} is not instrumented (no rfuzz runtime or AFL++ forkserver in it): build fuzz targets with `cargo rfuzz build`",
                cfg.target.binary.display()
            ))),
        };
        let map_size = exec.map_size();
        let mut user_dict = Dictionary::with_capacity(usize::MAX);
        for d in &cfg.dicts {
            for t in dict::load(d)? {
                user_dict.add(&t);
            }
        }
        let mut auto_dict = Dictionary::with_capacity(2048);
        for t in autodict {
            auto_dict.add(&t);
        }
        let now = Instant::now();
        let max_len = cfg.max_len.min(exec.max_input_len());
        let rng = cfg.rng_seed.map(Rng::new).unwrap_or_else(Rng::from_os);
        let importer = cfg.sync.then(|| Importer::new(&cfg.sync_dir, &cfg.id));
        let ui = Ui::new(cfg.ui);
        let mut f = Fuzzer {
            corpus: Corpus::new(dir.join(layout::QUEUE), map_size),
            dir,
            _lock: lock,
            exec,
            rng,
            user_dict,
            auto_dict,
            virgin_crash: vec![0xff; map_size],
            virgin_tmout: vec![0xff; map_size],
            var_bytes: vec![false; map_size],
            var_count: 0,
            importer,
            peers: Vec::new(),
            ui,
            buf: Vec::new(),
            ops: Vec::new(),
            start: now,
            start_unix: unix_now(),
            execs: 0,
            execs_before: 0,
            run_time_before: 0,
            cycles_done: 0,
            cycle_left: 0,
            corpus_found: 0,
            corpus_imported: 0,
            saved_crashes: 0,
            saved_hangs: 0,
            total_crashes: 0,
            total_tmout: 0,
            last_find: 0,
            last_crash: 0,
            last_hang: 0,
            last_import: 0,
            next_crash_id: 0,
            next_hang_id: 0,
            new_crashes: Vec::new(),
            stage: "init",
            cur_item: 0,
            eps_samples: vec![(now, 0)],
            next_housekeeping: now,
            next_plot: now,
            hang_timeout: initial_timeout.max(DEFAULT_TIMEOUT),
            max_len,
            len_limit: max_len.min(MIN_LEN_LIMIT),
            execs_at_last_find: 0,
            execs_at_last_growth: 0,
            batch_limit: 1,
            procs_cap_reported: false,
            cfg,
        };
        f.write_setup_files()?;
        f.load_corpus()?;
        Ok(f)
    }

    fn write_setup_files(&self) -> Result<()> {
        let env: Vec<String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("AFL_") || k.starts_with("RFUZZ_"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let setup = format!(
            "# cargo rfuzz {}\nhost: {}\ninstance: {}\nrole: {}\npid: {}\n# environment variables:\n{}# command line:\n{}\n",
            env!("CARGO_PKG_VERSION"),
            crate::sync::status::local_host(),
            self.cfg.id,
            if self.cfg.role == Role::Main { "main" } else { "secondary" },
            std::process::id(),
            env.iter().map(|l| format!("{l}\n")).collect::<String>(),
            self.cfg.command_line
        );
        layout::write_atomic(&self.dir.join(layout::FUZZER_SETUP), setup.as_bytes())?;
        let mut cmdline = self.cfg.target.binary.to_string_lossy().into_owned();
        for a in &self.cfg.target.args {
            cmdline.push('\n');
            cmdline.push_str(&a.to_string_lossy());
        }
        cmdline.push('\n');
        layout::write_atomic(&self.dir.join(layout::CMDLINE), cmdline.as_bytes())?;
        let binary = std::fs::read(&self.cfg.target.binary).unwrap_or_default();
        layout::write_atomic(
            &self.dir.join(layout::TARGET_HASH),
            format!("{:016x}\n", layout::fnv1a([binary.as_slice()])).as_bytes(),
        )?;
        Ok(())
    }

    fn elapsed_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64 + self.run_time_before * 1000
    }

    fn total_execs(&self) -> u64 {
        self.execs_before + self.execs
    }

    /// Resumes an existing queue, or loads the seeds.
    fn load_corpus(&mut self) -> Result<()> {
        let queue = layout::list_entries(&self.dir.join(layout::QUEUE));
        self.next_crash_id = layout::list_entries(&self.dir.join(layout::CRASHES)).last().map_or(0, |(id, _)| id + 1);
        self.next_hang_id = layout::list_entries(&self.dir.join(layout::HANGS)).last().map_or(0, |(id, _)| id + 1);
        self.saved_crashes = layout::list_entries(&self.dir.join(layout::CRASHES)).len() as u64;
        self.saved_hangs = layout::list_entries(&self.dir.join(layout::HANGS)).len() as u64;
        if let Some(old) = layout::read_stats(&self.dir.join(layout::FUZZER_STATS)) {
            let old = InstanceStats::from_fuzzer_stats(&self.cfg.id, &old);
            self.execs_before = old.execs_done;
            self.run_time_before = old.run_time;
            self.cycles_done = old.cycles_done;
            self.corpus_found = old.corpus_found;
            self.corpus_imported = old.corpus_imported;
            self.total_crashes = old.total_crashes;
            self.total_tmout = old.total_tmout;
            self.last_find = old.last_find;
            self.last_crash = old.last_crash;
            self.last_hang = old.last_hang;
        }
        self.stage = "dry run";
        if !queue.is_empty() {
            self.resume(queue)?;
        } else {
            self.load_seeds()?;
        }
        let edges = coverage::count_seen(&self.exec.map_and_virgin().1[1..]);
        if edges == 0 {
            bail!(TargetError(
                "the target recorded no coverage for any input: it never runs its fuzz harness, or it is not instrumented".into()
            ));
        }
        if self.cfg.timeout.is_none() {
            let slowest = self.corpus.entries.iter().filter(|e| !e.var_behavior).map(|e| e.exec_us).max().unwrap_or(0);
            let (avg, _) = self.corpus.averages();
            let us = (avg * 5.0).max(slowest as f64 * 3.0) as u64;
            let ms = (us / 1000 + 1).div_ceil(20) * 20;
            self.exec.set_timeout(Duration::from_millis(ms.clamp(20, 1000)));
        }
        self.hang_timeout = self.exec.timeout().max(DEFAULT_TIMEOUT);
        self.cycle_left = self.corpus.entries.len();
        let longest = self.corpus.entries.iter().map(|e| e.data.len()).max().unwrap_or(0);
        self.len_limit = longest.clamp(MIN_LEN_LIMIT, self.max_len.max(1));
        self.update_batch_limit();
        Ok(())
    }

    /// Sizes batches to take about [`BATCH_TARGET_US`] at the corpus's
    /// average speed.
    fn update_batch_limit(&mut self) {
        let (avg_us, _) = self.corpus.averages();
        self.batch_limit = (BATCH_TARGET_US as f64 / avg_us.max(1.0)).clamp(1.0, 4096.0) as usize;
    }

    fn resume(&mut self, queue: Vec<(u32, String)>) -> Result<()> {
        let qdir = self.dir.join(layout::QUEUE);
        for (id, name) in queue {
            let data = match std::fs::read(qdir.join(&name)) {
                Ok(d) => d,
                Err(_) => continue,
            };
            let mut tc = Testcase::new(id, name.clone(), data);
            tc.imported_from = layout::name_field(&name, "sync").map(str::to_string);
            let kind = self.exec.run_one(&tc.data)?;
            self.execs += 1;
            if kind != ExitKind::Ok {
                // The target changed since this entry was found: keep the
                // file, never pick it.
                tc.was_fuzzed = true;
                tc.exec_us = u64::MAX / 4;
                self.corpus.add_disabled(tc);
                continue;
            }
            let (map, virgin) = self.exec.map_and_virgin();
            coverage::classify(map);
            coverage::update_virgin(map, virgin);
            let first = map.to_vec();
            self.calibrate_into(&mut tc, first)?;
            self.corpus.add(tc);
            self.housekeeping()?;
        }
        Ok(())
    }

    fn load_seeds(&mut self) -> Result<()> {
        let mut files = Vec::new();
        if let Some(dir) = &self.cfg.seeds {
            if dir.is_file() {
                files.push(dir.clone());
            } else {
                list_seeds(dir, &mut files, 0);
            }
        }
        if let Some((k, n)) = self.cfg.seed_shard
            && n > 1
            && files.len() >= n
        {
            files = files.into_iter().enumerate().filter(|(i, _)| i % n == k).map(|(_, f)| f).collect();
        }
        let mut seeds: Vec<(String, Vec<u8>)> = Vec::new();
        for f in &files {
            match std::fs::read(f) {
                Ok(d) if d.is_empty() => {}
                Ok(d) if d.len() > self.max_len => {
                    self.ui.notice(format!(
                        "rfuzz: skipping seed {} ({} bytes, over the {}-byte limit)",
                        f.display(),
                        d.len(),
                        self.max_len
                    ));
                }
                Ok(d) => seeds.push((f.file_name().unwrap_or_default().to_string_lossy().into_owned(), d)),
                Err(e) => self.ui.notice(format!("rfuzz: skipping seed {}: {e}", f.display())),
            }
        }
        if seeds.is_empty() {
            seeds = BUILTIN_SEEDS.iter().enumerate().map(|(i, s)| (format!("builtin{i}"), s.to_vec())).collect();
        }
        let (mut crashed, mut hung) = (0, 0);
        let total = seeds.len();
        for (name, data) in seeds {
            let kind = self.exec.run_one(&data)?;
            self.execs += 1;
            let origin = Origin::Seed { orig: name };
            match kind {
                ExitKind::Ok => {
                    let (map, virgin) = self.exec.map_and_virgin();
                    coverage::classify(map);
                    let new = coverage::update_virgin(map, virgin);
                    if new == NewBits::None && !self.corpus.entries.is_empty() {
                        continue;
                    }
                    let first = map.to_vec();
                    self.add_entry(data, first, origin, 0, new == NewBits::Edges)?;
                }
                ExitKind::Timeout => {
                    hung += 1;
                    self.ui.notice(format!(
                        "rfuzz: seed `{}` timed out after {} ms; skipping it",
                        layout::sanitize(match &origin {
                            Origin::Seed { orig } => orig,
                            _ => "",
                        }),
                        self.exec.timeout().as_millis()
                    ));
                }
                _ => {
                    crashed += 1;
                    self.save_crash(&data, kind, &origin)?;
                }
            }
        }
        // The seeds only saved to the queue count as its first entries.
        self.corpus_found = 0;
        if self.corpus.entries.is_empty() {
            if crashed > 0 && hung == 0 {
                let first = self.new_crashes.first().map(|p| p.display().to_string()).unwrap_or_default();
                bail!(TargetError(format!(
                    "the target crashes on every seed ({crashed} of {total}): fix that crash first. Reproduce with: {}",
                    self.cfg.repro_command.replace("{}", &first)
                )));
            }
            bail!(TargetError(format!(
                "the target hangs (or crashes) on every seed ({hung} timed out, {crashed} crashed of {total}, timeout {} ms): \
                 check the harness for endless loops, or raise the timeout with -t",
                self.exec.timeout().as_millis()
            )));
        }
        Ok(())
    }

    /// Calibrates `tc` from its first classified trace: exec time, path
    /// hash, edges, variable coverage.
    fn calibrate_into(&mut self, tc: &mut Testcase, first: Vec<u8>) -> Result<()> {
        let checksum = coverage::hash(&first);
        let mut runs = CAL_CYCLES;
        let mut ran = 0;
        let t0 = Instant::now();
        let mut var = false;
        let mut i = 1;
        while i < runs {
            let kind = self.exec.run_one(&tc.data)?;
            ran += 1;
            if kind != ExitKind::Ok {
                var = true;
                break;
            }
            let (map, virgin) = self.exec.map_and_virgin();
            coverage::classify(map);
            coverage::update_virgin(map, virgin);
            if coverage::hash(map) != checksum {
                for (j, (&a, &b)) in map.iter().zip(&first).enumerate() {
                    if a != b && !self.var_bytes[j] {
                        self.var_bytes[j] = true;
                        self.var_count += 1;
                    }
                }
                var = true;
                runs = CAL_CYCLES_LONG;
            }
            i += 1;
        }
        self.execs += ran as u64;
        tc.exec_us = (t0.elapsed().as_micros() as u64 / ran.max(1) as u64).max(1);
        tc.checksum = checksum;
        tc.edges = coverage::edges(&first);
        tc.var_behavior = var;
        Ok(())
    }

    /// Calibrates and queues a new input; `first` is its classified trace.
    fn add_entry(
        &mut self,
        data: Vec<u8>,
        first: Vec<u8>,
        origin: Origin,
        depth: u32,
        new_edges: bool,
    ) -> Result<usize> {
        let id = self.corpus.next_id();
        let name = layout::queue_name(id, &origin, self.elapsed_ms(), self.total_execs(), new_edges);
        let mut tc = Testcase::new(id, name.clone(), data);
        tc.depth = depth;
        if let Origin::Sync { peer, .. } = &origin {
            tc.imported_from = Some(peer.clone());
            tc.handicap = 4;
        }
        self.calibrate_into(&mut tc, first)?;
        // Trimmed before it is written: a queue file never changes once a
        // peer (or a resumed run) may have read it. Imports were trimmed by
        // the instance that found them.
        if !tc.var_behavior && tc.imported_from.is_none() {
            tc.data = self.trim(std::mem::take(&mut tc.data), tc.checksum)?;
        }
        layout::write_atomic(&self.corpus.queue_dir.join(&name), &tc.data)?;
        let idx = self.corpus.add(tc);
        self.update_batch_limit();
        Ok(idx)
    }

    /// Handles an input whose run is in the executor's map: queue it if it
    /// has new coverage, save it if it crashed or hung.
    fn handle(&mut self, input: &[u8], kind: ExitKind, origin: Origin, parent: Option<usize>) -> Result<bool> {
        match kind {
            ExitKind::Ok => {
                let (map, virgin) = self.exec.map_and_virgin();
                coverage::classify(map);
                let new = coverage::update_virgin(map, virgin);
                if new == NewBits::None {
                    return Ok(false);
                }
                let first = map.to_vec();
                let depth = parent.map_or(0, |p| self.corpus.entries[p].depth + 1);
                let imported = matches!(origin, Origin::Sync { .. });
                self.add_entry(input.to_vec(), first, origin, depth, new == NewBits::Edges)?;
                if let Some(p) = parent {
                    self.corpus.entries[p].children += 1;
                }
                if imported {
                    self.corpus_imported += 1;
                    self.last_import = unix_now();
                } else {
                    self.corpus_found += 1;
                    self.last_find = unix_now();
                    self.execs_at_last_find = self.execs;
                    // Inputs at the length limit still find coverage: allow longer ones.
                    if input.len() * 10 >= self.len_limit * 9 {
                        self.grow_len_limit();
                    }
                }
                Ok(true)
            }
            ExitKind::Timeout => self.save_hang(input, &origin),
            _ => self.save_crash(input, kind, &origin),
        }
    }

    fn save_crash(&mut self, input: &[u8], kind: ExitKind, origin: &Origin) -> Result<bool> {
        self.total_crashes += 1;
        let (map, _) = self.exec.map_and_virgin();
        coverage::classify(map);
        if coverage::update_virgin(map, &mut self.virgin_crash) == NewBits::None {
            return Ok(false);
        }
        let (signal, tag) = match kind {
            ExitKind::Crash { signal, cause: CrashCause::Panic } => (signal, Some("panic".to_string())),
            ExitKind::Crash { signal, cause: CrashCause::StackOverflow } => {
                (signal, Some("stack-overflow".to_string()))
            }
            ExitKind::Crash { signal, cause: CrashCause::Sanitizer(k) } => (signal, Some(format!("asan-{k}"))),
            ExitKind::Crash { signal, cause: CrashCause::Signal } => (signal, None),
            ExitKind::Oom => (libc::SIGABRT, Some("oom".to_string())),
            _ => (0, None),
        };
        let crashes = self.dir.join(layout::CRASHES);
        if self.next_crash_id == 0 {
            self.write_readme(&crashes, "crashes")?;
        }
        let name = layout::crash_name(
            self.next_crash_id,
            signal,
            origin,
            self.elapsed_ms(),
            self.total_execs(),
            tag.as_deref(),
        );
        let path = crashes.join(&name);
        layout::write_atomic(&path, input)?;
        self.next_crash_id += 1;
        self.saved_crashes += 1;
        self.last_crash = unix_now();
        if self.new_crashes.is_empty() {
            let what = match kind {
                ExitKind::Oom => "out of memory".to_string(),
                ExitKind::Crash { signal, cause } => {
                    let s = crate::sys::process::signal_name(signal);
                    match cause {
                        CrashCause::Panic => format!("panic, {s}"),
                        CrashCause::StackOverflow => format!("stack overflow, {s}"),
                        CrashCause::Sanitizer(k) => format!("AddressSanitizer: {k}, {s}"),
                        CrashCause::Signal => s,
                    }
                }
                _ => "crash".into(),
            };
            self.ui.notice(format!(
                "rfuzz: {}: crash found ({what}), saved to {}\nReproduce with:\n\n    {}\n",
                self.cfg.id,
                path.display(),
                self.cfg.repro_command.replace("{}", &crate::sys::shell_quote(&path.to_string_lossy()))
            ));
        }
        self.new_crashes.push(path);
        Ok(true)
    }

    fn save_hang(&mut self, input: &[u8], origin: &Origin) -> Result<bool> {
        self.total_tmout += 1;
        let (map, _) = self.exec.map_and_virgin();
        coverage::classify(map);
        if coverage::update_virgin(map, &mut self.virgin_tmout) == NewBits::None {
            return Ok(false);
        }
        // Confirm with the longer hang timeout, as AFL++ does.
        let normal = self.exec.timeout();
        self.exec.set_timeout(self.hang_timeout);
        let again = self.exec.run_one(input);
        self.exec.set_timeout(normal);
        self.execs += 1;
        match again? {
            ExitKind::Timeout => {}
            ExitKind::Ok => return Ok(false),
            kind => return self.save_crash(input, kind, origin),
        }
        let hangs = self.dir.join(layout::HANGS);
        if self.next_hang_id == 0 {
            self.write_readme(&hangs, "hangs")?;
        }
        let name = layout::hang_name(self.next_hang_id, origin, self.elapsed_ms(), self.total_execs());
        layout::write_atomic(&hangs.join(name), input)?;
        self.next_hang_id += 1;
        self.saved_hangs += 1;
        self.last_hang = unix_now();
        Ok(true)
    }

    fn write_readme(&self, dir: &Path, what: &str) -> Result<()> {
        let text = format!(
            "Command line used to find these {what}:\n\n{}\n\nReproduce one with:\n\n    {}\n\n\
             Names read id:<n>,sig:<signal>,src:<parent entries>,time:<ms>,execs:<n>,op:<mutation>;\n\
             a trailing panic, oom, stack-overflow or asan-<kind> (an AddressSanitizer\n\
             report: asan-heap-buffer-overflow, asan-heap-use-after-free, ...) says\n\
             what the rfuzz runtime saw.\n\
             Per-input timeout: {} ms; memory limit: {}.\n",
            self.cfg.command_line,
            self.cfg.repro_command.replace("{}", "<file>"),
            self.exec.timeout().as_millis(),
            self.cfg.mem_limit_mb.map(|m| format!("{m} MB")).unwrap_or_else(|| "none".into())
        );
        layout::write_atomic(&dir.join(layout::README), text.as_bytes())
    }

    /// Adds the mutant in `buf` to the pending batch, running the batch
    /// first when it is full. Mutants of several entries share a batch, so a
    /// fast target is not slowed by a round trip per entry.
    fn push_mutant(&mut self, buf: &[u8], op: Op) -> Result<()> {
        if self.ops.len() >= self.batch_limit || !self.exec.batch_push(buf) {
            self.flush()?;
            if !self.exec.batch_push(buf) {
                bail!("an input of {} bytes does not fit the executor's batch", buf.len());
            }
        }
        self.ops.push(op);
        Ok(())
    }

    /// Raises the mutant length limit by about its logarithm (libFuzzer's
    /// `-len_control` step).
    fn grow_len_limit(&mut self) {
        let step = (usize::BITS - self.len_limit.leading_zeros()) as usize;
        self.len_limit = (self.len_limit + step.max(1)).min(self.max_len);
        self.execs_at_last_growth = self.execs;
    }

    /// Runs the pending batch, then does the periodic work.
    fn flush(&mut self) -> Result<()> {
        if !self.ops.is_empty() {
            self.run_batch()?;
        }
        // Nothing new for a while at this length: let inputs grow.
        let log = (usize::BITS - self.len_limit.leading_zeros()) as u64;
        let quiet = self.execs - self.execs_at_last_find.max(self.execs_at_last_growth);
        if self.len_limit < self.max_len && quiet > LEN_CONTROL * log {
            self.grow_len_limit();
        }
        self.exec.batch_clear();
        self.ops.clear();
        self.housekeeping()
    }

    /// Runs the batch in the executor from input 0, handling each input it
    /// stops at, and counts the executions.
    fn run_batch(&mut self) -> Result<()> {
        let n = self.exec.batch_len();
        let mut from = 0;
        while from < n {
            let stop = self.exec.run_batch(from, true)?;
            let (index, kind) = match stop {
                BatchStop::Completed => {
                    self.execs += (n - from) as u64;
                    break;
                }
                BatchStop::Interesting(i) => (i, ExitKind::Ok),
                BatchStop::Ended { index, kind } => (index, kind),
            };
            self.execs += (index + 1 - from) as u64;
            let input = self.exec.batch_input(index).to_vec();
            let (origin, parent) = match self.ops[index] {
                Op::Mutant { src, name, rep, other } => {
                    let mut srcs = vec![self.corpus.entries[src].id];
                    srcs.extend(other);
                    (Origin::Mutation { src: srcs, op: name.to_string(), rep }, Some(src))
                }
                Op::Import { peer, id } => (Origin::Sync { peer: self.peers[peer].clone(), src: id }, None),
            };
            self.handle(&input, kind, origin, parent)?;
            from = index + 1;
        }
        Ok(())
    }

    /// The main loop; returns when stopped.
    pub fn fuzz(&mut self) -> Result<Outcome> {
        let mut interrupted = false;
        loop {
            self.housekeeping()?;
            if crate::sys::signal::stop_requested() {
                interrupted = true;
                break;
            }
            if self.time_is_up() {
                break;
            }
            let exec = &self.exec;
            let idx = self.corpus.select(&mut self.rng, &|h| exec.path_hits(h));
            self.fuzz_one(idx)?;
            self.cycle_left = self.cycle_left.saturating_sub(1);
            if self.cycle_left == 0 {
                self.cycles_done += 1;
                self.cycle_left = self.corpus.entries.len();
            }
        }
        // Mutants not run yet are dropped; nothing was learned from them.
        self.exec.batch_clear();
        self.ops.clear();
        self.stage = "stopped";
        // A last import, so nothing peers found in their final seconds is lost.
        self.sync_now()?;
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

    /// AFL's trimming: removes blocks while the path stays the same.
    fn trim(&mut self, mut data: Vec<u8>, checksum: u64) -> Result<Vec<u8>> {
        if data.len() < 5 {
            return Ok(data);
        }
        let stage = std::mem::replace(&mut self.stage, "trim");
        let len_p2 = data.len().next_power_of_two();
        let mut remove = (len_p2 / 16).max(4);
        let min_remove = (len_p2 / 1024).max(4);
        let mut cand = Vec::with_capacity(data.len());
        'outer: while remove >= min_remove && data.len() > 4 {
            let mut pos = 0;
            while pos < data.len() && data.len() > 4 {
                let n = remove.min(data.len() - pos);
                cand.clear();
                cand.extend_from_slice(&data[..pos]);
                cand.extend_from_slice(&data[pos + n..]);
                let kind = self.exec.run_one(&cand)?;
                self.execs += 1;
                if kind != ExitKind::Ok {
                    break 'outer;
                }
                let (map, _) = self.exec.map_and_virgin();
                coverage::classify(map);
                if coverage::hash(map) == checksum {
                    std::mem::swap(&mut data, &mut cand);
                } else {
                    pos += remove;
                }
                if self.stopping() {
                    break 'outer;
                }
            }
            remove /= 2;
        }
        self.stage = stage;
        Ok(data)
    }

    /// Runs the entry once with compare logging and learns tokens from the
    /// operands (and solves input-to-state compares, see [`cmplog`]).
    fn cmplog_stage(&mut self, idx: usize) -> Result<()> {
        self.stage = "cmplog";
        self.corpus.entries[idx].cmplog_done = true;
        let data = self.corpus.entries[idx].data.clone();
        let Some(records) = self.exec.run_cmplog(&data)? else {
            return Ok(());
        };
        self.execs += 1;
        for t in cmplog::tokens(&records) {
            self.auto_dict.add(&t);
        }
        self.stage = "input-to-state";
        for candidate in cmplog::input_to_state(&data, &records, I2S_MAX) {
            if self.stopping() {
                break;
            }
            self.push_mutant(&candidate, Op::Mutant { src: idx, name: "i2s", rep: 0, other: None })?;
        }
        Ok(())
    }

    fn det_stage(&mut self, idx: usize) -> Result<()> {
        self.stage = "deterministic";
        self.corpus.entries[idx].det_done = true;
        let data = self.corpus.entries[idx].data.clone();
        if data.len() > DET_MAX_LEN {
            return Ok(());
        }
        let mut tokens: Vec<Vec<u8>> = self.user_dict.tokens().to_vec();
        tokens.extend(self.auto_dict.tokens().iter().take(256).cloned());
        let mut det = Deterministic::new(tokens);
        let mut buf = std::mem::take(&mut self.buf);
        let result = (|| {
            loop {
                let name = det.op_name();
                if self.stopping() || !det.next(&data, &mut buf, self.len_limit.max(data.len())) {
                    return Ok(());
                }
                self.push_mutant(&buf, Op::Mutant { src: idx, name, rep: 0, other: None })?;
            }
        })();
        self.buf = buf;
        result
    }

    /// Havoc iterations for an entry: AFL++'s performance score and power
    /// schedule.
    fn energy(&mut self, idx: usize) -> usize {
        let (avg_us, avg_edges) = self.corpus.averages();
        let e = &self.corpus.entries[idx];
        let mut perf = 100.0f64;
        let t = e.exec_us as f64 / avg_us.max(1.0);
        perf *= match t {
            t if t > 10.0 => 0.1,
            t if t > 4.0 => 0.25,
            t if t > 2.0 => 0.5,
            t if t > 1.33 => 0.75,
            t if t < 0.25 => 3.0,
            t if t < 0.33 => 2.0,
            t if t < 0.5 => 1.5,
            _ => 1.0,
        };
        let c = e.edges.len() as f64 / avg_edges.max(1.0);
        perf *= match c {
            c if c > 3.0 => 3.0,
            c if c > 2.0 => 2.0,
            c if c > 1.5 => 1.5,
            c if c < 0.33 => 0.25,
            c if c < 0.5 => 0.5,
            c if c < 0.75 => 0.75,
            _ => 1.0,
        };
        perf *= match e.depth {
            0..=3 => 1.0,
            4..=7 => 2.0,
            8..=13 => 3.0,
            14..=25 => 4.0,
            _ => 5.0,
        };
        let handicap = e.handicap;
        let fuzz_level = e.fuzz_level;
        let hits = self.exec.path_hits(e.checksum).max(1) as f64;
        match self.cfg.flavor.schedule {
            Schedule::Fast => {
                // Paths executed rarely get exponentially more energy the
                // more often their entry was picked; common paths get little.
                let factor = if fuzz_level < 16 {
                    (1u64 << fuzz_level) as f64 / hits
                } else {
                    32.0 / (hits as u64).next_power_of_two() as f64
                };
                perf *= factor.min(32.0);
            }
            Schedule::Exploit => {}
            Schedule::Explore => perf = 100.0,
        }
        let e = &mut self.corpus.entries[idx];
        if handicap >= 4 {
            perf *= 4.0;
            e.handicap -= 4;
        } else if handicap > 0 {
            perf *= 2.0;
            e.handicap -= 1;
        }
        perf = perf.min(64.0 * 100.0) * self.cfg.flavor.energy_percent as f64 / 100.0;
        ((HAVOC_CYCLES * perf / 100.0) as usize).max(HAVOC_MIN)
    }

    fn havoc_stage(&mut self, idx: usize) -> Result<()> {
        self.stage = "havoc";
        let energy = self.energy(idx);
        let parent = self.corpus.entries[idx].data.clone();
        let n = self.corpus.entries.len();
        let other = (n > 1).then(|| {
            let mut o = self.rng.below(n - 1);
            if o >= idx {
                o += 1;
            }
            o
        });
        let other_data = other.map(|o| self.corpus.entries[o].data.clone());
        let other_id = other.map(|o| self.corpus.entries[o].id);
        let mut buf = std::mem::take(&mut self.buf);
        let mut result = Ok(());
        for _ in 0..energy {
            if self.stopping() {
                break;
            }
            let src = Sources {
                user_dict: &self.user_dict,
                auto_dict: &self.auto_dict,
                other: other_data.as_deref(),
                max_len: self.len_limit.max(parent.len()).min(self.max_len),
            };
            let (mut name, mut other) = ("havoc", None);
            let spliced = match &other_data {
                Some(o) if self.rng.one_in(self.cfg.flavor.splice_one_in) => {
                    mutator::splice(&parent, o, &mut self.rng, &mut buf)
                }
                _ => false,
            };
            if spliced {
                name = "splice";
                other = other_id;
            } else {
                buf.clear();
                buf.extend_from_slice(&parent);
            }
            let rep = mutator::havoc(&mut buf, &mut self.rng, &src, self.cfg.flavor.havoc_stack_pow);
            result = self.push_mutant(&buf, Op::Mutant { src: idx, name, rep, other });
            if result.is_err() {
                break;
            }
        }
        self.buf = buf;
        result
    }

    /// Imports new entries of other instances now.
    ///
    /// The candidates run as batches that stop at inputs with new coverage,
    /// like mutants, so looking at thousands of peer entries costs little.
    fn sync_now(&mut self) -> Result<()> {
        let Some(mut importer) = self.importer.take() else {
            return Ok(());
        };
        let prev = std::mem::replace(&mut self.stage, "sync");
        let candidates = importer.collect();
        self.importer = Some(importer);
        // Mutants waiting in the batch run first (they were generated first).
        if !self.ops.is_empty() {
            self.run_batch()?;
        }
        self.exec.batch_clear();
        self.ops.clear();
        for c in candidates {
            let peer = match self.peers.iter().position(|p| *p == c.peer) {
                Some(i) => i,
                None => {
                    self.peers.push(c.peer.clone());
                    self.peers.len() - 1
                }
            };
            if self.ops.len() >= self.batch_limit || !self.exec.batch_push(&c.data) {
                self.run_batch()?;
                self.exec.batch_clear();
                self.ops.clear();
                if !self.exec.batch_push(&c.data) {
                    continue;
                }
            }
            self.ops.push(Op::Import { peer, id: c.id });
        }
        if !self.ops.is_empty() {
            self.run_batch()?;
        }
        self.exec.batch_clear();
        self.ops.clear();
        if let Some(i) = self.importer.as_mut() {
            i.commit()?;
        }
        self.stage = prev;
        Ok(())
    }

    /// Periodic work between batches: stats, UI, plot data, sync.
    fn housekeeping(&mut self) -> Result<()> {
        let now = Instant::now();
        if now < self.next_housekeeping {
            return Ok(());
        }
        self.next_housekeeping = now + Duration::from_millis(500);
        if self.importer.as_ref().is_some_and(|i| i.due(now)) {
            self.sync_now()?;
        }
        self.write_stats()?;
        if now >= self.next_plot {
            self.next_plot = now + Duration::from_secs(5);
            self.append_plot()?;
        }
        Ok(())
    }

    fn execs_per_sec(&mut self) -> f64 {
        let now = Instant::now();
        self.eps_samples.push((now, self.execs));
        // Average over roughly the last five seconds.
        while self.eps_samples.len() > 2 && now.duration_since(self.eps_samples[1].0) > Duration::from_secs(5) {
            self.eps_samples.remove(0);
        }
        let (t0, e0) = self.eps_samples[0];
        let dt = now.duration_since(t0).as_secs_f64();
        if dt <= 0.0 { 0.0 } else { (self.execs - e0) as f64 / dt }
    }

    /// The current statistics snapshot.
    pub fn snapshot(&mut self) -> InstanceStats {
        let eps = self.execs_per_sec();
        let procs = self.exec.target_procs();
        let map_size = self.exec.map_size();
        let edges = coverage::count_seen(&self.exec.map_and_virgin().1[1..]) as u64;
        let stability = if edges == 0 { 100.0 } else { 100.0 * (1.0 - self.var_count as f64 / edges as f64).max(0.0) };
        let mut rusage: libc::rusage = unsafe_zeroed_rusage();
        // SAFETY: getrusage fills the struct we pass.
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut rusage) };
        InstanceStats {
            id: self.cfg.id.clone(),
            start_time: self.start_unix,
            last_update: unix_now(),
            run_time: self.run_time_before + self.start.elapsed().as_secs(),
            fuzzer_pid: std::process::id(),
            cycles_done: self.cycles_done,
            execs_done: self.total_execs(),
            execs_per_sec: eps,
            corpus_count: self.corpus.entries.len() as u64,
            corpus_favored: self.corpus.favored as u64,
            corpus_found: self.corpus_found,
            corpus_imported: self.corpus_imported,
            corpus_variable: self.corpus.entries.iter().filter(|e| e.var_behavior).count() as u64,
            max_depth: self.corpus.max_depth() as u64,
            cur_item: self.cur_item as u64,
            pending_favs: self.corpus.pending_favored as u64,
            pending_total: self.corpus.pending_total as u64,
            stability,
            bitmap_cvg: 100.0 * edges as f64 / map_size.max(1) as f64,
            saved_crashes: self.saved_crashes,
            saved_hangs: self.saved_hangs,
            total_crashes: self.total_crashes,
            total_tmout: self.total_tmout,
            last_find: self.last_find,
            last_crash: self.last_crash,
            last_hang: self.last_hang,
            last_import: self.last_import,
            exec_timeout: self.exec.timeout().as_millis() as u64,
            peak_rss_mb: (rusage.ru_maxrss as u64) / 1024,
            edges_found: edges,
            total_edges: map_size as u64 - 1,
            auto_dict_entries: self.auto_dict.len() as u64,
            len_limit: self.len_limit as u64,
            target_procs: procs.started,
            target_procs_killed: procs.killed,
            target_procs_refused: procs.refused,
            afl_banner: self.cfg.banner.clone(),
            afl_version: format!("rfuzz-{}", env!("CARGO_PKG_VERSION")),
            target_mode: self.exec.describe(),
            host: crate::sync::status::local_host(),
            stage: self.stage.to_string(),
            command_line: self.cfg.command_line.clone(),
        }
    }

    fn write_stats(&mut self) -> Result<()> {
        let s = self.snapshot();
        layout::write_atomic(&self.dir.join(layout::FUZZER_STATS), s.to_fuzzer_stats().as_bytes())?;
        if s.target_procs_refused > 0 && !self.procs_cap_reported {
            self.procs_cap_reported = true;
            let cap = self.cfg.target.max_procs.unwrap_or(0);
            self.ui.notice(format!(
                "rfuzz: {}: the target reached --max-procs {cap}: further spawns fail with EAGAIN until its processes end (counted as target_procs_refused)",
                self.cfg.id
            ));
        }
        self.ui.update(&s, s.last_update);
        Ok(())
    }

    fn append_plot(&mut self) -> Result<()> {
        use std::io::Write;
        let s = self.snapshot();
        let path = self.dir.join(layout::PLOT_DATA);
        let new = !path.exists();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("failed to open {}", path.display()))?;
        if new {
            writeln!(
                f,
                "# relative_time, cycles_done, cur_item, corpus_count, pending_total, pending_favs, map_size, saved_crashes, saved_hangs, max_depth, execs_per_sec, total_execs, edges_found"
            )?;
        }
        writeln!(
            f,
            "{}, {}, {}, {}, {}, {}, {:.2}%, {}, {}, {}, {:.2}, {}, {}",
            s.run_time,
            s.cycles_done,
            s.cur_item,
            s.corpus_count,
            s.pending_total,
            s.pending_favs,
            s.bitmap_cvg,
            s.saved_crashes,
            s.saved_hangs,
            s.max_depth,
            s.execs_per_sec,
            s.execs_done,
            s.edges_found
        )?;
        Ok(())
    }

    /// Leaves the UI (prints kept notices).
    pub fn finish_ui(&mut self) {
        self.ui.finish();
    }
}

fn unsafe_zeroed_rusage() -> libc::rusage {
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
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
