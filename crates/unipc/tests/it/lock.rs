//! File locks (flock, classic POSIX and OFD record locks), every semantic
//! observed from a second process.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use unipc::stream::pipe::{self, Receiver, Sender};
use unipc::sync::lock::{Holder, LockKind, LockMode, LockOptions, Range};
use unipc::sync::Wait;
use unipc::Error;

use crate::util::{self, Peer};

// ---- the peers' side ----------------------------------------------------

fn parse_range(text: &str) -> Range {
    let (start, len) = text.split_once(':').expect("START:LEN");
    let start = start.parse().unwrap();
    if len.is_empty() {
        Range::from_offset(start)
    } else {
        Range::new(start, len.parse().unwrap())
    }
}

fn range_arg(range: Range) -> String {
    match range.len {
        Some(len) => format!("{}:{len}", range.start),
        None => format!("{}:", range.start),
    }
}

fn parse_mode(text: &str) -> LockMode {
    match text {
        "shared" => LockMode::Shared,
        "exclusive" => LockMode::Exclusive,
        other => panic!("mode {other}"),
    }
}

fn options(kind: &str, mode: &str, range: &str) -> LockOptions {
    LockOptions::new()
        .kind(kind.parse().unwrap())
        .mode(parse_mode(mode))
        .range(parse_range(range))
}

/// Every test re-executes itself: the peer's side is one of these roles.
fn peer(role: &str) {
    let path = PathBuf::from(util::arg("path"));
    match role {
        // Takes one lock (waiting for it), says "r", and holds it until a
        // byte or EOF comes on the go pipe; then releases it, says "d", and
        // stays alive until the go pipe closes.
        "holder" => {
            let mut ready = Sender::try_from(util::passed_fd(0)).unwrap();
            let mut go = Receiver::try_from(util::passed_fd(1)).unwrap();
            let options = options(&util::arg("kind"), &util::arg("mode"), &util::arg("range"));
            let file = options.open(&path).unwrap();
            let guard = options.lock(&file, Wait::Forever).unwrap();
            ready.write_all(b"r").unwrap();
            let mut byte = [0];
            let _ = go.read(&mut byte);
            drop(guard);
            ready.write_all(b"d").unwrap();
            let _ = go.read(&mut byte);
        }
        // Tries each "op,kind,mode,START:LEN" of `tries` (op: lock or test)
        // without waiting and prints one line per try.
        "probe" => {
            let mut out = std::io::stdout().lock();
            for spec in util::arg("tries").split(';') {
                let parts: Vec<&str> = spec.split(',').collect();
                let options = options(parts[1], parts[2], parts[3]);
                let file = options.open(&path).unwrap();
                let line = match parts[0] {
                    "lock" => match options.lock(&file, Wait::Never) {
                        Ok(guard) => {
                            drop(guard);
                            "ok".to_owned()
                        }
                        Err(Error::WouldBlock { holder, .. }) => format!("busy {holder:?}"),
                        Err(e) => format!("error {e}"),
                    },
                    "test" => match options.test(&file) {
                        Ok(None) => "free".to_owned(),
                        Ok(Some(h)) => describe(&h),
                        Err(e) => format!("error {e}"),
                    },
                    other => panic!("op {other}"),
                };
                // Prefixed: libtest writes its own lines to this stdout too.
                writeln!(out, "probe: {line}").unwrap();
            }
        }
        // Holds a classic lock on r1, says "r", waits for "go", then asks
        // for r2 blocking; says "y" when it has it, "D" on EDEADLK.
        "cycle" => {
            let mut ready = Sender::try_from(util::passed_fd(0)).unwrap();
            let mut go = Receiver::try_from(util::passed_fd(1)).unwrap();
            let kind = util::arg("kind");
            let first = options(&kind, "exclusive", &util::arg("first"));
            let second = options(&kind, "exclusive", &util::arg("second"));
            let file = first.open(&path).unwrap();
            let _held = first.lock(&file, Wait::Forever).unwrap();
            ready.write_all(b"r").unwrap();
            let mut byte = [0];
            go.read_exact(&mut byte).unwrap();
            match second.lock(&file, Wait::Forever) {
                Ok(_guard) => ready.write_all(b"y").unwrap(),
                Err(Error::Deadlock { .. }) => ready.write_all(b"D").unwrap(),
                Err(e) => panic!("{e}"),
            }
            let _ = go.read(&mut byte);
        }
        other => panic!("unknown role {other}"),
    }
}

fn describe(h: &Holder) -> String {
    format!(
        "held pid={:?} kind={} mode={} range={}",
        h.pid, h.kind, h.mode, h.range
    )
}

// ---- the parent's side --------------------------------------------------

/// A peer holding a lock until told to release it.
struct Held {
    running: Option<util::Running>,
    ready: Receiver,
    go: Option<Sender>,
}

impl Held {
    fn start(test: &str, path: &Path, kind: &str, mode: &str, range: Range) -> Held {
        let (ready_tx, ready) = pipe::new().unwrap();
        let (go, go_rx) = pipe::new().unwrap();
        let running = Peer::new(test, "holder")
            .arg("path", path)
            .arg("kind", kind)
            .arg("mode", mode)
            .arg("range", range_arg(range))
            .fd(ready_tx.as_fd())
            .fd(go_rx.as_fd())
            .spawn();
        drop((ready_tx, go_rx));
        let mut held = Held {
            running: Some(running),
            ready,
            go: Some(go),
        };
        held.expect(b'r');
        held
    }

    fn pid(&self) -> u32 {
        self.running.as_ref().unwrap().pid()
    }

    fn expect(&mut self, want: u8) {
        assert!(
            self.ready.wait_readable(Some(util::WATCHDOG)).unwrap(),
            "holder never answered"
        );
        let mut byte = [0];
        self.ready.read_exact(&mut byte).expect("holder answered");
        assert_eq!(byte[0], want);
    }

    /// Tells the holder to release; returns once it has.
    fn release(&mut self) {
        self.go.as_mut().unwrap().write_all(b"g").unwrap();
        self.expect(b'd');
    }

    /// Tells the holder to release in `after`, from a thread of ours.
    fn release_after(&mut self, after: Duration) -> std::thread::JoinHandle<()> {
        let mut go = self.go.take().unwrap();
        std::thread::spawn(move || {
            std::thread::sleep(after);
            go.write_all(b"g").unwrap();
            // Keep the pipe open until the holder has released, so that
            // it does not see EOF twice.
            std::thread::sleep(Duration::from_millis(200));
        })
    }

    fn kill(mut self) {
        self.running.take().unwrap().kill();
    }

    fn finish(mut self) {
        self.go = None;
        self.running.take().unwrap().wait_success();
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.kill();
        }
    }
}

/// Runs the probe peer on `tries` and returns its lines.
fn probe(test: &str, path: &Path, tries: &[String]) -> Vec<String> {
    let running = Peer::new(test, "probe")
        .arg("path", path)
        .arg("tries", tries.join(";"))
        .capture_stdout()
        .spawn();
    let (status, out) = running.wait_stdout();
    assert!(status.success(), "probe failed: {status:?}");
    String::from_utf8(out)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("probe: "))
        .map(str::to_owned)
        .collect()
}

fn try_spec(op: &str, kind: &str, mode: &str, range: Range) -> String {
    format!("{op},{kind},{mode},{}", range_arg(range))
}

/// How many waiters blocked on `path`'s locks `/proc/locks` lists.
fn waiters(path: &Path) -> usize {
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(path).unwrap().ino();
    let needle = format!(":{ino} ");
    std::fs::read_to_string("/proc/locks")
        .unwrap()
        .lines()
        .filter(|l| l.contains(" -> ") && l.contains(&needle))
        .count()
}

fn wait_until(what: &str, ready: impl Fn() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < util::WATCHDOG, "never saw: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn lock_file(dir: &util::TempDir) -> PathBuf {
    let path = dir.join("lock");
    std::fs::write(&path, b"").unwrap();
    path
}

// ---- the tests -------------------------------------------------------------

#[test]
fn record_ranges_conflict_only_where_they_overlap_and_getlk_names_the_pid() {
    const TEST: &str =
        "lock::record_ranges_conflict_only_where_they_overlap_and_getlk_names_the_pid";
    if let Some(role) = util::role() {
        return peer(&role);
    }
    for kind in ["posix", "ofd"] {
        let dir = util::TempDir::new();
        let path = lock_file(&dir);
        let mut exclusive = Held::start(TEST, &path, kind, "exclusive", Range::new(0, 100));
        let shared = Held::start(TEST, &path, kind, "shared", Range::new(200, 100));
        let tries = [
            try_spec("lock", "posix", "exclusive", Range::new(50, 10)),
            try_spec("lock", "ofd", "shared", Range::new(99, 1)),
            try_spec("lock", "ofd", "exclusive", Range::new(100, 100)),
            try_spec("lock", "posix", "shared", Range::new(250, 10)),
            try_spec("lock", "ofd", "exclusive", Range::new(299, 10)),
            try_spec("lock", "flock", "exclusive", Range::WHOLE),
            try_spec("test", "posix", "shared", Range::new(0, 1)),
            try_spec("test", "ofd", "exclusive", Range::new(150, 1)),
            try_spec("test", "ofd", "exclusive", Range::from_offset(250)),
        ];
        let lines = probe(TEST, &path, &tries);
        let (x, s) = (exclusive.pid(), shared.pid());
        // F_GETLK names a classic holder; an OFD holder is pid -1 to the
        // kernel, so a failed try says None, and `test` finds it in /proc.
        let busy = |pid: u32| {
            if kind == "posix" {
                format!("busy Some({pid})")
            } else {
                "busy None".to_owned()
            }
        };
        let k = if kind == "posix" { "posix" } else { "ofd" };
        assert_eq!(
            lines,
            [
                busy(x),
                busy(x),
                "ok".to_owned(),
                "ok".to_owned(),
                busy(s),
                // flock locks never see fcntl locks on Linux.
                "ok".to_owned(),
                format!("held pid=Some({x}) kind={k} mode=exclusive range=bytes 0..100"),
                "free".to_owned(),
                format!("held pid=Some({s}) kind={k} mode=shared range=bytes 200..300"),
            ],
            "kind {kind}"
        );
        exclusive.release();
        let lines = probe(
            TEST,
            &path,
            &[try_spec("lock", "posix", "exclusive", Range::new(0, 100))],
        );
        assert_eq!(lines, ["ok"], "kind {kind}: released range");
        exclusive.finish();
        shared.finish();
    }
}

#[test]
fn flock_locks_conflict_with_flock_only_and_test_names_the_holder() {
    const TEST: &str = "lock::flock_locks_conflict_with_flock_only_and_test_names_the_holder";
    if let Some(role) = util::role() {
        return peer(&role);
    }
    let dir = util::TempDir::new();
    let path = lock_file(&dir);
    let shared = Held::start(TEST, &path, "flock", "shared", Range::WHOLE);
    let lines = probe(
        TEST,
        &path,
        &[
            try_spec("lock", "flock", "shared", Range::WHOLE),
            try_spec("lock", "flock", "exclusive", Range::WHOLE),
            try_spec("lock", "ofd", "exclusive", Range::WHOLE),
            try_spec("test", "flock", "shared", Range::WHOLE),
            try_spec("test", "flock", "exclusive", Range::WHOLE),
        ],
    );
    assert_eq!(
        lines,
        [
            "ok".to_owned(),
            "busy None".to_owned(),
            "ok".to_owned(),
            "free".to_owned(),
            format!(
                "held pid=Some({}) kind=flock mode=shared range=bytes 0..EOF",
                shared.pid()
            ),
        ]
    );
    shared.finish();
}

#[test]
fn flock_refuses_a_range_and_an_empty_range_is_refused() {
    let dir = util::TempDir::new();
    let path = lock_file(&dir);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let err = LockOptions::new()
        .kind(LockKind::Flock)
        .range(Range::new(0, 10))
        .lock(&file, Wait::Never)
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    assert!(
        err.to_string().contains("flock(2) locks the whole file"),
        "{err}"
    );
    let err = LockOptions::new()
        .range(Range::new(3, 0))
        .lock(&file, Wait::Never)
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    // A write lock through a read-only descriptor: EBADF, with the reason.
    let read_only = std::fs::File::open(&path).unwrap();
    let err = LockOptions::new()
        .lock(&read_only, Wait::Never)
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBADF), "{err}");
    assert!(err.to_string().contains("open for writing"), "{err}");
}

#[test]
fn classic_deadlock_is_a_typed_error_naming_the_range_and_holder() {
    const TEST: &str = "lock::classic_deadlock_is_a_typed_error_naming_the_range_and_holder";
    if let Some(role) = util::role() {
        return peer(&role);
    }
    let dir = util::TempDir::new();
    let path = lock_file(&dir);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let posix = |r: Range| LockOptions::new().kind(LockKind::Posix).range(r);
    let (r1, r2) = (Range::new(0, 10), Range::new(10, 10));
    let _mine = posix(r1).lock(&file, Wait::Forever).unwrap();
    let (ready_tx, mut ready) = pipe::new().unwrap();
    let (mut go, go_rx) = pipe::new().unwrap();
    let other = Peer::new(TEST, "cycle")
        .arg("path", &path)
        .arg("kind", "posix")
        .arg("first", range_arg(r2))
        .arg("second", range_arg(r1))
        .fd(ready_tx.as_fd())
        .fd(go_rx.as_fd())
        .spawn();
    drop((ready_tx, go_rx));
    let mut byte = [0];
    ready.read_exact(&mut byte).unwrap();
    assert_eq!(byte[0], b'r');
    go.write_all(b"g").unwrap();
    // The peer now blocks on r1, which this process holds.
    wait_until("the peer blocked on r1", || waiters(&path) == 1);
    let err = posix(r2).lock(&file, Wait::Forever).unwrap_err();
    match &err {
        Error::Deadlock {
            start, len, holder, ..
        } => {
            assert_eq!((*start, *len), (10, Some(10)));
            assert_eq!(*holder, Some(other.pid()));
        }
        other => panic!("expected a deadlock, got {other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("bytes 10..20") && text.contains(&format!("pid {}", other.pid())),
        "{text}"
    );
    assert!(text.starts_with(&path.display().to_string()), "{text}");
    // Releasing r1 lets the peer through: its wait was never refused.
    drop(_mine);
    ready.read_exact(&mut byte).unwrap();
    assert_eq!(byte[0], b'y');
    drop(go);
    other.wait_success();
}

#[test]
fn ofd_locks_get_no_deadlock_detection() {
    const TEST: &str = "lock::ofd_locks_get_no_deadlock_detection";
    if let Some(role) = util::role() {
        return peer(&role);
    }
    let dir = util::TempDir::new();
    let path = lock_file(&dir);
    let (r1, r2) = (Range::new(0, 10), Range::new(10, 10));
    let mut peers = Vec::new();
    for (first, second) in [(r1, r2), (r2, r1)] {
        let (ready_tx, mut ready) = pipe::new().unwrap();
        let (go, go_rx) = pipe::new().unwrap();
        let running = Peer::new(TEST, "cycle")
            .arg("path", &path)
            .arg("kind", "ofd")
            .arg("first", range_arg(first))
            .arg("second", range_arg(second))
            .fd(ready_tx.as_fd())
            .fd(go_rx.as_fd())
            .spawn();
        drop((ready_tx, go_rx));
        let mut byte = [0];
        ready.read_exact(&mut byte).unwrap();
        peers.push((running, ready, go));
    }
    for (_, _, go) in &mut peers {
        go.write_all(b"g").unwrap();
    }
    // Both block on each other, and the kernel refuses neither.
    wait_until("both peers blocked", || waiters(&path) == 2);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(waiters(&path), 2, "an OFD waiter was refused or woken");
    for (_, ready, _) in &peers {
        assert!(!ready.wait_readable(Some(Duration::ZERO)).unwrap());
    }
    // Killing one ends the cycle: the other gets its lock.
    let (first, _, _) = peers.remove(0);
    first.kill();
    let (second, mut ready, go) = peers.remove(0);
    let mut byte = [0];
    ready.read_exact(&mut byte).unwrap();
    assert_eq!(byte[0], b'y');
    drop(go);
    second.wait_success();
}

#[test]
fn closing_another_descriptor_drops_a_classic_lock_but_not_an_ofd_lock() {
    const TEST: &str = "lock::closing_another_descriptor_drops_a_classic_lock_but_not_an_ofd_lock";
    if let Some(role) = util::role() {
        return peer(&role);
    }
    for (kind, survives) in [(LockKind::Posix, false), (LockKind::Ofd, true)] {
        let dir = util::TempDir::new();
        let path = lock_file(&dir);
        let options = LockOptions::new().kind(kind).range(Range::new(0, 10));
        let file = options.open(&path).unwrap();
        let guard = options.lock(&file, Wait::Never).unwrap();
        let check = [try_spec("test", "ofd", "exclusive", Range::new(5, 1))];
        let held = format!(
            "held pid=Some({}) kind={kind} mode=exclusive range=bytes 0..10",
            std::process::id()
        );
        assert_eq!(
            probe(TEST, &path, &check),
            std::slice::from_ref(&held),
            "{kind} before"
        );
        // The trap: some other code opens and closes the same file.
        drop(std::fs::File::open(&path).unwrap());
        let want = if survives { held } else { "free".to_owned() };
        assert_eq!(probe(TEST, &path, &check), [want], "{kind} after the close");
        drop(guard);
    }
}

#[test]
fn a_blocked_lock_is_granted_when_the_holder_releases() {
    const TEST: &str = "lock::a_blocked_lock_is_granted_when_the_holder_releases";
    if let Some(role) = util::role() {
        return peer(&role);
    }
    for kind in [LockKind::Ofd, LockKind::Posix, LockKind::Flock] {
        let dir = util::TempDir::new();
        let path = lock_file(&dir);
        let mut holder = Held::start(TEST, &path, kind.name(), "exclusive", Range::WHOLE);
        let options = LockOptions::new().kind(kind);
        let file = options.open(&path).unwrap();
        let err = options.lock(&file, Wait::Never).unwrap_err();
        assert!(matches!(err, Error::WouldBlock { .. }), "{kind}: {err}");
        let release = holder.release_after(Duration::from_millis(200));
        let started = Instant::now();
        // A timeout past the clock's range waits as Forever does.
        let wait = match kind {
            LockKind::Posix => Wait::For(Duration::MAX),
            _ => Wait::Forever,
        };
        let guard = options.lock(&file, wait).unwrap();
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(150), "{kind}: {waited:?}");
        release.join().unwrap();
        drop(guard);
        holder.finish();
    }
}

#[test]
fn a_timed_lock_times_out_or_is_granted_in_time() {
    const TEST: &str = "lock::a_timed_lock_times_out_or_is_granted_in_time";
    if let Some(role) = util::role() {
        return peer(&role);
    }
    for kind in [LockKind::Ofd, LockKind::Posix, LockKind::Flock] {
        let dir = util::TempDir::new();
        let path = lock_file(&dir);
        let mut holder = Held::start(TEST, &path, kind.name(), "shared", Range::WHOLE);
        let options = LockOptions::new().kind(kind);
        let file = options.open(&path).unwrap();
        let timeout = Duration::from_millis(300);
        let started = Instant::now();
        let err = options.lock(&file, Wait::For(timeout)).unwrap_err();
        let waited = started.elapsed();
        match err {
            Error::TimedOut { timeout: t, .. } => assert_eq!(t, timeout),
            other => panic!("{kind}: {other}"),
        }
        assert!(waited >= timeout, "{kind}: gave up after {waited:?}");
        // A shared lock is granted at once beside the shared holder.
        let shared = options.clone().mode(LockMode::Shared);
        drop(shared.lock(&file, Wait::For(timeout)).unwrap());
        let release = holder.release_after(Duration::from_millis(200));
        let started = Instant::now();
        let guard = options.lock(&file, Wait::For(util::WATCHDOG)).unwrap();
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(150) && waited < Duration::from_secs(10),
            "{kind}: {waited:?}"
        );
        release.join().unwrap();
        guard.unlock().unwrap();
        holder.finish();
    }
}

#[test]
fn a_holder_killed_with_sigkill_releases_its_lock() {
    const TEST: &str = "lock::a_holder_killed_with_sigkill_releases_its_lock";
    if let Some(role) = util::role() {
        return peer(&role);
    }
    for kind in [LockKind::Ofd, LockKind::Posix, LockKind::Flock] {
        let dir = util::TempDir::new();
        let path = lock_file(&dir);
        let holder = Held::start(TEST, &path, kind.name(), "exclusive", Range::WHOLE);
        let options = LockOptions::new().kind(kind);
        let file = options.open(&path).unwrap();
        assert!(options.test(&file).unwrap().is_some(), "{kind}");
        holder.kill();
        let guard = options.lock(&file, Wait::For(util::WATCHDOG)).unwrap();
        assert_eq!(options.test(&file).unwrap(), None, "{kind}");
        drop(guard);
    }
}

#[test]
fn open_refuses_a_symlink_and_a_fifo_and_creates_a_missing_file() {
    let dir = util::TempDir::new();
    let target = dir.join("target");
    std::fs::write(&target, b"secret").unwrap();
    let link = dir.join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let err = LockOptions::new().open(&link).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{err}");
    let dangling = dir.join("dangling");
    std::os::unix::fs::symlink(dir.join("made-through-link"), &dangling).unwrap();
    assert!(LockOptions::new().open(&dangling).is_err());
    assert!(!dir.join("made-through-link").exists());
    let fifo = dir.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let err = LockOptions::new().open(&fifo).unwrap_err();
    assert!(matches!(err, Error::WrongType { .. }), "{err}");
    let made = dir.join("made");
    let file = LockOptions::new()
        .kind(LockKind::Flock)
        .open(&made)
        .unwrap();
    assert!(made.is_file());
    drop(
        LockOptions::new()
            .kind(LockKind::Flock)
            .lock(&file, Wait::Never)
            .unwrap(),
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"secret");
}
