fn main() {
    afl::fuzz!(|data: &[u8]| bench_targets::quadratic(data));
}
