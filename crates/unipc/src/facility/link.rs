//! The two generic [`Link`]s every facility's connector builds on: one over
//! a byte stream, one over a [`Messenger`].

use std::io::{self, Read, Write};
use std::os::fd::AsFd;

use super::{Link, RawIo};
use crate::error::ObjectName;
use crate::message::{Messenger, Tag, Wait};
use crate::{Error, Result};

/// Which raw calls a stream link's descriptors take.
#[derive(Clone, Copy, Debug)]
pub(crate) enum StreamCalls {
    /// read(2)/write(2): pipes, FIFOs.
    ReadWrite,
    /// recv(2)/send(2): sockets.
    SendRecv,
}

/// A link over a reading half and a writing half of byte streams.
pub(crate) struct StreamLink<R, W> {
    object: ObjectName,
    reader: R,
    writer: W,
    calls: StreamCalls,
}

impl<R, W> StreamLink<R, W>
where
    R: Read + AsFd + Send,
    W: Write + AsFd + Send,
{
    pub(crate) fn new(
        object: impl Into<ObjectName>,
        reader: R,
        writer: W,
        calls: StreamCalls,
    ) -> Self {
        StreamLink {
            object: object.into(),
            reader,
            writer,
            calls,
        }
    }
}

impl<R, W> Link for StreamLink<R, W>
where
    R: Read + AsFd + Send,
    W: Write + AsFd + Send,
{
    fn send(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            match self.writer.write(data) {
                Ok(0) => {
                    return Err(Error::os(
                        &self.object,
                        "write",
                        io::Error::from(io::ErrorKind::WriteZero),
                    ))
                }
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::hint::spin_loop(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::os(&self.object, "write", e)),
            }
        }
        Ok(())
    }

    fn recv(&mut self, mut buf: &mut [u8]) -> Result<()> {
        while !buf.is_empty() {
            match self.reader.read(buf) {
                Ok(0) => {
                    let eof =
                        io::Error::new(io::ErrorKind::UnexpectedEof, "the peer closed its end");
                    return Err(Error::os(&self.object, "read", eof));
                }
                Ok(n) => buf = &mut buf[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::hint::spin_loop(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::os(&self.object, "read", e)),
            }
        }
        Ok(())
    }

    fn set_nonblocking(&mut self, nonblocking: bool) -> Result<()> {
        for fd in [self.reader.as_fd(), self.writer.as_fd()] {
            crate::sys::fd::set_nonblocking(fd, nonblocking)
                .map_err(|e| Error::os(&self.object, "fcntl", e))?;
        }
        Ok(())
    }

    fn raw(&self) -> RawIo<'_> {
        let (read, write) = (self.reader.as_fd(), self.writer.as_fd());
        match self.calls {
            StreamCalls::ReadWrite => RawIo::ReadWrite { read, write },
            StreamCalls::SendRecv => RawIo::SendRecv { read, write },
        }
    }
}

/// A link over a sending and a receiving [`Messenger`] (the same kind of
/// object, or two objects, one per direction).
pub(crate) struct MessageLink<T, U> {
    tx: T,
    rx: U,
    wait: Wait,
    raw: for<'a> fn(&'a T, &'a U) -> RawIo<'a>,
    /// Room for any message `rx` can deliver
    /// ([`Messenger::recv_buffer_hint`]), for a facility that refuses a
    /// smaller receive buffer whatever the size of the message waiting
    /// (POSIX queues); empty when `rx` receives straight into the caller's
    /// buffer ([`MessageLink::direct`]).
    scratch: Vec<u8>,
}

impl<T, U> MessageLink<T, U>
where
    T: Messenger + Send,
    U: Messenger + Send,
{
    /// A link that receives into room for any message `rx` can deliver,
    /// then copies the message out, as the raw loop does for queues.
    pub(crate) fn new(tx: T, rx: U, raw: for<'a> fn(&'a T, &'a U) -> RawIo<'a>) -> Result<Self> {
        let scratch = vec![0; rx.recv_buffer_hint()?];
        Ok(MessageLink {
            tx,
            rx,
            wait: Wait::Forever,
            raw,
            scratch,
        })
    }

    /// A link that receives each unit straight into the caller's buffer
    /// with [`Messenger::recv_into_or_discard`], for a facility whose
    /// receive takes a buffer of any size in one call (sockets, System V
    /// queues). A unit longer than expected is reported (and, on a socket,
    /// discarded): the link fails either way.
    pub(crate) fn direct(tx: T, rx: U, raw: for<'a> fn(&'a T, &'a U) -> RawIo<'a>) -> Self {
        MessageLink {
            tx,
            rx,
            wait: Wait::Forever,
            raw,
            scratch: Vec::new(),
        }
    }
}

impl<T, U> Link for MessageLink<T, U>
where
    T: Messenger + Send,
    U: Messenger + Send,
{
    fn send(&mut self, data: &[u8]) -> Result<()> {
        loop {
            match self.tx.send_tagged(data, Tag::None, self.wait) {
                Err(Error::Full { .. }) => std::hint::spin_loop(),
                other => return other,
            }
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<()> {
        let via_scratch = buf.len() < self.scratch.len();
        let got = loop {
            let got = if via_scratch {
                self.rx.recv_into(&mut self.scratch, self.wait)
            } else if self.scratch.is_empty() {
                self.rx.recv_into_or_discard(buf, self.wait)
            } else {
                self.rx.recv_into(buf, self.wait)
            };
            match got {
                Err(Error::Empty { .. }) => std::hint::spin_loop(),
                other => break other?,
            }
        };
        if got.len != buf.len() {
            let wrong = io::Error::new(
                io::ErrorKind::InvalidData,
                format!("expected a message of {} bytes, got {}", buf.len(), got.len),
            );
            return Err(Error::os(self.rx.object(), "receive", wrong));
        }
        if via_scratch {
            buf.copy_from_slice(&self.scratch[..got.len]);
        }
        Ok(())
    }

    fn set_nonblocking(&mut self, nonblocking: bool) -> Result<()> {
        self.tx.set_polling(nonblocking)?;
        self.rx.set_polling(nonblocking)?;
        self.wait = if nonblocking {
            Wait::Never
        } else {
            Wait::Forever
        };
        Ok(())
    }

    fn raw(&self) -> RawIo<'_> {
        (self.raw)(&self.tx, &self.rx)
    }
}

/// A stream link over one two-way socket: the writing half is a
/// close-on-exec duplicate of the same descriptor.
pub(crate) fn socket_link<S>(object: impl Into<ObjectName>, socket: S) -> Result<Box<dyn Link>>
where
    S: Read
        + Write
        + AsFd
        + TryFrom<std::os::fd::OwnedFd, Error = crate::AdoptError>
        + Send
        + 'static,
{
    let object = object.into();
    let copy = rustix::io::fcntl_dupfd_cloexec(socket.as_fd(), 0)
        .map_err(|e| Error::os(&object, "dup", e))?;
    Ok(Box::new(StreamLink::new(
        object,
        socket,
        S::try_from(copy)?,
        StreamCalls::SendRecv,
    )))
}
