//! [`AsyncSemaphoreSet`]: a System V semaphore set whose `semop` is async,
//! through a polling helper thread (a set has no descriptor).
//!
//! `semtimedop` could block with a timeout, but a blocked call that
//! succeeds after its future was dropped would have applied operations
//! nobody asked for any more, and undoing them is not always possible (an
//! add another process took meanwhile). So, as [`super::Bridge`] does for
//! sends, the helper makes only `IPC_NOWAIT` calls, each under the lock
//! that a dropped future takes to withdraw its operations: they are
//! applied whole, once, or never.

use std::collections::VecDeque;
use std::fmt;
use std::pin::pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::Notify;

use crate::message::Wait;
use crate::sync::sysv_sem::{Op, SemaphoreSet};
use crate::{Error, Result};

/// Rounds of call-and-yield before the helper sleeps (as the bridge's).
const SPIN_ROUNDS: u32 = 200;
/// The helper's first sleep once spinning found nothing.
const FIRST_PAUSE: Duration = Duration::from_micros(50);
/// Its longest sleep between two rounds while a future waits.
const LAST_PAUSE: Duration = Duration::from_millis(1);

struct Shared {
    set: SemaphoreSet,
    state: Mutex<State>,
    work: Condvar,
    done: Notify,
}

#[derive(Default)]
struct State {
    /// Operations waiting to be applied, oldest first.
    jobs: VecDeque<Job>,
    next_id: u64,
    stop: bool,
}

struct Job {
    id: u64,
    ops: Vec<Op>,
    /// Set by the helper once applied, or failed.
    result: Option<Result<()>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Each step under the lock is one push, pop or assignment.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A System V semaphore set ([`SemaphoreSet`]) whose
/// [`apply`](Self::apply) is async.
///
/// [`apply`](Self::apply) first makes the `semop` with `IPC_NOWAIT` on the
/// calling task; when it would block, the operations wait in this handle
/// and one helper thread tries every waiting group with `IPC_NOWAIT` (200
/// rounds of call and `sched_yield`, then sleeps from 50 µs doubling to
/// 1 ms; with nothing waiting it sleeps until something does).
///
/// # Cancellation safety
///
/// [`apply`](Self::apply): every `semop` is made under the handle's lock,
/// and a dropped future withdraws its operations under the same lock. If
/// the helper applied them after the future's last poll, the drop reverses
/// them with the inverse operations ([`Op::inverse`]) before any other
/// waiting group is tried, so a dropped apply took nothing. A group of
/// takes and waits for zero is always reversed (its inverse only adds,
/// which fails only past the kernel's largest value, `SEMVMX`);
/// a group that also adds is reversed unless another process took the
/// units it added in between, and then it stays applied, whole. Dropping
/// the handle stops and joins the helper.
///
/// # Examples
///
/// ```
/// use unipc::asynch::AsyncSemaphoreSet;
/// use unipc::name::SysvKey;
/// use unipc::sync::sysv_sem::{Op, SetOptions};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let set = AsyncSemaphoreSet::new(SetOptions::new().count(2).create(SysvKey::Private)?)?;
/// let both = [Op::take(0, 1), Op::take(1, 1)];
/// let take = set.apply(&both);
/// let give = async {
///     tokio::time::sleep(std::time::Duration::from_millis(10)).await;
///     set.apply(&[Op::add(0, 1), Op::add(1, 1)]).await
/// };
/// let (taken, given) = tokio::join!(take, give);
/// taken?;
/// given?;
/// assert_eq!(set.get_ref().values()?, [0, 0]);
/// # Ok::<(), unipc::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AsyncSemaphoreSet {
    shared: Arc<Shared>,
    helper: Option<JoinHandle<()>>,
}

impl fmt::Debug for AsyncSemaphoreSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("AsyncSemaphoreSet")
            .field("set", &self.shared.set.object().as_str())
            .field("waiting", &state.jobs.len())
            .finish()
    }
}

impl AsyncSemaphoreSet {
    /// Starts the helper thread for `set`. Needs no runtime.
    ///
    /// # Errors
    /// [`Error::Os`] when the thread cannot be spawned.
    pub fn new(set: SemaphoreSet) -> Result<AsyncSemaphoreSet> {
        let object = set.object().clone();
        let shared = Arc::new(Shared {
            set,
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            done: Notify::new(),
        });
        let helper =
            super::spawn_helper("unipc-semset-bridge", object.as_str(), &shared, run_helper)?;
        Ok(AsyncSemaphoreSet {
            shared,
            helper: Some(helper),
        })
    }

    /// The blocking set inside (its calls bypass this handle's queue).
    pub fn get_ref(&self) -> &SemaphoreSet {
        &self.shared.set
    }

    /// `semop`—applies `ops` atomically, waiting as long as it takes for
    /// them to be possible. Cancellation safe: a dropped future applied
    /// none of them (a group that also adds: see the type's
    /// cancellation-safety section).
    ///
    /// # Errors
    /// As [`SemaphoreSet::apply`] (never [`Error::WouldBlock`] or
    /// [`Error::TimedOut`], which it waits out).
    pub async fn apply(&self, ops: &[Op]) -> Result<()> {
        let shared = &*self.shared;
        let id = {
            let mut state = shared.lock();
            match shared.set.apply(ops, Wait::Never) {
                Err(Error::WouldBlock { .. }) => {}
                other => return other,
            }
            let id = state.next_id;
            state.next_id += 1;
            state.jobs.push_back(Job {
                id,
                ops: ops.to_vec(),
                result: None,
            });
            id
        };
        let _queued = Queued { shared, id };
        shared.work.notify_one();
        loop {
            let mut notified = pin!(shared.done.notified());
            notified.as_mut().enable();
            {
                let mut state = shared.lock();
                let job = state.jobs.iter_mut().find(|job| job.id == id);
                if let Some(result) = job.and_then(|job| job.result.take()) {
                    return result;
                }
            }
            notified.await;
        }
    }
}

impl Drop for AsyncSemaphoreSet {
    fn drop(&mut self) {
        if let Some(helper) = self.helper.take() {
            self.shared.lock().stop = true;
            self.shared.work.notify_all();
            // The helper makes only non-blocking calls; it does not panic.
            let _ = helper.join();
        }
    }
}

/// Withdraws a job when its future ends or is dropped.
struct Queued<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        let id = self.id;
        let mut state = self.shared.lock();
        let Some(at) = state.jobs.iter().position(|job| job.id == id) else {
            return;
        };
        let job = state.jobs.remove(at).expect("the position was just found");
        // The helper may have applied the operations after the future's
        // last poll: nobody will see that result, so it is reversed here,
        // under the lock, before any other job is tried. The inverse of a
        // group of takes and waits is a group of adds, which never waits;
        // a group that also added may find its units taken meanwhile, and
        // then it stands, applied whole (the documented exception).
        if let Some(Ok(())) = job.result {
            let inverse: Vec<Op> = job.ops.iter().filter_map(Op::inverse).collect();
            if !inverse.is_empty() {
                let _ = self.shared.set.apply(&inverse, Wait::Never);
            }
            // Units given back may let another waiting job through now.
            self.shared.work.notify_one();
        }
    }
}

fn run_helper(shared: &Shared) {
    let mut idle: u32 = 0;
    let mut state = shared.lock();
    loop {
        if state.stop {
            return;
        }
        let mut progress = false;
        let mut pending = false;
        for job in state.jobs.iter_mut().filter(|job| job.result.is_none()) {
            match shared.set.apply(&job.ops, Wait::Never) {
                Err(Error::WouldBlock { .. }) => pending = true,
                result => {
                    job.result = Some(result);
                    progress = true;
                }
            }
        }
        if progress {
            idle = 0;
            shared.done.notify_waiters();
            continue;
        }
        if !pending {
            idle = 0;
            state = shared
                .work
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            continue;
        }
        idle = idle.saturating_add(1);
        if idle <= SPIN_ROUNDS {
            drop(state);
            std::thread::yield_now();
            state = shared.lock();
        } else {
            let doublings = (idle - SPIN_ROUNDS - 1).min(5);
            let pause = (FIRST_PAUSE * (1 << doublings)).min(LAST_PAUSE);
            state = shared
                .work
                .wait_timeout(state, pause)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }
}
