//! POSIX message queues: the entries of the mqueue filesystem (mounted
//! detached when this namespace has it mounted nowhere). Each queue is
//! opened read-only by its inode to ask `mq_getattr` and to read the line
//! the kernel keeps in the file (`QSIZE:… NOTIFY_PID:…`): neither takes a
//! message nor touches a notification.

use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{AtFlags, Dir, FileType, Mode as FsMode, OFlags};

use super::procs::Processes;
use super::{Details, Kind, Listing, Object, Owner, Pid, Unreadable};
use crate::sys::posix_mq;
use crate::Mode;

/// Adds every queue, by name, with its holders.
pub(super) fn queues(listing: &mut Listing, procs: &Processes) {
    let root = match posix_mq::mqueue_root() {
        Ok((root, _)) => root,
        Err(err) => {
            let reason = if err.raw_os_error() == Some(libc::EPERM) {
                "the mqueue filesystem is mounted nowhere, and mounting it takes CAP_SYS_ADMIN (mount -t mqueue none /dev/mqueue)".to_owned()
            } else {
                format!("the mqueue filesystem cannot be read: {err}")
            };
            listing.unreadable.push(Unreadable {
                what: "posix-mq".to_owned(),
                reason,
            });
            return;
        }
    };
    // A directory descriptor of its own (a detached mount's descriptor is
    // no directory stream).
    let opened = rustix::fs::openat(
        &root,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        FsMode::empty(),
    );
    let entries = match opened.and_then(Dir::new) {
        Ok(dir) => dir,
        Err(err) => {
            listing.unreadable.push(Unreadable {
                what: "posix-mq".to_owned(),
                reason: format!("the mqueue filesystem cannot be listed: {err}"),
            });
            return;
        }
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                listing.unreadable.push(Unreadable {
                    what: "posix-mq".to_owned(),
                    reason: format!("the mqueue filesystem cannot be listed: {err}"),
                });
                break;
            }
        };
        let file = entry.file_name();
        let bytes = file.to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        let Ok(name) = std::str::from_utf8(bytes) else {
            listing.unreadable.push(Unreadable {
                what: format!("posix-mq:/{}", crate::name::escaped(bytes)),
                reason: "the name is not UTF-8".to_owned(),
            });
            continue;
        };
        let Ok(st) = rustix::fs::statat(&root, file, AtFlags::SYMLINK_NOFOLLOW) else {
            // Removed since the directory was read.
            continue;
        };
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            continue;
        }
        let endpoint = format!("posix-mq:/{name}");
        let (attr, status) = match read_queue(&root, file) {
            Ok(found) => found,
            Err(err) => {
                listing.unreadable.push(Unreadable {
                    what: endpoint.clone(),
                    reason: format!("its size and count: {err}"),
                });
                (None, None)
            }
        };
        #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
        let (dev, ino) = (st.st_dev as u64, st.st_ino as u64);
        found.push(Object {
            kind: Kind::PosixMq,
            name: endpoint,
            owner: Some(Owner {
                uid: st.st_uid,
                gid: st.st_gid,
            }),
            mode: Some(Mode::from_bits_truncate(st.st_mode)),
            details: Details::PosixMq {
                dev,
                inode: ino,
                messages: attr.map(|a| a.0),
                max_messages: attr.map(|a| a.1),
                message_size: attr.map(|a| a.2),
                bytes: status.map(|s| s.0),
                notify: status.and_then(|s| (s.1 != 0).then(|| Pid::of(s.1))),
                holders: procs.holders_of_file(dev, ino),
            },
        });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    listing.objects.extend(found);
}

/// (messages, capacity, message size) from `mq_getattr`, and (bytes
/// queued, notified pid) from the file's text, of queue `name` in `root`.
type QueueFigures = (Option<(u64, u64, u64)>, Option<(u64, u32)>);

fn read_queue(root: &OwnedFd, name: &std::ffi::CStr) -> std::io::Result<QueueFigures> {
    let fd = rustix::fs::openat(
        root,
        name,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        FsMode::empty(),
    )?;
    let mut text = [0u8; 256];
    let n = rustix::io::read(fd.as_fd(), &mut text)?;
    let status = parse_status(&String::from_utf8_lossy(&text[..n]));
    let attr = posix_mq::attributes(&posix_mq::from_owned(fd))
        .ok()
        .map(|a| {
            let count = |v: i64| u64::try_from(v).unwrap_or(0);
            (
                count(a.current),
                count(a.max_messages),
                count(a.message_size),
            )
        });
    Ok((attr, status))
}

/// `QSIZE:<bytes> NOTIFY:<n> SIGNO:<n> NOTIFY_PID:<pid>`: (bytes, pid).
fn parse_status(text: &str) -> Option<(u64, u32)> {
    let value = |key: &str| -> Option<u64> {
        text.split_whitespace()
            .find_map(|f| f.strip_prefix(key))
            .and_then(|v| v.parse().ok())
    };
    let pid = value("NOTIFY_PID:").and_then(|p| u32::try_from(p).ok());
    Some((value("QSIZE:")?, pid.unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_status_line_gives_bytes_and_the_notified_pid() {
        let line = "QSIZE:129        NOTIFY:0     SIGNO:0     NOTIFY_PID:4242  \n";
        assert_eq!(super::parse_status(line), Some((129, 4242)));
        assert_eq!(super::parse_status("garbage"), None);
    }
}
