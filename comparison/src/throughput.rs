//! Ring copy throughput against plain `memcpy` bandwidth, in one process.

use std::hint::black_box;
use std::time::Instant;

use serde::Serialize;
use unipc::message::ring::{Ring, RingOptions, WaitStrategy};
use unipc::message::Wait;

use crate::Res;

/// Bytes moved per second through the ring (one thread sending with
/// `send_wait`, one receiving with `recv_wait`, each message copied in and
/// copied out), by one thread's `copy_from_slice` between two buffers of
/// the message's size (in cache), and by the same copy into each slot of a
/// buffer as large as the ring's slots in turn (the ring writer's working
/// set: out of the caches once `capacity × size` outgrows them, the fair
/// baseline for a ring that large).
#[derive(Serialize, Debug)]
pub struct Throughput {
    pub size: usize,
    /// Slots in the ring: its working set is `capacity × size` bytes.
    pub capacity: u64,
    pub messages: u64,
    pub ring_gb_per_s: f64,
    pub memcpy_gb_per_s: f64,
    /// memcpy cycling through `capacity × size` bytes of destination.
    pub memcpy_footprint_gb_per_s: f64,
}

/// About 2 GiB through each, at least 1,000 messages. The sending thread
/// runs on `sender_cpu` when given (the receiving one stays where this
/// process is pinned): two busy-polling threads on one CPU measure the
/// scheduler, not the ring.
pub fn ring_vs_memcpy(size: usize, capacity: u64, sender_cpu: Option<usize>) -> Res<Throughput> {
    let messages = ((2u64 << 30) / size as u64).max(1_000);
    let name = format!("/unipc-cmp-{}-tput", std::process::id()).parse()?;
    let ring = RingOptions::new()
        .capacity(capacity)
        .max_size(size)
        .create(&name)?;
    let tx = Ring::open(&name)?.into_sender()?;
    let rx = ring.into_receiver()?;
    tx.set_wait_strategy(WaitStrategy::BusyPoll);
    rx.set_wait_strategy(WaitStrategy::BusyPoll);

    let src = vec![0x5au8; size];
    let start = Instant::now();
    let sender = std::thread::spawn(move || -> Result<(), unipc::Error> {
        if let Some(cpu) = sender_cpu {
            crate::pin(cpu);
        }
        for _ in 0..messages {
            tx.send_wait(&src, Wait::Forever)?;
        }
        Ok(())
    });
    let mut dst = vec![0u8; size];
    for _ in 0..messages {
        let got = rx.recv_wait(&mut dst, Wait::Forever)?;
        black_box((&dst, got));
    }
    let ring_secs = start.elapsed().as_secs_f64();
    sender.join().map_err(|_| "ring sender thread panicked")??;
    drop(rx);

    let src = vec![0x5au8; size];
    let mut dst = vec![0u8; size];
    let start = Instant::now();
    for _ in 0..messages {
        dst.copy_from_slice(black_box(&src));
        black_box(&mut dst);
    }
    let memcpy_secs = start.elapsed().as_secs_f64();

    let slots = usize::try_from(capacity)?;
    let mut footprint = vec![0u8; slots * size];
    let start = Instant::now();
    for i in 0..messages as usize {
        let at = (i % slots) * size;
        footprint[at..at + size].copy_from_slice(black_box(&src));
        black_box(&mut footprint);
    }
    let footprint_secs = start.elapsed().as_secs_f64();

    let bytes = (messages * size as u64) as f64;
    Ok(Throughput {
        size,
        capacity,
        messages,
        ring_gb_per_s: bytes / ring_secs / 1e9,
        memcpy_gb_per_s: bytes / memcpy_secs / 1e9,
        memcpy_footprint_gb_per_s: bytes / footprint_secs / 1e9,
    })
}
