//! Process-wide machinery shared by the CLI, the engine, the supervisor and
//! the remote sync: stop signals, child processes and shell quoting. Nothing
//! here knows about fuzzing.

pub mod process;
pub mod signal;

/// Quotes one word for a POSIX shell command line (only when it needs it),
/// for the "Reproduce with:" commands and recorded command lines.
pub fn shell_quote(s: &str) -> String {
    shell_words::quote(s).into_owned()
}

/// Quotes an argument that may not be UTF-8 (lossily: for display).
pub fn shell_quote_os(s: &std::ffi::OsStr) -> String {
    shell_quote(&s.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_round_trips_through_a_shell_splitter() {
        for s in ["plain", "/a/b-c_d.e", "with space", "it's", "$HOME", "a\"b", "", "ünïcode"] {
            let q = shell_quote(s);
            assert_eq!(shell_words::split(&q).unwrap(), vec![s.to_string()], "{s:?} quoted as {q}");
        }
        assert_eq!(shell_quote("/usr/bin/x"), "/usr/bin/x", "no quotes where none are needed");
    }
}
