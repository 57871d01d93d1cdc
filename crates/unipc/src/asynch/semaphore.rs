//! [`AsyncSemaphore`] and [`AsyncSharedSemaphore`]: a named POSIX
//! semaphore, or an unnamed one in shared memory, awaited through a helper
//! thread (a semaphore has no descriptor). Both are one core over the
//! [`Units`] the two kinds share.
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

use crate::error::ObjectName;
use crate::message::Wait;
use crate::shm::Mapping;
use crate::sync::posix_sem::{Semaphore, SharedSemaphore};
use crate::{Error, Result};

/// The longest the helper blocks in one `sem_timedwait`: what dropping an
/// [`AsyncSemaphore`] may wait for its helper to notice.
const SLICE: Duration = Duration::from_millis(10);

/// What the helper and the futures do to a semaphore, named or not.
trait Units: Send + Sync + 'static {
    fn object(&self) -> ObjectName;
    fn wait(&self, wait: Wait) -> Result<()>;
    fn post(&self) -> Result<()>;
}

impl Units for Semaphore {
    fn object(&self) -> ObjectName {
        Semaphore::object(self).clone()
    }
    fn wait(&self, wait: Wait) -> Result<()> {
        Semaphore::wait(self, wait)
    }
    fn post(&self) -> Result<()> {
        Semaphore::post(self)
    }
}

/// An unnamed semaphore at `offset` of a mapping this handle keeps alive.
struct InMemory {
    map: Arc<Mapping>,
    offset: usize,
    object: ObjectName,
}

impl InMemory {
    #[allow(unsafe_code)]
    fn semaphore(&self) -> SharedSemaphore<'_> {
        // SAFETY: an `InMemory` is made only by `AsyncSharedSemaphore::init`
        // or `::attach` after `SharedSemaphore::init`/`attach` succeeded on
        // this mapping and offset (`attach`'s caller vouched that nobody
        // destroys it while the handle, which keeps the mapping, lives).
        // Checked once there, not again on every wait and post.
        unsafe { SharedSemaphore::checked(&self.map, self.offset, self.object.clone()) }
    }
}

impl Units for InMemory {
    fn object(&self) -> ObjectName {
        self.object.clone()
    }
    fn wait(&self, wait: Wait) -> Result<()> {
        self.semaphore().wait(wait)
    }
    fn post(&self) -> Result<()> {
        self.semaphore().post()
    }
}

struct Shared<S> {
    sem: S,
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

impl<S> Shared<S> {
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
    core: Core<Semaphore>,
}

impl fmt::Debug for AsyncSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.debug("AsyncSemaphore", f)
    }
}

impl AsyncSemaphore {
    /// Starts the helper thread for `sem`. Needs no runtime.
    ///
    /// # Errors
    /// [`Error::Os`] when the thread cannot be spawned.
    pub fn new(sem: Semaphore) -> Result<AsyncSemaphore> {
        Ok(AsyncSemaphore {
            core: Core::new(sem)?,
        })
    }

    /// The blocking semaphore inside (its `value` does not count the units
    /// this handle holds for its waiters).
    pub fn get_ref(&self) -> &Semaphore {
        &self.core.shared.sem
    }

    /// `sem_post`—adds one, waking a waiter (in any process).
    ///
    /// # Errors
    /// As [`Semaphore::post`].
    pub fn post(&self) -> Result<()> {
        self.core.shared.sem.post()
    }

    /// Takes one unit, waiting while the value is zero. Cancellation safe:
    /// a dropped future took nothing (a unit taken for it stays for the
    /// next wait).
    ///
    /// # Errors
    /// As [`Semaphore::wait`] (never [`Error::WouldBlock`] or
    /// [`Error::TimedOut`], which it waits out).
    pub async fn wait(&self) -> Result<()> {
        self.core.wait().await
    }
}

/// An unnamed process-shared POSIX semaphore ([`SharedSemaphore`]) in a
/// shared [`Mapping`] that the handle keeps alive (an `Arc`), whose
/// [`wait`](Self::wait) is async.
///
/// It waits as [`AsyncSemaphore`] does (a try on the calling task, then
/// one helper thread in `sem_timedwait` 10 ms at a time), with the same
/// cancellation safety: a unit the helper took for a dropped wait stays in
/// the handle for the next, and is posted back when the handle drops.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use unipc::asynch::AsyncSharedSemaphore;
/// use unipc::shm::mapped::MapOptions;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let map = Arc::new(MapOptions::new().map_anonymous(4096)?); // shared with children forked now
/// let sem = AsyncSharedSemaphore::init(Arc::clone(&map), 64, 0)?;
/// let waiting = sem.wait();
/// sem.post()?;
/// waiting.await?;
/// assert_eq!(sem.value()?, 0);
/// # Ok::<(), unipc::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AsyncSharedSemaphore {
    core: Core<InMemory>,
}

impl fmt::Debug for AsyncSharedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.debug("AsyncSharedSemaphore", f)
    }
}

impl AsyncSharedSemaphore {
    /// `sem_init(pshared = 1)` at `offset` of `map`, as
    /// [`SharedSemaphore::init`] (one process initializes, before the
    /// others attach), and the helper thread.
    ///
    /// # Errors
    /// As [`SharedSemaphore::init`]; [`Error::Os`] when the thread cannot
    /// be spawned.
    pub fn init(map: Arc<Mapping>, offset: usize, value: u32) -> Result<AsyncSharedSemaphore> {
        let object = SharedSemaphore::init(&map, offset, value)?.object().clone();
        Self::start(InMemory {
            map,
            offset,
            object,
        })
    }

    /// The semaphore another process (or this one) initialized at `offset`
    /// of memory that `map` maps too, and the helper thread.
    ///
    /// # Safety
    /// As [`SharedSemaphore::attach`]: a `sem_init(pshared = 1)` ran on
    /// those bytes, and no process destroys the semaphore while this
    /// handle lives.
    ///
    /// # Errors
    /// As [`SharedSemaphore::attach`]; [`Error::Os`] when the thread cannot
    /// be spawned.
    #[allow(unsafe_code)]
    pub unsafe fn attach(map: Arc<Mapping>, offset: usize) -> Result<AsyncSharedSemaphore> {
        // SAFETY: the caller's contract is `SharedSemaphore::attach`'s.
        let object = unsafe { SharedSemaphore::attach(&map, offset) }?
            .object()
            .clone();
        Self::start(InMemory {
            map,
            offset,
            object,
        })
    }

    fn start(sem: InMemory) -> Result<AsyncSharedSemaphore> {
        Ok(AsyncSharedSemaphore {
            core: Core::new(sem)?,
        })
    }

    /// The semaphore as errors name it.
    pub fn object(&self) -> &ObjectName {
        &self.core.shared.sem.object
    }

    /// `sem_getvalue` (not counting the units this handle holds for its
    /// waiters).
    ///
    /// # Errors
    /// As [`SharedSemaphore::value`].
    pub fn value(&self) -> Result<u32> {
        self.core.shared.sem.semaphore().value()
    }

    /// `sem_post`—adds one, waking a waiter (in any process).
    ///
    /// # Errors
    /// As [`SharedSemaphore::post`].
    pub fn post(&self) -> Result<()> {
        self.core.shared.sem.post()
    }

    /// Takes one unit, waiting while the value is zero. Cancellation safe,
    /// as [`AsyncSemaphore::wait`].
    ///
    /// # Errors
    /// As [`SharedSemaphore::wait`] (never [`Error::WouldBlock`] or
    /// [`Error::TimedOut`], which it waits out).
    pub async fn wait(&self) -> Result<()> {
        self.core.wait().await
    }
}

/// The state, the helper thread and the wait both types share.
struct Core<S: Units> {
    shared: Arc<Shared<S>>,
    helper: Option<JoinHandle<()>>,
}

impl<S: Units> Core<S> {
    fn new(sem: S) -> Result<Core<S>> {
        let object = sem.object();
        let shared = Arc::new(Shared {
            sem,
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            done: Notify::new(),
        });
        let helper = super::spawn_helper(
            "unipc-sem-bridge",
            object.as_str(),
            &shared,
            run_helper::<S>,
        )?;
        Ok(Core {
            shared,
            helper: Some(helper),
        })
    }

    fn debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct(name)
            .field("semaphore", &self.shared.sem.object().as_str())
            .field("held", &state.held)
            .field("waiters", &state.waiters)
            .finish()
    }

    async fn wait(&self) -> Result<()> {
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

impl<S: Units> Drop for Core<S> {
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
struct Waiting<'a, S> {
    shared: &'a Shared<S>,
}

impl<S> Drop for Waiting<'_, S> {
    fn drop(&mut self) {
        self.shared.lock().waiters -= 1;
    }
}

/// The helper: blocks in `sem_timedwait` while futures wait for more units
/// than it holds.
fn run_helper<S: Units>(shared: &Shared<S>) {
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
