//! eventfd: a kernel-held 64-bit counter behind a descriptor, which one
//! process adds to and another takes from, blocking while it is zero.
//!
//! A synchronization primitive of the [`sync`](crate::sync) taxonomy with
//! no name: processes share one by inheriting the descriptor or receiving
//! it over a UNIX socket (`SCM_RIGHTS`,
//! [`Stream::send_with_fds`](crate::stream::unix::Stream::send_with_fds)),
//! and adopt it with the checked `EventFd::try_from(OwnedFd)`.
//!
//! Two modes, chosen when it is made ([`EventFdOptions::semaphore`]):
//!
//! - **counter** (the default): [`EventFd::take`] returns the whole count
//!   and sets it to zero; many adds before a take are seen as one sum;
//! - **semaphore**: [`EventFd::take`] returns 1 and decrements; each add
//!   of `n` lets `n` takes through.
//!
//! The counter holds at most `0xffff_ffff_ffff_fffe`: an add that would
//! pass it waits for a take ([`Wait`] decides how long); an add of
//! `u64::MAX` can never fit and is refused before any system call.
//!
//! # After a crash
//!
//! The counter lives as long as any process holds a descriptor of it and
//! goes with its last holder; what a dead process added stays added, and
//! nothing it took is given back.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use unipc::sync::eventfd::EventFdOptions;
//! use unipc::sync::Wait;
//!
//! let counter = EventFdOptions::new().create()?;
//! counter.add(2, Wait::Never)?;
//! counter.add(3, Wait::Never)?;
//! assert_eq!(counter.take(Wait::Never)?, 5); // the sum, and back to zero
//! assert!(matches!(counter.take(Wait::Never), Err(unipc::Error::WouldBlock { .. })));
//!
//! let semaphore = EventFdOptions::new().initial(2).semaphore(true).create()?;
//! assert_eq!(semaphore.take(Wait::Never)?, 1);
//! assert_eq!(semaphore.take(Wait::Never)?, 1);
//! let err = semaphore.take(Wait::For(Duration::from_millis(10))).unwrap_err();
//! assert!(matches!(err, unipc::Error::TimedOut { .. }));
//! # Ok::<(), unipc::Error>(())
//! ```
//!
//! # References
//!
//! eventfd(2), proc_pid_fdinfo(5).

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::io::Errno;

use crate::adopt::{self, AdoptError};
use crate::deadline::Deadline;
use crate::error::ObjectName;
use crate::facility::{
    Direction, Facility, LiveLimit, Naming, Persistence, Properties, Reach, Shape, Tags,
};
use crate::sync::Wait;
use crate::sys::eventfd as sys;
use crate::sys::poll;
use crate::{Error, Result};

/// The name errors carry.
const OBJECT: &str = "eventfd";

/// The largest value the counter holds.
pub const MAX_COUNT: u64 = u64::MAX - 1;

/// How to make an [`EventFd`]: its initial count and its mode.
///
/// # Examples
///
/// ```
/// use unipc::sync::eventfd::EventFdOptions;
///
/// let options = EventFdOptions::new().initial(1).semaphore(true);
/// let a = options.create()?;
/// let b = options.create()?; // one builder, several counters
/// assert_eq!(a.semaphore(), Some(true));
/// # drop(b);
/// # Ok::<(), unipc::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct EventFdOptions {
    initial: u32,
    semaphore: bool,
}

impl EventFdOptions {
    /// A counter starting at zero, in counter mode.
    pub fn new() -> Self {
        EventFdOptions::default()
    }

    /// The count it starts with (`eventfd(2)` takes a 32-bit initial
    /// value; larger counts are reached by [`EventFd::add`]).
    pub fn initial(mut self, count: u32) -> Self {
        self.initial = count;
        self
    }

    /// Semaphore mode (`EFD_SEMAPHORE`): each take returns 1 and
    /// decrements, instead of returning the whole count and zeroing it.
    pub fn semaphore(mut self, semaphore: bool) -> Self {
        self.semaphore = semaphore;
        self
    }

    /// `eventfd(2)` — makes the counter (close-on-exec: pass it on
    /// explicitly).
    ///
    /// # Errors
    ///
    /// [`Error::Os`] when the kernel refuses (`EMFILE`, `ENFILE`, `ENOMEM`).
    #[doc(alias = "eventfd")]
    pub fn create(&self) -> Result<EventFd> {
        let fd = sys::create(self.initial, self.semaphore)
            .map_err(|err| Error::os(OBJECT, "eventfd", err))?;
        Ok(EventFd {
            fd,
            semaphore: Some(self.semaphore),
            object: OBJECT.into(),
        })
    }
}

/// An eventfd counter; closed on drop.
///
/// Made by [`EventFdOptions::create`] or adopted from a descriptor another
/// process passed (`TryFrom<OwnedFd>`, which checks that it is an eventfd).
///
/// # Examples
///
/// ```
/// use std::os::fd::OwnedFd;
/// use unipc::sync::eventfd::{EventFd, EventFdOptions};
/// use unipc::sync::Wait;
///
/// let made = EventFdOptions::new().semaphore(true).create()?;
/// made.add(1, Wait::Never)?;
/// // Given up as a descriptor (to pass to another process) and adopted back.
/// let adopted = EventFd::try_from(OwnedFd::from(made))?;
/// assert_eq!(adopted.take(Wait::Never)?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct EventFd {
    fd: OwnedFd,
    semaphore: Option<bool>,
    object: ObjectName,
}

impl fmt::Debug for EventFd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventFd")
            .field("fd", &self.fd)
            .field("semaphore", &self.semaphore)
            .finish()
    }
}

impl EventFd {
    /// Whether it is in semaphore mode: known for a counter made here, and
    /// for an adopted one when the kernel shows `eventfd-semaphore` in
    /// `/proc/self/fdinfo` (Linux 6.6 and later); `None` otherwise.
    pub fn semaphore(&self) -> Option<bool> {
        self.semaphore
    }

    /// The name errors carry (`eventfd`).
    pub fn object(&self) -> &ObjectName {
        &self.object
    }

    /// `write(2)` — adds `n` to the counter, waking the processes waiting
    /// in [`take`](Self::take).
    ///
    /// When the sum would pass [`MAX_COUNT`] the add waits for a take:
    /// [`Wait::Forever`] as long as it takes, [`Wait::Never`] not at all,
    /// [`Wait::For`] at most that long (a signal does not restart the
    /// timeout). Adding 0 changes nothing and wakes nobody.
    ///
    /// # Errors
    ///
    /// [`Error::LimitExceeded`] for `n == u64::MAX`, which no counter can
    /// take (nothing is written); [`Error::WouldBlock`] (`Wait::Never`) or
    /// [`Error::TimedOut`] (`Wait::For`) when the counter stayed too full;
    /// [`Error::Os`] for other failures.
    pub fn add(&self, n: u64, wait: Wait) -> Result<()> {
        if n > MAX_COUNT {
            return Err(Error::LimitExceeded {
                object: self.object.clone(),
                what: "eventfd add of",
                requested: n,
                limit: MAX_COUNT,
                set_in: "eventfd(2): the counter's largest value",
            });
        }
        let deadline = Deadline::of(wait);
        loop {
            match sys::write(self.fd.as_fd(), n) {
                Ok(()) => return Ok(()),
                Err(Errno::AGAIN) => self.wait_ready(poll::WRITABLE, "add", wait, deadline)?,
                Err(Errno::INTR) => continue,
                Err(err) => return Err(Error::os(&self.object, "write", err)),
            }
        }
    }

    /// `read(2)` — takes from the counter: in counter mode the whole count,
    /// which becomes zero; in semaphore mode 1, which is subtracted.
    ///
    /// While the count is zero, [`Wait`] decides: [`Wait::Forever`] waits
    /// for an add, [`Wait::Never`] does not wait, [`Wait::For`] waits at
    /// most that long (a signal does not restart the timeout). Several
    /// processes may wait at once: an add wakes them all, one (or, in
    /// semaphore mode, up to `n`) takes, and the others go back to waiting.
    ///
    /// # Errors
    ///
    /// [`Error::WouldBlock`] (`Wait::Never`) or [`Error::TimedOut`]
    /// (`Wait::For`) when the count stayed zero; [`Error::Os`] for other
    /// failures.
    pub fn take(&self, wait: Wait) -> Result<u64> {
        let deadline = Deadline::of(wait);
        loop {
            match sys::read(self.fd.as_fd()) {
                Ok(n) => return Ok(n),
                Err(Errno::AGAIN) => self.wait_ready(poll::READABLE, "take", wait, deadline)?,
                Err(Errno::INTR) => continue,
                Err(err) => return Err(Error::os(&self.object, "read", err)),
            }
        }
    }

    /// The count now, read from `/proc/self/fdinfo` without taking it: a
    /// snapshot for diagnostics, stale as soon as another process adds or
    /// takes.
    ///
    /// # Errors
    ///
    /// [`Error::Os`] when `/proc` cannot be read.
    pub fn count(&self) -> Result<u64> {
        match sys::examine(self.fd.as_fd()) {
            Ok(Some(info)) => Ok(info.count),
            Ok(None) => Err(Error::WrongType {
                object: self.object.clone(),
                expected: "an eventfd",
                found: "another kind of descriptor",
            }),
            Err(err) => Err(Error::os(&self.object, "read /proc/self/fdinfo", err)),
        }
    }

    /// Waits until the descriptor is ready for `events`, or returns the
    /// error `wait` calls for when it is not ready in time.
    fn wait_ready(
        &self,
        events: rustix::event::PollFlags,
        op: &'static str,
        wait: Wait,
        deadline: Deadline,
    ) -> Result<()> {
        let timed_out = || match wait {
            Wait::Never => Error::WouldBlock {
                object: self.object.clone(),
                op,
                holder: None,
            },
            Wait::For(timeout) => Error::TimedOut {
                object: self.object.clone(),
                timeout,
            },
            _ => Error::TimedOut {
                object: self.object.clone(),
                timeout: Duration::MAX,
            },
        };
        if deadline.passed() {
            return Err(timed_out());
        }
        let ready = poll::wait(self.fd.as_fd(), events, deadline)
            .map_err(|err| Error::os(&self.object, "poll", err))?;
        if ready.is_empty() {
            return Err(timed_out());
        }
        Ok(())
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<EventFd> for OwnedFd {
    fn from(event: EventFd) -> OwnedFd {
        event.fd
    }
}

impl TryFrom<OwnedFd> for EventFd {
    type Error = AdoptError;

    /// Adopts a descriptor after checking, through `/proc/self/fd`, that it
    /// is an eventfd (refused and handed back otherwise), and reads its mode
    /// from `/proc/self/fdinfo` when the kernel shows it.
    ///
    /// The descriptor is switched to non-blocking (`O_NONBLOCK`), which
    /// every process holding a copy of it shares: this type waits in
    /// `poll(2)` and never blocks in a read or write, and a process using
    /// the same counter through plain blocking `read(2)` calls would see
    /// `EAGAIN` from now on.
    fn try_from(fd: OwnedFd) -> std::result::Result<EventFd, AdoptError> {
        let info = match sys::examine(fd.as_fd()) {
            Ok(Some(info)) => info,
            Ok(None) => return Err(adopt::refuse(fd, OBJECT, "an eventfd")),
            Err(err) => {
                let error = Error::os(OBJECT, "examine the descriptor", err);
                return Err(AdoptError::new(fd, error));
            }
        };
        if let Err(err) = crate::sys::fd::set_nonblocking(fd.as_fd(), true) {
            let error = Error::os(OBJECT, "fcntl(F_SETFL, O_NONBLOCK)", err);
            return Err(AdoptError::new(fd, error));
        }
        Ok(EventFd {
            fd,
            semaphore: info.semaphore,
            object: OBJECT.into(),
        })
    }
}

/// The registry entry of eventfd.
pub static FACILITY: Facility = Facility {
    name: "eventfd",
    scheme: None,
    summary:
        "eventfd: a kernel counter behind a descriptor; add wakes a take, counter or semaphore mode",
    addressing: "no name: the descriptor is inherited or passed over a UNIX socket (SCM_RIGHTS)",
    properties: Properties {
        shape: Shape::Synchronization,
        direction: Direction::TwoWay,
        tags: Tags::None,
        destructive_read: true,
        peek: false,
        naming: Naming::None,
        reach: Reach::RelatedProcesses,
        persistence: Persistence::Process,
        permissions: "none: whoever holds a descriptor may add and take",
        reliable: true,
        after_crash:
            "closed with its last holder; what a dead process added stays, nothing is undone",
    },
    limits: || {
        vec![LiveLimit {
            name: "counter",
            value: format!("{MAX_COUNT} at most"),
            source: "eventfd(2)",
        }]
    },
    max_message: || None,
    #[cfg(feature = "bench")]
    connector: None,
};
