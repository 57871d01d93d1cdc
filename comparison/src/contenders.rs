//! Each contender's two sides: `run` (this process: create, start the
//! peer, time round trips) and `peer` (echo `total` messages, then exit).

use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::{check, measure, spawn_peer, stamp, Kind, Res, WARMUP};

/// Runs one contender at one size and returns the round-trip histogram.
pub fn run(kind: Kind, size: usize, iters: u64) -> Res<Histogram<u64>> {
    let total = WARMUP + iters;
    let base = format!("unipc-cmp-{}", std::process::id());
    match kind {
        Kind::RingCopy | Kind::RingLoan | Kind::RingSpinPark | Kind::RingLoanInPlace => {
            ring::run(kind, size, iters, total, &base)
        }
        Kind::Iceoryx2 => iox::run(size, iters, total, &base),
        Kind::IpcChannel => ipcc::run(size, iters, total),
        Kind::Interprocess => sock::run(size, iters, total, &base),
        _ => typed::run(kind, iters, total, &base),
    }
}

/// The peer's side: receive message `seq`, check it, send it back.
pub fn peer(kind: Kind, size: usize, name: &str, total: u64) -> Res<()> {
    match kind {
        Kind::RingCopy | Kind::RingLoan | Kind::RingSpinPark | Kind::RingLoanInPlace => {
            ring::peer(kind, size, name, total)
        }
        Kind::Iceoryx2 => iox::peer(size, name, total),
        Kind::IpcChannel => ipcc::peer(size, name, total),
        Kind::Interprocess => sock::peer(size, name, total),
        _ => typed::peer(kind, name, total),
    }
}

/// How long a side waits for the other before it gives up: far above any
/// round trip, short enough that a peer that failed ends the run.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The peer's parent (this process's, in the peer), 0 in the parent: a
/// peer whose parent is gone stops spinning.
pub static PARENT: AtomicU32 = AtomicU32::new(0);

/// A busy-poll loop's bookkeeping: nothing but a counter while the other
/// side answers quickly; after 4096 empty polls it looks at the clock (and
/// at whether the parent is alive) every 4096 polls more.
struct Spin {
    polls: u32,
    deadline: Option<Instant>,
    what: &'static str,
}

impl Spin {
    fn new(what: &'static str) -> Self {
        Spin {
            polls: 0,
            deadline: None,
            what,
        }
    }

    fn again(&mut self) -> Res<()> {
        self.polls = self.polls.wrapping_add(1);
        if self.polls.is_multiple_of(4096) {
            let now = Instant::now();
            let deadline = *self.deadline.get_or_insert(now + PATIENCE);
            if now > deadline {
                return Err(format!(
                    "{}: no answer from the other side in {PATIENCE:?}",
                    self.what
                )
                .into());
            }
            let parent = PARENT.load(Ordering::Relaxed);
            if parent != 0 && std::os::unix::process::parent_id() != parent {
                return Err(format!("{}: the parent is gone", self.what).into());
            }
        }
        std::hint::spin_loop();
        Ok(())
    }
}

fn join(mut child: std::process::Child, what: &str) -> Res<()> {
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("{what} peer failed: {status}").into());
    }
    Ok(())
}

mod ring {
    use super::*;
    use unipc::message::ring::{Receiver, Ring, RingOptions, Sender, WaitStrategy};
    use unipc::message::Wait;
    use unipc::name::PosixName;

    fn names(base: &str) -> Res<(PosixName, PosixName)> {
        Ok((
            format!("/{base}-ping").parse()?,
            format!("/{base}-pong").parse()?,
        ))
    }

    /// Sends message `seq` of `size` bytes the way `kind` says.
    fn send(kind: Kind, tx: &mut Sender, src: &mut [u8], seq: u64) -> Res<()> {
        let wait = Wait::For(PATIENCE);
        match kind {
            Kind::RingCopy | Kind::RingSpinPark => {
                stamp(src, seq);
                tx.send_wait(src, wait)?;
            }
            Kind::RingLoan => {
                stamp(src, seq);
                let mut loan = tx.loan(wait)?;
                loan[..src.len()].copy_from_slice(src);
                loan.commit(src.len())?;
            }
            _ => {
                let mut loan = tx.loan(wait)?;
                stamp(&mut loan, seq);
                loan.commit(src.len())?;
            }
        }
        Ok(())
    }

    fn strategy(kind: Kind) -> WaitStrategy {
        if kind == Kind::RingSpinPark {
            WaitStrategy::SpinThenPark
        } else {
            WaitStrategy::BusyPoll
        }
    }

    fn recv(rx: &mut Receiver, size: usize, seq: u64) -> Res<()> {
        let view = rx.recv_view(Wait::For(PATIENCE))?;
        check(&view, size, seq);
        Ok(())
    }

    pub fn run(kind: Kind, size: usize, iters: u64, total: u64, base: &str) -> Res<Histogram<u64>> {
        let (ping, pong) = names(base)?;
        let opts = RingOptions::new().capacity(4).max_size(size.max(8));
        let mut tx = opts.create(&ping)?.into_sender()?;
        let mut rx = opts.create(&pong)?.into_receiver()?;
        tx.set_wait_strategy(strategy(kind));
        rx.set_wait_strategy(strategy(kind));
        let child = spawn_peer(kind, size, base, total)?;
        let mut src = vec![0xa5u8; size];
        let hist = measure(iters, |seq| {
            send(kind, &mut tx, &mut src, seq)?;
            recv(&mut rx, size, seq)
        })?;
        join(child, "ring")?;
        Ok(hist)
    }

    pub fn peer(kind: Kind, size: usize, base: &str, total: u64) -> Res<()> {
        let (ping, pong) = names(base)?;
        let mut rx = Ring::open(&ping)?.into_receiver()?;
        let mut tx = Ring::open(&pong)?.into_sender()?;
        rx.set_wait_strategy(strategy(kind));
        tx.set_wait_strategy(strategy(kind));
        for seq in 0..total {
            let view = rx.recv_view(Wait::Forever)?;
            check(&view, size, seq);
            match kind {
                Kind::RingCopy | Kind::RingSpinPark => tx.send_wait(&view, Wait::Forever)?,
                Kind::RingLoan => {
                    let mut loan = tx.loan(Wait::Forever)?;
                    loan[..size].copy_from_slice(&view);
                    loan.commit(size)?;
                }
                _ => {
                    let mut loan = tx.loan(Wait::Forever)?;
                    stamp(&mut loan, seq);
                    loan.commit(size)?;
                }
            }
        }
        Ok(())
    }
}

mod iox {
    use super::*;
    use iceoryx2::port::publisher::Publisher;
    use iceoryx2::port::subscriber::Subscriber;
    use iceoryx2::prelude::*;

    type Pub = Publisher<ipc::Service, [u8], ()>;
    type Sub = Subscriber<ipc::Service, [u8], ()>;

    type Factory =
        iceoryx2::service::port_factory::publish_subscribe::PortFactory<ipc::Service, [u8], ()>;

    struct Side {
        _node: Node<ipc::Service>,
        out_svc: Factory,
        publisher: Pub,
        subscriber: Sub,
    }

    /// Opens both services; `out` is the one this side publishes on.
    fn open(base: &str, size: usize, out: &str, inp: &str) -> Res<Side> {
        let node = NodeBuilder::new().create::<ipc::Service>()?;
        let service = |dir: &str| -> Res<_> {
            let name: ServiceName = format!("{base}/{dir}").as_str().try_into()?;
            Ok(node
                .service_builder(&name)
                .publish_subscribe::<[u8]>()
                .max_publishers(1)
                .max_subscribers(1)
                .history_size(0)
                .subscriber_max_buffer_size(4)
                .open_or_create()?)
        };
        let out_svc = service(out)?;
        let in_svc = service(inp)?;
        let publisher = out_svc
            .publisher_builder()
            .initial_max_slice_len(size)
            .create()?;
        let subscriber = in_svc.subscriber_builder().buffer_size(4).create()?;
        // Both ports of the other side must exist before the first message:
        // a sample sent before a subscriber connects is not delivered to it.
        let mut spin = Spin::new("iceoryx2: waiting for the other side's ports");
        while out_svc.dynamic_config().number_of_subscribers() < 1
            || in_svc.dynamic_config().number_of_publishers() < 1
        {
            spin.again()?;
            std::thread::yield_now();
        }
        Ok(Side {
            _node: node,
            out_svc,
            publisher,
            subscriber,
        })
    }

    fn send(publisher: &Pub, src: &[u8]) -> Res<()> {
        let sample = publisher.loan_slice_uninit(src.len())?;
        let sample = sample.write_from_slice(src);
        sample.send()?;
        Ok(())
    }

    fn recv(subscriber: &Sub, size: usize, seq: u64) -> Res<()> {
        let mut spin = Spin::new("iceoryx2 receive");
        loop {
            if let Some(sample) = subscriber.receive()? {
                check(sample.payload(), size, seq);
                return Ok(());
            }
            spin.again()?;
        }
    }

    pub fn run(size: usize, iters: u64, total: u64, base: &str) -> Res<Histogram<u64>> {
        let child = spawn_peer(Kind::Iceoryx2, size, base, total)?;
        let side = open(base, size, "ping", "pong")?;
        let mut src = vec![0xa5u8; size];
        let hist = measure(iters, |seq| {
            stamp(&mut src, seq);
            send(&side.publisher, &src)?;
            recv(&side.subscriber, size, seq)
        })?;
        // Dropping this side's ports tells the peer it may go.
        drop(side);
        join(child, "iceoryx2")?;
        Ok(hist)
    }

    pub fn peer(size: usize, base: &str, total: u64) -> Res<()> {
        let side = open(base, size, "pong", "ping")?;
        for seq in 0..total {
            let mut spin = Spin::new("iceoryx2 receive");
            let sample = loop {
                if let Some(sample) = side.subscriber.receive()? {
                    break sample;
                }
                spin.again()?;
            };
            check(sample.payload(), size, seq);
            send(&side.publisher, sample.payload())?;
        }
        // Stay until the other side has its last answer and has let go of
        // its subscriber: a publisher that goes first may take unread samples
        // with it.
        let deadline = Instant::now() + PATIENCE;
        while side.out_svc.dynamic_config().number_of_subscribers() > 0 && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }
}

mod ipcc {
    use super::*;
    use ipc_channel::ipc::{self, IpcBytesReceiver, IpcBytesSender, IpcOneShotServer, IpcSender};
    use ipc_channel::TryRecvError;

    type Hello = (IpcBytesSender, IpcBytesReceiver);

    fn recv(rx: &IpcBytesReceiver, size: usize, seq: u64) -> Res<Vec<u8>> {
        let mut spin = Spin::new("ipc-channel receive");
        loop {
            match rx.try_recv() {
                Ok(msg) => {
                    check(&msg, size, seq);
                    return Ok(msg);
                }
                Err(TryRecvError::Empty) => spin.again()?,
                Err(TryRecvError::IpcError(e)) => return Err(format!("ipc-channel: {e:?}").into()),
            }
        }
    }

    pub fn run(size: usize, iters: u64, total: u64) -> Res<Histogram<u64>> {
        let (server, name) = IpcOneShotServer::<Hello>::new()?;
        let child = spawn_peer(Kind::IpcChannel, size, &name, total)?;
        let (_rx, (tx, rx)) = server
            .accept()
            .map_err(|e| format!("ipc-channel accept: {e:?}"))?;
        let mut src = vec![0xa5u8; size];
        let hist = measure(iters, |seq| {
            stamp(&mut src, seq);
            tx.send(&src)?;
            recv(&rx, size, seq).map(drop)
        })?;
        join(child, "ipc-channel")?;
        Ok(hist)
    }

    pub fn peer(size: usize, name: &str, total: u64) -> Res<()> {
        let (ping_tx, ping_rx) = ipc::bytes_channel()?;
        let (pong_tx, pong_rx) = ipc::bytes_channel()?;
        let hello = IpcSender::<Hello>::connect(name.to_string())?;
        hello
            .send((ping_tx, pong_rx))
            .map_err(|e| format!("ipc-channel hello: {e:?}"))?;
        for seq in 0..total {
            let msg = recv(&ping_rx, size, seq)?;
            pong_tx.send(&msg)?;
        }
        Ok(())
    }
}

mod sock {
    use super::*;
    use interprocess::local_socket::{prelude::*, GenericNamespaced, ListenerOptions, Stream};

    fn read_msg(s: &mut Stream, buf: &mut [u8]) -> Res<()> {
        let mut spin = Spin::new("interprocess read");
        let mut off = 0;
        while off < buf.len() {
            match s.read(&mut buf[off..]) {
                Ok(0) => return Err("interprocess: peer closed".into()),
                Ok(n) => off += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => spin.again()?,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn write_msg(s: &mut Stream, buf: &[u8]) -> Res<()> {
        let mut spin = Spin::new("interprocess write");
        let mut off = 0;
        while off < buf.len() {
            match s.write(&buf[off..]) {
                Ok(n) => off += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => spin.again()?,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    pub fn run(size: usize, iters: u64, total: u64, base: &str) -> Res<Histogram<u64>> {
        let sock_name = format!("{base}.sock");
        // An abstract Unix socket on Linux: nothing is left in the file system.
        let listener = ListenerOptions::new()
            .name(sock_name.as_str().to_ns_name::<GenericNamespaced>()?)
            .create_sync()?;
        let child = spawn_peer(Kind::Interprocess, size, &sock_name, total)?;
        let mut s = listener.accept()?;
        s.set_nonblocking(true)?;
        let mut src = vec![0xa5u8; size];
        let mut dst = vec![0u8; size];
        let hist = measure(iters, |seq| {
            stamp(&mut src, seq);
            write_msg(&mut s, &src)?;
            read_msg(&mut s, &mut dst)?;
            check(&dst, size, seq);
            Ok(())
        })?;
        join(child, "interprocess")?;
        Ok(hist)
    }

    pub fn peer(size: usize, name: &str, total: u64) -> Res<()> {
        let mut s = Stream::connect(name.to_ns_name::<GenericNamespaced>()?)?;
        s.set_nonblocking(true)?;
        let mut buf = vec![0u8; size];
        for seq in 0..total {
            read_msg(&mut s, &mut buf)?;
            check(&buf, size, seq);
            write_msg(&mut s, &buf)?;
        }
        Ok(())
    }
}

/// Typed contenders: the same small struct ([`crate::Tick`]) through
/// unipc's `Typed` (MessagePack by default) and through ipc-channel's
/// `IpcSender<Tick>` (bincode), each side decoding what it receives and
/// encoding what it sends.
pub mod typed {
    use super::*;
    use crate::Tick;
    use unipc::message::posix_mq::{self, QueueOptions};
    use unipc::message::ring::{Ring, RingOptions, WaitStrategy};
    use unipc::message::typed::Typed;
    use unipc::message::Messenger;
    use unipc::name::{PosixName, UnixAddr};
    use unipc::stream::seqpacket;
    use unipc::Error;

    /// Receives one value from `rx`, busy-polling with `try_recv` when
    /// `poll`, blocking otherwise.
    fn recv<M: Messenger>(rx: &Typed<M, Tick>, poll: bool) -> Res<Tick> {
        if !poll {
            return Ok(rx.recv()?);
        }
        let mut spin = Spin::new("typed receive");
        loop {
            match rx.try_recv() {
                Ok(tick) => return Ok(tick),
                Err(Error::Empty { .. }) => spin.again()?,
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn check_tick(tick: &Tick, seq: u64) {
        assert_eq!(*tick, Tick::new(seq), "message {seq}: stale or torn value");
    }

    fn poll(kind: Kind) -> bool {
        matches!(
            kind,
            Kind::TypedPosixMqPoll | Kind::TypedSeqpacketPoll | Kind::TypedRing
        )
    }

    fn ping_pong<M: Messenger, N: Messenger>(
        tx: &Typed<M, Tick>,
        rx: &Typed<N, Tick>,
        kind: Kind,
        iters: u64,
    ) -> Res<Histogram<u64>> {
        let poll = poll(kind);
        measure(iters, |seq| {
            tx.send(&Tick::new(seq))?;
            check_tick(&recv(rx, poll)?, seq);
            Ok(())
        })
    }

    fn echo<M: Messenger, N: Messenger>(
        rx: &Typed<M, Tick>,
        tx: &Typed<N, Tick>,
        kind: Kind,
        total: u64,
    ) -> Res<()> {
        let poll = poll(kind);
        for seq in 0..total {
            let tick = recv(rx, poll)?;
            check_tick(&tick, seq);
            tx.send(&tick)?;
        }
        Ok(())
    }

    fn queue_names(base: &str) -> Res<(PosixName, PosixName)> {
        Ok((
            format!("/{base}-tping").parse()?,
            format!("/{base}-tpong").parse()?,
        ))
    }

    fn strategy(kind: Kind) -> WaitStrategy {
        if kind == Kind::TypedRing {
            WaitStrategy::BusyPoll
        } else {
            WaitStrategy::SpinThenPark
        }
    }

    pub fn run(kind: Kind, iters: u64, total: u64, base: &str) -> Res<Histogram<u64>> {
        match kind {
            Kind::TypedRing | Kind::TypedRingSpinPark => {
                let (ping, pong) = queue_names(base)?;
                let opts = RingOptions::new().capacity(4).max_size(256);
                let tx = opts.create(&ping)?.into_sender()?;
                let rx = opts.create(&pong)?.into_receiver()?;
                tx.set_wait_strategy(strategy(kind));
                rx.set_wait_strategy(strategy(kind));
                let child = spawn_peer(kind, 0, base, total)?;
                let hist = ping_pong(&Typed::new(tx), &Typed::new(rx), kind, iters)?;
                join(child, "typed ring")?;
                Ok(hist)
            }
            Kind::TypedPosixMq | Kind::TypedPosixMqPoll => {
                let (ping, pong) = queue_names(base)?;
                let opts = QueueOptions::new()
                    .max_messages(4)
                    .max_message_size(256)
                    .exclusive(true);
                // Created here, unlinked when dropped.
                let tx = opts.create(&ping)?;
                let rx = opts.create(&pong)?;
                let child = spawn_peer(kind, 0, base, total)?;
                let hist = ping_pong(&Typed::new(&tx), &Typed::new(&rx), kind, iters)?;
                join(child, "typed posix-mq")?;
                Ok(hist)
            }
            Kind::TypedSeqpacket | Kind::TypedSeqpacketPoll => {
                let name = format!("@{base}-tsp");
                let addr: UnixAddr = name.parse()?;
                let listener = seqpacket::Listener::bind(&addr)?;
                let child = spawn_peer(kind, 0, &name, total)?;
                let conn = listener.accept()?;
                let typed = Typed::new(conn);
                let hist = ping_pong(&typed, &typed, kind, iters)?;
                join(child, "typed seqpacket")?;
                Ok(hist)
            }
            Kind::IpcChannelTyped | Kind::IpcChannelTypedBlocking => ipcc::run(kind, iters, total),
            other => Err(format!("{other:?} is not a typed contender").into()),
        }
    }

    pub fn peer(kind: Kind, name: &str, total: u64) -> Res<()> {
        match kind {
            Kind::TypedRing | Kind::TypedRingSpinPark => {
                let (ping, pong) = queue_names(name)?;
                let rx = Ring::open(&ping)?.into_receiver()?;
                let tx = Ring::open(&pong)?.into_sender()?;
                rx.set_wait_strategy(strategy(kind));
                tx.set_wait_strategy(strategy(kind));
                echo(&Typed::new(rx), &Typed::new(tx), kind, total)
            }
            Kind::TypedPosixMq | Kind::TypedPosixMqPoll => {
                let (ping, pong) = queue_names(name)?;
                let rx = posix_mq::Queue::open(&ping)?;
                let tx = posix_mq::Queue::open(&pong)?;
                echo(&Typed::new(rx), &Typed::new(tx), kind, total)
            }
            Kind::TypedSeqpacket | Kind::TypedSeqpacketPoll => {
                let conn = seqpacket::Conn::connect(&name.parse()?)?;
                let typed = Typed::new(conn);
                echo(&typed, &typed, kind, total)
            }
            Kind::IpcChannelTyped | Kind::IpcChannelTypedBlocking => ipcc::peer(kind, name, total),
            other => Err(format!("{other:?} is not a typed contender").into()),
        }
    }

    mod ipcc {
        use super::*;
        use ipc_channel::ipc::{self, IpcOneShotServer, IpcReceiver, IpcSender};
        use ipc_channel::TryRecvError;

        type Hello = (IpcSender<Tick>, IpcReceiver<Tick>);

        fn recv(rx: &IpcReceiver<Tick>, kind: Kind) -> Res<Tick> {
            if kind == Kind::IpcChannelTypedBlocking {
                return rx.recv().map_err(|e| format!("ipc-channel: {e:?}").into());
            }
            let mut spin = Spin::new("ipc-channel receive");
            loop {
                match rx.try_recv() {
                    Ok(tick) => return Ok(tick),
                    Err(TryRecvError::Empty) => spin.again()?,
                    Err(TryRecvError::IpcError(e)) => {
                        return Err(format!("ipc-channel: {e:?}").into())
                    }
                }
            }
        }

        pub fn run(kind: Kind, iters: u64, total: u64) -> Res<Histogram<u64>> {
            let (server, name) = IpcOneShotServer::<Hello>::new()?;
            let child = spawn_peer(kind, 0, &name, total)?;
            let (_rx, (tx, rx)) = server
                .accept()
                .map_err(|e| format!("ipc-channel accept: {e:?}"))?;
            let hist = measure(iters, |seq| {
                tx.send(Tick::new(seq))?;
                check_tick(&recv(&rx, kind)?, seq);
                Ok(())
            })?;
            join(child, "ipc-channel typed")?;
            Ok(hist)
        }

        pub fn peer(kind: Kind, name: &str, total: u64) -> Res<()> {
            let (ping_tx, ping_rx) = ipc::channel::<Tick>()?;
            let (pong_tx, pong_rx) = ipc::channel::<Tick>()?;
            let hello = IpcSender::<Hello>::connect(name.to_string())?;
            hello
                .send((ping_tx, pong_rx))
                .map_err(|e| format!("ipc-channel hello: {e:?}"))?;
            for seq in 0..total {
                let tick = recv(&ping_rx, kind)?;
                check_tick(&tick, seq);
                pong_tx.send(tick)?;
            }
            Ok(())
        }
    }
}
