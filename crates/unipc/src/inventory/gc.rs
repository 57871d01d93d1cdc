//! Safe cleanup: removes the IPC objects no live process can be shown to
//! use, and only those. The library half of `unipc gc`.
//!
//! | kind | stale when |
//! |---|---|
//! | `sysv-shm` | no attachment, and its creator and last user (the kernel's `shm_cpid`, `shm_lpid`) are dead; and, if unipc made it, not kept |
//! | `sysv-mq` | its creator (unipc's record) and its last sender and receiver are dead, and no live thread is blocked in `msgsnd`/`msgrcv` on it (`/proc/*/task/*/syscall`) |
//! | `sysv-sem` | its creator (unipc's record) and the last process to operate on each semaphore are dead, and nobody waits (`semncnt`/`semzcnt`, and no thread in `semop` on it, a stopped one included) |
//! | `posix-mq`, `shm`, `sem` | its creator (unipc's record) is dead and no live process has it open or mapped |
//!
//! The creator of a POSIX object or System V queue or set is known only
//! when unipc made it: its creating handle writes a record,
//! `/dev/shm/.unipc-creators-UID/CLASS-A-B` (the object's device and
//! inode, or id and key), with the creator's pid and start time and
//! whether the creator kept the object on purpose. One with no record is
//! *unowned*, and goes only with [`GcOptions::unowned`] (and then only on
//! the other conditions). One whose creator let it outlive itself on
//! purpose (`keep`, `unipc create`) is *kept*, and goes only with
//! [`GcOptions::kept`]. An object is never removed merely because the
//! process that made or opened it died while a live process still uses
//! it (the mistake behind CPython's bpo-38119).
//!
//! Whether anyone holds a POSIX object is read from `/proc/*/fd` and
//! `/proc/*/maps`. When some process's could not be read (another user's,
//! when unprivileged), a POSIX object is never taken for unused. The
//! holders are read twice, once to decide and once more just before the
//! removals, and an object whose name now leads to another file is left:
//! POSIX has no "unlink if unused", so a process that opens an object in
//! the last instant before its removal still has its descriptor, but the
//! name is gone.
//!
//! A System V queue has no holders to read: a process that last sent or
//! received, or is blocked in `msgsnd`/`msgrcv` on it, is what shows it in
//! use. A receiver waiting *with a timeout* polls (the kernel has no timed
//! `msgrcv`), and between its tries it is seen nowhere: a queue whose
//! creator is dead and whose only user is such a waiter that has not yet
//! received can be taken for stale. unipc's own queues name their
//! creator, so this needs the creator dead too.

use super::procs::Processes;
use super::{Details, Kind, ListOptions, Listing, Object, Pid, Unreadable};
use crate::creator::{self, Class};
use crate::{Error, Result};

/// The kinds `gc` collects.
pub const COLLECTED: [Kind; 6] = [
    Kind::SysvMq,
    Kind::SysvSem,
    Kind::SysvShm,
    Kind::PosixMq,
    Kind::Shm,
    Kind::Sem,
];

/// What [`GcOptions::run`] collects, and whether it removes.
///
/// ```
/// use unipc::inventory::gc::GcOptions;
/// use unipc::inventory::Kind;
/// let report = GcOptions::new().kind(Kind::Shm).dry_run(true).run().unwrap();
/// assert!(report.decisions.iter().all(|d| d.object.kind == Kind::Shm));
/// ```
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct GcOptions {
    kinds: Vec<Kind>,
    unowned: bool,
    kept: bool,
    dry_run: bool,
    private_namespace: bool,
}

/// What became of one object.
#[derive(Debug)]
#[non_exhaustive]
pub enum Outcome {
    /// Not stale: it stays.
    Stays,
    /// Stale; a dry run removes nothing.
    WouldGo,
    /// Removed.
    Removed,
    /// Stale, but the removal failed (or found the name changed).
    Failed(Error),
}

/// One object, the verdict and why.
#[derive(Debug)]
#[non_exhaustive]
pub struct Decision {
    /// The object as listed.
    pub object: Object,
    /// Why it goes, or why it stays.
    pub reason: String,
    /// What was done.
    pub outcome: Outcome,
}

/// What [`GcOptions::run`] did.
///
/// ```
/// use unipc::inventory::gc::{GcOptions, Outcome};
/// let report = GcOptions::new().dry_run(true).run().unwrap();
/// for d in &report.decisions {
///     let verb = if matches!(d.outcome, Outcome::WouldGo) { "would remove" } else { "stays" };
///     println!("{verb} {}: {}", d.object.name, d.reason);
/// }
/// ```
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Report {
    /// One per object of the kinds collected, in listing order.
    pub decisions: Vec<Decision>,
    /// Creator records whose object is gone, removed (counted also in a
    /// dry run, which removes none).
    pub stale_records: usize,
    /// What the listing could not read.
    pub unreadable: Vec<Unreadable>,
}

impl GcOptions {
    /// Every kind collected; owned objects only; removes.
    pub fn new() -> GcOptions {
        GcOptions::default()
    }

    /// Collects `kind` (repeatable; every kind in [`COLLECTED`] when none).
    pub fn kind(mut self, kind: Kind) -> GcOptions {
        self.kinds.push(kind);
        self
    }

    /// Collects these kinds.
    pub fn kinds(mut self, kinds: &[Kind]) -> GcOptions {
        self.kinds.extend_from_slice(kinds);
        self
    }

    /// Also removes objects with no creator record, on the other
    /// conditions.
    pub fn unowned(mut self, unowned: bool) -> GcOptions {
        self.unowned = unowned;
        self
    }

    /// Also removes objects their creator kept on purpose, on the other
    /// conditions.
    pub fn kept(mut self, kept: bool) -> GcOptions {
        self.kept = kept;
        self
    }

    /// Decides and reports, removes nothing.
    pub fn dry_run(mut self, dry_run: bool) -> GcOptions {
        self.dry_run = dry_run;
        self
    }

    /// Says that no process outside this PID namespace shares its IPC
    /// namespace and its `/dev/shm`: only then does a run in a nested PID
    /// namespace (a container's) judge anything. Without it, such a run
    /// removes nothing: processes of the parent namespace that share the
    /// objects are invisible in this `/proc`, and a System V pid they left
    /// reads 0 here.
    pub fn private_namespace(mut self, private: bool) -> GcOptions {
        self.private_namespace = private;
        self
    }

    /// Lists, decides, and (unless a dry run) removes the stale objects.
    ///
    /// # Errors
    /// [`Error::InvalidName`] for a kind `gc` does not collect (sockets,
    /// FIFOs, locks: they go with their holders); the errors of
    /// [`ListOptions::list`]. A failed removal is no error: it is that
    /// object's [`Outcome::Failed`].
    pub fn run(&self) -> Result<Report> {
        if let Some(kind) = self.kinds.iter().find(|k| !COLLECTED.contains(k)) {
            return Err(Error::InvalidName {
                kind: "object kind",
                input: kind.to_string(),
                reason: format!(
                    "gc collects {}; sockets, FIFOs and locks go with the processes that hold them",
                    COLLECTED.map(Kind::as_str).join(", ")
                ),
            });
        }
        let kinds = if self.kinds.is_empty() {
            COLLECTED.to_vec()
        } else {
            self.kinds.clone()
        };
        let listing = ListOptions::new().kinds(&kinds).list()?;
        let procs_unreadable = listing
            .unreadable
            .iter()
            .any(|u| u.what.starts_with("/proc/"));
        let nested = !self.private_namespace && in_nested_pid_namespace();
        let stale_records = self.prune_records(&listing, &kinds);
        let mut unreadable = listing.unreadable.clone();
        for (what, reason) in creator::foreign_directories() {
            unreadable.push(Unreadable {
                what,
                reason: format!("creator records ignored: {reason}"),
            });
        }
        let mut decisions: Vec<Decision> = listing
            .objects
            .iter()
            .map(|object| {
                let (stale, reason) = if nested {
                    (
                        false,
                        "this PID namespace is nested: processes outside it may use it unseen (--private-namespace if none can)"
                            .to_owned(),
                    )
                } else {
                    self.judge(object, procs_unreadable)
                };
                Decision {
                    object: object.clone(),
                    reason,
                    outcome: if stale {
                        Outcome::WouldGo
                    } else {
                        Outcome::Stays
                    },
                }
            })
            .collect();
        if !self.dry_run
            && decisions
                .iter()
                .any(|d| matches!(d.outcome, Outcome::WouldGo))
        {
            // Once more, just before removing: a holder that came since.
            let mut ignored = Vec::new();
            let again = Processes::scan(&mut ignored);
            for d in &mut decisions {
                if matches!(d.outcome, Outcome::WouldGo) {
                    d.outcome = remove(&d.object, &again);
                }
            }
        }
        Ok(Report {
            decisions,
            stale_records,
            unreadable,
        })
    }

    /// Whether `object` is stale, and why (or why not).
    fn judge(&self, object: &Object, procs_unreadable: bool) -> (bool, String) {
        let dead = |p: &Pid| p.pid == 0 || !p.alive;
        let pids = |ps: &[&Pid]| {
            ps.iter()
                .filter(|p| p.pid != 0 && p.alive)
                .map(|p| p.pid.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let holders = object.details.holders();
        if !holders.is_empty() {
            let who: Vec<String> = holders
                .iter()
                .map(|h| format!("{} ({})", h.pid, h.command))
                .collect();
            return (false, format!("held by {}", who.join(", ")));
        }
        match &object.details {
            Details::SysvShm {
                id,
                key,
                creator_uid,
                attached,
                creator,
                last_op,
                removed,
                ..
            } => {
                if *removed {
                    (
                        false,
                        "already removed; goes with its last attachment".into(),
                    )
                } else if *attached > 0 {
                    (false, format!("{attached} attachment(s)"))
                } else if !dead(creator) || !dead(last_op) {
                    (
                        false,
                        format!("process {} lives", pids(&[creator, last_op])),
                    )
                } else {
                    let facts = format!(
                        "no attachment; creator {} and last user {} are dead",
                        creator.pid, last_op.pid
                    );
                    let identity = creator::sysv_identity(*id, *key);
                    match creator::read(*creator_uid, Class::SysvShm, identity) {
                        // unipc made it and kept it on purpose.
                        Some(entry) if entry.kept && !self.kept => (
                            false,
                            format!(
                                "kept on purpose by its creator {} (--kept removes it)",
                                entry.pid
                            ),
                        ),
                        // The kernel's facts suffice, whoever made it.
                        _ => (true, facts),
                    }
                }
            }
            Details::SysvMq {
                id,
                key,
                creator_uid,
                last_send,
                last_receive,
                waiting,
                ..
            } => {
                if let Some(w) = waiting.first() {
                    return (
                        false,
                        format!("process {} ({}) waits on it", w.pid, w.command),
                    );
                }
                if procs_unreadable {
                    return (
                        false,
                        "some processes cannot be read by this user, and one may wait on it".into(),
                    );
                }
                if !dead(last_send) || !dead(last_receive) {
                    return (
                        false,
                        format!("process {} lives", pids(&[last_send, last_receive])),
                    );
                }
                self.by_record(
                    *creator_uid,
                    Class::SysvMq,
                    creator::sysv_identity(*id, *key),
                    "its last sender and receiver are dead",
                )
            }
            Details::SysvSem {
                id,
                key,
                creator_uid,
                waiting_increase,
                waiting_zero,
                last_op,
                waiting,
                ..
            } => {
                if let Some(w) = waiting.first() {
                    return (
                        false,
                        format!("process {} ({}) waits on it", w.pid, w.command),
                    );
                }
                let (Some(up), Some(zero)) = (waiting_increase, waiting_zero) else {
                    return (false, "this user may not read its state".into());
                };
                if up + zero > 0 {
                    return (false, format!("{} process(es) wait on it", up + zero));
                }
                let alive: Vec<&Pid> = last_op.iter().filter(|p| !dead(p)).collect();
                if !alive.is_empty() {
                    return (false, format!("process {} lives", pids(&alive)));
                }
                self.by_record(
                    *creator_uid,
                    Class::SysvSem,
                    creator::sysv_identity(*id, *key),
                    "the last to operate on it are dead",
                )
            }
            Details::DevShm { dev, inode, .. } | Details::PosixMq { dev, inode, .. } => {
                if procs_unreadable {
                    return (
                        false,
                        "some processes cannot be read by this user, and one may hold it".into(),
                    );
                }
                let Some(owner) = object.owner else {
                    return (false, "its owner is unknown".into());
                };
                let Some((class, _)) = record_of(object) else {
                    return (false, "not collected".into());
                };
                self.by_record(
                    owner.uid,
                    class,
                    (*dev, *inode),
                    "no live process has it open or mapped",
                )
            }
            _ => (false, "not collected".into()),
        }
    }

    /// The verdict from the creator record of user `uid`'s object, once the
    /// kernel's own facts (`dead_because`) allowed removing it.
    fn by_record(
        &self,
        uid: u32,
        class: Class,
        identity: creator::Identity,
        dead_because: &str,
    ) -> (bool, String) {
        match creator::read(uid, class, identity) {
            Some(entry) if entry.creator_alive() => {
                (false, format!("its creator {} lives", entry.pid))
            }
            Some(entry) if entry.kept && !self.kept => (
                false,
                format!(
                    "kept on purpose by its creator {} (--kept removes it)",
                    entry.pid
                ),
            ),
            Some(entry) => (
                true,
                format!(
                    "its creator {} is dead{}; {dead_because}",
                    entry.pid,
                    if entry.kept { " (kept)" } else { "" }
                ),
            ),
            None if self.unowned => (true, format!("unowned; {dead_because}")),
            None => (
                false,
                "unowned: not made by unipc, or its record is gone (--unowned removes it)".into(),
            ),
        }
    }

    /// Removes (or in a dry run counts) the records, of the kinds listed,
    /// whose object is no longer there.
    fn prune_records(&self, listing: &Listing, kinds: &[Kind]) -> usize {
        let present: Vec<(Class, creator::Identity)> =
            listing.objects.iter().filter_map(record_of).collect();
        let listed = |class: Class| {
            kinds.contains(&match class {
                Class::Shm => Kind::Shm,
                Class::Sem => Kind::Sem,
                Class::Mq => Kind::PosixMq,
                Class::SysvMq => Kind::SysvMq,
                Class::SysvSem => Kind::SysvSem,
                Class::SysvShm => Kind::SysvShm,
            })
        };
        let me = crate::sys::proc::euid();
        let users = if me == 0 { creator::users() } else { vec![me] };
        let mut count = 0;
        for uid in users {
            for (class, identity) in creator::all(uid) {
                if listed(class) && !present.contains(&(class, identity)) {
                    count += 1;
                    if !self.dry_run {
                        creator::forget(uid, class, identity);
                    }
                }
            }
        }
        count
    }
}

/// The creator record an object would have: its class and identity.
fn record_of(o: &Object) -> Option<(Class, creator::Identity)> {
    Some(match &o.details {
        Details::DevShm { dev, inode, .. } if o.kind == Kind::Sem => (Class::Sem, (*dev, *inode)),
        Details::DevShm { dev, inode, .. } => (Class::Shm, (*dev, *inode)),
        Details::PosixMq { dev, inode, .. } => (Class::Mq, (*dev, *inode)),
        Details::SysvMq { id, key, .. } => (Class::SysvMq, creator::sysv_identity(*id, *key)),
        Details::SysvSem { id, key, .. } => (Class::SysvSem, creator::sysv_identity(*id, *key)),
        Details::SysvShm { id, key, .. } => (Class::SysvShm, creator::sysv_identity(*id, *key)),
        _ => return None,
    })
}

/// The inode of the initial PID namespace (`PROC_PID_INIT_INO`, fixed in
/// the kernel since 3.8).
const INITIAL_PID_NAMESPACE: u64 = 0xEFFF_FFFC;

/// Whether this process runs in a PID namespace other than the initial
/// one (a container's, an `unshare --pid`'s): its `/proc/self/ns/pid` is
/// not the initial namespace's inode. (`NSpid:` cannot tell: with `/proc`
/// mounted for the namespace it lists one pid.) Unreadable counts as
/// nested.
fn in_nested_pid_namespace() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid").map_or(true, |m| m.ino() != INITIAL_PID_NAMESPACE)
}

/// Removes a stale object, if it is still the one judged and `procs` (read
/// again) shows no holder.
fn remove(object: &Object, procs: &Processes) -> Outcome {
    let changed = |what: &str| {
        Outcome::Failed(Error::os(
            object.name.as_str(),
            "gc",
            std::io::Error::other(format!("{what} since it was judged; left alone")),
        ))
    };
    let os = |op: &'static str, err: std::io::Error| {
        Outcome::Failed(Error::os(object.name.as_str(), op, err))
    };
    match &object.details {
        Details::SysvShm {
            id,
            key,
            creator,
            last_op,
            ..
        } => {
            let Ok(st) = crate::sys::shm::stat(*id) else {
                return Outcome::Removed;
            };
            if st.attached != 0
                || st.perm.key != *key
                || st.creator_pid as u32 != creator.pid
                || st.last_pid as u32 != last_op.pid
            {
                return changed("it was attached or replaced");
            }
            match crate::sys::shm::remove(*id) {
                Ok(()) => {
                    creator::forget(
                        st.perm.cuid,
                        Class::SysvShm,
                        creator::sysv_identity(*id, *key),
                    );
                    Outcome::Removed
                }
                Err(err) => os("shmctl(IPC_RMID)", err),
            }
        }
        Details::SysvMq { id, .. } => match crate::message::sysv_mq::Queue::open_id(*id) {
            Ok(queue) => match queue.remove() {
                Ok(()) => Outcome::Removed,
                Err(err) => Outcome::Failed(err),
            },
            Err(err) => Outcome::Failed(err),
        },
        Details::SysvSem { id, .. } => match crate::sync::sysv_sem::SemaphoreSet::open_id(*id) {
            Ok(set) => match set.remove() {
                Ok(()) => Outcome::Removed,
                Err(err) => Outcome::Failed(err),
            },
            Err(err) => Outcome::Failed(err),
        },
        Details::DevShm { dev, inode, .. } | Details::PosixMq { dev, inode, .. } => {
            if !procs.holders_of_file(*dev, *inode).is_empty() {
                return changed("a process opened it");
            }
            let Some((_, rest)) = object.name.split_once(':') else {
                return changed("its name");
            };
            let Ok(name) = rest.parse::<crate::name::PosixName>() else {
                return changed("its name");
            };
            let file = match object.kind {
                Kind::Sem => format!("sem.{}", name.as_str().trim_start_matches('/')),
                _ => name.as_str().trim_start_matches('/').to_owned(),
            };
            let same = if object.kind == Kind::PosixMq {
                crate::creator::identity_of_queue(name.as_str())
            } else {
                crate::creator::identity_of_dev_shm(&file)
            };
            if same != Some((*dev, *inode)) {
                return changed("its name leads to another object");
            }
            let removed = match object.kind {
                Kind::Sem => crate::sync::posix_sem::remove(&name),
                Kind::PosixMq => crate::message::posix_mq::unlink(&name),
                _ => crate::shm::posix::unlink(&name),
            };
            match removed {
                Ok(()) => Outcome::Removed,
                Err(err) => Outcome::Failed(err),
            }
        }
        _ => Outcome::Stays,
    }
}
