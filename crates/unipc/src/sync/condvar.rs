//! Process-shared condition variables that work with a
//! [`RobustMutex`]: a `pthread_cond_t` in shared memory, timed on
//! `CLOCK_MONOTONIC`.
//!
//! A [`SharedCondvar`] lives at an offset of a [`Mapping`] beside the mutex
//! it is used with, and is initialized and attached the same way, with the
//! same header (magic and state words) and the same `unsafe` contract (see
//! [`crate::sync::mutex`]). All waiters of one condition variable must use
//! the same mutex.
//!
//! # A waiter whose peer died
//!
//! [`SharedCondvar::wait`] unlocks the mutex, sleeps, and locks it again
//! before returning, and that re-lock may find that the process holding
//! the mutex died: the wait then returns [`Woken::OwnerDied`] with the
//! [`RecoveryGuard`], whether a notification came or not, and the waiter
//! repairs the data, marks the mutex consistent and re-checks its
//! condition, as after any wake-up. A peer that dies *without* holding the
//! mutex and before notifying leaves the waiter asleep: nothing tells a
//! condition variable that a notifier is gone, so wait with
//! [`Wait::For`] when the notifier may die, and check the peer on
//! [`Woken::TimedOut`]. A waiter that dies inside a wait may take a
//! notification with it (glibc may have picked it as the one to wake):
//! notify with [`notify_all`](SharedCondvar::notify_all) when waiters may
//! die.
//!
//! The condition variable is never destroyed: glibc's
//! `pthread_cond_destroy` waits for every waiter to leave, and one that was
//! killed never does. Its memory is simply reused with the segment's.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use unipc::name::SysvKey;
//! use unipc::shm::{sysv::SegmentOptions, Access};
//! use unipc::sync::condvar::{SharedCondvar, Woken};
//! use unipc::sync::mutex::{Locked, RobustMutex};
//! use unipc::sync::Wait;
//!
//! let segment = SegmentOptions::new().size(4096).create(SysvKey::Private)?;
//! let map = segment.attach(Access::ReadWrite)?;
//! // SAFETY: only this program's processes map the segment, and they use
//! // the slots through these types alone; no guard is leaked.
//! let mutex = unsafe { RobustMutex::init(&map, 0) }?;
//! let ready = unsafe { SharedCondvar::init(&map, 64) }?;
//! let Locked::Acquired(guard) = mutex.lock(Wait::Forever)? else { unreachable!() };
//! // Nobody notifies: the timed wait comes back with the lock held.
//! match ready.wait(guard, Wait::For(Duration::from_millis(10)))? {
//!     Woken::TimedOut(guard) => drop(guard),
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), unipc::Error>(())
//! ```
//!
//! # References
//!
//! pthread_cond_wait(3p), pthread_condattr_setpshared(3p),
//! pthread_condattr_setclock(3p).

use std::fmt;
use std::marker::PhantomData;
use std::mem::{align_of, offset_of, size_of};
use std::time::Duration;

use crate::error::ObjectName;
use crate::shm::Mapping;
use crate::sync::mutex::{Header, MutexGuard, RecoveryGuard, RobustMutex};
use crate::sync::Wait;
use crate::sys::pthread::{Acquired, RawCond};
use crate::{Error, Result};

/// The layout of a condition variable slot in shared memory.
#[repr(C)]
struct CondSlot {
    magic: u32,
    state: u32,
    cond: libc::pthread_cond_t,
}

/// "ucnd" in the header: the slot holds a unipc condition variable.
const COND_MAGIC: u32 = 0x7563_6e64;

/// A process-shared condition variable in shared memory, used with a
/// [`RobustMutex`].
///
/// See the [module documentation](self) for what a waiter sees when a
/// peer dies.
pub struct SharedCondvar<'m> {
    raw: RawCond,
    object: ObjectName,
    map: PhantomData<&'m Mapping>,
}

impl fmt::Debug for SharedCondvar<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedCondvar")
            .field("object", &self.object)
            .finish()
    }
}

/// How a [`SharedCondvar::wait`] ended; each case holds the lock again.
#[must_use = "dropping it unlocks the mutex"]
#[derive(Debug)]
pub enum Woken<'g> {
    /// Notified, or woken spuriously: re-check the condition.
    Notified(MutexGuard<'g>),
    /// The time ran out ([`Wait::For`]).
    TimedOut(MutexGuard<'g>),
    /// The re-lock found that the mutex's holder died holding it (notified
    /// or not): repair, mark consistent, re-check the condition.
    OwnerDied(RecoveryGuard<'g>),
}

impl<'m> SharedCondvar<'m> {
    /// The bytes a condition variable slot takes.
    pub const SIZE: usize = size_of::<CondSlot>();
    /// The alignment a condition variable slot's offset needs.
    pub const ALIGN: usize = align_of::<CondSlot>();

    fn place(
        map: &'m Mapping,
        offset: usize,
    ) -> Result<(Header<'m>, *mut libc::pthread_cond_t, ObjectName)> {
        let object: ObjectName = format!("{} condvar@{offset}", map.object()).into();
        let header = Header::of::<CondSlot>(map, "condition variable", offset, COND_MAGIC)?;
        let ptr = map.shared_slot::<libc::pthread_cond_t>(
            "condition variable",
            offset + offset_of!(CondSlot, cond),
        )?;
        Ok((header, ptr, object))
    }

    /// `pthread_cond_init` — initializes a process-shared condition
    /// variable on `CLOCK_MONOTONIC` in the [`SIZE`](Self::SIZE) fresh
    /// (zeroed) bytes at `offset` of `map`.
    ///
    /// # Safety
    ///
    /// As for [`RobustMutex::init`]: every process that can write `map`
    /// touches the slot only through [`SharedCondvar`].
    ///
    /// # Errors
    ///
    /// As for [`RobustMutex::init`].
    #[allow(unsafe_code)]
    #[doc(alias = "pthread_cond_init")]
    pub unsafe fn init(map: &'m Mapping, offset: usize) -> Result<SharedCondvar<'m>> {
        let (header, ptr, object) = Self::place(map, offset)?;
        header.claim(&object)?;
        // SAFETY: `RawCond::new` asks that the pointer be valid, aligned and
        // writable while the handle is used: `shared_slot` checked it inside
        // the writable mapping and aligned, and the handle cannot outlive
        // the `&'m Mapping`. That no process writes the bytes except through
        // pthread calls is this function's contract; nobody uses them
        // during `init`, because this process won the header's claim.
        let raw = unsafe { RawCond::new(ptr) };
        if let Err(err) = raw.init() {
            header.release();
            return Err(Error::os(object, "pthread_cond_init", err));
        }
        header.publish();
        Ok(SharedCondvar {
            raw,
            object,
            map: PhantomData,
        })
    }

    /// Attaches to the condition variable another process (or this one)
    /// [`init`](Self::init)ialized at `offset` of `map`.
    ///
    /// # Safety
    ///
    /// As for [`init`](Self::init).
    ///
    /// # Errors
    ///
    /// As for [`RobustMutex::attach`].
    #[allow(unsafe_code)]
    pub unsafe fn attach(map: &'m Mapping, offset: usize) -> Result<SharedCondvar<'m>> {
        let (header, ptr, object) = Self::place(map, offset)?;
        header.check_ready(&object)?;
        // SAFETY: as in `init`; the header says an initializer published it.
        let raw = unsafe { RawCond::new(ptr) };
        Ok(SharedCondvar {
            raw,
            object,
            map: PhantomData,
        })
    }

    /// The name errors carry: the mapping's object and `condvar@OFFSET`.
    pub fn object(&self) -> &ObjectName {
        &self.object
    }

    /// `pthread_cond_wait` / `pthread_cond_timedwait` — unlocks the mutex
    /// `guard` holds, sleeps until notified (or the time runs out), and
    /// locks it again.
    ///
    /// [`Wait::Forever`] waits for a notification, [`Wait::For`]`(d)` at
    /// most `d` (on `CLOCK_MONOTONIC`), [`Wait::Never`] is a wait of no
    /// time (it returns [`Woken::TimedOut`] unless a notification is already
    /// on its way). Wake-ups may be spurious: loop on the condition.
    ///
    /// # Errors
    ///
    /// [`Error::NotRecoverable`] when the re-lock found the mutex not
    /// recoverable (the lock is not held then); [`Error::Os`] for other
    /// failures (the lock is released).
    #[doc(alias = "pthread_cond_wait")]
    #[doc(alias = "pthread_cond_timedwait")]
    pub fn wait<'g>(&self, guard: MutexGuard<'g>, wait: Wait) -> Result<Woken<'g>> {
        let timeout = match wait {
            Wait::Forever => None,
            Wait::Never => Some(Duration::ZERO),
            Wait::For(timeout) => Some(timeout),
        };
        // The lock passes to glibc, which unlocks and re-locks it.
        let mutex: &'g RobustMutex<'g> = guard.into_mutex();
        match self.raw.wait(mutex.raw(), timeout) {
            Ok(Acquired::Clean) => Ok(Woken::Notified(MutexGuard::new(mutex))),
            Ok(Acquired::OwnerDied) => Ok(Woken::OwnerDied(RecoveryGuard::new(mutex))),
            Err(err) => match err.raw_os_error() {
                Some(libc::ETIMEDOUT) => Ok(Woken::TimedOut(MutexGuard::new(mutex))),
                Some(libc::ENOTRECOVERABLE) => Err(Error::NotRecoverable {
                    object: mutex.object().clone(),
                }),
                _ => {
                    // glibc fails before it unlocks (a mutex not held by
                    // this thread, a broken object): release what may be
                    // held.
                    drop(MutexGuard::new(mutex));
                    Err(Error::os(&self.object, "pthread_cond_wait", err))
                }
            },
        }
    }

    /// `pthread_cond_signal` — wakes one waiter, in any process, if any
    /// waits.
    ///
    /// # Errors
    ///
    /// [`Error::Os`] when glibc refuses (a broken object).
    #[doc(alias = "pthread_cond_signal")]
    pub fn notify_one(&self) -> Result<()> {
        self.raw
            .signal()
            .map_err(|err| Error::os(&self.object, "pthread_cond_signal", err))
    }

    /// `pthread_cond_broadcast` — wakes every waiter, in every process.
    ///
    /// # Errors
    ///
    /// [`Error::Os`] when glibc refuses (a broken object).
    #[doc(alias = "pthread_cond_broadcast")]
    pub fn notify_all(&self) -> Result<()> {
        self.raw
            .broadcast()
            .map_err(|err| Error::os(&self.object, "pthread_cond_broadcast", err))
    }
}
