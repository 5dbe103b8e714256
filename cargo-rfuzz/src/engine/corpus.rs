//! The corpus: queue entries in memory and on disk, favoured entries, and
//! the weights the scheduler draws from.

use super::rng::Rng;
use std::path::PathBuf;

/// The share of draws favoured entries get together (when there are others).
pub const FAVOURED_SHARE: f64 = 0.9;

/// One queue entry.
#[derive(Debug, Clone)]
pub struct Testcase {
    /// Entry id (the `id:` of its file name).
    pub id: u32,
    /// File name in `queue/`.
    pub file_name: String,
    /// The input.
    pub data: Vec<u8>,
    /// Average execution time in microseconds (from calibration).
    pub exec_us: u64,
    /// Edges its run covers.
    pub edges: Vec<u32>,
    /// Hash of its classified coverage map.
    pub checksum: u64,
    /// Generations from a seed.
    pub depth: u32,
    /// Extra energy for entries that arrived late (imported, found late).
    pub handicap: u32,
    /// In the favoured set (smallest × fastest for some edge).
    pub favored: bool,
    /// Fuzzed at least once.
    pub was_fuzzed: bool,
    /// Times it was fuzzed.
    pub fuzz_level: u32,
    /// Deterministic stage done.
    pub det_done: bool,
    /// Compare-log stage done.
    pub cmplog_done: bool,
    /// Calibration saw variable coverage.
    pub var_behavior: bool,
    /// Entries found while fuzzing it.
    pub children: u32,
    /// The peer it was imported from.
    pub imported_from: Option<String>,
    /// Kept on disk but never picked (it no longer runs cleanly, or it was
    /// set aside).
    pub disabled: bool,
    /// Set aside because its mutants kept timing out (also `disabled`).
    pub set_aside: bool,
    /// Mutants generated from it.
    pub mutants: u64,
    /// Of those, how many timed out.
    pub timeouts: u32,
    /// Mutants generated since the first of them timed out (the rate of
    /// timeouts now, not over its whole life).
    pub timeout_mutants: u64,
}

impl Testcase {
    /// A new, not yet fuzzed entry.
    pub fn new(id: u32, file_name: String, data: Vec<u8>) -> Testcase {
        Testcase {
            id,
            file_name,
            data,
            exec_us: 1,
            edges: Vec::new(),
            checksum: 0,
            depth: 0,
            handicap: 0,
            favored: false,
            was_fuzzed: false,
            fuzz_level: 0,
            det_done: false,
            cmplog_done: false,
            var_behavior: false,
            children: 0,
            imported_from: None,
            disabled: false,
            set_aside: false,
            mutants: 0,
            timeouts: 0,
            timeout_mutants: 0,
        }
    }
}

/// All entries of an instance.
#[derive(Debug)]
pub struct Corpus {
    /// Entries, in id order.
    pub entries: Vec<Testcase>,
    /// The instance's `queue/` directory.
    pub queue_dir: PathBuf,
    /// Per edge, the entry that covers it most cheaply (len × exec time).
    top_rated: Vec<Option<u32>>,
    /// Set when entries or scores changed: favoured set and weights are stale.
    dirty: bool,
    weights: Vec<f64>,
    total_weight: f64,
    /// Favoured entries.
    pub favored: usize,
    /// Favoured entries not fuzzed yet.
    pub pending_favored: usize,
    /// Entries not fuzzed yet.
    pub pending_total: usize,
}

impl Corpus {
    /// An empty corpus for a map of `map_size` bytes.
    pub fn new(queue_dir: PathBuf, map_size: usize) -> Corpus {
        Corpus {
            entries: Vec::new(),
            queue_dir,
            top_rated: vec![None; map_size],
            dirty: true,
            weights: Vec::new(),
            total_weight: 0.0,
            favored: 0,
            pending_favored: 0,
            pending_total: 0,
        }
    }

    /// Next entry id.
    pub fn next_id(&self) -> u32 {
        self.entries.last().map_or(0, |e| e.id + 1)
    }

    /// Adds an entry and updates the best entry of each edge it covers.
    pub fn add(&mut self, tc: Testcase) -> usize {
        let idx = self.entries.len();
        let cost = |t: &Testcase| t.exec_us.max(1) as u128 * t.data.len().max(1) as u128;
        let my_cost = cost(&tc);
        for &e in &tc.edges {
            let slot = &mut self.top_rated[e as usize];
            match slot {
                Some(cur) if cost(&self.entries[*cur as usize]) <= my_cost => {}
                _ => *slot = Some(idx as u32),
            }
        }
        self.entries.push(tc);
        self.dirty = true;
        idx
    }

    /// Adds an entry that stays in the queue but is never fuzzed or favoured.
    pub fn add_disabled(&mut self, mut tc: Testcase) -> usize {
        tc.disabled = true;
        self.entries.push(tc);
        self.dirty = true;
        self.entries.len() - 1
    }

    /// Takes an entry out of selection (its file stays in the queue).
    pub fn set_aside(&mut self, idx: usize) {
        let e = &mut self.entries[idx];
        e.disabled = true;
        e.set_aside = true;
        self.dirty = true;
    }

    /// Entries that can be selected.
    pub fn enabled(&self) -> usize {
        self.entries.iter().filter(|e| !e.disabled).count()
    }

    /// Entries set aside.
    pub fn set_aside_count(&self) -> usize {
        self.entries.iter().filter(|e| e.set_aside).count()
    }

    /// The slowest entry that can be selected: `(id, exec_us)`.
    pub fn slowest(&self) -> Option<(u32, u64)> {
        self.entries.iter().filter(|e| !e.disabled).max_by_key(|e| e.exec_us).map(|e| (e.id, e.exec_us))
    }

    /// Marks scores stale (after fuzzing an entry or changing it).
    pub fn touch(&mut self) {
        self.dirty = true;
    }

    /// Recomputes the favoured set greedily (AFL's cull_queue): walk the
    /// edges, and for each one not yet covered by a favoured entry, favour
    /// its best entry.
    fn cull(&mut self) {
        let mut covered = vec![false; self.top_rated.len()];
        for e in &mut self.entries {
            e.favored = false;
        }
        for edge in 0..self.top_rated.len() {
            if covered[edge] {
                continue;
            }
            let Some(best) = self.top_rated[edge] else {
                continue;
            };
            let entry = &mut self.entries[best as usize];
            if entry.disabled {
                continue;
            }
            if !entry.favored {
                entry.favored = true;
                for &e in &entry.edges {
                    covered[e as usize] = true;
                }
            }
        }
        self.favored = self.entries.iter().filter(|e| e.favored).count();
        self.pending_favored = self.entries.iter().filter(|e| e.favored && !e.was_fuzzed).count();
        self.pending_total = self.entries.iter().filter(|e| !e.was_fuzzed && !e.disabled).count();
    }

    /// Selection weights (AFL++'s weighted queue selection): faster, larger
    /// coverage, rarely hit paths and unfuzzed entries weigh more, entries
    /// whose mutants time out less; favoured entries (the cheapest per edge)
    /// together get at least [`FAVOURED_SHARE`] of all draws, as AFL++ skips
    /// most non-favoured entries while favoured ones wait.
    fn reweigh(&mut self, path_hits: &dyn Fn(u64) -> u32) {
        let (avg_us, avg_edges) = self.averages();
        let mut raw = Vec::with_capacity(self.entries.len());
        let (mut fav_sum, mut other_sum) = (0.0, 0.0);
        for e in &self.entries {
            if e.disabled {
                raw.push(0.0);
                continue;
            }
            let mut w = 1.0;
            let hits = path_hits(e.checksum);
            if hits > 0 {
                w /= (hits as f64).log10() + 1.0;
            }
            w *= (avg_us / e.exec_us.max(1) as f64).clamp(0.01, 10.0);
            w *= ((e.edges.len() as f64 + 1.0).ln() / (avg_edges + 1.0).ln().max(0.1)).clamp(0.1, 10.0);
            w /= 1.0 + e.timeouts as f64;
            w = w.max(0.001);
            if !e.was_fuzzed {
                w *= 2.0;
            }
            if e.favored {
                fav_sum += w;
            } else {
                other_sum += w;
            }
            raw.push(w);
        }
        let boost = if fav_sum > 0.0 && other_sum > 0.0 && fav_sum < FAVOURED_SHARE * (fav_sum + other_sum) {
            FAVOURED_SHARE / (1.0 - FAVOURED_SHARE) * other_sum / fav_sum
        } else {
            1.0
        };
        self.weights.clear();
        self.total_weight = 0.0;
        for (e, w) in self.entries.iter().zip(raw) {
            self.total_weight += if e.favored { w * boost } else { w };
            self.weights.push(self.total_weight);
        }
    }

    /// Draws the next entry to fuzz. `path_hits` gives how often a path was
    /// executed (for favouring rare paths).
    pub fn select(&mut self, rng: &mut Rng, path_hits: &dyn Fn(u64) -> u32) -> usize {
        if self.dirty || self.weights.len() != self.entries.len() {
            self.cull();
            self.reweigh(path_hits);
            self.dirty = false;
        }
        let r = rng.unit() * self.total_weight;
        let i = self.weights.partition_point(|&c| c <= r).min(self.entries.len() - 1);
        // Skip disabled entries (zero weight ties at the end of the range).
        (i..self.entries.len()).chain(0..i).find(|&j| !self.entries[j].disabled).unwrap_or(i)
    }

    /// Average execution time (µs) and edges per entry that can be
    /// selected (entries kept only on disk have no meaningful time).
    pub fn averages(&self) -> (f64, f64) {
        let live = || self.entries.iter().filter(|e| !e.disabled);
        let n = live().count().max(1) as f64;
        (live().map(|e| e.exec_us as f64).sum::<f64>() / n, live().map(|e| e.edges.len() as f64).sum::<f64>() / n)
    }

    /// Deepest entry.
    pub fn max_depth(&self) -> u32 {
        self.entries.iter().map(|e| e.depth).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tc(id: u32, len: usize, us: u64, edges: &[u32]) -> Testcase {
        let mut t = Testcase::new(id, format!("id:{id:06}"), vec![0; len]);
        t.exec_us = us;
        t.edges = edges.to_vec();
        t
    }

    #[test]
    fn favours_the_cheapest_entry_per_edge() {
        let mut c = Corpus::new(PathBuf::new(), 64);
        c.add(tc(0, 100, 10, &[1, 2, 3]));
        c.add(tc(1, 10, 10, &[1, 2]));
        c.add(tc(2, 5, 10, &[3]));
        let mut rng = Rng::new(1);
        c.select(&mut rng, &|_| 0);
        let fav: Vec<bool> = c.entries.iter().map(|e| e.favored).collect();
        assert_eq!(fav, vec![false, true, true]);
        assert_eq!(c.favored, 2);
        assert_eq!(c.pending_favored, 2);
    }

    #[test]
    fn selection_prefers_favoured_entries() {
        let mut c = Corpus::new(PathBuf::new(), 64);
        c.add(tc(0, 100, 10, &[1]));
        c.add(tc(1, 10, 10, &[1]));
        let mut rng = Rng::new(5);
        let mut counts = [0; 2];
        for _ in 0..10_000 {
            counts[c.select(&mut rng, &|_| 0)] += 1;
        }
        assert!(counts[1] > counts[0] * 3, "{counts:?}");
    }

    #[test]
    fn favoured_entries_dominate_selection_even_when_few() {
        let mut c = Corpus::new(PathBuf::new(), 256);
        // One cheap entry covers edge 1; 99 bigger ones cover it too.
        c.add(tc(0, 4, 10, &[1]));
        for i in 1..100 {
            c.add(tc(i, 100, 10, &[1]));
        }
        let mut rng = Rng::new(9);
        let fav = (0..10_000).filter(|_| c.select(&mut rng, &|_| 0) == 0).count();
        assert!(fav > 8_500, "favoured drawn {fav} of 10000");
    }

    #[test]
    fn set_aside_entries_are_never_drawn_and_not_favoured() {
        let mut c = Corpus::new(PathBuf::new(), 64);
        c.add(tc(0, 4, 10, &[1]));
        c.add(tc(1, 100, 10, &[1, 2]));
        c.set_aside(0);
        let mut rng = Rng::new(3);
        assert!((0..1000).all(|_| c.select(&mut rng, &|_| 0) == 1));
        assert!(!c.entries[0].favored);
        assert_eq!((c.enabled(), c.set_aside_count()), (1, 1));
    }
}
