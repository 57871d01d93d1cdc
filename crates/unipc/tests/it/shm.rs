//! Shared memory between real processes: POSIX objects and System V
//! segments.
//!
//! Every object is made by the parent with a guard that removes it (or by a
//! peer, kept, and removed by a guard in the parent), so a failing test
//! leaves nothing in /dev/shm or `ipcs -m`.

use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicU32, Ordering};

use unipc::name::{PosixName, SysvKey};
use unipc::shm::{posix, sysv, Access};
use unipc::{Error, Mode};

use crate::util;

fn fresh_name() -> PosixName {
    PosixName::new(&format!("/{}", util::unique("shm"))).unwrap()
}

fn unique_key() -> SysvKey {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    SysvKey::Key(((0x76 << 24) | ((pid & 0xffff) << 8) | (n & 0xff)) as i32)
}

/// Unlinks a POSIX name on drop (for objects a peer made and kept).
struct Unlink(PosixName);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = posix::unlink(&self.0);
    }
}

/// Removes the segment under a key on drop (for segments a peer made).
struct Rmid(SysvKey);

impl Drop for Rmid {
    fn drop(&mut self) {
        if let Ok(segment) = sysv::SegmentOptions::new().open(self.0) {
            let _ = segment.remove();
        }
    }
}

fn name_arg() -> PosixName {
    PosixName::new(&util::arg("name")).unwrap()
}

fn key_arg() -> SysvKey {
    util::arg("key").parse().unwrap()
}

fn dev_shm(name: &PosixName) -> std::path::PathBuf {
    std::path::Path::new("/dev/shm").join(&name.as_str()[1..])
}

/// The `/proc/sysvipc/shm` row of segment `id`: (size, attach count).
fn proc_row(id: i32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/sysvipc/shm").unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.split_whitespace().collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (shmid, size, nattch) = (col("shmid"), col("size"), col("nattch"));
    lines.find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields[shmid].parse::<i32>().ok()? == id).then(|| {
            (
                fields[size].parse().unwrap(),
                fields[nattch].parse().unwrap(),
            )
        })
    })
}

/// [`proc_row`] once it equals `want`, or what it is after a few seconds.
/// Attachments are inherited across fork, so a peer another test forks
/// counts as attached until it execs: counts settle, not at once.
fn settled_row(id: i32, want: Option<(u64, u64)>) -> Option<(u64, u64)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let row = proc_row(id);
        if row == want || std::time::Instant::now() > deadline {
            return row;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn posix_data_written_by_one_process_is_seen_by_the_other() {
    if let Some(role) = util::role() {
        assert_eq!(role, "peer");
        let name = name_arg();
        // Another program sees it as a plain file in /dev/shm.
        let file = std::fs::read(dev_shm(&name)).unwrap();
        assert_eq!(file.len(), 4096);
        assert_eq!(&file[..11], b"from parent");
        let segment = posix::SegmentOptions::new().open(&name).unwrap();
        assert!(!segment.created());
        let mut got = [0; 11];
        segment.read_at(0, &mut got).unwrap();
        assert_eq!(&got, b"from parent");
        // SAFETY: the parent, the only other process with the object, does
        // not resize it while this peer runs.
        let map = unsafe { segment.map(Access::ReadWrite) }.unwrap();
        assert_eq!(map.len(), 4096);
        map.write_at(100, b"from peer").unwrap();
        // Past the end: refused, naming both sizes.
        let err = segment.write_at(4090, b"0123456789").unwrap_err();
        assert!(matches!(err, Error::OutOfBounds { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("10 bytes at offset 4090") && text.contains("4096 bytes"),
            "{text}"
        );
        let err = map.read_at(4096, &mut [0; 1]).unwrap_err();
        assert!(matches!(err, Error::OutOfBounds { .. }), "{err}");
        return;
    }
    let name = fresh_name();
    let segment = posix::SegmentOptions::new()
        .size(4096)
        .exclusive(true)
        .create(&name)
        .unwrap();
    assert!(segment.created());
    segment.write_at(0, b"from parent").unwrap();
    util::Peer::new(
        "shm::posix_data_written_by_one_process_is_seen_by_the_other",
        "peer",
    )
    .arg("name", name.as_str())
    .spawn()
    .wait_success();
    let mut got = [0; 9];
    segment.read_at(100, &mut got).unwrap();
    assert_eq!(&got, b"from peer");
    drop(segment);
    assert!(!dev_shm(&name).exists(), "the creator's drop unlinks");
}

#[test]
fn sysv_data_crosses_and_the_segment_shows_in_proc_with_size_and_attach_count() {
    if let Some(role) = util::role() {
        assert_eq!(role, "peer");
        let segment = sysv::SegmentOptions::new().open(key_arg()).unwrap();
        let map = segment.attach(Access::ReadWrite).unwrap();
        let mut got = [0; 11];
        map.read_at(0, &mut got).unwrap();
        assert_eq!(&got, b"from parent");
        map.write_at(5000, b"from peer").unwrap();
        let stat = segment.stat().unwrap();
        assert_eq!(stat.size, 10_000);
        assert_eq!(
            settled_row(segment.id(), Some((10_000, 2))),
            Some((10_000, 2))
        );
        let err = map.write_at(9995, b"0123456789").unwrap_err();
        assert!(err.to_string().contains("10000 bytes"), "{err}");
        return;
    }
    let key = unique_key();
    let segment = sysv::SegmentOptions::new()
        .size(10_000)
        .exclusive(true)
        .create(key)
        .unwrap();
    let map = segment.attach(Access::ReadWrite).unwrap();
    map.write_at(0, b"from parent").unwrap();
    assert_eq!(
        settled_row(segment.id(), Some((10_000, 1))),
        Some((10_000, 1))
    );
    util::Peer::new(
        "shm::sysv_data_crosses_and_the_segment_shows_in_proc_with_size_and_attach_count",
        "peer",
    )
    .arg("key", key.to_string())
    .spawn()
    .wait_success();
    let mut got = [0; 9];
    map.read_at(5000, &mut got).unwrap();
    assert_eq!(&got, b"from peer");
    assert_eq!(
        settled_row(segment.id(), Some((10_000, 1))),
        Some((10_000, 1)),
        "the peer detached when it exited"
    );
    let stat = segment.stat().unwrap();
    assert_eq!(stat.attached, 1);
    assert_eq!(stat.creator_pid, std::process::id() as i32);
    assert!(stat.last_attach.is_some() && stat.last_detach.is_some());
    let id = segment.id();
    drop(map);
    drop(segment);
    assert_eq!(settled_row(id, None), None, "the creator's drop removes it");
}

#[test]
fn a_removed_sysv_segment_stays_usable_until_the_last_detach() {
    if let Some(role) = util::role() {
        assert_eq!(role, "peer");
        let id: i32 = util::arg("id").parse().unwrap();
        let segment = sysv::Segment::open_id(id).unwrap();
        assert!(segment.stat().unwrap().removed);
        let map = segment.attach(Access::ReadWrite).unwrap();
        let mut got = [0; 6];
        map.read_at(0, &mut got).unwrap();
        assert_eq!(&got, b"before");
        map.write_at(10, b"after").unwrap();
        return;
    }
    let key = unique_key();
    let segment = sysv::SegmentOptions::new()
        .size(64)
        .exclusive(true)
        .create(key)
        .unwrap();
    let map = segment.attach(Access::ReadWrite).unwrap();
    map.write_at(0, b"before").unwrap();
    segment.remove().unwrap();
    let id = segment.id();
    // The key is free at once; the memory stays while attached.
    assert!(sysv::SegmentOptions::new().open(key).is_err());
    assert_eq!(settled_row(id, Some((64, 1))), Some((64, 1)));
    util::Peer::new(
        "shm::a_removed_sysv_segment_stays_usable_until_the_last_detach",
        "peer",
    )
    .arg("id", id.to_string())
    .spawn()
    .wait_success();
    let mut got = [0; 5];
    map.read_at(10, &mut got).unwrap();
    assert_eq!(&got, b"after");
    drop(segment);
    assert_eq!(settled_row(id, Some((64, 1))), Some((64, 1)));
    drop(map);
    assert_eq!(settled_row(id, None), None, "gone after the last detach");
}

#[test]
fn modes_are_exact_whatever_the_umask() {
    if let Some(role) = util::role() {
        assert_eq!(role, "peer");
        rustix::process::umask(rustix::fs::Mode::from_bits_retain(0o077));
        let mode = Mode::new(0o644).unwrap();
        posix::SegmentOptions::new()
            .size(10)
            .mode(mode)
            .exclusive(true)
            .keep()
            .create(&name_arg())
            .unwrap();
        sysv::SegmentOptions::new()
            .size(10)
            .mode(mode)
            .exclusive(true)
            .keep()
            .create(key_arg())
            .unwrap();
        return;
    }
    let name = fresh_name();
    let key = unique_key();
    let _unlink = Unlink(name.clone());
    let _rmid = Rmid(key);
    util::Peer::new("shm::modes_are_exact_whatever_the_umask", "peer")
        .arg("name", name.as_str())
        .arg("key", key.to_string())
        .spawn()
        .wait_success();
    let meta = std::fs::metadata(dev_shm(&name)).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o644);
    assert_eq!(meta.len(), 10);
    let segment = sysv::SegmentOptions::new().open(key).unwrap();
    assert_eq!(segment.stat().unwrap().mode.bits(), 0o644);
    // Adopting our own object with the mode asked works, and does not
    // remove it on drop.
    let adopted = posix::SegmentOptions::new()
        .mode(Mode::new(0o644).unwrap())
        .create(&name)
        .unwrap();
    assert!(!adopted.created());
    drop(adopted);
    assert!(dev_shm(&name).exists());
}

#[test]
fn exclusive_create_over_an_existing_name_or_key_fails() {
    if let Some(role) = util::role() {
        assert_eq!(role, "peer");
        let err = posix::SegmentOptions::new()
            .size(8)
            .exclusive(true)
            .create(&name_arg())
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EEXIST), "{err}");
        assert!(err.to_string().contains("already exists"), "{err}");
        let err = sysv::SegmentOptions::new()
            .size(8)
            .exclusive(true)
            .create(key_arg())
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EEXIST), "{err}");
        assert!(err.to_string().starts_with("sysv-shm:"), "{err}");
        return;
    }
    let name = fresh_name();
    let key = unique_key();
    let _posix = posix::SegmentOptions::new()
        .size(8)
        .exclusive(true)
        .create(&name)
        .unwrap();
    let _sysv = sysv::SegmentOptions::new()
        .size(8)
        .exclusive(true)
        .create(key)
        .unwrap();
    util::Peer::new(
        "shm::exclusive_create_over_an_existing_name_or_key_fails",
        "peer",
    )
    .arg("name", name.as_str())
    .arg("key", key.to_string())
    .spawn()
    .wait_success();
}

#[test]
fn a_squatted_name_or_key_is_refused_and_left_untouched() {
    if let Some(role) = util::role() {
        assert_eq!(role, "squatter");
        assert!(!util::is_root());
        posix::SegmentOptions::new()
            .size(16)
            .mode(Mode::ALL_RW)
            .exclusive(true)
            .keep()
            .create(&name_arg())
            .unwrap();
        sysv::SegmentOptions::new()
            .size(16)
            .mode(Mode::ALL_RW)
            .exclusive(true)
            .keep()
            .create(key_arg())
            .unwrap();
        return;
    }
    if !util::is_root() {
        util::skip("needs root to switch a peer to nobody");
        return;
    }
    let name = fresh_name();
    let key = unique_key();
    let _unlink = Unlink(name.clone());
    let _rmid = Rmid(key);
    let mut squatter = util::Peer::new(
        "shm::a_squatted_name_or_key_is_refused_and_left_untouched",
        "squatter",
    )
    .arg("name", name.as_str())
    .arg("key", key.to_string());
    util::as_nobody(&mut squatter);
    squatter.spawn().wait_success();

    for mode in [Mode::OWNER_RW, Mode::ALL_RW] {
        let err = posix::SegmentOptions::new()
            .size(4096)
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
        assert!(
            err.to_string()
                .contains("remove it, or use a different name"),
            "{err}"
        );
        let err = sysv::SegmentOptions::new()
            .size(16)
            .mode(mode)
            .create(key)
            .unwrap_err();
        match &err {
            Error::ForeignObject {
                owner_uid,
                creator_uid,
                ..
            } => assert_eq!(
                (*owner_uid, *creator_uid),
                (util::NOBODY.0, Some(util::NOBODY.0))
            ),
            other => panic!("expected ForeignObject, got {other:?}"),
        }
    }
    // Left as found: same owner, mode and size.
    let meta = std::fs::metadata(dev_shm(&name)).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o666);
    assert_eq!(meta.len(), 16);
    let stat = sysv::SegmentOptions::new()
        .open(key)
        .unwrap()
        .stat()
        .unwrap();
    assert_eq!(
        (stat.uid, stat.mode.bits(), stat.size),
        (util::NOBODY.0, 0o666, 16)
    );
}

#[test]
fn sizes_the_kernel_cannot_hold_are_refused_before_anything_is_made() {
    if let Some(role) = util::role() {
        assert_eq!(role, "peer");
        let key = key_arg();
        let err = sysv::SegmentOptions::new().create(key).unwrap_err();
        assert!(err.to_string().contains("size 0"), "{err}");
        let err = sysv::SegmentOptions::new()
            .size(usize::MAX)
            .create(key)
            .unwrap_err();
        assert!(matches!(err, Error::LimitExceeded { .. }), "{err}");
        let err = posix::SegmentOptions::new()
            .size(u64::MAX / 2)
            .create(&name_arg())
            .unwrap_err();
        assert!(err.to_string().contains("free space of /dev/shm"), "{err}");
        return;
    }
    let name = fresh_name();
    let key = unique_key();
    util::Peer::new(
        "shm::sizes_the_kernel_cannot_hold_are_refused_before_anything_is_made",
        "peer",
    )
    .arg("name", name.as_str())
    .arg("key", key.to_string())
    .spawn()
    .wait_success();
    assert!(!dev_shm(&name).exists());
    assert!(sysv::SegmentOptions::new().open(key).is_err());
}

#[test]
fn read_only_handles_refuse_writes() {
    if let Some(role) = util::role() {
        assert_eq!(role, "peer");
        let segment = posix::SegmentOptions::new()
            .access(Access::ReadOnly)
            .open(&name_arg())
            .unwrap();
        assert!(segment.write_at(0, b"x").is_err());
        // SAFETY: the parent does not resize the object while this runs.
        let map = unsafe { segment.map(Access::ReadOnly) }.unwrap();
        assert!(map.write_at(0, b"x").is_err());
        let mut got = [0; 2];
        map.read_at(0, &mut got).unwrap();
        assert_eq!(&got, b"ro");
        let sysv = sysv::SegmentOptions::new().open(key_arg()).unwrap();
        let map = sysv.attach(Access::ReadOnly).unwrap();
        assert!(!map.is_writable());
        assert!(map.write_at(0, b"x").is_err());
        return;
    }
    let name = fresh_name();
    let key = unique_key();
    let posix = posix::SegmentOptions::new()
        .size(8)
        .exclusive(true)
        .create(&name)
        .unwrap();
    posix.write_at(0, b"ro").unwrap();
    let _sysv = sysv::SegmentOptions::new()
        .size(8)
        .exclusive(true)
        .create(key)
        .unwrap();
    util::Peer::new("shm::read_only_handles_refuse_writes", "peer")
        .arg("name", name.as_str())
        .arg("key", key.to_string())
        .spawn()
        .wait_success();
}

#[test]
fn another_users_private_objects_are_refused_with_a_hint() {
    if let Some(role) = util::role() {
        assert_eq!(role, "nobody");
        assert!(!util::is_root());
        for access in [Access::ReadOnly, Access::ReadWrite] {
            let err = posix::SegmentOptions::new()
                .access(access)
                .open(&name_arg())
                .unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{err}");
            let text = err.to_string();
            assert!(text.starts_with("shm:/"), "{text}");
            assert!(text.contains("check the object's owner and mode"), "{text}");
        }
        let segment = sysv::SegmentOptions::new().open(key_arg()).unwrap();
        let err = segment.attach(Access::ReadOnly).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{err}");
        assert!(err.to_string().contains("lacks permission"), "{err}");
        assert!(
            segment.remove().is_err(),
            "nobody may not remove root's segment"
        );
        return;
    }
    if !util::is_root() {
        util::skip("needs root to switch a peer to nobody");
        return;
    }
    let name = fresh_name();
    let key = unique_key();
    let _posix = posix::SegmentOptions::new()
        .size(8)
        .exclusive(true)
        .create(&name)
        .unwrap();
    let sysv = sysv::SegmentOptions::new()
        .size(8)
        .exclusive(true)
        .create(key)
        .unwrap();
    let mut peer = util::Peer::new(
        "shm::another_users_private_objects_are_refused_with_a_hint",
        "nobody",
    )
    .arg("name", name.as_str())
    .arg("key", key.to_string());
    util::as_nobody(&mut peer);
    peer.spawn().wait_success();
    assert!(!sysv.stat().unwrap().removed);
}

#[test]
fn a_peer_resizes_and_changes_modes_and_reads_past_a_shrunk_end_are_refused() {
    if let Some(role) = util::role() {
        assert_eq!(role, "peer");
        let segment = posix::Segment::open(&name_arg()).unwrap();
        assert_eq!(segment.size().unwrap(), 4096);
        segment.set_size(100).unwrap();
        let sysv = sysv::SegmentOptions::new().open(key_arg()).unwrap();
        sysv.set_mode(Mode::new(0o640).unwrap()).unwrap();
        return;
    }
    let name = fresh_name();
    let key = unique_key();
    let posix = posix::SegmentOptions::new()
        .size(4096)
        .exclusive(true)
        .create(&name)
        .unwrap();
    let sysv = sysv::SegmentOptions::new()
        .size(64)
        .exclusive(true)
        .create(key)
        .unwrap();
    util::Peer::new(
        "shm::a_peer_resizes_and_changes_modes_and_reads_past_a_shrunk_end_are_refused",
        "peer",
    )
    .arg("name", name.as_str())
    .arg("key", key.to_string())
    .spawn()
    .wait_success();
    // Read through the descriptor, a shrunk object is an error, not SIGBUS.
    let err = posix.read_at(200, &mut [0; 8]).unwrap_err();
    assert!(matches!(err, Error::OutOfBounds { size: 100, .. }), "{err}");
    assert_eq!(std::fs::metadata(dev_shm(&name)).unwrap().len(), 100);
    posix.set_size(8192).unwrap();
    let mut zeros = [1; 8];
    posix.read_at(8000, &mut zeros).unwrap();
    assert_eq!(zeros, [0; 8], "grown bytes read as zero");
    assert_eq!(sysv.stat().unwrap().mode.bits(), 0o640);
}

/// An unprivileged user plants a symlink (to a file of root's) and a FIFO
/// in the world-writable /dev/shm under names root then creates: neither
/// is followed or used, and the file the link names is left untouched
/// (a create with a size would otherwise truncate it).
#[test]
fn planted_symlinks_and_fifos_in_dev_shm_are_refused() {
    const TEST: &str = "shm::planted_symlinks_and_fifos_in_dev_shm_are_refused";
    if let Some(role) = util::role() {
        assert_eq!(role, "attacker");
        let link = dev_shm(&util::arg("link").parse().unwrap());
        std::os::unix::fs::symlink(util::arg("target"), &link).unwrap();
        let fifo = dev_shm(&util::arg("fifo").parse().unwrap());
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o666),
            0,
        )
        .unwrap();
        return;
    }
    let dir = util::TempDir::new();
    let target = dir.join("precious");
    std::fs::write(&target, b"precious contents").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (link, fifo) = (fresh_name(), fresh_name());
    let mut attacker = util::Peer::new(TEST, "attacker")
        .arg("link", link.as_str())
        .arg("fifo", fifo.as_str())
        .arg("target", target.as_os_str());
    util::as_nobody(&mut attacker);
    attacker.spawn().wait_success();
    struct Planted(Vec<std::path::PathBuf>);
    impl Drop for Planted {
        fn drop(&mut self) {
            for path in &self.0 {
                let _ = std::fs::remove_file(path);
            }
        }
    }
    let _planted = Planted(vec![dev_shm(&link), dev_shm(&fifo)]);

    // The owner and mode match what is asked, so only the link check
    // stands between this create and a truncated file.
    let err = posix::SegmentOptions::new()
        .size(4)
        .mode(Mode::new(0o644).unwrap())
        .create(&link)
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{err}");
    assert!(err.to_string().contains("not followed"), "{err}");
    let err = posix::Segment::open(&link).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{err}");
    assert_eq!(std::fs::read(&target).unwrap(), b"precious contents");

    // A FIFO neither blocks the open nor is used.
    for err in [
        posix::SegmentOptions::new()
            .size(4)
            .create(&fifo)
            .unwrap_err(),
        posix::Segment::open(&fifo).unwrap_err(),
    ] {
        assert_eq!(err.raw_os_error(), Some(libc::ENODEV), "{err}");
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }
}
