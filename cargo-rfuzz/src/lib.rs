//! # cargo-rfuzz
//!
//! The `cargo rfuzz` binary's library: command-line interface ([`cli`]), the
//! shipped runtime source ([`runtime_src`]), exit codes ([`exit`]), coverage
//! reports ([`coverage`]), one fuzzing
//! instance ([`engine`]), many ([`supervisor`]), the sync directory ([`sync`]),
//! what users see ([`report`]) and process-wide machinery ([`sys`]).

pub mod cli;
pub mod coverage;
pub mod engine;
pub mod exit;
pub mod minimize;
pub mod report;
pub mod runtime_src;
pub mod supervisor;
pub mod sync;
pub mod sys;
pub mod triage;
