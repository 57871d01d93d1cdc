//! The socket file of every UNIX socket type (stream, seqpacket, datagram),
//! against a hostile directory: an exact mode set without following a link
//! swapped in during the bind (raced by a real process running as
//! `nobody`), a stale file reclaimed only when it is one, and
//! `remove_stale` (in `stream::unix`, `stream::seqpacket`,
//! `message::dgram`).

use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use unipc::message::dgram::UnixOptions;
use unipc::name::UnixAddr;
use unipc::stream::{seqpacket, unix};
use unipc::{Error, Mode};

use crate::util;

/// A socket bound in one of the three types, kept alive while held.
type Bound = Box<dyn AsFd>;

#[derive(Clone, Copy, Debug)]
enum Type {
    Stream,
    Seqpacket,
    Dgram,
}

const TYPES: [Type; 3] = [Type::Stream, Type::Seqpacket, Type::Dgram];

fn bind(kind: Type, addr: &UnixAddr, mode: Option<Mode>, keep: bool) -> Result<Bound, Error> {
    Ok(match kind {
        Type::Stream => {
            let mut options = unix::ListenerOptions::new();
            if let Some(mode) = mode {
                options = options.mode(mode);
            }
            Box::new(options.remove_on_drop(!keep).bind(addr)?)
        }
        Type::Seqpacket => {
            let mut options = seqpacket::ListenerOptions::new();
            if let Some(mode) = mode {
                options = options.mode(mode);
            }
            Box::new(options.remove_on_drop(!keep).bind(addr)?)
        }
        Type::Dgram => {
            let mut options = UnixOptions::new().keep_file(keep);
            if let Some(mode) = mode {
                options = options.mode(mode);
            }
            Box::new(options.bind(addr)?)
        }
    })
}

/// A peer killed when this goes out of scope.
struct KillOnDrop(Option<util::Running>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(peer) = self.0.take() {
            peer.kill();
        }
    }
}

/// The `remove_stale` of each type's module.
fn remove(kind: Type, addr: &UnixAddr) -> Result<(), Error> {
    match kind {
        Type::Stream => unix::remove_stale(addr),
        Type::Seqpacket => seqpacket::remove_stale(addr),
        Type::Dgram => unipc::message::dgram::remove_stale(addr),
    }
}

fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// The regression for the chmod that followed a link: `nobody`, who may
/// write the socket's directory, keeps replacing the socket path with a
/// symbolic link to a root-owned 0600 file while root binds there with
/// mode 0666, in a loop, for every socket type. The file keeps its mode;
/// every bind either made a socket of exactly 0666 or failed with a typed
/// error naming the path. Bounded: 1.5 s or 20,000 binds.
#[test]
fn a_link_swapped_in_during_the_bind_never_gets_the_mode() {
    if util::role().is_some() {
        // The attacker: replace the path, atomically, with a link to the
        // target; then free it so the next bind can go ahead.
        let dir = PathBuf::from(util::arg("dir"));
        let target = PathBuf::from(util::arg("target"));
        let sock = dir.join("race.sock");
        let planted = dir.join("planted");
        // Its own bound, in case the parent dies without killing it.
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let _ = std::fs::remove_file(&planted);
            if std::os::unix::fs::symlink(&target, &planted).is_ok() {
                let _ = std::fs::rename(&planted, &sock);
            }
            for _ in 0..50 {
                std::hint::spin_loop();
            }
            let _ = std::fs::remove_file(&sock);
        }
        return;
    }
    if !util::is_root() {
        util::skip("the race needs root to bind and a peer switched to nobody");
        return;
    }
    let secret_dir = util::TempDir::new();
    let target = secret_dir.join("secret");
    std::fs::write(&target, b"root only").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    let dir = util::TempDir::new();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let sock = dir.join("race.sock");
    let addr = UnixAddr::path(&sock).unwrap();

    let mut peer = util::Peer::new(
        "socket_file::a_link_swapped_in_during_the_bind_never_gets_the_mode",
        "attacker",
    )
    .arg("dir", dir.path())
    .arg("target", &target);
    util::as_nobody(&mut peer);
    // Killed on every way out, a failed assertion included.
    let attacker = KillOnDrop(Some(peer.spawn()));

    let (mut bound, mut refused, mut swapped_after) = (0u32, 0u32, 0u32);
    let started = Instant::now();
    for i in 0..20_000 {
        if started.elapsed() > Duration::from_millis(1500) {
            break;
        }
        let kind = TYPES[i % TYPES.len()];
        match bind(kind, &addr, Some(Mode::ALL_RW), false) {
            Ok(socket) => {
                bound += 1;
                // Still ours (a root-owned socket: only root binds here),
                // unless the attacker has replaced it since.
                match std::fs::symlink_metadata(&sock) {
                    Ok(meta) if meta.file_type().is_socket() && meta.uid() == 0 => {
                        assert_eq!(meta.permissions().mode() & 0o7777, 0o666, "{kind:?}");
                    }
                    _ => swapped_after += 1,
                }
                drop(socket);
            }
            Err(Error::WrongType { object, .. }) => {
                refused += 1;
                assert!(object.ends_with(&*sock.to_string_lossy()), "{object}");
            }
            Err(err) if err.raw_os_error() == Some(libc::EADDRINUSE) => refused += 1,
            Err(err) => panic!("{kind:?}: an untyped failure: {err:?}"),
        }
        assert_eq!(
            mode_of(&target),
            0o600,
            "bind {i} ({kind:?}) chmodded the link's target"
        );
    }
    drop(attacker);
    println!("{bound} binds made a socket ({swapped_after} replaced after), {refused} refused");
    assert_eq!(mode_of(&target), 0o600);
    assert_eq!(std::fs::read(&target).unwrap(), b"root only");
    assert!(bound + refused > 0);
}

/// A live socket of any type, even one only bound (a stream socket not yet
/// listening), keeps its file: a bind over it fails, and it is not
/// unlinked. A stream probe would take the bound one for stale.
#[test]
fn a_bound_socket_not_yet_listening_is_live() {
    if util::role().is_some() {
        return;
    }
    let dir = util::TempDir::new();
    let path = dir.join("bound.sock");
    let addr = UnixAddr::path(&path).unwrap();
    let holder = rustix::net::socket(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::STREAM,
        None,
    )
    .unwrap();
    rustix::net::bind(
        holder.as_fd(),
        &rustix::net::SocketAddrUnix::new(&*path).unwrap(),
    )
    .unwrap();
    let id = |p: &Path| {
        let meta = std::fs::symlink_metadata(p).unwrap();
        (meta.dev(), meta.ino())
    };
    let before = id(&path);
    for kind in TYPES {
        let err = bind(kind, &addr, None, false)
            .err()
            .expect("bound over a live socket");
        assert_eq!(
            err.raw_os_error(),
            Some(libc::EADDRINUSE),
            "{kind:?}: {err}"
        );
        assert_eq!(
            id(&path),
            before,
            "{kind:?} replaced the live socket's file"
        );
    }
    let err = unix::remove_stale(&addr).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE), "{err}");
    assert!(err.to_string().contains("a process is listening"), "{err}");
    assert_eq!(id(&path), before);
}

/// A link at the path is refused as what it is, with or without
/// reclaiming, and neither the link nor the stale socket it points to is
/// removed (the probe never follows it).
#[test]
fn a_link_to_a_stale_socket_is_refused_and_untouched() {
    if util::role().is_some() {
        return;
    }
    let dir = util::TempDir::new();
    let stale = dir.join("stale.sock");
    let stale_addr = UnixAddr::path(&stale).unwrap();
    drop(bind(Type::Stream, &stale_addr, None, true).unwrap());
    let link = dir.join("link.sock");
    std::os::unix::fs::symlink(&stale, &link).unwrap();
    let addr = UnixAddr::path(&link).unwrap();
    for kind in TYPES {
        let err = bind(kind, &addr, Some(Mode::OWNER_RW), false)
            .err()
            .expect("bound over a link");
        match &err {
            Error::WrongType { found, .. } => assert_eq!(*found, "a symbolic link"),
            other => panic!("{kind:?}: {other:?}"),
        }
        assert!(err.to_string().contains(&*link.to_string_lossy()), "{err}");
    }
    let err = unix::remove_stale(&addr).unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongType {
                found: "a symbolic link",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(std::fs::read_link(&link).unwrap(), stale);
    assert!(std::fs::symlink_metadata(&stale)
        .unwrap()
        .file_type()
        .is_socket());
    // The stale socket itself is reclaimed by a bind of any type.
    for kind in TYPES {
        drop(bind(kind, &stale_addr, None, true).unwrap());
    }
    unix::remove_stale(&stale_addr).unwrap();
    assert!(!stale.exists());
}

/// `remove_stale` removes a stale socket file of any type, refuses a live
/// one (in another process) and anything that is not a socket, and says
/// what it found.
#[test]
fn remove_stale_removes_only_a_stale_socket() {
    if let Some(role) = util::role() {
        let addr: UnixAddr = util::arg("addr").parse().unwrap();
        let kind = match role.as_str() {
            "stream" => Type::Stream,
            "seqpacket" => Type::Seqpacket,
            _ => Type::Dgram,
        };
        let _held = bind(kind, &addr, None, false).unwrap();
        println!("bound");
        std::thread::sleep(Duration::from_secs(30));
        return;
    }
    let dir = util::TempDir::new();
    for (name, kind, scheme) in [
        ("stream", Type::Stream, "unix"),
        ("seqpacket", Type::Seqpacket, "unix-seqpacket"),
        ("dgram", Type::Dgram, "unix-dgram"),
    ] {
        let path = dir.join(&format!("{name}.sock"));
        let addr = UnixAddr::path(&path).unwrap();
        // Live, in another process.
        let mut holder = util::Peer::new(
            "socket_file::remove_stale_removes_only_a_stale_socket",
            name,
        )
        .arg("addr", &path)
        .capture_stdout()
        .spawn();
        // The peer's stdout also carries libtest's lines: wait for ours.
        let mut lines =
            std::io::BufRead::lines(std::io::BufReader::new(holder.child.stdout.take().unwrap()));
        assert!(
            lines.any(|line| line.unwrap().trim() == "bound"),
            "{kind:?}: the holder did not bind"
        );
        let err = remove(kind, &addr).unwrap_err();
        assert_eq!(
            err.raw_os_error(),
            Some(libc::EADDRINUSE),
            "{kind:?}: {err}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "{scheme}:{}: remove: address already in use: a process is listening (a socket is bound to it); it was left alone",
                path.display()
            )
        );
        assert!(path.exists());
        holder.kill(); // SIGKILL: the file stays, stale
        assert!(std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_socket());
        remove(kind, &addr).unwrap();
        assert!(
            std::fs::symlink_metadata(&path).is_err(),
            "{kind:?}: not removed"
        );
        let err = remove(kind, &addr).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
    }
    // Not sockets: refused as what they are, left alone.
    let file = dir.join("file");
    std::fs::write(&file, b"precious").unwrap();
    let link = dir.join("link");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let subdir = dir.join("dir");
    std::fs::create_dir(&subdir).unwrap();
    for (path, found) in [
        (&file, "a regular file"),
        (&link, "a symbolic link"),
        (&subdir, "a directory"),
    ] {
        let addr = UnixAddr::path(path).unwrap();
        let err = unix::remove_stale(&addr).unwrap_err();
        match &err {
            Error::WrongType { found: f, .. } => assert_eq!(*f, found),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            err.to_string(),
            format!("unix:{}: is {found}, not a socket", path.display())
        );
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"precious");
    assert_eq!(std::fs::read_link(&link).unwrap(), file);
    // An abstract name has no file.
    let name: UnixAddr = format!("@{}", util::unique("rm")).parse().unwrap();
    assert!(matches!(
        unix::remove_stale(&name),
        Err(Error::Unsupported { .. })
    ));
}

/// The exact mode whatever the umask, for every type (the umask only masks
/// the mode bind starts from; the exact mode is set on the inode after).
#[test]
fn the_exact_mode_whatever_the_umask_for_every_type() {
    if util::role().is_some() {
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
        let dir = PathBuf::from(util::arg("dir"));
        for (i, kind) in TYPES.into_iter().enumerate() {
            for mode in [0o666, 0o660, 0o600, 0o700] {
                let path = dir.join(format!("{i}-{mode:o}.sock"));
                let held = bind(
                    kind,
                    &UnixAddr::path(&path).unwrap(),
                    Some(Mode::new(mode).unwrap()),
                    false,
                )
                .unwrap();
                assert_eq!(mode_of(&path), mode, "{kind:?}");
                drop(held);
                assert!(!path.exists(), "{kind:?}: left its file");
            }
        }
        return;
    }
    let dir = util::TempDir::new();
    util::Peer::new(
        "socket_file::the_exact_mode_whatever_the_umask_for_every_type",
        "binder",
    )
    .arg("dir", dir.path())
    .spawn()
    .wait_success();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
