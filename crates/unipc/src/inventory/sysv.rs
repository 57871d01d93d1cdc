//! System V queues, semaphore sets and segments, from `/proc/sysvipc`
//! (columns found by their header names, which differ between kernels).

use std::collections::HashMap;

use super::procs::Processes;
use super::{Details, Kind, Listing, Object, Owner, Pid, Unreadable};
use crate::{Error, Mode, Result};

/// The rows of a `/proc/sysvipc` file as maps from header name to field.
fn table(path: &str) -> Result<Vec<HashMap<String, String>>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::os(path, "read", e))?;
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    Ok(lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split_whitespace().map(str::to_owned))
                .collect()
        })
        .collect())
}

/// The field `name` of `row` as a number, parsed in `radix`.
fn field<T: FromStrRadix>(
    path: &str,
    row: &HashMap<String, String>,
    name: &str,
    radix: u32,
) -> Result<T> {
    row.get(name)
        .and_then(|v| T::parse(v, radix))
        .ok_or_else(|| {
            Error::os(
                path,
                "parse",
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("no numeric column `{name}`"),
                ),
            )
        })
}

trait FromStrRadix: Sized {
    fn parse(s: &str, radix: u32) -> Option<Self>;
}

macro_rules! radix {
    ($($t:ty),*) => {$(impl FromStrRadix for $t {
        fn parse(s: &str, radix: u32) -> Option<Self> {
            <$t>::from_str_radix(s, radix).ok()
        }
    })*};
}
radix!(i32, u32, u64);

/// The owner from the `uid` and `gid` columns.
fn owner(path: &str, row: &HashMap<String, String>) -> Result<Owner> {
    Ok(Owner {
        uid: field(path, row, "uid", 10)?,
        gid: field(path, row, "gid", 10)?,
    })
}

/// The mode from a `perms` column (octal, with flags above 0o777).
fn perms(path: &str, row: &HashMap<String, String>) -> Result<(Mode, u32)> {
    let bits: u32 = field(path, row, "perms", 8)?;
    Ok((Mode::from_bits_truncate(bits), bits))
}

pub(super) fn queues(listing: &mut Listing, procs: &Processes) -> Result<()> {
    const PATH: &str = "/proc/sysvipc/msg";
    for row in table(PATH)? {
        let id: i32 = field(PATH, &row, "msqid", 10)?;
        listing.objects.push(Object {
            kind: Kind::SysvMq,
            name: format!("sysv-mq:id={id}"),
            owner: Some(owner(PATH, &row)?),
            mode: Some(perms(PATH, &row)?.0),
            details: Details::SysvMq {
                key: field(PATH, &row, "key", 10)?,
                id,
                bytes: field(PATH, &row, "cbytes", 10)?,
                messages: field(PATH, &row, "qnum", 10)?,
                creator_uid: field(PATH, &row, "cuid", 10)?,
                last_send: Pid::of(field(PATH, &row, "lspid", 10)?),
                last_receive: Pid::of(field(PATH, &row, "lrpid", 10)?),
                waiting: procs.waiting_on_queue(id),
            },
        });
    }
    Ok(())
}

pub(super) fn semaphore_sets(listing: &mut Listing, procs: &Processes) -> Result<()> {
    const PATH: &str = "/proc/sysvipc/sem";
    for row in table(PATH)? {
        let id: i32 = field(PATH, &row, "semid", 10)?;
        let semaphores: u64 = field(PATH, &row, "nsems", 10)?;
        // GETNCNT, GETZCNT and GETPID need read permission on the set: an
        // unreadable set is listed without them.
        let counts = (0..u16::try_from(semaphores).unwrap_or(u16::MAX))
            .map(|n| {
                let increase = crate::sys::sysv_sem::ncnt(id, n)?;
                let zero = crate::sys::sysv_sem::zcnt(id, n)?;
                Ok((increase, zero, crate::sys::sysv_sem::last_pid(id, n)?))
            })
            .collect::<std::io::Result<Vec<_>>>();
        let (waiting_increase, waiting_zero, last_op) = match counts {
            Ok(c) => (
                Some(c.iter().map(|x| u64::from(x.0)).sum()),
                Some(c.iter().map(|x| u64::from(x.1)).sum()),
                c.iter().map(|x| Pid::of(x.2)).collect(),
            ),
            Err(err) => {
                listing.unreadable.push(Unreadable {
                    what: format!("sysv-sem:id={id}"),
                    reason: err.to_string(),
                });
                (None, None, Vec::new())
            }
        };
        listing.objects.push(Object {
            kind: Kind::SysvSem,
            name: format!("sysv-sem:id={id}"),
            owner: Some(owner(PATH, &row)?),
            mode: Some(perms(PATH, &row)?.0),
            details: Details::SysvSem {
                key: field(PATH, &row, "key", 10)?,
                id,
                semaphores,
                creator_uid: field(PATH, &row, "cuid", 10)?,
                waiting_increase,
                waiting_zero,
                last_op,
                waiting: procs.waiting_on_set(id),
            },
        });
    }
    Ok(())
}

pub(super) fn segments(listing: &mut Listing, procs: &Processes) -> Result<()> {
    const PATH: &str = "/proc/sysvipc/shm";
    // SHM_DEST in the kernel's shm_perm.mode.
    const SHM_DEST: u32 = 0o1000;
    for row in table(PATH)? {
        let id: i32 = field(PATH, &row, "shmid", 10)?;
        let (mode, bits) = perms(PATH, &row)?;
        listing.objects.push(Object {
            kind: Kind::SysvShm,
            name: format!("sysv-shm:id={id}"),
            owner: Some(owner(PATH, &row)?),
            mode: Some(mode),
            details: Details::SysvShm {
                key: field(PATH, &row, "key", 10)?,
                id,
                size: field(PATH, &row, "size", 10)?,
                attached: field(PATH, &row, "nattch", 10)?,
                creator_uid: field(PATH, &row, "cuid", 10)?,
                creator: Pid::of(field(PATH, &row, "cpid", 10)?),
                last_op: Pid::of(field(PATH, &row, "lpid", 10)?),
                removed: bits & SHM_DEST != 0,
                attached_by: procs.attached_to(u64::try_from(id).unwrap_or(u64::MAX)),
            },
        });
    }
    Ok(())
}
