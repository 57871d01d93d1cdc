//! UNIX-domain stream sockets (`unix:PATH`, `unix:@NAME`) and socketpairs:
//! a two-way byte stream between processes on this host, with peer
//! credentials and descriptor passing.
//!
//! This is the byte-stream member of the [`stream`](crate::stream) family;
//! [`seqpacket`](super::seqpacket) is the same socket keeping message
//! boundaries, and shares this module's implementation.
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

use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::PollFlags;
use rustix::io::Errno;

use crate::endpoint::Endpoint;
use crate::facility::{
    self, Direction, Facility, Link, LinkOptions, LiveLimit, Naming, PendingLink, Persistence,
    Properties, Reach, Shape, Tags, Ticket,
};
use crate::message::Wait;
use crate::name::UnixAddr;
use crate::sys::fd::set_nonblocking;
use crate::sys::socket::{self as sys, Kind, PEER_CLOSED, READABLE, SCM_MAX_FD, WRITABLE};
use crate::unix_socket::{self, BindSpec, Flavor, SocketFile};
use crate::{Error, Result};

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
// Shared implementation of stream and seqpacket sockets.

/// How long an operation on a connected socket may wait.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pace {
    /// As the descriptor's O_NONBLOCK says: block, or fail with `EAGAIN`.
    AsFd,
    /// As a [`Wait`] says, whatever the descriptor's mode.
    Wait(Wait),
}

/// The label a socket that did not come from an address is known by.
fn anonymous_label(kind: Kind, origin: &str) -> Arc<str> {
    Arc::from(format!("{} {origin}", scheme(kind)))
}

fn scheme(kind: Kind) -> &'static str {
    match kind {
        Kind::Stream => "unix",
        Kind::Seqpacket => "unix-seqpacket",
    }
}

fn endpoint_label(kind: Kind, addr: &UnixAddr) -> Arc<str> {
    let endpoint = match kind {
        Kind::Stream => Endpoint::Unix(addr.clone()),
        Kind::Seqpacket => Endpoint::UnixSeqpacket(addr.clone()),
    };
    Arc::from(endpoint.to_string())
}

/// The error for a receive that found the connection closed, where a
/// message facility cannot return "0 bytes" as a normal result.
pub(crate) fn peer_closed(object: &str) -> Error {
    Error::os(
        object,
        "recv",
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the peer closed the connection",
        ),
    )
}

/// A connected UNIX socket of either kind, and its name for errors.
pub(crate) struct Socket {
    fd: OwnedFd,
    object: Arc<str>,
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("fd", &self.fd)
            .field("object", &&*self.object)
            .finish()
    }
}

impl Socket {
    pub(crate) fn from_fd(kind: Kind, fd: OwnedFd) -> Socket {
        Socket {
            fd,
            object: anonymous_label(kind, "socket"),
        }
    }

    pub(crate) fn into_fd(self) -> OwnedFd {
        self.fd
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub(crate) fn object(&self) -> &str {
        &self.object
    }

    fn os(&self, op: &'static str, err: impl Into<io::Error>) -> Error {
        Error::os(&*self.object, op, err)
    }

    pub(crate) fn connect(kind: Kind, addr: &UnixAddr) -> Result<Socket> {
        let object = endpoint_label(kind, addr);
        let fd = sys::socket(kind, false).map_err(|e| Error::os(&*object, "socket", e))?;
        let sockaddr = sys::sockaddr(addr).map_err(|e| Error::os(&*object, "connect", e))?;
        loop {
            match sys::connect(fd.as_fd(), &sockaddr) {
                Ok(()) => break,
                Err(Errno::INTR) => continue,
                Err(err) => return Err(Error::os(&*object, "connect", err)),
            }
        }
        Ok(Socket { fd, object })
    }

    pub(crate) fn pair(kind: Kind) -> Result<(Socket, Socket)> {
        let object = anonymous_label(kind, "socketpair");
        let (a, b) = sys::socketpair(kind).map_err(|e| Error::os(&*object, "socketpair", e))?;
        Ok((
            Socket {
                fd: a,
                object: object.clone(),
            },
            Socket { fd: b, object },
        ))
    }

    pub(crate) fn peer_credentials(&self) -> Result<Credentials> {
        let (pid, uid, gid) =
            sys::peer_credentials(self.fd()).map_err(|e| self.os("getsockopt SO_PEERCRED", e))?;
        Ok(Credentials {
            pid: u32::try_from(pid).unwrap_or(0),
            uid,
            gid,
        })
    }

    pub(crate) fn set_nonblocking(&self, nonblocking: bool) -> Result<()> {
        set_nonblocking(self.fd(), nonblocking).map_err(|e| self.os("fcntl F_SETFL", e))
    }

    pub(crate) fn shutdown(&self, how: std::net::Shutdown) -> Result<()> {
        let how = match how {
            std::net::Shutdown::Read => rustix::net::Shutdown::Read,
            std::net::Shutdown::Write => rustix::net::Shutdown::Write,
            std::net::Shutdown::Both => rustix::net::Shutdown::Both,
        };
        sys::shutdown(self.fd(), how).map_err(|e| self.os("shutdown", e))
    }

    /// Runs `op` (told whether to pass `MSG_DONTWAIT`) until it stops
    /// failing with `EAGAIN`, for as long as `pace` allows. `EAGAIN` after
    /// the allowance is [`Error::Empty`]/[`Error::Full`] for
    /// `Wait::Never`, [`Error::TimedOut`] for `Wait::For`, and the OS error
    /// itself for `Pace::AsFd` (so `Read`/`Write` report `WouldBlock`).
    pub(crate) fn with_wait<T>(
        &self,
        events: PollFlags,
        pace: Pace,
        mut op: impl FnMut(bool) -> rustix::io::Result<T>,
        on_error: impl Fn(Errno) -> Error,
    ) -> Result<T> {
        let deadline = match pace {
            Pace::Wait(Wait::For(timeout)) => Some((timeout, Instant::now().checked_add(timeout))),
            _ => None,
        };
        loop {
            let dontwait = matches!(pace, Pace::Wait(Wait::Never) | Pace::Wait(Wait::For(_)));
            match op(dontwait) {
                Ok(value) => return Ok(value),
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) => {}
                Err(err) => return Err(on_error(err)),
            }
            let timeout = match (pace, deadline) {
                (Pace::AsFd, _) => return Err(on_error(Errno::AGAIN)),
                (Pace::Wait(Wait::Never), _) => {
                    let object = self.object.to_string();
                    return Err(if events == READABLE {
                        Error::Empty { object }
                    } else {
                        Error::Full { object }
                    });
                }
                (Pace::Wait(Wait::For(timeout)), Some((_, Some(at)))) => {
                    let remaining = at.saturating_duration_since(Instant::now());
                    if remaining.is_zero() {
                        return Err(Error::TimedOut {
                            object: self.object.to_string(),
                            timeout,
                        });
                    }
                    Some(remaining)
                }
                // Forever, or a timeout too long to reach.
                _ => None,
            };
            sys::poll_one(self.fd(), events, timeout).map_err(|e| self.os("poll", e))?;
        }
    }

    /// Checks a descriptor-carrying send before any system call.
    fn check_fds(&self, data: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
        if fds.len() > SCM_MAX_FD {
            return Err(Error::LimitExceeded {
                object: self.object.to_string(),
                what: "descriptors in one message",
                requested: fds.len() as u64,
                limit: SCM_MAX_FD as u64,
                set_in: "SCM_MAX_FD, fixed in the kernel",
            });
        }
        if data.is_empty() && !fds.is_empty() {
            return Err(Error::Unsupported {
                object: self.object.to_string(),
                what: "sending descriptors with no data".into(),
                reason: "a UNIX stream drops descriptors sent with zero bytes; send at least one byte with them".into(),
            });
        }
        Ok(())
    }

    /// `sendmsg` with `SCM_RIGHTS`; returns the bytes sent.
    pub(crate) fn send_with_fds(
        &self,
        data: &[u8],
        fds: &[BorrowedFd<'_>],
        pace: Pace,
    ) -> Result<usize> {
        self.check_fds(data, fds)?;
        self.with_wait(
            WRITABLE,
            pace,
            |dontwait| sys::send_with_fds(self.fd(), data, fds, dontwait),
            |err| self.send_error(err, data.len()),
        )
    }

    /// A send error: `EMSGSIZE` becomes [`Error::MessageTooLarge`] with the
    /// limit read from the socket.
    fn send_error(&self, err: Errno, size: usize) -> Error {
        if err == Errno::MSGSIZE {
            if let Ok(limit) = self.max_message_size() {
                return Error::MessageTooLarge {
                    object: self.object.to_string(),
                    size,
                    limit,
                };
            }
        }
        self.os("send", err)
    }

    /// The largest message a seqpacket socket accepts from this end.
    pub(crate) fn max_message_size(&self) -> Result<usize> {
        let sndbuf =
            sys::send_buffer_size(self.fd()).map_err(|e| self.os("getsockopt SO_SNDBUF", e))?;
        Ok(sndbuf.saturating_sub(sys::SNDBUF_OVERHEAD))
    }

    /// `recvmsg` with room for `max_fds` descriptors. With `boundaries`
    /// (seqpacket), a message longer than `buf` is refused before it is
    /// received.
    pub(crate) fn recv_with_fds(
        &self,
        buf: &mut [u8],
        max_fds: usize,
        boundaries: bool,
    ) -> Result<(usize, Vec<OwnedFd>)> {
        loop {
            if boundaries {
                match self.peek_len(Pace::AsFd)? {
                    // Closed: the recvmsg below returns 0 at once.
                    None => {}
                    Some(len) => self.check_fits(buf, len)?,
                }
            }
            // With boundaries the message is known to be there: never wait.
            let pace = if boundaries {
                Pace::Wait(Wait::Never)
            } else {
                Pace::AsFd
            };
            let got = match self.with_wait(
                READABLE,
                pace,
                |dontwait| sys::recv_with_fds(self.fd(), buf, max_fds, boundaries, dontwait),
                |err| self.os("recvmsg", err),
            ) {
                // Another reader of the same socket took the message peeked.
                Err(Error::Empty { .. }) => continue,
                other => other?,
            };
            if got.fds_truncated || got.fds.len() > max_fds {
                drop(got.fds);
                return Err(Error::TooManyFds {
                    object: self.object.to_string(),
                    capacity: max_fds,
                });
            }
            if got.bytes > buf.len() {
                // Another reader raced this one between peek and receive.
                return Err(self.too_small(buf, got.bytes));
            }
            return Ok((got.bytes, got.fds));
        }
    }

    fn check_fits(&self, buf: &[u8], len: usize) -> Result<()> {
        if len > buf.len() {
            return Err(self.too_small(buf, len));
        }
        Ok(())
    }

    fn too_small(&self, buf: &[u8], len: usize) -> Error {
        Error::BufferTooSmall {
            object: self.object.to_string(),
            buffer: buf.len(),
            needed: Some(len),
        }
    }

    /// The length of the next message, left queued; `None` when the peer
    /// has closed and nothing is queued.
    pub(crate) fn peek_len(&self, pace: Pace) -> Result<Option<usize>> {
        let len = self.with_wait(
            READABLE,
            pace,
            |dontwait| sys::peek_len(self.fd(), dontwait),
            |err| self.os("recv", err),
        )?;
        self.message_or_end(len)
    }

    /// A message length as read, or `None` for the end of the connection.
    ///
    /// Zero is the end of the connection or an empty message; the peer's
    /// hang-up tells them apart (an empty message followed by a close reads
    /// as the close).
    fn message_or_end(&self, len: usize) -> Result<Option<usize>> {
        if len > 0 {
            return Ok(Some(len));
        }
        let ready = sys::poll_one(self.fd(), PEER_CLOSED, Some(Duration::ZERO))
            .map_err(|e| self.os("poll", e))?;
        Ok(if ready.intersects(PEER_CLOSED) {
            None
        } else {
            Some(0)
        })
    }

    /// Receives one whole message into `buf`; `None` when the peer closed.
    ///
    /// A buffer of at least [`sys::unprivileged_message_ceiling`] bytes
    /// holds any message an unprivileged peer can send, so the message is
    /// received in one call without a peek
    /// ([`Socket::recv_message_or_discard`]). A smaller buffer peeks first,
    /// and a message longer than it stays queued:
    /// [`Error::BufferTooSmall`].
    pub(crate) fn recv_message(&self, buf: &mut [u8], pace: Pace) -> Result<Option<usize>> {
        if sys::unprivileged_message_ceiling().is_some_and(|most| buf.len() >= most) {
            return self.recv_message_or_discard(buf, pace);
        }
        loop {
            let Some(len) = self.peek_len(pace)? else {
                return Ok(None);
            };
            self.check_fits(buf, len)?;
            match sys::recv_message(self.fd(), buf, true) {
                // Another reader raced this one between peek and receive.
                Ok(real) if real > buf.len() => return Err(self.too_small(buf, real)),
                Ok(real) => return Ok(Some(real)),
                // Taken by another reader between peek and receive.
                Err(Errno::AGAIN) | Err(Errno::INTR) => continue,
                Err(err) => return Err(self.os("recv", err)),
            }
        }
    }

    /// Receives one whole message into `buf` in one `recv(MSG_TRUNC)`;
    /// `None` when the peer closed. A message longer than `buf` is consumed
    /// and reported as [`Error::BufferTooSmall`] with its real length.
    pub(crate) fn recv_message_or_discard(
        &self,
        buf: &mut [u8],
        pace: Pace,
    ) -> Result<Option<usize>> {
        let real = self.with_wait(
            READABLE,
            pace,
            |dontwait| sys::recv_message(self.fd(), buf, dontwait),
            |err| self.os("recv", err),
        )?;
        if real > buf.len() {
            return Err(self.too_small(buf, real));
        }
        self.message_or_end(real)
    }

    /// Sends one whole message.
    pub(crate) fn send_message(&self, message: &[u8], pace: Pace) -> Result<()> {
        self.with_wait(
            WRITABLE,
            pace,
            |dontwait| sys::send(self.fd(), message, dontwait),
            |err| self.send_error(err, message.len()),
        )
        .map(drop)
    }

    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match sys::recv(self.fd(), buf, false) {
                Err(Errno::INTR) => continue,
                other => return other.map_err(io::Error::from),
            }
        }
    }

    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match sys::send(self.fd(), buf, false) {
                Err(Errno::INTR) => continue,
                other => return other.map_err(io::Error::from),
            }
        }
    }
}

/// Listener settings shared by both kinds.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    backlog: i32,
    mode: Option<u32>,
    remove_on_drop: bool,
    reclaim_stale: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            backlog: 128,
            mode: None,
            remove_on_drop: true,
            reclaim_stale: true,
        }
    }
}

/// A bound, listening UNIX socket of either kind. Its descriptor is kept
/// non-blocking; blocking accepts wait in `poll`.
pub(crate) struct Bound {
    fd: OwnedFd,
    addr: UnixAddr,
    object: Arc<str>,
    file: Option<SocketFile>,
    nonblocking: AtomicBool,
}

impl fmt::Debug for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("fd", &self.fd)
            .field("object", &&*self.object)
            .field(
                "remove_on_drop",
                &self.file.as_ref().is_some_and(SocketFile::removes),
            )
            .finish()
    }
}

impl Bound {
    pub(crate) fn bind(kind: Kind, addr: &UnixAddr, config: &Config) -> Result<Bound> {
        let object = endpoint_label(kind, addr);
        let os = |op, err| Error::os(&*object, op, err);
        if let Some(mode) = config.mode {
            if mode & !0o777 != 0 {
                return Err(Error::Unsupported {
                    object: object.to_string(),
                    what: format!("mode {mode:#o}"),
                    reason: "a socket file takes permission bits 0o777 and below only".into(),
                });
            }
            if addr.as_path().is_none() {
                return Err(Error::Unsupported {
                    object: object.to_string(),
                    what: "a mode on an abstract address".into(),
                    reason: "an abstract socket has no file and no permission bits; any process in the network namespace can connect".into(),
                });
            }
        }
        let fd = sys::socket(kind, true).map_err(|e| os("socket", e))?;
        let spec = BindSpec {
            object: &object,
            mode: config.mode,
            reclaim_stale: config.reclaim_stale,
            flavor: Flavor::Connection,
        };
        // Until it is fully set up, a failure removes the file.
        let file = unix_socket::bind(fd.as_fd(), addr, &spec)?;
        let mut bound = Bound {
            fd,
            addr: addr.clone(),
            object,
            file,
            nonblocking: AtomicBool::new(false),
        };
        sys::listen(bound.fd.as_fd(), config.backlog).map_err(|e| bound.os("listen", e))?;
        if let Some(file) = &mut bound.file {
            file.set_remove(config.remove_on_drop);
        }
        Ok(bound)
    }

    fn os(&self, op: &'static str, err: impl Into<io::Error>) -> Error {
        Error::os(&*self.object, op, err)
    }

    pub(crate) fn addr(&self) -> &UnixAddr {
        &self.addr
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub(crate) fn set_nonblocking(&self, nonblocking: bool) {
        self.nonblocking.store(nonblocking, Ordering::Relaxed);
    }

    fn accepted(&self, fd: OwnedFd) -> Socket {
        Socket {
            fd,
            object: self.object.clone(),
        }
    }

    pub(crate) fn accept(&self) -> Result<Socket> {
        loop {
            match sys::accept(self.fd()) {
                Ok(fd) => return Ok(self.accepted(fd)),
                Err(Errno::AGAIN) if !self.nonblocking.load(Ordering::Relaxed) => {
                    sys::poll_one(self.fd(), READABLE, None).map_err(|e| self.os("poll", e))?;
                }
                Err(err) => return Err(self.os("accept", err)),
            }
        }
    }

    pub(crate) fn accept_timeout(&self, timeout: Duration) -> Result<Socket> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            match sys::accept(self.fd()) {
                Ok(fd) => return Ok(self.accepted(fd)),
                Err(Errno::AGAIN) => {
                    let remaining = deadline.map(|at| at.saturating_duration_since(Instant::now()));
                    if remaining == Some(Duration::ZERO) {
                        return Err(Error::TimedOut {
                            object: self.object.to_string(),
                            timeout,
                        });
                    }
                    sys::poll_one(self.fd(), READABLE, remaining)
                        .map_err(|e| self.os("poll", e))?;
                }
                Err(err) => return Err(self.os("accept", err)),
            }
        }
    }
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
///     .mode(0o600)
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
    pub fn backlog(&mut self, backlog: u32) -> &mut Self {
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
    /// Binding fails with [`Error::Unsupported`] for bits above `0o777` or
    /// for an abstract address, which has no file to protect.
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.config.mode = Some(mode);
        self
    }

    /// Whether the listener removes its socket file on drop (default
    /// `true`). It removes it only if the path still holds the file it
    /// bound (same device and inode), never a successor's.
    pub fn remove_on_drop(&mut self, remove: bool) -> &mut Self {
        self.config.remove_on_drop = remove;
        self
    }

    /// Whether a stale socket file at the path (one that refuses
    /// connections: its listener died) is removed so the bind succeeds
    /// (default `true`). With `false` the bind fails instead.
    pub fn reclaim_stale(&mut self, reclaim: bool) -> &mut Self {
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
    ///   nothing is changed or removed.
    /// - [`Error::Os`] for `bind` with `EADDRINUSE` ("another process
    ///   listens there") when a live socket answers at the address.
    /// - [`Error::Unsupported`] for a bad [`mode`](Self::mode).
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

impl Listener {
    /// `socket` + `bind` + `listen`—binds with the default
    /// [`ListenerOptions`].
    ///
    /// # Errors
    /// As [`ListenerOptions::bind`].
    ///
    /// # References
    /// bind(2), listen(2), unix(7)
    pub fn bind(addr: &UnixAddr) -> Result<Listener> {
        ListenerOptions::new().bind(addr)
    }

    /// `accept4(SOCK_CLOEXEC)`—waits for the next connection (unless
    /// [`set_nonblocking`](Self::set_nonblocking) was set).
    ///
    /// # Errors
    /// [`Error::Os`] from `accept`; when non-blocking and nobody waits, one
    /// whose kind is [`io::ErrorKind::WouldBlock`].
    ///
    /// # References
    /// accept(2)
    #[doc(alias = "accept4")]
    pub fn accept(&self) -> Result<Stream> {
        self.inner.accept().map(|inner| Stream { inner })
    }

    /// `poll` + `accept4`—waits at most `timeout` for a connection.
    ///
    /// # Errors
    /// [`Error::TimedOut`] when nobody connected in time; [`Error::Os`]
    /// from `poll` or `accept`.
    pub fn accept_timeout(&self, timeout: Duration) -> Result<Stream> {
        self.inner
            .accept_timeout(timeout)
            .map(|inner| Stream { inner })
    }

    /// The address it was bound to.
    pub fn local_addr(&self) -> &UnixAddr {
        self.inner.addr()
    }

    /// Makes [`accept`](Self::accept) return at once when nobody waits.
    /// No system call: the descriptor is always non-blocking, and this only
    /// says whether `accept` waits in `poll`.
    pub fn set_nonblocking(&self, nonblocking: bool) {
        self.inner.set_nonblocking(nonblocking);
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.fd()
    }
}

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
    /// let mut received = unix::Stream::from(fds.pop().unwrap());
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
/// For `unix:`, `unix-seqpacket:` and `unix-dgram:` paths alike.
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
    let object = endpoint_label(Kind::Stream, addr);
    match addr.as_path() {
        Some(path) => unix_socket::remove_stale(path, &object),
        None => Err(Error::Unsupported {
            object: object.to_string(),
            what: "removing an abstract name".into(),
            reason: "an abstract socket has no file; its name goes when its last socket closes"
                .into(),
        }),
    }
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

impl From<OwnedFd> for Stream {
    /// Adopts a connected UNIX stream socket (one inherited, or received
    /// with [`Stream::recv_with_fds`]). It is not checked.
    fn from(fd: OwnedFd) -> Stream {
        Stream {
            inner: Socket::from_fd(Kind::Stream, fd),
        }
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
};

/// The UNIX stream socket's entry in the facility registry.
pub static FACILITY: Facility = Facility {
    name: "unix",
    summary: "UNIX stream socket: two-way byte stream, passes descriptors and credentials",
    addressing: "unix:PATH, unix:@NAME (abstract)",
    properties: UNIX_PROPERTIES,
    limits: unix_limits,
    max_message: || None,
    connector: &PathConnector,
};

/// The socketpair's entry in the facility registry.
pub static PAIR_FACILITY: Facility = Facility {
    name: "socketpair",
    summary: "connected pair of UNIX stream sockets for related processes",
    addressing: "none: one end is inherited or passed",
    properties: Properties {
        naming: Naming::None,
        reach: Reach::RelatedProcesses,
        permissions: "whoever holds a descriptor",
        ..UNIX_PROPERTIES
    },
    limits: unix_limits,
    max_message: || None,
    connector: &PairConnector,
};

/// Joins two processes through a listener at `sock` in the scratch directory.
struct PathConnector;

struct PendingAccept(Listener);

impl facility::Connector for PathConnector {
    fn prepare(&self, scratch: &Path, _: &LinkOptions) -> Result<(Box<dyn PendingLink>, Ticket)> {
        let addr = UnixAddr::path(scratch.join("sock"))?;
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

impl PendingLink for PendingAccept {
    fn establish(self: Box<Self>) -> Result<Box<dyn Link>> {
        let stream = self.0.accept()?;
        facility::socket_link("unix", stream)
    }
}

/// Joins two processes through a socketpair; the peer inherits one end.
struct PairConnector;

struct PendingPair(Stream);

impl facility::Connector for PairConnector {
    fn prepare(&self, _scratch: &Path, _: &LinkOptions) -> Result<(Box<dyn PendingLink>, Ticket)> {
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
                object: "socketpair".to_owned(),
                what: "a ticket without a descriptor".to_owned(),
                reason: "the peer inherits one end of the pair".to_owned(),
            });
        };
        facility::socket_link("socketpair", Stream::from(fd))
    }
}

impl PendingLink for PendingPair {
    fn establish(self: Box<Self>) -> Result<Box<dyn Link>> {
        facility::socket_link("socketpair", self.0)
    }
}
