//! The baseline: the same loops as unipc's, written straight on the system
//! calls, so the report can show unipc's overhead as a ratio.
//!
//! # Safety
//! The only unsafe code is the calls rustix and nix do not cover
//! (`mq_send`/`mq_receive` on a borrowed queue descriptor, `msgsnd`/
//! `msgrcv`); each passes pointers to live buffers with their true lengths.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

use rustix::io::Errno;
use rustix::net::{RecvFlags, SendFlags};
use rustix::thread::futex;
use unipc::facility::{RawIo, Shape};

use crate::workload::Wire;

/// A [`Wire`] that moves units with raw system calls.
pub struct RawWire<'a> {
    io: RawIo<'a>,
    shape: Shape,
    nonblocking: bool,
    /// mq_receive needs room for the queue's largest message; msgsnd and
    /// msgrcv need the type word in front of the bytes.
    scratch: Vec<u8>,
    /// The queue attributes to put back when the wire is dropped.
    restore_mq: Option<[(BorrowedFd<'a>, libc::c_long); 2]>,
    /// The words and bytes of a shared-memory link.
    mailbox: Option<RawMailbox<'a>>,
}

/// One box of a mailbox link, its words borrowed once (the bounds checked
/// then, not on every unit) and its bytes as a raw pointer.
struct RawBox<'a> {
    seq: &'a AtomicU32,
    ack: &'a AtomicU32,
    len: &'a AtomicU32,
    seq_waiters: &'a AtomicU32,
    ack_waiters: &'a AtomicU32,
    data: *mut u8,
}

struct RawMailbox<'a> {
    outbox: RawBox<'a>,
    inbox: RawBox<'a>,
    max: usize,
    peer_gone: &'a std::sync::atomic::AtomicBool,
}

impl<'a> RawBox<'a> {
    fn new(mapping: &'a unipc::shm::Mapping, at: usize, max: usize) -> io::Result<RawBox<'a>> {
        use unipc::facility::mailbox::layout;
        let word = |offset: usize| mapping.atomic_u32(at + offset).map_err(io::Error::from);
        // The bytes must lie inside the mapping: checked once here.
        let end = at
            .checked_add(layout::DATA)
            .and_then(|start| start.checked_add(max));
        if !end.is_some_and(|end| end <= mapping.len()) || !mapping.is_writable() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the mailbox does not fit the mapping",
            ));
        }
        Ok(RawBox {
            seq: word(layout::SEQ)?,
            ack: word(layout::ACK)?,
            len: word(layout::LEN)?,
            seq_waiters: word(layout::SEQ_WAITERS)?,
            ack_waiters: word(layout::ACK_WAITERS)?,
            data: (mapping.addr() + at + layout::DATA) as *mut u8,
        })
    }
}

/// The mailbox protocol of `unipc::facility::mailbox`, on the words
/// directly: the same atomics, `memcpy`, and rustix's futex calls.
fn futex_wait_for(
    word: &AtomicU32,
    waiters: &AtomicU32,
    busy: bool,
    peer_gone: &std::sync::atomic::AtomicBool,
    ready: impl Fn(u32) -> bool,
) -> io::Result<u32> {
    let mut spins = 0u32;
    loop {
        let value = word.load(SeqCst);
        if ready(value) {
            return Ok(value);
        }
        // The link's watch sets this and wakes the words when the peer
        // dies: the same check the library's loop makes.
        spins = spins.wrapping_add(1);
        if (!busy || spins % 1024 == 0) && peer_gone.load(SeqCst) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the other process has exited",
            ));
        }
        if busy {
            std::hint::spin_loop();
            continue;
        }
        waiters.fetch_add(1, SeqCst);
        let value = word.load(SeqCst);
        let slept = if ready(value) {
            Ok(())
        } else {
            futex::wait(word, futex::Flags::empty(), value, None)
        };
        waiters.fetch_sub(1, SeqCst);
        match slept {
            Ok(()) | Err(Errno::AGAIN) | Err(Errno::INTR) => {}
            Err(e) => return Err(errno_io(e)),
        }
    }
}

fn futex_wake(word: &AtomicU32, waiters: &AtomicU32) -> io::Result<()> {
    if waiters.load(SeqCst) > 0 {
        futex::wake(word, futex::Flags::empty(), 1).map_err(errno_io)?;
    }
    Ok(())
}

fn errno_io(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

fn last_error() -> io::Error {
    io::Error::last_os_error()
}

const WORD: usize = std::mem::size_of::<libc::c_long>();

impl<'a> RawWire<'a> {
    /// Prepares raw calls on `io` for units of up to `max_size` bytes.
    pub fn new(
        io: RawIo<'a>,
        shape: Shape,
        nonblocking: bool,
        max_size: usize,
    ) -> io::Result<Self> {
        let mut wire = RawWire {
            io,
            shape,
            nonblocking,
            scratch: Vec::new(),
            restore_mq: None,
            mailbox: None,
        };
        match io {
            RawIo::ReadWrite { read, write } | RawIo::SendRecv { read, write } => {
                for fd in [read, write] {
                    let flags = rustix::fs::fcntl_getfl(fd).map_err(errno_io)?;
                    let wanted = if nonblocking {
                        flags | rustix::fs::OFlags::NONBLOCK
                    } else {
                        flags - rustix::fs::OFlags::NONBLOCK
                    };
                    rustix::fs::fcntl_setfl(fd, wanted).map_err(errno_io)?;
                }
            }
            RawIo::PosixMq { read, write } => {
                let mut saved = [(read, 0), (write, 0)];
                let mut largest = 0;
                for (fd, old_flags) in &mut saved {
                    let attr = mq_getattr(*fd)?;
                    *old_flags = attr.mq_flags;
                    largest = largest.max(attr.mq_msgsize as usize);
                    mq_setflags(
                        *fd,
                        if nonblocking {
                            libc::O_NONBLOCK as libc::c_long
                        } else {
                            0
                        },
                    )?;
                }
                wire.restore_mq = Some(saved);
                wire.scratch = vec![0; largest.max(max_size)];
            }
            RawIo::SysvMsg { .. } => wire.scratch = vec![0; WORD + max_size],
            RawIo::Mailbox {
                mapping,
                outbox,
                inbox,
                max,
                peer_gone,
            } => {
                wire.mailbox = Some(RawMailbox {
                    outbox: RawBox::new(mapping, outbox, max)?,
                    inbox: RawBox::new(mapping, inbox, max)?,
                    max,
                    peer_gone,
                })
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "no raw baseline for this link",
                ))
            }
        }
        Ok(wire)
    }
}

impl Drop for RawWire<'_> {
    fn drop(&mut self) {
        for (fd, flags) in self.restore_mq.into_iter().flatten() {
            let _ = mq_setflags(fd, flags);
        }
    }
}

fn mq_getattr(fd: BorrowedFd<'_>) -> io::Result<libc::mq_attr> {
    // SAFETY: mq_attr is plain data; all-zero is a valid value.
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    // SAFETY: on Linux a queue descriptor is a file descriptor, `fd` is open
    // for the call's duration, and `attr` is a valid, writable mq_attr.
    if unsafe { libc::mq_getattr(fd.as_raw_fd(), &mut attr) } < 0 {
        return Err(last_error());
    }
    Ok(attr)
}

fn mq_setflags(fd: BorrowedFd<'_>, flags: libc::c_long) -> io::Result<()> {
    // SAFETY: as in mq_getattr.
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    attr.mq_flags = flags;
    // SAFETY: `fd` is an open queue descriptor; `attr` is a valid mq_attr
    // read by the call; the old attributes are not asked for (null).
    if unsafe { libc::mq_setattr(fd.as_raw_fd(), &attr, std::ptr::null_mut()) } < 0 {
        return Err(last_error());
    }
    Ok(())
}

fn would_block(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EINTR))
}

impl Wire for RawWire<'_> {
    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        match self.io {
            RawIo::ReadWrite { write, .. } => {
                let mut rest = data;
                while !rest.is_empty() {
                    match rustix::io::write(write, rest) {
                        Ok(n) => rest = &rest[n..],
                        Err(Errno::AGAIN) | Err(Errno::INTR) => std::hint::spin_loop(),
                        Err(e) => return Err(errno_io(e)),
                    }
                }
                Ok(())
            }
            RawIo::SendRecv { write, .. } => {
                let mut flags = SendFlags::NOSIGNAL;
                if self.nonblocking {
                    flags |= SendFlags::DONTWAIT;
                }
                let mut rest = data;
                loop {
                    match rustix::net::send(write, rest, flags) {
                        Ok(n) if self.shape == Shape::ByteStream && n < rest.len() => {
                            rest = &rest[n..]
                        }
                        Ok(_) => return Ok(()),
                        Err(Errno::AGAIN) | Err(Errno::INTR) => std::hint::spin_loop(),
                        Err(e) => return Err(errno_io(e)),
                    }
                }
            }
            RawIo::PosixMq { write, .. } => loop {
                // SAFETY: `write` is an open queue descriptor; `data` is a
                // live buffer of `data.len()` bytes.
                let rc = unsafe {
                    libc::mq_send(write.as_raw_fd(), data.as_ptr().cast(), data.len(), 0)
                };
                if rc == 0 {
                    return Ok(());
                }
                let err = last_error();
                if !would_block(&err) {
                    return Err(err);
                }
                std::hint::spin_loop();
            },
            RawIo::SysvMsg { write_id, .. } => {
                let buf = &mut self.scratch[..WORD + data.len()];
                buf[..WORD].copy_from_slice(&(1 as libc::c_long).to_ne_bytes());
                buf[WORD..].copy_from_slice(data);
                let flags = if self.nonblocking {
                    libc::IPC_NOWAIT
                } else {
                    0
                };
                loop {
                    // SAFETY: `buf` starts with a c_long type word followed by
                    // `data.len()` bytes, the msgbuf layout msgsnd reads.
                    let rc =
                        unsafe { libc::msgsnd(write_id, buf.as_ptr().cast(), data.len(), flags) };
                    if rc == 0 {
                        return Ok(());
                    }
                    let err = last_error();
                    if !would_block(&err) {
                        return Err(err);
                    }
                    std::hint::spin_loop();
                }
            }
            RawIo::Mailbox { .. } => {
                let mailbox = self.mailbox.as_ref().expect("made with the wire");
                let out = &mailbox.outbox;
                if data.len() > mailbox.max {
                    return Err(io::Error::from(io::ErrorKind::InvalidInput));
                }
                let sent = out.seq.load(SeqCst);
                futex_wait_for(
                    out.ack,
                    out.ack_waiters,
                    self.nonblocking,
                    mailbox.peer_gone,
                    |ack| ack == sent,
                )?;
                // SAFETY: `data` is `max` bytes of the mapping from
                // `RawBox::new`'s check, the mapping outlives the wire, and
                // the peer reads them only after the SEQ store below.
                unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), out.data, data.len()) };
                out.len.store(data.len() as u32, SeqCst);
                out.seq.store(sent.wrapping_add(1), SeqCst);
                futex_wake(out.seq, out.seq_waiters)
            }
            _ => Err(io::Error::from(io::ErrorKind::Unsupported)),
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let want = buf.len();
        let got = match self.io {
            RawIo::ReadWrite { read, .. } => {
                let mut filled = 0;
                while filled < want {
                    match rustix::io::read(read, &mut buf[filled..]) {
                        Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                        Ok(n) => filled += n,
                        Err(Errno::AGAIN) | Err(Errno::INTR) => std::hint::spin_loop(),
                        Err(e) => return Err(errno_io(e)),
                    }
                }
                filled
            }
            RawIo::SendRecv { read, .. } => {
                let flags = if self.nonblocking {
                    RecvFlags::DONTWAIT
                } else {
                    RecvFlags::empty()
                };
                let mut filled = 0;
                loop {
                    match rustix::net::recv(read, &mut buf[filled..], flags) {
                        Ok((0, _)) if self.shape == Shape::ByteStream => {
                            return Err(io::ErrorKind::UnexpectedEof.into())
                        }
                        Ok((n, _)) => {
                            filled += n;
                            if self.shape == Shape::Messages || filled == want {
                                break filled;
                            }
                        }
                        Err(Errno::AGAIN) | Err(Errno::INTR) => std::hint::spin_loop(),
                        Err(e) => return Err(errno_io(e)),
                    }
                }
            }
            RawIo::PosixMq { read, .. } => loop {
                let mut priority = 0;
                // SAFETY: `read` is an open queue descriptor; `scratch` is a
                // live buffer at least as large as the queue's mq_msgsize.
                let n = unsafe {
                    libc::mq_receive(
                        read.as_raw_fd(),
                        self.scratch.as_mut_ptr().cast(),
                        self.scratch.len(),
                        &mut priority,
                    )
                };
                if n >= 0 {
                    let n = n as usize;
                    buf[..n.min(want)].copy_from_slice(&self.scratch[..n.min(want)]);
                    break n;
                }
                let err = last_error();
                if !would_block(&err) {
                    return Err(err);
                }
                std::hint::spin_loop();
            },
            RawIo::SysvMsg { read_id, .. } => {
                let flags = if self.nonblocking {
                    libc::IPC_NOWAIT
                } else {
                    0
                };
                loop {
                    // SAFETY: `scratch` holds a type word plus `want` bytes,
                    // the msgbuf layout msgrcv writes, and `want` is passed
                    // as the room for the bytes.
                    let n = unsafe {
                        libc::msgrcv(read_id, self.scratch.as_mut_ptr().cast(), want, 0, flags)
                    };
                    if n >= 0 {
                        let n = n as usize;
                        buf[..n].copy_from_slice(&self.scratch[WORD..WORD + n]);
                        break n;
                    }
                    let err = last_error();
                    if !would_block(&err) && err.raw_os_error() != Some(libc::ENOMSG) {
                        return Err(err);
                    }
                    std::hint::spin_loop();
                }
            }
            RawIo::Mailbox { .. } => {
                let mailbox = self.mailbox.as_ref().expect("made with the wire");
                let inbox = &mailbox.inbox;
                let received = inbox.ack.load(SeqCst);
                let seq = futex_wait_for(
                    inbox.seq,
                    inbox.seq_waiters,
                    self.nonblocking,
                    mailbox.peer_gone,
                    |seq| seq != received,
                )?;
                let len = inbox.len.load(SeqCst) as usize;
                if seq != received.wrapping_add(1) || len != want || len > mailbox.max {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("unit {seq} of {len} bytes after unit {received}"),
                    ));
                }
                // SAFETY: `len` ≤ `max` bytes of the mapping (checked just
                // above and in `RawBox::new`); the peer does not write them
                // again before the ACK store below.
                unsafe { std::ptr::copy_nonoverlapping(inbox.data, buf.as_mut_ptr(), len) };
                inbox.ack.store(seq, SeqCst);
                futex_wake(inbox.ack, inbox.ack_waiters)?;
                len
            }
            _ => return Err(io::Error::from(io::ErrorKind::Unsupported)),
        };
        if got != want {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("expected {want} bytes, got {got}"),
            ));
        }
        Ok(())
    }
}
