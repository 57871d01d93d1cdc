//! [`AsyncEventFd`]: an eventfd awaited through tokio's reactor.

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd};

use tokio::io::unix::AsyncFd;

use super::{reactor_error, register};
use crate::message::Wait;
use crate::sync::eventfd::EventFd;
use crate::sys::reactor::Registered;
use crate::{Error, Result};

/// An [`EventFd`] whose [`add`](Self::add) and [`take`](Self::take) are
/// async, through `tokio::io::unix::AsyncFd` (the descriptor is always
/// non-blocking).
///
/// # Cancellation safety
///
/// Both methods: the `read`/`write` is made only inside the `poll` that
/// returns its result, so a dropped [`take`](Self::take) took nothing and
/// a dropped [`add`](Self::add) added nothing.
///
/// # Examples
///
/// ```
/// use unipc::asynch::AsyncEventFd;
/// use unipc::sync::eventfd::EventFdOptions;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let event = AsyncEventFd::new(EventFdOptions::new().create()?)?;
/// event.add(3).await?;
/// assert_eq!(event.take().await?, 3);
/// # Ok::<(), unipc::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AsyncEventFd {
    fd: AsyncFd<Registered<EventFd>>,
}

impl fmt::Debug for AsyncEventFd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncEventFd")
            .field("event", self.get_ref())
            .finish()
    }
}

impl AsyncEventFd {
    /// `epoll_ctl(ADD)`—makes `event` async.
    ///
    /// # Errors
    /// [`Error::Os`] from the registration (outside a tokio runtime with its
    /// I/O driver enabled).
    pub fn new(event: EventFd) -> Result<AsyncEventFd> {
        let object = event.object().clone();
        Ok(AsyncEventFd {
            fd: register(event, object.as_str())?,
        })
    }

    /// The blocking eventfd inside.
    pub fn get_ref(&self) -> &EventFd {
        self.fd.get_ref().get()
    }

    /// Deregisters the eventfd and gives it back.
    pub fn into_inner(self) -> EventFd {
        self.fd.into_inner().into_inner()
    }

    /// `write(2)`—adds `n`, waiting while the counter is too full to take
    /// it. Cancellation safe: a dropped future added nothing.
    ///
    /// # Errors
    /// As [`EventFd::add`] (never [`Error::WouldBlock`], which it waits out).
    pub async fn add(&self, n: u64) -> Result<()> {
        loop {
            let mut guard = self
                .fd
                .writable()
                .await
                .map_err(|e| reactor_error(self.get_ref().object().as_str(), e))?;
            match guard.get_inner().get().add(n, Wait::Never) {
                Err(Error::WouldBlock { .. }) => guard.clear_ready(),
                other => return other,
            }
        }
    }

    /// `read(2)`—waits for a non-zero count and takes it (all of it, or 1
    /// in semaphore mode). Cancellation safe: a dropped future took nothing.
    ///
    /// # Errors
    /// As [`EventFd::take`] (never [`Error::WouldBlock`], which it waits out).
    pub async fn take(&self) -> Result<u64> {
        loop {
            let mut guard = self
                .fd
                .readable()
                .await
                .map_err(|e| reactor_error(self.get_ref().object().as_str(), e))?;
            match guard.get_inner().get().take(Wait::Never) {
                Err(Error::WouldBlock { .. }) => guard.clear_ready(),
                other => return other,
            }
        }
    }
}

impl AsFd for AsyncEventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.get_ref().as_fd()
    }
}
