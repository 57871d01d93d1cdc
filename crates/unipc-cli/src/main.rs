//! `unipc`: talk to, inspect and measure every UNIX IPC facility.
//!
//! The binary is a thin layer over the `unipc` library and the
//! `unipc-bench` engine: it parses arguments, calls them, and turns errors
//! into one line on stderr. Exit status: 0 success, 1 runtime error, 2 usage
//! error. A closed stdout (`unipc compare | head`) ends the run quietly.
#![deny(unsafe_code)]

mod cli;
mod cmd;
mod out;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(unipc_bench::PEER_ARG) {
        return ExitCode::from(unipc_bench::peer_main(&args[2..]) as u8);
    }
    let cli = cli::Cli::parse();
    match cmd::run(cli) {
        Ok(code) => code,
        Err(err) if out::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let usage = err.downcast_ref::<cmd::UsageError>().is_some();
            eprintln!("unipc: {}", out::one_line(&err));
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}
