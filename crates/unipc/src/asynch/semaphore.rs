//! [`AsyncSemaphore`]: a named POSIX semaphore awaited through a helper
//! thread (a semaphore has no descriptor).
//!
//! Unlike `msgrcv`, `sem_timedwait` has a timeout, so the helper blocks in
//! it (a post wakes it at once) for at most [`SLICE`] at a time and checks
//! between slices whether it should go on: it waits only while more futures
//! wait than units it holds, and stops when the semaphore is dropped.

use std::fmt;
use std::pin::pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::Notify;

use crate::message::Wait;
use crate::sync::posix_sem::Semaphore;
use crate::{Error, Result};

/// The longest the helper blocks in one `sem_timedwait`: what dropping an
/// [`AsyncSemaphore`] may wait for its helper to notice.
const SLICE: Duration = Duration::from_millis(10);

struct Shared {
    sem: Semaphore,
    state: Mutex<State>,
    /// Wakes the helper: a new waiter, or stop.
    work: Condvar,
    /// Wakes the futures: the helper took a unit, or failed.
    done: Notify,
}

#[derive(Default)]
struct State {
    /// Units the helper took for waiters that have not come for them yet
    /// (or were dropped meanwhile).
    held: u32,
    /// Wait futures waiting now.
    waiters: usize,
    /// An error the helper met, for the next waiter.
    error: Option<Error>,
    stop: bool,
}

impl State {
    fn wants_unit(&self) -> bool {
        !self.stop && self.error.is_none() && self.waiters > self.held as usize
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every step under the lock is one assignment: a panic elsewhere
        // cannot leave the state half-changed.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A named POSIX semaphore ([`Semaphore`]) whose [`wait`](Self::wait) is
/// async.
///
/// [`wait`](Self::wait) first tries `sem_trywait` on the calling task; at
/// zero the future waits and one helper thread per semaphore blocks in
/// `sem_timedwait` for it (10 ms at a time, so it can stop), waking the
/// future as soon as a post lets it take a unit. [`post`](Self::post) never
/// waits and is a plain `sem_post`.
///
/// # Cancellation safety
///
/// [`wait`](Self::wait): a unit the helper took stays in this handle until a
/// waiting future polls and takes it; a dropped future leaves it there for
/// the next [`wait`](Self::wait). The helper takes units only while more
/// futures wait than units it holds. Dropping the handle stops and joins the
/// helper (at most 10 ms) and posts back every unit it still holds, so no
/// unit is lost.
///
/// # Examples
///
/// ```
/// use unipc::asynch::AsyncSemaphore;
/// use unipc::name::PosixName;
/// use unipc::sync::posix_sem::SemaphoreOptions;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let name = PosixName::new(&format!("/unipc-doc-asem-{}", std::process::id()))?;
/// let sem = AsyncSemaphore::new(SemaphoreOptions::new().create(&name)?)?;
/// let waiting = sem.wait();
/// sem.post()?;
/// waiting.await?;
/// # Ok::<(), unipc::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AsyncSemaphore {
    shared: Arc<Shared>,
    helper: Option<JoinHandle<()>>,
}

impl fmt::Debug for AsyncSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("AsyncSemaphore")
            .field("semaphore", &self.shared.sem.object().as_str())
            .field("held", &state.held)
            .field("waiters", &state.waiters)
            .finish()
    }
}

impl AsyncSemaphore {
    /// Starts the helper thread for `sem`. Needs no runtime.
    ///
    /// # Errors
    /// [`Error::Os`] when the thread cannot be spawned.
    pub fn new(sem: Semaphore) -> Result<AsyncSemaphore> {
        let object = sem.object().clone();
        let shared = Arc::new(Shared {
            sem,
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            done: Notify::new(),
        });
        let for_helper = Arc::clone(&shared);
        let helper = std::thread::Builder::new()
            .name("unipc-sem-bridge".into())
            .spawn(move || run_helper(&for_helper))
            .map_err(|err| Error::os(object, "spawn the semaphore's helper thread", err))?;
        Ok(AsyncSemaphore {
            shared,
            helper: Some(helper),
        })
    }

    /// The blocking semaphore inside (its `value` does not count the units
    /// this handle holds for its waiters).
    pub fn get_ref(&self) -> &Semaphore {
        &self.shared.sem
    }

    /// `sem_post`—adds one, waking a waiter (in any process).
    ///
    /// # Errors
    /// As [`Semaphore::post`].
    pub fn post(&self) -> Result<()> {
        self.shared.sem.post()
    }

    /// Takes one unit, waiting while the value is zero. Cancellation safe:
    /// a dropped future took nothing (a unit taken for it stays for the
    /// next wait).
    ///
    /// # Errors
    /// As [`Semaphore::wait`] (never [`Error::WouldBlock`] or
    /// [`Error::TimedOut`], which it waits out).
    pub async fn wait(&self) -> Result<()> {
        let shared = &*self.shared;
        let mut waiting = None;
        loop {
            let mut notified = pin!(shared.done.notified());
            notified.as_mut().enable();
            {
                let mut state = shared.lock();
                if state.held > 0 {
                    state.held -= 1;
                    return Ok(());
                }
                if let Some(err) = state.error.take() {
                    return Err(err);
                }
                match shared.sem.wait(Wait::Never) {
                    Err(Error::WouldBlock { .. }) => {}
                    other => return other,
                }
                if waiting.is_none() {
                    state.waiters += 1;
                    waiting = Some(Waiting { shared });
                    shared.work.notify_one();
                }
            }
            notified.await;
        }
    }
}

impl Drop for AsyncSemaphore {
    fn drop(&mut self) {
        if let Some(helper) = self.helper.take() {
            self.shared.lock().stop = true;
            self.shared.work.notify_all();
            // The helper returns within one slice; it does not panic.
            let _ = helper.join();
        }
        let held = std::mem::take(&mut self.shared.lock().held);
        for _ in 0..held {
            // Back to the semaphore, for any process: a post fails only at
            // SEM_VALUE_MAX, which these units were taken from below.
            let _ = self.shared.sem.post();
        }
    }
}

/// Counts a waiting future until it ends or is dropped.
struct Waiting<'a> {
    shared: &'a Shared,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.shared.lock().waiters -= 1;
    }
}

/// The helper: blocks in `sem_timedwait` while futures wait for more units
/// than it holds.
fn run_helper(shared: &Shared) {
    let mut state = shared.lock();
    loop {
        if state.stop {
            return;
        }
        if !state.wants_unit() {
            state = shared
                .work
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            continue;
        }
        drop(state);
        let taken = shared.sem.wait(Wait::For(SLICE));
        state = shared.lock();
        match taken {
            Ok(()) => {
                state.held += 1;
                shared.done.notify_waiters();
            }
            Err(Error::TimedOut { .. }) => {}
            Err(err) => {
                state.error = Some(err);
                shared.done.notify_waiters();
            }
        }
    }
}
