fn main() {
    afl::fuzz!(|data: &[u8]| realbugs::protobuf_bytes_len(data));
}
