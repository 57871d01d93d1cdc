//! The connected and the listening UNIX socket shared by the stream
//! ([`unix`](super::unix)) and seqpacket ([`seqpacket`](super::seqpacket))
//! sockets: sends and receives with a wait (`poll` between non-blocking
//! attempts), descriptor passing, whole-message receives for seqpacket, and
//! the listener's accept loop. The socket file (exact mode, stale reclaim,
//! removal on drop) is `crate::unix_socket`, shared with the datagram
//! sockets too.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustix::event::PollFlags;
use rustix::io::Errno;

use super::unix::Credentials;
use crate::deadline::Deadline;
use crate::endpoint::Endpoint;
use crate::error::ObjectName;
use crate::message::Wait;
use crate::name::UnixAddr;
use crate::sys::fd::set_nonblocking;
use crate::sys::poll;
use crate::sys::socket::{self as sys, Kind, PEER_CLOSED, READABLE, SCM_MAX_FD, WRITABLE};
use crate::unix_socket::{self, BindSpec, Flavor, SocketFile};
use crate::{Error, Result};

/// How long an operation on a connected socket may wait.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pace {
    /// As the descriptor's O_NONBLOCK says: block, or fail with `EAGAIN`.
    AsFd,
    /// As a [`Wait`] says, whatever the descriptor's mode.
    Wait(Wait),
}

/// The label a socket that did not come from an address is known by.
fn anonymous_label(kind: Kind, origin: &str) -> ObjectName {
    ObjectName::from(format!("{} {origin}", scheme(kind)))
}

fn scheme(kind: Kind) -> &'static str {
    match kind {
        Kind::Stream => "unix",
        Kind::Seqpacket => "unix-seqpacket",
    }
}

pub(crate) fn endpoint_label(kind: Kind, addr: &UnixAddr) -> ObjectName {
    let endpoint = match kind {
        Kind::Stream => Endpoint::Unix(addr.clone()),
        Kind::Seqpacket => Endpoint::UnixSeqpacket(addr.clone()),
    };
    ObjectName::from(endpoint.to_string())
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
    object: ObjectName,
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

    /// The name errors give, shared rather than copied.
    pub(crate) fn object_name(&self) -> ObjectName {
        self.object.clone()
    }

    fn os(&self, op: &'static str, err: impl Into<io::Error>) -> Error {
        Error::os(&self.object, op, err)
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
            Pace::Wait(wait) => Deadline::of(wait),
            Pace::AsFd => Deadline::NEVER,
        };
        loop {
            let dontwait = matches!(pace, Pace::Wait(Wait::Never) | Pace::Wait(Wait::For(_)));
            match op(dontwait) {
                Ok(value) => return Ok(value),
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) => {}
                Err(err) => return Err(on_error(err)),
            }
            match pace {
                Pace::AsFd => return Err(on_error(Errno::AGAIN)),
                Pace::Wait(Wait::Never) => {
                    let object = self.object.clone();
                    return Err(if events == READABLE {
                        Error::Empty { object }
                    } else {
                        Error::Full { object }
                    });
                }
                Pace::Wait(Wait::For(timeout)) if deadline.passed() => {
                    return Err(Error::TimedOut {
                        object: self.object.clone(),
                        timeout,
                    });
                }
                // Forever, or time left.
                Pace::Wait(_) => {}
            }
            poll::wait(self.fd(), events, deadline).map_err(|e| self.os("poll", e))?;
        }
    }

    /// Checks a descriptor-carrying send before any system call.
    fn check_fds(&self, data: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
        if fds.len() > SCM_MAX_FD {
            return Err(Error::LimitExceeded {
                object: self.object.clone(),
                what: "descriptors in one message",
                requested: fds.len() as u64,
                limit: SCM_MAX_FD as u64,
                set_in: "SCM_MAX_FD, fixed in the kernel",
            });
        }
        if data.is_empty() && !fds.is_empty() {
            return Err(Error::Unsupported {
                object: self.object.clone(),
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
                    object: self.object.clone(),
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
                    object: self.object.clone(),
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
            object: self.object.clone(),
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
        let ready = poll::wait(self.fd(), PEER_CLOSED, Deadline::after(Duration::ZERO))
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
    pub(crate) backlog: i32,
    pub(crate) mode: Option<u32>,
    pub(crate) remove_on_drop: bool,
    pub(crate) reclaim_stale: bool,
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
    object: ObjectName,
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
                    object: object.clone(),
                    what: format!("mode {mode:#o}"),
                    reason: "a socket file takes permission bits 0o777 and below only".into(),
                });
            }
            if addr.as_path().is_none() {
                return Err(Error::Unsupported {
                    object: object.clone(),
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
                    poll::wait(self.fd(), READABLE, Deadline::NEVER)
                        .map_err(|e| self.os("poll", e))?;
                }
                Err(err) => return Err(self.os("accept", err)),
            }
        }
    }

    pub(crate) fn accept_timeout(&self, timeout: Duration) -> Result<Socket> {
        let deadline = Deadline::after(timeout);
        loop {
            match sys::accept(self.fd()) {
                Ok(fd) => return Ok(self.accepted(fd)),
                Err(Errno::AGAIN) => {
                    if deadline.passed() {
                        return Err(Error::TimedOut {
                            object: self.object.clone(),
                            timeout,
                        });
                    }
                    poll::wait(self.fd(), READABLE, deadline).map_err(|e| self.os("poll", e))?;
                }
                Err(err) => return Err(self.os("accept", err)),
            }
        }
    }
}
