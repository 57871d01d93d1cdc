//! Named objects that outlive a process, by endpoint: create, describe,
//! remove. What `unipc create`, `unipc stat` and `unipc rm` do.

use std::fmt;

use crate::message::{posix_mq, ring, sysv_mq};
use crate::name::SysvKey;
use crate::shm::{self, posix as shm_posix, sysv as shm_sysv, Access};
use crate::stream::{fifo, seqpacket, unix};
use crate::sync::posix_sem;
use crate::sync::sysv_sem;
use crate::{Endpoint, Error, Mode, Result};

/// Options for creating a named object by endpoint: a POSIX or System V
/// queue, or a FIFO. Built by value.
///
/// Creating over an existing object adopts it only when it is this user's
/// and has the mode asked for (see [`posix_mq::QueueOptions::create`]);
/// [`exclusive`](Self::exclusive) refuses any existing object.
///
/// # Examples
/// ```
/// use unipc::open::CreateOptions;
///
/// let endpoint: unipc::Endpoint = "posix-mq:/create-demo".parse()?;
/// # let _ = unipc::open::remove(&endpoint);
/// let made = CreateOptions::new().max_messages(4).max_size(128).create(&endpoint)?;
/// assert!(made.created);
/// assert!(made.to_string().contains("max 4 messages of 128 bytes"));
/// unipc::open::remove(&endpoint)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct CreateOptions {
    mode: Mode,
    exclusive: bool,
    max_messages: Option<usize>,
    max_size: Option<usize>,
    size: Option<u64>,
    value: Option<u32>,
    count: Option<usize>,
    values: Option<Vec<u16>>,
    subscribers: Option<u32>,
    overwrite: bool,
    timeout: Option<std::time::Duration>,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            mode: Mode::OWNER_RW,
            exclusive: false,
            max_messages: None,
            max_size: None,
            size: None,
            value: None,
            count: None,
            values: None,
            subscribers: None,
            overwrite: false,
            timeout: None,
        }
    }
}

/// What [`CreateOptions::create`] made or found. Displays as
/// `created (mode 600)` or `already existed (...)`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Created {
    /// How to reach it again: a private System V queue by its id.
    pub endpoint: Endpoint,
    /// Whether this call created it (rather than finding it, with the
    /// owner and mode asked for).
    pub created: bool,
    /// Its attributes, as `name value` pairs for a person.
    pub details: Vec<(&'static str, String)>,
}

impl fmt::Display for Created {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.created {
            "created"
        } else {
            "already existed"
        };
        f.write_str(verb)?;
        let mut sep = " (";
        for (name, value) in &self.details {
            write!(f, "{sep}{name} {value}")?;
            sep = ", ";
        }
        if sep == ", " {
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl CreateOptions {
    /// Mode 0o600, not exclusive, the system's default sizes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Permission bits, set exactly whatever the umask.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Refuse an object that already exists.
    pub fn exclusive(mut self, exclusive: bool) -> Self {
        self.exclusive = exclusive;
        self
    }

    /// A POSIX queue's capacity in messages.
    pub fn max_messages(mut self, n: usize) -> Self {
        self.max_messages = Some(n);
        self
    }

    /// A POSIX queue's largest message, or a System V queue's capacity in
    /// bytes.
    pub fn max_size(mut self, bytes: usize) -> Self {
        self.max_size = Some(bytes);
        self
    }

    /// A pubsub object's number of subscriber places.
    pub fn subscribers(mut self, n: u32) -> Self {
        self.subscribers = Some(n);
        self
    }

    /// How long a server may take to answer (a `nats://` stream's: connect
    /// and each request; 5 s when not given). Local objects ignore it.
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// A pubsub object overwrites the oldest message instead of waiting
    /// for a slow subscriber.
    pub fn overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }

    /// A shared-memory object's size in bytes (required for System V).
    pub fn size(mut self, bytes: u64) -> Self {
        self.size = Some(bytes);
        self
    }

    /// A semaphore's initial value (`sem:`; 0 when not given).
    pub fn value(mut self, value: u32) -> Self {
        self.value = Some(value);
        self
    }

    /// A System V semaphore set's number of semaphores (default: one per
    /// value given, else 1).
    pub fn count(mut self, n: usize) -> Self {
        self.count = Some(n);
        self
    }

    /// A System V semaphore set's initial values, one per semaphore
    /// (default: all 0).
    pub fn values(mut self, values: &[u16]) -> Self {
        self.values = Some(values.to_vec());
        self
    }

    /// Checks that every option set applies to `endpoint`, without making
    /// anything.
    ///
    /// # Errors
    /// [`Error::Unsupported`] naming the option and what to use instead;
    /// [`Error::LimitExceeded`] for a semaphore's value over
    /// `SEM_VALUE_MAX`.
    pub fn check(&self, endpoint: &Endpoint) -> Result<()> {
        let refuse = |what: &str, reason: &str| {
            Err(Error::Unsupported {
                object: endpoint.to_string().into(),
                what: what.into(),
                reason: reason.into(),
            })
        };
        let queue_sizes = self.max_messages.is_some() || self.max_size.is_some();
        if (self.subscribers.is_some() || self.overwrite)
            && !matches!(endpoint, Endpoint::PubSub(_))
        {
            return refuse(
                "subscribers or an overwrite policy",
                "--subscribers and --overwrite apply to pubsub: objects",
            );
        }
        let semaphores = self.count.is_some() || self.values.is_some();
        if let Endpoint::Sem(name) = endpoint {
            posix_sem::check_name(name)?;
            if let Some(value) = self.value {
                posix_sem::check_value(&endpoint.to_string(), value)?;
            }
            return if semaphores {
                refuse(
                    "a number of semaphores or their values",
                    "a POSIX semaphore is one count: give its starting value (--value)",
                )
            } else if queue_sizes || self.size.is_some() {
                refuse(
                    "a size",
                    "a semaphore holds a count, not data: give its starting value (--value)",
                )
            } else {
                Ok(())
            };
        }
        if self.value.is_some() {
            return refuse(
                "an initial value",
                "--value applies to POSIX semaphores (sem:); a System V set takes --values",
            );
        }
        match endpoint {
            Endpoint::SysvSem(_) if queue_sizes || self.size.is_some() => refuse(
                "a size",
                "a semaphore set has a number of semaphores (--count) and values (--values), not sizes",
            ),
            Endpoint::SysvSem(_) => match (self.count, &self.values) {
                (Some(n), Some(values)) if values.len() != n => refuse(
                    &format!("{} values for {n} semaphores", values.len()),
                    "give one value per semaphore (--values 1,0,3 with --count 3)",
                ),
                _ => Ok(()),
            },
            Endpoint::SysvSemId(_) => refuse(
                "creating by id",
                "the kernel chooses a set's id: create by key, or sysv-sem:private",
            ),
            _ if semaphores => refuse(
                "a number of semaphores or their values",
                "--count and --values apply to System V semaphore sets (sysv-sem:)",
            ),
            Endpoint::Shm(_) | Endpoint::SysvShm(_) if queue_sizes => refuse(
                "a message capacity",
                "shared memory has a size in bytes, not messages: use --size",
            ),
            Endpoint::Shm(_) => Ok(()),
            Endpoint::SysvShm(_) if self.size.is_none() => refuse(
                "a System V segment without a size",
                "a segment's size is fixed when it is made: give one (--size)",
            ),
            Endpoint::SysvShm(_) => Ok(()),
            Endpoint::SysvShmId(_) => refuse(
                "creating by id",
                "the kernel chooses a segment's id: create by key, or sysv-shm:private",
            ),
            _ if self.size.is_some() => refuse(
                "a size in bytes",
                "--size applies to shared memory (shm:, sysv-shm:); queues take --max-size",
            ),
            Endpoint::PosixMq(_) | Endpoint::Ring(_) | Endpoint::PubSub(_) => Ok(()),
            Endpoint::SysvMq(_) if self.max_messages.is_some() => refuse(
                "a capacity in messages",
                "a System V queue is bounded in bytes: give a size instead",
            ),
            Endpoint::SysvMq(_) => Ok(()),
            Endpoint::Fifo(_) if self.max_messages.is_some() || self.max_size.is_some() => {
                refuse("a size", "sizes apply to message queues, not FIFOs")
            }
            Endpoint::Fifo(_) => Ok(()),
            Endpoint::Nats(_) => Ok(()),
            Endpoint::SysvMqId(_) => refuse(
                "creating by id",
                "the kernel chooses a queue's id: create by key, or sysv-mq:private",
            ),
            _ => refuse(
                "creating a named object",
                "a socket exists while a process has it bound (unipc recv)",
            ),
        }
    }

    /// Creates the object `endpoint` names and keeps it: it outlives this
    /// process until [`remove`]d.
    ///
    /// # Errors
    /// As [`check`](Self::check); the facility's own errors (an existing
    /// object of another user, limits, permissions).
    pub fn create(&self, endpoint: &Endpoint) -> Result<Created> {
        self.check(endpoint)?;
        let octal = |mode: Mode| format!("{mode:o}");
        Ok(match endpoint {
            Endpoint::PosixMq(name) => {
                let mut options = posix_mq::QueueOptions::new()
                    .mode(self.mode)
                    .exclusive(self.exclusive);
                if let Some(n) = self.max_messages {
                    options = options.max_messages(n);
                }
                if let Some(n) = self.max_size {
                    options = options.max_message_size(n);
                }
                let queue = options.create(name)?.keep();
                let attrs = queue.attributes()?;
                Created {
                    endpoint: endpoint.clone(),
                    created: queue.created(),
                    details: vec![
                        (
                            "max",
                            format!(
                                "{} messages of {} bytes",
                                attrs.max_messages, attrs.max_message_size
                            ),
                        ),
                        ("mode", octal(queue.mode()?)),
                    ],
                }
            }
            Endpoint::SysvMq(key) => {
                let mut options = sysv_mq::QueueOptions::new()
                    .mode(self.mode)
                    .exclusive(self.exclusive)
                    .keep();
                if let Some(bytes) = self.max_size {
                    options = options.max_bytes(bytes);
                }
                let queue = options.create(*key)?;
                let stat = queue.stat()?;
                Created {
                    endpoint: match key {
                        SysvKey::Private => Endpoint::SysvMqId(queue.id()),
                        SysvKey::Key(_) => endpoint.clone(),
                    },
                    created: queue.created(),
                    details: vec![
                        ("id", queue.id().to_string()),
                        ("owner uid", stat.uid.to_string()),
                        ("mode", octal(stat.mode)),
                        ("max bytes", stat.max_bytes.to_string()),
                    ],
                }
            }
            Endpoint::Ring(name) => {
                let mut options = ring::RingOptions::new()
                    .mode(self.mode)
                    .exclusive(self.exclusive)
                    .keep();
                if let Some(n) = self.max_messages {
                    options = options.capacity(n as u64);
                }
                if let Some(n) = self.max_size {
                    options = options.max_size(n);
                }
                let made = options.create(name)?;
                let status = made.status()?;
                Created {
                    endpoint: endpoint.clone(),
                    created: made.created(),
                    details: vec![
                        (
                            "capacity",
                            format!("{} messages of {} bytes", status.capacity, status.max_size),
                        ),
                        ("mode", octal(self.mode)),
                    ],
                }
            }
            Endpoint::PubSub(name) => {
                let mut options = ring::pubsub::PubSubOptions::new()
                    .mode(self.mode)
                    .exclusive(self.exclusive)
                    .overwrite(self.overwrite)
                    .keep();
                if let Some(n) = self.max_messages {
                    options = options.capacity(n as u64);
                }
                if let Some(n) = self.max_size {
                    options = options.max_size(n);
                }
                if let Some(n) = self.subscribers {
                    options = options.subscribers(n);
                }
                let made = options.create(name)?;
                let status = made.status()?;
                Created {
                    endpoint: endpoint.clone(),
                    created: made.created(),
                    details: vec![
                        (
                            "capacity",
                            format!("{} messages of {} bytes", status.capacity, status.max_size),
                        ),
                        ("subscribers", status.max_subscribers.to_string()),
                        ("policy", format!("{:?}", status.policy).to_lowercase()),
                        ("mode", octal(self.mode)),
                    ],
                }
            }
            Endpoint::Fifo(path) => {
                fifo::Fifo::create(path.as_path(), self.mode)?.keep();
                Created {
                    endpoint: endpoint.clone(),
                    created: true,
                    details: vec![("mode", octal(self.mode))],
                }
            }
            Endpoint::Shm(name) => {
                let mut options = shm_posix::SegmentOptions::new()
                    .mode(self.mode)
                    .exclusive(self.exclusive)
                    .keep();
                if let Some(size) = self.size {
                    options = options.size(size);
                }
                let segment = options.create(name)?;
                let stat = segment.stat()?;
                Created {
                    endpoint: endpoint.clone(),
                    created: segment.created(),
                    details: vec![
                        ("size", stat.size.to_string()),
                        ("owner uid", stat.uid.to_string()),
                        ("mode", octal(stat.mode)),
                    ],
                }
            }
            Endpoint::SysvShm(key) => {
                let size = self.size.unwrap_or(0);
                let size = usize::try_from(size).map_err(|_| Error::LimitExceeded {
                    object: endpoint.to_string().into(),
                    what: "size",
                    requested: size,
                    limit: usize::MAX as u64,
                    set_in: "the address space",
                })?;
                let segment = shm_sysv::SegmentOptions::new()
                    .size(size)
                    .mode(self.mode)
                    .exclusive(self.exclusive)
                    .keep()
                    .create(*key)?;
                let stat = segment.stat()?;
                Created {
                    endpoint: match key {
                        SysvKey::Private => Endpoint::SysvShmId(segment.id()),
                        SysvKey::Key(_) => endpoint.clone(),
                    },
                    created: segment.created(),
                    details: vec![
                        ("id", segment.id().to_string()),
                        ("size", stat.size.to_string()),
                        ("owner uid", stat.uid.to_string()),
                        ("mode", octal(stat.mode)),
                    ],
                }
            }
            Endpoint::Sem(name) => {
                let sem = posix_sem::SemaphoreOptions::new()
                    .value(self.value.unwrap_or(0))
                    .mode(self.mode)
                    .exclusive(self.exclusive)
                    .keep()
                    .create(name)?;
                let stat = sem.stat()?;
                Created {
                    endpoint: endpoint.clone(),
                    created: sem.created(),
                    details: vec![
                        ("value", stat.value.to_string()),
                        ("owner uid", stat.uid.to_string()),
                        ("mode", octal(stat.mode)),
                    ],
                }
            }
            Endpoint::SysvSem(key) => {
                let count = self
                    .count
                    .or(self.values.as_ref().map(Vec::len))
                    .unwrap_or(1);
                let mut options = sysv_sem::SetOptions::new()
                    .count(count)
                    .mode(self.mode)
                    .exclusive(self.exclusive)
                    .keep();
                if let Some(values) = &self.values {
                    options = options.values(values);
                }
                let set = options.create(*key)?;
                let stat = set.stat()?;
                let values = set.values()?;
                Created {
                    endpoint: match key {
                        SysvKey::Private => Endpoint::SysvSemId(set.id()),
                        SysvKey::Key(_) => endpoint.clone(),
                    },
                    created: set.created(),
                    details: vec![
                        ("id", set.id().to_string()),
                        ("semaphores", set.count().to_string()),
                        ("values", join(&values)),
                        ("owner uid", stat.uid.to_string()),
                        ("mode", octal(stat.mode)),
                    ],
                }
            }
            Endpoint::Nats(address) => self.create_nats(endpoint, address)?,
            _ => unreachable!("check() refused every other endpoint"),
        })
    }

    #[cfg(feature = "nats")]
    fn create_nats(
        &self,
        endpoint: &Endpoint,
        address: &crate::endpoint::NatsAddress,
    ) -> Result<Created> {
        let mut options = nats_options(self.timeout).exclusive(self.exclusive);
        if let Some(n) = self.max_messages {
            options = options.max_messages(n);
        }
        if let Some(n) = self.max_size {
            options = options.max_message_size(n);
        }
        let stream = options.create(address)?;
        let stat = stream.stat()?;
        Ok(Created {
            endpoint: endpoint.clone(),
            created: stream.created(),
            details: vec![
                ("stream", stat.name),
                ("retention", stat.retention.to_owned()),
                (
                    "max messages",
                    stat.max_messages
                        .map_or_else(|| "unlimited".to_owned(), |n| n.to_string()),
                ),
                ("max payload", stream.max_payload().to_string()),
            ],
        })
    }

    #[cfg(not(feature = "nats"))]
    fn create_nats(
        &self,
        _endpoint: &Endpoint,
        address: &crate::endpoint::NatsAddress,
    ) -> Result<Created> {
        Err(super::message::without_nats(address))
    }
}

/// NATS options waiting at most `timeout` for the server (to connect, and
/// for each answer).
#[cfg(feature = "nats")]
fn nats_options(timeout: Option<std::time::Duration>) -> crate::message::nats::NatsOptions {
    let options = crate::message::nats::NatsOptions::new();
    match timeout {
        Some(t) => options.connect_timeout(t).request_timeout(t),
        None => options,
    }
}

/// A NATS stream's counts, for [`describe`].
#[cfg(feature = "nats")]
fn describe_nats(
    address: &crate::endpoint::NatsAddress,
    timeout: Option<std::time::Duration>,
) -> Result<Vec<(&'static str, Value)>> {
    let stream = nats_options(timeout).open(address)?;
    let s = stream.stat()?;
    Ok(vec![
        ("stream", Value::Text(s.name)),
        ("messages", Value::Number(s.messages)),
        ("bytes", Value::Number(s.bytes)),
        ("consumers", Value::Number(s.consumers as u64)),
        (
            "max_messages",
            s.max_messages.map_or(Value::None, Value::Number),
        ),
        ("retention", Value::Text(s.retention.to_owned())),
        ("first_sequence", Value::Number(s.first_sequence)),
        ("last_sequence", Value::Number(s.last_sequence)),
        ("max_payload", Value::Number(stream.max_payload() as u64)),
    ])
}

#[cfg(not(feature = "nats"))]
fn describe_nats(
    address: &crate::endpoint::NatsAddress,
    _timeout: Option<std::time::Duration>,
) -> Result<Vec<(&'static str, Value)>> {
    Err(super::message::without_nats(address))
}

#[cfg(feature = "nats")]
fn remove_nats(
    address: &crate::endpoint::NatsAddress,
    timeout: Option<std::time::Duration>,
) -> Result<()> {
    nats_options(timeout).remove(address)
}

#[cfg(not(feature = "nats"))]
fn remove_nats(
    address: &crate::endpoint::NatsAddress,
    _timeout: Option<std::time::Duration>,
) -> Result<()> {
    Err(super::message::without_nats(address))
}

/// A value in a [`describe`] report.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Value {
    /// A count, size, id or pid.
    Number(u64),
    /// A mode (permission bits), shown in octal.
    Mode(Mode),
    /// Text.
    Text(String),
    /// Not known, or never happened (no last sender yet).
    None,
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Number(n) => write!(f, "{n}"),
            Value::Mode(m) => write!(f, "{m:o}"),
            Value::Text(t) => f.write_str(t),
            Value::None => f.write_str("-"),
        }
    }
}

/// The attributes and counts of the object `endpoint` names (a queue), as
/// `name value` pairs in a fixed order.
///
/// # Errors
/// [`Error::Unsupported`] for an endpoint with nothing to describe; the
/// facility's errors (no such queue, permissions).
pub fn describe(endpoint: &Endpoint) -> Result<Vec<(&'static str, Value)>> {
    describe_within(endpoint, None)
}

/// [`describe`], waiting at most `timeout` for a server (a `nats://`
/// stream's; local objects ignore it).
///
/// # Errors
/// As [`describe`].
pub fn describe_within(
    endpoint: &Endpoint,
    timeout: Option<std::time::Duration>,
) -> Result<Vec<(&'static str, Value)>> {
    let pid = |p: Option<u32>| p.map_or(Value::None, |p| Value::Number(p.into()));
    Ok(match endpoint {
        Endpoint::PosixMq(name) => {
            let queue = posix_mq::QueueOptions::new()
                .access(posix_mq::Access::Read)
                .open(name)?;
            let a = queue.attributes()?;
            vec![
                ("messages", Value::Number(a.messages as u64)),
                ("max_messages", Value::Number(a.max_messages as u64)),
                ("max_message_size", Value::Number(a.max_message_size as u64)),
                ("mode", Value::Mode(queue.mode()?)),
            ]
        }
        Endpoint::SysvMq(_) | Endpoint::SysvMqId(_) => {
            let queue = open_sysv(endpoint)?;
            let s = queue.stat()?;
            vec![
                ("id", Value::Number(queue.id() as u64)),
                ("messages", Value::Number(s.messages)),
                ("bytes", Value::Number(s.bytes)),
                ("max_bytes", Value::Number(s.max_bytes)),
                ("last_sender_pid", pid(s.last_sender)),
                ("last_receiver_pid", pid(s.last_receiver)),
                ("uid", Value::Number(s.uid.into())),
                ("gid", Value::Number(s.gid.into())),
                ("mode", Value::Mode(s.mode)),
            ]
        }
        Endpoint::Ring(name) => {
            let s = ring::Ring::open(name)?.status()?;
            let side = |a: Option<ring::Attached>| match a {
                None => Value::None,
                Some(a) if a.alive => Value::Text(format!("pid {} (alive)", a.pid)),
                Some(a) => Value::Text(format!("pid {} (dead)", a.pid)),
            };
            vec![
                ("capacity", Value::Number(s.capacity)),
                ("used", Value::Number(s.used)),
                ("max_size", Value::Number(s.max_size as u64)),
                ("sent", Value::Number(s.sent)),
                ("received", Value::Number(s.received)),
                ("writer", side(s.writer)),
                ("reader", side(s.reader)),
            ]
        }
        Endpoint::PubSub(name) => {
            let s = ring::pubsub::PubSubOptions::open(name)?.status()?;
            let side = |a: ring::Attached| {
                format!("pid {} ({})", a.pid, if a.alive { "alive" } else { "dead" })
            };
            let subscribers = s
                .subscribers
                .iter()
                .map(|sub| {
                    format!(
                        "{} behind {} lost {}",
                        side(sub.process),
                        sub.behind,
                        sub.lost
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            vec![
                ("capacity", Value::Number(s.capacity)),
                ("max_size", Value::Number(s.max_size as u64)),
                (
                    "policy",
                    Value::Text(format!("{:?}", s.policy).to_lowercase()),
                ),
                ("sent", Value::Number(s.sent)),
                (
                    "publisher",
                    s.publisher.map_or(Value::None, |p| Value::Text(side(p))),
                ),
                ("max_subscribers", Value::Number(s.max_subscribers.into())),
                ("subscribers", Value::Number(s.subscribers.len() as u64)),
                (
                    "lost",
                    Value::Number(s.subscribers.iter().map(|sub| sub.lost).sum()),
                ),
                (
                    "attached",
                    if subscribers.is_empty() {
                        Value::None
                    } else {
                        Value::Text(subscribers)
                    },
                ),
            ]
        }
        Endpoint::Shm(name) => {
            let segment = shm_posix::SegmentOptions::new()
                .access(Access::ReadOnly)
                .open(name)?;
            let s = segment.stat()?;
            vec![
                ("size", Value::Number(s.size)),
                ("uid", Value::Number(s.uid.into())),
                ("gid", Value::Number(s.gid.into())),
                ("mode", Value::Mode(s.mode)),
            ]
        }
        Endpoint::SysvShm(_) | Endpoint::SysvShmId(_) => {
            let segment = open_sysv_shm(endpoint)?;
            let s = segment.stat()?;
            let time = |t: Option<std::time::SystemTime>| {
                t.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(Value::None, |d| Value::Number(d.as_secs()))
            };
            let some_pid = |p: i32| u32::try_from(p).ok().filter(|&p| p != 0);
            vec![
                ("id", Value::Number(segment.id() as u64)),
                ("size", Value::Number(s.size)),
                ("attached", Value::Number(s.attached)),
                ("creator_pid", pid(some_pid(s.creator_pid))),
                ("last_pid", pid(some_pid(s.last_pid))),
                ("last_attach", time(s.last_attach)),
                ("last_detach", time(s.last_detach)),
                ("changed", time(s.changed)),
                ("uid", Value::Number(s.uid.into())),
                ("gid", Value::Number(s.gid.into())),
                ("creator_uid", Value::Number(s.creator_uid.into())),
                ("mode", Value::Mode(s.mode)),
            ]
        }
        Endpoint::Sem(name) => {
            let s = posix_sem::Semaphore::open(name)?.stat()?;
            vec![
                ("value", Value::Number(s.value.into())),
                ("uid", Value::Number(s.uid.into())),
                ("gid", Value::Number(s.gid.into())),
                ("mode", Value::Mode(s.mode)),
            ]
        }
        Endpoint::SysvSem(_) | Endpoint::SysvSemId(_) => {
            let set = open_sysv_sem(endpoint)?;
            let s = set.stat()?;
            let time = |t: Option<std::time::SystemTime>| {
                t.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(Value::None, |d| Value::Number(d.as_secs()))
            };
            let per = |get: &dyn Fn(usize) -> Result<u64>| -> Result<Value> {
                let all = (0..set.count()).map(get).collect::<Result<Vec<u64>>>()?;
                Ok(Value::Text(join(&all)))
            };
            vec![
                ("id", Value::Number(set.id() as u64)),
                ("semaphores", Value::Number(s.count)),
                ("values", Value::Text(join(&set.values()?))),
                ("ncnt", per(&|i| set.ncnt(i).map(u64::from))?),
                ("zcnt", per(&|i| set.zcnt(i).map(u64::from))?),
                (
                    "last_pids",
                    per(&|i| set.last_pid(i).map(|p| u64::from(p.unwrap_or(0))))?,
                ),
                ("last_op", time(s.last_op)),
                ("changed", time(s.changed)),
                ("uid", Value::Number(s.uid.into())),
                ("gid", Value::Number(s.gid.into())),
                ("creator_uid", Value::Number(s.creator_uid.into())),
                ("mode", Value::Mode(s.mode)),
            ]
        }
        Endpoint::Nats(address) => describe_nats(address, timeout)?,
        other => {
            return Err(Error::Unsupported {
                object: other.to_string().into(),
                what: "describing".into(),
                reason: "only message queues and shared memory keep attributes and counts".into(),
            })
        }
    })
}

/// Removes the object `endpoint` names: a queue, a FIFO (only a FIFO), or
/// a UNIX socket file that no process has bound any more.
///
/// # Errors
/// The facility's errors: nothing there, permissions, a socket still
/// listened on; [`Error::Unsupported`] for a network endpoint.
pub fn remove(endpoint: &Endpoint) -> Result<()> {
    remove_within(endpoint, None)
}

/// [`remove`], waiting at most `timeout` for a server (a `nats://`
/// stream's; local objects ignore it).
///
/// # Errors
/// As [`remove`].
pub fn remove_within(endpoint: &Endpoint, timeout: Option<std::time::Duration>) -> Result<()> {
    match endpoint {
        Endpoint::PosixMq(name) => posix_mq::unlink(name),
        Endpoint::SysvMq(_) | Endpoint::SysvMqId(_) => open_sysv(endpoint)?.remove(),
        Endpoint::Fifo(path) => fifo::remove(path.as_path()),
        Endpoint::Shm(name) => shm_posix::unlink(name),
        Endpoint::Ring(name) => ring::remove(name),
        Endpoint::PubSub(name) => ring::pubsub::remove(name),
        Endpoint::SysvShm(_) | Endpoint::SysvShmId(_) => open_sysv_shm(endpoint)?.remove(),
        Endpoint::Unix(addr) => unix::remove_stale(addr),
        Endpoint::UnixSeqpacket(addr) => seqpacket::remove_stale(addr),
        Endpoint::UnixDgram(addr) => crate::message::dgram::remove_stale(addr),
        Endpoint::Sem(name) => posix_sem::remove(name),
        Endpoint::SysvSem(_) | Endpoint::SysvSemId(_) => open_sysv_sem(endpoint)?.remove(),
        Endpoint::Nats(address) => remove_nats(address, timeout),
        other => Err(Error::Unsupported {
            object: other.to_string().into(),
            what: "removing".into(),
            reason: "a network socket exists only while a process holds it".into(),
        }),
    }
}

pub(super) fn open_sysv(endpoint: &Endpoint) -> Result<sysv_mq::Queue> {
    match endpoint {
        Endpoint::SysvMqId(id) => sysv_mq::Queue::open_id(*id),
        Endpoint::SysvMq(SysvKey::Private) => Err(Error::Unsupported {
            object: endpoint.to_string().into(),
            what: "opening a private queue by key".into(),
            reason: "a private queue has no key; address it by its id, sysv-mq:id=N".into(),
        }),
        Endpoint::SysvMq(key) => sysv_mq::QueueOptions::new().open(*key),
        other => Err(Error::WrongType {
            object: other.to_string().into(),
            expected: "a System V queue",
            found: "another facility's endpoint",
        }),
    }
}

fn open_sysv_shm(endpoint: &Endpoint) -> Result<shm_sysv::Segment> {
    match endpoint {
        Endpoint::SysvShmId(id) => shm_sysv::Segment::open_id(*id),
        Endpoint::SysvShm(SysvKey::Private) => Err(Error::Unsupported {
            object: endpoint.to_string().into(),
            what: "opening a private segment by key".into(),
            reason: "a private segment has no key; address it by its id, sysv-shm:id=N".into(),
        }),
        Endpoint::SysvShm(key) => shm_sysv::SegmentOptions::new().open(*key),
        other => Err(Error::WrongType {
            object: other.to_string().into(),
            expected: "a System V segment",
            found: "another facility's endpoint",
        }),
    }
}

/// The System V semaphore set `endpoint` names, opened as it is.
///
/// # Errors
/// [`Error::Unsupported`] for `sysv-sem:private` (it has no key);
/// [`Error::WrongType`] for another facility's endpoint; the facility's
/// errors (no such set, permissions).
pub fn open_sysv_sem(endpoint: &Endpoint) -> Result<sysv_sem::SemaphoreSet> {
    match endpoint {
        Endpoint::SysvSemId(id) => sysv_sem::SemaphoreSet::open_id(*id),
        Endpoint::SysvSem(SysvKey::Private) => Err(Error::Unsupported {
            object: endpoint.to_string().into(),
            what: "opening a private set by key".into(),
            reason: "a private set has no key; address it by its id, sysv-sem:id=N".into(),
        }),
        Endpoint::SysvSem(key) => sysv_sem::SemaphoreSet::open(*key),
        other => Err(Error::WrongType {
            object: other.to_string().into(),
            expected: "a System V semaphore set",
            found: "another facility's endpoint",
        }),
    }
}

/// Numbers as `1,0,3`.
fn join<T: fmt::Display>(items: &[T]) -> String {
    items.iter().map(T::to_string).collect::<Vec<_>>().join(",")
}

/// Shared memory opened by endpoint for reading and writing in place: a
/// POSIX object through its descriptor (`pread`/`pwrite`, so a truncation
/// by another process is an error, never `SIGBUS`), a System V segment
/// through an attachment. What `unipc read` and `unipc write` use.
///
/// # Examples
/// ```
/// use unipc::open::{CreateOptions, SharedMemory};
/// use unipc::shm::Access;
///
/// let endpoint: unipc::Endpoint = format!("shm:/open-demo-{}", std::process::id()).parse()?;
/// CreateOptions::new().size(16).exclusive(true).create(&endpoint)?;
/// let memory = SharedMemory::open(&endpoint, Access::ReadWrite)?;
/// memory.write_at(4, b"abc")?;
/// let mut got = [0; 3];
/// memory.read_at(4, &mut got)?;
/// assert_eq!(&got, b"abc");
/// assert!(memory.write_at(15, b"abc").is_err());
/// unipc::open::remove(&endpoint)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SharedMemory {
    inner: Memory,
}

#[derive(Debug)]
enum Memory {
    Posix(shm_posix::Segment),
    Sysv(shm::Mapping),
}

impl SharedMemory {
    /// Opens the shared memory `endpoint` names, read-only or read-write.
    ///
    /// # Errors
    /// [`Error::WrongType`] for an endpoint of another facility; the
    /// facility's errors (nothing there, permissions).
    pub fn open(endpoint: &Endpoint, access: Access) -> Result<SharedMemory> {
        let inner = match endpoint {
            Endpoint::Shm(name) => {
                Memory::Posix(shm_posix::SegmentOptions::new().access(access).open(name)?)
            }
            Endpoint::SysvShm(_) | Endpoint::SysvShmId(_) => {
                Memory::Sysv(open_sysv_shm(endpoint)?.attach(access)?)
            }
            other => {
                return Err(Error::WrongType {
                    object: other.to_string().into(),
                    expected: "shared memory (shm: or sysv-shm:)",
                    found: "another facility's endpoint",
                })
            }
        };
        Ok(SharedMemory { inner })
    }

    /// The size in bytes now.
    ///
    /// # Errors
    /// [`Error::Os`] when `fstat` fails.
    pub fn size(&self) -> Result<u64> {
        match &self.inner {
            Memory::Posix(segment) => segment.size(),
            Memory::Sysv(map) => Ok(map.len() as u64),
        }
    }

    /// Copies `buf.len()` bytes from `offset`.
    ///
    /// # Errors
    /// [`Error::OutOfBounds`] naming the range and the size.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        match &self.inner {
            Memory::Posix(segment) => segment.read_at(offset, buf),
            Memory::Sysv(map) => {
                map.read_at(self.sysv_offset(map, "read", offset, buf.len())?, buf)
            }
        }
    }

    /// Copies `data` to `offset`.
    ///
    /// # Errors
    /// [`Error::OutOfBounds`] naming the range and the size; an error when
    /// opened read-only.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
        match &self.inner {
            Memory::Posix(segment) => segment.write_at(offset, data),
            Memory::Sysv(map) => {
                map.write_at(self.sysv_offset(map, "write", offset, data.len())?, data)
            }
        }
    }

    fn sysv_offset(
        &self,
        map: &shm::Mapping,
        op: &'static str,
        offset: u64,
        len: usize,
    ) -> Result<usize> {
        shm::check_range(map.object(), op, offset, len, map.len() as u64)?;
        Ok(offset as usize)
    }
}
