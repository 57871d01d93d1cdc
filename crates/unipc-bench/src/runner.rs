//! The runner: for every selected facility and scenario, one peer process,
//! one link, and every job of the plan through unipc and through the raw
//! calls, interleaved so that drift affects both alike.
//!
//! The runner knows facilities only through `unipc::facility`: it holds no
//! list of them and no case for any one of them.

use std::sync::mpsc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use unipc::facility::{CreatedObject, Facility, Link, LinkOptions};

use crate::peer::Peer;
use crate::raw::RawWire;
use crate::report::{
    ratio_spread, Figures, Measurement, Outcome, Placement, Sample, Spread, WaitMode, Workload,
};
use crate::workload::{lead, Implementation, Job, LinkWire, RunResult, Wire};
use crate::Config;

/// Why an unreliable facility has no throughput figures.
const UNRELIABLE: &str =
    "delivery is not guaranteed: a sender without flow control overruns the receiver, so this would measure loss";

/// How long the peer may take to join a link.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The scenarios, in report order, with the reason a scenario cannot run.
pub fn scenarios(cpus: Option<(usize, usize)>) -> Vec<(WaitMode, Placement, Option<String>)> {
    let cross = match cpus {
        Some((a, b)) if a != b => None,
        _ => Some("only one CPU is available, so the processes cannot be placed apart".to_owned()),
    };
    vec![
        (WaitMode::Blocking, Placement::CrossCpu, cross.clone()),
        (WaitMode::Blocking, Placement::SameCpu, None),
        (WaitMode::BusyPoll, Placement::CrossCpu, cross),
        (
            WaitMode::BusyPoll,
            Placement::SameCpu,
            Some("busy-polling against a peer on the same CPU measures only the scheduler's time slice".to_owned()),
        ),
    ]
}

struct Plan<'a> {
    config: &'a Config,
    bar: ProgressBar,
    results: Vec<Measurement>,
}

/// Runs the whole plan; returns one measurement per facility, scenario,
/// workload and size.
/// Why a facility without a connector is skipped.
pub(crate) const NO_CONNECTOR: &str =
    "no two-process link yet: shared memory needs a hand-off to wait on (the synchronization issue)";

pub fn run(config: &Config, facilities: &[&'static Facility]) -> Vec<Measurement> {
    let scenario_list = scenarios(config.cpus);
    let runnable = scenario_list.iter().filter(|s| s.2.is_none()).count();
    let jobs_per_scenario =
        (config.latency_sizes.len() + config.throughput_sizes.len()) * config.repetitions * 2;
    let bar = ProgressBar::new((facilities.len() * runnable * jobs_per_scenario) as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut plan = Plan {
        config,
        bar,
        results: Vec::new(),
    };
    for facility in facilities {
        for (wait, placement, skip) in &scenario_list {
            // A facility without a connector (shared memory, until it has a
            // hand-off to wait on) has no link to measure.
            let skip = skip.clone().or_else(|| {
                facility
                    .connector
                    .is_none()
                    .then(|| NO_CONNECTOR.to_owned())
            });
            plan.scenario(facility, *wait, *placement, skip);
        }
    }
    plan.bar.finish_and_clear();
    plan.results
}

impl Plan<'_> {
    fn skip_all(
        &mut self,
        facility: &'static Facility,
        wait: WaitMode,
        placement: Placement,
        why: &str,
    ) {
        for (workload, sizes) in self.workloads() {
            for size in sizes {
                self.results.push(Measurement {
                    facility: facility.name,
                    wait,
                    placement,
                    workload,
                    size,
                    outcome: Outcome::Skipped(why.to_owned()),
                });
            }
        }
    }

    fn workloads(&self) -> [(Workload, Vec<usize>); 2] {
        [
            (Workload::Latency, self.config.latency_sizes.clone()),
            (Workload::Throughput, self.config.throughput_sizes.clone()),
        ]
    }

    fn scenario(
        &mut self,
        facility: &'static Facility,
        wait: WaitMode,
        placement: Placement,
        skip: Option<String>,
    ) {
        if let Some(why) = skip {
            return self.skip_all(facility, wait, placement, &why);
        }
        let jobs = (self.config.latency_sizes.len() + self.config.throughput_sizes.len())
            * self.config.repetitions
            * 2;
        self.bar
            .set_message(format!("{} {wait:?} {placement:?}", facility.name));
        let cap = (facility.max_message)();
        let largest = self
            .workloads()
            .iter()
            .flat_map(|(_, s)| s.iter().copied())
            .max()
            .unwrap_or(64);
        let link_size = match &cap {
            Some(cap) => largest.min(cap.bytes),
            None => largest,
        };
        let (parent_cpu, peer_cpu) = match (self.config.cpus, placement) {
            (Some((a, _)), Placement::SameCpu) => (Some(a), Some(a)),
            (Some((a, b)), Placement::CrossCpu) => (Some(a), Some(b)),
            (None, _) => (None, None),
        };
        let options = LinkOptions::new(link_size);
        let connected = connect(facility, &options, peer_cpu);
        let (mut link, mut peer, created) = match connected {
            Ok(parts) => parts,
            Err(why) => {
                self.bar.inc(jobs as u64);
                return self.skip_all(
                    facility,
                    wait,
                    placement,
                    &format!("setting up the link failed: {why}"),
                );
            }
        };
        let saved_mask = parent_cpu.and_then(|cpu| crate::placement::pin_current_thread(cpu).ok());
        let nonblocking = wait == WaitMode::BusyPoll;
        let mut broken: Option<String> = None;
        for (workload, sizes) in self.workloads() {
            for size in sizes {
                let outcome = if let Some(why) = &broken {
                    self.bar.inc((self.config.repetitions * 2) as u64);
                    Outcome::Skipped(format!("an earlier job failed: {why}"))
                } else if workload == Workload::Throughput && !facility.properties.reliable {
                    self.bar.inc((self.config.repetitions * 2) as u64);
                    Outcome::Skipped(UNRELIABLE.to_owned())
                } else if let Some(cap) = cap.as_ref().filter(|cap| size > cap.bytes) {
                    self.bar.inc((self.config.repetitions * 2) as u64);
                    Outcome::Skipped(format!(
                        "carries at most {} bytes ({})",
                        cap.bytes, cap.set_by
                    ))
                } else {
                    match self.measure(
                        facility,
                        link.as_mut(),
                        &mut peer,
                        workload,
                        size,
                        nonblocking,
                        link_size,
                    ) {
                        Ok(figures) => Outcome::Measured(Box::new(figures)),
                        Err(why) => {
                            broken = Some(why.clone());
                            Outcome::Skipped(format!("failed: {why}"))
                        }
                    }
                };
                self.results.push(Measurement {
                    facility: facility.name,
                    wait,
                    placement,
                    workload,
                    size,
                    outcome,
                });
            }
        }
        if let Some(mask) = saved_mask {
            crate::placement::restore(&mask);
        }
        let mut registry = crate::interrupt::registry();
        if broken.is_some() {
            peer.kill();
        } else {
            peer.finish();
        }
        registry.peer(None);
        // The link's handles remove what outlives the process (System V
        // queues); forget it after.
        drop(link);
        for object in &created {
            registry.forget(object);
        }
    }

    /// Measures one figure: pairs of a unipc window and a raw window, back
    /// to back in alternating order. Latency takes `repetitions` pairs;
    /// throughput adds pairs until the per-pair ratios agree within the
    /// noise limit or the figure's budget is spent.
    #[allow(clippy::too_many_arguments)]
    fn measure(
        &mut self,
        facility: &Facility,
        link: &mut dyn Link,
        peer: &mut Peer,
        workload: Workload,
        size: usize,
        nonblocking: bool,
        link_size: usize,
    ) -> Result<Figures, String> {
        let config = self.config;
        let (window, figure_budget) = match workload {
            Workload::Latency => (config.budget, config.latency_figure_budget),
            Workload::Throughput => (config.throughput_window, config.figure_budget),
        };
        let started = std::time::Instant::now();
        let mut unipc_runs = Vec::new();
        let mut raw_runs = Vec::new();
        let mut ratios = Vec::new();
        for pair in 0.. {
            let order = if pair % 2 == 0 {
                [Implementation::Unipc, Implementation::Raw]
            } else {
                [Implementation::Raw, Implementation::Unipc]
            };
            for implementation in order {
                let job = Job {
                    workload,
                    implementation,
                    size,
                    nonblocking,
                };
                let result = self.job(facility, link, peer, &job, window, link_size)?;
                match implementation {
                    Implementation::Unipc => unipc_runs.push(result),
                    Implementation::Raw => raw_runs.push(result),
                }
                self.bar.inc(1);
            }
            let (u, r) = (
                summarise(&unipc_runs[pair..], size).headline().median,
                summarise(&raw_runs[pair..], size).headline().median,
            );
            debug_assert_eq!(unipc_runs.len(), pair + 1);
            ratios.push(match workload {
                Workload::Latency => u / r,
                Workload::Throughput => r / u,
            });
            let done = pair + 1;
            if done < config.repetitions {
                continue;
            }
            // One pair has no spread to judge by: it stands as measured.
            let agreed = ratio_spread(&ratios).map_or(true, |s| s <= config.noise_limit);
            if agreed || started.elapsed() >= figure_budget {
                break;
            }
            self.bar.inc_length(2);
        }
        let unipc = summarise(&unipc_runs, size);
        let raw = summarise(&raw_runs, size);
        let wide_spread = unipc.headline().is_wide(0.25) || raw.headline().is_wide(0.25);
        let spread = ratio_spread(&ratios);
        Ok(Figures {
            unipc,
            raw,
            overhead: Spread::of(&ratios).median,
            wide_spread,
            pairs: ratios.len(),
            ratio_spread: spread,
            noisy: spread.is_some_and(|s| s > config.noise_limit),
        })
    }

    /// Runs one job on both sides and returns the parent's measurement.
    fn job(
        &mut self,
        facility: &Facility,
        link: &mut dyn Link,
        peer: &mut Peer,
        job: &Job,
        window: Duration,
        link_size: usize,
    ) -> Result<RunResult, String> {
        link.set_nonblocking(job.nonblocking)
            .map_err(|e| e.to_string())?;
        peer.start(job)?;
        let result = match job.implementation {
            Implementation::Unipc => lead(&mut LinkWire(link), job, window),
            Implementation::Raw => {
                let mut raw = RawWire::new(
                    link.raw(),
                    facility.properties.shape,
                    job.nonblocking,
                    link_size,
                )
                .map_err(|e| e.to_string())?;
                lead(&mut raw as &mut dyn Wire, job, window)
            }
        };
        let result = result.map_err(|e| format!("{}: {e}", job.encode()))?;
        peer.status()
            .map_err(|e| format!("{}: peer: {e}", job.encode()))?;
        Ok(result)
    }
}

/// The link, its peer, and what the link holds that outlives the process
/// until its handles remove it (still registered).
type Connected = (Box<dyn Link>, Peer, Vec<CreatedObject>);

/// Sets up the link and its peer. Everything is created while holding the
/// interrupt registry, and announced to it before creation where it can be
/// and right after otherwise (see `interrupt`), so an interrupted or killed
/// run leaves nothing.
fn connect(
    facility: &'static Facility,
    options: &LinkOptions,
    peer_cpu: Option<usize>,
) -> Result<Connected, String> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let scratch = std::env::temp_dir().join(format!("unipc-bench-{}-{n}", std::process::id()));
    let mut registry = crate::interrupt::registry();
    registry.scratch(Some(&scratch));
    let result = connect_in(&mut registry, facility, options, peer_cpu, &scratch);
    // Both sides hold every object open now (or the link failed): names in
    // the scratch directory have done their work, and removing them now
    // leaves nothing behind if the run is killed. Only queues that live
    // until removed stay registered.
    let _ = std::fs::remove_dir_all(&scratch);
    registry.scratch(None);
    result
}

/// Whether `object` stays once every process has closed it, name or not
/// (a System V queue), as opposed to a name (a path, a POSIX queue's name)
/// that has done its work once both sides hold the object open.
fn outlives_its_name(object: &CreatedObject) -> bool {
    matches!(object, CreatedObject::SysvQueue(_))
}

fn connect_in(
    registry: &mut crate::interrupt::Registry,
    facility: &'static Facility,
    options: &LinkOptions,
    peer_cpu: Option<usize>,
    scratch: &std::path::Path,
) -> Result<Connected, String> {
    std::fs::create_dir(scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    // The connector names each object as it creates it (before, where the
    // name is known beforehand), and each is written down at once.
    let mut created = Vec::new();
    let connector = facility.connector.ok_or_else(|| NO_CONNECTOR.to_owned())?;
    let prepared = connector.prepare(scratch, options, &mut |object| {
        registry.created(object);
        created.push(object.clone());
    });
    // On failure the connector, the pending link or the link (dropped on
    // the establishing thread) has removed what it created.
    let forget_all = |registry: &mut crate::interrupt::Registry| {
        for object in &created {
            registry.forget(object);
        }
    };
    let (pending, ticket) = match prepared {
        Ok(parts) => parts,
        Err(e) => {
            forget_all(registry);
            return Err(e.to_string());
        }
    };
    let mut peer = match Peer::spawn(facility, ticket, options, peer_cpu) {
        Ok(peer) => peer,
        Err(e) => {
            drop(pending);
            forget_all(registry);
            return Err(format!("starting the peer: {e}"));
        }
    };
    registry.peer(Some(peer.pid()));
    let fail = |registry: &mut crate::interrupt::Registry, peer: Peer, why: String| {
        peer.kill();
        registry.peer(None);
        forget_all(registry);
        Err(why)
    };
    // Establishing may block (accept, FIFO open) until the peer joins; a
    // peer that fails to join must not hang the run, so wait on a thread.
    // (A pending link dropped on that thread removes its objects.)
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(pending.establish());
    });
    // Poll, so that a peer that died (a terminal's ^C reaches it too) ends
    // the wait at once rather than after the timeout, with the registry held.
    let deadline = std::time::Instant::now() + JOIN_TIMEOUT;
    let link = loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(Ok(link)) => break link,
            Ok(Err(e)) => return fail(registry, peer, e.to_string()),
            Err(mpsc::RecvTimeoutError::Timeout) if std::time::Instant::now() < deadline => {
                if peer.exited() {
                    return fail(registry, peer, "the peer exited before joining".to_owned());
                }
            }
            Err(_) => {
                return fail(
                    registry,
                    peer,
                    format!("the peer did not join within {JOIN_TIMEOUT:?}"),
                )
            }
        }
    };
    if let Err(why) = peer.status() {
        drop(link);
        return fail(registry, peer, format!("the peer could not join: {why}"));
    }
    // The peer has joined: both sides hold the objects open, and the names
    // are unlinked (the peer unlinks a POSIX queue's; the scratch directory
    // goes next). What outlives its name stays registered until the link's
    // handles remove it.
    let (lasting, names): (Vec<_>, Vec<_>) = created.into_iter().partition(outlives_its_name);
    for object in &names {
        registry.forget(object);
    }
    Ok((link, peer, lasting))
}

fn summarise(runs: &[RunResult], size: usize) -> Sample {
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    let mut p999 = Vec::new();
    let mut max = Vec::new();
    let mut samples = 0;
    let mut mib = Vec::new();
    let mut messages = Vec::new();
    for run in runs {
        match run {
            RunResult::Latency(h) => {
                p50.push(h.value_at_quantile(0.5) as f64);
                p99.push(h.value_at_quantile(0.99) as f64);
                p999.push(h.value_at_quantile(0.999) as f64);
                max.push(h.max() as f64);
                samples += h.len();
            }
            RunResult::Throughput { units, elapsed } => {
                let secs = elapsed.as_secs_f64().max(1e-9);
                messages.push(*units as f64 / secs);
                mib.push(*units as f64 * size as f64 / secs / (1024.0 * 1024.0));
            }
        }
    }
    if mib.is_empty() {
        Sample::Latency {
            p50: Spread::of(&p50),
            p99: Spread::of(&p99),
            p999: Spread::of(&p999),
            max: Spread::of(&max),
            samples,
        }
    } else {
        Sample::Throughput {
            mib_per_s: Spread::of(&mib),
            messages_per_s: Spread::of(&messages),
        }
    }
}
