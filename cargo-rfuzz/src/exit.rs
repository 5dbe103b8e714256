//! Exit codes of `cargo rfuzz`, documented in the README.

/// Clean stop; in a bounded run, no crash was saved.
pub const SUCCESS: i32 = 0;
/// A fuzzing run saved at least one crash (what CI fails on).
pub const CRASHES_FOUND: i32 = 1;
/// Usage or environment error: bad flags, not in a cargo project, unknown
/// target, unusable output directory, instance id already in use.
pub const USAGE: i32 = 2;
/// The fuzz target failed to build (cargo's errors are shown).
pub const BUILD_FAILED: i32 = 3;
/// The target cannot be fuzzed: it crashes or hangs at start-up or on every
/// seed, never runs its harness, or lacks instrumentation or a forkserver.
pub const TARGET_UNUSABLE: i32 = 4;
/// `sync-remote`: at least one host could not be synced (each is named, with
/// the fix, on stderr); the others were.
pub const REMOTE_SYNC_FAILED: i32 = 5;
/// Stopped by SIGINT/SIGTERM before a bounded run finished, no crash saved.
pub const INTERRUPTED: i32 = 130;
