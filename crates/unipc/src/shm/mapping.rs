//! One mapping type for both kinds of shared memory: a POSIX object mapped
//! with `mmap(MAP_SHARED)` or a System V segment attached with `shmat`.

use std::fmt;

use crate::error::ObjectName;
use crate::shm::check_range;
use crate::sys::shm::Region;
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
    pub(super) fn region(&self) -> &Region {
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
}
