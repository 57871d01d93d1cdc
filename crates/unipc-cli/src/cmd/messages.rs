//! Opening message endpoints for `send` and `recv`: each facility behind
//! the library's `Messenger` interface.

use unipc::message::sysv_mq::{self, Select};
use unipc::message::{posix_mq, Messenger};
use unipc::stream::seqpacket;
use unipc::Endpoint;

use super::streams::{retry, ECONNREFUSED, ENOENT};

/// A message endpoint opened for sending or receiving.
pub enum Opened {
    /// Any facility behind the common interface.
    Generic(Box<dyn Messenger>),
    /// A System V queue, kept concrete for its type selection on receive.
    Sysv(sysv_mq::Queue),
}

impl Opened {
    /// The common interface.
    pub fn messenger(&self) -> &dyn Messenger {
        match self {
            Opened::Generic(m) => m.as_ref(),
            Opened::Sysv(q) => q,
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
    timeout: Option<std::time::Duration>,
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
    timeout: Option<std::time::Duration>,
) -> Option<unipc::Result<Opened>> {
    Some(match endpoint {
        Endpoint::PosixMq(name) => posix_mq::QueueOptions::new()
            .access(posix_mq::Access::Read)
            .open(name)
            .map(|q| Opened::Generic(Box::new(q))),
        Endpoint::SysvMq(key) => sysv_mq::QueueOptions::new().open(*key).map(Opened::Sysv),
        Endpoint::UnixSeqpacket(addr) => seqpacket::Listener::bind(addr).and_then(|listener| {
            let conn = match timeout {
                Some(t) => listener.accept_timeout(t)?,
                None => listener.accept()?,
            };
            Ok(Opened::Generic(Box::new(conn)))
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
