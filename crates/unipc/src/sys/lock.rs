//! File locks: `flock(2)` whole-file locks and `fcntl(2)` byte-range
//! record locks, both the classic process-owned kind (`F_SETLK`,
//! `F_SETLKW`, `F_GETLK`) and the open-file-description kind (`F_OFD_*`).
//!
//! rustix covers `flock` and, in `fcntl_lock`, only a whole-file fcntl
//! lock, with no `F_GETLK` and no OFD commands; nix's `fcntl` takes a
//! `libc::flock` for every one of the six commands, so the range calls go
//! through nix. The one thing neither has is a way to build the
//! `libc::flock` argument without naming every field (some targets add
//! padding fields), hence the one `unsafe` block: an all-zero struct.
//!
//! # Safety
//! The only `unsafe` here zero-initializes `libc::flock`, a C struct of
//! plain integers for which all-zero bytes are a valid value.
#![allow(unsafe_code)]

use std::os::fd::BorrowedFd;

use nix::fcntl::{fcntl, FcntlArg};
use rustix::fs::FlockOperation;
use rustix::io;

/// Which owner an fcntl record lock has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    /// The process (`F_SETLK`): released when the process closes any
    /// descriptor of the file, not inherited by fork.
    Process,
    /// The open file description (`F_OFD_SETLK`): released when its last
    /// descriptor is closed, shared by every descriptor dup'ed or
    /// inherited from it.
    Description,
}

/// The type of an fcntl lock (`l_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LockType {
    /// `F_RDLCK`: shared.
    Read,
    /// `F_WRLCK`: exclusive.
    Write,
    /// `F_UNLCK`: release.
    Unlock,
}

/// A conflicting lock as `F_GETLK` / `F_OFD_GETLK` report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Conflict {
    /// Read or write.
    pub(crate) write: bool,
    /// First byte.
    pub(crate) start: u64,
    /// Length in bytes; 0 means to the end of the file.
    pub(crate) len: u64,
    /// The holder's pid; -1 when the holder is an OFD lock.
    pub(crate) pid: i32,
}

fn flock_arg(kind: LockType, start: i64, len: i64) -> libc::flock {
    // SAFETY: `libc::flock` is a C struct of integer fields (plus, on some
    // targets, integer padding); the all-zero bit pattern is a valid value
    // of every one of them, and F_OFD_* require `l_pid` to be 0.
    let mut arg: libc::flock = unsafe { std::mem::zeroed() };
    arg.l_type = match kind {
        LockType::Read => libc::F_RDLCK,
        LockType::Write => libc::F_WRLCK,
        LockType::Unlock => libc::F_UNLCK,
    } as libc::c_short;
    arg.l_whence = libc::SEEK_SET as libc::c_short;
    arg.l_start = start as libc::off_t;
    arg.l_len = len as libc::off_t;
    arg
}

/// `fcntl(F_SETLK / F_SETLKW / F_OFD_SETLK / F_OFD_SETLKW)` on bytes
/// `start .. start + len` (`len` 0: to the end of the file, however it
/// grows). `wait` picks the blocking command; EINTR is returned to the
/// caller, which decides whether to resume.
pub(crate) fn set(
    fd: BorrowedFd<'_>,
    owner: Owner,
    kind: LockType,
    start: i64,
    len: i64,
    wait: bool,
) -> io::Result<()> {
    let arg = flock_arg(kind, start, len);
    let cmd = match (owner, wait) {
        (Owner::Process, false) => FcntlArg::F_SETLK(&arg),
        (Owner::Process, true) => FcntlArg::F_SETLKW(&arg),
        (Owner::Description, false) => FcntlArg::F_OFD_SETLK(&arg),
        (Owner::Description, true) => FcntlArg::F_OFD_SETLKW(&arg),
    };
    fcntl(fd, cmd)
        .map(drop)
        .map_err(|e| io::Errno::from_raw_os_error(e as i32))
}

/// `fcntl(F_GETLK / F_OFD_GETLK)`: the first lock that would conflict with
/// taking `kind` on the range, or `None` when it could be taken. `F_GETLK`
/// ignores this process's own classic locks, `F_OFD_GETLK` the locks of
/// this open file description; both see classic and OFD locks of others.
pub(crate) fn get(
    fd: BorrowedFd<'_>,
    owner: Owner,
    kind: LockType,
    start: i64,
    len: i64,
) -> io::Result<Option<Conflict>> {
    let mut arg = flock_arg(kind, start, len);
    let cmd = match owner {
        Owner::Process => FcntlArg::F_GETLK(&mut arg),
        Owner::Description => FcntlArg::F_OFD_GETLK(&mut arg),
    };
    fcntl(fd, cmd).map_err(|e| io::Errno::from_raw_os_error(e as i32))?;
    if arg.l_type == libc::F_UNLCK as libc::c_short {
        return Ok(None);
    }
    Ok(Some(Conflict {
        write: arg.l_type == libc::F_WRLCK as libc::c_short,
        start: arg.l_start as u64,
        len: arg.l_len as u64,
        pid: arg.l_pid,
    }))
}

/// `flock(fd, LOCK_SH / LOCK_EX [| LOCK_NB])`; EINTR is returned.
pub(crate) fn flock(fd: BorrowedFd<'_>, shared: bool, wait: bool) -> io::Result<()> {
    let op = match (shared, wait) {
        (true, true) => FlockOperation::LockShared,
        (true, false) => FlockOperation::NonBlockingLockShared,
        (false, true) => FlockOperation::LockExclusive,
        (false, false) => FlockOperation::NonBlockingLockExclusive,
    };
    rustix::fs::flock(fd, op)
}

/// `flock(fd, LOCK_UN)`.
pub(crate) fn funlock(fd: BorrowedFd<'_>) -> io::Result<()> {
    rustix::fs::flock(fd, FlockOperation::Unlock)
}

/// `fstat(fd)`: the device (major, minor) and inode `/proc/locks` names
/// the file by.
pub(crate) fn identity(fd: BorrowedFd<'_>) -> io::Result<(u32, u32, u64)> {
    let st = rustix::fs::fstat(fd)?;
    Ok((
        rustix::fs::major(st.st_dev),
        rustix::fs::minor(st.st_dev),
        st.st_ino,
    ))
}

/// Opens `path` for locking, creating it (mode 0644 less the umask) when
/// missing and `create` says so; never follows a symbolic link in the last component
/// (`O_NOFOLLOW`: ELOOP) and never blocks on a FIFO or device planted
/// there (`O_NONBLOCK`; the caller checks the type with [`file_type`]).
/// `write` opens it read-write (an exclusive fcntl lock needs it); a
/// directory is opened read-only instead.
pub(crate) fn open(
    path: &std::path::Path,
    write: bool,
    create: bool,
) -> io::Result<std::os::fd::OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    let common = OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
    let access = if write { OFlags::RDWR } else { OFlags::RDONLY };
    match rustix::fs::open(
        path,
        common
            | access
            | if create {
                OFlags::CREATE
            } else {
                OFlags::empty()
            },
        Mode::from_raw_mode(0o644),
    ) {
        Err(io::Errno::ISDIR) => rustix::fs::open(
            path,
            common | OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        ),
        other => other,
    }
}

/// `fstat(fd)`'s file type.
pub(crate) fn file_type(fd: BorrowedFd<'_>) -> io::Result<rustix::fs::FileType> {
    Ok(rustix::fs::FileType::from_raw_mode(
        rustix::fs::fstat(fd)?.st_mode,
    ))
}

pub(crate) use super::spawn::spawn_dying_with_parent;
