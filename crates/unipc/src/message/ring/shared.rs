//! The ring's raw layer: the one place that touches its shared memory.
//! Everything above it works with cursors, lengths and the slices this
//! layer lends, each checked here against the layout this process
//! validated when it opened the ring — never against figures re-read from
//! the memory, which the peer may change at any moment.

// The raw layer: the std atomics in the mapping are what the `Words`
// facade hands the protocol.
#![allow(clippy::disallowed_types)]
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU32, AtomicU64};

use std::time::Duration;

use super::layout::{self, Layout, LEN_BYTES};
use super::protocol::{Sleeper, Which, Words};
use crate::shm::Mapping;
use crate::sys::futex;

/// A mapped ring: its memory and its validated layout.
#[derive(Debug)]
pub(crate) struct Shared {
    map: Mapping,
    layout: Layout,
}

impl Shared {
    /// # Panics
    /// When the mapping is shorter than the layout (the caller checked).
    pub(crate) fn new(map: Mapping, layout: Layout) -> Shared {
        assert!(map.len() >= layout.total && map.is_writable());
        Shared { map, layout }
    }

    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    pub(crate) fn u64_at(&self, at: usize) -> &AtomicU64 {
        self.map.region().atomic_u64(at)
    }

    pub(crate) fn u32_at(&self, at: usize) -> &AtomicU32 {
        self.map.region().atomic_u32(at)
    }

    /// Copies bytes at an absolute offset (the header).
    pub(crate) fn copy_in(&self, at: usize, data: &[u8]) {
        self.map.region().copy_in(at, data);
    }

    /// The length word of message `seq`'s slot, as stored: the caller
    /// checks it against the max size before using it.
    pub(crate) fn stored_len(&self, seq: u64) -> u64 {
        let mut word = [0; LEN_BYTES];
        self.map.region().copy_out(self.layout.slot(seq), &mut word);
        u64::from_le_bytes(word)
    }

    pub(crate) fn set_len(&self, seq: u64, len: usize) {
        let word = (len as u64).to_le_bytes();
        self.map.region().copy_in(self.layout.slot(seq), &word);
    }

    /// Copies `data` into message `seq`'s slot.
    ///
    /// # Panics
    /// When `data` is longer than the max size (the caller checked).
    pub(crate) fn write_payload(&self, seq: u64, data: &[u8]) {
        assert!(data.len() <= self.layout.max_size);
        let at = self.layout.slot(seq) + LEN_BYTES;
        self.map.region().copy_in(at, data);
    }

    /// Copies the first `buf.len()` bytes of message `seq`'s slot out.
    ///
    /// # Panics
    /// When `buf` is longer than the max size (the caller checked).
    pub(crate) fn read_payload(&self, seq: u64, buf: &mut [u8]) {
        assert!(buf.len() <= self.layout.max_size);
        let at = self.layout.slot(seq) + LEN_BYTES;
        self.map.region().copy_out(at, buf);
    }

    /// The whole payload area of message `seq`'s slot, for a loan.
    ///
    /// # Safety
    /// The caller holds the slot under the ring's protocol: it is the one
    /// writer, and `seq` lies in `tail..head + capacity`, so no reader
    /// reads this slot until the writer publishes it, and no other slice
    /// into it exists while the returned one lives.
    // Exclusivity comes from the protocol, not from `&mut self`: the
    // memory is shared with another process, which no borrow can cover.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn payload_mut(&self, seq: u64) -> &mut [u8] {
        let at = self.layout.slot(seq) + LEN_BYTES;
        let ptr = self.map.region().bytes_at(at, self.layout.max_size);
        // SAFETY: `bytes_at` asserted the `max_size` bytes at `ptr` inside
        // the mapping, which lives as long as `&self`; `u8` needs no
        // alignment and every bit pattern is a `u8`; the caller's contract
        // makes this the only reference to those bytes in this process
        // and, under the protocol, in every process. A peer that breaks
        // the protocol can change the bytes under the slice, which alters
        // what is sent, never this process's memory outside the mapping.
        unsafe { std::slice::from_raw_parts_mut(ptr, self.layout.max_size) }
    }

    /// The first `len` bytes of message `seq`'s slot, for a view.
    ///
    /// # Safety
    /// The caller holds the slot under the ring's protocol: it is the one
    /// reader, `seq` lies in `head..tail` as loaded with acquire ordering,
    /// and the writer does not reuse the slot until the reader releases
    /// it by moving `head` past `seq`, which it does only after the
    /// returned slice is dropped.
    ///
    /// # Panics
    /// When `len` is over the max size (the caller checked).
    pub(crate) unsafe fn payload(&self, seq: u64, len: usize) -> &[u8] {
        assert!(len <= self.layout.max_size);
        let at = self.layout.slot(seq) + LEN_BYTES;
        let ptr = self.map.region().bytes_at(at, len);
        // SAFETY: `bytes_at` asserted the `len` bytes inside the mapping,
        // which lives as long as `&self`; `u8` needs no alignment; the
        // caller's contract keeps every writer, in this process and (under
        // the protocol) in others, off the slot while the slice lives. A
        // peer that breaks the protocol can change the bytes seen, not
        // their extent or anything outside the mapping.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

/// The kernel's futex on words in shared memory (not private, so other
/// processes' waits and wakes meet), and a real `SeqCst` fence.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KernelFutex;

impl Sleeper for KernelFutex {
    type W32 = AtomicU32;

    fn fence(&self) {
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    }

    fn sleep(&self, word: &AtomicU32, expected: u32, limit: Duration) -> std::io::Result<()> {
        futex::wait(word, expected, Some(limit))?;
        Ok(())
    }

    fn wake(&self, word: &AtomicU32) {
        // A failed wake leaves the sleeper to its timeout (at most 100 ms).
        let _ = futex::wake(word, 1);
    }
}

impl Sleeper for Shared {
    type W32 = AtomicU32;

    fn fence(&self) {
        KernelFutex.fence();
    }

    fn sleep(&self, word: &AtomicU32, expected: u32, limit: Duration) -> std::io::Result<()> {
        KernelFutex.sleep(word, expected, limit)
    }

    fn wake(&self, word: &AtomicU32) {
        KernelFutex.wake(word);
    }
}

impl Words for Shared {
    type W64 = AtomicU64;

    fn capacity(&self) -> u64 {
        self.layout.capacity
    }

    fn tail(&self) -> &AtomicU64 {
        self.u64_at(layout::TAIL_AT)
    }

    fn head(&self) -> &AtomicU64 {
        self.u64_at(layout::HEAD_AT)
    }

    fn sleeping(&self, who: Which) -> &AtomicU32 {
        self.u32_at(match who {
            Which::Writer => layout::WRITER_SLEEPING_AT,
            Which::Reader => layout::READER_SLEEPING_AT,
        })
    }

    fn futex(&self, who: Which) -> &AtomicU32 {
        self.u32_at(match who {
            Which::Writer => layout::SPACE_SEQ_AT,
            Which::Reader => layout::DATA_SEQ_AT,
        })
    }
}

/// `len` bytes at `at` in `map`, lent mutably: the pubsub publisher's
/// loans.
///
/// # Safety
/// The caller holds those bytes under its protocol (the one publisher, a
/// slot it reserved and stamped as being written), no other slice into
/// them exists while the returned one lives, and `map` is writable.
///
/// # Panics
/// When the range runs past the mapping (the caller checked).
#[allow(clippy::mut_from_ref)]
pub(crate) unsafe fn lend_mut(map: &Mapping, at: usize, len: usize) -> &mut [u8] {
    let ptr = map.region().bytes_at(at, len);
    // SAFETY: `bytes_at` asserted the range inside the mapping, which lives
    // as long as `map` is borrowed; `u8` needs no alignment; exclusivity is
    // the caller's contract. A subscriber reading the slot meanwhile sees
    // the stamp changed and discards what it read.
    unsafe { std::slice::from_raw_parts_mut(ptr, len) }
}

/// `len` bytes at `at` in `map`, lent shared: the pubsub subscriber's views.
///
/// # Safety
/// The caller holds those bytes under its protocol (a complete message
/// the publisher may not rewrite until the view is dropped).
///
/// # Panics
/// When the range runs past the mapping (the caller checked).
pub(crate) unsafe fn lend(map: &Mapping, at: usize, len: usize) -> &[u8] {
    let ptr = map.region().bytes_at(at, len);
    // SAFETY: `bytes_at` asserted the range inside the mapping, which lives
    // as long as `map` is borrowed; `u8` needs no alignment; that no writer
    // touches the bytes meanwhile is the caller's contract.
    unsafe { std::slice::from_raw_parts(ptr, len) }
}
