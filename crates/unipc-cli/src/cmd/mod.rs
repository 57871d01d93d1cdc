//! One module per subcommand.

use std::process::ExitCode;

use crate::cli::{Cli, Command, FifoCommand, SemCommand, SignalCommand};

mod bench;
mod bridge;
mod compare;
mod gc;
mod lock;
mod ls;
mod memory;
mod nats_bench;
mod objects;
mod pty;
mod sem;
mod semop;
mod signal;
mod transfer;

/// An error in how the command was called (exit status 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A usage error as an `anyhow::Error`.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

pub use memory::parse_bytes;
pub use nats_bench::{nats_echo, NATS_ECHO_ARG};
pub use objects::parse_mode;

/// `sysv-mq:private` names no queue a later command can find: only
/// `create` (when `creating`) may use it, and it prints the id to use.
pub fn refuse_private_except_create(
    endpoint: &unipc::Endpoint,
    creating: bool,
) -> anyhow::Result<()> {
    if !creating
        && matches!(
            endpoint,
            unipc::Endpoint::SysvMq(unipc::name::SysvKey::Private)
        )
    {
        return Err(usage(format!(
            "{endpoint}: a private queue has no key; name it by the id `unipc create sysv-mq:private` printed: sysv-mq:id=N"
        )));
    }
    if !creating
        && matches!(
            endpoint,
            unipc::Endpoint::SysvShm(unipc::name::SysvKey::Private)
        )
    {
        return Err(usage(format!(
            "{endpoint}: a private segment has no key; name it by the id `unipc create sysv-shm:private` printed: sysv-shm:id=N"
        )));
    }
    if !creating
        && matches!(
            endpoint,
            unipc::Endpoint::SysvSem(unipc::name::SysvKey::Private)
        )
    {
        return Err(usage(format!(
            "{endpoint}: a private set has no key; name it by the id `unipc create sysv-sem:private` printed: sysv-sem:id=N"
        )));
    }
    Ok(())
}

/// How to undo what listening on `endpoint` made, should SIGINT, SIGTERM
/// or SIGHUP end the process while it waits (the listener's own drop never
/// runs then): the socket file it bound, and only that file — one that
/// replaced it is left alone.
pub fn remove_socket_file_on_signal(
    endpoint: &unipc::Endpoint,
    steps: &mut crate::terminate::Steps<'_>,
) {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    use unipc::Endpoint;
    let (Endpoint::Unix(addr) | Endpoint::UnixSeqpacket(addr) | Endpoint::UnixDgram(addr)) =
        endpoint
    else {
        return;
    };
    let Some(path) = addr.as_path().map(std::path::Path::to_owned) else {
        return;
    };
    // The file the bind just made and checked (it is ours: the library
    // refused anything else).
    let Ok(bound) = std::fs::symlink_metadata(&path) else {
        return;
    };
    let identity = (bound.dev(), bound.ino());
    steps.on_signal(move || {
        if let Ok(now) = std::fs::symlink_metadata(&path) {
            if now.file_type().is_socket() && (now.dev(), now.ino()) == identity {
                let _ = std::fs::remove_file(&path);
            }
        }
    });
}
/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Bench(args) => bench::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Send(args) => transfer::send(args),
        Command::Recv(args) => transfer::recv(args),
        Command::Create(args) => objects::create(args),
        Command::Stat(args) => objects::stat(args),
        Command::Rm(args) => objects::rm(args),
        Command::Read(args) => memory::read(args),
        Command::Write(args) => memory::write(args),
        Command::Fifo {
            command: FifoCommand::Create(args),
        } => objects::fifo_create(args),
        Command::Pty(args) => pty::run(args),
        Command::Lock(args) => lock::run(args),
        Command::Sem {
            command: SemCommand::Post(args),
        } => sem::post(args),
        Command::Sem {
            command: SemCommand::Wait(args),
        } => sem::wait(args),
        Command::Sem {
            command: SemCommand::Get(args),
        } => sem::get(args),
        Command::Semop(args) => semop::run(args),
        Command::Signal {
            command: SignalCommand::Send(args),
        } => signal::send(args),
        Command::Signal {
            command: SignalCommand::Wait(args),
        } => signal::wait(args),
        Command::Ls(args) => ls::run(args),
        Command::Gc(args) => gc::run(args),
        Command::Bridge(args) => bridge::run(args),
    }
}
