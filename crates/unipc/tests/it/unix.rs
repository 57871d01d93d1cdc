//! UNIX stream sockets between two real processes: echo over a path and an
//! abstract name, end of stream, EPIPE without SIGPIPE, peer credentials,
//! descriptor passing, and the life of a socket file (stale reclaim, live
//! listener, non-socket refused, removal on drop, mode under a umask,
//! permission refusal).

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::FdFlags;
use unipc::name::UnixAddr;
use unipc::stream::unix::{self, ListenerOptions, Stream};
use unipc::Error;
use unipc::Mode;

use crate::util;

/// How long a parent waits for a peer's side of a handshake before failing
/// (a hang guard, not a measurement).
pub const GUARD: Duration = Duration::from_secs(20);

/// A close-on-exec pipe for signalling between parent and peer.
pub fn pipe() -> (OwnedFd, OwnedFd) {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).expect("pipe")
}

/// Writes `word` and a newline to `fd`.
pub fn tell(fd: &OwnedFd, word: &str) {
    let line = format!("{word}\n");
    let mut rest = line.as_bytes();
    while !rest.is_empty() {
        let n = rustix::io::write(fd, rest).expect("write signal");
        rest = &rest[n..];
    }
}

/// Reads one line from `fd`; panics if the writer closed first (the peer
/// died before it got there).
pub fn hear(fd: &OwnedFd) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        let n = rustix::io::read(fd, &mut byte).expect("read signal");
        assert_eq!(n, 1, "the other side closed before signalling");
        if byte[0] == b'\n' {
            return String::from_utf8(line).expect("utf-8 signal");
        }
        line.push(byte[0]);
    }
}

/// Whether `fd` reports hang-up (every writer of a pipe closed) within
/// the guard.
pub fn hangs_up(fd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    let guard = Timespec::try_from(GUARD).unwrap();
    rustix::event::poll(&mut fds, Some(&guard)).expect("poll");
    fds[0].revents().contains(PollFlags::HUP)
}

/// The number of descriptors open in this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

const ECHO_LEN: usize = 256 * 1024;

/// The peer's side of the echo tests: send, half-close, read the echo back.
fn echo_client(addr: &UnixAddr) {
    let mut stream = Stream::connect(addr).expect("connect");
    let sent = pattern(ECHO_LEN);
    stream.write_all(&sent).expect("write");
    stream
        .shutdown(std::net::Shutdown::Write)
        .expect("shutdown");
    let mut back = Vec::new();
    stream.read_to_end(&mut back).expect("read echo");
    assert!(back == sent, "echo differs: {} bytes back", back.len());
}

/// The parent's side: accept, read to end of stream, echo it all back.
fn echo_server(listener: &unix::Listener, peer: util::Peer) {
    let child = peer.spawn();
    let mut conn = listener.accept_timeout(GUARD).expect("accept");
    let mut got = Vec::new();
    conn.read_to_end(&mut got).expect("read");
    assert!(got == pattern(ECHO_LEN), "got {} bytes", got.len());
    conn.write_all(&got).expect("echo");
    drop(conn);
    child.wait_success();
}

#[test]
fn echo_over_path() {
    if util::role().is_some() {
        echo_client(&util::arg("addr").parse().unwrap());
        return;
    }
    let dir = util::TempDir::new();
    let path = dir.join("echo.sock");
    let addr = UnixAddr::path(&path).unwrap();
    let listener = unix::Listener::bind(&addr).unwrap();
    assert_eq!(listener.local_addr(), &addr);
    assert!(std::fs::symlink_metadata(&path)
        .unwrap()
        .file_type()
        .is_socket());
    let peer = util::Peer::new("unix::echo_over_path", "client").arg("addr", &path);
    echo_server(&listener, peer);
}

#[test]
fn echo_over_abstract_name() {
    if util::role().is_some() {
        echo_client(&util::arg("addr").parse().unwrap());
        return;
    }
    let name = format!("@{}", util::unique("echo"));
    let addr: UnixAddr = name.parse().unwrap();
    let listener = unix::Listener::bind(&addr).unwrap();
    let peer = util::Peer::new("unix::echo_over_abstract_name", "client").arg("addr", &name);
    echo_server(&listener, peer);
    drop(listener);
    // The name goes with the socket: nobody answers any more. Not at once:
    // a child another test thread is forking holds a copy of every
    // descriptor until it execs.
    let started = Instant::now();
    loop {
        match Stream::connect(&addr) {
            Err(err) => {
                assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED), "{err}");
                break;
            }
            Ok(_) => {
                assert!(
                    started.elapsed() < GUARD,
                    "the abstract name was never released"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

#[test]
fn end_of_stream_when_the_peer_exits() {
    if util::role().is_some() {
        let mut stream = Stream::try_from(util::passed_fd(0)).unwrap();
        stream.write_all(b"last words").unwrap();
        return; // exiting closes the only other copy
    }
    let (ours, theirs) = unix::pair().unwrap();
    let child = util::Peer::new("unix::end_of_stream_when_the_peer_exits", "writer")
        .fd(theirs.as_fd())
        .spawn();
    drop(theirs);
    let mut got = Vec::new();
    (&ours).read_to_end(&mut got).unwrap();
    assert_eq!(got, b"last words");
    // And it stays at end of stream.
    assert_eq!((&ours).read(&mut [0; 8]).unwrap(), 0);
    child.wait_success();
}

#[test]
fn writing_to_a_closed_peer_is_broken_pipe_not_sigpipe() {
    if util::role().is_some() {
        use nix::sys::signal::{signal, SigHandler, Signal};
        // The Rust runtime ignores SIGPIPE; put back the default, which
        // kills the process if a write raises it.
        // SAFETY: SIG_DFL installs no handler, so no code runs in signal
        // context; no other thread changes signal dispositions here.
        unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.unwrap();
        // SAFETY: as above; this second call only reads back the previous
        // disposition.
        let now = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.unwrap();
        assert_eq!(now, SigHandler::SigDfl, "SIGPIPE is not at its default");

        let mut stream = Stream::try_from(util::passed_fd(0)).unwrap();
        // Wait until the parent has closed its end.
        assert_eq!(stream.read(&mut [0; 8]).unwrap(), 0);
        let err = stream.write(b"anyone?").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
        let err = stream.write_all(b"again").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
        let err = stream
            .send_with_fds(b"fd", &[std::io::stdout().as_fd()])
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPIPE), "{err}");
        assert!(err.to_string().contains("unix socket"), "{err}");
        return;
    }
    let (ours, theirs) = unix::pair().unwrap();
    let child = util::Peer::new(
        "unix::writing_to_a_closed_peer_is_broken_pipe_not_sigpipe",
        "writer",
    )
    .fd(theirs.as_fd())
    .spawn();
    drop(theirs);
    drop(ours);
    // Killed by SIGPIPE would show here as a signal.
    child.wait_success();
}

#[test]
fn peer_credentials_name_the_process_at_each_end() {
    if util::role().is_some() {
        let stream = Stream::connect(&util::arg("addr").parse().unwrap()).unwrap();
        let cred = stream.peer_credentials().unwrap();
        assert_eq!(
            cred.pid,
            rustix::process::getppid().unwrap().as_raw_nonzero().get() as u32
        );
        assert_eq!(cred.uid, rustix::process::geteuid().as_raw());
        (&stream).write_all(b"x").unwrap();
        return;
    }
    let name = format!("@{}", util::unique("cred"));
    let listener = unix::Listener::bind(&name.parse().unwrap()).unwrap();
    let child = util::Peer::new("unix::peer_credentials_name_the_process_at_each_end", "c")
        .arg("addr", &name)
        .spawn();
    let conn = listener.accept_timeout(GUARD).unwrap();
    let cred = conn.peer_credentials().unwrap();
    assert_eq!(cred.pid, child.pid());
    assert_eq!(cred.uid, rustix::process::geteuid().as_raw());
    assert_eq!(cred.gid, rustix::process::getegid().as_raw());
    let mut byte = [0; 1];
    (&conn).read_exact(&mut byte).unwrap();
    child.wait_success();
}

#[test]
fn peer_credentials_of_a_child_running_as_nobody() {
    if util::role().is_some() {
        assert_eq!(rustix::process::geteuid().as_raw(), util::NOBODY.0);
        let stream = Stream::connect(&util::arg("addr").parse().unwrap()).unwrap();
        (&stream).write_all(b"x").unwrap();
        return;
    }
    if !util::is_root() {
        util::skip("switching a peer to nobody needs root");
        return;
    }
    // An abstract name has no file, so nobody may connect.
    let name = format!("@{}", util::unique("nobody"));
    let listener = unix::Listener::bind(&name.parse().unwrap()).unwrap();
    let mut peer = util::Peer::new("unix::peer_credentials_of_a_child_running_as_nobody", "c")
        .arg("addr", &name);
    util::as_nobody(&mut peer);
    let child = peer.spawn();
    let conn = listener.accept_timeout(GUARD).unwrap();
    let cred = conn.peer_credentials().unwrap();
    assert_eq!((cred.uid, cred.gid), util::NOBODY);
    assert_eq!(cred.pid, child.pid());
    (&conn).read_exact(&mut [0; 1]).unwrap();
    child.wait_success();
}

#[test]
fn a_passed_pipe_end_carries_the_childs_writes() {
    if util::role().is_some() {
        let stream = Stream::try_from(util::passed_fd(0)).unwrap();
        let mut buf = [0; 16];
        let (n, mut fds) = stream.recv_with_fds(&mut buf, 4).unwrap();
        assert_eq!(&buf[..n], b"take this");
        assert_eq!(fds.len(), 1);
        let fd = fds.pop().unwrap();
        let flags = rustix::io::fcntl_getfd(&fd).unwrap();
        assert!(
            flags.contains(FdFlags::CLOEXEC),
            "received fd lacks CLOEXEC"
        );
        std::fs::File::from(fd)
            .write_all(b"written by the child")
            .unwrap();
        return;
    }
    let (ours, theirs) = unix::pair().unwrap();
    let (pipe_r, pipe_w) = pipe();
    let child = util::Peer::new("unix::a_passed_pipe_end_carries_the_childs_writes", "c")
        .fd(theirs.as_fd())
        .spawn();
    drop(theirs);
    ours.send_with_fds(b"take this", &[pipe_w.as_fd()]).unwrap();
    // From here the child holds the only write end: end of file on the
    // pipe means its copy closed.
    drop(pipe_w);
    let mut got = String::new();
    std::fs::File::from(pipe_r)
        .read_to_string(&mut got)
        .unwrap();
    assert_eq!(got, "written by the child");
    child.wait_success();
}

#[test]
fn too_many_fds_is_an_error_and_leaks_nothing() {
    if util::role().is_some() {
        let stream = Stream::try_from(util::passed_fd(0)).unwrap();
        let before = open_fds();
        let mut buf = [0; 16];
        // 2 descriptors for room for 1: they fit the rounded-up control
        // buffer, so the count is what catches them.
        let err = stream.recv_with_fds(&mut buf, 1).unwrap_err();
        assert!(
            matches!(err, Error::TooManyFds { capacity: 1, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("more file descriptors than the 1"));
        (&stream).write_all(b"k").unwrap();
        // 5 descriptors for room for 1: the kernel truncates (MSG_CTRUNC).
        let err = stream.recv_with_fds(&mut buf, 1).unwrap_err();
        assert!(
            matches!(err, Error::TooManyFds { capacity: 1, .. }),
            "{err:?}"
        );
        // Room for none at all.
        (&stream).write_all(b"k").unwrap();
        let err = stream.recv_with_fds(&mut buf, 0).unwrap_err();
        assert!(
            matches!(err, Error::TooManyFds { capacity: 0, .. }),
            "{err:?}"
        );
        assert_eq!(open_fds(), before, "descriptors leaked");
        (&stream).write_all(b"k").unwrap();
        // The connection still works: one descriptor in room for one.
        let (n, fds) = stream.recv_with_fds(&mut buf, 1).unwrap();
        assert_eq!((&buf[..n], fds.len()), (&b"d"[..], 1));
        return;
    }
    let (ours, theirs) = unix::pair().unwrap();
    let child = util::Peer::new("unix::too_many_fds_is_an_error_and_leaks_nothing", "c")
        .fd(theirs.as_fd())
        .spawn();
    drop(theirs);
    let mut ack = [0; 1];
    for (message, count) in [(&b"a"[..], 2), (b"b", 5), (b"c", 1)] {
        let pipes: Vec<_> = (0..count).map(|_| pipe()).collect();
        let ends: Vec<_> = pipes.iter().map(|(_, w)| w.as_fd()).collect();
        assert_eq!(ours.send_with_fds(message, &ends).unwrap(), 1);
        drop(ends);
        let readers: Vec<_> = pipes
            .into_iter()
            .map(|(r, w)| {
                drop(w);
                r
            })
            .collect();
        (&ours).read_exact(&mut ack).unwrap();
        // The child is still running: every pipe hangs up only if no copy
        // of its write end is left open there.
        for r in &readers {
            assert!(
                hangs_up(r),
                "a passed descriptor is still open in the child"
            );
        }
    }
    let (_r, w) = pipe();
    ours.send_with_fds(b"d", &[w.as_fd()]).unwrap();
    child.wait_success();
}

#[test]
fn a_killed_listeners_stale_file_is_refused_then_reclaimed() {
    if let Some(role) = util::role() {
        let addr: UnixAddr = util::arg("addr").parse().unwrap();
        if role == "holder" {
            let _listener = unix::Listener::bind(&addr).unwrap();
            tell(&util::passed_fd(0), "bound");
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        let mut stream = Stream::connect(&addr).unwrap();
        stream.write_all(b"hello, successor").unwrap();
        return;
    }
    let dir = util::TempDir::new();
    let path = dir.join("stale.sock");
    let addr = UnixAddr::path(&path).unwrap();
    let (ready_r, ready_w) = pipe();
    let holder = util::Peer::new(
        "unix::a_killed_listeners_stale_file_is_refused_then_reclaimed",
        "holder",
    )
    .arg("addr", &path)
    .fd(ready_w.as_fd())
    .spawn();
    drop(ready_w);
    assert_eq!(hear(&ready_r), "bound");
    holder.kill(); // SIGKILL: no destructor runs
    assert!(std::fs::symlink_metadata(&path)
        .unwrap()
        .file_type()
        .is_socket());

    let err = Stream::connect(&addr).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED));
    assert_eq!(
        err.to_string(),
        format!(
            "unix:{}: connect: connection refused: no process listens there",
            path.display()
        )
    );

    let err = ListenerOptions::new()
        .reclaim_stale(false)
        .bind(&addr)
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE));
    assert!(err.to_string().contains("stale socket file"), "{err}");
    assert!(path.exists());

    let listener = unix::Listener::bind(&addr).unwrap();
    let client = util::Peer::new(
        "unix::a_killed_listeners_stale_file_is_refused_then_reclaimed",
        "client",
    )
    .arg("addr", &path)
    .spawn();
    let mut got = String::new();
    listener
        .accept_timeout(GUARD)
        .unwrap()
        .read_to_string(&mut got)
        .unwrap();
    assert_eq!(got, "hello, successor");
    client.wait_success();
    drop(listener);
    assert!(!path.exists(), "socket file left after drop");
}

/// A listener in a peer that serves until a connection says "quit".
fn serve_until_quit(listener: &unix::Listener) {
    loop {
        let mut conn = listener.accept_timeout(GUARD).expect("accept");
        let mut got = Vec::new();
        conn.read_to_end(&mut got).unwrap();
        if got == b"quit" {
            return;
        }
    }
}

fn say_quit(addr: &UnixAddr) {
    let mut stream = Stream::connect(addr).unwrap();
    stream.write_all(b"quit").unwrap();
}

#[test]
fn binding_over_a_live_listener_fails_and_leaves_it_alone() {
    if util::role().is_some() {
        let addr: UnixAddr = util::arg("addr").parse().unwrap();
        let listener = unix::Listener::bind(&addr).unwrap();
        tell(&util::passed_fd(0), "bound");
        serve_until_quit(&listener);
        return; // drop removes the file
    }
    let dir = util::TempDir::new();
    let path = dir.join("live.sock");
    let addr = UnixAddr::path(&path).unwrap();
    let (ready_r, ready_w) = pipe();
    let child = util::Peer::new(
        "unix::binding_over_a_live_listener_fails_and_leaves_it_alone",
        "holder",
    )
    .arg("addr", &path)
    .fd(ready_w.as_fd())
    .spawn();
    drop(ready_w);
    assert_eq!(hear(&ready_r), "bound");

    let err = unix::Listener::bind(&addr).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE));
    assert_eq!(
        err.to_string(),
        format!(
            "unix:{}: bind: address already in use: another process listens there",
            path.display()
        )
    );
    // A live socket of the other type is just as live.
    let err = unipc::stream::seqpacket::Listener::bind(&addr).unwrap_err();
    assert!(
        err.to_string().contains("another process listens there"),
        "{err}"
    );
    // The holder still serves, and still owns its file.
    say_quit(&addr);
    child.wait_success();
    assert!(!path.exists(), "the holder's drop left its socket file");
}

#[test]
fn a_path_that_is_not_a_socket_is_refused_and_untouched() {
    if util::role().is_some() {
        for (name, found) in [
            ("file", "a regular file"),
            ("dir", "a directory"),
            ("link", "a symbolic link"),
            ("dangling", "a symbolic link"),
        ] {
            let path = Path::new(&util::arg("dir")).join(name);
            let err = unix::Listener::bind(&UnixAddr::path(&path).unwrap()).unwrap_err();
            match &err {
                Error::WrongType {
                    expected, found: f, ..
                } => assert_eq!((*expected, *f), ("a socket", found)),
                other => panic!("{name}: {other:?}"),
            }
            assert_eq!(
                err.to_string(),
                format!("unix:{}: is {found}, not a socket", path.display())
            );
        }
        return;
    }
    let dir = util::TempDir::new();
    std::fs::write(dir.join("file"), b"precious").unwrap();
    std::fs::create_dir(dir.join("dir")).unwrap();
    std::fs::write(dir.join("dir/inner"), b"inside").unwrap();
    std::os::unix::fs::symlink(dir.join("file"), dir.join("link")).unwrap();
    std::os::unix::fs::symlink(dir.join("missing"), dir.join("dangling")).unwrap();
    util::Peer::new(
        "unix::a_path_that_is_not_a_socket_is_refused_and_untouched",
        "binder",
    )
    .arg("dir", dir.path())
    .spawn()
    .wait_success();
    assert_eq!(std::fs::read(dir.join("file")).unwrap(), b"precious");
    assert_eq!(std::fs::read(dir.join("dir/inner")).unwrap(), b"inside");
    assert_eq!(
        std::fs::read_link(dir.join("link")).unwrap(),
        dir.join("file")
    );
    assert_eq!(
        std::fs::read_link(dir.join("dangling")).unwrap(),
        dir.join("missing")
    );
    assert!(!dir.join("missing").exists());
}

#[test]
fn drop_removes_only_the_listeners_own_file() {
    if let Some(role) = util::role() {
        let addr: UnixAddr = util::arg("addr").parse().unwrap();
        let path = addr.as_path().unwrap().to_owned();
        if role == "successor" {
            // Someone removed the first listener's file and bound anew.
            std::fs::remove_file(&path).unwrap();
            let listener = unix::Listener::bind(&addr).unwrap();
            tell(&util::passed_fd(0), "bound");
            serve_until_quit(&listener);
            return;
        }
        // "keeper": told to keep the file, it leaves it behind.
        let listener = ListenerOptions::new()
            .remove_on_drop(false)
            .bind(&addr)
            .unwrap();
        drop(listener);
        assert!(path.exists());
        return;
    }
    let dir = util::TempDir::new();
    let path = dir.join("drop.sock");
    let addr = UnixAddr::path(&path).unwrap();
    let first = unix::Listener::bind(&addr).unwrap();
    let (ready_r, ready_w) = pipe();
    let child = util::Peer::new(
        "unix::drop_removes_only_the_listeners_own_file",
        "successor",
    )
    .arg("addr", &path)
    .fd(ready_w.as_fd())
    .spawn();
    drop(ready_w);
    assert_eq!(hear(&ready_r), "bound");
    drop(first);
    assert!(
        path.exists(),
        "the first listener removed its successor's file"
    );
    say_quit(&addr); // reaches the successor, so its file is intact
    child.wait_success();
    assert!(!path.exists(), "the successor did not remove its own file");

    util::Peer::new("unix::drop_removes_only_the_listeners_own_file", "keeper")
        .arg("addr", &path)
        .spawn()
        .wait_success();
    assert!(std::fs::symlink_metadata(&path)
        .unwrap()
        .file_type()
        .is_socket());
    // A kept file is stale once its listener is gone: reclaimed, removed.
    drop(unix::Listener::bind(&addr).unwrap());
    assert!(!path.exists());
}

#[test]
fn the_mode_on_disk_is_the_mode_asked_whatever_the_umask() {
    if util::role().is_some() {
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
        let dir = Path::new(&util::arg("dir")).to_owned();
        let mode_of = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
        let open = ListenerOptions::new()
            .mode(Mode::ALL_RW)
            .bind(&UnixAddr::path(dir.join("open.sock")).unwrap())
            .unwrap();
        let group = unipc::stream::seqpacket::ListenerOptions::new()
            .mode(Mode::OWNER_GROUP_RW)
            .bind(&UnixAddr::path(dir.join("group.sock")).unwrap())
            .unwrap();
        let default =
            unix::Listener::bind(&UnixAddr::path(dir.join("default.sock")).unwrap()).unwrap();
        assert_eq!(mode_of(&dir.join("open.sock")), 0o666);
        assert_eq!(mode_of(&dir.join("group.sock")), 0o660);
        // Without a mode, the umask applies as usual.
        assert_eq!(mode_of(&dir.join("default.sock")), 0o700);
        // Bits above 0o777 never reach a bind: no Mode holds them.
        let err = Mode::new(0o4777).unwrap_err();
        assert!(matches!(err, Error::InvalidName { .. }), "{err:?}");
        // An abstract socket has no file to carry a mode.
        let err = ListenerOptions::new()
            .mode(Mode::OWNER_RW)
            .bind(&format!("@{}", util::unique("mode")).parse().unwrap())
            .unwrap_err();
        assert!(err.to_string().contains("no permission bits"), "{err}");
        let ready = util::passed_fd(0);
        let go = util::passed_fd(1);
        tell(&ready, "bound");
        assert_eq!(hear(&go), "done");
        drop((open, group, default));
        return;
    }
    let dir = util::TempDir::new();
    let (ready_r, ready_w) = pipe();
    let (go_r, go_w) = pipe();
    let child = util::Peer::new(
        "unix::the_mode_on_disk_is_the_mode_asked_whatever_the_umask",
        "binder",
    )
    .arg("dir", dir.path())
    .fd(ready_w.as_fd())
    .fd(go_r.as_fd())
    .spawn();
    drop((ready_w, go_r));
    assert_eq!(hear(&ready_r), "bound");
    // Seen from another process, too.
    let mode_of = |name: &str| {
        std::fs::symlink_metadata(dir.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode_of("open.sock"), 0o666);
    assert_eq!(mode_of("group.sock"), 0o660);
    tell(&go_w, "done");
    child.wait_success();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn nobody_cannot_connect_to_a_socket_only_root_may_write() {
    if util::role().is_some() {
        let closed: UnixAddr = util::arg("closed").parse().unwrap();
        let err = Stream::connect(&closed).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "unix:{closed}: connect: permission denied: this user lacks permission; check the object's owner and mode"
            )
        );
        let open: UnixAddr = util::arg("open").parse().unwrap();
        let mut stream = Stream::connect(&open).unwrap();
        stream.write_all(b"let in").unwrap();
        return;
    }
    if !util::is_root() {
        util::skip("switching a peer to nobody needs root");
        return;
    }
    let dir = util::TempDir::new();
    let closed = UnixAddr::path(dir.join("closed.sock")).unwrap();
    let open = UnixAddr::path(dir.join("open.sock")).unwrap();
    let closed_listener = ListenerOptions::new()
        .mode(Mode::OWNER_RW)
        .bind(&closed)
        .unwrap();
    let open_listener = ListenerOptions::new()
        .mode(Mode::ALL_RW)
        .bind(&open)
        .unwrap();
    let mut peer = util::Peer::new(
        "unix::nobody_cannot_connect_to_a_socket_only_root_may_write",
        "nobody",
    )
    .arg("closed", closed.to_string())
    .arg("open", open.to_string());
    util::as_nobody(&mut peer);
    let child = peer.spawn();
    let mut got = String::new();
    open_listener
        .accept_timeout(GUARD)
        .unwrap()
        .read_to_string(&mut got)
        .unwrap();
    assert_eq!(got, "let in");
    child.wait_success();
    // The refused attempt never reached the closed listener.
    closed_listener.set_nonblocking(true);
    let err = closed_listener.accept().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");
}

#[test]
fn accept_timeout_times_out_then_accepts() {
    if util::role().is_some() {
        let mut stream = Stream::connect(&util::arg("addr").parse().unwrap()).unwrap();
        stream.write_all(b"late").unwrap();
        return;
    }
    let name = format!("@{}", util::unique("timeout"));
    let listener = unix::Listener::bind(&name.parse().unwrap()).unwrap();
    let timeout = Duration::from_millis(200);
    let started = Instant::now();
    let err = listener.accept_timeout(timeout).unwrap_err();
    let waited = started.elapsed();
    assert!(
        matches!(err, Error::TimedOut { timeout: t, .. } if t == timeout),
        "{err:?}"
    );
    assert!(waited >= timeout, "returned after {waited:?}");
    assert!(waited < GUARD, "hung for {waited:?}");
    assert_eq!(
        err.to_string(),
        format!("unix:{name}: timed out after 200ms")
    );
    let child = util::Peer::new("unix::accept_timeout_times_out_then_accepts", "late")
        .arg("addr", &name)
        .spawn();
    let mut got = String::new();
    listener
        .accept_timeout(GUARD)
        .unwrap()
        .read_to_string(&mut got)
        .unwrap();
    assert_eq!(got, "late");
    child.wait_success();
}

#[test]
fn connect_errors_say_what_is_missing() {
    if util::role().is_some() {
        let missing: UnixAddr = util::arg("missing").parse().unwrap();
        let err = Stream::connect(&missing).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        assert_eq!(
            err.to_string(),
            format!("unix:{missing}: connect: no such file or directory: no socket file there")
        );
        let unheld: UnixAddr = util::arg("unheld").parse().unwrap();
        let err = Stream::connect(&unheld).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("unix:{unheld}: connect: connection refused: no process listens there")
        );
        return;
    }
    let dir = util::TempDir::new();
    util::Peer::new("unix::connect_errors_say_what_is_missing", "c")
        .arg("missing", dir.join("nobody-here.sock"))
        .arg("unheld", format!("@{}", util::unique("unheld")))
        .spawn()
        .wait_success();
}

#[test]
fn a_nonblocking_stream_would_block_instead_of_waiting() {
    if util::role().is_some() {
        let stream = Stream::try_from(util::passed_fd(0)).unwrap();
        hear(&util::passed_fd(1));
        (&stream).write_all(b"now").unwrap();
        return;
    }
    let (ours, theirs) = unix::pair().unwrap();
    let (go_r, go_w) = pipe();
    let child = util::Peer::new(
        "unix::a_nonblocking_stream_would_block_instead_of_waiting",
        "c",
    )
    .fd(theirs.as_fd())
    .fd(go_r.as_fd())
    .spawn();
    drop((theirs, go_r));
    ours.set_nonblocking(true).unwrap();
    let err = (&ours).read(&mut [0; 8]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    ours.set_nonblocking(false).unwrap();
    tell(&go_w, "go");
    let mut got = [0; 3];
    (&ours).read_exact(&mut got).unwrap();
    assert_eq!(&got, b"now");
    child.wait_success();
    // A round trip through OwnedFd keeps the same socket.
    let raw = ours.as_fd().as_raw_fd();
    let fd = OwnedFd::from(ours);
    assert_eq!(fd.as_raw_fd(), raw);
    assert_eq!(
        (&Stream::try_from(fd).unwrap()).read(&mut [0; 1]).unwrap(),
        0
    );
}
