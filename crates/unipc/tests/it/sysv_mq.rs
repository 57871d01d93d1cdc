//! System V message queues between real processes.
//!
//! The parent creates each queue (its handle removes the queue on drop, so
//! a failing test leaves nothing in `ipcs -q`) and passes the key to peers,
//! which open it by key. Keys carry 0x75 in the top byte, then this
//! process's pid and a counter; queues are created exclusively, so a
//! collision fails loudly instead of sharing a queue.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fmt::Debug;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use unipc::message::sysv_mq::{self, Queue, QueueOptions, RecvOptions, Select};
use unipc::message::{Messenger, Tag, Wait};
use unipc::name::SysvKey;
use unipc::Mode;
use unipc::{Error, Result};

use crate::util;

/// A hang guard for waits that should end at once, far above any real cost.
const HANG_GUARD: Duration = Duration::from_secs(10);

fn unique_key() -> SysvKey {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    SysvKey::Key(((0x75 << 24) | ((pid & 0xffff) << 8) | (n & 0xff)) as i32)
}

fn create_with(options: QueueOptions) -> (Queue, SysvKey) {
    let key = unique_key();
    let queue = options
        .exclusive(true)
        .create(key)
        .unwrap_or_else(|err| panic!("create {key}: {err}"));
    assert!(queue.created());
    (queue, key)
}

fn create() -> (Queue, SysvKey) {
    create_with(QueueOptions::new())
}

/// A peer of `test` in `role`, told the key.
fn peer(test: &str, role: &str, key: SysvKey) -> util::Peer {
    util::Peer::new(&format!("sysv_mq::{test}"), role).arg("key", key.to_string())
}

/// The key the parent passed.
fn key_arg() -> SysvKey {
    util::arg("key").parse().expect("key argument")
}

/// Opens the queue whose key the parent passed.
fn open_arg() -> Queue {
    QueueOptions::new()
        .open(key_arg())
        .unwrap_or_else(|err| panic!("peer open: {err}"))
}

fn proc_limit(name: &str) -> usize {
    let path = format!("/proc/sys/kernel/{name}");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("{path}: {err}"))
        .trim()
        .parse()
        .expect("a number")
}

fn msgmax() -> usize {
    proc_limit("msgmax")
}

fn msgmnb() -> usize {
    proc_limit("msgmnb")
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn expect_err<T: Debug>(result: Result<T>, what: &str) -> Error {
    match result {
        Ok(value) => panic!("{what}: expected an error, got Ok({value:?})"),
        Err(err) => err,
    }
}

fn assert_text(err: &Error, parts: &[&str]) {
    let text = err.to_string();
    for part in parts {
        assert!(text.contains(part), "{text:?} lacks {part:?}");
    }
}

/// Receives the next message `select` picks, without waiting.
fn take(queue: &Queue, select: Select) -> Result<(i64, Vec<u8>)> {
    let mut buf = vec![0; msgmax()];
    let got = queue.recv_select(select, &mut buf, Wait::Never)?;
    buf.truncate(got.len);
    match got.tag {
        Tag::Type(ty) => Ok((ty, buf)),
        other => panic!("a System V message came back with {other:?}"),
    }
}

/// Waits until some thread of the peer sleeps in the kernel function
/// `function` (`/proc/PID/task/*/wchan`), so the parent acts while the peer
/// is really blocked. Where wchan shows no names, waits 2 s instead.
fn wait_blocked_in(peer: &mut util::Running, function: &str) {
    let pid = peer.pid();
    let started = Instant::now();
    loop {
        if let Some(status) = peer.child.try_wait().expect("try_wait") {
            panic!("peer {pid} exited with {status:?} before blocking in {function}");
        }
        let mut named = false;
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for task in tasks.flatten() {
                let wchan = std::fs::read_to_string(task.path().join("wchan")).unwrap_or_default();
                if wchan == function {
                    return;
                }
                named |= !wchan.is_empty() && wchan != "0";
            }
        }
        if !named && started.elapsed() > Duration::from_secs(2) {
            eprintln!(
                "/proc/{pid}/task/*/wchan names no kernel functions here; \
                 assuming the peer is blocked in {function} after 2 s"
            );
            return;
        }
        assert!(
            started.elapsed() < util::WATCHDOG,
            "peer {pid} never blocked in {function}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Whether this process holds CAP_SYS_RESOURCE, which lifts msgmnb.
fn has_sys_resource() -> bool {
    const CAP_SYS_RESOURCE: u32 = 24;
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let effective = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .expect("CapEff line");
    let bits = u64::from_str_radix(effective.trim(), 16).expect("hex capabilities");
    bits & (1 << CAP_SYS_RESOURCE) != 0
}

fn skip_unless_root() -> bool {
    if util::is_root() {
        return false;
    }
    util::skip("needs root to switch a peer to nobody");
    true
}

/// Lines of /proc/sysvipc/msg whose owner is `uid`.
fn queues_owned_by(uid: u32) -> usize {
    std::fs::read_to_string("/proc/sysvipc/msg")
        .expect("/proc/sysvipc/msg")
        .lines()
        .skip(1)
        .filter(|line| line.split_whitespace().nth(7) == Some(&uid.to_string()))
        .count()
}

#[test]
fn boundaries_and_types_are_kept() {
    let sizes = [0, 1, 7, 8, 9, 255, 4096, msgmax()];
    if let Some(role) = util::role() {
        assert_eq!(role, "sender");
        let queue = open_arg();
        for (i, &size) in sizes.iter().enumerate() {
            queue
                .send_typed(i as i64 + 10, &pattern(size, i as u8), Wait::Forever)
                .unwrap();
        }
        return;
    }
    let (queue, key) = create();
    let sender = peer("boundaries_and_types_are_kept", "sender", key).spawn();
    for (i, &size) in sizes.iter().enumerate() {
        // Blocking receive through the trait: the sender may still be sending.
        let (bytes, tag) = queue.recv_vec(Wait::For(util::WATCHDOG)).unwrap();
        assert_eq!(tag, Tag::Type(i as i64 + 10), "message {i}");
        assert_eq!(bytes.len(), size, "message {i}");
        assert_eq!(bytes, pattern(size, i as u8), "message {i}");
    }
    sender.wait_success();
    assert_eq!(queue.stat().unwrap().messages, 0);
}

#[test]
fn each_selection_mode_picks_its_message() {
    if let Some(role) = util::role() {
        assert_eq!(role, "sender");
        let queue = open_arg();
        for (ty, text) in [(3, "a"), (1, "b"), (2, "c"), (3, "d"), (1, "e"), (5, "f")] {
            queue.send_typed(ty, text.as_bytes(), Wait::Never).unwrap();
        }
        return;
    }
    let (queue, key) = create();
    peer("each_selection_mode_picks_its_message", "sender", key)
        .spawn()
        .wait_success();
    let expect = |select: Select, ty: i64, text: &str| {
        let got = take(&queue, select).unwrap_or_else(|err| panic!("{select:?}: {err}"));
        assert_eq!(got, (ty, text.as_bytes().to_vec()), "{select:?}");
    };
    // Queue: a3 b1 c2 d3 e1 f5.
    expect(Select::Exactly(3), 3, "a");
    // Lowest type first, oldest within it.
    expect(Select::AtMost(2), 1, "b");
    // Queue: c2 d3 e1 f5; the oldest not of type 1.
    expect(Select::Except(1), 2, "c");
    // Queue: d3 e1 f5; type 1 beats the older type 3.
    expect(Select::AtMost(5), 1, "e");
    for select in [Select::Exactly(4), Select::AtMost(2)] {
        let err = expect_err(take(&queue, select), "no match");
        assert!(matches!(err, Error::Empty { .. }), "{select:?}: {err}");
    }
    // Queue: d3 f5.
    expect(Select::Any, 3, "d");
    let err = expect_err(take(&queue, Select::Except(5)), "only type 5 left");
    assert!(matches!(err, Error::Empty { .. }), "{err}");
    expect(Select::Any, 5, "f");
    assert_eq!(queue.stat().unwrap().messages, 0);
}

#[test]
fn nonblocking_send_is_full_at_max_bytes_and_receive_empty() {
    if let Some(role) = util::role() {
        assert_eq!(role, "filler");
        let queue = open_arg();
        let err = expect_err(take(&queue, Select::Any), "empty queue");
        assert!(matches!(err, Error::Empty { .. }), "{err}");
        assert_text(&err, &[&key_arg().to_string(), "empty"]);
        let mut sent = 0;
        let full = loop {
            match queue.send_typed(1, &pattern(100, sent), Wait::Never) {
                Ok(()) => sent += 1,
                Err(err) => break err,
            }
            assert!(sent <= 10, "sent more than max_bytes allows");
        };
        assert!(matches!(full, Error::Full { .. }), "{full}");
        assert_text(
            &full,
            &[&key_arg().to_string(), "full; the message was not sent"],
        );
        assert_eq!(sent, 10);
        return;
    }
    let (queue, key) = create_with(QueueOptions::new().max_bytes(1000));
    peer(
        "nonblocking_send_is_full_at_max_bytes_and_receive_empty",
        "filler",
        key,
    )
    .spawn()
    .wait_success();
    let stat = queue.stat().unwrap();
    assert_eq!(
        (stat.messages, stat.bytes, stat.max_bytes),
        (10, 1000, 1000)
    );
    for seed in 0..10 {
        assert_eq!(take(&queue, Select::Any).unwrap(), (1, pattern(100, seed)));
    }
    let err = expect_err(take(&queue, Select::Any), "drained");
    assert!(matches!(err, Error::Empty { .. }), "{err}");
}

#[test]
fn zero_length_messages_are_counted_against_max_bytes() {
    if let Some(role) = util::role() {
        assert_eq!(role, "filler");
        let queue = open_arg();
        for _ in 0..4 {
            queue.send_typed(1, b"", Wait::Never).unwrap();
        }
        // No bytes are used, but the kernel holds at most msg_qbytes messages.
        let err = expect_err(queue.send_typed(1, b"", Wait::Never), "fifth");
        assert!(matches!(err, Error::Full { .. }), "{err}");
        return;
    }
    let (queue, key) = create_with(QueueOptions::new().max_bytes(4));
    peer(
        "zero_length_messages_are_counted_against_max_bytes",
        "filler",
        key,
    )
    .spawn()
    .wait_success();
    let stat = queue.stat().unwrap();
    assert_eq!((stat.messages, stat.bytes), (4, 0));
    assert_eq!(take(&queue, Select::Any).unwrap(), (1, Vec::new()));
}

#[test]
fn timed_calls_time_out() {
    let timeout = Duration::from_millis(300);
    if let Some(role) = util::role() {
        assert_eq!(role, "waiter");
        let queue = open_arg();
        let mut buf = [0; 16];
        let started = Instant::now();
        let err = expect_err(
            queue.recv_select(Select::Exactly(2), &mut buf, Wait::For(timeout)),
            "timed receive",
        );
        let waited = started.elapsed();
        assert!(matches!(err, Error::TimedOut { .. }), "{err}");
        assert_text(&err, &[&key_arg().to_string(), "timed out after 300ms"]);
        assert!(waited >= timeout, "returned after {waited:?}");
        assert!(waited < HANG_GUARD, "returned after {waited:?}");

        let started = Instant::now();
        let err = expect_err(
            queue.send_typed(2, b"x", Wait::For(timeout)),
            "timed send to a full queue",
        );
        let waited = started.elapsed();
        assert!(matches!(err, Error::TimedOut { .. }), "{err}");
        assert!(waited >= timeout, "returned after {waited:?}");
        assert!(waited < HANG_GUARD, "returned after {waited:?}");
        return;
    }
    let (queue, key) = create_with(QueueOptions::new().max_bytes(16));
    queue.send_typed(1, &[7; 16], Wait::Never).unwrap();
    peer("timed_calls_time_out", "waiter", key)
        .spawn()
        .wait_success();
    // The timed-out send left nothing behind; the filler is intact.
    let stat = queue.stat().unwrap();
    assert_eq!((stat.messages, stat.bytes), (1, 16));
    assert_eq!(take(&queue, Select::Any).unwrap(), (1, vec![7; 16]));
}

#[test]
fn timed_receive_gets_a_message_sent_while_it_waits() {
    if let Some(role) = util::role() {
        assert_eq!(role, "waiter");
        let queue = open_arg();
        let mut buf = [0; 16];
        let got = queue
            .recv_select(Select::Exactly(7), &mut buf, Wait::For(util::WATCHDOG))
            .unwrap();
        assert_eq!(&buf[..got.len], b"late");
        assert_eq!(got.tag, Tag::Type(7));
        return;
    }
    let (queue, key) = create();
    let mut waiter = peer(
        "timed_receive_gets_a_message_sent_while_it_waits",
        "waiter",
        key,
    )
    .spawn();
    // The poll loop sleeps between attempts.
    wait_blocked_in(&mut waiter, "hrtimer_nanosleep");
    queue.send_typed(7, b"late", Wait::Never).unwrap();
    waiter.wait_success();
}

#[test]
fn blocking_receive_wakes_on_send() {
    if let Some(role) = util::role() {
        assert_eq!(role, "receiver");
        let queue = open_arg();
        let (bytes, tag) = queue.recv_vec(Wait::Forever).unwrap();
        assert_eq!((bytes.as_slice(), tag), (&b"wake up"[..], Tag::Type(3)));
        // "/proc/thread-self" links to "PID/task/TID".
        let link = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
        let tid = link.file_name().expect("a thread id").to_string_lossy();
        println!("tid {tid}");
        return;
    }
    let (queue, key) = create();
    let mut receiver = peer("blocking_receive_wakes_on_send", "receiver", key)
        .capture_stdout()
        .spawn();
    wait_blocked_in(&mut receiver, "do_msgrcv");
    queue.send_typed(3, b"wake up", Wait::Never).unwrap();
    let pid = receiver.pid();
    let (status, stdout) = receiver.wait_stdout();
    assert!(status.success(), "receiver failed: {status:?}");
    let tid: u32 = String::from_utf8(stdout)
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("tid "))
        .expect("the receiver's thread id")
        .parse()
        .unwrap();
    // Handed straight to a waiting receiver, the kernel records the
    // receiving thread's id rather than its process id.
    let last = queue.stat().unwrap().last_receiver;
    assert!(
        last == Some(tid) || last == Some(pid),
        "last receiver {last:?}, peer pid {pid}, thread {tid}"
    );
}

#[test]
fn blocking_send_wakes_when_room_is_made() {
    if let Some(role) = util::role() {
        assert_eq!(role, "sender");
        let queue = open_arg();
        queue.send_typed(2, b"next", Wait::Forever).unwrap();
        return;
    }
    let (queue, key) = create_with(QueueOptions::new().max_bytes(8));
    queue.send_typed(1, b"12345678", Wait::Never).unwrap();
    let mut sender = peer("blocking_send_wakes_when_room_is_made", "sender", key).spawn();
    wait_blocked_in(&mut sender, "do_msgsnd");
    assert_eq!(queue.stat().unwrap().messages, 1);
    assert_eq!(
        take(&queue, Select::Any).unwrap(),
        (1, b"12345678".to_vec())
    );
    let pid = sender.pid();
    sender.wait_success();
    assert_eq!(take(&queue, Select::Any).unwrap(), (2, b"next".to_vec()));
    assert_eq!(queue.stat().unwrap().last_sender, Some(pid));
}

#[test]
fn removal_wakes_every_waiter_with_removed() {
    if let Some(role) = util::role() {
        let queue = open_arg();
        let mut buf = [0; 16];
        let result = match role.as_str() {
            "receiver" => queue
                .recv_select(Select::Exactly(2), &mut buf, Wait::Forever)
                .map(drop),
            "sender" => queue.send_typed(2, b"no room", Wait::Forever),
            "timed" => queue
                .recv_select(
                    Select::Exactly(2),
                    &mut buf,
                    Wait::For(Duration::from_secs(25)),
                )
                .map(drop),
            other => panic!("unknown role {other}"),
        };
        let err = expect_err(result, &role);
        assert!(matches!(err, Error::Removed { .. }), "{role}: {err}");
        assert_text(
            &err,
            &[&key_arg().to_string(), "removed while waiting on it"],
        );
        return;
    }
    let (queue, key) = create_with(QueueOptions::new().max_bytes(8));
    queue.send_typed(1, b"full-up!", Wait::Never).unwrap();
    let test = "removal_wakes_every_waiter_with_removed";
    let mut receiver = peer(test, "receiver", key).spawn();
    let mut sender = peer(test, "sender", key).spawn();
    let mut timed = peer(test, "timed", key).spawn();
    wait_blocked_in(&mut receiver, "do_msgrcv");
    wait_blocked_in(&mut sender, "do_msgsnd");
    wait_blocked_in(&mut timed, "hrtimer_nanosleep");
    queue.remove().unwrap();
    for waiter in [receiver, sender, timed] {
        // A peer that still hung would be killed by the watchdog and fail.
        waiter.wait_success();
    }
    let err = expect_err(queue.stat(), "stat after remove");
    assert!(matches!(err, Error::Removed { .. }), "{err}");
    assert!(
        QueueOptions::new().open(key).is_err(),
        "the key is free again"
    );
}

#[test]
fn oversize_is_refused_before_sending() {
    if let Some(role) = util::role() {
        assert_eq!(role, "sender");
        let queue = open_arg();
        let max = msgmax();
        let err = expect_err(
            queue.send_typed(1, &vec![0; max + 1], Wait::Forever),
            "above msgmax",
        );
        assert!(matches!(err, Error::MessageTooLarge { .. }), "{err}");
        assert_text(
            &err,
            &[
                &key_arg().to_string(),
                &format!(
                    "message of {} bytes exceeds the limit of {max} bytes",
                    max + 1
                ),
            ],
        );
        // Above msg_qbytes the kernel would block forever (or say EAGAIN
        // forever): every wait mode reports the size instead.
        for wait in [Wait::Forever, Wait::Never, Wait::For(util::WATCHDOG)] {
            let err = expect_err(queue.send_typed(1, &[0; 101], wait), "above msg_qbytes");
            assert!(
                matches!(err, Error::MessageTooLarge { .. }),
                "{wait:?}: {err}"
            );
            assert_text(
                &err,
                &["message of 101 bytes exceeds the limit of 100 bytes"],
            );
        }
        assert_eq!(queue.limits().unwrap().max_message_size, 100);
        queue.send_typed(1, &[1; 100], Wait::Never).unwrap();
        return;
    }
    let (queue, key) = create_with(QueueOptions::new().max_bytes(100));
    peer("oversize_is_refused_before_sending", "sender", key)
        .spawn()
        .wait_success();
    let stat = queue.stat().unwrap();
    assert_eq!((stat.messages, stat.bytes), (1, 100));
}

#[test]
fn short_buffer_is_refused_and_the_message_stays() {
    if let Some(role) = util::role() {
        assert_eq!(role, "receiver");
        let queue = open_arg();
        let mut small = [0; 10];
        for wait in [Wait::Never, Wait::Forever, Wait::For(util::WATCHDOG)] {
            let err = expect_err(
                queue.recv_select(Select::Any, &mut small, wait),
                "short buffer",
            );
            assert!(
                matches!(err, Error::BufferTooSmall { .. }),
                "{wait:?}: {err}"
            );
            assert_text(
                &err,
                &[
                    &key_arg().to_string(),
                    "receive buffer of 10 bytes is smaller than the message",
                ],
            );
        }
        return;
    }
    let (queue, key) = create();
    queue.send_typed(4, &pattern(100, 9), Wait::Never).unwrap();
    peer(
        "short_buffer_is_refused_and_the_message_stays",
        "receiver",
        key,
    )
    .spawn()
    .wait_success();
    let stat = queue.stat().unwrap();
    assert_eq!((stat.messages, stat.bytes), (1, 100));
    assert_eq!(take(&queue, Select::Any).unwrap(), (4, pattern(100, 9)));
}

#[test]
fn truncation_happens_only_when_asked() {
    if let Some(role) = util::role() {
        assert_eq!(role, "sender");
        let queue = open_arg();
        queue.send_typed(6, &pattern(100, 3), Wait::Never).unwrap();
        queue.send_typed(6, &pattern(100, 4), Wait::Never).unwrap();
        return;
    }
    let (queue, key) = create();
    peer("truncation_happens_only_when_asked", "sender", key)
        .spawn()
        .wait_success();
    let mut buf = [0; 10];
    let refused = queue.recv_with(&mut buf, RecvOptions::new().wait(Wait::Never));
    assert!(matches!(refused, Err(Error::BufferTooSmall { .. })));
    let got = queue
        .recv_with(
            &mut buf,
            RecvOptions::new().wait(Wait::Never).truncate(true),
        )
        .unwrap();
    assert_eq!((got.len, got.tag), (10, Tag::Type(6)));
    assert_eq!(buf[..], pattern(100, 3)[..10]);
    // The tail was discarded with the message; the next one is whole.
    let stat = queue.stat().unwrap();
    assert_eq!((stat.messages, stat.bytes), (1, 100));
    assert_eq!(take(&queue, Select::Any).unwrap(), (6, pattern(100, 4)));
}

/// `struct msgbuf` as a C program declares it.
#[repr(C)]
struct CMessage {
    mtype: libc::c_long,
    mtext: [u8; 64],
}

#[test]
fn interoperates_with_the_c_message_layout() {
    if let Some(role) = util::role() {
        assert_eq!(role, "c");
        // The peer uses nothing but the raw calls, as a C program would.
        // SAFETY: msgget takes no pointers.
        let id = unsafe { libc::msgget(key_arg().raw(), 0) };
        assert!(id >= 0, "msgget: {}", std::io::Error::last_os_error());
        let mut msg = CMessage {
            mtype: 0,
            mtext: [0; 64],
        };
        // SAFETY: `msg` is a live struct msgbuf with 64 bytes of text, the
        // size passed, and is written only during the call.
        let len = unsafe { libc::msgrcv(id, (&mut msg as *mut CMessage).cast(), 64, 5, 0) };
        assert!(len >= 0, "msgrcv: {}", std::io::Error::last_os_error());
        assert_eq!(msg.mtype, 5);
        assert_eq!(&msg.mtext[..len as usize], b"from unipc");

        let text = b"from the C layout";
        let mut reply = CMessage {
            mtype: 6,
            mtext: [0; 64],
        };
        reply.mtext[..text.len()].copy_from_slice(text);
        // SAFETY: `reply` is a live struct msgbuf holding at least
        // `text.len()` bytes of text; msgsnd only reads it during the call.
        let sent = unsafe {
            libc::msgsnd(
                id,
                (&reply as *const CMessage).cast(),
                text.len(),
                libc::IPC_NOWAIT,
            )
        };
        assert_eq!(sent, 0, "msgsnd: {}", std::io::Error::last_os_error());
        return;
    }
    let (queue, key) = create();
    let c = peer("interoperates_with_the_c_message_layout", "c", key).spawn();
    queue.send_typed(5, b"from unipc", Wait::Never).unwrap();
    c.wait_success();
    assert_eq!(
        take(&queue, Select::Any).unwrap(),
        (6, b"from the C layout".to_vec())
    );
}

#[test]
fn stat_reports_counts_pids_times_and_owner() {
    if let Some(role) = util::role() {
        let queue = open_arg();
        match role.as_str() {
            "sender" => {
                for size in [10, 20, 30] {
                    queue.send_typed(1, &pattern(size, 0), Wait::Never).unwrap();
                }
            }
            "receiver" => {
                take(&queue, Select::Any).unwrap();
            }
            other => panic!("unknown role {other}"),
        }
        return;
    }
    let before = SystemTime::now() - Duration::from_secs(2);
    let (queue, key) = create_with(QueueOptions::new().mode(Mode::OWNER_RW_GROUP_R));
    let fresh = queue.stat().unwrap();
    assert_eq!((fresh.messages, fresh.bytes), (0, 0));
    assert_eq!((fresh.last_sender, fresh.last_receiver), (None, None));
    assert_eq!((fresh.last_send, fresh.last_receive), (None, None));

    let test = "stat_reports_counts_pids_times_and_owner";
    let sender = peer(test, "sender", key).spawn();
    let sender_pid = sender.pid();
    sender.wait_success();
    let stat = queue.stat().unwrap();
    assert_eq!(stat.key, key);
    assert_eq!((stat.messages, stat.bytes), (3, 60));
    assert_eq!(stat.max_bytes as usize, msgmnb());
    assert_eq!(stat.last_sender, Some(sender_pid));
    assert_eq!(stat.last_receiver, None);
    let sent_at = stat.last_send.expect("a send time");
    assert!(sent_at >= before && sent_at <= SystemTime::now() + Duration::from_secs(2));
    assert!(stat.changed >= before);
    let euid = rustix::process::geteuid().as_raw();
    let egid = rustix::process::getegid().as_raw();
    assert_eq!((stat.uid, stat.creator_uid), (euid, euid));
    assert_eq!((stat.gid, stat.creator_gid), (egid, egid));
    assert_eq!(stat.mode.bits(), 0o640);

    let receiver = peer(test, "receiver", key).spawn();
    let receiver_pid = receiver.pid();
    receiver.wait_success();
    let stat = queue.stat().unwrap();
    assert_eq!((stat.messages, stat.bytes), (2, 50));
    assert_eq!(stat.last_receiver, Some(receiver_pid));
    assert_eq!(stat.last_sender, Some(sender_pid));
    assert!(stat.last_receive.is_some());

    take(&queue, Select::Any).unwrap();
    assert_eq!(
        queue.stat().unwrap().last_receiver,
        Some(std::process::id())
    );
}

#[test]
fn ipc_set_changes_mode_and_max_bytes() {
    if let Some(role) = util::role() {
        match role.as_str() {
            "reader" => {
                let stat = open_arg().stat().unwrap();
                assert_eq!((stat.mode.bits(), stat.max_bytes), (0o644, 4096));
                assert_eq!(open_arg().limits().unwrap().max_message_size, 4096);
            }
            "nobody" => {
                // Not the owner: IPC_SET is refused whatever is asked.
                let queue = open_arg();
                let err = expect_err(queue.set_mode(Mode::ALL_RW), "stranger set_mode");
                assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
                assert_text(&err, &[&key_arg().to_string(), "set", "lacks permission"]);
                let err = expect_err(queue.set_max_bytes(10), "stranger set_max_bytes");
                assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");

                // An owner without CAP_SYS_RESOURCE stops at msgmnb.
                let mnb = msgmnb();
                assert_eq!(queues_owned_by(util::NOBODY.0), 0);
                let err = expect_err(
                    QueueOptions::new()
                        .max_bytes(mnb + 1)
                        .create(SysvKey::Private),
                    "create above msgmnb",
                );
                assert!(matches!(err, Error::LimitExceeded { .. }), "{err}");
                assert_eq!(
                    queues_owned_by(util::NOBODY.0),
                    0,
                    "the refused queue was removed"
                );
                let own = QueueOptions::new().create(SysvKey::Private).unwrap();
                own.set_max_bytes(mnb).unwrap();
                let err = expect_err(own.set_max_bytes(mnb + 1), "above msgmnb");
                assert!(matches!(err, Error::LimitExceeded { .. }), "{err}");
                assert_text(
                    &err,
                    &[
                        &format!("max bytes {} exceeds the system limit of {mnb}", mnb + 1),
                        "/proc/sys/kernel/msgmnb",
                    ],
                );
                assert_eq!(own.stat().unwrap().max_bytes as usize, mnb);
            }
            other => panic!("unknown role {other}"),
        }
        return;
    }
    let (queue, key) = create();
    queue.set_mode(Mode::OWNER_RW_ALL_R).unwrap();
    queue.set_max_bytes(4096).unwrap();
    let test = "ipc_set_changes_mode_and_max_bytes";
    peer(test, "reader", key).spawn().wait_success();

    if !skip_unless_root() {
        let mut nobody = peer(test, "nobody", key);
        util::as_nobody(&mut nobody);
        nobody.spawn().wait_success();
    }
    // Only CAP_SYS_RESOURCE goes past msgmnb; root in a container may lack it.
    let past = queue.set_max_bytes(msgmnb() * 2);
    if has_sys_resource() {
        past.unwrap();
        assert_eq!(queue.stat().unwrap().max_bytes as usize, msgmnb() * 2);
    } else {
        let err = expect_err(past, "past msgmnb without CAP_SYS_RESOURCE");
        assert!(matches!(err, Error::LimitExceeded { .. }), "{err}");
        assert_eq!(queue.stat().unwrap().max_bytes, 4096);
    }
    let stat = queue.stat().unwrap();
    assert_eq!(stat.mode.bits(), 0o644);
    // A mode beyond 0o777 is refused before it can reach the queue.
    let err = Mode::new(0o1644).unwrap_err();
    assert_text(&err, &["0o1644", "0o777"]);
    assert_eq!(queue.stat().unwrap().mode, Mode::OWNER_RW_ALL_R);
}

#[test]
fn exclusive_create_refuses_a_taken_key() {
    if let Some(role) = util::role() {
        assert_eq!(role, "second");
        let key = key_arg();
        let err = expect_err(
            QueueOptions::new().exclusive(true).create(key),
            "exclusive create on a taken key",
        );
        assert_eq!(err.raw_os_error(), Some(libc::EEXIST), "{err}");
        assert_text(&err, &[&format!("sysv-mq:{key}: create"), "already exists"]);
        // Not exclusive: opens the existing queue, as an opener.
        let queue = QueueOptions::new().create(key).unwrap();
        assert!(!queue.created());
        queue.send_typed(1, b"still here", Wait::Never).unwrap();
        // Dropping an opener leaves the queue.
        return;
    }
    let (queue, key) = create();
    peer("exclusive_create_refuses_a_taken_key", "second", key)
        .spawn()
        .wait_success();
    assert_eq!(
        take(&queue, Select::Any).unwrap(),
        (1, b"still here".to_vec())
    );
}

/// Removes the queue under a key, if any, when dropped: for queues a peer
/// creates and keeps.
struct RemoveOnDrop(SysvKey);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Ok(queue) = QueueOptions::new().open(self.0) {
            let _ = queue.remove();
        }
    }
}

#[test]
fn the_mode_asked_is_the_mode_set_whatever_the_umask() {
    if let Some(role) = util::role() {
        assert_eq!(role, "creator");
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o777));
        let queue = QueueOptions::new()
            .mode(Mode::ALL_RW)
            .exclusive(true)
            .keep()
            .create(key_arg())
            .unwrap();
        assert!(queue.created());
        // Kept: dropping the creator's handle leaves the queue.
        return;
    }
    let key = unique_key();
    let _guard = RemoveOnDrop(key);
    peer(
        "the_mode_asked_is_the_mode_set_whatever_the_umask",
        "creator",
        key,
    )
    .spawn()
    .wait_success();
    let queue = QueueOptions::new().open(key).expect("the kept queue");
    assert!(!queue.created());
    assert_eq!(queue.stat().unwrap().mode, Mode::ALL_RW);
    queue.remove().unwrap();
}

#[test]
fn missing_keys_and_bad_input_are_refused_with_reasons() {
    if let Some(role) = util::role() {
        assert_eq!(role, "refused");
        let gone = key_arg();
        let err = expect_err(QueueOptions::new().open(gone), "open a removed key");
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
        assert_text(
            &err,
            &[&format!("sysv-mq:{gone}: open"), "no queue has this key"],
        );

        let queue = QueueOptions::new()
            .open(util::arg("live").parse().unwrap())
            .unwrap();
        for ty in [0, -1, i64::MIN] {
            let err = expect_err(queue.send_typed(ty, b"x", Wait::Never), "bad type");
            assert!(matches!(err, Error::Unsupported { .. }), "{err}");
            assert_text(&err, &[&format!("message type {ty}"), "from 1 to"]);
        }
        let mut buf = [0; 8];
        for select in [
            Select::Exactly(0),
            Select::AtMost(0),
            Select::AtMost(i64::MIN),
            Select::Except(-3),
        ] {
            let err = expect_err(
                queue.recv_select(select, &mut buf, Wait::Never),
                "bad select",
            );
            assert!(
                matches!(err, Error::Unsupported { .. }),
                "{select:?}: {err}"
            );
            assert_text(&err, &["type", "from 1 to"]);
        }
        // Refused before the call: the queue got nothing and lost nothing.
        assert_eq!(queue.stat().unwrap().messages, 1);
        assert!(queue
            .send_tagged(b"x", Tag::Priority(1), Wait::Never)
            .is_err());
        return;
    }
    let gone = {
        let (queue, key) = create();
        queue.remove().unwrap();
        key
    };
    let (live, live_key) = create();
    live.send_typed(1, b"keep", Wait::Never).unwrap();
    peer(
        "missing_keys_and_bad_input_are_refused_with_reasons",
        "refused",
        gone,
    )
    .arg("live", live_key.to_string())
    .spawn()
    .wait_success();
    assert_eq!(live.stat().unwrap().messages, 1);

    // Bad input that never reaches a queue.
    let err = expect_err(QueueOptions::new().open(SysvKey::Private), "open private");
    assert_text(&err, &["sysv-mq:private", "open it by its identifier"]);
    let err = "4700".parse::<Mode>().unwrap_err();
    assert_text(&err, &["permission mode", "4700", "0o777"]);
    let err = expect_err("0".parse::<SysvKey>(), "key 0");
    assert_text(&err, &["IPC_PRIVATE"]);
    assert!("sysv-mq:nope".parse::<unipc::Endpoint>().is_err());
    let err = expect_err(Queue::open_id(-1), "negative id");
    assert_text(&err, &["identifier", "negative"]);
    let err = expect_err(sysv_mq::ftok("/", 0), "ftok id 0");
    assert_text(&err, &["ftok project id", "1 to 255"]);
    let err = expect_err(sysv_mq::ftok("", 1), "ftok empty path");
    assert_text(&err, &["is empty"]);
}

#[test]
fn permission_is_refused_to_other_users_by_mode() {
    if let Some(role) = util::role() {
        let queue = open_arg();
        let object = key_arg().to_string();
        match role.as_str() {
            "refused" => {
                let err = expect_err(queue.send_typed(1, b"x", Wait::Never), "send");
                assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{err}");
                assert_text(
                    &err,
                    &[
                        &format!("sysv-mq:{object}: send: permission denied"),
                        "lacks permission; check the object's owner and mode",
                    ],
                );
                let err = expect_err(take(&queue, Select::Any), "receive");
                assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{err}");
                assert_text(&err, &["receive: permission denied"]);
                let err = expect_err(queue.stat(), "stat");
                assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{err}");
                let err = expect_err(queue.remove(), "remove");
                assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
                assert_text(&err, &["remove: operation not permitted"]);
            }
            "allowed" => {
                assert_eq!(take(&queue, Select::Any).unwrap(), (1, b"secret".to_vec()));
                queue.send_typed(2, b"from nobody", Wait::Never).unwrap();
            }
            other => panic!("unknown role {other}"),
        }
        return;
    }
    let test = "permission_is_refused_to_other_users_by_mode";
    if skip_unless_root() {
        return;
    }
    let (queue, key) = create_with(QueueOptions::new().mode(Mode::OWNER_RW));
    queue.send_typed(1, b"secret", Wait::Never).unwrap();
    let mut refused = peer(test, "refused", key);
    util::as_nobody(&mut refused);
    refused.spawn().wait_success();
    let stat = queue.stat().unwrap();
    assert_eq!(stat.messages, 1, "nobody neither sent nor received");

    // The same user is let in once the mode grants others read and write.
    queue.set_mode(Mode::new(0o606).unwrap()).unwrap();
    let mut allowed = peer(test, "allowed", key);
    util::as_nobody(&mut allowed);
    allowed.spawn().wait_success();
    assert_eq!(
        take(&queue, Select::Any).unwrap(),
        (2, b"from nobody".to_vec())
    );
}

#[test]
fn ftok_keys_agree_across_processes_and_with_libc() {
    if let Some(role) = util::role() {
        assert_eq!(role, "opener");
        let key = sysv_mq::ftok(util::arg("path"), b'f').unwrap();
        let queue = QueueOptions::new().open(key).unwrap();
        queue.send_typed(1, b"met by ftok", Wait::Never).unwrap();
        return;
    }
    let dir = util::TempDir::new();
    let path = dir.join("rendezvous");
    std::fs::write(&path, b"").unwrap();
    let key = sysv_mq::ftok(&path, b'f').unwrap();
    let c_path = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c_path` is a live NUL-terminated string; ftok only reads it.
    let c_key = unsafe { libc::ftok(c_path.as_ptr(), b'f' as libc::c_int) };
    assert_eq!(key.raw(), c_key, "the C library's ftok agrees");
    assert_ne!(key, sysv_mq::ftok(&path, b'g').unwrap());

    let queue = QueueOptions::new()
        .exclusive(true)
        .create(key)
        .unwrap_or_else(|err| panic!("{err}"));
    peer(
        "ftok_keys_agree_across_processes_and_with_libc",
        "opener",
        key,
    )
    .arg("path", &path)
    .spawn()
    .wait_success();
    assert_eq!(
        take(&queue, Select::Any).unwrap(),
        (1, b"met by ftok".to_vec())
    );

    let missing = dir.join("missing");
    let err = expect_err(sysv_mq::ftok(&missing, b'f'), "ftok of a missing file");
    assert_text(
        &err,
        &[
            &format!("{}", missing.display()),
            "no such file or directory",
        ],
    );
}

#[test]
fn private_queue_is_reached_by_its_identifier() {
    if let Some(role) = util::role() {
        assert_eq!(role, "child");
        let queue = Queue::open_id(util::arg("id").parse().unwrap()).unwrap();
        assert_eq!(queue.key(), SysvKey::Private);
        // Named as it was opened: by an id, the only name a private queue has.
        assert_eq!(queue.object(), format!("sysv-mq:id={}", queue.id()));
        queue.send_typed(1, b"by id", Wait::Never).unwrap();
        let err = expect_err(Queue::open_id(i32::MAX), "an unused id");
        assert_text(&err, &["no queue has this identifier"]);
        return;
    }
    let queue = QueueOptions::new().create(SysvKey::Private).unwrap();
    util::Peer::new(
        "sysv_mq::private_queue_is_reached_by_its_identifier",
        "child",
    )
    .arg("id", queue.id().to_string())
    .spawn()
    .wait_success();
    assert_eq!(take(&queue, Select::Any).unwrap(), (1, b"by id".to_vec()));
}

#[test]
fn messenger_maps_tags_to_types() {
    if let Some(role) = util::role() {
        assert_eq!(role, "sender");
        let queue = open_arg();
        let messenger: &dyn Messenger = &queue;
        assert_eq!(messenger.object(), format!("sysv-mq:{}", key_arg()));
        let limits = messenger.limits().unwrap();
        assert_eq!(limits.max_message_size, 4096.min(msgmax()));
        assert_eq!(limits.max_messages, None);
        messenger.send(b"untagged").unwrap();
        messenger
            .send_tagged(b"typed", Tag::Type(7), Wait::Never)
            .unwrap();
        let err = expect_err(
            messenger.send_tagged(b"x", Tag::Priority(3), Wait::Never),
            "a priority",
        );
        assert!(matches!(err, Error::Unsupported { .. }), "{err}");
        assert_text(&err, &["Priority(3)", "message types"]);
        let err = expect_err(
            messenger.send_tagged(b"x", Tag::Type(0), Wait::Never),
            "type 0",
        );
        assert!(matches!(err, Error::Unsupported { .. }), "{err}");
        return;
    }
    let (queue, key) = create_with(QueueOptions::new().max_bytes(4096));
    peer("messenger_maps_tags_to_types", "sender", key)
        .spawn()
        .wait_success();
    let messenger: &dyn Messenger = &queue;
    assert_eq!(
        messenger.recv_vec(Wait::Never).unwrap(),
        (b"untagged".to_vec(), Tag::Type(1))
    );
    let mut buf = [0; 16];
    let got = messenger.recv_into(&mut buf, Wait::Never).unwrap();
    assert_eq!((&buf[..got.len], got.tag), (&b"typed"[..], Tag::Type(7)));
    assert!(matches!(messenger.try_recv(), Err(Error::Empty { .. })));
    // With room for more than msgmax, msgmax is the message limit.
    if msgmnb() > msgmax() {
        queue.set_max_bytes(msgmnb()).unwrap();
        assert_eq!(messenger.limits().unwrap().max_message_size, msgmax());
    }
}

const PRODUCERS: u32 = 4;
const CONSUMERS: usize = 2;
const PER_PRODUCER: u32 = 25_000;
const STOP_TYPE: i64 = 100;

#[test]
fn many_producers_and_consumers_get_every_message_exactly_once() {
    if let Some(role) = util::role() {
        let queue = open_arg();
        match role.as_str() {
            "producer" => {
                let me: u32 = util::arg("producer").parse().unwrap();
                let mut message = [0; 8];
                message[..4].copy_from_slice(&me.to_le_bytes());
                for seq in 0..PER_PRODUCER {
                    message[4..].copy_from_slice(&seq.to_le_bytes());
                    queue
                        .send_typed(i64::from(me) + 1, &message, Wait::Forever)
                        .unwrap();
                }
            }
            "consumer" => {
                let mut out = String::new();
                let mut buf = [0; 8];
                loop {
                    let got = queue
                        .recv_select(Select::Any, &mut buf, Wait::Forever)
                        .unwrap();
                    if got.tag == Tag::Type(STOP_TYPE) {
                        break;
                    }
                    assert_eq!(got.len, 8);
                    let producer = u32::from_le_bytes(buf[..4].try_into().unwrap());
                    let seq = u32::from_le_bytes(buf[4..].try_into().unwrap());
                    assert_eq!(got.tag, Tag::Type(i64::from(producer) + 1));
                    out.push_str(&format!("got {producer} {seq}\n"));
                }
                std::io::stdout().write_all(out.as_bytes()).unwrap();
            }
            other => panic!("unknown role {other}"),
        }
        return;
    }
    let started = Instant::now();
    let (queue, key) = create();
    let test = "many_producers_and_consumers_get_every_message_exactly_once";
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| peer(test, "consumer", key).capture_stdout().spawn())
        .collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            peer(test, "producer", key)
                .arg("producer", p.to_string())
                .spawn()
        })
        .collect();
    let producer_status: Vec<_> = producers.into_iter().map(|p| p.wait()).collect();
    // Every data message is queued before the stops, so the stops come last
    // and each consumer takes exactly one.
    for _ in 0..CONSUMERS {
        queue.send_typed(STOP_TYPE, b"", Wait::Forever).unwrap();
    }
    let outputs: Vec<_> = consumers.into_iter().map(|c| c.wait_stdout()).collect();
    for status in producer_status {
        assert!(status.success(), "producer failed: {status:?}");
    }

    let mut seen = vec![0u8; (PRODUCERS * PER_PRODUCER) as usize];
    let mut per_consumer = Vec::new();
    for (status, stdout) in outputs {
        assert!(status.success(), "consumer failed: {status:?}");
        let mut last: BTreeMap<u32, u32> = BTreeMap::new();
        let mut count = 0;
        for line in String::from_utf8(stdout).unwrap().lines() {
            let Some(rest) = line.strip_prefix("got ") else {
                continue;
            };
            let (producer, seq) = rest.split_once(' ').unwrap();
            let (producer, seq): (u32, u32) = (producer.parse().unwrap(), seq.parse().unwrap());
            assert!(producer < PRODUCERS && seq < PER_PRODUCER, "{line}");
            if let Some(&prev) = last.get(&producer) {
                assert!(
                    seq > prev,
                    "producer {producer}: {seq} came after {prev} to one consumer"
                );
            }
            last.insert(producer, seq);
            seen[(producer * PER_PRODUCER + seq) as usize] += 1;
            count += 1;
        }
        per_consumer.push(count);
    }
    let lost = seen.iter().filter(|&&n| n == 0).count();
    let duplicated = seen.iter().filter(|&&n| n > 1).count();
    assert_eq!((lost, duplicated), (0, 0), "lost, duplicated");
    assert_eq!(per_consumer.iter().sum::<usize>(), seen.len());
    assert_eq!(queue.stat().unwrap().messages, 0);
    eprintln!(
        "{} messages from {PRODUCERS} producers to {CONSUMERS} consumers {per_consumer:?} in {:?}",
        seen.len(),
        started.elapsed()
    );
}

/// Messages of every size cross whole, in both directions and in any order
/// of sizes: shorter after longer and longer after shorter, on both sides
/// of the 64 KiB of text a thread keeps for building `struct msgbuf`, with
/// exact and oversized receive buffers.
///
/// Sizes above the default `msgmax` need a private IPC namespace, where
/// raising it touches no one else: the `host` peer makes one and starts
/// the `echo` peer inside it.
#[test]
fn every_size_crosses_whole_in_any_order() {
    const SIZES: [usize; 11] = [
        0, 9, 70_000, 3, 65_528, 65_529, 200_000, 1, 100_000, 8, 4096,
    ];
    const LARGEST: usize = 200_000;
    const TEST: &str = "sysv_mq::every_size_crosses_whole_in_any_order";
    if let Some(role) = util::role() {
        match role.as_str() {
            "host" => {
                if let Err(err) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWIPC) {
                    util::skip(format!("cannot make a private IPC namespace here ({err})"));
                    return;
                }
                std::fs::write("/proc/sys/kernel/msgmax", LARGEST.to_string()).unwrap();
                std::fs::write("/proc/sys/kernel/msgmnb", (2 * LARGEST).to_string()).unwrap();
                let queue = QueueOptions::new().create(SysvKey::Private).unwrap();
                // Started from this thread, so inside its namespace.
                let echo = util::Peer::new(TEST, "echo")
                    .arg("id", queue.id().to_string())
                    .spawn();
                let mut buf = vec![0; LARGEST];
                for (i, &size) in SIZES.iter().enumerate() {
                    queue
                        .send_typed(1, &pattern(size, i as u8), Wait::Forever)
                        .unwrap();
                    let got = queue
                        .recv_select(Select::Exactly(2), &mut buf, Wait::For(HANG_GUARD))
                        .unwrap();
                    assert_eq!(got.len, size, "echo of message {i}");
                    assert!(
                        buf[..size] == pattern(size, !(i as u8))[..],
                        "echo of message {i} keeps its bytes"
                    );
                }
                echo.wait_success();
            }
            "echo" => {
                let queue = Queue::open_id(util::arg("id").parse().unwrap()).unwrap();
                let mut buf = vec![0; LARGEST];
                for (i, &size) in SIZES.iter().enumerate() {
                    // Exactly the room the message needs.
                    let got = queue
                        .recv_select(Select::Exactly(1), &mut buf[..size], Wait::For(HANG_GUARD))
                        .unwrap();
                    assert_eq!(got.len, size, "message {i}");
                    assert!(
                        buf[..size] == pattern(size, i as u8)[..],
                        "message {i} keeps its bytes"
                    );
                    queue
                        .send_typed(2, &pattern(size, !(i as u8)), Wait::Forever)
                        .unwrap();
                }
            }
            other => panic!("unknown role {other}"),
        }
        return;
    }
    let mut host = util::Peer::new(TEST, "host");
    host.command().stdout(std::process::Stdio::inherit());
    host.spawn().wait_success();
}

/// Gives the queue `key` names to `uid` (`IPC_SET` of `msg_perm.uid`),
/// which its owner may do: the creator (`cuid`) stays.
fn give_queue_to(key: SysvKey, uid: u32) {
    let SysvKey::Key(raw) = key else {
        panic!("a private queue has no key")
    };
    // SAFETY: msgget takes no pointers.
    let id = unsafe { libc::msgget(raw, 0) };
    assert!(id >= 0, "msgget: {}", std::io::Error::last_os_error());
    let mut ds = std::mem::MaybeUninit::<libc::msqid_ds>::zeroed();
    // SAFETY: `ds` is a live, writable msqid_ds that IPC_STAT fills.
    let rc = unsafe { libc::msgctl(id, libc::IPC_STAT, ds.as_mut_ptr()) };
    assert_eq!(rc, 0, "IPC_STAT: {}", std::io::Error::last_os_error());
    // SAFETY: msqid_ds is all integers and IPC_STAT wrote it.
    let mut ds = unsafe { ds.assume_init() };
    ds.msg_perm.uid = uid;
    // SAFETY: `ds` is a live msqid_ds that IPC_SET only reads.
    let rc = unsafe { libc::msgctl(id, libc::IPC_SET, &mut ds) };
    assert_eq!(rc, 0, "IPC_SET: {}", std::io::Error::last_os_error());
}

#[test]
fn create_does_not_adopt_a_queue_another_user_made() {
    if let Some(role) = util::role() {
        assert_eq!(role, "squatter");
        assert!(!util::is_root());
        // A queue anyone may use, waiting for the service's key...
        let squat = QueueOptions::new()
            .mode(Mode::ALL_RW)
            .exclusive(true)
            .keep()
            .create(key_arg())
            .unwrap();
        assert!(squat.created());
        // ...and one made to look like root's: owner root, mode 0o600,
        // but created by nobody.
        let disguised: SysvKey = util::arg("disguised").parse().unwrap();
        QueueOptions::new()
            .mode(Mode::OWNER_RW)
            .exclusive(true)
            .keep()
            .create(disguised)
            .unwrap();
        give_queue_to(disguised, 0);
        return;
    }
    let test = "create_does_not_adopt_a_queue_another_user_made";
    if skip_unless_root() {
        return;
    }
    let (key, disguised) = (unique_key(), unique_key());
    let _guards = (RemoveOnDrop(key), RemoveOnDrop(disguised));
    let mut squatter = peer(test, "squatter", key).arg("disguised", disguised.to_string());
    util::as_nobody(&mut squatter);
    squatter.spawn().wait_success();

    for options in [
        QueueOptions::new().mode(Mode::OWNER_RW),
        QueueOptions::new(),
    ] {
        let err = expect_err(options.create(key), "create over nobody's queue");
        match &err {
            Error::ForeignObject {
                owner_uid,
                creator_uid,
                mode,
                expected_mode,
                caller_uid,
                ..
            } => {
                assert_eq!(*owner_uid, util::NOBODY.0);
                assert_eq!(*creator_uid, Some(util::NOBODY.0));
                assert_eq!((*mode, *expected_mode, *caller_uid), (0o666, 0o600, 0));
            }
            other => panic!("expected ForeignObject, got {other:?}"),
        }
        assert_text(
            &err,
            &[
                &format!("sysv-mq:{key}: create: already exists, owned by uid 65534"),
                "mode 0o666",
                "0o600",
                "remove it, or use a different name",
            ],
        );
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    }
    // Owned by another user, the mode asked does not matter.
    let err = expect_err(
        QueueOptions::new().mode(Mode::ALL_RW).create(key),
        "create with the squatter's mode",
    );
    assert!(matches!(err, Error::ForeignObject { .. }), "{err}");
    // Owner root and mode 0o600, but created by nobody: refused too.
    let err = expect_err(
        QueueOptions::new().mode(Mode::OWNER_RW).create(disguised),
        "create over a queue given to root",
    );
    assert!(
        matches!(
            err,
            Error::ForeignObject {
                owner_uid: 0,
                creator_uid: Some(65534),
                ..
            }
        ),
        "{err:?}"
    );
    assert_text(&err, &["owned by uid 0", "created by uid 65534"]);

    // Both left as they were: there, same owner and mode, nothing in them.
    let stat = QueueOptions::new().open(key).unwrap().stat().unwrap();
    assert_eq!(
        (stat.uid, stat.creator_uid, stat.mode.bits(), stat.messages),
        (util::NOBODY.0, util::NOBODY.0, 0o666, 0)
    );
    assert_eq!(stat.last_sender, None);
    let stat = QueueOptions::new().open(disguised).unwrap().stat().unwrap();
    assert_eq!((stat.uid, stat.mode, stat.messages), (0, Mode::OWNER_RW, 0));
}

#[test]
fn create_adopts_own_queue_only_with_the_mode_asked() {
    if let Some(role) = util::role() {
        assert_eq!(role, "opener");
        let key = key_arg();
        let queue = QueueOptions::new()
            .mode(Mode::OWNER_RW_GROUP_R)
            .create(key)
            .unwrap();
        assert!(!queue.created(), "the parent made it");
        queue.send_typed(1, b"adopted", Wait::Never).unwrap();
        for options in [
            QueueOptions::new(),
            QueueOptions::new().mode(Mode::OWNER_RW_ALL_R),
        ] {
            let err = expect_err(options.create(key), "create with another mode");
            assert!(
                matches!(err, Error::ForeignObject { mode: 0o640, .. }),
                "{err:?}"
            );
            assert_text(
                &err,
                &[
                    &format!("sysv-mq:{key}: create: already exists with mode 0o640, not the 0o6"),
                    "remove it",
                ],
            );
        }
        return;
    }
    let (queue, key) = create_with(QueueOptions::new().mode(Mode::OWNER_RW_GROUP_R));
    peer(
        "create_adopts_own_queue_only_with_the_mode_asked",
        "opener",
        key,
    )
    .spawn()
    .wait_success();
    assert_eq!(take(&queue, Select::Any).unwrap(), (1, b"adopted".to_vec()));
    assert_eq!(queue.stat().unwrap().mode, Mode::OWNER_RW_GROUP_R);
}

#[test]
fn max_bytes_out_of_range_is_refused_before_creating() {
    if let Some(role) = util::role() {
        assert_eq!(role, "creator");
        let mnb = msgmnb();
        let key = key_arg();
        let refused = |bytes: usize| {
            let err = expect_err(
                QueueOptions::new()
                    .max_bytes(bytes)
                    .exclusive(true)
                    .create(key),
                &format!("max_bytes({bytes})"),
            );
            // Nothing was created under the key.
            let none = expect_err(QueueOptions::new().open(key), "open after a refusal");
            assert_eq!(none.raw_os_error(), Some(libc::ENOENT), "{none}");
            err
        };
        let err = refused(0);
        assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
        assert_text(
            &err,
            &[&format!("sysv-mq:{key}: max bytes 0"), "at least 1"],
        );
        // 2^32 + 100 would wrap to 100 in the kernel, 2^32 to 0.
        let privileged = has_sys_resource();
        if privileged {
            println!("with CAP_SYS_RESOURCE msgmnb does not bind: checking the C int only");
        }
        for bytes in [(1usize << 32) + 100, 1 << 32, 1 << 31, mnb + 1] {
            let want_limit = match (privileged, bytes > i32::MAX as usize) {
                (false, _) => mnb as u64,
                (true, true) => i32::MAX as u64,
                (true, false) => continue,
            };
            let err = refused(bytes);
            match &err {
                Error::LimitExceeded {
                    requested, limit, ..
                } => assert_eq!((*requested, *limit), (bytes as u64, want_limit)),
                other => panic!("max_bytes({bytes}): expected LimitExceeded, got {other:?}"),
            }
            if !privileged {
                assert_text(
                    &err,
                    &[
                        &format!("max bytes {bytes} exceeds the system limit of {mnb}"),
                        "/proc/sys/kernel/msgmnb",
                    ],
                );
            }
        }
        // msgmnb itself is accepted, and set exactly.
        let queue = QueueOptions::new()
            .max_bytes(mnb)
            .exclusive(true)
            .create(key)
            .unwrap();
        assert_eq!(queue.stat().unwrap().max_bytes as usize, mnb);
        // The same range holds for set_max_bytes, which leaves the queue as it was.
        for bytes in [0, 1 << 32, (1 << 32) + 100] {
            expect_err(
                queue.set_max_bytes(bytes),
                &format!("set_max_bytes({bytes})"),
            );
            assert_eq!(queue.stat().unwrap().max_bytes as usize, mnb);
        }
        return;
    }
    // In a peer, as nobody when the tests run as root, so that no
    // CAP_SYS_RESOURCE lifts msgmnb.
    let test = "max_bytes_out_of_range_is_refused_before_creating";
    let key = unique_key();
    let _guard = RemoveOnDrop(key);
    let mut creator = peer(test, "creator", key);
    if util::is_root() {
        util::as_nobody(&mut creator);
    }
    creator.spawn().wait_success();
    assert_eq!(
        expect_err(QueueOptions::new().open(key), "the peer's queue").raw_os_error(),
        Some(libc::ENOENT),
        "the peer's handle removed its queue"
    );
}
