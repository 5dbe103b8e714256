fn main() {
    afl::fuzz!(|data: &[u8]| realbugs::pulldown_cmark_tasklist(data));
}
