//! `ring:/NAME` between processes: exact order at small and large
//! capacities, by copy and by loan; a peer killed at a random moment is
//! reported within a second and never yields part of a message; foreign,
//! corrupt and mismatched headers and cursors are refused; one writer and
//! one reader; permissions as an unprivileged user.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use unipc::message::ring::{Receiver, Ring, RingOptions, Sender, WaitStrategy};
use unipc::message::{Messenger, Wait};
use unipc::name::PosixName;
use unipc::shm::posix::SegmentOptions;
use unipc::Error;

use crate::util;

const PATIENCE: Wait = Wait::For(Duration::from_secs(20));
/// Messages carry 8 to 8 + SPREAD - 1 bytes.
const SPREAD: u64 = 57;

fn fresh() -> PosixName {
    format!("/{}", util::unique("ring")).parse().unwrap()
}

/// Message `seq`: its number, then bytes that depend on it and on the
/// position, so a torn or misplaced message cannot pass for another.
fn message(seq: u64, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&seq.to_le_bytes());
    let extra = (seq.wrapping_mul(0x9e37_79b9) % SPREAD) as usize;
    out.extend((0..extra).map(|i| (seq as usize).wrapping_add(i * 7) as u8));
}

fn check(seq: u64, got: &[u8], scratch: &mut Vec<u8>) {
    message(seq, scratch);
    assert_eq!(
        got,
        &scratch[..],
        "message {seq} arrived changed or out of order"
    );
}

fn strategy(name: &str) -> WaitStrategy {
    match name {
        "busy" => WaitStrategy::BusyPoll,
        "block" => WaitStrategy::Block,
        _ => WaitStrategy::SpinThenPark,
    }
}

/// Sends messages `0..count`, every third one by loan.
fn send_all(tx: &mut Sender, count: u64) {
    let mut buf = Vec::new();
    for seq in 0..count {
        message(seq, &mut buf);
        if seq % 3 == 0 {
            let mut loan = tx.loan(PATIENCE).unwrap();
            loan[..buf.len()].copy_from_slice(&buf);
            loan.commit(buf.len()).unwrap();
        } else {
            tx.send_wait(&buf, PATIENCE).unwrap();
        }
    }
}

/// Receives messages `0..count` and checks each, every other one by view.
fn receive_all(rx: &mut Receiver, count: u64) {
    let mut scratch = Vec::new();
    let mut buf = vec![0; 8 + SPREAD as usize];
    for seq in 0..count {
        if seq % 2 == 0 {
            let view = rx.recv_view(PATIENCE).unwrap();
            check(seq, &view, &mut scratch);
        } else {
            let got = rx.recv_wait(&mut buf, PATIENCE).unwrap();
            check(seq, &buf[..got.len], &mut scratch);
        }
    }
    assert!(matches!(
        rx.recv_wait(&mut buf, Wait::Never),
        Err(Error::Empty { .. })
    ));
}

const CASES: [(u64, &str); 3] = [(2, "spin"), (3, "block"), (1024, "busy")];
const MILLION: u64 = 1_000_000;
/// Between processes: a quarter of a million, each case wrapping a ring of
/// 2 or 3 slots some 100,000 times, and short enough that a machine loaded
/// by other tests (blocking wake-ups of tens of microseconds, two
/// busy-pollers sharing a CPU) stays well inside the peer's watchdog.
const ACROSS: u64 = 250_000;

#[test]
fn a_million_messages_in_exact_order_within_one_process() {
    for (capacity, wait) in CASES {
        let name = fresh();
        let ring = RingOptions::new()
            .capacity(capacity)
            .max_size(8 + SPREAD as usize)
            .exclusive(true)
            .create(&name)
            .unwrap();
        let mut tx = Ring::open(&name).unwrap().into_sender().unwrap();
        let mut rx = ring.into_receiver().unwrap();
        tx.set_wait_strategy(strategy(wait));
        rx.set_wait_strategy(strategy(wait));
        let writer = std::thread::spawn(move || send_all(&mut tx, MILLION));
        receive_all(&mut rx, MILLION);
        writer.join().unwrap();
    }
}

#[test]
fn messages_arrive_in_exact_order_across_two_processes() {
    if util::role().is_some() {
        let name: PosixName = util::arg("NAME").parse().unwrap();
        let mut tx = Ring::open(&name).unwrap().into_sender().unwrap();
        tx.set_wait_strategy(strategy(&util::arg("WAIT")));
        send_all(&mut tx, ACROSS);
        return;
    }
    for (capacity, wait) in CASES {
        let name = fresh();
        let ring = RingOptions::new()
            .capacity(capacity)
            .max_size(8 + SPREAD as usize)
            .exclusive(true)
            .create(&name)
            .unwrap();
        let mut rx = ring.into_receiver().unwrap();
        rx.set_wait_strategy(strategy(wait));
        let peer = util::Peer::new(
            "ring::messages_arrive_in_exact_order_across_two_processes",
            "writer",
        )
        .arg("NAME", name.as_str())
        .arg("WAIT", wait)
        .spawn();
        receive_all(&mut rx, ACROSS);
        peer.wait_success();
        assert_eq!(
            rx.ring().status().unwrap().writer,
            None,
            "the writer gave its side back"
        );
    }
}

/// A pseudo-random number from the test's own counter (no dependency).
fn pseudo_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

const KILLS: u64 = 50;

#[test]
fn a_writer_killed_at_random_moments_is_reported_within_a_second_and_nothing_partial() {
    if util::role().is_some() {
        let name: PosixName = util::arg("NAME").parse().unwrap();
        let mut tx = Ring::open(&name).unwrap().into_sender().unwrap();
        send_all(&mut tx, u64::MAX);
        return;
    }
    let mut state = 0x2545_f491_4f6c_dd1d;
    for round in 0..KILLS {
        let name = fresh();
        let ring = RingOptions::new()
            .capacity(1 + round % 8)
            .max_size(8 + SPREAD as usize)
            .exclusive(true)
            .create(&name)
            .unwrap();
        let rx = ring.into_receiver().unwrap();
        let peer = util::Peer::new(
            "ring::a_writer_killed_at_random_moments_is_reported_within_a_second_and_nothing_partial",
            "writer",
        )
        .arg("NAME", name.as_str())
        .spawn();
        let before = pseudo_random(&mut state) % 3000;
        let mut scratch = Vec::new();
        let mut buf = vec![0; 8 + SPREAD as usize];
        for seq in 0..before {
            let got = rx.recv_wait(&mut buf, PATIENCE).unwrap();
            check(seq, &buf[..got.len], &mut scratch);
        }
        peer.kill();
        let killed = Instant::now();
        let mut seq = before;
        let err = loop {
            match rx.recv_wait(&mut buf, PATIENCE) {
                Ok(got) => {
                    check(seq, &buf[..got.len], &mut scratch);
                    seq += 1;
                }
                Err(err) => break err,
            }
        };
        assert!(
            matches!(err, Error::PeerDied { role: "writer", .. }),
            "round {round}: {err}"
        );
        assert!(
            killed.elapsed() < Duration::from_secs(1),
            "round {round}: {:?}",
            killed.elapsed()
        );
        // Told once; afterwards the ring waits for a new writer.
        assert!(matches!(
            rx.recv_wait(&mut buf, Wait::Never),
            Err(Error::Empty { .. })
        ));
    }
}

#[test]
fn a_reader_killed_at_random_moments_is_reported_within_a_second() {
    if util::role().is_some() {
        let name: PosixName = util::arg("NAME").parse().unwrap();
        let mut rx = Ring::open(&name).unwrap().into_receiver().unwrap();
        receive_all(&mut rx, u64::MAX);
        return;
    }
    let mut state = 0x9e37_79b9_7f4a_7c15;
    for round in 0..KILLS {
        let name = fresh();
        let ring = RingOptions::new()
            .capacity(1 + round % 8)
            .max_size(8 + SPREAD as usize)
            .exclusive(true)
            .create(&name)
            .unwrap();
        let tx = ring.into_sender().unwrap();
        let peer = util::Peer::new(
            "ring::a_reader_killed_at_random_moments_is_reported_within_a_second",
            "reader",
        )
        .arg("NAME", name.as_str())
        .spawn();
        let before = pseudo_random(&mut state) % 3000;
        let mut buf = Vec::new();
        for seq in 0..before {
            message(seq, &mut buf);
            tx.send_wait(&buf, PATIENCE).unwrap();
        }
        peer.kill();
        let killed = Instant::now();
        let mut seq = before;
        let err = loop {
            message(seq, &mut buf);
            match tx.send_wait(&buf, PATIENCE) {
                Ok(()) => seq += 1,
                Err(err) => break err,
            }
        };
        assert!(
            matches!(err, Error::PeerDied { role: "reader", .. }),
            "round {round}: {err}"
        );
        assert!(
            killed.elapsed() < Duration::from_secs(1),
            "round {round}: {:?}",
            killed.elapsed()
        );
    }
}

#[test]
fn one_writer_and_one_reader_and_a_dead_holder_is_replaced() {
    if util::role().is_some() {
        let name: PosixName = util::arg("NAME").parse().unwrap();
        let _tx = Ring::open(&name).unwrap().into_sender().unwrap();
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let name = fresh();
    let ring = RingOptions::new().exclusive(true).create(&name).unwrap();
    let peer = util::Peer::new(
        "ring::one_writer_and_one_reader_and_a_dead_holder_is_replaced",
        "writer",
    )
    .arg("NAME", name.as_str())
    .spawn();
    let pid = peer.pid();
    let deadline = Instant::now() + Duration::from_secs(10);
    while ring.status().unwrap().writer.is_none() {
        assert!(Instant::now() < deadline, "the peer never attached");
        std::thread::sleep(Duration::from_millis(5));
    }
    match Ring::open(&name).unwrap().into_sender() {
        Err(Error::InUse {
            role: "writer",
            pid: held,
            ..
        }) => assert_eq!(held, pid),
        other => panic!("a second writer was not refused: {other:?}"),
    }
    let rx = Ring::open(&name).unwrap().into_receiver().unwrap();
    match Ring::open(&name).unwrap().into_receiver() {
        Err(Error::InUse { role: "reader", .. }) => {}
        other => panic!("a second reader was not refused: {other:?}"),
    }
    peer.kill();
    let status = ring.status().unwrap();
    assert_eq!(status.writer.map(|w| (w.pid, w.alive)), Some((pid, false)));
    let tx = Ring::open(&name).unwrap().into_sender().unwrap();
    tx.send(b"after").unwrap();
    assert_eq!(rx.recv_vec(Wait::Never).unwrap().0, b"after");
}

#[test]
fn foreign_unfinished_and_mismatched_headers_are_refused() {
    let bad = |name: &PosixName| match Ring::open(name) {
        Err(Error::BadHeader { reason, .. }) => reason,
        other => panic!("{name}: opened {other:?}"),
    };
    let name = fresh();
    let plain = SegmentOptions::new()
        .size(4096)
        .exclusive(true)
        .create(&name)
        .unwrap();
    plain.write_at(0, b"not a ring header, just bytes").unwrap();
    assert!(bad(&name).contains("no ring header"));
    // All zero: a creator that never finished; refused after a wait.
    plain.write_at(0, &[0; 64]).unwrap();
    let started = Instant::now();
    assert!(bad(&name).contains("never finished"));
    assert!(started.elapsed() >= Duration::from_millis(900));
    drop(plain);

    let name = fresh();
    let ring = RingOptions::new()
        .capacity(4)
        .max_size(100)
        .exclusive(true)
        .create(&name)
        .unwrap();
    let raw = SegmentOptions::new().open(&name).unwrap();
    let header = |at: u64, bytes: &[u8]| raw.write_at(at, bytes).unwrap();
    header(8, &[2]);
    assert!(bad(&name).contains("version 2"));
    header(8, &[1]);
    header(16, &u64::MAX.to_le_bytes());
    assert!(bad(&name).contains("address space"));
    header(16, &5u64.to_le_bytes());
    assert!(
        bad(&name).contains("slots of"),
        "a capacity that disagrees with the size"
    );
    header(16, &4u64.to_le_bytes());
    Ring::open(&name).unwrap();
    // Creating over it with other sizes is refused, naming both.
    match RingOptions::new().capacity(8).max_size(100).create(&name) {
        Err(Error::BadHeader { reason, .. }) => assert!(reason.contains("capacity 4"), "{reason}"),
        other => panic!("adopted a ring of other sizes: {other:?}"),
    }
    let again = RingOptions::new()
        .capacity(4)
        .max_size(100)
        .create(&name)
        .unwrap();
    assert!(!again.created());
    // Shorter than its header says.
    raw.set_size(1000).unwrap();
    assert!(bad(&name).contains("shorter"));
    drop(ring);
    assert!(Ring::open(&name).is_err(), "the creator removed it");
}

#[test]
fn corrupt_cursors_and_lengths_are_refused_not_followed() {
    let name = fresh();
    let ring = RingOptions::new()
        .capacity(4)
        .max_size(100)
        .exclusive(true)
        .create(&name)
        .unwrap();
    let raw = SegmentOptions::new().open(&name).unwrap();
    let tx = Ring::open(&name).unwrap().into_sender().unwrap();
    let rx = ring.into_receiver().unwrap();
    let mut buf = [0; 100];

    tx.send(b"x").unwrap();
    raw.write_at(768, &1000u64.to_le_bytes()).unwrap(); // slot 0's length
    match rx.recv_wait(&mut buf, Wait::Never) {
        Err(Error::BadHeader { reason, .. }) => assert!(reason.contains("1000 bytes"), "{reason}"),
        other => panic!("a length over the max size was followed: {other:?}"),
    }
    raw.write_at(768, &1u64.to_le_bytes()).unwrap();
    assert_eq!(rx.recv_vec(Wait::Never).unwrap().0, b"x");

    raw.write_at(128, &u64::MAX.to_le_bytes()).unwrap(); // tail
    match rx.recv_wait(&mut buf, Wait::Never) {
        Err(Error::BadHeader { reason, .. }) => assert!(reason.contains("cursors"), "{reason}"),
        other => panic!("a tail far past the head was followed: {other:?}"),
    }
    raw.write_at(128, &1u64.to_le_bytes()).unwrap();
    for _ in 0..4 {
        tx.send(b"y").unwrap();
    }
    raw.write_at(256, &1000u64.to_le_bytes()).unwrap(); // head past tail
    match tx.send_wait(b"z", Wait::Never) {
        Err(Error::BadHeader { reason, .. }) => assert!(reason.contains("cursors"), "{reason}"),
        other => panic!("a head past the tail was followed: {other:?}"),
    }
}

#[test]
fn a_ring_of_mode_600_is_closed_to_another_user() {
    if util::role().is_some() {
        let name: PosixName = util::arg("NAME").parse().unwrap();
        match Ring::open(&name) {
            Err(err) => assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied, "{err}"),
            Ok(_) => panic!("nobody opened a mode-600 ring of root's"),
        }
        match RingOptions::new().create(&name) {
            Err(err) => assert!(err.to_string().contains("not this user's"), "{err}"),
            Ok(_) => panic!("nobody adopted a ring of root's"),
        }
        return;
    }
    if !util::is_root() {
        return util::skip("needs root to switch to nobody");
    }
    let name = fresh();
    let _ring = RingOptions::new().exclusive(true).create(&name).unwrap();
    let mut peer = util::Peer::new(
        "ring::a_ring_of_mode_600_is_closed_to_another_user",
        "nobody",
    )
    .arg("NAME", name.as_str());
    util::as_nobody(&mut peer);
    peer.spawn().wait_success();
}

#[derive(Clone, Debug)]
enum Op {
    Send(usize),
    Loan(usize, bool),
    Recv,
    View,
    SmallBuffer,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..=40usize).prop_map(Op::Send),
        (0..=40usize, any::<bool>()).prop_map(|(n, c)| Op::Loan(n, c)),
        Just(Op::Recv),
        Just(Op::View),
        Just(Op::SmallBuffer),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any sequence of sends, loans (committed or dropped), receives and
    /// views does what a bounded `VecDeque` does.
    #[test]
    fn a_ring_behaves_as_a_bounded_queue(capacity in 1u64..6, ops in prop::collection::vec(op(), 1..200)) {
        let name = fresh();
        let ring = RingOptions::new().capacity(capacity).max_size(32).exclusive(true).create(&name).unwrap();
        let mut tx = Ring::open(&name).unwrap().into_sender().unwrap();
        let mut rx = ring.into_receiver().unwrap();
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        let mut counter = 0u8;
        let mut next = |len: usize| -> Vec<u8> { counter = counter.wrapping_add(1); vec![counter; len] };
        for op in ops {
            let full = model.len() as u64 == capacity;
            match op {
                Op::Send(len) => {
                    let msg = next(len);
                    match tx.send_wait(&msg, Wait::Never) {
                        Ok(()) => { prop_assert!(!full && len <= 32); model.push_back(msg); }
                        Err(Error::Full { .. }) => prop_assert!(full),
                        Err(Error::MessageTooLarge { .. }) => prop_assert!(len > 32),
                        Err(e) => prop_assert!(false, "{e}"),
                    }
                }
                Op::Loan(len, commit) => match tx.loan(Wait::Never) {
                    Ok(mut loan) => {
                        prop_assert!(!full);
                        let msg = next(len.min(32));
                        loan[..msg.len()].copy_from_slice(&msg);
                        if commit { loan.commit(msg.len()).unwrap(); model.push_back(msg); }
                    }
                    Err(Error::Full { .. }) => prop_assert!(full),
                    Err(e) => prop_assert!(false, "{e}"),
                },
                Op::Recv => match rx.recv_vec(Wait::Never) {
                    Ok((got, _)) => prop_assert_eq!(Some(got), model.pop_front()),
                    Err(Error::Empty { .. }) => prop_assert!(model.is_empty()),
                    Err(e) => prop_assert!(false, "{e}"),
                },
                Op::View => match rx.recv_view(Wait::Never) {
                    Ok(view) => prop_assert_eq!(Some(view.to_vec()), model.pop_front()),
                    Err(Error::Empty { .. }) => prop_assert!(model.is_empty()),
                    Err(e) => prop_assert!(false, "{e}"),
                },
                Op::SmallBuffer => {
                    let mut tiny = [0; 0];
                    match rx.recv_wait(&mut tiny, Wait::Never) {
                        Err(Error::BufferTooSmall { needed, .. }) => {
                            prop_assert_eq!(needed, model.front().map(|m| m.len()));
                        }
                        Ok(got) => prop_assert_eq!(Some(got.len), model.pop_front().map(|m| m.len())),
                        Err(Error::Empty { .. }) => prop_assert!(model.is_empty()),
                        Err(e) => prop_assert!(false, "{e}"),
                    }
                }
            }
            let status = rx.ring().status().unwrap();
            prop_assert_eq!(status.used, model.len() as u64);
        }
    }
}

/// Fuzzing the memory a peer controls: any bytes in the header, the
/// cursors and a slot's length word give a ring that opens and works, or
/// a typed error — never a panic, a read outside the object or a hang.
/// Runs for a bounded time under `cargo test` (bolero's random engine);
/// `cargo bolero test` runs it as a fuzz target.
#[test]
fn any_bytes_a_peer_writes_give_a_working_ring_or_a_typed_error() {
    let name = fresh();
    let ring = RingOptions::new()
        .capacity(4)
        .max_size(100)
        .exclusive(true)
        .create(&name)
        .unwrap();
    let raw = SegmentOptions::new().open(&name).unwrap();
    let pristine = {
        let mut bytes = vec![0; 768];
        raw.read_at(0, &mut bytes).unwrap();
        bytes
    };
    bolero::check!()
        .with_type::<(u8, Vec<(u16, u8)>, u64, u64, u64)>()
        .with_test_time(Duration::from_secs(3))
        .for_each(|(which, pokes, tail, head, len)| {
            raw.write_at(0, &pristine).unwrap();
            // Header bytes flipped anywhere in the config line, or the
            // cursors and a length set to anything.
            for &(at, byte) in pokes.iter().take(8) {
                raw.write_at(u64::from(at % 64), &[byte]).unwrap();
            }
            match which % 4 {
                0 => raw.write_at(128, &tail.to_le_bytes()).unwrap(),
                1 => raw.write_at(256, &head.to_le_bytes()).unwrap(),
                2 => raw
                    .write_at(768 + (tail % 4) * 128, &len.to_le_bytes())
                    .unwrap(),
                _ => {}
            }
            let Ok(opened) = Ring::open(&name) else {
                return;
            };
            let mut buf = [0; 100];
            if let Ok(rx) = opened.into_receiver() {
                for _ in 0..6 {
                    match rx.recv_wait(&mut buf, Wait::Never) {
                        Ok(got) => assert!(got.len <= 100),
                        Err(Error::Empty { .. } | Error::BadHeader { .. }) => break,
                        Err(e) => panic!("untyped or unexpected: {e}"),
                    }
                }
            }
            if let Ok(tx) = Ring::open(&name).and_then(Ring::into_sender) {
                for _ in 0..6 {
                    match tx.send_wait(b"fuzz", Wait::Never) {
                        Ok(()) => {}
                        Err(Error::Full { .. } | Error::BadHeader { .. }) => break,
                        Err(e) => panic!("untyped or unexpected: {e}"),
                    }
                }
            }
        });
    drop(ring);
}

#[test]
fn the_inventory_names_rings_and_pubsubs_by_their_own_scheme() {
    let ring_name = fresh();
    let pubsub_name = fresh();
    let plain_name = fresh();
    let _ring = RingOptions::new()
        .exclusive(true)
        .create(&ring_name)
        .unwrap();
    let _pubsub = unipc::message::ring::pubsub::PubSubOptions::new()
        .exclusive(true)
        .create(&pubsub_name)
        .unwrap();
    let _plain = SegmentOptions::new()
        .size(64)
        .exclusive(true)
        .create(&plain_name)
        .unwrap();
    let listing = unipc::inventory::list(&[unipc::inventory::Kind::Shm]).unwrap();
    let names: Vec<&str> = listing.objects.iter().map(|o| o.name.as_str()).collect();
    for want in [
        format!("ring:{ring_name}"),
        format!("pubsub:{pubsub_name}"),
        format!("shm:{plain_name}"),
    ] {
        assert!(names.contains(&want.as_str()), "{want} not in {names:?}");
    }
}

#[test]
fn a_side_left_by_a_process_that_died_before_this_one_came_is_not_reported() {
    if util::role().is_some() {
        let name: PosixName = util::arg("NAME").parse().unwrap();
        let _rx = Ring::open(&name).unwrap().into_receiver().unwrap();
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let name = fresh();
    let ring = RingOptions::new()
        .capacity(2)
        .max_size(8)
        .exclusive(true)
        .create(&name)
        .unwrap();
    let peer = util::Peer::new(
        "ring::a_side_left_by_a_process_that_died_before_this_one_came_is_not_reported",
        "reader",
    )
    .arg("NAME", name.as_str())
    .spawn();
    let deadline = Instant::now() + Duration::from_secs(10);
    while ring.status().unwrap().reader.is_none() {
        assert!(Instant::now() < deadline, "the reader never attached");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Killed (or interrupted) without giving its side back.
    peer.kill();
    assert_eq!(ring.status().unwrap().reader.map(|r| r.alive), Some(false));
    let tx = Ring::open(&name).unwrap().into_sender().unwrap();
    assert_eq!(
        ring.status().unwrap().reader,
        None,
        "cleared when the writer came"
    );
    tx.send(b"1").unwrap();
    tx.send(b"2").unwrap();
    // Full, with nobody reading: a wait that times out, not a dead peer.
    match tx.send_wait(b"3", Wait::For(Duration::from_millis(300))) {
        Err(Error::TimedOut { .. }) => {}
        other => panic!("{other:?}"),
    }
    // Errors name the ring, not the shared memory under it.
    let err = RingOptions::new()
        .exclusive(true)
        .create(&name)
        .unwrap_err();
    assert!(
        err.to_string().starts_with(&format!("ring:{name}")),
        "{err}"
    );
}
