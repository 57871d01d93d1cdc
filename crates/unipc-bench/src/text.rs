//! Plain-text rendering: aligned grids and human units.

use crate::report::{Measurement, Outcome, Placement, Report, Sample, WaitMode, Workload};

/// Aligns `rows` (the first is the header) into columns separated by two
/// spaces, with a rule under the header.
pub fn grid(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            out.push_str(&rule.join("  "));
            out.push('\n');
        }
    }
    out
}

/// 64 B, 4 KiB, 1 MiB.
pub fn bytes(n: usize) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n % (1 << 10) == 0 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

/// Nanoseconds as ns, µs or ms with three significant figures.
pub fn nanos(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.3} µs", ns / 1_000.0)
    } else {
        format!("{:.3} ms", ns / 1_000_000.0)
    }
}

/// A rate with three significant figures.
pub fn rate(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// What each scenario shows, for the reader of the report.
pub const SCENARIO_NOTES: &str = "\
How to read this:
- blocking, different CPUs: each side sleeps in the kernel; every hand-off wakes an idle CPU.
  On a virtual machine that wake-up dominates and costs about the same for every facility.
- blocking, same CPU: the wake-up is a context switch on one CPU; the facilities' own costs show.
- busy-poll, different CPUs: each side spins on non-blocking calls; no sleeps, so this is the
  facility's path through the kernel and the cache-line transfer between CPUs.
- latency is the round trip (send, then receive the echo); one-way is about half.
- overhead (xN.NN) is unipc's time over the same loop on the raw system calls, in the same run:
  the median over pairs of windows run back to back, one through unipc and one raw.
- 'noisy (spread N%)' replaces the overhead when those pairs' ratios still disagree by more
  than the run's noise limit after the figure's time budget: the machine was too busy for
  the ratio to mean anything. Rerun on an idle machine.
- '~' marks a figure whose repetitions spread by more than 25 % of the median: rerun or pin CPUs.";

fn scenario_title(workload: Workload, wait: WaitMode, placement: Placement) -> String {
    format!(
        "{} — {}, {}",
        match workload {
            Workload::Latency => "Latency (round trip, p50; p99 in brackets)",
            Workload::Throughput => "Throughput (MiB/s, one way)",
        },
        match wait {
            WaitMode::Blocking => "blocking",
            WaitMode::BusyPoll => "busy-poll",
        },
        match placement {
            Placement::CrossCpu => "processes on different CPUs",
            Placement::SameCpu => "both processes on one CPU",
        }
    )
}

fn cell(m: &Measurement, notes: &mut Vec<String>) -> String {
    match &m.outcome {
        Outcome::Measured(f) => {
            let figure = match &f.unipc {
                Sample::Latency { p50, p99, .. } => {
                    format!("{} ({})", nanos(p50.median), nanos(p99.median))
                }
                Sample::Throughput { mib_per_s, .. } => rate(mib_per_s.median),
            };
            format!(
                "{figure} {}{}",
                f.overhead_label(),
                if f.wide_spread && !f.noisy { " ~" } else { "" }
            )
        }
        Outcome::Skipped(why) => {
            let note = format!("{}: {why}", m.facility);
            let index = match notes.iter().position(|n| *n == note) {
                Some(i) => i,
                None => {
                    notes.push(note);
                    notes.len() - 1
                }
            };
            format!("— [{}]", index + 1)
        }
    }
}

/// How the figures were taken, in one sentence (for the text and HTML
/// reports).
pub fn settings_line(st: &crate::report::Settings) -> String {
    let mut line = format!(
        "{} repetition(s) of {} ms per latency figure, throughput in {} ms windows",
        st.repetitions, st.budget_ms, st.throughput_window_ms
    );
    if st.latency_figure_budget_ms > 0 || st.throughput_figure_budget_ms > 0 {
        line.push_str(&format!(
            "; more pairs (up to {} / {} ms a latency / throughput figure) until they agree \
             within {:.0}%",
            st.latency_figure_budget_ms,
            st.throughput_figure_budget_ms,
            st.noise_limit * 100.0
        ));
    }
    line
}

/// The report as text tables, one per workload and scenario.
pub fn render_report(report: &Report) -> String {
    let m = &report.machine;
    let mut out = format!(
        "unipc bench — {} ({} CPUs), {}\n",
        m.cpu_model, m.cores, m.kernel
    );
    out.push_str(&format!(
        "{}; CPUs {}\n\n",
        settings_line(&report.settings),
        match report.settings.cpus {
            Some((a, b)) => format!("{a} and {b}"),
            None => "left to the scheduler".to_owned(),
        }
    ));
    let mut facilities: Vec<&str> = Vec::new();
    for r in &report.results {
        if !facilities.contains(&r.facility) {
            facilities.push(r.facility);
        }
    }
    let mut scenarios: Vec<(Workload, WaitMode, Placement)> = Vec::new();
    for r in &report.results {
        let key = (r.workload, r.wait, r.placement);
        if !scenarios.contains(&key) {
            scenarios.push(key);
        }
    }
    scenarios.sort_by_key(|(w, _, _)| *w == Workload::Throughput);
    let mut notes = Vec::new();
    for (workload, wait, placement) in scenarios {
        let rows: Vec<&Measurement> = report
            .results
            .iter()
            .filter(|r| r.workload == workload && r.wait == wait && r.placement == placement)
            .collect();
        if rows
            .iter()
            .all(|r| matches!(r.outcome, Outcome::Skipped(_)))
        {
            let why = match &rows[0].outcome {
                Outcome::Skipped(why) => why.clone(),
                Outcome::Measured(_) => String::new(),
            };
            out.push_str(&format!(
                "{}: not measured — {why}\n\n",
                scenario_title(workload, wait, placement)
            ));
            continue;
        }
        let mut sizes: Vec<usize> = rows.iter().map(|r| r.size).collect();
        sizes.sort_unstable();
        sizes.dedup();
        let mut table = vec![std::iter::once("facility".to_owned())
            .chain(sizes.iter().map(|s| bytes(*s)))
            .collect()];
        for facility in &facilities {
            let mut line = vec![facility.to_string()];
            for size in &sizes {
                let found = rows
                    .iter()
                    .find(|r| r.facility == *facility && r.size == *size);
                line.push(found.map(|m| cell(m, &mut notes)).unwrap_or_default());
            }
            table.push(line);
        }
        out.push_str(&scenario_title(workload, wait, placement));
        out.push('\n');
        out.push_str(&grid(&table));
        out.push('\n');
    }
    if !notes.is_empty() {
        out.push_str("Not measured:\n");
        for (i, note) in notes.iter().enumerate() {
            out.push_str(&format!("  [{}] {note}\n", i + 1));
        }
        out.push('\n');
    }
    if let Some(section) = &report.copy_or_map {
        out.push_str(&copy_or_map(section));
        out.push('\n');
    }
    if let Some(section) = &report.hand_off {
        out.push_str(&hand_off(section));
        out.push('\n');
    }
    if !report.results.is_empty() {
        out.push_str(SCENARIO_NOTES);
        out.push('\n');
    }
    out
}

/// The copy-or-map section as a table: one row per method, one column per
/// size, the median time of one hand-off, and the crossovers.
pub fn copy_or_map(section: &crate::copymap::CopyOrMap) -> String {
    use crate::copymap::Method;
    let title = "Copy or map: N bytes to another process once, median time to the peer's ack";
    if let Some(why) = &section.skipped {
        return format!("{title}: not measured — {why}\n");
    }
    let mut table = vec![std::iter::once("method".to_owned())
        .chain(section.sizes.iter().map(|s| bytes(*s)))
        .collect::<Vec<_>>()];
    for method in Method::ALL {
        let mut line = vec![method.name().to_owned()];
        for &size in &section.sizes {
            line.push(section.median(method, size).map(nanos).unwrap_or_default());
        }
        table.push(line);
    }
    let crossover = |c: Option<usize>| c.map(bytes).unwrap_or_else(|| "none".to_owned());
    format!(
        "{title}\n{}crossover (smallest size where it beats the faster copy): \
         fresh memfd {}, reused mapping {}\n",
        grid(&table),
        crossover(section.crossover_fresh),
        crossover(section.crossover_reused)
    )
}

/// The hand-off section as a table: one row per primitive and scenario,
/// unipc's and the raw calls' median round trip and the ratio.
pub fn hand_off(section: &crate::handoff::HandOff) -> String {
    let title = "Hand-off: signal another process and be signalled back, median round trip";
    if let Some(why) = &section.skipped {
        return format!("{title}: not measured — {why}\n");
    }
    let mut table = vec![["primitive", "scenario", "unipc", "raw", "unipc/raw"]
        .map(str::to_owned)
        .to_vec()];
    for f in &section.figures {
        table.push(vec![
            f.primitive.name().to_owned(),
            scenario_short(f.wait, f.placement),
            nanos(f.unipc_p50_ns.median),
            nanos(f.raw_p50_ns.median),
            if f.noisy {
                "noisy".to_owned()
            } else {
                format!("×{:.2}", f.overhead)
            },
        ]);
    }
    let mut out = format!("{title}\n{}", grid(&table));
    for note in &section.notes {
        out.push_str(&format!("  {note}\n"));
    }
    out
}

/// A scenario in a few words ("busy-poll, 2 CPUs").
pub(crate) fn scenario_short(wait: WaitMode, placement: Placement) -> String {
    format!(
        "{}, {}",
        match wait {
            WaitMode::Blocking => "blocking",
            WaitMode::BusyPoll => "busy-poll",
        },
        match placement {
            Placement::CrossCpu => "2 CPUs",
            Placement::SameCpu => "1 CPU",
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_naturally() {
        assert_eq!(bytes(64), "64 B");
        assert_eq!(bytes(4096), "4 KiB");
        assert_eq!(bytes(1 << 20), "1 MiB");
        assert_eq!(nanos(950.0), "950 ns");
        assert_eq!(nanos(34_200.0), "34.200 µs");
    }

    #[test]
    fn grid_aligns_columns() {
        let g = grid(&[
            vec!["a".into(), "bb".into()],
            vec!["ccc".into(), "d".into()],
        ]);
        assert_eq!(g, "a    bb\n---  --\nccc  d\n");
    }
}
