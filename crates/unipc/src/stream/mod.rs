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

/// The methods of a UNIX listener (`unix::Listener`, `seqpacket::Listener`)
/// over the shared `unix_core::Bound`: each type accepts its own kind of
/// connection, `$conn`, built from the accepted `unix_core::Socket`. The
/// type needs an `inner: Bound` field and a `ListenerOptions` in scope.
macro_rules! unix_listener {
    ($listener:ty, $conn:ident) => {
        impl $listener {
            /// `socket` + `bind` + `listen`—binds with the default
            /// [`ListenerOptions`].
            ///
            /// # Errors
            /// As [`ListenerOptions::bind`].
            ///
            /// # References
            /// bind(2), listen(2), unix(7)
            pub fn bind(addr: &UnixAddr) -> Result<Self> {
                ListenerOptions::new().bind(addr)
            }

            /// `accept4(SOCK_CLOEXEC)`—waits for the next connection (unless
            /// [`set_nonblocking`](Self::set_nonblocking) was set).
            ///
            /// # Errors
            /// [`Error::Os`] from `accept`; when non-blocking and nobody
            /// waits, one whose kind is [`io::ErrorKind::WouldBlock`].
            ///
            /// # References
            /// accept(2)
            #[doc(alias = "accept4")]
            pub fn accept(&self) -> Result<$conn> {
                self.inner.accept().map(|inner| $conn { inner })
            }

            /// `poll` + `accept4`—waits at most `timeout` for a connection.
            ///
            /// # Errors
            /// [`Error::TimedOut`] when nobody connected in time;
            /// [`Error::Os`] from `poll` or `accept`.
            pub fn accept_timeout(&self, timeout: Duration) -> Result<$conn> {
                self.inner
                    .accept_timeout(timeout)
                    .map(|inner| $conn { inner })
            }

            /// The address it was bound to.
            pub fn local_addr(&self) -> &UnixAddr {
                self.inner.addr()
            }

            /// Makes [`accept`](Self::accept) return at once when nobody
            /// waits. No system call: the descriptor is always
            /// non-blocking, and this only says whether `accept` waits in
            /// `poll`.
            pub fn set_nonblocking(&self, nonblocking: bool) {
                self.inner.set_nonblocking(nonblocking);
            }
        }

        impl AsFd for $listener {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.inner.fd()
            }
        }
    };
}

pub(crate) use unix_listener;

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
