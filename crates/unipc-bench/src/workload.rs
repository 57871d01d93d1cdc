//! The measured loops, written once over [`Wire`] so that unipc's links
//! and the raw baseline run exactly the same protocol.
//!
//! Protocol: the first byte of every unit is a marker. `DATA` units are
//! measured; `PHASE_END` closes the warm-up and `JOB_END` the measured
//! phase. In a latency job the peer echoes every unit; in a throughput job
//! it answers only the two end markers, so the sender's clock stops when
//! the last byte has provably arrived.

use std::io;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use unipc::facility::Link;

use crate::report::Workload;

const DATA: u8 = 0;
const PHASE_END: u8 = 1;
const JOB_END: u8 = 2;

/// Moves one unit (a message, or `len` bytes of a stream) each way.
pub trait Wire {
    /// Sends `data` as one unit.
    fn send(&mut self, data: &[u8]) -> io::Result<()>;
    /// Receives exactly one unit of `buf.len()` bytes.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()>;
}

/// unipc's side: the library's [`Link`].
pub struct LinkWire<'a>(pub &'a mut dyn Link);

impl Wire for LinkWire<'_> {
    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        self.0.send(data).map_err(io::Error::from)
    }
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.0.recv(buf).map_err(io::Error::from)
    }
}

/// Which implementation runs a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Implementation {
    /// Through unipc.
    Unipc,
    /// Through the system calls.
    Raw,
}

/// One measured loop, as the parent tells the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Job {
    /// Latency or throughput.
    pub workload: Workload,
    /// unipc or raw.
    pub implementation: Implementation,
    /// Unit size in bytes.
    pub size: usize,
    /// Busy-poll instead of blocking.
    pub nonblocking: bool,
}

impl Job {
    /// The one-line form sent to the peer.
    pub fn encode(&self) -> String {
        format!(
            "{} {} {} {}",
            match self.workload {
                Workload::Latency => "latency",
                Workload::Throughput => "throughput",
            },
            match self.implementation {
                Implementation::Unipc => "unipc",
                Implementation::Raw => "raw",
            },
            self.size,
            if self.nonblocking { "busy" } else { "block" }
        )
    }

    /// Parses [`Job::encode`]'s output.
    pub fn decode(line: &str) -> Option<Job> {
        let mut words = line.split_whitespace();
        let workload = match words.next()? {
            "latency" => Workload::Latency,
            "throughput" => Workload::Throughput,
            _ => return None,
        };
        let implementation = match words.next()? {
            "unipc" => Implementation::Unipc,
            "raw" => Implementation::Raw,
            _ => return None,
        };
        let size = words.next()?.parse().ok().filter(|&s| s >= 1)?;
        let nonblocking = match words.next()? {
            "busy" => true,
            "block" => false,
            _ => return None,
        };
        Some(Job {
            workload,
            implementation,
            size,
            nonblocking,
        })
    }
}

/// What the parent measured in one job.
#[derive(Debug)]
pub enum RunResult {
    /// Round-trip times in nanoseconds.
    Latency(Histogram<u64>),
    /// Units moved and the time they took.
    Throughput {
        /// Units sent in the measured phase (the end marker included).
        units: u64,
        /// Time from the first send to the peer's acknowledgement.
        elapsed: Duration,
    },
}

/// The parent's side of `job`: warm up for a fifth of `budget`, then
/// measure for `budget`.
pub fn lead(wire: &mut dyn Wire, job: &Job, budget: Duration) -> io::Result<RunResult> {
    let mut buf = vec![0xA5u8; job.size];
    let warm_up = budget / 5;
    match job.workload {
        Workload::Latency => {
            let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
                .expect("valid histogram bounds");
            for (phase, length, end) in [(false, warm_up, PHASE_END), (true, budget, JOB_END)] {
                let start = Instant::now();
                while start.elapsed() < length {
                    buf[0] = DATA;
                    let sent = Instant::now();
                    wire.send(&buf)?;
                    wire.recv(&mut buf)?;
                    if phase {
                        histogram.saturating_record(sent.elapsed().as_nanos() as u64);
                    }
                }
                buf[0] = end;
                wire.send(&buf)?;
                wire.recv(&mut buf)?;
            }
            Ok(RunResult::Latency(histogram))
        }
        Workload::Throughput => {
            let mut measured = (0, Duration::ZERO);
            for (length, end) in [(warm_up, PHASE_END), (budget, JOB_END)] {
                let start = Instant::now();
                let mut units = 1;
                buf[0] = DATA;
                while start.elapsed() < length {
                    wire.send(&buf)?;
                    units += 1;
                }
                buf[0] = end;
                wire.send(&buf)?;
                wire.recv(&mut buf)?;
                measured = (units, start.elapsed());
            }
            Ok(RunResult::Throughput {
                units: measured.0,
                elapsed: measured.1,
            })
        }
    }
}

/// The peer's side of `job`: answers until the job's end marker.
pub fn follow(wire: &mut dyn Wire, job: &Job) -> io::Result<()> {
    let mut buf = vec![0u8; job.size];
    loop {
        wire.recv(&mut buf)?;
        let marker = buf[0];
        if job.workload == Workload::Latency || marker != DATA {
            wire.send(&buf)?;
        }
        if marker == JOB_END {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_round_trip_through_their_line() {
        let job = Job {
            workload: Workload::Throughput,
            implementation: Implementation::Raw,
            size: 65536,
            nonblocking: true,
        };
        assert_eq!(Job::decode(&job.encode()), Some(job));
        assert_eq!(Job::decode("latency unipc 0 block"), None);
        assert_eq!(Job::decode("latency unipc 64"), None);
    }
}
