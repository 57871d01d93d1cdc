//! The JetStream client behind [`Nats`]: async-nats on a runtime each
//! handle owns, behind blocking calls.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;

use crate::endpoint::NatsAddress;
use crate::error::{ObjectName, RemoteKind};
use crate::message::{Limits, Messenger, Received, Tag, Wait};
use crate::{Error, Result};

/// The header that carries a [`Tag::Priority`].
pub const PRIORITY_HEADER: &str = "Unipc-Priority";
/// The header that carries a [`Tag::Type`].
pub const TYPE_HEADER: &str = "Unipc-Type";

/// How long one wait for the server lasts when the caller waits forever:
/// a receive renews its pull request this often.
const FOREVER_STEP: Duration = Duration::from_secs(30);

/// How a [`Nats`] handle connects, and what a created stream holds.
///
/// ```
/// use std::time::Duration;
/// use unipc::message::nats::NatsOptions;
/// let options = NatsOptions::new()
///     .connect_timeout(Duration::from_secs(2))
///     .max_messages(10_000);
/// # let _ = options;
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct NatsOptions {
    connect_timeout: Duration,
    request_timeout: Duration,
    max_messages: Option<i64>,
    max_message_size: Option<i32>,
    exclusive: bool,
}

impl Default for NatsOptions {
    fn default() -> Self {
        NatsOptions::new()
    }
}

impl NatsOptions {
    /// Connect within 5 s; wait 5 s for the server's answers to requests
    /// (stream lookups); a created stream has the server's default limits.
    pub fn new() -> NatsOptions {
        NatsOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            max_messages: None,
            max_message_size: None,
            exclusive: false,
        }
    }

    /// How long connecting may take before [`Error::Remote`] with
    /// [`RemoteKind::Unreachable`].
    pub fn connect_timeout(mut self, timeout: Duration) -> NatsOptions {
        self.connect_timeout = timeout;
        self
    }

    /// How long the server may take to answer a request (a stream's
    /// lookup, creation, deletion; a send under [`Wait::Never`]).
    pub fn request_timeout(mut self, timeout: Duration) -> NatsOptions {
        self.request_timeout = timeout;
        self
    }

    /// A created stream holds at most `n` messages; a send beyond is
    /// refused ([`Error::Full`]).
    pub fn max_messages(mut self, n: usize) -> NatsOptions {
        self.max_messages = Some(i64::try_from(n).unwrap_or(i64::MAX));
        self
    }

    /// A created stream takes messages of at most `bytes`.
    pub fn max_message_size(mut self, bytes: usize) -> NatsOptions {
        self.max_message_size = Some(i32::try_from(bytes).unwrap_or(i32::MAX));
        self
    }

    /// [`create`](Self::create) fails if the stream exists.
    pub fn exclusive(mut self, exclusive: bool) -> NatsOptions {
        self.exclusive = exclusive;
        self
    }

    /// Connects and opens the endpoint's stream, which must exist.
    ///
    /// # Errors
    /// [`Error::Remote`]: the server unreachable ([`RemoteKind::Unreachable`])
    /// or without JetStream, the stream missing
    /// ([`RemoteKind::StreamMissing`]).
    pub fn open(&self, address: &NatsAddress) -> Result<Nats> {
        let nats = Nats::connect(address, self)?;
        nats.block(self.request_timeout, async {
            nats.js.get_stream(address.stream_name()).await
        })?
        .map_err(|e| nats.stream_error("open", &e.to_string(), is_not_found(&e.to_string())))?;
        Ok(nats)
    }

    /// Connects and creates the endpoint's stream (work-queue retention:
    /// a message is gone once a receiver acknowledged it), or opens it if
    /// it exists and this is not [`exclusive`](Self::exclusive).
    ///
    /// # Errors
    /// As [`open`](Self::open); [`Error::Remote`] with
    /// [`RemoteKind::Rejected`] when the server refuses the stream (another
    /// stream already takes the subject, an existing one differs, or it
    /// exists and `exclusive` was asked).
    pub fn create(&self, address: &NatsAddress) -> Result<Nats> {
        let mut nats = Nats::connect(address, self)?;
        let config = stream::Config {
            name: address.stream_name(),
            subjects: vec![address.subject.clone()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            max_messages: self.max_messages.unwrap_or(-1),
            max_message_size: self.max_message_size.unwrap_or(-1),
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        };
        let existing = nats.block(self.request_timeout, async {
            nats.js.get_stream(address.stream_name()).await
        })?;
        match existing {
            Ok(_) if self.exclusive => {
                return Err(nats.remote(
                    "create",
                    RemoteKind::Rejected,
                    format!("stream {} already exists", address.stream_name()),
                ))
            }
            Ok(_) => {}
            Err(e) if is_not_found(&e.to_string()) => {
                nats.block(self.request_timeout, async {
                    nats.js.create_stream(config).await
                })?
                .map_err(|e| nats.remote("create", RemoteKind::Rejected, e.to_string()))?;
                nats.created = true;
            }
            Err(e) => return Err(nats.stream_error("create", &e.to_string(), false)),
        }
        Ok(nats)
    }
}

/// Whether a server error says the stream does not exist.
fn is_not_found(text: &str) -> bool {
    text.contains("not found") || text.contains("10059")
}

/// An open `nats://` endpoint: one connection, its stream, and (once it
/// receives) the durable consumer it shares with the endpoint's other
/// receivers. Closing it closes the connection; the stream stays (remove
/// it with [`remove`]).
///
/// ```no_run
/// use unipc::message::nats::NatsOptions;
/// use unipc::message::{Messenger, Wait};
///
/// let endpoint: unipc::Endpoint = "nats://127.0.0.1:4222/jobs".parse()?;
/// let unipc::Endpoint::Nats(address) = &endpoint else { unreachable!() };
/// let jobs = NatsOptions::new().create(address)?;
/// jobs.send(b"build 42")?;
/// assert_eq!(jobs.recv_vec(Wait::Never)?.0, b"build 42");
/// # Ok::<(), unipc::Error>(())
/// ```
pub struct Nats {
    client: async_nats::Client,
    js: jetstream::Context,
    address: NatsAddress,
    object: ObjectName,
    request_timeout: Duration,
    created: bool,
    consumer: Mutex<Option<consumer::PullConsumer>>,
    /// A message taken but not handed over (the caller's buffer was too
    /// small): given to the next receive, not acknowledged until then.
    pending: Mutex<Option<jetstream::Message>>,
    // Declared last, so dropped last: the client's background task (its
    // connection) outlives every handle on it.
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for Nats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nats")
            .field("object", &self.object)
            .field("stream", &self.address.stream_name())
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// What [`Nats::stat`] reports of the stream.
///
/// ```no_run
/// let unipc::Endpoint::Nats(address) = "nats://127.0.0.1:4222/jobs".parse()? else { unreachable!() };
/// let stat = unipc::message::nats::Nats::open(&address)?.stat()?;
/// println!("{} messages, {} bytes in {}", stat.messages, stat.bytes, stat.name);
/// # Ok::<(), unipc::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamStat {
    /// The stream's name.
    pub name: String,
    /// Messages it holds.
    pub messages: u64,
    /// Bytes it holds.
    pub bytes: u64,
    /// Consumers reading it.
    pub consumers: usize,
    /// Its limit in messages, `None` for none.
    pub max_messages: Option<u64>,
    /// Its retention: `workqueue`, `limits` or `interest`.
    pub retention: &'static str,
    /// The first sequence number it still holds.
    pub first_sequence: u64,
    /// The last sequence number it took.
    pub last_sequence: u64,
}

impl Nats {
    fn connect(address: &NatsAddress, options: &NatsOptions) -> Result<Nats> {
        let object: ObjectName = crate::Endpoint::Nats(address.clone()).to_string().into();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("unipc-nats")
            .enable_all()
            .build()
            .map_err(|e| Error::os(object.clone(), "start the NATS client's runtime", e))?;
        let url = address.server_url();
        let connect = async_nats::ConnectOptions::new()
            .connection_timeout(options.connect_timeout)
            .request_timeout(Some(options.request_timeout))
            .connect(url.as_str());
        let client = runtime
            .block_on(async {
                tokio::time::timeout(
                    options.connect_timeout + Duration::from_millis(500),
                    connect,
                )
                .await
            })
            .map_err(|_| Error::Remote {
                object: object.clone(),
                op: "connect",
                kind: RemoteKind::Unreachable,
                detail: format!("no answer from {url} within {:?}", options.connect_timeout),
            })?
            .map_err(|e| Error::Remote {
                object: object.clone(),
                op: "connect",
                kind: RemoteKind::Unreachable,
                detail: format!("{url}: {e}"),
            })?;
        let js = {
            // The context spawns nothing, but asks for a runtime around it.
            let _inside = runtime.enter();
            jetstream::new(client.clone())
        };
        Ok(Nats {
            client,
            js,
            address: address.clone(),
            object,
            request_timeout: options.request_timeout,
            created: false,
            consumer: Mutex::new(None),
            pending: Mutex::new(None),
            runtime,
        })
    }

    /// [`NatsOptions::open`] with the default options.
    ///
    /// # Errors
    /// As [`NatsOptions::open`].
    pub fn open(address: &NatsAddress) -> Result<Nats> {
        NatsOptions::new().open(address)
    }

    /// Whether this handle created the stream.
    pub fn created(&self) -> bool {
        self.created
    }

    /// The endpoint, as errors name it.
    pub fn address(&self) -> &NatsAddress {
        &self.address
    }

    /// The server's largest message (payload and headers), from the
    /// server's greeting.
    pub fn max_payload(&self) -> usize {
        self.client.server_info().max_payload
    }

    /// The stream's counts and limits.
    ///
    /// # Errors
    /// [`Error::Remote`]: the stream missing, the server unreachable.
    pub fn stat(&self) -> Result<StreamStat> {
        let info = self
            .block(self.request_timeout, async {
                let mut stream = self.js.get_stream(self.address.stream_name()).await?;
                Ok::<_, async_nats::Error>(stream.info().await?.clone())
            })?
            .map_err(|e| {
                let text = e.to_string();
                self.stream_error("stat", &text, is_not_found(&text))
            })?;
        Ok(StreamStat {
            name: info.config.name.clone(),
            messages: info.state.messages,
            bytes: info.state.bytes,
            consumers: info.state.consumer_count,
            max_messages: u64::try_from(info.config.max_messages).ok(),
            retention: match info.config.retention {
                stream::RetentionPolicy::WorkQueue => "workqueue",
                stream::RetentionPolicy::Interest => "interest",
                stream::RetentionPolicy::Limits => "limits",
            },
            first_sequence: info.state.first_sequence,
            last_sequence: info.state.last_sequence,
        })
    }

    /// Deletes the stream and every message in it.
    ///
    /// # Errors
    /// [`Error::Remote`]: the stream missing, the server unreachable.
    pub fn remove(&self) -> Result<()> {
        self.block(self.request_timeout, async {
            self.js.delete_stream(self.address.stream_name()).await
        })?
        .map_err(|e| {
            let text = e.to_string();
            self.stream_error("remove", &text, is_not_found(&text))
        })?;
        Ok(())
    }

    /// Sends `message` with `tag` and a message id: a second send with the
    /// same id within the stream's duplicate window (2 minutes by default)
    /// is acknowledged but not stored again. What a bridge that retries
    /// after a crash needs.
    ///
    /// # Errors
    /// As [`Messenger::send_tagged`].
    pub fn send_with_id(&self, message: &[u8], tag: Tag, id: &str, wait: Wait) -> Result<bool> {
        self.publish(message, tag, Some(id), wait)
    }

    /// Publishes and waits for the acknowledgement; whether the server
    /// stored it (false: a duplicate of an earlier id).
    fn publish(&self, message: &[u8], tag: Tag, id: Option<&str>, wait: Wait) -> Result<bool> {
        let max = self.max_payload();
        if message.len() > max {
            return Err(Error::MessageTooLarge {
                object: self.object.clone(),
                size: message.len(),
                limit: max,
            });
        }
        let mut headers = async_nats::HeaderMap::new();
        match tag {
            Tag::None => {}
            Tag::Priority(p) => headers.insert(PRIORITY_HEADER, p.to_string().as_str()),
            Tag::Type(t) => headers.insert(TYPE_HEADER, t.to_string().as_str()),
        }
        if let Some(id) = id {
            headers.insert(async_nats::header::NATS_MESSAGE_ID, id);
        }
        let payload = bytes_of(message);
        let deadline = deadline_of(wait, self.request_timeout);
        loop {
            let step = step_until(deadline);
            let sent = self.block(step, async {
                let ack = self
                    .js
                    .publish_with_headers(
                        self.address.subject.clone(),
                        headers.clone(),
                        payload.clone(),
                    )
                    .await?;
                ack.await
            });
            match sent {
                Ok(Ok(ack)) => return Ok(!ack.duplicate),
                Ok(Err(e)) => {
                    use async_nats::jetstream::context::PublishErrorKind as K;
                    let text = e.to_string();
                    match e.kind() {
                        K::StreamNotFound => return Err(self.stream_error("publish", &text, true)),
                        K::MaxPayloadExceeded => {
                            return Err(Error::MessageTooLarge {
                                object: self.object.clone(),
                                size: message.len(),
                                limit: max,
                            })
                        }
                        K::TimedOut if deadline.map_or(true, |d| Instant::now() < d) => continue,
                        K::TimedOut => return Err(self.not_acknowledged(wait)),
                        _ if text.contains("maximum messages") || text.contains("10077") => {
                            return Err(Error::Full {
                                object: self.object.clone(),
                            })
                        }
                        _ => return Err(self.remote("publish", RemoteKind::Rejected, text)),
                    }
                }
                // The step ran out: retry while the caller's time lasts.
                Err(_) if deadline.map_or(true, |d| Instant::now() < d) => {}
                Err(_) => return Err(self.not_acknowledged(wait)),
            }
        }
    }

    fn not_acknowledged(&self, wait: Wait) -> Error {
        self.remote(
            "publish",
            RemoteKind::NotAcknowledged,
            format!(
                "the server did not acknowledge the message within {:?}; it may or may not be stored",
                match wait {
                    Wait::For(d) => d,
                    _ => self.request_timeout,
                }
            ),
        )
    }

    /// The shared durable consumer, made on first use.
    fn consumer(&self) -> Result<consumer::PullConsumer> {
        let mut slot = self.consumer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let durable = self.address.durable_name();
        let config = consumer::pull::Config {
            durable_name: Some(durable.clone()),
            filter_subject: self.address.subject.clone(),
            ack_policy: consumer::AckPolicy::Explicit,
            ..Default::default()
        };
        let made = self
            .block(self.request_timeout, async {
                let stream = self.js.get_stream(self.address.stream_name()).await?;
                Ok::<_, async_nats::Error>(stream.get_or_create_consumer(&durable, config).await?)
            })?
            .map_err(|e| {
                let text = e.to_string();
                self.stream_error("receive", &text, is_not_found(&text))
            })?;
        *slot = Some(made.clone());
        Ok(made)
    }

    /// The next message, not yet acknowledged.
    fn next_message(&self, wait: Wait) -> Result<jetstream::Message> {
        if let Some(m) = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            return Ok(m);
        }
        let consumer = self.consumer()?;
        let deadline = match wait {
            Wait::Never => None,
            Wait::For(d) => Some(Instant::now() + d),
            Wait::Forever => None,
        };
        loop {
            let expires = match (wait, deadline) {
                (Wait::Never, _) => None,
                (_, Some(d)) => Some(
                    d.saturating_duration_since(Instant::now())
                        .max(Duration::from_millis(1)),
                ),
                _ => Some(FOREVER_STEP),
            };
            let budget = expires.unwrap_or(Duration::ZERO) + self.request_timeout;
            let got = self.block(budget, async {
                let mut batch = match expires {
                    None => consumer.fetch().max_messages(1).messages().await?,
                    Some(e) => {
                        consumer
                            .batch()
                            .max_messages(1)
                            .expires(e)
                            .messages()
                            .await?
                    }
                };
                match batch.next().await {
                    Some(m) => Ok::<_, async_nats::Error>(Some(m?)),
                    None => Ok(None),
                }
            })?;
            match got {
                Ok(Some(message)) => return Ok(message),
                Ok(None) => match wait {
                    Wait::Never => {
                        return Err(Error::Empty {
                            object: self.object.clone(),
                        })
                    }
                    Wait::For(d) if deadline.is_some_and(|dl| Instant::now() >= dl) => {
                        return Err(Error::TimedOut {
                            object: self.object.clone(),
                            timeout: d,
                        })
                    }
                    _ => {}
                },
                Err(e) => {
                    let text = e.to_string();
                    return Err(self.stream_error("receive", &text, is_not_found(&text)));
                }
            }
        }
    }

    /// Runs `future` on this handle's runtime for at most `limit`; `Err`
    /// (a [`Error::TimedOut`]) when it did not finish.
    fn block<F: std::future::Future>(&self, limit: Duration, future: F) -> Result<F::Output> {
        self.runtime
            .block_on(async { tokio::time::timeout(limit, future).await })
            .map_err(|_| Error::TimedOut {
                object: self.object.clone(),
                timeout: limit,
            })
    }

    fn remote(&self, op: &'static str, kind: RemoteKind, detail: String) -> Error {
        Error::Remote {
            object: self.object.clone(),
            op,
            kind,
            detail,
        }
    }

    /// A stream lookup that failed: missing, or the server's other answer.
    fn stream_error(&self, op: &'static str, text: &str, missing: bool) -> Error {
        if missing {
            self.remote(
                op,
                RemoteKind::StreamMissing,
                format!(
                    "no stream {} for subject {} on {} (unipc create makes one)",
                    self.address.stream_name(),
                    self.address.subject,
                    self.address.server
                ),
            )
        } else if text.contains("disconnected") || text.contains("connection") {
            self.remote(op, RemoteKind::Unreachable, text.to_owned())
        } else {
            self.remote(op, RemoteKind::Rejected, text.to_owned())
        }
    }
}

/// The message's bytes as the client takes them (one copy: the client
/// keeps the payload until the server acknowledges it).
fn bytes_of(message: &[u8]) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(message)
}

/// When a send waiting as `wait` must be done by; `None`: no end.
fn deadline_of(wait: Wait, request_timeout: Duration) -> Option<Instant> {
    match wait {
        Wait::Never => Some(Instant::now() + request_timeout),
        Wait::For(d) => Some(Instant::now() + d),
        Wait::Forever => None,
    }
}

/// How long the next try may take: up to the deadline, at most one
/// [`FOREVER_STEP`].
fn step_until(deadline: Option<Instant>) -> Duration {
    deadline.map_or(FOREVER_STEP, |d| {
        d.saturating_duration_since(Instant::now())
            .clamp(Duration::from_millis(1), FOREVER_STEP)
    })
}

/// The tag a message's headers carry.
fn tag_of(message: &jetstream::Message) -> Tag {
    let header = |name: &str| {
        message
            .headers
            .as_ref()?
            .get(name)
            .map(|v| v.as_str().to_owned())
    };
    if let Some(p) = header(PRIORITY_HEADER).and_then(|v| v.parse().ok()) {
        return Tag::Priority(p);
    }
    if let Some(t) = header(TYPE_HEADER).and_then(|v| v.parse().ok()) {
        return Tag::Type(t);
    }
    Tag::None
}

impl Messenger for Nats {
    fn object(&self) -> ObjectName {
        self.object.clone()
    }

    fn limits(&self) -> Result<Limits> {
        let stat = self.stat()?;
        Ok(Limits::new(
            self.max_payload(),
            stat.max_messages.and_then(|n| usize::try_from(n).ok()),
        ))
    }

    fn recv_buffer_hint(&self) -> Result<usize> {
        Ok(self.max_payload())
    }

    fn send_tagged(&self, message: &[u8], tag: Tag, wait: Wait) -> Result<()> {
        self.publish(message, tag, None, wait).map(|_| ())
    }

    fn recv_into(&self, buf: &mut [u8], wait: Wait) -> Result<Received> {
        let message = self.next_message(wait)?;
        let len = message.payload.len();
        if len > buf.len() {
            let needed = Some(len);
            *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(message);
            return Err(Error::BufferTooSmall {
                object: self.object.clone(),
                buffer: buf.len(),
                needed,
            });
        }
        buf[..len].copy_from_slice(&message.payload);
        let tag = tag_of(&message);
        // Handed over: now acknowledged, and confirmed by the server, so a
        // message the caller has is not delivered again.
        self.block(self.request_timeout, async { message.double_ack().await })?
            .map_err(|e| self.remote("acknowledge", RemoteKind::NotAcknowledged, e.to_string()))?;
        Ok(Received::new(len, tag))
    }
}

/// A message taken from the stream and not acknowledged yet
/// ([`Nats::recv_unacked`]): until [`Nats::ack`], the server delivers it
/// again after the consumer's ack wait, so a program that dies holding one
/// loses nothing. What a bridge out of NATS takes.
///
/// ```no_run
/// use unipc::message::nats::Nats;
/// use unipc::message::Wait;
///
/// let unipc::Endpoint::Nats(address) = "nats://127.0.0.1:4222/jobs".parse()? else { unreachable!() };
/// let jobs = Nats::open(&address)?;
/// let delivery = jobs.recv_unacked(Wait::Forever)?;
/// std::fs::write("job", delivery.payload())?; // handed on first,
/// jobs.ack(delivery)?; // acknowledged after
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Delivery {
    message: jetstream::Message,
    sequence: u64,
    delivered: i64,
    tag: Tag,
}

impl Delivery {
    /// Its bytes.
    pub fn payload(&self) -> &[u8] {
        &self.message.payload
    }

    /// Its tag, from its headers.
    pub fn tag(&self) -> Tag {
        self.tag
    }

    /// Its sequence number in the stream: the same on every delivery of
    /// this message, so a receiver can tell a redelivery.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// How many times the server has delivered it (1 the first time).
    pub fn delivered(&self) -> i64 {
        self.delivered
    }
}

impl Nats {
    /// Takes the next message without acknowledging it.
    ///
    /// # Errors
    /// As [`Messenger::recv_into`].
    pub fn recv_unacked(&self, wait: Wait) -> Result<Delivery> {
        let message = self.next_message(wait)?;
        let (sequence, delivered) = message
            .info()
            .map(|i| (i.stream_sequence, i.delivered))
            .map_err(|e| self.remote("receive", RemoteKind::Rejected, e.to_string()))?;
        let tag = tag_of(&message);
        Ok(Delivery {
            message,
            sequence,
            delivered,
            tag,
        })
    }

    /// Gives `delivery` back unacknowledged (a `NAK`): the server delivers
    /// it again at once rather than after the ack wait. Best effort: if
    /// the `NAK` is lost, the ack wait brings it back anyway.
    pub fn release(&self, delivery: Delivery) {
        let _ = self.block(self.request_timeout, async {
            delivery
                .message
                .ack_with(jetstream::AckKind::Nak(None))
                .await
        });
    }

    /// Acknowledges `delivery` and waits for the server to confirm: it is
    /// not delivered again.
    ///
    /// # Errors
    /// [`Error::Remote`] with [`RemoteKind::NotAcknowledged`] when the
    /// server did not confirm (the message may come again).
    pub fn ack(&self, delivery: Delivery) -> Result<()> {
        self.block(self.request_timeout, async {
            delivery.message.double_ack().await
        })?
        .map_err(|e| self.remote("acknowledge", RemoteKind::NotAcknowledged, e.to_string()))
    }
}

/// Deletes the stream `address` names.
///
/// # Errors
/// As [`Nats::remove`], and as [`NatsOptions::open`] for the connection.
pub fn remove(address: &NatsAddress) -> Result<()> {
    NatsOptions::new().remove(address)
}

impl NatsOptions {
    /// Connects (within these options' timeouts) and deletes the stream
    /// `address` names.
    ///
    /// # Errors
    /// As [`Nats::remove`], and as [`NatsOptions::open`] for the
    /// connection.
    pub fn remove(&self, address: &NatsAddress) -> Result<()> {
        Nats::connect(address, self)?.remove()
    }
}
