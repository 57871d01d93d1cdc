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
//!   after otherwise (what `prepare` announces); when the pipe reaches end of file
//!   without a final `done`, the run died, and the reaper removes what is
//!   still announced. The peer dies with its parent by `PR_SET_PDEATHSIG`.
//!
//! Creation happens while holding the [`Registry`] lock, and the signal
//! thread takes that lock before cleaning (and exits holding it), so no
//! object can be created between the clean-up and the exit, and none can
//! exist that the clean-up does not know of.
//!
//! Each connector names what it creates, through the `announce` hook of
//! [`Connector::prepare`](unipc::facility::Connector::prepare), before it
//! exists: paths, POSIX names, and for System V objects the fresh key
//! (`unipc::facility::fresh_sysv_key`) each is then made under, exclusively
//! (a private object's identifier would exist only once the object does,
//! leaving a moment in which a SIGKILL leaves it behind). The runner
//! registers each at once, still holding the lock; nothing is guessed. A
//! System V object is removed by its key only if this user made it.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, MutexGuard, Once};

use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;
use unipc::facility::CreatedObject;
use unipc::name::PosixName;

/// What exists now and must go if the run ends early.
#[derive(Default)]
pub struct Registry {
    peer: Option<u32>,
    sysv_queues: BTreeSet<i32>,
    sysv_segments: BTreeSet<i32>,
    sysv_semaphores: BTreeSet<i32>,
    posix_queues: BTreeSet<String>,
    posix_shm: BTreeSet<String>,
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
    sysv_segments: BTreeSet::new(),
    sysv_semaphores: BTreeSet::new(),
    posix_queues: BTreeSet::new(),
    posix_shm: BTreeSet::new(),
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

    /// Announces an object a connector created, which exists now.
    pub fn created(&mut self, object: &CreatedObject) {
        let line = match object {
            CreatedObject::SysvQueue(key) => {
                self.sysv_queues.insert(*key).then(|| format!("msq {key}"))
            }
            CreatedObject::PosixMq(name) => (self.posix_queues)
                .insert(name.to_string())
                .then(|| format!("mq {name}")),
            CreatedObject::Path(path) => return self.file(path, false),
            CreatedObject::SysvShm(id) => {
                self.sysv_segments.insert(*id).then(|| format!("shm {id}"))
            }
            CreatedObject::SysvSemaphores(id) => self
                .sysv_semaphores
                .insert(*id)
                .then(|| format!("sem {id}")),
            CreatedObject::PosixShm(name) => (self.posix_shm)
                .insert(name.to_string())
                .then(|| format!("pshm {name}")),
        };
        if let Some(line) = line {
            self.tell(&line);
        }
    }

    /// Forgets an object (call once it is removed, or its name unlinked).
    pub fn forget(&mut self, object: &CreatedObject) {
        let line = match object {
            CreatedObject::SysvQueue(key) => {
                self.sysv_queues.remove(key).then(|| format!("unmsq {key}"))
            }
            CreatedObject::PosixMq(name) => (self.posix_queues)
                .remove(&name.to_string())
                .then(|| format!("unmq {name}")),
            CreatedObject::Path(path) => return self.file(path, true),
            CreatedObject::SysvShm(id) => {
                self.sysv_segments.remove(id).then(|| format!("unshm {id}"))
            }
            CreatedObject::SysvSemaphores(id) => {
                (self.sysv_semaphores.remove(id)).then(|| format!("unsem {id}"))
            }
            CreatedObject::PosixShm(name) => (self.posix_shm)
                .remove(&name.to_string())
                .then(|| format!("unpshm {name}")),
        };
        if let Some(line) = line {
            self.tell(&line);
        }
    }

    fn clean_up(&mut self) {
        if let Some(pid) = self.peer.take() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
        for key in std::mem::take(&mut self.sysv_queues) {
            remove_queue(key);
        }
        for key in std::mem::take(&mut self.sysv_segments) {
            remove_segment(key);
        }
        for key in std::mem::take(&mut self.sysv_semaphores) {
            remove_semaphores(key);
        }
        for name in std::mem::take(&mut self.posix_queues) {
            remove_posix_queue(&name);
        }
        for name in std::mem::take(&mut self.posix_shm) {
            remove_posix_shm(&name);
        }
        for file in std::mem::take(&mut self.files) {
            let _ = std::fs::remove_file(file);
        }
        if let Some(dir) = self.scratch.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        // Everything is gone; the reaper has nothing left to do.
        if let Some(reaper) = &mut self.reaper {
            let _ = writeln!(reaper.stdin, "done");
        }
    }
}

/// Whether this user made an object whose creator is `creator_uid`: an
/// announced key is the run's own only while it made the object under it.
fn made_by_us(creator_uid: u32) -> bool {
    creator_uid == rustix::process::geteuid().as_raw()
}

/// Removes the queue with `key`, if this user made it.
fn remove_queue(key: i32) {
    let key = unipc::name::SysvKey::Key(key);
    if let Ok(queue) = unipc::message::sysv_mq::QueueOptions::new().open(key) {
        if queue.stat().is_ok_and(|st| made_by_us(st.creator_uid)) {
            let _ = queue.remove();
        }
    }
}

/// Removes the shared-memory segment with `key`, if this user made it.
fn remove_segment(key: i32) {
    let key = unipc::name::SysvKey::Key(key);
    if let Ok(segment) = unipc::shm::sysv::SegmentOptions::new().open(key) {
        if segment.stat().is_ok_and(|st| made_by_us(st.creator_uid)) {
            let _ = segment.remove();
        }
    }
}

/// Removes the semaphore set with `key`, if this user made it.
fn remove_semaphores(key: i32) {
    let key = unipc::name::SysvKey::Key(key);
    if let Ok(set) = unipc::sync::sysv_sem::SemaphoreSet::open(key) {
        if set.stat().is_ok_and(|st| made_by_us(st.creator_uid)) {
            let _ = set.remove();
        }
    }
}

/// Unlinks the POSIX shared-memory name `name`, if it is still there.
fn remove_posix_shm(name: &str) {
    if let Ok(name) = PosixName::new(name) {
        let _ = unipc::shm::posix::unlink(&name);
    }
}

/// Unlinks the POSIX queue name `name`, if it is still there.
fn remove_posix_queue(name: &str) {
    if let Ok(name) = PosixName::new(name) {
        let _ = unipc::message::posix_mq::unlink(&name);
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
    let mut segments = BTreeSet::new();
    let mut semaphores = BTreeSet::new();
    let mut names = BTreeSet::new();
    let mut shm_names = BTreeSet::new();
    let mut files = BTreeSet::new();
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
            "shm" => {
                segments.extend(arg.parse::<i32>());
            }
            "unshm" => {
                if let Ok(id) = arg.parse::<i32>() {
                    segments.remove(&id);
                }
            }
            "sem" => {
                semaphores.extend(arg.parse::<i32>());
            }
            "unsem" => {
                if let Ok(id) = arg.parse::<i32>() {
                    semaphores.remove(&id);
                }
            }
            "mq" => {
                names.insert(arg.to_owned());
            }
            "unmq" => {
                names.remove(arg);
            }
            "pshm" => {
                shm_names.insert(arg.to_owned());
            }
            "unpshm" => {
                shm_names.remove(arg);
            }
            "done" => return 0,
            _ => {}
        }
    }
    for key in queues {
        remove_queue(key);
    }
    for key in segments {
        remove_segment(key);
    }
    for key in semaphores {
        remove_semaphores(key);
    }
    for name in names {
        remove_posix_queue(&name);
    }
    for name in shm_names {
        remove_posix_shm(&name);
    }
    for file in files {
        let _ = std::fs::remove_file(file);
    }
    for dir in dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
    0
}
