//! POSIX message queues (`posix-mq:/NAME`): named queues of whole messages
//! held by the kernel, received highest priority first and in sending order
//! within one priority.
//!
//! A [`Queue`] is a [`Messenger`] whose tag is [`Tag::Priority`]. On Linux
//! the queue descriptor is a file descriptor, so a [`Queue`] implements
//! [`AsFd`]: `poll`/`epoll` report it readable while a message is waiting
//! and writable while there is room.
//!
//! A queue lives until it is unlinked and its last descriptor is closed. The
//! handle that created it unlinks it on drop (unless told to
//! [`keep`](Queue::keep) it, or the name has since been removed and now
//! leads to another queue); handles that opened it never do.
//!
//! # Limits
//!
//! The kernel bounds each queue by `/proc/sys/fs/mqueue/msg_max` messages of
//! at most `/proc/sys/fs/mqueue/msgsize_max` bytes, and the number of queues
//! by `/proc/sys/fs/mqueue/queues_max`; a process with CAP_SYS_RESOURCE
//! (usually root, though not in every container) may go beyond all three,
//! up to 65536 messages of 16 MiB. The bytes all of one user's queues may
//! take are bounded by `RLIMIT_MSGQUEUE`, for everyone. A creation refused by one of them is an
//! [`Error::LimitExceeded`] that names the limit and where it is set; the
//! values are read when the error happens, not cached.
//!
//! # Notification
//!
//! One process at a time may ask to be told when a message arrives in the
//! empty queue (`mq_notify`), by a signal ([`Queue::notify_signal`]) or by
//! a closure run on a thread ([`Queue::notify_thread`]). The registration
//! is one-shot, and the kernel removes it when the process closes any
//! descriptor of the queue.
//!
//! # References
//! mq_overview(7), mq_open(3), mq_send(3), mq_receive(3), mq_notify(3),
//! mq_getattr(3), mq_unlink(3).

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rustix::time::Timespec;

use super::{unsupported_tag, Limits, Messenger, Received, Tag, Wait};
use crate::creator::Class;
use crate::deadline::Deadline;
use crate::error::ObjectName;
use crate::facility::{
    Direction, Facility, LiveLimit, MessageCap, Naming, Persistence, Properties, Reach, Shape, Tags,
};
use crate::guard::{Guard, Made};
use crate::name::PosixName;
use crate::ownership;
use crate::sys::posix_mq as sys;
use crate::sys::proc as sys_proc;
use crate::{Error, Mode, Result};

/// The highest priority a message may carry (`MQ_PRIO_MAX - 1` on Linux).
pub const PRIORITY_MAX: u32 = 32767;

/// Longest queue the kernel allows anyone, root included (HARD_MSGMAX).
const HARD_MSGMAX: u64 = 65536;
/// Largest message size the kernel allows anyone (HARD_MSGSIZEMAX).
const HARD_MSGSIZEMAX: u64 = 16 * 1024 * 1024;
/// Latest deadline the kernel accepts (KTIME_SEC_MAX, in 2262).
const LATEST_DEADLINE_SECS: i64 = 9_223_372_035;

const MSG_MAX_FILE: &str = "/proc/sys/fs/mqueue/msg_max";
const MSGSIZE_MAX_FILE: &str = "/proc/sys/fs/mqueue/msgsize_max";
const QUEUES_MAX_FILE: &str = "/proc/sys/fs/mqueue/queues_max";

fn object_of(name: &PosixName) -> String {
    format!("posix-mq:{name}")
}

/// Which way a handle may move messages: the access mode of `mq_open`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Access {
    /// Receive only (`O_RDONLY`).
    Read,
    /// Send only (`O_WRONLY`).
    Write,
    /// Send and receive (`O_RDWR`).
    #[default]
    ReadWrite,
}

/// How to create or open a queue: `mq_open` with its flags, mode and
/// attributes.
///
/// Defaults: read-write, the kernel's default sizes
/// (`/proc/sys/fs/mqueue/msg_default` and `msgsize_default`), mode `0o600`,
/// not exclusive, blocking.
///
/// # Examples
///
/// ```
/// use unipc::message::posix_mq::{Access, QueueOptions};
/// use unipc::name::PosixName;
///
/// let name: PosixName = format!("/unipc-doc-options-{}", std::process::id()).parse()?;
/// let owner = QueueOptions::new()
///     .max_messages(4)
///     .max_message_size(128)
///     .mode(unipc::Mode::OWNER_RW)
///     .exclusive(true)
///     .create(&name)?;
/// let reader = QueueOptions::new().access(Access::Read).open(&name)?;
/// assert_eq!(reader.attributes()?.max_messages, 4);
/// drop(owner); // the creator unlinks the name
/// # Ok::<(), unipc::Error>(())
/// ```
///
/// # References
/// mq_open(3), mq_overview(7)
#[derive(Clone, Debug)]
pub struct QueueOptions {
    access: Access,
    max_messages: Option<usize>,
    max_message_size: Option<usize>,
    mode: Mode,
    exclusive: bool,
    nonblocking: bool,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions::new()
    }
}

impl QueueOptions {
    /// The defaults listed on [`QueueOptions`].
    pub fn new() -> Self {
        QueueOptions {
            access: Access::ReadWrite,
            max_messages: None,
            max_message_size: None,
            mode: Mode::OWNER_RW,
            exclusive: false,
            nonblocking: false,
        }
    }

    /// Which way the handle moves messages.
    pub fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    /// How many messages the queue holds before a send waits (`mq_maxmsg`);
    /// used only when the queue is created.
    pub fn max_messages(mut self, n: usize) -> Self {
        self.max_messages = Some(n);
        self
    }

    /// The largest message the queue accepts, in bytes (`mq_msgsize`); used
    /// only when the queue is created. Every receive buffer must be at least
    /// this large.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = Some(bytes);
        self
    }

    /// The permission bits of a queue this call creates. They are set
    /// exactly, whatever the umask: the queue is `fchmod`ed after creation.
    /// A non-exclusive [`create`](Self::create) that finds a queue there
    /// adopts it only if it has exactly these bits (and is this user's).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Whether [`create`](Self::create) fails when the name is taken
    /// (`O_EXCL`) instead of opening the queue there.
    pub fn exclusive(mut self, exclusive: bool) -> Self {
        self.exclusive = exclusive;
        self
    }

    /// Whether the descriptor is non-blocking (`O_NONBLOCK`): every send and
    /// receive then returns [`Error::Full`] or [`Error::Empty`] at once,
    /// whatever [`Wait`] it was given. Meant for poll/epoll loops.
    pub fn nonblocking(mut self, nonblocking: bool) -> Self {
        self.nonblocking = nonblocking;
        self
    }

    fn flags(&self, create: bool, exclusive: bool) -> sys::OpenFlags {
        sys::OpenFlags {
            read: self.access != Access::Write,
            write: self.access != Access::Read,
            create,
            exclusive,
            nonblocking: self.nonblocking,
        }
    }

    /// `mq_open(name, O_CREAT ...)` - creates the queue, or opens the one
    /// already there unless [`exclusive`](Self::exclusive).
    ///
    /// The handle unlinks the name on drop only if this call created the
    /// queue ([`Queue::created`]).
    ///
    /// An existing queue is opened only when this user owns it and its mode
    /// is exactly the [`mode`](Self::mode) asked (0o600 unless set):
    /// adopting a queue another user made first would let that user read
    /// what is sent and send what is received. The check is made with
    /// `fstat` on the descriptor opened, not by a second lookup of the name.
    /// An adopted queue keeps its own sizes; read them with
    /// [`Queue::attributes`].
    ///
    /// # Errors
    /// [`Error::ForeignObject`] when the queue there belongs to another
    /// user or has another mode (it is left untouched);
    /// [`Error::LimitExceeded`] when the sizes or the number of queues break
    /// a system limit; [`Error::QueueBytesLimit`] when the user's queues
    /// would exceed `RLIMIT_MSGQUEUE`; [`Error::Unsupported`] for a size of
    /// zero; [`Error::Os`] with EEXIST
    /// when exclusive and the name is taken, EACCES when this user may not
    /// open the existing queue, and other failures of `mq_open`.
    ///
    /// # Examples
    /// See [`QueueOptions`].
    ///
    /// # References
    /// mq_open(3)
    #[doc(alias = "mq_open")]
    pub fn create(&self, name: &PosixName) -> Result<Queue> {
        let object = object_of(name);
        let attr = self.requested_attr(&object)?;
        let kernel_attr = attr.map(|(n, size)| (to_long(n), to_long(size)));
        // O_CREAT alone cannot tell whether this call made the queue, and
        // only the maker should unlink it: try O_EXCL first, then open.
        const ATTEMPTS: usize = 64;
        for _ in 0..ATTEMPTS {
            let made = sys::open(
                name.as_str(),
                &self.flags(true, true),
                self.mode.bits(),
                kernel_attr,
            );
            match made {
                Ok(mqd) => {
                    return Queue::new(mqd, name, object.into(), true, Some(self.mode.bits()))
                }
                Err(err) if err.raw_os_error() == Some(libc::EEXIST) && !self.exclusive => {
                    match sys::open(name.as_str(), &self.flags(false, false), 0, None) {
                        Ok(mqd) => {
                            // On refusal `mqd` is closed here: nothing was
                            // sent, and an opener never unlinks.
                            self.check_adoptable(&object, &mqd)?;
                            return Queue::new(mqd, name, object.into(), false, None);
                        }
                        // Unlinked in between: try to create it again.
                        Err(err) if err.raw_os_error() == Some(libc::ENOENT) => continue,
                        Err(err) => return Err(open_error(object.into(), err)),
                    }
                }
                Err(err) => return Err(create_error(object.into(), err, attr)),
            }
        }
        Err(Error::os(
            object,
            "mq_open",
            io::Error::from_raw_os_error(libc::EEXIST),
        )
        .with_hint("the name was unlinked and recreated by others on every attempt"))
    }

    /// Refuses the queue `mqd` is open on, which was there before this
    /// create, unless this user owns it and its mode is the one asked. The
    /// owner and mode come from `fstat` on the descriptor, so they are the
    /// opened queue's even if the name has been reused since.
    fn check_adoptable(&self, object: &str, mqd: &sys::Mqd) -> Result<()> {
        let (uid, mode) = sys::owner_and_mode(mqd).map_err(|e| Error::os(object, "fstat", e))?;
        let found = ownership::Found {
            uid,
            creator_uid: None,
            mode,
        };
        ownership::check_adoptable(object, found, self.mode.bits(), sys::euid())
    }

    /// `mq_open(name)` - opens an existing queue; the sizes and mode options
    /// are ignored. The handle never unlinks the name.
    ///
    /// # Errors
    /// [`Error::Os`] with ENOENT when no queue has that name, EACCES when
    /// this user may not open it for the access asked, and other failures
    /// of `mq_open`.
    ///
    /// # Examples
    /// See [`QueueOptions`].
    ///
    /// # References
    /// mq_open(3)
    #[doc(alias = "mq_open")]
    pub fn open(&self, name: &PosixName) -> Result<Queue> {
        let object = object_of(name);
        match sys::open(name.as_str(), &self.flags(false, false), 0, None) {
            Ok(mqd) => Queue::new(mqd, name, object.into(), false, None),
            Err(err) => Err(open_error(object.into(), err)),
        }
    }

    /// The (max messages, message size) to pass to `mq_open`, with the
    /// kernel's default for the one not given; `None` when neither was.
    fn requested_attr(&self, object: &str) -> Result<Option<(u64, u64)>> {
        if self.max_messages == Some(0) || self.max_message_size == Some(0) {
            return Err(Error::Unsupported {
                object: object.into(),
                what: "a queue of zero messages or zero-byte messages".into(),
                reason: "max messages and max message size must be at least 1".into(),
            });
        }
        Ok(match (self.max_messages, self.max_message_size) {
            (None, None) => None,
            (n, size) => Some((
                n.map_or_else(default_max_messages, |n| n as u64),
                size.map_or_else(default_message_size, |s| s as u64),
            )),
        })
    }
}

fn default_max_messages() -> u64 {
    sys::proc_limit("msg_default").unwrap_or(10)
}

fn default_message_size() -> u64 {
    sys::proc_limit("msgsize_default").unwrap_or(8192)
}

fn to_long(n: u64) -> i64 {
    // Larger values are above every limit; the kernel refuses them and the
    // error is explained from the value asked for, not this one.
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A limit that explains an EINVAL from `mq_open(O_CREAT)`.
#[derive(Debug, PartialEq, Eq)]
struct Broken {
    what: &'static str,
    requested: u64,
    limit: u64,
    set_in: &'static str,
}

/// Which limit refused `max_messages` x `size`, following the kernel's
/// `mq_attr_ok`: the hard limits for a process with CAP_SYS_RESOURCE, the
/// /proc limits for others.
fn broken_attr_limit(
    max_messages: u64,
    size: u64,
    privileged: bool,
    msg_max: Option<u64>,
    msgsize_max: Option<u64>,
) -> Option<Broken> {
    let (msg_limit, msg_set_in, size_limit, size_set_in) = if privileged {
        (
            Some(HARD_MSGMAX),
            "the kernel (HARD_MSGMAX; fixed, even for root)",
            Some(HARD_MSGSIZEMAX),
            "the kernel (HARD_MSGSIZEMAX; fixed, even for root)",
        )
    } else {
        (msg_max, MSG_MAX_FILE, msgsize_max, MSGSIZE_MAX_FILE)
    };
    if let Some(limit) = msg_limit.filter(|&limit| max_messages > limit) {
        return Some(Broken {
            what: "max messages",
            requested: max_messages,
            limit,
            set_in: msg_set_in,
        });
    }
    if let Some(limit) = size_limit.filter(|&limit| size > limit) {
        return Some(Broken {
            what: "max message size in bytes",
            requested: size,
            limit,
            set_in: size_set_in,
        });
    }
    None
}

/// The bytes RLIMIT_MSGQUEUE charges a new queue of `max_messages` x
/// `size`: the kernel's `mqueue_get_inode` adds to the message bytes one
/// `struct msg_msg` per message and one `struct posix_msg_tree_node` per
/// priority that may be in use (at most one per message, at most
/// MQ_PRIO_MAX), each six machine words on Linux.
fn charged_bytes(max_messages: u64, size: u64) -> u64 {
    const WORDS: u64 = 6 * std::mem::size_of::<usize>() as u64;
    let bookkeeping = max_messages.saturating_mul(WORDS).saturating_add(
        max_messages
            .min(u64::from(PRIORITY_MAX) + 1)
            .saturating_mul(WORDS),
    );
    max_messages
        .saturating_mul(size)
        .saturating_add(bookkeeping)
}

/// The error for a failed `mq_open(O_CREAT)`, naming the limit broken.
fn create_error(object: ObjectName, err: io::Error, attr: Option<(u64, u64)>) -> Error {
    let limit = |b: Broken, object: ObjectName| Error::LimitExceeded {
        object,
        what: b.what,
        requested: b.requested,
        limit: b.limit,
        set_in: b.set_in,
    };
    match err.raw_os_error() {
        Some(libc::EINVAL) => {
            let found = attr.and_then(|(n, size)| {
                broken_attr_limit(
                    n,
                    size,
                    sys::has_cap_sys_resource(),
                    sys::proc_limit("msg_max"),
                    sys::proc_limit("msgsize_max"),
                )
            });
            match found {
                Some(broken) => limit(broken, object),
                None => Error::os(object, "mq_open", err),
            }
        }
        Some(libc::ENOSPC) => match sys::proc_limit("queues_max") {
            // The kernel refuses when the count already equals the limit:
            // this queue would have been one more.
            Some(max) => limit(
                Broken {
                    what: "number of queues",
                    requested: max + 1,
                    limit: max,
                    set_in: QUEUES_MAX_FILE,
                },
                object,
            ),
            None => Error::os(object, "mq_open", err),
        },
        Some(libc::EMFILE) if !sys::at_descriptor_limit() => match sys::msgqueue_rlimit() {
            Some(rlimit) => {
                let (n, size) =
                    attr.unwrap_or_else(|| (default_max_messages(), default_message_size()));
                Error::QueueBytesLimit {
                    object,
                    needed: charged_bytes(n, size),
                    max_messages: n,
                    message_size: size,
                    // Linux keeps the per-user count in the kernel only.
                    in_use: None,
                    limit: rlimit,
                }
            }
            None => Error::os(object, "mq_open", err),
        },
        Some(libc::EEXIST) => Error::os(object, "mq_open", err)
            .with_hint("a queue by that name already exists: remove it first, or open it instead"),
        _ => open_error(object, err),
    }
}

/// The error for a failed `mq_open` of an existing queue.
fn open_error(object: ObjectName, err: io::Error) -> Error {
    match err.raw_os_error() {
        Some(libc::ENOENT) => {
            Error::os(object, "mq_open", err).with_hint("no queue has that name; create it first")
        }
        Some(libc::EMFILE) => Error::os(object, "mq_open", err)
            .with_hint("this process has as many descriptors open as RLIMIT_NOFILE allows"),
        _ => Error::os(object, "mq_open", err),
    }
}

/// `mq_unlink(name)` - removes the name; the queue lives on until every
/// descriptor of it is closed, and a new queue may be created under the
/// name at once.
///
/// # Errors
/// [`Error::Os`] with ENOENT when no queue has that name, EACCES when this
/// user may not remove it.
///
/// # Examples
///
/// ```
/// use unipc::message::posix_mq::{self, QueueOptions};
/// use unipc::name::PosixName;
///
/// let name: PosixName = format!("/unipc-doc-unlink-{}", std::process::id()).parse()?;
/// let queue = QueueOptions::new().max_messages(1).max_message_size(8).create(&name)?.keep();
/// posix_mq::unlink(&name)?;
/// assert!(QueueOptions::new().open(&name).is_err());
/// drop(queue);
/// # Ok::<(), unipc::Error>(())
/// ```
///
/// # References
/// mq_unlink(3)
#[doc(alias = "mq_unlink")]
pub fn unlink(name: &PosixName) -> Result<()> {
    let forget = crate::creator::Forget::queue(name.as_str());
    sys::unlink(name.as_str()).map_err(|err| {
        let not_found = err.raw_os_error() == Some(libc::ENOENT);
        let err = Error::os(object_of(name), "mq_unlink", err);
        if not_found {
            err.with_hint("no queue has that name")
        } else {
            err
        }
    })?;
    crate::creator::Forget::done(forget);
    Ok(())
}

/// A queue's attributes, as `mq_getattr` reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Attributes {
    /// Messages waiting now (`mq_curmsgs`).
    pub messages: usize,
    /// Messages the queue holds before a send waits (`mq_maxmsg`).
    pub max_messages: usize,
    /// The largest message, in bytes (`mq_msgsize`).
    pub max_message_size: usize,
    /// Whether this descriptor is non-blocking (`O_NONBLOCK` in `mq_flags`).
    pub nonblocking: bool,
}

/// An open POSIX message queue: `mq_close` on drop, and `mq_unlink` too
/// when this handle created the queue (unless [`keep`](Self::keep) was
/// called).
///
/// Send and receive through [`Messenger`] with [`Tag::Priority`] (and
/// [`Tag::None`] for priority 0), or with [`send_priority`](Self::send_priority)
/// and [`recv_priority`](Self::recv_priority). A queue may be shared between
/// threads.
///
/// # Examples
///
/// ```
/// use unipc::message::posix_mq::QueueOptions;
/// use unipc::message::{Messenger, Tag, Wait};
/// use unipc::name::PosixName;
///
/// let name: PosixName = format!("/unipc-doc-queue-{}", std::process::id()).parse()?;
/// let queue = QueueOptions::new().max_messages(4).max_message_size(64).create(&name)?;
/// queue.send_tagged(b"low", Tag::Priority(1), Wait::Forever)?;
/// queue.send_tagged(b"high", Tag::Priority(9), Wait::Forever)?;
/// assert_eq!(queue.recv_vec(Wait::Never)?, (b"high".to_vec(), Tag::Priority(9)));
/// assert_eq!(queue.recv()?, b"low");
/// assert!(matches!(queue.try_recv(), Err(unipc::Error::Empty { .. })));
/// # Ok::<(), unipc::Error>(())
/// ```
///
/// # References
/// mq_overview(7), mq_close(3)
#[doc(alias = "mqd_t", alias = "mq_close")]
#[derive(Debug)]
pub struct Queue {
    mqd: sys::Mqd,
    name: PosixName,
    object: ObjectName,
    max_messages: usize,
    max_message_size: usize,
    created: bool,
    /// Whether this handle last made its descriptor non-blocking: then a
    /// call that must not wait is a plain `mq_send`/`mq_receive`, without
    /// the timespec a passed deadline costs the kernel to copy and check.
    nonblocking: AtomicBool,
    /// Unlinks the name on drop (a queue this handle created, unless
    /// kept) while it still leads to this queue.
    guard: Guard<QueueName>,
}

impl Queue {
    /// Finishes an open: sets the mode asked (on a queue this call
    /// created) and reads the sizes, which never change afterwards.
    fn new(
        mqd: sys::Mqd,
        name: &PosixName,
        object: ObjectName,
        created: bool,
        mode: Option<u32>,
    ) -> Result<Queue> {
        let label = object.to_string();
        let undo = |err: Error| {
            if created {
                let _ = sys::unlink(name.as_str());
            }
            err
        };
        if let Some(mode) = mode {
            sys::set_mode(&mqd, mode).map_err(|e| undo(Error::os(&*object, "fchmod", e)))?;
        }
        let attr = sys::attributes(&mqd).map_err(|e| undo(Error::os(&*object, "mq_getattr", e)))?;
        let identity = if created {
            Some(sys::identity(&mqd).map_err(|e| undo(Error::os(&*object, "fstat", e)))?)
        } else {
            None
        };
        Ok(Queue {
            guard: {
                let guard = Guard::new(
                    QueueName {
                        name: name.clone(),
                        identity,
                    },
                    created,
                );
                match identity {
                    Some(id) => guard.recorded(Class::Mq, &label, id),
                    None => guard,
                }
            },
            mqd,
            name: name.clone(),
            object,
            max_messages: attr.max_messages as usize,
            max_message_size: attr.message_size as usize,
            created,
            nonblocking: AtomicBool::new(attr.nonblocking),
        })
    }

    /// The absolute time each try of a call waiting as `wait` must end by
    /// (recomputed after EINTR); `None`, a plain call, when it must not wait
    /// and the descriptor is already non-blocking, or when it may wait
    /// forever.
    fn call_deadline(&self, wait: Wait) -> impl Fn() -> Option<Timespec> {
        let plain = wait == Wait::Never && self.nonblocking.load(Ordering::Relaxed);
        let deadline = Deadline::of(wait);
        move || if plain { None } else { realtime(deadline) }
    }

    /// `mq_open(name, O_CREAT | O_RDWR)` - [`QueueOptions::create`] with the
    /// defaults.
    ///
    /// # Errors
    /// As [`QueueOptions::create`].
    #[doc(alias = "mq_open")]
    pub fn create(name: &PosixName) -> Result<Queue> {
        QueueOptions::new().create(name)
    }

    /// `mq_open(name, O_RDWR)` - [`QueueOptions::open`] with the defaults.
    ///
    /// # Errors
    /// As [`QueueOptions::open`].
    #[doc(alias = "mq_open")]
    pub fn open(name: &PosixName) -> Result<Queue> {
        QueueOptions::new().open(name)
    }

    /// The queue's name.
    pub fn name(&self) -> &PosixName {
        &self.name
    }

    /// Whether this handle created the queue (and so unlinks it on drop,
    /// unless kept).
    pub fn created(&self) -> bool {
        self.created
    }

    /// Leaves the name in place when this handle is dropped.
    pub fn keep(mut self) -> Self {
        self.guard.keep();
        self
    }

    /// `mq_getattr` - the queue's sizes, how many messages wait now, and
    /// whether this descriptor is non-blocking.
    ///
    /// # Errors
    /// [`Error::Os`] when `mq_getattr` fails.
    ///
    /// # References
    /// mq_getattr(3)
    #[doc(alias = "mq_getattr")]
    pub fn attributes(&self) -> Result<Attributes> {
        let attr = sys::attributes(&self.mqd).map_err(|e| self.os("mq_getattr", e))?;
        Ok(Attributes {
            messages: attr.current as usize,
            max_messages: attr.max_messages as usize,
            max_message_size: attr.message_size as usize,
            nonblocking: attr.nonblocking,
        })
    }

    /// `mq_setattr` - makes this descriptor non-blocking or blocking. The
    /// flag belongs to the open descriptor, shared by every thread using
    /// this handle.
    ///
    /// # Errors
    /// [`Error::Os`] when `mq_setattr` fails.
    ///
    /// # References
    /// mq_setattr(3)
    #[doc(alias = "mq_setattr")]
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<()> {
        sys::set_nonblocking(&self.mqd, nonblocking).map_err(|e| self.os("mq_setattr", e))?;
        self.nonblocking.store(nonblocking, Ordering::Relaxed);
        Ok(())
    }

    /// `fstat` - the queue's permission bits.
    ///
    /// # Errors
    /// [`Error::Os`] when `fstat` fails.
    pub fn mode(&self) -> Result<Mode> {
        sys::mode(&self.mqd)
            .map(Mode::from_bits_truncate)
            .map_err(|e| self.os("fstat", e))
    }

    /// `mq_send`/`mq_timedsend` - sends `message` with `priority`, waiting
    /// for room as `wait` says.
    ///
    /// A timed wait keeps a monotonic deadline and gives each call the
    /// absolute CLOCK_REALTIME time it takes, computed just before the
    /// call: setting the clock during a call moves that call's end. [`Wait::Never`] passes a deadline
    /// already past, so it never waits even on a blocking descriptor.
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`] when `message` is longer than the queue's
    /// message size (checked before the call); [`Error::LimitExceeded`] for
    /// a priority above [`PRIORITY_MAX`]; [`Error::Full`] when the queue is
    /// full and `wait` is [`Wait::Never`] or the descriptor is non-blocking;
    /// [`Error::TimedOut`]; [`Error::Os`] (EBADF when the handle was opened
    /// for reading only).
    ///
    /// # Examples
    /// See [`Queue`].
    ///
    /// # References
    /// mq_send(3)
    #[doc(alias = "mq_send", alias = "mq_timedsend")]
    pub fn send_priority(&self, message: &[u8], priority: u32, wait: Wait) -> Result<()> {
        if message.len() > self.max_message_size {
            return Err(Error::MessageTooLarge {
                object: self.object.clone(),
                size: message.len(),
                limit: self.max_message_size,
            });
        }
        if priority > PRIORITY_MAX {
            return Err(Error::LimitExceeded {
                object: self.object.clone(),
                what: "priority",
                requested: priority.into(),
                limit: PRIORITY_MAX.into(),
                set_in: "the kernel (MQ_PRIO_MAX = 32768)",
            });
        }
        let deadline = self.call_deadline(wait);
        loop {
            match sys::send(&self.mqd, message, priority, deadline()) {
                Ok(()) => return Ok(()),
                Err(err) if err.raw_os_error() == Some(libc::EINTR) => continue,
                Err(err) => return Err(self.transfer_error("mq_send", err, wait, true)),
            }
        }
    }

    /// `mq_receive`/`mq_timedreceive` - receives the oldest message of the
    /// highest priority into `buf`, waiting as `wait` says. Returns its
    /// length and priority.
    ///
    /// `buf` must hold the queue's message size (see [`Queue::attributes`]),
    /// however short the message waiting: the kernel refuses smaller buffers
    /// and leaves the message queued.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] with `needed` = the queue's message size;
    /// [`Error::Empty`] when nothing waits and `wait` is [`Wait::Never`] or
    /// the descriptor is non-blocking; [`Error::TimedOut`]; [`Error::Os`]
    /// (EBADF when the handle was opened for writing only).
    ///
    /// # Examples
    /// See [`Queue`].
    ///
    /// # References
    /// mq_receive(3)
    #[doc(alias = "mq_receive", alias = "mq_timedreceive")]
    pub fn recv_priority(&self, buf: &mut [u8], wait: Wait) -> Result<(usize, u32)> {
        let deadline = self.call_deadline(wait);
        loop {
            match sys::receive(&self.mqd, buf, deadline()) {
                Ok(got) => return Ok(got),
                Err(err) if err.raw_os_error() == Some(libc::EINTR) => continue,
                Err(err) if err.raw_os_error() == Some(libc::EMSGSIZE) => {
                    return Err(Error::BufferTooSmall {
                        object: self.object.clone(),
                        buffer: buf.len(),
                        needed: Some(self.max_message_size),
                    })
                }
                Err(err) => return Err(self.transfer_error("mq_receive", err, wait, false)),
            }
        }
    }

    /// `mq_notify(SIGEV_SIGNAL)` - asks the kernel to send `signal` to this
    /// process, with `value` in `si_value` and `si_code` = `SI_MESGQ`, when a
    /// message arrives in the empty queue.
    ///
    /// One-shot: the registration ends with the signal. It is not sent if a
    /// receiver was already waiting in `mq_receive` (that receiver gets the
    /// message instead). The caller handles the signal (a handler,
    /// `signalfd` or `sigwaitinfo`); a realtime signal (`SIGRTMIN()` and
    /// up) is queued rather than merged with others.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a number that is not a signal;
    /// [`Error::Os`] with EBUSY when a process (maybe this one) is already
    /// registered on this queue.
    ///
    /// # References
    /// mq_notify(3), sigevent(7)
    #[doc(alias = "mq_notify")]
    pub fn notify_signal(&self, signal: i32, value: isize) -> Result<()> {
        let max = sys::signal_max();
        if !(1..=max).contains(&signal) {
            return Err(Error::Unsupported {
                object: self.object.clone(),
                what: format!("notification by signal {signal}"),
                reason: format!(
                    "signal numbers run from 1 to SIGRTMAX ({})",
                    libc::SIGRTMAX()
                ),
            });
        }
        sys::notify_signal(&self.mqd, signal, value).map_err(|e| self.notify_error(e))
    }

    /// `mq_notify(SIGEV_THREAD)` - runs `on_arrival` on a new thread when a
    /// message arrives in the empty queue.
    ///
    /// This is what glibc's `SIGEV_THREAD` is made of, without its C
    /// function pointer: the kernel writes a cookie to a netlink socket when
    /// a message arrives (or when the registration is removed), and a
    /// thread that waits on that socket runs the closure. No signal is
    /// involved, so no signal disposition changes. The thread starts now
    /// and ends when the registration does; [`Notifier::join`] tells how.
    ///
    /// One-shot, like every `mq_notify` registration: call again from the
    /// closure (on another handle) to keep being told. The kernel removes the
    /// registration, and the closure does not run, when this process calls
    /// [`cancel_notify`](Self::cancel_notify) or closes any descriptor of
    /// the queue, this handle's included. Dropping the [`Notifier`] leaves the
    /// registration in place.
    ///
    /// # Errors
    /// [`Error::Os`] with EBUSY when a process (maybe this one) is already
    /// registered on this queue; failures to make the socket or the thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use unipc::message::posix_mq::{Notice, QueueOptions};
    /// use unipc::message::Messenger;
    /// use unipc::name::PosixName;
    ///
    /// let name: PosixName = format!("/unipc-doc-notify-{}", std::process::id()).parse()?;
    /// let queue = QueueOptions::new().max_messages(2).max_message_size(16).create(&name)?;
    /// let (tx, rx) = mpsc::channel();
    /// let notifier = queue.notify_thread(move || tx.send("arrived").unwrap())?;
    /// queue.send(b"hello")?; // another process would do this
    /// assert_eq!(notifier.join()?, Notice::MessageArrived);
    /// assert_eq!(rx.recv().unwrap(), "arrived");
    /// assert_eq!(queue.recv()?, b"hello");
    /// # Ok::<(), unipc::Error>(())
    /// ```
    ///
    /// # References
    /// mq_notify(3), ipc/mqueue.c in the kernel (SIGEV_THREAD and
    /// NOTIFY_COOKIE_LEN)
    #[doc(alias = "mq_notify", alias = "SIGEV_THREAD")]
    pub fn notify_thread<F>(&self, on_arrival: F) -> Result<Notifier>
    where
        F: FnOnce() + Send + 'static,
    {
        static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed).to_ne_bytes();
        let mut cookie = [0; sys::COOKIE_LEN];
        cookie[..token.len()].copy_from_slice(&token);

        let socket = sys::notification_socket().map_err(|e| self.os("socket", e))?;
        sys::notify_socket(&self.mqd, socket.as_fd(), &cookie).map_err(|e| self.notify_error(e))?;

        let object = self.object.clone();
        let spawned = std::thread::Builder::new()
            .name("unipc-mq-notify".into())
            .spawn(move || {
                let (len, got) = sys::recv_cookie(socket.as_fd())
                    .map_err(|e| Error::os(&*object, "recv notification", e))?;
                match read_cookie(&got[..len.min(got.len())], &token) {
                    Some(Notice::MessageArrived) => {
                        on_arrival();
                        Ok(Notice::MessageArrived)
                    }
                    Some(Notice::Removed) => Ok(Notice::Removed),
                    None => Err(Error::os(
                        object,
                        "recv notification",
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            "unexpected data on the notification socket",
                        ),
                    )),
                }
            });
        match spawned {
            Ok(thread) => Ok(Notifier {
                object: self.object.clone(),
                thread,
            }),
            Err(err) => {
                let _ = sys::notify_cancel(&self.mqd);
                Err(self.os("spawn notification thread", err))
            }
        }
    }

    /// `mq_notify(NULL)` - removes this process's registration, if it has
    /// one; a [`Notifier`] then ends with [`Notice::Removed`].
    ///
    /// # Errors
    /// [`Error::Os`] when `mq_notify` fails.
    ///
    /// # References
    /// mq_notify(3)
    #[doc(alias = "mq_notify")]
    pub fn cancel_notify(&self) -> Result<()> {
        sys::notify_cancel(&self.mqd).map_err(|e| self.os("mq_notify", e))
    }

    fn os(&self, op: &'static str, err: impl Into<io::Error>) -> Error {
        Error::os(&*self.object, op, err)
    }

    fn notify_error(&self, err: io::Error) -> Error {
        let busy = err.raw_os_error() == Some(libc::EBUSY);
        let err = self.os("mq_notify", err);
        if busy {
            err.with_hint(
                "a process (maybe this one) is already registered for notification on this queue; only one may be at a time",
            )
        } else {
            err
        }
    }

    fn transfer_error(&self, op: &'static str, err: io::Error, wait: Wait, sending: bool) -> Error {
        let would_block = || {
            let object = self.object.clone();
            if sending {
                Error::Full { object }
            } else {
                Error::Empty { object }
            }
        };
        match (err.raw_os_error(), wait) {
            (Some(libc::EAGAIN), _) => would_block(),
            (Some(libc::ETIMEDOUT), Wait::For(timeout)) => Error::TimedOut {
                object: self.object.clone(),
                timeout,
            },
            (Some(libc::ETIMEDOUT), _) => would_block(),
            (Some(libc::EBADF), _) => self.os(op, err).with_hint(if sending {
                "this handle was opened for receiving only; open the queue for sending to send"
            } else {
                "this handle was opened for sending only; open the queue for receiving to receive"
            }),
            _ => self.os(op, err),
        }
    }
}

/// A queue's name and the (device, inode) of the queue a handle created
/// under it, for its [`Guard`].
#[derive(Debug)]
struct QueueName {
    name: PosixName,
    identity: Option<(u64, u64)>,
}

impl Made for QueueName {
    /// Whether the name still leads to the queue this handle created. Once
    /// someone else has unlinked it (the bench's peer does, by design),
    /// another user may have created a new queue under the name, and a
    /// privileged creator's unlink would remove that one.
    ///
    /// There is no unlink by descriptor for queues, so a name replaced
    /// between this look and the unlink is still removed; the window is two
    /// system calls wide instead of the handle's whole life. When the look
    /// itself is refused (EACCES) the caller is unprivileged, and the
    /// kernel's sticky /dev/mqueue already keeps it from unlinking another
    /// user's queue, so the unlink goes ahead.
    fn is_still_ours(&self) -> io::Result<bool> {
        let Some(identity) = self.identity else {
            return Ok(true);
        };
        let probe = sys::OpenFlags {
            read: true,
            write: false,
            create: false,
            exclusive: false,
            nonblocking: true,
        };
        Ok(match sys::open(self.name.as_str(), &probe, 0, None) {
            Ok(mqd) => sys::identity(&mqd).is_ok_and(|found| found == identity),
            Err(err) => err.raw_os_error() == Some(libc::EACCES),
        })
    }

    /// Already unlinked by someone else is fine: the name is gone either
    /// way.
    fn remove(&self) -> io::Result<()> {
        sys::unlink(self.name.as_str())
    }
}

impl AsFd for Queue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.mqd.as_fd()
    }
}

impl Messenger for Queue {
    fn object(&self) -> ObjectName {
        self.object.clone()
    }

    /// The sizes read when the queue was opened; they never change.
    fn limits(&self) -> Result<Limits> {
        Ok(Limits {
            max_message_size: self.max_message_size,
            max_messages: Some(self.max_messages),
        })
    }

    /// [`Queue::send_priority`]; [`Tag::None`] is priority 0, and
    /// [`Tag::Type`] is [`Error::Unsupported`].
    fn send_tagged(&self, message: &[u8], tag: Tag, wait: Wait) -> Result<()> {
        let priority = match tag {
            Tag::None => 0,
            Tag::Priority(priority) => priority,
            Tag::Type(_) => {
                return Err(unsupported_tag(
                    self.object.clone(),
                    tag,
                    "a priority (Tag::Priority), not a type",
                ))
            }
        };
        self.send_priority(message, priority, wait)
    }

    /// [`Queue::recv_priority`]; the tag is always [`Tag::Priority`], 0
    /// included.
    fn recv_into(&self, buf: &mut [u8], wait: Wait) -> Result<Received> {
        let (len, priority) = self.recv_priority(buf, wait)?;
        Ok(Received {
            len,
            tag: Tag::Priority(priority),
        })
    }

    /// [`Queue::set_nonblocking`]: a call that must not wait is then a
    /// plain `mq_send`/`mq_receive`.
    fn set_polling(&self, polling: bool) -> Result<()> {
        self.set_nonblocking(polling)
    }
}

/// How a [`Queue::notify_thread`] registration ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// A message arrived in the empty queue, and the closure ran.
    MessageArrived,
    /// The registration was removed (cancelled, or a descriptor of the
    /// queue was closed in this process) before any message arrived; the
    /// closure did not run.
    Removed,
}

/// The thread of a [`Queue::notify_thread`] registration. Dropping it
/// detaches the thread, which still runs the closure if a message arrives.
#[derive(Debug)]
pub struct Notifier {
    object: ObjectName,
    thread: JoinHandle<Result<Notice>>,
}

impl Notifier {
    /// Waits for the registration to end: a message arrived and the closure
    /// returned, or the registration was removed.
    ///
    /// # Errors
    /// [`Error::Os`] when reading the notification failed. A panic in the
    /// closure is resumed here.
    pub fn join(self) -> Result<Notice> {
        match self.thread.join() {
            Ok(outcome) => outcome,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Whether the registration has ended (and the closure, if it ran, has
    /// returned).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// The queue the registration is on, as errors name it.
    pub fn object(&self) -> &str {
        &self.object
    }
}

/// What a cookie from the kernel says, if it is ours and whole.
fn read_cookie(got: &[u8], token: &[u8]) -> Option<Notice> {
    if got.len() != sys::COOKIE_LEN || !got.starts_with(token) {
        return None;
    }
    match got[sys::COOKIE_LEN - 1] {
        sys::NOTIFY_WOKENUP => Some(Notice::MessageArrived),
        sys::NOTIFY_REMOVED => Some(Notice::Removed),
        _ => None,
    }
}

/// The absolute CLOCK_REALTIME time `mq_timedsend`/`mq_timedreceive` take
/// for `deadline`, made just before each call (the one place the monotonic
/// deadline meets the realtime clock, so a call retried after `EINTR` gets
/// the time left): none to wait forever, the epoch (long past) once the
/// deadline has passed.
pub(crate) fn realtime(deadline: Deadline) -> Option<Timespec> {
    match deadline.remaining()? {
        left if left.is_zero() => Some(Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        }),
        left => Some(add(sys::realtime_now(), left)),
    }
}

/// `now + timeout`, normalized, and clamped to the latest deadline the
/// kernel accepts.
fn add(now: Timespec, timeout: Duration) -> Timespec {
    let secs = i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX);
    let mut tv_sec = now.tv_sec.saturating_add(secs);
    let mut tv_nsec = now.tv_nsec + i64::from(timeout.subsec_nanos());
    if tv_nsec >= 1_000_000_000 {
        tv_nsec -= 1_000_000_000;
        tv_sec = tv_sec.saturating_add(1);
    }
    if tv_sec > LATEST_DEADLINE_SECS {
        tv_sec = LATEST_DEADLINE_SECS;
        tv_nsec = 0;
    }
    Timespec { tv_sec, tv_nsec }
}

fn proc_limit(path: &str) -> Option<usize> {
    sys_proc::read_usize(path)
}

/// The POSIX message queue's entry in the facility registry.
pub static FACILITY: Facility = Facility {
    name: "posix-mq",
    scheme: Some("posix-mq"),
    summary: "POSIX message queue: whole messages with priorities, found by an IPC name",
    addressing: "posix-mq:/NAME",
    properties: Properties {
        shape: Shape::Messages,
        direction: Direction::TwoWay,
        tags: Tags::Priority,
        destructive_read: true,
        peek: false,
        naming: Naming::IpcName,
        reach: Reach::Host,
        persistence: Persistence::Kernel,
        permissions: "mode and owner of the queue, like a file",
        reliable: true,
        after_crash: "the queue and its messages stay until unlinked",
    },
    limits: || {
        let memlock = rustix::process::getrlimit(rustix::process::Resource::Msgqueue);
        vec![
            LiveLimit::from_proc(
                "msg_max",
                "/proc/sys/fs/mqueue/msg_max",
                " messages per queue",
            ),
            LiveLimit::from_proc(
                "msgsize_max",
                "/proc/sys/fs/mqueue/msgsize_max",
                " bytes per message",
            ),
            LiveLimit::from_proc("queues_max", "/proc/sys/fs/mqueue/queues_max", " queues"),
            LiveLimit {
                name: "RLIMIT_MSGQUEUE",
                value: match memlock.current {
                    Some(bytes) => format!("{bytes} bytes per user"),
                    None => "unlimited".to_owned(),
                },
                source: "setrlimit(RLIMIT_MSGQUEUE)",
            },
        ]
    },
    max_message: || {
        proc_limit("/proc/sys/fs/mqueue/msgsize_max").map(|bytes| MessageCap {
            bytes,
            set_by: "msgsize_max in /proc/sys/fs/mqueue/msgsize_max".to_owned(),
        })
    },
    #[cfg(feature = "bench")]
    connector: Some(&Connector),
};

#[cfg(feature = "bench")]
use crate::facility::{self, Link, LinkOptions, MessageLink, PendingLink, RawIo, Ticket};

/// Joins two processes with two queues, one each way, named after the
/// parent's pid; the peer removes the names once it has both open.
#[cfg(feature = "bench")]
struct Connector;

#[cfg(feature = "bench")]
struct Pending(Queue, Queue);

#[cfg(feature = "bench")]
fn link_names(base: &str) -> Result<(PosixName, PosixName)> {
    Ok((
        PosixName::new(&format!("{base}-to-peer"))?,
        PosixName::new(&format!("{base}-from-peer"))?,
    ))
}

#[cfg(feature = "bench")]
fn raw_io<'a>(tx: &'a Queue, rx: &'a Queue) -> RawIo<'a> {
    RawIo::PosixMq {
        read: rx.as_fd(),
        write: tx.as_fd(),
    }
}

#[cfg(feature = "bench")]
impl facility::Connector for Connector {
    fn prepare(
        &self,
        _scratch: &std::path::Path,
        options: &LinkOptions,
        announce: &mut dyn FnMut(&facility::CreatedObject),
    ) -> Result<(Box<dyn PendingLink>, Ticket)> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let base = format!(
            "/unipc-link-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let (to_peer, from_peer) = link_names(&base)?;
        let depth = proc_limit("/proc/sys/fs/mqueue/msg_max")
            .unwrap_or(10)
            .min(10);
        let options = QueueOptions::new()
            .max_messages(depth)
            .max_message_size(options.max_message_size)
            .exclusive(true);
        // Told before they exist, so no moment has them unannounced.
        announce(&facility::CreatedObject::PosixMq(to_peer.clone()));
        announce(&facility::CreatedObject::PosixMq(from_peer.clone()));
        let to_peer = options.create(&to_peer)?;
        let from_peer = options.create(&from_peer)?;
        Ok((Box::new(Pending(to_peer, from_peer)), Ticket::address(base)))
    }

    fn join(&self, ticket: Ticket, _: &LinkOptions) -> Result<Box<dyn Link>> {
        let (to_peer, from_peer) = link_names(&ticket.address)?;
        let rx = QueueOptions::new().access(Access::Read).open(&to_peer)?;
        let tx = QueueOptions::new().access(Access::Write).open(&from_peer)?;
        // Both processes hold both queues now, so the names have done their
        // work: removing them here means a run killed from now on leaves
        // nothing behind. The parent's handles find them gone, which is fine.
        unlink(&to_peer)?;
        unlink(&from_peer)?;
        Ok(Box::new(MessageLink::new(tx, rx, raw_io)?))
    }
}

#[cfg(feature = "bench")]
impl PendingLink for Pending {
    fn establish(self: Box<Self>) -> Result<Box<dyn Link>> {
        let Pending(tx, rx) = *self;
        Ok(Box::new(MessageLink::new(tx, rx, raw_io)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(tv_sec: i64, tv_nsec: i64) -> Timespec {
        Timespec { tv_sec, tv_nsec }
    }

    #[test]
    fn deadlines_carry_nanoseconds_and_clamp() {
        let got = add(ts(10, 999_999_999), Duration::new(1, 2));
        assert_eq!((got.tv_sec, got.tv_nsec), (12, 1));
        let got = add(ts(10, 0), Duration::from_millis(250));
        assert_eq!((got.tv_sec, got.tv_nsec), (10, 250_000_000));
        let got = add(ts(1_700_000_000, 5), Duration::MAX);
        assert_eq!((got.tv_sec, got.tv_nsec), (LATEST_DEADLINE_SECS, 0));
        let never = realtime(Deadline::of(Wait::Never)).unwrap();
        assert_eq!((never.tv_sec, never.tv_nsec), (0, 0));
        assert!(realtime(Deadline::of(Wait::Forever)).is_none());
        let soon = realtime(Deadline::of(Wait::For(Duration::from_secs(60)))).unwrap();
        assert!(soon.tv_sec > sys::realtime_now().tv_sec);
    }

    #[test]
    fn einval_is_explained_by_the_limit_that_applies() {
        // Unprivileged: the /proc limits.
        assert_eq!(
            broken_attr_limit(11, 100, false, Some(10), Some(8192)),
            Some(Broken {
                what: "max messages",
                requested: 11,
                limit: 10,
                set_in: MSG_MAX_FILE
            })
        );
        assert_eq!(
            broken_attr_limit(10, 8193, false, Some(10), Some(8192)).map(|b| (b.limit, b.set_in)),
            Some((8192, MSGSIZE_MAX_FILE))
        );
        // Privileged: only the hard limits.
        assert_eq!(broken_attr_limit(11, 100, true, Some(10), Some(8192)), None);
        assert_eq!(
            broken_attr_limit(HARD_MSGMAX + 1, 1, true, Some(10), Some(8192)).map(|b| b.limit),
            Some(HARD_MSGMAX)
        );
        assert_eq!(
            broken_attr_limit(1, HARD_MSGSIZEMAX + 1, true, None, None).map(|b| b.limit),
            Some(HARD_MSGSIZEMAX)
        );
        // Within every limit: EINVAL has another cause.
        assert_eq!(
            broken_attr_limit(10, 8192, false, Some(10), Some(8192)),
            None
        );
        // Unreadable /proc: no guess.
        assert_eq!(broken_attr_limit(11, 100, false, None, None), None);
    }

    #[test]
    fn cookies_are_checked_before_trusting_them() {
        let token = 7u64.to_ne_bytes();
        let mut cookie = [0; sys::COOKIE_LEN];
        cookie[..8].copy_from_slice(&token);
        cookie[sys::COOKIE_LEN - 1] = sys::NOTIFY_WOKENUP;
        assert_eq!(read_cookie(&cookie, &token), Some(Notice::MessageArrived));
        cookie[sys::COOKIE_LEN - 1] = sys::NOTIFY_REMOVED;
        assert_eq!(read_cookie(&cookie, &token), Some(Notice::Removed));
        cookie[sys::COOKIE_LEN - 1] = 9;
        assert_eq!(read_cookie(&cookie, &token), None);
        cookie[sys::COOKIE_LEN - 1] = sys::NOTIFY_WOKENUP;
        assert_eq!(read_cookie(&cookie, &8u64.to_ne_bytes()), None);
        assert_eq!(read_cookie(&cookie[..31], &token), None);
    }
}
