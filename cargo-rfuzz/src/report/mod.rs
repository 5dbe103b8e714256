//! Reporting: the statistics snapshot an instance publishes, and pure
//! renderers of it (status screen, plain lines, the multi-instance dashboard,
//! JSON). The engine only produces [`InstanceStats`]; everything the user sees
//! is a function of it, so screens are snapshot-tested.

pub mod coverage;
pub mod dashboard;
pub mod lcov;
pub mod plot;
pub mod sanitizer;
pub mod screen;
pub mod status;

pub use crate::sync::stats::InstanceStats;

/// The first `max` characters of `s` (never splits a character).
pub fn cut(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// `1h 02m`, `3m 05s`, `12s`.
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h:02}h")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// "how long ago" for a unix time (`never` for 0).
pub fn ago(now: u64, t: u64) -> String {
    if t == 0 { "never".to_string() } else { format!("{} ago", duration(now.saturating_sub(t))) }
}

/// `1234`, `12.3k`, `4.56M`, `7.89G`.
pub fn count(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1}k", n as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.2}M", n as f64 / 1e6),
        _ => format!("{:.2}G", n as f64 / 1e9),
    }
}

/// Files and the bugs they stand for: `657` (no signatures known, as from
/// AFL++), `3 (1 bug)`.
pub fn files_and_bugs(files: u64, bugs: u64) -> String {
    match bugs {
        0 => files.to_string(),
        1 => format!("{files} (1 bug)"),
        n => format!("{files} ({n} bugs)"),
    }
}

/// A time in µs for people: `850 µs`, `12.5 ms`, `1.20 s`.
pub fn micros(us: u64) -> String {
    match us {
        0..=999 => format!("{us} µs"),
        1_000..=999_999 => format!("{:.1} ms", us as f64 / 1e3),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_formats() {
        assert_eq!(duration(5), "5s");
        assert_eq!(duration(125), "2m 05s");
        assert_eq!(duration(3720), "1h 02m");
        assert_eq!(duration(90000), "1d 01h");
        assert_eq!(count(12345), "12.3k");
        assert_eq!(count(4_560_000), "4.56M");
        assert_eq!(ago(100, 0), "never");
        assert_eq!(ago(100, 40), "1m 00s ago");
        assert_eq!(files_and_bugs(657, 0), "657");
        assert_eq!(files_and_bugs(3, 1), "3 (1 bug)");
        assert_eq!(files_and_bugs(5, 2), "5 (2 bugs)");
        assert_eq!(micros(850), "850 µs");
        assert_eq!(micros(12_500), "12.5 ms");
    }
}
