//! [`MessageHandle`]: any message endpoint, opened, behind one type.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::error::ObjectName;
use crate::message::dgram::{UdpSocket, UnixDatagram};
use crate::message::sysv_mq::{self, Select};
use crate::message::{posix_mq, ring, Limits, Messenger, Received, Tag, Wait};
use crate::stream::seqpacket;
use crate::Result;

/// One side of a message endpoint, opened by
/// [`OpenOptions`](super::OpenOptions). It implements [`Messenger`]; the
/// facility itself is reachable for what only it can do (a System V
/// queue's type selection: [`recv_select`](Self::recv_select)).
///
/// # Examples
/// ```
/// use unipc::message::{Messenger, Wait};
/// use unipc::open::OpenOptions;
///
/// let endpoint: unipc::Endpoint = "posix-mq:/open-demo".parse()?;
/// # let _ = unipc::open::remove(&endpoint);
/// let _queue = unipc::message::posix_mq::QueueOptions::new().create(&"/open-demo".parse()?)?;
/// let tx = OpenOptions::new().connect(&endpoint)?.into_messages().unwrap();
/// let rx = OpenOptions::new().listen(&endpoint)?.accept()?.into_messages().unwrap();
/// tx.send(b"job 1")?;
/// assert_eq!(rx.recv_vec(Wait::Never)?.0, b"job 1");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[non_exhaustive]
pub enum MessageHandle {
    /// `posix-mq:/NAME`.
    PosixMq(posix_mq::Queue),
    /// `sysv-mq:KEY` or `sysv-mq:id=N`.
    SysvMq(sysv_mq::Queue),
    /// `unix-dgram:ADDR`: bound (receiving) or connected (sending).
    UnixDgram(UnixDatagram),
    /// `udp:HOST:PORT`: bound (receiving) or connected (sending).
    Udp(UdpSocket),
    /// `unix-seqpacket:ADDR`, connected (sending).
    Seqpacket(seqpacket::Conn),
    /// `unix-seqpacket:ADDR`, listening (receiving): one peer after another.
    SeqpacketInbox(Inbox),
    /// `ring:/NAME`, the writer's side.
    RingSender(ring::Sender),
    /// `ring:/NAME`, the reader's side.
    RingReceiver(ring::Receiver),
    /// `pubsub:/NAME`, the publisher.
    Publisher(ring::pubsub::Publisher),
    /// `pubsub:/NAME`, one subscriber.
    Subscriber(ring::pubsub::Subscriber),
    /// `nats://HOST:PORT/SUBJECT`: a JetStream stream (feature `nats`).
    #[cfg(feature = "nats")]
    Nats(Box<crate::message::nats::Nats>),
}

impl MessageHandle {
    /// The facility behind the common interface.
    pub fn messenger(&self) -> &dyn Messenger {
        match self {
            MessageHandle::PosixMq(q) => q,
            MessageHandle::SysvMq(q) => q,
            MessageHandle::UnixDgram(s) => s,
            MessageHandle::Udp(s) => s,
            MessageHandle::Seqpacket(c) => c,
            MessageHandle::SeqpacketInbox(i) => i,
            MessageHandle::RingSender(s) => s,
            MessageHandle::RingReceiver(r) => r,
            MessageHandle::Publisher(p) => p,
            MessageHandle::Subscriber(s) => s,
            #[cfg(feature = "nats")]
            MessageHandle::Nats(n) => &**n,
        }
    }

    /// Connects to a `nats://` endpoint's stream, waiting at most
    /// `connect_timeout` for the server (5 s when `None`).
    pub(crate) fn nats(
        connect_timeout: Option<Duration>,
        address: &crate::endpoint::NatsAddress,
    ) -> Result<MessageHandle> {
        #[cfg(feature = "nats")]
        {
            let mut options = crate::message::nats::NatsOptions::new();
            if let Some(timeout) = connect_timeout {
                options = options.connect_timeout(timeout);
            }
            Ok(MessageHandle::Nats(Box::new(options.open(address)?)))
        }
        #[cfg(not(feature = "nats"))]
        {
            let _ = connect_timeout;
            Err(without_nats(address))
        }
    }

    /// Receives the first message that `select` picks (System V queues);
    /// on every other facility only [`Select::Any`] is accepted.
    ///
    /// # Errors
    /// As [`Messenger::recv_into`]; [`crate::Error::Unsupported`] for a
    /// selection the facility cannot make.
    pub fn recv_select(&self, select: Select, buf: &mut [u8], wait: Wait) -> Result<Received> {
        match (self, select) {
            (MessageHandle::SysvMq(q), _) => q.recv_select(select, buf, wait),
            (other, Select::Any) => other.messenger().recv_into(buf, wait),
            (other, _) => Err(crate::Error::Unsupported {
                object: other.object(),
                what: format!("selection {select:?}"),
                reason: "only System V queues select messages by type".into(),
            }),
        }
    }
}

impl Messenger for MessageHandle {
    fn object(&self) -> ObjectName {
        self.messenger().object()
    }

    fn limits(&self) -> Result<Limits> {
        self.messenger().limits()
    }

    fn recv_buffer_hint(&self) -> Result<usize> {
        self.messenger().recv_buffer_hint()
    }

    fn send_tagged(&self, message: &[u8], tag: Tag, wait: Wait) -> Result<()> {
        self.messenger().send_tagged(message, tag, wait)
    }

    fn recv_into(&self, buf: &mut [u8], wait: Wait) -> Result<Received> {
        self.messenger().recv_into(buf, wait)
    }

    fn recv_into_or_discard(&self, buf: &mut [u8], wait: Wait) -> Result<Received> {
        self.messenger().recv_into_or_discard(buf, wait)
    }

    fn set_polling(&self, polling: bool) -> Result<()> {
        self.messenger().set_polling(polling)
    }

    fn doorbell(&self) -> Result<Option<Box<dyn crate::message::Doorbell>>> {
        self.messenger().doorbell()
    }
}

impl fmt::Debug for MessageHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MessageHandle")
            .field(&self.messenger().object())
            .finish()
    }
}

/// The receiving side of a `unix-seqpacket:` endpoint: a listener and the
/// connection of its current peer. When that peer hangs up, the next one is
/// accepted (waiting at most the open's timeout), so successive senders,
/// each with its own connection, reach one receiver in turn.
///
/// Sending goes to the current peer.
pub struct Inbox {
    listener: seqpacket::Listener,
    conn: std::sync::Mutex<seqpacket::Conn>,
    timeout: Option<Duration>,
}

impl Inbox {
    pub(crate) fn accept_first(
        listener: seqpacket::Listener,
        timeout: Option<Duration>,
    ) -> Result<Inbox> {
        let conn = Self::accept(&listener, timeout)?;
        Ok(Inbox {
            listener,
            conn: std::sync::Mutex::new(conn),
            timeout,
        })
    }

    fn accept(
        listener: &seqpacket::Listener,
        timeout: Option<Duration>,
    ) -> Result<seqpacket::Conn> {
        match timeout {
            Some(t) => listener.accept_timeout(t),
            None => listener.accept(),
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, seqpacket::Conn> {
        // A panic while holding the lock leaves a usable connection.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next<T>(&self, mut op: impl FnMut(&seqpacket::Conn) -> Result<T>) -> Result<T> {
        let mut conn = self.conn();
        loop {
            match op(&conn) {
                Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
                    *conn = Self::accept(&self.listener, self.timeout)?;
                }
                other => return other,
            }
        }
    }
}

impl Messenger for Inbox {
    fn object(&self) -> ObjectName {
        self.conn().object()
    }

    fn limits(&self) -> Result<Limits> {
        self.conn().limits()
    }

    fn recv_buffer_hint(&self) -> Result<usize> {
        self.conn().recv_buffer_hint()
    }

    fn send_tagged(&self, message: &[u8], tag: Tag, wait: Wait) -> Result<()> {
        self.conn().send_tagged(message, tag, wait)
    }

    fn recv_into(&self, buf: &mut [u8], wait: Wait) -> Result<Received> {
        self.next(|conn| conn.recv_into(buf, wait))
    }

    fn recv_into_or_discard(&self, buf: &mut [u8], wait: Wait) -> Result<Received> {
        self.next(|conn| conn.recv_into_or_discard(buf, wait))
    }
}

impl fmt::Debug for Inbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbox")
            .field("object", &self.object())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The error for a `nats://` endpoint in a build without the `nats`
/// feature.
#[cfg(not(feature = "nats"))]
pub(crate) fn without_nats(address: &crate::endpoint::NatsAddress) -> crate::Error {
    crate::Error::Unsupported {
        object: crate::Endpoint::Nats(address.clone()).to_string().into(),
        what: "NATS".into(),
        reason: "this build of unipc has no NATS client: build with the `nats` feature".into(),
    }
}
