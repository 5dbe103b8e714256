fn main() {
    afl::fuzz!(|data: &[u8]| realbugs::cpp_demangle_recursion(data));
}
