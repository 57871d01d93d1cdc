//! `unipc lock FILE [...] -- CMD`: holds a file lock while CMD runs, and
//! `unipc lock FILE --test`: who holds a conflicting lock.
//!
//! The lock's descriptor is close-on-exec, so CMD never holds it: for an
//! OFD or flock lock (owned by the open file description) an inherited
//! descriptor would keep the lock alive in CMD, and in anything CMD leaves
//! running in the background, after unipc has gone; flock(1) lets CMD
//! inherit it unless told `--close`. Here the lock lives exactly as long as
//! unipc, which waits for CMD and passes SIGINT, SIGTERM and SIGHUP on to
//! it. A signal the terminal sent to the whole foreground group (`si_code`
//! `SI_KERNEL`) already reached CMD and is not sent twice.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode};
use std::sync::Mutex;
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{Id, WaitPidFlag};
use nix::unistd::Pid;
use unipc::sync::lock::{Holder, LockKind, LockMode, LockOptions, Range};
use unipc::sync::Wait;

use crate::cli::LockArgs;

/// Where the command stands, for the signal thread.
#[derive(Clone, Copy)]
enum Child {
    /// Not started: a signal ends unipc (no lock is left: the kernel
    /// releases it with the process).
    NotYet,
    /// Running: signals go to it.
    Running(Pid),
    /// Exited (not yet reaped, so its pid cannot have been reused while
    /// this was `Running`): signals are ignored, unipc is about to exit.
    Done,
}

static CHILD: Mutex<Child> = Mutex::new(Child::NotYet);

pub fn run(args: LockArgs) -> anyhow::Result<ExitCode> {
    let range = match &args.range {
        Some(text) => parse_range(text)?,
        None => Range::WHOLE,
    };
    if args.kind == Some(LockKind::Flock) && args.range.is_some() {
        return Err(super::usage(
            "--kind flock locks the whole file and takes no --range; use --kind ofd or posix for a range",
        ));
    }
    if args.test && !args.command.is_empty() {
        return Err(super::usage("--test runs no command; drop the `-- CMD`"));
    }
    let mode = if args.shared {
        LockMode::Shared
    } else {
        LockMode::Exclusive
    };
    let name = args.file.display().to_string();
    let options = LockOptions::new().mode(mode).range(range).name(&name);
    if args.test {
        return test(&args, options, &name);
    }
    let options = options.kind(args.kind.unwrap_or_default());
    let wait = if args.nonblock {
        Wait::Never
    } else if let Some(secs) = args.timeout {
        Wait::For(Duration::from_secs_f64(secs))
    } else {
        Wait::Forever
    };

    // Before any thread starts, so that every thread has them blocked.
    let signals = forward_signals()?;
    let file = options.open(&args.file)?;
    let guard = match options.lock(&file, wait) {
        Ok(guard) => guard,
        Err(err @ (unipc::Error::WouldBlock { .. } | unipc::Error::TimedOut { .. })) => {
            return Err(not_granted(err, &options, &file))
        }
        Err(err) => return Err(err.into()),
    };
    let mut command = Command::new(&args.command[0]);
    command.args(&args.command[1..]);
    let mut child = {
        let mut state = CHILD.lock().unwrap_or_else(|p| p.into_inner());
        // The library's error names the file and the command.
        let child = guard.spawn(&mut command)?;
        *state = Child::Running(Pid::from_raw(child.id() as i32));
        child
    };
    // Wait for the exit without reaping, mark it done, then reap: the
    // signal thread never sends to a pid that may have been reused.
    let pid = Pid::from_raw(child.id() as i32);
    while let Err(nix::errno::Errno::EINTR) =
        nix::sys::wait::waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)
    {}
    *CHILD.lock().unwrap_or_else(|p| p.into_inner()) = Child::Done;
    let status = child.wait()?;
    guard.unlock()?;
    drop(signals);
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(code as u8),
        (None, Some(signal)) => ExitCode::from(128 + signal as u8),
        _ => ExitCode::FAILURE,
    })
}

/// The error for a lock not granted in time, naming the holder when the
/// library's error did not (an OFD or flock holder; a timeout).
fn not_granted(err: unipc::Error, options: &LockOptions, file: &std::fs::File) -> anyhow::Error {
    let named = matches!(
        err,
        unipc::Error::WouldBlock {
            holder: Some(_),
            ..
        }
    );
    if !named {
        if let Ok(Some(holder)) = options.test(file) {
            return anyhow::anyhow!("{err}: {}", describe(&holder));
        }
    }
    err.into()
}

/// `--test`: every conflicting lock, of the kinds asked.
fn test(args: &LockArgs, options: LockOptions, name: &str) -> anyhow::Result<ExitCode> {
    // The fcntl kinds see each other, so one query covers both; flock
    // locks need their own.
    let kinds: &[LockKind] = match args.kind {
        Some(kind) => &[kind][..],
        None if args.range.is_some() => &[LockKind::Ofd],
        None => &[LockKind::Ofd, LockKind::Flock],
    };
    let file = options.open_for_test(&args.file)?;
    let mut holders = Vec::new();
    for kind in kinds {
        if let Some(holder) = options.clone().kind(*kind).test(&file)? {
            holders.push(holder);
        }
    }
    let range = match &args.range {
        Some(text) => parse_range(text)?,
        None => Range::WHOLE,
    };
    let mut text = String::new();
    if args.json {
        let list: Vec<serde_json::Value> = holders
            .iter()
            .map(|h| {
                serde_json::json!({
                    "pid": h.pid,
                    "kind": h.kind.name(),
                    "mode": h.mode.to_string(),
                    "start": h.range.start,
                    "len": h.range.len,
                })
            })
            .collect();
        let value = serde_json::json!({
            "file": name,
            "start": range.start,
            "len": range.len,
            "free": holders.is_empty(),
            "holders": list,
        });
        text = format!("{value}\n");
    } else if holders.is_empty() {
        let kinds: Vec<&str> = kinds
            .iter()
            .map(|k| match k {
                LockKind::Flock => "flock",
                _ => "fcntl",
            })
            .collect();
        text = format!(
            "{name}: {range} free: no {} lock conflicts with {} lock there\n",
            kinds.join(" or "),
            if args.shared {
                "a shared"
            } else {
                "an exclusive"
            }
        );
    } else {
        for holder in &holders {
            text.push_str(&format!("{name}: {}\n", describe(holder)));
        }
    }
    crate::out::write_stdout(&mut std::io::stdout().lock(), text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn describe(holder: &Holder) -> String {
    match holder.pid {
        Some(_) => holder.to_string(),
        None if holder.kind == LockKind::Ofd => format!(
            "{holder} (its pid is not reported by the kernel, and no process this user may inspect has it open)"
        ),
        None => holder.to_string(),
    }
}

/// `START:LEN` or `START:` (to the end), with K/M/G suffixes.
fn parse_range(text: &str) -> anyhow::Result<Range> {
    let Some((start, len)) = text.split_once(':') else {
        return Err(super::usage(format!(
            "--range {text:?}: expected START:LEN or START: (to the end of the file), as in 0:4096"
        )));
    };
    let start = super::parse_bytes(start).map_err(|e| super::usage(format!("--range: {e}")))?;
    if len.is_empty() {
        if start > i64::MAX as u64 {
            return Err(super::usage(format!(
                "--range {text}: starts past {}, the largest file offset",
                i64::MAX
            )));
        }
        return Ok(Range::from_offset(start));
    }
    let len = super::parse_bytes(len).map_err(|e| super::usage(format!("--range: {e}")))?;
    if len == 0 {
        return Err(super::usage(
            "--range: a length of 0 locks nothing; give START: for a range to the end of the file",
        ));
    }
    if start
        .checked_add(len)
        .map_or(true, |end| end > i64::MAX as u64)
    {
        return Err(super::usage(format!(
            "--range {text}: ends past {}, the largest file offset",
            i64::MAX
        )));
    }
    Ok(Range::new(start, len))
}

/// Blocks SIGINT, SIGTERM and SIGHUP and starts the thread that passes
/// them on to the command (or, before it runs, ends unipc with 128 + N).
fn forward_signals() -> anyhow::Result<std::thread::JoinHandle<()>> {
    let mut set = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(signal);
    }
    set.thread_block()?;
    let fd = SignalFd::new(&set)?;
    Ok(std::thread::Builder::new()
        .name("unipc-signals".into())
        .spawn(move || loop {
            let info = match fd.read_signal() {
                Ok(Some(info)) => info,
                Ok(None) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            };
            let Ok(signal) = Signal::try_from(info.ssi_signo as i32) else {
                continue;
            };
            let state = *CHILD.lock().unwrap_or_else(|p| p.into_inner());
            match state {
                Child::NotYet => {
                    let _ = std::io::stderr().flush();
                    std::process::exit(128 + signal as i32);
                }
                Child::Running(pid) => {
                    if info.ssi_code != SI_KERNEL {
                        let _ = nix::sys::signal::kill(pid, signal);
                    }
                }
                Child::Done => {}
            }
        })?)
}

/// `SI_KERNEL` (Linux's value; libc is not a dependency of the CLI): the
/// code of a signal the kernel sent, such as the terminal's SIGINT to its
/// foreground process group.
const SI_KERNEL: i32 = 0x80;
