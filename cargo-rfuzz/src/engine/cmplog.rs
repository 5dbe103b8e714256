//! Using the target's compare log: tokens for the automatic dictionary.
//!
//! The runtime records the operands of integer compares, switch cases and
//! byte-string compares when asked. A compare against a constant wider than a
//! byte (`x == 0x215a4652`, a `match` on a 4-byte tag) is a value the input
//! probably has to contain, so its bytes become a dictionary token in both
//! byte orders.

use rfuzz::protocol::cmplog::{self, Record};

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

    #[test]
    fn small_values_and_variable_compares_are_skipped() {
        assert!(tokens(&[int_record(16, 3, 8, 1)]).is_empty());
        assert!(tokens(&[int_record(0xffff_ffff, 3, 4, 1)]).is_empty());
        assert!(tokens(&[int_record(0x1234_5678, 3, 4, 0)]).is_empty());
        // A 64-bit compare with a 2-byte constant gives a 2-byte token.
        assert_eq!(tokens(&[int_record(0x4142, 0, 8, 1)])[0], b"BA".to_vec());
    }
}
