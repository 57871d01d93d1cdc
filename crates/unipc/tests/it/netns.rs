//! Across hosts, on one machine: TCP and UDP between two network
//! namespaces that each test makes for itself, joined by a veth pair with
//! addresses the test assigns, the peers run in them with `ip netns exec`
//! (see `util::Peer::in_netns`). Then the link is cut under a TCP
//! connection, and the side still up must get a typed error within its
//! user timeout or keepalive, not hang.
//!
//! The namespaces come from `unipc_test_support::netns::NetPair`: it
//! needs root and `ip` (iproute2); without them, or where the kernel
//! refuses a namespace, each test says why it skipped. The namespaces are
//! deleted when the test ends, however it ends.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr};
use std::process::{ChildStdin, ChildStdout, Stdio};
use std::time::{Duration, Instant};

use unipc::message::dgram::{Interface, UdpOptions, UdpSocket};
use unipc::message::Wait;
use unipc::stream::tcp::{self, Keepalive, TcpOptions};
use unipc::Error;
use unipc_test_support::netns::{NetPair, VETH_A};

use crate::util;

/// How long any peer here may live before SIGALRM ends it, so that a peer
/// that hangs ends the parent's wait on its output too.
const PEER_ALARM_SECS: u32 = 60;

/// The generous bound on the wait for a typed error after the link is cut.
const CUT_BOUND: Duration = Duration::from_secs(30);

/// Ends this peer by SIGALRM if it lives too long.
fn peer_alarm() {
    nix::unistd::alarm::set(PEER_ALARM_SECS);
}

/// Reads the peer's stdout until a line that starts with `prefix`, and
/// returns the rest of that line (libtest's own lines are skipped).
fn read_marker(out: &mut BufReader<ChildStdout>, prefix: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let n = out.read_line(&mut line).expect("read peer stdout");
        assert!(n > 0, "peer ended before printing {prefix:?}");
        if let Some(rest) = line.trim_end().strip_prefix(prefix) {
            return rest.to_owned();
        }
    }
}

/// A started peer with its stdout to read markers from.
struct Started {
    peer: util::Running,
    out: BufReader<ChildStdout>,
    stdin: Option<ChildStdin>,
}

fn start(peer: util::Peer, with_stdin: bool) -> Started {
    let mut peer = peer.capture_stdout();
    if with_stdin {
        peer.command().stdin(Stdio::piped());
    }
    let mut running = peer.spawn();
    let out = BufReader::new(running.child.stdout.take().unwrap());
    let stdin = running.child.stdin.take();
    Started {
        peer: running,
        out,
        stdin,
    }
}

impl Started {
    fn marker(&mut self, prefix: &str) -> String {
        read_marker(&mut self.out, prefix)
    }

    /// Drains the rest of stdout and checks that the peer passed.
    fn finish(mut self) {
        drop(self.stdin.take());
        std::io::copy(&mut self.out, &mut std::io::sink()).expect("drain peer stdout");
        self.peer.wait_success();
    }
}

fn arg_addr(name: &str) -> IpAddr {
    util::arg(name).parse().unwrap()
}

fn arg_target() -> SocketAddr {
    SocketAddr::new(arg_addr("HOST"), util::arg("PORT").parse().unwrap())
}

// ---------------------------------------------------------------------------
// (a) A TCP stream between the namespaces.

#[test]
fn tcp_stream_between_namespaces() {
    const TEST: &str = "netns::tcp_stream_between_namespaces";
    if let Some(role) = util::role() {
        peer_alarm();
        match role.as_str() {
            "server" => {
                let listener = TcpOptions::new()
                    .bind_addr(SocketAddr::new(arg_addr("HOST"), 0))
                    .unwrap();
                println!("port={}", listener.local_addr().unwrap().port());
                let (mut conn, peer) = listener.accept().unwrap();
                assert_eq!(
                    peer.ip(),
                    arg_addr("CLIENT"),
                    "the client is in the other namespace"
                );
                let mut buf = vec![0; 64 * 1024];
                let mut echoed = 0usize;
                loop {
                    let n = conn.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    conn.write_all(&buf[..n]).unwrap();
                    echoed += n;
                }
                conn.write_all(b"bye").unwrap();
                conn.shutdown(Shutdown::Write).unwrap();
                println!("echoed={echoed}");
            }
            "client" => {
                let mut stream = TcpOptions::new()
                    .connect_timeout(Duration::from_secs(10))
                    .nodelay(true)
                    .connect_addr(arg_target())
                    .unwrap();
                assert_eq!(stream.local_addr().unwrap().ip(), arg_addr("CLIENT"));
                let mut sent = 0;
                for round in 0..40u32 {
                    let len = 1 + (round as usize * 7919) % 200_000;
                    let msg: Vec<u8> = (0..len).map(|i| (i as u32 ^ round) as u8).collect();
                    stream.write_all(&msg).unwrap();
                    let mut back = vec![0; len];
                    stream.read_exact(&mut back).unwrap();
                    assert_eq!(back, msg, "round {round} came back changed");
                    sent += len;
                }
                stream.shutdown(Shutdown::Write).unwrap();
                let mut rest = Vec::new();
                stream.read_to_end(&mut rest).unwrap();
                assert_eq!(rest, b"bye", "the server's last words, then EOF");
                println!("sent={sent}");
            }
            other => panic!("unknown role {other}"),
        }
        return;
    }
    let Some(pair) = NetPair::or_skip() else {
        return;
    };
    let mut server = start(
        util::Peer::in_netns(&pair.b, TEST, "server")
            .arg("HOST", pair.addr_b.to_string())
            .arg("CLIENT", pair.addr_a.to_string()),
        false,
    );
    let port = server.marker("port=");
    let mut client = start(
        util::Peer::in_netns(&pair.a, TEST, "client")
            .arg("HOST", pair.addr_b.to_string())
            .arg("PORT", &port)
            .arg("CLIENT", pair.addr_a.to_string()),
        false,
    );
    let sent: usize = client.marker("sent=").parse().unwrap();
    let echoed: usize = server.marker("echoed=").parse().unwrap();
    assert_eq!(sent, echoed);
    client.finish();
    server.finish();
    pair.tear_down();
}

// ---------------------------------------------------------------------------
// (b) UDP messages between the namespaces, boundaries kept.

/// The sizes sent: one byte up to the largest IPv4 datagram, which the
/// veth's 1500-byte MTU fragments and the receiver gets whole.
const UDP_SIZES: [usize; 7] = [
    1,
    7,
    512,
    1472,
    1473,
    9000,
    unipc::message::dgram::UDP_V4_MAX,
];

/// Message `seq` of `len` bytes: the sequence number, then a pattern.
fn numbered(seq: u32, len: usize) -> Vec<u8> {
    let mut msg: Vec<u8> = (0..len)
        .map(|i| (i as u32).wrapping_mul(31) as u8 ^ seq as u8)
        .collect();
    let head = seq.to_be_bytes();
    let n = head.len().min(len);
    msg[..n].copy_from_slice(&head[..n]);
    msg
}

/// Echoes every datagram to its sender until one says `bye`.
fn udp_echo_until_bye(socket: &UdpSocket) {
    let mut buf = vec![0; 70_000];
    loop {
        let (len, from) = socket
            .recv_from(&mut buf, Wait::For(Duration::from_secs(20)))
            .expect("a datagram within 20 s");
        assert_eq!(
            from.ip(),
            arg_addr("CLIENT"),
            "sent from the other namespace"
        );
        if &buf[..len] == b"bye" {
            return;
        }
        socket.send_to(&buf[..len], from, Wait::Forever).unwrap();
    }
}

/// Sends `msg` to `to` and waits for it to come back whole, resending a
/// few times (UDP may drop; a veth hardly does).
fn udp_round_trip(socket: &UdpSocket, msg: &[u8], to: SocketAddr) {
    let mut buf = vec![0; 70_000];
    for _attempt in 0..5 {
        socket.send_to(msg, to, Wait::Forever).unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match socket.recv_from(&mut buf, Wait::For(left)) {
                Ok((len, _)) if &buf[..len] == msg => return,
                // A late echo of an earlier message.
                Ok(_) => continue,
                Err(Error::TimedOut { .. }) => break,
                Err(err) => panic!("{err}"),
            }
        }
    }
    panic!("no echo of a {}-byte message after 5 tries", msg.len());
}

#[test]
fn udp_messages_between_namespaces() {
    const TEST: &str = "netns::udp_messages_between_namespaces";
    if let Some(role) = util::role() {
        peer_alarm();
        match role.as_str() {
            "server" => {
                let socket = UdpSocket::bind_addr(SocketAddr::new(arg_addr("HOST"), 0)).unwrap();
                println!("port={}", socket.local_addr().port());
                udp_echo_until_bye(&socket);
            }
            "client" => {
                let target = arg_target();
                let socket = UdpSocket::bind_addr(SocketAddr::new(arg_addr("CLIENT"), 0)).unwrap();
                for (seq, len) in UDP_SIZES.into_iter().enumerate() {
                    udp_round_trip(&socket, &numbered(seq as u32, len), target);
                }
                socket.send_to(b"bye", target, Wait::Forever).unwrap();
                println!("done={}", UDP_SIZES.len());
            }
            other => panic!("unknown role {other}"),
        }
        return;
    }
    let Some(pair) = NetPair::or_skip() else {
        return;
    };
    let mut server = start(
        util::Peer::in_netns(&pair.b, TEST, "server")
            .arg("HOST", pair.addr_b.to_string())
            .arg("CLIENT", pair.addr_a.to_string()),
        false,
    );
    let port = server.marker("port=");
    let mut client = start(
        util::Peer::in_netns(&pair.a, TEST, "client")
            .arg("HOST", pair.addr_b.to_string())
            .arg("PORT", &port)
            .arg("CLIENT", pair.addr_a.to_string()),
        false,
    );
    assert_eq!(client.marker("done="), UDP_SIZES.len().to_string());
    client.finish();
    server.finish();
    pair.tear_down();
}

// ---------------------------------------------------------------------------
// (c) UDP multicast from one namespace to a member in the other.

#[test]
fn udp_multicast_between_namespaces() {
    const TEST: &str = "netns::udp_multicast_between_namespaces";
    const MESSAGES: u32 = 3;
    if let Some(role) = util::role() {
        peer_alarm();
        let group: IpAddr = util::arg("GROUP").parse().unwrap();
        match role.as_str() {
            "member" => {
                let socket = UdpOptions::new()
                    .reuse_address(true)
                    .bind_addr(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0))
                    .unwrap();
                let IpAddr::V4(own) = arg_addr("HOST") else {
                    panic!("IPv4 only")
                };
                socket
                    .join_multicast(group, &Interface::Address(own))
                    .unwrap();
                println!("port={}", socket.local_addr().port());
                // Acknowledge each message, unicast, to whoever sent it to
                // the group, until the sender says it is done.
                let mut seen = [false; MESSAGES as usize];
                let mut buf = [0; 256];
                loop {
                    let (len, from) = socket
                        .recv_from(&mut buf, Wait::For(Duration::from_secs(20)))
                        .expect("a multicast datagram within 20 s");
                    assert_eq!(
                        from.ip(),
                        arg_addr("CLIENT"),
                        "sent from the other namespace"
                    );
                    let text = std::str::from_utf8(&buf[..len]).unwrap().to_owned();
                    if text == "bye" {
                        break;
                    }
                    let seq: usize = text
                        .strip_prefix("group message ")
                        .unwrap()
                        .parse()
                        .unwrap();
                    seen[seq] = true;
                    socket
                        .send_to(format!("ack {seq}").as_bytes(), from, Wait::Forever)
                        .unwrap();
                }
                assert!(seen.iter().all(|&s| s), "missed a message: {seen:?}");
                println!("received={MESSAGES}");
            }
            "sender" => {
                let socket = UdpSocket::bind_addr(SocketAddr::new(arg_addr("CLIENT"), 0)).unwrap();
                socket
                    .set_multicast_interface(&Interface::Name(VETH_A.into()))
                    .unwrap();
                let to = SocketAddr::new(group, util::arg("PORT").parse().unwrap());
                let mut buf = [0; 256];
                for seq in 0..MESSAGES {
                    let want = format!("ack {seq}");
                    let mut acked = false;
                    for _attempt in 0..5 {
                        socket
                            .send_to(format!("group message {seq}").as_bytes(), to, Wait::Forever)
                            .unwrap();
                        match socket.recv_from(&mut buf, Wait::For(Duration::from_secs(2))) {
                            Ok((len, from)) if buf[..len] == *want.as_bytes() => {
                                assert_eq!(from.ip(), arg_addr("HOST"));
                                acked = true;
                                break;
                            }
                            Ok(_) | Err(Error::TimedOut { .. }) => continue,
                            Err(err) => panic!("{err}"),
                        }
                    }
                    assert!(acked, "group message {seq} was never acknowledged");
                }
                socket.send_to(b"bye", to, Wait::Forever).unwrap();
                println!("acked={MESSAGES}");
            }
            other => panic!("unknown role {other}"),
        }
        return;
    }
    let Some(pair) = NetPair::or_skip() else {
        return;
    };
    let group = format!("239.77.{}.1", pair.addr_a.octets()[2]);
    let mut member = start(
        util::Peer::in_netns(&pair.b, TEST, "member")
            .arg("GROUP", &group)
            .arg("HOST", pair.addr_b.to_string())
            .arg("CLIENT", pair.addr_a.to_string()),
        false,
    );
    let port = member.marker("port=");
    let mut sender = start(
        util::Peer::in_netns(&pair.a, TEST, "sender")
            .arg("GROUP", &group)
            .arg("PORT", &port)
            .arg("HOST", pair.addr_b.to_string())
            .arg("CLIENT", pair.addr_a.to_string()),
        false,
    );
    assert_eq!(sender.marker("acked="), MESSAGES.to_string());
    assert_eq!(member.marker("received="), MESSAGES.to_string());
    sender.finish();
    member.finish();
    pair.tear_down();
}

// ---------------------------------------------------------------------------
// (d) The peer host disappears: the link is cut under a connection.

/// The server for the cut tests: accepts one connection, says so, and
/// reads until it is killed (its host is the one that disappears).
fn cut_server() {
    let listener = TcpOptions::new()
        .bind_addr(SocketAddr::new(arg_addr("HOST"), 0))
        .unwrap();
    println!("port={}", listener.local_addr().unwrap().port());
    let (mut conn, _) = listener.accept().unwrap();
    println!("accepted");
    let mut buf = vec![0; 64 * 1024];
    while conn.read(&mut buf).is_ok_and(|n| n > 0) {}
    // Killed by the parent before this, normally.
    std::thread::sleep(Duration::from_secs(u64::from(PEER_ALARM_SECS)));
}

/// Waits for the parent's `go` line on stdin: the link is cut.
fn wait_for_cut() {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "go");
}

/// Runs a cut test: the server in `b`, the client (`role`) in `a`; once the
/// client says `ready` the link is cut, and the client reports the error
/// it got. Returns the time from the cut to the client's report, and the
/// report; `None` when the test skipped.
fn cut_under(test: &str, role: &str) -> Option<(Duration, String)> {
    let pair = NetPair::or_skip()?;
    let mut server = start(
        util::Peer::in_netns(&pair.b, test, "server").arg("HOST", pair.addr_b.to_string()),
        false,
    );
    let port = server.marker("port=");
    let mut client = start(
        util::Peer::in_netns(&pair.a, test, role)
            .arg("HOST", pair.addr_b.to_string())
            .arg("PORT", &port),
        true,
    );
    server.marker("accepted");
    client.marker("ready");
    pair.cut();
    let cut_at = Instant::now();
    writeln!(client.stdin.as_mut().unwrap(), "go").unwrap();
    let report = client.marker("error=");
    let elapsed = cut_at.elapsed();
    let client_ms = client.marker("elapsed_ms=");
    eprintln!(
        "{test}: typed error {:.2} s after the cut (client's own clock: {client_ms} ms): {report}",
        elapsed.as_secs_f64()
    );
    assert!(elapsed < CUT_BOUND, "{elapsed:?} after the cut");
    client.finish();
    server.peer.kill();
    pair.tear_down();
    Some((elapsed, report))
}

#[test]
fn tcp_user_timeout_ends_a_write_to_a_vanished_host() {
    const TEST: &str = "netns::tcp_user_timeout_ends_a_write_to_a_vanished_host";
    const USER_TIMEOUT: Duration = Duration::from_secs(2);
    if let Some(role) = util::role() {
        peer_alarm();
        if role == "server" {
            return cut_server();
        }
        let target = arg_target();
        let stream = TcpOptions::new()
            .connect_timeout(Duration::from_secs(10))
            .user_timeout(USER_TIMEOUT)
            .connect_addr(target)
            .unwrap();
        assert_eq!(stream.user_timeout().unwrap(), Some(USER_TIMEOUT));
        stream.send(b"hello").unwrap();
        println!("ready");
        wait_for_cut();
        // Everything sent from here on stays unacknowledged: the first
        // sends fill the kernel's buffer, then one blocks until the
        // kernel gives up.
        let started = Instant::now();
        let chunk = vec![7u8; 64 * 1024];
        let mut sent = 0usize;
        let err = loop {
            match stream.send(&chunk) {
                Ok(n) => sent += n,
                Err(err) => break err,
            }
        };
        let took = started.elapsed();
        println!("error={err}");
        println!("elapsed_ms={}", took.as_millis());
        match &err {
            Error::PeerUnresponsive {
                peer,
                timeout,
                limit,
                ..
            } => {
                assert_eq!(*peer, Some(target));
                assert_eq!(*timeout, Some(USER_TIMEOUT));
                assert_eq!(*limit, "TCP_USER_TIMEOUT");
            }
            other => panic!("not PeerUnresponsive after {sent} bytes: {other:?}"),
        }
        assert_eq!(err.raw_os_error(), Some(libc::ETIMEDOUT));
        assert!(sent > 0, "the sends before the block went into the buffer");
        // The connection is closed: a later write fails at once.
        assert!(stream.send(b"x").is_err());
        return;
    }
    if let Some((_, report)) = cut_under(TEST, "client") {
        assert!(report.contains("TCP_USER_TIMEOUT"), "{report}");
    }
}

#[test]
fn tcp_keepalive_ends_a_read_from_a_vanished_host() {
    const TEST: &str = "netns::tcp_keepalive_ends_a_read_from_a_vanished_host";
    const KEEPALIVE: Keepalive = Keepalive::new(Duration::from_secs(1), Duration::from_secs(1), 2);
    if let Some(role) = util::role() {
        peer_alarm();
        if role == "server" {
            return cut_server();
        }
        let target = arg_target();
        let stream = tcp::Stream::connect_addr(target).unwrap();
        // Set on the connected stream, the other way in.
        stream.set_keepalive(Some(KEEPALIVE)).unwrap();
        assert_eq!(stream.keepalive().unwrap(), Some(KEEPALIVE));
        assert_eq!(stream.user_timeout().unwrap(), None);
        println!("ready");
        wait_for_cut();
        // An idle connection, and a read that would wait forever without
        // keepalive. Through `Read`, the typed error is inside io::Error.
        let started = Instant::now();
        let mut buf = [0; 16];
        let err = (&stream).read(&mut buf).unwrap_err();
        let took = started.elapsed();
        println!("error={err}");
        println!("elapsed_ms={}", took.as_millis());
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        let ours = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<Error>())
            .unwrap_or_else(|| panic!("not a unipc::Error inside: {err:?}"));
        match ours {
            Error::PeerUnresponsive {
                peer,
                timeout,
                limit,
                ..
            } => {
                assert_eq!(*peer, Some(target));
                assert_eq!(*timeout, Some(KEEPALIVE.detection_time()));
                assert_eq!(*limit, "keepalive");
            }
            other => panic!("not PeerUnresponsive: {other:?}"),
        }
        return;
    }
    if let Some((_, report)) = cut_under(TEST, "client") {
        assert!(report.contains("keepalive"), "{report}");
    }
}
