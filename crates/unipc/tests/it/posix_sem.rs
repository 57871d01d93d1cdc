//! POSIX semaphores between real processes: named (`sem:/NAME`) and
//! unnamed in shared memory both processes map.
//!
//! Every named semaphore is made by the parent with a handle that unlinks
//! it, or by a peer (kept) with an `Unlink` guard in the parent, so a
//! failing test leaves nothing in /dev/shm.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use unipc::name::PosixName;
use unipc::shm::{posix, Access};
use unipc::sync::posix_sem::{self, Semaphore, SemaphoreOptions, SharedSemaphore};
use unipc::sync::Wait;
use unipc::{Error, Mode};

use crate::util;

fn fresh_name() -> PosixName {
    PosixName::new(&format!("/{}", util::unique("psem"))).unwrap()
}

fn name_arg(arg: &str) -> PosixName {
    PosixName::new(&util::arg(arg)).unwrap()
}

fn sem_file(name: &PosixName) -> PathBuf {
    PathBuf::from(format!("/dev/shm/sem.{}", &name.as_str()[1..]))
}

/// Removes a semaphore name (and whatever was planted under it) on drop.
struct Unlink(PosixName);

impl Drop for Unlink {
    fn drop(&mut self) {
        // Through the library, which also drops the creator record.
        let _ = posix_sem::remove(&self.0);
    }
}

const LONG: Wait = Wait::For(Duration::from_secs(20));

#[test]
fn a_waiter_in_another_process_is_woken_by_a_post_and_sees_the_value() {
    const TEST: &str =
        "posix_sem::a_waiter_in_another_process_is_woken_by_a_post_and_sees_the_value";
    if let Some(role) = util::role() {
        assert_eq!(role, "waiter");
        let sem = Semaphore::open(&name_arg("sem")).unwrap();
        let done = Semaphore::open(&name_arg("done")).unwrap();
        // The value the parent created it with, seen from here.
        assert_eq!(done.value().unwrap(), 0);
        sem.wait(Wait::Forever).unwrap();
        done.post().unwrap();
        return;
    }
    let (name, done_name) = (fresh_name(), fresh_name());
    let sem = SemaphoreOptions::new()
        .exclusive(true)
        .create(&name)
        .unwrap();
    let done = SemaphoreOptions::new()
        .exclusive(true)
        .create(&done_name)
        .unwrap();
    let waiter = util::Peer::new(TEST, "waiter")
        .arg("sem", name.as_str())
        .arg("done", done_name.as_str())
        .spawn();
    // At zero the peer stays blocked: nothing comes back.
    match done.wait(Wait::For(Duration::from_millis(300))) {
        Err(Error::TimedOut { .. }) => {}
        other => panic!("the waiter got through a semaphore at zero: {other:?}"),
    }
    for _ in 0..3 {
        sem.post().unwrap();
    }
    done.wait(LONG).unwrap();
    waiter.wait_success();
    // Three posted here, one taken there.
    assert_eq!(sem.value().unwrap(), 2);
}

#[test]
fn try_wait_on_zero_would_block_and_a_timed_wait_waits_at_least_its_timeout() {
    const TEST: &str =
        "posix_sem::try_wait_on_zero_would_block_and_a_timed_wait_waits_at_least_its_timeout";
    if let Some(role) = util::role() {
        assert_eq!(role, "peer");
        let sem = Semaphore::open(&name_arg("sem")).unwrap();
        match sem.wait(Wait::Never) {
            Err(Error::WouldBlock { op, holder, .. }) => {
                assert_eq!((op, holder), ("wait", None));
            }
            other => panic!("expected WouldBlock, got {other:?}"),
        }
        let timeout = Duration::from_millis(300);
        let started = Instant::now();
        match sem.wait(Wait::For(timeout)) {
            Err(Error::TimedOut { timeout: t, .. }) => assert_eq!(t, timeout),
            other => panic!("expected TimedOut, got {other:?}"),
        }
        let waited = started.elapsed();
        assert!(waited >= timeout, "returned after {waited:?}");
        assert!(
            waited < Duration::from_secs(10),
            "returned after {waited:?}"
        );
        // A timeout of zero is a try that reports a timeout.
        assert!(matches!(
            sem.wait(Wait::For(Duration::ZERO)),
            Err(Error::TimedOut { .. })
        ));
        // With a count there, neither waits.
        sem.post().unwrap();
        sem.wait(Wait::Never).unwrap();
        sem.post().unwrap();
        sem.wait(Wait::For(Duration::from_millis(1))).unwrap();
        return;
    }
    let name = fresh_name();
    let sem = SemaphoreOptions::new()
        .exclusive(true)
        .create(&name)
        .unwrap();
    util::Peer::new(TEST, "peer")
        .arg("sem", name.as_str())
        .spawn()
        .wait_success();
    assert_eq!(sem.value().unwrap(), 0);
}

#[test]
fn a_post_at_sem_value_max_is_refused_naming_the_limit() {
    let name = fresh_name();
    let max = posix_sem::value_max();
    assert_eq!(max, i32::MAX as u32, "glibc's SEM_VALUE_MAX");
    let err = SemaphoreOptions::new()
        .value(max + 1)
        .create(&name)
        .unwrap_err();
    assert!(
        matches!(err, Error::LimitExceeded { what: "value", .. }),
        "{err}"
    );
    assert!(!sem_file(&name).exists(), "a refused value made nothing");
    let sem = SemaphoreOptions::new().value(max).create(&name).unwrap();
    let err = sem.post().unwrap_err();
    match &err {
        Error::LimitExceeded {
            requested, limit, ..
        } => assert_eq!((*requested, *limit), (u64::from(max) + 1, u64::from(max))),
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
    assert!(err.to_string().contains("SEM_VALUE_MAX"), "{err}");
    assert_eq!(sem.value().unwrap(), max);
}

#[test]
fn the_mode_survives_umask_077_and_exclusive_create_refuses_an_existing_name() {
    const TEST: &str =
        "posix_sem::the_mode_survives_umask_077_and_exclusive_create_refuses_an_existing_name";
    if let Some(role) = util::role() {
        assert_eq!(role, "creator");
        // Process-wide, hence here, in the peer.
        rustix::process::umask(rustix::fs::Mode::from_bits_retain(0o077));
        SemaphoreOptions::new()
            .value(5)
            .mode(Mode::OWNER_RW_ALL_R)
            .exclusive(true)
            .keep()
            .create(&name_arg("sem"))
            .unwrap();
        return;
    }
    let name = fresh_name();
    let _cleanup = Unlink(name.clone());
    util::Peer::new(TEST, "creator")
        .arg("sem", name.as_str())
        .spawn()
        .wait_success();
    let meta = std::fs::metadata(sem_file(&name)).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o644);
    let err = SemaphoreOptions::new()
        .mode(Mode::OWNER_RW_ALL_R)
        .exclusive(true)
        .create(&name)
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EEXIST), "{err}");
    // Not exclusive, same owner and mode: adopted, keeping its value, and
    // not unlinked by this handle's drop.
    let adopted = SemaphoreOptions::new()
        .value(1)
        .mode(Mode::OWNER_RW_ALL_R)
        .create(&name)
        .unwrap();
    assert!(!adopted.created());
    assert_eq!(adopted.value().unwrap(), 5);
    drop(adopted);
    assert!(sem_file(&name).exists());
    // Another mode: refused, left alone.
    let err = SemaphoreOptions::new().create(&name).unwrap_err();
    assert!(
        matches!(err, Error::ForeignObject { mode: 0o644, .. }),
        "{err}"
    );
    assert_eq!(Semaphore::open(&name).unwrap().value().unwrap(), 5);
}

#[test]
fn a_name_squatted_by_another_user_is_refused_not_adopted() {
    const TEST: &str = "posix_sem::a_name_squatted_by_another_user_is_refused_not_adopted";
    if let Some(role) = util::role() {
        assert_eq!(role, "squatter");
        SemaphoreOptions::new()
            .value(9)
            .mode(Mode::ALL_RW)
            .keep()
            .create(&name_arg("sem"))
            .unwrap();
        return;
    }
    if !util::is_root() {
        return util::skip("switching to nobody needs root");
    }
    let name = fresh_name();
    let _cleanup = Unlink(name.clone());
    let mut squatter = util::Peer::new(TEST, "squatter").arg("sem", name.as_str());
    util::as_nobody(&mut squatter);
    squatter.spawn().wait_success();
    assert_eq!(
        std::fs::metadata(sem_file(&name)).unwrap().uid(),
        util::NOBODY.0
    );
    for mode in [Mode::OWNER_RW, Mode::ALL_RW] {
        let err = SemaphoreOptions::new()
            .mode(mode)
            .create(&name)
            .unwrap_err();
        match &err {
            Error::ForeignObject {
                owner_uid,
                mode: found,
                ..
            } => assert_eq!((*owner_uid, *found), (util::NOBODY.0, 0o666)),
            other => panic!("expected ForeignObject, got {other:?}"),
        }
    }
    // Left exactly as found.
    let meta = std::fs::metadata(sem_file(&name)).unwrap();
    assert_eq!(
        (meta.uid(), meta.permissions().mode() & 0o777),
        (util::NOBODY.0, 0o666)
    );
    assert_eq!(Semaphore::open(&name).unwrap().value().unwrap(), 9);
}

#[test]
fn a_symlink_or_a_bogus_file_planted_under_the_name_is_refused_not_followed() {
    const TEST: &str =
        "posix_sem::a_symlink_or_a_bogus_file_planted_under_the_name_is_refused_not_followed";
    if let Some(role) = util::role() {
        assert_eq!(role, "attacker");
        std::os::unix::fs::symlink(util::arg("target"), sem_file(&name_arg("link"))).unwrap();
        return;
    }
    if !util::is_root() {
        return util::skip("switching to nobody needs root");
    }
    let dir = util::TempDir::new();
    let target = dir.join("precious");
    // 32 bytes, as a semaphore file is, so only the link check stands in
    // the way.
    let precious = [0x5au8; 32];
    std::fs::write(&target, precious).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (link, short, zeroed) = (fresh_name(), fresh_name(), fresh_name());
    let _cleanup = (
        Unlink(link.clone()),
        Unlink(short.clone()),
        Unlink(zeroed.clone()),
    );
    let mut attacker = util::Peer::new(TEST, "attacker")
        .arg("link", link.as_str())
        .arg("target", target.as_os_str());
    util::as_nobody(&mut attacker);
    attacker.spawn().wait_success();

    let symlink = |err: &Error| {
        matches!(
            err,
            Error::WrongType {
                found: "a symbolic link",
                ..
            }
        )
    };
    let err = SemaphoreOptions::new().create(&link).unwrap_err();
    assert!(symlink(&err), "{err:?}");
    let err = Semaphore::open(&link).unwrap_err();
    assert!(symlink(&err), "{err:?}");
    let err = SemaphoreOptions::new()
        .exclusive(true)
        .create(&link)
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EEXIST), "{err}");
    assert_eq!(std::fs::read(&target).unwrap(), precious);
    assert!(std::fs::symlink_metadata(sem_file(&link))
        .unwrap()
        .file_type()
        .is_symlink());

    // A hard link to another semaphore file is a file from elsewhere.
    let real = SemaphoreOptions::new().create(&fresh_name()).unwrap();
    let linked = fresh_name();
    let _linked = Unlink(linked.clone());
    std::fs::hard_link(sem_file(real.name()), sem_file(&linked)).unwrap();
    for err in [
        Semaphore::open(&linked).unwrap_err(),
        SemaphoreOptions::new().create(&linked).unwrap_err(),
    ] {
        assert!(
            matches!(
                err,
                Error::WrongType {
                    found: "a file with other names too (hard links)",
                    ..
                }
            ),
            "{err:?}"
        );
    }
    drop(real);

    // Files of our own that hold no semaphore: too short (a wait on it
    // would raise SIGBUS), or zeroed (a futex private to each process).
    std::fs::write(sem_file(&short), b"").unwrap();
    std::fs::write(sem_file(&zeroed), [0u8; 32]).unwrap();
    for (name, found) in [
        (&short, "a file too small to hold one"),
        (&zeroed, "a file that holds no process-shared semaphore"),
    ] {
        std::fs::set_permissions(sem_file(name), std::fs::Permissions::from_mode(0o600)).unwrap();
        for err in [
            Semaphore::open(name).unwrap_err(),
            SemaphoreOptions::new().create(name).unwrap_err(),
        ] {
            assert!(
                matches!(err, Error::WrongType { found: f, .. } if f == found),
                "{err:?}"
            );
        }
    }
}

#[test]
fn the_creators_drop_unlinks_only_its_own_and_keep_leaves_it() {
    const TEST: &str = "posix_sem::the_creators_drop_unlinks_only_its_own_and_keep_leaves_it";
    if let Some(role) = util::role() {
        let result = Semaphore::open(&name_arg("sem"));
        match role.as_str() {
            "gone" => assert_eq!(result.unwrap_err().raw_os_error(), Some(libc::ENOENT)),
            "there" => assert_eq!(result.unwrap().value().unwrap(), 3),
            other => panic!("role {other}"),
        }
        return;
    }
    let name = fresh_name();
    let _cleanup = Unlink(name.clone());
    let check = |role: &str| {
        util::Peer::new(TEST, role)
            .arg("sem", name.as_str())
            .spawn()
            .wait_success()
    };
    let sem = SemaphoreOptions::new().value(3).create(&name).unwrap();
    assert!(sem.created());
    assert_eq!(sem.name(), &name);
    check("there");
    drop(sem);
    check("gone");

    let kept = SemaphoreOptions::new()
        .value(3)
        .create(&name)
        .unwrap()
        .keep();
    drop(kept);
    check("there");
    Semaphore::remove(&name).unwrap();
    check("gone");

    // A creator whose name was removed and made again by someone else
    // leaves the new semaphore alone.
    let first = SemaphoreOptions::new().create(&name).unwrap();
    posix_sem::remove(&name).unwrap();
    let second = SemaphoreOptions::new()
        .value(3)
        .create(&name)
        .unwrap()
        .keep();
    drop(first);
    check("there");
    drop(second);
    let err = posix_sem::remove(&fresh_name()).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    assert!(
        err.to_string().contains("no semaphore has this name"),
        "{err}"
    );
}

#[test]
fn a_process_killed_after_its_wait_leaves_the_value_decremented() {
    const TEST: &str = "posix_sem::a_process_killed_after_its_wait_leaves_the_value_decremented";
    if let Some(role) = util::role() {
        assert_eq!(role, "holder");
        let sem = Semaphore::open(&name_arg("sem")).unwrap();
        let took = Semaphore::open(&name_arg("took")).unwrap();
        sem.wait(Wait::Forever).unwrap();
        took.post().unwrap();
        // Holds it until killed.
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let (name, took_name) = (fresh_name(), fresh_name());
    let sem = SemaphoreOptions::new().value(2).create(&name).unwrap();
    let took = SemaphoreOptions::new().create(&took_name).unwrap();
    let holder = util::Peer::new(TEST, "holder")
        .arg("sem", name.as_str())
        .arg("took", took_name.as_str())
        .spawn();
    took.wait(LONG).unwrap();
    holder.kill();
    // Documented: no owner, no undo. The count it took stays taken.
    assert_eq!(sem.value().unwrap(), 1);
    sem.wait(Wait::Never).unwrap();
    assert!(matches!(
        sem.wait(Wait::Never),
        Err(Error::WouldBlock { .. })
    ));
}

#[test]
fn an_unnamed_semaphore_in_shared_memory_coordinates_two_processes() {
    const TEST: &str = "posix_sem::an_unnamed_semaphore_in_shared_memory_coordinates_two_processes";
    if let Some(role) = util::role() {
        assert_eq!(role, "peer");
        let segment = posix::Segment::open(&name_arg("shm")).unwrap();
        // SAFETY: the parent made the object for this test alone and
        // nobody resizes it.
        let map = unsafe { segment.map(Access::ReadWrite) }.unwrap();
        // Never initialized: refused, not used.
        // SAFETY: attach refuses these zeroed bytes before any call on
        // them (what this checks); were it not to, the test fails on the
        // assertion below, not on the call.
        let err = unsafe { SharedSemaphore::attach(&map, 1024) }.unwrap_err();
        assert!(matches!(err, Error::WrongType { .. }), "{err:?}");
        // SAFETY: the parent ran `SharedSemaphore::init` at 64 before
        // starting this process, and never destroys it.
        let sem = unsafe { SharedSemaphore::attach(&map, 64) }.unwrap();
        // SAFETY: likewise at 128.
        let done = unsafe { SharedSemaphore::attach(&map, 128) }.unwrap();
        sem.wait(Wait::Forever).unwrap();
        done.post().unwrap();
        return;
    }
    let name = fresh_name();
    let segment = posix::SegmentOptions::new()
        .size(4096)
        .exclusive(true)
        .create(&name)
        .unwrap();
    // SAFETY: the object is this test's own; nobody resizes it.
    let map = unsafe { segment.map(Access::ReadWrite) }.unwrap();
    let sem = SharedSemaphore::init(&map, 64, 0).unwrap();
    let done = SharedSemaphore::init(&map, 128, 0).unwrap();
    for (offset, what) in [(65, "misaligned"), (4090, "out of bounds")] {
        let err = SharedSemaphore::init(&map, offset, 0).unwrap_err();
        assert!(
            matches!(err, Error::Misaligned { .. } | Error::OutOfBounds { .. }),
            "{what}: {err:?}"
        );
    }
    let peer = util::Peer::new(TEST, "peer")
        .arg("shm", name.as_str())
        .spawn();
    match done.wait(Wait::For(Duration::from_millis(300))) {
        Err(Error::TimedOut { .. }) => {}
        other => panic!("the peer got through a semaphore at zero: {other:?}"),
    }
    sem.post().unwrap();
    sem.post().unwrap();
    done.wait(LONG).unwrap();
    peer.wait_success();
    // Two posted here, one taken there.
    assert_eq!(sem.value().unwrap(), 1);
}

#[test]
fn glibc_sem_open_and_unipc_use_each_others_semaphores() {
    const TEST: &str = "posix_sem::glibc_sem_open_and_unipc_use_each_others_semaphores";
    if let Some(role) = util::role() {
        assert_eq!(role, "glibc");
        // The C library's own sem_open, as any C program or Python's
        // posix_ipc would call it.
        let ours = std::ffi::CString::new(util::arg("ours")).unwrap();
        let theirs = std::ffi::CString::new(util::arg("theirs")).unwrap();
        // SAFETY: a NUL-terminated name; without O_CREAT sem_open reads no
        // variadic argument.
        let sem = unsafe { libc::sem_open(ours.as_ptr(), 0) };
        assert_ne!(sem, libc::SEM_FAILED, "{}", std::io::Error::last_os_error());
        let mut value = 0;
        // SAFETY: `sem` came from sem_open and is open; `value` is a live int.
        assert_eq!(unsafe { libc::sem_getvalue(sem, &mut value) }, 0);
        assert_eq!(value, 4);
        // SAFETY: as above.
        assert_eq!(unsafe { libc::sem_post(sem) }, 0);
        // SAFETY: as above; the handle is not used after.
        assert_eq!(unsafe { libc::sem_close(sem) }, 0);
        // SAFETY: a NUL-terminated name; with O_CREAT sem_open reads a
        // mode_t (promoted to unsigned int) and an unsigned int value.
        let made = unsafe {
            libc::sem_open(
                theirs.as_ptr(),
                libc::O_CREAT | libc::O_EXCL,
                0o600 as libc::c_uint,
                7 as libc::c_uint,
            )
        };
        assert_ne!(
            made,
            libc::SEM_FAILED,
            "{}",
            std::io::Error::last_os_error()
        );
        // SAFETY: from sem_open; not used after.
        assert_eq!(unsafe { libc::sem_close(made) }, 0);
        return;
    }
    let (ours, theirs) = (fresh_name(), fresh_name());
    let _cleanup = Unlink(theirs.clone());
    let sem = SemaphoreOptions::new()
        .value(4)
        .exclusive(true)
        .create(&ours)
        .unwrap();
    util::Peer::new(TEST, "glibc")
        .arg("ours", ours.as_str())
        .arg("theirs", theirs.as_str())
        .spawn()
        .wait_success();
    assert_eq!(sem.value().unwrap(), 5);
    let made = Semaphore::open(&theirs).unwrap();
    assert!(!made.created());
    assert_eq!(made.value().unwrap(), 7);
    made.wait(Wait::Never).unwrap();
    assert_eq!(made.stat().unwrap().mode, Mode::OWNER_RW);
    Semaphore::remove(&theirs).unwrap();
}

static INTERRUPTIONS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

extern "C" fn count_interruption(_: libc::c_int) {
    INTERRUPTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

#[test]
fn signals_during_a_wait_resume_it_with_the_time_left() {
    const TEST: &str = "posix_sem::signals_during_a_wait_resume_it_with_the_time_left";
    if let Some(role) = util::role() {
        assert_eq!(role, "waiter");
        // SAFETY: a zeroed sigaction is valid (no flags, so no SA_RESTART:
        // sem_wait is never restarted anyway, and returns EINTR); the
        // handler only increments an atomic, which is async-signal-safe.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = count_interruption as extern "C" fn(libc::c_int) as usize;
        // SAFETY: `action` is a live, initialized sigaction; no old action
        // is asked for.
        let rc = unsafe { libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()) };
        assert_eq!(rc, 0);
        let sem = Semaphore::open(&name_arg("sem")).unwrap();
        let ready = Semaphore::open(&name_arg("ready")).unwrap();
        ready.post().unwrap();
        let timeout = Duration::from_millis(800);
        let started = Instant::now();
        match sem.wait(Wait::For(timeout)) {
            Err(Error::TimedOut { .. }) => {}
            other => panic!("expected TimedOut, got {other:?}"),
        }
        let waited = started.elapsed();
        let interrupted = INTERRUPTIONS.load(std::sync::atomic::Ordering::Relaxed);
        assert!(interrupted > 0, "no signal came during the wait");
        // Neither cut short by the signals nor restarted with the whole
        // timeout after each (they come every 50 ms: that never ends).
        assert!(waited >= timeout, "returned after {waited:?}");
        assert!(waited < Duration::from_secs(8), "returned after {waited:?}");
        ready.post().unwrap();
        // A wait without a deadline survives the signals and takes the post.
        sem.wait(Wait::Forever).unwrap();
        return;
    }
    let (name, ready_name) = (fresh_name(), fresh_name());
    let sem = SemaphoreOptions::new().create(&name).unwrap();
    let ready = SemaphoreOptions::new().create(&ready_name).unwrap();
    let waiter = util::Peer::new(TEST, "waiter")
        .arg("sem", name.as_str())
        .arg("ready", ready_name.as_str())
        .spawn();
    let pid = waiter.pid() as libc::pid_t;
    let interrupt = || {
        // SAFETY: kill(2) with the pid of a child this test started.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR1) }, 0);
    };
    ready.wait(LONG).unwrap();
    // Through the timed wait, until the peer says it timed out.
    loop {
        interrupt();
        match ready.wait(Wait::For(Duration::from_millis(50))) {
            Ok(()) => break,
            Err(Error::TimedOut { .. }) => continue,
            Err(other) => panic!("{other}"),
        }
    }
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(50));
        interrupt();
    }
    sem.post().unwrap();
    waiter.wait_success();
    assert_eq!(sem.value().unwrap(), 0);
}

#[test]
fn removing_the_name_under_a_waiter_leaves_it_waiting_on_the_same_semaphore() {
    const TEST: &str =
        "posix_sem::removing_the_name_under_a_waiter_leaves_it_waiting_on_the_same_semaphore";
    if let Some(role) = util::role() {
        assert_eq!(role, "waiter");
        let sem = Semaphore::open(&name_arg("sem")).unwrap();
        let done = Semaphore::open(&name_arg("done")).unwrap();
        done.post().unwrap();
        sem.wait(LONG).unwrap();
        done.post().unwrap();
        return;
    }
    let (name, done_name) = (fresh_name(), fresh_name());
    let mut sem = SemaphoreOptions::new().create(&name).unwrap();
    let done = SemaphoreOptions::new().create(&done_name).unwrap();
    let waiter = util::Peer::new(TEST, "waiter")
        .arg("sem", name.as_str())
        .arg("done", done_name.as_str())
        .spawn();
    done.wait(LONG).unwrap();
    assert!(sem.unlink().unwrap());
    assert!(!sem_file(&name).exists());
    // Unlinking wakes nobody: the waiter still waits, on the file it mapped.
    assert!(matches!(
        done.wait(Wait::For(Duration::from_millis(300))),
        Err(Error::TimedOut { .. })
    ));
    // A new semaphore under the old name is another one: a post to it
    // reaches no one waiting on the first.
    let other = SemaphoreOptions::new().create(&name).unwrap();
    other.post().unwrap();
    assert!(matches!(
        done.wait(Wait::For(Duration::from_millis(300))),
        Err(Error::TimedOut { .. })
    ));
    sem.post().unwrap();
    done.wait(LONG).unwrap();
    waiter.wait_success();
    assert_eq!(other.value().unwrap(), 1);
    // The first handle's drop leaves the second semaphore's name alone.
    drop(sem);
    assert!(sem_file(&name).exists());
}
