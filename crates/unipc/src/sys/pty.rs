//! Pseudoterminals: thin wrappers over `rustix::pty` and `rustix::termios`,
//! and the one `pre_exec` hook that gives a child its controlling terminal.
//!
//! # Safety
//!
//! The only unsafe operation here is [`CommandExt::pre_exec`]: the hook
//! runs in the child between `fork` and `exec`, where a multi-threaded
//! parent's locks may be held by threads that no longer exist. The hook
//! therefore calls only `setsid` and `ioctl(TIOCSCTTY)`, which rustix issues
//! as direct system calls: async-signal-safe, no allocation, no lock, no
//! access to state shared with the parent. Its error path builds an
//! `io::Error` from a raw errno, which does not allocate either.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use rustix::fs::{Mode, OFlags};
use rustix::io::{self, Errno};
use rustix::pty::OpenptFlags;
use rustix::termios::{self, OptionalActions, Termios, Winsize};

/// `posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)` + `grantpt`: a new
/// master, still locked.
pub(crate) fn open_master() -> io::Result<OwnedFd> {
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    // A no-op on Linux, where devpts sets the owner; kept for the contract.
    rustix::pty::grantpt(&master)?;
    Ok(master)
}

/// `unlockpt(master)`: lets the subsidiary be opened.
pub(crate) fn unlock(master: BorrowedFd<'_>) -> io::Result<()> {
    rustix::pty::unlockpt(master)
}

/// `ptsname(master)`: the subsidiary's path.
pub(crate) fn name(master: BorrowedFd<'_>) -> io::Result<CString> {
    rustix::pty::ptsname(master, Vec::new())
}

/// Opens the subsidiary side of `master`, close-on-exec and without making
/// it our controlling terminal.
///
/// `ioctl(TIOCGPTPEER)` (Linux 4.13) opens it through the master, so no
/// other process can swap the path in between; older kernels fall back to
/// opening `name`.
pub(crate) fn open_subsidiary(master: BorrowedFd<'_>, name: &CString) -> io::Result<OwnedFd> {
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    match rustix::pty::ioctl_tiocgptpeer(master, flags) {
        Err(Errno::NOTTY | Errno::INVAL | Errno::NOSYS) => rustix::fs::open(
            name.as_c_str(),
            OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        ),
        other => other,
    }
}

/// `ioctl(TIOCSWINSZ)` on either side of a pty.
pub(crate) fn set_window_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    termios::tcsetwinsize(
        fd,
        Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )
}

/// `ioctl(TIOCGWINSZ)`: (rows, columns).
pub(crate) fn window_size(fd: BorrowedFd<'_>) -> io::Result<(u16, u16)> {
    let size = termios::tcgetwinsize(fd)?;
    Ok((size.ws_row, size.ws_col))
}

/// `read(fd, buf)`.
pub(crate) fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    rustix::io::read(fd, buf)
}

/// `write(fd, buf)`.
pub(crate) fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    rustix::io::write(fd, buf)
}

/// `isatty(fd)`.
pub(crate) fn is_tty(fd: BorrowedFd<'_>) -> bool {
    termios::isatty(fd)
}

/// `tcgetattr(fd)`.
pub(crate) fn get_attr(fd: BorrowedFd<'_>) -> io::Result<Termios> {
    termios::tcgetattr(fd)
}

/// `tcsetattr(fd, TCSANOW, attr)`.
pub(crate) fn set_attr(fd: BorrowedFd<'_>, attr: &Termios) -> io::Result<()> {
    termios::tcsetattr(fd, OptionalActions::Now, attr)
}

/// Spawns `command` with the subsidiary as its stdin, stdout and stderr and
/// as the controlling terminal of a new session it leads.
///
/// Takes the command by value so that its copies of the subsidiary are
/// closed when this returns: once the child exits, no descriptor of the
/// subsidiary is left open and a read on the master sees the hang-up.
pub(crate) fn spawn_on(mut command: Command, subsidiary: BorrowedFd<'_>) -> std::io::Result<Child> {
    // Each copy is made with F_DUPFD_CLOEXEC; std dup2s them onto 0, 1 and
    // 2 in the child, which clears close-on-exec on those numbers only.
    command
        .stdin(Stdio::from(subsidiary.try_clone_to_owned()?))
        .stdout(Stdio::from(subsidiary.try_clone_to_owned()?))
        .stderr(Stdio::from(subsidiary.try_clone_to_owned()?));
    // SAFETY: `pre_exec` requires the hook to be safe to run in a forked
    // child of a possibly multi-threaded process:
    // - it calls only `setsid`, `ioctl(TIOCSCTTY)` and `sigprocmask`,
    //   direct system calls, all async-signal-safe;
    // - it allocates nothing, takes no lock, and touches no memory shared
    //   with the parent (it captures nothing);
    // - its error, `io::Error::from_raw_os_error`, does not allocate.
    // std runs the hook after it has dup2'd the stdio descriptors, so
    // descriptor 0 is the subsidiary by then.
    unsafe {
        command.pre_exec(|| {
            // A new session has no controlling terminal; the first terminal
            // its leader claims with TIOCSCTTY becomes it.
            rustix::process::setsid()?;
            rustix::process::ioctl_tiocsctty(rustix::stdio::stdin())?;
            // Not the caller's mask: a command with SIGINT or SIGHUP
            // blocked would ignore the terminal's ^C and hang-up.
            super::proc::unblock_all_signals()
        })
    };
    command.spawn()
}
