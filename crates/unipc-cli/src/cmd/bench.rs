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
    let report = unipc_bench::run(&config).map_err(|e| usage(e.to_string()))?;
    if let Some(file) = json {
        let mut bytes = serde_json::to_vec_pretty(&report)
            .with_context(|| format!("{}: encoding the report", file.path().display()))?;
        bytes.push(b'\n');
        file.write(&bytes)?;
    }
    if let Some(file) = html {
        file.write(unipc_bench::html::render_with(&report, comparison.as_ref()).as_bytes())?;
    }
    unipc_bench::finish();
    crate::out::write_stdout(
        &mut std::io::stdout().lock(),
        unipc_bench::text::render_report(&report).as_bytes(),
    )?;
    Ok(ExitCode::SUCCESS)
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
