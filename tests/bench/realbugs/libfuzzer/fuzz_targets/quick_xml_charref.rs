#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| realbugs::quick_xml_charref(data));
