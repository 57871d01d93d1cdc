//! UNIX-domain seqpacket sockets (`unix-seqpacket:PATH`,
//! `unix-seqpacket:@NAME`) and socketpairs: a reliable, ordered,
//! connection-oriented channel that keeps message boundaries.
//!
//! It sits with the streams because it is addressed, bound, accepted and
//! closed like [`unix`] (it shares that module's
//! implementation: stale-file reclaim, exact file modes, peer credentials,
//! descriptor passing), and it is also a message facility: [`Conn`]
//! implements [`Messenger`]. Every send is one message; every receive
//! returns one whole message or refuses.
//!
//! # Message size
//! A message must fit in the sender's send buffer: the kernel refuses one
//! longer than `SO_SNDBUF - 32` bytes (212 960 bytes with the default
//! `net.core.wmem_default` of 212 992). [`Messenger::limits`] reports this
//! end's limit; the peer's own buffer bounds what it can send.
//!
//! # Receiving
//! A message is never handed over cut: one longer than the buffer is
//! [`Error::BufferTooSmall`] with its real size. How much that costs
//! depends on the buffer:
//!
//! - A buffer of at least [`Messenger::recv_buffer_hint`] bytes
//!   (`2 * net.core.wmem_max - 32`, or `wmem_default - 32` if that is
//!   larger) holds any message an unprivileged peer can send, since
//!   `SO_SNDBUF` is capped at twice `wmem_max`. Such a receive is one
//!   `recv(MSG_TRUNC)` call, as cheap as the raw call. A longer message
//!   can only come from a peer that forced its buffer with
//!   `SO_SNDBUFFORCE` (which needs `CAP_NET_ADMIN`) or after an
//!   administrator raised those limits; it is then **consumed** and
//!   reported as [`Error::BufferTooSmall`] with its real size.
//! - A smaller buffer first peeks at the next message's length
//!   (`MSG_PEEK | MSG_TRUNC`, which reports the real length on this socket
//!   type), so a message longer than the buffer stays queued: two calls
//!   per message. Only when several processes read one socket and another
//!   takes the message between the peek and the receive can a longer one
//!   arrive; it is then consumed, and still reported as
//!   [`Error::BufferTooSmall`], never silently cut.
//!
//! A reader that knows how long its peer's messages are can have one call
//! with any buffer: [`Messenger::recv_into_or_discard`] discards (and
//! reports) a message that does not fit instead of keeping it.
//! [`Conn::recv_with_fds`] always peeks first, so that a message too long
//! for its buffer never loses the descriptors it carries.
//!
//! A receive of zero bytes is the end of the connection. An empty message
//! cannot be told from it once the peer has also closed, so unipc refuses
//! to send one; one sent by another program reads as a message of length 0
//! while the connection is open.
//!
//! # References
//! unix(7), socket(2) (`SOCK_SEQPACKET`), recv(2) (`MSG_PEEK`, `MSG_TRUNC`)

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use crate::adopt::{self, Want};
use crate::error::ObjectName;
use crate::facility::{
    Direction, Facility, LiveLimit, MessageCap, Naming, Persistence, Properties, Reach, Shape, Tags,
};
use crate::message::{unsupported_tag, Limits, Messenger, Received, Tag, Wait};
use crate::name::UnixAddr;
use crate::stream::unix::{self, Credentials};
use crate::stream::unix_core::{endpoint_label, peer_closed, Bound, Pace, Socket};
use crate::sys::fd::{Family, SocketKind};
use crate::sys::socket::Kind;
use crate::{AdoptError, Error, Mode, Result};

/// Options for a seqpacket [`Listener`]; the same knobs as
/// [`unix::ListenerOptions`].
///
/// ```
/// use unipc::name::UnixAddr;
/// use unipc::stream::seqpacket::ListenerOptions;
///
/// let path = std::env::temp_dir().join(format!("unipc-doc-sp-{}.sock", std::process::id()));
/// let listener = ListenerOptions::new().mode(unipc::Mode::OWNER_GROUP_RW).bind(&UnixAddr::path(&path)?)?;
/// drop(listener);
/// assert!(!path.exists());
/// # Ok::<(), unipc::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct ListenerOptions {
    inner: unix::ListenerOptions,
}

impl ListenerOptions {
    /// The defaults of [`unix::ListenerOptions::new`].
    pub fn new() -> Self {
        Self::default()
    }

    /// As [`unix::ListenerOptions::backlog`].
    pub fn backlog(mut self, backlog: u32) -> Self {
        self.inner = self.inner.backlog(backlog);
        self
    }

    /// As [`unix::ListenerOptions::mode`]: exactly this mode, whatever the
    /// umask.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.inner = self.inner.mode(mode);
        self
    }

    /// As [`unix::ListenerOptions::remove_on_drop`].
    pub fn remove_on_drop(mut self, remove: bool) -> Self {
        self.inner = self.inner.remove_on_drop(remove);
        self
    }

    /// As [`unix::ListenerOptions::reclaim_stale`].
    pub fn reclaim_stale(mut self, reclaim: bool) -> Self {
        self.inner = self.inner.reclaim_stale(reclaim);
        self
    }

    /// `socket` + `bind` + `listen`—binds a seqpacket listener at `addr`.
    ///
    /// # Errors
    /// As [`unix::ListenerOptions::bind`].
    pub fn bind(&self, addr: &UnixAddr) -> Result<Listener> {
        Ok(Listener {
            inner: Bound::bind(Kind::Seqpacket, addr, &self.inner.config)?,
        })
    }
}

/// A UNIX seqpacket socket listening at a path or an abstract name; drop
/// removes its file. Behaves as [`unix::Listener`].
///
/// ```
/// use unipc::message::Messenger;
/// use unipc::name::UnixAddr;
/// use unipc::stream::seqpacket;
///
/// let addr: UnixAddr = format!("@unipc-doc-seqpacket-{}", std::process::id()).parse()?;
/// let listener = seqpacket::Listener::bind(&addr)?;
/// let client = seqpacket::Conn::connect(&addr)?;
/// let server = listener.accept()?;
/// client.send(b"one")?;
/// client.send(b"two")?;
/// assert_eq!(server.recv()?, b"one");
/// assert_eq!(server.recv()?, b"two");
/// # Ok::<(), unipc::Error>(())
/// ```
#[doc(alias = "SOCK_SEQPACKET")]
#[derive(Debug)]
pub struct Listener {
    inner: Bound,
}

super::unix_listener!(Listener, Conn);

/// A connected UNIX seqpacket socket: each send is one message, each
/// receive one whole message.
///
/// Use it through [`Messenger`] (with [`Wait`] for timeouts) or through
/// [`Read`]/[`Write`], where one `write` sends one message and one `read`
/// receives one (failing with [`io::ErrorKind::InvalidInput`] when the
/// buffer is too small; the message is left queued unless the buffer was
/// at least [`Messenger::recv_buffer_hint`] bytes, see the
/// [module docs](self#receiving)). Sends to a closed peer fail with
/// `EPIPE`, never SIGPIPE.
///
/// ```
/// use unipc::message::{Messenger, Wait};
///
/// let (a, b) = unipc::stream::seqpacket::pair()?;
/// a.send(b"first")?;
/// a.send(b"second")?;
/// let mut buf = [0; 16];
/// assert_eq!(b.recv_into(&mut buf, Wait::Never)?.len, 5);
/// assert_eq!(b.recv_into(&mut buf, Wait::Never)?.len, 6);
/// assert!(matches!(b.try_recv(), Err(unipc::Error::Empty { .. })));
/// # Ok::<(), unipc::Error>(())
/// ```
#[derive(Debug)]
pub struct Conn {
    inner: Socket,
}

impl Conn {
    /// `socket` + `connect`—connects to a seqpacket listener at `addr`.
    ///
    /// # Errors
    /// As [`unix::Stream::connect`].
    pub fn connect(addr: &UnixAddr) -> Result<Conn> {
        Socket::connect(Kind::Seqpacket, addr).map(|inner| Conn { inner })
    }

    /// `getsockopt(SO_PEERCRED)`—who is at the other end.
    ///
    /// # Errors
    /// [`Error::Os`] from `getsockopt`.
    #[doc(alias = "SO_PEERCRED")]
    pub fn peer_credentials(&self) -> Result<Credentials> {
        self.inner.peer_credentials()
    }

    /// `sendmsg(SCM_RIGHTS)`—sends one message `data` carrying duplicates
    /// of `fds`, blocking unless the socket is non-blocking.
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`]; [`Error::LimitExceeded`] for more than
    /// 253 descriptors; [`Error::Unsupported`] for an empty `data` (it would
    /// read as the end of the connection); [`Error::Os`] from `sendmsg`.
    ///
    /// # References
    /// unix(7) (`SCM_RIGHTS`), sendmsg(2)
    #[doc(alias = "SCM_RIGHTS")]
    pub fn send_with_fds(&self, data: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
        if data.is_empty() {
            return Err(empty_message(&self.inner));
        }
        self.inner.send_with_fds(data, fds, Pace::AsFd).map(drop)
    }

    /// `recvmsg(MSG_CMSG_CLOEXEC)`—receives one message into `buf` and up to
    /// `max_fds` descriptors that came with it, close-on-exec. `(0, [])` is
    /// the end of the connection.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] when the message is longer than `buf` (it
    /// stays queued with its descriptors); [`Error::TooManyFds`] when it
    /// carried more than `max_fds` descriptors (the message is consumed
    /// and every descriptor closed); [`Error::Os`] from `recvmsg`.
    pub fn recv_with_fds(&self, buf: &mut [u8], max_fds: usize) -> Result<(usize, Vec<OwnedFd>)> {
        self.inner.recv_with_fds(buf, max_fds, true)
    }

    /// `fcntl(F_SETFL, O_NONBLOCK)`—makes [`Read`], [`Write`] and the
    /// descriptor calls fail with [`io::ErrorKind::WouldBlock`] instead of
    /// waiting. [`Messenger`] calls wait as their [`Wait`] says either way.
    ///
    /// # Errors
    /// [`Error::Os`] from `fcntl`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<()> {
        self.inner.set_nonblocking(nonblocking)
    }

    /// `shutdown(how)`—ends receiving, sending or both.
    ///
    /// # Errors
    /// [`Error::Os`] from `shutdown`.
    pub fn shutdown(&self, how: std::net::Shutdown) -> Result<()> {
        self.inner.shutdown(how)
    }
}

fn empty_message(socket: &Socket) -> Error {
    Error::Unsupported {
        object: socket.object().into(),
        what: "an empty message".into(),
        reason: "on a seqpacket socket it cannot be told from the end of the connection".into(),
    }
}

/// `socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC)`—two connected ends
/// that keep message boundaries.
///
/// # Errors
/// [`Error::Os`] from `socketpair`.
///
/// # Examples
/// ```
/// use unipc::message::Messenger;
///
/// let (a, b) = unipc::stream::seqpacket::pair()?;
/// a.send(b"hi")?;
/// assert_eq!(b.recv()?, b"hi");
/// # Ok::<(), unipc::Error>(())
/// ```
///
/// # References
/// socketpair(2)
#[doc(alias = "socketpair")]
pub fn pair() -> Result<(Conn, Conn)> {
    let (a, b) = Socket::pair(Kind::Seqpacket)?;
    Ok((Conn { inner: a }, Conn { inner: b }))
}

/// Removes a stale `unix-seqpacket:` socket file: as
/// [`unix::remove_stale`], with errors naming the `unix-seqpacket:`
/// endpoint.
///
/// # Errors
/// As [`unix::remove_stale`].
#[doc(alias = "unlink")]
pub fn remove_stale(addr: &UnixAddr) -> Result<()> {
    crate::unix_socket::remove_stale(addr, &endpoint_label(Kind::Seqpacket, addr))
}

impl Messenger for Conn {
    fn object(&self) -> ObjectName {
        self.inner.object_name()
    }

    /// The largest message this end can send, `SO_SNDBUF - 32`; no count of
    /// messages (the socket counts buffer bytes).
    fn limits(&self) -> Result<Limits> {
        Ok(Limits {
            max_message_size: self.inner.max_message_size()?,
            max_messages: None,
        })
    }

    /// The largest message an unprivileged peer can send
    /// (`max(2 * wmem_max, wmem_default) - 32`): a buffer this large is
    /// received in one call (see the [module docs](self#receiving)). When
    /// `/proc/sys/net/core` cannot be read, this end's own limit.
    fn recv_buffer_hint(&self) -> Result<usize> {
        match crate::sys::socket::unprivileged_message_ceiling() {
            Some(most) => Ok(most),
            None => self.inner.max_message_size(),
        }
    }

    /// Sends one message; only [`Tag::None`] is accepted.
    fn send_tagged(&self, message: &[u8], tag: Tag, wait: Wait) -> Result<()> {
        if tag != Tag::None {
            return Err(unsupported_tag(self.object(), tag, "no tag"));
        }
        if message.is_empty() {
            return Err(empty_message(&self.inner));
        }
        self.inner.send_message(message, Pace::Wait(wait))
    }

    /// Receives one message; the end of the connection is an [`Error::Os`]
    /// of kind [`io::ErrorKind::UnexpectedEof`]. One call when `buf` holds
    /// [`Messenger::recv_buffer_hint`] bytes, else a peek first (see the
    /// [module docs](self#receiving)).
    fn recv_into(&self, buf: &mut [u8], wait: Wait) -> Result<Received> {
        match self.inner.recv_message(buf, Pace::Wait(wait))? {
            Some(len) => Ok(Received {
                len,
                tag: Tag::None,
            }),
            None => Err(peer_closed(self.inner.object())),
        }
    }

    /// One `recv(MSG_TRUNC)` whatever the size of `buf`: a message longer
    /// than `buf` is consumed and reported as [`Error::BufferTooSmall`]
    /// with its real size. The end of the connection is as for
    /// [`Messenger::recv_into`].
    fn recv_into_or_discard(&self, buf: &mut [u8], wait: Wait) -> Result<Received> {
        match self.inner.recv_message_or_discard(buf, Pace::Wait(wait))? {
            Some(len) => Ok(Received {
                len,
                tag: Tag::None,
            }),
            None => Err(peer_closed(self.inner.object())),
        }
    }

    /// Sized from the waiting message itself rather than from the limits.
    fn recv_vec(&self, wait: Wait) -> Result<(Vec<u8>, Tag)> {
        loop {
            let Some(len) = self.inner.peek_len(Pace::Wait(wait))? else {
                return Err(peer_closed(self.inner.object()));
            };
            let mut buf = vec![0; len];
            match self.recv_into(&mut buf, Wait::Never) {
                Ok(got) => {
                    buf.truncate(got.len);
                    return Ok((buf, Tag::None));
                }
                // Another reader took it, or a longer one came first.
                Err(Error::Empty { .. }) | Err(Error::BufferTooSmall { .. }) => continue,
                Err(other) => return Err(other),
            }
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Read for &Conn {
    /// Receives one whole message; 0 is the end of the connection.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.inner.recv_message(buf, Pace::AsFd)?.unwrap_or(0))
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &Conn {
    /// Sends `buf` as one message (nothing for an empty `buf`).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.inner.send_message(buf, Pace::AsFd)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for Conn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.fd()
    }
}

impl TryFrom<OwnedFd> for Conn {
    type Error = AdoptError;

    /// Adopts a UNIX seqpacket socket that is not listening.
    ///
    /// # Errors
    /// [`Error::WrongType`] for anything else; the descriptor comes back
    /// inside the [`AdoptError`].
    fn try_from(fd: OwnedFd) -> std::result::Result<Conn, AdoptError> {
        let want = Want::Socket(Family::Unix, SocketKind::Seqpacket, false);
        let fd = adopt::check(fd, "unix-seqpacket", "a UNIX seqpacket socket", want)?;
        Ok(Conn {
            inner: Socket::from_fd(Kind::Seqpacket, fd),
        })
    }
}

impl From<Conn> for OwnedFd {
    fn from(conn: Conn) -> OwnedFd {
        conn.inner.into_fd()
    }
}

/// The UNIX seqpacket socket's entry in the facility registry.
pub static FACILITY: Facility = Facility {
    name: "unix-seqpacket",
    scheme: Some("unix-seqpacket"),
    summary: "UNIX seqpacket socket: connected, reliable, ordered messages",
    addressing: "unix-seqpacket:PATH, unix-seqpacket:@NAME",
    properties: Properties {
        shape: Shape::Messages,
        direction: Direction::TwoWay,
        tags: Tags::None,
        destructive_read: true,
        peek: true,
        naming: Naming::PathOrAbstract,
        reach: Reach::Host,
        persistence: Persistence::Process,
        permissions: "socket file mode (path); none (abstract); peer credentials",
        reliable: true,
        after_crash: "closed by the kernel: the peer reads EOF; the socket file stays",
    },
    limits: || {
        vec![
            LiveLimit::from_proc(
                "wmem_default",
                "/proc/sys/net/core/wmem_default",
                " bytes (send buffer)",
            ),
            LiveLimit::from_proc(
                "wmem_max",
                "/proc/sys/net/core/wmem_max",
                " bytes (largest send buffer)",
            ),
        ]
    },
    max_message: || {
        let sndbuf: usize = std::fs::read_to_string("/proc/sys/net/core/wmem_default")
            .ok()?
            .trim()
            .parse()
            .ok()?;
        // The kernel keeps 32 bytes of each send buffer for bookkeeping.
        Some(MessageCap {
            bytes: sndbuf.saturating_sub(32),
            set_by: "the send buffer, wmem_default in /proc/sys/net/core/wmem_default, less 32"
                .to_owned(),
        })
    },
    #[cfg(feature = "bench")]
    connector: Some(&Connector),
};

#[cfg(feature = "bench")]
use crate::facility::{self, Link, LinkOptions, MessageLink, PendingLink, RawIo, Ticket};

/// Joins two processes through a listener at `seqpacket` in the scratch
/// directory.
#[cfg(feature = "bench")]
struct Connector;

#[cfg(feature = "bench")]
struct Pending(Listener);

#[cfg(feature = "bench")]
fn raw_io<'a>(tx: &'a Conn, rx: &'a Conn) -> RawIo<'a> {
    RawIo::SendRecv {
        read: rx.as_fd(),
        write: tx.as_fd(),
    }
}

#[cfg(feature = "bench")]
fn message_link(conn: Conn) -> Result<Box<dyn Link>> {
    let object = Messenger::object(&conn);
    let copy = rustix::io::fcntl_dupfd_cloexec(conn.as_fd(), 0)
        .map_err(|e| Error::os(object, "dup", e))?;
    Ok(Box::new(MessageLink::direct(
        Conn::try_from(copy)?,
        conn,
        raw_io,
    )))
}

#[cfg(feature = "bench")]
impl facility::Connector for Connector {
    fn prepare(
        &self,
        scratch: &std::path::Path,
        _: &LinkOptions,
        announce: &mut dyn FnMut(&facility::CreatedObject),
    ) -> Result<(Box<dyn PendingLink>, Ticket)> {
        let addr = UnixAddr::path(scratch.join("seqpacket"))?;
        announce(&facility::CreatedObject::Path(scratch.join("seqpacket")));
        let listener = Listener::bind(&addr)?;
        let address = addr.to_string();
        Ok((Box::new(Pending(listener)), Ticket::address(address)))
    }

    fn join(&self, ticket: Ticket, _: &LinkOptions) -> Result<Box<dyn Link>> {
        message_link(Conn::connect(&ticket.address.parse()?)?)
    }
}

#[cfg(feature = "bench")]
impl PendingLink for Pending {
    fn establish(self: Box<Self>) -> Result<Box<dyn Link>> {
        message_link(self.0.accept()?)
    }
}
