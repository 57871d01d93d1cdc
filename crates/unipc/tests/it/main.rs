//! Integration tests: one module per facility, every one of them run between
//! two real processes (see `util` for the harness).

// `clippy.toml` keeps std's atomics out of the ring's protocol code, not
// out of tests.
#![allow(clippy::disallowed_types)]

mod util;

mod adopt;
#[cfg(feature = "tokio")]
mod asynch;
mod dgram;
mod eventfd;
mod fifo;
mod futex;
mod inventory;
mod lock;
mod mapped;
mod memfd;
mod message_conformance;
mod mutex;
#[cfg(feature = "nats")]
mod nats;
mod netns;
mod open;
mod pipe;
mod posix_mq;
mod posix_sem;
mod pty;
mod pubsub;
mod ring;
mod seqpacket;
mod shm;
mod shm_view;
mod signal;
mod socket_file;
mod sysv_mq;
mod sysv_sem;
mod tcp;
#[cfg(feature = "typed")]
mod typed;
mod unix;
