//! The one waiting loop of the ring and the pubsub: try, then spin, park
//! or both as the [`WaitStrategy`] says, checking the peer every 100 ms
//! and the deadline as it goes.

use std::time::{Duration, Instant};

use super::WaitStrategy;
use crate::deadline::Deadline;
use crate::error::ObjectName;
use crate::message::Wait;
use crate::{Error, Result};

/// How often a waiting side checks that the other is alive.
pub(crate) const PEER_CHECK: Duration = Duration::from_millis(100);
/// Spins before [`WaitStrategy::SpinThenPark`] sleeps: a few microseconds,
/// enough to catch a peer that is running and about to answer. Longer
/// spins cost more than they save when the peer is not running: with
/// 2048 spins, a million messages through a ring of capacity 2 took 43 s
/// on a loaded two-core machine, against 7.5 s with 128 (debug build).
const SPINS_BEFORE_PARK: u32 = 128;
/// Busy-poll spins between two looks at the clock (for the peer check and
/// a timeout).
const SPINS_PER_CLOCK: u32 = 256;

/// What a wait needs from its side.
pub(crate) struct Waiter<'a> {
    /// The object, for errors.
    pub(crate) object: &'a ObjectName,
    pub(crate) strategy: WaitStrategy,
    /// The error for [`Wait::Never`] (`Full`, `Empty`).
    pub(crate) idle: fn(ObjectName) -> Error,
    /// Sleeps at most the given time, until the other side moves.
    pub(crate) park: &'a dyn Fn(Duration) -> Result<()>,
    /// Fails when the other side died.
    pub(crate) check_peer: &'a dyn Fn() -> Result<()>,
}

impl Waiter<'_> {
    /// Calls `attempt` until it yields, waiting between tries.
    pub(crate) fn wait_for<T>(
        &self,
        wait: Wait,
        mut attempt: impl FnMut() -> Result<Option<T>>,
    ) -> Result<T> {
        if let Some(done) = attempt()? {
            return Ok(done);
        }
        let limit = match wait {
            Wait::Never => return Err((self.idle)(self.object.clone())),
            Wait::Forever => None,
            Wait::For(timeout) => Some(timeout),
        };
        let deadline = Deadline::of(wait);
        let mut next_check = Instant::now() + PEER_CHECK;
        let mut spins: u32 = 0;
        loop {
            let spinning = match self.strategy {
                WaitStrategy::BusyPoll => true,
                WaitStrategy::SpinThenPark => spins < SPINS_BEFORE_PARK,
                WaitStrategy::Block => false,
            };
            if !spinning || spins % SPINS_PER_CLOCK == 0 {
                if Instant::now() >= next_check {
                    if let Err(died) = (self.check_peer)() {
                        // The peer may have committed a last message
                        // just before it died: deliver it first.
                        return match attempt()? {
                            Some(done) => Ok(done),
                            None => Err(died),
                        };
                    }
                    next_check = Instant::now() + PEER_CHECK;
                }
                if deadline.passed() {
                    return Err(Error::TimedOut {
                        object: self.object.clone(),
                        timeout: limit.unwrap_or_default(),
                    });
                }
            }
            if spinning {
                std::hint::spin_loop();
                spins = spins.wrapping_add(1);
            } else {
                let left = deadline
                    .remaining()
                    .map_or(PEER_CHECK, |d| d.min(PEER_CHECK));
                (self.park)(left.max(Duration::from_micros(1)))?;
            }
            if let Some(done) = attempt()? {
                return Ok(done);
            }
        }
    }
}
