//! Embeds the runtime crate's source (and the libfuzzer-sys compatibility
//! crate) in the binary, so `cargo rfuzz build` works on a machine where the
//! `rfuzz` crate was never published or fetched: the sources are written to a
//! cache directory and patched into the build.

use std::path::{Path, PathBuf};

fn collect(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("read source dir").flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, root, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p.strip_prefix(root).unwrap().to_path_buf());
        }
    }
}

/// `pub const NAME: &[(&str, &str)]` with the manifest and sources of `dir`.
fn embed(name: &str, dir: &Path, code: &mut String) {
    let mut files = vec![PathBuf::from("Cargo.toml")];
    collect(&dir.join("src"), dir, &mut files);
    code.push_str(&format!(
        "/// Files of a crate: (relative path, contents).\npub const {name}: &[(&str, &str)] = &[\n"
    ));
    for f in &files {
        let abs = dir.join(f).canonicalize().unwrap();
        println!("cargo:rerun-if-changed={}", abs.display());
        code.push_str(&format!("    ({:?}, include_str!({:?})),\n", f.to_string_lossy(), abs.to_string_lossy()));
    }
    code.push_str("];\n");
    println!("cargo:rerun-if-changed={}", dir.join("src").display());
}

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    // In the repository the runtime sits beside this crate; a packaged
    // cargo-rfuzz carries a copy in runtime-src/.
    let runtime = [manifest_dir.join("../runtime"), manifest_dir.join("runtime-src")]
        .into_iter()
        .find(|p| p.join("Cargo.toml").is_file())
        .expect("runtime source not found (../runtime or runtime-src/)");
    let mut code = String::new();
    embed("RUNTIME_FILES", &runtime, &mut code);
    embed("LIBFUZZER_SYS_FILES", &runtime.join("libfuzzer-sys-shim"), &mut code);
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("runtime_files.rs");
    std::fs::write(out, code).unwrap();
}
