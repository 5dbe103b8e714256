#![no_main]
rfuzz::fuzz_target!(|data: &[u8]| realbugs::pcapng_block(data));
