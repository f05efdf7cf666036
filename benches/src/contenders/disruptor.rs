//! disruptor-rs 4: the managed-thread (processor) variant and the `EventPoller` variant.
//!
//! Slots hold an `Option<P>` built by the factory; the producer writes `Some(value)` in place
//! (dropping the value from one lap before, as disruptor does), consumers read `&Option<P>` and
//! clone the value out. Both variants consume in batches, disruptor's natural use: the consumer
//! publishes its cursor once per batch of available events.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use disruptor::{build_single_producer, EventPoller, Polling, Producer, SingleProducerBarrier};

use super::{Contender, Kind};
use crate::harness::{panic_message, push_one, run_scoped, CheckerOf, Setup, Source, Trial};
use crate::latency::Probe;
use crate::payload::{Checker, ConsumerReport, Payload};
use crate::wait::{Abort, Backoff, SpinThenYield};

/// disruptor-rs 4 with one managed handler thread per consumer
/// (`build_single_producer(..).handle_events_with(..)`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DisruptorProcessor;

/// disruptor-rs 4 with one `EventPoller` per consumer, polled from our own threads.
#[derive(Debug, Clone, Copy, Default)]
pub struct DisruptorPoller;

/// Publishes every value through a disruptor producer, waiting by the policy while full.
fn publish_all_disruptor<P, Prod>(
    producer: &mut Prod,
    values: &mut impl Iterator<Item = P>,
    backoff: &mut Backoff,
) -> Result<(), Abort>
where
    Prod: Producer<Option<P>>,
{
    let mut try_push = |value: P| {
        let mut cell = Some(value);
        // The closure runs only if a slot is free; otherwise `cell` still holds the value.
        match producer.try_publish(|slot| *slot = cell.take()) {
            Ok(_) => Ok(()),
            Err(_) => Err(cell.take().expect("a refused value is still in its cell")),
        }
    };
    for value in values {
        push_one(value, backoff, &mut try_push)?;
    }
    Ok(())
}

impl<P: Payload> Contender<P> for DisruptorProcessor {
    fn name(&self) -> &'static str {
        "disruptor"
    }

    fn kind(&self) -> Kind {
        Kind::Peer
    }

    fn description(&self) -> &'static str {
        "disruptor 4, managed handler threads (handle_events_with), our spin-then-yield as its WaitStrategy, try_publish; batch consume"
    }

    fn run<K: Probe>(&self, setup: Setup<P, K>) -> Trial {
        let target = setup.message_count();
        let results: Vec<Arc<OnceLock<ConsumerReport>>> =
            (0..setup.consumers).map(|_| Arc::new(OnceLock::new())).collect();
        let handler = |index: usize| {
            let result = Arc::clone(&results[index]);
            let mut checker = Checker::<P, _>::with_recorder(target, setup.probe.recorder());
            move |slot: &Option<P>, _sequence: i64, _end_of_batch: bool| {
                if checker.done() {
                    return;
                }
                match slot {
                    Some(value) => checker.see(value.clone()),
                    None => {
                        let mut report = checker.report(Instant::now());
                        report.error = Some("read an empty slot".into());
                        let _ = result.set(report);
                        return;
                    }
                }
                if checker.done() {
                    let _ = result.set(checker.report(Instant::now()));
                }
            }
        };
        let builder = build_single_producer(setup.capacity, || None, SpinThenYield(setup.wait));
        if setup.consumers == 1 {
            // The single-consumer barrier, as disruptor builds it for one handler.
            let producer = builder.handle_events_with(handler(0)).build();
            drive_processor(producer, setup, &results)
        } else {
            let mut builder = builder.with_multi_consumer();
            for index in 0..setup.consumers {
                builder = builder.handle_events_with(handler(index));
            }
            drive_processor(builder.build(), setup, &results)
        }
    }
}

/// Publishes from this thread to disruptor's handler threads (already running and waiting),
/// then waits for every handler to report its last value.
fn drive_processor<P, K, Prod>(
    mut producer: Prod,
    setup: Setup<P, K>,
    results: &[Arc<OnceLock<ConsumerReport>>],
) -> Trial
where
    P: Payload,
    K: Probe,
    Prod: Producer<Option<P>>,
{
    let Setup { messages: mut values, deadline, wait, probe, .. } = setup;
    let mut backoff = Backoff::new(deadline, wait);
    let mut source = Source::new(&mut values, probe.stamper());
    let started = Instant::now();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        publish_all_disruptor(&mut producer, &mut source, &mut backoff)
    }));
    drop(source);
    let mut error = match caught {
        Ok(result) => result.err().map(|abort| abort.to_string()),
        Err(panic) => Some(panic_message(&*panic)),
    };
    while error.is_none() && results.iter().any(|result| result.get().is_none()) {
        if let Err(abort) = backoff.snooze() {
            error = Some(format!("waiting for the handler threads: {abort}"));
        }
    }
    let consumers = results
        .iter()
        .map(|result| {
            result
                .get()
                .cloned()
                .unwrap_or_else(|| ConsumerReport::missing("handler did not finish".into()))
        })
        .collect();
    // Shuts the disruptor down and joins its threads, after the clock.
    drop(producer);
    drop(values);
    Trial { started, consumers, error }
}

impl<P: Payload> Contender<P> for DisruptorPoller {
    fn name(&self) -> &'static str {
        "disruptor-poller"
    }

    fn kind(&self) -> Kind {
        Kind::Peer
    }

    fn description(&self) -> &'static str {
        "disruptor 4, EventPoller per consumer on our threads, poll() (batch) / try_publish"
    }

    fn run<K: Probe>(&self, setup: Setup<P, K>) -> Trial {
        let builder = build_single_producer(setup.capacity, || None, SpinThenYield(setup.wait));
        if setup.consumers == 1 {
            let (poller, builder) = builder.new_event_poller();
            drive_pollers(builder.build(), vec![poller], setup)
        } else {
            let mut builder = builder.with_multi_consumer();
            let mut pollers = Vec::with_capacity(setup.consumers);
            for _ in 0..setup.consumers {
                let (poller, next) = builder.new_event_poller();
                pollers.push(poller);
                builder = next;
            }
            drive_pollers(builder.build(), pollers, setup)
        }
    }
}

fn drive_pollers<P, K, Prod>(
    mut producer: Prod,
    pollers: Vec<EventPoller<Option<P>, SingleProducerBarrier>>,
    setup: Setup<P, K>,
) -> Trial
where
    P: Payload,
    K: Probe,
    Prod: Producer<Option<P>> + Send,
{
    let producer = &mut producer;
    let consumers = pollers
        .into_iter()
        .map(|mut poller| {
            move |checker: &mut CheckerOf<P, K>, backoff: &mut Backoff| {
                while !checker.done() {
                    match poller.poll() {
                        Ok(mut events) => {
                            for slot in &mut events {
                                match slot {
                                    Some(value) => checker.see(value.clone()),
                                    None => return Err(Abort::Broken("read an empty slot".into())),
                                }
                            }
                            backoff.reset();
                        }
                        Err(Polling::NoEvents) => backoff.snooze()?,
                        Err(Polling::Shutdown) => {
                            return Err(Abort::Broken("shut down before the last value".into()))
                        }
                    }
                }
                Ok(())
            }
        })
        .collect();
    run_scoped(
        setup,
        move |values, backoff| publish_all_disruptor(producer, values, backoff),
        consumers,
    )
}
