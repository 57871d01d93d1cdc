//! System V semaphore calls: `semget`, `semop`/`semtimedop`, `semctl`.
//!
//! Neither rustix nor nix wraps System V IPC (rustix#797, nix#1718), so
//! this file calls libc. libc declares `semget`, `semop` and `semctl` but
//! not `semtimedop`, which glibc and musl both export: it is declared
//! below with the C prototype. Each wrapper turns a `-1` return into the
//! thread's `errno` as an [`io::Error`] and does nothing else; retries,
//! deadlines and typed errors are the public module's job
//! ([`crate::sync::sysv_sem`]).
//!
//! `semctl` is variadic: its fourth argument, when the command takes one,
//! is a `union semun` passed *by value* (glibc reads it with
//! `va_arg(ap, union semun)`). No libc header defines that union (the
//! caller must, says semctl(2)), so [`Semun`] is the union as the manual
//! spells it, `#[repr(C)]`: an `int` or one of three pointers, so it is
//! pointer-sized and pointer-aligned and the C ABI passes it exactly where
//! it passes a pointer (on x86-64, one integer register). Every call here
//! passes a whole `Semun`, even for commands that read none, so the
//! argument the callee may read always has the union's type.
//!
//! # Safety
//!
//! Every `unsafe` block here is a single libc call. Pointer arguments come
//! from live Rust values owned by the wrapper for the whole call: an array
//! of `struct sembuf` of exactly the length passed, a buffer of `nsems`
//! `unsigned short`s for `GETALL`/`SETALL` (the caller passes the set's
//! size as `IPC_STAT` reported it, and sizes never change), or a struct of
//! exactly the type the command writes. The kernel never keeps those
//! pointers after the call returns. Set identifiers are plain integers: a
//! stale one makes the kernel fail with `EINVAL`/`EIDRM`, never touch
//! memory.
//!
//! One more `unsafe` block is the `pre_exec` hook of
//! `spawn_dying_with_parent` (in `sys/spawn.rs`), whose contract is spelled out there.
#![allow(unsafe_code)]

use std::io;
use std::mem::MaybeUninit;
use std::time::Duration;

use libc::{c_int, c_short, c_ushort, size_t};

use super::ipc_perm::IpcPerm;

/// `IPC_CREAT`.
pub(crate) const CREATE: c_int = libc::IPC_CREAT;
/// `IPC_EXCL`.
pub(crate) const EXCLUSIVE: c_int = libc::IPC_EXCL;
/// `IPC_NOWAIT` in `sem_flg`: fail with `EAGAIN` instead of blocking.
pub(crate) const NOWAIT: c_short = libc::IPC_NOWAIT as c_short;
/// `SEM_UNDO` in `sem_flg`: the kernel reverses the operation when the
/// process exits.
pub(crate) const UNDO: c_short = libc::SEM_UNDO as c_short;
/// `SEMVMX`: the largest value a semaphore holds (ipc/sem.c, fixed).
pub(crate) const SEMVMX: u16 = 32767;

/// One operation of a `semop`: libc's `struct sembuf`.
pub(crate) use libc::sembuf as SemBuf;

/// `union semun` (semctl(2)): the fourth argument of `semctl`.
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(dead_code)] // The kernel reads the fields; Rust only writes one.
union Semun {
    val: c_int,
    buf: *mut libc::semid_ds,
    array: *mut c_ushort,
    info: *mut libc::seminfo,
}

/// The argument passed to commands that read none: a null pointer, so
/// every byte of it is initialized.
const NO_ARG: Semun = Semun {
    buf: std::ptr::null_mut(),
};

extern "C" {
    /// `semtimedop(2)`, exported by glibc (since 2.3.3) and musl; libc
    /// declares only `semop`.
    fn semtimedop(
        semid: c_int,
        sops: *mut SemBuf,
        nsops: size_t,
        timeout: *const libc::timespec,
    ) -> c_int;
}

fn cvt(ret: c_int) -> io::Result<c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `semget(key, nsems, flags)`: the identifier of the set under `key`,
/// creating it with `nsems` semaphores (all 0) when `flags` has
/// [`CREATE`]; the low nine bits of `flags` are its mode.
pub(crate) fn get(key: c_int, nsems: c_int, flags: c_int) -> io::Result<c_int> {
    // SAFETY: semget takes no pointers; any key, count and flags are valid
    // input (the kernel refuses bad ones with an errno).
    cvt(unsafe { libc::semget(key, nsems, flags) })
}

/// `semtimedop(id, ops, ops.len(), timeout)`: applies every operation or
/// none; blocks (at most `timeout`, or without end for `None`) unless an
/// operation carries [`NOWAIT`]. A timeout that runs out is `EAGAIN`.
pub(crate) fn op(id: c_int, ops: &mut [SemBuf], timeout: Option<Duration>) -> io::Result<()> {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: t.subsec_nanos() as _,
    });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const _);
    // SAFETY: `ops` is a live, exclusively borrowed array of exactly
    // `ops.len()` `struct sembuf`, which semtimedop reads (the pointer is
    // `*mut` only because of the C prototype); `ts_ptr` is null or points
    // at `ts`, a live `struct timespec` with 0 <= tv_nsec < 1e9, read
    // during the call only. Neither pointer is kept after the call.
    cvt(unsafe { semtimedop(id, ops.as_mut_ptr(), ops.len(), ts_ptr) })?;
    Ok(())
}

/// `semctl(id, num, cmd, arg)` for the commands that take an `int` or
/// nothing and return an `int`.
fn ctl_int(id: c_int, num: c_int, cmd: c_int, arg: Semun) -> io::Result<c_int> {
    // SAFETY: the variadic argument is a whole `union semun` by value (see
    // the module doc); the commands routed here (GETVAL, SETVAL, GETPID,
    // GETNCNT, GETZCNT, IPC_RMID) read at most its `val` member and no
    // pointer, so no memory is touched whatever the union holds.
    cvt(unsafe { libc::semctl(id, num, cmd, arg) })
}

/// `semctl(id, num, GETVAL)`.
pub(crate) fn get_value(id: c_int, num: u16) -> io::Result<u16> {
    Ok(ctl_int(id, num.into(), libc::GETVAL, NO_ARG)? as u16)
}

/// `semctl(id, num, SETVAL, val)`: also clears every process's undo
/// adjustment of that semaphore.
pub(crate) fn set_value(id: c_int, num: u16, value: u16) -> io::Result<()> {
    ctl_int(id, num.into(), libc::SETVAL, Semun { val: value.into() })?;
    Ok(())
}

/// `semctl(id, num, GETNCNT)`: processes waiting for the value to grow.
pub(crate) fn ncnt(id: c_int, num: u16) -> io::Result<u32> {
    Ok(ctl_int(id, num.into(), libc::GETNCNT, NO_ARG)? as u32)
}

/// `semctl(id, num, GETZCNT)`: processes waiting for the value to be 0.
pub(crate) fn zcnt(id: c_int, num: u16) -> io::Result<u32> {
    Ok(ctl_int(id, num.into(), libc::GETZCNT, NO_ARG)? as u32)
}

/// `semctl(id, num, GETPID)`: the last process to operate on it (0: none).
pub(crate) fn last_pid(id: c_int, num: u16) -> io::Result<u32> {
    Ok(ctl_int(id, num.into(), libc::GETPID, NO_ARG)? as u32)
}

/// `semctl(id, 0, GETALL, array)` into `values`, which must have exactly
/// the set's size (the caller read it with [`stat`]).
pub(crate) fn get_all(id: c_int, values: &mut [u16]) -> io::Result<()> {
    let arg = Semun {
        array: values.as_mut_ptr(),
    };
    // SAFETY: the variadic argument is a whole `union semun` by value
    // whose `array` is a live, exclusively borrowed buffer of
    // `values.len()` unsigned shorts; GETALL writes `sem_nsems` of them
    // during the call only, and the caller passes a buffer of exactly the
    // set's size (sets never change size).
    cvt(unsafe { libc::semctl(id, 0, libc::GETALL, arg) })?;
    Ok(())
}

/// `semctl(id, 0, SETALL, array)`: every value at once (the caller passes
/// exactly the set's size); clears every process's undo adjustments.
pub(crate) fn set_all(id: c_int, values: &[u16]) -> io::Result<()> {
    let arg = Semun {
        // SETALL only reads; the pointer is `*mut` because of the union.
        array: values.as_ptr().cast_mut(),
    };
    // SAFETY: the variadic argument is a whole `union semun` by value
    // whose `array` points at `values`, live for the call, of exactly the
    // set's size (the caller's contract); SETALL only reads it.
    cvt(unsafe { libc::semctl(id, 0, libc::SETALL, arg) })?;
    Ok(())
}

/// The kernel's description of a set (`IPC_STAT`), in fixed widths.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SetStat {
    /// `sem_perm`.
    pub(crate) perm: IpcPerm,
    /// `sem_nsems`.
    pub(crate) nsems: u64,
    /// `sem_otime`: the last successful `semop`, seconds since the epoch;
    /// 0 when none has been made.
    pub(crate) otime: i64,
    /// `sem_ctime`: creation, the last `IPC_SET`, `SETVAL` or `SETALL`.
    pub(crate) ctime: i64,
}

fn raw_stat(id: c_int) -> io::Result<libc::semid_ds> {
    let mut ds = MaybeUninit::<libc::semid_ds>::zeroed();
    let arg = Semun {
        buf: ds.as_mut_ptr(),
    };
    // SAFETY: the variadic argument is a whole `union semun` by value
    // whose `buf` points at `ds`, a live, writable `struct semid_ds`, the
    // type IPC_STAT fills; the kernel writes it during the call only.
    cvt(unsafe { libc::semctl(id, 0, libc::IPC_STAT, arg) })?;
    // SAFETY: every field of semid_ds is an integer (padding included),
    // so the all-zero start and what the kernel wrote are valid values.
    Ok(unsafe { ds.assume_init() })
}

/// `semctl(id, 0, IPC_STAT)`.
// Field widths differ between targets.
#[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
pub(crate) fn stat(id: c_int) -> io::Result<SetStat> {
    let ds = raw_stat(id)?;
    Ok(SetStat {
        perm: IpcPerm::from(&ds.sem_perm),
        nsems: ds.sem_nsems as u64,
        otime: ds.sem_otime as i64,
        ctime: ds.sem_ctime as i64,
    })
}

/// `semctl(id, 0, IPC_SET)` of the permission bits after `IPC_STAT` (the
/// kernel takes owner, group and mode from the buffer, so the owner and
/// group are passed back as read).
pub(crate) fn set_mode(id: c_int, mode: u32) -> io::Result<()> {
    let mut ds = raw_stat(id)?;
    ds.sem_perm.mode = (mode & 0o777) as _;
    let arg = Semun { buf: &mut ds };
    // SAFETY: the variadic argument is a whole `union semun` by value
    // whose `buf` points at `ds`, a live `struct semid_ds`; IPC_SET only
    // reads it, during the call.
    cvt(unsafe { libc::semctl(id, 0, libc::IPC_SET, arg) })?;
    Ok(())
}

/// `semctl(id, 0, IPC_RMID)`: removes the set and wakes every waiter with
/// `EIDRM`.
pub(crate) fn remove(id: c_int) -> io::Result<()> {
    ctl_int(id, 0, libc::IPC_RMID, NO_ARG)?;
    Ok(())
}

/// The semaphore limits of this IPC namespace (`/proc/sys/kernel/sem`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Info {
    /// `SEMMSL`: the most semaphores in one set.
    pub(crate) semmsl: u32,
    /// `SEMOPM`: the most operations in one `semop`.
    pub(crate) semopm: u32,
}

/// `semctl(0, 0, IPC_INFO)`: `semmsl` and `semopm` without needing `/proc`.
pub(crate) fn info() -> io::Result<Info> {
    let mut info = MaybeUninit::<libc::seminfo>::zeroed();
    let arg = Semun {
        info: info.as_mut_ptr(),
    };
    // SAFETY: the variadic argument is a whole `union semun` by value
    // whose `__buf` member (`info` here) points at a live, writable
    // `struct seminfo`, which IPC_INFO fills during the call only.
    cvt(unsafe { libc::semctl(0, 0, libc::IPC_INFO, arg) })?;
    // SAFETY: every field of seminfo is an int; zeroed, then written.
    let info = unsafe { info.assume_init() };
    Ok(Info {
        semmsl: u32::try_from(info.semmsl).unwrap_or(0),
        semopm: u32::try_from(info.semopm).unwrap_or(0),
    })
}

pub(crate) use super::spawn::spawn_dying_with_parent;

/// The effective user id, to tell an owner from a stranger.
pub(crate) use super::proc::euid;
