//! POSIX shared memory (`shm:/NAME`): a named object in `/dev/shm`, sized
//! with `ftruncate`, read and written with `pread`/`pwrite` or mapped with
//! `mmap(MAP_SHARED)`.
//!
//! The handle that created an object unlinks its name on drop unless
//! [`kept`](SegmentOptions::keep), as the message queues do; processes that
//! have it open or mapped keep using it after the unlink. The mode is the
//! one asked whatever the umask (`fchmod` on the new descriptor), and a
//! non-exclusive create adopts an existing object only when it is this
//! user's with exactly that mode.
//!
//! Mapping is `unsafe` (see [the module above](crate::shm)): another
//! process may shrink the object. Reading and writing through the
//! descriptor is not.
//!
//! # Examples
//!
//! ```
//! use unipc::name::PosixName;
//! use unipc::shm::posix::SegmentOptions;
//!
//! let name = PosixName::new(&format!("/unipc-doc-{}", std::process::id()))?;
//! let segment = SegmentOptions::new().size(4096).exclusive(true).create(&name)?;
//! segment.write_at(0, b"hello")?;
//! let mut got = [0; 5];
//! segment.read_at(0, &mut got)?;
//! assert_eq!(&got, b"hello");
//! assert_eq!(segment.stat()?.size, 4096);
//! # Ok::<(), unipc::Error>(())
//! ```
//!
//! # References
//!
//! shm_open(3), shm_unlink(3), ftruncate(2), mmap(2), fchmod(2).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::creator::Class;
use crate::endpoint::Endpoint;
use crate::error::ObjectName;
use crate::facility::{
    Direction, Facility, LiveLimit, Naming, Persistence, Properties, Reach, Shape, Tags,
};
use crate::guard::{Guard, Made};
use crate::name::PosixName;
use crate::ownership;
use crate::shm::{check_range, Access, Mapping};
use crate::sys::proc;
use crate::sys::shm as sys;
use crate::{Error, Mode, Result};

/// Where Linux keeps POSIX shared-memory objects.
pub const DEV_SHM: &str = "/dev/shm";

/// How often `create` retries when an object it found vanishes before it
/// can open it.
const CREATE_ATTEMPTS: usize = 64;

fn object_of(name: &PosixName) -> String {
    Endpoint::Shm(name.clone()).to_string()
}

/// How to create or open a POSIX shared-memory object.
///
/// # Examples
///
/// See the [module](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentOptions {
    size: Option<u64>,
    mode: Mode,
    exclusive: bool,
    keep: bool,
    access: Access,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions::new()
    }
}

impl SegmentOptions {
    /// No size (a new object is empty), mode 0o600, not exclusive,
    /// read-write, unlinked when the creating handle drops.
    pub fn new() -> Self {
        SegmentOptions {
            size: None,
            mode: Mode::OWNER_RW,
            exclusive: false,
            keep: false,
            access: Access::ReadWrite,
        }
    }

    /// The size a new object is given (`ftruncate`). An existing object a
    /// non-exclusive create adopts keeps its own size; use
    /// [`Segment::set_size`] to change it.
    pub fn size(mut self, bytes: u64) -> Self {
        self.size = Some(bytes);
        self
    }

    /// The permission bits of a new object, set exactly whatever the umask.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// `O_EXCL` — when true, [`create`](Self::create) fails if the name
    /// exists; when false it adopts the object there (if this user's, with
    /// the mode asked).
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

    /// How [`open`](Self::open) opens the object; a create is always
    /// read-write (it sizes the object).
    pub fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    /// `shm_open(name, O_CREAT | O_EXCL | O_RDWR, mode)`, `fchmod`,
    /// `ftruncate` — creates the object, or adopts the one under the name
    /// unless [`exclusive`](Self::exclusive).
    ///
    /// The size is checked against the free space of `/dev/shm` before
    /// anything is created: tmpfs grants an `ftruncate` it cannot back, and
    /// the pages that do not fit raise `SIGBUS` when first touched.
    ///
    /// # Errors
    ///
    /// [`Error::LimitExceeded`] for a size over the free space of
    /// `/dev/shm`; [`Error::Os`] with `EEXIST` for an exclusive create over
    /// an existing name; [`Error::ForeignObject`] when the existing object
    /// belongs to another user or has another mode (it is left untouched);
    /// [`Error::Os`] with `EACCES` when this user may not open it.
    #[doc(alias = "shm_open")]
    pub fn create(&self, name: &PosixName) -> Result<Segment> {
        let object = object_of(name);
        if let Some(size) = self.size {
            check_free_space(&object, size)?;
        }
        let mode = self.mode.bits();
        for _ in 0..CREATE_ATTEMPTS {
            match sys::open(name.as_str(), true, true, true, mode) {
                Ok(fd) => {
                    // From here on the name is ours: a failure below
                    // unlinks it (the guard is armed).
                    let mut segment = Segment::new(fd, name, object.into(), true, Access::ReadWrite)?;
                    sys::fchmod(segment.fd.as_fd(), mode)
                        .map_err(|e| Error::os(segment.object.clone(), "fchmod", e))?;
                    if let Some(size) = self.size {
                        segment.set_size(size)?;
                    }
                    segment.guard.set_armed(!self.keep);
                    return Ok(segment);
                }
                Err(err) if err.raw_os_error() == Some(libc::EEXIST) && !self.exclusive => {
                    match sys::open(name.as_str(), true, false, false, 0) {
                        Ok(fd) => {
                            let found = sys::fstat(fd.as_fd())
                                .map_err(|e| Error::os(object.as_str(), "fstat", e))?;
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
                            return Segment::new(fd, name, object.into(), false, Access::ReadWrite);
                        }
                        Err(err) if err.raw_os_error() == Some(libc::ENOENT) => continue,
                        Err(err) if err.raw_os_error() == Some(libc::EACCES) => {
                            return Err(Error::os(object, "open", err).with_hint(
                                "an object this user may not open already has this name, so it is not this user's: remove it, or use a different name",
                            ))
                        }
                        Err(err) => return Err(open_error(&object, err)),
                    }
                }
                Err(err) => return Err(create_error(&object, err)),
            }
        }
        Err(Error::os(
            object,
            "shm_open",
            io::Error::from_raw_os_error(libc::EEXIST),
        )
        .with_hint("the name was unlinked and recreated by others on every attempt"))
    }

    /// `shm_open(name, O_RDONLY or O_RDWR)` — opens an existing object as
    /// [`access`](Self::access) says. The handle never unlinks the name.
    ///
    /// # Errors
    ///
    /// [`Error::Os`] with `ENOENT` when no object has the name, `EACCES`
    /// when this user may not open it so.
    #[doc(alias = "shm_open")]
    pub fn open(&self, name: &PosixName) -> Result<Segment> {
        let object = object_of(name);
        let fd = sys::open(name.as_str(), self.access.writable(), false, false, 0)
            .map_err(|err| open_error(&object, err))?;
        Segment::new(fd, name, object.into(), false, self.access)
    }
}

fn create_error(object: &str, err: io::Error) -> Error {
    let exists = err.raw_os_error() == Some(libc::EEXIST);
    let err = Error::os(object, "create", err);
    if exists {
        err.with_hint(
            "an object with this name already exists: remove it first, or open it instead",
        )
    } else {
        err
    }
}

fn open_error(object: &str, err: io::Error) -> Error {
    let missing = err.raw_os_error() == Some(libc::ENOENT);
    let err = Error::os(object, "open", err);
    if missing {
        err.with_hint("no shared-memory object has this name")
    } else {
        err
    }
}

/// Refuses a size over the bytes free in `/dev/shm` (when `statvfs` can
/// tell).
fn check_free_space(object: &str, size: u64) -> Result<()> {
    match sys::free_bytes(DEV_SHM) {
        Some(free) if size > free => Err(Error::LimitExceeded {
            object: object.into(),
            what: "size",
            requested: size,
            limit: free,
            set_in: "the free space of /dev/shm (statvfs; the tmpfs size= mount option)",
        }),
        _ => Ok(()),
    }
}

/// `shm_unlink(name)` — removes the name; processes that have the object
/// open or mapped keep it until they close or unmap it.
///
/// # Errors
///
/// [`Error::Os`] with `ENOENT` when no object has the name, `EACCES` when
/// this user may not remove it.
#[doc(alias = "shm_unlink")]
pub fn unlink(name: &PosixName) -> Result<()> {
    let object = object_of(name);
    let forget = crate::creator::Forget::dev_shm(crate::creator::Class::Shm, name.as_str());
    sys::unlink(name.as_str()).map_err(|err| {
        let missing = err.raw_os_error() == Some(libc::ENOENT);
        let err = Error::os(object, "unlink", err);
        if missing {
            err.with_hint("no shared-memory object has this name")
        } else {
            err
        }
    })?;
    crate::creator::Forget::done(forget);
    Ok(())
}

/// What `fstat` says of an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stat {
    /// Its size in bytes.
    pub size: u64,
    /// Its permission bits.
    pub mode: Mode,
    /// Its owner.
    pub uid: u32,
    /// Its group.
    pub gid: u32,
}

/// An open POSIX shared-memory object.
#[derive(Debug)]
pub struct Segment {
    fd: OwnedFd,
    object: ObjectName,
    access: Access,
    created: bool,
    guard: Guard<SegmentName>,
}

impl Segment {
    fn new(
        fd: OwnedFd,
        name: &PosixName,
        object: ObjectName,
        created: bool,
        access: Access,
    ) -> Result<Segment> {
        let label = object.to_string();
        let identity = if created {
            let st = sys::fstat(fd.as_fd()).map_err(|e| Error::os(object.clone(), "fstat", e))?;
            Some((st.dev, st.ino))
        } else {
            None
        };
        Ok(Segment {
            fd,
            object,
            access,
            created,
            guard: {
                let guard = Guard::new(
                    SegmentName {
                        name: name.clone(),
                        identity,
                    },
                    created,
                );
                match identity {
                    Some(id) => guard.recorded(Class::Shm, &label, id),
                    None => guard,
                }
            },
        })
    }

    /// [`SegmentOptions::open`] read-write.
    ///
    /// # Errors
    /// As [`SegmentOptions::open`].
    pub fn open(name: &PosixName) -> Result<Segment> {
        SegmentOptions::new().open(name)
    }

    /// The object's name.
    pub fn name(&self) -> &PosixName {
        &self.guard.made().name
    }

    /// The object as errors name it (`shm:/NAME`).
    pub fn object(&self) -> &ObjectName {
        &self.object
    }

    /// Whether this handle created the object (and so unlinks it on drop,
    /// unless kept).
    pub fn created(&self) -> bool {
        self.created
    }

    /// Leaves the name in place when this handle drops.
    pub fn keep(mut self) -> Self {
        self.guard.keep();
        self
    }

    /// `fstat` — the size, mode and owner.
    ///
    /// # Errors
    /// [`Error::Os`] when `fstat` fails.
    pub fn stat(&self) -> Result<Stat> {
        let st = sys::fstat(self.fd.as_fd()).map_err(|e| self.os("fstat", e))?;
        Ok(Stat {
            size: st.size,
            mode: Mode::new(st.mode & 0o777)?,
            uid: st.uid,
            gid: st.gid,
        })
    }

    /// The object's size now (another process may change it).
    ///
    /// # Errors
    /// As [`stat`](Self::stat).
    pub fn size(&self) -> Result<u64> {
        Ok(self.stat()?.size)
    }

    /// `ftruncate` — sets the size; new bytes read as zero.
    ///
    /// # Errors
    ///
    /// [`Error::LimitExceeded`] when growing past the free space of
    /// `/dev/shm`; [`Error::Os`] with `EINVAL` on a read-only handle.
    #[doc(alias = "ftruncate")]
    pub fn set_size(&self, bytes: u64) -> Result<()> {
        let now = self.size()?;
        if bytes > now {
            check_free_space(&self.object, bytes - now)?;
        }
        sys::set_size(self.fd.as_fd(), bytes).map_err(|e| {
            let read_only = self.access == Access::ReadOnly;
            let err = self.os("ftruncate", e);
            if read_only {
                err.with_hint("this handle was opened read-only; open it read-write to resize")
            } else {
                err
            }
        })
    }

    /// `pread` — copies `buf.len()` bytes from `offset` into `buf`.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`] naming the range and the object's size when
    /// it runs past the end (also when another process shrank the object
    /// during the read).
    #[doc(alias = "pread")]
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let size = self.size()?;
        check_range(&self.object, "read", offset, buf.len(), size)?;
        let got = sys::read_at(self.fd.as_fd(), buf, offset).map_err(|e| self.os("pread", e))?;
        if got < buf.len() {
            // Shrunk since the size was read.
            let size = self.size()?;
            check_range(&self.object, "read", offset, buf.len(), size)?;
        }
        Ok(())
    }

    /// `pwrite` — copies `data` to `offset`. Never grows the object.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`] naming the range and the object's size when
    /// it runs past the end; [`Error::Os`] with `EBADF` on a read-only
    /// handle.
    #[doc(alias = "pwrite")]
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
        let size = self.size()?;
        check_range(&self.object, "write", offset, data.len(), size)?;
        sys::write_at(self.fd.as_fd(), data, offset).map_err(|e| {
            let read_only = self.access == Access::ReadOnly;
            let err = self.os("pwrite", e);
            if read_only {
                err.with_hint("this handle was opened read-only; open it read-write to write")
            } else {
                err
            }
        })
    }

    /// `mmap(MAP_SHARED)` — maps the whole object (its size now) into this
    /// process, read-only or read-write (a read-write map needs a
    /// read-write handle).
    ///
    /// # Safety
    ///
    /// No process may shrink the object while the mapping lives: an access
    /// to a page past the new end raises `SIGBUS`. Only processes that may
    /// write the object can shrink it, so the caller vouches for everyone
    /// with write permission (its mode and owner say who).
    ///
    /// # Errors
    ///
    /// [`Error::Os`] when `mmap` fails (`EACCES` for a read-write map of a
    /// read-only handle).
    #[doc(alias = "mmap")]
    // The one `unsafe` outside `sys/`: the hazard (another process
    // truncating the object) is the caller's to rule out, so the public
    // entry point itself must be `unsafe`, as memmap2's `Mmap::map` is.
    #[allow(unsafe_code)]
    pub unsafe fn map(&self, access: Access) -> Result<Mapping> {
        let size = self.size()?;
        let len = usize::try_from(size).map_err(|_| Error::LimitExceeded {
            object: self.object.clone(),
            what: "size",
            requested: size,
            limit: usize::MAX as u64,
            set_in: "this process's address space",
        })?;
        // SAFETY: the caller vouches, as this function's contract says, that
        // nobody shrinks the object below `len` while the mapping lives.
        let region = unsafe { sys::map_fd(self.fd.as_fd(), len, access.writable()) }
            .map_err(|e| self.os("mmap", e))?;
        Ok(Mapping::new(region, self.object.clone(), access.writable()))
    }

    /// `shm_unlink` — removes the name now if it still leads to the object
    /// this handle created (or, for an opener, whatever it leads to);
    /// whether a name was removed. Mappings and open handles stay usable.
    ///
    /// # Errors
    /// [`Error::Os`] when `shm_unlink` fails.
    #[doc(alias = "shm_unlink")]
    pub fn unlink(&mut self) -> Result<bool> {
        self.guard.remove_now().map_err(|e| self.os("unlink", e))
    }

    fn os(&self, op: &'static str, err: io::Error) -> Error {
        Error::os(self.object.clone(), op, err)
    }
}

impl AsFd for Segment {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A name and the (device, inode) of the object a handle created under it.
#[derive(Debug)]
struct SegmentName {
    name: PosixName,
    identity: Option<(u64, u64)>,
}

impl Made for SegmentName {
    /// Whether the name still leads to the object this handle created:
    /// opened read-only and compared by device and inode. Refused (EACCES)
    /// means the caller is unprivileged, and the sticky `/dev/shm` already
    /// keeps it from unlinking another user's object.
    fn is_still_ours(&self) -> io::Result<bool> {
        let Some(identity) = self.identity else {
            return Ok(true);
        };
        Ok(
            match sys::open(self.name.as_str(), false, false, false, 0) {
                Ok(fd) => sys::fstat(fd.as_fd()).is_ok_and(|st| (st.dev, st.ino) == identity),
                Err(err) => err.raw_os_error() == Some(libc::EACCES),
            },
        )
    }

    fn remove(&self) -> io::Result<()> {
        sys::unlink(self.name.as_str())
    }
}

/// The registry entry of POSIX shared memory.
pub static FACILITY: Facility = Facility {
    name: "shm",
    scheme: Some("shm"),
    summary: "POSIX shared memory: a named object in /dev/shm, mapped by both processes",
    addressing: "shm:/NAME",
    properties: Properties {
        shape: Shape::SharedMemory,
        direction: Direction::TwoWay,
        tags: Tags::None,
        destructive_read: false,
        peek: true,
        naming: Naming::IpcName,
        reach: Reach::Host,
        persistence: Persistence::Kernel,
        permissions: "file owner and mode bits in /dev/shm",
        reliable: true,
        after_crash:
            "the object and its bytes stay until unlinked; nothing marks a half-done update",
    },
    limits: || {
        vec![LiveLimit {
            name: "/dev/shm size",
            value: match (sys::total_bytes(DEV_SHM), sys::free_bytes(DEV_SHM)) {
                (Some(total), Some(free)) => format!("{total} bytes ({free} free)"),
                _ => "unreadable".to_owned(),
            },
            source: "statvfs(/dev/shm)",
        }]
    },
    max_message: || None,
    #[cfg(feature = "bench")]
    connector: Some(&crate::facility::mailbox::PosixConnector),
};
