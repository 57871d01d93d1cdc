//! One module per subcommand.

use std::process::ExitCode;

use crate::cli::{Cli, Command, FifoCommand};

mod bench;
mod compare;
mod dgram;
mod messages;
mod objects;
mod pty;
mod streams;
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

pub use objects::parse_mode;

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
        Command::Fifo {
            command: FifoCommand::Create(args),
        } => objects::fifo_create(args),
        Command::Pty(args) => pty::run(args),
    }
}
