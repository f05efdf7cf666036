//! One timed trial: one producer thread, `N` consumer threads, started together by a
//! [`Barrier`]; timed from the barrier to the moment the last consumer has received its last
//! value.

use std::any::Any;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use crate::payload::{Checker, ConsumerReport, Payload};
use crate::wait::{Abort, Backoff};

/// What one trial is asked to do.
#[derive(Debug)]
pub struct Setup<P> {
    /// The number of consumer threads; each must receive every message.
    pub consumers: usize,
    /// The capacity of the queue (slots, or per-consumer channel length for a fan-out).
    pub capacity: usize,
    /// The messages, in publish order, built before the clock starts.
    pub messages: Vec<P>,
    /// When a waiting thread gives up and the trial counts as stalled.
    pub deadline: Instant,
}

impl<P> Setup<P> {
    /// The number of messages each consumer must receive.
    pub fn message_count(&self) -> u64 {
        self.messages.len() as u64
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

/// Runs one trial on scoped threads: `producer` on one thread, one thread per entry of
/// `consumers`; all wait on a barrier, then the producer notes the start time.
///
/// The producer gets the messages as a `Vec` to drain (the emptied `Vec` is freed after the
/// trial, not inside it) and a [`Backoff`]; each consumer gets its [`Checker`] and a `Backoff`.
/// A panic in any of them becomes the trial's error instead of ending the run.
pub fn run_scoped<P, F, C>(setup: Setup<P>, producer: F, consumers: Vec<C>) -> Trial
where
    P: Payload,
    F: FnOnce(&mut Vec<P>, &mut Backoff) -> Result<(), Abort> + Send,
    C: FnOnce(&mut Checker<P>, &mut Backoff) -> Result<(), Abort> + Send,
{
    let Setup { messages: mut values, deadline, .. } = setup;
    let target = values.len() as u64;
    let barrier = Barrier::new(consumers.len() + 1);
    let barrier = &barrier;
    let (started, producer_result, reports) = thread::scope(|scope| {
        let handles: Vec<_> = consumers
            .into_iter()
            .map(|consume| {
                scope.spawn(move || {
                    let mut checker = Checker::<P>::new(target);
                    let mut backoff = Backoff::new(deadline);
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
            let mut backoff = Backoff::new(deadline);
            barrier.wait();
            let started = Instant::now();
            (started, producer(values, &mut backoff))
        });
        let (started, producer_result) = match producer.join() {
            Ok((started, result)) => (started, result.map_err(|abort| abort.to_string())),
            Err(panic) => (Instant::now(), Err(panic_message(&*panic))),
        };
        let reports: Vec<ConsumerReport> = handles
            .into_iter()
            .map(|handle| {
                handle.join().unwrap_or_else(|panic| ConsumerReport {
                    received: 0,
                    checksum: 0,
                    error: Some(panic_message(&*panic)),
                    finished: Instant::now(),
                })
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
pub fn drain<P: Payload>(
    checker: &mut Checker<P>,
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
    values: &mut Vec<P>,
    backoff: &mut Backoff,
    mut try_push: impl FnMut(P) -> Result<(), P>,
) -> Result<(), Abort> {
    for value in values.drain(..) {
        push_one(value, backoff, &mut try_push)?;
    }
    Ok(())
}
