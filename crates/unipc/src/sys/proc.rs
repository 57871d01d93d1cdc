//! `/proc` and `/proc/sys` readers, resource limits and the effective user
//! id: the one place the library reads the kernel's tunables and this
//! process's limits and credentials.
//!
//! Every reader answers `None` (or `false`) when the file cannot be read
//! or does not hold what was expected (no `/proc` mounted, a container
//! that hides it): callers fall back to a documented default or leave the
//! figure out, never fail an operation for it.

use std::path::Path;

pub(crate) use rustix::process::Resource;

/// The number in the file at `path` (one decimal, surrounding white space
/// allowed).
pub(crate) fn read_u64(path: impl AsRef<Path>) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The number in `/proc/sys/<name>`, `name` as a path below it
/// (`"fs/mqueue/msg_max"`, `"net/core/wmem_max"`).
pub(crate) fn read_sysctl(name: &str) -> Option<u64> {
    read_u64(Path::new("/proc/sys").join(name))
}

/// [`read_u64`] as a `usize`.
pub(crate) fn read_usize(path: impl AsRef<Path>) -> Option<usize> {
    usize::try_from(read_u64(path)?).ok()
}

/// `getrlimit(resource)`: the soft limit, `None` when unlimited.
pub(crate) fn soft_rlimit(resource: Resource) -> Option<u64> {
    rustix::process::getrlimit(resource).current
}

/// How many descriptors this process has open, from `/proc/self/fd`
/// (less the one reading it); `Err` as `read_dir` fails (EMFILE at the
/// limit).
pub(crate) fn open_descriptors() -> std::io::Result<u64> {
    // The directory handle being read takes one descriptor itself.
    Ok((std::fs::read_dir("/proc/self/fd")?.count() as u64).saturating_sub(1))
}

/// `geteuid()`: the effective user id, which owns what this process
/// creates and is checked against an object's owner.
/// Whether process `pid` is alive: listed in /proc and neither a zombie
/// nor dead (`/proc/PID/stat`'s state, after the command's closing `)`).
/// Pid 0 (not known yet) counts as alive.
pub(crate) fn process_alive(pid: u32) -> bool {
    if pid == 0 {
        return true;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rfind(')')
        .and_then(|end| stat[end + 1..].split_whitespace().next());
    !matches!(state, None | Some("Z" | "X" | "x"))
}

/// When process `pid` started, in clock ticks after boot (field 22 of
/// `/proc/PID/stat`): with the pid, an identity that a recycled pid does
/// not share. `None` when the process is gone or the file unreadable.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    // Fields after the command: state is field 3, starttime field 22.
    rest.split_whitespace().nth(19)?.parse().ok()
}

pub(crate) fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Whether capability number `cap` (`CAP_SYS_RESOURCE` is 24) is in this
/// process's effective set, from `CapEff` in `/proc/self/status`.
pub(crate) fn has_effective_capability(cap: u32) -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| cap < 64 && caps & (1 << cap) != 0)
}

/// `/proc/locks`: every file lock on the system, one a line (`None` when
/// it cannot be read).
pub(crate) fn locks() -> Option<String> {
    std::fs::read_to_string("/proc/locks").ok()
}

/// The `lock:` lines of `/proc/PID/fdinfo/FD` (without the prefix), with
/// the pid, for every descriptor of every process this one may inspect:
/// the only place that names a process holding an OFD lock, whose pid
/// `/proc/locks` and `F_OFD_GETLK` give as -1. Reads one small file per
/// descriptor on the system: for a query, not a loop.
pub(crate) fn descriptor_locks() -> Vec<(u32, String)> {
    let mut found = Vec::new();
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return found;
    };
    for process in processes.flatten() {
        let Some(pid) = process
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(process.path().join("fdinfo")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(info) = std::fs::read_to_string(fd.path()) else {
                continue;
            };
            for line in info.lines() {
                if let Some(lock) = line.strip_prefix("lock:") {
                    found.push((pid, lock.trim_start().to_owned()));
                }
            }
        }
    }
    found
}

/// The `lock:` lines of this process's descriptor `fd`, from
/// `/proc/self/fdinfo/FD`: the locks held through its open file
/// description (flock and OFD locks).
pub(crate) fn own_descriptor_locks(fd: i32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))
        .map(|info| {
            info.lines()
                .filter_map(|line| line.strip_prefix("lock:"))
                .map(|lock| lock.trim_start().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `sigprocmask(SIG_SETMASK, {})`: no signal blocked, for a `pre_exec`
/// hook (async-signal-safe: one system call, nothing allocated). A child
/// inherits its parent thread's mask through `fork` and `exec`, and
/// `std::process::Command` passes it on unchanged; a parent that blocks
/// SIGINT and SIGTERM to take them on one thread would otherwise start a
/// command that neither the signals it passes on nor the terminal's ^C
/// can end.
pub(crate) fn unblock_all_signals() -> std::io::Result<()> {
    use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None).map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_and_refuses_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let number = dir.path().join("n");
        std::fs::write(&number, " 4096\n").unwrap();
        assert_eq!(read_u64(&number), Some(4096));
        assert_eq!(read_usize(&number), Some(4096));
        let words = dir.path().join("w");
        std::fs::write(&words, "4096 87380 6291456\n").unwrap();
        assert_eq!(read_u64(&words), None);
        assert_eq!(read_u64(dir.path().join("absent")), None);
        assert!(!has_effective_capability(64));
    }
}
