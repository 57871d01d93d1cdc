//! How two processes join through a facility: the plumbing of `unipc
//! bench`, compiled only with the `bench` feature.
//!
//! Each facility module implements [`Connector`] beside its code, on the
//! two generic links of `link.rs`; the bench drives it without naming any
//! facility. None of this is needed to use a facility, so a default build
//! of the library leaves it out.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::name::PosixName;
use crate::Result;

/// What a link must carry, so queue facilities can size their objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkOptions {
    /// The largest message the link will be asked to carry.
    pub max_message_size: usize,
}

impl LinkOptions {
    /// A link that carries messages of up to `max_message_size` bytes.
    pub fn new(max_message_size: usize) -> LinkOptions {
        LinkOptions { max_message_size }
    }
}

/// What the peer process needs to join a link: an address (a path, a
/// name, a port; may be empty) and descriptors it inherits, in order.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Ticket {
    /// Facility-specific address, opaque to the caller.
    pub address: String,
    /// Descriptors the peer must receive, in this order.
    pub fds: Vec<OwnedFd>,
}

impl Ticket {
    /// A ticket of an address and descriptors, as a peer rebuilds it from
    /// what it was passed.
    pub fn new(address: impl Into<String>, fds: Vec<OwnedFd>) -> Ticket {
        Ticket {
            address: address.into(),
            fds,
        }
    }

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
    /// Names every object it creates that outlives the process unless
    /// removed (queues, queue names, files; not descriptors, sockets
    /// without a file or ports) by calling `announce`: *before* creating
    /// it (a path, a POSIX name, a System V key from [`fresh_sysv_key`]).
    /// So a caller that writes each announcement down before returning
    /// from `announce` can remove everything after a SIGKILL at any
    /// moment. What
    /// the peer creates while joining lies under `scratch`. On failure,
    /// what was announced has been removed again (or was never made).
    ///
    /// # Errors
    /// When an object cannot be created, or the facility cannot carry
    /// `options.max_message_size` on this machine (the error says why).
    fn prepare(
        &self,
        scratch: &Path,
        options: &LinkOptions,
        announce: &mut dyn FnMut(&CreatedObject),
    ) -> Result<(Box<dyn PendingLink>, Ticket)>;

    /// In the peer: joins the link from the parent's ticket.
    ///
    /// # Errors
    /// When the objects cannot be opened.
    fn join(&self, ticket: Ticket, options: &LinkOptions) -> Result<Box<dyn Link>>;
}

/// An object [`Connector::prepare`] creates in the parent that the
/// system keeps when the process dies before the link's handles remove it:
/// what a caller that must clean up after a killed run has to remove.
///
/// Deliberately not `#[non_exhaustive]`: a new kind of object must fail to
/// compile in the bench's clean-up until it is handled there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreatedObject {
    /// A System V message queue about to be made, exclusively, under this
    /// key ([`fresh_sysv_key`]): told before it exists, so no moment is
    /// left in which a killed run leaves it behind (a private object's
    /// identifier exists only once the object does). Lives until removed
    /// (`msgctl(IPC_RMID)`); removed by key, and only if this user made it.
    SysvQueue(i32),
    /// A POSIX message queue's name: lives until unlinked (`mq_unlink`).
    PosixMq(PosixName),
    /// A file: a FIFO or a socket file (`unlink`).
    Path(PathBuf),
    /// A System V shared-memory segment about to be made under this key,
    /// as for [`SysvQueue`](Self::SysvQueue): lives until removed
    /// (`shmctl(IPC_RMID)`) and its last process detaches.
    SysvShm(i32),
    /// A POSIX shared-memory object's name: lives until unlinked
    /// (`shm_unlink`).
    PosixShm(PosixName),
    /// A System V semaphore set about to be made under this key, as for
    /// [`SysvQueue`](Self::SysvQueue): lives until removed
    /// (`semctl(IPC_RMID)`).
    SysvSemaphores(i32),
}

/// A System V key nobody is likely to use, for an object a connector makes
/// exclusively and announces (by this key) before making it: random (the
/// standard library's per-process random hash seed, mixed with a counter
/// and the pid), positive, never `IPC_PRIVATE`. A key someone else holds
/// makes the exclusive create fail; nothing of theirs is adopted.
pub fn fresh_sysv_key() -> i32 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(NEXT.fetch_add(1, Relaxed));
    hasher.write_u32(std::process::id());
    (hasher.finish() as i32 & i32::MAX) | 1
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
    /// Copies into the box at `outbox` and out of the box at `inbox` of a
    /// mapping both processes hold, with futex waits and wakes on their
    /// words; offsets as in [`super::mailbox::layout`].
    Mailbox {
        /// The shared mapping.
        mapping: &'a crate::shm::Mapping,
        /// Offset of the box this side writes.
        outbox: usize,
        /// Offset of the box this side reads.
        inbox: usize,
        /// The largest unit a box holds.
        max: usize,
        /// Set once the other process has died: a raw loop asleep in a
        /// futex wait is woken then, and must stop.
        peer_gone: &'a std::sync::atomic::AtomicBool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facility::{all, Naming};
    use crate::message::{posix_mq, sysv_mq};

    fn exists(object: &CreatedObject) -> bool {
        match object {
            CreatedObject::SysvQueue(key) => sysv_mq::QueueOptions::new()
                .open(crate::name::SysvKey::Key(*key))
                .is_ok(),
            CreatedObject::PosixMq(name) => posix_mq::Queue::open(name).is_ok(),
            CreatedObject::Path(path) => path.symlink_metadata().is_ok(),
            // Removed (IPC_RMID) but still attached counts as gone: its
            // key is free, no new process can reach it, and the kernel
            // frees it at the last detach.
            CreatedObject::SysvShm(key) => crate::shm::sysv::SegmentOptions::new()
                .open(crate::name::SysvKey::Key(*key))
                .is_ok(),
            CreatedObject::PosixShm(name) => crate::shm::posix::Segment::open(name).is_ok(),
            CreatedObject::SysvSemaphores(_) => unreachable!("no connector makes one"),
        }
    }

    #[test]
    fn each_connector_announces_what_it_creates_and_its_handles_remove_them() {
        let scratch = tempfile::Builder::new()
            .prefix("unipc-connect-")
            .tempdir()
            .unwrap();
        let options = LinkOptions {
            max_message_size: 64,
        };
        for facility in all() {
            let Some(connector) = facility.connector else {
                continue;
            };
            let mut announced = Vec::new();
            let mut existed_when_announced = Vec::new();
            let (pending, _ticket) = connector
                .prepare(scratch.path(), &options, &mut |object| {
                    existed_when_announced.push(exists(object));
                    announced.push(object.clone());
                })
                .unwrap_or_else(|e| panic!("{}: {e}", facility.name));
            let named = !matches!(
                facility.properties.naming,
                Naming::None | Naming::NetworkAddress
            );
            assert_eq!(
                !announced.is_empty(),
                named,
                "{}: {announced:?}",
                facility.name
            );
            for (object, existed) in announced.iter().zip(existed_when_announced) {
                // Told before it was made, always.
                assert!(!existed, "{}: {object:?} told after", facility.name);
                assert!(exists(object), "{}: {object:?} is not there", facility.name);
            }
            drop(pending);
            for object in &announced {
                assert!(!exists(object), "{}: {object:?} outlived", facility.name);
            }
        }
        assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0);
    }
}
