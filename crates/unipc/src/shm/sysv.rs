//! System V shared memory (`sysv-shm:KEY`, `sysv-shm:id=N`): a segment
//! found by a numeric key, sized once at `shmget` and attached with
//! `shmat`.
//!
//! A segment outlives the processes that use it until removed
//! ([`Segment::remove`], `ipcrm -m`), so the handle that created one
//! removes it on drop unless [`kept`](SegmentOptions::keep). A removed
//! segment stays usable by every process still attached until the last
//! one detaches; only then does the kernel free it. Attaching is safe: a
//! System V segment never changes size.
//!
//! No umask applies: the mode asked is the mode set. A non-exclusive
//! create adopts an existing segment only when this user owns and created
//! it and its mode is exactly the one asked.
//!
//! # Examples
//!
//! ```
//! use unipc::name::SysvKey;
//! use unipc::shm::{sysv::SegmentOptions, Access};
//!
//! let segment = SegmentOptions::new().size(8192).create(SysvKey::Private)?;
//! let map = segment.attach(Access::ReadWrite)?;
//! map.write_at(0, b"shared")?;
//! let stat = segment.stat()?;
//! assert_eq!(stat.size, 8192);
//! assert_eq!(stat.attached, 1);
//! # Ok::<(), unipc::Error>(())
//! ```
//!
//! # References
//!
//! shmget(2), shmat(2), shmdt(2), shmctl(2), sysvipc(7).

use std::io;
use std::time::{Duration, SystemTime};

use libc::c_int;

use crate::creator::{sysv_identity, Class};
use crate::endpoint::Endpoint;
use crate::error::ObjectName;
use crate::facility::{
    Direction, Facility, LiveLimit, Naming, Persistence, Properties, Reach, Shape, Tags,
};
use crate::guard::{Guard, Made};
use crate::name::SysvKey;
use crate::ownership;
use crate::shm::{Access, Mapping};
use crate::sys::proc;
use crate::sys::shm as sys;
use crate::{Error, Mode, Result};

/// How often `create` retries when a segment it found vanishes before it
/// can open it.
const CREATE_ATTEMPTS: usize = 100;

fn errno(err: &io::Error) -> Option<i32> {
    err.raw_os_error()
}

/// How to create or open a System V shared-memory segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentOptions {
    size: usize,
    mode: Mode,
    exclusive: bool,
    keep: bool,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions::new()
    }
}

impl SegmentOptions {
    /// Size 0 (which [`create`](Self::create) refuses: set one), mode
    /// 0o600, not exclusive, removed when the creating handle drops.
    pub fn new() -> Self {
        SegmentOptions {
            size: 0,
            mode: Mode::OWNER_RW,
            exclusive: false,
            keep: false,
        }
    }

    /// The size of a new segment in bytes (the kernel rounds the memory up
    /// to whole pages; the segment's size stays as asked).
    pub fn size(mut self, bytes: usize) -> Self {
        self.size = bytes;
        self
    }

    /// The permission bits of a new segment (no umask applies).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// `IPC_EXCL` — when true, [`create`](Self::create) fails if the key
    /// already has a segment.
    #[doc(alias = "IPC_EXCL")]
    pub fn exclusive(mut self, exclusive: bool) -> Self {
        self.exclusive = exclusive;
        self
    }

    /// Keep the segment when the creating handle drops.
    pub fn keep(mut self) -> Self {
        self.keep = true;
        self
    }

    /// `shmget(key, size, IPC_CREAT | mode)` — creates a segment, or adopts
    /// the one under the key unless [`exclusive`](Self::exclusive).
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] for size 0; [`Error::LimitExceeded`] for a
    /// size over `shmmax` or more pages than `shmall` (checked before
    /// anything is created); [`Error::Os`] with `EEXIST` for an exclusive
    /// create on a taken key, `ENOSPC` at `shmmni`; [`Error::ForeignObject`]
    /// when the segment under the key belongs to or was created by another
    /// user, or has another mode (left untouched).
    #[doc(alias = "shmget")]
    pub fn create(&self, key: SysvKey) -> Result<Segment> {
        let object = Endpoint::SysvShm(key).to_string();
        check_size(&object, self.size)?;
        let mode = self.mode.bits() as c_int;
        let (id, created) = match key {
            SysvKey::Private => (
                sys::get(0, self.size, sys::CREATE | mode).map_err(|e| create_error(&object, e))?,
                true,
            ),
            SysvKey::Key(raw) => {
                let mut found = None;
                for _ in 0..CREATE_ATTEMPTS {
                    match sys::get(raw, self.size, sys::CREATE | sys::EXCLUSIVE | mode) {
                        Ok(id) => {
                            found = Some((id, true));
                            break;
                        }
                        Err(err) if errno(&err) == Some(libc::EEXIST) && !self.exclusive => {
                            let id = match sys::get(raw, 0, 0) {
                                Ok(id) => id,
                                Err(err) if errno(&err) == Some(libc::ENOENT) => continue,
                                Err(err) => return Err(open_error(&object, err)),
                            };
                            match self.check_adoptable(&object, id) {
                                Ok(()) => {
                                    found = Some((id, false));
                                    break;
                                }
                                Err(Error::Removed { .. }) => continue,
                                Err(err) => return Err(err),
                            }
                        }
                        Err(err) => return Err(create_error(&object, err)),
                    }
                }
                found.ok_or_else(|| {
                    create_error(
                        &object,
                        io::Error::other(
                            "the key's segment kept being removed and recreated by others",
                        ),
                    )
                })?
            }
        };
        let mut segment = Segment::new(id, key, object.into(), created)?;
        segment.guard.set_armed(created && !self.keep);
        Ok(segment)
    }

    fn check_adoptable(&self, object: &str, id: c_int) -> Result<()> {
        let st = sys::stat(id).map_err(|err| match errno(&err) {
            Some(libc::EIDRM | libc::EINVAL) => Error::Removed {
                object: object.into(),
            },
            Some(libc::EACCES) => Error::os(object, "stat", err).with_hint(
                "the segment with this key cannot be read, so it is not this user's segment with the mode asked: remove it, or use a different key",
            ),
            _ => Error::os(object, "stat", err),
        })?;
        ownership::check_adoptable(
            object,
            ownership::Found {
                uid: st.perm.uid,
                creator_uid: Some(st.perm.cuid),
                mode: st.perm.mode(),
            },
            self.mode.bits(),
            proc::euid(),
        )
    }

    /// `shmget(key, 0, 0)` — opens the segment under `key`; the options do
    /// not apply and the handle never removes it.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] for [`SysvKey::Private`] (open it by
    /// identifier: [`Segment::open_id`]); [`Error::Os`] with `ENOENT` when
    /// no segment has the key.
    #[doc(alias = "shmget")]
    pub fn open(&self, key: SysvKey) -> Result<Segment> {
        let object = Endpoint::SysvShm(key).to_string();
        let SysvKey::Key(raw) = key else {
            return Err(Error::Unsupported {
                object: object.into(),
                what: "opening by key".into(),
                reason: "a private segment has no key to find it by; open it by its identifier (sysv-shm:id=N)".into(),
            });
        };
        let id = sys::get(raw, 0, 0).map_err(|err| open_error(&object, err))?;
        Segment::new(id, key, object.into(), false)
    }
}

fn create_error(object: &str, err: io::Error) -> Error {
    let hint = match errno(&err) {
        Some(libc::EEXIST) => {
            Some("a segment with this key already exists: remove it first, or open it instead")
        }
        Some(libc::ENOSPC) => Some(
            "the system's segment limit (/proc/sys/kernel/shmmni) or page limit (shmall) is reached",
        ),
        Some(libc::EINVAL) => Some(
            "a segment under this key exists with a smaller size, or the size is outside shmmin..shmmax",
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
        err.with_hint("no segment has this key")
    } else {
        err
    }
}

/// Refuses size 0 and sizes over `shmmax` or `shmall`, before anything is
/// created.
fn check_size(object: &str, size: usize) -> Result<()> {
    if size == 0 {
        return Err(Error::Unsupported {
            object: object.into(),
            what: "size 0".into(),
            reason: "a System V segment needs a size of at least 1 byte (set one)".into(),
        });
    }
    if let Some(shmmax) = proc::read_sysctl("kernel/shmmax") {
        if size as u64 > shmmax {
            return Err(Error::LimitExceeded {
                object: object.into(),
                what: "size",
                requested: size as u64,
                limit: shmmax,
                set_in: "/proc/sys/kernel/shmmax",
            });
        }
    }
    if let Some(shmall) = proc::read_sysctl("kernel/shmall") {
        let pages = (size as u64).div_ceil(sys::page_size() as u64);
        if pages > shmall {
            return Err(Error::LimitExceeded {
                object: object.into(),
                what: "pages",
                requested: pages,
                limit: shmall,
                set_in: "/proc/sys/kernel/shmall (pages for all segments together)",
            });
        }
    }
    Ok(())
}

/// What `IPC_STAT` says of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stat {
    /// Its key ([`SysvKey::Private`] when made private).
    pub key: SysvKey,
    /// Its size in bytes (`shm_segsz`).
    pub size: u64,
    /// How many attachments it has now (`shm_nattch`).
    pub attached: u64,
    /// Its owner (`shm_perm.uid`).
    pub uid: u32,
    /// Its group.
    pub gid: u32,
    /// Its creator (`shm_perm.cuid`).
    pub creator_uid: u32,
    /// Its permission bits.
    pub mode: Mode,
    /// The process that created it (`shm_cpid`).
    pub creator_pid: i32,
    /// The last process to attach or detach (`shm_lpid`).
    pub last_pid: i32,
    /// The last attach (`shm_atime`), `None` if never.
    pub last_attach: Option<SystemTime>,
    /// The last detach (`shm_dtime`), `None` if never.
    pub last_detach: Option<SystemTime>,
    /// The last change by `IPC_SET` or creation (`shm_ctime`).
    pub changed: Option<SystemTime>,
    /// Whether it is removed and waits for its last detach (`SHM_DEST`).
    pub removed: bool,
}

fn time(secs: i64) -> Option<SystemTime> {
    u64::try_from(secs)
        .ok()
        .filter(|&s| s != 0)
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
}

/// A System V segment, by identifier.
#[derive(Debug)]
pub struct Segment {
    id: c_int,
    key: SysvKey,
    object: ObjectName,
    created: bool,
    guard: Guard<SegmentId>,
}

impl Segment {
    fn new(id: c_int, key: SysvKey, object: ObjectName, created: bool) -> Result<Segment> {
        let label = object.to_string();
        let creator = if created {
            sys::stat(id)
                .map_err(|e| Error::os(object.clone(), "stat", e))?
                .perm
                .cuid
        } else {
            0
        };
        Ok(Segment {
            id,
            key,
            object,
            created,
            guard: {
                let guard = Guard::new(
                    SegmentId {
                        id,
                        key: key.raw(),
                        creator,
                    },
                    created,
                );
                if created {
                    guard.recorded(Class::SysvShm, &label, sysv_identity(id, key.raw()))
                } else {
                    guard
                }
            },
        })
    }

    /// Opens the segment with identifier `id` (as `ipcs -m` prints it);
    /// the handle never removes it.
    ///
    /// # Errors
    /// [`Error::Os`] with `EINVAL`/`EIDRM` when no segment has the
    /// identifier, `EACCES` when this user may not read it.
    pub fn open_id(id: i32) -> Result<Segment> {
        let object: ObjectName = Endpoint::SysvShmId(id).to_string().into();
        let st = sys::stat(id).map_err(|err| {
            let gone = matches!(errno(&err), Some(libc::EINVAL | libc::EIDRM));
            let e = Error::os(object.clone(), "open", err);
            if gone {
                e.with_hint("no segment has this identifier")
            } else {
                e
            }
        })?;
        let key = if st.perm.key == 0 {
            SysvKey::Private
        } else {
            SysvKey::Key(st.perm.key)
        };
        Segment::new(id, key, object, false)
    }

    /// The identifier (`shmid`), as `ipcs -m` prints it.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// The key it was created or opened by.
    pub fn key(&self) -> SysvKey {
        self.key
    }

    /// The object as errors name it.
    pub fn object(&self) -> &ObjectName {
        &self.object
    }

    /// Whether this handle created the segment (and so removes it on drop
    /// unless kept).
    pub fn created(&self) -> bool {
        self.created
    }

    /// Leaves the segment in place when this handle drops.
    pub fn keep(mut self) -> Self {
        self.guard.keep();
        self
    }

    /// `shmctl(IPC_STAT)` — size, attach count, owner, creator, mode, pids
    /// and times.
    ///
    /// # Errors
    /// [`Error::Removed`] when it is gone, [`Error::Os`] with `EACCES` when
    /// this user may not read it.
    #[doc(alias = "IPC_STAT")]
    pub fn stat(&self) -> Result<Stat> {
        let st = sys::stat(self.id).map_err(|e| self.fail("stat", e))?;
        Ok(Stat {
            key: if st.perm.key == 0 {
                SysvKey::Private
            } else {
                SysvKey::Key(st.perm.key)
            },
            size: st.size,
            attached: st.attached,
            uid: st.perm.uid,
            gid: st.perm.gid,
            creator_uid: st.perm.cuid,
            mode: Mode::new(st.perm.mode())?,
            creator_pid: st.creator_pid,
            last_pid: st.last_pid,
            last_attach: time(st.last_attach),
            last_detach: time(st.last_detach),
            changed: time(st.changed),
            removed: st.removed,
        })
    }

    /// `shmctl(IPC_SET)` — changes the permission bits.
    ///
    /// # Errors
    /// [`Error::Os`] with `EPERM` unless this user owns or created it.
    #[doc(alias = "IPC_SET")]
    pub fn set_mode(&self, mode: Mode) -> Result<()> {
        sys::set_segment_mode(self.id, mode.bits()).map_err(|e| self.fail("set mode", e))
    }

    /// `shmat` — attaches the whole segment read-only or read-write; the
    /// [`Mapping`] detaches on drop, and keeps the segment usable even
    /// after it is removed.
    ///
    /// # Errors
    /// [`Error::Os`] with `EACCES` when this user may not attach it so;
    /// [`Error::Removed`] when it is gone.
    #[doc(alias = "shmat")]
    pub fn attach(&self, access: Access) -> Result<Mapping> {
        let size = sys::stat(self.id).map_err(|e| self.fail("attach", e))?.size;
        let len = usize::try_from(size).unwrap_or(usize::MAX);
        let region =
            sys::attach(self.id, len, !access.writable()).map_err(|e| self.fail("attach", e))?;
        Ok(Mapping::new(region, self.object.clone(), access.writable()))
    }

    /// `shmctl(IPC_RMID)` — removes the segment: its key is free at once,
    /// and the memory goes when the last process detaches.
    ///
    /// # Errors
    /// [`Error::Os`] with `EPERM` unless this user owns or created it.
    #[doc(alias = "IPC_RMID")]
    pub fn remove(&self) -> Result<()> {
        let forget = sys::stat(self.id).ok().map(|st| {
            crate::creator::Forget::sysv(Class::SysvShm, self.id, st.perm.key, st.perm.cuid)
        });
        sys::remove(self.id).map_err(|e| self.fail("remove", e))?;
        crate::creator::Forget::done(forget);
        Ok(())
    }

    fn fail(&self, op: &'static str, err: io::Error) -> Error {
        match errno(&err) {
            Some(libc::EIDRM | libc::EINVAL)
                if op != "attach" || errno(&err) == Some(libc::EIDRM) =>
            {
                Error::Removed {
                    object: self.object.clone(),
                }
            }
            _ => Error::os(self.object.clone(), op, err),
        }
    }
}

/// A segment's identifier, key and creator, for its [`Guard`].
#[derive(Debug)]
struct SegmentId {
    id: c_int,
    key: c_int,
    creator: u32,
}

impl Made for SegmentId {
    /// `IPC_STAT`: the same key and creator, not already removed.
    fn is_still_ours(&self) -> io::Result<bool> {
        Ok(match sys::stat(self.id) {
            Ok(found) => {
                found.perm.key == self.key && found.perm.cuid == self.creator && !found.removed
            }
            Err(err) => !matches!(errno(&err), Some(libc::EIDRM | libc::EINVAL)),
        })
    }

    fn remove(&self) -> io::Result<()> {
        sys::remove(self.id)
    }
}

/// The registry entry of System V shared memory.
pub static FACILITY: Facility = Facility {
    name: "sysv-shm",
    scheme: Some("sysv-shm"),
    summary: "System V shared memory: a segment found by a numeric key, attached by both processes",
    addressing: "sysv-shm:KEY (decimal, 0x-hex, or private) or sysv-shm:id=N",
    properties: Properties {
        shape: Shape::SharedMemory,
        direction: Direction::TwoWay,
        tags: Tags::None,
        destructive_read: false,
        peek: true,
        naming: Naming::SysvKey,
        reach: Reach::Host,
        persistence: Persistence::Kernel,
        permissions: "IPC permission bits and owner (ipcs -m)",
        reliable: true,
        after_crash:
            "the segment and its bytes stay until removed; nothing marks a half-done update",
    },
    limits: || {
        vec![
            LiveLimit::from_proc("shmmax", "/proc/sys/kernel/shmmax", " bytes per segment"),
            LiveLimit::from_proc("shmall", "/proc/sys/kernel/shmall", " pages in all"),
            LiveLimit::from_proc("shmmni", "/proc/sys/kernel/shmmni", " segments"),
        ]
    },
    max_message: || None,
    #[cfg(feature = "bench")]
    connector: Some(&crate::facility::mailbox::SysvConnector),
};
