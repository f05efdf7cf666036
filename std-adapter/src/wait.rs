//! Waiting: the [`WaitStrategy`] a handle follows, and the waiter state shared by the handles of
//! one channel.
//!
//! # How a wake-up cannot be lost
//!
//! A waiter that is about to sleep and a party that is about to wake it form the Dekker pattern:
//!
//! | waiter (a consumer waiting for a value) | waker (the publisher) |
//! |---|---|
//! | arm: set its seat's flag, increment the waiter count | store the write position (in the core, Release) |
//! | `fence(SeqCst)` | `fence(SeqCst)` |
//! | try again: load the write position | load the waiter count |
//!
//! The two sequentially consistent fences are ordered one way or the other: if the waker's comes
//! first, the waiter's retry sees the new write position and does not sleep; if the waiter's
//! comes first, the waker's load sees the count (and then the seat's flag) and wakes it. Without
//! the fences both loads could read the old values (each store still sitting in its core's store
//! buffer, which Release/Acquire alone does not drain), and the waiter would sleep through a value
//! that is already there. A publisher waiting for room is the mirror image: it arms the
//! producer's flag, fences, and tries to publish again; a consumer frees a slot (in the core),
//! fences, and loads that flag.
//!
//! When nobody waits, the cost on the hot path is therefore one fence, one relaxed load and one
//! branch not taken: no lock, no syscall, no read-modify-write on a shared line. Only a waker that
//! sees a waiter takes a lock (the waiter's `Mutex<Option<Thread>>`) and calls
//! [`Thread::unpark`] or [`Waker::wake`](std::task::Waker::wake).
//!
//! Parking is nevertheless bounded ([`WaitStrategy::park`]): a thread parks for at most that long
//! and then tries again, so even a wake-up the protocol above did not cover would delay a waiter
//! by at most one park, and nothing can hang forever.

use std::fmt;
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How a blocking call waits: it spins `spins` times, then yields its time slice `yields` times,
/// then parks its thread (with [`std::thread::park_timeout`]) until it is woken, at most
/// `park` at a time.
///
/// Without `park` (`None`), the waiter stays in its last phase until it succeeds or times out:
/// it keeps yielding if `yields > 0`, and keeps spinning otherwise. Such a waiter never
/// registers, so nobody has to wake it, at the price of a busy core.
///
/// The strategy changes nothing on the publish and receive paths of a party that does not wait;
/// see the [module docs](mod@crate::channel#cost-when-nobody-waits).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use multicast_buffer::WaitStrategy;
///
/// // Latency-critical, with a core to spare: spin, never sleep.
/// let spin = WaitStrategy::SPIN;
/// assert_eq!(spin.park, None);
/// // The default: a short spin, a few yields, then park (woken by the other side).
/// let default = WaitStrategy::default();
/// assert!(default.spins > 0 && default.park.is_some());
/// // Custom: park at once, re-checking at least every millisecond.
/// let eager = WaitStrategy { spins: 0, yields: 0, park: Some(Duration::from_millis(1)) };
/// # let _ = eager;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WaitStrategy {
    /// Busy-wait iterations ([`std::hint::spin_loop`]) before yielding.
    pub spins: u32,
    /// [`std::thread::yield_now`] calls before parking.
    pub yields: u32,
    /// Park, for at most this long at a time (then check again), once spinning and yielding are
    /// done; `None`: never park. A zero duration is treated as one microsecond.
    pub park: Option<Duration>,
}

impl WaitStrategy {
    /// The longest single park of [`DEFAULT`](Self::DEFAULT): the bound on how late a missed
    /// wake-up could make a waiter.
    pub const MAX_PARK: Duration = Duration::from_millis(50);

    /// Spin, then yield a little, then park: good latency when the other side is quick, no
    /// burned core when it is not.
    pub const DEFAULT: Self = Self { spins: 64, yields: 8, park: Some(Self::MAX_PARK) };

    /// Spin until done (or timed out): the lowest latency, one busy core per waiter.
    pub const SPIN: Self = Self { spins: 1, yields: 0, park: None };

    /// Yield until done (or timed out): lets other threads run, never sleeps.
    pub const YIELD: Self = Self { spins: 0, yields: 1, park: None };

    /// Park at once: the least CPU, the highest wake-up latency.
    pub const PARK: Self = Self { spins: 0, yields: 0, park: Some(Self::MAX_PARK) };
}

impl Default for WaitStrategy {
    /// [`WaitStrategy::DEFAULT`].
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What a waiter does next.
pub(crate) enum Step {
    Spin,
    Yield,
    /// Park for at most this long (non-zero).
    Park(Duration),
    TimedOut,
}

/// A waiter's progress through its strategy, and its deadline.
pub(crate) struct Backoff {
    strategy: WaitStrategy,
    deadline: Option<Instant>,
    step: u32,
}

impl Backoff {
    /// Starts a wait of at most `timeout` (`None`: no limit).
    pub(crate) fn new(strategy: WaitStrategy, timeout: Option<Duration>) -> Self {
        // A deadline too far to represent is no deadline.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        Self { strategy, deadline, step: 0 }
    }

    /// The next step; `TimedOut` once the deadline has passed.
    pub(crate) fn next(&mut self) -> Step {
        let remaining = match self.deadline {
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return Step::TimedOut,
            },
            None => None,
        };
        let WaitStrategy { spins, yields, park } = self.strategy;
        let step = self.step;
        self.step = step.saturating_add(1);
        if step < spins {
            Step::Spin
        } else if step - spins < yields {
            Step::Yield
        } else if let Some(max) = park {
            let max = max.max(Duration::from_micros(1));
            Step::Park(remaining.map_or(max, |left| left.min(max)))
        } else if yields > 0 {
            Step::Yield
        } else {
            Step::Spin
        }
    }
}

/// One party's registration: a flag saying it is armed, the thread to unpark and the task to
/// wake. Allocated once, at construction; arming allocates nothing.
#[derive(Default)]
struct Parker {
    /// Whether the party is armed (counted in `Waiters::consumers` for a seat).
    waiting: AtomicBool,
    /// The thread to unpark; a stale one only gets a spurious unpark, which `park` allows.
    thread: Mutex<Option<Thread>>,
    /// The task to wake.
    #[cfg(feature = "async")]
    task: atomic_waker::AtomicWaker,
}

impl Parker {
    /// Wakes whoever is registered (a thread, a task or both).
    fn wake(&self) {
        // A poisoned lock still holds a valid `Option<Thread>`: nothing panics while holding it.
        if let Some(thread) = self.thread.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
            thread.unpark();
        }
        #[cfg(feature = "async")]
        self.task.wake();
    }

    /// Records the current thread as the one to unpark.
    fn set_thread(&self) {
        let current = thread::current();
        let mut slot = self.thread.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().map(Thread::id) != Some(current.id()) {
            *slot = Some(current);
        }
    }
}

/// The waiter state of one channel: a [`Parker`] per consumer seat and one for the publisher,
/// all allocated by [`new`](Self::new).
pub(crate) struct Waiters {
    /// How many seats are armed. Range: `0..=seats.len()`.
    consumers: AtomicUsize,
    seats: Box<[Parker]>,
    producer: Parker,
}

impl Waiters {
    pub(crate) fn new(seats: usize) -> Self {
        Self {
            consumers: AtomicUsize::new(0),
            seats: (0..seats).map(|_| Parker::default()).collect(),
            producer: Parker::default(),
        }
    }

    /// Arms seat `index`'s parker for the current thread. Only the seat's holder calls it.
    pub(crate) fn arm_seat_thread(&self, index: usize) {
        let parker = &self.seats[index];
        parker.set_thread();
        self.arm_seat(parker);
    }

    /// Arms seat `index`'s parker for a task.
    #[cfg(feature = "async")]
    pub(crate) fn arm_seat_task(&self, index: usize, waker: &std::task::Waker) {
        let parker = &self.seats[index];
        parker.task.register(waker);
        self.arm_seat(parker);
    }

    /// Sets the seat's flag and counts it, then fences: the waiter's half of the Dekker pattern
    /// (see the module docs). The caller must try again before it sleeps.
    fn arm_seat(&self, parker: &Parker) {
        // SeqCst: ordered before the fence below, which pairs with the fence in
        // `after_publish`; Release for the `thread` store above, which the waker's Acquire load
        // of this flag (in `wake_consumers`) makes visible to its lock.
        if !parker.waiting.swap(true, Ordering::SeqCst) {
            // SeqCst: as above; read (Relaxed) after the fence in `after_publish`.
            self.consumers.fetch_add(1, Ordering::SeqCst);
        }
        // SeqCst fence: pairs with the fence in `after_publish`, so that either our retry sees
        // the producer's new write position or the producer sees our registration.
        fence(Ordering::SeqCst);
    }

    /// Disarms seat `index` (idempotent). Only the seat's holder calls it.
    pub(crate) fn disarm_seat(&self, index: usize) {
        let waiting = &self.seats[index].waiting;
        // Relaxed: no data is published by disarming; a waker that still sees the flag only
        // wakes us spuriously. Only the seat's holder writes the flag, so load-then-swap does
        // not race, and a disarmed seat costs no read-modify-write.
        if waiting.load(Ordering::Relaxed) && waiting.swap(false, Ordering::Relaxed) {
            // Relaxed: as above; the count is a hint for `after_publish`.
            self.consumers.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Arms the producer's parker for the current thread, then fences. Only the publisher calls
    /// it; it must try again before it sleeps.
    pub(crate) fn arm_producer_thread(&self) {
        self.producer.set_thread();
        self.arm_producer();
    }

    /// Arms the producer's parker for a task, then fences.
    #[cfg(feature = "async")]
    pub(crate) fn arm_producer_task(&self, waker: &std::task::Waker) {
        self.producer.task.register(waker);
        self.arm_producer();
    }

    fn arm_producer(&self) {
        // SeqCst: ordered before the fence below, which pairs with the fence in
        // `after_release`; Release for the `thread` store, which the waker's Acquire fence in
        // `wake_producer` makes visible to its lock.
        self.producer.waiting.store(true, Ordering::SeqCst);
        // SeqCst fence: pairs with the fence in `after_release`, so that either our retry sees
        // the slot a consumer freed (or its request to leave) or that consumer sees this flag.
        fence(Ordering::SeqCst);
    }

    /// Disarms the producer's parker.
    pub(crate) fn disarm_producer(&self) {
        // Relaxed: as in `disarm_seat`.
        self.producer.waiting.store(false, Ordering::Relaxed);
    }

    /// Called by the publisher after the core made values visible (or closed the buffer):
    /// wakes the armed consumers, if any. With none armed: one fence, one relaxed load.
    #[inline]
    pub(crate) fn after_publish(&self) {
        // SeqCst fence: pairs with the fence in `arm_seat`; orders the core's store of the write
        // position before the load below (see the module docs).
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence above; pairs with the increment in `arm_seat`.
        if self.consumers.load(Ordering::Relaxed) != 0 {
            self.wake_consumers();
        }
    }

    #[cold]
    #[inline(never)]
    fn wake_consumers(&self) {
        for parker in self.seats.iter() {
            // Acquire: pairs with the SeqCst swap in `arm_seat`, so its `thread` store is
            // visible to our lock in `wake`. Read after the fence in `after_publish`.
            if parker.waiting.load(Ordering::Acquire) {
                parker.wake();
            }
        }
    }

    /// Wakes seat `index`'s waiter, if armed (after a detach).
    pub(crate) fn wake_seat(&self, index: usize) {
        // SeqCst fence: as in `after_publish`, after the caller's change of the seat.
        fence(Ordering::SeqCst);
        let parker = &self.seats[index];
        // Acquire: as in `wake_consumers`.
        if parker.waiting.load(Ordering::Acquire) {
            parker.wake();
        }
    }

    /// Called by a consumer after it freed slots (read values, released a guard, left) or
    /// detached seats: wakes the publisher if it waits for room. With the publisher not armed:
    /// one fence, one relaxed load.
    #[inline]
    pub(crate) fn after_release(&self) {
        // SeqCst fence: pairs with the fence in `arm_producer`; orders the core's release of the
        // slot (or the seat's request) before the load below.
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence above; pairs with the store in `arm_producer`.
        if self.producer.waiting.load(Ordering::Relaxed) {
            self.wake_producer();
        }
    }

    /// Runs `call`, one call into the core's receive side (a read, a batch, a look, a rejoin, a
    /// subscribe), and then [`after_release`](Self::after_release), however `call` ends: with a
    /// value, with an error, or by unwinding.
    ///
    /// Every exit must wake, not only a value: a detached subscriber gives back what it had not
    /// read (the core's settle) and returns `Detached`; a claim whose `Clone` panics on a seat
    /// that was detached meanwhile gives its unit back; either frees a slot that a publisher may
    /// have found still held a moment before, and registered for. Every receive path of the
    /// handles calls the core through here, so none can forget the wake-up. With the publisher
    /// not armed it costs what `after_release` costs: one fence, one relaxed load.
    #[inline]
    pub(crate) fn releasing<R>(&self, call: impl FnOnce() -> R) -> R {
        let _wake = WakePublisher(self);
        call()
    }

    #[cold]
    #[inline(never)]
    fn wake_producer(&self) {
        // Acquire fence: pairs with the SeqCst (so Release) store in `arm_producer` that the
        // Relaxed load in `after_release` read, so its `thread` store is visible to our lock.
        fence(Ordering::Acquire);
        self.producer.wake();
    }

    /// Wakes every armed party (after a detach of several seats).
    pub(crate) fn wake_all(&self) {
        self.after_publish();
        self.after_release();
    }
}

impl fmt::Debug for Waiters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiters")
            // Relaxed: observations.
            .field("consumers_waiting", &self.consumers.load(Ordering::Relaxed))
            .field("producer_waiting", &self.producer.waiting.load(Ordering::Relaxed))
            .finish()
    }
}

/// Calls [`Waiters::after_release`] when dropped, on return and on unwinding: held across each
/// call into the core's receive side (by [`Waiters::releasing`]) and by a `ReadGuard`.
pub(crate) struct WakePublisher<'a>(pub(crate) &'a Waiters);

impl Drop for WakePublisher<'_> {
    #[inline]
    fn drop(&mut self) {
        // The injected bug of `ci/teeth.sh`: a receive that unwinds (a panicking `Clone`) wakes
        // nobody, the lost wake-up of a pending publish that this guard prevents.
        #[cfg(multicast_bug = "unwind-without-wake")]
        if std::thread::panicking() {
            return;
        }
        self.0.after_release();
    }
}

/// Parks the current thread for at most `duration` (a wake-up or a spurious return ends it
/// earlier); the caller tries again after.
pub(crate) fn park(duration: Duration) {
    thread::park_timeout(duration);
}

/// One step of a spin or yield phase.
pub(crate) fn pause(step: &Step) {
    match step {
        Step::Spin => std::hint::spin_loop(),
        Step::Yield => thread::yield_now(),
        Step::Park(duration) => park(*duration),
        Step::TimedOut => {}
    }
}
