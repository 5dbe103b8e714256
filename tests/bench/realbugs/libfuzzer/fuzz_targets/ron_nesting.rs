#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| realbugs::ron_nesting(data));
