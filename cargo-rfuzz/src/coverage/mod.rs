//! `cargo rfuzz coverage`: which source lines the inputs of a fuzzing run
//! reach, with nothing but stable rustc.
//!
//! ```text
//! corpus dirs, every instance's queue ──► inputs::stage (capped reads, no symlinks,
//!   (crashes/, hangs/ with --crashes)       de-duplicated, copied to a private dir)
//! coverage build (rfuzz-coverage/: a flag per block, pc-table, -C opt-level=0, line tables)
//!   ──► replay::probe: the block table ──► symbols::symbolize (addr2line: file:line; functions)
//!   ──► replay::replay_all: one process per input, N threads, time limit, group kill;
//!       each run writes its block flags (also when it crashes) ──► Merger
//!   ──► Report (this module) ──► report::coverage (HTML, text), report::lcov, JSON
//! ```
//!
//! A line's count is the number of inputs that reached any of its blocks; a
//! line is partial when some of its blocks were reached and others not.

pub mod inputs;
pub mod replay;
pub mod symbols;

use serde::Serialize;
use std::path::{Path, PathBuf};
use symbols::BlockMap;

/// One line with code.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Line {
    /// Line number (from 1).
    pub line: u32,
    /// Inputs that reached any of its blocks.
    pub inputs: u32,
    /// For each of its blocks (in address order), the inputs that reached it.
    pub blocks: Vec<u32>,
}

impl Line {
    /// Blocks reached by at least one input.
    pub fn blocks_hit(&self) -> usize {
        self.blocks.iter().filter(|&&n| n > 0).count()
    }

    /// Some of its blocks were reached and some not.
    pub fn partial(&self) -> bool {
        self.inputs > 0 && self.blocks_hit() < self.blocks.len()
    }
}

/// One function (its monomorphized copies together).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Function {
    /// Demangled name.
    pub name: String,
    /// Its first line.
    pub line: u32,
    /// Inputs that entered it.
    pub inputs: u32,
}

/// Coverage of one source file.
#[derive(Debug, Clone, Serialize)]
pub struct File {
    /// Absolute path.
    pub path: PathBuf,
    /// Path shown: relative to the user's root when under it.
    pub name: String,
    /// Lines with code, in order.
    pub lines: Vec<Line>,
    /// Functions, by first line.
    pub functions: Vec<Function>,
}

impl File {
    /// Lines reached by at least one input.
    pub fn lines_hit(&self) -> usize {
        self.lines.iter().filter(|l| l.inputs > 0).count()
    }

    /// Functions entered by at least one input.
    pub fn functions_hit(&self) -> usize {
        self.functions.iter().filter(|f| f.inputs > 0).count()
    }
}

/// Totals over all shown files.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Totals {
    /// Lines with code.
    pub lines: usize,
    /// ... reached.
    pub lines_hit: usize,
    /// Functions.
    pub functions: usize,
    /// ... entered.
    pub functions_hit: usize,
    /// Blocks.
    pub blocks: usize,
    /// ... reached.
    pub blocks_hit: usize,
}

/// A whole report: what `--format json` writes, and what every renderer reads.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Fuzz target.
    pub target: String,
    /// The user's root (file names are relative to it).
    pub root: PathBuf,
    /// Inputs found.
    pub found: inputs::Found,
    /// How their runs went.
    pub runs: replay::Runs,
    /// Totals.
    pub totals: Totals,
    /// Files, by name.
    pub files: Vec<File>,
}

/// Percentage, 0 when there is nothing to cover.
pub fn percent(hit: usize, total: usize) -> f64 {
    if total == 0 { 0.0 } else { hit as f64 * 100.0 / total as f64 }
}

/// How a file is named in a report: relative to the user's root; a
/// dependency's from its package directory (`toml-0.8.23/src/de.rs`, for
/// the registry's `.../registry/src/<index>/toml-0.8.23/src/de.rs`); else
/// in full.
pub fn display_name(path: &Path, root: &Path) -> String {
    if let Ok(rel) = path.strip_prefix(root) {
        return rel.to_string_lossy().into_owned();
    }
    let parts: Vec<_> = path.components().collect();
    let registry = parts.windows(2).position(|w| w[0].as_os_str() == "registry" && w[1].as_os_str() == "src");
    match registry {
        Some(i) if parts.len() > i + 3 => parts[i + 3..].iter().collect::<PathBuf>().to_string_lossy().into_owned(),
        _ => path.to_string_lossy().into_owned(),
    }
}

/// Builds the report of `map` with the counts of `merged`.
pub fn build(target: &str, root: &Path, map: &BlockMap, merged: &replay::Merged, found: inputs::Found) -> Report {
    let mut per_file: Vec<(Vec<Line>, Vec<Function>)> = vec![(Vec::new(), Vec::new()); map.files.len()];
    // Blocks of each line, in table order.
    let mut line_blocks: Vec<Vec<u32>> = vec![Vec::new(); map.lines.len()];
    for (i, b) in map.blocks.iter().enumerate() {
        for &line in &b.lines {
            line_blocks[line as usize].push(merged.blocks[i]);
        }
    }
    for (id, &(file, line)) in map.lines.iter().enumerate() {
        let blocks = std::mem::take(&mut line_blocks[id]);
        per_file[file as usize].0.push(Line { line, inputs: merged.lines[id], blocks });
    }
    for (id, f) in map.functions.iter().enumerate() {
        per_file[f.file as usize].1.push(Function { name: f.name.clone(), line: f.line, inputs: merged.functions[id] });
    }
    let mut totals = Totals::default();
    let mut files: Vec<File> = map
        .files
        .iter()
        .zip(per_file)
        .map(|(path, (mut lines, mut functions))| {
            lines.sort_by_key(|l| l.line);
            functions.sort_by(|a, b| (a.line, &a.name).cmp(&(b.line, &b.name)));
            let name = display_name(path, root);
            File { path: path.clone(), name, lines, functions }
        })
        .filter(|f| !f.lines.is_empty())
        .collect();
    files.sort_by(|a, b| a.name.cmp(&b.name));
    for f in &files {
        totals.lines += f.lines.len();
        totals.lines_hit += f.lines_hit();
        totals.functions += f.functions.len();
        totals.functions_hit += f.functions_hit();
        totals.blocks += f.lines.iter().map(|l| l.blocks.len()).sum::<usize>();
        totals.blocks_hit += f.lines.iter().map(Line::blocks_hit).sum::<usize>();
    }
    Report { target: target.to_string(), root: root.to_path_buf(), found, runs: merged.runs.clone(), totals, files }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_named_by_where_they_belong() {
        let root = Path::new("/src/mycrate");
        assert_eq!(display_name(Path::new("/src/mycrate/src/lib.rs"), root), "src/lib.rs");
        assert_eq!(
            display_name(
                Path::new("/home/u/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/toml-0.8.23/src/de.rs"),
                root
            ),
            "toml-0.8.23/src/de.rs"
        );
        assert_eq!(display_name(Path::new("/elsewhere/lib.rs"), root), "/elsewhere/lib.rs");
    }
}
