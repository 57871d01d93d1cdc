//! POSIX shared memory and named semaphores: the regular files of
//! `/dev/shm`, each `lstat`ed so a planted symlink is neither followed nor
//! listed. Rings and pubsubs are shared memory too, named by the magic
//! their first bytes carry.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::procs::{is_plain_file, Processes};
use super::{owner_and_mode, utf8_path, Details, Kind, Listing, Object};

pub(super) const DEV_SHM: &str = "/dev/shm";

/// Adds the `/dev/shm` objects asked for, with their holders.
pub(super) fn objects(listing: &mut Listing, procs: &Processes, shm: bool, sem: bool) {
    let Ok(entries) = std::fs::read_dir(DEV_SHM) else {
        return;
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(full) = utf8_path(&path, &mut listing.unreadable) else {
            continue;
        };
        let file = &full[DEV_SHM.len() + 1..];
        // lstat: a symlink (or anything but a regular file) is no object.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !is_plain_file(&meta) {
            continue;
        }
        let (kind, name) = match file.strip_prefix("sem.") {
            Some(rest) if !rest.is_empty() => (Kind::Sem, format!("sem:/{rest}")),
            _ => (Kind::Shm, format!("{}:/{file}", shm_scheme(&path))),
        };
        if (kind == Kind::Shm && !shm) || (kind == Kind::Sem && !sem) {
            continue;
        }
        found.push((kind, name, meta));
    }
    found.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    for (kind, name, meta) in found {
        let (owner, mode) = owner_and_mode(&meta);
        listing.objects.push(Object {
            kind,
            name,
            owner,
            mode,
            details: Details::DevShm {
                size: meta.size(),
                dev: meta.dev(),
                inode: meta.ino(),
                holders: procs.holders_of_file(meta.dev(), meta.ino()),
            },
        });
    }
}

/// The scheme a `/dev/shm` object is reached by: `ring` or `pubsub` when
/// its first eight bytes are that channel's magic, `shm` otherwise (or
/// when this user may not read it). Opened without following a link
/// (the entry was `lstat`ed as a regular file, but may have changed).
fn shm_scheme(path: &Path) -> &'static str {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut magic = [0; 8];
    let read = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .and_then(|mut f| f.read_exact(&mut magic));
    match (read, &magic) {
        (Ok(()), b"unipcrng") => "ring",
        (Ok(()), b"unipcpub") => "pubsub",
        _ => "shm",
    }
}
