//! FIFOs (named pipes): a one-way byte stream between any processes that
//! can open a path, addressed as `fifo:PATH`.
//!
//! A FIFO is a pipe with a name in the filesystem. [`Fifo::create`] makes
//! one with exactly the mode asked for and removes it on drop; [`Reader`]
//! and [`Writer`] open an existing one's ends by path ([`OpenOptions`] for
//! non-blocking opens). Once open, the ends behave as the ends of an
//! anonymous pipe (see [`crate::stream::pipe`]): end of file when every
//! writer has closed, atomic writes up to [`PIPE_BUF`](crate::stream::pipe::PIPE_BUF),
//! and a write with no reader left is a
//! [`std::io::ErrorKind::BrokenPipe`] error, never SIGPIPE.
//!
//! # Opening blocks until the other end is open
//!
//! From fifo(7):
//!
//! | open | another process has the other end open | nobody has it open |
//! |---|---|---|
//! | read end, blocking | returns | waits for a writer |
//! | write end, blocking | returns | waits for a reader |
//! | read end, non-blocking | returns | returns at once |
//! | write end, non-blocking | returns | fails: ENXIO |
//!
//! A read end opened non-blocking before any writer came sees no end of
//! file yet; [`Reader::wait_readable`] waits, with a deadline, for a writer
//! to send data or to come and go. That is how to receive with a timeout.
//!
//! # Safety of the path
//!
//! Creation never follows a symbolic link or reuses an existing file: the
//! FIFO is made with `mknodat` (EEXIST if anything is at the path), then
//! held by an `O_PATH | O_NOFOLLOW` descriptor and checked to be a FIFO
//! owned by this user before its mode is set through that descriptor.
//! Opening checks the type before the open
//! (`stat`) and again after (`fstat`), so a regular file is never written
//! to, even if swapped in between.
//!
//! # Examples
//!
//! ```
//! use std::io::{Read, Write};
//! use unipc::stream::fifo::{Fifo, OpenOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let fifo = Fifo::create(dir.path().join("jobs"), unipc::Mode::OWNER_RW)?;
//! // Non-blocking opens so that one process can hold both ends here.
//! let mut rx = OpenOptions::new().nonblocking(true).open_reader(fifo.path())?;
//! let mut tx = OpenOptions::new().nonblocking(true).open_writer(fifo.path())?;
//! tx.write_all(b"job 1")?;
//! drop(tx);
//! let mut got = String::new();
//! rx.read_to_string(&mut got)?;
//! assert_eq!(got, "job 1");
//! drop(fifo); // removes the FIFO
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # References
//! fifo(7), mkfifo(3), mknod(2), open(2), pipe(7)

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use rustix::fs::FileType;

use crate::adopt::{self, Want};
use crate::error::ObjectName;
use crate::facility::{
    Direction, Facility, LiveLimit, Naming, Persistence, Properties, Reach, Shape, Tags,
};
use crate::guard::{Guard, Made};
use crate::name::FsPath;
use crate::sys;
use crate::sys::pipe::{FileInfo, OpenHow};
use crate::{AdoptError, Endpoint, Error, Mode, Result};

const EXPECTED: &str = "a FIFO";

fn object_of(path: &FsPath) -> String {
    Endpoint::Fifo(path.clone()).to_string()
}

fn wrong_type(object: &str, info: &FileInfo) -> Error {
    Error::WrongType {
        object: object.into(),
        expected: EXPECTED,
        found: sys::fd::file_type_name(info.file_type),
    }
}

/// A FIFO this process created, removed from the filesystem on drop unless
/// [`Fifo::keep`] is called.
///
/// Dropping it only removes the name: ends already open keep working.
///
/// # Examples
/// ```
/// use unipc::stream::fifo::Fifo;
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("f");
/// let fifo = Fifo::create(&path, unipc::Mode::OWNER_RW_GROUP_R)?;
/// assert_eq!(fifo.to_string(), format!("fifo:{}", path.display()));
/// drop(fifo);
/// assert!(!path.exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Fifo {
    path: FsPath,
    object: ObjectName,
    /// Unlinks the FIFO made on drop, unless kept, and never a file that
    /// has replaced it (one of another type, or a FIFO with another inode).
    guard: Guard<FifoFile>,
}

impl Fifo {
    /// `mknodat(S_IFIFO)` + `chmod`—Creates a FIFO at `path` whose
    /// permission bits are exactly `mode` (such as [`Mode::OWNER_RW`]), whatever the
    /// process's umask.
    ///
    /// Fails if anything already exists at `path`, a symbolic link
    /// included (which is never followed). A relative path is resolved
    /// against the current directory at each use, drop included.
    ///
    /// # Errors
    /// - [`Error::InvalidName`] for an empty path or one with a NUL byte.
    /// - [`Error::Os`] from `mknodat` (EEXIST: something is there; ENOENT:
    ///   no such directory; EACCES), or from the open and `chmod` that fix
    ///   the mode (after a failed `chmod` the FIFO is removed again).
    /// - [`Error::WrongType`] if the path was replaced by something that is
    ///   not a FIFO between creating and opening it.
    ///
    /// # Examples
    /// ```
    /// use unipc::stream::fifo::Fifo;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let fifo = Fifo::create(dir.path().join("f"), unipc::Mode::OWNER_RW)?;
    /// let err = Fifo::create(fifo.path(), unipc::Mode::OWNER_RW).unwrap_err();
    /// assert!(err.to_string().ends_with("create: file exists: something already exists under that name"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # References
    /// mknod(2), mkfifo(3), chmod(2), umask(2), open(2) (O_PATH)
    #[doc(alias = "mkfifo")]
    #[doc(alias = "mknod")]
    pub fn create(path: impl AsRef<Path>, mode: Mode) -> Result<Fifo> {
        let path = FsPath::new(path.as_ref())?;
        let object = object_of(&path);
        let mode = mode.bits();
        sys::pipe::mkfifo(path.as_path(), mode)
            .map_err(|err| Error::os(object.clone(), "create", err))?;

        // The umask has cut bits from `mode`: set it exactly, on the file
        // just made and not on something planted in its place meanwhile.
        // An O_PATH handle taken without following links, checked to be a
        // FIFO of this user, pins the inode the mode is then set on.
        let fd = sys::pipe::open_path_nofollow(path.as_path())
            .map_err(|err| Error::os(object.clone(), "open to set the mode", err))?;
        let info =
            sys::pipe::fstat(fd.as_fd()).map_err(|err| Error::os(object.clone(), "fstat", err))?;
        if info.file_type != FileType::Fifo {
            return Err(wrong_type(&object, &info));
        }
        if info.uid != sys::pipe::geteuid() {
            return Err(
                Error::os(object, "create", io::Error::from_raw_os_error(libc::EEXIST))
                    .with_hint("another user's FIFO replaced the one just made"),
            );
        }
        let fifo = Fifo {
            guard: Guard::new(
                FifoFile {
                    path: path.clone(),
                    dev: info.dev,
                    ino: info.ino,
                },
                true,
            ),
            path,
            object: object.into(),
        };
        if info.mode != mode {
            // On failure `fifo` drops here and removes the FIFO it made.
            sys::pipe::set_mode_exact(fd.as_fd(), fifo.path(), mode)
                .map_err(|err| Error::os(fifo.object.clone(), "chmod", err))?;
        }
        Ok(fifo)
    }

    /// The FIFO's path.
    pub fn path(&self) -> &Path {
        self.path.as_path()
    }

    /// The FIFO as an endpoint, `fifo:PATH`.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::Fifo(self.path.clone())
    }

    /// `open(O_RDONLY)`—Opens the read end, blocking until a writer opens
    /// the FIFO (see the [module docs](self)).
    ///
    /// # Errors
    /// As [`Reader::open`].
    pub fn open_reader(&self) -> Result<Reader> {
        OpenOptions::new().open_reader(self.path())
    }

    /// `open(O_WRONLY)`—Opens the write end, blocking until a reader opens
    /// the FIFO (see the [module docs](self)).
    ///
    /// # Errors
    /// As [`Writer::open`].
    pub fn open_writer(&self) -> Result<Writer> {
        OpenOptions::new().open_writer(self.path())
    }

    /// Leaves the FIFO in place when this handle drops.
    pub fn keep(&mut self) {
        self.guard.keep();
    }

    /// `unlink`—Removes the FIFO now, reporting failure (drop ignores it).
    /// A file that has replaced the FIFO at the path is left alone.
    ///
    /// # Errors
    /// [`Error::Os`] when the path cannot be examined or unlinked.
    ///
    /// # References
    /// unlink(2)
    #[doc(alias = "unlink")]
    pub fn remove(mut self) -> Result<()> {
        self.guard
            .remove_now()
            .map(drop)
            .map_err(|err| Error::os(self.object.clone(), "remove", err))
    }
}

/// The FIFO a [`Fifo`] made: its path, device and inode, for its [`Guard`].
#[derive(Debug)]
struct FifoFile {
    path: FsPath,
    dev: u64,
    ino: u64,
}

impl Made for FifoFile {
    fn is_still_ours(&self) -> io::Result<bool> {
        let info = sys::pipe::lstat(self.path.as_path())?;
        // A freed inode number is reused at once, so a regular file put in
        // the FIFO's place often has its number: the type tells them apart.
        Ok(info.file_type == FileType::Fifo && (info.dev, info.ino) == (self.dev, self.ino))
    }

    fn remove(&self) -> io::Result<()> {
        sys::pipe::unlink(self.path.as_path())
    }
}

/// `unlink(path)` of a FIFO: removes the FIFO at `path` and nothing else.
///
/// The path is examined without following a symlink; anything but a FIFO
/// there (a regular file, a symlink, a socket) is refused and left alone.
///
/// # Errors
/// - [`Error::WrongType`] when `path` is not a FIFO;
/// - [`Error::Os`] "remove": ENOENT, or EACCES when this user may not
///   write the directory that holds it.
///
/// # Examples
/// ```
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("f");
/// unipc::stream::fifo::Fifo::create(&path, unipc::Mode::OWNER_RW)?.keep();
/// unipc::stream::fifo::remove(&path)?;
/// assert!(!path.exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # References
/// unlink(2), lstat(2)
#[doc(alias = "unlink")]
pub fn remove(path: impl AsRef<Path>) -> Result<()> {
    let path = FsPath::new(path.as_ref())?;
    let object = object_of(&path);
    let info =
        sys::pipe::lstat(path.as_path()).map_err(|err| Error::os(object.clone(), "remove", err))?;
    if info.file_type != FileType::Fifo {
        return Err(wrong_type(&object, &info));
    }
    sys::pipe::unlink(path.as_path()).map_err(|err| {
        let denied = matches!(err.raw_os_error(), Some(libc::EACCES | libc::EPERM));
        let err = Error::os(object, "remove", err);
        if denied {
            err.with_hint("this user may not change the directory that holds it (it needs write and search permission there, or ownership in a sticky directory)")
        } else {
            err
        }
    })
}

impl fmt::Display for Fifo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.object)
    }
}

impl fmt::Debug for Fifo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fifo")
            .field("path", &self.path)
            .field("keep", &!self.guard.is_armed())
            .finish()
    }
}

/// How to open a FIFO's end: blocking or not, close-on-exec or not.
///
/// # Examples
/// ```
/// use unipc::stream::fifo::{Fifo, OpenOptions};
///
/// let dir = tempfile::tempdir()?;
/// let fifo = Fifo::create(dir.path().join("f"), unipc::Mode::OWNER_RW)?;
/// // No reader: a non-blocking write open fails at once instead of waiting.
/// let err = OpenOptions::new().nonblocking(true).open_writer(fifo.path()).unwrap_err();
/// assert_eq!(err.raw_os_error(), Some(libc::ENXIO));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions {
    nonblocking: bool,
    cloexec: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// Blocking open and I/O, close-on-exec.
    pub fn new() -> OpenOptions {
        OpenOptions {
            nonblocking: false,
            cloexec: true,
        }
    }

    /// `O_NONBLOCK`—Opens without waiting for the other end (see the
    /// table in the [module docs](self)); the end then stays non-blocking
    /// until [`Reader::set_nonblocking`] / [`Writer::set_nonblocking`].
    pub fn nonblocking(mut self, nonblocking: bool) -> OpenOptions {
        self.nonblocking = nonblocking;
        self
    }

    /// `O_CLOEXEC`—Whether the end is closed when the process executes
    /// another program (default: true).
    pub fn cloexec(mut self, cloexec: bool) -> OpenOptions {
        self.cloexec = cloexec;
        self
    }

    /// `open(O_RDONLY)`—Opens the read end of the FIFO at `path`.
    ///
    /// # Errors
    /// As [`Reader::open`].
    pub fn open_reader(&self, path: impl AsRef<Path>) -> Result<Reader> {
        let (fd, object) = self.open(path.as_ref(), false, "open for reading")?;
        Ok(Reader {
            fd,
            object: object.into(),
        })
    }

    /// `open(O_WRONLY)`—Opens the write end of the FIFO at `path`.
    ///
    /// # Errors
    /// As [`Writer::open`].
    pub fn open_writer(&self, path: impl AsRef<Path>) -> Result<Writer> {
        let (fd, object) = self.open(path.as_ref(), true, "open for writing")?;
        sys::pipe::refresh_sigpipe();
        Ok(Writer {
            fd,
            object: object.into(),
        })
    }

    fn open(&self, path: &Path, write: bool, op: &'static str) -> Result<(OwnedFd, String)> {
        let path = FsPath::new(path)?;
        let object = object_of(&path);
        // Refuse a non-FIFO before opening it: opening has effects on some
        // files (a device, a regular file's atime), and writing to a
        // regular file by mistake would damage it.
        let before =
            sys::pipe::stat(path.as_path()).map_err(|err| Error::os(object.clone(), op, err))?;
        if before.file_type != FileType::Fifo {
            return Err(wrong_type(&object, &before));
        }
        let how = OpenHow {
            write,
            nonblocking: self.nonblocking,
            cloexec: self.cloexec,
            nofollow: false,
        };
        let fd = sys::pipe::open(path.as_path(), how)
            .map_err(|err| Error::os(object.clone(), op, err))?;
        // And again after: the path may have been swapped meanwhile.
        let after =
            sys::pipe::fstat(fd.as_fd()).map_err(|err| Error::os(object.clone(), "fstat", err))?;
        if after.file_type != FileType::Fifo {
            return Err(wrong_type(&object, &after));
        }
        Ok((fd, object))
    }
}

/// The read end of a FIFO.
///
/// Implements [`Read`] (also on `&Reader`); a read returns 0 (end of file)
/// once every writer has closed. The descriptor closes on drop.
///
/// # Examples
/// ```
/// use std::io::Read;
/// use std::time::Duration;
/// use unipc::stream::fifo::{Fifo, OpenOptions};
///
/// let dir = tempfile::tempdir()?;
/// let fifo = Fifo::create(dir.path().join("f"), unipc::Mode::OWNER_RW)?;
/// let rx = OpenOptions::new().nonblocking(true).open_reader(fifo.path())?;
/// // No writer has come: nothing to read yet, and no end of file either.
/// assert!(!rx.wait_readable(Some(Duration::from_millis(10)))?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Reader {
    fd: OwnedFd,
    object: ObjectName,
}

/// The write end of a FIFO.
///
/// Implements [`Write`] (also on `&Writer`); a write with no reader left is
/// a [`std::io::ErrorKind::BrokenPipe`] error and never raises SIGPIPE. The
/// descriptor closes on drop.
///
/// # Examples
/// ```
/// use std::io::Write;
/// use unipc::stream::fifo::{Fifo, OpenOptions};
///
/// let dir = tempfile::tempdir()?;
/// let fifo = Fifo::create(dir.path().join("f"), unipc::Mode::OWNER_RW)?;
/// let rx = OpenOptions::new().nonblocking(true).open_reader(fifo.path())?;
/// let mut tx = OpenOptions::new().nonblocking(true).open_writer(fifo.path())?;
/// drop(rx);
/// let err = tx.write(b"x").unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Writer {
    fd: OwnedFd,
    object: ObjectName,
}

macro_rules! common_end_methods {
    () => {
        /// `fcntl(F_SETFL, O_NONBLOCK)`—Switches this end between blocking
        /// and non-blocking I/O.
        ///
        /// # Errors
        /// [`Error::Os`] if fcntl fails (not expected on an open FIFO).
        ///
        /// # References
        /// fcntl(2)
        pub fn set_nonblocking(&self, nonblocking: bool) -> Result<()> {
            sys::fd::set_nonblocking(self.fd.as_fd(), nonblocking)
                .map_err(|err| Error::os(self.object.clone(), "fcntl(F_SETFL)", err))
        }

        /// `fcntl(F_GETFL)`—Whether this end is in non-blocking mode.
        ///
        /// # Errors
        /// [`Error::Os`] if fcntl fails (not expected on an open FIFO).
        ///
        /// # References
        /// fcntl(2)
        pub fn is_nonblocking(&self) -> Result<bool> {
            sys::fd::is_nonblocking(self.fd.as_fd())
                .map_err(|err| Error::os(self.object.clone(), "fcntl(F_GETFL)", err))
        }

        /// The FIFO's endpoint as errors name it, `fifo:PATH`.
        pub fn object(&self) -> &str {
            &self.object
        }
    };
}

impl Reader {
    /// `open(O_RDONLY)`—Opens the read end of the FIFO at `path`, waiting
    /// until some process opens it for writing.
    ///
    /// # Errors
    /// - [`Error::WrongType`] when `path` is not a FIFO ("is a regular
    ///   file, not a FIFO"); nothing was opened, or what was opened after a
    ///   swap is closed unread.
    /// - [`Error::Os`] "open for reading": ENOENT, EACCES (this user may
    ///   not read it), ...
    /// - [`Error::InvalidName`] for an empty path or one with a NUL byte.
    ///
    /// # Examples
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let file = dir.path().join("plain");
    /// std::fs::write(&file, b"data")?;
    /// let err = unipc::stream::fifo::Reader::open(&file).unwrap_err();
    /// assert!(err.to_string().ends_with("is a regular file, not a FIFO"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # References
    /// open(2), fifo(7)
    pub fn open(path: impl AsRef<Path>) -> Result<Reader> {
        OpenOptions::new().open_reader(path)
    }

    common_end_methods!();

    /// `poll(POLLIN)`—Waits until a read would not block: data is waiting,
    /// or a writer came and every writer has gone (end of file). `None`
    /// waits forever. Returns false when the timeout passed first.
    ///
    /// On a read end opened non-blocking before any writer, a plain read
    /// would return 0 at once, indistinguishable from end of file; this
    /// waits for a writer instead, which is what a receive with a timeout
    /// needs: open non-blocking, `wait_readable(Some(timeout))`, then read.
    ///
    /// # Errors
    /// [`Error::Os`] if poll fails.
    ///
    /// # References
    /// poll(2), fifo(7)
    #[doc(alias = "poll")]
    pub fn wait_readable(&self, timeout: Option<Duration>) -> Result<bool> {
        sys::pipe::wait_readable(self.fd.as_fd(), timeout)
            .map_err(|err| Error::os(self.object.clone(), "poll", err))
    }
}

impl Writer {
    /// `open(O_WRONLY)`—Opens the write end of the FIFO at `path`, waiting
    /// until some process opens it for reading.
    ///
    /// # Errors
    /// - [`Error::WrongType`] when `path` is not a FIFO; a regular file is
    ///   never opened for writing.
    /// - [`Error::Os`] "open for writing": ENOENT, EACCES, and, for a
    ///   non-blocking open ([`OpenOptions::nonblocking`]), ENXIO when no
    ///   process has it open for reading.
    /// - [`Error::InvalidName`] for an empty path or one with a NUL byte.
    ///
    /// # References
    /// open(2), fifo(7)
    pub fn open(path: impl AsRef<Path>) -> Result<Writer> {
        OpenOptions::new().open_writer(path)
    }

    common_end_methods!();
}

super::pipe_end_io!(read Reader);

super::pipe_end_io!(write Writer);

super::fd_conversions!(Reader: object, fd);
super::fd_conversions!(Writer: object, fd);

impl TryFrom<OwnedFd> for Reader {
    type Error = AdoptError;

    /// Adopts the read end of a FIFO opened elsewhere (inherited, or
    /// received over a UNIX socket); errors name it `fifo`, its path being
    /// unknown. An anonymous pipe's read end passes the check too.
    ///
    /// # Errors
    /// [`Error::WrongType`] when `fd` is not a FIFO or pipe open for
    /// reading; the descriptor comes back inside the [`AdoptError`].
    fn try_from(fd: OwnedFd) -> std::result::Result<Reader, AdoptError> {
        let fd = adopt::check(fd, "fifo", "the read end of a FIFO", Want::PipeEnd(false))?;
        Ok(Reader {
            fd,
            object: "fifo".to_owned().into(),
        })
    }
}

impl TryFrom<OwnedFd> for Writer {
    type Error = AdoptError;

    /// Adopts the write end of a FIFO opened elsewhere, as
    /// [`Reader::try_from`] does the read end. Reads SIGPIPE's disposition.
    ///
    /// # Errors
    /// [`Error::WrongType`] when `fd` is not a FIFO or pipe open for
    /// writing; the descriptor comes back inside the [`AdoptError`].
    fn try_from(fd: OwnedFd) -> std::result::Result<Writer, AdoptError> {
        let fd = adopt::check(fd, "fifo", "the write end of a FIFO", Want::PipeEnd(true))?;
        sys::pipe::refresh_sigpipe();
        Ok(Writer {
            fd,
            object: "fifo".to_owned().into(),
        })
    }
}

/// The FIFO's entry in the facility registry (`unipc compare`, `unipc bench`).
pub static FACILITY: Facility = Facility {
    name: "fifo",
    scheme: Some("fifo"),
    summary: "named pipe: one-way byte stream found by a filesystem path",
    addressing: "fifo:PATH",
    properties: Properties {
        shape: Shape::ByteStream,
        direction: Direction::OneWay,
        tags: Tags::None,
        destructive_read: true,
        peek: false,
        naming: Naming::FilesystemPath,
        reach: Reach::Host,
        persistence: Persistence::Filesystem,
        permissions: "file mode and owner of the FIFO",
        reliable: true,
        after_crash: "closed by the kernel: the peer reads EOF or gets EPIPE; the name stays",
    },
    limits: || {
        vec![
            LiveLimit {
                name: "PIPE_BUF",
                value: format!("{} bytes (atomic write)", crate::stream::pipe::PIPE_BUF),
                source: "limits.h",
            },
            LiveLimit::from_proc(
                "pipe-max-size",
                "/proc/sys/fs/pipe-max-size",
                " bytes (F_SETPIPE_SZ, unprivileged)",
            ),
        ]
    },
    max_message: || None,
    #[cfg(feature = "bench")]
    connector: Some(&Connector),
};

#[cfg(feature = "bench")]
use crate::facility::{self, Link, LinkOptions, PendingLink, StreamCalls, StreamLink, Ticket};

/// Joins two processes through two FIFOs in the scratch directory, one
/// each way. Both sides open them in the same order, so the blocking opens
/// pair up instead of deadlocking; the FIFOs are unlinked once open.
#[cfg(feature = "bench")]
struct Connector;

#[cfg(feature = "bench")]
struct Pending(Fifo, Fifo);

#[cfg(feature = "bench")]
const TO_PEER: &str = "to-peer";
#[cfg(feature = "bench")]
const FROM_PEER: &str = "from-peer";

#[cfg(feature = "bench")]
impl facility::Connector for Connector {
    fn prepare(
        &self,
        scratch: &Path,
        _: &LinkOptions,
        announce: &mut dyn FnMut(&facility::CreatedObject),
    ) -> Result<(Box<dyn PendingLink>, Ticket)> {
        announce(&facility::CreatedObject::Path(scratch.join(TO_PEER)));
        let to_peer = Fifo::create(scratch.join(TO_PEER), Mode::OWNER_RW)?;
        announce(&facility::CreatedObject::Path(scratch.join(FROM_PEER)));
        let from_peer = Fifo::create(scratch.join(FROM_PEER), Mode::OWNER_RW)?;
        let address = scratch.to_string_lossy().into_owned();
        Ok((
            Box::new(Pending(to_peer, from_peer)),
            Ticket::address(address),
        ))
    }

    fn join(&self, ticket: Ticket, _: &LinkOptions) -> Result<Box<dyn Link>> {
        let dir = Path::new(&ticket.address);
        let reader = Reader::open(dir.join(TO_PEER))?;
        let writer = Writer::open(dir.join(FROM_PEER))?;
        let object = reader.object().to_owned();
        Ok(Box::new(StreamLink::new(
            object,
            reader,
            writer,
            StreamCalls::ReadWrite,
        )))
    }
}

#[cfg(feature = "bench")]
impl PendingLink for Pending {
    fn establish(self: Box<Self>) -> Result<Box<dyn Link>> {
        let Pending(to_peer, from_peer) = *self;
        let writer = to_peer.open_writer()?;
        let reader = from_peer.open_reader()?;
        let object = writer.object().to_owned();
        to_peer.remove()?;
        from_peer.remove()?;
        Ok(Box::new(StreamLink::new(
            object,
            reader,
            writer,
            StreamCalls::ReadWrite,
        )))
    }
}
