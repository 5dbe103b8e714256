fn main() {
    afl::fuzz!(|data: &[u8]| realbugs::rustc_demangle(data));
}
