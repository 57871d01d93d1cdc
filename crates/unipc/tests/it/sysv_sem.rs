//! System V semaphore sets between real processes.
//!
//! The parent creates each set (its handle removes the set on drop, so a
//! failing test leaves nothing in `ipcs -s`) and passes the key or id to
//! peers. Keys carry 0x73 in the top byte, then this process's pid and a
//! counter; sets are created exclusively, so a collision fails loudly
//! instead of sharing a set.

use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use unipc::name::SysvKey;
use unipc::sync::sysv_sem::{Op, SemaphoreSet, SetOptions};
use unipc::sync::Wait;
use unipc::{Error, Mode};

use crate::util;

/// How long a condition that should come at once may take to come.
const HANG_GUARD: Duration = Duration::from_secs(10);

fn unique_key() -> SysvKey {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    SysvKey::Key(((0x73 << 24) | ((pid & 0xffff) << 8) | (n & 0xff)) as i32)
}

fn create(values: &[u16]) -> (SemaphoreSet, SysvKey) {
    let key = unique_key();
    let set = SetOptions::new()
        .count(values.len())
        .values(values)
        .exclusive(true)
        .create(key)
        .unwrap_or_else(|err| panic!("create {key}: {err}"));
    assert!(set.created());
    (set, key)
}

fn peer(test: &str, role: &str, key: SysvKey) -> util::Peer {
    util::Peer::new(&format!("sysv_sem::{test}"), role).arg("key", key.to_string())
}

fn key_arg() -> SysvKey {
    util::arg("key").parse().expect("key argument")
}

fn open_arg() -> SemaphoreSet {
    SemaphoreSet::open(key_arg()).unwrap_or_else(|err| panic!("peer open: {err}"))
}

/// Polls `done` until it holds; panics naming `what` after the hang guard.
fn until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < HANG_GUARD,
            "{what}: not within {HANG_GUARD:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn still_running(child: &mut util::Running) -> bool {
    child.child.try_wait().expect("try_wait").is_none()
}

/// Removes the set under a key on drop (for sets a peer made and kept).
struct RemoveOnDrop(SysvKey);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Ok(set) = SemaphoreSet::open(self.0) {
            let _ = set.remove();
        }
    }
}

#[test]
fn a_semop_that_cannot_all_proceed_applies_none_of_it() {
    let test = "a_semop_that_cannot_all_proceed_applies_none_of_it";
    if let Some(role) = util::role() {
        assert_eq!(role, "taker");
        let set = open_arg();
        // Semaphore 1 could give 2 at once, semaphore 0 cannot give 1: the
        // whole semop waits, and semaphore 1 is not touched meanwhile.
        set.apply(&[Op::take(1, 2), Op::take(0, 1)], Wait::Forever)
            .unwrap();
        return;
    }
    let (set, key) = create(&[0, 5]);
    let mut taker = peer(test, "taker", key).spawn();
    until("the taker waits on semaphore 0", || {
        set.ncnt(0).unwrap() == 1
    });
    // Held there a while: nothing of the semop is applied.
    std::thread::sleep(Duration::from_millis(50));
    assert!(still_running(&mut taker));
    assert_eq!(set.values().unwrap(), vec![0, 5]);
    assert_eq!(set.ncnt(0).unwrap(), 1);
    assert_eq!(
        set.ncnt(1).unwrap(),
        0,
        "the kernel counts the first op that blocks"
    );
    assert_eq!(set.zcnt(0).unwrap(), 0);
    // Only this process's handshake has operated so far.
    let me = std::process::id();
    assert_eq!(set.last_pid(0).unwrap(), Some(me));
    let pid = taker.pid();
    set.apply(&[Op::add(0, 1)], Wait::Never).unwrap();
    taker.wait_success();
    assert_eq!(set.values().unwrap(), vec![0, 3]);
    assert_eq!(set.last_pid(0).unwrap(), Some(pid));
    assert_eq!(set.last_pid(1).unwrap(), Some(pid));
    assert_eq!(set.ncnt(0).unwrap(), 0);
}

#[test]
fn wait_for_zero_blocks_until_the_value_is_zero() {
    let test = "wait_for_zero_blocks_until_the_value_is_zero";
    if let Some(role) = util::role() {
        assert_eq!(role, "waiter");
        let set = open_arg();
        set.apply(&[Op::add(1, 1)], Wait::Never).unwrap();
        set.apply(&[Op::wait_zero(0)], Wait::Forever).unwrap();
        return;
    }
    let (set, key) = create(&[2, 0]);
    let mut waiter = peer(test, "waiter", key).spawn();
    let pid = waiter.pid();
    until("the waiter waits for zero", || set.zcnt(0).unwrap() == 1);
    assert_eq!(set.last_pid(1).unwrap(), Some(pid), "GETPID names the peer");
    assert_eq!(set.ncnt(0).unwrap(), 0);
    set.apply(&[Op::take(0, 1)], Wait::Never).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    assert!(still_running(&mut waiter), "woken at 1, not 0");
    assert_eq!(set.zcnt(0).unwrap(), 1);
    set.apply(&[Op::take(0, 1)], Wait::Never).unwrap();
    waiter.wait_success();
    assert_eq!(set.values().unwrap(), vec![0, 1]);
    assert_eq!(set.zcnt(0).unwrap(), 0);
}

extern "C" fn ignore(_: libc::c_int) {}

#[test]
fn nowait_would_block_and_a_timed_semop_times_out_through_signals() {
    let test = "nowait_would_block_and_a_timed_semop_times_out_through_signals";
    if let Some(role) = util::role() {
        assert_eq!(role, "waiter");
        let set = open_arg();
        let err = set
            .apply(&[Op::add(1, 1), Op::take(0, 1)], Wait::Never)
            .unwrap_err();
        assert!(matches!(err, Error::WouldBlock { .. }), "{err}");
        assert!(
            err.to_string().contains("semop would have to wait"),
            "{err}"
        );
        assert_eq!(set.values().unwrap(), vec![0, 0], "nothing applied");
        // SIGALRM every 20 ms interrupts the wait: it resumes with the
        // time left and still ends at the timeout, not before.
        let action = nix::sys::signal::SigAction::new(
            nix::sys::signal::SigHandler::Handler(ignore),
            nix::sys::signal::SaFlags::empty(),
            nix::sys::signal::SigSet::empty(),
        );
        // SAFETY: the handler does nothing, so it is async-signal-safe.
        unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGALRM, &action) }.unwrap();
        let tick = libc::timeval {
            tv_sec: 0,
            tv_usec: 20_000,
        };
        let timer = libc::itimerval {
            it_interval: tick,
            it_value: tick,
        };
        // SAFETY: `timer` is a live itimerval read during the call; a null
        // old value is allowed.
        let armed = unsafe { libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()) };
        assert_eq!(armed, 0);
        let timeout = Duration::from_millis(300);
        let start = Instant::now();
        let err = set
            .apply(&[Op::take(0, 1).undo()], Wait::For(timeout))
            .unwrap_err();
        let took = start.elapsed();
        assert!(matches!(err, Error::TimedOut { .. }), "{err}");
        assert!(
            took >= timeout,
            "timed out after {took:?}, before {timeout:?}"
        );
        assert!(took < HANG_GUARD, "{took:?}");
        return;
    }
    let (set, key) = create(&[0, 0]);
    peer(test, "waiter", key).spawn().wait_success();
    assert_eq!(set.values().unwrap(), vec![0, 0]);
}

#[test]
fn sem_undo_gives_back_what_a_killed_holder_took_100_times() {
    let test = "sem_undo_gives_back_what_a_killed_holder_took_100_times";
    if let Some(role) = util::role() {
        assert_eq!(role, "holder");
        let set = open_arg();
        set.apply(
            &[Op::take(0, 1).undo(), Op::add(1, 3).undo()],
            Wait::Forever,
        )
        .unwrap();
        std::thread::sleep(HANG_GUARD * 3);
        return;
    }
    let (set, key) = create(&[1, 0]);
    let mut held = 0;
    for round in 0..100u64 {
        let holder = peer(test, "holder", key).spawn();
        let pid = holder.pid();
        match round % 4 {
            // At once: mostly before the semop, sometimes in the middle.
            0 => {}
            // Right after the hold is seen.
            1 => until("the holder holds", || set.values().unwrap() == vec![0, 3]),
            // A few milliseconds into the hold.
            _ => {
                until("the holder holds", || set.values().unwrap() == vec![0, 3]);
                std::thread::sleep(Duration::from_millis(round % 7));
            }
        }
        if set.last_pid(0).unwrap() == Some(pid) {
            held += 1;
        }
        holder.kill();
        assert_eq!(
            set.values().unwrap(),
            vec![1, 0],
            "round {round}: the kernel did not undo the killed holder's semop"
        );
    }
    assert!(held >= 75, "only {held} kills came while holding");
}

#[test]
fn removing_the_set_wakes_a_waiter_with_removed() {
    let test = "removing_the_set_wakes_a_waiter_with_removed";
    if let Some(role) = util::role() {
        assert_eq!(role, "waiter");
        let set = open_arg();
        let err = set.apply(&[Op::take(0, 1)], Wait::Forever).unwrap_err();
        assert!(matches!(err, Error::Removed { .. }), "{err}");
        assert!(err.to_string().contains("removed while waiting"), "{err}");
        let err = set.value(0).unwrap_err();
        assert!(matches!(err, Error::Removed { .. }), "{err}");
        return;
    }
    let (set, key) = create(&[0]);
    let waiter = peer(test, "waiter", key).spawn();
    until("the waiter waits", || set.ncnt(0).unwrap() == 1);
    set.remove().unwrap();
    waiter.wait_success();
    assert!(SemaphoreSet::open(key).is_err());
}

#[test]
fn racing_creators_all_see_the_initialized_values() {
    let test = "racing_creators_all_see_the_initialized_values";
    if let Some(role) = util::role() {
        assert_eq!(role, "creator");
        // Everyone starts at once: when the barrier set reaches zero.
        let barrier = SemaphoreSet::open_id(util::arg("barrier").parse().unwrap()).unwrap();
        barrier.apply(&[Op::wait_zero(0)], Wait::Forever).unwrap();
        let set = SetOptions::new()
            .count(3)
            .values(&[7, 8, 9])
            .keep()
            .create(key_arg())
            .unwrap_or_else(|err| panic!("create-or-open: {err}"));
        // Read before anyone operates: the values the creator set, never
        // the zeros semget makes.
        assert_eq!(set.values().unwrap(), vec![7, 8, 9]);
        print!("{}", if set.created() { "created" } else { "opened" });
        return;
    }
    const PEERS: usize = 6;
    for round in 0..5 {
        let key = unique_key();
        let _cleanup = RemoveOnDrop(key);
        let barrier = SetOptions::new()
            .values(&[1])
            .create(SysvKey::Private)
            .unwrap();
        let peers: Vec<_> = (0..PEERS)
            .map(|_| {
                peer(test, "creator", key)
                    .arg("barrier", barrier.id().to_string())
                    .capture_stdout()
                    .spawn()
            })
            .collect();
        until("every creator is at the barrier", || {
            barrier.zcnt(0).unwrap() as usize == PEERS
        });
        barrier.apply(&[Op::take(0, 1)], Wait::Never).unwrap();
        let mut created = 0;
        for p in peers {
            let (status, out) = p.wait_stdout();
            assert!(status.success(), "round {round}: {status:?}");
            let out = String::from_utf8_lossy(&out);
            if out.contains("created") {
                created += 1;
            } else {
                assert!(out.contains("opened"), "{out}");
            }
        }
        assert_eq!(created, 1, "round {round}: one creator, the others opened");
        let set = SemaphoreSet::open(key).unwrap();
        assert_eq!(set.values().unwrap(), vec![7, 8, 9]);
    }
}

/// A set made by a plain `semget` (as another program would), not yet
/// initialized: a create that finds it waits for `sem_otime`.
fn raw_semget(key: SysvKey, nsems: i32) -> i32 {
    // SAFETY: semget takes no pointers.
    let id = unsafe { libc::semget(key.raw(), nsems, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
    assert!(id >= 0, "semget: {}", std::io::Error::last_os_error());
    id
}

#[test]
fn a_create_waits_for_the_creator_to_initialize_the_set() {
    let test = "a_create_waits_for_the_creator_to_initialize_the_set";
    if let Some(role) = util::role() {
        let options = SetOptions::new().count(3).values(&[7, 8, 9]);
        match role.as_str() {
            "opener" => {
                let set = options.create(key_arg()).unwrap();
                assert!(!set.created());
                assert_eq!(set.values().unwrap(), vec![4, 5, 6], "the creator's values");
            }
            "impatient" => {
                let err = options
                    .init_timeout(Duration::from_millis(100))
                    .create(key_arg())
                    .unwrap_err();
                assert_eq!(err.raw_os_error(), Some(libc::ETIMEDOUT), "{err}");
                assert!(err.to_string().contains("sem_otime is 0"), "{err}");
            }
            other => panic!("role {other}"),
        }
        return;
    }
    let key = unique_key();
    let _cleanup = RemoveOnDrop(key);
    let id = raw_semget(key, 3);
    peer(test, "impatient", key).spawn().wait_success();
    let mut opener = peer(test, "opener", key).spawn();
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        still_running(&mut opener),
        "the opener did not wait for the values"
    );
    // The creator's half of the handshake: SETALL, then any semop.
    let set = SemaphoreSet::open_id(id).unwrap();
    set.set_values(&[4, 5, 6]).unwrap();
    assert!(still_running(&mut opener), "SETALL alone sets no sem_otime");
    set.apply(&[Op::add(0, 1), Op::take(0, 1)], Wait::Never)
        .unwrap();
    opener.wait_success();
}

#[test]
fn an_exclusive_create_refuses_a_taken_key() {
    let test = "an_exclusive_create_refuses_a_taken_key";
    if let Some(role) = util::role() {
        assert_eq!(role, "second");
        let err = SetOptions::new()
            .exclusive(true)
            .create(key_arg())
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EEXIST), "{err}");
        assert!(err.to_string().contains("already exists"), "{err}");
        // Not exclusive, but another size: refused, not adopted.
        let err = SetOptions::new().count(2).create(key_arg()).unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{err}");
        return;
    }
    let (set, key) = create(&[3]);
    peer(test, "second", key).spawn().wait_success();
    assert_eq!(set.values().unwrap(), vec![3], "left untouched");
}

#[test]
fn the_mode_asked_is_the_mode_set_whatever_the_umask() {
    let test = "the_mode_asked_is_the_mode_set_whatever_the_umask";
    if let Some(role) = util::role() {
        assert_eq!(role, "creator");
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
        let set = SetOptions::new()
            .mode(Mode::ALL_RW)
            .exclusive(true)
            .keep()
            .create(key_arg())
            .unwrap();
        assert!(set.created());
        return;
    }
    let key = unique_key();
    let _cleanup = RemoveOnDrop(key);
    peer(test, "creator", key).spawn().wait_success();
    let set = SemaphoreSet::open(key).expect("the kept set");
    assert!(!set.created());
    let stat = set.stat().unwrap();
    assert_eq!(stat.mode, Mode::ALL_RW);
    assert_eq!(stat.count, 1);
    assert!(stat.last_op.is_some(), "the handshake set sem_otime");
    set.set_mode(Mode::OWNER_RW).unwrap();
    assert_eq!(set.stat().unwrap().mode, Mode::OWNER_RW);
    set.remove().unwrap();
}

#[test]
fn a_set_another_user_made_is_never_adopted() {
    let test = "a_set_another_user_made_is_never_adopted";
    if let Some(role) = util::role() {
        match role.as_str() {
            "squatter" => {
                // nobody takes the key first, with the mode the owner will ask.
                SetOptions::new()
                    .values(&[9])
                    .exclusive(true)
                    .keep()
                    .create(key_arg())
                    .unwrap();
            }
            "stranger" => {
                // nobody may not operate on root's 0600 set.
                let set = SemaphoreSet::open_id(util::arg("id").parse().unwrap());
                let err = match set {
                    Ok(set) => set.apply(&[Op::add(0, 1)], Wait::Never).unwrap_err(),
                    Err(err) => err,
                };
                assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{err}");
                // nor adopt it by a create.
                let err = SetOptions::new().create(key_arg()).unwrap_err();
                assert!(
                    matches!(err, Error::ForeignObject { .. } | Error::Os { .. }),
                    "{err}"
                );
            }
            other => panic!("role {other}"),
        }
        return;
    }
    if !util::is_root() {
        util::skip("needs root to run a peer as nobody");
        return;
    }
    let key = unique_key();
    let _cleanup = RemoveOnDrop(key);
    let mut squatter = peer(test, "squatter", key);
    util::as_nobody(&mut squatter);
    squatter.spawn().wait_success();
    let err = SetOptions::new().create(key).unwrap_err();
    let Error::ForeignObject { owner_uid, .. } = &err else {
        panic!("adopted nobody's set: {err}");
    };
    assert_eq!(*owner_uid, util::NOBODY.0);
    let squatted = SemaphoreSet::open(key).unwrap();
    assert_eq!(squatted.values().unwrap(), vec![9], "left as found");
    squatted.remove().unwrap();

    let (set, key) = create(&[1]);
    let mut stranger = peer(test, "stranger", key).arg("id", set.id().to_string());
    util::as_nobody(&mut stranger);
    stranger.spawn().wait_success();
    assert_eq!(set.values().unwrap(), vec![1]);
}

#[test]
fn ipcs_shows_the_values_a_peer_set() {
    let test = "ipcs_shows_the_values_a_peer_set";
    if let Some(role) = util::role() {
        assert_eq!(role, "setter");
        let set = open_arg();
        set.set_values(&[3, 1, 4]).unwrap();
        set.apply(&[Op::add(2, 1).undo()], Wait::Never).unwrap();
        // The undo reverts the add when this peer exits: 3 1 4 stays.
        return;
    }
    let (set, key) = create(&[0, 0, 0]);
    let setter = peer(test, "setter", key);
    let pid = {
        let running = setter.spawn();
        let pid = running.pid();
        running.wait_success();
        pid
    };
    let out = match std::process::Command::new("ipcs")
        .args(["-s", "-i", &set.id().to_string()])
        .output()
    {
        Ok(out) => out,
        Err(err) => {
            util::skip(format!("ipcs: {err}"));
            return;
        }
    };
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("nsems = 3"), "{text}");
    assert!(text.contains("mode=0600"), "{text}");
    let rows: Vec<Vec<String>> = BufReader::new(text.as_bytes())
        .lines()
        .map(|l| l.unwrap())
        .skip_while(|l| !l.starts_with("semnum"))
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .filter(|r: &Vec<String>| r.len() == 5)
        .collect();
    let values: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(values, ["3", "1", "4"], "{text}");
    // The peer's exit undid its add on semaphore 2, as the peer.
    assert_eq!(rows[2][4], pid.to_string(), "{text}");
    assert_eq!(set.values().unwrap(), vec![3, 1, 4]);
    // What `unipc stat` and `unipc::open::describe` report agrees.
    let by_id: unipc::Endpoint = format!("sysv-sem:id={}", set.id()).parse().unwrap();
    let fields = unipc::open::describe(&by_id).unwrap();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| panic!("no {name} in {fields:?}"))
    };
    assert_eq!(field("semaphores"), "3");
    assert_eq!(field("values"), "3,1,4");
    assert_eq!(field("ncnt"), "0,0,0");
    assert_eq!(field("last_pids"), format!("{pid},{pid},{pid}"));
    assert_eq!(field("mode"), "600");
}

#[test]
fn bad_operations_are_refused_before_any_call() {
    let test = "bad_operations_are_refused_before_any_call";
    if let Some(role) = util::role() {
        assert_eq!(role, "caller");
        let set = open_arg();
        let err = set
            .apply(&[Op::add(0, 1), Op::take(2, 1)], Wait::Never)
            .unwrap_err();
        let Error::NoSuchSemaphore { index, count, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!((*index, *count), (2, 2));
        assert!(
            err.to_string()
                .contains("semaphore 2 does not exist: the set has 2"),
            "{err}"
        );
        let semopm: u64 = std::fs::read_to_string("/proc/sys/kernel/sem")
            .unwrap()
            .split_whitespace()
            .nth(2)
            .unwrap()
            .parse()
            .unwrap();
        let many = vec![Op::add(0, 1); semopm as usize + 1];
        let err = set.apply(&many, Wait::Never).unwrap_err();
        let Error::LimitExceeded {
            limit, requested, ..
        } = &err
        else {
            panic!("{err}");
        };
        assert_eq!((*limit, *requested), (semopm, semopm + 1));
        assert!(err.to_string().contains("SEMOPM"), "{err}");
        for (ops, what) in [
            (vec![Op::add(0, 0)], "add 0"),
            (vec![Op::add(0, 40000)], "past SEMVMX"),
            (vec![], "no op"),
        ] {
            let err = set.apply(&ops, Wait::Never).unwrap_err();
            assert!(
                matches!(err, Error::Unsupported { .. } | Error::LimitExceeded { .. }),
                "{what}: {err}"
            );
        }
        let err = set.apply(&[Op::add(0, 32767)], Wait::Never).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ERANGE), "{err}");
        assert!(set.value(5).is_err());
        assert!(set.set_value(0, 40000).is_err());
        assert!(set.set_values(&[1]).is_err());
        assert_eq!(set.values().unwrap(), vec![1, 2], "nothing applied");
        return;
    }
    let (set, key) = create(&[1, 2]);
    peer(test, "caller", key).spawn().wait_success();
    assert_eq!(set.values().unwrap(), vec![1, 2]);
    for options in [
        SetOptions::new().count(0),
        SetOptions::new().count(2).values(&[1]),
        SetOptions::new().values(&[40000]),
        SetOptions::new().count(1 << 20),
    ] {
        assert!(options.create(unique_key()).is_err(), "{options:?}");
    }
}

#[test]
fn the_creator_removes_only_the_set_it_made() {
    let test = "the_creator_removes_only_the_set_it_made";
    if let Some(role) = util::role() {
        assert_eq!(role, "replacer");
        // Another creator takes the key once the first set is gone.
        SetOptions::new()
            .values(&[5])
            .exclusive(true)
            .keep()
            .create(key_arg())
            .unwrap();
        return;
    }
    let (set, key) = create(&[1]);
    let _cleanup = RemoveOnDrop(key);
    SemaphoreSet::open(key).unwrap().remove().unwrap();
    peer(test, "replacer", key).spawn().wait_success();
    drop(set);
    let survivor = SemaphoreSet::open(key).expect("the replacement survives the first drop");
    assert_eq!(survivor.values().unwrap(), vec![5]);

    // Dropped without keep: gone; kept: there.
    let (made, key) = create(&[0]);
    drop(made);
    assert!(SemaphoreSet::open(key).is_err());
    let key = unique_key();
    let _kept = RemoveOnDrop(key);
    drop(SetOptions::new().keep().create(key).unwrap());
    assert!(SemaphoreSet::open(key).is_ok());
}
