//! `poll(2)` on one descriptor, with a [`Deadline`]: the one place a wait
//! for readiness is made, so `EINTR` always resumes with the time left.

use std::os::fd::BorrowedFd;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::{self, Errno};

use crate::deadline::Deadline;

/// Readiness to read.
pub(crate) const READABLE: PollFlags = PollFlags::IN;
/// Readiness to write.
pub(crate) const WRITABLE: PollFlags = PollFlags::OUT;

/// Waits until `fd` is ready for one of `events` (or has an error or a
/// hang-up) or `deadline` passes. Returns the ready events, empty when the
/// deadline passed first.
pub(crate) fn wait(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    deadline: Deadline,
) -> io::Result<PollFlags> {
    loop {
        // A wait too long for a timespec is as good as none.
        let spec = deadline
            .remaining()
            .and_then(|left| Timespec::try_from(left).ok());
        let mut fds = [PollFd::from_borrowed_fd(fd, events)];
        match rustix::event::poll(&mut fds, spec.as_ref()) {
            Ok(0) => return Ok(PollFlags::empty()),
            Ok(_) => return Ok(fds[0].revents()),
            Err(Errno::INTR) => continue,
            Err(err) => return Err(err),
        }
    }
}
