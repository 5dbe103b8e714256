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

/// When the limit on ordinary mutants (`short_limit`) may grow, in time.
/// libFuzzer's `-len_control` counts executions only; at hundreds of
/// thousands of executions a second its quiet stretch passes between any
/// two finds, so on a target that keeps finding coverage the limit climbs
/// to the maximum in seconds, entries grow long on hit-count coverage, and
/// every mutant runs at a fraction of the speed without finding more
/// (chrono's format parser: half the speed, twice the time to its bug).
/// Here a stretch is quiet once it is [`LenPace::GAPS`] times longer than
/// the recent time between finds, and grows the limit one step per
/// [`LenPace::STEP`] at most (a plateau still doubles it every couple of
/// seconds). The length limit itself grows as before, and some mutants
/// repeat a chunk up to it ([`DeepCost`]): nesting bugs need 20k-byte
/// inputs whatever coverage says.
#[derive(Debug, Clone)]
pub(super) struct LenPace {
    last_find: Instant,
    last_growth: Instant,
    /// Moving average of the time between recent finds (s; 0 until two).
    gap: f64,
    finds: u32,
}

impl LenPace {
    /// A quiet stretch is this many average gaps between finds long...
    const GAPS: f64 = 4.0;
    /// ...and at least this long (s).
    const MIN_QUIET: f64 = 0.1;
    /// Growth steps are at least this far apart (s).
    const STEP: f64 = 0.125;

    pub(super) fn new(now: Instant) -> LenPace {
        LenPace { last_find: now, last_growth: now, gap: 0.0, finds: 0 }
    }

    /// A new entry was found at `now`.
    pub(super) fn found(&mut self, now: Instant) {
        let g = now.saturating_duration_since(self.last_find).as_secs_f64();
        self.gap = match self.finds {
            0 => self.gap,
            1 => g,
            _ => self.gap + (g - self.gap) / 16.0,
        };
        self.finds = self.finds.saturating_add(1);
        self.last_find = now;
    }

    /// The limit grew (or was reconsidered) at `now`.
    pub(super) fn grew(&mut self, now: Instant) {
        self.last_growth = now;
    }

    /// Whether the stretch up to `now` is quiet enough to grow the limit.
    pub(super) fn may_grow(&self, now: Instant) -> bool {
        let since = |t: Instant| now.saturating_duration_since(t).as_secs_f64();
        since(self.last_find) >= (Self::GAPS * self.gap).max(Self::MIN_QUIET) && since(self.last_growth) >= Self::STEP
    }
}

/// How often a havoc mutant is also a deep one (a chunk repeated up to the
/// length limit): so that deep mutants take about [`DeepCost::SHARE`] of
/// the time. They run in batches of their own after the ordinary ones, and
/// both are timed. On a target that rejects long inputs early (toml's
/// parser) a deep mutant costs little more than another and one in four is
/// deep; on a linear one (chrono's format parser) one in tens.
#[derive(Debug, Clone, Default)]
pub(super) struct DeepCost {
    /// (µs, executions) of ordinary and of deep batches, decaying.
    normal: (f64, f64),
    deep: (f64, f64),
}

impl DeepCost {
    /// Share of the time deep mutants get.
    const SHARE: f64 = 0.15;
    /// One in this many before there is a measure.
    const DEFAULT_ONE_IN: usize = 32;
    /// Executions of each kind before the measure counts.
    const MIN_EXECS: f64 = 256.0;
    /// The measure's memory, in executions of each kind.
    const MEMORY: f64 = 100_000.0;

    fn add(acc: &mut (f64, f64), us: f64, execs: u64) {
        acc.0 += us;
        acc.1 += execs as f64;
        if acc.1 > Self::MEMORY {
            let keep = Self::MEMORY / acc.1;
            acc.0 *= keep;
            acc.1 *= keep;
        }
    }

    /// An ordinary batch of `execs` executions took `us`.
    pub(super) fn normal(&mut self, us: f64, execs: u64) {
        Self::add(&mut self.normal, us, execs);
    }

    /// A deep batch of `execs` executions took `us`.
    pub(super) fn deep(&mut self, us: f64, execs: u64) {
        Self::add(&mut self.deep, us, execs);
    }

    /// One havoc mutant in this many is deep.
    pub(super) fn one_in(&self) -> usize {
        let ((nu, nx), (du, dx)) = (self.normal, self.deep);
        if nx < Self::MIN_EXECS || dx < Self::MIN_EXECS || nu <= 0.0 {
            return Self::DEFAULT_ONE_IN;
        }
        // A deep run costs d ordinary ones: a share p of deep mutants takes
        // p*d / (1 - p + p*d) of the time, SHARE when 1/p = d*(1 - SHARE)/SHARE + 1.
        let d = (du / dx) / (nu / nx);
        let one_in = (d * (1.0 - Self::SHARE) / Self::SHARE + 1.0).round();
        (one_in as usize).clamp(4, 1024)
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

    /// Raises the limit on ordinary mutants by the same step, up to the
    /// length limit (see [`LenPace`]).
    pub(super) fn grow_short_limit(&mut self) {
        let step = (usize::BITS - self.short_limit.leading_zeros()) as usize;
        self.short_limit = (self.short_limit + step.max(self.short_limit / 16).max(1)).min(self.len_limit);
        self.len_pace.grew(Instant::now());
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

    /// Keeps a deep mutant for the deep batch that follows the next
    /// ordinary one (see [`DeepCost`]).
    pub(super) fn push_deep(&mut self, buf: &[u8], op: Op) {
        if let Op::Mutant { src, .. } = op {
            self.corpus.entries[src].mutants += 1;
        }
        self.deep.push((buf.to_vec(), op));
    }

    /// Runs the pending batch and the deep mutants, timing each, then does
    /// the periodic work.
    pub(super) fn flush(&mut self) -> Result<()> {
        if !self.ops.is_empty() {
            let (started, execs) = (Instant::now(), self.execs);
            self.run_batch()?;
            self.deep_cost.normal(started.elapsed().as_secs_f64() * 1e6, self.execs - execs);
        }
        if !self.deep.is_empty() {
            self.exec.batch_clear();
            self.ops.clear();
            let deep = std::mem::take(&mut self.deep);
            let (started, execs) = (Instant::now(), self.execs);
            for (buf, op) in deep {
                if !self.exec.batch_push(&buf) {
                    self.run_batch()?;
                    self.exec.batch_clear();
                    self.ops.clear();
                    if !self.exec.batch_push(&buf) {
                        continue;
                    }
                }
                self.ops.push(op);
            }
            if !self.ops.is_empty() {
                self.run_batch()?;
            }
            self.deep_cost.deep(started.elapsed().as_secs_f64() * 1e6, self.execs - execs);
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
        let now = Instant::now();
        if self.short_limit < self.len_limit && self.len_pace.may_grow(now) {
            self.grow_short_limit();
        }
        self.short_limit = self.short_limit.min(self.len_limit);
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
    use super::{DeepCost, LenCost, LenPace};
    use std::time::{Duration, Instant};

    #[test]
    fn deep_mutants_get_a_share_of_the_time_by_what_they_cost() {
        let mut c = DeepCost::default();
        assert_eq!(c.one_in(), DeepCost::DEFAULT_ONE_IN, "no measure yet");
        // As costly as the others: 15% of them.
        c.normal(1000.0, 1000);
        c.deep(1000.0, 1000);
        assert_eq!(c.one_in(), 7);
        // Twenty times as costly: one in 114 takes 15% of the time.
        let mut c = DeepCost::default();
        c.normal(1000.0, 1000);
        c.deep(20_000.0, 1000);
        assert_eq!(c.one_in(), 114);
        // Cheaper (rejected early): no more than one in four.
        let mut c = DeepCost::default();
        c.normal(1000.0, 1000);
        c.deep(100.0, 1000);
        assert_eq!(c.one_in(), 4);
        // The measure follows the target as it changes.
        for _ in 0..100 {
            c.normal(1000.0, 1000);
            c.deep(20_000.0, 1000);
        }
        assert!((100..130).contains(&c.one_in()), "{}", c.one_in());
    }

    #[test]
    fn length_grows_in_quiet_stretches_measured_against_recent_finds() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut p = LenPace::new(t0);
        assert!(!p.may_grow(at(50)), "not before the shortest quiet stretch");
        assert!(!p.may_grow(at(100)), "nor within a step of the start");
        assert!(p.may_grow(at(125)));
        // Finds every 10 ms: a stretch of 4 gaps, never less than 100 ms.
        for ms in (10..=500).step_by(10) {
            p.found(at(ms));
        }
        assert!(!p.may_grow(at(590)), "still finding");
        assert!(p.may_grow(at(600)));
        p.grew(at(600));
        assert!(!p.may_grow(at(700)), "steps are spaced");
        assert!(p.may_grow(at(725)));
        // Finds every 2 s: growth waits for 8 s without one.
        let mut p = LenPace::new(t0);
        for s in 1..=20u64 {
            p.found(at(s * 2000));
        }
        assert!(!p.may_grow(at(40_000 + 7_900)));
        assert!(p.may_grow(at(40_000 + 8_000)));
    }

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
