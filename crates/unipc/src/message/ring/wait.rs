//! The one waiting loop of the ring and the pubsub: try, then spin, park
//! or both as the [`WaitStrategy`] says, checking the peer every 100 ms
//! and the deadline as it goes.

use std::cell::Cell;
use std::time::{Duration, Instant};

use super::WaitStrategy;
use crate::deadline::Deadline;
use crate::error::ObjectName;
use crate::message::Wait;
use crate::{Error, Result};

/// How often a waiting side checks that the other is alive.
pub(crate) const PEER_CHECK: Duration = Duration::from_millis(100);
/// How long [`WaitStrategy::SpinThenPark`] spins before it sleeps, in
/// spins (about 8 ns each here), adapted to what waits have needed: a wait
/// that ended while spinning late in its budget doubles it, one that had
/// to sleep halves it. A fixed spin is wrong one way or the other: 128
/// spins (1 µs) sleep through every 8 KiB round trip (28 µs instead of
/// 1.1 µs, in `comparison/`), and 2048 spins burn a peer's whole time
/// slice when the two share a CPU (a million messages through a ring of
/// capacity 2 took 43 s on a loaded two-core machine, against 7.5 s).
const MIN_SPINS: u32 = 128;
const MAX_SPINS: u32 = 16_384;
/// While spinning past the first of these, a spin-then-park side yields
/// the CPU every so many spins, so a peer waiting to run on the same CPU
/// gets it.
const SPINS_PER_YIELD: u32 = 256;

/// A side's waiting state: its strategy, and its current spin budget.
#[derive(Debug)]
pub(crate) struct Waiting {
    strategy: Cell<WaitStrategy>,
    budget: Cell<u32>,
}

impl Waiting {
    pub(crate) fn new() -> Waiting {
        Waiting {
            strategy: Cell::new(WaitStrategy::default()),
            budget: Cell::new(MIN_SPINS),
        }
    }

    pub(crate) fn set(&self, strategy: WaitStrategy) {
        self.strategy.set(strategy);
    }

    /// Learns from a wait that ended after `spins` spins, asleep or not.
    fn learn(&self, spins: u32, slept: bool) {
        let budget = self.budget.get();
        let next = if slept {
            budget / 2
        } else if spins > budget / 2 {
            budget.saturating_mul(2)
        } else {
            budget
        };
        self.budget.set(next.clamp(MIN_SPINS, MAX_SPINS));
    }
}
/// Busy-poll spins between two looks at the clock (for the peer check and
/// a timeout).
const SPINS_PER_CLOCK: u32 = 256;

/// What a wait needs from its side.
pub(crate) struct Waiter<'a> {
    /// The object, for errors.
    pub(crate) object: &'a ObjectName,
    pub(crate) waiting: &'a Waiting,
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
        // Set at the first look at the clock: a wait that a wake-up ends
        // before then reads no clock at all.
        let mut next_check: Option<Instant> = None;
        let mut spins: u32 = 0;
        let mut slept = false;
        let strategy = self.waiting.strategy.get();
        let budget = self.waiting.budget.get();
        let done = |value: T, spins: u32, slept: bool| {
            if strategy == WaitStrategy::SpinThenPark {
                self.waiting.learn(spins, slept);
            }
            Ok(value)
        };
        loop {
            let spinning = match strategy {
                WaitStrategy::BusyPoll => true,
                WaitStrategy::SpinThenPark => spins < budget,
                WaitStrategy::Block => false,
            };
            // Looks at the clock after every sleep, and every so many spins;
            // never before the first sleep or spin of a wait.
            let look = if spinning {
                spins > 0 && spins % SPINS_PER_CLOCK == 0
            } else {
                slept
            };
            if look {
                let now = Instant::now();
                let due = *next_check.get_or_insert(now + PEER_CHECK);
                if now >= due {
                    if let Err(died) = (self.check_peer)() {
                        // The peer may have committed a last message
                        // just before it died: deliver it first.
                        return match attempt()? {
                            Some(value) => done(value, spins, slept),
                            None => Err(died),
                        };
                    }
                    next_check = Some(Instant::now() + PEER_CHECK);
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
                if strategy == WaitStrategy::SpinThenPark && spins % SPINS_PER_YIELD == 0 {
                    std::thread::yield_now();
                }
            } else {
                let left = deadline
                    .remaining()
                    .map_or(PEER_CHECK, |d| d.min(PEER_CHECK));
                (self.park)(left.max(Duration::from_micros(1)))?;
                slept = true;
            }
            if let Some(value) = attempt()? {
                return done(value, spins, slept);
            }
        }
    }
}
