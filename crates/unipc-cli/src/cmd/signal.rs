//! `unipc signal send | wait`: standard and realtime signals with their
//! sender and value.
//!
//! `wait` never calls `terminate::install`: that would block SIGINT,
//! SIGTERM and SIGHUP for a thread of its own that takes them with
//! `sigwait`, racing the signalfd for a listed TERM. It has nothing to undo
//! but the pid file, so the signals it does not list keep their default
//! action, and it blocks the listed ones before any thread exists (clap
//! starts none), so none of them can reach a thread that does not block it.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use unipc::signal::{self, Received, SignalReceiver};
use unipc::sync::Wait;
use unipc::Error;

use super::usage;
use crate::cli::{SignalSendArgs, SignalWaitArgs};
use crate::out;

/// `unipc signal send PID SIG [--value N]`.
pub fn send(args: SignalSendArgs) -> anyhow::Result<ExitCode> {
    match signal::send(args.pid, args.signal, args.value) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(err @ Error::InvalidName { .. }) => Err(usage(err.to_string())),
        Err(err) => Err(err.into()),
    }
}

fn line(got: &Received, json: bool) -> String {
    if json {
        let value = serde_json::json!({
            "signal": got.signal.to_string(),
            "pid": got.pid,
            "uid": got.uid,
            "code": got.code.to_string(),
            "value": got.value,
        });
        format!("{value}\n")
    } else {
        let value = got.value.map_or_else(|| "-".to_owned(), |v| v.to_string());
        format!(
            "{} pid={} uid={} code={} value={value}\n",
            got.signal, got.pid, got.uid, got.code
        )
    }
}

/// The pid file, removed on drop while it is still the one written.
struct PidFile {
    path: std::path::PathBuf,
    identity: (u64, u64),
}

impl PidFile {
    fn create(path: &Path) -> anyhow::Result<PidFile> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(path)
            .map_err(|e| {
                let hint = if e.kind() == std::io::ErrorKind::AlreadyExists {
                    " (a pid file is made new, never followed or overwritten: remove it, or name another)"
                } else {
                    ""
                };
                anyhow::anyhow!("{}: create pid file: {e}{hint}", path.display())
            })?;
        writeln!(file, "{}", std::process::id())
            .map_err(|e| anyhow::anyhow!("{}: write pid file: {e}", path.display()))?;
        let meta = file.metadata()?;
        Ok(PidFile {
            path: path.to_owned(),
            identity: (meta.dev(), meta.ino()),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Ok(now) = std::fs::symlink_metadata(&self.path) {
            if (now.dev(), now.ino()) == self.identity {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// `unipc signal wait SIG... [--count N] [--timeout SECS] [--json]`.
pub fn wait(args: SignalWaitArgs) -> anyhow::Result<ExitCode> {
    let mut receiver = match SignalReceiver::new(&args.signals) {
        Ok(receiver) => receiver,
        Err(err @ Error::InvalidName { .. }) => return Err(usage(err.to_string())),
        Err(err) => return Err(err.into()),
    };
    // Announced only now that the signals are blocked: a sender that reads
    // the pid can send at once.
    let _pid_file = match &args.pid_file {
        Some(path) => Some(PidFile::create(path)?),
        None => {
            out::report(&format!("pid {}", std::process::id()));
            None
        }
    };
    let deadline = args
        .timeout
        .map(|secs| Instant::now() + Duration::from_secs_f64(secs));
    let mut stdout = std::io::stdout().lock();
    let mut taken = 0;
    let result = loop {
        // Taking a signal consumes it: take none that could only be lost
        // because nobody reads stdout any more.
        if taken == args.count || out::stdout_gone() {
            break Ok(ExitCode::SUCCESS);
        }
        let wait = match deadline {
            None => Wait::Forever,
            Some(at) => Wait::For(at.saturating_duration_since(Instant::now())),
        };
        match receiver.recv(wait) {
            Ok(got) => {
                if let Err(err) = out::write_stdout(&mut stdout, line(&got, args.json).as_bytes()) {
                    break Err(err.into());
                }
                taken += 1;
            }
            Err(Error::TimedOut { .. } | Error::WouldBlock { .. }) => {
                break Err(anyhow::anyhow!(
                    "{}: {taken} of {} signals taken in {} s (--timeout)",
                    args.signals
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                    args.count,
                    args.timeout.unwrap_or(0.0)
                ))
            }
            Err(err) => break Err(err.into()),
        }
    };
    // Signals still pending stay blocked until exit, rather than being
    // delivered under their default action (ending the process) when the
    // mask is put back.
    receiver.keep_blocked();
    result
}
