//! Where everything lives in a ring's shared memory, and the check that
//! a header found there describes a ring this build can use.
//!
//! ```text
//! 0     config     magic, version, header size, capacity, max size,
//!                  slot stride, total size      (written once, by the creator)
//! 128   tail       messages committed            (the writer's line)
//! 256   head       messages released             (the reader's line)
//! 384   reader     sleeping flag, data futex      (written when the reader parks)
//! 512   writer     sleeping flag, space futex     (written when the writer parks)
//! 640   peers      writer and reader: pid and start time, one word each
//! 768   slots      capacity × stride: an 8-byte length, then the bytes
//! ```
//!
//! Each group has a line of its own (128 bytes: two cache lines, as the
//! adjacent-line prefetcher pairs them), so the writer's stores to `tail`
//! never evict the reader's `head`, and the sleeping flags each side reads
//! on every message stay shared in both caches until someone parks.
//!
//! Cursors count messages from 0 and never wrap (2^64 messages outlast
//! any machine); message `n` lives in slot `n % capacity`.

/// The first eight bytes of every ring: "unipcrng" little-endian.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"unipcrng");
/// The layout below; bumped on any change to it.
pub(crate) const VERSION: u32 = 1;

pub(crate) const MAGIC_AT: usize = 0;
pub(crate) const VERSION_AT: usize = 8;
pub(crate) const HEADER_SIZE_AT: usize = 12;
pub(crate) const CAPACITY_AT: usize = 16;
pub(crate) const MAX_SIZE_AT: usize = 24;
pub(crate) const STRIDE_AT: usize = 32;
pub(crate) const TOTAL_AT: usize = 40;
/// The config words, as one copy.
pub(crate) const CONFIG_LEN: usize = 48;

pub(crate) const TAIL_AT: usize = 128;
pub(crate) const HEAD_AT: usize = 256;
pub(crate) const READER_SLEEPING_AT: usize = 384;
pub(crate) const DATA_SEQ_AT: usize = 388;
pub(crate) const WRITER_SLEEPING_AT: usize = 512;
pub(crate) const SPACE_SEQ_AT: usize = 516;
/// The writer's identity: pid in the low half, the low 32 bits of its
/// start time in the high half, in one word so it changes at once.
pub(crate) const WRITER_AT: usize = 640;
/// The reader's identity, as the writer's.
pub(crate) const READER_AT: usize = 648;
/// Where the slots start: the header's size.
pub(crate) const SLOTS_AT: usize = 768;

// The layout, frozen: every word aligned for its type, the hot lines
// apart, the config inside the first line, and the slots after the rest.
const _: () = {
    assert!(CONFIG_LEN <= TAIL_AT && TAIL_AT % 128 == 0 && HEAD_AT == TAIL_AT + 128);
    assert!(READER_SLEEPING_AT == HEAD_AT + 128 && WRITER_SLEEPING_AT == READER_SLEEPING_AT + 128);
    assert!(DATA_SEQ_AT % 4 == 0 && SPACE_SEQ_AT % 4 == 0);
    assert!(
        WRITER_AT == WRITER_SLEEPING_AT + 128 && WRITER_AT % 8 == 0 && READER_AT == WRITER_AT + 8
    );
    assert!(SLOTS_AT >= READER_AT + 8 && SLOTS_AT % 64 == 0);
    assert!(
        CAPACITY_AT % 8 == 0 && MAX_SIZE_AT % 8 == 0 && STRIDE_AT % 8 == 0 && TOTAL_AT % 8 == 0
    );
};

/// A slot's length word, before its bytes.
pub(crate) const LEN_BYTES: usize = 8;
/// Slots start on cache lines, so one message never shares a line with
/// the next one's length.
const SLOT_ALIGN: usize = 64;

/// The sizes of one ring, derived from its capacity and largest message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Slots: how many messages it holds.
    pub(crate) capacity: u64,
    /// The largest message, in bytes.
    pub(crate) max_size: usize,
    /// Bytes from one slot to the next.
    pub(crate) stride: usize,
    /// Bytes of the whole object.
    pub(crate) total: usize,
}

/// Why a capacity and size cannot make a ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SizeError {
    /// Capacity 0 or max size 0.
    Zero(&'static str),
    /// The object would not fit in the address space.
    TooLarge,
}

impl Layout {
    /// The layout for `capacity` messages of at most `max_size` bytes.
    pub(crate) fn new(capacity: u64, max_size: usize) -> Result<Layout, SizeError> {
        if capacity == 0 {
            return Err(SizeError::Zero("capacity"));
        }
        if max_size == 0 {
            return Err(SizeError::Zero("max size"));
        }
        let stride = LEN_BYTES
            .checked_add(max_size)
            .and_then(|n| n.checked_next_multiple_of(SLOT_ALIGN))
            .ok_or(SizeError::TooLarge)?;
        let total = usize::try_from(capacity)
            .ok()
            .and_then(|c| c.checked_mul(stride))
            .and_then(|n| n.checked_add(SLOTS_AT))
            .filter(|&n| n <= isize::MAX as usize)
            .ok_or(SizeError::TooLarge)?;
        Ok(Layout {
            capacity,
            max_size,
            stride,
            total,
        })
    }

    /// The config words the creator writes (all but the magic, which goes
    /// last, as the sign that the rest is there).
    pub(crate) fn config(&self) -> [u8; CONFIG_LEN] {
        let mut out = [0; CONFIG_LEN];
        out[VERSION_AT..VERSION_AT + 4].copy_from_slice(&VERSION.to_le_bytes());
        out[HEADER_SIZE_AT..HEADER_SIZE_AT + 4].copy_from_slice(&(SLOTS_AT as u32).to_le_bytes());
        out[CAPACITY_AT..CAPACITY_AT + 8].copy_from_slice(&self.capacity.to_le_bytes());
        out[MAX_SIZE_AT..MAX_SIZE_AT + 8].copy_from_slice(&(self.max_size as u64).to_le_bytes());
        out[STRIDE_AT..STRIDE_AT + 8].copy_from_slice(&(self.stride as u64).to_le_bytes());
        out[TOTAL_AT..TOTAL_AT + 8].copy_from_slice(&(self.total as u64).to_le_bytes());
        out
    }

    /// Checks a header read from an object of `object_size` bytes and
    /// returns the layout it describes. Every figure is recomputed from
    /// capacity and max size and must match the stored one, so a header
    /// cannot point a slot outside the object.
    pub(crate) fn parse(config: &[u8], object_size: u64) -> Result<Layout, String> {
        assert_eq!(config.len(), CONFIG_LEN);
        let u32_at = |at: usize| u32::from_le_bytes(config[at..at + 4].try_into().unwrap());
        let u64_at = |at: usize| u64::from_le_bytes(config[at..at + 8].try_into().unwrap());
        let magic = u64_at(MAGIC_AT);
        if magic != MAGIC {
            let hex: Vec<String> = magic
                .to_le_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            return Err(format!(
                "it holds no ring header (its first bytes are {}; a ring's spell \"unipcrng\")",
                hex.join(" ")
            ));
        }
        let version = u32_at(VERSION_AT);
        if version != VERSION {
            return Err(format!(
                "its header is version {version}; this build reads version {VERSION}"
            ));
        }
        let header = u32_at(HEADER_SIZE_AT);
        if header as usize != SLOTS_AT {
            return Err(format!(
                "its header is {header} bytes; version {VERSION} headers are {SLOTS_AT}"
            ));
        }
        let capacity = u64_at(CAPACITY_AT);
        let max_size = usize::try_from(u64_at(MAX_SIZE_AT)).unwrap_or(usize::MAX);
        let layout = Layout::new(capacity, max_size).map_err(|e| match e {
            SizeError::Zero(what) => format!("its header says {what} 0"),
            SizeError::TooLarge => format!(
                "its header says {capacity} messages of {max_size} bytes, more than an address space holds"
            ),
        })?;
        let (stride, total) = (u64_at(STRIDE_AT), u64_at(TOTAL_AT));
        if stride != layout.stride as u64 || total != layout.total as u64 {
            return Err(format!(
                "its header says slots of {stride} bytes and {total} bytes in all; {capacity} messages of {max_size} bytes take slots of {} and {} in all",
                layout.stride, layout.total
            ));
        }
        if object_size < total {
            return Err(format!(
                "the object is {object_size} bytes, shorter than the {total} its header describes"
            ));
        }
        Ok(layout)
    }

    /// Where the slot of message number `seq` starts.
    pub(crate) fn slot(&self, seq: u64) -> usize {
        // `seq % capacity < capacity`, and `capacity × stride` fits
        // (checked in `new`), so this neither overflows nor leaves the object.
        SLOTS_AT + (seq % self.capacity) as usize * self.stride
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(layout: &Layout) -> [u8; CONFIG_LEN] {
        let mut config = layout.config();
        config[..8].copy_from_slice(&MAGIC.to_le_bytes());
        config
    }

    #[test]
    fn a_header_reads_back_as_the_layout_that_wrote_it() {
        for (capacity, max) in [(1, 1), (2, 64), (3, 8192), (1024, 56), (1024, 57)] {
            let layout = Layout::new(capacity, max).unwrap();
            assert_eq!(layout.stride % 64, 0);
            assert!(layout.stride >= max + LEN_BYTES);
            let parsed = Layout::parse(&stored(&layout), layout.total as u64).unwrap();
            assert_eq!(parsed, layout);
            let last = layout.slot(capacity - 1) + layout.stride;
            assert_eq!(last, layout.total);
        }
    }

    #[test]
    fn foreign_short_or_inconsistent_headers_are_refused_with_the_reason() {
        let layout = Layout::new(4, 100).unwrap();
        let good = stored(&layout);
        let total = layout.total as u64;
        let refuse =
            |config: [u8; CONFIG_LEN], size: u64| Layout::parse(&config, size).unwrap_err();

        assert!(refuse([0; CONFIG_LEN], total).contains("no ring header"));
        let mut v2 = good;
        v2[VERSION_AT] = 2;
        assert!(refuse(v2, total).contains("version 2"));
        assert!(refuse(good, total - 1).contains("shorter"));
        let mut wide = good;
        wide[STRIDE_AT] = 0;
        assert!(refuse(wide, total).contains("slots of"));
        let mut huge = good;
        huge[CAPACITY_AT..CAPACITY_AT + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(refuse(huge, total).contains("more than an address space"));
        let mut empty = good;
        empty[CAPACITY_AT..CAPACITY_AT + 8].copy_from_slice(&0u64.to_le_bytes());
        assert!(refuse(empty, total).contains("capacity 0"));
    }

    #[test]
    fn sizes_that_overflow_are_refused() {
        assert_eq!(Layout::new(0, 8), Err(SizeError::Zero("capacity")));
        assert_eq!(Layout::new(8, 0), Err(SizeError::Zero("max size")));
        assert_eq!(Layout::new(u64::MAX, 8), Err(SizeError::TooLarge));
        assert_eq!(Layout::new(2, usize::MAX - 4), Err(SizeError::TooLarge));
    }
}
