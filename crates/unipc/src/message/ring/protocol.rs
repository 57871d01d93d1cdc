//! The ring's protocol — cursors, publication, sleeping and waking — over
//! the shared words alone, apart from the memory that holds them, so that
//! the loom model at the bottom checks the very code the ring runs.
//!
//! Every atomic the ring touches goes through [`Words`]: the ring's
//! mapping implements it with `std` atomics in shared memory
//! (`shared.rs`), the model with loom's atomics and a condition variable
//! standing in for the futex.
//!
//! # Why nobody sleeps through a message
//!
//! A side that finds nothing to do parks in four steps: it loads its futex
//! word, raises its sleeping flag, issues a `SeqCst` fence, and checks the
//! other side's cursor once more before `FUTEX_WAIT` on the loaded value.
//! The other side moves its cursor, issues a `SeqCst` fence, and loads the
//! sleeping flag; only if it is raised does it bump the futex word and
//! call `FUTEX_WAKE`. The two fences order the flag store before the
//! cursor load and the cursor store before the flag load, so at least one
//! side sees the other's store: either the sleeper sees the new cursor
//! and does not sleep, or the waker sees the flag and bumps the word,
//! which makes a `FUTEX_WAIT` that has not started yet return at once
//! (`EAGAIN`) and wakes one that has. With no sleeper the waker makes no
//! system call.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A 32-bit shared word.
pub(crate) trait Word32 {
    fn load(&self, order: Ordering) -> u32;
    fn store(&self, value: u32, order: Ordering);
    fn fetch_add(&self, value: u32, order: Ordering) -> u32;
}

/// A 64-bit shared word.
pub(crate) trait Word64 {
    fn load(&self, order: Ordering) -> u64;
    fn store(&self, value: u64, order: Ordering);
}

// The facade itself: std's atomics are the words in shared memory.
#[allow(clippy::disallowed_types)]
impl Word32 for std::sync::atomic::AtomicU32 {
    fn load(&self, order: Ordering) -> u32 {
        self.load(order)
    }
    fn store(&self, value: u32, order: Ordering) {
        self.store(value, order)
    }
    fn fetch_add(&self, value: u32, order: Ordering) -> u32 {
        self.fetch_add(value, order)
    }
}

#[allow(clippy::disallowed_types)]
impl Word64 for std::sync::atomic::AtomicU64 {
    fn load(&self, order: Ordering) -> u64 {
        self.load(order)
    }
    fn store(&self, value: u64, order: Ordering) {
        self.store(value, order)
    }
}

/// The writer or the reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Which {
    Writer,
    Reader,
}

impl Which {
    pub(crate) fn peer(self) -> Which {
        match self {
            Which::Writer => Which::Reader,
            Which::Reader => Which::Writer,
        }
    }
}

/// Sleeping and waking on 32-bit shared words: the futex calls, and the
/// fence the sleeping protocol needs (the ring's and the pubsub's).
pub(crate) trait Sleeper {
    type W32: Word32;
    /// A `SeqCst` fence.
    fn fence(&self);
    /// `FUTEX_WAIT`: sleeps while `word` holds `expected`, at most `limit`.
    fn sleep(&self, word: &Self::W32, expected: u32, limit: Duration) -> std::io::Result<()>;
    /// `FUTEX_WAKE` of one sleeper on `word`.
    fn wake(&self, word: &Self::W32);
}

/// The words a ring shares between its two sides.
pub(crate) trait Words: Sleeper {
    type W64: Word64;
    /// The capacity this process validated (never re-read from memory).
    fn capacity(&self) -> u64;
    /// Messages committed.
    fn tail(&self) -> &Self::W64;
    /// Messages released.
    fn head(&self) -> &Self::W64;
    /// Raised while `who` sleeps.
    fn sleeping(&self, who: Which) -> &Self::W32;
    /// The word `who` sleeps on.
    fn futex(&self, who: Which) -> &Self::W32;
}

/// Cursors loaded from memory that no ring could hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BadCursors {
    pub(crate) head: u64,
    pub(crate) tail: u64,
}

/// Checks a pair of cursors: `head <= tail <= head + capacity`.
pub(crate) fn check<W: Words>(words: &W, head: u64, tail: u64) -> Result<(), BadCursors> {
    if head > tail || tail - head > words.capacity() {
        return Err(BadCursors { head, tail });
    }
    Ok(())
}

/// One side's own cursor, and the other side's as last loaded: each side
/// reads the other's line only when its own view says it must wait.
#[derive(Debug)]
pub(crate) struct Cursor {
    own: Cell<u64>,
    seen: Cell<u64>,
}

impl Cursor {
    pub(crate) fn new(own: u64, seen: u64) -> Cursor {
        Cursor {
            own: Cell::new(own),
            seen: Cell::new(seen),
        }
    }

    /// This side's own cursor: the writer's next message, the reader's
    /// next to release.
    pub(crate) fn next(&self) -> u64 {
        self.own.get()
    }

    /// The writer: the number of the next free slot's message, if a slot
    /// is free.
    pub(crate) fn free_slot<W: Words>(&self, words: &W) -> Result<Option<u64>, BadCursors> {
        let tail = self.own.get();
        let capacity = words.capacity();
        if tail - self.seen.get() < capacity {
            return Ok(Some(tail));
        }
        let head = words.head().load(Ordering::Acquire);
        check(words, head, tail)?;
        self.seen.set(head);
        Ok((tail - head < capacity).then_some(tail))
    }

    /// The writer: whether a slot may be free (for [`park`]'s last look).
    pub(crate) fn room<W: Words>(&self, words: &W) -> bool {
        self.own
            .get()
            .wrapping_sub(words.head().load(Ordering::Acquire))
            < words.capacity()
    }

    /// The writer: publishes message `seq`, whose slot is written.
    pub(crate) fn publish<W: Words>(&self, words: &W, seq: u64) {
        words.tail().store(seq + 1, Ordering::Release);
        self.own.set(seq + 1);
        wake_peer(words, Which::Writer);
    }

    /// The reader: the number of the next committed message, if any.
    pub(crate) fn committed<W: Words>(&self, words: &W) -> Result<Option<u64>, BadCursors> {
        let head = self.own.get();
        if head == self.seen.get() {
            let tail = words.tail().load(Ordering::Acquire);
            check(words, head, tail)?;
            self.seen.set(tail);
            if tail == head {
                return Ok(None);
            }
        }
        Ok(Some(head))
    }

    /// The reader: whether a message may be committed.
    pub(crate) fn waiting<W: Words>(&self, words: &W) -> bool {
        words.tail().load(Ordering::Acquire) != self.own.get()
    }

    /// The reader: frees message `seq`'s slot, which it has read.
    pub(crate) fn release<W: Words>(&self, words: &W, seq: u64) {
        words.head().store(seq + 1, Ordering::Release);
        self.own.set(seq + 1);
        wake_peer(words, Which::Reader);
    }
}

/// Wakes the other side of `me` if it sleeps (see the module's docs).
pub(crate) fn wake_peer<W: Words>(words: &W, me: Which) {
    words.fence();
    let peer = me.peer();
    wake_on(words, words.sleeping(peer), words.futex(peer));
}

/// Wakes a sleeper on `futex` if its `flag` is raised. The caller has
/// fenced after the store the sleeper waits for.
pub(crate) fn wake_on<S: Sleeper>(sleeper: &S, flag: &S::W32, futex: &S::W32) {
    if flag.load(Ordering::Relaxed) != 0 {
        futex.fetch_add(1, Ordering::Release);
        sleeper.wake(futex);
    }
}

/// Sleeps until the other side moves its cursor, `ready` says a try could
/// succeed, or `limit` passes (see the module's docs).
pub(crate) fn park<W: Words>(
    words: &W,
    me: Which,
    ready: &dyn Fn() -> bool,
    limit: Duration,
) -> std::io::Result<()> {
    park_on(words, words.futex(me), words.sleeping(me), ready, limit)
}

/// Sleeps on `futex` with `flag` raised, unless `ready` says there is no
/// need, at most `limit`.
pub(crate) fn park_on<S: Sleeper>(
    sleeper: &S,
    futex: &S::W32,
    flag: &S::W32,
    ready: &dyn Fn() -> bool,
    limit: Duration,
) -> std::io::Result<()> {
    let expected = futex.load(Ordering::Acquire);
    flag.store(1, Ordering::Relaxed);
    sleeper.fence();
    let outcome = if ready() {
        Ok(())
    } else {
        sleeper.sleep(futex, expected, limit)
    };
    flag.store(0, Ordering::Relaxed);
    outcome
}

/// The model: a writer and a reader thread run the protocol above over
/// loom's atomics, each parking whenever it must wait (the blocking
/// strategy, where a lost wake-up would hang forever, which loom reports
/// as a deadlock). The slots are loom cells, so a reader that could see a
/// slot before the writer's copy into it is finished is reported as a
/// data race. Run with
/// `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom" cargo test -p unipc --lib --release ring::protocol`.
#[cfg(all(test, loom))]
#[allow(unsafe_code)]
mod model {
    use super::*;
    use loom::cell::UnsafeCell;
    use loom::sync::atomic::{AtomicU32, AtomicU64};
    use loom::sync::{Arc, Condvar, Mutex};

    impl Word32 for AtomicU32 {
        fn load(&self, order: Ordering) -> u32 {
            self.load(order)
        }
        fn store(&self, value: u32, order: Ordering) {
            self.store(value, order)
        }
        fn fetch_add(&self, value: u32, order: Ordering) -> u32 {
            self.fetch_add(value, order)
        }
    }

    impl Word64 for AtomicU64 {
        fn load(&self, order: Ordering) -> u64 {
            self.load(order)
        }
        fn store(&self, value: u64, order: Ordering) {
            self.store(value, order)
        }
    }

    struct Model {
        capacity: u64,
        tail: AtomicU64,
        head: AtomicU64,
        sleeping: [AtomicU32; 2],
        futex: [AtomicU32; 2],
        slots: Vec<UnsafeCell<u64>>,
        /// The futex: a sleeper checks its word under the lock and waits
        /// on the condition; a waker takes the lock to notify, so a wake
        /// cannot fall between the check and the wait.
        lock: Mutex<()>,
        woken: Condvar,
    }

    fn index(who: Which) -> usize {
        match who {
            Which::Writer => 0,
            Which::Reader => 1,
        }
    }

    impl Sleeper for Model {
        type W32 = AtomicU32;
        fn fence(&self) {
            loom::sync::atomic::fence(Ordering::SeqCst);
        }
        fn sleep(&self, word: &AtomicU32, expected: u32, _limit: Duration) -> std::io::Result<()> {
            // No timeout: a lost wake-up must hang for loom to see it.
            let guard = self.lock.lock().unwrap();
            if word.load(Ordering::Relaxed) == expected {
                drop(self.woken.wait(guard).unwrap());
            }
            Ok(())
        }
        fn wake(&self, _word: &AtomicU32) {
            let _guard = self.lock.lock().unwrap();
            self.woken.notify_all();
        }
    }

    impl Words for Model {
        type W64 = AtomicU64;
        fn capacity(&self) -> u64 {
            self.capacity
        }
        fn tail(&self) -> &AtomicU64 {
            &self.tail
        }
        fn head(&self) -> &AtomicU64 {
            &self.head
        }
        fn sleeping(&self, who: Which) -> &AtomicU32 {
            &self.sleeping[index(who)]
        }
        fn futex(&self, who: Which) -> &AtomicU32 {
            &self.futex[index(who)]
        }
    }

    fn run(capacity: u64, messages: u64) {
        loom::model(move || {
            let ring = Arc::new(Model {
                capacity,
                tail: AtomicU64::new(0),
                head: AtomicU64::new(0),
                sleeping: [AtomicU32::new(0), AtomicU32::new(0)],
                futex: [AtomicU32::new(0), AtomicU32::new(0)],
                slots: (0..capacity).map(|_| UnsafeCell::new(0)).collect(),
                lock: Mutex::new(()),
                woken: Condvar::new(),
            });
            let writer = {
                let ring = ring.clone();
                loom::thread::spawn(move || {
                    let cursor = Cursor::new(0, 0);
                    for value in 1..=messages {
                        let seq = loop {
                            if let Some(seq) = cursor.free_slot(&*ring).unwrap() {
                                break seq;
                            }
                            let ready = || cursor.room(&*ring);
                            park(&*ring, Which::Writer, &ready, Duration::MAX).unwrap();
                        };
                        let slot = &ring.slots[(seq % capacity) as usize];
                        // SAFETY (model): the protocol gives this slot to
                        // the writer; loom reports it if it does not.
                        slot.with_mut(|p| unsafe { *p = value });
                        cursor.publish(&*ring, seq);
                    }
                })
            };
            let cursor = Cursor::new(0, 0);
            for value in 1..=messages {
                let seq = loop {
                    if let Some(seq) = cursor.committed(&*ring).unwrap() {
                        break seq;
                    }
                    let ready = || cursor.waiting(&*ring);
                    park(&*ring, Which::Reader, &ready, Duration::MAX).unwrap();
                };
                let slot = &ring.slots[(seq % capacity) as usize];
                // SAFETY (model): as for the writer, for the reader.
                let got = slot.with(|p| unsafe { *p });
                assert_eq!(got, value, "message {seq}");
                cursor.release(&*ring, seq);
            }
            writer.join().unwrap();
        });
    }

    #[test]
    fn no_lost_wake_up_and_no_early_read_at_capacity_1() {
        run(1, 3);
    }

    #[test]
    fn no_lost_wake_up_and_no_early_read_at_capacity_2() {
        run(2, 3);
    }
}

/// The same protocol between two threads over `std` atomics on the heap:
/// a plain test, and under Miri (`.ci/run`, where a nightly has Miri) a
/// check of the very code the ring runs for data races and undefined
/// behaviour. The slots are `UnsafeCell`s written and read without
/// synchronization of their own, as the ring's shared memory is.
#[cfg(all(test, not(loom)))]
#[allow(unsafe_code, clippy::disallowed_types)] // the words the ring itself uses
mod threads {
    use super::*;
    use std::cell::UnsafeCell;
    use std::sync::atomic::{AtomicU32, AtomicU64};
    use std::sync::{Arc, Condvar, Mutex};

    struct Heap {
        capacity: u64,
        tail: AtomicU64,
        head: AtomicU64,
        sleeping: [AtomicU32; 2],
        futex: [AtomicU32; 2],
        slots: Vec<UnsafeCell<u64>>,
        lock: Mutex<()>,
        woken: Condvar,
    }

    // SAFETY: the slots are shared between the two threads exactly as the
    // ring's slots are between two processes: the protocol under test
    // gives each slot to one side at a time, and Miri checks that it does.
    unsafe impl Sync for Heap {}

    fn index(who: Which) -> usize {
        match who {
            Which::Writer => 0,
            Which::Reader => 1,
        }
    }

    impl Sleeper for Heap {
        type W32 = AtomicU32;
        fn fence(&self) {
            std::sync::atomic::fence(Ordering::SeqCst);
        }
        fn sleep(&self, word: &AtomicU32, expected: u32, limit: Duration) -> std::io::Result<()> {
            let guard = self.lock.lock().unwrap();
            if word.load(Ordering::Relaxed) == expected {
                drop(self.woken.wait_timeout(guard, limit).unwrap());
            }
            Ok(())
        }
        fn wake(&self, _word: &AtomicU32) {
            let _guard = self.lock.lock().unwrap();
            self.woken.notify_all();
        }
    }

    impl Words for Heap {
        type W64 = AtomicU64;
        fn capacity(&self) -> u64 {
            self.capacity
        }
        fn tail(&self) -> &AtomicU64 {
            &self.tail
        }
        fn head(&self) -> &AtomicU64 {
            &self.head
        }
        fn sleeping(&self, who: Which) -> &AtomicU32 {
            &self.sleeping[index(who)]
        }
        fn futex(&self, who: Which) -> &AtomicU32 {
            &self.futex[index(who)]
        }
    }

    #[test]
    fn a_writer_and_a_reader_thread_agree_on_every_message() {
        let messages: u64 = if cfg!(miri) { 200 } else { 100_000 };
        for capacity in [1, 2, 3] {
            let ring = Arc::new(Heap {
                capacity,
                tail: AtomicU64::new(0),
                head: AtomicU64::new(0),
                sleeping: [AtomicU32::new(0), AtomicU32::new(0)],
                futex: [AtomicU32::new(0), AtomicU32::new(0)],
                slots: (0..capacity).map(|_| UnsafeCell::new(0)).collect(),
                lock: Mutex::new(()),
                woken: Condvar::new(),
            });
            // A long limit: a lost wake-up shows as a hang, not a retry.
            let limit = Duration::from_secs(30);
            let writer = {
                let ring = ring.clone();
                std::thread::spawn(move || {
                    let cursor = Cursor::new(0, 0);
                    for value in 1..=messages {
                        let seq = loop {
                            if let Some(seq) = cursor.free_slot(&*ring).unwrap() {
                                break seq;
                            }
                            let ready = || cursor.room(&*ring);
                            park(&*ring, Which::Writer, &ready, limit).unwrap();
                        };
                        let slot = ring.slots[(seq % capacity) as usize].get();
                        // SAFETY: `free_slot` gave this slot to the writer.
                        unsafe { *slot = value };
                        cursor.publish(&*ring, seq);
                    }
                })
            };
            let cursor = Cursor::new(0, 0);
            for value in 1..=messages {
                let seq = loop {
                    if let Some(seq) = cursor.committed(&*ring).unwrap() {
                        break seq;
                    }
                    let ready = || cursor.waiting(&*ring);
                    park(&*ring, Which::Reader, &ready, limit).unwrap();
                };
                let slot = ring.slots[(seq % capacity) as usize].get();
                // SAFETY: `committed` gave this slot to the reader.
                let got = unsafe { *slot };
                assert_eq!(got, value, "message {seq} at capacity {capacity}");
                cursor.release(&*ring, seq);
            }
            writer.join().unwrap();
        }
    }
}
