//! The engine behind `unipc bench` and `unipc compare`.
//!
//! `unipc bench` measures every facility the library has between two real
//! processes, side by side in one run: round-trip latency (ping-pong, HDR
//! histogram) and one-way throughput, through unipc's API and through the
//! same loop written on the raw system calls, so unipc's overhead shows as
//! a ratio. Each facility is measured blocking and busy-polling, with the
//! processes on different CPUs and on one CPU, because on a virtual machine
//! a blocking wake-up across CPUs costs the same tens of microseconds
//! whatever the facility, and only the other scenarios tell them apart.
//!
//! The runner finds facilities through [`unipc::facility::all`]; a facility
//! joins the bench by publishing a [`unipc::facility::Facility`].
#![deny(unsafe_code)]
#![deny(missing_docs)]

use std::time::Duration;

pub mod compare;
pub mod comparison;
pub mod copymap;
pub mod handoff;
mod handoff_unipc;
pub mod html;
mod interrupt;
mod machine;
pub mod output;
mod peer;
mod placement;
mod raw;
pub mod report;
mod runner;
pub mod text;
mod workload;

pub use peer::{peer_main, PEER_ARG};
pub use report::Report;

/// What to measure.
#[derive(Clone, Debug)]
pub struct Config {
    /// Facility names; empty means all.
    pub facilities: Vec<String>,
    /// Message sizes for latency.
    pub latency_sizes: Vec<usize>,
    /// Message sizes for throughput.
    pub throughput_sizes: Vec<usize>,
    /// Repetitions of each measurement (pairs of a unipc window and a raw
    /// window); a figure whose pairs disagree may get more, see
    /// `latency_figure_budget` and `figure_budget`.
    pub repetitions: usize,
    /// Time each measured latency loop runs.
    pub budget: Duration,
    /// Time each measured throughput window runs: long enough that a
    /// scheduler time slice lost to another process is a small part of it.
    pub throughput_window: Duration,
    /// Time one throughput figure may take in all: after `repetitions`
    /// pairs, more are measured until the pairs' ratios agree within
    /// `noise_limit` or this is spent.
    pub figure_budget: Duration,
    /// The same for one latency figure.
    pub latency_figure_budget: Duration,
    /// The spread of the per-pair ratios ([`report::ratio_spread`]) above
    /// which a figure is reported as too noisy to compare.
    pub noise_limit: f64,
    /// The parent's CPU and the peer's CPU; `None` leaves placement to the
    /// scheduler.
    pub cpus: Option<(usize, usize)>,
    /// Whether this is a `--quick` run.
    pub quick: bool,
    /// Sizes for the copy-or-map section ([`copymap`]).
    pub copy_or_map_sizes: Vec<usize>,
}

impl Config {
    /// The full run: every facility, 64 B to 64 KiB latency, 64 B to 1 MiB
    /// throughput, three repetitions (throughput in 40 ms windows); a figure
    /// whose pairs disagree by more than 10 % gets more pairs, up to 0.2 s
    /// a latency figure and 0.5 s a throughput figure; about a minute on
    /// two cores.
    pub fn full() -> Config {
        Config {
            facilities: Vec::new(),
            latency_sizes: vec![64, 1024, 16 << 10, 64 << 10],
            throughput_sizes: vec![64, 4 << 10, 64 << 10, 1 << 20],
            repetitions: 3,
            budget: Duration::from_millis(16),
            throughput_window: Duration::from_millis(40),
            figure_budget: Duration::from_millis(500),
            latency_figure_budget: Duration::from_millis(200),
            noise_limit: 0.10,
            cpus: default_cpus(),
            quick: false,
            copy_or_map_sizes: copymap::full_sizes(),
        }
    }

    /// The quick run: 64 B latency, 4 KiB and 64 KiB throughput, one
    /// repetition (so no spread to judge noise by), short loops; a few
    /// seconds.
    pub fn quick() -> Config {
        Config {
            latency_sizes: vec![64],
            throughput_sizes: vec![4 << 10, 64 << 10],
            repetitions: 1,
            budget: Duration::from_millis(4),
            throughput_window: Duration::from_millis(4),
            figure_budget: Duration::ZERO,
            latency_figure_budget: Duration::ZERO,
            quick: true,
            copy_or_map_sizes: copymap::quick_sizes(),
            ..Config::full()
        }
    }

    /// Keeps only `sizes` (for both workloads).
    pub fn with_sizes(mut self, sizes: &[usize]) -> Config {
        self.latency_sizes = sizes.to_vec();
        self.throughput_sizes = sizes.to_vec();
        self
    }
}

/// The first two CPUs this process may use.
pub fn default_cpus() -> Option<(usize, usize)> {
    let cpus = placement::allowed_cpus();
    match cpus.as_slice() {
        [] => None,
        [only] => Some((*only, *only)),
        [a, b, ..] => Some((*a, *b)),
    }
}

/// The CPUs this process may use (for validating `--cpus`).
pub fn allowed_cpus() -> Vec<usize> {
    placement::allowed_cpus()
}

/// Errors that stop a bench run before it starts.
#[derive(Debug)]
pub struct UnknownFacility {
    /// The name given.
    pub name: String,
    /// The names that exist.
    pub known: Vec<&'static str>,
}

impl std::fmt::Display for UnknownFacility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no facility {:?}; facilities: {}",
            self.name,
            self.known.join(", ")
        )
    }
}

impl std::error::Error for UnknownFacility {}

/// Ends the run's clean-up watch once every output is written: the process
/// that would remove the run's objects after a SIGKILL exits. (Exiting
/// without calling this is safe too: nothing is registered by then.)
pub fn finish() {
    interrupt::finish();
}

/// Runs the bench as `config` says.
///
/// # Errors
/// When `config` names a facility that does not exist.
///
/// The copy-or-map and hand-off sections run in a full run and whenever
/// `--facility` names them ([`copymap::SECTION`], [`handoff::SECTION`]); a
/// `--quick` run leaves them out unless named. Sections named alone are all
/// that runs.
pub fn run(config: &Config) -> Result<Report, UnknownFacility> {
    let all = unipc::facility::all();
    let sections = [copymap::SECTION, handoff::SECTION];
    let named_sections: Vec<&str> = sections
        .into_iter()
        .filter(|s| config.facilities.iter().any(|f| f == s))
        .collect();
    let named: Vec<&String> = (config.facilities.iter())
        .filter(|f| !sections.contains(&f.as_str()))
        .collect();
    let everything = config.facilities.is_empty() && !config.quick;
    let run_section = everything || named_sections.contains(&copymap::SECTION);
    let run_hand_off = everything || named_sections.contains(&handoff::SECTION);
    let facilities: Vec<_> = if !named_sections.is_empty() && named.is_empty() {
        Vec::new()
    } else if named.is_empty() {
        // Facilities with no two-process link yet are left out of a full
        // run; named with --facility, they are reported as skipped.
        all.iter()
            .copied()
            .filter(|f| f.connector.is_some())
            .collect()
    } else {
        named
            .iter()
            .map(|name| {
                unipc::facility::find(name).ok_or_else(|| UnknownFacility {
                    name: (*name).clone(),
                    known: all.iter().map(|f| f.name).chain(sections).collect(),
                })
            })
            .collect::<Result<_, _>>()?
    };
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    interrupt::install();
    let results = runner::run(config, &facilities);
    let copy_or_map = run_section.then(|| {
        let repetitions = if config.quick { 3 } else { 7 };
        copymap::run(
            &config.copy_or_map_sizes,
            repetitions,
            Duration::from_millis(if config.quick { 200 } else { 600 }),
        )
    });
    let hand_off = run_hand_off.then(|| {
        handoff::run(&handoff::Settings {
            cpus: config.cpus,
            pairs: config.repetitions.max(1),
            window: config.budget,
            figure_budget: config.latency_figure_budget,
            noise_limit: config.noise_limit,
        })
    });
    Ok(Report {
        schema: report::SCHEMA,
        started,
        machine: machine::describe(),
        settings: report::Settings {
            quick: config.quick,
            repetitions: config.repetitions,
            cpus: config.cpus,
            latency_sizes: config.latency_sizes.clone(),
            throughput_sizes: config.throughput_sizes.clone(),
            budget_ms: config.budget.as_millis() as u64,
            throughput_window_ms: config.throughput_window.as_millis() as u64,
            throughput_figure_budget_ms: config.figure_budget.as_millis() as u64,
            latency_figure_budget_ms: config.latency_figure_budget.as_millis() as u64,
            noise_limit: config.noise_limit,
        },
        results,
        copy_or_map,
        hand_off,
        compare: facilities
            .iter()
            .map(|f| compare::FacilityRow::of(f))
            .collect(),
    })
}
