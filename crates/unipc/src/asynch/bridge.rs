//! [`Bridge`]: the async message interface over a facility with no
//! descriptor to wait on (System V queues, `ring:`, `pubsub:`).
//!
//! # Why a polling helper, not a thread blocked in `msgrcv`
//!
//! A System V queue has no descriptor and `msgrcv` no timeout: a thread
//! blocked in it returns only for a message, a signal or the queue's
//! removal. Such a thread could not be stopped when the bridge is dropped,
//! and would take a message that nobody then receives. So the helper only
//! ever makes non-blocking calls (`IPC_NOWAIT`, the ring's
//! [`Wait::Never`]), under the bridge's lock, and only while a future waits:
//! it can stop between any two calls, and every message it takes is handed
//! over through the lock, never through a channel a dropped future could
//! take it down with.
//!
//! # Back-off, or a doorbell
//!
//! While some future waits the helper calls, yields the CPU and calls again
//! for up to [`SPIN_ROUNDS`] rounds. Then, over a facility with a
//! [`Doorbell`] (the `ring:` and `pubsub:` sides: their own futex sleep,
//! made from a second mapping), it sleeps on the doorbell without the lock
//! until the other side moves, at most [`BELL_PAUSE`]: the other side
//! wakes it as it would wake the side itself, so a message costs one
//! wake-up, an idle wait nothing but a timeout per [`BELL_PAUSE`], and the
//! other side's death is seen (the doorbell reports it; the helper hands it
//! to the next waiting future once what was committed before it has been
//! taken). Without a doorbell (System V queues) it sleeps [`FIRST_PAUSE`]
//! doubling to [`LAST_PAUSE`]; a new waiter wakes it at once. So a message
//! that comes soon after the wait began is picked up within a few
//! microseconds, and an idle wait costs at most one call per
//! [`LAST_PAUSE`]. With no waiter the helper sleeps on a condition
//! variable and makes no call.

use std::collections::VecDeque;
use std::fmt;
use std::pin::pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::Notify;

use super::AsyncMessenger;
use crate::error::ObjectName;
use crate::message::{Doorbell, Limits, Messenger, Received, Tag, Wait};
use crate::{Error, Result};

/// Rounds of call-and-yield before the helper starts sleeping.
const SPIN_ROUNDS: u32 = 200;
/// The helper's first sleep once spinning found nothing.
const FIRST_PAUSE: Duration = Duration::from_micros(50);
/// Its longest sleep between two calls while a future waits.
const LAST_PAUSE: Duration = Duration::from_millis(1);
/// Its longest sleep on a doorbell: how late it may see the bridge
/// stopping if the stop comes just before the sleep begins.
const BELL_PAUSE: Duration = Duration::from_millis(50);

/// What the futures and the helper share.
struct Shared<M> {
    object: ObjectName,
    /// The facility lives under the lock: every call to it is made holding
    /// the lock, which also makes a `Send`-only facility (the ring's sides)
    /// shareable.
    state: Mutex<State<M>>,
    /// Wakes the helper: a new waiter, a new send, or stop.
    work: Condvar,
    /// Wakes the futures: the helper made progress.
    done: Notify,
    /// The facility's, if it has one: the helper sleeps on it.
    doorbell: Option<Box<dyn Doorbell>>,
}

struct State<M> {
    inner: M,
    /// Messages the helper took for receivers that have not come for them
    /// yet (or were dropped meanwhile), oldest first: the next receive
    /// takes the front before the queue is asked again.
    stash: VecDeque<(Vec<u8>, Tag)>,
    /// Receive futures waiting now.
    receivers: usize,
    /// An error the helper met receiving, for the next receiver.
    recv_error: Option<Error>,
    /// What the doorbell reported (the other side died): for the next
    /// future that finds nothing left to take or no room.
    bell_error: Option<Error>,
    /// Sends waiting for room, in the order they were made.
    sends: VecDeque<SendJob>,
    next_id: u64,
    stop: bool,
}

struct SendJob {
    id: u64,
    message: Vec<u8>,
    tag: Tag,
    /// Set by the helper once it sent the message or failed.
    result: Option<Result<()>>,
}

impl<M> State<M> {
    fn new(inner: M) -> State<M> {
        State {
            inner,
            stash: VecDeque::new(),
            receivers: 0,
            recv_error: None,
            bell_error: None,
            sends: VecDeque::new(),
            next_id: 0,
            stop: false,
        }
    }

    /// Whether the helper has a call to make.
    fn has_work(&self) -> bool {
        self.wants_message() || self.sends.iter().any(|job| job.result.is_none())
    }

    fn wants_message(&self) -> bool {
        self.receivers > self.stash.len() && self.recv_error.is_none()
    }
}

impl<M> Shared<M> {
    fn lock(&self) -> MutexGuard<'_, State<M>> {
        // A panic while holding the lock can only come from a bug here;
        // the state is still consistent (every step is one push or pop).
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// [`AsyncMessenger`] over a message facility with no descriptor: a
/// System V queue ([`crate::message::sysv_mq::Queue`]), a `ring:` side
/// ([`crate::message::ring::Sender`]/[`Receiver`](crate::message::ring::Receiver)),
/// a `pubsub:` side; any [`Messenger`] that is `Send` works (it need not
/// be `Sync`: every call to it is made under the bridge's lock).
///
/// A send or receive first makes the facility's call with [`Wait::Never`]
/// on the calling task; only when that finds the queue full or empty does
/// the future wait, and one helper thread per bridge then makes the calls
/// for every waiting future (see the module notes in the source for why it
/// polls: `msgrcv` has neither a descriptor nor a timeout). The helper's
/// back-off: 200 rounds of call and `sched_yield`, then, over a ring or
/// pubsub side, a sleep on its [`Doorbell`] (the side's futex: woken by
/// the other side's next move, at most 50 ms), and over a System V queue
/// sleeps from 50 µs doubling to 1 ms; with no future waiting it sleeps
/// until one comes.
///
/// Over a ring or pubsub side the death of the other side ends the wait:
/// once what it committed has been received, the next receive (or the
/// waiting send) fails with [`Error::PeerDied`], within about 150 ms.
///
/// # Cancellation safety
///
/// - [`recv_into`](AsyncMessenger::recv_into): a message the helper took
///   stays in the bridge (under its lock) until a receive future polls and
///   takes it; a dropped future leaves it there, and the next receive gets
///   it, before anything newer. Order is kept: the helper takes from the
///   queue only while receivers outnumber the messages it holds.
/// - [`send_tagged`](AsyncMessenger::send_tagged): a waiting send is a job
///   the helper performs under the lock; a dropped future removes its job
///   under the same lock, so the message was either sent whole before the
///   drop or never.
///
/// Dropping the bridge stops and joins its helper. A message it still
/// holds (taken for a receive future that was dropped before it was
/// polled again) is then sent back to the object with [`Wait::Never`];
/// [`into_inner`](Self::into_inner) hands such messages to the caller
/// instead.
///
/// # Examples
///
/// ```
/// use unipc::asynch::{AsyncMessenger, Bridge};
/// use unipc::message::Tag;
/// use unipc::message::sysv_mq::QueueOptions;
/// use unipc::name::SysvKey;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let queue = Bridge::new(QueueOptions::new().create(SysvKey::Private)?)?;
/// let receive = queue.recv_vec();
/// let send = async {
///     tokio::time::sleep(std::time::Duration::from_millis(10)).await;
///     queue.send_tagged(b"job", Tag::Type(7)).await
/// };
/// let (got, sent) = tokio::join!(receive, send);
/// sent?;
/// assert_eq!(got?, (b"job".to_vec(), Tag::Type(7)));
/// # Ok::<(), unipc::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Bridge<M: Messenger + Send + 'static> {
    shared: Arc<Shared<M>>,
    helper: Option<JoinHandle<()>>,
}

impl<M: Messenger + Send + 'static> fmt::Debug for Bridge<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("Bridge")
            .field("object", &self.shared.object.as_str())
            .field("held", &state.stash.len())
            .field("receivers", &state.receivers)
            .field("sends", &state.sends.len())
            .finish()
    }
}

impl<M: Messenger + Send + 'static> Bridge<M> {
    /// Starts the helper thread for `messenger`.
    ///
    /// Needs no runtime: the futures work on any executor (a timeout needs
    /// tokio's timer).
    ///
    /// # Errors
    /// When the receive buffer size cannot be read
    /// ([`Messenger::recv_buffer_hint`]), or the thread cannot be spawned
    /// ([`Error::Os`]).
    pub fn new(messenger: M) -> Result<Bridge<M>> {
        let buffer = messenger.recv_buffer_hint()?;
        let object = messenger.object();
        let doorbell = messenger.doorbell()?;
        let shared = Arc::new(Shared {
            object: object.clone(),
            state: Mutex::new(State::new(messenger)),
            work: Condvar::new(),
            done: Notify::new(),
            doorbell,
        });
        let helper = super::spawn_helper("unipc-bridge", object.as_str(), &shared, move |s| {
            run_helper(s, buffer)
        })?;
        Ok(Bridge {
            shared,
            helper: Some(helper),
        })
    }

    /// Runs `f` on the blocking facility inside, under the bridge's lock
    /// (the helper makes no call meanwhile). Its calls with
    /// [`Wait::Never`] are the non-blocking `try_` forms; they bypass the
    /// messages the bridge holds. Do not wait in `f`: every future of this
    /// bridge waits for it.
    pub fn with<R>(&self, f: impl FnOnce(&M) -> R) -> R {
        f(&self.shared.lock().inner)
    }

    /// Stops the helper and gives back the facility with the messages the
    /// bridge still held, oldest first (taken for receive futures that
    /// were dropped before they took them).
    pub fn into_inner(mut self) -> (M, Vec<(Vec<u8>, Tag)>) {
        self.stop();
        let shared = self.shared.clone();
        drop(self);
        let shared = match Arc::try_unwrap(shared) {
            Ok(shared) => shared,
            // Unreachable: the helper is joined and the futures borrow
            // `self`, so this was the last reference.
            Err(_) => unreachable!("a bridge outlived by its helper"),
        };
        let state = shared
            .state
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (state.inner, state.stash.into())
    }

    fn stop(&mut self) {
        if let Some(helper) = self.helper.take() {
            self.shared.lock().stop = true;
            self.shared.work.notify_all();
            if let Some(bell) = &self.shared.doorbell {
                bell.interrupt();
            }
            // The helper does not panic (its calls return errors); if it
            // did, there is nothing more to stop.
            let _ = helper.join();
        }
    }
}

impl<M: Messenger + Send + 'static> Drop for Bridge<M> {
    fn drop(&mut self) {
        if self.helper.is_none() {
            return; // into_inner: the caller takes what was held.
        }
        self.stop();
        let state = &mut *self.shared.lock();
        for (message, tag) in state.stash.drain(..) {
            // Best effort: the message goes back to the object it came
            // from; a full object refuses it (documented above).
            let _ = state.inner.send_tagged(&message, tag, Wait::Never);
        }
    }
}

/// Decrements the count of waiting receivers when a receive future ends
/// or is dropped.
struct Waiting<'a, M> {
    shared: &'a Shared<M>,
}

impl<M> Drop for Waiting<'_, M> {
    fn drop(&mut self) {
        self.shared.lock().receivers -= 1;
    }
}

/// Removes a send job when its future ends or is dropped: from then on the
/// helper cannot send it.
struct Queued<'a, M> {
    shared: &'a Shared<M>,
    id: u64,
}

impl<M> Drop for Queued<'_, M> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.sends.retain(|job| job.id != self.id);
    }
}

/// Takes the oldest held message into `buf`, or reports that it does not
/// fit (keeping it).
fn take_held<M>(
    state: &mut State<M>,
    buf: &mut [u8],
    object: &ObjectName,
) -> Option<Result<Received>> {
    let (message, _) = state.stash.front()?;
    if message.len() > buf.len() {
        return Some(Err(Error::BufferTooSmall {
            object: object.clone(),
            buffer: buf.len(),
            needed: Some(message.len()),
        }));
    }
    let (message, tag) = state.stash.pop_front()?;
    buf[..message.len()].copy_from_slice(&message);
    Some(Ok(Received::new(message.len(), tag)))
}

impl<M: Messenger + Send + 'static> AsyncMessenger for Bridge<M> {
    fn object(&self) -> ObjectName {
        self.shared.object.clone()
    }

    fn limits(&self) -> Result<Limits> {
        self.shared.lock().inner.limits()
    }

    fn recv_buffer_hint(&self) -> Result<usize> {
        self.shared.lock().inner.recv_buffer_hint()
    }

    /// Cancellation safe: a dropped future sent the whole message or
    /// nothing (its job is removed under the lock the helper sends under).
    async fn send_tagged(&self, message: &[u8], tag: Tag) -> Result<()> {
        let shared = &*self.shared;
        let id = {
            let mut state = shared.lock();
            // Earlier sends still waiting go first.
            if state.sends.is_empty() {
                match state.inner.send_tagged(message, tag, Wait::Never) {
                    Err(Error::Full { .. }) => {}
                    other => return other,
                }
            }
            let id = state.next_id;
            state.next_id += 1;
            state.sends.push_back(SendJob {
                id,
                message: message.to_vec(),
                tag,
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
                let job = state.sends.iter_mut().find(|job| job.id == id);
                if let Some(result) = job.and_then(|job| job.result.take()) {
                    return result;
                }
            }
            notified.await;
        }
    }

    /// Cancellation safe: a dropped future took no message (what the
    /// helper took for it stays in the bridge for the next receive).
    async fn recv_into(&self, buf: &mut [u8]) -> Result<Received> {
        let shared = &*self.shared;
        let mut waiting = None;
        loop {
            let mut notified = pin!(shared.done.notified());
            notified.as_mut().enable();
            {
                let mut state = shared.lock();
                if let Some(result) = take_held(&mut state, buf, &shared.object) {
                    return result;
                }
                if let Some(err) = state.recv_error.take() {
                    return Err(err);
                }
                match state.inner.recv_into(buf, Wait::Never) {
                    Err(Error::Empty { .. }) => {}
                    other => return other,
                }
                if waiting.is_none() {
                    state.receivers += 1;
                    waiting = Some(Waiting { shared });
                    shared.work.notify_one();
                }
            }
            notified.await;
        }
    }
}

/// The helper thread: makes the calls the waiting futures need until the
/// bridge stops.
fn run_helper<M: Messenger>(shared: &Shared<M>, buffer: usize) {
    let mut buf = vec![0; buffer];
    let mut idle: u32 = 0;
    let mut guard = shared.lock();
    loop {
        let state = &mut *guard;
        if state.stop {
            return;
        }
        let mut progress = false;
        // Sends in order; the first that finds no room stops the round.
        for job in state.sends.iter_mut().filter(|job| job.result.is_none()) {
            match state.inner.send_tagged(&job.message, job.tag, Wait::Never) {
                Err(Error::Full { .. }) => {
                    if let Some(err) = state.bell_error.take() {
                        job.result = Some(Err(err));
                        progress = true;
                    }
                    break;
                }
                result => {
                    job.result = Some(result);
                    progress = true;
                }
            }
        }
        while state.wants_message() {
            match state.inner.recv_into(&mut buf, Wait::Never) {
                Ok(got) => {
                    state.stash.push_back((buf[..got.len].to_vec(), got.tag));
                    progress = true;
                }
                Err(Error::Empty { .. }) => {
                    // Everything committed before the other side died
                    // has been taken: now its death is news.
                    if let Some(err) = state.bell_error.take() {
                        state.recv_error = Some(err);
                        progress = true;
                    }
                    break;
                }
                // The object's limit grew since the bridge was made (a
                // System V queue's `msgmax`): the message stayed; make room.
                Err(Error::BufferTooSmall {
                    needed: Some(needed),
                    ..
                }) if needed > buf.len() => buf.resize(needed, 0),
                Err(err) => {
                    state.recv_error = Some(err);
                    progress = true;
                }
            }
        }
        if progress {
            idle = 0;
            shared.done.notify_waiters();
            continue;
        }
        if !state.has_work() {
            idle = 0;
            guard = shared
                .work
                .wait(guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            continue;
        }
        idle = idle.saturating_add(1);
        if idle <= SPIN_ROUNDS {
            drop(guard);
            std::thread::yield_now();
            guard = shared.lock();
        } else if let Some(bell) = &shared.doorbell {
            // Without the lock: the futures take and drop meanwhile, and
            // whatever changes, the next round re-reads the state.
            drop(guard);
            let rang = bell.wait(BELL_PAUSE);
            guard = shared.lock();
            if let Err(err) = rang {
                guard.bell_error = Some(err);
            }
        } else {
            let doublings = (idle - SPIN_ROUNDS - 1).min(5);
            let pause = (FIRST_PAUSE * (1 << doublings)).min(LAST_PAUSE);
            guard = shared
                .work
                .wait_timeout(guard, pause)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }
}
