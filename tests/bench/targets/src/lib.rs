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
