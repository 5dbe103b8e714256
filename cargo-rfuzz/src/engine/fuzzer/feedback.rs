//! What an execution found: calibrating and queueing new coverage (after
//! trimming), saving crashes and hangs.

use super::*;

impl Fuzzer {
    /// Calibrates `tc` from its first classified trace: exec time, path
    /// hash, edges, variable coverage.
    pub(super) fn calibrate_into(&mut self, tc: &mut Testcase, first: Vec<u8>) -> Result<()> {
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
    pub(super) fn add_entry(
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
        if !tc.var_behavior && tc.imported_from.is_none() && trimmed_when_queued(&origin, self.start.elapsed()) {
            tc.data = self.trim(std::mem::take(&mut tc.data), tc.checksum)?;
        }
        layout::write_atomic(&self.corpus.queue_dir.join(&name), &tc.data)?;
        let idx = self.corpus.add(tc);
        self.update_batch_limit();
        Ok(idx)
    }

    /// Handles an input whose run is in the executor's map: queue it if it
    /// has new coverage, save it if it crashed or hung.
    pub(super) fn handle(
        &mut self,
        input: &[u8],
        kind: ExitKind,
        origin: Origin,
        parent: Option<usize>,
    ) -> Result<bool> {
        match kind {
            ExitKind::Ok => {
                let deep = matches!(&origin, Origin::Mutation { op, .. } if op == DEEP_OP);
                // With compare progress, hit-count buckets of the progress
                // region are levels of closeness to a compared value. A deep
                // mutant's are not marked seen in the main map: a level
                // marked but never queued cannot be found again by a short
                // mutant: a 32-bit magic value whose last level went that
                // way stayed out of reach for the rest of the run (1 to 5
                // runs in 100 on a loaded machine; 0 of 100 since).
                let keep_counts_virgin = deep && self.cfg.cmp_progress;
                let (map, virgin) = self.exec.map_and_virgin();
                coverage::classify(map);
                let new = if keep_counts_virgin {
                    coverage::new_bits(map, virgin)
                } else {
                    coverage::update_virgin(map, virgin)
                };
                if new == NewBits::None {
                    return Ok(false);
                }
                if keep_counts_virgin && new == NewBits::Edges {
                    coverage::update_virgin(map, virgin);
                }
                // A deep mutant's new hit counts (a longer repeat) are seen,
                // not queued: entries thousands of bytes long on hit counts
                // alone make every later mutant slow (see `batch::LenPace`).
                // At the length limit they still let the limit grow.
                if new == NewBits::Counts && deep {
                    if keep_counts_virgin && coverage::update_virgin(map, &mut self.virgin_deep) == NewBits::None {
                        return Ok(false);
                    }
                    if input.len() * 10 >= self.len_limit * 9 {
                        self.grow_len_limit();
                    }
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
                    self.len_pace.found(Instant::now());
                    // Inputs at the length limit still find coverage: allow
                    // longer ones. The short limit grows only in quiet
                    // stretches (`batch::LenPace`): on a target whose finds
                    // never stop, finds near it raised it every few
                    // milliseconds, and entries grew ten times AFL++'s.
                    if input.len() * 10 >= self.len_limit * 9 {
                        self.grow_len_limit();
                    }
                }
                Ok(true)
            }
            ExitKind::Timeout => {
                self.note_timeout(parent, input.len());
                self.save_hang(input, &origin)
            }
            _ => self.save_crash(input, kind, &origin),
        }
    }

    /// Saves a crashing input if it is worth a file: the first of its
    /// signature, or smaller than the files kept for it, up to
    /// [`bugs::FILES_PER_BUG`] (see [`bugs`]). Through a protocol that
    /// reports no signatures, new crash coverage decides, as in AFL++.
    pub(super) fn save_crash(&mut self, input: &[u8], kind: ExitKind, origin: &Origin) -> Result<bool> {
        self.total_crashes += 1;
        let death = self.exec.death_info();
        let (map, _) = self.exec.map_and_virgin();
        coverage::classify(map);
        let key = match death {
            Some(d) => {
                let named = match kind {
                    ExitKind::Crash { cause: CrashCause::Signal, .. } if !d.frames.is_empty() => {
                        self.frame_namer.user_frames(&d.frames, crate::triage::signature::FRAMES)
                    }
                    _ => Vec::new(),
                };
                let key = match kind {
                    ExitKind::Crash { signal, .. } if !named.is_empty() => bugs::signal_key(signal, &named),
                    _ => bugs::crash_key(kind, d.crash_sig, d.fault_pc),
                };
                // Seeds all arrive at once: one file per bug among them.
                let seed_of_known_bug = matches!(origin, Origin::Seed { .. }) && self.crash_bugs.has_files(key);
                self.crash_bugs.hit(key);
                if seed_of_known_bug || !self.crash_bugs.would_keep(key, input.len()) {
                    return Ok(false);
                }
                coverage::update_virgin(map, &mut self.virgin_crash);
                key
            }
            None => {
                let key = bugs::crash_key(kind, 0, 0);
                self.crash_bugs.hit(key);
                if coverage::update_virgin(map, &mut self.virgin_crash) == NewBits::None {
                    return Ok(false);
                }
                key
            }
        };
        self.crash_bugs.kept(key, input.len());
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
        let tag = match tag {
            Some(t) => format!("{},{t}", bugs::name_field(key)),
            None => bugs::name_field(key),
        };
        let name =
            layout::crash_name(self.next_crash_id, signal, origin, self.elapsed_ms(), self.total_execs(), Some(&tag));
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

    /// Counts a timeout of a mutant of `parent` and sets the parent aside
    /// (unless it is the last entry that can be selected) when, since its
    /// first timeout, its mutants' timeouts cost more time than all its
    /// other mutants together, or when the instance is over its budget of
    /// timeouts per minute ([`timeout_budget`]).
    ///
    /// A mutant of `len` bytes, over twice its parent's length and longer
    /// than every entry, timed out because of its length (a super-linear
    /// target): then the length limit comes down to half that length (not
    /// below the longest entry) and the parent stays.
    pub(super) fn note_timeout(&mut self, parent: Option<usize>, len: usize) {
        let now = Instant::now();
        self.recent_timeouts.push_back(now);
        while self.recent_timeouts.front().is_some_and(|&t| now.duration_since(t) > Duration::from_secs(60)) {
            self.recent_timeouts.pop_front();
        }
        let over_budget = self.recent_timeouts.len() as u64 > timeout_budget(self.exec.timeout());
        let Some(p) = parent else { return };
        let longest = self.longest_entry();
        if len > MIN_LEN_LIMIT && len > 2 * self.corpus.entries[p].data.len() && len > longest {
            self.len_limit = self.len_limit.min((len / 2).max(longest).max(MIN_LEN_LIMIT));
            self.execs_at_last_growth = self.execs;
            return;
        }
        let timeout_us = self.exec.timeout().as_micros() as u64;
        let e = &mut self.corpus.entries[p];
        e.timeouts += 1;
        let costly = e.timeouts >= SET_ASIDE_TIMEOUTS
            && e.timeouts as u64 * timeout_us >= e.timeout_mutants.saturating_mul(e.exec_us.max(1));
        if (costly || over_budget) && !e.disabled && self.corpus.enabled() > 1 {
            self.corpus.set_aside(p);
        }
    }

    /// Saves a timed-out input if it is worth a file: the first of its
    /// function or site (where the hung run was interrupted; see [`bugs`]) or, through a
    /// protocol that cannot tell the site, new coverage. Only then is it
    /// confirmed with the longer hang timeout, so a known hang costs one
    /// timeout and nothing more.
    pub(super) fn save_hang(&mut self, input: &[u8], origin: &Origin) -> Result<bool> {
        self.total_tmout += 1;
        // A timeout gets its confirmation run only while confirmations are
        // within their share of the time, and while its key's confirmations
        // did not keep ending early (see `BugTable::may_confirm`).
        let in_budget = confirm_allowed(self.start.elapsed(), self.confirm_time, self.hang_timeout);
        let mut site = None;
        let death = self.exec.death_info();
        let (map, _) = self.exec.map_and_virgin();
        coverage::classify(map);
        let mut function_key = None;
        let key = match death {
            Some(d) => {
                // The interrupted function of the user's code (the recorded
                // stack where there is one, else the interrupted instruction).
                let stack = if d.frames.is_empty() { vec![d.fault_pc] } else { d.frames.clone() };
                let function = self.frame_namer.user_frames(&stack, 1).pop();
                let key = match function {
                    Some(f) => {
                        function_key = Some(bugs::hang_function_key(&f));
                        function_key.unwrap()
                    }
                    None => {
                        site = self.hang_bugs.hang_site(d.fault_pc);
                        bugs::site_key(site)
                    }
                };
                self.hang_bugs.hit(key);
                if !(self.hang_bugs.would_keep(key, input.len()) && in_budget && self.hang_bugs.may_confirm(key)) {
                    return Ok(false);
                }
                coverage::update_virgin(map, &mut self.virgin_tmout);
                key
            }
            None => {
                let key = bugs::crash_key(ExitKind::Timeout, 0, 0);
                if !(in_budget && self.hang_bugs.may_confirm(key))
                    || coverage::update_virgin(map, &mut self.virgin_tmout) == NewBits::None
                {
                    return Ok(false);
                }
                self.hang_bugs.hit(key);
                key
            }
        };
        // Confirm with the longer hang timeout, as AFL++ does.
        let normal = self.exec.timeout();
        self.exec.set_timeout(self.hang_timeout);
        let started = Instant::now();
        let again = self.exec.run_one(input);
        self.confirm_time += started.elapsed();
        self.exec.set_timeout(normal);
        self.execs += 1;
        match again? {
            ExitKind::Timeout => {}
            ExitKind::Ok => {
                // Slow, not hung: its key is confirmed ever more rarely.
                self.hang_bugs.confirmed_slow(key);
                return Ok(false);
            }
            kind => return self.save_crash(input, kind, origin),
        }
        let hangs = self.dir.join(layout::HANGS);
        if self.next_hang_id == 0 {
            self.write_readme(&hangs, "hangs")?;
        }
        let tag = function_key.map(bugs::name_field).or(site.map(bugs::site_field));
        let name = layout::hang_name(self.next_hang_id, origin, self.elapsed_ms(), self.total_execs(), tag.as_deref());
        layout::write_atomic(&hangs.join(name), input)?;
        self.hang_bugs.kept(key, input.len());
        self.next_hang_id += 1;
        self.saved_hangs += 1;
        self.last_hang = unix_now();
        Ok(true)
    }

    /// AFL's trimming: removes blocks while the path stays the same.
    ///
    /// Trimming runs inputs one at a time, at the entry's cost, so it gets a
    /// share of the run's time ([`TRIM_SHARE`]) and at most [`TRIM_MAX`] per
    /// entry; past that an entry is queued as trimmed so far. Without the
    /// budget a target whose long inputs keep finding hit-count buckets
    /// spends nine tenths of its time trimming them.
    pub(super) fn trim(&mut self, mut data: Vec<u8>, checksum: u64) -> Result<Vec<u8>> {
        let allowance = trim_allowance(self.start.elapsed(), self.trim_time);
        if data.len() < 5 || allowance.is_zero() {
            return Ok(data);
        }
        let started = Instant::now();
        let deadline = started + allowance;
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
                if self.stopping() || Instant::now() >= deadline {
                    break 'outer;
                }
            }
            remove /= 2;
        }
        self.trim_time += started.elapsed();
        self.stage = stage;
        Ok(data)
    }
}

/// Whether a hang confirmation may start `elapsed` into the run with `spent`
/// confirming so far: under [`CONFIRM_SHARE`] of the run plus one hang
/// timeout (the first is always confirmed). A demangler's slow inputs
/// (0.1-1 s each, every one a timeout at 20 ms) took half of a 300-s run
/// in confirmations without this.
pub(super) fn confirm_allowed(elapsed: Duration, spent: Duration, hang_timeout: Duration) -> bool {
    spent < elapsed.mul_f64(CONFIRM_SHARE) + hang_timeout
}

/// Whether a new entry from `origin`, found `elapsed` into the run, is
/// trimmed before it is queued: seeds always, finds from [`TRIM_FROM`] on.
pub(super) fn trimmed_when_queued(origin: &Origin, elapsed: Duration) -> bool {
    !matches!(origin, Origin::Mutation { .. }) || elapsed >= TRIM_FROM
}

/// How long the next entry's trimming may take, `elapsed` into the run with
/// `spent` trimming so far: what is left of the run's trimming share, at
/// most [`TRIM_MAX`].
pub(super) fn trim_allowance(elapsed: Duration, spent: Duration) -> Duration {
    (elapsed.mul_f64(TRIM_SHARE) + TRIM_ALLOWANCE).saturating_sub(spent).min(TRIM_MAX)
}

/// Timeouts per minute an instance accepts before it sets aside the parent
/// of every further one: at most [`MAX_TIMEOUTS_PER_MIN`], and no more than
/// take 5% of a minute (3 s) at the current timeout, but at least 6.
pub(super) fn timeout_budget(timeout: Duration) -> u64 {
    (3_000_000 / timeout.as_micros().max(1) as u64).clamp(6, MAX_TIMEOUTS_PER_MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hang_confirmations_get_a_twentieth_of_the_run_after_the_first() {
        let (s, ms) = (Duration::from_secs, Duration::from_millis);
        assert!(confirm_allowed(s(0), s(0), s(1)));
        assert!(!confirm_allowed(s(0), s(1), s(1)));
        assert!(confirm_allowed(s(20), s(1), s(1)));
        assert!(confirm_allowed(s(100), ms(5_900), s(1)));
        assert!(!confirm_allowed(s(100), s(6), s(1)));
    }

    #[test]
    fn early_finds_are_queued_untrimmed_but_seeds_are_trimmed() {
        let seed = Origin::Seed { orig: "a".into() };
        let find = Origin::Mutation { src: vec![0], op: "havoc".into(), rep: 1 };
        assert!(trimmed_when_queued(&seed, Duration::ZERO));
        assert!(!trimmed_when_queued(&find, Duration::ZERO));
        assert!(!trimmed_when_queued(&find, TRIM_FROM - Duration::from_millis(1)));
        assert!(trimmed_when_queued(&find, TRIM_FROM));
        assert!(trimmed_when_queued(&find, Duration::from_secs(600)));
    }

    #[test]
    fn trimming_gets_a_tenth_of_the_run_after_a_start_up_allowance() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        // At the start: the allowance, one entry at a time.
        assert_eq!(trim_allowance(s(0), s(0)), TRIM_MAX);
        assert_eq!(trim_allowance(s(0), ms(1950)), ms(50));
        assert_eq!(trim_allowance(s(0), s(2)), Duration::ZERO);
        // Ten minutes in, 62 s of trimming is all it gets.
        assert_eq!(trim_allowance(s(600), s(61)), s(1).min(TRIM_MAX));
        assert_eq!(trim_allowance(s(600), ms(61_950)), ms(50));
        assert_eq!(trim_allowance(s(600), s(62)), Duration::ZERO);
        assert_eq!(trim_allowance(s(600), s(90)), Duration::ZERO);
    }
}
