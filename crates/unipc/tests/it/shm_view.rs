//! Typed views of shared memory between real processes: a `#[repr(C)]`
//! header written by one and read by the other, an atomic counter two
//! processes increment at once, and the refusals (past the end, misaligned,
//! read-only).
//!
//! Every segment is made by the parent with a guard that removes it.

use std::mem::{align_of, offset_of, size_of};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytemuck::{Pod, Zeroable};
use unipc::name::SysvKey;
use unipc::shm::{posix, sysv, Access};
use unipc::Error;

use crate::util;

/// The record the two processes share.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
struct Header {
    magic: u32,
    count: u32,
    values: [u64; 8],
}

// The layout is frozen: both processes (and any other program reading the
// segment) agree on it.
const _: () = {
    assert!(size_of::<Header>() == 72);
    assert!(align_of::<Header>() == 8);
    assert!(offset_of!(Header, magic) == 0);
    assert!(offset_of!(Header, count) == 4);
    assert!(offset_of!(Header, values) == 8);
};

const MAGIC: u32 = 0x756e_6970; // "unip"
const REPLY: u32 = 0x7065_6572; // "peer"

fn unique_key() -> SysvKey {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    SysvKey::Key(((0x77 << 24) | ((pid & 0xffff) << 8) | (n & 0xff)) as i32)
}

fn key_arg() -> SysvKey {
    util::arg("key").parse().unwrap()
}

fn create(size: usize) -> (SysvKey, sysv::Segment) {
    let key = unique_key();
    let segment = sysv::SegmentOptions::new()
        .size(size)
        .exclusive(true)
        .create(key)
        .unwrap();
    (key, segment)
}

#[test]
fn a_repr_c_header_written_by_one_process_is_read_by_the_other() {
    if let Some(role) = util::role() {
        assert_eq!(role, "peer");
        let segment = sysv::SegmentOptions::new().open(key_arg()).unwrap();
        let map = segment.attach(Access::ReadWrite).unwrap();
        let header = map.view::<Header>(0).unwrap().load();
        // Validate before trusting: the magic, and a count within the array.
        assert_eq!(header.magic, MAGIC);
        assert!(header.count as usize <= header.values.len());
        assert_eq!(header.count, 8);
        assert_eq!(header.values, [1, 1, 2, 3, 5, 8, 13, 21]);
        let doubled = map.slice_view::<u64>(1024, 8).unwrap();
        for (i, value) in header.values.iter().enumerate() {
            doubled.set(i, &(value * 2)).unwrap();
        }
        map.view::<Header>(512)
            .unwrap()
            .store(&Header {
                magic: REPLY,
                count: 0,
                values: [0; 8],
            })
            .unwrap();
        return;
    }
    let (key, segment) = create(4096);
    let map = segment.attach(Access::ReadWrite).unwrap();
    let header = Header {
        magic: MAGIC,
        count: 8,
        values: [1, 1, 2, 3, 5, 8, 13, 21],
    };
    map.view::<Header>(0).unwrap().store(&header).unwrap();
    util::Peer::new(
        "shm_view::a_repr_c_header_written_by_one_process_is_read_by_the_other",
        "peer",
    )
    .arg("key", key.to_string())
    .spawn()
    .wait_success();
    assert_eq!(map.view::<Header>(512).unwrap().load().magic, REPLY);
    let doubled = map.slice_view::<u64>(1024, 8).unwrap();
    let got: Vec<u64> = (0..doubled.len())
        .map(|i| doubled.get(i).unwrap())
        .collect();
    assert_eq!(got, [2, 2, 4, 6, 10, 16, 26, 42]);
    // The same bytes through the untyped copy: native-endian u64s.
    let mut raw = [0; 8];
    map.read_at(1024 + 7 * 8, &mut raw).unwrap();
    assert_eq!(u64::from_ne_bytes(raw), 42);
    // The header the parent wrote is untouched.
    assert_eq!(map.view::<Header>(0).unwrap().load(), header);
}

const INCREMENTS: u64 = 100_000;

/// Offsets in the counter segment: two start flags, then the counter.
const READY: usize = 0;
const COUNTER: usize = 8;

/// Says this process is ready, waits for the other, then increments.
fn race(map: &unipc::shm::Mapping) {
    let ready = map.atomic_u32(READY).unwrap();
    let counter = map.atomic_u64(COUNTER).unwrap();
    ready.fetch_add(1, Ordering::AcqRel);
    let start = Instant::now();
    while ready.load(Ordering::Acquire) < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the other process never started"
        );
        std::hint::spin_loop();
    }
    for _ in 0..INCREMENTS {
        counter.fetch_add(1, Ordering::AcqRel);
    }
}

#[test]
fn an_atomic_counter_incremented_by_two_processes_at_once_loses_nothing() {
    if let Some(role) = util::role() {
        assert_eq!(role, "peer");
        let segment = sysv::SegmentOptions::new().open(key_arg()).unwrap();
        let map = segment.attach(Access::ReadWrite).unwrap();
        race(&map);
        return;
    }
    let (key, segment) = create(4096);
    let map = segment.attach(Access::ReadWrite).unwrap();
    let peer = util::Peer::new(
        "shm_view::an_atomic_counter_incremented_by_two_processes_at_once_loses_nothing",
        "peer",
    )
    .arg("key", key.to_string())
    .spawn();
    race(&map);
    peer.wait_success();
    assert_eq!(
        map.atomic_u64(COUNTER).unwrap().load(Ordering::Acquire),
        2 * INCREMENTS
    );
    assert_eq!(map.atomic_u32(READY).unwrap().load(Ordering::Acquire), 2);
    // The copy sees the same word.
    assert_eq!(map.view::<u64>(COUNTER).unwrap().load(), 2 * INCREMENTS);
}

#[test]
fn views_past_the_end_misaligned_or_read_only_are_refused() {
    let segment = sysv::SegmentOptions::new()
        .size(4096)
        .create(SysvKey::Private)
        .unwrap();
    let map = segment.attach(Access::ReadWrite).unwrap();
    let object = map.object().to_string();

    // Past the end: names the offset, size × count and the object's size.
    let err = map.view::<Header>(4096 - 64).unwrap_err();
    assert!(
        matches!(
            err,
            Error::OutOfBounds {
                offset: 4032,
                len: 72,
                size: 4096,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!("{object}: view of 72 bytes at offset 4032 runs past the end of the object, which is 4096 bytes")
    );
    let err = map.slice_view::<u64>(8, 512).unwrap_err();
    assert!(
        matches!(
            err,
            Error::OutOfBounds {
                offset: 8,
                len: 4096,
                size: 4096,
                ..
            }
        ),
        "{err}"
    );
    // A count whose product overflows is refused, not wrapped.
    let err = map.slice_view::<u64>(0, usize::MAX / 8 + 2).unwrap_err();
    assert!(
        matches!(err, Error::OutOfBounds { len: u64::MAX, .. }),
        "{err}"
    );
    assert!(matches!(
        map.atomic_u64(4096).unwrap_err(),
        Error::OutOfBounds { .. }
    ));
    assert!(matches!(
        map.atomic_u32(usize::MAX - 1).unwrap_err(),
        Error::OutOfBounds { .. }
    ));

    // Misaligned: names the alignment.
    let err = map.view::<Header>(4).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Misaligned {
                offset: 4,
                align: 8,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{object}: view at offset 4 is misaligned: it needs an offset that is a multiple of 8"
        )
    );
    assert!(matches!(
        map.atomic_u32(2).unwrap_err(),
        Error::Misaligned { align: 4, .. }
    ));
    assert!(matches!(
        map.atomic_u64(12).unwrap_err(),
        Error::Misaligned { align: 8, .. }
    ));
    assert!(matches!(
        map.slice_view::<u32>(1, 4).unwrap_err(),
        Error::Misaligned { align: 4, .. }
    ));

    // Element indexes are checked one by one.
    let slice = map.slice_view::<u32>(16, 4).unwrap();
    slice.set(3, &7).unwrap();
    assert_eq!(slice.get(3).unwrap(), 7);
    let err = slice.get(4).unwrap_err();
    assert!(
        matches!(
            err,
            Error::IndexOutOfRange {
                index: 4,
                count: 4,
                ..
            }
        ),
        "{err}"
    );
    assert!(slice.set(usize::MAX, &1).is_err());
    assert_eq!(
        map.view::<u32>(32).unwrap().load(),
        0,
        "nothing written past"
    );

    // Read-only: loads work, stores and atomics are refused (an atomic
    // store there would be SIGSEGV).
    let read_only = segment.attach(Access::ReadOnly).unwrap();
    assert_eq!(
        read_only.slice_view::<u32>(16, 4).unwrap().get(3).unwrap(),
        7
    );
    assert!(matches!(
        read_only.view::<u32>(16).unwrap().store(&1).unwrap_err(),
        Error::Unsupported { .. }
    ));
    assert!(matches!(
        read_only
            .slice_view::<u32>(16, 4)
            .unwrap()
            .set(0, &1)
            .unwrap_err(),
        Error::Unsupported { .. }
    ));
    assert!(matches!(
        read_only.atomic_u64(8).unwrap_err(),
        Error::Unsupported { .. }
    ));
    assert_eq!(slice.get(0).unwrap(), 0);
}

#[test]
fn any_offset_and_count_is_refused_or_reads_and_writes_inside() {
    // A small deterministic sweep over a real mapping, edges included: every
    // placement either errors or works for every element, and nothing
    // outside the asked range changes.
    let segment = sysv::SegmentOptions::new()
        .size(256)
        .create(SysvKey::Private)
        .unwrap();
    let map = segment.attach(Access::ReadWrite).unwrap();
    let len = map.len();
    assert_eq!(len, 256);
    let offsets = (0..=264)
        .chain([usize::MAX / 2, usize::MAX - 8, usize::MAX])
        .collect::<Vec<_>>();
    let counts = (0..=40)
        .chain([usize::MAX / 16 + 1, usize::MAX / 8 + 2, usize::MAX])
        .collect::<Vec<_>>();
    for &offset in &offsets {
        for &count in &counts {
            map.write_at(0, &[0xAA; 256]).unwrap();
            match map.slice_view::<u64>(offset, count) {
                Ok(slice) => {
                    assert_eq!(offset % 8, 0);
                    assert!(offset + count * 8 <= len, "{offset} {count}");
                    for i in 0..count {
                        assert_eq!(slice.get(i).unwrap(), 0xAAAA_AAAA_AAAA_AAAA);
                        slice.set(i, &0).unwrap();
                    }
                    assert!(slice.get(count).is_err());
                    let mut bytes = [0; 256];
                    map.read_at(0, &mut bytes).unwrap();
                    for (at, byte) in bytes.iter().enumerate() {
                        let inside = at >= offset && at < offset + count * 8;
                        assert_eq!(
                            *byte,
                            if inside { 0 } else { 0xAA },
                            "{offset} {count} {at}"
                        );
                    }
                }
                Err(Error::OutOfBounds { .. }) => {
                    assert!(
                        (offset as u128) + (count as u128) * 8 > len as u128,
                        "{offset} {count}"
                    );
                }
                Err(Error::Misaligned { .. }) => assert_ne!(offset % 8, 0),
                Err(other) => panic!("{offset} {count}: {other}"),
            }
        }
    }
}

#[test]
fn views_work_the_same_through_a_posix_mapping() {
    if let Some(role) = util::role() {
        assert_eq!(role, "peer");
        let name = unipc::name::PosixName::new(&util::arg("name")).unwrap();
        let segment = posix::SegmentOptions::new().open(&name).unwrap();
        // SAFETY: the parent, the only other process with the object, does
        // not resize it while this peer runs.
        let map = unsafe { segment.map(Access::ReadWrite) }.unwrap();
        let header = map.view::<Header>(0).unwrap().load();
        assert_eq!(header.magic, MAGIC);
        map.atomic_u64(128)
            .unwrap()
            .fetch_add(header.values.iter().sum(), Ordering::AcqRel);
        return;
    }
    let name = unipc::name::PosixName::new(&format!("/{}", util::unique("shm-view"))).unwrap();
    let segment = posix::SegmentOptions::new()
        .size(4096)
        .exclusive(true)
        .create(&name)
        .unwrap();
    // SAFETY: the object is this test's alone (a unique name) and the peer
    // does not resize it.
    let map = unsafe { segment.map(Access::ReadWrite) }.unwrap();
    map.view::<Header>(0)
        .unwrap()
        .store(&Header {
            magic: MAGIC,
            count: 3,
            values: [10, 20, 30, 0, 0, 0, 0, 0],
        })
        .unwrap();
    map.atomic_u64(128).unwrap().store(1, Ordering::Release);
    util::Peer::new(
        "shm_view::views_work_the_same_through_a_posix_mapping",
        "peer",
    )
    .arg("name", name.as_str())
    .spawn()
    .wait_success();
    assert_eq!(map.atomic_u64(128).unwrap().load(Ordering::Acquire), 61);
    // Without mapping: the same bytes by pread.
    let mut raw = [0; 8];
    segment.read_at(128, &mut raw).unwrap();
    assert_eq!(u64::from_ne_bytes(raw), 61);
    assert!(map.view::<Header>(4096 - 71).is_err());
}
