fn main() {
    afl::fuzz!(|data: &[u8]| realbugs::sqlparser_nesting(data));
}
