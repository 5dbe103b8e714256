//! `cargo rfuzz list`: the fuzz targets, one per line.

use super::ProjectArgs;
use anyhow::Result;
use clap::Args;

/// Options of `cargo rfuzz list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
}

/// Runs `cargo rfuzz list`.
pub fn run(args: ListArgs) -> Result<i32> {
    let project = args.project.load()?;
    for t in &project.targets {
        println!("{}", t.name);
    }
    Ok(crate::exit::SUCCESS)
}
