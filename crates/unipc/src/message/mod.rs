//! Message facilities: each receive returns exactly one whole message, as
//! it was sent.
//!
//! | module | facility | tag on each message |
//! |---|---|---|
//! | [`posix_mq`] | POSIX message queue (`posix-mq:/NAME`) | priority, highest first |
//! | [`sysv_mq`] | System V message queue (`sysv-mq:KEY`) | type, selectable on receive |
//! | [`dgram`] | UNIX datagram (`unix-dgram:`) and UDP (`udp:`) sockets | none |
//!
//! Every facility implements [`Messenger`], so code written against it works
//! with any of them unchanged. A message larger than the facility allows is
//! refused with [`Error::MessageTooLarge`]; a receive buffer smaller than the
//! next message is [`Error::BufferTooSmall`], never a silent truncation; a
//! non-blocking send to a full queue is [`Error::Full`] and loses nothing.
//!
//! With the `typed` feature, `typed` carries serde values over any of
//! them (and over any byte stream), CBOR-encoded behind a checked header.

use std::time::Duration;

use crate::error::ObjectName;
use crate::{Error, Result};

pub mod dgram;
pub mod nats;
pub mod posix_mq;
pub mod ring;
pub mod sysv_mq;
#[cfg(feature = "typed")]
pub mod typed;

/// How long a send or receive may wait for room or for a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Wait {
    /// Wait as long as it takes.
    Forever,
    /// Do not wait: [`Error::Full`] or [`Error::Empty`] when it would.
    Never,
    /// Wait at most this long, then [`Error::TimedOut`].
    For(Duration),
}

/// The tag a facility attaches to a message: a POSIX priority or a System V
/// type. Datagram sockets carry none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tag {
    /// No tag: the facility's default (priority 0, type 1).
    #[default]
    None,
    /// A POSIX message queue priority (0 up to `MQ_PRIO_MAX - 1`).
    Priority(u32),
    /// A System V message type (a positive number).
    Type(i64),
}

/// What a receive returns besides the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Received {
    /// The message's length in bytes.
    pub len: usize,
    /// Its priority or type, where the facility has one.
    pub tag: Tag,
}

impl Received {
    /// A message of `len` bytes with `tag`, as a [`Messenger`] outside this
    /// crate reports it.
    pub fn new(len: usize, tag: Tag) -> Received {
        Received { len, tag }
    }
}

/// The limits of one message object, read from the object itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The largest message the object accepts, in bytes.
    pub max_message_size: usize,
    /// How many messages it holds before a send blocks, when the facility
    /// counts messages (a System V queue counts bytes; sockets count buffer
    /// space).
    pub max_messages: Option<usize>,
}

impl Limits {
    /// The limits of an object that takes messages of up to
    /// `max_message_size` bytes and holds `max_messages` of them (`None`
    /// when it does not count messages).
    pub fn new(max_message_size: usize, max_messages: Option<usize>) -> Limits {
        Limits {
            max_message_size,
            max_messages,
        }
    }
}

/// The interface every message facility implements.
///
/// A facility implements the two required methods; the rest are provided
/// and behave the same everywhere.
///
/// ```
/// use unipc::message::{Messenger, Wait};
///
/// /// Drains whatever is waiting, from any message facility.
/// fn drain(queue: &dyn Messenger) -> unipc::Result<Vec<Vec<u8>>> {
///     let mut out = Vec::new();
///     loop {
///         match queue.recv_vec(Wait::Never) {
///             Ok((bytes, _)) => out.push(bytes),
///             Err(unipc::Error::Empty { .. }) => return Ok(out),
///             Err(other) => return Err(other),
///         }
///     }
/// }
/// ```
pub trait Messenger {
    /// The object's endpoint in words (`posix-mq:/jobs`), as errors name it.
    fn object(&self) -> ObjectName;

    /// The object's limits.
    ///
    /// # Errors
    /// When the limits cannot be read from the kernel.
    fn limits(&self) -> Result<Limits>;

    /// The size of a receive buffer that takes any message that can arrive
    /// in one call, which is what [`Messenger::recv_vec`] allocates.
    ///
    /// The provided method returns [`Limits::max_message_size`]. Sockets
    /// override it, since what they receive is bounded by their peer's
    /// limit, not their own: a buffer this large lets a UNIX datagram or
    /// seqpacket socket receive without first peeking at the message's
    /// size (see [`dgram`] and [`crate::stream::seqpacket`]).
    ///
    /// # Errors
    /// When the limits cannot be read from the kernel.
    fn recv_buffer_hint(&self) -> Result<usize> {
        Ok(self.limits()?.max_message_size)
    }

    /// Sends one message with `tag`, waiting as `wait` says.
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`], [`Error::Full`], [`Error::TimedOut`], a
    /// tag the facility does not have, or an OS error.
    fn send_tagged(&self, message: &[u8], tag: Tag, wait: Wait) -> Result<()>;

    /// Receives one message into `buf`, waiting as `wait` says.
    ///
    /// A buffer of [`Messenger::recv_buffer_hint`] bytes or more takes one
    /// call (on a UNIX socket, once `/proc/sys/net/core` could be read).
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] (the message stays queued where the facility
    /// allows: a UNIX socket given at least [`Messenger::recv_buffer_hint`]
    /// bytes consumes a message longer still, which only a sender with
    /// `CAP_NET_ADMIN` can send), [`Error::Empty`], [`Error::TimedOut`], or
    /// an OS error.
    fn recv_into(&self, buf: &mut [u8], wait: Wait) -> Result<Received>;

    /// Receives one message into `buf` in a single call where the facility
    /// can, whatever the size of `buf`, waiting as `wait` says.
    ///
    /// For a reader that knows how long its peers' messages are and wants
    /// the raw call's cost. Unlike [`Messenger::recv_into`], a message
    /// longer than `buf` may be **discarded**: consumed, and reported as
    /// [`Error::BufferTooSmall`] with its size (never handed over cut).
    ///
    /// The provided method is [`Messenger::recv_into`], which already takes
    /// one call and never discards; the socket facilities, whose
    /// [`Messenger::recv_into`] peeks at the size first when `buf` is
    /// smaller than [`Messenger::recv_buffer_hint`], override it with one
    /// `recv(MSG_TRUNC)`.
    ///
    /// # Errors
    /// As [`Messenger::recv_into`]; after [`Error::BufferTooSmall`] the
    /// message may be gone.
    fn recv_into_or_discard(&self, buf: &mut [u8], wait: Wait) -> Result<Received> {
        self.recv_into(buf, wait)
    }

    /// Says that the caller is about to poll: until `polling` is false
    /// again, every call passes [`Wait::Never`]. A facility whose calls
    /// that must not wait are cheaper on a non-blocking descriptor switches
    /// to one (a POSIX queue: `mq_send` on an `O_NONBLOCK` descriptor
    /// instead of `mq_timedsend` with a deadline already passed); calls
    /// with another [`Wait`] then fail at once, as on any non-blocking
    /// descriptor. The default does nothing.
    ///
    /// # Errors
    /// The facility's, from switching its descriptor.
    fn set_polling(&self, polling: bool) -> Result<()> {
        let _ = polling;
        Ok(())
    }

    /// A [`Doorbell`] for a thread that waits on this side's behalf
    /// without holding it: the async [`Bridge`](crate::asynch) sleeps on
    /// it between its non-blocking calls instead of polling. A facility
    /// with no descriptor and a way to sleep until its other side moves
    /// (the `ring:` and `pubsub:` futexes) returns one; the default, and
    /// every facility with nothing better than polling (System V queues),
    /// returns `None`.
    ///
    /// # Errors
    /// The facility's, from making the doorbell (mapping the ring again).
    fn doorbell(&self) -> Result<Option<Box<dyn Doorbell>>> {
        Ok(None)
    }

    /// Sends one message with the facility's default tag, blocking.
    ///
    /// # Errors
    /// As [`Messenger::send_tagged`].
    fn send(&self, message: &[u8]) -> Result<()> {
        self.send_tagged(message, Tag::None, Wait::Forever)
    }

    /// Sends one message without waiting.
    ///
    /// # Errors
    /// [`Error::Full`] when there is no room; the message was not sent.
    fn try_send(&self, message: &[u8]) -> Result<()> {
        self.send_tagged(message, Tag::None, Wait::Never)
    }

    /// Receives one message into a new `Vec` of
    /// [`Messenger::recv_buffer_hint`] bytes, cut to the message.
    ///
    /// # Errors
    /// As [`Messenger::recv_into`].
    fn recv_vec(&self, wait: Wait) -> Result<(Vec<u8>, Tag)> {
        let mut buf = vec![0; self.recv_buffer_hint()?];
        let got = self.recv_into(&mut buf, wait)?;
        buf.truncate(got.len);
        Ok((buf, got.tag))
    }

    /// Receives one message, blocking.
    ///
    /// # Errors
    /// As [`Messenger::recv_into`].
    fn recv(&self) -> Result<Vec<u8>> {
        Ok(self.recv_vec(Wait::Forever)?.0)
    }

    /// Receives one message without waiting.
    ///
    /// # Errors
    /// [`Error::Empty`] when nothing is waiting.
    fn try_recv(&self) -> Result<Vec<u8>> {
        Ok(self.recv_vec(Wait::Never)?.0)
    }
}

/// A reference to a facility is the facility: `Typed<&Queue, T>` borrows.
impl<M: Messenger + ?Sized> Messenger for &M {
    fn object(&self) -> ObjectName {
        (**self).object()
    }
    fn limits(&self) -> Result<Limits> {
        (**self).limits()
    }
    fn recv_buffer_hint(&self) -> Result<usize> {
        (**self).recv_buffer_hint()
    }
    fn send_tagged(&self, message: &[u8], tag: Tag, wait: Wait) -> Result<()> {
        (**self).send_tagged(message, tag, wait)
    }
    fn recv_into(&self, buf: &mut [u8], wait: Wait) -> Result<Received> {
        (**self).recv_into(buf, wait)
    }
    fn recv_into_or_discard(&self, buf: &mut [u8], wait: Wait) -> Result<Received> {
        (**self).recv_into_or_discard(buf, wait)
    }
    fn set_polling(&self, polling: bool) -> Result<()> {
        (**self).set_polling(polling)
    }
    fn doorbell(&self) -> Result<Option<Box<dyn Doorbell>>> {
        (**self).doorbell()
    }
}

/// A boxed facility is the facility: `Typed<Box<dyn Messenger>, T>`.
impl<M: Messenger + ?Sized> Messenger for Box<M> {
    fn object(&self) -> ObjectName {
        (**self).object()
    }
    fn limits(&self) -> Result<Limits> {
        (**self).limits()
    }
    fn recv_buffer_hint(&self) -> Result<usize> {
        (**self).recv_buffer_hint()
    }
    fn send_tagged(&self, message: &[u8], tag: Tag, wait: Wait) -> Result<()> {
        (**self).send_tagged(message, tag, wait)
    }
    fn recv_into(&self, buf: &mut [u8], wait: Wait) -> Result<Received> {
        (**self).recv_into(buf, wait)
    }
    fn recv_into_or_discard(&self, buf: &mut [u8], wait: Wait) -> Result<Received> {
        (**self).recv_into_or_discard(buf, wait)
    }
    fn set_polling(&self, polling: bool) -> Result<()> {
        (**self).set_polling(polling)
    }
    fn doorbell(&self) -> Result<Option<Box<dyn Doorbell>>> {
        (**self).doorbell()
    }
}

/// Sleeps until a facility's other side may have moved, for a thread that
/// waits on behalf of a side it does not hold (see
/// [`Messenger::doorbell`]).
///
/// A wake-up says only that a call may now succeed: the waiter makes the
/// side's non-blocking call to find out, and waits again if it did not.
/// The sleep follows the side's own protocol (its sleeping flag is raised,
/// so the other side wakes it exactly as it would wake the side itself),
/// and it also ends after `limit`, or at once after
/// [`interrupt`](Self::interrupt).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use unipc::message::ring::RingOptions;
/// use unipc::message::{Messenger, Wait};
/// use unipc::name::PosixName;
///
/// let name: PosixName = format!("/doc-doorbell-{}", std::process::id()).parse()?;
/// let ring = RingOptions::new().create(&name)?;
/// let reader = ring.into_receiver()?;
/// let writer = unipc::message::ring::Ring::open(&name)?.into_sender()?;
/// let bell = reader.doorbell()?.expect("a ring has a doorbell");
/// writer.send(b"hi")?;
/// bell.wait(Duration::from_secs(5))?; // returns at once: a message waits
/// assert_eq!(reader.recv_vec(Wait::Never)?.0, b"hi");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Doorbell: Send + Sync {
    /// Sleeps until the other side moves, `limit` passes or
    /// [`interrupt`](Self::interrupt) is called; returns at once when a
    /// call may already succeed.
    ///
    /// # Errors
    /// [`Error::PeerDied`] when the other side died (reported once, as the
    /// side's own waits report it: the side's next wait does not report it
    /// again); an OS error from the futex.
    fn wait(&self, limit: Duration) -> Result<()>;

    /// Ends a [`wait`](Self::wait) in progress, from any thread (a wait
    /// that has not started yet may still sleep its `limit`).
    fn interrupt(&self);
}

/// The error for a tag the facility does not carry.
pub(crate) fn unsupported_tag(object: ObjectName, tag: Tag, facility_has: &'static str) -> Error {
    Error::Unsupported {
        object,
        what: format!("tag {tag:?}"),
        reason: format!("this facility carries {facility_has}"),
    }
}
