//! [`FdMessenger`]: the async message interface over a facility's
//! descriptor.

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd};

use tokio::io::unix::AsyncFd;

use super::{reactor_error, register, AsyncMessenger};
use crate::error::ObjectName;
use crate::message::dgram::{UdpSocket, UnixDatagram};
use crate::message::{posix_mq, Limits, Messenger, Received, Tag, Wait};
use crate::stream::seqpacket;
use crate::sys::reactor::Registered;
use crate::{Error, Result};

mod sealed {
    /// A descriptor whose readiness is the facility's: readable when a
    /// message waits, writable when one more fits.
    pub trait Pollable: crate::sys::reactor::StableFd {}
}

/// A message facility whose descriptor tells when it can be received from
/// and sent to, so [`FdMessenger`] can wait on it: a POSIX queue (on Linux
/// the queue descriptor is a file descriptor that `epoll` watches), a UNIX
/// or UDP datagram socket, a seqpacket connection. Sealed.
pub trait Pollable: Messenger + AsFd + Send + Sync + sealed::Pollable {}

impl sealed::Pollable for posix_mq::Queue {}
impl Pollable for posix_mq::Queue {}
impl sealed::Pollable for UnixDatagram {}
impl Pollable for UnixDatagram {}
impl sealed::Pollable for UdpSocket {}
impl Pollable for UdpSocket {}
impl sealed::Pollable for seqpacket::Conn {}
impl Pollable for seqpacket::Conn {}

/// [`AsyncMessenger`] over a message facility's descriptor, through
/// `tokio::io::unix::AsyncFd`: POSIX queues, UNIX and UDP datagram sockets,
/// seqpacket connections.
///
/// Each send and receive is the facility's own
/// [`Messenger::send_tagged`]/[`Messenger::recv_into`] with
/// [`Wait::Never`]; on [`Error::Full`]/[`Error::Empty`] the future waits
/// for the descriptor to become writable/readable and tries again. A POSIX
/// queue is switched to `O_NONBLOCK` ([`Messenger::set_polling`]), so its
/// calls are a plain `mq_send`/`mq_receive`; sockets already pass
/// `MSG_DONTWAIT`.
///
/// # Cancellation safety
///
/// Every method: the system call is made only inside the `poll` that
/// returns its result, so a dropped receive took no message and a dropped
/// send sent nothing.
///
/// # Examples
///
/// ```
/// use unipc::asynch::{AsyncMessenger, FdMessenger};
/// use unipc::message::Tag;
/// use unipc::message::posix_mq::QueueOptions;
/// use unipc::name::PosixName;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let name = PosixName::new(&format!("/unipc-doc-async-{}", std::process::id()))?;
/// let queue = FdMessenger::new(QueueOptions::new().max_messages(4).create(&name)?)?;
/// queue.send_tagged(b"urgent", Tag::Priority(5)).await?;
/// let (bytes, tag) = queue.recv_vec().await?;
/// assert_eq!((bytes.as_slice(), tag), (&b"urgent"[..], Tag::Priority(5)));
/// # Ok::<(), unipc::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct FdMessenger<M: Pollable> {
    fd: AsyncFd<Registered<M>>,
    object: ObjectName,
}

impl<M: Pollable> fmt::Debug for FdMessenger<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FdMessenger")
            .field("object", &self.object.as_str())
            .finish()
    }
}

impl<M: Pollable> FdMessenger<M> {
    /// `epoll_ctl(ADD)`—makes `messenger` async (a POSIX queue is switched
    /// to `O_NONBLOCK` first).
    ///
    /// # Errors
    /// [`Error::Os`] from `fcntl`/`mq_setattr`, or from the registration
    /// (outside a tokio runtime with its I/O driver enabled).
    pub fn new(messenger: M) -> Result<FdMessenger<M>> {
        messenger.set_polling(true)?;
        let object = messenger.object();
        Ok(FdMessenger {
            fd: register(messenger, object.as_str())?,
            object,
        })
    }

    /// The blocking facility inside; its calls with [`Wait::Never`] are
    /// the non-blocking `try_` forms.
    pub fn get_ref(&self) -> &M {
        self.fd.get_ref().get()
    }

    /// Deregisters the facility and gives it back with polling off (a
    /// POSIX queue blocking again).
    ///
    /// # Errors
    /// The facility's, from switching its descriptor back.
    pub fn into_inner(self) -> Result<M> {
        let messenger = self.fd.into_inner().into_inner();
        messenger.set_polling(false)?;
        Ok(messenger)
    }
}

impl<M: Pollable> AsFd for FdMessenger<M> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.get_ref().as_fd()
    }
}

impl<M: Pollable> AsyncMessenger for FdMessenger<M> {
    fn object(&self) -> ObjectName {
        self.object.clone()
    }

    fn limits(&self) -> Result<Limits> {
        self.get_ref().limits()
    }

    fn recv_buffer_hint(&self) -> Result<usize> {
        self.get_ref().recv_buffer_hint()
    }

    /// Cancellation safe: a dropped future sent the whole message or
    /// nothing (one `mq_send`/`send` inside the `poll` that returns).
    async fn send_tagged(&self, message: &[u8], tag: Tag) -> Result<()> {
        loop {
            let mut guard = self
                .fd
                .writable()
                .await
                .map_err(|e| reactor_error(self.object.as_str(), e))?;
            match guard
                .get_inner()
                .get()
                .send_tagged(message, tag, Wait::Never)
            {
                Err(Error::Full { .. }) => guard.clear_ready(),
                other => return other,
            }
        }
    }

    /// The facility's own [`Messenger::recv_vec`]: a socket sizes the
    /// buffer from a peek at the waiting message instead of allocating
    /// [`recv_buffer_hint`](AsyncMessenger::recv_buffer_hint) bytes (up to
    /// twice `wmem_max` for a UNIX datagram). Cancellation safe, as
    /// [`recv_into`](AsyncMessenger::recv_into).
    async fn recv_vec(&self) -> Result<(Vec<u8>, Tag)> {
        loop {
            let mut guard = self
                .fd
                .readable()
                .await
                .map_err(|e| reactor_error(self.object.as_str(), e))?;
            match guard.get_inner().get().recv_vec(Wait::Never) {
                Err(Error::Empty { .. }) => guard.clear_ready(),
                other => return other,
            }
        }
    }

    /// Cancellation safe: a dropped future took no message (one
    /// `mq_receive`/`recv` inside the `poll` that returns).
    async fn recv_into(&self, buf: &mut [u8]) -> Result<Received> {
        loop {
            let mut guard = self
                .fd
                .readable()
                .await
                .map_err(|e| reactor_error(self.object.as_str(), e))?;
            match guard.get_inner().get().recv_into(buf, Wait::Never) {
                Err(Error::Empty { .. }) => guard.clear_ready(),
                other => return other,
            }
        }
    }
}
