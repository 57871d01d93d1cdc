//! `inventory::gc` between real processes, in a private world: a new PID,
//! IPC and mount namespace (`unshare`) with its own `/dev/shm` and mqueue
//! filesystem, so the collector judges only this test's objects and
//! processes, and sees every one of them, while other tests run beside it
//! on the host. Everything in the world goes when its first process exits.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use unipc::inventory::gc::{Decision, GcOptions, Outcome};
use unipc::inventory::Kind;
use unipc::message::posix_mq::Queue as PosixQueue;
use unipc::message::ring::RingOptions;
use unipc::message::sysv_mq::QueueOptions as SysvQueueOptions;
use unipc::name::{PosixName, SysvKey};
use unipc::shm::posix::SegmentOptions;
use unipc::sync::posix_sem::SemaphoreOptions;
use unipc::sync::sysv_sem::SetOptions;

use crate::util::{self, Peer};

const TEST: &str = "inventory::gc_removes_what_dead_creators_left_and_nothing_in_use";

fn name(text: &str) -> PosixName {
    PosixName::new(text).unwrap()
}

/// The POSIX names of one set of objects.
fn names(set: &str) -> [String; 4] {
    [
        format!("posix-mq:/gc-{set}"),
        format!("shm:/gc-{set}"),
        format!("sem:/gc-{set}"),
        format!("ring:/gc-{set}-ring"),
    ]
}

/// Creates one object of each collected kind named after `set` with the
/// library, prints `ready MQID SEMID`, and (unless kept) waits to be
/// killed.
fn creator() {
    let set = util::arg("SET");
    let keep = util::arg("KEEP") == "1";
    let path = |p: &str| name(&format!("/gc-{set}{p}"));
    let queue = PosixQueue::create(&path("")).unwrap();
    let segment = SegmentOptions::new().size(4096).create(&path("")).unwrap();
    let semaphore = SemaphoreOptions::new().create(&path("")).unwrap();
    let ring = RingOptions::new().create(&path("-ring")).unwrap();
    let mut sysv_queue = SysvQueueOptions::new();
    if keep {
        sysv_queue = sysv_queue.keep();
    }
    let sysv_queue = sysv_queue.create(SysvKey::Private).unwrap();
    let set_handle = SetOptions::new().count(2).create(SysvKey::Private).unwrap();
    let mut segment_options = unipc::shm::sysv::SegmentOptions::new().size(4096);
    if keep {
        segment_options = segment_options.keep();
    }
    let sysv_segment = segment_options.create(SysvKey::Private).unwrap();
    println!(
        "ready {} {} {}",
        sysv_queue.id(),
        set_handle.id(),
        sysv_segment.id()
    );
    if keep {
        drop((
            queue.keep(),
            segment.keep(),
            semaphore.keep(),
            ring.keep(),
            sysv_queue,
            set_handle.keep(),
            sysv_segment,
        ));
        return;
    }
    std::thread::sleep(std::time::Duration::from_secs(60));
}

/// Holds `set`'s POSIX objects open and mapped, and its System V segment
/// attached, after using its System V queue and set, until killed.
fn holder() {
    let set = util::arg("SET");
    let id = |name: &str| util::arg(name).parse::<i32>().unwrap();
    unipc::message::sysv_mq::Queue::open_id(id("MQ"))
        .unwrap()
        .send_typed(1, b"held", unipc::message::Wait::Never)
        .unwrap();
    unipc::sync::sysv_sem::SemaphoreSet::open_id(id("SEM"))
        .unwrap()
        .apply(
            &[unipc::sync::sysv_sem::Op::add(0, 1)],
            unipc::message::Wait::Never,
        )
        .unwrap();
    let _attached = unipc::shm::sysv::Segment::open_id(id("SHM"))
        .unwrap()
        .attach(unipc::shm::Access::ReadWrite)
        .unwrap();
    let path = |p: &str| name(&format!("/gc-{set}{p}"));
    let _queue = PosixQueue::open(&path("")).unwrap();
    let segment = SegmentOptions::new().open(&path("")).unwrap();
    // SAFETY: the mapping is only held, never read or written, so what
    // other processes do to the memory cannot matter here.
    let _mapping = unsafe { segment.map(unipc::shm::Access::ReadWrite) }.unwrap();
    drop(segment);
    let _semaphore = unipc::sync::posix_sem::Semaphore::open(&path("")).unwrap();
    let _ring = unipc::message::ring::Ring::open(&path("-ring")).unwrap();
    println!("ready");
    std::thread::sleep(std::time::Duration::from_secs(60));
}

/// Blocks receiving from System V queue `MQ` (its creator is dead).
fn waiter() {
    let queue = unipc::message::sysv_mq::Queue::open_id(util::arg("MQ").parse().unwrap()).unwrap();
    println!("ready");
    let mut buf = [0; 64];
    let _ = queue.recv_select(
        unipc::message::sysv_mq::Select::Any,
        &mut buf,
        unipc::message::Wait::Forever,
    );
}

/// A System V segment and a POSIX object made through the raw calls, no
/// unipc code: prints the segment's id and exits.
fn raw_maker() {
    // SAFETY: shmget takes plain integers and returns an id or -1.
    let id = unsafe { libc::shmget(libc::IPC_PRIVATE, 4096, libc::IPC_CREAT | 0o600) };
    assert!(id >= 0, "shmget: {}", std::io::Error::last_os_error());
    let fd = rustix::shm::open(
        "/gc-raw",
        rustix::shm::OFlags::CREATE | rustix::shm::OFlags::EXCL | rustix::shm::OFlags::RDWR,
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
    )
    .unwrap();
    drop(fd);
    println!("ready {id}");
}

/// A peer started in `role`, once it printed its `ready` line: it and the
/// numbers on that line.
fn started(role: &str, set: &str, keep: bool, ids: &[i32]) -> (util::Running, Vec<i32>) {
    let mut peer = Peer::new(TEST, role)
        .arg("SET", set)
        .arg("KEEP", if keep { "1" } else { "0" });
    for (name, id) in ["MQ", "SEM", "SHM"].iter().zip(ids) {
        peer = peer.arg(name, id.to_string());
    }
    let mut peer = peer.capture_stdout().spawn();
    // libtest's own lines come first.
    let mut reader = BufReader::new(peer.child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("ready") {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
    }
    // Keep the pipe open so the peer's later writes do not fail.
    std::mem::forget(reader);
    let mut words = line.split_whitespace();
    assert_eq!(words.next(), Some("ready"), "{role} {set}: {line:?}");
    (peer, words.map(|w| w.parse().unwrap()).collect())
}

fn decision<'a>(decisions: &'a [Decision], name: &str) -> &'a Decision {
    decisions
        .iter()
        .find(|d| d.object.name == name)
        .unwrap_or_else(|| {
            let all: Vec<_> = decisions.iter().map(|d| &d.object.name).collect();
            panic!("{name} not judged; judged: {all:?}")
        })
}

fn assert_outcome(decisions: &[Decision], name: &str, goes: bool, reason: &str) {
    let d = decision(decisions, name);
    let went = matches!(d.outcome, Outcome::WouldGo | Outcome::Removed);
    assert!(
        went == goes && d.reason.contains(reason),
        "{name}: {:?} because {:?}; expected {} because …{reason}…",
        d.outcome,
        d.reason,
        if goes { "gone" } else { "staying" }
    );
    assert!(!matches!(d.outcome, Outcome::Failed(_)), "{name}: {d:?}");
}

fn sysv(kind: &str, id: i32) -> String {
    format!("{kind}:id={id}")
}

fn world() {
    for (fs, dir) in [("tmpfs", "/dev/shm"), ("mqueue", "/dev/mqueue")] {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", fs, "none", dir])
            .status()
            .unwrap();
        assert!(status.success(), "mount {fs} on {dir}");
    }
    rustix::fs::chmod("/dev/shm", rustix::fs::Mode::from_raw_mode(0o1777)).unwrap();

    // Creators: one to be killed, one that lives, one whose objects a live
    // process goes on holding after it is killed, one that keeps its
    // objects on purpose and exits.
    let (dead, dead_ids) = started("creator", "dead", false, &[]);
    let (live, live_ids) = started("creator", "live", false, &[]);
    let (held_creator, held_ids) = started("creator", "held", false, &[]);
    let (holder, _) = started("holder", "held", false, &held_ids);
    let (keeper, kept_ids) = started("creator", "kept", true, &[]);
    keeper.wait_success();
    let (raw, raw_ids) = started("raw", "raw", false, &[]);
    let (waited_creator, waited_ids) = started("creator", "waited", false, &[]);
    let (waiter, _) = started("waiter", "waited", false, &waited_ids);
    waited_creator.kill();
    // "ready" comes just before the receive: wait until the thread is in it.
    let started_waiting = std::time::Instant::now();
    while !unipc::inventory::list(&[Kind::SysvMq])
        .unwrap()
        .objects
        .iter()
        .any(|o| {
            matches!(&o.details, unipc::inventory::Details::SysvMq { id, waiting, .. }
                if *id == waited_ids[0] && !waiting.is_empty())
        })
    {
        assert!(
            started_waiting.elapsed() < util::WATCHDOG,
            "the waiter never blocked"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    raw.wait_success();
    dead.kill();
    held_creator.kill();

    let report = GcOptions::new()
        .private_namespace(true)
        .dry_run(true)
        .run()
        .unwrap();
    let d = &report.decisions;
    for n in names("dead") {
        assert_outcome(d, &n, true, "is dead");
    }
    assert_outcome(d, &sysv("sysv-mq", dead_ids[0]), true, "is dead");
    assert_outcome(d, &sysv("sysv-sem", dead_ids[1]), true, "is dead");
    assert_outcome(d, &sysv("sysv-shm", dead_ids[2]), true, "are dead");
    // A live process holds each of these, though their creator is dead.
    for n in names("held") {
        assert_outcome(d, &n, false, &format!("held by {}", holder.pid()));
    }
    let lives = format!("process {} lives", holder.pid());
    assert_outcome(d, &sysv("sysv-mq", held_ids[0]), false, &lives);
    assert_outcome(d, &sysv("sysv-sem", held_ids[1]), false, &lives);
    assert_outcome(
        d,
        &sysv("sysv-shm", held_ids[2]),
        false,
        &format!("held by {}", holder.pid()),
    );
    // A live creator holds its objects itself.
    for n in names("live") {
        assert_outcome(d, &n, false, &format!("held by {}", live.pid()));
    }
    assert_outcome(d, &sysv("sysv-mq", live_ids[0]), false, "lives");
    for n in names("kept") {
        assert_outcome(d, &n, false, "kept on purpose");
    }
    assert_outcome(d, &sysv("sysv-sem", kept_ids[1]), false, "kept on purpose");
    assert_outcome(d, &sysv("sysv-mq", kept_ids[0]), false, "kept on purpose");
    assert_outcome(d, &sysv("sysv-shm", kept_ids[2]), false, "kept on purpose");
    assert_outcome(d, "shm:/gc-raw", false, "unowned");
    // A receiver blocked in msgrcv has not received: lrpid does not name
    // it, its thread's system call does.
    let waits = format!("process {} ", waiter.pid());
    assert_outcome(d, &sysv("sysv-mq", waited_ids[0]), false, &waits);
    assert_outcome(d, &sysv("sysv-shm", raw_ids[0]), true, "are dead");
    // A dry run removed nothing.
    assert!(std::path::Path::new("/dev/shm/gc-dead").exists());

    let report = GcOptions::new().private_namespace(true).run().unwrap();
    for n in names("dead") {
        assert!(matches!(
            decision(&report.decisions, &n).outcome,
            Outcome::Removed
        ));
    }
    for file in ["gc-dead", "sem.gc-dead", "gc-dead-ring"] {
        assert!(
            !std::path::Path::new("/dev/shm").join(file).exists(),
            "{file}"
        );
    }
    assert!(!std::path::Path::new("/dev/mqueue/gc-dead").exists());
    for f in ["gc-held", "sem.gc-held", "gc-live", "gc-kept", "gc-raw"] {
        assert!(std::path::Path::new("/dev/shm").join(f).exists(), "{f}");
    }
    assert!(unipc::message::sysv_mq::Queue::open_id(dead_ids[0]).is_err());
    assert!(unipc::message::sysv_mq::Queue::open_id(live_ids[0]).is_ok());

    // The kinds asked for only; unowned and kept go when asked.
    let report = GcOptions::new()
        .private_namespace(true)
        .kind(Kind::Shm)
        .unowned(true)
        .run()
        .unwrap();
    assert!(report.decisions.iter().all(|d| d.object.kind == Kind::Shm));
    assert_outcome(&report.decisions, "shm:/gc-raw", true, "unowned");
    assert_outcome(&report.decisions, "shm:/gc-kept", false, "kept on purpose");
    let report = GcOptions::new()
        .private_namespace(true)
        .kept(true)
        .run()
        .unwrap();
    for n in names("kept") {
        assert_outcome(&report.decisions, &n, true, "(kept)");
    }
    assert_outcome(
        &report.decisions,
        &sysv("sysv-mq", kept_ids[0]),
        true,
        "(kept)",
    );
    assert_outcome(
        &report.decisions,
        &sysv("sysv-shm", kept_ids[2]),
        true,
        "are dead",
    );

    // Once the holder and the live creator are gone, so are their objects.
    holder.kill();
    live.kill();
    waiter.kill();
    let report = GcOptions::new().private_namespace(true).run().unwrap();
    for n in names("held").into_iter().chain(names("live")) {
        assert_outcome(&report.decisions, &n, true, "is dead");
    }
    assert_outcome(
        &report.decisions,
        &sysv("sysv-mq", waited_ids[0]),
        true,
        "is dead",
    );
    for ids in [&held_ids, &live_ids] {
        assert_outcome(&report.decisions, &sysv("sysv-mq", ids[0]), true, "is dead");
        assert_outcome(
            &report.decisions,
            &sysv("sysv-sem", ids[1]),
            true,
            "is dead",
        );
        assert_outcome(
            &report.decisions,
            &sysv("sysv-shm", ids[2]),
            true,
            "are dead",
        );
    }
    let sysv_left: Vec<String> = ["msg", "sem", "shm"]
        .iter()
        .flat_map(|k| {
            std::fs::read_to_string(format!("/proc/sysvipc/{k}"))
                .unwrap()
                .lines()
                .skip(1)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(sysv_left.is_empty(), "System V objects left: {sysv_left:?}");
    let left: Vec<_> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left in /dev/shm: {left:?}");
    println!("world passed");
}

#[test]
fn gc_removes_what_dead_creators_left_and_nothing_in_use() {
    match util::role().as_deref() {
        Some("world") => return world(),
        Some("creator") => return creator(),
        Some("holder") => return holder(),
        Some("raw") => return raw_maker(),
        Some("waiter") => return waiter(),
        _ => {}
    }
    if !util::is_root() {
        return util::skip("a private PID, IPC and mount namespace needs root");
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "--ipc", "--mount", "--"])
        .arg(exe)
        .args([TEST, "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(util::ROLE_VAR, "world")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && err.contains("unshare failed") {
        return util::skip(format!("cannot make namespaces here: {err}"));
    }
    assert!(
        out.status.success() && text.contains("world passed"),
        "{:?}\n{text}\n{err}",
        out.status
    );
}
