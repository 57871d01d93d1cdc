//! POSIX semaphores: named (`sem:/NAME`, the file `/dev/shm/sem.NAME`) and
//! unnamed (a `sem_t` placed in shared memory both processes map).
//!
//! A semaphore is a count: [`wait`](Semaphore::wait) takes one, blocking
//! while it is zero, and [`post`](Semaphore::post) gives one back and
//! wakes a waiter. It is Dijkstra's counting semaphore (P and V), kept by
//! the C library in shared memory over a futex: an uncontended wait or
//! post makes no system call.
//!
//! A named semaphore's creating handle unlinks the name on drop unless
//! [`kept`](Semaphore::keep), and only while the name still leads to the
//! semaphore it made. Its mode is exact whatever the umask (set on the
//! file before it has a name), and a non-exclusive create adopts an
//! existing semaphore only when it is this user's with exactly the mode
//! asked. A symbolic link, anything but a regular file, or a file with a
//! second hard link, planted under the name is refused, never followed or
//! used; so is a file too short for a `sem_t` (a wait on it would raise
//! `SIGBUS`) or one no `sem_init(pshared = 1)` initialized (glibc).
//!
//! **After a crash** nothing is given back: a process that took a count
//! and died without posting leaves the value one lower for good (POSIX
//! semaphores have no owner and no undo; System V's `SEM_UNDO` does).
//! Whoever may write a named semaphore's file (its mode says who) can also
//! truncate it, and a wait or post on it then raises `SIGBUS`, as for
//! every POSIX named semaphore: keep the mode tight.
//!
//! # Examples
//!
//! ```
//! use unipc::name::PosixName;
//! use unipc::sync::posix_sem::{Semaphore, SemaphoreOptions};
//! use unipc::sync::Wait;
//!
//! let name = PosixName::new(&format!("/unipc-doc-sem-{}", std::process::id()))?;
//! let sem = SemaphoreOptions::new().value(1).exclusive(true).create(&name)?;
//! sem.wait(Wait::Forever)?;
//! assert!(sem.wait(Wait::Never).is_err()); // zero now: it would block
//! let other = Semaphore::open(&name)?; // another process would do this
//! other.post()?;
//! assert_eq!(sem.value()?, 1);
//! # Ok::<(), unipc::Error>(())
//! ```
//!
//! # References
//!
//! sem_overview(7), sem_init(3), sem_wait(3), sem_post(3), sem_getvalue(3),
//! sem_unlink(3); E. W. Dijkstra, "Cooperating sequential processes"
//! (EWD123, 1965).

use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use crate::creator::Class;
use crate::deadline::Deadline;
use crate::endpoint::Endpoint;
use crate::error::ObjectName;
use crate::facility::{
    Direction, Facility, LiveLimit, Naming, Persistence, Properties, Reach, Shape, Tags,
};
use crate::guard::{Guard, Made};
use crate::message::posix_mq::realtime;
use crate::name::PosixName;
use crate::ownership;
use crate::shm::Mapping;
use crate::sync::Wait;
use crate::sys::posix_sem::{self as sys, Named, Refused, Sem};
use crate::sys::proc;
use crate::sys::shm as shm_sys;
use crate::{Error, Mode, Result};

/// How often `create` retries when a semaphore it found vanishes before
/// it can open it.
const CREATE_ATTEMPTS: usize = 64;

/// The longest name a named semaphore may have, slash excluded: glibc
/// adds `sem.` to it and a file name holds NAME_MAX = 255 bytes.
pub const NAME_MAX: usize = 255 - sys::PREFIX.len();

/// The largest value a semaphore may hold on this system
/// (`sysconf(_SC_SEM_VALUE_MAX)`, `SEM_VALUE_MAX`).
pub fn value_max() -> u32 {
    sys::value_max()
}

fn object_of(name: &PosixName) -> String {
    Endpoint::Sem(name.clone()).to_string()
}

/// Refuses a name glibc's `sem_open` could not use (over [`NAME_MAX`]).
pub(crate) fn check_name(name: &PosixName) -> Result<()> {
    let len = name.as_str().len() - 1;
    if len > NAME_MAX {
        return Err(Error::InvalidName {
            kind: "POSIX semaphore name",
            input: name.as_str().to_owned(),
            reason: format!(
                "is {len} bytes after the slash; a semaphore's may be at most {NAME_MAX} (NAME_MAX = 255, less the \"sem.\" prefix of its file in /dev/shm)"
            ),
        });
    }
    Ok(())
}

pub(crate) fn check_value(object: &str, value: u32) -> Result<()> {
    let max = value_max();
    if value > max {
        return Err(Error::LimitExceeded {
            object: object.into(),
            what: "value",
            requested: value.into(),
            limit: max.into(),
            set_in: "SEM_VALUE_MAX (sysconf(_SC_SEM_VALUE_MAX))",
        });
    }
    Ok(())
}

/// How to create a named semaphore.
///
/// # Examples
///
/// See the [module](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SemaphoreOptions {
    value: u32,
    mode: Mode,
    exclusive: bool,
    keep: bool,
}

impl Default for SemaphoreOptions {
    fn default() -> Self {
        SemaphoreOptions::new()
    }
}

impl SemaphoreOptions {
    /// Value 0, mode 0o600, not exclusive, unlinked when the creating
    /// handle drops.
    pub fn new() -> Self {
        SemaphoreOptions {
            value: 0,
            mode: Mode::OWNER_RW,
            exclusive: false,
            keep: false,
        }
    }

    /// The value a new semaphore starts with (at most [`value_max`]). An
    /// existing one a non-exclusive create adopts keeps its own.
    pub fn value(mut self, value: u32) -> Self {
        self.value = value;
        self
    }

    /// The permission bits of a new semaphore, set exactly whatever the
    /// umask. Waiting and posting both need read and write permission.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// `O_EXCL` — when true, [`create`](Self::create) fails if the name
    /// exists; when false it adopts the semaphore there (if this user's,
    /// with the mode asked).
    #[doc(alias = "O_EXCL")]
    pub fn exclusive(mut self, exclusive: bool) -> Self {
        self.exclusive = exclusive;
        self
    }

    /// Keep the name when the creating handle drops.
    pub fn keep(mut self) -> Self {
        self.keep = true;
        self
    }

    /// `sem_open(name, O_CREAT | O_EXCL, mode, value)`, done as an
    /// unnamed file given its exact mode and value and then linked to the
    /// name (see `sys::posix_sem`) — creates the semaphore, or adopts the
    /// one under the name unless [`exclusive`](Self::exclusive).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] for a name over [`NAME_MAX`] and
    /// [`Error::LimitExceeded`] for a value over [`value_max`], before any
    /// system call; [`Error::Os`] with `EEXIST` for an exclusive create
    /// over an existing name; [`Error::ForeignObject`] when the existing
    /// semaphore belongs to another user or has another mode (it is left
    /// untouched); [`Error::WrongType`] when a symbolic link or anything
    /// but a semaphore has the name; [`Error::Os`] with `EACCES` when this
    /// user may not open it.
    #[doc(alias = "sem_open")]
    pub fn create(&self, name: &PosixName) -> Result<Semaphore> {
        check_name(name)?;
        let object = object_of(name);
        check_value(&object, self.value)?;
        let object = ObjectName::from(object);
        let mode = self.mode.bits();
        for _ in 0..CREATE_ATTEMPTS {
            let err = match Named::create(name.as_str(), mode, self.value) {
                Ok(named) => return Semaphore::new(named, name, object, true, !self.keep),
                Err((op, err)) => {
                    if err.raw_os_error() != Some(libc::EEXIST) {
                        return Err(Error::os(object, op, err));
                    }
                    err
                }
            };
            if self.exclusive {
                return Err(Error::os(object, "create", err).with_hint(
                    "a semaphore with this name already exists: remove it first, or open it instead",
                ));
            }
            let fd = match Named::open_file(name.as_str()) {
                Ok(fd) => fd,
                Err(err) if err.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(err) if err.raw_os_error() == Some(libc::EACCES) => {
                    return Err(Error::os(object, "open", err).with_hint(
                        "a semaphore this user may not open already has this name, so it is not this user's: remove it, or use a different name",
                    ))
                }
                Err(err) => return Err(open_error(&object, err)),
            };
            let found =
                shm_sys::fstat(fd.as_fd()).map_err(|e| Error::os(object.clone(), "fstat", e))?;
            ownership::check_adoptable(
                &object,
                ownership::Found {
                    uid: found.uid,
                    creator_uid: None,
                    mode: found.mode,
                },
                mode,
                proc::euid(),
            )?;
            let named = Named::from_fd(fd).map_err(|r| refused(&object, r))?;
            return Semaphore::new(named, name, object, false, false);
        }
        Err(
            Error::os(object, "create", io::Error::from_raw_os_error(libc::EEXIST))
                .with_hint("the name was unlinked and recreated by others on every attempt"),
        )
    }
}

fn open_error(object: &ObjectName, err: io::Error) -> Error {
    match err.raw_os_error() {
        Some(libc::ELOOP) => Error::WrongType {
            object: object.clone(),
            expected: "a semaphore (a regular file in /dev/shm)",
            found: "a symbolic link",
        },
        Some(libc::ENODEV) => Error::WrongType {
            object: object.clone(),
            expected: "a semaphore (a regular file in /dev/shm)",
            found: "something other than a regular file",
        },
        Some(libc::ENOENT) => {
            Error::os(object.clone(), "open", err).with_hint("no semaphore has this name")
        }
        _ => Error::os(object.clone(), "open", err),
    }
}

fn refused(object: &ObjectName, refusal: Refused) -> Error {
    match refusal {
        Refused::TooSmall => Error::WrongType {
            object: object.clone(),
            expected: "a semaphore",
            found: "a file too small to hold one",
        },
        Refused::NotASemaphore => Error::WrongType {
            object: object.clone(),
            expected: "a semaphore",
            found: "a file that holds no process-shared semaphore",
        },
        Refused::Linked => Error::WrongType {
            object: object.clone(),
            expected: "a semaphore",
            found: "a file with other names too (hard links)",
        },
        Refused::Os(op, err) => Error::os(object.clone(), op, err),
    }
}

/// `sem_unlink(name)` — removes the name; processes that have the
/// semaphore open keep using it.
///
/// # Errors
///
/// [`Error::InvalidName`] for a name over [`NAME_MAX`]; [`Error::Os`] with
/// `ENOENT` when no semaphore has the name, `EACCES` when this user may
/// not remove it.
#[doc(alias = "sem_unlink")]
pub fn remove(name: &PosixName) -> Result<()> {
    check_name(name)?;
    let forget = crate::creator::Forget::dev_shm(
        crate::creator::Class::Sem,
        &format!("sem.{}", name.as_str().trim_start_matches('/')),
    );
    sys::unlink(name.as_str()).map_err(|err| {
        let missing = err.raw_os_error() == Some(libc::ENOENT);
        let err = Error::os(object_of(name), "sem_unlink", err);
        if missing {
            err.with_hint("no semaphore has this name")
        } else {
            err
        }
    })?;
    crate::creator::Forget::done(forget);
    Ok(())
}

/// What [`Semaphore::stat`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stat {
    /// The value now.
    pub value: u32,
    /// Its permission bits.
    pub mode: Mode,
    /// Its owner.
    pub uid: u32,
    /// Its group.
    pub gid: u32,
}

/// An open named POSIX semaphore (`sem:/NAME`).
///
/// # Examples
///
/// See the [module](self).
#[derive(Debug)]
pub struct Semaphore {
    named: Named,
    object: ObjectName,
    created: bool,
    guard: Guard<SemName>,
}

impl Semaphore {
    fn new(
        named: Named,
        name: &PosixName,
        object: ObjectName,
        created: bool,
        armed: bool,
    ) -> Result<Semaphore> {
        let label = object.to_string();
        let st = shm_sys::fstat(named.fd()).map_err(|e| Error::os(object.clone(), "fstat", e))?;
        Ok(Semaphore {
            guard: {
                let guard = Guard::new(
                    SemName {
                        name: name.clone(),
                        identity: (st.dev, st.ino),
                    },
                    created && armed,
                );
                if created {
                    guard.recorded(Class::Sem, &label, (st.dev, st.ino))
                } else {
                    guard
                }
            },
            named,
            object,
            created,
        })
    }

    /// `sem_open(name, 0)` — opens an existing semaphore (read and write
    /// permission needed). The handle never unlinks the name.
    ///
    /// # Errors
    ///
    /// [`Error::Os`] with `ENOENT` when no semaphore has the name, `EACCES`
    /// when this user may not open it; [`Error::WrongType`] for a symbolic
    /// link or a file that holds no semaphore.
    #[doc(alias = "sem_open")]
    pub fn open(name: &PosixName) -> Result<Semaphore> {
        check_name(name)?;
        let object = ObjectName::from(object_of(name));
        let fd = Named::open_file(name.as_str()).map_err(|e| open_error(&object, e))?;
        let named = Named::from_fd(fd).map_err(|r| refused(&object, r))?;
        Semaphore::new(named, name, object, false, false)
    }

    /// [`remove`] — unlinks `name`.
    ///
    /// # Errors
    /// As [`remove`].
    pub fn remove(name: &PosixName) -> Result<()> {
        remove(name)
    }

    /// The semaphore's name.
    pub fn name(&self) -> &PosixName {
        &self.guard.made().name
    }

    /// The semaphore as errors name it (`sem:/NAME`).
    pub fn object(&self) -> &ObjectName {
        &self.object
    }

    /// Whether this handle created the semaphore (and so unlinks it on
    /// drop, unless kept).
    pub fn created(&self) -> bool {
        self.created
    }

    /// Leaves the name in place when this handle drops.
    pub fn keep(mut self) -> Self {
        self.guard.keep();
        self
    }

    /// `sem_wait`, `sem_trywait` or `sem_timedwait` — takes one from the
    /// value, waiting while it is zero as `wait` says. A signal that
    /// interrupts the wait resumes it with the time left.
    ///
    /// # Errors
    /// [`Error::WouldBlock`] for [`Wait::Never`] at zero;
    /// [`Error::TimedOut`] when [`Wait::For`] ran out; [`Error::Os`].
    #[doc(alias = "sem_wait", alias = "sem_trywait", alias = "sem_timedwait")]
    pub fn wait(&self, wait: Wait) -> Result<()> {
        wait_on(self.named.sem(), &self.object, wait)
    }

    /// `sem_post` — adds one to the value, waking a waiter.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] naming `SEM_VALUE_MAX` when the value is
    /// already there (nothing changed); [`Error::Os`].
    #[doc(alias = "sem_post")]
    pub fn post(&self) -> Result<()> {
        post_on(self.named.sem(), &self.object)
    }

    /// `sem_getvalue` — the value now (another process may change it the
    /// moment after).
    ///
    /// # Errors
    /// [`Error::Os`].
    #[doc(alias = "sem_getvalue")]
    pub fn value(&self) -> Result<u32> {
        value_of(self.named.sem(), &self.object)
    }

    /// `fstat` and `sem_getvalue` — the value, mode and owner.
    ///
    /// # Errors
    /// [`Error::Os`].
    pub fn stat(&self) -> Result<Stat> {
        let st = shm_sys::fstat(self.named.fd())
            .map_err(|e| Error::os(self.object.clone(), "fstat", e))?;
        Ok(Stat {
            value: self.value()?,
            mode: Mode::from_bits_truncate(st.mode),
            uid: st.uid,
            gid: st.gid,
        })
    }

    /// `sem_unlink` — removes the name now if it still leads to the
    /// semaphore this handle created (or, for an opener, whatever it leads
    /// to); whether a name was removed. This handle stays usable.
    ///
    /// # Errors
    /// [`Error::Os`] when `sem_unlink` fails.
    #[doc(alias = "sem_unlink")]
    pub fn unlink(&mut self) -> Result<bool> {
        self.guard
            .remove_now()
            .map_err(|e| Error::os(self.object.clone(), "sem_unlink", e))
    }
}

/// A name and the (device, inode) of the semaphore file a handle has.
#[derive(Debug)]
struct SemName {
    name: PosixName,
    identity: (u64, u64),
}

impl Made for SemName {
    /// Whether the name still leads to the file this handle created,
    /// compared by device and inode. Refused (EACCES) means the caller is
    /// unprivileged, and the sticky `/dev/shm` already keeps it from
    /// unlinking another user's file.
    fn is_still_ours(&self) -> io::Result<bool> {
        Ok(
            match shm_sys::open(&sys::file_name(self.name.as_str()), false, false, false, 0) {
                Ok(fd) => {
                    shm_sys::fstat(fd.as_fd()).is_ok_and(|st| (st.dev, st.ino) == self.identity)
                }
                Err(err) => err.raw_os_error() == Some(libc::EACCES),
            },
        )
    }

    fn remove(&self) -> io::Result<()> {
        sys::unlink(self.name.as_str())
    }
}

/// An unnamed POSIX semaphore (`sem_init` with `pshared` = 1) inside a
/// shared [`Mapping`], borrowed for as long as the mapping is.
///
/// One process [`init`](Self::init)ializes it; every other process that
/// maps the same memory (a POSIX object, a System V segment, an anonymous
/// shared mapping across `fork`) [`attach`](Self::attach)es to it at the
/// same offset. Dropping it changes nothing: the semaphore lives in the
/// memory, for as long as the memory does.
///
/// # Examples
///
/// ```
/// use unipc::shm::mapped::MapOptions;
/// use unipc::sync::posix_sem::SharedSemaphore;
/// use unipc::sync::Wait;
///
/// let map = MapOptions::new().map_anonymous(4096)?; // shared with children forked now
/// let sem = SharedSemaphore::init(&map, 64, 0)?;
/// sem.post()?;
/// sem.wait(Wait::Never)?;
/// assert_eq!(sem.value()?, 0);
/// // SAFETY: `init` initialized the semaphore at offset 64 just above.
/// let again = unsafe { SharedSemaphore::attach(&map, 64) }?;
/// again.post()?;
/// assert_eq!(sem.value()?, 1);
/// # Ok::<(), unipc::Error>(())
/// ```
#[derive(Debug)]
pub struct SharedSemaphore<'m> {
    sem: Sem<'m>,
    object: ObjectName,
}

impl<'m> SharedSemaphore<'m> {
    fn name_of(mapping: &Mapping, offset: usize) -> ObjectName {
        ObjectName::from(format!(
            "semaphore at offset {offset} of {}",
            mapping.object()
        ))
    }

    /// `sem_init(sem, 1, value)` — a new process-shared semaphore at
    /// `offset` of `mapping`, overwriting what the bytes held.
    ///
    /// Initializing over a semaphore other processes are using resets it
    /// (POSIX leaves that undefined; glibc's `sem_t` is plain integers, so
    /// waiters are lost or woken, memory is not corrupted): one process
    /// initializes, before the others attach.
    ///
    /// # Errors
    /// [`Error::OutOfBounds`] or [`Error::Misaligned`] (a `sem_t` is 32
    /// bytes, aligned to 8) and [`Error::Unsupported`] on a read-only
    /// mapping, before anything is written; [`Error::LimitExceeded`] for a
    /// value over [`value_max`].
    #[doc(alias = "sem_init")]
    pub fn init(mapping: &'m Mapping, offset: usize, value: u32) -> Result<SharedSemaphore<'m>> {
        mapping.shared_slot::<libc::sem_t>("semaphore", offset)?;
        let object = Self::name_of(mapping, offset);
        check_value(&object, value)?;
        let sem = Sem::init(mapping.region(), offset, value)
            .map_err(|e| Error::os(object.clone(), "sem_init", e))?;
        Ok(SharedSemaphore { sem, object })
    }

    /// The semaphore another process (or this one) [`init`](Self::init)ialized
    /// at `offset` of memory that `mapping` maps too.
    ///
    /// On glibc the bytes are checked to hold a process-shared semaphore:
    /// zeroed memory (the peer has not initialized it yet) is refused with
    /// [`Error::WrongType`], so the caller can wait and try again.
    ///
    /// # Safety
    ///
    /// A `sem_init(pshared = 1)` ran on those bytes, in some process, and
    /// no process destroys the semaphore while this handle lives: POSIX
    /// leaves a wait or post on anything else undefined, and the check
    /// above cannot tell a semaphore from other bytes that happen to look
    /// like one. (A peer that scribbles on an initialized semaphore can
    /// make waits hang or return early, or glibc abort on a futex error;
    /// it cannot make these calls touch other memory.)
    ///
    /// # Errors
    /// As for [`init`](Self::init); [`Error::WrongType`] as said above.
    // The hazard (bytes some other process was meant to initialize) is
    // the caller's to rule out, so the entry point itself is `unsafe`, as
    // `shm::posix::Segment::map` is.
    #[allow(unsafe_code)]
    pub unsafe fn attach(mapping: &'m Mapping, offset: usize) -> Result<SharedSemaphore<'m>> {
        mapping.shared_slot::<libc::sem_t>("semaphore", offset)?;
        let object = Self::name_of(mapping, offset);
        if !sys::looks_initialized(mapping.region(), offset) {
            return Err(Error::WrongType {
                object,
                expected: "a process-shared semaphore (sem_init with pshared = 1)",
                found: "bytes no process initialized as one",
            });
        }
        // SAFETY: the caller vouches that sem_init(pshared = 1) initialized
        // the sem_t there and nobody destroys it while the handle lives;
        // shared_slot checked it inside and aligned, and the mapping is
        // borrowed for 'm.
        let sem = unsafe { Sem::assume_init(mapping.region(), offset) };
        Ok(SharedSemaphore { sem, object })
    }

    /// The semaphore a handle made by [`init`](Self::init) or
    /// [`attach`](Self::attach) checked at `offset` of `mapping`, under
    /// its `object` name, without checking or naming it again: for a
    /// handle that keeps the mapping and calls often (the async one).
    ///
    /// # Safety
    /// `init` or `attach` succeeded on this `mapping` and `offset`, and
    /// `attach`'s contract holds.
    #[allow(unsafe_code)]
    pub(crate) unsafe fn checked(
        mapping: &'m Mapping,
        offset: usize,
        object: ObjectName,
    ) -> SharedSemaphore<'m> {
        // SAFETY: the caller's: `init`/`attach` checked the slot in
        // bounds and aligned, and a semaphore lives there.
        let sem = unsafe { Sem::assume_init(mapping.region(), offset) };
        SharedSemaphore { sem, object }
    }

    /// The semaphore as errors name it ("semaphore at offset 64 of shm:/x").
    pub fn object(&self) -> &ObjectName {
        &self.object
    }

    /// As [`Semaphore::wait`].
    ///
    /// # Errors
    /// As [`Semaphore::wait`].
    #[doc(alias = "sem_wait", alias = "sem_trywait", alias = "sem_timedwait")]
    pub fn wait(&self, wait: Wait) -> Result<()> {
        wait_on(self.sem, &self.object, wait)
    }

    /// As [`Semaphore::post`].
    ///
    /// # Errors
    /// As [`Semaphore::post`].
    #[doc(alias = "sem_post")]
    pub fn post(&self) -> Result<()> {
        post_on(self.sem, &self.object)
    }

    /// As [`Semaphore::value`].
    ///
    /// # Errors
    /// As [`Semaphore::value`].
    #[doc(alias = "sem_getvalue")]
    pub fn value(&self) -> Result<u32> {
        value_of(self.sem, &self.object)
    }

    /// `sem_destroy` — ends the semaphore (glibc frees nothing: the bytes
    /// are the semaphore). Dropping the handle does not destroy it, since
    /// other processes may still be using it.
    ///
    /// # Safety
    ///
    /// No process waits on the semaphore or uses it afterwards, until one
    /// [`init`](Self::init)ializes it again (POSIX leaves anything else
    /// undefined).
    ///
    /// # Errors
    /// [`Error::Os`] when `sem_destroy` fails.
    #[doc(alias = "sem_destroy")]
    #[allow(unsafe_code)]
    pub unsafe fn destroy(self) -> Result<()> {
        // SAFETY: the caller vouches nobody uses the semaphore after this.
        unsafe { self.sem.destroy() }.map_err(|e| Error::os(self.object, "sem_destroy", e))
    }
}

/// The one wait loop both kinds share: a monotonic deadline, converted to
/// the `CLOCK_REALTIME` time `sem_timedwait` takes just before each call,
/// so a wait interrupted by a signal resumes with the time left.
fn wait_on(sem: Sem<'_>, object: &ObjectName, wait: Wait) -> Result<()> {
    // Only a timed wait reads a clock: a try or an endless wait on an
    // uncontended semaphore stays one atomic operation in the C library.
    let deadline = match wait {
        Wait::For(_) => Deadline::of(wait),
        Wait::Never | Wait::Forever => Deadline::NEVER,
    };
    loop {
        let result = match wait {
            Wait::Never => sem.try_wait(),
            _ => match realtime(deadline) {
                None => sem.wait(),
                Some(at) => sem.timed_wait(at),
            },
        };
        match result {
            Ok(()) => return Ok(()),
            Err(err) => match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => {
                    return Err(Error::WouldBlock {
                        object: object.clone(),
                        op: "wait",
                        holder: None,
                    })
                }
                Some(libc::ETIMEDOUT) => {
                    // Only a timed wait times out.
                    let timeout = match wait {
                        Wait::For(timeout) => timeout,
                        _ => Duration::ZERO,
                    };
                    return Err(Error::TimedOut {
                        object: object.clone(),
                        timeout,
                    });
                }
                _ => return Err(Error::os(object.clone(), "sem_wait", err)),
            },
        }
    }
}

fn post_on(sem: Sem<'_>, object: &ObjectName) -> Result<()> {
    sem.post().map_err(|err| {
        if err.raw_os_error() == Some(libc::EOVERFLOW) {
            let max = value_max();
            Error::LimitExceeded {
                object: object.clone(),
                what: "value",
                requested: u64::from(max) + 1,
                limit: max.into(),
                set_in: "SEM_VALUE_MAX (sysconf(_SC_SEM_VALUE_MAX))",
            }
        } else {
            Error::os(object.clone(), "sem_post", err)
        }
    })
}

fn value_of(sem: Sem<'_>, object: &ObjectName) -> Result<u32> {
    let value = sem
        .value()
        .map_err(|e| Error::os(object.clone(), "sem_getvalue", e))?;
    // glibc never reports waiters as a negative value; another C library
    // may, and then no count is free.
    Ok(u32::try_from(value).unwrap_or(0))
}

/// The registry entry of POSIX named semaphores.
pub static FACILITY: Facility = Facility {
    name: "sem",
    scheme: Some("sem"),
    summary: "POSIX named semaphore: a count in /dev/shm/sem.NAME that processes wait on and post",
    addressing: "sem:/NAME",
    properties: Properties {
        shape: Shape::Synchronization,
        direction: Direction::TwoWay,
        tags: Tags::None,
        destructive_read: false,
        peek: false,
        naming: Naming::IpcName,
        reach: Reach::Host,
        persistence: Persistence::Kernel,
        permissions: "file owner and mode bits of /dev/shm/sem.NAME (read and write to use it)",
        reliable: true,
        after_crash: "the value stays as the dead process left it: a count it took by waiting is never given back (no owner, no undo); the name stays until unlinked",
    },
    limits: || {
        vec![
            LiveLimit {
                name: "SEM_VALUE_MAX",
                value: value_max().to_string(),
                source: "sysconf(_SC_SEM_VALUE_MAX)",
            },
            LiveLimit {
                name: "names",
                value: match shm_sys::free_bytes(sys::DIR) {
                    Some(free) => format!(
                        "files /dev/shm/sem.NAME, NAME up to {NAME_MAX} bytes ({free} bytes free there)"
                    ),
                    None => format!("files /dev/shm/sem.NAME, NAME up to {NAME_MAX} bytes"),
                },
                source: "glibc sem_open; statvfs(/dev/shm)",
            },
        ]
    },
    max_message: || None,
    #[cfg(feature = "bench")]
    connector: None,
};
