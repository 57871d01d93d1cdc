//! Opening message endpoints for `send` and `recv`: each facility behind
//! the library's `Messenger` interface.

use std::io;
use std::time::Duration;

use unipc::message::sysv_mq::{self, Select};
use unipc::message::{posix_mq, Messenger, Received, Wait};
use unipc::stream::seqpacket;
use unipc::Endpoint;

use super::streams::{retry, ECONNREFUSED, ENOENT};

/// A message endpoint opened for sending or receiving.
pub enum Opened {
    /// Any facility behind the common interface.
    Generic(Box<dyn Messenger>),
    /// A System V queue, kept concrete for its type selection on receive.
    Sysv(sysv_mq::Queue),
    /// A seqpacket connection accepted to receive, with its listener.
    Seqpacket(SeqpacketLink),
}

/// The receiving side of `unix-seqpacket:`: one connection at a time, and
/// when its peer hangs up the next one is accepted, so `recv --count N`
/// takes the messages of N successive `send`s (each one connection).
pub struct SeqpacketLink {
    listener: seqpacket::Listener,
    conn: seqpacket::Conn,
    timeout: Option<Duration>,
}

impl SeqpacketLink {
    fn accept(
        listener: &seqpacket::Listener,
        timeout: Option<Duration>,
    ) -> unipc::Result<seqpacket::Conn> {
        match timeout {
            Some(t) => listener.accept_timeout(t),
            None => listener.accept(),
        }
    }

    /// The next message, from this peer or, once it has hung up, the next.
    pub fn recv_into(&mut self, buf: &mut [u8], wait: Wait) -> unipc::Result<Received> {
        loop {
            match self.conn.recv_into(buf, wait) {
                Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
                    self.conn = Self::accept(&self.listener, self.timeout)?;
                }
                other => return other,
            }
        }
    }
}

impl Opened {
    /// The common interface.
    pub fn messenger(&self) -> &dyn Messenger {
        match self {
            Opened::Generic(m) => m.as_ref(),
            Opened::Sysv(q) => q,
            Opened::Seqpacket(link) => &link.conn,
        }
    }
}

/// Whether `endpoint` moves whole messages (rather than a byte stream).
pub fn is_message_endpoint(endpoint: &Endpoint) -> bool {
    !matches!(
        endpoint,
        Endpoint::Fifo(_) | Endpoint::Unix(_) | Endpoint::Tcp(_)
    )
}

/// Opens `endpoint` to send to it, waiting at most `timeout` for a socket's
/// listener or receiver to appear; `None` when it is not a message endpoint.
pub fn open_sending(
    endpoint: &Endpoint,
    timeout: Option<Duration>,
) -> Option<unipc::Result<Opened>> {
    Some(match endpoint {
        Endpoint::PosixMq(name) => posix_mq::QueueOptions::new()
            .access(posix_mq::Access::Write)
            .open(name)
            .map(|q| Opened::Generic(Box::new(q))),
        Endpoint::SysvMq(key) => sysv_mq::QueueOptions::new().open(*key).map(Opened::Sysv),
        Endpoint::UnixSeqpacket(addr) => retry(endpoint, timeout, &[ECONNREFUSED, ENOENT], || {
            seqpacket::Conn::connect(addr).map(|c| Opened::Generic(Box::new(c)))
        }),
        _ => return crate::cmd::dgram::open_sending(endpoint, timeout),
    })
}

/// Opens `endpoint` to receive from it: a queue is opened, a socket bound
/// (and for seqpacket, one peer accepted within `timeout`). `None` when it
/// is not a message endpoint.
pub fn open_receiving(
    endpoint: &Endpoint,
    timeout: Option<Duration>,
) -> Option<unipc::Result<Opened>> {
    Some(match endpoint {
        Endpoint::PosixMq(name) => posix_mq::QueueOptions::new()
            .access(posix_mq::Access::Read)
            .open(name)
            .map(|q| Opened::Generic(Box::new(q))),
        Endpoint::SysvMq(key) => sysv_mq::QueueOptions::new().open(*key).map(Opened::Sysv),
        Endpoint::UnixSeqpacket(addr) => seqpacket::Listener::bind(addr).and_then(|listener| {
            let conn = SeqpacketLink::accept(&listener, timeout)?;
            Ok(Opened::Seqpacket(SeqpacketLink {
                listener,
                conn,
                timeout,
            }))
        }),
        _ => return crate::cmd::dgram::open_receiving(endpoint),
    })
}

/// The System V receive selection for `--type N` (as msgrcv reads it) or
/// `--except N`.
pub fn selection(type_: Option<i64>, except: Option<i64>) -> Select {
    match (type_, except) {
        (_, Some(n)) => Select::Except(n),
        (Some(n), None) if n > 0 => Select::Exactly(n),
        (Some(n), None) if n < 0 => Select::AtMost(-n),
        _ => Select::Any,
    }
}
