//! [`AsyncFutex`]: waits on a futex word awaited through a helper thread
//! (a futex has no descriptor).
//!
//! `FUTEX_WAIT` has a timeout, so the helper sleeps in it for at most
//! [`SLICE`] at a time while a future waits, and checks between slices
//! whether to go on. A wait consumes nothing, except the wake that ends it:
//! a `FUTEX_WAKE` of one sleeper that reaches the helper wakes every future
//! waiting on that value (futex waits may end spuriously, never late), and
//! if every one of them is dropped before it saw the wake, the wake is
//! passed on with `FUTEX_WAKE(1)` so that another sleeper gets it.

use std::collections::HashMap;
use std::fmt;
use std::pin::pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::Notify;

use crate::shm::Mapping;
use crate::sync::futex::Futex;
use crate::sync::Wait;
use crate::{Error, Result};

/// The longest the helper sleeps in one `FUTEX_WAIT`: what dropping an
/// [`AsyncFutex`] may wait for its helper.
const SLICE: Duration = Duration::from_millis(10);

struct Shared {
    map: Arc<Mapping>,
    offset: usize,
    state: Mutex<State>,
    work: Condvar,
    done: Notify,
}

#[derive(Default)]
struct State {
    waiters: Vec<Waiter>,
    /// Per wake the helper received: how many futures it woke that have
    /// not yet returned or been dropped, and whether one returned.
    wakes: HashMap<u64, Wake>,
    next_id: u64,
    next_wake: u64,
    stop: bool,
}

struct Waiter {
    id: u64,
    expected: u32,
    /// Set when the helper saw the word change, or received a wake.
    woken: bool,
    /// The wake received for it, if that is what woke it.
    wake: Option<u64>,
}

struct Wake {
    outstanding: usize,
    seen: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Each step under the lock leaves the state consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn futex(&self) -> Result<Futex<'_>> {
        Futex::new(&self.map, self.offset)
    }
}

/// A futex word of a shared [`Mapping`] whose [`wait`](Self::wait) is
/// async; [`wake`](Self::wake) is the plain `FUTEX_WAKE`.
///
/// A wait whose word no longer holds `expected` returns at once; otherwise
/// one helper thread per handle sleeps in `FUTEX_WAIT` (10 ms at a time, so
/// it can stop) for the waiting futures.
///
/// # Cancellation safety
///
/// [`wait`](Self::wait) consumes nothing but the wake that ends it, and a
/// wake the helper received for futures that were all dropped before they
/// saw it is passed on (`FUTEX_WAKE(1)`). As with any futex, a wait may
/// end spuriously: load the word and test again. Dropping the handle stops
/// and joins the helper (at most 10 ms).
///
/// # Examples
///
/// ```
/// use std::sync::atomic::Ordering;
/// use std::sync::Arc;
/// use unipc::asynch::AsyncFutex;
/// use unipc::name::SysvKey;
/// use unipc::shm::{sysv::SegmentOptions, Access};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let segment = SegmentOptions::new().size(4096).create(SysvKey::Private)?;
/// let futex = AsyncFutex::new(Arc::new(segment.attach(Access::ReadWrite)?), 0)?;
/// let waiting = futex.wait(0);
/// let waking = async {
///     tokio::time::sleep(std::time::Duration::from_millis(10)).await;
///     futex.word().store(1, Ordering::Release);
///     futex.wake(1)
/// };
/// let (waited, _woken) = tokio::join!(waiting, waking);
/// waited?;
/// assert_eq!(futex.word().load(Ordering::Acquire), 1);
/// # Ok::<(), unipc::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AsyncFutex {
    shared: Arc<Shared>,
    helper: Option<JoinHandle<()>>,
}

impl fmt::Debug for AsyncFutex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("AsyncFutex")
            .field("mapping", &self.shared.map.object().as_str())
            .field("offset", &self.shared.offset)
            .field("waiters", &state.waiters.len())
            .finish()
    }
}

impl AsyncFutex {
    /// The futex word at `offset` of `map`, and its helper thread.
    ///
    /// # Errors
    /// As [`Futex::new`] (bounds, alignment, a read-only mapping);
    /// [`Error::Os`] when the thread cannot be spawned.
    pub fn new(map: Arc<Mapping>, offset: usize) -> Result<AsyncFutex> {
        let object = Futex::new(&map, offset)?.object().clone();
        let shared = Arc::new(Shared {
            map,
            offset,
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            done: Notify::new(),
        });
        let helper =
            super::spawn_helper("unipc-futex-bridge", object.as_str(), &shared, run_helper)?;
        Ok(AsyncFutex {
            shared,
            helper: Some(helper),
        })
    }

    /// The word, for the caller's protocol.
    pub fn word(&self) -> &AtomicU32 {
        // Checked in `new`: in bounds, aligned, writable.
        match self.shared.map.atomic_u32(self.shared.offset) {
            Ok(word) => word,
            Err(_) => unreachable!("the futex word was checked when the handle was made"),
        }
    }

    /// `FUTEX_WAKE`—wakes at most `count` sleepers on the word, in any
    /// process; returns how many.
    ///
    /// # Errors
    /// As [`Futex::wake`].
    pub fn wake(&self, count: u32) -> Result<u32> {
        self.shared.futex()?.wake(count)
    }

    /// Waits while the word holds `expected`, until a wake (or spuriously).
    /// Cancellation safe: a dropped future consumed no wake (see above).
    ///
    /// # Errors
    /// As [`Futex::wait`] (never [`Error::TimedOut`]).
    pub async fn wait(&self, expected: u32) -> Result<()> {
        let shared = &*self.shared;
        if self.word().load(Ordering::Acquire) != expected {
            return Ok(());
        }
        let id = {
            let mut state = shared.lock();
            let id = state.next_id;
            state.next_id += 1;
            state.waiters.push(Waiter {
                id,
                expected,
                woken: false,
                wake: None,
            });
            id
        };
        let mut registered = Registered {
            shared,
            id,
            returned: false,
        };
        shared.work.notify_one();
        loop {
            let mut notified = pin!(shared.done.notified());
            notified.as_mut().enable();
            {
                let state = shared.lock();
                let woken = state.waiters.iter().any(|w| w.id == id && w.woken);
                if woken || self.word().load(Ordering::Acquire) != expected {
                    drop(state);
                    registered.returned = true;
                    return Ok(());
                }
            }
            notified.await;
        }
    }
}

impl Drop for AsyncFutex {
    fn drop(&mut self) {
        if let Some(helper) = self.helper.take() {
            self.shared.lock().stop = true;
            self.shared.work.notify_all();
            // The helper returns within one slice; it does not panic.
            let _ = helper.join();
        }
    }
}

/// Removes a waiter when its future returns or is dropped, and passes on a
/// wake that none of the futures it woke saw.
struct Registered<'a> {
    shared: &'a Shared,
    id: u64,
    returned: bool,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        let Some(at) = state.waiters.iter().position(|w| w.id == self.id) else {
            return;
        };
        let waiter = state.waiters.swap_remove(at);
        let Some(wake) = waiter.wake else {
            return;
        };
        let pass_on = match state.wakes.get_mut(&wake) {
            Some(record) => {
                record.outstanding -= 1;
                record.seen |= self.returned;
                let unseen = record.outstanding == 0 && !record.seen;
                if record.outstanding == 0 {
                    state.wakes.remove(&wake);
                }
                unseen
            }
            None => false,
        };
        drop(state);
        if pass_on {
            if let Ok(futex) = self.shared.futex() {
                // Best effort: a failed wake leaves the other sleepers to
                // their own timeouts, as a lost wake-up would.
                let _ = futex.wake(1);
            }
        }
    }
}

fn run_helper(shared: &Shared) {
    let Ok(futex) = shared.futex() else {
        return; // Checked in `new`; cannot fail here.
    };
    let mut state = shared.lock();
    loop {
        if state.stop {
            return;
        }
        // Futures whose value is gone return at once.
        let now = futex.word().load(Ordering::Acquire);
        let mut changed = false;
        for waiter in state.waiters.iter_mut().filter(|w| !w.woken) {
            if waiter.expected != now {
                waiter.woken = true;
                changed = true;
            }
        }
        if changed {
            shared.done.notify_waiters();
        }
        if !state.waiters.iter().any(|w| !w.woken) {
            state = shared
                .work
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            continue;
        }
        drop(state);
        let outcome = futex.wait(now, Wait::For(SLICE));
        state = shared.lock();
        match outcome {
            Ok(()) => {
                // Woken (or the value changed, which the next round sees):
                // every future waiting on this value wakes, sharing the wake.
                let wake = state.next_wake;
                state.next_wake += 1;
                let mut outstanding = 0;
                for waiter in state
                    .waiters
                    .iter_mut()
                    .filter(|w| !w.woken && w.expected == now)
                {
                    waiter.woken = true;
                    waiter.wake = Some(wake);
                    outstanding += 1;
                }
                if outstanding > 0 {
                    state.wakes.insert(
                        wake,
                        Wake {
                            outstanding,
                            seen: false,
                        },
                    );
                } else if futex.word().load(Ordering::Acquire) == now {
                    // Every future left while we slept: not ours to keep.
                    drop(state);
                    let _ = futex.wake(1);
                    state = shared.lock();
                }
                shared.done.notify_waiters();
            }
            Err(Error::TimedOut { .. }) => {}
            Err(_) => {
                // A futex(2) failure other than a timeout cannot come from
                // a checked word; wake the futures so they look again.
                for waiter in state.waiters.iter_mut() {
                    waiter.woken = true;
                }
                shared.done.notify_waiters();
            }
        }
    }
}
