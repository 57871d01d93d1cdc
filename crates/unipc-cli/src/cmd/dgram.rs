//! Datagram endpoints for `send` and `recv`: `unix-dgram:` and `udp:`.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use unipc::message::dgram::{UdpSocket, UnixDatagram};
use unipc::Endpoint;

use super::messages::Opened;
use super::streams::{retry, ECONNREFUSED, ENOENT};

/// A socket connected to the endpoint, to send to it; a UNIX one waits at
/// most `timeout` for the receiver to bind. (UDP cannot tell: a datagram to
/// a port nobody has bound is lost.)
pub fn open_sending(
    endpoint: &Endpoint,
    timeout: Option<Duration>,
) -> Option<unipc::Result<Opened>> {
    Some(match endpoint {
        Endpoint::UnixDgram(addr) => UnixDatagram::unbound().and_then(|mut socket| {
            retry(endpoint, timeout, &[ECONNREFUSED, ENOENT], || {
                socket.connect(addr)
            })?;
            Ok(Opened::Generic(Box::new(socket)))
        }),
        Endpoint::Udp(host_port) => resolve(endpoint, host_port).and_then(|target| {
            let any: SocketAddr = if target.is_ipv6() {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            } else {
                ([0, 0, 0, 0], 0).into()
            };
            let mut socket = UdpSocket::bind_addr(any)?;
            socket.connect_addr(target)?;
            Ok(Opened::Generic(Box::new(socket)))
        }),
        _ => return None,
    })
}

/// A socket bound to the endpoint, to receive what is sent there.
pub fn open_receiving(endpoint: &Endpoint) -> Option<unipc::Result<Opened>> {
    Some(match endpoint {
        Endpoint::UnixDgram(addr) => UnixDatagram::bind(addr).map(|s| Opened::Generic(Box::new(s))),
        Endpoint::Udp(host_port) => {
            UdpSocket::bind(host_port).map(|s| Opened::Generic(Box::new(s)))
        }
        _ => return None,
    })
}

fn resolve(
    endpoint: &Endpoint,
    host_port: &unipc::endpoint::HostPort,
) -> unipc::Result<SocketAddr> {
    let resolved = (host_port.host.as_str(), host_port.port)
        .to_socket_addrs()
        .map_err(|e| unipc::Error::InvalidEndpoint {
            input: endpoint.to_string(),
            reason: format!("resolve: {e}"),
        })?;
    resolved
        .into_iter()
        .next()
        .ok_or_else(|| unipc::Error::InvalidEndpoint {
            input: endpoint.to_string(),
            reason: "the host has no address".to_owned(),
        })
}
