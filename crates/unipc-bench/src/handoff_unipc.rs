//! The hand-off section's unipc sides: the same round trips as
//! `handoff::Raw`, through the library's types. The eventfds, the futex
//! words and the semaphore set are the very objects the raw side uses; the
//! unnamed semaphores, the mutex and the condition variable are the
//! library's own in the segment's first page (the raw side has its own of
//! the same kind in the second: the library's slots carry a header).

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::Ordering::SeqCst;

use unipc::name::SysvKey;
use unipc::sync::condvar::{SharedCondvar, Woken};
use unipc::sync::eventfd::{EventFd, EventFdOptions};
use unipc::sync::futex::Futex;
use unipc::sync::mutex::{Locked, MutexGuard, RobustMutex};
use unipc::sync::posix_sem::SharedSemaphore;
use unipc::sync::sysv_sem::{Op, SemaphoreSet, SetOptions};
use unipc::sync::Wait;

use crate::handoff::{at, Primitive, Shared, Side};

/// A set of two semaphores, both 0 (to the peer, to the parent), made
/// exclusively under `key`.
pub(crate) fn create_set(key: i32) -> Result<SemaphoreSet, String> {
    SetOptions::new()
        .count(2)
        .values(&[0, 0])
        .mode(unipc::Mode::OWNER_RW)
        .exclusive(true)
        .create(SysvKey::Key(key))
        .map_err(|e| e.to_string())
}

/// Two eventfds made by the library, as descriptors the peer inherits.
pub(crate) fn eventfds() -> Result<[OwnedFd; 2], String> {
    let make = || {
        EventFdOptions::new()
            .create()
            .map(OwnedFd::from)
            .map_err(|e| e.to_string())
    };
    Ok([make()?, make()?])
}

/// The library's objects in the segment, and the set.
pub(crate) struct Objects<'s> {
    sems: [SharedSemaphore<'s>; 2],
    mutex: RobustMutex<'s>,
    condvar: SharedCondvar<'s>,
    set: SemaphoreSet,
}

impl<'s> Objects<'s> {
    /// In the parent: initializes the library's objects in the fresh
    /// segment.
    #[allow(unsafe_code)]
    pub(crate) fn init(shared: &'s Shared, set: SemaphoreSet) -> Result<Objects<'s>, String> {
        let e = |e: unipc::Error| e.to_string();
        let map = &shared.map;
        Ok(Objects {
            sems: [
                SharedSemaphore::init(map, at::SEM_TO_PEER, 0).map_err(e)?,
                SharedSemaphore::init(map, at::SEM_TO_PARENT, 0).map_err(e)?,
            ],
            // SAFETY: the segment is the bench's own; its two processes
            // touch the slots only through these types (the raw side has
            // its own objects in the second page).
            mutex: unsafe { RobustMutex::init(map, at::MUTEX) }.map_err(e)?,
            // SAFETY: as for the mutex.
            condvar: unsafe { SharedCondvar::init(map, at::CONDVAR) }.map_err(e)?,
            set,
        })
    }

    /// In the peer: attaches to what the parent initialized.
    #[allow(unsafe_code)]
    pub(crate) fn attach(shared: &'s Shared) -> Result<Objects<'s>, String> {
        let e = |e: unipc::Error| e.to_string();
        let map = &shared.map;
        Ok(Objects {
            sems: [
                // SAFETY: the parent ran `SharedSemaphore::init` at this
                // offset before it started this peer, and destroys nothing.
                unsafe { SharedSemaphore::attach(map, at::SEM_TO_PEER) }.map_err(e)?,
                // SAFETY: as for the first.
                unsafe { SharedSemaphore::attach(map, at::SEM_TO_PARENT) }.map_err(e)?,
            ],
            // SAFETY: as in `init`.
            mutex: unsafe { RobustMutex::attach(map, at::MUTEX) }.map_err(e)?,
            // SAFETY: as in `init`.
            condvar: unsafe { SharedCondvar::attach(map, at::CONDVAR) }.map_err(e)?,
            set: SemaphoreSet::open_id(shared.sem_set).map_err(e)?,
        })
    }
}

/// The unipc side of `primitive`.
pub(crate) fn side<'s>(
    primitive: Primitive,
    busy: bool,
    shared: &'s Shared,
    objects: &'s Objects<'s>,
) -> Result<Box<dyn Side + 's>, String> {
    let wait = if busy { Wait::Never } else { Wait::Forever };
    Ok(match primitive {
        Primitive::PosixSem => Box::new(Sems { objects, wait }),
        Primitive::SysvSem => Box::new(Set {
            set: &objects.set,
            wait,
        }),
        Primitive::Eventfd => {
            let adopt = |fd: &OwnedFd| -> Result<EventFd, String> {
                let copy = rustix::io::fcntl_dupfd_cloexec(fd, 0).map_err(|e| e.to_string())?;
                EventFd::try_from(copy).map_err(|e| e.to_string())
            };
            Box::new(Events {
                to_peer: adopt(&shared.events[0])?,
                to_parent: adopt(&shared.events[1])?,
                wait,
            })
        }
        Primitive::Futex => Box::new(Futexes {
            to_peer: Futex::new(&shared.map, at::FUTEX_TO_PEER).map_err(|e| e.to_string())?,
            to_parent: Futex::new(&shared.map, at::FUTEX_TO_PARENT).map_err(|e| e.to_string())?,
            busy,
            seen: 0,
        }),
        Primitive::MutexCondvar => Box::new(Condvar {
            shared,
            objects,
            guard: None,
        }),
    })
}

/// Spins while `op` says it would block (busy-polling through `Wait::Never`).
fn spin<T>(mut op: impl FnMut() -> unipc::Result<T>) -> Result<T, String> {
    loop {
        match op() {
            Err(unipc::Error::WouldBlock { .. }) => std::hint::spin_loop(),
            other => return other.map_err(|e| e.to_string()),
        }
    }
}

struct Sems<'s> {
    objects: &'s Objects<'s>,
    wait: Wait,
}

impl Side for Sems<'_> {
    fn ping(&mut self) -> Result<(), String> {
        let [to_peer, to_parent] = &self.objects.sems;
        to_peer.post().map_err(|e| e.to_string())?;
        spin(|| to_parent.wait(self.wait))
    }

    fn wait_ping(&mut self) -> Result<(), String> {
        spin(|| self.objects.sems[0].wait(self.wait))
    }

    fn answer(&mut self) -> Result<(), String> {
        self.objects.sems[1].post().map_err(|e| e.to_string())
    }
}

struct Set<'s> {
    set: &'s SemaphoreSet,
    wait: Wait,
}

impl Side for Set<'_> {
    fn ping(&mut self) -> Result<(), String> {
        self.set
            .apply(&[Op::add(0, 1)], Wait::Forever)
            .map_err(|e| e.to_string())?;
        spin(|| self.set.apply(&[Op::take(1, 1)], self.wait))
    }

    fn wait_ping(&mut self) -> Result<(), String> {
        spin(|| self.set.apply(&[Op::take(0, 1)], self.wait))
    }

    fn answer(&mut self) -> Result<(), String> {
        self.set
            .apply(&[Op::add(1, 1)], Wait::Forever)
            .map_err(|e| e.to_string())
    }
}

struct Events {
    to_peer: EventFd,
    to_parent: EventFd,
    wait: Wait,
}

impl Side for Events {
    fn start(&mut self) -> Result<(), String> {
        // The raw side may have cleared O_NONBLOCK on the shared
        // descriptions; the library's descriptors are always non-blocking.
        for fd in [self.to_peer.as_fd(), self.to_parent.as_fd()] {
            crate::handoff::set_nonblocking(fd, true)?;
        }
        Ok(())
    }

    fn ping(&mut self) -> Result<(), String> {
        self.to_peer
            .add(1, Wait::Forever)
            .map_err(|e| e.to_string())?;
        spin(|| self.to_parent.take(self.wait)).map(drop)
    }

    fn wait_ping(&mut self) -> Result<(), String> {
        spin(|| self.to_peer.take(self.wait)).map(drop)
    }

    fn answer(&mut self) -> Result<(), String> {
        self.to_parent
            .add(1, Wait::Forever)
            .map_err(|e| e.to_string())
    }
}

struct Futexes<'s> {
    to_peer: Futex<'s>,
    to_parent: Futex<'s>,
    busy: bool,
    /// The peer's count of the parent's signals seen.
    seen: u32,
}

impl Futexes<'_> {
    fn signal(&self, futex: &Futex<'_>, value: u32) -> Result<(), String> {
        futex.word().store(value, SeqCst);
        if !self.busy {
            futex.wake(1).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Waits until the word is no longer `old`; returns its new value.
    fn wait_change(&self, futex: &Futex<'_>, old: u32) -> Result<u32, String> {
        loop {
            let now = futex.word().load(SeqCst);
            if now != old {
                return Ok(now);
            }
            if self.busy {
                std::hint::spin_loop();
            } else {
                futex.wait(old, Wait::Forever).map_err(|e| e.to_string())?;
            }
        }
    }
}

impl Side for Futexes<'_> {
    fn start(&mut self) -> Result<(), String> {
        self.seen = self.to_peer.word().load(SeqCst);
        Ok(())
    }

    fn ping(&mut self) -> Result<(), String> {
        let back = self.to_parent.word().load(SeqCst);
        let next = self.to_peer.word().load(SeqCst).wrapping_add(1);
        self.signal(&self.to_peer, next)?;
        self.wait_change(&self.to_parent, back).map(drop)
    }

    fn wait_ping(&mut self) -> Result<(), String> {
        self.seen = self.wait_change(&self.to_peer, self.seen)?;
        Ok(())
    }

    fn answer(&mut self) -> Result<(), String> {
        self.signal(&self.to_parent, self.seen)
    }
}

/// The robust mutex held for the whole window but inside the waits, and
/// the turn word it protects.
struct Condvar<'s> {
    shared: &'s Shared,
    objects: &'s Objects<'s>,
    guard: Option<MutexGuard<'s>>,
}

impl<'s> Condvar<'s> {
    /// With the mutex held: sets the turn to `to` (unless it is `until`
    /// already), notifies, and waits until the turn is `until`.
    fn turn(&mut self, to: u32, until: u32) -> Result<(), String> {
        let turn = self.shared.word(at::TURN);
        if to != until {
            turn.store(to, SeqCst);
            self.objects
                .condvar
                .notify_one()
                .map_err(|e| e.to_string())?;
        }
        while turn.load(SeqCst) != until {
            let guard = self.guard.take().ok_or("the mutex is not held")?;
            self.guard = Some(
                match self
                    .objects
                    .condvar
                    .wait(guard, Wait::Forever)
                    .map_err(|e| e.to_string())?
                {
                    Woken::Notified(guard) | Woken::TimedOut(guard) => guard,
                    Woken::OwnerDied(_) => {
                        return Err("the other side died holding the mutex".into())
                    }
                },
            );
        }
        Ok(())
    }
}

impl Side for Condvar<'_> {
    fn start(&mut self) -> Result<(), String> {
        match self
            .objects
            .mutex
            .lock(Wait::Forever)
            .map_err(|e| e.to_string())?
        {
            Locked::Acquired(guard) => self.guard = Some(guard),
            Locked::OwnerDied(_) => return Err("a process died holding the mutex".into()),
        }
        Ok(())
    }

    fn end(&mut self) -> Result<(), String> {
        self.guard = None;
        Ok(())
    }

    fn ping(&mut self) -> Result<(), String> {
        self.turn(1, 0)
    }

    fn wait_ping(&mut self) -> Result<(), String> {
        self.turn(1, 1)
    }

    fn answer(&mut self) -> Result<(), String> {
        self.shared.word(at::TURN).store(0, SeqCst);
        self.objects.condvar.notify_one().map_err(|e| e.to_string())
    }
}
