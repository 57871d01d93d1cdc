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
mod unix_core;

/// `Read` (or `Write`) for a pipe end and for a shared reference to it,
/// through the SIGPIPE-safe calls in `sys::pipe`: pipes and FIFOs are the
/// same kernel object once open, so their ends move bytes the same way.
/// The type needs an `fd: OwnedFd` field.
macro_rules! pipe_end_io {
    (read $end:ty) => {
        impl Read for $end {
            #[inline]
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                (&*self).read(buf)
            }

            fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
                (&*self).read_vectored(bufs)
            }
        }

        impl Read for &$end {
            #[inline]
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                sys::pipe::read(self.fd.as_fd(), buf)
            }

            fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
                sys::pipe::readv(self.fd.as_fd(), bufs)
            }
        }
    };
    (write $end:ty) => {
        impl Write for $end {
            #[inline]
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                (&*self).write(buf)
            }

            fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
                (&*self).write_vectored(bufs)
            }

            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }

        impl Write for &$end {
            #[inline]
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                sys::pipe::write(self.fd.as_fd(), buf)
            }

            fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
                sys::pipe::writev(self.fd.as_fd(), bufs)
            }

            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
    };
}
pub(crate) use pipe_end_io;

/// `AsFd`, `From<End> for OwnedFd` and a `Debug` showing the fields listed,
/// for a pipe or FIFO end with an `fd: OwnedFd` field.
macro_rules! fd_conversions {
    ($end:ident: $($field:ident),+) => {
        impl AsFd for $end {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.fd.as_fd()
            }
        }

        impl From<$end> for OwnedFd {
            fn from(end: $end) -> OwnedFd {
                end.fd
            }
        }

        impl fmt::Debug for $end {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($end))
                    $(.field(stringify!($field), &self.$field))+
                    .finish()
            }
        }
    };
}
pub(crate) use fd_conversions;

/// `Read` and `Write` for a type through those of a shared reference to it
/// (`impl Read for &T`, `impl Write for &T`), where the calls need no
/// exclusive access.
macro_rules! forward_io_to_ref {
    ($t:ident) => {
        impl Read for $t {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                (&*self).read(buf)
            }
        }

        impl Write for $t {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                (&*self).write(buf)
            }

            fn flush(&mut self) -> io::Result<()> {
                (&*self).flush()
            }
        }
    };
}
pub(crate) use forward_io_to_ref;
