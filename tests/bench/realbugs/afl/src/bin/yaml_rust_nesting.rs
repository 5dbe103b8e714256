fn main() {
    afl::fuzz!(|data: &[u8]| realbugs::yaml_rust_nesting(data));
}
