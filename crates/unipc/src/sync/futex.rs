//! Futexes: wait and wake on a 32-bit word of shared memory, the kernel's
//! lowest-level blocking primitive and the one a shared-memory channel
//! builds on.
//!
//! A [`Futex`] is a word of a [`Mapping`] (4-aligned) that any process
//! mapping the same memory can wait on and wake. It keeps no state of its
//! own: the value of the word is the caller's protocol (a sequence number,
//! a lock state), and the kernel only offers "sleep while the word still
//! holds `expected`" ([`Futex::wait`]) and "wake up to `n` sleepers"
//! ([`Futex::wake`]). The check and the sleep are one atomic step in the
//! kernel, so a wake that comes between the caller's load and its wait is
//! never lost: the wait finds the word changed and returns at once.
//!
//! The calls are made without `FUTEX_PRIVATE_FLAG` (see `sys/futex.rs`), so
//! waiters and wakers in different processes meet.
//!
//! # After a crash
//!
//! Nothing. A futex is only a word: a waker that dies leaves its waiters
//! asleep (until their timeouts), and a process that dies while its lock
//! protocol says it "holds" the word is not noticed by anyone. Use a robust
//! mutex (`sync::mutex`) where a dead holder must be detected, or
//! give every wait a timeout and check for the peer.
//!
//! # Examples
//!
//! ```
//! use std::sync::atomic::Ordering;
//! use std::time::Duration;
//! use unipc::name::SysvKey;
//! use unipc::shm::{sysv::SegmentOptions, Access};
//! use unipc::sync::futex::Futex;
//! use unipc::sync::Wait;
//!
//! let segment = SegmentOptions::new().size(4096).create(SysvKey::Private)?;
//! let map = segment.attach(Access::ReadWrite)?;
//! let futex = Futex::new(&map, 0)?;
//! // Nobody changes the word: a timed wait times out.
//! let err = futex.wait(0, Wait::For(Duration::from_millis(10))).unwrap_err();
//! assert!(matches!(err, unipc::Error::TimedOut { .. }));
//! // The word no longer holds the value expected: no sleep at all.
//! futex.word().store(1, Ordering::Release);
//! futex.wait(0, Wait::Forever)?;
//! assert_eq!(futex.wake(1)?, 0); // nobody was waiting
//! # Ok::<(), unipc::Error>(())
//! ```
//!
//! # References
//!
//! futex(2), futex(7); Ulrich Drepper, "Futexes Are Tricky" (2011).

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::deadline::Deadline;
use crate::error::ObjectName;
use crate::shm::Mapping;
use crate::sync::Wait;
use crate::sys::futex::{self as sys, Waited};
use crate::{Error, Result};

/// A 32-bit futex word in shared memory, borrowed from its [`Mapping`].
///
/// See the [module documentation](self) for the protocol and an example.
pub struct Futex<'m> {
    word: &'m AtomicU32,
    offset: usize,
    /// The mapping's name; this word's own (`NAME futex@OFFSET`) is made
    /// on first use, so a `Futex` made per wait costs no allocation.
    mapping: &'m ObjectName,
    object: std::sync::OnceLock<ObjectName>,
}

impl fmt::Debug for Futex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Futex")
            .field("object", self.object())
            .field("offset", &self.offset)
            .field("value", &self.word.load(Ordering::Relaxed))
            .finish()
    }
}

impl<'m> Futex<'m> {
    /// The futex word at `offset` of `map`.
    ///
    /// Errors name the mapping's object followed by `futex@OFFSET`.
    ///
    /// # Errors
    ///
    /// As [`Mapping::atomic_u32`]: [`Error::OutOfBounds`] past the end,
    /// [`Error::Misaligned`] when `offset` is not a multiple of 4,
    /// [`Error::Unsupported`] on a read-only mapping (the kernel itself only
    /// reads the word, but the protocols around a futex store to it).
    pub fn new(map: &'m Mapping, offset: usize) -> Result<Futex<'m>> {
        let word = map.atomic_u32(offset)?;
        Ok(Futex {
            word,
            offset,
            mapping: map.object(),
            object: std::sync::OnceLock::new(),
        })
    }

    /// The word itself, for the caller's protocol (loads, stores,
    /// compare-exchanges).
    pub fn word(&self) -> &'m AtomicU32 {
        self.word
    }

    /// The offset of the word in its mapping.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The name errors carry: the mapping's object and `futex@OFFSET`.
    pub fn object(&self) -> &ObjectName {
        self.object
            .get_or_init(|| format!("{} futex@{}", self.mapping, self.offset).into())
    }

    /// `FUTEX_WAIT` — sleeps while the word holds `expected`, until a
    /// [`wake`](Self::wake) from this or another process.
    ///
    /// `Ok(())` means "look again", not "the condition holds": the call
    /// returns when woken, at once when the word did not hold `expected`
    /// (`EAGAIN`), and occasionally for no reason at all (the kernel allows
    /// spurious wake-ups, and a wake meant for an earlier value may arrive
    /// late). Callers loop: load the word, test their condition, wait on
    /// the value they loaded.
    ///
    /// - [`Wait::Forever`]: no time limit.
    /// - [`Wait::For`]`(d)`: at most `d` in all; a signal handler that
    ///   interrupts the sleep (`EINTR`) does not restart the full timeout,
    ///   the wait resumes with the time left.
    /// - [`Wait::Never`]: no sleep: `Ok(())` when the word no longer holds
    ///   `expected`, [`Error::WouldBlock`] when it does (so the answer to
    ///   "would this wait sleep?", without a system call).
    ///
    /// # Errors
    ///
    /// [`Error::TimedOut`] when `d` passed with the word still at
    /// `expected` and no wake; [`Error::WouldBlock`] as above;
    /// [`Error::Os`] for any other failure of `futex(2)`.
    #[doc(alias = "FUTEX_WAIT")]
    pub fn wait(&self, expected: u32, wait: Wait) -> Result<()> {
        if let Wait::Never = wait {
            if self.word.load(Ordering::Acquire) == expected {
                return Err(Error::WouldBlock {
                    object: self.object().clone(),
                    op: "futex wait",
                    holder: None,
                });
            }
            return Ok(());
        }
        let deadline = Deadline::of(wait);
        loop {
            let outcome = sys::wait(self.word, expected, deadline.remaining())
                .map_err(|err| Error::os(self.object(), "futex wait", err))?;
            match outcome {
                Waited::Woken | Waited::Changed => return Ok(()),
                Waited::Interrupted if !deadline.passed() => continue,
                Waited::Interrupted | Waited::TimedOut => {
                    return Err(Error::TimedOut {
                        object: self.object().clone(),
                        timeout: match wait {
                            Wait::For(timeout) => timeout,
                            _ => std::time::Duration::ZERO,
                        },
                    })
                }
            }
        }
    }

    /// `FUTEX_WAKE` — wakes at most `count` processes (or threads) sleeping
    /// in [`wait`](Self::wait) on this word, in any process; returns how
    /// many were woken. `u32::MAX` (or `i32::MAX`) wakes them all.
    ///
    /// # Errors
    ///
    /// [`Error::Os`] when `futex(2)` fails.
    #[doc(alias = "FUTEX_WAKE")]
    pub fn wake(&self, count: u32) -> Result<u32> {
        // The kernel reads the count as a signed int: above i32::MAX it
        // would be negative, which wakes nobody on older kernels.
        let count = count.min(i32::MAX as u32);
        let woken = sys::wake(self.word, count)
            .map_err(|err| Error::os(self.object(), "futex wake", err))?;
        Ok(u32::try_from(woken).unwrap_or(u32::MAX))
    }

    /// Wakes every waiter ([`wake`](Self::wake) with no limit).
    ///
    /// # Errors
    ///
    /// As [`wake`](Self::wake).
    pub fn wake_all(&self) -> Result<u32> {
        self.wake(u32::MAX)
    }
}

/// The registry entry of the futex.
pub static FACILITY: crate::facility::Facility = crate::facility::Facility {
    name: "futex",
    scheme: None,
    summary: "futex: wait while a 32-bit word of shared memory holds a value, wake from any process",
    addressing: "no name of its own: a 4-aligned word at an offset of shared memory both processes map",
    properties: crate::facility::Properties {
        shape: crate::facility::Shape::Synchronization,
        direction: crate::facility::Direction::TwoWay,
        tags: crate::facility::Tags::None,
        destructive_read: false,
        peek: true,
        naming: crate::facility::Naming::InSharedMemory,
        reach: crate::facility::Reach::Host,
        persistence: crate::facility::Persistence::Kernel,
        permissions: "those of the shared memory holding the word",
        reliable: true,
        after_crash:
            "nothing: a dead waker leaves waiters asleep, and a dead holder of a futex-based lock is not detected",
    },
    limits: || Vec::new(),
    max_message: || None,
    #[cfg(feature = "bench")]
    connector: None,
};
