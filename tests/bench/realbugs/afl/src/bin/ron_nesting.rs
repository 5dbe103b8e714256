fn main() {
    afl::fuzz!(|data: &[u8]| realbugs::ron_nesting(data));
}
