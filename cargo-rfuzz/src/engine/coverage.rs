//! Coverage feedback on hit-count maps, AFL-style.
//!
//! A raw map holds 8-bit hit counters per edge. Classifying turns each counter
//! into its bucket (1, 2, 3, 4-7, 8-15, 16-31, 32-127, 128+), one bit each. A
//! virgin map starts all ones; a bit still set there was never seen. An input
//! is interesting when its classified map has a bit that is still virgin: a
//! new edge (the whole byte was virgin) or a new hit-count bucket. Everything
//! here works a `u64` word at a time over the target's real map size, which
//! is a multiple of 64 bytes, and skips zero words at once.

pub use rfuzz::protocol::BUCKETS;
use std::sync::OnceLock;

/// Bucket of two counters at once (classifying a word takes four lookups).
fn buckets16() -> &'static [u16] {
    static TABLE: OnceLock<Box<[u16]>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=u16::MAX)
            .map(|v| {
                let [lo, hi] = v.to_le_bytes();
                u16::from_le_bytes([BUCKETS[lo as usize], BUCKETS[hi as usize]])
            })
            .collect()
    })
}

#[inline(always)]
fn load(chunk: &[u8]) -> u64 {
    u64::from_le_bytes(chunk.try_into().expect("8-byte chunk"))
}

/// Classifies a word of raw counters.
#[inline(always)]
fn classify_word(w: u64, t: &[u16]) -> u64 {
    let b = |shift: u32| (t[((w >> shift) & 0xffff) as usize] as u64) << shift;
    b(0) | b(16) | b(32) | b(48)
}

/// Replaces raw counters with their buckets, in place.
pub fn classify(map: &mut [u8]) {
    let t = buckets16();
    for chunk in map.chunks_exact_mut(8) {
        let w = load(chunk);
        if w != 0 {
            chunk.copy_from_slice(&classify_word(w, t).to_le_bytes());
        }
    }
}

/// What a classified map adds to a virgin map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NewBits {
    /// Nothing new.
    None,
    /// Only new hit-count buckets of known edges.
    Counts,
    /// At least one edge never seen before.
    Edges,
}

/// Compares a classified map with `virgin`, clears the bits it covers in
/// `virgin`, and says what was new.
pub fn update_virgin(trace: &[u8], virgin: &mut [u8]) -> NewBits {
    let mut ret = NewBits::None;
    for (t, v) in trace.chunks_exact(8).zip(virgin.chunks_exact_mut(8)) {
        let tw = load(t);
        if tw == 0 {
            continue;
        }
        let vw = load(v);
        if tw & vw == 0 {
            continue;
        }
        if ret < NewBits::Edges {
            // A byte of the trace that is non-zero where the virgin byte is
            // still 0xff is an edge never seen.
            let new_edge = t.iter().zip(v.iter()).any(|(&tb, &vb)| tb != 0 && vb == 0xff);
            ret = if new_edge { NewBits::Edges } else { ret.max(NewBits::Counts) };
        }
        v.copy_from_slice(&(vw & !tw).to_le_bytes());
    }
    ret
}

/// What a classified map would add to `virgin`, without updating it.
pub fn new_bits(trace: &[u8], virgin: &[u8]) -> NewBits {
    let mut ret = NewBits::None;
    for (t, v) in trace.chunks_exact(8).zip(virgin.chunks_exact(8)) {
        if load(t) & load(v) == 0 {
            continue;
        }
        if t.iter().zip(v).any(|(&tb, &vb)| tb != 0 && vb == 0xff) {
            return NewBits::Edges;
        }
        ret = NewBits::Counts;
    }
    ret
}

/// Whether a classified map has any bit still set in `virgin` (no update).
pub fn has_new_bits(trace: &[u8], virgin: &[u8]) -> bool {
    trace.chunks_exact(8).zip(virgin.chunks_exact(8)).any(|(t, v)| load(t) & load(v) != 0)
}

/// Number of non-zero bytes (edges hit, or edges seen in a virgin-style map
/// when counting bytes that are not 0xff).
pub fn count_nonzero(map: &[u8]) -> u32 {
    map.chunks_exact(8)
        .map(|c| {
            let w = load(c);
            if w == 0 { 0 } else { c.iter().filter(|&&b| b != 0).count() as u32 }
        })
        .sum()
}

/// Number of bytes of a virgin map that are no longer 0xff (edges seen).
pub fn count_seen(virgin: &[u8]) -> u32 {
    virgin
        .chunks_exact(8)
        .map(|c| if load(c) == u64::MAX { 0 } else { c.iter().filter(|&&b| b != 0xff).count() as u32 })
        .sum()
}

/// Hash of a classified map (identifies an execution path); the same
/// function the runtime uses for its path counts.
pub fn hash(map: &[u8]) -> u64 {
    let mut h = rfuzz::protocol::PathHasher::new(map.len());
    for (i, c) in map.chunks_exact(8).enumerate() {
        let w = load(c);
        if w != 0 {
            h.word(i, w);
        }
    }
    h.finish()
}

/// Indices of the edges a classified map covers (its "mini trace").
pub fn edges(map: &[u8]) -> Vec<u32> {
    let mut out = Vec::new();
    for (i, c) in map.chunks_exact(8).enumerate() {
        if load(c) != 0 {
            for (j, &b) in c.iter().enumerate() {
                if b != 0 {
                    out.push((i * 8 + j) as u32);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_bits_says_what_update_virgin_would_and_leaves_virgin_alone() {
        let mut virgin = vec![0xffu8; 16];
        let mut first = vec![0u8; 16];
        first[3] = 4;
        assert_eq!(new_bits(&first, &virgin), NewBits::Edges);
        assert_eq!(virgin, vec![0xffu8; 16], "new_bits does not update");
        assert_eq!(update_virgin(&first, &mut virgin), NewBits::Edges);
        assert_eq!(new_bits(&first, &virgin), NewBits::None);
        let mut more = first.clone();
        more[3] = 8; // another bucket of a known edge
        assert_eq!(new_bits(&more, &virgin), NewBits::Counts);
        more[12] = 1; // and an edge never seen
        assert_eq!(new_bits(&more, &virgin), NewBits::Edges);
        let before = virgin.clone();
        assert_eq!(new_bits(&more, &virgin), update_virgin(&more, &mut virgin.clone()));
        assert_eq!(virgin, before);
    }

    #[test]
    fn classify_uses_afl_buckets() {
        let mut m = vec![0u8; 16];
        m[0] = 1;
        m[1] = 3;
        m[2] = 5;
        m[9] = 200;
        m[10] = 31;
        classify(&mut m);
        assert_eq!(&m[..3], &[1, 4, 8]);
        assert_eq!(m[9], 128);
        assert_eq!(m[10], 32);
    }

    #[test]
    fn virgin_updates_distinguish_edges_and_counts() {
        let mut virgin = vec![0xffu8; 64];
        let mut t = vec![0u8; 64];
        t[5] = 1;
        assert_eq!(update_virgin(&t, &mut virgin), NewBits::Edges);
        assert_eq!(update_virgin(&t, &mut virgin), NewBits::None);
        t[5] = 2;
        assert!(has_new_bits(&t, &virgin));
        assert_eq!(update_virgin(&t, &mut virgin), NewBits::Counts);
        assert_eq!(count_seen(&virgin), 1);
        t[63] = 4;
        assert_eq!(update_virgin(&t, &mut virgin), NewBits::Edges);
        assert_eq!(count_seen(&virgin), 2);
    }

    #[test]
    fn hash_tells_paths_apart() {
        let mut a = vec![0u8; 64];
        a[3] = 1;
        let mut b = a.clone();
        assert_eq!(hash(&a), hash(&b));
        b[4] = 1;
        assert_ne!(hash(&a), hash(&b));
        assert_eq!(edges(&b), vec![3, 4]);
        assert_eq!(count_nonzero(&b), 2);
    }
}
