//! The one wait policy every contender uses when its queue is full or empty: spin a few times
//! with [`std::hint::spin_loop`], then [`std::thread::yield_now`] on every further attempt.
//!
//! Yielding matters: the reference machine has 2 cores, so with 4 consumers and a producer some
//! threads must give their core away for the others to make progress. No contender uses its own
//! blocking or parking: each is driven through its non-blocking `try_*` calls and this policy
//! (disruptor's managed threads through [`SpinThenYield`], its wait-strategy hook).
//!
//! How many spins come before the first yield is the [`Policy`] of a trial, the same for every
//! contender in it: [`Policy::THROUGHPUT`] (16) for the throughput comparison, where a waiting
//! thread should give its core to the others quickly, and [`Policy::LATENCY`] for the latency
//! runs whose threads all have a core of their own ([`Policy::latency_for`]), where a consumer
//! spins for tens of microseconds so that what is measured is the queue and not the time a
//! `yield_now` round trip takes.

use std::cell::Cell;
use std::fmt;
use std::time::Instant;

/// Failed attempts answered with a spin-loop hint before the policy starts yielding, in the
/// throughput comparison ([`Policy::THROUGHPUT`]).
pub const SPIN_TRIES: u32 = 16;

/// How a trial's threads wait when their queue is full or empty: `spins` spin-loop hints after
/// a failed attempt, then a `yield_now` on every further attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Failed attempts answered with [`std::hint::spin_loop`] before yielding.
    pub spins: u32,
}

impl Policy {
    /// The throughput comparison's policy: [`SPIN_TRIES`] spins, then yield.
    pub const THROUGHPUT: Self = Self { spins: SPIN_TRIES };

    /// The latency runs' policy: 4096 spins (about 40 µs on the reference machine, where a
    /// spin-loop hint takes about 10 ns: longer than the paced producer's interval), then yield.
    pub const LATENCY: Self = Self { spins: 4096 };
}

impl Policy {
    /// The latency runs' policy for a trial of `threads` threads on a machine with `cores`
    /// hardware threads: [`LATENCY`](Self::LATENCY) when every thread has a core of its own,
    /// [`THROUGHPUT`](Self::THROUGHPUT) otherwise (a waiter that spins for tens of microseconds
    /// would hold a core that another thread of the trial needs).
    pub fn latency_for(threads: usize, cores: usize) -> Self {
        if threads <= cores {
            Self::LATENCY
        } else {
            Self::THROUGHPUT
        }
    }
}

impl Default for Policy {
    /// [`Policy::THROUGHPUT`].
    fn default() -> Self {
        Self::THROUGHPUT
    }
}

/// How often (in yields) a waiting thread looks at the clock to see whether its trial stalled.
const DEADLINE_CHECK_EVERY: u32 = 1024;

/// Why a trial's thread gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Abort {
    /// The trial's deadline passed while this thread waited: a lost value or a deadlock.
    Stalled,
    /// The contender reported something that must not happen in a lossless run (a lagged
    /// receiver, a closed channel, an empty slot).
    Broken(String),
}

impl fmt::Display for Abort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stalled => f.write_str("stalled: the trial's deadline passed while waiting"),
            Self::Broken(why) => f.write_str(why),
        }
    }
}

/// One wait after a failed attempt: `tries` is the number of failed attempts so far in this
/// wait (0 for the first), `spins` the policy's number of spins before yielding.
#[inline]
pub fn pause(tries: u32, spins: u32) {
    if tries < spins {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// The wait state of one thread: failed attempts since the last success, and the deadline after
/// which the trial is declared stalled.
#[derive(Debug)]
pub struct Backoff {
    tries: u32,
    yields: u32,
    spins: u32,
    deadline: Instant,
}

impl Backoff {
    /// A fresh wait state that follows `policy` and gives up at `deadline`.
    pub fn new(deadline: Instant, policy: Policy) -> Self {
        Self { tries: 0, yields: 0, spins: policy.spins, deadline }
    }

    /// Call after a successful attempt: the next wait starts spinning again.
    #[inline(always)]
    pub fn reset(&mut self) {
        self.tries = 0;
    }

    /// Call after a failed attempt: spins or yields according to the policy.
    ///
    /// # Errors
    ///
    /// [`Abort::Stalled`] once the deadline has passed (checked every so many yields).
    #[inline]
    pub fn snooze(&mut self) -> Result<(), Abort> {
        pause(self.tries, self.spins);
        if self.tries < self.spins {
            self.tries += 1;
        } else {
            self.yields = self.yields.wrapping_add(1);
            if self.yields.is_multiple_of(DEADLINE_CHECK_EVERY) && Instant::now() > self.deadline {
                return Err(Abort::Stalled);
            }
        }
        Ok(())
    }
}

/// [`pause`] as a disruptor wait strategy, for the threads disruptor manages itself.
///
/// Disruptor calls `wait_for(sequence)` once per failed look at the barrier with a `Copy`
/// strategy, so the count of failed attempts lives in a thread-local, reset when the awaited
/// sequence changes (a new wait).
#[derive(Debug, Clone, Copy)]
pub struct SpinThenYield(pub Policy);

thread_local! {
    /// (awaited sequence, failed attempts) of the current wait on this thread.
    static DISRUPTOR_WAIT: Cell<(i64, u32)> = const { Cell::new((i64::MIN, 0)) };
}

impl disruptor::wait_strategies::WaitStrategy for SpinThenYield {
    #[inline]
    fn wait_for(&self, sequence: i64) {
        DISRUPTOR_WAIT.with(|state| {
            let (awaited, tries) = state.get();
            let tries = if awaited == sequence { tries.saturating_add(1) } else { 0 };
            state.set((sequence, tries));
            pause(tries, self.0.spins);
        });
    }
}
