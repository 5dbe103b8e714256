fn main() {
    afl::fuzz!(|data: &[u8]| realbugs::chrono_rfc2822(data));
}
