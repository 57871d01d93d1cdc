//! The only layer that makes system calls: thin wrappers, one file per
//! facility, over rustix and nix (libc only where they lack a call).
//!
//! Public modules call these functions and add names, options and typed
//! errors; they never call libc themselves.

pub(crate) mod dgram;
pub(crate) mod eventfd;
pub(crate) mod fd;
pub(crate) mod futex;
pub(crate) mod ipc_perm;
pub(crate) mod lock;
pub(crate) mod memfd;
pub(crate) mod pipe;
pub(crate) mod poll;
pub(crate) mod posix_mq;
pub(crate) mod posix_sem;
pub(crate) mod proc;
pub(crate) mod pthread;
pub(crate) mod pty;
#[cfg(feature = "tokio")]
pub(crate) mod reactor;
pub(crate) mod shm;
pub(crate) mod signal;
pub(crate) mod socket;
pub(crate) mod spawn;
pub(crate) mod sysv_mq;
pub(crate) mod sysv_sem;
pub(crate) mod tcp;
pub(crate) mod unix_file;
