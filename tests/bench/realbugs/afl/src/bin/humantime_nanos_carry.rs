fn main() {
    afl::fuzz!(|data: &[u8]| realbugs::humantime_nanos_carry(data));
}
