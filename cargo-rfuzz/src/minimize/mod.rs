//! Shrinking inputs and corpora without changing what they do: `tmin` (one
//! input, same crash signature, still hanging, or same coverage) and `cmin`
//! (a corpus, same coverage). Both run inputs through the fuzzer's own
//! executors, a persistent forkserver, not one process per input.

pub mod cmin;
pub mod tmin;

use crate::engine::coverage;
use crate::engine::executor::afl::{AflConfig, AflExecutor};
use crate::engine::executor::direct::{DirectConfig, DirectExecutor};
use crate::engine::executor::{BinaryKind, Executor, ExitKind, TargetCommand, inspect_binary};
use crate::exit::TargetError;
use anyhow::{Result, bail};
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

/// Largest input these tools handle.
pub const MAX_INPUT: usize = 1 << 20;

/// Runs single inputs and reads their classified coverage.
pub struct CoverageRunner {
    exec: Box<dyn Executor>,
    _scratch: tempfile::TempDir,
}

impl CoverageRunner {
    /// Starts `binary` (ours: the direct protocol; AFL++'s: its forkserver).
    pub fn start(binary: &Path, args: &[OsString], timeout: Duration, mem_limit_mb: Option<u64>) -> Result<Self> {
        let scratch = tempfile::Builder::new().prefix("rfuzz-min-").tempdir()?;
        let target = TargetCommand {
            binary: binary.to_path_buf(),
            args: args.to_vec(),
            env: Vec::new(),
            mem_limit_mb,
            max_procs: None,
            show_output: false,
        };
        let init_timeout = Duration::from_secs(20).max(timeout * 10);
        let exec: Box<dyn Executor> = match inspect_binary(binary)? {
            BinaryKind::Rfuzz => Box::new(DirectExecutor::start(
                &target,
                &DirectConfig { max_input: MAX_INPUT, timeout, init_timeout, ..DirectConfig::default() },
            )?),
            BinaryKind::Afl { persistent } => Box::new(AflExecutor::start(
                &target,
                &AflConfig {
                    persistent,
                    input_file: scratch.path().join(".cur_input"),
                    init_timeout,
                    timeout,
                    max_input: MAX_INPUT,
                },
            )?),
            BinaryKind::Plain => bail!(TargetError(format!(
                "{} is not instrumented: build fuzz targets with `cargo rfuzz build`",
                binary.display()
            ))),
        };
        Ok(CoverageRunner { exec, _scratch: scratch })
    }

    /// Runs `data` once; returns how it ended and its classified map.
    pub fn run(&mut self, data: &[u8]) -> Result<(ExitKind, &[u8])> {
        let kind = self.exec.run_one(data)?;
        let (map, _) = self.exec.map_and_virgin();
        coverage::classify(map);
        Ok((kind, map))
    }

    /// Runs `data` once; how it ended and the hash of its classified map.
    pub fn run_hash(&mut self, data: &[u8]) -> Result<(ExitKind, u64)> {
        let (kind, map) = self.run(data)?;
        Ok((kind, coverage::hash(map)))
    }
}

/// The `(edge, hit-count bucket)` tuples of a classified map, as afl-cmin
/// counts coverage: `edge * 8 + bucket bit`.
pub fn tuples(map: &[u8]) -> Vec<u32> {
    coverage::edges(map).into_iter().map(|e| e * 8 + map[e as usize].trailing_zeros()).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn tuples_are_edge_and_bucket() {
        let mut map = vec![0u8; 64];
        map[3] = 1;
        map[9] = 0x80;
        assert_eq!(super::tuples(&map), vec![3 * 8, 9 * 8 + 7]);
    }
}
