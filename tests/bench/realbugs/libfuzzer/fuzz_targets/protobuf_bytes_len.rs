#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| realbugs::protobuf_bytes_len(data));
