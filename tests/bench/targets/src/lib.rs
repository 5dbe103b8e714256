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

/// Parses JSON into a `serde_json::Value` (serde_json 1).
pub fn json(data: &[u8]) {
    let _ = std::hint::black_box(serde_json::from_slice::<serde_json::Value>(data));
}

/// Parses a regular expression into its AST and HIR (regex-syntax 0.8).
pub fn regex(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        if s.len() < 512 {
            let _ = std::hint::black_box(regex_syntax::Parser::new().parse(s));
        }
    }
}

/// Parses an HTTP request and an HTTP response head (httparse 1).
pub fn http(data: &[u8]) {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let _ = std::hint::black_box(httparse::Request::new(&mut headers).parse(data));
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let _ = std::hint::black_box(httparse::Response::new(&mut headers).parse(data));
}

/// Reads every XML event of a document (quick-xml 0.42).
pub fn xml(data: &[u8]) {
    let mut reader = quick_xml::Reader::from_reader(data);
    let mut buf = Vec::new();
    for _ in 0..10_000 {
        match reader.read_event_into(&mut buf) {
            Ok(quick_xml::events::Event::Eof) | Err(_) => break,
            Ok(e) => {
                std::hint::black_box(e);
            }
        }
        buf.clear();
    }
}

/// Reads every record of a CSV document (csv 1).
pub fn csv(data: &[u8]) {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(data);
    for record in reader.byte_records().take(10_000) {
        if std::hint::black_box(record).is_err() {
            break;
        }
    }
}

/// Decodes a PNG image, with memory limits (png 0.18).
pub fn png(data: &[u8]) {
    let mut decoder = png::Decoder::new_with_limits(std::io::Cursor::new(data), png::Limits { bytes: 1 << 20 });
    decoder.set_ignore_text_chunk(false);
    if let Ok(mut reader) = decoder.read_info() {
        let size = reader.output_buffer_size().unwrap_or(0);
        if size <= 1 << 20 {
            let mut buf = vec![0; size];
            let _ = std::hint::black_box(reader.next_frame(&mut buf));
        }
    }
}

/// Planted bug: an 8-byte magic value compared as one integer.
pub fn magic8(data: &[u8]) {
    planted::magic8(data);
}

/// Planted bug: a 16-byte magic string compared as a slice.
pub fn magic16(data: &[u8]) {
    planted::magic16(data);
}

/// Planted bug: one arm of a `match` on a 4-byte tag.
pub fn switch4(data: &[u8]) {
    std::hint::black_box(planted::switch4(data));
}

/// Cost quadratic in the input length (issue 10's class (a)).
pub fn quadratic(data: &[u8]) {
    std::hint::black_box(planted::quadratic(data));
}

/// Panics on about 10% of inputs at three sites (class (b)).
pub fn few_panics(data: &[u8]) {
    planted::few_panics(data);
}

/// An infinite loop a few mutations away (class (c)).
pub fn loop_near(data: &[u8]) {
    std::hint::black_box(planted::loop_near(data));
}

/// Recursion that overflows the stack only past 20,000 levels (class (d)).
pub fn deep_nesting(data: &[u8]) {
    std::hint::black_box(planted::deep_nesting(data));
}

/// Three fields that overflow only when all are at the edge of their
/// checked range (class (e)).
pub fn boundary(data: &[u8]) {
    std::hint::black_box(planted::boundary_combination(data));
}
