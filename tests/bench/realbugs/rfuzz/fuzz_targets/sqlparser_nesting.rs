#![no_main]
rfuzz::fuzz_target!(|data: &[u8]| realbugs::sqlparser_nesting(data));
