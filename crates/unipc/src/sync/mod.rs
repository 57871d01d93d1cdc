//! Synchronization between processes: semaphores, file locks, robust
//! process-shared mutexes and condition variables, eventfd and futex.
//!
//! Every primitive here coordinates separate processes, not threads, and
//! each says what happens when a process dies holding it: the kernel's
//! answer (`SEM_UNDO`, lock release on exit, a robust mutex's owner-died
//! state) is part of the API, not a footnote.

/// How long an acquire may wait: the same choice every blocking call in
/// unipc offers.
pub use crate::message::Wait;

pub mod condvar;
pub mod eventfd;
pub mod futex;
pub mod lock;
pub mod mutex;
pub mod posix_sem;
pub mod sysv_sem;
