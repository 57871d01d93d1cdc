//! `unipc compare`.

use std::process::ExitCode;

use anyhow::Context;
use unipc_bench::compare::{self, FacilityRow, NEEDS};

use super::usage;
use crate::cli::CompareArgs;

pub fn run(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let facilities = compare::with_needs(&args.need).map_err(|unknown| {
        let known: Vec<&str> = NEEDS.iter().map(|(name, ..)| *name).collect();
        usage(format!(
            "--need {unknown:?}: no such property; properties: {}",
            known.join(", ")
        ))
    })?;
    let mut rows: Vec<FacilityRow> = facilities.iter().map(|f| FacilityRow::of(f)).collect();
    let key = match &args.bench {
        Some(path) => {
            let text =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let report: serde_json::Value = serde_json::from_slice(&text)
                .with_context(|| format!("{}: not JSON", path.display()))?;
            let key = compare::order_by_latency(&mut rows, &report)
                .map_err(|why| anyhow::anyhow!("{}: {why}", path.display()))?;
            if key.is_none() {
                eprintln!(
                    "unipc: {}: no latency figure for these facilities; not ordered",
                    path.display()
                );
            }
            key
        }
        None => None,
    };
    // Encoded into memory first, so that a closed stdout comes back as the
    // io::Error it is (serde_json's writer would hide it) and ends quietly.
    let mut text = if args.json {
        let mut bytes = serde_json::to_vec_pretty(&rows)?;
        bytes.push(b'\n');
        bytes
    } else if args.long {
        compare::render_text(&rows).into_bytes()
    } else {
        compare::table(&rows, key.as_ref()).into_bytes()
    };
    if rows.is_empty() && !args.json {
        text = format!("No facility has all of: {}.\n", args.need.join(", ")).into_bytes();
    }
    crate::out::write_stdout(&mut std::io::stdout().lock(), &text)?;
    Ok(ExitCode::SUCCESS)
}
