//! Synchronization awaited: POSIX semaphores (named, and unnamed in shared
//! memory), System V sets and signals, through their helpers or the reactor.

use std::time::{Duration, Instant};

use unipc::asynch::AsyncSemaphore;
use unipc::name::PosixName;
use unipc::sync::posix_sem::{Semaphore, SemaphoreOptions};

use super::{patient, poll_once, wait_success};
use crate::util;

fn unique_name() -> PosixName {
    format!("/{}", util::unique("asem")).parse().unwrap()
}

/// A peer posts COUNT times, paced; the parent takes COUNT units through
/// waits of which many are dropped mid-wait (after one poll, or by a
/// timeout): every post is taken once, none is lost, none is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semaphore_dropped_waits_lose_no_post() {
    const TEST: &str = "asynch::sync::semaphore_dropped_waits_lose_no_post";
    const COUNT: u32 = 200;
    if util::role().is_some() {
        let sem = Semaphore::open(&util::arg("NAME").parse().unwrap()).unwrap();
        for i in 0..COUNT {
            sem.post().unwrap();
            std::thread::sleep(Duration::from_micros(50 + u64::from(i % 7) * 50));
        }
        return;
    }
    let name = unique_name();
    let sem = AsyncSemaphore::new(
        SemaphoreOptions::new()
            .exclusive(true)
            .create(&name)
            .unwrap(),
    )
    .unwrap();
    let peer = util::Peer::new(TEST, "poster")
        .arg("NAME", name.as_str())
        .spawn();
    take_dropping_waits(COUNT, || sem.wait()).await;
    wait_success(peer).await;
    // Nothing more: no unit was counted twice, none is left anywhere.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), sem.wait())
            .await
            .is_err(),
        "a post was taken twice"
    );
    assert_eq!(sem.get_ref().value().unwrap(), 0);
}

/// Takes `count` units through `wait`, dropping many waits mid-wait (after
/// one poll, and by timeouts of varied length); fails if none was dropped.
async fn take_dropping_waits<F, W>(count: u32, wait: W)
where
    F: std::future::Future<Output = unipc::Result<()>>,
    W: Fn() -> F,
{
    let (mut taken, mut dropped, mut round) = (0u32, 0u32, 0u64);
    let started = Instant::now();
    while taken < count {
        assert!(started.elapsed() < super::PATIENCE, "stuck at {taken}");
        round += 1;
        let mut once = Box::pin(wait());
        match poll_once(once.as_mut()).await {
            Some(got) => {
                got.unwrap();
                taken += 1;
            }
            None => dropped += 1,
        }
        drop(once);
        let limit = Duration::from_micros(50 + (round * 397) % 1950);
        match tokio::time::timeout(limit, wait()).await {
            Ok(got) => {
                got.unwrap();
                taken += 1;
            }
            Err(_) => dropped += 1,
        }
    }
    assert!(dropped > 0, "no wait was ever dropped");
}

/// An unnamed semaphore in a POSIX shared-memory object: a peer attaches
/// and posts COUNT times, paced (blocking calls); the parent takes them
/// through async waits of which many are dropped: every post is taken
/// once. A unit held for a dropped wait is posted back when the handle
/// drops, and the peer, waiting in the blocking call, gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_semaphore_dropped_waits_lose_no_post() {
    use std::sync::Arc;
    use unipc::asynch::AsyncSharedSemaphore;
    use unipc::shm::{posix, Access};
    use unipc::sync::posix_sem::SharedSemaphore;
    const TEST: &str = "asynch::sync::shared_semaphore_dropped_waits_lose_no_post";
    const COUNT: u32 = 200;
    if util::role().is_some() {
        let segment = posix::Segment::open(&util::arg("NAME").parse().unwrap()).unwrap();
        // SAFETY: the parent made the object for this test; nobody
        // resizes it.
        let map = unsafe { segment.map(Access::ReadWrite) }.unwrap();
        // SAFETY: the parent initialized the semaphore at 64 before
        // starting this process and never destroys it.
        let sem = unsafe { SharedSemaphore::attach(&map, 64) }.unwrap();
        // SAFETY: likewise at 128.
        let back = unsafe { SharedSemaphore::attach(&map, 128) }.unwrap();
        for i in 0..COUNT {
            sem.post().unwrap();
            std::thread::sleep(Duration::from_micros(50 + u64::from(i % 7) * 50));
        }
        back.wait(unipc::message::Wait::For(super::PATIENCE))
            .unwrap();
        return;
    }
    let name = unique_name();
    let segment = posix::SegmentOptions::new()
        .size(4096)
        .exclusive(true)
        .create(&name)
        .unwrap();
    // SAFETY: the object is this test's own; nobody resizes it.
    let map = Arc::new(unsafe { segment.map(Access::ReadWrite) }.unwrap());
    let sem = AsyncSharedSemaphore::init(Arc::clone(&map), 64, 0).unwrap();
    let back = AsyncSharedSemaphore::init(Arc::clone(&map), 128, 0).unwrap();
    assert!(
        AsyncSharedSemaphore::init(Arc::clone(&map), 65, 0).is_err(),
        "misaligned"
    );
    // A unit the helper takes for a wait that is dropped unseen...
    let mut waiting = Box::pin(back.wait());
    assert!(poll_once(waiting.as_mut()).await.is_none());
    back.post().unwrap();
    let deadline = Instant::now() + super::PATIENCE;
    while !format!("{back:?}").contains("held: 1") {
        assert!(Instant::now() < deadline, "the helper never took the post");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    drop(waiting);
    // ...goes back to the semaphore with the handle, for the peer.
    drop(back);
    let peer = util::Peer::new(TEST, "poster")
        .arg("NAME", name.as_str())
        .spawn();
    take_dropping_waits(COUNT, || sem.wait()).await;
    patient("peer", wait_success(peer)).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(100), sem.wait())
            .await
            .is_err(),
        "a post was taken twice"
    );
    assert_eq!(sem.value().unwrap(), 0);
    // SAFETY: initialized above; nobody destroys it.
    let back = unsafe { SharedSemaphore::attach(&map, 128) }.unwrap();
    assert_eq!(
        back.value().unwrap(),
        0,
        "the peer took the unit posted back"
    );
}

/// A unit the helper took for a wait that was then dropped goes back to
/// the semaphore when the handle drops; a peer waiting in the blocking
/// call gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semaphore_drop_posts_back_what_it_held() {
    const TEST: &str = "asynch::sync::semaphore_drop_posts_back_what_it_held";
    if util::role().is_some() {
        let sem = Semaphore::open(&util::arg("NAME").parse().unwrap()).unwrap();
        sem.wait(unipc::message::Wait::For(super::PATIENCE))
            .unwrap();
        return;
    }
    let name = unique_name();
    let owner = SemaphoreOptions::new()
        .exclusive(true)
        .create(&name)
        .unwrap();
    let sem = AsyncSemaphore::new(Semaphore::open(&name).unwrap()).unwrap();
    let mut waiting = Box::pin(sem.wait());
    assert!(poll_once(waiting.as_mut()).await.is_none());
    owner.post().unwrap();
    // The helper takes it for the waiting future...
    let deadline = Instant::now() + Duration::from_secs(10);
    while !format!("{sem:?}").contains("held: 1") {
        assert!(Instant::now() < deadline, "the helper never took the post");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // ...which is dropped before it looks; then the handle.
    drop(waiting);
    drop(sem);
    assert_eq!(owner.value().unwrap(), 1, "posted back");
    let peer = util::Peer::new(TEST, "waiter")
        .arg("NAME", name.as_str())
        .spawn();
    patient("peer", wait_success(peer)).await;
    assert_eq!(owner.value().unwrap(), 0);
}

/// Signals through a signalfd awaited on a multi-threaded runtime, in a
/// peer whose signals are blocked from its first instruction (so in every
/// thread, the runtime's too): a receive dropped mid-wait took nothing;
/// three queued signals arrive in order with their values.
#[test]
fn signals_through_the_reactor() {
    use std::os::fd::AsFd;
    use unipc::asynch::AsyncSignalReceiver;
    use unipc::signal::{self, Signal, SignalReceiver};
    const TEST: &str = "asynch::sync::signals_through_the_reactor";
    let sig: Signal = "RTMIN+2".parse().unwrap();
    if util::role().is_some() {
        let ready = util::passed_fd(0);
        let receiver = SignalReceiver::new(&[sig]).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let receiver = rt.block_on(async {
            let receiver = AsyncSignalReceiver::new(receiver).unwrap();
            assert!(
                tokio::time::timeout(Duration::from_millis(20), receiver.recv())
                    .await
                    .is_err(),
                "nothing was sent yet"
            );
            assert_eq!(rustix::io::write(&ready, b"r").unwrap(), 1);
            for value in 1..=3 {
                let got = patient("signal", receiver.recv()).await.unwrap();
                assert_eq!((got.signal, got.value), (sig, Some(value)));
            }
            receiver.into_inner()
        });
        drop(rt);
        receiver.keep_blocked();
        return;
    }
    let (ready_r, ready_w) = rustix::pipe::pipe().unwrap();
    let peer = crate::signal::blocked_from_start(util::Peer::new(TEST, "receiver"), &[sig])
        .fd(ready_w.as_fd())
        .spawn();
    drop(ready_w);
    let mut byte = [0u8; 1];
    assert_eq!(rustix::io::read(&ready_r, &mut byte).unwrap(), 1);
    for value in 1..=3 {
        signal::send(peer.pid(), sig, Some(value)).unwrap();
    }
    peer.wait_success();
}

/// A System V set through its helper: a peer adds COUNT times, paced; the
/// parent takes COUNT through applies of which many are dropped mid-wait;
/// every add is taken once and the value ends at zero. A dropped apply
/// applied nothing: an add made after it stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semaphore_set_dropped_applies_apply_nothing() {
    use unipc::asynch::AsyncSemaphoreSet;
    use unipc::name::SysvKey;
    use unipc::sync::sysv_sem::{Op, SemaphoreSet, SetOptions};
    const TEST: &str = "asynch::sync::semaphore_set_dropped_applies_apply_nothing";
    const COUNT: u32 = 200;
    if util::role().is_some() {
        let set = SemaphoreSet::open_id(util::arg("ID").parse().unwrap()).unwrap();
        for i in 0..COUNT {
            set.apply(&[Op::add(0, 1)], unipc::message::Wait::Never)
                .unwrap();
            std::thread::sleep(Duration::from_micros(50 + u64::from(i % 7) * 50));
        }
        return;
    }
    let owner = SetOptions::new().count(1).create(SysvKey::Private).unwrap();
    let set = AsyncSemaphoreSet::new(SemaphoreSet::open_id(owner.id()).unwrap()).unwrap();
    // Dropped while waiting, then an add: the add stays.
    let take = [Op::take(0, 1)];
    let mut pending = Box::pin(set.apply(&take));
    assert!(poll_once(pending.as_mut()).await.is_none());
    drop(pending);
    owner
        .apply(&[Op::add(0, 1)], unipc::message::Wait::Never)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(owner.value(0).unwrap(), 1, "a dropped take took nothing");
    owner
        .apply(&[Op::take(0, 1)], unipc::message::Wait::Never)
        .unwrap();
    // Applied by the helper after the last poll, then dropped unseen: the
    // drop gives the unit back (this is the race the loop below hits by
    // chance; here it is made to happen).
    let mut pending = Box::pin(set.apply(&take));
    assert!(poll_once(pending.as_mut()).await.is_none());
    owner
        .apply(&[Op::add(0, 1)], unipc::message::Wait::Never)
        .unwrap();
    let started = Instant::now();
    while owner.value(0).unwrap() != 0 {
        assert!(
            started.elapsed() < super::PATIENCE,
            "the helper never applied the take"
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    drop(pending);
    assert_eq!(
        owner.value(0).unwrap(),
        1,
        "an applied take nobody saw is given back"
    );
    owner
        .apply(&[Op::take(0, 1)], unipc::message::Wait::Never)
        .unwrap();
    let peer = util::Peer::new(TEST, "adder")
        .arg("ID", owner.id().to_string())
        .spawn();
    let (mut taken, mut dropped, mut round) = (0u32, 0u32, 0u64);
    let started = Instant::now();
    while taken < COUNT {
        assert!(started.elapsed() < super::PATIENCE, "stuck at {taken}");
        round += 1;
        let mut once = Box::pin(set.apply(&take));
        match poll_once(once.as_mut()).await {
            Some(got) => {
                got.unwrap();
                taken += 1;
            }
            None => dropped += 1,
        }
        drop(once);
        let wait = Duration::from_micros(50 + (round * 397) % 1950);
        match tokio::time::timeout(wait, set.apply(&take)).await {
            Ok(got) => {
                got.unwrap();
                taken += 1;
            }
            Err(_) => dropped += 1,
        }
    }
    assert!(dropped > 0, "no apply was ever dropped");
    wait_success(peer).await;
    assert_eq!(owner.value(0).unwrap(), 0, "every add taken once");
}

/// A futex word in a System V segment: a peer counts it up to COUNT,
/// waking after each store, paced; the parent follows through waits of
/// which many are dropped mid-wait, and reaches COUNT. A wait on a value
/// the word no longer holds returns at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futex_waits_follow_a_peer() {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use unipc::asynch::AsyncFutex;
    use unipc::name::SysvKey;
    use unipc::shm::{sysv, Access};
    use unipc::sync::futex::Futex;
    const TEST: &str = "asynch::sync::futex_waits_follow_a_peer";
    const COUNT: u32 = 200;
    if util::role().is_some() {
        let segment = sysv::Segment::open_id(util::arg("ID").parse().unwrap()).unwrap();
        let map = segment.attach(Access::ReadWrite).unwrap();
        let futex = Futex::new(&map, 8).unwrap();
        for i in 1..=COUNT {
            futex.word().store(i, Ordering::Release);
            futex.wake(u32::MAX).unwrap();
            std::thread::sleep(Duration::from_micros(50 + u64::from(i % 7) * 50));
        }
        return;
    }
    let segment = sysv::SegmentOptions::new()
        .size(4096)
        .create(SysvKey::Private)
        .unwrap();
    let futex = AsyncFutex::new(Arc::new(segment.attach(Access::ReadWrite).unwrap()), 8).unwrap();
    patient("wait on a stale value", futex.wait(7))
        .await
        .unwrap();
    let peer = util::Peer::new(TEST, "counter")
        .arg("ID", segment.id().to_string())
        .spawn();
    let (mut dropped, mut round, mut woken) = (0u32, 0u64, 0u32);
    let started = Instant::now();
    loop {
        let seen = futex.word().load(Ordering::Acquire);
        if seen == COUNT {
            break;
        }
        assert!(started.elapsed() < super::PATIENCE, "stuck at {seen}");
        round += 1;
        let mut once = Box::pin(futex.wait(seen));
        if poll_once(once.as_mut()).await.is_none() {
            dropped += 1;
        }
        drop(once);
        let wait = Duration::from_micros(50 + (round * 397) % 1950);
        if let Ok(done) = tokio::time::timeout(wait, futex.wait(seen)).await {
            done.unwrap();
            woken += 1;
        } else {
            dropped += 1;
        }
    }
    assert!(dropped > 0, "no wait was ever dropped");
    assert!(woken > 0, "no wait ended by the peer's store and wake");
    wait_success(peer).await;
}
