#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| realbugs::rustc_demangle(data));
