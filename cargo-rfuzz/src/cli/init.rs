//! `cargo rfuzz init`: create `fuzz/` with one example target.

use super::UsageError;
use anyhow::{Context, Result};
use clap::Args;
use std::path::Path;

/// Options of `cargo rfuzz init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Name of the first fuzz target.
    #[arg(short, long, default_value = "fuzz_target_1", value_name = "NAME")]
    pub target: String,
}

/// Manifest of a new fuzz package. `rfuzz = "0.1"` reads as a crates.io
/// dependency; `cargo rfuzz` patches in the runtime it ships with, so the
/// file has no absolute paths and builds on any machine.
pub fn fuzz_manifest(parent: Option<&str>, first_target: &str) -> String {
    let mut m = String::new();
    let name = parent.map(|p| format!("{p}-fuzz")).unwrap_or_else(|| "fuzz".to_string());
    m.push_str(&format!(
        "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\npublish = false\nedition = \"2021\"\n\n\
         [package.metadata]\nrfuzz = true\n\n[dependencies]\nrfuzz = \"0.1\"\n"
    ));
    if let Some(p) = parent {
        m.push_str(&format!("\n[dependencies.{p}]\npath = \"..\"\n"));
    }
    m.push_str(
        "\n# Not a member of the parent crate's workspace: fuzz targets build with\n\
         # their own flags and lock file.\n[workspace]\nmembers = [\".\"]\n\n\
         # Line numbers in the backtraces of reproduced crashes.\n[profile.release]\ndebug = 1\n",
    );
    m.push_str(&bin_section(first_target));
    m
}

/// The `[[bin]]` entry of a fuzz target.
pub fn bin_section(name: &str) -> String {
    format!(
        "\n[[bin]]\nname = \"{name}\"\npath = \"fuzz_targets/{name}.rs\"\ntest = false\ndoc = false\nbench = false\n"
    )
}

/// Source of a new fuzz target, the cargo-fuzz template with `rfuzz`.
pub fn target_source(parent: Option<&str>) -> String {
    let hint = match parent {
        Some(p) => format!("    // Call the code under test, e.g. `let _ = {}::parse(data);`\n", p.replace('-', "_")),
        None => "    // Call the code under test with `data`.\n".to_string(),
    };
    format!("#![no_main]\n\nuse rfuzz::fuzz_target;\n\nfuzz_target!(|data: &[u8]| {{\n{hint}    let _ = data;\n}});\n")
}

/// Checks a target name: it becomes a file name and a binary name.
pub fn validate_target_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !name.starts_with(|c: char| c.is_ascii_digit() || c == '-');
    if !ok {
        anyhow::bail!(UsageError(format!(
            "invalid target name `{name}`: use letters, digits, `_` and `-`, starting with a letter or `_`"
        )));
    }
    Ok(())
}

fn package_name(crate_root: &Path) -> Result<Option<String>> {
    let manifest = crate_root.join("Cargo.toml");
    let md = rfuzz_instrument::project::load_root_package(&manifest)?;
    Ok(md)
}

/// Runs `cargo rfuzz init`.
pub fn run(args: InitArgs) -> Result<i32> {
    validate_target_name(&args.target)?;
    let cwd = std::env::current_dir()?;
    let root = rfuzz_instrument::project::find_crate_root(&cwd)?;
    let fuzz = root.join("fuzz");
    if fuzz.exists() {
        anyhow::bail!(UsageError(format!(
            "{} already exists: add targets with `cargo rfuzz add NAME`",
            fuzz.display()
        )));
    }
    let parent = package_name(&root)?;
    let targets = fuzz.join("fuzz_targets");
    std::fs::create_dir_all(&targets).with_context(|| format!("failed to create {}", targets.display()))?;
    let write = |path: &Path, text: &str| -> Result<()> {
        std::fs::write(path, text).with_context(|| format!("failed to write {}", path.display()))
    };
    write(&fuzz.join("Cargo.toml"), &fuzz_manifest(parent.as_deref(), &args.target))?;
    write(&fuzz.join(".gitignore"), "target\nsync\nartifacts\nplot\n")?;
    write(&targets.join(format!("{}.rs", args.target)), &target_source(parent.as_deref()))?;
    eprintln!("     Created fuzz project in {} with target `{}`", fuzz.display(), args.target);
    eprintln!("        Next: edit fuzz/fuzz_targets/{}.rs, then `cargo rfuzz run {}`", args.target, args.target);
    Ok(crate::exit::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_has_no_absolute_paths_and_its_own_workspace() {
        let m = fuzz_manifest(Some("my-crate"), "parse");
        assert!(m.contains("rfuzz = \"0.1\""));
        assert!(m.contains("[dependencies.my-crate]\npath = \"..\""));
        assert!(m.contains("[workspace]"));
        assert!(m.contains("name = \"parse\""));
        assert!(!m.contains("/home") && !m.contains("/root"));
    }

    #[test]
    fn target_names_are_checked() {
        assert!(validate_target_name("parse_json").is_ok());
        assert!(validate_target_name("a-b").is_ok());
        assert!(validate_target_name("").is_err());
        assert!(validate_target_name("../x").is_err());
        assert!(validate_target_name("1x").is_err());
    }

    #[test]
    fn template_uses_the_parent_crate_name() {
        assert!(target_source(Some("my-crate")).contains("my_crate::parse"));
        assert!(target_source(None).starts_with("#![no_main]"));
    }
}
