//! Anonymous pipes and FIFOs: creation, capacity, splicing, and the
//! SIGPIPE-safe write every pipe writer uses.
//!
//! # SIGPIPE
//!
//! A write to a pipe whose every reader has gone fails with EPIPE and also
//! sends SIGPIPE to the writing thread, which kills the process when the
//! disposition is SIG_DFL. Pipes have no `MSG_NOSIGNAL`, so [`without_sigpipe`]
//! wraps every call that can write into a pipe (`write`, `writev`, `splice`,
//! `tee`, `vmsplice`):
//!
//! - When SIGPIPE is ignored (Rust binaries set SIG_IGN before `main`), the
//!   call is made as is: the fast path costs one relaxed atomic load and no
//!   extra system call.
//! - Otherwise SIGPIPE is blocked in the calling thread (`pthread_sigmask`),
//!   the call is made, and if it failed with EPIPE the SIGPIPE it raised is
//!   consumed with a zero-timeout `sigtimedwait` (only when SIGPIPE was not
//!   already pending before the call, so a signal someone else sent is not
//!   swallowed); then the thread's mask is restored. The kernel directs this
//!   SIGPIPE at the writing thread, so no other thread can take it first.
//!
//! The disposition is cached process-wide: read with `sigaction` when a
//! pipe or FIFO handle is made ([`refresh_sigpipe`]) and read again after
//! any EPIPE. Reading it on every write would add a system call to the
//! hot path. The cost of caching: a program that sets SIGPIPE to SIG_DFL or
//! installs a handler *after* making its handles and before making any
//! other must expect the signal on a broken pipe. Making a handle after the
//! change refreshes the cache for every handle.
//!
//! # Safety
//!
//! `unsafe` is allowed here for the calls that neither rustix nor nix offer
//! safely: reading SIGPIPE's disposition (`sigaction` with a null new
//! action), `sigpending`, `sigismember`, `sigtimedwait`, and rustix's
//! `vmsplice`. Each block passes pointers to live, properly initialized
//! locals, and `vmsplice` is called only on a descriptor opened for writing,
//! so the kernel only ever reads the caller's buffers.
#![allow(unsafe_code)]

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
use rustix::event::PollFlags;

use crate::deadline::Deadline;
use rustix::fs::{FileType, Mode, OFlags};
use rustix::pipe::{IoSliceRaw, PipeFlags, SpliceFlags};

/// Where the limit on unprivileged pipe capacity is set.
pub(crate) const PIPE_MAX_SIZE_FILE: &str = "/proc/sys/fs/pipe-max-size";

// ---------------------------------------------------------------------------
// SIGPIPE

const DISPOSITION_UNKNOWN: u8 = 0;
const DISPOSITION_IGNORED: u8 = 1;
const DISPOSITION_NOT_IGNORED: u8 = 2;

static SIGPIPE_DISPOSITION: AtomicU8 = AtomicU8::new(DISPOSITION_UNKNOWN);

/// Reads SIGPIPE's disposition into the process-wide cache and returns
/// whether it is SIG_IGN.
pub(crate) fn refresh_sigpipe() -> bool {
    let ignored = sigpipe_is_ignored();
    let value = if ignored {
        DISPOSITION_IGNORED
    } else {
        DISPOSITION_NOT_IGNORED
    };
    SIGPIPE_DISPOSITION.store(value, Ordering::Relaxed);
    ignored
}

fn sigpipe_cached_ignored() -> bool {
    match SIGPIPE_DISPOSITION.load(Ordering::Relaxed) {
        DISPOSITION_IGNORED => true,
        DISPOSITION_NOT_IGNORED => false,
        _ => refresh_sigpipe(),
    }
}

/// `sigaction(SIGPIPE, NULL, &old)`: whether SIGPIPE is set to SIG_IGN.
/// A failure (impossible for a valid signal number) reads as "not ignored",
/// which only costs the guarded path.
fn sigpipe_is_ignored() -> bool {
    let mut old = MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: SIGPIPE is a valid signal number; a null `act` makes this a
    // pure query that changes nothing; `old` points to writable storage of
    // the right type and size, which the kernel fills on success.
    let rc = unsafe { libc::sigaction(libc::SIGPIPE, ptr::null(), old.as_mut_ptr()) };
    if rc != 0 {
        return false;
    }
    // SAFETY: sigaction returned 0, so it wrote the whole struct to `old`.
    let old = unsafe { old.assume_init() };
    old.sa_sigaction == libc::SIG_IGN
}

/// Whether SIGPIPE is pending for this thread or the process.
fn sigpipe_pending() -> bool {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: `set` points to writable storage for one sigset_t, which
    // sigpending fills completely on success.
    let rc = unsafe { libc::sigpending(set.as_mut_ptr()) };
    if rc != 0 {
        return false;
    }
    // SAFETY: sigpending returned 0, so `set` is initialized.
    let set = unsafe { set.assume_init() };
    // SAFETY: `set` is an initialized sigset_t and SIGPIPE a valid signal.
    let member = unsafe { libc::sigismember(&set, libc::SIGPIPE) };
    member == 1
}

/// Takes one pending SIGPIPE off this thread without waiting.
fn consume_pending_sigpipe(only_sigpipe: &SigSet) {
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    loop {
        // SAFETY: the set is an initialized sigset_t owned by the caller
        // for the whole call; a null `info` is allowed and means "don't
        // report"; `zero` is a valid timespec that lives across the call.
        let rc = unsafe { libc::sigtimedwait(only_sigpipe.as_ref(), ptr::null_mut(), &zero) };
        // EINTR: a handled signal arrived meanwhile; ours is still pending.
        // EAGAIN: nothing pending (it was ignored after all); done.
        if rc == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return;
    }
}

fn is_epipe<T>(result: &io::Result<T>) -> bool {
    matches!(result, Err(err) if err.raw_os_error() == Some(libc::EPIPE))
}

/// Runs `op`, a call that may write into a pipe, so that it can never
/// raise SIGPIPE: see the module documentation for how and why.
pub(crate) fn without_sigpipe<T>(op: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    if sigpipe_cached_ignored() {
        let result = op();
        if is_epipe(&result) {
            // We are alive, so it was still ignored (or blocked); re-read in
            // case it has changed so the next write takes the right path.
            refresh_sigpipe();
        }
        return result;
    }

    let mut only_sigpipe = SigSet::empty();
    only_sigpipe.add(Signal::SIGPIPE);
    let mut old_mask = SigSet::empty();
    pthread_sigmask(
        SigmaskHow::SIG_BLOCK,
        Some(&only_sigpipe),
        Some(&mut old_mask),
    )
    .map_err(io::Error::from)?;
    let pending_before = sigpipe_pending();

    let result = op();

    if is_epipe(&result) && !pending_before {
        consume_pending_sigpipe(&only_sigpipe);
    }
    // Restoring the exact old mask cannot fail: it is a mask the kernel
    // gave us. Ignore the impossible error rather than lose `result`.
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old_mask), None);
    if is_epipe(&result) {
        refresh_sigpipe();
    }
    result
}

// ---------------------------------------------------------------------------
// Pipes

/// `pipe2(flags)`: returns (read end, write end).
pub(crate) fn pipe(
    nonblocking: bool,
    packet: bool,
    cloexec: bool,
) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut flags = PipeFlags::empty();
    flags.set(PipeFlags::NONBLOCK, nonblocking);
    flags.set(PipeFlags::DIRECT, packet);
    flags.set(PipeFlags::CLOEXEC, cloexec);
    Ok(rustix::pipe::pipe_with(flags)?)
}

/// `read(2)`.
pub(crate) fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    Ok(rustix::io::read(fd, buf)?)
}

/// `readv(2)`.
pub(crate) fn readv(fd: BorrowedFd<'_>, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
    Ok(rustix::io::readv(fd, bufs)?)
}

/// `write(2)`, never raising SIGPIPE.
#[inline]
pub(crate) fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    without_sigpipe(|| Ok(rustix::io::write(fd, buf)?))
}

/// `writev(2)`, never raising SIGPIPE.
pub(crate) fn writev(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    without_sigpipe(|| Ok(rustix::io::writev(fd, bufs)?))
}

/// `fcntl(F_GETPIPE_SZ)`.
pub(crate) fn capacity(fd: BorrowedFd<'_>) -> io::Result<usize> {
    Ok(rustix::pipe::fcntl_getpipe_size(fd)?)
}

/// `fcntl(F_SETPIPE_SZ)`: returns the capacity the kernel set (a power of
/// two number of pages, at least `bytes`).
pub(crate) fn set_capacity(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<usize> {
    Ok(rustix::pipe::fcntl_setpipe_size(fd, bytes)?)
}

/// The largest capacity an unprivileged process may set, from
/// /proc/sys/fs/pipe-max-size; `None` when it cannot be read.
pub(crate) fn pipe_max_size() -> Option<u64> {
    super::proc::read_u64(PIPE_MAX_SIZE_FILE)
}

/// `splice(2)` without offsets (files use and advance their position).
pub(crate) fn splice(
    from: BorrowedFd<'_>,
    to: BorrowedFd<'_>,
    len: usize,
    flags: SpliceFlags,
) -> io::Result<usize> {
    without_sigpipe(|| Ok(rustix::pipe::splice(from, None, to, None, len, flags)?))
}

/// `tee(2)`.
pub(crate) fn tee(
    from: BorrowedFd<'_>,
    to: BorrowedFd<'_>,
    len: usize,
    flags: SpliceFlags,
) -> io::Result<usize> {
    without_sigpipe(|| Ok(rustix::pipe::tee(from, to, len, flags)?))
}

/// `vmsplice(2)` of `bufs` into the pipe `to`. Refuses (EBADF) a descriptor
/// not open for writing: on a read end vmsplice would write into `bufs`,
/// which are shared borrows. `flags` must not contain SPLICE_F_GIFT (the
/// caller's flag type cannot express it).
pub(crate) fn vmsplice(
    to: BorrowedFd<'_>,
    bufs: &[IoSlice<'_>],
    flags: SpliceFlags,
) -> io::Result<usize> {
    let access = rustix::fs::fcntl_getfl(to)? & OFlags::RWMODE;
    if access != OFlags::WRONLY && access != OFlags::RDWR {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    let raw: Vec<IoSliceRaw<'_>> = bufs.iter().map(|b| IoSliceRaw::from_slice(b)).collect();
    let flags = flags - SpliceFlags::GIFT;
    without_sigpipe(|| {
        // SAFETY: rustix's contract for shared buffers is that `to` is the
        // write end of a pipe, so the kernel only reads them: checked above,
        // `to` is open for writing (O_WRONLY or O_RDWR, and the kernel moves
        // data *into* the pipe for any descriptor with write access), and
        // the access mode of an open description cannot change. GIFT, which
        // needs page-aligned buffers never modified again, was removed.
        // The slices outlive the call since `raw` borrows `bufs`.
        let moved = unsafe { rustix::pipe::vmsplice(to, &raw, flags) };
        Ok(moved?)
    })
}

/// `poll(POLLIN)` with a timeout, retried after EINTR with the time left.
/// True when a read would not block: data, end of file, or an error.
pub(crate) fn wait_readable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    let ready = super::poll::wait(fd, PollFlags::IN, Deadline::within(timeout))?;
    Ok(ready.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL))
}

// ---------------------------------------------------------------------------
// FIFOs

/// What the FIFO code needs to know of a file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FileInfo {
    pub(crate) file_type: FileType,
    /// Permission bits (and set-id/sticky bits), without the type.
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

impl From<rustix::fs::Stat> for FileInfo {
    fn from(st: rustix::fs::Stat) -> Self {
        FileInfo {
            file_type: FileType::from_raw_mode(st.st_mode),
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            #[allow(clippy::useless_conversion)]
            dev: u64::from(st.st_dev),
            #[allow(clippy::useless_conversion)]
            ino: u64::from(st.st_ino),
        }
    }
}

/// `stat(2)`, following symbolic links.
pub(crate) fn stat(path: &Path) -> io::Result<FileInfo> {
    Ok(rustix::fs::stat(path)?.into())
}

/// `lstat(2)`.
pub(crate) fn lstat(path: &Path) -> io::Result<FileInfo> {
    Ok(rustix::fs::lstat(path)?.into())
}

/// `fstat(2)`.
pub(crate) fn fstat(fd: BorrowedFd<'_>) -> io::Result<FileInfo> {
    Ok(rustix::fs::fstat(fd)?.into())
}

/// `mknodat(AT_FDCWD, path, S_IFIFO | mode)`: fails with EEXIST if anything,
/// a dangling symbolic link included, is at `path`. The umask applies.
pub(crate) fn mkfifo(path: &Path, mode: u32) -> io::Result<()> {
    Ok(rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        FileType::Fifo,
        Mode::from_bits_retain(mode),
        0,
    )?)
}

/// How to open a FIFO.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OpenHow {
    pub(crate) write: bool,
    pub(crate) nonblocking: bool,
    pub(crate) cloexec: bool,
    pub(crate) nofollow: bool,
}

/// `open(path, O_RDONLY or O_WRONLY | ...)`, retried after EINTR (a
/// blocking FIFO open sleeps until the other end is opened).
pub(crate) fn open(path: &Path, how: OpenHow) -> io::Result<OwnedFd> {
    let mut flags = if how.write {
        OFlags::WRONLY
    } else {
        OFlags::RDONLY
    };
    flags.set(OFlags::NONBLOCK, how.nonblocking);
    flags.set(OFlags::CLOEXEC, how.cloexec);
    flags.set(OFlags::NOFOLLOW, how.nofollow);
    loop {
        match rustix::fs::open(path, flags, Mode::empty()) {
            Err(rustix::io::Errno::INTR) => continue,
            other => return Ok(other?),
        }
    }
}

/// `open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC)`: a handle on the file at
/// `path` itself that neither follows a symbolic link nor opens a FIFO's
/// ends (so it never blocks, wakes no peer, and needs no read permission).
pub(crate) fn open_path_nofollow(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Sets the mode of the file `fd` (an O_PATH descriptor for `path`) to
/// exactly `mode`, whatever the umask.
///
/// fchmod refuses O_PATH descriptors, so this goes through the descriptor's
/// `/proc/self/fd` link, which names the very inode `fd` holds (glibc's
/// `lchmod` does the same). That needs no read permission on the file,
/// unlike an open, so a mode such as 0o200 works for its owner. Without a
/// mounted /proc it falls back to opening `path` read-only, non-blocking,
/// without following links, checking it is still the same inode, and
/// `fchmod`, which needs read permission (or privilege) on the FIFO.
pub(crate) fn set_mode_exact(fd: BorrowedFd<'_>, path: &Path, mode: u32) -> io::Result<()> {
    match super::unix_file::chmod_held(fd, mode) {
        Err(rustix::io::Errno::NOENT) => {}
        other => return Ok(other?),
    }
    let mode = Mode::from_bits_retain(mode);
    let opened = open(
        path,
        OpenHow {
            write: false,
            nonblocking: true,
            cloexec: true,
            nofollow: true,
        },
    )?;
    let (want, got) = (fstat(fd)?, fstat(opened.as_fd())?);
    if (want.dev, want.ino) != (got.dev, got.ino) {
        // Replaced since `fd` was opened: not the file to change.
        return Err(io::Error::from_raw_os_error(libc::ESTALE));
    }
    Ok(rustix::fs::fchmod(&opened, mode)?)
}

/// `unlink(2)`.
pub(crate) fn unlink(path: &Path) -> io::Result<()> {
    Ok(rustix::fs::unlink(path)?)
}

pub(crate) use super::proc::euid as geteuid;
