//! One address grammar for every facility: `SCHEME:ADDRESS`.
//!
//! | scheme | address | facility |
//! |---|---|---|
//! | `fifo:PATH` | filesystem path | named pipe |
//! | `unix:PATH`, `unix:@NAME` | path or abstract name | UNIX stream socket |
//! | `unix-seqpacket:PATH`, `unix-seqpacket:@NAME` | path or abstract name | UNIX seqpacket socket |
//! | `tcp:HOST:PORT` | host name, IPv4, or `[IPv6]` | TCP stream socket |
//! | `posix-mq:/NAME` | POSIX IPC name | POSIX message queue |
//! | `sysv-mq:KEY`, `sysv-mq:id=N` | decimal, `0x` hex, or `private`; or a queue id | System V message queue |
//! | `unix-dgram:PATH`, `unix-dgram:@NAME` | path or abstract name | UNIX datagram socket |
//! | `udp:HOST:PORT` | host name, IPv4, or `[IPv6]` | UDP datagram socket |
//! | `sem:/NAME` | POSIX IPC name | POSIX named semaphore |
//! | `nats://HOST:PORT/SUBJECT[?stream=S&durable=D]` | a NATS server and a subject | NATS JetStream stream |
//!
//! [`Endpoint`]'s `Display` writes the same grammar back, so a parsed
//! endpoint prints as a string that parses to an equal endpoint. Paths are
//! bytes on Linux: [`Endpoint::parse_os`] takes any path, and `Display`
//! writes a control character or a byte that is not UTF-8 escaped (`\n`,
//! `\xff`), so an error naming the endpoint is always one printable line.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::str::FromStr;

use crate::name::{FsPath, PosixName, SysvKey, UnixAddr};
use crate::{Error, Result};

/// Every scheme the grammar knows, for error messages and help text.
pub const SCHEMES: &[&str] = &[
    "fifo",
    "unix",
    "unix-seqpacket",
    "tcp",
    "posix-mq",
    "sysv-mq",
    "ring",
    "pubsub",
    "unix-dgram",
    "udp",
    "shm",
    "sysv-shm",
    "sem",
    "sysv-sem",
    "nats",
];

/// A network host and port, as written in `tcp:` and `udp:` endpoints.
///
/// The host is kept as written (a name is resolved when the endpoint is
/// used, not when it is parsed); an IPv6 address is written in brackets.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// Host name or IP address, without brackets.
    pub host: String,
    /// Port number.
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A NATS JetStream endpoint: `nats://HOST:PORT/SUBJECT`, optionally
/// `?stream=NAME&durable=NAME`.
///
/// Messages are published to `SUBJECT` and kept in the stream `NAME`
/// (by default the subject with each `.` written `_`); receivers share the
/// durable pull consumer `durable` (by default `unipc`), so each message
/// goes to one of them, as from a queue. The port may be left out (4222).
///
/// ```
/// use unipc::Endpoint;
///
/// let ep: Endpoint = "nats://127.0.0.1/jobs.eu".parse()?;
/// let Endpoint::Nats(address) = &ep else { unreachable!() };
/// assert_eq!(address.stream_name(), "jobs_eu");
/// assert_eq!(ep.to_string(), "nats://127.0.0.1:4222/jobs.eu");
/// assert!("nats://h:4222/jobs.*".parse::<Endpoint>().is_err());
/// # Ok::<(), unipc::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct NatsAddress {
    /// The server.
    pub server: HostPort,
    /// The subject messages are published to (no wildcards).
    pub subject: String,
    /// The stream, when not the default.
    pub stream: Option<String>,
    /// The durable consumer receivers share, when not the default.
    pub durable: Option<String>,
}

/// The longest subject an endpoint takes, in bytes.
pub const MAX_SUBJECT: usize = 1024;

/// The NATS port when an endpoint gives none.
pub const NATS_DEFAULT_PORT: u16 = 4222;

impl NatsAddress {
    /// The stream's name: the one given, or the subject with `.` as `_`.
    pub fn stream_name(&self) -> String {
        self.stream
            .clone()
            .unwrap_or_else(|| self.subject.replace('.', "_"))
    }

    /// The durable consumer's name: the one given, or `unipc`.
    pub fn durable_name(&self) -> String {
        self.durable.clone().unwrap_or_else(|| "unipc".to_owned())
    }

    /// The server as a client connects to it: `nats://HOST:PORT`.
    pub fn server_url(&self) -> String {
        format!("nats://{}", self.server)
    }

    fn parse(input: &str, address: &str) -> Result<NatsAddress> {
        let rest = address
            .strip_prefix("//")
            .ok_or_else(|| bad(input, "expected nats://HOST:PORT/SUBJECT"))?;
        let (server, rest) = rest
            .split_once('/')
            .ok_or_else(|| bad(input, "expected /SUBJECT after the server"))?;
        if server.contains('@') {
            return Err(bad(
                input,
                "a user and password in the server address are not supported",
            ));
        }
        let server = if server.ends_with(']') || !server.contains(':') {
            parse_host_port(input, &format!("{server}:{NATS_DEFAULT_PORT}"))?
        } else {
            parse_host_port(input, server)?
        };
        let (subject, query) = rest.split_once('?').unwrap_or((rest, ""));
        check_subject(input, subject)?;
        let mut address = NatsAddress {
            server,
            subject: subject.to_owned(),
            stream: None,
            durable: None,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| bad(input, format!("{pair:?} is not KEY=VALUE")))?;
            check_nats_name(input, key, value)?;
            let slot = match key {
                "stream" => &mut address.stream,
                "durable" => &mut address.durable,
                other => {
                    return Err(bad(
                        input,
                        format!("unknown option {other:?}; options: stream, durable"),
                    ))
                }
            };
            if slot.replace(value.to_owned()).is_some() {
                return Err(bad(input, format!("{key} is given twice")));
            }
        }
        Ok(address)
    }
}

/// A subject to publish to: dot-separated tokens, none empty, with no
/// white space, control character or wildcard (`*`, `>`).
fn check_subject(input: &str, subject: &str) -> Result<()> {
    if subject.is_empty() {
        return Err(bad(input, "the subject is empty"));
    }
    // A server refuses a control line over 4 KiB (`max_control_line`),
    // and a publish's line holds the subject twice over (subject and
    // reply): well under that.
    if subject.len() > MAX_SUBJECT {
        return Err(bad(
            input,
            format!(
                "the subject is {} bytes: at most {MAX_SUBJECT} (a server refuses longer control lines)",
                subject.len()
            ),
        ));
    }
    if let Some(c) = subject
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '*' | '>'))
    {
        return Err(bad(
            input,
            format!("subject {subject:?} holds {c:?}: a subject to publish to has no white space and no wildcard"),
        ));
    }
    if subject.split('.').any(str::is_empty) {
        return Err(bad(
            input,
            format!("subject {subject:?} has an empty token (a leading, trailing or double '.')"),
        ));
    }
    Ok(())
}

/// A stream or consumer name: 1 to 255 characters, none of them white
/// space, `.`, `*`, `>`, `/` or `\` (the server's rule).
fn check_nats_name(input: &str, key: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.len() > 255 {
        return Err(bad(input, format!("{key} must be 1 to 255 characters")));
    }
    if let Some(c) = value.chars().find(|c| {
        c.is_whitespace() || c.is_control() || matches!(c, '.' | '*' | '>' | '/' | '\\' | '&' | '?')
    }) {
        return Err(bad(input, format!("{key} {value:?} may not hold {c:?}")));
    }
    Ok(())
}

impl fmt::Display for NatsAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "//{}/{}", self.server, self.subject)?;
        let mut sep = '?';
        for (key, value) in [("stream", &self.stream), ("durable", &self.durable)] {
            if let Some(value) = value {
                write!(f, "{sep}{key}={value}")?;
                sep = '&';
            }
        }
        Ok(())
    }
}

/// Where a facility's object lives: the typed form of `SCHEME:ADDRESS`.
///
/// ```
/// use unipc::Endpoint;
///
/// let ep: Endpoint = "tcp:[::1]:8080".parse()?;
/// assert_eq!(ep.scheme(), "tcp");
/// assert_eq!(ep.to_string(), "tcp:[::1]:8080");
///
/// let err = "carrier-pigeon:home".parse::<Endpoint>().unwrap_err();
/// assert!(err.to_string().contains("unix-seqpacket"));
/// # Ok::<(), unipc::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `fifo:PATH`.
    Fifo(FsPath),
    /// `unix:PATH` or `unix:@NAME`.
    Unix(UnixAddr),
    /// `unix-seqpacket:PATH` or `unix-seqpacket:@NAME`.
    UnixSeqpacket(UnixAddr),
    /// `tcp:HOST:PORT`.
    Tcp(HostPort),
    /// `posix-mq:/NAME`.
    PosixMq(PosixName),
    /// `sysv-mq:KEY`.
    SysvMq(SysvKey),
    /// `ring:/NAME`: a shared-memory ring (one writer, one reader).
    Ring(PosixName),
    /// `pubsub:/NAME`: a shared-memory publish-subscribe object.
    PubSub(PosixName),
    /// `sysv-mq:id=N`: a System V queue by its identifier (as `ipcs` and
    /// `unipc create sysv-mq:private` print it), the only way to name a
    /// private queue.
    SysvMqId(i32),
    /// `unix-dgram:PATH` or `unix-dgram:@NAME`.
    UnixDgram(UnixAddr),
    /// `udp:HOST:PORT`.
    Udp(HostPort),
    /// `shm:/NAME`: a POSIX shared-memory object.
    Shm(PosixName),
    /// `sysv-shm:KEY`: a System V shared-memory segment.
    SysvShm(SysvKey),
    /// `sysv-shm:id=N`: a System V segment by its identifier (as `ipcs -m`
    /// prints it), the only way to name a private segment.
    SysvShmId(i32),
    /// `sem:/NAME`: a POSIX named semaphore.
    Sem(PosixName),
    /// `sysv-sem:KEY`: a System V semaphore set.
    SysvSem(SysvKey),
    /// `sysv-sem:id=N`: a System V semaphore set by its identifier (as
    /// `ipcs -s` prints it), the only way to name a private set.
    SysvSemId(i32),
    /// `nats://HOST:PORT/SUBJECT`: a NATS JetStream stream.
    Nats(NatsAddress),
}

impl Endpoint {
    /// The scheme, as written before the first `:`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Endpoint::Fifo(_) => "fifo",
            Endpoint::Unix(_) => "unix",
            Endpoint::UnixSeqpacket(_) => "unix-seqpacket",
            Endpoint::Tcp(_) => "tcp",
            Endpoint::PosixMq(_) => "posix-mq",
            Endpoint::Ring(_) => "ring",
            Endpoint::PubSub(_) => "pubsub",
            Endpoint::SysvMq(_) | Endpoint::SysvMqId(_) => "sysv-mq",
            Endpoint::UnixDgram(_) => "unix-dgram",
            Endpoint::Udp(_) => "udp",
            Endpoint::Shm(_) => "shm",
            Endpoint::SysvShm(_) | Endpoint::SysvShmId(_) => "sysv-shm",
            Endpoint::Sem(_) => "sem",
            Endpoint::SysvSem(_) | Endpoint::SysvSemId(_) => "sysv-sem",
            Endpoint::Nats(_) => "nats",
        }
    }

    /// The facility's entry in the registry: what [`crate::facility::for_scheme`]
    /// finds for [`Endpoint::scheme`] (`sysv-mq:id=N` is `sysv-mq` too).
    ///
    /// ```
    /// use unipc::Endpoint;
    ///
    /// let ep: Endpoint = "sysv-mq:id=7".parse()?;
    /// assert_eq!(ep.facility().name, "sysv-mq");
    /// assert!(ep.facility().properties.reliable);
    /// # Ok::<(), unipc::Error>(())
    /// ```
    pub fn facility(&self) -> &'static crate::facility::Facility {
        // Every scheme has exactly one entry: checked by the facility
        // registry's tests, so this lookup cannot miss.
        crate::facility::for_scheme(self.scheme())
            .expect("every endpoint scheme has an entry in facility::all()")
    }
}

fn bad(input: &str, reason: impl Into<String>) -> Error {
    Error::InvalidEndpoint {
        input: input.to_owned(),
        reason: reason.into(),
    }
}

/// Re-labels a name error as an endpoint error, keeping its reason.
fn in_endpoint(input: &str, err: Error) -> Error {
    match err {
        Error::InvalidName {
            kind,
            input: name,
            reason,
        } => bad(input, format!("{kind} {name:?} {reason}")),
        other => other,
    }
}

fn parse_host_port(input: &str, address: &str) -> Result<HostPort> {
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| bad(input, "an IPv6 address opened with '[' needs a closing ']'"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| bad(input, "expected ':PORT' after ']'"))?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad(
                input,
                format!("{host:?} inside brackets is not an IPv6 address"),
            ));
        }
        (host, port)
    } else {
        let (host, port) = address
            .rsplit_once(':')
            .ok_or_else(|| bad(input, "expected HOST:PORT"))?;
        if host.contains(':') {
            return Err(bad(input, "write an IPv6 address in brackets: [::1]:PORT"));
        }
        (host, port)
    };
    if host.is_empty() {
        return Err(bad(input, "the host is empty"));
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err(bad(
            input,
            format!("{host:?} is not a host name or address"),
        ));
    }
    let port = port.parse::<u16>().map_err(|_| {
        bad(
            input,
            format!("port {port:?} is not a number from 0 to 65535"),
        )
    })?;
    Ok(HostPort {
        host: host.to_owned(),
        port,
    })
}

impl Endpoint {
    /// Parses `SCHEME:ADDRESS` where the address may be any bytes: a path
    /// (`fifo:`, `unix:`, `unix-seqpacket:`, `unix-dgram:`) is taken as the
    /// bytes given, as Linux takes it; every other part must be UTF-8.
    ///
    /// ```
    /// use std::ffi::OsStr;
    /// use std::os::unix::ffi::OsStrExt;
    /// use unipc::Endpoint;
    ///
    /// let ep = Endpoint::parse_os(OsStr::from_bytes(b"fifo:/tmp/caf\xe9"))?;
    /// assert_eq!(ep.to_string(), "fifo:/tmp/caf\\xe9");
    /// # Ok::<(), unipc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidEndpoint`] naming the input and what is wrong.
    pub fn parse_os(input: &OsStr) -> Result<Endpoint> {
        let bytes = input.as_bytes();
        // Kept as given when it is text (the error's Debug quoting escapes
        // it); escaped when it is not, so no byte is lost from the message.
        let shown = match input.to_str() {
            Some(text) => text.to_owned(),
            None => crate::name::escaped(bytes),
        };
        let Some(colon) = bytes.iter().position(|&b| b == b':') else {
            return Err(bad(
                &shown,
                format!("expected SCHEME:ADDRESS; schemes: {}", SCHEMES.join(", ")),
            ));
        };
        let (scheme, raw_address) = (&bytes[..colon], &bytes[colon + 1..]);
        let path = || OsStr::from_bytes(raw_address);
        let unix = || {
            match raw_address.strip_prefix(b"@") {
                Some(name) => UnixAddr::abstract_name(name),
                None => UnixAddr::path(path()),
            }
            .map_err(|e| in_endpoint(&shown, e))
        };
        let text = || {
            std::str::from_utf8(raw_address).map_err(|_| {
                bad(
                    &shown,
                    "the address is not UTF-8 (only paths may hold any bytes)",
                )
            })
        };
        Ok(match scheme {
            b"fifo" => Endpoint::Fifo(FsPath::new(path()).map_err(|e| in_endpoint(&shown, e))?),
            b"unix" => Endpoint::Unix(unix()?),
            b"unix-seqpacket" => Endpoint::UnixSeqpacket(unix()?),
            b"unix-dgram" => Endpoint::UnixDgram(unix()?),
            b"tcp" => Endpoint::Tcp(parse_host_port(&shown, text()?)?),
            b"udp" => Endpoint::Udp(parse_host_port(&shown, text()?)?),
            b"posix-mq" => Endpoint::PosixMq(text()?.parse().map_err(|e| in_endpoint(&shown, e))?),
            b"sysv-mq" => match text()?.strip_prefix("id=") {
                Some(id) => Endpoint::SysvMqId(parse_id(&shown, id)?),
                None => Endpoint::SysvMq(text()?.parse().map_err(|e| in_endpoint(&shown, e))?),
            },
            b"ring" => Endpoint::Ring(text()?.parse().map_err(|e| in_endpoint(&shown, e))?),
            b"pubsub" => Endpoint::PubSub(text()?.parse().map_err(|e| in_endpoint(&shown, e))?),
            b"shm" => Endpoint::Shm(text()?.parse().map_err(|e| in_endpoint(&shown, e))?),
            b"sysv-shm" => match text()?.strip_prefix("id=") {
                Some(id) => Endpoint::SysvShmId(parse_id(&shown, id)?),
                None => Endpoint::SysvShm(text()?.parse().map_err(|e| in_endpoint(&shown, e))?),
            },
            b"sem" => Endpoint::Sem(text()?.parse().map_err(|e| in_endpoint(&shown, e))?),
            b"sysv-sem" => match text()?.strip_prefix("id=") {
                Some(id) => Endpoint::SysvSemId(parse_id(&shown, id)?),
                None => Endpoint::SysvSem(text()?.parse().map_err(|e| in_endpoint(&shown, e))?),
            },
            b"nats" => Endpoint::Nats(NatsAddress::parse(&shown, text()?)?),
            other => {
                return Err(bad(
                    &shown,
                    format!(
                        "unknown scheme {:?}; schemes: {}",
                        crate::name::escaped(other),
                        SCHEMES.join(", ")
                    ),
                ));
            }
        })
    }
}

/// A System V identifier: a decimal number from 0 to `i32::MAX`.
fn parse_id(input: &str, id: &str) -> Result<i32> {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = id.parse::<i32>() {
            return Ok(n);
        }
    }
    Err(bad(
        input,
        format!(
            "id {id:?} is not a System V identifier (a decimal number from 0 to {})",
            i32::MAX
        ),
    ))
}

impl FromStr for Endpoint {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self> {
        Endpoint::parse_os(OsStr::new(input))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme())?;
        match self {
            Endpoint::Fifo(path) => write!(f, "{path}"),
            Endpoint::Unix(addr) | Endpoint::UnixSeqpacket(addr) | Endpoint::UnixDgram(addr) => {
                write!(f, "{addr}")
            }
            Endpoint::Tcp(hp) | Endpoint::Udp(hp) => write!(f, "{hp}"),
            Endpoint::PosixMq(name) | Endpoint::Ring(name) | Endpoint::PubSub(name) => {
                write!(f, "{name}")
            }
            Endpoint::SysvMq(key) => write!(f, "{key}"),
            Endpoint::SysvMqId(id) => write!(f, "id={id}"),
            Endpoint::Shm(name) => write!(f, "{name}"),
            Endpoint::SysvShm(key) => write!(f, "{key}"),
            Endpoint::SysvShmId(id) => write!(f, "id={id}"),
            Endpoint::Sem(name) => write!(f, "{name}"),
            Endpoint::SysvSem(key) => write!(f, "{key}"),
            Endpoint::SysvSemId(id) => write!(f, "id={id}"),
            Endpoint::Nats(address) => write!(f, "{address}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_each_scheme() {
        let cases = [
            "fifo:/tmp/a.fifo",
            "unix:/run/a.sock",
            "unix:@abstract",
            "unix-seqpacket:rel/path.sock",
            "unix-seqpacket:@x",
            "tcp:localhost:80",
            "tcp:127.0.0.1:0",
            "tcp:[::1]:8080",
            "posix-mq:/jobs",
            "sysv-mq:0x1234",
            "sysv-mq:private",
            "sysv-mq:id=0",
            "sysv-mq:id=2147483647",
            "unix-dgram:@d",
            "udp:[fe80::1]:9",
            "shm:/frames",
            "sysv-shm:0x2a",
            "sysv-shm:private",
            "sysv-shm:id=17",
            "sem:/ticket",
            "sysv-sem:0x2b",
            "sysv-sem:private",
            "sysv-sem:id=18",
            "nats://127.0.0.1:4222/jobs",
            "nats://[::1]:4223/jobs.eu.high?stream=JOBS",
            "nats://nats.example:1/a?stream=S&durable=workers",
        ];
        for case in cases {
            let ep: Endpoint = case.parse().unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(ep.to_string(), case);
        }
    }

    #[test]
    fn refuses_malformed_endpoints_with_reasons() {
        let cases = [
            ("nocolon", "expected SCHEME:ADDRESS"),
            ("smoke:signal", "unknown scheme \"smoke\""),
            ("fifo:", "is empty"),
            ("unix:@", "empty"),
            ("tcp:host", "expected HOST:PORT"),
            ("tcp::80", "host is empty"),
            ("tcp:h:99999", "not a number from 0 to 65535"),
            ("tcp:::1:80", "brackets"),
            ("tcp:[::1:80", "closing ']'"),
            ("tcp:[nope]:80", "not an IPv6 address"),
            ("posix-mq:jobs", "must start with '/'"),
            ("sysv-mq:0xZZ", "hexadecimal"),
            ("sysv-mq:0x+5", "hexadecimal"),
            ("sysv-mq:+5", "decimal"),
            ("sysv-mq:id=", "not a System V identifier"),
            ("sysv-mq:id=-1", "not a System V identifier"),
            ("sysv-mq:id=2147483648", "not a System V identifier"),
            ("tcp:a\u{1b}b:80", "not a host name"),
            ("shm:frames", "must start with '/'"),
            ("sysv-shm:0xZZ", "hexadecimal"),
            ("sysv-shm:id=x", "not a System V identifier"),
            ("sem:ticket", "must start with '/'"),
            ("sysv-sem:0xZZ", "hexadecimal"),
            ("sysv-sem:id=-3", "not a System V identifier"),
            ("nats:host:4222/jobs", "expected nats://"),
            ("nats://host:4222", "expected /SUBJECT"),
            ("nats://host:4222/", "subject is empty"),
            ("nats://host:4222/jobs.>", "wildcard"),
            ("nats://host:4222/a..b", "empty token"),
            ("nats://host:4222/a b", "white space"),
            ("nats://host:99999/a", "not a number"),
            ("nats://host/a?stream=x.y", "may not hold '.'"),
            ("nats://host/a?queue=x", "unknown option"),
            ("nats://host/a?stream=x&stream=y", "given twice"),
            (
                Box::leak(format!("nats://h/{}", "a".repeat(1025)).into_boxed_str()),
                "at most 1024",
            ),
            ("nats://host/a?stream", "not KEY=VALUE"),
            ("nats://u:p@host:1/a", "user and password"),
        ];
        for (input, want) in cases {
            let err = input.parse::<Endpoint>().unwrap_err().to_string();
            assert!(err.contains(want), "{input}: {err:?} lacks {want:?}");
            assert!(
                err.contains(&format!("{input:?}")),
                "{err} does not quote the input"
            );
        }
    }

    fn endpoint_strategy() -> impl Strategy<Value = Endpoint> {
        let path = "[a-zA-Z0-9_./:@-]{1,60}".prop_filter_map("valid path", |p| FsPath::new(p).ok());
        let unix_addr = prop_oneof![
            "[a-zA-Z0-9_./:-]{1,100}".prop_filter_map("path", |p| UnixAddr::path(p).ok()),
            "[a-zA-Z0-9_./:@ -]{1,100}"
                .prop_filter_map("abstract", |n| UnixAddr::abstract_name(n).ok()),
        ];
        let host_port = (
            prop_oneof![
                "[a-z][a-z0-9.-]{0,30}",
                any::<std::net::Ipv4Addr>().prop_map(|a| a.to_string()),
                any::<std::net::Ipv6Addr>().prop_map(|a| a.to_string()),
            ],
            any::<u16>(),
        )
            .prop_map(|(host, port)| HostPort { host, port });
        prop_oneof![
            path.prop_map(Endpoint::Fifo),
            unix_addr.clone().prop_map(Endpoint::Unix),
            unix_addr.clone().prop_map(Endpoint::UnixSeqpacket),
            unix_addr.prop_map(Endpoint::UnixDgram),
            host_port.clone().prop_map(Endpoint::Tcp),
            host_port.clone().prop_map(Endpoint::Udp),
            (
                host_port,
                "[a-zA-Z0-9_-]{1,12}(\\.[a-zA-Z0-9_-]{1,12}){0,3}",
                proptest::option::of("[a-zA-Z0-9_-]{1,20}"),
                proptest::option::of("[a-zA-Z0-9_-]{1,20}"),
            )
                .prop_map(|(server, subject, stream, durable)| Endpoint::Nats(
                    NatsAddress {
                        server,
                        subject,
                        stream,
                        durable,
                    }
                )),
            "/[a-zA-Z0-9_.-]{1,255}"
                .prop_filter_map("posix", |n| PosixName::new(&n).ok())
                .prop_map(Endpoint::PosixMq),
            any::<i32>()
                .prop_map(|k| if k == 0 {
                    SysvKey::Private
                } else {
                    SysvKey::Key(k)
                })
                .prop_map(Endpoint::SysvMq),
            (0..=i32::MAX).prop_map(Endpoint::SysvMqId),
            "/[a-zA-Z0-9_.-]{1,255}"
                .prop_filter_map("posix", |n| PosixName::new(&n).ok())
                .prop_map(Endpoint::Shm),
            "/[a-zA-Z0-9_.-]{1,255}"
                .prop_filter_map("posix", |n| PosixName::new(&n).ok())
                .prop_map(Endpoint::Ring),
            "/[a-zA-Z0-9_.-]{1,255}"
                .prop_filter_map("posix", |n| PosixName::new(&n).ok())
                .prop_map(Endpoint::PubSub),
            any::<i32>()
                .prop_map(|k| if k == 0 {
                    SysvKey::Private
                } else {
                    SysvKey::Key(k)
                })
                .prop_map(Endpoint::SysvShm),
            (0..=i32::MAX).prop_map(Endpoint::SysvShmId),
            "/[a-zA-Z0-9_.-]{1,255}"
                .prop_filter_map("posix", |n| PosixName::new(&n).ok())
                .prop_map(Endpoint::Sem),
            any::<i32>()
                .prop_map(|k| if k == 0 {
                    SysvKey::Private
                } else {
                    SysvKey::Key(k)
                })
                .prop_map(Endpoint::SysvSem),
            (0..=i32::MAX).prop_map(Endpoint::SysvSemId),
        ]
    }

    proptest! {
        #[test]
        fn display_round_trips(ep in endpoint_strategy()) {
            let text = ep.to_string();
            let back: Endpoint = text.parse().map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            prop_assert_eq!(back, ep);
        }

        #[test]
        fn parse_never_panics(input in "\\PC{0,80}") {
            let _ = input.parse::<Endpoint>();
        }
    }
}
