//! UNIX-domain stream sockets (`unix:PATH`, `unix:@NAME`) and socketpairs:
//! a two-way byte stream between processes on this host, with peer
//! credentials and descriptor passing.
//!
//! This is the byte-stream member of the [`stream`](crate::stream) family;
//! [`seqpacket`](super::seqpacket) is the same socket keeping message
//! boundaries; the two share one implementation (`unix_core.rs`).
//!
//! - [`Listener`] binds a path or an abstract name and accepts
//!   [`Stream`]s; [`ListenerOptions`] sets the backlog, the file's mode
//!   (exactly as asked, whatever the umask) and what happens to the file.
//! - [`Stream::connect`] connects; [`pair`] makes two connected ends
//!   (`socketpair`) to hand to a child.
//! - [`Stream::peer_credentials`] says who is at the other end
//!   (`SO_PEERCRED`); [`Stream::send_with_fds`] and
//!   [`Stream::recv_with_fds`] pass open descriptors (`SCM_RIGHTS`).
//!
//! A socket file is managed the way the classic daemons do it: binding over
//! a file nobody listens on (left by a process that was killed) removes it
//! first, binding over a live listener fails, and a path that holds
//! anything but a socket is left alone. A listener removes its file on drop
//! only if the file is still the one it bound; [`remove_stale`] removes a
//! file left behind. This life of a socket file is shared with
//! [`seqpacket`](super::seqpacket) and
//! [`message::dgram`](crate::message::dgram) (in `src/unix_socket.rs`,
//! whose doc gives the design): a mode is set on the inode bound, never
//! through a link swapped in at the path.
//!
//! # References
//! unix(7), socket(2), bind(2), listen(2), accept(2), connect(2),
//! socketpair(2), sendmsg(2), recvmsg(2), cmsg(3)

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use super::unix_core::{endpoint_label, Bound, Config, Pace, Socket};
use crate::adopt::{self, Want};
#[cfg(feature = "bench")]
use crate::endpoint::Endpoint;
use crate::facility::{
    Direction, Facility, LiveLimit, Naming, Persistence, Properties, Reach, Shape, Tags,
};
use crate::name::UnixAddr;
use crate::sys::fd::{Family, SocketKind};
use crate::sys::socket::{Kind, SCM_MAX_FD};
use crate::unix_socket;
use crate::{AdoptError, Mode, Result};
// The docs link to `Error`; only the bench's connectors use it in code.
#[cfg(any(doc, feature = "bench"))]
use crate::Error;

/// Who is at the other end of a connection, as the kernel recorded it when
/// the connection was made (`SO_PEERCRED`).
///
/// The peer cannot forge it: it is the connecting (or `socketpair`-calling)
/// process's pid and effective ids at `connect` time.
///
/// ```
/// let (a, _b) = unipc::stream::unix::pair()?;
/// let cred = a.peer_credentials()?;
/// assert_eq!(cred.pid, std::process::id());
/// # Ok::<(), unipc::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Credentials {
    /// The peer's process id; 0 when that process is not visible from this
    /// process's pid namespace.
    pub pid: u32,
    /// The peer's effective user id.
    pub uid: u32,
    /// The peer's effective group id.
    pub gid: u32,
}

// ---------------------------------------------------------------------------
// Public API.

/// Options for a [`Listener`]: backlog, file mode, and what happens to the
/// socket file.
///
/// ```
/// use unipc::name::UnixAddr;
/// use unipc::stream::unix::ListenerOptions;
///
/// let path = std::env::temp_dir().join(format!("unipc-doc-opts-{}.sock", std::process::id()));
/// let listener = ListenerOptions::new()
///     .mode(unipc::Mode::OWNER_RW)
///     .backlog(16)
///     .bind(&UnixAddr::path(&path)?)?;
/// # use std::os::unix::fs::PermissionsExt;
/// assert_eq!(std::fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
/// drop(listener); // removes the file
/// assert!(!path.exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct ListenerOptions {
    pub(crate) config: Config,
}

impl ListenerOptions {
    /// Defaults: backlog 128, mode `0o777` less the umask, the file removed
    /// on drop, a stale file reclaimed.
    pub fn new() -> Self {
        Self::default()
    }

    /// `listen(fd, backlog)`—how many connections may wait to be accepted;
    /// the kernel caps it at `net.core.somaxconn`.
    pub fn backlog(mut self, backlog: u32) -> Self {
        self.config.backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
        self
    }

    /// The socket file's permission bits (`0o777` and below). The file gets
    /// exactly this mode whatever the umask: it is created with the mode
    /// less the umask (never looser), then the file at the path is opened
    /// without following a link, checked to be the one this bind created,
    /// and its inode given the mode; a link swapped in meanwhile is never
    /// followed (a path replaced during the bind fails with
    /// [`Error::WrongType`]). Connecting needs write permission on the
    /// file.
    ///
    /// Binding fails with [`Error::Unsupported`] for an abstract address,
    /// which has no file to protect.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.config.mode = Some(mode.bits());
        self
    }

    /// Whether the listener removes its socket file on drop (default
    /// `true`). It removes it only if the path still holds the file it
    /// bound (same device and inode), never a successor's.
    pub fn remove_on_drop(mut self, remove: bool) -> Self {
        self.config.remove_on_drop = remove;
        self
    }

    /// Whether a stale socket file at the path (one that refuses
    /// connections: its listener died) is removed so the bind succeeds
    /// (default `true`). With `false` the bind fails instead.
    pub fn reclaim_stale(mut self, reclaim: bool) -> Self {
        self.config.reclaim_stale = reclaim;
        self
    }

    /// `socket` + `bind` + `listen`—binds a stream listener at `addr`.
    ///
    /// # Errors
    /// - [`Error::WrongType`] when the path holds something that is not a
    ///   socket (a regular file, a directory, a symbolic link); it is left
    ///   untouched. Also when, after the bind, the path no longer names the
    ///   socket file this bind created (another process replaced it):
    ///   nothing that is not ours is changed or removed.
    /// - [`Error::Os`] for `bind` with `EADDRINUSE` ("another process
    ///   listens there") when a live socket answers at the address.
    /// - [`Error::Unsupported`] for a [`mode`](Self::mode) on an abstract
    ///   address.
    /// - [`Error::Os`] for any other failure (a missing directory, no
    ///   permission to create the file).
    pub fn bind(&self, addr: &UnixAddr) -> Result<Listener> {
        Ok(Listener {
            inner: Bound::bind(Kind::Stream, addr, &self.config)?,
        })
    }
}

/// A UNIX stream socket listening at a path or an abstract name.
///
/// Dropping it closes the socket and removes its file (see
/// [`ListenerOptions::remove_on_drop`]). The descriptor is kept in
/// non-blocking mode: blocking accepts wait in `poll(2)`, so
/// [`accept_timeout`](Self::accept_timeout) never overstays even when
/// another process accepts from the same socket.
///
/// ```
/// use std::io::{Read, Write};
/// use unipc::name::UnixAddr;
/// use unipc::stream::unix;
///
/// let addr: UnixAddr = format!("@unipc-doc-listener-{}", std::process::id()).parse()?;
/// let listener = unix::Listener::bind(&addr)?;
/// let mut client = unix::Stream::connect(&addr)?;
/// let mut server = listener.accept()?;
/// client.write_all(b"ping")?;
/// let mut got = [0; 4];
/// server.read_exact(&mut got)?;
/// assert_eq!(&got, b"ping");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[doc(alias = "listen")]
#[derive(Debug)]
pub struct Listener {
    inner: Bound,
}

super::unix_listener!(Listener, Stream);

/// A connected UNIX stream socket: a two-way byte stream.
///
/// Reads and writes go through [`Read`] and [`Write`] (also on `&Stream`);
/// writes to a closed peer fail with [`io::ErrorKind::BrokenPipe`] and never
/// raise SIGPIPE.
///
/// ```
/// use std::io::{Read, Write};
///
/// let (mut a, mut b) = unipc::stream::unix::pair()?;
/// a.write_all(b"hello")?;
/// drop(a);
/// let mut got = String::new();
/// b.read_to_string(&mut got)?;
/// assert_eq!(got, "hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Stream {
    inner: Socket,
}

impl Stream {
    /// `socket` + `connect`—connects to a listener at `addr`.
    ///
    /// # Errors
    /// [`Error::Os`] from `connect`: `ENOENT` ("no socket file there"),
    /// `ECONNREFUSED` ("no process listens there"), `EACCES` (no write
    /// permission on the socket file).
    ///
    /// # References
    /// connect(2), unix(7)
    pub fn connect(addr: &UnixAddr) -> Result<Stream> {
        Socket::connect(Kind::Stream, addr).map(|inner| Stream { inner })
    }

    /// `getsockopt(SO_PEERCRED)`—the pid, uid and gid of the process at the
    /// other end, as of when the connection was made.
    ///
    /// # Errors
    /// [`Error::Os`] from `getsockopt`.
    ///
    /// # References
    /// unix(7) (`SO_PEERCRED`)
    #[doc(alias = "SO_PEERCRED")]
    pub fn peer_credentials(&self) -> Result<Credentials> {
        self.inner.peer_credentials()
    }

    /// `sendmsg(SCM_RIGHTS)`—sends `data` with the descriptors `fds`
    /// attached to its first byte; the peer receives duplicates of them.
    /// Returns the bytes sent, as [`Write::write`] does; the descriptors went
    /// with them.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] for more than 253 descriptors (`SCM_MAX_FD`);
    /// [`Error::Unsupported`] for descriptors with empty `data` (a stream
    /// would drop them); [`Error::Os`] from `sendmsg` (`EPIPE` when the peer
    /// closed).
    ///
    /// # Examples
    /// ```
    /// use std::io::{Read, Write};
    /// use std::os::fd::AsFd;
    /// use unipc::stream::unix;
    ///
    /// let (a, b) = unix::pair()?;
    /// // Any descriptor will do; here, one end of another connection.
    /// let (mut mine, passed) = unix::pair()?;
    /// a.send_with_fds(b"x", &[passed.as_fd()])?;
    /// drop(passed);
    ///
    /// let mut buf = [0; 1];
    /// let (n, mut fds) = b.recv_with_fds(&mut buf, 1)?;
    /// assert_eq!((n, fds.len()), (1, 1));
    /// let mut received = unix::Stream::try_from(fds.pop().unwrap())?;
    /// received.write_all(b"via fd")?;
    /// let mut got = [0; 6];
    /// mine.read_exact(&mut got)?;
    /// assert_eq!(&got, b"via fd");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # References
    /// unix(7) (`SCM_RIGHTS`), sendmsg(2), cmsg(3)
    #[doc(alias = "SCM_RIGHTS")]
    #[doc(alias = "sendmsg")]
    pub fn send_with_fds(&self, data: &[u8], fds: &[BorrowedFd<'_>]) -> Result<usize> {
        self.inner.send_with_fds(data, fds, Pace::AsFd)
    }

    /// `recvmsg(MSG_CMSG_CLOEXEC)`—receives bytes into `buf` and up to
    /// `max_fds` descriptors that came with them, close-on-exec. A return
    /// of `(0, [])` is the end of the stream.
    ///
    /// # Errors
    /// [`Error::TooManyFds`] when the peer sent more descriptors than
    /// `max_fds`: every one that arrived is closed (the kernel closed the
    /// rest), and the bytes that came with them were consumed, so the
    /// stream's framing is lost; treat the connection as broken.
    /// [`Error::Os`] from `recvmsg`.
    ///
    /// # References
    /// unix(7) (`SCM_RIGHTS`), recvmsg(2), cmsg(3)
    #[doc(alias = "recvmsg")]
    pub fn recv_with_fds(&self, buf: &mut [u8], max_fds: usize) -> Result<(usize, Vec<OwnedFd>)> {
        self.inner.recv_with_fds(buf, max_fds, false)
    }

    /// `fcntl(F_SETFL, O_NONBLOCK)`—makes reads and writes fail with
    /// [`io::ErrorKind::WouldBlock`] instead of waiting.
    ///
    /// # Errors
    /// [`Error::Os`] from `fcntl`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<()> {
        self.inner.set_nonblocking(nonblocking)
    }

    /// `shutdown(how)`—ends reading, writing (the peer reads end of stream)
    /// or both, for every process sharing the socket.
    ///
    /// # Errors
    /// [`Error::Os`] from `shutdown`.
    ///
    /// # References
    /// shutdown(2)
    pub fn shutdown(&self, how: std::net::Shutdown) -> Result<()> {
        self.inner.shutdown(how)
    }
}

/// `socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC)`—two connected stream
/// ends, to keep one and hand the other to a child.
///
/// # Errors
/// [`Error::Os`] from `socketpair` (out of descriptors).
///
/// # Examples
/// ```
/// use std::io::{Read, Write};
///
/// let (mut a, mut b) = unipc::stream::unix::pair()?;
/// b.write_all(b"pong")?;
/// let mut got = [0; 4];
/// a.read_exact(&mut got)?;
/// assert_eq!(&got, b"pong");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # References
/// socketpair(2)
#[doc(alias = "socketpair")]
pub fn pair() -> Result<(Stream, Stream)> {
    let (a, b) = Socket::pair(Kind::Stream)?;
    Ok((Stream { inner: a }, Stream { inner: b }))
}

/// Removes a stale socket file: `unlink(path)` only if the path names a
/// socket (a symbolic link is not followed) to which no socket of any type
/// is bound, as a listener killed before it could remove its file leaves.
/// For a socket file of any type; errors name it as a `unix:` endpoint
/// ([`seqpacket::remove_stale`](super::seqpacket::remove_stale) and
/// [`dgram::remove_stale`](crate::message::dgram::remove_stale) name it as
/// theirs).
///
/// The file is opened with `O_PATH | O_NOFOLLOW` and that inode probed
/// with a `connect` (refused: nobody is bound); the path is checked to
/// still name it just before the unlink.
///
/// # Errors
/// - [`Error::Os`] for `remove` with `EADDRINUSE` ("a process is
///   listening") when a socket is bound to the file; it is left alone.
/// - [`Error::WrongType`] when the path holds anything but a socket (a
///   regular file, a directory, a symbolic link); it is left alone.
/// - [`Error::Os`] with `ENOENT` when nothing is there; with the kernel's
///   error when the file cannot be probed or removed; with a message saying
///   so when the path was replaced while it was probed (left alone).
/// - [`Error::Unsupported`] for an abstract address, which has no file (its
///   name goes when its last socket closes).
///
/// # Examples
/// ```
/// use unipc::name::UnixAddr;
/// use unipc::stream::unix;
///
/// let path = std::env::temp_dir().join(format!("unipc-doc-rm-{}.sock", std::process::id()));
/// let addr = UnixAddr::path(&path)?;
/// let listener = unix::ListenerOptions::new().remove_on_drop(false).bind(&addr)?;
/// // While it listens, the file is left alone.
/// assert!(unix::remove_stale(&addr).is_err());
/// drop(listener); // the file stays, stale
/// unix::remove_stale(&addr)?;
/// assert!(!path.exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # References
/// unlink(2), connect(2), unix(7)
#[doc(alias = "unlink")]
pub fn remove_stale(addr: &UnixAddr) -> Result<()> {
    unix_socket::remove_stale(addr, &endpoint_label(Kind::Stream, addr))
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.fd()
    }
}

impl TryFrom<OwnedFd> for Stream {
    type Error = AdoptError;

    /// Adopts a UNIX stream socket that is not listening (one inherited,
    /// or received with [`Stream::recv_with_fds`]).
    ///
    /// # Errors
    /// [`Error::WrongType`] for anything else (a listening socket, another
    /// family or type, a file); the descriptor comes back inside the
    /// [`AdoptError`].
    fn try_from(fd: OwnedFd) -> std::result::Result<Stream, AdoptError> {
        let want = Want::Socket(Family::Unix, SocketKind::Stream, false);
        let fd = adopt::check(fd, "unix", "a UNIX stream socket", want)?;
        Ok(Stream {
            inner: Socket::from_fd(Kind::Stream, fd),
        })
    }
}

impl From<Stream> for OwnedFd {
    fn from(stream: Stream) -> OwnedFd {
        stream.inner.into_fd()
    }
}

fn unix_limits() -> Vec<LiveLimit> {
    vec![
        LiveLimit::from_proc(
            "wmem_default",
            "/proc/sys/net/core/wmem_default",
            " bytes (socket send buffer)",
        ),
        LiveLimit::from_proc(
            "somaxconn",
            "/proc/sys/net/core/somaxconn",
            " connections (listen backlog)",
        ),
        LiveLimit {
            name: "SCM_MAX_FD",
            value: format!("{SCM_MAX_FD} descriptors per message"),
            source: "kernel",
        },
        LiveLimit {
            name: "sun_path",
            value: "107 bytes".to_owned(),
            source: "sockaddr_un",
        },
    ]
}

const UNIX_PROPERTIES: Properties = Properties {
    shape: Shape::ByteStream,
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
};

/// The UNIX stream socket's entry in the facility registry.
pub static FACILITY: Facility = Facility {
    name: "unix",
    scheme: Some("unix"),
    summary: "UNIX stream socket: two-way byte stream, passes descriptors and credentials",
    addressing: "unix:PATH, unix:@NAME (abstract)",
    properties: UNIX_PROPERTIES,
    limits: unix_limits,
    max_message: || None,
    #[cfg(feature = "bench")]
    connector: Some(&PathConnector),
};

/// The socketpair's entry in the facility registry.
pub static PAIR_FACILITY: Facility = Facility {
    name: "socketpair",
    scheme: None,
    summary: "connected pair of UNIX stream sockets for related processes",
    addressing: "none: one end is inherited or passed",
    properties: Properties {
        naming: Naming::None,
        reach: Reach::RelatedProcesses,
        permissions: "whoever holds a descriptor",
        after_crash: "closed by the kernel: the peer reads EOF",
        ..UNIX_PROPERTIES
    },
    limits: unix_limits,
    max_message: || None,
    #[cfg(feature = "bench")]
    connector: Some(&PairConnector),
};

#[cfg(feature = "bench")]
use std::path::Path;

#[cfg(feature = "bench")]
use crate::facility::{self, Link, LinkOptions, PendingLink, Ticket};

/// Joins two processes through a listener at `sock` in the scratch directory.
#[cfg(feature = "bench")]
struct PathConnector;

#[cfg(feature = "bench")]
struct PendingAccept(Listener);

#[cfg(feature = "bench")]
impl facility::Connector for PathConnector {
    fn prepare(
        &self,
        scratch: &Path,
        _: &LinkOptions,
        announce: &mut dyn FnMut(&facility::CreatedObject),
    ) -> Result<(Box<dyn PendingLink>, Ticket)> {
        let addr = UnixAddr::path(scratch.join("sock"))?;
        announce(&facility::CreatedObject::Path(scratch.join("sock")));
        let listener = Listener::bind(&addr)?;
        let address = addr.to_string();
        Ok((Box::new(PendingAccept(listener)), Ticket::address(address)))
    }

    fn join(&self, ticket: Ticket, _: &LinkOptions) -> Result<Box<dyn Link>> {
        let addr: UnixAddr = ticket.address.parse()?;
        let stream = Stream::connect(&addr)?;
        facility::socket_link(Endpoint::Unix(addr).to_string(), stream)
    }
}

#[cfg(feature = "bench")]
impl PendingLink for PendingAccept {
    fn establish(self: Box<Self>) -> Result<Box<dyn Link>> {
        let stream = self.0.accept()?;
        facility::socket_link("unix", stream)
    }
}

/// Joins two processes through a socketpair; the peer inherits one end.
#[cfg(feature = "bench")]
struct PairConnector;

#[cfg(feature = "bench")]
struct PendingPair(Stream);

#[cfg(feature = "bench")]
impl facility::Connector for PairConnector {
    fn prepare(
        &self,
        _scratch: &Path,
        _: &LinkOptions,
        _announce: &mut dyn FnMut(&facility::CreatedObject),
    ) -> Result<(Box<dyn PendingLink>, Ticket)> {
        let (ours, theirs) = pair()?;
        Ok((
            Box::new(PendingPair(ours)),
            Ticket {
                address: String::new(),
                fds: vec![theirs.into()],
            },
        ))
    }

    fn join(&self, ticket: Ticket, _: &LinkOptions) -> Result<Box<dyn Link>> {
        let Some(fd) = ticket.fds.into_iter().next() else {
            return Err(Error::Unsupported {
                object: "socketpair".into(),
                what: "a ticket without a descriptor".to_owned(),
                reason: "the peer inherits one end of the pair".to_owned(),
            });
        };
        facility::socket_link("socketpair", Stream::try_from(fd)?)
    }
}

#[cfg(feature = "bench")]
impl PendingLink for PendingPair {
    fn establish(self: Box<Self>) -> Result<Box<dyn Link>> {
        facility::socket_link("socketpair", self.0)
    }
}
