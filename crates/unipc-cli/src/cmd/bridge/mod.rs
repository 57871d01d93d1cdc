//! `unipc bridge SRC DST`: moves messages from any message endpoint to any
//! other, through a journal that survives the bridge being killed.
//!
//! What a crash can cost, by source and destination:
//!
//! | source | taken how | a kill between taking and delivering |
//! |---|---|---|
//! | `nats://` | not acknowledged until delivered | nothing: the server delivers it again |
//! | `ring:` | a borrowed view, released once journaled | nothing: the message stays in the ring, and its ring number tells a re-read |
//! | a queue, a datagram socket | consumed by the receive | the one message between the receive and the journal's write (a journal that cannot be written, a full disk: that message is delivered unjournaled, and the bridge stops saying so) |
//!
//! | destination | a message sent twice (a kill after the send, before the journal says so) |
//! |---|---|
//! | `nats://` | de-duplicated by the server: each carries a `Nats-Msg-Id` from the journal (within the stream's duplicate window, 2 minutes by default) |
//! | `ring:` | recognised: the journal records the ring's count of committed messages before each send, and a restarted bridge compares it with the ring's count before it sends anything: a message its killed run put in is not sent again, whether it comes back from the journal or, from a NATS source, redelivered after the ack wait (so nothing else may write into the ring between two runs of the bridge) |
//! | anything else | delivered twice: the window is one `write(2)` to the journal after the send returned |
//!
//! A NATS source's message is acknowledged only after the destination
//! took it, and its stream sequence is journaled between the two, so a
//! redelivery after a kill there is recognised and only acknowledged.
//!
//! For the tests of exactly that window, `UNIPC_BRIDGE_FAILPOINT=kill-after-send:N`
//! makes the bridge SIGKILL itself just after its Nth send returned, before
//! the journal records it.
//!
//! Progress goes to stderr every `--progress` seconds. SIGINT, SIGTERM and
//! SIGHUP let the message in hand finish, then the bridge exits 0; a
//! second signal ends it at once.

mod journal;

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use unipc::message::{Tag, Wait};
use unipc::open::{MessageHandle, OpenOptions};
use unipc::{Endpoint, Error};

use crate::cli::BridgeArgs;
use journal::{Journal, Key};

/// How long one wait for the source lasts: how quickly a signal or an
/// idle timeout is noticed.
const POLL: Duration = Duration::from_millis(200);

/// The first pause before retrying a destination that failed; it doubles
/// up to a second.
const RETRY_START: Duration = Duration::from_millis(20);

/// Counts for the progress line.
#[derive(Debug, Default)]
struct Counts {
    moved: u64,
    retried: u64,
    replayed: u64,
    skipped: u64,
    refused: u64,
}

/// `unipc bridge SRC DST [--count N] [--idle-exit SECS] --state DIR`.
pub fn run(args: BridgeArgs) -> anyhow::Result<ExitCode> {
    if args.source == args.destination {
        return Err(crate::cmd::usage(format!(
            "{}: the source and the destination are the same endpoint",
            args.source
        )));
    }
    let stop = crate::terminate::stop_flag()?;
    let mut journal = Journal::open(
        &args.state,
        &format!("{} {}", args.source, args.destination),
    )?;
    let options = match args.timeout {
        Some(t) => OpenOptions::new().timeout(t),
        None => OpenOptions::new(),
    };
    let mut source = options
        .listen(&args.source)?
        .accept()?
        .into_messages()
        .ok_or_else(|| crate::cmd::usage(format!("{}: not a message endpoint", args.source)))?;
    let destination = options
        .connect(&args.destination)?
        .into_messages()
        .ok_or_else(|| {
            crate::cmd::usage(format!("{}: not a message endpoint", args.destination))
        })?;
    if same_object(&source, &destination) {
        return Err(crate::cmd::usage(format!(
            "{} and {} are the same object: the bridge would move its messages in a loop",
            args.source, args.destination
        )));
    }
    let mut counts = Counts::default();
    let mut progress = Progress::new(args.progress);

    // What a killed run was about to put into a ring destination is
    // settled before this run moves the ring's count.
    if let MessageHandle::RingSender(ring) = &destination {
        let now = ring.sent();
        // Said on stderr: the verdict rests on nothing else having written
        // into the ring while the bridge was down.
        let said = match journal.settle_ring_intent(now)? {
            Some((before, true)) if now > before + 1 => Some(format!(
                "the message a killed run was sending is taken as delivered: {} counted {before} messages then and {now} now (more than that one message: if another writer wrote into it meanwhile, that message was lost)",
                args.destination
            )),
            Some((before, false)) if now < before => Some(format!(
                "{} counts {now} messages, fewer than the {before} recorded: it was made again; the message a killed run was sending is sent again",
                args.destination
            )),
            _ => None,
        };
        if let Some(said) = said {
            let _ = writeln!(std::io::stderr().lock(), "unipc bridge: {said}");
        }
    }
    // What a previous run took and did not deliver goes first, under the
    // ids it was journaled with.
    let target = Target {
        handle: &destination,
        endpoint: &args.destination,
        stop,
        kill_after: failpoint(),
        sends: std::cell::Cell::new(0),
    };
    for entry in journal.pending() {
        target.forward(&mut journal, &entry, &mut counts)?;
        counts.replayed += 1;
    }

    let mut idle_since = Instant::now();
    let stream_name = match &args.source {
        Endpoint::Nats(a) => a.stream_name(),
        _ => String::new(),
    };
    while !stop.load(Ordering::SeqCst) && args.count.map_or(true, |n| counts.moved < n) {
        progress.tick(&counts, journal.in_flight());
        let moved = match &mut source {
            MessageHandle::Nats(nats) => {
                match nats.recv_unacked(Wait::For(POLL)) {
                    Ok(delivery) => {
                        let sequence = delivery.sequence();
                        let redelivered = journal.delivered_before(sequence);
                        if !redelivered {
                            let id = format!("unipc-bridge-nats-{stream_name}-{sequence}");
                            target.deliver(
                                &mut journal,
                                Key::Nats(sequence),
                                &id,
                                delivery.payload(),
                                delivery.tag(),
                                &mut counts,
                            )?;
                            journal.delivered(sequence)?;
                        }
                        // An acknowledgement that does not reach the server
                        // is no loss: the message comes again, and the
                        // journal says it was delivered.
                        match nats.ack(delivery) {
                            Ok(()) => journal.acknowledged(sequence)?,
                            Err(e) if retryable(&e) => counts.retried += 1,
                            Err(e) => return Err(e.into()),
                        }
                        if redelivered {
                            counts.skipped += 1;
                            continue;
                        }
                        true
                    }
                    Err(Error::TimedOut { .. } | Error::Empty { .. }) => false,
                    // The server restarting: wait for it.
                    Err(e) if retryable(&e) => {
                        counts.retried += 1;
                        std::thread::sleep(POLL);
                        false
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            MessageHandle::RingReceiver(ring) => match ring.recv_view(Wait::For(POLL)) {
                Ok(view) => {
                    let sequence = view.sequence();
                    if journal.held_before(sequence) {
                        // Journaled by a run killed before it let go.
                        drop(view);
                        journal.released(sequence)?;
                        counts.skipped += 1;
                        continue;
                    }
                    let entry = journal.append(Some(sequence), Tag::None, &view)?;
                    drop(view);
                    journal.released(sequence)?;
                    target.forward(&mut journal, &entry, &mut counts)?;
                    true
                }
                Err(Error::TimedOut { .. } | Error::Empty { .. }) => false,
                Err(e) => return Err(e.into()),
            },
            other => match other.messenger().recv_vec(Wait::For(POLL)) {
                Ok((bytes, tag)) => {
                    let entry = match journal.append(None, tag, &bytes) {
                        Ok(entry) => entry,
                        // Taken from a source that cannot have it back and
                        // not journaled (a full disk): delivered as it is
                        // rather than lost, then the bridge stops.
                        Err(e) => return Err(target.rescue(&bytes, tag, e)),
                    };
                    target.forward(&mut journal, &entry, &mut counts)?;
                    true
                }
                Err(Error::TimedOut { .. } | Error::Empty { .. }) => false,
                Err(e) => return Err(e.into()),
            },
        };
        if moved {
            counts.moved += 1;
            idle_since = Instant::now();
        } else if args
            .idle_exit
            .is_some_and(|idle| idle_since.elapsed() >= idle)
        {
            break;
        }
    }
    progress.last(&counts, journal.in_flight(), stop.load(Ordering::SeqCst));
    Ok(ExitCode::SUCCESS)
}

/// The tag as the destination can carry it: a priority to a POSIX queue or
/// NATS, a type to a System V queue or NATS, nothing otherwise.
fn tag_for(destination: &Endpoint, tag: Tag) -> Tag {
    match (destination, tag) {
        (Endpoint::Nats(_), t) => t,
        (Endpoint::PosixMq(_), Tag::Priority(p)) => Tag::Priority(p),
        (Endpoint::SysvMq(_) | Endpoint::SysvMqId(_), Tag::Type(t)) => Tag::Type(t),
        _ => Tag::None,
    }
}

/// Where messages go: the destination, as opened and as named, and the
/// flag a signal sets.
struct Target<'a> {
    handle: &'a MessageHandle,
    endpoint: &'a Endpoint,
    stop: &'a AtomicBool,
    /// The test failpoint: SIGKILL after this many sends.
    kill_after: Option<u64>,
    sends: std::cell::Cell<u64>,
}

/// `UNIPC_BRIDGE_FAILPOINT=kill-after-send:N`, for the tests.
fn failpoint() -> Option<u64> {
    std::env::var("UNIPC_BRIDGE_FAILPOINT")
        .ok()?
        .strip_prefix("kill-after-send:")?
        .parse()
        .ok()
}

impl Target<'_> {
    /// Delivers a journaled message, then records it delivered.
    fn forward(
        &self,
        journal: &mut Journal,
        entry: &journal::Entry,
        counts: &mut Counts,
    ) -> anyhow::Result<()> {
        self.deliver(
            journal,
            Key::Entry(entry.id),
            &entry.message_id,
            &entry.bytes,
            entry.tag,
            counts,
        )?;
        journal.done(entry.id)
    }

    /// One send to the destination: to NATS with `id` for its
    /// de-duplication (waiting up to 2 s for the acknowledgement), to any
    /// other waiting at most `wait`.
    fn send_once(&self, bytes: &[u8], tag: Tag, id: &str, wait: Duration) -> unipc::Result<()> {
        match self.handle {
            MessageHandle::Nats(nats) => nats
                .send_with_id(bytes, tag, id, Wait::For(Duration::from_secs(2)))
                .map(|_| ()),
            other => other.messenger().send_tagged(bytes, tag, Wait::For(wait)),
        }
    }

    /// The message in hand when the journal could not record it: one
    /// attempt to deliver it unjournaled, and the journal's error saying
    /// what became of it.
    fn rescue(&self, bytes: &[u8], tag: Tag, err: anyhow::Error) -> anyhow::Error {
        let tag = tag_for(self.endpoint, tag);
        let id = format!(
            "unipc-bridge-unjournaled-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        match self.send_once(bytes, tag, &id, Duration::from_secs(2)) {
            Ok(()) => err.context(
                "the journal could not record the message taken from the source; it was delivered without it, and the bridge stops",
            ),
            Err(e) => err.context(format!(
                "the journal could not record the message taken from the source, and delivering it without the journal failed too ({e}): that message ({} bytes) is lost",
                bytes.len()
            )),
        }
    }

    /// Sends one message, retrying what a restart of the destination
    /// explains (full, timed out, unreachable, not acknowledged) until it
    /// goes or a signal asks to stop (then an error: the message stays
    /// journaled).
    /// A message the destination refuses for good (too large, a tag or a
    /// content it rejects) is set aside in `DIR/refused/` and reported,
    /// so one message cannot stop the bridge.
    /// Into a ring, the ring's count of committed messages is journaled
    /// first, so a message a killed run sent is recognised and not sent
    /// again.
    fn deliver(
        &self,
        journal: &mut Journal,
        key: Key,
        id: &str,
        bytes: &[u8],
        tag: Tag,
        counts: &mut Counts,
    ) -> anyhow::Result<()> {
        if let MessageHandle::RingSender(ring) = self.handle {
            if journal.in_ring(key) {
                counts.skipped += 1;
                return Ok(());
            }
            journal.ring_intent(key, ring.sent())?;
        }
        let tag = tag_for(self.endpoint, tag);
        let mut pause = RETRY_START;
        loop {
            match self.send_once(bytes, tag, id, POLL) {
                Ok(()) => {
                    self.sends.set(self.sends.get() + 1);
                    if self.kill_after == Some(self.sends.get()) {
                        let _ = rustix::process::kill_process(
                            rustix::process::getpid(),
                            rustix::process::Signal::KILL,
                        );
                    }
                    return Ok(());
                }
                Err(e) if refused_for_good(&e) => {
                    let kept = journal.set_aside(id, bytes)?;
                    counts.refused += 1;
                    let _ = writeln!(
                        std::io::stderr().lock(),
                        "unipc bridge: {e}; the message is kept in {}",
                        kept.display()
                    );
                    return Ok(());
                }
                Err(e) if retryable(&e) => {
                    if self.stop.load(Ordering::SeqCst) {
                        return Err(e).context(
                            "stopped while the destination would not take the message; it stays journaled, or unacknowledged at its source",
                        );
                    }
                    counts.retried += 1;
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Whether two opened endpoints are one object under two spellings (a
/// System V queue by key and by id; a NATS stream by two subjects).
fn same_object(a: &MessageHandle, b: &MessageHandle) -> bool {
    match (a, b) {
        (MessageHandle::SysvMq(x), MessageHandle::SysvMq(y)) => x.id() == y.id(),
        (MessageHandle::Nats(x), MessageHandle::Nats(y)) => {
            x.address().server == y.address().server
                && x.address().stream_name() == y.address().stream_name()
        }
        _ => false,
    }
}

/// What the destination will refuse however often it is asked.
fn refused_for_good(e: &Error) -> bool {
    matches!(
        e,
        Error::MessageTooLarge { .. }
            | Error::Unsupported { .. }
            | Error::Remote {
                kind: unipc::RemoteKind::Rejected,
                ..
            }
    )
}

fn retryable(e: &Error) -> bool {
    matches!(
        e,
        Error::Full { .. } | Error::TimedOut { .. } | Error::Remote { .. }
    ) && !matches!(
        e,
        Error::Remote {
            kind: unipc::RemoteKind::StreamMissing | unipc::RemoteKind::Rejected,
            ..
        }
    )
}

/// The progress line on stderr, every interval.
struct Progress {
    every: Duration,
    last: Instant,
}

impl Progress {
    fn new(every: Duration) -> Progress {
        Progress {
            every,
            last: Instant::now(),
        }
    }

    fn tick(&mut self, counts: &Counts, in_flight: usize) {
        if !self.every.is_zero() && self.last.elapsed() >= self.every {
            self.last = Instant::now();
            line(counts, in_flight, "");
        }
    }

    fn last(&self, counts: &Counts, in_flight: usize, stopped: bool) {
        line(
            counts,
            in_flight,
            if stopped {
                ", stopped by a signal"
            } else {
                ", done"
            },
        );
    }
}

fn line(counts: &Counts, in_flight: usize, end: &str) {
    let _ = writeln!(
        std::io::stderr().lock(),
        "unipc bridge: moved {}, in flight {in_flight}, retried {}, replayed {}, skipped {}, refused {}{end}",
        counts.moved,
        counts.retried,
        counts.replayed,
        counts.skipped,
        counts.refused
    );
}
