//! The socket file of a UNIX socket bound to a path, seen from outside the
//! socket: opening it without following a link, its identity, setting its
//! mode on the inode held, probing whether a socket is bound to it, and the
//! kernel's own record of which file a socket is bound to (`sock_diag`).
//!
//! Shared by the stream, seqpacket and datagram sockets (through
//! `crate::unix_socket`). No unsafe code: rustix covers every call, and the
//! `sock_diag` messages are built and parsed as plain bytes.
//!
//! # `/proc/self/fd/N`
//! Two calls here act on a file through the magic link `/proc/self/fd/N` of
//! an `O_PATH` descriptor: `chmod` (rustix has no `fchmodat2`, and `fchmod`
//! refuses an `O_PATH` descriptor with `EBADF`) and the stale probe's
//! `connect`. The kernel resolves such a link to the very inode the
//! descriptor holds (`proc_fd_link` + `nd_jump_link`), not by looking a path
//! up again, so a file swapped in at the original path is never reached.
//!
//! # `sock_diag`
//! A `NETLINK_SOCK_DIAG` request for one UNIX socket (by its sockfs inode,
//! with `UDIAG_SHOW_VFS`) answers with `UNIX_DIAG_VFS`: the device and inode
//! of the file the socket is bound to (`net/unix/diag.c`,
//! `sk_diag_dump_vfs`). The kernel answers synchronously, within the
//! `sendto`, so the reply is read without waiting.
//!
//! # References
//! open(2) (`O_PATH`, `O_NOFOLLOW`), proc(5) (`/proc/pid/fd`), sock_diag(7),
//! netlink(7), unix(7)

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, Stat};
use rustix::io::{self, Errno};
use rustix::net::netlink::{self, SocketAddrNetlink};
use rustix::net::{
    self as rnet, AddressFamily, RecvFlags, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};

/// What a file is and who it belongs to, from one `stat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileInfo {
    pub(crate) file_type: FileType,
    pub(crate) uid: u32,
    pub(crate) nlink: u64,
    pub(crate) id: FileId,
}

/// The identity of a file: its device and inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FileId {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

fn info(stat: &Stat) -> FileInfo {
    FileInfo {
        file_type: FileType::from_raw_mode(stat.st_mode),
        uid: stat.st_uid,
        nlink: stat.st_nlink,
        id: FileId {
            dev: stat.st_dev,
            ino: stat.st_ino,
        },
    }
}

/// `open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC)`: a handle on the file the
/// path names itself (a symbolic link is opened as the link, not followed),
/// which reads nothing and needs no permission on the file.
pub(crate) fn open_nofollow(path: &Path) -> io::Result<OwnedFd> {
    rustix::fs::open(
        path,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// `fstat(fd)`.
pub(crate) fn fstat(fd: BorrowedFd<'_>) -> io::Result<FileInfo> {
    rustix::fs::fstat(fd).map(|stat| info(&stat))
}

/// `lstat(path)`: what is at the path, without following a symbolic link.
pub(crate) fn lstat(path: &Path) -> io::Result<FileInfo> {
    rustix::fs::lstat(path).map(|stat| info(&stat))
}

pub(crate) use super::proc::euid;

/// The magic link naming the file an open descriptor holds.
fn proc_fd(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// `chmod("/proc/self/fd/N", mode)`: sets the mode of the inode that the
/// (`O_PATH`) descriptor holds, whatever the path it was opened by names
/// now.
pub(crate) fn chmod_held(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    // Also how `sys::pipe::set_mode_exact` sets a FIFO's mode.
    rustix::fs::chmod(proc_fd(fd), Mode::from_raw_mode(mode))
}

/// `fchmod(fd, mode)` on a socket not yet bound: the mode `bind` gives its
/// file (less the umask).
pub(crate) fn fchmod(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    rustix::fs::fchmod(fd, Mode::from_raw_mode(mode))
}

/// `unlink(path)`.
pub(crate) fn unlink(path: &Path) -> io::Result<()> {
    rustix::fs::unlink(path)
}

/// `bind(fd, addr)` for a UNIX socket of any type.
pub(crate) fn bind(fd: BorrowedFd<'_>, addr: &SocketAddrUnix) -> io::Result<()> {
    rnet::bind(fd, addr)
}

/// How a probe of a socket file went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Probe {
    /// A socket is bound to the file (of any type).
    Live,
    /// No socket is bound to it: its binder is gone.
    Stale,
}

/// Whether any socket is bound to the socket file `held` (an `O_PATH`
/// descriptor on it): a datagram `connect` to `/proc/self/fd/N`.
///
/// The connect reaches the inode held, not whatever the path names now. A
/// datagram probe tells every case apart (`unix_find_bsd` in
/// `net/unix/af_unix.c`): no socket bound to the inode is `ECONNREFUSED`;
/// a bound datagram socket accepts (or `EPERM`: it is connected to
/// another); a stream or seqpacket socket, listening or only bound, is
/// `EPROTOTYPE`. A stream probe would instead take a socket bound but not
/// yet listening for a stale one. When `/proc` is not mounted (`ENOENT`),
/// `path` is probed instead.
pub(crate) fn probe(held: BorrowedFd<'_>, path: &Path) -> io::Result<Probe> {
    let probe = rnet::socket_with(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    let outcome = |result: io::Result<()>| match result {
        Ok(()) | Err(Errno::PROTOTYPE) | Err(Errno::PERM) | Err(Errno::AGAIN) => Ok(Probe::Live),
        Err(Errno::CONNREFUSED) => Ok(Probe::Stale),
        Err(err) => Err(err),
    };
    let via_proc = SocketAddrUnix::new(proc_fd(held))?;
    match rnet::connect(&probe, &via_proc) {
        Err(Errno::NOENT) => {}
        other => return outcome(other),
    }
    outcome(rnet::connect(&probe, &SocketAddrUnix::new(path)?))
}

// ---------------------------------------------------------------------------
// sock_diag.

/// `SOCK_DIAG_BY_FAMILY` (`linux/sock_diag.h`).
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
/// `UDIAG_SHOW_VFS` (`linux/unix_diag.h`).
const UDIAG_SHOW_VFS: u32 = 0x2;
/// The attribute carrying `struct unix_diag_vfs`.
const UNIX_DIAG_VFS: u16 = 1;
const NLMSG_HDRLEN: usize = 16;
/// `struct unix_diag_msg`.
const UNIX_DIAG_MSG_LEN: usize = 16;

/// The file a UNIX socket is bound to, as the kernel records it
/// (`UNIX_DIAG_VFS`): `(dev, ino)` as 32-bit numbers (`struct
/// unix_diag_vfs`), `None` when the socket is not bound to a path.
///
/// # Errors
/// Whatever netlink answers; `ENOENT` or `EPROTONOSUPPORT` when the kernel
/// has no UNIX `sock_diag` (`CONFIG_UNIX_DIAG`).
pub(crate) fn bound_file(sock: BorrowedFd<'_>) -> io::Result<Option<(u32, u32)>> {
    // The socket's own inode in sockfs names it to sock_diag.
    let sock_ino = u32::try_from(rustix::fs::fstat(sock)?.st_ino).map_err(|_| Errno::OVERFLOW)?;
    let nl = rnet::socket_with(
        AddressFamily::NETLINK,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        Some(netlink::SOCK_DIAG),
    )?;
    let seq: u32 = 1;
    let mut req = Vec::with_capacity(NLMSG_HDRLEN + 24);
    // struct nlmsghdr
    req.extend_from_slice(&((NLMSG_HDRLEN + 24) as u32).to_ne_bytes());
    req.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    req.extend_from_slice(&seq.to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes());
    // struct unix_diag_req
    req.push(AddressFamily::UNIX.as_raw() as u8); // sdiag_family
    req.push(0); // sdiag_protocol
    req.extend_from_slice(&0u16.to_ne_bytes()); // pad
    req.extend_from_slice(&u32::MAX.to_ne_bytes()); // udiag_states: all
    req.extend_from_slice(&sock_ino.to_ne_bytes()); // udiag_ino
    req.extend_from_slice(&UDIAG_SHOW_VFS.to_ne_bytes()); // udiag_show
    req.extend_from_slice(&u32::MAX.to_ne_bytes()); // udiag_cookie: none
    req.extend_from_slice(&u32::MAX.to_ne_bytes());
    rnet::sendto(&nl, &req, SendFlags::empty(), &SocketAddrNetlink::new(0, 0))?;

    let mut buf = vec![0u8; 8192];
    loop {
        let (got, _) = loop {
            match rnet::recv(&nl, &mut buf, RecvFlags::DONTWAIT) {
                Err(Errno::INTR) => continue,
                other => break other?,
            }
        };
        if got == 0 {
            return Err(Errno::PROTO);
        }
        let mut msgs = &buf[..got.min(buf.len())];
        while msgs.len() >= NLMSG_HDRLEN {
            let len = read_u32(msgs, 0) as usize;
            let kind = read_u16(msgs, 4);
            if len < NLMSG_HDRLEN || len > msgs.len() {
                return Err(Errno::PROTO);
            }
            let body = &msgs[NLMSG_HDRLEN..len];
            match kind {
                NLMSG_ERROR => {
                    let errno = if body.len() >= 4 {
                        -(read_u32(body, 0) as i32)
                    } else {
                        Errno::PROTO.raw_os_error()
                    };
                    return Err(Errno::from_raw_os_error(errno));
                }
                NLMSG_DONE => return Ok(None),
                SOCK_DIAG_BY_FAMILY
                    if body.len() >= UNIX_DIAG_MSG_LEN && read_u32(body, 4) == sock_ino =>
                {
                    return Ok(vfs_attribute(&body[UNIX_DIAG_MSG_LEN..]));
                }
                _ => {}
            }
            msgs = &msgs[align4(len).min(msgs.len())..];
        }
    }
}

/// The `UNIX_DIAG_VFS` attribute among `attrs`, as `(dev, ino)`.
fn vfs_attribute(mut attrs: &[u8]) -> Option<(u32, u32)> {
    while attrs.len() >= 4 {
        let len = usize::from(read_u16(attrs, 0));
        let kind = read_u16(attrs, 2) & 0x3fff;
        if len < 4 || len > attrs.len() {
            return None;
        }
        if kind == UNIX_DIAG_VFS && len >= 12 {
            // struct unix_diag_vfs { udiag_vfs_ino; udiag_vfs_dev; }
            return Some((read_u32(attrs, 8), read_u32(attrs, 4)));
        }
        attrs = &attrs[align4(len).min(attrs.len())..];
    }
    None
}

fn align4(len: usize) -> usize {
    (len + 3) & !3
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_ne_bytes(word)
}

fn read_u16(bytes: &[u8], at: usize) -> u16 {
    let mut word = [0; 2];
    word.copy_from_slice(&bytes[at..at + 2]);
    u16::from_ne_bytes(word)
}

/// Whether `(dev, ino)` from [`bound_file`] names the file `id` from
/// `stat`. The inode is compared in the 32 bits the kernel reports; the
/// device in the encoding `stat` uses (`new_encode_dev`, what kernels
/// report) or the kernel's internal one (`MAJOR << 20 | MINOR`).
pub(crate) fn same_file(diag: (u32, u32), id: FileId) -> bool {
    let (dev, ino) = diag;
    if u64::from(ino) != id.ino & u64::from(u32::MAX) {
        return false;
    }
    let (major, minor) = (rustix::fs::major(id.dev), rustix::fs::minor(id.dev));
    let internal = (u64::from(major) << 20) | u64::from(minor);
    u64::from(dev) == id.dev & u64::from(u32::MAX) || u64::from(dev) == internal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vfs_attribute_is_found_among_others_and_compared_in_both_encodings() {
        let mut attrs = Vec::new();
        // UNIX_DIAG_NAME, 5 bytes of payload, padded to 12.
        attrs.extend_from_slice(&9u16.to_ne_bytes());
        attrs.extend_from_slice(&0u16.to_ne_bytes());
        attrs.extend_from_slice(b"/x/y\0\0\0\0");
        // UNIX_DIAG_VFS { ino, dev }.
        attrs.extend_from_slice(&12u16.to_ne_bytes());
        attrs.extend_from_slice(&UNIX_DIAG_VFS.to_ne_bytes());
        attrs.extend_from_slice(&77u32.to_ne_bytes());
        attrs.extend_from_slice(&0xfe00u32.to_ne_bytes());
        assert_eq!(vfs_attribute(&attrs), Some((0xfe00, 77)));
        assert_eq!(vfs_attribute(&attrs[..12]), None);
        // A length past the end is refused, not read.
        assert_eq!(vfs_attribute(&[200, 0, 1, 0, 0, 0]), None);

        let dev = rustix::fs::makedev(254, 0);
        let id = FileId { dev, ino: 77 };
        assert!(same_file((dev as u32, 77), id));
        assert!(same_file((254 << 20, 77), id));
        assert!(!same_file((dev as u32, 78), id));
        assert!(!same_file((rustix::fs::makedev(254, 1) as u32, 77), id));
    }

    #[test]
    fn the_kernel_records_the_file_a_socket_is_bound_to() {
        let dir = std::env::temp_dir().join(format!("unipc-sys-diag-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s");
        let sock = rnet::socket_with(
            AddressFamily::UNIX,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        let unbound = bound_file(std::os::fd::AsFd::as_fd(&sock));
        bind(
            std::os::fd::AsFd::as_fd(&sock),
            &SocketAddrUnix::new(&*path).unwrap(),
        )
        .unwrap();
        let id = lstat(&path).unwrap().id;
        let bound = bound_file(std::os::fd::AsFd::as_fd(&sock));
        std::fs::remove_dir_all(&dir).unwrap();
        match (unbound, bound) {
            (Ok(None), Ok(Some(diag))) => assert!(same_file(diag, id), "{diag:?} vs {id:?}"),
            (Err(err), _) | (_, Err(err)) => {
                unipc_test_support::skip(format!("no UNIX sock_diag: {err}"))
            }
            other => panic!("{other:?}"),
        }
    }
}
