//! One timed trial: one producer thread, `N` consumer threads, started together by a
//! [`Barrier`]; timed from the barrier to the moment the last consumer has received its last
//! value.

use std::any::Any;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::latency::{NoProbe, Probe, Recorder, Stamper};
use crate::payload::{Checker, ConsumerReport, Payload};
use crate::wait::{Abort, Backoff, Policy};

/// What one trial is asked to do.
#[derive(Debug)]
pub struct Setup<P, K = NoProbe> {
    /// The number of consumer threads; each must receive every message.
    pub consumers: usize,
    /// The capacity of the queue (slots, or per-consumer channel length for a fan-out).
    pub capacity: usize,
    /// The messages, in publish order, built before the clock starts.
    pub messages: Vec<P>,
    /// When a waiting thread gives up and the trial counts as stalled.
    pub deadline: Instant,
    /// How every thread of the trial waits when full or empty.
    pub wait: Policy,
    /// The hooks called before each publish and after each receive ([`NoProbe`]: none).
    pub probe: K,
}

impl<P> Setup<P> {
    /// A trial without a probe, with the throughput comparison's wait policy.
    pub fn new(consumers: usize, capacity: usize, messages: Vec<P>, deadline: Instant) -> Self {
        Self { consumers, capacity, messages, deadline, wait: Policy::THROUGHPUT, probe: NoProbe }
    }
}

impl<P, K> Setup<P, K> {
    /// The same trial with another wait policy and probe.
    pub fn probed<Q: Probe>(self, wait: Policy, probe: Q) -> Setup<P, Q> {
        let Self { consumers, capacity, messages, deadline, .. } = self;
        Setup { consumers, capacity, messages, deadline, wait, probe }
    }

    /// The number of messages each consumer must receive.
    pub fn message_count(&self) -> u64 {
        self.messages.len() as u64
    }
}

/// The producer's values, in publish order: an iterator that tells the trial's
/// [`Stamper`] of each value just before handing it out (a paced producer waits there for the
/// value's turn). The values are drained from the trial's `Vec`, which is freed after the trial,
/// not inside it.
#[derive(Debug)]
pub struct Source<'a, P, S> {
    values: std::vec::Drain<'a, P>,
    stamper: S,
    next: u64,
}

impl<'a, P, S: Stamper> Source<'a, P, S> {
    /// All of `values`, stamped by `stamper`.
    pub fn new(values: &'a mut Vec<P>, stamper: S) -> Self {
        Self { values: values.drain(..), stamper, next: 0 }
    }
}

impl<P, S: Stamper> Iterator for Source<'_, P, S> {
    type Item = P;

    #[inline(always)]
    fn next(&mut self) -> Option<P> {
        let value = self.values.next()?;
        self.stamper.publishing(self.next);
        self.next += 1;
        Some(value)
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.values.size_hint()
    }
}

impl<P, S: Stamper> ExactSizeIterator for Source<'_, P, S> {}

impl<'a, P, S: Stamper> Source<'a, P, S> {
    /// The values whose turn has come, for a producer that publishes what it has in one call
    /// (a batch): the first value is handed out when its turn comes (at once, unless paced),
    /// each further one only if its turn has come already. Unpaced, that is every value.
    pub fn due(&mut self) -> Due<'_, 'a, P, S> {
        Due { source: self, first: true }
    }
}

/// The iterator of [`Source::due`].
#[derive(Debug)]
pub struct Due<'s, 'a, P, S> {
    source: &'s mut Source<'a, P, S>,
    first: bool,
}

impl<P, S: Stamper> Iterator for Due<'_, '_, P, S> {
    type Item = P;

    #[inline(always)]
    fn next(&mut self) -> Option<P> {
        if !self.first && !self.source.stamper.is_due(self.source.next) {
            return None;
        }
        self.first = false;
        self.source.next()
    }
}

/// The outcome of one trial, before it is checked.
#[derive(Debug)]
pub struct Trial {
    /// When the producer started (right after the start barrier).
    pub started: Instant,
    /// One report per consumer.
    pub consumers: Vec<ConsumerReport>,
    /// A problem outside the consumers (the producer stalled or panicked).
    pub error: Option<String>,
}

impl Trial {
    /// The latency histograms of all consumers merged (`None` without a latency probe).
    pub fn latency(&self) -> Option<Histogram<u64>> {
        let mut merged: Option<Histogram<u64>> = None;
        for hist in self.consumers.iter().filter_map(|report| report.latency.as_ref()) {
            match &mut merged {
                Some(merged) => merged.add(hist).expect("histograms of the same bounds"),
                None => merged = Some(hist.clone()),
            }
        }
        merged
    }

    /// Checks that every consumer received all `messages` values in order, and returns the wall
    /// time from the start to the last consumer's last value.
    ///
    /// # Errors
    ///
    /// A description of the first problem found: the producer's error, a consumer's error, a
    /// missing value or a wrong checksum.
    pub fn verify(&self, messages: u64, checksum: u64) -> Result<Duration, String> {
        if let Some(error) = &self.error {
            return Err(format!("producer: {error}"));
        }
        let mut last = self.started;
        for (index, report) in self.consumers.iter().enumerate() {
            if let Some(error) = &report.error {
                return Err(format!("consumer {index}: {error}"));
            }
            if report.received != messages {
                return Err(format!(
                    "consumer {index}: received {} of {messages} values",
                    report.received
                ));
            }
            if report.checksum != checksum {
                return Err(format!(
                    "consumer {index}: checksum {} instead of {checksum}",
                    report.checksum
                ));
            }
            last = last.max(report.finished);
        }
        Ok(last - self.started)
    }
}

/// The producer's values of a trial with probe `K`.
pub type SourceOf<'a, P, K> = Source<'a, P, <K as Probe>::Stamper>;

/// A consumer's checker in a trial with probe `K`.
pub type CheckerOf<P, K> = Checker<P, <K as Probe>::Recorder>;

/// Runs one trial on scoped threads: `producer` on one thread, one thread per entry of
/// `consumers`; all wait on a barrier, then the producer notes the start time.
///
/// The producer gets the messages as a [`Source`] to drain and a [`Backoff`]; each consumer
/// gets its [`Checker`] and a `Backoff`. A panic in any of them becomes the trial's error
/// instead of ending the run.
pub fn run_scoped<P, K, F, C>(setup: Setup<P, K>, producer: F, consumers: Vec<C>) -> Trial
where
    P: Payload,
    K: Probe,
    F: FnOnce(&mut SourceOf<'_, P, K>, &mut Backoff) -> Result<(), Abort> + Send,
    C: FnOnce(&mut CheckerOf<P, K>, &mut Backoff) -> Result<(), Abort> + Send,
{
    let Setup { messages: mut values, deadline, wait, probe, .. } = setup;
    let target = values.len() as u64;
    let barrier = Barrier::new(consumers.len() + 1);
    let barrier = &barrier;
    let stamper = probe.stamper();
    let (started, producer_result, reports) = thread::scope(|scope| {
        let handles: Vec<_> = consumers
            .into_iter()
            .map(|consume| {
                let recorder = probe.recorder();
                scope.spawn(move || {
                    let mut checker = Checker::<P, _>::with_recorder(target, recorder);
                    let mut backoff = Backoff::new(deadline, wait);
                    barrier.wait();
                    let outcome = consume(&mut checker, &mut backoff);
                    let mut report = checker.report(Instant::now());
                    if let Err(abort) = outcome {
                        report.error.get_or_insert_with(|| abort.to_string());
                    }
                    report
                })
            })
            .collect();
        let values = &mut values;
        let producer = scope.spawn(move || {
            let mut source = Source::new(values, stamper);
            let mut backoff = Backoff::new(deadline, wait);
            barrier.wait();
            let started = Instant::now();
            (started, producer(&mut source, &mut backoff))
        });
        let (started, producer_result) = match producer.join() {
            Ok((started, result)) => (started, result.map_err(|abort| abort.to_string())),
            Err(panic) => (Instant::now(), Err(panic_message(&*panic))),
        };
        let reports: Vec<ConsumerReport> = handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| ConsumerReport::missing(panic_message(&*panic)))
            })
            .collect();
        (started, producer_result, reports)
    });
    drop(values);
    Trial { started, consumers: reports, error: producer_result.err() }
}

/// The message of a panic caught from a trial's thread.
pub fn panic_message(panic: &(dyn Any + Send)) -> String {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    format!("panicked: {message}")
}

/// The consumer loop most contenders need: `poll` until the checker has every value, waiting
/// by the policy whenever `poll` finds nothing (`Ok(None)`).
///
/// # Errors
///
/// `poll`'s error, or [`Abort::Stalled`] from the wait.
#[inline(always)]
pub fn drain<P: Payload, R: Recorder>(
    checker: &mut Checker<P, R>,
    backoff: &mut Backoff,
    mut poll: impl FnMut() -> Result<Option<P>, Abort>,
) -> Result<(), Abort> {
    while !checker.done() {
        match poll()? {
            Some(value) => {
                checker.see(value);
                backoff.reset();
            }
            None => backoff.snooze()?,
        }
    }
    Ok(())
}

/// Offers `value` to `try_push` until it is taken, waiting by the policy while `try_push` hands
/// it back (full).
///
/// # Errors
///
/// [`Abort::Stalled`] from the wait.
#[inline(always)]
pub fn push_one<P>(
    mut value: P,
    backoff: &mut Backoff,
    try_push: &mut impl FnMut(P) -> Result<(), P>,
) -> Result<(), Abort> {
    loop {
        match try_push(value) {
            Ok(()) => {
                backoff.reset();
                return Ok(());
            }
            Err(back) => {
                value = back;
                backoff.snooze()?;
            }
        }
    }
}

/// The producer loop most contenders need: [`push_one`] for each value, in order.
///
/// # Errors
///
/// [`Abort::Stalled`] from the wait.
#[inline(always)]
pub fn publish_all<P>(
    values: &mut impl Iterator<Item = P>,
    backoff: &mut Backoff,
    mut try_push: impl FnMut(P) -> Result<(), P>,
) -> Result<(), Abort> {
    for value in values {
        push_one(value, backoff, &mut try_push)?;
    }
    Ok(())
}
