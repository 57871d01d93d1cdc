//! Robust process-shared mutexes and condition variables between real
//! processes: a holder killed with SIGKILL hands the next locker an
//! owner-died lock to repair; an unrepaired one becomes not recoverable for
//! every process; a thousand kills at random points never leave it stuck
//! (glibc's tst-robust8 is the model); a condition variable is signalled
//! across processes, times out, and tells a waiter that its peer died.
//!
//! Every segment is a private System V segment made by the parent, whose
//! handle removes it on drop; peers open it by id.

use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use unipc::name::SysvKey;
use unipc::shm::{sysv, Access, Mapping};
use unipc::sync::condvar::{SharedCondvar, Woken};
use unipc::sync::mutex::{Locked, MutexGuard, RobustMutex};
use unipc::sync::Wait;
use unipc::Error;

use crate::util;

/// Offsets in the segment: the mutex, the condition variable, then the
/// data the mutex protects (two words that must be equal, a progress
/// counter) and a flag the processes signal each other with.
const MUTEX: usize = 0;
const COND: usize = 128;
const A: usize = 512;
const B: usize = 520;
const PROGRESS: usize = 528;
const FLAG: usize = 536;

const _: () = {
    assert!(RobustMutex::SIZE <= COND - MUTEX);
    assert!(COND + SharedCondvar::SIZE <= A);
};

fn segment() -> sysv::Segment {
    sysv::SegmentOptions::new()
        .size(4096)
        .create(SysvKey::Private)
        .unwrap()
}

fn peer_segment() -> sysv::Segment {
    sysv::Segment::open_id(util::arg("id").parse().unwrap()).unwrap()
}

fn word(map: &Mapping, offset: usize) -> &AtomicU64 {
    map.atomic_u64(offset).unwrap()
}

fn init(map: &Mapping) -> RobustMutex<'_> {
    // SAFETY: the segment is private to this test and its peers, which
    // touch the slot only through `RobustMutex`, and no guard is leaked.
    unsafe { RobustMutex::init(map, MUTEX) }.unwrap()
}

fn attach(map: &Mapping) -> RobustMutex<'_> {
    // SAFETY: as in `init`.
    unsafe { RobustMutex::attach(map, MUTEX) }.unwrap()
}

fn init_cond(map: &Mapping) -> SharedCondvar<'_> {
    // SAFETY: as in `init`, for the condition variable's slot.
    unsafe { SharedCondvar::init(map, COND) }.unwrap()
}

fn attach_cond(map: &Mapping) -> SharedCondvar<'_> {
    // SAFETY: as in `init`.
    unsafe { SharedCondvar::attach(map, COND) }.unwrap()
}

/// The repair: the holder updates A then B, so a death in between leaves
/// A one ahead; B catches up.
fn repair(map: &Mapping) {
    let a = word(map, A).load(Ordering::Relaxed);
    word(map, B).store(a, Ordering::Relaxed);
}

fn consistent(map: &Mapping) -> bool {
    word(map, A).load(Ordering::Relaxed) == word(map, B).load(Ordering::Relaxed)
}

/// Locks, repairing when the last holder died.
fn lock_repaired<'g>(mutex: &'g RobustMutex<'g>, map: &Mapping) -> MutexGuard<'g> {
    match mutex.lock(Wait::For(Duration::from_secs(10))).unwrap() {
        Locked::Acquired(guard) => guard,
        Locked::OwnerDied(recovery) => {
            repair(map);
            recovery.mark_consistent().unwrap()
        }
    }
}

/// Dies by SIGKILL now, holding whatever it holds.
fn die() -> ! {
    let me = rustix::process::getpid();
    let _ = rustix::process::kill_process(me, rustix::process::Signal::KILL);
    unreachable!("SIGKILL did not kill");
}

/// Waits until the word at `offset` reaches `value`, under a watchdog.
fn await_word(map: &Mapping, offset: usize, value: u64) {
    let start = Instant::now();
    while word(map, offset).load(Ordering::Acquire) < value {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "word {offset} never reached {value}"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// The peer of the single-death tests: locks, leaves the data torn
/// (A ahead of B), says so, and dies holding the lock.
fn die_holding(map: &Mapping) -> ! {
    let mutex = attach(map);
    let guard = lock_repaired(&mutex, map);
    word(map, A).fetch_add(1, Ordering::Relaxed);
    word(map, FLAG).store(1, Ordering::Release);
    let _held = guard;
    die();
}

fn spawn_dier(test: &str, segment: &sysv::Segment) {
    let status = util::Peer::new(test, "dier")
        .arg("id", segment.id().to_string())
        .spawn()
        .wait();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
}

#[test]
fn a_holder_killed_hands_the_next_locker_an_owner_died_lock_to_repair() {
    const TEST: &str = "mutex::a_holder_killed_hands_the_next_locker_an_owner_died_lock_to_repair";
    if let Some(role) = util::role() {
        let segment = peer_segment();
        let map = segment.attach(Access::ReadWrite).unwrap();
        match role.as_str() {
            "dier" => die_holding(&map),
            "later" => {
                let mutex = attach(&map);
                let Locked::Acquired(guard) = mutex.lock(Wait::Never).unwrap() else {
                    panic!("owner died again after the repair");
                };
                assert!(consistent(&map));
                word(&map, A).fetch_add(1, Ordering::Relaxed);
                word(&map, B).fetch_add(1, Ordering::Relaxed);
                drop(guard);
            }
            other => panic!("unknown role {other}"),
        }
        return;
    }
    let segment = segment();
    let map = segment.attach(Access::ReadWrite).unwrap();
    let mutex = init(&map);
    spawn_dier(TEST, &segment);
    assert_eq!(word(&map, FLAG).load(Ordering::Acquire), 1);
    let recovery = match mutex.lock(Wait::Never).unwrap() {
        Locked::OwnerDied(recovery) => recovery,
        Locked::Acquired(_) => panic!("the holder's death went unnoticed"),
    };
    // The dead holder left the data torn: A ahead of B.
    assert!(!consistent(&map));
    repair(&map);
    let guard = recovery.mark_consistent().unwrap();
    assert!(consistent(&map));
    drop(guard);
    // Repaired: locks are ordinary again, here and in another process.
    assert!(matches!(
        mutex.lock(Wait::Never).unwrap(),
        Locked::Acquired(_)
    ));
    util::Peer::new(TEST, "later")
        .arg("id", segment.id().to_string())
        .spawn()
        .wait_success();
    assert_eq!(word(&map, A).load(Ordering::Relaxed), 2);
    assert!(matches!(
        mutex.lock(Wait::Forever).unwrap(),
        Locked::Acquired(_)
    ));
}

#[test]
fn an_owner_died_lock_dropped_unrepaired_is_not_recoverable_for_anyone() {
    const TEST: &str = "mutex::an_owner_died_lock_dropped_unrepaired_is_not_recoverable_for_anyone";
    if let Some(role) = util::role() {
        let segment = peer_segment();
        let map = segment.attach(Access::ReadWrite).unwrap();
        match role.as_str() {
            "dier" => die_holding(&map),
            "after" => {
                let mutex = attach(&map);
                for wait in [
                    Wait::Never,
                    Wait::For(Duration::from_millis(20)),
                    Wait::Forever,
                ] {
                    let err = mutex.lock(wait).unwrap_err();
                    assert!(matches!(err, Error::NotRecoverable { .. }), "{err}");
                }
            }
            other => panic!("unknown role {other}"),
        }
        return;
    }
    let segment = segment();
    let map = segment.attach(Access::ReadWrite).unwrap();
    let mutex = init(&map);
    spawn_dier(TEST, &segment);
    let locked = mutex.lock(Wait::Forever).unwrap();
    assert!(locked.owner_died());
    drop(locked); // no repair, no mark_consistent
    for wait in [
        Wait::Never,
        Wait::For(Duration::from_millis(20)),
        Wait::Forever,
    ] {
        let err = mutex.lock(wait).unwrap_err();
        assert!(matches!(err, Error::NotRecoverable { .. }), "{err}");
        assert!(
            err.to_string().contains("robust-mutex@0: not recoverable"),
            "{err}"
        );
    }
    util::Peer::new(TEST, "after")
        .arg("id", segment.id().to_string())
        .spawn()
        .wait_success();
}

#[test]
fn a_lock_held_by_another_process_would_block_then_times_out_then_is_acquired() {
    const TEST: &str =
        "mutex::a_lock_held_by_another_process_would_block_then_times_out_then_is_acquired";
    if let Some(role) = util::role() {
        assert_eq!(role, "holder");
        let segment = peer_segment();
        let map = segment.attach(Access::ReadWrite).unwrap();
        let mutex = attach(&map);
        let guard = lock_repaired(&mutex, &map);
        word(&map, FLAG).store(1, Ordering::Release);
        await_word(&map, FLAG, 2);
        drop(guard);
        return;
    }
    let segment = segment();
    let map = segment.attach(Access::ReadWrite).unwrap();
    let mutex = init(&map);
    let peer = util::Peer::new(TEST, "holder")
        .arg("id", segment.id().to_string())
        .spawn();
    await_word(&map, FLAG, 1);
    let err = mutex.lock(Wait::Never).unwrap_err();
    assert!(matches!(err, Error::WouldBlock { op: "lock", .. }), "{err}");
    let timeout = Duration::from_millis(150);
    let start = Instant::now();
    let err = mutex.lock(Wait::For(timeout)).unwrap_err();
    assert!(
        matches!(err, Error::TimedOut { timeout: t, .. } if t == timeout),
        "{err}"
    );
    assert!(start.elapsed() >= timeout);
    word(&map, FLAG).store(2, Ordering::Release);
    let locked = mutex.lock(Wait::For(Duration::from_secs(20))).unwrap();
    assert!(matches!(locked, Locked::Acquired(_)));
    drop(locked);
    peer.wait_success();
}

#[test]
fn slots_are_checked_before_glibc_sees_them() {
    let segment = segment();
    let map = segment.attach(Access::ReadWrite).unwrap();
    // Nothing initialized yet: attaching is refused, not undefined.
    // SAFETY: as in `init`.
    let err = unsafe { RobustMutex::attach(&map, MUTEX) }.unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongType {
                found: "fresh memory no process initialized",
                ..
            }
        ),
        "{err}"
    );
    // SAFETY: as in `init`.
    let err = unsafe { SharedCondvar::attach(&map, COND) }.unwrap_err();
    assert!(matches!(err, Error::WrongType { .. }), "{err}");
    // Bytes that are no header at all.
    map.write_at(1024, &[0xff; 64]).unwrap();
    // SAFETY: as in `init`; the slot is refused before glibc sees it.
    let err = unsafe { RobustMutex::attach(&map, 1024) }.unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongType {
                found: "bytes that are not a unipc synchronization slot",
                ..
            }
        ),
        "{err}"
    );
    // SAFETY: as above.
    assert!(unsafe { RobustMutex::init(&map, 1024) }.is_err());
    // Placement.
    // SAFETY: as in `init`; refused before anything is written.
    let err = unsafe { RobustMutex::init(&map, 4) }.unwrap_err();
    assert!(matches!(err, Error::Misaligned { .. }), "{err}");
    // SAFETY: as above.
    let err = unsafe { RobustMutex::init(&map, 4096 - 8) }.unwrap_err();
    assert!(matches!(err, Error::OutOfBounds { .. }), "{err}");
    // One initializer only.
    let mutex = init(&map);
    // SAFETY: as in `init`; refused by the header.
    let err = unsafe { RobustMutex::init(&map, MUTEX) }.unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongType {
                found: "already initialized",
                ..
            }
        ),
        "{err}"
    );
    // A condition variable's slot is not a mutex's.
    let _cond = init_cond(&map);
    // SAFETY: as in `init`; refused by the magic.
    assert!(unsafe { RobustMutex::attach(&map, COND) }.is_err());
    // Error-checking: a second lock by the holding thread fails, not hangs.
    let guard = lock_repaired(&mutex, &map);
    let second = attach(&map);
    let err = second.lock(Wait::Forever).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EDEADLK), "{err}");
    drop(guard);
    let read_only = segment.attach(Access::ReadOnly).unwrap();
    // SAFETY: as in `init`; refused before anything is touched.
    let err = unsafe { RobustMutex::attach(&read_only, MUTEX) }.unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
}

/// How many times the kill test kills a holder (glibc's tst-robust8 kills
/// its children at random points in the same way).
const KILLS: u64 = 1_000;

/// A small xorshift, seeded per run: random delays, no dependency.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn a_thousand_holders_killed_at_random_points_never_leave_it_stuck() {
    const TEST: &str = "mutex::a_thousand_holders_killed_at_random_points_never_leave_it_stuck";
    if let Some(role) = util::role() {
        assert_eq!(role, "holder");
        let segment = peer_segment();
        let map = segment.attach(Access::ReadWrite).unwrap();
        let mutex = attach(&map);
        let start = Instant::now();
        // Lock, modify in two steps, unlock, until killed.
        while start.elapsed() < Duration::from_secs(20) {
            let guard = lock_repaired(&mutex, &map);
            let a = word(&map, A).load(Ordering::Relaxed);
            word(&map, A).store(a + 1, Ordering::Relaxed);
            word(&map, B).store(a + 1, Ordering::Relaxed);
            word(&map, PROGRESS).fetch_add(1, Ordering::Release);
            drop(guard);
        }
        panic!("the holder was never killed");
    }
    let segment = segment();
    let map = segment.attach(Access::ReadWrite).unwrap();
    let mutex = init(&map);
    let mut seed = u64::from(std::process::id()) << 20 | 0x9e37;
    let mut owner_died = 0;
    let mut torn = 0;
    let start = Instant::now();
    for kill in 0..KILLS {
        let before = word(&map, PROGRESS).load(Ordering::Acquire);
        let holder = util::Peer::new(TEST, "holder")
            .arg("id", segment.id().to_string())
            .spawn();
        // Kill it once it is in its loop, after a random delay (none, a
        // yield, or up to 300 µs), so the kill lands anywhere: in the lock,
        // between the two stores, in the unlock, outside the lock.
        await_word(&map, PROGRESS, before + 1);
        match next_random(&mut seed) % 4 {
            0 => {}
            1 => std::thread::yield_now(),
            _ => std::thread::sleep(Duration::from_micros(next_random(&mut seed) % 300)),
        }
        holder.kill();
        // Never a hang: the lock comes within a bound, repaired if need be.
        let locked = mutex
            .lock(Wait::For(Duration::from_secs(5)))
            .unwrap_or_else(|err| panic!("kill {kill}: {err}"));
        let guard = match locked {
            Locked::Acquired(guard) => guard,
            Locked::OwnerDied(recovery) => {
                owner_died += 1;
                if !consistent(&map) {
                    torn += 1;
                }
                repair(&map);
                recovery.mark_consistent().unwrap()
            }
        };
        assert!(
            consistent(&map),
            "kill {kill}: the data is torn after the lock"
        );
        drop(guard);
    }
    eprintln!(
        "{KILLS} kills in {:?}: {owner_died} found the holder dead with the lock, {torn} of them mid-update",
        start.elapsed()
    );
    // The holder spends nearly all its time holding the lock, so some kills
    // must have landed while it held it.
    assert!(owner_died > 0, "no kill landed while the lock was held");
}

#[test]
fn a_condvar_is_notified_across_processes() {
    const TEST: &str = "mutex::a_condvar_is_notified_across_processes";
    if let Some(role) = util::role() {
        assert_eq!(role, "notifier");
        let segment = peer_segment();
        let map = segment.attach(Access::ReadWrite).unwrap();
        let mutex = attach(&map);
        let cond = attach_cond(&map);
        std::thread::sleep(Duration::from_millis(50));
        let guard = lock_repaired(&mutex, &map);
        word(&map, FLAG).store(1, Ordering::Relaxed);
        cond.notify_one().unwrap();
        drop(guard);
        return;
    }
    let segment = segment();
    let map = segment.attach(Access::ReadWrite).unwrap();
    let mutex = init(&map);
    let cond = init_cond(&map);
    let mut guard = lock_repaired(&mutex, &map);
    let peer = util::Peer::new(TEST, "notifier")
        .arg("id", segment.id().to_string())
        .spawn();
    let start = Instant::now();
    while word(&map, FLAG).load(Ordering::Relaxed) == 0 {
        guard = match cond
            .wait(guard, Wait::For(Duration::from_secs(25)))
            .unwrap()
        {
            Woken::Notified(guard) => guard,
            other => panic!("not notified: {other:?}"),
        };
    }
    assert!(start.elapsed() < Duration::from_secs(25));
    drop(guard);
    peer.wait_success();
}

#[test]
fn a_timed_condvar_wait_times_out_holding_the_lock() {
    const TEST: &str = "mutex::a_timed_condvar_wait_times_out_holding_the_lock";
    if let Some(role) = util::role() {
        assert_eq!(role, "prober");
        let segment = peer_segment();
        let map = segment.attach(Access::ReadWrite).unwrap();
        let mutex = attach(&map);
        // The parent holds the lock again after its timed-out wait.
        let err = mutex.lock(Wait::Never).unwrap_err();
        assert!(matches!(err, Error::WouldBlock { .. }), "{err}");
        return;
    }
    let segment = segment();
    let map = segment.attach(Access::ReadWrite).unwrap();
    let mutex = init(&map);
    let cond = init_cond(&map);
    let guard = lock_repaired(&mutex, &map);
    let timeout = Duration::from_millis(150);
    let start = Instant::now();
    let guard = match cond.wait(guard, Wait::For(timeout)).unwrap() {
        Woken::TimedOut(guard) => guard,
        other => panic!("{other:?}"),
    };
    assert!(start.elapsed() >= timeout);
    util::Peer::new(TEST, "prober")
        .arg("id", segment.id().to_string())
        .spawn()
        .wait_success();
    let guard = match cond.wait(guard, Wait::Never).unwrap() {
        Woken::TimedOut(guard) => guard,
        other => panic!("{other:?}"),
    };
    drop(guard);
}

#[test]
fn a_condvar_waiter_whose_peer_died_holding_the_mutex_is_told_so() {
    const TEST: &str = "mutex::a_condvar_waiter_whose_peer_died_holding_the_mutex_is_told_so";
    if let Some(role) = util::role() {
        let segment = peer_segment();
        let map = segment.attach(Access::ReadWrite).unwrap();
        let mutex = attach(&map);
        let cond = attach_cond(&map);
        let guard = lock_repaired(&mutex, &map);
        word(&map, A).fetch_add(1, Ordering::Relaxed);
        match role.as_str() {
            // Notifies, then dies before unlocking.
            "notify-then-die" => cond.notify_one().unwrap(),
            // Dies holding the mutex without notifying.
            "die-silently" => {}
            other => panic!("unknown role {other}"),
        }
        let _held = guard;
        die();
    }
    for (role, timeout) in [
        ("notify-then-die", Duration::from_secs(25)),
        ("die-silently", Duration::from_millis(300)),
    ] {
        let segment = segment();
        let map = segment.attach(Access::ReadWrite).unwrap();
        let mutex = init(&map);
        let cond = init_cond(&map);
        let guard = lock_repaired(&mutex, &map);
        let peer = util::Peer::new(TEST, role)
            .arg("id", segment.id().to_string())
            .spawn();
        let start = Instant::now();
        // The wait releases the lock; the peer takes it, and dies with it.
        let recovery = match cond.wait(guard, Wait::For(timeout)).unwrap() {
            Woken::OwnerDied(recovery) => recovery,
            other => panic!("{role}: the peer's death was not reported: {other:?}"),
        };
        if role == "die-silently" {
            assert!(
                start.elapsed() >= timeout,
                "{role}: woke before the timeout"
            );
        } else {
            assert!(
                start.elapsed() < timeout,
                "{role}: the notification was lost"
            );
        }
        assert!(!consistent(&map));
        repair(&map);
        let guard = recovery.mark_consistent().unwrap();
        drop(guard);
        let status = peer.wait();
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{role}: {status:?}");
        assert!(matches!(
            mutex.lock(Wait::Never).unwrap(),
            Locked::Acquired(_)
        ));
    }
}

#[test]
fn a_waiter_killed_inside_a_wait_leaves_the_mutex_free_and_notify_all_reaches_the_rest() {
    const TEST: &str = "mutex::a_waiter_killed_inside_a_wait_leaves_the_mutex_free_and_notify_all_reaches_the_rest";
    if let Some(role) = util::role() {
        let segment = peer_segment();
        let map = segment.attach(Access::ReadWrite).unwrap();
        let mutex = attach(&map);
        let cond = attach_cond(&map);
        let mut guard = lock_repaired(&mutex, &map);
        // Counted under the lock: once the parent can lock, this waiter
        // is inside the wait.
        word(&map, PROGRESS).fetch_add(1, Ordering::Relaxed);
        let wait = match role.as_str() {
            "doomed" => Wait::Forever,
            "survivor" => Wait::For(Duration::from_secs(20)),
            other => panic!("unknown role {other}"),
        };
        while word(&map, A).load(Ordering::Relaxed) == 0 {
            guard = match cond.wait(guard, wait).unwrap() {
                Woken::Notified(guard) => guard,
                other => panic!("{role}: {other:?}"),
            };
        }
        assert_eq!(role, "survivor", "the doomed waiter was woken");
        drop(guard);
        return;
    }
    let segment = segment();
    let map = segment.attach(Access::ReadWrite).unwrap();
    let mutex = init(&map);
    let cond = init_cond(&map);
    let spawn = |role: &str, waiting: u64| {
        let peer = util::Peer::new(TEST, role)
            .arg("id", segment.id().to_string())
            .spawn();
        let start = Instant::now();
        loop {
            let guard = lock_repaired(&mutex, &map);
            if word(&map, PROGRESS).load(Ordering::Relaxed) == waiting {
                break;
            }
            drop(guard);
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{role} never waited"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        peer
    };
    let doomed = spawn("doomed", 1);
    doomed.kill();
    // The dead waiter held no lock: the mutex is free, not owner-died.
    let locked = mutex.lock(Wait::For(Duration::from_secs(5))).unwrap();
    assert!(matches!(locked, Locked::Acquired(_)));
    drop(locked);
    let survivor = spawn("survivor", 2);
    let guard = lock_repaired(&mutex, &map);
    word(&map, A).store(1, Ordering::Relaxed);
    word(&map, B).store(1, Ordering::Relaxed);
    cond.notify_all().unwrap();
    drop(guard);
    survivor.wait_success();
}
