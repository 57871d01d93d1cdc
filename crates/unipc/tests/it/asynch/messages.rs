//! The message conformance checks once more, through `AsyncMessenger`
//! (`FdMessenger` over a descriptor, `Bridge` over System V queues and the
//! ring), each between two processes under the multi-threaded runtime;
//! plus receive futures dropped mid-wait that must lose nothing, and the
//! eventfd.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use unipc::asynch::{AsyncEventFd, Bridge, FdMessenger};
use unipc::message::dgram::{UdpSocket, UnixDatagram};
use unipc::message::posix_mq as pmq;
use unipc::message::ring;
use unipc::message::sysv_mq as smq;
use unipc::message::{Messenger, Tag};
use unipc::name::{PosixName, SysvKey};
use unipc::stream::seqpacket as sp;
use unipc::sync::eventfd::{EventFd, EventFdOptions};
use unipc::Error;

use super::{patient, poll_once, wait_stdout, wait_success, DynMessenger};
use crate::util;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    PosixMq,
    SysvMq,
    UnixDgram,
    Udp,
    Seqpacket,
    Ring,
}

impl Kind {
    fn parse(text: &str) -> Kind {
        match text {
            "PosixMq" => Kind::PosixMq,
            "SysvMq" => Kind::SysvMq,
            "UnixDgram" => Kind::UnixDgram,
            "Udp" => Kind::Udp,
            "Seqpacket" => Kind::Seqpacket,
            "Ring" => Kind::Ring,
            other => panic!("unknown kind {other}"),
        }
    }

    /// The tag the facility carries, and one it does not.
    fn tags(self) -> (Tag, Tag) {
        match self {
            Kind::PosixMq => (Tag::Priority(5), Tag::Type(5)),
            Kind::SysvMq => (Tag::Type(5), Tag::Priority(5)),
            _ => (Tag::None, Tag::Priority(5)),
        }
    }

    fn flow_controlled(self) -> bool {
        self != Kind::Udp
    }
}

/// One side of a channel, async.
struct End {
    tx: Box<dyn DynMessenger>,
    rx: Box<dyn DynMessenger>,
    /// Owners that remove the objects when the parent's end drops.
    _owners: Vec<Box<dyn std::any::Any + Send>>,
}

fn dup(fd: impl AsFd) -> OwnedFd {
    fd.as_fd().try_clone_to_owned().expect("dup")
}

fn boxed<M: unipc::asynch::Pollable + 'static>(m: M) -> Box<dyn DynMessenger> {
    Box::new(FdMessenger::new(m).expect("register"))
}

fn bridged<M: Messenger + Send + 'static>(m: M) -> Box<dyn DynMessenger> {
    Box::new(Bridge::new(m).expect("bridge"))
}

fn socket_end(kind: Kind, fd: OwnedFd) -> End {
    let copy = dup(&fd);
    let (tx, rx) = match kind {
        Kind::UnixDgram => (
            boxed(UnixDatagram::try_from(copy).unwrap()),
            boxed(UnixDatagram::try_from(fd).unwrap()),
        ),
        Kind::Udp => (
            boxed(UdpSocket::try_from(copy).unwrap()),
            boxed(UdpSocket::try_from(fd).unwrap()),
        ),
        Kind::Seqpacket => (
            boxed(sp::Conn::try_from(copy).unwrap()),
            boxed(sp::Conn::try_from(fd).unwrap()),
        ),
        _ => unreachable!("{kind:?} is not a socket"),
    };
    End {
        tx,
        rx,
        _owners: Vec::new(),
    }
}

struct Channel {
    end: End,
    peer: util::Peer,
    theirs: Option<OwnedFd>,
}

impl Channel {
    fn spawn(self) -> (End, util::Running) {
        let running = self.peer.spawn();
        drop(self.theirs);
        (self.end, running)
    }
}

fn unique_posix() -> PosixName {
    format!("/{}", util::unique("async")).parse().unwrap()
}

/// Makes the channel in the parent (inside the runtime), the peer told how
/// to find its end.
fn channel(kind: Kind, test: &str, role: &str) -> Channel {
    let peer = util::Peer::new(test, role).arg("KIND", format!("{kind:?}"));
    match kind {
        Kind::PosixMq => {
            let names = [unique_posix(), unique_posix()];
            let options = pmq::QueueOptions::new()
                .max_messages(4)
                .max_message_size(1024)
                .exclusive(true);
            let to_peer = options.create(&names[0]).unwrap();
            let from_peer = options.create(&names[1]).unwrap();
            let end = End {
                tx: boxed(pmq::Queue::open(&names[0]).unwrap()),
                rx: boxed(pmq::Queue::open(&names[1]).unwrap()),
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
            let names = [unique_posix(), unique_posix()];
            let options = ring::RingOptions::new()
                .capacity(4)
                .max_size(1024)
                .exclusive(true);
            let to_peer = options.create(&names[0]).unwrap();
            let from_peer = options.create(&names[1]).unwrap();
            let open = |name: &PosixName| ring::Ring::open(name).unwrap();
            let end = End {
                tx: bridged(open(&names[0]).into_sender().unwrap()),
                rx: bridged(open(&names[1]).into_receiver().unwrap()),
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
                tx: bridged(smq::Queue::open_id(rx_id).unwrap()),
                rx: bridged(smq::Queue::open_id(tx_id).unwrap()),
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
fn peer_end() -> (Kind, End) {
    let kind = Kind::parse(&util::arg("KIND"));
    let end = match kind {
        Kind::PosixMq => {
            let open =
                |var: &str| boxed(pmq::Queue::open(&util::arg(var).parse().unwrap()).unwrap());
            End {
                tx: open("TX"),
                rx: open("RX"),
                _owners: Vec::new(),
            }
        }
        Kind::SysvMq => {
            let open =
                |var: &str| bridged(smq::Queue::open_id(util::arg(var).parse().unwrap()).unwrap());
            End {
                tx: open("TX"),
                rx: open("RX"),
                _owners: Vec::new(),
            }
        }
        Kind::Ring => {
            let open = |var: &str| ring::Ring::open(&util::arg(var).parse().unwrap()).unwrap();
            End {
                tx: bridged(open("TX").into_sender().unwrap()),
                rx: bridged(open("RX").into_receiver().unwrap()),
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

fn sizes(end: &End) -> Vec<usize> {
    let max = end.tx.limits().unwrap().max_message_size;
    let mut sizes: Vec<usize> = [1, 7, 100, 1000].into_iter().filter(|&s| s < max).collect();
    sizes.push(max);
    sizes
}

// ---- the conformance checks, through AsyncMessenger ----

/// Every message arrives whole, alone, in order, with its tag; a foreign
/// tag is refused.
async fn boundaries(kind: Kind, test: &str) {
    if util::role().is_some() {
        let (kind, end) = peer_end();
        let (tag, _) = kind.tags();
        for size in sizes(&end) {
            patient("send", end.tx.send_tagged(&pattern(size), tag))
                .await
                .unwrap();
        }
        return;
    }
    let (end, peer) = channel(kind, test, "sender").spawn();
    let (tag, foreign) = kind.tags();
    for size in sizes(&end) {
        let (bytes, got_tag) = patient("receive", end.rx.recv_vec())
            .await
            .unwrap_or_else(|e| panic!("{kind:?} size {size}: {e}"));
        assert_eq!(bytes, pattern(size), "{kind:?}: the {size}-byte message");
        assert_eq!(got_tag, tag, "{kind:?}: the tag travels with the message");
    }
    match end.tx.send_tagged(b"x", foreign).await {
        Err(Error::Unsupported { .. }) => {}
        other => panic!("{kind:?}: a foreign tag must be refused, got {other:?}"),
    }
    wait_success(peer).await;
}

/// A message over the limit is refused naming both sizes; nothing of it
/// arrives.
async fn oversize(kind: Kind, test: &str) {
    if util::role().is_some() {
        let (_, end) = peer_end();
        let (bytes, _) = patient("receive", end.rx.recv_vec()).await.unwrap();
        assert_eq!(bytes, b"after", "only the message after the refused one");
        return;
    }
    let (end, peer) = channel(kind, test, "receiver").spawn();
    let limit = end.tx.limits().unwrap().max_message_size;
    match end.tx.send_tagged(&vec![0; limit + 1], Tag::None).await {
        Err(Error::MessageTooLarge { size, limit: l, .. }) => {
            assert_eq!((size, l), (limit + 1, limit))
        }
        other => panic!("{kind:?}: expected MessageTooLarge, got {other:?}"),
    }
    patient("send", end.tx.send(b"after")).await.unwrap();
    wait_success(peer).await;
}

/// A buffer smaller than the message is an error, never a cut message, and
/// the message stays to be received whole.
async fn small_buffer(kind: Kind, test: &str) {
    if util::role().is_some() {
        let (_, end) = peer_end();
        patient("send", end.tx.send(&pattern(100))).await.unwrap();
        return;
    }
    let (end, peer) = channel(kind, test, "sender").spawn();
    wait_success(peer).await;
    let mut small = [0u8; 10];
    match patient("receive", end.rx.recv_into(&mut small)).await {
        Err(Error::BufferTooSmall { buffer: 10, .. }) => {}
        other => panic!("{kind:?}: expected BufferTooSmall, got {other:?}"),
    }
    let (bytes, _) = patient("receive", end.rx.recv_vec()).await.unwrap();
    assert_eq!(bytes, pattern(100), "{kind:?}: the message stayed whole");
}

/// Nothing waiting: a timed receive ends with TimedOut after at least the
/// timeout (tokio's timeout, and `recv_timeout`'s typed error), and a
/// message that comes later is received.
async fn empty_and_timeout(kind: Kind, test: &str) {
    if util::role().is_some() {
        let (_, end) = peer_end();
        patient("send", end.tx.send(b"late")).await.unwrap();
        return;
    }
    let channel = channel(kind, test, "sender");
    let timeout = Duration::from_millis(200);
    let started = Instant::now();
    assert!(
        tokio::time::timeout(timeout, channel.end.rx.recv_vec())
            .await
            .is_err(),
        "{kind:?}: nothing was sent"
    );
    assert!(started.elapsed() >= timeout, "{kind:?}: returned early");
    let (end, peer) = channel.spawn();
    let (bytes, _) = patient("receive", end.rx.recv_vec()).await.unwrap();
    assert_eq!(bytes, b"late");
    wait_success(peer).await;
}

/// A peer awaiting a receive wakes when the parent sends, and answers.
async fn blocking_wakes(kind: Kind, test: &str) {
    if util::role().is_some() {
        let (_, end) = peer_end();
        let (got, _) = patient("receive", end.rx.recv_vec()).await.unwrap();
        assert_eq!(got, b"wake");
        patient("send", end.tx.send(b"awake")).await.unwrap();
        return;
    }
    let (end, peer) = channel(kind, test, "waiter").spawn();
    tokio::time::sleep(Duration::from_millis(150)).await;
    patient("send", end.tx.send(b"wake")).await.unwrap();
    let (bytes, _) = patient("receive", end.rx.recv_vec()).await.unwrap();
    assert_eq!(bytes, b"awake");
    wait_success(peer).await;
}

/// A full channel makes a send wait; a send dropped while waiting (by a
/// timeout) sent nothing: the peer drains exactly the messages that were
/// accepted, each once and whole.
async fn full_loses_nothing(kind: Kind, test: &str) {
    if util::role().is_some() {
        let (_, end) = peer_end();
        let mut count = 0u64;
        while let Ok(got) =
            tokio::time::timeout(Duration::from_millis(300), end.rx.recv_vec()).await
        {
            let (bytes, _) = got.unwrap();
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
    let mut sent = 0u64;
    let mut dropped = 0;
    // Sends that find no room wait; each is dropped by the timeout. A few
    // in a row prove the channel is full, not slow.
    while dropped < 3 {
        let message = sent.to_le_bytes();
        let send = channel.end.tx.send_tagged(&message, Tag::None);
        match tokio::time::timeout(Duration::from_millis(30), send).await {
            Ok(result) => {
                result.unwrap();
                sent += 1;
                dropped = 0;
            }
            Err(_) => dropped += 1,
        }
        assert!(sent < 1_000_000, "{kind:?}: never became full");
    }
    assert!(sent > 0, "{kind:?}: nothing fit");
    let (_end, running) = channel.spawn();
    let out = wait_stdout(running).await;
    let drained: u64 = out
        .lines()
        .find_map(|l| l.trim().parse().ok())
        .expect("the peer reports its count");
    assert_eq!(drained, sent, "{kind:?}: every accepted message, no more");
}

/// Receive futures dropped mid-wait lose nothing: every message the peer
/// sent arrives once, in order, and nothing else. Each round drops one
/// receive after a single poll (so it surely registered its wait: with a
/// bridge, the helper starts taking a message for it) and runs another
/// under a timeout of 50 µs to 2 ms, while the peer sends one message
/// every ~200 µs.
async fn dropped_receives_lose_nothing(kind: Kind, test: &str) {
    const COUNT: u64 = 300;
    if util::role().is_some() {
        let (_, end) = peer_end();
        for i in 0..COUNT {
            patient("send", end.tx.send(&i.to_le_bytes()))
                .await
                .unwrap();
            std::thread::sleep(Duration::from_micros(50 + (i % 7) * 50));
        }
        // Keep this end open until the parent has checked for leftovers.
        let _ = tokio::time::timeout(super::PATIENCE, end.rx.recv_vec()).await;
        return;
    }
    let (end, peer) = channel(kind, test, "sender").spawn();
    let mut next = 0u64;
    let mut dropped = 0u64;
    let started = Instant::now();
    let check = |got: unipc::Result<(Vec<u8>, Tag)>, next: &mut u64| {
        let (bytes, _) = got.unwrap();
        assert_eq!(bytes, next.to_le_bytes(), "{kind:?}: once, in order");
        *next += 1;
    };
    let mut round = 0u64;
    while next < COUNT {
        assert!(
            started.elapsed() < super::PATIENCE,
            "{kind:?}: stuck at {next}"
        );
        round += 1;
        let mut once = Box::pin(end.rx.recv_vec());
        match poll_once(once.as_mut()).await {
            Some(got) => check(got, &mut next),
            None => dropped += 1,
        }
        drop(once);
        let wait = Duration::from_micros(50 + (round * 397) % 1950);
        match tokio::time::timeout(wait, end.rx.recv_vec()).await {
            Ok(got) => check(got, &mut next),
            Err(_) => dropped += 1,
        }
    }
    eprintln!(
        "{kind:?}: {dropped} receives dropped mid-wait, {COUNT} received, in {:?}",
        started.elapsed()
    );
    assert!(dropped > 0, "{kind:?}: no receive was ever dropped");
    // Nothing more is there: no duplicate, nothing left behind.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), end.rx.recv_vec())
            .await
            .is_err(),
        "{kind:?}: a message arrived twice"
    );
    patient("send", end.tx.send(b"done")).await.unwrap();
    wait_success(peer).await;
}

macro_rules! conformance {
    ($($module:ident => $kind:expr),* $(,)?) => {$(
        mod $module {
            use super::Kind;
            const KIND: Kind = $kind;
            fn name(test: &str) -> String {
                format!("asynch::messages::{}::{test}", stringify!($module))
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn boundaries() {
                super::boundaries(KIND, &name("boundaries")).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn oversize() {
                super::oversize(KIND, &name("oversize")).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn small_buffer() {
                super::small_buffer(KIND, &name("small_buffer")).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn empty_and_timeout() {
                super::empty_and_timeout(KIND, &name("empty_and_timeout")).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn blocking_wakes() {
                super::blocking_wakes(KIND, &name("blocking_wakes")).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn full_loses_nothing() {
                super::full_loses_nothing(KIND, &name("full_loses_nothing")).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn dropped_receives_lose_nothing() {
                super::dropped_receives_lose_nothing(KIND, &name("dropped_receives_lose_nothing")).await;
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

/// `recv_timeout` reports the blocking calls' typed error, naming the
/// object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recv_timeout_is_timed_out() {
    use unipc::asynch::AsyncMessenger;
    let queue = Bridge::new(smq::QueueOptions::new().create(SysvKey::Private).unwrap()).unwrap();
    let mut buf = [0u8; 16];
    match queue
        .recv_timeout(&mut buf, Duration::from_millis(50))
        .await
    {
        Err(Error::TimedOut { object, timeout }) => {
            assert!(object.as_str().starts_with("sysv-mq:"), "{object}");
            assert_eq!(timeout, Duration::from_millis(50));
        }
        other => panic!("expected TimedOut, got {other:?}"),
    }
    // A message that came after a receive was dropped is still there,
    // through the blocking interface too.
    queue.with(|q| q.try_send(b"x")).unwrap();
    assert_eq!(queue.recv().await.unwrap(), b"x");
}

/// A bridge dropped while it holds a message taken for a receive future
/// that was dropped gives it back: `into_inner` to the caller, and a plain
/// drop to the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_hands_back_what_it_holds() {
    use unipc::asynch::AsyncMessenger;
    let owner = smq::QueueOptions::new().create(SysvKey::Private).unwrap();
    for round in 0..2 {
        let bridge = Bridge::new(smq::Queue::open_id(owner.id()).unwrap()).unwrap();
        let mut receive = Box::pin(AsyncMessenger::recv_vec(&bridge));
        // Poll once: nothing there, so the future registers and waits.
        assert!(poll_once(receive.as_mut()).await.is_none());
        owner
            .send_tagged(b"held", Tag::Type(3), unipc::message::Wait::Never)
            .unwrap();
        // Give the helper time to take it for the waiting future.
        let deadline = Instant::now() + Duration::from_secs(5);
        while format!("{bridge:?}").contains("held: 0") && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        drop(receive);
        if round == 0 {
            let (_queue, held) = bridge.into_inner();
            assert_eq!(held, vec![(b"held".to_vec(), Tag::Type(3))]);
        } else {
            drop(bridge);
            let mut buf = [0u8; 16];
            let got = owner
                .recv_into(&mut buf, unipc::message::Wait::Never)
                .unwrap();
            assert_eq!((&buf[..got.len], got.tag), (&b"held"[..], Tag::Type(3)));
        }
    }
}

/// eventfd through the reactor, between two processes: a take dropped
/// mid-wait took nothing; the next take gets the peer's add.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventfd_round_trip_and_dropped_take() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use unipc::asynch::AsyncStream;
    use unipc::stream::pipe;
    const TEST: &str = "asynch::messages::eventfd_round_trip_and_dropped_take";
    if util::role().is_some() {
        let event = AsyncEventFd::new(EventFd::try_from(util::passed_fd(0)).unwrap()).unwrap();
        let go = pipe::Receiver::try_from(util::passed_fd(1)).unwrap();
        let got = patient("take", event.take()).await.unwrap();
        assert_eq!(got, 41);
        // Answer only once the parent has had a take dropped.
        let mut byte = [0u8; 1];
        let mut go = AsyncStream::new(go).unwrap();
        patient("go", go.read_exact(&mut byte)).await.unwrap();
        patient("add", event.add(got + 1)).await.unwrap();
        return;
    }
    let event = EventFdOptions::new().create().unwrap();
    let copy = dup(&event);
    let (go_w, go_r) = pipe::new().unwrap();
    let peer = util::Peer::new(TEST, "echo")
        .fd(copy.as_fd())
        .fd(go_r.as_fd())
        .spawn();
    drop((copy, go_r));
    let event = AsyncEventFd::new(event).unwrap();
    patient("add", event.add(41)).await.unwrap();
    // The peer takes the 41; ours would race it, so wait for it to be gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    while event.get_ref().count().unwrap() != 0 {
        assert!(Instant::now() < deadline, "the peer never took");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(20), event.take())
            .await
            .is_err(),
        "nothing to take yet"
    );
    let mut go_w = AsyncStream::new(go_w).unwrap();
    patient("go", go_w.write_all(b"!")).await.unwrap();
    assert_eq!(patient("take", event.take()).await.unwrap(), 42);
    wait_success(peer).await;
}

/// Dropping a bridge stops and joins its helper thread, even while a
/// receive keeps it polling (in a peer, so no other test's bridge counts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_helper_stops_on_drop() {
    const TEST: &str = "asynch::messages::bridge_helper_stops_on_drop";
    fn helpers() -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter(|task| {
                let comm = task.as_ref().unwrap().path().join("comm");
                std::fs::read_to_string(comm).is_ok_and(|name| name.trim() == "unipc-bridge")
            })
            .count()
    }
    if util::role().is_none() {
        let peer = util::Peer::new(TEST, "counter").spawn();
        wait_success(peer).await;
        return;
    }
    assert_eq!(helpers(), 0);
    let owner = smq::QueueOptions::new().create(SysvKey::Private).unwrap();
    let bridge = Bridge::new(smq::Queue::open_id(owner.id()).unwrap()).unwrap();
    // The thread names itself once it runs.
    let deadline = Instant::now() + Duration::from_secs(10);
    while helpers() != 1 {
        assert!(Instant::now() < deadline, "no helper thread appeared");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // A receive that waits (the helper polls for it), then is dropped.
    assert!(tokio::time::timeout(
        Duration::from_millis(20),
        unipc::asynch::AsyncMessenger::recv_vec(&bridge)
    )
    .await
    .is_err());
    drop(bridge);
    assert_eq!(helpers(), 0, "the helper was joined");
}

/// The death of the other side ends an async wait over a ring or pubsub
/// (the bridge sleeps on the side's doorbell, which reports it): what the
/// killed writer committed is received first, then `PeerDied`; a receive
/// already waiting when the publisher is killed ends with `PeerDied` too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridges_report_a_killed_peer() {
    use unipc::asynch::AsyncMessenger;
    use unipc::message::ring::pubsub::PubSubOptions;
    const TEST: &str = "asynch::messages::bridges_report_a_killed_peer";
    let linger = || std::thread::sleep(Duration::from_secs(60)); // until killed
    match util::role().as_deref() {
        Some("writer") => {
            let name: PosixName = util::arg("NAME").parse().unwrap();
            let tx = ring::Ring::open(&name).unwrap().into_sender().unwrap();
            tx.send(b"one").unwrap();
            tx.send(b"two").unwrap();
            return linger();
        }
        Some("publisher") => {
            let name: PosixName = util::arg("NAME").parse().unwrap();
            let publisher = PubSubOptions::open(&name).unwrap().publish().unwrap();
            publisher.send(b"first").unwrap();
            return linger();
        }
        _ => {}
    }
    let died = |what: &str, got: unipc::Result<Vec<u8>>, role: &str, pid: u32| match got {
        Err(Error::PeerDied {
            role: r, pid: p, ..
        }) if r == role && p == pid => {}
        other => panic!("{what}: expected the {role}'s death (pid {pid}), got {other:?}"),
    };

    let name = unique_posix();
    let made = ring::RingOptions::new()
        .capacity(4)
        .max_size(64)
        .exclusive(true)
        .create(&name)
        .unwrap();
    let view = ring::Ring::open(&name).unwrap();
    let rx = Bridge::new(made.into_receiver().unwrap()).unwrap();
    let writer = util::Peer::new(TEST, "writer")
        .arg("NAME", name.as_str())
        .spawn();
    let deadline = Instant::now() + super::PATIENCE;
    while view.status().unwrap().sent < 2 {
        assert!(Instant::now() < deadline, "the writer never sent");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let pid = writer.pid();
    tokio::task::spawn_blocking(move || writer.kill())
        .await
        .unwrap();
    assert_eq!(patient("one", rx.recv()).await.unwrap(), b"one");
    assert_eq!(patient("two", rx.recv()).await.unwrap(), b"two");
    died("ring", patient("death", rx.recv()).await, "writer", pid);

    let name = unique_posix();
    let made = PubSubOptions::new()
        .capacity(4)
        .max_size(64)
        .subscribers(1)
        .create(&name)
        .unwrap();
    let sub = Bridge::new(made.subscribe().unwrap()).unwrap();
    let publisher = util::Peer::new(TEST, "publisher")
        .arg("NAME", name.as_str())
        .spawn();
    assert_eq!(patient("first", sub.recv()).await.unwrap(), b"first");
    let pid = publisher.pid();
    let kill = async {
        // The receive below is waiting (its helper asleep on the
        // doorbell) when the publisher dies.
        tokio::time::sleep(Duration::from_millis(50)).await;
        tokio::task::spawn_blocking(move || publisher.kill())
            .await
            .unwrap();
    };
    let (got, ()) = tokio::join!(patient("death", sub.recv()), kill);
    died("pubsub", got, "publisher", pid);
}

/// pubsub through the bridge: a publisher in a peer, two async subscribers
/// here, each gets every message in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_through_the_bridge() {
    use unipc::asynch::AsyncMessenger;
    use unipc::message::ring::pubsub::PubSubOptions;
    const TEST: &str = "asynch::messages::pubsub_through_the_bridge";
    const COUNT: u64 = 50;
    if util::role().is_some() {
        let name: PosixName = util::arg("NAME").parse().unwrap();
        let publisher =
            Bridge::new(PubSubOptions::open(&name).unwrap().publish().unwrap()).unwrap();
        for i in 0..COUNT {
            patient("publish", publisher.send(&i.to_le_bytes()))
                .await
                .unwrap();
        }
        return;
    }
    let name = unique_posix();
    let made = PubSubOptions::new()
        .capacity(4)
        .max_size(64)
        .subscribers(2)
        .create(&name)
        .unwrap();
    // The first subscriber holds the object (removed when it drops).
    let a = Bridge::new(made.subscribe().unwrap()).unwrap();
    let b = Bridge::new(PubSubOptions::open(&name).unwrap().subscribe().unwrap()).unwrap();
    let peer = util::Peer::new(TEST, "publisher")
        .arg("NAME", name.as_str())
        .spawn();
    tokio::join!(take_all("a", &a, COUNT), take_all("b", &b, COUNT));
    wait_success(peer).await;
}

async fn take_all(sub: &str, bridge: &Bridge<ring::pubsub::Subscriber>, count: u64) {
    use unipc::asynch::AsyncMessenger;
    for i in 0..count {
        let got = patient(sub, bridge.recv()).await.unwrap();
        assert_eq!(got, i.to_le_bytes(), "{sub}: every message, in order");
    }
}

/// Any message endpoint, opened from its string and turned async
/// (`MessageHandle::into_async`): a blocking peer process sends, this one
/// awaits. POSIX queue and datagram socket by descriptor; System V queue
/// and ring through the bridge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_opened_from_strings_are_awaited_between_processes() {
    use unipc::asynch::{AsyncMessages, AsyncMessenger};
    use unipc::open::{CreateOptions, OpenOptions};
    use unipc::Endpoint;
    const TEST: &str =
        "asynch::messages::endpoints_opened_from_strings_are_awaited_between_processes";
    if util::role().is_some() {
        let endpoint: Endpoint = util::arg("endpoint").parse().unwrap();
        let tx = OpenOptions::new()
            .timeout(Duration::from_secs(10))
            .connect(&endpoint)
            .unwrap()
            .into_messages()
            .unwrap();
        for i in 0..3 {
            unipc::message::Messenger::send(&tx, format!("{endpoint} {i}").as_bytes()).unwrap();
        }
        return;
    }
    let dir = util::TempDir::new();
    let endpoints = [
        format!("posix-mq:/{}", util::unique("aopen")),
        format!(
            "sysv-mq:{:#x}",
            0x6e00_0000 | (std::process::id() & 0xff_ffff)
        ),
        format!("unix-dgram:{}", dir.join("d").display()),
        format!("ring:/{}", util::unique("aopen")),
    ];
    for text in &endpoints {
        let endpoint: Endpoint = text.parse().unwrap();
        let made = !matches!(endpoint, Endpoint::UnixDgram(_));
        if made {
            let mut options = CreateOptions::new();
            if !matches!(endpoint, Endpoint::SysvMq(_)) {
                options = options.max_messages(4).max_size(128);
            }
            options.create(&endpoint).unwrap();
        }
        let rx: AsyncMessages = OpenOptions::new()
            .listen(&endpoint)
            .unwrap()
            .accept()
            .unwrap()
            .into_messages()
            .unwrap()
            .into_async()
            .unwrap();
        let peer = util::Peer::new(TEST, "sender")
            .arg("endpoint", text)
            .spawn();
        for i in 0..3 {
            let got = patient("recv", rx.recv()).await.unwrap();
            assert_eq!(got, format!("{endpoint} {i}").as_bytes(), "{rx:?}");
        }
        wait_success(peer).await;
        drop(rx);
        if made {
            unipc::open::remove(&endpoint).unwrap();
        }
    }
}
