//! `ring:/NAME`: a message channel in POSIX shared memory, one writer and
//! one reader, that moves a message without a system call.
//!
//! The ring is `capacity` slots in a `/dev/shm` object, each room for one
//! message of up to `max_size` bytes, and two cursors: the writer's `tail`
//! (messages committed) and the reader's `head` (messages released). A
//! message is copied into slot `tail % capacity` and published by moving
//! `tail` with release ordering; the reader sees it by loading `tail` with
//! acquire ordering, copies it out (or borrows it, [`Receiver::recv_view`])
//! and frees the slot by moving `head`. A writer killed halfway through a
//! copy never moved `tail`, so no reader ever sees part of a message.
//!
//! Waiting is the [`WaitStrategy`]'s: spin, spin then sleep on a futex, or
//! sleep at once. A side that sleeps raises a flag first, and the other
//! side makes the `FUTEX_WAKE` call only when it sees that flag: with
//! nobody asleep, sending and receiving make no system call at all.
//!
//! Each side registers its pid when it opens ([`Ring::into_sender`],
//! [`Ring::into_receiver`]); a side waiting on the other checks every
//! 100 ms that the other is alive and otherwise fails with
//! [`Error::PeerDied`] (after delivering everything that was committed).
//! A new process may then take the dead side's place. A reader that dies
//! holding a [`View`] never released that message, so the next reader
//! receives it again: delivery is exactly once while both sides live, at
//! least once across a reader's crash.
//!
//! One writer only: a second writer would need a compare-and-swap on
//! `tail` and a per-slot commit flag, which costs the single writer on
//! every message; processes that need several writers each open their own
//! ring, or use `pubsub:` in the other direction.
//!
//! Nothing read from the shared memory is trusted: the header is checked
//! against the layout its capacity and size imply, and every cursor and
//! length read afterwards is checked against the layout this process
//! validated when it opened, never re-read. A peer that writes garbage
//! gets [`Error::BadHeader`], not a read outside the object. A process
//! that may open the object for writing can still truncate it, which
//! makes every process mapping it fault (`SIGBUS`): give the ring a mode
//! that admits only the processes meant to use it.
//!
//! # Examples
//! ```
//! use unipc::message::ring::{Ring, RingOptions};
//! use unipc::message::{Messenger, Wait};
//!
//! let name = "/ring-demo".parse()?;
//! # let _ = unipc::message::ring::remove(&name);
//! let ring = RingOptions::new().capacity(8).max_size(64).create(&name)?;
//! let tx = Ring::open(&name)?.into_sender()?;
//! let mut rx = ring.into_receiver()?; // the creator's handle: unlinks on drop
//! tx.send(b"job 1")?;
//! assert_eq!(rx.recv_view(Wait::Never)?.as_ref(), b"job 1");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// Std atomics only through `protocol.rs` here (see `clippy.toml`).
#![warn(clippy::disallowed_types)]

#[cfg(feature = "bench")]
mod bench;
mod doorbell;
mod layout;
mod peer;
mod protocol;
pub mod pubsub;
mod shared;
mod wait;

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use self::layout::{Layout, SizeError, CONFIG_LEN, MAGIC, MAGIC_AT};
use self::peer::{Holder, Role, Taken, READER, WRITER};
use self::protocol::{BadCursors, Cursor, Words};
use self::shared::Shared;
use crate::error::ObjectName;
use crate::facility::{
    Direction, Facility, LiveLimit, Naming, Persistence, Properties, Reach, Shape, Tags,
};
use crate::message::{unsupported_tag, Doorbell, Limits, Messenger, Received, Tag, Wait};
use crate::name::PosixName;
use crate::shm::posix::{Segment, SegmentOptions};
use crate::shm::Access;
use crate::{Endpoint, Error, Mode, Result};

/// How long an opener waits for a creator to finish the header.
const HEADER_WAIT: Duration = Duration::from_secs(1);

/// How a side waits for the other: for a message, or for a free slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitStrategy {
    /// Spin on the cursor: the lowest latency, one core busy while waiting.
    BusyPoll,
    /// Spin a short while, then sleep on a futex until woken.
    #[default]
    SpinThenPark,
    /// Sleep on a futex at once: no core spent, a wake-up's latency.
    Block,
}

impl WaitStrategy {
    /// [`Messenger::set_polling`]'s choice: busy-poll, or the default.
    fn polling(polling: bool) -> WaitStrategy {
        if polling {
            WaitStrategy::BusyPoll
        } else {
            WaitStrategy::default()
        }
    }
}

/// Options for creating a ring. Built by value.
///
/// # Examples
/// ```
/// use unipc::message::ring::RingOptions;
/// use unipc::Mode;
///
/// let name = "/ring-options-demo".parse()?;
/// let ring = RingOptions::new().capacity(1024).max_size(8192).mode(Mode::OWNER_RW).create(&name)?;
/// assert_eq!(ring.status()?.capacity, 1024);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct RingOptions {
    capacity: u64,
    max_size: usize,
    mode: Mode,
    exclusive: bool,
    keep: bool,
}

impl Default for RingOptions {
    fn default() -> Self {
        RingOptions {
            capacity: 64,
            max_size: 4096,
            mode: Mode::OWNER_RW,
            exclusive: false,
            keep: false,
        }
    }
}

impl RingOptions {
    /// 64 messages of at most 4096 bytes, mode 0o600, not exclusive,
    /// unlinked when the creator's handle drops.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many messages it holds.
    pub fn capacity(mut self, messages: u64) -> Self {
        self.capacity = messages;
        self
    }

    /// The largest message, in bytes.
    pub fn max_size(mut self, bytes: usize) -> Self {
        self.max_size = bytes;
        self
    }

    /// Permission bits of the `/dev/shm` object, set exactly whatever the
    /// umask.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Refuse a ring that already exists.
    pub fn exclusive(mut self, exclusive: bool) -> Self {
        self.exclusive = exclusive;
        self
    }

    /// Leave the ring in place when the creator's handle drops.
    pub fn keep(mut self) -> Self {
        self.keep = true;
        self
    }

    /// Creates the ring, or adopts one that exists with this user as
    /// owner, the mode asked for, and the same capacity and max size.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for capacity or size 0,
    /// [`Error::LimitExceeded`] for a ring larger than the address space
    /// or than `/dev/shm` has free; [`Error::ForeignObject`] for an
    /// existing object of another user or mode; [`Error::BadHeader`] for
    /// an existing object that is not a ring, or a ring of other sizes.
    pub fn create(&self, name: &PosixName) -> Result<Ring> {
        let object = object_of(name);
        let layout = Layout::new(self.capacity, self.max_size).map_err(|e| match e {
            SizeError::Zero(what) => Error::Unsupported {
                object: object.clone(),
                what: format!("{what} 0"),
                reason: "a ring holds at least one message of at least one byte".into(),
            },
            SizeError::TooLarge => Error::LimitExceeded {
                object: object.clone(),
                what: "ring size",
                requested: self.capacity.saturating_mul(self.max_size as u64),
                limit: isize::MAX as u64,
                set_in: "this process's address space",
            },
        })?;
        let mut segment = SegmentOptions::new()
            .size(layout.total as u64)
            .mode(self.mode)
            .exclusive(self.exclusive)
            .create(name)
            .map_err(|e| e.renamed(&object))?;
        if self.keep {
            segment = segment.keep();
        }
        let ring = if segment.created() {
            let shared = Shared::new(map(&segment).map_err(|e| e.renamed(&object))?, layout);
            shared.copy_in(0, &layout.config());
            // The magic goes last, with release ordering: an opener that
            // sees it sees the rest of the header.
            shared.u64_at(MAGIC_AT).store(MAGIC, Ordering::Release);
            Ring::with(segment, shared, name)
        } else {
            let ring = Ring::validate(segment, name)?;
            let found = *ring.shared.layout();
            if found.capacity != layout.capacity || found.max_size != layout.max_size {
                return Err(Error::BadHeader {
                    object,
                    expected: "the ring asked for",
                    reason: format!(
                        "it exists with capacity {} and max size {}, not {} and {}: open it as it is, or remove it first",
                        found.capacity, found.max_size, layout.capacity, layout.max_size
                    ),
                });
            }
            ring
        };
        Ok(ring)
    }
}

fn object_of(name: &PosixName) -> ObjectName {
    Endpoint::Ring(name.clone()).to_string().into()
}

#[allow(unsafe_code)]
fn map(segment: &Segment) -> Result<crate::shm::Mapping> {
    // SAFETY: `Segment::map` asks that nobody shrink the object while the
    // mapping lives. Every process that may write the object can; the
    // ring's documentation says so (it is the trust a shared-memory
    // channel places in the processes its mode admits), and this process
    // never truncates an existing ring.
    unsafe { segment.map(Access::ReadWrite) }
}

/// Maps an existing object of `expected`'s kind and hands its first
/// `config_len` bytes and its size to `parse`, waiting up to a second for
/// a creator still writing them (the magic, at 0, is written last). An
/// object shorter than `header_len` cannot be one.
fn map_header<L>(
    segment: &Segment,
    object: &ObjectName,
    expected: &'static str,
    header_len: usize,
    config_len: usize,
    parse: impl Fn(&[u8], u64) -> std::result::Result<L, String>,
) -> Result<(crate::shm::Mapping, L)> {
    let bad = |reason: String| Error::BadHeader {
        object: object.clone(),
        expected,
        reason,
    };
    let started = Instant::now();
    loop {
        let size = segment.size().map_err(|e| e.renamed(object))?;
        let unfinished = if size < header_len as u64 {
            format!("it is {size} bytes, shorter than the header of {expected}")
        } else {
            let mapping = map(segment).map_err(|e| e.renamed(object))?;
            if mapping
                .region()
                .atomic_u64(MAGIC_AT)
                .load(Ordering::Acquire)
                != 0
            {
                let mut config = vec![0; config_len];
                mapping
                    .read_at(0, &mut config)
                    .map_err(|e| e.renamed(object))?;
                let parsed = parse(&config, size).map_err(bad)?;
                return Ok((mapping, parsed));
            }
            format!("its header was never finished (all zero): its creator died while making it, or it is not {expected}")
        };
        if started.elapsed() >= HEADER_WAIT {
            return Err(bad(unfinished));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A ring, created or opened, before it takes a side. Unlinks the name
/// on drop if this handle created it and was not kept.
pub struct Ring {
    shared: Shared,
    segment: Segment,
    object: ObjectName,
}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("object", &self.object)
            .field("capacity", &self.shared.layout().capacity)
            .field("max_size", &self.shared.layout().max_size)
            .finish()
    }
}

/// A ring's figures, as [`Ring::status`] reads them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// How many messages it holds.
    pub capacity: u64,
    /// The largest message, in bytes.
    pub max_size: usize,
    /// Messages committed and not yet released.
    pub used: u64,
    /// Messages committed since creation.
    pub sent: u64,
    /// Messages released since creation.
    pub received: u64,
    /// The writer, if one is attached.
    pub writer: Option<Attached>,
    /// The reader, if one is attached.
    pub reader: Option<Attached>,
}

/// A process attached to one side of a ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Attached {
    /// Its pid.
    pub pid: u32,
    /// Whether it is still alive (a dead one is cleared by the next
    /// process that waits on it, or takes its side).
    pub alive: bool,
}

impl Ring {
    /// Opens an existing ring by name.
    ///
    /// # Errors
    /// [`Error::Os`] with `ENOENT` when nothing has the name, `EACCES`
    /// when this user may not open it for writing; [`Error::BadHeader`]
    /// when it is not a ring this build can use.
    pub fn open(name: &PosixName) -> Result<Ring> {
        let segment = SegmentOptions::new()
            .access(Access::ReadWrite)
            .open(name)
            .map_err(|e| e.renamed(&object_of(name)))?;
        Ring::validate(segment, name)
    }

    fn with(segment: Segment, shared: Shared, name: &PosixName) -> Ring {
        Ring {
            shared,
            segment,
            object: object_of(name),
        }
    }

    /// Maps an existing object and checks its header, waiting up to a
    /// second for a creator that is still writing it.
    fn validate(segment: Segment, name: &PosixName) -> Result<Ring> {
        let object = object_of(name);
        let (mapping, layout) = map_header(
            &segment,
            &object,
            "a ring",
            layout::SLOTS_AT,
            CONFIG_LEN,
            Layout::parse,
        )?;
        Ok(Ring::with(segment, Shared::new(mapping, layout), name))
    }

    /// The ring as errors name it (`ring:/NAME`).
    pub fn object(&self) -> &ObjectName {
        &self.object
    }

    /// Whether this handle created the ring (and so unlinks it on drop,
    /// unless kept).
    pub fn created(&self) -> bool {
        self.segment.created()
    }

    /// Leaves the name in place when this handle drops.
    pub fn keep(mut self) -> Self {
        self.segment = self.segment.keep();
        self
    }

    /// Capacity, max size, messages waiting and the processes attached.
    ///
    /// # Errors
    /// None today; kept for figures a future layout reads from the kernel.
    pub fn status(&self) -> Result<Status> {
        let layout = self.shared.layout();
        let sent = self.shared.tail().load(Ordering::Acquire);
        let received = self.shared.head().load(Ordering::Acquire);
        let attached = |role: Role| {
            Holder::from_word(self.shared.u64_at(role.at).load(Ordering::Acquire)).map(|h| {
                Attached {
                    pid: h.pid,
                    alive: h.alive(),
                }
            })
        };
        Ok(Status {
            capacity: layout.capacity,
            max_size: layout.max_size,
            used: sent.saturating_sub(received).min(layout.capacity),
            sent,
            received,
            writer: attached(WRITER),
            reader: attached(READER),
        })
    }

    /// Becomes the ring's writer.
    ///
    /// # Errors
    /// [`Error::InUse`] while another live process is the writer;
    /// [`Error::BadHeader`] when the cursors in the memory are out of
    /// range.
    pub fn into_sender(self) -> Result<Sender> {
        let (head, tail) = self.cursors()?;
        Ok(Sender {
            side: Side::take(self, WRITER)?,
            cursor: Cursor::new(tail, head),
        })
    }

    /// Becomes the ring's reader.
    ///
    /// # Errors
    /// [`Error::InUse`] while another live process is the reader;
    /// [`Error::BadHeader`] when the cursors in the memory are out of
    /// range.
    pub fn into_receiver(self) -> Result<Receiver> {
        let (head, _) = self.cursors()?;
        Ok(Receiver {
            side: Side::take(self, READER)?,
            cursor: Cursor::new(head, head),
        })
    }

    /// Both cursors, checked.
    fn cursors(&self) -> Result<(u64, u64)> {
        let head = self.shared.head().load(Ordering::Acquire);
        let tail = self.shared.tail().load(Ordering::Acquire);
        protocol::check(&self.shared, head, tail).map_err(|bad| self.bad_cursors(bad))?;
        Ok((head, tail))
    }

    fn corrupt(&self, reason: String) -> Error {
        Error::BadHeader {
            object: self.object.clone(),
            expected: "a ring",
            reason,
        }
    }

    fn bad_cursors(&self, BadCursors { head, tail }: BadCursors) -> Error {
        let capacity = self.shared.layout().capacity;
        self.corrupt(format!(
            "its cursors say {head} released and {tail} committed, which a ring of capacity {capacity} cannot hold"
        ))
    }
}

/// One side of a ring, held: what the sender and receiver share.
#[derive(Debug)]
struct Side {
    ring: Ring,
    role: Role,
    me: Holder,
    waiting: wait::Waiting,
}

impl Side {
    fn take(ring: Ring, role: Role) -> Result<Side> {
        let me = Holder::me();
        match peer::take(ring.shared.u64_at(role.at), me) {
            Taken::Ok => {
                // A peer that died before this side came (killed, or
                // interrupted without giving its side back) never talked
                // to this one: cleared here, not reported later.
                let _ = peer::dead_holder(ring.shared.u64_at(role.peer().at));
                Ok(Side {
                    ring,
                    role,
                    me,
                    waiting: wait::Waiting::new(),
                })
            }
            Taken::Held(holder) => Err(Error::InUse {
                object: ring.object.clone(),
                role: role.name,
                pid: holder.pid,
                reason: "a ring has one writer and one reader; open another ring for another pair",
            }),
        }
    }

    fn shared(&self) -> &Shared {
        &self.ring.shared
    }

    /// The other side died: cleared and reported, once.
    fn check_peer(&self) -> Result<()> {
        let peer = self.role.peer();
        peer::check_alive(self.shared().u64_at(peer.at), &self.ring.object, peer.name)
    }

    /// This side's sleep, over a second mapping (see `doorbell.rs`).
    fn doorbell(&self, ready: doorbell::Ready) -> Result<Option<Box<dyn Doorbell>>> {
        let (flag_at, futex_at) = match self.role.which {
            protocol::Which::Writer => (layout::WRITER_SLEEPING_AT, layout::SPACE_SEQ_AT),
            protocol::Which::Reader => (layout::READER_SLEEPING_AT, layout::DATA_SEQ_AT),
        };
        let peer = self.role.peer();
        let bell = doorbell::Bell {
            flag_at,
            futex_at,
            ready,
            peer: Some((peer.at, peer.name)),
        };
        let map = map(&self.ring.segment).map_err(|e| e.renamed(&self.ring.object))?;
        let bell = doorbell::FutexDoorbell::new(map, self.ring.object.clone(), bell)?;
        Ok(Some(Box::new(bell)))
    }

    fn park(&self, ready: &dyn Fn() -> bool, limit: Duration) -> Result<()> {
        protocol::park(self.shared(), self.role.which, ready, limit)
            .map_err(|e| Error::os(self.ring.object.clone(), "futex wait", e))
    }

    /// Calls `attempt` until it yields, waiting as this side's strategy
    /// says; `ready` tells cheaply whether a try could succeed, `idle` is
    /// the error for [`Wait::Never`].
    fn wait_for<T>(
        &self,
        wait: Wait,
        idle: fn(ObjectName) -> Error,
        ready: &dyn Fn() -> bool,
        attempt: impl FnMut() -> Result<Option<T>>,
    ) -> Result<T> {
        let waiter = wait::Waiter {
            object: &self.ring.object,
            waiting: &self.waiting,
            idle,
            park: &|limit| self.park(ready, limit),
            check_peer: &|| self.check_peer(),
        };
        waiter.wait_for(wait, attempt)
    }
}

impl Drop for Side {
    fn drop(&mut self) {
        peer::give_back(self.ring.shared.u64_at(self.role.at), self.me);
    }
}

/// The writing side of a ring. Not `Sync`: one thread sends at a time
/// (move it between threads freely).
///
/// # Examples
/// ```
/// use unipc::message::ring::{Ring, RingOptions};
/// use unipc::message::{Messenger, Wait};
///
/// let name = "/ring-sender-demo".parse()?;
/// let ring = RingOptions::new().capacity(2).max_size(16).create(&name)?;
/// let mut tx = Ring::open(&name)?.into_sender()?;
/// let mut loan = tx.loan(Wait::Never)?;
/// loan[..2].copy_from_slice(b"hi");
/// loan.commit(2)?;
/// drop(tx.loan(Wait::Never)?); // a dropped loan publishes nothing
/// let mut rx = ring.into_receiver()?;
/// assert_eq!(rx.recv_view(Wait::Never)?.as_ref(), b"hi");
/// assert!(rx.recv_view(Wait::Never).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Sender {
    side: Side,
    /// `tail`, and `head` as last loaded: reloaded only when the ring
    /// looks full, so a sender with room reads nothing the reader writes.
    cursor: Cursor,
}

impl Sender {
    /// How this side waits for a free slot.
    pub fn set_wait_strategy(&self, strategy: WaitStrategy) {
        self.side.waiting.set(strategy);
    }

    /// The ring behind this side.
    pub fn ring(&self) -> &Ring {
        &self.side.ring
    }

    fn reserve(&self, wait: Wait) -> Result<u64> {
        let shared = self.side.shared();
        let ready = || self.cursor.room(shared);
        self.side.wait_for(
            wait,
            |object| Error::Full { object },
            &ready,
            || {
                self.cursor
                    .free_slot(shared)
                    .map_err(|bad| self.side.ring.bad_cursors(bad))
            },
        )
    }

    fn publish(&self, seq: u64, len: usize) {
        let shared = self.side.shared();
        shared.set_len(seq, len);
        self.cursor.publish(shared, seq);
    }

    fn check_size(&self, len: usize) -> Result<()> {
        let limit = self.side.shared().layout().max_size;
        if len > limit {
            return Err(Error::MessageTooLarge {
                object: self.side.ring.object.clone(),
                size: len,
                limit,
            });
        }
        Ok(())
    }

    /// How many messages this ring's writers have committed since it was
    /// made: the number the next message will have. A process that
    /// recorded it before a send and was killed learns, from a larger
    /// figure after, that its message went in (only the writer moves it,
    /// and a ring has one writer at a time).
    pub fn sent(&self) -> u64 {
        self.cursor.next()
    }

    /// Copies `message` into the next slot and publishes it.
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`] over the max size; [`Error::Full`]
    /// ([`Wait::Never`]) or [`Error::TimedOut`] when no slot came free;
    /// [`Error::PeerDied`] when the reader died while this side waited.
    pub fn send_wait(&self, message: &[u8], wait: Wait) -> Result<()> {
        self.check_size(message.len())?;
        let seq = self.reserve(wait)?;
        self.side.shared().write_payload(seq, message);
        self.publish(seq, message.len());
        Ok(())
    }

    /// Lends the next free slot to be written in place; [`Loan::commit`]
    /// publishes it, dropping the loan publishes nothing.
    ///
    /// # Errors
    /// As [`send_wait`](Self::send_wait), for the slot.
    pub fn loan(&mut self, wait: Wait) -> Result<Loan<'_>> {
        let seq = self.reserve(wait)?;
        Ok(Loan { sender: self, seq })
    }
}

/// A slot lent by [`Sender::loan`]: `max_size` bytes to fill in place.
pub struct Loan<'a> {
    sender: &'a mut Sender,
    seq: u64,
}

impl fmt::Debug for Loan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loan").field("seq", &self.seq).finish()
    }
}

impl Loan<'_> {
    /// Publishes the first `len` bytes of the slot as one message.
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`] when `len` is over the max size; the
    /// loan is dropped and nothing published.
    pub fn commit(self, len: usize) -> Result<()> {
        self.sender.check_size(len)?;
        self.sender.publish(self.seq, len);
        Ok(())
    }
}

#[allow(unsafe_code)]
impl std::ops::Deref for Loan<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let max = self.sender.side.shared().layout().max_size;
        // SAFETY: this loan holds slot `seq`, which `reserve` found free
        // (`seq` in `tail..head + capacity`); the loan borrows the one
        // sender mutably, so no other loan or send touches the slot, and
        // the reader does not read it before `publish`.
        unsafe { self.sender.side.shared().payload(self.seq, max) }
    }
}

#[allow(unsafe_code)]
impl std::ops::DerefMut for Loan<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `deref`; `&mut self` makes this the only slice.
        unsafe { self.sender.side.shared().payload_mut(self.seq) }
    }
}

/// The reading side of a ring. Not `Sync`: one thread receives at a time
/// (move it between threads freely).
///
/// # Examples
/// ```
/// use unipc::message::ring::{Ring, RingOptions};
/// use unipc::message::{Messenger, Wait};
///
/// let name = "/ring-receiver-demo".parse()?;
/// let ring = RingOptions::new().create(&name)?;
/// let tx = Ring::open(&name)?.into_sender()?;
/// let rx = ring.into_receiver()?;
/// tx.send(b"one")?;
/// let mut buf = [0; 8];
/// let got = rx.recv_into(&mut buf, Wait::Never)?;
/// assert_eq!(&buf[..got.len], b"one");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Receiver {
    side: Side,
    /// `head`, and `tail` as last loaded: reloaded only when everything
    /// seen so far has been received.
    cursor: Cursor,
}

impl Receiver {
    /// How this side waits for a message.
    pub fn set_wait_strategy(&self, strategy: WaitStrategy) {
        self.side.waiting.set(strategy);
    }

    /// The ring behind this side.
    pub fn ring(&self) -> &Ring {
        &self.side.ring
    }

    /// The next message's number and length, if one is committed.
    fn next(&self) -> Result<Option<(u64, usize)>> {
        let shared = self.side.shared();
        let Some(seq) = self
            .cursor
            .committed(shared)
            .map_err(|bad| self.side.ring.bad_cursors(bad))?
        else {
            return Ok(None);
        };
        let stored = shared.stored_len(seq);
        let max = shared.layout().max_size;
        match usize::try_from(stored) {
            Ok(len) if len <= max => Ok(Some((seq, len))),
            _ => Err(self.side.ring.corrupt(format!(
                "message {seq} claims {stored} bytes, over the max size of {max}"
            ))),
        }
    }

    fn take(&self, wait: Wait) -> Result<(u64, usize)> {
        let shared = self.side.shared();
        let ready = || self.cursor.waiting(shared);
        self.side.wait_for(
            wait,
            |object| Error::Empty { object },
            &ready,
            || self.next(),
        )
    }

    fn release(&self, seq: u64) {
        self.cursor.release(self.side.shared(), seq);
    }

    /// Receives the next message into `buf`.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] (with the size needed) when `buf` is
    /// shorter than the message, which stays in the ring;
    /// [`Error::Empty`] ([`Wait::Never`]) or [`Error::TimedOut`];
    /// [`Error::PeerDied`] when the writer died and everything it
    /// committed has been received; [`Error::BadHeader`] for a cursor or
    /// length out of range.
    pub fn recv_wait(&self, buf: &mut [u8], wait: Wait) -> Result<Received> {
        let (seq, len) = self.take(wait)?;
        if buf.len() < len {
            return Err(Error::BufferTooSmall {
                object: self.side.ring.object.clone(),
                buffer: buf.len(),
                needed: Some(len),
            });
        }
        self.side.shared().read_payload(seq, &mut buf[..len]);
        self.release(seq);
        Ok(Received::new(len, Tag::None))
    }

    /// Borrows the next message in place; dropping the view releases its
    /// slot to the writer.
    ///
    /// # Errors
    /// As [`recv_wait`](Self::recv_wait), less the buffer.
    pub fn recv_view(&mut self, wait: Wait) -> Result<View<'_>> {
        let (seq, len) = self.take(wait)?;
        Ok(View {
            receiver: self,
            seq,
            len,
        })
    }
}

/// A message borrowed in place by [`Receiver::recv_view`].
pub struct View<'a> {
    receiver: &'a mut Receiver,
    seq: u64,
    len: usize,
}

impl fmt::Debug for View<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("View")
            .field("seq", &self.seq)
            .field("len", &self.len)
            .finish()
    }
}

#[allow(unsafe_code)]
impl std::ops::Deref for View<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `take` found message `seq` committed (`seq` in
        // `head..tail`, tail loaded with acquire) and `len` within the max
        // size; the slot is released only in `drop`, after every borrow of
        // this view has ended, and the view borrows the one receiver
        // mutably, so nothing else releases it first.
        unsafe { self.receiver.side.shared().payload(self.seq, self.len) }
    }
}

impl View<'_> {
    /// The message's number in the ring: 0 for the first the ring ever
    /// carried. A reader that dies holding a view leaves the message to
    /// the next reader under the same number, so a program that records
    /// what it took (a bridge's journal) can tell it from a new one.
    pub fn sequence(&self) -> u64 {
        self.seq
    }
}

impl AsRef<[u8]> for View<'_> {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl Drop for View<'_> {
    fn drop(&mut self) {
        self.receiver.release(self.seq);
    }
}

fn one_way(object: ObjectName, what: &str) -> Error {
    Error::Unsupported {
        object,
        what: what.into(),
        reason: "a ring carries messages one way: open the other side for it".into(),
    }
}

fn limits_of(ring: &Ring) -> Limits {
    let layout = ring.shared.layout();
    Limits::new(layout.max_size, usize::try_from(layout.capacity).ok())
}

impl Messenger for Sender {
    fn object(&self) -> ObjectName {
        self.side.ring.object.clone()
    }

    fn limits(&self) -> Result<Limits> {
        Ok(limits_of(&self.side.ring))
    }

    fn send_tagged(&self, message: &[u8], tag: Tag, wait: Wait) -> Result<()> {
        if tag != Tag::None {
            return Err(unsupported_tag(self.object(), tag, "no tags"));
        }
        self.send_wait(message, wait)
    }

    fn recv_into(&self, _buf: &mut [u8], _wait: Wait) -> Result<Received> {
        Err(one_way(self.object(), "receiving on the writer's side"))
    }

    fn set_polling(&self, polling: bool) -> Result<()> {
        self.set_wait_strategy(WaitStrategy::polling(polling));
        Ok(())
    }

    /// Sleeps as the writer does, until the reader frees a slot; its
    /// death is reported as [`Error::PeerDied`].
    fn doorbell(&self) -> Result<Option<Box<dyn Doorbell>>> {
        self.side.doorbell(doorbell::Ready::Room {
            tail: layout::TAIL_AT,
            head: layout::HEAD_AT,
            capacity: self.side.shared().layout().capacity,
        })
    }
}

impl Messenger for Receiver {
    fn object(&self) -> ObjectName {
        self.side.ring.object.clone()
    }

    fn limits(&self) -> Result<Limits> {
        Ok(limits_of(&self.side.ring))
    }

    fn recv_buffer_hint(&self) -> Result<usize> {
        Ok(self.side.shared().layout().max_size)
    }

    fn send_tagged(&self, _message: &[u8], _tag: Tag, _wait: Wait) -> Result<()> {
        Err(one_way(self.object(), "sending on the reader's side"))
    }

    fn recv_into(&self, buf: &mut [u8], wait: Wait) -> Result<Received> {
        self.recv_wait(buf, wait)
    }

    fn set_polling(&self, polling: bool) -> Result<()> {
        self.set_wait_strategy(WaitStrategy::polling(polling));
        Ok(())
    }

    /// Sleeps as the reader does, until the writer commits a message; its
    /// death is reported as [`Error::PeerDied`].
    fn doorbell(&self) -> Result<Option<Box<dyn Doorbell>>> {
        self.side.doorbell(doorbell::Ready::Differ {
            tail: layout::TAIL_AT,
            head: layout::HEAD_AT,
        })
    }
}

/// Removes the ring `name` after checking that it is one (an object that
/// is not a ring is left alone: remove it as `shm:` if that is meant).
///
/// # Errors
/// As [`Ring::open`]; [`Error::Os`] when `shm_unlink` fails.
pub fn remove(name: &PosixName) -> Result<()> {
    remove_checked(name, object_of(name), || Ring::open(name).map(drop))
}

/// Unlinks `name` once `check` (an open that validates the header) has
/// passed; a header that fails says how to remove the object anyway.
fn remove_checked(
    name: &PosixName,
    object: ObjectName,
    check: impl FnOnce() -> Result<()>,
) -> Result<()> {
    match check() {
        Ok(()) => {}
        Err(Error::BadHeader {
            object,
            expected,
            reason,
        }) => {
            return Err(Error::BadHeader {
                object,
                expected,
                reason: format!("{reason}; to remove it all the same: unipc rm shm:{name}"),
            })
        }
        Err(other) => return Err(other),
    }
    crate::shm::posix::unlink(name).map_err(|e| e.renamed(&object))
}

/// The registry entry.
pub static FACILITY: Facility = Facility {
    name: "ring",
    scheme: Some("ring"),
    summary: "shared-memory ring: whole messages from one writer to one reader, no system call per message",
    addressing: "ring:/NAME (a /dev/shm object of that name)",
    properties: Properties {
        shape: Shape::Messages,
        direction: Direction::OneWay,
        tags: Tags::None,
        destructive_read: true,
        peek: false,
        naming: Naming::IpcName,
        reach: Reach::Host,
        persistence: Persistence::Kernel,
        permissions: "file owner and mode bits of its /dev/shm object; both sides need read and write",
        reliable: true,
        after_crash: "the ring and its committed messages stay until unlinked; a waiting peer is told within 100 ms (PeerDied); a message its writer had not committed is never seen",
    },
    limits: || {
        vec![LiveLimit {
            name: "size",
            value: "capacity × max size, set when created, up to the free space of /dev/shm"
                .to_owned(),
            source: "unipc create ring:/NAME --capacity N --max-size BYTES",
        }]
    },
    max_message: || {
        // One slot, of all the free space: the largest a new ring can take.
        let free = crate::sys::shm::free_bytes("/dev/shm")?;
        Some(crate::facility::MessageCap {
            bytes: usize::try_from(free).ok()?.saturating_sub(layout::SLOTS_AT + 64),
            set_by: "--max-size when the ring is created, up to the free space of /dev/shm"
                .to_owned(),
        })
    },
    #[cfg(feature = "bench")]
    connector: Some(&bench::CONNECTOR),
};
