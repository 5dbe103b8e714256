#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| realbugs::humantime_nanos_carry(data));
