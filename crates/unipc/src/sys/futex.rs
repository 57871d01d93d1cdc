//! `futex(2)`: `FUTEX_WAIT` and `FUTEX_WAKE` on a 32-bit word, through
//! rustix's `thread::futex` (no `unsafe` here: rustix takes the word as an
//! `&AtomicU32`, which is all the kernel reads).
//!
//! Never with `FUTEX_PRIVATE_FLAG`: the word lives in memory shared with
//! other processes, and a private futex is keyed by this process's address
//! space, so a waiter in another process would never see the wake. Without
//! the flag the kernel keys the futex by the page's backing object (the
//! shared memory segment, file or `MAP_SHARED` anonymous region) and the
//! offset in it, which every process mapping it agrees on.
//!
//! `FUTEX_WAIT`'s timeout is relative and measured on `CLOCK_MONOTONIC`,
//! so the caller passes the time left of its [`Deadline`] on each call.
//!
//! [`Deadline`]: crate::deadline::Deadline

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::io;
use rustix::thread::futex::{self, Flags, Timespec};

/// How a `FUTEX_WAIT` ended without an error the caller must report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waited {
    /// Woken by a `FUTEX_WAKE` (or spuriously: the kernel does not tell).
    Woken,
    /// The word did not hold the expected value (`EAGAIN`): no sleep.
    Changed,
    /// The timeout passed (`ETIMEDOUT`).
    TimedOut,
    /// A signal handler ran (`EINTR`): the caller resumes with the time left.
    Interrupted,
}

/// `FUTEX_WAIT` — sleeps while `word` holds `expected`, at most `timeout`
/// (`None`: no limit).
pub(crate) fn wait(
    word: &AtomicU32,
    expected: u32,
    timeout: Option<Duration>,
) -> io::Result<Waited> {
    // A timeout too long for a timespec is as good as none.
    let spec = timeout.and_then(|left| Timespec::try_from(left).ok());
    match futex::wait(word, Flags::empty(), expected, spec.as_ref()) {
        Ok(()) => Ok(Waited::Woken),
        Err(io::Errno::AGAIN) => Ok(Waited::Changed),
        Err(io::Errno::TIMEDOUT) => Ok(Waited::TimedOut),
        Err(io::Errno::INTR) => Ok(Waited::Interrupted),
        Err(err) => Err(err),
    }
}

/// `FUTEX_WAKE` — wakes at most `count` waiters on `word`; returns how many
/// were woken.
pub(crate) fn wake(word: &AtomicU32, count: u32) -> io::Result<usize> {
    futex::wake(word, Flags::empty(), count)
}
