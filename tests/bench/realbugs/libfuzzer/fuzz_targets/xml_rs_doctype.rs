#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| realbugs::xml_rs_doctype(data));
