//! `unipc send` and `unipc recv` over TCP between two network namespaces
//! (two hosts on one machine, `unipc_test_support::netns::NetPair`), each
//! run with `ip netns exec`; then the receiver's host disappears under a
//! `send --timeout`, which must fail within the bound rather than hang.
//!
//! Without root or `ip` each test skips, saying why.

use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use unipc_test_support::netns::{ip, NetPair, VETH_A};

/// How long any child may run before it is killed and the test fails.
const DEADLINE: Duration = Duration::from_secs(30);

/// Any port: nothing else listens inside a namespace made for one test.
const PORT: u16 = 7777;

/// `ip netns exec NS unipc ARGS`.
fn unipc_in(ns: &str, args: &[&str]) -> Command {
    let mut command = NetPair::exec(ns, env!("CARGO_BIN_EXE_unipc"));
    command.args(args);
    command
}

/// A child killed (and reaped) when the test ends, however it ends.
struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(command: &mut Command) -> Kid {
    Kid(command.spawn().expect("spawn ip netns exec unipc"))
}

/// Waits for `child` at most `limit`; kills it and panics past that.
fn wait_within(child: &mut Child, what: &str, limit: Duration) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} ran for more than {limit:?}; killed");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Bytes that show any loss or reordering.
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[test]
fn tcp_send_and_recv_between_namespaces() {
    let Some(pair) = NetPair::or_skip() else {
        return;
    };
    let endpoint = format!("tcp:{}:{PORT}", pair.addr_b);
    let mut recv = spawn(
        unipc_in(&pair.b, &["recv", &endpoint, "--timeout", "20"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut out = recv.0.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        let mut got = Vec::new();
        out.read_to_end(&mut got).map(|_| got)
    });
    let data = pattern(3 << 20);
    // --timeout: the sender retries while the receiver is not listening yet.
    let mut send = spawn(
        unipc_in(&pair.a, &["send", &endpoint, "--timeout", "20"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let mut stdin = send.0.stdin.take().unwrap();
    let sent = data.clone();
    let writer = thread::spawn(move || stdin.write_all(&sent));
    let send_status = wait_within(&mut send.0, "unipc send", DEADLINE);
    writer.join().unwrap().unwrap();
    let recv_status = wait_within(&mut recv.0, "unipc recv", DEADLINE);
    let mut send_err = String::new();
    send.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut send_err)
        .unwrap();
    assert!(send_status.success(), "send: {send_status:?}: {send_err}");
    assert!(recv_status.success(), "recv: {recv_status:?}");
    let got = reader.join().unwrap().unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the bytes changed between the namespaces");
    pair.tear_down();
}

/// A slow sender (a line every 50 ms, so the kernel's buffer never fills
/// and no write blocks) to a host that disappears: the stall bound never
/// applies, and only the user timeout `--timeout` sets on the connection
/// ends the send, with the error naming the peer.
#[test]
fn tcp_send_to_a_vanished_host_fails_within_the_timeout() {
    let Some(pair) = NetPair::or_skip() else {
        return;
    };
    let endpoint = format!("tcp:{}:{PORT}", pair.addr_b);
    let mut recv = spawn(
        unipc_in(&pair.b, &["recv", &endpoint, "--timeout", "20"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let mut out = recv.0.stdout.take().unwrap();
    let received = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&received);
    let drain = thread::spawn(move || {
        let mut buf = [0; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            counter.fetch_add(n, Ordering::SeqCst);
        }
    });
    let mut send = spawn(
        unipc_in(&pair.a, &["send", &endpoint, "--timeout", "2"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let mut stdin = send.0.stdin.take().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let feeder = thread::spawn(move || {
        let mut n = 0u64;
        // Ends when the sender exits (EPIPE) or the test says so.
        while !stopped.load(Ordering::SeqCst) {
            if writeln!(stdin, "line {n}").is_err() {
                break;
            }
            n += 1;
            thread::sleep(Duration::from_millis(50));
        }
    });
    // The connection carries lines before the cut.
    let started = Instant::now();
    while received.load(Ordering::SeqCst) < 30 {
        assert!(started.elapsed() < DEADLINE, "no line crossed");
        thread::sleep(Duration::from_millis(10));
    }
    pair.cut();
    let cut_at = Instant::now();
    let status = wait_within(&mut send.0, "unipc send after the cut", DEADLINE);
    let took = cut_at.elapsed();
    stop.store(true, Ordering::SeqCst);
    feeder.join().unwrap();
    let mut err = String::new();
    send.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    eprintln!(
        "unipc send --timeout 2 exited {:?} {:.2} s after the cut: {}",
        status.code(),
        took.as_secs_f64(),
        err.trim()
    );
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains(&endpoint), "{err}");
    assert!(
        err.contains("stopped answering") && err.contains("TCP_USER_TIMEOUT"),
        "{err}"
    );
    drop(recv);
    drain.join().unwrap();
    pair.tear_down();
}

/// A host that is gone before the connect (its SYNs dropped, no refusal):
/// `send --timeout` gives up within the timeout, not after the kernel's
/// two minutes of SYN retries (`net.ipv4.tcp_syn_retries`).
#[test]
fn tcp_send_to_a_host_already_gone_times_out() {
    let Some(pair) = NetPair::or_skip() else {
        return;
    };
    // As behind a router: the next hop's address is known (here pinned,
    // as ARP would otherwise fail and report EHOSTUNREACH after 3 s), and
    // what is sent to the vanished host is silently dropped.
    let addr_b = pair.addr_b.to_string();
    ip(&[
        "-n",
        &pair.a,
        "neigh",
        "replace",
        &addr_b,
        "lladdr",
        "02:00:00:00:00:02",
        "dev",
        VETH_A,
        "nud",
        "permanent",
    ])
    .unwrap();
    pair.cut();
    let endpoint = format!("tcp:{addr_b}:{PORT}");
    let started = Instant::now();
    let mut send = spawn(
        unipc_in(&pair.a, &["send", &endpoint, "data", "--timeout", "2"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let status = wait_within(&mut send.0, "unipc send to a host already gone", DEADLINE);
    let took = started.elapsed();
    let mut err = String::new();
    send.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    eprintln!(
        "unipc send --timeout 2 to a host already gone exited {:?} after {:.2} s: {}",
        status.code(),
        took.as_secs_f64(),
        err.trim()
    );
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains(&endpoint) && err.contains("timed out after 2s"),
        "{err}"
    );
    drop(send);
    pair.tear_down();
}

/// `unipc` in namespace `ns`, run to its end within [`DEADLINE`]: (status,
/// stdout, stderr).
fn unipc_done(ns: &str, args: &[&str]) -> (ExitStatus, String, String) {
    let mut kid = spawn(
        unipc_in(ns, args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut out = kid.0.stdout.take().unwrap();
    let mut err = kid.0.stderr.take().unwrap();
    let readers = thread::spawn(move || {
        let (mut o, mut e) = (String::new(), String::new());
        let _ = out.read_to_string(&mut o);
        let _ = err.read_to_string(&mut e);
        (o, e)
    });
    let status = wait_within(&mut kid.0, &format!("unipc {args:?}"), DEADLINE);
    let (o, e) = readers.join().unwrap();
    (status, o, e)
}

/// A NATS server on host `a`; a client on host `b` creates, sends,
/// receives and removes through it; then host `a` disappears, and a send
/// is a typed error within its timeout, not a hang.
#[test]
fn nats_between_namespaces_and_a_server_host_that_disappears() {
    let Some(pair) = NetPair::or_skip() else {
        return;
    };
    let Some(server) =
        unipc_test_support::NatsServer::start_in_netns(&pair.a, &pair.addr_a.to_string())
    else {
        return;
    };
    let endpoint = format!("{}/across", server.url());
    for args in [
        vec!["create", endpoint.as_str()],
        vec!["send", endpoint.as_str(), "from b"],
    ] {
        let (status, _, err) = unipc_done(&pair.b, &args);
        assert!(status.success(), "{args:?}: {err}");
    }
    let (status, out, err) = unipc_done(&pair.b, &["recv", &endpoint, "--timeout", "5"]);
    assert!(status.success(), "{err}");
    assert_eq!(out, "from b\n");
    // Host a's link goes down (the pair cuts b; here a is the one that
    // goes, seen from b the same way).
    unipc_test_support::netns::ip(&["-n", &pair.a, "link", "set", VETH_A, "down"]).unwrap();
    let started = Instant::now();
    let (status, _, err) = unipc_done(&pair.b, &["send", &endpoint, "lost?", "--timeout", "3"]);
    let took = started.elapsed();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("server unreachable") || err.contains("timed out"),
        "{err}"
    );
    assert!(took < Duration::from_secs(20), "{took:?}");
    eprintln!("a send to a vanished NATS host failed after {took:?}: {err}");
    drop(server);
    pair.tear_down();
}
