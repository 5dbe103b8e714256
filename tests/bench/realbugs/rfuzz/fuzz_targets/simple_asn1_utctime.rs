#![no_main]
rfuzz::fuzz_target!(|data: &[u8]| realbugs::simple_asn1_utctime(data));
