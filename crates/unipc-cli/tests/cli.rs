//! `unipc` run as a user would: the built binary, real processes on both
//! sides (one `unipc recv`, one `unipc send`, or a shell), exit statuses and
//! the exact bytes that crossed.
//!
//! Every child runs under a deadline ([`DEADLINE`]) and is killed when a
//! test ends early; every named object has a guard that removes it; every
//! file lives in a `unipc-test-*` temporary directory.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long any child may run before it is killed and the test fails.
const DEADLINE: Duration = Duration::from_secs(10);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(5);

fn unipc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_unipc"))
}

/// A unique name for this test process: `unipc-test-PID-N`.
fn unique() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "unipc-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("unipc-test-")
        .tempdir()
        .expect("create a unipc-test-* directory")
}

/// Bytes that show any loss, duplication or reordering (no period short
/// enough to hide a dropped block).
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Children under a deadline

/// What a finished child left.
#[derive(Debug)]
struct Finished {
    what: String,
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
}

impl Finished {
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Asserts exit status 0 and returns stdout as text.
    fn ok(&self) -> String {
        assert!(
            self.status.success(),
            "{} failed ({:?}): {}",
            self.what,
            self.status,
            self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        self.stdout_text()
    }

    /// Asserts a runtime failure: exit 1, not a signal, exactly one line
    /// on stderr that names `object`; returns that line.
    fn runtime_error(&self, object: &str) -> String {
        self.exits(1);
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "{}: stderr is not one line: {:?}",
            self.what,
            self.stderr
        );
        assert!(
            lines[0].contains(object),
            "{}: the error does not name {object}: {}",
            self.what,
            lines[0]
        );
        lines[0].to_owned()
    }

    /// Asserts a usage error (exit 2); returns stderr.
    fn usage_error(&self) -> String {
        self.exits(2);
        self.stderr.clone()
    }

    fn exits(&self, code: i32) {
        assert_eq!(
            self.status.signal(),
            None,
            "{} was killed by a signal: {}",
            self.what,
            self.stderr
        );
        assert_eq!(
            self.status.code(),
            Some(code),
            "{} (stdout {:?}, stderr {:?})",
            self.what,
            self.stdout_text(),
            self.stderr
        );
        assert!(
            !self.stderr.contains("panicked"),
            "{}: {}",
            self.what,
            self.stderr
        );
    }
}

/// A running child: killed on drop if still running.
struct Running {
    what: String,
    child: Child,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    stdin: Option<JoinHandle<()>>,
}

/// What a child reads on stdin.
enum Input {
    Nothing,
    Bytes(Vec<u8>),
}

fn drain(mut from: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut all = Vec::new();
        let _ = from.read_to_end(&mut all);
        all
    })
}

fn describe(cmd: &Command) -> String {
    let mut what = cmd.get_program().to_string_lossy().into_owned();
    if what.ends_with("/unipc") {
        what = "unipc".to_owned();
    }
    for arg in cmd.get_args() {
        what.push(' ');
        what.push_str(&arg.to_string_lossy());
    }
    what
}

/// Starts `cmd` with `input` on stdin and stderr collected; stdout is
/// collected too unless `take_stdout` (then the caller reads it).
fn spawn(mut cmd: Command, input: Input, take_stdout: bool) -> (Running, Option<ChildStdout>) {
    let what = describe(&cmd);
    cmd.stdin(match input {
        Input::Nothing => Stdio::null(),
        Input::Bytes(_) => Stdio::piped(),
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let stdin = match input {
        Input::Nothing => None,
        Input::Bytes(data) => {
            let mut pipe = child.stdin.take().unwrap();
            // A child that stops reading (the point of some tests) makes
            // this write fail; that is not the test's failure.
            Some(thread::spawn(move || {
                let _ = pipe.write_all(&data);
            }))
        }
    };
    let out = child.stdout.take().unwrap();
    let (stdout, taken) = if take_stdout {
        (None, Some(out))
    } else {
        (Some(drain(out)), None)
    };
    let stderr = Some(drain(child.stderr.take().unwrap()));
    (
        Running {
            what,
            child,
            stdout,
            stderr,
            stdin,
        },
        taken,
    )
}

fn start(cmd: Command, input: Input) -> Running {
    spawn(cmd, input, false).0
}

/// Runs `cmd` to the end (bounded by [`DEADLINE`]).
fn run(cmd: Command, input: Input) -> Finished {
    start(cmd, input).finish()
}

fn recv_cmd(endpoint: &str) -> Command {
    let mut c = unipc();
    c.args(["recv", endpoint]);
    c
}

/// `unipc ARGS` to the end, nothing on stdin.
fn unipc_run(args: &[&str]) -> Finished {
    let mut cmd = unipc();
    cmd.args(args);
    run(cmd, Input::Nothing)
}

impl Running {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("waitpid").is_none()
    }

    /// Waits for the end, at most [`DEADLINE`]; a child still running then
    /// is killed and the test fails.
    fn finish(mut self) -> Finished {
        let deadline = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("waitpid") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("{} still running after {DEADLINE:?}; killed", self.what);
            }
            thread::sleep(POLL);
        };
        if let Some(writer) = self.stdin.take() {
            writer.join().unwrap();
        }
        let stdout = self
            .stdout
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default();
        let stderr = self.stderr.take().unwrap().join().unwrap();
        Finished {
            what: self.what.clone(),
            status,
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// SIGKILL, then the end.
    fn kill(mut self) -> Finished {
        let _ = self.child.kill();
        self.finish()
    }

    /// Waits until `ready(pid)` holds. False when the child exited first.
    fn wait_until(&mut self, ready: impl Fn(u32) -> bool) -> bool {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if ready(self.pid()) {
                return true;
            }
            if !self.is_running() {
                return false;
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready after {DEADLINE:?}",
                self.what
            );
            thread::sleep(POLL);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// Readiness: the receiving process itself holds the bound socket

fn socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    dir.filter_map(|entry| {
        let link = std::fs::read_link(entry.ok()?.path()).ok()?;
        let link = link.to_str()?;
        link.strip_prefix("socket:[")?
            .strip_suffix(']')?
            .parse()
            .ok()
    })
    .collect()
}

/// Whether `pid` has a UNIX socket bound to `name` (a path, or `@name`),
/// listening when `listening`.
fn unix_bound(pid: u32, name: &str, listening: bool) -> bool {
    const ACCEPTCON: u32 = 0x10000;
    let ours = socket_inodes(pid);
    let table = std::fs::read_to_string("/proc/net/unix").unwrap();
    table.lines().skip(1).any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.len() >= 8
            && f[7] == name
            && f[6].parse().is_ok_and(|inode: u64| ours.contains(&inode))
            && (!listening || u32::from_str_radix(f[3], 16).is_ok_and(|fl| fl & ACCEPTCON != 0))
    })
}

/// Whether `pid` has a `proto` ("tcp" listening, or "udp") socket on
/// 127.0.0.1:`port`.
fn inet_bound(pid: u32, proto: &str, port: u16) -> bool {
    let ours = socket_inodes(pid);
    let table = std::fs::read_to_string(format!("/proc/net/{proto}")).unwrap();
    let local = format!("0100007F:{port:04X}");
    table.lines().skip(1).any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.len() >= 10
            && f[1] == local
            && (proto != "tcp" || f[3] == "0A")
            && f[9].parse().is_ok_and(|inode: u64| ours.contains(&inode))
    })
}

/// A port nobody used a moment ago.
fn free_port(proto: &str) -> u16 {
    match proto {
        "tcp" => std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
        _ => std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
    }
}

/// `unipc recv PROTO:127.0.0.1:PORT EXTRA..` on a free port, returned once
/// it is bound; another port when someone took this one meanwhile.
fn receiver_on_free_port(
    proto: &str,
    extra: &[&str],
    take_stdout: bool,
) -> (Running, Option<ChildStdout>, String) {
    for _ in 0..5 {
        let port = free_port(proto);
        let endpoint = format!("{proto}:127.0.0.1:{port}");
        let mut cmd = unipc();
        cmd.arg("recv").arg(&endpoint).args(extra);
        let (mut recv, stdout) = spawn(cmd, Input::Nothing, take_stdout);
        if recv.wait_until(|pid| inet_bound(pid, proto, port)) {
            return (recv, stdout, endpoint);
        }
        let out = recv.finish();
        assert!(
            out.stderr.contains("in use"),
            "recv {endpoint} failed: {}",
            out.stderr
        );
    }
    panic!("no free {proto} port in five tries");
}

/// `unipc recv ENDPOINT EXTRA..` on a UNIX socket, returned once bound.
fn unix_receiver(endpoint: &str, extra: &[&str], listening: bool) -> Running {
    let name = endpoint.split_once(':').unwrap().1;
    let mut cmd = unipc();
    cmd.arg("recv").arg(endpoint).args(extra);
    let mut recv = start(cmd, Input::Nothing);
    if !recv.wait_until(|pid| unix_bound(pid, name, listening)) {
        panic!("{:?}", recv.finish());
    }
    recv
}

// ---------------------------------------------------------------------------
// Named objects

/// Removes a named object (`unipc rm ENDPOINT`) when dropped, so a failed
/// assertion leaves no queue behind.
struct Removed(String);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = unipc()
            .args(["rm", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs `cmd` in a shell with umask 077, so a mode the umask would narrow
/// shows on disk.
fn under_umask_077(args: &[&str]) -> Finished {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(r#"umask 077; exec "$@""#)
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_unipc"))
        .args(args);
    run(cmd, Input::Nothing)
}

fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// Makes `cmd` start with SIGPIPE at its default action (death).
///
/// The Rust runtime of `unipc` sets SIG_IGN again before `main`, so this
/// proves the binary survives whatever it inherits; the library's own
/// SIG_DFL path is proved in `crates/unipc/tests/it/{pipe,fifo}.rs`.
fn with_default_sigpipe(cmd: &mut Command) -> &mut Command {
    let reset = || {
        // SAFETY: SIGPIPE is a valid signal number and SIG_DFL installs no
        // handler code; signal(2) is async-signal-safe.
        if unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) } == libc::SIG_ERR {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the hook runs in the forked child before exec and only calls
    // signal(2) (async-signal-safe), allocating nothing and taking no lock.
    unsafe { cmd.pre_exec(reset) }
}

// ===========================================================================
// Exit statuses

#[test]
fn usage_errors_exit_2() {
    let out = unipc_run(&["send", "carrier-pigeon:coop", "hi"]);
    let err = out.usage_error();
    assert!(err.contains("carrier-pigeon"), "{err}");
    for scheme in [
        "fifo",
        "unix",
        "unix-seqpacket",
        "tcp",
        "posix-mq",
        "sysv-mq",
        "unix-dgram",
        "udp",
    ] {
        assert!(
            err.contains(scheme),
            "the schemes listed lack {scheme}: {err}"
        );
    }

    let err = unipc_run(&["send", "tcp:host", "hi"]).usage_error();
    assert!(err.contains("HOST:PORT"), "{err}");
    let err = unipc_run(&["recv", "posix-mq:jobs"]).usage_error();
    assert!(err.contains("'/'"), "{err}");
    let err = unipc_run(&["recv", "sysv-mq:nothex"]).usage_error();
    assert!(err.contains("nothex"), "{err}");

    let queue = format!("posix-mq:/{}", unique());
    let err = unipc_run(&["recv", &queue, "--raw", "--json"]).usage_error();
    assert!(err.contains("--raw") && err.contains("--json"), "{err}");

    let dir = temp_dir();
    let fifo = format!("fifo:{}", dir.path().join("f").display());
    let err = unipc_run(&["send", &fifo, "--priority", "3", "hi"]).usage_error();
    assert!(err.contains("byte stream") && err.contains(&fifo), "{err}");
    let err = unipc_run(&["recv", &fifo, "--type", "3"]).usage_error();
    assert!(err.contains("byte stream"), "{err}");
    assert!(
        !dir.path().join("f").exists(),
        "a usage error created the FIFO"
    );

    // Refused before the queue is even looked for: it does not exist.
    let sysv = format!("sysv-mq:{:#x}", sysv_key(0xff));
    let err = unipc_run(&["send", &sysv, "--type", "0", "hi"]).usage_error();
    assert!(err.contains("--type") && err.contains("'0'"), "{err}");
    let err = unipc_run(&["send", &queue, "--type", "2", "hi"]).usage_error();
    assert!(err.contains("--type"), "{err}");
    let err = unipc_run(&["send", &sysv, "--priority", "2", "hi"]).usage_error();
    assert!(err.contains("--priority"), "{err}");
    let err = unipc_run(&["recv", &queue, "--except", "2"]).usage_error();
    assert!(err.contains("--except"), "{err}");
    let err =
        unipc_run(&["send", "unix-dgram:@nobody-there", "--priority", "1", "x"]).usage_error();
    assert!(err.contains("--priority"), "{err}");

    unipc_run(&["recv", &queue, "--count", "0"]).usage_error();
    unipc_run(&["recv", &queue, "--timeout", "-1"]).usage_error();
    unipc_run(&["create", &queue, "--mode", "999"]).usage_error();
    unipc_run(&["create", "unix:@sock"]).usage_error();
    unipc_run(&["stat", &fifo]).usage_error();
    unipc_run(&["frobnicate"]).usage_error();
    unipc_run(&["pty"]).usage_error();
}

#[test]
fn runtime_errors_exit_1_with_one_line_naming_the_endpoint() {
    let queue = format!("posix-mq:/{}", unique());
    let line = unipc_run(&["recv", &queue]).runtime_error(&queue);
    assert!(line.contains("no queue"), "{line}");
    unipc_run(&["send", &queue, "hi"]).runtime_error(&queue);
    unipc_run(&["stat", &queue]).runtime_error(&queue);
    unipc_run(&["rm", &queue]).runtime_error(&queue);

    let sysv = format!("sysv-mq:{:#x}", sysv_key(0xfe));
    let line = unipc_run(&["recv", &sysv]).runtime_error(&sysv);
    assert!(line.contains("no queue"), "{line}");

    let tcp = format!("tcp:127.0.0.1:{}", free_port("tcp"));
    let line = unipc_run(&["send", &tcp, "hi"]).runtime_error(&tcp);
    assert!(line.contains("no process listens there"), "{line}");

    let abstract_name = format!("unix:@{}", unique());
    let line = unipc_run(&["send", &abstract_name, "hi"]).runtime_error(&abstract_name);
    assert!(line.contains("no process listens there"), "{line}");

    let dir = temp_dir();
    for scheme in ["unix", "unix-seqpacket", "unix-dgram"] {
        let endpoint = format!("{scheme}:{}", dir.path().join("nothing.sock").display());
        let line = unipc_run(&["send", &endpoint, "hi"]).runtime_error(&endpoint);
        assert!(line.contains("no socket file there"), "{line}");
    }

    let fifo = format!("fifo:{}", dir.path().join("nothing.fifo").display());
    unipc_run(&["send", &fifo, "hi"]).runtime_error(&fifo);
    unipc_run(&["recv", &fifo]).runtime_error(&fifo);

    // A regular file is not a FIFO, and `rm` leaves it be.
    let file = dir.path().join("plain");
    std::fs::write(&file, "keep").unwrap();
    let plain = format!("fifo:{}", file.display());
    unipc_run(&["send", &plain, "hi"]).runtime_error(&plain);
    let line = unipc_run(&["rm", &plain]).runtime_error(&plain);
    assert!(line.contains("not a FIFO"), "{line}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");

    unipc_run(&["pty", "--", "/nonexistent/unipc-test-command"]).runtime_error("/nonexistent");
}

#[test]
fn help_of_every_subcommand_has_an_example() {
    for command in [
        &["send"][..],
        &["recv"],
        &["create"],
        &["stat"],
        &["rm"],
        &["read"],
        &["write"],
        &["fifo"],
        &["fifo", "create"],
        &["pty"],
        &["bench"],
        &["compare"],
        &["lock"],
        &["semop"],
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        let out = unipc_run(&args);
        let text = out.ok();
        assert!(
            text.contains("Example"),
            "unipc {} --help has no example:\n{text}",
            command.join(" ")
        );
    }
    // The endpoint table keeps its lines.
    let text = unipc_run(&["--help"]).ok();
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("byte streams") && l.contains("fifo:PATH")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("messages") && l.contains("posix-mq:/NAME")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("shared memory")
                && l.contains("shm:/NAME")
                && l.contains("sysv-shm:KEY")),
        "{text}"
    );
}

// ===========================================================================
// Byte streams

/// `recv` (already started) in one process, `send` in another, DATA as an
/// argument or on stdin; recv must print exactly DATA.
fn stream_round_trip(recv: Running, endpoint: &str, data: &[u8], via_stdin: bool) {
    let mut cmd = unipc();
    cmd.args(["send", endpoint, "--timeout", "5"]);
    let input = if via_stdin {
        Input::Bytes(data.to_vec())
    } else {
        cmd.arg(std::str::from_utf8(data).unwrap());
        Input::Nothing
    };
    run(cmd, input).ok();
    let out = recv.finish();
    out.ok();
    assert!(
        out.stdout == data,
        "recv {endpoint} printed {} bytes, not the {} sent (first difference at {:?})",
        out.stdout.len(),
        data.len(),
        out.stdout.iter().zip(data).position(|(a, b)| a != b)
    );
}

#[test]
fn fifo_carries_bytes_between_two_processes() {
    let dir = temp_dir();
    let path = dir.path().join("f");
    let endpoint = format!("fifo:{}", path.display());
    let path_arg = path.to_str().unwrap();

    // The mode on disk is the one asked for, whatever the umask.
    under_umask_077(&["fifo", "create", path_arg, "--mode", "660"]).ok();
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_fifo());
    assert_eq!(mode_of(&path), 0o660);

    let recv = start(recv_cmd(&endpoint), Input::Nothing);
    stream_round_trip(recv, &endpoint, b"hello, fifo", false);

    let recv = start(recv_cmd(&endpoint), Input::Nothing);
    stream_round_trip(recv, &endpoint, &pattern(1 << 20), true);

    // Without --mode: 600. And the FIFO outlives every command that used it.
    let other = dir.path().join("g");
    under_umask_077(&["fifo", "create", other.to_str().unwrap()]).ok();
    assert_eq!(mode_of(&other), 0o600);
    assert!(std::fs::symlink_metadata(&path)
        .unwrap()
        .file_type()
        .is_fifo());

    unipc_run(&["rm", &endpoint]).ok();
    assert!(!path.exists());
}

#[test]
fn unix_stream_by_path_and_abstract_name() {
    let dir = temp_dir();
    let sock = dir.path().join("s.sock");
    let endpoint = format!("unix:{}", sock.display());
    let recv = unix_receiver(&endpoint, &[], true);
    stream_round_trip(recv, &endpoint, b"hello, unix", false);
    assert!(!sock.exists(), "recv left its socket file behind");

    let recv = unix_receiver(&endpoint, &[], true);
    stream_round_trip(recv, &endpoint, &pattern(1 << 20), true);

    let endpoint = format!("unix:@{}", unique());
    let recv = unix_receiver(&endpoint, &[], true);
    stream_round_trip(recv, &endpoint, b"hello, abstract", false);
    let recv = unix_receiver(&endpoint, &[], true);
    stream_round_trip(recv, &endpoint, &pattern(1 << 20), true);
}

#[test]
fn tcp_loopback_carries_bytes() {
    let (recv, _, endpoint) = receiver_on_free_port("tcp", &[], false);
    stream_round_trip(recv, &endpoint, b"hello, tcp", false);
    let (recv, _, endpoint) = receiver_on_free_port("tcp", &[], false);
    stream_round_trip(recv, &endpoint, &pattern(1 << 20), true);
}

#[test]
fn recv_timeout_without_a_sender_exits_1() {
    let dir = temp_dir();
    let fifo_path = dir.path().join("f");
    unipc_run(&["fifo", "create", fifo_path.to_str().unwrap()]).ok();
    let endpoints = [
        format!("fifo:{}", fifo_path.display()),
        format!("unix:{}", dir.path().join("s").display()),
        format!("unix:@{}", unique()),
        format!("tcp:127.0.0.1:{}", free_port("tcp")),
        format!("unix-seqpacket:{}", dir.path().join("p").display()),
        format!("unix-dgram:{}", dir.path().join("d").display()),
        format!("udp:127.0.0.1:{}", free_port("udp")),
    ];
    let began = Instant::now();
    let waiting: Vec<Running> = endpoints
        .iter()
        .map(|e| {
            let mut c = recv_cmd(e);
            c.args(["--timeout", "0.3"]);
            start(c, Input::Nothing)
        })
        .collect();
    for (endpoint, recv) in endpoints.iter().zip(waiting) {
        let line = recv.finish().runtime_error(endpoint);
        assert!(line.contains("timed out"), "{line}");
    }
    assert!(began.elapsed() >= Duration::from_millis(300));
    // Every socket file went with its receiver.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("f")]);

    // And send, with nobody ever coming.
    let endpoint = format!("unix:@{}", unique());
    let began = Instant::now();
    let line = unipc_run(&["send", &endpoint, "--timeout", "0.3", "hi"]).runtime_error(&endpoint);
    assert!(line.contains("timed out"), "{line}");
    assert!(began.elapsed() >= Duration::from_millis(300));
}

#[test]
fn send_timeout_waits_for_a_late_receiver() {
    let dir = temp_dir();
    let fifo_path = dir.path().join("f");
    unipc_run(&["fifo", "create", fifo_path.to_str().unwrap()]).ok();
    let endpoints = [
        format!("fifo:{}", fifo_path.display()),
        format!("unix:{}", dir.path().join("s").display()),
        format!("unix:@{}", unique()),
        format!("unix-seqpacket:{}", dir.path().join("p").display()),
        format!("unix-dgram:{}", dir.path().join("d").display()),
        format!("unix-dgram:@{}", unique()),
    ];
    let mut senders: Vec<Running> = endpoints
        .iter()
        .map(|e| {
            let mut c = unipc();
            c.args(["send", e, "--timeout", "8", "late but here"]);
            start(c, Input::Nothing)
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    for (endpoint, send) in endpoints.iter().zip(&mut senders) {
        assert!(send.is_running(), "send {endpoint} did not wait");
    }
    let receivers: Vec<Running> = endpoints
        .iter()
        .map(|e| start(recv_cmd(e), Input::Nothing))
        .collect();
    for (send, recv) in senders.into_iter().zip(receivers) {
        send.finish().ok();
        let out = recv.finish();
        let text = out.ok();
        // A message comes with a newline after it.
        let expected = if out.what.contains("seqpacket") || out.what.contains("dgram") {
            "late but here\n"
        } else {
            "late but here"
        };
        assert_eq!(text, expected, "{}", out.what);
    }
}

/// The sender must fail (exit 1, one line) when its reader goes away, not
/// die of SIGPIPE, even when started with SIGPIPE at its default action.
fn assert_reader_gone(out: &Finished, endpoint: &str) {
    let line = out.runtime_error(endpoint);
    assert!(line.contains("went away"), "{line}");
}

#[test]
fn send_to_a_fifo_reader_that_reads_once_and_exits_fails_without_sigpipe() {
    let dir = temp_dir();
    let path = dir.path().join("f");
    unipc_run(&["fifo", "create", path.to_str().unwrap()]).ok();
    let endpoint = format!("fifo:{}", path.display());
    for default_sigpipe in [false, true] {
        // One read of at most 4 KiB, then gone; 1 MiB cannot fit in the
        // 64 KiB pipe meanwhile.
        let mut reader = Command::new("/bin/sh");
        reader
            .arg("-c")
            .arg(r#"exec dd if="$1" of=/dev/null bs=4096 count=1 2>/dev/null"#)
            .arg("sh")
            .arg(&path);
        let reader = start(reader, Input::Nothing);
        let mut send = unipc();
        send.args(["send", &endpoint]);
        if default_sigpipe {
            with_default_sigpipe(&mut send);
        }
        let out = run(send, Input::Bytes(pattern(1 << 20)));
        assert_reader_gone(&out, &endpoint);
        reader.finish().ok();
    }
}

#[test]
fn send_to_a_receiver_killed_mid_stream_fails_without_sigpipe() {
    let dir = temp_dir();
    // More than the receiver's stdout pipe and both socket buffers hold,
    // so the sender is still writing when the receiver dies.
    let data = pattern(16 << 20);
    for (i, scheme) in ["unix", "tcp"].into_iter().enumerate() {
        let (recv, stdout, endpoint) = if scheme == "tcp" {
            receiver_on_free_port("tcp", &[], true)
        } else {
            let endpoint = format!("unix:{}", dir.path().join(format!("s{i}")).display());
            let (mut recv, stdout) = spawn(recv_cmd(&endpoint), Input::Nothing, true);
            let name = endpoint.split_once(':').unwrap().1.to_owned();
            assert!(recv.wait_until(|pid| unix_bound(pid, &name, true)));
            (recv, stdout, endpoint)
        };
        let mut send = unipc();
        send.args(["send", &endpoint]);
        with_default_sigpipe(&mut send);
        let send = start(send, Input::Bytes(data.clone()));
        // The stream flows: the first byte came through. Then the receiver
        // stops reading (nobody drains its stdout) and is killed.
        let mut stdout = stdout.unwrap();
        let mut first = [0u8; 1];
        stdout.read_exact(&mut first).unwrap();
        assert_eq!(first[0], data[0]);
        let killed = recv.kill();
        assert_eq!(killed.status.signal(), Some(libc::SIGKILL), "{killed:?}");
        assert_reader_gone(&send.finish(), &endpoint);
        drop(stdout);
    }
}

// ===========================================================================
// Messages

/// A System V key derived from this process's id, distinct per `n`.
fn sysv_key(n: u32) -> u32 {
    0x5000_0000 | ((std::process::id() & 0xf_ffff) << 8) | (n & 0xff)
}

#[test]
fn posix_queue_create_stat_priorities_raw_json_nonblock_rm() {
    let endpoint = format!("posix-mq:/{}", unique());
    let _guard = Removed(endpoint.clone());
    let created = under_umask_077(&[
        "create",
        &endpoint,
        "--max-messages",
        "4",
        "--max-size",
        "64",
        "--mode",
        "640",
        "--exclusive",
    ])
    .ok();
    assert!(
        created.contains("created") && created.contains("640"),
        "{created}"
    );
    // Created once: a second exclusive create fails, a plain one opens it
    // when it asks for the queue's own mode, and refuses to adopt it with
    // another mode (the default 600 here).
    unipc_run(&["create", &endpoint, "--exclusive"]).runtime_error(&endpoint);
    let again = unipc_run(&["create", &endpoint, "--mode", "640"]).ok();
    assert!(again.contains("already existed"), "{again}");
    let refused = unipc_run(&["create", &endpoint]).runtime_error(&endpoint);
    assert!(
        refused.contains("mode 0o640") && refused.contains("0o600"),
        "{refused}"
    );

    // A receiver waiting in another process before anything is sent.
    let mut early = recv_cmd(&endpoint);
    early.arg("--json");
    let mut early = start(early, Input::Nothing);
    thread::sleep(Duration::from_millis(100));
    assert!(early.is_running(), "recv did not wait for a message");
    unipc_run(&["send", &endpoint, "first"]).ok();
    let got: serde_json::Value = serde_json::from_str(&early.finish().ok()).unwrap();
    assert_eq!(got["data"], "first");
    assert_eq!(got["priority"], 0);

    for (priority, data) in [("1", "low"), ("9", "high"), ("5", "mid")] {
        unipc_run(&["send", &endpoint, "--priority", priority, data]).ok();
    }
    let text = unipc_run(&["stat", &endpoint]).ok();
    let fields: Vec<(String, String)> = text
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(char::is_whitespace).unwrap();
            (k.to_owned(), v.trim().to_owned())
        })
        .collect();
    for (key, value) in [
        ("messages", "3"),
        ("max_messages", "4"),
        ("max_message_size", "64"),
        ("mode", "640"),
    ] {
        assert!(
            fields.iter().any(|(k, v)| k == key && v == value),
            "stat lacks {key} {value}:\n{text}"
        );
    }
    let stat: serde_json::Value =
        serde_json::from_str(&unipc_run(&["stat", &endpoint, "--json"]).ok()).unwrap();
    assert_eq!(stat["endpoint"], endpoint.as_str());
    assert_eq!(stat["messages"], 3);
    assert_eq!(stat["max_messages"], 4);
    assert_eq!(stat["max_message_size"], 64);
    assert_eq!(stat["mode"], "640");

    let json = unipc_run(&["recv", &endpoint, "--count", "2", "--json"]).ok();
    let got: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), 2, "{json}");
    assert_eq!(got[0]["data"], "high");
    assert_eq!(got[0]["priority"], 9);
    assert_eq!(got[0]["len"], 4);
    assert_eq!(got[1]["data"], "mid");
    assert_eq!(got[1]["priority"], 5);

    let out = unipc_run(&["recv", &endpoint, "--raw"]);
    assert_eq!(out.ok(), "low");

    // Bytes that are not UTF-8, from stdin, come back as hex.
    let mut send = unipc();
    send.args(["send", &endpoint]);
    run(send, Input::Bytes(vec![0xff, 0x00, 0x0a])).ok();
    let got: serde_json::Value =
        serde_json::from_str(&unipc_run(&["recv", &endpoint, "--json"]).ok()).unwrap();
    assert_eq!(got["data_hex"], "ff000a");
    assert_eq!(got["len"], 3);

    let line = unipc_run(&["recv", &endpoint, "--nonblock"]).runtime_error(&endpoint);
    assert!(line.contains("empty"), "{line}");

    let oversize = "x".repeat(65);
    let line = unipc_run(&["send", &endpoint, &oversize]).runtime_error(&endpoint);
    assert!(line.contains("65") && line.contains("64"), "{line}");

    for i in 0..4 {
        unipc_run(&["send", &endpoint, &format!("fill {i}")]).ok();
    }
    let line = unipc_run(&["send", &endpoint, "--nonblock", "one more"]).runtime_error(&endpoint);
    assert!(line.contains("full"), "{line}");

    unipc_run(&["rm", &endpoint]).ok();
    let line = unipc_run(&["recv", &endpoint]).runtime_error(&endpoint);
    assert!(line.contains("no queue"), "{line}");
}

#[test]
fn sysv_queue_type_selection_stat_rm() {
    let mut endpoint = String::new();
    let mut guard = None;
    for n in 0..16 {
        let candidate = format!("sysv-mq:{:#x}", sysv_key(n));
        let out = under_umask_077(&["create", &candidate, "--mode", "640", "--exclusive"]);
        if out.status.success() {
            guard = Some(Removed(candidate.clone()));
            endpoint = candidate;
            break;
        }
        assert!(out.stderr.contains("already exists"), "{}", out.stderr);
    }
    let _guard = guard.expect("a free System V key among 16");

    let mut last_sender = 0;
    for (ty, data) in [("3", "three"), ("1", "one"), ("5", "five"), ("2", "two")] {
        let mut send = unipc();
        send.args(["send", &endpoint, "--type", ty, data]);
        let send = start(send, Input::Nothing);
        last_sender = send.pid();
        send.finish().ok();
    }
    let text = unipc_run(&["stat", &endpoint]).ok();
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().eq(["messages", "4"])),
        "{text}"
    );
    let stat: serde_json::Value =
        serde_json::from_str(&unipc_run(&["stat", &endpoint, "--json"]).ok()).unwrap();
    assert_eq!(stat["endpoint"], endpoint.as_str());
    assert_eq!(stat["messages"], 4);
    assert_eq!(stat["bytes"], 15);
    assert_eq!(stat["mode"], "640");
    assert_eq!(stat["last_sender_pid"], last_sender);
    assert!(stat["last_receiver_pid"].is_null(), "{stat}");
    assert!(stat["id"].is_number() && stat["max_bytes"].is_number());

    let pick = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["recv", endpoint.as_str(), "--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&unipc_run(&all).ok()).unwrap()
    };
    let got = pick(&["--type", "5"]);
    assert_eq!(
        (got["data"].as_str(), got["type"].as_i64()),
        (Some("five"), Some(5))
    );
    let got = pick(&["--type", "-2"]);
    assert_eq!(
        (got["data"].as_str(), got["type"].as_i64()),
        (Some("one"), Some(1))
    );
    let got = pick(&["--except", "3"]);
    assert_eq!(
        (got["data"].as_str(), got["type"].as_i64()),
        (Some("two"), Some(2))
    );
    let err = unipc_run(&[
        "recv",
        &endpoint,
        "--type",
        "3",
        "--except",
        "3",
        "--nonblock",
    ])
    .usage_error();
    assert!(err.contains("--type") && err.contains("--except"), "{err}");
    let got = pick(&[]);
    assert_eq!(
        (got["data"].as_str(), got["type"].as_i64()),
        (Some("three"), Some(3))
    );

    // Plain output: the message and a newline; a type-less send is type 1.
    unipc_run(&["send", &endpoint, "plain"]).ok();
    assert_eq!(
        unipc_run(&["recv", &endpoint, "--type", "1"]).ok(),
        "plain\n"
    );

    unipc_run(&["rm", &endpoint]).ok();
    let line = unipc_run(&["stat", &endpoint]).runtime_error(&endpoint);
    assert!(line.contains("no queue"), "{line}");
}

/// `recv --count 3 --json` in one process, three `send` processes: three
/// messages, each whole, one carrying a newline inside.
fn three_messages(recv: Running, endpoint: &str) {
    for data in ["one", "two", "three\nlines"] {
        let mut send = unipc();
        send.args(["send", endpoint, "--timeout", "5"]);
        run(send, Input::Bytes(data.as_bytes().to_vec())).ok();
    }
    let out = recv.finish();
    let text = out.ok();
    let got: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let data: Vec<&str> = got.iter().map(|m| m["data"].as_str().unwrap()).collect();
    assert_eq!(data, ["one", "two", "three\nlines"], "{}", out.what);
    assert_eq!(got[2]["len"], 11);
}

#[test]
fn datagram_and_seqpacket_sockets_keep_message_boundaries() {
    let dir = temp_dir();
    let args = ["--count", "3", "--json", "--timeout", "8"];
    for (endpoint, listening) in [
        (
            format!("unix-dgram:{}", dir.path().join("d").display()),
            false,
        ),
        (format!("unix-dgram:@{}", unique()), false),
        (
            format!("unix-seqpacket:{}", dir.path().join("p").display()),
            true,
        ),
    ] {
        let recv = unix_receiver(&endpoint, &args, listening);
        three_messages(recv, &endpoint);
    }
    let (recv, _, endpoint) = receiver_on_free_port("udp", &args, false);
    three_messages(recv, &endpoint);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

// ===========================================================================
// FIFO creation over what exists

#[test]
fn fifo_create_refuses_existing_files_and_symlinks() {
    let dir = temp_dir();
    let file = dir.path().join("file");
    std::fs::write(&file, "precious").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let dangling = dir.path().join("dangling");
    let nowhere = dir.path().join("nowhere");
    std::os::unix::fs::symlink(&nowhere, &dangling).unwrap();
    let fifo = dir.path().join("fifo");
    unipc_run(&["fifo", "create", fifo.to_str().unwrap(), "--mode", "644"]).ok();

    for (path, also_create) in [
        (&file, false),
        (&link, false),
        (&dangling, false),
        (&fifo, true),
    ] {
        let shown = path.display().to_string();
        let line = unipc_run(&["fifo", "create", &shown, "--mode", "666"]).runtime_error(&shown);
        assert!(line.contains("exists"), "{line}");
        if also_create {
            let endpoint = format!("fifo:{shown}");
            unipc_run(&["create", &endpoint, "--mode", "666"]).runtime_error(&shown);
        }
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious");
    assert_eq!(mode_of(&file), 0o640);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_link(&link).unwrap(), file);
    assert!(std::fs::symlink_metadata(&dangling)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(!nowhere.exists(), "created through a dangling symlink");
    assert_eq!(mode_of(&fifo), 0o644);
}

// ===========================================================================
// Pseudoterminals

#[test]
fn pty_runs_the_command_on_a_terminal_and_exits_with_its_status() {
    let mut cmd = unipc();
    cmd.args(["pty", "--", "/bin/sh", "-c", "tty; exit 3"]);
    let out = run(cmd, Input::Nothing);
    out.exits(3);
    let text = out.stdout_text();
    let number = text
        .trim_end()
        .strip_prefix("/dev/pts/")
        .unwrap_or_else(|| panic!("not a pty: {text:?}"));
    assert!(number.parse::<u32>().is_ok(), "{text:?}");

    let mut cmd = unipc();
    cmd.args(["pty", "--", "/bin/sh", "-c", "read l; echo got:$l"]);
    let out = run(cmd, Input::Bytes(b"hello\n".to_vec()));
    let text = out.ok();
    assert!(text.contains("got:hello\r\n"), "{text:?}");

    let mut cmd = unipc();
    cmd.args([
        "pty",
        "--rows",
        "33",
        "--cols",
        "101",
        "--",
        "/bin/sh",
        "-c",
        "stty size",
    ]);
    let text = run(cmd, Input::Nothing).ok();
    assert_eq!(text.trim_end(), "33 101");
}

// ===========================================================================
// Regressions found outside in: each test below failed on the code before
// its fix (issue "reliability and security", items in brackets).

/// Sends `sig` to `pid`.
fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) with a pid this test started and a valid signal.
    let rc = unsafe { libc::kill(pid as i32, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig})");
}

/// [3] A message sender whose receiver died gets EPIPE: exit 1, not 0.
#[test]
fn send_to_a_message_receiver_that_died_exits_1() {
    use unipc::message::Messenger;
    let dir = temp_dir();
    let path = dir.path().join("sp");
    let endpoint = format!("unix-seqpacket:{}", path.display());
    let addr = unipc::name::UnixAddr::path(&path).unwrap();
    let listener = unipc::stream::seqpacket::Listener::bind(&addr).unwrap();
    let (reader, mut writer) = std::io::pipe().unwrap();
    let mut sender = unipc()
        .args(["send", &endpoint, "--lines", "--timeout", "5"])
        .stdin(reader)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The receiver takes the first message, then goes away.
    writer.write_all(b"first\n").unwrap();
    let conn = listener
        .accept_timeout(Duration::from_secs(5))
        .expect("the sender sends each line as it comes");
    let (got, _) = conn.recv_vec(unipc::message::Wait::Forever).unwrap();
    assert_eq!(got, b"first");
    drop(conn);
    drop(listener);
    // The sender may be gone already when this write comes (EPIPE).
    let _ = writer.write_all(b"second\nthird\n");
    drop(writer);
    let status = sender.wait().unwrap();
    let mut stderr = String::new();
    sender
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&endpoint) && stderr.contains("message 2"),
        "{stderr}"
    );
}

/// [4] recv takes nothing off a queue once stdout has no reader, and a
/// message it took and could not write is reported with the count.
#[test]
fn recv_does_not_lose_messages_to_a_closed_or_full_stdout() {
    let queue = format!("posix-mq:/{}", unique());
    let _rm = Removed(queue.clone());
    unipc_run(&["create", &queue, "--max-messages", "4", "--max-size", "64"]).ok();
    for m in ["one", "two", "three"] {
        unipc_run(&["send", &queue, m]).ok();
    }
    // stdout is a pipe whose reader has already gone.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut recv = recv_cmd(&queue);
    recv.args(["--count", "3"]).stdout(writer);
    let out = recv.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stat = unipc_run(&["stat", &queue, "--json"]).ok();
    assert!(
        stat.contains("\"messages\":3"),
        "a message was taken: {stat}"
    );

    // stdout full: the first message is taken, cannot be written, and is
    // reported; the others stay.
    let mut recv = recv_cmd(&queue);
    recv.args(["--count", "3"])
        .stdout(std::fs::File::create("/dev/full").unwrap());
    let out = recv.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&queue)
            && err.contains("message 1 (3 bytes)")
            && err.contains("0 message(s) were written"),
        "{err}"
    );
    let stat = unipc_run(&["stat", &queue, "--json"]).ok();
    assert!(stat.contains("\"messages\":2"), "{stat}");
}

/// [5] A TCP receiver killed after accept, before reading: send exits 1.
#[test]
fn tcp_send_to_a_receiver_killed_after_accept_exits_1() {
    let (mut recv, _, endpoint) = receiver_on_free_port("tcp", &["--timeout", "5"], false);
    signal(recv.pid(), libc::SIGSTOP);
    let send = {
        let mut c = unipc();
        c.args(["send", &endpoint, "--timeout", "5", "hello"]);
        start(c, Input::Nothing)
    };
    // Connected (the kernel accepted it into the backlog) and written:
    // the data waits unread. Now the receiver dies.
    thread::sleep(Duration::from_millis(300));
    let _ = recv.child.kill();
    let _ = recv.child.wait();
    let line = send.finish().runtime_error(&endpoint);
    assert!(
        line.contains("reset") || line.contains("went away"),
        "{line}"
    );
}

/// [6] Lines from concurrent FIFO senders never interleave.
#[test]
fn concurrent_fifo_senders_keep_lines_whole() {
    let dir = temp_dir();
    let path = dir.path().join("f");
    unipc_run(&["fifo", "create", path.to_str().unwrap()]).ok();
    let endpoint = format!("fifo:{}", path.display());
    // The reader holds the FIFO open throughout, so senders never see EOF.
    let (recv, stdout) = spawn(recv_cmd(&endpoint), Input::Nothing, true);
    let mut keep_open = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let collected = drain(stdout.unwrap());
    let senders: Vec<Running> = (0..4u8)
        .map(|w| {
            // Lines of 1000 bytes: four to a PIPE_BUF, so an 8 KiB write
            // would split them.
            let mut data = Vec::new();
            for i in 0..300u32 {
                let mut line = format!("{w}:{i}:").into_bytes();
                line.resize(999, b'a' + w);
                line.push(b'\n');
                data.extend_from_slice(&line);
            }
            // Two senders keep lines whole by default, two strictly.
            let mut c = unipc();
            c.args(["send", &endpoint]);
            if w % 2 == 1 {
                c.arg("--lines");
            }
            start(c, Input::Bytes(data))
        })
        .collect();
    for s in senders {
        s.finish().ok();
    }
    keep_open.flush().unwrap();
    drop(keep_open);
    recv.finish().ok();
    let all = collected.join().unwrap();
    let lines: Vec<&[u8]> = all
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), 1200);
    for line in lines {
        assert_eq!(
            line.len(),
            999,
            "a torn line: {:?}",
            String::from_utf8_lossy(&line[..40.min(line.len())])
        );
        let w = line[0] - b'0';
        assert!(line[line.len() - 1] == b'a' + w && line[20..].iter().all(|&b| b == b'a' + w));
    }
}

/// [7] Paths and data are bytes: no panic, and a non-UTF-8 path works.
#[test]
fn non_utf8_arguments_are_bytes_not_panics() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = temp_dir();
    let mut raw = dir.path().as_os_str().as_bytes().to_vec();
    raw.extend_from_slice(b"/caf\xe9.fifo");
    let path = OsStr::from_bytes(&raw);
    let mut create = unipc();
    create.args(["fifo", "create"]).arg(path);
    run(create, Input::Nothing).ok();
    let mut endpoint = b"fifo:".to_vec();
    endpoint.extend_from_slice(&raw);
    let endpoint = OsStr::from_bytes(&endpoint);
    let mut recv = unipc();
    recv.arg("recv").arg(endpoint);
    let recv = start(recv, Input::Nothing);
    let mut send = unipc();
    send.arg("send")
        .arg(endpoint)
        .arg(OsStr::from_bytes(b"\xff\xfe data"));
    run(send, Input::Nothing).ok();
    assert_eq!(recv.finish().stdout, b"\xff\xfe data");

    // An error names the path escaped, on one line.
    let mut bad = b"unix:".to_vec();
    bad.extend_from_slice(&raw);
    bad.extend_from_slice(b"-none\n");
    let mut send = unipc();
    send.arg("send").arg(OsStr::from_bytes(&bad)).arg("hi");
    let line = run(send, Input::Nothing).runtime_error("caf\\xe9.fifo-none\\n");
    assert!(line.contains("no such file"), "{line}");

    let mut pty = unipc();
    pty.args(["pty", "--", "/bin/echo"])
        .arg(OsStr::from_bytes(b"\xff"));
    let out = run(pty, Input::Nothing);
    assert_eq!(out.ok().as_bytes(), "\u{fffd}\r\n".as_bytes());
}

/// [8] No output failure panics: stdout closed or full, stderr closed.
#[test]
fn output_failures_never_panic() {
    let queue = format!("posix-mq:/{}", unique());
    let _rm = Removed(queue.clone());
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = unipc()
        .args(["create", &queue])
        .stdout(writer)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = unipc()
        .args(["create", &queue])
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stdout"),
        "{out:?}"
    );
    // An error with stderr closed is still exit 1.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let missing = format!("posix-mq:/{}", unique());
    let out = unipc()
        .args(["recv", &missing])
        .stderr(writer)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = unipc()
        .args(["stat", &queue])
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

/// [9] Out-of-range and conflicting selections are usage errors.
#[test]
fn type_and_except_ranges_are_usage_errors() {
    let sysv = format!("sysv-mq:{:#x}", sysv_key(0xfe));
    for args in [
        &["recv", &sysv, "--type", "-9223372036854775808"][..],
        &["recv", &sysv, "--except", "0"],
        &["recv", &sysv, "--except", "-5"],
        &["recv", &sysv, "--type", "3", "--except", "4"],
        &["send", &sysv, "--type", "-1", "x"],
        &["send", &sysv, "--type", "9223372036854775808", "x"],
    ] {
        let err = unipc_run(args).usage_error();
        assert!(!err.contains("Select::"), "{args:?}: {err}");
    }
}

/// [10] --timeout bounds a transfer whose peer stopped (SIGSTOP), and a
/// receive from a connected peer that sends nothing.
#[test]
fn timeout_bounds_a_stalled_transfer() {
    let dir = temp_dir();
    let fifo_path = dir.path().join("f");
    unipc_run(&["fifo", "create", fifo_path.to_str().unwrap()]).ok();
    let endpoints = [
        format!("fifo:{}", fifo_path.display()),
        format!("unix:{}", dir.path().join("s").display()),
    ];
    // Each receiver's stdout is held open and never read: it stops reading
    // once that pipe is full; SIGSTOP makes sure it reads nothing more.
    let mut receivers: Vec<(String, Running, ChildStdout)> = Vec::new();
    for endpoint in endpoints {
        let (recv, stdout) = spawn(recv_cmd(&endpoint), Input::Nothing, true);
        receivers.push((endpoint, recv, stdout.unwrap()));
    }
    let (recv, stdout, endpoint) = receiver_on_free_port("tcp", &[], true);
    receivers.push((endpoint, recv, stdout.unwrap()));
    let began = Instant::now();
    let mut running = Vec::new();
    for (endpoint, recv, stdout) in receivers {
        let mut send = unipc();
        send.args(["send", &endpoint, "--timeout", "1"]);
        let send = start(send, Input::Bytes(pattern(32 << 20)));
        thread::sleep(Duration::from_millis(100));
        signal(recv.pid(), libc::SIGSTOP);
        running.push((endpoint, recv, send, stdout));
    }
    for (endpoint, recv, send, stdout) in running {
        let line = send.finish().runtime_error(&endpoint);
        assert!(line.contains("timed out"), "{line}");
        signal(recv.pid(), libc::SIGCONT);
        recv.kill();
        drop(stdout);
    }
    assert!(began.elapsed() < Duration::from_secs(8));

    // recv from a connected, idle peer.
    for scheme in ["unix", "tcp"] {
        let (recv, endpoint) = if scheme == "tcp" {
            let (recv, _, e) = receiver_on_free_port("tcp", &["--timeout", "0.5"], false);
            (recv, e)
        } else {
            let e = format!("unix:{}", dir.path().join("idle").display());
            (unix_receiver(&e, &["--timeout", "0.5"], true), e)
        };
        let _idle: Box<dyn std::any::Any> = if scheme == "tcp" {
            let addr = endpoint.strip_prefix("tcp:").unwrap();
            Box::new(std::net::TcpStream::connect(addr).unwrap())
        } else {
            let path = endpoint.strip_prefix("unix:").unwrap();
            Box::new(std::os::unix::net::UnixStream::connect(path).unwrap())
        };
        let line = recv.finish().runtime_error(&endpoint);
        assert!(line.contains("timed out"), "{line}");
    }
}

/// [11] The end of stdin reaches the command on the terminal.
#[test]
fn pty_passes_the_end_of_stdin() {
    let mut cmd = unipc();
    cmd.args(["pty", "--", "/bin/cat"]);
    run(cmd, Input::Nothing).ok();
    let mut cmd = unipc();
    cmd.args(["pty", "--", "/bin/cat"]);
    let text = run(cmd, Input::Bytes(b"no newline at the end".to_vec())).ok();
    assert!(text.contains("no newline at the end"), "{text:?}");
}

/// [12] SIGTERM (and SIGINT, SIGHUP) put the terminal back.
#[test]
fn pty_restores_the_terminal_when_killed() {
    use std::os::fd::AsFd;
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        let pair = unipc::stream::pty::Pair::open().unwrap();
        let terminal = pair.subsidiary();
        let before = rustix::termios::tcgetattr(terminal).unwrap();
        let tty = || Stdio::from(terminal.try_clone_to_owned().unwrap());
        let mut cmd = unipc();
        cmd.args(["pty", "--", "/bin/sleep", "5"])
            .stdin(tty())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        // Raw mode is on once ICANON is off.
        let deadline = Instant::now() + DEADLINE;
        while rustix::termios::tcgetattr(terminal)
            .unwrap()
            .local_modes
            .contains(rustix::termios::LocalModes::ICANON)
        {
            assert!(Instant::now() < deadline, "never went raw");
            thread::sleep(POLL);
        }
        signal(child.id(), sig);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(128 + sig), "{status:?}");
        let after = rustix::termios::tcgetattr(pair.master().as_fd()).unwrap();
        assert_eq!(after.local_modes, before.local_modes, "signal {sig}");
        assert_eq!(after.input_modes, before.input_modes, "signal {sig}");
    }
}

/// [14] A receiver ended by a signal removes its socket file; rm removes a
/// stale one and refuses a live one.
#[test]
fn signals_and_rm_leave_no_socket_file() {
    let dir = temp_dir();
    for (i, scheme) in ["unix", "unix-dgram", "unix-seqpacket"]
        .into_iter()
        .enumerate()
    {
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            let path = dir.path().join(format!("s{i}-{sig}"));
            let endpoint = format!("{scheme}:{}", path.display());
            let recv = unix_receiver(&endpoint, &[], scheme != "unix-dgram");
            signal(recv.pid(), sig);
            let out = recv.finish();
            assert_eq!(out.status.code(), Some(128 + sig), "{out:?}");
            assert!(!path.exists(), "{endpoint} left after signal {sig}");
        }
        // A stale file (its holder SIGKILLed) goes with rm.
        let path = dir.path().join(format!("stale{i}"));
        let endpoint = format!("{scheme}:{}", path.display());
        let live = unix_receiver(&endpoint, &[], scheme != "unix-dgram");
        let line = unipc_run(&["rm", &endpoint]).runtime_error(&endpoint);
        assert!(path.exists(), "rm removed a live socket: {line}");
        live.kill();
        assert!(path.exists());
        unipc_run(&["rm", &endpoint]).ok();
        assert!(!path.exists());
    }
}

/// [15] An oversized message on stdin is refused after limit + 1 bytes.
#[test]
fn oversized_stdin_is_not_read_to_the_end() {
    let queue = format!("posix-mq:/{}", unique());
    let _rm = Removed(queue.clone());
    unipc_run(&["create", &queue, "--max-messages", "2", "--max-size", "64"]).ok();
    let mut send = unipc();
    send.args(["send", &queue])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = send.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let block = vec![0u8; 1 << 16];
    let mut written = 0usize;
    // Far more than a pipe holds: a sender that reads all of it would
    // never let this loop end with EPIPE.
    while written < (256 << 20) {
        match stdin.write(&block) {
            Ok(n) => written += n,
            Err(_) => break,
        }
    }
    assert!(written < (1 << 20), "send read {written} bytes");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("limit of 64 bytes"), "{err}");
}

/// [17] Stream endpoints refuse the message-only options.
#[test]
fn stream_endpoints_refuse_message_options() {
    for option in [
        &["--json"][..],
        &["--count", "2"],
        &["--raw"],
        &["--nonblock"],
    ] {
        let mut args = vec!["recv", "tcp:127.0.0.1:9"];
        args.extend_from_slice(option);
        let err = unipc_run(&args).usage_error();
        assert!(err.contains("byte stream"), "{err}");
    }
}

/// [19] A private System V queue is addressed by its id.
#[test]
fn private_sysv_queue_by_id() {
    let out = unipc_run(&["create", "sysv-mq:private"]).ok();
    let id = out
        .split("sysv-mq:id=")
        .nth(1)
        .and_then(|rest| rest.trim().parse::<i32>().ok())
        .unwrap_or_else(|| panic!("no id in {out:?}"));
    let endpoint = format!("sysv-mq:id={id}");
    let _rm = Removed(endpoint.clone());
    unipc_run(&["send", &endpoint, "--type", "4", "by id"]).ok();
    assert!(unipc_run(&["stat", &endpoint]).ok().contains("messages"));
    assert_eq!(unipc_run(&["recv", &endpoint]).ok(), "by id\n");
    unipc_run(&["rm", &endpoint]).ok();
    unipc_run(&["stat", &endpoint]).runtime_error(&endpoint);
    for cmd in ["send", "recv", "stat", "rm"] {
        unipc_run(&[cmd, "sysv-mq:private"]).usage_error();
    }
}

/// [2, 20] Another user's queue is not adopted; errors are one line with
/// control characters escaped; the hint for a FIFO rm says what to do.
#[test]
fn foreign_objects_and_error_text() {
    let queue = format!("posix-mq:/{}", unique());
    let _rm = Removed(queue.clone());
    let mut probe = Command::new("setpriv");
    probe.args([
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "true",
    ]);
    if !probe.status().is_ok_and(|s| s.success()) {
        unipc_test_support::skip("setpriv cannot switch to nobody here");
        return;
    }
    let mut squat = Command::new("setpriv");
    squat
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_unipc"))
        .args([
            "create",
            &queue,
            "--mode",
            "666",
            "--max-messages",
            "2",
            "--max-size",
            "64",
        ]);
    run(squat, Input::Nothing).ok();
    let line = unipc_run(&[
        "create",
        &queue,
        "--mode",
        "600",
        "--max-messages",
        "2",
        "--max-size",
        "64",
    ])
    .runtime_error(&queue);
    assert!(line.contains("65534") && line.contains("666"), "{line}");

    let line = unipc_run(&["send", "posix-mq:/a\nb\x1b[31m", "x"])
        .runtime_error("posix-mq:/a\\nb\\x1b[31m");
    assert!(!line.contains('\x1b'));
    unipc_run(&["recv", "sysv-mq:0x+5"]).usage_error();

    // rm of a FIFO this user may not remove: a hint, not a bare errno.
    let dir = temp_dir();
    let fifo = dir.path().join("f");
    unipc_run(&["fifo", "create", fifo.to_str().unwrap(), "--mode", "666"]).ok();
    let mut rm = Command::new("setpriv");
    rm.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_unipc"))
        .args(["rm", &format!("fifo:{}", fifo.display())]);
    let line = run(rm, Input::Nothing).runtime_error("fifo:");
    assert!(
        line.contains("permission denied") && line.contains("directory"),
        "{line}"
    );
}

/// [16] A System V size that does not fit the kernel's field, or is zero,
/// is refused and nothing is created.
#[test]
fn sysv_max_size_out_of_range_creates_nothing() {
    let key = format!("sysv-mq:{:#x}", sysv_key(0xfd));
    let _rm = Removed(key.clone());
    // msgmnb binds unless the process has CAP_SYS_RESOURCE, which root here
    // lacks (the library's own test covers both cases).
    let msgmnb: u64 = std::fs::read_to_string("/proc/sys/kernel/msgmnb")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let above = (msgmnb + 1).to_string();
    let mut sizes = vec!["4294967396", "4294967296", "0"];
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    if cap_eff & (1 << 24) == 0 {
        sizes.push(&above);
    }
    for size in sizes {
        let line = unipc_run(&["create", &key, "--max-size", size]).runtime_error(&key);
        assert!(
            line.contains("max bytes") || line.contains("limit"),
            "{size}: {line}"
        );
        unipc_run(&["stat", &key]).runtime_error(&key);
    }
}

/// A slow writer's bytes go out as they come: nothing waits for a newline
/// or a full chunk while stdin has nothing more (FIFO and socket).
#[test]
fn send_passes_on_what_stdin_has_without_waiting_for_more() {
    let dir = temp_dir();
    let fifo = dir.path().join("f");
    unipc_run(&["fifo", "create", fifo.to_str().unwrap()]).ok();
    let endpoints = [
        format!("fifo:{}", fifo.display()),
        format!("unix:{}", dir.path().join("s").display()),
    ];
    for endpoint in endpoints {
        let (recv, stdout) = if endpoint.starts_with("unix") {
            let name = endpoint.split_once(':').unwrap().1.to_owned();
            let (mut recv, stdout) = spawn(recv_cmd(&endpoint), Input::Nothing, true);
            assert!(recv.wait_until(|pid| unix_bound(pid, &name, true)));
            (recv, stdout)
        } else {
            spawn(recv_cmd(&endpoint), Input::Nothing, true)
        };
        let (reader, mut writer) = std::io::pipe().unwrap();
        let mut send = unipc()
            .args(["send", &endpoint])
            .stdin(reader)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        writer.write_all(b"no newline yet").unwrap();
        let mut stdout = stdout.unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reading = thread::spawn(move || {
            let mut got = [0u8; 14];
            let read = stdout.read_exact(&mut got).map(|()| got);
            let _ = tx.send(read.is_ok() && &got == b"no newline yet");
            stdout
        });
        let arrived = rx.recv_timeout(DEADLINE).unwrap_or(false);
        drop(writer);
        let _ = send.wait();
        drop(reading.join());
        recv.finish();
        assert!(arrived, "{endpoint}: the bytes waited for more input");
    }
}

// ===========================================================================
// Shared memory

/// `unipc write ENDPOINT ARGS` with `data` on stdin.
fn write_stdin(endpoint: &str, args: &[&str], data: &[u8]) -> Finished {
    let mut cmd = unipc();
    cmd.args(["write", endpoint]).args(args);
    run(cmd, Input::Bytes(data.to_vec()))
}

/// create / stat / write / read / rm of one shared-memory endpoint, each
/// step its own process; the data read back is exactly what was written.
fn shared_memory_round_trip(endpoint: &str, size_arg: &str, size: u64) {
    let _guard = Removed(endpoint.to_owned());
    let created = under_umask_077(&[
        "create",
        endpoint,
        "--size",
        size_arg,
        "--mode",
        "640",
        "--exclusive",
    ])
    .ok();
    assert!(created.contains("created"), "{created}");
    assert!(created.contains(&format!("size {size}")), "{created}");
    // Exclusive over the existing object fails, naming it.
    unipc_run(&["create", endpoint, "--size", size_arg, "--exclusive"]).runtime_error(endpoint);

    let stat: serde_json::Value =
        serde_json::from_str(&unipc_run(&["stat", endpoint, "--json"]).ok()).unwrap();
    assert_eq!(stat["size"], size);
    assert_eq!(stat["mode"], "640", "the mode survives umask 077");
    assert!(unipc_run(&["stat", endpoint]).ok().contains("size"));

    // Every byte value, through stdin, at an offset with a suffix.
    let all: Vec<u8> = (0..=255).collect();
    write_stdin(endpoint, &["--offset", "1K"], &all).ok();
    let mut read = unipc();
    read.args(["read", endpoint, "--offset", "1K", "--length", "256"]);
    assert_eq!(run(read, Input::Nothing).stdout, all);
    // And a pattern across the whole object, as an argument elsewhere.
    let data = pattern(4096);
    write_stdin(endpoint, &["--offset", "8K"], &data).ok();
    let out = unipc_run(&["read", endpoint, "--offset", "8K", "--length", "4K"]);
    out.ok();
    assert_eq!(out.stdout, data);
    unipc_run(&["write", endpoint, "--offset", "16", "hello, world"]).ok();
    let hex = unipc_run(&[
        "read", endpoint, "--offset", "16", "--length", "18", "--hex",
    ])
    .ok();
    assert_eq!(
        hex,
        "00000010  68 65 6c 6c 6f 2c 20 77  6f 72 6c 64 00 00 00 00  |hello, world....|\n\
         00000020  00 00                                             |..|\n"
    );
    // The whole object, with no --length.
    let whole = unipc_run(&["read", endpoint]);
    whole.ok();
    assert_eq!(whole.stdout.len() as u64, size);

    // Past the end: refused, naming both sizes, nothing written.
    let offset = (size - 4).to_string();
    let err =
        unipc_run(&["write", endpoint, "--offset", &offset, "toolong"]).runtime_error(endpoint);
    assert!(
        err.contains("7 bytes") && err.contains(&format!("{size} bytes")),
        "{err}"
    );
    let err = write_stdin(endpoint, &["--offset", &offset], b"toolong").runtime_error(endpoint);
    assert!(err.contains(&format!("{size} bytes")), "{err}");
    let tail = unipc_run(&["read", endpoint, "--offset", &offset]);
    tail.ok();
    assert_eq!(tail.stdout, [0; 4], "a refused write changes nothing");
    let err = unipc_run(&["read", endpoint, "--offset", &offset, "--length", "5"])
        .runtime_error(endpoint);
    assert!(
        err.contains("5 bytes") && err.contains(&format!("{size} bytes")),
        "{err}"
    );

    // Not a channel.
    let err = unipc_run(&["send", endpoint, "x"]).usage_error();
    assert!(err.contains("unipc read / unipc write"), "{err}");

    unipc_run(&["rm", endpoint]).ok();
    unipc_run(&["stat", endpoint]).runtime_error(endpoint);
}

#[test]
fn posix_shared_memory_round_trips_binary_data_exactly() {
    let name = unique();
    let endpoint = format!("shm:/{name}");
    shared_memory_round_trip(&endpoint, "64K", 64 << 10);
    assert!(!Path::new("/dev/shm").join(&name).exists());
}

#[test]
fn sysv_shared_memory_round_trips_binary_data_exactly() {
    let endpoint = format!("sysv-shm:{:#x}", sysv_key(0x5e));
    shared_memory_round_trip(&endpoint, "1M", 1 << 20);
}

#[test]
fn shared_memory_sizes_and_offsets_are_checked_as_usage_errors() {
    let endpoint = format!("shm:/{}", unique());
    let _guard = Removed(endpoint.clone());
    for bad in ["12Q", "K", "-1", "18446744073709551616", "17179869184G"] {
        let err = unipc_run(&["create", &endpoint, "--size", bad]).usage_error();
        assert!(err.contains(bad), "{err}");
    }
    let err = unipc_run(&["read", &endpoint, "--offset", "1X"]).usage_error();
    assert!(err.contains("1X"), "{err}");
    // A System V segment needs a size; a queue takes no --size.
    let key = format!("sysv-shm:{:#x}", sysv_key(0x5f));
    unipc_run(&["create", &key]).usage_error();
    let queue = format!("posix-mq:/{}", unique());
    unipc_run(&["create", &queue, "--size", "4K"]).usage_error();
    let err = unipc_run(&["read", &queue]).usage_error();
    assert!(err.contains("shared memory"), "{err}");
    assert!(!Path::new("/dev/shm").join(&endpoint[5..]).exists());
}

#[test]
fn a_private_segment_is_created_and_then_addressed_by_its_id() {
    let out = unipc_run(&["create", "sysv-shm:private", "--size", "4K"]).ok();
    let id = out
        .split("address it as ")
        .nth(1)
        .map(str::trim)
        .unwrap_or_else(|| panic!("no id to address it by: {out}"))
        .to_owned();
    assert!(id.starts_with("sysv-shm:id="), "{out}");
    let _guard = Removed(id.clone());
    unipc_run(&["write", &id, "private"]).ok();
    let got = unipc_run(&["read", &id, "--length", "7"]);
    got.ok();
    assert_eq!(got.stdout, b"private");
    let err = unipc_run(&["read", "sysv-shm:private"]).usage_error();
    assert!(err.contains("sysv-shm:id=N"), "{err}");
    let stat: serde_json::Value =
        serde_json::from_str(&unipc_run(&["stat", &id, "--json"]).ok()).unwrap();
    assert_eq!(stat["size"], 4096);
    assert_eq!(stat["attached"], 0, "read and write detach when they end");
    unipc_run(&["rm", &id]).ok();
}

// ===========================================================================
// File locks: `unipc lock`

/// The locks `/proc/locks` lists on `path` (not its waiters): (kind, pid).
fn locks_on(path: &Path) -> Vec<(String, i64)> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return Vec::new();
    };
    let needle = format!(":{} ", meta.ino());
    std::fs::read_to_string("/proc/locks")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&needle) && !l.contains(" -> "))
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            (words[1].to_owned(), words[4].parse().unwrap())
        })
        .collect()
}

/// A command that runs until `dir/done` appears (or `dir` goes, so that a
/// failed test leaves no process behind).
fn until_done(dir: &Path) -> [String; 5] {
    [
        "sh".to_owned(),
        "-c".to_owned(),
        r#"while [ -d "$1" ] && [ ! -e "$1/done" ]; do sleep 0.01; done"#.to_owned(),
        "sh".to_owned(),
        dir.display().to_string(),
    ]
}

/// `unipc lock FILE EXTRA... -- (until done)`, started, with its lock seen
/// in /proc/locks.
fn unipc_holding(dir: &Path, file: &Path, extra: &[&str]) -> Running {
    let before = locks_on(file).len();
    let mut cmd = unipc();
    cmd.arg("lock")
        .arg(file)
        .args(extra)
        .arg("--")
        .args(until_done(dir));
    let mut running = start(cmd, Input::Nothing);
    assert!(
        running.wait_until(|_| locks_on(file).len() > before),
        "unipc lock exited before taking the lock"
    );
    running
}

fn python_lockf(file: &Path, start: u64, len: u64) -> Finished {
    let script = r#"
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, int(sys.argv[3]), int(sys.argv[2]))
    print("ok")
except OSError:
    print("busy")
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script])
        .arg(file)
        .args([start.to_string(), len.to_string()]);
    run(cmd, Input::Nothing)
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn lock_kind_flock_interoperates_with_util_linux_flock_both_ways() {
    if !have("flock") {
        return unipc_test_support::skip("util-linux flock(1) is not installed");
    }
    let dir = temp_dir();
    let file = dir.path().join("f.lock");
    let flock_n = || {
        let mut cmd = Command::new("flock");
        cmd.arg("-n").arg(&file).arg("true");
        run(cmd, Input::Nothing)
    };
    // unipc holds; flock -n fails (exit 1) until it lets go.
    let holder = unipc_holding(dir.path(), &file, &["--kind", "flock"]);
    flock_n().exits(1);
    std::fs::write(dir.path().join("done"), "").unwrap();
    holder.finish().ok();
    flock_n().exits(0);
    std::fs::remove_file(dir.path().join("done")).unwrap();

    // flock(1) holds; unipc --kind flock fails naming flock(1)'s pid, while
    // fcntl kinds do not see it; --test names it.
    let mut cmd = Command::new("flock");
    cmd.arg(&file).args(until_done(dir.path()));
    let mut foreign = start(cmd, Input::Nothing);
    let lockers = |_| locks_on(&file).iter().any(|(kind, _)| kind == "FLOCK");
    assert!(foreign.wait_until(lockers));
    let pid = foreign.pid().to_string();
    let file_arg = file.display().to_string();
    let line = unipc_run(&[
        "lock",
        &file_arg,
        "--kind",
        "flock",
        "--nonblock",
        "--",
        "true",
    ])
    .runtime_error(&file_arg);
    assert!(
        line.contains(&format!("pid {pid} holds an exclusive flock lock")),
        "{line}"
    );
    unipc_run(&["lock", &file_arg, "--nonblock", "--", "true"]).ok();
    unipc_run(&[
        "lock",
        &file_arg,
        "--kind",
        "posix",
        "--nonblock",
        "--",
        "true",
    ])
    .ok();
    let text = unipc_run(&["lock", &file_arg, "--test"]).ok();
    assert_eq!(
        text,
        format!("{file_arg}: pid {pid} holds an exclusive flock lock on bytes 0..EOF\n")
    );
    let start = Instant::now();
    let out = unipc_run(&[
        "lock",
        &file_arg,
        "--kind",
        "flock",
        "--timeout",
        "0.3",
        "--",
        "true",
    ]);
    let line = out.runtime_error(&file_arg);
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert!(
        line.contains("timed out") && line.contains(&format!("pid {pid}")),
        "{line}"
    );
    std::fs::write(dir.path().join("done"), "").unwrap();
    foreign.finish().ok();
}

#[test]
fn lock_ofd_and_posix_block_python_lockf_on_overlapping_ranges_only() {
    let dir = temp_dir();
    let file = dir.path().join("r.lock");
    for kind in [None, Some("posix")] {
        let mut extra = vec!["--range", "100:10"];
        extra.extend(kind.map(|k| ["--kind", k]).into_iter().flatten());
        let holder = unipc_holding(dir.path(), &file, &extra);
        assert_eq!(python_lockf(&file, 105, 1).ok(), "busy\n", "{kind:?}");
        assert_eq!(python_lockf(&file, 95, 10).ok(), "busy\n", "{kind:?}");
        assert_eq!(python_lockf(&file, 110, 10).ok(), "ok\n", "{kind:?}");
        assert_eq!(python_lockf(&file, 0, 100).ok(), "ok\n", "{kind:?}");
        std::fs::write(dir.path().join("done"), "").unwrap();
        holder.finish().ok();
        std::fs::remove_file(dir.path().join("done")).unwrap();
        assert_eq!(
            python_lockf(&file, 105, 1).ok(),
            "ok\n",
            "{kind:?}: released"
        );
    }
}

#[test]
fn lock_test_and_nonblock_name_a_python_holder() {
    let dir = temp_dir();
    let file = dir.path().join("p.lock");
    std::fs::write(&file, "").unwrap();
    let script = r#"
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX, 10, 0)
while os.path.isdir(sys.argv[2]) and not os.path.exists(os.path.join(sys.argv[2], "done")):
    time.sleep(0.01)
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script]).arg(&file).arg(dir.path());
    let mut python = start(cmd, Input::Nothing);
    assert!(python.wait_until(|pid| locks_on(&file).contains(&("POSIX".to_owned(), pid as i64))));
    let pid = python.pid();
    let f = file.display().to_string();
    let line =
        unipc_run(&["lock", &f, "--nonblock", "--range", "5:1", "--", "true"]).runtime_error(&f);
    assert!(line.contains(&format!("held by pid {pid}")), "{line}");
    let out = unipc_run(&[
        "lock",
        &f,
        "--nonblock",
        "--range",
        "10:",
        "--",
        "echo",
        "beside",
    ]);
    assert_eq!(out.ok(), "beside\n");
    let text = unipc_run(&["lock", &f, "--test", "--range", "0:1"]).ok();
    assert_eq!(
        text,
        format!("{f}: pid {pid} holds an exclusive posix lock on bytes 0..10\n")
    );
    let json: serde_json::Value =
        serde_json::from_str(&unipc_run(&["lock", &f, "--test", "--json", "--shared"]).ok())
            .unwrap();
    assert_eq!(json["free"], false);
    assert_eq!(json["holders"][0]["pid"], pid);
    assert_eq!(json["holders"][0]["kind"], "posix");
    assert_eq!(json["holders"][0]["len"], 10);
    let text = unipc_run(&["lock", &f, "--test", "--range", "10:5"]).ok();
    assert!(text.contains("bytes 10..15 free"), "{text}");
    std::fs::write(dir.path().join("done"), "").unwrap();
    python.finish().ok();
    let json: serde_json::Value =
        serde_json::from_str(&unipc_run(&["lock", &f, "--test", "--json"]).ok()).unwrap();
    assert_eq!(json["free"], true, "{json}");
}

#[test]
fn lock_test_names_a_unipc_ofd_holder_and_changes_nothing() {
    let dir = temp_dir();
    let file = dir.path().join("o.lock");
    let holder = unipc_holding(dir.path(), &file, &["--range", "0:4K"]);
    let f = file.display().to_string();
    let text = unipc_run(&["lock", &f, "--test"]).ok();
    assert_eq!(
        text,
        format!(
            "{f}: pid {} holds an exclusive ofd lock on bytes 0..4096\n",
            holder.pid()
        )
    );
    let line =
        unipc_run(&["lock", &f, "--nonblock", "--kind", "posix", "--", "true"]).runtime_error(&f);
    assert!(line.contains(&format!("pid {}", holder.pid())), "{line}");
    // --test of a missing file creates nothing.
    let missing = dir.path().join("missing");
    unipc_run(&["lock", &missing.display().to_string(), "--test"]).runtime_error("missing");
    assert!(!missing.exists());
    std::fs::write(dir.path().join("done"), "").unwrap();
    holder.finish().ok();
}

#[test]
fn lock_forwards_the_exit_status_and_signals_to_the_command() {
    let dir = temp_dir();
    let f = dir.path().join("s.lock").display().to_string();
    unipc_run(&["lock", &f, "--", "sh", "-c", "exit 7"]).exits(7);
    let out = unipc_run(&["lock", &f, "--", "sh", "-c", "kill -9 $$"]);
    assert_eq!(out.status.code(), Some(128 + 9), "{out:?}");
    // SIGTERM to unipc reaches the command, which decides how to end.
    let mut cmd = unipc();
    cmd.args(["lock", &f, "--", "sh", "-c"])
        .arg(r#"trap 'echo got-term; exit 5' TERM; touch "$1/ready"; while :; do sleep 0.01; done"#)
        .arg("sh")
        .arg(dir.path());
    let mut running = start(cmd, Input::Nothing);
    assert!(running.wait_until(|_| dir.path().join("ready").exists()));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(running.pid() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = running.finish();
    out.exits(5);
    assert_eq!(out.stdout_text(), "got-term\n");
    // The command ran with the lock, and the lock went with unipc.
    assert!(locks_on(Path::new(&f)).is_empty());
    // A command that cannot start is a runtime error; nothing is left held.
    unipc_run(&["lock", &f, "--", "/nonexistent/unipc-test-command"]).runtime_error("/nonexistent");
}

#[test]
fn lock_usage_errors_and_refusals() {
    let dir = temp_dir();
    let file = dir.path().join("u.lock");
    let f = file.display().to_string();
    let err = unipc_run(&[
        "lock", &f, "--kind", "flock", "--range", "0:1", "--", "true",
    ])
    .usage_error();
    assert!(err.contains("--range"), "{err}");
    unipc_run(&["lock", &f, "--test", "--", "true"]).usage_error();
    unipc_run(&["lock", &f]).usage_error();
    unipc_run(&["lock", &f, "--range", "5", "--", "true"]).usage_error();
    unipc_run(&["lock", &f, "--range", "0:0", "--", "true"]).usage_error();
    unipc_run(&["lock", &f, "--kind", "fcntl", "--", "true"]).usage_error();
    unipc_run(&["lock", &f, "--nonblock", "--timeout", "1", "--", "true"]).usage_error();
    unipc_run(&["lock", &f, "--json", "--", "true"]).usage_error();
    assert!(!file.exists(), "a usage error created the file");
    // A symbolic link is refused, not followed; a FIFO does not hang it.
    let target = dir.path().join("target");
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let l = link.display().to_string();
    let line = unipc_run(&["lock", &l, "--", "true"]).runtime_error(&l);
    assert!(line.contains("symbolic link"), "{line}");
    assert!(!target.exists(), "the link was followed");
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let p = fifo.display().to_string();
    let line = unipc_run(&["lock", &p, "--", "true"]).runtime_error(&p);
    assert!(line.contains("FIFO"), "{line}");
    // Created when missing, 0644 less the umask, as flock(1) does (here
    // 077: 0600); never chmod-ed.
    under_umask_077(&["lock", &f, "--", "true"]).ok();
    assert_eq!(mode_of(&file), 0o600);
}

#[test]
fn lock_passes_on_a_sigint_sent_to_it_but_not_the_terminals() {
    // Python's pty module is the terminal. Its ^C comes from the kernel
    // (SI_KERNEL) to the whole foreground group, which CMD is normally in:
    // unipc must not send it a second time. To see a second one at all
    // (standard signals coalesce), CMD here leaves the group, so the only
    // SIGINT it can get after ^C is one from unipc; CMD reports each
    // signal's sender.
    let dir = temp_dir();
    let child = r#"
import os, signal, sys
os.setpgid(0, 0)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
print("ready", flush=True)
while True:
    info = signal.sigwaitinfo({signal.SIGINT, signal.SIGTERM})
    print(signal.Signals(info.si_signo).name, "from unipc" if info.si_pid == os.getppid() else info.si_pid, flush=True)
    if info.si_signo == signal.SIGTERM:
        sys.exit(9)
"#;
    let driver = r#"
import os, pty, select, signal, sys, time
unipc, lock, child = sys.argv[1], sys.argv[2], sys.argv[3]
pid, fd = pty.fork()
if pid == 0:
    os.execv(unipc, [unipc, "lock", lock, "--", sys.executable, "-c", child])
out = b""
def read_for(text, seconds):
    global out
    end = time.time() + seconds
    while text not in out.decode(errors="replace") and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            out += os.read(fd, 1000)
read_for("ready", 10)
os.write(fd, b"\x03")
read_for("never", 0.5)
os.kill(pid, signal.SIGINT)
read_for("SIGINT", 10)
os.kill(pid, signal.SIGTERM)
# Everything, up to the terminal's end (EIO once unipc and CMD are gone).
end = time.time() + 10
while time.time() < end:
    r, _, _ = select.select([fd], [], [], 0.05)
    if r:
        try:
            chunk = os.read(fd, 1000)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
_, status = os.waitpid(pid, 0)
print(out.decode(errors="replace").replace("\r", "").replace("^C", ""), end="")
print("status", os.waitstatus_to_exitcode(status))
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", driver])
        .arg(env!("CARGO_BIN_EXE_unipc"))
        .arg(dir.path().join("t.lock"))
        .arg(child);
    let out = run(cmd, Input::Nothing).ok();
    assert_eq!(
        out,
        "ready\nSIGINT from unipc\nSIGTERM from unipc\nstatus 9\n"
    );
}

// ===========================================================================
// POSIX named semaphores

fn sem_file(endpoint: &str) -> std::path::PathBuf {
    Path::new("/dev/shm").join(format!("sem.{}", &endpoint["sem:/".len()..]))
}

/// Whether process `pid` has SIGINT blocked (`SigBlk` in its status).
fn blocks_sigint(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let mask = status.lines().find_map(|l| l.strip_prefix("SigBlk:"))?;
            u64::from_str_radix(mask.trim(), 16).ok()
        })
        .is_some_and(|mask| mask & (1 << (libc::SIGINT - 1)) != 0)
}

fn sem_value(endpoint: &str) -> String {
    unipc_run(&["sem", "get", endpoint])
        .ok()
        .trim_end()
        .to_owned()
}

#[test]
fn sem_create_post_get_wait_stat_rm_between_processes() {
    let endpoint = format!("sem:/{}", unique());
    let _guard = Removed(endpoint.clone());
    let created = under_umask_077(&[
        "create",
        &endpoint,
        "--value",
        "1",
        "--mode",
        "640",
        "--exclusive",
    ])
    .ok();
    assert!(
        created.contains("created") && created.contains("value 1") && created.contains("640"),
        "{created}"
    );
    assert_eq!(
        mode_of(&sem_file(&endpoint)),
        0o640,
        "the umask was ignored"
    );
    unipc_run(&["create", &endpoint, "--exclusive"]).runtime_error(&endpoint);
    let refused = unipc_run(&["create", &endpoint]).runtime_error(&endpoint);
    assert!(
        refused.contains("0o640") && refused.contains("0o600"),
        "{refused}"
    );
    let again = unipc_run(&["create", &endpoint, "--mode", "640"]).ok();
    assert!(again.contains("already existed"), "{again}");

    assert_eq!(sem_value(&endpoint), "1");
    unipc_run(&["sem", "wait", &endpoint]).ok();
    assert_eq!(sem_value(&endpoint), "0");

    // A waiter in another process, woken by a post from a third.
    let mut waiter = unipc();
    waiter.args(["sem", "wait", &endpoint]);
    let mut waiter = start(waiter, Input::Nothing);
    thread::sleep(Duration::from_millis(200));
    assert!(waiter.is_running(), "sem wait did not wait at zero");
    unipc_run(&["sem", "post", &endpoint, "--count", "2"]).ok();
    waiter.finish().ok();
    assert_eq!(sem_value(&endpoint), "1");

    let text = unipc_run(&["stat", &endpoint]).ok();
    assert!(
        text.lines()
            .any(|l| l.starts_with("value") && l.trim_end().ends_with(" 1")),
        "{text}"
    );
    let stat: serde_json::Value =
        serde_json::from_str(&unipc_run(&["stat", &endpoint, "--json"]).ok()).unwrap();
    assert_eq!(stat["endpoint"], endpoint.as_str());
    assert_eq!(stat["value"], 1);
    assert_eq!(stat["mode"], "640");
    // SAFETY: geteuid reads no memory.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(stat["uid"], euid);
    assert!(stat["gid"].is_u64(), "{stat}");

    unipc_run(&["rm", &endpoint]).ok();
    assert!(!sem_file(&endpoint).exists());
    let err = unipc_run(&["sem", "get", &endpoint]).runtime_error(&endpoint);
    assert!(err.contains("no semaphore has this name"), "{err}");
    unipc_run(&["rm", &endpoint]).runtime_error(&endpoint);
}

#[test]
fn sem_wait_on_zero_with_nonblock_or_timeout_exits_1_and_takes_nothing() {
    let endpoint = format!("sem:/{}", unique());
    let _guard = Removed(endpoint.clone());
    unipc_run(&["create", &endpoint, "--exclusive"]).ok();
    let line = unipc_run(&["sem", "wait", &endpoint, "--nonblock"]).runtime_error(&endpoint);
    assert!(line.contains("nothing was taken"), "{line}");
    let started = Instant::now();
    let line = unipc_run(&["sem", "wait", &endpoint, "--timeout", "0.2"]).runtime_error(&endpoint);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(200),
        "gave up after {waited:?}"
    );
    assert!(line.contains("nothing was taken"), "{line}");
    unipc_run(&["sem", "wait", &endpoint, "--nonblock", "--timeout", "1"]).usage_error();
    assert_eq!(sem_value(&endpoint), "0");

    // Ctrl-C during a wait ends it as a signal does (128 + 2), taking
    // nothing; the post after it is still there.
    let mut waiter = unipc();
    waiter.args(["sem", "wait", &endpoint]);
    let mut waiter = start(waiter, Input::Nothing);
    // Once it has SIGINT blocked, the signal goes to its signal thread.
    assert!(waiter.wait_until(blocks_sigint), "sem wait ended early");
    thread::sleep(Duration::from_millis(100));
    assert!(waiter.is_running(), "sem wait did not wait at zero");
    signal(waiter.pid(), libc::SIGINT);
    waiter.finish().exits(130);
    unipc_run(&["sem", "post", &endpoint]).ok();
    assert_eq!(sem_value(&endpoint), "1");
}

#[test]
fn sem_bad_names_and_options_are_usage_errors_before_anything_is_made() {
    let long = format!("sem:/{}", "a".repeat(252));
    for args in [
        &["create", long.as_str()][..],
        &["sem", "get", &long],
        &["sem", "post", &long],
        &["sem", "wait", &long, "--nonblock"],
        &["stat", &long],
        &["rm", &long],
        &["sem", "get", "sem:no-slash"],
        &["sem", "get", "sem:/a/b"],
        &["sem", "post", "posix-mq:/not-a-semaphore"],
        &["sem", "post", "sem:/x", "--count", "0"],
        &["sem", "wait", "sem:/x", "--timeout", "-1"],
        &["create", "sem:/unipc-test-sized", "--size", "4K"],
        &["create", "sem:/unipc-test-queue", "--max-messages", "4"],
        &["create", "sem:/unipc-test-big", "--value", "4294967296"],
        &["create", "shm:/unipc-test-valued", "--value", "1"],
    ] {
        let err = unipc_run(args).usage_error();
        assert!(!err.is_empty(), "{args:?}");
    }
    for leftover in [
        "sem.unipc-test-sized",
        "sem.unipc-test-queue",
        "sem.unipc-test-big",
        "unipc-test-valued",
    ] {
        assert!(!Path::new("/dev/shm").join(leftover).exists(), "{leftover}");
    }
    // 251 bytes is the longest a semaphore name may be.
    let longest = format!("sem:/{}-{}", unique(), "b".repeat(251));
    let longest = longest[..5 + 251].to_owned();
    let _guard = Removed(longest.clone());
    unipc_run(&["create", &longest, "--exclusive"]).ok();
    unipc_run(&["rm", &longest]).ok();
}

#[test]
fn sem_help_has_examples() {
    for command in [
        &["sem"][..],
        &["sem", "post"],
        &["sem", "wait"],
        &["sem", "get"],
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        let text = unipc_run(&args).ok();
        assert!(
            text.contains("Example"),
            "unipc {command:?} --help:\n{text}"
        );
    }
    let text = unipc_run(&["--help"]).ok();
    assert!(text.contains("sem:/NAME"), "{text}");
}

// ===========================================================================
// System V semaphore sets

/// The `stat --json` of a semaphore set.
fn sem_stat(endpoint: &str) -> serde_json::Value {
    serde_json::from_str(&unipc_run(&["stat", endpoint, "--json"]).ok()).unwrap()
}

/// The values of a semaphore set, in index order.
fn sem_values(endpoint: &str) -> Vec<u64> {
    sem_stat(endpoint)["semaphores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"].as_u64().unwrap())
        .collect()
}

/// Polls until the set's values are `want`.
fn until_values(endpoint: &str, want: &[u64]) {
    let deadline = Instant::now() + DEADLINE;
    while sem_values(endpoint) != want {
        assert!(
            Instant::now() < deadline,
            "{endpoint}: values {:?}, not {want:?}",
            sem_values(endpoint)
        );
        thread::sleep(POLL);
    }
}

#[test]
fn semaphore_set_create_semop_stat_rm() {
    let endpoint = format!("sysv-sem:{:#x}", sysv_key(0x5a));
    let _guard = Removed(endpoint.clone());
    // Usage errors before anything is made.
    unipc_run(&["create", &endpoint, "--count", "2", "--values", "1"]).usage_error();
    unipc_run(&["create", &endpoint, "--size", "4K"]).usage_error();
    let queue = format!("posix-mq:/{}", unique());
    unipc_run(&["create", &queue, "--count", "2"]).usage_error();
    unipc_run(&["create", &endpoint, "--values", "1,40000"]).usage_error();
    unipc_run(&["stat", &endpoint]).runtime_error(&endpoint);

    let out = under_umask_077(&[
        "create", &endpoint, "--count", "3", "--values", "1,0,3", "--mode", "640",
    ]);
    let text = out.ok();
    assert!(
        text.contains("created") && text.contains("values 1,0,3"),
        "{text}"
    );
    let stat = sem_stat(&endpoint);
    assert_eq!(stat["mode"], "640", "{stat}");
    assert_eq!(stat["nsems"], 3);
    assert_eq!(stat["uid"], 0);
    assert!(stat["otime"].as_u64().is_some(), "initialized: {stat}");
    assert_eq!(sem_values(&endpoint), [1, 0, 3]);
    let text = unipc_run(&["stat", &endpoint]).ok();
    assert!(
        text.contains("semnum") && text.contains("nsems      3"),
        "{text}"
    );

    // All of one command line at once.
    unipc_run(&["semop", &endpoint, "0:-1", "1:+2", "2:-3"]).ok();
    assert_eq!(sem_values(&endpoint), [0, 2, 0]);
    // One that cannot proceed applies nothing.
    let err = unipc_run(&["semop", &endpoint, "1:-1", "0:-1", "--nowait"]).runtime_error(&endpoint);
    assert!(err.contains("would have to wait"), "{err}");
    assert_eq!(sem_values(&endpoint), [0, 2, 0]);
    let start = Instant::now();
    let err = unipc_run(&["semop", &endpoint, "0:-1", "--timeout", "0.2"]).runtime_error(&endpoint);
    assert!(err.contains("timed out"), "{err}");
    assert!(start.elapsed() >= Duration::from_millis(200));
    unipc_run(&["semop", &endpoint, "0:0", "2:0", "--nowait"]).ok();
    let err = unipc_run(&["semop", &endpoint, "9:+1"]).runtime_error(&endpoint);
    assert!(err.contains("semaphore 9 does not exist"), "{err}");
    for bad in ["0:x", "0:1", "0:+0", "a:+1", "0:+40000"] {
        let err = unipc_run(&["semop", &endpoint, "0:+1", bad]).usage_error();
        assert!(err.contains(bad), "{bad}: {err}");
    }
    let err = unipc_run(&["semop", &endpoint, "0:+1", "--undo"]).usage_error();
    assert!(err.contains("-- CMD"), "{err}");
    unipc_run(&["semop", &queue, "0:+1"]).usage_error();
    assert_eq!(
        sem_values(&endpoint),
        [0, 2, 0],
        "no usage error touched the set"
    );

    unipc_run(&["rm", &endpoint]).ok();
    unipc_run(&["rm", &endpoint]).runtime_error(&endpoint);
    // A private set is addressed by the id create prints.
    let out = unipc_run(&["create", "sysv-sem:private", "--values", "4"]).ok();
    let id = out
        .split("address it as ")
        .nth(1)
        .map(str::trim)
        .unwrap_or_else(|| panic!("no id: {out}"))
        .to_owned();
    let _private = Removed(id.clone());
    assert_eq!(sem_values(&id), [4]);
    unipc_run(&["semop", "sysv-sem:private", "0:-1"]).usage_error();
    unipc_run(&["rm", &id]).ok();
}

#[test]
fn semop_undo_holds_while_the_command_runs_and_is_reverted_after() {
    let endpoint = format!("sysv-sem:{:#x}", sysv_key(0x5b));
    let _guard = Removed(endpoint.clone());
    unipc_run(&["create", &endpoint, "--values", "1,0", "--exclusive"]).ok();

    // Exit statuses are CMD's; the kernel reverts the hold after each.
    let out = unipc_run(&[
        "semop", &endpoint, "0:-1", "1:+1", "--undo", "--", "sh", "-c", "exit 7",
    ]);
    out.exits(7);
    assert_eq!(sem_values(&endpoint), [1, 0]);
    let out = unipc_run(&[
        "semop",
        &endpoint,
        "0:-1",
        "--undo",
        "--",
        "sh",
        "-c",
        "kill -9 $$",
    ]);
    assert_eq!(out.status.code(), Some(128 + 9), "{out:?}");
    let out = unipc_run(&[
        "semop",
        &endpoint,
        "0:-1",
        "--undo",
        "--",
        "/nonexistent/cmd",
    ]);
    assert_eq!(out.status.code(), Some(127), "{out:?}");
    assert_eq!(sem_values(&endpoint), [1, 0]);

    // Held exactly while CMD runs: CMD sees the values taken.
    let dir = temp_dir();
    let seen = dir.path().join("seen");
    let script = format!(
        "{} stat {endpoint} --json > {}",
        env!("CARGO_BIN_EXE_unipc"),
        seen.display()
    );
    unipc_run(&[
        "semop", &endpoint, "0:-1", "1:+1", "--undo", "--", "sh", "-c", &script,
    ])
    .ok();
    let during: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&seen).unwrap()).unwrap();
    assert_eq!(during["semaphores"][0]["value"], 0, "{during}");
    assert_eq!(during["semaphores"][1]["value"], 1, "{during}");
    assert_eq!(sem_values(&endpoint), [1, 0]);

    // A second holder waits while the first holds.
    let cmd_pid = dir.path().join("cmd.pid");
    let script = format!(
        "echo $$ > {}; exec sleep 30 >/dev/null 2>&1",
        cmd_pid.display()
    );
    let mut cmd = unipc();
    cmd.args([
        "semop", &endpoint, "0:-1", "--undo", "--", "sh", "-c", &script,
    ]);
    let holder = start(cmd, Input::Nothing);
    until_values(&endpoint, &[0, 0]);
    let pid = holder.pid();
    assert_eq!(
        sem_stat(&endpoint)["semaphores"][0]["pid"],
        pid,
        "the semop is unipc's"
    );
    let mut cmd = unipc();
    cmd.args(["semop", &endpoint, "0:-1", "--undo", "--", "true"]);
    let mut second = start(cmd, Input::Nothing);
    assert!(second.wait_until(|_| sem_stat(&endpoint)["semaphores"][0]["ncnt"] == 1));
    // SIGKILL of unipc: the kernel gives the semaphore back, and the
    // second holder gets it.
    signal(pid, libc::SIGKILL);
    holder.finish();
    second.finish().ok();
    assert_eq!(sem_values(&endpoint), [1, 0]);
    // CMD does not run on without the hold: it dies with unipc.
    let cmd_pid: u32 = std::fs::read_to_string(&cmd_pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_dies(cmd_pid, "CMD outlived the unipc holding for it");

    // SIGTERM reaches CMD, and unipc exits with CMD's status.
    let ready = dir.path().join("ready");
    let script = format!(
        "trap 'exit 9' TERM; touch {}; while :; do sleep 0.05; done",
        ready.display()
    );
    let mut cmd = unipc();
    cmd.args([
        "semop", &endpoint, "0:-1", "--undo", "--", "sh", "-c", &script,
    ]);
    let mut held = start(cmd, Input::Nothing);
    assert!(held.wait_until(|_| ready.exists()));
    signal(held.pid(), libc::SIGTERM);
    held.finish().exits(9);
    assert_eq!(sem_values(&endpoint), [1, 0]);
    unipc_run(&["rm", &endpoint]).ok();
}

/// A peer that is not unipc: Python's ctypes calling libc's `semget`,
/// `semop` and `semctl` on the set unipc made.
const CTYPES_PEER: &str = r#"
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
class Sembuf(ctypes.Structure):
    _fields_ = [("sem_num", ctypes.c_ushort), ("sem_op", ctypes.c_short), ("sem_flg", ctypes.c_short)]
key, op = int(sys.argv[1], 0), sys.argv[2]
semid = libc.semget(key, 0, 0)
assert semid >= 0, ctypes.get_errno()
if op == "get":
    GETVAL = 12
    print(",".join(str(libc.semctl(semid, i, GETVAL)) for i in range(2)))
else:
    IPC_NOWAIT = 0o4000
    ops = (Sembuf * 2)(Sembuf(0, int(op), IPC_NOWAIT), Sembuf(1, 1, IPC_NOWAIT))
    if libc.semop(semid, ops, 2) != 0:
        sys.exit("semop errno %d" % ctypes.get_errno())
"#;

#[test]
fn a_set_unipc_made_works_with_a_program_calling_semop_itself() {
    let key = sysv_key(0x5c);
    let endpoint = format!("sysv-sem:{key:#x}");
    let _guard = Removed(endpoint.clone());
    let python = |args: &[&str]| {
        let mut cmd = Command::new("python3");
        cmd.arg("-c").arg(CTYPES_PEER).args(args);
        run(cmd, Input::Nothing)
    };
    if Command::new("python3")
        .arg("-c")
        .arg("import ctypes")
        .output()
        .map_or(true, |o| !o.status.success())
    {
        unipc_test_support::skip("no python3 with ctypes for a foreign semop peer");
        return;
    }
    unipc_run(&["create", &endpoint, "--values", "1,0"]).ok();
    // The foreign peer takes 1 and gives 1, atomically, as unipc would.
    python(&[&format!("{key:#x}"), "-1"]).ok();
    assert_eq!(sem_values(&endpoint), [0, 1]);
    // What it cannot do, it does not half-do.
    let out = python(&[&format!("{key:#x}"), "-1"]);
    assert!(!out.status.success(), "{out:?}");
    assert_eq!(sem_values(&endpoint), [0, 1]);
    unipc_run(&["semop", &endpoint, "0:+2", "1:-1"]).ok();
    assert_eq!(python(&[&format!("{key:#x}"), "get"]).ok().trim(), "2,0");
    unipc_run(&["rm", &endpoint]).ok();
}

#[test]
fn lock_and_semop_commands_start_with_no_signal_blocked() {
    // unipc blocks SIGINT, SIGTERM and SIGHUP to take them on a thread;
    // CMD must not inherit that mask, or the signals passed on to it (and
    // the terminal's ^C) never reach it and it runs to its end.
    let dir = temp_dir();
    let endpoint = format!("sysv-sem:{:#x}", sysv_key(0x6a));
    let _guard = Removed(endpoint.clone());
    unipc_run(&["create", &endpoint, "--values", "1", "--exclusive"]).ok();
    let lock = dir.path().join("m.lock").display().to_string();
    for (name, args) in [
        ("lock", vec!["lock", lock.as_str()]),
        ("semop", vec!["semop", endpoint.as_str(), "0:-1", "--undo"]),
    ] {
        let ready = dir.path().join(format!("{name}-ready"));
        let mut cmd = unipc();
        cmd.args(&args)
            .args(["--", "python3", "-c"])
            .arg(
                "import signal, sys, time\n\
                 print(sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])), flush=True)\n\
                 open(sys.argv[1], 'w').close()\n\
                 time.sleep(20)",
            )
            .arg(&ready);
        let mut running = start(cmd, Input::Nothing);
        assert!(running.wait_until(|_| ready.exists()), "{name}");
        let sent = Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(running.pid() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let out = running.finish();
        assert_eq!(out.stdout_text(), "[]\n", "{name}: CMD's signal mask");
        assert_eq!(out.status.code(), Some(128 + 15), "{name}: {out:?}");
        assert!(sent.elapsed() < Duration::from_secs(5), "{name}");
    }
    assert_eq!(sem_values(&endpoint), [1]);
}

#[test]
fn pty_command_starts_with_no_signal_blocked() {
    // unipc pty blocks SIGINT, SIGTERM and SIGHUP for its signal thread;
    // inherited, the block would keep the terminal's ^C from the command,
    // and its SIGHUP when the terminal closes, so it would outlive unipc.
    let mut cmd = unipc();
    cmd.args([
        "pty",
        "--",
        "python3",
        "-c",
        "import signal; print(sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])))",
    ]);
    let text = run(cmd, Input::Nothing).ok();
    assert_eq!(text, "[]\r\n");
}

#[test]
fn lock_range_to_the_end_from_past_the_largest_offset_is_a_usage_error() {
    let dir = temp_dir();
    let file = dir.path().join("r.lock");
    let f = file.display().to_string();
    let err =
        unipc_run(&["lock", &f, "--range", "9223372036854775808:", "--", "true"]).usage_error();
    assert!(err.contains("9223372036854775807"), "{err}");
    unipc_run(&["lock", &f, "--test", "--range", "16E:"]).usage_error();
    assert!(!file.exists(), "a usage error created the file");
}

#[test]
fn sem_create_with_a_value_past_sem_value_max_is_a_usage_error() {
    let endpoint = format!("sem:/{}", unique());
    let _guard = Removed(endpoint.clone());
    let err = unipc_run(&["create", &endpoint, "--value", "2147483648"]).usage_error();
    assert!(
        err.contains(&endpoint) && err.contains("2147483647") && err.contains("SEM_VALUE_MAX"),
        "{err}"
    );
    assert!(!sem_file(&endpoint).exists());
    unipc_run(&["create", &endpoint, "--value", "2147483647"]).ok();
    assert_eq!(sem_value(&endpoint), "2147483647");
}

#[test]
fn sem_help_says_a_writer_can_truncate_a_semaphore_under_its_users() {
    // Not preventable: any writer can truncate the file, and the next
    // access to the mapped sem_t raises SIGBUS (tried: a waiter as root on
    // a world-writable semaphore nobody made and then truncated). The help
    // must say so.
    let text = unipc_run(&["sem", "--help"]).ok();
    assert!(
        text.contains("SIGBUS") && text.contains("truncate"),
        "{text}"
    );
}

/// Waits (at most [`DEADLINE`]) for process `pid` to be gone or a zombie;
/// kills it and fails with `why` if it is still running then.
fn assert_dies(pid: u32, why: &str) {
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(") ")
                .next()
                .is_some_and(|s| !s.starts_with('Z'))
        })
    };
    let deadline = Instant::now() + DEADLINE;
    while alive() && Instant::now() < deadline {
        thread::sleep(POLL);
    }
    if alive() {
        signal(pid, libc::SIGKILL);
        panic!("{why} (pid {pid})");
    }
}

/// `unipc lock -- CMD` killed with SIGKILL: the kernel releases the lock,
/// and CMD dies with unipc rather than run on without it (for each kind).
#[test]
fn lock_killed_with_sigkill_releases_the_lock_and_takes_cmd_with_it() {
    for kind in ["ofd", "posix", "flock"] {
        let dir = tempfile::Builder::new()
            .prefix("unipc-test-lockkill")
            .tempdir()
            .unwrap();
        let file = dir.path().join("k.lock");
        let cmd_pid = dir.path().join("cmd.pid");
        let script = format!(
            "echo $$ > {}; exec sleep 30 >/dev/null 2>&1",
            cmd_pid.display()
        );
        let before = locks_on(&file).len();
        let mut cmd = unipc();
        cmd.arg("lock")
            .arg(&file)
            .args(["--kind", kind, "--", "sh", "-c", &script]);
        let mut holder = start(cmd, Input::Nothing);
        assert!(
            holder.wait_until(|_| locks_on(&file).len() > before && cmd_pid.exists()),
            "{kind}: unipc lock did not take the lock and start CMD"
        );
        let pid = holder.pid();
        signal(pid, libc::SIGKILL);
        holder.finish();
        let cmd_pid: u32 = std::fs::read_to_string(&cmd_pid)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_dies(
            cmd_pid,
            &format!("{kind}: CMD outlived the unipc holding the lock for it"),
        );
        assert_eq!(
            locks_on(&file).len(),
            before,
            "{kind}: the lock outlived unipc"
        );
    }
}

// ===========================================================================
// Signals

/// Starts `unipc signal wait ARGS --pid-file DIR/waiter.pid --timeout 10`
/// and returns it with its pid, read from the pid file once it exists
/// (the signals are blocked by then).
// The caller waits for the child it is handed.
#[allow(clippy::zombie_processes)]
fn signal_waiter(dir: &Path, args: &[&str]) -> (Child, u32) {
    let pid_file = dir.join("waiter.pid");
    let child = unipc()
        .args(["signal", "wait"])
        .args(args)
        .args(["--timeout", "10", "--pid-file"])
        .arg(&pid_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn unipc signal wait");
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(&pid_file) {
            if let Ok(pid) = text.trim().parse::<u32>() {
                assert_eq!(pid, child.id());
                return (child, pid);
            }
        }
        if started.elapsed() > DEADLINE {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
            panic!("no pid file from signal wait");
        }
        thread::sleep(POLL);
    }
}

/// `signal wait --json` reports a payload another program sent through the
/// raw sigqueue call (python3's ctypes), and a kill from `signal send`.
#[test]
fn signal_wait_json_reports_a_raw_sigqueue_and_a_kill() {
    let probe = Command::new("python3")
        .args(["-c", "import ctypes"])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        unipc_test_support::skip("python3 with ctypes is not here");
        return;
    }
    let dir = temp_dir();
    let (child, pid) = signal_waiter(dir.path(), &["RTMIN+2", "USR1", "--count", "2", "--json"]);
    let script = format!(
        "import ctypes, os, sys\n\
         libc = ctypes.CDLL(None, use_errno=True)\n\
         class sigval(ctypes.Union):\n    _fields_ = [('sival_int', ctypes.c_int), ('sival_ptr', ctypes.c_void_p)]\n\
         signo = libc.__libc_current_sigrtmin() + 2\n\
         if libc.sigqueue({pid}, signo, sigval(sival_int=-42)) != 0:\n    sys.exit(os.strerror(ctypes.get_errno()))\n\
         print(os.getpid())\n"
    );
    let python = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(python.status.success(), "{python:?}");
    let python_pid: u32 = String::from_utf8(python.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let sender = unipc_run(&["signal", "send", &pid.to_string(), "USR1"]);
    sender.ok();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    let uid = rustix::process::getuid().as_raw();
    assert_eq!(
        lines[0],
        serde_json::json!({"signal": "SIGRTMIN+2", "pid": python_pid, "uid": uid, "code": "queue", "value": -42})
    );
    assert_eq!(lines[1]["signal"], "SIGUSR1");
    assert_eq!(lines[1]["code"], "user");
    assert_eq!(lines[1]["value"], serde_json::Value::Null);
    assert_eq!(lines[1]["uid"], uid);
    // The pid file went with it.
    assert!(!dir.path().join("waiter.pid").exists());
}

/// `signal wait TERM` takes TERM (terminate.rs's own handling is not in the
/// way), in text form; `send` with `--value` and a realtime signal queue.
#[test]
fn signal_wait_takes_term_and_prints_lines() {
    let dir = temp_dir();
    let (child, pid) = signal_waiter(dir.path(), &["TERM", "RTMAX-1", "--count", "3"]);
    let pid = pid.to_string();
    unipc_run(&["signal", "send", &pid, "SIGTERM"]).ok();
    unipc_run(&["signal", "send", &pid, "RTMAX-1", "--value", "-7"]).ok();
    unipc_run(&["signal", "send", &pid, "15", "--value", "9"]).ok();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let uid = rustix::process::getuid().as_raw();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("SIGTERM pid=")
            && lines[0].ends_with(&format!("uid={uid} code=user value=-")),
        "{text}"
    );
    assert!(lines[1].ends_with("code=queue value=-7"), "{text}");
    // A standard signal sent with a value goes by sigqueue and carries it.
    assert!(
        lines[2].starts_with("SIGTERM ") && lines[2].ends_with("code=queue value=9"),
        "{text}"
    );
    assert!(text.contains(&format!(
        "SIGRTMIN+{} ",
        libc::SIGRTMAX() - 1 - libc::SIGRTMIN()
    )));
}

#[test]
fn signal_errors_name_the_pid_and_bad_names_are_usage_errors() {
    // Nothing received before the timeout: exit 1; no pid file: the pid on stderr.
    let waited = unipc_run(&["signal", "wait", "USR2", "--timeout", "0.2"]);
    waited.exits(1);
    assert!(
        waited.stderr.contains(&"pid ".to_string()),
        "{}",
        waited.stderr
    );
    assert!(waited.stderr.contains("0 of 1"), "{}", waited.stderr);
    for bad in [
        &["signal", "send", "1", "NOPE"][..],
        &["signal", "send", "1", "RTMIN+99"],
        &["signal", "send", "0", "TERM"],
        &["signal", "wait", "RTMAX-99"],
        &["signal", "wait", "KILL"],
        &["signal", "wait"],
    ] {
        unipc_run(bad).usage_error();
    }
    // A process that is gone.
    let mut gone = Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    let err = unipc_run(&["signal", "send", &gone_pid.to_string(), "TERM"]);
    err.exits(1);
    assert!(
        err.stderr.contains(&format!("pid {gone_pid}")),
        "{}",
        err.stderr
    );
    assert!(
        err.stderr.to_lowercase().contains("no such process"),
        "{}",
        err.stderr
    );
    // Another user's process, as nobody (WINCH: harmless were it let through).
    let mut probe = Command::new("setpriv");
    probe.args([
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "true",
    ]);
    if !probe.status().is_ok_and(|s| s.success()) {
        unipc_test_support::skip("setpriv cannot switch to nobody here");
        return;
    }
    let me = std::process::id().to_string();
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_unipc"))
        .args(["signal", "send", &me, "WINCH", "--value", "1"]);
    let refused = run(cmd, Input::Nothing);
    refused.exits(1);
    assert!(
        refused.stderr.contains(&format!("pid {me}")),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.to_lowercase().contains("not permitted"),
        "{}",
        refused.stderr
    );
}

/// A planted file or symlink at --pid-file is refused and left alone; a
/// closed stdout ends `wait` quietly (exit 0).
#[test]
fn signal_wait_refuses_a_planted_pid_file_and_closed_stdout_is_quiet() {
    let dir = temp_dir();
    let target = dir.path().join("victim");
    std::fs::write(&target, "keep").unwrap();
    let link = dir.path().join("planted.pid");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let mut cmd = unipc();
    cmd.args(["signal", "wait", "USR1", "--timeout", "5", "--pid-file"])
        .arg(&link);
    let refused = run(cmd, Input::Nothing);
    refused.exits(1);
    assert!(refused.stderr.contains("planted.pid"), "{}", refused.stderr);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");

    let (mut child, pid) = signal_waiter(dir.path(), &["USR1"]);
    drop(child.stdout.take());
    // The waiter may see its stdout gone and leave before this arrives
    // (then it is no such process) or take it and fail to print it.
    let sent = unipc_run(&["signal", "send", &pid.to_string(), "USR1"]);
    assert!(
        sent.status.success() || sent.stderr.to_lowercase().contains("no such process"),
        "{}",
        sent.stderr
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `unipc rm` of several endpoints removes each in turn: one that fails is
/// reported on its own line naming it, and the others are still removed.
#[test]
fn rm_of_several_endpoints_reports_each_failure_and_removes_the_rest() {
    let dir = tempfile::Builder::new()
        .prefix("unipc-test-rmmany")
        .tempdir()
        .unwrap();
    let tag = format!("rmmany{}", std::process::id());
    let shm = format!("shm:/{tag}");
    let sem = format!("sem:/{tag}");
    let missing = format!("posix-mq:/{tag}-missing");
    let fifo = format!("fifo:{}", dir.path().join("f").display());
    unipc_run(&["create", &shm, "--size", "4K"]).ok();
    unipc_run(&["create", &sem, "--value", "1"]).ok();
    unipc_run(&["fifo", "create", &fifo[5..]]).ok();
    // One failure (the missing queue): one line naming it, exit 1.
    unipc_run(&["rm", &shm, &missing, &sem, &fifo]).runtime_error(&missing);
    for gone in [&shm, &sem] {
        assert!(
            !unipc_run(&["stat", gone]).status.success(),
            "{gone} is still there"
        );
    }
    assert!(!dir.path().join("f").exists());
    // A network endpoint cannot be removed: exit 2, the rest still removed.
    unipc_run(&["create", &shm, "--size", "4K"]).ok();
    let out = unipc_run(&["rm", "tcp:127.0.0.1:1", &shm]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(!unipc_run(&["stat", &shm]).status.success());
}

// ===========================================================================
// unipc ls

/// `unipc ls --json`, parsed; asserts exit 0 and the schema.
fn ls_json(cmd: Option<Command>, kinds: &[&str]) -> serde_json::Value {
    let mut cmd = cmd.unwrap_or_else(unipc);
    cmd.args(["ls", "--json"]);
    for k in kinds {
        cmd.args(["--kind", k]);
    }
    let doc: serde_json::Value = serde_json::from_str(&run(cmd, Input::Nothing).ok()).unwrap();
    assert_eq!(doc["schema"], "unipc-ls/1", "{doc}");
    doc
}

/// The listed object named `name`, if any.
fn ls_find<'a>(doc: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    doc["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
}

/// Makes a System V queue, set and segment through the raw calls from
/// python3 (another process, no unipc code): their ids, guarded.
fn ls_raw_sysv(keys: [u32; 3]) -> Option<([i64; 3], [Removed; 3])> {
    let script = format!(
        "import ctypes\n\
         c = ctypes.CDLL(None, use_errno=True)\n\
         f = 0o1000 | 0o2000\n\
         ids = [c.msgget({}, f | 0o640), c.semget({}, 3, f | 0o604), c.shmget({}, ctypes.c_size_t(8192), f | 0o660)]\n\
         print(' '.join(map(str, ids)))\n",
        keys[0] as i32, keys[1] as i32, keys[2] as i32
    );
    let mut cmd = Command::new("python3");
    cmd.args(["-c", &script]);
    let out = run(cmd, Input::Nothing);
    if !out.status.success() {
        unipc_test_support::skip(format!("python3 ctypes unavailable: {}", out.stderr));
        return None;
    }
    let ids: Vec<i64> = out
        .stdout_text()
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    let guards = [
        Removed(format!("sysv-mq:id={}", ids[0])),
        Removed(format!("sysv-sem:id={}", ids[1])),
        Removed(format!("sysv-shm:id={}", ids[2])),
    ];
    assert!(ids.iter().all(|&id| id >= 0), "a raw get failed: {ids:?}");
    Some(([ids[0], ids[1], ids[2]], guards))
}

#[test]
fn ls_lists_each_kind_made_by_other_processes_with_owner_mode_and_holders() {
    let base = unique();
    let shm = format!("shm:/{base}-ls");
    let sem = format!("sem:/{base}-ls");
    let mq_key = sysv_key(0xa1);
    let mq = format!("sysv-mq:{mq_key:#x}");
    let _g = [Removed(shm.clone()), Removed(sem.clone())];
    unipc_run(&["create", &shm, "--size", "4096", "--mode", "640"]).ok();
    unipc_run(&["create", &sem, "--value", "2", "--mode", "604"]).ok();
    let created = unipc_run(&["create", &mq, "--mode", "620"]).ok();
    let mq_id: i64 = created
        .split("id ")
        .nth(1)
        .and_then(|s| s.split([',', ')']).next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no id in {created:?}"));
    let _gq = Removed(format!("sysv-mq:id={mq_id}"));
    let Some((raw, _graw)) = ls_raw_sysv([sysv_key(0xa2), sysv_key(0xa3), sysv_key(0xa4)]) else {
        return;
    };

    // A live process holding the shm object open and mapped, and the raw
    // segment attached.
    let path = format!("/dev/shm/{base}-ls");
    let mut holder = Command::new("python3");
    holder.args([
        "-c",
        "import ctypes, mmap, sys, time\n\
         f = open(sys.argv[1], 'r+b')\n\
         m = mmap.mmap(f.fileno(), 4096)\n\
         c = ctypes.CDLL(None)\n\
         c.shmat.restype = ctypes.c_void_p\n\
         assert c.shmat(int(sys.argv[2]), None, 0) not in (None, 2**64 - 1)\n\
         time.sleep(30)\n",
        &path,
        &raw[2].to_string(),
    ]);
    let holder = start(holder, Input::Nothing);
    let started = Instant::now();
    let doc = loop {
        let doc = ls_json(None, &[]);
        let held = ls_find(&doc, &shm).is_some_and(|o| {
            o["holders"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["pid"] == holder.pid() && h["open"] == true && h["mapped"] == true)
        });
        let attached = ls_find(&doc, &format!("sysv-shm:id={}", raw[2])).is_some_and(|o| {
            o["attached_by"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["pid"] == holder.pid() && h["mapped"] == true)
        });
        if held && attached {
            break doc;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "holder {} never listed: {doc}",
            holder.pid()
        );
        thread::sleep(Duration::from_millis(50));
    };

    let o = ls_find(&doc, &shm).expect("shm listed");
    assert_eq!(o["kind"], "shm");
    assert_eq!(o["mode"], "0640");
    assert_eq!(o["size"], 4096);
    assert_eq!(o["owner"]["uid"], rustix::process::geteuid().as_raw());
    let o = ls_find(&doc, &sem).expect("sem listed");
    assert_eq!(
        (&o["kind"], &o["mode"]),
        (&"sem".into(), &"0604".into()),
        "{o}"
    );
    assert!(ls_find(&doc, &format!("shm:/sem.{base}-ls")).is_none());
    let o = ls_find(&doc, &format!("sysv-mq:id={mq_id}")).expect("queue listed");
    assert_eq!(o["key"], format!("{mq_key:#010x}"));
    assert_eq!(
        (&o["mode"], &o["messages"]),
        (&"0620".into(), &0.into()),
        "{o}"
    );
    let o = ls_find(&doc, &format!("sysv-mq:id={}", raw[0])).expect("raw queue listed");
    assert_eq!(
        (&o["kind"], &o["mode"]),
        (&"sysv-mq".into(), &"0640".into()),
        "{o}"
    );
    let o = ls_find(&doc, &format!("sysv-sem:id={}", raw[1])).expect("raw set listed");
    assert_eq!(
        (&o["mode"], &o["semaphores"]),
        (&"0604".into(), &3.into()),
        "{o}"
    );
    assert_eq!(o["key"], format!("{:#010x}", sysv_key(0xa3)));
    assert_eq!(o["waiting_increase"], 0, "{o}");
    let o = ls_find(&doc, &format!("sysv-shm:id={}", raw[2])).expect("raw segment listed");
    assert_eq!(
        (&o["mode"], &o["size"]),
        (&"0660".into(), &8192.into()),
        "{o}"
    );
    assert_eq!(o["attached"], 1, "{o}");
    // python3 made it and has exited: its pid is recorded and not alive.
    assert_eq!(o["creator"]["alive"], false, "{o}");

    // --kind keeps that kind only; the table fits 100 columns.
    let only = ls_json(None, &["sysv-sem", "sem"]);
    let objects = only["objects"].as_array().unwrap();
    assert!(
        objects
            .iter()
            .all(|o| o["kind"] == "sysv-sem" || o["kind"] == "sem"),
        "{only}"
    );
    assert!(ls_find(&only, &sem).is_some() && ls_find(&only, &shm).is_none());
    let table = unipc_run(&["ls"]).ok();
    assert!(
        table.contains(&shm) && table.contains(&format!("sysv-shm:id={}", raw[2])),
        "{table}"
    );
    assert!(table.lines().all(|l| l.chars().count() <= 100), "{table}");
    let bad = unipc_run(&["ls", "--kind", "sysv-pipe"]).usage_error();
    assert!(
        bad.contains("sysv-mq") && bad.contains("sysv-pipe"),
        "{bad}"
    );

    // A process waiting on the raw set shows in its waiter count.
    let set = format!("sysv-sem:id={}", raw[1]);
    let mut waiter = unipc();
    waiter.args(["semop", &set, "1:-1", "--timeout", "9"]);
    let waiter = start(waiter, Input::Nothing);
    let started = Instant::now();
    loop {
        let doc = ls_json(None, &["sysv-sem"]);
        let o = ls_find(&doc, &set).expect("set listed");
        if o["waiting_increase"] == 1 {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "waiter never counted: {o}");
        thread::sleep(Duration::from_millis(50));
    }
    waiter.kill();

    // The holder SIGKILLed (and reaped): no longer listed.
    let pid = holder.pid();
    holder.kill();
    let doc = ls_json(None, &["shm", "sysv-shm"]);
    let o = ls_find(&doc, &shm).expect("shm still listed");
    assert!(
        o["holders"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["pid"] != pid),
        "{o}"
    );
    let o = ls_find(&doc, &format!("sysv-shm:id={}", raw[2])).expect("segment listed");
    assert_eq!(o["attached"], 0, "{o}");
    assert_eq!(o["attached_by"], serde_json::json!([]), "{o}");
}

/// A /dev/shm name with a newline is escaped in the table (it cannot forge
/// a row) and exact in the JSON.
#[test]
fn ls_table_escapes_control_characters_in_names() {
    struct Gone(String);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let name = format!("{}-ls\nforged", unique());
    let path = format!("/dev/shm/{name}");
    let _g = Gone(path.clone());
    std::fs::File::create(&path).unwrap();
    let table = unipc_run(&["ls", "--kind", "shm"]).ok();
    let escaped = format!("shm:/{}", name.replace('\n', "\\n"));
    assert!(table.lines().any(|l| l.starts_with(&escaped)), "{table}");
    assert!(!table.lines().any(|l| l.starts_with("forged")), "{table}");
    let doc = ls_json(None, &["shm"]);
    assert!(ls_find(&doc, &format!("shm:/{name}")).is_some(), "{doc}");
}

/// `ipcs -q/-s/-m` and `unipc ls` report the same id, key and owner for
/// each of this test's objects.
#[test]
fn ls_agrees_with_ipcs() {
    let Some((ids, _g)) = ls_raw_sysv([sysv_key(0xb1), sysv_key(0xb2), sysv_key(0xb3)]) else {
        return;
    };
    let doc = ls_json(None, &["sysv-mq", "sysv-sem", "sysv-shm"]);
    for ((flag, kind), id) in [("-q", "sysv-mq"), ("-s", "sysv-sem"), ("-m", "sysv-shm")]
        .into_iter()
        .zip(ids)
    {
        let mut cmd = Command::new("ipcs");
        cmd.arg(flag);
        let out = run(cmd, Input::Nothing);
        if !out.status.success() {
            unipc_test_support::skip("ipcs unavailable");
            return;
        }
        let text = out.stdout_text();
        // key id owner perms ...
        let row: Vec<&str> = text
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.len() > 3 && f[1] == id.to_string())
            .unwrap_or_else(|| panic!("ipcs {flag} does not list {id}: {text}"));
        let o = ls_find(&doc, &format!("{kind}:id={id}")).unwrap_or_else(|| panic!("{doc}"));
        assert_eq!(o["key"], row[0], "{o} vs {row:?}");
        assert_eq!(o["owner"]["user"], row[2], "{o} vs {row:?}");
        assert_eq!(
            o["mode"].as_str().unwrap().trim_start_matches('0'),
            row[3].trim_start_matches('0'),
            "{o} vs {row:?}"
        );
    }
}

/// As nobody, ls still lists everyone's objects and says what it could not
/// read: root's processes, and a root set it may not read (mode 0600).
#[test]
fn ls_as_nobody_lists_and_reports_what_it_could_not_read() {
    let mut probe = Command::new("setpriv");
    probe.args([
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "true",
    ]);
    if !probe.status().is_ok_and(|s| s.success()) {
        unipc_test_support::skip("setpriv cannot switch to nobody here");
        return;
    }
    if !rustix::process::geteuid().is_root() {
        unipc_test_support::skip("not root: nothing nobody cannot read");
        return;
    }
    let shm = format!("shm:/{}-ls", unique());
    let _g = Removed(shm.clone());
    unipc_run(&["create", &shm, "--size", "1", "--mode", "600"]).ok();
    let set = format!("sysv-sem:{:#x}", sysv_key(0xc1));
    let created = unipc_run(&["create", &set, "--mode", "600"]).ok();
    let _gs = Removed(set.clone());
    let mut nobody = Command::new("setpriv");
    nobody
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_unipc"));
    let doc = ls_json(Some(nobody), &[]);
    let o = ls_find(&doc, &shm).unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(
        (&o["mode"], &o["owner"]["uid"]),
        (&"0600".into(), &0.into()),
        "{o}"
    );
    let id = created
        .split("id ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap();
    let o = ls_find(&doc, &format!("sysv-sem:id={id}")).unwrap_or_else(|| panic!("{doc}"));
    assert!(o["waiting_increase"].is_null(), "{o}");
    let unreadable = doc["unreadable"].as_array().unwrap();
    let paths: Vec<&str> = unreadable
        .iter()
        .map(|u| u["what"].as_str().unwrap())
        .collect();
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with(&format!("sysv-sem:id={id}"))),
        "{paths:?}"
    );
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("/proc/") && p.ends_with("/fd")),
        "{paths:?}"
    );
    // The table says so on stderr, and still exits 0.
    let mut table = Command::new("setpriv");
    table
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_unipc"))
        .arg("ls");
    let out = run(table, Input::Nothing);
    assert!(out.ok().contains(&shm));
    assert!(out.stderr.contains("could not be read"), "{}", out.stderr);
}

/// The python3 program that makes, and holds until killed, a POSIX queue
/// (through the raw mq_open), a listening UNIX stream socket with one
/// accepted connection, a bound seqpacket socket, an abstract datagram
/// socket, a FIFO open for reading and writing, and a flock, a POSIX
/// record lock and an OFD lock on three files of `dir`.
const LS_HOLDER: &str = r#"
import ctypes, fcntl, os, socket, struct, sys, time
queue, d, abstract = sys.argv[1], sys.argv[2], sys.argv[3]
os.umask(0)
c = ctypes.CDLL(None, use_errno=True)
c.mq_open.restype = ctypes.c_int
c.mq_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p]
q = c.mq_open(queue.encode(), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o640, None)
assert q >= 0, ctypes.get_errno()
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(d + "/stream.sock"); listener.listen(4)
client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
client.connect(d + "/stream.sock"); accepted, _ = listener.accept()
seq = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
seq.bind(d + "/seq.sock")
dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
dgram.bind("\0" + abstract)
os.mkfifo(d + "/f.fifo", 0o620)
fifo = os.open(d + "/f.fifo", os.O_RDWR)
files = [open(d + "/" + n, "w+") for n in ("flock", "posix", "ofd")]
fcntl.flock(files[0], fcntl.LOCK_EX)
fcntl.lockf(files[1], fcntl.LOCK_SH, 10, 5)
F_OFD_SETLK = 37
fcntl.fcntl(files[2], F_OFD_SETLK, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0))
print("ready", flush=True)
time.sleep(30)
"#;

#[test]
fn ls_lists_queues_sockets_fifos_and_locks_with_their_holders() {
    let base = unique();
    let dir = tempfile::Builder::new().prefix("unipc-").tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_owned();
    let queue = format!("/{base}-ls");
    let _gq = Removed(format!("posix-mq:{queue}"));
    let abstract_name = format!("{base}-abstract");
    let mut holder = Command::new("python3");
    holder.args(["-c", LS_HOLDER, &queue, &d, &abstract_name]);
    let holder = start(holder, Input::Nothing);
    let pid = holder.pid();
    // A second process waiting for the flock.
    let mut waiter = Command::new("python3");
    waiter.args([
        "-c",
        "import fcntl, sys, time\n\
         while True:\n\
         \x20   try:\n\
         \x20       f = open(sys.argv[1]); break\n\
         \x20   except FileNotFoundError: time.sleep(0.01)\n\
         fcntl.flock(f, fcntl.LOCK_EX)\n",
        &format!("{d}/flock"),
    ]);
    let waiter = start(waiter, Input::Nothing);

    let names = [
        format!("posix-mq:{queue}"),
        format!("unix:{d}/stream.sock"),
        format!("unix-seqpacket:{d}/seq.sock"),
        format!("unix-dgram:@{abstract_name}"),
        format!("fifo:{d}/f.fifo"),
        format!("{d}/flock"),
        format!("{d}/posix"),
        format!("{d}/ofd"),
    ];
    let started = Instant::now();
    let doc = loop {
        let mut cmd = unipc();
        cmd.args(["ls", "--json", "--path", &d]);
        let doc: serde_json::Value = serde_json::from_str(&run(cmd, Input::Nothing).ok()).unwrap();
        let waiting = doc["objects"].as_array().unwrap().iter().any(|o| {
            o["kind"] == "lock" && o["waiting"] == true && o["holder"]["pid"] == waiter.pid()
        });
        if waiting && names.iter().all(|n| ls_find(&doc, n).is_some()) {
            break doc;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "not all of {names:?} listed (and the waiter): {doc}"
        );
        thread::sleep(Duration::from_millis(50));
    };
    let me = rustix::process::geteuid().as_raw();
    let held_by_holder = |o: &serde_json::Value| {
        o["holders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["pid"] == pid)
    };

    let o = ls_find(&doc, &names[0]).unwrap();
    assert_eq!(
        (&o["kind"], &o["mode"]),
        (&"posix-mq".into(), &"0640".into()),
        "{o}"
    );
    assert_eq!(
        (&o["messages"], &o["max_messages"]),
        (&0.into(), &10.into()),
        "{o}"
    );
    assert_eq!(o["owner"]["uid"], me, "{o}");
    assert!(held_by_holder(o), "{o}");

    let o = ls_find(&doc, &names[1]).unwrap();
    assert_eq!(
        (&o["kind"], &o["socket_type"]),
        (&"unix".into(), &"stream".into()),
        "{o}"
    );
    assert_eq!(
        (&o["state"], &o["connections"]),
        (&"listening".into(), &1.into()),
        "{o}"
    );
    assert_eq!(o["owner"]["uid"], me, "{o}");
    assert!(held_by_holder(o), "{o}");
    let o = ls_find(&doc, &names[2]).unwrap();
    assert_eq!(
        (&o["socket_type"], &o["state"]),
        (&"seqpacket".into(), &"bound".into()),
        "{o}"
    );
    let o = ls_find(&doc, &names[3]).unwrap();
    assert_eq!(
        (&o["abstract"], &o["mode"]),
        (&true.into(), &serde_json::Value::Null),
        "{o}"
    );
    // No file: the owner is the holder's user.
    assert_eq!(o["owner"]["uid"], me, "{o}");
    assert!(held_by_holder(o), "{o}");

    let o = ls_find(&doc, &names[4]).unwrap();
    assert_eq!(
        (&o["kind"], &o["mode"]),
        (&"fifo".into(), &"0620".into()),
        "{o}"
    );
    let h = o["holders"].as_array().unwrap();
    assert!(
        h.iter()
            .any(|h| h["pid"] == pid && h["reading"] == true && h["writing"] == true),
        "{o}"
    );

    let lock = |name: &str, class: &str| {
        doc["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name && o["class"] == class && o["waiting"] == false)
            .unwrap_or_else(|| panic!("no {class} lock on {name}: {doc}"))
    };
    let o = lock(&names[5], "flock");
    assert_eq!(
        (&o["exclusive"], &o["holder"]["pid"]),
        (&true.into(), &pid.into()),
        "{o}"
    );
    let o = lock(&names[6], "posix");
    assert_eq!(
        (&o["exclusive"], &o["start"], &o["end"]),
        (&false.into(), &5.into(), &14.into()),
        "{o}"
    );
    assert_eq!(o["holder"]["pid"], pid, "{o}");
    let o = lock(&names[7], "ofd");
    assert_eq!(
        (&o["holder"], &o["end"]),
        (&serde_json::Value::Null, &serde_json::Value::Null),
        "{o}"
    );
    assert!(held_by_holder(o), "{o}");

    // The table shows each, and --kind picks.
    let table = unipc_run(&["ls", "--path", &d]).ok();
    for n in &names[..5] {
        assert!(table.contains(n.as_str()), "{n} not in {table}");
    }
    let only = ls_json(None, &["unix"]);
    assert!(only["objects"]
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["kind"] == "unix"));
    waiter.kill();
    holder.kill();
}

/// Where no mqueue filesystem is mounted, `ls` mounts one detached (as root)
/// and still lists the queues.
#[test]
fn ls_lists_queues_when_the_mqueue_filesystem_is_mounted_nowhere() {
    if !rustix::process::geteuid().is_root() {
        return unipc_test_support::skip("mounting the mqueue filesystem needs root");
    }
    let queue = format!("posix-mq:/{}", unique());
    let _g = Removed(queue.clone());
    unipc_run(&["create", &queue]).ok();
    let script = format!(
        "grep -q ' - mqueue ' /proc/self/mountinfo && umount -a -t mqueue; \
         grep -q ' - mqueue ' /proc/self/mountinfo && exit 3; exec {} ls --json --kind posix-mq",
        env!("CARGO_BIN_EXE_unipc")
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
    let out = run(cmd, Input::Nothing);
    if out.status.code() == Some(1) && out.stderr.contains("unshare") {
        return unipc_test_support::skip(format!("no mount namespace here: {}", out.stderr));
    }
    let doc: serde_json::Value = serde_json::from_str(&out.ok()).unwrap();
    assert!(ls_find(&doc, &queue).is_some(), "{queue} not in {doc}");
}

// ===========================================================================
// unipc gc

/// Runs `script` with `unipc` on its PATH in a private world: new PID, IPC
/// and mount namespaces with their own /dev/shm and mqueue filesystem, so
/// gc judges only what the script makes, and sees every process. `None`
/// (skipped) where namespaces cannot be made.
fn in_private_world(script: &str) -> Option<Finished> {
    if !rustix::process::geteuid().is_root() {
        unipc_test_support::skip("a private PID, IPC and mount namespace needs root");
        return None;
    }
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_unipc"))
        .parent()
        .unwrap()
        .to_owned();
    let setup = "mount -t tmpfs none /dev/shm && chmod 1777 /dev/shm && \
                 mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue || exit 99\n";
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--pid",
        "--fork",
        "--mount-proc",
        "--ipc",
        "--mount",
        "sh",
        "-ec",
    ])
    .arg(format!("{setup}{script}"))
    .env(
        "PATH",
        format!("{}:/usr/bin:/bin:/usr/sbin:/sbin", bin.display()),
    );
    let out = run(cmd, Input::Nothing);
    if out.status.code() == Some(1) && out.stderr.contains("unshare") {
        unipc_test_support::skip(format!("no namespaces here: {}", out.stderr));
        return None;
    }
    Some(out)
}

#[test]
fn gc_removes_dead_creators_objects_keeps_kept_and_unowned_until_asked() {
    if std::env::var_os("UNIPC_CLI_TEST_ROLE").is_some() {
        // The creator the script SIGKILLs: a program that made a queue
        // through the library and did not keep it.
        let name = unipc::name::PosixName::new("/dead").unwrap();
        let _queue = unipc::message::posix_mq::Queue::create(&name).unwrap();
        thread::sleep(Duration::from_secs(30));
        return;
    }
    let me = std::env::current_exe().unwrap();
    let creator = format!(
        "UNIPC_CLI_TEST_ROLE=creator {} gc_removes_dead_creators_objects_keeps_kept_and_unowned_until_asked --exact -q > /dev/null &",
        me.display()
    );
    let Some(out) = in_private_world(&format!(
        "unipc create posix-mq:/kept\n\
         unipc create shm:/kept --size 4096\n\
         python3 -c 'import os; os.close(os.open(\"/dev/shm/raw\", os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))'\n\
         # A creator SIGKILLed while it still runs: it kept nothing.\n\
         {creator} pid=$!\n\
         while [ ! -e /dev/mqueue/dead ]; do sleep 0.01; done\n\
         kill -9 $pid; wait $pid || true\n\
         echo '== nested'; unipc gc -v\n\
         echo '== dry'; unipc gc --private-namespace --dry-run -v\n\
         echo '== json'; unipc gc --private-namespace --dry-run --json\n\
         echo '== run'; unipc gc --private-namespace\n\
         echo '== left'; ls -A /dev/shm /dev/mqueue\n\
         echo '== nobody'; setpriv --reuid=nobody --regid=nogroup --clear-groups unipc gc --private-namespace --kept --unowned -v\n\
         echo '== all'; unipc gc --private-namespace --kept --unowned -v\n\
         echo '== empty'; ls -A /dev/shm /dev/mqueue\n\
         echo '== kind'; unipc gc --private-namespace --kind unix || echo \"exit $?\"\n\
         # A waiter stopped in semop is in no semncnt, but in its syscall.\n\
         unipc create sysv-sem:0x2222 --count 1 --values 0 > /dev/null\n\
         unipc semop sysv-sem:0x2222 0:-1 & w=$!\n\
         while ! grep -qs '^6[45] \\|^220 ' /proc/$w/task/*/syscall; do sleep 0.01; done\n\
         kill -STOP $w\n\
         while ! grep -qs '^[0-9]* ([^)]*) T' /proc/$w/stat; do sleep 0.01; done\n\
         echo '== stopped'; unipc gc --private-namespace --kept -v\n\
         kill -9 $w; wait $w || true\n\
         unipc rm sysv-sem:0x2222\n\
         # Another user plants root's record directory: no record is read\n\
         # from it or written to it, and gc says so.\n\
         setpriv --reuid=nobody --regid=nogroup --clear-groups mkdir /dev/shm/.unipc-creators-0\n\
         unipc create shm:/planted --size 1 > /dev/null\n\
         echo '== planted'; unipc gc --private-namespace -v 2>&1\n"
    )) else {
        return;
    };
    if !out.status.success() {
        eprintln!("the world's stdout:\n{}", out.stdout_text());
    }
    let text = out.ok();
    let part = |name: &str| {
        let start = text
            .find(&format!("== {name}\n"))
            .unwrap_or_else(|| panic!("{text}"));
        let rest = &text[start + name.len() + 4..];
        rest[..rest.find("\n== ").unwrap_or(rest.len())].to_owned()
    };
    // In a nested PID namespace, nothing is judged without the flag.
    let nested = part("nested");
    assert!(
        nested.contains("stays posix-mq:/dead: this PID namespace is nested")
            && !nested.contains("removed"),
        "{nested}"
    );
    let dry = part("dry");
    assert!(
        dry.contains("would remove posix-mq:/dead: its creator"),
        "{dry}"
    );
    assert!(
        dry.contains("stays posix-mq:/kept: kept on purpose"),
        "{dry}"
    );
    assert!(dry.contains("stays shm:/kept: kept on purpose"), "{dry}");
    assert!(dry.contains("stays shm:/raw: unowned"), "{dry}");
    let doc: serde_json::Value = serde_json::from_str(&part("json")).unwrap();
    assert_eq!(doc["schema"], "unipc-gc/1", "{doc}");
    let dead = doc["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "posix-mq:/dead")
        .unwrap();
    assert_eq!(dead["outcome"], "would-go", "{doc}");
    let run_part = part("run");
    assert!(
        run_part
            .trim()
            .starts_with("removed posix-mq:/dead: its creator")
            && run_part.trim().lines().count() == 1,
        "{text}"
    );
    let left = part("left");
    assert!(
        left.contains("kept") && left.contains("raw") && !left.contains("dead"),
        "{left}"
    );
    // Another user cannot read root's processes: it takes nothing POSIX
    // for unused.
    let nobody = part("nobody");
    assert!(
        nobody.contains("stays shm:/kept: some processes cannot be read"),
        "{nobody}"
    );
    assert!(!nobody.contains("removed"), "{nobody}");
    let all = part("all");
    for gone in ["posix-mq:/kept", "shm:/kept", "shm:/raw"] {
        assert!(all.contains(&format!("removed {gone}")), "{all}");
    }
    let empty = part("empty");
    assert!(
        !empty.contains("kept") && !empty.contains("raw") && !empty.contains(".unipc"),
        "{empty}"
    );
    assert!(part("kind").contains("exit 2"), "{text}");
    let stopped = part("stopped");
    assert!(
        stopped.contains("stays sysv-sem:id=") && stopped.contains("waits on it"),
        "{stopped}"
    );
    let planted = part("planted");
    assert!(planted.contains("stays shm:/planted: unowned"), "{planted}");
    assert!(
        planted.contains("/dev/shm/.unipc-creators-0: creator records ignored")
            && planted.contains("owner 65534"),
        "{planted}"
    );
}

// ===========================================================================
// Typed messages: `send --json`, `recv --json --typed`, and a Rust peer

mod typed_json {
    use super::*;
    use serde::{Deserialize, Serialize};
    use unipc::message::posix_mq::Queue;
    use unipc::message::typed::{Framed, TypeTag, Typed};
    use unipc::message::{Tag, Wait};

    const TAG: &str = "unipc-cli-test.Job/v1";

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Job {
        id: u64,
        cmd: String,
        weight: f64,
        tags: Vec<String>,
        parent: Option<u64>,
    }

    fn create_queue() -> (String, Removed) {
        let endpoint = format!("posix-mq:/{}", unique());
        let guard = Removed(endpoint.clone());
        unipc_run(&[
            "create",
            &endpoint,
            "--max-messages",
            "8",
            "--max-size",
            "512",
            "--exclusive",
        ])
        .ok();
        (endpoint, guard)
    }

    fn send_json(endpoint: &str, extra: &[&str], input: &str) -> Finished {
        let mut cmd = unipc();
        cmd.args(["send", endpoint, "--json"]).args(extra);
        run(cmd, Input::Bytes(input.as_bytes().to_vec()))
    }

    fn recv_typed(endpoint: &str, extra: &[&str]) -> Finished {
        let mut cmd = recv_cmd(endpoint);
        cmd.args(["--json", "--typed"]).args(extra);
        run(cmd, Input::Nothing)
    }

    /// `unipc send --json` in one process, `unipc recv --json --typed` in
    /// another: every value comes out as it went in, with its priority.
    #[test]
    fn send_json_to_recv_typed_between_two_processes() {
        let (endpoint, _guard) = create_queue();
        let values = [
            r#"{"id":1,"cmd":"make","nested":{"deep":[1,-2,3.5,null,true]}}"#,
            r#"[]"#,
            r#""just text ✓""#,
            r#"18446744073709551615"#,
        ];
        // A blank line is skipped.
        let input = format!(
            "{}\n\n{}\n{}\n{}",
            values[0], values[1], values[2], values[3]
        );
        send_json(&endpoint, &["--priority", "4"], &input).ok();
        let out = recv_typed(&endpoint, &["--count", "4"]).ok();
        let got: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let want: Vec<serde_json::Value> = values
            .iter()
            .map(|v| serde_json::from_str(v).unwrap())
            .collect();
        assert_eq!(got, want);

        // Plain --json still shows the envelope of the raw bytes.
        send_json(&endpoint, &[], "1").ok();
        let raw: serde_json::Value =
            serde_json::from_str(&unipc_run(&["recv", &endpoint, "--json"]).ok()).unwrap();
        // The header is ASCII, so the envelope holds it as text: MessagePack
        // is encoding 2.
        assert!(
            raw["data"].as_str().unwrap().starts_with("UPCT\u{1}\u{2}"),
            "{raw}"
        );
    }

    /// `send --json --cbor` writes CBOR (encoding 1); `recv --json --typed`
    /// reads it and MessagePack alike, one after the other.
    #[test]
    fn cbor_and_messagepack_both_decode() {
        let (endpoint, _guard) = create_queue();
        send_json(&endpoint, &["--cbor"], "1").ok();
        let raw: serde_json::Value =
            serde_json::from_str(&unipc_run(&["recv", &endpoint, "--json"]).ok()).unwrap();
        assert!(
            raw["data"].as_str().unwrap().starts_with("UPCT\u{1}\u{1}"),
            "{raw}"
        );
        let value = r#"{"id":7,"list":[1,"two",{"x":null}],"f":-0.5}"#;
        send_json(&endpoint, &["--cbor"], value).ok();
        send_json(&endpoint, &[], value).ok();
        let out = recv_typed(&endpoint, &["--count", "2"]).ok();
        let want: serde_json::Value = serde_json::from_str(value).unwrap();
        let got: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(got, [want.clone(), want]);
    }

    /// As a script would write it: a pipeline into `send --json`, through a
    /// queue, and a receiver in the background of a UNIX stream.
    #[test]
    fn shell_pipelines() {
        let (endpoint, _guard) = create_queue();
        let dir = temp_dir();
        let sock = format!("unix:{}", dir.path().join("s.sock").display());
        let script = format!(
            r#"set -e
u="{bin}"
printf '%s\n' '{{"n":1}}' '[true,"x"]' | "$u" send {endpoint} --json --priority 1
"$u" recv {endpoint} --json --typed --count 2
"$u" recv {sock} --json --typed &
seq 3 | "$u" send {sock} --json --timeout 5
wait $!"#,
            bin = env!("CARGO_BIN_EXE_unipc"),
        );
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", &script]);
        let out = run(cmd, Input::Nothing).ok();
        assert_eq!(out, "{\"n\":1}\n[true,\"x\"]\n1\n2\n3\n");
    }

    /// A line that is not JSON stops the send naming its number, after the
    /// lines before it were sent; a message that is not typed is an error
    /// naming the queue; a value over the queue's limit names both sizes.
    #[test]
    fn bad_lines_untyped_messages_and_oversize_are_errors() {
        let (endpoint, _guard) = create_queue();
        let err = send_json(&endpoint, &[], "1\n2\n{not json}\n3\n").runtime_error("line 3");
        assert!(
            err.contains("not JSON") && err.contains("2 message(s)"),
            "{err}"
        );
        let out = recv_typed(&endpoint, &["--count", "2"]).ok();
        assert_eq!(out, "1\n2\n");
        assert_eq!(
            recv_typed(&endpoint, &["--nonblock"]).runtime_error(&endpoint),
            format!("unipc: {endpoint}: empty; no message is waiting")
        );

        unipc_run(&["send", &endpoint, "plain bytes, not typed"]).ok();
        let err = recv_typed(&endpoint, &[]).runtime_error(&endpoint);
        assert!(err.contains("typed header"), "{err}");

        let long = format!("\"{}\"", "x".repeat(600));
        let err = send_json(&endpoint, &[], &long).runtime_error(&endpoint);
        assert!(err.contains("exceeds the limit of 512 bytes"), "{err}");

        // A tag the receiver does not expect.
        send_json(&endpoint, &["--type-tag", "other"], "1").ok();
        let err = recv_typed(&endpoint, &["--type-tag", TAG]).runtime_error(&endpoint);
        assert!(err.contains("type tag"), "{err}");
        // --typed needs --json; --type-tag needs --typed or --json.
        unipc_run(&["recv", &endpoint, "--typed"]).usage_error();
        unipc_run(&["send", &endpoint, "--type-tag", TAG, "1"]).usage_error();
        unipc_run(&["send", &endpoint, "--json", "--lines", "1"]).usage_error();
    }

    /// A shell script and a Rust program with `Typed<T>` understand each
    /// other, both ways, through a POSIX queue.
    #[test]
    fn a_rust_typed_peer_on_the_other_side_of_a_queue() {
        let (endpoint, _guard) = create_queue();
        let name = endpoint.strip_prefix("posix-mq:").unwrap().parse().unwrap();
        let queue =
            Typed::<_, Job>::new(Queue::open(&name).unwrap()).with_type_tag(TypeTag::named(TAG));

        let line = r#"{"id":7,"cmd":"make -j2","weight":0.5,"tags":["a","b"],"parent":null}"#;
        send_json(&endpoint, &["--type-tag", TAG, "--priority", "2"], line).ok();
        let (job, tag) = queue
            .recv_tagged(Wait::For(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(
            job,
            Job {
                id: 7,
                cmd: "make -j2".into(),
                weight: 0.5,
                tags: vec!["a".into(), "b".into()],
                parent: None,
            }
        );
        assert_eq!(tag, Tag::Priority(2));

        let sent = Job {
            id: 8,
            cmd: "test".into(),
            weight: 1.25,
            tags: vec![],
            parent: Some(7),
        };
        queue
            .send_tagged(&sent, Tag::Priority(1), Wait::Never)
            .unwrap();
        let out = recv_typed(&endpoint, &["--type-tag", TAG]).ok();
        let got: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap();
        assert_eq!(
            got,
            serde_json::json!({"id": 8, "cmd": "test", "weight": 1.25, "tags": [], "parent": 7})
        );
    }

    /// `unipc recv unix:PATH --json --typed` reads typed frames from a Rust
    /// `Framed` client until it closes.
    #[test]
    fn framed_frames_from_a_rust_peer_over_a_unix_stream() {
        let dir = temp_dir();
        let path = dir.path().join("typed.sock");
        let endpoint = format!("unix:{}", path.display());
        let recv = unix_receiver(&endpoint, &["--json", "--typed"], true);
        let addr = unipc::name::UnixAddr::path(&path).unwrap();
        let stream = unipc::stream::unix::Stream::connect(&addr).unwrap();
        let mut framed = Framed::<_, Job>::new(stream).with_type_tag(TypeTag::named(TAG));
        for id in 0..3 {
            framed
                .send(&Job {
                    id,
                    cmd: format!("step {id}"),
                    weight: 2.5,
                    tags: vec!["t".into()],
                    parent: None,
                })
                .unwrap();
        }
        drop(framed);
        let out = recv.finish().ok();
        let ids: Vec<u64> = out
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(ids, [0, 1, 2]);
        assert!(!path.exists(), "recv removed its socket file");
    }
}

// ===========================================================================
// nats:// against a real nats-server

#[test]
fn nats_create_send_recv_stat_rm_through_a_real_server() {
    let Some(server) = unipc_test_support::NatsServer::start() else {
        return;
    };
    let endpoint = format!("{}/{}", server.url(), unique().replace('-', "_"));
    let created = unipc_run(&["create", &endpoint, "--max-messages", "5"]).ok();
    assert!(
        created.contains("created") && created.contains("retention workqueue"),
        "{created}"
    );
    unipc_run(&["send", &endpoint, "first"]).ok();
    send_lines(&endpoint, b"second\nthird\n");
    let stat = unipc_run(&["stat", &endpoint]).ok();
    assert!(
        stat.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["messages", "3"]),
        "{stat}"
    );
    assert_eq!(
        unipc_run(&["recv", &endpoint, "--count", "2"]).ok(),
        "first\nsecond\n"
    );
    let json = unipc_run(&["recv", &endpoint, "--json"]).ok();
    assert!(json.contains("\"data\":\"third\""), "{json}");
    unipc_run(&["recv", &endpoint, "--nonblock"]).runtime_error(&endpoint);
    // Full at 5: the sixth is refused, naming the endpoint.
    for i in 0..5 {
        unipc_run(&["send", &endpoint, &format!("m{i}")]).ok();
    }
    unipc_run(&["send", &endpoint, "one too many"]).runtime_error(&endpoint);
    unipc_run(&["rm", &endpoint]).ok();
    let line = unipc_run(&["stat", &endpoint]).runtime_error(&endpoint);
    assert!(line.contains("stream missing"), "{line}");
    // Nobody there: a typed error within the timeout, not a hang.
    let nowhere = "nats://127.0.0.1:1/jobs";
    let line = unipc_run(&["send", nowhere, "x", "--timeout", "2"]).runtime_error(nowhere);
    assert!(line.contains("server unreachable"), "{line}");
    for command in ["stat", "rm", "create"] {
        let started = Instant::now();
        let line = unipc_run(&[command, nowhere, "--timeout", "1"]).runtime_error(nowhere);
        assert!(line.contains("server unreachable"), "{command}: {line}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{command}: {:?}",
            started.elapsed()
        );
    }
    let compare = unipc_run(&["compare"]).ok();
    assert!(compare.contains("nats"), "{compare}");
}

/// `unipc send ENDPOINT --lines` with `lines` on stdin, which must succeed.
fn send_lines(endpoint: &str, lines: &[u8]) {
    let mut send = unipc();
    send.args(["send", endpoint, "--lines"]);
    run(send, Input::Bytes(lines.to_vec())).ok();
}

/// A `unipc bridge SRC DST --state DIR` process.
fn bridge(source: &str, destination: &str, state: &std::path::Path) -> Running {
    let mut cmd = unipc();
    cmd.args(["bridge", source, destination, "--progress", "0", "--state"])
        .arg(state);
    start(cmd, Input::Nothing)
}

/// A small xorshift: random kill moments without a dependency.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

const BRIDGED: u32 = 10_000;

#[test]
fn bridge_moves_every_message_ring_to_nats_to_posix_mq_through_kills_and_a_server_restart() {
    if std::env::var("UNIPC_CLI_TEST_ROLE").as_deref() == Ok("ring-writer") {
        // The ring's writer: each message until it is in, through the
        // reader's deaths (PeerDied while waiting for room: the message was
        // not written; the next reader comes).
        let name = unipc::name::PosixName::new(&std::env::var("UNIPC_RING").unwrap()).unwrap();
        let tx = unipc::message::ring::Ring::open(&name)
            .unwrap()
            .into_sender()
            .unwrap();
        for i in 0..BRIDGED {
            let message = i.to_string();
            loop {
                match tx.send_wait(message.as_bytes(), unipc::message::Wait::Forever) {
                    Ok(()) => break,
                    Err(unipc::Error::PeerDied { .. }) => thread::sleep(Duration::from_millis(5)),
                    Err(e) => panic!("{e}"),
                }
            }
        }
        return;
    }
    let Some(mut server) = unipc_test_support::NatsServer::start() else {
        return;
    };
    let base = unique();
    let ring = format!("ring:/{base}-br");
    let queue = format!("posix-mq:/{base}-br");
    let nats = format!("{}/{}", server.url(), base.replace('-', "_"));
    let _guards = [
        Removed(ring.clone()),
        Removed(queue.clone()),
        Removed(nats.clone()),
    ];
    unipc_run(&["create", &ring, "--capacity", "64", "--max-size", "64"]).ok();
    unipc_run(&["create", &nats]).ok();
    unipc_run(&["create", &queue, "--max-messages", "10", "--max-size", "64"]).ok();
    let dir = tempfile::Builder::new().prefix("unipc-").tempdir().unwrap();
    let (out_state, in_state) = (dir.path().join("out"), dir.path().join("in"));

    let mut writer = Command::new(std::env::current_exe().unwrap());
    writer
        .args([
            "bridge_moves_every_message_ring_to_nats_to_posix_mq_through_kills_and_a_server_restart",
            "--exact",
            "-q",
        ])
        .env("UNIPC_CLI_TEST_ROLE", "ring-writer")
        .env("UNIPC_RING", &ring["ring:".len()..]);
    let writer = start(writer, Input::Nothing);
    let mut reader = unipc();
    reader.args([
        "recv",
        &queue,
        "--count",
        &BRIDGED.to_string(),
        "--timeout",
        "60",
    ]);
    let mut reader = start(reader, Input::Nothing);
    let mut out = bridge(&ring, &nats, &out_state);
    let mut back = bridge(&nats, &queue, &in_state);

    // 20 SIGKILLs at random moments, alternating between the two bridges,
    // each restarted at once; the server restarted once on the way.
    let mut dice = Dice(u64::from(std::process::id()) | 1);
    let mut kills_of_back = 0;
    for k in 0..20 {
        thread::sleep(Duration::from_millis(50 + dice.below(250)));
        if k % 2 == 0 {
            out.kill();
            out = bridge(&ring, &nats, &out_state);
        } else {
            back.kill();
            kills_of_back += 1;
            back = bridge(&nats, &queue, &in_state);
        }
        if k == 9 {
            server.restart();
        }
    }
    let started = Instant::now();
    while reader.is_running() {
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "the reader did not get {BRIDGED} messages in 240 s"
        );
        thread::sleep(Duration::from_millis(50));
    }
    let got = reader.finish().ok();
    let mut seen: Vec<u32> = got
        .lines()
        .map(|l| l.parse().unwrap_or_else(|_| panic!("not a number: {l:?}")))
        .collect();
    // A duplicate pushed one past the reader's count; and a message a
    // killed bridge held unacknowledged comes again only after the
    // consumer's ack wait (30 s). Take what still comes.
    let started = Instant::now();
    loop {
        let mut unique = seen.clone();
        unique.sort_unstable();
        unique.dedup();
        if unique.len() == BRIDGED as usize || started.elapsed() > Duration::from_secs(75) {
            break;
        }
        let mut rest = unipc();
        rest.args(["recv", &queue, "--count", "100", "--timeout", "2"]);
        let rest = run(rest, Input::Nothing).stdout_text();
        seen.extend(rest.lines().map(|l| l.parse::<u32>().unwrap()));
    }
    let total = seen.len();
    seen.sort_unstable();
    let twice: Vec<u32> = seen
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    seen.dedup();
    let duplicates = total - seen.len();
    eprintln!("duplicated: {twice:?}");
    let lost: Vec<u32> = (0..BRIDGED)
        .filter(|i| seen.binary_search(i).is_err())
        .collect();
    eprintln!(
        "bridged {BRIDGED}: lost {}, duplicated {duplicates} (bridge back killed {kills_of_back} times)",
        lost.len()
    );
    assert!(lost.is_empty(), "lost {lost:?}");
    // Into a POSIX queue a kill just after the send and before the
    // journal's write repeats that one message: never more than one per kill.
    assert!(duplicates <= kills_of_back, "{duplicates} duplicates");
    writer.finish().ok();
    for bridge in [out, back] {
        let pid = bridge.pid();
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid as i32).unwrap(),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        let done = bridge.finish();
        assert!(
            done.status.success() && done.stderr.contains("stopped by a signal"),
            "{}: {:?} {}",
            done.what,
            done.status,
            done.stderr
        );
    }
}

#[test]
fn bridge_from_a_posix_queue_duplicates_nothing_and_loses_at_most_one_per_kill() {
    const SENT: u32 = 2_000;
    const KILLS: usize = 10;
    let Some(server) = unipc_test_support::NatsServer::start() else {
        return;
    };
    let base = unique();
    let queue = format!("posix-mq:/{base}-bq");
    let nats = format!("{}/{}", server.url(), base.replace('-', "_"));
    let _guards = [Removed(queue.clone()), Removed(nats.clone())];
    unipc_run(&["create", &queue, "--max-messages", "10", "--max-size", "64"]).ok();
    unipc_run(&["create", &nats]).ok();
    let dir = tempfile::Builder::new().prefix("unipc-").tempdir().unwrap();
    let state = dir.path().join("state");
    let lines: String = (0..SENT).map(|i| format!("{i}\n")).collect();
    let mut writer = unipc();
    writer.args(["send", &queue, "--lines", "--timeout", "60"]);
    let mut writer = start(writer, Input::Bytes(lines.into_bytes()));
    let mut out = bridge(&queue, &nats, &state);
    let mut dice = Dice(u64::from(std::process::id()) | 3);
    for _ in 0..KILLS {
        thread::sleep(Duration::from_millis(30 + dice.below(150)));
        out.kill();
        out = bridge(&queue, &nats, &state);
    }
    let started = Instant::now();
    while writer.is_running() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the writer is stuck"
        );
        thread::sleep(Duration::from_millis(20));
    }
    writer.finish().ok();
    // Drained: the queue empty, then the bridge stopped by SIGTERM.
    let started = Instant::now();
    loop {
        let stat = unipc_run(&["stat", &queue]).ok();
        if stat
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["messages", "0"])
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{stat}");
        thread::sleep(Duration::from_millis(50));
    }
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(out.pid() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let done = out.finish();
    assert!(done.status.success(), "{:?} {}", done.status, done.stderr);
    let mut got = Vec::new();
    loop {
        let mut recv = unipc();
        recv.args(["recv", &nats, "--count", "500", "--timeout", "2"]);
        let batch = run(recv, Input::Nothing).stdout_text();
        if batch.is_empty() {
            break;
        }
        got.extend(batch.lines().map(|l| l.parse::<u32>().unwrap()));
    }
    let total = got.len();
    got.sort_unstable();
    got.dedup();
    let lost: Vec<u32> = (0..SENT)
        .filter(|i| got.binary_search(i).is_err())
        .collect();
    eprintln!(
        "posix-mq -> nats through {KILLS} kills: {} delivered, duplicated {}, lost {lost:?}",
        got.len(),
        total - got.len()
    );
    assert_eq!(total, got.len(), "duplicates");
    assert!(lost.len() <= KILLS, "lost {lost:?}");
}

/// The one window a kill leaves into a destination: after the send, before
/// the journal records it (made to happen by the bridge's test failpoint).
/// Into a ring the restarted bridge recognises the message from the ring's
/// count of committed messages and sends it no more; into a POSIX queue,
/// which has no such count, it comes twice, as the bridge's docs say.
#[test]
fn bridge_into_a_ring_recognises_a_send_its_kill_left_unjournaled() {
    let base = unique();
    let ring = format!("ring:/{base}-wr");
    let queue = format!("posix-mq:/{base}-wq");
    let _guards = [Removed(ring.clone()), Removed(queue.clone())];
    unipc_run(&["create", &ring, "--capacity", "16", "--max-size", "64"]).ok();
    unipc_run(&["create", &queue, "--max-messages", "10", "--max-size", "64"]).ok();
    let dir = tempfile::Builder::new().prefix("unipc-").tempdir().unwrap();
    for (destination, twice) in [(&ring, None), (&queue, Some("2"))] {
        let source = format!("posix-mq:/{base}-src");
        let _source = Removed(source.clone());
        unipc_run(&[
            "create",
            &source,
            "--max-messages",
            "10",
            "--max-size",
            "64",
        ])
        .ok();
        send_lines(&source, b"0\n1\n2\n3\n4\n");
        let state = dir.path().join(&destination[..4]);
        let bridge = |failpoint: Option<&str>| {
            let mut cmd = unipc();
            cmd.args(["bridge", &source, destination, "--progress", "0"])
                .args(["--idle-exit", "1", "--state"])
                .arg(&state);
            if let Some(f) = failpoint {
                cmd.env("UNIPC_BRIDGE_FAILPOINT", f);
            }
            run(cmd, Input::Nothing)
        };
        let killed = bridge(Some("kill-after-send:3"));
        assert_eq!(
            killed.status.signal(),
            Some(libc::SIGKILL),
            "{destination}: the failpoint: {killed:?}"
        );
        bridge(None).ok();
        let expected: String = match twice {
            None => "0\n1\n2\n3\n4\n".into(),
            Some(m) => format!("0\n1\n2\n{m}\n3\n4\n"),
        };
        let count = expected.lines().count().to_string();
        let got = unipc_run(&["recv", destination, "--count", &count, "--timeout", "5"]).ok();
        assert_eq!(got, expected, "{destination}");
        // And nothing more.
        let mut more = unipc();
        more.args(["recv", destination, "--timeout", "0.3"]);
        let more = run(more, Input::Nothing);
        assert_eq!(more.stdout_text(), "", "{destination}: {more:?}");
    }
}

/// The same window from a NATS source into a ring: the killed run's last
/// message comes again only after the consumer's ack wait (30 s), when the
/// restarted bridge has moved the ring's count with later messages; what
/// it settled at its start still tells it that message is in, so it is
/// acknowledged and not sent twice.
#[test]
fn bridge_from_nats_into_a_ring_recognises_a_redelivery_its_kill_left_unjournaled() {
    let Some(server) = unipc_test_support::NatsServer::start() else {
        return;
    };
    let base = unique();
    let ring = format!("ring:/{base}-nr");
    let nats = format!("{}/{}", server.url(), base.replace('-', "_"));
    let _guards = [Removed(ring.clone()), Removed(nats.clone())];
    unipc_run(&["create", &ring, "--capacity", "16", "--max-size", "64"]).ok();
    unipc_run(&["create", &nats]).ok();
    send_lines(&nats, b"0\n1\n2\n3\n4\n");
    let dir = tempfile::Builder::new().prefix("unipc-").tempdir().unwrap();
    let state = dir.path().join("state");
    let bridge = |extra: &[&str], failpoint: Option<&str>| {
        let mut cmd = unipc();
        cmd.args(["bridge", &nats, &ring, "--progress", "0"])
            .args(extra)
            .arg("--state")
            .arg(&state);
        if let Some(f) = failpoint {
            cmd.env("UNIPC_BRIDGE_FAILPOINT", f);
        }
        cmd
    };
    let killed = run(bridge(&[], Some("kill-after-send:3")), Input::Nothing);
    assert_eq!(killed.status.signal(), Some(libc::SIGKILL), "{killed:?}");
    // Messages 4 and 5 now, message 3 again after the ack wait.
    let mut again = start(bridge(&["--count", "3"], None), Input::Nothing);
    let started = Instant::now();
    while again.is_running() {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the redelivery never came"
        );
        thread::sleep(Duration::from_millis(100));
    }
    let again = again.finish();
    assert!(
        again.status.success() && again.stderr.contains("skipped 1"),
        "{again:?}"
    );
    let got = unipc_run(&["recv", &ring, "--count", "5", "--timeout", "5"]).ok();
    assert_eq!(got, "0\n1\n2\n3\n4\n");
    let mut more = unipc();
    more.args(["recv", &ring, "--timeout", "0.3"]);
    let more = run(more, Input::Nothing);
    assert_eq!(more.stdout_text(), "", "nothing twice: {more:?}");
}

/// A source ring removed and made again numbers its messages from 0: the
/// journal's record of the old ring's last message must not make the
/// bridge skip the new ones. And a run that fails before it takes anything
/// (a mistyped source) does not bind the state directory to that pair.
#[test]
fn bridge_takes_a_remade_source_ring_as_new_and_a_failed_start_binds_nothing() {
    let base = unique();
    let (src, dst) = (format!("ring:/{base}-rs"), format!("ring:/{base}-rd"));
    let _guards = [Removed(src.clone()), Removed(dst.clone())];
    let dir = tempfile::Builder::new().prefix("unipc-").tempdir().unwrap();
    let state = dir.path().join("state");
    let state_arg = state.to_str().unwrap();
    let typo = format!("posix-mq:/{base}-nosuch");
    let mut failed = unipc();
    failed.args(["bridge", &typo, &dst, "--state", state_arg]);
    run(failed, Input::Nothing).runtime_error(&typo);
    unipc_run(&["create", &src, "--capacity", "16", "--max-size", "64"]).ok();
    unipc_run(&["create", &dst, "--capacity", "64", "--max-size", "64"]).ok();
    let bridge = || {
        unipc_run(&[
            "bridge",
            &src,
            &dst,
            "--progress",
            "0",
            "--idle-exit",
            "1",
            "--state",
            state_arg,
        ])
        .ok()
    };
    send_lines(&src, b"a\nb\nc\n");
    bridge();
    unipc_run(&["rm", &src]).ok();
    unipc_run(&["create", &src, "--capacity", "16", "--max-size", "64"]).ok();
    send_lines(&src, b"d\ne\n");
    bridge();
    let got = unipc_run(&["recv", &dst, "--count", "5", "--timeout", "5"]).ok();
    assert_eq!(got, "a\nb\nc\nd\ne\n");
}

/// A journal that cannot be written (its filesystem full) does not lose
/// the message already taken from a queue: the bridge delivers it
/// unjournaled, stops, and says so. Needs root to mount a small tmpfs.
#[test]
fn bridge_with_a_full_journal_delivers_the_message_in_hand_and_stops() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let base = unique();
    let (src, dst) = (
        format!("posix-mq:/{base}-fs"),
        format!("posix-mq:/{base}-fd"),
    );
    let _guards = [Removed(src.clone()), Removed(dst.clone())];
    for q in [&src, &dst] {
        unipc_run(&["create", q, "--max-messages", "10", "--max-size", "64"]).ok();
    }
    let dir = tempfile::Builder::new().prefix("unipc-").tempdir().unwrap();
    let mount = dir.path().join("full");
    std::fs::create_dir(&mount).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs"])
        .arg(&mount)
        .status()
        .unwrap();
    assert!(mounted.success(), "mount a tmpfs");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mount.clone());
    let state = mount.join("state");
    // Open the journal once (an empty one fits), then fill the disk.
    let mut first = unipc();
    first
        .args([
            "bridge",
            &src,
            &dst,
            "--idle-exit",
            "0.2",
            "--progress",
            "0",
            "--state",
        ])
        .arg(&state);
    run(first, Input::Nothing).ok();
    let fill = std::fs::write(mount.join("filler"), vec![0u8; 128 * 1024]);
    assert!(fill.is_err(), "the filesystem should have filled");
    send_lines(&src, b"kept\n");
    let mut cmd = unipc();
    cmd.args([
        "bridge",
        &src,
        &dst,
        "--idle-exit",
        "1",
        "--progress",
        "0",
        "--state",
    ])
    .arg(&state);
    let out = run(cmd, Input::Nothing);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.contains("delivered without it"),
        "{}",
        out.stderr
    );
    let got = unipc_run(&["recv", &dst, "--timeout", "5"]).ok();
    assert_eq!(got, "kept\n");
}

/// `rm` of a ring a live process still writes to removes it, and says
/// that the writer goes on with the removed object (a bridge into it would
/// otherwise report messages moved that nobody can read).
#[test]
fn rm_of_a_ring_in_use_says_who_still_uses_it() {
    let ring = format!("ring:/{}", unique());
    let _guard = Removed(ring.clone());
    unipc_run(&["create", &ring, "--capacity", "4", "--max-size", "64"]).ok();
    // A writer that stays attached while its stdin stays open.
    let mut writer = unipc()
        .args(["send", &ring, "--lines"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = writer.stdin.take().unwrap();
    stdin.write_all(b"first\n").unwrap();
    let started = Instant::now();
    while !unipc_run(&["stat", &ring]).ok().contains("(alive)") {
        assert!(started.elapsed() < DEADLINE, "the writer never attached");
        thread::sleep(POLL);
    }
    let out = unipc_run(&["rm", &ring]);
    out.exits(0);
    assert!(
        out.stderr.contains("still in use by pid") && out.stderr.contains("(writer)"),
        "{}",
        out.stderr
    );
    drop(stdin);
    let _ = writer.kill();
    let _ = writer.wait();
    let out = unipc_run(&["rm", &ring]);
    assert_ne!(out.status.code(), Some(0), "removed already");
}

#[test]
fn bridge_refuses_a_state_directory_others_can_write_a_link_and_a_loop() {
    let dir = tempfile::Builder::new().prefix("unipc-").tempdir().unwrap();
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&open, &link).unwrap();
    let queue = format!("posix-mq:/{}", unique());
    for (state, want) in [(&open, "writable by no one else"), (&link, "symbolic link")] {
        let mut cmd = unipc();
        cmd.args(["bridge", &queue, "nats://127.0.0.1:1/x", "--state"])
            .arg(state);
        let line = run(cmd, Input::Nothing).runtime_error(&state.display().to_string());
        assert!(line.contains(want), "{line}");
    }
    // A trailing slash does not make `lstat` look through the link.
    let mut cmd = unipc();
    cmd.args(["bridge", &queue, "nats://127.0.0.1:1/x", "--state"])
        .arg(format!("{}/", link.display()));
    let line = run(cmd, Input::Nothing).runtime_error(&link.display().to_string());
    assert!(line.contains("symbolic link"), "{line}");
    let err = unipc_run(&["bridge", &queue, &queue, "--state", "/nonexistent"]).usage_error();
    assert!(err.contains("the same endpoint"), "{err}");
}

#[test]
fn bench_with_nats_measures_the_server_round_trip_and_removes_its_streams() {
    let err = unipc_run(&["bench", "--quick", "--nats", "nats://h:4222/subject"]).usage_error();
    assert!(err.contains("expected nats://HOST:PORT"), "{err}");
    let Some(server) = unipc_test_support::NatsServer::start() else {
        return;
    };
    let dir = tempfile::Builder::new().prefix("unipc-").tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let mut cmd = unipc();
    cmd.args([
        "bench",
        "--quick",
        "--facility",
        "pipe",
        "--nats",
        &server.url(),
        "--json",
    ])
    .arg(&json);
    let bench = start(cmd, Input::Nothing);
    let pid = bench.pid();
    let started = Instant::now();
    let mut bench = bench;
    while bench.is_running() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "bench still running"
        );
        thread::sleep(Duration::from_millis(50));
    }
    let text = bench.finish().ok();
    assert!(text.contains("NATS JetStream"), "{text}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let results = report["nats"]["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{report}");
    for r in results {
        assert!(r["p50_ns"].as_u64().unwrap() > 0, "{r}");
        assert!(r["p99_ns"].as_u64() >= r["p50_ns"].as_u64(), "{r}");
    }
    for side in ["ping", "pong"] {
        let stream = format!("{}/unipc_bench_{pid}_{side}", server.url());
        let line = unipc_run(&["stat", &stream]).runtime_error(&stream);
        assert!(line.contains("stream missing"), "{line}");
    }
}

#[test]
fn bridge_sets_aside_what_the_destination_refuses_and_keeps_a_journal_to_its_pair() {
    let base = unique();
    let (src, dst, other) = (
        format!("posix-mq:/{base}-src"),
        format!("posix-mq:/{base}-dst"),
        format!("posix-mq:/{base}-other"),
    );
    let _g = [
        Removed(src.clone()),
        Removed(dst.clone()),
        Removed(other.clone()),
    ];
    unipc_run(&["create", &src, "--max-size", "128"]).ok();
    unipc_run(&["create", &dst, "--max-size", "16"]).ok();
    unipc_run(&["create", &other]).ok();
    unipc_run(&["send", &src, &"x".repeat(100)]).ok();
    unipc_run(&["send", &src, "small"]).ok();
    let dir = tempfile::Builder::new().prefix("unipc-").tempdir().unwrap();
    let state = dir.path().join("state");
    let mut cmd = unipc();
    cmd.args([
        "bridge",
        &src,
        &dst,
        "--idle-exit",
        "0.5",
        "--progress",
        "0",
        "--state",
    ])
    .arg(&state);
    let done = run(cmd, Input::Nothing);
    assert!(done.status.success(), "{}", done.stderr);
    assert!(
        done.stderr.contains("exceeds the limit of 16 bytes") && done.stderr.contains("refused 1"),
        "{}",
        done.stderr
    );
    let kept: Vec<_> = std::fs::read_dir(state.join("refused"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        std::fs::read(kept[0].path()).unwrap(),
        "x".repeat(100).as_bytes()
    );
    assert_eq!(unipc_run(&["recv", &dst]).ok(), "small\n");
    // The same journal for another pair is refused.
    let mut cmd = unipc();
    cmd.args(["bridge", &other, &dst, "--state"]).arg(&state);
    let line = run(cmd, Input::Nothing).runtime_error(&state.display().to_string());
    assert!(line.contains("is the journal of"), "{line}");
}
