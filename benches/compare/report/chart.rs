//! chart.svg (hand-written SVG): time to final, requests and host CPU per write at 20 ms, a
//! log-scale panel each, a bar per compared contender and scenario.

use std::fmt::Write as _;

use crate::contenders::{Contender, compared};
use crate::plan::Case;
use crate::report::format::{fmt_count, fmt_num, fmt_short, opt};
use crate::report::stats::{Cell, Results, reqs, ttf};
use crate::workload::Sizes;

const LEFT: f64 = 70.0;
const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 200.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

struct Bar {
    color: &'static str,
    value: Option<f64>,
    note: String,
    /// some final content never arrived: the bar is hatched
    incomplete: bool,
}

/// A group label and its bars.
type Group = (String, Vec<Bar>);

pub fn write_chart(sizes: &Sizes, res: &Results, plan: &[Case]) -> String {
    let lat = 20;
    let cases: Vec<&Case> = plan.iter().filter(|(_, l, _)| *l == lat).collect();
    let group = |f: &dyn Fn(&Cell) -> (Option<f64>, String)| groups(sizes, res, &cases, f);
    let time = group(&|cell| {
        let t = cell.median(ttf, true).filter(|t| t.is_finite());
        let finals = cell
            .median(|r| Some(r.keys_final as f64), false)
            .unwrap_or(0.0);
        match t {
            Some(t) => (Some(t), format!("{} ms", fmt_num(t))),
            None => {
                let expected = cell.runs[0].keys_expected;
                (
                    None,
                    format!("DNF: {} of {expected} final", fmt_count(finals)),
                )
            }
        }
    });
    let requests = group(&|cell| {
        let v = cell.median(reqs, false);
        (v, format!("{} requests", opt(v, fmt_count)))
    });
    let cpu = group(&|cell| {
        let v = cell.median(|r| r.host_cpu_us(), false);
        (v, format!("{} µs", opt(v, fmt_num)))
    });
    let mut body = String::new();
    let mut y = 56.0;
    y = panel(
        &mut body,
        y,
        "Time until the service holds every final content, ms (log scale)",
        &time,
        fmt_short,
    );
    y = panel(
        &mut body,
        y,
        "/share_sync requests sent (log scale)",
        &requests,
        |x| {
            if x >= 10_000.0 {
                fmt_short(x)
            } else {
                fmt_count(x)
            }
        },
    );
    y = panel(
        &mut body,
        y,
        "Host thread CPU per write, µs (log scale; the JS thread in Bun/Node, the writer threads in C)",
        &cpu,
        fmt_num,
    );
    frame(y, &body)
}

/// One group per case, one bar per compared contender ("not run" where it did not run).
fn groups(
    sizes: &Sizes,
    res: &Results,
    cases: &[&Case],
    f: &dyn Fn(&Cell) -> (Option<f64>, String),
) -> Vec<Group> {
    let bar = |sc: &str, lat: u64, cs: &[&Contender], c: &Contender| {
        let cell = cs
            .iter()
            .any(|x| x.id == c.id)
            .then(|| res.cell(sc, lat, c.id))
            .flatten();
        let Some(cell) = cell else {
            return Bar {
                color: c.color,
                value: None,
                note: "not run".into(),
                incomplete: false,
            };
        };
        let (value, note) = f(&cell);
        let incomplete = cell.median(ttf, true).is_none_or(|t| !t.is_finite());
        Bar {
            color: c.color,
            value,
            note: format!("{} {}", c.label, note),
            incomplete,
        }
    };
    cases
        .iter()
        .map(|(sc, lat, cs)| {
            let bars = compared().map(|c| bar(sc, *lat, cs, c)).collect();
            ((crate::scenarios::get(sc).label)(sizes), bars)
        })
        .collect()
}

/// The SVG around the panels: size, patterns, styles, title, legend.
fn frame(y: f64, body: &str) -> String {
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="960" height="{:.0}" viewBox="0 0 960 {:.0}" font-family="Helvetica, Arial, sans-serif">"##,
        y + 10.0,
        y + 10.0
    );
    let _ = writeln!(
        svg,
        r##"<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#999" stroke-width="2"/></pattern></defs>
<style>.title{{font-size:13px;font-weight:bold;fill:#222}}.axis{{font-size:10px;fill:#555}}.val{{font-size:9px;fill:#333}}.group{{font-size:12px;fill:#222}}.grid{{stroke:#ddd;stroke-width:1}}.dnf{{font-size:10px;fill:#444}}.legend{{font-size:12px;fill:#222}}</style>
<rect width="100%" height="100%" fill="white"/>"##
    );
    let _ = writeln!(
        svg,
        r#"<text x="70" y="18" class="title">opencode-share vs the original Share module — service latency 20 ms, medians</text>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="70" y="56" class="axis">hatched: some final content never arrived (the original stops sending at the first connection reset)</text>"#
    );
    let mut x = 70.0;
    for c in compared() {
        let _ = writeln!(
            svg,
            r#"<rect x="{x}" y="26" width="12" height="12" fill="{}"/><text x="{}" y="36" class="legend">{}</text>"#,
            c.color,
            x + 16.0,
            esc(c.label)
        );
        x += 150.0;
    }
    svg.push_str(body);
    svg.push_str("</svg>\n");
    svg
}

/// A log-scale vertical axis from decade `lo` to decade `hi`, `top` px down.
struct Axis {
    top: f64,
    lo: f64,
    hi: f64,
}

impl Axis {
    fn y(&self, v: f64) -> f64 {
        self.top + HEIGHT - (v.log10() - self.lo) / (self.hi - self.lo) * HEIGHT
    }
}

/// One panel at `y0`; returns where the next one starts.
fn panel(svg: &mut String, y0: f64, title: &str, groups: &[Group], fmt: fn(f64) -> String) -> f64 {
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="{}" class="title">{}</text>"#,
        y0 + 16.0,
        esc(title)
    );
    let top = y0 + 30.0;
    let vals: Vec<f64> = groups
        .iter()
        .flat_map(|(_, bs)| bs.iter().filter_map(|b| b.value))
        .filter(|v| *v > 0.0 && v.is_finite())
        .collect();
    if vals.is_empty() {
        return top + 20.0;
    }
    let lo = vals
        .iter()
        .cloned()
        .fold(f64::INFINITY, f64::min)
        .log10()
        .floor();
    let hi = vals
        .iter()
        .cloned()
        .fold(0.0, f64::max)
        .log10()
        .ceil()
        .max(lo + 1.0);
    let axis = Axis { top, lo, hi };
    grid(svg, &axis);
    let gw = WIDTH / groups.len() as f64;
    for (gi, (label, bars)) in groups.iter().enumerate() {
        let gx = LEFT + gi as f64 * gw;
        let bw = (gw - 30.0) / bars.len().max(1) as f64;
        for (bi, b) in bars.iter().enumerate() {
            bar(svg, &axis, gx + 15.0 + bi as f64 * bw, bw - 3.0, b, fmt);
        }
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" class="group" text-anchor="middle">{}</text>"#,
            gx + gw / 2.0,
            top + HEIGHT + 18.0,
            esc(label)
        );
    }
    top + HEIGHT + 36.0
}

/// The decade lines and their labels.
fn grid(svg: &mut String, axis: &Axis) {
    let mut d = axis.lo;
    while d <= axis.hi + 1e-9 {
        let tick = 10f64.powf(d);
        let y = axis.y(tick);
        let _ = writeln!(
            svg,
            r#"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" class="grid"/>"#,
            LEFT + WIDTH
        );
        let label = if tick >= 1.0 {
            fmt_count(tick)
        } else {
            format!("{tick}")
        };
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{:.1}" class="axis" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            y + 4.0,
            label
        );
        d += 1.0;
    }
}

/// One bar of width `w` at `x`: its value and label, or a hatched full-height "no value".
fn bar(svg: &mut String, axis: &Axis, x: f64, w: f64, b: &Bar, fmt: fn(f64) -> String) {
    let top = axis.top;
    let Some(v) = b.value.filter(|v| *v > 0.0 && v.is_finite()) else {
        let _ = writeln!(
            svg,
            r#"<rect x="{x:.1}" y="{top:.1}" width="{w:.1}" height="{HEIGHT:.1}" fill="url(#hatch)" stroke="{}" stroke-width="1"><title>{}</title></rect>"#,
            b.color,
            esc(&b.note)
        );
        let (cx, cy) = (x + w / 2.0 + 4.0, top + HEIGHT / 2.0);
        let _ = writeln!(
            svg,
            r#"<text x="{cx:.1}" y="{cy:.1}" class="dnf" text-anchor="middle" transform="rotate(-90 {cx:.1} {cy:.1})">{}</text>"#,
            esc(&b.note)
        );
        return;
    };
    let y = axis.y(v);
    let h = top + HEIGHT - y;
    let _ = writeln!(
        svg,
        r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{}"><title>{}</title></rect>"#,
        b.color,
        esc(&b.note)
    );
    if b.incomplete {
        let _ = writeln!(
            svg,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="url(#hatch)"/>"#
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" class="val" text-anchor="middle">{}</text>"#,
        x + w / 2.0,
        y - 3.0,
        esc(&fmt(v))
    );
}
