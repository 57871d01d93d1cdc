//! UNIX datagram sockets (`unix-dgram:PATH`, `unix-dgram:@NAME`): reliable,
//! ordered datagrams between processes on one host. The socket file's life
//! (exact mode, stale reclaim, removal on drop) is the one shared with the
//! stream sockets (`src/unix_socket.rs`). See [the module](super) for
//! receiving, waiting and the lack of an end of file.

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};

use rustix::io::Errno;
use rustix::net::addr::SocketAddrArg;
use rustix::net::SocketAddrAny;

use super::{
    peek_len, recv_datagram, recv_error, recv_untagged, send_error, with_wait, How, Stop, Until,
};
use crate::adopt::{self, Want};
use crate::error::ObjectName;
use crate::facility::{
    Direction, Facility, LiveLimit, MessageCap, Naming, Persistence, Properties, Reach, Shape, Tags,
};
use crate::message::{unsupported_tag, Limits, Messenger, Received, Tag, Wait};
use crate::name::UnixAddr;
use crate::sys::dgram::{self as sys, Family, Ready};
use crate::sys::fd::{Family as FdFamily, SocketKind};
use crate::unix_socket::{self, BindSpec, Flavor, SocketFile};
use crate::{AdoptError, Error, Mode, Result};

/// What a UNIX datagram send may carry: `SO_SNDBUF` less this (the kernel
/// refuses `len > sk_sndbuf - 32` in `unix_dgram_sendmsg`).
const UNIX_SNDBUF_OVERHEAD: usize = 32;

/// The size of a buffer that holds any UNIX datagram an unprivileged sender
/// can send; `None` when it cannot be known.
fn unix_fits() -> Option<usize> {
    crate::sys::socket::unprivileged_message_ceiling()
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
/// let sock = UnixOptions::new().mode(unipc::Mode::OWNER_RW).bind(&unipc::name::UnixAddr::path(&path)?)?;
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
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = Some(mode.bits());
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
    /// names the socket file it created (nothing not ours is changed or
    /// removed);
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
                object: object.into(),
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

/// Removes a stale `unix-dgram:` socket file (its binder died without
/// removing it): as [`stream::unix::remove_stale`](crate::stream::unix::remove_stale),
/// with errors naming the `unix-dgram:` endpoint.
///
/// # Errors
/// As [`stream::unix::remove_stale`](crate::stream::unix::remove_stale).
#[doc(alias = "unlink")]
pub fn remove_stale(addr: &UnixAddr) -> Result<()> {
    unix_socket::remove_stale(addr, &unix_object(addr))
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
    object: ObjectName,
    /// What errors about sending to the peer name: the peer's address,
    /// else [`Messenger::object`]; kept formatted for the same reason.
    peer_object: ObjectName,
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
        let object: ObjectName = object_of(local.as_ref(), peer.as_ref()).into();
        let peer_object = peer
            .as_ref()
            .map_or_else(|| object.clone(), |peer| unix_object(peer).into());
        let sock = UnixDatagram {
            fd,
            local,
            peer,
            object,
            peer_object,
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
                self.object = object_of(self.local.as_ref(), self.peer.as_ref()).into();
                self.peer_object = object.into();
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
        self.send_raw(
            message,
            Some(&sockaddr),
            wait,
            || unix_object(to).into(),
            "sendto",
        )
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

    /// `sendmsg` with `SCM_RIGHTS` on a connected socket: `message` and the
    /// descriptors `fds` as one datagram, waiting for room as `wait` says.
    /// The peer gets duplicates of them (close-on-exec).
    ///
    /// ```
    /// use std::os::fd::AsFd;
    /// use unipc::message::dgram::UnixDatagram;
    /// use unipc::message::Wait;
    ///
    /// let (a, b) = UnixDatagram::pair()?;
    /// let file = tempfile::tempfile()?;
    /// a.send_with_fds(b"a file", &[file.as_fd()], Wait::Never)?;
    /// let mut buf = [0; 16];
    /// let (len, fds) = b.recv_with_fds(&mut buf, 4, Wait::Never)?;
    /// assert_eq!((&buf[..len], fds.len()), (&b"a file"[..], 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] for more than `SCM_MAX_FD` (253)
    /// descriptors and [`Error::MessageTooLarge`], both before any call;
    /// [`Error::Full`] or [`Error::TimedOut`] when the peer's queue stayed
    /// full; [`Error::Os`] naming the peer.
    #[doc(alias = "SCM_RIGHTS")]
    pub fn send_with_fds(&self, message: &[u8], fds: &[BorrowedFd<'_>], wait: Wait) -> Result<()> {
        use crate::sys::socket as so;
        if fds.len() > so::SCM_MAX_FD {
            return Err(Error::LimitExceeded {
                object: self.peer_object(),
                what: "descriptors in one message",
                requested: fds.len() as u64,
                limit: so::SCM_MAX_FD as u64,
                set_in: "SCM_MAX_FD, fixed in the kernel",
            });
        }
        self.check_size(message.len())?;
        let deadline = crate::deadline::Deadline::of(wait);
        loop {
            match so::send_with_fds(self.fd.as_fd(), message, fds, true) {
                Ok(_) => return Ok(()),
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => {
                    self.wait_ready(crate::sys::poll::WRITABLE, wait, deadline, true)?;
                }
                Err(e) => return Err(Error::os(self.peer_object(), "sendmsg", e)),
            }
        }
    }

    /// `recvmsg(MSG_CMSG_CLOEXEC | MSG_TRUNC)`: one datagram into `buf` and
    /// the descriptors that came with it, at most `max_fds`, waiting as
    /// `wait` says.
    ///
    /// # Errors
    /// [`Error::TooManyFds`] when it carried more than `max_fds` (the
    /// kernel closed the rest, or they are closed here);
    /// [`Error::BufferTooSmall`] with its size when the datagram did not
    /// fit: it was consumed, as one `recvmsg` must (give
    /// [`Messenger::recv_buffer_hint`] bytes); [`Error::Empty`],
    /// [`Error::TimedOut`], [`Error::Os`].
    pub fn recv_with_fds(
        &self,
        buf: &mut [u8],
        max_fds: usize,
        wait: Wait,
    ) -> Result<(usize, Vec<OwnedFd>)> {
        let deadline = crate::deadline::Deadline::of(wait);
        loop {
            match crate::sys::socket::recv_with_fds(self.fd.as_fd(), buf, max_fds, true, true) {
                Ok(got) => {
                    if got.fds_truncated || got.fds.len() > max_fds {
                        return Err(Error::TooManyFds {
                            object: self.object(),
                            capacity: max_fds,
                        });
                    }
                    if got.bytes > buf.len() {
                        return Err(Error::BufferTooSmall {
                            object: self.object(),
                            buffer: buf.len(),
                            needed: Some(got.bytes),
                        });
                    }
                    return Ok((got.bytes, got.fds));
                }
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => {
                    self.wait_ready(crate::sys::poll::READABLE, wait, deadline, false)?;
                }
                Err(e) => return Err(Error::os(self.object(), "recvmsg", e)),
            }
        }
    }

    /// Waits for `events` until `deadline`: [`Error::Full`] (sending) or
    /// [`Error::Empty`] under [`Wait::Never`], [`Error::TimedOut`] once a
    /// timed wait ran out.
    fn wait_ready(
        &self,
        events: rustix::event::PollFlags,
        wait: Wait,
        deadline: crate::deadline::Deadline,
        sending: bool,
    ) -> Result<()> {
        let object = if sending {
            self.peer_object()
        } else {
            self.object()
        };
        match wait {
            Wait::Never if sending => return Err(Error::Full { object }),
            Wait::Never => return Err(Error::Empty { object }),
            _ => {}
        }
        let ready = crate::sys::poll::wait(self.fd.as_fd(), events, deadline)
            .map_err(|e| Error::os(object.clone(), "poll", e))?;
        match wait {
            Wait::For(timeout) if ready.is_empty() => Err(Error::TimedOut { object, timeout }),
            _ => Ok(()),
        }
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
        object: impl FnOnce() -> ObjectName,
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
    fn peer_object(&self) -> ObjectName {
        self.peer_object.clone()
    }
}

impl Messenger for UnixDatagram {
    /// The bound address (`unix-dgram:/run/app.sock`), else the connected
    /// peer's, else `unix-dgram`.
    fn object(&self) -> ObjectName {
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
    type Error = AdoptError;

    /// Adopts a UNIX datagram socket made elsewhere (passed by a parent
    /// process, say). The handle does not own any socket file: dropping it
    /// only closes the descriptor.
    ///
    /// # Errors
    /// [`Error::WrongType`] when `fd` is not a UNIX datagram socket; the
    /// descriptor comes back inside the [`AdoptError`].
    fn try_from(fd: OwnedFd) -> Result<UnixDatagram, AdoptError> {
        let want = Want::Socket(FdFamily::Unix, SocketKind::Dgram, false);
        let fd = adopt::check(fd, "unix-dgram", "a UNIX datagram socket", want)?;
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

impl fmt::Display for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.object())
    }
}

fn sndbuf_cap() -> Option<MessageCap> {
    let sndbuf = crate::sys::proc::read_usize("/proc/sys/net/core/wmem_default")?;
    Some(MessageCap {
        bytes: sndbuf.saturating_sub(32),
        set_by: "the send buffer, wmem_default in /proc/sys/net/core/wmem_default, less 32"
            .to_owned(),
    })
}

/// The UNIX datagram socket's entry in the facility registry.
pub static UNIX_FACILITY: Facility = Facility {
    name: "unix-dgram",
    scheme: Some("unix-dgram"),
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
        after_crash: "the socket file stays; the peer's sends fail with ECONNREFUSED",
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
    #[cfg(feature = "bench")]
    connector: Some(&UnixConnector),
};

#[cfg(feature = "bench")]
use std::path::PathBuf;
#[cfg(feature = "bench")]
use std::time::Duration;

#[cfg(feature = "bench")]
use super::dgram_link;
#[cfg(feature = "bench")]
use crate::facility::{self, Link, LinkOptions, PendingLink, Ticket};

/// Joins two processes through two bound sockets in the scratch
/// directory, each connected to the other.
#[cfg(feature = "bench")]
struct UnixConnector;

#[cfg(feature = "bench")]
struct UnixPending(UnixDatagram, PathBuf);

#[cfg(feature = "bench")]
const PARENT_SOCKET: &str = "dgram-parent";
#[cfg(feature = "bench")]
const PEER_SOCKET: &str = "dgram-peer";

#[cfg(feature = "bench")]
impl facility::Connector for UnixConnector {
    fn prepare(
        &self,
        scratch: &std::path::Path,
        _: &LinkOptions,
        announce: &mut dyn FnMut(&facility::CreatedObject),
    ) -> Result<(Box<dyn PendingLink>, Ticket)> {
        announce(&facility::CreatedObject::Path(scratch.join(PARENT_SOCKET)));
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

#[cfg(feature = "bench")]
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
