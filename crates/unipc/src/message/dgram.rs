//! Datagram sockets: UNIX datagram sockets (`unix-dgram:PATH`,
//! `unix-dgram:@NAME`) and UDP sockets (`udp:HOST:PORT`), IPv4 and IPv6.
//!
//! A message facility: each send is one datagram and each receive returns
//! one whole datagram, never part of one and never two run together. A UNIX
//! datagram socket is reliable and ordered on one host (a send waits for
//! room in the receiver's queue); UDP may drop, reorder or duplicate.
//!
//! # Receiving into a buffer that is too small
//!
//! A datagram larger than the receive buffer is never passed on cut: the
//! receive fails with [`Error::BufferTooSmall`] carrying the datagram's real
//! size, and the datagram stays queued, so a second receive with a buffer
//! of that size returns it whole. To know the size without consuming
//! anything, a receive first asks the kernel with
//! `recv(MSG_PEEK | MSG_TRUNC)` on an empty buffer (no bytes are copied),
//! then receives for real with `MSG_TRUNC` and checks the length again.
//!
//! The peek is skipped, and a receive is one call as cheap as the raw one,
//! when the buffer holds [`Messenger::recv_buffer_hint`] bytes, enough for
//! the largest datagram that can arrive:
//!
//! - UDP: 65,507 bytes on an IPv4 socket, 65,527 on an IPv6 one
//!   ([`UDP_V4_MAX`], [`UDP_V6_MAX`]). Nothing larger can arrive.
//! - UNIX: `2 * net.core.wmem_max - 32` bytes (or `wmem_default - 32` if
//!   that is larger), read once from `/proc`. A UNIX datagram is bounded by
//!   its sender's `SO_SNDBUF` less 32, and `SO_SNDBUF` is capped at twice
//!   `wmem_max`. Only a sender that forced its buffer with
//!   `SO_SNDBUFFORCE` (which needs `CAP_NET_ADMIN`), or one sending after
//!   an administrator raised those limits, can exceed it: such a datagram
//!   is then **consumed** and reported as [`Error::BufferTooSmall`] with
//!   its real size.
//!
//! A reader that knows how long its peers' datagrams are can have one call
//! with any buffer: [`Messenger::recv_into_or_discard`] discards (and
//! reports) a datagram that does not fit instead of keeping it.
//!
//! One race remains when several processes receive from the same socket
//! with smaller buffers: if another receiver takes the peeked datagram
//! between the peek and the receive, and the next datagram is larger than
//! the buffer, that next datagram is consumed and lost; the error still
//! reports its size. Give such receivers buffers of
//! [`Messenger::recv_buffer_hint`] bytes, which closes the race.
//!
//! # Waiting
//!
//! Every send and receive takes a [`Wait`]. Not waiting is asked per call
//! with `MSG_DONTWAIT`, never by setting `O_NONBLOCK`, which would change
//! the socket for every process that shares it. A timed wait polls for
//! readiness and retries until the deadline. A UNIX datagram socket that
//! is not connected cannot poll for room in another socket's queue, so a
//! timed [`UnixDatagram::send_to`] to a full receiver retries at growing
//! intervals (up to 10 ms) instead.
//!
//! # No end of file
//!
//! A datagram socket has no end-of-file. When the peer of a connected UNIX
//! datagram socket closes, the next send fails with ECONNREFUSED (and later
//! ones with ENOTCONN, as the kernel forgets the peer), while a receive
//! simply waits: use a timed [`Wait`] or a message of your own to end a
//! conversation.
//!
//! Every socket is close-on-exec, and sends never raise `SIGPIPE`
//! (`MSG_NOSIGNAL`).
//!
//! # References
//! unix(7), udp(7), ip(7), ipv6(7), socket(7), recv(2), send(2), poll(2)

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV6, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::net::addr::SocketAddrArg;
use rustix::net::SocketAddrAny;

use super::{unsupported_tag, Limits, Messenger, Received, Tag, Wait};
use crate::endpoint::HostPort;
use crate::facility::{
    self, Direction, Facility, Link, LinkOptions, LiveLimit, MessageCap, MessageLink, Naming,
    PendingLink, Persistence, Properties, RawIo, Reach, Shape, Tags, Ticket,
};
use crate::name::UnixAddr;
use crate::sys::dgram::{self as sys, Family, Ready};
use crate::sys::fd::file_type_name;
use crate::unix_socket::{self, BindSpec, Flavor, SocketFile};
use crate::{Error, Result};

/// The largest UDP payload over IPv4: 65,535 less a 20-byte IP header and
/// an 8-byte UDP header.
pub const UDP_V4_MAX: usize = 65_507;

/// The largest UDP payload over IPv6 (without jumbograms): 65,535 less an
/// 8-byte UDP header (the IPv6 payload length does not count the fixed
/// 40-byte header).
pub const UDP_V6_MAX: usize = 65_527;

/// What a UNIX datagram send may carry: `SO_SNDBUF` less this (the kernel
/// refuses `len > sk_sndbuf - 32` in `unix_dgram_sendmsg`).
const UNIX_SNDBUF_OVERHEAD: usize = 32;

/// The size of a buffer that holds any UNIX datagram an unprivileged sender
/// can send; `None` when it cannot be known.
fn unix_fits() -> Option<usize> {
    crate::sys::socket::unprivileged_message_ceiling()
}

// ---------------------------------------------------------------------------
// Waiting, shared by both socket types.

/// When a wait ends.
#[derive(Clone, Copy, Debug)]
enum Until {
    Forever,
    Now,
    At(Instant, Duration),
}

impl Until {
    fn from(wait: Wait) -> Until {
        match wait {
            Wait::Forever => Until::Forever,
            Wait::Never => Until::Now,
            // A deadline too far to represent is as good as forever.
            Wait::For(d) => match Instant::now().checked_add(d) {
                Some(at) => Until::At(at, d),
                None => Until::Forever,
            },
        }
    }
}

/// Why a waiting call gave up.
#[derive(Debug)]
enum Stop {
    /// It would have waited and was told not to.
    WouldBlock,
    /// The wait ran out; carries the wait asked for.
    TimedOut(Duration),
    /// The kernel refused.
    Os(Errno),
}

/// Runs `op` until it does not report EAGAIN, waiting as `until` says.
///
/// `op` is told whether to pass MSG_DONTWAIT. A wait forever makes a
/// blocking call; the other waits never block in the call itself, and poll
/// between attempts. EAGAIN under a wait forever means someone set
/// O_NONBLOCK on the shared descriptor: then poll too.
fn with_wait<T>(
    fd: BorrowedFd<'_>,
    ready: Ready,
    until: Until,
    mut op: impl FnMut(bool) -> rustix::io::Result<T>,
) -> std::result::Result<T, Stop> {
    let mut backoff = Duration::ZERO;
    let mut polled_ready = false;
    loop {
        match op(!matches!(until, Until::Forever)) {
            Ok(value) => return Ok(value),
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => {}
            Err(other) => return Err(Stop::Os(other)),
        }
        let timeout = match until {
            Until::Now => return Err(Stop::WouldBlock),
            Until::Forever => None,
            Until::At(at, asked) => {
                let left = at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Stop::TimedOut(asked));
                }
                Some(left)
            }
        };
        // Poll said ready and the call still would block: either another
        // process took the datagram (the next poll blocks, no harm) or poll
        // cannot see the condition at all (an unconnected UNIX send to a
        // full queue). Sleep in growing steps so the second case does not
        // spin.
        if polled_ready && ready == Ready::Write {
            backoff = (backoff * 2).clamp(Duration::from_micros(50), Duration::from_millis(10));
            std::thread::sleep(timeout.map_or(backoff, |left| left.min(backoff)));
            polled_ready = false;
            continue;
        }
        polled_ready = false;
        match sys::poll(fd, ready, timeout) {
            Ok(ready) => polled_ready = ready,
            Err(Errno::INTR) => {}
            Err(other) => return Err(Stop::Os(other)),
        }
    }
}

/// A receive buffer: a caller's slice, or a `Vec` sized to each datagram.
trait RecvBuf {
    /// The buffer to receive a datagram of `needed` bytes into.
    fn room(&mut self, needed: usize) -> &mut [u8];
}

impl RecvBuf for &mut [u8] {
    fn room(&mut self, _needed: usize) -> &mut [u8] {
        self
    }
}

impl RecvBuf for Vec<u8> {
    fn room(&mut self, needed: usize) -> &mut [u8] {
        self.resize(needed, 0);
        self
    }
}

/// Why a receive failed.
#[derive(Debug)]
enum RecvStop {
    Stop(Stop),
    /// The datagram has `needed` bytes; the buffer held `buffer`.
    TooSmall {
        buffer: usize,
        needed: usize,
    },
}

impl From<Stop> for RecvStop {
    fn from(stop: Stop) -> Self {
        RecvStop::Stop(stop)
    }
}

/// How [`recv_datagram`] receives.
#[derive(Clone, Copy, Debug)]
struct How {
    /// Copy the datagram without consuming it (`MSG_PEEK`).
    peek: bool,
    /// Return the sender's address (skipping it spares the kernel a copy).
    want_from: bool,
    /// The size of a buffer that holds any datagram that can arrive: a
    /// buffer at least that large needs no size check first (see the module
    /// docs for the approach). `Some(0)` never checks: a datagram that does
    /// not fit is consumed.
    fits: Option<usize>,
}

/// Receives (or copies without consuming) one whole datagram, as `how`
/// says.
fn recv_datagram(
    fd: BorrowedFd<'_>,
    buf: &mut impl RecvBuf,
    wait: Wait,
    how: How,
) -> std::result::Result<(usize, Option<SocketAddrAny>), RecvStop> {
    let How {
        peek,
        want_from,
        fits,
    } = how;
    let call = |room: &mut [u8], peek: bool, dont_wait: bool| {
        if want_from {
            sys::recv_from(fd, room, peek, dont_wait)
        } else {
            sys::recv(fd, room, peek, dont_wait).map(|len| (len, None))
        }
    };
    let until = Until::from(wait);
    let one_call = |room: &mut [u8]| {
        let buffer = room.len();
        let (len, from) = with_wait(fd, Ready::Read, until, |dont_wait| {
            call(room, peek, dont_wait)
        })?;
        if len > buffer {
            return Err(RecvStop::TooSmall {
                buffer,
                needed: len,
            });
        }
        Ok((len, from))
    };
    if peek {
        return one_call(buf.room(0));
    }
    if let Some(fits) = fits {
        let room = buf.room(fits);
        if room.len() >= fits {
            return one_call(room);
        }
    }
    loop {
        let needed = with_wait(fd, Ready::Read, until, |dont_wait| {
            sys::next_len(fd, dont_wait)
        })?;
        let room = buf.room(needed);
        let buffer = room.len();
        if needed > buffer {
            return Err(RecvStop::TooSmall { buffer, needed });
        }
        // The datagram is known to be there: never block here. If another
        // process took it meanwhile, go back to waiting.
        match call(room, false, true) {
            Ok((len, from)) if len <= buffer => return Ok((len, from)),
            Ok((len, _)) => {
                return Err(RecvStop::TooSmall {
                    buffer,
                    needed: len,
                })
            }
            Err(Errno::AGAIN) | Err(Errno::INTR) => continue,
            Err(other) => return Err(Stop::Os(other).into()),
        }
    }
}

/// The length of the next datagram, left queued.
fn peek_len(fd: BorrowedFd<'_>, wait: Wait) -> std::result::Result<usize, Stop> {
    with_wait(fd, Ready::Read, Until::from(wait), |dont_wait| {
        sys::next_len(fd, dont_wait)
    })
}

/// Turns a stopped send into the error a caller sees.
fn send_error(stop: Stop, object: impl Into<String>, op: &'static str) -> Error {
    match stop {
        Stop::WouldBlock => Error::Full {
            object: object.into(),
        },
        Stop::TimedOut(timeout) => Error::TimedOut {
            object: object.into(),
            timeout,
        },
        Stop::Os(errno) => {
            let err = Error::os(object, op, errno);
            match errno {
                Errno::CONNREFUSED if op == "send" => {
                    err.with_hint("the connected peer has closed its socket")
                }
                Errno::CONNREFUSED => err.with_hint("no socket is bound there"),
                Errno::NOENT => err.with_hint("no socket file there"),
                Errno::PERM => err.with_hint(
                    "that socket is connected to another peer and accepts datagrams only from it",
                ),
                Errno::NOTCONN | Errno::DESTADDRREQ => {
                    err.with_hint("the socket is not connected; connect it or name a destination")
                }
                _ => err,
            }
        }
    }
}

/// Turns a stopped receive into the error a caller sees.
fn recv_error(stop: RecvStop, object: String, op: &'static str) -> Error {
    match stop {
        RecvStop::TooSmall { buffer, needed } => Error::BufferTooSmall {
            object,
            buffer,
            needed: Some(needed),
        },
        RecvStop::Stop(Stop::WouldBlock) => Error::Empty { object },
        RecvStop::Stop(Stop::TimedOut(timeout)) => Error::TimedOut { object, timeout },
        RecvStop::Stop(Stop::Os(errno)) => {
            let err = Error::os(object, op, errno);
            if errno == Errno::CONNREFUSED {
                err.with_hint("an earlier datagram found no socket bound at the peer's address")
            } else {
                err
            }
        }
    }
}

/// Refuses a descriptor that is not a datagram socket of `wanted` family.
fn check_kind(fd: BorrowedFd<'_>, object: &str, expected: &'static str) -> Result<Family> {
    match sys::kind(fd).map_err(|e| Error::os(object, "getsockopt SO_DOMAIN", e))? {
        sys::Kind::Datagram(family) => Ok(family),
        sys::Kind::OtherSocket => Err(Error::WrongType {
            object: object.to_owned(),
            expected,
            found: "a socket of another type or family",
        }),
        sys::Kind::NotSocket(file_type) => Err(Error::WrongType {
            object: object.to_owned(),
            expected,
            found: file_type_name(file_type),
        }),
    }
}

// ---------------------------------------------------------------------------
// UNIX datagram sockets.

/// Options for binding a [`UnixDatagram`]: the socket file's mode, whether
/// it outlives the handle, and whether a stale one is reclaimed.
///
/// ```
/// use unipc::message::dgram::UnixOptions;
/// use std::os::unix::fs::PermissionsExt;
///
/// let dir = std::env::temp_dir().join(format!("unipc-doc-opts-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("svc.sock");
/// let sock = UnixOptions::new().mode(0o600).bind(&unipc::name::UnixAddr::path(&path)?)?;
/// let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
/// assert_eq!(mode, 0o600);
/// drop(sock); // removes the socket file
/// assert!(!path.exists());
/// std::fs::remove_dir(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct UnixOptions {
    mode: Option<u32>,
    keep_file: bool,
    reclaim_stale: bool,
}

impl Default for UnixOptions {
    fn default() -> Self {
        UnixOptions::new()
    }
}

impl UnixOptions {
    /// The defaults: the mode the umask gives, the file removed on drop, a
    /// stale file reclaimed.
    pub fn new() -> Self {
        UnixOptions {
            mode: None,
            keep_file: false,
            reclaim_stale: true,
        }
    }

    /// The socket file's permission bits, exactly (the umask does not
    /// apply), set on the inode this bind created and never through a link
    /// swapped in at the path, as for
    /// [`ListenerOptions::mode`](crate::stream::unix::ListenerOptions::mode).
    /// Sending to a UNIX socket needs write permission on its file.
    /// Only for path addresses: abstract sockets have no file and no
    /// permissions.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode & 0o7777);
        self
    }

    /// Leave the socket file in place when the handle is dropped.
    pub fn keep_file(mut self, keep: bool) -> Self {
        self.keep_file = keep;
        self
    }

    /// Whether a socket file left by a process that died without removing
    /// it is removed and the path bound anew (default: yes). A file is
    /// stale only when it is a socket and connecting to it is refused;
    /// a live socket and any other kind of file are left alone. Between
    /// the probe and the removal another process could bind the path:
    /// give each service its own path rather than racing for one.
    pub fn reclaim_stale(mut self, reclaim: bool) -> Self {
        self.reclaim_stale = reclaim;
        self
    }

    /// `socket` + `bind` — creates a UNIX datagram socket bound to `addr`.
    ///
    /// # Errors
    /// [`Error::WrongType`] when a file other than a socket is at the path
    /// (it is left untouched), or when after the bind the path no longer
    /// names the socket file it created (nothing is changed or removed);
    /// [`Error::Os`] with EADDRINUSE when a live
    /// socket is bound there, or with the kernel's error otherwise (EACCES
    /// on the directory, ENOENT for a missing directory);
    /// [`Error::Unsupported`] for a mode on an abstract address.
    ///
    /// # References
    /// bind(2), unix(7)
    pub fn bind(&self, addr: &UnixAddr) -> Result<UnixDatagram> {
        let object = unix_object(addr);
        if self.mode.is_some() && addr.as_path().is_none() {
            return Err(Error::Unsupported {
                object,
                what: "a file mode".into(),
                reason: "abstract sockets have no file and no permissions".into(),
            });
        }
        let fd = sys::socket(Family::Unix).map_err(|e| Error::os(&object, "socket", e))?;
        let spec = BindSpec {
            object: &object,
            mode: self.mode,
            reclaim_stale: self.reclaim_stale,
            flavor: Flavor::Datagram,
        };
        let mut file = unix_socket::bind(fd.as_fd(), addr, &spec)?;
        if let Some(file) = &mut file {
            file.set_remove(!self.keep_file);
        }
        let sock = UnixDatagram::new(fd, Some(addr.clone()), None, file);
        Ok(sock)
    }
}

fn unix_object(addr: &UnixAddr) -> String {
    format!("unix-dgram:{addr}")
}

/// A UNIX datagram socket's name in errors: its bound address, else its
/// peer's, else the facility's.
fn object_of(local: Option<&UnixAddr>, peer: Option<&UnixAddr>) -> String {
    match (local, peer) {
        (Some(local), _) => unix_object(local),
        (None, Some(peer)) => unix_object(peer),
        (None, None) => "unix-dgram".to_owned(),
    }
}

/// A UNIX datagram socket (`unix-dgram:PATH` or `unix-dgram:@NAME`):
/// reliable, ordered messages between processes on one host.
///
/// Made bound to an address ([`UnixDatagram::bind`], [`UnixOptions`]),
/// unbound ([`UnixDatagram::unbound`], for a client that only sends, or
/// connects), or as a connected pair ([`UnixDatagram::pair`]). A handle that
/// bound a path removes the socket file when dropped, if the path still
/// names that file.
///
/// Once connected, the socket implements [`Messenger`]: sends go to the
/// peer, and the largest message is the socket's `SO_SNDBUF` less 32 bytes
/// (212,960 bytes with Linux's default of 212,992; raise it with
/// [`UnixDatagram::set_send_buffer_size`]). The receiver's queue holds
/// `net.unix.max_dgram_qlen` datagrams (10 by default) before a send waits.
///
/// ```
/// use unipc::message::dgram::UnixDatagram;
/// use unipc::message::{Messenger, Wait};
///
/// let (a, b) = UnixDatagram::pair()?;
/// a.send(b"one")?;
/// a.send(b"")?;
/// assert_eq!(b.recv()?, b"one");
/// assert_eq!(b.recv()?, b"");
/// assert!(matches!(b.try_recv(), Err(unipc::Error::Empty { .. })));
///
/// let name = format!("@unipc-doc-dgram-{}", std::process::id());
/// let server = UnixDatagram::bind(&name.parse()?)?;
/// let client = UnixDatagram::unbound()?;
/// client.send_to(b"hi", server.local_addr().unwrap(), Wait::Forever)?;
/// let mut buf = [0; 16];
/// let (len, from) = server.recv_from(&mut buf, Wait::Forever)?;
/// assert_eq!(&buf[..len], b"hi");
/// assert_eq!(from, None); // an unbound sender has no address
/// # Ok::<(), unipc::Error>(())
/// ```
///
/// # References
/// unix(7), socket(2), bind(2), connect(2)
#[derive(Debug)]
pub struct UnixDatagram {
    fd: OwnedFd,
    local: Option<UnixAddr>,
    peer: Option<UnixAddr>,
    /// [`Messenger::object`], kept formatted: every error names it, and a
    /// busy-polling receiver meets [`Error::Empty`] on every attempt.
    object: String,
    /// The largest datagram a send may carry, as last read from SO_SNDBUF.
    send_limit: AtomicUsize,
    file: Option<SocketFile>,
}

impl UnixDatagram {
    fn new(
        fd: OwnedFd,
        local: Option<UnixAddr>,
        peer: Option<UnixAddr>,
        file: Option<SocketFile>,
    ) -> UnixDatagram {
        let object = object_of(local.as_ref(), peer.as_ref());
        let sock = UnixDatagram {
            fd,
            local,
            peer,
            object,
            send_limit: AtomicUsize::new(0),
            file,
        };
        // Read lazily on failure: the first oversized send reads it again.
        let _ = sock.refresh_send_limit();
        sock
    }

    /// `socket` + `bind` — a UNIX datagram socket bound to `addr`, with the
    /// default [`UnixOptions`].
    ///
    /// # Errors
    /// As [`UnixOptions::bind`].
    pub fn bind(addr: &UnixAddr) -> Result<UnixDatagram> {
        UnixOptions::new().bind(addr)
    }

    /// `socket(AF_UNIX, SOCK_DGRAM)` — an unbound socket. It can send (its
    /// datagrams carry no sender address) and, once connected, receive
    /// replies from its peer.
    ///
    /// # Errors
    /// [`Error::Os`] when the kernel refuses a socket (EMFILE).
    pub fn unbound() -> Result<UnixDatagram> {
        let fd = sys::socket(Family::Unix).map_err(|e| Error::os("unix-dgram", "socket", e))?;
        Ok(UnixDatagram::new(fd, None, None, None))
    }

    /// `socketpair(AF_UNIX, SOCK_DGRAM)` — two sockets connected to each
    /// other.
    ///
    /// # Errors
    /// [`Error::Os`] when the kernel refuses (EMFILE).
    #[doc(alias = "socketpair")]
    pub fn pair() -> Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = sys::unix_pair().map_err(|e| Error::os("unix-dgram", "socketpair", e))?;
        Ok((
            UnixDatagram::new(a, None, None, None),
            UnixDatagram::new(b, None, None, None),
        ))
    }

    /// `connect` — fixes the peer: sends without an address go to `addr`,
    /// and only datagrams from `addr` are accepted (other senders get
    /// EPERM).
    ///
    /// # Errors
    /// [`Error::Os`]: ENOENT (no socket file), ECONNREFUSED (nobody bound),
    /// EACCES (no write permission on the socket file), EPERM (the socket
    /// at `addr` is connected to another).
    pub fn connect(&mut self, addr: &UnixAddr) -> Result<()> {
        let object = unix_object(addr);
        let sockaddr = sys::unix_sockaddr(addr).map_err(|e| Error::os(&object, "connect", e))?;
        match sys::connect(self.fd.as_fd(), &sockaddr) {
            Ok(()) => {
                self.peer = Some(addr.clone());
                self.object = object_of(self.local.as_ref(), self.peer.as_ref());
                Ok(())
            }
            Err(Errno::PERM) => Err(Error::os(object, "connect", Errno::PERM).with_hint(
                "that socket is connected to another peer and accepts datagrams only from it",
            )),
            Err(other) => Err(Error::os(object, "connect", other)),
        }
    }

    /// The address this socket is bound to, when it is.
    pub fn local_addr(&self) -> Option<&UnixAddr> {
        self.local.as_ref()
    }

    /// The address of the connected peer, when [`UnixDatagram::connect`]
    /// set one.
    pub fn peer_addr(&self) -> Option<&UnixAddr> {
        self.peer.as_ref()
    }

    /// `sendto` — sends `message` as one datagram to `to`, waiting for room
    /// in the receiver's queue as `wait` says.
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`] before any call when `message` exceeds the
    /// limit (see [`UnixDatagram`]); [`Error::Full`] or [`Error::TimedOut`]
    /// when the receiver's queue stayed full; [`Error::Os`] naming `to`:
    /// ENOENT, ECONNREFUSED (nobody bound there), EACCES (no write
    /// permission on the socket file), EPERM (the receiver is connected to
    /// another socket).
    #[doc(alias = "sendto")]
    pub fn send_to(&self, message: &[u8], to: &UnixAddr, wait: Wait) -> Result<()> {
        self.check_size(message.len())?;
        let sockaddr =
            sys::unix_sockaddr(to).map_err(|e| Error::os(unix_object(to), "sendto", e))?;
        self.send_raw(message, Some(&sockaddr), wait, || unix_object(to), "sendto")
    }

    /// `recvfrom` — receives one datagram into `buf`, waiting as `wait`
    /// says; returns its length and the sender's address (`None` when the
    /// sender is unbound or one end of a pair).
    ///
    /// One call when `buf` holds [`Messenger::recv_buffer_hint`] bytes,
    /// else a peek at the size first (see the module docs).
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] with the datagram's size when it does not
    /// fit (it stays queued, unless `buf` held the hint's size: see the
    /// module docs); [`Error::Empty`]; [`Error::TimedOut`]; [`Error::Os`].
    #[doc(alias = "recvfrom")]
    pub fn recv_from(&self, buf: &mut [u8], wait: Wait) -> Result<(usize, Option<UnixAddr>)> {
        let (len, from) = recv_datagram(
            self.fd.as_fd(),
            &mut &mut *buf,
            wait,
            How {
                peek: false,
                want_from: true,
                fits: unix_fits(),
            },
        )
        .map_err(|stop| recv_error(stop, self.object(), "recvfrom"))?;
        Ok((len, from.and_then(sys::unix_addr_from)))
    }

    /// `recvfrom(MSG_PEEK)` — copies the next datagram into `buf` without
    /// consuming it: the next receive returns the same datagram.
    ///
    /// # Errors
    /// As [`UnixDatagram::recv_from`]; nothing is consumed in any case.
    #[doc(alias = "MSG_PEEK")]
    pub fn peek_from(&self, buf: &mut [u8], wait: Wait) -> Result<(usize, Option<UnixAddr>)> {
        let (len, from) = recv_datagram(
            self.fd.as_fd(),
            &mut &mut *buf,
            wait,
            How {
                peek: true,
                want_from: true,
                fits: None,
            },
        )
        .map_err(|stop| recv_error(stop, self.object(), "recvfrom MSG_PEEK"))?;
        Ok((len, from.and_then(sys::unix_addr_from)))
    }

    /// `recv(MSG_PEEK | MSG_TRUNC)` — the size of the next datagram,
    /// waiting for one as `wait` says; nothing is consumed or copied.
    ///
    /// # Errors
    /// [`Error::Empty`], [`Error::TimedOut`], [`Error::Os`].
    #[doc(alias = "MSG_TRUNC")]
    pub fn peek_len(&self, wait: Wait) -> Result<usize> {
        peek_len(self.fd.as_fd(), wait)
            .map_err(|stop| recv_error(stop.into(), self.object(), "recv MSG_PEEK"))
    }

    /// `setsockopt(SO_SNDBUF)` — sets the send buffer, which bounds the
    /// largest datagram; returns the new largest datagram size. The kernel
    /// doubles `bytes` and caps it at `net.core.wmem_max`.
    ///
    /// # Errors
    /// [`Error::Os`].
    #[doc(alias = "SO_SNDBUF")]
    pub fn set_send_buffer_size(&self, bytes: usize) -> Result<usize> {
        sys::set_send_buffer_size(self.fd.as_fd(), bytes)
            .map_err(|e| Error::os(self.object(), "setsockopt SO_SNDBUF", e))?;
        self.refresh_send_limit()
    }

    /// Re-reads SO_SNDBUF into the cached send limit.
    fn refresh_send_limit(&self) -> Result<usize> {
        let sndbuf = sys::send_buffer_size(self.fd.as_fd())
            .map_err(|e| Error::os(self.object(), "getsockopt SO_SNDBUF", e))?;
        let limit = sndbuf.saturating_sub(UNIX_SNDBUF_OVERHEAD);
        self.send_limit.store(limit, Ordering::Relaxed);
        Ok(limit)
    }

    /// Refuses an oversized message before any send. The cached limit is
    /// re-read only when a message exceeds it, since another holder of the
    /// descriptor may have raised SO_SNDBUF.
    fn check_size(&self, size: usize) -> Result<()> {
        if size <= self.send_limit.load(Ordering::Relaxed) {
            return Ok(());
        }
        let limit = self.refresh_send_limit()?;
        if size > limit {
            return Err(Error::MessageTooLarge {
                object: self.object(),
                size,
                limit,
            });
        }
        Ok(())
    }

    /// Sends one datagram; `object` names the destination in an error, and
    /// is only called to build one.
    fn send_raw(
        &self,
        message: &[u8],
        to: Option<&impl SocketAddrArg>,
        wait: Wait,
        object: impl FnOnce() -> String,
        op: &'static str,
    ) -> Result<()> {
        let fd = self.fd.as_fd();
        let sent = with_wait(fd, Ready::Write, Until::from(wait), |dont_wait| match to {
            Some(to) => sys::send_to(fd, message, dont_wait, to),
            None => sys::send(fd, message, dont_wait),
        });
        match sent {
            Ok(_) => Ok(()),
            Err(Stop::Os(Errno::MSGSIZE)) => {
                // SO_SNDBUF shrank under us: report the limit in force now.
                let limit = self.refresh_send_limit()?;
                Err(Error::MessageTooLarge {
                    object: self.object(),
                    size: message.len(),
                    limit,
                })
            }
            Err(stop) => Err(send_error(stop, object(), op)),
        }
    }

    /// The object that receives errors about sending to the peer.
    fn peer_object(&self) -> String {
        match &self.peer {
            Some(peer) => unix_object(peer),
            None => self.object(),
        }
    }
}

/// One datagram into `buf`, consumed, with no tag and no sender address:
/// the shared body of the `Messenger` receives. `fits` is the size from
/// which no peek is needed (`Some(0)`: never peek; a longer datagram is
/// consumed and reported).
fn recv_untagged(
    fd: BorrowedFd<'_>,
    object: impl FnOnce() -> String,
    buf: &mut [u8],
    wait: Wait,
    fits: Option<usize>,
) -> Result<Received> {
    let how = How {
        peek: false,
        want_from: false,
        fits,
    };
    let (len, _) = recv_datagram(fd, &mut &mut *buf, wait, how)
        .map_err(|stop| recv_error(stop, object(), "recv"))?;
    Ok(Received {
        len,
        tag: Tag::None,
    })
}

impl Messenger for UnixDatagram {
    /// The bound address (`unix-dgram:/run/app.sock`), else the connected
    /// peer's, else `unix-dgram`.
    fn object(&self) -> String {
        self.object.clone()
    }

    /// The largest datagram this socket can send: `SO_SNDBUF` less 32.
    fn limits(&self) -> Result<Limits> {
        Ok(Limits {
            max_message_size: self.refresh_send_limit()?,
            max_messages: None,
        })
    }

    /// The largest datagram an unprivileged sender can send
    /// (`max(2 * wmem_max, wmem_default) - 32`): a buffer this large is
    /// received in one call (see the module docs). When
    /// `/proc/sys/net/core` cannot be read, this socket's own limit.
    fn recv_buffer_hint(&self) -> Result<usize> {
        match unix_fits() {
            Some(most) => Ok(most),
            None => self.refresh_send_limit(),
        }
    }

    fn send_tagged(&self, message: &[u8], tag: Tag, wait: Wait) -> Result<()> {
        if tag != Tag::None {
            return Err(unsupported_tag(self.object(), tag, "no tag"));
        }
        self.check_size(message.len())?;
        self.send_raw(
            message,
            None::<&SocketAddrAny>,
            wait,
            || self.peer_object(),
            "send",
        )
    }

    /// One call when `buf` holds [`Messenger::recv_buffer_hint`] bytes,
    /// else a peek at the size first (see the module docs).
    fn recv_into(&self, buf: &mut [u8], wait: Wait) -> Result<Received> {
        recv_untagged(self.fd.as_fd(), || self.object(), buf, wait, unix_fits())
    }

    /// One `recv(MSG_TRUNC)` whatever the size of `buf`: a datagram longer
    /// than `buf` is consumed and reported as [`Error::BufferTooSmall`]
    /// with its real size.
    fn recv_into_or_discard(&self, buf: &mut [u8], wait: Wait) -> Result<Received> {
        recv_untagged(self.fd.as_fd(), || self.object(), buf, wait, Some(0))
    }

    /// Sized from a peek at the next datagram, so that a peer with a larger
    /// send buffer than this socket's is received whole.
    fn recv_vec(&self, wait: Wait) -> Result<(Vec<u8>, Tag)> {
        let mut buf = Vec::new();
        let (len, _) = recv_datagram(
            self.fd.as_fd(),
            &mut buf,
            wait,
            How {
                peek: false,
                want_from: false,
                fits: None,
            },
        )
        .map_err(|stop| recv_error(stop, self.object(), "recv"))?;
        buf.truncate(len);
        Ok((buf, Tag::None))
    }
}

impl AsFd for UnixDatagram {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl TryFrom<OwnedFd> for UnixDatagram {
    type Error = Error;

    /// Adopts a UNIX datagram socket made elsewhere (passed by a parent
    /// process, say). The handle does not own any socket file: dropping it
    /// only closes the descriptor.
    ///
    /// # Errors
    /// [`Error::WrongType`] when `fd` is not a UNIX datagram socket.
    fn try_from(fd: OwnedFd) -> Result<UnixDatagram> {
        match check_kind(fd.as_fd(), "unix-dgram", "a UNIX datagram socket")? {
            Family::Unix => {}
            Family::V4 | Family::V6 => {
                return Err(Error::WrongType {
                    object: "unix-dgram".into(),
                    expected: "a UNIX datagram socket",
                    found: "a UDP socket",
                })
            }
        }
        let local = sys::local_addr(fd.as_fd())
            .ok()
            .and_then(sys::unix_addr_from);
        let peer = sys::peer_addr(fd.as_fd())
            .ok()
            .flatten()
            .and_then(sys::unix_addr_from);
        Ok(UnixDatagram::new(fd, local, peer, None))
    }
}

impl From<UnixDatagram> for OwnedFd {
    /// Gives up the descriptor. A socket file the handle owned is left in
    /// place, since the socket is still bound to it.
    fn from(sock: UnixDatagram) -> OwnedFd {
        let UnixDatagram { fd, file, .. } = sock;
        if let Some(mut file) = file {
            file.set_remove(false);
        }
        fd
    }
}

// ---------------------------------------------------------------------------
// UDP sockets.

/// A network interface, for multicast.
///
/// ```
/// use unipc::message::dgram::Interface;
/// use std::net::Ipv4Addr;
///
/// let by_address = Interface::Address(Ipv4Addr::LOCALHOST);
/// let by_name = Interface::Name("lo".into());
/// assert_ne!(by_address, by_name);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Interface {
    /// Let the kernel choose (by the routing table).
    Default,
    /// The interface with this index (`ip link` lists them).
    Index(u32),
    /// The interface with this name (`lo`, `eth0`).
    Name(String),
    /// The IPv4 interface with this address. IPv6 names interfaces by
    /// index only.
    Address(Ipv4Addr),
}

/// Options for binding a [`UdpSocket`].
///
/// ```
/// use unipc::message::dgram::UdpOptions;
///
/// let a = UdpOptions::new().reuse_address(true).bind_addr("127.0.0.1:0".parse()?)?;
/// let port = a.local_addr().port();
/// // A second socket on the same port, as multicast receivers do.
/// let b = UdpOptions::new().reuse_address(true).bind_addr(([127, 0, 0, 1], port).into())?;
/// assert_eq!(b.local_addr().port(), port);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct UdpOptions {
    reuse_address: bool,
    reuse_port: bool,
    only_v6: Option<bool>,
    broadcast: bool,
}

impl UdpOptions {
    /// The defaults: no address reuse, the system's IPv6-only default, no
    /// broadcast.
    pub fn new() -> Self {
        UdpOptions::default()
    }

    /// `SO_REUSEADDR`: let other sockets with this option bind the same
    /// address and port (each multicast receiver on a port needs it).
    pub fn reuse_address(mut self, on: bool) -> Self {
        self.reuse_address = on;
        self
    }

    /// `SO_REUSEPORT`: share the port among sockets of the same user, the
    /// kernel spreading unicast datagrams between them.
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
        self
    }

    /// `IPV6_V6ONLY`: whether an IPv6 socket bound to `::` refuses IPv4
    /// (v4-mapped) traffic. Ignored for IPv4.
    pub fn only_v6(mut self, on: bool) -> Self {
        self.only_v6 = Some(on);
        self
    }

    /// `SO_BROADCAST`: allow sends to a broadcast address.
    pub fn broadcast(mut self, on: bool) -> Self {
        self.broadcast = on;
        self
    }

    /// `socket` + `bind` — resolves `addr` and binds to the first of its
    /// addresses that accepts.
    ///
    /// # Errors
    /// [`Error::Os`] naming `udp:HOST:PORT`: the name did not resolve, or
    /// the kernel refused every address (EADDRINUSE, EADDRNOTAVAIL,
    /// EACCES for a port below 1024).
    ///
    /// # References
    /// udp(7), bind(2), getaddrinfo(3)
    pub fn bind(&self, addr: &HostPort) -> Result<UdpSocket> {
        let object = format!("udp:{addr}");
        let mut last = None;
        for candidate in resolve(addr, &object)? {
            match self.bind_addr(candidate) {
                Ok(sock) => return Ok(sock),
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(|| no_address(&object)))
    }

    /// `socket` + `bind` — binds to `addr` (port 0: the kernel picks one).
    ///
    /// # Errors
    /// As [`UdpOptions::bind`].
    #[doc(alias = "bind")]
    pub fn bind_addr(&self, addr: SocketAddr) -> Result<UdpSocket> {
        let object = format!("udp:{addr}");
        let family = match addr {
            SocketAddr::V4(_) => Family::V4,
            SocketAddr::V6(_) => Family::V6,
        };
        let fd = sys::socket(family).map_err(|e| Error::os(&object, "socket", e))?;
        let set = |what: &'static str, r: rustix::io::Result<()>| {
            r.map_err(|e| Error::os(&object, what, e))
        };
        if self.reuse_address {
            set(
                "setsockopt SO_REUSEADDR",
                sys::set_reuse_address(fd.as_fd(), true),
            )?;
        }
        if self.reuse_port {
            set(
                "setsockopt SO_REUSEPORT",
                sys::set_reuse_port(fd.as_fd(), true),
            )?;
        }
        if self.broadcast {
            set(
                "setsockopt SO_BROADCAST",
                sys::set_broadcast(fd.as_fd(), true),
            )?;
        }
        if let (Some(on), Family::V6) = (self.only_v6, family) {
            set("setsockopt IPV6_V6ONLY", sys::set_only_v6(fd.as_fd(), on))?;
        }
        sys::bind(fd.as_fd(), &addr).map_err(|e| {
            let err = Error::os(&object, "bind", e);
            if e == Errno::ADDRINUSE {
                err.with_hint("another socket is bound to that port")
            } else {
                err
            }
        })?;
        UdpSocket::adopt(fd, family, &object)
    }
}

fn resolve(addr: &HostPort, object: &str) -> Result<Vec<SocketAddr>> {
    let found: Vec<SocketAddr> = (addr.host.as_str(), addr.port)
        .to_socket_addrs()
        .map_err(|e| Error::os(object, "resolve", e))?
        .collect();
    if found.is_empty() {
        return Err(no_address(object));
    }
    Ok(found)
}

fn no_address(object: &str) -> Error {
    Error::os(
        object,
        "resolve",
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the name has no usable address",
        ),
    )
}

/// A UDP socket (`udp:HOST:PORT`), IPv4 or IPv6 behind one interface:
/// datagrams of up to 65,507 bytes over IPv4 and 65,527 over IPv6, which
/// may be lost, duplicated or reordered, and multicast.
///
/// Once connected ([`UdpSocket::connect`]) it sends to that peer only,
/// receives from that peer only (datagrams from other addresses are
/// dropped by the kernel), and implements [`Messenger`].
///
/// ```
/// use unipc::message::dgram::UdpSocket;
/// use unipc::message::Wait;
///
/// let a = UdpSocket::bind_addr("127.0.0.1:0".parse()?)?;
/// let b = UdpSocket::bind_addr("127.0.0.1:0".parse()?)?;
/// a.send_to(b"ping", b.local_addr(), Wait::Forever)?;
/// let mut buf = [0; 64];
/// let (len, from) = b.recv_from(&mut buf, Wait::Forever)?;
/// assert_eq!((&buf[..len], from), (&b"ping"[..], a.local_addr()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # References
/// udp(7), ip(7), ipv6(7), socket(2)
#[derive(Debug)]
pub struct UdpSocket {
    fd: OwnedFd,
    v6: bool,
    local: SocketAddr,
    peer: Option<SocketAddr>,
    /// [`Messenger::object`], kept formatted (see [`UnixDatagram`]'s).
    object: String,
}

impl UdpSocket {
    fn adopt(fd: OwnedFd, family: Family, object: &str) -> Result<UdpSocket> {
        let local = sys::local_addr(fd.as_fd())
            .and_then(sys::inet_addr_from)
            .map_err(|e| Error::os(object, "getsockname", e))?;
        let peer = sys::peer_addr(fd.as_fd())
            .map_err(|e| Error::os(object, "getpeername", e))?
            .map(sys::inet_addr_from)
            .transpose()
            .map_err(|e| Error::os(object, "getpeername", e))?;
        Ok(UdpSocket {
            fd,
            v6: family == Family::V6,
            local,
            peer,
            object: format!("udp:{local}"),
        })
    }

    /// `socket` + `bind` — a UDP socket bound to `addr` (a name is
    /// resolved; the first address that binds is used), with the default
    /// [`UdpOptions`].
    ///
    /// # Errors
    /// As [`UdpOptions::bind`].
    pub fn bind(addr: &HostPort) -> Result<UdpSocket> {
        UdpOptions::new().bind(addr)
    }

    /// `socket` + `bind` — a UDP socket bound to `addr`.
    ///
    /// # Errors
    /// As [`UdpOptions::bind`].
    #[doc(alias = "bind")]
    pub fn bind_addr(addr: SocketAddr) -> Result<UdpSocket> {
        UdpOptions::new().bind_addr(addr)
    }

    /// `connect` — fixes the peer to the first resolved address of `addr`
    /// in this socket's family.
    ///
    /// # Errors
    /// As [`UdpSocket::connect_addr`]; also a name that does not resolve
    /// to an address of this socket's family.
    pub fn connect(&mut self, addr: &HostPort) -> Result<()> {
        let object = format!("udp:{addr}");
        let mut last = None;
        for candidate in resolve(addr, &object)? {
            if candidate.is_ipv6() && !self.v6 {
                continue;
            }
            match self.connect_addr(candidate) {
                Ok(()) => return Ok(()),
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(|| no_address(&object)))
    }

    /// `connect` — fixes the peer: sends without an address go to `addr`,
    /// and datagrams from any other address are no longer delivered.
    ///
    /// # Errors
    /// [`Error::Os`]: ENETUNREACH, EAFNOSUPPORT (an IPv6 address for an
    /// IPv4 socket).
    #[doc(alias = "connect")]
    pub fn connect_addr(&mut self, addr: SocketAddr) -> Result<()> {
        let addr = self.to_family(addr);
        let object = format!("udp:{addr}");
        sys::connect(self.fd.as_fd(), &addr).map_err(|e| Error::os(&object, "connect", e))?;
        self.peer = Some(addr);
        // Connecting a socket bound to a wildcard address fixes its source.
        if let Ok(local) = sys::local_addr(self.fd.as_fd()).and_then(sys::inet_addr_from) {
            self.local = local;
            self.object = format!("udp:{local}");
        }
        Ok(())
    }

    /// The address and port this socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The connected peer, when there is one.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// Whether this is an IPv6 socket.
    pub fn is_ipv6(&self) -> bool {
        self.v6
    }

    /// An IPv4 address given to an IPv6 socket becomes v4-mapped, so that
    /// one call reaches both families.
    fn to_family(&self, addr: SocketAddr) -> SocketAddr {
        match addr {
            SocketAddr::V4(v4) if self.v6 => {
                SocketAddr::V6(SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0))
            }
            other => other,
        }
    }

    /// The largest payload a datagram to `to` may carry.
    fn limit_for(&self, to: Option<SocketAddr>) -> usize {
        match to {
            Some(SocketAddr::V4(_)) => UDP_V4_MAX,
            Some(SocketAddr::V6(v6)) if v6.ip().to_ipv4_mapped().is_some() => UDP_V4_MAX,
            Some(SocketAddr::V6(_)) => UDP_V6_MAX,
            None if self.v6 => UDP_V6_MAX,
            None => UDP_V4_MAX,
        }
    }

    fn check_size(&self, size: usize, to: Option<SocketAddr>) -> Result<()> {
        let limit = self.limit_for(to);
        if size > limit {
            return Err(Error::MessageTooLarge {
                object: match to {
                    Some(to) => format!("udp:{to}"),
                    None => self.object(),
                },
                size,
                limit,
            });
        }
        Ok(())
    }

    /// The largest datagram that can arrive on this socket.
    fn fits(&self) -> usize {
        if self.v6 {
            UDP_V6_MAX
        } else {
            UDP_V4_MAX
        }
    }

    /// `sendto` — sends `message` as one datagram to `to` (an IPv4 address
    /// is v4-mapped on an IPv6 socket). UDP does not wait for the receiver:
    /// `wait` only matters when this socket's send buffer is full.
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`] before any call for more than 65,507 bytes
    /// to IPv4 or 65,527 to IPv6; [`Error::Full`]; [`Error::TimedOut`];
    /// [`Error::Os`] naming `udp:to` (ENETUNREACH, EACCES for a broadcast
    /// address without [`UdpOptions::broadcast`]).
    #[doc(alias = "sendto")]
    pub fn send_to(&self, message: &[u8], to: SocketAddr, wait: Wait) -> Result<()> {
        let to = self.to_family(to);
        self.check_size(message.len(), Some(to))?;
        let fd = self.fd.as_fd();
        with_wait(fd, Ready::Write, Until::from(wait), |dont_wait| {
            sys::send_to(fd, message, dont_wait, &to)
        })
        .map(drop)
        .map_err(|stop| udp_send_error(stop, format!("udp:{to}"), "sendto"))
    }

    /// `recvfrom` — receives one datagram into `buf`, waiting as `wait`
    /// says; returns its length and sender.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] with the datagram's size when it does not
    /// fit (it stays queued; see the module docs); [`Error::Empty`];
    /// [`Error::TimedOut`]; [`Error::Os`] (ECONNREFUSED on a connected
    /// socket after an earlier datagram met a closed port).
    #[doc(alias = "recvfrom")]
    pub fn recv_from(&self, buf: &mut [u8], wait: Wait) -> Result<(usize, SocketAddr)> {
        self.recv_impl(buf, wait, false, "recvfrom")
    }

    /// `recvfrom(MSG_PEEK)` — copies the next datagram into `buf` without
    /// consuming it: the next receive returns the same datagram.
    ///
    /// # Errors
    /// As [`UdpSocket::recv_from`]; nothing is consumed in any case.
    #[doc(alias = "MSG_PEEK")]
    pub fn peek_from(&self, buf: &mut [u8], wait: Wait) -> Result<(usize, SocketAddr)> {
        self.recv_impl(buf, wait, true, "recvfrom MSG_PEEK")
    }

    /// `recv(MSG_PEEK | MSG_TRUNC)` — the size of the next datagram,
    /// waiting for one as `wait` says; nothing is consumed or copied.
    ///
    /// # Errors
    /// [`Error::Empty`], [`Error::TimedOut`], [`Error::Os`].
    #[doc(alias = "MSG_TRUNC")]
    pub fn peek_len(&self, wait: Wait) -> Result<usize> {
        peek_len(self.fd.as_fd(), wait)
            .map_err(|stop| recv_error(stop.into(), self.object(), "recv MSG_PEEK"))
    }

    fn recv_impl(
        &self,
        buf: &mut [u8],
        wait: Wait,
        peek: bool,
        op: &'static str,
    ) -> Result<(usize, SocketAddr)> {
        let (len, from) = recv_datagram(
            self.fd.as_fd(),
            &mut &mut *buf,
            wait,
            How {
                peek,
                want_from: true,
                fits: Some(self.fits()),
            },
        )
        .map_err(|stop| recv_error(stop, self.object(), op))?;
        let from = from
            .ok_or(Errno::AFNOSUPPORT)
            .and_then(sys::inet_addr_from)
            .map_err(|e| Error::os(self.object(), op, e))?;
        Ok((len, from))
    }

    fn multicast_err(&self, what: &'static str) -> impl Fn(Errno) -> Error + '_ {
        move |e| Error::os(self.object(), what, e)
    }

    /// The interface index for `interface`, for the calls that take one.
    fn ifindex(&self, interface: &Interface, what: &'static str) -> Result<(Ipv4Addr, u32)> {
        Ok(match interface {
            Interface::Default => (Ipv4Addr::UNSPECIFIED, 0),
            Interface::Index(index) => (Ipv4Addr::UNSPECIFIED, *index),
            Interface::Name(name) => {
                let index = sys::interface_index(self.fd.as_fd(), name).map_err(|e| {
                    let err = Error::os(self.object(), "ioctl SIOCGIFINDEX", e);
                    if e == Errno::NODEV {
                        err.with_hint("no interface has that name")
                    } else {
                        err
                    }
                })?;
                (Ipv4Addr::UNSPECIFIED, index)
            }
            Interface::Address(address) if !self.v6 => (*address, 0),
            Interface::Address(address) => {
                return Err(Error::Unsupported {
                    object: self.object(),
                    what: format!("{what} by the address {address}"),
                    reason: "IPv6 names interfaces by index or name".into(),
                })
            }
        })
    }

    fn check_group(&self, group: IpAddr) -> Result<()> {
        if !group.is_multicast() {
            return Err(Error::InvalidName {
                kind: "multicast group",
                input: group.to_string(),
                reason: "is not a multicast address (224.0.0.0/4 or ff00::/8)".into(),
            });
        }
        if group.is_ipv6() != self.v6 {
            return Err(Error::Unsupported {
                object: self.object(),
                what: format!("joining {group}"),
                reason: format!(
                    "this is an IPv{} socket; use a socket of the group's family",
                    if self.v6 { 6 } else { 4 }
                ),
            });
        }
        Ok(())
    }

    /// `setsockopt(IP_ADD_MEMBERSHIP)` or `IPV6_ADD_MEMBERSHIP` — joins the
    /// multicast `group` on `interface`: datagrams sent to the group and
    /// this socket's port are delivered to it.
    ///
    /// # Errors
    /// [`Error::InvalidName`] when `group` is not a multicast address;
    /// [`Error::Unsupported`] for a group of the other family or an IPv6
    /// interface given by address; [`Error::Os`] (ENODEV: no such
    /// interface; EADDRINUSE: already joined).
    #[doc(alias = "IP_ADD_MEMBERSHIP")]
    #[doc(alias = "IPV6_JOIN_GROUP")]
    pub fn join_multicast(&self, group: IpAddr, interface: &Interface) -> Result<()> {
        self.membership(group, interface, true)
    }

    /// `setsockopt(IP_DROP_MEMBERSHIP)` or `IPV6_DROP_MEMBERSHIP` — leaves
    /// a group joined with [`UdpSocket::join_multicast`] (same group and
    /// interface).
    ///
    /// # Errors
    /// As [`UdpSocket::join_multicast`]; EADDRNOTAVAIL when not a member.
    #[doc(alias = "IP_DROP_MEMBERSHIP")]
    #[doc(alias = "IPV6_LEAVE_GROUP")]
    pub fn leave_multicast(&self, group: IpAddr, interface: &Interface) -> Result<()> {
        self.membership(group, interface, false)
    }

    /// Joins (`join`) or leaves `group` on `interface`: the two calls take
    /// the same checks and operands and differ only in the option.
    fn membership(&self, group: IpAddr, interface: &Interface, join: bool) -> Result<()> {
        self.check_group(group)?;
        let purpose = if join {
            "joining a group"
        } else {
            "leaving a group"
        };
        let (address, index) = self.ifindex(interface, purpose)?;
        let fd = self.fd.as_fd();
        match (group, join) {
            (IpAddr::V4(group), true) => sys::join_v4(fd, &group, &address, index)
                .map_err(self.multicast_err("setsockopt IP_ADD_MEMBERSHIP")),
            (IpAddr::V4(group), false) => sys::leave_v4(fd, &group, &address, index)
                .map_err(self.multicast_err("setsockopt IP_DROP_MEMBERSHIP")),
            (IpAddr::V6(group), true) => sys::join_v6(fd, &group, index)
                .map_err(self.multicast_err("setsockopt IPV6_ADD_MEMBERSHIP")),
            (IpAddr::V6(group), false) => sys::leave_v6(fd, &group, index)
                .map_err(self.multicast_err("setsockopt IPV6_DROP_MEMBERSHIP")),
        }
    }

    /// `setsockopt(IP_MULTICAST_IF)` or `IPV6_MULTICAST_IF` — the interface
    /// multicast datagrams from this socket leave by.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for an IPv6 interface given by address;
    /// [`Error::Os`] (EADDRNOTAVAIL, ENODEV: no such interface).
    #[doc(alias = "IP_MULTICAST_IF")]
    #[doc(alias = "IPV6_MULTICAST_IF")]
    pub fn set_multicast_interface(&self, interface: &Interface) -> Result<()> {
        let (address, index) = self.ifindex(interface, "sending multicast")?;
        let fd = self.fd.as_fd();
        if self.v6 {
            sys::set_multicast_if_v6(fd, index)
                .map_err(self.multicast_err("setsockopt IPV6_MULTICAST_IF"))
        } else {
            sys::set_multicast_if_v4(fd, &address, index)
                .map_err(self.multicast_err("setsockopt IP_MULTICAST_IF"))
        }
    }

    /// `setsockopt(IP_MULTICAST_LOOP)` or `IPV6_MULTICAST_LOOP` — whether
    /// multicast sent from this socket is also delivered to members on
    /// this host (on by default).
    ///
    /// # Errors
    /// [`Error::Os`].
    #[doc(alias = "IP_MULTICAST_LOOP")]
    pub fn set_multicast_loop(&self, on: bool) -> Result<()> {
        sys::set_multicast_loop(self.fd.as_fd(), self.v6, on)
            .map_err(self.multicast_err("setsockopt IP_MULTICAST_LOOP"))
    }

    /// `getsockopt(IP_MULTICAST_LOOP)` or `IPV6_MULTICAST_LOOP`.
    ///
    /// # Errors
    /// [`Error::Os`].
    pub fn multicast_loop(&self) -> Result<bool> {
        sys::multicast_loop(self.fd.as_fd(), self.v6)
            .map_err(self.multicast_err("getsockopt IP_MULTICAST_LOOP"))
    }

    /// `setsockopt(IP_MULTICAST_TTL)` or `IPV6_MULTICAST_HOPS` — how many
    /// routers multicast from this socket may cross (default 1; 0 keeps it
    /// on this host).
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] above 255; [`Error::Os`].
    #[doc(alias = "IP_MULTICAST_TTL")]
    #[doc(alias = "IPV6_MULTICAST_HOPS")]
    pub fn set_multicast_hops(&self, hops: u32) -> Result<()> {
        if hops > 255 {
            return Err(Error::LimitExceeded {
                object: self.object(),
                what: "multicast hop limit",
                requested: hops.into(),
                limit: 255,
                set_in: "the 8-bit TTL / hop-limit field of the IP header",
            });
        }
        sys::set_multicast_hops(self.fd.as_fd(), self.v6, hops)
            .map_err(self.multicast_err("setsockopt IP_MULTICAST_TTL"))
    }

    /// `getsockopt(IP_MULTICAST_TTL)` or `IPV6_MULTICAST_HOPS`.
    ///
    /// # Errors
    /// [`Error::Os`].
    pub fn multicast_hops(&self) -> Result<u32> {
        sys::multicast_hops(self.fd.as_fd(), self.v6)
            .map_err(self.multicast_err("getsockopt IP_MULTICAST_TTL"))
    }

    /// `setsockopt(SO_RCVBUF)` — the receive buffer, which bounds how much
    /// may queue before the kernel drops arrivals. Returns the size in
    /// force (the kernel doubles the request and caps it at
    /// `net.core.rmem_max`).
    ///
    /// # Errors
    /// [`Error::Os`].
    #[doc(alias = "SO_RCVBUF")]
    pub fn set_recv_buffer_size(&self, bytes: usize) -> Result<usize> {
        let fd = self.fd.as_fd();
        sys::set_recv_buffer_size(fd, bytes)
            .map_err(|e| Error::os(self.object(), "setsockopt SO_RCVBUF", e))?;
        sys::recv_buffer_size(fd).map_err(|e| Error::os(self.object(), "getsockopt SO_RCVBUF", e))
    }
}

fn udp_send_error(stop: Stop, object: String, op: &'static str) -> Error {
    match stop {
        Stop::Os(Errno::CONNREFUSED) => Error::os(object, op, Errno::CONNREFUSED)
            .with_hint("an earlier datagram found the peer's port closed"),
        other => send_error(other, object, op),
    }
}

impl Messenger for UdpSocket {
    /// `udp:ADDRESS:PORT` of the bound address.
    fn object(&self) -> String {
        self.object.clone()
    }

    /// 65,507 bytes to an IPv4 peer, 65,527 to an IPv6 one.
    fn limits(&self) -> Result<Limits> {
        Ok(Limits {
            max_message_size: self.limit_for(self.peer),
            max_messages: None,
        })
    }

    fn send_tagged(&self, message: &[u8], tag: Tag, wait: Wait) -> Result<()> {
        if tag != Tag::None {
            return Err(unsupported_tag(self.object(), tag, "no tag"));
        }
        self.check_size(message.len(), self.peer)?;
        let fd = self.fd.as_fd();
        with_wait(fd, Ready::Write, Until::from(wait), |dont_wait| {
            sys::send(fd, message, dont_wait)
        })
        .map(drop)
        .map_err(|stop| {
            let object = match self.peer {
                Some(peer) => format!("udp:{peer}"),
                None => self.object(),
            };
            udp_send_error(stop, object, "send")
        })
    }

    /// The largest datagram this socket can receive (65,527 bytes on an
    /// IPv6 socket, 65,507 on an IPv4 one): a buffer this large is
    /// received in one call.
    fn recv_buffer_hint(&self) -> Result<usize> {
        Ok(self.fits())
    }

    fn recv_into(&self, buf: &mut [u8], wait: Wait) -> Result<Received> {
        recv_untagged(
            self.fd.as_fd(),
            || self.object(),
            buf,
            wait,
            Some(self.fits()),
        )
    }

    /// One `recv(MSG_TRUNC)` whatever the size of `buf`: a datagram longer
    /// than `buf` is consumed and reported as [`Error::BufferTooSmall`]
    /// with its real size.
    fn recv_into_or_discard(&self, buf: &mut [u8], wait: Wait) -> Result<Received> {
        recv_untagged(self.fd.as_fd(), || self.object(), buf, wait, Some(0))
    }

    /// Sized to the largest datagram this socket can receive, so one call
    /// is enough.
    fn recv_vec(&self, wait: Wait) -> Result<(Vec<u8>, Tag)> {
        let mut buf = vec![0; self.fits()];
        let got = self.recv_into(&mut buf, wait)?;
        buf.truncate(got.len);
        Ok((buf, Tag::None))
    }
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl TryFrom<OwnedFd> for UdpSocket {
    type Error = Error;

    /// Adopts a bound UDP socket made elsewhere.
    ///
    /// # Errors
    /// [`Error::WrongType`] when `fd` is not a UDP socket; [`Error::Os`]
    /// when its address cannot be read.
    fn try_from(fd: OwnedFd) -> Result<UdpSocket> {
        let family = check_kind(fd.as_fd(), "udp", "a UDP socket")?;
        if family == Family::Unix {
            return Err(Error::WrongType {
                object: "udp".into(),
                expected: "a UDP socket",
                found: "a UNIX datagram socket",
            });
        }
        UdpSocket::adopt(fd, family, "udp")
    }
}

impl From<UdpSocket> for OwnedFd {
    fn from(sock: UdpSocket) -> OwnedFd {
        sock.fd
    }
}

impl fmt::Display for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.object())
    }
}

impl fmt::Display for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.object())
    }
}

/// A link over one connected datagram socket: the sending half is a
/// close-on-exec duplicate of the same descriptor.
fn dgram_link<S>(socket: S) -> Result<Box<dyn Link>>
where
    S: Messenger + AsFd + TryFrom<OwnedFd, Error = Error> + Send + 'static,
{
    let copy = rustix::io::fcntl_dupfd_cloexec(socket.as_fd(), 0)
        .map_err(|e| Error::os(socket.object(), "dup", e))?;
    let tx = S::try_from(copy)?;
    Ok(Box::new(MessageLink::direct(tx, socket, |tx, rx| {
        RawIo::SendRecv {
            read: rx.as_fd(),
            write: tx.as_fd(),
        }
    })))
}

fn sndbuf_cap() -> Option<MessageCap> {
    let sndbuf: usize = std::fs::read_to_string("/proc/sys/net/core/wmem_default")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(MessageCap {
        bytes: sndbuf.saturating_sub(32),
        set_by: "the send buffer, wmem_default in /proc/sys/net/core/wmem_default, less 32"
            .to_owned(),
    })
}

/// The UNIX datagram socket's entry in the facility registry.
pub static UNIX_FACILITY: Facility = Facility {
    name: "unix-dgram",
    summary: "UNIX datagram socket: reliable messages on this host, sender address on each",
    addressing: "unix-dgram:PATH, unix-dgram:@NAME",
    properties: Properties {
        shape: Shape::Messages,
        direction: Direction::TwoWay,
        tags: Tags::None,
        destructive_read: true,
        peek: true,
        naming: Naming::PathOrAbstract,
        reach: Reach::Host,
        persistence: Persistence::Process,
        permissions: "socket file mode (path); none (abstract)",
        reliable: true,
    },
    limits: || {
        vec![
            LiveLimit::from_proc(
                "max_dgram_qlen",
                "/proc/sys/net/unix/max_dgram_qlen",
                " datagrams queued",
            ),
            LiveLimit::from_proc(
                "wmem_default",
                "/proc/sys/net/core/wmem_default",
                " bytes (send buffer)",
            ),
        ]
    },
    max_message: sndbuf_cap,
    connector: &UnixConnector,
};

/// Joins two processes through two bound sockets in the scratch
/// directory, each connected to the other.
struct UnixConnector;

struct UnixPending(UnixDatagram, PathBuf);

const PARENT_SOCKET: &str = "dgram-parent";
const PEER_SOCKET: &str = "dgram-peer";

impl facility::Connector for UnixConnector {
    fn prepare(
        &self,
        scratch: &std::path::Path,
        _: &LinkOptions,
    ) -> Result<(Box<dyn PendingLink>, Ticket)> {
        let socket = UnixDatagram::bind(&UnixAddr::path(scratch.join(PARENT_SOCKET))?)?;
        let address = scratch.to_string_lossy().into_owned();
        Ok((
            Box::new(UnixPending(socket, scratch.join(PEER_SOCKET))),
            Ticket::address(address),
        ))
    }

    fn join(&self, ticket: Ticket, _: &LinkOptions) -> Result<Box<dyn Link>> {
        let dir = std::path::Path::new(&ticket.address);
        let mut socket = UnixDatagram::bind(&UnixAddr::path(dir.join(PEER_SOCKET))?)?;
        socket.connect(&UnixAddr::path(dir.join(PARENT_SOCKET))?)?;
        dgram_link(socket)
    }
}

impl PendingLink for UnixPending {
    fn establish(self: Box<Self>) -> Result<Box<dyn Link>> {
        let UnixPending(mut socket, peer) = *self;
        let peer = UnixAddr::path(peer)?;
        // The peer binds its socket when it starts; until then connecting
        // finds no file. The caller bounds how long this may take.
        loop {
            match socket.connect(&peer) {
                Err(err) if err.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                other => break other?,
            }
        }
        dgram_link(socket)
    }
}

/// The UDP socket's entry in the facility registry.
pub static UDP_FACILITY: Facility = Facility {
    name: "udp",
    summary: "UDP datagram socket: unreliable messages across hosts, multicast",
    addressing: "udp:HOST:PORT, udp:[IPv6]:PORT",
    properties: Properties {
        shape: Shape::Messages,
        direction: Direction::TwoWay,
        tags: Tags::None,
        destructive_read: true,
        peek: true,
        naming: Naming::NetworkAddress,
        reach: Reach::Network,
        persistence: Persistence::Process,
        permissions: "none on the socket; ports below 1024 need CAP_NET_BIND_SERVICE",
        reliable: false,
    },
    limits: || {
        vec![
            LiveLimit::from_proc(
                "rmem_default",
                "/proc/sys/net/core/rmem_default",
                " bytes (receive buffer)",
            ),
            LiveLimit::from_proc(
                "rmem_max",
                "/proc/sys/net/core/rmem_max",
                " bytes (largest receive buffer)",
            ),
            LiveLimit {
                name: "datagram",
                value: format!("{UDP_V4_MAX} bytes (IPv4)"),
                source: "IP header",
            },
        ]
    },
    max_message: || {
        Some(MessageCap {
            bytes: UDP_V4_MAX,
            set_by: "the IPv4 datagram size".to_owned(),
        })
    },
    connector: &UdpConnector,
};

/// Joins two processes over loopback UDP: the peer connects to the
/// parent's port and greets it, which tells the parent the peer's port.
struct UdpConnector;

struct UdpPending(UdpSocket);

impl facility::Connector for UdpConnector {
    fn prepare(
        &self,
        _scratch: &std::path::Path,
        _: &LinkOptions,
    ) -> Result<(Box<dyn PendingLink>, Ticket)> {
        let socket = UdpSocket::bind_addr(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let address = socket.local_addr().to_string();
        Ok((Box::new(UdpPending(socket)), Ticket::address(address)))
    }

    fn join(&self, ticket: Ticket, _: &LinkOptions) -> Result<Box<dyn Link>> {
        let parent = ticket.socket_addr()?;
        let mut socket = UdpSocket::bind_addr(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        socket.connect_addr(parent)?;
        socket.send(b"hello")?;
        dgram_link(socket)
    }
}

impl PendingLink for UdpPending {
    fn establish(self: Box<Self>) -> Result<Box<dyn Link>> {
        let UdpPending(mut socket) = *self;
        let mut greeting = [0u8; 16];
        let (_, peer) = socket.recv_from(&mut greeting, Wait::Forever)?;
        socket.connect_addr(peer)?;
        dgram_link(socket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_limits_follow_the_destination_family() {
        let v6 = UdpSocket::bind_addr("[::1]:0".parse().unwrap());
        let Ok(v6) = v6 else {
            eprintln!("skipped: no IPv6 loopback here");
            return;
        };
        assert_eq!(v6.limit_for(None), UDP_V6_MAX);
        let mapped = v6.to_family("127.0.0.1:9".parse().unwrap());
        assert_eq!(v6.limit_for(Some(mapped)), UDP_V4_MAX);
        assert_eq!(v6.limit_for(Some("[::1]:9".parse().unwrap())), UDP_V6_MAX);
    }

    #[test]
    fn until_far_future_is_forever() {
        assert!(matches!(
            Until::from(Wait::For(Duration::MAX)),
            Until::Forever
        ));
        assert!(matches!(Until::from(Wait::Never), Until::Now));
    }

    #[test]
    fn non_multicast_group_is_refused_by_name() {
        let sock = UdpSocket::bind_addr("127.0.0.1:0".parse().unwrap()).unwrap();
        let err = sock
            .join_multicast("10.0.0.1".parse().unwrap(), &Interface::Default)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a multicast address"), "{err}");
        let err = sock
            .join_multicast("ff01::1".parse().unwrap(), &Interface::Default)
            .unwrap_err()
            .to_string();
        assert!(err.contains("IPv4 socket"), "{err}");
    }
}
