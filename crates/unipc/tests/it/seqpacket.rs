//! UNIX seqpacket sockets between two real processes: message boundaries,
//! no silent truncation, socketpairs handed to a child, descriptor passing,
//! waiting, limits and the end of the connection.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use unipc::message::{Messenger, Tag, Wait};
use unipc::name::UnixAddr;
use unipc::stream::seqpacket::{self, Conn};
use unipc::Error;

use crate::unix::{hangs_up, hear, open_fds, pipe, tell, GUARD};
use crate::util;

/// Message sizes that cross the kernel's page-sized chunks and a
/// multi-page body.
const SIZES: [usize; 3] = [1, 4000, 100_000];

fn message(len: usize, fill: u8) -> Vec<u8> {
    vec![fill; len]
}

#[test]
fn boundaries_survive_between_processes() {
    if util::role().is_some() {
        let conn = Conn::connect(&util::arg("addr").parse().unwrap()).unwrap();
        for (i, len) in SIZES.into_iter().enumerate() {
            conn.send(&message(len, i as u8)).unwrap();
        }
        // The same through Write: one write, one message.
        for (i, len) in SIZES.into_iter().enumerate() {
            assert_eq!((&conn).write(&message(len, 10 + i as u8)).unwrap(), len);
        }
        // Wait for the parent to take them all before closing.
        assert_eq!(conn.recv().unwrap(), b"got them");
        return;
    }
    let dir = util::TempDir::new();
    let path = dir.join("sp.sock");
    let addr = UnixAddr::path(&path).unwrap();
    let listener = seqpacket::Listener::bind(&addr).unwrap();
    let child = util::Peer::new("seqpacket::boundaries_survive_between_processes", "sender")
        .arg("addr", &path)
        .spawn();
    let conn = listener.accept_timeout(GUARD).unwrap();
    assert_eq!(conn.object(), format!("unix-seqpacket:{}", path.display()));
    for (i, len) in SIZES.into_iter().enumerate() {
        let got = conn.recv_vec(Wait::For(GUARD)).unwrap().0;
        assert_eq!(got.len(), len);
        assert!(got == message(len, i as u8));
    }
    // One read returns one message, even with room for all three.
    let mut buf = vec![0; 200_000];
    for (i, len) in SIZES.into_iter().enumerate() {
        let n = (&conn).read(&mut buf).unwrap();
        assert_eq!(n, len);
        assert!(buf[..n] == message(len, 10 + i as u8));
    }
    conn.send(b"got them").unwrap();
    child.wait_success();
    drop(listener);
    assert!(!path.exists());
}

#[test]
fn a_short_buffer_is_refused_and_the_message_kept() {
    if util::role().is_some() {
        let conn = Conn::try_from(util::passed_fd(0)).unwrap();
        conn.send(&message(100, 7)).unwrap();
        conn.send(&message(30, 8)).unwrap();
        return;
    }
    let (ours, theirs) = seqpacket::pair().unwrap();
    let child = util::Peer::new(
        "seqpacket::a_short_buffer_is_refused_and_the_message_kept",
        "sender",
    )
    .fd(theirs.as_fd())
    .spawn();
    drop(theirs);
    let mut small = [0; 10];
    let err = ours.recv_into(&mut small, Wait::For(GUARD)).unwrap_err();
    match &err {
        Error::BufferTooSmall { buffer, needed, .. } => {
            assert_eq!((*buffer, *needed), (10, Some(100)))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "unix-seqpacket socketpair: receive buffer of 10 bytes is smaller than the message of 100 bytes"
    );
    // Through Read, too, and still nothing lost.
    let err = (&ours).read(&mut small).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let err = ours.recv_with_fds(&mut small, 1).unwrap_err();
    assert!(matches!(
        err,
        Error::BufferTooSmall {
            needed: Some(100),
            ..
        }
    ));
    let mut exact = [0; 100];
    let got = ours.recv_into(&mut exact, Wait::Never).unwrap();
    assert_eq!((got.len, got.tag), (100, Tag::None));
    assert!(exact[..] == message(100, 7)[..]);
    // The next message is untouched.
    let mut big = [0; 64];
    assert_eq!(ours.recv_into(&mut big, Wait::For(GUARD)).unwrap().len, 30);
    assert!(big[..30] == message(30, 8)[..]);
    child.wait_success();
}

/// A buffer of `recv_buffer_hint()` bytes (the most an unprivileged peer
/// can send) is received in one call, without a peek: whole when the
/// message fits, and, when a message is longer still, that message is
/// consumed. A buffer one byte smaller peeks first and leaves it queued.
///
/// The receiver fakes `net.core.wmem_*` in a private mount namespace so
/// that the hint (2 * 1024 - 32) is below what the sender may really send;
/// with the machine's own values no unprivileged sender could exceed it.
#[test]
fn a_buffer_of_the_receive_hint_takes_one_call() {
    if util::role().is_some() {
        let dir = std::path::PathBuf::from(util::arg("DIR"));
        if let Err(why) = util::fake_wmem(&dir, 1024) {
            util::skip(format!("cannot fake net.core.wmem_* here ({why})"));
            return;
        }
        let conn = Conn::try_from(util::passed_fd(0)).unwrap();
        let hint = conn.recv_buffer_hint().unwrap();
        assert_eq!(hint, 2 * 1024 - 32);
        let mut buf = vec![0; 4000];

        // Below the hint: peeked, refused, kept.
        let err = conn
            .recv_into(&mut buf[..hint - 1], Wait::For(GUARD))
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::BufferTooSmall {
                    needed: Some(3000),
                    ..
                }
            ),
            "{err:?}"
        );
        // At the hint: one call, so the long message is consumed with it.
        let err = conn.recv_into(&mut buf[..hint], Wait::Never).unwrap_err();
        match &err {
            Error::BufferTooSmall { buffer, needed, .. } => {
                assert_eq!((*buffer, *needed), (hint, Some(3000)))
            }
            other => panic!("{other:?}"),
        }
        // Gone: the next receive returns the second message, whole.
        let got = conn.recv_into(&mut buf, Wait::For(GUARD)).unwrap();
        assert_eq!(got.len, 3000);
        assert!(buf[..3000] == message(3000, 2)[..]);
        // Messages that fit arrive whole, through Read too.
        let got = conn.recv_into(&mut buf[..hint], Wait::For(GUARD)).unwrap();
        assert_eq!((got.len, got.tag), (100, Tag::None));
        assert!(buf[..100] == message(100, 3)[..]);
        assert_eq!((&conn).read(&mut buf[..hint]).unwrap(), 50);
        assert!(buf[..50] == message(50, 4)[..]);
        // Then the end of the connection, on the one-call path as well.
        let err = conn
            .recv_into(&mut buf[..hint], Wait::For(GUARD))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "{err}");
        assert_eq!((&conn).read(&mut buf[..hint]).unwrap(), 0);
        return;
    }
    if !util::is_root() {
        util::skip("faking net.core.wmem_* needs root");
        return;
    }
    let dir = util::TempDir::new();
    let (ours, theirs) = seqpacket::pair().unwrap();
    let mut peer = util::Peer::new(
        "seqpacket::a_buffer_of_the_receive_hint_takes_one_call",
        "receiver",
    )
    .fd(theirs.as_fd())
    .arg("DIR", dir.path());
    peer.command().stdout(std::process::Stdio::inherit());
    let child = peer.spawn();
    drop(theirs);
    for (len, fill) in [(3000, 1), (3000, 2), (100, 3), (50, 4)] {
        ours.send(&message(len, fill)).unwrap();
    }
    drop(ours);
    child.wait_success();
}

/// `recv_into_or_discard` is one call whatever the buffer: a message
/// longer than the buffer is reported with its size and is gone, and the
/// next one is untouched.
#[test]
fn a_discarding_receive_reports_and_drops_a_long_message() {
    if util::role().is_some() {
        let conn = Conn::try_from(util::passed_fd(0)).unwrap();
        conn.send(&message(100, 7)).unwrap();
        conn.send(&message(30, 8)).unwrap();
        return;
    }
    let (ours, theirs) = seqpacket::pair().unwrap();
    let child = util::Peer::new(
        "seqpacket::a_discarding_receive_reports_and_drops_a_long_message",
        "sender",
    )
    .fd(theirs.as_fd())
    .spawn();
    drop(theirs);
    let mut small = [0; 10];
    let err = ours
        .recv_into_or_discard(&mut small, Wait::For(GUARD))
        .unwrap_err();
    match &err {
        Error::BufferTooSmall { buffer, needed, .. } => {
            assert_eq!((*buffer, *needed), (10, Some(100)))
        }
        other => panic!("{other:?}"),
    }
    let mut big = [0; 64];
    let got = ours
        .recv_into_or_discard(&mut big, Wait::For(GUARD))
        .unwrap();
    assert_eq!((got.len, got.tag), (30, Tag::None));
    assert!(big[..30] == message(30, 8)[..]);
    child.wait_success();
    let err = ours
        .recv_into_or_discard(&mut big, Wait::For(GUARD))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "{err}");
}

#[test]
fn a_socketpair_end_handed_to_a_child() {
    if util::role().is_some() {
        let conn = Conn::try_from(util::passed_fd(0)).unwrap();
        // socketpair records its caller for both ends: the parent.
        let cred = conn.peer_credentials().unwrap();
        assert_eq!(
            cred.pid,
            rustix::process::getppid().unwrap().as_raw_nonzero().get() as u32
        );
        for _ in 0..3 {
            let ping = conn.recv().unwrap();
            let mut pong = ping.clone();
            pong.reverse();
            conn.send(&pong).unwrap();
        }
        // The parent closes: the end of the connection, not a message.
        let err = conn.recv().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "{err}");
        assert!(err.to_string().contains("the peer closed the connection"));
        assert_eq!((&conn).read(&mut [0; 4]).unwrap(), 0);
        let (n, fds) = conn.recv_with_fds(&mut [0; 4], 1).unwrap();
        assert_eq!((n, fds.len()), (0, 0));
        // Sending to it is EPIPE, not SIGPIPE.
        let err = conn.send(b"hello?").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
        return;
    }
    let (ours, theirs) = seqpacket::pair().unwrap();
    let child = util::Peer::new("seqpacket::a_socketpair_end_handed_to_a_child", "echo")
        .fd(theirs.as_fd())
        .spawn();
    drop(theirs);
    for ping in [&b"abc"[..], b"x", b"hello world"] {
        ours.send(ping).unwrap();
        let mut want = ping.to_vec();
        want.reverse();
        assert_eq!(ours.recv_vec(Wait::For(GUARD)).unwrap().0, want);
    }
    drop(ours);
    child.wait_success();
}

#[test]
fn descriptors_travel_with_their_message() {
    if util::role().is_some() {
        let conn = Conn::try_from(util::passed_fd(0)).unwrap();
        let before = open_fds();
        let mut buf = [0; 16];
        // Three descriptors for room for one: the message goes, so do they.
        let err = conn.recv_with_fds(&mut buf, 1).unwrap_err();
        assert!(
            matches!(err, Error::TooManyFds { capacity: 1, .. }),
            "{err:?}"
        );
        assert_eq!(open_fds(), before, "descriptors leaked");
        conn.send(b"k").unwrap();
        let (n, mut fds) = conn.recv_with_fds(&mut buf, 4).unwrap();
        assert_eq!((&buf[..n], fds.len()), (&b"write here"[..], 1));
        std::fs::File::from(fds.pop().unwrap())
            .write_all(b"from the child")
            .unwrap();
        return;
    }
    let (ours, theirs) = seqpacket::pair().unwrap();
    let child = util::Peer::new("seqpacket::descriptors_travel_with_their_message", "c")
        .fd(theirs.as_fd())
        .spawn();
    drop(theirs);
    let extra: Vec<_> = (0..3).map(|_| pipe()).collect();
    let ends: Vec<_> = extra.iter().map(|(_, w)| w.as_fd()).collect();
    ours.send_with_fds(b"too many", &ends).unwrap();
    drop(ends);
    let readers: Vec<_> = extra.into_iter().map(|(r, _)| r).collect();
    assert_eq!(ours.recv_vec(Wait::For(GUARD)).unwrap().0, b"k");
    for r in &readers {
        assert!(hangs_up(r), "a refused descriptor stayed open in the child");
    }
    let (pipe_r, pipe_w) = pipe();
    ours.send_with_fds(b"write here", &[pipe_w.as_fd()])
        .unwrap();
    drop(pipe_w);
    let mut got = String::new();
    std::fs::File::from(pipe_r)
        .read_to_string(&mut got)
        .unwrap();
    assert_eq!(got, "from the child");
    child.wait_success();
}

#[test]
fn receives_wait_as_told() {
    if util::role().is_some() {
        let conn = Conn::try_from(util::passed_fd(0)).unwrap();
        let err = conn.recv_into(&mut [0; 8], Wait::Never).unwrap_err();
        assert!(matches!(err, Error::Empty { .. }), "{err:?}");
        let timeout = Duration::from_millis(200);
        let started = Instant::now();
        let err = conn.recv_into(&mut [0; 8], Wait::For(timeout)).unwrap_err();
        let waited = started.elapsed();
        assert!(
            matches!(err, Error::TimedOut { timeout: t, .. } if t == timeout),
            "{err:?}"
        );
        assert!(waited >= timeout, "returned after {waited:?}");
        assert!(waited < GUARD, "hung for {waited:?}");
        // A non-blocking descriptor does not change what Wait means.
        conn.set_nonblocking(true).unwrap();
        let err = (&conn).read(&mut [0; 8]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        tell(&util::passed_fd(1), "waiting");
        assert_eq!(conn.recv_vec(Wait::Forever).unwrap().0, b"at last");
        return;
    }
    let (ours, theirs) = seqpacket::pair().unwrap();
    let (ready_r, ready_w) = pipe();
    let child = util::Peer::new("seqpacket::receives_wait_as_told", "c")
        .fd(theirs.as_fd())
        .fd(ready_w.as_fd())
        .spawn();
    drop((theirs, ready_w));
    assert_eq!(hear(&ready_r), "waiting");
    std::thread::sleep(Duration::from_millis(50));
    ours.send(b"at last").unwrap();
    child.wait_success();
}

#[test]
fn a_full_socket_refuses_without_losing_anything() {
    if util::role().is_some() {
        let conn = Conn::try_from(util::passed_fd(0)).unwrap();
        let count: usize = hear(&util::passed_fd(1)).parse().unwrap();
        for i in 0..count {
            let got = conn.recv_vec(Wait::For(GUARD)).unwrap().0;
            assert!(got == message(1000, i as u8), "message {i} differs");
        }
        let err = conn.try_recv().unwrap_err();
        assert!(matches!(err, Error::Empty { .. }), "{err:?}");
        return;
    }
    let (ours, theirs) = seqpacket::pair().unwrap();
    let (count_r, count_w) = pipe();
    let child = util::Peer::new(
        "seqpacket::a_full_socket_refuses_without_losing_anything",
        "reader",
    )
    .fd(theirs.as_fd())
    .fd(count_r.as_fd())
    .spawn();
    drop((theirs, count_r));
    let mut sent = 0;
    let err = loop {
        match ours.send_tagged(&message(1000, sent as u8), Tag::None, Wait::Never) {
            Ok(()) => sent += 1,
            Err(err) => break err,
        }
        assert!(sent < 100_000, "the socket never filled");
    };
    assert!(matches!(err, Error::Full { .. }), "{err:?}");
    assert!(sent > 0);
    let started = Instant::now();
    let err = ours
        .send_tagged(b"more", Tag::None, Wait::For(Duration::from_millis(100)))
        .unwrap_err();
    assert!(matches!(err, Error::TimedOut { .. }), "{err:?}");
    assert!(started.elapsed() >= Duration::from_millis(100));
    tell(&count_w, &sent.to_string());
    child.wait_success();
}

#[test]
fn limits_tags_and_empty_messages() {
    if util::role().is_some() {
        let conn = Conn::try_from(util::passed_fd(0)).unwrap();
        let limit: usize = util::arg("limit").parse().unwrap();
        let (got, tag) = conn.recv_vec(Wait::For(GUARD)).unwrap();
        assert_eq!((got.len(), tag), (limit, Tag::None));
        assert!(got.iter().all(|&b| b == 3));
        conn.send(b"ok").unwrap();
        return;
    }
    let (ours, theirs) = seqpacket::pair().unwrap();
    let limits = ours.limits().unwrap();
    let sndbuf = rustix::net::sockopt::socket_send_buffer_size(&ours).unwrap();
    assert_eq!(limits.max_message_size, sndbuf - 32);
    assert_eq!(limits.max_messages, None);
    let limit = limits.max_message_size;

    let err = ours.send(&message(limit + 1, 3)).unwrap_err();
    match &err {
        Error::MessageTooLarge { size, limit: l, .. } => {
            assert_eq!((*size, *l), (limit + 1, limit))
        }
        other => panic!("{other:?}"),
    }
    let err = ours
        .send_tagged(b"x", Tag::Priority(1), Wait::Never)
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    let err = ours.send(b"").unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    assert_eq!((&ours).write(b"").unwrap(), 0);

    let child = util::Peer::new("seqpacket::limits_tags_and_empty_messages", "reader")
        .fd(theirs.as_fd())
        .arg("limit", limit.to_string())
        .spawn();
    drop(theirs);
    // Exactly the limit goes through, whole.
    ours.send(&message(limit, 3)).unwrap();
    assert_eq!(ours.recv_vec(Wait::For(GUARD)).unwrap().0, b"ok");
    child.wait_success();
}

#[test]
fn an_empty_message_from_another_program_is_not_the_end() {
    if util::role().is_some() {
        let conn = Conn::try_from(util::passed_fd(0)).unwrap();
        // What a C program may do: send(fd, "", 0, 0).
        rustix::net::send(&conn, b"", rustix::net::SendFlags::empty()).unwrap();
        conn.send(b"after").unwrap();
        hear(&util::passed_fd(1));
        return;
    }
    let (ours, theirs) = seqpacket::pair().unwrap();
    let (go_r, go_w) = pipe();
    let child = util::Peer::new(
        "seqpacket::an_empty_message_from_another_program_is_not_the_end",
        "c",
    )
    .fd(theirs.as_fd())
    .fd(go_r.as_fd())
    .spawn();
    drop((theirs, go_r));
    let got = ours.recv_into(&mut [0; 8], Wait::For(GUARD)).unwrap();
    assert_eq!(got.len, 0);
    assert_eq!(ours.recv_vec(Wait::For(GUARD)).unwrap().0, b"after");
    tell(&go_w, "done");
    child.wait_success();
    let err = ours.recv_into(&mut [0; 8], Wait::For(GUARD)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "{err}");
}

#[test]
fn a_listener_at_a_path_serves_a_child_with_credentials() {
    if util::role().is_some() {
        let conn = Conn::connect(&util::arg("addr").parse().unwrap()).unwrap();
        conn.send(b"hi").unwrap();
        assert_eq!(conn.recv().unwrap(), b"bye");
        return;
    }
    let dir = util::TempDir::new();
    let path = dir.join("sp.sock");
    let addr = UnixAddr::path(&path).unwrap();
    let listener = seqpacket::ListenerOptions::new()
        .backlog(4)
        .bind(&addr)
        .unwrap();
    let timeout = Duration::from_millis(100);
    let err = listener.accept_timeout(timeout).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("unix-seqpacket:{}: timed out after 100ms", path.display())
    );
    let child = util::Peer::new(
        "seqpacket::a_listener_at_a_path_serves_a_child_with_credentials",
        "c",
    )
    .arg("addr", &path)
    .spawn();
    let conn = listener.accept_timeout(GUARD).unwrap();
    assert_eq!(conn.peer_credentials().unwrap().pid, child.pid());
    assert_eq!(conn.recv().unwrap(), b"hi");
    conn.send(b"bye").unwrap();
    child.wait_success();
    // A stream socket cannot connect to it, and the error says so.
    let err = unipc::stream::unix::Stream::connect(&addr).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPROTOTYPE), "{err}");
}
