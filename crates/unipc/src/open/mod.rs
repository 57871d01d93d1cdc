//! From an endpoint to a working handle, for every facility, in one call.
//!
//! [`OpenOptions::connect`] opens the *sending* side of an [`Endpoint`]: a
//! FIFO opened for writing, a socket connected, a queue opened for writing.
//! [`OpenOptions::listen`] prepares the *receiving* side (a FIFO opened for
//! reading, a socket bound and listening, a queue opened for reading) and
//! [`Listener::accept`] completes it (the first writer or peer). Both give a
//! [`Handle`]: a [`StreamHandle`] (`Read + Write + AsFd`) for byte streams,
//! a [`MessageHandle`] (a [`Messenger`](crate::message::Messenger)) for
//! message facilities. [`CreateOptions`], [`describe`] and [`remove`] do
//! the same for named objects that outlive a process. The `unipc` command
//! opens every endpoint this way.
//!
//! One timeout bounds the wait for the other side: a sender retries while
//! nobody listens yet (a socket refused or not yet bound, a FIFO with no
//! reader) until it passes, a receiver waits that long for its first peer.
//! A separate stall timeout bounds every later read and write of a stream.
//!
//! # Examples
//! ```
//! use std::time::Duration;
//! use unipc::message::{Messenger, Wait};
//! use unipc::open::OpenOptions;
//!
//! let dir = tempfile::tempdir()?;
//! let endpoint: unipc::Endpoint = format!("unix-dgram:{}/d.sock", dir.path().display()).parse()?;
//! let options = OpenOptions::new().timeout(Duration::from_secs(2));
//! let rx = options.listen(&endpoint)?.accept()?.into_messages().unwrap();
//! let tx = options.connect(&endpoint)?.into_messages().unwrap();
//! tx.send(b"ping")?;
//! assert_eq!(rx.recv_vec(Wait::Forever)?.0, b"ping");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::net::{SocketAddr, ToSocketAddrs};
use std::thread::sleep;
use std::time::Duration;

use crate::deadline::Deadline;
use crate::endpoint::HostPort;
use crate::message::dgram::{UdpSocket, UnixDatagram};
use crate::message::{posix_mq, ring};
use crate::stream::{fifo, seqpacket, tcp, unix};
use crate::{Endpoint, Error, Result};

mod message;
mod object;
mod stream;

pub use message::{Inbox, MessageHandle};
pub use object::open_sysv_sem;
pub use object::{
    describe, describe_within, remove, remove_within, CreateOptions, Created, SharedMemory, Value,
};
pub use stream::StreamHandle;

/// How often a bounded wait for a peer looks again.
const RETRY: Duration = Duration::from_millis(10);

/// An opened endpoint: a byte stream or a message channel.
#[derive(Debug)]
#[non_exhaustive]
pub enum Handle {
    /// A byte stream: FIFO end, UNIX or TCP stream socket.
    Stream(StreamHandle),
    /// A message facility.
    Messages(MessageHandle),
}

impl Handle {
    /// The stream, when the endpoint is a byte stream.
    pub fn into_stream(self) -> Option<StreamHandle> {
        match self {
            Handle::Stream(s) => Some(s),
            Handle::Messages(_) => None,
        }
    }

    /// The message handle, when the endpoint keeps message boundaries.
    pub fn into_messages(self) -> Option<MessageHandle> {
        match self {
            Handle::Messages(m) => Some(m),
            Handle::Stream(_) => None,
        }
    }
}

/// The receiving side of an endpoint, ready for its first peer.
///
/// Holding it keeps what [`OpenOptions::listen`] made: a bound socket's
/// file is removed when it drops (if it is still the file it bound).
#[derive(Debug)]
pub struct Listener {
    kind: Waiting,
    options: OpenOptions,
}

#[derive(Debug)]
enum Waiting {
    Fifo(fifo::Reader),
    Unix(unix::Listener),
    Tcp(tcp::Listener),
    Seqpacket(seqpacket::Listener),
    Ready(MessageHandle),
}

impl Listener {
    /// Waits (at most the open's timeout) for the first peer: a FIFO's
    /// first writer, a socket's first connection. A message endpoint that
    /// needs no peer (a queue, a datagram socket) is returned at once.
    ///
    /// # Errors
    /// [`Error::TimedOut`] when no peer came in time; [`Error::Os`] from
    /// `accept` or `poll`.
    pub fn accept(self) -> Result<Handle> {
        let timeout = self.options.timeout;
        let mut handle = match self.kind {
            Waiting::Fifo(reader) => {
                // Opened non-blocking, the read end would report end of
                // file before any writer came: wait for one first.
                if !reader.wait_readable(timeout)? {
                    return Err(Error::TimedOut {
                        object: reader.object().into(),
                        timeout: timeout.unwrap_or_default(),
                    });
                }
                reader.set_nonblocking(false)?;
                StreamHandle::fifo_reader(reader)
            }
            Waiting::Unix(listener) => StreamHandle::unix(
                match timeout {
                    Some(t) => listener.accept_timeout(t)?,
                    None => listener.accept()?,
                },
                Endpoint::Unix(listener.local_addr().clone())
                    .to_string()
                    .into(),
            ),
            Waiting::Tcp(listener) => StreamHandle::tcp(match timeout {
                Some(t) => listener.accept_timeout(t)?.0,
                None => listener.accept()?.0,
            }),
            Waiting::Seqpacket(listener) => {
                return Ok(Handle::Messages(MessageHandle::SeqpacketInbox(
                    Inbox::accept_first(listener, timeout)?,
                )))
            }
            Waiting::Ready(handle) => return Ok(Handle::Messages(handle)),
        };
        handle.set_stall_timeout(self.options.stall)?;
        Ok(Handle::Stream(handle))
    }
}

/// Options for opening any endpoint: how long to wait for the other side
/// and how long a stream may stall. Built by value:
/// `OpenOptions::new().timeout(d).connect(&endpoint)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenOptions {
    timeout: Option<Duration>,
    stall: Option<Duration>,
}

impl OpenOptions {
    /// No timeouts: wait for the other side as long as it takes (a FIFO
    /// waits for its peer; a socket sender fails at once when nobody
    /// listens).
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits at most `timeout` for the other side: a sender retries while
    /// nobody listens yet; a receiver waits that long for its first peer.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Lets no read or write of an opened stream wait longer than `stall`
    /// for progress ([`StreamHandle::set_stall_timeout`]). On a TCP stream
    /// it is also the connection's user timeout (`TCP_USER_TIMEOUT`), so a
    /// peer host that stops acknowledging is reported as
    /// [`Error::PeerUnresponsive`] within the same time.
    pub fn stall_timeout(mut self, stall: Duration) -> Self {
        self.stall = Some(stall);
        self
    }

    /// Opens the sending side of `endpoint`.
    ///
    /// # Errors
    /// [`Error::TimedOut`] when nobody listened within the timeout; the
    /// facility's own errors otherwise (a missing queue, a refused
    /// connection without a timeout, permissions).
    pub fn connect(&self, endpoint: &Endpoint) -> Result<Handle> {
        let deadline = Deadline::within(self.timeout);
        let handle = match endpoint {
            Endpoint::Fifo(path) => {
                let writer = match self.timeout {
                    None => fifo::Writer::open(path.as_path())?,
                    Some(_) => self.retry(endpoint, deadline, &[libc::ENXIO], || {
                        let writer = fifo::OpenOptions::new()
                            .nonblocking(true)
                            .open_writer(path.as_path())?;
                        writer.set_nonblocking(false)?;
                        Ok(writer)
                    })?,
                };
                return self.stream(StreamHandle::fifo_writer(writer));
            }
            Endpoint::Unix(addr) => {
                let stream = self.retry(endpoint, deadline, ABSENT_UNIX, || {
                    unix::Stream::connect(addr)
                })?;
                return self.stream(StreamHandle::unix(stream, endpoint.to_string().into()));
            }
            Endpoint::Tcp(host_port) => {
                // Each attempt gets the time left, so that a host that
                // does not answer (SYNs dropped) cannot outlast the timeout.
                let attempt = || match (deadline.remaining(), self.timeout) {
                    (Some(left), Some(timeout)) => tcp::Stream::connect_timeout(host_port, left)
                        .map_err(|err| match err {
                            // The whole wait, not the last attempt's share.
                            Error::TimedOut { object, .. } => Error::TimedOut { object, timeout },
                            other => other,
                        }),
                    _ => tcp::Stream::connect(host_port),
                };
                let stream = self.retry(endpoint, deadline, &[libc::ECONNREFUSED], attempt)?;
                return self.stream(StreamHandle::tcp(stream));
            }
            Endpoint::PosixMq(name) => MessageHandle::PosixMq(
                posix_mq::QueueOptions::new()
                    .access(posix_mq::Access::Write)
                    .open(name)?,
            ),
            Endpoint::SysvMq(_) | Endpoint::SysvMqId(_) => {
                MessageHandle::SysvMq(object::open_sysv(endpoint)?)
            }
            Endpoint::Ring(name) => {
                MessageHandle::RingSender(ring::Ring::open(name)?.into_sender()?)
            }
            Endpoint::PubSub(name) => {
                MessageHandle::Publisher(ring::pubsub::PubSubOptions::open(name)?.publish()?)
            }
            Endpoint::UnixSeqpacket(addr) => {
                MessageHandle::Seqpacket(self.retry(endpoint, deadline, ABSENT_UNIX, || {
                    seqpacket::Conn::connect(addr)
                })?)
            }
            Endpoint::UnixDgram(addr) => {
                let mut socket = UnixDatagram::unbound()?;
                self.retry(endpoint, deadline, ABSENT_UNIX, || socket.connect(addr))?;
                MessageHandle::UnixDgram(socket)
            }
            Endpoint::Udp(host_port) => {
                // UDP cannot tell whether anyone listens: a datagram to a
                // port nobody has bound is lost.
                let target = resolve(endpoint, host_port)?;
                let any: SocketAddr = if target.is_ipv6() {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                } else {
                    (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
                };
                let mut socket = UdpSocket::bind_addr(any)?;
                socket.connect_addr(target)?;
                MessageHandle::Udp(socket)
            }
            Endpoint::Shm(_) | Endpoint::SysvShm(_) | Endpoint::SysvShmId(_) => {
                return Err(not_a_channel(endpoint))
            }
            Endpoint::Sem(_) | Endpoint::SysvSem(_) | Endpoint::SysvSemId(_) => {
                return Err(not_data(endpoint))
            }
            Endpoint::Nats(address) => MessageHandle::nats(self.nats_options(), address)?,
        };
        Ok(Handle::Messages(handle))
    }

    /// Prepares the receiving side of `endpoint`: opens a FIFO's read end,
    /// binds a socket (listening, for a stream), opens a queue for reading.
    /// [`Listener::accept`] then waits for the first peer.
    ///
    /// # Errors
    /// The facility's own errors: an address in use, a missing queue,
    /// permissions.
    pub fn listen(&self, endpoint: &Endpoint) -> Result<Listener> {
        let kind = match endpoint {
            Endpoint::Fifo(path) => Waiting::Fifo(
                fifo::OpenOptions::new()
                    .nonblocking(true)
                    .open_reader(path.as_path())?,
            ),
            Endpoint::Unix(addr) => Waiting::Unix(unix::Listener::bind(addr)?),
            Endpoint::Tcp(host_port) => Waiting::Tcp(tcp::Listener::bind(host_port)?),
            Endpoint::UnixSeqpacket(addr) => Waiting::Seqpacket(seqpacket::Listener::bind(addr)?),
            Endpoint::PosixMq(name) => Waiting::Ready(MessageHandle::PosixMq(
                posix_mq::QueueOptions::new()
                    .access(posix_mq::Access::Read)
                    .open(name)?,
            )),
            Endpoint::SysvMq(_) | Endpoint::SysvMqId(_) => {
                Waiting::Ready(MessageHandle::SysvMq(object::open_sysv(endpoint)?))
            }
            Endpoint::Ring(name) => Waiting::Ready(MessageHandle::RingReceiver(
                ring::Ring::open(name)?.into_receiver()?,
            )),
            Endpoint::PubSub(name) => Waiting::Ready(MessageHandle::Subscriber(
                ring::pubsub::PubSubOptions::open(name)?.subscribe()?,
            )),
            Endpoint::UnixDgram(addr) => {
                Waiting::Ready(MessageHandle::UnixDgram(UnixDatagram::bind(addr)?))
            }
            Endpoint::Udp(host_port) => {
                Waiting::Ready(MessageHandle::Udp(UdpSocket::bind(host_port)?))
            }
            Endpoint::Shm(_) | Endpoint::SysvShm(_) | Endpoint::SysvShmId(_) => {
                return Err(not_a_channel(endpoint))
            }
            Endpoint::Sem(_) | Endpoint::SysvSem(_) | Endpoint::SysvSemId(_) => {
                return Err(not_data(endpoint))
            }
            Endpoint::Nats(address) => {
                Waiting::Ready(MessageHandle::nats(self.nats_options(), address)?)
            }
        };
        Ok(Listener {
            kind,
            options: *self,
        })
    }

    /// How long a `nats://` endpoint waits for its server: the timeout.
    fn nats_options(&self) -> Option<Duration> {
        self.timeout
    }

    fn stream(&self, mut handle: StreamHandle) -> Result<Handle> {
        handle.set_stall_timeout(self.stall)?;
        Ok(Handle::Stream(handle))
    }

    /// Retries `attempt` while it fails with an errno in `absent` (the peer
    /// is not there yet) until `deadline`; without a timeout, tries once.
    fn retry<T>(
        &self,
        endpoint: &Endpoint,
        deadline: Deadline,
        absent: &[i32],
        mut attempt: impl FnMut() -> Result<T>,
    ) -> Result<T> {
        let Some(timeout) = self.timeout else {
            return attempt();
        };
        loop {
            match attempt() {
                Err(err) if err.raw_os_error().is_some_and(|e| absent.contains(&e)) => {
                    if deadline.passed() {
                        return Err(Error::TimedOut {
                            object: endpoint.to_string().into(),
                            timeout,
                        });
                    }
                    sleep(RETRY.min(deadline.remaining().unwrap_or(RETRY)));
                }
                other => return other,
            }
        }
    }
}

/// A UNIX socket address nobody has bound (no file) or nobody listens on.
const ABSENT_UNIX: &[i32] = &[libc::ECONNREFUSED, libc::ENOENT];

fn resolve(endpoint: &Endpoint, host_port: &HostPort) -> Result<SocketAddr> {
    let mut resolved = (host_port.host.as_str(), host_port.port)
        .to_socket_addrs()
        .map_err(|e| Error::InvalidEndpoint {
            input: endpoint.to_string(),
            reason: format!("resolve: {e}"),
        })?;
    resolved.next().ok_or_else(|| Error::InvalidEndpoint {
        input: endpoint.to_string(),
        reason: "the host has no address".to_owned(),
    })
}

/// Shared memory is read and written in place, not sent and received.
fn not_a_channel(endpoint: &Endpoint) -> Error {
    Error::Unsupported {
        object: endpoint.to_string().into(),
        what: "sending and receiving".into(),
        reason: "shared memory is read and written in place (unipc read / unipc write; unipc::shm)"
            .into(),
    }
}

/// A synchronization primitive carries no data: the refusal to send or
/// receive through one.
/// A semaphore carries a count, not data.
fn not_data(endpoint: &Endpoint) -> Error {
    let reason = match endpoint {
        Endpoint::Sem(_) => {
            "a semaphore carries no data, only a count: unipc sem post / wait / get (unipc::sync::posix_sem)"
        }
        _ => "a semaphore set carries no data: operate on it with unipc semop (unipc::sync::sysv_sem)",
    };
    Error::Unsupported {
        object: endpoint.to_string().into(),
        what: "sending and receiving".into(),
        reason: reason.into(),
    }
}
