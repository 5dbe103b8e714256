#![no_main]
rfuzz::fuzz_target!(|data: &[u8]| realbugs::cpp_demangle_recursion(data));
