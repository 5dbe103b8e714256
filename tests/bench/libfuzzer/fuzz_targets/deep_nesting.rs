#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| bench_targets::deep_nesting(data));
