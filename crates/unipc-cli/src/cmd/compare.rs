//! `unipc compare`.

use std::io::Write;
use std::process::ExitCode;

use crate::cli::CompareArgs;

pub fn run(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let rows = unipc_bench::compare::rows();
    let mut stdout = std::io::stdout().lock();
    if args.json {
        // Encoded first, so that a closed stdout comes back as the
        // io::Error it is (serde_json's writer would hide it).
        let mut bytes = serde_json::to_vec_pretty(&rows)?;
        bytes.push(b'\n');
        stdout.write_all(&bytes)?;
    } else {
        stdout.write_all(unipc_bench::compare::render_text(&rows).as_bytes())?;
    }
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}
