//! Typed messages: serde values over any message facility
//! ([`Typed`]) or any byte stream ([`Framed`]), behind the `typed` feature.
//!
//! Where it sits: above [`Messenger`] and [`std::io::Read`]/[`Write`], so
//! every facility (POSIX and System V queues, UNIX and UDP datagrams,
//! seqpacket, the shared-memory ring and pubsub) carries typed values
//! unchanged, with its own tags ([`Tag`]: priorities, System V types).
//!
//! # Encoding
//! Self-describing, so that a message can be decoded without its Rust
//! type (`unipc recv --json --typed` prints any message as JSON, and
//! [`decode_value`] gives a [`Value`]), in one of two encodings that the
//! header's encoding byte names ([`Encoding`]); a receiver decodes either,
//! a sender chooses with [`Typed::with_encoding`] /
//! [`Framed::with_encoding`]:
//! - **MessagePack** through `rmp-serde`, structs as maps of their field
//!   names (`write_named`), so the value still describes itself: **the
//!   default**, because it is the cheaper of the two per message.
//! - **CBOR** (RFC 8949) through `ciborium`: standard, with a registry of
//!   tags; decoded as it always was.
//!
//! Measured with `cargo bench -p unipc --features typed --bench
//! typed_round_trip` (a five-field struct, 62 bytes as MessagePack, 60 as
//! CBOR; 2 CPUs, load average about 2.5): `Typed` adds 120 ns a message
//! with MessagePack and 374 ns with CBOR over an in-memory queue
//! (ciborium's decoder is the difference: about 340 ns a decode against
//! rmp-serde's 80); a round trip between two processes, typed over raw
//! bytes, is x1.24 (MessagePack) / x1.47 (CBOR) on a POSIX queue, x1.23 /
//! x1.44 on a System V queue, x1.22 / x1.39 on seqpacket and x1.05 / x1.15
//! on the shared-memory ring. Both decoders are held to the same bounds
//! (below), and [`Value`] is CBOR's data model for either: MessagePack's
//! maps, arrays, strings, binaries, numbers and nil map onto it (an
//! extension type becomes an array of its type and bytes), so the CLI and
//! [`decode_value`] need no second value type and no other crate.
//!
//! Each message is a 16-byte header, then one value (layout in the source
//! of `codec.rs`): the magic `"UPCT"`, a format version ([`VERSION`]), the
//! encoding byte, the number of descriptors passed alongside, and an
//! optional [`TypeTag`]. A receiver refuses another version, an encoding
//! it does not know or another tag with [`Error::TypedMismatch`] before
//! decoding; a message without the header, or whose body is not one `T`
//! with nothing after it, is [`Error::Undecodable`] carrying the raw bytes.
//! Nothing is ever misread, and nothing panics.
//!
//! # Limits
//! - Sending: the encoded size (header included) is what the facility
//!   checks against its [`Limits`](super::Limits) before any system call:
//!   [`Error::MessageTooLarge`] names the encoded size and the limit.
//! - Receiving: input is bounded by the message (a facility's limit, or
//!   [`Framed::max_frame_size`], checked before a byte is allocated).
//!   Within it, ciborium grows strings and byte strings as their bytes
//!   actually arrive, rmp-serde reads them from the message itself after
//!   checking the declared length against what is left of it, and serde
//!   preallocates at most 1 MiB for a sequence whatever length it
//!   declares, so a declared length (2^62 in CBOR, 2^32 - 1 in
//!   MessagePack) is an error, not an allocation (counted in
//!   `tests/alloc.rs`); nesting deeper than [`RECURSION_LIMIT`] is an
//!   error, not a stack overflow, in either encoding (all tested).
//!
//! # Descriptors
//! On UNIX sockets a typed value may carry open descriptors
//! (`SCM_RIGHTS`), received close-on-exec: on a seqpacket connection
//! ([`crate::stream::seqpacket::Conn`]) with [`Typed::send_with_fds`] /
//! [`Typed::recv_with_fds`], on a UNIX stream
//! ([`crate::stream::unix::Stream`]) with [`Framed::send_with_fds`] /
//! [`Framed::recv_with_fds`] (attached to the frame's first byte). At most
//! [`MAX_FDS`] per message, a typed error past it (never a panic, unlike
//! ipc-channel past 64); more than the receiver accepts, or descriptors
//! the kernel had to drop (`MSG_CTRUNC`), is [`Error::TooManyFds`]; the
//! count is in the header, so a receive that got another number says so.
//!
//! # Examples
//! ```
//! use serde::{Deserialize, Serialize};
//! use unipc::message::dgram::UnixDatagram;
//! use unipc::message::typed::{TypeTag, Typed};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct Job { id: u64, cmd: String }
//!
//! let (a, b) = UnixDatagram::pair()?;
//! let tag = TypeTag::named("example.Job/v1");
//! let tx = Typed::<_, Job>::new(a).with_type_tag(tag);
//! let rx = Typed::<_, Job>::new(b).with_type_tag(tag);
//! tx.send(&Job { id: 1, cmd: "make".into() })?;
//! assert_eq!(rx.recv()?, Job { id: 1, cmd: "make".into() });
//! # Ok::<(), unipc::Error>(())
//! ```

use std::fmt;
use std::io::Write;
use std::marker::PhantomData;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Mutex;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{sysv_mq, Messenger, Received, Tag, Wait};
use crate::error::ObjectName;
use crate::stream::seqpacket;
use crate::{Error, Result};

mod codec;
mod framed;

pub use ciborium::Value;
pub use codec::{
    decode, decode_from, decode_value, encode, encode_as, Encoding, Header, TypeTag, HEADER_LEN,
    MAGIC, RECURSION_LIMIT, VERSION,
};
pub use framed::{Framed, DEFAULT_MAX_FRAME, FRAME_PREFIX_LEN};

use codec::Expect;

/// The most descriptors one typed message may carry: the kernel's
/// `SCM_MAX_FD` (253). A send of more is [`Error::LimitExceeded`] before
/// any system call.
pub const MAX_FDS: usize = crate::sys::socket::SCM_MAX_FD;

/// A facility that carries open descriptors with a message (`SCM_RIGHTS`):
/// a seqpacket connection, a UNIX datagram socket. [`Typed`] over one has
/// `send_with_fds` and `recv_with_fds`.
///
/// ```
/// use std::os::fd::AsFd;
/// use unipc::message::dgram::UnixDatagram;
/// use unipc::message::typed::Typed;
///
/// let (a, b) = UnixDatagram::pair()?;
/// let (tx, rx) = (Typed::<_, u32>::new(a), Typed::<_, u32>::new(b));
/// let file = tempfile::tempfile()?;
/// tx.send_with_fds(&7, &[file.as_fd()])?;
/// let (value, fds) = rx.recv_with_fds(1)?;
/// assert_eq!((value, fds.len()), (7, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait CarriesFds: Messenger + sealed::CarriesFds {}

mod sealed {
    use std::os::fd::{BorrowedFd, OwnedFd};

    /// The two calls, blocking; sealed: the set of facilities is the
    /// crate's.
    pub trait CarriesFds {
        fn send_fds(&self, data: &[u8], fds: &[BorrowedFd<'_>]) -> crate::Result<()>;
        fn recv_fds(&self, buf: &mut [u8], max_fds: usize) -> crate::Result<(usize, Vec<OwnedFd>)>;
    }
}

impl sealed::CarriesFds for seqpacket::Conn {
    fn send_fds(&self, data: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
        self.send_with_fds(data, fds)
    }
    fn recv_fds(&self, buf: &mut [u8], max_fds: usize) -> Result<(usize, Vec<OwnedFd>)> {
        self.recv_with_fds(buf, max_fds)
    }
}
impl CarriesFds for seqpacket::Conn {}

impl sealed::CarriesFds for super::dgram::UnixDatagram {
    fn send_fds(&self, data: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
        self.send_with_fds(data, fds, Wait::Forever)
    }
    fn recv_fds(&self, buf: &mut [u8], max_fds: usize) -> Result<(usize, Vec<OwnedFd>)> {
        self.recv_with_fds(buf, max_fds, Wait::Forever)
    }
}
impl CarriesFds for super::dgram::UnixDatagram {}

/// Typed values of `T` over the message facility `M`: one value per
/// message, as a header and the value in MessagePack (or CBOR, see
/// [`Typed::with_encoding`] and the [module docs](self)).
///
/// Sends and receives take `&self` as [`Messenger`]'s do; the encoding
/// and receive buffers are reused between calls (each behind a lock, so a
/// `Typed` shared between threads stays correct; a call that finds its
/// buffer taken uses a fresh one).
///
/// # Examples
/// A System V type (or a POSIX priority) travels as the message's
/// [`Tag`]; a borrowed facility works as well as an owned one:
/// ```
/// use unipc::message::sysv_mq::QueueOptions;
/// use unipc::message::typed::Typed;
/// use unipc::message::{Tag, Wait};
/// use unipc::name::SysvKey;
///
/// let queue = QueueOptions::new().create(SysvKey::Private)?; // removed on drop
/// let typed = Typed::<_, Vec<u32>>::new(&queue);
/// typed.send_tagged(&vec![1, 2, 3], Tag::Type(3), Wait::Never)?;
/// let (value, tag) = typed.recv_tagged(Wait::Never)?;
/// assert_eq!((value, tag), (vec![1, 2, 3], Tag::Type(3)));
/// # Ok::<(), unipc::Error>(())
/// ```
pub struct Typed<M, T> {
    inner: M,
    type_tag: Option<TypeTag>,
    encoding: Encoding,
    send_buf: Mutex<Vec<u8>>,
    recv_buf: Mutex<Vec<u8>>,
    _type: PhantomData<fn(T) -> T>,
}

impl<M: fmt::Debug, T> fmt::Debug for Typed<M, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Typed")
            .field("inner", &self.inner)
            .field("type", &std::any::type_name::<T>())
            .field("type_tag", &self.type_tag)
            .field("encoding", &self.encoding)
            .finish()
    }
}

/// Runs `f` with the buffer behind `lock` (one lock, held for the call),
/// or with a fresh one when another thread holds it. A buffer a panic
/// left behind is used as any other: every call sets its length first.
fn with_buf<R>(lock: &Mutex<Vec<u8>>, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    match lock.try_lock() {
        Ok(mut buf) => f(&mut buf),
        Err(std::sync::TryLockError::Poisoned(poisoned)) => f(&mut poisoned.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => f(&mut Vec::new()),
    }
}

impl<M, T> Typed<M, T> {
    /// Typed values over `inner`, untagged: any message's type tag is
    /// accepted, and none is sent.
    pub fn new(inner: M) -> Typed<M, T> {
        Typed {
            inner,
            type_tag: None,
            encoding: Encoding::default(),
            send_buf: Mutex::new(Vec::new()),
            recv_buf: Mutex::new(Vec::new()),
            _type: PhantomData,
        }
    }

    /// Sends `tag` in every message's header, and refuses a received
    /// message that does not carry it ([`Error::TypedMismatch`]).
    pub fn with_type_tag(mut self, tag: TypeTag) -> Typed<M, T> {
        self.type_tag = Some(tag);
        self
    }

    /// The type tag set with [`Typed::with_type_tag`].
    pub fn type_tag(&self) -> Option<TypeTag> {
        self.type_tag
    }

    /// Encodes what this end sends as `encoding` (by default
    /// [`Encoding::MessagePack`]). Receiving is unaffected: either
    /// encoding is decoded, as the header says.
    ///
    /// ```
    /// use unipc::message::dgram::UnixDatagram;
    /// use unipc::message::typed::{Encoding, Typed};
    ///
    /// let (a, b) = UnixDatagram::pair()?;
    /// let tx = Typed::<_, u32>::new(a).with_encoding(Encoding::Cbor);
    /// let rx = Typed::<_, u32>::new(b); // sends MessagePack, reads both
    /// tx.send(&7)?;
    /// assert_eq!(rx.recv()?, 7);
    /// # Ok::<(), unipc::Error>(())
    /// ```
    pub fn with_encoding(mut self, encoding: Encoding) -> Typed<M, T> {
        self.encoding = encoding;
        self
    }

    /// The encoding this end sends.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The facility underneath.
    pub fn get_ref(&self) -> &M {
        &self.inner
    }

    /// The facility underneath, for the raw bytes.
    pub fn into_inner(self) -> M {
        self.inner
    }
}

impl<M: Messenger, T: Serialize> Typed<M, T> {
    /// Encodes `value` and sends it with `tag`, waiting as `wait` says.
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`] naming the encoded size (header included)
    /// and the facility's limit, before anything is sent; the facility's
    /// errors for [`Messenger::send_tagged`]; [`Error::Unsupported`] when
    /// `value`'s `Serialize` fails.
    pub fn send_tagged(&self, value: &T, tag: Tag, wait: Wait) -> Result<()> {
        with_buf(&self.send_buf, |buf| {
            buf.clear();
            // The name only for an error: no reference count touched per message.
            let object = || self.inner.object();
            codec::encode_into(&object, value, self.type_tag, 0, self.encoding, buf)?;
            self.inner.send_tagged(buf, tag, wait)
        })
    }

    /// Sends `value` with the facility's default tag, blocking.
    ///
    /// # Errors
    /// As [`Typed::send_tagged`].
    pub fn send(&self, value: &T) -> Result<()> {
        self.send_tagged(value, Tag::None, Wait::Forever)
    }

    /// Sends `value` without waiting.
    ///
    /// # Errors
    /// [`Error::Full`] when there is no room (nothing was sent); as
    /// [`Typed::send_tagged`].
    pub fn try_send(&self, value: &T) -> Result<()> {
        self.send_tagged(value, Tag::None, Wait::Never)
    }
}

impl<M: Messenger, T: DeserializeOwned> Typed<M, T> {
    /// Receives one message, waiting as `wait` says, and decodes it.
    ///
    /// # Errors
    /// The facility's errors for [`Messenger::recv_into`];
    /// [`Error::TypedMismatch`] for another version, encoding or type tag,
    /// or a message sent with descriptors; [`Error::Undecodable`] (with the
    /// bytes) for one that is not a `T`. Either way the message was
    /// consumed.
    pub fn recv_tagged(&self, wait: Wait) -> Result<(T, Tag)> {
        self.recv_with(|buf| self.inner.recv_into(buf, wait))
    }

    /// Receives and decodes one message, blocking.
    ///
    /// # Errors
    /// As [`Typed::recv_tagged`].
    pub fn recv(&self) -> Result<T> {
        self.recv_tagged(Wait::Forever).map(|(value, _)| value)
    }

    /// Receives and decodes one message without waiting.
    ///
    /// # Errors
    /// [`Error::Empty`] when nothing is waiting; as [`Typed::recv_tagged`].
    pub fn try_recv(&self) -> Result<T> {
        self.recv_tagged(Wait::Never).map(|(value, _)| value)
    }

    /// Receives one message with `recv` into the reused buffer (grown to
    /// the facility's receive hint once, and to a message that did not fit)
    /// and decodes it.
    fn recv_with(&self, mut recv: impl FnMut(&mut [u8]) -> Result<Received>) -> Result<(T, Tag)> {
        with_buf(&self.recv_buf, |buf| {
            let (len, tag) = self.recv_bytes(buf, &mut recv)?;
            let expect = Expect {
                type_tag: self.type_tag,
                fds: 0,
            };
            codec::decode_checked(&|| self.inner.object(), &buf[..len], expect)
                .map(|(_, value)| (value, tag))
        })
    }

    fn recv_bytes(
        &self,
        buf: &mut Vec<u8>,
        recv: &mut impl FnMut(&mut [u8]) -> Result<Received>,
    ) -> Result<(usize, Tag)> {
        if buf.is_empty() {
            buf.resize(self.inner.recv_buffer_hint()?.max(codec::HEADER_LEN), 0);
        }
        loop {
            match recv(buf) {
                Ok(got) => return Ok((got.len, got.tag)),
                // The message stayed queued: grow to it and take it.
                Err(Error::BufferTooSmall {
                    needed: Some(needed),
                    ..
                }) if needed > buf.len() => buf.resize(needed, 0),
                Err(other) => return Err(other),
            }
        }
    }
}

impl<T: DeserializeOwned> Typed<sysv_mq::Queue, T> {
    /// `msgrcv`—receives the message `select` picks (the oldest of one
    /// type, of the lowest type up to n, of any type but n), waiting as
    /// `wait` says, and decodes it; its type comes back as [`Tag::Type`].
    ///
    /// # Errors
    /// As [`Typed::recv_tagged`].
    ///
    /// # Examples
    /// ```
    /// use unipc::message::sysv_mq::{QueueOptions, Select};
    /// use unipc::message::typed::Typed;
    /// use unipc::message::{Tag, Wait};
    /// use unipc::name::SysvKey;
    ///
    /// let queue = Typed::<_, String>::new(QueueOptions::new().create(SysvKey::Private)?);
    /// queue.send_tagged(&"low".to_owned(), Tag::Type(9), Wait::Never)?;
    /// queue.send_tagged(&"urgent".to_owned(), Tag::Type(1), Wait::Never)?;
    /// let (first, tag) = queue.recv_select(Select::AtMost(5), Wait::Never)?;
    /// assert_eq!((first.as_str(), tag), ("urgent", Tag::Type(1)));
    /// # Ok::<(), unipc::Error>(())
    /// ```
    #[doc(alias = "msgrcv")]
    pub fn recv_select(&self, select: sysv_mq::Select, wait: Wait) -> Result<(T, Tag)> {
        self.recv_with(|buf| self.inner.recv_select(select, buf, wait))
    }
}

impl<M: CarriesFds, T: Serialize> Typed<M, T> {
    /// `sendmsg(SCM_RIGHTS)`—sends `value` with duplicates of `fds`, which
    /// the receiver gets from [`Typed::recv_with_fds`]. Blocks unless the
    /// connection is non-blocking.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] for more than [`MAX_FDS`] descriptors,
    /// before any system call; as [`Typed::send_tagged`].
    ///
    /// # Examples
    /// ```
    /// use std::io::{Read, Seek, Write};
    /// use std::os::fd::AsFd;
    /// use unipc::message::typed::Typed;
    /// use unipc::stream::seqpacket;
    ///
    /// let (a, b) = seqpacket::pair()?;
    /// let (tx, rx) = (Typed::<_, String>::new(a), Typed::<_, String>::new(b));
    /// let mut file = tempfile::tempfile()?;
    /// file.write_all(b"contents")?;
    /// tx.send_with_fds(&"the log".to_owned(), &[file.as_fd()])?;
    ///
    /// let (name, fds) = rx.recv_with_fds(4)?;
    /// let mut got = std::fs::File::from(fds.into_iter().next().unwrap());
    /// got.rewind()?;
    /// let mut text = String::new();
    /// got.read_to_string(&mut text)?;
    /// assert_eq!((name.as_str(), text.as_str()), ("the log", "contents"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "SCM_RIGHTS")]
    pub fn send_with_fds(&self, value: &T, fds: &[BorrowedFd<'_>]) -> Result<()> {
        let object = self.inner.object();
        if fds.len() > MAX_FDS {
            return Err(Error::LimitExceeded {
                object,
                what: "descriptors in one message",
                requested: fds.len() as u64,
                limit: MAX_FDS as u64,
                set_in: "SCM_MAX_FD, fixed in the kernel",
            });
        }
        with_buf(&self.send_buf, |buf| {
            buf.clear();
            let named = || object.clone();
            codec::encode_into(&named, value, self.type_tag, fds.len(), self.encoding, buf)?;
            // The facility's own check, before the call: as send_tagged.
            let limit = self.inner.limits()?.max_message_size;
            if buf.len() > limit {
                return Err(Error::MessageTooLarge {
                    object: object.clone(),
                    size: buf.len(),
                    limit,
                });
            }
            self.inner.send_fds(buf, fds)
        })
    }
}

impl<M: CarriesFds, T: DeserializeOwned> Typed<M, T> {
    /// `recvmsg(MSG_CMSG_CLOEXEC)`—receives one value and the descriptors
    /// that came with it (close-on-exec), accepting at most `max_fds`.
    ///
    /// # Errors
    /// [`Error::TooManyFds`] when the message carried more than `max_fds`
    /// (or the kernel had to drop some, `MSG_CTRUNC`): the message is
    /// consumed and every descriptor closed. [`Error::TypedMismatch`] when
    /// the header's count differs from what arrived; as
    /// [`Typed::recv_tagged`].
    pub fn recv_with_fds(&self, max_fds: usize) -> Result<(T, Vec<OwnedFd>)> {
        with_buf(&self.recv_buf, |buf| {
            if buf.is_empty() {
                buf.resize(self.inner.recv_buffer_hint()?.max(codec::HEADER_LEN), 0);
            }
            let (len, fds) = self.inner.recv_fds(buf, max_fds.min(MAX_FDS))?;
            if len == 0 {
                return Err(Error::Os {
                    object: self.inner.object(),
                    op: "recvmsg",
                    source: std::io::ErrorKind::UnexpectedEof.into(),
                    hint: Some("the peer closed the connection"),
                });
            }
            let expect = Expect {
                type_tag: self.type_tag,
                fds: fds.len(),
            };
            codec::decode_checked(&|| self.inner.object(), &buf[..len], expect)
                .map(|(_, value)| (value, fds))
        })
    }
}

/// Writes `bytes` whole to `out`, as the framed stream does.
fn write_all(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(bytes)?;
    out.flush()
}

/// The object name of a framed stream that was not named.
fn stream_name() -> ObjectName {
    ObjectName::from("stream")
}
