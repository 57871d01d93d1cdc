//! Signals between two processes: the receiver is a peer whose signals are
//! blocked from its first instruction (in `pre_exec`), as a program that
//! receives signals must arrange before it starts threads — libtest runs
//! the test on a thread of its own, and a process-directed signal that the
//! main thread does not block would kill the peer.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;

use unipc::signal::{self, SendCode, Signal, SignalReceiver};
use unipc::sync::Wait;
use unipc::Error;

use crate::util::{self, Peer};

fn sig(name: &str) -> Signal {
    name.parse().unwrap()
}

/// Blocks `signals` in the peer before it execs, so in every thread it has.
pub(crate) fn blocked_from_start(mut peer: Peer, signals: &[Signal]) -> Peer {
    let numbers: Vec<i32> = signals.iter().map(|s| s.number()).collect();
    let block = move || {
        let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the set; async-signal-safe.
        unsafe { libc::sigemptyset(set.as_mut_ptr()) };
        for &n in &numbers {
            // SAFETY: the set was initialised above; async-signal-safe.
            unsafe { libc::sigaddset(set.as_mut_ptr(), n) };
        }
        // SAFETY: a valid set; sigprocmask is async-signal-safe and the
        // child has one thread here.
        if unsafe { libc::sigprocmask(libc::SIG_BLOCK, set.as_ptr(), std::ptr::null_mut()) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the closure only calls async-signal-safe functions and
    // allocates nothing (the numbers were collected before the fork).
    unsafe { peer.command().pre_exec(block) };
    peer
}

fn pipe() -> (OwnedFd, OwnedFd) {
    rustix::pipe::pipe().unwrap()
}

fn byte_to(fd: &OwnedFd) {
    assert_eq!(rustix::io::write(fd, b"x").unwrap(), 1);
}

fn byte_from(fd: &OwnedFd) {
    let mut b = [0u8; 1];
    assert_eq!(rustix::io::read(fd, &mut b).unwrap(), 1);
}

/// The receiving peer's side: make the receiver, say ready on fd 0, wait
/// for the go on fd 1, then take everything pending.
fn drain_after_go(signals: &[Signal]) -> Vec<signal::Received> {
    let ready = util::passed_fd(0);
    let go = util::passed_fd(1);
    let mut receiver = SignalReceiver::new(signals).unwrap();
    byte_to(&ready);
    byte_from(&go);
    let mut got = Vec::new();
    loop {
        match receiver.recv(Wait::Never) {
            Ok(one) => got.push(one),
            Err(Error::WouldBlock { .. }) => break,
            Err(err) => panic!("{err}"),
        }
    }
    receiver.keep_blocked();
    got
}

/// Starts a receiving peer of `test` with `signals` blocked; returns it with
/// the parent's ends of the ready and go pipes.
fn receiver_peer(test: &str, signals: &[Signal]) -> (util::Running, OwnedFd, OwnedFd) {
    let (ready_r, ready_w) = pipe();
    let (go_r, go_w) = pipe();
    let peer = Peer::new(test, "receiver")
        .arg("PARENT", std::process::id().to_string())
        .fd(ready_w.as_fd())
        .fd(go_r.as_fd());
    let running = blocked_from_start(peer, signals).spawn();
    drop((ready_w, go_r));
    byte_from(&ready_r);
    (running, ready_r, go_w)
}

#[test]
fn standard_signals_of_one_number_coalesce_while_blocked() {
    let signals = [sig("USR1"), sig("USR2")];
    if util::role().is_some() {
        let got = drain_after_go(&signals);
        let parent: u32 = util::arg("PARENT").parse().unwrap();
        // Three USR1 merged into one; USR2 (12) after USR1 (10).
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].signal, sig("USR1"));
        assert_eq!(got[1].signal, sig("USR2"));
        for one in &got {
            assert_eq!(one.code, SendCode::User);
            assert_eq!(one.pid, parent);
            assert_eq!(one.uid, rustix::process::getuid().as_raw());
            assert_eq!(one.value, None);
        }
        return;
    }
    let (peer, _ready, go) = receiver_peer(
        "signal::standard_signals_of_one_number_coalesce_while_blocked",
        &signals,
    );
    for name in ["USR2", "USR1", "USR1", "USR1"] {
        signal::send(peer.pid(), sig(name), None).unwrap();
    }
    byte_to(&go);
    peer.wait_success();
}

#[test]
fn realtime_signals_queue_lowest_first_in_send_order_with_their_values() {
    let signals = [sig("RTMIN+1"), sig("RTMIN+2")];
    if util::role().is_some() {
        let got = drain_after_go(&signals);
        let parent: u32 = util::arg("PARENT").parse().unwrap();
        let seen: Vec<(Signal, Option<i32>)> = got.iter().map(|g| (g.signal, g.value)).collect();
        assert_eq!(
            seen,
            vec![
                (sig("RTMIN+1"), Some(10)),
                (sig("RTMIN+1"), Some(-11)),
                (sig("RTMIN+1"), Some(0)),
                (sig("RTMIN+2"), Some(20)),
                (sig("RTMIN+2"), Some(i32::MAX)),
                (sig("RTMIN+2"), Some(i32::MIN)),
            ]
        );
        assert!(got
            .iter()
            .all(|g| g.code == SendCode::Queue && g.pid == parent));
        return;
    }
    let (peer, _ready, go) = receiver_peer(
        "signal::realtime_signals_queue_lowest_first_in_send_order_with_their_values",
        &signals,
    );
    let pid = peer.pid();
    // The higher number first: delivery must still start with the lower.
    for value in [20, i32::MAX, i32::MIN] {
        signal::send(pid, sig("RTMIN+2"), Some(value)).unwrap();
    }
    signal::send(pid, sig("RTMIN+1"), Some(10)).unwrap();
    signal::send(pid, sig("RTMIN+1"), Some(-11)).unwrap();
    // Realtime without a value: still queued (sigqueue), carrying 0.
    signal::send(pid, sig("RTMIN+1"), None).unwrap();
    byte_to(&go);
    peer.wait_success();
}

const LOWERED: u64 = 16;

#[test]
fn a_full_queue_is_eagain_naming_rlimit_sigpending() {
    let signals = [sig("USR1"), sig("RTMIN+4")];
    if util::role().is_some() {
        // The limit is the target's; the count is its real user's, over
        // all that user's processes.
        let lowered = rustix::process::Rlimit {
            current: Some(LOWERED),
            maximum: Some(LOWERED),
        };
        rustix::process::setrlimit(rustix::process::Resource::Sigpending, lowered).unwrap();
        let mut got = drain_after_go(&signals);
        // USR1 (10) comes before the realtime ones.
        let usr1 = got.remove(0);
        assert_eq!(usr1.signal, sig("USR1"));
        println!("USR1 {:?} {} {:?}", usr1.code, usr1.pid, usr1.value);
        let values: Vec<i32> = got.iter().filter_map(|g| g.value).collect();
        let expected: Vec<i32> = (0..values.len() as i32).collect();
        assert_eq!(values, expected, "each queued one, in order");
        println!("RECEIVED {}", got.len());
        return;
    }
    let (ready_r, ready_w) = pipe();
    let (go_r, go_w) = pipe();
    let peer = Peer::new(
        "signal::a_full_queue_is_eagain_naming_rlimit_sigpending",
        "receiver",
    )
    .arg("PARENT", std::process::id().to_string())
    .fd(ready_w.as_fd())
    .fd(go_r.as_fd())
    .capture_stdout();
    let peer = blocked_from_start(peer, &signals).spawn();
    let target = peer.pid();
    drop((ready_w, go_r));
    byte_from(&ready_r);
    let mut sent = 0;
    let err = loop {
        match signal::send(peer.pid(), signals[1], Some(sent)) {
            Ok(()) => sent += 1,
            Err(err) => break err,
        }
        assert!(sent <= 10_000, "no limit met");
    };
    // A standard signal is never refused at the limit: the kernel marks it
    // pending without its siginfo, so the value and the sender are lost.
    signal::send(peer.pid(), sig("USR1"), Some(7)).unwrap();
    byte_to(&go_w);
    let (status, out) = peer.wait_stdout();
    assert!(status.success(), "{status:?}");
    assert!(
        matches!(
            err,
            Error::LimitExceeded {
                limit: LOWERED,
                set_in,
                ..
            } if set_in.contains("RLIMIT_SIGPENDING")
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&format!("pid {target}")), "{err}");
    // Other processes of this user may hold some of the 16.
    assert!(sent > 0 && sent as u64 <= LOWERED, "sent {sent}");
    let out = String::from_utf8(out).unwrap();
    let received: i32 = out
        .lines()
        .find_map(|l| l.strip_prefix("RECEIVED "))
        .unwrap_or_else(|| panic!("no count in {out:?}"))
        .parse()
        .unwrap();
    assert_eq!(received, sent, "every signal accepted was received");
    assert!(out.lines().any(|l| l == "USR1 User 0 None"), "{out}");
}

#[test]
fn a_process_that_is_gone_is_esrch_naming_it() {
    if util::role().is_some() {
        return;
    }
    let peer = Peer::new("signal::a_process_that_is_gone_is_esrch_naming_it", "exit").spawn();
    let pid = peer.pid();
    peer.wait_success();
    for (name, value) in [("TERM", None), ("USR1", Some(1)), ("RTMIN", None)] {
        let err = signal::send(pid, sig(name), value).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ESRCH), "{err}");
        assert!(err.to_string().contains(&format!("pid {pid}")), "{err}");
    }
}

#[test]
fn signalling_another_users_process_is_eperm_naming_it() {
    if util::role().is_some() {
        let target: u32 = util::arg("TARGET").parse().unwrap();
        // WINCH is ignored by default: were it let through, nothing dies.
        for value in [None, Some(5)] {
            let err = signal::send(target, sig("WINCH"), value).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
            assert!(err.to_string().contains(&format!("pid {target}")), "{err}");
        }
        return;
    }
    if !util::is_root() {
        util::skip("needs root to run a peer as nobody");
        return;
    }
    let mut peer = Peer::new(
        "signal::signalling_another_users_process_is_eperm_naming_it",
        "nobody",
    )
    .arg("TARGET", std::process::id().to_string());
    util::as_nobody(&mut peer);
    peer.spawn().wait_success();
}

#[test]
fn a_signal_the_kernel_sends_says_so() {
    let signals = [sig("CHLD")];
    if util::role().is_some() {
        let mut receiver = SignalReceiver::new(&signals).unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let got = receiver
            .recv(Wait::For(std::time::Duration::from_secs(10)))
            .unwrap();
        assert_eq!(got.signal, sig("SIGCHLD"));
        assert_eq!(got.code, SendCode::Kernel);
        assert_eq!(got.pid, child.id());
        assert_eq!(got.value, None);
        child.wait().unwrap();
        receiver.keep_blocked();
        return;
    }
    let peer = Peer::new("signal::a_signal_the_kernel_sends_says_so", "receiver");
    blocked_from_start(peer, &signals).spawn().wait_success();
}

#[test]
fn nothing_pending_times_out() {
    let mut receiver = SignalReceiver::new(&[sig("RTMAX-2")]).unwrap();
    let started = std::time::Instant::now();
    let err = receiver
        .recv(Wait::For(std::time::Duration::from_millis(100)))
        .unwrap_err();
    assert!(matches!(err, Error::TimedOut { .. }), "{err}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(100));
}

#[test]
fn names_parse_and_bad_ones_are_refused() {
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    for (name, number) in [
        ("TERM", 15),
        ("SIGTERM", 15),
        ("sigterm", 15),
        ("usr1", 10),
        ("9", 9),
        ("RTMIN", min),
        ("SIGRTMIN+3", min + 3),
        ("RTMAX", max),
        ("RTMAX-1", max - 1),
    ] {
        let parsed: Signal = name.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(parsed.number(), number, "{name}");
        // What it prints parses back to it.
        assert_eq!(parsed.to_string().parse::<Signal>().unwrap(), parsed);
    }
    assert_eq!(sig("RTMIN+3").to_string(), "SIGRTMIN+3");
    assert_eq!(Signal::rt(3).unwrap(), sig("RTMIN+3"));
    let span = max - min;
    for bad in [
        "NOPE".to_owned(),
        "".to_owned(),
        "0".to_owned(),
        "-1".to_owned(),
        "32".to_owned(), // glibc's own
        (max + 1).to_string(),
        format!("RTMIN+{}", span + 1),
        format!("RTMAX-{}", span + 1),
        "RTMIN-1".to_owned(),
        "RTMAX+1".to_owned(),
        "RTMIN+".to_owned(),
        "RTMIN+x".to_owned(),
    ] {
        let err = bad.parse::<Signal>().unwrap_err();
        assert!(
            matches!(err, Error::InvalidName { kind: "signal", .. }),
            "{bad}: {err}"
        );
    }
    assert!(Signal::rt(span as u32 + 1).is_err());
    // Pid 0 (the process group) is refused before any call.
    let err = signal::send(0, sig("TERM"), None).unwrap_err();
    assert!(
        matches!(err, Error::InvalidName { kind: "pid", .. }),
        "{err}"
    );
    // KILL and STOP cannot be received.
    assert!(SignalReceiver::new(&[sig("KILL")]).is_err());
}
