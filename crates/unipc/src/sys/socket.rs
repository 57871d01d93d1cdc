//! UNIX-domain stream and seqpacket sockets: thin wrappers over rustix's
//! `socket`, `bind`, `listen`, `accept4`, `connect`, `socketpair`,
//! `sendmsg`/`recvmsg` with `SCM_RIGHTS`, and nix's `SO_PEERCRED`.
//!
//! Every descriptor made here is close-on-exec (`SOCK_CLOEXEC`, `accept4`
//! with `SOCK_CLOEXEC`, `MSG_CMSG_CLOEXEC` for received descriptors) and
//! every send passes `MSG_NOSIGNAL`, so a closed peer is `EPIPE`, never a
//! SIGPIPE. No unsafe code: rustix and nix cover every call.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::OnceLock;

use rustix::event::PollFlags;
use rustix::io::{self, Errno};
use rustix::net::{
    self, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, Shutdown, SocketAddrUnix, SocketFlags,
    SocketType,
};

use crate::name::UnixAddr;

/// The most descriptors one message may carry (`SCM_MAX_FD` in
/// `include/net/scm.h`); a send of more fails with `EINVAL`.
pub(crate) const SCM_MAX_FD: usize = 253;

/// Bytes of a seqpacket socket's send buffer that a message cannot use: the
/// kernel refuses a message longer than `sk_sndbuf - 32` with `EMSGSIZE`
/// (`unix_dgram_sendmsg` in `net/unix/af_unix.c`).
pub(crate) const SNDBUF_OVERHEAD: usize = 32;

/// The largest message an unprivileged sender can put on a UNIX datagram
/// or seqpacket socket, `max(2 * net.core.wmem_max, net.core.wmem_default)`
/// less 32, read from `/proc` once per process; `None` when `/proc` cannot
/// be read.
///
/// A message is refused above the sender's `sk_sndbuf - 32`
/// ([`SNDBUF_OVERHEAD`]). A socket starts with `sk_sndbuf =
/// wmem_default` (`sock_init_data`), and `SO_SNDBUF` sets it to at most
/// twice `wmem_max` (`sk_setsockopt` in `net/core/sock.c`). Only
/// `SO_SNDBUFFORCE` (`CAP_NET_ADMIN`), or an administrator raising either
/// sysctl after this was read, lets a larger message through.
pub(crate) fn unprivileged_message_ceiling() -> Option<usize> {
    static CEILING: OnceLock<Option<usize>> = OnceLock::new();
    *CEILING.get_or_init(|| {
        let read = |name: &str| usize::try_from(super::proc::read_sysctl(name)?).ok();
        let most = read("net/core/wmem_max")?
            .saturating_mul(2)
            .max(read("net/core/wmem_default")?);
        Some(most.saturating_sub(SNDBUF_OVERHEAD))
    })
}

/// Which UNIX socket type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `SOCK_STREAM`: a byte stream.
    Stream,
    /// `SOCK_SEQPACKET`: a connection that keeps message boundaries.
    Seqpacket,
}

impl Kind {
    fn socket_type(self) -> SocketType {
        match self {
            Kind::Stream => SocketType::STREAM,
            Kind::Seqpacket => SocketType::SEQPACKET,
        }
    }
}

/// The kernel form of a validated address.
pub(crate) fn sockaddr(addr: &UnixAddr) -> io::Result<SocketAddrUnix> {
    match addr {
        UnixAddr::Path(path) => SocketAddrUnix::new(path.as_path()),
        UnixAddr::Abstract(name) => SocketAddrUnix::new_abstract_name(name),
    }
}

/// `socket(AF_UNIX, kind | SOCK_CLOEXEC [| SOCK_NONBLOCK], 0)`.
pub(crate) fn socket(kind: Kind, nonblocking: bool) -> io::Result<OwnedFd> {
    let mut flags = SocketFlags::CLOEXEC;
    if nonblocking {
        flags |= SocketFlags::NONBLOCK;
    }
    net::socket_with(AddressFamily::UNIX, kind.socket_type(), flags, None)
}

/// `socketpair(AF_UNIX, kind | SOCK_CLOEXEC, 0)`.
pub(crate) fn socketpair(kind: Kind) -> io::Result<(OwnedFd, OwnedFd)> {
    net::socketpair(
        AddressFamily::UNIX,
        kind.socket_type(),
        SocketFlags::CLOEXEC,
        None,
    )
}

/// `listen(fd, backlog)`.
pub(crate) fn listen(fd: BorrowedFd<'_>, backlog: i32) -> io::Result<()> {
    net::listen(fd, backlog)
}

/// `connect(fd, addr)`.
pub(crate) fn connect(fd: BorrowedFd<'_>, addr: &SocketAddrUnix) -> io::Result<()> {
    net::connect(fd, addr)
}

/// `accept4(fd, NULL, NULL, SOCK_CLOEXEC)`, retried on `EINTR`.
pub(crate) fn accept(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    loop {
        match net::accept_with(fd, SocketFlags::CLOEXEC) {
            Err(Errno::INTR) => continue,
            other => return other,
        }
    }
}

/// `send(fd, data, MSG_NOSIGNAL [| MSG_DONTWAIT])`.
pub(crate) fn send(fd: BorrowedFd<'_>, data: &[u8], dontwait: bool) -> io::Result<usize> {
    net::send(fd, data, send_flags(dontwait))
}

/// `recv(fd, buf, flags)`; returns the bytes received.
pub(crate) fn recv(fd: BorrowedFd<'_>, buf: &mut [u8], dontwait: bool) -> io::Result<usize> {
    let flags = if dontwait {
        RecvFlags::DONTWAIT
    } else {
        RecvFlags::empty()
    };
    net::recv(fd, buf, flags).map(|(got, _)| got)
}

/// `recv(fd, buf, MSG_TRUNC [| MSG_DONTWAIT])` on a message-keeping socket:
/// receives one message and returns its real length, which exceeds
/// `buf.len()` when the rest of it was discarded.
pub(crate) fn recv_message(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    dontwait: bool,
) -> io::Result<usize> {
    let mut flags = RecvFlags::TRUNC;
    if dontwait {
        flags |= RecvFlags::DONTWAIT;
    }
    net::recv(fd, buf, flags).map(|(_, real)| real)
}

/// `recv(fd, NULL, 0, MSG_PEEK | MSG_TRUNC [| MSG_DONTWAIT])`: the length of
/// the next message on a message-keeping socket, leaving it queued.
pub(crate) fn peek_len(fd: BorrowedFd<'_>, dontwait: bool) -> io::Result<usize> {
    let mut flags = RecvFlags::PEEK | RecvFlags::TRUNC;
    if dontwait {
        flags |= RecvFlags::DONTWAIT;
    }
    let empty: &mut [u8] = &mut [];
    net::recv(fd, empty, flags).map(|(_, real)| real)
}

fn send_flags(dontwait: bool) -> SendFlags {
    if dontwait {
        SendFlags::NOSIGNAL | SendFlags::DONTWAIT
    } else {
        SendFlags::NOSIGNAL
    }
}

/// `sendmsg(fd, {data}, SCM_RIGHTS(fds), MSG_NOSIGNAL [| MSG_DONTWAIT])`;
/// returns the bytes sent. The caller keeps `fds.len() <= SCM_MAX_FD`.
pub(crate) fn send_with_fds(
    fd: BorrowedFd<'_>,
    data: &[u8],
    fds: &[BorrowedFd<'_>],
    dontwait: bool,
) -> io::Result<usize> {
    let mut space = vec![MaybeUninit::uninit(); control_space(fds.len())];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        // The buffer was sized for exactly this message; refuse rather than
        // send the data without its descriptors.
        return Err(Errno::NOBUFS);
    }
    net::sendmsg(
        fd,
        &[IoSlice::new(data)],
        &mut control,
        send_flags(dontwait),
    )
}

/// What one `recvmsg` brought.
#[derive(Debug)]
pub(crate) struct RecvWithFds {
    /// Bytes received; with `MSG_TRUNC` on a message socket, the message's
    /// real length.
    pub(crate) bytes: usize,
    /// The descriptors that arrived, close-on-exec.
    pub(crate) fds: Vec<OwnedFd>,
    /// `MSG_CTRUNC`: the peer sent descriptors that did not fit; the kernel
    /// closed them.
    pub(crate) fds_truncated: bool,
}

/// `recvmsg(fd, {buf}, control for max_fds, MSG_CMSG_CLOEXEC [| MSG_TRUNC]
/// [| MSG_DONTWAIT])`, with `MSG_TRUNC` (report a message's real length)
/// only for a message-keeping socket: on a stream it would discard data.
///
/// The control buffer is rounded up to `CMSG_SPACE`, so more than `max_fds`
/// descriptors may arrive without `MSG_CTRUNC`: the caller counts them.
pub(crate) fn recv_with_fds(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    max_fds: usize,
    message: bool,
    dontwait: bool,
) -> io::Result<RecvWithFds> {
    let max_fds = max_fds.min(SCM_MAX_FD);
    let mut space = vec![MaybeUninit::uninit(); control_space(max_fds)];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut flags = RecvFlags::CMSG_CLOEXEC;
    if message {
        flags |= RecvFlags::TRUNC;
    }
    if dontwait {
        flags |= RecvFlags::DONTWAIT;
    }
    let got = loop {
        match net::recvmsg(fd, &mut [IoSliceMut::new(buf)], &mut control, flags) {
            Err(Errno::INTR) => continue,
            other => break other?,
        }
    };
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(arrived) = message {
            fds.extend(arrived);
        }
    }
    Ok(RecvWithFds {
        bytes: got.bytes,
        fds,
        fds_truncated: got.flags.contains(ReturnFlags::CTRUNC),
    })
}

fn control_space(fds: usize) -> usize {
    if fds == 0 {
        0
    } else {
        rustix::cmsg_space!(ScmRights(fds))
    }
}

/// `getsockopt(fd, SOL_SOCKET, SO_PEERCRED)` as (pid, uid, gid).
///
/// Read through nix rather than rustix: rustix's `UCred` holds the pid as a
/// non-zero `Pid`, but the kernel reports 0 for a peer outside this pid
/// namespace.
pub(crate) fn peer_credentials(fd: BorrowedFd<'_>) -> std::io::Result<(i32, u32, u32)> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let cred = getsockopt(&fd, PeerCredentials)?;
    Ok((cred.pid(), cred.uid(), cred.gid()))
}

/// `getsockopt(fd, SOL_SOCKET, SO_SNDBUF)`.
pub(crate) use super::dgram::send_buffer_size;

/// `shutdown(fd, how)`.
pub(crate) fn shutdown(fd: BorrowedFd<'_>, how: Shutdown) -> io::Result<()> {
    net::shutdown(fd, how)
}

pub(crate) use super::poll::{READABLE, WRITABLE};
/// The peer closed or shut down its writing side.
pub(crate) const PEER_CLOSED: PollFlags = PollFlags::RDHUP.union(PollFlags::HUP);
