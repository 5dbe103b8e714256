//! Dictionaries: tokens the mutators insert or overwrite with.
//!
//! User dictionaries (`-x FILE`) use AFL's format: one token per line,
//! `name="value"` or `"value"`, with `\\`, `\"` and `\xNN` escapes, `#`
//! comments; a directory gives one token per file. The automatic dictionary
//! collects compare operands the target recorded and tokens an AFL++ target
//! sent in its handshake.

use anyhow::{Context, Result, bail};
use std::collections::HashSet;
use std::path::Path;

/// Longest token kept.
pub const MAX_TOKEN: usize = 128;

/// A bounded, de-duplicated list of tokens.
#[derive(Debug, Clone, Default)]
pub struct Dictionary {
    tokens: Vec<Vec<u8>>,
    seen: HashSet<Vec<u8>>,
    cap: usize,
    next_evict: usize,
}

impl Dictionary {
    /// An empty dictionary holding at most `cap` tokens (the oldest are
    /// replaced once full).
    pub fn with_capacity(cap: usize) -> Dictionary {
        Dictionary { tokens: Vec::new(), seen: HashSet::new(), cap, next_evict: 0 }
    }

    /// Adds a token; false if it was known, empty or too long.
    pub fn add(&mut self, token: &[u8]) -> bool {
        if token.is_empty() || token.len() > MAX_TOKEN || self.seen.contains(token) {
            return false;
        }
        if self.tokens.len() < self.cap {
            self.tokens.push(token.to_vec());
        } else if self.cap > 0 {
            let slot = self.next_evict % self.cap;
            self.next_evict += 1;
            let old = std::mem::replace(&mut self.tokens[slot], token.to_vec());
            self.seen.remove(&old);
        } else {
            return false;
        }
        self.seen.insert(token.to_vec());
        true
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether it has no tokens.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Token `i`.
    pub fn get(&self, i: usize) -> &[u8] {
        &self.tokens[i]
    }

    /// All tokens.
    pub fn tokens(&self) -> &[Vec<u8>] {
        &self.tokens
    }
}

fn unescape(value: &str, line_no: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let b = value.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                match b.get(i + 1) {
                    Some(b'\\') => out.push(b'\\'),
                    Some(b'"') => out.push(b'"'),
                    Some(b'n') => out.push(b'\n'),
                    Some(b'r') => out.push(b'\r'),
                    Some(b't') => out.push(b'\t'),
                    Some(b'x') => {
                        let hex = value.get(i + 2..i + 4).unwrap_or("");
                        let v = u8::from_str_radix(hex, 16)
                            .map_err(|_| anyhow::anyhow!("line {line_no}: bad \\x escape"))?;
                        out.push(v);
                        i += 2;
                    }
                    _ => bail!("line {line_no}: unknown escape"),
                }
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Parses a dictionary in AFL's format.
pub fn parse(text: &str) -> Result<Vec<Vec<u8>>> {
    let mut tokens = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let start = line.find('"').with_context(|| format!("line {}: expected a \"quoted\" token", n + 1))?;
        if !line.ends_with('"') || line.len() - start < 2 {
            bail!("line {}: the token must end with a quote", n + 1);
        }
        let name = line[..start].trim().trim_end_matches('=').trim();
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@' || c == '.' || c == '-') {
            bail!("line {}: bad keyword name `{name}`", n + 1);
        }
        let token = unescape(&line[start + 1..line.len() - 1], n + 1)?;
        if !token.is_empty() && token.len() <= MAX_TOKEN {
            tokens.push(token);
        }
    }
    Ok(tokens)
}

/// Loads `-x PATH`: a dictionary file, or a directory with one token per file.
pub fn load(path: &Path) -> Result<Vec<Vec<u8>>> {
    if path.is_dir() {
        let mut out = Vec::new();
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .with_context(|| format!("failed to read dictionary directory {}", path.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        entries.sort();
        for p in entries {
            let data = std::fs::read(&p).with_context(|| format!("failed to read {}", p.display()))?;
            if !data.is_empty() && data.len() <= MAX_TOKEN {
                out.push(data);
            }
        }
        return Ok(out);
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("failed to read dictionary {}", path.display()))?;
    parse(&text).with_context(|| format!("invalid dictionary {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_afl_format() {
        let t = parse("# comment\nkw1=\"GET\"\n\"\\x00\\xffA\"\nkw_2@1 = \"a\\\"b\\\\\"\n\n").unwrap();
        assert_eq!(t, vec![b"GET".to_vec(), vec![0, 0xff, b'A'], b"a\"b\\".to_vec()]);
        assert!(parse("no quotes").is_err());
        assert!(parse("\"bad \\q escape\"").is_err());
    }

    #[test]
    fn dictionary_dedups_and_stays_bounded() {
        let mut d = Dictionary::with_capacity(2);
        assert!(d.add(b"a"));
        assert!(!d.add(b"a"));
        assert!(d.add(b"b"));
        assert!(d.add(b"c"));
        assert_eq!(d.len(), 2);
        assert!(!d.add(b""));
        assert!(d.tokens().contains(&b"c".to_vec()));
    }
}
