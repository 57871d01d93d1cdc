//! Two-process latency comparison: the unipc ring against iceoryx2,
//! ipc-channel and interprocess local sockets.
//!
//! Every contender runs the same ping-pong: this process sends a message
//! of `size` bytes on one channel, a peer process (this binary re-executed
//! with `peer ...`) receives it and sends `size` bytes back on a second
//! channel, and this process receives the answer. Both sides busy-poll,
//! each pinned to its own CPU when the machine has two. One-way latency is
//! the round trip over two; the first message bytes carry a sequence
//! number that both sides check, so a stale or torn message is a failure,
//! never a figure.
//!
//! What each side touches: the sender produces all `size` bytes (copies
//! them from a buffer, into the channel or into a loaned slot); the peer
//! reads all of them (it copies the message into its answer); this
//! process, receiving the answer, reads the stamp in place where the API
//! lends the message (ring view, iceoryx2 sample) and gets every byte
//! copied out where it cannot (ipc-channel, sockets). The stamp-only ring
//! loan writes and reads 8 bytes of each message whatever its size: its
//! 4 MiB figure against its 64 B figure is the zero-copy ratio.
//!
//! Typed contenders send one small struct (`Tick`, five fields) instead
//! of bytes: unipc's `Typed` (MessagePack) over the ring, POSIX queues and
//! a seqpacket connection, against ipc-channel's `IpcSender<Tick>`; the
//! peer decodes each value and sends it back encoded, and the ratios of
//! ipc-channel's p50 to unipc's (busy-polling against `try_recv`,
//! blocking against `recv`) are printed and in the JSON. Blocking figures
//! measure the scheduler's wake-ups more than either crate.
//!
//! Not part of the unipc workspace: it has its own `[workspace]`, so the
//! root `cargo build` and `cargo test` never build it.

mod contenders;
mod throughput;

use std::error::Error;
use std::ffi::OsString;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Instant;

use hdrhistogram::Histogram;
use serde::Serialize;

type Res<T> = Result<T, Box<dyn Error>>;

const WARMUP: u64 = 10_000;

/// One contender: how it is named in the table and how each side runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// unipc ring: `send_wait` copies in, `recv_view` reads in place.
    RingCopy,
    /// unipc ring: `loan` + fill the whole message in place + `commit`.
    RingLoan,
    /// unipc ring as `RingCopy`, both sides spinning briefly and then
    /// sleeping on the futex ([`WaitStrategy::SpinThenPark`], the default).
    RingSpinPark,
    /// unipc ring: `loan`, write only the 8-byte stamp, `commit(size)`:
    /// the message is built in place, nothing is copied.
    RingLoanInPlace,
    /// iceoryx2 publish-subscribe, `[u8]` slices: `loan_slice_uninit` +
    /// `write_from_slice` + `send`; `receive` spun on.
    Iceoryx2,
    /// ipc-channel `bytes_channel`, `try_recv` spun on.
    IpcChannel,
    /// interprocess local socket (Unix stream, abstract name),
    /// non-blocking reads spun on.
    Interprocess,
    /// unipc `Typed<_, Tick>` over the ring, both sides busy-polling.
    TypedRing,
    /// unipc `Typed<_, Tick>` over the ring, spin-then-park (the default).
    TypedRingSpinPark,
    /// unipc `Typed<_, Tick>` over POSIX queues, blocking receives.
    TypedPosixMq,
    /// unipc `Typed<_, Tick>` over POSIX queues, `try_recv` spun on.
    TypedPosixMqPoll,
    /// unipc `Typed<_, Tick>` over one seqpacket connection, blocking.
    TypedSeqpacket,
    /// unipc `Typed<_, Tick>` over one seqpacket connection, `try_recv`
    /// spun on.
    TypedSeqpacketPoll,
    /// ipc-channel `IpcSender<Tick>` / `IpcReceiver<Tick>`, `try_recv`
    /// spun on.
    IpcChannelTyped,
    /// ipc-channel `IpcSender<Tick>` / `IpcReceiver<Tick>`, blocking `recv`.
    IpcChannelTypedBlocking,
}

/// The small struct the typed contenders send: five fields, 25 bytes of
/// data (the one `cargo bench -p unipc --features typed --bench
/// typed_round_trip` uses).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tick {
    seq: u64,
    price: f64,
    qty: u32,
    symbol: [u8; 4],
    side: u8,
}

impl Tick {
    pub fn new(seq: u64) -> Tick {
        Tick {
            seq,
            price: 101.25 + seq as f64,
            qty: 300,
            symbol: *b"ACME",
            side: 1,
        }
    }
}

/// The typed contenders, in the order the table shows them.
const TYPED: [Kind; 8] = [
    Kind::TypedRing,
    Kind::TypedRingSpinPark,
    Kind::IpcChannelTyped,
    Kind::IpcChannelTypedBlocking,
    Kind::TypedPosixMq,
    Kind::TypedPosixMqPoll,
    Kind::TypedSeqpacket,
    Kind::TypedSeqpacketPoll,
];

impl Kind {
    const ALL: [Kind; 15] = [
        Kind::RingCopy,
        Kind::RingLoan,
        Kind::RingSpinPark,
        Kind::RingLoanInPlace,
        Kind::Iceoryx2,
        Kind::IpcChannel,
        Kind::Interprocess,
        Kind::TypedRing,
        Kind::TypedRingSpinPark,
        Kind::TypedPosixMq,
        Kind::TypedPosixMqPoll,
        Kind::TypedSeqpacket,
        Kind::TypedSeqpacketPoll,
        Kind::IpcChannelTyped,
        Kind::IpcChannelTypedBlocking,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::RingCopy => "unipc ring (copy send, view recv)",
            Kind::RingLoan => "unipc ring (loan + fill, view recv)",
            Kind::RingSpinPark => "unipc ring (copy, spin-then-park)",
            Kind::RingLoanInPlace => "unipc ring (loan, stamp only, view recv)",
            Kind::Iceoryx2 => "iceoryx2 0.10 pub/sub (loan + fill)",
            Kind::IpcChannel => "ipc-channel (bytes_channel)",
            Kind::Interprocess => "interprocess (local socket)",
            Kind::TypedRing => "typed Tick: unipc ring (busy-poll)",
            Kind::TypedRingSpinPark => "typed Tick: unipc ring (spin-then-park)",
            Kind::TypedPosixMq => "typed Tick: unipc posix-mq (blocking)",
            Kind::TypedPosixMqPoll => "typed Tick: unipc posix-mq (try_recv)",
            Kind::TypedSeqpacket => "typed Tick: unipc seqpacket (blocking)",
            Kind::TypedSeqpacketPoll => "typed Tick: unipc seqpacket (try_recv)",
            Kind::IpcChannelTyped => "typed Tick: ipc-channel (try_recv)",
            Kind::IpcChannelTypedBlocking => "typed Tick: ipc-channel (blocking)",
        }
    }

    fn arg(self) -> &'static str {
        match self {
            Kind::RingCopy => "ring-copy",
            Kind::RingLoan => "ring-loan",
            Kind::RingSpinPark => "ring-spin-park",
            Kind::RingLoanInPlace => "ring-loan-inplace",
            Kind::Iceoryx2 => "iceoryx2",
            Kind::IpcChannel => "ipc-channel",
            Kind::Interprocess => "interprocess",
            Kind::TypedRing => "typed-ring",
            Kind::TypedRingSpinPark => "typed-ring-spin-park",
            Kind::TypedPosixMq => "typed-posix-mq",
            Kind::TypedPosixMqPoll => "typed-posix-mq-poll",
            Kind::TypedSeqpacket => "typed-seqpacket",
            Kind::TypedSeqpacketPoll => "typed-seqpacket-poll",
            Kind::IpcChannelTyped => "ipc-channel-typed",
            Kind::IpcChannelTypedBlocking => "ipc-channel-typed-blocking",
        }
    }

    fn from_arg(s: &str) -> Res<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.arg() == s)
            .ok_or_else(|| format!("unknown contender {s:?}").into())
    }
}

/// The sequence number stamped into the first 8 bytes of every message.
pub fn stamp(buf: &mut [u8], seq: u64) {
    buf[..8].copy_from_slice(&seq.to_le_bytes());
}

/// Checks a received message's length and stamp.
pub fn check(buf: &[u8], size: usize, seq: u64) {
    assert_eq!(buf.len(), size, "message {seq}: wrong length");
    let got = u64::from_le_bytes(buf[..8].try_into().expect("8 bytes"));
    assert_eq!(got, seq, "message {seq}: stale or torn stamp");
}

/// The CPUs this process may run on, before it pins itself.
fn allowed_cpus() -> Vec<usize> {
    use nix::sched::{sched_getaffinity, CpuSet};
    use nix::unistd::Pid;
    match sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Pins this process to one CPU; `false` if it could not.
pub fn pin(cpu: usize) -> bool {
    use nix::sched::{sched_setaffinity, CpuSet};
    use nix::unistd::Pid;
    let mut set = CpuSet::new();
    set.set(cpu).is_ok() && sched_setaffinity(Pid::from_raw(0), &set).is_ok()
}

/// The environment variable that tells the peer which CPU to pin itself to.
const PEER_CPU: &str = "UNIPC_COMPARISON_PEER_CPU";

/// Starts the peer: this binary again, with the role and its arguments.
pub fn spawn_peer(kind: Kind, size: usize, name: &str, total: u64) -> Res<Child> {
    Ok(Command::new(std::env::current_exe()?)
        .args([
            "peer",
            kind.arg(),
            &size.to_string(),
            name,
            &total.to_string(),
        ])
        .spawn()?)
}

/// The timing loop every contender shares: `round_trip(seq)` sends
/// message `seq` and waits for its answer.
pub fn measure(iters: u64, mut round_trip: impl FnMut(u64) -> Res<()>) -> Res<Histogram<u64>> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    for seq in 0..WARMUP {
        round_trip(seq)?;
    }
    for seq in WARMUP..WARMUP + iters {
        let t = Instant::now();
        round_trip(seq)?;
        hist.record(t.elapsed().as_nanos() as u64)?;
    }
    Ok(hist)
}

#[derive(Serialize)]
struct LatencyRow {
    contender: &'static str,
    id: &'static str,
    size: usize,
    round_trips: u64,
    one_way_p50_ns: f64,
    one_way_p99_ns: f64,
    one_way_mean_ns: f64,
    one_way_max_ns: f64,
}

#[derive(Serialize)]
struct Report {
    /// Read by `unipc bench --html FILE --comparison FILE`
    /// (crates/unipc-bench/src/comparison.rs).
    schema: &'static str,
    method: &'static str,
    cpus: usize,
    pinned: bool,
    /// `/proc/loadavg` when the run began: figures taken on a loaded
    /// machine (p99 and mean above all) are not comparable with quiet ones.
    loadavg_at_start: String,
    latency: Vec<LatencyRow>,
    zero_copy: Option<ZeroCopy>,
    typed_vs_ipc_channel: Vec<TypedRatio>,
    throughput: Vec<throughput::Throughput>,
}

/// A typed unipc contender against ipc-channel's typed channel in the
/// same mode (busy-polling against `try_recv`, blocking against `recv`).
#[derive(Serialize)]
struct TypedRatio {
    unipc: &'static str,
    ipc_channel: &'static str,
    ipc_channel_over_unipc_p50: f64,
    ipc_channel_over_unipc_mean: f64,
}

fn typed_ratios(rows: &[LatencyRow]) -> Vec<TypedRatio> {
    let row = |kind: Kind| rows.iter().find(|r| r.id == kind.arg());
    let mut out = Vec::new();
    for kind in TYPED {
        let against = match kind {
            Kind::IpcChannelTyped | Kind::IpcChannelTypedBlocking => continue,
            Kind::TypedRing | Kind::TypedPosixMqPoll | Kind::TypedSeqpacketPoll => {
                Kind::IpcChannelTyped
            }
            _ => Kind::IpcChannelTypedBlocking,
        };
        if let (Some(u), Some(i)) = (row(kind), row(against)) {
            out.push(TypedRatio {
                unipc: u.contender,
                ipc_channel: i.contender,
                ipc_channel_over_unipc_p50: i.one_way_p50_ns / u.one_way_p50_ns,
                ipc_channel_over_unipc_mean: i.one_way_mean_ns / u.one_way_mean_ns,
            });
        }
    }
    out
}

/// The zero-copy ratio: the in-place loan's p50 at 4 MiB over its p50 at 64 B.
#[derive(Serialize)]
struct ZeroCopy {
    small: usize,
    large: usize,
    p50_small_ns: f64,
    p50_large_ns: f64,
    ratio_p50: f64,
}

fn zero_copy(rows: &[LatencyRow]) -> Option<ZeroCopy> {
    let inplace: Vec<&LatencyRow> = rows
        .iter()
        .filter(|r| r.id == Kind::RingLoanInPlace.arg())
        .collect();
    let small = inplace.iter().min_by_key(|r| r.size)?;
    let large = inplace.iter().max_by_key(|r| r.size)?;
    if small.size == large.size {
        return None;
    }
    Some(ZeroCopy {
        small: small.size,
        large: large.size,
        p50_small_ns: small.one_way_p50_ns,
        p50_large_ns: large.one_way_p50_ns,
        ratio_p50: large.one_way_p50_ns / small.one_way_p50_ns,
    })
}

struct Args {
    json: Option<String>,
    iters: u64,
    only: Option<Vec<Kind>>,
    skip_throughput: bool,
    /// Slots in the throughput test's rings: a ring's working set is
    /// capacity × message size, which decides whether it stays in cache.
    ring_capacities: Vec<u64>,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Res<Args> {
    let mut args = Args {
        json: None,
        iters: 100_000,
        only: None,
        skip_throughput: false,
        ring_capacities: vec![4, 64],
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => args.json = Some(it.next().ok_or("--json needs a path")?),
            "--iters" => args.iters = it.next().ok_or("--iters needs a number")?.parse()?,
            "--only" => {
                let list = it.next().ok_or("--only needs a list")?;
                args.only = Some(list.split(',').map(Kind::from_arg).collect::<Res<_>>()?);
            }
            "--no-throughput" => args.skip_throughput = true,
            "--ring-capacity" => {
                let list = it.next().ok_or("--ring-capacity needs a list")?;
                args.ring_capacities = list
                    .split(',')
                    .map(|n| {
                        n.parse::<u64>()
                            .map_err(|e| format!("--ring-capacity {n:?}: {e}"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "-h" | "--help" => {
                println!(
                    "usage: unipc-comparison [--json PATH] [--iters N] [--only a,b] [--no-throughput] [--ring-capacity 4,64]\n\
                     contenders: ring-copy ring-loan ring-spin-park ring-loan-inplace iceoryx2 ipc-channel interprocess\n\
                     typed (one small struct): typed-ring typed-ring-spin-park typed-posix-mq typed-posix-mq-poll\n\
                     typed-seqpacket typed-seqpacket-poll ipc-channel-typed ipc-channel-typed-blocking"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)").into()),
        }
    }
    Ok(args)
}

/// What iceoryx2 leaves behind after its last node is gone: a global
/// management object in `/dev/shm` and empty directories under
/// `/tmp/iceoryx2`; and, when a run is interrupted, every service and node
/// file of the run. Only what appeared during this run is removed.
struct Leftovers {
    shm: Vec<OsString>,
    nodes: Vec<OsString>,
    services: Vec<OsString>,
    tmp_existed: bool,
}

const IOX2_TMP: &str = "/tmp/iceoryx2";

/// The names in `dir` that start with `prefix`.
fn entries(dir: &Path, prefix: &str) -> Vec<OsString> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.file_name()))
                .filter(|n| n.to_string_lossy().starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

impl Leftovers {
    fn snapshot() -> Self {
        let tmp = Path::new(IOX2_TMP);
        Leftovers {
            shm: entries(Path::new("/dev/shm"), "iox2_"),
            nodes: entries(&tmp.join("nodes"), ""),
            services: entries(&tmp.join("services"), ""),
            tmp_existed: tmp.exists(),
        }
    }

    /// Removes what appeared since the snapshot: the `/dev/shm` objects
    /// always; the node and service files only when `interrupted` (a
    /// finished run's nodes removed their own).
    fn clean(&self, interrupted: bool) {
        let remove_new = |dir: &Path, prefix: &str, before: &[OsString]| {
            for name in entries(dir, prefix) {
                if !before.contains(&name) {
                    let path = dir.join(name);
                    let _ = if path.is_dir() {
                        std::fs::remove_dir_all(&path)
                    } else {
                        std::fs::remove_file(&path)
                    };
                }
            }
        };
        remove_new(Path::new("/dev/shm"), "iox2_", &self.shm);
        let tmp = Path::new(IOX2_TMP);
        if interrupted {
            remove_new(&tmp.join("nodes"), "", &self.nodes);
            remove_new(&tmp.join("services"), "", &self.services);
        }
        if !self.tmp_existed {
            // remove_dir, not remove_dir_all: a directory that is not empty
            // holds something this run did not create, and stays.
            for dir in ["nodes", "services"] {
                let _ = std::fs::remove_dir(tmp.join(dir));
            }
            let _ = std::fs::remove_dir(tmp);
        }
    }
}

/// On SIGINT, SIGTERM or SIGHUP: unlink this run's rings, remove what
/// iceoryx2 left, exit 130. The signals are blocked in every thread but
/// the one that waits for them (threads started later inherit the mask;
/// the peers, started with `Command`, begin with an empty one).
fn clean_up_on_signal(leftovers: &'static Leftovers) -> Res<()> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(sig);
    }
    set.thread_block()?;
    std::thread::spawn(move || {
        if let Ok(sig) = set.wait() {
            for end in ["ping", "pong", "tput", "tping", "tpong"] {
                let name = format!("/unipc-cmp-{}-{end}", std::process::id());
                if let Ok(name) = name.parse() {
                    let _ = unipc::message::ring::remove(&name);
                    let _ = unipc::message::posix_mq::unlink(&name);
                }
            }
            leftovers.clean(true);
            eprintln!("unipc-comparison: {sig}: removed what this run created");
            std::process::exit(130);
        }
    });
    Ok(())
}

fn main() -> Res<()> {
    iceoryx2::prelude::set_log_level(iceoryx2::prelude::LogLevel::Error);
    let mut argv = std::env::args().skip(1).peekable();
    if argv.peek().map(String::as_str) == Some("peer") {
        argv.next();
        let kind = Kind::from_arg(&argv.next().ok_or("peer: kind")?)?;
        let size: usize = argv.next().ok_or("peer: size")?.parse()?;
        let name = argv.next().ok_or("peer: name")?;
        let total: u64 = argv.next().ok_or("peer: total")?.parse()?;
        contenders::PARENT.store(
            std::os::unix::process::parent_id(),
            std::sync::atomic::Ordering::Relaxed,
        );
        if let Some(cpu) = std::env::var(PEER_CPU).ok().and_then(|c| c.parse().ok()) {
            pin(cpu);
        }
        return contenders::peer(kind, size, &name, total);
    }
    let args = parse_args(argv)?;
    let leftovers: &'static Leftovers = Box::leak(Box::new(Leftovers::snapshot()));
    clean_up_on_signal(leftovers)?;
    let result = compare(args);
    leftovers.clean(false);
    result
}

fn compare(args: Args) -> Res<()> {
    let cpus = allowed_cpus();
    // With two CPUs or more, this side runs on the first and the peer on the second.
    let pinned = cpus.len() >= 2 && pin(cpus[0]);
    if pinned {
        std::env::set_var(PEER_CPU, cpus[1].to_string());
    }

    const SMALL: usize = 64;
    const MEDIUM: usize = 8 * 1024;
    const HUGE: usize = 4 * 1024 * 1024;
    const TICK_DATA: usize = 25;
    let mut plan: Vec<(Kind, usize, u64)> = Vec::new();
    for kind in [
        Kind::RingCopy,
        Kind::RingLoan,
        Kind::RingSpinPark,
        Kind::Iceoryx2,
        Kind::IpcChannel,
        Kind::Interprocess,
    ] {
        for size in [SMALL, MEDIUM] {
            plan.push((kind, size, args.iters));
        }
    }
    // The zero-copy ratio: a message built in place costs the same at
    // 64 B and at 4 MiB. Fewer round trips at 4 MiB: each is a page-touching
    // message, and warm-up alone covers the first faults.
    plan.push((Kind::RingLoanInPlace, SMALL, args.iters));
    plan.push((Kind::RingLoanInPlace, HUGE, args.iters.min(20_000)));
    // The typed contenders: one small struct each way, decoded and
    // encoded again by the peer; the size column is its 25 bytes of data.
    for kind in TYPED {
        plan.push((kind, TICK_DATA, args.iters));
    }
    if let Some(only) = &args.only {
        plan.retain(|(k, _, _)| only.contains(k));
    }

    let loadavg = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    println!(
        "{} CPUs{}, load average {loadavg} at start\n",
        cpus.len(),
        if pinned {
            ", each side pinned to its own"
        } else {
            ", not pinned"
        }
    );
    let mut rows = Vec::new();
    println!(
        "{:<44} {:>8} {:>12} {:>12} {:>12}",
        "contender (one-way = round trip / 2)", "size", "p50 ns", "p99 ns", "mean ns"
    );
    for (kind, size, iters) in plan {
        let hist = contenders::run(kind, size, iters)?;
        let row = LatencyRow {
            contender: kind.name(),
            id: kind.arg(),
            size,
            round_trips: iters,
            one_way_p50_ns: hist.value_at_quantile(0.50) as f64 / 2.0,
            one_way_p99_ns: hist.value_at_quantile(0.99) as f64 / 2.0,
            one_way_mean_ns: hist.mean() / 2.0,
            one_way_max_ns: hist.max() as f64 / 2.0,
        };
        println!(
            "{:<44} {:>8} {:>12.0} {:>12.0} {:>12.0}",
            row.contender,
            human(size),
            row.one_way_p50_ns,
            row.one_way_p99_ns,
            row.one_way_mean_ns
        );
        rows.push(row);
    }

    let typed_ratios = typed_ratios(&rows);
    if !typed_ratios.is_empty() {
        println!("\ntyped Tick, p50 round trip of ipc-channel's over unipc's (> 1: unipc faster)");
        for r in &typed_ratios {
            println!(
                "{:<44} {:>8.2}x  (vs {})",
                r.unipc, r.ipc_channel_over_unipc_p50, r.ipc_channel
            );
        }
    }

    let zero_copy = zero_copy(&rows);
    if let Some(z) = &zero_copy {
        println!(
            "\nzero copy: ring loan (stamp only) p50 at 4 MiB / p50 at 64 B = {:.2}",
            z.ratio_p50
        );
    }

    let mut tput = Vec::new();
    if !args.skip_throughput {
        println!(
            "\n{:<44} {:>8} {:>12} {:>12} {:>20}",
            "throughput (one process, two threads)",
            "size",
            "ring GB/s",
            "memcpy GB/s",
            "memcpy, ring's bytes"
        );
        for &capacity in &args.ring_capacities {
            for size in [64 * 1024, 1024 * 1024] {
                let t = throughput::ring_vs_memcpy(size, capacity, pinned.then(|| cpus[1]))?;
                println!(
                    "{:<44} {:>8} {:>12.2} {:>12.2} {:>20.2}",
                    format!("unipc ring send_wait -> recv_wait, {capacity} slots"),
                    human(size),
                    t.ring_gb_per_s,
                    t.memcpy_gb_per_s,
                    t.memcpy_footprint_gb_per_s
                );
                tput.push(t);
            }
        }
    }

    if let Some(path) = args.json {
        let report = Report {
            schema: "unipc-comparison/1",
            method: "two processes, ping-pong over two channels (one each way), both sides \
                     busy-polling, one-way = round trip / 2; 10,000 round trips of warm-up",
            cpus: cpus.len(),
            pinned,
            loadavg_at_start: loadavg,
            latency: rows,
            zero_copy,
            typed_vs_ipc_channel: typed_ratios,
            throughput: tput,
        };
        if let Some(dir) = std::path::Path::new(&path).parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
        println!("\nwrote {path}");
    }
    Ok(())
}

fn human(size: usize) -> String {
    if size >= 1024 * 1024 && size.is_multiple_of(1024 * 1024) {
        format!("{} MiB", size / (1024 * 1024))
    } else if size >= 1024 && size.is_multiple_of(1024) {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}
