//! An interrupted or killed run cleans up after itself.
//!
//! Most of what a link creates is gone once the peer has joined (names are
//! unlinked, the scratch directory removed), but a System V queue lives
//! until removed, and a peer blocked in a receive would outlive its parent.
//! Two mechanisms cover the two ways a run can end early:
//!
//! - **SIGINT, SIGTERM, SIGHUP.** The run blocks them in every thread and
//!   waits for them on one thread of its own, which kills the peer, removes
//!   everything registered here, and only then says so and exits with
//!   128 + the signal's number.
//! - **SIGKILL** (or any death that runs no code). A *reaper* process,
//!   started before the run creates anything, holds the read end of a pipe
//!   whose write end only the run holds. Every object is announced to it
//!   before it is created where it can be (the scratch directory) and right
//!   after otherwise (queue identifiers); when the pipe reaches end of file
//!   without a final `done`, the run died, and the reaper removes what is
//!   still announced. The peer dies with its parent by `PR_SET_PDEATHSIG`.
//!
//! Creation happens while holding the [`Registry`] lock, and the signal
//! thread takes that lock before cleaning (and exits holding it), so no
//! object can be created between the clean-up and the exit, and none can
//! exist that the clean-up does not know of.
//!
//! The library's connectors do not say which System V queues `prepare`
//! created; the link names them only once the peer has joined. So the
//! runner brackets `prepare`: it reads `/proc/sysvipc/msg` before, tells the
//! reaper which queues existed, and afterwards registers the private,
//! never-used queues of this user that appeared ([`new_private_queues`]). A
//! run killed inside the bracket has the reaper do the same diff. The only
//! risk is another program of the same user creating a private queue in
//! the same milliseconds and not yet using it when the run is killed there;
//! a `Connector` that named its objects would remove the guess.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, MutexGuard, Once};

use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;

/// What exists now and must go if the run ends early.
#[derive(Default)]
pub struct Registry {
    peer: Option<u32>,
    sysv_queues: BTreeSet<i32>,
    scratch: Option<PathBuf>,
    files: BTreeSet<PathBuf>,
    reaper: Option<Reaper>,
}

struct Reaper {
    child: Child,
    stdin: ChildStdin,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    peer: None,
    sysv_queues: BTreeSet::new(),
    scratch: None,
    files: BTreeSet::new(),
    reaper: None,
});

fn signals() -> SigSet {
    let mut set = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(signal);
    }
    set
}

/// The registry, locked: create objects while holding it, and register them
/// before (or, when impossible, right after) creating them.
pub fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts watching; call before the process starts any thread, so that
/// every thread inherits the blocked mask, and before it creates anything.
/// Idempotent.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let set = signals();
        if set.thread_block().is_err() {
            return;
        }
        registry().reaper = Reaper::spawn().ok();
        std::thread::spawn(move || {
            let Ok(signal) = set.wait() else { return };
            // Never released: nothing is created after this clean-up.
            let mut registry = registry();
            registry.clean_up();
            eprintln!(
                "unipc bench: interrupted by {signal}; the peer and the run's objects are gone"
            );
            std::process::exit(128 + signal as i32);
        });
    });
}

/// The run ended normally: tells the reaper so and waits for it.
pub fn finish() {
    if let Some(mut reaper) = registry().reaper.take() {
        let _ = writeln!(reaper.stdin, "done");
        drop(reaper.stdin);
        let _ = reaper.child.wait();
    }
}

/// In a peer process: undoes the mask inherited from the parent.
pub fn unblock_in_peer() {
    let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&signals()), None);
}

impl Registry {
    fn tell(&mut self, line: &str) {
        if let Some(reaper) = &mut self.reaper {
            if writeln!(reaper.stdin, "{line}").is_err() {
                // A reaper that died cannot help; the in-process clean-up
                // still covers signals.
                self.reaper = None;
            }
        }
    }

    /// Announces the scratch directory `path` (call before creating it);
    /// `None` forgets the current one (call after removing it).
    pub fn scratch(&mut self, path: Option<&Path>) {
        match path {
            Some(p) => self.tell(&format!("dir {}", p.display())),
            None => {
                if let Some(p) = self.scratch.take() {
                    self.tell(&format!("undir {}", p.display()));
                }
            }
        }
        self.scratch = path.map(Path::to_path_buf);
    }

    /// Announces a file to remove if the run ends early (call before
    /// creating it), or forgets it (`keep`: it has been renamed or removed).
    pub fn file(&mut self, path: &Path, keep: bool) {
        if keep {
            if self.files.remove(path) {
                self.tell(&format!("unfile {}", path.display()));
            }
        } else if self.files.insert(path.to_path_buf()) {
            self.tell(&format!("file {}", path.display()));
        }
    }

    /// Announces the running peer (`None`: it has been reaped).
    pub fn peer(&mut self, pid: Option<u32>) {
        self.peer = pid;
    }

    /// Announces a System V queue that exists now.
    pub fn add_queue(&mut self, id: i32) {
        if self.sysv_queues.insert(id) {
            self.tell(&format!("msq {id}"));
        }
    }

    /// Forgets a System V queue (call after removing it).
    pub fn forget_queue(&mut self, id: i32) {
        if self.sysv_queues.remove(&id) {
            self.tell(&format!("unmsq {id}"));
        }
    }

    /// Announces that a connector may create System V queues it will not
    /// name until the link is up: if the run dies before [`end_prepare`]
    /// (Registry::end_prepare), the reaper removes the private, unused
    /// queues of this user that appeared since `before` was read.
    pub fn begin_prepare(&mut self, before: &[QueueEntry]) {
        let ids: Vec<String> = before.iter().map(|q| q.id.to_string()).collect();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.tell(&format!("begin {now} {}", ids.join(",")));
    }

    /// The queues the connector made are announced by identifier now.
    pub fn end_prepare(&mut self) {
        self.tell("end");
    }

    /// The queues announced now.
    pub fn queues(&self) -> Vec<i32> {
        self.sysv_queues.iter().copied().collect()
    }

    fn clean_up(&mut self) {
        if let Some(pid) = self.peer.take() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
        for id in std::mem::take(&mut self.sysv_queues) {
            remove_private_queue(id);
        }
        if let Some(dir) = self.scratch.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        for file in std::mem::take(&mut self.files) {
            let _ = std::fs::remove_file(file);
        }
        // Everything is gone; the reaper has nothing left to do.
        if let Some(reaper) = &mut self.reaper {
            let _ = writeln!(reaper.stdin, "done");
        }
    }
}

/// Removes the private queue `id`, if it still is one.
fn remove_private_queue(id: i32) {
    if let Ok(queue) = unipc::message::sysv_mq::Queue::open_id(id) {
        if queue.key() == unipc::name::SysvKey::Private {
            let _ = queue.remove();
        }
    }
}

impl Reaper {
    fn spawn() -> std::io::Result<Reaper> {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(std::env::current_exe()?)
            .arg(crate::peer::PEER_ARG)
            .arg(REAPER_ROLE)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            // Its own process group: a terminal's ^C reaches the run and the
            // peer, never the process that cleans up after them.
            .process_group(0)
            .spawn()?;
        let stdin = child.stdin.take().expect("stdin is piped");
        Ok(Reaper { child, stdin })
    }
}

/// The peer argument that makes the binary the reaper.
pub const REAPER_ROLE: &str = "--reaper";

/// The reaper's main: reads announcements until end of file, then removes
/// what is still announced unless the run said `done`.
pub fn reaper_main() -> i32 {
    // Signals aimed at the run must not stop the process that cleans up
    // after it: they stay pending, and only SIGKILL ends the reaper early.
    let _ = signals().thread_block();
    let mut dirs = BTreeSet::new();
    let mut queues = BTreeSet::new();
    let mut files = BTreeSet::new();
    let mut preparing: Option<(u64, Vec<i32>)> = None;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let (verb, arg) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        match verb {
            "dir" => {
                dirs.insert(PathBuf::from(arg));
            }
            "undir" => {
                dirs.remove(Path::new(arg));
            }
            "file" => {
                files.insert(PathBuf::from(arg));
            }
            "unfile" => {
                files.remove(Path::new(arg));
            }
            "msq" => {
                queues.extend(arg.parse::<i32>());
            }
            "unmsq" => {
                if let Ok(id) = arg.parse::<i32>() {
                    queues.remove(&id);
                }
            }
            "begin" => {
                let (since, ids) = arg.split_once(' ').unwrap_or((arg, ""));
                let ids = ids.split(',').filter_map(|id| id.parse().ok()).collect();
                preparing = Some((since.parse().unwrap_or(0), ids));
            }
            "end" => preparing = None,
            "done" => return 0,
            _ => {}
        }
    }
    if let Some((since, before)) = preparing {
        // The run died while a connector was creating queues it had not
        // named yet: the new private queues nobody has used are its own.
        let after: Vec<QueueEntry> = sysv_queues()
            .into_iter()
            .filter(|q| q.changed + 1 >= since)
            .collect();
        let before: Vec<QueueEntry> = sysv_queues()
            .into_iter()
            .filter(|q| before.contains(&q.id))
            .collect();
        queues.extend(new_private_queues(&before, &after));
    }
    for id in queues {
        remove_private_queue(id);
    }
    for dir in dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
    for file in files {
        let _ = std::fs::remove_file(file);
    }
    0
}

/// One line of `/proc/sysvipc/msg`, the fields that tell whose a queue is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueEntry {
    /// `key`.
    pub key: i32,
    /// `msqid`.
    pub id: i32,
    /// `qnum`: messages waiting.
    pub messages: u64,
    /// `lspid`, `lrpid`: last sender and receiver.
    pub last_pids: (u32, u32),
    /// `cuid`: the creator's user.
    pub creator_uid: u32,
    /// `ctime`: when it was created or last changed, in seconds.
    pub changed: u64,
}

/// Every System V queue on the host, from `/proc/sysvipc/msg` (empty when
/// unreadable).
pub fn sysv_queues() -> Vec<QueueEntry> {
    let Ok(text) = std::fs::read_to_string("/proc/sysvipc/msg") else {
        return Vec::new();
    };
    text.lines().skip(1).filter_map(parse_queue_line).collect()
}

fn parse_queue_line(line: &str) -> Option<QueueEntry> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 14 {
        return None;
    }
    Some(QueueEntry {
        key: f[0].parse().ok()?,
        id: f[1].parse().ok()?,
        messages: f[4].parse().ok()?,
        last_pids: (f[5].parse().ok()?, f[6].parse().ok()?),
        creator_uid: f[9].parse().ok()?,
        changed: f.get(13).and_then(|t| t.parse().ok()).unwrap_or(0),
    })
}

/// The queues in `after` but not in `before` that this process could have
/// just created: private (key 0), created by this user, never used.
pub fn new_private_queues(before: &[QueueEntry], after: &[QueueEntry]) -> Vec<i32> {
    let uid = rustix::process::geteuid().as_raw();
    after
        .iter()
        .filter(|q| {
            q.key == 0
                && q.creator_uid == uid
                && q.messages == 0
                && q.last_pids == (0, 0)
                && !before.iter().any(|b| b.id == q.id)
        })
        .map(|q| q.id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_lines_parse_and_new_private_ones_are_found() {
        let uid = rustix::process::geteuid().as_raw();
        let line = |key: i32, id: i32, pids: &str| {
            format!("{key:>10} {id:>10} 600 0 0 {pids} {uid} 0 {uid} 0 0 0 1700000000")
        };
        let old = parse_queue_line(&line(0, 1, "0 0")).unwrap();
        let fresh = parse_queue_line(&line(0, 2, "0 0")).unwrap();
        let used = parse_queue_line(&line(0, 3, "12 13")).unwrap();
        let keyed = parse_queue_line(&line(77, 4, "0 0")).unwrap();
        assert_eq!(fresh.last_pids, (0, 0));
        assert_eq!(used.last_pids, (12, 13));
        assert_eq!(
            new_private_queues(&[old], &[old, fresh, used, keyed]),
            vec![2]
        );
        assert!(parse_queue_line("key msqid perms").is_none());
    }
}
