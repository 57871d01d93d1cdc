//! `unipc gc`: removes the IPC objects no live process can be shown to
//! use, and says why each went (or stays).

use std::process::ExitCode;

use serde_json::json;
use unipc::inventory::gc::{GcOptions, Outcome};

use crate::cli::GcArgs;
use crate::out;

/// `unipc gc [--dry-run] [--kind KIND...] [--unowned] [--kept] [-v] [--json]`.
pub fn run(args: GcArgs) -> anyhow::Result<ExitCode> {
    let report = GcOptions::new()
        .kinds(&args.kinds)
        .dry_run(args.dry_run)
        .unowned(args.unowned)
        .kept(args.kept)
        .private_namespace(args.private_namespace)
        .run()?;
    let failed = report
        .decisions
        .iter()
        .any(|d| matches!(d.outcome, Outcome::Failed(_)));
    let text = if args.json {
        let doc = json!({
            "schema": "unipc-gc/1",
            "dry_run": args.dry_run,
            "decisions": report.decisions.iter().map(|d| {
                let (outcome, error) = match &d.outcome {
                    Outcome::Stays => ("stays", None),
                    Outcome::WouldGo => ("would-go", None),
                    Outcome::Removed => ("removed", None),
                    Outcome::Failed(err) => ("failed", Some(err.to_string())),
                    _ => ("other", None),
                };
                json!({
                    "kind": d.object.kind.as_str(), "name": d.object.name,
                    "outcome": outcome, "reason": d.reason, "error": error,
                })
            }).collect::<Vec<_>>(),
            "stale_records": report.stale_records,
            "unreadable": report.unreadable.iter().map(|u| json!({
                "what": u.what, "reason": u.reason,
            })).collect::<Vec<_>>(),
        });
        let mut text = serde_json::to_string_pretty(&doc)?;
        text.push('\n');
        text
    } else {
        let mut text = String::new();
        for d in &report.decisions {
            let name = super::ls::printable(&d.object.name);
            let reason = super::ls::printable(&d.reason);
            match &d.outcome {
                Outcome::Removed => text.push_str(&format!("removed {name}: {reason}\n")),
                Outcome::WouldGo => text.push_str(&format!("would remove {name}: {reason}\n")),
                Outcome::Failed(err) => text.push_str(&format!(
                    "failed {name}: {reason}; {}\n",
                    super::ls::printable(&err.to_string())
                )),
                _ if args.verbose => text.push_str(&format!("stays {name}: {reason}\n")),
                _ => {}
            }
        }
        if report.stale_records > 0 {
            text.push_str(&format!(
                "{} {} creator record(s) of objects that are gone\n",
                if args.dry_run {
                    "would drop"
                } else {
                    "dropped"
                },
                report.stale_records
            ));
        }
        text
    };
    out::write_stdout(&mut std::io::stdout().lock(), text.as_bytes())?;
    if !args.json {
        super::ls::report_unreadable(
            "gc",
            "what they would show cannot be taken for unused",
            &report.unreadable,
        );
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
