//! Raw calls for datagram sockets, UNIX (`AF_UNIX`, `SOCK_DGRAM`) and UDP:
//! thin wrappers over rustix, plus the conversions between unipc's
//! addresses and the kernel's.
//!
//! Every socket is created close-on-exec, every send carries MSG_NOSIGNAL,
//! and "do not wait" is asked per call with MSG_DONTWAIT rather than with
//! O_NONBLOCK: a datagram socket is often shared between processes, and
//! O_NONBLOCK would change the behaviour of every holder of the descriptor.

use std::ffi::OsStr;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::FileType;
use rustix::io;
use rustix::net::{
    self, addr::SocketAddrArg, sockopt, AddressFamily, RecvFlags, SendFlags, SocketAddrAny,
    SocketAddrUnix, SocketFlags, SocketType,
};

use crate::name::{FsPath, UnixAddr};

/// The address family of a new datagram socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    Unix,
    V4,
    V6,
}

/// `socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0)`.
pub(crate) fn socket(family: Family) -> io::Result<OwnedFd> {
    let family = match family {
        Family::Unix => AddressFamily::UNIX,
        Family::V4 => AddressFamily::INET,
        Family::V6 => AddressFamily::INET6,
    };
    net::socket_with(family, SocketType::DGRAM, SocketFlags::CLOEXEC, None)
}

/// `socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)`.
pub(crate) fn unix_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    net::socketpair(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        None,
    )
}

/// The kernel's form of a UNIX address.
pub(crate) use super::socket::sockaddr as unix_sockaddr;

/// unipc's form of a UNIX address the kernel returned; `None` for an
/// unnamed socket (an unbound sender, one end of a socketpair).
pub(crate) fn unix_addr_from(addr: SocketAddrAny) -> Option<UnixAddr> {
    let unix = SocketAddrUnix::try_from(addr).ok()?;
    if let Some(path) = unix.path_bytes() {
        // Built directly: a path the kernel holds is valid even when it
        // starts with '@', which `UnixAddr::path` refuses to read.
        return FsPath::new(Path::new(OsStr::from_bytes(path)))
            .ok()
            .map(UnixAddr::Path);
    }
    match unix.abstract_name() {
        Some(name) if !name.is_empty() => Some(UnixAddr::Abstract(name.to_vec())),
        _ => None,
    }
}

/// An IP address the kernel returned.
pub(crate) fn inet_addr_from(addr: SocketAddrAny) -> io::Result<SocketAddr> {
    SocketAddr::try_from(addr)
}

/// What a descriptor handed in from outside is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A datagram socket of this family.
    Datagram(Family),
    /// A socket of another type or family.
    OtherSocket,
    /// Not a socket; its file type.
    NotSocket(FileType),
}

/// `getsockopt(SO_DOMAIN)` and `getsockopt(SO_TYPE)`, or `fstat` when the
/// descriptor is not a socket.
pub(crate) fn kind(fd: BorrowedFd<'_>) -> io::Result<Kind> {
    let domain = match sockopt::socket_domain(fd) {
        Ok(domain) => domain,
        Err(io::Errno::NOTSOCK) => {
            let st = rustix::fs::fstat(fd)?;
            return Ok(Kind::NotSocket(FileType::from_raw_mode(st.st_mode)));
        }
        Err(other) => return Err(other),
    };
    if sockopt::socket_type(fd)? != SocketType::DGRAM {
        return Ok(Kind::OtherSocket);
    }
    Ok(match domain {
        AddressFamily::UNIX => Kind::Datagram(Family::Unix),
        AddressFamily::INET => Kind::Datagram(Family::V4),
        AddressFamily::INET6 => Kind::Datagram(Family::V6),
        _ => Kind::OtherSocket,
    })
}

/// `bind(fd, addr)`.
pub(crate) fn bind(fd: BorrowedFd<'_>, addr: &impl SocketAddrArg) -> io::Result<()> {
    net::bind(fd, addr)
}

/// `connect(fd, addr)`.
pub(crate) fn connect(fd: BorrowedFd<'_>, addr: &impl SocketAddrArg) -> io::Result<()> {
    net::connect(fd, addr)
}

/// `getsockname(fd)`.
pub(crate) fn local_addr(fd: BorrowedFd<'_>) -> io::Result<SocketAddrAny> {
    net::getsockname(fd)
}

/// `getpeername(fd)`; `None` when the socket is not connected.
pub(crate) fn peer_addr(fd: BorrowedFd<'_>) -> io::Result<Option<SocketAddrAny>> {
    match net::getpeername(fd) {
        Err(io::Errno::NOTCONN) => Ok(None),
        other => other,
    }
}

fn send_flags(dont_wait: bool) -> SendFlags {
    if dont_wait {
        SendFlags::NOSIGNAL | SendFlags::DONTWAIT
    } else {
        SendFlags::NOSIGNAL
    }
}

/// `send(fd, buf, MSG_NOSIGNAL [| MSG_DONTWAIT])` to the connected peer.
pub(crate) fn send(fd: BorrowedFd<'_>, buf: &[u8], dont_wait: bool) -> io::Result<usize> {
    net::send(fd, buf, send_flags(dont_wait))
}

/// `sendto(fd, buf, MSG_NOSIGNAL [| MSG_DONTWAIT], addr)`.
pub(crate) fn send_to(
    fd: BorrowedFd<'_>,
    buf: &[u8],
    dont_wait: bool,
    addr: &impl SocketAddrArg,
) -> io::Result<usize> {
    net::sendto(fd, buf, send_flags(dont_wait), addr)
}

/// `recvfrom(fd, buf, MSG_TRUNC [| MSG_PEEK] [| MSG_DONTWAIT])`.
///
/// Returns the datagram's full length (which, thanks to MSG_TRUNC, exceeds
/// `buf.len()` when the datagram did not fit) and the sender's address.
pub(crate) fn recv_from(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    peek: bool,
    dont_wait: bool,
) -> io::Result<(usize, Option<SocketAddrAny>)> {
    let mut flags = RecvFlags::TRUNC;
    if peek {
        flags |= RecvFlags::PEEK;
    }
    if dont_wait {
        flags |= RecvFlags::DONTWAIT;
    }
    let (_, full_len, addr) = net::recvfrom(fd, buf, flags)?;
    Ok((full_len, addr))
}

/// `recv(fd, buf, MSG_TRUNC [| MSG_PEEK] [| MSG_DONTWAIT])`: as
/// [`recv_from`] for a caller that does not need the sender's address.
pub(crate) fn recv(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    peek: bool,
    dont_wait: bool,
) -> io::Result<usize> {
    let mut flags = RecvFlags::TRUNC;
    if peek {
        flags |= RecvFlags::PEEK;
    }
    if dont_wait {
        flags |= RecvFlags::DONTWAIT;
    }
    let (_, full_len) = net::recv(fd, buf, flags)?;
    Ok(full_len)
}

/// `recv(fd, "", MSG_PEEK | MSG_TRUNC [| MSG_DONTWAIT])`: the length of the
/// next datagram, which stays queued. Copies nothing.
pub(crate) fn next_len(fd: BorrowedFd<'_>, dont_wait: bool) -> io::Result<usize> {
    let mut flags = RecvFlags::PEEK | RecvFlags::TRUNC;
    if dont_wait {
        flags |= RecvFlags::DONTWAIT;
    }
    let empty: &mut [u8] = &mut [];
    let (_, full_len) = net::recv(fd, empty, flags)?;
    Ok(full_len)
}

/// Which readiness to wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ready {
    Read,
    Write,
}

/// `getsockopt(SO_SNDBUF)`: the kernel's (doubled) send buffer size.
pub(crate) fn send_buffer_size(fd: BorrowedFd<'_>) -> io::Result<usize> {
    sockopt::socket_send_buffer_size(fd)
}

/// `setsockopt(SO_SNDBUF)`; the kernel doubles the value and caps it at
/// `net.core.wmem_max`.
pub(crate) fn set_send_buffer_size(fd: BorrowedFd<'_>, size: usize) -> io::Result<()> {
    sockopt::set_socket_send_buffer_size(fd, size)
}

/// `getsockopt(SO_RCVBUF)`.
pub(crate) fn recv_buffer_size(fd: BorrowedFd<'_>) -> io::Result<usize> {
    sockopt::socket_recv_buffer_size(fd)
}

/// `setsockopt(SO_RCVBUF)`; doubled and capped at `net.core.rmem_max`.
pub(crate) fn set_recv_buffer_size(fd: BorrowedFd<'_>, size: usize) -> io::Result<()> {
    sockopt::set_socket_recv_buffer_size(fd, size)
}

/// `setsockopt(SO_REUSEADDR)`.
pub(crate) fn set_reuse_address(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    sockopt::set_socket_reuseaddr(fd, on)
}

/// `setsockopt(SO_REUSEPORT)`.
pub(crate) fn set_reuse_port(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    sockopt::set_socket_reuseport(fd, on)
}

/// `setsockopt(IPV6_V6ONLY)`.
pub(crate) fn set_only_v6(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    sockopt::set_ipv6_v6only(fd, on)
}

/// `setsockopt(SO_BROADCAST)`.
pub(crate) fn set_broadcast(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    sockopt::set_socket_broadcast(fd, on)
}

/// `ioctl(SIOCGIFINDEX)`: an interface's index from its name.
pub(crate) fn interface_index(fd: BorrowedFd<'_>, name: &str) -> io::Result<u32> {
    net::netdevice::name_to_index(fd, name)
}

/// `setsockopt(IP_ADD_MEMBERSHIP)` with a `struct ip_mreqn`: the interface
/// is chosen by `ifindex` when it is not zero, else by `address`.
pub(crate) fn join_v4(
    fd: BorrowedFd<'_>,
    group: &Ipv4Addr,
    address: &Ipv4Addr,
    ifindex: u32,
) -> io::Result<()> {
    sockopt::set_ip_add_membership_with_ifindex(fd, group, address, ifindex)
}

/// `setsockopt(IP_DROP_MEMBERSHIP)` with a `struct ip_mreqn`.
pub(crate) fn leave_v4(
    fd: BorrowedFd<'_>,
    group: &Ipv4Addr,
    address: &Ipv4Addr,
    ifindex: u32,
) -> io::Result<()> {
    sockopt::set_ip_drop_membership_with_ifindex(fd, group, address, ifindex)
}

/// `setsockopt(IPV6_ADD_MEMBERSHIP)`; interface 0 lets the kernel choose.
pub(crate) fn join_v6(fd: BorrowedFd<'_>, group: &Ipv6Addr, ifindex: u32) -> io::Result<()> {
    sockopt::set_ipv6_add_membership(fd, group, ifindex)
}

/// `setsockopt(IPV6_DROP_MEMBERSHIP)`.
pub(crate) fn leave_v6(fd: BorrowedFd<'_>, group: &Ipv6Addr, ifindex: u32) -> io::Result<()> {
    sockopt::set_ipv6_drop_membership(fd, group, ifindex)
}

/// `setsockopt(IP_MULTICAST_IF)` with a `struct ip_mreqn`.
pub(crate) fn set_multicast_if_v4(
    fd: BorrowedFd<'_>,
    address: &Ipv4Addr,
    ifindex: u32,
) -> io::Result<()> {
    if ifindex == 0 {
        sockopt::set_ip_multicast_if(fd, address)
    } else {
        sockopt::set_ip_multicast_if_with_ifindex(fd, &Ipv4Addr::UNSPECIFIED, address, ifindex)
    }
}

/// `setsockopt(IPV6_MULTICAST_IF)`.
pub(crate) fn set_multicast_if_v6(fd: BorrowedFd<'_>, ifindex: u32) -> io::Result<()> {
    sockopt::set_ipv6_multicast_if(fd, ifindex)
}

/// `setsockopt(IP_MULTICAST_LOOP)` or `IPV6_MULTICAST_LOOP`.
pub(crate) fn set_multicast_loop(fd: BorrowedFd<'_>, v6: bool, on: bool) -> io::Result<()> {
    if v6 {
        sockopt::set_ipv6_multicast_loop(fd, on)
    } else {
        sockopt::set_ip_multicast_loop(fd, on)
    }
}

/// `getsockopt(IP_MULTICAST_LOOP)` or `IPV6_MULTICAST_LOOP`.
pub(crate) fn multicast_loop(fd: BorrowedFd<'_>, v6: bool) -> io::Result<bool> {
    if v6 {
        sockopt::ipv6_multicast_loop(fd)
    } else {
        sockopt::ip_multicast_loop(fd)
    }
}

/// `setsockopt(IP_MULTICAST_TTL)` or `IPV6_MULTICAST_HOPS`.
pub(crate) fn set_multicast_hops(fd: BorrowedFd<'_>, v6: bool, hops: u32) -> io::Result<()> {
    if v6 {
        sockopt::set_ipv6_multicast_hops(fd, hops)
    } else {
        sockopt::set_ip_multicast_ttl(fd, hops)
    }
}

/// `getsockopt(IP_MULTICAST_TTL)` or `IPV6_MULTICAST_HOPS`.
pub(crate) fn multicast_hops(fd: BorrowedFd<'_>, v6: bool) -> io::Result<u32> {
    if v6 {
        sockopt::ipv6_multicast_hops(fd)
    } else {
        sockopt::ip_multicast_ttl(fd)
    }
}
