//! System V message queues (`sysv-mq:KEY`): kernel-held queues of typed
//! messages, found by a numeric key and bounded in bytes.
//!
//! A message facility of the [`message`](crate::message) taxonomy. Every
//! message carries a positive *type*, and a receive chooses by type
//! ([`Select`]): the first of any type, of one type, of the lowest type up to
//! a bound, or of any type but one. A queue outlives the processes that use
//! it until someone removes it ([`Queue::remove`], `ipcrm`), so the handle
//! that created a queue removes it on drop unless told to
//! [`keep`](QueueOptions::keep) it.
//!
//! The message layout is the system's own `struct msgbuf` (a C `long` type,
//! then the bytes), so C programs and any other language using the same key
//! exchange messages with this module unchanged.
//!
//! Bounds: a message holds at most `msgmax` bytes
//! (`/proc/sys/kernel/msgmax`) and a queue at most its `msg_qbytes`
//! (initially `/proc/sys/kernel/msgmnb`); both are checked before sending,
//! because the kernel would block forever on a message that can never fit.
//!
//! System V has no timed send or receive. [`Wait::For`] is implemented by
//! polling with `IPC_NOWAIT`, pausing 50 µs at first and doubling up to
//! 2 ms between attempts: a message that arrives during a pause waits up to
//! 2 ms to be seen, and a long wait makes about 500 attempts a second.
//! [`Wait::Forever`] blocks in the kernel and wakes as soon as it can go
//! on; whatever the wait, a send that finds room and a receive that finds a
//! message are one system call.
//!
//! # Examples
//!
//! ```
//! use unipc::message::sysv_mq::{QueueOptions, Select};
//! use unipc::message::{Tag, Wait};
//! use unipc::name::SysvKey;
//!
//! // A private queue; the creating handle removes it when dropped.
//! let queue = QueueOptions::new().mode(unipc::Mode::OWNER_RW).create(SysvKey::Private)?;
//! queue.send_typed(2, b"second", Wait::Never)?;
//! queue.send_typed(1, b"first", Wait::Never)?;
//!
//! let mut buf = [0; 64];
//! let got = queue.recv_select(Select::AtMost(1), &mut buf, Wait::Never)?;
//! assert_eq!(&buf[..got.len], b"first");
//! assert_eq!(got.tag, Tag::Type(1));
//! # Ok::<(), unipc::Error>(())
//! ```
//!
//! # References
//!
//! msgget(2), msgsnd(2), msgrcv(2), msgctl(2), ftok(3), sysvipc(7).

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use libc::{c_int, c_long};
use rustix::io::Errno;

use crate::creator::{sysv_identity, Class};
use crate::deadline::Deadline;
use crate::endpoint::Endpoint;
use crate::error::ObjectName;
use crate::facility::{
    Direction, Facility, LiveLimit, MessageCap, Naming, Persistence, Properties, Reach, Shape, Tags,
};
use crate::guard::{Guard, Made};
use crate::message::{unsupported_tag, Limits, Messenger, Received, Tag, Wait};
use crate::name::{FsPath, SysvKey};
use crate::ownership;
use crate::sys::posix_mq as posix_sys;
use crate::sys::sysv_mq as sys;
use crate::{Error, Mode, Result};

/// The type [`Tag::None`] sends with.
pub const DEFAULT_TYPE: i64 = 1;

/// The first pause of a timed call between two `IPC_NOWAIT` attempts.
const FIRST_PAUSE: Duration = Duration::from_micros(50);
/// The longest pause of a timed call: the worst extra latency it adds.
const MAX_PAUSE: Duration = Duration::from_millis(2);
/// How often `create` retries when a queue it found vanishes before it can
/// open it.
const CREATE_ATTEMPTS: usize = 100;

fn errno(err: &io::Error) -> Option<Errno> {
    err.raw_os_error().map(Errno::from_raw_os_error)
}

/// `ftok(path, id)` — a System V key derived from an existing file and a
/// one-byte project id, so unrelated programs can agree on a key by naming
/// the same file.
///
/// The key mixes the id with the file's device and inode numbers, exactly
/// as the C library's `ftok` does, so a C program calling `ftok` on the same
/// file and id gets the same key. Two files can map to the same key; the
/// file must exist and stay the same file (not be replaced) while in use.
///
/// # Errors
///
/// [`Error::InvalidName`] when the path is empty, contains a NUL, or `id`
/// is 0 (which `ftok` leaves unspecified); [`Error::Os`] when the file
/// cannot be `stat`ed.
///
/// # Examples
///
/// ```
/// use unipc::message::sysv_mq::ftok;
///
/// let key = ftok("/", b'q')?;
/// assert_eq!(key, ftok("/", b'q')?);
/// assert_ne!(key, ftok("/", b'r')?);
/// # Ok::<(), unipc::Error>(())
/// ```
///
/// # References
///
/// ftok(3).
pub fn ftok(path: impl AsRef<Path>, id: u8) -> Result<SysvKey> {
    let path = FsPath::new(path.as_ref())?;
    if id == 0 {
        return Err(Error::InvalidName {
            kind: "ftok project id",
            input: "0".into(),
            reason: "must be 1 to 255; ftok leaves 0 unspecified".into(),
        });
    }
    let key =
        sys::ftok(path.as_path(), id).map_err(|err| Error::os(path.to_string(), "ftok", err))?;
    // The id occupies the top byte, so the key is never 0 (IPC_PRIVATE).
    Ok(SysvKey::Key(key))
}

/// Which message a receive takes, by type.
///
/// Within the messages a selection matches, the oldest is taken, except
/// for [`Select::AtMost`], which takes the lowest type first.
///
/// # Examples
///
/// ```
/// use unipc::message::sysv_mq::{QueueOptions, Select};
/// use unipc::message::Wait;
/// use unipc::name::SysvKey;
///
/// let queue = QueueOptions::new().create(SysvKey::Private)?;
/// for (ty, text) in [(3, "c"), (1, "a"), (2, "b")] {
///     queue.send_typed(ty, text.as_bytes(), Wait::Never)?;
/// }
/// let mut buf = [0; 8];
/// let mut next = |select| -> unipc::Result<String> {
///     let got = queue.recv_select(select, &mut buf, Wait::Never)?;
///     Ok(String::from_utf8_lossy(&buf[..got.len]).into_owned())
/// };
/// assert_eq!(next(Select::Except(3))?, "a");
/// assert_eq!(next(Select::Exactly(3))?, "c");
/// assert_eq!(next(Select::Any)?, "b");
/// # Ok::<(), unipc::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Select {
    /// The oldest message, whatever its type (`msgtyp` 0).
    #[default]
    Any,
    /// The oldest message of exactly this type (`msgtyp` n).
    Exactly(i64),
    /// The oldest message of the lowest type up to and including n
    /// (`msgtyp` -n): a priority queue where low types go first.
    AtMost(i64),
    /// The oldest message of any type but n (`msgtyp` n with `MSG_EXCEPT`).
    Except(i64),
}

/// How [`Queue::recv_with`] receives: which message, how long to wait, and
/// whether a message longer than the buffer may be cut.
///
/// # Examples
///
/// ```
/// use unipc::message::sysv_mq::{QueueOptions, RecvOptions, Select};
/// use unipc::message::Wait;
/// use unipc::name::SysvKey;
///
/// let queue = QueueOptions::new().create(SysvKey::Private)?;
/// queue.send_typed(4, b"a long message", Wait::Never)?;
/// let mut buf = [0; 6];
/// let options = RecvOptions::new()
///     .select(Select::Exactly(4))
///     .wait(Wait::Never)
///     .truncate(true);
/// let got = queue.recv_with(&mut buf, options)?;
/// assert_eq!(&buf[..got.len], b"a long");
/// # Ok::<(), unipc::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvOptions {
    select: Select,
    wait: Wait,
    truncate: bool,
}

impl Default for RecvOptions {
    fn default() -> Self {
        RecvOptions::new()
    }
}

impl RecvOptions {
    /// Any type, waiting forever, refusing to truncate.
    pub fn new() -> Self {
        RecvOptions {
            select: Select::Any,
            wait: Wait::Forever,
            truncate: false,
        }
    }

    /// Which message to take.
    pub fn select(mut self, select: Select) -> Self {
        self.select = select;
        self
    }

    /// How long to wait for a matching message.
    pub fn wait(mut self, wait: Wait) -> Self {
        self.wait = wait;
        self
    }

    /// `MSG_NOERROR` — when true, a message longer than the buffer is cut to
    /// fit and its tail is lost; when false (the default) the receive fails
    /// with [`Error::BufferTooSmall`] and the message stays queued.
    #[doc(alias = "MSG_NOERROR")]
    pub fn truncate(mut self, truncate: bool) -> Self {
        self.truncate = truncate;
        self
    }
}

/// How to create or open a System V message queue.
///
/// # Examples
///
/// ```
/// use unipc::message::sysv_mq::QueueOptions;
/// use unipc::name::SysvKey;
///
/// let queue = QueueOptions::new()
///     .mode(unipc::Mode::OWNER_RW_GROUP_R)
///     .max_bytes(4096)
///     .create(SysvKey::Private)?;
/// let stat = queue.stat()?;
/// assert_eq!(stat.mode, unipc::Mode::OWNER_RW_GROUP_R);
/// assert_eq!(stat.max_bytes, 4096);
/// # Ok::<(), unipc::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueOptions {
    mode: Mode,
    exclusive: bool,
    keep: bool,
    max_bytes: Option<usize>,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions::new()
    }
}

impl QueueOptions {
    /// Mode 0o600, not exclusive, removed when the creating handle drops,
    /// the system's default size.
    pub fn new() -> Self {
        QueueOptions {
            mode: Mode::OWNER_RW,
            exclusive: false,
            keep: false,
            max_bytes: None,
        }
    }

    /// The permission bits of a queue this call creates (at most 0o777).
    ///
    /// No umask applies to System V objects: the mode asked is the mode set.
    /// The kernel checks it on every send (write) and receive (read). A
    /// non-exclusive [`create`](Self::create) that finds a queue under the
    /// key adopts it only if it has exactly these bits (and is this user's).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// `IPC_EXCL` — when true, [`create`](Self::create) fails if the key
    /// already has a queue; when false it opens that queue instead (and the
    /// handle is then an opener: see [`Queue::created`]).
    #[doc(alias = "IPC_EXCL")]
    pub fn exclusive(mut self, exclusive: bool) -> Self {
        self.exclusive = exclusive;
        self
    }

    /// Keep the queue when the creating handle drops, for other processes to
    /// use later. Remove it with [`Queue::remove`] or `ipcrm -q ID`.
    pub fn keep(mut self) -> Self {
        self.keep = true;
        self
    }

    /// `msg_qbytes` of a queue this call creates: the most bytes of text it
    /// holds at once (the kernel also caps the number of messages at the
    /// same value). From 1 up to `/proc/sys/kernel/msgmnb`, or with
    /// `CAP_SYS_RESOURCE` up to 2^31 - 1 (the kernel reads the value as a C
    /// `int`); [`create`](Self::create) refuses anything else before it
    /// creates the queue.
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// `msgget(key, IPC_CREAT | mode)` — creates a queue under `key`, or
    /// opens the one there unless [`exclusive`](Self::exclusive).
    /// [`SysvKey::Private`] always creates a new queue that only this process
    /// and those it tells the [identifier](Queue::id) can use.
    ///
    /// An existing queue is opened only when this user is both its owner
    /// and its creator (`uid` and `cuid`) and its mode is exactly the
    /// [`mode`](Self::mode) asked (0o600 unless set): adopting a queue
    /// another user made first would let that user read what is sent. The
    /// check is `IPC_STAT` on the identifier obtained, so it concerns the
    /// queue this handle would use. An adopted queue keeps its own
    /// `msg_qbytes`.
    ///
    /// # Errors
    ///
    /// [`Error::ForeignObject`] when the queue under the key belongs to or
    /// was created by another user, or has another mode (it is left
    /// untouched), or [`Error::Os`] with `EACCES` when this user cannot even
    /// read its owner and mode; [`Error::Unsupported`] for a
    /// [`max_bytes`](Self::max_bytes) of 0; [`Error::LimitExceeded`] for a
    /// `max_bytes` above `msgmnb` without `CAP_SYS_RESOURCE`, or above
    /// 2^31 - 1 (all checked before anything is created); [`Error::Os`] with
    /// `EEXIST` for an exclusive create on a taken key, `ENOSPC` when the
    /// system's queue limit (`/proc/sys/kernel/msgmni`) is reached.
    ///
    /// # Examples
    ///
    /// ```
    /// use unipc::message::sysv_mq::QueueOptions;
    /// use unipc::name::SysvKey;
    ///
    /// let key = SysvKey::Key(0x7e57_0000 | (std::process::id() as i32 & 0xffff));
    /// let queue = QueueOptions::new().exclusive(true).create(key)?;
    /// assert!(queue.created());
    /// let err = QueueOptions::new().exclusive(true).create(key).unwrap_err();
    /// assert!(err.to_string().contains("already exists"), "{err}");
    /// # Ok::<(), unipc::Error>(())
    /// ```
    ///
    /// # References
    ///
    /// msgget(2).
    #[doc(alias = "msgget")]
    pub fn create(&self, key: SysvKey) -> Result<Queue> {
        let object = Endpoint::SysvMq(key).to_string();
        let mode = mode_flag(self.mode);
        // Checked before anything is created, so a refused size leaves
        // nothing behind.
        let max_bytes = self
            .max_bytes
            .map(|bytes| check_max_bytes(&object, bytes))
            .transpose()?;
        let create_error = |err: io::Error| {
            let hint = match errno(&err) {
                Some(Errno::EXIST) => Some(
                    "a queue with this key already exists: remove it first, or open it instead",
                ),
                Some(Errno::NOSPC) => {
                    Some("the system's queue limit is reached (/proc/sys/kernel/msgmni)")
                }
                _ => None,
            };
            let err = Error::os(object.clone(), "create", err);
            match hint {
                Some(hint) => err.with_hint(hint),
                None => err,
            }
        };
        let (id, created) = match key {
            SysvKey::Private => (
                sys::get(key.raw(), sys::CREATE | mode).map_err(create_error)?,
                true,
            ),
            SysvKey::Key(raw) => {
                // Exclusive first, so the handle knows whether it created the
                // queue (and so whether it may remove it).
                let mut found = None;
                for _ in 0..CREATE_ATTEMPTS {
                    match sys::get(raw, sys::CREATE | sys::EXCLUSIVE | mode) {
                        Ok(id) => {
                            found = Some((id, true));
                            break;
                        }
                        Err(err) if errno(&err) == Some(Errno::EXIST) && !self.exclusive => {
                            let id = match sys::get(raw, 0) {
                                Ok(id) => id,
                                // Removed between the two calls: try again.
                                Err(err) if errno(&err) == Some(Errno::NOENT) => continue,
                                Err(err) => return Err(open_error(&object, err)),
                            };
                            // The owner and mode of the queue this id names,
                            // not of whatever the key names by now.
                            match self.check_adoptable(&object, id) {
                                Ok(()) => {
                                    found = Some((id, false));
                                    break;
                                }
                                // Removed since msgget: try again.
                                Err(Error::Removed { .. }) => continue,
                                Err(err) => return Err(err),
                            }
                        }
                        Err(err) => return Err(create_error(err)),
                    }
                }
                found.ok_or_else(|| {
                    create_error(io::Error::other(
                        "the key's queue kept being removed and recreated by others",
                    ))
                })?
            }
        };
        // Until set up completely, a queue this call created is removed if
        // anything below fails.
        let mut queue = Queue::new(id, key, object.into(), created)?;
        if created {
            if let Some(bytes) = max_bytes {
                queue.apply_max_bytes(bytes)?;
            }
        }
        queue.guard.set_armed(created && !self.keep);
        Ok(queue)
    }

    /// Refuses the existing queue `id` unless this user both owns and
    /// created it and its mode is the one asked; [`Error::Removed`] when it
    /// is gone.
    fn check_adoptable(&self, object: &str, id: c_int) -> Result<()> {
        let ds = sys::stat(id).map_err(|err| match errno(&err) {
            Some(Errno::IDRM | Errno::INVAL) => Error::Removed {
                object: object.into(),
            },
            Some(Errno::ACCESS) => Error::os(object, "stat", err).with_hint(
                "the queue with this key cannot be read, so it is not this user's queue with the mode asked: remove it, or use a different key",
            ),
            _ => Error::os(object, "stat", err),
        })?;
        let found = ownership::Found {
            uid: ds.perm.uid,
            creator_uid: Some(ds.perm.cuid),
            mode: ds.perm.mode(),
        };
        ownership::check_adoptable(object, found, self.mode.bits(), sys::euid())
    }

    /// `msgget(key, 0)` — opens the queue under `key`. The options do not
    /// apply; an opening handle never removes the queue.
    ///
    /// Opening checks no permission: the kernel checks read permission on
    /// each receive and [`stat`](Queue::stat), write permission on each send.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] for [`SysvKey::Private`] (a private queue has
    /// no key to find it by: use [`Queue::open_id`]); [`Error::Os`] with
    /// `ENOENT` when no queue has the key.
    ///
    /// # Examples
    ///
    /// ```
    /// use unipc::message::sysv_mq::QueueOptions;
    /// use unipc::name::SysvKey;
    ///
    /// let key = SysvKey::Key(0x7e58_0000 | (std::process::id() as i32 & 0xffff));
    /// let err = QueueOptions::new().open(key).unwrap_err();
    /// assert!(err.to_string().starts_with("sysv-mq:0x7e58"), "{err}");
    /// # Ok::<(), unipc::Error>(())
    /// ```
    ///
    /// # References
    ///
    /// msgget(2).
    #[doc(alias = "msgget")]
    pub fn open(&self, key: SysvKey) -> Result<Queue> {
        let object = Endpoint::SysvMq(key).to_string();
        let SysvKey::Key(raw) = key else {
            return Err(Error::Unsupported {
                object: object.into(),
                what: "opening by key".into(),
                reason: "a private queue has no key to find it by; open it by its identifier"
                    .into(),
            });
        };
        let id = sys::get(raw, 0).map_err(|err| open_error(&object, err))?;
        Queue::new(id, key, object.into(), false)
    }
}

fn open_error(object: &str, err: io::Error) -> Error {
    let no_queue = errno(&err) == Some(Errno::NOENT);
    let err = Error::os(object, "open", err);
    if no_queue {
        err.with_hint("no queue has this key")
    } else {
        err
    }
}

/// Refuses a `msg_qbytes` the kernel would not set as asked: 0 (a queue
/// that takes nothing), above `msgmnb` without `CAP_SYS_RESOURCE`, or above
/// the C `int` the kernel reads it as (it would wrap). Returns it as the
/// kernel's width.
fn check_max_bytes(object: &str, bytes: usize) -> Result<c_int> {
    if bytes == 0 {
        return Err(Error::Unsupported {
            object: object.into(),
            what: "max bytes 0".into(),
            reason: "a queue of 0 bytes takes no message (the kernel also caps the number of messages at max bytes); ask for at least 1".into(),
        });
    }
    let msgmnb = sys::info().ok().map(|info| info.msgmnb);
    max_bytes_within(bytes, posix_sys::has_cap_sys_resource(), msgmnb).map_err(|(limit, set_in)| {
        Error::LimitExceeded {
            object: object.into(),
            what: "max bytes",
            requested: bytes as u64,
            limit,
            set_in,
        }
    })
}

/// `bytes` (at least 1) as the kernel's C `int`, or the limit it breaks and
/// where that is set: `msgmnb` binds a process without `CAP_SYS_RESOURCE`
/// (when it could be read; else the kernel judges), the `int` everyone.
fn max_bytes_within(
    bytes: usize,
    privileged: bool,
    msgmnb: Option<usize>,
) -> std::result::Result<c_int, (u64, &'static str)> {
    if let Some(mnb) = msgmnb.filter(|&mnb| !privileged && bytes > mnb) {
        return Err((mnb as u64, MSGMNB_SET_IN));
    }
    c_int::try_from(bytes).map_err(|_| {
        (
            sys::MAX_QBYTES as u64,
            "the kernel (IPC_SET reads msg_qbytes as a C int; fixed, even for root)",
        )
    })
}

const MSGMNB_SET_IN: &str = "/proc/sys/kernel/msgmnb; CAP_SYS_RESOURCE may exceed it";

/// The mode as the flag bits of `msgget`; a [`Mode`] is at most `0o777`,
/// so it never reaches the `IPC_CREAT` bits.
fn mode_flag(mode: Mode) -> c_int {
    mode.bits() as c_int
}

/// What `msgctl(IPC_STAT)` reports about a queue.
///
/// # Examples
///
/// ```
/// use unipc::message::sysv_mq::QueueOptions;
/// use unipc::message::Wait;
/// use unipc::name::SysvKey;
///
/// let queue = QueueOptions::new().create(SysvKey::Private)?;
/// queue.send_typed(1, b"12345", Wait::Never)?;
/// let stat = queue.stat()?;
/// assert_eq!((stat.messages, stat.bytes), (1, 5));
/// assert_eq!(stat.last_sender, Some(std::process::id()));
/// assert_eq!(stat.last_receiver, None);
/// # Ok::<(), unipc::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stat {
    /// The queue's key ([`SysvKey::Private`] for a private queue).
    pub key: SysvKey,
    /// Messages queued (`msg_qnum`).
    pub messages: u64,
    /// Bytes of text queued (`msg_cbytes`).
    pub bytes: u64,
    /// The most bytes of text the queue holds (`msg_qbytes`).
    pub max_bytes: u64,
    /// The process that sent last (`msg_lspid`), if any has.
    pub last_sender: Option<u32>,
    /// The process that received last (`msg_lrpid`), if any has. When a
    /// send hands its message straight to a receiver already waiting, Linux
    /// records the receiving *thread's* id here, which differs from the
    /// process id in any thread but the main one.
    pub last_receiver: Option<u32>,
    /// When a message was last sent (`msg_stime`), if ever.
    pub last_send: Option<SystemTime>,
    /// When a message was last received (`msg_rtime`), if ever.
    pub last_receive: Option<SystemTime>,
    /// When the queue was created or last changed by `IPC_SET` (`msg_ctime`).
    pub changed: SystemTime,
    /// The owner's user id.
    pub uid: u32,
    /// The owner's group id.
    pub gid: u32,
    /// The creator's user id.
    pub creator_uid: u32,
    /// The creator's group id.
    pub creator_gid: u32,
    /// The permission bits.
    pub mode: Mode,
}

// c_long is i64 on 64-bit Linux and i32 elsewhere.
#[allow(clippy::useless_conversion)]
fn type_value(ty: c_long) -> i64 {
    i64::from(ty)
}

fn pid(raw: i32) -> Option<u32> {
    u32::try_from(raw).ok().filter(|&p| p != 0)
}

fn time(raw: i64) -> Option<SystemTime> {
    let secs = u64::try_from(raw).ok().filter(|&s| s != 0)?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

impl From<&sys::QueueStat> for Stat {
    fn from(ds: &sys::QueueStat) -> Self {
        Stat {
            key: match ds.perm.key {
                0 => SysvKey::Private,
                key => SysvKey::Key(key),
            },
            messages: ds.messages,
            bytes: ds.bytes,
            max_bytes: ds.max_bytes,
            last_sender: pid(ds.last_sender),
            last_receiver: pid(ds.last_receiver),
            last_send: time(ds.last_send),
            last_receive: time(ds.last_receive),
            changed: time(ds.changed).unwrap_or(SystemTime::UNIX_EPOCH),
            uid: ds.perm.uid,
            gid: ds.perm.gid,
            creator_uid: ds.perm.cuid,
            creator_gid: ds.perm.cgid,
            mode: Mode::from_bits_truncate(ds.perm.mode()),
        }
    }
}

/// A System V message queue (`sysv-mq:KEY`).
///
/// Created or opened with [`QueueOptions`]. The handle that created the
/// queue removes it when dropped (unless [kept](QueueOptions::keep));
/// handles that opened it never do. The handle is `Send` and `Sync`: the
/// kernel serializes every operation on the queue.
///
/// # Examples
///
/// ```
/// use unipc::message::sysv_mq::QueueOptions;
/// use unipc::message::Messenger;
/// use unipc::name::SysvKey;
///
/// let queue = QueueOptions::new().create(SysvKey::Private)?;
/// queue.send(b"hello")?;
/// assert_eq!(queue.recv()?, b"hello");
/// queue.remove()?;
/// # Ok::<(), unipc::Error>(())
/// ```
pub struct Queue {
    id: c_int,
    key: SysvKey,
    object: ObjectName,
    created: bool,
    /// Removes the queue on drop (one this handle created, unless kept)
    /// while the identifier still names it.
    guard: Guard<QueueId>,
    /// The last known `msgmax`; refreshed when a message seems to break it.
    msgmax: AtomicUsize,
}

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("object", &self.object)
            .field("id", &self.id)
            .field("created", &self.created)
            .field("remove_on_drop", &self.guard.is_armed())
            .finish()
    }
}

impl Queue {
    fn new(id: c_int, key: SysvKey, object: ObjectName, created: bool) -> Result<Queue> {
        let label = object.to_string();
        let queue = Queue {
            id,
            key,
            object,
            created,
            // Set properly by the caller once set up; until then a queue
            // this handle created is removed on any failure.
            guard: {
                let guard = Guard::new(
                    QueueId {
                        id,
                        key: key.raw(),
                        creator: sys::euid(),
                        removed: AtomicBool::new(false),
                    },
                    created,
                );
                if created {
                    guard.recorded(Class::SysvMq, &label, sysv_identity(id, key.raw()))
                } else {
                    guard
                }
            },
            msgmax: AtomicUsize::new(0),
        };
        queue.refresh_msgmax()?;
        Ok(queue)
    }

    /// Opens the queue with identifier `id`, as [`Queue::id`] returned in
    /// another process; the only way to reach a [`SysvKey::Private`] queue.
    /// The handle never removes the queue on drop.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] for a negative id; [`Error::Os`] (`EINVAL`)
    /// when no queue has this identifier, or `EACCES` when this user may
    /// not read the queue (the check reads the queue's key).
    ///
    /// # Examples
    ///
    /// ```
    /// use unipc::message::sysv_mq::{Queue, QueueOptions};
    /// use unipc::message::Messenger;
    /// use unipc::name::SysvKey;
    ///
    /// let queue = QueueOptions::new().create(SysvKey::Private)?;
    /// let other = Queue::open_id(queue.id())?;
    /// other.send(b"via the id")?;
    /// assert_eq!(queue.recv()?, b"via the id");
    /// # Ok::<(), unipc::Error>(())
    /// ```
    ///
    /// # References
    ///
    /// msgctl(2).
    pub fn open_id(id: i32) -> Result<Queue> {
        if id < 0 {
            return Err(Error::InvalidName {
                kind: "System V queue identifier",
                input: id.to_string(),
                reason: "must not be negative".into(),
            });
        }
        let ds = sys::stat(id).map_err(|err| {
            let missing = errno(&err) == Some(Errno::INVAL);
            let err = Error::os(Endpoint::SysvMqId(id).to_string(), "open", err);
            if missing {
                err.with_hint("no queue has this identifier")
            } else {
                err
            }
        })?;
        let key = Stat::from(&ds).key;
        Queue::new(id, key, Endpoint::SysvMqId(id).to_string().into(), false)
    }

    /// The queue's identifier (`msqid`), valid in every process until the
    /// queue is removed.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// The key the queue was created or opened with.
    pub fn key(&self) -> SysvKey {
        self.key
    }

    /// Whether this handle created the queue (rather than opening an existing
    /// one); only a creating handle removes the queue on drop.
    pub fn created(&self) -> bool {
        self.created
    }

    fn msgmax(&self) -> usize {
        self.msgmax.load(Ordering::Relaxed)
    }

    fn refresh_msgmax(&self) -> Result<usize> {
        let info = sys::info().map_err(|err| Error::os(self.object.clone(), "IPC_INFO", err))?;
        self.msgmax.store(info.msgmax, Ordering::Relaxed);
        Ok(info.msgmax)
    }

    fn too_large(&self, size: usize, limit: usize) -> Error {
        Error::MessageTooLarge {
            object: self.object.clone(),
            size,
            limit,
        }
    }

    /// An OS error of a send or receive; the queue having gone (EIDRM while
    /// blocked, EINVAL for an identifier that no longer exists) is
    /// [`Error::Removed`].
    fn fail(&self, op: &'static str, err: io::Error) -> Error {
        match errno(&err) {
            Some(Errno::IDRM | Errno::INVAL) => Error::Removed {
                object: self.object.clone(),
            },
            _ => Error::os(self.object.clone(), op, err),
        }
    }

    // c_long is 32 bits on 32-bit targets, so the conversion can fail there.
    #[allow(clippy::unnecessary_fallible_conversions)]
    fn check_type(&self, ty: i64, role: &str) -> Result<c_long> {
        match c_long::try_from(ty) {
            Ok(value) if value > 0 => Ok(value),
            _ => Err(Error::Unsupported {
                object: self.object.clone(),
                what: format!("{role} {ty}"),
                reason: format!("System V message types run from 1 to {}", c_long::MAX),
            }),
        }
    }

    /// Refuses a message above `msgmax` before the call: the kernel would
    /// only say EINVAL.
    fn check_msgmax(&self, size: usize) -> Result<()> {
        if size > self.msgmax() {
            // The limit may have been raised since it was read.
            let msgmax = self.refresh_msgmax()?;
            if size > msgmax {
                return Err(self.too_large(size, msgmax));
            }
        }
        Ok(())
    }

    /// Refuses a message above `msg_qbytes`: the kernel would block on it
    /// forever (or say EAGAIN forever). Only called once a send found the
    /// queue full, so a send with room costs no extra call.
    fn check_fits(&self, size: usize) -> Result<()> {
        let ds = match sys::stat(self.id) {
            Ok(ds) => ds,
            // A write-only user cannot read msg_qbytes; the send proceeds as
            // it would in C.
            Err(err) if errno(&err) == Some(Errno::ACCESS) => return Ok(()),
            Err(err) => return Err(self.fail("stat", err)),
        };
        let qbytes = usize::try_from(ds.max_bytes).unwrap_or(usize::MAX);
        // A queue also holds at most msg_qbytes messages: with 0 nothing fits.
        if size > qbytes || qbytes == 0 {
            return Err(self.too_large(size, qbytes.min(self.msgmax())));
        }
        Ok(())
    }

    /// `msgsnd` — sends `message` with type `ty` (positive), waiting for
    /// room as `wait` says.
    ///
    /// [`Wait::For`] polls (see the [module docs](self) for its cost).
    /// A blocking send interrupted by a signal handler fails with `EINTR`
    /// ([`io::ErrorKind::Interrupted`]); System V calls never restart.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] for a type below 1, before any call;
    /// [`Error::MessageTooLarge`] for a message above `msgmax` or the
    /// queue's `msg_qbytes`, naming the size and the limit;
    /// [`Error::Full`] ([`Wait::Never`]) or [`Error::TimedOut`]
    /// ([`Wait::For`]) when there is no room, and nothing was sent;
    /// [`Error::Removed`] when the queue is removed (also while waiting);
    /// [`Error::Os`] with `EACCES` when this user may not write to it.
    ///
    /// # Examples
    ///
    /// ```
    /// use unipc::message::sysv_mq::QueueOptions;
    /// use unipc::message::Wait;
    /// use unipc::name::SysvKey;
    ///
    /// let queue = QueueOptions::new().max_bytes(4).create(SysvKey::Private)?;
    /// queue.send_typed(7, b"1234", Wait::Never)?;
    /// let full = queue.send_typed(7, b"5", Wait::Never).unwrap_err();
    /// assert!(matches!(full, unipc::Error::Full { .. }));
    /// let big = queue.send_typed(7, b"12345", Wait::Never).unwrap_err();
    /// assert!(big.to_string().contains("limit of 4 bytes"), "{big}");
    /// assert!(queue.send_typed(0, b"", Wait::Never).is_err());
    /// # Ok::<(), unipc::Error>(())
    /// ```
    ///
    /// # References
    ///
    /// msgsnd(2).
    #[doc(alias = "msgsnd")]
    pub fn send_typed(&self, ty: i64, message: &[u8], wait: Wait) -> Result<()> {
        let mtype = self.check_type(ty, "message type")?;
        self.check_msgmax(message.len())?;
        // Whatever the wait, a first try that finds room is the whole send:
        // one call.
        match sys::send(self.id, mtype, message, sys::NOWAIT) {
            Ok(()) => Ok(()),
            Err(err) if errno(&err) == Some(Errno::AGAIN) => {
                self.send_to_full(mtype, message, wait)
            }
            Err(err) => Err(self.send_error(err, message.len())),
        }
    }

    /// The rest of a send whose first try found the queue full: refuse a
    /// message that can never fit, then wait as `wait` says.
    #[cold]
    fn send_to_full(&self, mtype: c_long, message: &[u8], wait: Wait) -> Result<()> {
        self.check_fits(message.len())?;
        match wait {
            Wait::Never => Err(Error::Full {
                object: self.object.clone(),
            }),
            Wait::For(timeout) => self.poll(timeout, || {
                match sys::send(self.id, mtype, message, sys::NOWAIT) {
                    Ok(()) => Ok(Some(())),
                    Err(err) if errno(&err) == Some(Errno::AGAIN) => Ok(None),
                    Err(err) => Err(self.send_error(err, message.len())),
                }
            }),
            Wait::Forever => sys::send(self.id, mtype, message, 0)
                .map_err(|err| self.send_error(err, message.len())),
        }
    }

    fn send_error(&self, err: io::Error, size: usize) -> Error {
        if errno(&err) == Some(Errno::INVAL) {
            // EINVAL is also msgmax lowered since the check.
            match self.refresh_msgmax() {
                Ok(msgmax) if size > msgmax => return self.too_large(size, msgmax),
                _ => {}
            }
        }
        self.fail("send", err)
    }

    /// `msgrcv` — receives the message `select` chooses into `buf`, waiting
    /// as `wait` says; a message longer than `buf` is refused and stays
    /// queued. The [`Received`] tag is the message's [`Tag::Type`].
    ///
    /// # Errors
    ///
    /// As [`recv_with`](Self::recv_with).
    ///
    /// # Examples
    ///
    /// ```
    /// use unipc::message::sysv_mq::{QueueOptions, Select};
    /// use unipc::message::Wait;
    /// use unipc::name::SysvKey;
    ///
    /// let queue = QueueOptions::new().create(SysvKey::Private)?;
    /// queue.send_typed(9, b"nine", Wait::Never)?;
    /// let mut buf = [0; 16];
    /// let none = queue.recv_select(Select::Exactly(8), &mut buf, Wait::Never);
    /// assert!(matches!(none, Err(unipc::Error::Empty { .. })));
    /// let got = queue.recv_select(Select::Exactly(9), &mut buf, Wait::Never)?;
    /// assert_eq!(&buf[..got.len], b"nine");
    /// # Ok::<(), unipc::Error>(())
    /// ```
    ///
    /// # References
    ///
    /// msgrcv(2).
    #[doc(alias = "msgrcv")]
    pub fn recv_select(&self, select: Select, buf: &mut [u8], wait: Wait) -> Result<Received> {
        self.recv_with(buf, RecvOptions::new().select(select).wait(wait))
    }

    /// `msgrcv` — receives one message into `buf` as `options` say.
    ///
    /// [`Wait::For`] polls (see the [module docs](self) for its cost).
    /// A blocking receive interrupted by a signal handler fails with `EINTR`
    /// ([`io::ErrorKind::Interrupted`]); System V calls never restart.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] for a selection naming a type below 1, before
    /// any call; [`Error::BufferTooSmall`] when the message is longer than
    /// `buf` and truncation was not asked (the message stays queued);
    /// [`Error::Empty`] ([`Wait::Never`]) or [`Error::TimedOut`]
    /// ([`Wait::For`]) when no message matches; [`Error::Removed`] when the
    /// queue is removed (also while waiting); [`Error::Os`] with `EACCES`
    /// when this user may not read it.
    ///
    /// # Examples
    ///
    /// See [`RecvOptions`].
    ///
    /// # References
    ///
    /// msgrcv(2).
    #[doc(alias = "msgrcv")]
    pub fn recv_with(&self, buf: &mut [u8], options: RecvOptions) -> Result<Received> {
        let (msgtyp, mut flags) = match options.select {
            Select::Any => (0, 0),
            Select::Exactly(ty) => (self.check_type(ty, "Select::Exactly type")?, 0),
            Select::AtMost(ty) => (-self.check_type(ty, "Select::AtMost type")?, 0),
            Select::Except(ty) => (self.check_type(ty, "Select::Except type")?, sys::EXCEPT),
        };
        if options.truncate {
            flags |= sys::TRUNCATE;
        }
        let received = |(len, ty): (usize, c_long)| Received {
            len,
            tag: Tag::Type(type_value(ty)),
        };
        let buffer = buf.len();
        let recv_error = |err: io::Error| {
            if errno(&err) == Some(Errno::TOOBIG) {
                Error::BufferTooSmall {
                    object: self.object.clone(),
                    buffer,
                    needed: None,
                }
            } else {
                self.fail("receive", err)
            }
        };
        // One call, blocking or not, is the whole receive when a message
        // is there (or, blocking, arrives).
        let first = match options.wait {
            Wait::Forever => flags,
            Wait::Never | Wait::For(_) => flags | sys::NOWAIT,
        };
        match sys::recv(self.id, buf, msgtyp, first) {
            Ok(got) => Ok(received(got)),
            Err(err) if errno(&err) == Some(Errno::NOMSG) => match options.wait {
                Wait::For(timeout) => self.poll(timeout, || {
                    match sys::recv(self.id, buf, msgtyp, flags | sys::NOWAIT) {
                        Ok(got) => Ok(Some(received(got))),
                        Err(err) if errno(&err) == Some(Errno::NOMSG) => Ok(None),
                        Err(err) => Err(recv_error(err)),
                    }
                }),
                // Only a non-blocking call says ENOMSG.
                Wait::Never | Wait::Forever => Err(Error::Empty {
                    object: self.object.clone(),
                }),
            },
            Err(err) => Err(recv_error(err)),
        }
    }

    /// Repeats a non-blocking `attempt` with a growing pause until it
    /// succeeds or `timeout` has passed.
    fn poll<T>(
        &self,
        timeout: Duration,
        mut attempt: impl FnMut() -> Result<Option<T>>,
    ) -> Result<T> {
        let deadline = Deadline::after(timeout);
        let mut pause = FIRST_PAUSE;
        loop {
            if let Some(done) = attempt()? {
                return Ok(done);
            }
            // A timeout too large for the clock is forever.
            let left = deadline.remaining().unwrap_or(MAX_PAUSE);
            if left.is_zero() {
                return Err(Error::TimedOut {
                    object: self.object.clone(),
                    timeout,
                });
            }
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }

    /// `msgctl(IPC_STAT)` — the queue's counts, limits, last users, times,
    /// owner and mode.
    ///
    /// # Errors
    ///
    /// [`Error::Os`] with `EACCES` when this user may not read the queue;
    /// [`Error::Removed`] when it is gone.
    ///
    /// # Examples
    ///
    /// See [`Stat`].
    ///
    /// # References
    ///
    /// msgctl(2).
    #[doc(alias = "msgctl")]
    #[doc(alias = "IPC_STAT")]
    pub fn stat(&self) -> Result<Stat> {
        Ok(Stat::from(&self.raw_stat()?))
    }

    fn raw_stat(&self) -> Result<sys::QueueStat> {
        sys::stat(self.id).map_err(|err| self.fail("stat", err))
    }

    /// `msgctl(IPC_SET)` — changes the permission bits (at most 0o777).
    ///
    /// # Errors
    ///
    /// [`Error::Os`] with
    /// `EPERM` unless this user owns or created the queue (or is
    /// privileged); [`Error::Removed`] when it is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use unipc::message::sysv_mq::QueueOptions;
    /// use unipc::name::SysvKey;
    ///
    /// let queue = QueueOptions::new().create(SysvKey::Private)?;
    /// queue.set_mode(unipc::Mode::new(0o604)?)?;
    /// assert_eq!(queue.stat()?.mode.bits(), 0o604);
    /// # Ok::<(), unipc::Error>(())
    /// ```
    ///
    /// # References
    ///
    /// msgctl(2).
    #[doc(alias = "IPC_SET")]
    pub fn set_mode(&self, mode: Mode) -> Result<()> {
        sys::set_mode(self.id, mode.bits()).map_err(|err| self.fail("set", err))
    }

    /// `msgctl(IPC_SET)` — changes `msg_qbytes`, the most bytes of text the
    /// queue holds (and the most messages). Senders waiting for room
    /// are woken to try again.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] for 0; [`Error::LimitExceeded`] for more than
    /// `/proc/sys/kernel/msgmnb` without `CAP_SYS_RESOURCE`, or more than
    /// 2^31 - 1 (the kernel reads the value as a C `int` and would wrap it);
    /// [`Error::Os`] with `EPERM` unless this user owns or created the queue;
    /// [`Error::Removed`] when it is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use unipc::message::sysv_mq::QueueOptions;
    /// use unipc::name::SysvKey;
    ///
    /// let queue = QueueOptions::new().create(SysvKey::Private)?;
    /// queue.set_max_bytes(1000)?;
    /// assert_eq!(queue.stat()?.max_bytes, 1000);
    /// # Ok::<(), unipc::Error>(())
    /// ```
    ///
    /// # References
    ///
    /// msgctl(2).
    #[doc(alias = "IPC_SET")]
    pub fn set_max_bytes(&self, bytes: usize) -> Result<()> {
        let bytes = check_max_bytes(&self.object, bytes)?;
        self.apply_max_bytes(bytes)
    }

    /// `msgctl(IPC_SET)` of a `msg_qbytes` [`check_max_bytes`] let through.
    fn apply_max_bytes(&self, bytes: c_int) -> Result<()> {
        let err = match sys::set_max_bytes(self.id, bytes) {
            Ok(()) => return Ok(()),
            Err(err) => err,
        };
        if errno(&err) == Some(Errno::PERM) {
            // EPERM is either a stranger or an owner above msgmnb.
            let euid = sys::euid();
            let owner =
                sys::stat(self.id).is_ok_and(|ds| euid == ds.perm.uid || euid == ds.perm.cuid);
            if let Ok(info) = sys::info() {
                if owner && bytes as usize > info.msgmnb {
                    return Err(Error::LimitExceeded {
                        object: self.object.clone(),
                        what: "max bytes",
                        requested: bytes as u64,
                        limit: info.msgmnb as u64,
                        set_in: MSGMNB_SET_IN,
                    });
                }
            }
        }
        Err(self.fail("set", err))
    }

    /// `msgctl(IPC_RMID)` — removes the queue now: waiting senders and
    /// receivers in every process fail with [`Error::Removed`], queued
    /// messages are lost, and the key is free again. Any handle may call it
    /// (the kernel allows the owner, the creator and privileged users).
    ///
    /// # Errors
    ///
    /// [`Error::Os`] with `EPERM` when this user may not remove the queue;
    /// [`Error::Removed`] when it is already gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use unipc::message::sysv_mq::QueueOptions;
    /// use unipc::name::SysvKey;
    ///
    /// let queue = QueueOptions::new().keep().create(SysvKey::Private)?;
    /// queue.remove()?;
    /// assert!(matches!(queue.stat(), Err(unipc::Error::Removed { .. })));
    /// # Ok::<(), unipc::Error>(())
    /// ```
    ///
    /// # References
    ///
    /// msgctl(2), ipcrm(1).
    #[doc(alias = "IPC_RMID")]
    pub fn remove(&self) -> Result<()> {
        let forget = sys::stat(self.id).ok().map(|st| {
            crate::creator::Forget::sysv(
                crate::creator::Class::SysvMq,
                self.id,
                st.perm.key,
                st.perm.cuid,
            )
        });
        sys::remove(self.id).map_err(|err| self.fail("remove", err))?;
        crate::creator::Forget::done(forget);
        self.guard.made().removed.store(true, Ordering::Relaxed);
        Ok(())
    }
}

/// A queue's identifier and what it was made with (key, creator), for
/// its [`Guard`]: an identifier freed by `IPC_RMID` is in time given to a
/// new queue, maybe another user's.
#[derive(Debug)]
struct QueueId {
    id: c_int,
    key: i32,
    creator: u32,
    /// Set by [`Queue::remove`].
    removed: AtomicBool,
}

impl Made for QueueId {
    /// `IPC_STAT`: the same key and creator. A queue this user may not
    /// read (a creator's write-only mode) cannot be told, and the removal
    /// goes ahead: the kernel still allows it only to its owner, creator or
    /// a privileged user.
    fn is_still_ours(&self) -> io::Result<bool> {
        if self.removed.load(Ordering::Relaxed) {
            return Ok(false);
        }
        Ok(match sys::stat(self.id) {
            Ok(found) => found.perm.key == self.key && found.perm.cuid == self.creator,
            Err(err) => !matches!(errno(&err), Some(Errno::IDRM | Errno::INVAL)),
        })
    }

    fn remove(&self) -> io::Result<()> {
        sys::remove(self.id)
    }
}

impl Messenger for Queue {
    fn object(&self) -> ObjectName {
        self.object.clone()
    }

    /// The largest message is the smaller of `msgmax` and the queue's
    /// `msg_qbytes`; there is no message count (the queue is bounded in
    /// bytes).
    fn limits(&self) -> Result<Limits> {
        let qbytes = usize::try_from(self.raw_stat()?.max_bytes).unwrap_or(usize::MAX);
        Ok(Limits {
            max_message_size: self.refresh_msgmax()?.min(qbytes),
            max_messages: None,
        })
    }

    /// [`Tag::None`] sends type [`DEFAULT_TYPE`] (1), [`Tag::Type`] its
    /// type; [`Tag::Priority`] is [`Error::Unsupported`].
    #[inline]
    fn send_tagged(&self, message: &[u8], tag: Tag, wait: Wait) -> Result<()> {
        let ty = match tag {
            Tag::None => DEFAULT_TYPE,
            Tag::Type(ty) => ty,
            Tag::Priority(_) => {
                return Err(unsupported_tag(
                    self.object.clone(),
                    tag,
                    "message types (Tag::Type), not priorities",
                ))
            }
        };
        self.send_typed(ty, message, wait)
    }

    /// Takes the oldest message of any type ([`Select::Any`]).
    #[inline]
    fn recv_into(&self, buf: &mut [u8], wait: Wait) -> Result<Received> {
        self.recv_with(buf, RecvOptions::new().wait(wait))
    }

    /// Sizes the buffer at `msgmax`, which every message fits, without
    /// asking the kernel for the queue's limits first.
    fn recv_vec(&self, wait: Wait) -> Result<(Vec<u8>, Tag)> {
        let mut buf = vec![0; self.msgmax()];
        let got = match self.recv_into(&mut buf, wait) {
            // msgmax was raised after this handle read it.
            Err(Error::BufferTooSmall { .. }) => {
                buf.resize(self.refresh_msgmax()?, 0);
                self.recv_into(&mut buf, wait)?
            }
            other => other?,
        };
        buf.truncate(got.len);
        Ok((buf, got.tag))
    }
}

/// The System V message queue's entry in the facility registry.
pub static FACILITY: Facility = Facility {
    name: "sysv-mq",
    scheme: Some("sysv-mq"),
    summary: "System V message queue: whole messages with types, found by a numeric key",
    addressing: "sysv-mq:KEY (decimal, 0x-hex, or private)",
    properties: Properties {
        shape: Shape::Messages,
        direction: Direction::TwoWay,
        tags: Tags::Type,
        destructive_read: true,
        peek: false,
        naming: Naming::SysvKey,
        reach: Reach::Host,
        persistence: Persistence::Kernel,
        permissions: "IPC permission bits and owner (ipcs -q)",
        reliable: true,
        after_crash: "the queue and its messages stay until removed",
    },
    limits: || {
        vec![
            LiveLimit::from_proc("msgmax", "/proc/sys/kernel/msgmax", " bytes per message"),
            LiveLimit::from_proc(
                "msgmnb",
                "/proc/sys/kernel/msgmnb",
                " bytes per queue (default)",
            ),
            LiveLimit::from_proc("msgmni", "/proc/sys/kernel/msgmni", " queues"),
        ]
    },
    max_message: || {
        let bytes = std::fs::read_to_string("/proc/sys/kernel/msgmax")
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Some(MessageCap {
            bytes,
            set_by: "msgmax in /proc/sys/kernel/msgmax".to_owned(),
        })
    },
    #[cfg(feature = "bench")]
    connector: Some(&Connector),
};

#[cfg(feature = "bench")]
use crate::facility::{self, Link, LinkOptions, MessageLink, PendingLink, RawIo, Ticket};

/// Joins two processes with two queues under fresh keys, one each way; the peer
/// finds them by identifier, and the parent's handles remove them.
#[cfg(feature = "bench")]
struct Connector;

#[cfg(feature = "bench")]
struct Pending(Queue, Queue);

#[cfg(feature = "bench")]
fn raw_io<'a>(tx: &'a Queue, rx: &'a Queue) -> RawIo<'a> {
    RawIo::SysvMsg {
        read_id: rx.id(),
        write_id: tx.id(),
    }
}

#[cfg(feature = "bench")]
impl facility::Connector for Connector {
    fn prepare(
        &self,
        _scratch: &Path,
        _: &LinkOptions,
        announce: &mut dyn FnMut(&facility::CreatedObject),
    ) -> Result<(Box<dyn PendingLink>, Ticket)> {
        // A fresh key, told before the queue exists: a private queue's
        // identifier exists only once the queue does, which leaves a
        // moment in which a killed run would leave it behind.
        let mut make = || -> Result<Queue> {
            let key = facility::fresh_sysv_key();
            announce(&facility::CreatedObject::SysvQueue(key));
            // Exclusive: a key someone else took fails the link (and the
            // runner forgets the announcement) rather than adopting theirs.
            QueueOptions::new()
                .exclusive(true)
                .create(SysvKey::Key(key))
        };
        let to_peer = make()?;
        let from_peer = make()?;
        let address = format!("{},{}", to_peer.id(), from_peer.id());
        Ok((
            Box::new(Pending(to_peer, from_peer)),
            Ticket::address(address),
        ))
    }

    fn join(&self, ticket: Ticket, _: &LinkOptions) -> Result<Box<dyn Link>> {
        let ids: Vec<i32> = ticket
            .address
            .split(',')
            .filter_map(|id| id.parse().ok())
            .collect();
        let [to_peer, from_peer] = ids[..] else {
            return Err(Error::InvalidEndpoint {
                input: ticket.address.clone(),
                reason: "expected two queue identifiers, as in 5,6".to_owned(),
            });
        };
        let rx = Queue::open_id(to_peer)?;
        let tx = Queue::open_id(from_peer)?;
        Ok(Box::new(MessageLink::direct(tx, rx, raw_io)))
    }
}

#[cfg(feature = "bench")]
impl PendingLink for Pending {
    fn establish(self: Box<Self>) -> Result<Box<dyn Link>> {
        let Pending(tx, rx) = *self;
        Ok(Box::new(MessageLink::direct(tx, rx, raw_io)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_knows_its_queue_by_key_and_creator() {
        let queue = QueueOptions::new().create(SysvKey::Private).unwrap();
        let made = |creator| QueueId {
            id: queue.id(),
            key: SysvKey::Private.raw(),
            creator,
            removed: AtomicBool::new(false),
        };
        assert!(made(sys::euid()).is_still_ours().unwrap());
        assert!(!made(sys::euid().wrapping_add(1)).is_still_ours().unwrap());
        queue.remove().unwrap();
        assert!(!queue.guard.made().is_still_ours().unwrap());
        // Gone: not ours, whoever asks.
        assert!(!made(sys::euid()).is_still_ours().unwrap());
    }

    #[test]
    fn modes_stay_clear_of_the_msgget_flags() {
        assert_eq!(mode_flag(Mode::ALL), 0o777);
        assert_eq!(mode_flag(Mode::ALL) & (sys::CREATE | sys::EXCLUSIVE), 0);
    }

    #[test]
    fn max_bytes_are_held_to_msgmnb_and_the_kernel_int() {
        const INT: &str = "the kernel (IPC_SET reads msg_qbytes as a C int; fixed, even for root)";
        assert_eq!(max_bytes_within(16384, false, Some(16384)), Ok(16384));
        assert_eq!(
            max_bytes_within(16385, false, Some(16384)),
            Err((16384, MSGMNB_SET_IN))
        );
        // Values that would wrap in the kernel: msgmnb binds first...
        assert_eq!(
            max_bytes_within((1 << 32) + 100, false, Some(16384)),
            Err((16384, MSGMNB_SET_IN))
        );
        // ...and the C int binds even with CAP_SYS_RESOURCE.
        assert_eq!(max_bytes_within(1 << 20, true, Some(16384)), Ok(1 << 20));
        for wraps in [1 << 31, 1 << 32, (1 << 32) + 100] {
            assert_eq!(
                max_bytes_within(wraps, true, Some(16384)),
                Err((i32::MAX as u64, INT)),
                "{wraps}"
            );
            assert_eq!(
                max_bytes_within(wraps, false, None),
                Err((i32::MAX as u64, INT))
            );
        }
        assert_eq!(
            max_bytes_within(i32::MAX as usize, true, None),
            Ok(i32::MAX)
        );
        let err = check_max_bytes("sysv-mq:0x1", 0).unwrap_err().to_string();
        assert!(
            err.contains("max bytes 0") && err.contains("at least 1"),
            "{err}"
        );
    }

    #[test]
    fn stat_maps_zero_to_none() {
        assert_eq!(pid(0), None);
        assert_eq!(pid(42), Some(42));
        assert_eq!(time(0), None);
        assert_eq!(
            time(10),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(10))
        );
    }

    #[test]
    fn handles_can_be_shared_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Queue>();
    }

    #[test]
    fn options_default_to_a_removable_owner_only_queue() {
        let options = QueueOptions::default();
        assert_eq!(options.mode, Mode::OWNER_RW);
        assert!(!options.exclusive && !options.keep);
        let recv = RecvOptions::default();
        assert_eq!(recv.select, Select::Any);
        assert_eq!(recv.wait, Wait::Forever);
        assert!(!recv.truncate);
    }
}
