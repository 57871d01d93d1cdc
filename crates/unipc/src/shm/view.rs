//! Typed views of a [`Mapping`]: plain-old-data values and arrays placed at
//! an offset, and atomic words another process updates concurrently.
//!
//! The layout guarantees come from [`bytemuck`]: a view's type must be
//! [`Pod`] (`#[derive(Pod, Zeroable)]` on a `#[repr(C)]` struct checks at
//! compile time that it has no padding, no pointers or references, and
//! that every bit pattern is a valid value). So whatever another process,
//! broken or hostile, leaves in the memory reads back as *some* value of
//! the type; validating it (a magic word, a count within its array) is
//! still the reader's job.
//!
//! A [`View`] and a [`SliceView`] copy: [`View::load`] copies the bytes out
//! into a fresh `T`, [`View::store`] copies a `T`'s bytes in, each checked
//! once when the view is made (bounds and alignment) and never handing out
//! a `&T` into memory that another process may change under it. A copy
//! racing with a peer's write reads some mix of old and new bytes (still a
//! valid `T`, since any bit pattern is); for words that must change as one,
//! use [`Mapping::atomic_u32`] and [`Mapping::atomic_u64`], the one kind of
//! reference into shared memory this crate lends, because atomics are made
//! for concurrent mutation. Do not also write an atomic word's bytes with a
//! copy (a view, [`Mapping::write_at`]) from this process while another
//! thread uses the atomic.
//!
//! # Safety of the mapping
//!
//! A view only borrows its mapping, so it inherits that mapping's contract:
//! a System V attachment never shrinks, and a POSIX object is mapped by the
//! `unsafe` [`posix::Segment::map`](super::posix::Segment::map), whose
//! caller vouches that nobody truncates the object meanwhile (an access
//! past a new end raises `SIGBUS`). The views add no `unsafe` of their
//! own: loads and stores go through the mapping's bounds-checked copies,
//! and the atomic words through [`crate::sys::shm`].

use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::sync::atomic::{AtomicU32, AtomicU64};

use bytemuck::Pod;

use super::Mapping;
use crate::{Error, Result};

/// Why a placement was refused (see [`place`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The bytes run past the end; the byte count when it does not
    /// overflow `usize`.
    OutOfBounds { bytes: Option<usize> },
    /// `offset` is not a multiple of `align`.
    Misaligned,
}

/// Checks `count` values of `size` bytes and alignment `align` at `offset`
/// of a mapping of `len` bytes (which starts on a page boundary): the byte
/// count when they fit, inside and aligned. No arithmetic can wrap.
fn place(
    len: usize,
    offset: usize,
    size: usize,
    align: usize,
    count: usize,
) -> std::result::Result<usize, Refusal> {
    let bytes = size.checked_mul(count);
    let fits = bytes
        .and_then(|bytes| offset.checked_add(bytes))
        .is_some_and(|end| end <= len);
    if !fits {
        return Err(Refusal::OutOfBounds { bytes });
    }
    if offset % align != 0 {
        return Err(Refusal::Misaligned);
    }
    Ok(bytes.unwrap_or(0))
}

impl Mapping {
    /// Turns a [`place`] refusal into the error naming this mapping.
    fn placed(
        &self,
        what: &'static str,
        offset: usize,
        size: usize,
        align: usize,
        count: usize,
    ) -> Result<usize> {
        place(self.len(), offset, size, align, count).map_err(|refusal| match refusal {
            Refusal::OutOfBounds { bytes } => Error::OutOfBounds {
                object: self.object().clone(),
                op: what,
                offset: offset as u64,
                // An overflowing size × count is reported as the largest
                // size: it is past any end either way.
                len: bytes.map_or(u64::MAX, |bytes| bytes as u64),
                size: self.len() as u64,
            },
            Refusal::Misaligned => Error::Misaligned {
                object: self.object().clone(),
                what,
                offset: offset as u64,
                align: align as u64,
            },
        })
    }

    /// A typed view of one `T` at `offset`, for copies in and out.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`] naming the offset, `size_of::<T>()` and the
    /// mapping's size when the value runs past the end;
    /// [`Error::Misaligned`] naming the alignment when `offset` is not a
    /// multiple of `align_of::<T>()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use bytemuck::{Pod, Zeroable};
    /// use unipc::name::SysvKey;
    /// use unipc::shm::{sysv::SegmentOptions, Access};
    ///
    /// #[repr(C)]
    /// #[derive(Clone, Copy, Pod, Zeroable, Debug, PartialEq)]
    /// struct Point { x: u32, y: u32 }
    ///
    /// let segment = SegmentOptions::new().size(4096).create(SysvKey::Private)?;
    /// let map = segment.attach(Access::ReadWrite)?;
    /// let point = map.view::<Point>(64)?;
    /// point.store(&Point { x: 1, y: 2 })?;
    /// assert_eq!(point.load(), Point { x: 1, y: 2 });
    /// assert!(map.view::<Point>(4090).is_err()); // past the end
    /// assert!(map.view::<Point>(2).is_err()); // misaligned
    /// # Ok::<(), unipc::Error>(())
    /// ```
    pub fn view<T: Pod>(&self, offset: usize) -> Result<View<'_, T>> {
        self.placed("view", offset, size_of::<T>(), align_of::<T>(), 1)?;
        Ok(View {
            map: self,
            offset,
            ty: PhantomData,
        })
    }

    /// A typed view of `count` consecutive `T`s at `offset` (an array),
    /// for copies of one element at a time.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`] naming the offset, `size_of::<T>() * count`
    /// and the mapping's size when the array runs past the end (a product
    /// that overflows is refused, not wrapped); [`Error::Misaligned`] as
    /// for [`view`](Self::view).
    pub fn slice_view<T: Pod>(&self, offset: usize, count: usize) -> Result<SliceView<'_, T>> {
        self.placed("slice view", offset, size_of::<T>(), align_of::<T>(), count)?;
        Ok(SliceView {
            map: self,
            offset,
            count,
            ty: PhantomData,
        })
    }

    /// The 32-bit atomic word at `offset`, which this and other processes
    /// may update concurrently; borrowed for as long as the mapping is.
    ///
    /// The one reference into shared memory this crate lends, sound because
    /// atomics permit concurrent mutation. Do not also write the word's
    /// bytes by a copy ([`Mapping::write_at`], a [`View`]) from this process
    /// while the atomic is in use. Through a POSIX mapping it inherits
    /// [`posix::Segment::map`](super::posix::Segment::map)'s contract, as
    /// [`View`] does.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`] when the 4 bytes run past the end;
    /// [`Error::Misaligned`] when `offset` is not a multiple of 4;
    /// [`Error::Unsupported`] when mapped read-only (an atomic may store,
    /// and a store to a read-only mapping would raise `SIGSEGV`).
    pub fn atomic_u32(&self, offset: usize) -> Result<&AtomicU32> {
        self.atomic_place::<AtomicU32>("atomic_u32", offset)?;
        Ok(self.region().atomic_u32(offset))
    }

    /// The 64-bit atomic word at `offset`, as [`atomic_u32`](Self::atomic_u32).
    ///
    /// # Errors
    ///
    /// As for [`atomic_u32`](Self::atomic_u32), with 8 bytes and the
    /// alignment of `AtomicU64` (8).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::Ordering;
    /// use unipc::name::SysvKey;
    /// use unipc::shm::{sysv::SegmentOptions, Access};
    ///
    /// let segment = SegmentOptions::new().size(4096).create(SysvKey::Private)?;
    /// let map = segment.attach(Access::ReadWrite)?;
    /// let counter = map.atomic_u64(8)?;
    /// counter.fetch_add(1, Ordering::AcqRel);
    /// assert_eq!(counter.load(Ordering::Acquire), 1);
    /// assert!(map.atomic_u64(4).is_err()); // misaligned
    /// # Ok::<(), unipc::Error>(())
    /// ```
    pub fn atomic_u64(&self, offset: usize) -> Result<&AtomicU64> {
        self.atomic_place::<AtomicU64>("atomic_u64", offset)?;
        Ok(self.region().atomic_u64(offset))
    }

    /// Where a process-shared `A` (a `sem_t`, a `pthread_mutex_t`, a futex
    /// word) lives at `offset`: checked inside, aligned and writable, for
    /// `sync/` to hand to the calls that operate on it in place. The
    /// pointer stays valid while this mapping is borrowed.
    ///
    /// # Errors
    ///
    /// As for [`atomic_u32`](Self::atomic_u32), with the size and alignment
    /// of `A`.
    #[allow(dead_code)] // the first users land with `sync/`
    pub(crate) fn shared_slot<A>(&self, what: &'static str, offset: usize) -> Result<*mut A> {
        self.atomic_place::<A>(what, offset)?;
        Ok(self.region().slot::<A>(offset))
    }

    /// The 32-bit word at `offset` for a caller that has checked the same
    /// offset once with [`atomic_u32`](Self::atomic_u32) and now calls in a
    /// hot loop (the bench's mailbox link): only the region's own asserts
    /// remain.
    ///
    /// # Panics
    /// When the word runs past the end or is misaligned.
    #[cfg(feature = "bench")]
    pub(crate) fn atomic_u32_checked_before(&self, offset: usize) -> &AtomicU32 {
        debug_assert!(self.is_writable());
        self.region().atomic_u32(offset)
    }

    fn atomic_place<A>(&self, what: &'static str, offset: usize) -> Result<()> {
        if !self.is_writable() {
            return Err(self.read_only(what));
        }
        self.placed(what, offset, size_of::<A>(), align_of::<A>(), 1)?;
        Ok(())
    }

    fn read_only(&self, what: &'static str) -> Error {
        Error::Unsupported {
            object: self.object().clone(),
            what: what.into(),
            reason: "it is mapped read-only; map or attach it read-write".into(),
        }
    }
}

/// One `T` at a fixed offset of a [`Mapping`], checked in bounds and
/// aligned when made ([`Mapping::view`]); copies in and out.
///
/// `T` is [`Pod`] (`#[repr(C)]` with `#[derive(Pod, Zeroable)]`: no
/// padding, no pointers or references, every bit pattern valid), so
/// whatever another process left in the memory loads as some `T`, still to
/// be validated (a magic word, counts within their arrays) before it is
/// trusted. No `&T` into the shared memory is ever made: a load racing a
/// peer's store may see a mix of old and new bytes; words that must change
/// as one belong in [`Mapping::atomic_u32`] / [`Mapping::atomic_u64`].
///
/// A view only borrows its mapping and so inherits its contract: a System V
/// attachment never shrinks; a POSIX object is mapped by the `unsafe`
/// [`posix::Segment::map`](super::posix::Segment::map), whose caller
/// vouches that nobody truncates it meanwhile (a load or store past a new
/// end raises `SIGBUS`).
pub struct View<'a, T> {
    map: &'a Mapping,
    offset: usize,
    ty: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for View<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View")
            .field("object", self.map.object())
            .field("offset", &self.offset)
            .field("type", &std::any::type_name::<T>())
            .finish()
    }
}

impl<T: Pod> View<'_, T> {
    /// The offset in the mapping.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Copies the value out. A peer writing at the same time may leave a
    /// mix of old and new bytes: still a valid `T` (any bit pattern is),
    /// but one to validate before trusting.
    pub fn load(&self) -> T {
        // No `unsafe` here: `T: Pod` lets bytemuck lend a fresh `T`'s bytes
        // (no padding, and any bytes copied in make a valid `T`), and the
        // copy is the mapping's, inside the bounds checked when the view
        // was made. No `&T` into the shared memory is ever made.
        let mut value = T::zeroed();
        self.map
            .region()
            .copy_out(self.offset, bytemuck::bytes_of_mut(&mut value));
        value
    }

    /// Copies `value` in.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] when mapped read-only; nothing is written.
    pub fn store(&self, value: &T) -> Result<()> {
        if !self.map.is_writable() {
            return Err(self.map.read_only("store"));
        }
        self.map
            .region()
            .copy_in(self.offset, bytemuck::bytes_of(value));
        Ok(())
    }
}

/// `count` consecutive `T`s at a fixed offset of a [`Mapping`], checked in
/// bounds and aligned when made ([`Mapping::slice_view`]); every element
/// access checks its index.
pub struct SliceView<'a, T> {
    map: &'a Mapping,
    offset: usize,
    count: usize,
    ty: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for SliceView<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SliceView")
            .field("object", self.map.object())
            .field("offset", &self.offset)
            .field("count", &self.count)
            .field("type", &std::any::type_name::<T>())
            .finish()
    }
}

impl<'a, T: Pod> SliceView<'a, T> {
    /// How many elements.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The view of element `index`.
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfRange`] when `index >= len()`.
    pub fn at(&self, index: usize) -> Result<View<'a, T>> {
        if index >= self.count {
            return Err(Error::IndexOutOfRange {
                object: self.map.object().clone(),
                index: index as u64,
                count: self.count as u64,
            });
        }
        // `index < count` and `offset + count * size` fit in the mapping
        // (checked when the slice view was made), so neither wraps.
        Ok(View {
            map: self.map,
            offset: self.offset + index * size_of::<T>(),
            ty: PhantomData,
        })
    }

    /// Copies element `index` out (as [`View::load`]).
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfRange`] when `index >= len()`.
    pub fn get(&self, index: usize) -> Result<T> {
        Ok(self.at(index)?.load())
    }

    /// Copies `value` into element `index` (as [`View::store`]).
    ///
    /// # Errors
    ///
    /// [`Error::IndexOutOfRange`] when `index >= len()`;
    /// [`Error::Unsupported`] when mapped read-only.
    pub fn set(&self, index: usize, value: &T) -> Result<()> {
        self.at(index)?.store(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn placements_inside_and_aligned_are_accepted() {
        assert_eq!(place(4096, 0, 8, 8, 512), Ok(4096));
        assert_eq!(place(4096, 4088, 8, 8, 1), Ok(8));
        assert_eq!(place(4096, 4096, 8, 8, 0), Ok(0));
        assert_eq!(place(0, 0, 0, 1, usize::MAX), Ok(0));
    }

    #[test]
    fn placements_past_the_end_or_misaligned_are_refused() {
        assert_eq!(
            place(4096, 4089, 8, 8, 1),
            Err(Refusal::OutOfBounds { bytes: Some(8) })
        );
        assert_eq!(place(4096, 4, 8, 8, 1), Err(Refusal::Misaligned));
        assert_eq!(
            place(4096, 8, 8, 8, 512),
            Err(Refusal::OutOfBounds { bytes: Some(4096) })
        );
    }

    #[test]
    fn huge_counts_and_offsets_do_not_wrap() {
        // size × count overflows usize.
        assert_eq!(
            place(4096, 0, 16, 8, usize::MAX / 8),
            Err(Refusal::OutOfBounds { bytes: None })
        );
        // size × count fits but offset + bytes overflows.
        assert_eq!(
            place(4096, usize::MAX - 7, 8, 8, 2),
            Err(Refusal::OutOfBounds { bytes: Some(16) })
        );
        // A product that wraps to something small would pass a naive check.
        let count = (usize::MAX / 8) + 2; // × 8 wraps to 8
        assert_eq!(8usize.wrapping_mul(count), 8);
        assert_eq!(
            place(4096, 0, 8, 8, count),
            Err(Refusal::OutOfBounds { bytes: None })
        );
    }

    proptest! {
        #[test]
        fn any_placement_either_is_refused_or_stays_inside_and_aligned(
            len in prop_oneof![0usize..=65536, Just(usize::MAX)],
            offset in prop_oneof![0usize..=70000, any::<usize>()],
            size in prop_oneof![0usize..=256, any::<usize>()],
            align_log in 0u32..=12,
            count in prop_oneof![0usize..=1024, any::<usize>()],
        ) {
            let align = 1usize << align_log;
            match place(len, offset, size, align, count) {
                Ok(bytes) => {
                    let exact = (size as u128) * (count as u128);
                    prop_assert_eq!(bytes as u128, exact);
                    prop_assert!(offset as u128 + exact <= len as u128);
                    prop_assert_eq!(offset % align, 0);
                }
                Err(Refusal::Misaligned) => {
                    prop_assert!(offset as u128 + (size as u128) * (count as u128) <= len as u128);
                    prop_assert_ne!(offset % align, 0);
                }
                Err(Refusal::OutOfBounds { bytes }) => {
                    let exact = (size as u128) * (count as u128);
                    prop_assert!(offset as u128 + exact > len as u128);
                    prop_assert_eq!(bytes.map(|b| b as u128), (exact <= usize::MAX as u128).then_some(exact));
                }
            }
        }
    }
}
