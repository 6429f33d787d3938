//! The SVG chart: one panel per case, each drawn by [`draw_panel`] from a [`Panel`]
//! (a log-scale figure against a position on the x axis, one series per transport and
//! driver).

use std::path::Path;

use plotters::prelude::*;

use super::{Measurement, bytes, si};
use crate::names::Case;

const PALETTE: [RGBColor; 12] = [
    RGBColor(214, 39, 40),
    RGBColor(255, 127, 14),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(127, 127, 127),
    RGBColor(23, 190, 207),
    RGBColor(188, 189, 34),
    RGBColor(227, 119, 194),
    RGBColor(0, 0, 0),
    RGBColor(174, 199, 232),
];

/// One line (or several, drawn in one colour under one legend entry).
struct Series {
    label: String,
    lines: Vec<Vec<(f64, f64)>>,
}

/// What one panel shows. The y axis is logarithmic; x is linear in whatever the
/// caller put there (a log10 of connections or chunk bytes, or a category index).
struct Panel {
    caption: &'static str,
    x_desc: &'static str,
    y_desc: &'static str,
    x_range: (f64, f64),
    x_labels: usize,
    x_label: Box<dyn Fn(f64) -> String>,
    series: Vec<Series>,
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
) -> Result<(), String> {
    let points = panel.series.iter().flat_map(|s| s.lines.iter().flatten());
    let (lo, hi) = points.fold((f64::MAX, 0.0_f64), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    let (lo, hi) = if hi > 0.0 {
        (lo.max(1e-3) / 2.0, hi * 2.0)
    } else {
        (0.1, 10.0)
    };
    let mut chart = ChartBuilder::on(area)
        .caption(panel.caption, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(panel.x_range.0..panel.x_range.1, (lo..hi).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_labels(panel.x_labels)
        .x_label_formatter(&|x| (panel.x_label)(*x))
        .y_label_formatter(&|y| if *y < 10.0 { format!("{y:.2}") } else { si(*y) })
        .x_desc(panel.x_desc)
        .y_desc(panel.y_desc)
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, series) in panel.series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        for (l, line) in series.lines.iter().enumerate() {
            let drawn = chart
                .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))
                .map_err(|e| e.to_string())?;
            if l == 0 {
                drawn.label(series.label.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            }
            chart
                .draw_series(line.iter().map(|p| Circle::new(*p, 3, color.filled())))
                .map_err(|e| e.to_string())?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}

/// One series per transport and driver of `case`, its points `(x, figure)` grouped
/// into lines by `group`.
fn series_of(
    results: &[Measurement],
    case: Case,
    x: impl Fn(&Measurement) -> Option<f64>,
    group: impl Fn(&Measurement) -> u64,
) -> Vec<Series> {
    let mut keys = Vec::new();
    for m in results.iter().filter(|m| m.case == case) {
        if !keys.contains(&(m.transport, m.model)) {
            keys.push((m.transport, m.model));
        }
    }
    keys.into_iter()
        .map(|key| {
            let rows: Vec<&Measurement> = results
                .iter()
                .filter(|m| m.case == case && (m.transport, m.model) == key)
                .collect();
            let mut groups: Vec<u64> = rows.iter().map(|m| group(m)).collect();
            groups.dedup();
            let lines = groups
                .into_iter()
                .map(|g| {
                    rows.iter()
                        .filter(|m| group(m) == g)
                        .filter_map(|m| Some((x(m)?, m.value()?)))
                        .collect()
                })
                .collect();
            Series {
                label: format!("{} ({})", key.0, key.1),
                lines,
            }
        })
        .collect()
}

fn power_of_ten(x: f64) -> String {
    let v = 10f64.powf(x);
    if (v - v.round()).abs() < 0.05 * v {
        format!("{:.0}", v.round())
    } else {
        String::new()
    }
}

fn panel_of(results: &[Measurement], case: Case) -> Option<Panel> {
    if !results
        .iter()
        .any(|m| m.case == case && m.value().is_some())
    {
        return None;
    }
    Some(match case {
        Case::PingPong => Panel {
            caption: "pingPong: round trips/s (higher is better)",
            x_desc: "connections (10000: server in a child process)",
            y_desc: "round trips/s",
            x_range: (-0.1, 4.2),
            x_labels: 10,
            x_label: Box::new(power_of_ten),
            series: series_of(
                results,
                case,
                |m| Some((m.connections as f64).log10()),
                |_| 0,
            ),
        },
        Case::DataExchange => {
            let mut pairs: Vec<(u64, u64)> = Vec::new();
            for m in results.iter().filter(|m| m.case == case) {
                if !pairs.contains(&(m.connections, m.chunk)) {
                    pairs.push((m.connections, m.chunk));
                }
            }
            let labels = pairs.clone();
            Panel {
                caption: "dataExchange: MiB/s received (higher is better)",
                x_desc: "connections x chunk bytes",
                y_desc: "MiB/s",
                x_range: (-0.5, pairs.len().max(1) as f64 - 0.5),
                x_labels: pairs.len().max(1),
                x_label: Box::new(move |x| {
                    let i = x.round();
                    if (x - i).abs() > 0.01 || i < 0.0 {
                        return String::new();
                    }
                    labels
                        .get(i as usize)
                        .map_or(String::new(), |(c, k)| format!("{c}x{}", bytes(*k)))
                }),
                series: series_of(
                    results,
                    case,
                    |m| Some(pairs.iter().position(|p| *p == (m.connections, m.chunk))? as f64),
                    |m| m.connections,
                ),
            }
        }
        Case::Core => Panel {
            caption: "core rings between two threads: GiB/s (higher is better)",
            x_desc: "chunk bytes",
            y_desc: "GiB/s",
            x_range: (-0.1, 5.0),
            x_labels: 10,
            x_label: Box::new(power_of_ten),
            series: series_of(results, case, |m| Some((m.chunk as f64).log10()), |_| 0),
        },
        Case::Idle => return None,
    })
}

/// Draws the cases of `results` as an SVG chart at `path`.
pub fn write_svg(path: &Path, results: &[Measurement]) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let panels: Vec<Panel> = [Case::PingPong, Case::DataExchange, Case::Core]
        .into_iter()
        .filter_map(|case| panel_of(results, case))
        .collect();
    let height = 500 * panels.len().max(1) as u32;
    let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let areas = root.split_evenly((panels.len().max(1), 1));
    for (panel, area) in panels.iter().zip(&areas) {
        draw_panel(area, panel)?;
    }
    root.present().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{Driver, Name};
    use crate::report::tests::row;

    #[test]
    fn the_svg_has_a_panel_per_case() {
        let dir = std::env::temp_dir().join(format!("ringlink-bench-svg-{}", std::process::id()));
        let results = vec![
            row(Case::PingPong, Name::Std, Driver::Threads, 200.0),
            row(Case::DataExchange, Name::Std, Driver::Threads, 900.0),
            row(Case::Core, Name::Rtrb, Driver::TwoThreads, 4.0),
        ];
        write_svg(&dir.join("r.svg"), &results).unwrap();
        let svg = std::fs::read_to_string(dir.join("r.svg")).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..200.min(svg.len())]);
        for caption in ["pingPong", "dataExchange", "core rings", "std (threads)"] {
            assert!(svg.contains(caption), "{caption}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
