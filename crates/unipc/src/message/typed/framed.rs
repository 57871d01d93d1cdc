//! Typed values over a byte stream: each value a frame of a 4-byte
//! little-endian length, then the typed message (header and encoded value)
//! of that length.

use std::fmt;
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::os::fd::{BorrowedFd, OwnedFd};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::codec::{self, Encoding, Expect, TypeTag, HEADER_LEN};
use crate::error::ObjectName;
use crate::stream::unix;
use crate::{Error, Result};

/// The length of the prefix in front of each frame.
pub const FRAME_PREFIX_LEN: usize = 4;
/// The largest frame a [`Framed`] accepts unless told otherwise: 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 << 20;

/// Typed values of `T` over the byte stream `S` (any [`Read`] and/or
/// [`Write`]: a pipe end, a FIFO, a UNIX or TCP stream, a
/// [`StreamHandle`](crate::open::StreamHandle)).
///
/// Each value is one frame: a 4-byte little-endian length, then a typed
/// message of that many bytes (see the [module docs](super)). A received
/// length above [`Framed::max_frame_size`] is refused before anything is
/// allocated for it; after that error, as after a frame cut short, the
/// stream's framing is lost and it should be closed.
///
/// # Examples
/// ```
/// use unipc::message::typed::Framed;
/// use unipc::stream::pipe;
///
/// let (tx, rx) = pipe::new()?;
/// let mut tx = Framed::<_, (u8, String)>::new(tx).named("pipe");
/// let mut rx = Framed::<_, (u8, String)>::new(rx).named("pipe");
/// tx.send(&(1, "one".into()))?;
/// drop(tx);
/// assert_eq!(rx.recv()?, Some((1, "one".into())));
/// assert_eq!(rx.recv()?, None, "a clean end of stream between frames");
/// # Ok::<(), unipc::Error>(())
/// ```
pub struct Framed<S, T> {
    stream: S,
    object: ObjectName,
    type_tag: Option<TypeTag>,
    encoding: Encoding,
    max_frame: usize,
    buf: Vec<u8>,
    _type: PhantomData<fn(T) -> T>,
}

impl<S: fmt::Debug, T> fmt::Debug for Framed<S, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Framed")
            .field("stream", &self.stream)
            .field("object", &self.object)
            .field("type", &std::any::type_name::<T>())
            .field("type_tag", &self.type_tag)
            .field("encoding", &self.encoding)
            .field("max_frame", &self.max_frame)
            .finish()
    }
}

impl<S, T> Framed<S, T> {
    /// Typed frames over `stream`, untagged, frames of at most
    /// [`DEFAULT_MAX_FRAME`] bytes, errors naming it `stream`.
    pub fn new(stream: S) -> Framed<S, T> {
        Framed {
            stream,
            object: super::stream_name(),
            type_tag: None,
            encoding: Encoding::default(),
            max_frame: DEFAULT_MAX_FRAME,
            buf: Vec::new(),
            _type: PhantomData,
        }
    }

    /// Names the stream in errors (`unix:/run/app.sock`).
    pub fn named(mut self, name: impl Into<ObjectName>) -> Framed<S, T> {
        self.object = name.into();
        self
    }

    /// Sends `tag` in every frame and refuses a frame without it.
    pub fn with_type_tag(mut self, tag: TypeTag) -> Framed<S, T> {
        self.type_tag = Some(tag);
        self
    }

    /// Encodes what this end sends as `encoding` (by default
    /// [`Encoding::MessagePack`]); either is decoded, as the header says.
    pub fn with_encoding(mut self, encoding: Encoding) -> Framed<S, T> {
        self.encoding = encoding;
        self
    }

    /// Sets the largest frame (header included, prefix not) either way: a
    /// larger value is not sent, a larger declared length not read.
    pub fn max_frame_size(mut self, max: usize) -> Framed<S, T> {
        self.max_frame = max.clamp(codec::HEADER_LEN, u32::MAX as usize);
        self
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream underneath, mutably (writing to it breaks the framing).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The stream underneath.
    pub fn into_inner(self) -> S {
        self.stream
    }

    fn io_error(&self, op: &'static str, err: io::Error) -> Error {
        Error::os(&self.object, op, err)
    }
}

impl<S: Write, T: Serialize> Framed<S, T> {
    /// Encodes `value` and writes it as one frame, in one `write_all`.
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`] naming the frame's size and
    /// [`Framed::max_frame_size`], before anything is written;
    /// [`Error::Os`] from the write (nothing, or a part of the frame, was
    /// written: close the stream); [`Error::Unsupported`] when `value`'s
    /// `Serialize` fails.
    pub fn send(&mut self, value: &T) -> Result<()> {
        let buf = self.frame(value, 0)?;
        let sent = super::write_all(&mut self.stream, &buf)
            .map_err(|e| Error::os(&self.object, "write", e));
        self.buf = buf;
        sent
    }

    /// Encodes `value` (saying `fds` descriptors go with it) into the
    /// frame buffer, prefix included, and checks the frame's size.
    fn frame(&mut self, value: &T, fds: usize) -> Result<Vec<u8>> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.extend_from_slice(&[0; FRAME_PREFIX_LEN]);
        if let Err(err) = codec::encode_into(
            &|| self.object.clone(),
            value,
            self.type_tag,
            fds,
            self.encoding,
            &mut buf,
        ) {
            self.buf = buf;
            return Err(err);
        }
        let len = buf.len() - FRAME_PREFIX_LEN;
        if len > self.max_frame {
            self.buf = buf;
            return Err(Error::MessageTooLarge {
                object: self.object.clone(),
                size: len,
                limit: self.max_frame,
            });
        }
        // `max_frame` is at most u32::MAX.
        buf[..FRAME_PREFIX_LEN].copy_from_slice(&(len as u32).to_le_bytes());
        Ok(buf)
    }
}

impl<T: Serialize> Framed<unix::Stream, T> {
    /// `sendmsg(SCM_RIGHTS)`—writes `value` as one frame with duplicates of
    /// `fds` attached to its first byte, for [`Framed::recv_with_fds`].
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] for more than [`super::MAX_FDS`]
    /// descriptors and [`Error::MessageTooLarge`], before anything is
    /// written; as [`Framed::send`].
    ///
    /// # Examples
    /// ```
    /// use std::io::{Read, Seek, Write};
    /// use std::os::fd::AsFd;
    /// use unipc::message::typed::Framed;
    /// use unipc::stream::unix;
    ///
    /// let (a, b) = unix::pair()?;
    /// let (mut tx, mut rx) = (Framed::<_, u32>::new(a), Framed::<_, u32>::new(b));
    /// let mut file = tempfile::tempfile()?;
    /// file.write_all(b"shared")?;
    /// tx.send_with_fds(&42, &[file.as_fd()])?;
    /// let (value, fds) = rx.recv_with_fds(1)?.expect("a frame");
    /// let mut got = std::fs::File::from(fds.into_iter().next().unwrap());
    /// got.rewind()?;
    /// let mut text = String::new();
    /// got.read_to_string(&mut text)?;
    /// assert_eq!((value, text.as_str()), (42, "shared"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias = "SCM_RIGHTS")]
    pub fn send_with_fds(&mut self, value: &T, fds: &[BorrowedFd<'_>]) -> Result<()> {
        if fds.len() > super::MAX_FDS {
            return Err(Error::LimitExceeded {
                object: self.object.clone(),
                what: "descriptors in one message",
                requested: fds.len() as u64,
                limit: super::MAX_FDS as u64,
                set_in: "SCM_MAX_FD, fixed in the kernel",
            });
        }
        let buf = self.frame(value, fds.len())?;
        let sent = self.stream.send_with_fds(&buf, fds).and_then(|n| {
            super::write_all(&mut self.stream, &buf[n..])
                .map_err(|e| Error::os(&self.object, "write", e))
        });
        self.buf = buf;
        sent
    }
}

impl<T: DeserializeOwned> Framed<unix::Stream, T> {
    /// `recvmsg(MSG_CMSG_CLOEXEC)`—reads one frame and the descriptors sent
    /// with it (close-on-exec), accepting at most `max_fds`; `None` at the
    /// end of the stream between frames.
    ///
    /// # Errors
    /// [`Error::TooManyFds`] when more than `max_fds` came (or the kernel
    /// had to drop some, `MSG_CTRUNC`): all are closed and the framing is
    /// lost. [`Error::TypedMismatch`] when the header's count differs from
    /// what arrived; as [`Framed::recv`].
    pub fn recv_with_fds(&mut self, max_fds: usize) -> Result<Option<(T, Vec<OwnedFd>)>> {
        // The descriptors come with the frame's first byte: read the prefix
        // and the header with recvmsg, the rest as bytes.
        let mut head = [0u8; FRAME_PREFIX_LEN + HEADER_LEN];
        let mut have = 0;
        let mut fds = Vec::new();
        while have < head.len() {
            let room = max_fds.min(super::MAX_FDS).saturating_sub(fds.len());
            let (n, got) = self.stream.recv_with_fds(&mut head[have..], room)?;
            fds.extend(got);
            match n {
                0 if have == 0 && fds.is_empty() => return Ok(None),
                0 => return Err(self.cut_short(have, None)),
                n => have += n,
            }
        }
        let mut prefix = [0u8; FRAME_PREFIX_LEN];
        prefix.copy_from_slice(&head[..FRAME_PREFIX_LEN]);
        let len = self.check_len(prefix)?;
        if len < HEADER_LEN {
            // Too short to hold a header: what was read is the frame and
            // more; decode what belongs to it for the error.
            let expect = Expect {
                type_tag: self.type_tag,
                fds: fds.len(),
            };
            let frame = &head[FRAME_PREFIX_LEN..FRAME_PREFIX_LEN + len];
            return codec::decode_checked(&|| self.object.clone(), frame, expect)
                .map(|(_, v)| Some((v, fds)));
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.extend_from_slice(&head[FRAME_PREFIX_LEN..]);
        let got = self.read_rest(&mut buf, len).and_then(|()| {
            let expect = Expect {
                type_tag: self.type_tag,
                fds: fds.len(),
            };
            codec::decode_checked(&|| self.object.clone(), &buf, expect).map(|(_, value)| value)
        });
        self.buf = buf;
        got.map(|value| Some((value, fds)))
    }
}

impl<S: Read, T: DeserializeOwned> Framed<S, T> {
    /// Reads one frame and decodes it; `None` at the end of the stream
    /// between frames.
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`] when the declared length exceeds
    /// [`Framed::max_frame_size`] (nothing allocated for it);
    /// [`Error::Os`] with [`io::ErrorKind::UnexpectedEof`] for a frame cut
    /// short; [`Error::TypedMismatch`] and [`Error::Undecodable`] (with the
    /// frame's bytes) as [`super::Typed::recv_tagged`].
    pub fn recv(&mut self) -> Result<Option<T>> {
        let mut prefix = [0u8; FRAME_PREFIX_LEN];
        let mut have = 0;
        while have < prefix.len() {
            match self.stream.read(&mut prefix[have..]) {
                Ok(0) if have == 0 => return Ok(None),
                Ok(0) => {
                    return Err(self.io_error(
                        "read",
                        io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("the stream ended {have} bytes into a frame's length"),
                        ),
                    ))
                }
                Ok(n) => have += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error("read", e)),
            }
        }
        let len = self.check_len(prefix)?;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let got = self.read_rest(&mut buf, len).and_then(|()| {
            let expect = Expect {
                type_tag: self.type_tag,
                fds: 0,
            };
            codec::decode_checked(&|| self.object.clone(), &buf, expect)
                .map(|(_, value)| Some(value))
        });
        self.buf = buf;
        got
    }
}

impl<S: Read, T> Framed<S, T> {
    /// The frame length a prefix declares, refused above the maximum
    /// before anything is allocated.
    fn check_len(&self, prefix: [u8; FRAME_PREFIX_LEN]) -> Result<usize> {
        let len = u32::from_le_bytes(prefix) as usize;
        if len > self.max_frame {
            return Err(Error::MessageTooLarge {
                object: self.object.clone(),
                size: len,
                limit: self.max_frame,
            });
        }
        Ok(len)
    }

    /// Reads the frame's bytes after those already in `buf`, up to `len`.
    /// Grows as bytes arrive: a peer that declares a large frame and stops
    /// costs what it sent, not what it declared.
    fn read_rest(&mut self, buf: &mut Vec<u8>, len: usize) -> Result<()> {
        let want = len - buf.len();
        let got = (&mut self.stream)
            .take(want as u64)
            .read_to_end(buf)
            .map_err(|e| self.io_error("read", e))?;
        if got < want {
            return Err(self.cut_short(buf.len(), Some(len)));
        }
        Ok(())
    }

    fn cut_short(&self, got: usize, len: Option<usize>) -> Error {
        let text = match len {
            Some(len) => format!("the stream ended {got} bytes into a frame of {len}"),
            None => format!("the stream ended {got} bytes into a frame"),
        };
        self.io_error("read", io::Error::new(io::ErrorKind::UnexpectedEof, text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_in_memory() {
        let mut wire = Vec::new();
        let mut tx = Framed::<_, Vec<String>>::new(&mut wire);
        tx.send(&vec!["a".into(), "b".into()]).unwrap();
        tx.send(&vec![]).unwrap();
        let mut rx = Framed::<_, Vec<String>>::new(&wire[..]);
        assert_eq!(rx.recv().unwrap(), Some(vec!["a".into(), "b".into()]));
        assert_eq!(rx.recv().unwrap(), Some(vec![]));
        assert_eq!(rx.recv().unwrap(), None);
    }

    #[test]
    fn a_declared_length_over_the_max_is_refused_before_reading() {
        let wire = [0xff, 0xff, 0xff, 0xff, 1, 2, 3];
        let mut rx = Framed::<_, u8>::new(&wire[..]).max_frame_size(1024);
        match rx.recv() {
            Err(Error::MessageTooLarge { size, limit, .. }) => {
                assert_eq!((size, limit), (u32::MAX as usize, 1024))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_frame_cut_short_is_unexpected_eof() {
        let mut wire = Vec::new();
        Framed::<_, String>::new(&mut wire)
            .send(&"hello".into())
            .unwrap();
        for cut in [2, wire.len() - 1] {
            let mut rx = Framed::<_, String>::new(&wire[..cut]);
            match rx.recv() {
                Err(Error::Os { source, .. }) => {
                    assert_eq!(source.kind(), io::ErrorKind::UnexpectedEof)
                }
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_value_over_the_max_is_not_written() {
        let mut wire = Vec::new();
        let mut tx = Framed::<_, String>::new(&mut wire).max_frame_size(32);
        match tx.send(&"x".repeat(100)) {
            Err(Error::MessageTooLarge {
                size, limit: 32, ..
            }) => assert!(size > 100),
            other => panic!("{other:?}"),
        }
        drop(tx);
        assert!(wire.is_empty());
    }
}
