//! The ring in `unipc bench` (the `bench` feature): a [`Connector`] that
//! joins two processes with two rings, one each way, through the ring's
//! public API alone.
//!
//! The parent creates both rings (exclusively, mode 0o600, 64 slots of the
//! link's largest message) under names it announces first; the peer opens
//! them by name, takes the reader's side of the one towards it and the
//! writer's side of the other. Once the peer has joined the parent unlinks
//! both names: the memory stays while both map it, and a run killed from
//! then on leaves nothing in `/dev/shm`.
//!
//! Busy-polling ([`Link::set_nonblocking`]) is [`WaitStrategy::BusyPoll`];
//! otherwise each side sleeps at once ([`WaitStrategy::Block`]), as the
//! bench's blocking mode means. The pubsub's connector is the same with two
//! pubsub objects of one subscriber place each. Sends and
//! receives always pass [`Wait::Forever`], so a side waiting on a dead
//! peer gets the ring's [`Error::PeerDied`] rather than spinning forever.
//!
//! The raw baseline is the one the shared-memory facilities already have:
//! a [`mailbox`] mapping beside the rings, made by the same connector as
//! `shm:`'s ([`RawIo::Mailbox`]): one box each way, a sequence word the
//! receiver spins on (busy-polling) or sleeps on with a futex (blocking),
//! an acknowledgement word, and a `memcpy` of the bytes. Busy-polling,
//! that is the bare atomics ping-pong the ring is compared with; it holds
//! one unit each way, where the ring pipelines 64.
//!
//! [`WaitStrategy::BusyPoll`]: super::WaitStrategy::BusyPoll
//! [`WaitStrategy::Block`]: super::WaitStrategy::Block

// A process-wide counter for unique names, no shared memory.
#![allow(clippy::disallowed_types)]

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use super::pubsub::{PubSub, PubSubOptions, Publisher, Subscriber};
use super::{Receiver, Ring, RingOptions, Sender, WaitStrategy};
use crate::facility::{
    mailbox, Connector, CreatedObject, Link, LinkOptions, PendingLink, RawIo, Ticket,
};
use crate::message::{Messenger, Tag, Wait};
use crate::name::PosixName;
use crate::{Error, Mode, Result};

/// Slots in each ring.
const CAPACITY: u64 = 64;

/// The ring's connector, as its registry entry names it.
pub(super) static CONNECTOR: RingConnector = RingConnector;

/// Joins two processes with two rings named after the parent's pid, and
/// a mailbox mapping for the raw baseline.
pub(super) struct RingConnector;

/// The names of the two rings of the link `base`.
fn ring_names(base: &str) -> Result<[PosixName; 2]> {
    Ok([
        PosixName::new(&format!("{base}-to-peer"))?,
        PosixName::new(&format!("{base}-from-peer"))?,
    ])
}

/// The peer's address: the rings' base name, a space, the baseline's.
fn split_address(address: &str) -> Result<(&str, &str)> {
    address
        .split_once(' ')
        .ok_or_else(|| Error::InvalidEndpoint {
            input: address.to_owned(),
            reason: "expected a ring base name and a mailbox name".to_owned(),
        })
}

/// The parent's rings, created and not yet sides (a side cannot be kept
/// and unlinked by hand), and the baseline's pending link.
struct Pending {
    to_peer: Ring,
    from_peer: Ring,
    names: [PosixName; 2],
    baseline: Box<dyn PendingLink>,
}

impl Connector for RingConnector {
    fn prepare(
        &self,
        scratch: &std::path::Path,
        options: &LinkOptions,
        announce: &mut dyn FnMut(&CreatedObject),
    ) -> Result<(Box<dyn PendingLink>, Ticket)> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let base = format!(
            "/unipc-bench-{}-ring{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let names = ring_names(&base)?;
        let ring_options = RingOptions::new()
            .capacity(CAPACITY)
            .max_size(options.max_message_size)
            .mode(Mode::OWNER_RW)
            .exclusive(true);
        // Told before they exist, so no moment has them unannounced. A
        // ring handle that created its ring unlinks it on drop: on any
        // failure below, what was made is gone again.
        announce(&CreatedObject::PosixShm(names[0].clone()));
        let to_peer = ring_options.create(&names[0])?;
        announce(&CreatedObject::PosixShm(names[1].clone()));
        let from_peer = ring_options.create(&names[1])?;
        let (baseline, ticket) = mailbox::PosixConnector.prepare(scratch, options, announce)?;
        let address = format!("{base} {}", ticket.address);
        let pending = Pending {
            to_peer,
            from_peer,
            names,
            baseline,
        };
        Ok((Box::new(pending), Ticket::address(address)))
    }

    fn join(&self, ticket: Ticket, options: &LinkOptions) -> Result<Box<dyn Link>> {
        let (base, mailbox_name) = split_address(&ticket.address)?;
        let [to_peer, from_peer] = ring_names(base)?;
        let rx = Ring::open(&to_peer)?.into_receiver()?;
        let tx = Ring::open(&from_peer)?.into_sender()?;
        // Joined last: the parent waits for the mailbox's join, and then
        // both rings are open here.
        let baseline = mailbox::PosixConnector.join(Ticket::address(mailbox_name), options)?;
        Ok(Box::new(ChannelLink { tx, rx, baseline }))
    }
}

impl PendingLink for Pending {
    fn establish(self: Box<Self>) -> Result<Box<dyn Link>> {
        let Pending {
            to_peer,
            from_peer,
            names,
            baseline,
        } = *self;
        // Waits (10 s at most) until the peer has joined the mailbox,
        // which it does after opening both rings; on failure the rings
        // drop here and unlink their names.
        let baseline = baseline.establish()?;
        // The peer maps both rings now: their names have done their work.
        // Kept first, so the handles do not unlink them again on drop.
        let to_peer = to_peer.keep();
        crate::shm::posix::unlink(&names[0])?;
        let from_peer = from_peer.keep();
        crate::shm::posix::unlink(&names[1])?;
        Ok(Box::new(ChannelLink {
            tx: to_peer.into_sender()?,
            rx: from_peer.into_receiver()?,
            baseline,
        }))
    }
}

/// What the link needs of each side beyond [`Messenger`]: its wait
/// strategy (the ring's and the pubsub's sides alike).
trait Side: Messenger + Send {
    fn set_strategy(&self, strategy: WaitStrategy);
}

impl Side for Sender {
    fn set_strategy(&self, strategy: WaitStrategy) {
        self.set_wait_strategy(strategy);
    }
}

impl Side for Receiver {
    fn set_strategy(&self, strategy: WaitStrategy) {
        self.set_wait_strategy(strategy);
    }
}

impl Side for Publisher {
    fn set_strategy(&self, strategy: WaitStrategy) {
        self.set_wait_strategy(strategy);
    }
}

impl Side for Subscriber {
    fn set_strategy(&self, strategy: WaitStrategy) {
        self.set_wait_strategy(strategy);
    }
}

/// One end of the link: the sending side of one channel, the receiving
/// side of the other, and the baseline's mailbox (used only for
/// [`Link::raw`]).
struct ChannelLink<T, U> {
    tx: T,
    rx: U,
    baseline: Box<dyn Link>,
}

impl<T: Side, U: Side> Link for ChannelLink<T, U> {
    fn send(&mut self, data: &[u8]) -> Result<()> {
        self.tx.send_tagged(data, Tag::None, Wait::Forever)
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<()> {
        let got = self.rx.recv_into(buf, Wait::Forever)?;
        if got.len != buf.len() {
            let wrong = io::Error::new(
                io::ErrorKind::InvalidData,
                format!("expected a message of {} bytes, got {}", buf.len(), got.len),
            );
            return Err(Error::os(self.rx.object(), "receive", wrong));
        }
        Ok(())
    }

    /// The bench's two modes are "busy-poll" and "each side sleeps in the
    /// kernel": [`WaitStrategy::BusyPoll`] and [`WaitStrategy::Block`], so
    /// each compares with the baseline's own mode (a spin on the
    /// mailbox's words, a futex sleep).
    fn set_nonblocking(&mut self, nonblocking: bool) -> Result<()> {
        let strategy = if nonblocking {
            WaitStrategy::BusyPoll
        } else {
            WaitStrategy::Block
        };
        self.tx.set_strategy(strategy);
        self.rx.set_strategy(strategy);
        self.baseline.set_nonblocking(nonblocking)
    }

    fn raw(&self) -> RawIo<'_> {
        self.baseline.raw()
    }
}

/// The pubsub's connector: two pubsub objects of one subscriber place,
/// one each way, and the same baseline as the ring's.
pub(super) static PUBSUB_CONNECTOR: PubSubConnector = PubSubConnector;

/// Joins two processes with two pubsub objects; see [`RingConnector`].
pub(super) struct PubSubConnector;

/// Unlinks a name on drop unless disarmed: the parent's subscriber cannot
/// unlink its object (a side is not kept or unlinked by hand).
struct UnlinkOnDrop(Option<PosixName>);

impl Drop for UnlinkOnDrop {
    fn drop(&mut self) {
        if let Some(name) = self.0.take() {
            let _ = crate::shm::posix::unlink(&name);
        }
    }
}

struct PubSubPending {
    to_peer: PubSub,
    to_peer_name: PosixName,
    /// Subscribed in `prepare`, before the peer can publish anything.
    from_peer: Subscriber,
    from_peer_name: UnlinkOnDrop,
    baseline: Box<dyn PendingLink>,
}

impl Connector for PubSubConnector {
    fn prepare(
        &self,
        scratch: &std::path::Path,
        options: &LinkOptions,
        announce: &mut dyn FnMut(&CreatedObject),
    ) -> Result<(Box<dyn PendingLink>, Ticket)> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let base = format!(
            "/unipc-bench-{}-pubsub{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let [to_name, from_name] = ring_names(&base)?;
        let pubsub_options = PubSubOptions::new()
            .capacity(CAPACITY)
            .max_size(options.max_message_size)
            .subscribers(1)
            .mode(Mode::OWNER_RW)
            .exclusive(true);
        announce(&CreatedObject::PosixShm(to_name.clone()));
        let to_peer = pubsub_options.create(&to_name)?;
        announce(&CreatedObject::PosixShm(from_name.clone()));
        let made = pubsub_options.create(&from_name)?.keep();
        let from_peer_name = UnlinkOnDrop(Some(from_name));
        let from_peer = made.subscribe()?;
        let (baseline, ticket) = mailbox::PosixConnector.prepare(scratch, options, announce)?;
        let address = format!("{base} {}", ticket.address);
        let pending = PubSubPending {
            to_peer,
            to_peer_name: to_name,
            from_peer,
            from_peer_name,
            baseline,
        };
        Ok((Box::new(pending), Ticket::address(address)))
    }

    fn join(&self, ticket: Ticket, options: &LinkOptions) -> Result<Box<dyn Link>> {
        let (base, mailbox_name) = split_address(&ticket.address)?;
        let [to_peer, from_peer] = ring_names(base)?;
        let rx = PubSubOptions::open(&to_peer)?.subscribe()?;
        let tx = PubSubOptions::open(&from_peer)?.publish()?;
        let baseline = mailbox::PosixConnector.join(Ticket::address(mailbox_name), options)?;
        Ok(Box::new(ChannelLink { tx, rx, baseline }))
    }
}

impl PendingLink for PubSubPending {
    fn establish(self: Box<Self>) -> Result<Box<dyn Link>> {
        let PubSubPending {
            to_peer,
            to_peer_name,
            from_peer,
            from_peer_name,
            baseline,
        } = *self;
        // The peer has subscribed to one and opened the other once it
        // joins the mailbox; the names have done their work then.
        let baseline = baseline.establish()?;
        let to_peer = to_peer.keep();
        crate::shm::posix::unlink(&to_peer_name)?;
        drop(from_peer_name);
        Ok(Box::new(ChannelLink {
            tx: to_peer.publish()?,
            rx: from_peer,
            baseline,
        }))
    }
}
