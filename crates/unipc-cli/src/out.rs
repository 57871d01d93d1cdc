//! Writing to stdout and stderr when either may be closed or full.
//!
//! Every write to stdout goes through [`write_stdout`], which turns a
//! failure into an [`OutputError`]: the one error that `main` may treat as
//! a normal end (stdout closed by its reader, as in `unipc compare | head`).
//! A broken pipe anywhere else (a peer that went away) is a real error.

use std::fmt;
use std::io::{self, Write};

/// A write to stdout failed.
#[derive(Debug)]
pub struct OutputError(pub io::Error);

impl OutputError {
    /// Whether the reader of stdout went away (EPIPE): the normal end of a
    /// pipeline such as `unipc recv ... | head -n 1`.
    pub fn is_closed(&self) -> bool {
        self.0.kind() == io::ErrorKind::BrokenPipe
    }
}

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "writing to stdout: {}", self.0)
    }
}

impl std::error::Error for OutputError {}

/// Writes all of `bytes` to `out` (stdout) and flushes it.
pub fn write_stdout(out: &mut impl Write, bytes: &[u8]) -> Result<(), OutputError> {
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(OutputError)
}

/// Whether stdout can no longer be written: its reader has gone (a pipe's
/// POLLERR, a socket's POLLHUP). A destructive receive checks this first,
/// so that it does not take a message it could only lose.
pub fn stdout_gone() -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let stdout = rustix::stdio::stdout();
    let mut fds = [PollFd::new(&stdout, PollFlags::OUT)];
    match rustix::event::poll(&mut fds, Some(&Timespec::default())) {
        Ok(_) => fds[0]
            .revents()
            .intersects(PollFlags::ERR | PollFlags::HUP | PollFlags::NVAL),
        Err(_) => false,
    }
}

/// Whether `err` is stdout closed by its reader (and nothing worse).
pub fn is_closed_stdout(err: &anyhow::Error) -> bool {
    err.downcast_ref::<OutputError>()
        .is_some_and(OutputError::is_closed)
}

/// The error as one line: the context chain down to the first unipc error,
/// whose own text already names the object, the call and the OS reason (its
/// sources would only repeat them). A control character that got into the
/// text anyway is escaped, so the line stays one line.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for cause in err.chain() {
        parts.push(cause.to_string());
        if cause.downcast_ref::<unipc::Error>().is_some() {
            break;
        }
    }
    let mut line = String::new();
    for c in parts.join(": ").chars() {
        if c.is_control() {
            line.extend(c.escape_default());
        } else {
            line.push(c);
        }
    }
    line
}

/// Prints `message` on stderr as one line; a closed or full stderr is
/// ignored (there is nowhere left to report it), never a panic.
pub fn report(message: &str) {
    let _ = writeln!(io::stderr().lock(), "unipc: {message}");
}
