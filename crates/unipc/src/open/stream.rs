//! [`StreamHandle`]: any byte-stream endpoint, opened, behind one type.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use crate::deadline::Deadline;
use crate::error::ObjectName;
use crate::stream::{fifo, tcp, unix};
use crate::sys;
use crate::{Error, Result};

/// One side of a byte-stream endpoint, opened by
/// [`OpenOptions`](super::OpenOptions): a FIFO end, or a connected UNIX or
/// TCP stream socket.
///
/// It implements [`Read`], [`Write`] and [`AsFd`]. A FIFO's read end is not
/// writable (and its write end not readable): the call fails with
/// [`io::ErrorKind::Unsupported`].
///
/// With a [stall timeout](Self::set_stall_timeout), no read or write waits
/// longer than that for progress: a peer that stops (SIGSTOP, a hung
/// process) gives [`Error::TimedOut`] as an [`io::ErrorKind::TimedOut`]
/// error instead of blocking forever.
///
/// # Examples
/// ```
/// use std::io::{Read, Write};
/// use std::time::Duration;
/// use unipc::open::OpenOptions;
///
/// let dir = tempfile::tempdir()?;
/// let endpoint: unipc::Endpoint = format!("unix:{}/s.sock", dir.path().display()).parse()?;
/// let options = OpenOptions::new().timeout(Duration::from_secs(5));
/// let listener = options.listen(&endpoint)?;
/// let mut tx = options.connect(&endpoint)?.into_stream().unwrap();
/// let mut rx = listener.accept()?.into_stream().unwrap();
/// // The receiver reads to the end and closes; finish() waits for that.
/// let reader = std::thread::spawn(move || {
///     let mut got = Vec::new();
///     rx.read_to_end(&mut got).map(|_| got)
/// });
/// tx.write_all(b"hi")?;
/// tx.finish()?;
/// assert_eq!(reader.join().unwrap()?, b"hi");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct StreamHandle {
    end: End,
    stall: Option<Duration>,
}

enum End {
    FifoReader(fifo::Reader),
    FifoWriter(fifo::Writer),
    /// With its endpoint, for errors.
    Unix(unix::Stream, String),
    Tcp(tcp::Stream),
}

impl StreamHandle {
    /// This stream awaited (feature `tokio`): its descriptor registered
    /// with the running runtime and switched to non-blocking. The stall
    /// timeout does not carry over: bound an await with
    /// `tokio::time::timeout` instead.
    ///
    /// # Errors
    /// When the descriptor cannot be registered (no tokio runtime with IO
    /// enabled is running) or switched.
    #[cfg(feature = "tokio")]
    pub fn into_async(self) -> Result<crate::asynch::AsyncStreams> {
        use crate::asynch::{AsyncStream, AsyncStreams};
        Ok(match self.end {
            End::FifoReader(r) => AsyncStreams::FifoReader(AsyncStream::new(r)?),
            End::FifoWriter(w) => AsyncStreams::FifoWriter(AsyncStream::new(w)?),
            End::Unix(s, _) => AsyncStreams::Unix(AsyncStream::new(s)?),
            End::Tcp(s) => AsyncStreams::Tcp(AsyncStream::new(s)?),
        })
    }

    pub(crate) fn fifo_reader(reader: fifo::Reader) -> Self {
        Self::of(End::FifoReader(reader))
    }

    pub(crate) fn fifo_writer(writer: fifo::Writer) -> Self {
        Self::of(End::FifoWriter(writer))
    }

    pub(crate) fn unix(stream: unix::Stream, object: ObjectName) -> Self {
        Self::of(End::Unix(stream, object.to_string()))
    }

    pub(crate) fn tcp(stream: tcp::Stream) -> Self {
        Self::of(End::Tcp(stream))
    }

    fn of(end: End) -> Self {
        StreamHandle { end, stall: None }
    }

    /// The endpoint as errors name it (`fifo:/tmp/f`, `tcp:[::1]:80`).
    pub fn object(&self) -> &str {
        match &self.end {
            End::FifoReader(r) => r.object(),
            End::FifoWriter(w) => w.object(),
            End::Unix(_, object) => object,
            End::Tcp(s) => s.object(),
        }
    }

    /// The largest write that reaches the reader whole, never interleaved
    /// with another writer's: `PIPE_BUF` for a FIFO, `None` for a socket
    /// (one connection has one writer).
    pub fn atomic_write_size(&self) -> Option<usize> {
        match self.end {
            End::FifoWriter(_) | End::FifoReader(_) => Some(crate::stream::pipe::PIPE_BUF),
            End::Unix(..) | End::Tcp(_) => None,
        }
    }

    /// Bounds every later read and write: each waits at most `stall` for
    /// progress (`None`: no bound, the default). Makes the descriptor
    /// non-blocking while a bound is set.
    ///
    /// On a TCP stream the bound is also the connection's user timeout
    /// ([`tcp::TcpOptions::user_timeout`]): data the peer host leaves
    /// unacknowledged that long makes the kernel close the connection, and
    /// the read or write fails with [`Error::PeerUnresponsive`], which says
    /// more than a stall would. `None` restores the system's limit.
    ///
    /// # Errors
    /// [`Error::Os`] from `fcntl` or `setsockopt`.
    pub fn set_stall_timeout(&mut self, stall: Option<Duration>) -> Result<()> {
        sys::fd::set_nonblocking(self.as_fd(), stall.is_some())
            .map_err(|e| Error::os(self.object(), "fcntl(F_SETFL)", e))?;
        if let End::Tcp(s) = &self.end {
            s.set_user_timeout(stall)?;
        }
        self.stall = stall;
        Ok(())
    }

    /// Ends the sending side and confirms the receiver got everything: a
    /// socket's write side is shut down, then this waits (within the stall
    /// timeout) for the peer to close, and fails if the peer reset the
    /// connection or died with data unread. A FIFO has no such signal:
    /// for it this only ends the write side at drop.
    ///
    /// Data the peer sends back meanwhile is read and discarded.
    ///
    /// # Errors
    /// - [`Error::Os`] with `ECONNRESET` or `EPIPE` when the peer went away
    ///   before reading everything;
    /// - [`Error::TimedOut`] when the peer neither closes nor reads within
    ///   the stall timeout.
    pub fn finish(&mut self) -> Result<()> {
        match &self.end {
            End::Unix(s, _) => s.shutdown(Shutdown::Write)?,
            End::Tcp(s) => s.shutdown(Shutdown::Write)?,
            End::FifoWriter(_) | End::FifoReader(_) => return Ok(()),
        }
        let mut scrap = [0u8; 4096];
        loop {
            match self.read(&mut scrap) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(io_error(
                        self.object(),
                        "read (waiting for the peer to close)",
                        e,
                    ))
                }
            }
        }
        // The peer's close can arrive before the reset our unread data
        // provoked: the reset is then left as the socket's pending error.
        match sys::fd::take_socket_error(self.as_fd()) {
            Ok(None) => Ok(()),
            Ok(Some(err)) => Err(Error::os(self.object(), "close", err)
                .with_hint("the peer went away before reading everything that was sent")),
            Err(err) => Err(Error::os(self.object(), "getsockopt(SO_ERROR)", err)),
        }
    }

    fn timed_out(&self) -> io::Error {
        Error::TimedOut {
            object: self.object().into(),
            timeout: self.stall.unwrap_or_default(),
        }
        .into()
    }

    /// Runs `op`; while it would block under a stall bound, waits for
    /// `events` at most that long each time.
    fn bounded<T>(
        &mut self,
        events: rustix::event::PollFlags,
        mut op: impl FnMut(&mut End) -> io::Result<T>,
    ) -> io::Result<T> {
        loop {
            match op(&mut self.end) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let Some(stall) = self.stall else {
                        return Err(e);
                    };
                    let ready = sys::poll::wait(self.as_fd(), events, Deadline::after(stall))?;
                    if ready.is_empty() {
                        return Err(self.timed_out());
                    }
                }
                other => return other,
            }
        }
    }
}

fn io_error(object: &str, op: &'static str, err: io::Error) -> Error {
    if err.raw_os_error().is_some() {
        Error::os(object, op, err)
    } else {
        match err.into_inner().map(|inner| inner.downcast::<Error>()) {
            Some(Ok(ours)) => *ours,
            Some(Err(other)) => Error::os(object, op, io::Error::other(other)),
            None => Error::os(object, op, io::Error::other("unknown error")),
        }
    }
}

fn not_this_way(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("this FIFO end is not open for {what}"),
    )
}

impl Read for StreamHandle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.bounded(sys::poll::READABLE, |end| match end {
            End::FifoReader(r) => r.read(buf),
            End::Unix(s, _) => s.read(buf),
            End::Tcp(s) => s.read(buf),
            End::FifoWriter(_) => Err(not_this_way("reading")),
        })
    }
}

impl Write for StreamHandle {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bounded(sys::poll::WRITABLE, |end| match end {
            End::FifoWriter(w) => w.write(buf),
            End::Unix(s, _) => s.write(buf),
            End::Tcp(s) => s.write(buf),
            End::FifoReader(_) => Err(not_this_way("writing")),
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for StreamHandle {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.end {
            End::FifoReader(r) => r.as_fd(),
            End::FifoWriter(w) => w.as_fd(),
            End::Unix(s, _) => s.as_fd(),
            End::Tcp(s) => s.as_fd(),
        }
    }
}

impl fmt::Debug for StreamHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamHandle")
            .field("object", &self.object())
            .field("stall", &self.stall)
            .finish()
    }
}
