#![no_main]
rfuzz::fuzz_target!(|data: &[u8]| realbugs::xml_rs_doctype(data));
