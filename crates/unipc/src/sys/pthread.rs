//! Process-shared robust mutexes and condition variables: glibc's
//! `pthread_mutex_*` and `pthread_cond_*` on objects placed in shared
//! memory.
//!
//! Neither rustix nor nix wraps these (they are libc functions over
//! memory, not system calls), so this file calls libc, and declares
//! `pthread_mutex_clocklock` itself: glibc has had it since 2.30 but the
//! `libc` crate does not list it. It takes a `CLOCK_MONOTONIC` deadline,
//! so a timed lock is not moved by a change of the wall clock.
//!
//! A mutex is made `PTHREAD_PROCESS_SHARED` (its futex is keyed by the
//! shared page, not by this address space), `PTHREAD_MUTEX_ROBUST` (glibc
//! links it on the locking thread's robust list, which the kernel walks
//! when the thread dies and marks each mutex still held `FUTEX_OWNER_DIED`,
//! waking one waiter, whose lock then returns `EOWNERDEAD`), and
//! `PTHREAD_MUTEX_ERRORCHECK` (a thread locking it twice gets `EDEADLK`
//! instead of sleeping forever). A condition variable is process-shared
//! and measures timeouts on `CLOCK_MONOTONIC` (`pthread_condattr_setclock`).
//!
//! # Safety
//!
//! The objects live in memory other processes map. [`RawMutex::new`] and
//! [`RawCond::new`] are `unsafe`: their callers promise that the pointer
//! stays valid (mapped, aligned, writable) while the handle is used and
//! that no process writes the object's bytes except through these calls.
//! That second promise is real: glibc keeps a robust mutex on a doubly
//! linked list through pointers stored *in the mutex*, and follows them on
//! lock and unlock, so bytes scribbled by a broken or hostile peer can make
//! this process read and write wherever they point. Given those promises,
//! every `unsafe` block below is one libc call on the handle's pointer or on
//! a live local attribute or `timespec`, and glibc keeps no pointer to the
//! locals after the call.
#![allow(unsafe_code)]

use std::io;
use std::mem::MaybeUninit;
use std::time::Duration;

use libc::{c_int, clockid_t, pthread_cond_t, pthread_mutex_t, timespec};

extern "C" {
    // glibc 2.30 and later; not in the `libc` crate.
    fn pthread_mutex_clocklock(
        mutex: *mut pthread_mutex_t,
        clock: clockid_t,
        abstime: *const timespec,
    ) -> c_int;
}

/// A pthread return value: 0, or the error number itself (pthread calls do
/// not set `errno`).
fn check(ret: c_int) -> io::Result<()> {
    match ret {
        0 => Ok(()),
        code => Err(io::Error::from_raw_os_error(code)),
    }
}

/// How a lock ended when it did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// Locked; the last holder unlocked it.
    Clean,
    /// Locked, but its last holder died holding it (`EOWNERDEAD`): the
    /// data it protects may be half-updated, and the mutex stays
    /// inconsistent until [`RawMutex::consistent`].
    OwnerDied,
}

fn acquired(ret: c_int) -> io::Result<Acquired> {
    match ret {
        0 => Ok(Acquired::Clean),
        libc::EOWNERDEAD => Ok(Acquired::OwnerDied),
        code => Err(io::Error::from_raw_os_error(code)),
    }
}

/// `CLOCK_MONOTONIC` now plus `timeout`, or `None` when the sum does not
/// fit a `timespec` (as good as no deadline).
fn monotonic_after(timeout: Duration) -> Option<timespec> {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let now = Duration::new(
        u64::try_from(now.tv_sec).ok()?,
        u32::try_from(now.tv_nsec).ok()?,
    );
    let at = now.checked_add(timeout)?;
    Some(timespec {
        tv_sec: at.as_secs().try_into().ok()?,
        tv_nsec: at.subsec_nanos().into(),
    })
}

/// A robust, process-shared, error-checking `pthread_mutex_t` in shared
/// memory.
#[derive(Debug)]
pub(crate) struct RawMutex {
    ptr: *mut pthread_mutex_t,
}

// SAFETY: a pthread mutex is made to be used from any thread (and, being
// process-shared, any process); the pointer is only handed to pthread calls.
unsafe impl Send for RawMutex {}
// SAFETY: as for `Send`: every method is a pthread call, which glibc makes
// safe to call concurrently on one mutex.
unsafe impl Sync for RawMutex {}

impl RawMutex {
    /// A handle on the mutex at `ptr`.
    ///
    /// # Safety
    ///
    /// While the handle is used: `ptr` is valid for reads and writes of a
    /// `pthread_mutex_t`, aligned for it, in memory that stays mapped; and
    /// no process writes those bytes except through pthread calls (see the
    /// module's `# Safety`). Every method but [`init`](Self::init) also
    /// needs the mutex initialized by `init` first.
    pub(crate) unsafe fn new(ptr: *mut pthread_mutex_t) -> RawMutex {
        RawMutex { ptr }
    }

    /// `pthread_mutex_init` with the process-shared, robust and
    /// error-checking attributes. The caller makes sure nobody uses the
    /// bytes as a mutex meanwhile (the slot header's initializing state).
    pub(crate) fn init(&self) -> io::Result<()> {
        let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: `attr` is a live local of the right type; init writes it.
        check(unsafe { libc::pthread_mutexattr_init(attr.as_mut_ptr()) })?;
        let result = self.init_with(attr.as_mut_ptr());
        // SAFETY: `attr` was initialized above; destroy frees nothing on
        // Linux but keeps the pairing the standard asks for.
        unsafe { libc::pthread_mutexattr_destroy(attr.as_mut_ptr()) };
        result
    }

    fn init_with(&self, attr: *mut libc::pthread_mutexattr_t) -> io::Result<()> {
        // SAFETY: `attr` points to the attribute `init` initialized.
        check(unsafe { libc::pthread_mutexattr_setpshared(attr, libc::PTHREAD_PROCESS_SHARED) })?;
        // SAFETY: as above.
        check(unsafe { libc::pthread_mutexattr_setrobust(attr, libc::PTHREAD_MUTEX_ROBUST) })?;
        // SAFETY: as above.
        check(unsafe { libc::pthread_mutexattr_settype(attr, libc::PTHREAD_MUTEX_ERRORCHECK) })?;
        // SAFETY: `self.ptr` is valid, aligned and writable (the contract of
        // `new`) and unused as a mutex meanwhile (the caller's duty); `attr`
        // is initialized.
        check(unsafe { libc::pthread_mutex_init(self.ptr, attr) })
    }

    /// `pthread_mutex_lock`.
    pub(crate) fn lock(&self) -> io::Result<Acquired> {
        // SAFETY: `self.ptr` is an initialized mutex (the contract of `new`).
        acquired(unsafe { libc::pthread_mutex_lock(self.ptr) })
    }

    /// `pthread_mutex_clocklock(CLOCK_MONOTONIC)` with a deadline `timeout`
    /// from now: `ETIMEDOUT` when it passes first. A timeout past the
    /// clock's range locks without one. With a zero timeout it is the
    /// try-lock: no `pthread_mutex_trylock` wrapper here, because glibc's
    /// (2.36) returns `ENOTRECOVERABLE` with the mutex still locked by the
    /// caller (its unlock on that path tests the compare-exchange's result,
    /// 0, against the caller's tid), and every other process then hangs.
    pub(crate) fn lock_within(&self, timeout: Duration) -> io::Result<Acquired> {
        let Some(at) = monotonic_after(timeout) else {
            return self.lock();
        };
        // SAFETY: `self.ptr` is an initialized mutex (the contract of
        // `new`); `at` is a live local timespec with tv_nsec below 10^9.
        acquired(unsafe { pthread_mutex_clocklock(self.ptr, libc::CLOCK_MONOTONIC, &at) })
    }

    /// `pthread_mutex_consistent`: the data is repaired; a mutex locked
    /// with `EOWNERDEAD` becomes an ordinary one again.
    pub(crate) fn consistent(&self) -> io::Result<()> {
        // SAFETY: as for `lock`.
        check(unsafe { libc::pthread_mutex_consistent(self.ptr) })
    }

    /// `pthread_mutex_unlock`. Unlocking a mutex locked with `EOWNERDEAD`
    /// and not made consistent makes it not recoverable for good.
    pub(crate) fn unlock(&self) -> io::Result<()> {
        // SAFETY: as for `lock`.
        check(unsafe { libc::pthread_mutex_unlock(self.ptr) })
    }
}

/// A process-shared `pthread_cond_t` on `CLOCK_MONOTONIC` in shared memory.
#[derive(Debug)]
pub(crate) struct RawCond {
    ptr: *mut pthread_cond_t,
}

// SAFETY: as for `RawMutex`: only pthread calls touch the pointer.
unsafe impl Send for RawCond {}
// SAFETY: as for `RawMutex`.
unsafe impl Sync for RawCond {}

impl RawCond {
    /// A handle on the condition variable at `ptr`.
    ///
    /// # Safety
    ///
    /// As [`RawMutex::new`], for a `pthread_cond_t`.
    pub(crate) unsafe fn new(ptr: *mut pthread_cond_t) -> RawCond {
        RawCond { ptr }
    }

    /// `pthread_cond_init`, process-shared, timing on `CLOCK_MONOTONIC`.
    pub(crate) fn init(&self) -> io::Result<()> {
        let mut attr = MaybeUninit::<libc::pthread_condattr_t>::uninit();
        // SAFETY: `attr` is a live local of the right type; init writes it.
        check(unsafe { libc::pthread_condattr_init(attr.as_mut_ptr()) })?;
        let result = self.init_with(attr.as_mut_ptr());
        // SAFETY: `attr` was initialized above.
        unsafe { libc::pthread_condattr_destroy(attr.as_mut_ptr()) };
        result
    }

    fn init_with(&self, attr: *mut libc::pthread_condattr_t) -> io::Result<()> {
        // SAFETY: `attr` points to the attribute `init` initialized.
        check(unsafe { libc::pthread_condattr_setpshared(attr, libc::PTHREAD_PROCESS_SHARED) })?;
        // SAFETY: as above.
        check(unsafe { libc::pthread_condattr_setclock(attr, libc::CLOCK_MONOTONIC) })?;
        // SAFETY: `self.ptr` is valid, aligned and writable (the contract of
        // `new`) and unused meanwhile (the caller's duty); `attr` is
        // initialized.
        check(unsafe { libc::pthread_cond_init(self.ptr, attr) })
    }

    /// `pthread_cond_wait` (no timeout) or `pthread_cond_timedwait` with a
    /// `CLOCK_MONOTONIC` deadline `timeout` from now. Unlocks `mutex`,
    /// sleeps, and locks it again before returning, also on `ETIMEDOUT`;
    /// the re-lock may find its holder dead (`Acquired::OwnerDied`) or the
    /// mutex not recoverable (`ENOTRECOVERABLE`, not locked then).
    pub(crate) fn wait(&self, mutex: &RawMutex, timeout: Option<Duration>) -> io::Result<Acquired> {
        let at = timeout.and_then(monotonic_after);
        let ret = match at {
            // SAFETY: `self.ptr` and `mutex.ptr` are an initialized
            // condition variable and mutex (the contracts of `new`); the
            // caller holds `mutex`.
            None => unsafe { libc::pthread_cond_wait(self.ptr, mutex.ptr) },
            // SAFETY: as above; `at` is a live local timespec.
            Some(at) => unsafe { libc::pthread_cond_timedwait(self.ptr, mutex.ptr, &at) },
        };
        acquired(ret)
    }

    /// `pthread_cond_signal`: wakes one waiter, if any.
    pub(crate) fn signal(&self) -> io::Result<()> {
        // SAFETY: `self.ptr` is an initialized condition variable.
        check(unsafe { libc::pthread_cond_signal(self.ptr) })
    }

    /// `pthread_cond_broadcast`: wakes every waiter.
    pub(crate) fn broadcast(&self) -> io::Result<()> {
        // SAFETY: as for `signal`.
        check(unsafe { libc::pthread_cond_broadcast(self.ptr) })
    }
}
