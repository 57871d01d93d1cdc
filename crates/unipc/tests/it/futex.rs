//! Futexes between real processes: a waiter in one process is woken by a
//! wake from another (which proves the calls are not process-private), a
//! timed wait times out no earlier than asked, and `Wait::Never` answers
//! without sleeping.
//!
//! Every segment is a private System V segment made by the parent, whose
//! handle removes it on drop; the peer opens it by id.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use unipc::name::SysvKey;
use unipc::shm::{sysv, Access};
use unipc::sync::futex::Futex;
use unipc::sync::Wait;
use unipc::Error;

use crate::util;

fn segment() -> sysv::Segment {
    sysv::SegmentOptions::new()
        .size(4096)
        .create(SysvKey::Private)
        .unwrap()
}

fn peer_segment() -> sysv::Segment {
    sysv::Segment::open_id(util::arg("id").parse().unwrap()).unwrap()
}

/// Offsets: the futex word, and the count of waiters the peer woke.
const WORD: usize = 64;
const WOKEN: usize = 128;

#[test]
fn a_waiter_is_woken_by_a_wake_from_another_process() {
    if let Some(role) = util::role() {
        assert_eq!(role, "waker");
        let segment = peer_segment();
        let map = segment.attach(Access::ReadWrite).unwrap();
        let futex = Futex::new(&map, WORD).unwrap();
        // Wake without changing the word: only a real cross-process wake
        // can end the parent's wait. A wake before the parent sleeps wakes
        // nobody (0), so retry until one lands.
        let start = Instant::now();
        loop {
            let woken = futex.wake(1).unwrap();
            if woken > 0 {
                map.atomic_u32(WOKEN)
                    .unwrap()
                    .store(woken, Ordering::Release);
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "nobody waited");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let segment = segment();
    let map = segment.attach(Access::ReadWrite).unwrap();
    let futex = Futex::new(&map, WORD).unwrap();
    let peer = util::Peer::new(
        "futex::a_waiter_is_woken_by_a_wake_from_another_process",
        "waker",
    )
    .arg("id", segment.id().to_string())
    .spawn();
    let start = Instant::now();
    // The word stays 0 throughout: Ok can only come from the wake (or a
    // spurious wake-up, which the peer's count below rules out).
    futex.wait(0, Wait::For(Duration::from_secs(25))).unwrap();
    assert!(start.elapsed() < Duration::from_secs(25));
    peer.wait_success();
    assert_eq!(futex.word().load(Ordering::Acquire), 0);
    assert_eq!(map.atomic_u32(WOKEN).unwrap().load(Ordering::Acquire), 1);
}

#[test]
fn a_store_and_wake_from_another_process_ends_a_wait_loop() {
    if let Some(role) = util::role() {
        assert_eq!(role, "setter");
        let segment = peer_segment();
        let map = segment.attach(Access::ReadWrite).unwrap();
        let futex = Futex::new(&map, WORD).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        futex.word().store(7, Ordering::Release);
        futex.wake_all().unwrap();
        return;
    }
    let segment = segment();
    let map = segment.attach(Access::ReadWrite).unwrap();
    let futex = Futex::new(&map, WORD).unwrap();
    let peer = util::Peer::new(
        "futex::a_store_and_wake_from_another_process_ends_a_wait_loop",
        "setter",
    )
    .arg("id", segment.id().to_string())
    .spawn();
    // The caller's loop the docs ask for: test, then wait on the value seen.
    let start = Instant::now();
    loop {
        let seen = futex.word().load(Ordering::Acquire);
        if seen == 7 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(25), "never set");
        futex
            .wait(seen, Wait::For(Duration::from_secs(25)))
            .unwrap();
    }
    peer.wait_success();
}

#[test]
fn a_timed_wait_times_out_no_earlier_than_asked() {
    let segment = segment();
    let map = segment.attach(Access::ReadWrite).unwrap();
    let futex = Futex::new(&map, WORD).unwrap();
    let timeout = Duration::from_millis(150);
    let start = Instant::now();
    let err = futex.wait(0, Wait::For(timeout)).unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(err, Error::TimedOut { timeout: t, .. } if t == timeout),
        "{err}"
    );
    assert!(
        took >= timeout,
        "timed out after {took:?}, before {timeout:?}"
    );
    assert!(err.to_string().contains("futex@64"), "{err}");
    // A zero timeout with the value in place times out at once.
    assert!(matches!(
        futex.wait(0, Wait::For(Duration::ZERO)),
        Err(Error::TimedOut { .. })
    ));
}

#[test]
fn never_answers_without_sleeping_and_a_changed_word_returns_at_once() {
    let segment = segment();
    let map = segment.attach(Access::ReadWrite).unwrap();
    let futex = Futex::new(&map, WORD).unwrap();
    assert!(matches!(
        futex.wait(0, Wait::Never),
        Err(Error::WouldBlock { .. })
    ));
    futex.word().store(3, Ordering::Release);
    futex.wait(0, Wait::Never).unwrap();
    // EAGAIN from the kernel: the word is not 0, so no sleep, even forever.
    futex.wait(0, Wait::Forever).unwrap();
    assert_eq!(futex.wake(u32::MAX).unwrap(), 0);
}

#[test]
fn misplaced_or_read_only_words_are_refused() {
    let segment = segment();
    let map = segment.attach(Access::ReadWrite).unwrap();
    assert!(matches!(
        Futex::new(&map, 2),
        Err(Error::Misaligned { align: 4, .. })
    ));
    assert!(matches!(
        Futex::new(&map, 4096),
        Err(Error::OutOfBounds { .. })
    ));
    let read_only = segment.attach(Access::ReadOnly).unwrap();
    assert!(matches!(
        Futex::new(&read_only, 0),
        Err(Error::Unsupported { .. })
    ));
}

/// A signal handler that does nothing: its only effect is the `EINTR`.
extern "C" fn ignore(_: libc::c_int) {}

/// Installs `ignore` for SIGUSR1 without `SA_RESTART`, so a blocked call
/// returns `EINTR` (only ever in a peer process, never the harness).
pub(crate) fn interrupt_on_sigusr1() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(ignore),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler is async-signal-safe (it does nothing), and this
    // peer process installs no other handler for SIGUSR1.
    unsafe { sigaction(Signal::SIGUSR1, &action) }.unwrap();
}

/// Sends SIGUSR1 to this thread every 20 ms for 0.9 s, from a thread
/// of its own, while `wait` runs (a signal sent to the process could go to
/// another of the peer's threads, and interrupt nothing); returns what
/// `wait` returned.
pub(crate) fn pestered<T>(wait: impl FnOnce() -> T) -> T {
    // SAFETY: pthread_self has no preconditions.
    let target = unsafe { libc::pthread_self() };
    let thread = std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(900) {
            std::thread::sleep(Duration::from_millis(20));
            // SAFETY: `target` is the thread running `wait`, which joins
            // this thread before it returns, so it is alive throughout.
            assert_eq!(unsafe { libc::pthread_kill(target, libc::SIGUSR1) }, 0);
        }
    });
    let result = wait();
    thread.join().unwrap();
    result
}

#[test]
fn signals_during_a_timed_wait_resume_it_with_the_time_left() {
    if let Some(role) = util::role() {
        assert_eq!(role, "interrupted");
        interrupt_on_sigusr1();
        let segment = peer_segment();
        let map = segment.attach(Access::ReadWrite).unwrap();
        let futex = Futex::new(&map, WORD).unwrap();
        let timeout = Duration::from_secs(1);
        let start = Instant::now();
        let (err, took) = pestered(|| {
            let err = futex.wait(0, Wait::For(timeout)).unwrap_err();
            (err, start.elapsed())
        });
        assert!(matches!(err, Error::TimedOut { .. }), "{err}");
        assert!(took >= timeout, "{took:?}");
        // Signals come every 20 ms for 0.9 s: a wait that restarted its
        // full timeout at each would last 1.88 s at least.
        assert!(took < Duration::from_millis(1700), "{took:?}");
        return;
    }
    // A peer, because the handler is process-wide.
    let segment = segment();
    util::Peer::new(
        "futex::signals_during_a_timed_wait_resume_it_with_the_time_left",
        "interrupted",
    )
    .arg("id", segment.id().to_string())
    .spawn()
    .wait_success();
}
