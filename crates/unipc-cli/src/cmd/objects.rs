//! `unipc create`, `unipc stat`, `unipc rm`, `unipc fifo create`: named
//! objects that outlive the command.

use std::process::ExitCode;

use unipc::open::{CreateOptions, Value};
use unipc::Mode;

use super::usage;
use crate::cli::{CreateArgs, FifoCreateArgs, RmArgs, StatArgs};

/// Reads an octal mode such as `600`, `0600` or `0o640` ([`Mode::from_str`](std::str::FromStr)).
pub fn parse_mode(text: &str) -> Result<Mode, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not an octal mode from 000 to 777 (as in 600)"))
}

/// `unipc create`.
pub fn create(args: CreateArgs) -> anyhow::Result<ExitCode> {
    super::refuse_private_except_create(&args.endpoint, true)?;
    let mut options = CreateOptions::new()
        .mode(args.mode.unwrap_or(Mode::OWNER_RW))
        .exclusive(args.exclusive);
    if let Some(n) = args.max_messages {
        options = options.max_messages(n);
    }
    if let Some(n) = args.max_size {
        options = options.max_size(n);
    }
    if let Some(n) = args.size {
        options = options.size(n);
    }
    if let Some(n) = args.value {
        options = options.value(n);
    }
    if let Some(n) = args.count {
        options = options.count(n as usize);
    }
    if let Some(values) = &args.values {
        options = options.values(values);
    }
    if let Some(n) = args.subscribers {
        options = options.subscribers(n);
    }
    if args.overwrite {
        options = options.overwrite(true);
    }
    if let Some(timeout) = args.timeout {
        options = options.timeout(timeout);
    }
    // An option that does not fit the endpoint is a usage error, found
    // before anything is made.
    options
        .check(&args.endpoint)
        .map_err(|e| usage(e.to_string()))?;
    let made = options.create(&args.endpoint)?;
    let mut line = format!("{}: {made}", args.endpoint);
    if made.endpoint != args.endpoint {
        line.push_str(&format!("; address it as {}", made.endpoint));
    }
    say(line)?;
    Ok(ExitCode::SUCCESS)
}

/// One line on stdout.
fn say(line: String) -> Result<(), crate::out::OutputError> {
    crate::out::write_stdout(
        &mut std::io::stdout().lock(),
        format!("{line}\n").as_bytes(),
    )
}

/// `unipc fifo create`.
pub fn fifo_create(args: FifoCreateArgs) -> anyhow::Result<ExitCode> {
    let endpoint = unipc::Endpoint::Fifo(unipc::name::FsPath::new(&args.path)?);
    CreateOptions::new().mode(args.mode).create(&endpoint)?;
    Ok(ExitCode::SUCCESS)
}

/// `unipc stat`.
pub fn stat(args: StatArgs) -> anyhow::Result<ExitCode> {
    super::refuse_private_except_create(&args.endpoint, false)?;
    if matches!(
        args.endpoint,
        unipc::Endpoint::SysvSem(_) | unipc::Endpoint::SysvSemId(_)
    ) {
        return super::semop::stat(args);
    }
    let fields =
        unipc::open::describe_within(&args.endpoint, args.timeout).map_err(|e| match e {
            unipc::Error::Unsupported { .. } => usage(e.to_string()),
            unipc::Error::InvalidName { .. } => usage(e.to_string()),
            other => other.into(),
        })?;
    let text = if args.json {
        let mut object = serde_json::Map::new();
        object.insert("endpoint".into(), args.endpoint.to_string().into());
        for (name, value) in &fields {
            let json = match value {
                Value::Number(n) => (*n).into(),
                Value::Mode(m) => format!("{m:o}").into(),
                Value::None => serde_json::Value::Null,
                other => other.to_string().into(),
            };
            object.insert((*name).into(), json);
        }
        format!("{}\n", serde_json::Value::Object(object))
    } else {
        let mut text = format!("{:<18} {}\n", "endpoint", args.endpoint);
        for (name, value) in &fields {
            text.push_str(&format!("{name:<18} {value}\n"));
        }
        text
    };
    crate::out::write_stdout(&mut std::io::stdout().lock(), text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// The live processes attached to a ring's or pubsub's sides, as "pid N
/// (writer)": removing the name does not stop them, and they go on with
/// the removed object while a new one made under the name is another.
fn live_users(endpoint: &unipc::Endpoint) -> Vec<String> {
    use unipc::message::ring::{pubsub::PubSubOptions, Ring};
    let alive = |a: &unipc::message::ring::Attached, role: &str| {
        a.alive.then(|| format!("pid {} ({role})", a.pid))
    };
    match endpoint {
        unipc::Endpoint::Ring(name) => Ring::open(name)
            .and_then(|r| r.status())
            .map(|s| {
                [(s.writer, "writer"), (s.reader, "reader")]
                    .iter()
                    .filter_map(|(a, role)| a.as_ref().and_then(|a| alive(a, role)))
                    .collect()
            })
            .unwrap_or_default(),
        unipc::Endpoint::PubSub(name) => PubSubOptions::open(name)
            .and_then(|p| p.status())
            .map(|s| {
                s.publisher
                    .iter()
                    .filter_map(|a| alive(a, "publisher"))
                    .chain(
                        s.subscribers
                            .iter()
                            .filter_map(|sub| alive(&sub.process, "subscriber")),
                    )
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn warn_in_use(endpoint: &unipc::Endpoint, users: &[String]) {
    if !users.is_empty() {
        crate::out::report(&format!(
            "{endpoint}: removed, but still in use by {}: it goes on with the removed object, and one made again under the name is another",
            users.join(", ")
        ));
    }
}

/// `unipc rm`.
pub fn rm(args: RmArgs) -> anyhow::Result<ExitCode> {
    // A name no command can find is refused for all of them, before any
    // is removed.
    for endpoint in &args.endpoints {
        super::refuse_private_except_create(endpoint, false)?;
    }
    let classify = |e: unipc::Error| match e {
        unipc::Error::Unsupported { .. } | unipc::Error::InvalidName { .. } => usage(e.to_string()),
        other => other.into(),
    };
    if let [only] = &args.endpoints[..] {
        let users = live_users(only);
        unipc::open::remove_within(only, args.timeout).map_err(classify)?;
        warn_in_use(only, &users);
        return Ok(ExitCode::SUCCESS);
    }
    // Several: each failure is reported on its own line, and the others
    // are still removed.
    let (mut failed, mut refused) = (false, false);
    for endpoint in &args.endpoints {
        let users = live_users(endpoint);
        if let Err(e) = unipc::open::remove_within(endpoint, args.timeout).map_err(classify) {
            if e.downcast_ref::<super::UsageError>().is_some() {
                refused = true;
            } else {
                failed = true;
            }
            crate::out::report(&crate::out::one_line(&e));
        } else {
            warn_in_use(endpoint, &users);
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else if refused {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
