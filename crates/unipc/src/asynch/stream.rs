//! Byte streams as tokio `AsyncRead`/`AsyncWrite`, and async `accept`.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{reactor_error, register};
use crate::stream::{fifo, pipe, pty, seqpacket, tcp, unix};
use crate::sys::reactor::Registered;
use crate::Result;

/// The calls an async stream needs from a blocking one. Sealed: only the
/// library's streams, whose reads and writes are known to be made with one
/// system call each and to report `EAGAIN` as
/// [`io::ErrorKind::WouldBlock`] on a non-blocking descriptor.
mod sealed {
    use std::io;

    pub trait Base: crate::sys::reactor::StableFd {
        /// Names the stream in errors.
        fn label(&self) -> String;
        /// Sets O_NONBLOCK (or, restoring, clears it).
        fn set_nonblocking_for_async(&self, on: bool) -> crate::Result<()>;
    }

    pub trait ReadEnd: Base {
        /// Whether a read that filled less than its buffer emptied the
        /// descriptor (a byte stream), so that waiting for the next edge
        /// can skip the read that would fail with `EAGAIN`, as tokio's own
        /// streams do. Not for seqpacket, whose read takes one message.
        const SHORT_READ_DRAINS: bool = true;
        /// One read, SIGPIPE- and EINTR-safe as the blocking `Read`.
        fn read_once(&self, buf: &mut [u8]) -> io::Result<usize>;
    }

    pub trait WriteEnd: Base {
        /// One write, never raising SIGPIPE (as the blocking `Write`).
        fn write_once(&self, buf: &[u8]) -> io::Result<usize>;
        /// Ends the writing direction: `shutdown(SHUT_WR)` on a socket;
        /// nothing on a pipe or pty (the peer sees the end when the
        /// descriptor closes).
        fn shutdown_write(&self) -> io::Result<()>;
    }

    pub trait Listener: crate::sys::reactor::StableFd {
        type Accepted;
        fn label(&self) -> String;
        fn set_nonblocking_for_async(&self, on: bool) -> crate::Result<()>;
        /// One `accept4`, failing with a `WouldBlock` kind when nobody waits.
        fn accept_once(&self) -> crate::Result<Self::Accepted>;
    }
}

/// A byte stream [`AsyncStream`] can wrap: every stream of
/// [`crate::stream`]. Readable ends get `AsyncRead`, writable ones
/// `AsyncWrite`. Sealed.
pub trait ByteStream: sealed::Base + Send + Sync {}

macro_rules! base {
    ($t:ty, $label:expr) => {
        impl sealed::Base for $t {
            fn label(&self) -> String {
                #[allow(clippy::redundant_closure_call)]
                ($label)(self)
            }
            fn set_nonblocking_for_async(&self, on: bool) -> Result<()> {
                self.set_nonblocking(on)
            }
        }
        impl ByteStream for $t {}
    };
}

macro_rules! read_end {
    ($t:ty) => {
        read_end!($t, true);
    };
    ($t:ty, $drains:expr) => {
        impl sealed::ReadEnd for $t {
            const SHORT_READ_DRAINS: bool = $drains;
            #[inline]
            fn read_once(&self, buf: &mut [u8]) -> io::Result<usize> {
                let mut this = self;
                this.read(buf)
            }
        }
    };
}

macro_rules! write_end {
    ($t:ty, $shutdown:expr) => {
        impl sealed::WriteEnd for $t {
            #[inline]
            fn write_once(&self, buf: &[u8]) -> io::Result<usize> {
                let mut this = self;
                this.write(buf)
            }
            fn shutdown_write(&self) -> io::Result<()> {
                #[allow(clippy::redundant_closure_call)]
                ($shutdown)(self)
            }
        }
    };
}

fn no_shutdown<T>(_: &T) -> io::Result<()> {
    Ok(())
}

base!(pipe::Sender, |_: &pipe::Sender| "pipe (write end)"
    .to_owned());
write_end!(pipe::Sender, no_shutdown);
base!(pipe::Receiver, |_: &pipe::Receiver| "pipe (read end)"
    .to_owned());
read_end!(pipe::Receiver);
base!(fifo::Writer, |w: &fifo::Writer| w.object().to_owned());
write_end!(fifo::Writer, no_shutdown);
base!(fifo::Reader, |r: &fifo::Reader| r.object().to_owned());
read_end!(fifo::Reader);
base!(pty::Master, |m: &pty::Master| m.object().to_owned());
read_end!(pty::Master);
write_end!(pty::Master, no_shutdown);
base!(unix::Stream, |_: &unix::Stream| "unix stream".to_owned());
read_end!(unix::Stream);
write_end!(unix::Stream, |s: &unix::Stream| s
    .shutdown(Shutdown::Write)
    .map_err(io::Error::from));
base!(seqpacket::Conn, |c: &seqpacket::Conn| {
    crate::message::Messenger::object(c).as_str().to_owned()
});
read_end!(seqpacket::Conn, false);
write_end!(seqpacket::Conn, |c: &seqpacket::Conn| c
    .shutdown(Shutdown::Write)
    .map_err(io::Error::from));
base!(tcp::Stream, |s: &tcp::Stream| s.object().to_owned());
read_end!(tcp::Stream);
write_end!(tcp::Stream, |s: &tcp::Stream| s
    .shutdown(Shutdown::Write)
    .map_err(io::Error::from));

/// A byte stream of [`crate::stream`] as tokio's `AsyncRead` (read ends)
/// and `AsyncWrite` (write ends), through `tokio::io::unix::AsyncFd`.
///
/// [`new`](Self::new) puts the descriptor in non-blocking mode and
/// registers it with the current runtime. `O_NONBLOCK` belongs to the open
/// file description: a process that shares this one (a copy inherited or
/// passed with `SCM_RIGHTS`, not the other end of a pipe or socketpair)
/// sees it too. `AsyncRead`/`AsyncWrite` are implemented on `&AsyncStream`
/// as well, so a reading task and a writing task can share one stream
/// (one of each: tokio's poll interface keeps one waker per direction, so
/// two tasks reading at once may leave one unwoken). Each read or write is the
/// blocking type's own call, so writes never raise SIGPIPE (sockets send
/// with `MSG_NOSIGNAL`; pipes and FIFOs mask SIGPIPE around the write): a
/// peer that has gone is an [`io::ErrorKind::BrokenPipe`] error, and the end
/// of the stream a read of 0 bytes. A seqpacket connection reads and writes
/// one whole message per call, as its blocking `Read`/`Write` do.
///
/// # Cancellation safety
///
/// `AsyncReadExt::read` and `AsyncWriteExt::write` are cancellation safe:
/// a dropped future read or wrote nothing (each call is one system call
/// made only inside the `poll` that returns its result). `read_exact` and
/// `write_all` are not (as for any tokio stream): dropped midway, part of
/// the bytes may have moved.
///
/// # Examples
///
/// ```
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use unipc::asynch::AsyncStream;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let (a, b) = unipc::stream::unix::pair()?;
/// let (mut a, mut b) = (AsyncStream::new(a)?, AsyncStream::new(b)?);
/// a.write_all(b"hello").await?;
/// a.shutdown().await?;
/// let mut got = String::new();
/// b.read_to_string(&mut got).await?;
/// assert_eq!(got, "hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AsyncStream<S: ByteStream> {
    fd: AsyncFd<Registered<S>>,
}

impl<S: ByteStream> fmt::Debug for AsyncStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncStream")
            .field("stream", &self.get_ref().label())
            .finish()
    }
}

impl<S: ByteStream> AsyncStream<S> {
    /// `fcntl(O_NONBLOCK)` + `epoll_ctl(ADD)`—makes `stream` async.
    ///
    /// # Errors
    /// [`Error::Os`](crate::Error::Os) from `fcntl`, or from the registration (outside a
    /// tokio runtime with its I/O driver enabled).
    pub fn new(stream: S) -> Result<AsyncStream<S>> {
        stream.set_nonblocking_for_async(true)?;
        let label = stream.label();
        Ok(AsyncStream {
            fd: register(stream, &label)?,
        })
    }

    /// The blocking stream inside (its descriptor is non-blocking).
    pub fn get_ref(&self) -> &S {
        self.fd.get_ref().get()
    }

    /// Deregisters the stream and gives it back in blocking mode.
    ///
    /// # Errors
    /// [`Error::Os`](crate::Error::Os) from `fcntl`.
    pub fn into_inner(self) -> Result<S> {
        let stream = self.fd.into_inner().into_inner();
        stream.set_nonblocking_for_async(false)?;
        Ok(stream)
    }
}

impl<S: ByteStream> AsFd for AsyncStream<S> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.get_ref().as_fd()
    }
}

impl<S: ByteStream + sealed::ReadEnd> AsyncStream<S> {
    fn poll_read_shared(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let len = unfilled.len();
            match guard.try_io(|inner| inner.get_ref().get().read_once(unfilled)) {
                Ok(Ok(n)) => {
                    // Edge-triggered: a short read of a byte stream drained
                    // it; an edge that came since is kept by the guard's
                    // tick, so nothing is missed.
                    if S::SHORT_READ_DRAINS && 0 < n && n < len {
                        guard.clear_ready();
                    }
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(err)) => return Poll::Ready(Err(err)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl<S: ByteStream + sealed::WriteEnd> AsyncStream<S> {
    fn poll_write_shared(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            match guard.try_io(|inner| inner.get_ref().get().write_once(buf)) {
                Ok(Ok(n)) => {
                    // A short write filled the buffer: wait for the next
                    // edge instead of a write that would fail.
                    if 0 < n && n < buf.len() {
                        guard.clear_ready();
                    }
                    return Poll::Ready(Ok(n));
                }
                Ok(Err(err)) => return Poll::Ready(Err(err)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl<S: ByteStream + sealed::ReadEnd> AsyncRead for AsyncStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.poll_read_shared(cx, buf)
    }
}

/// Reads through a shared reference, so one task can read while another
/// writes (no `tokio::io::split` lock): each read is one system call.
impl<S: ByteStream + sealed::ReadEnd> AsyncRead for &AsyncStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.poll_read_shared(cx, buf)
    }
}

impl<S: ByteStream + sealed::WriteEnd> AsyncWrite for AsyncStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_shared(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Nothing is buffered in user space.
        Poll::Ready(Ok(()))
    }

    /// `shutdown(SHUT_WR)` on a socket; nothing on a pipe, FIFO or pty,
    /// whose peer sees the end when the descriptor is dropped.
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_ref().shutdown_write())
    }
}

/// Writes through a shared reference, so one task can write while another
/// reads: each write is one system call (two tasks writing at once
/// interleave whole writes, not bytes).
impl<S: ByteStream + sealed::WriteEnd> AsyncWrite for &AsyncStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_shared(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_ref().shutdown_write())
    }
}

/// A listener [`AsyncListener`] can wrap: [`unix::Listener`],
/// [`seqpacket::Listener`] and [`tcp::Listener`]. Sealed.
pub trait Accept: sealed::Listener + Send + Sync {}

impl sealed::Listener for unix::Listener {
    type Accepted = unix::Stream;
    fn label(&self) -> String {
        crate::Endpoint::Unix(self.local_addr().clone()).to_string()
    }
    fn set_nonblocking_for_async(&self, on: bool) -> Result<()> {
        // The descriptor is always non-blocking; this makes accept say so.
        self.set_nonblocking(on);
        Ok(())
    }
    fn accept_once(&self) -> Result<unix::Stream> {
        self.accept()
    }
}
impl Accept for unix::Listener {}

impl sealed::Listener for seqpacket::Listener {
    type Accepted = seqpacket::Conn;
    fn label(&self) -> String {
        crate::Endpoint::UnixSeqpacket(self.local_addr().clone()).to_string()
    }
    fn set_nonblocking_for_async(&self, on: bool) -> Result<()> {
        self.set_nonblocking(on);
        Ok(())
    }
    fn accept_once(&self) -> Result<seqpacket::Conn> {
        self.accept()
    }
}
impl Accept for seqpacket::Listener {}

impl sealed::Listener for tcp::Listener {
    type Accepted = (tcp::Stream, SocketAddr);
    fn label(&self) -> String {
        self.object().to_owned()
    }
    fn set_nonblocking_for_async(&self, on: bool) -> Result<()> {
        self.set_nonblocking(on)
    }
    fn accept_once(&self) -> Result<(tcp::Stream, SocketAddr)> {
        self.accept()
    }
}
impl Accept for tcp::Listener {}

/// A UNIX stream, seqpacket or TCP listener with an async
/// [`accept`](Self::accept).
///
/// # Examples
///
/// ```
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use unipc::asynch::{AsyncListener, AsyncStream};
/// use unipc::stream::tcp;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let listener = AsyncListener::new(tcp::Listener::bind_addr("127.0.0.1:0".parse()?)?)?;
/// let addr = listener.get_ref().local_addr()?;
/// let client = std::thread::spawn(move || -> std::io::Result<()> {
///     use std::io::Write;
///     tcp::Stream::connect_addr(addr)?.write_all(b"hi")
/// });
/// let (stream, _peer) = listener.accept().await?;
/// let mut stream = AsyncStream::new(stream)?;
/// let mut got = Vec::new();
/// stream.read_to_end(&mut got).await?;
/// assert_eq!(got, b"hi");
/// client.join().unwrap()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AsyncListener<L: Accept> {
    fd: AsyncFd<Registered<L>>,
    label: String,
}

impl<L: Accept> fmt::Debug for AsyncListener<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncListener")
            .field("listener", &self.label)
            .finish()
    }
}

impl<L: Accept> AsyncListener<L> {
    /// `fcntl(O_NONBLOCK)` + `epoll_ctl(ADD)`—makes `listener` async.
    ///
    /// # Errors
    /// [`Error::Os`](crate::Error::Os) from `fcntl`, or from the registration (outside a
    /// tokio runtime with its I/O driver enabled).
    pub fn new(listener: L) -> Result<AsyncListener<L>> {
        listener.set_nonblocking_for_async(true)?;
        let label = listener.label();
        Ok(AsyncListener {
            fd: register(listener, &label)?,
            label,
        })
    }

    /// The blocking listener inside (non-blocking now).
    pub fn get_ref(&self) -> &L {
        self.fd.get_ref().get()
    }

    /// Deregisters the listener and gives it back with a blocking
    /// `accept` again.
    ///
    /// # Errors
    /// [`Error::Os`](crate::Error::Os) from `fcntl`.
    pub fn into_inner(self) -> Result<L> {
        let listener = self.fd.into_inner().into_inner();
        listener.set_nonblocking_for_async(false)?;
        Ok(listener)
    }

    /// `accept4(SOCK_CLOEXEC)`—waits for the next connection and returns
    /// it as the blocking listener does (wrap it in [`AsyncStream::new`],
    /// or a seqpacket one in [`super::FdMessenger::new`]).
    ///
    /// Cancellation safe: a dropped future accepted nothing.
    ///
    /// # Errors
    /// [`Error::Os`](crate::Error::Os) from `accept`, or from the reactor.
    pub async fn accept(&self) -> Result<L::Accepted> {
        loop {
            let mut guard = self
                .fd
                .readable()
                .await
                .map_err(|e| reactor_error(&self.label, e))?;
            match guard.get_inner().get().accept_once() {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => guard.clear_ready(),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }
}
