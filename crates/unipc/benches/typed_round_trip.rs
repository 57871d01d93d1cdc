//! Typed round trip of a small struct against the raw bytes round trip on
//! the same facility, between two processes (this binary re-executed as
//! the echoing peer).
//!
//! ```text
//! cargo bench -p unipc --features typed --bench typed_round_trip [-- ROUNDS] [codec]
//! ```
//!
//! First, in this process: the encoding alone (`codec`), and `Typed` over
//! a one-slot queue in memory against the raw bytes through it
//! (`loopback`: what `Typed` adds to a message, with no system call);
//! `codec` as an argument stops there.
//!
//! For each facility (POSIX queue, System V queue, UNIX seqpacket, the
//! shared-memory ring, all blocking): batches of ROUNDS round trips
//! (default 2000), raw, typed MessagePack and typed CBOR in rotation, 15
//! rounds of the three. Raw: the struct's fields as 25 fixed little-endian
//! bytes, echoed unread. Typed: the parent sends a `Typed` value, the peer
//! decodes it and sends it back encoded again (in the same encoding), the
//! parent decodes it: both ends pay the encoding. Reported: the median of
//! the batches' mean round trip for each and its ratio to raw, and the
//! same for the fastest batch of each (less sensitive to other load on a
//! shared machine, where a round trip can take 60 µs instead of 3 when the
//! peer waits for a CPU).
//! No figure is asserted anywhere; the machine's load is printed beside
//! them.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use unipc::message::posix_mq as pmq;
use unipc::message::ring::RingOptions;
use unipc::message::sysv_mq as smq;
use unipc::message::typed::{Encoding, Typed};
use unipc::message::{Limits, Messenger, Received, Tag, Wait};
use unipc::name::{PosixName, SysvKey, UnixAddr};
use unipc::stream::seqpacket as sp;

const ROLE: &str = "UNIPC_TYPED_BENCH_PEER";
const PAIRS: usize = 15;

/// The small struct.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Tick {
    seq: u64,
    price: f64,
    qty: u32,
    symbol: [u8; 4],
    side: u8,
}

impl Tick {
    fn new(seq: u64) -> Tick {
        Tick {
            seq,
            price: 101.25 + seq as f64,
            qty: 300,
            symbol: *b"ACME",
            side: 1,
        }
    }

    /// The same fields as 25 raw bytes.
    fn raw(&self) -> [u8; 25] {
        let mut out = [0; 25];
        out[..8].copy_from_slice(&self.seq.to_le_bytes());
        out[8..16].copy_from_slice(&self.price.to_le_bytes());
        out[16..20].copy_from_slice(&self.qty.to_le_bytes());
        out[20..24].copy_from_slice(&self.symbol);
        out[24] = self.side;
        out
    }
}

/// Control messages start with 0; raw payloads start with a sequence's
/// low byte (made odd, so never 0); typed ones with "UPCT".
const TO_RAW: &[u8] = b"\0raw";
const TO_MSGPACK: &[u8] = b"\0msgpack";
const TO_CBOR: &[u8] = b"\0cbor";
const END: &[u8] = b"\0end";

struct Channel {
    tx: Box<dyn Messenger>,
    rx: Box<dyn Messenger>,
}

/// Names and ids the peer opens, as one string: `KIND ARG ARG`.
/// `None` for seqpacket, whose channel is the connection the peer makes.
fn make(kind: &str) -> (Option<Channel>, String, Vec<Box<dyn std::any::Any>>) {
    let pid = std::process::id();
    match kind {
        "posix-mq" => {
            let names: Vec<PosixName> = (0..2)
                .map(|i| format!("/unipc-bench-typed-{pid}-{i}").parse().unwrap())
                .collect();
            let options = pmq::QueueOptions::new()
                .max_messages(4)
                .max_message_size(256)
                .exclusive(true);
            let owners: Vec<Box<dyn std::any::Any>> = vec![
                Box::new(options.create(&names[0]).unwrap()),
                Box::new(options.create(&names[1]).unwrap()),
            ];
            let channel = Channel {
                tx: Box::new(pmq::Queue::open(&names[0]).unwrap()),
                rx: Box::new(pmq::Queue::open(&names[1]).unwrap()),
            };
            let spec = format!("{kind} {} {}", names[1].as_str(), names[0].as_str());
            (Some(channel), spec, owners)
        }
        "sysv-mq" => {
            let a = smq::QueueOptions::new().create(SysvKey::Private).unwrap();
            let b = smq::QueueOptions::new().create(SysvKey::Private).unwrap();
            let spec = format!("{kind} {} {}", b.id(), a.id());
            let channel = Channel {
                tx: Box::new(smq::Queue::open_id(a.id()).unwrap()),
                rx: Box::new(smq::Queue::open_id(b.id()).unwrap()),
            };
            (Some(channel), spec, vec![Box::new(a), Box::new(b)])
        }
        "ring" => {
            let names: Vec<PosixName> = (0..2)
                .map(|i| format!("/unipc-bench-typed-{pid}-r{i}").parse().unwrap())
                .collect();
            let options = RingOptions::new().capacity(4).max_size(256).exclusive(true);
            let owners: Vec<Box<dyn std::any::Any>> = vec![
                Box::new(options.create(&names[0]).unwrap()),
                Box::new(options.create(&names[1]).unwrap()),
            ];
            let channel = Channel {
                tx: Box::new(
                    unipc::message::ring::Ring::open(&names[0])
                        .unwrap()
                        .into_sender()
                        .unwrap(),
                ),
                rx: Box::new(
                    unipc::message::ring::Ring::open(&names[1])
                        .unwrap()
                        .into_receiver()
                        .unwrap(),
                ),
            };
            let spec = format!("{kind} {} {}", names[1].as_str(), names[0].as_str());
            (Some(channel), spec, owners)
        }
        "unix-seqpacket" => {
            let addr: UnixAddr = format!("@unipc-bench-typed-{pid}").parse().unwrap();
            let listener = sp::Listener::bind(&addr).unwrap();
            // The peer connects once it starts; `run` accepts it.
            let spec = format!("{kind} @unipc-bench-typed-{pid} -");
            (None, spec, vec![Box::new(listener)])
        }
        other => panic!("unknown facility {other}"),
    }
}

/// The peer: opens its end from `spec`, echoes until END.
fn peer(spec: &str) {
    let parts: Vec<&str> = spec.split(' ').collect();
    let channel = match parts[0] {
        "posix-mq" => Channel {
            tx: Box::new(pmq::Queue::open(&parts[1].parse().unwrap()).unwrap()),
            rx: Box::new(pmq::Queue::open(&parts[2].parse().unwrap()).unwrap()),
        },
        "sysv-mq" => Channel {
            tx: Box::new(smq::Queue::open_id(parts[1].parse().unwrap()).unwrap()),
            rx: Box::new(smq::Queue::open_id(parts[2].parse().unwrap()).unwrap()),
        },
        "ring" => Channel {
            tx: Box::new(
                unipc::message::ring::Ring::open(&parts[1].parse().unwrap())
                    .unwrap()
                    .into_sender()
                    .unwrap(),
            ),
            rx: Box::new(
                unipc::message::ring::Ring::open(&parts[2].parse().unwrap())
                    .unwrap()
                    .into_receiver()
                    .unwrap(),
            ),
        },
        "unix-seqpacket" => {
            let conn = sp::Conn::connect(&parts[1].parse().unwrap()).unwrap();
            let copy = sp::Conn::try_from(
                std::os::fd::AsFd::as_fd(&conn)
                    .try_clone_to_owned()
                    .unwrap(),
            )
            .unwrap();
            Channel {
                tx: Box::new(conn),
                rx: Box::new(copy),
            }
        }
        other => panic!("unknown facility {other}"),
    };
    let msgpack_tx = Typed::<_, Tick>::new(&channel.tx).with_encoding(Encoding::MessagePack);
    let cbor_tx = Typed::<_, Tick>::new(&channel.tx).with_encoding(Encoding::Cbor);
    let typed_rx = Typed::<_, Tick>::new(&channel.rx);
    let mut buf = vec![0u8; channel.rx.recv_buffer_hint().unwrap()];
    let mut typed = None;
    loop {
        if let Some(encoding) = typed {
            let typed_tx = match encoding {
                Encoding::Cbor => &cbor_tx,
                _ => &msgpack_tx,
            };
            // A control message is not typed: it comes back as Undecodable
            // with its bytes.
            match typed_rx.recv_tagged(Wait::Forever) {
                Ok((tick, _)) => typed_tx.send(&tick).unwrap(),
                Err(unipc::Error::Undecodable { bytes, .. }) => {
                    if !control(&channel, &bytes, &mut typed) {
                        return;
                    }
                }
                Err(other) => panic!("peer: {other}"),
            }
        } else {
            let got = channel.rx.recv_into(&mut buf, Wait::Forever).unwrap();
            let bytes = &buf[..got.len];
            if bytes[0] == 0 {
                if !control(&channel, bytes, &mut typed) {
                    return;
                }
            } else {
                channel.tx.send(bytes).unwrap();
            }
        }
    }
}

/// Switches mode and acknowledges; false at END.
fn control(channel: &Channel, bytes: &[u8], typed: &mut Option<Encoding>) -> bool {
    match bytes {
        b if b == END => return false,
        b if b == TO_RAW => *typed = None,
        b if b == TO_MSGPACK => *typed = Some(Encoding::MessagePack),
        b if b == TO_CBOR => *typed = Some(Encoding::Cbor),
        other => panic!("peer: unexpected {other:?}"),
    }
    channel.tx.send(bytes).unwrap();
    true
}

fn switch(channel: &Channel, to: &[u8], buf: &mut [u8]) {
    channel.tx.send(to).unwrap();
    let got = channel.rx.recv_into(buf, Wait::Forever).unwrap();
    assert_eq!(&buf[..got.len], to);
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn run(kind: &str, rounds: u64) {
    let (made, spec, owners) = make(kind);
    let mut child: Child = Command::new(std::env::current_exe().unwrap())
        .env(ROLE, &spec)
        .spawn()
        .unwrap();
    let channel = made.unwrap_or_else(|| {
        let listener = owners[0].downcast_ref::<sp::Listener>().unwrap();
        let conn = listener.accept().unwrap();
        let copy = sp::Conn::try_from(
            std::os::fd::AsFd::as_fd(&conn)
                .try_clone_to_owned()
                .unwrap(),
        )
        .unwrap();
        Channel {
            tx: Box::new(conn),
            rx: Box::new(copy),
        }
    });
    let typed_rx = Typed::<_, Tick>::new(&channel.rx);
    let msgpack_tx = Typed::<_, Tick>::new(&channel.tx).with_encoding(Encoding::MessagePack);
    let cbor_tx = Typed::<_, Tick>::new(&channel.tx).with_encoding(Encoding::Cbor);
    let mut buf = vec![0u8; channel.rx.recv_buffer_hint().unwrap()];
    // Raw, MessagePack, CBOR.
    let modes: [(Option<Encoding>, &[u8]); 3] = [
        (None, TO_RAW),
        (Some(Encoding::MessagePack), TO_MSGPACK),
        (Some(Encoding::Cbor), TO_CBOR),
    ];
    let mut ns: [Vec<f64>; 3] = Default::default();
    // One warm-up round, not counted.
    for round in 0..=PAIRS {
        // Rotate which goes first.
        for k in 0..3 {
            let mode = (round + k) % 3;
            let (encoding, to) = modes[mode];
            switch(&channel, to, &mut buf);
            let started = Instant::now();
            match encoding {
                Some(encoding) => {
                    let typed_tx = match encoding {
                        Encoding::Cbor => &cbor_tx,
                        _ => &msgpack_tx,
                    };
                    for seq in 0..rounds {
                        let tick = Tick::new(seq);
                        typed_tx.send(&tick).unwrap();
                        let back = typed_rx.recv().unwrap();
                        debug_assert_eq!(back, tick);
                    }
                }
                None => {
                    for seq in 0..rounds {
                        let mut raw = Tick::new(seq).raw();
                        raw[0] |= 1;
                        channel.tx.send(&raw).unwrap();
                        let got = channel.rx.recv_into(&mut buf, Wait::Forever).unwrap();
                        debug_assert_eq!(&buf[..got.len], &raw);
                    }
                }
            }
            let batch = started.elapsed().as_nanos() as f64 / rounds as f64;
            if round > 0 {
                ns[mode].push(batch);
            }
        }
    }
    channel.tx.send(END).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let min = |xs: &[f64]| xs.iter().copied().fold(f64::INFINITY, f64::min);
    let [raw_ns, msgpack_ns, cbor_ns] = ns;
    let raw_min = min(&raw_ns);
    let raw = median(raw_ns);
    println!(
        "{kind:>15}  raw          {:>8.2} µs                (fastest batch {:.2} µs; 25 bytes)",
        raw / 1000.0,
        raw_min / 1000.0,
    );
    for (encoding, xs) in [
        (Encoding::MessagePack, msgpack_ns),
        (Encoding::Cbor, cbor_ns),
    ] {
        let encoded = unipc::message::typed::encode_as(&Tick::new(1), None, encoding)
            .unwrap()
            .len();
        let fastest = min(&xs);
        let typed = median(xs);
        println!(
            "{kind:>15}  {:<11}  {:>8.2} µs  typed/raw x{:.3}  (fastest batch {:.2} µs, x{:.3}; {encoded} bytes)",
            encoding.name(),
            typed / 1000.0,
            typed / raw,
            fastest / 1000.0,
            fastest / raw_min,
        );
    }
    drop(channel);
    drop(owners);
}

/// The encoding alone, in this process: what a typed round trip adds
/// (two encodes and two decodes).
fn codec() {
    let n = 200_000u64;
    let ticks: Vec<Tick> = (0..64).map(Tick::new).collect();
    for encoding in [Encoding::MessagePack, Encoding::Cbor] {
        let started = Instant::now();
        let mut bytes = Vec::new();
        for i in 0..n {
            bytes = unipc::message::typed::encode_as(
                std::hint::black_box(&ticks[i as usize % 64]),
                None,
                encoding,
            )
            .unwrap();
        }
        let encode = started.elapsed().as_nanos() as f64 / n as f64;
        let started = Instant::now();
        for _ in 0..n {
            let tick: Tick =
                unipc::message::typed::decode(std::hint::black_box(&bytes), None).unwrap();
            std::hint::black_box(tick);
        }
        let decode = started.elapsed().as_nanos() as f64 / n as f64;
        println!(
            "{:>15}  {:<11}  encode {encode:.0} ns (into a new Vec; Typed reuses one)  decode {decode:.0} ns ({} bytes)",
            "codec",
            encoding.name(),
            bytes.len()
        );
    }
}

/// A one-slot queue in this process: what `Typed` costs over the bytes,
/// without a system call or another CPU.
struct Loopback {
    slot: std::cell::RefCell<Vec<u8>>,
}

impl Messenger for Loopback {
    fn object(&self) -> unipc::ObjectName {
        unipc::ObjectName::from("loopback")
    }

    fn limits(&self) -> unipc::Result<Limits> {
        Ok(Limits::new(256, Some(1)))
    }

    fn send_tagged(&self, message: &[u8], _: Tag, _: Wait) -> unipc::Result<()> {
        let mut slot = self.slot.borrow_mut();
        slot.clear();
        slot.extend_from_slice(message);
        Ok(())
    }

    fn recv_into(&self, buf: &mut [u8], _: Wait) -> unipc::Result<Received> {
        let slot = self.slot.borrow();
        buf[..slot.len()].copy_from_slice(&slot);
        Ok(Received::new(slot.len(), Tag::None))
    }
}

/// Send and receive through `Typed` over [`Loopback`], against the same
/// with the raw bytes: the per-message cost of `Typed` (one encode, one
/// decode, and its own handling).
fn loopback() {
    let n = 200_000u64;
    let queue = Loopback {
        slot: std::cell::RefCell::new(Vec::with_capacity(256)),
    };
    let mut buf = vec![0u8; 256];
    let started = Instant::now();
    for seq in 0..n {
        let raw = Tick::new(seq).raw();
        queue.send(std::hint::black_box(&raw)).unwrap();
        let got = queue.recv_into(&mut buf, Wait::Forever).unwrap();
        std::hint::black_box(&buf[..got.len]);
    }
    let raw = started.elapsed().as_nanos() as f64 / n as f64;
    for encoding in [Encoding::MessagePack, Encoding::Cbor] {
        let typed = Typed::<_, Tick>::new(&queue).with_encoding(encoding);
        let started = Instant::now();
        for seq in 0..n {
            typed.send(std::hint::black_box(&Tick::new(seq))).unwrap();
            std::hint::black_box(typed.recv().unwrap());
        }
        let ns = started.elapsed().as_nanos() as f64 / n as f64;
        println!(
            "{:>15}  {:<11}  send + recv {ns:.0} ns, raw bytes {raw:.0} ns: Typed adds {:.0} ns a message",
            "loopback",
            encoding.name(),
            ns - raw
        );
    }
}

fn main() {
    if let Ok(spec) = std::env::var(ROLE) {
        return peer(&spec);
    }
    let rounds: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2000);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "typed round trip vs raw, {rounds} round trips a batch, median of {PAIRS} batches each; load average {}",
        load.split(' ').take(3).collect::<Vec<_>>().join(" ")
    );
    codec();
    loopback();
    if std::env::args().any(|a| a == "codec") {
        return;
    }
    for kind in ["posix-mq", "sysv-mq", "unix-seqpacket", "ring"] {
        run(kind, rounds);
    }
}
