#![no_main]
rfuzz::fuzz_target!(|data: &[u8]| realbugs::quick_xml_charref(data));
