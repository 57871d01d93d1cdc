//! Registration with tokio's reactor (`epoll_ctl(EPOLL_CTL_ADD)` through
//! `tokio::io::unix::AsyncFd::register`), for `crate::asynch`.
//!
//! # Safety
//!
//! `AsyncFd::register` is `unsafe`: the descriptor the value's `as_raw_fd`
//! returns must be open, and the same one referring to the same open file
//! description, for as long as the `AsyncFd` holds the value. That is a
//! property of the type registered, so it is the marker [`StableFd`], an
//! `unsafe trait` implemented here only, one line per type with the reason
//! it holds. And it must hold of the value inside the `AsyncFd`: the value
//! sits in [`Registered`], whose field only this file can reach, and the
//! `asynch` code never calls `AsyncFd::get_mut` (it reads through
//! `get_ref` and the readiness guards' `get_inner`), so nothing can replace
//! or swap the value while it is registered.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use tokio::io::unix::AsyncFd;

use crate::message::dgram::{UdpSocket, UnixDatagram};
use crate::message::posix_mq;
use crate::signal::SignalReceiver;
use crate::stream::{fifo, pipe, pty, seqpacket, tcp, unix};
use crate::sync::eventfd::EventFd;

/// A handle whose [`AsFd::as_fd`] returns the same open descriptor, of
/// the same open file description, from the moment it exists until it is
/// dropped, whatever is called on a shared reference to it.
///
/// `pub` in a private module: nameable in the bounds of `asynch`'s sealed
/// traits, implementable nowhere else.
///
/// # Safety
///
/// Implement only for a type that owns its descriptor in a field no
/// `&self` method replaces or closes.
pub unsafe trait StableFd: AsFd {}

// SAFETY (each of the following): the type owns its descriptor in one
// `OwnedFd` field (for a POSIX queue, the `Mqd` wrapper of its queue
// descriptor; for a UNIX socket, the `OwnedFd` of the shared `Socket` or
// `Bound` core) that is set when the value is made, never reassigned, and
// closed only by `Drop` (or moved out by a consuming `From<T> for OwnedFd`,
// which the value cannot undergo while registered); no method taking
// `&self` (nor `connect(&mut self)`, which connects the same descriptor)
// swaps it for another.
// SAFETY: as above.
unsafe impl StableFd for pipe::Sender {}
// SAFETY: as above.
unsafe impl StableFd for pipe::Receiver {}
// SAFETY: as above.
unsafe impl StableFd for fifo::Reader {}
// SAFETY: as above.
unsafe impl StableFd for fifo::Writer {}
// SAFETY: as above.
unsafe impl StableFd for pty::Master {}
// SAFETY: as above.
unsafe impl StableFd for unix::Stream {}
// SAFETY: as above.
unsafe impl StableFd for unix::Listener {}
// SAFETY: as above.
unsafe impl StableFd for seqpacket::Conn {}
// SAFETY: as above.
unsafe impl StableFd for seqpacket::Listener {}
// SAFETY: as above.
unsafe impl StableFd for tcp::Stream {}
// SAFETY: as above.
unsafe impl StableFd for tcp::Listener {}
// SAFETY: as above.
unsafe impl StableFd for posix_mq::Queue {}
// SAFETY: as above.
unsafe impl StableFd for UnixDatagram {}
// SAFETY: as above.
unsafe impl StableFd for UdpSocket {}
// SAFETY: as above.
unsafe impl StableFd for EventFd {}
// SAFETY: as above (its `SignalFd` field; `recv(&mut self)` only reads
// it, and `keep_blocked(self)` consumes the value).
unsafe impl StableFd for SignalReceiver {}

/// A handle registered with the reactor: `AsyncFd` wants `AsRawFd`, the
/// library's types give `AsFd`. The field is private to this file (see the
/// module's safety notes). `pub` in a private module, like [`StableFd`],
/// so that the sealed traits of `asynch` can name it.
#[derive(Debug)]
pub struct Registered<T>(T);

impl<T> Registered<T> {
    /// The handle.
    #[inline]
    pub(crate) fn get(&self) -> &T {
        &self.0
    }

    /// The handle, out of an `AsyncFd` that `into_inner` deregistered.
    pub(crate) fn into_inner(self) -> T {
        self.0
    }
}

impl<T: AsFd> AsRawFd for Registered<T> {
    #[inline]
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// `epoll_ctl(ADD)` on the current tokio runtime's reactor, for reading
/// and writing (edge-triggered, as tokio registers everything).
///
/// An error instead of tokio's panic when no runtime is current.
pub(crate) fn register<T: StableFd>(handle: T) -> Result<AsyncFd<Registered<T>>, io::Error> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(io::Error::other("no tokio runtime is current"));
    }
    // SAFETY: `register` needs the descriptor `as_raw_fd` returns to stay
    // open, the same, and of the same file description while the AsyncFd
    // holds the value: `T: StableFd` makes that a property of every value
    // of `T`, and the value is out of reach in `Registered` (see the
    // module notes). A current runtime was checked just above (tokio
    // panics without one; one without an I/O driver is an error).
    let registered = unsafe { AsyncFd::register(Registered(handle)) };
    registered.map_err(|err| err.into_parts().1)
}
