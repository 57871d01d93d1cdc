//! Who made each named object unipc creates, so that `unipc gc` can tell an
//! object whose creator died holding it from one still in use or left on
//! purpose.
//!
//! A POSIX queue, shared-memory object or named semaphore, and a System V
//! queue or semaphore set, records nothing about its creator in the
//! kernel (a System V segment records its creator's pid, `shm_cpid`, but
//! not that it was left on purpose). So the handle that creates one writes
//! a small record:
//!
//! ```text
//! /dev/shm/.unipc-creators-UID/CLASS-A-B     (A, B: device and inode, or id and key)
//! unipc-creator/1
//! name=/jobs
//! pid=4242
//! start=123456          (the creator's start time: a recycled pid is not it)
//! kept=0                (1 once the creator's handle let it outlive itself)
//! ```
//!
//! The record is named by the object's identity, not its name, so a new
//! object under an old name is never taken for the old one. It lives in
//! `/dev/shm` because that is a tmpfs, emptied at boot with the objects it
//! describes. The directory is the creator's own (mode 0700, checked by
//! descriptor after opening it without following links); a directory of
//! that name owned by anyone else is refused, so nobody can plant records
//! for another user's objects, and the records are only read back for
//! objects whose owner owns the record too. Writing one is best effort: a
//! creation never fails for it, and an object with no record is listed as
//! "unowned" by `gc`, which removes it only when asked to.
//!
//! The owner's handle removes the record with the object; `unipc rm` and
//! the `remove` functions too. A record whose object is gone is removed by
//! `gc`.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use rustix::fs::{Mode as FsMode, OFlags};

/// What kind of object a record describes: the first part of its file
/// name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// A POSIX shared-memory object (rings and pubsubs too), by device and
    /// inode of its `/dev/shm` file.
    Shm,
    /// A POSIX named semaphore, by its `/dev/shm/sem.NAME` file.
    Sem,
    /// A POSIX message queue, by its mqueue inode.
    Mq,
    /// A System V queue, by id and key.
    SysvMq,
    /// A System V semaphore set, by id and key.
    SysvSem,
    /// A System V segment, by id and key (only to know it was kept: the
    /// kernel records a segment's creator itself).
    SysvShm,
}

impl Class {
    fn prefix(self) -> &'static str {
        match self {
            Class::Shm => "shm",
            Class::Sem => "sem",
            Class::Mq => "mq",
            Class::SysvMq => "sysv-mq",
            Class::SysvSem => "sysv-sem",
            Class::SysvShm => "sysv-shm",
        }
    }
}

/// The identity of a record's object: (device, inode), or (id, key).
pub(crate) type Identity = (u64, u64);

/// A System V object's identity: its id and key, as unsigned numbers (the
/// same id under another key is another object).
pub(crate) fn sysv_identity(id: i32, key: i32) -> Identity {
    (u64::from(id as u32), u64::from(key as u32))
}

/// The record a live creator's handle holds.
#[derive(Debug)]
pub(crate) struct Record {
    class: Class,
    identity: Identity,
    name: String,
}

/// What a record says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) pid: u32,
    pub(crate) start: u64,
    pub(crate) kept: bool,
}

impl Entry {
    /// Whether the creator still runs: its pid is alive and started when
    /// the record says.
    pub(crate) fn creator_alive(&self) -> bool {
        crate::sys::proc::process_alive(self.pid)
            && crate::sys::proc::start_time(self.pid) == Some(self.start)
    }
}

const VERSION: &str = "unipc-creator/1";

fn directory(uid: u32) -> PathBuf {
    PathBuf::from(format!("/dev/shm/.unipc-creators-{uid}"))
}

fn file_name(class: Class, identity: Identity) -> String {
    format!("{}-{}-{}", class.prefix(), identity.0, identity.1)
}

/// Opens user `uid`'s record directory, refusing anything but a real
/// directory of that user's, closed to everyone else. With `create`, makes
/// it first if it is missing.
fn open_directory(uid: u32, create: bool) -> std::io::Result<OwnedFd> {
    let path = directory(uid);
    if create {
        match rustix::fs::mkdir(&path, FsMode::RWXU) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(err) => return Err(err.into()),
        }
    }
    let dir = rustix::fs::open(
        &path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        FsMode::empty(),
    )?;
    let mut st = rustix::fs::fstat(&dir)?;
    if create && st.st_uid == uid && st.st_mode & 0o700 != 0o700 {
        // Made under a umask that took the owner's own bits.
        rustix::fs::fchmod(&dir, FsMode::RWXU)?;
        st = rustix::fs::fstat(&dir)?;
    }
    if st.st_uid != uid || st.st_mode & 0o077 != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} is not user {uid}'s own closed directory (owner {}, mode {:o})",
                path.display(),
                st.st_uid,
                st.st_mode & 0o7777
            ),
        ));
    }
    Ok(dir)
}

/// Writes the record of an object this process just created; `None`
/// (and no record) when it cannot be written.
pub(crate) fn make(class: Class, name: &str, identity: Identity) -> Option<Record> {
    let record = Record {
        class,
        identity,
        name: name.to_owned(),
    };
    record.write(false).ok()?;
    Some(record)
}

impl Record {
    fn write(&self, kept: bool) -> std::io::Result<()> {
        let pid = std::process::id();
        let start = crate::sys::proc::start_time(pid).unwrap_or(0);
        let text = format!(
            "{VERSION}\nname={}\npid={pid}\nstart={start}\nkept={}\n",
            self.name,
            u8::from(kept)
        );
        let uid = crate::sys::proc::euid();
        let file = file_name(self.class, self.identity);
        // A record being replaced is written aside and renamed over, so
        // gc never reads half of one. Another process's `forget` may
        // remove the directory between the open and the write (it was
        // empty): then make it again.
        let mut last = None;
        for _ in 0..3 {
            let dir = open_directory(uid, true)?;
            let temporary = format!(".{file}.{pid}");
            let written = rustix::fs::openat(
                &dir,
                temporary.as_str(),
                OFlags::WRONLY
                    | OFlags::CREATE
                    | OFlags::TRUNC
                    | OFlags::NOFOLLOW
                    | OFlags::CLOEXEC,
                FsMode::RUSR | FsMode::WUSR,
            )
            .map_err(std::io::Error::from)
            .and_then(|fd| std::fs::File::from(fd).write_all(text.as_bytes()))
            .and_then(|()| {
                rustix::fs::renameat(&dir, temporary.as_str(), &dir, file.as_str())
                    .map_err(Into::into)
            });
            match written {
                Ok(()) => return Ok(()),
                Err(err) if err.raw_os_error() == Some(libc::ENOENT) => last = Some(err),
                Err(err) => {
                    let _ = rustix::fs::unlinkat(
                        &dir,
                        temporary.as_str(),
                        rustix::fs::AtFlags::empty(),
                    );
                    return Err(err);
                }
            }
        }
        Err(last.unwrap_or_else(|| std::io::ErrorKind::NotFound.into()))
    }

    /// The creator's handle let the object outlive itself: marks it kept.
    pub(crate) fn mark_kept(&self) {
        let _ = self.write(true);
    }

    /// The object is gone: removes its record.
    pub(crate) fn forget(&self) {
        forget(crate::sys::proc::euid(), self.class, self.identity);
    }
}

/// Removes user `uid`'s record of the object (`class`, `identity`), if
/// any, and the directory once it is empty.
pub(crate) fn forget(uid: u32, class: Class, identity: Identity) {
    let Ok(dir) = open_directory(uid, false) else {
        return;
    };
    let file = file_name(class, identity);
    if rustix::fs::unlinkat(&dir, file.as_str(), rustix::fs::AtFlags::empty()).is_ok() {
        // Refused by the kernel while a record is in it; a writer that
        // opened it just before makes it again (see `Record::write`).
        let _ = rustix::fs::rmdir(directory(uid));
    }
}

/// The record of an object about to be removed by name, found before the
/// removal (after it the name leads nowhere); [`Forget::done`] removes
/// the record once the removal succeeded.
#[derive(Debug)]
#[must_use]
pub(crate) struct Forget {
    uid: u32,
    class: Class,
    identity: Identity,
}

impl Forget {
    /// `/dev/shm/FILE` (`FILE` with or without its leading `/`), by
    /// `lstat`.
    pub(crate) fn dev_shm(class: Class, file: &str) -> Option<Forget> {
        let (uid, identity) = owner_and_identity_of_dev_shm(file)?;
        Some(Forget {
            uid,
            class,
            identity,
        })
    }

    /// POSIX queue `name` (`/jobs`), in the mqueue filesystem.
    pub(crate) fn queue(name: &str) -> Option<Forget> {
        let (uid, identity) = owner_and_identity_of_queue(name)?;
        Some(Forget {
            uid,
            class: Class::Mq,
            identity,
        })
    }

    /// A System V object: its record is in its creator's directory.
    pub(crate) fn sysv(class: Class, id: i32, key: i32, creator_uid: u32) -> Forget {
        Forget {
            uid: creator_uid,
            class,
            identity: sysv_identity(id, key),
        }
    }

    /// The removal succeeded: removes the record found before it, if any.
    pub(crate) fn done(found: Option<Forget>) {
        if let Some(f) = found {
            forget(f.uid, f.class, f.identity);
        }
    }
}

/// (owner, (device, inode)) of `/dev/shm/FILE`, by `lstat`.
fn owner_and_identity_of_dev_shm(file: &str) -> Option<(u32, Identity)> {
    let path = format!("/dev/shm/{}", file.trim_start_matches('/'));
    let st = rustix::fs::lstat(path.as_str()).ok()?;
    #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
    Some((st.st_uid, (st.st_dev as u64, st.st_ino as u64)))
}

/// (owner, (device, inode)) of POSIX queue `name`, in the mqueue
/// filesystem.
fn owner_and_identity_of_queue(name: &str) -> Option<(u32, Identity)> {
    let (root, _) = crate::sys::posix_mq::mqueue_root().ok()?;
    let st = rustix::fs::statat(
        &root,
        name.trim_start_matches('/'),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .ok()?;
    #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
    Some((st.st_uid, (st.st_dev as u64, st.st_ino as u64)))
}

/// (device, inode) of `/dev/shm/FILE`.
pub(crate) fn identity_of_dev_shm(file: &str) -> Option<Identity> {
    Some(owner_and_identity_of_dev_shm(file)?.1)
}

/// (device, inode) of POSIX queue `name`.
pub(crate) fn identity_of_queue(name: &str) -> Option<Identity> {
    Some(owner_and_identity_of_queue(name)?.1)
}

/// The record user `uid` holds for the object (`class`, `identity`):
/// `None` when there is none or it is not that user's own file, or does
/// not read as a record.
pub(crate) fn read(uid: u32, class: Class, identity: Identity) -> Option<Entry> {
    let dir = open_directory(uid, false).ok()?;
    let fd = rustix::fs::openat(
        &dir,
        file_name(class, identity).as_str(),
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        FsMode::empty(),
    )
    .ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    if st.st_uid != uid || FsMode::from_raw_mode(st.st_mode).bits() & 0o077 != 0 {
        return None;
    }
    let mut text = String::new();
    use std::io::Read;
    std::fs::File::from(fd)
        .take(4096)
        .read_to_string(&mut text)
        .ok()?;
    parse(&text)
}

fn parse(text: &str) -> Option<Entry> {
    let mut lines = text.lines();
    if lines.next()? != VERSION {
        return None;
    }
    let mut entry = Entry {
        name: String::new(),
        pid: 0,
        start: 0,
        kept: false,
    };
    for line in lines {
        match line.split_once('=')? {
            ("name", v) => v.clone_into(&mut entry.name),
            ("pid", v) => entry.pid = v.parse().ok()?,
            ("start", v) => entry.start = v.parse().ok()?,
            ("kept", v) => entry.kept = v == "1",
            _ => {}
        }
    }
    (entry.pid != 0).then_some(entry)
}

/// Every record of user `uid`'s: (class, identity) and the entry, for
/// `gc` to drop those whose object is gone.
pub(crate) fn all(uid: u32) -> Vec<(Class, Identity)> {
    let Ok(dir) = open_directory(uid, false) else {
        return Vec::new();
    };
    let Ok(entries) = rustix::fs::Dir::new(dir) else {
        return Vec::new();
    };
    let classes = [
        Class::SysvMq,
        Class::SysvSem,
        Class::SysvShm,
        Class::Shm,
        Class::Sem,
        Class::Mq,
    ];
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str().ok()?.to_owned();
            let (rest_b, b) = name.rsplit_once('-')?;
            let (prefix, a) = rest_b.rsplit_once('-')?;
            let class = classes.into_iter().find(|c| c.prefix() == prefix)?;
            Some((class, (a.parse().ok()?, b.parse().ok()?)))
        })
        .collect()
}

/// Record directories that are not their user's own (someone planted
/// one to keep that user's records out): each path and why. Their records
/// are never read, and that user's objects are unowned to `gc`.
pub(crate) fn foreign_directories() -> Vec<(String, String)> {
    users()
        .into_iter()
        .filter_map(|uid| {
            let err = open_directory(uid, false).err()?;
            Some((directory(uid).display().to_string(), err.to_string()))
        })
        .collect()
}

/// The user ids that have a record directory.
pub(crate) fn users() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/dev/shm") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix(".unipc-creators-")?
                .parse()
                .ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_record_parses_and_a_foreign_text_does_not() {
        let entry = super::parse("unipc-creator/1\nname=/jobs\npid=42\nstart=7\nkept=1\n").unwrap();
        assert_eq!(
            (entry.name.as_str(), entry.pid, entry.start, entry.kept),
            ("/jobs", 42, 7, true)
        );
        assert_eq!(super::parse("something/2\npid=1\n"), None);
        assert_eq!(super::parse("unipc-creator/1\nname=/x\n"), None);
    }
}
