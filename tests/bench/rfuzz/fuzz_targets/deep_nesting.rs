#![no_main]
rfuzz::fuzz_target!(|data: &[u8]| bench_targets::deep_nesting(data));
