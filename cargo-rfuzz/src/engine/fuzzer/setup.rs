//! Setting an instance up: its directory and the files in it (lock, setup
//! files, README), resuming a queue or loading and calibrating seeds.

use super::*;

impl Fuzzer {
    /// Prepares the instance directory, starts the target and loads the
    /// queue or seeds.
    pub fn setup(cfg: Config) -> Result<Fuzzer> {
        let (dir, lock) = prepare_instance_dir(&cfg)?;
        let initial_timeout = cfg.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let (exec, autodict) = start_executor(&cfg, &dir, initial_timeout)?;
        let map_size = exec.map_size();
        let (user_dict, auto_dict) = load_dictionaries(&cfg, autodict)?;
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
            virgin_deep: vec![0xff; map_size],
            crash_bugs: BugTable::default(),
            hang_bugs: BugTable::hangs(),
            frame_namer: crate::triage::frames::FrameNamer::new(&cfg.target.binary),
            recent_timeouts: std::collections::VecDeque::new(),
            var_bytes: vec![false; map_size],
            var_count: 0,
            importer,
            peers: Vec::new(),
            ui,
            buf: Vec::new(),
            ops: Vec::new(),
            deep: Vec::new(),
            deep_cost: Default::default(),
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
            short_limit: max_len.min(MIN_LEN_LIMIT),
            execs_at_last_find: 0,
            execs_at_last_growth: 0,
            len_cost: Default::default(),
            len_pace: batch::LenPace::new(Instant::now()),
            batch_limit: 1,
            procs_cap_reported: false,
            trim_time: Duration::ZERO,
            confirm_time: Duration::ZERO,
            cfg,
        };
        f.write_setup_files()?;
        f.load_corpus()?;
        Ok(f)
    }

    pub(super) fn write_setup_files(&self) -> Result<()> {
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

    /// Resumes an existing queue, or loads the seeds.
    pub(super) fn load_corpus(&mut self) -> Result<()> {
        let queue = layout::list_entries(&self.dir.join(layout::QUEUE));
        self.next_crash_id = layout::list_entries(&self.dir.join(layout::CRASHES)).last().map_or(0, |(id, _)| id + 1);
        self.next_hang_id = layout::list_entries(&self.dir.join(layout::HANGS)).last().map_or(0, |(id, _)| id + 1);
        self.saved_crashes = layout::list_entries(&self.dir.join(layout::CRASHES)).len() as u64;
        self.saved_hangs = layout::list_entries(&self.dir.join(layout::HANGS)).len() as u64;
        // Files of earlier runs count against their bug's cap.
        let crashes = self.dir.join(layout::CRASHES);
        for (_, name) in layout::list_entries(&crashes) {
            if let Some(key) = bugs::parse_name(&name) {
                let len = std::fs::symlink_metadata(crashes.join(&name)).map_or(0, |m| m.len() as usize);
                self.crash_bugs.hit(key);
                self.crash_bugs.kept(key, len);
            }
        }
        // Hang files of earlier runs count against their hang's cap (their
        // names carry the function's key or the site; older ones count as
        // of an unknown site).
        let hangs = self.dir.join(layout::HANGS);
        for (_, name) in layout::list_entries(&hangs) {
            let len = std::fs::symlink_metadata(hangs.join(&name)).map_or(0, |m| m.len() as usize);
            self.hang_bugs.restore_hang(&name, len);
        }
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
        self.short_limit = self.len_limit;
        self.update_batch_limit();
        Ok(())
    }

    pub(super) fn resume(&mut self, queue: Vec<(u32, String)>) -> Result<()> {
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

    pub(super) fn load_seeds(&mut self) -> Result<()> {
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

    pub(super) fn write_readme(&self, dir: &Path, what: &str) -> Result<()> {
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

/// Creates and locks the instance directory (`sync_dir/<id>/` and its
/// subdirectories) and marks a main instance.
fn prepare_instance_dir(cfg: &Config) -> Result<(PathBuf, InstanceLock)> {
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
        Role::Main => {
            std::fs::write(&main_marker, "").with_context(|| format!("failed to write {}", main_marker.display()))?
        }
        Role::Secondary => {
            let _ = std::fs::remove_file(&main_marker);
        }
    }
    Ok((dir, lock))
}

/// An executor and the tokens of the target's AFL++ auto-dictionary.
type Started = (Box<dyn Executor>, Vec<Vec<u8>>);

/// Starts the executor that fits the binary (our direct protocol for an
/// rfuzz binary, AFL++'s for an AFL++ one or when asked); also returns the
/// AFL++ auto-dictionary the target offered.
fn start_executor(cfg: &Config, dir: &Path, initial_timeout: Duration) -> Result<Started> {
    if !cfg.target.binary.is_file() {
        bail!(UsageError(format!("target binary {} does not exist", cfg.target.binary.display())));
    }
    let kind = inspect_binary(&cfg.target.binary)?;
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
    Ok(match (kind, cfg.executor) {
        (BinaryKind::Rfuzz, ExecutorChoice::Auto) => (
            Box::new(DirectExecutor::start(
                &target,
                &DirectConfig {
                    max_input: cfg.max_len,
                    timeout: initial_timeout,
                    init_timeout,
                    ..DirectConfig::default()
                },
            )?),
            Vec::new(),
        ),
        (BinaryKind::Rfuzz, ExecutorChoice::Afl) => {
            (Box::new(AflExecutor::start(&target, &afl_cfg(true))?), Vec::new())
        }
        (BinaryKind::Afl { persistent }, _) => {
            let e = AflExecutor::start(&target, &afl_cfg(persistent))?;
            let autodict = e.autodict.clone();
            (Box::new(e), autodict)
        }
        (BinaryKind::Plain, _) if super::super::executor::is_libfuzzer_binary(&cfg.target.binary)? => {
            bail!(TargetError(format!(
                "{} is a libFuzzer binary (built by `cargo fuzz`, or against the real libfuzzer-sys), not an rfuzz one: build it with `cargo rfuzz build`",
                cfg.target.binary.display()
            )))
        }
        (BinaryKind::Plain, _) => bail!(TargetError(format!(
            "{} is not instrumented (no rfuzz runtime or AFL++ forkserver in it): build fuzz targets with `cargo rfuzz build`",
            cfg.target.binary.display()
        ))),
    })
}

/// The user's dictionaries (`-x`, unbounded) and the automatic one (seeded
/// with the target's AFL++ auto-dictionary).
fn load_dictionaries(cfg: &Config, autodict: Vec<Vec<u8>>) -> Result<(Dictionary, Dictionary)> {
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
    Ok((user_dict, auto_dict))
}
