#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| realbugs::pulldown_cmark_tasklist(data));
