//! File locks, from `/proc/locks`: flock, POSIX record locks, OFD locks
//! and leases, held or waited for. The kernel names the locked file by
//! device and inode only; its path comes from a process that has it open.

use std::os::unix::fs::MetadataExt;

use super::procs::{note, parse_dev, Processes};
use super::{owner_and_mode, Details, Kind, Listing, LockClass, Object, Pid, Unreadable};

const PATH: &str = "/proc/locks";

/// One line of `/proc/locks`.
#[derive(Debug, PartialEq, Eq)]
struct Row {
    waiting: bool,
    class: LockClass,
    exclusive: bool,
    pid: Option<u32>,
    dev: u64,
    inode: u64,
    start: u64,
    end: Option<u64>,
}

/// Adds every lock (and every waiter), with the locked file where found.
pub(super) fn locks(listing: &mut Listing, procs: &Processes) {
    let text = match std::fs::read_to_string(PATH) {
        Ok(text) => text,
        Err(err) => return note(&mut listing.unreadable, PATH.into(), &err),
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Some(row) = parse_row(line) else {
            listing.unreadable.push(Unreadable {
                what: format!("{PATH}: {line}"),
                reason: "a line of a form this version does not know".to_owned(),
            });
            continue;
        };
        let path = procs
            .path_of(row.dev, row.inode)
            .map(std::path::Path::to_path_buf);
        // The path's file now, if it is still the locked one.
        let meta = path
            .as_deref()
            .and_then(|p| std::fs::symlink_metadata(p).ok())
            .filter(|m| m.dev() == row.dev && m.ino() == row.inode);
        let (mut owner, mode) = meta.as_ref().map_or((None, None), owner_and_mode);
        if let Some(pid) = row.pid {
            // A lock belongs to its holder: that process's user, when known.
            owner = procs.owner_of(pid).or(owner);
        }
        let name = match &path {
            Some(p) => p.to_string_lossy().into_owned(),
            None => format!("dev={:#x},inode={}", row.dev, row.inode),
        };
        listing.objects.push(Object {
            kind: Kind::Lock,
            name,
            owner,
            mode,
            details: Details::Lock {
                class: row.class,
                exclusive: row.exclusive,
                waiting: row.waiting,
                start: row.start,
                end: row.end,
                holder: row.pid.map(Pid::of),
                dev: row.dev,
                inode: row.inode,
                path,
                holders: procs.holders_of_file(row.dev, row.inode),
            },
        });
    }
}

/// `ID: [->] CLASS MODE ACCESS PID MAJ:MIN:INODE START END`, where MAJ and
/// MIN are hex, END is `EOF` or a byte offset, and PID is -1 for an OFD
/// lock; `->` marks a process waiting for the lock above it.
fn parse_row(line: &str) -> Option<Row> {
    let mut cols = line.split_whitespace().skip(1).peekable();
    let waiting = cols.next_if_eq(&"->").is_some();
    let class = match cols.next()? {
        "FLOCK" => LockClass::Flock,
        "POSIX" => LockClass::Posix,
        "OFDLCK" => LockClass::Ofd,
        "LEASE" | "DELEG" => LockClass::Lease,
        _ => return None,
    };
    let _advisory = cols.next()?;
    let exclusive = match cols.next()? {
        "WRITE" => true,
        "READ" | "UNLCK" => false,
        _ => return None,
    };
    let pid = match cols.next()? {
        "-1" => None,
        pid => Some(pid.parse().ok()?),
    };
    let (dev, inode) = cols.next()?.rsplit_once(':')?;
    let dev = parse_dev(dev, 16)?;
    let inode = inode.parse().ok()?;
    let start = cols.next()?.parse().ok()?;
    let end = match cols.next()? {
        "EOF" => None,
        end => Some(end.parse().ok()?),
    };
    Some(Row {
        waiting,
        class,
        exclusive,
        pid,
        dev,
        inode,
        start,
        end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_each_class_parse() {
        let posix = parse_row("1: POSIX  ADVISORY  WRITE 1234 00:1a:5678 0 EOF").unwrap();
        assert_eq!(
            posix,
            Row {
                waiting: false,
                class: LockClass::Posix,
                exclusive: true,
                pid: Some(1234),
                dev: rustix::fs::makedev(0, 0x1a),
                inode: 5678,
                start: 0,
                end: None,
            }
        );
        let ofd = parse_row("2: OFDLCK ADVISORY  READ  -1 fd:01:99 10 19").unwrap();
        assert_eq!(
            (ofd.class, ofd.pid, ofd.end),
            (LockClass::Ofd, None, Some(19))
        );
        assert_eq!(ofd.dev, rustix::fs::makedev(0xfd, 1));
        let waiter = parse_row("3: -> FLOCK  ADVISORY  WRITE 77 00:1a:5678 0 EOF").unwrap();
        assert!(waiter.waiting);
        assert_eq!(waiter.class, LockClass::Flock);
        assert_eq!(parse_row("4: MYSTERY ADVISORY WRITE 1 0:0:1 0 EOF"), None);
    }
}
