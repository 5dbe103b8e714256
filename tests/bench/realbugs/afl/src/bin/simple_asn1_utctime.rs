fn main() {
    afl::fuzz!(|data: &[u8]| realbugs::simple_asn1_utctime(data));
}
