//! TCP stream sockets between two processes: the test process and a peer
//! re-executed from this binary (see `util`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{ChildStdout, Stdio};
use std::time::{Duration, Instant};

use unipc::endpoint::HostPort;
use unipc::stream::tcp;
use unipc::Error;

use crate::util;

fn host_port(host: &str, port: u16) -> HostPort {
    HostPort {
        host: host.to_owned(),
        port,
    }
}

/// The peer's view of where to connect: `HOST` and `PORT` arguments.
fn peer_target() -> HostPort {
    host_port(&util::arg("HOST"), util::arg("PORT").parse().unwrap())
}

/// A listener on IPv6 loopback, or `None` (with the reason printed) when
/// this host has no usable `::1`.
fn ipv6_listener(test: &str) -> Option<tcp::Listener> {
    match tcp::Listener::bind(&host_port("::1", 0)) {
        Ok(listener) => Some(listener),
        Err(err) => {
            util::skip(format!("the IPv6 part of {test}: cannot bind [::1]: {err}"));
            None
        }
    }
}

/// Reads the peer's stdout until a line that starts with `prefix`, and
/// returns the rest of that line. The test harness writes its own lines
/// around the peer's, so others are skipped.
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

/// Reads the rest of the peer's stdout (so that it never writes to a
/// closed pipe) and checks that it passed.
fn finish(peer: util::Running, mut out: BufReader<ChildStdout>) {
    std::io::copy(&mut out, &mut std::io::sink()).expect("drain peer stdout");
    peer.wait_success();
}

/// Parent side of the echo tests: echoes everything the peer sends until
/// it shuts down writing, and checks what the peer says about itself.
fn echo_with_peer(listener: tcp::Listener, host: &str) {
    let port = listener.local_addr().unwrap().port();
    let mut peer = util::Peer::new("tcp::echo_ipv4", "client")
        .arg("HOST", host)
        .arg("PORT", port.to_string())
        .capture_stdout()
        .spawn();
    let mut out = BufReader::new(peer.child.stdout.take().unwrap());

    let (mut conn, peer_addr) = listener.accept_timeout(util::WATCHDOG).unwrap();
    assert_eq!(conn.peer_addr().unwrap(), peer_addr);
    assert_eq!(
        conn.local_addr().unwrap(),
        listener.local_addr().unwrap(),
        "an accepted connection has the listener's address"
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
    conn.shutdown(Shutdown::Write).unwrap();

    // The peer saw the same connection from its side.
    let peer_local: SocketAddr = read_marker(&mut out, "local=").parse().unwrap();
    assert_eq!(peer_local, peer_addr);
    let peer_sent: usize = read_marker(&mut out, "sent=").parse().unwrap();
    assert_eq!(echoed, peer_sent);
    finish(peer, out);
}

/// The peer of the echo tests: sends rounds of growing messages, checks
/// each echo, then half-closes and expects EOF back.
fn echo_client() {
    let target = peer_target();
    let mut stream = tcp::Stream::connect(&target).unwrap();
    assert!(stream.object().contains(&target.to_string()));
    println!("local={}", stream.local_addr().unwrap());
    let mut sent = 0;
    for round in 0..40u32 {
        let len = 1 + (round as usize * 997) % 20_000;
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
    assert!(rest.is_empty(), "unexpected bytes after the echoes");
    println!("sent={sent}");
}

#[test]
fn echo_ipv4() {
    if let Some(role) = util::role() {
        assert_eq!(role, "client");
        echo_client();
        return;
    }
    let listener = tcp::Listener::bind(&host_port("127.0.0.1", 0)).unwrap();
    assert!(listener.local_addr().unwrap().is_ipv4());
    assert_ne!(listener.local_addr().unwrap().port(), 0, "port 0 means any");
    echo_with_peer(listener, "127.0.0.1");
}

#[test]
fn echo_ipv6() {
    // Never a peer: `echo_with_peer` starts `echo_ipv4`'s client role.
    let Some(listener) = ipv6_listener("echo_ipv6") else {
        return;
    };
    assert!(listener.local_addr().unwrap().is_ipv6());
    assert!(listener.object().starts_with("tcp:[::1]:"));
    echo_with_peer(listener, "::1");
}

#[test]
fn connect_resolves_host_names() {
    if util::role().is_some() {
        let mut stream = tcp::Stream::connect(&peer_target()).unwrap();
        assert_eq!(
            stream.object(),
            format!("tcp:localhost:{}", util::arg("PORT"))
        );
        stream.write_all(b"by name").unwrap();
        return;
    }
    let listener = tcp::Listener::bind(&host_port("localhost", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let peer = util::Peer::new("tcp::connect_resolves_host_names", "client")
        .arg("HOST", "localhost")
        .arg("PORT", port.to_string())
        .spawn();
    let (mut conn, _) = listener.accept_timeout(util::WATCHDOG).unwrap();
    let mut got = String::new();
    conn.read_to_string(&mut got).unwrap();
    assert_eq!(got, "by name");
    peer.wait_success();

    let err = tcp::Stream::connect(&host_port("no-such-host.invalid", 80)).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("tcp:no-such-host.invalid:80: resolve: "),
        "{text}"
    );
}

#[test]
fn eof_on_peer_close() {
    if util::role().is_some() {
        let mut stream = tcp::Stream::connect(&peer_target()).unwrap();
        stream.write_all(b"last words").unwrap();
        // Exiting closes the socket without a shutdown: the close alone
        // must reach the parent as EOF.
        std::process::exit(0);
    }
    let listener = tcp::Listener::bind(&host_port("127.0.0.1", 0)).unwrap();
    let peer = util::Peer::new("tcp::eof_on_peer_close", "client")
        .arg("HOST", "127.0.0.1")
        .arg("PORT", listener.local_addr().unwrap().port().to_string())
        .spawn();
    let (mut conn, _) = listener.accept_timeout(util::WATCHDOG).unwrap();
    let mut got = Vec::new();
    conn.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"last words");
    let mut buf = [0; 8];
    assert_eq!(conn.read(&mut buf).unwrap(), 0, "EOF stays EOF");
    peer.wait_success();
}

/// Puts SIGPIPE back to SIG_DFL (the Rust runtime ignores it) and checks
/// that it took.
fn sigpipe_default() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: installing SIG_DFL registers no handler code, so nothing can
    // run in signal context; `signal` is called before any socket exists.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.unwrap();
    // SAFETY: as above.
    let now = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.unwrap();
    assert_eq!(now, SigHandler::SigDfl);
}

#[test]
fn write_to_reset_peer_is_an_error_not_sigpipe() {
    if let Some(role) = util::role() {
        sigpipe_default();
        let stream = tcp::Stream::connect(&peer_target()).unwrap();
        // The parent closes without reading: EOF here, then the first
        // write draws a reset, and a later one finds the socket dead.
        let mut buf = [0; 8];
        assert_eq!((&stream).read(&mut buf).unwrap(), 0);
        for _ in 0..400 {
            let outcome = if role == "unipc" {
                (&stream).write(b"x")
            } else {
                // The control: a plain write(2), which raises SIGPIPE.
                rustix::io::write(&stream, b"x").map_err(Into::into)
            };
            match outcome {
                Ok(_) => std::thread::sleep(Duration::from_millis(5)),
                Err(err) => {
                    assert!(
                        matches!(
                            err.kind(),
                            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                        ),
                        "{err}"
                    );
                    assert_eq!(role, "unipc", "write(2) failed without SIGPIPE: {err}");
                    return;
                }
            }
        }
        panic!("writes to a reset connection kept succeeding");
    }
    let listener = tcp::Listener::bind(&host_port("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    for role in ["unipc", "control"] {
        let peer = util::Peer::new("tcp::write_to_reset_peer_is_an_error_not_sigpipe", role)
            .arg("HOST", "127.0.0.1")
            .arg("PORT", &port)
            .spawn();
        let (conn, _) = listener.accept_timeout(util::WATCHDOG).unwrap();
        drop(conn);
        let status = peer.wait();
        if role == "unipc" {
            assert!(
                status.success(),
                "unipc's write did not return an error cleanly: {status:?} (signal {:?})",
                status.signal()
            );
        } else {
            assert_eq!(
                status.signal(),
                Some(libc::SIGPIPE),
                "the control peer should die of SIGPIPE: {status:?}"
            );
        }
    }
}

#[test]
fn connection_refused_names_the_endpoint() {
    if util::role().is_some() {
        // Serve one connection, then go away, taking the listener along.
        let listener = tcp::Listener::bind(&peer_target()).unwrap();
        println!("port={}", listener.local_addr().unwrap().port());
        let (mut conn, _) = listener.accept_timeout(util::WATCHDOG).unwrap();
        conn.write_all(b"up").unwrap();
        return;
    }
    let mut hosts = vec!["127.0.0.1"];
    if ipv6_listener("connection_refused_names_the_endpoint").is_some() {
        hosts.push("::1");
    }
    for host in hosts {
        let mut peer = util::Peer::new("tcp::connection_refused_names_the_endpoint", "server")
            .arg("HOST", host)
            .arg("PORT", "0")
            .capture_stdout()
            .spawn();
        let mut out = BufReader::new(peer.child.stdout.take().unwrap());
        let port: u16 = read_marker(&mut out, "port=").parse().unwrap();
        let target = host_port(host, port);

        let mut stream = tcp::Stream::connect(&target).unwrap();
        let mut got = String::new();
        stream.read_to_string(&mut got).unwrap();
        assert_eq!(got, "up");
        finish(peer, out);

        let err = tcp::Stream::connect(&target).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED), "{err}");
        assert_eq!(
            err.to_string(),
            format!("tcp:{target}: connect: connection refused: no process listens there")
        );
        if host == "::1" {
            assert!(err.to_string().starts_with("tcp:[::1]:"), "{err}");
        }
    }
}

#[test]
fn nodelay_lives_in_the_shared_socket() {
    if util::role().is_some() {
        let stream = tcp::Stream::try_from(util::passed_fd(0)).unwrap();
        assert!(
            stream.object().starts_with("tcp:127.0.0.1:"),
            "{}",
            stream.object()
        );
        assert!(!stream.nodelay().unwrap(), "Nagle is on by default");
        stream.set_nodelay(true).unwrap();
        assert!(stream.nodelay().unwrap());
        return;
    }
    let listener = tcp::Listener::bind(&host_port("127.0.0.1", 0)).unwrap();
    let client = tcp::Stream::connect_addr(listener.local_addr().unwrap()).unwrap();
    let (_server, _) = listener.accept().unwrap();
    assert!(!client.nodelay().unwrap());
    util::Peer::new("tcp::nodelay_lives_in_the_shared_socket", "setter")
        .fd(client.as_fd())
        .spawn()
        .wait_success();
    assert!(
        client.nodelay().unwrap(),
        "the option the peer set on the shared socket is seen here"
    );
    client.set_nodelay(false).unwrap();
    assert!(!client.nodelay().unwrap());
}

#[test]
fn accept_timeout_times_out() {
    if util::role().is_some() {
        let mut stream = tcp::Stream::connect(&peer_target()).unwrap();
        stream.write_all(b"late").unwrap();
        return;
    }
    let listener = tcp::Listener::bind(&host_port("127.0.0.1", 0)).unwrap();
    let timeout = Duration::from_millis(200);
    let started = Instant::now();
    let err = listener.accept_timeout(timeout).unwrap_err();
    let waited = started.elapsed();
    match &err {
        Error::TimedOut { object, timeout: t } => {
            assert_eq!(*t, timeout);
            assert_eq!(*object, format!("tcp:{}", listener.local_addr().unwrap()));
        }
        other => panic!("expected TimedOut, got {other}"),
    }
    assert!(waited >= timeout, "gave up after {waited:?}");
    assert!(waited < util::WATCHDOG, "hung for {waited:?}");

    // A connection from another process ends the wait before its limit.
    let peer = util::Peer::new("tcp::accept_timeout_times_out", "client")
        .arg("HOST", "127.0.0.1")
        .arg("PORT", listener.local_addr().unwrap().port().to_string())
        .spawn();
    let (mut conn, _) = listener.accept_timeout(util::WATCHDOG).unwrap();
    let mut got = String::new();
    conn.read_to_string(&mut got).unwrap();
    assert_eq!(got, "late");
    peer.wait_success();
}

#[test]
fn connect_timeout_times_out_on_a_full_backlog() {
    if util::role().is_some() {
        // A listener whose accept queue holds one connection and never
        // drains: later SYNs are dropped, so connects hang.
        use rustix::net::{self, ipproto, AddressFamily, SocketFlags, SocketType};
        let fd = net::socket_with(
            AddressFamily::INET,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            Some(ipproto::TCP),
        )
        .unwrap();
        net::bind(&fd, &"127.0.0.1:0".parse::<SocketAddr>().unwrap()).unwrap();
        net::listen(&fd, 0).unwrap();
        let port = SocketAddr::try_from(net::getsockname(&fd).unwrap())
            .unwrap()
            .port();
        println!("port={port}");
        // Hold the listener until the parent closes our stdin.
        std::io::stdin().read_to_end(&mut Vec::new()).unwrap();
        return;
    }
    let mut peer = util::Peer::new("tcp::connect_timeout_times_out_on_a_full_backlog", "server")
        .capture_stdout();
    peer.command().stdin(Stdio::piped());
    let mut peer = peer.spawn();
    let stdin = peer.child.stdin.take().unwrap();
    let mut out = BufReader::new(peer.child.stdout.take().unwrap());
    let port: u16 = read_marker(&mut out, "port=").parse().unwrap();
    let target = host_port("127.0.0.1", port);

    // The first connection fills the queue; it completes in time.
    let first = tcp::Stream::connect_timeout(&target, util::WATCHDOG).unwrap();
    let flags = rustix::fs::fcntl_getfl(&first).unwrap();
    assert!(
        !flags.contains(rustix::fs::OFlags::NONBLOCK),
        "connect_timeout returns a blocking stream"
    );

    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = tcp::Stream::connect_timeout(&target, timeout).unwrap_err();
    let waited = started.elapsed();
    match &err {
        Error::TimedOut { object, timeout: t } => {
            assert_eq!(*object, format!("tcp:{target}"));
            assert_eq!(*t, timeout);
        }
        other => panic!("expected TimedOut, got {other}"),
    }
    assert!(waited >= timeout, "gave up after {waited:?}");
    assert!(waited < util::WATCHDOG, "hung for {waited:?}");

    drop(stdin);
    finish(peer, out);
}

#[test]
fn bind_to_a_port_in_use_is_a_clear_error() {
    if util::role().is_some() {
        let listener = tcp::Listener::bind(&host_port("127.0.0.1", 0)).unwrap();
        println!("port={}", listener.local_addr().unwrap().port());
        std::io::stdin().read_to_end(&mut Vec::new()).unwrap();
        return;
    }
    let mut peer =
        util::Peer::new("tcp::bind_to_a_port_in_use_is_a_clear_error", "holder").capture_stdout();
    peer.command().stdin(Stdio::piped());
    let mut peer = peer.spawn();
    let stdin = peer.child.stdin.take().unwrap();
    let mut out = BufReader::new(peer.child.stdout.take().unwrap());
    let port: u16 = read_marker(&mut out, "port=").parse().unwrap();

    // SO_REUSEADDR lets a port be rebound past TIME_WAIT, never while
    // another socket listens on it.
    let err = tcp::Listener::bind(&host_port("127.0.0.1", port)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "tcp:127.0.0.1:{port}: bind: address already in use: another process listens there"
        )
    );

    drop(stdin);
    finish(peer, out);

    // Once the holder is gone, the port can be bound again at once.
    tcp::Listener::bind(&host_port("127.0.0.1", port)).unwrap();
}

#[test]
fn options_reach_the_accepted_side_and_bad_ones_are_refused() {
    use unipc::stream::tcp::{Keepalive, TcpOptions};
    if util::role().is_some() {
        // The child connects with no options of its own; the parent's
        // accepted end carries the listener's.
        let stream = tcp::Stream::connect(&peer_target()).unwrap();
        assert_eq!(stream.user_timeout().unwrap(), None);
        assert_eq!(stream.keepalive().unwrap(), None);
        let mut got = Vec::new();
        (&stream).read_to_end(&mut got).unwrap();
        assert_eq!(got, b"ok");
        return;
    }
    let keepalive = Keepalive::new(Duration::from_secs(7), Duration::from_millis(1500), 4);
    let listener = TcpOptions::new()
        .user_timeout(Duration::from_micros(1500))
        .keepalive(keepalive)
        .nodelay(true)
        .bind(&host_port("127.0.0.1", 0))
        .unwrap();
    let peer = util::Peer::new(
        "tcp::options_reach_the_accepted_side_and_bad_ones_are_refused",
        "client",
    )
    .arg("HOST", "127.0.0.1")
    .arg("PORT", listener.local_addr().unwrap().port().to_string())
    .spawn();
    let (mut conn, _) = listener.accept_timeout(util::WATCHDOG).unwrap();
    // Rounded up: to whole milliseconds, and to the kernel's seconds.
    assert_eq!(conn.user_timeout().unwrap(), Some(Duration::from_millis(2)));
    let inherited = conn.keepalive().unwrap().unwrap();
    assert_eq!(inherited.idle, Duration::from_secs(7));
    assert_eq!(inherited.interval, Duration::from_secs(2));
    assert_eq!(inherited.count, 4);
    assert_eq!(inherited.detection_time(), keepalive.detection_time());
    assert!(conn.nodelay().unwrap());
    conn.set_user_timeout(None).unwrap();
    assert_eq!(conn.user_timeout().unwrap(), None);
    conn.set_keepalive(None).unwrap();
    assert_eq!(conn.keepalive().unwrap(), None);
    conn.write_all(b"ok").unwrap();
    drop(conn);
    peer.wait_success();

    // Out of the kernel's ranges: refused before the connect, naming the
    // option and the range.
    let target = listener.local_addr().unwrap();
    for (bad, option, range) in [
        (
            Keepalive::new(Duration::ZERO, Duration::from_secs(1), 1),
            "TCP_KEEPIDLE",
            "1 to 32767",
        ),
        (
            Keepalive::new(Duration::from_secs(1), Duration::from_secs(40_000), 1),
            "TCP_KEEPINTVL",
            "1 to 32767",
        ),
        (
            Keepalive::new(Duration::from_secs(1), Duration::from_secs(1), 128),
            "TCP_KEEPCNT",
            "1 to 127",
        ),
    ] {
        let err = TcpOptions::new()
            .keepalive(bad)
            .connect_addr(target)
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
        let text = err.to_string();
        assert!(text.contains(option) && text.contains(range), "{text}");
    }
    let err = TcpOptions::new()
        .user_timeout(Duration::from_secs(5_000_000))
        .connect_addr(target)
        .unwrap_err();
    assert!(err.to_string().contains("TCP_USER_TIMEOUT"), "{err}");
}

#[test]
fn peer_unresponsive_reads_as_one_line() {
    let err = Error::PeerUnresponsive {
        object: "tcp:db.example:5432".into(),
        peer: Some("10.0.0.7:5432".parse().unwrap()),
        timeout: Some(Duration::from_secs(2)),
        limit: "TCP_USER_TIMEOUT",
    };
    assert_eq!(
        err.to_string(),
        "tcp:db.example:5432: the peer 10.0.0.7:5432 stopped answering: nothing acknowledged \
         within 2s (TCP_USER_TIMEOUT); the kernel closed the connection, and data not yet \
         acknowledged may be lost"
    );
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert_eq!(err.raw_os_error(), Some(libc::ETIMEDOUT));
    // Through Read/Write it travels inside an io::Error, and comes back out.
    let io_err = std::io::Error::from(err);
    assert_eq!(io_err.kind(), std::io::ErrorKind::TimedOut);
    assert!(matches!(
        io_err.get_ref().and_then(|e| e.downcast_ref::<Error>()),
        Some(Error::PeerUnresponsive { .. })
    ));
}
