//! Every byte stream as `AsyncRead`/`AsyncWrite`, and async accept, each
//! against a peer process that echoes through the same async types.

use std::os::fd::{AsFd, OwnedFd};
use std::process::Command;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use unipc::asynch::{AsyncListener, AsyncStream};
use unipc::name::UnixAddr;
use unipc::stream::{fifo, pipe, pty, seqpacket, tcp, unix};
use unipc::Mode;

use super::{patient, wait_success};
use crate::util;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Pipe,
    Fifo,
    UnixPair,
    UnixListener,
    Seqpacket,
    SeqpacketListener,
    Tcp,
}

impl Kind {
    fn parse(text: &str) -> Kind {
        [
            Kind::Pipe,
            Kind::Fifo,
            Kind::UnixPair,
            Kind::UnixListener,
            Kind::Seqpacket,
            Kind::SeqpacketListener,
            Kind::Tcp,
        ]
        .into_iter()
        .find(|k| format!("{k:?}") == text)
        .unwrap_or_else(|| panic!("unknown kind {text}"))
    }

    /// A seqpacket write is one message: keep each under the socket's limit.
    fn chunk(self) -> usize {
        match self {
            Kind::Seqpacket | Kind::SeqpacketListener => 1000,
            _ => 64 * 1024,
        }
    }
}

const TOTAL: usize = 300 * 1024;

fn data() -> Vec<u8> {
    (0..TOTAL).map(|i| (i * 7 % 253) as u8).collect()
}

/// Copies everything from `r` to `w` until the end of `r`, then ends `w`.
async fn echo(mut r: impl AsyncRead + Unpin, mut w: impl AsyncWrite + Unpin) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = patient("echo read", r.read(&mut buf)).await.unwrap();
        if n == 0 {
            break;
        }
        patient("echo write", w.write_all(&buf[..n])).await.unwrap();
    }
    w.shutdown().await.unwrap();
}

/// Writes the data in `chunk`-sized writes, then ends the stream.
async fn send_all(mut w: impl AsyncWrite + Unpin, chunk: usize) {
    for piece in data().chunks(chunk) {
        patient("write", w.write_all(piece)).await.unwrap();
    }
    w.shutdown().await.unwrap();
}

/// Reads to the end (a read of 0), in 64 KiB reads (a seqpacket read
/// takes a whole message, so no smaller probe).
async fn read_all(mut r: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = patient("read", r.read(&mut buf)).await.unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// The parent's side over a two-way stream: send and read back at once.
async fn round_trip<S: AsyncRead + AsyncWrite + Unpin>(stream: S, kind: Kind) {
    let (r, w) = tokio::io::split(stream);
    let (_, got) = tokio::join!(send_all(w, kind.chunk()), read_all(r));
    assert!(
        got == data(),
        "{kind:?}: {} bytes back, not the same",
        got.len()
    );
}

fn dup(fd: impl AsFd) -> OwnedFd {
    fd.as_fd().try_clone_to_owned().expect("dup")
}

async fn peer(kind: Kind) {
    match kind {
        Kind::Pipe => {
            let r = pipe::Receiver::try_from(util::passed_fd(0)).unwrap();
            let w = pipe::Sender::try_from(util::passed_fd(1)).unwrap();
            echo(AsyncStream::new(r).unwrap(), AsyncStream::new(w).unwrap()).await;
        }
        Kind::Fifo => {
            let r = fifo::Reader::open(util::arg("TO_PEER")).unwrap();
            let w = fifo::Writer::open(util::arg("FROM_PEER")).unwrap();
            echo(AsyncStream::new(r).unwrap(), AsyncStream::new(w).unwrap()).await;
        }
        Kind::UnixPair | Kind::Seqpacket => {
            let fd = util::passed_fd(0);
            if kind == Kind::UnixPair {
                let s = AsyncStream::new(unix::Stream::try_from(fd).unwrap()).unwrap();
                let (r, w) = tokio::io::split(s);
                echo(r, w).await;
            } else {
                let s = AsyncStream::new(seqpacket::Conn::try_from(fd).unwrap()).unwrap();
                let (r, w) = tokio::io::split(s);
                echo(r, w).await;
            }
        }
        Kind::UnixListener => {
            let addr: UnixAddr = util::arg("ADDR").parse().unwrap();
            let s = AsyncStream::new(unix::Stream::connect(&addr).unwrap()).unwrap();
            let (r, w) = tokio::io::split(s);
            echo(r, w).await;
        }
        Kind::SeqpacketListener => {
            let addr: UnixAddr = util::arg("ADDR").parse().unwrap();
            let s = AsyncStream::new(seqpacket::Conn::connect(&addr).unwrap()).unwrap();
            let (r, w) = tokio::io::split(s);
            echo(r, w).await;
        }
        Kind::Tcp => {
            let addr = util::arg("ADDR").parse().unwrap();
            let s = AsyncStream::new(tcp::Stream::connect_addr(addr).unwrap()).unwrap();
            let (r, w) = tokio::io::split(s);
            echo(r, w).await;
        }
    }
}

/// An accept dropped while nobody connects accepted nothing.
async fn dropped_accept<L: unipc::asynch::Accept>(listener: &AsyncListener<L>) {
    assert!(
        tokio::time::timeout(Duration::from_millis(20), listener.accept())
            .await
            .is_err(),
        "nobody connected yet"
    );
}

async fn stream_round_trip(kind: Kind, test: &str) {
    if util::role().is_some() {
        peer(Kind::parse(&util::arg("KIND"))).await;
        return;
    }
    let base = util::Peer::new(test, "echo").arg("KIND", format!("{kind:?}"));
    match kind {
        Kind::Pipe => {
            let (to_peer_w, to_peer_r) = pipe::new().unwrap();
            let (from_peer_w, from_peer_r) = pipe::new().unwrap();
            let running = base.fd(to_peer_r.as_fd()).fd(from_peer_w.as_fd()).spawn();
            drop((to_peer_r, from_peer_w));
            let w = AsyncStream::new(to_peer_w).unwrap();
            let r = AsyncStream::new(from_peer_r).unwrap();
            let (_, got) = tokio::join!(send_all(w, kind.chunk()), read_all(r));
            assert!(got == data(), "pipe: {} bytes back", got.len());
            wait_success(running).await;
        }
        Kind::Fifo => {
            let dir = util::TempDir::new();
            let to_peer = fifo::Fifo::create(dir.join("to"), Mode::OWNER_RW).unwrap();
            let from_peer = fifo::Fifo::create(dir.join("from"), Mode::OWNER_RW).unwrap();
            let running = base
                .arg("TO_PEER", to_peer.path())
                .arg("FROM_PEER", from_peer.path())
                .spawn();
            // The peer opens the reader first, then the writer: same order.
            let (w, r) = tokio::task::spawn_blocking(move || {
                let w = fifo::Writer::open(to_peer.path()).unwrap();
                let r = fifo::Reader::open(from_peer.path()).unwrap();
                (w, r)
            })
            .await
            .unwrap();
            let (w, r) = (AsyncStream::new(w).unwrap(), AsyncStream::new(r).unwrap());
            let (_, got) = tokio::join!(send_all(w, kind.chunk()), read_all(r));
            assert!(got == data(), "fifo: {} bytes back", got.len());
            wait_success(running).await;
        }
        Kind::UnixPair => {
            let (ours, theirs) = unix::pair().unwrap();
            let running = base.fd(theirs.as_fd()).spawn();
            drop(theirs);
            // Through shared references: one stream, a reader and a writer.
            let ours = AsyncStream::new(ours).unwrap();
            let (_, got) = tokio::join!(send_all(&ours, kind.chunk()), read_all(&ours));
            assert!(got == data(), "socketpair: {} bytes back", got.len());
            wait_success(running).await;
        }
        Kind::Seqpacket => {
            let (ours, theirs) = seqpacket::pair().unwrap();
            let running = base.fd(theirs.as_fd()).spawn();
            drop(theirs);
            round_trip(AsyncStream::new(ours).unwrap(), kind).await;
            wait_success(running).await;
        }
        Kind::UnixListener => {
            let dir = util::TempDir::new();
            let addr = UnixAddr::path(dir.join("sock")).unwrap();
            let listener = AsyncListener::new(unix::Listener::bind(&addr).unwrap()).unwrap();
            dropped_accept(&listener).await;
            let running = base.arg("ADDR", addr.to_string()).spawn();
            let stream = patient("accept", listener.accept()).await.unwrap();
            round_trip(AsyncStream::new(stream).unwrap(), kind).await;
            wait_success(running).await;
            // The listener comes back, still bound, still accepting.
            let listener = listener.into_inner().unwrap();
            assert_eq!(listener.local_addr(), &addr);
        }
        Kind::SeqpacketListener => {
            let dir = util::TempDir::new();
            let addr = UnixAddr::path(dir.join("sock")).unwrap();
            let listener = AsyncListener::new(seqpacket::Listener::bind(&addr).unwrap()).unwrap();
            dropped_accept(&listener).await;
            let running = base.arg("ADDR", addr.to_string()).spawn();
            let conn = patient("accept", listener.accept()).await.unwrap();
            round_trip(AsyncStream::new(conn).unwrap(), kind).await;
            wait_success(running).await;
        }
        Kind::Tcp => {
            let listener = AsyncListener::new(
                tcp::Listener::bind_addr("127.0.0.1:0".parse().unwrap()).unwrap(),
            )
            .unwrap();
            dropped_accept(&listener).await;
            let addr = listener.get_ref().local_addr().unwrap();
            let running = base.arg("ADDR", addr.to_string()).spawn();
            let (stream, _) = patient("accept", listener.accept()).await.unwrap();
            round_trip(AsyncStream::new(stream).unwrap(), kind).await;
            wait_success(running).await;
        }
    }
}

macro_rules! round_trips {
    ($($name:ident => $kind:expr),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            stream_round_trip($kind, concat!("asynch::streams::", stringify!($name))).await;
        }
    )*};
}

round_trips! {
    pipe_round_trip => Kind::Pipe,
    fifo_round_trip => Kind::Fifo,
    socketpair_round_trip => Kind::UnixPair,
    unix_listener_round_trip => Kind::UnixListener,
    seqpacket_pair_round_trip => Kind::Seqpacket,
    seqpacket_listener_round_trip => Kind::SeqpacketListener,
    tcp_round_trip => Kind::Tcp,
}

/// A pty master as an async stream: input reaches a child on the terminal,
/// its output comes back, and the end of the child is the end of the
/// stream (EIO read as 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pty_master_round_trip() {
    let mut command = Command::new("sh");
    command.args(["-c", "read line; echo \"got:$line\""]);
    let child = pty::Pair::open().unwrap().spawn(command).unwrap();
    let (master, mut process) = child.into_parts();
    let mut master = AsyncStream::new(master).unwrap();
    patient("write", master.write_all(b"hello\n"))
        .await
        .unwrap();
    let out = read_all(&mut master).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("got:hello"), "{text:?}");
    let status = tokio::task::spawn_blocking(move || process.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}

/// A write to a stream whose reader is gone is EPIPE as an error, never a
/// signal, even with SIGPIPE at its default (in a peer, so the disposition
/// changes nowhere else); the end of a stream whose writer exited is a
/// read of 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_pipe_is_an_error_not_a_signal() {
    const TEST: &str = "asynch::streams::broken_pipe_is_an_error_not_a_signal";
    match util::role().as_deref() {
        Some("default-sigpipe") => {
            // SAFETY: setting a standard disposition, before any thread of
            // this peer writes to a pipe; no handler is installed.
            unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
            // The handles are made after the change, so they see it.
            let (tx, rx) = pipe::new().unwrap();
            drop(rx);
            let mut tx = AsyncStream::new(tx).unwrap();
            let err = tx.write(b"lost").await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "pipe: {err}");
            let (a, b) = unix::pair().unwrap();
            drop(b);
            let mut a = AsyncStream::new(a).unwrap();
            let err = a.write(b"lost").await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "unix: {err}");
            // And across processes: the parent's reader is gone.
            let w = pipe::Sender::try_from(util::passed_fd(0)).unwrap();
            let mut w = AsyncStream::new(w).unwrap();
            let err = loop {
                match w.write(&[0u8; 4096]).await {
                    Ok(_) => tokio::task::yield_now().await,
                    Err(err) => break err,
                }
            };
            assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "{err}");
            return;
        }
        Some("exit") => return,
        _ => {}
    }
    // EOF: a peer that exits without writing ends our read with 0.
    let (w, r) = pipe::new().unwrap();
    let running = util::Peer::new(TEST, "exit").fd(w.as_fd()).spawn();
    drop(w);
    let mut r = AsyncStream::new(r).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(patient("read", r.read(&mut buf)).await.unwrap(), 0);
    wait_success(running).await;
    // EPIPE: the peer writes into a pipe whose only reader we close.
    let (w, r) = pipe::new().unwrap();
    let copy = dup(&w);
    drop(w);
    let running = util::Peer::new(TEST, "default-sigpipe")
        .fd(copy.as_fd())
        .spawn();
    drop(copy);
    drop(r);
    // Succeeds only if the peer got EPIPE errors and no SIGPIPE killed it.
    wait_success(running).await;
}

/// A read dropped mid-wait (by tokio's timeout) took no byte: everything
/// the peer writes afterwards arrives, from the first byte on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_dropped_mid_wait_loses_nothing() {
    const TEST: &str = "asynch::streams::read_dropped_mid_wait_loses_nothing";
    if util::role().is_some() {
        let w = pipe::Sender::try_from(util::passed_fd(0)).unwrap();
        let go = pipe::Receiver::try_from(util::passed_fd(1)).unwrap();
        let mut go = AsyncStream::new(go).unwrap();
        let mut byte = [0u8; 1];
        patient("go", go.read_exact(&mut byte)).await.unwrap();
        let mut w = AsyncStream::new(w).unwrap();
        patient("write", w.write_all(b"late bytes")).await.unwrap();
        return;
    }
    let (w, r) = pipe::new().unwrap();
    let (go_w, go_r) = pipe::new().unwrap();
    let running = util::Peer::new(TEST, "late")
        .fd(w.as_fd())
        .fd(go_r.as_fd())
        .spawn();
    drop((w, go_r));
    let mut r = AsyncStream::new(r).unwrap();
    let mut go_w = AsyncStream::new(go_w).unwrap();
    let mut buf = [0u8; 64];
    for _ in 0..3 {
        assert!(
            tokio::time::timeout(Duration::from_millis(10), r.read(&mut buf))
                .await
                .is_err(),
            "nothing was written yet"
        );
    }
    patient("go", go_w.write_all(b"!")).await.unwrap();
    let got = read_all(&mut r).await;
    assert_eq!(got, b"late bytes");
    wait_success(running).await;
}

/// Byte-stream endpoints opened from their strings and turned async
/// (`StreamHandle::into_async`): a blocking peer process writes, this one
/// reads to the end; the FIFO's read end refuses a write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_endpoints_opened_from_strings_are_awaited_between_processes() {
    use unipc::open::OpenOptions;
    use unipc::Endpoint;
    const TEST: &str =
        "asynch::streams::stream_endpoints_opened_from_strings_are_awaited_between_processes";
    if util::role().is_some() {
        let endpoint: Endpoint = util::arg("endpoint").parse().unwrap();
        let handle = OpenOptions::new()
            .timeout(Duration::from_secs(10))
            .connect(&endpoint)
            .unwrap();
        let unipc::open::Handle::Stream(mut stream) = handle else {
            panic!("{endpoint} is not a stream");
        };
        std::io::Write::write_all(&mut stream, format!("through {endpoint}").as_bytes()).unwrap();
        return;
    }
    let dir = util::TempDir::new();
    let fifo = dir.join("f");
    let _fifo = fifo::Fifo::create(&fifo, Mode::OWNER_RW).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for text in [
        format!("fifo:{}", fifo.display()),
        format!("unix:{}", dir.join("s").display()),
        format!("tcp:127.0.0.1:{port}"),
    ] {
        let endpoint: Endpoint = text.parse().unwrap();
        let listener = OpenOptions::new().listen(&endpoint).unwrap();
        let peer = util::Peer::new(TEST, "writer")
            .arg("endpoint", &text)
            .spawn();
        let handle = tokio::task::spawn_blocking(move || listener.accept().unwrap())
            .await
            .unwrap();
        let unipc::open::Handle::Stream(stream) = handle else {
            panic!("{text} is not a stream");
        };
        let mut stream = stream.into_async().unwrap();
        let mut got = String::new();
        patient("read", stream.read_to_string(&mut got))
            .await
            .unwrap();
        assert_eq!(got, format!("through {endpoint}"));
        if text.starts_with("fifo:") {
            let err = stream.write_all(b"x").await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::Unsupported, "{err}");
        }
        wait_success(peer).await;
    }
}
