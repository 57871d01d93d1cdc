//! The one rule for adopting a raw descriptor: `TryFrom<OwnedFd>` checks
//! the kind, and a wrong one comes back inside the error.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use unipc::message::dgram::{UdpSocket, UnixDatagram};
use unipc::stream::fifo::{self, Fifo};
use unipc::stream::{pipe, pty, seqpacket, tcp, unix};
use unipc::{AdoptError, Error, Mode};

use crate::util::{self, Peer};

/// Asserts `result` refused the descriptor `raw` as `found`, and returns
/// the descriptor it gave back.
fn refused<T: std::fmt::Debug>(result: Result<T, AdoptError>, raw: i32, found: &str) -> OwnedFd {
    let err = result.unwrap_err();
    match err.error() {
        Error::WrongType { found: f, .. } => assert_eq!(*f, found, "{err}"),
        other => panic!("not WrongType: {other}"),
    }
    let fd = err.into_fd();
    assert_eq!(fd.as_raw_fd(), raw, "the same descriptor comes back");
    fd
}

fn localhost() -> SocketAddr {
    (Ipv4Addr::LOCALHOST, 0).into()
}

#[test]
fn pipe_ends_are_checked_for_their_direction() {
    let (tx, rx) = pipe::new().unwrap();
    let (w, r): (OwnedFd, OwnedFd) = (tx.into(), rx.into());
    let (wr, rr) = (w.as_raw_fd(), r.as_raw_fd());
    let r = refused(
        pipe::Sender::try_from(r),
        rr,
        "the read end of a pipe or FIFO",
    );
    let w = refused(
        pipe::Receiver::try_from(w),
        wr,
        "the write end of a pipe or FIFO",
    );
    let w = refused(
        unix::Stream::try_from(w),
        wr,
        "the write end of a pipe or FIFO",
    );
    let mut tx = pipe::Sender::try_from(w).unwrap();
    let mut rx = pipe::Receiver::try_from(r).unwrap();
    tx.write_all(b"ok").unwrap();
    let mut got = [0; 2];
    rx.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ok");
}

#[test]
fn a_regular_file_is_no_pipe_and_no_socket() {
    let dir = util::TempDir::new();
    let file: OwnedFd = std::fs::File::create(dir.join("plain")).unwrap().into();
    let raw = file.as_raw_fd();
    let file = refused(pipe::Sender::try_from(file), raw, "a regular file");
    let file = refused(tcp::Stream::try_from(file), raw, "a regular file");
    let file = refused(UnixDatagram::try_from(file), raw, "a regular file");
    // An error the caller does not want converts into unipc::Error.
    let err: Error = seqpacket::Conn::try_from(file).unwrap_err().into();
    assert!(
        err.to_string()
            .contains("is a regular file, not a UNIX seqpacket socket"),
        "{err}"
    );
}

#[test]
fn sockets_are_checked_for_family_type_and_listening() {
    let (a, _b) = unix::pair().unwrap();
    let a: OwnedFd = a.into();
    let raw = a.as_raw_fd();
    let a = refused(seqpacket::Conn::try_from(a), raw, "a UNIX stream socket");
    let a = refused(tcp::Stream::try_from(a), raw, "a UNIX stream socket");
    let a = refused(UnixDatagram::try_from(a), raw, "a UNIX stream socket");
    let a = refused(pipe::Receiver::try_from(a), raw, "a UNIX stream socket");
    unix::Stream::try_from(a).unwrap();

    let (c, _d) = seqpacket::pair().unwrap();
    let c: OwnedFd = c.into();
    let raw = c.as_raw_fd();
    let c = refused(unix::Stream::try_from(c), raw, "a UNIX seqpacket socket");
    seqpacket::Conn::try_from(c).unwrap();

    let (e, _f) = UnixDatagram::pair().unwrap();
    let e: OwnedFd = e.into();
    let raw = e.as_raw_fd();
    let e = refused(UdpSocket::try_from(e), raw, "a UNIX datagram socket");
    UnixDatagram::try_from(e).unwrap();

    let listener: OwnedFd = tcp::Listener::bind_addr(localhost()).unwrap().into();
    let raw = listener.as_raw_fd();
    let listener = refused(
        tcp::Stream::try_from(listener),
        raw,
        "a listening TCP socket",
    );
    let listener = tcp::Listener::try_from(listener).unwrap();
    let client: OwnedFd = tcp::Stream::connect_addr(listener.local_addr().unwrap())
        .unwrap()
        .into();
    let raw = client.as_raw_fd();
    let client = refused(tcp::Listener::try_from(client), raw, "a TCP socket");
    tcp::Stream::try_from(client).unwrap();

    let udp: OwnedFd = UdpSocket::bind_addr(localhost()).unwrap().into();
    let raw = udp.as_raw_fd();
    let udp = refused(tcp::Stream::try_from(udp), raw, "a UDP socket");
    let udp = refused(UnixDatagram::try_from(udp), raw, "a UDP socket");
    UdpSocket::try_from(udp).unwrap();
}

#[test]
fn fifo_ends_are_checked_like_pipe_ends() {
    let dir = util::TempDir::new();
    let made = Fifo::create(dir.join("f"), Mode::OWNER_RW).unwrap();
    let options = fifo::OpenOptions::new().nonblocking(true);
    let reader: OwnedFd = options.open_reader(made.path()).unwrap().into();
    let writer: OwnedFd = options.open_writer(made.path()).unwrap().into();
    let (rr, wr) = (reader.as_raw_fd(), writer.as_raw_fd());
    let reader = refused(
        fifo::Writer::try_from(reader),
        rr,
        "the read end of a pipe or FIFO",
    );
    let writer = refused(
        fifo::Reader::try_from(writer),
        wr,
        "the write end of a pipe or FIFO",
    );
    let mut writer = fifo::Writer::try_from(writer).unwrap();
    let mut reader = fifo::Reader::try_from(reader).unwrap();
    assert_eq!(reader.object(), "fifo");
    writer.write_all(b"ok").unwrap();
    let mut got = [0; 2];
    reader.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ok");

    let (a, _b) = unix::pair().unwrap();
    let a: OwnedFd = a.into();
    let raw = a.as_raw_fd();
    refused(fifo::Reader::try_from(a), raw, "a UNIX stream socket");
}

#[test]
fn only_a_pseudoterminal_master_is_adopted_as_one() {
    let (master, subsidiary) = pty::Pair::open().unwrap().into_parts();
    let raw = subsidiary.as_raw_fd();
    refused(
        pty::Master::try_from(subsidiary),
        raw,
        "a character device that is not a pseudoterminal master",
    );
    let object = master.object().to_owned();
    let master: OwnedFd = master.into();
    let (tx, _rx) = pipe::new().unwrap();
    let pipe_end: OwnedFd = tx.into();
    let raw = pipe_end.as_raw_fd();
    refused(
        pty::Master::try_from(pipe_end),
        raw,
        "the write end of a pipe or FIFO",
    );
    let master = pty::Master::try_from(master).unwrap();
    assert_eq!(master.object(), object);
    master.window_size().unwrap();
}

/// A descriptor inherited across exec: the peer first tries it as the
/// wrong kind, gets it back, and adopts it as the right one.
#[test]
fn an_inherited_descriptor_refused_as_the_wrong_kind_is_still_usable() {
    if util::role().is_some() {
        let fd = util::passed_fd(0);
        let raw = fd.as_raw_fd();
        let fd = refused(
            unix::Stream::try_from(fd),
            raw,
            "the write end of a pipe or FIFO",
        );
        let fd = refused(
            pipe::Receiver::try_from(fd),
            raw,
            "the write end of a pipe or FIFO",
        );
        pipe::Sender::try_from(fd)
            .unwrap()
            .write_all(b"adopted")
            .unwrap();
        return;
    }
    let (tx, mut rx) = pipe::new().unwrap();
    let peer = Peer::new(
        "adopt::an_inherited_descriptor_refused_as_the_wrong_kind_is_still_usable",
        "child",
    )
    .fd(tx.as_fd())
    .spawn();
    drop(tx);
    let mut got = String::new();
    rx.read_to_string(&mut got).unwrap();
    assert_eq!(got, "adopted");
    peer.wait_success();
}
