//! Shared memory: bytes two processes see at once, with no system call per
//! transfer.
//!
//! The shared-memory branch of the IPC taxonomy, beside
//! [`stream`](crate::stream) and [`message`](crate::message):
//!
//! - [`posix`]: POSIX objects (`shm:/NAME`), files in `/dev/shm` that are
//!   sized with `ftruncate` and mapped with `mmap(MAP_SHARED)`;
//! - [`sysv`]: System V segments (`sysv-shm:KEY`), sized once at `shmget`
//!   and attached with `shmat`;
//! - [`Mapping`]: what either kind looks like once mapped into this
//!   process, with bounds-checked copies in and out, typed views of
//!   plain-old-data values and arrays ([`View`], [`SliceView`]) and atomic
//!   words ([`Mapping::atomic_u64`]).
//!
//! Nothing here synchronizes: two processes writing the same bytes see
//! some mix of both writes. And nothing read from shared memory can be
//! trusted: the other process may be broken or hostile. That is why a
//! [`Mapping`] only copies ([`Mapping::read_at`], [`Mapping::write_at`])
//! and never lends a `&[u8]` into memory that another process can change
//! under it.
//!
//! # Which mappings are `unsafe`, and why
//!
//! A POSIX object can be truncated by any process that may write it, and
//! an access to a mapped page past the new end raises `SIGBUS`, which no
//! safe Rust code can recover from. So [`posix::Segment::map`] is an
//! `unsafe fn`, exactly as memmap2's `Mmap::map` is: the caller vouches
//! that nobody shrinks the object while mapped. Reading and writing a POSIX
//! object without mapping it ([`posix::Segment::read_at`],
//! [`posix::Segment::write_at`], `pread`/`pwrite`) is safe: a truncated
//! object gives a short read, never a signal. A System V segment never
//! changes size once made, so [`sysv::Segment::attach`] is safe.
//!
//! # References
//!
//! shm_overview(7), shm_open(3), mmap(2), shmget(2), shmat(2), shmctl(2).

pub mod mapped;
mod mapping;
pub mod memfd;
pub mod posix;
pub mod sysv;
mod view;

pub use mapping::Mapping;
pub use view::{SliceView, View};

/// Read-only or read-write: how a segment is opened, mapped or attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Access {
    /// Reading only (`O_RDONLY`, `PROT_READ`, `SHM_RDONLY`).
    ReadOnly,
    /// Reading and writing.
    #[default]
    ReadWrite,
}

impl Access {
    pub(crate) fn writable(self) -> bool {
        self == Access::ReadWrite
    }
}

/// Refuses the range `offset..offset + len` of an object of `size` bytes
/// unless it lies inside; the range as `usize`s when it does.
pub(crate) fn check_range(
    object: &crate::ObjectName,
    op: &'static str,
    offset: u64,
    len: usize,
    size: u64,
) -> crate::Result<()> {
    let fits = offset
        .checked_add(len as u64)
        .is_some_and(|end| end <= size);
    if fits {
        Ok(())
    } else {
        Err(crate::Error::OutOfBounds {
            object: object.clone(),
            op,
            offset,
            len: len as u64,
            size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_checked_against_the_size_without_overflow() {
        let object = crate::ObjectName::from("shm:/x");
        assert!(check_range(&object, "read", 0, 10, 10).is_ok());
        assert!(check_range(&object, "read", 10, 0, 10).is_ok());
        let err = check_range(&object, "write", 8, 3, 10)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "shm:/x: write of 3 bytes at offset 8 runs past the end of the object, which is 10 bytes"
        );
        assert!(check_range(&object, "read", u64::MAX, 2, 10).is_err());
    }
}
