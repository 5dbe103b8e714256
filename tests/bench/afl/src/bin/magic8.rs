fn main() {
    afl::fuzz!(|data: &[u8]| bench_targets::magic8(data));
}
