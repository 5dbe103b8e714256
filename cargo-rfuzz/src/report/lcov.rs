//! `lcov.info` of a coverage report: the tracefile format of LCOV's
//! `geninfo`, which `genhtml`, editors' coverage gutters and coverage
//! services read.
//!
//! Per file: `TN:`, `SF:<absolute path>`, `FN:<line>,<name>` for each
//! function, `FNDA:<inputs>,<name>`, `FNF`/`FNH`, then for each line with two
//! or more basic blocks one `BRDA:<line>,0,<block>,<inputs>` per block
//! (`-` when the line was never reached: LCOV's "not executed"), `BRF`/`BRH`,
//! `DA:<line>,<inputs>` for each line with code, `LF`/`LH` and
//! `end_of_record`. Counts are numbers of inputs, not executions; the
//! "branches" are the line's basic blocks, which is what the build can see.

use crate::coverage::{File, Report};
use std::collections::HashMap;
use std::fmt::Write;

/// Function names as LCOV needs them: unique within a file (closures of one
/// function share a demangled name: each of those gets `@<line>`) and on one
/// line (LCOV reads a name up to the end of the line).
fn function_names(file: &File) -> Vec<String> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for f in &file.functions {
        *count.entry(f.name.as_str()).or_default() += 1;
    }
    file.functions
        .iter()
        .map(|f| {
            let clean: String = f.name.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
            if count[f.name.as_str()] > 1 { format!("{clean}@{}", f.line) } else { clean }
        })
        .collect()
}

/// The tracefile.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for file in &report.files {
        let _ = writeln!(out, "TN:");
        let path: String = file.path.to_string_lossy().chars().map(|c| if c.is_control() { '?' } else { c }).collect();
        let _ = writeln!(out, "SF:{path}");
        let names = function_names(file);
        for (f, name) in file.functions.iter().zip(&names) {
            let _ = writeln!(out, "FN:{},{name}", f.line);
        }
        for (f, name) in file.functions.iter().zip(&names) {
            let _ = writeln!(out, "FNDA:{},{name}", f.inputs);
        }
        let _ = writeln!(out, "FNF:{}", file.functions.len());
        let _ = writeln!(out, "FNH:{}", file.functions_hit());
        let (mut brf, mut brh) = (0, 0);
        for l in file.lines.iter().filter(|l| l.blocks.len() >= 2) {
            for (i, &n) in l.blocks.iter().enumerate() {
                brf += 1;
                brh += (n > 0) as usize;
                if l.inputs == 0 {
                    let _ = writeln!(out, "BRDA:{},0,{i},-", l.line);
                } else {
                    let _ = writeln!(out, "BRDA:{},0,{i},{n}", l.line);
                }
            }
        }
        let _ = writeln!(out, "BRF:{brf}");
        let _ = writeln!(out, "BRH:{brh}");
        for l in &file.lines {
            let _ = writeln!(out, "DA:{},{}", l.line, l.inputs);
        }
        let _ = writeln!(out, "LF:{}", file.lines.len());
        let _ = writeln!(out, "LH:{}", file.lines_hit());
        let _ = writeln!(out, "end_of_record");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::{Function, Line, Totals};

    fn report() -> Report {
        Report {
            target: "t".into(),
            root: "/r".into(),
            found: Default::default(),
            runs: Default::default(),
            totals: Totals::default(),
            files: vec![File {
                path: "/r/src/lib.rs".into(),
                name: "src/lib.rs".into(),
                lines: vec![
                    Line { line: 3, inputs: 2, blocks: vec![2] },
                    Line { line: 4, inputs: 1, blocks: vec![1, 0] },
                    Line { line: 7, inputs: 0, blocks: vec![0, 0] },
                ],
                functions: vec![
                    Function { name: "lib::f".into(), line: 3, inputs: 2 },
                    Function { name: "lib::f::{closure}".into(), line: 4, inputs: 1 },
                    Function { name: "lib::f::{closure}".into(), line: 7, inputs: 0 },
                ],
            }],
        }
    }

    #[test]
    fn writes_lcov_records() {
        let text = render(&report());
        let want = "TN:\nSF:/r/src/lib.rs\nFN:3,lib::f\nFN:4,lib::f::{closure}@4\nFN:7,lib::f::{closure}@7\n\
            FNDA:2,lib::f\nFNDA:1,lib::f::{closure}@4\nFNDA:0,lib::f::{closure}@7\nFNF:3\nFNH:2\n\
            BRDA:4,0,0,1\nBRDA:4,0,1,0\nBRDA:7,0,0,-\nBRDA:7,0,1,-\nBRF:4\nBRH:1\n\
            DA:3,2\nDA:4,1\nDA:7,0\nLF:3\nLH:2\nend_of_record\n";
        assert_eq!(text, want);
    }
}
