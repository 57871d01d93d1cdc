//! `eventfd(2)`: create, read and write the 8-byte counter, and examine a
//! descriptor through `/proc/self/fd` and `/proc/self/fdinfo` (rustix's
//! `event::eventfd`; no `unsafe` here).
//!
//! Every eventfd is made with `EFD_NONBLOCK` and used that way: blocking
//! and timed calls wait in the one `poll(2)` loop (`sys/poll.rs`) and then
//! retry the read or write, so a counter that another process emptied
//! between the wake-up and the read sends the caller back to waiting,
//! never into a read that blocks past its deadline. `O_NONBLOCK` belongs to
//! the open file description, which every process holding a copy of the
//! descriptor shares: that is why an adopted descriptor is switched to
//! non-blocking too (see `sync/eventfd.rs`).

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use rustix::event::EventfdFlags;
use rustix::io;

/// `eventfd(initial, EFD_CLOEXEC | EFD_NONBLOCK [| EFD_SEMAPHORE])`.
pub(crate) fn create(initial: u32, semaphore: bool) -> io::Result<OwnedFd> {
    let mut flags = EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK;
    if semaphore {
        flags |= EventfdFlags::SEMAPHORE;
    }
    rustix::event::eventfd(initial, flags)
}

/// `read(fd, 8 bytes)` — the whole count (counter mode) or 1 (semaphore
/// mode); `EAGAIN` when the count is zero.
pub(crate) fn read(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let mut buf = [0u8; 8];
    let n = rustix::io::read(fd, &mut buf)?;
    // The kernel transfers all 8 bytes or fails: anything else is not an
    // eventfd's read.
    if n != buf.len() {
        return Err(io::Errno::INVAL);
    }
    Ok(u64::from_ne_bytes(buf))
}

/// `write(fd, n as 8 bytes)` — adds `n`; `EAGAIN` when the sum would pass
/// `0xffff_ffff_ffff_fffe`, `EINVAL` for `n == u64::MAX`.
pub(crate) fn write(fd: BorrowedFd<'_>, n: u64) -> io::Result<()> {
    let written = rustix::io::write(fd, &n.to_ne_bytes())?;
    if written != 8 {
        return Err(io::Errno::INVAL);
    }
    Ok(())
}

/// What `/proc` says about a descriptor that is an eventfd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Info {
    /// The counter's value when read (`eventfd-count`).
    pub(crate) count: u64,
    /// `eventfd-semaphore`, which kernels since 6.6 show; `None` before.
    pub(crate) semaphore: Option<bool>,
}

/// Whether `fd` is an eventfd (its `/proc/self/fd` link reads
/// `anon_inode:[eventfd]`) and, when it is, its `fdinfo`.
pub(crate) fn examine(fd: BorrowedFd<'_>) -> std::io::Result<Option<Info>> {
    let raw = fd.as_raw_fd();
    let target = std::fs::read_link(format!("/proc/self/fd/{raw}"))?;
    if target.as_os_str() != "anon_inode:[eventfd]" {
        return Ok(None);
    }
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{raw}"))?;
    parse_fdinfo(&text).map(Some).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "its fdinfo has no eventfd-count line",
        )
    })
}

/// The counter and the mode from an eventfd's fdinfo text.
fn parse_fdinfo(text: &str) -> Option<Info> {
    let field = |name: &str| {
        text.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == name).then(|| value.trim().to_owned())
        })
    };
    // `eventfd-count` is printed in hex (`%16llx`).
    let count = u64::from_str_radix(&field("eventfd-count")?, 16).ok()?;
    let semaphore = field("eventfd-semaphore").and_then(|v| match v.as_str() {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    });
    Some(Info { count, semaphore })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_gives_the_hex_count_and_the_mode_when_shown() {
        let new = "pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1039\neventfd-count:               1f\neventfd-id: 1\neventfd-semaphore: 1\n";
        assert_eq!(
            parse_fdinfo(new),
            Some(Info {
                count: 0x1f,
                semaphore: Some(true)
            })
        );
        let old = "pos:\t0\nflags:\t02\nmnt_id:\t17\neventfd-count:                0\n";
        assert_eq!(
            parse_fdinfo(old),
            Some(Info {
                count: 0,
                semaphore: None
            })
        );
        assert_eq!(parse_fdinfo("pos:\t0\nflags:\t02\n"), None);
    }
}
