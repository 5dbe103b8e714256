//! Using the target's compare log: input-to-state solving and tokens.
//!
//! The runtime records the operands of integer compares, switch cases and
//! byte-string compares (memcmp/bcmp, slice and `str` equality) when asked.
//!
//! * **Input-to-state** (RedQueen's idea): an operand of a compare often is
//!   bytes of the input, as they are or in the other byte order, narrower,
//!   off by one, or as decimal text. Finding those bytes in the input and
//!   putting the other operand in their place solves the compare in one
//!   execution: a 4-, 8- or 16-byte magic value, a `match` on a tag, a length
//!   field checked against the real length.
//! * **Tokens**: a compare against a constant wider than a byte is a value the
//!   input probably has to contain somewhere, so its bytes become a dictionary
//!   token in both byte orders.

use rfuzz::protocol::cmplog::{self, Record};
use std::collections::HashSet;

/// Minimal little-endian bytes of `v` (at least `min` long).
fn significant_le(v: u64, width: usize) -> Vec<u8> {
    let bytes = v.to_le_bytes();
    let mut n = width;
    while n > 1 && bytes[n - 1] == 0 {
        n -= 1;
    }
    bytes[..n].to_vec()
}

fn operand(bytes: &[u8; cmplog::BYTES_MAX], size: usize) -> u64 {
    let mut b = [0u8; 8];
    b[..size.min(8)].copy_from_slice(&bytes[..size.min(8)]);
    u64::from_le_bytes(b)
}

/// Whether a constant is worth a token: not tiny, not all ones.
fn interesting_constant(v: u64, width: usize) -> bool {
    let all_ones = if width >= 8 { u64::MAX } else { (1u64 << (width * 8)) - 1 };
    v > 0xff && v != all_ones && v != all_ones >> 1
}

/// Dictionary tokens from a compare log.
pub fn tokens(records: &[Record]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for r in records {
        let size = r.size as usize;
        match r.kind {
            cmplog::KIND_INT | cmplog::KIND_SWITCH if size >= 2 && r.is_const == 1 => {
                // For const compares and switches the constant is operand `a`
                // (SanitizerCoverage puts it first) and the case value `b`.
                let c = if r.kind == cmplog::KIND_SWITCH { operand(&r.b, size) } else { operand(&r.a, size) };
                if interesting_constant(c, size) {
                    let le = significant_le(c, size);
                    let mut be = le.clone();
                    be.reverse();
                    out.push(le);
                    out.push(be);
                }
            }
            cmplog::KIND_BYTES if size >= 2 => {
                out.push(r.a[..size].to_vec());
                out.push(r.b[..size].to_vec());
            }
            _ => {}
        }
    }
    out
}

/// Occurrences of `needle` in `hay` (at most `limit`).
fn find_all(hay: &[u8], needle: &[u8], limit: usize) -> Vec<usize> {
    let mut out = Vec::new();
    if needle.is_empty() || needle.len() > hay.len() {
        return out;
    }
    let mut i = 0;
    while i + needle.len() <= hay.len() && out.len() < limit {
        match hay[i..=hay.len() - needle.len()].iter().position(|&b| b == needle[0]) {
            Some(p) => {
                let at = i + p;
                if &hay[at..at + needle.len()] == needle {
                    out.push(at);
                }
                i = at + 1;
            }
            None => break,
        }
    }
    out
}

/// `value` in `width` bytes, little- or big-endian; `None` if it does not fit.
fn encode(value: u64, width: usize, big_endian: bool) -> Option<Vec<u8>> {
    if width < 8 && value >> (width * 8) != 0 {
        return None;
    }
    let le = value.to_le_bytes();
    let mut v = le[..width].to_vec();
    if big_endian {
        v.reverse();
    }
    Some(v)
}

/// Collects candidates, skipping duplicates and stopping at `max`.
struct Candidates<'a> {
    input: &'a [u8],
    max: usize,
    seen: HashSet<Vec<u8>>,
    out: Vec<Vec<u8>>,
}

impl Candidates<'_> {
    fn full(&self) -> bool {
        self.out.len() >= self.max
    }

    /// Every occurrence of `pattern` replaced (one at a time) by `repl`.
    fn replace(&mut self, pattern: &[u8], repl: &[u8]) {
        if pattern == repl || pattern.is_empty() {
            return;
        }
        for at in find_all(self.input, pattern, 8) {
            if self.full() {
                return;
            }
            let mut c = Vec::with_capacity(self.input.len() + repl.len());
            c.extend_from_slice(&self.input[..at]);
            c.extend_from_slice(repl);
            c.extend_from_slice(&self.input[at + pattern.len()..]);
            if c != self.input && self.seen.insert(c.clone()) {
                self.out.push(c);
            }
        }
    }

    /// Integer operand `pattern` found in the input, replaced by `repl`, in
    /// every encoding a parser commonly reads it from.
    fn integer(&mut self, pattern: u64, repl: u64, size: usize) {
        // Numbers parsed from text.
        if (10..1_000_000_000_000).contains(&pattern) {
            self.replace(pattern.to_string().as_bytes(), repl.to_string().as_bytes());
        }
        // Binary values this small match everywhere; their compares are
        // cheap for havoc anyway.
        if pattern < 0x100 {
            return;
        }
        for width in [8usize, 4, 2] {
            if width > size {
                continue;
            }
            for big_endian in [false, true] {
                for delta in [0i64, 1, -1] {
                    let (p, r) = (pattern.wrapping_add(delta as u64), repl.wrapping_add(delta as u64));
                    if let (Some(pb), Some(rb)) = (encode(p, width, big_endian), encode(r, width, big_endian)) {
                        self.replace(&pb, &rb);
                    }
                }
            }
        }
    }
}

/// Input-to-state candidates for `input`: for each compare in the log, the
/// input with one operand's bytes replaced by the other operand's (at most
/// `max` candidates, duplicates removed).
pub fn input_to_state(input: &[u8], records: &[Record], max: usize) -> Vec<Vec<u8>> {
    let mut c = Candidates { input, max, seen: HashSet::new(), out: Vec::new() };
    let mut done: HashSet<(u8, u8, [u8; cmplog::BYTES_MAX], [u8; cmplog::BYTES_MAX])> = HashSet::new();
    for r in records {
        if c.full() {
            break;
        }
        let size = r.size as usize;
        if size == 0 || !done.insert((r.kind, r.size, r.a, r.b)) {
            continue;
        }
        match r.kind {
            cmplog::KIND_INT | cmplog::KIND_SWITCH if size >= 2 => {
                let (a, b) = (operand(&r.a, size), operand(&r.b, size));
                if a != b {
                    c.integer(a, b, size);
                    c.integer(b, a, size);
                }
            }
            cmplog::KIND_BYTES if size >= 2 => {
                let (a, b) = (&r.a[..size], &r.b[..size]);
                c.replace(a, b);
                c.replace(b, a);
            }
            _ => {}
        }
    }
    single_byte_compares(&mut c, records, max / 4);
    c.out
}

/// One-byte compares and `match` cases (a format character, a tag letter): the
/// input's byte `a` replaced by `b`, up to 8 occurrences each. libFuzzer's
/// table of recent compares keeps 4- and 8-byte compares only; havoc finds
/// such a byte in about one of 256 tries, and a keyword checked byte by byte
/// (a weekday name compared letter by letter) needs one such step per letter.
/// Latest compares come first, since they sit where parsing stopped, and they
/// get at most `budget` candidates beyond the wider compares' (a one-byte value
/// matches in many places, and most of those are not the compared byte).
fn single_byte_compares(c: &mut Candidates, records: &[Record], budget: usize) {
    c.max = c.max.min(c.out.len() + budget);
    let mut done: HashSet<(u8, u8)> = HashSet::new();
    for r in records.iter().rev() {
        if c.full() {
            break;
        }
        if r.size != 1 || !matches!(r.kind, cmplog::KIND_INT | cmplog::KIND_SWITCH) {
            continue;
        }
        let (a, b) = (r.a[0], r.b[0]);
        if a == b || !done.insert((a, b)) {
            continue;
        }
        c.replace(&[a], &[b]);
        // A variable compare may have either operand in the input; a switch's
        // case value `b` is a constant.
        if r.kind == cmplog::KIND_INT {
            c.replace(&[b], &[a]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int_record(a: u64, b: u64, size: u8, is_const: u8) -> Record {
        let mut r = Record { kind: cmplog::KIND_INT, size, is_const, reserved: 0, site: 0, a: [0; 32], b: [0; 32] };
        r.a[..8].copy_from_slice(&a.to_le_bytes());
        r.b[..8].copy_from_slice(&b.to_le_bytes());
        r
    }

    #[test]
    fn constants_become_tokens_in_both_orders() {
        let magic = u32::from_le_bytes(*b"RFZ!") as u64;
        let t = tokens(&[int_record(magic, 0, 4, 1)]);
        assert_eq!(t, vec![b"RFZ!".to_vec(), b"!ZFR".to_vec()]);
    }

    fn bytes_record(a: &[u8], b: &[u8]) -> Record {
        let mut r = Record {
            kind: cmplog::KIND_BYTES,
            size: a.len() as u8,
            is_const: 0,
            reserved: 0,
            site: 0,
            a: [0; 32],
            b: [0; 32],
        };
        r.a[..a.len()].copy_from_slice(a);
        r.b[..b.len()].copy_from_slice(b);
        r
    }

    #[test]
    fn input_to_state_solves_integer_compares_in_every_encoding() {
        // The input holds 0x11223344 little-endian; the compare wants 0x55667788.
        let input = [b'x', 0x44, 0x33, 0x22, 0x11, b'y'];
        let c = input_to_state(&input, &[int_record(0x1122_3344, 0x5566_7788, 4, 0)], 100);
        assert!(c.contains(&vec![b'x', 0x88, 0x77, 0x66, 0x55, b'y']));
        // Big-endian in the input.
        let input = [0x11, 0x22, 0x33, 0x44];
        let c = input_to_state(&input, &[int_record(0x1122_3344, 0x5566_7788, 4, 0)], 100);
        assert!(c.contains(&vec![0x55, 0x66, 0x77, 0x88]));
        // A 2-byte field compared as a 64-bit integer.
        let input = [0x34, 0x12, 0, 9];
        let c = input_to_state(&input, &[int_record(0x1234, 0x4321, 8, 0)], 100);
        assert!(c.contains(&vec![0x21, 0x43, 0, 9]));
        // Decimal text.
        let c = input_to_state(b"len=123;", &[int_record(123, 4567, 8, 0)], 100);
        assert!(c.contains(&b"len=4567;".to_vec()));
    }

    #[test]
    fn input_to_state_solves_byte_string_compares() {
        let input = b"HDR:abcdefghijklmnop:tail";
        let c = input_to_state(input, &[bytes_record(b"abcdefghijklmnop", b"SIXTEEN-BYTE-KEY")], 100);
        assert_eq!(c, vec![b"HDR:SIXTEEN-BYTE-KEY:tail".to_vec()]);
    }

    #[test]
    fn input_to_state_is_bounded_and_deduplicated() {
        let input = vec![0x42u8; 64];
        let recs = vec![int_record(0x4242, 0x1111, 2, 0); 10];
        let c = input_to_state(&input, &recs, 5);
        assert_eq!(c.len(), 5);
        let set: HashSet<_> = c.iter().collect();
        assert_eq!(set.len(), 5);
    }

    fn switch_record(value: u8, case: u8) -> Record {
        let mut r = int_record(value as u64, case as u64, 1, 0);
        r.kind = cmplog::KIND_SWITCH;
        r
    }

    #[test]
    fn input_to_state_solves_single_byte_compares_latest_first() {
        // A `match` on a format character: the input has `%q`, the parser
        // wanted one of its cases; the latest compare's candidates come first.
        let input = b"%Y-%q";
        let recs = [switch_record(b'Y', b'Y'), switch_record(b'q', b'a'), switch_record(b'q', b'z')];
        let c = input_to_state(input, &recs, 100);
        assert_eq!(c, vec![b"%Y-%z".to_vec(), b"%Y-%a".to_vec()]);
        // A variable one-byte compare tries both directions.
        let c = input_to_state(b"ab", &[int_record(b'a' as u64, b'c' as u64, 1, 0)], 100);
        assert_eq!(c, vec![b"cb".to_vec()]);
        let c = input_to_state(b"cb", &[int_record(b'a' as u64, b'c' as u64, 1, 0)], 100);
        assert_eq!(c, vec![b"ab".to_vec()]);
    }

    #[test]
    fn single_byte_candidates_get_a_quarter_of_the_budget() {
        // 64 different bytes, each compared against another value: without
        // the cap these would fill all 100 slots.
        let input: Vec<u8> = (0..64u8).collect();
        let recs: Vec<Record> = (0..64u8).map(|v| switch_record(v, v + 100)).collect();
        assert_eq!(input_to_state(&input, &recs, 100).len(), 25);
        // Wider compares keep their place in front.
        let mut recs2 = vec![int_record(0x0302, 0x7777, 2, 0)];
        recs2.extend(recs);
        let c = input_to_state(&input, &recs2, 100);
        assert_eq!(c.len(), 26);
        assert_eq!(&c[0][..5], &[0, 1, 0x77, 0x77, 4]);
    }

    #[test]
    fn small_values_and_variable_compares_are_skipped() {
        assert!(tokens(&[int_record(16, 3, 8, 1)]).is_empty());
        assert!(tokens(&[int_record(0xffff_ffff, 3, 4, 1)]).is_empty());
        assert!(tokens(&[int_record(0x1234_5678, 3, 4, 0)]).is_empty());
        // A 64-bit compare with a 2-byte constant gives a 2-byte token.
        assert_eq!(tokens(&[int_record(0x4142, 0, 8, 1)])[0], b"BA".to_vec());
    }
}
