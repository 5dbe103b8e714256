#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| bench_targets::magic16(data));
