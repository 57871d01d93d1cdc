//! Byte streams: facilities that carry an ordered stream of bytes with no
//! message boundaries.
//!
//! | module | facility | reach |
//! |---|---|---|
//! | [`pipe`] | anonymous pipe (one-way) | related processes |
//! | [`fifo`] | named pipe (one-way) | any process that can open the path |
//! | [`unix`] | UNIX stream socket, socketpair | processes on this host |
//! | [`seqpacket`] | UNIX seqpacket socket, socketpair | processes on this host |
//! | [`tcp`] | TCP stream socket, IPv4 and IPv6 | other hosts |
//! | [`pty`] | pseudoterminal | a child process on a terminal |
//!
//! Every type here implements [`std::io::Read`] and/or [`std::io::Write`],
//! and [`std::os::fd::AsFd`], so it drops into code written for std.
//! Writes never raise SIGPIPE: a peer that has gone away is an
//! [`std::io::ErrorKind::BrokenPipe`] error.

pub mod fifo;
pub mod pipe;
pub mod pty;
pub mod seqpacket;
pub mod tcp;
pub mod unix;
