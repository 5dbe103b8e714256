//! Mutations: AFL-style havoc (stacked random edits), splicing, and the
//! deterministic stage, plus mutations that reach long inputs (repeated
//! chunks, long digit runs, deep nesting) which havoc alone rarely builds.

use super::dict::Dictionary;
use super::rng::Rng;

/// AFL's "interesting" values.
pub const INTERESTING_8: [i8; 9] = [-128, -1, 0, 1, 16, 32, 64, 100, 127];
/// 16-bit interesting values (the 8-bit ones are tried by the 8-bit stage).
pub const INTERESTING_16: [i16; 10] = [-32768, -129, 128, 255, 256, 512, 1000, 1024, 4096, 32767];
/// 32-bit interesting values.
pub const INTERESTING_32: [i32; 8] = [i32::MIN, -100663046, -32769, 32768, 65535, 65536, 100663045, i32::MAX];
/// Largest add/subtract of the arithmetic mutations.
pub const ARITH_MAX: u32 = 35;

/// What a havoc mutation may draw on besides the input itself.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    /// The user's `-x` dictionaries.
    pub user_dict: &'a Dictionary,
    /// Tokens learned from the target.
    pub auto_dict: &'a Dictionary,
    /// Another corpus entry, for splice-in mutations.
    pub other: Option<&'a [u8]>,
    /// Longest input to produce.
    pub max_len: usize,
}

/// Block length for insert/delete/overwrite: mostly short, sometimes long.
fn block_len(rng: &mut Rng, limit: usize) -> usize {
    if limit <= 1 {
        return limit;
    }
    let (lo, hi) = match rng.below(10) {
        0..=5 => (1, 32),
        6..=8 => (32, 128),
        _ => (128, 1500),
    };
    let hi = hi.min(limit);
    let lo = lo.min(hi);
    rng.between(lo, hi)
}

fn put<const N: usize>(buf: &mut [u8], pos: usize, bytes: [u8; N]) {
    buf[pos..pos + N].copy_from_slice(&bytes);
}

fn get<const N: usize>(buf: &[u8], pos: usize) -> [u8; N] {
    buf[pos..pos + N].try_into().expect("range checked by caller")
}

/// Number of havoc operators (draws above them pick the rare long-input
/// mutation, see [`repeat_chunk`]).
const OPS: usize = 21;

/// Inserts `src` at `at` (a memmove of the tail and a copy: `Vec::splice`
/// with an iterator is several times slower on the hot path).
fn insert_bytes(buf: &mut Vec<u8>, at: usize, src: &[u8]) {
    let old = buf.len();
    buf.resize(old + src.len(), 0);
    buf.copy_within(at..old, at + src.len());
    buf[at..at + src.len()].copy_from_slice(src);
}

/// Inserts `n` copies of `byte` at `at`.
fn insert_fill(buf: &mut Vec<u8>, at: usize, n: usize, byte: u8) {
    let old = buf.len();
    buf.resize(old + n, 0);
    buf.copy_within(at..old, at + n);
    buf[at..at + n].fill(byte);
}

/// Inserts a copy of `buf[from..from + n]` at `at`.
fn insert_self(buf: &mut Vec<u8>, at: usize, from: usize, n: usize) {
    let old = buf.len();
    buf.resize(old + n, 0);
    buf.copy_within(at..old, at + n);
    // The source may have moved right if it was after the insertion point.
    let src = if from >= at { from + n } else { from };
    if src + n <= at || src >= at + n {
        buf.copy_within(src..src + n, at);
    } else {
        // Overlapping the gap (source straddles `at`): copy via a buffer.
        let tmp: Vec<u8> = buf[src..src + n].to_vec();
        buf[at..at + n].copy_from_slice(&tmp);
    }
}

/// Removes `buf[at..at + n]`.
fn remove_bytes(buf: &mut Vec<u8>, at: usize, n: usize) {
    let old = buf.len();
    buf.copy_within(at + n..old, at);
    buf.truncate(old - n);
}

/// One random edit. Returns false if the operator did not apply (input too
/// short, no dictionary, ...), so the caller can draw another.
fn mutate_once(buf: &mut Vec<u8>, rng: &mut Rng, src: &Sources) -> bool {
    let len = buf.len();
    let room = src.max_len.saturating_sub(len);
    let draw = rng.below(64);
    if draw >= OPS * 3 {
        return repeat_chunk(buf, rng, src);
    }
    match draw / 3 {
        0 | 1 => {
            if len == 0 {
                return false;
            }
            let bit = rng.below(len * 8);
            buf[bit / 8] ^= 0x80 >> (bit % 8);
        }
        2 => {
            if len == 0 {
                return false;
            }
            let p = rng.below(len);
            buf[p] = INTERESTING_8[rng.below(INTERESTING_8.len())] as u8;
        }
        3 => {
            if len < 2 {
                return false;
            }
            let p = rng.below(len - 1);
            let v = *pick(rng, &INTERESTING_16[..]).unwrap() as u16;
            put(buf, p, if rng.one_in(2) { v.to_le_bytes() } else { v.to_be_bytes() });
        }
        4 => {
            if len < 4 {
                return false;
            }
            let p = rng.below(len - 3);
            let v = *pick(rng, &INTERESTING_32[..]).unwrap() as u32;
            put(buf, p, if rng.one_in(2) { v.to_le_bytes() } else { v.to_be_bytes() });
        }
        5 => {
            if len == 0 {
                return false;
            }
            let p = rng.below(len);
            let d = rng.between(1, ARITH_MAX as usize) as u8;
            buf[p] = if rng.one_in(2) { buf[p].wrapping_add(d) } else { buf[p].wrapping_sub(d) };
        }
        6 => {
            if len < 2 {
                return false;
            }
            let p = rng.below(len - 1);
            let d = rng.between(1, ARITH_MAX as usize) as u16;
            let be = rng.one_in(2);
            let v = if be { u16::from_be_bytes(get(buf, p)) } else { u16::from_le_bytes(get(buf, p)) };
            let v = if rng.one_in(2) { v.wrapping_add(d) } else { v.wrapping_sub(d) };
            put(buf, p, if be { v.to_be_bytes() } else { v.to_le_bytes() });
        }
        7 => {
            if len < 4 {
                return false;
            }
            let p = rng.below(len - 3);
            let d = rng.between(1, ARITH_MAX as usize) as u32;
            let be = rng.one_in(2);
            let v = if be { u32::from_be_bytes(get(buf, p)) } else { u32::from_le_bytes(get(buf, p)) };
            let v = if rng.one_in(2) { v.wrapping_add(d) } else { v.wrapping_sub(d) };
            put(buf, p, if be { v.to_be_bytes() } else { v.to_le_bytes() });
        }
        8 => {
            if len == 0 {
                return false;
            }
            let p = rng.below(len);
            buf[p] ^= rng.between(1, 255) as u8;
        }
        9 | 10 => {
            // Delete a block (twice as likely: keeps inputs short).
            if len < 2 {
                return false;
            }
            let n = block_len(rng, len - 1);
            let p = rng.below(len - n + 1);
            remove_bytes(buf, p, n);
        }
        11 => {
            // Clone a block of the input, or insert a run of one byte.
            if room == 0 || len == 0 {
                return false;
            }
            let n = block_len(rng, room.min(len));
            let at = rng.below(len + 1);
            if rng.below(4) != 0 {
                let from = rng.below(len - n + 1);
                insert_self(buf, at, from, n);
            } else {
                let b = if rng.one_in(2) { rng.below(256) as u8 } else { buf[rng.below(len)] };
                insert_fill(buf, at, n, b);
            }
        }
        12 => {
            // Overwrite a block with another part of the input or one byte.
            if len < 2 {
                return false;
            }
            let n = block_len(rng, len - 1);
            let from = rng.below(len - n + 1);
            let to = rng.below(len - n + 1);
            if rng.below(4) != 0 {
                buf.copy_within(from..from + n, to);
            } else {
                let b = if rng.one_in(2) { rng.below(256) as u8 } else { buf[rng.below(len)] };
                buf[to..to + n].fill(b);
            }
        }
        13 | 14 => {
            // Overwrite with a dictionary token.
            let Some(tok) = pick_token(rng, src) else {
                return false;
            };
            if tok.len() > len {
                return false;
            }
            let p = rng.below(len - tok.len() + 1);
            buf[p..p + tok.len()].copy_from_slice(tok);
        }
        15 | 16 => {
            // Insert a dictionary token.
            let Some(tok) = pick_token(rng, src) else {
                return false;
            };
            if tok.len() > room {
                return false;
            }
            let p = rng.below(len + 1);
            insert_bytes(buf, p, tok);
        }
        17 => {
            // Splice in a chunk of another corpus entry.
            let Some(other) = src.other.filter(|o| !o.is_empty()) else {
                return false;
            };
            let n = block_len(rng, other.len().min(room.max(1)));
            if n == 0 || n > room {
                return false;
            }
            let from = rng.below(other.len() - n + 1);
            let at = rng.below(len + 1);
            insert_bytes(buf, at, &other[from..from + n]);
        }
        18 => {
            // Overwrite with a chunk of another corpus entry.
            let Some(other) = src.other.filter(|o| !o.is_empty()) else {
                return false;
            };
            if len == 0 {
                return false;
            }
            let n = block_len(rng, other.len().min(len));
            let from = rng.below(other.len() - n + 1);
            let to = rng.below(len - n + 1);
            buf[to..to + n].copy_from_slice(&other[from..from + n]);
        }
        19 => {
            // Swap two bytes / two blocks.
            if len < 2 {
                return false;
            }
            let a = rng.below(len);
            let b = rng.below(len);
            buf.swap(a, b);
        }
        _ => {
            // Replace a byte with an ASCII digit or a structural character:
            // text formats hinge on them.
            if len == 0 {
                return false;
            }
            const CHARS: &[u8] = b"0123456789-+.eE\"'[]{}()<>,:;=/\\ \n\t\0";
            let p = rng.below(len);
            buf[p] = CHARS[rng.below(CHARS.len())];
        }
    }
    true
}

fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> Option<&'a T> {
    if items.is_empty() { None } else { Some(&items[rng.below(items.len())]) }
}

fn pick_token<'a>(rng: &mut Rng, src: &Sources<'a>) -> Option<&'a [u8]> {
    let (u, a) = (src.user_dict.len(), src.auto_dict.len());
    if u + a == 0 {
        return None;
    }
    // User tokens are few and deliberate: give them half the draws.
    let use_user = u > 0 && (a == 0 || rng.one_in(2));
    Some(if use_user { src.user_dict.get(rng.below(u)) } else { src.auto_dict.get(rng.below(a)) })
}

/// Repeats a chunk (a token, part of the input, or an opening bracket) tens
/// to thousands of times: deep nesting, huge repeat counts and long digit
/// runs are where parsers overflow their stacks or their arithmetic.
pub fn repeat_chunk(buf: &mut Vec<u8>, rng: &mut Rng, src: &Sources) -> bool {
    let len = buf.len();
    let room = src.max_len.saturating_sub(len);
    if room < 2 {
        return false;
    }
    let chunk: Vec<u8> = match rng.below(4) {
        0 => match pick_token(rng, src) {
            Some(t) => t.to_vec(),
            None => return false,
        },
        1 if len > 0 => {
            let n = rng.between(1, len.min(8));
            let from = rng.below(len - n + 1);
            buf[from..from + n].to_vec()
        }
        2 => vec![b"0123456789"[rng.below(10)]],
        _ => vec![b"[{(<\"'"[rng.below(6)]],
    };
    let max_times = (room.min(64 << 10) / chunk.len()).min(4096);
    if max_times < 2 {
        return false;
    }
    let times = match rng.below(3) {
        0 => rng.between(2, max_times.min(64)),
        1 => rng.between(2, max_times.min(512)),
        _ => rng.between(2, max_times),
    };
    let at = rng.below(len + 1);
    let total = chunk.len() * times;
    insert_fill(buf, at, total, 0);
    // Fill by doubling: copy the chunk once, then copy what is there.
    buf[at..at + chunk.len()].copy_from_slice(&chunk);
    let mut filled = chunk.len();
    while filled < total {
        let n = filled.min(total - filled);
        buf.copy_within(at..at + n, at + filled);
        filled += n;
    }
    true
}

/// Applies a stack of `2^(0..=max_stack_pow)` random edits to `buf` (single
/// edits too: most finds on structured text are one edit away);
/// returns how many applied.
pub fn havoc(buf: &mut Vec<u8>, rng: &mut Rng, src: &Sources, max_stack_pow: u32) -> u32 {
    let stack = 1usize << rng.between(0, max_stack_pow as usize);
    let mut applied = 0;
    let mut tries = 0;
    while applied < stack && tries < stack * 4 {
        tries += 1;
        if mutate_once(buf, rng, src) {
            applied += 1;
        }
    }
    if buf.is_empty() {
        buf.push(rng.below(256) as u8);
    }
    if buf.len() > src.max_len {
        buf.truncate(src.max_len);
    }
    applied as u32
}

/// Crossover of two inputs: `a` up to a split point between their first and
/// last differing bytes, then `b`. `None` when they are too similar.
pub fn splice(a: &[u8], b: &[u8], rng: &mut Rng, out: &mut Vec<u8>) -> bool {
    let n = a.len().min(b.len());
    let first = (0..n).find(|&i| a[i] != b[i]);
    let last = (0..n).rev().find(|&i| a[i] != b[i]);
    let (Some(f), Some(l)) = (first, last) else {
        return false;
    };
    if l < 2 || f == l {
        return false;
    }
    let split = rng.between(f, l);
    out.clear();
    out.extend_from_slice(&a[..split]);
    out.extend_from_slice(&b[split..]);
    true
}

/// Steps of the deterministic stage, in AFL's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum DetStep {
    Flip1,
    Flip2,
    Flip4,
    Flip8,
    Flip16,
    Flip32,
    Arith8,
    Arith16,
    Arith32,
    Int8,
    Int16,
    Int32,
    DictOver,
    DictInsert,
    Done,
}

/// The deterministic stage of one input: every single-position mutation
/// (bit flips, arithmetic, interesting values, dictionary tokens), one
/// mutant at a time.
#[derive(Debug)]
pub struct Deterministic {
    step: DetStep,
    pos: usize,
    variant: usize,
    tokens: Vec<Vec<u8>>,
}

impl Deterministic {
    /// The stage for an input, with the dictionary tokens to try.
    pub fn new(tokens: Vec<Vec<u8>>) -> Deterministic {
        Deterministic { step: DetStep::Flip1, pos: 0, variant: 0, tokens }
    }

    /// Name of the current step for queue entry names (AFL's op names).
    pub fn op_name(&self) -> &'static str {
        match self.step {
            DetStep::Flip1 => "flip1",
            DetStep::Flip2 => "flip2",
            DetStep::Flip4 => "flip4",
            DetStep::Flip8 => "flip8",
            DetStep::Flip16 => "flip16",
            DetStep::Flip32 => "flip32",
            DetStep::Arith8 => "arith8",
            DetStep::Arith16 => "arith16",
            DetStep::Arith32 => "arith32",
            DetStep::Int8 => "int8",
            DetStep::Int16 => "int16",
            DetStep::Int32 => "int32",
            DetStep::DictOver => "ext_UO",
            DetStep::DictInsert => "ext_UI",
            DetStep::Done => "det",
        }
    }

    fn advance(&mut self) {
        self.pos = 0;
        self.variant = 0;
        self.step = match self.step {
            DetStep::Flip1 => DetStep::Flip2,
            DetStep::Flip2 => DetStep::Flip4,
            DetStep::Flip4 => DetStep::Flip8,
            DetStep::Flip8 => DetStep::Flip16,
            DetStep::Flip16 => DetStep::Flip32,
            DetStep::Flip32 => DetStep::Arith8,
            DetStep::Arith8 => DetStep::Arith16,
            DetStep::Arith16 => DetStep::Arith32,
            DetStep::Arith32 => DetStep::Int8,
            DetStep::Int8 => DetStep::Int16,
            DetStep::Int16 => DetStep::Int32,
            DetStep::Int32 => DetStep::DictOver,
            DetStep::DictOver => DetStep::DictInsert,
            DetStep::DictInsert | DetStep::Done => DetStep::Done,
        };
    }

    /// Writes the next mutant of `input` into `out`; false when done.
    pub fn next(&mut self, input: &[u8], out: &mut Vec<u8>, max_len: usize) -> bool {
        let len = input.len();
        loop {
            out.clear();
            out.extend_from_slice(input);
            let (pos, v) = (self.pos, self.variant);
            let produced = match self.step {
                DetStep::Done => return false,
                DetStep::Flip1 | DetStep::Flip2 | DetStep::Flip4 => {
                    let width = match self.step {
                        DetStep::Flip1 => 1,
                        DetStep::Flip2 => 2,
                        _ => 4,
                    };
                    if pos + width > len * 8 {
                        None
                    } else {
                        for b in pos..pos + width {
                            out[b / 8] ^= 0x80 >> (b % 8);
                        }
                        self.pos += 1;
                        Some(())
                    }
                }
                DetStep::Flip8 | DetStep::Flip16 | DetStep::Flip32 => {
                    let width = match self.step {
                        DetStep::Flip8 => 1,
                        DetStep::Flip16 => 2,
                        _ => 4,
                    };
                    if pos + width > len {
                        None
                    } else {
                        out[pos..pos + width].iter_mut().for_each(|b| *b ^= 0xff);
                        self.pos += 1;
                        Some(())
                    }
                }
                DetStep::Arith8 | DetStep::Arith16 | DetStep::Arith32 => {
                    let width = match self.step {
                        DetStep::Arith8 => 1,
                        DetStep::Arith16 => 2,
                        _ => 4,
                    };
                    // Variants: delta 1..=35 added or subtracted, in both
                    // byte orders for wider values.
                    let orders = if width == 1 { 1 } else { 2 };
                    let per_pos = ARITH_MAX as usize * 2 * orders;
                    if pos + width > len {
                        None
                    } else {
                        let delta = (v % ARITH_MAX as usize + 1) as u32;
                        let sub = (v / ARITH_MAX as usize) % 2 == 1;
                        let be = v / (ARITH_MAX as usize * 2) == 1;
                        arith(out, pos, width, delta, sub, be);
                        self.next_variant(per_pos);
                        Some(())
                    }
                }
                DetStep::Int8 => {
                    if pos >= len {
                        None
                    } else {
                        out[pos] = INTERESTING_8[v] as u8;
                        self.next_variant(INTERESTING_8.len());
                        Some(())
                    }
                }
                DetStep::Int16 => {
                    if pos + 2 > len {
                        None
                    } else {
                        let val = INTERESTING_16[v / 2] as u16;
                        put(out, pos, if v % 2 == 0 { val.to_le_bytes() } else { val.to_be_bytes() });
                        self.next_variant(INTERESTING_16.len() * 2);
                        Some(())
                    }
                }
                DetStep::Int32 => {
                    if pos + 4 > len {
                        None
                    } else {
                        let val = INTERESTING_32[v / 2] as u32;
                        put(out, pos, if v % 2 == 0 { val.to_le_bytes() } else { val.to_be_bytes() });
                        self.next_variant(INTERESTING_32.len() * 2);
                        Some(())
                    }
                }
                DetStep::DictOver => {
                    if self.tokens.is_empty() || pos >= len {
                        None
                    } else {
                        let tok = &self.tokens[v];
                        let fits = pos + tok.len() <= len;
                        if fits {
                            out[pos..pos + tok.len()].copy_from_slice(tok);
                        }
                        self.next_variant(self.tokens.len());
                        if fits { Some(()) } else { continue }
                    }
                }
                DetStep::DictInsert => {
                    if self.tokens.is_empty() || pos > len {
                        None
                    } else {
                        let tok = &self.tokens[v];
                        let fits = len + tok.len() <= max_len;
                        if fits {
                            out.splice(pos..pos, tok.iter().copied());
                        }
                        self.next_variant(self.tokens.len());
                        if fits { Some(()) } else { continue }
                    }
                }
            };
            match produced {
                Some(()) => return true,
                None => self.advance(),
            }
        }
    }

    fn next_variant(&mut self, per_pos: usize) {
        self.variant += 1;
        if self.variant == per_pos {
            self.variant = 0;
            self.pos += 1;
        }
    }
}

fn arith(buf: &mut [u8], pos: usize, width: usize, delta: u32, sub: bool, be: bool) {
    let apply = |v: u32| {
        if sub { v.wrapping_sub(delta) } else { v.wrapping_add(delta) }
    };
    match width {
        1 => buf[pos] = apply(buf[pos] as u32) as u8,
        2 => {
            let v = if be { u16::from_be_bytes(get(buf, pos)) } else { u16::from_le_bytes(get(buf, pos)) } as u32;
            let n = apply(v) as u16;
            put(buf, pos, if be { n.to_be_bytes() } else { n.to_le_bytes() });
        }
        _ => {
            let v = if be { u32::from_be_bytes(get(buf, pos)) } else { u32::from_le_bytes(get(buf, pos)) };
            let n = apply(v);
            put(buf, pos, if be { n.to_be_bytes() } else { n.to_le_bytes() });
        }
    }
}

/// Characters that break code which assumes one byte per character, or that case mapping
/// changes the length of: no-break and wide spaces, a byte order mark, `İ` (lowercases to two
/// characters), the Kelvin sign (lowercases to ASCII `k`), `ß` (uppercases to `SS`), a
/// replacement character, an emoji.
const SPECIAL_CHARS: [char; 9] =
    ['\u{a0}', '\u{2000}', '\u{3000}', '\u{feff}', '\u{130}', '\u{212a}', '\u{df}', '\u{fffd}', '\u{1f600}'];

/// Puts one multi-byte UTF-8 character into `buf`, at a character boundary when `buf` is
/// text: inserted, or in place of one ASCII byte.
///
/// Rust targets mostly take `&str` (`from_utf8` or an `Arbitrary` string), so random bytes
/// rarely reach them as anything but ASCII, and the classic Rust panic of slicing text at a
/// byte index that falls inside a character ("byte index N is not a char boundary") needs a
/// multi-byte character in the right place. Returns false if it did not fit.
pub fn utf8_char(buf: &mut Vec<u8>, rng: &mut Rng, max_len: usize) -> bool {
    let c = match rng.below(4) {
        0 => SPECIAL_CHARS[rng.below(SPECIAL_CHARS.len())],
        // Two, three and four bytes (surrogates are not characters: from_u32 says None).
        1 => char::from_u32(rng.between(0x80, 0x7ff) as u32).unwrap_or('\u{e9}'),
        2 => char::from_u32(rng.between(0x800, 0xffff) as u32).unwrap_or('\u{20ac}'),
        _ => char::from_u32(rng.between(0x10000, 0x10ffff) as u32).unwrap_or('\u{1f600}'),
    };
    let mut enc = [0u8; 4];
    let bytes = c.encode_utf8(&mut enc).as_bytes();
    let len = buf.len();
    // A position at a character boundary (continuation bytes are 0b10xx_xxxx).
    let mut at = rng.below(len + 1);
    while at > 0 && at < len && buf[at] & 0xc0 == 0x80 {
        at -= 1;
    }
    if at < len && buf[at] < 0x80 && rng.one_in(2) {
        if len - 1 + bytes.len() > max_len {
            return false;
        }
        buf.splice(at..at + 1, bytes.iter().copied());
    } else {
        if len + bytes.len() > max_len {
            return false;
        }
        insert_bytes(buf, at, bytes);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources<'a>(u: &'a Dictionary, a: &'a Dictionary, max_len: usize) -> Sources<'a> {
        Sources { user_dict: u, auto_dict: a, other: Some(b"other entry bytes"), max_len }
    }

    #[test]
    fn havoc_changes_inputs_and_respects_the_length_limit() {
        let (u, mut a) = (Dictionary::with_capacity(8), Dictionary::with_capacity(8));
        a.add(b"TOKEN");
        let src = sources(&u, &a, 64);
        let mut rng = Rng::new(1);
        let mut changed = 0;
        for _ in 0..2000 {
            let mut buf = b"hello world".to_vec();
            havoc(&mut buf, &mut rng, &src, 5);
            assert!(!buf.is_empty() && buf.len() <= 64);
            changed += usize::from(buf != b"hello world");
        }
        assert!(changed > 1900, "havoc should nearly always change the input ({changed})");
    }

    #[test]
    fn every_operator_can_apply() {
        let (u, mut a) = (Dictionary::with_capacity(8), Dictionary::with_capacity(8));
        a.add(b"XY");
        let src = sources(&u, &a, 1 << 16);
        let mut rng = Rng::new(3);
        let mut seen_long = false;
        for _ in 0..20_000 {
            let mut buf = b"0123456789abcdef".to_vec();
            if mutate_once(&mut buf, &mut rng, &src) && buf.len() > 1000 {
                seen_long = true;
            }
        }
        assert!(seen_long, "repeat mutations build long inputs");
    }

    #[test]
    fn insert_helpers_match_vec_splice() {
        let mut rng = Rng::new(11);
        for _ in 0..2000 {
            let len = rng.between(1, 40);
            let base: Vec<u8> = (0..len as u8).collect();
            let at = rng.below(len + 1);
            let from = rng.below(len);
            let n = rng.between(1, len - from);
            let mut a = base.clone();
            insert_self(&mut a, at, from, n);
            let mut b = base.clone();
            b.splice(at..at, base[from..from + n].iter().copied());
            assert_eq!(a, b, "insert_self(at={at}, from={from}, n={n})");
            let mut c = base.clone();
            remove_bytes(&mut c, from, n);
            let mut d = base.clone();
            d.drain(from..from + n);
            assert_eq!(c, d);
        }
    }

    #[test]
    fn splice_crosses_over_between_differences() {
        let mut rng = Rng::new(9);
        let mut out = Vec::new();
        assert!(splice(b"aaaaXaaaaYaaaa", b"aaaaZaaaaWaaaa", &mut rng, &mut out));
        assert_eq!(out.len(), 14);
        assert!(!splice(b"same", b"same", &mut rng, &mut out));
    }

    #[test]
    fn deterministic_stage_enumerates_every_single_position_mutation() {
        let mut det = Deterministic::new(vec![b"KEY".to_vec()]);
        let mut out = Vec::new();
        let mut n = 0;
        let mut found_token = false;
        while det.next(b"abcd", &mut out, 100) {
            n += 1;
            found_token |= out.starts_with(b"KEY");
        }
        // 32+31+29 bit flips, 4+3+1 byte flips, 4*70+3*140+1*140 arithmetic,
        // 4*9+3*20+1*16 interesting, 2 token overwrites, 5 token inserts.
        assert_eq!(n, 92 + 8 + 840 + 112 + 2 + 5);
        assert!(found_token);
    }

    #[test]
    fn utf8_char_keeps_text_valid_and_adds_a_multibyte_character() {
        let mut rng = Rng::new(3);
        let mut lens = std::collections::HashSet::new();
        for _ in 0..500 {
            let mut buf = "2021-10-10 P0\u{2000}x".as_bytes().to_vec();
            let before = buf.len();
            assert!(utf8_char(&mut buf, &mut rng, 64));
            let text = std::str::from_utf8(&buf).expect("still UTF-8");
            assert!(text.chars().filter(|c| c.len_utf8() > 1).count() >= 2);
            lens.insert(buf.len() as isize - before as isize);
        }
        // Inserted (2..=4 more bytes) and in place of one byte (1..=3 more).
        assert!(lens.contains(&1) && lens.contains(&4));
        let mut buf = b"ab".to_vec();
        assert!(!utf8_char(&mut buf, &mut rng, 2));
    }
}
