#![no_main]
rfuzz::fuzz_target!(|data: &[u8]| realbugs::chrono_strftime(data));
