//! What each facility is, and how to join two processes through it.
//!
//! Every facility module publishes a [`Facility`]: its properties (the
//! rows of `unipc compare`), its live limits, and a [`Connector`] that sets
//! up a two-way [`Link`] between a parent and a peer process. Tools that
//! treat all facilities alike — the bench, the comparison table — iterate
//! over [`all()`] and never name a facility themselves.
//!
//! A link is set up in three steps, so that it works across `exec`:
//!
//! 1. the parent calls [`Connector::prepare`], which creates the objects
//!    and returns a pending link plus a [`Ticket`] (an address string and
//!    descriptors for the peer to inherit);
//! 2. the peer process calls [`Connector::join`] with that ticket;
//! 3. the parent calls [`PendingLink::establish`] (accept, open the far
//!    end of a FIFO, ...).
//!
//! ```
//! use unipc::facility;
//!
//! let names: Vec<&str> = facility::all().iter().map(|f| f.name).collect();
//! assert!(names.contains(&"pipe"));
//! ```

use std::fmt;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

use crate::Result;

mod link;

pub(crate) use link::{socket_link, MessageLink, StreamCalls, StreamLink};

/// Byte stream or messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// An ordered stream of bytes; writes may be split or merged.
    ByteStream,
    /// Whole messages; each receive returns exactly one send.
    Messages,
}

/// Whether data flows one way or both ways over one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// One writer side, one reader side (a pipe).
    OneWay,
    /// Both sides send and receive.
    TwoWay,
}

/// What a message carries besides its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tags {
    /// Nothing.
    None,
    /// A priority; higher priorities are received first.
    Priority,
    /// A type; the receiver selects by type.
    Type,
}

/// How processes find the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
}

/// Who can reach the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
pub enum Persistence {
    /// Until the last process that has it open closes it.
    Process,
    /// Until removed or the system reboots, open or not.
    Kernel,
    /// The name stays in the filesystem until removed; the channel itself
    /// lives while a process has it open.
    Filesystem,
}

/// The properties `unipc compare` shows, declared beside each facility.
#[derive(Clone, Copy, Debug)]
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
}

/// A limit read from this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// Joins two processes through it.
    pub connector: &'static dyn Connector,
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
pub struct MessageCap {
    /// Size in bytes.
    pub bytes: usize,
    /// What sets it ("msgsize_max in /proc/sys/fs/mqueue/msgsize_max").
    pub set_by: String,
}

/// What a link must carry, so queue facilities can size their objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkOptions {
    /// The largest message the link will be asked to carry.
    pub max_message_size: usize,
}

/// What the peer process needs to join a link: an address (a path, a
/// name, a port; may be empty) and descriptors it inherits, in order.
#[derive(Debug, Default)]
pub struct Ticket {
    /// Facility-specific address, opaque to the caller.
    pub address: String,
    /// Descriptors the peer must receive, in this order.
    pub fds: Vec<OwnedFd>,
}

impl Ticket {
    /// A ticket that is an address alone.
    pub fn address(address: impl Into<String>) -> Ticket {
        Ticket {
            address: address.into(),
            fds: Vec::new(),
        }
    }

    /// The address read as `IP:PORT`, for facilities on the network.
    ///
    /// # Errors
    /// [`crate::Error::InvalidEndpoint`] when it is not one.
    pub fn socket_addr(&self) -> Result<std::net::SocketAddr> {
        self.address
            .parse()
            .map_err(|_| crate::Error::InvalidEndpoint {
                input: self.address.clone(),
                reason: "expected IP:PORT".to_owned(),
            })
    }
}

/// Sets up links through one facility.
pub trait Connector: Sync {
    /// In the parent: creates the objects under `scratch` (a private
    /// directory the caller removes afterwards) and returns the parent's
    /// pending side and the peer's ticket.
    ///
    /// # Errors
    /// When an object cannot be created, or the facility cannot carry
    /// `options.max_message_size` on this machine (the error says why).
    fn prepare(
        &self,
        scratch: &Path,
        options: &LinkOptions,
    ) -> Result<(Box<dyn PendingLink>, Ticket)>;

    /// In the peer: joins the link from the parent's ticket.
    ///
    /// # Errors
    /// When the objects cannot be opened.
    fn join(&self, ticket: Ticket, options: &LinkOptions) -> Result<Box<dyn Link>>;
}

/// The parent's side of a link until the peer has joined.
pub trait PendingLink: Send {
    /// Completes the link; blocks until the peer has joined.
    ///
    /// # Errors
    /// When the peer never arrives or the objects fail.
    fn establish(self: Box<Self>) -> Result<Box<dyn Link>>;
}

/// One side of a two-way link between two processes.
///
/// `send` and `recv` move one unit of `buf.len()` bytes: a whole message on
/// a message facility, `buf.len()` bytes of the stream on a byte stream.
/// In non-blocking mode they spin on "would block" instead of sleeping in
/// the kernel (busy-polling).
pub trait Link: Send {
    /// Sends all of `data`.
    ///
    /// # Errors
    /// OS errors, or a message the facility cannot carry.
    fn send(&mut self, data: &[u8]) -> Result<()>;

    /// Fills `buf` with exactly one unit from the peer.
    ///
    /// # Errors
    /// OS errors, a closed peer, or a message of another size.
    fn recv(&mut self, buf: &mut [u8]) -> Result<()>;

    /// Switches between sleeping in the kernel and busy-polling.
    ///
    /// # Errors
    /// When the descriptors' flags cannot be changed.
    fn set_nonblocking(&mut self, nonblocking: bool) -> Result<()>;

    /// The same link as raw system-call operands, for baselines that
    /// measure the kernel without unipc's layers.
    fn raw(&self) -> RawIo<'_>;
}

/// The system calls that move data over a link, with their operands.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum RawIo<'a> {
    /// `read(2)` on `read`, `write(2)` on `write`.
    ReadWrite {
        /// Descriptor to read from.
        read: BorrowedFd<'a>,
        /// Descriptor to write to.
        write: BorrowedFd<'a>,
    },
    /// `recv(2)` on `read`, `send(2)` with MSG_NOSIGNAL on `write`.
    SendRecv {
        /// Descriptor to receive from.
        read: BorrowedFd<'a>,
        /// Descriptor to send on.
        write: BorrowedFd<'a>,
    },
    /// `mq_receive(3)` on `read`, `mq_send(3)` on `write`.
    PosixMq {
        /// Queue to receive from.
        read: BorrowedFd<'a>,
        /// Queue to send to.
        write: BorrowedFd<'a>,
    },
    /// `msgrcv(2)` on `read_id`, `msgsnd(2)` on `write_id`, type 1.
    SysvMsg {
        /// Queue identifier to receive from.
        read_id: i32,
        /// Queue identifier to send to.
        write_id: i32,
    },
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
    &crate::message::dgram::UNIX_FACILITY,
    &crate::message::dgram::UDP_FACILITY,
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
                    assert_ne!(f.properties.naming, Naming::None, "{}", f.name);
                }
                None => assert_eq!(
                    f.properties.naming,
                    Naming::None,
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
            "unix-dgram:/tmp/d",
            "udp:[::1]:53",
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
