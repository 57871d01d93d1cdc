//! The hand-off section's unipc sides: the same round trip as
//! `handoff::Raw`, through the library's types, on the same objects.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::Ordering::SeqCst;

use unipc::sync::eventfd::{EventFd, EventFdOptions};
use unipc::sync::futex::Futex;
use unipc::sync::Wait;

use crate::handoff::{at, Primitive, Shared, Side};

pub(crate) fn create_set() -> Result<i32, String> {
    #[allow(unsafe_code)]
    // SAFETY: plain semget (until the library's sets land here).
    let id = unsafe { libc::semget(libc::IPC_PRIVATE, 2, 0o600 | libc::IPC_CREAT) };
    if id < 0 {
        return Err(format!("semget: {}", std::io::Error::last_os_error()));
    }
    Ok(id)
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

/// Initializes the objects the library places in the segment.
pub(crate) fn init(_shared: &Shared) -> Result<(), String> {
    // The unnamed POSIX semaphores and the robust mutex land with their
    // branches, and with them their figures.
    Ok(())
}

/// The unipc side of `primitive`, or `None` while the library lacks it.
pub(crate) fn side<'s>(
    primitive: Primitive,
    busy: bool,
    shared: &'s Shared,
) -> Result<Option<Box<dyn Side + 's>>, String> {
    let wait = if busy { Wait::Never } else { Wait::Forever };
    Ok(match primitive {
        Primitive::Eventfd => {
            let adopt = |fd: &OwnedFd| -> Result<EventFd, String> {
                let copy = rustix::io::fcntl_dupfd_cloexec(fd, 0).map_err(|e| e.to_string())?;
                EventFd::try_from(copy).map_err(|e| e.to_string())
            };
            Some(Box::new(Events {
                to_peer: adopt(&shared.events[0])?,
                to_parent: adopt(&shared.events[1])?,
                wait,
            }))
        }
        Primitive::Futex => Some(Box::new(Futexes {
            to_peer: Futex::new(&shared.map, at::FUTEX_TO_PEER).map_err(|e| e.to_string())?,
            to_parent: Futex::new(&shared.map, at::FUTEX_TO_PARENT).map_err(|e| e.to_string())?,
            busy,
            seen: 0,
        })),
        _ => None,
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
