#![no_main]
rfuzz::fuzz_target!(|data: &[u8]| realbugs::toml_nesting(data));
