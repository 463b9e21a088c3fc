//! The results drawn as one SVG: the ratios baseline/peer on a logarithmic axis, then
//! the metadata figures (ops/s) and the stream figures (MB/s) of every server.
//!
//! Written by hand: a few rectangles and labels need no plotting library.

use std::fmt::Write as _;

use super::report::{format_ratio, Report};
use super::workload::Unit;

const WIDTH: f64 = 960.0;
const LABEL_W: f64 = 190.0;
const VALUE_W: f64 = 110.0;
const BAR_H: f64 = 11.0;
const GROUP_GAP: f64 = 8.0;
const PANEL_TOP: f64 = 56.0;
const AXIS_H: f64 = 30.0;
const COLORS: [&str; 8] = [
    "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666",
];

/// One bar: which series (server) it belongs to, and its value if measured.
struct Bar {
    series: usize,
    value: Option<f64>,
    text: String,
}

/// One figure's bars.
struct Group {
    label: String,
    bars: Vec<Bar>,
}

/// How values map to bar lengths.
#[derive(Clone, Copy)]
enum Scale {
    /// From 0 to the largest value.
    Linear,
    /// Logarithmic around 1, with bars drawn from 1 towards the value.
    RatioLog,
}

/// The whole chart of `report`.
pub fn svg(report: &Report) -> String {
    let names: Vec<String> = report.servers.iter().map(|s| s.name.clone()).collect();
    let base = names.first().cloned().unwrap_or_default();
    let mut panels = Vec::new();

    if names.len() > 1 {
        let groups = report
            .figures
            .iter()
            .map(|f| Group {
                label: f.figure.clone(),
                bars: f
                    .ratios
                    .iter()
                    .enumerate()
                    .map(|(i, r)| Bar {
                        series: i + 1,
                        value: r.ratio,
                        text: r.ratio.map(format_ratio).unwrap_or("-".into()),
                    })
                    .collect(),
            })
            .collect();
        panels.push((
            format!("{base}/peer (log scale; right of 1: {base} is faster)"),
            groups,
            Scale::RatioLog,
        ));
    }
    for (unit, title) in [
        (Unit::OpsPerSec, "metadata operations per second"),
        (
            Unit::MegabytesPerSec,
            "sequential streams, MB/s (10^6 bytes)",
        ),
    ] {
        let groups: Vec<Group> = report
            .figures
            .iter()
            .filter(|f| f.unit == unit)
            .map(|f| Group {
                label: f.figure.clone(),
                bars: f
                    .results
                    .iter()
                    .enumerate()
                    .map(|(i, r)| Bar {
                        series: i,
                        value: r.value,
                        text: match (r.value, unit) {
                            (Some(v), Unit::OpsPerSec) => format!("{v:.0}"),
                            (Some(v), Unit::MegabytesPerSec) => format!("{v:.1}"),
                            (None, _) => "-".into(),
                        },
                    })
                    .collect(),
            })
            .collect();
        if !groups.is_empty() {
            panels.push((title.to_owned(), groups, Scale::Linear));
        }
    }

    let mut body = String::new();
    let mut y = PANEL_TOP;
    for (title, groups, scale) in &panels {
        y = panel(&mut body, y, title, groups, *scale) + 24.0;
    }
    let height = y;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="100%" height="100%" fill="white"/><text x="10" y="20" font-size="15" font-weight="bold">ninep-bench: {}</text>"#,
        escape(&names.join(", "))
    );
    legend(&mut out, &names);
    out.push_str(&body);
    out.push_str("</svg>\n");
    out
}

fn legend(out: &mut String, names: &[String]) {
    let mut x = 10.0;
    for (i, name) in names.iter().enumerate() {
        let _ = writeln!(
            out,
            r#"<rect x="{x}" y="30" width="12" height="12" fill="{}"/><text x="{}" y="40">{}</text>"#,
            COLORS[i % COLORS.len()],
            x + 16.0,
            escape(name)
        );
        x += 28.0 + 7.0 * name.len() as f64;
    }
}

/// Draws one panel starting at `top`; returns the y below it.
fn panel(out: &mut String, top: f64, title: &str, groups: &[Group], scale: Scale) -> f64 {
    let plot_x = LABEL_W;
    let plot_w = WIDTH - LABEL_W - VALUE_W;
    let values = groups
        .iter()
        .flat_map(|g| g.bars.iter().filter_map(|b| b.value))
        .filter(|v| v.is_finite() && *v > 0.0);
    let (lo, hi) = match scale {
        Scale::Linear => (0.0, values.fold(0.0, f64::max).max(1e-9)),
        Scale::RatioLog => {
            // Symmetric around 1, whole powers of two, at least 1/2..2.
            let widest = values.fold(2.0f64, |m, v| m.max(v).max(1.0 / v));
            let pow = widest.log2().ceil();
            (2f64.powf(-pow), 2f64.powf(pow))
        }
    };
    let x_of = |v: f64| -> f64 {
        let frac = match scale {
            Scale::Linear => v / hi,
            Scale::RatioLog => (v.ln() - lo.ln()) / (hi.ln() - lo.ln()),
        };
        plot_x + plot_w * frac.clamp(0.0, 1.0)
    };
    let _ = writeln!(
        out,
        r#"<text x="10" y="{}" font-size="13" font-weight="bold">{}</text>"#,
        top + 14.0,
        escape(title)
    );
    let plot_top = top + 24.0;
    let mut y = plot_top;
    for g in groups {
        let group_h = BAR_H * g.bars.len().max(1) as f64;
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            plot_x - 6.0,
            y + group_h / 2.0 + 4.0,
            escape(&g.label)
        );
        for (i, b) in g.bars.iter().enumerate() {
            let by = y + BAR_H * i as f64;
            let color = COLORS[b.series % COLORS.len()];
            if let Some(v) = b.value.filter(|v| v.is_finite() && *v > 0.0) {
                let (x0, x1) = match scale {
                    Scale::Linear => (x_of(0.0), x_of(v)),
                    Scale::RatioLog => {
                        let (a, c) = (x_of(1.0), x_of(v));
                        (a.min(c), a.max(c))
                    }
                };
                let _ = writeln!(
                    out,
                    r#"<rect x="{x0:.1}" y="{by:.1}" width="{:.1}" height="{:.1}" fill="{color}"/>"#,
                    (x1 - x0).max(0.5),
                    BAR_H - 2.0
                );
            }
            let _ = writeln!(
                out,
                r#"<text x="{}" y="{:.1}" font-size="9" fill="{color}">{}</text>"#,
                plot_x + plot_w + 6.0,
                by + BAR_H - 3.0,
                escape(&b.text)
            );
        }
        y += group_h + GROUP_GAP;
    }
    let plot_bottom = y - GROUP_GAP / 2.0;
    // Axis, ticks and grid lines.
    let _ = writeln!(
        out,
        r##"<line x1="{plot_x}" y1="{plot_bottom}" x2="{}" y2="{plot_bottom}" stroke="#333"/>"##,
        plot_x + plot_w
    );
    for t in ticks(scale, lo, hi) {
        let x = x_of(t);
        let (stroke, width) = if matches!(scale, Scale::RatioLog) && t == 1.0 {
            ("#000", 1.5)
        } else {
            ("#ccc", 0.5)
        };
        let _ = writeln!(
            out,
            r#"<line x1="{x:.1}" y1="{plot_top}" x2="{x:.1}" y2="{plot_bottom}" stroke="{stroke}" stroke-width="{width}"/><text x="{x:.1}" y="{}" text-anchor="middle" font-size="10">{}</text>"#,
            plot_bottom + 13.0,
            tick_label(t)
        );
    }
    plot_bottom + AXIS_H
}

/// Tick positions: 1-2-5 steps for a linear axis, powers of two for ratios.
fn ticks(scale: Scale, lo: f64, hi: f64) -> Vec<f64> {
    match scale {
        Scale::RatioLog => {
            let mut v = lo;
            let mut out = Vec::new();
            while v <= hi * 1.0001 {
                out.push(v);
                v *= 2.0;
            }
            out
        }
        Scale::Linear => {
            let raw = hi / 5.0;
            let mag = 10f64.powf(raw.log10().floor());
            let step = [1.0, 2.0, 5.0, 10.0]
                .into_iter()
                .map(|m| m * mag)
                .find(|s| *s >= raw)
                .unwrap_or(10.0 * mag);
            (0..)
                .map(|i| i as f64 * step)
                .take_while(|t| *t <= hi * 1.0001)
                .collect()
        }
    }
}

fn tick_label(t: f64) -> String {
    if t == 0.0 {
        "0".into()
    } else if t >= 1e6 {
        format!("{}M", t / 1e6)
    } else if t >= 1e3 {
        format!("{}k", t / 1e3)
    } else if t >= 1.0 {
        format!("{t}")
    } else {
        format!("1/{}", (1.0 / t).round())
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ticks_are_round_and_cover_the_range() {
        assert_eq!(
            ticks(Scale::Linear, 0.0, 1000.0),
            [0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]
        );
        let t = ticks(Scale::Linear, 0.0, 37.0);
        assert_eq!(t.first(), Some(&0.0));
        assert!(t.len() >= 3 && *t.last().unwrap() <= 37.0);
    }

    #[test]
    fn ratio_ticks_are_powers_of_two_around_one() {
        assert_eq!(
            ticks(Scale::RatioLog, 0.25, 4.0),
            [0.25, 0.5, 1.0, 2.0, 4.0]
        );
        assert_eq!(tick_label(0.25), "1/4");
        assert_eq!(tick_label(2.0), "2");
        assert_eq!(tick_label(25000.0), "25k");
    }

    #[test]
    fn names_are_escaped() {
        assert_eq!(escape("a<b&\"c\""), "a&lt;b&amp;&quot;c&quot;");
    }
}
