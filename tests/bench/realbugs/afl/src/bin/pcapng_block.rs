fn main() {
    afl::fuzz!(|data: &[u8]| realbugs::pcapng_block(data));
}
