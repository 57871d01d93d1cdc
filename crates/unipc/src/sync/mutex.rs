//! Robust process-shared mutexes: a `pthread_mutex_t` in shared memory
//! that survives the death of its holder.
//!
//! A synchronization primitive of the [`sync`](crate::sync) taxonomy. A
//! [`RobustMutex`] lives at an offset of a [`Mapping`] that several
//! processes map; one of them [`init`](RobustMutex::init)ializes it, the
//! others [`attach`](RobustMutex::attach). It gives exclusion, not data:
//! what it protects is whatever the processes agree it protects (other
//! bytes of the mapping, read and written through the mapping's checked
//! copies or atomics while the guard is held).
//!
//! # After a crash
//!
//! When a holder dies (a thread exits, a process is killed with
//! `SIGKILL`), the kernel marks the mutex "owner died" and wakes one
//! waiter. The next [`lock`](RobustMutex::lock) succeeds but returns
//! [`Locked::OwnerDied`] with a [`RecoveryGuard`]: the data may be
//! half-updated. The new holder repairs it and calls
//! [`RecoveryGuard::mark_consistent`], which turns the guard into an
//! ordinary [`MutexGuard`]. If it drops the recovery guard instead (or dies
//! too before marking), the mutex is unlocked for good as *not
//! recoverable*: every later lock in every process fails with
//! [`Error::NotRecoverable`], because the data was never repaired. (Boost
//! unlocks and throws at the owner-died result, losing the chance to
//! repair; this API hands the lock over instead.)
//!
//! # Layout and initialization
//!
//! The slot is [`RobustMutex::SIZE`] bytes, aligned to
//! [`RobustMutex::ALIGN`]: a header of two 32-bit words (a magic number and
//! a state) and then the `pthread_mutex_t`. Initialization claims the slot
//! by moving the state from 0 (fresh, zeroed memory, as a new System V or
//! POSIX segment is) to "initializing" with a compare-exchange, so only one
//! process initializes; after `pthread_mutex_init` it writes the magic and
//! publishes "ready" with release ordering. Attaching checks both with
//! acquire ordering, so an attach to bytes nobody initialized (or still
//! being initialized, or by a process that died meanwhile) is a typed
//! [`Error::WrongType`], never a call into glibc on garbage.
//!
//! # Why `init` and `attach` are `unsafe`
//!
//! glibc keeps each robust mutex a thread holds on a list linked through
//! pointers stored *inside the mutex*, in the shared memory, and follows
//! them when it locks and unlocks. A peer that writes the mutex's bytes
//! other than through pthread calls (a bug, or malice) can so make this
//! process read and write wherever those pointers say: no check on our side
//! can rule it out, so the caller vouches for every process that can write
//! the mapping. The same list is why a guard must not be leaked
//! ([`std::mem::forget`]) unless the mapping then stays mapped for the rest
//! of the thread's life: the thread's list would point into unmapped
//! memory, which glibc follows on the next robust lock or unlock.
//!
//! # Examples
//!
//! ```
//! use unipc::name::SysvKey;
//! use unipc::shm::{sysv::SegmentOptions, Access};
//! use unipc::sync::mutex::{Locked, RobustMutex};
//! use unipc::sync::Wait;
//!
//! let segment = SegmentOptions::new().size(4096).create(SysvKey::Private)?;
//! let map = segment.attach(Access::ReadWrite)?;
//! // SAFETY: only processes of this program, which touch the slot through
//! // `RobustMutex` alone, map the segment; nothing leaks a guard.
//! let mutex = unsafe { RobustMutex::init(&map, 0) }?;
//! let guard = match mutex.lock(Wait::Forever)? {
//!     Locked::Acquired(guard) => guard,
//!     Locked::OwnerDied(recovery) => {
//!         // Repair the data the mutex protects here, then:
//!         recovery.mark_consistent()?
//!     }
//! };
//! // Held: another lock that does not wait is refused.
//! assert!(matches!(mutex.lock(Wait::Never), Err(unipc::Error::Os { .. })));
//! drop(guard);
//! assert!(matches!(mutex.lock(Wait::Never)?, Locked::Acquired(_)));
//! # Ok::<(), unipc::Error>(())
//! ```
//!
//! # References
//!
//! pthread_mutexattr_setrobust(3), pthread_mutex_consistent(3),
//! get_robust_list(2); glibc's `nptl/tst-robust8.c`, the model of the kill
//! test in `tests/it/mutex.rs`.

use std::fmt;
use std::marker::PhantomData;
use std::mem::{align_of, offset_of, size_of};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::error::ObjectName;
use crate::facility::{Direction, Facility, Naming, Persistence, Properties, Reach, Shape, Tags};
use crate::shm::Mapping;
use crate::sync::Wait;
use crate::sys::pthread::{Acquired, RawMutex};
use crate::{Error, Result};

/// The layout of a mutex slot in shared memory.
#[repr(C)]
struct MutexSlot {
    magic: u32,
    state: u32,
    mutex: libc::pthread_mutex_t,
}

/// "umtx" in the header: the slot holds a unipc robust mutex.
const MUTEX_MAGIC: u32 = 0x756d_7478;

/// A slot's header state: fresh (zeroed) memory.
const FRESH: u32 = 0;
/// A slot's header state: claimed by a process initializing it.
const INITIALIZING: u32 = 1;
/// A slot's header state: initialized and published.
const READY: u32 = 2;

/// The two header words of a slot (mutex or condition variable), which
/// make initializing exclusive and attaching checked.
pub(crate) struct Header<'m> {
    magic: &'m AtomicU32,
    state: &'m AtomicU32,
    expected_magic: u32,
    what: &'static str,
}

impl<'m> Header<'m> {
    /// The header of the slot of type `S` at `offset`: checks the whole
    /// slot inside the mapping, aligned and writable, first.
    pub(crate) fn of<S>(
        map: &'m Mapping,
        what: &'static str,
        offset: usize,
        expected_magic: u32,
    ) -> Result<Header<'m>> {
        map.shared_slot::<S>(what, offset)?;
        Ok(Header {
            magic: map.atomic_u32(offset)?,
            state: map.atomic_u32(offset + 4)?,
            expected_magic,
            what,
        })
    }

    fn found(&self) -> &'static str {
        let magic = self.magic.load(Ordering::Relaxed);
        match self.state.load(Ordering::Acquire) {
            FRESH if magic == 0 => "fresh memory no process initialized",
            INITIALIZING => "a slot a process began to initialize (it may have died doing so)",
            READY if magic == self.expected_magic => "already initialized",
            _ => "bytes that are not a unipc synchronization slot",
        }
    }

    fn refusal(&self, object: &ObjectName, expected: &'static str) -> Error {
        Error::WrongType {
            object: object.clone(),
            expected,
            found: self.found(),
        }
    }

    /// Claims a fresh slot for initializing (only one process wins).
    pub(crate) fn claim(&self, object: &ObjectName) -> Result<()> {
        let fresh = self.magic.load(Ordering::Relaxed) == 0
            && self
                .state
                .compare_exchange(FRESH, INITIALIZING, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        if fresh {
            Ok(())
        } else {
            Err(self.refusal(object, "fresh, zeroed memory to initialize in"))
        }
    }

    /// Publishes the initialized object: the magic, then "ready" with
    /// release ordering, so an attach that sees "ready" sees the object.
    pub(crate) fn publish(&self) {
        self.magic.store(self.expected_magic, Ordering::Relaxed);
        self.state.store(READY, Ordering::Release);
    }

    /// Gives a claimed slot back when initializing failed.
    pub(crate) fn release(&self) {
        self.state.store(FRESH, Ordering::Release);
    }

    /// Checks that the slot was initialized and published.
    pub(crate) fn check_ready(&self, object: &ObjectName) -> Result<()> {
        let ready = self.state.load(Ordering::Acquire) == READY
            && self.magic.load(Ordering::Relaxed) == self.expected_magic;
        if ready {
            Ok(())
        } else {
            Err(self.refusal(object, self.what))
        }
    }
}

/// A robust, process-shared mutex in shared memory.
///
/// See the [module documentation](self) for what happens when a holder
/// dies, the layout, and why `init` and `attach` are `unsafe`.
///
/// It is error-checking: a thread that locks it again while holding it
/// gets [`Error::Os`] with `EDEADLK` instead of sleeping forever.
pub struct RobustMutex<'m> {
    raw: RawMutex,
    object: ObjectName,
    map: PhantomData<&'m Mapping>,
}

impl fmt::Debug for RobustMutex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RobustMutex")
            .field("object", &self.object)
            .finish()
    }
}

impl<'m> RobustMutex<'m> {
    /// The bytes a mutex slot takes.
    pub const SIZE: usize = size_of::<MutexSlot>();
    /// The alignment a mutex slot's offset needs.
    pub const ALIGN: usize = align_of::<MutexSlot>();

    fn place(
        map: &'m Mapping,
        offset: usize,
    ) -> Result<(Header<'m>, *mut libc::pthread_mutex_t, ObjectName)> {
        let object: ObjectName = format!("{} robust-mutex@{offset}", map.object()).into();
        let header = Header::of::<MutexSlot>(map, "robust mutex", offset, MUTEX_MAGIC)?;
        let ptr = map.shared_slot::<libc::pthread_mutex_t>(
            "robust mutex",
            offset + offset_of!(MutexSlot, mutex),
        )?;
        Ok((header, ptr, object))
    }

    /// `pthread_mutex_init` — initializes a robust, process-shared,
    /// error-checking mutex in the [`SIZE`](Self::SIZE) bytes at `offset`
    /// of `map`, which must be fresh (all zero, as a new segment is).
    ///
    /// Errors name the mapping's object followed by `robust-mutex@OFFSET`.
    ///
    /// # Safety
    ///
    /// Every process that can write `map`'s memory touches the slot's
    /// bytes only through [`RobustMutex`] (glibc follows pointers stored in
    /// them), and no guard of this mutex is leaked with `mem::forget` unless
    /// the mapping then stays mapped for the rest of that thread's life. See
    /// the [module documentation](self).
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`], [`Error::Misaligned`] (the offset must be a
    /// multiple of [`ALIGN`](Self::ALIGN)) or [`Error::Unsupported`]
    /// (read-only mapping) for a bad placement; [`Error::WrongType`] when
    /// the slot is not fresh (already initialized, being initialized, or
    /// other bytes); [`Error::Os`] when `pthread_mutex_init` fails.
    #[allow(unsafe_code)]
    #[doc(alias = "pthread_mutex_init")]
    pub unsafe fn init(map: &'m Mapping, offset: usize) -> Result<RobustMutex<'m>> {
        let (header, ptr, object) = Self::place(map, offset)?;
        header.claim(&object)?;
        // SAFETY: `RawMutex::new` asks that the pointer be valid, aligned
        // and writable while the handle is used: `shared_slot` (in `place`)
        // checked it inside the writable mapping and aligned, and the handle
        // lives in a `RobustMutex<'m>`, which cannot outlive the
        // `&'m Mapping`. That no process writes the bytes except through
        // pthread calls is this function's contract; nobody uses the bytes
        // as a mutex during `init`, because this process won the header's
        // claim (processes keeping the contract use the slot only after it).
        let raw = unsafe { RawMutex::new(ptr) };
        if let Err(err) = raw.init() {
            header.release();
            return Err(Error::os(object, "pthread_mutex_init", err));
        }
        header.publish();
        Ok(RobustMutex {
            raw,
            object,
            map: PhantomData,
        })
    }

    /// Attaches to the mutex another process (or this one)
    /// [`init`](Self::init)ialized at `offset` of `map`.
    ///
    /// # Safety
    ///
    /// As for [`init`](Self::init).
    ///
    /// # Errors
    ///
    /// As for [`init`](Self::init) for a bad placement;
    /// [`Error::WrongType`] when the slot holds no initialized mutex (fresh
    /// memory, an initialization under way or abandoned, other bytes).
    #[allow(unsafe_code)]
    pub unsafe fn attach(map: &'m Mapping, offset: usize) -> Result<RobustMutex<'m>> {
        let (header, ptr, object) = Self::place(map, offset)?;
        header.check_ready(&object)?;
        // SAFETY: `RawMutex::new` asks that the pointer be valid, aligned
        // and writable while the handle is used: `shared_slot` (in `place`)
        // checked it inside the writable mapping and aligned, and the handle
        // lives in a `RobustMutex<'m>`, which cannot outlive the
        // `&'m Mapping`. That no process writes the bytes except through
        // pthread calls is this function's contract, and the header says
        // an initializer published the mutex.
        let raw = unsafe { RawMutex::new(ptr) };
        Ok(RobustMutex {
            raw,
            object,
            map: PhantomData,
        })
    }

    /// The name errors carry: the mapping's object and
    /// `robust-mutex@OFFSET`.
    pub fn object(&self) -> &ObjectName {
        &self.object
    }

    /// `pthread_mutex_lock` — locks it, waiting as [`Wait`] says:
    /// [`Wait::Forever`] as long as it takes, [`Wait::Never`] not at all
    /// (one try: a clock lock whose deadline has passed), [`Wait::For`]`(d)` at most `d`
    /// (`pthread_mutex_clocklock` on `CLOCK_MONOTONIC`, so a change of the
    /// wall clock does not move the deadline).
    ///
    /// [`Locked::OwnerDied`] when the last holder died holding it: see the
    /// [module documentation](self).
    ///
    /// # Errors
    ///
    /// [`Error::WouldBlock`] ([`Wait::Never`]) or [`Error::TimedOut`]
    /// ([`Wait::For`]) when another thread held it throughout;
    /// [`Error::NotRecoverable`] when a recovery was abandoned;
    /// [`Error::Os`] with `EDEADLK` when this thread holds it already.
    #[doc(alias = "pthread_mutex_lock")]
    #[doc(alias = "pthread_mutex_trylock")]
    #[doc(alias = "pthread_mutex_clocklock")]
    pub fn lock(&self, wait: Wait) -> Result<Locked<'_>> {
        let outcome = match wait {
            Wait::Forever => self.raw.lock(),
            // Not `pthread_mutex_trylock`: glibc's (2.36) leaves a
            // not-recoverable robust mutex locked by the caller when it
            // returns ENOTRECOVERABLE (its unlock there tests the value
            // the compare-exchange returned, 0, against the caller's tid),
            // so every later lock in other processes would hang. A clock
            // lock whose deadline has passed tries once, and unlocks.
            Wait::Never => self.raw.lock_within(Duration::ZERO),
            Wait::For(timeout) => self.raw.lock_within(timeout),
        };
        match outcome {
            Ok(Acquired::Clean) => Ok(Locked::Acquired(MutexGuard::new(self))),
            Ok(Acquired::OwnerDied) => Ok(Locked::OwnerDied(RecoveryGuard::new(self))),
            Err(err) => Err(self.lock_error(err, wait)),
        }
    }

    pub(crate) fn raw(&self) -> &RawMutex {
        &self.raw
    }

    pub(crate) fn lock_error(&self, err: std::io::Error, wait: Wait) -> Error {
        match (err.raw_os_error(), wait) {
            (Some(libc::EBUSY), _) | (Some(libc::ETIMEDOUT), Wait::Never) => Error::WouldBlock {
                object: self.object.clone(),
                op: "lock",
                holder: None,
            },
            (Some(libc::ETIMEDOUT), Wait::For(timeout)) => Error::TimedOut {
                object: self.object.clone(),
                timeout,
            },
            (Some(libc::ENOTRECOVERABLE), _) => Error::NotRecoverable {
                object: self.object.clone(),
            },
            (Some(libc::EDEADLK), _) => {
                Error::os(&self.object, "lock", err).with_hint("this thread holds it already")
            }
            _ => Error::os(&self.object, "lock", err),
        }
    }
}

/// What a lock returned: the lock, and whether its last holder died with
/// it.
#[must_use = "dropping it unlocks at once (and an unrepaired owner-died mutex becomes not recoverable)"]
#[derive(Debug)]
pub enum Locked<'g> {
    /// Locked; the last holder unlocked it normally.
    Acquired(MutexGuard<'g>),
    /// Locked, but the last holder died holding it: repair the data and
    /// [`mark_consistent`](RecoveryGuard::mark_consistent).
    OwnerDied(RecoveryGuard<'g>),
}

impl<'g> Locked<'g> {
    /// Whether the last holder died with the lock.
    pub fn owner_died(&self) -> bool {
        matches!(self, Locked::OwnerDied(_))
    }
}

/// The lock of a [`RobustMutex`], held until dropped.
///
/// Not `Send`: a pthread mutex is unlocked by the thread that locked it.
#[must_use = "dropping the guard unlocks at once"]
pub struct MutexGuard<'g> {
    mutex: &'g RobustMutex<'g>,
    thread_bound: PhantomData<*const ()>,
}

impl fmt::Debug for MutexGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MutexGuard")
            .field("object", &self.mutex.object)
            .finish()
    }
}

impl<'g> MutexGuard<'g> {
    pub(crate) fn new(mutex: &'g RobustMutex<'g>) -> MutexGuard<'g> {
        MutexGuard {
            mutex,
            thread_bound: PhantomData,
        }
    }

    /// The mutex held.
    pub fn mutex(&self) -> &'g RobustMutex<'g> {
        self.mutex
    }

    /// Gives the lock to the caller without unlocking (the condition
    /// variable's wait, which unlocks inside glibc).
    pub(crate) fn into_mutex(self) -> &'g RobustMutex<'g> {
        let mutex = self.mutex;
        std::mem::forget(self);
        mutex
    }
}

impl Drop for MutexGuard<'_> {
    /// `pthread_mutex_unlock`.
    fn drop(&mut self) {
        // Unlocking a mutex this thread holds cannot fail.
        let _ = self.mutex.raw.unlock();
    }
}

/// The lock of a [`RobustMutex`] whose last holder died holding it: the
/// data it protects may be half-updated.
///
/// Repair the data, then [`mark_consistent`](Self::mark_consistent).
/// Dropped without that, it unlocks and leaves the mutex not recoverable:
/// every later lock fails with [`Error::NotRecoverable`].
///
/// Not `Send`, as [`MutexGuard`].
#[must_use = "dropping it without mark_consistent makes the mutex not recoverable"]
pub struct RecoveryGuard<'g> {
    mutex: &'g RobustMutex<'g>,
    thread_bound: PhantomData<*const ()>,
}

impl fmt::Debug for RecoveryGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecoveryGuard")
            .field("object", &self.mutex.object)
            .finish()
    }
}

impl<'g> RecoveryGuard<'g> {
    pub(crate) fn new(mutex: &'g RobustMutex<'g>) -> RecoveryGuard<'g> {
        RecoveryGuard {
            mutex,
            thread_bound: PhantomData,
        }
    }

    /// The mutex held.
    pub fn mutex(&self) -> &'g RobustMutex<'g> {
        self.mutex
    }

    /// `pthread_mutex_consistent` — declares the data repaired: the mutex
    /// is an ordinary one again, still locked, by the guard returned.
    ///
    /// # Errors
    ///
    /// [`Error::Os`] when glibc refuses (only when another process broke
    /// the mutex's bytes); the lock is then released, not recoverable.
    #[doc(alias = "pthread_mutex_consistent")]
    pub fn mark_consistent(self) -> Result<MutexGuard<'g>> {
        let mutex = self.mutex;
        match mutex.raw.consistent() {
            Ok(()) => {
                std::mem::forget(self);
                Ok(MutexGuard::new(mutex))
            }
            Err(err) => Err(Error::os(&mutex.object, "pthread_mutex_consistent", err)),
        }
    }
}

impl Drop for RecoveryGuard<'_> {
    /// `pthread_mutex_unlock` without marking consistent: not recoverable.
    fn drop(&mut self) {
        let _ = self.mutex.raw.unlock();
    }
}

/// The registry entry of the robust mutex.
pub static FACILITY: Facility = Facility {
    name: "robust-mutex",
    scheme: None,
    summary: "robust process-shared pthread mutex (and condition variable) in shared memory",
    addressing: "no name of its own: a slot at an offset of shared memory both processes map",
    properties: Properties {
        shape: Shape::Synchronization,
        direction: Direction::TwoWay,
        tags: Tags::None,
        destructive_read: false,
        peek: false,
        naming: Naming::InSharedMemory,
        reach: Reach::Host,
        persistence: Persistence::Kernel,
        permissions: "those of the shared memory holding it",
        reliable: true,
        after_crash:
            "robust: the next locker gets owner-died with the lock and must repair and mark it consistent, or every later lock fails as not recoverable",
    },
    limits: Vec::new,
    max_message: || None,
    #[cfg(feature = "bench")]
    connector: None,
};
