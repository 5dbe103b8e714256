#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| realbugs::yaml_rust_nesting(data));
