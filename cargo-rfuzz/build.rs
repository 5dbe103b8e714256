//! Embeds the runtime crate's source in the binary, so `cargo rfuzz build`
//! works on a machine where the `rfuzz` crate was never published or fetched:
//! the source is written to a cache directory and patched into the build.

use std::path::{Path, PathBuf};

fn collect(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("read runtime dir").flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, root, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p.strip_prefix(root).unwrap().to_path_buf());
        }
    }
}

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    // In the repository the runtime sits beside this crate; a packaged
    // cargo-rfuzz carries a copy in runtime-src/.
    let runtime = [manifest_dir.join("../runtime"), manifest_dir.join("runtime-src")]
        .into_iter()
        .find(|p| p.join("Cargo.toml").is_file())
        .expect("runtime source not found (../runtime or runtime-src/)");
    let mut files = vec![PathBuf::from("Cargo.toml")];
    collect(&runtime.join("src"), &runtime, &mut files);
    let mut code = String::from(
        "/// Files of the runtime crate: (relative path, contents).\npub const RUNTIME_FILES: &[(&str, &str)] = &[\n",
    );
    for f in &files {
        let abs = runtime.join(f).canonicalize().unwrap();
        println!("cargo:rerun-if-changed={}", abs.display());
        code.push_str(&format!("    ({:?}, include_str!({:?})),\n", f.to_string_lossy(), abs.to_string_lossy()));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("runtime_files.rs");
    std::fs::write(out, code).unwrap();
    println!("cargo:rerun-if-changed={}", runtime.join("src").display());
}
