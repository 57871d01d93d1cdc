//! eventfd between real processes: an exact sum under 4 × 100,000 adds from
//! four processes, semaphore mode's ones, a blocked take woken by a peer's
//! add, `WouldBlock` and timeouts on zero, passing the descriptor by
//! inheritance and over a UNIX socket, and the adoption check.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use unipc::stream::{pipe, unix};
use unipc::sync::eventfd::{EventFd, EventFdOptions, MAX_COUNT};
use unipc::sync::Wait;
use unipc::Error;

use crate::util;

const PEERS: usize = 4;
const ADDS: u64 = 100_000;

#[test]
fn the_sum_is_exact_under_four_processes_adding_at_once() {
    if let Some(role) = util::role() {
        assert_eq!(role, "adder");
        let counter = EventFd::try_from(util::passed_fd(0)).unwrap();
        for _ in 0..ADDS {
            counter.add(1, Wait::Forever).unwrap();
        }
        return;
    }
    let counter = EventFdOptions::new().create().unwrap();
    let peers: Vec<_> = (0..PEERS)
        .map(|_| {
            util::Peer::new(
                "eventfd::the_sum_is_exact_under_four_processes_adding_at_once",
                "adder",
            )
            .fd(counter.as_fd())
            .spawn()
        })
        .collect();
    let want = PEERS as u64 * ADDS;
    let start = Instant::now();
    let mut sum = 0;
    let mut takes = 0u64;
    while sum < want {
        assert!(
            start.elapsed() < Duration::from_secs(25),
            "sum stuck at {sum}"
        );
        match counter.take(Wait::For(Duration::from_secs(5))) {
            Ok(n) => {
                sum += n;
                takes += 1;
            }
            Err(Error::TimedOut { .. }) => {}
            Err(err) => panic!("{err}"),
        }
    }
    for peer in peers {
        peer.wait_success();
    }
    assert_eq!(sum, want);
    assert!(matches!(
        counter.take(Wait::Never),
        Err(Error::WouldBlock { .. })
    ));
    // Counter mode returns whole sums: far fewer takes than adds.
    assert!(takes <= want);
}

#[test]
fn semaphore_mode_returns_ones_and_a_peer_add_lets_that_many_through() {
    if let Some(role) = util::role() {
        assert_eq!(role, "poster");
        let semaphore = EventFd::try_from(util::passed_fd(0)).unwrap();
        semaphore.add(5, Wait::Never).unwrap();
        return;
    }
    let semaphore = EventFdOptions::new()
        .initial(2)
        .semaphore(true)
        .create()
        .unwrap();
    assert_eq!(semaphore.semaphore(), Some(true));
    assert_eq!(semaphore.take(Wait::Never).unwrap(), 1);
    assert_eq!(semaphore.take(Wait::Never).unwrap(), 1);
    assert!(matches!(
        semaphore.take(Wait::Never),
        Err(Error::WouldBlock { op: "take", .. })
    ));
    util::Peer::new(
        "eventfd::semaphore_mode_returns_ones_and_a_peer_add_lets_that_many_through",
        "poster",
    )
    .fd(semaphore.as_fd())
    .spawn()
    .wait_success();
    assert_eq!(semaphore.count().unwrap(), 5);
    for _ in 0..5 {
        assert_eq!(semaphore.take(Wait::Never).unwrap(), 1);
    }
    assert!(matches!(
        semaphore.take(Wait::Never),
        Err(Error::WouldBlock { .. })
    ));
}

#[test]
fn a_blocked_take_is_woken_by_an_add_from_another_process() {
    if let Some(role) = util::role() {
        assert_eq!(role, "late");
        let counter = EventFd::try_from(util::passed_fd(0)).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        counter.add(42, Wait::Never).unwrap();
        return;
    }
    let counter = EventFdOptions::new().create().unwrap();
    let peer = util::Peer::new(
        "eventfd::a_blocked_take_is_woken_by_an_add_from_another_process",
        "late",
    )
    .fd(counter.as_fd())
    .spawn();
    assert_eq!(counter.take(Wait::Forever).unwrap(), 42);
    peer.wait_success();
}

#[test]
fn a_timed_take_on_zero_times_out_no_earlier_than_asked() {
    let counter = EventFdOptions::new().create().unwrap();
    let timeout = Duration::from_millis(150);
    let start = Instant::now();
    let err = counter.take(Wait::For(timeout)).unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(err, Error::TimedOut { timeout: t, .. } if t == timeout),
        "{err}"
    );
    assert!(took >= timeout, "timed out after {took:?}");
}

#[test]
fn a_full_counter_makes_add_wait_and_u64_max_is_refused() {
    let counter = EventFdOptions::new().create().unwrap();
    let err = counter.add(u64::MAX, Wait::Forever).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LimitExceeded {
                requested: u64::MAX,
                limit: MAX_COUNT,
                ..
            }
        ),
        "{err}"
    );
    counter.add(MAX_COUNT, Wait::Never).unwrap();
    assert!(matches!(
        counter.add(1, Wait::Never),
        Err(Error::WouldBlock { op: "add", .. })
    ));
    let timeout = Duration::from_millis(50);
    let start = Instant::now();
    assert!(matches!(
        counter.add(1, Wait::For(timeout)),
        Err(Error::TimedOut { .. })
    ));
    assert!(start.elapsed() >= timeout);
    assert_eq!(counter.take(Wait::Never).unwrap(), MAX_COUNT);
    counter.add(1, Wait::Never).unwrap();
}

#[test]
fn an_eventfd_passed_over_a_unix_socket_is_adopted_with_its_mode() {
    if let Some(role) = util::role() {
        assert_eq!(role, "receiver");
        let socket = unix::Stream::try_from(util::passed_fd(0)).unwrap();
        let mut buf = [0; 8];
        let (n, mut fds) = socket.recv_with_fds(&mut buf, 1).unwrap();
        assert_eq!(&buf[..n], b"efd");
        let semaphore = EventFd::try_from(fds.pop().unwrap()).unwrap();
        // Linux 6.6 and later show the mode in fdinfo; older ones do not.
        assert_ne!(semaphore.semaphore(), Some(false));
        assert_eq!(semaphore.take(Wait::Never).unwrap(), 1);
        semaphore.add(7, Wait::Never).unwrap();
        return;
    }
    let (ours, theirs) = unix::pair().unwrap();
    let semaphore = EventFdOptions::new()
        .initial(3)
        .semaphore(true)
        .create()
        .unwrap();
    let peer = util::Peer::new(
        "eventfd::an_eventfd_passed_over_a_unix_socket_is_adopted_with_its_mode",
        "receiver",
    )
    .fd(theirs.as_fd())
    .spawn();
    drop(theirs);
    ours.send_with_fds(b"efd", &[semaphore.as_fd()]).unwrap();
    peer.wait_success();
    // 3 - 1 + 7, read without taking, then taken one by one.
    assert_eq!(semaphore.count().unwrap(), 9);
    for _ in 0..9 {
        assert_eq!(semaphore.take(Wait::Never).unwrap(), 1);
    }
}

#[test]
fn adoption_refuses_what_is_not_an_eventfd_and_hands_it_back() {
    let (tx, _rx) = pipe::new().unwrap();
    let raw = tx.as_fd().as_raw_fd();
    let err = EventFd::try_from(OwnedFd::from(tx)).unwrap_err();
    assert!(
        matches!(
            err.error(),
            Error::WrongType {
                expected: "an eventfd",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.into_fd().as_raw_fd(), raw);
    let file = OwnedFd::from(std::fs::File::open("/proc/self/status").unwrap());
    let err = EventFd::try_from(file).unwrap_err();
    assert!(matches!(err.error(), Error::WrongType { .. }), "{err}");
    // A counter made here comes back with its mode.
    let counter = EventFdOptions::new().create().unwrap();
    let back = EventFd::try_from(OwnedFd::from(counter)).unwrap();
    assert_ne!(back.semaphore(), Some(true));
}

#[test]
fn signals_during_a_timed_take_resume_it_with_the_time_left() {
    if let Some(role) = util::role() {
        assert_eq!(role, "interrupted");
        crate::futex::interrupt_on_sigusr1();
        let counter = EventFd::try_from(util::passed_fd(0)).unwrap();
        let timeout = Duration::from_secs(1);
        let start = Instant::now();
        let (err, took) = crate::futex::pestered(|| {
            let err = counter.take(Wait::For(timeout)).unwrap_err();
            (err, start.elapsed())
        });
        assert!(matches!(err, Error::TimedOut { .. }), "{err}");
        assert!(took >= timeout, "{took:?}");
        // A poll that restarted its full timeout at each signal (every
        // 20 ms for 0.9 s) would last 1.88 s at least.
        assert!(took < Duration::from_millis(1700), "{took:?}");
        return;
    }
    // A peer, because the handler is process-wide.
    let counter = EventFdOptions::new().create().unwrap();
    util::Peer::new(
        "eventfd::signals_during_a_timed_take_resume_it_with_the_time_left",
        "interrupted",
    )
    .fd(counter.as_fd())
    .spawn()
    .wait_success();
}
