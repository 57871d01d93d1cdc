//! The error type shared by every facility.
//!
//! Each variant names the object it concerns (an endpoint such as
//! `unix:/run/app.sock`, or a facility such as `pipe`) so that one line of
//! Display is enough for a person to act on.

use std::borrow::Borrow;
use std::fmt;
use std::io;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

/// The object an [`Error`] names (`posix-mq:/jobs`, `unix:/run/app.sock`).
///
/// Shared, not copied: a handle formats its name once and every error it
/// returns holds a reference to that one string, so a non-blocking call
/// that finds a queue empty or full ([`Error::Empty`], [`Error::Full`],
/// [`Error::TimedOut`]) allocates nothing. Reads as a `&str` (`Deref`,
/// `Display`, comparisons with `str` and `String`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectName(Arc<str>);

impl ObjectName {
    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for ObjectName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ObjectName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for ObjectName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<String> for ObjectName {
    fn from(name: String) -> Self {
        ObjectName(name.into())
    }
}

impl From<&str> for ObjectName {
    fn from(name: &str) -> Self {
        ObjectName(name.into())
    }
}

impl From<&String> for ObjectName {
    fn from(name: &String) -> Self {
        ObjectName(name.as_str().into())
    }
}

impl From<&ObjectName> for ObjectName {
    fn from(name: &ObjectName) -> Self {
        name.clone()
    }
}

impl From<ObjectName> for String {
    fn from(name: ObjectName) -> Self {
        name.0.as_ref().to_owned()
    }
}

impl PartialEq<str> for ObjectName {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for ObjectName {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for ObjectName {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<ObjectName> for str {
    fn eq(&self, other: &ObjectName) -> bool {
        *self == *other.0
    }
}

impl PartialEq<ObjectName> for &str {
    fn eq(&self, other: &ObjectName) -> bool {
        **self == *other.0
    }
}

impl PartialEq<ObjectName> for String {
    fn eq(&self, other: &ObjectName) -> bool {
        **self == *other.0
    }
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from unipc: bad input refused before any system call, a system
/// call that failed on a named object, or a facility limit that was broken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A name was refused before any system call was made.
    #[error("invalid {kind} {input:?}: {reason}")]
    InvalidName {
        /// Which namespace the name belongs to (e.g. "POSIX IPC name").
        kind: &'static str,
        /// The name as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// An endpoint string did not parse.
    #[error("invalid endpoint {input:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A system call failed.
    #[error("{object}: {op}: {}{}", errno_text(.source), hint_text(*.hint))]
    Os {
        /// The object the call was made on.
        object: ObjectName,
        /// The operation, in words or as the call's name ("connect", "open").
        op: &'static str,
        /// The error the kernel returned.
        #[source]
        source: io::Error,
        /// What the error means for this operation, when that is not obvious.
        hint: Option<&'static str>,
    },

    /// The object exists but is not of the type the operation needs.
    #[error("{object}: is {found}, not {expected}")]
    WrongType {
        /// The object.
        object: ObjectName,
        /// What the operation needs ("a FIFO").
        expected: &'static str,
        /// What was found there ("a regular file").
        found: &'static str,
    },

    /// A message is larger than the facility or the object accepts.
    #[error("{object}: message of {size} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// The object.
        object: ObjectName,
        /// The size of the message.
        size: usize,
        /// The largest size accepted.
        limit: usize,
    },

    /// A receive buffer is smaller than the message waiting; nothing was
    /// consumed unless the facility cannot avoid it (see the facility's docs).
    #[error("{object}: receive buffer of {buffer} bytes is smaller than the message{}", needed_text(*.needed))]
    BufferTooSmall {
        /// The object.
        object: ObjectName,
        /// The size of the buffer given.
        buffer: usize,
        /// The size of the message, when the facility tells it.
        needed: Option<usize>,
    },

    /// The peer sent more file descriptors than the receiver accepts; the
    /// kernel closed the ones that did not fit.
    #[error("{object}: the peer sent more file descriptors than the {capacity} this receive accepts; the kernel closed the rest")]
    TooManyFds {
        /// The object.
        object: ObjectName,
        /// How many descriptors the receive accepted.
        capacity: usize,
    },

    /// A non-blocking send found the queue full; nothing was sent.
    #[error("{object}: full; the message was not sent")]
    Full {
        /// The object.
        object: ObjectName,
    },

    /// A non-blocking receive found nothing waiting.
    #[error("{object}: empty; no message is waiting")]
    Empty {
        /// The object.
        object: ObjectName,
    },

    /// A synchronization call told not to wait ([`Wait::Never`]) found the
    /// primitive unavailable: a semaphore at zero, a lock held by another
    /// process (`holder`, where the kernel reports its pid), an event
    /// counter at zero. Nothing was changed.
    ///
    /// [`Wait::Never`]: crate::sync::Wait::Never
    #[error("{object}: {op} would have to wait{}", holder_text(*.holder))]
    WouldBlock {
        /// The object.
        object: ObjectName,
        /// What was tried ("wait", "lock", "semop").
        op: &'static str,
        /// The pid of the process holding it, when the kernel says.
        holder: Option<u32>,
    },

    /// A timed operation ran out of time.
    #[error("{object}: timed out after {timeout:?}")]
    TimedOut {
        /// The object.
        object: ObjectName,
        /// How long the operation waited.
        timeout: Duration,
    },

    /// The object was removed while the operation waited on it.
    #[error("{object}: removed while waiting on it")]
    Removed {
        /// The object.
        object: ObjectName,
    },

    /// The object cannot do what was asked (a tag it does not carry, an
    /// option its kernel lacks).
    #[error("{object}: {what} is not supported: {reason}")]
    Unsupported {
        /// The object.
        object: ObjectName,
        /// What was asked.
        what: String,
        /// Why it cannot be done, or what to do instead.
        reason: String,
    },

    /// A system limit forbids what was asked.
    #[error("{object}: {what} {requested} exceeds the system limit of {limit} (set in {set_in})")]
    LimitExceeded {
        /// The object.
        object: ObjectName,
        /// The quantity asked for ("max messages").
        what: &'static str,
        /// The value asked for.
        requested: u64,
        /// The limit in force.
        limit: u64,
        /// Where the limit is set (a /proc file or an rlimit).
        set_in: &'static str,
    },

    /// A create that was not exclusive found the object already there, made
    /// by another user or with another mode than asked, and refused to adopt
    /// it: what is sent through an object another user controls reaches that
    /// user. Nothing was sent to it, changed or removed.
    #[error("{object}: create: {}: remove it, or use a different name", foreign_text(*.owner_uid, .owner_name.as_deref(), *.creator_uid, *.mode, *.expected_mode, *.caller_uid))]
    ForeignObject {
        /// The object.
        object: ObjectName,
        /// Its owner's user id.
        owner_uid: u32,
        /// The owner's user name, when the local user database lists it.
        owner_name: Option<String>,
        /// Its creator's user id, where the kernel records one apart from
        /// the owner (System V objects).
        creator_uid: Option<u32>,
        /// Its permission bits.
        mode: u32,
        /// The permission bits the create asked for.
        expected_mode: u32,
        /// The effective user id of the caller.
        caller_uid: u32,
    },

    /// A read or write of shared memory runs past the end of the object;
    /// nothing was copied.
    #[error("{object}: {op} of {len} bytes at offset {offset} runs past the end of the object, which is {size} bytes")]
    OutOfBounds {
        /// The object.
        object: ObjectName,
        /// "read" or "write".
        op: &'static str,
        /// Where the range starts.
        offset: u64,
        /// How many bytes were asked.
        len: u64,
        /// The object's size.
        size: u64,
    },

    /// A typed view or an atomic word in shared memory was asked at an
    /// offset its type's alignment forbids; nothing was read or written.
    /// (Mappings start on a page boundary, so the offset's alignment is the
    /// address's.)
    #[error("{object}: {what} at offset {offset} is misaligned: it needs an offset that is a multiple of {align}")]
    Misaligned {
        /// The object.
        object: ObjectName,
        /// What was asked ("view", "atomic_u64").
        what: &'static str,
        /// The offset asked.
        offset: u64,
        /// The alignment the type needs, in bytes.
        align: u64,
    },

    /// An element index past the end of a typed slice view of shared
    /// memory; nothing was read or written.
    #[error("{object}: element {index} is out of range of a view of {count} elements")]
    IndexOutOfRange {
        /// The object.
        object: ObjectName,
        /// The index asked.
        index: u64,
        /// How many elements the view has.
        count: u64,
    },

    /// A descriptor adopted as sealed memory lacks seals the receiver
    /// needs before it may map it; it is handed back (see
    /// [`shm::memfd::SealedMemfd`](crate::shm::memfd::SealedMemfd)).
    #[error("{object}: lacks {missing} (it has {present}): the sender must seal it before handing it over, or it could shrink or change under a mapping")]
    MissingSeals {
        /// The object.
        object: ObjectName,
        /// The required seals it lacks.
        missing: crate::shm::memfd::SealFlags,
        /// The seals it carries.
        present: crate::shm::memfd::SealFlags,
    },

    /// Creating a POSIX message queue would take this user's queues past
    /// `RLIMIT_MSGQUEUE`, the bytes all of one user's queues may take.
    #[error("{object}: create: the new queue needs {needed} bytes of RLIMIT_MSGQUEUE ({max_messages} messages of {message_size} bytes, plus the kernel's bookkeeping), and this user's queues may take {limit} bytes in all{}: remove queues this user no longer needs, ask for fewer or smaller messages, or raise the limit (ulimit -q, setrlimit)", in_use_text(*.in_use))]
    QueueBytesLimit {
        /// The object.
        object: ObjectName,
        /// The bytes the new queue would be charged.
        needed: u64,
        /// The messages asked for.
        max_messages: u64,
        /// The message size asked for.
        message_size: u64,
        /// The bytes this user's other queues are charged already, when the
        /// system tells (Linux does not).
        in_use: Option<u64>,
        /// The soft limit in force.
        limit: u64,
    },

    /// A robust mutex whose holder died was then released by the next
    /// holder without being marked consistent: the data it protects was
    /// never repaired, and no lock can succeed on it again. Nothing was
    /// locked. Initialize a new mutex in fresh memory.
    #[error("{object}: not recoverable: a holder died with it locked and the next holder released it without marking it consistent; initialize a new mutex")]
    NotRecoverable {
        /// The object.
        object: ObjectName,
    },

    /// A blocking classic POSIX record lock was refused by the kernel
    /// (`EDEADLK`): the process holding the range waits, directly or
    /// through others, for a lock this process holds, so waiting would
    /// never end. Nothing was locked.
    #[error("{object}: lock of {}: refused as a deadlock (EDEADLK): {} waits, directly or through others, for a lock this process holds; release a lock and retry, or take locks in one order everywhere", range_text(*.start, *.len), deadlock_holder_text(*.holder))]
    Deadlock {
        /// The file.
        object: ObjectName,
        /// The first byte asked.
        start: u64,
        /// How many bytes were asked; `None`: to the end of the file.
        len: Option<u64>,
        /// The pid holding a conflicting lock on that range, when the
        /// kernel still reports one.
        holder: Option<u32>,
    },

    /// The object exists but its contents are not what the operation
    /// needs: shared memory that holds no unipc ring header, another
    /// version or layout, a header that disagrees with the options asked
    /// for, or a cursor or length out of range. Nothing was changed.
    #[error("{object}: not usable as {expected}: {reason}")]
    BadHeader {
        /// The object.
        object: ObjectName,
        /// What it was opened as ("a ring").
        expected: &'static str,
        /// What is wrong, with the values found.
        reason: String,
    },

    /// The process on the other side of a channel died (killed, or exited
    /// without closing): what it had committed was delivered, nothing
    /// partial; this side is told once and may go on with a new peer.
    #[error("{object}: the {role} (pid {pid}) died; nothing committed was lost and nothing partial was delivered; a new {role} may take its place")]
    PeerDied {
        /// The object.
        object: ObjectName,
        /// Which side died ("writer", "reader").
        role: &'static str,
        /// Its process id.
        pid: u32,
    },

    /// The host at the other end of a network connection stopped
    /// answering, and the kernel gave up on the connection (`ETIMEDOUT`):
    /// data sent went unacknowledged for the connection's user timeout
    /// (`TCP_USER_TIMEOUT`), or its keepalive probes went unanswered. The
    /// peer host vanished, crashed or was cut off; a live peer process
    /// that merely stopped reading does not cause it (its kernel still
    /// acknowledges). The connection is closed: what was written and not
    /// acknowledged may never have arrived, later reads see end of file
    /// and later writes fail with `EPIPE`. [`Error::raw_os_error`] is
    /// `ETIMEDOUT`.
    #[error("{object}: the peer{} stopped answering: {}; the kernel closed the connection, and data not yet acknowledged may be lost", peer_text(.peer.as_ref()), unresponsive_text(*.timeout, .limit))]
    PeerUnresponsive {
        /// The object (`tcp:HOST:PORT`).
        object: ObjectName,
        /// The peer's address, when it was known before the connection died.
        peer: Option<std::net::SocketAddr>,
        /// How long the kernel waited before giving up, as configured:
        /// the user timeout, or keepalive's idle time plus its probes; `None`
        /// when neither was set (the kernel's own retransmission limit).
        timeout: Option<Duration>,
        /// Which limit that is ("TCP_USER_TIMEOUT", "keepalive",
        /// "net.ipv4.tcp_retries2").
        limit: &'static str,
    },

    /// A role that only one process may hold at a time (a ring's writer or
    /// reader) is held by a live process. Nothing was changed.
    #[error("{object}: already has a {role}, pid {pid}, which is alive: {reason}")]
    InUse {
        /// The object.
        object: ObjectName,
        /// The role ("writer", "reader").
        role: &'static str,
        /// The live holder.
        pid: u32,
        /// Why the role is single, or what to do instead.
        reason: &'static str,
    },

    /// A typed message (see `message::typed`, feature `typed`) whose
    /// header this receiver refuses: another format version or encoding,
    /// another type tag than the one it expects, or descriptors it cannot
    /// take. Nothing was decoded; the message was consumed.
    #[error("{object}: typed message refused: its {what} is {found}, and this receiver expects {expected}")]
    TypedMismatch {
        /// The object the message came through.
        object: ObjectName,
        /// What disagrees ("format version", "encoding", "type tag",
        /// "descriptor count").
        what: &'static str,
        /// What this receiver expects.
        expected: String,
        /// What the message carries.
        found: String,
    },

    /// A message that is not a typed message (no typed header), or whose
    /// body does not decode as the type asked for. The raw bytes are kept,
    /// so the caller can log or forward them; nothing was misread.
    #[error("{object}: message of {} bytes does not decode as {expected}: {reason}", .bytes.len())]
    Undecodable {
        /// The object the message came through.
        object: ObjectName,
        /// The Rust type asked for (`std::any::type_name`), or "a typed
        /// message" when the header is what is missing.
        expected: &'static str,
        /// What is wrong, as the decoder says it.
        reason: String,
        /// The whole message as it arrived, header included.
        bytes: Vec<u8>,
    },

    /// A server (NATS) refused, could not be reached, or did not answer in
    /// time. The object names the server and the subject
    /// (`nats://HOST:PORT/SUBJECT`).
    #[error("{object}: {op}: {kind}: {detail}")]
    Remote {
        /// The endpoint.
        object: ObjectName,
        /// What was tried ("connect", "publish", "receive", "create").
        op: &'static str,
        /// What went wrong, for a program to act on.
        kind: RemoteKind,
        /// The server's words, or what was waited for.
        detail: String,
    },

    /// A semaphore index past the end of a System V semaphore set; no
    /// operation was applied.
    #[error("{object}: semaphore {index} does not exist: the set has {count} (indexes 0 to {})", .count.saturating_sub(1))]
    NoSuchSemaphore {
        /// The object.
        object: ObjectName,
        /// The index asked.
        index: u64,
        /// How many semaphores the set has.
        count: u64,
    },
}

/// What kind of failure an [`Error::Remote`] is: what a program retries
/// (unreachable, not acknowledged) and what it reports (stream missing,
/// rejected).
///
/// ```
/// use unipc::RemoteKind;
/// assert_eq!(RemoteKind::StreamMissing.to_string(), "stream missing");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RemoteKind {
    /// No connection to the server: refused, no answer, or lost.
    Unreachable,
    /// The stream the endpoint names does not exist on the server.
    StreamMissing,
    /// The server did not acknowledge in time (a publish may or may not
    /// have been stored; an acknowledgement of a received message may not
    /// have reached it, and the message may come again).
    NotAcknowledged,
    /// The server answered with a refusal.
    Rejected,
}

impl fmt::Display for RemoteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RemoteKind::Unreachable => "server unreachable",
            RemoteKind::StreamMissing => "stream missing",
            RemoteKind::NotAcknowledged => "not acknowledged",
            RemoteKind::Rejected => "refused by the server",
        })
    }
}

impl Error {
    /// An OS error on `object` during `op`, with the standard hint for that
    /// operation and error when there is one.
    pub(crate) fn os(
        object: impl Into<ObjectName>,
        op: &'static str,
        source: impl Into<io::Error>,
    ) -> Self {
        let source = source.into();
        let hint = default_hint(op, source.raw_os_error());
        Error::Os {
            object: object.into(),
            op,
            source,
            hint,
        }
    }

    /// Replaces the hint of an [`Error::Os`]; other variants are unchanged.
    pub(crate) fn with_hint(mut self, new_hint: &'static str) -> Self {
        if let Error::Os { hint, .. } = &mut self {
            *hint = Some(new_hint);
        }
        self
    }

    /// The same error naming `name` as its object: for a facility built on
    /// another (a ring on a shared-memory object), so errors name what the
    /// user asked for.
    pub(crate) fn renamed(mut self, name: &ObjectName) -> Self {
        match &mut self {
            Error::InvalidName { .. } | Error::InvalidEndpoint { .. } => {}
            Error::Os { object, .. }
            | Error::WrongType { object, .. }
            | Error::MessageTooLarge { object, .. }
            | Error::BufferTooSmall { object, .. }
            | Error::TooManyFds { object, .. }
            | Error::Full { object }
            | Error::Empty { object }
            | Error::WouldBlock { object, .. }
            | Error::TimedOut { object, .. }
            | Error::Removed { object }
            | Error::Unsupported { object, .. }
            | Error::LimitExceeded { object, .. }
            | Error::ForeignObject { object, .. }
            | Error::OutOfBounds { object, .. }
            | Error::Misaligned { object, .. }
            | Error::IndexOutOfRange { object, .. }
            | Error::MissingSeals { object, .. }
            | Error::QueueBytesLimit { object, .. }
            | Error::NotRecoverable { object }
            | Error::Deadlock { object, .. }
            | Error::NoSuchSemaphore { object, .. }
            | Error::BadHeader { object, .. }
            | Error::PeerDied { object, .. }
            | Error::PeerUnresponsive { object, .. }
            | Error::InUse { object, .. }
            | Error::TypedMismatch { object, .. }
            | Error::Undecodable { object, .. }
            | Error::Remote { object, .. } => *object = name.clone(),
        }
        self
    }

    /// The kernel's error number, when the error came from a system call.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Os { source, .. } => source.raw_os_error(),
            Error::PeerUnresponsive { .. } => Some(libc::ETIMEDOUT),
            _ => None,
        }
    }

    /// The closest [`io::ErrorKind`], for code that branches on kinds.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Error::InvalidName { .. } | Error::InvalidEndpoint { .. } => {
                io::ErrorKind::InvalidInput
            }
            Error::Os { source, .. } => source.kind(),
            Error::WrongType { .. } => io::ErrorKind::InvalidInput,
            Error::MessageTooLarge { .. } | Error::BufferTooSmall { .. } => {
                io::ErrorKind::InvalidInput
            }
            Error::TooManyFds { .. } => io::ErrorKind::InvalidData,
            Error::Full { .. } | Error::Empty { .. } | Error::WouldBlock { .. } => {
                io::ErrorKind::WouldBlock
            }
            Error::TimedOut { .. } => io::ErrorKind::TimedOut,
            Error::Removed { .. } => io::ErrorKind::NotFound,
            Error::LimitExceeded { .. } => io::ErrorKind::InvalidInput,
            Error::Unsupported { .. } => io::ErrorKind::Unsupported,
            Error::ForeignObject { .. } => io::ErrorKind::AlreadyExists,
            Error::QueueBytesLimit { .. } => io::ErrorKind::Other,
            Error::OutOfBounds { .. } => io::ErrorKind::InvalidInput,
            Error::Misaligned { .. } => io::ErrorKind::InvalidInput,
            Error::IndexOutOfRange { .. } => io::ErrorKind::InvalidInput,
            Error::MissingSeals { .. } => io::ErrorKind::InvalidData,
            Error::NotRecoverable { .. } => io::ErrorKind::Other,
            Error::Deadlock { .. } => io::ErrorKind::Other,
            Error::NoSuchSemaphore { .. } => io::ErrorKind::InvalidInput,
            Error::BadHeader { .. } => io::ErrorKind::InvalidData,
            Error::PeerDied { .. } => io::ErrorKind::ConnectionAborted,
            Error::PeerUnresponsive { .. } => io::ErrorKind::TimedOut,
            // `ResourceBusy` is newer than the minimum Rust version.
            Error::InUse { .. } => io::ErrorKind::AddrInUse,
            Error::TypedMismatch { .. } | Error::Undecodable { .. } => io::ErrorKind::InvalidData,
            Error::Remote { kind, .. } => match kind {
                RemoteKind::Unreachable => io::ErrorKind::ConnectionRefused,
                RemoteKind::StreamMissing => io::ErrorKind::NotFound,
                RemoteKind::NotAcknowledged => io::ErrorKind::TimedOut,
                RemoteKind::Rejected => io::ErrorKind::Other,
            },
        }
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        match err {
            // Keep the errno so callers of Read/Write can still match on it.
            Error::Os { source, .. } if source.raw_os_error().is_some() => source,
            other => io::Error::new(other.kind(), other),
        }
    }
}

fn peer_text(peer: Option<&std::net::SocketAddr>) -> String {
    peer.map(|p| format!(" {p}")).unwrap_or_default()
}

fn unresponsive_text(timeout: Option<Duration>, limit: &str) -> String {
    match timeout {
        Some(t) => format!("nothing acknowledged within {t:?} ({limit})"),
        None => format!("nothing acknowledged within the system's limit ({limit})"),
    }
}

/// "Connection refused (os error 111)" becomes "connection refused".
fn holder_text(holder: Option<u32>) -> String {
    holder.map_or_else(String::new, |pid| format!(" (held by pid {pid})"))
}

fn range_text(start: u64, len: Option<u64>) -> String {
    match len {
        Some(len) => format!("bytes {start}..{}", start.saturating_add(len)),
        None => format!("bytes {start}..EOF"),
    }
}

fn deadlock_holder_text(holder: Option<u32>) -> String {
    holder.map_or_else(
        || "the process holding it".to_owned(),
        |pid| format!("pid {pid}, which holds it,"),
    )
}

fn errno_text(err: &io::Error) -> String {
    let text = match err.raw_os_error() {
        Some(code) => {
            let full = io::Error::from_raw_os_error(code).to_string();
            match full.rfind(" (os error ") {
                Some(cut) => full[..cut].to_owned(),
                None => full,
            }
        }
        None => err.to_string(),
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

fn hint_text(hint: Option<&'static str>) -> String {
    hint.map(|h| format!(": {h}")).unwrap_or_default()
}

fn needed_text(needed: Option<usize>) -> String {
    needed.map(|n| format!(" of {n} bytes")).unwrap_or_default()
}

fn foreign_text(
    owner_uid: u32,
    owner_name: Option<&str>,
    creator_uid: Option<u32>,
    mode: u32,
    expected_mode: u32,
    caller_uid: u32,
) -> String {
    let ours = owner_uid == caller_uid && creator_uid.map_or(true, |c| c == caller_uid);
    if ours {
        return format!(
            "already exists with mode {mode:#o}, not the {expected_mode:#o} asked, so it was not adopted"
        );
    }
    let owner = match owner_name {
        Some(name) => format!("uid {owner_uid} ({name})"),
        None => format!("uid {owner_uid}"),
    };
    let creator = match creator_uid {
        Some(c) if c != owner_uid => format!(", created by uid {c}"),
        _ => String::new(),
    };
    format!(
        "already exists, owned by {owner}{creator} with mode {mode:#o}, not by this user (uid {caller_uid}) with the {expected_mode:#o} asked, so it was not adopted"
    )
}

fn in_use_text(in_use: Option<u64>) -> String {
    match in_use {
        Some(bytes) => format!(", of which its other queues take {bytes}"),
        None => {
            "; how much of that its other queues take cannot be read (Linux does not report it)"
                .to_owned()
        }
    }
}

fn default_hint(op: &str, errno: Option<i32>) -> Option<&'static str> {
    use libc::*;
    let errno = errno?;
    Some(match (op, errno) {
        ("connect", ECONNREFUSED) => "no process listens there",
        ("connect", ENOENT) => "no socket file there",
        ("bind", EADDRINUSE) => "another process listens there",
        (_, ENXIO) if op.starts_with("open") => "no process has it open for reading",
        (_, EPIPE) => "the reading side has closed",
        (_, ECONNRESET) => "the peer closed the connection",
        (_, EACCES) | (_, EPERM) => "this user lacks permission; check the object's owner and mode",
        (_, EEXIST) => "something already exists under that name",
        (_, ENAMETOOLONG) => "the name is longer than the kernel accepts",
        (_, ELOOP) => "a symbolic link is there, and it is not followed",
        (_, ENODEV) if op.starts_with("open") => {
            "it is not a regular file (a FIFO, socket or device was put there), so it was not used"
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_error_reads_as_object_op_reason_hint() {
        let err = Error::os(
            "unix:/run/app.sock",
            "connect",
            io::Error::from_raw_os_error(libc::ECONNREFUSED),
        );
        assert_eq!(
            err.to_string(),
            "unix:/run/app.sock: connect: connection refused: no process listens there"
        );
        assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED));
        assert_eq!(
            io::Error::from(err).raw_os_error(),
            Some(libc::ECONNREFUSED)
        );
    }

    #[test]
    fn non_os_errors_keep_their_text_through_io_error() {
        let err = Error::Full {
            object: "posix-mq:/jobs".into(),
        };
        let io_err = io::Error::from(err);
        assert_eq!(io_err.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(
            io_err.to_string(),
            "posix-mq:/jobs: full; the message was not sent"
        );
    }
}
