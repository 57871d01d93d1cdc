//! Typed messages between processes (feature `typed`): a struct round
//! trip through every message facility (the conformance suite's channels,
//! and pubsub) and through framed byte streams (a pipe, a UNIX stream);
//! oversize refused before sending, naming both sizes; another version or
//! type tag refused; garbage and huge declared lengths as typed errors;
//! descriptors travelling with a value on seqpacket.

use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};
use std::os::fd::{AsFd, OwnedFd};

use serde::{Deserialize, Serialize};
use unipc::message::posix_mq as pmq;
use unipc::message::ring::pubsub::PubSubOptions;
use unipc::message::typed::{self, Encoding, Framed, TypeTag, Typed, HEADER_LEN, MAX_FDS};
use unipc::message::{Messenger, Tag, Wait};
use unipc::name::PosixName;
use unipc::stream::seqpacket as sp;
use unipc::stream::{pipe, unix};
use unipc::Error;

use crate::message_conformance::{self as conf, Kind, PATIENCE};
use crate::util;

const JOB: TypeTag = TypeTag::named("unipc-test.Job/v1");

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Step {
    Build { target: String },
    Test(u32),
    Done,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Job {
    id: u64,
    name: String,
    weight: f64,
    steps: Vec<Step>,
    env: BTreeMap<String, String>,
    parent: Option<u64>,
    #[serde(with = "bytes")]
    blob: Vec<u8>,
}

/// A byte string in CBOR (major type 2), not an array of numbers.
mod bytes {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_byte_buf(V)
    }
}

fn job(id: u64) -> Job {
    Job {
        id,
        name: format!("job-{id} ✓"),
        weight: id as f64 / 3.0,
        steps: vec![
            Step::Build {
                target: "all".into(),
            },
            Step::Test(id as u32),
            Step::Done,
        ],
        env: [("PATH".to_owned(), "/bin".to_owned())].into(),
        parent: id.checked_sub(1),
        blob: (0..(id % 50) as u8).collect(),
    }
}

/// The tag each message `i` travels with on `kind`.
fn tag_for(kind: Kind, i: u64) -> Tag {
    match kind.tags().0 {
        Tag::Priority(_) => Tag::Priority(3),
        Tag::Type(_) => Tag::Type(i as i64 + 1),
        other => other,
    }
}

const ROUND_TRIP: u64 = 20;

/// The peer sends ROUND_TRIP jobs; the parent receives each whole, with its
/// tag, and answers the last one, which the peer checks.
fn round_trip(kind: Kind, test: &str) {
    if util::role().is_some() {
        let (kind, end) = conf::peer_end();
        let tx = Typed::<_, Job>::new(&end.tx).with_type_tag(JOB);
        let rx = Typed::<_, Job>::new(&end.rx).with_type_tag(JOB);
        for i in 0..ROUND_TRIP {
            tx.send_tagged(&job(i), tag_for(kind, i), PATIENCE).unwrap();
        }
        let (answer, _) = rx.recv_tagged(PATIENCE).unwrap();
        assert_eq!(answer, job(1000));
        return;
    }
    let (end, peer) = conf::channel(kind, test, "sender").spawn();
    let tx = Typed::<_, Job>::new(&end.tx).with_type_tag(JOB);
    let rx = Typed::<_, Job>::new(&end.rx).with_type_tag(JOB);
    for i in 0..ROUND_TRIP {
        let (got, tag) = rx
            .recv_tagged(PATIENCE)
            .unwrap_or_else(|e| panic!("{kind:?} message {i}: {e}"));
        assert_eq!(got, job(i), "{kind:?}: message {i} arrived whole");
        assert_eq!(tag, tag_for(kind, i), "{kind:?}: the tag travels");
    }
    tx.send_tagged(&job(1000), tag_for(kind, 0), PATIENCE)
        .unwrap();
    peer.wait_success();
}

/// A value whose encoding is over the facility's limit is refused before
/// anything is sent, naming the encoded size and the limit; the next one
/// is the first to arrive.
fn oversize(kind: Kind, test: &str) {
    if util::role().is_some() {
        let (_, end) = conf::peer_end();
        let rx = Typed::<_, Job>::new(&end.rx);
        assert_eq!(rx.recv_tagged(PATIENCE).unwrap().0, job(1));
        return;
    }
    let (end, peer) = conf::channel(kind, test, "receiver").spawn();
    let tx = Typed::<_, Job>::new(&end.tx);
    let limit = end.tx.limits().unwrap().max_message_size;
    let mut big = job(1);
    big.blob = vec![7; limit];
    let encoded = typed::encode(&big, None).unwrap().len();
    assert!(encoded > limit);
    let err = tx
        .send_tagged(&big, Tag::None, Wait::Never)
        .expect_err("an oversized value must be refused");
    match &err {
        Error::MessageTooLarge {
            size, limit: got, ..
        } => assert_eq!((*size, *got), (encoded, limit), "{kind:?}"),
        other => panic!("{kind:?}: expected MessageTooLarge, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&encoded.to_string()) && text.contains(&limit.to_string()),
        "{text}"
    );
    tx.send_tagged(&job(1), Tag::None, PATIENCE).unwrap();
    peer.wait_success();
}

macro_rules! every_facility {
    ($($module:ident => $kind:expr),* $(,)?) => {$(
        mod $module {
            use super::Kind;
            const KIND: Kind = $kind;
            fn name(test: &str) -> String {
                format!("typed::{}::{test}", stringify!($module))
            }
            #[test]
            fn round_trip() {
                super::round_trip(KIND, &name("round_trip"));
            }
            #[test]
            fn oversize() {
                super::oversize(KIND, &name("oversize"));
            }
        }
    )*};
}

every_facility! {
    posix_mq => Kind::PosixMq,
    sysv_mq => Kind::SysvMq,
    unix_dgram => Kind::UnixDgram,
    udp => Kind::Udp,
    seqpacket => Kind::Seqpacket,
    shm_ring => Kind::Ring,
}

fn fresh() -> PosixName {
    format!("/{}", util::unique("typed")).parse().unwrap()
}

#[test]
fn pubsub_round_trip() {
    if util::role().is_some() {
        let name: PosixName = util::arg("NAME").parse().unwrap();
        let publisher = PubSubOptions::open(&name).unwrap().publish().unwrap();
        let tx = Typed::<_, Job>::new(publisher).with_type_tag(JOB);
        for i in 0..ROUND_TRIP {
            tx.send_tagged(&job(i), Tag::None, PATIENCE).unwrap();
        }
        return;
    }
    let name = fresh();
    let _made = PubSubOptions::new()
        .capacity(4)
        .max_size(1024)
        .subscribers(1)
        .exclusive(true)
        .create(&name)
        .unwrap();
    let sub = PubSubOptions::open(&name).unwrap().subscribe().unwrap();
    let rx = Typed::<_, Job>::new(sub).with_type_tag(JOB);
    let peer = util::Peer::new("typed::pubsub_round_trip", "publisher")
        .arg("NAME", name.as_str())
        .spawn();
    for i in 0..ROUND_TRIP {
        assert_eq!(rx.recv_tagged(PATIENCE).unwrap().0, job(i));
    }
    peer.wait_success();
}

/// The peer writes frames to the stream it was passed, then closes it.
fn frame_writer() {
    let fd = util::passed_fd(0);
    let mut tx: Framed<_, Job> = match util::arg("STREAM").as_str() {
        "pipe" => Framed::new(Box::new(pipe::Sender::try_from(fd).unwrap()) as Box<dyn Write>),
        _ => Framed::new(Box::new(unix::Stream::try_from(fd).unwrap()) as Box<dyn Write>),
    }
    .with_type_tag(JOB);
    for i in 0..ROUND_TRIP {
        tx.send(&job(i)).unwrap();
    }
    // One large frame, longer than a pipe's buffer, read in pieces.
    let mut big = job(99);
    big.blob = vec![5; 300_000];
    tx.send(&big).unwrap();
}

fn framed_round_trip(stream: &str, test: &str) {
    if util::role().is_some() {
        return frame_writer();
    }
    let (ours, theirs): (Box<dyn Read>, OwnedFd) = match stream {
        "pipe" => {
            let (tx, rx) = pipe::new().unwrap();
            (Box::new(rx), tx.into())
        }
        _ => {
            let (a, b) = unix::pair().unwrap();
            (Box::new(a), b.into())
        }
    };
    let peer = util::Peer::new(test, "writer")
        .arg("STREAM", stream)
        .fd(theirs.as_fd())
        .spawn();
    drop(theirs);
    let mut rx = Framed::<_, Job>::new(ours).named(stream).with_type_tag(JOB);
    for i in 0..ROUND_TRIP {
        assert_eq!(rx.recv().unwrap(), Some(job(i)), "{stream}: frame {i}");
    }
    let big = rx.recv().unwrap().unwrap();
    assert_eq!(big.blob.len(), 300_000);
    assert_eq!(rx.recv().unwrap(), None, "{stream}: end of stream");
    peer.wait_success();
}

#[test]
fn framed_over_a_pipe() {
    framed_round_trip("pipe", "typed::framed_over_a_pipe");
}

#[test]
fn framed_over_a_unix_stream() {
    framed_round_trip("unix", "typed::framed_over_a_unix_stream");
}

/// A peer that declares a 4 GiB frame, and another that declares one just
/// under the maximum and stops after a few bytes: the first is refused
/// before anything is read or allocated, the second ends as a frame cut
/// short.
#[test]
fn framed_huge_declared_length() {
    if util::role().is_some() {
        let mut tx = pipe::Sender::try_from(util::passed_fd(0)).unwrap();
        let len: u32 = util::arg("LEN").parse().unwrap();
        tx.write_all(&len.to_le_bytes()).unwrap();
        tx.write_all(b"UPCT\x01\x01").unwrap();
        return;
    }
    let max = 1 << 20;
    for (len, refused) in [(u32::MAX, true), (max as u32, false)] {
        let (tx, rx) = pipe::new().unwrap();
        let peer = util::Peer::new("typed::framed_huge_declared_length", "writer")
            .arg("LEN", len.to_string())
            .fd(tx.as_fd())
            .spawn();
        drop(tx);
        let mut rx = Framed::<_, Job>::new(rx).max_frame_size(max);
        match (rx.recv(), refused) {
            (Err(Error::MessageTooLarge { size, limit, .. }), true) => {
                assert_eq!((size, limit), (len as usize, max))
            }
            (Err(Error::Os { source, .. }), false) => {
                assert_eq!(source.kind(), std::io::ErrorKind::UnexpectedEof)
            }
            (other, _) => panic!("declared {len}: {other:?}"),
        }
        peer.wait_success();
    }
}

/// What the peer of `refusals` sends, in order, as raw bytes on a POSIX
/// queue: each must be refused by a receiver expecting JOB, and the good
/// message after them must still arrive.
fn bad_messages() -> Vec<(&'static str, Vec<u8>)> {
    let good = typed::encode(&job(1), Some(JOB)).unwrap();
    let mut version2 = good.clone();
    version2[4] = 2;
    let mut body_cut = good.clone();
    body_cut.truncate(good.len() - 5);
    let mut huge_bytes = good[..HEADER_LEN].to_vec();
    huge_bytes[5] = Encoding::Cbor.byte();
    huge_bytes.push(0x5b); // a CBOR byte string of the 8-byte length that follows
    huge_bytes.extend_from_slice(&(1u64 << 62).to_be_bytes());
    huge_bytes.extend_from_slice(b"xyz");
    let mut huge_msgpack = good[..HEADER_LEN].to_vec();
    huge_msgpack.push(0xdb); // a MessagePack str 32 of 2^32 - 1 bytes
    huge_msgpack.extend_from_slice(&u32::MAX.to_be_bytes());
    huge_msgpack.extend_from_slice(b"xyz");
    vec![
        ("garbage", b"this is not a typed message at all".to_vec()),
        ("short", b"UPC".to_vec()),
        ("version 2", version2),
        (
            "another tag",
            typed::encode(&job(1), Some(TypeTag::named("other"))).unwrap(),
        ),
        ("untagged", typed::encode(&job(1), None).unwrap()),
        (
            "another type",
            typed::encode(&"a string", Some(JOB)).unwrap(),
        ),
        ("body cut", body_cut),
        ("huge byte string", huge_bytes),
        ("huge string", huge_msgpack),
        (
            "good CBOR",
            typed::encode_as(&job(1), Some(JOB), Encoding::Cbor).unwrap(),
        ),
        ("good", good),
    ]
}

#[test]
fn refusals_between_processes() {
    if util::role().is_some() {
        let queue = pmq::Queue::open(&util::arg("NAME").parse().unwrap()).unwrap();
        for (_, bytes) in bad_messages() {
            queue.send_tagged(&bytes, Tag::None, PATIENCE).unwrap();
        }
        return;
    }
    let name = fresh();
    let _owner = pmq::QueueOptions::new()
        .max_messages(10)
        .max_message_size(1024)
        .exclusive(true)
        .create(&name)
        .unwrap();
    let rx = Typed::<_, Job>::new(pmq::Queue::open(&name).unwrap()).with_type_tag(JOB);
    let peer = util::Peer::new("typed::refusals_between_processes", "sender")
        .arg("NAME", name.as_str())
        .spawn();
    for (what, bytes) in bad_messages() {
        let got = rx.recv_tagged(PATIENCE);
        match (what, got) {
            ("good" | "good CBOR", Ok((value, _))) => assert_eq!(value, job(1)),
            (
                "version 2",
                Err(Error::TypedMismatch {
                    what: "format version",
                    ..
                }),
            ) => {}
            (
                "another tag" | "untagged",
                Err(Error::TypedMismatch {
                    what: "type tag", ..
                }),
            ) => {}
            (_, Err(Error::Undecodable { bytes: raw, .. })) if !what.starts_with("good") => {
                assert_eq!(raw, bytes, "{what}: the raw bytes are kept")
            }
            (_, other) => panic!("{what}: {other:?}"),
        }
    }
    peer.wait_success();
}

/// Descriptors travel with a value: the peer writes to a file and sends it
/// with the job; the parent reads what the peer wrote through the
/// received descriptor, which is close-on-exec.
#[test]
fn descriptors_travel_with_a_value() {
    if util::role().is_some() {
        let conn = Typed::<_, Job>::new(sp::Conn::try_from(util::passed_fd(0)).unwrap());
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"written by the peer").unwrap();
        let (mine, theirs) = unix::pair().unwrap();
        conn.send_with_fds(&job(5), &[file.as_fd(), theirs.as_fd()])
            .unwrap();
        drop(theirs);
        // The parent answers through the socket it received.
        let mut answer = String::new();
        (&mine).read_to_string(&mut answer).unwrap();
        assert_eq!(answer, "through the passed socket");
        // Three descriptors to a receiver that takes one.
        conn.send_with_fds(&job(6), &[file.as_fd(), file.as_fd(), file.as_fd()])
            .unwrap();
        // Then one without any.
        conn.send_with_fds(&job(7), &[]).unwrap();
        return;
    }
    let (ours, theirs) = sp::pair().unwrap();
    let peer = util::Peer::new("typed::descriptors_travel_with_a_value", "sender")
        .fd(theirs.as_fd())
        .spawn();
    drop(theirs);
    let conn = Typed::<_, Job>::new(ours);
    let (value, fds) = conn.recv_with_fds(4).unwrap();
    assert_eq!(value, job(5));
    assert_eq!(fds.len(), 2);
    for fd in &fds {
        let flags = rustix::io::fcntl_getfd(fd).unwrap();
        assert!(flags.contains(rustix::io::FdFlags::CLOEXEC), "O_CLOEXEC");
    }
    let mut fds = fds.into_iter();
    let mut file = std::fs::File::from(fds.next().unwrap());
    file.rewind().unwrap();
    let mut text = String::new();
    file.read_to_string(&mut text).unwrap();
    assert_eq!(text, "written by the peer", "the same file");
    let mut sock = unix::Stream::try_from(fds.next().unwrap()).unwrap();
    sock.write_all(b"through the passed socket").unwrap();
    drop(sock);
    match conn.recv_with_fds(1) {
        Err(Error::TooManyFds { capacity: 1, .. }) => {}
        other => panic!("three descriptors into a receive of one: {other:?}"),
    }
    let (value, fds) = conn.recv_with_fds(1).unwrap();
    assert_eq!((value, fds.len()), (job(7), 0));
    peer.wait_success();
}

/// More than the kernel's limit is refused before any call, and a message
/// sent with descriptors is refused by a plain receive (which cannot take
/// them) instead of being decoded without them.
#[test]
fn descriptor_limits() {
    let (a, b) = sp::pair().unwrap();
    let (tx, rx) = (Typed::<_, u8>::new(a), Typed::<_, u8>::new(b));
    let file = tempfile::tempfile().unwrap();
    let many: Vec<_> = (0..=MAX_FDS).map(|_| file.as_fd()).collect();
    match tx.send_with_fds(&1, &many) {
        Err(Error::LimitExceeded {
            requested, limit, ..
        }) => assert_eq!((requested, limit), (254, 253)),
        other => panic!("{other:?}"),
    }
    tx.send_with_fds(&2, &many[..MAX_FDS]).unwrap();
    let (value, fds) = rx.recv_with_fds(MAX_FDS).unwrap();
    assert_eq!((value, fds.len()), (2, MAX_FDS));
    tx.send_with_fds(&3, &[file.as_fd()]).unwrap();
    match rx.recv_tagged(PATIENCE) {
        Err(Error::TypedMismatch {
            what: "descriptor count",
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

/// Descriptors with framed values on a UNIX stream, between processes:
/// each frame's descriptors arrive with it, however the frames pack into
/// the stream, and a frame sent with descriptors to a plain receive is
/// refused.
#[test]
fn descriptors_travel_with_frames_on_a_unix_stream() {
    if util::role().is_some() {
        let stream = unix::Stream::try_from(util::passed_fd(0)).unwrap();
        let mut tx = Framed::<_, Job>::new(stream).with_type_tag(JOB);
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"framed file").unwrap();
        for i in 0..5u64 {
            let fds: Vec<_> = (0..i).map(|_| file.as_fd()).collect();
            tx.send_with_fds(&job(i), &fds).unwrap();
        }
        // A large frame, sent in pieces, its descriptor on the first.
        let mut big = job(50);
        big.blob = vec![1; 500_000];
        tx.send_with_fds(&big, &[file.as_fd()]).unwrap();
        tx.send_with_fds(&job(51), &[file.as_fd()]).unwrap();
        return;
    }
    let (ours, theirs) = unix::pair().unwrap();
    let peer = util::Peer::new(
        "typed::descriptors_travel_with_frames_on_a_unix_stream",
        "sender",
    )
    .fd(theirs.as_fd())
    .spawn();
    drop(theirs);
    let mut rx = Framed::<_, Job>::new(ours).with_type_tag(JOB);
    // Let every small frame arrive before reading, so they share the
    // stream's buffer.
    std::thread::sleep(std::time::Duration::from_millis(100));
    for i in 0..5u64 {
        let (value, fds) = rx.recv_with_fds(8).unwrap().unwrap();
        assert_eq!((value, fds.len()), (job(i), i as usize), "frame {i}");
        for fd in fds {
            let mut file = std::fs::File::from(fd);
            file.rewind().unwrap();
            let mut text = String::new();
            file.read_to_string(&mut text).unwrap();
            assert_eq!(text, "framed file");
        }
    }
    let (big, fds) = rx.recv_with_fds(1).unwrap().unwrap();
    assert_eq!((big.blob.len(), fds.len()), (500_000, 1));
    match rx.recv() {
        Err(Error::TypedMismatch {
            what: "descriptor count",
            ..
        }) => {}
        other => panic!("a frame with a descriptor to a plain receive: {other:?}"),
    }
    assert!(rx.recv_with_fds(1).unwrap().is_none(), "end of stream");
    peer.wait_success();
}

/// Any bytes after a good header, and any bytes at all, give a value or a
/// typed error: never a panic, an abort on allocation or a stack overflow.
/// Runs for a bounded time under `cargo test` (bolero's random engine);
/// `cargo bolero test` runs it as a fuzz target.
#[test]
fn any_bytes_decode_to_a_value_or_a_typed_error() {
    let header =
        |encoding| typed::encode_as(&(), Some(JOB), encoding).unwrap()[..HEADER_LEN].to_vec();
    let headers = [
        Vec::new(),
        header(Encoding::MessagePack),
        header(Encoding::Cbor),
    ];
    bolero::check!()
        .with_type::<(u8, Vec<u8>)>()
        .with_test_time(std::time::Duration::from_secs(2))
        .for_each(|(which, body)| {
            let mut bytes = headers[usize::from(*which) % headers.len()].clone();
            bytes.extend_from_slice(body);
            for result in [
                typed::decode::<typed::Value>(&bytes, Some(JOB)).map(drop),
                typed::decode::<Job>(&bytes, Some(JOB)).map(drop),
                typed::decode_value(&bytes).map(drop),
            ] {
                match result {
                    Ok(()) | Err(Error::Undecodable { .. }) | Err(Error::TypedMismatch { .. }) => {}
                    Err(other) => panic!("{other:?}"),
                }
            }
        });
}

/// System V types select typed messages between processes: the lowest
/// type up to 3 first, then exactly 5, then any but 9.
#[test]
fn sysv_types_select_typed_messages() {
    use unipc::message::sysv_mq::{Queue, QueueOptions, Select};
    if util::role().is_some() {
        let queue = Queue::open_id(util::arg("ID").parse().unwrap()).unwrap();
        let tx = Typed::<_, Job>::new(queue).with_type_tag(JOB);
        for kind in [9, 5, 3, 1, 7] {
            tx.send_tagged(&job(kind), Tag::Type(kind as i64), PATIENCE)
                .unwrap();
        }
        return;
    }
    let queue = QueueOptions::new()
        .create(unipc::name::SysvKey::Private)
        .unwrap();
    let peer = util::Peer::new("typed::sysv_types_select_typed_messages", "sender")
        .arg("ID", queue.id().to_string())
        .spawn();
    peer.wait_success();
    let rx = Typed::<_, Job>::new(queue).with_type_tag(JOB);
    let order = [
        (Select::AtMost(3), 1),
        (Select::AtMost(3), 3),
        (Select::Exactly(5), 5),
        (Select::Except(9), 7),
        (Select::Any, 9),
    ];
    for (select, want) in order {
        let (value, tag) = rx.recv_select(select, Wait::Never).unwrap();
        assert_eq!(
            (value.id, tag),
            (want, Tag::Type(want as i64)),
            "{select:?}"
        );
    }
}

/// Descriptors travel with a typed value over a UNIX datagram socket too,
/// between processes; more than the receiver takes is a typed error.
#[test]
fn descriptors_travel_with_values_on_a_unix_datagram_socket() {
    use unipc::message::dgram::UnixDatagram;
    if util::role().is_some() {
        let socket = UnixDatagram::try_from(util::passed_fd(0)).unwrap();
        let tx = Typed::<_, Job>::new(socket).with_type_tag(JOB);
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"datagram file").unwrap();
        for i in 0..4u64 {
            let fds: Vec<_> = (0..i).map(|_| file.as_fd()).collect();
            tx.send_with_fds(&job(i), &fds).unwrap();
        }
        tx.send_with_fds(&job(9), &[file.as_fd(), file.as_fd(), file.as_fd()])
            .unwrap();
        return;
    }
    let (ours, theirs) = UnixDatagram::pair().unwrap();
    let peer = util::Peer::new(
        "typed::descriptors_travel_with_values_on_a_unix_datagram_socket",
        "sender",
    )
    .fd(theirs.as_fd())
    .spawn();
    drop(theirs);
    let rx = Typed::<_, Job>::new(ours).with_type_tag(JOB);
    for i in 0..4u64 {
        let (value, fds) = rx.recv_with_fds(8).unwrap();
        assert_eq!((value, fds.len()), (job(i), i as usize), "message {i}");
        for fd in fds {
            let mut file = std::fs::File::from(fd);
            file.rewind().unwrap();
            let mut text = String::new();
            file.read_to_string(&mut text).unwrap();
            assert_eq!(text, "datagram file");
        }
    }
    match rx.recv_with_fds(2) {
        Err(Error::TooManyFds { capacity: 2, .. }) => {}
        other => panic!("three descriptors to a receive of two: {other:?}"),
    }
    peer.wait_success();
}
