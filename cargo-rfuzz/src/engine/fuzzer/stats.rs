//! Statistics: fuzzer_stats, plot_data and the status screen, and the
//! housekeeping between batches.

use super::*;

impl Fuzzer {
    /// Periodic work between batches: stats, UI, plot data, sync.
    pub(super) fn housekeeping(&mut self) -> Result<()> {
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

    pub(super) fn execs_per_sec(&mut self) -> f64 {
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
            crash_signatures: self.crash_bugs.len() as u64,
            hang_signatures: self.hang_bugs.hang_sites() as u64,
            corpus_set_aside: self.corpus.set_aside_count() as u64,
            timeouts_last_min: {
                let now = Instant::now();
                self.recent_timeouts.iter().filter(|&&t| now.duration_since(t) <= Duration::from_secs(60)).count()
                    as u64
            },
            avg_exec_us: self.corpus.averages().0 as u64,
            slowest_exec_us: self.corpus.slowest().map_or(0, |s| s.1),
            slowest_entry: self.corpus.slowest().map_or(0, |s| s.0 as u64),
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

    pub(super) fn write_stats(&mut self) -> Result<()> {
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

    pub(super) fn append_plot(&mut self) -> Result<()> {
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
