//! FIFOs, each semantic checked between two processes.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use unipc::stream::fifo::{Fifo, OpenOptions, Reader, Writer};
use unipc::stream::pipe::{self, Receiver, Sender};
use unipc::{Error, Mode};

use crate::util::{self, Peer};

fn path_arg() -> PathBuf {
    PathBuf::from(util::arg("path"))
}

/// Blocks until the other process writes a byte to the passed descriptor.
fn wait_for(fd: OwnedFd) {
    let mut rx = Receiver::try_from(fd).unwrap();
    let mut byte = [0];
    rx.read_exact(&mut byte).expect("read signal byte");
}

fn signal(tx: &mut Sender) {
    tx.write_all(b"s").expect("write signal byte");
}

/// Waits until a byte arrives on `rx` (the peer's "done" signal).
fn wait_signal(rx: &mut Receiver) {
    assert!(
        rx.wait_readable(Some(util::WATCHDOG)).unwrap(),
        "peer never signalled"
    );
    let mut byte = [0];
    rx.read_exact(&mut byte).expect("read signal byte");
}

fn is_fifo(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

#[test]
fn data_and_end_of_file_from_a_writer_process() {
    if util::role().is_some() {
        let mut tx = Writer::open(path_arg()).unwrap();
        tx.write_all(b"hello ").unwrap();
        tx.write_all(b"from the writer").unwrap();
        return;
    }
    let dir = util::TempDir::new();
    let fifo = Fifo::create(dir.join("f"), Mode::OWNER_RW).unwrap();
    let peer = Peer::new("fifo::data_and_end_of_file_from_a_writer_process", "writer")
        .arg("path", fifo.path())
        .spawn();
    let mut rx = fifo.open_reader().unwrap();
    let mut got = String::new();
    rx.read_to_string(&mut got).unwrap();
    assert_eq!(got, "hello from the writer");
    assert_eq!(rx.object(), format!("fifo:{}", fifo.path().display()));
    peer.wait_success();
}

#[test]
fn mode_on_disk_is_the_mode_asked_whatever_the_umask() {
    if util::role().is_some() {
        let umask = u32::from_str_radix(&util::arg("umask"), 8).unwrap();
        let mode: Mode = util::arg("mode").parse().unwrap();
        // The umask is process-wide: set here, in the peer, not in the
        // parent whose other tests run concurrently.
        rustix::process::umask(rustix::fs::Mode::from_bits_retain(umask));
        let mut fifo = Fifo::create(path_arg(), mode).unwrap();
        fifo.keep();
        return;
    }

    let dir = util::TempDir::new();
    // (umask, mode asked, run as nobody)
    let mut cases = vec![
        (0o077, 0o660, false),
        (0o000, 0o600, false),
        (0o022, 0o666, false),
        (0o777, 0o640, false),
    ];
    if util::is_root() {
        // Unprivileged, the umask cuts bits, and the owner may not read
        // its own FIFO: the mode must be set without opening it.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        cases.push((0o277, 0o220, true));
        cases.push((0o777, 0o200, true));
    } else {
        util::skip("in part: the cases run as `nobody` need root");
    }
    for (i, (umask, mode, nobody)) in cases.into_iter().enumerate() {
        let path = dir.join(&format!("f{i}"));
        let mut peer = Peer::new(
            "fifo::mode_on_disk_is_the_mode_asked_whatever_the_umask",
            "creator",
        )
        .arg("path", &path)
        .arg("umask", format!("{umask:o}"))
        .arg("mode", format!("{mode:o}"));
        if nobody {
            util::as_nobody(&mut peer);
        }
        peer.spawn().wait_success();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_fifo());
        assert_eq!(
            meta.mode() & 0o7777,
            mode,
            "umask {umask:o}: asked {mode:o}, got {:o}",
            meta.mode() & 0o7777
        );
        if nobody {
            assert_eq!(meta.uid(), util::NOBODY.0);
        }
        std::fs::remove_file(&path).unwrap();
    }

    // A setuid mode cannot even be written down: the refusal comes before
    // any FIFO call.
    let err = Mode::new(0o4755).unwrap_err();
    assert!(matches!(err, Error::InvalidName { .. }), "{err}");
    assert!(err.to_string().contains("0o4755"), "{err}");
}

#[test]
fn nonblocking_write_open_without_a_reader_is_enxio() {
    if util::role().is_some() {
        let _rx = OpenOptions::new()
            .nonblocking(true)
            .open_reader(path_arg())
            .unwrap();
        let mut opened = Sender::try_from(util::passed_fd(0)).unwrap();
        signal(&mut opened);
        wait_for(util::passed_fd(1));
        return; // closes the only read end
    }

    let dir = util::TempDir::new();
    let fifo = Fifo::create(dir.join("f"), Mode::OWNER_RW).unwrap();
    let (opened_tx, mut opened_rx) = pipe::new().unwrap();
    let (mut go_tx, go_rx) = pipe::new().unwrap();
    let peer = Peer::new(
        "fifo::nonblocking_write_open_without_a_reader_is_enxio",
        "reader",
    )
    .arg("path", fifo.path())
    .fd(opened_tx.as_fd())
    .fd(go_rx.as_fd())
    .spawn();
    drop((opened_tx, go_rx));

    // While the peer holds the read end, a non-blocking write open succeeds.
    wait_signal(&mut opened_rx);
    let nonblocking = OpenOptions::new().nonblocking(true);
    let tx = nonblocking.open_writer(fifo.path()).unwrap();
    assert!(tx.is_nonblocking().unwrap());
    drop(tx);

    // Once it has gone, nobody reads: ENXIO, said plainly.
    signal(&mut go_tx);
    peer.wait_success();
    let err = nonblocking.open_writer(fifo.path()).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENXIO));
    assert_eq!(
        err.to_string(),
        format!(
            "fifo:{}: open for writing: no such device or address: no process has it open for reading",
            fifo.path().display()
        )
    );
}

#[test]
fn paths_that_are_not_fifos_are_refused_and_left_untouched() {
    if util::role().is_some() {
        let file = PathBuf::from(util::arg("file"));
        let dir = PathBuf::from(util::arg("dir"));
        let want_file = format!("fifo:{}: is a regular file, not a FIFO", file.display());
        let want_dir = format!("fifo:{}: is a directory, not a FIFO", dir.display());

        let err = Writer::open(&file).unwrap_err();
        assert_eq!(err.to_string(), want_file);
        assert!(matches!(err, unipc::Error::WrongType { .. }));
        let err = Reader::open(&file).unwrap_err();
        assert_eq!(err.to_string(), want_file);
        let err = OpenOptions::new()
            .nonblocking(true)
            .open_writer(&file)
            .unwrap_err();
        assert_eq!(err.to_string(), want_file);
        let err = Reader::open(&dir).unwrap_err();
        assert_eq!(err.to_string(), want_dir);
        let err = Writer::open(&dir).unwrap_err();
        assert_eq!(err.to_string(), want_dir);

        let err = Fifo::create(&file, Mode::OWNER_RW).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "fifo:{}: create: file exists: something already exists under that name",
                file.display()
            )
        );
        let err = Reader::open(file.with_extension("missing")).unwrap_err();
        assert!(
            err.to_string()
                .ends_with(".missing: open for reading: no such file or directory"),
            "{err}"
        );
        return;
    }

    let dir = util::TempDir::new();
    let file = dir.join("plain");
    std::fs::write(&file, b"precious").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = std::fs::metadata(&file).unwrap();
    let subdir = dir.join("sub");
    std::fs::create_dir(&subdir).unwrap();

    Peer::new(
        "fifo::paths_that_are_not_fifos_are_refused_and_left_untouched",
        "opener",
    )
    .arg("file", &file)
    .arg("dir", &subdir)
    .spawn()
    .wait_success();

    let after = std::fs::metadata(&file).unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), b"precious");
    assert_eq!(after.mode(), before.mode());
    assert_eq!(after.ino(), before.ino());
    assert!(std::fs::metadata(&subdir).unwrap().is_dir());
}

#[test]
fn create_never_follows_a_planted_symlink() {
    if util::role().is_some() {
        for link in [util::arg("dangling"), util::arg("to_file")] {
            let err = Fifo::create(&link, Mode::OWNER_RW).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EEXIST), "{err}");
            assert_eq!(
                err.to_string(),
                format!(
                    "fifo:{link}: create: file exists: something already exists under that name"
                )
            );
        }
        return;
    }

    let dir = util::TempDir::new();
    let target = dir.join("target-not-created");
    let dangling = dir.join("dangling");
    std::os::unix::fs::symlink(&target, &dangling).unwrap();
    let file = dir.join("victim");
    std::fs::write(&file, b"keep me").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let to_file = dir.join("to-file");
    std::os::unix::fs::symlink(&file, &to_file).unwrap();

    Peer::new("fifo::create_never_follows_a_planted_symlink", "creator")
        .arg("dangling", &dangling)
        .arg("to_file", &to_file)
        .spawn()
        .wait_success();

    assert!(
        std::fs::symlink_metadata(&target).is_err(),
        "target created"
    );
    assert_eq!(std::fs::read_link(&dangling).unwrap(), target);
    assert_eq!(std::fs::read_link(&to_file).unwrap(), file);
    let meta = std::fs::metadata(&file).unwrap();
    assert!(meta.is_file());
    assert_eq!(
        meta.mode() & 0o7777,
        0o644,
        "the link's target was chmodded"
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}

/// Waits until some thread of process `pid` sleeps in the kernel's FIFO
/// open (wchan `wait_for_partner`). Returns false when this kernel shows no
/// wait channels (every one reads "0" for a while), in which case the
/// caller falls back to a grace period.
fn wait_until_blocked_in_fifo_open(pid: u32) -> bool {
    let started = Instant::now();
    let tasks = format!("/proc/{pid}/task");
    let mut any_shown = false;
    while started.elapsed() < util::WATCHDOG {
        let entries = std::fs::read_dir(&tasks)
            .unwrap_or_else(|err| panic!("peer {pid} gone before blocking: {err}"));
        for task in entries.flatten() {
            let wchan = std::fs::read_to_string(task.path().join("wchan")).unwrap_or_default();
            if wchan == "wait_for_partner" {
                return true;
            }
            any_shown |= !wchan.is_empty() && wchan != "0";
        }
        if !any_shown && started.elapsed() > Duration::from_secs(2) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("peer {pid} never blocked in the FIFO open");
}

#[test]
fn a_blocking_open_waits_until_the_other_end_is_opened() {
    if let Some(role) = util::role() {
        let mut opened = Sender::try_from(util::passed_fd(0)).unwrap();
        match role.as_str() {
            "reader" => {
                let mut rx = Reader::open(path_arg()).unwrap();
                signal(&mut opened);
                let mut got = String::new();
                rx.read_to_string(&mut got).unwrap();
                assert_eq!(got, "to the reader");
            }
            "writer" => {
                let mut tx = Writer::open(path_arg()).unwrap();
                signal(&mut opened);
                tx.write_all(b"to the writer's reader").unwrap();
            }
            other => panic!("unknown role {other}"),
        }
        return;
    }

    let dir = util::TempDir::new();
    let fifo = Fifo::create(dir.join("f"), Mode::OWNER_RW).unwrap();
    for role in ["reader", "writer"] {
        let (opened_tx, mut opened_rx) = pipe::Options::new().nonblocking(true).create().unwrap();
        let peer = Peer::new(
            "fifo::a_blocking_open_waits_until_the_other_end_is_opened",
            role,
        )
        .arg("path", fifo.path())
        .fd(opened_tx.as_fd())
        .spawn();
        drop(opened_tx);

        if !wait_until_blocked_in_fifo_open(peer.pid()) {
            eprintln!("note: no wait channels here; checking with a grace period instead");
            std::thread::sleep(Duration::from_millis(300));
        }
        // The peer has not come out of its open.
        let err = opened_rx.read(&mut [0]).unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::WouldBlock,
            "{role}: open returned early"
        );

        if role == "reader" {
            let mut tx = fifo.open_writer().unwrap();
            wait_signal(&mut opened_rx);
            tx.write_all(b"to the reader").unwrap();
        } else {
            let mut rx = fifo.open_reader().unwrap();
            wait_signal(&mut opened_rx);
            let mut got = String::new();
            rx.read_to_string(&mut got).unwrap();
            assert_eq!(got, "to the writer's reader");
        }
        peer.wait_success();
    }
}

#[test]
fn wait_readable_waits_for_a_writer_with_a_deadline() {
    if util::role().is_some() {
        let mut tx = Writer::open(path_arg()).unwrap();
        tx.write_all(b"hi").unwrap();
        return;
    }
    let dir = util::TempDir::new();
    let fifo = Fifo::create(dir.join("f"), Mode::OWNER_RW).unwrap();
    let mut rx = OpenOptions::new()
        .nonblocking(true)
        .open_reader(fifo.path())
        .unwrap();

    // No writer yet: not readable, and the wait lasts the timeout.
    let timeout = Duration::from_millis(200);
    let started = Instant::now();
    assert!(!rx.wait_readable(Some(timeout)).unwrap());
    let waited = started.elapsed();
    assert!(waited >= timeout, "returned after {waited:?}");
    assert!(waited < util::WATCHDOG, "hung for {waited:?}");

    let peer = Peer::new(
        "fifo::wait_readable_waits_for_a_writer_with_a_deadline",
        "writer",
    )
    .arg("path", fifo.path())
    .spawn();
    assert!(rx.wait_readable(Some(util::WATCHDOG)).unwrap());
    peer.wait_success();
    let mut got = Vec::new();
    rx.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"hi");
    // The writer came and went: end of file is readable at once.
    assert!(rx.wait_readable(Some(Duration::ZERO)).unwrap());
}

#[test]
fn owner_drop_removes_the_fifo_unless_kept_or_replaced() {
    if let Some(role) = util::role() {
        let mut fifo = Fifo::create(path_arg(), Mode::OWNER_RW).unwrap();
        if role == "keeper" {
            fifo.keep();
        }
        signal(&mut Sender::try_from(util::passed_fd(0)).unwrap());
        wait_for(util::passed_fd(1));
        drop(fifo);
        return;
    }

    let dir = util::TempDir::new();
    for role in ["owner", "keeper", "replaced"] {
        let path = dir.join(role);
        let (created_tx, mut created_rx) = pipe::Options::new().nonblocking(true).create().unwrap();
        let (mut go_tx, go_rx) = pipe::new().unwrap();
        let peer = Peer::new(
            "fifo::owner_drop_removes_the_fifo_unless_kept_or_replaced",
            role,
        )
        .arg("path", &path)
        .fd(created_tx.as_fd())
        .fd(go_rx.as_fd())
        .spawn();
        drop((created_tx, go_rx));

        wait_signal(&mut created_rx);
        assert!(is_fifo(&path), "{role}: no FIFO while the owner lives");
        if role == "replaced" {
            std::fs::remove_file(&path).unwrap();
            std::fs::write(&path, b"someone else's").unwrap();
        }
        signal(&mut go_tx);
        peer.wait_success();

        match role {
            "owner" => assert!(std::fs::symlink_metadata(&path).is_err(), "not removed"),
            "keeper" => {
                assert!(is_fifo(&path), "kept FIFO removed");
                std::fs::remove_file(&path).unwrap();
            }
            _ => assert_eq!(
                std::fs::read(&path).unwrap(),
                b"someone else's",
                "drop removed a file that had replaced the FIFO"
            ),
        }
    }
}

#[test]
fn another_user_is_refused_a_0600_fifo() {
    if util::role().is_some() {
        let private = PathBuf::from(util::arg("private"));
        let open = PathBuf::from(util::arg("open"));
        let nonblocking = OpenOptions::new().nonblocking(true);
        for (result, op) in [
            (
                nonblocking.open_reader(&private).map(drop),
                "open for reading",
            ),
            (
                nonblocking.open_writer(&private).map(drop),
                "open for writing",
            ),
        ] {
            let err = result.unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EACCES));
            assert_eq!(
                err.to_string(),
                format!(
                    "fifo:{}: {op}: permission denied: this user lacks permission; check the object's owner and mode",
                    private.display()
                )
            );
        }
        // Control: the same user may open a FIFO whose mode lets it.
        nonblocking.open_reader(&open).unwrap();
        return;
    }
    if !util::is_root() {
        util::skip("switching to `nobody` needs root");
        return;
    }
    let dir = util::TempDir::new();
    let private = Fifo::create(dir.join("private"), Mode::OWNER_RW).unwrap();
    let open = Fifo::create(dir.join("open"), Mode::ALL_RW).unwrap();
    let mut peer = Peer::new("fifo::another_user_is_refused_a_0600_fifo", "stranger")
        .arg("private", private.path())
        .arg("open", open.path());
    util::as_nobody(&mut peer);
    peer.spawn().wait_success();
}

#[test]
fn a_writer_whose_reader_left_gets_broken_pipe_not_sigpipe() {
    if util::role().is_some() {
        // A C host's default disposition: the signal would kill.
        // SAFETY: SIG_DFL installs no code.
        unsafe {
            nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGPIPE,
                nix::sys::signal::SigHandler::SigDfl,
            )
        }
        .unwrap();
        let mut tx = Writer::open(path_arg()).unwrap();
        signal(&mut Sender::try_from(util::passed_fd(0)).unwrap());
        wait_for(util::passed_fd(1));
        let err = tx.write(b"nobody listens").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe);
        return;
    }
    let dir = util::TempDir::new();
    let fifo = Fifo::create(dir.join("f"), Mode::OWNER_RW).unwrap();
    let (opened_tx, mut opened_rx) = pipe::Options::new().nonblocking(true).create().unwrap();
    let (mut go_tx, go_rx) = pipe::new().unwrap();
    let peer = Peer::new(
        "fifo::a_writer_whose_reader_left_gets_broken_pipe_not_sigpipe",
        "writer",
    )
    .arg("path", fifo.path())
    .fd(opened_tx.as_fd())
    .fd(go_rx.as_fd())
    .spawn();
    drop((opened_tx, go_rx));

    let rx = fifo.open_reader().unwrap();
    wait_signal(&mut opened_rx);
    drop(rx);
    signal(&mut go_tx);
    let status = peer.wait();
    assert_eq!(status.signal(), None, "the writer was killed by a signal");
    assert!(status.success(), "{status:?}");
}

#[test]
fn ends_are_close_on_exec_unless_asked_otherwise() {
    if let Some(role) = util::role() {
        let fifo = std::fs::metadata(path_arg()).unwrap();
        let inherited = std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .filter_map(|entry| std::fs::metadata(entry.path()).ok())
            .filter(|meta| (meta.dev(), meta.ino()) == (fifo.dev(), fifo.ino()))
            .count();
        let want = if role == "inherits" { 2 } else { 0 };
        assert_eq!(inherited, want, "FIFO descriptors inherited");
        return;
    }
    let dir = util::TempDir::new();
    let fifo = Fifo::create(dir.join("f"), Mode::OWNER_RW).unwrap();
    for (cloexec, role) in [(true, "clean"), (false, "inherits")] {
        let options = OpenOptions::new().nonblocking(true).cloexec(cloexec);
        let rx = options.open_reader(fifo.path()).unwrap();
        let tx = options.open_writer(fifo.path()).unwrap();
        // Not passed with `fd`: only inheritance across exec can carry them.
        Peer::new("fifo::ends_are_close_on_exec_unless_asked_otherwise", role)
            .arg("path", fifo.path())
            .spawn()
            .wait_success();
        drop((rx, tx));
    }
}
