//! Pseudoterminals between two processes: the test process on the master
//! side, and a child on the subsidiary side (a shell, or a peer re-executed
//! from this binary; see `util`).

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::termios::LocalModes;
use unipc::stream::pty;

use crate::util;

/// A `/bin/sh -c SCRIPT` command.
fn sh(script: &str) -> Command {
    let mut command = Command::new("/bin/sh");
    command.args(["-c", script]);
    command
}

/// This test binary running `test` in `role`, for a peer that must run on
/// the pty itself (`util::Peer` would give it pipes).
fn peer_command(test: &str, role: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([test, "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(util::ROLE_VAR, role);
    command
}

/// Reads what the child writes to its terminal, never waiting past the
/// watchdog: a child that hangs is killed and the test fails.
struct Output<'a> {
    child: &'a mut pty::Child,
    text: String,
    deadline: Instant,
}

impl<'a> Output<'a> {
    fn new(child: &'a mut pty::Child) -> Self {
        Output {
            child,
            text: String::new(),
            deadline: Instant::now() + util::WATCHDOG,
        }
    }

    /// Reads one chunk; false at EOF.
    fn read_some(&mut self) -> bool {
        let left = self.deadline.saturating_duration_since(Instant::now());
        let ready = {
            let timeout = Timespec::try_from(left).unwrap();
            let mut fds = [PollFd::new(&*self.child, PollFlags::IN)];
            rustix::event::poll(&mut fds, Some(&timeout)).unwrap()
        };
        if ready == 0 {
            let _ = self.child.kill();
            panic!(
                "the child hung for {:?}; output so far: {:?}",
                util::WATCHDOG,
                self.text
            );
        }
        let mut buf = [0; 4096];
        let n = self.child.read(&mut buf).unwrap();
        self.text.push_str(&String::from_utf8_lossy(&buf[..n]));
        n > 0
    }

    /// Reads until `needle` has appeared.
    fn until(&mut self, needle: &str) -> &mut Self {
        while !self.text.contains(needle) {
            assert!(
                self.read_some(),
                "EOF before {needle:?}; output: {:?}",
                self.text
            );
        }
        self
    }

    /// Reads until EOF and returns everything read.
    fn until_eof(mut self) -> String {
        while self.read_some() {}
        self.text
    }
}

/// Waits for the child under the watchdog.
fn wait(child: &mut pty::Child) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > util::WATCHDOG {
            let _ = child.kill();
            panic!("the child did not exit within {:?}", util::WATCHDOG);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs a peer of this binary on `pair` and returns its output and exit
/// status, after `talk` has had its say with the peer.
fn run_peer_on_pty(
    pair: pty::Pair,
    test: &str,
    role: &str,
    talk: impl FnOnce(&mut pty::Child, &mut String),
) -> (String, ExitStatus) {
    let mut command = peer_command(test, role);
    command.env("UNIPC_TEST_ARG_PATH", pair.subsidiary_path());
    let mut child = pair.spawn(command).unwrap();
    let mut seen = String::new();
    talk(&mut child, &mut seen);
    let rest = Output::new(&mut child).until_eof();
    seen.push_str(&rest);
    (seen, wait(&mut child))
}

fn lines(text: &str) -> Vec<&str> {
    text.split('\n').map(|l| l.trim_end_matches('\r')).collect()
}

#[test]
fn output_and_exit_status() {
    let mut child = pty::Pair::open()
        .unwrap()
        .spawn(sh("printf hello; exit 3"))
        .unwrap();
    let out = Output::new(&mut child).until_eof();
    assert_eq!(out, "hello");
    let status = wait(&mut child);
    assert_eq!(status.code(), Some(3), "{status:?}");
}

#[test]
fn input_reaches_the_child() {
    let mut child = pty::Pair::open()
        .unwrap()
        .spawn(sh(r#"read l; echo "got:$l""#))
        .unwrap();
    child.write_all(b"abc\n").unwrap();
    let out = Output::new(&mut child).until_eof();
    // The terminal echoes the typed line, then the shell's answer follows;
    // output processing turns each "\n" into "\r\n".
    assert_eq!(out, "abc\r\ngot:abc\r\n");
    assert!(wait(&mut child).success());
}

#[test]
fn the_pty_is_the_childs_controlling_terminal() {
    let pair = pty::Pair::open().unwrap();
    let path = pair.subsidiary_path().to_owned();
    let name = path.to_str().unwrap().strip_prefix("/dev/").unwrap();
    // `tty` names the terminal on stdin; `ps -o tty=` and field 7 of
    // /proc/PID/stat name the controlling terminal, which only a session
    // leader's TIOCSCTTY can have set; `/dev/tty` opens only with one.
    let mut child = pair
        .spawn(sh(
            "tty; ps -o tty= -p $$; cut -d' ' -f7 /proc/$$/stat; echo via-dev-tty > /dev/tty",
        ))
        .unwrap();
    let out = Output::new(&mut child).until_eof();
    assert!(wait(&mut child).success(), "{out:?}");
    let got = lines(&out);
    assert_eq!(got[0], path.to_str().unwrap(), "{out:?}");
    assert_eq!(got[1].trim(), name, "{out:?}");

    let rdev = rustix::fs::stat(&path).unwrap().st_rdev;
    let (major, minor) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
    // The kernel's new_encode_dev, as /proc/PID/stat prints tty_nr.
    let tty_nr = (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12);
    assert_eq!(got[2], tty_nr.to_string(), "{out:?}");
    assert_eq!(got[3], "via-dev-tty", "{out:?}");
}

#[test]
fn a_peer_leads_its_session_on_the_pty() {
    if util::role().is_some() {
        use rustix::process::{getpgrp, getpid, getsid};
        let stdin = rustix::stdio::stdin();
        let me = getpid();
        assert_eq!(getsid(None).unwrap(), me, "the child leads a new session");
        assert_eq!(
            rustix::termios::tcgetsid(stdin).unwrap(),
            me,
            "its terminal belongs to its session"
        );
        assert_eq!(
            rustix::termios::tcgetpgrp(stdin).unwrap(),
            getpgrp(),
            "it is the terminal's foreground process group"
        );
        let path = util::arg("PATH");
        let tty_name = rustix::termios::ttyname(stdin, Vec::new()).unwrap();
        assert_eq!(tty_name.to_str().unwrap(), path);
        // /dev/tty opens only for a process with a controlling terminal,
        // and what is written there reaches the parent through the master.
        let mut dev_tty = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/tty")
            .unwrap();
        writeln!(dev_tty, "via-dev-tty").unwrap();
        // The terminal is on 0, 1 and 2, and the master did not leak in.
        for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
            let entry = entry.unwrap();
            let fd: i32 = entry.file_name().to_str().unwrap().parse().unwrap();
            let Ok(target) = std::fs::read_link(entry.path()) else {
                continue; // the directory's own descriptor, already closed
            };
            let target = target.to_string_lossy().into_owned();
            assert!(!target.contains("ptmx"), "master inherited as fd {fd}");
            if fd <= 2 {
                assert_eq!(target, path, "fd {fd}");
            }
        }
        println!("peer-ok");
        return;
    }
    let (out, status) = run_peer_on_pty(
        pty::Pair::open().unwrap(),
        "pty::a_peer_leads_its_session_on_the_pty",
        "lead",
        |_, _| {},
    );
    assert!(status.success(), "{status:?}; output: {out}");
    assert!(out.contains("peer-ok"), "{out}");
    assert!(out.contains("via-dev-tty"), "{out}");
}

#[test]
fn window_size_before_and_after_spawn() {
    let pair = pty::Pair::open().unwrap();
    pair.set_window_size(33, 101).unwrap();
    assert_eq!(
        pair.window_size().unwrap(),
        pty::WindowSize {
            rows: 33,
            cols: 101
        }
    );
    let mut child = pair
        .spawn(sh(
            "trap 'echo winch' WINCH; stty size; echo ready; read l; stty size",
        ))
        .unwrap();
    let before = Output::new(&mut child).until("ready").text.clone();
    child.set_window_size(50, 160).unwrap();
    assert_eq!(
        child.window_size().unwrap(),
        pty::WindowSize {
            rows: 50,
            cols: 160
        }
    );
    child.write_all(b"\n").unwrap();
    let out = before + &Output::new(&mut child).until_eof();
    assert!(wait(&mut child).success(), "{out:?}");
    let got = lines(&out);
    assert_eq!(got[0], "33 101", "the size set before spawn: {out:?}");
    assert!(got.contains(&"50 160"), "the size set after spawn: {out:?}");
    assert!(
        got.contains(&"winch"),
        "the resize sent SIGWINCH to the child: {out:?}"
    );
}

#[test]
fn eof_after_the_child_exits() {
    let mut child = pty::Pair::open().unwrap().spawn(sh("echo bye")).unwrap();
    // Reap first: what the child wrote stays readable after it is gone.
    assert!(wait(&mut child).success());
    let mut out = Vec::new();
    child.read_to_end(&mut out).unwrap();
    assert_eq!(out, b"bye\r\n");
    let mut buf = [0; 16];
    assert_eq!(child.read(&mut buf).unwrap(), 0, "EOF stays EOF");
}

#[test]
fn kill_and_try_wait() {
    let mut child = pty::Pair::open()
        .unwrap()
        .spawn(sh("exec sleep 30"))
        .unwrap();
    assert_eq!(child.try_wait().unwrap(), None, "sleep 30 is still running");
    let pid = child.pid();
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "pid {pid} names the child"
    );
    child.kill().unwrap();
    let status = wait(&mut child);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    // The only holder of the subsidiary is gone: the master reads EOF.
    assert_eq!(Output::new(&mut child).until_eof(), "");
}

#[test]
fn spawn_failure_names_the_program() {
    let err = pty::Pair::open()
        .unwrap()
        .spawn(Command::new("/nonexistent/unipc-program"))
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
    let text = err.to_string();
    assert!(text.starts_with("pty:/dev/pts/"), "{text}");
    assert!(text.contains("\"/nonexistent/unipc-program\""), "{text}");
    assert!(text.contains("spawn: no such file or directory"), "{text}");
}

#[test]
fn raw_mode_guard_sets_and_restores() {
    if let Some(role) = util::role() {
        if role == "no-tty" {
            // util::Peer gives peers /dev/null as stdin.
            assert!(pty::RawMode::stdin().unwrap().is_none());
            return;
        }
        let guard = pty::RawMode::stdin().unwrap().expect("stdin is the pty");
        println!("raw-on");
        let mut byte = [0; 1];
        // In raw mode one byte is a complete read: no newline needed.
        std::io::stdin().read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"x");
        drop(guard);
        println!("restored");
        return;
    }
    util::Peer::new("pty::raw_mode_guard_sets_and_restores", "no-tty")
        .spawn()
        .wait_success();

    let pair = pty::Pair::open().unwrap();
    let cooked = rustix::termios::tcgetattr(pair.subsidiary()).unwrap();
    assert!(cooked
        .local_modes
        .contains(LocalModes::ICANON | LocalModes::ECHO));
    let (out, status) = run_peer_on_pty(
        pair,
        "pty::raw_mode_guard_sets_and_restores",
        "raw",
        |child, seen| {
            // Termios requests on the master act on the pair's one termios.
            let mut output = Output::new(child);
            output.until("raw-on");
            let raw = rustix::termios::tcgetattr(output.child.as_fd()).unwrap();
            assert!(!raw
                .local_modes
                .intersects(LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG));
            output.child.write_all(b"x").unwrap();
            output.until("restored");
            let back = rustix::termios::tcgetattr(output.child.as_fd()).unwrap();
            assert_eq!(back.local_modes, cooked.local_modes);
            assert_eq!(back.input_modes, cooked.input_modes);
            assert_eq!(back.output_modes, cooked.output_modes);
            seen.push_str(&output.text);
        },
    );
    assert!(status.success(), "{status:?}; output: {out}");
    let between = out
        .split_once("raw-on")
        .and_then(|(_, rest)| rest.split_once("restored"))
        .map(|(between, _)| between)
        .unwrap_or_else(|| panic!("markers missing: {out}"));
    assert!(!between.contains('x'), "raw mode echoed the input: {out:?}");
}
