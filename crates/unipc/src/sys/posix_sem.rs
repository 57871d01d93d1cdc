//! POSIX semaphores: `sem_init`, `sem_wait`, `sem_trywait`,
//! `sem_timedwait`, `sem_post`, `sem_getvalue`, `sem_destroy`,
//! `sem_unlink` through libc, because neither rustix nor nix wraps POSIX
//! semaphores (they live in the C library, over a futex, not in the
//! kernel).
//!
//! A semaphore is a `sem_t` in memory the processes share: a named one is
//! the file `/dev/shm/sem.NAME` holding one `sem_t`, which glibc's
//! `sem_open` maps; an unnamed one sits wherever the caller placed it in a
//! shared mapping. Both are driven by the same calls on a pointer into a
//! [`Region`], so [`Sem`] borrows the region it points into.
//!
//! Named semaphores are made here rather than by `sem_open`, in the same
//! file format (a file of `sizeof(sem_t)` bytes initialized by
//! `sem_init(pshared = 1)`, which is byte for byte what `sem_open` writes),
//! so that glibc, musl and Python's `posix_ipc` open them as their own.
//! `sem_open` is not used because it cannot be made safe here: it creates
//! a temporary file with the mode masked by the umask and `link`s it into
//! place, keeping no descriptor, so the exact mode could only be set by
//! path afterwards, and which inode it mapped cannot be told; opening, it
//! maps whatever file is under the name without checking its type or size
//! (a short file raises `SIGBUS` at the first wait). [`Named::create`]
//! instead opens an unnamed `O_TMPFILE` in `/dev/shm`, sets the mode on
//! that descriptor before the file has a name, initializes it, and only
//! then `linkat`s it to the name (`EEXIST` if anything is there, a symlink
//! included: `link` never follows its new path). Nothing is ever visible
//! under a temporary name, so a crash leaves nothing behind.
//!
//! # Safety
//!
//! Every `unsafe` block is one call. A `sem_t` pointer always comes from
//! [`Region::slot`], which asserted it inside the region and aligned, and
//! a [`Sem`] borrows that region, so the memory stays mapped while it is
//! used. glibc's `sem_t` holds only integers (the value and waiter count,
//! a futex flag): whatever another process wrote there is some state, not
//! a pointer, so a broken peer can make waits hang or wake early, never
//! make these calls touch other memory. What POSIX leaves undefined is a
//! `sem_t` that no `sem_init` initialized: [`Sem::assume_init`] is an
//! `unsafe fn` for that reason, and [`looks_initialized`] catches the
//! common case (zeroed memory) on glibc. The one hazard outside this
//! file's control is a process with write permission truncating a named
//! semaphore's file, which raises `SIGBUS` at the next call; see
//! [`Named`].
#![allow(unsafe_code)]

use std::io;
use std::marker::PhantomData;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;

use libc::sem_t;
use rustix::fs::{AtFlags, Mode as RawMode, OFlags, CWD};
use rustix::time::Timespec;

use super::shm::{self as shm_sys, Region};

/// Where glibc keeps named semaphores, and the prefix of their file names.
pub(crate) const DIR: &str = "/dev/shm";
/// The file-name prefix glibc gives a named semaphore (`sem.NAME`).
pub(crate) const PREFIX: &str = "sem.";

/// The size of a `sem_t`, which is the size of a named semaphore's file.
pub(crate) const SIZE: usize = size_of::<sem_t>();

fn cvt(ret: libc::c_int) -> io::Result<()> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The largest value a semaphore may hold, `sysconf(_SC_SEM_VALUE_MAX)`
/// (`SEM_VALUE_MAX`, `INT_MAX` in glibc).
pub(crate) fn value_max() -> u32 {
    // SAFETY: sysconf takes an integer and reads no memory.
    let max = unsafe { libc::sysconf(libc::_SC_SEM_VALUE_MAX) };
    u32::try_from(max).unwrap_or(i32::MAX as u32)
}

/// One `sem_t` in a region this borrows: the calls that operate on it in
/// place. Threads and processes may use it at once (that is its point).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sem<'m> {
    ptr: NonNull<sem_t>,
    region: PhantomData<&'m Region>,
}

// SAFETY: a `Sem` is a pointer into a shared mapping that the borrowed
// region keeps mapped; the semaphore calls are thread-safe (and
// process-safe: other processes use the same memory anyway).
unsafe impl Send for Sem<'_> {}
// SAFETY: as for `Send`: every method takes `&self` and is one
// thread-safe C call.
unsafe impl Sync for Sem<'_> {}

impl<'m> Sem<'m> {
    /// `sem_init(sem, 1, value)` on the `sem_t` at `offset` of `region`:
    /// a new process-shared semaphore.
    ///
    /// # Panics
    /// When the `sem_t` runs past the region's end or is misaligned (the
    /// caller checks first, with `Mapping::shared_slot`).
    ///
    /// The caller must also have mapped the region writable.
    pub(crate) fn init(region: &'m Region, offset: usize, value: u32) -> io::Result<Sem<'m>> {
        let ptr = region.slot::<sem_t>(offset);
        // SAFETY: `slot` asserted the `sem_t` inside the region and
        // aligned, and the region stays mapped while `'m` lasts; sem_init
        // only writes those bytes, which any process may be writing too
        // (the worst a concurrent user sees is a reset semaphore: glibc's
        // sem_t is integers only). pshared = 1 because the memory is shared.
        cvt(unsafe { libc::sem_init(ptr, 1, value) })?;
        Ok(Sem {
            ptr: NonNull::new(ptr).expect("a slot inside a region is not null"),
            region: PhantomData,
        })
    }

    /// The `sem_t` at `offset` of `region`, which some process already
    /// initialized.
    ///
    /// # Safety
    /// `sem_init(pshared = 1)` (or glibc's `sem_open`) initialized the
    /// `sem_t` there, in this or another process, and no one destroys it
    /// while the `Sem` is used (POSIX leaves any other use undefined).
    ///
    /// # Panics
    /// As [`init`](Self::init).
    pub(crate) unsafe fn assume_init(region: &'m Region, offset: usize) -> Sem<'m> {
        Sem {
            ptr: NonNull::new(region.slot::<sem_t>(offset))
                .expect("a slot inside a region is not null"),
            region: PhantomData,
        }
    }

    /// `sem_wait` — blocks until the value is above zero, then takes one.
    /// `EINTR` is returned, not retried (the caller counts its deadline).
    pub(crate) fn wait(&self) -> io::Result<()> {
        // SAFETY: `ptr` is an initialized sem_t inside a region borrowed
        // for `'m` (the constructors' contracts).
        cvt(unsafe { libc::sem_wait(self.ptr.as_ptr()) })
    }

    /// `sem_trywait` — takes one if the value is above zero, else `EAGAIN`.
    pub(crate) fn try_wait(&self) -> io::Result<()> {
        // SAFETY: as for `wait`.
        cvt(unsafe { libc::sem_trywait(self.ptr.as_ptr()) })
    }

    /// `sem_timedwait` — as `wait`, until `deadline` (absolute,
    /// `CLOCK_REALTIME`), then `ETIMEDOUT`.
    pub(crate) fn timed_wait(&self, deadline: Timespec) -> io::Result<()> {
        let abs = libc::timespec {
            tv_sec: deadline.tv_sec as libc::time_t,
            tv_nsec: deadline.tv_nsec as _,
        };
        // SAFETY: as for `wait`; `abs` is a valid timespec on this stack
        // frame, read only during the call.
        cvt(unsafe { libc::sem_timedwait(self.ptr.as_ptr(), &abs) })
    }

    /// `sem_post` — adds one and wakes a waiter; `EOVERFLOW` at
    /// `SEM_VALUE_MAX`.
    pub(crate) fn post(&self) -> io::Result<()> {
        // SAFETY: as for `wait`.
        cvt(unsafe { libc::sem_post(self.ptr.as_ptr()) })
    }

    /// `sem_getvalue` — the value now (never negative in glibc: waiters
    /// are not counted in it).
    pub(crate) fn value(&self) -> io::Result<i32> {
        let mut value: libc::c_int = 0;
        // SAFETY: as for `wait`; `value` is a live int the call writes.
        cvt(unsafe { libc::sem_getvalue(self.ptr.as_ptr(), &mut value) })?;
        Ok(value)
    }

    /// `sem_destroy`.
    ///
    /// # Safety
    /// No process waits on the semaphore or uses it afterwards, unless it
    /// is initialized again (POSIX leaves anything else undefined).
    pub(crate) unsafe fn destroy(self) -> io::Result<()> {
        // SAFETY: as for `wait`; the caller vouches nobody uses it after.
        cvt(unsafe { libc::sem_destroy(self.ptr.as_ptr()) })
    }
}

/// Whether the `sem_t` at `offset` of `region` looks initialized for
/// sharing between processes: on 64-bit glibc, whose `sem_t` is `{ u64
/// value and waiters; int private; int pad }`, `sem_init(pshared = 1)` and
/// `sem_open` set `private` to `FUTEX_SHARED` (128), and zeroed memory,
/// or a semaphore initialized for threads only (0), would use futexes
/// private to each process, so a post in one would never wake a waiter in
/// another. Elsewhere there is nothing to check, and this says yes.
///
/// # Panics
/// As [`Sem::init`].
pub(crate) fn looks_initialized(region: &Region, offset: usize) -> bool {
    let mut bytes = [0u8; SIZE];
    region.copy_out(offset, &mut bytes);
    glibc_shared_flag(&bytes)
}

#[cfg(all(target_env = "gnu", target_pointer_width = "64"))]
fn glibc_shared_flag(bytes: &[u8; SIZE]) -> bool {
    const FUTEX_SHARED: i32 = 128;
    i32::from_ne_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) == FUTEX_SHARED
}

#[cfg(not(all(target_env = "gnu", target_pointer_width = "64")))]
fn glibc_shared_flag(_bytes: &[u8; SIZE]) -> bool {
    true
}

/// `sem_unlink(name)` — removes `/dev/shm/sem.NAME`.
pub(crate) fn unlink(name: &str) -> io::Result<()> {
    let name =
        std::ffi::CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `name` is a NUL-terminated string that outlives the call.
    cvt(unsafe { libc::sem_unlink(name.as_ptr()) })
}

/// The file name of named semaphore `name` (`/NAME`) in [`DIR`].
pub(crate) fn file_name(name: &str) -> String {
    format!("{PREFIX}{}", name.trim_start_matches('/'))
}

/// A named semaphore's file, open and mapped: `fd` is the file under
/// `/dev/shm/sem.NAME` (or was: the name may since have been removed), and
/// `region` maps its first `sizeof(sem_t)` bytes, an initialized `sem_t`.
///
/// Whoever may write the file (its mode says who) can truncate it, and the
/// next call on the semaphore then raises `SIGBUS`: as with every named
/// POSIX semaphore, the mode is the protection.
#[derive(Debug)]
pub(crate) struct Named {
    fd: OwnedFd,
    region: Region,
}

/// Why [`Named::from_fd`] refused a file.
#[derive(Debug)]
pub(crate) enum Refused {
    /// Smaller than a `sem_t`.
    TooSmall,
    /// Not initialized as a process-shared semaphore.
    NotASemaphore,
    /// Reached by other names too (hard links): a file made elsewhere
    /// and linked here, which no semaphore create makes.
    Linked,
    /// A system call failed.
    Os(&'static str, io::Error),
}

impl Named {
    /// Creates the semaphore `/dev/shm/sem.NAME` with exactly `mode` and
    /// `value`: `open(O_TMPFILE)`, `fchmod`, `ftruncate`, `mmap`,
    /// `sem_init`, then `linkat` to the name. `EEXIST` (from `linkat`)
    /// when anything has the name.
    pub(crate) fn create(
        name: &str,
        mode: u32,
        value: u32,
    ) -> Result<Named, (&'static str, io::Error)> {
        let fd = rustix::fs::open(
            DIR,
            OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
            RawMode::from_raw_mode(mode & 0o777),
        )
        .map_err(|e| ("open(O_TMPFILE)", e.into()))?;
        shm_sys::fchmod(fd.as_fd(), mode).map_err(|e| ("fchmod", e))?;
        shm_sys::set_size(fd.as_fd(), SIZE as u64).map_err(|e| ("ftruncate", e))?;
        // SAFETY: map_fd asks that nobody shrink the file while mapped. It
        // has no name yet, and only this descriptor reaches it; once
        // linked, only who the mode lets write can (see `Named`).
        let region = unsafe { shm_sys::map_fd(fd.as_fd(), SIZE, true) }.map_err(|e| ("mmap", e))?;
        Sem::init(&region, 0, value).map_err(|e| ("sem_init", e))?;
        let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let target = format!("{DIR}/{}", file_name(name));
        rustix::fs::linkat(
            CWD,
            proc_path.as_str(),
            CWD,
            target.as_str(),
            AtFlags::SYMLINK_FOLLOW,
        )
        .map_err(|e| ("link", e.into()))?;
        Ok(Named { fd, region })
    }

    /// Opens `/dev/shm/sem.NAME` read-write, with `O_NOFOLLOW` and only a
    /// regular file accepted (as shared memory is opened). Not mapped yet:
    /// the caller checks the owner first.
    pub(crate) fn open_file(name: &str) -> io::Result<OwnedFd> {
        shm_sys::open(&file_name(name), true, false, false, 0)
    }

    /// Maps an opened semaphore file after checking its size and that it
    /// holds a process-shared semaphore.
    pub(crate) fn from_fd(fd: OwnedFd) -> Result<Named, Refused> {
        let st = shm_sys::fstat(fd.as_fd()).map_err(|e| Refused::Os("fstat", e))?;
        if st.size < SIZE as u64 {
            return Err(Refused::TooSmall);
        }
        // sem_open and `create` both link a fresh file once and keep no
        // other name: a second link is a file planted here from elsewhere
        // (another object of the owner's, where hard links are not
        // protected).
        let links = rustix::fs::fstat(&fd)
            .map_err(|e| Refused::Os("fstat", e.into()))?
            .st_nlink;
        if links != 1 {
            return Err(Refused::Linked);
        }
        // SAFETY: map_fd asks that nobody shrink the file while mapped:
        // only a process the file's mode lets write can, which is the
        // hazard every named POSIX semaphore carries (see `Named`).
        let region = unsafe { shm_sys::map_fd(fd.as_fd(), SIZE, true) }
            .map_err(|e| Refused::Os("mmap", e))?;
        if !looks_initialized(&region, 0) {
            return Err(Refused::NotASemaphore);
        }
        Ok(Named { fd, region })
    }

    /// The semaphore.
    pub(crate) fn sem(&self) -> Sem<'_> {
        // SAFETY: the region maps an initialized sem_t at offset 0 (made
        // by `create`, or checked by `from_fd`), and the borrow keeps it
        // mapped.
        unsafe { Sem::assume_init(&self.region, 0) }
    }

    /// The file's descriptor, for `fstat`.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
