//! Exit codes of `cargo rfuzz`, documented in the README, and the error types
//! that choose them: the one place that maps what went wrong to a code.

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
/// A file operation failed for a reason outside the user's command: disk
/// full, quota, read-only file system, I/O error (the message names the file).
pub const IO_FAILED: i32 = 6;
/// Stopped by SIGINT/SIGTERM before a bounded run finished, no crash saved.
pub const INTERRUPTED: i32 = 130;

/// A mistake in how the command was invoked (exit code [`USAGE`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The target cannot be fuzzed (exit code [`TARGET_UNUSABLE`]): it crashes or
/// hangs at start-up, speaks no forkserver protocol, or never runs its harness.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TargetError(pub String);

/// Stopped by Ctrl-C / SIGTERM before the work was done (exit code
/// [`INTERRUPTED`]).
#[derive(Debug, thiserror::Error)]
#[error("interrupted: {0}")]
pub struct Interrupted(pub String);

/// Exit code for an error that ended the command.
pub fn code_for(err: &anyhow::Error) -> i32 {
    use std::io::ErrorKind;
    for cause in err.chain() {
        if cause.downcast_ref::<UsageError>().is_some() {
            return USAGE;
        }
        if cause.downcast_ref::<Interrupted>().is_some() {
            return INTERRUPTED;
        }
        if let Some(e) = cause.downcast_ref::<rfuzz_instrument::Error>() {
            return match e {
                rfuzz_instrument::Error::BuildFailed { .. } | rfuzz_instrument::Error::PatchNotUsed { .. } => {
                    BUILD_FAILED
                }
                _ => USAGE,
            };
        }
        if cause.downcast_ref::<TargetError>().is_some() {
            return TARGET_UNUSABLE;
        }
        if let Some(e) = cause.downcast_ref::<std::io::Error>() {
            // A missing or protected path is the environment the user gave
            // us; anything else (a full disk) is not a usage error.
            return match e.kind() {
                ErrorKind::NotFound
                | ErrorKind::PermissionDenied
                | ErrorKind::AlreadyExists
                | ErrorKind::NotADirectory
                | ErrorKind::IsADirectory
                | ErrorKind::InvalidInput
                | ErrorKind::InvalidFilename => USAGE,
                _ => IO_FAILED,
            };
        }
    }
    USAGE
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn codes_follow_the_cause() {
        let full = Err::<(), _>(std::io::Error::from(std::io::ErrorKind::StorageFull))
            .context("failed to write queue/id:000001")
            .unwrap_err();
        assert_eq!(code_for(&full), IO_FAILED);
        let missing = Err::<(), _>(std::io::Error::from(std::io::ErrorKind::NotFound))
            .context("failed to read seeds")
            .unwrap_err();
        assert_eq!(code_for(&missing), USAGE);
        assert_eq!(code_for(&anyhow::Error::new(UsageError("bad".into()))), USAGE);
        assert_eq!(code_for(&anyhow::Error::new(TargetError("dies".into())).context("x")), TARGET_UNUSABLE);
        assert_eq!(code_for(&anyhow::anyhow!("something else")), USAGE);
    }
}
