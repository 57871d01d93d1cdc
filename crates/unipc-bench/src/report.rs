//! The report: every figure of one run, serialisable as the `--json` file.
//!
//! Shape (schema `unipc-bench/4`):
//!
//! ```text
//! { schema, started, machine: { cpu_model, cores, kernel, limits: [{ name, value, source }] },
//!   settings: { quick, repetitions, cpus, latency_sizes, throughput_sizes, budget_ms,
//!               throughput_window_ms, latency_figure_budget_ms,
//!               throughput_figure_budget_ms, noise_limit },
//!   results: [ { facility, wait, placement, workload, size, outcome } ],
//!   copy_or_map: null | { sizes, figures: [ { method, size, median_ns, min_ns, max_ns,
//!                                            repetitions } ],
//!                         crossover_fresh, crossover_reused, skipped },
//!   hand_off: null | { figures: [ { primitive, wait, placement, unipc_p50_ns, raw_p50_ns,
//!                                   overhead, ratio_spread, noisy, pairs } ],
//!                      notes, skipped },
//!   compare: [ { name, summary, addressing, properties..., limits: [...] } ] }
//! ```
//!
//! `outcome` is either
//! `{ "measured": { unipc, raw, overhead, wide_spread, pairs, ratio_spread, noisy } }`
//! or `{ "skipped": "why" }`. `unipc` and `raw` hold, per workload:
//! latency — `round_trip_ns` percentiles (`p50`, `p99`, `p999`, `max`), each a
//! `{ median, min, max }` over the repetitions, and `samples`; throughput —
//! `mib_per_s` and `messages_per_s`, each `{ median, min, max }`.
//!
//! Every repetition is a *pair*: one window through unipc and one through
//! the raw calls, back to back (in alternating order), so that load on the
//! machine hits both alike. `pairs` counts them; `overhead` is the median
//! over the pairs of unipc's time over the raw loop's in that pair
//! (1.00 = no overhead; for throughput, raw rate over unipc's rate).
//! `ratio_spread` is how much those per-pair ratios disagree: the range of
//! the middle ratios (a fifth trimmed from each end) over their median, or
//! `null` with a single pair. A figure gets more pairs, up to
//! `latency_figure_budget_ms` or `throughput_figure_budget_ms` in all,
//! until `ratio_spread` is at most `noise_limit`; `noisy` is true when it is still above: such an
//! `overhead` is not a figure to compare, and the reports say "noisy"
//! instead of printing it. `wide_spread` is true when either side's
//! headline figure varies by more than 25 % of its median over the pairs.
//!
//! `copy_or_map` is `null` when the section did not run (a `--quick` run or
//! `--facility` without `copy-or-map`). Each figure is the time, in
//! nanoseconds, from the first call to the peer's one-byte acknowledgement
//! after it has read every byte, for `method` `pipe`, `unix-stream`
//! (copies), `fresh-memfd` (create, write, seal, pass the descriptor, the
//! peer maps, checksums, unmaps) or `reused-mapping` (a copy into a mapping
//! both sides hold, a one-byte notification, the peer's checksum): median,
//! fastest and slowest of `repetitions` after one untimed warm-up.
//! `crossover_fresh` and `crossover_reused` are the smallest size at which
//! that method's median beats the faster copy's, or `null` when it does at
//! none of `sizes`. `skipped` says why `figures` is empty, when it is.
//!
//! `hand_off` is `null` when the section did not run. Each figure is one
//! synchronization primitive (`posix-sem`, `sysv-sem`, `eventfd`, `futex`,
//! `mutex-condvar`) in one scenario: the median round trip (the parent
//! signals, the peer wakes and signals back, the parent wakes) of each
//! window, as `{ median, min, max }` over the pairs, through unipc and
//! through the raw calls on the same objects; `overhead`, `ratio_spread`
//! and `noisy` as for the latency table. `notes` lists what was not
//! measured and why.
//!
//! Schema history: `unipc-bench/3` had no `hand_off`; `unipc-bench/2` had no `copy_or_map`; `unipc-bench/1` had no `pairs`, `ratio_spread`, `noisy`
//! or the four settings after `budget_ms`, and `overhead` was median over median.

use serde::Serialize;

/// The schema this version writes.
pub const SCHEMA: &str = "unipc-bench/4";

/// Everything one `unipc bench` run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// Seconds since the UNIX epoch when the run started.
    pub started: u64,
    /// The machine the figures come from.
    pub machine: Machine,
    /// How the run was set up.
    pub settings: Settings,
    /// One entry per facility, scenario, workload and size.
    pub results: Vec<Measurement>,
    /// The copy-or-map section, when it ran.
    pub copy_or_map: Option<crate::copymap::CopyOrMap>,
    /// The hand-off section, when it ran.
    pub hand_off: Option<crate::handoff::HandOff>,
    /// The properties table (`unipc compare`).
    pub compare: Vec<crate::compare::FacilityRow>,
}

/// The machine, as far as it matters to the figures.
#[derive(Debug, Serialize)]
pub struct Machine {
    /// From /proc/cpuinfo.
    pub cpu_model: String,
    /// CPUs this process may run on.
    pub cores: usize,
    /// `uname -sr`.
    pub kernel: String,
    /// Limits that shape the figures.
    pub limits: Vec<Limit>,
}

/// A system limit in force during the run.
#[derive(Debug, Serialize)]
pub struct Limit {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
    /// Where it is set.
    pub source: String,
}

/// The run's settings.
#[derive(Debug, Serialize)]
pub struct Settings {
    /// `--quick`.
    pub quick: bool,
    /// Repetitions of every measurement.
    pub repetitions: usize,
    /// The CPUs used: the parent's and the peer's when placed apart.
    pub cpus: Option<(usize, usize)>,
    /// Message sizes for latency.
    pub latency_sizes: Vec<usize>,
    /// Message sizes for throughput.
    pub throughput_sizes: Vec<usize>,
    /// Time spent on each measured latency loop, in milliseconds.
    pub budget_ms: u64,
    /// Time spent on each measured throughput window, in milliseconds.
    pub throughput_window_ms: u64,
    /// Time a latency figure may take in all, adding pairs until its
    /// ratios agree, in milliseconds.
    pub latency_figure_budget_ms: u64,
    /// The same for a throughput figure.
    pub throughput_figure_budget_ms: u64,
    /// The `ratio_spread` above which a figure is reported as noisy.
    pub noise_limit: f64,
}

/// How each side waits for data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitMode {
    /// Sleep in the kernel until data arrives.
    Blocking,
    /// Spin on non-blocking calls.
    BusyPoll,
}

/// Where the two processes run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// On two different CPUs.
    CrossCpu,
    /// Both on one CPU.
    SameCpu,
}

/// What is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Ping-pong round trips.
    Latency,
    /// One-way transfer.
    Throughput,
}

/// One facility, scenario, workload and size.
#[derive(Debug, Serialize)]
pub struct Measurement {
    /// Facility name.
    pub facility: &'static str,
    /// How the sides wait.
    pub wait: WaitMode,
    /// Where they run.
    pub placement: Placement,
    /// Latency or throughput.
    pub workload: Workload,
    /// Message size in bytes.
    pub size: usize,
    /// The figures, or why there are none.
    pub outcome: Outcome,
}

/// Figures, or the reason there are none.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Measured through unipc and through the raw system calls.
    Measured(Box<Figures>),
    /// Not measured, and why.
    Skipped(String),
}

/// The two sides of one measurement.
#[derive(Debug, Serialize)]
pub struct Figures {
    /// Through unipc's API.
    pub unipc: Sample,
    /// Through the system calls alone.
    pub raw: Sample,
    /// unipc's time over the raw loop's: the median of the per-pair ratios.
    pub overhead: f64,
    /// Whether either side's repetitions disagree by more than 25 % of the
    /// median.
    pub wide_spread: bool,
    /// Repetitions: windows through unipc and through the raw calls, back
    /// to back.
    pub pairs: usize,
    /// How much the per-pair ratios disagree ([`ratio_spread`]); `None`
    /// with one pair.
    pub ratio_spread: Option<f64>,
    /// Whether `ratio_spread` exceeds the run's noise limit: `overhead` is
    /// then too noisy to compare.
    pub noisy: bool,
}

impl Figures {
    /// The overhead as the reports show it: `x1.02`, or `noisy (spread 34%)`
    /// when the pairs disagree too much for the ratio to mean anything.
    pub fn overhead_label(&self) -> String {
        match self.ratio_spread {
            Some(spread) if self.noisy => format!("noisy (spread {:.0}%)", spread * 100.0),
            _ => format!("x{:.2}", self.overhead),
        }
    }
}

/// How much `ratios` disagree: sort them, drop a fifth from each end
/// (none of three or four), and divide the range of the rest by the median
/// of all. `None` for fewer than two.
///
/// ```
/// use unipc_bench::report::ratio_spread;
///
/// assert_eq!(ratio_spread(&[1.0]), None);
/// assert!((ratio_spread(&[0.9, 1.0, 1.1]).unwrap() - 0.2).abs() < 1e-9);
/// // One wild pair out of five does not make the figure noisy.
/// let s = ratio_spread(&[1.0, 1.01, 0.99, 1.0, 6.0]).unwrap();
/// assert!(s < 0.03, "{s}");
/// ```
pub fn ratio_spread(ratios: &[f64]) -> Option<f64> {
    if ratios.len() < 2 {
        return None;
    }
    let mut sorted = ratios.to_vec();
    sorted.sort_by(f64::total_cmp);
    let trim = sorted.len() / 5;
    let kept = &sorted[trim..sorted.len() - trim];
    let median = Spread::of(&sorted).median;
    if median <= 0.0 {
        return None;
    }
    Some((kept[kept.len() - 1] - kept[0]) / median)
}

/// The figures of one implementation over all repetitions.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sample {
    /// Round-trip times, in nanoseconds.
    Latency {
        /// Median round trip.
        p50: Spread,
        /// 99th percentile.
        p99: Spread,
        /// 99.9th percentile.
        p999: Spread,
        /// Slowest round trip.
        max: Spread,
        /// Round trips recorded, over all repetitions.
        samples: u64,
    },
    /// Transfer rates.
    Throughput {
        /// Mebibytes per second.
        mib_per_s: Spread,
        /// Messages per second.
        messages_per_s: Spread,
    },
}

/// Median, minimum and maximum of one figure over the repetitions.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Spread {
    /// Median.
    pub median: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
}

impl Spread {
    /// Summarises `values` (at least one).
    ///
    /// ```
    /// use unipc_bench::report::Spread;
    ///
    /// let s = Spread::of(&[30.0, 10.0, 20.0]);
    /// assert_eq!((s.median, s.min, s.max), (20.0, 10.0, 30.0));
    /// assert!(s.is_wide(0.25));
    /// ```
    pub fn of(values: &[f64]) -> Spread {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let mid = sorted.len() / 2;
        let median = if sorted.len() % 2 == 1 {
            sorted[mid]
        } else {
            (sorted[mid - 1] + sorted[mid]) / 2.0
        };
        Spread {
            median,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        }
    }

    /// Whether max and min differ by more than `fraction` of the median.
    pub fn is_wide(&self, fraction: f64) -> bool {
        self.median > 0.0 && (self.max - self.min) / self.median > fraction
    }
}

impl Sample {
    /// The figure that stands for the sample: p50 latency, or MiB/s.
    pub fn headline(&self) -> Spread {
        match self {
            Sample::Latency { p50, .. } => *p50,
            Sample::Throughput { mib_per_s, .. } => *mib_per_s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_the_middle() {
        let s = Spread::of(&[3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Spread::of(&[1.0, 3.0]).median, 2.0);
        assert!(Spread::of(&[1.0, 2.0, 10.0]).is_wide(0.25));
        assert!(!Spread::of(&[100.0, 101.0, 102.0]).is_wide(0.25));
    }
}
