//! unipc: every UNIX inter-process communication facility behind one safe,
//! uniform API.
//!
//! The public modules follow the classic IPC taxonomy:
//!
//! - [`stream`]: byte streams (pipes, FIFOs, UNIX and TCP stream sockets,
//!   socketpairs, pseudoterminals). Every stream implements
//!   [`std::io::Read`], [`std::io::Write`] and [`std::os::fd::AsFd`].
//! - [`message`]: facilities that keep message boundaries, all behind one
//!   interface, [`message::Messenger`].
//! - [`shm`]: shared memory (POSIX objects and System V segments), read
//!   and written by bounds-checked copies.
//! - [`sync`]: synchronization between processes (semaphores, file locks,
//!   robust mutexes and condition variables, eventfd, futex).
//! - `asynch` (with the `tokio` feature): the same facilities awaited in a
//!   tokio program—byte streams as `AsyncRead`/`AsyncWrite`, one
//!   `AsyncMessenger` for every message facility, an async eventfd.
//! - [`facility`]: what each facility is (the properties `unipc compare`
//!   shows) and how two processes join through it (what `unipc bench` uses).
//!
//! Shared pieces sit beside them: validated names ([`name`]), the endpoint
//! grammar every facility is addressed by ([`endpoint`]), the one call
//! from an endpoint to a working handle ([`open`]) and the error type
//! ([`Error`]). Raw system calls live in a private `sys` layer.
//!
//! # Example
//!
//! ```
//! use std::io::{Read, Write};
//!
//! let (mut tx, mut rx) = unipc::stream::pipe::new()?;
//! tx.write_all(b"hello")?;
//! drop(tx);
//! let mut got = String::new();
//! rx.read_to_string(&mut got)?;
//! assert_eq!(got, "hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_code)]
// `clippy.toml` disallows std's 32- and 64-bit atomics for the ring's
// protocol; the lint is on in `message/ring` only.
#![allow(clippy::disallowed_types)]
#![deny(missing_docs)]

mod adopt;
#[cfg(feature = "tokio")]
pub mod asynch;
mod creator;
mod deadline;
pub mod endpoint;
mod error;
pub mod facility;
mod guard;
pub mod inventory;
pub mod message;
mod mode;
pub mod name;
pub mod open;
mod ownership;
pub mod shm;
pub mod signal;
pub mod stream;
pub mod sync;
mod sys;
mod unix_socket;

pub use adopt::AdoptError;
pub use endpoint::Endpoint;
pub use mode::Mode;

/// The README's Rust examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeExamples;
pub use error::{Error, ObjectName, RemoteKind, Result};
