//! `unipc compare`.

use std::io::Write;
use std::process::ExitCode;

use crate::cli::CompareArgs;

pub fn run(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let rows = unipc_bench::compare::rows();
    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &rows)?;
        writeln!(stdout)?;
    } else {
        stdout.write_all(unipc_bench::compare::render_text(&rows).as_bytes())?;
    }
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}
