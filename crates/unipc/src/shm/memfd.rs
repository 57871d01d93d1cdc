//! Sealed memfd hand-off: fill anonymous memory, seal it against change,
//! pass the descriptor over a UNIX socket, and let the receiver map it
//! safely.
//!
//! Part of [`shm`](crate::shm). A memfd (`memfd_create`) is a tmpfs file
//! with no name: nobody can open it who was not given its descriptor, and
//! [`Stream::send_with_fds`](crate::stream::unix::Stream::send_with_fds)
//! gives it (`SCM_RIGHTS`). Seals (`fcntl(F_ADD_SEALS)`) are properties of
//! the file itself, which nobody can remove once added, so the receiver
//! can check them and rely on them whatever the sender does next.
//!
//! The hand-off, in three steps:
//!
//! 1. [`Memfd::create`] makes the memfd (`MFD_CLOEXEC |
//!    MFD_ALLOW_SEALING`), sizes it, and seals it at once with
//!    `F_SEAL_SHRINK | F_SEAL_GROW`: its size is then fixed, so mapping it
//!    ([`Memfd::map`]) is safe even for the sender.
//! 2. [`Memfd::seal`] adds `F_SEAL_WRITE | F_SEAL_SEAL` and gives a
//!    [`SealedMemfd`]: from then on nobody, the sender included, can
//!    change a byte.
//! 3. The receiver adopts the descriptor with
//!    [`SealedMemfd::try_from`](SealedMemfd#impl-TryFrom<OwnedFd>-for-SealedMemfd),
//!    which reads the seals (`F_GET_SEALS`) and refuses, handing the
//!    descriptor back, anything that lacks [`SealedMemfd::REQUIRED`]
//!    (`F_SEAL_SHRINK | F_SEAL_WRITE`). Its [`SealedMemfd::map`] is then
//!    safe, no `unsafe` needed: the file cannot shrink under the mapping
//!    (no `SIGBUS`) and its bytes cannot change under the reader.
//!
//! # Why `F_SEAL_WRITE`, not `F_SEAL_FUTURE_WRITE`
//!
//! `F_SEAL_FUTURE_WRITE` refuses new write access but leaves writable
//! mappings made before it working: a sender that kept one could still
//! change the bytes the receiver reads. `F_SEAL_WRITE` guarantees the
//! contents to everyone, at a price: the kernel refuses it (`EBUSY`) while
//! any writable shared mapping of the memfd exists. So drop the
//! [`Mapping`]s of [`Memfd::map`] before [`Memfd::seal`]; if one is still
//! alive, the seal fails with a [`SealError`] that gives the memfd back.
//!
//! The check reads the seals, not the file's name: any file that carries
//! them (a memfd, or another shmem or hugetlbfs file) is safe to map,
//! while files elsewhere cannot be sealed at all and are refused as
//! [`Error::WrongType`].
//!
//! # Examples
//!
//! ```
//! use std::os::fd::AsFd;
//! use unipc::shm::memfd::{Memfd, SealedMemfd};
//! use unipc::stream::unix;
//!
//! let (a, b) = unix::pair()?;
//! let memfd = Memfd::create("frame", 4096)?;
//! memfd.write_at(0, b"payload")?;
//! let sealed = memfd.seal()?;
//! a.send_with_fds(b"m", &[sealed.as_fd()])?;
//!
//! // The receiving side, usually another process:
//! let (_, mut fds) = b.recv_with_fds(&mut [0; 1], 1)?;
//! let received = SealedMemfd::try_from(fds.pop().unwrap())?;
//! let map = received.map()?; // safe: it can neither shrink nor change
//! let mut got = [0; 7];
//! map.read_at(0, &mut got)?;
//! assert_eq!(&got, b"payload");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # References
//!
//! memfd_create(2), fcntl(2) ("File Sealing"), unix(7) (`SCM_RIGHTS`),
//! mmap(2).

use std::fmt;
use std::io;
use std::ops::BitOr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::adopt::AdoptError;
use crate::error::ObjectName;
use crate::shm::{check_range, Access, Mapping};
use crate::sys::memfd as sys;
use crate::sys::shm as shm_sys;
use crate::{Error, Result};

/// The longest memfd name Linux accepts, in bytes (`NAME_MAX` less the
/// `memfd:` prefix).
pub const MAX_NAME_LEN: usize = 249;

/// A set of file seals (`F_SEAL_*`), as `fcntl(F_GET_SEALS)` reports them.
///
/// # Examples
///
/// ```
/// use unipc::shm::memfd::SealFlags;
///
/// let seals = SealFlags::SHRINK | SealFlags::GROW;
/// assert!(seals.contains(SealFlags::SHRINK));
/// assert_eq!(SealFlags::IMMUTABLE.difference(seals), SealFlags::WRITE);
/// assert_eq!(seals.to_string(), "F_SEAL_SHRINK | F_SEAL_GROW");
/// assert_eq!(SealFlags::EMPTY.to_string(), "no seals");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SealFlags(u32);

impl SealFlags {
    /// No seal.
    pub const EMPTY: SealFlags = SealFlags(0);
    /// `F_SEAL_SEAL`: no further seal may be added.
    pub const SEAL: SealFlags = SealFlags(sys::SEAL);
    /// `F_SEAL_SHRINK`: the file may not shrink.
    pub const SHRINK: SealFlags = SealFlags(sys::SHRINK);
    /// `F_SEAL_GROW`: the file may not grow.
    pub const GROW: SealFlags = SealFlags(sys::GROW);
    /// `F_SEAL_WRITE`: the contents may not change, through any descriptor
    /// or mapping.
    pub const WRITE: SealFlags = SealFlags(sys::WRITE);
    /// `F_SEAL_FUTURE_WRITE`: no new write access; writable mappings made
    /// before keep writing.
    pub const FUTURE_WRITE: SealFlags = SealFlags(sys::FUTURE_WRITE);
    /// `F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE`: size and bytes fixed.
    pub const IMMUTABLE: SealFlags = SealFlags(sys::SHRINK | sys::GROW | sys::WRITE);

    const NAMES: [(SealFlags, &'static str); 5] = [
        (SealFlags::SEAL, "F_SEAL_SEAL"),
        (SealFlags::SHRINK, "F_SEAL_SHRINK"),
        (SealFlags::GROW, "F_SEAL_GROW"),
        (SealFlags::WRITE, "F_SEAL_WRITE"),
        (SealFlags::FUTURE_WRITE, "F_SEAL_FUTURE_WRITE"),
    ];

    /// The raw `F_SEAL_*` bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// The seals of `bits`, unknown bits included.
    pub const fn from_bits_retain(bits: u32) -> SealFlags {
        SealFlags(bits)
    }

    /// Whether every seal of `other` is in `self`.
    pub const fn contains(self, other: SealFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The seals of `self` that are not in `other`.
    pub const fn difference(self, other: SealFlags) -> SealFlags {
        SealFlags(self.0 & !other.0)
    }

    /// Whether there is no seal.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl BitOr for SealFlags {
    type Output = SealFlags;
    fn bitor(self, rhs: SealFlags) -> SealFlags {
        SealFlags(self.0 | rhs.0)
    }
}

impl fmt::Display for SealFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("no seals");
        }
        let mut rest = *self;
        let mut first = true;
        for (seal, name) in SealFlags::NAMES {
            if self.contains(seal) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
                rest = rest.difference(seal);
            }
        }
        if !rest.is_empty() {
            if !first {
                f.write_str(" | ")?;
            }
            write!(f, "{:#x}", rest.0)?;
        }
        Ok(())
    }
}

impl fmt::Debug for SealFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealFlags({self})")
    }
}

fn check_name(name: &str) -> Result<()> {
    let reason = if name.len() > MAX_NAME_LEN {
        format!("longer than {MAX_NAME_LEN} bytes")
    } else if name.contains(['\0', '/']) {
        "contains a NUL byte or a '/'".to_string()
    } else {
        return Ok(());
    };
    Err(Error::InvalidName {
        kind: "memfd name",
        input: name.to_string(),
        reason,
    })
}

/// The sender's side: a memfd of a fixed size, writable until
/// [`seal`](Self::seal)ed.
///
/// Its size is sealed (`F_SEAL_SHRINK | F_SEAL_GROW`) as it is made, so
/// [`map`](Self::map) is safe. See [the module](self) for the hand-off.
///
/// # Examples
///
/// ```
/// use unipc::shm::memfd::Memfd;
/// use unipc::shm::Access;
///
/// let memfd = Memfd::create("scratch", 8192)?;
/// let map = memfd.map(Access::ReadWrite)?;
/// map.write_at(0, b"mapped")?;
/// let mut got = [0; 6];
/// memfd.read_at(0, &mut got)?;
/// assert_eq!(&got, b"mapped");
/// // A writable mapping blocks F_SEAL_WRITE: the memfd comes back.
/// let err = memfd.seal().unwrap_err();
/// assert_eq!(err.error().raw_os_error(), Some(libc::EBUSY));
/// let memfd = err.into_memfd();
/// drop(map);
/// let sealed = memfd.seal()?;
/// assert!(sealed.seals().contains(unipc::shm::memfd::SealFlags::IMMUTABLE));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Memfd {
    fd: OwnedFd,
    object: ObjectName,
    size: u64,
}

impl Memfd {
    /// `memfd_create(MFD_CLOEXEC | MFD_ALLOW_SEALING)` + `ftruncate` +
    /// `F_ADD_SEALS(F_SEAL_SHRINK | F_SEAL_GROW)` — a zeroed memfd of
    /// `size` bytes whose size can no longer change. `name` is only a
    /// label (`/proc/PID/fd` shows `memfd:NAME`); it reaches nothing.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] for a name over [`MAX_NAME_LEN`] bytes or
    /// with a NUL or `/`, before any call; [`Error::Os`] when a call fails
    /// (`EFBIG` or `ENOSPC` for a size the tmpfs refuses).
    #[doc(alias = "memfd_create")]
    pub fn create(name: &str, size: u64) -> Result<Memfd> {
        check_name(name)?;
        let object = ObjectName::from(format!("memfd:{name}"));
        let fd = sys::create(name).map_err(|e| Error::os(object.clone(), "memfd_create", e))?;
        shm_sys::set_size(fd.as_fd(), size)
            .map_err(|e| Error::os(object.clone(), "ftruncate", e))?;
        sys::add_seals(fd.as_fd(), sys::SHRINK | sys::GROW)
            .map_err(|e| Error::os(object.clone(), "seal", e))?;
        Ok(Memfd { fd, object, size })
    }

    /// The size in bytes, fixed at creation.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// `memfd:NAME`, the object errors name.
    pub fn object(&self) -> &ObjectName {
        &self.object
    }

    /// `F_GET_SEALS` — the seals in force.
    ///
    /// # Errors
    ///
    /// [`Error::Os`] when `fcntl` fails.
    pub fn seals(&self) -> Result<SealFlags> {
        sys::seals(self.fd.as_fd())
            .map(SealFlags)
            .map_err(|e| Error::os(self.object.clone(), "get seals", e))
    }

    /// `pwrite` — copies `data` to `offset`.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`] when the range runs past the end (nothing is
    /// written); [`Error::Os`] when `pwrite` fails.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
        check_range(&self.object, "write", offset, data.len(), self.size)?;
        shm_sys::write_at(self.fd.as_fd(), data, offset)
            .map_err(|e| Error::os(self.object.clone(), "pwrite", e))
    }

    /// `pread` — copies `buf.len()` bytes from `offset` into `buf`.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`] when the range runs past the end;
    /// [`Error::Os`] when `pread` fails.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        read_exact_at(&self.fd, &self.object, self.size, offset, buf)
    }

    /// `mmap(MAP_SHARED)` — maps the whole memfd, read-only or read-write.
    /// Safe: its size is sealed, so it cannot shrink under the mapping.
    /// Drop a read-write mapping before [`seal`](Self::seal).
    ///
    /// # Errors
    ///
    /// [`Error::Os`] when `mmap` fails.
    #[doc(alias = "mmap")]
    pub fn map(&self, access: Access) -> Result<Mapping> {
        map_sealed(&self.fd, &self.object, self.size, access.writable())
    }

    /// `F_ADD_SEALS(F_SEAL_WRITE | F_SEAL_SEAL)` — fixes the bytes for
    /// everyone, this process included, and forbids further seals.
    ///
    /// # Errors
    ///
    /// A [`SealError`] that gives the memfd back: `EBUSY` while a writable
    /// shared mapping of it exists (drop the [`Mapping`]s of
    /// [`map`](Self::map) first), or another [`Error::Os`] from `fcntl`.
    #[doc(alias = "F_ADD_SEALS")]
    #[doc(alias = "F_SEAL_WRITE")]
    pub fn seal(self) -> std::result::Result<SealedMemfd, SealError> {
        match sys::add_seals(self.fd.as_fd(), sys::WRITE | sys::SEAL) {
            Ok(()) => Ok(SealedMemfd {
                seals: SealFlags::IMMUTABLE | SealFlags::SEAL,
                fd: self.fd,
                object: self.object,
                size: self.size,
            }),
            Err(e) => {
                let busy = e.raw_os_error() == Some(libc::EBUSY);
                let mut error = Error::os(self.object.clone(), "seal", e);
                if busy {
                    error = error.with_hint(
                        "a writable shared mapping of it still exists; drop it before sealing",
                    );
                }
                Err(SealError { memfd: self, error })
            }
        }
    }
}

impl AsFd for Memfd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<Memfd> for OwnedFd {
    fn from(memfd: Memfd) -> OwnedFd {
        memfd.fd
    }
}

/// A [`Memfd::seal`] that failed, with the memfd given back.
///
/// Converts into [`Error`] (closing the memfd) for `?`.
pub struct SealError {
    memfd: Memfd,
    error: Error,
}

impl SealError {
    /// Why the seal failed.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The memfd, unsealed, back to the caller.
    pub fn into_memfd(self) -> Memfd {
        self.memfd
    }
}

impl fmt::Debug for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealError")
            .field("memfd", &self.memfd)
            .field("error", &self.error)
            .finish()
    }
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for SealError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl From<SealError> for Error {
    fn from(err: SealError) -> Error {
        err.error
    }
}

/// The receiver's side: a memfd whose size and bytes are sealed, checked
/// on adoption, so mapping it is safe.
///
/// Made by [`Memfd::seal`] or, from a descriptor another process passed,
/// by `TryFrom<OwnedFd>`, which requires [`REQUIRED`](Self::REQUIRED).
///
/// # Examples
///
/// ```
/// use std::os::fd::OwnedFd;
/// use unipc::shm::memfd::{Memfd, SealedMemfd, SealFlags};
///
/// // Not sealed against writes: refused, with the missing seal named.
/// let unsealed = Memfd::create("draft", 4096)?;
/// let err = SealedMemfd::try_from(OwnedFd::from(unsealed)).unwrap_err();
/// assert!(matches!(
///     err.error(),
///     unipc::Error::MissingSeals { missing, .. } if *missing == SealFlags::WRITE
/// ));
/// let _fd: OwnedFd = err.into_fd(); // given back
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SealedMemfd {
    fd: OwnedFd,
    object: ObjectName,
    size: u64,
    seals: SealFlags,
}

impl SealedMemfd {
    /// The seals adoption requires: `F_SEAL_SHRINK` (no `SIGBUS` under a
    /// mapping) and `F_SEAL_WRITE` (no byte changes, through any mapping
    /// made before or after). `F_SEAL_FUTURE_WRITE` does not stand in for
    /// `F_SEAL_WRITE`: mappings made before it keep writing.
    pub const REQUIRED: SealFlags = SealFlags(sys::SHRINK | sys::WRITE);

    /// The size in bytes, as when it was checked (it cannot shrink; it
    /// could grow only without `F_SEAL_GROW`, and a mapping covers this
    /// size).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The seals found on adoption (or set by [`Memfd::seal`]).
    pub fn seals(&self) -> SealFlags {
        self.seals
    }

    /// The object errors name: `memfd:NAME` when `/proc` tells the name.
    pub fn object(&self) -> &ObjectName {
        &self.object
    }

    /// `mmap(PROT_READ, MAP_SHARED)` — maps the whole memfd read-only.
    /// Safe: the seals forbid shrinking it (no `SIGBUS`) and changing it.
    ///
    /// # Errors
    ///
    /// [`Error::Os`] when `mmap` fails.
    #[doc(alias = "mmap")]
    pub fn map(&self) -> Result<Mapping> {
        map_sealed(&self.fd, &self.object, self.size, false)
    }

    /// `pread` — copies `buf.len()` bytes from `offset` into `buf`.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`] when the range runs past the end;
    /// [`Error::Os`] when `pread` fails.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        read_exact_at(&self.fd, &self.object, self.size, offset, buf)
    }
}

impl TryFrom<OwnedFd> for SealedMemfd {
    type Error = AdoptError;

    /// `fstat` + `fcntl(F_GET_SEALS)` — adopts a descriptor that is a
    /// regular file carrying at least [`SealedMemfd::REQUIRED`].
    ///
    /// Refused, with the descriptor given back: [`Error::WrongType`] for
    /// anything but a regular file, or a file that cannot be sealed (not a
    /// memfd); [`Error::MissingSeals`] naming the seals it lacks.
    fn try_from(fd: OwnedFd) -> std::result::Result<SealedMemfd, AdoptError> {
        let object = ObjectName::from(
            sys::link_name(fd.as_fd())
                .and_then(|link| {
                    let name = link.strip_prefix("/memfd:")?;
                    Some(format!(
                        "memfd:{}",
                        name.strip_suffix(" (deleted)").unwrap_or(name)
                    ))
                })
                .unwrap_or_else(|| "memfd".to_string()),
        );
        let wrong = |fd, found| {
            Err(AdoptError::new(
                fd,
                Error::WrongType {
                    object: object.clone(),
                    expected: "a sealed memfd",
                    found,
                },
            ))
        };
        match sys::is_regular_file(fd.as_fd()) {
            Ok(true) => {}
            Ok(false) => return wrong(fd, "not a regular file"),
            Err(e) => {
                let error = Error::os(object.clone(), "fstat", e);
                return Err(AdoptError::new(fd, error));
            }
        }
        let seals = match sys::seals(fd.as_fd()) {
            Ok(bits) => SealFlags(bits),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                return wrong(fd, "a file that cannot be sealed (not a memfd)")
            }
            Err(e) => {
                let error = Error::os(object.clone(), "get seals", e);
                return Err(AdoptError::new(fd, error));
            }
        };
        let missing = SealedMemfd::REQUIRED.difference(seals);
        if !missing.is_empty() {
            let error = Error::MissingSeals {
                object,
                missing,
                present: seals,
            };
            return Err(AdoptError::new(fd, error));
        }
        let size = match shm_sys::fstat(fd.as_fd()) {
            Ok(st) => st.size,
            Err(e) => {
                let error = Error::os(object.clone(), "fstat", e);
                return Err(AdoptError::new(fd, error));
            }
        };
        Ok(SealedMemfd {
            fd,
            object,
            size,
            seals,
        })
    }
}

impl AsFd for SealedMemfd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<SealedMemfd> for OwnedFd {
    fn from(memfd: SealedMemfd) -> OwnedFd {
        memfd.fd
    }
}

fn read_exact_at(
    fd: &OwnedFd,
    object: &ObjectName,
    size: u64,
    offset: u64,
    buf: &mut [u8],
) -> Result<()> {
    check_range(object, "read", offset, buf.len(), size)?;
    let n = shm_sys::read_at(fd.as_fd(), buf, offset)
        .map_err(|e| Error::os(object.clone(), "pread", e))?;
    if n < buf.len() {
        return Err(Error::os(
            object.clone(),
            "pread",
            io::Error::from(io::ErrorKind::UnexpectedEof),
        ));
    }
    Ok(())
}

/// Maps a memfd that carries `F_SEAL_SHRINK` (set by [`Memfd::create`],
/// checked by [`SealedMemfd::try_from`], and checked again in `sys`).
fn map_sealed(fd: &OwnedFd, object: &ObjectName, size: u64, write: bool) -> Result<Mapping> {
    let len = usize::try_from(size).map_err(|_| Error::LimitExceeded {
        object: object.clone(),
        what: "size",
        requested: size,
        limit: usize::MAX as u64,
        set_in: "this process's address space",
    })?;
    let region = sys::map_sealed(fd.as_fd(), len, write)
        .map_err(|e| Error::os(object.clone(), "mmap", e))?;
    Ok(Mapping::new(region, object.clone(), write))
}
