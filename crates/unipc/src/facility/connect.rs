//! How two processes join through a facility: the plumbing of `unipc
//! bench`, compiled only with the `bench` feature.
//!
//! Each facility module implements [`Connector`] beside its code, on the
//! two generic links of `link.rs`; the bench drives it without naming any
//! facility. None of this is needed to use a facility, so a default build
//! of the library leaves it out.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

use crate::Result;

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
