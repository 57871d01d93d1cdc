//! Sealed memfd hand-off between real processes: the parent fills and
//! seals a memfd and passes it over a UNIX socket; the peer checks the
//! seals before mapping and cannot shrink, grow or write what it got.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use unipc::shm::memfd::{Memfd, SealFlags, SealedMemfd};
use unipc::stream::{pipe, unix};
use unipc::Error;

use crate::util;

const SIZE: usize = 3 * 4096 + 100;

fn pattern() -> Vec<u8> {
    (0..SIZE).map(|i| (i * 7 % 251) as u8).collect()
}

/// The peer's end of the socket, passed as descriptor 0.
fn peer_socket() -> unix::Stream {
    unix::Stream::try_from(util::passed_fd(0)).unwrap()
}

fn receive(socket: &unix::Stream) -> OwnedFd {
    let mut byte = [0; 1];
    let (n, mut fds) = socket.recv_with_fds(&mut byte, 1).unwrap();
    assert_eq!((n, fds.len()), (1, 1));
    fds.pop().unwrap()
}

#[test]
fn a_sealed_memfd_arrives_intact_and_the_receiver_cannot_shrink_grow_or_write_it() {
    if let Some(role) = util::role() {
        assert_eq!(role, "receiver");
        let socket = peer_socket();
        let memfd = SealedMemfd::try_from(receive(&socket)).unwrap();
        assert!(memfd
            .seals()
            .contains(SealFlags::IMMUTABLE | SealFlags::SEAL));
        assert_eq!(memfd.size(), SIZE as u64);
        assert_eq!(memfd.object().to_string(), "memfd:handoff");
        let map = memfd.map().unwrap();
        let mut got = vec![0; SIZE];
        map.read_at(0, &mut got).unwrap();
        assert!(got == pattern(), "the data arrived changed");
        assert!(!map.is_writable());

        let fd = memfd.as_fd();
        // The descriptor came open read-write (memfd_create's), yet:
        let errno = |r: rustix::io::Result<()>| r.unwrap_err().raw_os_error();
        assert_eq!(
            errno(rustix::fs::ftruncate(fd, 4096)),
            libc::EPERM,
            "shrink"
        );
        assert_eq!(
            errno(rustix::fs::ftruncate(fd, 1 << 20)),
            libc::EPERM,
            "grow"
        );
        let write = rustix::io::pwrite(fd, b"x", 0).map(drop);
        assert_eq!(errno(write), libc::EPERM, "write");
        // A writable shared mapping is refused too.
        // SAFETY: a null address lets the kernel choose a fresh range; the
        // descriptor is live; if the call wrongly succeeded the range is
        // unmapped below before anything touches it.
        let mapped = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                4096,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
                fd,
                0,
            )
        };
        if let Ok(addr) = mapped {
            // SAFETY: `addr` and 4096 are what mmap just returned; nothing
            // refers into the range.
            let _ = unsafe { rustix::mm::munmap(addr, 4096) };
            panic!("a writable shared mapping of a sealed memfd was allowed");
        }
        assert_eq!(mapped.unwrap_err().raw_os_error(), libc::EPERM, "mmap");
        // Reopening it read-write through /proc gives no way around it.
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let reopened = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        let write = rustix::io::pwrite(&reopened, b"x", 0).map(drop);
        assert_eq!(errno(write), libc::EPERM, "write through a reopened fd");
        // And it cannot be unsealed: seals are only ever added.
        let add = rustix::fs::fcntl_add_seals(fd, rustix::fs::SealFlags::empty());
        assert_eq!(errno(add), libc::EPERM, "F_SEAL_SEAL");
        socket.send_with_fds(b"k", &[]).unwrap();
        return;
    }
    let (mine, theirs) = unix::pair().unwrap();
    let memfd = Memfd::create("handoff", SIZE as u64).unwrap();
    memfd.write_at(0, &pattern()).unwrap();
    let sealed = memfd.seal().unwrap();
    mine.send_with_fds(b"m", &[sealed.as_fd()]).unwrap();
    let peer = util::Peer::new(
        "memfd::a_sealed_memfd_arrives_intact_and_the_receiver_cannot_shrink_grow_or_write_it",
        "receiver",
    )
    .fd(theirs.as_fd())
    .spawn();
    drop(theirs);
    peer.wait_success();
    let mut ack = [0; 1];
    assert_eq!(mine.recv_with_fds(&mut ack, 0).unwrap().0, 1);
    let mut got = vec![0; SIZE];
    sealed.read_at(0, &mut got).unwrap();
    assert!(got == pattern(), "the memfd changed");
}

#[test]
fn the_receiver_refuses_unsealed_memfds_and_other_files_and_gives_them_back() {
    if let Some(role) = util::role() {
        assert_eq!(role, "receiver");
        let socket = peer_socket();

        // Sized and size-sealed, but writable: F_SEAL_WRITE is missing.
        let fd = receive(&socket);
        let raw = fd.as_raw_fd();
        let err = SealedMemfd::try_from(fd).unwrap_err();
        match err.error() {
            Error::MissingSeals {
                missing, present, ..
            } => {
                assert_eq!(*missing, SealFlags::WRITE);
                assert_eq!(*present, SealFlags::SHRINK | SealFlags::GROW);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            err.to_string(),
            "memfd:draft: lacks F_SEAL_WRITE (it has F_SEAL_SHRINK | F_SEAL_GROW): \
             the sender must seal it before handing it over, or it could shrink or change under a mapping"
        );
        assert_eq!(err.into_fd().as_raw_fd(), raw, "given back");

        // A memfd with no seals at all.
        let err = SealedMemfd::try_from(receive(&socket)).unwrap_err();
        assert!(
            matches!(err.error(), Error::MissingSeals { missing, present, .. }
                if *missing == SealedMemfd::REQUIRED && present.is_empty()),
            "{err}"
        );

        // F_SEAL_FUTURE_WRITE does not stand in for F_SEAL_WRITE.
        let err = SealedMemfd::try_from(receive(&socket)).unwrap_err();
        assert!(
            matches!(err.error(), Error::MissingSeals { missing, .. } if *missing == SealFlags::WRITE),
            "{err}"
        );

        // A plain file: one that cannot be sealed, or, when the temporary
        // directory is a tmpfs, one that carries only F_SEAL_SEAL.
        let err = SealedMemfd::try_from(receive(&socket)).unwrap_err();
        assert!(
            matches!(err.error(), Error::WrongType { .. })
                || matches!(err.error(), Error::MissingSeals { missing, present, .. }
                    if *missing == SealedMemfd::REQUIRED && *present == SealFlags::SEAL),
            "{err}"
        );
        // A pipe.
        let err = SealedMemfd::try_from(receive(&socket)).unwrap_err();
        assert!(matches!(err.error(), Error::WrongType { .. }), "{err}");
        return;
    }
    let (mine, theirs) = unix::pair().unwrap();
    let draft = Memfd::create("draft", 4096).unwrap();
    mine.send_with_fds(b"1", &[draft.as_fd()]).unwrap();
    let bare = rustix::fs::memfd_create("bare", rustix::fs::MemfdFlags::ALLOW_SEALING).unwrap();
    mine.send_with_fds(b"2", &[bare.as_fd()]).unwrap();
    let future = rustix::fs::memfd_create("future", rustix::fs::MemfdFlags::ALLOW_SEALING).unwrap();
    rustix::fs::ftruncate(&future, 4096).unwrap();
    rustix::fs::fcntl_add_seals(
        &future,
        rustix::fs::SealFlags::SHRINK
            | rustix::fs::SealFlags::GROW
            | rustix::fs::SealFlags::FUTURE_WRITE,
    )
    .unwrap();
    mine.send_with_fds(b"3", &[future.as_fd()]).unwrap();
    let dir = util::TempDir::new();
    let file = std::fs::File::create(dir.join("plain")).unwrap();
    mine.send_with_fds(b"4", &[file.as_fd()]).unwrap();
    let (tx, _rx) = pipe::new().unwrap();
    mine.send_with_fds(b"5", &[tx.as_fd()]).unwrap();
    util::Peer::new(
        "memfd::the_receiver_refuses_unsealed_memfds_and_other_files_and_gives_them_back",
        "receiver",
    )
    .fd(theirs.as_fd())
    .spawn()
    .wait_success();
}

#[test]
fn memfd_names_and_ranges_are_checked_before_any_call() {
    assert!(matches!(
        Memfd::create(&"x".repeat(250), 1),
        Err(Error::InvalidName {
            kind: "memfd name",
            ..
        })
    ));
    assert!(Memfd::create("a/b", 1).is_err());
    let memfd = Memfd::create("small", 10).unwrap();
    assert!(matches!(
        memfd.write_at(8, b"abc"),
        Err(Error::OutOfBounds { size: 10, .. })
    ));
    // Its size is sealed from the start.
    let grow = rustix::fs::ftruncate(&memfd, 20).unwrap_err();
    assert_eq!(grow.raw_os_error(), libc::EPERM);
}
