#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| realbugs::cpp_demangle_recursion(data));
