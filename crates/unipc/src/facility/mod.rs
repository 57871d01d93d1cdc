//! What each facility is, and how to join two processes through it.
//!
//! Every facility module publishes a [`Facility`]: its properties (the
//! rows of `unipc compare`), its live limits, the scheme of its endpoints,
//! and — with the `bench` feature — a `Connector` that sets up a two-way
//! `Link` between a parent and a peer process. Tools that treat all
//! facilities alike — the bench, the comparison table — iterate over
//! [`all()`] and never name a facility themselves.
//!
//! With the `bench` feature (which `unipc-bench` turns on; it is off by
//! default, and nothing else needs it), a link is set up in three steps, so
//! that it works across `exec`:
//!
//! 1. the parent calls `Connector::prepare`, which creates the objects
//!    and returns a pending link plus a `Ticket` (an address string and
//!    descriptors for the peer to inherit);
//! 2. the peer process calls `Connector::join` with that ticket;
//! 3. the parent calls `PendingLink::establish` (accept, open the far
//!    end of a FIFO, ...).
//!
//! ```
//! use unipc::facility;
//!
//! let names: Vec<&str> = facility::all().iter().map(|f| f.name).collect();
//! assert!(names.contains(&"pipe"));
//! ```

use std::fmt;

#[cfg(feature = "bench")]
mod connect;
#[cfg(feature = "bench")]
mod link;
#[cfg(feature = "bench")]
pub mod mailbox;

#[cfg(feature = "bench")]
pub use connect::{
    fresh_sysv_key, Connector, CreatedObject, Link, LinkOptions, PendingLink, RawIo, Ticket,
};
#[cfg(feature = "bench")]
pub(crate) use link::{socket_link, MessageLink, StreamCalls, StreamLink};

/// Byte stream or messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Shape {
    /// An ordered stream of bytes; writes may be split or merged.
    ByteStream,
    /// Whole messages; each receive returns exactly one send.
    Messages,
    /// Memory both processes map: no send or receive, and nothing
    /// synchronizes by itself.
    SharedMemory,
    /// No data at all: a primitive that makes processes wait for each other
    /// (a semaphore, a lock, a mutex, an event counter).
    Synchronization,
}

/// Whether data flows one way or both ways over one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Direction {
    /// One writer side, one reader side (a pipe).
    OneWay,
    /// Both sides send and receive.
    TwoWay,
}

/// What a message carries besides its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tags {
    /// Nothing.
    None,
    /// A priority; higher priorities are received first.
    Priority,
    /// A type; the receiver selects by type.
    Type,
    /// A priority or a type, carried in a message header (NATS); neither
    /// orders nor selects.
    Header,
}

/// How processes find the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Naming {
    /// No name: descriptors are inherited or passed.
    None,
    /// A path in the filesystem.
    FilesystemPath,
    /// A filesystem path or a Linux abstract socket name.
    PathOrAbstract,
    /// A POSIX IPC name (`/name`).
    IpcName,
    /// A System V key (a number).
    SysvKey,
    /// A host and port.
    NetworkAddress,
    /// A place in memory both processes map, found through that memory's
    /// own name or descriptor (a futex word, a mutex in a segment).
    InSharedMemory,
    /// Any file both processes open by its path (a lock on it).
    AnyFile,
    /// A server's address and a subject on it (`nats://HOST:PORT/SUBJECT`).
    ServerSubject,
}

impl Naming {
    /// Whether an endpoint names the object itself (so the facility must
    /// have a scheme), as opposed to nothing, or the memory or file it
    /// lives in.
    pub fn is_endpoint(self) -> bool {
        !matches!(
            self,
            Naming::None | Naming::InSharedMemory | Naming::AnyFile
        )
    }
}

/// Who can reach the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reach {
    /// Only processes that inherit or are passed a descriptor.
    RelatedProcesses,
    /// Any process on this host that may open the name.
    Host,
    /// Processes on other hosts too.
    Network,
}

/// How long the object lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Persistence {
    /// Until the last process that has it open closes it.
    Process,
    /// Until removed or the system reboots, open or not.
    Kernel,
    /// The name stays in the filesystem until removed; the channel itself
    /// lives while a process has it open.
    Filesystem,
    /// In a server's store, on its disk: it outlives this host's reboots.
    Server,
}

/// The properties `unipc compare` shows, declared beside each facility.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Properties {
    /// Byte stream or messages.
    pub shape: Shape,
    /// One way or two ways per object.
    pub direction: Direction,
    /// Priorities, types, or nothing.
    pub tags: Tags,
    /// Whether reading removes the data (as opposed to shared memory).
    pub destructive_read: bool,
    /// Whether data can be read without removing it (MSG_PEEK).
    pub peek: bool,
    /// How the object is named.
    pub naming: Naming,
    /// Who can reach it.
    pub reach: Reach,
    /// How long it lives.
    pub persistence: Persistence,
    /// The permission model, in words.
    pub permissions: &'static str,
    /// Whether delivery is guaranteed (no loss under load).
    pub reliable: bool,
    /// What the kernel does when a process dies holding the object: what
    /// the peer sees, what stays, what is undone.
    pub after_crash: &'static str,
}

/// A limit read from this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LiveLimit {
    /// What is limited ("capacity", "msg_max").
    pub name: &'static str,
    /// The value in force, with its unit.
    pub value: String,
    /// Where it is set (a /proc file, an rlimit, a constant).
    pub source: &'static str,
}

impl LiveLimit {
    /// A limit read from a /proc file; `value` is `"unreadable"` when the
    /// file cannot be read.
    pub fn from_proc(name: &'static str, path: &'static str, unit: &str) -> LiveLimit {
        let value = match std::fs::read_to_string(path) {
            Ok(text) => format!(
                "{}{unit}",
                text.split_whitespace().collect::<Vec<_>>().join(" ")
            ),
            Err(_) => "unreadable".to_owned(),
        };
        LiveLimit {
            name,
            value,
            source: path,
        }
    }
}

/// One IPC facility as tools see it.
#[non_exhaustive]
pub struct Facility {
    /// Short name, as `unipc bench --facility` takes it.
    pub name: &'static str,
    /// The scheme of its endpoints (`fifo` in `fifo:PATH`), one of
    /// [`crate::endpoint::SCHEMES`]; `None` for a facility no endpoint
    /// can name (a pipe, a socketpair: [`Naming::None`]), whose
    /// descriptors are inherited or passed instead.
    pub scheme: Option<&'static str>,
    /// One line on what it is.
    pub summary: &'static str,
    /// How an endpoint for it is written, or how it is shared.
    pub addressing: &'static str,
    /// Its properties.
    pub properties: Properties,
    /// Reads its limits on this machine.
    pub limits: fn() -> Vec<LiveLimit>,
    /// The largest message it can carry on this machine, and what sets
    /// that; `None` for byte streams, which carry any size.
    pub max_message: fn() -> Option<MessageCap>,
    /// Joins two processes through it (the `bench` feature); `None` for a
    /// facility that has no two-process link yet (shared memory, until it
    /// has a hand-off to wait on), which the bench skips.
    #[cfg(feature = "bench")]
    pub connector: Option<&'static dyn Connector>,
}

impl fmt::Debug for Facility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Facility")
            .field("name", &self.name)
            .field("properties", &self.properties)
            .finish()
    }
}

/// The largest message a facility carries on this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageCap {
    /// Size in bytes.
    pub bytes: usize,
    /// What sets it ("msgsize_max in /proc/sys/fs/mqueue/msgsize_max").
    pub set_by: String,
}

/// Every facility this build of unipc has, in taxonomy order.
pub fn all() -> &'static [&'static Facility] {
    REGISTRY
}

static REGISTRY: &[&Facility] = &[
    &crate::stream::pipe::FACILITY,
    &crate::stream::fifo::FACILITY,
    &crate::stream::unix::FACILITY,
    &crate::stream::unix::PAIR_FACILITY,
    &crate::stream::seqpacket::FACILITY,
    &crate::stream::tcp::FACILITY,
    &crate::message::posix_mq::FACILITY,
    &crate::message::sysv_mq::FACILITY,
    &crate::message::ring::FACILITY,
    &crate::message::ring::pubsub::FACILITY,
    &crate::message::dgram::UNIX_FACILITY,
    &crate::message::dgram::UDP_FACILITY,
    &crate::message::nats::FACILITY,
    &crate::shm::posix::FACILITY,
    &crate::shm::sysv::FACILITY,
    &crate::sync::futex::FACILITY,
    &crate::sync::eventfd::FACILITY,
    &crate::sync::mutex::FACILITY,
    &crate::sync::lock::FACILITY,
    &crate::sync::posix_sem::FACILITY,
    &crate::sync::sysv_sem::FACILITY,
    &crate::signal::FACILITY,
];

/// The facility called `name`.
pub fn find(name: &str) -> Option<&'static Facility> {
    all().iter().copied().find(|f| f.name == name)
}

/// The facility whose endpoints are written `scheme:ADDRESS`; `None` when
/// `scheme` is not one of [`crate::endpoint::SCHEMES`].
///
/// ```
/// use unipc::facility;
///
/// assert_eq!(facility::for_scheme("posix-mq").map(|f| f.name), Some("posix-mq"));
/// assert!(facility::for_scheme("pipe").is_none());
/// ```
pub fn for_scheme(scheme: &str) -> Option<&'static Facility> {
    all().iter().copied().find(|f| f.scheme == Some(scheme))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::SCHEMES;
    use crate::Endpoint;

    #[test]
    fn every_scheme_has_one_entry_and_every_addressable_entry_a_scheme() {
        for scheme in SCHEMES {
            let owners: Vec<&str> = all()
                .iter()
                .filter(|f| f.scheme == Some(*scheme))
                .map(|f| f.name)
                .collect();
            assert_eq!(owners.len(), 1, "scheme {scheme:?} belongs to {owners:?}");
        }
        for f in all() {
            match f.scheme {
                Some(scheme) => {
                    assert!(SCHEMES.contains(&scheme), "{}: {scheme:?}", f.name);
                    assert!(f.properties.naming.is_endpoint(), "{}", f.name);
                }
                None => assert!(
                    !f.properties.naming.is_endpoint(),
                    "{} is addressable but has no endpoint scheme",
                    f.name
                ),
            }
        }
        let names: Vec<&str> = all().iter().map(|f| f.name).collect();
        for (i, name) in names.iter().enumerate() {
            assert!(!names[i + 1..].contains(name), "{name} is listed twice");
        }
    }

    #[test]
    fn every_endpoint_maps_to_the_entry_of_its_scheme() {
        let endpoints = [
            "fifo:/tmp/f",
            "unix:/tmp/s",
            "unix:@abstract",
            "unix-seqpacket:@s",
            "tcp:127.0.0.1:80",
            "posix-mq:/q",
            "sysv-mq:0x10",
            "sysv-mq:private",
            "sysv-mq:id=5",
            "ring:/r",
            "pubsub:/p",
            "unix-dgram:/tmp/d",
            "udp:[::1]:53",
            "shm:/m",
            "sysv-shm:0x20",
            "sysv-shm:id=3",
            "sem:/s",
            "sysv-sem:0x30",
            "sysv-sem:id=4",
            "nats://127.0.0.1:4222/jobs",
        ];
        let mut seen = Vec::new();
        for text in endpoints {
            let ep: Endpoint = text.parse().expect(text);
            let f = ep.facility();
            assert_eq!(f.scheme, Some(ep.scheme()), "{text}");
            seen.push(ep.scheme());
        }
        let by_id: Endpoint = "sysv-mq:id=5".parse().unwrap();
        assert_eq!(by_id.facility().name, "sysv-mq");
        for scheme in SCHEMES {
            assert!(seen.contains(scheme), "no sample endpoint for {scheme:?}");
        }
    }
}
