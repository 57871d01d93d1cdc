//! File locks between processes: `flock(2)` whole-file locks and
//! `fcntl(2)` byte-range record locks, classic (process-owned) or
//! open-file-description (OFD) owned.
//!
//! Three kinds, one API ([`LockOptions`]):
//!
//! | kind | call | owner | range | released when |
//! |---|---|---|---|---|
//! | [`LockKind::Ofd`] | `F_OFD_SETLK(W)` | the open file description | bytes | its last descriptor closes |
//! | [`LockKind::Posix`] | `F_SETLK(W)` | the process | bytes | the process closes **any** descriptor of the file |
//! | [`LockKind::Flock`] | `flock` | the open file description | whole file | its last descriptor closes |
//!
//! On Linux, flock locks and fcntl locks never see each other (a flock lock
//! does not block an fcntl lock on the same file, nor the reverse), while
//! OFD and classic POSIX locks conflict with each other as any two fcntl
//! locks do. All of them are advisory: they bind only processes that ask.
//!
//! # The classic trap
//! A classic POSIX lock belongs to the process and the file, not to the
//! descriptor it was taken through: closing **any** descriptor of that file
//! in the process — one a library opened to read a config, one `File`
//! dropped in passing — releases every POSIX lock the process holds on it,
//! silently. Two guards of one process on overlapping ranges also share
//! bytes: releasing one releases the overlap. OFD locks have neither
//! problem (a descriptor closed elsewhere does not touch them), which is
//! why [`LockKind::Ofd`] is the default; `tests/it/lock.rs` shows both
//! behaviours from a second process.
//!
//! # Waiting
//! [`Wait::Forever`] blocks in the kernel (`F_SETLKW`, `F_OFD_SETLKW`,
//! `flock`), which queues the waiter and, for classic POSIX locks only,
//! detects a cycle of waiting processes and fails one with `EDEADLK`
//! ([`Error::Deadlock`]); OFD and flock waiters get no detection: a cycle
//! waits forever. [`Wait::Never`] tries once: [`Error::WouldBlock`] with
//! the holder's pid where the kernel reports it (`F_GETLK` does for a
//! classic lock; an OFD holder is reported as pid -1, so `holder` is
//! `None`; flock has no query, so `None` too: [`LockOptions::test`] finds
//! both from `/proc`).
//!
//! The kernel has no timed lock call, so [`Wait::For`] polls: a
//! non-blocking attempt, then a sleep that doubles from 1 ms up to 20 ms,
//! bounded by one deadline until it is reached (a timeout too long for
//! the clock to represent blocks as `Wait::Forever` does). The
//! alternatives were worse: interrupting `F_SETLKW` with a timer signal
//! needs a process-wide handler and races with the signal arriving just
//! before the call; a helper thread blocked in `F_SETLKW` cannot be
//! cancelled without such a signal and might take the lock after the
//! caller gave up. The price of polling: a timed waiter is not queued, so
//! it can lose to waiters blocked in the kernel and notices a release up
//! to 20 ms late, and it gets no deadlock detection (a cycle times out).
//!
//! # After a crash
//! The kernel releases every lock of a process that exits or is killed
//! (classic locks with the process; OFD and flock locks with the last
//! descriptor of their open file description, which may live on in a child
//! that inherited it: the descriptors here are close-on-exec, but not
//! close-on-fork).
//!
//! ```
//! use unipc::sync::lock::{LockKind, LockMode, LockOptions, Range};
//! use unipc::sync::Wait;
//!
//! let dir = tempfile::tempdir()?;
//! let file = std::fs::File::create(dir.path().join("db.lock"))?;
//! let guard = LockOptions::new()
//!     .kind(LockKind::Ofd)
//!     .mode(LockMode::Exclusive)
//!     .range(Range::new(0, 4096))
//!     .lock(&file, Wait::Never)?;
//! // ... bytes 0..4096 are ours until the guard drops.
//! drop(guard);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # References
//! fcntl(2) "Advisory record locking" and "Open file description locks",
//! flock(2), proc_locks(5).

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use crate::deadline::Deadline;
use crate::error::{Error, ObjectName, Result};
use crate::facility::{Direction, Facility, Naming, Persistence, Properties, Reach, Shape, Tags};
use crate::sync::Wait;
use crate::sys::lock::{self as sys, LockType, Owner};

/// Which kernel lock a [`LockOptions`] takes.
///
/// ```
/// use unipc::sync::lock::LockKind;
///
/// assert_eq!("ofd".parse::<LockKind>(), Ok(LockKind::Ofd));
/// assert_eq!(LockKind::Posix.to_string(), "posix");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LockKind {
    /// An open-file-description record lock (`F_OFD_SETLK`): byte ranges,
    /// owned by the open file description, immune to the classic trap.
    #[default]
    Ofd,
    /// A classic POSIX record lock (`F_SETLK`): byte ranges, owned by the
    /// process, dropped when the process closes any descriptor of the file.
    Posix,
    /// A `flock(2)` lock: the whole file, owned by the open file
    /// description; invisible to fcntl locks on Linux.
    Flock,
}

impl LockKind {
    /// The kind's name, as the CLI takes it: `ofd`, `posix`, `flock`.
    pub fn name(self) -> &'static str {
        match self {
            LockKind::Ofd => "ofd",
            LockKind::Posix => "posix",
            LockKind::Flock => "flock",
        }
    }
}

impl fmt::Display for LockKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for LockKind {
    type Err = String;
    fn from_str(text: &str) -> std::result::Result<LockKind, String> {
        match text {
            "ofd" => Ok(LockKind::Ofd),
            "posix" => Ok(LockKind::Posix),
            "flock" => Ok(LockKind::Flock),
            _ => Err(format!("{text:?} is not a lock kind: ofd, posix or flock")),
        }
    }
}

/// Shared (read) or exclusive (write).
///
/// ```
/// use unipc::sync::lock::LockMode;
///
/// assert_eq!(LockMode::default(), LockMode::Exclusive);
/// assert_eq!(LockMode::Shared.to_string(), "shared");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LockMode {
    /// Many holders at once (`F_RDLCK`, `LOCK_SH`); an fcntl read lock
    /// needs the file open for reading.
    Shared,
    /// One holder (`F_WRLCK`, `LOCK_EX`); an fcntl write lock needs the
    /// file open for writing.
    #[default]
    Exclusive,
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LockMode::Shared => "shared",
            LockMode::Exclusive => "exclusive",
        })
    }
}

/// A byte range of a file: `len` bytes from `start`, or (`len: None`)
/// from `start` to the end of the file however far it grows.
///
/// ```
/// use unipc::sync::lock::Range;
///
/// assert_eq!(Range::new(10, 5).to_string(), "bytes 10..15");
/// assert_eq!(Range::from_offset(10).to_string(), "bytes 10..EOF");
/// assert!(Range::new(0, 10).overlaps(&Range::new(9, 1)));
/// assert!(!Range::new(0, 10).overlaps(&Range::new(10, 1)));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Range {
    /// The first byte.
    pub start: u64,
    /// How many bytes; `None`: to the end of the file. `Some(0)` is
    /// refused when locking (fcntl would read it as "to the end").
    pub len: Option<u64>,
}

impl Range {
    /// The whole file, however far it grows.
    pub const WHOLE: Range = Range {
        start: 0,
        len: None,
    };

    /// `len` bytes from `start`.
    pub fn new(start: u64, len: u64) -> Range {
        Range {
            start,
            len: Some(len),
        }
    }

    /// From `start` to the end of the file, however far it grows.
    pub fn from_offset(start: u64) -> Range {
        Range { start, len: None }
    }

    /// One past the last byte; `None` for a range to the end of the file.
    pub fn end(&self) -> Option<u64> {
        self.len.map(|len| self.start.saturating_add(len))
    }

    /// Whether the two ranges share a byte.
    pub fn overlaps(&self, other: &Range) -> bool {
        let before = |a: &Range, b: &Range| a.end().is_some_and(|end| end <= b.start);
        !before(self, other) && !before(other, self)
    }

    /// The range as fcntl takes it (`l_start`, `l_len`, 0 meaning to the
    /// end), refused when fcntl cannot express it.
    /// `object` names the file, called only for an error: reading the path
    /// from /proc would cost more than the lock itself.
    fn to_fcntl(self, object: impl Fn() -> ObjectName) -> Result<(i64, i64)> {
        let too_far = |requested: u64| Error::LimitExceeded {
            object: object(),
            what: "lock range end",
            requested,
            limit: i64::MAX as u64,
            set_in: "off_t, the kernel's file offset type",
        };
        let start = i64::try_from(self.start).map_err(|_| too_far(self.start))?;
        match self.len {
            None => Ok((start, 0)),
            Some(0) => Err(Error::Unsupported {
                object: object(),
                what: "a lock range of 0 bytes".to_owned(),
                reason: "give a length of at least 1, or none for a range to the end of the file"
                    .to_owned(),
            }),
            Some(len) => {
                let end = self.start.saturating_add(len);
                if end > i64::MAX as u64 {
                    return Err(too_far(end));
                }
                Ok((start, len as i64))
            }
        }
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.end() {
            Some(end) => write!(f, "bytes {}..{end}", self.start),
            None => write!(f, "bytes {}..EOF", self.start),
        }
    }
}

/// A lock held by another owner that conflicts with the one asked, as
/// [`LockOptions::test`] reports it.
///
/// ```
/// use unipc::sync::lock::{LockOptions, Range};
///
/// let dir = tempfile::tempdir()?;
/// let file = std::fs::File::create(dir.path().join("free"))?;
/// // Nobody else holds anything on a file just made.
/// assert!(LockOptions::new().range(Range::new(0, 1)).test(&file)?.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Holder {
    /// The pid of a process holding it, where it can be found: the kernel
    /// reports a classic lock's pid; an OFD lock's holder is looked up in
    /// `/proc/*/fdinfo` (a process that has the open file description open;
    /// `None` when none readable by this user does); a flock lock's pid is
    /// the one `/proc/locks` records, the process that took it.
    pub pid: Option<u32>,
    /// Which kind of lock it is.
    pub kind: LockKind,
    /// Shared or exclusive.
    pub mode: LockMode,
    /// The bytes it covers.
    pub range: Range,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "pid {pid}")?,
            None => f.write_str("an unknown process")?,
        }
        let article = match self.mode {
            LockMode::Shared => "a",
            LockMode::Exclusive => "an",
        };
        write!(
            f,
            " holds {article} {} {} lock on {}",
            self.mode, self.kind, self.range
        )
    }
}

/// How to lock a file: the kind, shared or exclusive, and the range.
/// Builder by value; [`lock`](LockOptions::lock) and
/// [`test`](LockOptions::test) take `&self`, so one builder serves many
/// calls.
///
/// ```
/// use unipc::sync::lock::{LockKind, LockMode, LockOptions, Range};
/// use unipc::sync::Wait;
/// use std::time::Duration;
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("jobs.lock");
/// let options = LockOptions::new().kind(LockKind::Posix).mode(LockMode::Shared);
/// let file = options.open(&path)?;
/// let guard = options.range(Range::from_offset(100)).lock(&file, Wait::For(Duration::from_secs(1)))?;
/// assert_eq!(guard.range(), Range::from_offset(100));
/// guard.unlock()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct LockOptions {
    kind: LockKind,
    mode: LockMode,
    range: Range,
    name: Option<ObjectName>,
}

impl LockOptions {
    /// An exclusive OFD lock on the whole file.
    pub fn new() -> LockOptions {
        LockOptions::default()
    }

    /// The kind of lock (default [`LockKind::Ofd`]).
    pub fn kind(mut self, kind: LockKind) -> Self {
        self.kind = kind;
        self
    }

    /// Shared or exclusive (default exclusive).
    pub fn mode(mut self, mode: LockMode) -> Self {
        self.mode = mode;
        self
    }

    /// The bytes to lock (default the whole file). A flock lock takes only
    /// [`Range::WHOLE`].
    pub fn range(mut self, range: Range) -> Self {
        self.range = range;
        self
    }

    /// The name errors give the file (default: its path, read from
    /// `/proc/self/fd`).
    pub fn name(mut self, name: impl Into<ObjectName>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// `open(path, O_CREAT | O_NOFOLLOW | O_CLOEXEC)` — opens `path` for
    /// this lock: read-write for an exclusive fcntl lock (which needs it),
    /// read-only otherwise; created with mode 0644 less the umask when
    /// missing, as flock(1) creates one. A directory is opened read-only.
    ///
    /// # Errors
    /// A symbolic link in the last component is refused (`ELOOP`): unlike
    /// flock(1), which follows it, so that a link planted in a shared
    /// directory cannot make a privileged caller create or lock a file
    /// elsewhere. Anything but a regular file or a directory (a FIFO that
    /// would block the open, a device) is [`Error::WrongType`].
    pub fn open(&self, path: impl AsRef<Path>) -> Result<std::fs::File> {
        let write = self.kind != LockKind::Flock && self.mode == LockMode::Exclusive;
        self.open_file(path.as_ref(), write, true)
    }

    /// `open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)` — opens an existing
    /// `path` read-only for [`test`](LockOptions::test), which needs no
    /// access: it creates nothing and works on a file this user may only
    /// read.
    ///
    /// # Errors
    /// As [`open`](LockOptions::open); a missing file is `ENOENT`.
    pub fn open_for_test(&self, path: impl AsRef<Path>) -> Result<std::fs::File> {
        self.open_file(path.as_ref(), false, false)
    }

    fn open_file(&self, path: &Path, write: bool, create: bool) -> Result<std::fs::File> {
        let object = self
            .name
            .clone()
            .unwrap_or_else(|| ObjectName::from(path.display().to_string()));
        let fd: OwnedFd =
            sys::open(path, write, create).map_err(|e| Error::os(&object, "open", e))?;
        let file_type = sys::file_type(fd.as_fd()).map_err(|e| Error::os(&object, "fstat", e))?;
        match file_type {
            rustix::fs::FileType::RegularFile | rustix::fs::FileType::Directory => {}
            other => {
                return Err(Error::WrongType {
                    object,
                    expected: "a regular file or a directory",
                    found: crate::sys::fd::file_type_name(other),
                })
            }
        }
        Ok(std::fs::File::from(fd))
    }

    /// `fcntl(F_OFD_SETLK(W) / F_SETLK(W))` or `flock` — takes the lock on
    /// `file`, waiting as `wait` says, and returns the guard that releases
    /// it on drop. See the module docs for how each [`Wait`] waits.
    ///
    /// # Errors
    /// [`Error::WouldBlock`] (with `Wait::Never`; the holder's pid when
    /// `F_GETLK` reports one), [`Error::TimedOut`] (with `Wait::For`),
    /// [`Error::Deadlock`] (a classic POSIX lock with `Wait::Forever` whose
    /// wait would close a cycle), [`Error::Unsupported`] (a flock lock on
    /// a part of the file, an empty range), [`Error::LimitExceeded`] (a
    /// range past `off_t`), [`Error::Os`] (`EBADF`: the file is not open
    /// for the access the lock needs).
    pub fn lock<'f, F: AsFd + ?Sized>(&self, file: &'f F, wait: Wait) -> Result<LockGuard<'f>> {
        let fd = file.as_fd();
        let plan = self.plan(fd)?;
        let deadline = Deadline::of(wait);
        // Wait::Forever, and a Wait::For too long to represent, block in
        // the kernel; the rest poll.
        let blocking = deadline.is_never();
        let mut pause = Duration::from_millis(1);
        loop {
            match plan.attempt(fd, blocking) {
                Ok(()) => {
                    return Ok(LockGuard {
                        fd,
                        kind: self.kind,
                        mode: self.mode,
                        range: self.range,
                        fcntl: plan.fcntl,
                    })
                }
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) if is_busy(e) && !blocking => {}
                Err(rustix::io::Errno::DEADLK) => {
                    return Err(Error::Deadlock {
                        object: self.object(fd),
                        start: self.range.start,
                        len: self.range.len,
                        holder: plan.holder_pid(fd),
                    })
                }
                Err(e) => return Err(self.os_error(fd, "lock", e)),
            }
            // Held, and not blocking: Wait::Never or a Wait::For.
            let Wait::For(timeout) = wait else {
                return Err(Error::WouldBlock {
                    object: self.object(fd),
                    op: "lock",
                    holder: plan.holder_pid(fd),
                });
            };
            let left = deadline.remaining().unwrap_or_default();
            if left.is_zero() {
                return Err(Error::TimedOut {
                    object: self.object(fd),
                    timeout,
                });
            }
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }

    /// `fcntl(F_OFD_GETLK / F_GETLK)`, or `/proc/locks` for flock — who
    /// holds a lock that conflicts with the one these options would take
    /// on `file`; `None` when it is free. Changes nothing.
    ///
    /// `F_GETLK` ignores this process's own classic locks, `F_OFD_GETLK`
    /// the locks of `file`'s own open file description, and a flock query
    /// ignores the lock `file` itself holds. An OFD holder's pid (which the
    /// kernel reports as -1) is looked up in `/proc/*/fdinfo`, reading one
    /// file per descriptor on the system; flock locks have no query call,
    /// so `/proc/locks` is read (without it, [`Error::Unsupported`]).
    ///
    /// # Errors
    /// As [`lock`](LockOptions::lock) for the range; [`Error::Os`] when
    /// the query fails.
    pub fn test<F: AsFd + ?Sized>(&self, file: &F) -> Result<Option<Holder>> {
        let fd = file.as_fd();
        let plan = self.plan(fd)?;
        let identity = sys::identity(fd).map_err(|e| self.os_error(fd, "fstat", e))?;
        let Some((owner, _, start, len)) = plan.fcntl else {
            return self.flock_holder(fd, identity);
        };
        let conflict = sys::get(fd, owner, self.lock_type(), start, len)
            .map_err(|e| self.os_error(fd, "test", e))?;
        let Some(conflict) = conflict else {
            return Ok(None);
        };
        let range = Range {
            start: conflict.start,
            len: (conflict.len != 0).then_some(conflict.len),
        };
        let mode = if conflict.write {
            LockMode::Exclusive
        } else {
            LockMode::Shared
        };
        if conflict.pid > 0 {
            return Ok(Some(Holder {
                pid: Some(conflict.pid as u32),
                kind: LockKind::Posix,
                mode,
                range,
            }));
        }
        // An OFD lock: find a process whose descriptor lists it.
        let own = std::process::id();
        let pid = crate::sys::proc::descriptor_locks()
            .into_iter()
            .filter(|(pid, _)| *pid != own)
            .filter_map(|(pid, line)| Some((pid, ProcLock::parse(&line)?)))
            .find(|(_, lock)| {
                lock.kind == LockKind::Ofd
                    && lock.identity == identity
                    && lock.range == range
                    && lock.mode == mode
            })
            .map(|(pid, _)| pid);
        Ok(Some(Holder {
            pid,
            kind: LockKind::Ofd,
            mode,
            range,
        }))
    }

    fn flock_holder(
        &self,
        fd: BorrowedFd<'_>,
        identity: (u32, u32, u64),
    ) -> Result<Option<Holder>> {
        let Some(table) = crate::sys::proc::locks() else {
            return Err(Error::Unsupported {
                object: self.object(fd),
                what: "testing a flock lock".to_owned(),
                reason: "flock(2) has no query, and /proc/locks cannot be read".to_owned(),
            });
        };
        // The lock `file`'s own description holds is not a conflict.
        let mut own: Vec<ProcLock> = crate::sys::proc::own_descriptor_locks(fd.as_raw_fd())
            .iter()
            .filter_map(|line| ProcLock::parse(line))
            .filter(|lock| lock.kind == LockKind::Flock)
            .collect();
        for lock in table.lines().filter_map(ProcLock::parse) {
            if lock.kind != LockKind::Flock || lock.identity != identity {
                continue;
            }
            if let Some(i) = own.iter().position(|o| *o == lock) {
                own.remove(i);
                continue;
            }
            if lock.mode == LockMode::Exclusive || self.mode == LockMode::Exclusive {
                return Ok(Some(Holder {
                    pid: u32::try_from(lock.pid).ok().filter(|&p| p > 0),
                    kind: LockKind::Flock,
                    mode: lock.mode,
                    range: Range::WHOLE,
                }));
            }
        }
        Ok(None)
    }

    fn lock_type(&self) -> LockType {
        match self.mode {
            LockMode::Shared => LockType::Read,
            LockMode::Exclusive => LockType::Write,
        }
    }

    /// Checks the options and works out the call.
    fn plan(&self, fd: BorrowedFd<'_>) -> Result<Plan> {
        let owner = match self.kind {
            LockKind::Flock => {
                if self.range != Range::WHOLE {
                    return Err(Error::Unsupported {
                        object: self.object(fd),
                        what: format!("a flock lock on {}", self.range),
                        reason:
                            "flock(2) locks the whole file; take an ofd or posix lock for a range"
                                .to_owned(),
                    });
                }
                return Ok(Plan {
                    fcntl: None,
                    shared: self.mode == LockMode::Shared,
                });
            }
            LockKind::Ofd => Owner::Description,
            LockKind::Posix => Owner::Process,
        };
        let (start, len) = self.range.to_fcntl(|| self.object(fd))?;
        Ok(Plan {
            fcntl: Some((owner, self.lock_type(), start, len)),
            shared: self.mode == LockMode::Shared,
        })
    }

    fn object(&self, fd: BorrowedFd<'_>) -> ObjectName {
        match &self.name {
            Some(name) => name.clone(),
            None => object_of(fd),
        }
    }

    fn os_error(&self, fd: BorrowedFd<'_>, op: &'static str, errno: rustix::io::Errno) -> Error {
        let err = Error::os(self.object(fd), op, errno);
        match errno {
            rustix::io::Errno::BADF => err.with_hint(
                "an exclusive (write) fcntl lock needs the file open for writing, a shared (read) one for reading",
            ),
            rustix::io::Errno::NOLCK => err.with_hint("the kernel's table of record locks is full"),
            _ => err,
        }
    }
}

/// The longest sleep between two attempts of a timed lock.
const MAX_PAUSE: Duration = Duration::from_millis(20);

/// The call a lock makes: fcntl (owner, type, start, len) or flock.
struct Plan {
    fcntl: Option<(Owner, LockType, i64, i64)>,
    shared: bool,
}

impl Plan {
    fn attempt(&self, fd: BorrowedFd<'_>, wait: bool) -> rustix::io::Result<()> {
        match self.fcntl {
            Some((owner, kind, start, len)) => sys::set(fd, owner, kind, start, len, wait),
            None => sys::flock(fd, self.shared, wait),
        }
    }

    /// The pid `F_GETLK` reports for a conflicting lock; `None` for an OFD
    /// holder (-1), a flock lock (no query), or a lock gone meanwhile.
    fn holder_pid(&self, fd: BorrowedFd<'_>) -> Option<u32> {
        let (owner, kind, start, len) = self.fcntl?;
        let conflict = sys::get(fd, owner, kind, start, len).ok()??;
        u32::try_from(conflict.pid).ok().filter(|&pid| pid > 0)
    }
}

fn is_busy(errno: rustix::io::Errno) -> bool {
    // fcntl reports a conflict as EAGAIN or EACCES (POSIX allows both).
    errno == rustix::io::Errno::AGAIN || errno == rustix::io::Errno::ACCESS
}

/// The file's path, for errors, or `fd N` when `/proc` does not say.
fn object_of(fd: BorrowedFd<'_>) -> ObjectName {
    let raw = fd.as_raw_fd();
    match std::fs::read_link(format!("/proc/self/fd/{raw}")) {
        Ok(path) => ObjectName::from(path.display().to_string()),
        Err(_) => ObjectName::from(format!("fd {raw}")),
    }
}

/// A held lock, released when dropped (or by [`unlock`](LockGuard::unlock)).
/// It borrows the file it was taken through: for a classic POSIX lock that
/// is not enough to keep it — closing any other descriptor of the file in
/// this process releases it (see the module docs).
///
/// ```
/// use unipc::sync::lock::{LockKind, LockOptions};
/// use unipc::sync::Wait;
///
/// let dir = tempfile::tempdir()?;
/// let file = std::fs::File::create(dir.path().join("f"))?;
/// let guard = LockOptions::new().kind(LockKind::Flock).lock(&file, Wait::Forever)?;
/// assert_eq!(guard.kind(), LockKind::Flock);
/// drop(guard); // released
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'f> {
    fd: BorrowedFd<'f>,
    kind: LockKind,
    mode: LockMode,
    range: Range,
    fcntl: Option<(Owner, LockType, i64, i64)>,
}

impl LockGuard<'_> {
    /// The kind of lock held.
    pub fn kind(&self) -> LockKind {
        self.kind
    }

    /// Shared or exclusive.
    pub fn mode(&self) -> LockMode {
        self.mode
    }

    /// The bytes held.
    pub fn range(&self) -> Range {
        self.range
    }

    /// `fcntl(F_UNLCK)` or `flock(LOCK_UN)` — releases the lock now,
    /// reporting a failure that drop would ignore.
    ///
    /// # Errors
    /// [`Error::Os`] from the call.
    pub fn unlock(self) -> Result<()> {
        let result = self
            .release()
            .map_err(|e| Error::os(object_of(self.fd), "unlock", e));
        // Released (or failed to be) once: drop must not try again.
        std::mem::forget(self);
        result
    }

    /// Starts `command` while the lock is held, with no signal blocked
    /// (a caller that blocks signals to take them on a thread does not pass
    /// the block on, so what it forwards reaches the command). The lock's
    /// descriptor is not inherited when, as [`LockOptions::open`] opens it,
    /// it is close-on-exec: the lock ends with this process or the guard.
    /// So that the command never runs on without it, the command is
    /// killed (`SIGKILL`, `PR_SET_PDEATHSIG`) when the thread that spawned
    /// it dies, however it dies.
    ///
    /// # Errors
    /// [`Error::Os`] when the command cannot be started.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::process::Command;
    /// use unipc::sync::lock::LockOptions;
    /// use unipc::sync::Wait;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let options = LockOptions::new();
    /// let file = options.open(dir.path().join("f"))?;
    /// let guard = options.lock(&file, Wait::Forever)?;
    /// let status = guard.spawn(&mut Command::new("true"))?.wait()?;
    /// assert!(status.success());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn(&self, command: &mut std::process::Command) -> Result<std::process::Child> {
        sys::spawn_dying_with_parent(command).map_err(|e| {
            Error::os(
                format!("{} running {:?}", object_of(self.fd), command.get_program()),
                "spawn",
                e,
            )
        })
    }

    fn release(&self) -> rustix::io::Result<()> {
        match self.fcntl {
            Some((owner, _, start, len)) => {
                sys::set(self.fd, owner, LockType::Unlock, start, len, false)
            }
            None => sys::funlock(self.fd),
        }
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        let _ = self.release();
    }
}

/// One line of `/proc/locks` or of a `lock:` line in `/proc/PID/fdinfo/FD`:
/// `1: POSIX  ADVISORY  WRITE 1234 fe:00:1049 0 EOF` (a waiter's line has
/// `->` after the number and is skipped; leases and other kinds too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ProcLock {
    kind: LockKind,
    mode: LockMode,
    /// -1 for an OFD lock.
    pid: i64,
    /// (major, minor, inode).
    identity: (u32, u32, u64),
    range: Range,
}

impl ProcLock {
    fn parse(line: &str) -> Option<ProcLock> {
        let mut words = line.split_whitespace();
        words.next()?.strip_suffix(':')?;
        let kind = match words.next()? {
            "FLOCK" => LockKind::Flock,
            "POSIX" => LockKind::Posix,
            "OFDLCK" => LockKind::Ofd,
            _ => return None,
        };
        words.next()?; // ADVISORY or MANDATORY
        let mode = match words.next()? {
            "READ" => LockMode::Shared,
            "WRITE" => LockMode::Exclusive,
            _ => return None,
        };
        let pid: i64 = words.next()?.parse().ok()?;
        let mut device = words.next()?.split(':');
        let major = u32::from_str_radix(device.next()?, 16).ok()?;
        let minor = u32::from_str_radix(device.next()?, 16).ok()?;
        let inode: u64 = device.next()?.parse().ok()?;
        let start: u64 = words.next()?.parse().ok()?;
        let range = match words.next()? {
            "EOF" => Range::from_offset(start),
            last => {
                let last: u64 = last.parse().ok()?;
                Range::new(start, last.checked_sub(start)?.checked_add(1)?)
            }
        };
        Some(ProcLock {
            kind,
            mode,
            pid,
            identity: (major, minor, inode),
            range,
        })
    }
}

/// File locks in the registry: no endpoint (the file is any path), so no
/// scheme and no live limits (the kernel sets no per-user cap on record
/// locks; each costs kernel memory, and `ENOLCK` reports exhaustion).
pub static FACILITY: Facility = Facility {
    name: "file-lock",
    scheme: None,
    summary: "file locks: flock(2) whole-file, fcntl(2) byte-range classic POSIX and OFD locks",
    addressing: "any file path both processes open; `unipc lock FILE -- CMD`",
    properties: Properties {
        shape: Shape::Synchronization,
        direction: Direction::TwoWay,
        tags: Tags::None,
        destructive_read: false,
        peek: false,
        naming: Naming::AnyFile,
        reach: Reach::Host,
        persistence: Persistence::Process,
        permissions: "open(2) access to the file: a read lock needs it readable, a write lock writable (fcntl); flock needs only an open descriptor",
        reliable: true,
        after_crash: "released by the kernel on exit: a classic lock with its process, an OFD or flock lock with the last descriptor of its open file description",
    },
    limits: Vec::new,
    max_message: || None,
    #[cfg(feature = "bench")]
    connector: None,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_locks_lines_parse_and_waiters_are_skipped() {
        let line = "1: POSIX  ADVISORY  READ 11520 fe:00:10010912 20 24";
        assert_eq!(
            ProcLock::parse(line),
            Some(ProcLock {
                kind: LockKind::Posix,
                mode: LockMode::Shared,
                pid: 11520,
                identity: (0xfe, 0, 10010912),
                range: Range::new(20, 5),
            })
        );
        let ofd = ProcLock::parse("3: OFDLCK ADVISORY  WRITE -1 fe:00:10010912 0 EOF").unwrap();
        assert_eq!(
            (ofd.kind, ofd.pid, ofd.range),
            (LockKind::Ofd, -1, Range::WHOLE)
        );
        let flock = ProcLock::parse("2: FLOCK  ADVISORY  WRITE 7 103:1f:5 0 EOF").unwrap();
        assert_eq!(
            (flock.kind, flock.identity),
            (LockKind::Flock, (0x103, 0x1f, 5))
        );
        assert_eq!(
            ProcLock::parse("4: -> POSIX  ADVISORY  WRITE 9 fe:00:1 0 EOF"),
            None
        );
        assert_eq!(
            ProcLock::parse("5: LEASE  ACTIVE    READ 9 fe:00:1 0 EOF"),
            None
        );
        assert_eq!(
            ProcLock::parse("6: POSIX  ADVISORY  WRITE 9 fe:00:1 9 3"),
            None
        );
        assert_eq!(ProcLock::parse(""), None);
    }

    #[test]
    fn ranges_convert_to_fcntl_or_are_refused() {
        let object = ObjectName::from("f");
        assert_eq!(Range::WHOLE.to_fcntl(|| object.clone()).unwrap(), (0, 0));
        assert_eq!(
            Range::new(5, 10).to_fcntl(|| object.clone()).unwrap(),
            (5, 10)
        );
        assert!(matches!(
            Range::new(5, 0).to_fcntl(|| object.clone()),
            Err(Error::Unsupported { .. })
        ));
        assert!(matches!(
            Range::new(i64::MAX as u64, 1).to_fcntl(|| object.clone()),
            Err(Error::LimitExceeded { .. })
        ));
        assert!(matches!(
            Range::new(u64::MAX, u64::MAX).to_fcntl(|| object.clone()),
            Err(Error::LimitExceeded { .. })
        ));
        assert_eq!(
            Range::new(i64::MAX as u64 - 1, 1)
                .to_fcntl(|| object.clone())
                .unwrap()
                .1,
            1
        );
        assert!(Range::from_offset(5).overlaps(&Range::new(1000, 1)));
        assert!(!Range::from_offset(5).overlaps(&Range::new(0, 5)));
    }
}
