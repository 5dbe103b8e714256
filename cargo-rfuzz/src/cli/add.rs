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
    let mut manifest = std::fs::read_to_string(&project.manifest_path)
        .with_context(|| format!("failed to read {}", project.manifest_path.display()))?;
    if !manifest.ends_with('\n') {
        manifest.push('\n');
    }
    manifest.push_str(&super::init::bin_section(&args.name));
    std::fs::write(&project.manifest_path, manifest)
        .with_context(|| format!("failed to write {}", project.manifest_path.display()))?;
    eprintln!("       Added fuzz target `{}` in {}", args.name, src.display());
    Ok(crate::exit::SUCCESS)
}
