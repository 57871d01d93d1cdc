//! `unipc send` and `unipc recv`: one command pair for every endpoint.
//! Byte streams copy bytes until end of file; message endpoints move whole
//! messages.

use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use unipc::message::{Tag, Wait};
use unipc::Endpoint;

use super::messages::{self, Opened};
use super::streams;
use super::usage;
use crate::cli::{RecvArgs, SendArgs};

fn wait_of(nonblock: bool, timeout: Option<Duration>) -> Wait {
    match (nonblock, timeout) {
        (true, _) => Wait::Never,
        (false, Some(t)) => Wait::For(t),
        (false, None) => Wait::Forever,
    }
}

fn payload(data: Option<&str>) -> anyhow::Result<Vec<u8>> {
    match data {
        Some(text) => Ok(text.as_bytes().to_vec()),
        None => {
            let mut all = Vec::new();
            io::stdin()
                .lock()
                .read_to_end(&mut all)
                .context("reading stdin")?;
            Ok(all)
        }
    }
}

/// The tag `--priority` / `--type` ask for, refused (a usage error) before
/// anything is opened when the endpoint carries no such tag.
fn tag_of(endpoint: &Endpoint, priority: Option<u32>, type_: Option<i64>) -> anyhow::Result<Tag> {
    let tag = match (priority, type_) {
        (Some(_), Some(_)) => return Err(usage("--priority and --type cannot be given together")),
        (Some(p), None) => Tag::Priority(p),
        (None, Some(t)) if t < 1 => {
            return Err(usage(format!(
                "--type {t}: a System V message type is a positive number (at least 1)"
            )))
        }
        (None, Some(t)) => Tag::Type(t),
        (None, None) => return Ok(Tag::None),
    };
    match (endpoint, tag) {
        (Endpoint::PosixMq(_), Tag::Priority(_)) | (Endpoint::SysvMq(_), Tag::Type(_)) => Ok(tag),
        (_, _) if !messages::is_message_endpoint(endpoint) => Err(usage(format!(
            "{endpoint} is a byte stream: --priority and --type apply to message queues"
        ))),
        (_, Tag::Priority(_)) => Err(usage(format!(
            "{endpoint}: --priority applies to POSIX queues (posix-mq:/NAME)"
        ))),
        _ => Err(usage(format!(
            "{endpoint}: --type applies to System V queues (sysv-mq:KEY)"
        ))),
    }
}

/// `unipc send`.
pub fn send(args: SendArgs) -> anyhow::Result<ExitCode> {
    let endpoint = &args.endpoint;
    let timeout = args.timeout.map(Duration::from_secs_f64);
    let tag = tag_of(endpoint, args.priority, args.type_)?;
    if let Some(opened) = messages::open_sending(endpoint, timeout) {
        let opened = opened?;
        let data = payload(args.data.as_deref())?;
        opened
            .messenger()
            .send_tagged(&data, tag, wait_of(args.nonblock, timeout))?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(writer) = streams::open_writing(endpoint, timeout) else {
        return Err(usage(format!("{endpoint}: cannot send to this endpoint")));
    };
    let mut writer = writer?;
    let result = match &args.data {
        Some(text) => writer
            .write_all(text.as_bytes())
            .and_then(|()| writer.flush()),
        None => io::copy(&mut io::stdin().lock(), &mut writer).and_then(|_| writer.flush()),
    };
    result.map_err(|err| {
        // EPIPE, or ECONNRESET when the reader closed with our data unread.
        if matches!(
            err.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
        ) {
            anyhow::anyhow!("{endpoint}: write: the reader went away before all the data was sent")
        } else {
            anyhow::Error::new(err).context(format!("{endpoint}: write"))
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `unipc recv`.
pub fn recv(args: RecvArgs) -> anyhow::Result<ExitCode> {
    let endpoint = &args.endpoint;
    let timeout = args.timeout.map(Duration::from_secs_f64);
    if args.raw && args.json {
        return Err(usage("--raw and --json cannot be given together"));
    }
    if (args.type_.is_some() || args.except.is_some()) && !matches!(endpoint, Endpoint::SysvMq(_)) {
        return Err(usage(if messages::is_message_endpoint(endpoint) {
            format!("{endpoint}: --type and --except select System V message types")
        } else {
            format!("{endpoint} is a byte stream: --type and --except apply to System V queues")
        }));
    }
    if let Some(opened) = messages::open_receiving(endpoint, timeout) {
        return recv_messages(&args, opened?, wait_of(args.nonblock, timeout));
    }
    let Some(reader) = streams::open_reading(endpoint, timeout) else {
        return Err(usage(format!(
            "{endpoint}: cannot receive from this endpoint"
        )));
    };
    let mut reader = reader?;
    let mut stdout = io::stdout().lock();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(anyhow::Error::new(e).context(format!("{endpoint}: read"))),
        };
        stdout.write_all(&buf[..n])?;
        stdout.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

fn recv_messages(args: &RecvArgs, mut opened: Opened, wait: Wait) -> anyhow::Result<ExitCode> {
    let mut buf = vec![0u8; opened.messenger().recv_buffer_hint()?.max(1)];
    let mut stdout = io::stdout().lock();
    for _ in 0..args.count {
        let got = match &mut opened {
            Opened::Sysv(queue) => {
                queue.recv_select(messages::selection(args.type_, args.except), &mut buf, wait)?
            }
            Opened::Generic(m) => m.recv_into(&mut buf, wait)?,
            Opened::Seqpacket(link) => link.recv_into(&mut buf, wait)?,
        };
        let data = &buf[..got.len];
        if args.json {
            let mut object = serde_json::Map::new();
            object.insert("len".into(), got.len.into());
            match std::str::from_utf8(data) {
                Ok(text) => object.insert("data".into(), text.into()),
                Err(_) => object.insert("data_hex".into(), hex(data).into()),
            };
            match got.tag {
                Tag::Priority(p) => object.insert("priority".into(), p.into()),
                Tag::Type(t) => object.insert("type".into(), t.into()),
                _ => None,
            };
            serde_json::to_writer(&mut stdout, &object)?;
            stdout.write_all(b"\n")?;
        } else {
            stdout.write_all(data)?;
            if !args.raw {
                stdout.write_all(b"\n")?;
            }
        }
        stdout.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
