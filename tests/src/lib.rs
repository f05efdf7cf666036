//! Shared helpers for the integration, stress, model and compile-fail tests of
//! `multicast-buffer`. The tests themselves are in `tests/`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How many values a threaded test moves: small under Miri, which is slow.
pub const fn scaled(normal: usize, miri: usize) -> usize {
    if cfg!(miri) {
        miri
    } else {
        normal
    }
}

/// Counts live instances of [`Counted`]: made, cloned and dropped.
#[derive(Debug, Default)]
pub struct Counters {
    made: AtomicUsize,
    clones: AtomicUsize,
    drops: AtomicUsize,
}

impl Counters {
    /// New shared counters.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Makes a counted payload.
    pub fn make(self: &Arc<Self>, value: u64) -> Counted {
        self.made.fetch_add(1, Ordering::Relaxed);
        Counted { value, counters: Arc::clone(self) }
    }

    /// Instances made or cloned and not yet dropped.
    pub fn alive(&self) -> usize {
        self.made.load(Ordering::SeqCst) + self.clones.load(Ordering::SeqCst)
            - self.drops.load(Ordering::SeqCst)
    }

    /// Clones made so far.
    pub fn clones(&self) -> usize {
        self.clones.load(Ordering::SeqCst)
    }

    /// Drops so far.
    pub fn drops(&self) -> usize {
        self.drops.load(Ordering::SeqCst)
    }
}

/// A payload that counts its clones and drops, to check that each value is dropped exactly once.
#[derive(Debug)]
pub struct Counted {
    /// The payload.
    pub value: u64,
    counters: Arc<Counters>,
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        self.counters.clones.fetch_add(1, Ordering::Relaxed);
        Self { value: self.value, counters: Arc::clone(&self.counters) }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.counters.drops.fetch_add(1, Ordering::Relaxed);
    }
}

/// A wait loop with a deadline, so that a bug fails a test instead of hanging it.
#[derive(Debug)]
pub struct Patience {
    deadline: Instant,
    spins: u32,
}

impl Patience {
    /// Waits of at most `limit` in total.
    pub fn new(limit: Duration) -> Self {
        Self { deadline: Instant::now() + limit, spins: 0 }
    }

    /// One wait step: spin a little, then yield (the machine may have fewer cores than threads).
    ///
    /// # Panics
    ///
    /// When the deadline has passed, naming `what` was being waited for.
    #[track_caller]
    pub fn wait(&mut self, what: &str) {
        self.spins += 1;
        if self.spins < 64 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
            if self.spins.is_multiple_of(1024) {
                assert!(Instant::now() < self.deadline, "deadline passed waiting for {what}");
            }
        }
    }

    /// Call after progress: the next wait spins again first.
    pub fn reset(&mut self) {
        self.spins = 0;
    }
}

/// The README's code examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
