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

/// `pub const NAME: &[(&str, &str)]` with the manifest (read from
/// `manifest`, embedded as `Cargo.toml`), the build script if any, and the
/// sources of `dir`.
fn embed(name: &str, dir: &Path, manifest: &str, code: &mut String) {
    let mut files = vec![PathBuf::from(manifest)];
    if dir.join("build.rs").is_file() {
        files.push(PathBuf::from("build.rs"));
    }
    collect(&dir.join("src"), dir, &mut files);
    code.push_str(&format!(
        "/// Files of a crate: (relative path, contents).\npub const {name}: &[(&str, &str)] = &[\n"
    ));
    for f in &files {
        let abs = dir.join(f).canonicalize().unwrap();
        println!("cargo:rerun-if-changed={}", abs.display());
        let as_name = if f.as_os_str() == manifest { "Cargo.toml".into() } else { f.to_string_lossy() };
        code.push_str(&format!("    ({as_name:?}, include_str!({:?})),\n", abs.to_string_lossy()));
    }
    code.push_str("];\n");
    println!("cargo:rerun-if-changed={}", dir.join("src").display());
}

fn main() {
    // The `rfuzz` dependency's build script names its source directory: the
    // repository's runtime/, or the published crate's unpacked source.
    let runtime =
        PathBuf::from(std::env::var("DEP_RFUZZ_SRC").expect("the rfuzz dependency's build script sets DEP_RFUZZ_SRC"));
    println!("cargo:rerun-if-env-changed=DEP_RFUZZ_SRC");
    let mut code = String::new();
    embed("RUNTIME_FILES", &runtime, "Cargo.toml", &mut code);
    embed("LIBFUZZER_SYS_FILES", &runtime.join("libfuzzer-sys-shim"), "Cargo.toml.in", &mut code);
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("runtime_files.rs");
    std::fs::write(out, code).unwrap();
}
