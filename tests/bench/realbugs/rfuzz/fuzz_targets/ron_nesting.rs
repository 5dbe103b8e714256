#![no_main]
rfuzz::fuzz_target!(|data: &[u8]| realbugs::ron_nesting(data));
