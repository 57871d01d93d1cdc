//! `unipc bench`.

use std::process::ExitCode;

use anyhow::Context;
use unipc_bench::output::OutputFile;
use unipc_bench::Config;

use super::usage;
use crate::cli::BenchArgs;

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let mut config = if args.quick {
        Config::quick()
    } else {
        Config::full()
    };
    config.facilities = args.facilities;
    if !args.sizes.is_empty() {
        let sizes: Vec<usize> = args.sizes.iter().map(|&s| s as usize).collect();
        config = config.with_sizes(&sizes);
    }
    if let Some(n) = args.repetitions {
        config.repetitions = n as usize;
    }
    if let Some(cpus) = &args.cpus {
        config.cpus = Some(parse_cpus(cpus)?);
    }
    // Every output is checked (and staged) before anything is measured.
    let json = args.json.as_deref().map(OutputFile::create).transpose()?;
    let html = args.html.as_deref().map(OutputFile::create).transpose()?;
    let comparison = args
        .comparison
        .as_deref()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .map_err(|e| usage(format!("--comparison {}: {e}", path.display())))?;
            unipc_bench::comparison::parse(&text)
                .map_err(|e| usage(format!("--comparison {}: {e}", path.display())))
        })
        .transpose()?;
    let nats = args
        .nats
        .as_deref()
        .map(super::nats_bench::Target::parse)
        .transpose()?;
    let report = unipc_bench::run(&config).map_err(|e| usage(e.to_string()))?;
    // A server that fails mid-way costs the NATS section, not the tables.
    let (nats, nats_failed) = match nats.map(|t| t.measure(if args.quick { 200 } else { 2000 })) {
        Some(Ok(section)) => (Some(section), None),
        Some(Err(err)) => (None, Some(err)),
        None => (None, None),
    };
    if let Some(file) = json {
        let mut value = serde_json::to_value(&report)
            .with_context(|| format!("{}: encoding the report", file.path().display()))?;
        if let (Some(section), serde_json::Value::Object(map)) = (&nats, &mut value) {
            map.insert("nats".to_owned(), serde_json::to_value(section)?);
        }
        let mut bytes = serde_json::to_vec_pretty(&value)?;
        bytes.push(b'\n');
        file.write(&bytes)?;
    }
    if let Some(file) = html {
        file.write(unipc_bench::html::render_with(&report, comparison.as_ref()).as_bytes())?;
    }
    unipc_bench::finish();
    let mut text = unipc_bench::text::render_report(&report);
    if let Some(section) = &nats {
        text.push_str(&section.render());
    }
    crate::out::write_stdout(&mut std::io::stdout().lock(), text.as_bytes())?;
    match nats_failed {
        Some(err) => Err(err.context("the NATS section was not measured; the tables above were")),
        None => Ok(ExitCode::SUCCESS),
    }
}

fn parse_cpus(text: &str) -> anyhow::Result<(usize, usize)> {
    let allowed = unipc_bench::allowed_cpus();
    let parsed: Vec<usize> = text
        .split(',')
        .map(|c| c.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            usage(format!(
                "--cpus {text:?}: expected two CPU numbers, as in --cpus 0,1"
            ))
        })?;
    let [a, b] = parsed[..] else {
        return Err(usage(format!(
            "--cpus {text:?}: expected two CPU numbers, as in --cpus 0,1"
        )));
    };
    for cpu in [a, b] {
        if !allowed.contains(&cpu) {
            return Err(usage(format!(
                "--cpus {text:?}: CPU {cpu} is not available; this process may use {allowed:?}"
            )));
        }
    }
    Ok((a, b))
}
