//! Opening the reading and the writing side of a byte-stream endpoint, with
//! an optional bound on how long to wait for the peer.

use std::io::{Read, Write};
use std::thread::sleep;
use std::time::{Duration, Instant};

use unipc::stream::{fifo, tcp, unix};
use unipc::Endpoint;

/// How often a bounded wait retries a peer that is not there yet.
const RETRY: Duration = Duration::from_millis(10);

/// A boxed reading side.
pub type Reading = Box<dyn Read>;
/// A boxed writing side.
pub type Writing = Box<dyn Write>;

fn timed_out(endpoint: &Endpoint, timeout: Duration) -> unipc::Error {
    unipc::Error::TimedOut {
        object: endpoint.to_string(),
        timeout,
    }
}

/// Retries `attempt` while it fails with an errno in `absent` (the peer is
/// not there yet) until `timeout`; without a timeout, tries once.
pub fn retry<T>(
    endpoint: &Endpoint,
    timeout: Option<Duration>,
    absent: &[i32],
    mut attempt: impl FnMut() -> unipc::Result<T>,
) -> unipc::Result<T> {
    let Some(timeout) = timeout else {
        return attempt();
    };
    let deadline = Instant::now() + timeout;
    loop {
        match attempt() {
            Err(err) if err.raw_os_error().is_some_and(|e| absent.contains(&e)) => {
                if Instant::now() >= deadline {
                    return Err(timed_out(endpoint, timeout));
                }
                sleep(RETRY);
            }
            other => return other,
        }
    }
}

/// The reading side of a stream endpoint: a FIFO opened for reading, or a
/// socket bound, listening, and one peer accepted. `None` when the
/// endpoint is not a byte stream.
pub fn open_reading(
    endpoint: &Endpoint,
    timeout: Option<Duration>,
) -> Option<unipc::Result<Reading>> {
    Some(match endpoint {
        Endpoint::Fifo(path) => open_fifo_reader(endpoint, path.as_path(), timeout),
        Endpoint::Tcp(host_port) => tcp::Listener::bind(host_port).and_then(|listener| {
            let (stream, _) = match timeout {
                Some(t) => listener.accept_timeout(t)?,
                None => listener.accept()?,
            };
            Ok(Box::new(stream) as Reading)
        }),
        Endpoint::Unix(addr) => unix::Listener::bind(addr).and_then(|listener| {
            let stream = match timeout {
                Some(t) => listener.accept_timeout(t)?,
                None => listener.accept()?,
            };
            Ok(Box::new(stream) as Reading)
        }),
        _ => return None,
    })
}

fn open_fifo_reader(
    endpoint: &Endpoint,
    path: &std::path::Path,
    timeout: Option<Duration>,
) -> unipc::Result<Reading> {
    let Some(timeout) = timeout else {
        return Ok(Box::new(fifo::Reader::open(path)?));
    };
    // A non-blocking open of the read end succeeds at once; then wait for
    // a writer (data or its departure) within the bound.
    let reader = fifo::OpenOptions::new()
        .nonblocking(true)
        .open_reader(path)?;
    if !reader.wait_readable(Some(timeout))? {
        return Err(timed_out(endpoint, timeout));
    }
    reader.set_nonblocking(false)?;
    Ok(Box::new(reader))
}

/// The writing side of a stream endpoint: a FIFO opened for writing, or a
/// socket connected. `None` when the endpoint is not a byte stream.
pub fn open_writing(
    endpoint: &Endpoint,
    timeout: Option<Duration>,
) -> Option<unipc::Result<Writing>> {
    Some(match endpoint {
        Endpoint::Fifo(path) => match timeout {
            None => fifo::Writer::open(path.as_path()).map(|w| Box::new(w) as Writing),
            Some(_) => retry(endpoint, timeout, &[ENXIO], || {
                let writer = fifo::OpenOptions::new()
                    .nonblocking(true)
                    .open_writer(path.as_path())?;
                writer.set_nonblocking(false)?;
                Ok(Box::new(writer) as Writing)
            }),
        },
        Endpoint::Tcp(host_port) => retry(endpoint, timeout, &[ECONNREFUSED], || {
            Ok(Box::new(tcp::Stream::connect(host_port)?) as Writing)
        }),
        Endpoint::Unix(addr) => retry(endpoint, timeout, &[ECONNREFUSED, ENOENT], || {
            Ok(Box::new(unix::Stream::connect(addr)?) as Writing)
        }),
        _ => return None,
    })
}

/// A socket address with nobody listening (or bound) there yet.
pub const ECONNREFUSED: i32 = rustix::io::Errno::CONNREFUSED.raw_os_error();
/// A socket path not bound yet.
pub const ENOENT: i32 = rustix::io::Errno::NOENT.raw_os_error();
const ENXIO: i32 = rustix::io::Errno::NXIO.raw_os_error();
