//! `unipc semop sysv-sem:KEY OP... [-- CMD ARGS...]` and `unipc stat` of a
//! semaphore set.
//!
//! Every OP of one command line is one `semop`: all are applied at once or
//! none is. With `-- CMD`, CMD runs once they are applied and unipc exits
//! with its status (128 + the signal when a signal killed it). The
//! operations are this process's, not CMD's (a fork does not inherit
//! `SEM_UNDO` adjustments), so with `--undo` the kernel reverts them when
//! unipc exits, whatever ends it, `SIGKILL` included: while CMD runs, unipc
//! only waits for it, passing SIGINT, SIGTERM and SIGHUP on to it, and
//! exits once CMD has exited. CMD gets `SIGKILL` if unipc dies first, so
//! it never runs on without the hold.

use std::ffi::OsString;
use std::process::{Command, ExitCode};
use std::sync::{Arc, Mutex};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{Id, WaitPidFlag};
use nix::unistd::Pid;
use unipc::sync::sysv_sem::{Op, SemaphoreSet, MAX_VALUE};
use unipc::sync::Wait;
use unipc::Endpoint;

use super::usage;
use crate::cli::{SemopArgs, StatArgs};

/// Reads one OP: `INDEX:+N`, `INDEX:-N` or `INDEX:0`.
pub fn parse_op(text: &str) -> Result<Op, String> {
    let bad = |why: &str| format!("bad operation {text:?}: {why} (as in 0:+1, 0:-1 or 0:0)");
    let (index, change) = text
        .split_once(':')
        .ok_or_else(|| bad("expected INDEX:+N, INDEX:-N or INDEX:0"))?;
    if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("the index is not a decimal number"));
    }
    let index: usize = index.parse().map_err(|_| bad("the index is too large"))?;
    if change == "0" {
        return Ok(Op::wait_zero(index));
    }
    let (sign, digits) = match change.as_bytes().first() {
        Some(b'+') => ('+', &change[1..]),
        Some(b'-') => ('-', &change[1..]),
        _ => {
            return Err(bad(
                "the change needs a sign: +N adds, -N takes, 0 waits for zero",
            ))
        }
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("the change is not a signed decimal number"));
    }
    let n: u32 = digits
        .parse()
        .map_err(|_| bad(&format!("the change is larger than {MAX_VALUE}")))?;
    let n = match u16::try_from(n) {
        Ok(0) => {
            return Err(bad(
                "a change of 0 would wait for zero: write INDEX:0 for that",
            ))
        }
        Ok(n) if n <= MAX_VALUE => n,
        _ => return Err(bad(&format!("the change is larger than {MAX_VALUE}"))),
    };
    Ok(if sign == '+' {
        Op::add(index, n)
    } else {
        Op::take(index, n)
    })
}

/// Refuses an endpoint that is not a semaphore set, or has no key.
fn semaphore_endpoint(endpoint: &Endpoint, verb: &str) -> anyhow::Result<()> {
    match endpoint {
        Endpoint::SysvSem(unipc::name::SysvKey::Private) => Err(usage(format!(
            "{endpoint}: a private set has no key; name it by the id `unipc create sysv-sem:private` printed: sysv-sem:id=N"
        ))),
        Endpoint::SysvSem(_) | Endpoint::SysvSemId(_) => Ok(()),
        other => Err(usage(format!(
            "{other}: unipc {verb} works on System V semaphore sets (sysv-sem:KEY, sysv-sem:id=N)"
        ))),
    }
}

/// `unipc semop`.
pub fn run(args: SemopArgs) -> anyhow::Result<ExitCode> {
    // Everything the command line can get wrong, before any system call.
    let mut ops = Vec::with_capacity(args.ops.len());
    for text in &args.ops {
        let op = parse_op(text).map_err(usage)?;
        ops.push(if args.undo { op.undo() } else { op });
    }
    semaphore_endpoint(&args.endpoint, "semop")?;
    if args.undo && args.command.is_empty() {
        return Err(usage(
            "--undo without -- CMD would be undone the moment unipc exits: give the command to hold the operations for (-- CMD ARGS...)",
        ));
    }
    let wait = match (args.nowait, args.timeout) {
        (true, _) => Wait::Never,
        (false, Some(secs)) => Wait::For(std::time::Duration::from_secs_f64(secs)),
        (false, None) => Wait::Forever,
    };
    // The child's pid while CMD runs, for the signal thread; it starts
    // (blocking the signals in every thread) before anything is opened.
    let child: Arc<Mutex<Option<Pid>>> = Arc::new(Mutex::new(None));
    if !args.command.is_empty() {
        forward_signals(Arc::clone(&child))?;
    }
    let set = unipc::open::open_sysv_sem(&args.endpoint)?;
    set.apply(&ops, wait)?;
    if args.command.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    run_command(&args.command, &child, &set)
}

/// Blocks SIGINT, SIGTERM and SIGHUP and takes them on one thread: passed
/// to CMD while it runs; before it starts, they end unipc with 128 + the
/// signal (the kernel reverts what `--undo` applied).
fn forward_signals(child: Arc<Mutex<Option<Pid>>>) -> anyhow::Result<()> {
    let mut set = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(signal);
    }
    set.thread_block()?;
    std::thread::Builder::new()
        .name("unipc-forward".into())
        .spawn(move || loop {
            let Ok(signal) = set.wait() else { return };
            let target = *child.lock().unwrap_or_else(|p| p.into_inner());
            match target {
                Some(pid) => {
                    let _ = nix::sys::signal::kill(pid, signal);
                }
                None => std::process::exit(128 + signal as i32),
            }
        })?;
    Ok(())
}

/// Runs CMD (the operations are held meanwhile) and returns its status.
fn run_command(
    command: &[OsString],
    child: &Mutex<Option<Pid>>,
    set: &SemaphoreSet,
) -> anyhow::Result<ExitCode> {
    let mut cmd = Command::new(&command[0]);
    cmd.args(&command[1..]);
    // The signal thread reads the pid under the same lock, so a signal
    // either finds no child (and ends unipc) or finds this one.
    let mut process = {
        let mut slot = child.lock().unwrap_or_else(|p| p.into_inner());
        // CMD dies with unipc: the kernel reverts the hold when unipc
        // exits, so CMD must not run on without it.
        let process = match set.spawn_holding(&mut cmd) {
            Ok(process) => process,
            Err(err) => {
                let code = if err.kind() == std::io::ErrorKind::NotFound {
                    127
                } else {
                    126
                };
                crate::out::report(&err.to_string());
                return Ok(ExitCode::from(code));
            }
        };
        *slot = Some(Pid::from_raw(process.id() as i32));
        process
    };
    let pid = Pid::from_raw(process.id() as i32);
    // Wait without reaping first, then forget the pid, then reap: a signal
    // can never reach another process that reused the pid.
    while let Err(nix::errno::Errno::EINTR) =
        nix::sys::wait::waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)
    {}
    *child.lock().unwrap_or_else(|p| p.into_inner()) = None;
    let status = process.wait()?;
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(code as u8),
        (None, Some(signal)) => ExitCode::from(128 + signal as u8),
        _ => ExitCode::FAILURE,
    })
}

/// `unipc stat` of a semaphore set: the set, then one row per semaphore.
pub fn stat(args: StatArgs) -> anyhow::Result<ExitCode> {
    semaphore_endpoint(&args.endpoint, "stat")?;
    let set = unipc::open::open_sysv_sem(&args.endpoint)?;
    let st = set.stat()?;
    let secs = |t: Option<std::time::SystemTime>| {
        t.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
    };
    let mut rows = Vec::with_capacity(set.count());
    for i in 0..set.count() {
        rows.push((set.value(i)?, set.ncnt(i)?, set.zcnt(i)?, set.last_pid(i)?));
    }
    let text = if args.json {
        let semaphores: Vec<serde_json::Value> = rows
            .iter()
            .enumerate()
            .map(|(i, (value, ncnt, zcnt, pid))| {
                serde_json::json!({
                    "index": i, "value": value, "ncnt": ncnt, "zcnt": zcnt, "pid": pid,
                })
            })
            .collect();
        let object = serde_json::json!({
            "endpoint": args.endpoint.to_string(),
            "id": set.id(),
            "key": st.key.to_string(),
            "mode": format!("{:o}", st.mode),
            "uid": st.uid,
            "gid": st.gid,
            "creator_uid": st.creator_uid,
            "creator_gid": st.creator_gid,
            "nsems": st.count,
            "otime": secs(st.last_op),
            "ctime": secs(st.changed),
            "semaphores": semaphores,
        });
        format!("{object}\n")
    } else {
        let when =
            |t| secs(t).map_or_else(|| "never".to_owned(), |s| format!("{s} (epoch seconds)"));
        let mut text = String::new();
        for (name, value) in [
            ("endpoint", args.endpoint.to_string()),
            ("id", set.id().to_string()),
            ("key", st.key.to_string()),
            ("mode", format!("{:o}", st.mode)),
            (
                "owner",
                format!(
                    "uid {} gid {} (creator uid {} gid {})",
                    st.uid, st.gid, st.creator_uid, st.creator_gid
                ),
            ),
            ("nsems", st.count.to_string()),
            ("otime", when(st.last_op)),
            ("ctime", when(st.changed)),
        ] {
            text.push_str(&format!("{name:<10} {value}\n"));
        }
        text.push_str(&format!(
            "{:<8} {:>6} {:>6} {:>6} {:>8}\n",
            "semnum", "value", "ncnt", "zcnt", "pid"
        ));
        for (i, (value, ncnt, zcnt, pid)) in rows.iter().enumerate() {
            let pid = pid.map_or_else(|| "-".to_owned(), |p| p.to_string());
            text.push_str(&format!("{i:<8} {value:>6} {ncnt:>6} {zcnt:>6} {pid:>8}\n"));
        }
        text
    };
    crate::out::write_stdout(&mut std::io::stdout().lock(), text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_parse_or_name_what_is_wrong() {
        let op = parse_op("2:+3").unwrap();
        assert_eq!((op.index(), op.delta()), (2, 3));
        assert_eq!(parse_op("0:-32767").unwrap().delta(), -32767);
        assert_eq!(parse_op("1:0").unwrap().delta(), 0);
        for bad in [
            "",
            "0",
            ":+1",
            "x:+1",
            "-1:+1",
            "0:",
            "0:1",
            "0:+",
            "0:+0",
            "0:-0",
            "0:+x",
            "0:+32768",
            "0:-99999999999",
            "0:+1:2",
            "0: +1",
        ] {
            let err = parse_op(bad).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
    }
}
