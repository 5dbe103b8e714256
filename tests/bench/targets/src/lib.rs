//! Harness bodies shared by every fuzzer in the benchmarks, so each tool
//! fuzzes exactly the same code.

/// Does nothing with the input: measures the fuzzer's own overhead.
pub fn trivial(data: &[u8]) {
    std::hint::black_box(data);
}

/// Parses a version and a version requirement (semver 1).
pub fn semver(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = std::hint::black_box(semver::Version::parse(s));
        let _ = std::hint::black_box(semver::VersionReq::parse(s));
    }
}

/// Parses a TOML document (toml 0.8).
pub fn toml(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = std::hint::black_box(s.parse::<toml::Table>());
    }
}

/// Planted bug: a 4-byte magic value compared as one integer.
pub fn magic(data: &[u8]) {
    planted::magic(data);
}

/// Planted bug: three nested byte compares.
pub fn nested(data: &[u8]) {
    planted::nested(data);
}

/// Planted bug: a length field that must match the payload.
pub fn length_field(data: &[u8]) {
    planted::length_field(data);
}

/// Planted bug: an arithmetic overflow.
pub fn overflow(data: &[u8]) {
    std::hint::black_box(planted::overflow(data));
}
