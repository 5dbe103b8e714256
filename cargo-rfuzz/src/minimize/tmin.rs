//! `tmin`: shrink one input while it keeps doing the same thing: a crash
//! with the same signature (a different bug reached on the way is not
//! accepted), a hang that still hangs, or any other input with the same
//! coverage (edges and hit-count buckets).
//!
//! The method is afl-tmin's: delete blocks, from half the input down to
//! single bytes, until no deletion is accepted; then replace bytes with `0`
//! where that keeps the behaviour, so what is left stands out. Candidates run
//! on the fast executor; a crashing one is confirmed by a standalone replay,
//! which gives its signature.

use super::CoverageRunner;
use crate::engine::executor::ExitKind;
use crate::triage::replay::Replayer;
use crate::triage::signature::Signature;
use anyhow::{Result, bail};
use std::collections::HashSet;
use std::path::Path;

/// What a candidate must keep doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Goal {
    /// Crash with this signature.
    Crash(Signature),
    /// Run past the timeout.
    Hang,
    /// Run cleanly with this coverage (hash of the classified map).
    Coverage(u64),
}

impl Goal {
    /// For messages: "crash (panicked at ...)", "hang", "same coverage".
    pub fn describe(&self) -> String {
        match self {
            Goal::Crash(s) => format!("crash: {}", s.describe()),
            Goal::Hang => "hang".into(),
            Goal::Coverage(_) => "same coverage".into(),
        }
    }
}

/// The result of a minimization.
#[derive(Debug, Clone)]
pub struct Minimized {
    /// The smallest input found.
    pub data: Vec<u8>,
    /// What it keeps doing.
    pub goal: Goal,
    /// Executions on the fast executor.
    pub execs: u64,
    /// Standalone replays (signature checks).
    pub replays: u64,
}

struct Shrinker<'a> {
    runner: CoverageRunner,
    replayer: &'a Replayer,
    scratch: &'a Path,
    goal: Goal,
    kind: ExitKind,
    tried: HashSet<Vec<u8>>,
    execs: u64,
    replays: u64,
}

impl Shrinker<'_> {
    fn keeps(&mut self, cand: &[u8]) -> Result<bool> {
        if !self.tried.insert(cand.to_vec()) {
            return Ok(false);
        }
        self.execs += 1;
        let (kind, hash) = self.runner.run_hash(cand)?;
        Ok(match &self.goal {
            Goal::Hang => kind == ExitKind::Timeout,
            Goal::Coverage(h) => kind == ExitKind::Ok && hash == *h,
            Goal::Crash(sig) => {
                if kind != self.kind {
                    return Ok(false);
                }
                self.replays += 1;
                self.replayer.replay_data(cand, self.scratch)?.signature.is_some_and(|s| s.key() == sig.key())
            }
        })
    }
}

/// Shrinks `input`. `runner` runs candidates, `replayer` confirms crash
/// signatures (standalone replays of files written to `scratch`).
pub fn minimize(runner: CoverageRunner, replayer: &Replayer, scratch: &Path, input: &[u8]) -> Result<Minimized> {
    let mut runner = runner;
    let (kind, hash) = runner.run_hash(input)?;
    let goal = match kind {
        ExitKind::Ok => Goal::Coverage(hash),
        ExitKind::Timeout => Goal::Hang,
        _ => match replayer.replay_data(input, scratch)?.signature {
            Some(sig) => Goal::Crash(sig),
            None => bail!(
                "the input crashes under the fuzzer's executor but not when replayed alone (flaky, or it depends on \
                 earlier inputs): nothing to minimize against"
            ),
        },
    };
    let mut s = Shrinker { runner, replayer, scratch, goal, kind, tried: HashSet::new(), execs: 1, replays: 0 };
    let mut cur = input.to_vec();
    loop {
        let before = cur.len();
        let mut block = cur.len().div_ceil(2).max(1);
        loop {
            let mut i = 0;
            while i < cur.len() && !cur.is_empty() {
                let end = (i + block).min(cur.len());
                let cand: Vec<u8> = cur[..i].iter().chain(&cur[end..]).copied().collect();
                if s.keeps(&cand)? {
                    cur = cand;
                } else {
                    i += block;
                }
            }
            if block == 1 {
                break;
            }
            block = block.div_ceil(2);
        }
        if cur.len() == before {
            break;
        }
    }
    // Bytes that do not matter become `0` (a hang costs a timeout per try:
    // leave its bytes alone).
    if s.goal != Goal::Hang {
        let zeroed = vec![b'0'; cur.len()];
        if cur != zeroed && s.keeps(&zeroed)? {
            cur = zeroed;
        } else {
            for i in 0..cur.len() {
                if cur[i] != b'0' {
                    let mut cand = cur.clone();
                    cand[i] = b'0';
                    if s.keeps(&cand)? {
                        cur = cand;
                    }
                }
            }
        }
    }
    Ok(Minimized { data: cur, goal: s.goal, execs: s.execs, replays: s.replays })
}
