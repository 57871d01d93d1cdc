//! Anonymous pipes: a one-way byte stream between related processes.
//!
//! A pipe is a kernel buffer with a write end ([`Sender`]) and a read end
//! ([`Receiver`]), made together by [`new`] or [`Options::create`]. The ends
//! reach another process by inheritance (clear close-on-exec on the one to
//! hand over, or `dup2` it between fork and exec) or by descriptor passing
//! over a UNIX socket; [`Sender::try_from`] and [`Receiver::try_from`]
//! adopt a descriptor received that way, once checked to be a pipe or FIFO
//! end open the right way.
//!
//! Semantics worth knowing, from pipe(7):
//!
//! - A read returns end of file (0 bytes) only once *every* write end in
//!   every process is closed. A leaked copy of the write end (an inherited
//!   descriptor in some child) hides the end of file forever, which is why
//!   every end is made close-on-exec unless asked otherwise.
//! - A write of at most [`PIPE_BUF`] bytes is atomic: it is never
//!   interleaved with other writers' data. Larger writes may be.
//! - A write with no read end left fails with
//!   [`std::io::ErrorKind::BrokenPipe`] and, here, never raises SIGPIPE,
//!   whatever the process's disposition for it.
//! - The buffer holds [`Sender::capacity`] bytes (64 KiB by default on
//!   Linux); a blocking write waits for room, a non-blocking one fails with
//!   [`std::io::ErrorKind::WouldBlock`].
//!
//! Linux also moves data between pipes and other descriptors without
//! copying it through user space: [`splice`], [`tee`] and [`vmsplice`].
//!
//! # SIGPIPE
//!
//! Pipes have no `MSG_NOSIGNAL`. When SIGPIPE is ignored (the default in
//! Rust programs) a write is one plain `write(2)`; otherwise (a C host, or
//! a program that reset it to SIG_DFL or installed a handler) each write
//! blocks SIGPIPE in the calling thread, writes, takes back the SIGPIPE a
//! failed write raised, and restores the thread's mask: three or four
//! extra system calls. Which path to take is decided from SIGPIPE's
//! disposition as read when a pipe or FIFO write end was last made or
//! adopted (and after any EPIPE), not on every write, to keep the common
//! path free of extra calls. So change SIGPIPE's disposition before making
//! write ends: a program that sets SIG_DFL or a handler while write ends
//! made under SIG_IGN are in use gets the signal on a broken pipe until it
//! makes another write end. The same holds for [`crate::stream::fifo`]
//! writers.
//!
//! # Examples
//!
//! ```
//! use std::io::{Read, Write};
//! use unipc::stream::pipe;
//!
//! let (mut tx, mut rx) = pipe::new()?;
//! tx.write_all(b"ping")?;
//! drop(tx); // the last write end: the reader now sees end of file
//! let mut got = Vec::new();
//! rx.read_to_end(&mut got)?;
//! assert_eq!(got, b"ping");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # References
//! pipe(2), pipe(7), splice(2), tee(2), vmsplice(2), fcntl(2)
//! (F_GETPIPE_SZ, F_SETPIPE_SZ).

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::ops::{BitOr, BitOrAssign};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use crate::adopt::{self, Want};
use crate::facility::{
    Direction, Facility, LiveLimit, Naming, Persistence, Properties, Reach, Shape, Tags,
};
use crate::sys;
use crate::{AdoptError, Error, Result};

/// The object name errors use for anonymous pipes.
const OBJECT: &str = "pipe";

/// `PIPE_BUF`—the largest write that is atomic: 4096 bytes on Linux.
///
/// A write of at most this many bytes lands in the pipe in one piece, never
/// interleaved with other writers' data; a larger one may be split. In
/// packet mode ([`Options::packet`]) it is also the largest packet.
///
/// # References
/// pipe(7), section "PIPE_BUF".
pub const PIPE_BUF: usize = rustix::pipe::PIPE_BUF;

/// `pipe2(O_CLOEXEC)`—Creates a pipe with blocking, close-on-exec ends.
///
/// # Errors
/// [`Error::Os`] when the process or the system is out of descriptors
/// (EMFILE, ENFILE).
///
/// # Examples
/// ```
/// use std::io::{Read, Write};
///
/// let (mut tx, mut rx) = unipc::stream::pipe::new()?;
/// tx.write_all(b"x")?;
/// let mut byte = [0; 1];
/// rx.read_exact(&mut byte)?;
/// assert_eq!(&byte, b"x");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # References
/// pipe(2)
#[doc(alias = "pipe")]
#[doc(alias = "pipe2")]
pub fn new() -> Result<(Sender, Receiver)> {
    Options::new().create()
}

/// Options for [`Options::create`]: blocking mode, packet mode and
/// close-on-exec.
///
/// # Examples
/// ```
/// use std::io::{ErrorKind, Read};
/// use unipc::stream::pipe;
///
/// let (_tx, mut rx) = pipe::Options::new().nonblocking(true).create()?;
/// let err = rx.read(&mut [0; 8]).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::WouldBlock);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Options {
    nonblocking: bool,
    packet: bool,
    cloexec: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options::new()
    }
}

impl Options {
    /// Blocking ends, byte-stream mode, close-on-exec.
    pub fn new() -> Options {
        Options {
            nonblocking: false,
            packet: false,
            cloexec: true,
        }
    }

    /// `O_NONBLOCK`—Makes both ends non-blocking: a read of an empty pipe
    /// and a write to a full one fail with
    /// [`std::io::ErrorKind::WouldBlock`] instead of waiting.
    pub fn nonblocking(mut self, nonblocking: bool) -> Options {
        self.nonblocking = nonblocking;
        self
    }

    /// `O_DIRECT`—Packet mode: each write of at most [`PIPE_BUF`] bytes
    /// becomes one packet and each read returns at most one packet, so
    /// write boundaries survive (Linux 3.4 and later). A larger write is
    /// split into packets of [`PIPE_BUF`] bytes. A read into a buffer
    /// smaller than the packet returns what fits and *discards the rest*:
    /// read with a buffer of [`PIPE_BUF`] bytes.
    pub fn packet(mut self, packet: bool) -> Options {
        self.packet = packet;
        self
    }

    /// `O_CLOEXEC`—Whether the ends are closed when the process executes
    /// another program (default: true). Clear it only to let a child
    /// inherit an end, and close the parent's copy once the child runs.
    pub fn cloexec(mut self, cloexec: bool) -> Options {
        self.cloexec = cloexec;
        self
    }

    /// `pipe2(flags)`—Creates the pipe.
    ///
    /// # Errors
    /// [`Error::Os`] when out of descriptors; [`Error::Unsupported`] when
    /// packet mode was asked of a kernel without it.
    ///
    /// # Examples
    /// ```
    /// use std::io::{Read, Write};
    /// use unipc::stream::pipe;
    ///
    /// let (mut tx, mut rx) = pipe::Options::new().packet(true).create()?;
    /// tx.write_all(b"one")?;
    /// tx.write_all(b"two")?;
    /// let mut buf = [0; pipe::PIPE_BUF];
    /// assert_eq!(rx.read(&mut buf)?, 3); // one packet, not "onetwo"
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # References
    /// pipe(2)
    #[doc(alias = "pipe2")]
    pub fn create(&self) -> Result<(Sender, Receiver)> {
        let (read, write) =
            sys::pipe::pipe(self.nonblocking, self.packet, self.cloexec).map_err(|err| {
                if self.packet && err.raw_os_error() == Some(libc::EINVAL) {
                    Error::Unsupported {
                        object: OBJECT.into(),
                        what: "packet mode (O_DIRECT)".into(),
                        reason: "this kernel predates Linux 3.4".into(),
                    }
                } else {
                    Error::os(OBJECT, "pipe2", err)
                }
            })?;
        Ok((Sender::adopt(write), Receiver { fd: read }))
    }
}

/// The write end of a pipe.
///
/// Implements [`Write`] (also on `&Sender`); a write with no reader left is
/// a [`std::io::ErrorKind::BrokenPipe`] error and never raises SIGPIPE. The
/// descriptor closes on drop.
///
/// # Examples
/// ```
/// use std::io::Write;
///
/// let (mut tx, rx) = unipc::stream::pipe::new()?;
/// drop(rx);
/// let err = tx.write(b"lost").unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Sender {
    fd: OwnedFd,
}

/// The read end of a pipe.
///
/// Implements [`Read`] (also on `&Receiver`); a read returns 0 (end of
/// file) once every write end is closed. The descriptor closes on drop.
///
/// # Examples
/// ```
/// use std::io::{Read, Write};
///
/// let (mut tx, mut rx) = unipc::stream::pipe::new()?;
/// tx.write_all(b"abc")?;
/// drop(tx);
/// let mut text = String::new();
/// rx.read_to_string(&mut text)?;
/// assert_eq!(text, "abc");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Receiver {
    fd: OwnedFd,
}

/// The calls both ends share.
macro_rules! common_end_methods {
    () => {
        /// `fcntl(F_SETFL, O_NONBLOCK)`—Switches this end between blocking
        /// and non-blocking mode. The flag belongs to the open file
        /// description, so copies of this end in other processes change too.
        ///
        /// # Errors
        /// [`Error::Os`] if fcntl fails (not expected on a valid pipe).
        ///
        /// # References
        /// fcntl(2)
        pub fn set_nonblocking(&self, nonblocking: bool) -> Result<()> {
            sys::fd::set_nonblocking(self.fd.as_fd(), nonblocking)
                .map_err(|err| Error::os(OBJECT, "fcntl(F_SETFL)", err))
        }

        /// `fcntl(F_GETFL)`—Whether this end is in non-blocking mode.
        ///
        /// # Errors
        /// [`Error::Os`] if fcntl fails (not expected on a valid pipe).
        ///
        /// # References
        /// fcntl(2)
        pub fn is_nonblocking(&self) -> Result<bool> {
            sys::fd::is_nonblocking(self.fd.as_fd())
                .map_err(|err| Error::os(OBJECT, "fcntl(F_GETFL)", err))
        }

        /// `fcntl(F_GETPIPE_SZ)`—The pipe's capacity in bytes, the same
        /// from either end and in every process.
        ///
        /// # Errors
        /// [`Error::Os`] when `fcntl` fails (not expected on an adopted end,
        /// which was checked to be a pipe or FIFO).
        ///
        /// # References
        /// fcntl(2), pipe(7) "Pipe capacity"
        #[doc(alias = "F_GETPIPE_SZ")]
        pub fn capacity(&self) -> Result<usize> {
            capacity(self.fd.as_fd())
        }

        /// `fcntl(F_SETPIPE_SZ)`—Resizes the pipe's buffer to at least
        /// `bytes` and returns the capacity the kernel set (rounded up to
        /// a power-of-two number of pages).
        ///
        /// # Errors
        /// [`Error::LimitExceeded`] naming `/proc/sys/fs/pipe-max-size` when
        /// an unprivileged process asks for more than it allows (or anyone
        /// for more than the kernel can); [`Error::Os`] with EBUSY when the
        /// new size cannot hold the data now in the pipe, or EPERM when the
        /// user's pipes already use more than
        /// `/proc/sys/fs/pipe-user-pages-hard`/`-soft` allow.
        ///
        /// # References
        /// fcntl(2), pipe(7) "/proc files"
        #[doc(alias = "F_SETPIPE_SZ")]
        pub fn set_capacity(&self, bytes: usize) -> Result<usize> {
            set_capacity(self.fd.as_fd(), bytes)
        }
    };
}

impl Sender {
    common_end_methods!();
}

impl Receiver {
    common_end_methods!();

    /// `poll(POLLIN)`—Waits until a read would not block: data is waiting,
    /// or every write end is closed (end of file). `None` waits forever.
    /// Returns false when the timeout passed first.
    ///
    /// # Errors
    /// [`Error::Os`] if poll fails.
    ///
    /// # Examples
    /// ```
    /// use std::io::Write;
    /// use std::time::Duration;
    ///
    /// let (mut tx, rx) = unipc::stream::pipe::new()?;
    /// assert!(!rx.wait_readable(Some(Duration::from_millis(1)))?);
    /// tx.write_all(b"!")?;
    /// assert!(rx.wait_readable(Some(Duration::ZERO))?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # References
    /// poll(2)
    #[doc(alias = "poll")]
    pub fn wait_readable(&self, timeout: Option<Duration>) -> Result<bool> {
        sys::pipe::wait_readable(self.fd.as_fd(), timeout)
            .map_err(|err| Error::os(OBJECT, "poll", err))
    }
}

pub(crate) fn capacity(fd: BorrowedFd<'_>) -> Result<usize> {
    sys::pipe::capacity(fd).map_err(|err| Error::os(OBJECT, "fcntl(F_GETPIPE_SZ)", err))
}

pub(crate) fn set_capacity(fd: BorrowedFd<'_>, bytes: usize) -> Result<usize> {
    sys::pipe::set_capacity(fd, bytes).map_err(|err| capacity_error(bytes, err))
}

/// EPERM or EINVAL for a size over /proc/sys/fs/pipe-max-size is the limit
/// on that file; other refusals keep their errno.
fn capacity_error(bytes: usize, err: io::Error) -> Error {
    let requested = bytes as u64;
    let over_limit = match (err.raw_os_error(), sys::pipe::pipe_max_size()) {
        (Some(libc::EPERM | libc::EINVAL), Some(limit)) if requested > limit => Some(limit),
        // The kernel takes the size as a C int: more is over any limit.
        (Some(libc::EPERM | libc::EINVAL), _) if bytes > i32::MAX as usize => Some(i32::MAX as u64),
        _ => None,
    };
    match over_limit {
        Some(limit) => Error::LimitExceeded {
            object: OBJECT.into(),
            what: "capacity",
            requested,
            limit,
            set_in: sys::pipe::PIPE_MAX_SIZE_FILE,
        },
        None => Error::os(OBJECT, "fcntl(F_SETPIPE_SZ)", err),
    }
}

super::pipe_end_io!(write Sender);

super::pipe_end_io!(read Receiver);

super::fd_conversions!(Sender: fd);
super::fd_conversions!(Receiver: fd);

impl Sender {
    fn adopt(fd: OwnedFd) -> Sender {
        sys::pipe::refresh_sigpipe();
        Sender { fd }
    }
}

impl TryFrom<OwnedFd> for Sender {
    type Error = AdoptError;

    /// Adopts the write end of a pipe or FIFO, such as one inherited or
    /// received over a UNIX socket. Reads SIGPIPE's disposition (see
    /// [`Sender`]'s writes).
    ///
    /// # Errors
    /// [`Error::WrongType`] when `fd` is not a pipe or FIFO open for
    /// writing; the descriptor comes back inside the [`AdoptError`].
    fn try_from(fd: OwnedFd) -> Result<Sender, AdoptError> {
        let fd = adopt::check(fd, OBJECT, "the write end of a pipe", Want::PipeEnd(true))?;
        Ok(Sender::adopt(fd))
    }
}

impl TryFrom<OwnedFd> for Receiver {
    type Error = AdoptError;

    /// Adopts the read end of a pipe or FIFO, such as one inherited or
    /// received over a UNIX socket.
    ///
    /// # Errors
    /// [`Error::WrongType`] when `fd` is not a pipe or FIFO open for
    /// reading; the descriptor comes back inside the [`AdoptError`].
    fn try_from(fd: OwnedFd) -> Result<Receiver, AdoptError> {
        let fd = adopt::check(fd, OBJECT, "the read end of a pipe", Want::PipeEnd(false))?;
        Ok(Receiver { fd })
    }
}

/// Flags for [`splice`], [`tee`] and [`vmsplice`].
///
/// `SPLICE_F_GIFT` is deliberately absent: it needs page-aligned buffers
/// that are never touched again, a promise safe code cannot make.
///
/// # Examples
/// ```
/// use unipc::stream::pipe::SpliceFlags;
///
/// let flags = SpliceFlags::NONBLOCK | SpliceFlags::MORE;
/// assert!(flags.contains(SpliceFlags::MORE));
/// assert!(!flags.contains(SpliceFlags::MOVE));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SpliceFlags(u32);

impl SpliceFlags {
    /// `SPLICE_F_MOVE`—A hint to move pages instead of copying them.
    pub const MOVE: SpliceFlags = SpliceFlags(rustix::pipe::SpliceFlags::MOVE.bits());
    /// `SPLICE_F_NONBLOCK`—Do not wait on the pipes (the other descriptor
    /// follows its own O_NONBLOCK).
    pub const NONBLOCK: SpliceFlags = SpliceFlags(rustix::pipe::SpliceFlags::NONBLOCK.bits());
    /// `SPLICE_F_MORE`—More data will follow (a hint for sockets).
    pub const MORE: SpliceFlags = SpliceFlags(rustix::pipe::SpliceFlags::MORE.bits());

    /// No flags.
    pub const fn empty() -> SpliceFlags {
        SpliceFlags(0)
    }

    /// Whether every flag in `other` is set in `self`.
    pub const fn contains(self, other: SpliceFlags) -> bool {
        self.0 & other.0 == other.0
    }

    fn to_rustix(self) -> rustix::pipe::SpliceFlags {
        rustix::pipe::SpliceFlags::from_bits_retain(self.0)
    }
}

impl BitOr for SpliceFlags {
    type Output = SpliceFlags;
    fn bitor(self, rhs: SpliceFlags) -> SpliceFlags {
        SpliceFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for SpliceFlags {
    fn bitor_assign(&mut self, rhs: SpliceFlags) {
        self.0 |= rhs.0
    }
}

/// `splice(from, NULL, to, NULL, len, flags)`—Moves up to `len` bytes from
/// `from` to `to` inside the kernel; one of them must be a pipe.
///
/// A file or socket on the other side is read or written at its current
/// position, which advances. Returns the bytes moved; 0 means `from` is at
/// end of file (or, for a pipe, has no writer left). Writing into a pipe
/// with no reader left is a [`std::io::ErrorKind::BrokenPipe`] error, never
/// SIGPIPE.
///
/// # Errors
/// [`Error::Os`]: EINVAL when neither is a pipe or a side does not support
/// splicing (or is opened with O_APPEND), EAGAIN with
/// [`SpliceFlags::NONBLOCK`] when it would wait, EPIPE as above.
///
/// # Examples
/// ```
/// use std::io::{Read, Write};
/// use unipc::stream::pipe::{self, SpliceFlags};
///
/// let (mut tx1, rx1) = pipe::new()?;
/// let (tx2, mut rx2) = pipe::new()?;
/// tx1.write_all(b"moved")?;
/// assert_eq!(pipe::splice(&rx1, &tx2, 64, SpliceFlags::empty())?, 5);
/// let mut buf = [0; 5];
/// rx2.read_exact(&mut buf)?;
/// assert_eq!(&buf, b"moved");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # References
/// splice(2)
pub fn splice(from: impl AsFd, to: impl AsFd, len: usize, flags: SpliceFlags) -> Result<usize> {
    sys::pipe::splice(from.as_fd(), to.as_fd(), len, flags.to_rustix())
        .map_err(|err| Error::os(OBJECT, "splice", err))
}

/// `tee(from, to, len, flags)`—Copies up to `len` bytes from the pipe
/// `from` into the pipe `to` *without consuming them*: they stay in `from`
/// for its reader.
///
/// Returns the bytes copied; 0 when `from` is empty and has no writer left.
///
/// # Errors
/// [`Error::Os`]: EINVAL when either is not a pipe or both are the same
/// pipe, EAGAIN with [`SpliceFlags::NONBLOCK`] when it would wait,
/// [`std::io::ErrorKind::BrokenPipe`] when `to` has no reader.
///
/// # Examples
/// ```
/// use std::io::{Read, Write};
/// use unipc::stream::pipe::{self, SpliceFlags};
///
/// let (mut tx1, mut rx1) = pipe::new()?;
/// let (tx2, mut rx2) = pipe::new()?;
/// tx1.write_all(b"twice")?;
/// assert_eq!(pipe::tee(&rx1, &tx2, 64, SpliceFlags::empty())?, 5);
/// let (mut a, mut b) = ([0; 5], [0; 5]);
/// rx1.read_exact(&mut a)?;
/// rx2.read_exact(&mut b)?;
/// assert_eq!((&a, &b), (b"twice", b"twice"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # References
/// tee(2)
pub fn tee(from: impl AsFd, to: impl AsFd, len: usize, flags: SpliceFlags) -> Result<usize> {
    sys::pipe::tee(from.as_fd(), to.as_fd(), len, flags.to_rustix())
        .map_err(|err| Error::os(OBJECT, "tee", err))
}

/// `vmsplice(to, bufs, flags)`—Puts the contents of `bufs` into the pipe
/// `to` by reference to their memory pages rather than by copying.
///
/// Returns the bytes taken, which may be fewer than offered (as a write
/// may).
///
/// **The pipe refers to the pages of `bufs` until the reader consumes
/// them:** changing or reusing that memory before then changes what the
/// reader gets. Use it for buffers that stay untouched until the reader has
/// them, and [`Write`] otherwise.
///
/// # Errors
/// [`Error::Os`]: EBADF when `to` is not open for writing (checked before
/// the call, since vmsplice on a read end would write into `bufs`), EINVAL
/// when `to` is not a pipe, EAGAIN with [`SpliceFlags::NONBLOCK`] when the
/// pipe is full, [`std::io::ErrorKind::BrokenPipe`] when it has no reader.
///
/// # Examples
/// ```
/// use std::io::{IoSlice, Read};
/// use unipc::stream::pipe::{self, SpliceFlags};
///
/// let (tx, mut rx) = pipe::new()?;
/// let parts = [IoSlice::new(b"zero-"), IoSlice::new(b"copy")];
/// assert_eq!(pipe::vmsplice(&tx, &parts, SpliceFlags::empty())?, 9);
/// let mut buf = [0; 9];
/// rx.read_exact(&mut buf)?;
/// assert_eq!(&buf, b"zero-copy");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # References
/// vmsplice(2)
pub fn vmsplice(to: impl AsFd, bufs: &[IoSlice<'_>], flags: SpliceFlags) -> Result<usize> {
    sys::pipe::vmsplice(to.as_fd(), bufs, flags.to_rustix())
        .map_err(|err| Error::os(OBJECT, "vmsplice", err))
}

/// The pipe's entry in the facility registry (`unipc compare`, `unipc bench`).
pub static FACILITY: Facility = Facility {
    name: "pipe",
    scheme: None,
    summary: "anonymous pipe: one-way byte stream between related processes",
    addressing: "none: the descriptors are inherited or passed",
    properties: Properties {
        shape: Shape::ByteStream,
        direction: Direction::OneWay,
        tags: Tags::None,
        destructive_read: true,
        peek: false,
        naming: Naming::None,
        reach: Reach::RelatedProcesses,
        persistence: Persistence::Process,
        permissions: "whoever holds a descriptor",
        reliable: true,
        after_crash: "closed by the kernel: the peer reads EOF or gets EPIPE",
    },
    limits: || {
        vec![
            LiveLimit {
                name: "PIPE_BUF",
                value: format!("{PIPE_BUF} bytes (atomic write)"),
                source: "limits.h",
            },
            LiveLimit {
                name: "capacity",
                value: match new().and_then(|(tx, _)| tx.capacity()) {
                    Ok(bytes) => format!("{bytes} bytes (a new pipe)"),
                    Err(e) => format!("unreadable: {e}"),
                },
                source: "F_GETPIPE_SZ",
            },
            LiveLimit::from_proc(
                "pipe-max-size",
                "/proc/sys/fs/pipe-max-size",
                " bytes (F_SETPIPE_SZ, unprivileged)",
            ),
            LiveLimit::from_proc(
                "pipe-user-pages-soft",
                "/proc/sys/fs/pipe-user-pages-soft",
                " pages per user",
            ),
        ]
    },
    max_message: || None,
    #[cfg(feature = "bench")]
    connector: Some(&Connector),
};

#[cfg(feature = "bench")]
use crate::facility::{self, Link, LinkOptions, PendingLink, StreamCalls, StreamLink, Ticket};

/// Joins two processes with two pipes, one each way.
#[cfg(feature = "bench")]
struct Connector;

#[cfg(feature = "bench")]
struct Pending(Receiver, Sender);

#[cfg(feature = "bench")]
impl facility::Connector for Connector {
    fn prepare(
        &self,
        _scratch: &std::path::Path,
        _: &LinkOptions,
        _announce: &mut dyn FnMut(&facility::CreatedObject),
    ) -> Result<(Box<dyn PendingLink>, Ticket)> {
        let (to_peer, peer_reads) = new()?;
        let (peer_writes, from_peer) = new()?;
        let ticket = Ticket {
            address: String::new(),
            fds: vec![peer_reads.into(), peer_writes.into()],
        };
        Ok((Box::new(Pending(from_peer, to_peer)), ticket))
    }

    fn join(&self, ticket: Ticket, _: &LinkOptions) -> Result<Box<dyn Link>> {
        let Ok::<[OwnedFd; 2], _>([reads, writes]) = ticket.fds.try_into() else {
            return Err(Error::Unsupported {
                object: "pipe".into(),
                what: "a ticket without exactly two descriptors".to_owned(),
                reason: "the pipe link passes a read end and a write end".to_owned(),
            });
        };
        let link = StreamLink::new(
            "pipe",
            Receiver::try_from(reads)?,
            Sender::try_from(writes)?,
            StreamCalls::ReadWrite,
        );
        Ok(Box::new(link))
    }
}

#[cfg(feature = "bench")]
impl PendingLink for Pending {
    fn establish(self: Box<Self>) -> Result<Box<dyn Link>> {
        let Pending(reader, writer) = *self;
        Ok(Box::new(StreamLink::new(
            "pipe",
            reader,
            writer,
            StreamCalls::ReadWrite,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_flags_combine_and_map_to_the_kernel_values() {
        let mut flags = SpliceFlags::empty();
        assert!(flags.contains(SpliceFlags::empty()));
        flags |= SpliceFlags::MOVE;
        let flags = flags | SpliceFlags::MORE;
        assert!(flags.contains(SpliceFlags::MOVE | SpliceFlags::MORE));
        assert!(!flags.contains(SpliceFlags::NONBLOCK));
        assert_eq!(
            flags.to_rustix(),
            rustix::pipe::SpliceFlags::MOVE | rustix::pipe::SpliceFlags::MORE
        );
        assert_eq!(
            (
                SpliceFlags::MOVE.0,
                SpliceFlags::NONBLOCK.0,
                SpliceFlags::MORE.0
            ),
            (1, 2, 4)
        );
    }

    #[test]
    fn capacity_refusals_over_the_limit_name_the_proc_file() {
        let Some(limit) = sys::pipe::pipe_max_size() else {
            unipc_test_support::skip(format!("{} is not readable", sys::pipe::PIPE_MAX_SIZE_FILE));
            return;
        };
        let asked = (limit + 1) as usize;
        let err = capacity_error(asked, io::Error::from_raw_os_error(libc::EPERM));
        assert_eq!(
            err.to_string(),
            format!(
                "pipe: capacity {asked} exceeds the system limit of {limit} (set in /proc/sys/fs/pipe-max-size)"
            )
        );
        // Under the limit, EPERM is the per-user page limit: keep the errno.
        let err = capacity_error(4096, io::Error::from_raw_os_error(libc::EPERM));
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
        let err = capacity_error(usize::MAX, io::Error::from_raw_os_error(libc::EPERM));
        assert!(matches!(err, Error::LimitExceeded { .. }), "{err}");
    }
}
