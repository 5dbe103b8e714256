//! One fuzzing instance: executor, coverage feedback, corpus, mutations,
//! stages and statistics. `cargo rfuzz fuzz` runs one; `cargo rfuzz run -j N`
//! runs N of them over a shared sync directory.

pub mod bugs;
pub mod cmplog;
pub mod config;
pub mod corpus;
pub mod coverage;
pub mod dict;
pub mod executor;
pub mod fuzzer;
pub mod mutator;
pub mod rng;
pub mod shm;
pub mod ui;

pub use crate::exit::TargetError;
