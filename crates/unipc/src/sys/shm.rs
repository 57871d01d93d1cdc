//! Shared-memory calls: POSIX objects (`shm_open`, `ftruncate`, `mmap`,
//! `pread`/`pwrite`) through rustix, System V segments (`shmget`, `shmat`,
//! `shmdt`, `shmctl`) through libc, which rustix and nix lack.
//!
//! Both kinds end up as a [`Region`]: an address and a length the kernel
//! mapped into this process, unmapped (`munmap`) or detached (`shmdt`) on
//! drop. A region only ever copies bytes in and out through raw pointers
//! ([`Region::copy_out`], [`Region::copy_in`]): it never hands out a
//! reference into memory another process may write at any moment, which
//! Rust's aliasing rules would not allow. The one exception is atomic words
//! ([`Region::atomic_u32`], [`Region::atomic_u64`]): an `&AtomicU32` may
//! point at memory mutated concurrently, which is what atomics permit.
//!
//! # Safety
//!
//! Every `unsafe` block here is one call. Pointer arguments come from live
//! Rust values (a buffer, a `struct shmid_ds`) owned for the whole call, or
//! from a [`Region`], whose address and length are exactly what `mmap` or
//! `shmat` returned and stay mapped until the region is dropped. Copies are
//! bounds-checked by the caller ([`crate::shm::Mapping`]) and asserted
//! again here. Segment identifiers are plain integers: a stale one makes
//! the kernel fail with `EINVAL`/`EIDRM`, never touch memory.
//!
//! The one hazard outside this file's control is a POSIX object truncated
//! by another process while mapped: an access past the new end raises
//! `SIGBUS`. That is why [`map_fd`] is an `unsafe fn` and why its public
//! caller, [`crate::shm::posix::Segment::map`], is `unsafe` too.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64};

use libc::c_int;

use super::ipc_perm::IpcPerm;
use rustix::fs::Mode as RawMode;
use rustix::mm::{MapFlags, ProtFlags};

/// `shm_open(name, flags, mode)` as glibc does it — `open("/dev/shm/NAME")`
/// — but with `O_NOFOLLOW` and `O_NONBLOCK`, and only a regular file
/// accepted: a symlink planted in the world-writable /dev/shm is refused
/// (ELOOP) rather than followed to the file it names (which a create with
/// a size would then truncate), and a planted FIFO neither blocks the open
/// nor is used. `mode` is masked by the umask.
pub(crate) fn open(
    name: &str,
    write: bool,
    create: bool,
    exclusive: bool,
    mode: u32,
) -> io::Result<OwnedFd> {
    use rustix::fs::OFlags as FsFlags;
    use std::os::fd::AsFd;
    let mut flags = if write {
        FsFlags::RDWR
    } else {
        FsFlags::RDONLY
    };
    flags |= FsFlags::NOFOLLOW | FsFlags::CLOEXEC | FsFlags::NONBLOCK;
    if create {
        flags |= FsFlags::CREATE;
    }
    if exclusive {
        flags |= FsFlags::EXCL;
    }
    let path = format!("/dev/shm/{}", name.trim_start_matches('/'));
    let fd = rustix::fs::open(path, flags, RawMode::from_raw_mode(mode))?;
    if rustix::fs::FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode)
        != rustix::fs::FileType::RegularFile
    {
        return Err(rustix::io::Errno::NODEV.into());
    }
    super::fd::set_nonblocking(fd.as_fd(), false)?;
    Ok(fd)
}

/// `shm_unlink(name)`.
pub(crate) fn unlink(name: &str) -> io::Result<()> {
    Ok(rustix::shm::unlink(name)?)
}

/// `fchmod(fd, mode)`: the exact mode, whatever the umask.
pub(crate) fn fchmod(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    Ok(rustix::fs::fchmod(fd, RawMode::from_raw_mode(mode))?)
}

/// `ftruncate(fd, size)`.
pub(crate) fn set_size(fd: BorrowedFd<'_>, size: u64) -> io::Result<()> {
    Ok(rustix::fs::ftruncate(fd, size)?)
}

/// What `fstat` says of a POSIX object.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FileStat {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) size: u64,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// `st_mode & 0o7777`.
    pub(crate) mode: u32,
}

/// `fstat(fd)`.
// Field widths differ between targets.
#[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
pub(crate) fn fstat(fd: BorrowedFd<'_>) -> io::Result<FileStat> {
    let st = rustix::fs::fstat(fd)?;
    Ok(FileStat {
        dev: st.st_dev as u64,
        ino: st.st_ino as u64,
        size: u64::try_from(st.st_size).unwrap_or(0),
        uid: st.st_uid,
        gid: st.st_gid,
        mode: (st.st_mode as u32) & 0o7777,
    })
}

/// `pread(fd, buf, offset)`, repeated until `buf` is full or the end of
/// the object; how many bytes were read.
pub(crate) fn read_at(fd: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match rustix::io::pread(fd, &mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Ok(done)
}

/// `pwrite(fd, data, offset)`, repeated until all of `data` is written.
pub(crate) fn write_at(fd: BorrowedFd<'_>, data: &[u8], offset: u64) -> io::Result<()> {
    let mut done = 0;
    while done < data.len() {
        match rustix::io::pwrite(fd, &data[done..], offset + done as u64) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// `statvfs(path)`: the bytes free to an unprivileged user.
pub(crate) fn free_bytes(path: &str) -> Option<u64> {
    let st = rustix::fs::statvfs(path).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// `statvfs(path)`: the size of the filesystem in bytes.
pub(crate) fn total_bytes(path: &str) -> Option<u64> {
    let st = rustix::fs::statvfs(path).ok()?;
    Some(st.f_blocks.saturating_mul(st.f_frsize))
}

/// How a [`Region`] was made, and so how it is undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Undo {
    /// Nothing mapped (a zero-length object: `mmap` refuses length 0).
    Nothing,
    /// `munmap(addr, len)`.
    Munmap,
    /// `shmdt(addr)`.
    Shmdt,
}

/// Memory the kernel mapped into this process: `len` bytes at `addr`,
/// shared with other processes, undone on drop.
#[derive(Debug)]
pub(crate) struct Region {
    addr: NonNull<u8>,
    len: usize,
    undo: Undo,
}

// SAFETY: a region is an address range owned by this handle; the memory it
// names is only ever copied in and out through raw pointers, which any
// thread may do (other processes write it concurrently anyway), and the
// undo call may run on any thread.
unsafe impl Send for Region {}
// SAFETY: as for `Send`: `&Region` only allows copies through raw
// pointers, never a reference into the memory.
unsafe impl Sync for Region {}

impl Region {
    /// The length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The address, for `/proc/self/maps` checks and diagnostics.
    pub(crate) fn addr(&self) -> usize {
        self.addr.as_ptr() as usize
    }

    /// Copies `buf.len()` bytes from `offset` into `buf`.
    ///
    /// # Panics
    /// When the range runs past the end (the caller checks first).
    pub(crate) fn copy_out(&self, offset: usize, buf: &mut [u8]) {
        assert!(offset
            .checked_add(buf.len())
            .is_some_and(|end| end <= self.len));
        if buf.is_empty() {
            return;
        }
        let src = self.addr.as_ptr().wrapping_add(offset);
        // SAFETY: `offset + buf.len() <= self.len` (asserted), so `src` and
        // the source range lie inside the mapping, which stays mapped while `self`
        // lives; `buf` is a live, exclusively borrowed buffer of that
        // length, and a private buffer never overlaps a shared mapping;
        // `u8` needs no alignment. Another process may write the source
        // meanwhile: the bytes copied are then some mix of old and new,
        // which is why the copy is all this module offers.
        unsafe { std::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) }
    }

    /// Copies `data` to `offset`.
    ///
    /// # Panics
    /// When the range runs past the end (the caller checks first).
    ///
    /// The caller must also have mapped the region writable: a write to a
    /// read-only mapping raises `SIGSEGV`.
    pub(crate) fn copy_in(&self, offset: usize, data: &[u8]) {
        assert!(offset
            .checked_add(data.len())
            .is_some_and(|end| end <= self.len));
        if data.is_empty() {
            return;
        }
        let dst = self.addr.as_ptr().wrapping_add(offset);
        // SAFETY: `offset + data.len() <= self.len` (asserted), so `dst` and
        // the destination lie inside the mapping, writable by the caller's
        // contract, mapped while `self` lives; `data` is a live slice that
        // cannot overlap a shared mapping (no reference into it is ever
        // made); `u8` needs no alignment.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len()) }
    }

    /// The address of a word of type `A` at `offset`, asserted inside the
    /// region and aligned for `A`.
    ///
    /// # Panics
    /// When the word runs past the end or is misaligned (the caller checks
    /// first).
    fn word<A>(&self, offset: usize) -> *mut u8 {
        let size = std::mem::size_of::<A>();
        assert!(offset.checked_add(size).is_some_and(|end| end <= self.len));
        let ptr = self.addr.as_ptr().wrapping_add(offset);
        assert!((ptr as usize) % std::mem::align_of::<A>() == 0);
        ptr
    }

    /// A raw pointer to an `A` at `offset`, for the process-shared objects
    /// the kernel or libc manipulate in place (`sem_t`, `pthread_mutex_t`,
    /// a futex word). Making the pointer is safe; every use of it is the
    /// caller's `unsafe`, valid while `self` stays mapped.
    ///
    /// # Panics
    /// When the `A` runs past the end or is misaligned (the caller checks
    /// first).
    pub(crate) fn slot<A>(&self, offset: usize) -> *mut A {
        self.word::<A>(offset).cast::<A>()
    }

    /// The address of `len` bytes at `offset`, asserted inside the region,
    /// for a caller that lends the bytes out under a protocol of its own
    /// (the ring's loans and views). Making the pointer is safe; every
    /// reference made from it is the caller's `unsafe`.
    ///
    /// # Panics
    /// When the range runs past the end (the caller checks first).
    pub(crate) fn bytes_at(&self, offset: usize, len: usize) -> *mut u8 {
        assert!(offset.checked_add(len).is_some_and(|end| end <= self.len));
        self.addr.as_ptr().wrapping_add(offset)
    }

    /// The 32-bit atomic word at `offset`, borrowed for as long as the
    /// region is.
    ///
    /// # Panics
    /// When the word runs past the end or `offset` is not 4-aligned (the
    /// caller checks first).
    ///
    /// The caller must also have mapped the region writable: an atomic
    /// store to a read-only mapping raises `SIGSEGV`.
    pub(crate) fn atomic_u32(&self, offset: usize) -> &AtomicU32 {
        let ptr = self.word::<AtomicU32>(offset).cast::<u32>();
        // SAFETY: `AtomicU32::from_ptr` asks that
        // - `ptr` be aligned to `align_of::<AtomicU32>()`: asserted in `word`;
        // - `ptr` be valid for reads and writes of 4 bytes for the whole
        //   lifetime returned: `word` asserted the 4 bytes inside the region,
        //   which stays mapped until `self` drops, and the returned borrow
        //   is tied to `&self`;
        // - every access to those bytes meanwhile be atomic, or not
        //   concurrent: another process reaching them through its own
        //   mapping is what atomics are for (any bit pattern is a valid
        //   `u32`, so whatever a peer stored reads as some value); no `&u32`
        //   or `&mut` into the region is ever made, only raw-pointer copies,
        //   which the callers of this crate are told not to race with the
        //   atomic (as for a second process writing the same bytes).
        unsafe { AtomicU32::from_ptr(ptr) }
    }

    /// The 64-bit atomic word at `offset`, borrowed for as long as the
    /// region is.
    ///
    /// # Panics
    /// When the word runs past the end or `offset` is not aligned for
    /// `AtomicU64` (the caller checks first).
    ///
    /// The caller must also have mapped the region writable, as for
    /// [`atomic_u32`](Self::atomic_u32).
    pub(crate) fn atomic_u64(&self, offset: usize) -> &AtomicU64 {
        let ptr = self.word::<AtomicU64>(offset).cast::<u64>();
        // SAFETY: as for `atomic_u32`, with 8 bytes: `ptr` is aligned to
        // `align_of::<AtomicU64>()` (asserted in `word`), valid for reads and
        // writes of 8 bytes while `self` lives (asserted inside the region,
        // borrow tied to `&self`), any bit pattern is a valid `u64`, and no
        // non-atomic reference into the region exists.
        unsafe { AtomicU64::from_ptr(ptr) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        match self.undo {
            Undo::Nothing => {}
            Undo::Munmap => {
                // SAFETY: `addr` and `len` are exactly what `mmap` returned
                // and mapped; nothing refers into the range (copies only),
                // and this is the only unmapping.
                let _ = unsafe { rustix::mm::munmap(self.addr.as_ptr().cast(), self.len) };
            }
            Undo::Shmdt => {
                // SAFETY: `addr` is exactly what `shmat` returned; nothing
                // refers into the segment (copies only), and this is the
                // only detach.
                let _ = unsafe { libc::shmdt(self.addr.as_ptr().cast()) };
            }
        }
    }
}

/// `mmap(NULL, len, PROT_READ [| PROT_WRITE], MAP_SHARED, fd, 0)`.
///
/// # Safety
/// The object behind `fd` must not shrink below `len` while the region
/// lives, or an access past its new end raises `SIGBUS`: the caller
/// vouches for everyone who can truncate it.
pub(crate) unsafe fn map_fd(fd: BorrowedFd<'_>, len: usize, write: bool) -> io::Result<Region> {
    // SAFETY: the caller's contract is this function's.
    unsafe { map_fd_with(fd, len, write, true) }
}

/// `mmap(NULL, len, PROT_READ [| PROT_WRITE], MAP_SHARED or MAP_PRIVATE,
/// fd, 0)`: a private mapping's writes are copy-on-write, never reaching
/// the file.
///
/// # Safety
/// As [`map_fd`]: the file behind `fd` must not shrink below `len` while
/// the region lives (a private mapping reads the file's pages until it
/// writes them, so it takes `SIGBUS` too).
pub(crate) unsafe fn map_fd_with(
    fd: BorrowedFd<'_>,
    len: usize,
    write: bool,
    shared: bool,
) -> io::Result<Region> {
    if len == 0 {
        return Ok(Region {
            addr: NonNull::dangling(),
            len: 0,
            undo: Undo::Nothing,
        });
    }
    let mut prot = ProtFlags::READ;
    if write {
        prot |= ProtFlags::WRITE;
    }
    let flags = if shared {
        MapFlags::SHARED
    } else {
        MapFlags::PRIVATE
    };
    // SAFETY: a null address lets the kernel choose a fresh range, so no
    // existing mapping or Rust object is replaced; `len` is non-zero; the
    // descriptor is live for the call (the mapping keeps its own
    // reference); offset 0 is page-aligned.
    let addr = unsafe { rustix::mm::mmap(std::ptr::null_mut(), len, prot, flags, fd, 0) }?;
    let addr =
        NonNull::new(addr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
    Ok(Region {
        addr,
        len,
        undo: Undo::Munmap,
    })
}

/// `mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED or MAP_PRIVATE |
/// MAP_ANONYMOUS, -1, 0)`: zeroed memory no file backs. A shared one is
/// shared with children forked afterwards; a private one is copied on
/// write at the fork.
///
/// Safe: no file backs it, so nothing can truncate it under the region.
pub(crate) fn map_anonymous(len: usize, shared: bool) -> io::Result<Region> {
    if len == 0 {
        return Ok(Region {
            addr: NonNull::dangling(),
            len: 0,
            undo: Undo::Nothing,
        });
    }
    let flags = if shared {
        MapFlags::SHARED
    } else {
        MapFlags::PRIVATE
    };
    // SAFETY: a null address lets the kernel choose a fresh range, so no
    // existing mapping or Rust object is replaced; `len` is non-zero; an
    // anonymous mapping takes no descriptor and no offset.
    let addr = unsafe {
        rustix::mm::mmap_anonymous(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            flags,
        )
    }?;
    let addr =
        NonNull::new(addr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
    Ok(Region {
        addr,
        len,
        undo: Undo::Munmap,
    })
}

/// What [`Region::advise`] tells the kernel (`madvise`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Advice {
    Normal,
    Random,
    Sequential,
    WillNeed,
    DontNeed,
}

impl Region {
    /// The page-aligned span that covers `offset..offset + len`, as the
    /// address and length `msync` and `madvise` need.
    ///
    /// # Panics
    /// When the range runs past the end (the caller checks first).
    fn page_span(&self, offset: usize, len: usize) -> (*mut std::ffi::c_void, usize) {
        assert!(offset.checked_add(len).is_some_and(|end| end <= self.len));
        let start = offset - offset % page_size();
        (
            self.addr.as_ptr().wrapping_add(start).cast(),
            offset + len - start,
        )
    }

    /// `msync(MS_SYNC)` of the pages covering `offset..offset + len`: a
    /// shared file mapping's changes are written to the file before it
    /// returns. Nothing to do for an empty region or range.
    pub(crate) fn sync(&self, offset: usize, len: usize) -> io::Result<()> {
        if self.undo != Undo::Munmap || len == 0 {
            return Ok(());
        }
        let (addr, span) = self.page_span(offset, len);
        // SAFETY: `addr` is page-aligned (the region starts on a page, as
        // `mmap` returns it, and the offset is aligned down) and
        // `addr..addr + span` lies inside the region (page_span asserts the
        // range), mapped while `self` lives; msync changes no memory, it
        // only writes pages back.
        unsafe { rustix::mm::msync(addr, span, rustix::mm::MsyncFlags::SYNC) }?;
        Ok(())
    }

    /// `madvise(advice)` over the pages covering `offset..offset + len`.
    ///
    /// `DontNeed` drops the pages: a shared or file mapping reads them
    /// back from the object, a private anonymous one reads zeros. That
    /// changes bytes, never memory safety: nothing refers into a region.
    pub(crate) fn advise(&self, offset: usize, len: usize, advice: Advice) -> io::Result<()> {
        if self.undo == Undo::Nothing || len == 0 {
            return Ok(());
        }
        let advice = match advice {
            Advice::Normal => rustix::mm::Advice::Normal,
            Advice::Random => rustix::mm::Advice::Random,
            Advice::Sequential => rustix::mm::Advice::Sequential,
            Advice::WillNeed => rustix::mm::Advice::WillNeed,
            Advice::DontNeed => rustix::mm::Advice::LinuxDontNeed,
        };
        let (addr, span) = self.page_span(offset, len);
        // SAFETY: `addr` is page-aligned and `addr..addr + span` lies
        // inside this region (as for `sync`), mapped while `self` lives. No Rust reference points into the region (it only copies),
        // so pages the kernel drops or re-reads under MADV_DONTNEED break
        // no aliasing rule: later copies see the object's bytes or zeros.
        unsafe { rustix::mm::madvise(addr, span, advice) }?;
        Ok(())
    }
}

fn cvt(ret: c_int) -> io::Result<c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `IPC_CREAT`.
pub(crate) const CREATE: c_int = libc::IPC_CREAT;
/// `IPC_EXCL`.
pub(crate) const EXCLUSIVE: c_int = libc::IPC_EXCL;

/// `shmget(key, size, flags)`: the identifier of the segment under `key`.
pub(crate) fn get(key: c_int, size: usize, flags: c_int) -> io::Result<c_int> {
    // SAFETY: shmget takes no pointers; any key, size and flags are valid
    // input (the kernel refuses bad ones with an errno).
    cvt(unsafe { libc::shmget(key, size, flags) })
}

/// `shmat(id, NULL, read_only ? SHM_RDONLY : 0)` for `len` bytes (the
/// segment's size, from `IPC_STAT`).
pub(crate) fn attach(id: c_int, len: usize, read_only: bool) -> io::Result<Region> {
    let flags = if read_only { libc::SHM_RDONLY } else { 0 };
    // SAFETY: a null address lets the kernel choose a fresh range, so no
    // existing mapping is replaced; shmat reads no Rust memory. A System V
    // segment never changes size, so the region cannot shrink under us.
    let addr = unsafe { libc::shmat(id, std::ptr::null(), flags) };
    if addr as isize == -1 {
        return Err(io::Error::last_os_error());
    }
    let addr =
        NonNull::new(addr.cast::<u8>()).ok_or_else(|| io::Error::other("shmat returned null"))?;
    Ok(Region {
        addr,
        len,
        undo: Undo::Shmdt,
    })
}

/// The kernel's description of one segment (`IPC_STAT`), in fixed widths.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SegmentStat {
    /// `shm_perm`: key, owner, creator, mode.
    pub(crate) perm: IpcPerm,
    pub(crate) size: u64,
    pub(crate) attached: u64,
    pub(crate) creator_pid: i32,
    pub(crate) last_pid: i32,
    pub(crate) last_attach: i64,
    pub(crate) last_detach: i64,
    pub(crate) changed: i64,
    /// `SHM_DEST`: removed, waiting for its last detach.
    pub(crate) removed: bool,
}

#[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
impl From<&libc::shmid_ds> for SegmentStat {
    fn from(ds: &libc::shmid_ds) -> Self {
        SegmentStat {
            perm: IpcPerm::from(&ds.shm_perm),
            size: ds.shm_segsz as u64,
            attached: ds.shm_nattch as u64,
            creator_pid: ds.shm_cpid as i32,
            last_pid: ds.shm_lpid as i32,
            last_attach: ds.shm_atime as i64,
            last_detach: ds.shm_dtime as i64,
            changed: ds.shm_ctime as i64,
            removed: IpcPerm::from(&ds.shm_perm).raw_mode & 0o1000 != 0,
        }
    }
}

fn raw_stat(id: c_int) -> io::Result<libc::shmid_ds> {
    let mut ds = std::mem::MaybeUninit::<libc::shmid_ds>::zeroed();
    // SAFETY: `ds` is a live, writable `struct shmid_ds`, the type IPC_STAT
    // fills; the kernel writes it only during the call.
    cvt(unsafe { libc::shmctl(id, libc::IPC_STAT, ds.as_mut_ptr()) })?;
    // SAFETY: IPC_STAT succeeded and filled the struct; it was zeroed
    // before, so padding is initialized too.
    Ok(unsafe { ds.assume_init() })
}

/// `shmctl(id, IPC_STAT)`.
pub(crate) fn stat(id: c_int) -> io::Result<SegmentStat> {
    Ok(SegmentStat::from(&raw_stat(id)?))
}

/// `shmctl(id, IPC_SET)` with the permission bits changed to `mode`
/// (owner and group passed back as read).
pub(crate) fn set_segment_mode(id: c_int, mode: u32) -> io::Result<()> {
    let mut ds = raw_stat(id)?;
    ds.shm_perm.mode = (mode & 0o777) as _;
    // SAFETY: `ds` is a live `struct shmid_ds`; IPC_SET only reads it, and
    // only during the call.
    cvt(unsafe { libc::shmctl(id, libc::IPC_SET, &mut ds) })?;
    Ok(())
}

/// `shmctl(id, IPC_RMID)`: removed once the last process detaches.
pub(crate) fn remove(id: c_int) -> io::Result<()> {
    // SAFETY: IPC_RMID reads no buffer, so a null pointer is what the
    // manual asks for.
    cvt(unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) })?;
    Ok(())
}

/// The page size, for `shmall` (counted in pages).
pub(crate) fn page_size() -> usize {
    rustix::param::page_size()
}
