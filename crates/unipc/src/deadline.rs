//! Deadlines for timed waits: one monotonic point in time, or none.
//!
//! Timed loops in unipc (a poll retried after `EINTR`, a receive that
//! backs off, a wait for a peer) computes the time left from a
//! [`Deadline`], so an interrupted wait never restarts its full timeout and
//! a timeout too long to represent means "forever" rather than an overflow.
//! The one exception is the POSIX queue calls, which take an absolute
//! `CLOCK_REALTIME` time: they convert at the last moment.

use std::time::{Duration, Instant};

use crate::message::Wait;

/// When a wait must end: at a point on the monotonic clock, already
/// (a call told not to wait), or never.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Deadline {
    at: When,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum When {
    Never,
    /// Passed from the start: known without reading the clock, which a
    /// busy-polling caller would otherwise read on every attempt (tens of
    /// nanoseconds each on a virtual machine).
    Already,
    At(Instant),
}

impl Deadline {
    /// A deadline that never comes.
    pub(crate) const NEVER: Deadline = Deadline { at: When::Never };

    /// A deadline that has passed already.
    pub(crate) const PASSED: Deadline = Deadline { at: When::Already };

    /// `timeout` from now; a timeout past the clock's range never comes.
    pub(crate) fn after(timeout: Duration) -> Deadline {
        if timeout.is_zero() {
            return Deadline::PASSED;
        }
        Deadline {
            at: Instant::now()
                .checked_add(timeout)
                .map_or(When::Never, When::At),
        }
    }

    /// The deadline of an optional timeout (`None`: never).
    pub(crate) fn within(timeout: Option<Duration>) -> Deadline {
        timeout.map_or(Deadline::NEVER, Deadline::after)
    }

    /// The deadline of a [`Wait`]: never for [`Wait::Forever`], now (so
    /// already passed) for [`Wait::Never`], `d` from now for
    /// [`Wait::For`]`(d)`.
    pub(crate) fn of(wait: Wait) -> Deadline {
        match wait {
            Wait::Forever => Deadline::NEVER,
            Wait::Never => Deadline::PASSED,
            Wait::For(timeout) => Deadline::after(timeout),
        }
    }

    /// Whether the deadline never comes.
    pub(crate) fn is_never(&self) -> bool {
        self.at == When::Never
    }

    /// The time left (zero once passed), or `None` when it never comes.
    pub(crate) fn remaining(&self) -> Option<Duration> {
        match self.at {
            When::Never => None,
            When::Already => Some(Duration::ZERO),
            When::At(at) => Some(at.saturating_duration_since(Instant::now())),
        }
    }

    /// Whether the deadline has passed.
    pub(crate) fn passed(&self) -> bool {
        self.remaining() == Some(Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_means_never_and_zero_has_passed() {
        assert_eq!(Deadline::after(Duration::MAX), Deadline::NEVER);
        assert_eq!(Deadline::NEVER.remaining(), None);
        assert!(Deadline::after(Duration::ZERO).passed());
        assert!(!Deadline::after(Duration::from_secs(60)).passed());
        assert!(!Deadline::within(None).passed());
        assert!(Deadline::of(Wait::Forever).is_never());
        assert!(Deadline::of(Wait::For(Duration::MAX)).is_never());
        assert!(Deadline::of(Wait::Never).passed());
        assert!(!Deadline::of(Wait::For(Duration::from_secs(60))).passed());
    }
}
