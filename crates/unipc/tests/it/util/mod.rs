//! The cross-process harness.
//!
//! A test plays both sides by re-executing this test binary: the parent
//! spawns `current_exe() <test name> --exact` with `UNIPC_TEST_ROLE` set,
//! and the test function, seeing the role, runs the peer's side instead of
//! the parent's. Descriptors are handed to the child at fixed numbers with
//! `dup2` between fork and exec, so no other concurrently spawned child can
//! inherit them (which would hide an EOF).
//!
//! ```ignore
//! #[test]
//! fn ping() {
//!     if let Some(role) = util::role() {
//!         // the child's side, chosen by `role`
//!         return;
//!     }
//!     let child = util::Peer::new("ping", "reader").spawn();
//!     child.wait_success();
//! }
//! ```
#![allow(dead_code)]

use std::ffi::OsString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The one way a test says it skipped (see `unipc-test-support`).
pub use unipc_test_support::skip;

/// Environment variable that carries the child's role.
pub const ROLE_VAR: &str = "UNIPC_TEST_ROLE";
/// How long any peer may run before the watchdog kills it and fails the test.
pub const WATCHDOG: Duration = Duration::from_secs(30);
/// First descriptor number used to hand descriptors to a child.
pub const FIRST_PASSED_FD: RawFd = 10;

/// The role this process plays, when it is a re-executed peer.
pub fn role() -> Option<String> {
    std::env::var(ROLE_VAR).ok()
}

/// An argument passed to a peer with [`Peer::arg`].
pub fn arg(name: &str) -> String {
    std::env::var(format!("UNIPC_TEST_ARG_{name}"))
        .unwrap_or_else(|_| panic!("peer started without argument {name}"))
}

/// The descriptor passed as the `index`th with [`Peer::fd`], owned by the peer.
pub fn passed_fd(index: usize) -> OwnedFd {
    let raw = FIRST_PASSED_FD + index as RawFd;
    // Fails loudly if the parent did not pass it.
    rustix::io::fcntl_getfd(unsafe_borrow(raw)).expect("descriptor not passed to the peer");
    // SAFETY: the parent placed this descriptor at `raw` in this process
    // with dup2 before exec, and nothing else in the peer owns it: the peer
    // takes each passed index once.
    unsafe { OwnedFd::from_raw_fd(raw) }
}

fn unsafe_borrow(raw: RawFd) -> BorrowedFd<'static> {
    // SAFETY: only used for an fcntl probe; a closed descriptor number makes
    // the probe fail with EBADF, which is what the caller checks.
    unsafe { BorrowedFd::borrow_raw(raw) }
}

/// A unique name for an object made by this test process: `unipc-test-PID-N`.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "unipc-test-{}-{}-{}",
        std::process::id(),
        prefix,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A temporary directory named `unipc-test-*` that is removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let dir = std::env::temp_dir().join(unique("dir"));
        std::fs::create_dir(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A peer process to start: this test binary running one test in a role.
pub struct Peer {
    command: Command,
    fds: Vec<RawFd>,
}

impl Peer {
    /// `test` is the test's full path below the crate (e.g. `pipe::eof`).
    pub fn new(test: &str, role: &str) -> Peer {
        Peer::with_command(
            Command::new(std::env::current_exe().expect("current_exe")),
            test,
            role,
        )
    }

    /// As [`Peer::new`], the peer running in the network namespace `netns`
    /// (`ip netns exec NETNS <this binary> ...`, which execs the binary:
    /// the child's pid is the peer's).
    pub fn in_netns(netns: &str, test: &str, role: &str) -> Peer {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", netns])
            .arg(std::env::current_exe().expect("current_exe"));
        Peer::with_command(command, test, role)
    }

    fn with_command(mut command: Command, test: &str, role: &str) -> Peer {
        command
            .args([test, "--exact", "--nocapture", "--test-threads=1", "-q"])
            .env(ROLE_VAR, role);
        // A peer's own libtest report would mix into the parent's output;
        // tests that use the peer's stdout as a channel ask for it.
        command.stdin(Stdio::null()).stdout(Stdio::null());
        Peer {
            command,
            fds: Vec::new(),
        }
    }

    /// Passes a named string argument, read in the peer with [`arg`].
    pub fn arg(mut self, name: &str, value: impl Into<OsString>) -> Peer {
        self.command
            .env(format!("UNIPC_TEST_ARG_{name}"), value.into());
        self
    }

    /// Hands `fd` to the peer as descriptor `FIRST_PASSED_FD + index`, where
    /// index counts the calls to `fd`. The parent keeps its own copy.
    pub fn fd(mut self, fd: BorrowedFd<'_>) -> Peer {
        self.fds.push(fd.as_raw_fd());
        self
    }

    /// Direct the peer's stdout to a pipe the parent reads.
    pub fn capture_stdout(mut self) -> Peer {
        self.command.stdout(Stdio::piped());
        self
    }

    /// Any further setup of the command (env, uid).
    pub fn command(&mut self) -> &mut Command {
        &mut self.command
    }

    pub fn spawn(mut self) -> Running {
        let fds = self.fds.clone();
        let hand_over = move || {
            let base = FIRST_PASSED_FD + 64;
            for (i, &fd) in fds.iter().enumerate() {
                dup2_raw(fd, base + i as RawFd)?;
            }
            for i in 0..fds.len() {
                dup2_raw(base + i as RawFd, FIRST_PASSED_FD + i as RawFd)?;
                // SAFETY: `base + i` was made by the dup2 above and is owned by
                // nothing else in the child; closing it twice cannot happen.
                unsafe { libc::close(base + i as RawFd) };
            }
            Ok(())
        };
        // SAFETY: between fork and exec the closure only calls dup2 and close,
        // which are async-signal-safe, allocate nothing and take no lock. The
        // sources are copied first so that a target number that equals a
        // later source does not clobber it.
        unsafe { self.command.pre_exec(hand_over) };
        let child = self.command.spawn().expect("spawn peer");
        Running {
            child,
            started: Instant::now(),
        }
    }
}

/// dup2 for the pre-exec hand-over.
fn dup2_raw(from: RawFd, to: RawFd) -> std::io::Result<()> {
    // SAFETY: dup2 takes plain descriptor numbers; a bad one fails with EBADF,
    // reported as an error; it is async-signal-safe.
    if unsafe { libc::dup2(from, to) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A running peer, killed if it outlives the watchdog.
pub struct Running {
    pub child: Child,
    started: Instant,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the peer under the watchdog; panics if it hangs.
    pub fn wait(mut self) -> ExitStatus {
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for peer") {
                return status;
            }
            if self.started.elapsed() > WATCHDOG {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "peer {} hung for more than {WATCHDOG:?}; the watchdog killed it",
                    self.child.id()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits and asserts that the peer's test passed.
    pub fn wait_success(self) {
        let status = self.wait();
        assert!(
            status.success(),
            "peer failed: {status:?} (signal {:?})",
            status.signal()
        );
    }

    /// Waits and returns everything the peer wrote to its captured stdout.
    pub fn wait_stdout(mut self) -> (ExitStatus, Vec<u8>) {
        use std::io::Read;
        let mut out = Vec::new();
        let mut stdout = self.child.stdout.take().expect("stdout was not captured");
        stdout.read_to_end(&mut out).expect("read peer stdout");
        (self.wait(), out)
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The uid and gid of `nobody`, for tests of permission refusals (the tests
/// run as root, which bypasses permission checks).
pub const NOBODY: (u32, u32) = (65534, 65534);

/// Makes a peer drop root to `nobody` before exec.
pub fn as_nobody(peer: &mut Peer) {
    peer.command().uid(NOBODY.0).gid(NOBODY.1);
}

/// Whether this process runs as root (permission tests need to switch user).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Makes the calling thread see `value` in `/proc/sys/net/core/wmem_max`
/// and `wmem_default`, for a peer that tests what unipc derives from them.
///
/// The thread moves to a private mount namespace, made non-propagating so
/// that nothing mounted in it is seen outside, and bind-mounts files
/// written in `dir` over the two; the namespace ends with the process.
/// Needs root; says why when it cannot.
pub fn fake_wmem(dir: &Path, value: usize) -> Result<(), String> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;

    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
    let root = CString::new("/").unwrap();
    // SAFETY: `root` is a NUL-terminated path that outlives the call; a
    // propagation change reads no source, type or data (all null).
    let rc = unsafe {
        libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(format!(
            "making mounts private: {}",
            std::io::Error::last_os_error()
        ));
    }
    for name in ["wmem_max", "wmem_default"] {
        let file = dir.join(name);
        std::fs::write(&file, format!("{value}\n")).map_err(|e| e.to_string())?;
        let source = CString::new(file.as_os_str().as_bytes()).unwrap();
        let target = CString::new(format!("/proc/sys/net/core/{name}")).unwrap();
        // SAFETY: both paths are NUL-terminated and outlive the call; a
        // bind mount reads no type or data (null).
        let rc = unsafe {
            libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            return Err(format!(
                "bind-mounting over {name}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}
