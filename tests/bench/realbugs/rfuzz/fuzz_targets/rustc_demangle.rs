#![no_main]
rfuzz::fuzz_target!(|data: &[u8]| realbugs::rustc_demangle(data));
