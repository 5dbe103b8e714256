//! `cargo rfuzz add NAME`: add a fuzz target.

use super::{ProjectArgs, UsageError};
use anyhow::{Context, Result};
use clap::Args;

/// Options of `cargo rfuzz add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// Name of the new target.
    pub name: String,
    #[command(flatten)]
    pub project: ProjectArgs,
}

/// Runs `cargo rfuzz add`.
pub fn run(args: AddArgs) -> Result<i32> {
    super::init::validate_target_name(&args.name)?;
    let project = args.project.load()?;
    if project.targets.iter().any(|t| t.name == args.name) {
        anyhow::bail!(UsageError(format!("fuzz target `{}` already exists", args.name)));
    }
    let src = project.fuzz_dir.join("fuzz_targets").join(format!("{}.rs", args.name));
    if src.exists() {
        anyhow::bail!(UsageError(format!("{} already exists", src.display())));
    }
    let parent = project.package_name.strip_suffix("-fuzz").map(str::to_string);
    std::fs::write(&src, super::init::target_source(parent.as_deref()))
        .with_context(|| format!("failed to write {}", src.display()))?;
    let text = std::fs::read_to_string(&project.manifest_path)
        .with_context(|| format!("failed to read {}", project.manifest_path.display()))?;
    let manifest =
        with_bin(&text, &args.name).with_context(|| format!("failed to parse {}", project.manifest_path.display()))?;
    std::fs::write(&project.manifest_path, manifest)
        .with_context(|| format!("failed to write {}", project.manifest_path.display()))?;
    eprintln!("       Added fuzz target `{}` in {}", args.name, src.display());
    Ok(crate::exit::SUCCESS)
}

/// `manifest` with a `[[bin]]` entry for target `name` added after the
/// others, everything else (comments, layout) kept as it was.
fn with_bin(manifest: &str, name: &str) -> Result<String> {
    let mut doc: toml_edit::DocumentMut = manifest.parse()?;
    // The same entry `init` writes (see `init::bin_section`).
    let mut new = toml_edit::Table::new();
    new.insert("name", toml_edit::value(name));
    new.insert("path", toml_edit::value(format!("fuzz_targets/{name}.rs")));
    for key in ["test", "doc", "bench"] {
        new.insert(key, toml_edit::value(false));
    }
    match doc.get_mut("bin") {
        Some(item) => item
            .as_array_of_tables_mut()
            .ok_or_else(|| anyhow::anyhow!("`bin` is not an array of tables ([[bin]])"))?
            .push(new),
        None => {
            let mut bins = toml_edit::ArrayOfTables::new();
            bins.push(new);
            doc.insert("bin", toml_edit::Item::ArrayOfTables(bins));
        }
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_added_to_the_bin_list_and_nothing_else_changes() {
        let m = "# my fuzz project\n[package]\nname = \"x-fuzz\" # keep\n\n[dependencies]\nrfuzz = \"0.1\"\n\n[[bin]]\nname = \"a\"\npath = \"fuzz_targets/a.rs\"";
        let out = with_bin(m, "b").unwrap();
        assert!(out.starts_with("# my fuzz project\n[package]\nname = \"x-fuzz\" # keep\n"), "{out}");
        let doc: toml_edit::DocumentMut = out.parse().unwrap();
        let bins = doc["bin"].as_array_of_tables().unwrap();
        let names: Vec<&str> = bins.iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(bins.get(1).unwrap()["path"].as_str(), Some("fuzz_targets/b.rs"));
        let first = with_bin("[package]\nname = \"y\"\n", "t").unwrap();
        assert_eq!(first.parse::<toml_edit::DocumentMut>().unwrap()["bin"].as_array_of_tables().unwrap().len(), 1);
    }
}
