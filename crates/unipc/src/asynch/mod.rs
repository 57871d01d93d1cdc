//! Async (tokio) interfaces to every facility, behind the `tokio` feature.
//!
//! | type | what it wraps | how it waits |
//! |---|---|---|
//! | [`AsyncStream`] | every byte stream: pipe and FIFO ends, UNIX stream and seqpacket sockets, socketpairs, TCP, a pty master | `AsyncFd` readiness, `AsyncRead`/`AsyncWrite` |
//! | [`AsyncListener`] | the UNIX stream, seqpacket and TCP listeners | `AsyncFd` readiness, async `accept` |
//! | [`FdMessenger`] | message facilities with a descriptor: POSIX queues, UNIX and UDP datagram sockets, seqpacket connections | `AsyncFd` readiness |
//! | [`Bridge`] | message facilities without one: System V queues, the `ring:` and `pubsub:` channels | a helper thread for the waiting futures: it sleeps on the ring's futex doorbell, and polls a System V queue |
//! | [`AsyncEventFd`] | an eventfd | `AsyncFd` readiness |
//! | [`AsyncSignalReceiver`] | a signalfd ([`crate::signal::SignalReceiver`]) | `AsyncFd` readiness |
//! | [`AsyncSemaphore`] | a named POSIX semaphore | a helper thread in `sem_timedwait` for the waiting futures |
//! | [`AsyncSharedSemaphore`] | an unnamed POSIX semaphore in a shared mapping | the same |
//! | [`AsyncFutex`] | a futex word of a shared mapping | a helper thread in `FUTEX_WAIT` for the waiting futures |
//! | [`AsyncSemaphoreSet`] | a System V semaphore set | a helper thread polling `semop(IPC_NOWAIT)` for the waiting futures |
//! | [`AsyncMessages`] | any message endpoint opened from its string (`MessageHandle::into_async`) | the one of the above its facility allows |
//!
//! Every message type implements one interface, [`AsyncMessenger`]: the
//! same [`Tag`]s, limits and errors as [`Messenger`], each call waiting as
//! long as it takes; a timeout is tokio's (`tokio::time::timeout`) or
//! [`AsyncMessenger::recv_timeout`], which reports [`Error::TimedOut`] as
//! the blocking calls do.
//!
//! # How an operation waits, and why nothing is lost when it is dropped
//!
//! Every operation is the blocking type's own call made with
//! [`Wait::Never`], so the bytes take exactly the road they take without
//! tokio (sizes checked before any call, `MSG_NOSIGNAL` on sockets,
//! SIGPIPE masked around pipe writes, the same typed errors). Over a
//! descriptor, a future that finds nothing to do waits for the reactor to
//! say the descriptor became ready and tries again; the call itself never
//! spans an `.await`. A receive therefore either took one whole message,
//! inside the `poll` that returns it, or took nothing; a send either queued
//! the whole message or nothing. Dropping such a future at any `.await`
//! loses no message and sends no part of one.
//!
//! The helper-thread types ([`Bridge`], [`AsyncSemaphore`], [`AsyncSharedSemaphore`],
//! [`AsyncSemaphoreSet`], [`AsyncFutex`]) keep the same promise without a
//! descriptor: what the helper takes for a future stays in the handle until
//! a future takes it (or goes back to the object when the handle drops),
//! and what it applies or sends for a future it does under the lock the
//! future's drop takes. Each type's documentation says how. Every one stops
//! and joins its helper on drop.
//!
//! # Cost
//!
//! Over a descriptor an operation that can proceed at once costs the
//! blocking call (no extra system call: the reactor is consulted only after
//! `EAGAIN`); one that must wait costs a failed call, the reactor's
//! wake-up and the call again, as for tokio's own sockets. A helper-thread
//! type answers at once when it can and otherwise waits for its helper: a
//! hand-over between two threads, and for the polling ones ([`Bridge`]
//! over a System V queue, [`AsyncSemaphoreSet`]) their back-off. `examples/async_round_trip.rs`
//! measures both against the blocking calls and tokio's own sockets.
//!
//! [`Messenger`]: crate::message::Messenger
//! [`Tag`]: crate::message::Tag
//! [`Wait::Never`]: crate::message::Wait::Never
//! [`Error::TimedOut`]: crate::Error::TimedOut

use std::future::Future;
use std::io;
use std::time::Duration;

use tokio::io::unix::AsyncFd;

use crate::error::ObjectName;
use crate::message::{Limits, Received, Tag};
use crate::sys::{self, reactor::Registered, reactor::StableFd};
use crate::{Error, Result};

mod bridge;
mod eventfd;
mod futex;
mod handle;
mod message;
mod semaphore;
mod semaphore_set;
mod signal;
mod stream;

pub use bridge::Bridge;
pub use eventfd::AsyncEventFd;
pub use futex::AsyncFutex;
pub use handle::{AsyncMessages, AsyncStreams};
pub use message::{FdMessenger, Pollable};
pub use semaphore::{AsyncSemaphore, AsyncSharedSemaphore};
pub use semaphore_set::AsyncSemaphoreSet;
pub use signal::AsyncSignalReceiver;
pub use stream::{Accept, AsyncListener, AsyncStream, ByteStream};

/// One async interface for every message facility: [`FdMessenger`] over a
/// descriptor, [`Bridge`] over the rest.
///
/// The tags, limits and errors are those of the blocking
/// [`Messenger`](crate::message::Messenger); only waiting differs: each
/// call waits as long as it takes, and a timeout is the caller's
/// (`tokio::time::timeout`, or [`recv_timeout`](Self::recv_timeout) for
/// [`Error::TimedOut`]).
///
/// # Cancellation safety
///
/// Every method is cancellation safe: dropping the future of a receive
/// loses no message (the next receive gets it), dropping the future of a
/// send either sent the whole message or nothing.
///
/// # Examples
///
/// ```
/// use unipc::asynch::{AsyncMessenger, FdMessenger};
/// use unipc::message::dgram::UnixDatagram;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let (a, b) = UnixDatagram::pair()?;
/// let (a, b) = (FdMessenger::new(a)?, FdMessenger::new(b)?);
/// a.send(b"ping").await?;
/// assert_eq!(b.recv().await?, b"ping");
/// # Ok::<(), unipc::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait AsyncMessenger: Sync {
    /// The object's endpoint in words (`posix-mq:/jobs`), as errors name it.
    fn object(&self) -> ObjectName;

    /// The object's limits, as [`Messenger::limits`](crate::message::Messenger::limits).
    ///
    /// # Errors
    /// When the limits cannot be read from the kernel.
    fn limits(&self) -> Result<Limits>;

    /// The size of a receive buffer that takes any message, as
    /// [`Messenger::recv_buffer_hint`](crate::message::Messenger::recv_buffer_hint).
    ///
    /// # Errors
    /// When the limits cannot be read from the kernel.
    fn recv_buffer_hint(&self) -> Result<usize>;

    /// Sends one message with `tag`, waiting for room as long as it takes.
    ///
    /// Cancellation safe: a dropped future sent the whole message or
    /// nothing.
    ///
    /// # Errors
    /// As [`Messenger::send_tagged`](crate::message::Messenger::send_tagged)
    /// (never [`Error::Full`], which it waits out).
    fn send_tagged(&self, message: &[u8], tag: Tag) -> impl Future<Output = Result<()>> + Send;

    /// Receives one message into `buf`, waiting as long as it takes.
    ///
    /// Cancellation safe: a dropped future took no message.
    ///
    /// # Errors
    /// As [`Messenger::recv_into`](crate::message::Messenger::recv_into)
    /// (never [`Error::Empty`], which it waits out): a buffer too small is
    /// [`Error::BufferTooSmall`] and the message stays for the next
    /// receive where the facility allows.
    fn recv_into(&self, buf: &mut [u8]) -> impl Future<Output = Result<Received>> + Send;

    /// Sends one message with the facility's default tag.
    ///
    /// Cancellation safe, as [`send_tagged`](Self::send_tagged).
    ///
    /// # Errors
    /// As [`send_tagged`](Self::send_tagged).
    fn send(&self, message: &[u8]) -> impl Future<Output = Result<()>> + Send {
        self.send_tagged(message, Tag::None)
    }

    /// Receives one message into a new `Vec` of
    /// [`recv_buffer_hint`](Self::recv_buffer_hint) bytes, cut to the
    /// message, with its tag.
    ///
    /// Cancellation safe, as [`recv_into`](Self::recv_into).
    ///
    /// # Errors
    /// As [`recv_into`](Self::recv_into).
    fn recv_vec(&self) -> impl Future<Output = Result<(Vec<u8>, Tag)>> + Send {
        async move {
            let mut buf = vec![0; self.recv_buffer_hint()?];
            let got = self.recv_into(&mut buf).await?;
            buf.truncate(got.len);
            Ok((buf, got.tag))
        }
    }

    /// Receives one message.
    ///
    /// Cancellation safe, as [`recv_into`](Self::recv_into).
    ///
    /// # Errors
    /// As [`recv_into`](Self::recv_into).
    fn recv(&self) -> impl Future<Output = Result<Vec<u8>>> + Send {
        async move { Ok(self.recv_vec().await?.0) }
    }

    /// Receives one message into `buf`, waiting at most `timeout`.
    ///
    /// Cancellation safe, as [`recv_into`](Self::recv_into): a receive that
    /// timed out took nothing.
    ///
    /// # Errors
    /// [`Error::TimedOut`] naming the object when nothing came in time;
    /// otherwise as [`recv_into`](Self::recv_into).
    fn recv_timeout(
        &self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> impl Future<Output = Result<Received>> + Send {
        async move {
            match tokio::time::timeout(timeout, self.recv_into(buf)).await {
                Ok(result) => result,
                Err(_) => Err(Error::TimedOut {
                    object: self.object(),
                    timeout,
                }),
            }
        }
    }

    /// Sends one message with `tag`, waiting at most `timeout` for room.
    ///
    /// Cancellation safe, as [`send_tagged`](Self::send_tagged): a send
    /// that timed out sent nothing.
    ///
    /// # Errors
    /// [`Error::TimedOut`] naming the object when there was no room in
    /// time; otherwise as [`send_tagged`](Self::send_tagged).
    fn send_timeout(
        &self,
        message: &[u8],
        tag: Tag,
        timeout: Duration,
    ) -> impl Future<Output = Result<()>> + Send {
        async move {
            match tokio::time::timeout(timeout, self.send_tagged(message, tag)).await {
                Ok(result) => result,
                Err(_) => Err(Error::TimedOut {
                    object: self.object(),
                    timeout,
                }),
            }
        }
    }
}

/// Registers `handle` with the current runtime's reactor for reading and
/// writing; the error names `object`.
fn register<T: StableFd>(handle: T, object: &str) -> Result<AsyncFd<Registered<T>>> {
    sys::reactor::register(handle).map_err(|err| {
        Error::os(object, "register with the tokio reactor", err).with_hint(
            "an async handle must be made inside a tokio runtime with its I/O driver enabled",
        )
    })
}

/// Starts the helper thread `name` of a helper-thread type, running `run`
/// over its `shared` state until it returns.
///
/// # Errors
/// [`Error::Os`] naming `object` when the thread cannot be spawned.
fn spawn_helper<S: Send + Sync + 'static>(
    name: &str,
    object: &str,
    shared: &std::sync::Arc<S>,
    run: impl FnOnce(&S) + Send + 'static,
) -> Result<std::thread::JoinHandle<()>> {
    let shared = std::sync::Arc::clone(shared);
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || run(&shared))
        .map_err(|err| Error::os(object, "spawn the async helper thread", err))
}

/// An error from the reactor while waiting for readiness.
fn reactor_error(object: &str, err: io::Error) -> Error {
    Error::os(object, "wait for readiness", err)
}
