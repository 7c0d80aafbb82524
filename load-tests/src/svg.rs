//! The report's charts as plain SVG: line charts over time and a grouped bar chart over
//! log-scale latency buckets, with axes, ticks, a legend and a title.

use std::fmt::Write;

/// Chart size and the margins around the plot area.
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 360.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// Colours of the series, in order (colour-blind safe pairs).
pub const COLOURS: [&str; 4] = ["#0072b2", "#d55e00", "#009e73", "#cc79a7"];

/// One named line of points `(x, y)`.
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Points in x order.
    pub points: Vec<(f64, f64)>,
}

/// A round step for about `ticks` ticks over `0..=max` (1, 2 or 5 times a power of ten).
fn nice_step(max: f64, ticks: f64) -> f64 {
    let raw = (max / ticks).max(f64::MIN_POSITIVE);
    let power = 10f64.powf(raw.log10().floor());
    let fraction = raw / power;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * power
}

/// A tick label without needless decimals.
fn label(value: f64) -> String {
    if value == value.round() {
        format!("{value:.0}")
    } else if (value * 10.0) == (value * 10.0).round() {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The frame: background, title, axis titles.
fn frame(out: &mut String, title: &str, x_title: &str, y_title: &str) {
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="{cx}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{title}</text>
<text x="{cx}" y="{xt}" text-anchor="middle">{x_title}</text>
<text x="16" y="{cy}" text-anchor="middle" transform="rotate(-90 16 {cy})">{y_title}</text>
"##,
        cx = LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
        cy = TOP + (HEIGHT - TOP - BOTTOM) / 2.0,
        xt = HEIGHT - 10.0,
        title = escape(title),
        x_title = escape(x_title),
        y_title = escape(y_title),
    );
}

/// Y axis with gridlines from 0 to `y_max`; returns the top of the scale.
fn y_axis(out: &mut String, y_max: f64) -> f64 {
    let step = nice_step(y_max.max(1e-9), 5.0);
    let top = (y_max / step).ceil().max(1.0) * step;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let mut tick = 0.0;
    while tick <= top + step / 2.0 {
        let y = HEIGHT - BOTTOM - tick / top * plot_h;
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{x2}" y2="{y:.1}" stroke="#e0e0e0"/><text x="{tx}" y="{ty:.1}" text-anchor="end">{l}</text>"##,
            x2 = WIDTH - RIGHT,
            tx = LEFT - 6.0,
            ty = y + 4.0,
            l = label(tick),
        );
        tick += step;
    }
    let _ = writeln!(
        out,
        r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{b}" stroke="#333"/><line x1="{LEFT}" y1="{b}" x2="{r}" y2="{b}" stroke="#333"/>"##,
        b = HEIGHT - BOTTOM,
        r = WIDTH - RIGHT,
    );
    top
}

/// The legend in the top right corner of the plot.
fn legend(out: &mut String, names: &[&str]) {
    for (i, name) in names.iter().enumerate() {
        let y = TOP + 8.0 + i as f64 * 18.0;
        let x = WIDTH - RIGHT - 150.0;
        let _ = writeln!(
            out,
            r##"<rect x="{x}" y="{ry}" width="14" height="10" fill="{c}"/><text x="{tx}" y="{ty}">{n}</text>"##,
            ry = y - 9.0,
            c = COLOURS[i % COLOURS.len()],
            tx = x + 20.0,
            ty = y,
            n = escape(name),
        );
    }
}

/// A line chart of `series` over a linear x axis starting at 0.
pub fn line_chart(title: &str, x_title: &str, y_title: &str, series: &[Series]) -> String {
    let mut out = String::new();
    frame(&mut out, title, x_title, y_title);
    let points = series.iter().flat_map(|s| &s.points);
    let x_max = points.clone().map(|p| p.0).fold(0.0, f64::max).max(1.0);
    let y_max = points.map(|p| p.1).fold(0.0, f64::max);
    let y_top = y_axis(&mut out, y_max);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x_step = nice_step(x_max, 8.0);
    let x_top = (x_max / x_step).ceil() * x_step;
    let mut tick = 0.0;
    while tick <= x_top + x_step / 2.0 {
        let x = LEFT + tick / x_top * plot_w;
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{b}" x2="{x:.1}" y2="{b5}" stroke="#333"/><text x="{x:.1}" y="{ty}" text-anchor="middle">{l}</text>"##,
            b = HEIGHT - BOTTOM,
            b5 = HEIGHT - BOTTOM + 5.0,
            ty = HEIGHT - BOTTOM + 18.0,
            l = label(tick),
        );
        tick += x_step;
    }
    for (i, s) in series.iter().enumerate() {
        let path: Vec<String> = s
            .points
            .iter()
            .map(|(x, y)| {
                format!(
                    "{:.1},{:.1}",
                    LEFT + x / x_top * plot_w,
                    HEIGHT - BOTTOM - y / y_top * plot_h
                )
            })
            .collect();
        let _ = writeln!(
            out,
            r##"<polyline fill="none" stroke="{c}" stroke-width="2" points="{p}"/>"##,
            c = COLOURS[i % COLOURS.len()],
            p = path.join(" "),
        );
    }
    let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
    legend(&mut out, &names);
    out.push_str("</svg>\n");
    out
}

/// A grouped bar chart: one group per category (bucket), one bar per series in each.
pub fn bar_chart(
    title: &str,
    x_title: &str,
    y_title: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
) -> String {
    bar_chart_with_lines(title, x_title, y_title, categories, series, &[])
}

/// [`bar_chart`] with `lines` drawn over the bars, dashed, one point per category at its
/// group's centre (a limit per category, say), in the legend after the bars.
pub fn bar_chart_with_lines(
    title: &str,
    x_title: &str,
    y_title: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
    lines: &[(String, Vec<f64>)],
) -> String {
    let mut out = String::new();
    frame(&mut out, title, x_title, y_title);
    let y_max = series
        .iter()
        .chain(lines)
        .flat_map(|(_, values)| values)
        .fold(0.0, |a: f64, b| a.max(*b));
    let y_top = y_axis(&mut out, y_max);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let group_w = plot_w / categories.len().max(1) as f64;
    let bar_w = group_w * 0.8 / series.len().max(1) as f64;
    for (c, category) in categories.iter().enumerate() {
        let gx = LEFT + c as f64 * group_w;
        let _ = writeln!(
            out,
            r##"<text x="{x:.1}" y="{y}" text-anchor="middle" font-size="10">{l}</text>"##,
            x = gx + group_w / 2.0,
            y = HEIGHT - BOTTOM + 16.0,
            l = escape(category),
        );
        for (s, (_, values)) in series.iter().enumerate() {
            let value = values.get(c).copied().unwrap_or(0.0);
            let h = value / y_top * plot_h;
            let _ = writeln!(
                out,
                r##"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{col}"/>"##,
                x = gx + group_w * 0.1 + s as f64 * bar_w,
                y = HEIGHT - BOTTOM - h,
                w = bar_w,
                col = COLOURS[s % COLOURS.len()],
            );
        }
    }
    for (l, (_, values)) in lines.iter().enumerate() {
        let colour = COLOURS[(series.len() + l) % COLOURS.len()];
        let points: Vec<(f64, f64)> = values
            .iter()
            .enumerate()
            .take(categories.len())
            .map(|(c, value)| {
                (
                    LEFT + (c as f64 + 0.5) * group_w,
                    HEIGHT - BOTTOM - value / y_top * plot_h,
                )
            })
            .collect();
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = writeln!(
            out,
            r##"<polyline fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="6 4" points="{p}"/>"##,
            p = path.join(" "),
        );
        for (x, y) in points {
            let _ = writeln!(
                out,
                r##"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="{colour}"/>"##
            );
        }
    }
    let names: Vec<&str> = series
        .iter()
        .chain(lines)
        .map(|(n, _)| n.as_str())
        .collect();
    legend(&mut out, &names);
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round_numbers() {
        assert_eq!(nice_step(100.0, 5.0), 20.0);
        assert_eq!(nice_step(7.0, 5.0), 2.0);
        assert_eq!(nice_step(0.3, 5.0), 0.1);
    }

    #[test]
    fn a_bar_chart_with_a_line_draws_one_point_per_category_and_names_it() {
        let categories = vec!["1".to_owned(), "8".to_owned()];
        let svg = bar_chart_with_lines(
            "orders/s",
            "shards",
            "orders/s",
            &categories,
            &[("lock-free".into(), vec![50.0, 180.0])],
            &[("allowed".into(), vec![60.0, 200.0])],
        );
        assert_eq!(
            svg.matches("<rect x=").count(),
            2 + 2,
            "bars and legend keys"
        );
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains("stroke-dasharray") && svg.contains(">allowed<"));
    }

    #[test]
    fn a_line_chart_is_one_svg_with_a_polyline_per_series_and_a_legend() {
        let svg = line_chart(
            "orders/s",
            "s",
            "orders/s",
            &[
                Series {
                    name: "locks on".into(),
                    points: vec![(0.0, 1.0), (1.0, 3.0)],
                },
                Series {
                    name: "locks off".into(),
                    points: vec![(0.0, 2.0), (1.0, 4.0)],
                },
            ],
        );
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("locks off"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }
}
