//! `unipc bench --nats URL`: the round trip through a NATS JetStream server,
//! beside the local facilities.
//!
//! The bench proper compares every facility with its raw system calls in
//! the same run; NATS has none to compare with, so it is measured here on
//! its own: two streams (`…_ping`, `…_pong`), a peer (this binary run as
//! `__nats-echo`) that answers each message, every send acknowledged by
//! the server (`PubAck`) and every receive acknowledged back, as
//! `Messenger` does. The streams are removed at the end, and by the peer's
//! parent if it fails.

use std::ffi::OsString;
use std::process::{Child, ExitCode};
use std::time::{Duration, Instant};

use serde::Serialize;
use unipc::endpoint::NatsAddress;
use unipc::message::nats::{Nats, NatsOptions};
use unipc::message::{Messenger, Wait};
use unipc::Endpoint;

use super::usage;

/// The argument that makes this binary the echoing peer.
pub const NATS_ECHO_ARG: &str = "__nats-echo";

/// The message sizes measured.
const SIZES: [usize; 2] = [64, 4096];

/// The section of the report.
#[derive(Debug, Serialize)]
pub struct Section {
    /// The server, `nats://HOST:PORT`.
    server: String,
    /// One per size.
    results: Vec<Figure>,
}

/// The round trip at one size.
#[derive(Debug, Serialize)]
struct Figure {
    size: usize,
    rounds: usize,
    p50_ns: u64,
    p99_ns: u64,
    round_trips_per_s: f64,
}

/// Where to measure: the server, checked before the bench runs.
#[derive(Debug)]
pub struct Target {
    url: String,
    ping: NatsAddress,
    pong: NatsAddress,
}

fn address(url: &str, subject: &str) -> anyhow::Result<NatsAddress> {
    match format!("{url}/{subject}").parse::<Endpoint>() {
        Ok(Endpoint::Nats(a)) => Ok(a),
        Ok(_) => unreachable!("a nats:// string parses as a NATS endpoint"),
        Err(e) => Err(usage(format!("--nats {url}: {e}"))),
    }
}

impl Target {
    /// `nats://HOST:PORT`, with no subject.
    pub fn parse(url: &str) -> anyhow::Result<Target> {
        let url = url.trim_end_matches('/');
        if !url.starts_with("nats://") || url["nats://".len()..].contains('/') {
            return Err(usage(format!(
                "--nats {url:?}: expected nats://HOST:PORT (the server; the bench makes its own streams)"
            )));
        }
        let base = format!("unipc_bench_{}", std::process::id());
        Ok(Target {
            url: url.to_owned(),
            ping: address(url, &format!("{base}_ping"))?,
            pong: address(url, &format!("{base}_pong"))?,
        })
    }

    /// Creates the streams, starts the peer, times `rounds` round trips at
    /// each size, and removes the streams.
    pub fn measure(&self, rounds: usize) -> anyhow::Result<Section> {
        let options = NatsOptions::new().connect_timeout(Duration::from_secs(5));
        let ping = options.create(&self.ping)?;
        let streams = Streams(&ping, &self.pong);
        let pong = options.create(&self.pong)?;
        let peer = Peer(
            std::process::Command::new(std::env::current_exe()?)
                .arg(NATS_ECHO_ARG)
                .arg(Endpoint::Nats(ping.address().clone()).to_string())
                .arg(Endpoint::Nats(pong.address().clone()).to_string())
                .spawn()?,
        );
        let mut results = Vec::new();
        for size in SIZES {
            let message = vec![0x5a; size];
            // Warm up: the consumers are made on first use.
            for _ in 0..20 {
                ping.send(&message)?;
                let _ = pong.recv_vec(Wait::For(Duration::from_secs(10)))?;
            }
            let mut times = Vec::with_capacity(rounds);
            let started = Instant::now();
            for _ in 0..rounds {
                let t = Instant::now();
                ping.send(&message)?;
                let _ = pong.recv_vec(Wait::For(Duration::from_secs(10)))?;
                times.push(t.elapsed());
            }
            let total = started.elapsed();
            times.sort_unstable();
            let at = |q: usize| times[(rounds * q / 100).min(rounds - 1)].as_nanos() as u64;
            results.push(Figure {
                size,
                rounds,
                p50_ns: at(50),
                p99_ns: at(99),
                round_trips_per_s: rounds as f64 / total.as_secs_f64(),
            });
        }
        ping.send(b"")?;
        drop(peer);
        drop(streams);
        Ok(Section {
            server: self.url.clone(),
            results,
        })
    }
}

/// Removes the ping stream (and the pong stream, by name) however the
/// measurement ends.
struct Streams<'a>(&'a Nats, &'a NatsAddress);

impl Drop for Streams<'_> {
    fn drop(&mut self) {
        let _ = self.0.remove();
        let _ = unipc::message::nats::remove(self.1);
    }
}

/// The peer, killed and reaped when the measurement ends.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Section {
    /// The section as text, after the bench's tables.
    pub fn render(&self) -> String {
        let mut out = format!(
            "\nNATS JetStream ({}) — round trip between two processes through the server, p50 (p99); \
             each send acknowledged by the server, each receive acknowledged back; no raw baseline\n",
            self.server
        );
        for f in &self.results {
            out.push_str(&format!(
                "  {:>5} B  {:>9.1} µs ({:.1} µs)  {:.0} round trips/s\n",
                f.size,
                f.p50_ns as f64 / 1e3,
                f.p99_ns as f64 / 1e3,
                f.round_trips_per_s
            ));
        }
        out
    }
}

/// `unipc __nats-echo PING PONG`: answers every message on PING with the
/// same bytes on PONG until an empty one.
pub fn nats_echo(args: &[OsString]) -> ExitCode {
    let parse = |a: &OsString| -> Option<NatsAddress> {
        match a.to_str()?.parse::<Endpoint>().ok()? {
            Endpoint::Nats(a) => Some(a),
            _ => None,
        }
    };
    let (Some(ping), Some(pong)) = (args.first().and_then(parse), args.get(1).and_then(parse))
    else {
        eprintln!("usage: unipc {NATS_ECHO_ARG} nats://…/PING nats://…/PONG");
        return ExitCode::from(2);
    };
    let run = || -> unipc::Result<()> {
        let rx = Nats::open(&ping)?;
        let tx = Nats::open(&pong)?;
        loop {
            let (message, _) = rx.recv_vec(Wait::For(Duration::from_secs(30)))?;
            if message.is_empty() {
                return Ok(());
            }
            tx.send(&message)?;
        }
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("unipc {NATS_ECHO_ARG}: {e}");
            ExitCode::from(1)
        }
    }
}
