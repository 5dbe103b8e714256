//! # cargo-rfuzz
//!
//! The `cargo rfuzz` binary's library: command-line interface ([`cli`]), the
//! shipped runtime source ([`runtime_src`]) and exit codes ([`exit`]).

pub mod cli;
pub mod engine;
pub mod exit;
pub mod report;
pub mod runtime_src;
pub mod supervisor;
pub mod sync;
