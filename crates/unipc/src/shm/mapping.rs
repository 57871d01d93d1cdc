//! One mapping type for every kind of shared memory: a POSIX object or a
//! memfd mapped with `mmap(MAP_SHARED)`, a System V segment attached with
//! `shmat`, an anonymous or file-backed mapping (`shm::mapped`).

use std::fmt;

use crate::error::ObjectName;
use crate::shm::check_range;
use crate::shm::mapped::Advice;
use crate::sys::shm::{self as sys, Region};
use crate::{Error, Result};

/// Shared memory mapped into this process; unmapped (`munmap`) or detached
/// (`shmdt`) on drop.
///
/// It copies bytes in and out and never lends a reference into the memory,
/// which another process may change at any moment. Every copy is checked
/// against [`len`](Self::len) first.
///
/// # Examples
///
/// ```
/// use unipc::shm::{sysv::SegmentOptions, Access};
/// use unipc::name::SysvKey;
///
/// let segment = SegmentOptions::new().size(4096).create(SysvKey::Private)?;
/// let map = segment.attach(Access::ReadWrite)?;
/// map.write_at(100, b"hello")?;
/// let mut got = [0; 5];
/// map.read_at(100, &mut got)?;
/// assert_eq!(&got, b"hello");
/// assert!(map.write_at(4093, b"hello").is_err());
/// # Ok::<(), unipc::Error>(())
/// ```
pub struct Mapping {
    region: Region,
    object: ObjectName,
    writable: bool,
}

impl fmt::Debug for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mapping")
            .field("object", &self.object)
            .field("len", &self.region.len())
            .field("writable", &self.writable)
            .finish()
    }
}

impl Mapping {
    pub(crate) fn new(region: Region, object: ObjectName, writable: bool) -> Self {
        Mapping {
            region,
            object,
            writable,
        }
    }

    /// The mapped length in bytes.
    pub fn len(&self) -> usize {
        self.region.len()
    }

    /// Whether nothing is mapped (a zero-length object).
    pub fn is_empty(&self) -> bool {
        self.region.len() == 0
    }

    /// Whether [`write_at`](Self::write_at) is allowed.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// The address the mapping starts at in this process, for diagnostics
    /// (`/proc/self/maps`); never dereferenced by this crate's callers.
    pub fn addr(&self) -> usize {
        self.region.addr()
    }

    /// The object mapped.
    pub fn object(&self) -> &ObjectName {
        &self.object
    }

    /// The mapped memory, for the typed views.
    pub(crate) fn region(&self) -> &Region {
        &self.region
    }

    /// Copies `buf.len()` bytes from `offset` into `buf`.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`] naming the range and the mapping's size when
    /// the range runs past the end; nothing is copied.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        check_range(
            &self.object,
            "read",
            offset as u64,
            buf.len(),
            self.len() as u64,
        )?;
        self.region.copy_out(offset, buf);
        Ok(())
    }

    /// Copies `data` to `offset`.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`] naming the range and the mapping's size when
    /// the range runs past the end; [`Error::Unsupported`] when mapped
    /// read-only. Nothing is copied then.
    pub fn write_at(&self, offset: usize, data: &[u8]) -> Result<()> {
        if !self.writable {
            return Err(Error::Unsupported {
                object: self.object.clone(),
                what: "writing".into(),
                reason: "it is mapped read-only; map or attach it read-write".into(),
            });
        }
        check_range(
            &self.object,
            "write",
            offset as u64,
            data.len(),
            self.len() as u64,
        )?;
        self.region.copy_in(offset, data);
        Ok(())
    }

    /// `msync(MS_SYNC)` — writes the changes made through a shared file
    /// mapping back to the file before returning (the kernel does so by
    /// itself some time later otherwise). For other kinds of mapping,
    /// whose memory is the object itself, it is harmless and changes
    /// nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Os`] when `msync` fails (`EIO` when the file's storage
    /// failed).
    ///
    /// # Examples
    ///
    /// ```
    /// use unipc::shm::mapped::{MapOptions, Sharing};
    ///
    /// let map = MapOptions::new().sharing(Sharing::Shared).map_anonymous(4096)?;
    /// map.write_at(0, b"x")?;
    /// map.flush()?;
    /// # Ok::<(), unipc::Error>(())
    /// ```
    ///
    /// # References
    ///
    /// msync(2)
    #[doc(alias = "msync")]
    pub fn flush(&self) -> Result<()> {
        self.flush_range(0, self.len())
    }

    /// `msync(MS_SYNC)` of the pages covering `offset..offset + len`.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`] when the range runs past the end;
    /// [`Error::Os`] when `msync` fails.
    pub fn flush_range(&self, offset: usize, len: usize) -> Result<()> {
        check_range(&self.object, "msync", offset as u64, len, self.len() as u64)?;
        self.region
            .sync(offset, len)
            .map_err(|e| Error::os(self.object.clone(), "msync", e))
    }

    /// `madvise` — tells the kernel how the pages covering `offset..offset
    /// + len` will be used.
    ///
    /// [`Advice::DontNeed`] drops the pages: a shared or file-backed
    /// mapping then reads the object's bytes again, a private anonymous one
    /// reads zeros, and a private file mapping loses its copied-on-write
    /// changes. That changes bytes, never memory safety, since nothing
    /// refers into a mapping.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`] when the range runs past the end;
    /// [`Error::Os`] when `madvise` fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use unipc::shm::mapped::{Advice, MapOptions, Sharing};
    ///
    /// let map = MapOptions::new().sharing(Sharing::Private).map_anonymous(4096)?;
    /// map.write_at(0, b"x")?;
    /// map.advise(0, map.len(), Advice::DontNeed)?;
    /// let mut got = [1];
    /// map.read_at(0, &mut got)?;
    /// assert_eq!(got, [0]); // a private anonymous page dropped reads zeros
    /// # Ok::<(), unipc::Error>(())
    /// ```
    ///
    /// # References
    ///
    /// madvise(2)
    #[doc(alias = "madvise")]
    pub fn advise(&self, offset: usize, len: usize, advice: Advice) -> Result<()> {
        check_range(
            &self.object,
            "madvise",
            offset as u64,
            len,
            self.len() as u64,
        )?;
        let advice = match advice {
            Advice::Normal => sys::Advice::Normal,
            Advice::Random => sys::Advice::Random,
            Advice::Sequential => sys::Advice::Sequential,
            Advice::WillNeed => sys::Advice::WillNeed,
            Advice::DontNeed => sys::Advice::DontNeed,
        };
        self.region
            .advise(offset, len, advice)
            .map_err(|e| Error::os(self.object.clone(), "madvise", e))
    }
}
