//! Every System V and POSIX shared-memory / named-semaphore object on the
//! host that the caller can see: the library half of `unipc ls`.
//!
//! Read from what the kernel publishes, never by opening the objects:
//! `/proc/sysvipc/{msg,sem,shm}` (columns found by their header names,
//! which differ between kernels), `/dev/shm` (each entry `lstat`ed, so a
//! planted symlink is neither followed nor listed), and `/proc/*/fd` and
//! `/proc/*/maps` for the processes that hold a `/dev/shm` file open or
//! mapped, matched by inode rather than by a path that may have been
//! replaced. What could not be read (another user's `/proc/PID/fd` when
//! unprivileged) is reported in [`Listing::unreadable`], not an error.

use std::collections::HashMap;
use std::fmt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::{Error, Mode, Result};

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
    /// POSIX shared memory in `/dev/shm` (`shm`).
    Shm,
    /// POSIX named semaphores, the `/dev/shm/sem.NAME` files (`sem`).
    Sem,
}

impl Kind {
    /// Every kind, in listing order.
    pub const ALL: [Kind; 5] = [
        Kind::SysvMq,
        Kind::SysvSem,
        Kind::SysvShm,
        Kind::Shm,
        Kind::Sem,
    ];

    /// The kind's name, as `--kind` and the endpoint schemes spell it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::SysvMq => "sysv-mq",
            Kind::SysvSem => "sysv-sem",
            Kind::SysvShm => "sysv-shm",
            Kind::Shm => "shm",
            Kind::Sem => "sem",
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

/// A live process holding a `/dev/shm` object.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Holder {
    /// Its process id.
    pub pid: u32,
    /// Its command name (`/proc/PID/comm`), empty when unreadable.
    pub command: String,
    /// It has a descriptor open on the object.
    pub open: bool,
    /// It has the object mapped.
    pub mapped: bool,
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
        /// The live processes that hold it open or mapped (of those whose
        /// `/proc/PID` the caller can read).
        holders: Vec<Holder>,
    },
}

/// One object.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Object {
    /// Its kind.
    pub kind: Kind,
    /// Its endpoint (`sysv-mq:id=3`, `shm:/NAME`, `sem:/NAME`), which
    /// `unipc stat` and `unipc rm` accept.
    pub name: String,
    /// The owner's user id.
    pub uid: u32,
    /// The owner's group id.
    pub gid: u32,
    /// Its permission bits.
    pub mode: Mode,
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

/// Lists every object of `kinds` (all kinds when empty) that the caller can
/// see.
///
/// ```
/// use unipc::inventory::{list, Kind};
/// let listing = list(&[Kind::Shm]).unwrap();
/// assert!(listing.objects.iter().all(|o| o.kind == Kind::Shm));
/// ```
///
/// # Errors
/// [`Error::Os`] when a `/proc/sysvipc` file of a requested kind cannot be
/// read or has no header the parser knows; `/dev/shm` missing is no error
/// (no objects), nor is an unreadable process (listed in
/// [`Listing::unreadable`]).
pub fn list(kinds: &[Kind]) -> Result<Listing> {
    let wanted = |k: Kind| kinds.is_empty() || kinds.contains(&k);
    let mut listing = Listing::default();
    if wanted(Kind::SysvMq) {
        sysv_mq(&mut listing)?;
    }
    if wanted(Kind::SysvSem) {
        sysv_sem(&mut listing)?;
    }
    if wanted(Kind::SysvShm) {
        sysv_shm(&mut listing)?;
    }
    let mut by_inode = HashMap::new();
    if wanted(Kind::Shm) || wanted(Kind::Sem) {
        by_inode = dev_shm(&mut listing, wanted(Kind::Shm), wanted(Kind::Sem));
    }
    holders(&mut listing, &by_inode);
    Ok(listing)
}

/// The rows of a `/proc/sysvipc` file as maps from header name to field.
fn table(path: &str) -> Result<Vec<HashMap<String, String>>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::os(path, "read", e))?;
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    Ok(lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split_whitespace().map(str::to_owned))
                .collect()
        })
        .collect())
}

/// The field `name` of `row` as a number, parsed in `radix`.
fn field<T: FromStrRadix>(
    path: &str,
    row: &HashMap<String, String>,
    name: &str,
    radix: u32,
) -> Result<T> {
    row.get(name)
        .and_then(|v| T::parse(v, radix))
        .ok_or_else(|| {
            Error::os(
                path,
                "parse",
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("no numeric column `{name}`"),
                ),
            )
        })
}

trait FromStrRadix: Sized {
    fn parse(s: &str, radix: u32) -> Option<Self>;
}

macro_rules! radix {
    ($($t:ty),*) => {$(impl FromStrRadix for $t {
        fn parse(s: &str, radix: u32) -> Option<Self> {
            <$t>::from_str_radix(s, radix).ok()
        }
    })*};
}
radix!(i32, u32, u64);

/// The mode from a `perms` column (octal, with flags above 0o777).
fn perms(path: &str, row: &HashMap<String, String>) -> Result<(Mode, u32)> {
    let bits: u32 = field(path, row, "perms", 8)?;
    Ok((Mode::from_bits_truncate(bits), bits))
}

fn sysv_mq(listing: &mut Listing) -> Result<()> {
    const PATH: &str = "/proc/sysvipc/msg";
    for row in table(PATH)? {
        let id: i32 = field(PATH, &row, "msqid", 10)?;
        listing.objects.push(Object {
            kind: Kind::SysvMq,
            name: format!("sysv-mq:id={id}"),
            uid: field(PATH, &row, "uid", 10)?,
            gid: field(PATH, &row, "gid", 10)?,
            mode: perms(PATH, &row)?.0,
            details: Details::SysvMq {
                key: field(PATH, &row, "key", 10)?,
                id,
                bytes: field(PATH, &row, "cbytes", 10)?,
                messages: field(PATH, &row, "qnum", 10)?,
                creator_uid: field(PATH, &row, "cuid", 10)?,
                last_send: Pid::of(field(PATH, &row, "lspid", 10)?),
                last_receive: Pid::of(field(PATH, &row, "lrpid", 10)?),
            },
        });
    }
    Ok(())
}

fn sysv_sem(listing: &mut Listing) -> Result<()> {
    const PATH: &str = "/proc/sysvipc/sem";
    for row in table(PATH)? {
        let id: i32 = field(PATH, &row, "semid", 10)?;
        let semaphores: u64 = field(PATH, &row, "nsems", 10)?;
        // GETNCNT, GETZCNT and GETPID need read permission on the set: an
        // unreadable set is listed without them.
        let counts = (0..u16::try_from(semaphores).unwrap_or(u16::MAX))
            .map(|n| {
                let increase = crate::sys::sysv_sem::ncnt(id, n)?;
                let zero = crate::sys::sysv_sem::zcnt(id, n)?;
                Ok((increase, zero, crate::sys::sysv_sem::last_pid(id, n)?))
            })
            .collect::<std::io::Result<Vec<_>>>();
        let (waiting_increase, waiting_zero, last_op) = match counts {
            Ok(c) => (
                Some(c.iter().map(|x| u64::from(x.0)).sum()),
                Some(c.iter().map(|x| u64::from(x.1)).sum()),
                c.iter().map(|x| Pid::of(x.2)).collect(),
            ),
            Err(err) => {
                listing.unreadable.push(Unreadable {
                    what: format!("sysv-sem:id={id}"),
                    reason: err.to_string(),
                });
                (None, None, Vec::new())
            }
        };
        listing.objects.push(Object {
            kind: Kind::SysvSem,
            name: format!("sysv-sem:id={id}"),
            uid: field(PATH, &row, "uid", 10)?,
            gid: field(PATH, &row, "gid", 10)?,
            mode: perms(PATH, &row)?.0,
            details: Details::SysvSem {
                key: field(PATH, &row, "key", 10)?,
                id,
                semaphores,
                creator_uid: field(PATH, &row, "cuid", 10)?,
                waiting_increase,
                waiting_zero,
                last_op,
            },
        });
    }
    Ok(())
}

fn sysv_shm(listing: &mut Listing) -> Result<()> {
    const PATH: &str = "/proc/sysvipc/shm";
    // SHM_DEST in the kernel's shm_perm.mode.
    const SHM_DEST: u32 = 0o1000;
    for row in table(PATH)? {
        let id: i32 = field(PATH, &row, "shmid", 10)?;
        let (mode, bits) = perms(PATH, &row)?;
        listing.objects.push(Object {
            kind: Kind::SysvShm,
            name: format!("sysv-shm:id={id}"),
            uid: field(PATH, &row, "uid", 10)?,
            gid: field(PATH, &row, "gid", 10)?,
            mode,
            details: Details::SysvShm {
                key: field(PATH, &row, "key", 10)?,
                id,
                size: field(PATH, &row, "size", 10)?,
                attached: field(PATH, &row, "nattch", 10)?,
                creator_uid: field(PATH, &row, "cuid", 10)?,
                creator: Pid::of(field(PATH, &row, "cpid", 10)?),
                last_op: Pid::of(field(PATH, &row, "lpid", 10)?),
                removed: bits & SHM_DEST != 0,
                attached_by: Vec::new(),
            },
        });
    }
    Ok(())
}

/// Lists `/dev/shm`; returns the objects' indexes by (device, inode).
fn dev_shm(listing: &mut Listing, shm: bool, sem: bool) -> HashMap<(u64, u64), usize> {
    let mut by_inode: HashMap<(u64, u64), usize> = HashMap::new();
    let Ok(entries) = std::fs::read_dir(DEV_SHM) else {
        return by_inode;
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(file) = file.to_str() else {
            // No endpoint can name it (endpoints are text).
            listing.unreadable.push(Unreadable {
                what: entry.path().to_string_lossy().into_owned(),
                reason: "the name is not UTF-8".to_owned(),
            });
            continue;
        };
        // lstat: a symlink (or anything but a regular file) is no object.
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
            continue;
        };
        if !meta.file_type().is_file()
            || meta.file_type().is_symlink()
            || meta.file_type().is_fifo()
        {
            continue;
        }
        let (kind, name) = match file.strip_prefix("sem.") {
            Some(rest) if !rest.is_empty() => (Kind::Sem, format!("sem:/{rest}")),
            _ => (Kind::Shm, format!("{}:/{file}", shm_scheme(&entry.path()))),
        };
        if (kind == Kind::Shm && !shm) || (kind == Kind::Sem && !sem) {
            continue;
        }
        found.push((name, kind, meta));
    }
    found.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    for (name, kind, meta) in found {
        by_inode.insert((meta.dev(), meta.ino()), listing.objects.len());
        listing.objects.push(Object {
            kind,
            name,
            uid: meta.uid(),
            gid: meta.gid(),
            mode: Mode::from_bits_truncate(meta.mode()),
            details: Details::DevShm {
                size: meta.size(),
                holders: Vec::new(),
            },
        });
    }
    by_inode
}

const DEV_SHM: &str = "/dev/shm";

/// The scheme a `/dev/shm` object is reached by: `ring` or `pubsub` when
/// its first eight bytes are that channel's magic, `shm` otherwise (or
/// when this user may not read it). Opened without following a link
/// (the entry was `lstat`ed as a regular file, but may have changed).
fn shm_scheme(path: &std::path::Path) -> &'static str {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut magic = [0; 8];
    let read = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .and_then(|mut f| f.read_exact(&mut magic));
    match (read, &magic) {
        (Ok(()), b"unipcrng") => "ring",
        (Ok(()), b"unipcpub") => "pubsub",
        _ => "shm",
    }
}

/// Adds the live processes holding each `/dev/shm` object in `by_inode`
/// open or mapped, and those attached to each System V segment listed (a
/// `/SYSV<key>` mapping whose inode is the segment's id).
fn holders(listing: &mut Listing, by_inode: &HashMap<(u64, u64), usize>) {
    let dir = Path::new(DEV_SHM);
    let by_shmid: HashMap<u64, usize> = listing
        .objects
        .iter()
        .enumerate()
        .filter_map(|(i, o)| match o.details {
            Details::SysvShm { id, .. } => Some((u64::try_from(id).ok()?, i)),
            _ => None,
        })
        .collect();
    if by_inode.is_empty() && by_shmid.is_empty() {
        return;
    }
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    let dev = by_inode.keys().next().map_or(0, |k| k.0);
    for proc in procs.flatten() {
        let Some(pid) = proc
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let mut held: HashMap<usize, (bool, bool)> = HashMap::new();
        let base = proc.path();
        match std::fs::read_dir(base.join("fd")) {
            Ok(_) if by_inode.is_empty() => {}
            Ok(fds) => {
                for fd in fds.flatten() {
                    let Ok(target) = std::fs::read_link(fd.path()) else {
                        continue;
                    };
                    if !target.starts_with(dir) {
                        continue;
                    }
                    // The descriptor's own file (the link followed through
                    // the kernel), not whatever now has that name.
                    let Ok(meta) = std::fs::metadata(fd.path()) else {
                        continue;
                    };
                    if let Some(&i) = by_inode.get(&(meta.dev(), meta.ino())) {
                        held.entry(i).or_default().0 = true;
                    }
                }
            }
            Err(err) => note(listing, base.join("fd"), &err),
        }
        match std::fs::read_to_string(base.join("maps")) {
            Ok(maps) => {
                for line in maps.lines() {
                    // address perms offset dev inode path
                    let mut cols = line.split_whitespace();
                    let (Some(inode), Some(path)) = (cols.nth(4), cols.next()) else {
                        continue;
                    };
                    let Ok(inode) = inode.parse::<u64>() else {
                        continue;
                    };
                    let i = if Path::new(path).starts_with(dir) {
                        by_inode.get(&(dev, inode))
                    } else if path.starts_with("/SYSV") {
                        by_shmid.get(&inode)
                    } else {
                        None
                    };
                    if let Some(&i) = i {
                        held.entry(i).or_default().1 = true;
                    }
                }
            }
            Err(err) => note(listing, base.join("maps"), &err),
        }
        if held.is_empty() || !crate::sys::proc::process_alive(pid) {
            continue;
        }
        let command = std::fs::read_to_string(base.join("comm"))
            .map(|c| c.trim_end().to_owned())
            .unwrap_or_default();
        for (i, (open, mapped)) in held {
            if let Details::DevShm { holders, .. }
            | Details::SysvShm {
                attached_by: holders,
                ..
            } = &mut listing.objects[i].details
            {
                holders.push(Holder {
                    pid,
                    command: command.clone(),
                    open,
                    mapped,
                });
            }
        }
    }
    for object in &mut listing.objects {
        if let Details::DevShm { holders, .. }
        | Details::SysvShm {
            attached_by: holders,
            ..
        } = &mut object.details
        {
            holders.sort_by_key(|h| h.pid);
        }
    }
}

/// Records an unreadable `/proc` file; a process that exited meanwhile
/// (ENOENT, ESRCH) is no loss.
fn note(listing: &mut Listing, path: PathBuf, err: &std::io::Error) {
    if matches!(err.raw_os_error(), Some(libc::ENOENT | libc::ESRCH)) {
        return;
    }
    listing.unreadable.push(Unreadable {
        what: path.display().to_string(),
        reason: err.to_string(),
    });
}
