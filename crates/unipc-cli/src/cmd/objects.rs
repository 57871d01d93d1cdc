//! `unipc create`, `unipc stat`, `unipc rm`, `unipc fifo create`: named
//! objects that outlive the command.

use std::process::ExitCode;

use serde_json::json;
use unipc::message::{posix_mq, sysv_mq};
use unipc::stream::fifo;
use unipc::{Endpoint, Mode};

use super::usage;
use crate::cli::{CreateArgs, EndpointArg, FifoCreateArgs, StatArgs};

/// Reads an octal mode such as `600`, `0600` or `0o640` ([`Mode::from_str`](std::str::FromStr)).
pub fn parse_mode(text: &str) -> Result<Mode, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not an octal mode from 000 to 777 (as in 600)"))
}

fn not_for(endpoint: &Endpoint, what: &str, instead: &str) -> anyhow::Error {
    usage(format!(
        "{endpoint}: {what} does not apply to {} endpoints; {instead}",
        endpoint.scheme()
    ))
}

/// `unipc create`.
pub fn create(args: CreateArgs) -> anyhow::Result<ExitCode> {
    let mode = args.mode.unwrap_or(Mode::OWNER_RW);
    match &args.endpoint {
        Endpoint::PosixMq(name) => {
            let mut options = posix_mq::QueueOptions::new()
                .mode(mode)
                .exclusive(args.exclusive);
            if let Some(n) = args.max_messages {
                options = options.max_messages(n);
            }
            if let Some(n) = args.max_size {
                options = options.max_message_size(n);
            }
            let queue = options.create(name)?.keep();
            let attrs = queue.attributes()?;
            say(format!(
                "{}: {} (max {} messages of {} bytes, mode {:o})",
                args.endpoint,
                if queue.created() {
                    "created"
                } else {
                    "already existed"
                },
                attrs.max_messages,
                attrs.max_message_size,
                queue.mode()?
            ))?;
        }
        Endpoint::SysvMq(key) => {
            if args.max_messages.is_some() {
                return Err(usage(
                    "--max-messages: a System V queue is bounded in bytes; use --max-size BYTES",
                ));
            }
            let mut options = sysv_mq::QueueOptions::new()
                .mode(mode)
                .exclusive(args.exclusive)
                .keep();
            if let Some(bytes) = args.max_size {
                options = options.max_bytes(bytes);
            }
            let queue = options.create(*key)?;
            let stat = queue.stat()?;
            let private = if *key == unipc::name::SysvKey::Private {
                format!("; address it as sysv-mq:id={}", queue.id())
            } else {
                String::new()
            };
            say(format!(
                "{}: {} (id {}, owner uid {}, mode {:o}, max {} bytes){private}",
                args.endpoint,
                if queue.created() {
                    "created"
                } else {
                    "already existed"
                },
                queue.id(),
                stat.uid,
                stat.mode,
                stat.max_bytes,
            ))?;
        }
        Endpoint::Fifo(path) => {
            if args.max_messages.is_some() || args.max_size.is_some() {
                return Err(usage(
                    "--max-messages and --max-size apply to message queues, not FIFOs",
                ));
            }
            fifo::Fifo::create(path.as_path(), mode)?.keep();
            say(format!("{}: created (mode {mode:o})", args.endpoint))?;
        }
        other => {
            return Err(not_for(
                other,
                "create",
                "a socket exists while a process listens (unipc recv)",
            ))
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A System V queue by key or id; `private` names none.
fn open_sysv(endpoint: &Endpoint) -> anyhow::Result<sysv_mq::Queue> {
    Ok(match endpoint {
        Endpoint::SysvMqId(id) => sysv_mq::Queue::open_id(*id)?,
        Endpoint::SysvMq(unipc::name::SysvKey::Private) => {
            return Err(usage(format!(
                "{endpoint}: a private queue has no key; name it by the id `unipc create sysv-mq:private` printed: sysv-mq:id=N"
            )))
        }
        Endpoint::SysvMq(key) => sysv_mq::QueueOptions::new().open(*key)?,
        other => return Err(usage(format!("{other} is not a System V queue"))),
    })
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
    fifo::Fifo::create(&args.path, args.mode)?.keep();
    Ok(ExitCode::SUCCESS)
}

/// `unipc stat`.
pub fn stat(args: StatArgs) -> anyhow::Result<ExitCode> {
    let value = match &args.endpoint {
        Endpoint::PosixMq(name) => {
            let queue = posix_mq::QueueOptions::new()
                .access(posix_mq::Access::Read)
                .open(name)?;
            let a = queue.attributes()?;
            json!({
                "endpoint": args.endpoint.to_string(),
                "messages": a.messages,
                "max_messages": a.max_messages,
                "max_message_size": a.max_message_size,
                "mode": format!("{:o}", queue.mode()?),
            })
        }
        Endpoint::SysvMq(_) | Endpoint::SysvMqId(_) => {
            let queue = open_sysv(&args.endpoint)?;
            let s = queue.stat()?;
            json!({
                "endpoint": args.endpoint.to_string(),
                "id": queue.id(),
                "messages": s.messages,
                "bytes": s.bytes,
                "max_bytes": s.max_bytes,
                "last_sender_pid": s.last_sender,
                "last_receiver_pid": s.last_receiver,
                "uid": s.uid,
                "gid": s.gid,
                "mode": format!("{:o}", s.mode),
            })
        }
        other => return Err(not_for(other, "stat", "stat reads message queues")),
    };
    let mut text = String::new();
    if args.json {
        text = value.to_string();
        text.push('\n');
    } else if let Some(fields) = value.as_object() {
        for (key, field) in fields {
            let shown = match field {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => "-".to_owned(),
                other => other.to_string(),
            };
            text.push_str(&format!("{key:<18} {shown}\n"));
        }
    }
    crate::out::write_stdout(&mut std::io::stdout().lock(), text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// `unipc rm`.
pub fn rm(args: EndpointArg) -> anyhow::Result<ExitCode> {
    match &args.endpoint {
        Endpoint::PosixMq(name) => posix_mq::unlink(name)?,
        Endpoint::SysvMq(_) | Endpoint::SysvMqId(_) => open_sysv(&args.endpoint)?.remove()?,
        Endpoint::Fifo(path) => fifo::remove(path.as_path())?,
        // A socket file is removed only when no process listens on it.
        Endpoint::Unix(addr) => unipc::stream::unix::remove_stale(addr)?,
        Endpoint::UnixSeqpacket(addr) => unipc::stream::seqpacket::remove_stale(addr)?,
        Endpoint::UnixDgram(addr) => unipc::message::dgram::remove_stale(addr)?,
        other => {
            return Err(not_for(
                other,
                "rm",
                "a network socket exists only while a process holds it",
            ))
        }
    }
    Ok(ExitCode::SUCCESS)
}
