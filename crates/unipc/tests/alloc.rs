//! Would-block and timeout results allocate nothing: a busy-polling
//! receiver (`Wait::Never` on an empty queue or socket) and a sender that
//! retries on a full one meet `Error::Empty` / `Error::Full` on every call,
//! and those errors share the handle's name instead of copying it.
//!
//! A binary of its own, because it installs a counting global allocator;
//! the count is per thread, so the harness's own threads do not disturb it.
//! What is counted is the steady state: a handle's first call may make
//! per-thread scratch space once (the System V message buffer).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use unipc::message::dgram::{UdpSocket, UnixDatagram};
use unipc::message::{posix_mq, sysv_mq, Messenger, Wait};
use unipc::name::{PosixName, SysvKey};
use unipc::stream::seqpacket;
use unipc::Error;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: the allocator also runs while thread locals are torn down.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
            let _ = LARGEST.try_with(|n| n.set(n.get().max(size)));
        }
    });
}

// SAFETY: every method forwards to `System` with the caller's own
// arguments, so `System`'s guarantees are ours; counting touches only
// const-initialized thread locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: `ptr` came from this allocator, that is from `System`,
        // with `layout`; the caller upholds the rest.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const ROUNDS: usize = 1000;

/// How many allocations `f` makes on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    allocations_and_largest(f).0
}

/// How many allocations `f` makes on this thread, and the largest (bytes).
fn allocations_and_largest(f: impl FnOnce()) -> (usize, usize) {
    ALLOCATIONS.with(|n| n.set(0));
    LARGEST.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    f();
    COUNTING.with(|on| on.set(false));
    (ALLOCATIONS.with(Cell::get), LARGEST.with(Cell::get))
}

/// `ROUNDS` receives without waiting on the empty `rx`: each is
/// `Error::Empty`, none allocates.
fn assert_empty_free(rx: &dyn Messenger) {
    let mut buf = vec![0; rx.recv_buffer_hint().unwrap()];
    // One call first: the System V layer makes its per-thread message
    // buffer on a thread's first call and reuses it after.
    let _ = rx.recv_into(&mut buf, Wait::Never);
    let count = allocations(|| {
        for _ in 0..ROUNDS {
            match rx.recv_into(&mut buf, Wait::Never) {
                Err(Error::Empty { .. }) => {}
                other => panic!("{}: expected Empty, got {other:?}", rx.object()),
            }
        }
    });
    assert_eq!(
        count,
        0,
        "{}: {count} allocations in {ROUNDS} empty receives",
        rx.object()
    );
    let count = allocations(|| {
        for _ in 0..ROUNDS {
            assert!(rx.object().starts_with(|c: char| c.is_ascii_lowercase()));
        }
    });
    assert_eq!(count, 0, "{}: Messenger::object allocates", rx.object());
}

/// Fills `tx`, then makes `ROUNDS` sends without waiting: each is
/// `Error::Full`, none allocates.
fn assert_full_free(tx: &dyn Messenger) {
    let message = [7u8; 64];
    let mut sent = 0;
    loop {
        match tx.try_send(&message) {
            Ok(()) => sent += 1,
            Err(Error::Full { .. }) => break,
            Err(other) => panic!("{}: filling: {other}", tx.object()),
        }
        assert!(sent < 1_000_000, "{}: never full", tx.object());
    }
    let count = allocations(|| {
        for _ in 0..ROUNDS {
            match tx.send_tagged(&message, unipc::message::Tag::None, Wait::Never) {
                Err(Error::Full { .. }) => {}
                other => panic!("{}: expected Full, got {other:?}", tx.object()),
            }
        }
    });
    assert_eq!(
        count,
        0,
        "{}: {count} allocations in {ROUNDS} full sends",
        tx.object()
    );
}

/// A timed wait that runs out: `Error::TimedOut`, no allocation either.
fn assert_timeout_free(rx: &dyn Messenger) {
    let mut buf = vec![0; rx.recv_buffer_hint().unwrap()];
    let count = allocations(|| {
        for _ in 0..3 {
            match rx.recv_into(&mut buf, Wait::For(Duration::from_millis(1))) {
                Err(Error::TimedOut { .. }) => {}
                other => panic!("{}: expected TimedOut, got {other:?}", rx.object()),
            }
        }
    });
    assert_eq!(
        count,
        0,
        "{}: {count} allocations in 3 timeouts",
        rx.object()
    );
}

#[test]
fn counting_allocator_counts() {
    let count = allocations(|| drop(std::hint::black_box(vec![1u8; 16])));
    assert_eq!(count, 1);
}

#[test]
fn posix_mq_would_block_allocates_nothing() {
    let name: PosixName = format!("/unipc-alloc-{}", std::process::id())
        .parse()
        .unwrap();
    let queue = posix_mq::QueueOptions::new()
        .max_messages(2)
        .max_message_size(64)
        .exclusive(true)
        .create(&name)
        .unwrap();
    assert_empty_free(&queue);
    assert_timeout_free(&queue);
    assert_full_free(&queue);
}

#[test]
fn sysv_mq_would_block_allocates_nothing() {
    let queue = sysv_mq::QueueOptions::new()
        .max_bytes(256)
        .create(SysvKey::Private)
        .unwrap();
    assert_empty_free(&queue);
    assert_timeout_free(&queue);
    assert_full_free(&queue);
}

#[test]
fn unix_dgram_would_block_allocates_nothing() {
    let (a, b) = UnixDatagram::pair().unwrap();
    assert_empty_free(&b);
    assert_timeout_free(&b);
    assert_full_free(&a);
}

#[test]
fn seqpacket_would_block_allocates_nothing() {
    let (a, b) = seqpacket::pair().unwrap();
    assert_empty_free(&b);
    assert_timeout_free(&b);
    assert_full_free(&a);
}

/// UDP over loopback never reports a full queue (a datagram the receiver
/// has no room for is dropped, and the send succeeds), so only receives.
#[test]
fn udp_would_block_allocates_nothing() {
    let rx = UdpSocket::bind_addr("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut tx = UdpSocket::bind_addr("127.0.0.1:0".parse().unwrap()).unwrap();
    tx.connect_addr(rx.local_addr()).unwrap();
    assert_empty_free(&rx);
    assert_timeout_free(&rx);
    assert_empty_free(&tx);
}

#[test]
fn ring_would_block_allocates_nothing() {
    use unipc::message::ring::{Ring, RingOptions};
    let name: PosixName = format!("/unipc-alloc-ring-{}", std::process::id())
        .parse()
        .unwrap();
    let ring = RingOptions::new()
        .capacity(2)
        .max_size(64)
        .exclusive(true)
        .create(&name)
        .unwrap();
    let tx = Ring::open(&name).unwrap().into_sender().unwrap();
    let rx = ring.into_receiver().unwrap();
    assert_empty_free(&rx);
    assert_timeout_free(&rx);
    assert_full_free(&tx);
}

#[test]
fn pubsub_would_block_allocates_nothing() {
    use unipc::message::ring::pubsub::PubSubOptions;
    let name: PosixName = format!("/unipc-alloc-pubsub-{}", std::process::id())
        .parse()
        .unwrap();
    let made = PubSubOptions::new()
        .capacity(2)
        .max_size(64)
        .subscribers(1)
        .exclusive(true)
        .create(&name)
        .unwrap();
    let sub = made.subscribe().unwrap();
    let publisher = PubSubOptions::open(&name).unwrap().publish().unwrap();
    assert_empty_free(&sub);
    assert_timeout_free(&sub);
    assert_full_free(&publisher);
}

/// Typed messages: a declared length is no allocation of that size, and
/// a value with no heap fields goes through `Typed` with none at all.
#[cfg(feature = "typed")]
mod typed {
    use super::*;
    use std::collections::HashMap;
    use unipc::message::typed::{self, Encoding, Typed, Value, HEADER_LEN};

    /// A header for `encoding`, then `body`.
    fn message(encoding: Encoding, body: &[u8]) -> Vec<u8> {
        let mut bytes = typed::encode_as(&(), None, encoding).unwrap();
        bytes.truncate(HEADER_LEN);
        bytes.extend_from_slice(body);
        bytes
    }

    /// Decodes `bytes` as several types; returns the largest allocation.
    fn largest_decoding(bytes: &[u8]) -> usize {
        let (_, largest) = allocations_and_largest(|| {
            assert!(typed::decode::<Value>(bytes, None).is_err());
            assert!(typed::decode::<Vec<u8>>(bytes, None).is_err());
            assert!(typed::decode::<Vec<u64>>(bytes, None).is_err());
            assert!(typed::decode::<String>(bytes, None).is_err());
            assert!(typed::decode::<HashMap<String, u8>>(bytes, None).is_err());
            assert!(typed::decode_value(bytes).is_err());
        });
        largest
    }

    /// The most any declared length may cost: serde preallocates at most
    /// 1 MiB of elements for a sequence or map whatever length it
    /// declares, and a hash map's table for those is about twice that.
    const BOUND: usize = 4 << 20;

    /// MessagePack's largest declared lengths (2^32 - 1, which an
    /// overcommitting kernel would grant without a fault, so only
    /// counting shows it): nothing allocated comes near them, only
    /// serde's bounded preallocation and the error's copy of the message.
    #[test]
    fn msgpack_huge_declared_lengths_allocate_little() {
        for (marker, what) in [
            (0xc6u8, "bin 32"),
            (0xdb, "str 32"),
            (0xdd, "array 32"),
            (0xdf, "map 32"),
            (0xc9, "ext 32"),
        ] {
            let mut body = vec![marker];
            body.extend_from_slice(&u32::MAX.to_be_bytes());
            body.extend_from_slice(b"\x01abc");
            let bytes = message(Encoding::MessagePack, &body);
            let largest = largest_decoding(&bytes);
            assert!(largest <= BOUND, "{what}: an allocation of {largest} bytes");
        }
        // CBOR too, with a 2^32 - 1 length of each kind.
        for major in [2u8, 3, 4, 5] {
            let mut body = vec![(major << 5) | 26];
            body.extend_from_slice(&u32::MAX.to_be_bytes());
            body.extend_from_slice(b"abc");
            let bytes = message(Encoding::Cbor, &body);
            let largest = largest_decoding(&bytes);
            assert!(
                largest <= BOUND,
                "CBOR major {major}: an allocation of {largest} bytes"
            );
        }
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Tick {
        seq: u64,
        price: f64,
        qty: u32,
        symbol: [u8; 4],
        side: u8,
    }

    /// After the first message (the buffers), sending and receiving a
    /// value without heap fields allocates nothing, in either encoding.
    #[test]
    fn typed_steady_state_allocates_nothing() {
        for encoding in [Encoding::MessagePack, Encoding::Cbor] {
            let (a, b) = UnixDatagram::pair().unwrap();
            let tx = Typed::<_, Tick>::new(a).with_encoding(encoding);
            let rx = Typed::<_, Tick>::new(b);
            let tick = |seq| Tick {
                seq,
                price: 1.5,
                qty: 3,
                symbol: *b"ACME",
                side: 1,
            };
            tx.send(&tick(0)).unwrap();
            assert_eq!(rx.recv().unwrap(), tick(0));
            let count = allocations(|| {
                for seq in 1..ROUNDS as u64 {
                    tx.send(&tick(seq)).unwrap();
                    assert_eq!(rx.recv().unwrap(), tick(seq));
                }
            });
            assert_eq!(
                count, 0,
                "{encoding}: {count} allocations in {ROUNDS} messages"
            );
        }
    }
}
