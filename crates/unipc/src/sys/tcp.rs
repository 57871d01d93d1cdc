//! TCP stream sockets: thin wrappers over `rustix::net`, one per call.
//!
//! Every descriptor is created close-on-exec (`SOCK_CLOEXEC`, `accept4`
//! with `SOCK_CLOEXEC`) and every send passes `MSG_NOSIGNAL`, so a peer that
//! reset the connection is an `EPIPE`/`ECONNRESET` error, never a SIGPIPE.
//! No call here needs `unsafe`.

use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::io::{self, Errno};
use rustix::net::{
    self, ipproto, AddressFamily, RecvFlags, SendFlags, Shutdown, SocketFlags, SocketType,
};

/// The backlog passed to `listen`. The kernel silently caps it at
/// `net.core.somaxconn` (4096 by default since Linux 5.4), so asking for
/// that much costs nothing on hosts configured lower.
const BACKLOG: i32 = 4096;

/// `socket(AF_INET or AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP)`,
/// the family chosen to match `addr`; `SOCK_NONBLOCK` too when asked.
pub(crate) fn socket(addr: &SocketAddr, nonblocking: bool) -> io::Result<OwnedFd> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    };
    let mut flags = SocketFlags::CLOEXEC;
    if nonblocking {
        flags |= SocketFlags::NONBLOCK;
    }
    net::socket_with(family, SocketType::STREAM, flags, Some(ipproto::TCP))
}

/// `setsockopt(SO_REUSEADDR, 1)`: a listener can rebind its port while
/// connections from an earlier run linger in TIME_WAIT.
pub(crate) fn set_reuseaddr(fd: BorrowedFd<'_>) -> io::Result<()> {
    net::sockopt::set_socket_reuseaddr(fd, true)
}

/// `bind(fd, addr)`.
pub(crate) fn bind(fd: BorrowedFd<'_>, addr: &SocketAddr) -> io::Result<()> {
    net::bind(fd, addr)
}

/// `listen(fd, BACKLOG)`.
pub(crate) fn listen(fd: BorrowedFd<'_>) -> io::Result<()> {
    net::listen(fd, BACKLOG)
}

/// `accept4(fd, SOCK_CLOEXEC)`, with the peer's address.
pub(crate) fn accept(fd: BorrowedFd<'_>) -> io::Result<(OwnedFd, Option<SocketAddr>)> {
    let (conn, addr) = net::acceptfrom_with(fd, SocketFlags::CLOEXEC)?;
    Ok((conn, addr.and_then(|a| SocketAddr::try_from(a).ok())))
}

/// `connect(fd, addr)`.
pub(crate) fn connect(fd: BorrowedFd<'_>, addr: &SocketAddr) -> io::Result<()> {
    net::connect(fd, addr)
}

/// `send(fd, buf, MSG_NOSIGNAL)`.
pub(crate) fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    net::send(fd, buf, SendFlags::NOSIGNAL)
}

/// `recv(fd, buf, 0)`.
pub(crate) fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    Ok(net::recv(fd, buf, RecvFlags::empty())?.0)
}

/// `setsockopt(IPPROTO_TCP, TCP_NODELAY)`.
pub(crate) fn set_nodelay(fd: BorrowedFd<'_>, nodelay: bool) -> io::Result<()> {
    net::sockopt::set_tcp_nodelay(fd, nodelay)
}

/// `getsockopt(IPPROTO_TCP, TCP_NODELAY)`.
pub(crate) fn nodelay(fd: BorrowedFd<'_>) -> io::Result<bool> {
    net::sockopt::tcp_nodelay(fd)
}

/// `getsockname(fd)`, as an IP socket address.
pub(crate) fn local_addr(fd: BorrowedFd<'_>) -> io::Result<SocketAddr> {
    SocketAddr::try_from(net::getsockname(fd)?).map_err(|_| Errno::AFNOSUPPORT)
}

/// `getpeername(fd)`, as an IP socket address.
pub(crate) fn peer_addr(fd: BorrowedFd<'_>) -> io::Result<SocketAddr> {
    let addr = net::getpeername(fd)?.ok_or(Errno::NOTCONN)?;
    SocketAddr::try_from(addr).map_err(|_| Errno::AFNOSUPPORT)
}

/// `shutdown(fd, how)`.
pub(crate) fn shutdown(fd: BorrowedFd<'_>, how: std::net::Shutdown) -> io::Result<()> {
    let how = match how {
        std::net::Shutdown::Read => Shutdown::Read,
        std::net::Shutdown::Write => Shutdown::Write,
        std::net::Shutdown::Both => Shutdown::Both,
    };
    net::shutdown(fd, how)
}

/// `setsockopt(IPPROTO_TCP, TCP_USER_TIMEOUT, ms)`: how long sent data
/// may stay unacknowledged (and keepalive probes unanswered) before the
/// kernel closes the connection with `ETIMEDOUT`; 0 restores the system's
/// behaviour (`net.ipv4.tcp_retries2`).
pub(crate) fn set_user_timeout(fd: BorrowedFd<'_>, ms: u32) -> io::Result<()> {
    net::sockopt::set_tcp_user_timeout(fd, ms)
}

/// `getsockopt(IPPROTO_TCP, TCP_USER_TIMEOUT)`, in milliseconds (0: unset).
pub(crate) fn user_timeout(fd: BorrowedFd<'_>) -> io::Result<u32> {
    net::sockopt::tcp_user_timeout(fd)
}

/// `setsockopt(SOL_SOCKET, SO_KEEPALIVE)`.
pub(crate) fn set_keepalive(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    net::sockopt::set_socket_keepalive(fd, on)
}

/// `getsockopt(SOL_SOCKET, SO_KEEPALIVE)`.
pub(crate) fn keepalive(fd: BorrowedFd<'_>) -> io::Result<bool> {
    net::sockopt::socket_keepalive(fd)
}

/// `setsockopt(IPPROTO_TCP, TCP_KEEPIDLE)`, rounded up to whole seconds.
pub(crate) fn set_keepidle(fd: BorrowedFd<'_>, idle: Duration) -> io::Result<()> {
    net::sockopt::set_tcp_keepidle(fd, idle)
}

/// `getsockopt(IPPROTO_TCP, TCP_KEEPIDLE)`.
pub(crate) fn keepidle(fd: BorrowedFd<'_>) -> io::Result<Duration> {
    net::sockopt::tcp_keepidle(fd)
}

/// `setsockopt(IPPROTO_TCP, TCP_KEEPINTVL)`, rounded up to whole seconds.
pub(crate) fn set_keepintvl(fd: BorrowedFd<'_>, interval: Duration) -> io::Result<()> {
    net::sockopt::set_tcp_keepintvl(fd, interval)
}

/// `getsockopt(IPPROTO_TCP, TCP_KEEPINTVL)`.
pub(crate) fn keepintvl(fd: BorrowedFd<'_>) -> io::Result<Duration> {
    net::sockopt::tcp_keepintvl(fd)
}

/// `setsockopt(IPPROTO_TCP, TCP_KEEPCNT)`.
pub(crate) fn set_keepcnt(fd: BorrowedFd<'_>, count: u32) -> io::Result<()> {
    net::sockopt::set_tcp_keepcnt(fd, count)
}

/// `getsockopt(IPPROTO_TCP, TCP_KEEPCNT)`.
pub(crate) fn keepcnt(fd: BorrowedFd<'_>) -> io::Result<u32> {
    net::sockopt::tcp_keepcnt(fd)
}
