//! The command line, as clap reads it.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use unipc::Endpoint;

/// unipc — every UNIX IPC facility behind one tool: send and receive through
/// any of them, inspect them, and measure them side by side.
///
/// Endpoints name an object and its facility:
///   byte streams  fifo:PATH  unix:PATH  unix:@NAME  tcp:HOST:PORT  tcp:[::1]:PORT
///   messages      posix-mq:/NAME  sysv-mq:KEY  sysv-mq:id=N  unix-seqpacket:PATH
///                 unix-dgram:PATH  unix-dgram:@NAME  udp:HOST:PORT
///   shared memory shm:/NAME  sysv-shm:KEY  sysv-shm:id=N   (unipc read / unipc write)
///   semaphores    sem:/NAME   (unipc sem post / wait / get)
///   semaphores    sysv-sem:KEY  sysv-sem:id=N                (unipc semop)
///
/// --timeout SECS bounds every wait of a command: for the peer to appear, and
/// for each step of the transfer (a stream that makes no progress, a message
/// that does not come, a queue that stays full) — a stopped peer is an error
/// after SECS, never a hang. Over TCP, SECS is also the connection's user
/// timeout: a peer host that vanishes is an error SECS after its last
/// acknowledgement, even while no write waits.
///
/// Exit status: 0 success, 1 runtime error, 2 usage error.
// The doc comment is the --help text, verbatim: `[::1]` is an address there,
// not a link.
#[allow(rustdoc::broken_intra_doc_links)]
#[derive(Debug, Parser)]
#[command(
    name = "unipc",
    version,
    propagate_version = true,
    verbatim_doc_comment
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Measure every facility between two processes, side by side.
    ///
    /// Latency (ping-pong round trips, 64 B to 64 KiB) and throughput (64 B to
    /// 1 MiB), through unipc and through the raw system calls, blocking and
    /// busy-polling, on different CPUs and on one CPU.
    ///
    /// Example: unipc bench --quick --facility pipe --facility unix --json out.json
    Bench(BenchArgs),

    /// Which facility? One table, a facility per row, its properties as columns.
    ///
    /// --need keeps the facilities that have every property listed; --bench
    /// orders them by a latency a `unipc bench --json` run measured; --long shows
    /// every property and limit of each facility.
    ///
    /// Examples: unipc compare --need boundaries,priorities;
    ///           unipc compare --need unrelated-processes --bench bench.json
    Compare(CompareArgs),

    /// Send DATA (or all of stdin) to an endpoint.
    ///
    /// A byte stream (FIFO opened for writing, socket connected) gets the bytes; a
    /// message endpoint gets them as one message, or with --lines one message per
    /// line. A reader that goes away is an error (exit 1), never a death by SIGPIPE;
    /// on a socket, send ends by waiting for the receiver to close, so a receiver
    /// that died with data unread is an error too. On a FIFO every write is at most
    /// PIPE_BUF (4096) bytes and ends at a line end when the chunk has one, so lines
    /// up to 4096 bytes from concurrent senders do not interleave (a line's start
    /// waits at most 0.1 s for its end when stdin pauses; --lines always waits).
    ///
    /// Examples: unipc send unix:/run/app.sock hello;
    ///           echo job | unipc send posix-mq:/jobs --priority 5;
    ///           seq 1 1000 | unipc send posix-mq:/jobs --lines
    Send(SendArgs),

    /// Receive from an endpoint and write it to stdout.
    ///
    /// A byte stream (FIFO opened for reading; socket bound, listening, one peer
    /// accepted) is copied until end of file; a closed stdout ends it quietly. A
    /// message endpoint gives --count messages, each followed by a newline (or
    /// --raw, or --json); on unix-seqpacket they come from one peer after another.
    /// A message is taken off the queue only while stdout is still open; one that
    /// was taken and then could not be written is reported on stderr (exit 1).
    ///
    /// Examples: unipc recv fifo:/tmp/f; unipc recv posix-mq:/jobs --count 3 --json;
    ///           unipc recv sysv-mq:0x1234 --type -5
    Recv(RecvArgs),

    /// Create a named object that outlives the command (queue, shared memory or FIFO).
    ///
    /// Examples: unipc create posix-mq:/jobs --max-messages 8 --max-size 1024 --mode 600;
    ///           unipc create ring:/ticks --capacity 1024 --max-size 64;
    ///           unipc create pubsub:/prices --capacity 256 --max-size 64 --subscribers 3 --overwrite;
    ///           unipc create shm:/frames --size 64K --exclusive;
    ///           unipc create sysv-shm:0x1234 --size 1M;
    ///           unipc create sem:/slots --value 4 --mode 600
    ///           unipc create sysv-sem:0x1234 --count 3 --values 1,0,3 --mode 600
    Create(CreateArgs),

    /// Show a queue's or a shared-memory object's attributes and counts.
    ///
    /// Examples: unipc stat sysv-mq:0x1234 --json; unipc stat shm:/frames
    Stat(StatArgs),

    /// Remove named objects (queues, shared memory, semaphores, FIFOs, stale
    /// socket files), each in turn: one that cannot be removed is reported on
    /// its own line and the rest are still removed. Exits 1 when any removal
    /// failed, 2 when one cannot be removed by its nature (a network endpoint).
    ///
    /// Examples: unipc rm posix-mq:/jobs; unipc rm sysv-shm:0x1234 sem:/slots fifo:/tmp/f
    Rm(RmArgs),

    /// Print a range of a shared-memory object: raw bytes, or a hexdump with --hex.
    ///
    /// Reads --length bytes (default: to the end) from --offset (default 0); a
    /// range past the end is an error naming both sizes (exit 1).
    ///
    /// Examples: unipc read shm:/frames --offset 4K --length 64 --hex;
    ///           unipc read sysv-shm:0x1234 > copy.bin
    Read(ReadArgs),

    /// Write DATA (or stdin) into a shared-memory object at --offset.
    ///
    /// Never grows the object: data that would run past its end is refused,
    /// naming both sizes (exit 1), and nothing is written.
    ///
    /// Examples: unipc write shm:/frames --offset 16 hello;
    ///           unipc write sysv-shm:0x1234 < image.bin
    Write(WriteArgs),

    /// FIFO operations.
    ///
    /// Example: unipc fifo create /tmp/app.fifo --mode 660
    Fifo {
        /// What to do with the FIFO.
        #[command(subcommand)]
        command: FifoCommand,
    },

    /// Run a command on a pseudoterminal, relay it, and exit with its status.
    ///
    /// Example: unipc pty -- /bin/sh -c 'tty; exit 3'
    Pty(PtyArgs),

    /// Hold a file lock while a command runs, or (--test) show who holds one.
    ///
    /// Like flock(1), with byte ranges and three kinds of lock (--kind):
    ///   ofd    (default) an fcntl open-file-description lock on --range
    ///   posix  a classic fcntl record lock on --range, owned by this process
    ///   flock  a flock(2) lock on the whole file (--range is refused)
    /// On Linux flock locks and fcntl locks do not see each other: a flock lock
    /// never blocks an ofd or posix lock, nor the reverse. OFD and classic POSIX
    /// locks do conflict, with each other as with themselves (Python's
    /// fcntl.lockf takes posix locks; flock(1) takes flock locks).
    ///
    /// FILE is created (mode 0644 less the umask) when missing; a symbolic link
    /// is refused, not followed, and so is anything but a regular file or a
    /// directory. CMD inherits stdin, stdout and stderr but not the lock's
    /// descriptor, so the lock lasts exactly as long as this unipc: SIGINT,
    /// SIGTERM and SIGHUP sent to unipc are passed on to CMD, and unipc exits
    /// with CMD's status (128 + N when a signal N killed it) after releasing
    /// the lock. If unipc itself is killed with SIGKILL, the kernel releases the
    /// lock and CMD is killed with it (SIGKILL), so CMD never runs without it.
    ///
    /// A lock not granted at once with --nonblock, or within --timeout, exits 1
    /// naming the holder's pid where it can be found. --test prints each lock
    /// that conflicts with the one asked (pid, kind, range; of every kind unless
    /// --kind is given) or that the range is free, and changes nothing.
    ///
    /// Examples: unipc lock /tmp/app.lock -- make install;
    ///           unipc lock db.lock --range 0:4096 --timeout 5 -- ./migrate;
    ///           unipc lock db.lock --test --range 0:1 --json
    #[command(verbatim_doc_comment)]
    Lock(LockArgs),
    /// Semaphore operations: post, wait, get (create with `unipc create sem:/NAME`).
    ///
    /// Whoever may write a semaphore (its owner, and anyone its mode lets
    /// write) can also truncate its file in /dev/shm, and a process using it
    /// then dies of SIGBUS (exit 135), this one included: as with every named
    /// POSIX semaphore, use only one whose writers you trust (`unipc stat`
    /// shows its owner and mode).
    ///
    /// Example: unipc create sem:/slots --value 2; unipc sem wait sem:/slots --timeout 5
    Sem {
        /// What to do with the semaphore.
        #[command(subcommand)]
        command: SemCommand,
    },
    /// Apply operations to a System V semaphore set, all at once or none.
    ///
    /// Each OP is INDEX:+N (add N), INDEX:-N (take N, waiting until the value is
    /// at least N) or INDEX:0 (wait until the value is 0); all the OPs of one
    /// command are one atomic semop: while any of them cannot proceed, none is
    /// applied. With -- CMD, CMD runs once they are applied and unipc exits with
    /// CMD's status (128 + the signal that killed it); SIGINT, SIGTERM and SIGHUP
    /// are passed on to CMD. With --undo the kernel reverts the operations when
    /// unipc exits, however it ends (SIGKILL included), so they are held exactly
    /// while CMD runs; if unipc itself is killed, CMD is killed with it
    /// (SIGKILL), so it never runs on without the hold.
    ///
    /// Examples: unipc create sysv-sem:0x1234 --count 2 --values 1,0;
    ///           unipc semop sysv-sem:0x1234 0:-1 --undo -- ./critical-section.sh;
    ///           unipc semop sysv-sem:0x1234 0:-1 1:+1 --timeout 5;
    ///           unipc semop sysv-sem:0x1234 1:0 --nowait
    Semop(SemopArgs),
    /// Send a signal to a process, or wait for signals and print who sent them.
    ///
    /// Signals are named TERM, SIGTERM, RTMIN, RTMIN+3, RTMAX-1 or by number.
    ///
    /// Example: unipc signal wait RTMIN+1 --count 2 --json; unipc signal send 1234 RTMIN+1 --value 42
    Signal {
        /// What to do.
        #[command(subcommand)]
        command: SignalCommand,
    },
    /// List the IPC objects on the host that you can see, in one table.
    ///
    /// System V queues, semaphore sets and segments (key, id, owner, mode, sizes,
    /// counts, creator and last-operation pids, * after a pid that is not alive);
    /// POSIX queues (the mqueue filesystem, mounted detached when it is mounted
    /// nowhere), shared memory, rings, pubsubs and named semaphores of /dev/shm;
    /// bound UNIX sockets (/proc/net/unix); FIFOs under --path; file locks
    /// (/proc/locks). Each with the live processes that hold it open (o), mapped
    /// (m), reading (r) or writing (w). What could not be read
    /// (another user's /proc/PID/fd) is said on stderr, or under "unreadable" in
    /// --json, whose schema is unipc-ls/1: { "schema", "objects": [ { "kind",
    /// "name" (an endpoint for unipc stat / rm), "owner", "mode", ... } ],
    /// "unreadable": [ { "what", "reason" } ] }.
    ///
    /// Examples: unipc ls; unipc ls --kind sysv-shm --kind shm --json
    Ls(LsArgs),
    /// Remove the IPC objects no live process can be shown to use.
    ///
    /// A System V segment with no attachment whose creator and last user are
    /// dead; a System V queue or semaphore set, or a POSIX queue, shared-memory
    /// object or semaphore, that unipc made, whose creator is dead and that no
    /// live process holds (or, for System V, last used). Objects with no unipc
    /// record go only with --unowned, objects their creator kept on purpose
    /// (unipc create, keep()) only with --kept, on the same conditions. Prints
    /// what went (or with --dry-run would go) and why; with -v also what stays.
    /// Exits 1 when a removal failed.
    ///
    /// Examples: unipc gc --dry-run; unipc gc --kind shm --unowned
    Gc(GcArgs),
    /// Move messages from one message endpoint to another, surviving kills.
    ///
    /// Takes from SRC and sends to DST until --count messages moved, SRC was
    /// idle for --idle-exit seconds, or SIGINT/SIGTERM (which lets the message
    /// in hand finish). What it takes is journaled in --state DIR first, so a
    /// bridge killed and started again with the same DIR loses nothing a NATS
    /// or ring source held for it, and sends nothing twice into NATS (each
    /// message carries a Nats-Msg-Id the server de-duplicates). A POSIX or
    /// System V queue or a datagram socket has no tentative receive: a kill
    /// between its receive and the journal's write loses that one message.
    /// Tags cross where both sides have them. Progress on stderr every
    /// --progress seconds.
    ///
    /// Examples: unipc bridge posix-mq:/jobs nats://127.0.0.1:4222/jobs --state /var/lib/unipc/jobs-out;
    /// unipc bridge nats://127.0.0.1:4222/results ring:/results --state st --idle-exit 5
    Bridge(BridgeArgs),
}

/// `unipc fifo ...`.
#[derive(Debug, Subcommand)]
pub enum FifoCommand {
    /// Create a FIFO whose mode on disk is exactly --mode, whatever the umask.
    ///
    /// Refuses to create over an existing file or symlink.
    /// Example: unipc fifo create /tmp/app.fifo --mode 660
    Create(FifoCreateArgs),
}

/// Parses an endpoint from the argument's bytes: paths need not be UTF-8.
#[derive(Clone, Copy, Debug)]
pub struct EndpointParser;

impl clap::builder::TypedValueParser for EndpointParser {
    type Value = Endpoint;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<Endpoint, clap::Error> {
        Endpoint::parse_os(value).map_err(|e| {
            clap::Error::raw(clap::error::ErrorKind::ValueValidation, format!("{e}\n"))
                .with_cmd(cmd)
        })
    }
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if (0.0..=1e9).contains(&s) => Ok(s),
        _ => Err(format!("{text:?} is not a number of seconds (as in 2.5)")),
    }
}

/// `unipc send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// Where to send: fifo:PATH, unix:PATH, tcp:HOST:PORT, posix-mq:/NAME, sysv-mq:KEY, ...
    #[arg(value_parser = EndpointParser)]
    pub endpoint: Endpoint,
    /// The data (any bytes); stdin when absent. Example: hello
    pub data: Option<OsString>,
    /// Wait at most SECS for a peer (a reader, a listener), for room in a queue,
    /// and for each write of a stream to make progress.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub timeout: Option<f64>,
    /// Each line is one message (without its newline); on a stream, each line
    /// is one write. Example: seq 1 100 | unipc send posix-mq:/jobs --lines
    #[arg(long, conflicts_with = "null")]
    pub lines: bool,
    /// Each NUL-terminated record is one message (or one write on a stream).
    /// Example: find . -print0 | unipc send posix-mq:/files --null
    #[arg(long)]
    pub null: bool,
    /// POSIX queue priority (higher is received first). Example: --priority 5
    #[arg(long, value_name = "N")]
    pub priority: Option<u32>,
    /// System V message type, from 1 to 9223372036854775807. Example: --type 2
    #[arg(long = "type", value_name = "N", allow_negative_numbers = true,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub type_: Option<i64>,
    /// Fail at once (exit 1) instead of waiting when a queue is full.
    #[arg(long)]
    pub nonblock: bool,
    /// Each line (of stdin, or DATA) is one JSON value, sent as one typed
    /// message (MessagePack behind unipc's typed header, or CBOR with
    /// --cbor) that `unipc recv --json --typed` or a Rust `Typed<T>`
    /// decodes; on a byte stream, one typed frame. Blank lines are skipped; a line that is not JSON stops the
    /// send, naming its number.
    /// Example: echo '{"id": 1, "cmd": "make"}' | unipc send posix-mq:/jobs --json
    #[arg(long, conflicts_with_all = ["lines", "null"])]
    pub json: bool,
    /// With --json: the type tag put in each message's header, the name both
    /// sides agree on (a receiver expecting another refuses the message).
    /// Example: --type-tag myapp.Job/v1
    #[arg(long, value_name = "NAME", requires = "json")]
    pub type_tag: Option<String>,
    /// With --json: encode each value as CBOR instead of MessagePack (the
    /// receiver reads either, as the header says).
    #[arg(long, requires = "json")]
    pub cbor: bool,
}

/// `unipc recv`.
#[derive(Debug, Args)]
pub struct RecvArgs {
    /// Where to receive: fifo:PATH, unix:PATH, tcp:HOST:PORT, posix-mq:/NAME, sysv-mq:KEY, ...
    #[arg(value_parser = EndpointParser)]
    pub endpoint: Endpoint,
    /// Wait at most SECS for a peer, for each message, and for each read of a
    /// stream to make progress.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub timeout: Option<f64>,
    /// How many messages to receive (message endpoints; default 1). Example: --count 10
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Write each message's bytes alone, with no newline after it.
    #[arg(long)]
    pub raw: bool,
    /// Write one JSON object per message: {"len", "data" or "data_hex", "priority" or "type"}
    /// (with --typed, the message's decoded value instead).
    #[arg(long)]
    pub json: bool,
    /// With --json: decode each message as a typed message (what `unipc send
    /// --json` or a Rust `Typed<T>` sends) and write its value as one line of
    /// JSON; a message that is not typed is an error. On a byte stream, read
    /// typed frames until end of file (or --count). Either encoding
    /// (MessagePack or CBOR) is read; byte strings are written as hex text. Example: unipc recv posix-mq:/jobs --json --typed --count 5
    #[arg(long, requires = "json")]
    pub typed: bool,
    /// With --typed: refuse a message whose type tag is not NAME's.
    /// Example: --type-tag myapp.Job/v1
    #[arg(long, value_name = "NAME", requires = "typed")]
    pub type_tag: Option<String>,
    /// System V selection as msgrcv reads it: 0 any, N the first of type N,
    /// -N the lowest type up to N. Example: --type -5
    #[arg(long = "type", value_name = "N", allow_negative_numbers = true,
          value_parser = clap::value_parser!(i64).range(-i64::MAX..))]
    pub type_: Option<i64>,
    /// System V: the first message of any type but N (MSG_EXCEPT), N at least 1.
    /// Example: --except 3
    #[arg(long, value_name = "N", conflicts_with = "type_",
          value_parser = clap::value_parser!(i64).range(1..))]
    pub except: Option<i64>,
    /// Fail at once (exit 1) when no message is waiting.
    #[arg(long)]
    pub nonblock: bool,
}

/// `unipc create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// What to create: posix-mq:/NAME, sysv-mq:KEY, ring:/NAME, pubsub:/NAME, shm:/NAME, sysv-shm:KEY, sem:/NAME or fifo:PATH.
    #[arg(value_parser = EndpointParser)]
    pub endpoint: Endpoint,
    /// POSIX queue or ring: how many messages it holds. Example: --max-messages 8
    /// (--capacity for a ring)
    #[arg(long, visible_alias = "capacity", value_name = "N")]
    pub max_messages: Option<usize>,
    /// POSIX queue or ring: largest message in bytes; System V: bytes the queue holds.
    #[arg(long, value_name = "BYTES")]
    pub max_size: Option<usize>,
    /// Shared memory: the size in bytes, with an optional K, M or G suffix
    /// (powers of 1024). Example: --size 64K
    #[arg(long, value_name = "BYTES", value_parser = crate::cmd::parse_bytes)]
    pub size: Option<u64>,
    /// Permission bits in octal, applied whatever the umask (default 600).
    #[arg(long, value_name = "OCTAL", value_parser = crate::cmd::parse_mode)]
    pub mode: Option<unipc::Mode>,
    /// Fail if the object already exists.
    #[arg(long)]
    pub exclusive: bool,
    /// Semaphore: the value it starts with (default 0). Example: --value 4
    #[arg(long, value_name = "N")]
    pub value: Option<u32>,
    /// Semaphore set: how many semaphores (default: one per --values, else 1).
    /// Example: --count 3
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=65535))]
    pub count: Option<u64>,
    /// Semaphore set: the initial values, comma-separated, 0 to 32767 each
    /// (default: all 0). Example: --values 1,0,3
    #[arg(long, value_name = "V,V,...", value_delimiter = ',',
          value_parser = clap::value_parser!(u16).range(0..=32767))]
    pub values: Option<Vec<u16>>,
    /// Pubsub: how many subscribers may attach at once (default 4, at most 64).
    /// Example: --subscribers 3
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub subscribers: Option<u32>,
    /// Pubsub: overwrite the oldest message instead of waiting for a slow
    /// subscriber, which then counts what it lost.
    #[arg(long)]
    pub overwrite: bool,
    /// Wait at most SECS for a server (nats://; 5 by default).
    #[arg(long, value_name = "SECS", value_parser = parse_duration)]
    pub timeout: Option<std::time::Duration>,
}

/// `unipc stat`.
#[derive(Debug, Args)]
pub struct StatArgs {
    /// The object: posix-mq:/NAME, sysv-mq:KEY, shm:/NAME or sysv-shm:KEY.
    #[arg(value_parser = EndpointParser)]
    pub endpoint: Endpoint,
    /// Wait at most SECS for a server (nats://; 5 by default).
    #[arg(long, value_name = "SECS", value_parser = parse_duration)]
    pub timeout: Option<std::time::Duration>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `unipc sem` subcommands.
#[derive(Debug, Subcommand)]
pub enum SemCommand {
    /// Add --count (default 1) to a semaphore's value, waking waiters.
    ///
    /// A post past SEM_VALUE_MAX is refused (exit 1) naming the limit; the
    /// posts made before it stay made.
    ///
    /// Example: unipc sem post sem:/slots --count 3
    Post(SemPostArgs),

    /// Take one from a semaphore's value, waiting while it is zero.
    ///
    /// With --nonblock or --timeout, a semaphore that stays at zero is an error
    /// (exit 1) and nothing is taken. Ctrl-C while waiting takes nothing either.
    ///
    /// Examples: unipc sem wait sem:/slots; unipc sem wait sem:/slots --timeout 2.5;
    ///           unipc sem wait sem:/slots --nonblock
    Wait(SemWaitArgs),

    /// Print a semaphore's value (another process may change it right after).
    ///
    /// Example: unipc sem get sem:/slots
    Get(SemArg),
}

/// A semaphore alone.
#[derive(Debug, Args)]
pub struct SemArg {
    /// The semaphore: sem:/NAME.
    #[arg(value_parser = EndpointParser)]
    pub endpoint: Endpoint,
}

/// `unipc sem post`.
#[derive(Debug, Args)]
pub struct SemPostArgs {
    /// The semaphore: sem:/NAME.
    #[arg(value_parser = EndpointParser)]
    pub endpoint: Endpoint,
    /// How many to add. Example: --count 3
    #[arg(long, value_name = "N", default_value = "1",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub count: u32,
}

/// `unipc sem wait`.
#[derive(Debug, Args)]
pub struct SemWaitArgs {
    /// The semaphore: sem:/NAME.
    #[arg(value_parser = EndpointParser)]
    pub endpoint: Endpoint,
    /// Do not wait: fail at once (exit 1) if the value is zero.
    #[arg(long, conflicts_with = "timeout")]
    pub nonblock: bool,
    /// Wait at most SECS, then fail (exit 1). Example: --timeout 0.5
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub timeout: Option<f64>,
}

/// `unipc rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// The objects: posix-mq:/NAME, sysv-mq:KEY, shm:/NAME, sysv-shm:KEY,
    /// sem:/NAME, sysv-sem:KEY, fifo:PATH, unix:PATH (a stale socket file) ...
    #[arg(value_parser = EndpointParser, required = true, value_name = "ENDPOINT")]
    pub endpoints: Vec<Endpoint>,
    /// Wait at most SECS for a server (nats://; 5 by default).
    #[arg(long, value_name = "SECS", value_parser = parse_duration)]
    pub timeout: Option<std::time::Duration>,
}

/// `unipc read`.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// The shared memory: shm:/NAME, sysv-shm:KEY or sysv-shm:id=N.
    #[arg(value_parser = EndpointParser)]
    pub endpoint: Endpoint,
    /// Where to start, in bytes (K, M, G suffixes). Example: --offset 4K
    #[arg(long, value_name = "BYTES", default_value = "0", value_parser = crate::cmd::parse_bytes)]
    pub offset: u64,
    /// How many bytes (K, M, G suffixes); default: to the end. Example: --length 64
    #[arg(long, value_name = "BYTES", value_parser = crate::cmd::parse_bytes)]
    pub length: Option<u64>,
    /// A hexdump: offset, 16 bytes in hex, the printable ASCII.
    #[arg(long)]
    pub hex: bool,
}

/// `unipc write`.
#[derive(Debug, Args)]
pub struct WriteArgs {
    /// The shared memory: shm:/NAME, sysv-shm:KEY or sysv-shm:id=N.
    #[arg(value_parser = EndpointParser)]
    pub endpoint: Endpoint,
    /// The data (any bytes); stdin when absent. Example: hello
    pub data: Option<OsString>,
    /// Where to start, in bytes (K, M, G suffixes). Example: --offset 16
    #[arg(long, value_name = "BYTES", default_value = "0", value_parser = crate::cmd::parse_bytes)]
    pub offset: u64,
}

/// `unipc fifo create`.
#[derive(Debug, Args)]
pub struct FifoCreateArgs {
    /// Where to create it. Example: /tmp/app.fifo
    pub path: PathBuf,
    /// Permission bits in octal. Example: --mode 660
    #[arg(long, value_name = "OCTAL", default_value = "600", value_parser = crate::cmd::parse_mode)]
    pub mode: unipc::Mode,
}

/// `unipc pty`.
#[derive(Debug, Args)]
pub struct PtyArgs {
    /// Terminal rows (default: this terminal's, or 24).
    #[arg(long)]
    pub rows: Option<u16>,
    /// Terminal columns (default: this terminal's, or 80).
    #[arg(long)]
    pub cols: Option<u16>,
    /// The command and its arguments (any bytes), after `--`. Example: -- /bin/sh -c 'tty'
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// `unipc bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A short run: 64 B latency, 4 KiB and 64 KiB throughput, one repetition (a few seconds).
    #[arg(long)]
    pub quick: bool,
    /// Measure only this facility (repeatable). Example: --facility pipe.
    /// `copy-or-map` names the copy-or-map section (pipe and UNIX socket
    /// against a fresh memfd and a reused mapping, 4 KiB to 64 MiB; 4 KiB
    /// and 1 MiB with --quick), and `hand-off` the hand-off section (each
    /// synchronization primitive's round trip between two processes, beside
    /// the raw calls); a full run includes both and --quick leaves them out.
    #[arg(long = "facility", value_name = "NAME")]
    pub facilities: Vec<String>,
    /// Measure only this message size in bytes (repeatable). Example: --size 4096
    #[arg(long = "size", value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..=(64 << 20)))]
    pub sizes: Vec<u64>,
    /// Run the parent on CPU A and the peer on CPU B. Example: --cpus 0,1
    #[arg(long, value_name = "A,B")]
    pub cpus: Option<String>,
    /// Repetitions of every figure; min / median / max are reported (default 3). Example: --repetitions 5
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100))]
    pub repetitions: Option<u64>,
    /// Write every figure as JSON to FILE. Example: --json bench.json
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a self-contained HTML report with charts to FILE. Example: --html bench.html
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Add to the HTML report the figures of a run of the comparison crate
    /// against other Rust IPC crates (its --json FILE, see the README).
    /// Example: --html bench.html --comparison target/comparison.json
    #[arg(long, value_name = "FILE", requires = "html")]
    pub comparison: Option<PathBuf>,
    /// Also measure NATS JetStream through the server at URL
    /// (nats://HOST:PORT): the round trip of 64 B and 4 KiB messages
    /// between two processes, each send acknowledged by the server and each
    /// receive acknowledged back, printed beside the local facilities. It
    /// makes two streams named unipc_bench_PID_ping/_pong and removes them.
    /// Example: --nats nats://127.0.0.1:4222
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
}

/// `unipc compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Print JSON instead of text (the facilities kept, in the table's order).
    #[arg(long)]
    pub json: bool,
    /// Every property and limit of each facility, instead of the table.
    #[arg(long)]
    pub long: bool,
    /// Keep only facilities with every PROPERTY (comma-separated, repeatable):
    /// boundaries, stream, sync, priorities, types, two-way, unrelated-processes,
    /// network, named, peek, reliable, persistent.
    /// Example: --need boundaries,unrelated-processes
    #[arg(long, value_name = "PROPERTY", value_delimiter = ',')]
    pub need: Vec<String>,
    /// Order by the round-trip latency measured in FILE (`unipc bench --json`
    /// output): 64 B p50, busy-poll on different CPUs where measured.
    /// Example: --bench bench.json
    #[arg(long, value_name = "FILE")]
    pub bench: Option<PathBuf>,
}

/// `unipc lock`.
#[derive(Debug, Args)]
pub struct LockArgs {
    /// The file to lock (any bytes). Example: /tmp/app.lock
    pub file: PathBuf,
    /// Take a shared (read) lock instead of an exclusive (write) one.
    #[arg(long)]
    pub shared: bool,
    /// The bytes to lock: START:LEN, or START: for START to the end of the
    /// file (K, M, G suffixes taken; default: the whole file). Example: --range 4K:512
    #[arg(long, value_name = "START:LEN")]
    pub range: Option<String>,
    /// ofd (default), posix or flock. Example: --kind posix
    #[arg(long, value_name = "KIND")]
    pub kind: Option<unipc::sync::lock::LockKind>,
    /// Fail (exit 1) at once when the lock is held, instead of waiting.
    #[arg(long, conflicts_with = "timeout")]
    pub nonblock: bool,
    /// Wait at most SECS for the lock, then fail (exit 1). Example: --timeout 2.5
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub timeout: Option<f64>,
    /// Show who holds a lock that conflicts with the one asked, and run nothing.
    #[arg(long, conflicts_with_all = ["nonblock", "timeout"])]
    pub test: bool,
    /// With --test: print JSON.
    #[arg(long, requires = "test")]
    pub json: bool,
    /// The command and its arguments (any bytes), after `--`. Example: -- make install
    #[arg(last = true, value_name = "CMD", required_unless_present = "test")]
    pub command: Vec<OsString>,
}

/// `unipc semop`.
#[derive(Debug, Args)]
pub struct SemopArgs {
    /// The semaphore set: sysv-sem:KEY or sysv-sem:id=N.
    #[arg(value_parser = EndpointParser)]
    pub endpoint: Endpoint,
    /// The operations, applied together: INDEX:+N, INDEX:-N or INDEX:0.
    /// Example: 0:-1 1:+1
    #[arg(required = true, value_name = "OP")]
    pub ops: Vec<String>,
    /// SEM_UNDO: the kernel reverts the operations when unipc exits (needs -- CMD).
    #[arg(long)]
    pub undo: bool,
    /// Fail at once (exit 1) instead of waiting when the operations cannot all proceed.
    #[arg(long, conflicts_with = "timeout")]
    pub nowait: bool,
    /// Wait at most SECS for the operations to proceed, then fail (exit 1).
    /// Example: --timeout 2.5
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub timeout: Option<f64>,
    /// The command to run while the operations hold (any bytes), after `--`.
    /// Example: -- /bin/sh -c 'make install'
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// `unipc signal` subcommands.
#[derive(Debug, Subcommand)]
pub enum SignalCommand {
    /// Send SIG to process PID: with sigqueue(3) when --value is given or SIG
    /// is realtime (a realtime signal without --value carries 0), with kill(2)
    /// otherwise.
    ///
    /// A process that is gone (ESRCH), one you may not signal (EPERM) and a
    /// full queue (EAGAIN: the target's user has RLIMIT_SIGPENDING signals
    /// pending) exit 1 naming the pid and the limit.
    ///
    /// Examples: unipc signal send 1234 TERM; unipc signal send 1234 RTMIN+2 --value -7
    Send(SignalSendArgs),

    /// Block the SIGs, wait for them and print one line per signal taken:
    /// its name, the sender's pid and uid, how it was sent (user: kill,
    /// queue: sigqueue, kernel) and the value sigqueue carried.
    ///
    /// The pid to send to is printed on stderr ("pid N") once the signals are
    /// blocked, or written to --pid-file. Signals of one standard number sent
    /// while one is pending merge into one; realtime ones queue, and are taken
    /// lowest number first. With --timeout, an end before --count signals exits
    /// 1 (those taken are printed); SIGINT and the other signals not listed
    /// keep their usual effect.
    ///
    /// Examples: unipc signal wait USR1 RTMIN+1 --count 3 --timeout 10;
    ///           unipc signal wait RTMIN --json --pid-file /run/me/waiter.pid
    Wait(SignalWaitArgs),
}

fn parse_signal(text: &str) -> Result<unipc::signal::Signal, String> {
    text.parse().map_err(|e: unipc::Error| e.to_string())
}

/// `unipc signal send`.
#[derive(Debug, Args)]
pub struct SignalSendArgs {
    /// The process to signal (1 or more: process groups are not signalled).
    #[arg(value_parser = clap::value_parser!(u32).range(1..=i32::MAX as i64))]
    pub pid: u32,
    /// The signal. Example: TERM, RTMIN+3
    #[arg(value_parser = parse_signal)]
    pub signal: unipc::signal::Signal,
    /// The int sigqueue carries (sends with sigqueue). Example: --value 42
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub value: Option<i32>,
}

/// `unipc signal wait`.
#[derive(Debug, Args)]
pub struct SignalWaitArgs {
    /// The signals to wait for (not KILL or STOP). Example: USR1 RTMIN+1
    #[arg(required = true, value_parser = parse_signal)]
    pub signals: Vec<unipc::signal::Signal>,
    /// How many signals to take before exiting. Example: --count 5
    #[arg(long, value_name = "N", default_value = "1",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub count: u64,
    /// Wait at most SECS in all, then exit 1. Example: --timeout 2.5
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub timeout: Option<f64>,
    /// One JSON object per line: signal, pid, uid, code, value (null unless queued).
    #[arg(long)]
    pub json: bool,
    /// Write this process's pid to FILE (made new, mode 644: an existing file
    /// or symlink is refused) instead of stderr; removed at the end unless
    /// a signal ends the process.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
}

/// `unipc ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// List only this kind (repeatable): sysv-mq, sysv-sem, sysv-shm, posix-mq,
    /// shm, sem, unix, fifo, lock.
    /// Example: --kind sysv-shm
    #[arg(long = "kind", value_name = "KIND", value_parser = parse_kind)]
    pub kinds: Vec<unipc::inventory::Kind>,
    /// Look for FIFOs under DIR, 4 levels deep, not following links
    /// (repeatable; default: the temp dir).
    #[arg(long = "path", value_name = "DIR")]
    pub paths: Vec<std::path::PathBuf>,
    /// One JSON document (schema unipc-ls/1) instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// `unipc bridge`.
#[derive(Debug, Args)]
pub struct BridgeArgs {
    /// Where to take messages from (a message endpoint).
    #[arg(value_parser = EndpointParser)]
    pub source: Endpoint,
    /// Where to send them (a message endpoint).
    #[arg(value_parser = EndpointParser)]
    pub destination: Endpoint,
    /// The journal's directory (made, mode 700, if missing); one bridge at a
    /// time per directory.
    #[arg(long, value_name = "DIR")]
    pub state: PathBuf,
    /// Stop after moving N messages.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Stop once SRC has had nothing for SECS.
    #[arg(long, value_name = "SECS", value_parser = parse_duration)]
    pub idle_exit: Option<std::time::Duration>,
    /// Seconds between progress lines on stderr (0: only the last).
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = parse_duration)]
    pub progress: std::time::Duration,
    /// Wait at most SECS for either side to be there when starting.
    #[arg(long, value_name = "SECS", value_parser = parse_duration)]
    pub timeout: Option<std::time::Duration>,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    parse_seconds(text).map(std::time::Duration::from_secs_f64)
}

/// `unipc gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Collect only this kind (repeatable): sysv-mq, sysv-sem, sysv-shm,
    /// posix-mq, shm, sem.
    #[arg(long = "kind", value_name = "KIND", value_parser = parse_gc_kind)]
    pub kinds: Vec<unipc::inventory::Kind>,
    /// Say what would go, remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also remove objects unipc has no creator record of.
    #[arg(long)]
    pub unowned: bool,
    /// Also remove objects their creator kept on purpose.
    #[arg(long)]
    pub kept: bool,
    /// Also say what stays, and why.
    #[arg(short, long)]
    pub verbose: bool,
    /// In a nested PID namespace (a container), judge anyway: no process
    /// outside it shares this IPC namespace and /dev/shm. Without it such a
    /// run removes nothing, since those processes are invisible here.
    #[arg(long)]
    pub private_namespace: bool,
    /// One JSON document (schema unipc-gc/1) instead of lines.
    #[arg(long)]
    pub json: bool,
}

fn parse_gc_kind(text: &str) -> Result<unipc::inventory::Kind, String> {
    let kind = parse_kind(text)?;
    if unipc::inventory::gc::COLLECTED.contains(&kind) {
        Ok(kind)
    } else {
        Err(format!(
            "gc collects {}; sockets, FIFOs and locks go with the processes that hold them",
            unipc::inventory::gc::COLLECTED
                .map(|k| k.as_str())
                .join(", ")
        ))
    }
}

fn parse_kind(text: &str) -> Result<unipc::inventory::Kind, String> {
    text.parse().map_err(|e: unipc::Error| e.to_string())
}
