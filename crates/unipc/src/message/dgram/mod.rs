//! Datagram sockets: UNIX datagram sockets (`unix-dgram:PATH`,
//! `unix-dgram:@NAME`) and UDP sockets (`udp:HOST:PORT`), IPv4 and IPv6.
//!
//! A message facility: each send is one datagram and each receive returns
//! one whole datagram, never part of one and never two run together. A UNIX
//! datagram socket is reliable and ordered on one host (a send waits for
//! room in the receiver's queue); UDP may drop, reorder or duplicate.
//!
//! The two facilities live in their own files: `unix.rs` ([`UnixDatagram`])
//! and `udp.rs` ([`UdpSocket`]); this file holds what they share (waiting,
//! whole-datagram receives, errors, the bench link).
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

use std::os::fd::BorrowedFd;
#[cfg(feature = "bench")]
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use rustix::io::Errno;
use rustix::net::SocketAddrAny;

// The docs link to `Messenger`; only the bench's link uses it in code.
#[cfg(any(doc, feature = "bench"))]
use super::Messenger;
use super::{Received, Tag, Wait};
use crate::deadline::Deadline;
use crate::error::ObjectName;
#[cfg(feature = "bench")]
use crate::facility::{Link, MessageLink, RawIo};
use crate::sys::dgram::{self as sys, Family, Ready};
use crate::sys::fd::file_type_name;
use crate::sys::poll;
use crate::{Error, Result};

mod udp;
mod unix;

pub use udp::{Interface, UdpOptions, UdpSocket, UDP_FACILITY, UDP_V4_MAX, UDP_V6_MAX};
pub use unix::{remove_stale, UnixDatagram, UnixOptions, UNIX_FACILITY};

// ---------------------------------------------------------------------------
// Waiting, shared by both socket types.

/// When a wait ends.
#[derive(Clone, Copy, Debug)]
enum Until {
    Forever,
    Now,
    At(Deadline, Duration),
}

impl Until {
    fn from(wait: Wait) -> Until {
        match wait {
            Wait::Forever => Until::Forever,
            Wait::Never => Until::Now,
            // A deadline too far to represent is as good as forever.
            Wait::For(d) => match Deadline::after(d) {
                deadline if deadline.is_never() => Until::Forever,
                deadline => Until::At(deadline, d),
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
        let deadline = match until {
            Until::Now => return Err(Stop::WouldBlock),
            Until::Forever => Deadline::NEVER,
            Until::At(deadline, asked) => {
                if deadline.passed() {
                    return Err(Stop::TimedOut(asked));
                }
                deadline
            }
        };
        // Poll said ready and the call still would block: either another
        // process took the datagram (the next poll blocks, no harm) or poll
        // cannot see the condition at all (an unconnected UNIX send to a
        // full queue). Sleep in growing steps so the second case does not
        // spin.
        if polled_ready && ready == Ready::Write {
            backoff = (backoff * 2).clamp(Duration::from_micros(50), Duration::from_millis(10));
            std::thread::sleep(
                deadline
                    .remaining()
                    .map_or(backoff, |left| left.min(backoff)),
            );
            polled_ready = false;
            continue;
        }
        let events = match ready {
            Ready::Read => poll::READABLE,
            Ready::Write => poll::WRITABLE,
        };
        // Error and hang-up conditions count as ready, so that the next
        // call reports them.
        match poll::wait(fd, events, deadline) {
            Ok(revents) => polled_ready = !revents.is_empty(),
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
fn send_error(stop: Stop, object: impl Into<ObjectName>, op: &'static str) -> Error {
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
fn recv_error(stop: RecvStop, object: ObjectName, op: &'static str) -> Error {
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
            object: object.into(),
            expected,
            found: "a socket of another type or family",
        }),
        sys::Kind::NotSocket(file_type) => Err(Error::WrongType {
            object: object.into(),
            expected,
            found: file_type_name(file_type),
        }),
    }
}

/// One datagram into `buf`, consumed, with no tag and no sender address:
/// the shared body of the `Messenger` receives. `fits` is the size from
/// which no peek is needed (`Some(0)`: never peek; a longer datagram is
/// consumed and reported).
fn recv_untagged(
    fd: BorrowedFd<'_>,
    object: impl FnOnce() -> ObjectName,
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

/// A link over one connected datagram socket: the sending half is a
/// close-on-exec duplicate of the same descriptor.
#[cfg(feature = "bench")]
fn dgram_link<S>(socket: S) -> Result<Box<dyn Link>>
where
    S: Messenger + AsFd + TryFrom<OwnedFd, Error = crate::AdoptError> + Send + 'static,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_far_future_is_forever() {
        assert!(matches!(
            Until::from(Wait::For(Duration::MAX)),
            Until::Forever
        ));
        assert!(matches!(Until::from(Wait::Never), Until::Now));
    }
}
