//! Pseudoterminals: a byte stream to a child process that believes it runs
//! on a terminal.
//!
//! A pseudoterminal is a pair of character devices. The program under
//! control holds the subsidiary side (`/dev/pts/N`) as its terminal: line
//! editing, echo, job-control signals and the window size all apply to it.
//! The controlling process holds the [`Master`] side and reads what the
//! program writes and writes what it should read, as a terminal emulator or
//! `ssh` does.
//!
//! [`Pair::open`] makes a pair; [`Pair::spawn`] starts a
//! [`std::process::Command`] on it as the leader of a new session whose
//! controlling terminal is the subsidiary, and returns a [`Child`] that
//! reads and writes the master and waits for the process. [`RawMode`] puts
//! the caller's own terminal in raw mode, for relaying keystrokes to such a
//! child untouched.
//!
//! When the last descriptor of the subsidiary closes (the child and all its
//! descendants exited), Linux fails reads on the master with `EIO`; here
//! they return end of file (`Ok(0)`), as on every other stream.
//!
//! ```
//! use std::io::Read;
//! use std::process::Command;
//! use unipc::stream::pty;
//!
//! let command = Command::new("tty");
//! let mut child = pty::Pair::open()?.spawn(command)?;
//! let mut out = String::new();
//! child.read_to_string(&mut out)?; // ends when the shell exits
//! assert!(out.starts_with("/dev/pts/"));
//! assert!(child.wait()?.success());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # References
//! [pty(7)](https://man7.org/linux/man-pages/man7/pty.7.html),
//! [posix_openpt(3)](https://man7.org/linux/man-pages/man3/posix_openpt.3.html),
//! [credentials(7)](https://man7.org/linux/man-pages/man7/credentials.7.html)
//! (sessions and controlling terminals),
//! [termios(3)](https://man7.org/linux/man-pages/man3/termios.3.html),
//! [TIOCSCTTY(2const)](https://man7.org/linux/man-pages/man2/TIOCSCTTY.2const.html)

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{self, Command, ExitStatus};

use rustix::io::Errno;
use rustix::termios::Termios;

use crate::error::ObjectName;
use crate::sys;
use crate::{Error, Result};

/// The facility's name in errors, before a pair has a path.
const FACILITY: &str = "pty";

/// A terminal's size in character cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WindowSize {
    /// Number of rows (lines).
    pub rows: u16,
    /// Number of columns.
    pub cols: u16,
}

/// The master side of a pseudoterminal: what the controlling process reads
/// and writes.
///
/// Bytes written here are the terminal's input (what a user would type);
/// bytes read are its output. Reads return `Ok(0)` once every descriptor of
/// the subsidiary side has closed. [`Read`] and [`Write`] are implemented on
/// `&Master` too, so one thread can relay each direction.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use unipc::stream::pty;
///
/// let (mut master, subsidiary) = pty::Pair::open()?.into_parts();
/// master.set_window_size(30, 100)?;
/// assert_eq!(master.window_size()?, pty::WindowSize { rows: 30, cols: 100 });
///
/// // Input typed on the master reaches a reader of the subsidiary, a line
/// // at a time (the terminal starts in canonical mode).
/// master.write_all(b"hi\n")?;
/// let mut line = [0; 3];
/// std::fs::File::from(subsidiary).read_exact(&mut line)?;
/// assert_eq!(&line, b"hi\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # References
/// [pty(7)](https://man7.org/linux/man-pages/man7/pty.7.html),
/// [ioctl_tty(2)](https://man7.org/linux/man-pages/man2/ioctl_tty.2.html)
#[derive(Debug)]
pub struct Master {
    fd: OwnedFd,
    object: ObjectName,
}

impl Master {
    /// `ioctl(TIOCSWINSZ)` — sets the terminal's size; the kernel sends
    /// SIGWINCH to the terminal's foreground process group when it changes.
    ///
    /// # Errors
    /// An OS error.
    #[doc(alias = "TIOCSWINSZ")]
    pub fn set_window_size(&self, rows: u16, cols: u16) -> Result<()> {
        sys::pty::set_window_size(self.fd.as_fd(), rows, cols)
            .map_err(|e| Error::os(&*self.object, "ioctl TIOCSWINSZ", e))
    }

    /// `ioctl(TIOCGWINSZ)` — the terminal's size.
    ///
    /// # Errors
    /// An OS error.
    #[doc(alias = "TIOCGWINSZ")]
    pub fn window_size(&self) -> Result<WindowSize> {
        let (rows, cols) = sys::pty::window_size(self.fd.as_fd())
            .map_err(|e| Error::os(&*self.object, "ioctl TIOCGWINSZ", e))?;
        Ok(WindowSize { rows, cols })
    }

    /// `fcntl(F_SETFL, O_NONBLOCK)` — makes reads and writes that would
    /// wait fail with [`io::ErrorKind::WouldBlock`] instead.
    ///
    /// # Errors
    /// An OS error.
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<()> {
        sys::fd::set_nonblocking(self.fd.as_fd(), nonblocking)
            .map_err(|e| Error::os(&*self.object, "fcntl F_SETFL", e))
    }

    /// The terminal's end-of-file character (`VEOF`, usually Ctrl-D): what
    /// to write to the master so that a reader on the terminal in canonical
    /// mode sees end of file (at the start of a line; after a partial line
    /// the first one ends the line).
    ///
    /// # Errors
    /// An OS error from `tcgetattr`.
    pub fn eof_char(&self) -> Result<u8> {
        let attr = sys::pty::get_attr(self.fd.as_fd())
            .map_err(|e| Error::os(self.object.clone(), "tcgetattr", e))?;
        Ok(attr.special_codes[rustix::termios::SpecialCodeIndex::VEOF])
    }

    /// The name errors use: `pty:` and the subsidiary's path.
    pub fn object(&self) -> &str {
        &self.object
    }
}

impl Read for &Master {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match sys::pty::read(self.fd.as_fd(), buf) {
            // Linux's way of saying that the subsidiary side hung up.
            Err(Errno::IO) => Ok(0),
            other => Ok(other?),
        }
    }
}

impl Write for &Master {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(sys::pty::write(self.fd.as_fd(), buf)?)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Nothing is buffered in user space.
        Ok(())
    }
}

super::forward_io_to_ref!(Master);

impl AsFd for Master {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<Master> for OwnedFd {
    fn from(master: Master) -> OwnedFd {
        master.fd
    }
}

/// A new pseudoterminal, both sides open, no process on it yet.
///
/// Configure it (window size, [`termios`](rustix::termios) through
/// [`Pair::subsidiary`]) and then [`Pair::spawn`] a program on it, or take
/// the two sides apart with [`Pair::into_parts`].
///
/// # Examples
///
/// ```
/// use std::io::Read;
/// use std::process::Command;
/// use unipc::stream::pty;
///
/// let pair = pty::Pair::open()?;
/// pair.set_window_size(40, 132)?;
/// let mut stty = Command::new("stty");
/// stty.arg("size");
/// let mut child = pair.spawn(stty)?;
/// let mut out = String::new();
/// child.read_to_string(&mut out)?;
/// assert_eq!(out, "40 132\r\n"); // the terminal turns "\n" into "\r\n"
/// child.wait()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # References
/// [posix_openpt(3)](https://man7.org/linux/man-pages/man3/posix_openpt.3.html),
/// [grantpt(3)](https://man7.org/linux/man-pages/man3/grantpt.3.html),
/// [unlockpt(3)](https://man7.org/linux/man-pages/man3/unlockpt.3.html),
/// [ptsname(3)](https://man7.org/linux/man-pages/man3/ptsname.3.html)
#[derive(Debug)]
pub struct Pair {
    master: Master,
    subsidiary: OwnedFd,
    path: PathBuf,
}

impl Pair {
    /// `posix_openpt` + `grantpt` + `unlockpt` + `ptsname` + open of the
    /// subsidiary — a new pseudoterminal.
    ///
    /// Both descriptors are close-on-exec, and opening them does not make
    /// the pty this process's controlling terminal.
    ///
    /// # Errors
    /// An OS error; `EAGAIN` (from `ENOSPC`) when the system is out of
    /// ptys (`/proc/sys/kernel/pty/max`).
    #[doc(alias = "posix_openpt")]
    #[doc(alias = "openpty")]
    pub fn open() -> Result<Pair> {
        let master = sys::pty::open_master().map_err(|e| Error::os(FACILITY, "posix_openpt", e))?;
        sys::pty::unlock(master.as_fd()).map_err(|e| Error::os(FACILITY, "unlockpt", e))?;
        let name = sys::pty::name(master.as_fd()).map_err(|e| Error::os(FACILITY, "ptsname", e))?;
        let path = PathBuf::from(OsString::from_vec(name.as_bytes().to_vec()));
        let object = format!("{FACILITY}:{}", path.display());
        let subsidiary = sys::pty::open_subsidiary(master.as_fd(), &name)
            .map_err(|e| Error::os(&*object, "open subsidiary", e))?;
        Ok(Pair {
            master: Master {
                fd: master,
                object: object.into(),
            },
            subsidiary,
            path,
        })
    }

    /// The subsidiary's path, `/dev/pts/N`: what `tty` prints in the child.
    #[doc(alias = "ptsname")]
    pub fn subsidiary_path(&self) -> &Path {
        &self.path
    }

    /// The master side.
    pub fn master(&self) -> &Master {
        &self.master
    }

    /// The subsidiary side, for `tcgetattr`/`tcsetattr` before spawning.
    pub fn subsidiary(&self) -> BorrowedFd<'_> {
        self.subsidiary.as_fd()
    }

    /// `ioctl(TIOCSWINSZ)` — sets the size the child will see.
    ///
    /// # Errors
    /// An OS error.
    pub fn set_window_size(&self, rows: u16, cols: u16) -> Result<()> {
        self.master.set_window_size(rows, cols)
    }

    /// `ioctl(TIOCGWINSZ)` — the terminal's size (0×0 until set).
    ///
    /// # Errors
    /// An OS error.
    pub fn window_size(&self) -> Result<WindowSize> {
        self.master.window_size()
    }

    /// `fork` + `setsid` + `ioctl(TIOCSCTTY)` + `exec` — runs `command` on
    /// the subsidiary as its controlling terminal.
    ///
    /// The command is taken by value because it holds copies of the
    /// subsidiary until dropped. The child's stdin, stdout and stderr become
    /// the subsidiary (replacing any set on `command`), and it leads a new session whose controlling
    /// terminal is this pty, so `/dev/tty`, job control, `^C` and SIGWINCH
    /// work in it as on a real terminal. This process's copy of the
    /// subsidiary is closed, so reads on the returned [`Child`] end once the
    /// child and its descendants have closed the terminal.
    ///
    /// # Errors
    /// The spawn's error, naming the program (e.g. `ENOENT` when it does
    /// not exist); `EPERM` from the hook when the command was set to join
    /// an existing process group.
    #[doc(alias = "forkpty")]
    #[doc(alias = "login_tty")]
    pub fn spawn(self, command: Command) -> Result<Child> {
        let Pair {
            master,
            subsidiary,
            path,
        } = self;
        let program = command.get_program().to_owned();
        let child = sys::pty::spawn_on(command, subsidiary.as_fd()).map_err(|e| {
            Error::os(
                format!("{} running {:?}", master.object, program),
                "spawn",
                e,
            )
        })?;
        // Dropping `subsidiary` closes our last copy: the child's are the
        // only ones left.
        drop(subsidiary);
        Ok(Child {
            master,
            child,
            path,
        })
    }

    /// Splits the pair into its master and subsidiary sides.
    pub fn into_parts(self) -> (Master, OwnedFd) {
        (self.master, self.subsidiary)
    }
}

/// A process running on a pseudoterminal, and the master side to talk to
/// it.
///
/// Reading returns what the process writes to its terminal (with the
/// terminal's output processing: `\n` arrives as `\r\n` by default), and
/// then `Ok(0)` once it and its descendants have closed the terminal.
/// Writing is typing: in the default canonical mode the process reads a
/// line when `\n` (or `\r`) arrives, and the terminal echoes it back.
///
/// Dropping a `Child` closes the master, which hangs up the terminal: the
/// kernel sends SIGHUP to the session, which ends most programs. It does
/// not wait for the process; call [`Child::wait`] to reap it.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use std::process::Command;
/// use unipc::stream::pty;
///
/// let mut sh = Command::new("/bin/sh");
/// sh.args(["-c", r#"read l; echo "got:$l"; exit 3"#]);
/// let mut child = pty::Pair::open()?.spawn(sh)?;
/// child.write_all(b"abc\n")?;
/// let mut out = String::new();
/// child.read_to_string(&mut out)?;
/// assert_eq!(out, "abc\r\ngot:abc\r\n"); // the echo of our line, then the reply
/// assert_eq!(child.wait()?.code(), Some(3));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # References
/// [setsid(2)](https://man7.org/linux/man-pages/man2/setsid.2.html),
/// [TIOCSCTTY(2const)](https://man7.org/linux/man-pages/man2/TIOCSCTTY.2const.html),
/// [waitpid(2)](https://man7.org/linux/man-pages/man2/waitpid.2.html)
#[derive(Debug)]
pub struct Child {
    master: Master,
    child: process::Child,
    path: PathBuf,
}

impl Child {
    /// The child's process id (also its session and process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `waitpid` — waits for the child to exit and reaps it.
    ///
    /// Output it wrote before exiting stays readable on the master.
    ///
    /// # Errors
    /// An OS error.
    #[doc(alias = "waitpid")]
    pub fn wait(&mut self) -> Result<ExitStatus> {
        self.child
            .wait()
            .map_err(|e| Error::os(&*self.master.object, "waitpid", e))
    }

    /// `waitpid(WNOHANG)` — the exit status if the child has exited,
    /// without waiting.
    ///
    /// # Errors
    /// An OS error.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        self.child
            .try_wait()
            .map_err(|e| Error::os(&*self.master.object, "waitpid", e))
    }

    /// `kill(SIGKILL)` — ends the child (not its descendants); reap it with
    /// [`Child::wait`]. Succeeds if the child already exited.
    ///
    /// # Errors
    /// An OS error.
    pub fn kill(&mut self) -> Result<()> {
        self.child
            .kill()
            .map_err(|e| Error::os(&*self.master.object, "kill", e))
    }

    /// The master side.
    pub fn master(&self) -> &Master {
        &self.master
    }

    /// The subsidiary's path, `/dev/pts/N`: the child's terminal.
    pub fn subsidiary_path(&self) -> &Path {
        &self.path
    }

    /// `ioctl(TIOCSWINSZ)` — resizes the child's terminal; the kernel sends
    /// it SIGWINCH.
    ///
    /// # Errors
    /// An OS error.
    pub fn set_window_size(&self, rows: u16, cols: u16) -> Result<()> {
        self.master.set_window_size(rows, cols)
    }

    /// `ioctl(TIOCGWINSZ)` — the child's terminal size.
    ///
    /// # Errors
    /// An OS error.
    pub fn window_size(&self) -> Result<WindowSize> {
        self.master.window_size()
    }

    /// Splits into the master and the [`std::process::Child`].
    pub fn into_parts(self) -> (Master, process::Child) {
        (self.master, self.child)
    }
}

impl Read for Child {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.master).read(buf)
    }
}

impl Write for Child {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&self.master).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for Child {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.master.as_fd()
    }
}

/// A terminal switched to raw mode, restored to its old mode on drop.
///
/// Raw mode turns off line editing, echo, signal keys (`^C` is sent on as
/// byte 3) and output processing, so keystrokes can be relayed byte for
/// byte to a program on a pseudoterminal, as `unipc pty -- CMD` does.
///
/// # Examples
///
/// ```
/// use unipc::stream::pty;
///
/// // Does nothing when stdin is not a terminal (as under `cargo test`).
/// let guard = pty::RawMode::stdin()?;
/// // ... relay ...
/// drop(guard); // the old mode is back
/// # Ok::<(), unipc::Error>(())
/// ```
///
/// # References
/// [termios(3)](https://man7.org/linux/man-pages/man3/termios.3.html)
/// (`cfmakeraw`), [isatty(3)](https://man7.org/linux/man-pages/man3/isatty.3.html)
#[derive(Debug)]
#[must_use = "the terminal returns to its old mode when the guard is dropped"]
pub struct RawMode<'fd> {
    fd: BorrowedFd<'fd>,
    saved: Termios,
}

impl RawMode<'static> {
    /// `isatty` + `tcgetattr` + `cfmakeraw` + `tcsetattr` on stdin — raw
    /// mode for this process's terminal, or `None` when stdin is not a
    /// terminal.
    ///
    /// # Errors
    /// An OS error from `tcgetattr` or `tcsetattr`.
    pub fn stdin() -> Result<Option<RawMode<'static>>> {
        let stdin = rustix::stdio::stdin();
        if !sys::pty::is_tty(stdin) {
            return Ok(None);
        }
        RawMode::enable(stdin).map(Some)
    }
}

impl<'fd> RawMode<'fd> {
    /// `tcgetattr` + `cfmakeraw` + `tcsetattr(TCSANOW)` — puts the terminal
    /// on `fd` in raw mode until the guard drops.
    ///
    /// # Errors
    /// `ENOTTY` when `fd` is not a terminal; another OS error.
    #[doc(alias = "cfmakeraw")]
    pub fn enable(fd: BorrowedFd<'fd>) -> Result<RawMode<'fd>> {
        let saved = sys::pty::get_attr(fd).map_err(|e| Error::os("terminal", "tcgetattr", e))?;
        let mut raw = saved.clone();
        raw.make_raw();
        sys::pty::set_attr(fd, &raw).map_err(|e| Error::os("terminal", "tcsetattr", e))?;
        Ok(RawMode { fd, saved })
    }
}

impl RawMode<'static> {
    /// A copy of the saved mode that can put the terminal back from
    /// another thread: a signal-handling thread restores the terminal
    /// before the process exits, where the guard's drop would never run.
    pub fn restorer(&self) -> Restorer {
        Restorer {
            fd: self.fd,
            saved: self.saved.clone(),
        }
    }
}

/// Puts a terminal back in the mode a [`RawMode`] saved
/// ([`RawMode::restorer`]).
#[derive(Debug, Clone)]
pub struct Restorer {
    fd: BorrowedFd<'static>,
    saved: Termios,
}

impl Restorer {
    /// `tcsetattr(TCSANOW)` with the saved mode.
    ///
    /// # Errors
    /// An OS error from `tcsetattr` (the terminal has gone).
    pub fn restore(&self) -> Result<()> {
        sys::pty::set_attr(self.fd, &self.saved).map_err(|e| Error::os("terminal", "tcsetattr", e))
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        // Nothing to report to: the terminal may already be gone (hung up),
        // in which case there is no mode to restore.
        let _ = sys::pty::set_attr(self.fd, &self.saved);
    }
}
