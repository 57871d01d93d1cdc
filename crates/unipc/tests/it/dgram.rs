//! UNIX datagram (`unix-dgram:`) and UDP (`udp:`) sockets, between real
//! processes.
//!
//! The semantics shared by both run once per transport (`unix_path`,
//! `unix_abstract`, `udp_v4`, `udp_v6`) through a small test-side wrapper,
//! [`Sock`], that addresses every socket by its endpoint string. Control
//! messages between parent and peer travel over a UNIX datagram socketpair
//! handed to the peer (itself a cross-process use of the facility).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use unipc::endpoint::HostPort;
use unipc::message::dgram::{
    Interface, UdpOptions, UdpSocket, UnixDatagram, UnixOptions, UDP_V4_MAX, UDP_V6_MAX,
};
use unipc::message::{Messenger, Wait};
use unipc::name::UnixAddr;
use unipc::Mode;
use unipc::{Endpoint, Error};

use crate::util;

/// How long a peer waits for anything the other side must do.
const PATIENCE: Wait = Wait::For(Duration::from_secs(20));

// ---------------------------------------------------------------------------
// The test-side wrapper over both socket types.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    UnixPath,
    UnixAbstract,
    UdpV4,
    UdpV6,
}

impl Kind {
    fn is_unix(self) -> bool {
        matches!(self, Kind::UnixPath | Kind::UnixAbstract)
    }
}

enum Sock {
    Unix(UnixDatagram),
    Udp(UdpSocket),
}

impl Sock {
    /// A fresh socket of `kind`; `None` (after saying why) when the kind
    /// cannot run here.
    fn bind(kind: Kind, dir: &Path, label: &str) -> Option<Sock> {
        Some(match kind {
            Kind::UnixPath => {
                let addr = UnixAddr::path(dir.join(format!("{label}.sock"))).unwrap();
                Sock::Unix(UnixDatagram::bind(&addr).unwrap())
            }
            Kind::UnixAbstract => {
                let addr = UnixAddr::abstract_name(util::unique(label)).unwrap();
                Sock::Unix(UnixDatagram::bind(&addr).unwrap())
            }
            Kind::UdpV4 => Sock::Udp(UdpSocket::bind_addr("127.0.0.1:0".parse().unwrap()).unwrap()),
            Kind::UdpV6 => match UdpSocket::bind_addr("[::1]:0".parse().unwrap()) {
                Ok(sock) => Sock::Udp(sock),
                Err(err) => {
                    util::skip(format!("no IPv6 loopback on this host: {err}"));
                    return None;
                }
            },
        })
    }

    fn messenger(&self) -> &dyn Messenger {
        match self {
            Sock::Unix(s) => s,
            Sock::Udp(s) => s,
        }
    }

    /// The endpoint string others reach this socket by.
    fn endpoint(&self) -> String {
        self.messenger().object().to_string()
    }

    fn send_to(&self, message: &[u8], to: &str, wait: Wait) -> unipc::Result<()> {
        match (self, to.parse::<Endpoint>().unwrap()) {
            (Sock::Unix(s), Endpoint::UnixDgram(addr)) => s.send_to(message, &addr, wait),
            (Sock::Udp(s), Endpoint::Udp(hp)) => s.send_to(message, inet(&hp), wait),
            _ => panic!("cannot send to {to}"),
        }
    }

    fn recv_from(&self, buf: &mut [u8], wait: Wait) -> unipc::Result<(usize, Option<String>)> {
        match self {
            Sock::Unix(s) => s
                .recv_from(buf, wait)
                .map(|(n, from)| (n, from.map(|a| format!("unix-dgram:{a}")))),
            Sock::Udp(s) => s
                .recv_from(buf, wait)
                .map(|(n, from)| (n, Some(format!("udp:{from}")))),
        }
    }

    fn peek_from(&self, buf: &mut [u8], wait: Wait) -> unipc::Result<(usize, Option<String>)> {
        match self {
            Sock::Unix(s) => s
                .peek_from(buf, wait)
                .map(|(n, from)| (n, from.map(|a| format!("unix-dgram:{a}")))),
            Sock::Udp(s) => s
                .peek_from(buf, wait)
                .map(|(n, from)| (n, Some(format!("udp:{from}")))),
        }
    }

    fn peek_len(&self, wait: Wait) -> unipc::Result<usize> {
        match self {
            Sock::Unix(s) => s.peek_len(wait),
            Sock::Udp(s) => s.peek_len(wait),
        }
    }

    fn connect(&mut self, to: &str) -> unipc::Result<()> {
        match (self, to.parse::<Endpoint>().unwrap()) {
            (Sock::Unix(s), Endpoint::UnixDgram(addr)) => s.connect(&addr),
            (Sock::Udp(s), Endpoint::Udp(hp)) => s.connect(&hp),
            _ => panic!("cannot connect to {to}"),
        }
    }

    /// Receives one whole message as a `Vec`, with its sender.
    fn recv_msg(&self, wait: Wait) -> (Vec<u8>, Option<String>) {
        let mut buf = vec![0; 1 << 20];
        let (len, from) = self.recv_from(&mut buf, wait).expect("receive");
        buf.truncate(len);
        (buf, from)
    }
}

fn inet(hp: &HostPort) -> SocketAddr {
    SocketAddr::new(hp.host.parse::<IpAddr>().unwrap(), hp.port)
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::UnixPath => "unix-path",
        Kind::UnixAbstract => "unix-abstract",
        Kind::UdpV4 => "udp-v4",
        Kind::UdpV6 => "udp-v6",
    }
}

/// Recognisable bytes: a different pattern for each seed.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(seed as u32) as u8)
        .collect()
}

/// One control pair, the peer's end handed over as descriptor 0.
fn control_pair() -> (UnixDatagram, UnixDatagram) {
    UnixDatagram::pair().expect("control socketpair")
}

fn ctl_send(ctl: &UnixDatagram, text: &str) {
    ctl.send_tagged(text.as_bytes(), Default::default(), PATIENCE)
        .expect("control send");
}

fn ctl_recv(ctl: &UnixDatagram) -> String {
    let (bytes, _) = ctl.recv_vec(PATIENCE).expect("control receive");
    String::from_utf8(bytes).expect("control text")
}

fn peer_ctl() -> UnixDatagram {
    UnixDatagram::try_from(util::passed_fd(0)).expect("adopt control socket")
}

/// Generates one test per transport, each calling `body(kind, own name)`.
macro_rules! per_transport {
    ($($body:ident),* $(,)?) => {$(
        mod $body {
            use super::Kind;
            #[test]
            fn unix_path() {
                super::$body(Kind::UnixPath, concat!("dgram::", stringify!($body), "::unix_path"));
            }
            #[test]
            fn unix_abstract() {
                super::$body(Kind::UnixAbstract, concat!("dgram::", stringify!($body), "::unix_abstract"));
            }
            #[test]
            fn udp_v4() {
                super::$body(Kind::UdpV4, concat!("dgram::", stringify!($body), "::udp_v4"));
            }
            #[test]
            fn udp_v6() {
                super::$body(Kind::UdpV6, concat!("dgram::", stringify!($body), "::udp_v6"));
            }
        }
    )*};
}

per_transport!(
    boundaries_and_sender_address,
    peek_then_receive,
    truncation_reported_not_cut,
    connect_fixes_the_peer,
    wait_modes,
    oversized_send_refused,
    discarding_receive_drops_what_does_not_fit,
);

// ---------------------------------------------------------------------------
// Semantics shared by every transport.

/// Messages of 0, 1, 1000 and the largest size arrive one per receive,
/// each exactly as sent; the address a receive returns is the sender's, and
/// a reply sent to it reaches the sender.
fn boundaries_and_sender_address(kind: Kind, test: &str) {
    if util::role().is_some() {
        let dir = PathBuf::from(util::arg("DIR"));
        let to = util::arg("TO");
        let me = Sock::bind(kind, &dir, "peer").unwrap();
        let largest = me.messenger().limits().unwrap().max_message_size;
        let hello = format!("{} {largest}", me.endpoint());
        me.send_to(hello.as_bytes(), &to, PATIENCE).unwrap();
        for (i, size) in [0, 1, 1000, largest].into_iter().enumerate() {
            me.send_to(&pattern(size, i as u8), &to, PATIENCE).unwrap();
            // One at a time: UDP may drop what does not fit the queue.
            let (ack, from) = me.recv_msg(PATIENCE);
            assert_eq!(ack, format!("ack {size}").into_bytes());
            assert_eq!(from.as_deref(), Some(to.as_str()));
        }
        return;
    }
    let dir = util::TempDir::new();
    let Some(parent) = Sock::bind(kind, dir.path(), "parent") else {
        return;
    };
    let peer = util::Peer::new(test, kind_name(kind))
        .arg("DIR", dir.path())
        .arg("TO", parent.endpoint())
        .spawn();

    let (hello, from) = parent.recv_msg(PATIENCE);
    let hello = String::from_utf8(hello).unwrap();
    let (peer_endpoint, largest) = hello.split_once(' ').unwrap();
    assert_eq!(
        from.as_deref(),
        Some(peer_endpoint),
        "the sender address is the peer's own"
    );
    let largest: usize = largest.parse().unwrap();
    match kind {
        Kind::UdpV4 => assert_eq!(largest, UDP_V4_MAX),
        Kind::UdpV6 => assert_eq!(largest, UDP_V6_MAX),
        _ => assert!(largest > 100_000, "unix-dgram limit {largest}"),
    }
    for (i, size) in [0, 1, 1000, largest].into_iter().enumerate() {
        let (got, from) = parent.recv_msg(PATIENCE);
        assert_eq!(got.len(), size, "message {i} keeps its size");
        assert!(got == pattern(size, i as u8), "message {i} keeps its bytes");
        assert_eq!(from.as_deref(), Some(peer_endpoint));
        parent
            .send_to(format!("ack {size}").as_bytes(), peer_endpoint, PATIENCE)
            .unwrap();
    }
    peer.wait_success();
}

/// A peek returns the next message and its sender without consuming it:
/// the next receive returns the same message, then the one after.
fn peek_then_receive(kind: Kind, test: &str) {
    if util::role().is_some() {
        let dir = PathBuf::from(util::arg("DIR"));
        let me = Sock::bind(kind, &dir, "peer").unwrap();
        me.send_to(b"first", &util::arg("TO"), PATIENCE).unwrap();
        me.send_to(b"second!", &util::arg("TO"), PATIENCE).unwrap();
        return;
    }
    let dir = util::TempDir::new();
    let Some(parent) = Sock::bind(kind, dir.path(), "parent") else {
        return;
    };
    let peer = util::Peer::new(test, kind_name(kind))
        .arg("DIR", dir.path())
        .arg("TO", parent.endpoint())
        .spawn();

    assert_eq!(parent.peek_len(PATIENCE).unwrap(), 5);
    let mut buf = [0u8; 64];
    let (n, peeked_from) = parent.peek_from(&mut buf, PATIENCE).unwrap();
    assert_eq!(&buf[..n], b"first");
    let (n, again_from) = parent.peek_from(&mut buf, Wait::Never).unwrap();
    assert_eq!(&buf[..n], b"first", "a second peek sees the same message");
    buf = [0; 64];
    let (n, from) = parent.recv_from(&mut buf, Wait::Never).unwrap();
    assert_eq!(&buf[..n], b"first", "the receive returns what was peeked");
    assert_eq!(peeked_from, from);
    assert_eq!(again_from, from);
    assert!(from.is_some());
    let (n, _) = parent.recv_from(&mut buf, PATIENCE).unwrap();
    assert_eq!(&buf[..n], b"second!");
    peer.wait_success();
}

/// A message larger than the buffer is reported with its real size and
/// stays queued; it is never handed over cut.
fn truncation_reported_not_cut(kind: Kind, test: &str) {
    if util::role().is_some() {
        let dir = PathBuf::from(util::arg("DIR"));
        let me = Sock::bind(kind, &dir, "peer").unwrap();
        me.send_to(&pattern(1000, 7), &util::arg("TO"), PATIENCE)
            .unwrap();
        me.send_to(b"next", &util::arg("TO"), PATIENCE).unwrap();
        return;
    }
    let dir = util::TempDir::new();
    let Some(parent) = Sock::bind(kind, dir.path(), "parent") else {
        return;
    };
    let object = parent.endpoint();
    let peer = util::Peer::new(test, kind_name(kind))
        .arg("DIR", dir.path())
        .arg("TO", &object)
        .spawn();

    let mut small = [0u8; 10];
    let err = parent.recv_from(&mut small, PATIENCE).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BufferTooSmall {
                buffer: 10,
                needed: Some(1000),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("{object}: receive buffer of 10 bytes is smaller than the message of 1000 bytes")
    );
    assert!(matches!(
        parent.peek_from(&mut small, Wait::Never),
        Err(Error::BufferTooSmall {
            needed: Some(1000),
            ..
        })
    ));
    assert!(matches!(
        parent.messenger().recv_into(&mut small, Wait::Never),
        Err(Error::BufferTooSmall {
            needed: Some(1000),
            ..
        })
    ));
    // Still there, whole.
    let mut exact = vec![0u8; 1000];
    let (n, _) = parent.recv_from(&mut exact, Wait::Never).unwrap();
    assert_eq!(n, 1000);
    assert!(exact == pattern(1000, 7));
    let (next, _) = parent.recv_msg(PATIENCE);
    assert_eq!(next, b"next");
    peer.wait_success();
}

/// `recv_into_or_discard` is one call whatever the buffer: a datagram
/// longer than the buffer is reported with its real size and is gone; the
/// next one is untouched. The hint names a buffer that any datagram fits.
fn discarding_receive_drops_what_does_not_fit(kind: Kind, test: &str) {
    if util::role().is_some() {
        let dir = PathBuf::from(util::arg("DIR"));
        let me = Sock::bind(kind, &dir, "peer").unwrap();
        me.send_to(&pattern(1000, 7), &util::arg("TO"), PATIENCE)
            .unwrap();
        me.send_to(b"next", &util::arg("TO"), PATIENCE).unwrap();
        return;
    }
    let dir = util::TempDir::new();
    let Some(parent) = Sock::bind(kind, dir.path(), "parent") else {
        return;
    };
    let hint = parent.messenger().recv_buffer_hint().unwrap();
    match kind {
        Kind::UdpV4 => assert_eq!(hint, UDP_V4_MAX),
        Kind::UdpV6 => assert_eq!(hint, UDP_V6_MAX),
        _ => assert!(
            hint >= parent.messenger().limits().unwrap().max_message_size,
            "unix-dgram hint {hint}"
        ),
    }
    let peer = util::Peer::new(test, kind_name(kind))
        .arg("DIR", dir.path())
        .arg("TO", parent.endpoint())
        .spawn();

    let mut small = [0u8; 10];
    let err = parent
        .messenger()
        .recv_into_or_discard(&mut small, PATIENCE)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::BufferTooSmall {
                buffer: 10,
                needed: Some(1000),
                ..
            }
        ),
        "{err:?}"
    );
    let mut room = vec![0u8; hint];
    let got = parent
        .messenger()
        .recv_into_or_discard(&mut room, PATIENCE)
        .unwrap();
    assert_eq!(&room[..got.len], b"next", "the long datagram is gone");
    peer.wait_success();
}

/// After connect, sends go to the peer and only the peer's datagrams are
/// delivered: a third socket's are refused (UNIX: EPERM at the sender) or
/// dropped (UDP).
fn connect_fixes_the_peer(kind: Kind, test: &str) {
    if util::role().is_some() {
        let dir = PathBuf::from(util::arg("DIR"));
        let to = util::arg("TO");
        let b = Sock::bind(kind, &dir, "peer-b").unwrap();
        let c = Sock::bind(kind, &dir, "peer-c").unwrap();
        b.send_to(b"hello", &to, PATIENCE).unwrap();
        let (go, from) = b.recv_msg(PATIENCE);
        assert_eq!(go, b"go");
        assert_eq!(from.as_deref(), Some(to.as_str()));
        for round in 1..=2 {
            let from_c = c.send_to(format!("from-c-{round}").as_bytes(), &to, PATIENCE);
            if kind.is_unix() {
                let err = from_c.expect_err("a connected UNIX socket refuses strangers");
                assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
                assert_eq!(
                    err.to_string(),
                    format!(
                        "{to}: sendto: operation not permitted: that socket is connected \
                         to another peer and accepts datagrams only from it"
                    )
                );
            } else {
                from_c.expect("UDP sends to anyone; the receiver drops it");
            }
            b.send_to(format!("from-b-{round}").as_bytes(), &to, PATIENCE)
                .unwrap();
        }
        let (bye, _) = b.recv_msg(PATIENCE);
        assert_eq!(bye, b"bye");
        return;
    }
    let dir = util::TempDir::new();
    let Some(mut a) = Sock::bind(kind, dir.path(), "parent") else {
        return;
    };
    let peer = util::Peer::new(test, kind_name(kind))
        .arg("DIR", dir.path())
        .arg("TO", a.endpoint())
        .spawn();

    let (hello, b) = a.recv_msg(PATIENCE);
    assert_eq!(hello, b"hello");
    let b = b.expect("the peer's socket is bound");
    a.connect(&b).unwrap();
    let m = a.messenger();
    m.send(b"go").unwrap();
    let (first, _) = m.recv_vec(PATIENCE).unwrap();
    assert_eq!(first, b"from-b-1", "nothing from the stranger came first");
    let (second, _) = m.recv_vec(PATIENCE).unwrap();
    assert_eq!(
        second, b"from-b-2",
        "nothing from the stranger came between"
    );
    // The stranger's datagrams were sent before from-b-2; give a late one
    // time to show up anyway.
    let late = m.recv_vec(Wait::For(Duration::from_millis(200)));
    assert!(matches!(late, Err(Error::TimedOut { .. })), "{late:?}");
    m.send(b"bye").unwrap();
    peer.wait_success();
}

/// Not waiting finds nothing: Empty; a timed receive waits at least its
/// timeout, then TimedOut; a timed receive returns as soon as a message
/// arrives from the peer.
fn wait_modes(kind: Kind, test: &str) {
    if util::role().is_some() {
        let dir = PathBuf::from(util::arg("DIR"));
        let to = util::arg("TO");
        let me = Sock::bind(kind, &dir, "peer").unwrap();
        me.send_to(b"ready", &to, PATIENCE).unwrap();
        let (cue, _) = me.recv_msg(PATIENCE);
        assert_eq!(cue, b"send later");
        std::thread::sleep(Duration::from_millis(100));
        me.send_to(b"later", &to, Wait::Never).unwrap();
        return;
    }
    let dir = util::TempDir::new();
    let Some(parent) = Sock::bind(kind, dir.path(), "parent") else {
        return;
    };
    let object = parent.endpoint();
    let peer = util::Peer::new(test, kind_name(kind))
        .arg("DIR", dir.path())
        .arg("TO", &object)
        .spawn();

    let flags = rustix::io::fcntl_getfd(me_fd(&parent)).unwrap();
    assert!(
        flags.contains(rustix::io::FdFlags::CLOEXEC),
        "opened close-on-exec"
    );
    let (ready, from) = parent.recv_msg(PATIENCE);
    assert_eq!(ready, b"ready");
    let mut buf = [0u8; 16];
    let err = parent.recv_from(&mut buf, Wait::Never).unwrap_err();
    assert!(matches!(err, Error::Empty { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("{object}: empty; no message is waiting")
    );
    assert!(matches!(
        parent.messenger().try_recv(),
        Err(Error::Empty { .. })
    ));

    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = parent.recv_from(&mut buf, Wait::For(timeout)).unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(err, Error::TimedOut { .. }), "{err:?}");
    assert_eq!(err.to_string(), format!("{object}: timed out after 300ms"));
    assert!(waited >= timeout, "returned after {waited:?}");
    assert!(waited < Duration::from_secs(10), "hung for {waited:?}");

    parent
        .send_to(b"send later", &from.unwrap(), PATIENCE)
        .unwrap();
    let (n, _) = parent
        .recv_from(&mut buf, Wait::For(Duration::from_secs(20)))
        .unwrap();
    assert_eq!(&buf[..n], b"later");
    peer.wait_success();
}

/// One byte over the limit is refused before the call, naming both sizes;
/// the limit itself passes, to a peer in another process.
fn oversized_send_refused(kind: Kind, test: &str) {
    if util::role().is_some() {
        let dir = PathBuf::from(util::arg("DIR"));
        let to = util::arg("TO");
        let mut me = Sock::bind(kind, &dir, "peer").unwrap();
        let limit = me.messenger().limits().unwrap().max_message_size;
        match kind {
            Kind::UdpV4 => assert_eq!(limit, 65_507),
            Kind::UdpV6 => assert_eq!(limit, 65_527),
            _ => {
                let sndbuf = rustix::net::sockopt::socket_send_buffer_size(me_fd(&me)).unwrap();
                assert_eq!(limit, sndbuf - 32, "SO_SNDBUF less 32");
            }
        }
        me.send_to(&pattern(limit, 1), &to, PATIENCE).unwrap();
        let err = me
            .send_to(&pattern(limit + 1, 2), &to, PATIENCE)
            .unwrap_err();
        assert!(
            matches!(err, Error::MessageTooLarge { size, limit: l, .. } if size == limit + 1 && l == limit),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.ends_with(&format!(
                ": message of {} bytes exceeds the limit of {limit} bytes",
                limit + 1
            )),
            "{text}"
        );
        me.connect(&to).unwrap();
        let err = me.messenger().send(&pattern(limit + 1, 3)).unwrap_err();
        assert!(matches!(err, Error::MessageTooLarge { .. }), "{err:?}");
        me.messenger().send(b"done").unwrap();
        return;
    }
    let dir = util::TempDir::new();
    let Some(parent) = Sock::bind(kind, dir.path(), "parent") else {
        return;
    };
    let peer = util::Peer::new(test, kind_name(kind))
        .arg("DIR", dir.path())
        .arg("TO", parent.endpoint())
        .spawn();
    let (largest, _) = parent.recv_msg(PATIENCE);
    assert!(largest == pattern(largest.len(), 1));
    assert!(largest.len() >= 65_507);
    let (done, _) = parent.recv_msg(PATIENCE);
    assert_eq!(done, b"done", "the refused messages never left");
    peer.wait_success();
}

fn me_fd(sock: &Sock) -> std::os::fd::BorrowedFd<'_> {
    match sock {
        Sock::Unix(s) => s.as_fd(),
        Sock::Udp(s) => s.as_fd(),
    }
}

// ---------------------------------------------------------------------------
// UNIX datagram socket files.

/// A live binder keeps its path (EADDRINUSE, the file left alone, the
/// binder still reachable); after the binder is SIGKILLed its socket file
/// is stale and the next bind reclaims it. An abstract name is freed by
/// the kernel when its binder dies.
#[test]
fn unix_stale_socket_reclaimed_live_refused() {
    if let Some(role) = util::role() {
        let ctl = peer_ctl();
        let addr: UnixAddr = util::arg("ADDR").parse().unwrap();
        let sock = UnixDatagram::bind(&addr).unwrap();
        ctl_send(&ctl, "bound");
        if role == "path" {
            let mut buf = [0u8; 16];
            let (n, _) = sock.recv_from(&mut buf, PATIENCE).unwrap();
            ctl_send(&ctl, &format!("got {}", String::from_utf8_lossy(&buf[..n])));
        }
        // Until killed.
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let dir = util::TempDir::new();
    let path = dir.join("svc.sock");
    let addr = UnixAddr::path(&path).unwrap();
    let (ctl, ctl_peer) = control_pair();
    let binder = util::Peer::new("dgram::unix_stale_socket_reclaimed_live_refused", "path")
        .arg("ADDR", &path)
        .fd(ctl_peer.as_fd())
        .spawn();
    assert_eq!(ctl_recv(&ctl), "bound");

    let err = UnixDatagram::bind(&addr).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "unix-dgram:{}: bind: address already in use: a live socket is bound there; it was left alone",
            path.display()
        )
    );
    // The refused bind left the live socket working.
    UnixDatagram::unbound()
        .unwrap()
        .send_to(b"ping", &addr, PATIENCE)
        .unwrap();
    assert_eq!(ctl_recv(&ctl), "got ping");

    binder.kill(); // SIGKILL: no chance to remove the file
    let meta = std::fs::symlink_metadata(&path).expect("the dead binder left its file");
    assert!(std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()));
    let refused = UnixOptions::new().reclaim_stale(false).bind(&addr);
    assert_eq!(
        refused.unwrap_err().raw_os_error(),
        Some(libc::EADDRINUSE),
        "without reclaiming, the stale file still blocks the path"
    );

    let reclaimed = UnixDatagram::bind(&addr).expect("the stale file is reclaimed");
    UnixDatagram::unbound()
        .unwrap()
        .send_to(b"fresh", &addr, PATIENCE)
        .unwrap();
    let mut buf = [0u8; 16];
    let (n, _) = reclaimed.recv_from(&mut buf, PATIENCE).unwrap();
    assert_eq!(&buf[..n], b"fresh");
    drop(reclaimed);
    assert!(!path.exists());

    // Abstract: no file; the name is free as soon as its binder is gone.
    let name = UnixAddr::abstract_name(util::unique("stale")).unwrap();
    let binder = util::Peer::new(
        "dgram::unix_stale_socket_reclaimed_live_refused",
        "abstract",
    )
    .arg("ADDR", name.to_string())
    .fd(ctl_peer.as_fd())
    .spawn();
    assert_eq!(ctl_recv(&ctl), "bound");
    let err = UnixDatagram::bind(&name).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "unix-dgram:{name}: bind: address already in use: another socket is bound to that name"
        )
    );
    binder.kill();
    UnixDatagram::bind(&name).expect("the dead binder's name is free");
}

/// A file that is not a socket is refused as the wrong type and left
/// exactly as it was, with or without reclaiming.
#[test]
fn unix_regular_file_refused_and_untouched() {
    if util::role().is_some() {
        let addr = UnixAddr::path(util::arg("PATH")).unwrap();
        for options in [UnixOptions::new(), UnixOptions::new().reclaim_stale(false)] {
            let err = options.bind(&addr).unwrap_err();
            assert!(matches!(err, Error::WrongType { .. }), "{err:?}");
            assert_eq!(
                err.to_string(),
                format!("unix-dgram:{addr}: is a regular file, not a socket")
            );
        }
        // Nor may anyone send to it.
        let err = UnixDatagram::unbound()
            .unwrap()
            .send_to(b"x", &addr, PATIENCE)
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED), "{err}");
        return;
    }
    let dir = util::TempDir::new();
    let path = dir.join("precious");
    std::fs::write(&path, b"do not delete").unwrap();
    util::Peer::new("dgram::unix_regular_file_refused_and_untouched", "binder")
        .arg("PATH", &path)
        .spawn()
        .wait_success();
    assert_eq!(std::fs::read(&path).unwrap(), b"do not delete");
}

/// Dropping the handle that bound a path removes the socket file; if the
/// path meanwhile names another file, that file is left alone. A handle
/// adopted from a descriptor owns no file.
#[test]
fn unix_socket_file_removed_on_drop() {
    if util::role().is_some() {
        let ctl = peer_ctl();
        let first = UnixDatagram::bind(&UnixAddr::path(util::arg("FIRST")).unwrap()).unwrap();
        ctl_send(&ctl, "bound first");
        let mut buf = [0u8; 16];
        let (n, _) = first.recv_from(&mut buf, PATIENCE).unwrap();
        assert_eq!(&buf[..n], b"drop it");
        drop(first);
        ctl_send(&ctl, "dropped first");

        let second = UnixDatagram::bind(&UnixAddr::path(util::arg("SECOND")).unwrap()).unwrap();
        ctl_send(&ctl, "bound second");
        assert_eq!(ctl_recv(&ctl), "replaced");
        drop(second);
        ctl_send(&ctl, "dropped second");
        return;
    }
    let dir = util::TempDir::new();
    let first = dir.join("first.sock");
    let second = dir.join("second.sock");
    let (ctl, ctl_peer) = control_pair();
    let peer = util::Peer::new("dgram::unix_socket_file_removed_on_drop", "binder")
        .arg("FIRST", &first)
        .arg("SECOND", &second)
        .fd(ctl_peer.as_fd())
        .spawn();

    assert_eq!(ctl_recv(&ctl), "bound first");
    assert!(first.exists());
    UnixDatagram::unbound()
        .unwrap()
        .send_to(b"drop it", &UnixAddr::path(&first).unwrap(), PATIENCE)
        .unwrap();
    assert_eq!(ctl_recv(&ctl), "dropped first");
    assert!(!first.exists(), "the binder's drop removed its socket file");

    assert_eq!(ctl_recv(&ctl), "bound second");
    // Another socket takes the path: same type, another inode.
    std::fs::remove_file(&second).unwrap();
    let second_addr = UnixAddr::path(&second).unwrap();
    let usurper = UnixDatagram::bind(&second_addr).unwrap();
    ctl_send(&ctl, "replaced");
    assert_eq!(ctl_recv(&ctl), "dropped second");
    assert!(
        second.exists(),
        "a socket file that replaced the binder's is not the binder's to remove"
    );
    UnixDatagram::unbound()
        .unwrap()
        .send_to(b"still mine", &second_addr, PATIENCE)
        .unwrap();
    let mut buf = [0u8; 16];
    let (n, _) = usurper.recv_from(&mut buf, PATIENCE).unwrap();
    assert_eq!(&buf[..n], b"still mine");
    drop(usurper);
    assert!(!second.exists());
    peer.wait_success();

    // Adopting a descriptor does not adopt the file.
    let addr = UnixAddr::path(dir.join("kept.sock")).unwrap();
    let sock = UnixDatagram::bind(&addr).unwrap();
    let fd = std::os::fd::OwnedFd::from(sock);
    assert!(
        dir.join("kept.sock").exists(),
        "giving up the fd keeps the file"
    );
    let adopted = UnixDatagram::try_from(fd).unwrap();
    assert_eq!(adopted.local_addr(), Some(&addr));
    drop(adopted);
    assert!(dir.join("kept.sock").exists());
}

/// A send to a full queue: Full without waiting, TimedOut after a timed
/// wait, and a timed send completes as soon as the receiver in another
/// process makes room; connected (poll) and unconnected (retry) alike.
/// Nothing refused is delivered, nothing accepted is lost.
#[test]
fn unix_full_queue_send_modes() {
    if util::role().is_some() {
        let ctl = peer_ctl();
        let to = UnixAddr::path(util::arg("TO")).unwrap();
        let mut conn = UnixDatagram::unbound().unwrap();
        conn.connect(&to).unwrap();
        let mut sent = 0u32;
        let err = loop {
            match conn.try_send(format!("m{sent}").as_bytes()) {
                Ok(()) => sent += 1,
                Err(err) => break err,
            }
            assert!(sent < 100_000, "the queue never filled");
        };
        assert!(matches!(err, Error::Full { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("unix-dgram:{to}: full; the message was not sent")
        );
        let timeout = Duration::from_millis(200);
        for sender in ["connected", "unconnected"] {
            let started = Instant::now();
            let err = if sender == "connected" {
                conn.send_tagged(b"refused", Default::default(), Wait::For(timeout))
            } else {
                let loose = UnixDatagram::unbound().unwrap();
                assert!(matches!(
                    loose.send_to(b"refused", &to, Wait::Never),
                    Err(Error::Full { .. })
                ));
                loose.send_to(b"refused", &to, Wait::For(timeout))
            }
            .unwrap_err();
            let waited = started.elapsed();
            assert!(matches!(err, Error::TimedOut { .. }), "{sender}: {err:?}");
            assert!(waited >= timeout, "{sender}: gave up after {waited:?}");
            assert!(
                waited < Duration::from_secs(10),
                "{sender}: hung {waited:?}"
            );
        }
        ctl_send(&ctl, &format!("full after {sent}"));
        conn.send_tagged(b"after room", Default::default(), PATIENCE)
            .unwrap();
        ctl_send(&ctl, "sent connected");
        UnixDatagram::unbound()
            .unwrap()
            .send_to(b"loose after room", &to, PATIENCE)
            .unwrap();
        ctl_send(&ctl, "sent unconnected");
        return;
    }
    let dir = util::TempDir::new();
    let path = dir.join("slow.sock");
    let slow = UnixDatagram::bind(&UnixAddr::path(&path).unwrap()).unwrap();
    let (ctl, ctl_peer) = control_pair();
    let peer = util::Peer::new("dgram::unix_full_queue_send_modes", "sender")
        .arg("TO", &path)
        .fd(ctl_peer.as_fd())
        .spawn();
    let full = ctl_recv(&ctl);
    let sent: u32 = full.strip_prefix("full after ").unwrap().parse().unwrap();
    assert!(sent >= 1);
    let mut expected: Vec<Vec<u8>> = (0..sent).map(|i| format!("m{i}").into_bytes()).collect();
    expected.push(b"after room".to_vec());
    expected.push(b"loose after room".to_vec());
    let mut got = Vec::new();
    let mut take_one = || {
        let (bytes, _) = slow.recv_vec(PATIENCE).unwrap();
        got.push(bytes);
    };
    take_one(); // room for the connected sender
    assert_eq!(ctl_recv(&ctl), "sent connected");
    take_one(); // room for the unconnected one
    assert_eq!(ctl_recv(&ctl), "sent unconnected");
    for _ in 2..expected.len() {
        take_one();
    }
    assert_eq!(got, expected);
    assert!(matches!(slow.try_recv(), Err(Error::Empty { .. })));
    peer.wait_success();
}

/// A buffer of `recv_buffer_hint()` bytes (the most an unprivileged sender
/// can send) is received in one call, without a peek: whole when the
/// datagram fits, and, when a datagram is longer still, that datagram is
/// consumed. A buffer one byte smaller peeks first and leaves it queued.
///
/// The receiver fakes `net.core.wmem_*` in a private mount namespace so
/// that the hint (2 * 1024 - 32) is below what the sender may really send;
/// with the machine's own values no unprivileged sender could exceed it.
#[test]
fn unix_buffer_of_the_receive_hint_takes_one_call() {
    if util::role().is_some() {
        let dir = PathBuf::from(util::arg("DIR"));
        if let Err(why) = util::fake_wmem(&dir, 1024) {
            util::skip(format!("cannot fake net.core.wmem_* here ({why})"));
            return;
        }
        let mine = UnixDatagram::try_from(util::passed_fd(0)).unwrap();
        let hint = mine.recv_buffer_hint().unwrap();
        assert_eq!(hint, 2 * 1024 - 32);
        let mut buf = vec![0; 4000];

        // Below the hint: peeked, refused, kept.
        let err = mine.recv_into(&mut buf[..hint - 1], PATIENCE).unwrap_err();
        assert!(
            matches!(
                err,
                Error::BufferTooSmall {
                    needed: Some(3000),
                    ..
                }
            ),
            "{err:?}"
        );
        // At the hint: one call, so the long datagram is consumed with it.
        let err = mine.recv_from(&mut buf[..hint], Wait::Never).unwrap_err();
        assert!(
            matches!(err, Error::BufferTooSmall { buffer, needed: Some(3000), .. } if buffer == hint),
            "{err:?}"
        );
        let err = mine.recv_into(&mut buf[..hint], Wait::Never).unwrap_err();
        assert!(
            matches!(
                err,
                Error::BufferTooSmall {
                    needed: Some(3000),
                    ..
                }
            ),
            "{err:?}"
        );
        // Both gone: the next receive returns the third datagram, whole.
        let got = mine.recv_into(&mut buf, PATIENCE).unwrap();
        assert_eq!(got.len, 3000);
        assert!(buf[..3000] == pattern(3000, 3)[..]);
        // Datagrams that fit arrive whole.
        let got = mine.recv_into(&mut buf[..hint], PATIENCE).unwrap();
        assert!(buf[..got.len] == pattern(100, 4)[..]);
        let (len, from) = mine.recv_from(&mut buf[..hint], PATIENCE).unwrap();
        assert!(buf[..len] == pattern(0, 5)[..]);
        assert_eq!(from, None, "one end of a pair has no address");
        return;
    }
    if !util::is_root() {
        util::skip("faking net.core.wmem_* needs root");
        return;
    }
    let dir = util::TempDir::new();
    let (parent, child) = UnixDatagram::pair().unwrap();
    // All queued before the peer starts: it takes some with Wait::Never,
    // which must not race the sends.
    for (len, seed) in [(3000, 1), (3000, 2), (3000, 3), (100, 4), (0, 5)] {
        parent.send(&pattern(len, seed)).unwrap();
    }
    let mut peer = util::Peer::new(
        "dgram::unix_buffer_of_the_receive_hint_takes_one_call",
        "receiver",
    )
    .fd(child.as_fd())
    .arg("DIR", dir.path());
    peer.command().stdout(std::process::Stdio::inherit());
    let peer = peer.spawn();
    drop(child);
    peer.wait_success();
}

/// A socketpair shared with a child: when the child's end closes, the next
/// send says the peer has gone, and a receive finds no end-of-file but
/// simply times out.
#[test]
fn unix_pair_peer_gone() {
    if util::role().is_some() {
        let mine = UnixDatagram::try_from(util::passed_fd(0)).unwrap();
        assert_eq!(mine.recv().unwrap(), b"hello");
        mine.send(b"bye").unwrap();
        return;
    }
    let (parent, child) = UnixDatagram::pair().unwrap();
    let peer = util::Peer::new("dgram::unix_pair_peer_gone", "child")
        .fd(child.as_fd())
        .spawn();
    drop(child);
    parent.send(b"hello").unwrap();
    assert_eq!(parent.recv_vec(PATIENCE).unwrap().0, b"bye");
    peer.wait_success();

    let err = parent.send(b"anyone?").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED), "{err}");
    assert_eq!(
        err.to_string(),
        "unix-dgram: send: connection refused: the connected peer has closed its socket"
    );
    let late = parent.recv_vec(Wait::For(Duration::from_millis(100)));
    assert!(matches!(late, Err(Error::TimedOut { .. })), "{late:?}");
}

/// `nobody` may send to a socket file with mode 0666 but not to one with
/// mode 0600 owned by root: EACCES, and the error says so.
#[test]
fn unix_permission_refused_for_nobody() {
    if util::role().is_some() {
        assert_eq!(rustix::process::geteuid().as_raw(), util::NOBODY.0);
        let open = UnixAddr::path(util::arg("OPEN")).unwrap();
        let closed = UnixAddr::path(util::arg("CLOSED")).unwrap();
        let sock = UnixDatagram::unbound().unwrap();
        sock.send_to(b"from nobody", &open, PATIENCE).unwrap();
        let err = sock.send_to(b"sneaky", &closed, PATIENCE).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "unix-dgram:{closed}: sendto: permission denied: \
                 this user lacks permission; check the object's owner and mode"
            )
        );
        let mut sock = sock;
        let err = sock.connect(&closed).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{err}");
        return;
    }
    if !util::is_root() {
        util::skip(format!(
            "switching to nobody needs root; running as uid {}",
            rustix::process::geteuid().as_raw()
        ));
        return;
    }
    let dir = util::TempDir::new();
    let open_path = dir.join("open.sock");
    let closed_path = dir.join("closed.sock");
    let open = UnixOptions::new()
        .mode(Mode::ALL_RW)
        .bind(&UnixAddr::path(&open_path).unwrap())
        .unwrap();
    let closed = UnixOptions::new()
        .mode(Mode::OWNER_RW)
        .bind(&UnixAddr::path(&closed_path).unwrap())
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&open_path), 0o666, "the mode survives the umask");
    assert_eq!(mode(&closed_path), 0o600);

    let mut peer = util::Peer::new("dgram::unix_permission_refused_for_nobody", "nobody")
        .arg("OPEN", &open_path)
        .arg("CLOSED", &closed_path);
    util::as_nobody(&mut peer);
    peer.spawn().wait_success();

    let mut buf = [0u8; 32];
    let (n, _) = open.recv_from(&mut buf, Wait::Never).unwrap();
    assert_eq!(&buf[..n], b"from nobody");
    assert!(matches!(
        closed.recv_from(&mut buf, Wait::Never),
        Err(Error::Empty { .. })
    ));
}

/// 100,000 messages from 4 producer processes reach 2 consumer processes
/// that share one bound socket: each message exactly once, and each
/// producer's messages in order within each consumer.
#[test]
fn unix_exactly_once_many_producers_two_consumers() {
    const PRODUCERS: u32 = 4;
    const PER_PRODUCER: u32 = 25_000;
    const CONSUMERS: usize = 2;
    let test = "dgram::unix_exactly_once_many_producers_two_consumers";
    if let Some(role) = util::role() {
        if role == "producer" {
            let id: u32 = util::arg("ID").parse().unwrap();
            let mut sock = UnixDatagram::unbound().unwrap();
            sock.connect(&UnixAddr::path(util::arg("PATH")).unwrap())
                .unwrap();
            let mut msg = [0u8; 8];
            msg[..4].copy_from_slice(&id.to_le_bytes());
            for seq in 0..PER_PRODUCER {
                msg[4..].copy_from_slice(&seq.to_le_bytes());
                sock.send(&msg).unwrap();
            }
        } else {
            let sock = UnixDatagram::try_from(util::passed_fd(0)).unwrap();
            let mut buf = [0u8; 16];
            let mut got = Vec::new();
            loop {
                let n = sock.recv_into(&mut buf, Wait::Forever).unwrap().len;
                if &buf[..n] == b"STOP" {
                    break;
                }
                assert_eq!(n, 8, "every data message is 8 bytes");
                let id = u32::from_le_bytes(buf[..4].try_into().unwrap());
                let seq = u32::from_le_bytes(buf[4..8].try_into().unwrap());
                got.push((id, seq));
            }
            let mut out = String::with_capacity(got.len() * 10);
            for (id, seq) in got {
                out.push_str(&format!("M {id} {seq}\n"));
            }
            print!("{out}");
        }
        return;
    }
    let started = Instant::now();
    let dir = util::TempDir::new();
    let path = dir.join("shared.sock");
    let addr = UnixAddr::path(&path).unwrap();
    let shared = UnixDatagram::bind(&addr).unwrap();
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            util::Peer::new(test, "consumer")
                .fd(shared.as_fd())
                .capture_stdout()
                .spawn()
        })
        .collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|id| {
            util::Peer::new(test, "producer")
                .arg("ID", id.to_string())
                .arg("PATH", &path)
                .spawn()
        })
        .collect();
    for producer in producers {
        producer.wait_success();
    }
    // Every data message is queued ahead of these.
    let stopper = UnixDatagram::unbound().unwrap();
    for _ in 0..CONSUMERS {
        stopper.send_to(b"STOP", &addr, Wait::Forever).unwrap();
    }

    let mut seen: HashMap<(u32, u32), usize> = HashMap::new();
    for (c, consumer) in consumers.into_iter().enumerate() {
        let (status, out) = consumer.wait_stdout();
        assert!(status.success(), "consumer {c} failed: {status:?}");
        let mut last: HashMap<u32, u32> = HashMap::new();
        let mut count = 0;
        for line in String::from_utf8(out).unwrap().lines() {
            let Some(rest) = line.strip_prefix("M ") else {
                continue;
            };
            let (id, seq) = rest.split_once(' ').unwrap();
            let (id, seq): (u32, u32) = (id.parse().unwrap(), seq.parse().unwrap());
            assert!(
                id < PRODUCERS && seq < PER_PRODUCER,
                "bogus message {id}/{seq}"
            );
            if let Some(&prev) = last.get(&id) {
                assert!(
                    seq > prev,
                    "consumer {c} saw producer {id}'s {seq} after {prev}"
                );
            }
            last.insert(id, seq);
            *seen.entry((id, seq)).or_default() += 1;
            count += 1;
        }
        println!("consumer {c} received {count} messages");
    }
    let duplicated: Vec<_> = seen.iter().filter(|(_, &n)| n > 1).take(5).collect();
    assert!(duplicated.is_empty(), "duplicated: {duplicated:?}");
    let total = (PRODUCERS * PER_PRODUCER) as usize;
    assert_eq!(seen.len(), total, "{} messages lost", total - seen.len());
    assert!(
        matches!(
            shared.recv_from(&mut [0; 16], Wait::Never),
            Err(Error::Empty { .. })
        ),
        "nothing left over"
    );
    println!("100,000 messages in {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------
// UDP multicast.

/// Multicast between processes: a peer joins a group; what the parent sends
/// to the group reaches it; after it leaves, the group's datagrams no
/// longer do (while unicast to the same socket still does).
///
/// `group_addr` and `iface_*` choose the family and the interface.
fn multicast_round(
    test: &str,
    group: IpAddr,
    member_bind: SocketAddr,
    member_iface: Interface,
    sender: &UdpSocket,
    unicast_to: IpAddr,
) {
    let (ctl, ctl_peer) = control_pair();
    let peer = util::Peer::new(test, "member")
        .arg("GROUP", group.to_string())
        .arg("BIND", member_bind.to_string())
        .arg("IFACE", iface_arg(&member_iface))
        .fd(ctl_peer.as_fd())
        .spawn();
    drop(ctl_peer);
    let joined = ctl_recv(&ctl);
    let port: u16 = joined
        .strip_prefix("joined ")
        .unwrap_or_else(|| panic!("member: {joined}"))
        .parse()
        .unwrap();
    let to_group = SocketAddr::new(group, port);
    sender.send_to(b"to the group", to_group, PATIENCE).unwrap();
    assert_eq!(ctl_recv(&ctl), "received; left");
    sender
        .send_to(b"after leaving", to_group, PATIENCE)
        .unwrap();
    sender
        .send_to(b"unicast", SocketAddr::new(unicast_to, port), PATIENCE)
        .unwrap();
    assert_eq!(ctl_recv(&ctl), "done");
    peer.wait_success();
}

fn iface_arg(iface: &Interface) -> String {
    match iface {
        Interface::Address(a) => format!("addr {a}"),
        Interface::Index(i) => format!("index {i}"),
        Interface::Name(n) => format!("name {n}"),
        _ => "default".into(),
    }
}

fn multicast_member() {
    let ctl = peer_ctl();
    let group: IpAddr = util::arg("GROUP").parse().unwrap();
    let bind: SocketAddr = util::arg("BIND").parse().unwrap();
    let iface = util::arg("IFACE");
    let iface = match iface.split_once(' ') {
        Some(("addr", a)) => Interface::Address(a.parse().unwrap()),
        Some(("index", i)) => Interface::Index(i.parse().unwrap()),
        Some(("name", n)) => Interface::Name(n.into()),
        _ => Interface::Default,
    };
    let sock = UdpOptions::new()
        .reuse_address(true)
        .bind_addr(bind)
        .unwrap();
    sock.join_multicast(group, &iface).unwrap();
    let err = sock.join_multicast(group, &iface).unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(libc::EADDRINUSE),
        "joined twice: {err}"
    );
    ctl_send(&ctl, &format!("joined {}", sock.local_addr().port()));

    let mut buf = [0u8; 64];
    let (n, _) = sock.recv_from(&mut buf, PATIENCE).unwrap();
    assert_eq!(&buf[..n], b"to the group");
    sock.leave_multicast(group, &iface).unwrap();
    ctl_send(&ctl, "received; left");

    // The group's datagram was sent before the unicast one; neither before
    // nor after it may the group's arrive.
    let (n, _) = sock.recv_from(&mut buf, PATIENCE).unwrap();
    assert_eq!(
        &buf[..n],
        b"unicast",
        "a group datagram arrived after leaving"
    );
    let late = sock.recv_from(&mut buf, Wait::For(Duration::from_millis(200)));
    assert!(
        matches!(late, Err(Error::TimedOut { .. })),
        "after leaving, got {:?}",
        late.map(|(n, _)| String::from_utf8_lossy(&buf[..n]).into_owned())
    );
    ctl_send(&ctl, "done");
}

/// IPv4 multicast on the loopback interface: `lo` here lacks the MULTICAST
/// flag, yet choosing it by address (IP_MULTICAST_IF = 127.0.0.1, joined
/// on 127.0.0.1, loop on) delivers locally. TTL 0 keeps it on this host.
#[test]
fn udp_multicast_v4_on_loopback() {
    if util::role().is_some() {
        multicast_member();
        return;
    }
    let group = IpAddr::V4(Ipv4Addr::new(
        239,
        255,
        77,
        (std::process::id() % 250) as u8 + 1,
    ));
    let sender = UdpSocket::bind_addr("127.0.0.1:0".parse().unwrap()).unwrap();
    sender
        .set_multicast_interface(&Interface::Address(Ipv4Addr::LOCALHOST))
        .unwrap();
    sender.set_multicast_loop(true).unwrap();
    sender.set_multicast_hops(0).unwrap();
    assert!(sender.multicast_loop().unwrap());
    assert_eq!(sender.multicast_hops().unwrap(), 0);
    let err = sender.set_multicast_hops(256).unwrap_err();
    assert!(matches!(err, Error::LimitExceeded { .. }), "{err:?}");

    multicast_round(
        "dgram::udp_multicast_v4_on_loopback",
        group,
        "0.0.0.0:0".parse().unwrap(),
        Interface::Address(Ipv4Addr::LOCALHOST),
        &sender,
        IpAddr::V4(Ipv4Addr::LOCALHOST),
    );
}

/// IPv6 multicast. `lo` has neither the MULTICAST flag nor an IPv6
/// multicast route here, so sends to a group on it fail with ENETUNREACH;
/// instead the test uses the first multicast-capable interface with an
/// interface-local group (ff01::/16), which the kernel loops back and never
/// transmits (and a hop limit of 0 besides).
#[test]
fn udp_multicast_v6_interface_local() {
    if util::role().is_some() {
        multicast_member();
        return;
    }
    let Some((name, index)) = multicast_interface() else {
        util::skip("no interface is up with the MULTICAST flag, so IPv6 multicast cannot be tried");
        return;
    };
    let Ok(sender) = UdpSocket::bind_addr("[::]:0".parse().unwrap()) else {
        util::skip("IPv6 is not available on this host");
        return;
    };
    let group = IpAddr::V6(Ipv6Addr::new(
        0xff01,
        0,
        0,
        0,
        0,
        0,
        0x7e57,
        (std::process::id() & 0xffff) as u16,
    ));
    sender
        .set_multicast_interface(&Interface::Name(name.clone()))
        .unwrap();
    sender.set_multicast_loop(true).unwrap();
    sender.set_multicast_hops(0).unwrap();
    assert_eq!(sender.multicast_hops().unwrap(), 0);
    let err = sender
        .set_multicast_interface(&Interface::Address(Ipv4Addr::LOCALHOST))
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    println!("IPv6 multicast on {name} (index {index}), group {group}");

    multicast_round(
        "dgram::udp_multicast_v6_interface_local",
        group,
        "[::]:0".parse().unwrap(),
        Interface::Index(index),
        &sender,
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    );
}

/// The first interface that is up and has the MULTICAST flag, from sysfs.
fn multicast_interface() -> Option<(String, u32)> {
    const IFF_UP: u32 = 0x1;
    const IFF_LOOPBACK: u32 = 0x8;
    const IFF_MULTICAST: u32 = 0x1000;
    let mut found: Vec<(u32, String)> = Vec::new();
    for entry in std::fs::read_dir("/sys/class/net").ok()? {
        let path = entry.ok()?.path();
        let read = |f: &str| std::fs::read_to_string(path.join(f)).ok();
        let Some(flags) = read("flags") else { continue };
        let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).ok()?;
        let index: u32 = read("ifindex")?.trim().parse().ok()?;
        if flags & (IFF_UP | IFF_MULTICAST) == IFF_UP | IFF_MULTICAST && flags & IFF_LOOPBACK == 0 {
            found.push((index, path.file_name()?.to_string_lossy().into_owned()));
        }
    }
    found.sort();
    found.into_iter().next().map(|(index, name)| (name, index))
}
