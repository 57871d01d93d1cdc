//! Signals between processes: standard and realtime (`SIGRTMIN+n`), sent
//! with `kill(2)` or with a value through `sigqueue(3)`, and received
//! through a `signalfd(2)`, never in a handler.
//!
//! ```
//! use unipc::signal::{self, Signal, SignalReceiver, SendCode};
//! use unipc::sync::Wait;
//!
//! let sig: Signal = "RTMIN+3".parse()?;
//! let mut receiver = SignalReceiver::new(&[sig])?;
//! signal::send(std::process::id(), sig, Some(42))?;
//! let got = receiver.recv(Wait::Forever)?;
//! assert_eq!((got.signal, got.code, got.value), (sig, SendCode::Queue, Some(42)));
//! # Ok::<(), unipc::Error>(())
//! ```
//!
//! What the kernel does, and the tests show between processes: a standard
//! signal sent again while one of its number is pending is merged into it
//! (one delivery); realtime signals queue, each with its own value, up to
//! the receiving user's `RLIMIT_SIGPENDING`, and are delivered lowest
//! number first, in send order within one number.
//!
//! # Threads
//!
//! A signal sent to a process goes to any one of its threads that does not
//! block it. [`SignalReceiver::new`] blocks the signals in the calling
//! thread only (there is no call that blocks them in threads that already
//! run): create it, or block the signals, before the process starts any
//! other thread, which inherit the mask, or a thread that does not block
//! them may take a signal under its default action (which ends the process
//! for most). The `unipc signal wait` command builds its receiver before it
//! starts any thread.

use std::fmt;
use std::str::FromStr;

use nix::sys::signal::SigSet;
use nix::sys::signalfd::SignalFd;
use rustix::io::Errno;

use crate::deadline::Deadline;
use crate::facility::{
    Direction, Facility, LiveLimit, Naming, Persistence, Properties, Reach, Shape, Tags,
};
use crate::sync::Wait;
use crate::sys::{poll, signal as sys};
use crate::{Error, Result};

/// A signal number, checked: a standard signal Linux defines, or a
/// realtime one between `SIGRTMIN` and `SIGRTMAX` as the C library sees
/// them (glibc keeps the first kernel realtime numbers for itself).
///
/// Parses `TERM`, `SIGTERM`, `RTMIN`, `RTMIN+3`, `SIGRTMAX-1` or a number;
/// anything else is refused before any system call.
///
/// ```
/// use unipc::signal::Signal;
///
/// let term: Signal = "TERM".parse()?;
/// assert_eq!(term.number(), 15);
/// assert_eq!("SIGTERM".parse::<Signal>()?, term);
/// assert!("RTMIN+3".parse::<Signal>()?.is_realtime());
/// assert!("RTMIN+999".parse::<Signal>().is_err());
/// assert!("NOPE".parse::<Signal>().is_err());
/// # Ok::<(), unipc::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Signal(i32);

fn refuse(input: &str, reason: String) -> Error {
    Error::InvalidName {
        kind: "signal",
        input: input.to_owned(),
        reason,
    }
}

impl Signal {
    /// The signal numbered `number`, if it is one a process may send and
    /// wait for (not 0, not a number the C library reserves).
    pub fn from_number(number: i32) -> Result<Signal> {
        Self::check(number, &number.to_string())
    }

    fn check(number: i32, input: &str) -> Result<Signal> {
        let (min, max) = (sys::rtmin(), sys::rtmax());
        if (min..=max).contains(&number) {
            return Ok(Signal(number));
        }
        if nix::sys::signal::Signal::try_from(number).is_ok() {
            return Ok(Signal(number));
        }
        Err(refuse(
            input,
            format!("no such signal: standard signals are named, realtime ones are {min} (RTMIN) to {max} (RTMAX)"),
        ))
    }

    /// `SIGRTMIN + offset`; refused past `SIGRTMAX`.
    pub fn rt(offset: u32) -> Result<Signal> {
        let (min, max) = (sys::rtmin(), sys::rtmax());
        let number = i32::try_from(offset)
            .ok()
            .and_then(|o| min.checked_add(o))
            .filter(|&n| n <= max);
        number.map(Signal).ok_or_else(|| {
            refuse(
                &format!("RTMIN+{offset}"),
                format!(
                    "realtime offset out of range: RTMIN+0 to RTMIN+{}",
                    max - min
                ),
            )
        })
    }

    /// The number the kernel uses.
    pub fn number(self) -> i32 {
        self.0
    }

    /// Whether it is a realtime signal (queued, with a value).
    pub fn is_realtime(self) -> bool {
        self.0 >= sys::rtmin()
    }
}

impl FromStr for Signal {
    type Err = Error;

    fn from_str(input: &str) -> Result<Signal> {
        if let Ok(number) = input.parse::<i32>() {
            return Signal::check(number, input);
        }
        let upper = input.to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        let (min, max) = (sys::rtmin(), sys::rtmax());
        let range = || {
            format!(
                "realtime offset out of range: RTMIN+0 to RTMIN+{0}, RTMAX-{0} to RTMAX",
                max - min
            )
        };
        let offset = |rest: &str| -> Result<i32> {
            rest.parse::<u32>()
                .ok()
                .and_then(|o| i32::try_from(o).ok())
                .filter(|&o| o <= max - min)
                .ok_or_else(|| refuse(input, range()))
        };
        if let Some(rest) = name.strip_prefix("RTMIN") {
            return match rest.strip_prefix('+') {
                None if rest.is_empty() => Ok(Signal(min)),
                Some(n) => Ok(Signal(min + offset(n)?)),
                None => Err(refuse(input, range())),
            };
        }
        if let Some(rest) = name.strip_prefix("RTMAX") {
            return match rest.strip_prefix('-') {
                None if rest.is_empty() => Ok(Signal(max)),
                Some(n) => Ok(Signal(max - offset(n)?)),
                None => Err(refuse(input, range())),
            };
        }
        match format!("SIG{name}").parse::<nix::sys::signal::Signal>() {
            Ok(sig) => Ok(Signal(sig as i32)),
            Err(_) => Err(refuse(
                input,
                "no such signal (try TERM, SIGUSR1, RTMIN+3, RTMAX-1 or a number)".to_owned(),
            )),
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (min, max) = (sys::rtmin(), sys::rtmax());
        match nix::sys::signal::Signal::try_from(self.0) {
            Ok(sig) => f.write_str(sig.as_str()),
            Err(_) if self.0 == min => f.write_str("SIGRTMIN"),
            Err(_) if self.0 == max => f.write_str("SIGRTMAX"),
            Err(_) => write!(f, "SIGRTMIN+{}", self.0 - min),
        }
    }
}

fn pid_name(pid: u32) -> String {
    format!("pid {pid}")
}

/// Sends `sig` to process `pid`: with `sigqueue(3)` when a `value` is given
/// or the signal is realtime (a realtime signal without a value carries 0),
/// with `kill(2)` otherwise.
///
/// Errors: a process that is gone is [`Error::Os`] with `ESRCH`, one the
/// caller may not signal `EPERM`, both naming the pid; a full queue
/// (`EAGAIN`: the target's user has `RLIMIT_SIGPENDING` signals pending) is
/// [`Error::LimitExceeded`] with the target's limit. Only realtime signals
/// are refused so: a standard one sent at the limit is still marked pending
/// but without its siginfo, and is received as if from `kill` by pid 0
/// with no value (the tests show it). Pid 0 and pids past
/// `i32::MAX` (process groups, everyone) are refused before any call.
///
/// ```
/// use unipc::signal::{self, Signal};
///
/// // No process has the largest pid (pid_max is at most 2^22).
/// let err = signal::send(i32::MAX as u32, "USR1".parse()?, None).unwrap_err();
/// assert_eq!(err.raw_os_error(), Some(libc::ESRCH));
/// # Ok::<(), unipc::Error>(())
/// ```
pub fn send(pid: u32, sig: Signal, value: Option<i32>) -> Result<()> {
    let raw = match i32::try_from(pid) {
        Ok(raw) if raw > 0 => raw,
        _ => {
            return Err(Error::InvalidName {
                kind: "pid",
                input: pid.to_string(),
                reason: "a pid is 1 to 2147483647 (0 and negative numbers name process groups)"
                    .to_owned(),
            })
        }
    };
    let queued = value.is_some() || sig.is_realtime();
    let (op, result) = if queued {
        ("sigqueue", sys::sigqueue(raw, sig.0, value.unwrap_or(0)))
    } else {
        ("kill", sys::kill(raw, sig.0))
    };
    result.map_err(|errno| match errno {
        Errno::AGAIN if queued => {
            let limit = sys::sigpending_limit_of(raw).unwrap_or(0);
            Error::LimitExceeded {
                object: pid_name(pid).into(),
                what: "signals pending for the target's user",
                requested: limit + 1,
                limit,
                set_in: "RLIMIT_SIGPENDING of the target, counted over all processes of its real user",
            }
        }
        Errno::SRCH => Error::os(pid_name(pid), op, errno)
            .with_hint("it has exited, or never existed"),
        Errno::PERM => Error::os(pid_name(pid), op, errno).with_hint(
            "a process may signal only processes whose real or saved uid is its own real or effective uid, unless it has CAP_KILL",
        ),
        other => Error::os(pid_name(pid), op, other),
    })
}

/// How a received signal was sent (`si_code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendCode {
    /// `kill(2)` (`SI_USER`).
    User,
    /// `sigqueue(3)` (`SI_QUEUE`): it carries a value.
    Queue,
    /// The kernel (`SI_KERNEL`, or a positive code such as `CLD_EXITED`).
    Kernel,
    /// Any other code (`SI_TKILL` from `tgkill`, `SI_TIMER`, ...).
    Other(i32),
}

impl SendCode {
    fn of(code: i32) -> SendCode {
        match code {
            libc::SI_USER => SendCode::User,
            libc::SI_QUEUE => SendCode::Queue,
            c if c == libc::SI_KERNEL || c > 0 => SendCode::Kernel,
            c => SendCode::Other(c),
        }
    }
}

impl fmt::Display for SendCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendCode::User => f.write_str("user"),
            SendCode::Queue => f.write_str("queue"),
            SendCode::Kernel => f.write_str("kernel"),
            SendCode::Other(code) => write!(f, "other({code})"),
        }
    }
}

/// One signal a [`SignalReceiver`] took.
///
/// ```
/// use unipc::signal::{self, SignalReceiver, SendCode};
/// use unipc::sync::Wait;
///
/// let usr2 = "USR2".parse()?;
/// let mut receiver = SignalReceiver::new(&[usr2])?;
/// signal::send(std::process::id(), usr2, None)?;
/// let got = receiver.recv(Wait::Forever)?;
/// assert_eq!((got.pid, got.code, got.value), (std::process::id(), SendCode::User, None));
/// # Ok::<(), unipc::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Received {
    /// The signal.
    pub signal: Signal,
    /// The sender's pid (0 from the kernel), as the receiver's pid
    /// namespace sees it.
    pub pid: u32,
    /// The sender's real uid.
    pub uid: u32,
    /// How it was sent.
    pub code: SendCode,
    /// The value `sigqueue` carried; `None` for any other sender.
    pub value: Option<i32>,
}

/// Takes the signals it was made for from a `signalfd`, with the signals
/// blocked in the calling thread for as long as it lives (see the module's
/// note on threads). Dropping it puts the thread's old mask back: a signal
/// still pending is then delivered under its disposition; [`keep_blocked`]
/// leaves them blocked instead.
///
/// [`keep_blocked`]: SignalReceiver::keep_blocked
///
/// ```
/// use unipc::signal::SignalReceiver;
/// use unipc::sync::Wait;
///
/// let mut receiver = SignalReceiver::new(&["RTMAX".parse()?])?;
/// assert!(receiver.recv(Wait::Never).is_err()); // nothing pending
/// # Ok::<(), unipc::Error>(())
/// ```
#[derive(Debug)]
pub struct SignalReceiver {
    fd: SignalFd,
    old: Option<SigSet>,
    name: String,
}

impl SignalReceiver {
    /// Blocks `signals` in the calling thread and opens a signalfd for
    /// them. `SIGKILL` and `SIGSTOP` cannot be received and are refused.
    pub fn new(signals: &[Signal]) -> Result<SignalReceiver> {
        let names: Vec<String> = signals.iter().map(Signal::to_string).collect();
        let name = format!("signalfd for {}", names.join(","));
        if let Some(bad) = signals
            .iter()
            .find(|s| s.0 == libc::SIGKILL || s.0 == libc::SIGSTOP)
        {
            return Err(refuse(
                &bad.to_string(),
                "SIGKILL and SIGSTOP cannot be blocked or received".to_owned(),
            ));
        }
        if signals.is_empty() {
            return Err(refuse("", "no signal to receive".to_owned()));
        }
        let numbers: Vec<i32> = signals.iter().map(|s| s.0).collect();
        let set = sys::set_of(&numbers).map_err(|e| Error::os(name.as_str(), "sigaddset", e))?;
        let old = sys::block(&set).map_err(|e| Error::os(name.as_str(), "pthread_sigmask", e))?;
        let fd = match sys::signalfd(&set) {
            Ok(fd) => fd,
            Err(err) => {
                let _ = sys::restore(&old);
                return Err(Error::os(name.as_str(), "signalfd", err));
            }
        };
        Ok(SignalReceiver {
            fd,
            old: Some(old),
            name,
        })
    }

    /// Takes one pending signal, waiting as `wait` says: the lowest
    /// pending number first (standard before realtime), realtime ones of
    /// one number in the order they were sent.
    ///
    /// Errors: [`Error::WouldBlock`] for [`Wait::Never`] and
    /// [`Error::TimedOut`] for [`Wait::For`] when nothing came.
    pub fn recv(&mut self, wait: Wait) -> Result<Received> {
        let deadline = Deadline::of(wait);
        loop {
            if let Some(received) = self.try_recv()? {
                return Ok(received);
            }
            let ready = poll::wait(sys::fd_of(&self.fd), poll::READABLE, deadline)
                .map_err(|e| Error::os(self.name.as_str(), "poll", e))?;
            if ready.is_empty() {
                return Err(match wait {
                    Wait::For(timeout) => Error::TimedOut {
                        object: self.name.as_str().into(),
                        timeout,
                    },
                    _ => Error::WouldBlock {
                        object: self.name.as_str().into(),
                        op: "wait",
                        holder: None,
                    },
                });
            }
        }
    }

    /// One non-blocking read of the signalfd: a pending signal, or `None`.
    pub(crate) fn try_recv(&self) -> Result<Option<Received>> {
        loop {
            match sys::read(&self.fd) {
                Ok(Some(info)) => {
                    let code = SendCode::of(info.code);
                    return Ok(Some(Received {
                        signal: Signal(info.signo),
                        pid: info.pid,
                        uid: info.uid,
                        code,
                        value: (code == SendCode::Queue).then_some(info.int),
                    }));
                }
                Ok(None) => return Ok(None),
                Err(Errno::INTR) => continue,
                Err(err) => return Err(Error::os(self.name.as_str(), "read", err)),
            }
        }
    }

    /// The signalfd's name in errors (`signalfd for SIGTERM,...`).
    #[cfg(feature = "tokio")]
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Closes the signalfd and leaves the signals blocked, so that signals
    /// still pending are never delivered under their default action (for
    /// a process about to exit).
    pub fn keep_blocked(mut self) {
        self.old = None;
    }
}

/// The signalfd (non-blocking), for a caller's own poll loop or reactor.
impl std::os::fd::AsFd for SignalReceiver {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        sys::fd_of(&self.fd)
    }
}

impl Drop for SignalReceiver {
    fn drop(&mut self) {
        if let Some(old) = self.old.take() {
            let _ = sys::restore(&old);
        }
    }
}

/// Signals: the standard ones and the realtime ones with a value.
pub static FACILITY: Facility = Facility {
    name: "signal",
    scheme: None,
    summary: "signals: kill(2) or sigqueue(3) with an int, standard ones merge, realtime ones queue",
    addressing: "by pid: the receiver prints it (unipc signal wait), the sender names it",
    properties: Properties {
        shape: Shape::Synchronization,
        direction: Direction::OneWay,
        tags: Tags::None,
        destructive_read: true,
        peek: false,
        naming: Naming::None,
        reach: Reach::Host,
        persistence: Persistence::Process,
        permissions: "the sender's real or effective uid must match the target's real or saved uid, or CAP_KILL",
        reliable: false,
        after_crash: "nothing persists; pending signals die with the target",
    },
    limits: || {
        vec![
            LiveLimit {
                name: "pending",
                value: sys::sigpending_limit_of(std::process::id() as i32)
                    .map_or_else(|| "unlimited".to_owned(), |n| format!("{n} signals per user")),
                source: "RLIMIT_SIGPENDING",
            },
            LiveLimit {
                name: "realtime",
                value: format!("{} to {}", sys::rtmin(), sys::rtmax()),
                source: "SIGRTMIN..SIGRTMAX (the C library's)",
            },
        ]
    },
    max_message: || None,
    #[cfg(feature = "bench")]
    connector: None,
};
