//! The hand-off section: how long one process takes to wake another and be
//! woken back through each synchronization primitive, through unipc and
//! through the raw calls, side by side.
//!
//! Between this process and a peer (this binary again, role [`ROLE`]
//! after [`PEER_ARG`](crate::PEER_ARG)), for each primitive, one round trip
//! is: the parent signals, the peer wakes and signals back, the parent
//! wakes. Timed per round trip into an HDR histogram, the median over a
//! window; windows through unipc and through the raw calls alternate in
//! pairs, as in the latency table, and the overhead is the median of the
//! pairs' ratios.
//!
//! - `posix-sem`: two unnamed process-shared semaphores in shared memory,
//!   `sem_post` one, `sem_wait` the other (busy-poll: `sem_trywait`).
//! - `sysv-sem`: one set of two; `semop(+1)` on one, `semop(-1)` on the
//!   other (busy-poll: `IPC_NOWAIT`).
//! - `eventfd`: two eventfds, a write of 1 and a read (busy-poll: the
//!   descriptors non-blocking).
//! - `futex`: two 32-bit words in shared memory, a store and
//!   `FUTEX_WAKE`, a `FUTEX_WAIT` while the word is unchanged (busy-poll:
//!   spinning on the word, no system call at all).
//! - `mutex-condvar`: a robust process-shared mutex and a condition
//!   variable over a turn word; blocking only, as a condition variable has
//!   no busy-polling form.
//!
//! Everything lives in one System V segment that the parent removes as
//! soon as the peer has attached, one semaphore set, both made under fresh
//! keys announced to the interrupt clean-up before they exist, and two
//! eventfds the peer inherits: a killed run leaves nothing.
//!
//! # Safety
//! The raw calls operate in place on objects in the shared segment
//! (`sem_t`, `pthread_mutex_t`, `pthread_cond_t`): each pointer is the
//! segment's address plus an offset inside it, checked when the segment is
//! attached, properly aligned (the offsets are multiples of 64), and the
//! segment stays attached for as long as any `Raw` side exists. The peer
//! adopts the two eventfds it inherits by number, as in `peer.rs`.
#![allow(unsafe_code)]

use std::io::{BufRead, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use unipc::name::SysvKey;
use unipc::shm::sysv::{Segment, SegmentOptions};
use unipc::shm::{Access, Mapping};

use crate::handoff_unipc::Objects;
use crate::peer::SectionPeer;
use crate::report::{ratio_spread, Placement, Spread, WaitMode};

/// The role argument after `__bench-peer` that makes this section's peer.
pub const ROLE: &str = "hand-off";

/// The name `--facility` takes to run this section.
pub const SECTION: &str = "hand-off";

/// Where each object lives in the shared segment: the words both sides
/// use, the library's objects in the first page, the raw side's own of the
/// same kinds in the second (the library's slots carry a header).
pub(crate) mod at {
    pub const STOP: usize = 0;
    pub const FUTEX_TO_PEER: usize = 64;
    pub const FUTEX_TO_PARENT: usize = 128;
    /// 1: the peer's turn; 0: the parent's.
    pub const TURN: usize = 192;
    pub const SEM_TO_PEER: usize = 256;
    pub const SEM_TO_PARENT: usize = 512;
    pub const MUTEX: usize = 1024;
    pub const CONDVAR: usize = 2048;
    pub const RAW: usize = 4096;
    pub const RAW_SEM_TO_PEER: usize = RAW + SEM_TO_PEER;
    pub const RAW_SEM_TO_PARENT: usize = RAW + SEM_TO_PARENT;
    pub const RAW_MUTEX: usize = RAW + MUTEX;
    pub const RAW_CONDVAR: usize = RAW + CONDVAR;
    pub const SIZE: usize = 2 * RAW;
}

/// A primitive measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Primitive {
    /// Unnamed POSIX semaphores in shared memory.
    PosixSem,
    /// A System V semaphore set.
    SysvSem,
    /// eventfd.
    Eventfd,
    /// futex on a shared word.
    Futex,
    /// A robust mutex and a condition variable.
    MutexCondvar,
}

impl Primitive {
    /// Every primitive, in report order.
    pub const ALL: [Primitive; 5] = [
        Primitive::PosixSem,
        Primitive::SysvSem,
        Primitive::Eventfd,
        Primitive::Futex,
        Primitive::MutexCondvar,
    ];

    /// The name in the reports.
    pub fn name(self) -> &'static str {
        match self {
            Primitive::PosixSem => "posix-sem",
            Primitive::SysvSem => "sysv-sem",
            Primitive::Eventfd => "eventfd",
            Primitive::Futex => "futex",
            Primitive::MutexCondvar => "mutex-condvar",
        }
    }

    fn parse(name: &str) -> Option<Primitive> {
        Primitive::ALL.into_iter().find(|p| p.name() == name)
    }

    fn busy_polls(self) -> bool {
        self != Primitive::MutexCondvar
    }
}

/// Through unipc or through the raw calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    Unipc,
    Raw,
}

impl Via {
    fn name(self) -> &'static str {
        match self {
            Via::Unipc => "unipc",
            Via::Raw => "raw",
        }
    }
}

/// One primitive in one scenario.
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    /// Which primitive.
    pub primitive: Primitive,
    /// Blocking or busy-polling.
    pub wait: WaitMode,
    /// Where the two processes ran.
    pub placement: Placement,
    /// unipc's median round trip over the windows, nanoseconds.
    pub unipc_p50_ns: Spread,
    /// The raw calls' median round trip, nanoseconds.
    pub raw_p50_ns: Spread,
    /// The median over the pairs of unipc's p50 over the raw p50.
    pub overhead: f64,
    /// How much the pairs' ratios disagree (see `report::ratio_spread`).
    pub ratio_spread: Option<f64>,
    /// Whether `ratio_spread` stayed above the run's noise limit.
    pub noisy: bool,
    /// Pairs of windows measured.
    pub pairs: usize,
}

/// The section's results.
#[derive(Clone, Debug, Serialize)]
pub struct HandOff {
    /// Every primitive in every scenario that could run.
    pub figures: Vec<Figure>,
    /// Scenarios not measured, and why.
    pub notes: Vec<String>,
    /// Why nothing was measured, when nothing was.
    pub skipped: Option<String>,
}

/// How the section is run.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// The parent's and the peer's CPU, when they may be placed apart.
    pub cpus: Option<(usize, usize)>,
    /// Pairs of windows each figure gets first.
    pub pairs: usize,
    /// Time one window measures.
    pub window: Duration,
    /// Time one figure may take in all, adding pairs until they agree.
    pub figure_budget: Duration,
    /// The ratio spread above which a figure is noisy.
    pub noise_limit: f64,
}

/// Runs the section.
pub fn run(settings: &Settings) -> HandOff {
    let mut figures = Vec::new();
    let mut notes = Vec::new();
    let skipped = match measure(settings, &mut figures, &mut notes) {
        Ok(()) => None,
        Err(e) => {
            figures.clear();
            Some(e)
        }
    };
    HandOff {
        figures,
        notes,
        skipped,
    }
}

/// The objects both processes hold.
pub(crate) struct Shared {
    pub(crate) map: Mapping,
    pub(crate) sem_set: i32,
    /// To the peer, to the parent.
    pub(crate) events: [OwnedFd; 2],
}

impl Shared {
    pub(crate) fn word(&self, offset: usize) -> &AtomicU32 {
        self.map
            .atomic_u32(offset)
            .expect("the layout's words lie inside the segment")
    }

    pub(crate) fn ptr<T>(&self, offset: usize) -> *mut T {
        assert!(offset + std::mem::size_of::<T>() <= self.map.len());
        (self.map.addr() + offset) as *mut T
    }
}

/// One side of a hand-off.
pub(crate) trait Side {
    /// The parent: signal the peer, then wait for its answer.
    fn ping(&mut self) -> Result<(), String>;
    /// The peer: wait for the parent's signal.
    fn wait_ping(&mut self) -> Result<(), String>;
    /// The peer: answer.
    fn answer(&mut self) -> Result<(), String>;
    /// Called once before the first ping (the mutex is taken here).
    fn start(&mut self) -> Result<(), String> {
        Ok(())
    }
    /// Called once after the last ping or answer.
    fn end(&mut self) -> Result<(), String> {
        Ok(())
    }
}

fn os(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

fn check(what: &str, rc: libc::c_int) -> Result<(), String> {
    match rc {
        0 => Ok(()),
        e => Err(format!("{what}: {}", std::io::Error::from_raw_os_error(e))),
    }
}

/// In the parent: initializes the raw side's semaphores, mutex and
/// condition variable in the segment's second page, with the attributes
/// the library's have (process-shared; robust and error-checking;
/// `CLOCK_MONOTONIC`).
fn init_raw(shared: &Shared) -> Result<(), String> {
    for offset in [at::RAW_SEM_TO_PEER, at::RAW_SEM_TO_PARENT] {
        // SAFETY: a sem_t's room inside the segment, aligned (see the
        // module's Safety section), not yet in use.
        if unsafe { libc::sem_init(shared.ptr(offset), 1, 0) } != 0 {
            return Err(os("sem_init"));
        }
    }
    let mut mutex_attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
    let ma = mutex_attr.as_mut_ptr();
    // SAFETY: `ma` points to room for an attribute object, initialized by
    // the first call and used only after it.
    check("pthread_mutexattr_init", unsafe {
        libc::pthread_mutexattr_init(ma)
    })?;
    // SAFETY: an initialized attribute object.
    check("setpshared", unsafe {
        libc::pthread_mutexattr_setpshared(ma, libc::PTHREAD_PROCESS_SHARED)
    })?;
    // SAFETY: as above.
    check("setrobust", unsafe {
        libc::pthread_mutexattr_setrobust(ma, libc::PTHREAD_MUTEX_ROBUST)
    })?;
    // SAFETY: as above.
    check("settype", unsafe {
        libc::pthread_mutexattr_settype(ma, libc::PTHREAD_MUTEX_ERRORCHECK)
    })?;
    // SAFETY: a pthread_mutex_t's room in the segment, not yet in use, and
    // the initialized attributes.
    check("pthread_mutex_init", unsafe {
        libc::pthread_mutex_init(shared.ptr(at::RAW_MUTEX), ma)
    })?;
    let mut cond_attr = std::mem::MaybeUninit::<libc::pthread_condattr_t>::uninit();
    let ca = cond_attr.as_mut_ptr();
    // SAFETY: as for the mutex attributes.
    check("pthread_condattr_init", unsafe {
        libc::pthread_condattr_init(ca)
    })?;
    // SAFETY: an initialized attribute object.
    check("setpshared", unsafe {
        libc::pthread_condattr_setpshared(ca, libc::PTHREAD_PROCESS_SHARED)
    })?;
    // SAFETY: as above.
    check("setclock", unsafe {
        libc::pthread_condattr_setclock(ca, libc::CLOCK_MONOTONIC)
    })?;
    // SAFETY: a pthread_cond_t's room in the segment, not yet in use.
    check("pthread_cond_init", unsafe {
        libc::pthread_cond_init(shared.ptr(at::RAW_CONDVAR), ca)
    })?;
    Ok(())
}

/// The raw calls, on the same kinds of objects.
struct Raw<'s> {
    primitive: Primitive,
    shared: &'s Shared,
    busy: bool,
    /// The peer's count of the parent's futex signals seen.
    seen: u32,
}

impl Raw<'_> {
    fn sem_post(&self, offset: usize) -> Result<(), String> {
        // SAFETY: an initialized process-shared sem_t in the segment (see
        // the module's Safety section).
        if unsafe { libc::sem_post(self.shared.ptr(offset)) } != 0 {
            return Err(os("sem_post"));
        }
        Ok(())
    }

    fn sem_wait(&self, offset: usize) -> Result<(), String> {
        loop {
            let sem = self.shared.ptr(offset);
            let rc = if self.busy {
                // SAFETY: as in `sem_post`.
                unsafe { libc::sem_trywait(sem) }
            } else {
                // SAFETY: as in `sem_post`.
                unsafe { libc::sem_wait(sem) }
            };
            if rc == 0 {
                return Ok(());
            }
            match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::EAGAIN | libc::EINTR) => std::hint::spin_loop(),
                _ => return Err(os("sem_wait")),
            }
        }
    }

    fn semop(&self, index: u16, delta: i16) -> Result<(), String> {
        let mut op = libc::sembuf {
            sem_num: index,
            sem_op: delta,
            sem_flg: if self.busy && delta < 0 {
                libc::IPC_NOWAIT as i16
            } else {
                0
            },
        };
        loop {
            // SAFETY: one sembuf, a live local, and its count.
            if unsafe { libc::semop(self.shared.sem_set, &mut op, 1) } == 0 {
                return Ok(());
            }
            match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::EAGAIN | libc::EINTR) => std::hint::spin_loop(),
                _ => return Err(os("semop")),
            }
        }
    }

    fn event_add(&self, fd: BorrowedFd<'_>) -> Result<(), String> {
        rustix::io::write(fd, &1u64.to_ne_bytes()).map_err(|e| format!("eventfd write: {e}"))?;
        Ok(())
    }

    fn event_take(&self, fd: BorrowedFd<'_>) -> Result<(), String> {
        let mut count = [0u8; 8];
        loop {
            match rustix::io::read(fd, &mut count) {
                Ok(_) => return Ok(()),
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => std::hint::spin_loop(),
                Err(e) => return Err(format!("eventfd read: {e}")),
            }
        }
    }

    fn futex_signal(&self, word: &AtomicU32, value: u32) -> Result<(), String> {
        word.store(value, SeqCst);
        if !self.busy {
            rustix::thread::futex::wake(word, rustix::thread::futex::Flags::empty(), 1)
                .map_err(|e| format!("futex wake: {e}"))?;
        }
        Ok(())
    }

    /// Waits until `word` is no longer `old`; returns its new value.
    fn futex_await(&self, word: &AtomicU32, old: u32) -> Result<u32, String> {
        loop {
            let now = word.load(SeqCst);
            if now != old {
                return Ok(now);
            }
            if self.busy {
                std::hint::spin_loop();
                continue;
            }
            match rustix::thread::futex::wait(
                word,
                rustix::thread::futex::Flags::empty(),
                old,
                None,
            ) {
                Ok(()) | Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
                Err(e) => return Err(format!("futex wait: {e}")),
            }
        }
    }

    fn lock(&self) -> Result<(), String> {
        // SAFETY: an initialized robust process-shared mutex in the segment.
        match unsafe { libc::pthread_mutex_lock(self.shared.ptr(at::RAW_MUTEX)) } {
            0 => Ok(()),
            e => Err(format!(
                "pthread_mutex_lock: {}",
                std::io::Error::from_raw_os_error(e)
            )),
        }
    }

    fn unlock(&self) -> Result<(), String> {
        // SAFETY: as in `lock`; this process holds it.
        match unsafe { libc::pthread_mutex_unlock(self.shared.ptr(at::RAW_MUTEX)) } {
            0 => Ok(()),
            e => Err(format!(
                "pthread_mutex_unlock: {}",
                std::io::Error::from_raw_os_error(e)
            )),
        }
    }

    /// With the mutex held: sets the turn to `to`, signals, and waits
    /// until the turn is `until`.
    fn turn(&self, to: u32, until: u32) -> Result<(), String> {
        let turn = self.shared.word(at::TURN);
        if to != until {
            turn.store(to, SeqCst);
            // SAFETY: an initialized process-shared condition variable in
            // the segment.
            unsafe { libc::pthread_cond_signal(self.shared.ptr(at::RAW_CONDVAR)) };
        }
        while turn.load(SeqCst) != until {
            // SAFETY: the condition variable and the mutex this process
            // holds, both initialized process-shared in the segment.
            let rc = unsafe {
                libc::pthread_cond_wait(
                    self.shared.ptr(at::RAW_CONDVAR),
                    self.shared.ptr(at::RAW_MUTEX),
                )
            };
            if rc != 0 {
                return Err(format!(
                    "pthread_cond_wait: {}",
                    std::io::Error::from_raw_os_error(rc)
                ));
            }
        }
        Ok(())
    }
}

impl Side for Raw<'_> {
    fn start(&mut self) -> Result<(), String> {
        match self.primitive {
            Primitive::MutexCondvar => self.lock(),
            Primitive::Futex => {
                self.seen = self.shared.word(at::FUTEX_TO_PEER).load(SeqCst);
                Ok(())
            }
            Primitive::Eventfd => {
                for fd in &self.shared.events {
                    set_nonblocking(fd.as_fd(), self.busy)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn end(&mut self) -> Result<(), String> {
        match self.primitive {
            Primitive::MutexCondvar => self.unlock(),
            _ => Ok(()),
        }
    }

    fn ping(&mut self) -> Result<(), String> {
        let s = self.shared;
        match self.primitive {
            Primitive::PosixSem => {
                self.sem_post(at::RAW_SEM_TO_PEER)?;
                self.sem_wait(at::RAW_SEM_TO_PARENT)
            }
            Primitive::SysvSem => {
                self.semop(0, 1)?;
                self.semop(1, -1)
            }
            Primitive::Eventfd => {
                self.event_add(s.events[0].as_fd())?;
                self.event_take(s.events[1].as_fd())
            }
            Primitive::Futex => {
                let back = s.word(at::FUTEX_TO_PARENT).load(SeqCst);
                let next = s.word(at::FUTEX_TO_PEER).load(SeqCst).wrapping_add(1);
                self.futex_signal(s.word(at::FUTEX_TO_PEER), next)?;
                self.futex_await(s.word(at::FUTEX_TO_PARENT), back)?;
                Ok(())
            }
            Primitive::MutexCondvar => self.turn(1, 0),
        }
    }

    fn wait_ping(&mut self) -> Result<(), String> {
        let s = self.shared;
        match self.primitive {
            Primitive::PosixSem => self.sem_wait(at::RAW_SEM_TO_PEER),
            Primitive::SysvSem => self.semop(0, -1),
            Primitive::Eventfd => self.event_take(s.events[0].as_fd()),
            Primitive::Futex => {
                self.seen = self.futex_await(s.word(at::FUTEX_TO_PEER), self.seen)?;
                Ok(())
            }
            Primitive::MutexCondvar => self.turn(1, 1),
        }
    }

    fn answer(&mut self) -> Result<(), String> {
        let s = self.shared;
        match self.primitive {
            Primitive::PosixSem => self.sem_post(at::RAW_SEM_TO_PARENT),
            Primitive::SysvSem => self.semop(1, 1),
            Primitive::Eventfd => self.event_add(s.events[1].as_fd()),
            Primitive::Futex => self.futex_signal(s.word(at::FUTEX_TO_PARENT), self.seen),
            Primitive::MutexCondvar => {
                s.word(at::TURN).store(0, SeqCst);
                // SAFETY: as in `Raw::turn`.
                unsafe { libc::pthread_cond_signal(s.ptr(at::RAW_CONDVAR)) };
                Ok(())
            }
        }
    }
}

pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> Result<(), String> {
    let flags = rustix::fs::fcntl_getfl(fd).map_err(|e| format!("fcntl: {e}"))?;
    let wanted = if on {
        flags | rustix::fs::OFlags::NONBLOCK
    } else {
        flags - rustix::fs::OFlags::NONBLOCK
    };
    rustix::fs::fcntl_setfl(fd, wanted).map_err(|e| format!("fcntl: {e}"))
}

fn side<'s>(
    primitive: Primitive,
    via: Via,
    busy: bool,
    shared: &'s Shared,
    objects: &'s Objects<'s>,
) -> Result<Box<dyn Side + 's>, String> {
    match via {
        Via::Raw => Ok(Box::new(Raw {
            primitive,
            shared,
            busy,
            seen: 0,
        })),
        Via::Unipc => crate::handoff_unipc::side(primitive, busy, shared, objects),
    }
}

fn measure(
    settings: &Settings,
    figures: &mut Vec<Figure>,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    use unipc::facility::CreatedObject;
    let mut registry = crate::interrupt::registry();
    // Fresh keys, told before the objects exist (see `CreatedObject`).
    let segment_key = unipc::facility::fresh_sysv_key();
    let set_key = unipc::facility::fresh_sysv_key();
    registry.created(&CreatedObject::SysvShm(segment_key));
    let forget = |registry: &mut crate::interrupt::Registry| {
        registry.forget(&CreatedObject::SysvSemaphores(set_key));
        registry.forget(&CreatedObject::SysvShm(segment_key));
    };
    let segment = match SegmentOptions::new()
        .size(at::SIZE)
        .mode(unipc::Mode::OWNER_RW)
        .exclusive(true)
        .create(SysvKey::Key(segment_key))
    {
        Ok(segment) => segment,
        Err(e) => {
            forget(&mut registry);
            return Err(e.to_string());
        }
    };
    registry.created(&CreatedObject::SysvSemaphores(set_key));
    let made = make_shared(&segment, set_key);
    let result = match made {
        Ok((shared, set)) => run_with(settings, &segment, &shared, set, registry, figures, notes),
        Err(e) => {
            drop(registry);
            Err(e)
        }
    };
    // The set's owner handle has removed it by now; the segment goes here.
    let _ = segment.remove();
    forget(&mut crate::interrupt::registry());
    result
}

/// Attaches the segment and makes the semaphore set (under `set_key`,
/// announced already) and the eventfds, while the interrupt registry is
/// held.
fn make_shared(
    segment: &Segment,
    set_key: i32,
) -> Result<(Shared, unipc::sync::sysv_sem::SemaphoreSet), String> {
    let map = segment
        .attach(Access::ReadWrite)
        .map_err(|e| e.to_string())?;
    let set = crate::handoff_unipc::create_set(set_key)?;
    let events = crate::handoff_unipc::eventfds()?;
    let shared = Shared {
        map,
        sem_set: set.id(),
        events,
    };
    Ok((shared, set))
}

/// Initializes the objects, starts the peer (the registry still held, so
/// an interrupt finds it), and measures.
fn run_with(
    settings: &Settings,
    segment: &Segment,
    shared: &Shared,
    set: unipc::sync::sysv_sem::SemaphoreSet,
    mut registry: std::sync::MutexGuard<'static, crate::interrupt::Registry>,
    figures: &mut Vec<Figure>,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    let objects = Objects::init(shared, set)?;
    init_raw(shared)?;
    let args = [segment.id().to_string(), shared.sem_set.to_string()];
    let fds = [&shared.events[0], &shared.events[1]];
    let mut peer =
        SectionPeer::spawn(ROLE, &args, &fds).map_err(|e| format!("starting the peer: {e}"))?;
    registry.peer(Some(peer.child.id()));
    drop(registry);
    let result = (|| {
        peer.expect("ok")?;
        // Both attached: the memory stays until both detach, and no
        // process can reach it any more.
        segment.remove().map_err(|e| e.to_string())?;
        drive(settings, shared, &objects, &mut peer, figures, notes)
    })();
    let _ = peer.tell("quit");
    let mut registry = crate::interrupt::registry();
    if result.is_err() {
        let _ = peer.child.kill();
    }
    let _ = peer.child.wait();
    registry.peer(None);
    result
}

/// Watches the peer while the section runs: a peer that dies would leave
/// the parent asleep in a wait nothing will end, so the watch stops the run
/// the way ^C does (the interrupt clean-up removes what is left).
fn watch(pid: u32) -> unipc::facility::mailbox::ProcessWatch {
    unipc::facility::mailbox::ProcessWatch::start(pid, move || {
        eprintln!("unipc bench: the hand-off peer (pid {pid}) died; stopping");
        // To the process, not this thread (which blocks it): the
        // interrupt thread takes it and cleans up.
        let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGTERM);
        false
    })
}

fn drive(
    settings: &Settings,
    shared: &Shared,
    objects: &Objects<'_>,
    peer: &mut SectionPeer,
    figures: &mut Vec<Figure>,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    let pid = peer.child.id();
    let _watch = watch(pid);
    let scenarios = crate::runner::scenarios(settings.cpus);
    for (wait, placement, why_not) in scenarios {
        if let Some(why) = why_not {
            notes.push(format!(
                "{}: {why}",
                crate::text::scenario_short(wait, placement)
            ));
            continue;
        }
        let (mine, theirs) = match (settings.cpus, placement) {
            (Some((a, b)), Placement::CrossCpu) => (Some(a), Some(b)),
            (Some((a, _)), Placement::SameCpu) => (Some(a), Some(a)),
            (None, _) => (None, None),
        };
        let busy = wait == WaitMode::BusyPoll;
        for primitive in Primitive::ALL {
            if busy && !primitive.busy_polls() {
                continue;
            }
            let mask = mine.map(crate::placement::pin_current_thread);
            let figure = figure(settings, shared, objects, peer, primitive, busy, theirs);
            if let Some(Ok(mask)) = mask {
                crate::placement::restore(&mask);
            }
            let (unipc, raw, ratios) = figure?;
            let spread = ratio_spread(&ratios);
            figures.push(Figure {
                primitive,
                wait,
                placement,
                unipc_p50_ns: Spread::of(&unipc),
                raw_p50_ns: Spread::of(&raw),
                overhead: Spread::of(&ratios).median,
                ratio_spread: spread,
                noisy: spread.is_some_and(|s| s > settings.noise_limit),
                pairs: ratios.len(),
            });
        }
    }
    if !Primitive::ALL.iter().all(|p| p.busy_polls()) {
        notes.push(
            "mutex-condvar: blocking only; a condition variable has no busy-polling form"
                .to_owned(),
        );
    }
    Ok(())
}

type PairFigures = (Vec<f64>, Vec<f64>, Vec<f64>);

/// Pairs of windows, unipc and raw in alternating order, until their
/// ratios agree or the figure's budget is spent.
fn figure(
    settings: &Settings,
    shared: &Shared,
    objects: &Objects<'_>,
    peer: &mut SectionPeer,
    primitive: Primitive,
    busy: bool,
    peer_cpu: Option<usize>,
) -> Result<PairFigures, String> {
    let (mut unipc, mut raw, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let started = Instant::now();
    loop {
        let order = if ratios.len() % 2 == 0 {
            [Via::Unipc, Via::Raw]
        } else {
            [Via::Raw, Via::Unipc]
        };
        let mut pair = [0.0; 2];
        for via in order {
            let p50 = window(
                settings, shared, objects, peer, primitive, via, busy, peer_cpu,
            )?;
            pair[(via == Via::Raw) as usize] = p50;
        }
        unipc.push(pair[0]);
        raw.push(pair[1]);
        ratios.push(pair[0] / pair[1].max(1.0));
        let enough = ratios.len() >= settings.pairs;
        let agree = !ratio_spread(&ratios).is_some_and(|s| s > settings.noise_limit);
        if enough && (agree || started.elapsed() >= settings.figure_budget) {
            return Ok((unipc, raw, ratios));
        }
    }
}

/// One window: the peer starts its side, the parent pings for a fifth of
/// the window untimed, then for the window timed; returns the median round
/// trip in nanoseconds.
#[allow(clippy::too_many_arguments)]
fn window(
    settings: &Settings,
    shared: &Shared,
    objects: &Objects<'_>,
    peer: &mut SectionPeer,
    primitive: Primitive,
    via: Via,
    busy: bool,
    peer_cpu: Option<usize>,
) -> Result<f64, String> {
    shared.word(at::STOP).store(0, SeqCst);
    shared.word(at::TURN).store(0, SeqCst);
    let cpu = peer_cpu.map_or_else(|| "-".to_owned(), |c| c.to_string());
    peer.tell(&format!(
        "run {} {} {} {cpu}",
        primitive.name(),
        via.name(),
        if busy { "busy" } else { "block" }
    ))?;
    peer.expect("ready")?;
    let mut me = side(primitive, via, busy, shared, objects)?;
    me.start()?;
    let mut histogram =
        Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds");
    for (timed, length) in [(false, settings.window / 5), (true, settings.window)] {
        let began = Instant::now();
        while began.elapsed() < length {
            let t0 = Instant::now();
            me.ping()?;
            if timed {
                histogram.saturating_record(t0.elapsed().as_nanos() as u64);
            }
        }
    }
    shared.word(at::STOP).store(1, SeqCst);
    me.ping()?;
    me.end()?;
    drop(me);
    peer.expect("done")?;
    Ok(histogram.value_at_quantile(0.5) as f64)
}

/// The peer's side: `args` are those after [`ROLE`].
pub fn peer_main(args: &[String], out: &mut impl Write) -> Result<(), String> {
    let [segment, sem_set, to_peer, to_parent] = args else {
        return Err("usage: __bench-peer hand-off SEGMENT SEM_SET FD FD".to_owned());
    };
    let segment: i32 = segment
        .parse()
        .map_err(|_| format!("bad segment {segment:?}"))?;
    let sem_set: i32 = sem_set
        .parse()
        .map_err(|_| format!("bad set {sem_set:?}"))?;
    let adopt = crate::peer::adopt_passed;
    let map = Segment::open_id(segment)
        .and_then(|s| s.attach(Access::ReadWrite))
        .map_err(|e| e.to_string())?;
    let shared = Shared {
        map,
        sem_set,
        events: [adopt(to_peer)?, adopt(to_parent)?],
    };
    let say = |out: &mut dyn Write, line: &str| -> Result<(), String> {
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| e.to_string())
    };
    let objects = Objects::attach(&shared)?;
    say(out, "ok")?;
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| e.to_string())?;
        let words: Vec<&str> = line.split(' ').collect();
        match words[..] {
            ["quit"] => return Ok(()),
            ["run", primitive, via, mode, cpu] => {
                let primitive = Primitive::parse(primitive)
                    .ok_or_else(|| format!("bad primitive {primitive:?}"))?;
                let via = match via {
                    "unipc" => Via::Unipc,
                    "raw" => Via::Raw,
                    other => return Err(format!("bad implementation {other:?}")),
                };
                let busy = mode == "busy";
                if let Ok(cpu) = cpu.parse::<usize>() {
                    crate::placement::pin_current_thread(cpu)
                        .map_err(|e| format!("pinning to CPU {cpu}: {e}"))?;
                }
                let mut me = side(primitive, via, busy, &shared, &objects)?;
                me.start()?;
                say(out, "ready")?;
                loop {
                    me.wait_ping()?;
                    let stop = shared.word(at::STOP).load(SeqCst) == 1;
                    me.answer()?;
                    if stop {
                        break;
                    }
                }
                me.end()?;
                say(out, "done")?;
            }
            _ => return Err(format!("bad job {line:?}")),
        }
    }
    Ok(())
}
