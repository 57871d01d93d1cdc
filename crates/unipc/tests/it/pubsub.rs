//! `pubsub:/NAME` between processes: three subscriber processes each see
//! every message in order (block policy), or every message they did not
//! lose with the exact count of those they did (overwrite policy); a dead
//! subscriber stops holding the publisher back; a dead publisher is
//! reported; places are limited; foreign headers are refused.

use std::time::{Duration, Instant};

use unipc::message::ring::pubsub::{PubSubOptions, Subscriber};
use unipc::message::{Messenger, Wait};
use unipc::name::PosixName;
use unipc::shm::posix::SegmentOptions;
use unipc::Error;

use crate::util;

const PATIENCE: Wait = Wait::For(Duration::from_secs(20));
const COUNT: u64 = 100_000;

fn fresh() -> PosixName {
    format!("/{}", util::unique("pubsub")).parse().unwrap()
}

/// Message `seq`: its number, then bytes derived from it.
fn message(seq: u64) -> Vec<u8> {
    let mut out = seq.to_le_bytes().to_vec();
    out.extend((0..(seq % 40) as usize).map(|i| (seq as usize).wrapping_add(i * 3) as u8));
    out
}

/// Receives until message `COUNT - 1`, checking each is whole and later
/// than the last; prints `received lost` for the parent.
fn subscriber_role() {
    let name: PosixName = util::arg("NAME").parse().unwrap();
    let sub = PubSubOptions::open(&name).unwrap().subscribe().unwrap();
    let slow = util::arg("SLOW") == "1";
    let mut buf = [0; 64];
    let mut last: Option<u64> = None;
    let mut received = 0u64;
    loop {
        let got = sub.recv_wait(&mut buf, PATIENCE).unwrap();
        let seq = u64::from_le_bytes(buf[..8].try_into().unwrap());
        assert_eq!(
            &buf[..got.len],
            &message(seq)[..],
            "message {seq} arrived torn"
        );
        assert!(last.map_or(true, |l| seq > l), "{seq} after {last:?}");
        last = Some(seq);
        received += 1;
        if slow && seq % 1000 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
        if seq == COUNT - 1 {
            break;
        }
    }
    println!("COUNTS {received} {}", sub.lost());
}

fn run(overwrite: bool, test: &str) {
    if util::role().is_some() {
        return subscriber_role();
    }
    let name = fresh();
    let made = PubSubOptions::new()
        .capacity(16)
        .max_size(64)
        .subscribers(3)
        .overwrite(overwrite)
        .exclusive(true)
        .create(&name)
        .unwrap();
    let mut subs: Vec<_> = (0..3)
        .map(|i| {
            util::Peer::new(test, "subscriber")
                .arg("NAME", name.as_str())
                .arg("SLOW", if i == 2 { "1" } else { "0" })
                .capture_stdout()
                .spawn()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while made.status().unwrap().subscribers.len() < 3 {
        assert!(Instant::now() < deadline, "the subscribers never attached");
        std::thread::sleep(Duration::from_millis(5));
    }
    let publisher = PubSubOptions::open(&name).unwrap().publish().unwrap();
    for seq in 0..COUNT {
        publisher.send_wait(&message(seq), PATIENCE).unwrap();
    }
    for (i, sub) in subs.drain(..).enumerate() {
        let (status, out) = sub.wait_stdout();
        assert!(status.success(), "subscriber {i}: {status:?}");
        let out = String::from_utf8(out).unwrap();
        let counts: Vec<u64> = out
            .lines()
            .find_map(|line| line.strip_prefix("COUNTS "))
            .unwrap_or_else(|| panic!("subscriber {i} printed no counts: {out}"))
            .split(' ')
            .map(|n| n.parse().unwrap())
            .collect();
        let (received, lost) = (counts[0], counts[1]);
        assert_eq!(
            received + lost,
            COUNT,
            "subscriber {i}: every message seen or counted lost"
        );
        if !overwrite {
            assert_eq!(lost, 0, "subscriber {i}: the block policy loses nothing");
        }
    }
}

#[test]
fn three_subscribers_each_see_every_message_in_order() {
    run(
        false,
        "pubsub::three_subscribers_each_see_every_message_in_order",
    );
}

#[test]
fn with_overwrite_a_slow_subscriber_sees_every_message_or_an_exact_lost_count() {
    run(
        true,
        "pubsub::with_overwrite_a_slow_subscriber_sees_every_message_or_an_exact_lost_count",
    );
}

#[test]
fn overwrite_counts_exactly_what_a_subscriber_missed() {
    let name = fresh();
    let made = PubSubOptions::new()
        .capacity(4)
        .max_size(16)
        .subscribers(1)
        .overwrite(true)
        .exclusive(true)
        .create(&name)
        .unwrap();
    let sub = made.subscribe().unwrap();
    let publisher = PubSubOptions::open(&name).unwrap().publish().unwrap();
    for seq in 0..10u64 {
        publisher
            .send_wait(&seq.to_le_bytes(), Wait::Never)
            .unwrap();
    }
    let got: Vec<u64> = (0..4)
        .map(|_| u64::from_le_bytes(sub.recv_vec(Wait::Never).unwrap().0.try_into().unwrap()))
        .collect();
    assert_eq!(got, [6, 7, 8, 9]);
    assert_eq!(sub.lost(), 6);
    assert!(matches!(
        sub.recv_vec(Wait::Never),
        Err(Error::Empty { .. })
    ));
    let status = sub.pubsub().status().unwrap();
    assert_eq!(status.subscribers[0].lost, 6);
}

#[test]
fn block_waits_for_the_slowest_and_a_dead_subscriber_stops_holding_it_back() {
    if util::role().is_some() {
        let name: PosixName = util::arg("NAME").parse().unwrap();
        let _sub = PubSubOptions::open(&name).unwrap().subscribe().unwrap();
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let name = fresh();
    let made = PubSubOptions::new()
        .capacity(2)
        .max_size(16)
        .subscribers(2)
        .exclusive(true)
        .create(&name)
        .unwrap();
    let fast = PubSubOptions::open(&name).unwrap().subscribe().unwrap();
    let peer = util::Peer::new(
        "pubsub::block_waits_for_the_slowest_and_a_dead_subscriber_stops_holding_it_back",
        "idle",
    )
    .arg("NAME", name.as_str())
    .spawn();
    let deadline = Instant::now() + Duration::from_secs(10);
    while made.status().unwrap().subscribers.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the idle subscriber never attached"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let publisher = PubSubOptions::open(&name).unwrap().publish().unwrap();
    publisher.send(b"1").unwrap();
    publisher.send(b"2").unwrap();
    assert_eq!(fast.recv_vec(Wait::Never).unwrap().0, b"1");
    assert!(
        matches!(
            publisher.send_wait(b"3", Wait::Never),
            Err(Error::Full { .. })
        ),
        "the idle subscriber holds the oldest slot"
    );
    // Taking a third place fails while both are held by live processes.
    assert!(matches!(
        PubSubOptions::open(&name).unwrap().subscribe(),
        Err(Error::InUse {
            role: "subscriber",
            ..
        })
    ));
    peer.kill();
    let killed = Instant::now();
    publisher.send_wait(b"3", PATIENCE).unwrap();
    assert!(
        killed.elapsed() < Duration::from_secs(1),
        "{:?}",
        killed.elapsed()
    );
    assert_eq!(fast.recv_vec(Wait::Never).unwrap().0, b"2");
    assert_eq!(fast.recv_vec(Wait::Never).unwrap().0, b"3");
}

#[test]
fn a_dead_publisher_is_reported_to_a_waiting_subscriber() {
    if util::role().is_some() {
        let name: PosixName = util::arg("NAME").parse().unwrap();
        let publisher = PubSubOptions::open(&name).unwrap().publish().unwrap();
        publisher.send(b"last words").unwrap();
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let name = fresh();
    let made = PubSubOptions::new().exclusive(true).create(&name).unwrap();
    let sub: Subscriber = made.subscribe().unwrap();
    let peer = util::Peer::new(
        "pubsub::a_dead_publisher_is_reported_to_a_waiting_subscriber",
        "publisher",
    )
    .arg("NAME", name.as_str())
    .spawn();
    assert_eq!(sub.recv_vec(PATIENCE).unwrap().0, b"last words");
    peer.kill();
    let killed = Instant::now();
    match sub.recv_vec(PATIENCE) {
        Err(Error::PeerDied {
            role: "publisher", ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(killed.elapsed() < Duration::from_secs(1));
}

#[test]
fn foreign_and_mismatched_objects_are_refused() {
    let name = fresh();
    let plain = SegmentOptions::new()
        .size(4096)
        .exclusive(true)
        .create(&name)
        .unwrap();
    plain.write_at(0, b"something else entirely").unwrap();
    assert!(matches!(
        PubSubOptions::open(&name),
        Err(Error::BadHeader { .. })
    ));
    // A ring is not a pubsub, nor the other way round.
    drop(plain);
    let ring = unipc::message::ring::RingOptions::new()
        .exclusive(true)
        .create(&name)
        .unwrap();
    assert!(matches!(
        PubSubOptions::open(&name),
        Err(Error::BadHeader { .. })
    ));
    drop(ring);
    let made = PubSubOptions::new()
        .subscribers(2)
        .exclusive(true)
        .create(&name)
        .unwrap();
    assert!(matches!(
        unipc::message::ring::Ring::open(&name),
        Err(Error::BadHeader { .. })
    ));
    assert!(matches!(
        PubSubOptions::new().subscribers(3).create(&name),
        Err(Error::BadHeader { .. })
    ));
    assert!(matches!(
        PubSubOptions::new().subscribers(0).create(&fresh()),
        Err(Error::Unsupported { .. })
    ));
    drop(made);
}

#[test]
fn a_loan_publishes_in_place_and_a_dropped_one_publishes_nothing() {
    let name = fresh();
    let made = PubSubOptions::new()
        .capacity(2)
        .max_size(16)
        .subscribers(1)
        .exclusive(true)
        .create(&name)
        .unwrap();
    let sub = made.subscribe().unwrap();
    let mut publisher = PubSubOptions::open(&name).unwrap().publish().unwrap();
    let mut loan = publisher.loan(Wait::Never).unwrap();
    assert_eq!(loan.len(), 16);
    loan[..5].copy_from_slice(b"loans");
    loan.commit(5).unwrap();
    publisher.loan(Wait::Never).unwrap(); // dropped: publishes nothing
    assert!(matches!(
        publisher.loan(Wait::Never).unwrap().commit(17),
        Err(Error::MessageTooLarge { .. })
    ));
    assert_eq!(sub.recv_vec(Wait::Never).unwrap().0, b"loans");
    assert!(matches!(
        sub.recv_vec(Wait::Never),
        Err(Error::Empty { .. })
    ));
    assert_eq!(sub.lost(), 0);
}

#[test]
fn a_view_holds_its_slot_under_block_and_is_refused_under_overwrite() {
    let name = fresh();
    let made = PubSubOptions::new()
        .capacity(1)
        .max_size(16)
        .subscribers(1)
        .exclusive(true)
        .create(&name)
        .unwrap();
    let mut sub = made.subscribe().unwrap();
    let publisher = PubSubOptions::open(&name).unwrap().publish().unwrap();
    publisher.send(b"held").unwrap();
    {
        let view = sub.recv_view(Wait::Never).unwrap();
        assert_eq!(&*view, b"held");
        // The only slot is lent: the publisher waits for it.
        assert!(matches!(
            publisher.send_wait(b"next", Wait::Never),
            Err(Error::Full { .. })
        ));
    }
    publisher.send_wait(b"next", Wait::Never).unwrap();
    assert_eq!(&*sub.recv_view(Wait::Never).unwrap(), b"next");

    let name = fresh();
    let made = PubSubOptions::new()
        .overwrite(true)
        .exclusive(true)
        .create(&name)
        .unwrap();
    let mut sub = made.subscribe().unwrap();
    assert!(matches!(
        sub.recv_view(Wait::Never),
        Err(Error::Unsupported { .. })
    ));
}
