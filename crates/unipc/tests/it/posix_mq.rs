//! POSIX message queues, between real processes: boundaries, priority
//! order, blocking, non-blocking and timed waits, size errors, notification
//! by signal and by thread, poll/epoll readiness, names, modes, limits and
//! permissions, and a 100,000-message no-loss run.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::ChildStdout;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use unipc::message::posix_mq::{self, Access, Notice, Queue, QueueOptions, PRIORITY_MAX};
use unipc::message::{Messenger, Tag, Wait};
use unipc::name::PosixName;
use unipc::Error;
use unipc::Mode;

use crate::util;

/// Generous bound on any wait that should end promptly: a hang guard only.
const HANG_GUARD: Duration = Duration::from_secs(10);

fn fresh_name() -> PosixName {
    format!("/{}", util::unique("mq")).parse().unwrap()
}

fn name_arg() -> PosixName {
    util::arg("name").parse().unwrap()
}

fn object(name: &PosixName) -> String {
    format!("posix-mq:{name}")
}

/// Unlinks the name on drop, whoever created the queue, so that a failing
/// test leaves nothing behind.
struct Unlink(PosixName);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = posix_mq::unlink(&self.0);
    }
}

/// A small queue this test owns (unlinked when dropped).
fn small_queue(name: &PosixName, max_messages: usize, max_message_size: usize) -> Queue {
    QueueOptions::new()
        .max_messages(max_messages)
        .max_message_size(max_message_size)
        .exclusive(true)
        .create(name)
        .unwrap()
}

fn peer(test: &str, role: &str, name: &PosixName) -> util::Peer {
    util::Peer::new(&format!("posix_mq::{test}"), role).arg("name", name.as_str())
}

/// Marked lines a peer prints on its stdout, to say how far it got.
fn say(marker: &str) {
    println!("@@{marker}");
}

struct Said(BufReader<ChildStdout>);

impl Said {
    fn of(peer: &mut util::Running) -> Said {
        Said(BufReader::new(
            peer.child.stdout.take().expect("stdout captured"),
        ))
    }

    /// Waits until the peer says `marker` (the test harness prints its own
    /// lines too, which are skipped).
    fn wait_for(&mut self, marker: &str) {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.0.read_line(&mut line).unwrap();
            assert!(n > 0, "peer ended before saying {marker:?}");
            if line.trim_end() == format!("@@{marker}") {
                return;
            }
        }
    }

    /// Reads the rest of the peer's output (a closed pipe would fail its
    /// last prints) and waits for it to succeed.
    fn wait_success(mut self, peer: util::Running) {
        std::io::copy(&mut self.0, &mut std::io::sink()).unwrap();
        peer.wait_success();
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + len) as u8).collect()
}

#[test]
fn boundaries_kept() {
    if let Some(role) = util::role() {
        assert_eq!(role, "sender");
        let queue = QueueOptions::new()
            .access(Access::Write)
            .open(&name_arg())
            .unwrap();
        let max = queue.limits().unwrap().max_message_size;
        for len in [0, 1, 100, max] {
            queue.send(&pattern(len)).unwrap();
        }
        return;
    }
    let name = fresh_name();
    // Room for two: the sender has to wait for the receiver in between.
    let queue = small_queue(&name, 2, 1024);
    let flags = rustix::io::fcntl_getfd(queue.as_fd()).unwrap();
    assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));

    let sender = peer("boundaries_kept", "sender", &name).spawn();
    let mut buf = vec![0; 1024];
    for len in [0, 1, 100, 1024] {
        let got = queue.recv_into(&mut buf, Wait::For(HANG_GUARD)).unwrap();
        assert_eq!(got.len, len, "one whole message per receive");
        assert_eq!(&buf[..got.len], &pattern(len)[..]);
        assert_eq!(got.tag, Tag::Priority(0));
    }
    sender.wait_success();
    assert!(matches!(queue.try_recv(), Err(Error::Empty { .. })));
}

/// (priority, text) in the order the peer sends them.
const INTERLEAVED: [(u32, &str); 10] = [
    (1, "a0"),
    (5, "b0"),
    (0, "z0"),
    (1, "a1"),
    (5, "b1"),
    (3, "c0"),
    (0, "z1"),
    (1, "a2"),
    (5, "b2"),
    (3, "c1"),
];

#[test]
fn priority_order_across_processes() {
    if let Some(_role) = util::role() {
        let queue = QueueOptions::new()
            .access(Access::Write)
            .open(&name_arg())
            .unwrap();
        for (priority, text) in INTERLEAVED {
            // Tag::None must mean priority 0.
            let tag = if priority == 0 {
                Tag::None
            } else {
                Tag::Priority(priority)
            };
            queue
                .send_tagged(text.as_bytes(), tag, Wait::Forever)
                .unwrap();
        }
        return;
    }
    let name = fresh_name();
    let queue = small_queue(&name, INTERLEAVED.len(), 64);
    peer("priority_order_across_processes", "sender", &name)
        .spawn()
        .wait_success();

    let attr = queue.attributes().unwrap();
    assert_eq!(attr.messages, INTERLEAVED.len());
    assert_eq!(attr.max_messages, INTERLEAVED.len());
    assert_eq!(attr.max_message_size, 64);
    assert!(!attr.nonblocking);

    let mut expected: Vec<(u32, &str)> = INTERLEAVED.to_vec();
    // A stable sort keeps sending order within a priority.
    expected.sort_by_key(|&(priority, _)| std::cmp::Reverse(priority));
    let mut got = Vec::new();
    while let Ok((bytes, tag)) = queue.recv_vec(Wait::Never) {
        let Tag::Priority(priority) = tag else {
            panic!("tag {tag:?}")
        };
        got.push((priority, String::from_utf8(bytes).unwrap()));
    }
    let got: Vec<(u32, &str)> = got.iter().map(|(p, t)| (*p, t.as_str())).collect();
    assert_eq!(got, expected);
}

#[test]
fn blocking_receive_wakes_on_send() {
    if let Some(_role) = util::role() {
        let queue = QueueOptions::new()
            .access(Access::Read)
            .open(&name_arg())
            .unwrap();
        let started = Instant::now();
        say("waiting");
        let mut buf = vec![0; 64];
        let (len, priority) = queue.recv_priority(&mut buf, Wait::Forever).unwrap();
        // The parent sends only after a pause: a receive that did not block
        // would have returned earlier (and with nothing).
        assert!(started.elapsed() >= Duration::from_millis(250));
        assert_eq!((&buf[..len], priority), (&b"wake up"[..], 7));
        return;
    }
    let name = fresh_name();
    let queue = small_queue(&name, 2, 64);
    let mut receiver = peer("blocking_receive_wakes_on_send", "receiver", &name)
        .capture_stdout()
        .spawn();
    let mut said = Said::of(&mut receiver);
    said.wait_for("waiting");
    std::thread::sleep(Duration::from_millis(300));
    queue.send_priority(b"wake up", 7, Wait::Forever).unwrap();
    said.wait_success(receiver);
    assert_eq!(queue.attributes().unwrap().messages, 0);
}

#[test]
fn nonblocking_full_and_empty() {
    if let Some(_role) = util::role() {
        // A blocking descriptor: Wait::Never alone must keep it from waiting.
        let queue = Queue::open(&name_arg()).unwrap();
        assert!(!queue.attributes().unwrap().nonblocking);
        let err = queue.try_recv().unwrap_err();
        assert!(matches!(err, Error::Empty { .. }), "{err}");
        queue.try_send(b"m0").unwrap();
        queue.try_send(b"m1").unwrap();
        let err = queue.try_send(b"m2").unwrap_err();
        assert!(matches!(err, Error::Full { .. }), "{err}");
        assert!(err.to_string().contains("full; the message was not sent"));
        // On a non-blocking descriptor even Wait::Forever does not wait.
        queue.set_nonblocking(true).unwrap();
        assert!(queue.attributes().unwrap().nonblocking);
        let err = queue
            .send_tagged(b"m3", Tag::None, Wait::Forever)
            .unwrap_err();
        assert!(matches!(err, Error::Full { .. }), "{err}");
        return;
    }
    let name = fresh_name();
    let queue = QueueOptions::new()
        .max_messages(2)
        .max_message_size(32)
        .nonblocking(true)
        .create(&name)
        .unwrap();
    assert!(queue.attributes().unwrap().nonblocking);
    let err = queue.recv_vec(Wait::Forever).unwrap_err();
    assert!(matches!(err, Error::Empty { .. }), "{err}");
    assert!(err.to_string().contains(&object(&name)), "{err}");

    peer("nonblocking_full_and_empty", "filler", &name)
        .spawn()
        .wait_success();
    assert_eq!(queue.try_recv().unwrap(), b"m0");
    assert_eq!(queue.try_recv().unwrap(), b"m1");
    assert!(matches!(queue.try_recv(), Err(Error::Empty { .. })));
}

fn assert_timed_out(err: Error, timeout: Duration, started: Instant) {
    let elapsed = started.elapsed();
    match err {
        Error::TimedOut { timeout: t, .. } => assert_eq!(t, timeout),
        other => panic!("expected TimedOut, got {other}"),
    }
    // The deadline is on CLOCK_REALTIME, the measure on the monotonic
    // clock: allow a hair for the two to disagree.
    assert!(
        elapsed + Duration::from_millis(2) >= timeout,
        "returned after {elapsed:?}, before the {timeout:?} timeout"
    );
    assert!(elapsed < HANG_GUARD, "hung for {elapsed:?}");
}

#[test]
fn timed_send_and_receive_time_out() {
    const TIMEOUT: Duration = Duration::from_millis(300);
    if let Some(_role) = util::role() {
        let queue = Queue::open(&name_arg()).unwrap();
        let mut buf = vec![0; 16];

        let started = Instant::now();
        let err = queue.recv_into(&mut buf, Wait::For(TIMEOUT)).unwrap_err();
        assert!(err.to_string().contains("timed out after 300ms"), "{err}");
        assert_timed_out(err, TIMEOUT, started);

        queue.send(b"first").unwrap(); // the queue holds one: now full
        let started = Instant::now();
        let err = queue
            .send_tagged(b"second", Tag::None, Wait::For(TIMEOUT))
            .unwrap_err();
        assert_timed_out(err, TIMEOUT, started);

        // A timed send that gets room in time succeeds: the parent receives.
        say("full");
        queue
            .send_tagged(b"second", Tag::None, Wait::For(HANG_GUARD))
            .unwrap();
        return;
    }
    let name = fresh_name();
    let queue = small_queue(&name, 1, 16);
    let mut sender = peer("timed_send_and_receive_time_out", "sender", &name)
        .capture_stdout()
        .spawn();
    let mut said = Said::of(&mut sender);
    said.wait_for("full");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(queue.recv_vec(Wait::For(HANG_GUARD)).unwrap().0, b"first");
    assert_eq!(queue.recv_vec(Wait::For(HANG_GUARD)).unwrap().0, b"second");
    said.wait_success(sender);
}

#[test]
fn oversize_send_is_refused_with_both_sizes() {
    if let Some(_role) = util::role() {
        let name = name_arg();
        let queue = QueueOptions::new()
            .access(Access::Write)
            .open(&name)
            .unwrap();
        let err = queue.send(&[1; 101]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::MessageTooLarge {
                    size: 101,
                    limit: 100,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "{}: message of 101 bytes exceeds the limit of 100 bytes",
                object(&name)
            )
        );
        let err = queue
            .send_tagged(b"x", Tag::Priority(PRIORITY_MAX + 1), Wait::Never)
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::LimitExceeded {
                    what: "priority",
                    requested: 32768,
                    limit: 32767,
                    ..
                }
            ),
            "{err}"
        );
        let err = queue
            .send_tagged(b"x", Tag::Type(1), Wait::Never)
            .unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{err}");
        // A handle opened for sending cannot receive.
        let err = queue.try_recv().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF), "{err}");
        assert!(err.to_string().contains("opened for sending only"), "{err}");

        queue.send(&[2; 100]).unwrap();
        queue
            .send_tagged(b"top", Tag::Priority(PRIORITY_MAX), Wait::Never)
            .unwrap();
        return;
    }
    let name = fresh_name();
    let queue = small_queue(&name, 4, 100);
    peer("oversize_send_is_refused_with_both_sizes", "sender", &name)
        .spawn()
        .wait_success();
    // Only the two messages that fit arrived.
    assert_eq!(
        queue.recv_vec(Wait::Never).unwrap(),
        (b"top".to_vec(), Tag::Priority(PRIORITY_MAX))
    );
    assert_eq!(queue.try_recv().unwrap(), vec![2; 100]);
    assert!(matches!(queue.try_recv(), Err(Error::Empty { .. })));
}

#[test]
fn small_buffer_is_refused_and_the_message_stays() {
    if let Some(_role) = util::role() {
        let queue = Queue::open(&name_arg()).unwrap();
        queue.send(b"tiny").unwrap();
        return;
    }
    let name = fresh_name();
    let queue = small_queue(&name, 2, 512);
    peer(
        "small_buffer_is_refused_and_the_message_stays",
        "sender",
        &name,
    )
    .spawn()
    .wait_success();
    let mut buf = [0; 16];
    let err = queue.recv_into(&mut buf, Wait::Never).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BufferTooSmall {
                buffer: 16,
                needed: Some(512),
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("16 bytes"), "{err}");
    assert!(err.to_string().contains("512 bytes"), "{err}");
    assert_eq!(queue.attributes().unwrap().messages, 1);
    assert_eq!(queue.try_recv().unwrap(), b"tiny");
}

static SIGNAL_SEEN: AtomicI32 = AtomicI32::new(0);
static SIGNAL_CODE: AtomicI32 = AtomicI32::new(0);
static SIGNAL_PID: AtomicI32 = AtomicI32::new(0);
static SIGNAL_VALUE: AtomicUsize = AtomicUsize::new(0);

extern "C" fn record_signal(signo: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes an SA_SIGINFO handler a valid siginfo_t
    // that lives for the handler's run; it is only read.
    let info = unsafe { &*info };
    // SAFETY: reads the _rt member (pid, uid, value), which the kernel
    // fills for SI_MESGQ; for other codes the bytes are still initialized
    // and the test rejects the code anyway.
    let pid = unsafe { info.si_pid() };
    // SAFETY: as above, the same _rt member.
    let value = unsafe { info.si_value() }.sival_ptr as usize;
    // Atomics only: async-signal-safe.
    SIGNAL_CODE.store(info.si_code, Ordering::Relaxed);
    SIGNAL_PID.store(pid, Ordering::Relaxed);
    SIGNAL_VALUE.store(value, Ordering::Relaxed);
    SIGNAL_SEEN.store(signo, Ordering::Release);
}

/// Installs `record_signal` for `signal` in this (peer) process.
fn record_signals(signal: i32) {
    // SAFETY: `sigaction` is a plain C struct for which all zeroes is a
    // valid value (no handler, empty mask, no flags).
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = record_signal as *const () as usize;
    action.sa_flags = libc::SA_SIGINFO;
    // SAFETY: `action` is initialized and names a handler that only
    // touches atomics; a null old-action pointer is allowed.
    let rc = unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "sigaction: {}", std::io::Error::last_os_error());
}

#[test]
fn notify_by_signal_when_a_peer_sends() {
    const VALUE: isize = 0x5eed;
    if let Some(_role) = util::role() {
        // Signal dispositions are process-wide: only the peer changes them.
        let signal = libc::SIGRTMIN() + 2;
        record_signals(signal);
        let queue = Queue::open(&name_arg()).unwrap();
        queue.notify_signal(signal, VALUE).unwrap();
        let err = queue.notify_signal(signal, VALUE).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBUSY), "{err}");
        let err = queue.notify_signal(0, VALUE).unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{err}");
        say("registered");

        let started = Instant::now();
        while SIGNAL_SEEN.load(Ordering::Acquire) == 0 {
            assert!(started.elapsed() < HANG_GUARD, "no notification signal");
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(SIGNAL_SEEN.load(Ordering::Acquire), signal);
        assert_eq!(SIGNAL_CODE.load(Ordering::Relaxed), libc::SI_MESGQ);
        // si_pid is the process whose send made the queue non-empty.
        let parent = rustix::process::getppid().unwrap().as_raw_nonzero().get();
        assert_eq!(SIGNAL_PID.load(Ordering::Relaxed), parent);
        assert_eq!(SIGNAL_VALUE.load(Ordering::Relaxed), VALUE as usize);
        // The notification does not consume the message.
        assert_eq!(queue.try_recv().unwrap(), b"ping");
        return;
    }
    let name = fresh_name();
    let queue = small_queue(&name, 2, 32);
    let mut waiter = peer("notify_by_signal_when_a_peer_sends", "waiter", &name)
        .capture_stdout()
        .spawn();
    let mut said = Said::of(&mut waiter);
    said.wait_for("registered");

    // Only one process may be registered at a time.
    let err = queue.notify_signal(libc::SIGRTMIN() + 2, 1).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBUSY), "{err}");
    let text = err.to_string();
    assert!(text.contains(&object(&name)), "{text}");
    assert!(text.contains("already registered"), "{text}");
    let err = queue.notify_thread(|| ()).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBUSY), "{err}");

    queue.send(b"ping").unwrap();
    said.wait_success(waiter);
}

#[test]
fn notify_by_thread_when_a_peer_sends() {
    if let Some(role) = util::role() {
        let queue = Queue::open(&name_arg()).unwrap();
        match role.as_str() {
            "sender" => queue.send(b"ping").unwrap(),
            "second-sender" => queue.send(b"second").unwrap(),
            "registrar" => {
                let err = queue.notify_signal(libc::SIGUSR1, 0).unwrap_err();
                assert_eq!(err.raw_os_error(), Some(libc::EBUSY), "{err}");
                assert!(err.to_string().contains("only one may be"), "{err}");
            }
            other => panic!("role {other}"),
        }
        return;
    }
    let name = fresh_name();
    let queue = small_queue(&name, 4, 32);

    // Arrival in the empty queue runs the closure on the helper thread.
    let (tx, rx) = mpsc::channel();
    let notifier = queue
        .notify_thread(move || {
            let thread = std::thread::current().name().map(str::to_owned);
            tx.send(thread).unwrap();
        })
        .unwrap();
    assert!(!notifier.is_finished());
    peer("notify_by_thread_when_a_peer_sends", "registrar", &name)
        .spawn()
        .wait_success();
    peer("notify_by_thread_when_a_peer_sends", "sender", &name)
        .spawn()
        .wait_success();
    assert_eq!(notifier.join().unwrap(), Notice::MessageArrived);
    assert_eq!(
        rx.recv_timeout(HANG_GUARD).unwrap().as_deref(),
        Some("unipc-mq-notify")
    );
    assert_eq!(queue.try_recv().unwrap(), b"ping");

    // One-shot, and only on arrival in an EMPTY queue: with a message
    // already waiting, another arrival tells nobody.
    queue.send(b"already here").unwrap();
    let (tx, rx) = mpsc::channel();
    let notifier = queue.notify_thread(move || tx.send(()).unwrap()).unwrap();
    peer("notify_by_thread_when_a_peer_sends", "second-sender", &name)
        .spawn()
        .wait_success();
    std::thread::sleep(Duration::from_millis(200));
    assert!(!notifier.is_finished(), "notified for a non-empty queue");
    // Cancelling ends the registration without running the closure.
    queue.cancel_notify().unwrap();
    assert_eq!(notifier.join().unwrap(), Notice::Removed);
    assert!(rx.try_recv().is_err());
    assert_eq!(queue.attributes().unwrap().messages, 2);

    // Closing any descriptor of the queue in this process removes the
    // registration too (the kernel's flush on close).
    let notifier = queue.notify_thread(|| ()).unwrap();
    drop(Queue::open(&name).unwrap());
    assert_eq!(notifier.join().unwrap(), Notice::Removed);
}

fn poll_one(queue: &Queue, flags: rustix::event::PollFlags, timeout: Duration) -> bool {
    let timeout = rustix::time::Timespec::try_from(timeout).unwrap();
    let mut fds = [rustix::event::PollFd::new(queue, flags)];
    let n = rustix::event::poll(&mut fds, Some(&timeout)).unwrap();
    n == 1 && fds[0].revents().intersects(flags)
}

#[test]
fn poll_and_epoll_readiness() {
    use rustix::event::{epoll, PollFlags};
    if let Some(role) = util::role() {
        let queue = Queue::open(&name_arg()).unwrap();
        match role.as_str() {
            "sender" => queue.send(b"ready?").unwrap(),
            "receiver" => assert_eq!(queue.recv().unwrap(), b"ready?"),
            other => panic!("role {other}"),
        }
        return;
    }
    let name = fresh_name();
    let queue = small_queue(&name, 1, 16);
    assert!(!poll_one(&queue, PollFlags::IN, Duration::ZERO));
    assert!(poll_one(&queue, PollFlags::OUT, Duration::ZERO));

    let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
    epoll::add(
        &epoll,
        &queue,
        epoll::EventData::new_u64(7),
        epoll::EventFlags::IN,
    )
    .unwrap();

    let sender = peer("poll_and_epoll_readiness", "sender", &name).spawn();
    assert!(
        poll_one(&queue, PollFlags::IN, HANG_GUARD),
        "never readable"
    );
    sender.wait_success();
    let mut events = Vec::with_capacity(4);
    let timeout = rustix::time::Timespec::try_from(HANG_GUARD).unwrap();
    epoll::wait(
        &epoll,
        rustix::buffer::spare_capacity(&mut events),
        Some(&timeout),
    )
    .unwrap();
    assert_eq!(events.len(), 1);
    let (data, flags) = (events[0].data, events[0].flags);
    assert_eq!(data.u64(), 7);
    assert!(flags.contains(epoll::EventFlags::IN));
    // Full now: not writable until someone makes room.
    assert!(!poll_one(&queue, PollFlags::OUT, Duration::ZERO));

    let receiver = peer("poll_and_epoll_readiness", "receiver", &name).spawn();
    assert!(
        poll_one(&queue, PollFlags::OUT, HANG_GUARD),
        "never writable"
    );
    receiver.wait_success();
    assert!(!poll_one(&queue, PollFlags::IN, Duration::ZERO));
}

#[test]
fn missing_queue_error_names_it() {
    if let Some(_role) = util::role() {
        let name = name_arg();
        let err = Queue::open(&name).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "{}: mq_open: no such file or directory: no queue has that name; create it first",
                object(&name)
            )
        );
        let err = posix_mq::unlink(&name).unwrap_err();
        assert!(err.to_string().contains(&object(&name)), "{err}");
        assert!(err.to_string().contains("no queue has that name"), "{err}");
        return;
    }
    let name = fresh_name();
    drop(small_queue(&name, 1, 8)); // created and removed again
    peer("missing_queue_error_names_it", "opener", &name)
        .spawn()
        .wait_success();
}

#[test]
fn exclusive_create_of_an_existing_queue() {
    if let Some(_role) = util::role() {
        let name = name_arg();
        let err = QueueOptions::new()
            .exclusive(true)
            .create(&name)
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EEXIST), "{err}");
        let text = err.to_string();
        assert!(text.contains(&object(&name)), "{text}");
        assert!(
            text.contains("a queue by that name already exists"),
            "{text}"
        );

        // Not exclusive: opens the queue there, keeps its sizes and does not
        // remove it on drop (this process did not create it).
        let queue = QueueOptions::new()
            .max_messages(1)
            .max_message_size(8)
            .create(&name)
            .unwrap();
        assert!(!queue.created());
        assert_eq!(queue.attributes().unwrap().max_message_size, 32);
        queue.send(b"from the opener").unwrap();
        return;
    }
    let name = fresh_name();
    let queue = small_queue(&name, 2, 32);
    assert!(queue.created());
    peer("exclusive_create_of_an_existing_queue", "creator", &name)
        .spawn()
        .wait_success();
    // Still there, same queue.
    let again = Queue::open(&name).unwrap();
    assert_eq!(again.try_recv().unwrap(), b"from the opener");
}

fn has_cap_sys_resource() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 24) != 0)
}

fn mqueue_limit(file: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/sys/fs/mqueue/{file}"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn limits_exceeded_name_the_limit() {
    if let Some(role) = util::role() {
        assert_eq!(role, "nobody");
        assert!(!util::is_root());
        let name = name_arg();
        let _guard = Unlink(name.clone());
        let msg_max = mqueue_limit("msg_max");
        let msgsize_max = mqueue_limit("msgsize_max");

        let err = QueueOptions::new()
            .max_messages(msg_max as usize + 1)
            .max_message_size(16)
            .create(&name)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: max messages {} exceeds the system limit of {msg_max} (set in /proc/sys/fs/mqueue/msg_max)",
                object(&name),
                msg_max + 1
            )
        );

        let err = QueueOptions::new()
            .max_messages(1)
            .max_message_size(msgsize_max as usize + 1)
            .create(&name)
            .unwrap_err();
        assert!(
            matches!(err, Error::LimitExceeded { limit, set_in: "/proc/sys/fs/mqueue/msgsize_max", .. } if limit == msgsize_max),
            "{err}"
        );
        assert!(err.to_string().contains("msgsize_max"), "{err}");

        // Within both limits the same user succeeds.
        drop(
            QueueOptions::new()
                .max_messages(msg_max as usize)
                .max_message_size(16)
                .create(&name)
                .unwrap(),
        );

        // Bytes: lower this process's RLIMIT_MSGQUEUE below one queue.
        rustix::process::setrlimit(
            rustix::process::Resource::Msgqueue,
            rustix::process::Rlimit {
                current: Some(4096),
                maximum: Some(4096),
            },
        )
        .unwrap();
        let err = QueueOptions::new()
            .max_messages(8)
            .max_message_size(1024)
            .create(&name)
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::QueueBytesLimit {
                    max_messages: 8,
                    message_size: 1024,
                    limit: 4096,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("RLIMIT_MSGQUEUE"), "{err}");
        return;
    }
    let name = fresh_name();
    let _guard = Unlink(name.clone());
    let mut nobody = peer("limits_exceeded_name_the_limit", "nobody", &name);
    util::as_nobody(&mut nobody);
    nobody.spawn().wait_success();

    // With CAP_SYS_RESOURCE the /proc limits do not apply (only the hard
    // ones); this machine's root may lack it.
    let msg_max = mqueue_limit("msg_max") as usize;
    let over = QueueOptions::new()
        .max_messages(msg_max + 1)
        .max_message_size(16)
        .create(&name);
    if has_cap_sys_resource() {
        assert_eq!(
            over.unwrap().attributes().unwrap().max_messages,
            msg_max + 1
        );
    } else {
        println!("without CAP_SYS_RESOURCE here: checking that msg_max binds this process too");
        let err = over.unwrap_err();
        assert!(
            err.to_string().contains("/proc/sys/fs/mqueue/msg_max"),
            "{err}"
        );
    }
}

#[test]
fn permission_refused_for_nobody() {
    if let Some(_role) = util::role() {
        let private = name_arg();
        let err = Queue::open(&private).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{err}");
        let text = err.to_string();
        assert!(text.contains(&object(&private)), "{text}");
        assert!(text.contains("lacks permission"), "{text}");

        // Others may write but not read this one.
        let drop_box: PosixName = util::arg("drop_box").parse().unwrap();
        let err = QueueOptions::new()
            .access(Access::Read)
            .open(&drop_box)
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{err}");
        let writer = QueueOptions::new()
            .access(Access::Write)
            .open(&drop_box)
            .unwrap();
        writer.send(b"from nobody").unwrap();
        return;
    }
    let private_name = fresh_name();
    let _private = QueueOptions::new()
        .max_messages(1)
        .max_message_size(16)
        .mode(Mode::OWNER_RW)
        .create(&private_name)
        .unwrap();
    let drop_name = fresh_name();
    let drop_box = QueueOptions::new()
        .max_messages(1)
        .max_message_size(16)
        .mode(Mode::new(0o602).unwrap())
        .create(&drop_name)
        .unwrap();
    assert_eq!(drop_box.mode().unwrap().bits(), 0o602);
    let mut nobody = peer("permission_refused_for_nobody", "nobody", &private_name)
        .arg("drop_box", drop_name.as_str());
    util::as_nobody(&mut nobody);
    nobody.spawn().wait_success();
    assert_eq!(drop_box.try_recv().unwrap(), b"from nobody");
}

#[test]
fn mode_is_exact_under_umask() {
    if let Some(_role) = util::role() {
        // The umask is process-wide: only the peer sets it.
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
        let queue = QueueOptions::new()
            .max_messages(1)
            .max_message_size(16)
            .mode(Mode::OWNER_RW_ALL_R)
            .exclusive(true)
            .create(&name_arg())
            .unwrap();
        assert_eq!(queue.mode().unwrap().bits(), 0o644);
        say("created");
        // Stay (and keep the queue) until the parent has looked.
        assert_eq!(queue.recv_vec(Wait::For(HANG_GUARD)).unwrap().0, b"done");
        return;
    }
    let name = fresh_name();
    let _guard = Unlink(name.clone());
    let mut creator = peer("mode_is_exact_under_umask", "creator", &name)
        .capture_stdout()
        .spawn();
    let mut said = Said::of(&mut creator);
    said.wait_for("created");
    let queue = Queue::open(&name).unwrap();
    assert!(!queue.created());
    assert_eq!(
        queue.mode().unwrap(),
        Mode::OWNER_RW_ALL_R,
        "umask 077 would have made 0600"
    );
    queue.send(b"done").unwrap();
    said.wait_success(creator);
    // The creator removed it on drop.
    assert!(Queue::open(&name).is_err());
}

#[test]
fn unlink_under_an_open_handle() {
    if let Some(_role) = util::role() {
        let queue = Queue::open(&name_arg()).unwrap();
        say("opened");
        assert_eq!(queue.recv_vec(Wait::For(HANG_GUARD)).unwrap().0, b"go");
        queue.send(b"ack").unwrap();
        return;
    }
    let name = fresh_name();
    let old = small_queue(&name, 2, 16).keep();
    let _guard = Unlink(name.clone());
    let mut holder = peer("unlink_under_an_open_handle", "holder", &name)
        .capture_stdout()
        .spawn();
    let mut said = Said::of(&mut holder);
    said.wait_for("opened");

    posix_mq::unlink(&name).unwrap();
    let err = Queue::open(&name).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
    // The name is free at once; the new queue is a different one.
    let new = small_queue(&name, 2, 16);
    new.send(b"other").unwrap();

    // Both processes still talk through the unlinked queue.
    old.send(b"go").unwrap();
    said.wait_success(holder);
    assert_eq!(old.recv_vec(Wait::For(HANG_GUARD)).unwrap().0, b"ack");
    assert!(matches!(old.try_recv(), Err(Error::Empty { .. })));
    assert_eq!(new.try_recv().unwrap(), b"other");
    assert!(matches!(new.try_recv(), Err(Error::Empty { .. })));
}

const PRODUCERS: u32 = 4;
const CONSUMERS: usize = 2;
const PER_PRODUCER: u64 = 25_000;
const RECORD: usize = 12; // producer id (u32) + sequence (u64)

#[test]
fn no_loss_no_duplication() {
    if let Some(role) = util::role() {
        let name = name_arg();
        match role.as_str() {
            "producer" => {
                let id: u32 = util::arg("id").parse().unwrap();
                let queue = QueueOptions::new()
                    .access(Access::Write)
                    .open(&name)
                    .unwrap();
                let mut message = [0; RECORD];
                message[..4].copy_from_slice(&id.to_le_bytes());
                for seq in 0..PER_PRODUCER {
                    message[4..].copy_from_slice(&seq.to_le_bytes());
                    queue.send(&message).unwrap();
                }
            }
            "consumer" => {
                let queue = QueueOptions::new()
                    .access(Access::Read)
                    .open(&name)
                    .unwrap();
                let file = std::fs::File::create(util::arg("out")).unwrap();
                let mut out = BufWriter::new(file);
                let mut buf = vec![0; queue.limits().unwrap().max_message_size];
                loop {
                    let (len, _) = queue.recv_priority(&mut buf, Wait::Forever).unwrap();
                    if len == 0 {
                        break; // the parent's stop message
                    }
                    assert_eq!(len, RECORD);
                    out.write_all(&buf[..RECORD]).unwrap();
                }
                out.flush().unwrap();
            }
            other => panic!("role {other}"),
        }
        return;
    }
    let started = Instant::now();
    let name = fresh_name();
    let queue = small_queue(&name, mqueue_limit("msg_max").min(10) as usize, 16);
    let dir = util::TempDir::new();
    let outs: Vec<_> = (0..CONSUMERS)
        .map(|i| dir.join(&format!("consumer-{i}")))
        .collect();
    let consumers: Vec<_> = outs
        .iter()
        .map(|out| {
            peer("no_loss_no_duplication", "consumer", &name)
                .arg("out", out)
                .spawn()
        })
        .collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|id| {
            peer("no_loss_no_duplication", "producer", &name)
                .arg("id", id.to_string())
                .spawn()
        })
        .collect();
    for producer in producers {
        producer.wait_success();
    }
    // Same priority as the data, so FIFO puts them after all of it; each
    // consumer stops at the first it receives.
    for _ in 0..CONSUMERS {
        queue.send(b"").unwrap();
    }
    for consumer in consumers {
        consumer.wait_success();
    }

    let mut seen: HashMap<(u32, u64), usize> = HashMap::new();
    for (consumer, out) in outs.iter().enumerate() {
        let mut bytes = Vec::new();
        std::fs::File::open(out)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        assert_eq!(bytes.len() % RECORD, 0);
        let mut last: HashMap<u32, u64> = HashMap::new();
        for record in bytes.chunks_exact(RECORD) {
            let id = u32::from_le_bytes(record[..4].try_into().unwrap());
            let seq = u64::from_le_bytes(record[4..].try_into().unwrap());
            assert!(
                id < PRODUCERS && seq < PER_PRODUCER,
                "bad record {id}/{seq}"
            );
            if let Some(&prev) = last.get(&id) {
                assert!(
                    seq > prev,
                    "consumer {consumer} got producer {id}'s {seq} after {prev}"
                );
            }
            last.insert(id, seq);
            *seen.entry((id, seq)).or_default() += 1;
        }
    }
    let duplicated = seen.values().filter(|&&n| n > 1).count();
    assert_eq!(duplicated, 0, "{duplicated} messages arrived twice");
    assert_eq!(
        seen.len() as u64,
        u64::from(PRODUCERS) * PER_PRODUCER,
        "messages lost"
    );
    assert!(matches!(queue.try_recv(), Err(Error::Empty { .. })));
    println!(
        "{} messages through one queue in {:?}",
        seen.len(),
        started.elapsed()
    );
}

#[test]
fn queue_count_limit_names_queues_max() {
    if let Some(_role) = util::role() {
        // A private IPC namespace has its own queues and its own limits, so
        // this test can lower queues_max without touching anyone else; its
        // queues vanish with the namespace when this process exits. The
        // namespace belongs to this thread, which makes every call below.
        if let Err(err) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWIPC) {
            util::skip(format!("cannot make a private IPC namespace here ({err})"));
            return;
        }
        std::fs::write("/proc/sys/fs/mqueue/queues_max", "2").unwrap();
        // CAP_SYS_RESOURCE would bypass queues_max: give up root.
        // SAFETY: setgid takes a plain id; glibc applies it to every thread.
        assert_eq!(unsafe { libc::setgid(util::NOBODY.1) }, 0);
        // SAFETY: as above, for the user id.
        assert_eq!(unsafe { libc::setuid(util::NOBODY.0) }, 0);

        let names: Vec<PosixName> = (0..3).map(|_| fresh_name()).collect();
        let options = QueueOptions::new().max_messages(1).max_message_size(1);
        let _first = options.create(&names[0]).unwrap();
        let _second = options.create(&names[1]).unwrap();
        let err = options.create(&names[2]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: number of queues 3 exceeds the system limit of 2 (set in /proc/sys/fs/mqueue/queues_max)",
                object(&names[2])
            )
        );
        return;
    }
    let mut peer = util::Peer::new("posix_mq::queue_count_limit_names_queues_max", "isolated");
    peer.command().stdout(std::process::Stdio::inherit());
    peer.spawn().wait_success();
}

#[test]
fn create_does_not_adopt_a_queue_another_user_made() {
    if let Some(role) = util::role() {
        assert_eq!(role, "squatter");
        assert!(!util::is_root());
        // Made first, open to everyone, and left there.
        let squat = QueueOptions::new()
            .max_messages(2)
            .max_message_size(64)
            .mode(Mode::ALL_RW)
            .exclusive(true)
            .create(&name_arg())
            .unwrap()
            .keep();
        assert_eq!(squat.mode().unwrap().bits(), 0o666);
        return;
    }
    if !util::is_root() {
        util::skip("needs root to switch a peer to nobody");
        return;
    }
    let name = fresh_name();
    let _guard = Unlink(name.clone());
    let mut squatter = peer(
        "create_does_not_adopt_a_queue_another_user_made",
        "squatter",
        &name,
    );
    util::as_nobody(&mut squatter);
    squatter.spawn().wait_success();

    // The mode asked, the default mode (0o600), and even the squatter's
    // own mode: another user's queue is never adopted.
    for (options, asked) in [
        (QueueOptions::new().mode(Mode::OWNER_RW), 0o600),
        (QueueOptions::new(), 0o600),
        (QueueOptions::new().mode(Mode::ALL_RW), 0o666),
        (
            QueueOptions::new()
                .access(Access::Write)
                .mode(Mode::OWNER_RW),
            0o600,
        ),
    ] {
        let err = options.create(&name).unwrap_err();
        match &err {
            Error::ForeignObject {
                object: named,
                owner_uid,
                creator_uid,
                mode,
                expected_mode,
                caller_uid,
                ..
            } => {
                assert_eq!(named, &object(&name));
                assert_eq!((*owner_uid, *creator_uid), (util::NOBODY.0, None));
                assert_eq!((*mode, *expected_mode, *caller_uid), (0o666, asked, 0));
            }
            other => panic!("expected ForeignObject, got {other:?}"),
        }
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "{}: create: already exists, owned by uid 65534",
                object(&name)
            )),
            "{text}"
        );
        assert!(text.contains("with mode 0o666"), "{text}");
        assert!(text.contains(&format!("{asked:#o}")), "{text}");
        assert!(
            text.contains("remove it, or use a different name"),
            "{text}"
        );
    }

    // Untouched: still there, still 0o666, nothing sent, and the refused
    // creates did not unlink it. Plain open is unaffected.
    let queue = Queue::open(&name).unwrap();
    assert!(!queue.created());
    assert_eq!(queue.mode().unwrap().bits(), 0o666);
    assert_eq!(queue.attributes().unwrap().messages, 0);
}

#[test]
fn create_adopts_own_queue_only_with_the_mode_asked() {
    if let Some(role) = util::role() {
        assert_eq!(role, "opener");
        let name = name_arg();
        let queue = QueueOptions::new()
            .mode(Mode::OWNER_RW_GROUP_R)
            .create(&name)
            .unwrap();
        assert!(!queue.created(), "the parent made it");
        queue.send(b"adopted").unwrap();
        for options in [
            QueueOptions::new(),
            QueueOptions::new().mode(Mode::OWNER_RW_ALL_R),
        ] {
            let err = options.create(&name).unwrap_err();
            assert!(
                matches!(err, Error::ForeignObject { mode: 0o640, .. }),
                "{err:?}"
            );
            let text = err.to_string();
            assert!(
                text.starts_with(&format!(
                    "{}: create: already exists with mode 0o640, not the 0o6",
                    object(&name)
                )),
                "{text}"
            );
        }
        return;
    }
    let name = fresh_name();
    let queue = QueueOptions::new()
        .max_messages(2)
        .max_message_size(16)
        .mode(Mode::OWNER_RW_GROUP_R)
        .exclusive(true)
        .create(&name)
        .unwrap();
    peer(
        "create_adopts_own_queue_only_with_the_mode_asked",
        "opener",
        &name,
    )
    .spawn()
    .wait_success();
    assert_eq!(queue.try_recv().unwrap(), b"adopted");
    assert_eq!(queue.mode().unwrap().bits(), 0o640);
}

/// A user id no other test runs as: RLIMIT_MSGQUEUE counts the bytes of all
/// of a user's queues, so a peer of another test as `nobody` would change
/// what is left.
const RLIMIT_TEST_UID: u32 = 64_987;

#[test]
fn rlimit_msgqueue_refusal_names_the_rlimit_and_the_bytes() {
    if let Some(_role) = util::role() {
        let name = name_arg();
        let _guard = Unlink(name.clone());
        // What mqueue_get_inode charges: the message bytes, plus one
        // msg_msg and one posix_msg_tree_node (six words each) a message.
        let (n, size) = (8u64, 1024u64);
        let needed = n * size + 2 * n * 6 * std::mem::size_of::<usize>() as u64;
        let set = |soft: u64| {
            rustix::process::setrlimit(
                rustix::process::Resource::Msgqueue,
                rustix::process::Rlimit {
                    current: Some(soft),
                    maximum: Some(needed),
                },
            )
            .unwrap();
        };
        let options = QueueOptions::new()
            .max_messages(n as usize)
            .max_message_size(size as usize);

        set(needed - 1);
        let err = options.create(&name).unwrap_err();
        match &err {
            Error::QueueBytesLimit {
                needed: said,
                in_use,
                limit,
                ..
            } => assert_eq!((*said, *in_use, *limit), (needed, None, needed - 1)),
            other => panic!("expected QueueBytesLimit, got {other:?}"),
        }
        let text = err.to_string();
        for part in [
            &format!("{}: create: ", object(&name)),
            "RLIMIT_MSGQUEUE",
            &format!("needs {needed} bytes"),
            "8 messages of 1024 bytes",
            &format!("may take {} bytes in all", needed - 1),
            "cannot be read",
            "ulimit -q",
        ] {
            assert!(text.contains(part), "{text:?} lacks {part:?}");
        }

        // Exactly the bytes said: the queue fits.
        set(needed);
        let queue = options.exclusive(true).create(&name).unwrap();
        assert!(queue.created());
        return;
    }
    let name = fresh_name();
    let _guard = Unlink(name.clone());
    let mut child = peer(
        "rlimit_msgqueue_refusal_names_the_rlimit_and_the_bytes",
        "limited",
        &name,
    );
    if util::is_root() {
        child.command().uid(RLIMIT_TEST_UID).gid(RLIMIT_TEST_UID);
    } else {
        println!("not root: the peer runs as this user, whose other queues may take some bytes");
    }
    child.spawn().wait_success();
}

#[test]
fn creator_does_not_unlink_a_queue_that_replaced_its_own() {
    if let Some(role) = util::role() {
        assert_eq!(role, "replacer");
        QueueOptions::new()
            .max_messages(1)
            .max_message_size(8)
            .mode(Mode::OWNER_RW)
            .exclusive(true)
            .create(&name_arg())
            .unwrap()
            .keep();
        return;
    }
    if !util::is_root() {
        util::skip("needs root to switch a peer to nobody");
        return;
    }
    let name = fresh_name();
    let _guard = Unlink(name.clone());
    let queue = small_queue(&name, 1, 16);
    assert!(queue.created());
    // The name is removed under the creating handle (as the bench's peer
    // does), and another user makes a queue there.
    posix_mq::unlink(&name).unwrap();
    let mut replacer = peer(
        "creator_does_not_unlink_a_queue_that_replaced_its_own",
        "replacer",
        &name,
    );
    util::as_nobody(&mut replacer);
    replacer.spawn().wait_success();
    // Dropping root's handle must not unlink nobody's queue.
    drop(queue);
    let other = Queue::open(&name).expect("nobody's queue is still there");
    assert_eq!(other.attributes().unwrap().max_message_size, 8);
    // While the creator's own queue is still under the name, drop unlinks it.
    drop(other);
    posix_mq::unlink(&name).unwrap();
    drop(small_queue(&name, 1, 16));
    assert_eq!(
        Queue::open(&name).unwrap_err().raw_os_error(),
        Some(libc::ENOENT)
    );
}

#[test]
fn create_without_sizes_takes_the_kernel_defaults() {
    if let Some(_role) = util::role() {
        let queue = QueueOptions::new()
            .access(Access::Read)
            .open(&name_arg())
            .unwrap();
        queue.recv_vec(Wait::For(HANG_GUARD)).unwrap();
        return;
    }
    let name = fresh_name();
    let queue = QueueOptions::new()
        .mode(Mode::OWNER_RW)
        .create(&name)
        .unwrap();
    assert!(queue.created());
    let attr = queue.attributes().unwrap();
    assert_eq!(
        (attr.max_messages as u64, attr.max_message_size as u64),
        (
            mqueue_limit("msg_default").min(mqueue_limit("msg_max")),
            mqueue_limit("msgsize_default").min(mqueue_limit("msgsize_max"))
        )
    );
    assert_eq!(queue.mode().unwrap().bits(), 0o600);
    queue.send(b"defaults").unwrap();
    peer(
        "create_without_sizes_takes_the_kernel_defaults",
        "reader",
        &name,
    )
    .spawn()
    .wait_success();
}

/// Polling mode: the descriptor turns non-blocking (a peer sees every
/// message sent meanwhile), every call fails at once while it lasts, and
/// waiting works again once it ends.
#[test]
fn polling_makes_the_descriptor_non_blocking_and_back() {
    const TEST: &str = "posix_mq::polling_makes_the_descriptor_non_blocking_and_back";
    let name = fresh_name();
    if let Some(role) = util::role() {
        assert_eq!(role, "sender");
        let name: PosixName = util::arg("name").parse().unwrap();
        let queue = QueueOptions::new()
            .access(Access::Write)
            .open(&name)
            .unwrap();
        queue.set_polling(true).unwrap();
        for i in 0..3u8 {
            queue.send_tagged(&[i], Tag::None, Wait::Never).unwrap();
        }
        // Full: a plain non-blocking mq_send refuses, whatever the wait.
        assert!(matches!(
            queue.send_tagged(b"x", Tag::None, Wait::Forever),
            Err(Error::Full { .. })
        ));
        return;
    }
    let queue = QueueOptions::new()
        .max_messages(3)
        .max_message_size(8)
        .create(&name)
        .unwrap();
    util::Peer::new(TEST, "sender")
        .arg("name", name.as_str())
        .spawn()
        .wait_success();
    queue.set_polling(true).unwrap();
    assert!(queue.attributes().unwrap().nonblocking);
    let mut buf = [0u8; 8];
    for i in 0..3u8 {
        let got = queue.recv_into(&mut buf, Wait::Never).unwrap();
        assert_eq!(&buf[..got.len], &[i]);
    }
    assert!(matches!(
        queue.recv_into(&mut buf, Wait::Forever),
        Err(Error::Empty { .. })
    ));
    queue.set_polling(false).unwrap();
    assert!(!queue.attributes().unwrap().nonblocking);
    let began = Instant::now();
    let err = queue
        .recv_into(&mut buf, Wait::For(Duration::from_millis(50)))
        .unwrap_err();
    assert!(matches!(err, Error::TimedOut { .. }), "{err}");
    assert!(began.elapsed() >= Duration::from_millis(50));
}
