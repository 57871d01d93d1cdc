//! [`AsyncMessages`] and [`AsyncStreams`]: any endpoint, opened from its
//! string, awaited.
//!
//! `OpenOptions` opens an endpoint into a [`MessageHandle`] or a
//! [`StreamHandle`](crate::open::StreamHandle);
//! [`MessageHandle::into_async`] turns the first into the async form the
//! facility allows: an [`FdMessenger`] over the descriptor where there is
//! one, a [`Bridge`] where there is none (System V queues, rings, pubsubs,
//! NATS). `StreamHandle::into_async` turns a stream into an
//! [`AsyncStream`] behind `AsyncRead`/`AsyncWrite`.

use std::fmt;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{AsyncMessenger, AsyncStream, Bridge, FdMessenger};
use crate::error::ObjectName;
use crate::message::dgram::{UdpSocket, UnixDatagram};
use crate::message::{posix_mq, Limits, Received, Tag};
use crate::open::MessageHandle;
use crate::stream::{fifo, seqpacket, tcp, unix};
use crate::Result;

/// A message endpoint awaited through the one [`AsyncMessenger`] interface,
/// whatever its facility.
///
/// ```
/// use unipc::asynch::AsyncMessenger;
/// use unipc::open::OpenOptions;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let endpoint: unipc::Endpoint = "posix-mq:/async-open-demo".parse()?;
/// # let _ = unipc::open::remove(&endpoint);
/// let _queue = unipc::message::posix_mq::QueueOptions::new().create(&"/async-open-demo".parse()?)?;
/// let tx = OpenOptions::new().connect(&endpoint)?.into_messages().unwrap().into_async()?;
/// let rx = OpenOptions::new().listen(&endpoint)?.accept()?.into_messages().unwrap().into_async()?;
/// tx.send(b"job 1").await?;
/// assert_eq!(rx.recv().await?, b"job 1");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[non_exhaustive]
pub enum AsyncMessages {
    /// A POSIX queue, by its descriptor.
    PosixMq(FdMessenger<posix_mq::Queue>),
    /// A UNIX datagram socket, by its descriptor.
    UnixDgram(FdMessenger<UnixDatagram>),
    /// A UDP socket, by its descriptor.
    Udp(FdMessenger<UdpSocket>),
    /// A seqpacket connection, by its descriptor.
    Seqpacket(FdMessenger<seqpacket::Conn>),
    /// Any other (no descriptor to wait on): through a [`Bridge`].
    Bridged(Bridge<MessageHandle>),
}

impl fmt::Debug for AsyncMessages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match self {
            AsyncMessages::Bridged(_) => "bridged",
            _ => "descriptor",
        };
        f.debug_struct("AsyncMessages")
            .field("object", &self.object())
            .field("waits", &how)
            .finish()
    }
}

impl MessageHandle {
    /// This handle awaited: over its descriptor where it has one (POSIX
    /// queues, datagram sockets, seqpacket connections), otherwise
    /// through a [`Bridge`] and its helper thread.
    ///
    /// # Errors
    /// When the descriptor cannot be registered with the runtime (no
    /// tokio runtime with IO enabled is running), or the bridge's thread
    /// cannot start.
    pub fn into_async(self) -> Result<AsyncMessages> {
        Ok(match self {
            MessageHandle::PosixMq(q) => AsyncMessages::PosixMq(FdMessenger::new(q)?),
            MessageHandle::UnixDgram(s) => AsyncMessages::UnixDgram(FdMessenger::new(s)?),
            MessageHandle::Udp(s) => AsyncMessages::Udp(FdMessenger::new(s)?),
            MessageHandle::Seqpacket(c) => AsyncMessages::Seqpacket(FdMessenger::new(c)?),
            other => AsyncMessages::Bridged(Bridge::new(other)?),
        })
    }
}

/// Runs `$body` with `$m` bound to the facility, whichever it is.
macro_rules! each {
    ($self:expr, $m:ident => $body:expr) => {
        match $self {
            AsyncMessages::PosixMq($m) => $body,
            AsyncMessages::UnixDgram($m) => $body,
            AsyncMessages::Udp($m) => $body,
            AsyncMessages::Seqpacket($m) => $body,
            AsyncMessages::Bridged($m) => $body,
        }
    };
}

impl AsyncMessenger for AsyncMessages {
    fn object(&self) -> ObjectName {
        each!(self, m => m.object())
    }

    fn limits(&self) -> Result<Limits> {
        each!(self, m => m.limits())
    }

    fn recv_buffer_hint(&self) -> Result<usize> {
        each!(self, m => m.recv_buffer_hint())
    }

    async fn send_tagged(&self, message: &[u8], tag: Tag) -> Result<()> {
        each!(self, m => m.send_tagged(message, tag).await)
    }

    async fn recv_into(&self, buf: &mut [u8]) -> Result<Received> {
        each!(self, m => m.recv_into(buf).await)
    }
}

/// A byte-stream endpoint awaited: `AsyncRead` and `AsyncWrite` whatever
/// its facility (a FIFO's read end refuses writes, its write end reads).
///
/// ```
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use unipc::open::{Handle, OpenOptions};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let dir = tempfile::tempdir()?;
/// let endpoint: unipc::Endpoint = format!("unix:{}", dir.path().join("s").display()).parse()?;
/// let listener = OpenOptions::new().listen(&endpoint)?;
/// let Handle::Stream(client) = OpenOptions::new().connect(&endpoint)? else { unreachable!() };
/// let Handle::Stream(server) = listener.accept()? else { unreachable!() };
/// let (mut client, mut server) = (client.into_async()?, server.into_async()?);
/// client.write_all(b"hello").await?;
/// let mut got = [0; 5];
/// server.read_exact(&mut got).await?;
/// assert_eq!(&got, b"hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[non_exhaustive]
#[derive(Debug)]
pub enum AsyncStreams {
    /// `fifo:PATH`, opened for reading.
    FifoReader(AsyncStream<fifo::Reader>),
    /// `fifo:PATH`, opened for writing.
    FifoWriter(AsyncStream<fifo::Writer>),
    /// `unix:PATH` or `unix:@NAME`.
    Unix(AsyncStream<unix::Stream>),
    /// `tcp:HOST:PORT`.
    Tcp(AsyncStream<tcp::Stream>),
}

fn one_way(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, what.to_owned())
}

impl AsyncRead for AsyncStreams {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            AsyncStreams::FifoReader(s) => Pin::new(s).poll_read(cx, buf),
            AsyncStreams::Unix(s) => Pin::new(s).poll_read(cx, buf),
            AsyncStreams::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            AsyncStreams::FifoWriter(_) => {
                Poll::Ready(Err(one_way("a FIFO opened for writing cannot be read")))
            }
        }
    }
}

impl AsyncWrite for AsyncStreams {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            AsyncStreams::FifoWriter(s) => Pin::new(s).poll_write(cx, buf),
            AsyncStreams::Unix(s) => Pin::new(s).poll_write(cx, buf),
            AsyncStreams::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            AsyncStreams::FifoReader(_) => {
                Poll::Ready(Err(one_way("a FIFO opened for reading cannot be written")))
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            AsyncStreams::FifoWriter(s) => Pin::new(s).poll_flush(cx),
            AsyncStreams::Unix(s) => Pin::new(s).poll_flush(cx),
            AsyncStreams::Tcp(s) => Pin::new(s).poll_flush(cx),
            AsyncStreams::FifoReader(_) => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            AsyncStreams::FifoWriter(s) => Pin::new(s).poll_shutdown(cx),
            AsyncStreams::Unix(s) => Pin::new(s).poll_shutdown(cx),
            AsyncStreams::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            AsyncStreams::FifoReader(_) => Poll::Ready(Ok(())),
        }
    }
}
