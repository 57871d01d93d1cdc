//! NATS JetStream as a message facility: `nats://HOST:PORT/SUBJECT`.
//!
//! Local IPC ends at the host; a JetStream stream is a durable,
//! acknowledged log on a server other hosts reach. Behind [`Messenger`](crate::message::Messenger) it
//! behaves as a queue:
//!
//! - **send** publishes to the subject and returns only once the server
//!   acknowledged that the stream holds the message (its `PubAck`). A
//!   message over the server's `max_payload` is refused before it is sent.
//! - **receive** takes the next message through a durable pull consumer
//!   that every receiver of the endpoint shares (each message goes to one
//!   of them), copies it to the caller, and only then acknowledges it, and
//!   waits for the server to confirm the acknowledgement: a receiver that
//!   dies before that leaves the message to be delivered again (after the
//!   consumer's ack wait, 30 s), never lost.
//! - **tags** travel as headers (`Unipc-Priority`, `Unipc-Type`), so a
//!   priority or a System V type crosses a bridge and back.
//! - [`Wait::Never`](crate::message::Wait::Never) takes a message only if one is there now; a send still
//!   waits for its acknowledgement, which is the call itself, not a wait for
//!   room (a stream with limits refuses at once when full). [`Wait::For`](crate::message::Wait::For)
//!   bounds the whole call; [`Wait::Forever`](crate::message::Wait::Forever) retries until done.
//!
//! The client is async-nats on a tokio runtime with one worker thread that
//! each handle owns, so the handle's calls are plain blocking calls and the
//! connection keeps up with the server (pings, reconnection) between them.
//! The library without the `nats` feature has none of this.
//!
//! `Nats` (built with the feature) shows the calls in an example.

#[cfg(feature = "nats")]
mod client;
#[cfg(feature = "nats")]
pub use client::{remove, Delivery, Nats, NatsOptions, StreamStat, PRIORITY_HEADER, TYPE_HEADER};

use crate::facility::{
    Direction, Facility, LiveLimit, MessageCap, Naming, Persistence, Properties, Reach, Shape, Tags,
};

/// The registry entry of NATS JetStream (present without the `nats`
/// feature too, so `unipc compare` shows it; opening one then says the
/// build lacks the client).
pub static FACILITY: Facility = Facility {
    name: "nats",
    scheme: Some("nats"),
    summary: "NATS JetStream: a durable, acknowledged stream on a server, reached over the network",
    addressing: "nats://HOST:PORT/SUBJECT[?stream=NAME&durable=NAME]",
    properties: Properties {
        shape: Shape::Messages,
        direction: Direction::TwoWay,
        tags: Tags::Header,
        destructive_read: true,
        peek: false,
        naming: Naming::ServerSubject,
        reach: Reach::Network,
        persistence: Persistence::Server,
        permissions: "the server's accounts and users (none by default)",
        reliable: true,
        after_crash: "the stream keeps every message; one taken but not acknowledged is delivered again after the consumer's ack wait (30 s)",
    },
    limits: || {
        vec![LiveLimit {
            name: "max_payload",
            value: "the server's, 1 MiB by default".to_owned(),
            source: "nats-server configuration (max_payload)",
        }]
    },
    max_message: || {
        Some(MessageCap {
            bytes: 1 << 20,
            set_by: "the server's max_payload (1 MiB by default; the server's greeting gives the real one)".to_owned(),
        })
    },
    #[cfg(feature = "bench")]
    connector: None,
};
