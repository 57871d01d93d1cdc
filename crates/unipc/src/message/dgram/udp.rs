//! UDP sockets (`udp:HOST:PORT`), IPv4 and IPv6, with multicast: datagrams
//! that may be dropped, reordered or duplicated. See [the module](super) for
//! receiving, waiting and the lack of an end of file.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV6, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;

use super::{
    check_kind, peek_len, recv_datagram, recv_error, recv_untagged, send_error, with_wait, How,
    Stop, Until,
};
use crate::adopt::{self, Want};
use crate::endpoint::HostPort;
use crate::error::ObjectName;
use crate::facility::{
    Direction, Facility, LiveLimit, MessageCap, Naming, Persistence, Properties, Reach, Shape, Tags,
};
use crate::message::{unsupported_tag, Limits, Messenger, Received, Tag, Wait};
use crate::sys::dgram::{self as sys, Family, Ready};
use crate::sys::fd::{Family as FdFamily, SocketKind};
use crate::{AdoptError, Error, Result};

/// The largest UDP payload over IPv4: 65,535 less a 20-byte IP header and
/// an 8-byte UDP header.
pub const UDP_V4_MAX: usize = 65_507;

/// The largest UDP payload over IPv6 (without jumbograms): 65,535 less an
/// 8-byte UDP header (the IPv6 payload length does not count the fixed
/// 40-byte header).
pub const UDP_V6_MAX: usize = 65_527;

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
    object: ObjectName,
    /// What errors about sending to the connected peer name: `udp:PEER`,
    /// else [`Messenger::object`]; kept formatted for the same reason.
    peer_object: ObjectName,
}

impl UdpSocket {
    fn adopt(fd: OwnedFd, family: Family, object: &str) -> Result<UdpSocket> {
        let (local, peer) = UdpSocket::addresses(fd.as_fd(), object)?;
        Ok(UdpSocket::with_addresses(fd, family, local, peer))
    }

    /// The socket's own address and its peer's, if connected.
    fn addresses(fd: BorrowedFd<'_>, object: &str) -> Result<(SocketAddr, Option<SocketAddr>)> {
        let local = sys::local_addr(fd)
            .and_then(sys::inet_addr_from)
            .map_err(|e| Error::os(object, "getsockname", e))?;
        let peer = sys::peer_addr(fd)
            .map_err(|e| Error::os(object, "getpeername", e))?
            .map(sys::inet_addr_from)
            .transpose()
            .map_err(|e| Error::os(object, "getpeername", e))?;
        Ok((local, peer))
    }

    fn with_addresses(
        fd: OwnedFd,
        family: Family,
        local: SocketAddr,
        peer: Option<SocketAddr>,
    ) -> UdpSocket {
        UdpSocket {
            fd,
            v6: family == Family::V6,
            local,
            peer,
            object: format!("udp:{local}").into(),
            peer_object: match peer {
                Some(peer) => format!("udp:{peer}").into(),
                None => format!("udp:{local}").into(),
            },
        }
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
        self.peer_object = object.into();
        // Connecting a socket bound to a wildcard address fixes its source.
        if let Ok(local) = sys::local_addr(self.fd.as_fd()).and_then(sys::inet_addr_from) {
            self.local = local;
            self.object = format!("udp:{local}").into();
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
                    Some(to) => format!("udp:{to}").into(),
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
        .map_err(|stop| udp_send_error(stop, format!("udp:{to}").into(), "sendto"))
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

fn udp_send_error(stop: Stop, object: ObjectName, op: &'static str) -> Error {
    match stop {
        Stop::Os(Errno::CONNREFUSED) => Error::os(object, op, Errno::CONNREFUSED)
            .with_hint("an earlier datagram found the peer's port closed"),
        other => send_error(other, object, op),
    }
}

impl Messenger for UdpSocket {
    /// `udp:ADDRESS:PORT` of the bound address.
    fn object(&self) -> ObjectName {
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
        .map_err(|stop| udp_send_error(stop, self.peer_object.clone(), "send"))
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
    type Error = AdoptError;

    /// Adopts a bound UDP socket made elsewhere.
    ///
    /// # Errors
    /// [`Error::WrongType`] when `fd` is not a UDP socket; [`Error::Os`]
    /// when its address cannot be read. Either way the descriptor comes
    /// back inside the [`AdoptError`].
    fn try_from(fd: OwnedFd) -> Result<UdpSocket, AdoptError> {
        let want = Want::Socket(FdFamily::Inet, SocketKind::Dgram, false);
        let fd = adopt::check(fd, "udp", "a UDP socket", want)?;
        let family = match check_kind(fd.as_fd(), "udp", "a UDP socket") {
            Ok(family) => family,
            Err(error) => return Err(AdoptError::new(fd, error)),
        };
        match UdpSocket::addresses(fd.as_fd(), "udp") {
            Ok((local, peer)) => Ok(UdpSocket::with_addresses(fd, family, local, peer)),
            Err(error) => Err(AdoptError::new(fd, error)),
        }
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

/// The UDP socket's entry in the facility registry.
pub static UDP_FACILITY: Facility = Facility {
    name: "udp",
    scheme: Some("udp"),
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
        after_crash: "datagrams sent to a dead socket are dropped",
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
    #[cfg(feature = "bench")]
    connector: Some(&UdpConnector),
};

#[cfg(feature = "bench")]
use super::dgram_link;
#[cfg(feature = "bench")]
use crate::facility::{self, Link, LinkOptions, PendingLink, Ticket};

/// Joins two processes over loopback UDP: the peer connects to the
/// parent's port and greets it, which tells the parent the peer's port.
#[cfg(feature = "bench")]
struct UdpConnector;

#[cfg(feature = "bench")]
struct UdpPending(UdpSocket);

#[cfg(feature = "bench")]
impl facility::Connector for UdpConnector {
    fn prepare(
        &self,
        _scratch: &std::path::Path,
        _: &LinkOptions,
        _announce: &mut dyn FnMut(&facility::CreatedObject),
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

#[cfg(feature = "bench")]
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
            unipc_test_support::skip("no IPv6 loopback here");
            return;
        };
        assert_eq!(v6.limit_for(None), UDP_V6_MAX);
        let mapped = v6.to_family("127.0.0.1:9".parse().unwrap());
        assert_eq!(v6.limit_for(Some(mapped)), UDP_V4_MAX);
        assert_eq!(v6.limit_for(Some("[::1]:9".parse().unwrap())), UDP_V6_MAX);
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
