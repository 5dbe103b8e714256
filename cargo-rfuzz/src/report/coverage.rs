//! Renderers of a coverage report ([`crate::coverage::Report`]): the
//! terminal summary table and the HTML pages (an index with one row per
//! file, one page per file with its source). The pages are self-contained:
//! inline CSS, no scripts, no external assets; every piece of text from
//! outside (paths, source, function names) is escaped.

use super::plot::escape_html;
use crate::coverage::{File, Line, Report, percent};
use std::fmt::Write;

/// Per-file summary for the terminal: lines and functions covered, with a
/// total row, then one line about the runs.
pub fn render_text(report: &Report) -> String {
    let width = report.files.iter().map(|f| f.name.chars().count()).max().unwrap_or(0).clamp(5, 60);
    let mut out = String::new();
    let _ = writeln!(out, "{:<width$}  {:>13}  {:>7}  {:>11}", "File", "Lines", "Cover", "Functions");
    let row = |out: &mut String, name: &str, hit: usize, total: usize, fhit: usize, ftotal: usize| {
        let name: String = if name.chars().count() > width {
            let skip = name.chars().count() - (width - 1);
            format!("…{}", name.chars().skip(skip).collect::<String>())
        } else {
            name.to_string()
        };
        let _ = writeln!(
            out,
            "{name:<width$}  {:>13}  {:>6.1}%  {:>11}",
            format!("{hit}/{total}"),
            percent(hit, total),
            format!("{fhit}/{ftotal}")
        );
    };
    for f in &report.files {
        row(&mut out, &f.name, f.lines_hit(), f.lines.len(), f.functions_hit(), f.functions.len());
    }
    let t = report.totals;
    row(&mut out, "TOTAL", t.lines_hit, t.lines, t.functions_hit, t.functions);
    let _ = writeln!(out, "{}", runs_line(report));
    out
}

/// One line about the inputs and how their runs went.
pub fn runs_line(report: &Report) -> String {
    let (f, r) = (&report.found, &report.runs);
    let mut s = format!("{} inputs replayed", r.replayed);
    if f.duplicates > 0 {
        let _ = write!(s, " ({} duplicate files skipped)", f.duplicates);
    }
    let _ = write!(s, ", {} crashed", r.crashed);
    let _ = write!(s, ", {} timed out", r.timed_out);
    if r.timed_out > 0 {
        s.push_str(" (their coverage is not counted)");
    }
    if r.no_coverage > 0 {
        let _ = write!(s, ", {} ended without writing coverage", r.no_coverage);
    }
    if f.unreadable > 0 {
        let _ = write!(
            s,
            ", {} files over {} MiB or unreadable left out",
            f.unreadable,
            crate::coverage::inputs::MAX_INPUT >> 20
        );
    }
    s
}

const CSS: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse}td,th{padding:.15em .6em;text-align:right}\
td.name,th.name{text-align:left}tr.total{font-weight:bold;border-top:1px solid #888}\
.bar{display:inline-block;width:8em;height:.8em;background:#f4c7c3;vertical-align:middle}\
.bar span{display:block;height:100%;background:#9fd5a4}\
table.src{font-family:monospace;font-size:13px;width:100%}table.src td{padding:0 .5em;vertical-align:top}\
table.src td.code{text-align:left;white-space:pre}td.num{color:#888}td.hits{color:#555}\
tr.hit td.code{background:#d9f2db}tr.miss td.code{background:#f8d7d4}tr.partial td.code{background:#fbefc1}\
.legend span{padding:0 .5em;margin-right:1em}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{t}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>{t}</h1>\n{body}</body>\n</html>\n",
        t = escape_html(title)
    )
}

fn bar(hit: usize, total: usize) -> String {
    format!("<span class=\"bar\"><span style=\"width:{:.1}%\"></span></span>", percent(hit, total))
}

/// File name of the page of `report.files[i]`: the path's characters made
/// safe, with the index in front so two names never collide.
pub fn file_page(report: &Report, i: usize) -> String {
    let safe: String = report.files[i]
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
        .take(120)
        .collect();
    format!("{i:03}-{safe}.html")
}

/// `index.html`: one row per file (lines covered, percentage, functions).
pub fn render_index(report: &Report, pages_dir: &str) -> String {
    let mut b = String::new();
    let t = report.totals;
    let _ = writeln!(
        b,
        "<p>{} of {} lines ({:.1}%), {} of {} functions, {} of {} blocks reached. {}.</p>",
        t.lines_hit,
        t.lines,
        percent(t.lines_hit, t.lines),
        t.functions_hit,
        t.functions,
        t.blocks_hit,
        t.blocks,
        escape_html(&runs_line(report))
    );
    b.push_str(
        "<table>\n<tr><th class=\"name\">File</th><th>Lines</th><th></th><th>Cover</th><th>Functions</th></tr>\n",
    );
    for (i, f) in report.files.iter().enumerate() {
        let _ = writeln!(
            b,
            "<tr><td class=\"name\"><a href=\"{dir}/{page}\">{name}</a></td><td>{hit}/{total}</td><td>{bar}</td><td>{pc:.1}%</td><td>{fh}/{ft}</td></tr>",
            dir = pages_dir,
            page = escape_html(&file_page(report, i)),
            name = escape_html(&f.name),
            hit = f.lines_hit(),
            total = f.lines.len(),
            bar = bar(f.lines_hit(), f.lines.len()),
            pc = percent(f.lines_hit(), f.lines.len()),
            fh = f.functions_hit(),
            ft = f.functions.len(),
        );
    }
    let _ = writeln!(
        b,
        "<tr class=\"total\"><td class=\"name\">Total</td><td>{}/{}</td><td>{}</td><td>{:.1}%</td><td>{}/{}</td></tr>\n</table>",
        t.lines_hit,
        t.lines,
        bar(t.lines_hit, t.lines),
        percent(t.lines_hit, t.lines),
        t.functions_hit,
        t.functions
    );
    b.push_str("<p>Counts are numbers of inputs. Files of the standard library and of dependencies are left out unless <code>--include-deps</code> is given.</p>\n");
    page(&format!("Coverage of {}", report.target), &b)
}

fn line_class(l: Option<&Line>) -> (&'static str, String, String) {
    match l {
        None => ("", String::new(), String::new()),
        Some(l) if l.inputs == 0 => ("miss", "0".into(), "not reached".into()),
        Some(l) if l.partial() => {
            ("partial", l.inputs.to_string(), format!("{} of {} blocks reached", l.blocks_hit(), l.blocks.len()))
        }
        Some(l) => ("hit", l.inputs.to_string(), format!("reached by {} inputs", l.inputs)),
    }
}

/// The page of one file: its source (`None` when it cannot be read), each
/// line with code colored (green: reached, yellow: some of its blocks
/// reached, red: not reached) and the number of inputs that reached it.
pub fn render_file(report: &Report, file: &File, source: Option<&str>) -> String {
    let mut b = String::new();
    let _ = writeln!(
        b,
        "<p><a href=\"../index.html\">index</a> · {} of {} lines, {} of {} functions reached</p>",
        file.lines_hit(),
        file.lines.len(),
        file.functions_hit(),
        file.functions.len()
    );
    b.push_str(
        "<p class=\"legend\"><span style=\"background:#d9f2db\">reached</span><span style=\"background:#fbefc1\">partly reached</span><span style=\"background:#f8d7d4\">not reached</span> the number is how many inputs reached the line</p>\n",
    );
    let by_line: std::collections::HashMap<u32, &Line> = file.lines.iter().map(|l| (l.line, l)).collect();
    let text_lines: Vec<&str> = match source {
        Some(s) => s.lines().collect(),
        None => {
            b.push_str("<p>The source file could not be read; lines with code are listed without it.</p>\n");
            Vec::new()
        }
    };
    let last = file.lines.last().map_or(0, |l| l.line as usize).max(text_lines.len());
    b.push_str("<table class=\"src\">\n");
    for n in 1..=last {
        let (class, hits, title) = line_class(by_line.get(&(n as u32)).copied());
        let code = text_lines.get(n - 1).copied().unwrap_or("");
        let _ = writeln!(
            b,
            "<tr id=\"L{n}\"{cls}{tt}><td class=\"num\">{n}</td><td class=\"hits\">{hits}</td><td class=\"code\">{code}</td></tr>",
            cls = if class.is_empty() { String::new() } else { format!(" class=\"{class}\"") },
            tt = if title.is_empty() { String::new() } else { format!(" title=\"{}\"", escape_html(&title)) },
            code = escape_html(code),
        );
    }
    b.push_str("</table>\n");
    if !file.functions.is_empty() {
        b.push_str(
            "<h2>Functions</h2>\n<table>\n<tr><th class=\"name\">Function</th><th>Line</th><th>Inputs</th></tr>\n",
        );
        for f in &file.functions {
            let _ = writeln!(
                b,
                "<tr><td class=\"name\">{}</td><td><a href=\"#L{l}\">{l}</a></td><td>{}</td></tr>",
                escape_html(&f.name),
                f.inputs,
                l = f.line
            );
        }
        b.push_str("</table>\n");
    }
    page(&format!("{}: {}", report.target, file.name), &b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::{Function, Totals};

    fn report() -> Report {
        Report {
            target: "t<1>".into(),
            root: "/r".into(),
            found: Default::default(),
            runs: crate::coverage::replay::Runs { replayed: 3, crashed: 1, timed_out: 1, no_coverage: 0 },
            totals: Totals { lines: 3, lines_hit: 2, functions: 1, functions_hit: 1, blocks: 4, blocks_hit: 2 },
            files: vec![File {
                path: "/r/src/<lib>.rs".into(),
                name: "src/<lib>.rs".into(),
                lines: vec![
                    Line { line: 1, inputs: 2, blocks: vec![2] },
                    Line { line: 2, inputs: 1, blocks: vec![1, 0] },
                    Line { line: 3, inputs: 0, blocks: vec![0] },
                ],
                functions: vec![Function { name: "f::<&str>".into(), line: 1, inputs: 2 }],
            }],
        }
    }

    #[test]
    fn pages_escape_and_color_lines() {
        let r = report();
        let src = "fn f() { \"<script>\" }\nif a && b {\n    panic!()\n}\n";
        let page = render_file(&r, &r.files[0], Some(src));
        assert!(page.contains("&lt;script&gt;") && !page.contains("<script>"), "source is escaped");
        assert!(page.contains("f::&lt;&amp;str&gt;"));
        assert!(page.contains("<tr id=\"L1\" class=\"hit\""));
        assert!(page.contains("<tr id=\"L2\" class=\"partial\" title=\"1 of 2 blocks reached\">"));
        assert!(page.contains("<tr id=\"L3\" class=\"miss\""));
        assert!(page.contains("<tr id=\"L4\"><td class=\"num\">4</td><td class=\"hits\"></td>"), "no code, no color");
        let index = render_index(&r, "files");
        assert!(index.contains("href=\"files/000-src__lib_.rs.html\"") && index.contains("src/&lt;lib&gt;.rs"));
        assert!(index.contains("Coverage of t&lt;1&gt;"));
        assert!(!index.contains("http"), "no external assets");
    }

    #[test]
    fn the_text_summary_has_a_total_and_the_runs() {
        let text = render_text(&report());
        assert!(text.contains("src/<lib>.rs"));
        assert!(text.lines().any(|l| l.starts_with("TOTAL") && l.contains("2/3") && l.contains("66.7%")), "{text}");
        assert!(text.contains("3 inputs replayed, 1 crashed, 1 timed out (their coverage is not counted)"), "{text}");
    }
}
