//! Batching: mutants of several entries share one executor request; the
//! input a batch stops at is handled, then the batch goes on. Imports from
//! peers run the same way.

use super::*;

/// What the mutants of a length cost per byte, for length control: batches
/// are timed (runs that end in a timeout are left out: those are handled as
/// timeouts), and closed into windows of about [`LenCost::WINDOW`]
/// executions. The window of the shortest inputs is the reference: a target
/// whose cost is linear in the length (or less: the per-run overhead is
/// amortised, inputs rejected early cost nothing per byte) keeps or lowers
/// its cost per byte as inputs grow, a super-linear one does not, and its
/// inputs stop growing where their cost per byte has doubled.
#[derive(Debug, Default, Clone)]
pub(super) struct LenCost {
    us: f64,
    bytes: f64,
    execs: u64,
    /// Cost per byte of the last closed window.
    last: Option<f64>,
    /// Mean length and cost per byte of the window of the shortest inputs.
    reference: Option<(f64, f64)>,
}

impl LenCost {
    /// Executions per window.
    const WINDOW: u64 = 4096;
    /// Time per window at most, µs (slow targets close windows by time).
    const WINDOW_US: f64 = 250_000.0;

    /// Counts `execs` runs of `bytes` bytes in all that took `us`.
    pub(super) fn add(&mut self, us: f64, bytes: f64, execs: u64) {
        self.us += us;
        self.bytes += bytes;
        self.execs += execs;
        if self.execs >= Self::WINDOW || self.us >= Self::WINDOW_US {
            if self.bytes >= 1.0 {
                let per_byte = self.us / self.bytes;
                let mean_len = self.bytes / self.execs.max(1) as f64;
                self.last = Some(per_byte);
                if self.reference.is_none_or(|(len, _)| mean_len < len) {
                    self.reference = Some((mean_len, per_byte));
                }
            }
            (self.us, self.bytes, self.execs) = (0.0, 0.0, 0);
        }
    }

    /// Whether the inputs of the current length cost at most twice per byte
    /// what the shortest ones did (true until there is a measure).
    pub(super) fn pays(&self) -> bool {
        match (self.last, self.reference) {
            (Some(l), Some((_, r))) => l <= 2.0 * r,
            _ => true,
        }
    }
}

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

    /// Length of the longest entry that can be selected.
    pub(super) fn longest_entry(&self) -> usize {
        self.corpus.entries.iter().filter(|e| !e.disabled).map(|e| e.data.len()).max().unwrap_or(0)
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
            if !self.len_cost.pays() {
                // Longer mutants cost more per byte (a super-linear target):
                // back off towards the longest entry, and ask again after
                // the next quiet stretch.
                let floor = self.longest_entry().max(MIN_LEN_LIMIT);
                self.len_limit = (self.len_limit - self.len_limit / 8).max(floor).min(self.len_limit);
                self.execs_at_last_growth = self.execs;
            } else if self.length_pays() {
                self.grow_len_limit();
            } else {
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
            let started = Instant::now();
            let stop = self.exec.run_batch(from, true)?;
            let us = started.elapsed().as_secs_f64() * 1e6;
            let last = match stop {
                BatchStop::Completed => Some(n - 1),
                BatchStop::Interesting(i) => Some(i),
                BatchStop::Ended { kind: ExitKind::Timeout, .. } => None,
                BatchStop::Ended { index, .. } => Some(index),
            };
            if let Some(last) = last {
                let bytes: usize = (from..=last).map(|i| self.exec.batch_input(i).len()).sum();
                self.len_cost.add(us, bytes as f64, (last + 1 - from) as u64);
            }
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

#[cfg(test)]
mod tests {
    use super::LenCost;

    /// Windows of `len`-byte inputs on a target costing `cost(len)` µs each.
    fn feed(c: &mut LenCost, len: f64, cost: impl Fn(f64) -> f64) {
        for _ in 0..LenCost::WINDOW / 64 {
            c.add(64.0 * cost(len), 64.0 * len, 64);
        }
    }

    #[test]
    fn linear_cost_pays_for_longer_inputs_and_quadratic_cost_stops_them() {
        // 1 µs per run plus 10 ns per byte: longer inputs pay.
        let linear = |len: f64| 1.0 + 0.01 * len;
        let mut c = LenCost::default();
        assert!(c.pays(), "no measure yet");
        for len in [16.0, 64.0, 1024.0, 100_000.0] {
            feed(&mut c, len, linear);
            assert!(c.pays(), "linear at {len}");
        }
        // Plus 1 ns per pair of bytes: from a few hundred bytes on they do not.
        let quadratic = |len: f64| 1.0 + 0.001 * len * len / 2.0;
        let mut c = LenCost::default();
        feed(&mut c, 16.0, quadratic);
        feed(&mut c, 64.0, quadratic);
        assert!(c.pays());
        feed(&mut c, 400.0, quadratic);
        assert!(!c.pays(), "quadratic at 400 bytes");
        // Early-rejected long inputs cost nothing per byte; that does not
        // make the reference too cheap for what follows.
        let mut c = LenCost::default();
        feed(&mut c, 8.0, linear);
        feed(&mut c, 50_000.0, |_| 1.0);
        feed(&mut c, 20_000.0, linear);
        assert!(c.pays());
    }
}
