//! Tells the build script of `cargo-rfuzz` (which depends on this crate)
//! where this crate's source is, as `DEP_RFUZZ_SRC`: cargo-rfuzz embeds the
//! runtime's source in its binary, whether it is built in the repository or
//! from published crates.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:src={dir}");
    println!("cargo:rerun-if-changed=build.rs");
}
