//! One pass over `/proc/*`: which live process holds which file open or
//! mapped (by device and inode, never by a path that may have been
//! replaced), which socket (by its inode), and which System V segment
//! attached. Every kind of object looks its holders up here, so the host's
//! processes are read once per listing.

use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::{Holder, Owner, Unreadable};

/// A file (regular file, FIFO, queue) or socket held by one descriptor.
#[derive(Clone, Copy, Debug)]
struct Fd {
    pid: u32,
    fd: u32,
}

/// What the scan found, by object identity.
#[derive(Debug, Default)]
pub(super) struct Processes {
    /// (device, inode) of a file open in a descriptor.
    open: HashMap<(u64, u64), Vec<Fd>>,
    /// (device, inode) of a file mapped, with the pids mapping it.
    mapped: HashMap<(u64, u64), Vec<u32>>,
    /// A socket's inode (`socket:[N]`), with the pids holding it.
    sockets: HashMap<u64, Vec<u32>>,
    /// A System V segment's id (the inode of its `/SYSV` mapping).
    segments: HashMap<u64, Vec<u32>>,
    /// A System V queue's id, with the pids of which a thread is blocked
    /// in `msgsnd` or `msgrcv` on it (`/proc/PID/task/TID/syscall`).
    queue_waiters: HashMap<i64, Vec<u32>>,
    /// A System V semaphore set's id, with the pids of which a thread is
    /// in `semop` or `semtimedop` on it: a stopped waiter is not counted
    /// in `semncnt`, but its thread still shows the call.
    set_waiters: HashMap<i64, Vec<u32>>,
    /// The path a descriptor's link showed for each open file.
    paths: HashMap<(u64, u64), PathBuf>,
    /// Entries recorded in the maps above, counted as they are made.
    entries: usize,
    /// Each holder's command name and real user and group ids.
    commands: HashMap<u32, (String, Option<Owner>)>,
}

impl Processes {
    /// Reads every `/proc/PID` the caller may read; what it may not is
    /// added to `unreadable` (another user's `fd` directory, when
    /// unprivileged), and processes that exit meanwhile are skipped.
    pub(super) fn scan(unreadable: &mut Vec<Unreadable>) -> Processes {
        let mut found = Processes::default();
        let Ok(procs) = std::fs::read_dir("/proc") else {
            unreadable.push(Unreadable {
                what: "/proc".to_owned(),
                reason: "not readable: no holder can be shown".to_owned(),
            });
            return found;
        };
        for proc in procs.flatten() {
            let Some(pid) = proc
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let base = proc.path();
            let held_before = found.len();
            found.read_fds(pid, &base, unreadable);
            found.read_maps(pid, &base, unreadable);
            found.read_syscalls(pid, &base, unreadable);
            if found.len() != held_before {
                let command = std::fs::read_to_string(base.join("comm"))
                    .map(|c| c.trim_end().to_owned())
                    .unwrap_or_default();
                found.commands.insert(pid, (command, real_ids(&base)));
            }
        }
        // A process that died during the scan holds nothing.
        let gone: Vec<u32> = found
            .commands
            .keys()
            .copied()
            .filter(|&pid| !crate::sys::proc::process_alive(pid))
            .collect();
        for pid in gone {
            found.commands.remove(&pid);
        }
        found
    }

    /// How many (identity, holder) entries were found: grows while a
    /// process's files are read.
    fn len(&self) -> usize {
        self.entries
    }

    /// The System V queue each thread of `pid` is blocked on, if any: a
    /// waiting receiver has not received yet, so the queue's `lrpid` does
    /// not name it.
    fn read_syscalls(&mut self, pid: u32, base: &Path, unreadable: &mut Vec<Unreadable>) {
        let Ok(tasks) = std::fs::read_dir(base.join("task")) else {
            return;
        };
        for task in tasks.flatten() {
            let path = task.path().join("syscall");
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(err) => {
                    note(unreadable, base.join("syscall"), &err);
                    return;
                }
            };
            // `NR arg1 ... sp pc`, `running`, or `-1 sp pc` outside a call.
            let mut fields = text.split_whitespace();
            let (Some(nr), Some(arg1)) = (fields.next(), fields.next()) else {
                continue;
            };
            let Ok(nr) = nr.parse::<i64>() else {
                continue;
            };
            let waiters = if nr == libc::SYS_msgrcv || nr == libc::SYS_msgsnd {
                &mut self.queue_waiters
            } else if nr == libc::SYS_semop || nr == libc::SYS_semtimedop {
                &mut self.set_waiters
            } else {
                continue;
            };
            if let Some(id) = arg1
                .strip_prefix("0x")
                .and_then(|h| i64::from_str_radix(h, 16).ok())
            {
                self.entries += usize::from(push_once(waiters.entry(id).or_default(), pid));
            }
        }
    }

    /// The live processes with a thread in `semop` on System V set `id`
    /// (waiting, or stopped while waiting).
    pub(super) fn waiting_on_set(&self, id: i32) -> Vec<Holder> {
        self.pids_to_holders(self.set_waiters.get(&i64::from(id)), |_| {})
    }

    /// The live processes blocked sending to or receiving from System V
    /// queue `id`.
    pub(super) fn waiting_on_queue(&self, id: i32) -> Vec<Holder> {
        self.pids_to_holders(self.queue_waiters.get(&i64::from(id)), |_| {})
    }

    fn read_fds(&mut self, pid: u32, base: &Path, unreadable: &mut Vec<Unreadable>) {
        let dir = base.join("fd");
        let fds = match std::fs::read_dir(&dir) {
            Ok(fds) => fds,
            Err(err) => return note(unreadable, dir, &err),
        };
        for entry in fds.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(target) = std::fs::read_link(entry.path()) else {
                continue;
            };
            let text = target.as_os_str().as_encoded_bytes();
            if let Some(inode) = text
                .strip_prefix(b"socket:[")
                .and_then(|rest| rest.strip_suffix(b"]"))
                .and_then(|n| std::str::from_utf8(n).ok()?.parse::<u64>().ok())
            {
                self.sockets.entry(inode).or_default().push(pid);
                self.entries += 1;
                continue;
            }
            if !text.starts_with(b"/") {
                // pipe:[N], anon_inode:[eventfd] and the like.
                continue;
            }
            // The descriptor's own file (the link followed by the kernel),
            // not whatever now has that name.
            let Ok(meta) = std::fs::metadata(entry.path()) else {
                continue;
            };
            let id = (meta.dev(), meta.ino());
            self.open.entry(id).or_default().push(Fd { pid, fd });
            self.entries += 1;
            self.paths.entry(id).or_insert(target);
        }
    }

    fn read_maps(&mut self, pid: u32, base: &Path, unreadable: &mut Vec<Unreadable>) {
        let path = base.join("maps");
        let maps = match std::fs::read_to_string(&path) {
            Ok(maps) => maps,
            Err(err) => return note(unreadable, path, &err),
        };
        for line in maps.lines() {
            // address perms offset dev inode path
            let mut cols = line.split_whitespace();
            let (Some(dev), Some(inode), Some(path)) = (cols.nth(3), cols.next(), cols.next())
            else {
                continue;
            };
            let Ok(inode) = inode.parse::<u64>() else {
                continue;
            };
            if path.starts_with("/SYSV") {
                self.entries +=
                    usize::from(push_once(self.segments.entry(inode).or_default(), pid));
            } else if path.starts_with("/dev/shm/") {
                let Some(dev) = parse_dev(dev, 16) else {
                    continue;
                };
                self.entries +=
                    usize::from(push_once(self.mapped.entry((dev, inode)).or_default(), pid));
            }
        }
    }

    /// The live processes holding file (`dev`, `ino`) open or mapped, by pid.
    pub(super) fn holders_of_file(&self, dev: u64, ino: u64) -> Vec<Holder> {
        let mut holders: Vec<Holder> = Vec::new();
        for fd in self.open.get(&(dev, ino)).into_iter().flatten() {
            let (reading, writing) = access(fd);
            match holders.iter_mut().find(|h| h.pid == fd.pid) {
                Some(h) => {
                    h.reading |= reading;
                    h.writing |= writing;
                }
                None => {
                    if let Some(mut h) = self.holder(fd.pid) {
                        h.open = true;
                        h.reading = reading;
                        h.writing = writing;
                        holders.push(h);
                    }
                }
            }
        }
        for &pid in self.mapped.get(&(dev, ino)).into_iter().flatten() {
            match holders.iter_mut().find(|h| h.pid == pid) {
                Some(h) => h.mapped = true,
                None => {
                    if let Some(mut h) = self.holder(pid) {
                        h.mapped = true;
                        holders.push(h);
                    }
                }
            }
        }
        holders.sort_by_key(|h| h.pid);
        holders
    }

    /// The live processes with a descriptor on socket `inode`, by pid.
    pub(super) fn holders_of_socket(&self, inode: u64) -> Vec<Holder> {
        self.pids_to_holders(self.sockets.get(&inode), |h| h.open = true)
    }

    /// The live processes with System V segment `id` attached, by pid.
    pub(super) fn attached_to(&self, id: u64) -> Vec<Holder> {
        self.pids_to_holders(self.segments.get(&id), |h| h.mapped = true)
    }

    /// A path under which some process opened file (`dev`, `ino`).
    pub(super) fn path_of(&self, dev: u64, ino: u64) -> Option<&Path> {
        self.paths.get(&(dev, ino)).map(PathBuf::as_path)
    }

    /// The real user and group of process `pid` (from its `status`, which
    /// any user may read).
    pub(super) fn owner_of(&self, pid: u32) -> Option<Owner> {
        match self.commands.get(&pid) {
            Some((_, owner)) => *owner,
            // `status` is readable where `fd` is not.
            None => real_ids(&Path::new("/proc").join(pid.to_string())),
        }
    }

    fn pids_to_holders(&self, pids: Option<&Vec<u32>>, how: impl Fn(&mut Holder)) -> Vec<Holder> {
        let mut pids: Vec<u32> = pids.cloned().unwrap_or_default();
        pids.sort_unstable();
        pids.dedup();
        pids.into_iter()
            .filter_map(|pid| {
                let mut h = self.holder(pid)?;
                how(&mut h);
                Some(h)
            })
            .collect()
    }

    /// A holder record for `pid`, `None` when it died during the scan.
    fn holder(&self, pid: u32) -> Option<Holder> {
        let (command, _) = self.commands.get(&pid)?;
        Some(Holder {
            pid,
            command: command.clone(),
            open: false,
            mapped: false,
            reading: false,
            writing: false,
        })
    }
}

/// Adds `pid` unless it is the last one there; whether it did.
fn push_once(pids: &mut Vec<u32>, pid: u32) -> bool {
    if pids.last() == Some(&pid) {
        return false;
    }
    pids.push(pid);
    true
}

/// Whether descriptor `fd` reads and writes (`flags:` in its fdinfo);
/// neither when that cannot be read.
fn access(fd: &Fd) -> (bool, bool) {
    let Ok(info) = std::fs::read_to_string(format!("/proc/{}/fdinfo/{}", fd.pid, fd.fd)) else {
        return (false, false);
    };
    let flags = info
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok());
    match flags.map(|f| f & 0o3) {
        Some(0) => (true, false),
        Some(1) => (false, true),
        Some(2) => (true, true),
        _ => (false, false),
    }
}

/// The real uid and gid in `/proc/PID/status` (`Uid:` and `Gid:`, each
/// real effective saved fs).
fn real_ids(base: &Path) -> Option<Owner> {
    let status = std::fs::read_to_string(base.join("status")).ok()?;
    let first = |key: &str| -> Option<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some(Owner {
        uid: first("Uid:")?,
        gid: first("Gid:")?,
    })
}

/// A device number written `MAJOR:MINOR` in `radix` (hex in `maps` and
/// `/proc/locks`).
pub(super) fn parse_dev(text: &str, radix: u32) -> Option<u64> {
    let (major, minor) = text.split_once(':')?;
    let major = u32::from_str_radix(major, radix).ok()?;
    let minor = u32::from_str_radix(minor, radix).ok()?;
    Some(rustix::fs::makedev(major, minor))
}

/// Records an unreadable `/proc` file; a process that exited meanwhile
/// (ENOENT, ESRCH) is no loss.
pub(super) fn note(unreadable: &mut Vec<Unreadable>, path: PathBuf, err: &std::io::Error) {
    if matches!(err.raw_os_error(), Some(libc::ENOENT | libc::ESRCH)) {
        return;
    }
    unreadable.push(Unreadable {
        what: path.display().to_string(),
        reason: err.to_string(),
    });
}

/// Whether `meta` is a regular file (not a link, FIFO or socket).
pub(super) fn is_plain_file(meta: &std::fs::Metadata) -> bool {
    let t = meta.file_type();
    t.is_file() && !t.is_symlink() && !t.is_fifo() && !t.is_socket()
}
