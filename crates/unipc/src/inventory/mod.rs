//! Every IPC object on the host that the caller can see, and which of them
//! are stale: the library half of `unipc ls` and `unipc gc`.
//!
//! Read from what the kernel publishes: `/proc/sysvipc/{msg,sem,shm}`,
//! `/dev/shm`, the mqueue filesystem, `/proc/net/unix`, `/proc/locks`, and
//! one pass over `/proc/*/fd` and `/proc/*/maps` for the processes that
//! hold each object, matched by device and inode rather than by a path
//! that may have been replaced. Directory entries are `lstat`ed, so a
//! planted symlink is neither followed nor listed. What could not be read
//! (another user's `/proc/PID/fd` when unprivileged) is reported in
//! [`Listing::unreadable`], not an error.
//!
//! | kind | from | name |
//! |---|---|---|
//! | `sysv-mq`, `sysv-sem`, `sysv-shm` | `/proc/sysvipc` | `sysv-mq:id=3` |
//! | `shm`, `sem` | `/dev/shm` | `shm:/x`, `ring:/x`, `pubsub:/x`, `sem:/x` |
//! | `posix-mq` | the mqueue filesystem (mounted detached when it is not mounted) | `posix-mq:/x` |
//! | `unix` | `/proc/net/unix` | `unix:/p`, `unix-dgram:@abstract` |
//! | `fifo` | the directories given ([`ListOptions::fifo_dir`]) | `fifo:/tmp/f` |
//! | `lock` | `/proc/locks` | the locked file's path |

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::{Error, Mode, Result};

mod dev_shm;
mod fifo;
pub mod gc;
mod locks;
mod mqueue;
mod procs;
mod sysv;
mod unix;

use procs::Processes;

/// A kind of IPC object [`list`] can find.
///
/// ```
/// use unipc::inventory::Kind;
/// assert_eq!("sysv-shm".parse::<Kind>().unwrap(), Kind::SysvShm);
/// assert_eq!(Kind::Sem.to_string(), "sem");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Kind {
    /// System V message queues (`sysv-mq`).
    SysvMq,
    /// System V semaphore sets (`sysv-sem`).
    SysvSem,
    /// System V shared-memory segments (`sysv-shm`).
    SysvShm,
    /// POSIX message queues (`posix-mq`).
    PosixMq,
    /// POSIX shared memory in `/dev/shm` (`shm`), rings and pubsubs
    /// included.
    Shm,
    /// POSIX named semaphores, the `/dev/shm/sem.NAME` files (`sem`).
    Sem,
    /// Bound UNIX sockets, by path or abstract name (`unix`): stream,
    /// datagram and seqpacket.
    Unix,
    /// FIFOs under the directories listed (`fifo`).
    Fifo,
    /// File locks: flock, POSIX record locks, OFD locks, leases (`lock`).
    Lock,
}

impl Kind {
    /// Every kind, in listing order.
    pub const ALL: [Kind; 9] = [
        Kind::SysvMq,
        Kind::SysvSem,
        Kind::SysvShm,
        Kind::PosixMq,
        Kind::Shm,
        Kind::Sem,
        Kind::Unix,
        Kind::Fifo,
        Kind::Lock,
    ];

    /// The kind's name, as `--kind` spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::SysvMq => "sysv-mq",
            Kind::SysvSem => "sysv-sem",
            Kind::SysvShm => "sysv-shm",
            Kind::PosixMq => "posix-mq",
            Kind::Shm => "shm",
            Kind::Sem => "sem",
            Kind::Unix => "unix",
            Kind::Fifo => "fifo",
            Kind::Lock => "lock",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| Error::InvalidName {
                kind: "object kind",
                input: s.to_owned(),
                reason: format!("known kinds: {}", Kind::ALL.map(Kind::as_str).join(", ")),
            })
    }
}

/// A process id and whether that process is alive now (listed in `/proc`
/// and not a zombie).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pid {
    /// The process id (0: none recorded yet).
    pub pid: u32,
    /// Whether it is alive (false for pid 0).
    pub alive: bool,
}

impl Pid {
    fn of(pid: u32) -> Pid {
        Pid {
            pid,
            alive: pid != 0 && crate::sys::proc::process_alive(pid),
        }
    }
}

/// A live process holding an object: a descriptor on it, or a mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Holder {
    /// Its process id.
    pub pid: u32,
    /// Its command name (`/proc/PID/comm`), empty when unreadable.
    pub command: String,
    /// It has a descriptor open on the object.
    pub open: bool,
    /// It has the object mapped (or a System V segment attached).
    pub mapped: bool,
    /// One of its descriptors on the object was opened for reading
    /// (`O_RDONLY` or `O_RDWR`, from `/proc/PID/fdinfo`): a FIFO's reader.
    pub reading: bool,
    /// One of its descriptors on the object was opened for writing.
    pub writing: bool,
}

/// Who owns an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Owner {
    /// The owner's user id.
    pub uid: u32,
    /// The owner's group id.
    pub gid: u32,
}

/// What a UNIX socket is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SocketState {
    /// Accepting connections (`listen` was called).
    Listening,
    /// Bound, neither listening nor connected (a datagram socket
    /// receiving).
    Bound,
    /// Connected to a peer.
    Connected,
}

/// A file lock's flavour, as `/proc/locks` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockClass {
    /// `flock(2)`: the whole file, held by an open file description.
    Flock,
    /// A POSIX record lock (`fcntl(F_SETLK)`), held by a process.
    Posix,
    /// An open-file-description record lock (`F_OFD_SETLK`).
    Ofd,
    /// A lease or delegation (`F_SETLEASE`).
    Lease,
}

/// What one kind of object has beyond its owner and mode.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Details {
    /// A System V message queue.
    #[non_exhaustive]
    SysvMq {
        /// Its key (0: `IPC_PRIVATE`).
        key: i32,
        /// Its id.
        id: i32,
        /// Bytes queued.
        bytes: u64,
        /// Messages queued.
        messages: u64,
        /// The creator's user id.
        creator_uid: u32,
        /// The last process to send.
        last_send: Pid,
        /// The last process to receive.
        last_receive: Pid,
        /// The live processes blocked in `msgsnd` or `msgrcv` on it (of
        /// those whose threads the caller can read).
        waiting: Vec<Holder>,
    },
    /// A System V semaphore set.
    #[non_exhaustive]
    SysvSem {
        /// Its key (0: `IPC_PRIVATE`).
        key: i32,
        /// Its id.
        id: i32,
        /// Semaphores in the set.
        semaphores: u64,
        /// The creator's user id.
        creator_uid: u32,
        /// Processes waiting for a value to grow (`GETNCNT` summed), `None`
        /// when the set cannot be read by the caller.
        waiting_increase: Option<u64>,
        /// Processes waiting for a value to be 0 (`GETZCNT` summed).
        waiting_zero: Option<u64>,
        /// The last process to operate on each semaphore (`GETPID`), empty
        /// when unreadable.
        last_op: Vec<Pid>,
        /// The live processes with a thread in `semop` on it (of those
        /// whose threads the caller can read), stopped ones included.
        waiting: Vec<Holder>,
    },
    /// A System V shared-memory segment.
    #[non_exhaustive]
    SysvShm {
        /// Its key (0: `IPC_PRIVATE`).
        key: i32,
        /// Its id.
        id: i32,
        /// Its size in bytes.
        size: u64,
        /// Attachments (`shm_nattch`).
        attached: u64,
        /// The creator's user id.
        creator_uid: u32,
        /// The creating process.
        creator: Pid,
        /// The last process to attach or detach.
        last_op: Pid,
        /// Marked for removal once the last attachment goes (`SHM_DEST`).
        removed: bool,
        /// The live processes that have it attached (a `/SYSV` mapping in
        /// `/proc/PID/maps`, of those the caller can read).
        attached_by: Vec<Holder>,
    },
    /// A POSIX shared-memory object or named semaphore in `/dev/shm`.
    #[non_exhaustive]
    DevShm {
        /// Its size in bytes.
        size: u64,
        /// Its file's device.
        dev: u64,
        /// Its file's inode: with the device, what tells it from an object
        /// made later under the same name.
        inode: u64,
        /// The live processes that hold it open or mapped (of those whose
        /// `/proc/PID` the caller can read).
        holders: Vec<Holder>,
    },
    /// A POSIX message queue.
    #[non_exhaustive]
    PosixMq {
        /// Its device (the mqueue filesystem's).
        dev: u64,
        /// Its inode.
        inode: u64,
        /// Messages queued, `None` when the caller may not open the queue
        /// to ask (`mq_getattr`); likewise the three below.
        messages: Option<u64>,
        /// Its capacity in messages.
        max_messages: Option<u64>,
        /// Its largest message.
        message_size: Option<u64>,
        /// Bytes queued, as the kernel counts them (`QSIZE`).
        bytes: Option<u64>,
        /// The process registered for notification (`mq_notify`).
        notify: Option<Pid>,
        /// The live processes with a descriptor on it.
        holders: Vec<Holder>,
    },
    /// A bound UNIX socket.
    #[non_exhaustive]
    Unix {
        /// `stream`, `dgram` or `seqpacket`.
        socket_type: &'static str,
        /// What it does.
        state: SocketState,
        /// An abstract address (no file).
        abstract_name: bool,
        /// For a path: the socket file is gone (unlinked while bound).
        unlinked: bool,
        /// For a listener: connections accepted and still open.
        connections: u64,
        /// Its inode in sockfs (`socket:[N]` in `/proc/PID/fd`).
        inode: u64,
        /// The live processes with a descriptor on it.
        holders: Vec<Holder>,
    },
    /// A FIFO.
    #[non_exhaustive]
    Fifo {
        /// The live processes with it open (readers and writers).
        holders: Vec<Holder>,
    },
    /// A file lock (or a process waiting for one).
    #[non_exhaustive]
    Lock {
        /// Its flavour.
        class: LockClass,
        /// Exclusive (`WRITE`), shared otherwise.
        exclusive: bool,
        /// A process blocked waiting for it, not a lock held.
        waiting: bool,
        /// First byte locked.
        start: u64,
        /// Last byte locked, `None` for "to the end of the file".
        end: Option<u64>,
        /// The holder (or waiter): `None` for an OFD lock, which belongs
        /// to an open file description rather than a process.
        holder: Option<Pid>,
        /// The locked file's device.
        dev: u64,
        /// The locked file's inode.
        inode: u64,
        /// The locked file's path, when some readable process has it open.
        path: Option<PathBuf>,
        /// The live processes with the locked file open.
        holders: Vec<Holder>,
    },
}

impl Details {
    /// The live processes holding the object, whatever its kind (empty for
    /// a System V queue or semaphore set, which no descriptor holds).
    pub fn holders(&self) -> &[Holder] {
        match self {
            Details::SysvShm { attached_by, .. } => attached_by,
            Details::DevShm { holders, .. }
            | Details::PosixMq { holders, .. }
            | Details::Unix { holders, .. }
            | Details::Fifo { holders }
            | Details::Lock { holders, .. } => holders,
            Details::SysvMq { .. } | Details::SysvSem { .. } => &[],
        }
    }
}

/// One object.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Object {
    /// Its kind.
    pub kind: Kind,
    /// Its endpoint (`sysv-mq:id=3`, `shm:/NAME`, `posix-mq:/NAME`,
    /// `unix:/PATH`), which `unipc stat` and `unipc rm` accept; for a
    /// lock, the locked file's path (or its device and inode).
    pub name: String,
    /// Its owner: `None` for an abstract socket, which has none, and for a
    /// lock whose file and holder cannot be read.
    pub owner: Option<Owner>,
    /// Its permission bits (`None` where there are none: an abstract
    /// socket, a lock on a file the caller cannot find).
    pub mode: Option<Mode>,
    /// The kind's own fields.
    pub details: Details,
}

/// Something [`list`] could not read, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unreadable {
    /// A `/proc` path, or the endpoint of an object whose details could not
    /// be read (`sysv-sem:id=3`).
    pub what: String,
    /// The reason (the OS error).
    pub reason: String,
}

/// What [`list`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Listing {
    /// The objects, by kind then id or name.
    pub objects: Vec<Object>,
    /// What could not be read: the objects it would have shown (or their
    /// holders) are missing from [`Listing::objects`].
    pub unreadable: Vec<Unreadable>,
}

/// What [`ListOptions::list`] looks for.
///
/// ```
/// use unipc::inventory::{Kind, ListOptions};
/// let listing = ListOptions::new()
///     .kind(Kind::Fifo)
///     .fifo_dir(std::env::temp_dir())
///     .list()
///     .unwrap();
/// assert!(listing.objects.iter().all(|o| o.kind == Kind::Fifo));
/// ```
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct ListOptions {
    kinds: Vec<Kind>,
    fifo_dirs: Vec<PathBuf>,
}

/// How deep below each FIFO directory the search goes.
pub const FIFO_DEPTH: usize = 4;

impl ListOptions {
    /// Every kind; FIFOs under the temp dir.
    pub fn new() -> ListOptions {
        ListOptions::default()
    }

    /// Lists `kind` (repeatable); every kind when none is given.
    pub fn kind(mut self, kind: Kind) -> ListOptions {
        self.kinds.push(kind);
        self
    }

    /// Lists these kinds (every kind when empty).
    pub fn kinds(mut self, kinds: &[Kind]) -> ListOptions {
        self.kinds.extend_from_slice(kinds);
        self
    }

    /// Looks for FIFOs in `dir` and below it, to [`FIFO_DEPTH`] levels,
    /// without following symbolic links (repeatable; the temp dir when
    /// none is given).
    pub fn fifo_dir(mut self, dir: impl Into<PathBuf>) -> ListOptions {
        self.fifo_dirs.push(dir.into());
        self
    }

    fn wants(&self, kind: Kind) -> bool {
        self.kinds.is_empty() || self.kinds.contains(&kind)
    }

    /// Lists every object of the kinds asked for that the caller can see.
    ///
    /// # Errors
    /// [`Error::Os`] when a `/proc/sysvipc` file of a requested kind cannot
    /// be read or has no header the parser knows. Nothing else fails the
    /// listing: a missing `/dev/shm` has no objects, and an unreadable
    /// process, directory or mqueue filesystem is listed in
    /// [`Listing::unreadable`].
    pub fn list(&self) -> Result<Listing> {
        let mut listing = Listing::default();
        let procs = Processes::scan(&mut listing.unreadable);
        if self.wants(Kind::SysvMq) {
            sysv::queues(&mut listing, &procs)?;
        }
        if self.wants(Kind::SysvSem) {
            sysv::semaphore_sets(&mut listing, &procs)?;
        }
        if self.wants(Kind::SysvShm) {
            sysv::segments(&mut listing, &procs)?;
        }
        if self.wants(Kind::PosixMq) {
            mqueue::queues(&mut listing, &procs);
        }
        if self.wants(Kind::Shm) || self.wants(Kind::Sem) {
            dev_shm::objects(
                &mut listing,
                &procs,
                self.wants(Kind::Shm),
                self.wants(Kind::Sem),
            );
        }
        if self.wants(Kind::Unix) {
            unix::sockets(&mut listing, &procs);
        }
        if self.wants(Kind::Fifo) {
            let default = [std::env::temp_dir()];
            let dirs = if self.fifo_dirs.is_empty() {
                &default[..]
            } else {
                &self.fifo_dirs[..]
            };
            fifo::fifos(&mut listing, &procs, dirs);
        }
        if self.wants(Kind::Lock) {
            locks::locks(&mut listing, &procs);
        }
        Ok(listing)
    }
}

/// Lists every object of `kinds` (all kinds when empty) that the caller can
/// see, FIFOs under the temp dir: [`ListOptions::list`] in one call.
///
/// ```
/// use unipc::inventory::{list, Kind};
/// let listing = list(&[Kind::Shm]).unwrap();
/// assert!(listing.objects.iter().all(|o| o.kind == Kind::Shm));
/// ```
///
/// # Errors
/// As [`ListOptions::list`].
pub fn list(kinds: &[Kind]) -> Result<Listing> {
    ListOptions::new().kinds(kinds).list()
}

/// An object's owner and mode from its file's metadata.
fn owner_and_mode(meta: &std::fs::Metadata) -> (Option<Owner>, Option<Mode>) {
    use std::os::unix::fs::MetadataExt;
    (
        Some(Owner {
            uid: meta.uid(),
            gid: meta.gid(),
        }),
        Some(Mode::from_bits_truncate(meta.mode())),
    )
}

/// A path as an endpoint's text, or `None` (with a note) when it is not
/// UTF-8: an object a listing's reader could not feed back by name.
fn utf8_path(path: &std::path::Path, unreadable: &mut Vec<Unreadable>) -> Option<String> {
    match path.to_str() {
        Some(text) => Some(text.to_owned()),
        None => {
            use std::os::unix::ffi::OsStrExt;
            unreadable.push(Unreadable {
                what: crate::name::escaped(path.as_os_str().as_bytes()),
                reason: "the name is not UTF-8".to_owned(),
            });
            None
        }
    }
}
