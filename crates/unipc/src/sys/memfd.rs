//! Memfd calls: `memfd_create`, `fcntl(F_ADD_SEALS)` and
//! `fcntl(F_GET_SEALS)`, all through rustix. Sizing, copies and mapping
//! are the POSIX shared-memory calls in [`super::shm`]: a memfd is a
//! tmpfs file without a name.
//!
//! # Safety
//!
//! The one `unsafe` call is the `mmap` in [`map_sealed`], made safe by a
//! check just before it: the file carries `F_SEAL_SHRINK`, which nobody
//! can remove, so it never shrinks below the length mapped (no `SIGBUS`).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::fs::{MemfdFlags, SealFlags};

use super::shm::{map_fd, Region};

/// `F_SEAL_SEAL`: no seal may be added.
pub(crate) const SEAL: u32 = SealFlags::SEAL.bits();
/// `F_SEAL_SHRINK`: the file may not shrink.
pub(crate) const SHRINK: u32 = SealFlags::SHRINK.bits();
/// `F_SEAL_GROW`: the file may not grow.
pub(crate) const GROW: u32 = SealFlags::GROW.bits();
/// `F_SEAL_WRITE`: the contents may not change.
pub(crate) const WRITE: u32 = SealFlags::WRITE.bits();
/// `F_SEAL_FUTURE_WRITE`: no new write access; existing mappings keep it.
pub(crate) const FUTURE_WRITE: u32 = SealFlags::FUTURE_WRITE.bits();

/// `memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)`.
pub(crate) fn create(name: &str) -> io::Result<OwnedFd> {
    Ok(rustix::fs::memfd_create(
        name,
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )?)
}

/// `fcntl(fd, F_ADD_SEALS, seals)`.
pub(crate) fn add_seals(fd: BorrowedFd<'_>, seals: u32) -> io::Result<()> {
    Ok(rustix::fs::fcntl_add_seals(
        fd,
        SealFlags::from_bits_retain(seals),
    )?)
}

/// `fcntl(fd, F_GET_SEALS)`: `EINVAL` when the file cannot be sealed (not
/// a memfd or other shmem/hugetlbfs file).
pub(crate) fn seals(fd: BorrowedFd<'_>) -> io::Result<u32> {
    Ok(rustix::fs::fcntl_get_seals(fd)?.bits())
}

/// `fstat(fd)`: whether it is a regular file (a memfd is one).
pub(crate) fn is_regular_file(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let st = rustix::fs::fstat(fd)?;
    Ok(rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile)
}

/// `readlink("/proc/self/fd/N")`: what the kernel calls the file
/// (`/memfd:NAME (deleted)` for a memfd), when `/proc` says.
pub(crate) fn link_name(fd: BorrowedFd<'_>) -> Option<String> {
    use std::os::fd::AsRawFd;
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    Some(link.to_string_lossy().into_owned())
}

/// `fcntl(F_GET_SEALS)` + `fstat` + `mmap(MAP_SHARED)` — maps `len` bytes
/// of a file that carries `F_SEAL_SHRINK` and is at least `len` bytes
/// long; `EPERM` when it lacks the seal, `EINVAL` when it is shorter.
pub(crate) fn map_sealed(fd: BorrowedFd<'_>, len: usize, write: bool) -> io::Result<Region> {
    if seals(fd)? & SHRINK == 0 {
        return Err(io::Error::from_raw_os_error(libc::EPERM));
    }
    let size = rustix::fs::fstat(fd)?.st_size;
    if u64::try_from(size).unwrap_or(0) < len as u64 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: `map_fd` needs the file not to shrink below `len` while the
    // region lives. It carries F_SEAL_SHRINK (checked above; seals are
    // never removed), so its size can only stay or grow from the size
    // measured after the check, which is at least `len`.
    unsafe { map_fd(fd, len, write) }
}
