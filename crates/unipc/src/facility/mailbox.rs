//! A two-way [`Link`] through shared memory: one mailbox per direction in
//! one mapping both processes hold, each a sequence word the receiver waits
//! on with a futex, an acknowledgement word the sender waits on before it
//! reuses the box, and the bytes.
//!
//! This is how shared memory joins the bench's latency table: the bytes
//! move by `memcpy` with no system call, and the only calls are the futex
//! waits and wakes of a blocking hand-off (none at all when busy-polling).
//! A wake is made only when the other side has said it waits (a waiter
//! count beside each word, read after the word is published, both
//! sequentially consistent: the waiter increments the count, then re-reads
//! the word before sleeping, so either it sees the new value or the waker
//! sees the count).
//!
//! Nothing read from the mapping is trusted: a length is checked against
//! the box and the unit expected, and a sequence number that is not the
//! next one is an error, as from a broken or hostile peer.
//!
//! Layout (offsets in bytes; [`layout`] gives them to the raw baseline):
//!
//! ```text
//! 0      header: JOINED (u32, futex word), PARENT_PID, PEER_PID
//! PAGE   box 0 (parent → peer): SEQ, ACK, LEN, SEQ_WAITERS, ACK_WAITERS
//!        (each on its own cache line), then DATA at PAGE: max bytes
//! PAGE + box_len   box 1 (peer → parent), the same
//! ```

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Link, RawIo};
use crate::shm::Mapping;
use crate::sync::futex::Futex;
use crate::sync::Wait;
use crate::{Error, Result};

/// Offsets of the mailbox words and bytes, shared with the raw baseline.
pub mod layout {
    /// One page: the header's size, and where a box's bytes start.
    pub const PAGE: usize = 4096;
    /// In the header: set to 1 by the peer once it has attached.
    pub const JOINED: usize = 0;
    /// In the header: the parent's pid.
    pub const PARENT_PID: usize = 64;
    /// In the header: the peer's pid.
    pub const PEER_PID: usize = 128;
    /// In a box: the number of the last unit written (the receiver's futex).
    pub const SEQ: usize = 0;
    /// In a box: the number of the last unit read (the sender's futex).
    pub const ACK: usize = 64;
    /// In a box: the length of the unit in it.
    pub const LEN: usize = 128;
    /// In a box: how many wait on `SEQ`.
    pub const SEQ_WAITERS: usize = 192;
    /// In a box: how many wait on `ACK`.
    pub const ACK_WAITERS: usize = 256;
    /// In a box: where the bytes start.
    pub const DATA: usize = PAGE;

    /// The size of one box for units of up to `max` bytes.
    pub fn box_len(max: usize) -> usize {
        PAGE + max.div_ceil(PAGE).max(1) * PAGE
    }

    /// The offset of box `index` (0: parent to peer, 1: peer to parent).
    pub fn box_offset(index: usize, max: usize) -> usize {
        PAGE + index * box_len(max)
    }

    /// The size of the whole mapping.
    pub fn total(max: usize) -> usize {
        box_offset(2, max)
    }
}

/// Whether process `pid` is alive: listed in `/proc`, neither a zombie nor
/// dead (what the link's watch asks; the bench's hand-off section asks it
/// too).
pub fn process_alive(pid: u32) -> bool {
    crate::sys::proc::process_alive(pid)
}

/// How often the watch looks at the other process, and wakes this one's
/// waits again once it has died.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);

/// What a link whose peer has not joined yet reports as its peer's death.
static NOT_WATCHED: AtomicBool = AtomicBool::new(false);

/// Busy-polling looks at the watch's verdict every so many spins.
const SPINS_PER_CHECK: u32 = 1 << 10;

/// Which end of the link this process holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// The process that made the mapping: sends in box 0.
    Parent,
    /// The process that joined: sends in box 1.
    Peer,
}

/// A thread that watches the other process: a side asleep in an untimed
/// futex wait would never wake if it died, and a timed wait costs a kernel
/// timer on every sleep (about a tenth of a same-CPU hand-off, measured).
/// Once the other process is gone it sets `dead` and wakes every word of
/// the link, again each interval, so a wait that began just before cannot
/// miss it.
struct Watch {
    dead: Arc<AtomicBool>,
    _thread: ProcessWatch,
}

impl Watch {
    fn start(map: Arc<Mapping>, other: u32, words: [usize; 4]) -> Watch {
        let dead = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&dead);
        let thread = ProcessWatch::start(other, move || {
            flag.store(true, SeqCst);
            for offset in words {
                if let Ok(futex) = Futex::new(&map, offset) {
                    let _ = futex.wake(u32::MAX);
                }
            }
            true
        });
        Watch {
            dead,
            _thread: thread,
        }
    }
}

/// A thread that looks at a process every 100 ms and, once it
/// has died, calls `on_death` (again each interval while it returns true);
/// stopped and joined when dropped.
#[derive(Debug)]
pub struct ProcessWatch {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProcessWatch {
    /// Watches `pid`.
    pub fn start(pid: u32, mut on_death: impl FnMut() -> bool + Send + 'static) -> ProcessWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut dead = false;
            while !flag.load(SeqCst) {
                std::thread::sleep(WATCH_INTERVAL);
                dead = dead || !process_alive(pid);
                if dead && !flag.load(SeqCst) && !on_death() {
                    return;
                }
            }
        });
        ProcessWatch {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for ProcessWatch {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One end of a mailbox link.
pub(crate) struct MailboxLink {
    map: Arc<Mapping>,
    outbox: usize,
    inbox: usize,
    max: usize,
    /// The pid of the other side, to tell a dead peer from a slow one.
    other: u32,
    watch: Option<Watch>,
    busy: bool,
}

impl MailboxLink {
    /// Writes this side's pid into the header; the peer also marks the
    /// link joined, wakes the parent and starts watching it.
    pub(crate) fn new(map: Mapping, side: Side, max: usize) -> Result<MailboxLink> {
        if map.len() < layout::total(max) {
            return Err(Error::OutOfBounds {
                object: map.object().clone(),
                op: "join",
                offset: 0,
                len: layout::total(max) as u64,
                size: map.len() as u64,
            });
        }
        let (outbox, inbox, mine, theirs) = match side {
            Side::Parent => (0, 1, layout::PARENT_PID, layout::PEER_PID),
            Side::Peer => (1, 0, layout::PEER_PID, layout::PARENT_PID),
        };
        // Every word `word` hands out later is checked here, once.
        for at in [layout::box_offset(0, max), layout::box_offset(1, max)] {
            for word in [
                layout::SEQ,
                layout::ACK,
                layout::LEN,
                layout::SEQ_WAITERS,
                layout::ACK_WAITERS,
            ] {
                map.atomic_u32(at + word)?;
            }
        }
        for word in [layout::JOINED, layout::PARENT_PID, layout::PEER_PID] {
            map.atomic_u32(word)?;
        }
        map.atomic_u32(mine)?.store(std::process::id(), SeqCst);
        // No count is kept here but in the boxes (the last unit sent is
        // this side's SEQ, the last received its ACK), so the raw baseline
        // can take turns with this link over the same mapping.
        let mut link = MailboxLink {
            outbox: layout::box_offset(outbox, max),
            inbox: layout::box_offset(inbox, max),
            max,
            other: map.atomic_u32(theirs)?.load(SeqCst),
            watch: None,
            busy: false,
            map: Arc::new(map),
        };
        if side == Side::Peer {
            link.word(layout::JOINED)?.store(1, SeqCst);
            link.futex(layout::JOINED)?.wake(u32::MAX)?;
            link.watch();
        }
        Ok(link)
    }

    fn watch(&mut self) {
        let words = [
            self.outbox + layout::SEQ,
            self.outbox + layout::ACK,
            self.inbox + layout::SEQ,
            self.inbox + layout::ACK,
        ];
        self.watch = Some(Watch::start(Arc::clone(&self.map), self.other, words));
    }

    /// In the parent: waits until the peer has joined (or `timeout`), then
    /// starts watching it.
    pub(crate) fn wait_joined(&mut self, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        loop {
            if self.word(layout::JOINED)?.load(SeqCst) == 1 {
                self.other = self.word(layout::PEER_PID)?.load(SeqCst);
                self.watch();
                return Ok(());
            }
            let left = timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(Error::TimedOut {
                    object: self.map.object().clone(),
                    timeout,
                });
            }
            match self
                .futex(layout::JOINED)?
                .wait(0, Wait::For(left.min(WATCH_INTERVAL)))
            {
                Ok(()) | Err(Error::TimedOut { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// A word of the layout: every offset of it was checked in `new`
    /// (the mapping is large enough and writable, the offsets are
    /// multiples of 64), so the hot path skips `atomic_u32`'s checks,
    /// which cost a tenth of a busy-polled round trip.
    fn word(&self, offset: usize) -> Result<&AtomicU32> {
        Ok(self.map.atomic_u32_checked_before(offset))
    }

    fn futex(&self, offset: usize) -> Result<Futex<'_>> {
        Futex::new(&self.map, offset)
    }

    /// Waits until the word at `offset` satisfies `ready`, registering in
    /// the count at `waiters` before sleeping; returns the word's value.
    fn wait_for(&self, offset: usize, waiters: usize, ready: impl Fn(u32) -> bool) -> Result<u32> {
        let word = self.word(offset)?;
        let mut spins = 0u32;
        loop {
            let value = word.load(SeqCst);
            if ready(value) {
                return Ok(value);
            }
            if self.busy {
                spins = spins.wrapping_add(1);
                if spins % SPINS_PER_CHECK == 0 {
                    self.check_other()?;
                }
                std::hint::spin_loop();
                continue;
            }
            self.check_other()?;
            let count = self.word(waiters)?;
            count.fetch_add(1, SeqCst);
            let value = word.load(SeqCst);
            // The words are checked once (see `word`), so the hot path calls
            // `sys::futex` itself: `Futex::new` would name its word in a
            // fresh string on every wait.
            let slept = if ready(value) {
                Ok(crate::sys::futex::Waited::Changed)
            } else {
                crate::sys::futex::wait(word, value, None)
            };
            count.fetch_sub(1, SeqCst);
            slept.map_err(|e| Error::os(self.map.object().clone(), "futex wait", e))?;
        }
    }

    /// Wakes a waiter on the word at `offset` if the count at `waiters`
    /// says one may sleep there.
    fn wake(&self, offset: usize, waiters: usize) -> Result<()> {
        // Not skipped when busy-polling: the other side may still sleep
        // from a blocking phase; the count is zero when it does not.
        if self.word(waiters)?.load(SeqCst) > 0 {
            crate::sys::futex::wake(self.word(offset)?, 1)
                .map_err(|e| Error::os(self.map.object().clone(), "futex wake", e))?;
        }
        Ok(())
    }

    /// Fails once the watch has seen the other side exit (or turn
    /// zombie): nothing would ever wake this one.
    fn check_other(&self) -> Result<()> {
        if !self.watch.as_ref().is_some_and(|w| w.dead.load(SeqCst)) {
            Ok(())
        } else {
            let gone = io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the other process (pid {}) has exited", self.other),
            );
            Err(Error::os(self.map.object().clone(), "wait", gone))
        }
    }

    fn corrupt(&self, what: String) -> Error {
        let wrong = io::Error::new(io::ErrorKind::InvalidData, what);
        Error::os(self.map.object().clone(), "receive", wrong)
    }
}

impl Link for MailboxLink {
    fn send(&mut self, data: &[u8]) -> Result<()> {
        if data.len() > self.max {
            return Err(Error::MessageTooLarge {
                object: self.map.object().clone(),
                size: data.len(),
                limit: self.max,
            });
        }
        let sent = self.word(self.outbox + layout::SEQ)?.load(SeqCst);
        // The box is free once the peer has acknowledged the last unit.
        self.wait_for(
            self.outbox + layout::ACK,
            self.outbox + layout::ACK_WAITERS,
            |ack| ack == sent,
        )?;
        self.map.write_at(self.outbox + layout::DATA, data)?;
        self.word(self.outbox + layout::LEN)?
            .store(data.len() as u32, SeqCst);
        self.word(self.outbox + layout::SEQ)?
            .store(sent.wrapping_add(1), SeqCst);
        self.wake(self.outbox + layout::SEQ, self.outbox + layout::SEQ_WAITERS)
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<()> {
        let received = self.word(self.inbox + layout::ACK)?.load(SeqCst);
        let seq = self.wait_for(
            self.inbox + layout::SEQ,
            self.inbox + layout::SEQ_WAITERS,
            |seq| seq != received,
        )?;
        if seq != received.wrapping_add(1) {
            return Err(self.corrupt(format!(
                "unit {seq} arrived after unit {received}: the box was overwritten"
            )));
        }
        let len = self.word(self.inbox + layout::LEN)?.load(SeqCst) as usize;
        if len != buf.len() || len > self.max {
            return Err(self.corrupt(format!(
                "expected a unit of {} bytes, the box says {len}",
                buf.len()
            )));
        }
        self.map.read_at(self.inbox + layout::DATA, buf)?;
        self.word(self.inbox + layout::ACK)?.store(seq, SeqCst);
        self.wake(self.inbox + layout::ACK, self.inbox + layout::ACK_WAITERS)
    }

    fn set_nonblocking(&mut self, nonblocking: bool) -> Result<()> {
        self.busy = nonblocking;
        Ok(())
    }

    fn raw(&self) -> RawIo<'_> {
        RawIo::Mailbox {
            mapping: self.map.as_ref(),
            outbox: self.outbox,
            inbox: self.inbox,
            max: self.max,
            peer_gone: self.watch.as_ref().map_or(&NOT_WATCHED, |w| &*w.dead),
        }
    }
}

/// How long the parent waits for the peer to attach.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Joins two processes through a System V segment made under a fresh key
/// (and reached by the peer through its identifier). The parent
/// removes it (`IPC_RMID`) as soon as the peer has attached: the memory
/// stays until both detach, and nothing is left if either dies after.
pub(crate) struct SysvConnector;

struct SysvPending {
    segment: crate::shm::sysv::Segment,
    link: MailboxLink,
}

impl super::Connector for SysvConnector {
    fn prepare(
        &self,
        _scratch: &std::path::Path,
        options: &super::LinkOptions,
        announce: &mut dyn FnMut(&super::CreatedObject),
    ) -> Result<(Box<dyn super::PendingLink>, super::Ticket)> {
        use crate::shm::sysv::SegmentOptions;
        let max = options.max_message_size;
        // A fresh key, told before the segment exists (see `CreatedObject`).
        let key = super::fresh_sysv_key();
        announce(&super::CreatedObject::SysvShm(key));
        let segment = SegmentOptions::new()
            .size(layout::total(max))
            .mode(crate::Mode::OWNER_RW)
            .exclusive(true)
            .create(crate::name::SysvKey::Key(key))?;
        let map = segment.attach(crate::shm::Access::ReadWrite)?;
        let link = MailboxLink::new(map, Side::Parent, max)?;
        let ticket = super::Ticket::address(segment.id().to_string());
        Ok((Box::new(SysvPending { segment, link }), ticket))
    }

    fn join(&self, ticket: super::Ticket, options: &super::LinkOptions) -> Result<Box<dyn Link>> {
        let id: i32 = ticket.address.parse().map_err(|_| Error::InvalidEndpoint {
            input: ticket.address.clone(),
            reason: "expected a segment identifier".to_owned(),
        })?;
        let segment = crate::shm::sysv::Segment::open_id(id)?;
        let map = segment.attach(crate::shm::Access::ReadWrite)?;
        Ok(Box::new(MailboxLink::new(
            map,
            Side::Peer,
            options.max_message_size,
        )?))
    }
}

impl super::PendingLink for SysvPending {
    fn establish(self: Box<Self>) -> Result<Box<dyn Link>> {
        let SysvPending { segment, mut link } = *self;
        link.wait_joined(JOIN_TIMEOUT)?;
        segment.remove()?;
        Ok(Box::new(link))
    }
}

/// Joins two processes through a POSIX shared-memory object named after
/// this process. The parent unlinks the name as soon as the peer has
/// mapped it: the memory stays while both hold it, and nothing is left if
/// either dies after.
pub(crate) struct PosixConnector;

struct PosixPending {
    segment: crate::shm::posix::Segment,
    link: MailboxLink,
}

/// Maps `segment` read-write.
#[allow(unsafe_code)]
fn map_posix(segment: &crate::shm::posix::Segment) -> Result<Mapping> {
    // SAFETY: `Segment::map` asks that nobody shrink the object while the
    // mapping lives. The object is the bench's own: created exclusively
    // under a fresh name, mode 600, at its full size before either side
    // maps it; the only two processes that ever open it are the two ends
    // of this link, and neither resizes it; the name is unlinked once both
    // hold it, so no other process can open it after.
    unsafe { segment.map(crate::shm::Access::ReadWrite) }
}

impl super::Connector for PosixConnector {
    fn prepare(
        &self,
        _scratch: &std::path::Path,
        options: &super::LinkOptions,
        announce: &mut dyn FnMut(&super::CreatedObject),
    ) -> Result<(Box<dyn super::PendingLink>, super::Ticket)> {
        use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let max = options.max_message_size;
        let name = crate::name::PosixName::new(&format!(
            "/unipc-bench-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Relaxed)
        ))?;
        announce(&super::CreatedObject::PosixShm(name.clone()));
        let segment = crate::shm::posix::SegmentOptions::new()
            .size(layout::total(max) as u64)
            .mode(crate::Mode::OWNER_RW)
            .exclusive(true)
            .create(&name)?;
        let link = MailboxLink::new(map_posix(&segment)?, Side::Parent, max)?;
        let ticket = super::Ticket::address(name.as_str());
        Ok((Box::new(PosixPending { segment, link }), ticket))
    }

    fn join(&self, ticket: super::Ticket, options: &super::LinkOptions) -> Result<Box<dyn Link>> {
        let name = crate::name::PosixName::new(&ticket.address)?;
        let segment = crate::shm::posix::Segment::open(&name)?;
        Ok(Box::new(MailboxLink::new(
            map_posix(&segment)?,
            Side::Peer,
            options.max_message_size,
        )?))
    }
}

impl super::PendingLink for PosixPending {
    fn establish(self: Box<Self>) -> Result<Box<dyn Link>> {
        let PosixPending {
            mut segment,
            mut link,
        } = *self;
        link.wait_joined(JOIN_TIMEOUT)?;
        segment.unlink()?;
        Ok(Box::new(link))
    }
}
