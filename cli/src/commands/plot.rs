//! `wst plot`: reward and accuracy over training steps (from `metrics.jsonl`), and Pareto plots
//! of any two values or measures of evaluated rows (from one or more `results.json`): the
//! helpful/harmless frontier across weight settings, or accuracy against Student tokens with
//! the frontier of the fixed instructions.
//! SVG only: browsers and GitHub render it, text needs no font on this machine, and no image
//! stack is compiled into `wst` (convert with any SVG tool when a bitmap is needed).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use plotters::prelude::*;
use serde_json::Value;

/// Arguments of `wst plot`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A `metrics.jsonl` written by `wst train`.
    #[arg(long)]
    metrics: Option<PathBuf>,
    /// `results.json` files of `wst eval` runs (e.g. one per reward-weight setting).
    #[arg(long, num_args = 1..)]
    pareto: Vec<PathBuf>,
    /// Reward value on the x axis of the Pareto plot.
    #[arg(long, default_value = "helpful/score")]
    x: String,
    /// Reward value on the y axis of the Pareto plot.
    #[arg(long, default_value = "harmless/score")]
    y: String,
    /// Lower x is better (`--x completion_tokens`: fewer Student tokens); else higher is.
    #[arg(long)]
    minimise_x: bool,
    /// Draw the frontier of the rows whose name starts with this (e.g. `fixed` for the fixed
    /// instructions), so a Teacher's point can be read against it; default: every row.
    #[arg(long)]
    frontier_of: Option<String>,
    /// Output folder.
    #[arg(long, short, default_value = "plots")]
    out: PathBuf,
}

/// An axis range around the data `[lo, hi]`: 5% either side, plus, above, a band of 7% of the
/// data's span per legend entry (`legend`), so the legend in the upper corner covers no point.
/// A flat series gets ±0.5.
fn pad(lo: f64, hi: f64, legend: usize) -> (f64, f64) {
    let (span, margin) = if (hi - lo).abs() < 1e-9 { (1.0, 0.5) } else { (hi - lo, 0.05 * (hi - lo)) };
    (lo - margin, hi + margin + 0.07 * legend as f64 * span)
}

/// One line series: a name and (x, y) points.
type Series = (String, Vec<(f64, f64)>);

/// Row colours: matplotlib's ten (`tab10`) then five darker ones, every one readable on white
/// (relative luminance at most 0.5) and none black, which marks the frontier.
const ROW_COLOURS: [RGBColor; 15] = [
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
    RGBColor(0, 0, 139),
    RGBColor(139, 0, 0),
    RGBColor(0, 100, 0),
    RGBColor(184, 134, 11),
    RGBColor(75, 0, 130),
];

/// What `draw` draws: the rows, as points (or lines through them), and optionally a frontier,
/// drawn first in black with open rings round its points so the rows it passes through show.
struct Figure<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    series: &'a [Series],
    lines: bool,
    frontier: Option<&'a Series>,
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, plotters::coord::Shift>, fig: &Figure<'_>) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let Figure { title, x_label, y_label, series, lines, frontier } = *fig;
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let pts = series.iter().chain(frontier).flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if !x0.is_finite() {
        anyhow::bail!("nothing to plot for {title}");
    }
    let ((x0, x1), (y0, y1)) = (pad(x0, x1, 0), pad(y0, y1, series.len() + usize::from(frontier.is_some())));
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    chart.configure_mesh().x_desc(x_label).y_desc(y_label).draw().map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some((name, points)) = frontier {
        chart
            .draw_series(LineSeries::new(points.iter().copied(), BLACK.stroke_width(2)))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label(name.clone())
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK.stroke_width(2)));
        chart.draw_series(points.iter().map(|&(x, y)| Circle::new((x, y), 7, BLACK.stroke_width(1)))).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    for (i, (name, points)) in series.iter().enumerate() {
        let color = ROW_COLOURS[i % ROW_COLOURS.len()];
        if lines {
            chart
                .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
        }
        let s = chart.draw_series(points.iter().map(|&(x, y)| Circle::new((x, y), 4, color.filled()))).map_err(|e| anyhow::anyhow!("{e}"))?;
        if !lines {
            s.label(name.clone()).legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
        }
    }
    chart.configure_series_labels().position(SeriesLabelPosition::UpperRight).background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(|e| anyhow::anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

/// Writes `NAME.svg` in `out`; returns the file.
fn render(out: &Path, name: &str, fig: &Figure<'_>) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let svg = out.join(format!("{name}.svg"));
    draw(SVGBackend::new(&svg, (900, 560)).into_drawing_area(), fig)?;
    Ok(svg)
}

/// Reward and Student score over steps from a metrics log; evaluation points when present.
pub fn plot_metrics(metrics: &Path, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let rows = wst_sdk::train::log::read_jsonl(metrics)?;
    let series_of = |key: &str| -> Vec<(f64, f64)> { rows.iter().filter_map(|r| Some((r["step"].as_f64()?, r.get(key)?.as_f64()?))).collect() };
    let mut series: Vec<Series> = Vec::new();
    for (key, label) in [
        ("reward", "WST reward r = mean − s"),
        ("wst/student_score", "Student score with instructions (train)"),
        ("wst/student_baseline", "Student baseline s (train)"),
        ("eval/student_score", "Student score with instructions (eval)"),
        ("eval/student_baseline", "Student score without instructions (eval)"),
    ] {
        let s = series_of(key);
        if !s.is_empty() {
            series.push((label.to_string(), s));
        }
    }
    if series.is_empty() {
        anyhow::bail!("{} has no metrics to plot", metrics.display());
    }
    let fig = Figure { title: "WST training", x_label: "step", y_label: "score / reward", series: &series, lines: true, frontier: None };
    Ok(vec![render(out, "training", &fig)?])
}

/// The non-dominated points (maximising both coordinates), sorted by x.
pub fn pareto_frontier(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut front: Vec<(f64, f64)> = points.iter().copied().filter(|&(x, y)| !points.iter().any(|&(a, b)| a >= x && b >= y && (a > x || b > y))).collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0));
    front.dedup();
    front
}

/// A row's value `key`: a reward value's mean, else a measure's (`completion_tokens`,
/// `truncated`), else the headline when `key` is `value`.
fn lookup(m: &Value, key: &str) -> Option<f64> {
    m["values"][key].as_f64().or_else(|| m["measures"][key]["value"].as_f64()).or_else(|| (key == "value").then(|| m["value"].as_f64()).flatten())
}

/// The frontier of `points` with y maximised and x maximised, or minimised with `minimise_x`.
fn frontier(points: &[(f64, f64)], minimise_x: bool) -> Vec<(f64, f64)> {
    if !minimise_x {
        return pareto_frontier(points);
    }
    let flipped: Vec<(f64, f64)> = points.iter().map(|&(x, y)| (-x, y)).collect();
    let mut f: Vec<(f64, f64)> = pareto_frontier(&flipped).into_iter().map(|(x, y)| (-x, y)).collect();
    f.sort_by(|a, b| a.0.total_cmp(&b.0));
    f
}

struct ParetoSpec<'a> {
    x: &'a str,
    y: &'a str,
    minimise_x: bool,
    frontier_of: Option<&'a str>,
}

fn plot_pareto(files: &[PathBuf], spec: &ParetoSpec<'_>, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let (x, y) = (spec.x, spec.y);
    let mut by_method: std::collections::BTreeMap<String, Vec<(f64, f64)>> = Default::default();
    for f in files {
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?).with_context(|| format!("{} is not JSON", f.display()))?;
        let methods = v["methods"].as_array().with_context(|| format!("{}: no `methods` array", f.display()))?;
        for m in methods {
            let name = m["name"].as_str().unwrap_or("?").to_string();
            let (Some(px), Some(py)) = (lookup(m, x), lookup(m, y)) else {
                anyhow::bail!("{}: method `{name}` has no value or measure `{x}` and `{y}`", f.display());
            };
            by_method.entry(name).or_default().push((px, py));
        }
    }
    let candidates: Vec<(f64, f64)> = by_method.iter().filter(|(n, _)| spec.frontier_of.is_none_or(|p| n.starts_with(p))).flat_map(|(_, p)| p.iter().copied()).collect();
    if candidates.is_empty() {
        anyhow::bail!("no row's name starts with `{}`: nothing to draw a frontier of", spec.frontier_of.unwrap_or_default());
    }
    let series: Vec<Series> = by_method.into_iter().collect();
    let label = match spec.frontier_of {
        Some(p) => format!("Pareto frontier of the {p}* rows"),
        None => "Pareto frontier".into(),
    };
    let front = (label, frontier(&candidates, spec.minimise_x));
    let (points_title, title) = (format!("{y} vs {x}"), format!("Pareto frontier: {y} vs {x}"));
    let points = render(out, "pareto_points", &Figure { title: &points_title, x_label: x, y_label: y, series: &series, lines: false, frontier: None })?;
    Ok(vec![render(out, "pareto", &Figure { title: &title, x_label: x, y_label: y, series: &series, lines: true, frontier: Some(&front) })?, points])
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.metrics.is_none() && args.pareto.is_empty() {
        anyhow::bail!("give --metrics FILE and/or --pareto RESULTS.json...");
    }
    let mut written = Vec::new();
    if let Some(m) = &args.metrics {
        written.extend(plot_metrics(m, &args.out)?);
    }
    if !args.pareto.is_empty() {
        let spec = ParetoSpec { x: &args.x, y: &args.y, minimise_x: args.minimise_x, frontier_of: args.frontier_of.as_deref() };
        written.extend(plot_pareto(&args.pareto, &spec, &args.out)?);
    }
    for f in written {
        println!("{}", f.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_leaves_a_band_above_the_data_for_the_legend() {
        let close = |a: (f64, f64), b: (f64, f64)| (a.0 - b.0).abs() < 1e-12 && (a.1 - b.1).abs() < 1e-12;
        // Data from -0.6 to 1.0 (span 1.6): 0.08 either side, plus 3 × 0.112 above for three entries.
        assert!(close(pad(-0.6, 1.0, 0), (-0.68, 1.08)));
        assert!(close(pad(-0.6, 1.0, 3), (-0.68, 1.416)));
        assert!(close(pad(2.0, 2.0, 0), (1.5, 2.5)));
        assert!(close(pad(2.0, 2.0, 2), (1.5, 2.64)));
    }

    #[test]
    fn every_row_colour_reads_on_white_and_none_is_the_frontiers_black() {
        // WCAG's relative luminance of an sRGB colour.
        let lin = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
        };
        for (i, &RGBColor(r, g, b)) in ROW_COLOURS.iter().enumerate() {
            let luminance = 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
            assert!(luminance <= 0.5, "colour {i} ({r}, {g}, {b}): luminance {luminance:.3}");
            assert_ne!((r, g, b), (0, 0, 0));
            assert!(ROW_COLOURS[..i].iter().all(|c| *c != ROW_COLOURS[i]), "colour {i} repeats");
        }
        // By hand: tab10's olive (188, 189, 34) is 0.2126 · 0.5029 + 0.7152 · 0.5089 + 0.0722 · 0.0160.
        assert!((0.2126 * lin(188) + 0.7152 * lin(189) + 0.0722 * lin(34) - 0.4720).abs() < 1e-3);
    }

    #[test]
    fn the_frontier_keeps_only_undominated_points() {
        let pts = [(0.1, 0.9), (0.5, 0.5), (0.4, 0.4), (0.9, 0.1), (0.5, 0.2)];
        assert_eq!(pareto_frontier(&pts), vec![(0.1, 0.9), (0.5, 0.5), (0.9, 0.1)]);
        // Fewer tokens is better: (100 tokens, 0.3) and (300, 0.5) are undominated; (250, 0.3)
        // is dominated by (100, 0.3), and (400, 0.45) by (300, 0.5).
        let tokens = [(300.0, 0.5), (100.0, 0.3), (250.0, 0.3), (400.0, 0.45)];
        assert_eq!(frontier(&tokens, true), vec![(100.0, 0.3), (300.0, 0.5)]);
    }
}
