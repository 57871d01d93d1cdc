//! The `struct ipc_perm` every System V object carries (queues, segments,
//! semaphore sets), read once into fixed-width fields.
//!
//! libc's field types differ between targets (`__key` is a `key_t`, `mode`
//! an `unsigned short` on some and an `unsigned int` on others), so each
//! facility's `IPC_STAT` wrapper converts its `xxx_perm` through this one
//! type instead of repeating the casts. No system call here, and no
//! `unsafe`.

/// The owner, creator, permission bits and key of a System V object
/// (`msg_perm`, `shm_perm`, `sem_perm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IpcPerm {
    /// `__key`; 0 is `IPC_PRIVATE`.
    pub(crate) key: i32,
    /// The owner (`uid`).
    pub(crate) uid: u32,
    /// The owner's group (`gid`).
    pub(crate) gid: u32,
    /// The creator (`cuid`), which `IPC_SET` cannot change.
    pub(crate) cuid: u32,
    /// The creator's group (`cgid`).
    pub(crate) cgid: u32,
    /// The mode word as the kernel keeps it: the permission bits plus
    /// flags such as `SHM_DEST` (0o1000) for a segment removed but still
    /// attached.
    pub(crate) raw_mode: u32,
}

impl IpcPerm {
    /// The permission bits alone (`mode & 0o777`).
    pub(crate) fn mode(&self) -> u32 {
        self.raw_mode & 0o777
    }
}

// The casts only widen (or are identities on 64-bit Linux, where clippy
// sees them as no-ops); field widths differ between targets.
#[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
impl From<&libc::ipc_perm> for IpcPerm {
    fn from(perm: &libc::ipc_perm) -> Self {
        IpcPerm {
            key: perm.__key as i32,
            uid: perm.uid as u32,
            gid: perm.gid as u32,
            cuid: perm.cuid as u32,
            cgid: perm.cgid as u32,
            raw_mode: u32::from(perm.mode),
        }
    }
}
