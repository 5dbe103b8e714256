fn main() {
    afl::fuzz!(|data: &[u8]| realbugs::toml_nesting(data));
}
