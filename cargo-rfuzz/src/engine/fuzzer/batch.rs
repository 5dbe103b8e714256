//! Batching: mutants of several entries share one executor request; the
//! input a batch stops at is handled, then the batch goes on. Imports from
//! peers run the same way.

use super::*;

impl Fuzzer {
    /// Sizes batches to take about [`BATCH_TARGET_US`] at the corpus's
    /// average speed.
    pub(super) fn update_batch_limit(&mut self) {
        let (avg_us, _) = self.corpus.averages();
        self.batch_limit = (BATCH_TARGET_US as f64 / avg_us.max(1.0)).clamp(1.0, 4096.0) as usize;
    }

    /// Adds the mutant in `buf` to the pending batch, running the batch
    /// first when it is full. Mutants of several entries share a batch, so a
    /// fast target is not slowed by a round trip per entry.
    pub(super) fn push_mutant(&mut self, buf: &[u8], op: Op) -> Result<()> {
        if self.ops.len() >= self.batch_limit || !self.exec.batch_push(buf) {
            self.flush()?;
            if !self.exec.batch_push(buf) {
                bail!("an input of {} bytes does not fit the executor's batch", buf.len());
            }
        }
        if let Op::Mutant { src, .. } = op {
            let e = &mut self.corpus.entries[src];
            e.mutants += 1;
            if e.timeouts > 0 {
                e.timeout_mutants += 1;
            }
        }
        self.ops.push(op);
        Ok(())
    }

    /// Raises the mutant length limit by about its logarithm (libFuzzer's
    /// `-len_control` step), or by a sixteenth once the limit is large, so
    /// a long quiet campaign reaches inputs of 100 KB and more in minutes.
    pub(super) fn grow_len_limit(&mut self) {
        let step = (usize::BITS - self.len_limit.leading_zeros()) as usize;
        self.len_limit = (self.len_limit + step.max(self.len_limit / 16).max(1)).min(self.max_len);
        self.execs_at_last_growth = self.execs;
    }

    /// Whether longer inputs pay for what they cost: entries in the upper
    /// half of the length limit may cost more than the shorter ones in
    /// proportion to their length or to their coverage (twice that, for
    /// noise), not more. A target whose cost grows faster than its inputs
    /// (super-linear) stops the growth there.
    pub(super) fn length_pays(&self) -> bool {
        let half = self.len_limit / 2;
        // (sum of exec µs, of lengths, of edges, count) of short and long entries.
        let mut sums = [(0.0f64, 0.0f64, 0.0f64, 0usize); 2];
        for e in self.corpus.entries.iter().filter(|e| !e.disabled) {
            let s = &mut sums[usize::from(e.data.len() > half)];
            s.0 += e.exec_us as f64;
            s.1 += e.data.len().max(1) as f64;
            s.2 += e.edges.len().max(1) as f64;
            s.3 += 1;
        }
        let [short, long] = sums;
        if short.3 == 0 || long.3 == 0 {
            return true;
        }
        let avg = |s: (f64, f64, f64, usize), v: f64| v / s.3 as f64;
        let cost = avg(long, long.0) / avg(short, short.0).max(1.0);
        let len = avg(long, long.1) / avg(short, short.1);
        let cov = avg(long, long.2) / avg(short, short.2);
        cost <= 2.0 * len.max(cov).max(1.0)
    }

    /// Runs the pending batch, then does the periodic work.
    pub(super) fn flush(&mut self) -> Result<()> {
        if !self.ops.is_empty() {
            self.run_batch()?;
        }
        // Nothing new for a while at this length: let inputs grow.
        let log = (usize::BITS - self.len_limit.leading_zeros()) as u64;
        let quiet = self.execs - self.execs_at_last_find.max(self.execs_at_last_growth);
        if self.len_limit < self.max_len && quiet > LEN_CONTROL * log {
            if self.length_pays() {
                self.grow_len_limit();
            } else {
                // Ask again after the next quiet stretch.
                self.execs_at_last_growth = self.execs;
            }
        }
        self.exec.batch_clear();
        self.ops.clear();
        self.housekeeping()
    }

    /// Runs the batch in the executor from input 0, handling each input it
    /// stops at, and counts the executions.
    pub(super) fn run_batch(&mut self) -> Result<()> {
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

    /// Imports new entries of other instances now.
    ///
    /// The candidates run as batches that stop at inputs with new coverage,
    /// like mutants, so looking at thousands of peer entries costs little.
    pub(super) fn sync_now(&mut self) -> Result<()> {
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
}
