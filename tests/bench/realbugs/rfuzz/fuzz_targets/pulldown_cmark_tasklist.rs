#![no_main]
rfuzz::fuzz_target!(|data: &[u8]| realbugs::pulldown_cmark_tasklist(data));
