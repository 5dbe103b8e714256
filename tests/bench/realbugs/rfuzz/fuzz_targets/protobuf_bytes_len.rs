#![no_main]
rfuzz::fuzz_target!(|data: &[u8]| realbugs::protobuf_bytes_len(data));
