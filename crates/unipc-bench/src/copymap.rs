//! The "copy or map" section: is it cheaper to copy N bytes to another
//! process, or to hand them over in shared memory?
//!
//! Between this process and a peer (this binary again, role
//! [`ROLE`] after [`PEER_ARG`](crate::PEER_ARG)), for each size, four ways
//! of getting N bytes to the peer once, each timed from the first call to
//! the peer's one-byte acknowledgement after it has read (checksummed)
//! every byte:
//!
//! - `pipe`: N bytes written into a pipe, the peer reads them into its
//!   buffer; the acknowledgement comes back over the UNIX socket.
//! - `unix-stream`: the same through a UNIX stream socket (a socketpair).
//! - `fresh-memfd`: a memfd created, written (`pwrite`), sealed, its
//!   descriptor passed over the socket; the peer checks the seals, maps it,
//!   checksums every byte (every page touched), unmaps, closes and
//!   acknowledges; the parent then closes its copy, which frees it.
//! - `reused-mapping`: one memfd of the largest size, mapped on both sides
//!   before any timing; only the parent's copy into its mapping, a one-byte
//!   notification, the peer's checksum of the mapping and the
//!   acknowledgement are timed.
//!
//! A memfd has no name, so nothing this section makes can outlive the run:
//! there is nothing to announce to the interrupt clean-up but the peer.
//!
//! # Safety
//! The peer adopts the two descriptors its parent left open for it by
//! number (`OwnedFd::from_raw_fd`, as in `peer.rs`), and maps the memfds it
//! receives. Each is sealed against shrinking (`F_SEAL_SHRINK`, checked
//! before the `mmap`), so no page of the mapping can disappear (no
//! `SIGBUS`). The peer makes a `&[u8]` of the mapping only between the
//! parent's notification and its own acknowledgement, while the parent,
//! which waits for that acknowledgement, does not write: a fresh memfd is
//! sealed against writes, and the reused one is written only before the
//! notification.
#![allow(unsafe_code)]

use std::io::{BufRead, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use serde::Serialize;
use unipc::shm::memfd::{Memfd, SealedMemfd};
use unipc::shm::Access;
use unipc::stream::{pipe, unix};

use crate::peer::SectionPeer;

/// The role argument after `__bench-peer` that makes this section's peer.
pub const ROLE: &str = "copy-or-map";

/// The name `--facility` takes to run this section.
pub const SECTION: &str = "copy-or-map";

/// The sizes of a full run.
pub fn full_sizes() -> Vec<usize> {
    vec![4 << 10, 64 << 10, 1 << 20, 16 << 20, 64 << 20]
}

/// The sizes of a `--quick` run.
pub fn quick_sizes() -> Vec<usize> {
    vec![4 << 10, 1 << 20]
}

/// One way of getting N bytes to the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Copied through a pipe.
    Pipe,
    /// Copied through a UNIX stream socket.
    UnixStream,
    /// Handed over in a memfd created for it.
    FreshMemfd,
    /// Written into a mapping both sides already hold.
    ReusedMapping,
}

impl Method {
    /// Every method, in report order.
    pub const ALL: [Method; 4] = [
        Method::Pipe,
        Method::UnixStream,
        Method::FreshMemfd,
        Method::ReusedMapping,
    ];

    /// The name used in the reports.
    pub fn name(self) -> &'static str {
        match self {
            Method::Pipe => "pipe",
            Method::UnixStream => "unix-stream",
            Method::FreshMemfd => "fresh-memfd",
            Method::ReusedMapping => "reused-mapping",
        }
    }

    fn command(self) -> &'static str {
        self.name()
    }
}

/// One method at one size.
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    /// How.
    pub method: Method,
    /// Bytes handed over.
    pub size: usize,
    /// Median time of one hand-off, nanoseconds.
    pub median_ns: f64,
    /// Fastest repetition.
    pub min_ns: f64,
    /// Slowest repetition.
    pub max_ns: f64,
    /// Repetitions timed (after one untimed warm-up).
    pub repetitions: usize,
}

/// The section's results.
#[derive(Clone, Debug, Serialize)]
pub struct CopyOrMap {
    /// The sizes measured.
    pub sizes: Vec<usize>,
    /// One figure per method and size, or none when skipped.
    pub figures: Vec<Figure>,
    /// The smallest size at which a fresh memfd beats the faster copy;
    /// `null`: at none of the sizes measured.
    pub crossover_fresh: Option<usize>,
    /// The same for the reused mapping.
    pub crossover_reused: Option<usize>,
    /// Why nothing was measured, when nothing was.
    pub skipped: Option<String>,
}

impl CopyOrMap {
    /// The median of `method` at `size`.
    pub fn median(&self, method: Method, size: usize) -> Option<f64> {
        self.figures
            .iter()
            .find(|f| f.method == method && f.size == size)
            .map(|f| f.median_ns)
    }
}

/// Runs the section for `sizes`, `repetitions` timed hand-offs each, giving
/// up on further repetitions of a figure once `budget` is spent on it.
pub fn run(sizes: &[usize], repetitions: usize, budget: Duration) -> CopyOrMap {
    let mut figures = Vec::new();
    let skipped = match measure(sizes, repetitions.max(1), budget, &mut figures) {
        Ok(()) => None,
        Err(e) => {
            figures.clear();
            Some(e)
        }
    };
    let mut section = CopyOrMap {
        sizes: sizes.to_vec(),
        figures,
        crossover_fresh: None,
        crossover_reused: None,
        skipped,
    };
    section.crossover_fresh = crossover(&section, Method::FreshMemfd);
    section.crossover_reused = crossover(&section, Method::ReusedMapping);
    section
}

fn crossover(section: &CopyOrMap, method: Method) -> Option<usize> {
    section.sizes.iter().copied().find(|&size| {
        let copy = [Method::Pipe, Method::UnixStream]
            .iter()
            .filter_map(|m| section.median(*m, size))
            .fold(f64::INFINITY, f64::min);
        section.median(method, size).is_some_and(|t| t < copy)
    })
}

/// A byte-order-independent checksum that reads every byte.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().map(|&b| u64::from(b)).sum()
}

fn measure(
    sizes: &[usize],
    repetitions: usize,
    budget: Duration,
    figures: &mut Vec<Figure>,
) -> Result<(), String> {
    let max = sizes.iter().copied().max().unwrap_or(0);
    let (tx, rx) = pipe::new().map_err(|e| e.to_string())?;
    let (sock, peer_sock) = unix::pair().map_err(|e| e.to_string())?;
    let peer_pipe: OwnedFd = rx.into();
    let peer_sock: OwnedFd = peer_sock.into();
    let mut peer = {
        let mut registry = crate::interrupt::registry();
        let peer = SectionPeer::spawn(ROLE, &[max.to_string()], &[&peer_pipe, &peer_sock])
            .map_err(|e| e.to_string())?;
        registry.peer(Some(peer.child.id()));
        peer
    };
    drop(peer_pipe);
    drop(peer_sock);
    let result = drive(
        &mut peer,
        tx,
        &sock,
        sizes,
        max,
        repetitions,
        budget,
        figures,
    );
    let _ = peer.tell("quit");
    let mut registry = crate::interrupt::registry();
    if result.is_err() {
        let _ = peer.child.kill();
    }
    let _ = peer.child.wait();
    registry.peer(None);
    result
}

#[allow(clippy::too_many_arguments)]
fn drive(
    peer: &mut SectionPeer,
    mut tx: pipe::Sender,
    sock: &unix::Stream,
    sizes: &[usize],
    max: usize,
    repetitions: usize,
    budget: Duration,
    figures: &mut Vec<Figure>,
) -> Result<(), String> {
    let data: Vec<u8> = (0..max).map(|i| (i.wrapping_mul(31) >> 3) as u8).collect();
    // The reused mapping: made, mapped on both sides and faulted in once.
    let shared = Memfd::create("unipc-bench-copy-or-map", max as u64).map_err(|e| e.to_string())?;
    let mapping = shared.map(Access::ReadWrite).map_err(|e| e.to_string())?;
    mapping.write_at(0, &data).map_err(|e| e.to_string())?;
    peer.tell("setup")?;
    sock.send_with_fds(&[0], &[shared.as_fd()])
        .map_err(|e| e.to_string())?;
    peer.expect("ok")?;
    let mut ack = [0u8; 1];
    for &size in sizes {
        let expected = checksum(&data[..size]);
        for method in Method::ALL {
            let mut times = Vec::new();
            let started = Instant::now();
            // One warm-up, then the timed repetitions.
            for round in 0..=repetitions {
                if round > 1 && started.elapsed() > budget {
                    break;
                }
                peer.tell(&format!("{} {size}", method.command()))?;
                peer.expect("ready")?;
                let t0 = Instant::now();
                let mut s = sock;
                match method {
                    Method::Pipe => tx.write_all(&data[..size]).map_err(|e| e.to_string())?,
                    Method::UnixStream => s.write_all(&data[..size]).map_err(|e| e.to_string())?,
                    Method::FreshMemfd => {
                        let memfd = Memfd::create("unipc-bench-copy-or-map", size as u64)
                            .map_err(|e| e.to_string())?;
                        memfd
                            .write_at(0, &data[..size])
                            .map_err(|e| e.to_string())?;
                        let sealed = memfd.seal().map_err(|e| e.to_string())?;
                        sock.send_with_fds(&[0], &[sealed.as_fd()])
                            .map_err(|e| e.to_string())?;
                        s.read_exact(&mut ack).map_err(|e| e.to_string())?;
                        drop(sealed);
                    }
                    Method::ReusedMapping => {
                        mapping
                            .write_at(0, &data[..size])
                            .map_err(|e| e.to_string())?;
                        s.write_all(&[1]).map_err(|e| e.to_string())?;
                    }
                }
                if method != Method::FreshMemfd {
                    s.read_exact(&mut ack).map_err(|e| e.to_string())?;
                }
                let elapsed = t0.elapsed();
                let sum = peer.line()?;
                if sum != format!("sum {expected}") {
                    return Err(format!(
                        "{} {size}: the peer read {sum:?}, expected sum {expected}",
                        method.name()
                    ));
                }
                if round > 0 {
                    times.push(elapsed.as_nanos() as f64);
                }
            }
            times.sort_by(f64::total_cmp);
            figures.push(Figure {
                method,
                size,
                median_ns: times[times.len() / 2],
                min_ns: times[0],
                max_ns: times[times.len() - 1],
                repetitions: times.len(),
            });
        }
    }
    Ok(())
}

/// A read-only shared mapping of a memfd sealed against shrinking.
struct Mapped {
    ptr: *mut std::ffi::c_void,
    len: usize,
}

impl Mapped {
    fn new(fd: &impl AsFd, len: usize) -> Result<Mapped, String> {
        let seals = rustix::fs::fcntl_get_seals(fd).map_err(|e| format!("get seals: {e}"))?;
        if !seals.contains(rustix::fs::SealFlags::SHRINK) {
            return Err("the memfd is not sealed against shrinking".to_owned());
        }
        let size = rustix::fs::fstat(fd)
            .map_err(|e| format!("fstat: {e}"))?
            .st_size;
        if (size as u64) < len as u64 || len == 0 {
            return Err(format!("the memfd holds {size} bytes, not {len}"));
        }
        // SAFETY: a fresh mapping chosen by the kernel (no address given),
        // of a file at least `len` bytes long that cannot shrink.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                rustix::mm::ProtFlags::READ,
                rustix::mm::MapFlags::SHARED,
                fd,
                0,
            )
        }
        .map_err(|e| format!("mmap: {e}"))?;
        Ok(Mapped { ptr, len })
    }

    /// Checksums the first `n` bytes; see the module's Safety section for
    /// when this may be called.
    fn checksum(&self, n: usize) -> u64 {
        let n = n.min(self.len);
        // SAFETY: `ptr..ptr+len` is mapped readable for our lifetime and
        // cannot lose pages (sealed); the parent does not write it while we
        // read (it waits for our acknowledgement).
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), n) };
        checksum(bytes)
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: our own mapping, unmapped once; no slice of it outlives
        // `checksum`.
        let _ = unsafe { rustix::mm::munmap(self.ptr, self.len) };
    }
}

/// The peer's side: `args` are those after [`ROLE`].
pub fn peer_main(args: &[String], out: &mut impl Write) -> Result<(), String> {
    let [max, pipe_fd, sock_fd] = args else {
        return Err("usage: __bench-peer copy-or-map MAX PIPE_FD SOCKET_FD".to_owned());
    };
    let max: usize = max.parse().map_err(|_| format!("bad size {max:?}"))?;
    let adopt = crate::peer::adopt_passed;
    let mut rx = pipe::Receiver::try_from(adopt(pipe_fd)?).map_err(|e| e.to_string())?;
    let sock = unix::Stream::try_from(adopt(sock_fd)?).map_err(|e| e.to_string())?;
    // The receive buffer, faulted in before anything is timed.
    let mut buf = vec![1u8; max];
    let mut shared: Option<Mapped> = None;
    let say = |out: &mut dyn Write, line: &str| -> Result<(), String> {
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| e.to_string())
    };
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line.map_err(|e| e.to_string())?;
        let mut words = line.split(' ');
        let verb = words.next().unwrap_or("");
        let size: usize = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
        if size > max {
            return Err(format!("size {size} above {max}"));
        }
        let mut s = &sock;
        let sum = match verb {
            "quit" => return Ok(()),
            "setup" => {
                let (_, fds) = sock.recv_with_fds(&mut [0], 1).map_err(|e| e.to_string())?;
                let fd = fds.into_iter().next().ok_or("no descriptor came")?;
                shared = Some(Mapped::new(&fd, max)?);
                say(out, "ok")?;
                continue;
            }
            "pipe" | "unix-stream" => {
                say(out, "ready")?;
                if verb == "pipe" {
                    rx.read_exact(&mut buf[..size])
                } else {
                    s.read_exact(&mut buf[..size])
                }
                .map_err(|e| e.to_string())?;
                let sum = checksum(&buf[..size]);
                s.write_all(&[1]).map_err(|e| e.to_string())?;
                sum
            }
            "fresh-memfd" => {
                say(out, "ready")?;
                let (_, fds) = sock.recv_with_fds(&mut [0], 1).map_err(|e| e.to_string())?;
                let fd = fds.into_iter().next().ok_or("no descriptor came")?;
                let sealed = SealedMemfd::try_from(fd).map_err(|e| e.to_string())?;
                let mapped = Mapped::new(&sealed, size)?;
                let sum = mapped.checksum(size);
                drop(mapped);
                drop(sealed);
                s.write_all(&[1]).map_err(|e| e.to_string())?;
                sum
            }
            "reused-mapping" => {
                let mapped = shared.as_ref().ok_or("no setup")?;
                say(out, "ready")?;
                let mut note = [0u8; 1];
                s.read_exact(&mut note).map_err(|e| e.to_string())?;
                let sum = mapped.checksum(size);
                s.write_all(&[1]).map_err(|e| e.to_string())?;
                sum
            }
            other => return Err(format!("bad job {other:?}")),
        };
        say(out, &format!("sum {sum}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(figures: &[(Method, usize, f64)]) -> CopyOrMap {
        let mut s = CopyOrMap {
            sizes: vec![1, 2, 3],
            figures: figures
                .iter()
                .map(|&(method, size, t)| Figure {
                    method,
                    size,
                    median_ns: t,
                    min_ns: t,
                    max_ns: t,
                    repetitions: 1,
                })
                .collect(),
            crossover_fresh: None,
            crossover_reused: None,
            skipped: None,
        };
        s.crossover_fresh = crossover(&s, Method::FreshMemfd);
        s.crossover_reused = crossover(&s, Method::ReusedMapping);
        s
    }

    #[test]
    fn the_crossover_is_the_first_size_that_beats_the_faster_copy() {
        use Method::*;
        let s = section(&[
            (Pipe, 1, 10.0),
            (UnixStream, 1, 5.0),
            (FreshMemfd, 1, 8.0), // beats the pipe, not the socket
            (ReusedMapping, 1, 4.0),
            (Pipe, 2, 10.0),
            (UnixStream, 2, 20.0),
            (FreshMemfd, 2, 9.0),
            (ReusedMapping, 2, 1.0),
        ]);
        assert_eq!(s.crossover_fresh, Some(2));
        assert_eq!(s.crossover_reused, Some(1));
        let none = section(&[(Pipe, 1, 1.0), (FreshMemfd, 1, 2.0)]);
        assert_eq!(none.crossover_fresh, None);
        assert_eq!(none.crossover_reused, None);
    }

    #[test]
    fn the_checksum_reads_every_byte() {
        assert_eq!(checksum(&[1, 2, 255]), 258);
        assert_eq!(checksum(&[]), 0);
    }
}
