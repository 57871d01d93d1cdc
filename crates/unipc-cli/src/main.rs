//! `unipc`: talk to, inspect and measure every UNIX IPC facility.
//!
//! The binary is a thin layer over the `unipc` library and the
//! `unipc-bench` engine: it parses arguments, calls them, and turns errors
//! into one line on stderr. Exit status: 0 success, 1 runtime error, 2 usage
//! error. A closed stdout (`unipc compare | head`) ends the run quietly; no
//! output failure panics.
#![deny(unsafe_code)]

mod cli;
mod cmd;
mod out;
mod terminate;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Arguments are bytes: a path need not be UTF-8.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).map(|a| a.as_os_str()) == Some(unipc_bench::PEER_ARG.as_ref()) {
        let rest: Option<Vec<String>> = args[2..]
            .iter()
            .map(|a| a.clone().into_string().ok())
            .collect();
        return match rest {
            Some(rest) => ExitCode::from(unipc_bench::peer_main(&rest) as u8),
            None => ExitCode::from(2),
        };
    }
    if args.get(1).map(|a| a.as_os_str()) == Some(cmd::NATS_ECHO_ARG.as_ref()) {
        return cmd::nats_echo(&args[2..]);
    }
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            // --help and --version print to stdout and exit 0; a closed
            // stdout or stderr there is not worth a panic either.
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { 2 } else { 0 });
        }
    };
    match cmd::run(cli) {
        Ok(code) => code,
        Err(err) if out::is_closed_stdout(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let usage = err.downcast_ref::<cmd::UsageError>().is_some();
            out::report(&out::one_line(&err));
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}
