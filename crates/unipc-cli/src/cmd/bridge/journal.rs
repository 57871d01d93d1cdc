//! The bridge's journal: what it took from its source and has not yet
//! seen its destination take, so a bridge killed at any moment and
//! restarted loses nothing the source let it hold and sends nothing twice
//! that the destination can recognise.
//!
//! One append-only file, `journal`, in the state directory, of records
//! each written by one `write(2)` (so a killed process leaves whole
//! records; a host crash may leave a torn last one, which the checksum
//! rejects and reading stops at):
//!
//! ```text
//! u32 length | u8 kind | body | u32 FNV-1a of kind and body
//! P  id u64, ring sequence u64 (u64::MAX: none), tag, message id, bytes   taken, not yet delivered (fdatasync'd)
//! D  id u64                                                               delivered
//! U  ring sequence u64                                                    that ring message was let go (its view released)
//! R  ring sequence u64                                                    (in a rewritten journal) a ring message journaled and not let go
//! S  stream sequence u64                                                  a NATS message delivered (remembered, newest 100,000)
//! A  stream sequence u64                                                  ... and acknowledged
//! W  key kind u8 (P or S), key u64, ring count u64                         about to send that message into a ring destination, whose writer had committed `count`
//! K  key kind u8, key u64                                                   that message is in the ring already (found so after a kill)
//! ```
//!
//! `W` closes the one window a kill leaves into a ring destination: after
//! the send, before `D` or `S`. The ring's count of committed messages
//! only moves when its (one) writer commits, so a restarted bridge that
//! finds it past the count its killed run recorded, before sending anything
//! itself, knows that message went in. It says so with `K`, and when the
//! message comes again (replayed from the journal, or redelivered by a NATS
//! source after its ack wait, when this run has long moved the count) it is
//! recorded delivered without being sent. No `W` or `K` record needs a
//! sync: the ring is in `/dev/shm`, gone with the host the sync would guard
//! against.
//!
//! The directory holds a `lock` file the running bridge holds an
//! exclusive `flock` on: two bridges never share a journal.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use unipc::message::Tag;

/// A message taken and not yet delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its number in this journal.
    pub id: u64,
    /// Its number in a ring source, if it came from one.
    pub ring_sequence: Option<u64>,
    /// Its tag at the source.
    pub tag: Tag,
    /// The id a NATS destination de-duplicates it by.
    pub message_id: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// A message the journal names: a taken entry by its id, or a NATS
/// source's message by its stream sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    Entry(u64),
    Nats(u64),
}

impl Key {
    fn bytes(self) -> [u8; 9] {
        let (kind, n) = match self {
            Key::Entry(id) => (b'P', id),
            Key::Nats(s) => (b'S', s),
        };
        let mut out = [0; 9];
        out[0] = kind;
        out[1..].copy_from_slice(&n.to_le_bytes());
        out
    }
}

/// An open journal (and the lock on its directory).
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    _lock: nix::fcntl::Flock<File>,
    pending: BTreeMap<u64, Entry>,
    unacknowledged: HashSet<u64>,
    /// NATS messages delivered, acknowledged or not: a server that
    /// restarts may have lost an acknowledgement it confirmed, and deliver
    /// one again. The newest [`KEEP_DELIVERED`].
    delivered: BTreeSet<u64>,
    next_id: u64,
    /// The ring source's message journaled and not let go: a run killed
    /// between the two left it at the ring's head, where the next run's
    /// first view finds it again.
    held_ring_sequence: Option<u64>,
    /// The `endpoints` file, written with the first record (so a run that
    /// fails before taking anything binds the directory to nothing).
    pair_to_write: Option<(PathBuf, String)>,
    /// The message last about to go into a ring destination, and the
    /// ring's count then; cleared once that message is recorded delivered.
    ring_intent: Option<(Key, u64)>,
    /// Messages a killed run put into the ring destination without
    /// recording them delivered (`K`).
    in_ring: HashSet<Key>,
    instance: String,
    records: u64,
}

const HEADER: usize = 4;

/// How many delivered NATS sequences the journal remembers.
const KEEP_DELIVERED: usize = 100_000;

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

fn tag_bytes(tag: Tag, out: &mut Vec<u8>) {
    let (kind, value): (u8, i64) = match tag {
        Tag::Priority(p) => (1, i64::from(p)),
        Tag::Type(t) => (2, t),
        _ => (0, 0),
    };
    out.push(kind);
    out.extend_from_slice(&value.to_le_bytes());
}

/// Reads the journal's records in order, stopping at the first that is
/// cut or fails its checksum; also how many bytes were read whole.
fn records_and_length(bytes: &[u8]) -> (Vec<(u8, &[u8])>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    while at + HEADER <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or_default()) as usize;
        let Some(end) = (at + HEADER).checked_add(len) else {
            break;
        };
        if len < 5 || end > bytes.len() {
            break;
        }
        let record = &bytes[at + HEADER..end];
        let (content, sum) = record.split_at(len - 4);
        if fnv1a(content) != u32::from_le_bytes(sum.try_into().unwrap_or_default()) {
            break;
        }
        out.push((content[0], &content[1..]));
        at = end;
    }
    (out, at)
}

#[cfg(test)]
fn records(bytes: &[u8]) -> Vec<(u8, &[u8])> {
    records_and_length(bytes).0
}

/// A cursor over a record's body.
struct Body<'a>(&'a [u8]);

impl Body<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn tag(&mut self) -> Option<Tag> {
        let kind = self.take(1)?[0];
        let value = i64::from_le_bytes(self.take(8)?.try_into().ok()?);
        Some(match kind {
            1 => Tag::Priority(u32::try_from(value).ok()?),
            2 => Tag::Type(value),
            _ => Tag::None,
        })
    }
}

fn parse_entry(body: &[u8]) -> Option<Entry> {
    let mut b = Body(body);
    let id = b.u64()?;
    let ring = b.u64()?;
    let tag = b.tag()?;
    let id_len = b.u32()? as usize;
    let message_id = String::from_utf8(b.take(id_len)?.to_vec()).ok()?;
    let len = b.u32()? as usize;
    let bytes = b.take(len)?.to_vec();
    Some(Entry {
        id,
        ring_sequence: (ring != u64::MAX).then_some(ring),
        tag,
        message_id,
        bytes,
    })
}

impl Journal {
    /// Opens (making it, mode 0700) the state directory `dir`, takes its
    /// lock, and reads what a previous run left.
    ///
    /// # Errors
    /// When `dir` cannot be made or read, is not a directory of this
    /// user's, or another bridge holds it.
    pub fn open(dir: &Path, pair: &str) -> anyhow::Result<Journal> {
        // Without its trailing slashes: `link/` would make `lstat` below
        // look through a symbolic link.
        let dir: PathBuf = dir.components().collect();
        let dir = dir.as_path();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("{}: make the state directory", dir.display()))?;
        let meta = std::fs::symlink_metadata(dir)
            .with_context(|| format!("{}: state directory", dir.display()))?;
        if !meta.is_dir() {
            anyhow::bail!(
                "{}: the state directory is not a directory (a symbolic link is refused)",
                dir.display()
            );
        }
        // A journal another user can write could make the bridge send what
        // it never took.
        use std::os::unix::fs::MetadataExt;
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != me || meta.mode() & 0o022 != 0 {
            anyhow::bail!(
                "{}: the state directory must be this user's and writable by no one else (owner {}, mode {:o})",
                dir.display(),
                meta.uid(),
                meta.mode() & 0o7777
            );
        }
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(dir.join("lock"))
            .with_context(|| format!("{}: open the lock", dir.display()))?;
        // Held as long as the journal is open (released when it drops).
        let Ok(lock) = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock)
        else {
            anyhow::bail!(
                "{}: another bridge is using this state directory",
                dir.display()
            );
        };
        // A journal belongs to one source and destination: what it holds
        // must never be replayed into another.
        let mut pair_to_write = None;
        let pair_file = dir.join("endpoints");
        match std::fs::read_to_string(&pair_file) {
            Ok(found) if found.trim_end() == pair => {}
            Ok(found) => anyhow::bail!(
                "{}: this state directory is the journal of {}, not of {pair}: give each bridge its own --state",
                dir.display(),
                found.trim_end()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                pair_to_write = Some((pair_file, pair.to_owned()));
            }
            Err(e) => return Err(e).with_context(|| format!("{}: read", pair_file.display())),
        }
        let path = dir.join("journal");
        let mut old = Vec::new();
        match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(mut f) => {
                f.read_to_end(&mut old)
                    .with_context(|| format!("{}: read", path.display()))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("{}: open", path.display())),
        }
        let mut pending = BTreeMap::new();
        let mut unacknowledged = HashSet::new();
        let mut delivered = BTreeSet::new();
        let mut next_id = 0;
        let mut held_ring_sequence = None;
        let mut ring_intent: Option<(Key, u64)> = None;
        let mut in_ring: HashSet<Key> = HashSet::new();
        let (found, whole) = records_and_length(&old);
        if whole < old.len() {
            // A torn last write after a host crash, or damage: say so, as
            // what it held may have been in flight.
            eprintln!(
                "unipc bridge: {}: {} byte(s) after the last whole record were ignored (a torn write or damage); a message in flight then may be lost",
                path.display(),
                old.len() - whole
            );
        }
        for (kind, body) in found {
            let mut b = Body(body);
            match kind {
                b'P' => {
                    if let Some(e) = parse_entry(body) {
                        next_id = next_id.max(e.id + 1);
                        if let Some(s) = e.ring_sequence {
                            held_ring_sequence = Some(s);
                        }
                        pending.insert(e.id, e);
                    }
                }
                b'D' => {
                    if let Some(id) = b.u64() {
                        pending.remove(&id);
                        clear_intent(&mut ring_intent, Key::Entry(id));
                        in_ring.remove(&Key::Entry(id));
                    }
                }
                b'K' => {
                    if let Some(key) = parse_key(&mut b) {
                        in_ring.insert(key);
                    }
                }
                b'W' => {
                    if let (Some(key), Some(count)) = (parse_key(&mut b), b.u64()) {
                        ring_intent = Some((key, count));
                    }
                }
                b'R' => held_ring_sequence = b.u64(),
                b'U' => {
                    let released = b.u64();
                    if released.is_some() && released == held_ring_sequence {
                        held_ring_sequence = None;
                    }
                }
                b'S' => {
                    if let Some(s) = b.u64() {
                        unacknowledged.insert(s);
                        delivered.insert(s);
                        clear_intent(&mut ring_intent, Key::Nats(s));
                        in_ring.remove(&Key::Nats(s));
                    }
                }
                b'A' => {
                    if let Some(s) = b.u64() {
                        unacknowledged.remove(&s);
                    }
                }
                _ => {}
            }
        }
        let instance = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u32(std::process::id());
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            format!("{:016x}", h.finish())
        };
        trim(&mut delivered);
        let file = Journal::rewrite(
            &path,
            &pending,
            &unacknowledged,
            &delivered,
            held_ring_sequence,
            ring_intent,
            &in_ring,
        )?;
        Ok(Journal {
            path,
            file,
            _lock: lock,
            pending,
            unacknowledged,
            delivered,
            next_id,
            held_ring_sequence,
            pair_to_write,
            ring_intent,
            in_ring,
            instance,
            records: 0,
        })
    }

    /// Writes a fresh journal with only what is still open, and renames it
    /// over the old one: the file stays as small as what is in flight.
    fn rewrite(
        path: &Path,
        pending: &BTreeMap<u64, Entry>,
        unacknowledged: &HashSet<u64>,
        delivered: &BTreeSet<u64>,
        held_ring_sequence: Option<u64>,
        ring_intent: Option<(Key, u64)>,
        in_ring: &HashSet<Key>,
    ) -> anyhow::Result<File> {
        let fresh = path.with_extension("new");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&fresh)
            .with_context(|| format!("{}: create", fresh.display()))?;
        let mut all = Vec::new();
        if let Some(s) = held_ring_sequence {
            all.extend(encode(b'R', &s.to_le_bytes()));
        }
        for e in pending.values() {
            all.extend(encode(b'P', &entry_body(e)));
        }
        for s in delivered {
            all.extend(encode(b'S', &s.to_le_bytes()));
            if !unacknowledged.contains(s) {
                all.extend(encode(b'A', &s.to_le_bytes()));
            }
        }
        if let Some((key, count)) = ring_intent {
            all.extend(encode(b'W', &intent_body(key, count)));
        }
        for key in in_ring {
            all.extend(encode(b'K', &key.bytes()));
        }
        file.write_all(&all)?;
        file.sync_data()?;
        std::fs::rename(&fresh, path).with_context(|| format!("{}: replace", path.display()))?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        let file = std::fs::OpenOptions::new()
            .append(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(path)
            .with_context(|| format!("{}: open", path.display()))?;
        Ok(file)
    }

    /// Keeps a message the destination refused for good (too large,
    /// rejected) as `refused/ID` beside the journal, so it is neither lost
    /// nor retried forever; returns the file's path.
    pub fn set_aside(&self, id: &str, bytes: &[u8]) -> anyhow::Result<PathBuf> {
        let dir = self.path.with_file_name("refused");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("{}: make", dir.display()))?;
        let file = dir.join(id);
        std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&file)
            .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_data()))
            .or_else(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .with_context(|| format!("{}: write", file.display()))?;
        Ok(file)
    }

    /// What a previous run took and did not deliver, oldest first.
    pub fn pending(&self) -> Vec<Entry> {
        self.pending.values().cloned().collect()
    }

    /// How many messages are taken and not delivered.
    pub fn in_flight(&self) -> usize {
        self.pending.len() + self.unacknowledged.len()
    }

    /// Whether ring message `sequence`, this run's first view, is the one
    /// a killed run journaled and did not let go (left at the ring's head).
    /// Asked once: any later view is new, and so is the first one of a ring
    /// that is not where the journal left it (removed and made again).
    pub fn held_before(&mut self, sequence: u64) -> bool {
        self.held_ring_sequence.take() == Some(sequence)
    }

    /// Records that ring message `sequence` was let go.
    pub fn released(&mut self, sequence: u64) -> anyhow::Result<()> {
        self.write(b'U', &sequence.to_le_bytes())?;
        self.held_ring_sequence = None;
        Ok(())
    }

    /// Records a message taken, and makes it durable (fdatasync) before
    /// returning: from here on it is in the journal, not only in memory.
    pub fn append(
        &mut self,
        ring_sequence: Option<u64>,
        tag: Tag,
        bytes: &[u8],
    ) -> anyhow::Result<Entry> {
        let entry = Entry {
            id: self.next_id,
            ring_sequence,
            tag,
            message_id: format!("unipc-bridge-{}-{}", self.instance, self.next_id),
            bytes: bytes.to_vec(),
        };
        self.write(b'P', &entry_body(&entry))?;
        self.file.sync_data().context("journal: fdatasync")?;
        self.next_id += 1;
        if let Some(s) = ring_sequence {
            self.held_ring_sequence = Some(s);
        }
        self.pending.insert(entry.id, entry.clone());
        Ok(entry)
    }

    /// Records that `id` was delivered. Not synced: a process killed after
    /// this write has it in the kernel; a host that crashes first makes
    /// the next run deliver it again, with the same message id.
    pub fn done(&mut self, id: u64) -> anyhow::Result<()> {
        self.write(b'D', &id.to_le_bytes())?;
        self.pending.remove(&id);
        clear_intent(&mut self.ring_intent, Key::Entry(id));
        self.in_ring.remove(&Key::Entry(id));
        self.compact_if_long()
    }

    /// Whether NATS message `sequence` was delivered already (by a bridge
    /// killed before acknowledging it, or acknowledged to a server that
    /// restarted and lost that): deliver it no more.
    pub fn delivered_before(&self, sequence: u64) -> bool {
        self.delivered.contains(&sequence)
    }

    /// Records that NATS message `sequence` was delivered.
    pub fn delivered(&mut self, sequence: u64) -> anyhow::Result<()> {
        self.write(b'S', &sequence.to_le_bytes())?;
        clear_intent(&mut self.ring_intent, Key::Nats(sequence));
        self.in_ring.remove(&Key::Nats(sequence));
        self.unacknowledged.insert(sequence);
        self.delivered.insert(sequence);
        trim(&mut self.delivered);
        Ok(())
    }

    /// Records that NATS message `sequence` was acknowledged.
    pub fn acknowledged(&mut self, sequence: u64) -> anyhow::Result<()> {
        self.write(b'A', &sequence.to_le_bytes())?;
        self.unacknowledged.remove(&sequence);
        self.compact_if_long()
    }

    /// Records that `key` is about to be sent into a ring destination
    /// whose writer has committed `count` messages.
    pub fn ring_intent(&mut self, key: Key, count: u64) -> anyhow::Result<()> {
        self.write(b'W', &intent_body(key, count))?;
        self.ring_intent = Some((key, count));
        Ok(())
    }

    /// Settles what a killed run was about to send into the ring
    /// destination, which has committed `count` messages now, before this
    /// run sends anything: if the count moved past the one recorded, that
    /// message went in (recorded with `K`).
    ///
    /// Returns the count recorded, and whether the message is taken as in,
    /// for the bridge to say so.
    pub fn settle_ring_intent(&mut self, count: u64) -> anyhow::Result<Option<(u64, bool)>> {
        let Some((key, before)) = self.ring_intent.take() else {
            return Ok(None);
        };
        let went_in = count > before;
        if went_in && self.in_ring.insert(key) {
            self.write(b'K', &key.bytes())?;
        }
        Ok(Some((before, went_in)))
    }

    /// Whether `key` is in the ring destination already (a killed run
    /// sent it; see [`Journal::settle_ring_intent`]).
    pub fn in_ring(&self, key: Key) -> bool {
        self.in_ring.contains(&key)
    }

    fn write(&mut self, kind: u8, body: &[u8]) -> anyhow::Result<()> {
        if let Some((path, pair)) = self.pair_to_write.take() {
            write_pair(&path, &pair)?;
        }
        // One write: a killed process leaves the record whole or absent.
        self.file
            .write_all(&encode(kind, body))
            .with_context(|| format!("{}: write", self.path.display()))?;
        self.records += 1;
        Ok(())
    }

    fn compact_if_long(&mut self) -> anyhow::Result<()> {
        if self.records >= 10_000 {
            self.file = Journal::rewrite(
                &self.path,
                &self.pending,
                &self.unacknowledged,
                &self.delivered,
                self.held_ring_sequence,
                self.ring_intent,
                &self.in_ring,
            )?;
            self.records = 0;
        }
        Ok(())
    }
}

/// Binds the state directory to its source and destination.
fn write_pair(pair_file: &Path, pair: &str) -> anyhow::Result<()> {
    let fresh = pair_file.with_extension("new");
    std::fs::write(&fresh, format!("{pair}\n"))
        .with_context(|| format!("{}: write", fresh.display()))?;
    std::fs::rename(&fresh, pair_file).with_context(|| format!("{}: write", pair_file.display()))
}

/// Forgets the intent for `key`, which is now recorded delivered.
fn clear_intent(intent: &mut Option<(Key, u64)>, key: Key) {
    if intent.is_some_and(|(k, _)| k == key) {
        *intent = None;
    }
}

fn parse_key(b: &mut Body<'_>) -> Option<Key> {
    let kind = b.take(1)?[0];
    let n = b.u64()?;
    match kind {
        b'P' => Some(Key::Entry(n)),
        b'S' => Some(Key::Nats(n)),
        _ => None,
    }
}

fn intent_body(key: Key, count: u64) -> Vec<u8> {
    let mut body = key.bytes().to_vec();
    body.extend_from_slice(&count.to_le_bytes());
    body
}

/// Keeps the newest [`KEEP_DELIVERED`] sequences.
fn trim(delivered: &mut BTreeSet<u64>) {
    while delivered.len() > KEEP_DELIVERED {
        delivered.pop_first();
    }
}

fn entry_body(e: &Entry) -> Vec<u8> {
    let mut body = Vec::with_capacity(40 + e.message_id.len() + e.bytes.len());
    body.extend_from_slice(&e.id.to_le_bytes());
    body.extend_from_slice(&e.ring_sequence.unwrap_or(u64::MAX).to_le_bytes());
    tag_bytes(e.tag, &mut body);
    body.extend_from_slice(&(e.message_id.len() as u32).to_le_bytes());
    body.extend_from_slice(e.message_id.as_bytes());
    body.extend_from_slice(&(e.bytes.len() as u32).to_le_bytes());
    body.extend_from_slice(&e.bytes);
    body
}

fn encode(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(1 + body.len());
    content.push(kind);
    content.extend_from_slice(body);
    let sum = fnv1a(&content);
    let mut out = Vec::with_capacity(HEADER + content.len() + 4);
    out.extend_from_slice(&((content.len() + 4) as u32).to_le_bytes());
    out.extend_from_slice(&content);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_or_corrupt_tail_ends_the_records_there() {
        let mut all = encode(b'D', &7u64.to_le_bytes());
        all.extend(encode(b'S', &9u64.to_le_bytes()));
        assert_eq!(records(&all).len(), 2);
        let whole = all.len();
        all.extend(encode(b'A', &9u64.to_le_bytes()));
        assert_eq!(records(&all[..all.len() - 1]).len(), 2, "cut");
        let last = all.len() - 6;
        all[last] ^= 1;
        assert_eq!(records(&all).len(), 2, "flipped bit");
        assert_eq!(records(&all[..whole]).len(), 2);
    }

    /// What a killed run was about to send into a ring is settled against
    /// the ring's count before the next run sends; the verdict outlives
    /// further restarts (and the rewrite at open) until the message is
    /// recorded delivered.
    #[test]
    fn a_killed_runs_ring_send_is_settled_once_and_kept_until_delivered() {
        let dir = tempfile::Builder::new().prefix("unipc-").tempdir().unwrap();
        let state = dir.path().join("state");
        let (sent, unsent) = {
            let mut j = Journal::open(&state, "a b").unwrap();
            let e = j.append(None, Tag::None, b"x").unwrap();
            j.ring_intent(Key::Entry(e.id), 7).unwrap();
            (e.id, e.id + 1)
        };
        let mut j = Journal::open(&state, "a b").unwrap();
        j.settle_ring_intent(8).unwrap();
        assert!(j.in_ring(Key::Entry(sent)), "the ring moved: it went in");
        assert!(!j.in_ring(Key::Nats(sent)), "another message");
        // This run's own sends move the count; the verdict stands.
        j.ring_intent(Key::Nats(40), 8).unwrap();
        j.delivered(40).unwrap();
        drop(j);
        let mut j = Journal::open(&state, "a b").unwrap();
        j.settle_ring_intent(9).unwrap();
        assert!(j.in_ring(Key::Entry(sent)), "kept across a restart");
        j.done(sent).unwrap();
        assert!(!j.in_ring(Key::Entry(sent)));
        drop(j);
        let mut j = Journal::open(&state, "a b").unwrap();
        j.settle_ring_intent(9).unwrap();
        assert!(!j.in_ring(Key::Entry(sent)), "forgotten once delivered");
        // An intent the ring did not move past: not in the ring.
        j.ring_intent(Key::Entry(unsent), 9).unwrap();
        drop(j);
        let mut j = Journal::open(&state, "a b").unwrap();
        j.settle_ring_intent(9).unwrap();
        assert!(!j.in_ring(Key::Entry(unsent)));
    }

    #[test]
    fn entries_round_trip() {
        let e = Entry {
            id: 3,
            ring_sequence: Some(11),
            tag: Tag::Priority(7),
            message_id: "m-3".into(),
            bytes: b"job".to_vec(),
        };
        assert_eq!(parse_entry(&entry_body(&e)), Some(e));
    }
}
