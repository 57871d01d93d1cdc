//! TCP stream sockets (`tcp:HOST:PORT`), IPv4 and IPv6 behind one interface.
//!
//! The one byte stream in [`stream`](crate::stream) that reaches other
//! hosts. A [`Listener`] binds a host and port and accepts connections; a
//! [`Stream`] is one connection, made with [`Stream::connect`] or returned by
//! [`Listener::accept`]. Host names are resolved with the system resolver
//! when the endpoint is used; a numeric address is used as written.
//!
//! As everywhere in unipc, descriptors are close-on-exec and writes never
//! raise SIGPIPE: writing to a peer that closed and reset the connection is
//! an [`std::io::ErrorKind::BrokenPipe`] or
//! [`std::io::ErrorKind::ConnectionReset`] error. Errors name the endpoint as
//! `tcp:HOST:PORT` (`tcp:[::1]:80` for IPv6).
//!
//! ```
//! use std::io::{Read, Write};
//! use unipc::endpoint::HostPort;
//! use unipc::stream::tcp;
//!
//! let listener = tcp::Listener::bind(&HostPort { host: "127.0.0.1".into(), port: 0 })?;
//! let port = listener.local_addr()?.port();
//!
//! let mut client = tcp::Stream::connect(&HostPort { host: "127.0.0.1".into(), port })?;
//! let (mut server, _peer) = listener.accept()?;
//! client.write_all(b"ping")?;
//! let mut got = [0; 4];
//! server.read_exact(&mut got)?;
//! assert_eq!(&got, b"ping");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # A peer host that disappears
//!
//! A peer *process* that dies is noticed at once: its kernel closes the
//! connection. A peer *host* that vanishes (powered off, cut off the
//! network) says nothing, and by default the kernel retransmits for about
//! 15 minutes (`net.ipv4.tcp_retries2`) and never probes an idle
//! connection, so a blocked read can wait forever. [`TcpOptions`] bounds
//! both:
//!
//! - [`TcpOptions::user_timeout`] (`TCP_USER_TIMEOUT`): sent data that
//!   stays unacknowledged that long closes the connection;
//! - [`TcpOptions::keepalive`] (`SO_KEEPALIVE` with `TCP_KEEPIDLE`,
//!   `TCP_KEEPINTVL`, `TCP_KEEPCNT`): an idle connection is probed, and
//!   probes left unanswered close it. With a user timeout set as well, the
//!   user timeout also bounds how long probes may go unanswered.
//!
//! The read or write that finds the connection closed this way fails with
//! [`Error::PeerUnresponsive`], naming the peer and the limit: directly
//! from [`Stream::recv`] and [`Stream::send`], and inside the
//! [`io::Error`] (kind [`io::ErrorKind::TimedOut`]) from [`Read`] and
//! [`Write`], where `err.get_ref()` downcasts to it.
//!
//! ```
//! use std::time::Duration;
//! use unipc::endpoint::HostPort;
//! use unipc::stream::tcp::{Keepalive, TcpOptions};
//!
//! let options = TcpOptions::new()
//!     .connect_timeout(Duration::from_secs(5))
//!     .user_timeout(Duration::from_secs(10))
//!     .keepalive(Keepalive::new(Duration::from_secs(5), Duration::from_secs(1), 3));
//! // Accepted connections inherit the listener's options.
//! let listener = options.bind(&HostPort { host: "127.0.0.1".into(), port: 0 })?;
//! let client = options.connect_addr(listener.local_addr()?)?;
//! let (server, _) = listener.accept()?;
//! for end in [&client, &server] {
//!     assert_eq!(end.user_timeout()?, Some(Duration::from_secs(10)));
//!     assert_eq!(end.keepalive()?.map(|k| k.detection_time()), Some(Duration::from_secs(8)));
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # References
//! [tcp(7)](https://man7.org/linux/man-pages/man7/tcp.7.html),
//! [ip(7)](https://man7.org/linux/man-pages/man7/ip.7.html),
//! [ipv6(7)](https://man7.org/linux/man-pages/man7/ipv6.7.html),
//! [getaddrinfo(3)](https://man7.org/linux/man-pages/man3/getaddrinfo.3.html)

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::io::Errno;

use crate::adopt::{self, Want};
use crate::deadline::Deadline;
use crate::endpoint::HostPort;
use crate::error::ObjectName;
use crate::facility::{
    Direction, Facility, LiveLimit, Naming, Persistence, Properties, Reach, Shape, Tags,
};
use crate::sys;
use crate::sys::fd::{Family, SocketKind};
use crate::{AdoptError, Error, Result};

/// The most whole seconds the kernel accepts for `TCP_KEEPIDLE` and
/// `TCP_KEEPINTVL` (`MAX_TCP_KEEPIDLE`, `MAX_TCP_KEEPINTVL`).
const MAX_KEEPALIVE_SECS: u64 = 32_767;

/// The most probes the kernel accepts for `TCP_KEEPCNT` (`MAX_TCP_KEEPCNT`).
const MAX_KEEPALIVE_PROBES: u32 = 127;

/// `tcp:HOST:PORT`, as errors name an endpoint.
fn object_of(addr: &HostPort) -> String {
    format!("tcp:{addr}")
}

/// `tcp:IP:PORT` for an address already resolved (`[v6]:port` bracketed).
fn object_of_addr(addr: &SocketAddr) -> String {
    format!("tcp:{addr}")
}

/// Resolves `addr` to the addresses to try, in the resolver's order.
///
/// A numeric host is used as written, without asking the resolver.
fn resolve(addr: &HostPort) -> Result<Vec<SocketAddr>> {
    if let Ok(ip) = addr.host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, addr.port)]);
    }
    let found: Vec<SocketAddr> = (addr.host.as_str(), addr.port)
        .to_socket_addrs()
        .map_err(|err| Error::os(object_of(addr), "resolve", err))?
        .collect();
    if found.is_empty() {
        return Err(no_address(addr));
    }
    Ok(found)
}

fn no_address(addr: &HostPort) -> Error {
    Error::os(
        object_of(addr),
        "resolve",
        io::Error::new(io::ErrorKind::NotFound, "the name has no address"),
    )
}

/// TCP keepalive: when a connection has been idle for `idle`, the kernel
/// sends a probe every `interval`; after `count` probes without an answer
/// it closes the connection (`SO_KEEPALIVE`, `TCP_KEEPIDLE`,
/// `TCP_KEEPINTVL`, `TCP_KEEPCNT`).
///
/// The kernel counts in whole seconds: `idle` and `interval` are rounded up
/// and must come to 1 to 32,767 s; `count` is 1 to 127. A silent peer is
/// found after [`Keepalive::detection_time`] of silence.
///
/// ```
/// use std::time::Duration;
/// use unipc::stream::tcp::Keepalive;
///
/// let k = Keepalive::new(Duration::from_millis(1500), Duration::from_secs(1), 3);
/// assert_eq!(k.detection_time(), Duration::from_secs(2 + 3));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// How long the connection is idle before the first probe.
    pub idle: Duration,
    /// The time between probes.
    pub interval: Duration,
    /// How many unanswered probes close the connection.
    pub count: u32,
}

impl Keepalive {
    /// Probes after `idle`, then every `interval`, giving up after `count`.
    pub const fn new(idle: Duration, interval: Duration, count: u32) -> Self {
        Keepalive {
            idle,
            interval,
            count,
        }
    }

    /// How long a peer may stay silent before the kernel gives up: `idle +
    /// interval × count`, in the whole seconds the kernel counts.
    pub fn detection_time(&self) -> Duration {
        let secs = |d: Duration| d.as_secs() + u64::from(d.subsec_nanos() != 0);
        Duration::from_secs(
            secs(self.idle).saturating_add(secs(self.interval).saturating_mul(self.count.into())),
        )
    }
}

/// Options for TCP connections: how long a connect may take, how long a
/// peer may leave data unacknowledged or stay silent, Nagle's algorithm.
/// Built by value and used by [`TcpOptions::connect`] (and
/// [`connect_addr`](TcpOptions::connect_addr)) or [`TcpOptions::bind`]
/// (and [`bind_addr`](TcpOptions::bind_addr)): a listener's connections
/// inherit its user timeout, keepalive and no-delay setting.
///
/// See [the module](self#a-peer-host-that-disappears) for what the
/// timeouts guard against.
///
/// ```
/// use std::time::Duration;
/// use unipc::stream::tcp::TcpOptions;
///
/// let listener = TcpOptions::new().bind_addr("127.0.0.1:0".parse()?)?;
/// let stream = TcpOptions::new()
///     .connect_timeout(Duration::from_secs(2))
///     .user_timeout(Duration::from_millis(2500))
///     .nodelay(true)
///     .connect_addr(listener.local_addr()?)?;
/// assert_eq!(stream.user_timeout()?, Some(Duration::from_millis(2500)));
/// assert!(stream.nodelay()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpOptions {
    connect_timeout: Option<Duration>,
    user_timeout: Option<Duration>,
    keepalive: Option<Keepalive>,
    nodelay: Option<bool>,
}

impl TcpOptions {
    /// The defaults: a connect waits as long as the kernel tries (about two
    /// minutes for a host that does not answer), the system's
    /// retransmission limit, no keepalive, Nagle's algorithm on.
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives each resolved address at most `timeout` to accept a connect
    /// (`socket(SOCK_NONBLOCK)` + `connect` + `poll`); the stream returned
    /// is blocking. Not used by [`bind`](Self::bind).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// `TCP_USER_TIMEOUT`: sent data left unacknowledged for `timeout`
    /// closes the connection, and the read or write that finds it fails
    /// with [`Error::PeerUnresponsive`]. Rounded up to whole milliseconds;
    /// [`Duration::ZERO`] keeps the system's limit (`net.ipv4.tcp_retries2`,
    /// about 15 minutes). With [`keepalive`](Self::keepalive) it also bounds
    /// how long probes may go unanswered. It does not fire while the peer's
    /// kernel acknowledges, however slowly its process reads.
    ///
    /// The kernel looks at the limit when its retransmission timer fires,
    /// so the error comes somewhat after it: measured on Linux 6.18
    /// between two network namespaces, a limit of 2 s ended a blocked write
    /// 2.2 to 3.3 s after the link was cut (0.2 to 1.3 s late).
    #[doc(alias = "TCP_USER_TIMEOUT")]
    pub fn user_timeout(mut self, timeout: Duration) -> Self {
        self.user_timeout = Some(timeout);
        self
    }

    /// Turns keepalive on: an idle connection is probed as `keepalive`
    /// says, and one whose peer does not answer is closed
    /// ([`Error::PeerUnresponsive`] for the read or write that finds it).
    #[doc(alias = "SO_KEEPALIVE")]
    #[doc(alias = "TCP_KEEPIDLE")]
    pub fn keepalive(mut self, keepalive: Keepalive) -> Self {
        self.keepalive = Some(keepalive);
        self
    }

    /// `TCP_NODELAY`: when true, small writes go out at once instead of
    /// waiting to be coalesced (Nagle's algorithm).
    pub fn nodelay(mut self, nodelay: bool) -> Self {
        self.nodelay = Some(nodelay);
        self
    }

    /// `socket` + options + `connect` — connects to the first of `addr`'s
    /// resolved addresses that accepts, trying each in the resolver's
    /// order.
    ///
    /// # Errors
    /// The resolver's error; [`Error::TimedOut`] when the last address
    /// tried did not answer within the connect timeout; otherwise the
    /// error of the last address tried, e.g. `tcp:127.0.0.1:9: connect:
    /// connection refused: no process listens there`; [`Error::Os`] naming
    /// the `setsockopt` for an option the kernel refused (a keepalive out
    /// of range).
    pub fn connect(&self, addr: &HostPort) -> Result<Stream> {
        let object = object_of(addr);
        let mut last = None;
        for candidate in resolve(addr)? {
            match self.connect_one(&candidate, &object) {
                Ok(stream) => return Ok(stream),
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(|| no_address(addr)))
    }

    /// `socket` + options + `connect` — connects to one address.
    ///
    /// # Errors
    /// As [`TcpOptions::connect`].
    pub fn connect_addr(&self, addr: SocketAddr) -> Result<Stream> {
        self.connect_one(&addr, &object_of_addr(&addr))
    }

    /// `socket` + `SO_REUSEADDR` + options + `bind` + `listen` — as
    /// [`Listener::bind`], with these options set on the listening socket,
    /// which the kernel copies to every connection it accepts.
    ///
    /// # Errors
    /// As [`Listener::bind`]; [`Error::Os`] naming the `setsockopt` for an
    /// option the kernel refused.
    pub fn bind(&self, addr: &HostPort) -> Result<Listener> {
        let mut last = None;
        for candidate in resolve(addr)? {
            match Listener::bind_one(&candidate, &object_of(addr), self) {
                Ok(listener) => return Ok(listener),
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(|| no_address(addr)))
    }

    /// As [`TcpOptions::bind`], for one address.
    ///
    /// # Errors
    /// As [`TcpOptions::bind`].
    pub fn bind_addr(&self, addr: SocketAddr) -> Result<Listener> {
        Listener::bind_one(&addr, &object_of_addr(&addr), self)
    }

    /// Sets the options that live on the socket (all but the connect
    /// timeout).
    fn apply(&self, fd: BorrowedFd<'_>, object: &str) -> Result<()> {
        if let Some(timeout) = self.user_timeout {
            set_user_timeout(fd, object, timeout)?;
        }
        if let Some(keepalive) = self.keepalive {
            set_keepalive(fd, object, Some(keepalive))?;
        }
        if let Some(nodelay) = self.nodelay {
            sys::tcp::set_nodelay(fd, nodelay)
                .map_err(|e| Error::os(object, "setsockopt TCP_NODELAY", e))?;
        }
        Ok(())
    }

    fn connect_one(&self, addr: &SocketAddr, object: &str) -> Result<Stream> {
        let timeout = self.connect_timeout;
        let os = |op| move |e| Error::os(object, op, e);
        let fd = sys::tcp::socket(addr, timeout.is_some()).map_err(os("socket"))?;
        self.apply(fd.as_fd(), object)?;
        match sys::tcp::connect(fd.as_fd(), addr) {
            Ok(()) => {}
            // Non-blocking, the handshake goes on in the kernel. Blocking
            // and interrupted by a signal, the kernel goes on too: wait for
            // the outcome, since connecting again would fail with EALREADY.
            Err(Errno::INPROGRESS | Errno::INTR) => {
                Stream::finish_connect(fd.as_fd(), object, timeout)?
            }
            Err(err) => return Err(os("connect")(err)),
        }
        if timeout.is_some() {
            sys::fd::set_nonblocking(fd.as_fd(), false).map_err(os("fcntl F_SETFL"))?;
        }
        Ok(Stream {
            fd,
            object: object.into(),
            peer: Some(*addr),
        })
    }
}

/// `TCP_USER_TIMEOUT` in whole milliseconds, rounded up.
fn set_user_timeout(fd: BorrowedFd<'_>, object: &str, timeout: Duration) -> Result<()> {
    let refused = |e| {
        Error::os(object, "setsockopt TCP_USER_TIMEOUT", e)
            .with_hint("the kernel takes up to 4294967295 ms")
    };
    let ms = timeout.as_nanos().div_ceil(1_000_000);
    let ms = u32::try_from(ms).map_err(|_| refused(Errno::INVAL))?;
    sys::tcp::set_user_timeout(fd, ms).map_err(refused)
}

/// `SO_KEEPALIVE` on with its three parameters, or off.
fn set_keepalive(fd: BorrowedFd<'_>, object: &str, keepalive: Option<Keepalive>) -> Result<()> {
    let os = |op| move |e| Error::os(object, op, e);
    let Some(k) = keepalive else {
        return sys::tcp::set_keepalive(fd, false).map_err(os("setsockopt SO_KEEPALIVE"));
    };
    let whole = |d: Duration| d.as_secs() + u64::from(d.subsec_nanos() != 0);
    let secs_hint = "the kernel takes 1 to 32767 whole seconds";
    for (what, d) in [
        ("setsockopt TCP_KEEPIDLE", k.idle),
        ("setsockopt TCP_KEEPINTVL", k.interval),
    ] {
        if !(1..=MAX_KEEPALIVE_SECS).contains(&whole(d)) {
            return Err(Error::os(object, what, Errno::INVAL).with_hint(secs_hint));
        }
    }
    if !(1..=MAX_KEEPALIVE_PROBES).contains(&k.count) {
        return Err(Error::os(object, "setsockopt TCP_KEEPCNT", Errno::INVAL)
            .with_hint("the kernel takes 1 to 127 probes"));
    }
    sys::tcp::set_keepidle(fd, k.idle).map_err(os("setsockopt TCP_KEEPIDLE"))?;
    sys::tcp::set_keepintvl(fd, k.interval).map_err(os("setsockopt TCP_KEEPINTVL"))?;
    sys::tcp::set_keepcnt(fd, k.count).map_err(os("setsockopt TCP_KEEPCNT"))?;
    sys::tcp::set_keepalive(fd, true).map_err(os("setsockopt SO_KEEPALIVE"))
}

/// The keepalive in force on `fd`, `None` when off.
fn keepalive_of(fd: BorrowedFd<'_>) -> rustix::io::Result<Option<Keepalive>> {
    if !sys::tcp::keepalive(fd)? {
        return Ok(None);
    }
    Ok(Some(Keepalive {
        idle: sys::tcp::keepidle(fd)?,
        interval: sys::tcp::keepintvl(fd)?,
        count: sys::tcp::keepcnt(fd)?,
    }))
}

/// A TCP listening socket: binds a host and port, accepts connections.
///
/// Created with `SO_REUSEADDR`, so a server can rebind its port while
/// connections from an earlier run linger in TIME_WAIT. Dropping it closes
/// the socket.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use unipc::stream::tcp;
///
/// let listener = tcp::Listener::bind_addr("127.0.0.1:0".parse()?)?;
/// // Nobody connects, so the accept gives up.
/// let err = listener.accept_timeout(Duration::from_millis(10)).unwrap_err();
/// assert!(matches!(err, unipc::Error::TimedOut { .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # References
/// [socket(2)](https://man7.org/linux/man-pages/man2/socket.2.html),
/// [bind(2)](https://man7.org/linux/man-pages/man2/bind.2.html),
/// [listen(2)](https://man7.org/linux/man-pages/man2/listen.2.html),
/// [accept(2)](https://man7.org/linux/man-pages/man2/accept.2.html)
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
    object: ObjectName,
}

impl Listener {
    /// `socket` + `SO_REUSEADDR` + `bind` + `listen` — binds the first of
    /// `addr`'s resolved addresses that accepts the bind.
    ///
    /// Port 0 asks the kernel for any free port; read it back with
    /// [`Listener::local_addr`].
    ///
    /// # Errors
    /// The resolver's error; or, when no address could be bound, the error
    /// of the last one tried, e.g. `EADDRINUSE` when another socket listens
    /// on that port (`tcp:127.0.0.1:80: bind: address already in use:
    /// another process listens there`).
    ///
    /// # Examples
    /// ```
    /// use unipc::endpoint::HostPort;
    /// use unipc::stream::tcp;
    ///
    /// let listener = tcp::Listener::bind(&HostPort { host: "localhost".into(), port: 0 })?;
    /// assert!(listener.local_addr()?.ip().is_loopback());
    /// # Ok::<(), unipc::Error>(())
    /// ```
    #[doc(alias = "listen")]
    pub fn bind(addr: &HostPort) -> Result<Listener> {
        TcpOptions::new().bind(addr)
    }

    /// `socket` + `SO_REUSEADDR` + `bind` + `listen` — binds one address.
    ///
    /// # Errors
    /// As [`Listener::bind`].
    pub fn bind_addr(addr: SocketAddr) -> Result<Listener> {
        TcpOptions::new().bind_addr(addr)
    }

    fn bind_one(addr: &SocketAddr, object: &str, options: &TcpOptions) -> Result<Listener> {
        let fd = sys::tcp::socket(addr, false).map_err(|e| Error::os(object, "socket", e))?;
        sys::tcp::set_reuseaddr(fd.as_fd())
            .map_err(|e| Error::os(object, "setsockopt SO_REUSEADDR", e))?;
        options.apply(fd.as_fd(), object)?;
        sys::tcp::bind(fd.as_fd(), addr).map_err(|e| Error::os(object, "bind", e))?;
        sys::tcp::listen(fd.as_fd()).map_err(|e| Error::os(object, "listen", e))?;
        // From here on errors name the address actually bound (the port the
        // kernel chose for port 0).
        let object = sys::tcp::local_addr(fd.as_fd())
            .map(|a| object_of_addr(&a))
            .unwrap_or_else(|_| object.to_owned());
        Ok(Listener {
            fd,
            object: object.into(),
        })
    }

    /// `accept4(SOCK_CLOEXEC)` — waits for a connection and returns it with
    /// the peer's address.
    ///
    /// # Errors
    /// An OS error; `EAGAIN` when the listener is non-blocking and nobody
    /// is waiting.
    #[doc(alias = "accept4")]
    pub fn accept(&self) -> Result<(Stream, SocketAddr)> {
        let (fd, peer) =
            sys::tcp::accept(self.fd.as_fd()).map_err(|e| Error::os(&*self.object, "accept", e))?;
        self.accepted(fd, peer)
    }

    /// `poll` + `accept4(SOCK_CLOEXEC)` — waits at most `timeout` for a
    /// connection.
    ///
    /// When several processes accept on the same socket, another may take
    /// the connection between the poll and the accept; on a blocking
    /// listener the accept then waits for the next one. Make the listener
    /// non-blocking to have the wait resume with the time left instead.
    ///
    /// # Errors
    /// [`Error::TimedOut`] when no connection came in time; an OS error.
    pub fn accept_timeout(&self, timeout: Duration) -> Result<(Stream, SocketAddr)> {
        let timed_out = || Error::TimedOut {
            object: self.object.clone(),
            timeout,
        };
        let deadline = Deadline::after(timeout);
        loop {
            let ready = sys::poll::wait(self.fd.as_fd(), sys::poll::READABLE, deadline)
                .map_err(|e| Error::os(&*self.object, "poll", e))?;
            if ready.is_empty() {
                return Err(timed_out());
            }
            match sys::tcp::accept(self.fd.as_fd()) {
                Ok((fd, peer)) => return self.accepted(fd, peer),
                Err(Errno::AGAIN | Errno::INTR) => continue,
                Err(err) => return Err(Error::os(&*self.object, "accept", err)),
            }
        }
    }

    fn accepted(&self, fd: OwnedFd, peer: Option<SocketAddr>) -> Result<(Stream, SocketAddr)> {
        let peer = match peer {
            Some(peer) => peer,
            None => sys::tcp::peer_addr(fd.as_fd())
                .map_err(|e| Error::os(&*self.object, "getpeername", e))?,
        };
        let stream = Stream {
            fd,
            object: object_of_addr(&peer).into(),
            peer: Some(peer),
        };
        Ok((stream, peer))
    }

    /// `getsockname` — the address the listener is bound to, with the port
    /// the kernel chose when port 0 was asked for.
    ///
    /// # Errors
    /// An OS error.
    #[doc(alias = "getsockname")]
    pub fn local_addr(&self) -> Result<SocketAddr> {
        sys::tcp::local_addr(self.fd.as_fd())
            .map_err(|e| Error::os(&*self.object, "getsockname", e))
    }

    /// `fcntl(F_SETFL, O_NONBLOCK)` — makes [`Listener::accept`] return
    /// `EAGAIN` instead of waiting.
    ///
    /// # Errors
    /// An OS error.
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<()> {
        sys::fd::set_nonblocking(self.fd.as_fd(), nonblocking)
            .map_err(|e| Error::os(&*self.object, "fcntl F_SETFL", e))
    }

    /// The endpoint errors name: `tcp:IP:PORT` of the bound address.
    pub fn object(&self) -> &str {
        &self.object
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<Listener> for OwnedFd {
    fn from(listener: Listener) -> OwnedFd {
        listener.fd
    }
}

impl TryFrom<OwnedFd> for Listener {
    type Error = AdoptError;

    /// Adopts a listening TCP socket (inherited, or passed over a UNIX
    /// socket).
    ///
    /// # Errors
    /// [`Error::WrongType`] for anything else (a socket that does not
    /// listen, another family or type, a file); the descriptor comes back
    /// inside the [`AdoptError`].
    fn try_from(fd: OwnedFd) -> std::result::Result<Listener, AdoptError> {
        let want = Want::Socket(Family::Inet, SocketKind::Stream, true);
        let fd = adopt::check(fd, "tcp", "a listening TCP socket", want)?;
        let object = sys::tcp::local_addr(fd.as_fd())
            .map(|a| object_of_addr(&a))
            .unwrap_or_else(|_| "tcp".to_owned());
        Ok(Listener {
            fd,
            object: object.into(),
        })
    }
}

/// A TCP connection: a byte stream to a peer, possibly on another host.
///
/// Reads and writes go through [`Read`] and [`Write`] (also on `&Stream`,
/// so one thread can read while another writes). Writes pass
/// `MSG_NOSIGNAL`: a peer that reset the connection is an error, never a
/// SIGPIPE. Dropping the stream closes it.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use std::net::Shutdown;
/// use unipc::stream::tcp;
///
/// let listener = tcp::Listener::bind_addr("127.0.0.1:0".parse()?)?;
/// let mut client = tcp::Stream::connect_addr(listener.local_addr()?)?;
/// client.set_nodelay(true)?;
/// let (mut server, peer) = listener.accept()?;
/// assert_eq!(peer, client.local_addr()?);
///
/// client.write_all(b"request")?;
/// client.shutdown(Shutdown::Write)?;
/// let mut got = String::new();
/// server.read_to_string(&mut got)?; // ends at the client's shutdown
/// assert_eq!(got, "request");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # References
/// [connect(2)](https://man7.org/linux/man-pages/man2/connect.2.html),
/// [send(2)](https://man7.org/linux/man-pages/man2/send.2.html),
/// [recv(2)](https://man7.org/linux/man-pages/man2/recv.2.html),
/// [shutdown(2)](https://man7.org/linux/man-pages/man2/shutdown.2.html),
/// [tcp(7)](https://man7.org/linux/man-pages/man7/tcp.7.html)
#[derive(Debug)]
pub struct Stream {
    fd: OwnedFd,
    object: ObjectName,
    /// The peer's address, kept for errors: `getpeername` fails once the
    /// connection is gone.
    peer: Option<SocketAddr>,
}

impl Stream {
    /// `socket` + `connect` — connects to the first of `addr`'s resolved
    /// addresses that accepts, trying each in the resolver's order, with
    /// the default [`TcpOptions`].
    ///
    /// # Errors
    /// The resolver's error; or the error of the last address tried, e.g.
    /// `tcp:127.0.0.1:9: connect: connection refused: no process listens
    /// there`.
    pub fn connect(addr: &HostPort) -> Result<Stream> {
        TcpOptions::new().connect(addr)
    }

    /// `socket` + `connect` — connects to one address.
    ///
    /// # Errors
    /// As [`Stream::connect`].
    pub fn connect_addr(addr: SocketAddr) -> Result<Stream> {
        TcpOptions::new().connect_addr(addr)
    }

    /// `socket(SOCK_NONBLOCK)` + `connect` + `poll` — as
    /// [`Stream::connect`], giving each resolved address at most `timeout`
    /// to accept: `TcpOptions::new().connect_timeout(timeout).connect(addr)`.
    ///
    /// The stream returned is blocking.
    ///
    /// # Errors
    /// [`Error::TimedOut`] when the last address tried did not answer in
    /// time; otherwise as [`Stream::connect`].
    pub fn connect_timeout(addr: &HostPort, timeout: Duration) -> Result<Stream> {
        TcpOptions::new().connect_timeout(timeout).connect(addr)
    }

    /// Waits for a connect under way to end, and returns its outcome.
    fn finish_connect(fd: BorrowedFd<'_>, object: &str, timeout: Option<Duration>) -> Result<()> {
        let ready = sys::poll::wait(fd, sys::poll::WRITABLE, Deadline::within(timeout))
            .map_err(|e| Error::os(object, "poll", e))?;
        if ready.is_empty() {
            return Err(Error::TimedOut {
                object: object.into(),
                timeout: timeout.unwrap_or_default(),
            });
        }
        match sys::fd::take_socket_error(fd) {
            Ok(None) => Ok(()),
            Ok(Some(err)) => Err(Error::os(object, "connect", err)),
            Err(err) => Err(Error::os(object, "getsockopt SO_ERROR", err)),
        }
    }

    /// `setsockopt(TCP_NODELAY)` — when true, small writes go out at once
    /// instead of waiting to be coalesced (Nagle's algorithm).
    ///
    /// # Errors
    /// An OS error.
    #[doc(alias = "TCP_NODELAY")]
    pub fn set_nodelay(&self, nodelay: bool) -> Result<()> {
        sys::tcp::set_nodelay(self.fd.as_fd(), nodelay)
            .map_err(|e| Error::os(&*self.object, "setsockopt TCP_NODELAY", e))
    }

    /// `getsockopt(TCP_NODELAY)` — whether Nagle's algorithm is off.
    ///
    /// # Errors
    /// An OS error.
    pub fn nodelay(&self) -> Result<bool> {
        sys::tcp::nodelay(self.fd.as_fd())
            .map_err(|e| Error::os(&*self.object, "getsockopt TCP_NODELAY", e))
    }

    /// `setsockopt(TCP_USER_TIMEOUT)` — as [`TcpOptions::user_timeout`];
    /// `None` restores the system's limit.
    ///
    /// # Errors
    /// An OS error.
    #[doc(alias = "TCP_USER_TIMEOUT")]
    pub fn set_user_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        set_user_timeout(self.fd.as_fd(), &self.object, timeout.unwrap_or_default())
    }

    /// `getsockopt(TCP_USER_TIMEOUT)` — the user timeout, `None` when the
    /// system's limit applies.
    ///
    /// # Errors
    /// An OS error.
    pub fn user_timeout(&self) -> Result<Option<Duration>> {
        let ms = sys::tcp::user_timeout(self.fd.as_fd())
            .map_err(|e| Error::os(&*self.object, "getsockopt TCP_USER_TIMEOUT", e))?;
        Ok((ms > 0).then(|| Duration::from_millis(ms.into())))
    }

    /// `setsockopt(SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT)`
    /// — as [`TcpOptions::keepalive`]; `None` turns keepalive off.
    ///
    /// # Errors
    /// An OS error, naming the option refused.
    #[doc(alias = "SO_KEEPALIVE")]
    pub fn set_keepalive(&self, keepalive: Option<Keepalive>) -> Result<()> {
        set_keepalive(self.fd.as_fd(), &self.object, keepalive)
    }

    /// `getsockopt(SO_KEEPALIVE, ...)` — the keepalive in force, `None`
    /// when off.
    ///
    /// # Errors
    /// An OS error.
    pub fn keepalive(&self) -> Result<Option<Keepalive>> {
        keepalive_of(self.fd.as_fd())
            .map_err(|e| Error::os(&*self.object, "getsockopt SO_KEEPALIVE", e))
    }

    /// `send(MSG_NOSIGNAL)` — writes what fits of `buf`, as [`Write`] does,
    /// with the error typed.
    ///
    /// # Errors
    /// [`Error::PeerUnresponsive`] when the kernel gave up on a peer that
    /// stopped acknowledging ([`TcpOptions::user_timeout`],
    /// [`TcpOptions::keepalive`]); [`Error::Os`] otherwise (`EPIPE`,
    /// `ECONNRESET` for a peer that closed, `EAGAIN` when non-blocking).
    pub fn send(&self, buf: &[u8]) -> Result<usize> {
        sys::tcp::send(self.fd.as_fd(), buf).map_err(|e| self.failed("send", e))
    }

    /// `recv` — reads what has arrived, at most `buf.len()` bytes; 0 at end
    /// of file. As [`Read`] does, with the error typed.
    ///
    /// # Errors
    /// As [`Stream::send`].
    pub fn recv(&self, buf: &mut [u8]) -> Result<usize> {
        sys::tcp::recv(self.fd.as_fd(), buf).map_err(|e| self.failed("recv", e))
    }

    /// The error for a failed send or receive: a connection the kernel
    /// timed out names its peer and the limit in force.
    fn failed(&self, op: &'static str, err: Errno) -> Error {
        if err == Errno::TIMEDOUT {
            self.unresponsive()
        } else {
            Error::os(&*self.object, op, err)
        }
    }

    /// [`Error::PeerUnresponsive`] with the limit set on the socket: the
    /// user timeout when there is one (it also bounds keepalive), else
    /// keepalive, else the system's retransmission limit.
    fn unresponsive(&self) -> Error {
        let fd = self.fd.as_fd();
        let user = sys::tcp::user_timeout(fd).ok().filter(|&ms| ms > 0);
        let (timeout, limit) = if let Some(ms) = user {
            (Some(Duration::from_millis(ms.into())), "TCP_USER_TIMEOUT")
        } else if let Ok(Some(k)) = keepalive_of(fd) {
            (Some(k.detection_time()), "keepalive")
        } else {
            (None, "net.ipv4.tcp_retries2")
        };
        Error::PeerUnresponsive {
            object: self.object.clone(),
            peer: self.peer,
            timeout,
            limit,
        }
    }

    /// The `io::Error` a [`Read`] or [`Write`] call returns: the errno as
    /// it came, or [`Error::PeerUnresponsive`] inside one for `ETIMEDOUT`.
    fn io_error(&self, err: Errno) -> io::Error {
        if err == Errno::TIMEDOUT {
            self.unresponsive().into()
        } else {
            err.into()
        }
    }

    /// `getpeername` — the address of the other end.
    ///
    /// # Errors
    /// An OS error, `ENOTCONN` once the connection is gone.
    #[doc(alias = "getpeername")]
    pub fn peer_addr(&self) -> Result<SocketAddr> {
        sys::tcp::peer_addr(self.fd.as_fd()).map_err(|e| Error::os(&*self.object, "getpeername", e))
    }

    /// `getsockname` — the address of this end.
    ///
    /// # Errors
    /// An OS error.
    #[doc(alias = "getsockname")]
    pub fn local_addr(&self) -> Result<SocketAddr> {
        sys::tcp::local_addr(self.fd.as_fd())
            .map_err(|e| Error::os(&*self.object, "getsockname", e))
    }

    /// `shutdown` — ends reading, writing or both, for every process that
    /// shares the connection; shutting down writing sends the peer EOF.
    ///
    /// # Errors
    /// An OS error, `ENOTCONN` when the peer already went away.
    pub fn shutdown(&self, how: std::net::Shutdown) -> Result<()> {
        sys::tcp::shutdown(self.fd.as_fd(), how)
            .map_err(|e| Error::os(&*self.object, "shutdown", e))
    }

    /// `fcntl(F_SETFL, O_NONBLOCK)` — makes reads and writes that would
    /// wait fail with [`io::ErrorKind::WouldBlock`] instead.
    ///
    /// # Errors
    /// An OS error.
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<()> {
        sys::fd::set_nonblocking(self.fd.as_fd(), nonblocking)
            .map_err(|e| Error::os(&*self.object, "fcntl F_SETFL", e))
    }

    /// The endpoint errors name: `tcp:HOST:PORT` as connected to, or the
    /// peer's `tcp:IP:PORT` for an accepted stream.
    pub fn object(&self) -> &str {
        &self.object
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        sys::tcp::recv(self.fd.as_fd(), buf).map_err(|e| self.io_error(e))
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        sys::tcp::send(self.fd.as_fd(), buf).map_err(|e| self.io_error(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        // Nothing is buffered in user space; the kernel sends on its own.
        Ok(())
    }
}

super::forward_io_to_ref!(Stream);

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<Stream> for OwnedFd {
    fn from(stream: Stream) -> OwnedFd {
        stream.fd
    }
}

impl TryFrom<OwnedFd> for Stream {
    type Error = AdoptError;

    /// Adopts a TCP socket that is not listening (inherited, or passed over
    /// a UNIX socket).
    ///
    /// # Errors
    /// [`Error::WrongType`] for anything else; the descriptor comes back
    /// inside the [`AdoptError`].
    fn try_from(fd: OwnedFd) -> std::result::Result<Stream, AdoptError> {
        let want = Want::Socket(Family::Inet, SocketKind::Stream, false);
        let fd = adopt::check(fd, "tcp", "a TCP socket", want)?;
        let peer = sys::tcp::peer_addr(fd.as_fd()).ok();
        let object = peer
            .map(|a| object_of_addr(&a))
            .unwrap_or_else(|| "tcp".to_owned());
        Ok(Stream {
            fd,
            object: object.into(),
            peer,
        })
    }
}

/// TCP's entry in the facility registry (`unipc compare`, `unipc bench`).
pub static FACILITY: Facility = Facility {
    name: "tcp",
    scheme: Some("tcp"),
    summary: "TCP stream socket (IPv4 or IPv6)",
    addressing: "tcp:HOST:PORT, tcp:[IPv6]:PORT",
    properties: Properties {
        shape: Shape::ByteStream,
        direction: Direction::TwoWay,
        tags: Tags::None,
        destructive_read: true,
        peek: true,
        naming: Naming::NetworkAddress,
        reach: Reach::Network,
        persistence: Persistence::Process,
        permissions: "none on the socket; ports below 1024 need CAP_NET_BIND_SERVICE",
        reliable: true,
        after_crash: "closed by the kernel: the peer reads EOF or a reset",
    },
    limits: || {
        vec![
            LiveLimit::from_proc(
                "tcp_wmem",
                "/proc/sys/net/ipv4/tcp_wmem",
                " bytes (min default max)",
            ),
            LiveLimit::from_proc(
                "tcp_rmem",
                "/proc/sys/net/ipv4/tcp_rmem",
                " bytes (min default max)",
            ),
            LiveLimit::from_proc("somaxconn", "/proc/sys/net/core/somaxconn", " connections"),
        ]
    },
    max_message: || None,
    #[cfg(feature = "bench")]
    connector: Some(&Connector),
};

#[cfg(feature = "bench")]
use crate::facility::{self, Link, LinkOptions, PendingLink, Ticket};

/// Joins two processes over loopback TCP with Nagle off (so small
/// messages are not held back, for unipc and the raw baseline alike).
#[cfg(feature = "bench")]
struct Connector;

#[cfg(feature = "bench")]
struct Pending(Listener);

#[cfg(feature = "bench")]
impl facility::Connector for Connector {
    fn prepare(
        &self,
        _scratch: &std::path::Path,
        _: &LinkOptions,
        _announce: &mut dyn FnMut(&facility::CreatedObject),
    ) -> Result<(Box<dyn PendingLink>, Ticket)> {
        let listener = Listener::bind_addr(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let address = listener.local_addr()?.to_string();
        Ok((Box::new(Pending(listener)), Ticket::address(address)))
    }

    fn join(&self, ticket: Ticket, _: &LinkOptions) -> Result<Box<dyn Link>> {
        let addr = ticket.socket_addr()?;
        let stream = Stream::connect_addr(addr)?;
        stream.set_nodelay(true)?;
        facility::socket_link(stream.object().to_owned(), stream)
    }
}

#[cfg(feature = "bench")]
impl PendingLink for Pending {
    fn establish(self: Box<Self>) -> Result<Box<dyn Link>> {
        let (stream, _) = self.0.accept()?;
        stream.set_nodelay(true)?;
        facility::socket_link(stream.object().to_owned(), stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_bracket_ipv6() {
        let v6 = HostPort {
            host: "::1".into(),
            port: 80,
        };
        assert_eq!(object_of(&v6), "tcp:[::1]:80");
        assert_eq!(object_of_addr(&"[::1]:80".parse().unwrap()), "tcp:[::1]:80");
        assert_eq!(
            object_of_addr(&"10.0.0.1:7".parse().unwrap()),
            "tcp:10.0.0.1:7"
        );
    }

    #[test]
    fn numeric_hosts_skip_the_resolver() {
        let addrs = resolve(&HostPort {
            host: "fe80::1".into(),
            port: 9,
        })
        .unwrap();
        assert_eq!(addrs, vec!["[fe80::1]:9".parse::<SocketAddr>().unwrap()]);
    }
}
