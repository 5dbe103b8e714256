//! Real historical bugs, each in the exact old version of a crate from crates.io, behind one
//! engine-neutral harness per bug: `fn(&[u8])`. The rfuzz, AFL++ and libFuzzer wrappers next
//! to this crate call these functions and nothing else, so all three fuzz the same code.
//!
//! `bugs.tsv` beside this crate lists every bug: its crate and version, the kind of crash, the
//! signature that identifies it and the report it comes from. The harnesses follow the
//! reports' own reproducers where they have one (same entry point, same options).

use std::hint::black_box;

/// Every harness by name (the names of the fuzz targets and of `bugs.tsv`'s rows).
pub const BUGS: &[(&str, fn(&[u8]))] = &[
    ("chrono_rfc2822", chrono_rfc2822),
    ("chrono_strftime", chrono_strftime),
    ("rustc_demangle", rustc_demangle),
    ("cpp_demangle_recursion", cpp_demangle_recursion),
    ("yaml_rust_nesting", yaml_rust_nesting),
    ("simple_asn1_utctime", simple_asn1_utctime),
    ("xml_rs_doctype", xml_rs_doctype),
    ("quick_xml_charref", quick_xml_charref),
    ("pulldown_cmark_blockquote", pulldown_cmark_blockquote),
    ("pulldown_cmark_tasklist", pulldown_cmark_tasklist),
    ("protobuf_bytes_len", protobuf_bytes_len),
    ("sqlparser_nesting", sqlparser_nesting),
    ("pcapng_block", pcapng_block),
    ("humantime_nanos_carry", humantime_nanos_carry),
    ("toml_nesting", toml_nesting),
    ("ron_nesting", ron_nesting),
];

/// The harness called `name`.
pub fn by_name(name: &str) -> Option<fn(&[u8])> {
    BUGS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// chrono 0.4.19: an RFC 2822 date at the last representable year whose offset pushes the UTC
/// time past it (`DateTime::parse_from_rfc2822`).
pub fn chrono_rfc2822(data: &[u8]) {
    if let Some(s) = text(data) {
        let _ = black_box(chrono::DateTime::parse_from_rfc2822(s));
    }
}

/// chrono 0.4.19: `DateTime::parse_from_str` slices its input inside a multi-byte character
/// (the report's harness: the input is both the format and the text).
pub fn chrono_strftime(data: &[u8]) {
    if let Some(s) = text(data) {
        let _ = black_box(chrono::DateTime::parse_from_str(s, s));
    }
}

/// rustc-demangle 0.1.5: a length prefix that overflows while demangling a legacy symbol.
pub fn rustc_demangle(data: &[u8]) {
    if let Some(s) = text(data) {
        black_box(rustc_demangle::demangle(s).to_string());
    }
}

/// cpp_demangle 0.2.7: substitutions that refer back into themselves recurse without a limit
/// while the demangled name is printed.
pub fn cpp_demangle_recursion(data: &[u8]) {
    if let Ok(sym) = cpp_demangle::Symbol::new(data) {
        // `write!` rather than `to_string()`: a formatting error is an error, not a panic
        // (the report's cppfilt writes to a stream the same way).
        use std::fmt::Write;
        let mut out = String::new();
        let _ = write!(out, "{sym}");
        black_box(out);
    }
}

/// yaml-rust 0.4.0: deeply nested flow collections recurse without a limit (RUSTSEC-2018-0006).
pub fn yaml_rust_nesting(data: &[u8]) {
    if let Some(s) = text(data) {
        let _ = black_box(yaml_rust::YamlLoader::load_from_str(s));
    }
}

/// simple_asn1 0.6.0: a UTCTime body sliced inside a multi-byte character (RUSTSEC-2021-0125).
pub fn simple_asn1_utctime(data: &[u8]) {
    let _ = black_box(simple_asn1::from_der(data));
}

/// xml-rs 0.8.4: a u8 counter of `<` inside a DOCTYPE overflows.
pub fn xml_rs_doctype(data: &[u8]) {
    for event in xml::reader::EventReader::new(data) {
        if black_box(event).is_err() {
            break;
        }
    }
}

/// quick-xml 0.10.0: a numeric character reference overflows a u32 while unescaping text.
pub fn quick_xml_charref(data: &[u8]) {
    let mut reader = quick_xml::reader::Reader::from_reader(data);
    let mut buf = Vec::new();
    loop {
        match reader.read_event(&mut buf) {
            Ok(quick_xml::events::Event::Text(t)) => {
                let _ = black_box(t.unescaped());
            }
            Ok(quick_xml::events::Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
        buf.clear();
    }
}

/// pulldown-cmark 0.8.0: HTML scanning in nested block quotes slices past the line.
pub fn pulldown_cmark_blockquote(data: &[u8]) {
    if let Some(s) = text(data) {
        let mut out = String::new();
        pulldown_cmark_08::html::push_html(&mut out, pulldown_cmark_08::Parser::new(s));
        black_box(out);
    }
}

/// pulldown-cmark 0.11.0: task lists and heading attributes; a tab after a task marker makes
/// the first pass slice backwards.
pub fn pulldown_cmark_tasklist(data: &[u8]) {
    if let Some(s) = text(data) {
        use pulldown_cmark_011::{Options, Parser};
        let opts = Options::ENABLE_TASKLISTS | Options::ENABLE_HEADING_ATTRIBUTES;
        for event in Parser::new_ext(s, opts) {
            black_box(event);
        }
    }
}

/// protobuf 2.5.0: a bytes field's length is reserved before it is read (RUSTSEC-2019-0003).
pub fn protobuf_bytes_len(data: &[u8]) {
    let _ = black_box(protobuf::parse_from_bytes::<protobuf::well_known_types::BytesValue>(data));
}

/// sqlparser 0.28.0: nested expressions recurse without a limit.
pub fn sqlparser_nesting(data: &[u8]) {
    if let Some(s) = text(data) {
        let dialect = sqlparser::dialect::GenericDialect {};
        let _ = black_box(sqlparser::parser::Parser::parse_sql(&dialect, s));
    }
}

/// pcapng 1.0.0: a block length smaller than the header underflows.
pub fn pcapng_block(data: &[u8]) {
    let _ = black_box(pcapng::block::parse_block(data));
}

/// humantime 2.3.0: `parse_duration` skips the nanosecond carry at exactly 10^9 ns, so a
/// duration of u64::MAX seconds plus 10^9 ns overflows in `Duration::new`.
pub fn humantime_nanos_carry(data: &[u8]) {
    if let Some(s) = text(data) {
        let _ = black_box(humantime::parse_duration(s));
    }
}

/// toml 0.5.8: nested arrays recurse without a limit.
pub fn toml_nesting(data: &[u8]) {
    if let Some(s) = text(data) {
        let _ = black_box(s.parse::<toml::Value>());
    }
}

/// ron 0.6.4: nested values recurse without a limit.
pub fn ron_nesting(data: &[u8]) {
    if let Some(s) = text(data) {
        let _ = black_box(ron::from_str::<ron::Value>(s));
    }
}
