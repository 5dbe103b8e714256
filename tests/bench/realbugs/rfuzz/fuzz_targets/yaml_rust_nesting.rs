#![no_main]
rfuzz::fuzz_target!(|data: &[u8]| realbugs::yaml_rust_nesting(data));
