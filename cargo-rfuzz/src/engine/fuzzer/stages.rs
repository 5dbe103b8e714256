//! The mutation stages of one queue entry: compare log (tokens and
//! input-to-state), deterministic, havoc/splice, and the energy they get.

use super::*;

/// One havoc mutant of a text input in this many also gets a multi-byte character.
const UTF8_ONE_IN: usize = 8;

impl Fuzzer {
    /// Runs the entry once with compare logging and learns tokens from the
    /// operands (and solves input-to-state compares, see [`cmplog`]).
    pub(super) fn cmplog_stage(&mut self, idx: usize) -> Result<()> {
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

    pub(super) fn det_stage(&mut self, idx: usize) -> Result<()> {
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
                if self.stopping() || !det.next(&data, &mut buf, self.short_limit.max(data.len())) {
                    return Ok(());
                }
                self.push_mutant(&buf, Op::Mutant { src: idx, name, rep: 0, other: None })?;
            }
        })();
        self.buf = buf;
        result
    }

    /// Havoc iterations for an entry: AFL++'s performance score and power
    /// schedule, capped so that one turn of a slow entry takes at most
    /// [`MAX_TURN_US`] and that an entry whose mutants time out expects
    /// about one timeout per turn.
    pub(super) fn energy(&mut self, idx: usize) -> usize {
        let (avg_us, avg_edges) = self.corpus.averages();
        let e = &self.corpus.entries[idx];
        let mut perf = performance_score(e, avg_us, avg_edges);
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
            // Explore ignores coverage and depth, but not cost.
            Schedule::Explore => perf = 100.0 * time_factor(e.exec_us as f64 / avg_us.max(1.0)),
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
        let mut energy = ((HAVOC_CYCLES * perf / 100.0) as usize).max(HAVOC_MIN);
        energy = energy.min((MAX_TURN_US / e.exec_us.max(1)).max(HAVOC_MIN as u64) as usize);
        if e.timeouts > 0 {
            energy = energy.min((e.timeout_mutants / e.timeouts as u64).max(HAVOC_MIN as u64) as usize);
        }
        energy
    }

    pub(super) fn havoc_stage(&mut self, idx: usize) -> Result<()> {
        self.stage = "havoc";
        let energy = self.energy(idx);
        let parent = self.corpus.entries[idx].data.clone();
        let parent_is_text = std::str::from_utf8(&parent).is_ok();
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
            // Set aside while its mutants ran (they kept timing out): stop.
            if self.stopping() || self.corpus.entries[idx].disabled {
                break;
            }
            let src = Sources {
                user_dict: &self.user_dict,
                auto_dict: &self.auto_dict,
                other: other_data.as_deref(),
                max_len: self.short_limit.max(parent.len()).min(self.max_len),
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
            let mut rep = mutator::havoc(&mut buf, &mut self.rng, &src, self.cfg.flavor.havoc_stack_pow);
            // Text inputs: a multi-byte character now and then (see `mutator::utf8_char`).
            if parent_is_text
                && self.rng.one_in(UTF8_ONE_IN)
                && mutator::utf8_char(&mut buf, &mut self.rng, src.max_len)
            {
                rep += 1;
                name = "havoc-utf8";
            }
            // Now and then a chunk repeated up to the length limit (see
            // `batch::LenPace`), run in a batch of its own (`batch::DeepCost`).
            if self.len_limit > src.max_len && self.rng.one_in(self.deep_cost.one_in()) {
                let deep = Sources { max_len: self.len_limit.max(parent.len()).min(self.max_len), ..src };
                if mutator::repeat_chunk(&mut buf, &mut self.rng, &deep) {
                    self.push_deep(&buf, Op::Mutant { src: idx, name: DEEP_OP, rep: rep + 1, other });
                    continue;
                }
            }
            result = self.push_mutant(&buf, Op::Mutant { src: idx, name, rep, other });
            if result.is_err() {
                break;
            }
        }
        self.buf = buf;
        result
    }
}

/// One turn of havoc on an entry takes at most about this long (µs).
const MAX_TURN_US: u64 = 1_000_000;

/// AFL++'s factor for an entry `t` times slower than the average.
fn time_factor(t: f64) -> f64 {
    match t {
        t if t > 10.0 => 0.1,
        t if t > 4.0 => 0.25,
        t if t > 2.0 => 0.5,
        t if t > 1.33 => 0.75,
        t if t < 0.25 => 3.0,
        t if t < 0.33 => 2.0,
        t if t < 0.5 => 1.5,
        _ => 1.0,
    }
}

/// AFL++'s performance score (100 = an average entry): cheaper, wider and
/// deeper entries score higher; one 10x slower than the average gets a tenth.
pub(super) fn performance_score(e: &Testcase, avg_us: f64, avg_edges: f64) -> f64 {
    let mut perf = 100.0 * time_factor(e.exec_us as f64 / avg_us.max(1.0));
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
    perf * match e.depth {
        0..=3 => 1.0,
        4..=7 => 2.0,
        8..=13 => 3.0,
        14..=25 => 4.0,
        _ => 5.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::corpus::Corpus;

    fn entry(id: u32, us: u64) -> Testcase {
        let mut t = Testcase::new(id, format!("id:{id:06}"), vec![0; 8]);
        t.exec_us = us;
        t.edges = vec![1, 2, 3];
        t
    }

    #[test]
    fn an_entry_ten_times_slower_gets_far_less_energy() {
        let mut c = Corpus::new(std::path::PathBuf::new(), 64);
        for i in 0..19 {
            c.add(entry(i, 100));
        }
        c.add(entry(19, 1000));
        let (avg_us, avg_edges) = c.averages();
        let fast = performance_score(&c.entries[0], avg_us, avg_edges);
        let slow = performance_score(&c.entries[19], avg_us, avg_edges);
        // 10x slower than the rest, 6.9x the average: a quarter of the score.
        assert_eq!((fast, slow), (100.0, 25.0));
        // Far slower than the average: a tenth.
        let mut c = Corpus::new(std::path::PathBuf::new(), 64);
        for i in 0..99 {
            c.add(entry(i, 100));
        }
        c.add(entry(99, 2000));
        let (avg_us, avg_edges) = c.averages();
        assert_eq!(performance_score(&c.entries[99], avg_us, avg_edges), 10.0);
    }
}
