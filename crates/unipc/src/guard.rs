//! One drop guard for named objects: remove the name on drop, but only
//! while it still leads to the object this handle made.
//!
//! A name outlives the handle that made it, and can change hands while the
//! handle lives: another process removes it (the bench's peer does, by
//! design) and another user makes a new object under it. A privileged
//! creator that unlinked by name on drop would then remove that other
//! user's object. So every named facility's guard looks first: the FIFO and
//! the socket file by `lstat` (same device, inode and type), the POSIX
//! queue by opening the name and comparing the queue's device and inode,
//! the System V queue by `IPC_STAT` on the identifier (same key and
//! creator). Where there is no removal by descriptor, a name replaced
//! between the look and the removal is still removed; the window is two
//! system calls wide instead of the handle's whole life.
//!
//! A facility implements [`Made`] (its look and its removal) and holds a
//! [`Guard`]; shared memory and semaphores plug in the same way.

use std::io;

/// What a facility plugs into a [`Guard`]: how to tell its object under
/// the name, and how to remove the name.
pub(crate) trait Made {
    /// Whether the name still leads to the object this handle made
    /// (`Ok(false)` once it is gone or is another object).
    fn is_still_ours(&self) -> io::Result<bool>;

    /// Removes the name (unlink, `IPC_RMID`).
    fn remove(&self) -> io::Result<()>;
}

/// Removes `made`'s name on drop, while armed and while the name is still
/// the object made.
///
/// A guard over an object this process created may hold its creator
/// record ([`crate::creator`]): removed with the object, and marked kept
/// when the guard drops disarmed with the object still there, so `gc`
/// tells an object left on purpose from one whose creator died.
#[derive(Debug)]
pub(crate) struct Guard<T: Made> {
    made: T,
    armed: bool,
    // Boxed: most guards have none, and every handle carries a guard.
    record: Option<Box<crate::creator::Record>>,
}

impl<T: Made> Guard<T> {
    /// A guard over `made`, removing it on drop when `armed`.
    pub(crate) fn new(made: T, armed: bool) -> Self {
        Guard {
            made,
            armed,
            record: None,
        }
    }

    /// Writes the creator record of the object this process just made
    /// (best effort: see [`crate::creator`]).
    pub(crate) fn recorded(
        mut self,
        class: crate::creator::Class,
        name: &str,
        identity: crate::creator::Identity,
    ) -> Self {
        self.record = crate::creator::make(class, name, identity).map(Box::new);
        self
    }

    /// Leaves the object in place on drop.
    pub(crate) fn keep(&mut self) {
        self.armed = false;
    }

    /// Whether the drop removes the object.
    pub(crate) fn set_armed(&mut self, armed: bool) {
        self.armed = armed;
    }

    /// Whether the drop will remove the object (if still ours).
    pub(crate) fn is_armed(&self) -> bool {
        self.armed
    }

    /// The facility's part.
    pub(crate) fn made(&self) -> &T {
        &self.made
    }

    /// Removes the object now if the name still leads to it, and disarms
    /// the guard; whether it removed it.
    pub(crate) fn remove_now(&mut self) -> io::Result<bool> {
        self.armed = false;
        let removed = remove_if_ours(&self.made)?;
        if let Some(record) = self.record.take() {
            record.forget();
        }
        Ok(removed)
    }
}

/// Removes `made`'s name if it still leads to the object made; whether it
/// did. For a one-off removal that needs no guard (a stale file's).
pub(crate) fn remove_if_ours(made: &impl Made) -> io::Result<bool> {
    if !made.is_still_ours()? {
        return Ok(false);
    }
    made.remove()?;
    Ok(true)
}

impl<T: Made> Drop for Guard<T> {
    fn drop(&mut self) {
        // Drop has no one to report to: a name already gone is gone.
        let (removed, still_ours) = if self.armed {
            (remove_if_ours(&self.made).is_ok(), false)
        } else {
            let ours = self.record.is_some() && self.made.is_still_ours().unwrap_or(true);
            (!ours, ours)
        };
        if let Some(record) = self.record.take() {
            if still_ours {
                record.mark_kept();
            } else if removed {
                // Removed, by this guard or by someone else meanwhile.
                record.forget();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    struct Probe<'a> {
        ours: bool,
        removed: &'a Cell<u32>,
    }

    impl Made for Probe<'_> {
        fn is_still_ours(&self) -> io::Result<bool> {
            Ok(self.ours)
        }
        fn remove(&self) -> io::Result<()> {
            self.removed.set(self.removed.get() + 1);
            Ok(())
        }
    }

    #[test]
    fn removes_only_while_armed_and_ours() {
        let removed = Cell::new(0);
        drop(Guard::new(
            Probe {
                ours: true,
                removed: &removed,
            },
            true,
        ));
        assert_eq!(removed.get(), 1);
        drop(Guard::new(
            Probe {
                ours: false,
                removed: &removed,
            },
            true,
        ));
        assert_eq!(removed.get(), 1);
        let mut kept = Guard::new(
            Probe {
                ours: true,
                removed: &removed,
            },
            true,
        );
        kept.keep();
        drop(kept);
        assert_eq!(removed.get(), 1);
        let mut now = Guard::new(
            Probe {
                ours: true,
                removed: &removed,
            },
            false,
        );
        assert!(now.remove_now().unwrap());
        drop(now);
        assert_eq!(removed.get(), 2);
    }
}
