//! The socket file of a UNIX socket bound to a path, shared by the stream
//! ([`stream::unix`](crate::stream::unix)), seqpacket
//! ([`stream::seqpacket`](crate::stream::seqpacket)) and datagram
//! ([`message::dgram`](crate::message::dgram)) sockets: binding with an
//! exact mode, reclaiming a stale file, and removing on drop only the file
//! bound.
//!
//! # The mode, without a window
//! `bind(2)` creates the socket file itself, with the socket inode's mode
//! less the umask, and takes no mode argument. Setting an exact mode means
//! changing it after the bind, by which time the path may name something
//! else: whoever can write the directory can remove the new file and put a
//! symbolic link to any file in its place, and a `chmod(path)` follows it
//! (with `fs.protected_symlinks` off, as root too). So the mode is set in
//! four steps, none of which looks the path up in a way that follows a
//! link or acts on a file found by a second lookup:
//!
//! 1. before `bind`, `fchmod` on the socket sets the mode bind starts from:
//!    the file is never created looser than asked (the umask can only
//!    take bits away);
//! 2. after `bind`, the path is opened with `O_PATH | O_NOFOLLOW`: a handle
//!    on whatever the path names itself, a link as a link;
//! 3. that handle is `fstat`ed and must be a socket, owned by our effective
//!    uid, with one link; and where the kernel has UNIX `sock_diag`, the
//!    file our socket is bound to (`UNIX_DIAG_VFS`) must be that very
//!    device and inode. Anything else is [`Error::WrongType`] naming the
//!    path ("not the socket file this bind created"), and nothing is
//!    changed or removed;
//! 4. the mode is set on the inode the handle holds, by
//!    `chmod("/proc/self/fd/N")` (the kernel resolves that magic link to the
//!    inode held, not by a new lookup of the path).
//!
//! The identity recorded for the drop guard comes from the same `fstat`.
//! Without `sock_diag` the checks of step 3 stand alone: a file swapped in
//! by another user fails the owner check, and a hard link to a file of ours
//! (which `fs.protected_hardlinks` lets only an owner or a writer make)
//! fails the link count.
//!
//! # A stale file
//! A bind that finds its path taken opens the file there the same way
//! (`O_PATH | O_NOFOLLOW`), refuses anything but a socket (a link is not
//! followed), and probes the inode held, through `/proc/self/fd/N`, with a
//! datagram `connect`: only `ECONNREFUSED` means no socket of any type is
//! bound to it. Before it is unlinked, `lstat` checks that the path still
//! names the inode probed. One window remains between that check and the
//! `unlink(2)`, which takes a path: what another process can swap in there,
//! it could remove itself (renaming over a name needs the same rights on
//! the directory as unlinking it, sticky bit included), so an unlink there
//! takes nothing from anyone they could not take themselves.
//!
//! The drop guard, [`SocketFile`], unlinks the path only while `lstat` says
//! it is still the socket file bound (same device and inode), with the same
//! reasoning for the same window.
//!
//! # References
//! unix(7), bind(2), open(2) (`O_PATH`), proc(5), sock_diag(7),
//! `fs.protected_symlinks` and `fs.protected_hardlinks` in proc_sys_fs(5)

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use rustix::fs::FileType;
use rustix::io::Errno;

use crate::guard::{self, Guard, Made};
use crate::name::UnixAddr;
use crate::sys::fd::file_type_name;
use crate::sys::unix_file::{self as sys, FileId, Probe};
use crate::{Error, Result};

/// Which error texts a kind of socket uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// Stream and seqpacket: "another process listens there".
    Connection,
    /// Datagram: "a live socket is bound there".
    Datagram,
}

/// How to bind.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BindSpec<'a> {
    /// The name errors carry (`unix:/run/app.sock`).
    pub(crate) object: &'a str,
    /// The exact mode of the socket file, checked by the caller.
    pub(crate) mode: Option<u32>,
    /// Whether a stale socket file at the path is removed.
    pub(crate) reclaim_stale: bool,
    pub(crate) flavor: Flavor,
}

/// The socket file a socket bound: unlinked on drop (unless told to keep
/// it), and only while the path still names that file.
#[derive(Debug)]
pub(crate) struct SocketFile {
    // Someone may have removed it and put another file there; that one is
    // not ours to remove.
    guard: Guard<BoundFile<PathBuf>>,
}

impl SocketFile {
    fn new(path: &Path, id: FileId) -> SocketFile {
        SocketFile {
            guard: Guard::new(
                BoundFile {
                    path: path.to_owned(),
                    id,
                },
                true,
            ),
        }
    }

    /// Whether the drop removes the file.
    pub(crate) fn set_remove(&mut self, remove: bool) {
        self.guard.set_armed(remove);
    }

    /// Whether the drop removes the file.
    pub(crate) fn removes(&self) -> bool {
        self.guard.is_armed()
    }
}

/// The socket file at `path`, known by its device and inode.
#[derive(Debug)]
struct BoundFile<P: AsRef<Path>> {
    path: P,
    id: FileId,
}

impl<P: AsRef<Path>> Made for BoundFile<P> {
    fn is_still_ours(&self) -> io::Result<bool> {
        match sys::lstat(self.path.as_ref()) {
            Ok(now) => Ok(now.file_type == FileType::Socket && now.id == self.id),
            Err(Errno::NOENT) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    fn remove(&self) -> io::Result<()> {
        Ok(sys::unlink(self.path.as_ref())?)
    }
}

/// Unlinks `path` if it still names the socket `id`; whether it did.
fn unlink_if_same(path: &Path, id: FileId) -> io::Result<bool> {
    match guard::remove_if_ours(&BoundFile { path, id }) {
        Err(err) if err.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        other => other,
    }
}

fn in_use(spec: &BindSpec<'_>, is_path: bool) -> Error {
    let err = Error::os(spec.object, "bind", Errno::ADDRINUSE);
    match (spec.flavor, is_path) {
        // The default hint: "another process listens there".
        (Flavor::Connection, _) => err,
        (Flavor::Datagram, true) => {
            err.with_hint("a live socket is bound there; it was left alone")
        }
        (Flavor::Datagram, false) => err.with_hint("another socket is bound to that name"),
    }
}

/// `fchmod` + `bind` (+ reclaiming a stale file) + claiming the file:
/// binds `fd` (a fresh UNIX socket of any type) to `addr`. Returns the
/// guard of the socket file, `None` for an abstract address.
///
/// # Errors
/// [`Error::WrongType`] when the path holds something other than a socket
/// (left untouched), or when after the bind it names a file other than the
/// one bound (see the module doc); [`Error::Os`] with `EADDRINUSE` when a
/// socket is bound there (or a stale file is and `reclaim_stale` is off);
/// [`Error::Os`] for any other failure.
pub(crate) fn bind(
    fd: BorrowedFd<'_>,
    addr: &UnixAddr,
    spec: &BindSpec<'_>,
) -> Result<Option<SocketFile>> {
    let object = spec.object;
    let sockaddr = crate::sys::socket::sockaddr(addr).map_err(|e| Error::os(object, "bind", e))?;
    if let Some(mode) = spec.mode {
        // bind creates the file with this mode less the umask: never
        // looser than asked, even before the exact mode is set.
        sys::fchmod(fd, mode).map_err(|e| Error::os(object, "fchmod", e))?;
    }
    let mut attempts = 0;
    loop {
        let err = match sys::bind(fd, &sockaddr) {
            Ok(()) => break,
            Err(err) => err,
        };
        let path = match addr.as_path() {
            Some(path) if err == Errno::ADDRINUSE && attempts < 3 => path,
            _ if err == Errno::ADDRINUSE => return Err(in_use(spec, addr.as_path().is_some())),
            _ => return Err(Error::os(object, "bind", err)),
        };
        attempts += 1;
        clear_stale(path, spec)?;
    }
    match addr.as_path() {
        Some(path) => claim(fd, path, spec).map(Some),
        None => Ok(None),
    }
}

/// After a bind to `path`: proves the file there is the one `sock` bound,
/// sets its exact mode on the inode, and returns its guard.
fn claim(sock: BorrowedFd<'_>, path: &Path, spec: &BindSpec<'_>) -> Result<SocketFile> {
    let object = spec.object;
    let not_ours = |found: &'static str| {
        Error::WrongType {
        object: object.into(),
        expected: "the socket file this bind created (another process replaced or linked it during the bind; nothing of theirs was changed or removed)",
        found,
    }
    };
    let held = match sys::open_nofollow(path) {
        Ok(held) => held,
        Err(Errno::NOENT) => return Err(not_ours("gone")),
        Err(err) => return Err(Error::os(object, "open the socket file it bound", err)),
    };
    let found = sys::fstat(held.as_fd()).map_err(|e| Error::os(object, "fstat", e))?;
    // What the kernel says our socket is bound to; an error means it has
    // no UNIX sock_diag, and the checks below stand alone.
    let diag = sys::bound_file(sock).ok();
    let ours_by_kernel = found.file_type == FileType::Socket
        && matches!(diag, Some(Some(bound)) if sys::same_file(bound, found.id));
    // Ours: a failure from here on removes it (identity checked again).
    let mut file = ours_by_kernel.then(|| SocketFile::new(path, found.id));
    if found.file_type != FileType::Socket {
        return Err(not_ours(file_type_name(found.file_type)));
    }
    if found.uid != sys::euid() {
        return Err(not_ours("a socket file owned by another user"));
    }
    if found.nlink != 1 {
        return Err(not_ours("a socket file with other hard links"));
    }
    if diag.is_some() && !ours_by_kernel {
        return Err(not_ours("another socket's file"));
    }
    // (Built lazily: a guard made and dropped would remove the file.)
    let file = file
        .take()
        .unwrap_or_else(|| SocketFile::new(path, found.id));
    if let Some(mode) = spec.mode {
        // On failure `file` drops here and removes our socket file.
        sys::chmod_held(held.as_fd(), mode).map_err(|e| {
            let err = Error::os(object, "chmod", e);
            if e == Errno::NOENT {
                err.with_hint("the mode is set through /proc/self/fd, which needs /proc mounted")
            } else {
                err
            }
        })?;
    }
    Ok(file)
}

/// What is at a path that a bind or a removal found taken.
enum Found {
    /// Nothing any more.
    Gone,
    /// A socket file nobody is bound to, with its identity when probed.
    Stale(FileId),
}

/// Opens what is at `path` without following a link, refuses anything but
/// a socket, and probes it; a live socket is `live()`.
fn examine(path: &Path, object: &str, live: impl FnOnce() -> Error) -> Result<Found> {
    let held = match sys::open_nofollow(path) {
        Ok(held) => held,
        Err(Errno::NOENT) => return Ok(Found::Gone),
        Err(err) => return Err(Error::os(object, "open the file at the path", err)),
    };
    let found = sys::fstat(held.as_fd()).map_err(|e| Error::os(object, "fstat", e))?;
    if found.file_type != FileType::Socket {
        return Err(Error::WrongType {
            object: object.into(),
            expected: "a socket",
            found: file_type_name(found.file_type),
        });
    }
    match sys::probe(held.as_fd(), path) {
        Ok(Probe::Stale) => Ok(Found::Stale(found.id)),
        Ok(Probe::Live) => Err(live()),
        Err(err) => Err(Error::os(object, "probe the socket file there", err)),
    }
}

/// After `bind` found `path` taken: removes a stale socket file so the bind
/// can be retried, or says why it cannot.
fn clear_stale(path: &Path, spec: &BindSpec<'_>) -> Result<()> {
    let id = match examine(path, spec.object, || in_use(spec, true))? {
        Found::Gone => return Ok(()),
        Found::Stale(id) => id,
    };
    if !spec.reclaim_stale {
        return Err(Error::os(spec.object, "bind", Errno::ADDRINUSE).with_hint(
            "a stale socket file is there and no socket is bound to it; remove it, or let the bind reclaim it",
        ));
    }
    // Only the file probed: if the path names another now, the retried
    // bind finds out what it is.
    unlink_if_same(path, id)
        .map(drop)
        .map_err(|e| Error::os(spec.object, "unlink the stale socket file", e))
}

/// Removes the socket file at `addr` if no socket is bound to it; see
/// [`crate::stream::unix::remove_stale`].
pub(crate) fn remove_stale(addr: &UnixAddr, object: &str) -> Result<()> {
    let Some(path) = addr.as_path() else {
        return Err(Error::Unsupported {
            object: object.into(),
            what: "removing an abstract name".into(),
            reason: "an abstract socket has no file; its name goes when its last socket closes"
                .into(),
        });
    };
    let live = || {
        Error::os(object, "remove", Errno::ADDRINUSE)
            .with_hint("a process is listening (a socket is bound to it); it was left alone")
    };
    let id = match examine(path, object, live)? {
        Found::Gone => return Err(Error::os(object, "remove", Errno::NOENT)),
        Found::Stale(id) => id,
    };
    match unlink_if_same(path, id) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::os(
            object,
            "remove",
            std::io::Error::other("the path was replaced while it was probed; it was left alone"),
        )),
        Err(err) => Err(Error::os(object, "remove", err)),
    }
}
