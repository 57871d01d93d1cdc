//! The one rule for adopting a raw descriptor.
//!
//! Every public type that wraps a descriptor is made from an [`OwnedFd`]
//! by `TryFrom<OwnedFd>`, and gives it up by `From<T> for OwnedFd`. The
//! conversion checks that the descriptor is what the type needs — a pipe or
//! FIFO end open the right way (`fstat`, `fcntl(F_GETFL)`), a socket of the
//! right family and type, listening or not (`getsockopt` `SO_DOMAIN`,
//! `SO_TYPE`, `SO_ACCEPTCONN`) — and when it is not, hands the descriptor
//! back inside an [`AdoptError`] (as crossbeam's `SendError` returns the
//! message), so the caller can still use it or close it.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::FileType;

use crate::sys::fd::{self as sys, Described, Family, SocketKind};
use crate::Error;

/// A descriptor that `TryFrom<OwnedFd>` refused, given back with the
/// reason.
///
/// Converts into [`Error`] (closing the descriptor) for `?` in code that
/// has no use for it.
///
/// # Examples
/// ```
/// use std::os::fd::{AsFd, AsRawFd, OwnedFd};
/// use unipc::stream::{pipe, unix};
///
/// let (tx, _rx) = pipe::new()?;
/// let raw = tx.as_fd().as_raw_fd();
/// // A pipe end is not a UNIX stream socket: refused, and given back.
/// let err = unix::Stream::try_from(OwnedFd::from(tx)).unwrap_err();
/// assert!(matches!(err.error(), unipc::Error::WrongType { .. }));
/// assert_eq!(err.to_string(), "unix: is the write end of a pipe or FIFO, not a UNIX stream socket");
/// let fd = err.into_fd();
/// assert_eq!(fd.as_raw_fd(), raw);
/// let tx = pipe::Sender::try_from(fd)?; // the right kind is adopted
/// # drop(tx);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AdoptError {
    fd: OwnedFd,
    error: Error,
}

impl AdoptError {
    pub(crate) fn new(fd: OwnedFd, error: Error) -> AdoptError {
        AdoptError { fd, error }
    }

    /// Why the descriptor was refused: [`Error::WrongType`], or
    /// [`Error::Os`] when it could not even be examined.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The descriptor, back to the caller.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// The descriptor and the reason.
    pub fn into_parts(self) -> (OwnedFd, Error) {
        (self.fd, self.error)
    }
}

impl fmt::Debug for AdoptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdoptError")
            .field("fd", &self.fd)
            .field("error", &self.error)
            .finish()
    }
}

impl fmt::Display for AdoptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl std::error::Error for AdoptError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
}

impl From<AdoptError> for Error {
    /// The reason; the descriptor is closed.
    fn from(err: AdoptError) -> Error {
        err.error
    }
}

impl From<AdoptError> for io::Error {
    /// As the reason's conversion; the descriptor is closed.
    fn from(err: AdoptError) -> io::Error {
        err.error.into()
    }
}

/// What an adopting type needs.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Want {
    /// A socket of this family and type, listening or not.
    Socket(Family, SocketKind, bool),
    /// A pipe or FIFO end that can write (`true`) or read (`false`).
    PipeEnd(bool),
}

/// Returns `fd` when it is what `want` says, or gives it back inside the
/// error naming `object` (the facility's scheme) and `expected` (in words).
pub(crate) fn check(
    fd: OwnedFd,
    object: &str,
    expected: &'static str,
    want: Want,
) -> Result<OwnedFd, AdoptError> {
    let found = match sys::describe(fd.as_fd()) {
        Ok(found) => found,
        Err(err) => {
            let error = Error::os(object, "examine the descriptor", err);
            return Err(AdoptError::new(fd, error));
        }
    };
    let fits = match (want, found) {
        (
            Want::Socket(family, kind, listening),
            Described::Socket {
                family: f,
                kind: k,
                listening: l,
            },
        ) => family == f && kind == k && listening == l,
        (
            Want::PipeEnd(write),
            Described::File {
                file_type: FileType::Fifo,
                readable,
                writable,
            },
        ) => {
            if write {
                writable
            } else {
                readable
            }
        }
        _ => false,
    };
    if fits {
        return Ok(fd);
    }
    let error = Error::WrongType {
        object: object.to_owned().into(),
        expected,
        found: found_name(found),
    };
    Err(AdoptError::new(fd, error))
}

/// Refuses `fd`, which a facility-specific check found is not `expected`,
/// naming what it is instead.
pub(crate) fn refuse(fd: OwnedFd, object: &str, expected: &'static str) -> AdoptError {
    let found = match sys::describe(fd.as_fd()) {
        Ok(Described::File {
            file_type: FileType::CharacterDevice,
            ..
        }) => "a character device that is not a pseudoterminal master",
        Ok(found) => found_name(found),
        Err(err) => {
            let error = Error::os(object, "examine the descriptor", err);
            return AdoptError::new(fd, error);
        }
    };
    let error = Error::WrongType {
        object: object.to_owned().into(),
        expected,
        found,
    };
    AdoptError::new(fd, error)
}

/// What a refused descriptor is, in words.
fn found_name(found: Described) -> &'static str {
    use SocketKind::{Dgram, Seqpacket, Stream};
    match found {
        Described::Socket {
            family,
            kind,
            listening,
        } => match (family, kind, listening) {
            (Family::Unix, Stream, true) => "a listening UNIX stream socket",
            (Family::Unix, Stream, false) => "a UNIX stream socket",
            (Family::Unix, Seqpacket, true) => "a listening UNIX seqpacket socket",
            (Family::Unix, Seqpacket, false) => "a UNIX seqpacket socket",
            (Family::Unix, Dgram, _) => "a UNIX datagram socket",
            (Family::Inet, Stream, true) => "a listening TCP socket",
            (Family::Inet, Stream, false) => "a TCP socket",
            (Family::Inet, Dgram, _) => "a UDP socket",
            _ => "a socket of another type or family",
        },
        Described::File {
            file_type: FileType::Fifo,
            readable,
            writable,
        } => match (readable, writable) {
            (true, true) => "a FIFO open for reading and writing",
            (true, false) => "the read end of a pipe or FIFO",
            (false, true) => "the write end of a pipe or FIFO",
            (false, false) => "a pipe or FIFO opened with O_PATH",
        },
        Described::File { file_type, .. } => sys::file_type_name(file_type),
    }
}
