//! One conformance suite over every message facility: the same assertions,
//! through `&dyn Messenger` alone, each between two processes. A facility
//! that implements the interface passes these unchanged, so code written
//! against `Messenger` works with any of them.
//!
//! Each facility gets a channel with two ends (parent and peer), each end a
//! sender and a receiver: two queues for the queue facilities, one
//! connected socket for the socket facilities. `typed.rs` makes its
//! channels here too.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use unipc::message::dgram::{UdpSocket, UnixDatagram};
use unipc::message::posix_mq as pmq;
use unipc::message::ring;
use unipc::message::sysv_mq as smq;
use unipc::message::{Messenger, Tag, Wait};
use unipc::name::{PosixName, SysvKey};
use unipc::stream::seqpacket as sp;
use unipc::Error;

use crate::util;

pub(crate) const PATIENCE: Wait = Wait::For(Duration::from_secs(10));

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Kind {
    PosixMq,
    SysvMq,
    UnixDgram,
    Udp,
    Seqpacket,
    Ring,
}

impl Kind {
    /// The tag the facility carries, and one it does not.
    pub(crate) fn tags(self) -> (Tag, Tag) {
        match self {
            Kind::PosixMq => (Tag::Priority(5), Tag::Type(5)),
            Kind::SysvMq => (Tag::Type(5), Tag::Priority(5)),
            _ => (Tag::None, Tag::Priority(5)),
        }
    }

    /// Whether a full channel refuses a send instead of dropping it.
    fn flow_controlled(self) -> bool {
        self != Kind::Udp
    }
}

/// One side of a channel.
pub(crate) struct End {
    pub(crate) tx: Box<dyn Messenger>,
    pub(crate) rx: Box<dyn Messenger>,
    /// Queue owners that remove the queues when the parent's end drops.
    _owners: Vec<Box<dyn std::any::Any>>,
}

fn dup(fd: impl AsFd) -> OwnedFd {
    fd.as_fd().try_clone_to_owned().expect("dup")
}

fn socket_end(kind: Kind, fd: OwnedFd) -> End {
    let copy = dup(&fd);
    let (tx, rx): (Box<dyn Messenger>, Box<dyn Messenger>) = match kind {
        Kind::UnixDgram => (
            Box::new(UnixDatagram::try_from(copy).unwrap()),
            Box::new(UnixDatagram::try_from(fd).unwrap()),
        ),
        Kind::Udp => (
            Box::new(UdpSocket::try_from(copy).unwrap()),
            Box::new(UdpSocket::try_from(fd).unwrap()),
        ),
        Kind::Seqpacket => (
            Box::new(sp::Conn::try_from(copy).unwrap()),
            Box::new(sp::Conn::try_from(fd).unwrap()),
        ),
        _ => unreachable!("{kind:?} is not a socket"),
    };
    End {
        tx,
        rx,
        _owners: Vec::new(),
    }
}

/// A channel made by the parent, its peer not started yet.
pub(crate) struct Channel {
    pub(crate) end: End,
    pub(crate) peer: util::Peer,
    /// The peer's socket, held until the peer has inherited it.
    theirs: Option<OwnedFd>,
}

impl Channel {
    /// Starts the peer, then closes the parent's copy of the peer's end.
    pub(crate) fn spawn(self) -> (End, util::Running) {
        let running = self.peer.spawn();
        drop(self.theirs);
        (self.end, running)
    }
}

/// Makes the channel in the parent, with the peer told how to find its end.
pub(crate) fn channel(kind: Kind, test: &str, role: &str) -> Channel {
    let peer = util::Peer::new(test, role).arg("KIND", format!("{kind:?}"));
    match kind {
        Kind::PosixMq => {
            let names: Vec<PosixName> = (0..2)
                .map(|_| format!("/{}", util::unique("conf")).parse().unwrap())
                .collect();
            let options = pmq::QueueOptions::new()
                .max_messages(4)
                .max_message_size(1024)
                .exclusive(true);
            let to_peer = options.create(&names[0]).unwrap();
            let from_peer = options.create(&names[1]).unwrap();
            let open =
                |name: &PosixName| Box::new(pmq::Queue::open(name).unwrap()) as Box<dyn Messenger>;
            let end = End {
                tx: open(&names[0]),
                rx: open(&names[1]),
                _owners: vec![Box::new(to_peer), Box::new(from_peer)],
            };
            Channel {
                end,
                peer: peer
                    .arg("RX", names[0].as_str())
                    .arg("TX", names[1].as_str()),
                theirs: None,
            }
        }
        Kind::Ring => {
            let names: Vec<PosixName> = (0..2)
                .map(|_| format!("/{}", util::unique("conf")).parse().unwrap())
                .collect();
            let options = ring::RingOptions::new()
                .capacity(4)
                .max_size(1024)
                .exclusive(true);
            let to_peer = options.create(&names[0]).unwrap();
            let from_peer = options.create(&names[1]).unwrap();
            let open = |name: &PosixName| ring::Ring::open(name).unwrap();
            let end = End {
                tx: Box::new(open(&names[0]).into_sender().unwrap()),
                rx: Box::new(open(&names[1]).into_receiver().unwrap()),
                _owners: vec![Box::new(to_peer), Box::new(from_peer)],
            };
            Channel {
                end,
                peer: peer
                    .arg("RX", names[0].as_str())
                    .arg("TX", names[1].as_str()),
                theirs: None,
            }
        }
        Kind::SysvMq => {
            let to_peer = smq::QueueOptions::new().create(SysvKey::Private).unwrap();
            let from_peer = smq::QueueOptions::new().create(SysvKey::Private).unwrap();
            let (rx_id, tx_id) = (to_peer.id(), from_peer.id());
            let end = End {
                tx: Box::new(smq::Queue::open_id(rx_id).unwrap()),
                rx: Box::new(smq::Queue::open_id(tx_id).unwrap()),
                _owners: vec![Box::new(to_peer), Box::new(from_peer)],
            };
            Channel {
                end,
                peer: peer
                    .arg("RX", rx_id.to_string())
                    .arg("TX", tx_id.to_string()),
                theirs: None,
            }
        }
        Kind::UnixDgram | Kind::Seqpacket | Kind::Udp => {
            let (ours, theirs): (OwnedFd, OwnedFd) = match kind {
                Kind::UnixDgram => {
                    let (a, b) = UnixDatagram::pair().unwrap();
                    (a.into(), b.into())
                }
                Kind::Seqpacket => {
                    let (a, b) = sp::pair().unwrap();
                    (a.into(), b.into())
                }
                _ => {
                    let any = "127.0.0.1:0".parse().unwrap();
                    let mut a = UdpSocket::bind_addr(any).unwrap();
                    let mut b = UdpSocket::bind_addr(any).unwrap();
                    a.connect_addr(b.local_addr()).unwrap();
                    b.connect_addr(a.local_addr()).unwrap();
                    (a.into(), b.into())
                }
            };
            Channel {
                end: socket_end(kind, ours),
                peer: peer.fd(theirs.as_fd()),
                theirs: Some(theirs),
            }
        }
    }
}

/// The peer's end, rebuilt from what the parent passed.
pub(crate) fn peer_end() -> (Kind, End) {
    let kind = match util::arg("KIND").as_str() {
        "PosixMq" => Kind::PosixMq,
        "SysvMq" => Kind::SysvMq,
        "UnixDgram" => Kind::UnixDgram,
        "Udp" => Kind::Udp,
        "Seqpacket" => Kind::Seqpacket,
        "Ring" => Kind::Ring,
        other => panic!("unknown kind {other}"),
    };
    let end = match kind {
        Kind::PosixMq => {
            let open = |var: &str| {
                Box::new(pmq::Queue::open(&util::arg(var).parse().unwrap()).unwrap())
                    as Box<dyn Messenger>
            };
            End {
                tx: open("TX"),
                rx: open("RX"),
                _owners: Vec::new(),
            }
        }
        Kind::SysvMq => {
            let open = |var: &str| {
                Box::new(smq::Queue::open_id(util::arg(var).parse().unwrap()).unwrap())
                    as Box<dyn Messenger>
            };
            End {
                tx: open("TX"),
                rx: open("RX"),
                _owners: Vec::new(),
            }
        }
        Kind::Ring => {
            let open = |var: &str| ring::Ring::open(&util::arg(var).parse().unwrap()).unwrap();
            End {
                tx: Box::new(open("TX").into_sender().unwrap()),
                rx: Box::new(open("RX").into_receiver().unwrap()),
                _owners: Vec::new(),
            }
        }
        _ => socket_end(kind, util::passed_fd(0)),
    };
    (kind, end)
}

fn pattern(size: usize) -> Vec<u8> {
    (0..size).map(|i| ((size + i) % 251) as u8).collect()
}

/// The sizes each facility must carry whole, up to its own limit.
fn sizes(end: &End) -> Vec<usize> {
    let max = end.tx.limits().unwrap().max_message_size;
    let mut sizes: Vec<usize> = [1, 7, 100, 1000].into_iter().filter(|&s| s < max).collect();
    sizes.push(max);
    sizes
}

// ---- the assertions, shared by every facility ----

/// Every message arrives whole, alone, in order, with its tag; a tag the
/// facility does not carry is refused.
fn boundaries(kind: Kind, test: &str) {
    if util::role().is_some() {
        let (kind, end) = peer_end();
        let (tag, _) = kind.tags();
        for size in sizes(&end) {
            end.tx.send_tagged(&pattern(size), tag, PATIENCE).unwrap();
        }
        return;
    }
    let (end, peer) = channel(kind, test, "sender").spawn();
    let (tag, foreign) = kind.tags();
    for size in sizes(&end) {
        let (bytes, got_tag) = end
            .rx
            .recv_vec(PATIENCE)
            .unwrap_or_else(|e| panic!("{kind:?} size {size}: {e}"));
        assert_eq!(
            bytes.len(),
            size,
            "{kind:?}: one receive is one whole message"
        );
        assert_eq!(
            bytes,
            pattern(size),
            "{kind:?}: content of the {size}-byte message"
        );
        assert_eq!(got_tag, tag, "{kind:?}: the tag travels with the message");
    }
    match end.tx.send_tagged(b"x", foreign, Wait::Never) {
        Err(Error::Unsupported { .. }) => {}
        other => panic!("{kind:?}: a foreign tag must be refused, got {other:?}"),
    }
    peer.wait_success();
}

/// A message over the limit is refused before the call, naming both sizes,
/// and nothing of it arrives.
fn oversize(kind: Kind, test: &str) {
    if util::role().is_some() {
        let (_, end) = peer_end();
        let (bytes, _) = end.rx.recv_vec(PATIENCE).unwrap();
        assert_eq!(
            bytes, b"after",
            "only the message after the refused one arrives"
        );
        return;
    }
    let (end, peer) = channel(kind, test, "receiver").spawn();
    let limit = end.tx.limits().unwrap().max_message_size;
    let err = end
        .tx
        .send_tagged(&vec![0; limit + 1], Tag::None, Wait::Never)
        .unwrap_err();
    match &err {
        Error::MessageTooLarge { size, limit: l, .. } => {
            assert_eq!((*size, *l), (limit + 1, limit))
        }
        other => panic!("{kind:?}: expected MessageTooLarge, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&(limit + 1).to_string()) && text.contains(&limit.to_string()),
        "{text}"
    );
    end.tx.send(b"after").unwrap();
    peer.wait_success();
}

/// A buffer smaller than the waiting message is an error, never a cut
/// message, and the message is still there to be received whole.
fn small_buffer(kind: Kind, test: &str) {
    if util::role().is_some() {
        let (_, end) = peer_end();
        end.tx.send(&pattern(100)).unwrap();
        return;
    }
    let (end, peer) = channel(kind, test, "sender").spawn();
    peer.wait_success();
    let mut small = [0u8; 10];
    let waited = Instant::now();
    loop {
        match end
            .rx
            .recv_into(&mut small, Wait::For(Duration::from_secs(10)))
        {
            Err(Error::BufferTooSmall { buffer: 10, .. }) => break,
            Err(Error::TimedOut { .. }) | Err(Error::Empty { .. })
                if waited.elapsed() < Duration::from_secs(10) => {}
            other => panic!("{kind:?}: expected BufferTooSmall, got {other:?}"),
        }
    }
    let (bytes, _) = end.rx.recv_vec(PATIENCE).unwrap();
    assert_eq!(bytes, pattern(100), "{kind:?}: the message stayed whole");
}

/// Nothing waiting: non-blocking is Empty at once, timed is TimedOut after
/// at least the timeout, and a timed wait ends when a message arrives.
fn empty_and_timeout(kind: Kind, test: &str) {
    if util::role().is_some() {
        let (_, end) = peer_end();
        end.tx.send(b"late").unwrap();
        return;
    }
    let channel = channel(kind, test, "sender");
    let end = &channel.end;
    match end.rx.recv_vec(Wait::Never) {
        Err(Error::Empty { .. }) => {}
        other => panic!("{kind:?}: expected Empty, got {other:?}"),
    }
    let timeout = Duration::from_millis(200);
    let started = Instant::now();
    match end.rx.recv_vec(Wait::For(timeout)) {
        Err(Error::TimedOut { .. }) => {
            assert!(started.elapsed() >= timeout, "{kind:?}: returned early")
        }
        other => panic!("{kind:?}: expected TimedOut, got {other:?}"),
    }
    let (end, peer) = channel.spawn();
    let (bytes, _) = end.rx.recv_vec(PATIENCE).unwrap();
    assert_eq!(bytes, b"late");
    peer.wait_success();
}

/// A peer blocked in a receive wakes when the parent sends, and answers.
fn blocking_wakes(kind: Kind, test: &str) {
    if util::role().is_some() {
        let (_, end) = peer_end();
        let got = end.rx.recv().unwrap();
        assert_eq!(got, b"wake");
        end.tx.send(b"awake").unwrap();
        return;
    }
    let (end, peer) = channel(kind, test, "waiter").spawn();
    std::thread::sleep(Duration::from_millis(150));
    end.tx.send(b"wake").unwrap();
    let (bytes, _) = end.rx.recv_vec(PATIENCE).unwrap();
    assert_eq!(bytes, b"awake");
    peer.wait_success();
}

/// A full channel refuses a non-blocking send with Full and loses nothing:
/// the peer drains exactly as many messages as were accepted.
fn full_loses_nothing(kind: Kind, test: &str) {
    if util::role().is_some() {
        let (_, end) = peer_end();
        let mut count = 0u64;
        while let Ok((bytes, _)) = end.rx.recv_vec(Wait::For(Duration::from_millis(300))) {
            assert_eq!(bytes, count.to_le_bytes(), "messages arrive once, in order");
            count += 1;
        }
        println!("{count}");
        return;
    }
    if !kind.flow_controlled() {
        util::skip(format!(
            "{kind:?}: a datagram channel without flow control drops instead of refusing"
        ));
        return;
    }
    let mut channel = channel(kind, test, "drainer");
    channel.peer = channel.peer.capture_stdout();
    let end = &channel.end;
    let mut sent = 0u64;
    loop {
        match end.tx.try_send(&sent.to_le_bytes()) {
            Ok(()) => sent += 1,
            Err(Error::Full { .. }) => break,
            Err(other) => panic!("{kind:?}: expected Full, got {other:?}"),
        }
        assert!(sent < 1_000_000, "{kind:?}: never became full");
    }
    assert!(sent > 0, "{kind:?}: nothing fit");
    let (_end, mut running) = channel.spawn();
    let mut out = String::new();
    running
        .child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    running.wait_success();
    let drained: u64 = out
        .lines()
        .find_map(|l| l.trim().parse().ok())
        .expect("the peer reports its count");
    assert_eq!(
        drained, sent,
        "{kind:?}: every accepted message arrives, no more"
    );
}

macro_rules! conformance {
    ($($module:ident => $kind:expr),* $(,)?) => {$(
        mod $module {
            use super::Kind;
            const KIND: Kind = $kind;
            fn name(test: &str) -> String {
                format!("message_conformance::{}::{test}", stringify!($module))
            }
            #[test]
            fn boundaries() {
                super::boundaries(KIND, &name("boundaries"));
            }
            #[test]
            fn oversize() {
                super::oversize(KIND, &name("oversize"));
            }
            #[test]
            fn small_buffer() {
                super::small_buffer(KIND, &name("small_buffer"));
            }
            #[test]
            fn empty_and_timeout() {
                super::empty_and_timeout(KIND, &name("empty_and_timeout"));
            }
            #[test]
            fn blocking_wakes() {
                super::blocking_wakes(KIND, &name("blocking_wakes"));
            }
            #[test]
            fn full_loses_nothing() {
                super::full_loses_nothing(KIND, &name("full_loses_nothing"));
            }
        }
    )*};
}

conformance! {
    posix_mq => Kind::PosixMq,
    sysv_mq => Kind::SysvMq,
    unix_dgram => Kind::UnixDgram,
    udp => Kind::Udp,
    seqpacket => Kind::Seqpacket,
    shm_ring => Kind::Ring,
}
