fn main() {
    afl::fuzz!(|data: &[u8]| realbugs::xml_rs_doctype(data));
}
