//! Who holds each side of a ring, and whether they are still alive.
//!
//! Each side is one word: the holder's pid, and the low 32 bits of its
//! start time (`/proc/PID/stat`), so a pid the kernel gave to a new
//! process after the holder died does not pass for the holder. A side is
//! taken with a compare-and-swap from 0 (or from a dead holder), and given
//! back with one to 0.

// Identity words: a compare-and-swap on a pid record, outside the
// modelled cursor and wake-up protocol.
#![allow(clippy::disallowed_types)]

use std::sync::atomic::{AtomicU64, Ordering};

use super::layout;
use super::protocol::Which;
use crate::sys::proc;

/// One side of a ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Role {
    /// "writer" or "reader", as errors and `stat` say.
    pub(crate) name: &'static str,
    /// Its identity word.
    pub(crate) at: usize,
    /// Which side it is, to the protocol.
    pub(crate) which: Which,
}

pub(crate) const WRITER: Role = Role {
    name: "writer",
    at: layout::WRITER_AT,
    which: Which::Writer,
};

pub(crate) const READER: Role = Role {
    name: "reader",
    at: layout::READER_AT,
    which: Which::Reader,
};

impl Role {
    pub(crate) fn peer(&self) -> Role {
        if *self == WRITER {
            READER
        } else {
            WRITER
        }
    }
}

/// A holder's pid and start time, packed as the identity word holds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Holder {
    pub(crate) pid: u32,
    started: u32,
}

impl Holder {
    /// This process.
    pub(crate) fn me() -> Holder {
        let pid = std::process::id();
        Holder {
            pid,
            started: proc::start_time(pid).unwrap_or(0) as u32,
        }
    }

    pub(crate) fn word(self) -> u64 {
        u64::from(self.started) << 32 | u64::from(self.pid)
    }

    /// The holder a word names; `None` for 0 (nobody).
    pub(crate) fn from_word(word: u64) -> Option<Holder> {
        (word != 0).then_some(Holder {
            pid: word as u32,
            started: (word >> 32) as u32,
        })
    }

    /// Whether the process is alive and is the one that took the side. A
    /// start time this process could not read (0) checks the pid alone.
    pub(crate) fn alive(self) -> bool {
        proc::process_alive(self.pid)
            && (self.started == 0
                || proc::start_time(self.pid).map_or(true, |s| s as u32 == self.started))
    }
}

/// What taking a side found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Taken {
    /// The side is ours.
    Ok,
    /// A live process holds it.
    Held(Holder),
}

/// Takes the side `word` stands for, for `me`: from nobody, or from a
/// holder that died.
pub(crate) fn take(word: &AtomicU64, me: Holder) -> Taken {
    let mut current = word.load(Ordering::Acquire);
    loop {
        if let Some(holder) = Holder::from_word(current) {
            if holder.alive() {
                return Taken::Held(holder);
            }
        }
        match word.compare_exchange(current, me.word(), Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Taken::Ok,
            Err(now) => current = now,
        }
    }
}

/// Gives the side back, if `me` still holds it.
pub(crate) fn give_back(word: &AtomicU64, me: Holder) {
    let _ = word.compare_exchange(me.word(), 0, Ordering::AcqRel, Ordering::Relaxed);
}

/// [`Error::PeerDied`] for the side `role` of `object` whose identity
/// word is `word`, once, when its holder has died ([`dead_holder`]).
pub(crate) fn check_alive(
    word: &AtomicU64,
    object: &crate::error::ObjectName,
    role: &'static str,
) -> crate::Result<()> {
    match dead_holder(word) {
        Some(dead) => Err(crate::Error::PeerDied {
            object: object.clone(),
            role,
            pid: dead.pid,
        }),
        None => Ok(()),
    }
}

/// The holder of a side that has died, cleared so it is reported once;
/// `None` while the side is free or its holder alive.
pub(crate) fn dead_holder(word: &AtomicU64) -> Option<Holder> {
    let current = word.load(Ordering::Acquire);
    let holder = Holder::from_word(current)?;
    if holder.alive() {
        return None;
    }
    word.compare_exchange(current, 0, Ordering::AcqRel, Ordering::Relaxed)
        .ok()
        .map(|_| holder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_side_is_taken_once_and_retaken_from_a_dead_holder() {
        let word = AtomicU64::new(0);
        let me = Holder::me();
        assert_eq!(take(&word, me), Taken::Ok);
        assert_eq!(Holder::from_word(word.load(Ordering::Relaxed)), Some(me));
        assert_eq!(take(&word, me), Taken::Held(me));
        assert_eq!(dead_holder(&word), None);
        give_back(&word, me);
        assert_eq!(word.load(Ordering::Relaxed), 0);

        // A pid with another start time is a recycled pid: the holder died.
        let ghost = Holder {
            pid: me.pid,
            started: me.started.wrapping_add(1),
        };
        word.store(ghost.word(), Ordering::Relaxed);
        assert!(!ghost.alive() || me.started == 0);
        if me.started != 0 {
            assert_eq!(dead_holder(&word), Some(ghost));
            assert_eq!(word.load(Ordering::Relaxed), 0);
            word.store(ghost.word(), Ordering::Relaxed);
            assert_eq!(take(&word, me), Taken::Ok);
        }
    }
}
