//! Anonymous and file-backed mappings between real processes.
//!
//! An anonymous shared mapping reaches only children forked after it is
//! made: the harness starts peers with `exec`, so a peer makes the
//! mappings and forks a child of its own. The forked child only copies
//! bytes into the mappings (no allocation, no lock) and calls `_exit`,
//! which keeps it async-signal-safe whatever threads the peer has.

use std::os::unix::fs::PermissionsExt;

use unipc::shm::mapped::{MapOptions, Sharing};
use unipc::shm::Access;

use crate::util;

#[test]
fn a_forked_child_shares_an_anonymous_shared_mapping_and_not_a_private_one() {
    if let Some(role) = util::role() {
        assert_eq!(role, "forker");
        let shared = MapOptions::new()
            .sharing(Sharing::Shared)
            .map_anonymous(8192)
            .unwrap();
        let private = MapOptions::new()
            .sharing(Sharing::Private)
            .map_anonymous(8192)
            .unwrap();
        private.write_at(0, b"before").unwrap();
        // SAFETY: the child only copies bytes into memory mapped before the
        // fork (bounds already valid, so no error value is built and
        // nothing allocates) and calls `_exit`: async-signal-safe steps
        // only, as fork(2) demands of a child of a threaded process.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => {
                let ok = shared.write_at(4100, b"from the child").is_ok()
                    && private.write_at(0, b"child!").is_ok();
                // SAFETY: `_exit` ends the child at once, running no
                // destructors or atexit handlers of the parent's state.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).expect("waitpid");
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
        let mut got = [0; 14];
        shared.read_at(4100, &mut got).unwrap();
        assert_eq!(&got, b"from the child", "the shared mapping is shared");
        let mut got = [0; 6];
        private.read_at(0, &mut got).unwrap();
        assert_eq!(&got, b"before", "the private mapping is not");
        return;
    }
    util::Peer::new(
        "mapped::a_forked_child_shares_an_anonymous_shared_mapping_and_not_a_private_one",
        "forker",
    )
    .spawn()
    .wait_success();
}

#[test]
fn a_shared_file_mapping_reaches_the_file_and_a_private_one_does_not() {
    if let Some(role) = util::role() {
        let path = util::arg("PATH");
        let sharing = match role.as_str() {
            "shared" => Sharing::Shared,
            "private" => Sharing::Private,
            other => panic!("unknown role {other}"),
        };
        // SAFETY: the file is in the parent's private temporary directory
        // and nobody truncates it while the peer runs.
        let map = unsafe {
            MapOptions::new()
                .access(Access::ReadWrite)
                .sharing(sharing)
                .map_file(&path)
        }
        .unwrap();
        assert_eq!(map.len(), 10000);
        map.write_at(5000, b"written by the peer").unwrap();
        map.flush().unwrap();
        let mut got = [0; 19];
        map.read_at(5000, &mut got).unwrap();
        assert_eq!(&got, b"written by the peer", "the peer sees its own write");
        return;
    }
    let dir = util::TempDir::new();
    for role in ["shared", "private"] {
        let path = dir.join(role);
        std::fs::write(&path, vec![b'.'; 10000]).unwrap();
        util::Peer::new(
            "mapped::a_shared_file_mapping_reaches_the_file_and_a_private_one_does_not",
            role,
        )
        .arg("PATH", &path)
        .spawn()
        .wait_success();
        let data = std::fs::read(&path).unwrap();
        assert_eq!(data.len(), 10000);
        if role == "shared" {
            assert_eq!(&data[5000..5019], b"written by the peer");
        } else {
            assert!(
                data.iter().all(|&b| b == b'.'),
                "a private write reached the file"
            );
        }
    }
}

#[test]
fn file_mapping_errors_name_the_file_and_read_only_maps_refuse_writes() {
    let dir = util::TempDir::new();
    let missing = dir.join("missing");
    // SAFETY: nothing is mapped: the file does not exist.
    let err = unsafe { MapOptions::new().map_file(&missing) }.unwrap_err();
    assert!(
        err.to_string().starts_with(&missing.display().to_string()),
        "{err}"
    );
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));

    let path = dir.join("ro");
    std::fs::write(&path, b"read only").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    // SAFETY: the file is in a private temporary directory; nobody
    // truncates it while mapped.
    let map = unsafe { MapOptions::new().access(Access::ReadOnly).map_file(&path) }.unwrap();
    let mut got = [0; 9];
    map.read_at(0, &mut got).unwrap();
    assert_eq!(&got, b"read only");
    assert!(matches!(
        map.write_at(0, b"x"),
        Err(unipc::Error::Unsupported { .. })
    ));
    assert!(matches!(
        map.read_at(5, &mut got),
        Err(unipc::Error::OutOfBounds { size: 9, .. })
    ));
}
