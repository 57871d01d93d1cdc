//! `nats://` against a real `nats-server -js` on 127.0.0.1, between
//! processes: the server each test starts (and stops by its pid), a
//! sending or receiving peer re-executed from this binary.

use std::time::{Duration, Instant};

use unipc::endpoint::NatsAddress;
use unipc::message::nats::{Nats, NatsOptions};
use unipc::message::{Messenger, Tag, Wait};
use unipc::{Endpoint, Error, RemoteKind};
use unipc_test_support::NatsServer;

use crate::util::{self, Peer};

fn address(url: &str, subject: &str) -> NatsAddress {
    let endpoint: Endpoint = format!("{url}/{subject}").parse().unwrap();
    let Endpoint::Nats(address) = endpoint else {
        unreachable!()
    };
    address
}

/// A subject no other test uses.
fn subject(what: &str) -> String {
    util::unique(what).replace('-', "_")
}

#[test]
fn messages_cross_processes_in_order_with_their_tags_and_each_goes_once() {
    const TEST: &str = "nats::messages_cross_processes_in_order_with_their_tags_and_each_goes_once";
    match util::role().as_deref() {
        Some("sender") => {
            let jobs = Nats::open(&address(&util::arg("URL"), &util::arg("SUBJECT"))).unwrap();
            for i in 0..200u32 {
                let tag = match i % 3 {
                    0 => Tag::None,
                    1 => Tag::Priority(i),
                    _ => Tag::Type(i64::from(i) + 1),
                };
                jobs.send_tagged(format!("job {i}").as_bytes(), tag, Wait::Forever)
                    .unwrap();
            }
            return;
        }
        Some("receiver") => {
            // Takes what it can for a while, and prints each message's number.
            let jobs = Nats::open(&address(&util::arg("URL"), &util::arg("SUBJECT"))).unwrap();
            let mut buf = [0; 64];
            loop {
                match jobs.recv_into(&mut buf, Wait::For(Duration::from_millis(1500))) {
                    Ok(got) => println!("{}", String::from_utf8_lossy(&buf[..got.len])),
                    Err(Error::TimedOut { .. }) => return,
                    Err(e) => panic!("{e}"),
                }
            }
        }
        _ => {}
    }
    let Some(server) = NatsServer::start() else {
        return;
    };
    let subject = subject("order");
    let addr = address(&server.url(), &subject);
    let jobs = NatsOptions::new().create(&addr).unwrap();
    assert!(jobs.created());
    assert!(matches!(jobs.try_recv(), Err(Error::Empty { .. })));
    let started = Instant::now();
    let err = jobs
        .recv_vec(Wait::For(Duration::from_millis(300)))
        .unwrap_err();
    assert!(matches!(err, Error::TimedOut { .. }), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(300));

    Peer::new(TEST, "sender")
        .arg("URL", server.url())
        .arg("SUBJECT", &subject)
        .spawn()
        .wait_success();
    let stat = jobs.stat().unwrap();
    assert_eq!(
        (stat.messages, stat.retention),
        (200, "workqueue"),
        "{stat:?}"
    );

    // The first 50 here, in order, with their tags.
    for i in 0..50u32 {
        let (message, tag) = jobs.recv_vec(Wait::Never).unwrap();
        assert_eq!(message, format!("job {i}").as_bytes());
        let want = match i % 3 {
            0 => Tag::None,
            1 => Tag::Priority(i),
            _ => Tag::Type(i64::from(i) + 1),
        };
        assert_eq!(tag, want, "message {i}");
    }
    // The other 150 between two receiving processes: each exactly once.
    let receivers: Vec<_> = (0..2)
        .map(|_| {
            Peer::new(TEST, "receiver")
                .arg("URL", server.url())
                .arg("SUBJECT", &subject)
                .capture_stdout()
                .spawn()
        })
        .collect();
    let mut seen: Vec<u32> = receivers
        .into_iter()
        .flat_map(|r| {
            let (status, out) = r.wait_stdout();
            assert!(status.success(), "{status:?}");
            String::from_utf8(out)
                .unwrap()
                .lines()
                .filter_map(|l| l.strip_prefix("job ").map(|n| n.parse().unwrap()))
                .collect::<Vec<u32>>()
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (50..200).collect::<Vec<_>>());
    assert_eq!(jobs.stat().unwrap().messages, 0);
    jobs.remove().unwrap();
    let err = Nats::open(&addr).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Remote {
                kind: RemoteKind::StreamMissing,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&subject), "{err}");
}

#[test]
fn a_small_buffer_keeps_the_message_and_an_oversized_one_is_refused_before_sending() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let addr = address(&server.url(), &subject("sizes"));
    let jobs = NatsOptions::new().create(&addr).unwrap();
    jobs.send(b"0123456789").unwrap();
    let mut small = [0; 4];
    let err = jobs.recv_into(&mut small, Wait::Never).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BufferTooSmall {
                buffer: 4,
                needed: Some(10),
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(jobs.recv_vec(Wait::Never).unwrap().0, b"0123456789");

    let max = jobs.max_payload();
    assert_eq!(jobs.limits().unwrap().max_message_size, max);
    let err = jobs.send(&vec![0; max + 1]).unwrap_err();
    match &err {
        Error::MessageTooLarge { size, limit, .. } => assert_eq!((*size, *limit), (max + 1, max)),
        other => panic!("{other}"),
    }
    assert_eq!(jobs.stat().unwrap().messages, 0, "nothing was sent");
    jobs.remove().unwrap();
}

#[test]
fn a_full_stream_refuses_and_a_message_id_is_stored_once() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let addr = address(&server.url(), &subject("full"));
    let jobs = NatsOptions::new().max_messages(2).create(&addr).unwrap();
    assert!(jobs
        .send_with_id(b"a", Tag::None, "id-1", Wait::Never)
        .unwrap());
    // The same id again: acknowledged, not stored twice.
    assert!(!jobs
        .send_with_id(b"a", Tag::None, "id-1", Wait::Never)
        .unwrap());
    jobs.send(b"b").unwrap();
    let err = jobs.try_send(b"c").unwrap_err();
    assert!(matches!(err, Error::Full { .. }), "{err}");
    assert_eq!(jobs.stat().unwrap().messages, 2);
    jobs.remove().unwrap();
}

#[test]
fn a_server_that_is_down_is_a_typed_error_within_the_timeout() {
    let Some(mut server) = NatsServer::start() else {
        return;
    };
    let addr = address(&server.url(), &subject("down"));
    let jobs = NatsOptions::new().create(&addr).unwrap();
    server.stop();
    let started = Instant::now();
    let err = NatsOptions::new()
        .connect_timeout(Duration::from_secs(1))
        .open(&addr)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Remote {
                kind: RemoteKind::Unreachable,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(err.to_string().contains(&server.url()[7..]), "{err}");
    // A handle whose server went away: a send times out as not acknowledged.
    let err = jobs
        .send_tagged(b"x", Tag::None, Wait::For(Duration::from_millis(500)))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Remote {
                kind: RemoteKind::NotAcknowledged,
                ..
            } | Error::TimedOut { .. }
        ),
        "{err}"
    );
    server.resume();
    // The client reconnects by itself.
    let started = Instant::now();
    loop {
        match jobs.send_tagged(b"back", Tag::None, Wait::For(Duration::from_secs(2))) {
            Ok(()) => break,
            Err(e) if started.elapsed() < Duration::from_secs(20) => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("no reconnection: {e}"),
        }
    }
    // The unacknowledged send may have been stored after all (the client
    // sent it once reconnected): "may or may not", as the error says.
    let first = jobs.recv_vec(Wait::Never).unwrap().0;
    if first == b"x" {
        assert_eq!(jobs.recv_vec(Wait::Never).unwrap().0, b"back");
    } else {
        assert_eq!(first, b"back");
    }
    assert!(matches!(jobs.try_recv(), Err(Error::Empty { .. })));
    jobs.remove().unwrap();
}
