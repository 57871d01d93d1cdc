//! System V semaphore sets (`sysv-sem:KEY`, `sysv-sem:id=N`): N counters
//! under one numeric key, changed by `semop`, which applies a list of
//! operations on any of them atomically — all or none.
//!
//! An operation adds to a semaphore ([`Op::add`]), takes from it, waiting
//! until the value is large enough ([`Op::take`]), or waits until it is
//! zero ([`Op::wait_zero`]). [`SemaphoreSet::apply`] makes one `semop` of
//! the whole list: if any of them cannot proceed, none is applied and the
//! caller waits (or gets [`Error::WouldBlock`] / [`Error::TimedOut`]),
//! and the values stay as they were while it waits. An operation marked
//! [`Op::undo`] (`SEM_UNDO`) is reversed by the kernel when the process
//! exits, however it exits: a process killed with `SIGKILL` while holding
//! a semaphore gives it back.
//!
//! # Creation without a race
//!
//! `semget(IPC_CREAT)` makes a set of zeros, and setting its initial values
//! is a second call, so an opener can find the set between the two
//! (Stevens, *UNIX Network Programming* vol. 2, §11.2). A create here
//! takes the key exclusively first; the process that wins sets the values
//! (`SETALL`) and then makes one `semop` that changes nothing, which sets
//! the set's `sem_otime`. A create that finds the key taken opens the set
//! and waits (boundedly: [`SetOptions::init_timeout`]) until `sem_otime`
//! is non-zero, so it never uses the zeros. [`SemaphoreSet::open`] does
//! not wait: a set another program made may never have seen a `semop`.
//!
//! No umask applies: the mode asked is the mode set. A non-exclusive
//! create adopts an existing set only when this user owns and created it,
//! its mode is exactly the one asked and it has the number of semaphores
//! asked.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use unipc::name::SysvKey;
//! use unipc::sync::sysv_sem::{Op, SetOptions};
//! use unipc::sync::Wait;
//!
//! let set = SetOptions::new().count(2).values(&[1, 0]).create(SysvKey::Private)?;
//! // Take semaphore 0 and give semaphore 1, in one atomic step.
//! set.apply(&[Op::take(0, 1), Op::add(1, 1)], Wait::Forever)?;
//! assert_eq!(set.values()?, vec![0, 1]);
//! // Semaphore 0 is 0: taking it again would wait.
//! let err = set.apply(&[Op::take(0, 1)], Wait::Never).unwrap_err();
//! assert!(matches!(err, unipc::Error::WouldBlock { .. }));
//! let err = set.apply(&[Op::take(0, 1)], Wait::For(Duration::from_millis(10))).unwrap_err();
//! assert!(matches!(err, unipc::Error::TimedOut { .. }));
//! # Ok::<(), unipc::Error>(())
//! ```
//!
//! # References
//!
//! semget(2), semop(2), semctl(2), sysvipc(7); W. R. Stevens, *UNIX
//! Network Programming, Volume 2*, chapter 11 (the `sem_otime` handshake).

use std::io;
use std::time::{Duration, SystemTime};

use libc::c_int;

use crate::creator::{sysv_identity, Class};
use crate::deadline::Deadline;
use crate::endpoint::Endpoint;
use crate::error::ObjectName;
use crate::facility::{
    Direction, Facility, LiveLimit, Naming, Persistence, Properties, Reach, Shape, Tags,
};
use crate::guard::{Guard, Made};
use crate::name::SysvKey;
use crate::ownership;
use crate::sync::Wait;
use crate::sys::sysv_sem as sys;
use crate::{Error, Mode, Result};

/// How often `create` retries when a set it found vanishes before it can
/// open it.
const CREATE_ATTEMPTS: usize = 100;

/// The largest value a semaphore holds, and the largest step of one
/// operation (`SEMVMX`, fixed in the kernel).
pub const MAX_VALUE: u16 = sys::SEMVMX;

const SEMVMX_SOURCE: &str = "SEMVMX, fixed at 32767 in the kernel";
/// Operations a semop checks into a stack buffer rather than a `Vec`.
const INLINE_OPS: usize = 4;

const SEMOPM_SOURCE: &str = "/proc/sys/kernel/sem (SEMOPM, the third field)";
const SEMMSL_SOURCE: &str = "/proc/sys/kernel/sem (SEMMSL, the first field)";

fn errno(err: &io::Error) -> Option<i32> {
    err.raw_os_error()
}

/// How to create a System V semaphore set.
///
/// # Examples
///
/// ```
/// use unipc::name::SysvKey;
/// use unipc::sync::sysv_sem::SetOptions;
///
/// let set = SetOptions::new()
///     .count(3)
///     .values(&[1, 0, 5])
///     .mode(unipc::Mode::OWNER_RW)
///     .create(SysvKey::Private)?;
/// assert_eq!(set.count(), 3);
/// assert_eq!(set.value(2)?, 5);
/// # Ok::<(), unipc::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetOptions {
    count: usize,
    values: Option<Vec<u16>>,
    mode: Mode,
    exclusive: bool,
    keep: bool,
    init_timeout: Duration,
}

impl Default for SetOptions {
    fn default() -> Self {
        SetOptions::new()
    }
}

impl SetOptions {
    /// One semaphore, value 0, mode 0o600, not exclusive, a 5 s wait for
    /// another creator's initialization, removed when the creating handle
    /// drops.
    pub fn new() -> Self {
        SetOptions {
            count: 1,
            values: None,
            mode: Mode::OWNER_RW,
            exclusive: false,
            keep: false,
            init_timeout: Duration::from_secs(5),
        }
    }

    /// How many semaphores the set has (`nsems`, at least 1, at most
    /// `SEMMSL`).
    pub fn count(mut self, count: usize) -> Self {
        self.count = count;
        self
    }

    /// The initial values, one per semaphore (default: all 0), each at
    /// most [`MAX_VALUE`].
    pub fn values(mut self, values: &[u16]) -> Self {
        self.values = Some(values.to_vec());
        self
    }

    /// The permission bits of a new set (no umask applies). A semaphore
    /// needs read permission to look and write ("alter") to operate.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// `IPC_EXCL` — when true, [`create`](Self::create) fails if the key
    /// already has a set.
    #[doc(alias = "IPC_EXCL")]
    pub fn exclusive(mut self, exclusive: bool) -> Self {
        self.exclusive = exclusive;
        self
    }

    /// Keep the set when the creating handle drops.
    pub fn keep(mut self) -> Self {
        self.keep = true;
        self
    }

    /// How long a create that finds the key taken waits for the set's
    /// creator to initialize it (its `sem_otime` to become non-zero).
    pub fn init_timeout(mut self, timeout: Duration) -> Self {
        self.init_timeout = timeout;
        self
    }

    /// `semget(key, count, IPC_CREAT | IPC_EXCL | mode)`, then `SETALL` and
    /// the `sem_otime` handshake — creates a set with the values asked, or
    /// adopts the one under the key (once its creator has initialized it)
    /// unless [`exclusive`](Self::exclusive).
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] for a count of 0 or values that do not match
    /// the count; [`Error::LimitExceeded`] for more than `SEMMSL`
    /// semaphores or a value over [`MAX_VALUE`] (before anything is
    /// created); [`Error::Os`] with `EEXIST` for an exclusive create on a
    /// taken key, `ENOSPC` at `SEMMNI`/`SEMMNS`, `ETIMEDOUT` when the set
    /// found was never initialized; [`Error::ForeignObject`] when the set
    /// under the key belongs to or was created by another user, or has
    /// another mode (left untouched); [`Error::Unsupported`] when it has
    /// another number of semaphores.
    #[doc(alias = "semget")]
    pub fn create(&self, key: SysvKey) -> Result<SemaphoreSet> {
        let object = Endpoint::SysvSem(key).to_string();
        let values = self.check(&object)?;
        let flags = sys::CREATE | self.mode.bits() as c_int;
        let nsems = self.count as c_int;
        let raw = match key {
            SysvKey::Private => {
                let id = sys::get(libc::IPC_PRIVATE, nsems, flags)
                    .map_err(|e| create_error(&object, e))?;
                return self.made(id, key, object.into(), &values);
            }
            SysvKey::Key(raw) => raw,
        };
        for _ in 0..CREATE_ATTEMPTS {
            match sys::get(raw, nsems, flags | sys::EXCLUSIVE) {
                Ok(id) => return self.made(id, key, object.into(), &values),
                Err(err) if errno(&err) == Some(libc::EEXIST) && !self.exclusive => {
                    let id = match sys::get(raw, 0, 0) {
                        Ok(id) => id,
                        Err(err) if errno(&err) == Some(libc::ENOENT) => continue,
                        Err(err) => return Err(open_error(&object, err)),
                    };
                    match self.adopt(&object, id) {
                        Ok(()) => {
                            return SemaphoreSet::new(id, key, object.into(), false);
                        }
                        Err(Error::Removed { .. }) => continue,
                        Err(err) => return Err(err),
                    }
                }
                Err(err) => return Err(create_error(&object, err)),
            }
        }
        Err(create_error(
            &object,
            io::Error::other("the key's set kept being removed and recreated by others"),
        ))
    }

    /// The values to set, checked against the count and the limits.
    fn check(&self, object: &str) -> Result<Vec<u16>> {
        if self.count == 0 {
            return Err(Error::Unsupported {
                object: object.into(),
                what: "a set of 0 semaphores".into(),
                reason: "a System V set needs at least one semaphore (set a count)".into(),
            });
        }
        let semmsl = sys::info().map_or(32000, |i| i.semmsl) as u64;
        if self.count as u64 > semmsl {
            return Err(Error::LimitExceeded {
                object: object.into(),
                what: "semaphores in one set",
                requested: self.count as u64,
                limit: semmsl,
                set_in: SEMMSL_SOURCE,
            });
        }
        let values = match &self.values {
            None => vec![0; self.count],
            Some(values) if values.len() == self.count => values.clone(),
            Some(values) => {
                return Err(Error::Unsupported {
                    object: object.into(),
                    what: format!(
                        "{} initial values for a set of {} semaphores",
                        values.len(),
                        self.count
                    ),
                    reason: "give one value per semaphore".into(),
                })
            }
        };
        if let Some(&big) = values.iter().find(|&&v| v > MAX_VALUE) {
            return Err(Error::LimitExceeded {
                object: object.into(),
                what: "initial value",
                requested: big.into(),
                limit: MAX_VALUE.into(),
                set_in: SEMVMX_SOURCE,
            });
        }
        Ok(values)
    }

    /// The set `id` was just made by this call: arm its guard first (so a
    /// failed initialization removes it), then set the values and make the
    /// handshake `semop`.
    fn made(
        &self,
        id: c_int,
        key: SysvKey,
        object: ObjectName,
        values: &[u16],
    ) -> Result<SemaphoreSet> {
        let mut set = SemaphoreSet::new(id, key, object, true)?;
        set.guard.set_armed(true);
        set.initialize(values)?;
        set.guard.set_armed(!self.keep);
        Ok(set)
    }

    /// Checks that the set `id`, found under the key, may be adopted, and
    /// waits until its creator has initialized it.
    fn adopt(&self, object: &str, id: c_int) -> Result<()> {
        let gone = |err: io::Error| {
            match errno(&err) {
            Some(libc::EIDRM | libc::EINVAL) => Error::Removed {
                object: object.into(),
            },
            Some(libc::EACCES) => Error::os(object, "stat", err).with_hint(
                "the set with this key cannot be read, so it is not this user's set with the mode asked: remove it, or use a different key",
            ),
            _ => Error::os(object, "stat", err),
        }
        };
        let st = sys::stat(id).map_err(gone)?;
        ownership::check_adoptable(
            object,
            ownership::Found {
                uid: st.perm.uid,
                creator_uid: Some(st.perm.cuid),
                mode: st.perm.mode(),
            },
            self.mode.bits(),
            sys::euid(),
        )?;
        if st.nsems != self.count as u64 {
            return Err(Error::Unsupported {
                object: object.into(),
                what: format!(
                    "adopting a set of {} semaphores for a create of {}",
                    st.nsems, self.count
                ),
                reason: "the set under this key has another size: ask for its size, remove it, or use a different key".into(),
            });
        }
        // The creator's SETALL comes before its handshake semop, so a
        // non-zero sem_otime means the values are the creator's.
        let deadline = Deadline::after(self.init_timeout);
        let mut pause = Duration::from_micros(200);
        loop {
            if sys::stat(id).map_err(gone)?.otime != 0 {
                return Ok(());
            }
            let Some(left) = deadline.remaining().filter(|d| !d.is_zero()) else {
                return Err(Error::os(
                    object,
                    "wait for initialization",
                    io::Error::from_raw_os_error(libc::ETIMEDOUT),
                )
                .with_hint(
                    "no semop was ever made on the set (sem_otime is 0): its creator has not set its values, or died before it did; remove it if so",
                ));
            };
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}

fn create_error(object: &str, err: io::Error) -> Error {
    let hint = match errno(&err) {
        Some(libc::EEXIST) => {
            Some("a set with this key already exists: remove it first, or open it instead")
        }
        Some(libc::ENOSPC) => Some(
            "the system's limit of sets (SEMMNI) or of semaphores in all sets (SEMMNS) is reached: see /proc/sys/kernel/sem",
        ),
        Some(libc::EINVAL) => Some(
            "a set under this key exists with fewer semaphores, or the count is above SEMMSL",
        ),
        _ => None,
    };
    let err = Error::os(object, "create", err);
    match hint {
        Some(hint) => err.with_hint(hint),
        None => err,
    }
}

fn open_error(object: &str, err: io::Error) -> Error {
    let missing = errno(&err) == Some(libc::ENOENT);
    let err = Error::os(object, "open", err);
    if missing {
        err.with_hint("no semaphore set has this key")
    } else {
        err
    }
}

/// What an [`Op`] does to its semaphore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Add(u16),
    Take(u16),
    WaitZero,
}

/// One operation of a [`SemaphoreSet::apply`] (a `struct sembuf`).
///
/// # Examples
///
/// ```
/// use unipc::sync::sysv_sem::Op;
///
/// // Take 2 from semaphore 0, given back by the kernel if this process dies.
/// let op = Op::take(0, 2).undo();
/// assert_eq!(op.index(), 0);
/// assert_eq!(op.delta(), -2);
/// assert!(op.is_undo());
/// assert_eq!(op.inverse(), Some(Op::add(0, 2).undo()));
/// assert_eq!(Op::wait_zero(1).delta(), 0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Op {
    index: usize,
    kind: Kind,
    undo: bool,
}

impl Op {
    /// Adds `n` (1 to [`MAX_VALUE`]) to semaphore `index`; never waits.
    pub fn add(index: usize, n: u16) -> Op {
        Op {
            index,
            kind: Kind::Add(n),
            undo: false,
        }
    }

    /// Takes `n` (1 to [`MAX_VALUE`]) from semaphore `index`, waiting
    /// until its value is at least `n`.
    pub fn take(index: usize, n: u16) -> Op {
        Op {
            index,
            kind: Kind::Take(n),
            undo: false,
        }
    }

    /// Waits until semaphore `index` is zero (`sem_op` 0).
    pub fn wait_zero(index: usize) -> Op {
        Op {
            index,
            kind: Kind::WaitZero,
            undo: false,
        }
    }

    /// `SEM_UNDO`: the kernel reverses this operation when the process
    /// exits, by any means (`SIGKILL` included). The adjustment survives
    /// `execve`; a `SETVAL`/`SETALL` clears it.
    #[doc(alias = "SEM_UNDO")]
    pub fn undo(mut self) -> Op {
        self.undo = true;
        self
    }

    /// The semaphore's index in the set.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The change asked: positive to add, negative to take, 0 to wait for
    /// zero (`sem_op`).
    pub fn delta(&self) -> i32 {
        match self.kind {
            Kind::Add(n) => n.into(),
            Kind::Take(n) => -i32::from(n),
            Kind::WaitZero => 0,
        }
    }

    /// Whether it is marked [`undo`](Self::undo).
    pub fn is_undo(&self) -> bool {
        self.undo
    }

    /// The operation that reverses this one (an add for a take, a take
    /// for an add, with the same `SEM_UNDO` mark so the kernel's
    /// adjustment cancels too); `None` for a wait for zero, which changed
    /// nothing.
    pub fn inverse(&self) -> Option<Op> {
        let kind = match self.kind {
            Kind::Add(n) => Kind::Take(n),
            Kind::Take(n) => Kind::Add(n),
            Kind::WaitZero => return None,
        };
        Some(Op { kind, ..*self })
    }
}

/// What `IPC_STAT` says of a set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stat {
    /// Its key ([`SysvKey::Private`] when made private).
    pub key: SysvKey,
    /// How many semaphores it has (`sem_nsems`).
    #[doc(alias = "sem_nsems")]
    pub count: u64,
    /// Its owner (`sem_perm.uid`).
    pub uid: u32,
    /// Its group.
    pub gid: u32,
    /// Its creator (`sem_perm.cuid`).
    pub creator_uid: u32,
    /// Its creator's group.
    pub creator_gid: u32,
    /// Its permission bits.
    pub mode: Mode,
    /// The last successful `semop` (`sem_otime`, whole seconds), `None`
    /// if none.
    #[doc(alias = "sem_otime")]
    pub last_op: Option<SystemTime>,
    /// Creation, or the last `IPC_SET`, `SETVAL` or `SETALL`
    /// (`sem_ctime`).
    #[doc(alias = "sem_ctime")]
    pub changed: Option<SystemTime>,
}

fn time(secs: i64) -> Option<SystemTime> {
    u64::try_from(secs)
        .ok()
        .filter(|&s| s != 0)
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
}

fn key_of(raw: i32) -> SysvKey {
    if raw == 0 {
        SysvKey::Private
    } else {
        SysvKey::Key(raw)
    }
}

/// A System V semaphore set, by identifier.
///
/// # Examples
///
/// ```
/// use unipc::name::SysvKey;
/// use unipc::sync::sysv_sem::{Op, SemaphoreSet, SetOptions};
/// use unipc::sync::Wait;
///
/// let made = SetOptions::new().values(&[1]).create(SysvKey::Private)?;
/// let other = SemaphoreSet::open_id(made.id())?;
/// other.apply(&[Op::take(0, 1).undo()], Wait::Never)?;
/// assert_eq!(made.value(0)?, 0);
/// assert_eq!(made.last_pid(0)?, Some(std::process::id()));
/// # Ok::<(), unipc::Error>(())
/// ```
#[derive(Debug)]
pub struct SemaphoreSet {
    id: c_int,
    key: SysvKey,
    count: usize,
    object: ObjectName,
    created: bool,
    guard: Guard<SetId>,
}

impl SemaphoreSet {
    fn new(id: c_int, key: SysvKey, object: ObjectName, created: bool) -> Result<SemaphoreSet> {
        let label = object.to_string();
        let st = sys::stat(id).map_err(|e| Error::os(object.clone(), "stat", e))?;
        Ok(SemaphoreSet {
            id,
            key,
            count: usize::try_from(st.nsems).unwrap_or(usize::MAX),
            object,
            created,
            guard: {
                let guard = Guard::new(
                    SetId {
                        id,
                        key: st.perm.key,
                        creator: st.perm.cuid,
                        count: st.nsems,
                    },
                    false,
                );
                if created {
                    guard.recorded(Class::SysvSem, &label, sysv_identity(id, st.perm.key))
                } else {
                    guard
                }
            },
        })
    }

    /// `SETALL`, then a `semop` that changes nothing, so `sem_otime` tells
    /// openers the values are set.
    fn initialize(&self, values: &[u16]) -> Result<()> {
        sys::set_all(self.id, values).map_err(|e| self.fail("set values", e))?;
        // +1 then -1 (or -1 then +1 at the maximum) on semaphore 0, in one
        // semop: the value ends as it was, and IPC_NOWAIT makes sure a
        // stranger's operation in between can never block the creator.
        let (first, second) = if values[0] < MAX_VALUE {
            (1, -1)
        } else {
            (-1, 1)
        };
        let mut ops = [
            sys::SemBuf {
                sem_num: 0,
                sem_op: first,
                sem_flg: sys::NOWAIT,
            },
            sys::SemBuf {
                sem_num: 0,
                sem_op: second,
                sem_flg: sys::NOWAIT,
            },
        ];
        sys::op(self.id, &mut ops, None).map_err(|e| self.fail("initialize", e))
    }

    /// `semget(key, 0, 0)` — opens the set under `key`, as it is (no wait
    /// for initialization: see the [module doc](self)); the handle never
    /// removes it.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] for [`SysvKey::Private`] (open it by
    /// identifier: [`open_id`](Self::open_id)); [`Error::Os`] with
    /// `ENOENT` when no set has the key, `EACCES` when this user may not
    /// read it.
    #[doc(alias = "semget")]
    pub fn open(key: SysvKey) -> Result<SemaphoreSet> {
        let object = Endpoint::SysvSem(key).to_string();
        let SysvKey::Key(raw) = key else {
            return Err(Error::Unsupported {
                object: object.into(),
                what: "opening by key".into(),
                reason: "a private set has no key to find it by; open it by its identifier (sysv-sem:id=N)".into(),
            });
        };
        let id = sys::get(raw, 0, 0).map_err(|err| open_error(&object, err))?;
        SemaphoreSet::new(id, key, object.into(), false)
    }

    /// Opens the set with identifier `id` (as `ipcs -s` prints it); the
    /// handle never removes it.
    ///
    /// # Errors
    /// [`Error::Os`] with `EINVAL`/`EIDRM` when no set has the identifier,
    /// `EACCES` when this user may not read it.
    pub fn open_id(id: i32) -> Result<SemaphoreSet> {
        let object: ObjectName = Endpoint::SysvSemId(id).to_string().into();
        let st = sys::stat(id).map_err(|err| {
            let gone = matches!(errno(&err), Some(libc::EINVAL | libc::EIDRM));
            let e = Error::os(object.clone(), "open", err);
            if gone {
                e.with_hint("no semaphore set has this identifier")
            } else {
                e
            }
        })?;
        SemaphoreSet::new(id, key_of(st.perm.key), object, false)
    }

    /// The identifier (`semid`), as `ipcs -s` prints it.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// The key it was created or opened by.
    pub fn key(&self) -> SysvKey {
        self.key
    }

    /// How many semaphores it has (fixed when it was made).
    pub fn count(&self) -> usize {
        self.count
    }

    /// The object as errors name it.
    pub fn object(&self) -> &ObjectName {
        &self.object
    }

    /// Whether this handle created the set (and so removes it on drop
    /// unless kept).
    pub fn created(&self) -> bool {
        self.created
    }

    /// Leaves the set in place when this handle drops.
    pub fn keep(mut self) -> Self {
        self.guard.keep();
        self
    }

    /// `semtimedop` — applies every operation of `ops` at once, or none:
    /// while one of them cannot proceed the caller waits (as `wait` says)
    /// and the values stay untouched. Duplicated indexes apply in order.
    ///
    /// A signal that interrupts the wait resumes it with the time left.
    ///
    /// # Errors
    /// Checked before the call, nothing applied: [`Error::NoSuchSemaphore`]
    /// for an index past the end; [`Error::LimitExceeded`] for a step over
    /// [`MAX_VALUE`] (and, refused by the kernel before it applies
    /// anything, for more operations than `SEMOPM`);
    /// [`Error::Unsupported`] for no operation or an add or take of 0
    /// (which `semop` would read as a wait for zero).
    /// From the wait: [`Error::WouldBlock`] for [`Wait::Never`],
    /// [`Error::TimedOut`] when [`Wait::For`] runs out, [`Error::Removed`]
    /// when the set is removed (before or while waiting); [`Error::Os`]
    /// with `ERANGE` when a result would pass [`MAX_VALUE`], `EACCES`
    /// without alter permission.
    #[doc(alias = "semop")]
    #[doc(alias = "semtimedop")]
    pub fn apply(&self, ops: &[Op], wait: Wait) -> Result<()> {
        let nowait = matches!(wait, Wait::Never);
        // A few operations (the common case) go on the stack: a busy-poll
        // calls this in a loop, and an allocation each time showed.
        let mut inline = [sys::SemBuf {
            sem_num: 0,
            sem_op: 0,
            sem_flg: 0,
        }; INLINE_OPS];
        let mut heap;
        let bufs: &mut [sys::SemBuf] = if ops.len() <= INLINE_OPS {
            self.check_count(ops)?;
            for (buf, op) in inline.iter_mut().zip(ops) {
                *buf = self.check_op(op, nowait)?;
            }
            &mut inline[..ops.len()]
        } else {
            heap = self.check_ops(ops, nowait)?;
            &mut heap
        };
        let deadline = Deadline::of(wait);
        loop {
            let timeout = match wait {
                Wait::For(_) => deadline.remaining(),
                _ => None,
            };
            match sys::op(self.id, bufs, timeout) {
                Ok(()) => return Ok(()),
                Err(err) => match errno(&err) {
                    Some(libc::EINTR) if !deadline.passed() => continue,
                    Some(libc::EINTR | libc::EAGAIN) => {
                        return Err(match wait {
                            Wait::For(timeout) => Error::TimedOut {
                                object: self.object.clone(),
                                timeout,
                            },
                            _ => Error::WouldBlock {
                                object: self.object.clone(),
                                op: "semop",
                                holder: None,
                            },
                        })
                    }
                    Some(libc::E2BIG) => return Err(self.too_many(ops.len())),
                    Some(libc::ERANGE) => {
                        return Err(Error::os(self.object.clone(), "semop", err).with_hint(
                            "a value would pass 32767 (SEMVMX), or an undo adjustment its range",
                        ))
                    }
                    _ => return Err(self.fail("semop", err)),
                },
            }
        }
    }

    /// The kernel refused `count` operations in one semop (E2BIG):
    /// the error naming SEMOPM as it is now.
    fn too_many(&self, count: usize) -> Error {
        let semopm = sys::info().map_or(500, |i| i.semopm) as u64;
        Error::LimitExceeded {
            object: self.object.clone(),
            what: "operations in one semop",
            requested: count as u64,
            limit: semopm,
            set_in: SEMOPM_SOURCE,
        }
    }

    /// The `struct sembuf`s of `ops`, refused before any call when they
    /// cannot be right.
    fn check_ops(&self, ops: &[Op], nowait: bool) -> Result<Vec<sys::SemBuf>> {
        self.check_count(ops)?;
        ops.iter().map(|op| self.check_op(op, nowait)).collect()
    }

    /// Refuses a semop of no operations (SEMOPM is the kernel's to check:
    /// reading it is a system call, and E2BIG applies nothing).
    fn check_count(&self, ops: &[Op]) -> Result<()> {
        if ops.is_empty() {
            return Err(Error::Unsupported {
                object: self.object.clone(),
                what: "a semop of no operations".into(),
                reason: "give at least one operation".into(),
            });
        }
        Ok(())
    }

    /// The `struct sembuf` of `op`, refused when it cannot be right.
    fn check_op(&self, op: &Op, nowait: bool) -> Result<sys::SemBuf> {
        self.check_index(op.index)?;
        let step = op.delta().unsigned_abs();
        if step > u32::from(MAX_VALUE) {
            return Err(Error::LimitExceeded {
                object: self.object.clone(),
                what: "step of one operation",
                requested: step.into(),
                limit: MAX_VALUE.into(),
                set_in: SEMVMX_SOURCE,
            });
        }
        if step == 0 && op.kind != Kind::WaitZero {
            return Err(Error::Unsupported {
                object: self.object.clone(),
                what: "adding or taking 0".into(),
                reason: "semop reads 0 as a wait for zero: use Op::wait_zero for that".into(),
            });
        }
        let mut flags = 0;
        if op.undo {
            flags |= sys::UNDO;
        }
        if nowait {
            flags |= sys::NOWAIT;
        }
        Ok(sys::SemBuf {
            sem_num: op.index as u16,
            sem_op: op.delta() as i16,
            sem_flg: flags,
        })
    }

    fn check_index(&self, index: usize) -> Result<u16> {
        if index >= self.count {
            return Err(Error::NoSuchSemaphore {
                object: self.object.clone(),
                index: index as u64,
                count: self.count as u64,
            });
        }
        // The count fits: the kernel's sem_nsems is at most SEMMSL, and
        // SEMMSL at most 32000.
        Ok(index as u16)
    }

    /// `GETVAL` — the value of semaphore `index`.
    ///
    /// # Errors
    /// [`Error::NoSuchSemaphore`]; [`Error::Removed`] when the set is gone;
    /// [`Error::Os`] with `EACCES` without read permission.
    #[doc(alias = "GETVAL")]
    pub fn value(&self, index: usize) -> Result<u16> {
        let n = self.check_index(index)?;
        sys::get_value(self.id, n).map_err(|e| self.fail("get value", e))
    }

    /// `SETVAL` — sets semaphore `index`, wakes the waiters it satisfies
    /// and clears every process's undo adjustment of it.
    ///
    /// # Errors
    /// [`Error::NoSuchSemaphore`]; [`Error::LimitExceeded`] over
    /// [`MAX_VALUE`]; [`Error::Os`] with `EACCES` without alter permission.
    #[doc(alias = "SETVAL")]
    pub fn set_value(&self, index: usize, value: u16) -> Result<()> {
        let n = self.check_index(index)?;
        self.check_value(value)?;
        sys::set_value(self.id, n, value).map_err(|e| self.fail("set value", e))
    }

    fn check_value(&self, value: u16) -> Result<()> {
        if value > MAX_VALUE {
            return Err(Error::LimitExceeded {
                object: self.object.clone(),
                what: "value",
                requested: value.into(),
                limit: MAX_VALUE.into(),
                set_in: SEMVMX_SOURCE,
            });
        }
        Ok(())
    }

    /// `GETALL` — every value, in index order.
    ///
    /// # Errors
    /// [`Error::Removed`] when the set is gone; [`Error::Os`] with
    /// `EACCES` without read permission.
    #[doc(alias = "GETALL")]
    pub fn values(&self) -> Result<Vec<u16>> {
        let mut values = vec![0; self.count];
        sys::get_all(self.id, &mut values).map_err(|e| self.fail("get values", e))?;
        Ok(values)
    }

    /// `SETALL` — sets every value at once (one per semaphore), wakes the
    /// waiters that satisfies and clears every undo adjustment.
    ///
    /// # Errors
    /// [`Error::Unsupported`] when `values` does not have one value per
    /// semaphore; [`Error::LimitExceeded`] over [`MAX_VALUE`].
    #[doc(alias = "SETALL")]
    pub fn set_values(&self, values: &[u16]) -> Result<()> {
        if values.len() != self.count {
            return Err(Error::Unsupported {
                object: self.object.clone(),
                what: format!(
                    "{} values for a set of {} semaphores",
                    values.len(),
                    self.count
                ),
                reason: "give one value per semaphore".into(),
            });
        }
        for &v in values {
            self.check_value(v)?;
        }
        sys::set_all(self.id, values).map_err(|e| self.fail("set values", e))
    }

    /// `GETNCNT` — how many processes wait for semaphore `index` to grow
    /// (blocked in a take).
    ///
    /// # Errors
    /// As [`value`](Self::value).
    #[doc(alias = "GETNCNT")]
    pub fn ncnt(&self, index: usize) -> Result<u32> {
        let n = self.check_index(index)?;
        sys::ncnt(self.id, n).map_err(|e| self.fail("get ncnt", e))
    }

    /// `GETZCNT` — how many processes wait for semaphore `index` to be
    /// zero.
    ///
    /// # Errors
    /// As [`value`](Self::value).
    #[doc(alias = "GETZCNT")]
    pub fn zcnt(&self, index: usize) -> Result<u32> {
        let n = self.check_index(index)?;
        sys::zcnt(self.id, n).map_err(|e| self.fail("get zcnt", e))
    }

    /// `GETPID` — the last process to operate on semaphore `index`
    /// (`None` before any operation). An undo the kernel applies at a
    /// process's exit counts as that process's operation.
    ///
    /// # Errors
    /// As [`value`](Self::value).
    #[doc(alias = "GETPID")]
    pub fn last_pid(&self, index: usize) -> Result<Option<u32>> {
        let n = self.check_index(index)?;
        let pid = sys::last_pid(self.id, n).map_err(|e| self.fail("get pid", e))?;
        Ok((pid != 0).then_some(pid))
    }

    /// `IPC_STAT` — key, owner, creator, mode, size and times.
    ///
    /// # Errors
    /// [`Error::Removed`] when it is gone, [`Error::Os`] with `EACCES`
    /// when this user may not read it.
    #[doc(alias = "IPC_STAT")]
    pub fn stat(&self) -> Result<Stat> {
        let st = sys::stat(self.id).map_err(|e| self.fail("stat", e))?;
        Ok(Stat {
            key: key_of(st.perm.key),
            count: st.nsems,
            uid: st.perm.uid,
            gid: st.perm.gid,
            creator_uid: st.perm.cuid,
            creator_gid: st.perm.cgid,
            mode: Mode::from_bits_truncate(st.perm.mode()),
            last_op: time(st.otime),
            changed: time(st.ctime),
        })
    }

    /// `IPC_SET` — changes the permission bits.
    ///
    /// # Errors
    /// [`Error::Os`] with `EPERM` unless this user owns or created it.
    #[doc(alias = "IPC_SET")]
    pub fn set_mode(&self, mode: Mode) -> Result<()> {
        sys::set_mode(self.id, mode.bits()).map_err(|e| self.fail("set mode", e))
    }

    /// `IPC_RMID` — removes the set at once: every process waiting on it
    /// gets [`Error::Removed`].
    ///
    /// # Errors
    /// [`Error::Os`] with `EPERM` unless this user owns or created it;
    /// [`Error::Removed`] when it is already gone.
    #[doc(alias = "IPC_RMID")]
    pub fn remove(&self) -> Result<()> {
        let forget = sys::stat(self.id).ok().map(|st| {
            crate::creator::Forget::sysv(
                crate::creator::Class::SysvSem,
                self.id,
                st.perm.key,
                st.perm.cuid,
            )
        });
        sys::remove(self.id).map_err(|e| self.fail("remove", e))?;
        crate::creator::Forget::done(forget);
        Ok(())
    }

    /// Spawns `command` to run while this process holds operations made
    /// with [`Op::undo`] on its behalf: the kernel reverts those when this
    /// process exits, so the child is made to die with it
    /// (`PR_SET_PDEATHSIG` = `SIGKILL`), and is not run at all if this
    /// process is gone before it starts. Without it, a holder killed with
    /// `SIGKILL` would release the semaphore while its command still ran.
    ///
    /// The death signal follows the *thread* that spawns: call this from a
    /// thread that lives as long as the child (the main thread). A fork
    /// does not inherit `SEM_UNDO` adjustments, so the operations stay
    /// this process's, not the child's.
    ///
    /// # Errors
    /// [`Error::Os`] naming the program when it cannot be run (`ENOENT`,
    /// `EACCES`).
    ///
    /// # Examples
    /// ```
    /// use std::process::Command;
    /// use unipc::name::SysvKey;
    /// use unipc::sync::sysv_sem::{Op, SetOptions};
    /// use unipc::sync::Wait;
    ///
    /// let set = SetOptions::new().values(&[1]).create(SysvKey::Private)?;
    /// set.apply(&[Op::take(0, 1).undo()], Wait::Forever)?;
    /// let status = set.spawn_holding(&mut Command::new("true"))?.wait()?;
    /// assert!(status.success());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn_holding(
        &self,
        command: &mut std::process::Command,
    ) -> Result<std::process::Child> {
        sys::spawn_dying_with_parent(command).map_err(|e| {
            Error::os(
                format!("{} running {:?}", self.object, command.get_program()),
                "spawn",
                e,
            )
        })
    }

    fn fail(&self, op: &'static str, err: io::Error) -> Error {
        match errno(&err) {
            // EINVAL on an identifier that worked before: the set is gone.
            Some(libc::EIDRM | libc::EINVAL) => Error::Removed {
                object: self.object.clone(),
            },
            Some(libc::EFBIG) => Error::os(self.object.clone(), op, err)
                .with_hint("a semaphore index is past the end of the set"),
            Some(libc::ENOSPC) if op == "semop" => Error::os(self.object.clone(), op, err)
                .with_hint("the system has no room for another SEM_UNDO record"),
            _ => Error::os(self.object.clone(), op, err),
        }
    }
}

/// A set's identity, for its [`Guard`]: the identifier with the key,
/// creator and size read when it was made. Not `sem_ctime`, which every
/// `SETVAL`, `SETALL` and `IPC_SET` moves.
#[derive(Debug)]
struct SetId {
    id: c_int,
    key: c_int,
    creator: u32,
    count: u64,
}

impl Made for SetId {
    fn is_still_ours(&self) -> io::Result<bool> {
        Ok(match sys::stat(self.id) {
            Ok(found) => {
                found.perm.key == self.key
                    && found.perm.cuid == self.creator
                    && found.nsems == self.count
            }
            Err(err) => !matches!(errno(&err), Some(libc::EIDRM | libc::EINVAL)),
        })
    }

    fn remove(&self) -> io::Result<()> {
        sys::remove(self.id)
    }
}

/// The registry entry of System V semaphore sets.
pub static FACILITY: Facility = Facility {
    name: "sysv-sem",
    scheme: Some("sysv-sem"),
    summary: "System V semaphore sets: N counters under one numeric key, changed together by atomic semop",
    addressing: "sysv-sem:KEY (decimal, 0x-hex, or private) or sysv-sem:id=N",
    properties: Properties {
        shape: Shape::Synchronization,
        direction: Direction::TwoWay,
        tags: Tags::None,
        destructive_read: false,
        // No data to peek at: GETVAL reads a counter, not a message.
        peek: false,
        naming: Naming::SysvKey,
        reach: Reach::Host,
        persistence: Persistence::Kernel,
        permissions: "IPC permission bits and owner (ipcs -s): read to look, write to operate",
        reliable: true,
        after_crash:
            "operations made with SEM_UNDO are reversed by the kernel when the process dies (SIGKILL included); others stay as left, and the set stays until removed",
    },
    limits: || {
        let mut limits = Vec::new();
        let text = std::fs::read_to_string("/proc/sys/kernel/sem").ok();
        let fields: Vec<&str> = text
            .as_deref()
            .map(|t| t.split_whitespace().collect())
            .unwrap_or_default();
        for (i, (name, unit)) in [
            ("SEMMSL", " semaphores per set"),
            ("SEMMNS", " semaphores in all sets"),
            ("SEMOPM", " operations per semop"),
            ("SEMMNI", " sets"),
        ]
        .into_iter()
        .enumerate()
        {
            limits.push(LiveLimit {
                name,
                value: fields
                    .get(i)
                    .map_or_else(|| "unreadable".to_owned(), |v| format!("{v}{unit}")),
                source: "/proc/sys/kernel/sem",
            });
        }
        limits.push(LiveLimit {
            name: "SEMVMX",
            value: format!("{MAX_VALUE} per semaphore"),
            source: "the kernel (fixed)",
        });
        limits
    },
    max_message: || None,
    #[cfg(feature = "bench")]
    connector: None,
};
