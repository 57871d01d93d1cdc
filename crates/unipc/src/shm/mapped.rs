//! Anonymous and file-backed mappings: memory no name in `/dev/shm` or
//! System V key reaches, shared with forked children or backed by a file.
//!
//! Part of [`shm`](crate::shm), beside the named kinds. Both come out as a
//! [`Mapping`], with the same bounds-checked copies, plus
//! [`Mapping::flush`] (`msync`) and [`Mapping::advise`] (`madvise`).
//!
//! - **Anonymous** ([`MapOptions::map_anonymous`]):
//!   `mmap(MAP_ANONYMOUS | MAP_SHARED)` or `MAP_PRIVATE`, zeroed memory.
//!   A shared one is the same memory in every child this process *forks*
//!   afterwards, and only there: nothing names it, so a process that was
//!   not forked from the mapper (one started by `exec`, or any other)
//!   cannot reach it. To share with such a process, use a
//!   [memfd](crate::shm::memfd) passed by descriptor or a POSIX object. A
//!   private one is copied on write at the fork: each side sees only its
//!   own writes. This calls rustix's `mmap_anonymous` directly rather than
//!   memmap2's `MmapMut::map_anon`, which maps `MAP_PRIVATE` and so shares
//!   nothing with a child. Mapping it is safe: no file backs it, so nothing
//!   can shrink it.
//! - **File-backed** ([`MapOptions::map_file`]): `mmap` of a file this
//!   call opens, `MAP_SHARED` (writes reach the file and every process
//!   mapping it; [`Mapping::flush`] waits until they are written back) or
//!   `MAP_PRIVATE` (writes are copied on write and never reach the file).
//!   Mapping a file is `unsafe`, as memmap2's `Mmap::map` is: any process
//!   that may write the file can truncate it, and touching a mapped page
//!   past the new end raises `SIGBUS`, a private mapping included (it
//!   reads the file's pages until it writes them).
//!
//! # Examples
//!
//! ```
//! use unipc::shm::mapped::{MapOptions, Sharing};
//!
//! let map = MapOptions::new().sharing(Sharing::Shared).map_anonymous(4096)?;
//! map.write_at(0, b"seen by forked children")?;
//! # Ok::<(), unipc::Error>(())
//! ```
//!
//! # References
//!
//! mmap(2), msync(2), madvise(2), fork(2)

use std::fs::OpenOptions;
use std::os::fd::AsFd;
use std::path::Path;

use crate::error::ObjectName;
use crate::shm::{Access, Mapping};
use crate::sys::shm as sys;
use crate::{Error, Result};

/// Whether a mapping's writes are seen by others: `MAP_SHARED` or
/// `MAP_PRIVATE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Sharing {
    /// `MAP_SHARED`: writes reach the file, or for an anonymous mapping
    /// the children forked afterwards.
    #[default]
    Shared,
    /// `MAP_PRIVATE`: writes are copied on write and seen by this process
    /// alone.
    Private,
}

/// How pages will be used, for [`Mapping::advise`] (`madvise`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Advice {
    /// `MADV_NORMAL`: no special treatment.
    Normal,
    /// `MADV_RANDOM`: expect random access; read ahead less.
    Random,
    /// `MADV_SEQUENTIAL`: expect sequential access; read ahead more.
    Sequential,
    /// `MADV_WILLNEED`: expect access soon; read ahead now.
    WillNeed,
    /// `MADV_DONTNEED`: drop the pages now; see [`Mapping::advise`] for
    /// what they read afterwards.
    DontNeed,
}

/// Options for an anonymous or file-backed mapping.
///
/// # Examples
///
/// ```
/// use unipc::shm::mapped::{MapOptions, Sharing};
/// use unipc::shm::Access;
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("data");
/// std::fs::write(&path, b"hello world")?;
/// // SAFETY: the file is in a directory only this process knows, and
/// // nobody truncates it while it is mapped.
/// let map = unsafe { MapOptions::new().access(Access::ReadWrite).map_file(&path) }?;
/// map.write_at(0, b"HELLO")?;
/// map.flush()?;
/// assert_eq!(std::fs::read(&path)?, b"HELLO world");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct MapOptions {
    access: Access,
    sharing: Sharing,
}

impl MapOptions {
    /// Read-write and shared.
    pub fn new() -> Self {
        MapOptions::default()
    }

    /// Read-only or read-write (the default). A file is opened read-write
    /// only for a shared read-write mapping; a private one may be written
    /// even when the file is opened read-only. An anonymous mapping is
    /// always read-write.
    pub fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    /// Shared (the default) or private.
    pub fn sharing(mut self, sharing: Sharing) -> Self {
        self.sharing = sharing;
        self
    }

    /// `mmap(MAP_ANONYMOUS)` — `len` zeroed bytes, read-write, shared
    /// with the children forked afterwards or private.
    ///
    /// # Errors
    ///
    /// [`Error::Os`] when `mmap` fails (`ENOMEM`).
    ///
    /// # Examples
    ///
    /// ```
    /// use unipc::shm::mapped::{MapOptions, Sharing};
    ///
    /// let map = MapOptions::new().sharing(Sharing::Private).map_anonymous(100)?;
    /// let mut got = [1; 4];
    /// map.read_at(96, &mut got)?;
    /// assert_eq!(got, [0; 4]);
    /// assert!(map.read_at(97, &mut got).is_err());
    /// # Ok::<(), unipc::Error>(())
    /// ```
    #[doc(alias = "MAP_ANONYMOUS")]
    pub fn map_anonymous(&self, len: usize) -> Result<Mapping> {
        let object = ObjectName::from(match self.sharing {
            Sharing::Shared => "anonymous shared mapping",
            Sharing::Private => "anonymous private mapping",
        });
        let region = sys::map_anonymous(len, self.sharing == Sharing::Shared)
            .map_err(|e| Error::os(object.clone(), "mmap", e))?;
        Ok(Mapping::new(region, object, true))
    }

    /// `open` + `mmap` — maps the whole file at `path` (its size now); the
    /// descriptor is closed again, the mapping keeps the file.
    ///
    /// # Safety
    ///
    /// No process may truncate the file below its size now while the
    /// mapping lives: an access to a page past the new end raises
    /// `SIGBUS`, for a private mapping too. The caller vouches for every
    /// process that may write the file (its mode, owner and directory say
    /// who).
    ///
    /// # Errors
    ///
    /// [`Error::Os`] naming the path when `open`, `fstat` or `mmap` fails;
    /// [`Error::LimitExceeded`] when the file is larger than this
    /// process's address space.
    #[doc(alias = "mmap")]
    // A file another process can truncate: the hazard is the caller's to
    // rule out, so the entry point itself is `unsafe`, as memmap2's
    // `Mmap::map` and `shm::posix::Segment::map` are.
    #[allow(unsafe_code)]
    pub unsafe fn map_file(&self, path: impl AsRef<Path>) -> Result<Mapping> {
        let path = path.as_ref();
        let object = ObjectName::from(path.display().to_string());
        let write = self.access.writable();
        let file = OpenOptions::new()
            .read(true)
            .write(write && self.sharing == Sharing::Shared)
            .open(path)
            .map_err(|e| Error::os(object.clone(), "open", e))?;
        let size = sys::fstat(file.as_fd())
            .map_err(|e| Error::os(object.clone(), "fstat", e))?
            .size;
        let len = usize::try_from(size).map_err(|_| Error::LimitExceeded {
            object: object.clone(),
            what: "size",
            requested: size,
            limit: usize::MAX as u64,
            set_in: "this process's address space",
        })?;
        // SAFETY: the caller vouches, as this function's contract says,
        // that nobody truncates the file below `len` while mapped.
        let region =
            unsafe { sys::map_fd_with(file.as_fd(), len, write, self.sharing == Sharing::Shared) }
                .map_err(|e| Error::os(object.clone(), "mmap", e))?;
        Ok(Mapping::new(region, object, write))
    }
}
