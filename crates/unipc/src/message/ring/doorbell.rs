//! The doorbell of a ring or pubsub side: the side's own futex sleep,
//! made from a second mapping of the same object so that a thread that
//! does not hold the side (the async bridge's helper) can sleep until the
//! other side moves.
//!
//! The futex words are shared futexes: the kernel keys them by the
//! object's page, not by the address, so the other side's `FUTEX_WAKE`
//! through its own mapping wakes a sleeper on this one.

use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::peer;
use super::protocol;
use super::shared::KernelFutex;
use super::wait::PEER_CHECK;
use crate::error::ObjectName;
use crate::message::Doorbell;
use crate::shm::Mapping;
use crate::{Error, Result};

/// What says that the side's next call may succeed, read from the shared
/// words alone (the side's own cursor is in them too).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ready {
    /// A reader: the word at `tail` differs from its own cursor at `head`.
    Differ { tail: usize, head: usize },
    /// A writer: fewer than `capacity` messages between `head` and `tail`.
    Room {
        tail: usize,
        head: usize,
        capacity: u64,
    },
    /// Not cheaply known (the pubsub publisher, whose room depends on
    /// every subscriber): the sleep ends on a wake-up or its limit.
    Unknown,
}

/// Where the side sleeps and whom it watches.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bell {
    /// The side's sleeping flag.
    pub(crate) flag_at: usize,
    /// The word the side sleeps on.
    pub(crate) futex_at: usize,
    pub(crate) ready: Ready,
    /// The other side's identity word and role name, when its death ends
    /// this side's waits.
    pub(crate) peer: Option<(usize, &'static str)>,
}

/// A [`Doorbell`] over a second mapping of a ring or pubsub.
pub(crate) struct FutexDoorbell {
    map: Mapping,
    object: ObjectName,
    bell: Bell,
    next_check: Mutex<Instant>,
}

impl FutexDoorbell {
    /// # Errors
    /// [`Error::BadHeader`] when `map` (mapped just now) no longer holds
    /// the words: the object was truncated since the side validated it.
    pub(crate) fn new(map: Mapping, object: ObjectName, bell: Bell) -> Result<FutexDoorbell> {
        let words = [bell.flag_at, bell.futex_at];
        let longs = match bell.ready {
            Ready::Differ { tail, head } | Ready::Room { tail, head, .. } => vec![tail, head],
            Ready::Unknown => vec![],
        };
        let peer = bell.peer.map(|(at, _)| at);
        let end = words
            .iter()
            .map(|at| at + 4)
            .chain(longs.iter().chain(peer.iter()).map(|at| at + 8))
            .max()
            .unwrap_or(0);
        if map.len() < end {
            return Err(Error::BadHeader {
                object,
                expected: "a ring or pubsub of the size it was opened with",
                reason: format!("it shrank to {} bytes since it was opened", map.len()),
            });
        }
        Ok(FutexDoorbell {
            map,
            object,
            bell,
            next_check: Mutex::new(Instant::now() + PEER_CHECK),
        })
    }

    fn ready(&self) -> bool {
        let region = self.map.region();
        match self.bell.ready {
            Ready::Differ { tail, head } => {
                region.atomic_u64(tail).load(Ordering::Acquire)
                    != region.atomic_u64(head).load(Ordering::Acquire)
            }
            Ready::Room {
                tail,
                head,
                capacity,
            } => {
                let tail = region.atomic_u64(tail).load(Ordering::Acquire);
                tail.wrapping_sub(region.atomic_u64(head).load(Ordering::Acquire)) < capacity
            }
            Ready::Unknown => false,
        }
    }

    /// The other side died: cleared and reported once, at most every
    /// [`PEER_CHECK`] (a look reads `/proc`).
    fn check_peer(&self) -> Result<()> {
        let Some((at, role)) = self.bell.peer else {
            return Ok(());
        };
        {
            let mut next = self.next_check.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            if now < *next {
                return Ok(());
            }
            *next = now + PEER_CHECK;
        }
        peer::check_alive(self.map.region().atomic_u64(at), &self.object, role)
    }
}

impl Doorbell for FutexDoorbell {
    fn wait(&self, limit: Duration) -> Result<()> {
        self.check_peer()?;
        let region = self.map.region();
        protocol::park_on(
            &KernelFutex,
            region.atomic_u32(self.bell.futex_at),
            region.atomic_u32(self.bell.flag_at),
            &|| self.ready(),
            limit.max(Duration::from_micros(1)),
        )
        .map_err(|e| Error::os(self.object.clone(), "futex wait", e))
    }

    fn interrupt(&self) {
        let futex = self.map.region().atomic_u32(self.bell.futex_at);
        // A bump makes a wait that has loaded the word but not yet slept
        // return at once; the wake ends one that sleeps. The side's own
        // waits tolerate both (they re-check and sleep again).
        futex.fetch_add(1, Ordering::Release);
        protocol::Sleeper::wake(&KernelFutex, futex);
    }
}
