//! `pubsub:/NAME`: one publisher, up to N subscribers, each with its own
//! cursor, over the same kind of shared-memory slots as the ring.
//!
//! A subscriber sees every message published after it subscribed. What a
//! slow subscriber costs is the ring's policy, chosen at creation:
//!
//! - **block** (the default): the publisher waits until every attached
//!   subscriber has received the oldest message before reusing its slot;
//!   nothing is lost, and the slowest subscriber sets the pace;
//! - **overwrite**: the publisher never waits; a subscriber that falls a
//!   whole ring behind skips what was overwritten and counts it
//!   ([`Subscriber::lost`]), so it sees every message or knows exactly
//!   how many it missed.
//!
//! In overwrite mode a subscriber may be copying a slot while the
//! publisher rewrites it. Each slot therefore carries a stamp, odd while
//! the publisher writes and `2 × (number + 1)` once message `number` is
//! complete; the subscriber checks the stamp before and after its copy and
//! counts a changed one as lost instead of delivering a torn message (a
//! sequence lock).
//!
//! The publisher's and every subscriber's process are registered as in
//! the ring: a subscriber waiting on a dead publisher gets
//! [`Error::PeerDied`] within 100 ms; a dead subscriber's place is freed by
//! the publisher (which stops waiting for it) or by the next subscriber.
//!
//! The publisher sends by copy or by loan ([`Publisher::loan`]); a
//! subscriber receives by copy, or under the block policy by a borrowed
//! view ([`Subscriber::recv_view`]; under overwrite the publisher may
//! rewrite a slot under a reader, which the stamp detects only after a
//! copy).
//!
//! # Examples
//! ```
//! use unipc::message::ring::pubsub::PubSubOptions;
//! use unipc::message::{Messenger, Wait};
//!
//! let name = "/pubsub-demo".parse()?;
//! let made = PubSubOptions::new().capacity(8).max_size(64).subscribers(3).create(&name)?;
//! let a = made.subscribe()?;
//! let b = PubSubOptions::open(&name)?.subscribe()?;
//! let publisher = PubSubOptions::open(&name)?.publish()?;
//! publisher.send(b"tick")?;
//! assert_eq!(a.recv_vec(Wait::Never)?.0, b"tick");
//! assert_eq!(b.recv_vec(Wait::Never)?.0, b"tick");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// The pubsub's cursors and stamps are not yet behind the `Words` facade:
// it has no loom model yet (an open item of its issue).
#![allow(clippy::disallowed_types)]

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use super::peer::{self, Holder, Taken};
use crate::error::ObjectName;
use crate::facility::{
    Direction, Facility, LiveLimit, Naming, Persistence, Properties, Reach, Shape, Tags,
};
use crate::message::{unsupported_tag, Doorbell, Limits, Messenger, Received, Tag, Wait};
use crate::name::PosixName;
use crate::shm::posix::{Segment, SegmentOptions};
use crate::shm::{Access, Mapping};
use crate::{Endpoint, Error, Mode, Result};

use super::doorbell::{Bell, FutexDoorbell, Ready};
use super::protocol;
use super::shared::KernelFutex;
use super::wait::{Waiter, Waiting};
use super::WaitStrategy;

const MAGIC: u64 = u64::from_le_bytes(*b"unipcpub");
const VERSION: u32 = 1;
const VERSION_AT: usize = 8;
const CAPACITY_AT: usize = 16;
const MAX_SIZE_AT: usize = 24;
const SUBSCRIBERS_AT: usize = 32;
const POLICY_AT: usize = 36;
const STRIDE_AT: usize = 40;
const TOTAL_AT: usize = 48;
const CONFIG_LEN: usize = 56;
const TAIL_AT: usize = 128;
const WRITER_AT: usize = 256;
const WRITER_SLEEPING_AT: usize = 264;
const WRITER_FUTEX_AT: usize = 268;
/// Subscriber `i`'s line: identity, cursor, sleeping flag, futex, lost.
const SUBS_AT: usize = 384;
const SUB_LINE: usize = 128;
const SUB_HEAD: usize = 8;
const SUB_SLEEPING: usize = 16;
const SUB_FUTEX: usize = 20;
const SUB_LOST: usize = 24;
/// A slot: stamp, length, bytes.
const SLOT_HEADER: usize = 16;
/// The most subscribers one object takes: each costs the publisher a
/// load per message (to see whether it sleeps).
pub const MAX_SUBSCRIBERS: u32 = 64;

/// What the publisher does when a subscriber is a whole ring behind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Policy {
    /// Wait for it: nothing is lost.
    #[default]
    Block,
    /// Overwrite the oldest message; the subscriber counts what it lost.
    Overwrite,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    capacity: u64,
    max_size: usize,
    subscribers: u32,
    policy: Policy,
    stride: usize,
    total: usize,
}

impl Layout {
    fn new(capacity: u64, max_size: usize, subscribers: u32, policy: Policy) -> Option<Layout> {
        if capacity == 0 || max_size == 0 || subscribers == 0 || subscribers > MAX_SUBSCRIBERS {
            return None;
        }
        let stride = SLOT_HEADER
            .checked_add(max_size)?
            .checked_next_multiple_of(64)?;
        let slots_at = SUBS_AT + subscribers as usize * SUB_LINE;
        let total = usize::try_from(capacity)
            .ok()?
            .checked_mul(stride)?
            .checked_add(slots_at)
            .filter(|&n| n <= isize::MAX as usize)?;
        Some(Layout {
            capacity,
            max_size,
            subscribers,
            policy,
            stride,
            total,
        })
    }

    fn config(&self) -> [u8; CONFIG_LEN] {
        let mut out = [0; CONFIG_LEN];
        let mut put = |at: usize, bytes: &[u8]| out[at..at + bytes.len()].copy_from_slice(bytes);
        put(VERSION_AT, &VERSION.to_le_bytes());
        put(CAPACITY_AT, &self.capacity.to_le_bytes());
        put(MAX_SIZE_AT, &(self.max_size as u64).to_le_bytes());
        put(SUBSCRIBERS_AT, &self.subscribers.to_le_bytes());
        put(
            POLICY_AT,
            &u32::from(self.policy == Policy::Overwrite).to_le_bytes(),
        );
        put(STRIDE_AT, &(self.stride as u64).to_le_bytes());
        put(TOTAL_AT, &(self.total as u64).to_le_bytes());
        out
    }

    fn parse(config: &[u8], object_size: u64) -> std::result::Result<Layout, String> {
        assert_eq!(config.len(), CONFIG_LEN);
        let u32_at = |at: usize| u32::from_le_bytes(config[at..at + 4].try_into().unwrap());
        let u64_at = |at: usize| u64::from_le_bytes(config[at..at + 8].try_into().unwrap());
        if u64_at(0) != MAGIC {
            return Err(
                "it holds no pubsub header (a pubsub's first bytes are \"unipcpub\")".into(),
            );
        }
        if u32_at(VERSION_AT) != VERSION {
            return Err(format!(
                "its header is version {}; this build reads version {VERSION}",
                u32_at(VERSION_AT)
            ));
        }
        let policy = match u32_at(POLICY_AT) {
            0 => Policy::Block,
            1 => Policy::Overwrite,
            other => return Err(format!("its header names policy {other}, which is none")),
        };
        let (capacity, max, subs) = (
            u64_at(CAPACITY_AT),
            u64_at(MAX_SIZE_AT),
            u32_at(SUBSCRIBERS_AT),
        );
        let layout = usize::try_from(max)
            .ok()
            .and_then(|max| Layout::new(capacity, max, subs, policy))
            .ok_or_else(|| {
                format!("its header says {capacity} messages of {max} bytes for {subs} subscribers, which no pubsub can be")
            })?;
        if u64_at(STRIDE_AT) != layout.stride as u64 || u64_at(TOTAL_AT) != layout.total as u64 {
            return Err(
                "its header's slot size or total disagrees with its capacity and max size".into(),
            );
        }
        if object_size < layout.total as u64 {
            return Err(format!(
                "the object is {object_size} bytes, shorter than the {} its header describes",
                layout.total
            ));
        }
        Ok(layout)
    }

    fn slot(&self, seq: u64) -> usize {
        SUBS_AT
            + self.subscribers as usize * SUB_LINE
            + (seq % self.capacity) as usize * self.stride
    }

    fn sub(&self, index: u32) -> usize {
        SUBS_AT + index as usize * SUB_LINE
    }
}

/// Options for creating a pubsub object. Built by value.
#[derive(Clone, Debug)]
pub struct PubSubOptions {
    capacity: u64,
    max_size: usize,
    subscribers: u32,
    policy: Policy,
    mode: Mode,
    exclusive: bool,
    keep: bool,
}

impl Default for PubSubOptions {
    fn default() -> Self {
        PubSubOptions {
            capacity: 64,
            max_size: 4096,
            subscribers: 4,
            policy: Policy::Block,
            mode: Mode::OWNER_RW,
            exclusive: false,
            keep: false,
        }
    }
}

/// A pubsub object, created or opened, before it publishes or subscribes.
/// Unlinks the name on drop if this handle created it and was not kept.
pub struct PubSub {
    map: Mapping,
    layout: Layout,
    segment: Segment,
    object: ObjectName,
}

impl fmt::Debug for PubSub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PubSub")
            .field("object", &self.object)
            .field("layout", &self.layout)
            .finish()
    }
}

fn object_of(name: &PosixName) -> ObjectName {
    Endpoint::PubSub(name.clone()).to_string().into()
}

#[allow(unsafe_code)]
fn map(segment: &Segment) -> Result<Mapping> {
    // SAFETY: as for the ring (`super::map`): the processes the object's
    // mode admits are trusted not to truncate it; this one never does.
    unsafe { segment.map(Access::ReadWrite) }
}

impl PubSubOptions {
    /// 64 messages of at most 4096 bytes, 4 subscribers, blocking, mode
    /// 0o600, not exclusive, unlinked when the creator's handle drops.
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

    /// How many subscribers may attach at once (1 to [`MAX_SUBSCRIBERS`]).
    pub fn subscribers(mut self, n: u32) -> Self {
        self.subscribers = n;
        self
    }

    /// Overwrite the oldest message instead of waiting for a slow
    /// subscriber.
    pub fn overwrite(mut self, overwrite: bool) -> Self {
        self.policy = if overwrite {
            Policy::Overwrite
        } else {
            Policy::Block
        };
        self
    }

    /// Permission bits, set exactly whatever the umask.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Refuse an object that already exists.
    pub fn exclusive(mut self, exclusive: bool) -> Self {
        self.exclusive = exclusive;
        self
    }

    /// Leave the object in place when the creator's handle drops.
    pub fn keep(mut self) -> Self {
        self.keep = true;
        self
    }

    /// Creates the object, or adopts one this user made with the same mode
    /// and the same sizes and policy.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a size, capacity or subscriber count of
    /// 0 or over [`MAX_SUBSCRIBERS`]; as for a ring otherwise
    /// ([`super::RingOptions::create`]).
    pub fn create(&self, name: &PosixName) -> Result<PubSub> {
        let object = object_of(name);
        let layout = Layout::new(self.capacity, self.max_size, self.subscribers, self.policy)
            .ok_or_else(|| Error::Unsupported {
                object: object.clone(),
                what: format!(
                    "{} messages of {} bytes for {} subscribers",
                    self.capacity, self.max_size, self.subscribers
                ),
                reason: format!(
                    "capacity, max size and subscribers must be at least 1, subscribers at most {MAX_SUBSCRIBERS}, and the whole must fit in memory"
                ),
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
        if segment.created() {
            let map = map(&segment)?;
            map.write_at(0, &layout.config())?;
            map.region().atomic_u64(0).store(MAGIC, Ordering::Release);
            return Ok(PubSub {
                map,
                layout,
                segment,
                object,
            });
        }
        let found = PubSub::validate(segment, name)?;
        if found.layout != layout {
            return Err(Error::BadHeader {
                object,
                expected: "the pubsub asked for",
                reason: format!(
                    "it exists with {:?}, not {:?}: open it as it is, or remove it first",
                    found.layout, layout
                ),
            });
        }
        Ok(found)
    }

    /// Opens an existing object.
    ///
    /// # Errors
    /// As [`super::Ring::open`].
    pub fn open(name: &PosixName) -> Result<PubSub> {
        let segment = SegmentOptions::new()
            .access(Access::ReadWrite)
            .open(name)
            .map_err(|e| e.renamed(&object_of(name)))?;
        PubSub::validate(segment, name)
    }
}

/// A pubsub object's figures.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PubSubStatus {
    /// How many messages it holds.
    pub capacity: u64,
    /// The largest message, in bytes.
    pub max_size: usize,
    /// Whether a slow subscriber is overwritten.
    pub policy: Policy,
    /// Messages published since creation.
    pub sent: u64,
    /// The publisher, if attached.
    pub publisher: Option<super::Attached>,
    /// Each attached subscriber: who, where its cursor is, what it lost.
    pub subscribers: Vec<SubscriberStatus>,
    /// How many may attach.
    pub max_subscribers: u32,
}

/// One attached subscriber in a [`PubSubStatus`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscriberStatus {
    /// Its process.
    pub process: super::Attached,
    /// Messages it has not received yet (capped at the capacity).
    pub behind: u64,
    /// Messages it lost to overwriting.
    pub lost: u64,
}

impl PubSub {
    fn validate(segment: Segment, name: &PosixName) -> Result<PubSub> {
        let object = object_of(name);
        let (map, layout) = super::map_header(
            &segment,
            &object,
            "a pubsub",
            SUBS_AT,
            CONFIG_LEN,
            Layout::parse,
        )?;
        Ok(PubSub {
            map,
            layout,
            segment,
            object,
        })
    }

    fn u64_at(&self, at: usize) -> &AtomicU64 {
        self.map.region().atomic_u64(at)
    }

    fn u32_at(&self, at: usize) -> &AtomicU32 {
        self.map.region().atomic_u32(at)
    }

    fn corrupt(&self, reason: String) -> Error {
        Error::BadHeader {
            object: self.object.clone(),
            expected: "a pubsub",
            reason,
        }
    }

    /// The object as errors name it (`pubsub:/NAME`).
    pub fn object(&self) -> &ObjectName {
        &self.object
    }

    /// Whether this handle created it.
    pub fn created(&self) -> bool {
        self.segment.created()
    }

    /// Leaves the name in place when this handle drops.
    pub fn keep(mut self) -> Self {
        self.segment = self.segment.keep();
        self
    }

    /// Sizes, policy, messages sent, and every attached process.
    ///
    /// # Errors
    /// None today.
    pub fn status(&self) -> Result<PubSubStatus> {
        let sent = self.u64_at(TAIL_AT).load(Ordering::Acquire);
        let attached = |word: u64| {
            Holder::from_word(word).map(|h| super::Attached {
                pid: h.pid,
                alive: h.alive(),
            })
        };
        let subscribers = (0..self.layout.subscribers)
            .filter_map(|i| {
                let line = self.layout.sub(i);
                let process = attached(self.u64_at(line).load(Ordering::Acquire))?;
                let head = self.u64_at(line + SUB_HEAD).load(Ordering::Acquire);
                Some(SubscriberStatus {
                    process,
                    behind: sent.saturating_sub(head).min(self.layout.capacity),
                    lost: self.u64_at(line + SUB_LOST).load(Ordering::Relaxed),
                })
            })
            .collect();
        Ok(PubSubStatus {
            capacity: self.layout.capacity,
            max_size: self.layout.max_size,
            policy: self.layout.policy,
            sent,
            publisher: attached(self.u64_at(WRITER_AT).load(Ordering::Acquire)),
            subscribers,
            max_subscribers: self.layout.subscribers,
        })
    }

    /// Becomes the publisher.
    ///
    /// # Errors
    /// [`Error::InUse`] while another live process publishes.
    pub fn publish(self) -> Result<Publisher> {
        let me = Holder::me();
        if let Taken::Held(holder) = peer::take(self.u64_at(WRITER_AT), me) {
            return Err(Error::InUse {
                object: self.object.clone(),
                role: "publisher",
                pid: holder.pid,
                reason: "a pubsub has one publisher; open another for another",
            });
        }
        let tail = self.u64_at(TAIL_AT).load(Ordering::Acquire);
        let publisher = Publisher {
            tail: Cell::new(tail),
            min_seen: Cell::new(tail.saturating_sub(self.layout.capacity)),
            waiting: Waiting::new(),
            me,
            pubsub: self,
        };
        // Subscribers that died before it came hold nothing back.
        publisher.drop_dead_subscribers()?;
        Ok(publisher)
    }

    /// Becomes a subscriber: takes a free place and starts at the next
    /// message published.
    ///
    /// # Errors
    /// [`Error::InUse`] when every place is held by a live process.
    pub fn subscribe(self) -> Result<Subscriber> {
        let me = Holder::me();
        let mut holder = None;
        for index in 0..self.layout.subscribers {
            let line = self.layout.sub(index);
            match peer::take(self.u64_at(line), me) {
                Taken::Ok => {
                    // A publisher that died before this subscriber came is
                    // cleared, not reported to it later.
                    let _ = peer::dead_holder(self.u64_at(WRITER_AT));
                    // The fence pairs with the publisher's after `tail`:
                    // either it sees this place taken, or this load sees
                    // every message it published without looking.
                    fence(Ordering::SeqCst);
                    let tail = self.u64_at(TAIL_AT).load(Ordering::Acquire);
                    self.u64_at(line + SUB_HEAD).store(tail, Ordering::Release);
                    self.u64_at(line + SUB_LOST).store(0, Ordering::Relaxed);
                    return Ok(Subscriber {
                        index,
                        head: Cell::new(tail),
                        lost: Cell::new(0),
                        waiting: Waiting::new(),
                        me,
                        pubsub: self,
                    });
                }
                Taken::Held(h) => holder = Some(h),
            }
        }
        Err(Error::InUse {
            object: self.object.clone(),
            role: "subscriber",
            pid: holder.map_or(0, |h| h.pid),
            reason: "every subscriber place is held by a live process: create the pubsub with more (--subscribers)",
        })
    }

    /// Sleeps on the futex word at `futex_at` with the flag at `flag_at`
    /// raised, as the ring does ([`protocol::park_on`]).
    fn park(
        &self,
        flag_at: usize,
        futex_at: usize,
        ready: &dyn Fn() -> bool,
        limit: Duration,
    ) -> Result<()> {
        protocol::park_on(
            &KernelFutex,
            self.u32_at(futex_at),
            self.u32_at(flag_at),
            ready,
            limit,
        )
        .map_err(|e| Error::os(self.object.clone(), "futex wait", e))
    }

    /// A side's sleep over a second mapping (see `doorbell.rs`).
    fn doorbell(&self, bell: Bell) -> Result<Option<Box<dyn Doorbell>>> {
        let map = map(&self.segment).map_err(|e| e.renamed(&self.object))?;
        Ok(Some(Box::new(FutexDoorbell::new(
            map,
            self.object.clone(),
            bell,
        )?)))
    }

    /// Wakes the sleeper on `futex_at` if its flag is raised; the caller
    /// has fenced ([`protocol::wake_on`]).
    fn wake(&self, flag_at: usize, futex_at: usize) {
        protocol::wake_on(&KernelFutex, self.u32_at(flag_at), self.u32_at(futex_at));
    }

    fn waiter<'a>(
        &'a self,
        waiting: &'a Waiting,
        idle: fn(ObjectName) -> Error,
        park: &'a dyn Fn(Duration) -> Result<()>,
        check_peer: &'a dyn Fn() -> Result<()>,
    ) -> Waiter<'a> {
        Waiter {
            object: &self.object,
            waiting,
            idle,
            park,
            check_peer,
        }
    }
}

/// The publishing side. Not `Sync`: one thread publishes at a time.
pub struct Publisher {
    pubsub: PubSub,
    me: Holder,
    tail: Cell<u64>,
    /// The slowest attached subscriber's cursor as last computed (block
    /// policy): recomputed only when the ring looks full.
    min_seen: Cell<u64>,
    waiting: Waiting,
}

impl fmt::Debug for Publisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("object", &self.pubsub.object)
            .field("tail", &self.tail.get())
            .finish()
    }
}

impl Publisher {
    /// How this side waits for a slow subscriber (block policy).
    pub fn set_wait_strategy(&self, strategy: WaitStrategy) {
        self.waiting.set(strategy);
    }

    /// The object behind this side.
    pub fn pubsub(&self) -> &PubSub {
        &self.pubsub
    }

    /// The slowest attached subscriber's cursor, checked; `tail` when none
    /// is attached.
    fn slowest(&self, tail: u64) -> Result<u64> {
        let ps = &self.pubsub;
        let mut min = tail;
        for index in 0..ps.layout.subscribers {
            let line = ps.layout.sub(index);
            if ps.u64_at(line).load(Ordering::Acquire) == 0 {
                continue;
            }
            let head = ps.u64_at(line + SUB_HEAD).load(Ordering::Acquire);
            if head > tail {
                return Err(ps.corrupt(format!(
                    "subscriber {index}'s cursor {head} is past the {tail} messages published"
                )));
            }
            if tail - head > ps.layout.capacity {
                // A place just taken, whose cursor is not stored yet (it
                // will be the tail): count it as caught up.
                continue;
            }
            min = min.min(head);
        }
        Ok(min)
    }

    fn free_slot(&self) -> Result<Option<u64>> {
        let tail = self.tail.get();
        let capacity = self.pubsub.layout.capacity;
        if self.pubsub.layout.policy == Policy::Overwrite || tail - self.min_seen.get() < capacity {
            return Ok(Some(tail));
        }
        let min = self.slowest(tail)?;
        self.min_seen.set(min);
        Ok((tail - min < capacity).then_some(tail))
    }

    /// Frees the places of subscribers that died (the block policy would
    /// wait for them forever).
    fn drop_dead_subscribers(&self) -> Result<()> {
        for index in 0..self.pubsub.layout.subscribers {
            let _ = peer::dead_holder(self.pubsub.u64_at(self.pubsub.layout.sub(index)));
        }
        Ok(())
    }

    /// Waits for the next slot and stamps it as being written.
    fn reserve(&self, wait: Wait) -> Result<u64> {
        let ps = &self.pubsub;
        let tail = self.tail.get();
        let ready = || {
            self.slowest(tail)
                .map_or(true, |min| tail - min < ps.layout.capacity)
        };
        let park = |limit| ps.park(WRITER_SLEEPING_AT, WRITER_FUTEX_AT, &ready, limit);
        let check = || self.drop_dead_subscribers();
        let seq = ps
            .waiter(
                &self.waiting,
                |object| Error::Full { object },
                &park,
                &check,
            )
            .wait_for(wait, || self.free_slot())?;
        // Odd while written: a subscriber copying the message this slot
        // held sees the stamp change and counts that message lost.
        ps.u64_at(ps.layout.slot(seq))
            .store(2 * (seq + 1) + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        Ok(seq)
    }

    /// Publishes message `seq` of `len` bytes, written into its slot.
    fn publish(&self, seq: u64, len: usize) -> Result<()> {
        let ps = &self.pubsub;
        let slot = ps.layout.slot(seq);
        ps.map.write_at(slot + 8, &(len as u64).to_le_bytes())?;
        ps.u64_at(slot).store(2 * (seq + 1), Ordering::Release);
        ps.u64_at(TAIL_AT).store(seq + 1, Ordering::Release);
        self.tail.set(seq + 1);
        fence(Ordering::SeqCst);
        for index in 0..ps.layout.subscribers {
            let line = ps.layout.sub(index);
            ps.wake(line + SUB_SLEEPING, line + SUB_FUTEX);
        }
        Ok(())
    }

    fn check_size(&self, len: usize) -> Result<()> {
        let ps = &self.pubsub;
        if len > ps.layout.max_size {
            return Err(Error::MessageTooLarge {
                object: ps.object.clone(),
                size: len,
                limit: ps.layout.max_size,
            });
        }
        Ok(())
    }

    /// Publishes `message` to every attached subscriber.
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`]; [`Error::Full`] or [`Error::TimedOut`]
    /// when a slow subscriber holds the oldest slot (block policy).
    pub fn send_wait(&self, message: &[u8], wait: Wait) -> Result<()> {
        self.check_size(message.len())?;
        let seq = self.reserve(wait)?;
        let ps = &self.pubsub;
        ps.map
            .write_at(ps.layout.slot(seq) + SLOT_HEADER, message)?;
        self.publish(seq, message.len())
    }

    /// Lends the next slot to be written in place; [`PubLoan::commit`]
    /// publishes it. A dropped loan publishes nothing, but in overwrite
    /// mode the message its slot held is gone (subscribers count it lost).
    ///
    /// # Errors
    /// As [`send_wait`](Self::send_wait), for the slot.
    pub fn loan(&mut self, wait: Wait) -> Result<PubLoan<'_>> {
        let seq = self.reserve(wait)?;
        Ok(PubLoan {
            publisher: self,
            seq,
        })
    }
}

/// A slot lent by [`Publisher::loan`]: `max_size` bytes to fill in place.
pub struct PubLoan<'a> {
    publisher: &'a mut Publisher,
    seq: u64,
}

impl fmt::Debug for PubLoan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PubLoan").field("seq", &self.seq).finish()
    }
}

impl PubLoan<'_> {
    /// Publishes the first `len` bytes of the slot.
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`] over the max size (nothing published).
    pub fn commit(self, len: usize) -> Result<()> {
        self.publisher.check_size(len)?;
        self.publisher.publish(self.seq, len)
    }

    fn bytes(&self) -> (usize, usize) {
        let layout = &self.publisher.pubsub.layout;
        (layout.slot(self.seq) + SLOT_HEADER, layout.max_size)
    }
}

impl std::ops::Deref for PubLoan<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let (at, len) = self.bytes();
        // SAFETY: this loan holds the slot it reserved (the one publisher,
        // borrowed mutably, stamped it as being written); nothing else in
        // this process refers into it, and `&self` lends it shared only.
        #[allow(unsafe_code)]
        let bytes = unsafe { super::shared::lend_mut(&self.publisher.pubsub.map, at, len) };
        bytes
    }
}

impl std::ops::DerefMut for PubLoan<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let (at, len) = self.bytes();
        // SAFETY: as for `deref`; `&mut self` makes this the only slice.
        #[allow(unsafe_code)]
        let bytes = unsafe { super::shared::lend_mut(&self.publisher.pubsub.map, at, len) };
        bytes
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        peer::give_back(self.pubsub.u64_at(WRITER_AT), self.me);
    }
}

/// Where a complete message lies, as [`Subscriber::next`] found it.
#[derive(Clone, Copy, Debug)]
struct Next {
    seq: u64,
    at: usize,
    len: usize,
    stamp: u64,
}

/// A message borrowed in place by [`Subscriber::recv_view`].
pub struct SubView<'a> {
    subscriber: &'a mut Subscriber,
    next: Next,
}

impl fmt::Debug for SubView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubView")
            .field("seq", &self.next.seq)
            .field("len", &self.next.len)
            .finish()
    }
}

impl std::ops::Deref for SubView<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: under the block policy (checked in `recv_view`) the
        // publisher reuses this slot only once every attached subscriber's
        // cursor, this one's included, is past `seq`, and this cursor moves
        // only in `drop`; `next` found the message complete and its length
        // within the max size, and the view borrows the subscriber mutably.
        #[allow(unsafe_code)]
        let bytes = unsafe {
            super::shared::lend(&self.subscriber.pubsub.map, self.next.at, self.next.len)
        };
        bytes
    }
}

impl Drop for SubView<'_> {
    fn drop(&mut self) {
        self.subscriber.advance(self.next.seq + 1);
    }
}

/// One subscribing side. Not `Sync`: one thread receives at a time.
pub struct Subscriber {
    pubsub: PubSub,
    me: Holder,
    index: u32,
    head: Cell<u64>,
    lost: Cell<u64>,
    waiting: Waiting,
}

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("object", &self.pubsub.object)
            .field("index", &self.index)
            .field("head", &self.head.get())
            .finish()
    }
}

impl Subscriber {
    /// How this side waits for a message.
    pub fn set_wait_strategy(&self, strategy: WaitStrategy) {
        self.waiting.set(strategy);
    }

    /// Messages this subscriber lost to overwriting, since it subscribed.
    pub fn lost(&self) -> u64 {
        self.lost.get()
    }

    /// The object behind this side.
    pub fn pubsub(&self) -> &PubSub {
        &self.pubsub
    }

    fn line(&self) -> usize {
        self.pubsub.layout.sub(self.index)
    }

    fn count_lost(&self, n: u64) {
        self.lost.set(self.lost.get() + n);
        self.pubsub
            .u64_at(self.line() + SUB_LOST)
            .store(self.lost.get(), Ordering::Relaxed);
    }

    fn advance(&self, to: u64) {
        self.head.set(to);
        let ps = &self.pubsub;
        ps.u64_at(self.line() + SUB_HEAD)
            .store(to, Ordering::Release);
        fence(Ordering::SeqCst);
        ps.wake(WRITER_SLEEPING_AT, WRITER_FUTEX_AT);
    }

    /// Copies out the next message if one is there: `Some(len)`.
    /// The next complete message: its number, where its bytes start, its
    /// length and its stamp; lapped or overwritten ones are counted lost
    /// on the way.
    fn next(&self) -> Result<Option<Next>> {
        let ps = &self.pubsub;
        let capacity = ps.layout.capacity;
        loop {
            let head = self.head.get();
            let tail = ps.u64_at(TAIL_AT).load(Ordering::Acquire);
            if tail == head {
                return Ok(None);
            }
            if tail < head {
                return Err(ps.corrupt(format!(
                    "{tail} messages published, fewer than the {head} this subscriber has seen"
                )));
            }
            if tail - head > capacity {
                // Overwritten while this subscriber was away.
                self.count_lost(tail - capacity - head);
                self.advance(tail - capacity);
                continue;
            }
            let slot = ps.layout.slot(head);
            let expected = 2 * (head + 1);
            let stamp = ps.u64_at(slot).load(Ordering::Acquire);
            if stamp != expected {
                if stamp > expected {
                    self.count_lost(1);
                    self.advance(head + 1);
                    continue;
                }
                return Err(ps.corrupt(format!(
                    "message {head}'s slot is stamped {stamp}, older than the message"
                )));
            }
            let mut word = [0; 8];
            ps.map.read_at(slot + 8, &mut word)?;
            let stored = u64::from_le_bytes(word);
            match usize::try_from(stored) {
                Ok(len) if len <= ps.layout.max_size => {
                    return Ok(Some(Next {
                        seq: head,
                        at: slot + SLOT_HEADER,
                        len,
                        stamp,
                    }))
                }
                _ if ps.layout.policy == Policy::Overwrite
                    && ps.u64_at(slot).load(Ordering::Acquire) != stamp =>
                {
                    self.count_lost(1);
                    self.advance(head + 1);
                }
                _ => {
                    return Err(ps.corrupt(format!(
                        "message {head} claims {stored} bytes, over the max size of {}",
                        ps.layout.max_size
                    )))
                }
            }
        }
    }

    /// Copies out the next message if one is there: `Some(len)`.
    fn try_take(&self, buf: &mut [u8]) -> Result<Option<usize>> {
        let ps = &self.pubsub;
        while let Some(next) = self.next()? {
            if buf.len() < next.len {
                return Err(Error::BufferTooSmall {
                    object: ps.object.clone(),
                    buffer: buf.len(),
                    needed: Some(next.len),
                });
            }
            ps.map.read_at(next.at, &mut buf[..next.len])?;
            fence(Ordering::Acquire);
            let slot = ps.layout.slot(next.seq);
            if ps.u64_at(slot).load(Ordering::Relaxed) != next.stamp {
                // Rewritten during the copy: torn, so not delivered.
                self.count_lost(1);
                self.advance(next.seq + 1);
                continue;
            }
            self.advance(next.seq + 1);
            return Ok(Some(next.len));
        }
        Ok(None)
    }

    /// Borrows the next message in place (block policy only); dropping the
    /// view lets the publisher reuse its slot.
    ///
    /// # Errors
    /// [`Error::Unsupported`] under the overwrite policy, where the
    /// publisher may rewrite a slot under the view; otherwise as
    /// [`recv_wait`](Self::recv_wait), less the buffer.
    pub fn recv_view(&mut self, wait: Wait) -> Result<SubView<'_>> {
        let ps = &self.pubsub;
        if ps.layout.policy == Policy::Overwrite {
            return Err(Error::Unsupported {
                object: ps.object.clone(),
                what: "a borrowed view".into(),
                reason: "under the overwrite policy the publisher may rewrite the slot under it: receive by copy (recv_wait), which detects that".into(),
            });
        }
        let next = self.wait_for(wait, || self.next())?;
        Ok(SubView {
            subscriber: self,
            next,
        })
    }

    fn check_publisher(&self) -> Result<()> {
        peer::check_alive(
            self.pubsub.u64_at(WRITER_AT),
            &self.pubsub.object,
            "publisher",
        )
    }

    /// Receives the next message into `buf`.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] (the message stays); [`Error::Empty`] or
    /// [`Error::TimedOut`]; [`Error::PeerDied`] when the publisher died;
    /// [`Error::BadHeader`] for a cursor, stamp or length out of range.
    pub fn recv_wait(&self, buf: &mut [u8], wait: Wait) -> Result<Received> {
        let len = self.wait_for(wait, || self.try_take(buf))?;
        Ok(Received::new(len, Tag::None))
    }

    /// Waits for a message as this side's strategy says, until `attempt`
    /// yields.
    fn wait_for<T>(&self, wait: Wait, attempt: impl FnMut() -> Result<Option<T>>) -> Result<T> {
        let ps = &self.pubsub;
        let line = self.line();
        let ready = || ps.u64_at(TAIL_AT).load(Ordering::Acquire) != self.head.get();
        let park = |limit| ps.park(line + SUB_SLEEPING, line + SUB_FUTEX, &ready, limit);
        let check = || self.check_publisher();
        ps.waiter(
            &self.waiting,
            |object| Error::Empty { object },
            &park,
            &check,
        )
        .wait_for(wait, attempt)
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        peer::give_back(self.pubsub.u64_at(self.line()), self.me);
    }
}

fn one_way(object: ObjectName, what: &str) -> Error {
    Error::Unsupported {
        object,
        what: what.into(),
        reason: "a pubsub carries messages from its publisher to its subscribers".into(),
    }
}

impl Messenger for Publisher {
    fn object(&self) -> ObjectName {
        self.pubsub.object.clone()
    }

    fn limits(&self) -> Result<Limits> {
        Ok(Limits::new(
            self.pubsub.layout.max_size,
            usize::try_from(self.pubsub.layout.capacity).ok(),
        ))
    }

    fn send_tagged(&self, message: &[u8], tag: Tag, wait: Wait) -> Result<()> {
        if tag != Tag::None {
            return Err(unsupported_tag(self.object(), tag, "no tags"));
        }
        self.send_wait(message, wait)
    }

    fn recv_into(&self, _buf: &mut [u8], _wait: Wait) -> Result<Received> {
        Err(one_way(self.object(), "receiving on the publisher's side"))
    }

    fn set_polling(&self, polling: bool) -> Result<()> {
        self.set_wait_strategy(WaitStrategy::polling(polling));
        Ok(())
    }

    /// Sleeps as the publisher does, until a subscriber frees a slot
    /// (which subscribers hold it back is not read from the doorbell: a
    /// wake-up, or the limit, ends the sleep).
    fn doorbell(&self) -> Result<Option<Box<dyn Doorbell>>> {
        self.pubsub.doorbell(Bell {
            flag_at: WRITER_SLEEPING_AT,
            futex_at: WRITER_FUTEX_AT,
            ready: Ready::Unknown,
            peer: None,
        })
    }
}

impl Messenger for Subscriber {
    fn object(&self) -> ObjectName {
        self.pubsub.object.clone()
    }

    fn limits(&self) -> Result<Limits> {
        Ok(Limits::new(
            self.pubsub.layout.max_size,
            usize::try_from(self.pubsub.layout.capacity).ok(),
        ))
    }

    fn recv_buffer_hint(&self) -> Result<usize> {
        Ok(self.pubsub.layout.max_size)
    }

    fn send_tagged(&self, _message: &[u8], _tag: Tag, _wait: Wait) -> Result<()> {
        Err(one_way(self.object(), "sending on a subscriber's side"))
    }

    fn recv_into(&self, buf: &mut [u8], wait: Wait) -> Result<Received> {
        self.recv_wait(buf, wait)
    }

    fn set_polling(&self, polling: bool) -> Result<()> {
        self.set_wait_strategy(WaitStrategy::polling(polling));
        Ok(())
    }

    /// Sleeps as this subscriber does, until the publisher publishes; its
    /// death is reported as [`Error::PeerDied`].
    fn doorbell(&self) -> Result<Option<Box<dyn Doorbell>>> {
        let line = self.line();
        self.pubsub.doorbell(Bell {
            flag_at: line + SUB_SLEEPING,
            futex_at: line + SUB_FUTEX,
            ready: Ready::Differ {
                tail: TAIL_AT,
                head: line + SUB_HEAD,
            },
            peer: Some((WRITER_AT, "publisher")),
        })
    }
}

/// Removes the pubsub object `name` after checking that it is one.
///
/// # Errors
/// As [`PubSubOptions::open`]; [`Error::Os`] when `shm_unlink` fails.
pub fn remove(name: &PosixName) -> Result<()> {
    super::remove_checked(name, object_of(name), || {
        PubSubOptions::open(name).map(drop)
    })
}

/// The registry entry.
pub static FACILITY: Facility = Facility {
    name: "pubsub",
    scheme: Some("pubsub"),
    summary: "shared-memory publish-subscribe: one publisher, each subscriber with its own cursor; blocks or overwrites a slow one",
    addressing: "pubsub:/NAME (a /dev/shm object of that name)",
    properties: Properties {
        shape: Shape::Messages,
        direction: Direction::OneWay,
        tags: Tags::None,
        destructive_read: false,
        peek: false,
        naming: Naming::IpcName,
        reach: Reach::Host,
        persistence: Persistence::Kernel,
        permissions: "file owner and mode bits of its /dev/shm object; every side needs read and write",
        reliable: true,
        after_crash: "the object stays until unlinked; a dead subscriber's place is freed, a waiting subscriber is told of a dead publisher within 100 ms; overwrite mode counts what a slow subscriber lost",
    },
    limits: || {
        vec![LiveLimit {
            name: "subscribers",
            value: format!("at most {MAX_SUBSCRIBERS} per object, set when created"),
            source: "unipc create pubsub:/NAME --subscribers N",
        }]
    },
    max_message: || None,
    #[cfg(feature = "bench")]
    connector: Some(&super::bench::PUBSUB_CONNECTOR),
};
