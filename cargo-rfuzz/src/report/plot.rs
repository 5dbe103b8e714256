//! Charts of a sync directory's progress over time (`cargo rfuzz plot`),
//! drawn in Rust with plotters: no gnuplot, no system fonts (a bundled
//! DejaVu Sans renders the text of the PNGs).
//!
//! [`charts`] is pure: it lines the instances up on one time axis (each one's
//! `fuzzer_stats` start time; AFL 2.x rows carry Unix times) and adds a line
//! for all instances together. Counts that add up across instances (exec/s,
//! imports, crashes, hangs) are summed; edges and corpus size are not (peers
//! share most of them through sync), so the all-instances line is the best
//! instance's, a lower bound of the union. [`draw`] writes each chart as PNG
//! and SVG, [`index_html`] the page that shows them.

use crate::sync::plot_data::{Metric, PlotData, TimeBase};
use anyhow::{Context, Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// Size of every chart, in pixels (PNG) and user units (SVG).
pub const SIZE: (u32, u32) = (1000, 420);
/// Points kept per line: denser series are thinned evenly (last point kept).
const MAX_POINTS: usize = 2000;

/// What one instance recorded over time.
#[derive(Debug, Clone)]
pub struct InstanceSeries {
    /// The instance id.
    pub id: String,
    /// When it started (Unix seconds), from its `fuzzer_stats`.
    pub start: Option<u64>,
    /// Its parsed `plot_data`.
    pub data: PlotData,
    /// When it imported peers' entries (Unix seconds, sorted).
    pub imports: Vec<u64>,
}

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Legend text: an instance id, or the all-instances line.
    pub name: String,
    /// The all-instances line (drawn wide, in translucent gray, under the others).
    pub total: bool,
    /// (seconds since the first instance started, value), by time.
    pub points: Vec<(f64, f64)>,
}

/// One chart: a file stem, its title and its lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// File name without extension (`edges` → `edges.png`, `edges.svg`).
    pub stem: &'static str,
    /// Caption.
    pub title: &'static str,
    /// Y axis label.
    pub y_label: &'static str,
    /// Lines, instances first, the all-instances line last.
    pub lines: Vec<Line>,
}

/// How the all-instances line combines the instances' values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Combine {
    /// Sum; an instance whose data ended still counts what it saved
    /// (`persist`) or stops counting (a rate).
    Sum { persist: bool },
    /// The best instance's value.
    Max,
}

struct ChartSpec {
    stem: &'static str,
    title: &'static str,
    y_label: &'static str,
    /// `None`: imports, which come from the queue rather than plot_data.
    metric: Option<Metric>,
    combine: Combine,
}

const SPECS: [ChartSpec; 6] = [
    ChartSpec {
        stem: "edges",
        title: "Edges found",
        y_label: "edges",
        metric: Some(Metric::Edges),
        combine: Combine::Max,
    },
    ChartSpec {
        stem: "exec_speed",
        title: "Executions per second",
        y_label: "exec/s",
        metric: Some(Metric::ExecsPerSec),
        combine: Combine::Sum { persist: false },
    },
    ChartSpec {
        stem: "corpus",
        title: "Corpus size",
        y_label: "queue entries",
        metric: Some(Metric::Corpus),
        combine: Combine::Max,
    },
    ChartSpec {
        stem: "imports",
        title: "Entries imported from peers",
        y_label: "imported entries",
        metric: None,
        combine: Combine::Sum { persist: true },
    },
    ChartSpec {
        stem: "crashes",
        title: "Saved crashes",
        y_label: "crashes",
        metric: Some(Metric::Crashes),
        combine: Combine::Sum { persist: true },
    },
    ChartSpec {
        stem: "hangs",
        title: "Saved hangs",
        y_label: "hangs",
        metric: Some(Metric::Hangs),
        combine: Combine::Sum { persist: true },
    },
];

/// The charts for `instances` (those with no data for a chart's metric are
/// left out of it; a chart no instance has data for is left out).
pub fn charts(instances: &[InstanceSeries]) -> Vec<Chart> {
    // The common origin: the earliest known start.
    let starts: Vec<Option<u64>> = instances
        .iter()
        .map(|i| match i.data.time_base {
            TimeBase::Unix => i.data.rows.first().map(|r| r.time),
            TimeBase::Relative => i.start,
        })
        .collect();
    let origin = starts.iter().flatten().min().copied();
    let x_of = |inst: &InstanceSeries, start: Option<u64>, time: u64| -> f64 {
        match (inst.data.time_base, origin) {
            (TimeBase::Unix, Some(o)) => time.saturating_sub(o) as f64,
            (TimeBase::Unix, None) => 0.0,
            (TimeBase::Relative, _) => (start.zip(origin).map_or(0, |(s, o)| s.saturating_sub(o)) + time) as f64,
        }
    };
    let mut out = Vec::new();
    for spec in &SPECS {
        let mut lines = Vec::new();
        for (inst, &start) in instances.iter().zip(&starts) {
            let points: Vec<(f64, f64)> = match spec.metric {
                Some(m) => inst.data.rows.iter().filter_map(|r| Some((x_of(inst, start, r.time), r.get(m)?))).collect(),
                // Import times are Unix times: they need a known start.
                None => match (start, origin, inst.data.time_base) {
                    (Some(s), Some(o), _) => {
                        let begin = s.saturating_sub(o) as f64;
                        let last = inst.data.rows.last().map_or(begin, |r| x_of(inst, Some(s), r.time));
                        let mut p = vec![(begin, 0.0)];
                        p.extend(
                            inst.imports.iter().enumerate().map(|(k, t)| (t.saturating_sub(o) as f64, (k + 1) as f64)),
                        );
                        if p.last().is_some_and(|q| q.0 < last) {
                            p.push((last, inst.imports.len() as f64));
                        }
                        p
                    }
                    _ => Vec::new(),
                },
            };
            if !points.is_empty() {
                lines.push(Line { name: crate::report::cut(&inst.id, 32), total: false, points });
            }
        }
        if lines.is_empty() {
            continue;
        }
        if lines.len() > 1 {
            let name = match spec.combine {
                Combine::Sum { .. } => "all instances (sum)",
                Combine::Max => "all instances (best)",
            };
            lines.push(Line { name: name.into(), total: true, points: thin(total(&lines, spec.combine)) });
        }
        for l in lines.iter_mut().filter(|l| !l.total) {
            l.points = thin(std::mem::take(&mut l.points));
        }
        out.push(Chart { stem: spec.stem, title: spec.title, y_label: spec.y_label, lines });
    }
    out
}

/// The all-instances line: at every time any instance has a point, each
/// instance's latest value so far, combined.
fn total(lines: &[Line], combine: Combine) -> Vec<(f64, f64)> {
    let mut xs: Vec<f64> = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0)).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let mut next = vec![0usize; lines.len()];
    let mut out = Vec::with_capacity(xs.len());
    for x in xs {
        let mut acc: Option<f64> = None;
        for (l, i) in lines.iter().zip(next.iter_mut()) {
            while *i < l.points.len() && l.points[*i].0 <= x {
                *i += 1;
            }
            if *i == 0 {
                continue; // not started yet
            }
            let ended = *i == l.points.len() && l.points[*i - 1].0 < x;
            let v = l.points[*i - 1].1;
            acc = match combine {
                Combine::Sum { persist } if ended && !persist => acc,
                Combine::Sum { .. } => Some(acc.unwrap_or(0.0) + v),
                Combine::Max => Some(acc.map_or(v, |a| a.max(v))),
            };
        }
        if let Some(v) = acc {
            out.push((x, v));
        }
    }
    out
}

/// At most [`MAX_POINTS`] points, evenly spaced in the series, the last kept.
fn thin(points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    if points.len() <= MAX_POINTS {
        return points;
    }
    let step = points.len().div_ceil(MAX_POINTS);
    let last = points[points.len() - 1];
    let mut out: Vec<_> = points.into_iter().step_by(step).collect();
    if out.last() != Some(&last) {
        out.push(last);
    }
    out
}

/// The unit of the time axis, chosen from the span so labels stay short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    /// Up to 2 minutes.
    Seconds,
    /// Up to 2 hours.
    Minutes,
    /// Longer.
    Hours,
}

impl TimeUnit {
    /// The unit for a span of `secs` seconds.
    pub fn for_span(secs: f64) -> TimeUnit {
        if secs <= 120.0 {
            TimeUnit::Seconds
        } else if secs <= 7200.0 {
            TimeUnit::Minutes
        } else {
            TimeUnit::Hours
        }
    }

    fn secs(self) -> f64 {
        match self {
            TimeUnit::Seconds => 1.0,
            TimeUnit::Minutes => 60.0,
            TimeUnit::Hours => 3600.0,
        }
    }

    fn label(self) -> &'static str {
        match self {
            TimeUnit::Seconds => "seconds since the first instance started",
            TimeUnit::Minutes => "minutes since the first instance started",
            TimeUnit::Hours => "hours since the first instance started",
        }
    }
}

/// The span of time of all charts (one unit for all of them).
pub fn span(charts: &[Chart]) -> f64 {
    charts.iter().flat_map(|c| &c.lines).flat_map(|l| l.points.last()).map(|p| p.0).fold(0.0, f64::max)
}

/// Line colors of the instances (Tableau 10: distinct, readable on white).
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

static FONT: std::sync::Once = std::sync::Once::new();

/// Registers the bundled font as plotters' `sans-serif` (once).
fn register_font() {
    FONT.call_once(|| {
        static DEJAVU: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
        // A font that fails to parse would be a build defect: text then stays
        // out of the PNGs, and the SVGs still name the family.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, DEJAVU);
    });
}

/// Writes `<dir>/<stem>.png` and `<dir>/<stem>.svg` for `chart`, each first
/// under a temporary name and then renamed, so a page being reloaded never
/// shows half a file.
pub fn draw(chart: &Chart, dir: &Path, unit: TimeUnit, span: f64) -> Result<()> {
    register_font();
    for ext in ["png", "svg"] {
        let tmp = dir.join(format!(".{}.tmp.{ext}", chart.stem));
        let path = dir.join(format!("{}.{ext}", chart.stem));
        if ext == "png" {
            let root = BitMapBackend::new(&tmp, SIZE).into_drawing_area();
            paint(&root, chart, unit, span)?;
            root.present().map_err(|e| anyhow!("{e}")).with_context(|| format!("failed to write {}", tmp.display()))?;
        } else {
            let root = SVGBackend::new(&tmp, SIZE).into_drawing_area();
            paint(&root, chart, unit, span)?;
            root.present().map_err(|e| anyhow!("{e}")).with_context(|| format!("failed to write {}", tmp.display()))?;
        }
        std::fs::rename(&tmp, &path)
            .with_context(|| format!("failed to rename {} to {}", tmp.display(), path.display()))?;
    }
    Ok(())
}

fn paint<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, chart: &Chart, unit: TimeUnit, span: f64) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("failed to draw the {} chart: {e}", chart.stem);
    root.fill(&WHITE).map_err(err)?;
    let x_max = (span / unit.secs()).max(1e-9) * 1.02;
    let y_top = chart.lines.iter().flat_map(|l| &l.points).map(|p| p.1).fold(0.0, f64::max);
    // Headroom for the legend in the upper left.
    let y_max = if y_top <= 0.0 { 1.0 } else { y_top * 1.4 };
    let mut c = ChartBuilder::on(root)
        .caption(chart.title, ("sans-serif", 24))
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(err)?;
    let y_fmt = |v: &f64| tick(*v, y_max);
    let x_fmt = |v: &f64| tick(*v, x_max);
    c.configure_mesh()
        .x_desc(unit.label())
        .y_desc(chart.y_label)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .y_label_formatter(&y_fmt)
        .x_label_formatter(&x_fmt)
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    // The all-instances line goes first, so the instances stay visible on it.
    let order = chart.lines.iter().filter(|l| l.total).chain(chart.lines.iter().filter(|l| !l.total));
    let shift = usize::from(chart.lines.iter().any(|l| l.total));
    for (k, line) in order.enumerate() {
        let style = if line.total {
            ShapeStyle { color: RGBColor(40, 40, 40).mix(0.55), filled: false, stroke_width: 5 }
        } else {
            ShapeStyle { color: COLORS[(k - shift) % COLORS.len()].to_rgba(), filled: false, stroke_width: 2 }
        };
        let mut pts: Vec<(f64, f64)> = Vec::with_capacity(line.points.len() * 2);
        for &(x, y) in &line.points {
            // Steps, not ramps: a value holds until the next row (or import)
            // says otherwise, which is also how the all-instances line counts.
            if let Some(&(_, prev)) = pts.last() {
                pts.push((x / unit.secs(), prev));
            }
            pts.push((x / unit.secs(), y));
        }
        let drawn = if pts.len() == 1 {
            // One row so far: a dot, since a line needs two.
            c.draw_series(std::iter::once(Circle::new(pts[0], 4, style.filled()))).map_err(err)?
        } else {
            c.draw_series(LineSeries::new(pts, style)).map_err(err)?
        };
        drawn.label(line.name.clone()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(160, 160, 160))
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(err)?;
    Ok(())
}

/// A tick label: whole numbers without decimals, one decimal on short axes.
fn tick(v: f64, axis_max: f64) -> String {
    if v.fract() == 0.0 || axis_max >= 10.0 { format!("{v:.0}") } else { format!("{v:.1}") }
}

/// Escapes text for HTML.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page that shows the charts (their SVGs inline as images, linked to
/// the PNGs), with `notes` (instances left out and why) and, for `--watch`,
/// a refresh every `refresh` seconds.
pub fn index_html(title: &str, charts: &[Chart], notes: &[String], refresh: Option<u64>) -> String {
    let mut h = String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    if let Some(s) = refresh {
        h.push_str(&format!("<meta http-equiv=\"refresh\" content=\"{s}\">\n"));
    }
    h.push_str(&format!(
        "<title>{t}</title>\n<style>body{{font-family:sans-serif;margin:2em;color:#222}}\
         img{{max-width:100%;border:1px solid #ddd}}li{{margin:.2em 0}}</style>\n</head>\n<body>\n<h1>{t}</h1>\n",
        t = escape_html(title)
    ));
    if !notes.is_empty() {
        h.push_str("<ul>\n");
        for n in notes {
            h.push_str(&format!("<li>{}</li>\n", escape_html(n)));
        }
        h.push_str("</ul>\n");
    }
    for c in charts {
        h.push_str(&format!(
            "<h2>{t}</h2>\n<p><a href=\"{s}.png\"><img src=\"{s}.svg\" width=\"{w}\" height=\"{hh}\" alt=\"{t}\"></a></p>\n",
            t = escape_html(c.title),
            s = c.stem,
            w = SIZE.0,
            hh = SIZE.1
        ));
    }
    h.push_str("</body>\n</html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::plot_data;

    fn inst(id: &str, start: Option<u64>, rows: &str, imports: Vec<u64>) -> InstanceSeries {
        let text = format!(
            "# relative_time, cycles_done, cur_item, corpus_count, pending_total, pending_favs, map_size, saved_crashes, saved_hangs, max_depth, execs_per_sec, total_execs, edges_found\n{rows}"
        );
        InstanceSeries { id: id.into(), start, data: plot_data::parse(&text).unwrap(), imports }
    }

    fn chart<'a>(cs: &'a [Chart], stem: &str) -> &'a Chart {
        cs.iter().find(|c| c.stem == stem).unwrap()
    }

    #[test]
    fn instances_share_one_time_axis_and_totals_combine_per_metric() {
        let a = inst(
            "main",
            Some(1000),
            "0, 0, 0, 5, 0, 0, 1%, 0, 0, 1, 100, 0, 10\n10, 0, 0, 6, 0, 0, 1%, 1, 0, 1, 200, 0, 20\n",
            vec![1008],
        );
        // Started 5 s later, stopped after its first row.
        let b = inst("s01", Some(1005), "0, 0, 0, 3, 0, 0, 1%, 2, 0, 1, 50, 0, 15\n", vec![]);
        let cs = charts(&[a, b]);
        let edges = chart(&cs, "edges");
        assert_eq!(edges.lines[1].points, vec![(5.0, 15.0)]);
        assert_eq!(edges.lines[2].points, vec![(0.0, 10.0), (5.0, 15.0), (10.0, 20.0)]);
        // A rate stops counting when its instance's data ends.
        assert_eq!(chart(&cs, "exec_speed").lines[2].points, vec![(0.0, 100.0), (5.0, 150.0), (10.0, 200.0)]);
        // Saved crashes stay counted.
        assert_eq!(chart(&cs, "crashes").lines[2].points, vec![(0.0, 0.0), (5.0, 2.0), (10.0, 3.0)]);
        let imports = chart(&cs, "imports");
        assert_eq!(imports.lines[0].points, vec![(0.0, 0.0), (8.0, 1.0), (10.0, 1.0)]);
        assert!(imports.lines[2].total);
    }

    #[test]
    fn one_instance_has_no_total_line_and_imports_need_a_start() {
        let cs = charts(&[inst("main", None, "3, 0, 0, 5, 0, 0, 1%, 0, 0, 1, 100, 0, 10\n", vec![5])]);
        assert_eq!(chart(&cs, "edges").lines.len(), 1);
        assert!(cs.iter().all(|c| c.stem != "imports"));
    }

    #[test]
    fn long_series_are_thinned_keeping_the_last_point() {
        let pts: Vec<(f64, f64)> = (0..10_001).map(|i| (i as f64, i as f64)).collect();
        let t = thin(pts);
        assert!(t.len() <= MAX_POINTS + 1);
        assert_eq!(t.last(), Some(&(10_000.0, 10_000.0)));
    }

    #[test]
    fn index_escapes_and_references_every_chart() {
        let cs = charts(&[inst("main", Some(1), "3, 0, 0, 5, 0, 0, 1%, 0, 0, 1, 100, 0, 10\n", vec![])]);
        let h = index_html("sync dir <x>", &cs, &["s01: no plot_data & more".into()], Some(5));
        assert!(h.contains("sync dir &lt;x&gt;") && h.contains("no plot_data &amp; more"));
        assert!(h.contains("http-equiv=\"refresh\" content=\"5\""));
        for c in &cs {
            assert!(h.contains(&format!("src=\"{}.svg\"", c.stem)) && h.contains(&format!("href=\"{}.png\"", c.stem)));
        }
    }
}
