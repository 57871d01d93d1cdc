//! `unipc sem post | wait | get`: a POSIX named semaphore's count.
//! (`unipc create`, `stat` and `rm` handle `sem:` through `objects.rs`.)

use std::process::ExitCode;
use std::time::Duration;

use unipc::name::PosixName;
use unipc::sync::posix_sem::Semaphore;
use unipc::sync::Wait;
use unipc::{Endpoint, Error};

use super::usage;
use crate::cli::{SemArg, SemPostArgs, SemWaitArgs};

/// The semaphore's name, or a usage error (exit 2) for any other endpoint.
fn name_of(endpoint: &Endpoint) -> anyhow::Result<&PosixName> {
    match endpoint {
        Endpoint::Sem(name) => Ok(name),
        other => Err(usage(format!(
            "{other}: not a semaphore; unipc sem takes sem:/NAME"
        ))),
    }
}

/// Opens the semaphore; a name the library refuses before any system call
/// (too long for a semaphore) is a usage error.
fn open(endpoint: &Endpoint) -> anyhow::Result<Semaphore> {
    let name = name_of(endpoint)?;
    Semaphore::open(name).map_err(|e| match e {
        Error::InvalidName { .. } => usage(e.to_string()),
        other => other.into(),
    })
}

/// `unipc sem post`.
pub fn post(args: SemPostArgs) -> anyhow::Result<ExitCode> {
    let sem = open(&args.endpoint)?;
    for done in 0..args.count {
        if let Err(err) = sem.post() {
            let err = anyhow::Error::from(err);
            return Err(if done == 0 {
                err
            } else {
                err.context(format!("{done} of {} posted", args.count))
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `unipc sem wait`.
pub fn wait(args: SemWaitArgs) -> anyhow::Result<ExitCode> {
    let name = name_of(&args.endpoint)?.clone();
    // Before any thread starts, so that every thread has the signals
    // blocked: Ctrl-C then ends the wait through the signal thread (exit
    // 130), and a wait that has not returned has taken nothing.
    crate::terminate::install()?;
    let sem = open(&args.endpoint)?;
    let wait = if args.nonblock {
        Wait::Never
    } else {
        match args.timeout {
            Some(secs) => Wait::For(Duration::from_secs_f64(secs)),
            None => Wait::Forever,
        }
    };
    match sem.wait(wait) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(Error::WouldBlock { .. }) => Err(anyhow::anyhow!(
            "sem:{name}: the value is 0, so nothing was taken (--nonblock)"
        )),
        Err(Error::TimedOut { timeout, .. }) => Err(anyhow::anyhow!(
            "sem:{name}: still 0 after {:.3} s, so nothing was taken (--timeout)",
            timeout.as_secs_f64()
        )),
        Err(other) => Err(other.into()),
    }
}

/// `unipc sem get`.
pub fn get(args: SemArg) -> anyhow::Result<ExitCode> {
    let sem = open(&args.endpoint)?;
    let value = sem.value()?;
    crate::out::write_stdout(
        &mut std::io::stdout().lock(),
        format!("{value}\n").as_bytes(),
    )?;
    Ok(ExitCode::SUCCESS)
}
