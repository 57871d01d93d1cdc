//! The command line, as clap reads it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// unipc — every UNIX IPC facility behind one tool: send and receive through
/// any of them, inspect them, and measure them side by side.
///
/// Endpoints name an object and its facility: fifo:PATH, unix:PATH, unix:@NAME,
/// unix-seqpacket:PATH, tcp:HOST:PORT, tcp:[::1]:PORT.
#[derive(Debug, Parser)]
#[command(name = "unipc", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Measure every facility between two processes, side by side.
    ///
    /// Latency (ping-pong round trips, 64 B to 64 KiB) and throughput (64 B to
    /// 1 MiB), through unipc and through the raw system calls, blocking and
    /// busy-polling, on different CPUs and on one CPU.
    ///
    /// Example: unipc bench --quick --facility pipe --facility unix --json out.json
    Bench(BenchArgs),

    /// Show how the facilities differ: shape, naming, reach, persistence, limits.
    ///
    /// Example: unipc compare --json
    Compare(CompareArgs),
}

/// `unipc bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A short run (one size per workload, one repetition; about 10 s).
    #[arg(long)]
    pub quick: bool,
    /// Measure only this facility (repeatable). Example: --facility pipe
    #[arg(long = "facility", value_name = "NAME")]
    pub facilities: Vec<String>,
    /// Measure only this message size in bytes (repeatable). Example: --size 4096
    #[arg(long = "size", value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..=(64 << 20)))]
    pub sizes: Vec<u64>,
    /// Run the parent on CPU A and the peer on CPU B. Example: --cpus 0,1
    #[arg(long, value_name = "A,B")]
    pub cpus: Option<String>,
    /// Repetitions of every figure (min / median / max are reported).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100))]
    pub repetitions: Option<u64>,
    /// Write every figure as JSON to FILE. Example: --json bench.json
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a self-contained HTML report with charts to FILE. Example: --html bench.html
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// `unipc compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}
