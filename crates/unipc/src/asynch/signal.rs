//! [`AsyncSignalReceiver`]: signals received through a signalfd awaited by
//! tokio's reactor.

use std::fmt;

use tokio::io::unix::AsyncFd;

use super::{reactor_error, register};
use crate::signal::{Received, SignalReceiver};
use crate::sys::reactor::Registered;
use crate::Result;

/// A [`SignalReceiver`] whose [`recv`](Self::recv) is async: its signalfd
/// (always non-blocking) through `tokio::io::unix::AsyncFd`.
///
/// # Threads
///
/// A signal sent to a process goes to any thread that does not block it,
/// and only blocked signals reach a signalfd. [`SignalReceiver::new`]
/// blocks the signals in the calling thread, so make it **before building
/// the runtime**, in the thread that builds it: the runtime's threads then
/// inherit the mask. A thread started before (or one that unblocks the
/// signals) can take a signal under its default action. The receiver
/// restores the old mask of the thread that drops it: get it back with
/// [`into_inner`](Self::into_inner) and drop it, or
/// [`keep_blocked`](SignalReceiver::keep_blocked) it, there.
///
/// # Cancellation safety
///
/// [`recv`](Self::recv): the signalfd is read only inside the `poll` that
/// returns the signal, so a dropped future took none.
///
/// # Examples
///
/// ```
/// use unipc::asynch::AsyncSignalReceiver;
/// use unipc::signal::{self, SignalReceiver};
///
/// let sig = "RTMIN+4".parse()?;
/// // Blocked in this thread, before the runtime's threads exist.
/// let receiver = SignalReceiver::new(&[sig])?;
/// let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
/// let receiver = rt.block_on(async {
///     let receiver = AsyncSignalReceiver::new(receiver)?;
///     signal::send(std::process::id(), sig, Some(7))?;
///     let got = receiver.recv().await?;
///     assert_eq!((got.signal, got.value), (sig, Some(7)));
///     Ok::<_, unipc::Error>(receiver.into_inner())
/// })?;
/// drop(rt);
/// receiver.keep_blocked();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AsyncSignalReceiver {
    fd: AsyncFd<Registered<SignalReceiver>>,
}

impl fmt::Debug for AsyncSignalReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncSignalReceiver")
            .field("receiver", self.fd.get_ref().get())
            .finish()
    }
}

impl AsyncSignalReceiver {
    /// `epoll_ctl(ADD)`—makes `receiver` async.
    ///
    /// # Errors
    /// [`Error::Os`](crate::Error::Os) from the registration (outside a
    /// tokio runtime with its I/O driver enabled).
    pub fn new(receiver: SignalReceiver) -> Result<AsyncSignalReceiver> {
        let name = receiver.name().to_owned();
        Ok(AsyncSignalReceiver {
            fd: register(receiver, &name)?,
        })
    }

    /// Deregisters the signalfd and gives the receiver back.
    pub fn into_inner(self) -> SignalReceiver {
        self.fd.into_inner().into_inner()
    }

    /// Takes one signal, waiting for one as long as it takes: the lowest
    /// pending number first, realtime ones of one number in send order.
    /// Cancellation safe: a dropped future took no signal.
    ///
    /// # Errors
    /// [`Error::Os`](crate::Error::Os) from the read or the reactor.
    pub async fn recv(&self) -> Result<Received> {
        loop {
            let mut guard = self
                .fd
                .readable()
                .await
                .map_err(|e| reactor_error(self.fd.get_ref().get().name(), e))?;
            match guard.get_inner().get().try_recv()? {
                Some(received) => return Ok(received),
                None => guard.clear_ready(),
            }
        }
    }
}
