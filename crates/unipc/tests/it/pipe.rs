//! Anonymous pipes, each semantic checked between two or more processes.

use std::io::{ErrorKind, IoSlice, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;

use unipc::stream::pipe::{self, Receiver, Sender, SpliceFlags, PIPE_BUF};

use crate::util::{self, Peer};

/// Blocks until the parent writes a byte to the passed descriptor.
fn wait_for_go(fd: OwnedFd) {
    let mut go = Receiver::try_from(fd).unwrap();
    let mut byte = [0];
    go.read_exact(&mut byte).expect("read go");
}

fn send_go(go: &mut Sender) {
    go.write_all(b"g").expect("write go");
}

/// SIGPIPE's bit in the masks of /proc/thread-self/status.
const SIGPIPE_BIT: u64 = 1 << (libc::SIGPIPE - 1);

/// A signal mask field ("SigPnd", "ShdPnd", "SigBlk") of this thread.
fn thread_mask(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/thread-self/status").expect("read status");
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/thread-self/status"));
    u64::from_str_radix(line.trim(), 16).expect("hex mask")
}

#[test]
fn eof_only_after_every_writer_closes() {
    if let Some(role) = util::role() {
        let mut tx = Sender::try_from(util::passed_fd(0)).unwrap();
        match role.as_str() {
            "first" => tx.write_all(b"first;").unwrap(),
            "second" => {
                wait_for_go(util::passed_fd(1));
                tx.write_all(b"second;").unwrap();
            }
            other => panic!("unknown role {other}"),
        }
        return;
    }

    let (tx, mut rx) = pipe::new().unwrap();
    let (mut go_tx, go_rx) = pipe::new().unwrap();
    let first = Peer::new("pipe::eof_only_after_every_writer_closes", "first")
        .fd(tx.as_fd())
        .spawn();
    let second = Peer::new("pipe::eof_only_after_every_writer_closes", "second")
        .fd(tx.as_fd())
        .fd(go_rx.as_fd())
        .spawn();
    drop((tx, go_rx));

    first.wait_success();
    let mut buf = [0; 64];
    let n = rx.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"first;");
    // The first writer has exited, but the second still holds its copy:
    // an empty pipe with a writer left is "no data yet", not end of file.
    rx.set_nonblocking(true).unwrap();
    let err = rx.read(&mut buf).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");

    send_go(&mut go_tx);
    second.wait_success();
    rx.set_nonblocking(false).unwrap();
    let mut rest = Vec::new();
    rx.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"second;");
    assert_eq!(rx.read(&mut buf).unwrap(), 0, "end of file stays");
}

extern "C" fn record_sigpipe(_: libc::c_int) {
    HANDLER_RAN.store(true, std::sync::atomic::Ordering::SeqCst);
}
static HANDLER_RAN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Every call that writes into a pipe, on a pipe whose reader is gone.
fn assert_every_write_is_broken_pipe(tx: &mut Sender) {
    let err = tx.write(b"x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
    assert_eq!(err.raw_os_error(), Some(libc::EPIPE));
    let err = tx
        .write_vectored(&[IoSlice::new(b"a"), IoSlice::new(b"b")])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");

    let err = pipe::vmsplice(&*tx, &[IoSlice::new(b"v")], SpliceFlags::empty()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
    assert!(
        err.to_string()
            .starts_with("pipe: vmsplice: broken pipe: the reading side has closed"),
        "{err}"
    );

    let (mut src_tx, src_rx) = pipe::new().unwrap();
    src_tx.write_all(b"spliced").unwrap();
    let err = pipe::splice(&src_rx, &*tx, 64, SpliceFlags::empty()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
    let err = pipe::tee(&src_rx, &*tx, 64, SpliceFlags::empty()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
}

#[test]
fn broken_pipe_is_an_error_never_a_signal() {
    use nix::sys::signal::{self, SigHandler, SigSet, Signal};
    if let Some(role) = util::role() {
        match role.as_str() {
            // A C host's default: the signal would kill the process.
            "sig_dfl" => {
                // SAFETY: the peer is single-threaded in what it does here;
                // setting a disposition to SIG_DFL installs no code.
                unsafe { signal::signal(Signal::SIGPIPE, SigHandler::SigDfl) }.unwrap();
            }
            // Rust's default: the fast path.
            "sig_ign" => assert_ne!(thread_mask("SigIgn") & SIGPIPE_BIT, 0),
            // A handler must not run for a write's own SIGPIPE.
            "handler" => {
                // SAFETY: the handler only stores to an atomic, which is
                // async-signal-safe.
                unsafe { signal::signal(Signal::SIGPIPE, SigHandler::Handler(record_sigpipe)) }
                    .unwrap();
            }
            // The caller blocks SIGPIPE and one is already pending: that
            // one must stay pending, and the mask must stay as it was.
            "blocked_pending" => {
                // SAFETY: as for "sig_dfl".
                unsafe { signal::signal(Signal::SIGPIPE, SigHandler::SigDfl) }.unwrap();
                let mut set = SigSet::empty();
                set.add(Signal::SIGPIPE);
                set.thread_block().unwrap();
                signal::raise(Signal::SIGPIPE).unwrap();
                assert_ne!(thread_mask("SigPnd") & SIGPIPE_BIT, 0);
            }
            other => panic!("unknown role {other}"),
        }
        let blocked_before = thread_mask("SigBlk");
        // Adopting the descriptor reads the disposition just set.
        let mut tx = Sender::try_from(util::passed_fd(0)).unwrap();
        assert_every_write_is_broken_pipe(&mut tx);

        assert_eq!(thread_mask("SigBlk"), blocked_before, "mask restored");
        let pending = (thread_mask("SigPnd") | thread_mask("ShdPnd")) & SIGPIPE_BIT;
        if role == "blocked_pending" {
            assert_ne!(pending, 0, "the SIGPIPE raised before was swallowed");
            // Take it off so the process exits cleanly.
            let mut set = SigSet::empty();
            set.add(Signal::SIGPIPE);
            assert_eq!(set.wait().unwrap(), Signal::SIGPIPE);
        } else {
            assert_eq!(pending, 0, "a SIGPIPE was left pending");
        }
        assert!(
            !HANDLER_RAN.load(std::sync::atomic::Ordering::SeqCst),
            "the SIGPIPE handler ran"
        );
        return;
    }

    for role in ["sig_dfl", "sig_ign", "handler", "blocked_pending"] {
        let (tx, rx) = pipe::new().unwrap();
        drop(rx); // the only read end: every write now has no reader
        let status = Peer::new("pipe::broken_pipe_is_an_error_never_a_signal", role)
            .fd(tx.as_fd())
            .spawn()
            .wait();
        assert_eq!(
            status.signal(),
            None,
            "{role}: the writer was killed by a signal"
        );
        assert!(status.success(), "{role}: the writer failed: {status:?}");
    }
}

/// One record: PIPE_BUF bytes, every 8 of them the writer id and sequence
/// number, so any interleaving or tear shows inside the record.
fn record(writer: u32, seq: u32) -> Vec<u8> {
    let mut word = [0; 8];
    word[..4].copy_from_slice(&writer.to_le_bytes());
    word[4..].copy_from_slice(&seq.to_le_bytes());
    word.iter().copied().cycle().take(PIPE_BUF).collect()
}

#[test]
fn writes_of_pipe_buf_bytes_are_atomic_across_writer_processes() {
    const WRITERS: u32 = 4;
    const RECORDS: u32 = 2000;
    if util::role().is_some() {
        let writer: u32 = util::arg("writer").parse().unwrap();
        let mut tx = Sender::try_from(util::passed_fd(0)).unwrap();
        for seq in 0..RECORDS {
            // One write(2) per record: atomic, so all or nothing.
            assert_eq!(tx.write(&record(writer, seq)).unwrap(), PIPE_BUF);
        }
        return;
    }

    assert_eq!(PIPE_BUF, 4096);
    let (tx, mut rx) = pipe::new().unwrap();
    let peers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            Peer::new(
                "pipe::writes_of_pipe_buf_bytes_are_atomic_across_writer_processes",
                "writer",
            )
            .arg("writer", writer.to_string())
            .fd(tx.as_fd())
            .spawn()
        })
        .collect();
    drop(tx);

    let mut next_seq = vec![0u32; WRITERS as usize];
    let mut chunk = vec![0; PIPE_BUF];
    let mut interleaved = false;
    let mut last_writer = None;
    loop {
        match rx.read_exact(&mut chunk) {
            Ok(()) => {}
            Err(err) if err.kind() == ErrorKind::UnexpectedEof => break,
            Err(err) => panic!("read: {err}"),
        }
        let writer = u32::from_le_bytes(chunk[..4].try_into().unwrap());
        let seq = u32::from_le_bytes(chunk[4..8].try_into().unwrap());
        assert!(writer < WRITERS, "bad writer id {writer}");
        assert_eq!(
            chunk,
            record(writer, seq),
            "torn record (starts as writer {writer} seq {seq})"
        );
        assert_eq!(
            seq, next_seq[writer as usize],
            "writer {writer}: out of order or duplicated"
        );
        next_seq[writer as usize] += 1;
        interleaved |= last_writer.is_some_and(|w| w != writer);
        last_writer = Some(writer);
    }
    assert_eq!(next_seq, vec![RECORDS; WRITERS as usize], "records lost");
    for peer in peers {
        peer.wait_success();
    }
    if !interleaved {
        eprintln!("note: the writers happened not to interleave in this run");
    }
}

#[test]
fn capacity_is_one_property_of_the_pipe_seen_by_both_processes() {
    if util::role().is_some() {
        let want: usize = util::arg("capacity").parse().unwrap();
        let mut tx = Sender::try_from(util::passed_fd(0)).unwrap();
        assert_eq!(tx.capacity().unwrap(), want);
        // Fill it: page-sized non-blocking writes fit exactly `capacity`.
        tx.set_nonblocking(true).unwrap();
        let page = vec![7u8; 4096];
        let mut written = 0;
        loop {
            match tx.write(&page) {
                Ok(n) => written += n,
                Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                Err(err) => panic!("write: {err}"),
            }
        }
        assert_eq!(written, want);
        return;
    }

    let (tx, mut rx) = pipe::new().unwrap();
    assert_eq!(rx.capacity().unwrap(), 65536, "Linux's default");
    // Rounded up to a power-of-two number of pages.
    let set = rx.set_capacity(200_000).unwrap();
    assert_eq!(set, 262_144);
    assert_eq!(tx.capacity().unwrap(), set);

    Peer::new(
        "pipe::capacity_is_one_property_of_the_pipe_seen_by_both_processes",
        "filler",
    )
    .arg("capacity", set.to_string())
    .fd(tx.as_fd())
    .spawn()
    .wait_success();
    drop(tx);
    let mut all = Vec::new();
    rx.read_to_end(&mut all).unwrap();
    assert_eq!(all.len(), set);
}

#[test]
fn capacity_over_pipe_max_size_is_refused_for_unprivileged_users() {
    let limit: usize = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    if util::role().is_some() {
        assert!(!util::is_root());
        let (tx, _rx) = pipe::new().unwrap();
        let asked = limit * 2;
        let err = tx.set_capacity(asked).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "pipe: capacity {asked} exceeds the system limit of {limit} (set in /proc/sys/fs/pipe-max-size)"
            )
        );
        assert!(matches!(err, unipc::Error::LimitExceeded { .. }));
        assert_eq!(
            tx.set_capacity(limit).unwrap(),
            limit,
            "the limit itself is allowed"
        );
        return;
    }

    let mut peer = Peer::new(
        "pipe::capacity_over_pipe_max_size_is_refused_for_unprivileged_users",
        "unprivileged",
    );
    if util::is_root() {
        // The limit binds processes without CAP_SYS_RESOURCE, which root
        // may or may not have (containers often drop it): check as `nobody`.
        util::as_nobody(&mut peer);
    }
    peer.spawn().wait_success();
}

#[test]
fn nonblocking_read_of_an_empty_pipe_would_block() {
    if util::role().is_some() {
        let mut tx = Sender::try_from(util::passed_fd(0)).unwrap();
        wait_for_go(util::passed_fd(1));
        tx.write_all(b"late").unwrap();
        return;
    }

    let (tx, mut rx) = pipe::Options::new().nonblocking(true).create().unwrap();
    assert!(rx.is_nonblocking().unwrap());
    let (mut go_tx, go_rx) = pipe::new().unwrap();
    let peer = Peer::new(
        "pipe::nonblocking_read_of_an_empty_pipe_would_block",
        "writer",
    )
    .fd(tx.as_fd())
    .fd(go_rx.as_fd())
    .spawn();
    drop((tx, go_rx));

    let mut buf = [0; 16];
    let err = rx.read(&mut buf).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");
    assert_eq!(err.raw_os_error(), Some(libc::EAGAIN));

    send_go(&mut go_tx);
    assert!(rx.wait_readable(Some(util::WATCHDOG)).unwrap());
    let n = rx.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"late");
    peer.wait_success();
    assert_eq!(rx.read(&mut buf).unwrap(), 0, "writer gone: end of file");
}

#[test]
fn packet_mode_keeps_write_boundaries_across_processes() {
    const SIZES: [usize; 4] = [1, 100, PIPE_BUF, PIPE_BUF + 904];
    if util::role().is_some() {
        let mut tx = Sender::try_from(util::passed_fd(0)).unwrap();
        for (i, size) in SIZES.into_iter().enumerate() {
            assert_eq!(tx.write(&vec![i as u8; size]).unwrap(), size);
        }
        return;
    }

    for packet in [true, false] {
        let (tx, mut rx) = pipe::Options::new().packet(packet).create().unwrap();
        Peer::new(
            "pipe::packet_mode_keeps_write_boundaries_across_processes",
            "writer",
        )
        .fd(tx.as_fd())
        .spawn()
        .wait_success();
        drop(tx);

        // Everything is in the pipe now; see how reads cut it.
        let mut lengths = Vec::new();
        let mut buf = vec![0; PIPE_BUF];
        loop {
            let n = rx.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            lengths.push(n);
        }
        if packet {
            // A write over PIPE_BUF is split into PIPE_BUF packets.
            assert_eq!(lengths, [1, 100, PIPE_BUF, PIPE_BUF, 904]);
        } else {
            assert_eq!(lengths[0], PIPE_BUF, "a byte stream coalesces writes");
        }
    }
}

#[test]
fn splice_tee_and_vmsplice_move_data_a_peer_wrote() {
    if let Some(role) = util::role() {
        match role.as_str() {
            "vmsplicer" => {
                let tx = Sender::try_from(util::passed_fd(0)).unwrap();
                let parts = [IoSlice::new(b"written by "), IoSlice::new(b"vmsplice")];
                assert_eq!(
                    pipe::vmsplice(&tx, &parts, SpliceFlags::empty()).unwrap(),
                    19
                );
            }
            "reader" => {
                let mut rx = Receiver::try_from(util::passed_fd(0)).unwrap();
                let mut got = String::new();
                rx.read_to_string(&mut got).unwrap();
                assert_eq!(got, util::arg("expect"));
            }
            other => panic!("unknown role {other}"),
        }
        return;
    }
    const TEST: &str = "pipe::splice_tee_and_vmsplice_move_data_a_peer_wrote";
    const DATA: &[u8] = b"written by vmsplice";

    // A peer vmsplices into pipe A.
    let (a_tx, a_rx) = pipe::new().unwrap();
    Peer::new(TEST, "vmsplicer")
        .fd(a_tx.as_fd())
        .spawn()
        .wait_success();
    drop(a_tx);

    // tee copies A into B and leaves it in A.
    let (b_tx, mut b_rx) = pipe::new().unwrap();
    assert_eq!(
        pipe::tee(&a_rx, &b_tx, 1024, SpliceFlags::empty()).unwrap(),
        DATA.len()
    );
    drop(b_tx);
    let mut copy = Vec::new();
    b_rx.read_to_end(&mut copy).unwrap();
    assert_eq!(copy, DATA);

    // splice moves A into a file, emptying A.
    let dir = util::TempDir::new();
    let mut file = std::fs::File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(dir.join("spliced"))
        .unwrap();
    assert_eq!(
        pipe::splice(&a_rx, &file, 1024, SpliceFlags::MOVE).unwrap(),
        DATA.len()
    );
    assert_eq!(std::fs::read(dir.join("spliced")).unwrap(), DATA);
    assert_eq!(
        pipe::splice(&a_rx, &file, 1024, SpliceFlags::empty()).unwrap(),
        0,
        "A is empty and its writer gone"
    );

    // splice moves the file into pipe C, read by another peer.
    file.seek(SeekFrom::Start(0)).unwrap();
    let (c_tx, c_rx) = pipe::new().unwrap();
    let reader = Peer::new(TEST, "reader")
        .arg("expect", std::str::from_utf8(DATA).unwrap())
        .fd(c_rx.as_fd())
        .spawn();
    drop(c_rx);
    assert_eq!(
        pipe::splice(&file, &c_tx, 1024, SpliceFlags::empty()).unwrap(),
        DATA.len()
    );
    drop(c_tx);
    reader.wait_success();

    // vmsplice refuses a read end, which would write into shared buffers.
    let (_d_tx, d_rx) = pipe::new().unwrap();
    let err = pipe::vmsplice(&d_rx, &[IoSlice::new(b"no")], SpliceFlags::empty()).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBADF), "{err}");
}

/// The (device, inode) of every descriptor open in this process.
fn open_inodes() -> Vec<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|entry| std::fs::metadata(entry.path()).ok())
        .map(|meta| (meta.dev(), meta.ino()))
        .collect()
}

#[test]
fn ends_are_close_on_exec_unless_asked_otherwise() {
    use std::os::unix::fs::MetadataExt;
    if let Some(role) = util::role() {
        let inode: u64 = util::arg("inode").parse().unwrap();
        let dev: u64 = util::arg("dev").parse().unwrap();
        let inherited = open_inodes().contains(&(dev, inode));
        assert_eq!(inherited, role == "inherits", "inherited: {inherited}");
        return;
    }
    for (cloexec, role) in [(true, "clean"), (false, "inherits")] {
        let (tx, rx) = pipe::Options::new().cloexec(cloexec).create().unwrap();
        let meta = std::fs::metadata(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&tx.as_fd())
        ))
        .unwrap();
        // Not passed with `fd`: only inheritance across exec can carry it.
        Peer::new("pipe::ends_are_close_on_exec_unless_asked_otherwise", role)
            .arg("inode", meta.ino().to_string())
            .arg("dev", meta.dev().to_string())
            .spawn()
            .wait_success();
        drop((tx, rx));
    }
}
