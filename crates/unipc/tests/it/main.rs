//! Integration tests: one module per facility, every one of them run between
//! two real processes (see `util` for the harness).

mod util;

mod adopt;
mod dgram;
mod fifo;
mod mapped;
mod memfd;
mod message_conformance;
mod open;
mod pipe;
mod posix_mq;
mod pty;
mod seqpacket;
mod shm;
mod shm_view;
mod socket_file;
mod sysv_mq;
mod sysv_sem;
mod tcp;
mod unix;
