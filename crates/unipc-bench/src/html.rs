//! `--html FILE`: one self-contained page (no scripts, no external files)
//! with SVG charts — latency per facility, throughput against message size
//! on log scales — the figures table and the properties table.

use std::fmt::Write as _;

use crate::report::{Measurement, Outcome, Placement, Report, Sample, WaitMode, Workload};
use crate::text::{bytes, nanos, rate};

const PALETTE: &[&str] = &[
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn scenario_label(wait: WaitMode, placement: Placement) -> &'static str {
    match (wait, placement) {
        (WaitMode::Blocking, Placement::CrossCpu) => "blocking, different CPUs",
        (WaitMode::Blocking, Placement::SameCpu) => "blocking, same CPU",
        (WaitMode::BusyPoll, Placement::CrossCpu) => "busy-poll, different CPUs",
        (WaitMode::BusyPoll, Placement::SameCpu) => "busy-poll, same CPU",
    }
}

fn measured(m: &Measurement) -> Option<&Sample> {
    match &m.outcome {
        Outcome::Measured(f) => Some(&f.unipc),
        Outcome::Skipped(_) => None,
    }
}

fn facilities(report: &Report) -> Vec<&'static str> {
    let mut names = Vec::new();
    for r in &report.results {
        if !names.contains(&r.facility) {
            names.push(r.facility);
        }
    }
    names
}

fn scenarios(report: &Report) -> Vec<(WaitMode, Placement)> {
    let mut list = Vec::new();
    for r in &report.results {
        if measured(r).is_some() && !list.contains(&(r.wait, r.placement)) {
            list.push((r.wait, r.placement));
        }
    }
    list
}

/// Horizontal bars of p50 round trip at the smallest latency size, one
/// group per facility and one bar per scenario, on a log scale.
fn latency_chart(report: &Report) -> String {
    let Some(size) = report.settings.latency_sizes.iter().min().copied() else {
        return String::new();
    };
    let names = facilities(report);
    let scen = scenarios(report);
    let values: Vec<f64> = report
        .results
        .iter()
        .filter(|r| r.workload == Workload::Latency && r.size == size)
        .filter_map(|r| measured(r).map(|s| s.headline().median))
        .collect();
    if values.is_empty() {
        return String::new();
    }
    let (lo, hi) = log_bounds(&values);
    let bar_h = 10.0;
    let group_h = bar_h * scen.len() as f64 + 8.0;
    let (left, width) = (130.0, 520.0);
    let height = group_h * names.len() as f64 + 60.0;
    let x = |v: f64| left + (v.log10() - lo) / (hi - lo) * width;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" font-family="sans-serif" font-size="11">"#,
        left + width + 50.0
    );
    for decade in (lo as i32)..=(hi as i32) {
        let v = 10f64.powi(decade);
        let _ = write!(
            svg,
            r##"<line x1="{0}" x2="{0}" y1="20" y2="{1}" stroke="#ddd"/><text x="{0}" y="14" text-anchor="middle">{2}</text>"##,
            x(v),
            height - 30.0,
            decade_label(v)
        );
    }
    for (gi, name) in names.iter().enumerate() {
        let y0 = 24.0 + gi as f64 * group_h;
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            left - 6.0,
            y0 + group_h / 2.0,
            esc(name)
        );
        for (si, (wait, placement)) in scen.iter().enumerate() {
            let found = report.results.iter().find(|r| {
                r.facility == *name
                    && r.workload == Workload::Latency
                    && r.size == size
                    && r.wait == *wait
                    && r.placement == *placement
            });
            if let Some(v) = found.and_then(measured).map(|s| s.headline().median) {
                let _ = write!(
                    svg,
                    r#"<rect x="{left}" y="{}" width="{:.1}" height="{}" fill="{}"><title>{} {}: {}</title></rect>"#,
                    y0 + si as f64 * bar_h,
                    (x(v) - left).max(1.0),
                    bar_h - 1.0,
                    PALETTE[si % PALETTE.len()],
                    esc(name),
                    scenario_label(*wait, *placement),
                    nanos(v)
                );
            }
        }
    }
    for (si, (wait, placement)) in scen.iter().enumerate() {
        let lx = left + si as f64 * 180.0;
        let _ = write!(
            svg,
            r#"<rect x="{lx}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}">{}</text>"#,
            height - 20.0,
            PALETTE[si % PALETTE.len()],
            lx + 14.0,
            height - 11.0,
            scenario_label(*wait, *placement)
        );
    }
    svg.push_str("</svg>");
    format!(
        "<h2>Latency per facility ({} messages, p50 round trip, log scale)</h2>{svg}",
        bytes(size)
    )
}

/// A decade tick: 100 ns, 1 µs, 10 µs, 1 ms.
fn decade_label(ns: f64) -> String {
    match ns {
        n if n < 1e3 => format!("{n:.0} ns"),
        n if n < 1e6 => format!("{:.0} µs", n / 1e3),
        n if n < 1e9 => format!("{:.0} ms", n / 1e6),
        n => format!("{:.0} s", n / 1e9),
    }
}

fn log_bounds(values: &[f64]) -> (f64, f64) {
    let min = values
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .max(1e-3);
    let max = values.iter().copied().fold(0.0, f64::max).max(min * 10.0);
    (min.log10().floor(), max.log10().ceil())
}

/// Throughput against message size, log-log, one line per facility.
fn throughput_chart(report: &Report, wait: WaitMode, placement: Placement) -> String {
    let rows: Vec<&Measurement> = report
        .results
        .iter()
        .filter(|r| {
            r.workload == Workload::Throughput && r.wait == wait && r.placement == placement
        })
        .collect();
    let values: Vec<f64> = rows
        .iter()
        .filter_map(|r| measured(r).map(|s| s.headline().median))
        .collect();
    let sizes: Vec<f64> = report
        .settings
        .throughput_sizes
        .iter()
        .map(|&s| s as f64)
        .collect();
    if values.is_empty() || sizes.len() < 2 {
        return String::new();
    }
    let (ylo, yhi) = log_bounds(&values);
    let (xlo, xhi) = (
        sizes.iter().copied().fold(f64::INFINITY, f64::min).log2(),
        sizes.iter().copied().fold(0.0, f64::max).log2(),
    );
    let (left, top, width, height) = (60.0, 20.0, 460.0, 240.0);
    let x = |s: f64| left + (s.log2() - xlo) / (xhi - xlo).max(1e-9) * width;
    let y = |v: f64| top + height - (v.log10() - ylo) / (yhi - ylo) * height;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="11">"#,
        left + width + 170.0,
        top + height + 40.0
    );
    for decade in (ylo as i32)..=(yhi as i32) {
        let v = 10f64.powi(decade);
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{1}" y2="{1}" stroke="#ddd"/><text x="{2}" y="{1}" text-anchor="end">{3}</text>"##,
            left + width,
            y(v),
            left - 4.0,
            rate(v)
        );
    }
    for &s in &sizes {
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            x(s),
            top + height + 16.0,
            bytes(s as usize)
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">message size</text>"#,
        left + width / 2.0,
        top + height + 34.0
    );
    for (i, name) in facilities(report).iter().enumerate() {
        let points: Vec<String> = rows
            .iter()
            .filter(|r| r.facility == *name)
            .filter_map(|r| {
                measured(r)
                    .map(|s| format!("{:.1},{:.1}", x(r.size as f64), y(s.headline().median)))
            })
            .collect();
        if points.is_empty() {
            continue;
        }
        let color = PALETTE[i % PALETTE.len()];
        let _ = write!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"><title>{}</title></polyline>"#,
            points.join(" "),
            esc(name)
        );
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" fill="{color}">{}</text>"#,
            left + width + 10.0,
            top + 12.0 + i as f64 * 14.0,
            esc(name)
        );
    }
    svg.push_str("</svg>");
    format!(
        "<h3>Throughput, MiB/s — {} (log-log)</h3>{svg}",
        scenario_label(wait, placement)
    )
}

fn figures_table(report: &Report) -> String {
    let mut html = String::from(
        "<table><tr><th>facility</th><th>scenario</th><th>workload</th><th>size</th><th>unipc</th><th>raw syscalls</th><th>overhead</th></tr>",
    );
    for r in &report.results {
        let (unipc, raw, overhead) = match &r.outcome {
            Outcome::Measured(f) => {
                let show = |s: &Sample| match s {
                    Sample::Latency {
                        p50,
                        p99,
                        p999,
                        max,
                        ..
                    } => format!(
                        "p50 {} · p99 {} · p99.9 {} · max {}",
                        nanos(p50.median),
                        nanos(p99.median),
                        nanos(p999.median),
                        nanos(max.median)
                    ),
                    Sample::Throughput {
                        mib_per_s,
                        messages_per_s,
                    } => format!(
                        "{} MiB/s ({}–{}) · {} msg/s",
                        rate(mib_per_s.median),
                        rate(mib_per_s.min),
                        rate(mib_per_s.max),
                        rate(messages_per_s.median)
                    ),
                };
                (
                    show(&f.unipc),
                    show(&f.raw),
                    format!(
                        "{} · {} pair(s){}",
                        esc(&f.overhead_label()),
                        f.pairs,
                        if f.wide_spread && !f.noisy {
                            " (wide spread)"
                        } else {
                            ""
                        }
                    ),
                )
            }
            Outcome::Skipped(why) => (
                format!("not measured: {}", esc(why)),
                String::new(),
                String::new(),
            ),
        };
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{:?}</td><td>{}</td><td>{unipc}</td><td>{raw}</td><td>{overhead}</td></tr>",
            esc(r.facility),
            scenario_label(r.wait, r.placement),
            r.workload,
            bytes(r.size)
        );
    }
    html.push_str("</table>");
    html
}

fn compare_table(report: &Report) -> String {
    let mut html = String::from(
        "<table><tr><th>facility</th><th>shape</th><th>direction</th><th>tags</th><th>peek</th><th>naming</th><th>reach</th><th>persistence</th><th>permissions</th><th>reliable</th><th>limits here</th></tr>",
    );
    for r in &report.compare {
        let limits: Vec<String> = r
            .max_message
            .iter()
            .map(|m| format!("largest message {}", esc(m)))
            .chain(
                r.limits
                    .iter()
                    .map(|l| format!("{} = {}", esc(&l.name), esc(&l.value))),
            )
            .collect();
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(r.name),
            r.shape,
            r.direction,
            r.tags,
            if r.peek { "yes" } else { "no" },
            esc(r.naming),
            r.reach,
            r.persistence,
            esc(r.permissions),
            if r.reliable { "yes" } else { "no" },
            limits.join("<br>")
        );
    }
    html.push_str("</table>");
    html
}

/// The whole page.
pub fn render(report: &Report) -> String {
    render_with(report, None)
}

/// The whole page, with a section for a comparison run
/// (`unipc bench --comparison FILE`) after the hand-off section.
pub fn render_with(report: &Report, comparison: Option<&crate::comparison::Comparison>) -> String {
    let m = &report.machine;
    let mut page = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>unipc bench</title><style>\
         body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;font-size:12px}\
         td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}th{background:#f3f3f3}pre{background:#f8f8f8;padding:1em}\
         </style></head><body><h1>unipc bench</h1>",
    );
    let _ = write!(
        page,
        "<p>{} · {} CPUs · {} · {}</p>",
        esc(&m.cpu_model),
        m.cores,
        esc(&m.kernel),
        esc(&crate::text::settings_line(&report.settings))
    );
    let _ = write!(page, "<pre>{}</pre>", esc(crate::text::SCENARIO_NOTES));
    page.push_str(&latency_chart(report));
    page.push_str("<h2>Throughput against message size</h2>");
    for (wait, placement) in scenarios(report) {
        page.push_str(&throughput_chart(report, wait, placement));
    }
    page.push_str("<h2>Figures</h2>");
    page.push_str(&figures_table(report));
    if let Some(section) = &report.copy_or_map {
        page.push_str("<h2>Copy or map</h2>");
        let _ = write!(
            page,
            "<pre>{}</pre>",
            esc(&crate::text::copy_or_map(section))
        );
    }
    if let Some(section) = &report.hand_off {
        page.push_str("<h2>Hand-off</h2>");
        let _ = write!(page, "<pre>{}</pre>", esc(&crate::text::hand_off(section)));
    }
    if let Some(c) = comparison {
        page.push_str(&crate::comparison::html(c));
    }
    page.push_str("<h2>How the facilities differ</h2>");
    page.push_str(&compare_table(report));
    page.push_str("</body></html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_and_text_are_safe_and_short() {
        assert_eq!(decade_label(100.0), "100 ns");
        assert_eq!(decade_label(10_000.0), "10 µs");
        assert_eq!(decade_label(1e6), "1 ms");
        assert_eq!(esc("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
    }
}
