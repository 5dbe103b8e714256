#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| realbugs::sqlparser_nesting(data));
