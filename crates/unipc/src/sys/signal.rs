//! Signals: `kill(2)`, `sigqueue(3)`, the calling thread's mask and a
//! `signalfd(2)` to read what is pending.
//!
//! libc serves what rustix and nix lack: nix's `kill`, `SigSet` and
//! `Signal` know only the standard signals (no `SIGRTMIN+n`) and neither
//! crate has `sigqueue`; `SIGRTMIN`/`SIGRTMAX` are functions in libc
//! because glibc reserves the first few realtime numbers for itself. nix
//! serves the signalfd and the mask, once a set is built here.
#![allow(unsafe_code)]

use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::signal::{SigSet, SigmaskHow};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use rustix::io::Errno;

/// The lowest realtime signal number applications may use.
pub(crate) fn rtmin() -> i32 {
    libc::SIGRTMIN()
}

/// The highest realtime signal number.
pub(crate) fn rtmax() -> i32 {
    libc::SIGRTMAX()
}

fn from_nix(e: nix::errno::Errno) -> Errno {
    Errno::from_raw_os_error(e as i32)
}

fn errno() -> Errno {
    Errno::from_raw_os_error(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// `kill(pid, signo)`.
pub(crate) fn kill(pid: i32, signo: i32) -> Result<(), Errno> {
    // SAFETY: kill takes plain numbers; bad ones fail with an errno.
    if unsafe { libc::kill(pid, signo) } < 0 {
        return Err(errno());
    }
    Ok(())
}

/// `sigqueue(pid, signo, { .sival_int = value })`.
pub(crate) fn sigqueue(pid: i32, signo: i32, value: i32) -> Result<(), Errno> {
    let mut val = libc::sigval {
        sival_ptr: std::ptr::null_mut(),
    };
    // SAFETY: `union sigval` in C has `int sival_int` at offset 0 beside
    // `void *sival_ptr`; libc declares only the pointer member, so the int
    // is written through a cast of the union's address, which is aligned
    // for a pointer and so for an int.
    unsafe { (&raw mut val).cast::<libc::c_int>().write(value) };
    // SAFETY: sigqueue takes plain numbers and the union by value.
    if unsafe { libc::sigqueue(pid, signo, val) } < 0 {
        return Err(errno());
    }
    Ok(())
}

/// A set of the signals `signos`; `EINVAL` for a number the C library
/// refuses.
pub(crate) fn set_of(signos: &[i32]) -> Result<SigSet, Errno> {
    let mut raw = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set it is given.
    if unsafe { libc::sigemptyset(raw.as_mut_ptr()) } < 0 {
        return Err(errno());
    }
    for &signo in signos {
        // SAFETY: the set was initialised by sigemptyset above.
        if unsafe { libc::sigaddset(raw.as_mut_ptr(), signo) } < 0 {
            return Err(errno());
        }
    }
    // SAFETY: initialised by sigemptyset (and sigaddset) above.
    let raw = unsafe { raw.assume_init() };
    // SAFETY: the set was built by the C library's own calls, so it is a
    // valid sigset_t, realtime members included.
    Ok(unsafe { SigSet::from_sigset_t_unchecked(raw) })
}

/// Blocks `set` in the calling thread; returns the mask it replaced.
pub(crate) fn block(set: &SigSet) -> Result<SigSet, Errno> {
    set.thread_swap_mask(SigmaskHow::SIG_BLOCK)
        .map_err(from_nix)
}

/// Puts back a mask [`block`] returned.
pub(crate) fn restore(old: &SigSet) -> Result<(), Errno> {
    old.thread_set_mask().map_err(from_nix)
}

/// A non-blocking, close-on-exec signalfd for `set`.
pub(crate) fn signalfd(set: &SigSet) -> Result<SignalFd, Errno> {
    SignalFd::with_flags(set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).map_err(from_nix)
}

/// The descriptor of a signalfd, to poll.
pub(crate) fn fd_of(fd: &SignalFd) -> BorrowedFd<'_> {
    fd.as_fd()
}

/// What one read of a signalfd told.
pub(crate) struct Info {
    pub(crate) signo: i32,
    pub(crate) code: i32,
    pub(crate) pid: u32,
    pub(crate) uid: u32,
    pub(crate) int: i32,
}

/// Reads one pending signal; `None` when none is pending.
pub(crate) fn read(fd: &SignalFd) -> Result<Option<Info>, Errno> {
    Ok(fd.read_signal().map_err(from_nix)?.map(|si| Info {
        signo: si.ssi_signo as i32,
        code: si.ssi_code,
        pid: si.ssi_pid,
        uid: si.ssi_uid,
        int: si.ssi_int,
    }))
}

/// The soft `RLIMIT_SIGPENDING` of process `pid` as `/proc/PID/limits`
/// shows it ("Max pending signals"); `None` when unreadable or unlimited.
pub(crate) fn sigpending_limit_of(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = text
        .lines()
        .find(|l| l.starts_with("Max pending signals"))?;
    line["Max pending signals".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
