//! Descriptor-wide calls shared by every facility.

use std::os::fd::BorrowedFd;

use rustix::fs::{FileType, OFlags};
use rustix::io;

/// Sets or clears O_NONBLOCK.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>, nonblocking: bool) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    let wanted = if nonblocking {
        flags | OFlags::NONBLOCK
    } else {
        flags - OFlags::NONBLOCK
    };
    if wanted != flags {
        rustix::fs::fcntl_setfl(fd, wanted)?;
    }
    Ok(())
}

/// Whether O_NONBLOCK is set.
pub(crate) fn is_nonblocking(fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(rustix::fs::fcntl_getfl(fd)?.contains(OFlags::NONBLOCK))
}

/// A file type in words, for "is X, not Y" errors.
pub(crate) fn file_type_name(file_type: FileType) -> &'static str {
    match file_type {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Unknown => "an object of unknown type",
    }
}

/// `getsockopt(SO_ERROR)`—takes the socket's pending error, if any.
pub(crate) fn take_socket_error(fd: BorrowedFd<'_>) -> io::Result<Option<io::Errno>> {
    Ok(rustix::net::sockopt::socket_error(fd)?.err())
}

/// A socket's address family, as the checked adoptions tell them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    /// `AF_UNIX`.
    Unix,
    /// `AF_INET` or `AF_INET6`.
    Inet,
    /// Any other family.
    Other,
}

/// A socket's type (`SO_TYPE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SocketKind {
    /// `SOCK_STREAM`.
    Stream,
    /// `SOCK_SEQPACKET`.
    Seqpacket,
    /// `SOCK_DGRAM`.
    Dgram,
    /// Any other type.
    Other,
}

/// What a descriptor handed in from outside is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Described {
    /// A socket: its family, type and whether it listens.
    Socket {
        family: Family,
        kind: SocketKind,
        listening: bool,
    },
    /// Anything else: its file type and access mode.
    File {
        file_type: FileType,
        readable: bool,
        writable: bool,
    },
}

/// `getsockopt(SO_DOMAIN, SO_TYPE, SO_ACCEPTCONN)` on a socket, or
/// `fstat` + `fcntl(F_GETFL)` on anything else (`ENOTSOCK`).
pub(crate) fn describe(fd: BorrowedFd<'_>) -> io::Result<Described> {
    use rustix::net::{sockopt, AddressFamily, SocketType};
    let family = match sockopt::socket_domain(fd) {
        Ok(AddressFamily::UNIX) => Family::Unix,
        Ok(AddressFamily::INET | AddressFamily::INET6) => Family::Inet,
        Ok(_) => Family::Other,
        Err(io::Errno::NOTSOCK) => {
            let st = rustix::fs::fstat(fd)?;
            let flags = rustix::fs::fcntl_getfl(fd)?;
            // An O_PATH descriptor neither reads nor writes.
            let io = !flags.contains(OFlags::PATH);
            let access = flags & OFlags::ACCMODE;
            return Ok(Described::File {
                file_type: FileType::from_raw_mode(st.st_mode),
                readable: io && access != OFlags::WRONLY,
                writable: io && (access == OFlags::WRONLY || access == OFlags::RDWR),
            });
        }
        Err(other) => return Err(other),
    };
    let kind = match sockopt::socket_type(fd)? {
        SocketType::STREAM => SocketKind::Stream,
        SocketType::SEQPACKET => SocketKind::Seqpacket,
        SocketType::DGRAM => SocketKind::Dgram,
        _ => SocketKind::Other,
    };
    Ok(Described::Socket {
        family,
        kind,
        listening: sockopt::socket_acceptconn(fd)?,
    })
}
