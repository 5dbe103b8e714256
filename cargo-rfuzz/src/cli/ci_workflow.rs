//! `cargo rfuzz ci-workflow`: prints a GitHub Actions workflow that
//! smoke-fuzzes every target, keeps a cmin-reduced corpus in the Actions
//! cache, writes a triage table into the job summary, uploads minimized
//! reproducers and crashes as artifacts and fails on a crash.

use anyhow::Result;
use clap::Args;

const TEMPLATE: &str = include_str!("../../templates/github-fuzz.yml");

/// Options of `cargo rfuzz ci-workflow`.
#[derive(Debug, Args)]
pub struct CiWorkflowArgs {
    /// Seconds to fuzz each target on pushes and pull requests.
    #[arg(long, default_value_t = 120)]
    pub seconds: u64,
    /// Fuzz project directory, relative to the repository root.
    #[arg(long = "fuzz-path", default_value = "fuzz")]
    pub fuzz_path: String,
    /// Install cargo-rfuzz from this git repository instead of crates.io
    /// (e.g. a fork).
    #[arg(long, value_name = "URL")]
    pub repo: Option<String>,
}

/// The workflow text for these options.
pub fn render(args: &CiWorkflowArgs) -> String {
    TEMPLATE
        .replace("@@SECONDS@@", &args.seconds.to_string())
        .replace("@@FUZZ_DIR@@", &args.fuzz_path)
        .replace("@@INSTALL_FROM@@", &args.repo.as_ref().map(|r| format!("--git {r} ")).unwrap_or_default())
}

/// Runs `cargo rfuzz ci-workflow`.
pub fn run(args: CiWorkflowArgs) -> Result<i32> {
    print!("{}", render(&args));
    Ok(crate::exit::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_filled() {
        let text = render(&CiWorkflowArgs { seconds: 60, fuzz_path: "fuzz".into(), repo: None });
        assert!(!text.contains("@@"));
        assert!(text.contains("cargo install --locked cargo-rfuzz"), "from crates.io by default");
        let fork = render(&CiWorkflowArgs { seconds: 60, fuzz_path: "fuzz".into(), repo: Some("https://x/y".into()) });
        assert!(fork.contains("cargo install --locked --git https://x/y cargo-rfuzz"));
        assert!(text.contains("'60'") && text.contains("cargo rfuzz run \"$target\""));
        assert!(text.contains("upload-artifact") && text.contains("cache/restore"));
        assert!(text.contains("cargo rfuzz cmin \"$target\"") && text.contains(">> \"$GITHUB_STEP_SUMMARY\""));
        assert!(text.contains("--markdown --minimize") && text.contains("fuzz/reproducers/"));
    }
}
