fn main() {
    afl::fuzz!(|data: &[u8]| bench_targets::length_field(data));
}
