//! SVG charts of the comparison, drawn with `plotters`' SVG backend (text is written as SVG
//! `<text>` elements, so no font library is needed).
//!
//! A [`Chart`] is a grid of [`Panel`]s that share their axes' meaning (each its own range), a
//! logarithmic y axis, one line per contender and one legend under the grid. The comparison
//! binary builds two kinds: throughput per consumer count (one panel per payload and capacity)
//! and latency percentile distributions (one panel per rate and consumer count, x =
//! `log10(1 / (1 - q))`, as HdrHistogram plots them).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One line of a panel.
#[derive(Debug, Clone)]
pub struct Series {
    /// The contender's name (also what picks its colour).
    pub name: String,
    /// Ours: drawn thicker, with filled markers.
    pub ours: bool,
    /// The points, in x order.
    pub points: Vec<(f64, f64)>,
    /// Vertical ranges to draw at some points: (x, low, high), e.g. the min–max of the runs.
    pub ranges: Vec<(f64, f64, f64)>,
    /// Whether to mark each point (throughput) or only draw the line (dense latency curves).
    pub markers: bool,
}

/// One plot of the grid.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Its title, above it.
    pub title: String,
    /// Its lines.
    pub series: Vec<Series>,
}

/// A grid of panels with a common title, subtitle, axes and legend.
#[derive(Debug, Clone)]
pub struct Chart {
    /// The title, at the top.
    pub title: String,
    /// The lines under the title (one per `\n`): the machine, the date, the command.
    pub subtitle: String,
    /// The x axis' description.
    pub x_label: String,
    /// The y axis' description.
    pub y_label: String,
    /// The x range of every panel.
    pub x_range: (f64, f64),
    /// The x positions that get a label, and the label.
    pub x_ticks: Vec<(f64, String)>,
    /// How the y axis labels its values.
    pub y_unit: YUnit,
    /// Panels per row.
    pub columns: usize,
    /// The panels, row by row.
    pub panels: Vec<Panel>,
}

/// What the y values are, for their labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YUnit {
    /// Nanoseconds, labelled `100 ns`, `10 µs`, ...
    Nanoseconds,
    /// Millions of messages per second, labelled as numbers.
    MessagesPerSecond,
}

const WIDTH: u32 = 1280;
const PANEL_HEIGHT: u32 = 400;
/// The title's height; each subtitle line adds [`SUBTITLE_LINE`].
const TITLE: u32 = 48;
const SUBTITLE_LINE: u32 = 22;
const LEGEND_ROW: u32 = 28;
const LEGEND_COLUMNS: usize = 4;

/// The colour of a contender: fixed per name, so that it is the same in every chart.
pub fn color_of(name: &str) -> RGBColor {
    const TABLE: &[(&str, RGBColor)] = &[
        ("baseline", RGBColor(150, 150, 150)),
        ("ours-index", RGBColor(214, 39, 40)),
        ("ours-handles", RGBColor(255, 127, 14)),
        ("ours-batch", RGBColor(140, 20, 75)),
        ("ours recv_blocking", RGBColor(214, 39, 40)),
        ("ours recv().await", RGBColor(255, 127, 14)),
        ("disruptor", RGBColor(31, 119, 180)),
        ("disruptor-poller", RGBColor(23, 190, 207)),
        ("bus", RGBColor(44, 160, 44)),
        ("tokio-broadcast", RGBColor(148, 103, 189)),
        ("tokio-broadcast recv().await", RGBColor(75, 35, 120)),
        ("crossbeam-fanout", RGBColor(140, 86, 75)),
        ("multiqueue2", RGBColor(188, 189, 34)),
        ("async-broadcast", RGBColor(227, 119, 194)),
        ("codas-flow", RGBColor(0, 0, 0)),
    ];
    const SPARE: &[RGBColor] = &[
        RGBColor(31, 119, 180),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(23, 190, 207),
        RGBColor(227, 119, 194),
        RGBColor(188, 189, 34),
        RGBColor(0, 0, 0),
    ];
    if let Some((_, color)) = TABLE.iter().find(|(known, _)| *known == name) {
        return *color;
    }
    // A peer's variant ("tokio-broadcast blocking_recv") takes the peer's colour.
    if let Some((_, color)) = TABLE
        .iter()
        .filter(|(known, _)| name.starts_with(known))
        .max_by_key(|(known, _)| known.len())
    {
        return *color;
    }
    let hash =
        name.bytes().fold(0usize, |hash, byte| hash.wrapping_mul(31).wrapping_add(byte as usize));
    SPARE[hash % SPARE.len()]
}

/// A y value as its axis label.
fn y_label(unit: YUnit, value: f64) -> String {
    match unit {
        YUnit::Nanoseconds => crate::latency::format_ns(value.round() as u64),
        YUnit::MessagesPerSecond if value >= 10.0 => format!("{value:.0}"),
        YUnit::MessagesPerSecond if value >= 1.0 => format!("{value:.1}"),
        YUnit::MessagesPerSecond => format!("{value:.2}"),
    }
}

/// The decade-rounded range of a panel's y values (at least one decade).
fn y_range(panel: &Panel) -> (f64, f64) {
    let values = panel.series.iter().flat_map(|series| {
        series
            .points
            .iter()
            .map(|point| point.1)
            .chain(series.ranges.iter().flat_map(|range| [range.1, range.2]))
    });
    let (low, high) = values
        .filter(|value| value.is_finite() && *value > 0.0)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), value| {
            (low.min(value), high.max(value))
        });
    if !low.is_finite() {
        return (1.0, 10.0);
    }
    let low = 10f64.powf(low.log10().floor());
    let high = 10f64.powf(high.log10().ceil()).max(low * 10.0);
    (low, high)
}

/// Writes `chart` as an SVG file at `path`.
///
/// # Errors
///
/// What plotters reports: the file could not be written, or a drawing step failed.
pub fn render_svg(chart: &Chart, path: &Path) -> Result<(), String> {
    let columns = chart.columns.max(1);
    let rows = chart.panels.len().div_ceil(columns).max(1);
    let names = legend_names(chart);
    let legend_rows = names.len().div_ceil(LEGEND_COLUMNS) as u32;
    let legend_height = 20 + legend_rows * LEGEND_ROW;
    let header = TITLE + SUBTITLE_LINE * chart.subtitle.lines().count() as u32 + 8;
    let height = header + rows as u32 * PANEL_HEIGHT + legend_height;
    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    draw(chart, &root, header, (rows, columns), &names).map_err(|e| e.to_string())?;
    root.present().map_err(|e| format!("{}: {e}", path.display()))
}

/// Every series name of the chart, in first-seen order, with whether it is ours.
fn legend_names(chart: &Chart) -> Vec<(String, bool)> {
    let mut names: Vec<(String, bool)> = Vec::new();
    for series in chart.panels.iter().flat_map(|panel| &panel.series) {
        if !names.iter().any(|(name, _)| *name == series.name) {
            names.push((series.name.clone(), series.ours));
        }
    }
    names
}

fn draw(
    chart: &Chart,
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    header_height: u32,
    (rows, columns): (usize, usize),
    names: &[(String, bool)],
) -> Result<(), Box<dyn std::error::Error>> {
    root.fill(&WHITE)?;
    let (header, rest) = root.split_vertically(header_height);
    header.draw(&Text::new(
        chart.title.clone(),
        (20, 12),
        ("sans-serif", 30).into_font().style(FontStyle::Bold).color(&BLACK),
    ))?;
    for (index, line) in chart.subtitle.lines().enumerate() {
        header.draw(&Text::new(
            line.to_string(),
            (20, TITLE as i32 + index as i32 * SUBTITLE_LINE as i32),
            ("sans-serif", 18).into_font().color(&RGBColor(70, 70, 70)),
        ))?;
    }
    let grid_height = rows as u32 * PANEL_HEIGHT;
    let (grid, legend) = rest.split_vertically(grid_height);
    let cells = grid.split_evenly((rows, columns));
    for (panel, cell) in chart.panels.iter().zip(&cells) {
        draw_panel(chart, panel, cell)?;
    }
    draw_legend(&legend, names)?;
    Ok(())
}

fn draw_panel(
    chart: &Chart,
    panel: &Panel,
    area: &DrawingArea<SVGBackend<'_>, Shift>,
) -> Result<(), Box<dyn std::error::Error>> {
    let (y_low, y_high) = y_range(panel);
    let (x_low, x_high) = chart.x_range;
    let mut plot = ChartBuilder::on(area)
        .caption(panel.title.clone(), ("sans-serif", 22))
        .margin(12)
        .margin_right(44)
        .x_label_area_size(48)
        .y_label_area_size(84)
        .build_cartesian_2d(x_low..x_high, (y_low..y_high).log_scale())?;
    let y_format = |y: &f64| y_label(chart.y_unit, *y);
    // The x axis gets the chart's own ticks (drawn below), not plotters' evenly spaced ones.
    plot.configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .x_desc(chart.x_label.clone())
        .y_desc(chart.y_label.clone())
        .y_label_formatter(&y_format)
        .label_style(("sans-serif", 17))
        .axis_desc_style(("sans-serif", 18))
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(205, 205, 205))
        .draw()?;
    let (base_x, base_y) = area.get_base_pixel();
    for (x, label) in &chart.x_ticks {
        plot.draw_series(std::iter::once(PathElement::new(
            vec![(*x, y_low), (*x, y_high)],
            RGBColor(205, 205, 205).stroke_width(1),
        )))?;
        let (px, py) = plot.backend_coord(&(*x, y_low));
        area.draw(&Text::new(
            label.clone(),
            (px - base_x, py - base_y + 6),
            ("sans-serif", 17).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Top)),
        ))?;
    }
    // Peers first, ours on top.
    let mut order: Vec<&Series> = panel.series.iter().collect();
    order.sort_by_key(|series| series.ours);
    for series in order {
        let color = color_of(&series.name);
        let width = if series.ours { 3 } else { 2 };
        let style = color.stroke_width(width);
        let points = series.points.iter().copied().filter(|p| p.1 > 0.0 && p.1.is_finite());
        if series.name == "baseline" {
            plot.draw_series(DashedLineSeries::new(points.clone(), 6, 4, style))?;
        } else {
            plot.draw_series(LineSeries::new(points.clone(), style))?;
        }
        if series.markers {
            let marker = if series.ours { color.filled() } else { color.stroke_width(2) };
            plot.draw_series(points.map(|point| Circle::new(point, 4, marker)))?;
        }
        for &(x, low, high) in series.ranges.iter().filter(|r| r.1 > 0.0 && r.2 >= r.1) {
            plot.draw_series(std::iter::once(PathElement::new(
                vec![(x, low), (x, high)],
                color.mix(0.6).stroke_width(1),
            )))?;
        }
    }
    Ok(())
}

fn draw_legend(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    names: &[(String, bool)],
) -> Result<(), Box<dyn std::error::Error>> {
    let column_width = (WIDTH as i32 - 40) / LEGEND_COLUMNS as i32;
    for (index, (name, ours)) in names.iter().enumerate() {
        let row = (index / LEGEND_COLUMNS) as i32;
        let column = (index % LEGEND_COLUMNS) as i32;
        let x = 20 + column * column_width;
        let y = 10 + row * LEGEND_ROW as i32;
        let color = color_of(name);
        let width = if *ours { 3 } else { 2 };
        area.draw(&PathElement::new(vec![(x, y + 8), (x + 28, y + 8)], color.stroke_width(width)))?;
        area.draw(&Circle::new(
            (x + 14, y + 8),
            4,
            if *ours { color.filled() } else { color.stroke_width(2) },
        ))?;
        let font = ("sans-serif", 19).into_font();
        let font = if *ours { font.style(FontStyle::Bold) } else { font };
        area.draw(&Text::new(name.clone(), (x + 36, y), font.color(&BLACK)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_an_svg_with_its_text() {
        let chart = Chart {
            title: "title".into(),
            subtitle: "machine, date".into(),
            x_label: "consumers".into(),
            y_label: "M msg/s".into(),
            x_range: (0.5, 2.5),
            x_ticks: vec![(1.0, "1".into()), (2.0, "2".into())],
            y_unit: YUnit::MessagesPerSecond,
            columns: 2,
            panels: vec![Panel {
                title: "u64".into(),
                series: vec![Series {
                    name: "ours-batch".into(),
                    ours: true,
                    points: vec![(1.0, 100.0), (2.0, 50.0)],
                    ranges: vec![(1.0, 90.0, 110.0)],
                    markers: true,
                }],
            }],
        };
        let dir = std::env::temp_dir().join(format!("charts-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("chart.svg");
        render_svg(&chart, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(svg.starts_with("<svg"));
        for text in ["title", "machine, date", "ours-batch", "consumers", "M msg/s"] {
            assert!(svg.contains(text), "{text} missing");
        }
    }

    #[test]
    fn a_variant_takes_its_peers_colour() {
        assert_eq!(color_of("tokio-broadcast blocking_recv"), color_of("tokio-broadcast"));
    }
}
