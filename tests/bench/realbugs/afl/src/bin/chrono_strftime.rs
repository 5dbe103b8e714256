fn main() {
    afl::fuzz!(|data: &[u8]| realbugs::chrono_strftime(data));
}
