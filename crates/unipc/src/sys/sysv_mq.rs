//! System V message queue calls: `msgget`, `msgsnd`, `msgrcv`, `msgctl`.
//!
//! Neither rustix nor nix wraps these, so this file calls libc. Each wrapper
//! turns a `-1` return into the thread's `errno` as an [`io::Error`] and does
//! nothing else; names, limits and typed errors are the public module's job.
//!
//! A message is the system's own `struct msgbuf`: one C `long` (the type)
//! followed by the text. The wrappers build that layout in a buffer of
//! `long`s, so the kernel sees the same aligned layout a C program would pass
//! and other programs using the same queue interoperate.
//!
//! That buffer is kept per thread and reused, so a send or receive costs one
//! system call and one copy of the text, with no allocation once the
//! thread's buffer has grown to the message size. A thread-local rather
//! than a buffer in the queue handle behind a lock: a blocked `msgrcv`
//! would hold the lock and stall every other thread's send on the same
//! handle. Buffers above [`KEEP_BYTES`] are allocated per call instead,
//! so that one huge message does not pin its size in every thread.
//!
//! # Safety
//!
//! Every `unsafe` block here is a single libc call whose pointer arguments
//! come from live Rust values owned by the wrapper for the whole call: a
//! buffer of at least the size passed to the kernel, or a struct of exactly
//! the type the command writes. The kernel never keeps those pointers after
//! the call returns. Queue identifiers are plain integers: a stale one makes
//! the kernel fail with `EINVAL`/`EIDRM`, never touch memory.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::io;
use std::mem::{size_of, size_of_val, MaybeUninit};
use std::path::Path;

use libc::{c_int, c_long, c_ushort};

use super::ipc_perm::IpcPerm;

/// `IPC_CREAT`: create the queue when the key has none.
pub(crate) const CREATE: c_int = libc::IPC_CREAT;
/// `IPC_EXCL`: with [`CREATE`], fail with `EEXIST` when the key has a queue.
pub(crate) const EXCLUSIVE: c_int = libc::IPC_EXCL;
/// `IPC_NOWAIT`: fail with `EAGAIN`/`ENOMSG` instead of blocking.
pub(crate) const NOWAIT: c_int = libc::IPC_NOWAIT;
/// `MSG_NOERROR`: truncate a message longer than the buffer instead of
/// failing with `E2BIG`.
pub(crate) const TRUNCATE: c_int = libc::MSG_NOERROR;
/// `MSG_EXCEPT`: with a positive type, take the first message of any other
/// type.
pub(crate) const EXCEPT: c_int = libc::MSG_EXCEPT;

/// The kernel's description of one queue (`IPC_STAT`), in fixed-width
/// types: libc's field types vary with the target.
#[derive(Clone, Copy, Debug)]
pub(crate) struct QueueStat {
    /// `msg_perm`: key, owner, creator, mode.
    pub(crate) perm: IpcPerm,
    /// `msg_cbytes`.
    pub(crate) bytes: u64,
    /// `msg_qnum`.
    pub(crate) messages: u64,
    /// `msg_qbytes`.
    pub(crate) max_bytes: u64,
    /// `msg_lspid`; 0 when nobody has sent.
    pub(crate) last_sender: i32,
    /// `msg_lrpid`; 0 when nobody has received.
    pub(crate) last_receiver: i32,
    /// `msg_stime`, seconds since the epoch; 0 when never.
    pub(crate) last_send: i64,
    /// `msg_rtime`; 0 when never.
    pub(crate) last_receive: i64,
    /// `msg_ctime`.
    pub(crate) changed: i64,
}

// The casts only widen (or are identities on 64-bit Linux, where clippy
// sees them as no-ops); field widths differ between targets.
#[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
impl From<&libc::msqid_ds> for QueueStat {
    fn from(ds: &libc::msqid_ds) -> Self {
        QueueStat {
            perm: IpcPerm::from(&ds.msg_perm),
            bytes: ds.__msg_cbytes as u64,
            messages: ds.msg_qnum as u64,
            max_bytes: ds.msg_qbytes as u64,
            last_sender: ds.msg_lspid as i32,
            last_receiver: ds.msg_lrpid as i32,
            last_send: ds.msg_stime as i64,
            last_receive: ds.msg_rtime as i64,
            changed: ds.msg_ctime as i64,
        }
    }
}

const WORD: usize = size_of::<c_long>();

/// The largest `struct msgbuf` a thread keeps for reuse (64 KiB of text,
/// eight times Linux's default `msgmax`).
const KEEP_BYTES: usize = 64 << 10;

thread_local! {
    /// This thread's reusable `struct msgbuf`, in `long`s; empty while in
    /// use.
    static MSGBUF: Cell<Vec<c_long>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` on a `struct msgbuf` with room for `text_len` bytes of text
/// (one `long` for the type, then the text): this thread's buffer when it
/// is no larger than [`KEEP_BYTES`], else one of its own.
fn with_msgbuf<T>(text_len: usize, f: impl FnOnce(&mut [c_long]) -> T) -> T {
    let words = 1 + text_len.div_ceil(WORD);
    let keep = words * WORD <= KEEP_BYTES;
    // The thread-local is gone only while the thread is being torn down.
    let mut buf = if keep {
        MSGBUF.try_with(Cell::take).unwrap_or_default()
    } else {
        Vec::new()
    };
    if buf.len() < words {
        buf.resize(words, 0);
    }
    let done = f(&mut buf[..words]);
    if keep {
        let _ = MSGBUF.try_with(|cell| cell.set(buf));
    }
    done
}

/// The bytes of `words`, in memory order.
fn as_bytes(words: &[c_long]) -> &[u8] {
    // SAFETY: the pointer comes from a live slice, so it is non-null and
    // valid for reads of `size_of_val(words)` bytes for the borrow's
    // lifetime; `u8` has alignment 1; every byte of a `c_long` (an integer
    // without padding) is initialized; the result borrows `words`
    // immutably, so nothing writes them meanwhile.
    unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), size_of_val(words)) }
}

/// The bytes of `words`, in memory order, writable.
fn as_bytes_mut(words: &mut [c_long]) -> &mut [u8] {
    // SAFETY: the pointer comes from a live, exclusively borrowed slice, so
    // it is non-null, valid for reads and writes of `size_of_val(words)`
    // bytes, and aliased by nothing else for the borrow's lifetime; `u8`
    // has alignment 1; every byte pattern is a valid `c_long`, so any
    // write through the bytes leaves valid integers.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), size_of_val(words)) }
}

fn cvt(ret: c_int) -> io::Result<c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `msgget(key, flags)`: the identifier of the queue with `key`, creating
/// it when `flags` has [`CREATE`]; the low nine bits of `flags` are its
/// mode.
pub(crate) fn get(key: c_int, flags: c_int) -> io::Result<c_int> {
    // SAFETY: msgget takes no pointers; any key and flags are valid input.
    cvt(unsafe { libc::msgget(key, flags) })
}

/// `msgsnd(id, {mtype, text}, text.len(), flags)`.
#[inline]
pub(crate) fn send(id: c_int, mtype: c_long, text: &[u8], flags: c_int) -> io::Result<()> {
    with_msgbuf(text.len(), |msg| {
        msg[0] = mtype;
        as_bytes_mut(&mut msg[1..])[..text.len()].copy_from_slice(text);
        // SAFETY: `msg` is a live, `long`-aligned buffer of one `long` (the
        // type) followed by at least `text.len()` bytes of text, which is
        // the `struct msgbuf` of `text.len()` bytes msgsnd reads; msgsnd
        // only reads it, and only during the call.
        cvt(unsafe { libc::msgsnd(id, msg.as_ptr().cast(), text.len(), flags) })?;
        Ok(())
    })
}

/// `msgrcv(id, buf, text.len(), msgtyp, flags)`: copies the text of the
/// message taken into `text` and returns its length and type.
#[inline]
pub(crate) fn recv(
    id: c_int,
    text: &mut [u8],
    msgtyp: c_long,
    flags: c_int,
) -> io::Result<(usize, c_long)> {
    with_msgbuf(text.len(), |msg| {
        // SAFETY: `msg` is a live, `long`-aligned, exclusively borrowed
        // buffer of one `long` plus at least `text.len()` bytes, which is
        // the largest `struct msgbuf` msgrcv writes when told the text
        // holds `text.len()` bytes; it writes only during the call.
        let got = unsafe { libc::msgrcv(id, msg.as_mut_ptr().cast(), text.len(), msgtyp, flags) };
        if got < 0 {
            return Err(io::Error::last_os_error());
        }
        // The kernel never copies more than it was offered; min() keeps a
        // broken kernel from turning into a panic.
        let len = (got as usize).min(text.len());
        text[..len].copy_from_slice(&as_bytes(&msg[1..])[..len]);
        Ok((len, msg[0]))
    })
}

fn raw_stat(id: c_int) -> io::Result<libc::msqid_ds> {
    let mut ds = MaybeUninit::<libc::msqid_ds>::zeroed();
    // SAFETY: `ds` is live, writable and exactly the `struct msqid_ds`
    // IPC_STAT fills; the kernel writes it only during the call.
    cvt(unsafe { libc::msgctl(id, libc::IPC_STAT, ds.as_mut_ptr()) })?;
    // SAFETY: every field of msqid_ds is an integer, so the all-zero start
    // and anything the kernel wrote over it are valid values.
    Ok(unsafe { ds.assume_init() })
}

/// `msgctl(id, IPC_STAT)`.
pub(crate) fn stat(id: c_int) -> io::Result<QueueStat> {
    Ok(QueueStat::from(&raw_stat(id)?))
}

/// `msgctl(id, IPC_SET)` after `IPC_STAT`: the kernel takes the owner,
/// group, mode and `msg_qbytes` from the buffer, so the ones not changed
/// are passed back as read.
fn set(id: c_int, change: impl FnOnce(&mut libc::msqid_ds)) -> io::Result<()> {
    let mut ds = raw_stat(id)?;
    change(&mut ds);
    // SAFETY: `ds` is a live `struct msqid_ds`; IPC_SET only reads it, and
    // only during the call. The pointer is `*mut` because of the C
    // signature.
    cvt(unsafe { libc::msgctl(id, libc::IPC_SET, &mut ds) })?;
    Ok(())
}

/// `msgctl(id, IPC_SET)` of the permission bits (`mode` <= 0o777).
pub(crate) fn set_mode(id: c_int, mode: u32) -> io::Result<()> {
    set(id, |ds| {
        ds.msg_perm.mode = (mode & 0o777) as _;
    })
}

/// The largest `msg_qbytes` IPC_SET can set: `struct msqid_ds` has a
/// `msglen_t` (an unsigned long) for it, but the kernel passes the value on
/// as a C `int` (`msgctl_down(..., int msg_qbytes)` in ipc/msg.c), so wider
/// values lose their high bits (2^32 + 100 becomes 100, 2^32 becomes 0).
pub(crate) const MAX_QBYTES: c_int = c_int::MAX;

/// `msgctl(id, IPC_SET)` of `msg_qbytes`. `bytes` is a C `int`, the width
/// the kernel reads (see [`MAX_QBYTES`]); the caller keeps it positive.
#[allow(clippy::useless_conversion, clippy::unnecessary_fallible_conversions)]
pub(crate) fn set_max_bytes(id: c_int, bytes: c_int) -> io::Result<()> {
    // A negative value would be sign-extended into a huge msglen_t; refuse
    // it here too, whatever the caller checked.
    let bytes =
        libc::msglen_t::try_from(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    set(id, |ds| {
        ds.msg_qbytes = bytes;
    })
}

/// `msgctl(id, IPC_RMID)`: removes the queue and wakes every waiter with
/// `EIDRM`.
pub(crate) fn remove(id: c_int) -> io::Result<()> {
    // SAFETY: IPC_RMID reads no buffer, so a null pointer is what the
    // manual asks for.
    cvt(unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) })?;
    Ok(())
}

/// The kernel's `struct msginfo` (`<linux/msg.h>`), which libc does not
/// define.
#[repr(C)]
#[derive(Default)]
struct MsgInfo {
    msgpool: c_int,
    msgmap: c_int,
    msgmax: c_int,
    msgmnb: c_int,
    msgmni: c_int,
    msgssz: c_int,
    msgtql: c_int,
    msgseg: c_ushort,
}

/// The system-wide queue limits of this IPC namespace.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Info {
    /// `msgmax`: the largest message, in bytes.
    pub(crate) msgmax: usize,
    /// `msgmnb`: the default `msg_qbytes` of a new queue, and the most an
    /// unprivileged owner may set.
    pub(crate) msgmnb: usize,
}

/// `msgctl(0, IPC_INFO)`: the values of `/proc/sys/kernel/msgmax` and
/// `msgmnb`, without needing `/proc`.
pub(crate) fn info() -> io::Result<Info> {
    let mut info = MsgInfo::default();
    // SAFETY: IPC_INFO writes one `struct msginfo` through the pointer, for
    // which `info` is live, writable and laid out as the kernel's (repr(C),
    // same fields); the cast only satisfies the C prototype, which names
    // msqid_ds for every command.
    cvt(unsafe {
        libc::msgctl(
            0,
            libc::IPC_INFO,
            (&mut info as *mut MsgInfo).cast::<libc::msqid_ds>(),
        )
    })?;
    Ok(Info {
        msgmax: usize::try_from(info.msgmax).unwrap_or(0),
        msgmnb: usize::try_from(info.msgmnb).unwrap_or(0),
    })
}

/// `ftok(path, proj)`, computed from `stat(path)` with the formula glibc
/// and musl share: `(proj << 24) | (st_dev & 0xff) << 16 | (st_ino &
/// 0xffff)`.
///
/// Calling libc's `ftok` would be ambiguous: it returns -1 both on failure
/// and for a path whose bits happen to make 0xffffffff.
pub(crate) fn ftok(path: &Path, proj: u8) -> io::Result<c_int> {
    let st = rustix::fs::stat(path)?;
    let key =
        (u32::from(proj) << 24) | ((st.st_dev as u32 & 0xff) << 16) | (st.st_ino as u32 & 0xffff);
    Ok(key as c_int)
}

/// The effective user id, to tell an owner refused by a limit from a
/// stranger refused by permissions.
pub(crate) use super::proc::euid;
