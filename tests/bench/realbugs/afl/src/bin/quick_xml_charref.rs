fn main() {
    afl::fuzz!(|data: &[u8]| realbugs::quick_xml_charref(data));
}
