#![no_main]
rfuzz::fuzz_target!(|data: &[u8]| realbugs::humantime_nanos_carry(data));
