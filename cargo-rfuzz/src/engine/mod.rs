//! One fuzzing instance: executor, coverage feedback, corpus, mutations,
//! stages and statistics. `cargo rfuzz fuzz` runs one; `cargo rfuzz run -j N`
//! runs N of them over a shared sync directory.

pub mod coverage;
pub mod executor;
pub mod shm;

/// The target cannot be fuzzed (exit code 4): it crashes or hangs at
/// start-up, speaks no forkserver protocol, or never runs its harness.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TargetError(pub String);
