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
        self.ops.push(op);
        Ok(())
    }

    /// Raises the mutant length limit by about its logarithm (libFuzzer's
    /// `-len_control` step).
    pub(super) fn grow_len_limit(&mut self) {
        let step = (usize::BITS - self.len_limit.leading_zeros()) as usize;
        self.len_limit = (self.len_limit + step.max(1)).min(self.max_len);
        self.execs_at_last_growth = self.execs;
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
            self.grow_len_limit();
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
