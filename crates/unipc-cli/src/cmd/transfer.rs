//! `unipc send` and `unipc recv`: one command pair for every endpoint,
//! opened through the library's `unipc::open`. Byte streams copy bytes
//! until end of file; message endpoints move whole messages.
//!
//! The rules the help text promises:
//! - `--timeout SECS` bounds every wait: for the peer, and for each step of
//!   the transfer (a stream write or read that makes no progress, a message
//!   that does not come, a queue that stays full).
//! - A broken stdout is a normal end; a broken peer is an error (exit 1).
//! - `recv` takes a message off a queue only while stdout is still open; a
//!   message taken and then not written is reported, with how many were
//!   written before it.
//! - A message read from stdin is read to at most its limit + 1 bytes: an
//!   oversized one is refused without reading the rest.
//! - `--json` on send and `--json --typed` on recv move typed messages
//!   (`unipc::message::typed`): one JSON value per line, each one message
//!   (or, on a byte stream, one frame), so a script and a Rust `Typed<T>`
//!   understand each other. Plain `recv --json` keeps its meaning, an
//!   envelope of the raw bytes.

use std::io::{self, BufRead, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use unipc::message::sysv_mq::Select;
use unipc::message::typed::{self, Encoding, Framed, TypeTag, Typed};
use unipc::message::{Messenger, Received, Tag, Wait};
use unipc::open::{Handle, MessageHandle, OpenOptions, StreamHandle};
use unipc::Endpoint;

use super::usage;
use crate::cli::{RecvArgs, SendArgs};
use crate::out::{self, write_stdout};

fn wait_of(nonblock: bool, timeout: Option<Duration>) -> Wait {
    match (nonblock, timeout) {
        (true, _) => Wait::Never,
        (false, Some(t)) => Wait::For(t),
        (false, None) => Wait::Forever,
    }
}

fn options_of(timeout: Option<Duration>) -> OpenOptions {
    match timeout {
        Some(t) => OpenOptions::new().timeout(t).stall_timeout(t),
        None => OpenOptions::new(),
    }
}

/// Whether `endpoint` moves whole messages (rather than a byte stream).
fn is_message_endpoint(endpoint: &Endpoint) -> bool {
    !matches!(
        endpoint,
        Endpoint::Fifo(_) | Endpoint::Unix(_) | Endpoint::Tcp(_)
    )
}

/// The tag `--priority` / `--type` ask for, refused (a usage error) before
/// anything is opened when the endpoint carries no such tag.
fn tag_of(endpoint: &Endpoint, priority: Option<u32>, type_: Option<i64>) -> anyhow::Result<Tag> {
    let tag = match (priority, type_) {
        (Some(_), Some(_)) => return Err(usage("--priority and --type cannot be given together")),
        (Some(p), None) => Tag::Priority(p),
        (None, Some(t)) => Tag::Type(t),
        (None, None) => return Ok(Tag::None),
    };
    match (endpoint, tag) {
        (Endpoint::PosixMq(_), Tag::Priority(_))
        | (Endpoint::SysvMq(_) | Endpoint::SysvMqId(_), Tag::Type(_)) => Ok(tag),
        (_, _) if !is_message_endpoint(endpoint) => Err(usage(format!(
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

/// What `--lines` / `--null` split the input at.
fn delimiter(args: &SendArgs) -> Option<u8> {
    match (args.lines, args.null) {
        (true, _) => Some(b'\n'),
        (_, true) => Some(0),
        _ => None,
    }
}

/// `unipc send`.
pub fn send(args: SendArgs) -> anyhow::Result<ExitCode> {
    let endpoint = &args.endpoint;
    refuse_shared_memory(endpoint, "send")?;
    super::refuse_private_except_create(endpoint, false)?;
    let timeout = args.timeout.map(Duration::from_secs_f64);
    let tag = tag_of(endpoint, args.priority, args.type_)?;
    if args.nonblock && !is_message_endpoint(endpoint) {
        return Err(usage(format!(
            "{endpoint} is a byte stream: --nonblock applies to message endpoints (use --timeout)"
        )));
    }
    let source: Box<dyn Read> = match &args.data {
        Some(data) => Box::new(io::Cursor::new(data.as_bytes().to_vec())),
        None => Box::new(io::stdin().lock()),
    };
    let mut input = io::BufReader::with_capacity(64 << 10, source);
    if args.json {
        return send_json(&args, tag, &mut input, timeout);
    }
    match options_of(timeout).connect(endpoint)? {
        Handle::Stream(mut stream) => {
            // DATA given on the command line is all there at once.
            let from_stdin = args.data.is_none();
            send_stream(
                endpoint,
                &mut stream,
                &mut input,
                from_stdin,
                delimiter(&args),
            )?;
            stream
                .finish()
                .map_err(|e| peer_gone(endpoint, "finish", e.into()))?;
        }
        Handle::Messages(messages) => {
            let wait = wait_of(args.nonblock, timeout);
            send_messages(&messages, &mut input, delimiter(&args), tag, wait)?;
        }
        _ => return Err(usage(format!("{endpoint}: cannot send to this endpoint"))),
    }
    Ok(ExitCode::SUCCESS)
}

/// A write error, worded for the case that matters: the reader went away.
fn peer_gone(endpoint: &Endpoint, op: &str, err: io::Error) -> anyhow::Error {
    // EPIPE, or ECONNRESET when the reader closed with our data unread.
    if matches!(
        err.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    ) {
        anyhow::anyhow!("{endpoint}: {op}: the reader went away before all the data was sent")
    } else {
        anyhow::Error::new(err).context(format!("{endpoint}: {op}"))
    }
}

/// Copies `input` to the stream as it comes.
///
/// On a FIFO each write is at most `PIPE_BUF` bytes and ends at the last
/// newline inside it when there is one, so whole lines up to `PIPE_BUF`
/// from concurrent writers do not interleave; the part after that newline
/// waits for the rest of its line, but at most [`LINE_GRACE`] once stdin
/// has nothing more (a slow writer is not held back). With a delimiter
/// (`--lines`, `--null`) each record is its own write, on any stream, and
/// always waits for its delimiter: the strict form of the rule.
fn send_stream(
    endpoint: &Endpoint,
    stream: &mut StreamHandle,
    input: &mut io::BufReader<Box<dyn Read>>,
    from_stdin: bool,
    delimiter: Option<u8>,
) -> anyhow::Result<()> {
    let atomic = stream.atomic_write_size();
    let chunk_max = atomic.unwrap_or(64 << 10);
    let mut pending: Vec<u8> = Vec::with_capacity(chunk_max);
    let mut write = |bytes: &[u8]| {
        stream
            .write_all(bytes)
            .map_err(|e| peer_gone(endpoint, "write", e))
    };
    loop {
        // The start of a line held back on a FIFO waits for its end only
        // while more input comes: buffered here, ready in stdin, or
        // arriving within LINE_GRACE. A record of --lines/--null always
        // waits for its delimiter.
        if !pending.is_empty() && delimiter.is_none() {
            let more = !from_stdin || !input.buffer().is_empty() || stdin_ready(LINE_GRACE);
            if !more {
                write(&pending)?;
                pending.clear();
            }
        }
        let available = match input.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(anyhow::Error::new(e).context("reading stdin")),
        };
        if available.is_empty() {
            break;
        }
        let take = available.len().min(chunk_max - pending.len());
        pending.extend_from_slice(&available[..take]);
        input.consume(take);
        match (delimiter, atomic) {
            (Some(d), _) => {
                // One write per record; a record longer than a chunk is
                // written as it fills.
                while let Some(at) = pending.iter().position(|&b| b == d) {
                    write(&pending[..=at])?;
                    pending.drain(..=at);
                }
                if pending.len() >= chunk_max {
                    write(&pending)?;
                    pending.clear();
                }
            }
            (None, Some(_)) => {
                let end = match pending.iter().rposition(|&b| b == b'\n') {
                    Some(at) => at + 1,
                    None if pending.len() >= chunk_max => pending.len(),
                    None => continue,
                };
                write(&pending[..end])?;
                pending.drain(..end);
            }
            (None, None) => {
                write(&pending)?;
                pending.clear();
            }
        }
    }
    if !pending.is_empty() {
        write(&pending)?;
    }
    Ok(())
}

/// How long the start of a line on a FIFO may wait for the rest of it
/// when stdin has nothing more yet.
const LINE_GRACE: Duration = Duration::from_millis(100);

/// Whether stdin has bytes to read (or its end: a read would not block)
/// within `wait`.
fn stdin_ready(wait: Duration) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let stdin = rustix::stdio::stdin();
    let mut fds = [PollFd::new(&stdin, PollFlags::IN)];
    let wait = Timespec::try_from(wait).unwrap_or_default();
    matches!(rustix::event::poll(&mut fds, Some(&wait)), Ok(n) if n > 0)
}

/// Reads one message from `input`: up to `delimiter` (dropped) or end of
/// input, never more than `limit` + 1 bytes. `None` at end of input.
fn next_message(
    input: &mut dyn BufRead,
    delimiter: Option<u8>,
    limit: usize,
    buf: &mut Vec<u8>,
) -> io::Result<Option<()>> {
    buf.clear();
    loop {
        let available = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            // Without a delimiter all of the input is one message, even an
            // empty one; with one, input after the last delimiter is a
            // record of its own only when it is not empty.
            return Ok((delimiter.is_none() || !buf.is_empty()).then_some(()));
        }
        let room = (limit + 1).saturating_sub(buf.len());
        let found = delimiter.and_then(|d| available.iter().take(room).position(|&b| b == d));
        match found {
            Some(at) => {
                buf.extend_from_slice(&available[..at]);
                input.consume(at + 1);
                return Ok(Some(()));
            }
            None => {
                let take = available.len().min(room);
                buf.extend_from_slice(&available[..take]);
                input.consume(take);
                if buf.len() > limit {
                    return Ok(Some(()));
                }
            }
        }
    }
}

fn send_messages(
    messages: &MessageHandle,
    input: &mut dyn BufRead,
    delimiter: Option<u8>,
    tag: Tag,
    wait: Wait,
) -> anyhow::Result<()> {
    let object = messages.object();
    let limit = messages.limits()?.max_message_size;
    let mut buf = Vec::new();
    let mut sent = 0u64;
    let done = |sent: u64| match (delimiter, sent) {
        (None, _) => String::new(),
        (Some(_), n) => format!(" ({n} sent before it)"),
    };
    while next_message(input, delimiter, limit, &mut buf)
        .context("reading stdin")?
        .is_some()
    {
        if buf.len() > limit {
            anyhow::bail!(
                "{object}: message {} is longer than the limit of {limit} bytes (read no further than {} bytes of it){}; nothing more was sent",
                sent + 1,
                limit + 1,
                done(sent)
            );
        }
        if let Err(err) = messages.send_tagged(&buf, tag, wait) {
            if delimiter.is_some() {
                return Err(anyhow::Error::new(err).context(format!(
                    "message {}{}",
                    sent + 1,
                    done(sent)
                )));
            }
            return Err(err.into());
        }
        sent += 1;
        if delimiter.is_none() {
            break;
        }
    }
    Ok(())
}

/// Sends one value, as a message or a frame.
type SendOne<'a> = dyn FnMut(&serde_json::Value) -> unipc::Result<()> + 'a;

/// The longest line `send --json` reads (JSON text, before encoding).
const JSON_LINE_MAX: u64 = 64 << 20;

/// `unipc send --json`: each line one JSON value, sent as a typed message
/// (a frame on a byte stream).
fn send_json(
    args: &SendArgs,
    tag: Tag,
    input: &mut dyn BufRead,
    timeout: Option<Duration>,
) -> anyhow::Result<ExitCode> {
    let endpoint = &args.endpoint;
    let type_tag = args.type_tag.as_deref().map(TypeTag::named);
    let encoding = if args.cbor {
        Encoding::Cbor
    } else {
        Encoding::default()
    };
    let mut handle = options_of(timeout).connect(endpoint)?;
    let mut line = Vec::new();
    let mut number = 0u64;
    let mut sent = 0u64;
    let before = |sent: u64| format!("({sent} message(s) sent before it)");
    let mut send_one: Box<SendOne<'_>> = match &mut handle {
        Handle::Stream(stream) => {
            let mut framed = Framed::<_, serde_json::Value>::new(stream)
                .named(endpoint.to_string())
                .with_encoding(encoding);
            if let Some(t) = type_tag {
                framed = framed.with_type_tag(t);
            }
            Box::new(move |value| framed.send(value))
        }
        Handle::Messages(messages) => {
            let mut typed = Typed::<_, serde_json::Value>::new(&*messages).with_encoding(encoding);
            if let Some(t) = type_tag {
                typed = typed.with_type_tag(t);
            }
            let wait = wait_of(args.nonblock, timeout);
            Box::new(move |value| typed.send_tagged(value, tag, wait))
        }
        _ => return Err(usage(format!("{endpoint}: cannot send to this endpoint"))),
    };
    loop {
        line.clear();
        let read = (&mut *input)
            .take(JSON_LINE_MAX + 1)
            .read_until(b'\n', &mut line)
            .context("reading stdin")?;
        if read == 0 {
            break;
        }
        number += 1;
        if line.len() as u64 > JSON_LINE_MAX {
            anyhow::bail!(
                "stdin line {number} is longer than {JSON_LINE_MAX} bytes {}",
                before(sent)
            );
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let value: serde_json::Value = serde_json::from_slice(&line).map_err(|e| {
            anyhow::anyhow!("stdin line {number} is not JSON: {e} {}", before(sent))
        })?;
        send_one(&value).map_err(|err| {
            anyhow::Error::new(err).context(format!("stdin line {number} {}", before(sent)))
        })?;
        sent += 1;
    }
    drop(send_one);
    if let Handle::Stream(stream) = &mut handle {
        stream
            .finish()
            .map_err(|e| peer_gone(endpoint, "finish", e.into()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `unipc recv`.
pub fn recv(args: RecvArgs) -> anyhow::Result<ExitCode> {
    let endpoint = &args.endpoint;
    refuse_shared_memory(endpoint, "recv")?;
    super::refuse_private_except_create(endpoint, false)?;
    let timeout = args.timeout.map(Duration::from_secs_f64);
    if args.raw && args.json {
        return Err(usage("--raw and --json cannot be given together"));
    }
    let sysv = matches!(endpoint, Endpoint::SysvMq(_) | Endpoint::SysvMqId(_));
    if (args.type_.is_some() || args.except.is_some()) && !sysv {
        return Err(usage(if is_message_endpoint(endpoint) {
            format!("{endpoint}: --type and --except select System V message types")
        } else {
            format!("{endpoint} is a byte stream: --type and --except apply to System V queues")
        }));
    }
    if !is_message_endpoint(endpoint) {
        // With --typed a stream carries typed frames, counted by --count.
        let given: Vec<&str> = [
            (args.json && !args.typed, "--json"),
            (args.raw, "--raw"),
            (args.count.is_some() && !args.typed, "--count"),
            (args.nonblock, "--nonblock"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        if !given.is_empty() {
            return Err(usage(format!(
                "{endpoint} is a byte stream, copied to stdout as it comes: {} apply to message endpoints",
                given.join(", ")
            )));
        }
    }
    if out::stdout_gone() {
        return Ok(ExitCode::SUCCESS);
    }
    // Signals are taken by our own thread from here on; a signal during the
    // bind waits until the socket file it made is registered for removal.
    crate::terminate::install()?;
    let listener = crate::terminate::creating(|steps| {
        let listener = options_of(timeout).listen(endpoint)?;
        super::remove_socket_file_on_signal(endpoint, steps);
        anyhow::Ok(listener)
    })?;
    match listener.accept()? {
        Handle::Stream(mut stream) if args.typed => recv_typed_frames(&args, &mut stream)?,
        Handle::Stream(mut stream) => recv_stream(endpoint, &mut stream)?,
        Handle::Messages(messages) => {
            recv_messages(&args, &messages, wait_of(args.nonblock, timeout))?
        }
        _ => {
            return Err(usage(format!(
                "{endpoint}: cannot receive from this endpoint"
            )))
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn recv_stream(endpoint: &Endpoint, stream: &mut StreamHandle) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(anyhow::Error::new(e).context(format!("{endpoint}: read"))),
        };
        write_stdout(&mut stdout, &buf[..n])?;
    }
}

/// The System V receive selection for `--type N` (as msgrcv reads it) or
/// `--except N` (clap has checked their ranges and that not both are given).
fn selection(type_: Option<i64>, except: Option<i64>) -> Select {
    match (type_, except) {
        (_, Some(n)) => Select::Except(n),
        (Some(n), None) if n > 0 => Select::Exactly(n),
        (Some(n), None) if n < 0 => Select::AtMost(-n),
        _ => Select::Any,
    }
}

fn recv_messages(args: &RecvArgs, messages: &MessageHandle, wait: Wait) -> anyhow::Result<()> {
    let select = selection(args.type_, args.except);
    let mut buf = vec![0u8; messages.recv_buffer_hint()?.max(1)];
    let mut stdout = io::stdout().lock();
    let mut line = Vec::new();
    let count = args.count.unwrap_or(1);
    for written in 0..count {
        // A receive consumes the message: do not take one that could only
        // be lost because nobody reads stdout any more.
        if out::stdout_gone() {
            return Ok(());
        }
        // NATS lets a message be taken tentatively: acknowledged only once
        // it is on stdout, so a signal or a failed write before that
        // leaves it to be delivered again instead of losing it.
        let (got, tentative) = match messages {
            MessageHandle::Nats(nats) if matches!(select, Select::Any) => {
                let delivery = nats.recv_unacked(wait)?;
                let len = delivery.payload().len();
                if len > buf.len() {
                    buf.resize(len, 0);
                }
                buf[..len].copy_from_slice(delivery.payload());
                (Received::new(len, delivery.tag()), Some(delivery))
            }
            _ => (messages.recv_select(select, &mut buf, wait)?, None),
        };
        let data = &buf[..got.len];
        line.clear();
        if args.typed {
            let type_tag = args.type_tag.as_deref().map(TypeTag::named);
            let (_, value) =
                typed::decode_from::<typed::Value>(&messages.object(), data, type_tag)
                    .map_err(|err| {
                        anyhow::Error::new(err).context(format!(
                            "message {} (taken off the queue; {written} message(s) were written before it)",
                            written + 1
                        ))
                    })?;
            serde_json::to_writer(&mut line, &value_to_json(value))?;
            line.push(b'\n');
        } else if args.json {
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
            serde_json::to_writer(&mut line, &object)?;
            line.push(b'\n');
        } else {
            line.extend_from_slice(data);
            if !args.raw {
                line.push(b'\n');
            }
        }
        if let Err(err) = write_stdout(&mut stdout, &line) {
            if let (Some(delivery), MessageHandle::Nats(nats)) = (tentative, messages) {
                nats.release(delivery);
                anyhow::bail!(
                    "{}: message {} ({} bytes) could not be written: {err}; it was not acknowledged, so the server delivers it again; {written} message(s) were written before it",
                    messages.object(),
                    written + 1,
                    got.len,
                );
            }
            anyhow::bail!(
                "{}: message {} ({} bytes) was received but is lost: {err}; {written} message(s) were written before it",
                messages.object(),
                written + 1,
                got.len,
            );
        }
        if let (Some(delivery), MessageHandle::Nats(nats)) = (tentative, messages) {
            nats.ack(delivery)?;
        }
    }
    Ok(())
}

/// `recv --json --typed` on a byte stream: typed frames until end of file
/// or `--count`, each value one line of JSON.
fn recv_typed_frames(args: &RecvArgs, stream: &mut StreamHandle) -> anyhow::Result<()> {
    let endpoint = &args.endpoint;
    let mut framed = Framed::<_, typed::Value>::new(stream).named(endpoint.to_string());
    if let Some(name) = args.type_tag.as_deref() {
        framed = framed.with_type_tag(TypeTag::named(name));
    }
    let mut stdout = io::stdout().lock();
    let mut line = Vec::new();
    let mut written = 0u64;
    while args.count.map_or(true, |count| written < count) {
        let value = match framed.recv() {
            Ok(Some(value)) => value,
            Ok(None) => break,
            Err(err) => {
                return Err(anyhow::Error::new(err).context(format!(
                    "frame {} ({written} written before it)",
                    written + 1
                )))
            }
        };
        line.clear();
        serde_json::to_writer(&mut line, &value_to_json(value))?;
        line.push(b'\n');
        write_stdout(&mut stdout, &line)?;
        written += 1;
    }
    Ok(())
}

/// A decoded value (CBOR's data model, which MessagePack's maps into) as JSON: byte strings as hex text, tags dropped
/// (their content kept), integers beyond 64 bits and map keys that are
/// not text as their decimal or JSON text, NaN and infinities as null.
fn value_to_json(value: typed::Value) -> serde_json::Value {
    use serde_json::Value as J;
    use typed::Value as C;
    match value {
        C::Integer(i) => {
            let wide = i128::from(i);
            if let Ok(n) = i64::try_from(wide) {
                J::from(n)
            } else if let Ok(n) = u64::try_from(wide) {
                J::from(n)
            } else {
                J::String(wide.to_string())
            }
        }
        C::Bytes(bytes) => J::String(hex(&bytes)),
        C::Float(f) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
        C::Text(text) => J::String(text),
        C::Bool(b) => J::Bool(b),
        C::Null => J::Null,
        C::Tag(_, inner) => value_to_json(*inner),
        C::Array(items) => J::Array(items.into_iter().map(value_to_json).collect()),
        C::Map(entries) => J::Object(
            entries
                .into_iter()
                .map(|(key, value)| {
                    let key = match value_to_json(key) {
                        J::String(text) => text,
                        other => other.to_string(),
                    };
                    (key, value_to_json(value))
                })
                .collect(),
        ),
        // `Value` is non-exhaustive.
        _ => J::Null,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Shared memory has nothing to send or receive: it is read and written in
/// place.
fn refuse_shared_memory(endpoint: &Endpoint, verb: &str) -> anyhow::Result<()> {
    if matches!(
        endpoint,
        Endpoint::Shm(_) | Endpoint::SysvShm(_) | Endpoint::SysvShmId(_)
    ) {
        return Err(super::usage(format!(
            "{endpoint}: shared memory cannot {verb}: it is read and written in place; use unipc read / unipc write"
        )));
    }
    Ok(())
}
