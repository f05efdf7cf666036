//! Wake-up latency: how long a consumer that is *blocked* (its thread parked, or its task
//! pending on a parked executor thread) takes to have a value published while it waits.
//!
//! One producer, `N` consumers, one value in flight at a time. For each sample the producer
//! waits until every consumer has the previous value, sleeps [`WakeSetup::gap`] (1 ms by
//! default: far longer than any contender's spin and yield phases, so each consumer is parked
//! in its blocking receive by then), reads the clock and publishes; each consumer reads the clock
//! as soon as its blocking receive returns and records the difference. Every value is checked
//! (value `i` must be `i`). The clock is [`Clock`], as in the latency runs.
//!
//! Each contender uses its own blocking or async receive, as a user would; the async ones run on
//! the same minimal executor ([`block_on`]: poll, then park the thread until the waker unparks
//! it). disruptor-rs and codas-flow have no parking receive (their waits spin or re-wake
//! themselves), and our index API (`MulticastBuffer::consume`) does not block, so they are not in
//! this table.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::contenders::Kind;
use crate::harness::panic_message;
use crate::latency::{histogram, Clock};

/// What one wake-up trial is asked to do.
#[derive(Debug, Clone)]
pub struct WakeSetup {
    /// The number of consumer threads, each blocked in its receive.
    pub consumers: usize,
    /// The capacity of the queue (one value is in flight at a time).
    pub capacity: usize,
    /// How many values (samples per consumer).
    pub samples: usize,
    /// How long the producer sleeps before each publish, once every consumer has the previous
    /// value.
    pub gap: Duration,
    /// When a waiting thread gives up and the trial counts as stalled.
    pub deadline: Instant,
}

/// The outcome of one wake-up trial.
#[derive(Debug)]
pub struct WakeTrial {
    /// Every consumer's samples, merged, in ns.
    pub latency: Histogram<u64>,
    /// The first problem: a lost, duplicated or reordered value, a stall, a panic.
    pub error: Option<String>,
}

/// A queue whose consumers can block: runs one wake-up trial.
pub trait WakeContender: Send + Sync {
    /// The name in the tables (contender and receive call).
    fn name(&self) -> &'static str;
    /// Ours or a peer.
    fn kind(&self) -> Kind;
    /// One line on how it is driven.
    fn description(&self) -> &'static str;
    /// Runs one trial.
    fn run(&self, setup: &WakeSetup) -> WakeTrial;
}

/// Polls `future` on this thread until it is ready, parking the thread in between (woken by the
/// future's waker); gives up at `deadline`. A lost wake-up does not hang: the thread re-polls at
/// least every second (and such a sample then shows in the maximum).
pub fn block_on<F: Future>(future: F, deadline: Instant) -> Option<F::Output> {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Some(output);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        thread::park_timeout((deadline - now).min(Duration::from_secs(1)));
    }
}

/// Runs one wake-up trial: `send` (which owns the sender, dropped when the producer is done or
/// fails, so that blocked consumers see the channel close) on one thread, each of `receivers`
/// (a blocking receive, given the deadline) on its own.
fn run_wake<S, R>(setup: &WakeSetup, send: S, receivers: Vec<R>) -> WakeTrial
where
    S: FnMut(u64) -> Result<(), String> + Send,
    R: FnMut(Instant) -> Result<u64, String> + Send,
{
    let clock = Clock::new();
    let stamps: Vec<AtomicU64> = (0..setup.samples).map(|_| AtomicU64::new(0)).collect();
    let stamps = &stamps[..];
    let acks = AtomicU64::new(0);
    let acks = &acks;
    let consumers = receivers.len() as u64;
    let barrier = Barrier::new(receivers.len() + 1);
    let barrier = &barrier;
    let WakeSetup { samples, gap, deadline, .. } = *setup;
    thread::scope(|scope| {
        let handles: Vec<_> = receivers
            .into_iter()
            .map(|mut receive| {
                scope.spawn(move || -> (Histogram<u64>, Option<String>) {
                    let mut hist = histogram();
                    barrier.wait();
                    for index in 0..samples as u64 {
                        let value = match receive(deadline) {
                            Ok(value) => value,
                            Err(why) => return (hist, Some(format!("value #{index}: {why}"))),
                        };
                        let now = clock.now_ns();
                        if value != index {
                            let why = format!("value #{index} was {value}");
                            return (hist, Some(why));
                        }
                        // Relaxed: published with the value by the channel (Release/Acquire).
                        let sent = stamps[index as usize].load(Ordering::Relaxed);
                        hist.saturating_record(now.saturating_sub(sent));
                        // Release: pairs with the producer's Acquire load (the producer reads
                        // nothing we wrote, but it must not publish before we are waiting again).
                        acks.fetch_add(1, Ordering::Release);
                    }
                    (hist, None)
                })
            })
            .collect();
        let producer = scope.spawn(move || -> Option<String> {
            let mut send = send;
            barrier.wait();
            for index in 0..samples as u64 {
                // Acquire: pairs with the consumers' Release increments.
                while acks.load(Ordering::Acquire) < index * consumers {
                    if Instant::now() > deadline {
                        return Some(format!("stalled: value #{index} was not acknowledged"));
                    }
                    thread::yield_now();
                }
                thread::sleep(gap);
                // Relaxed: made visible by the channel's publish of the value that follows.
                stamps[index as usize].store(clock.now_ns(), Ordering::Relaxed);
                if let Err(why) = send(index) {
                    return Some(format!("publishing value #{index}: {why}"));
                }
            }
            None
            // `send` (and the sender it owns) is dropped here: blocked consumers see the close.
        });
        let mut error = producer.join().unwrap_or_else(|panic| Some(panic_message(&*panic)));
        let mut latency = histogram();
        for handle in handles {
            match handle.join() {
                Ok((hist, consumer_error)) => {
                    latency.add(&hist).expect("histograms of the same bounds");
                    if error.is_none() {
                        error = consumer_error;
                    }
                }
                Err(panic) => {
                    error.get_or_insert_with(|| panic_message(&*panic));
                }
            }
        }
        WakeTrial { latency, error }
    })
}

/// Every wake-up contender, in table order: ours, then the peers.
pub fn wake_registry() -> Vec<Box<dyn WakeContender>> {
    vec![
        Box::new(OursBlocking),
        Box::new(OursAsync),
        Box::new(TokioBlocking),
        Box::new(TokioAsync),
        Box::new(AsyncBroadcastAsync),
        Box::new(CrossbeamBlocking),
        Box::new(BusBlocking),
    ]
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// Ours: the adapter's `channel`, `Subscriber::recv_blocking` (default `WaitStrategy`: spin,
/// yield, then park, woken by the publisher).
#[derive(Debug, Clone, Copy)]
pub struct OursBlocking;

impl WakeContender for OursBlocking {
    fn name(&self) -> &'static str {
        "ours recv_blocking"
    }
    fn kind(&self) -> Kind {
        Kind::Ours
    }
    fn description(&self) -> &'static str {
        "multicast_buffer::channel: Publisher::try_publish / Subscriber::recv_blocking(timeout), default WaitStrategy (64 spins, 8 yields, then park)"
    }
    fn run(&self, setup: &WakeSetup) -> WakeTrial {
        let (mut publisher, handle) =
            multicast_buffer::channel::<u64>(setup.capacity, setup.consumers);
        let receivers = (0..setup.consumers)
            .map(|_| {
                let mut subscriber = handle.subscribe().expect("a free seat");
                move |deadline: Instant| {
                    subscriber.recv_blocking(Some(remaining(deadline))).map_err(|e| e.to_string())
                }
            })
            .collect();
        run_wake(
            setup,
            move |value| publisher.try_publish(value).map_err(|e| format!("{e:?}")),
            receivers,
        )
    }
}

/// Ours: the adapter's `channel`, `Subscriber::recv().await` on [`block_on`].
#[derive(Debug, Clone, Copy)]
pub struct OursAsync;

impl WakeContender for OursAsync {
    fn name(&self) -> &'static str {
        "ours recv().await"
    }
    fn kind(&self) -> Kind {
        Kind::Ours
    }
    fn description(&self) -> &'static str {
        "multicast_buffer::channel: Publisher::try_publish / Subscriber::recv().await on a park-the-thread executor"
    }
    fn run(&self, setup: &WakeSetup) -> WakeTrial {
        let (mut publisher, handle) =
            multicast_buffer::channel::<u64>(setup.capacity, setup.consumers);
        let receivers = (0..setup.consumers)
            .map(|_| {
                let mut subscriber = handle.subscribe().expect("a free seat");
                move |deadline: Instant| match block_on(subscriber.recv(), deadline) {
                    Some(result) => result.map_err(|e| e.to_string()),
                    None => Err("stalled: no value before the deadline".into()),
                }
            })
            .collect();
        run_wake(
            setup,
            move |value| publisher.try_publish(value).map_err(|e| format!("{e:?}")),
            receivers,
        )
    }
}

/// `tokio::sync::broadcast` with `Receiver::blocking_recv`.
#[derive(Debug, Clone, Copy)]
pub struct TokioBlocking;

impl WakeContender for TokioBlocking {
    fn name(&self) -> &'static str {
        "tokio-broadcast blocking_recv"
    }
    fn kind(&self) -> Kind {
        Kind::Peer
    }
    fn description(&self) -> &'static str {
        "tokio::sync::broadcast: send / Receiver::blocking_recv (tokio's own park)"
    }
    fn run(&self, setup: &WakeSetup) -> WakeTrial {
        let (sender, first) = tokio::sync::broadcast::channel::<u64>(setup.capacity);
        let mut receivers = vec![first];
        receivers.extend((1..setup.consumers).map(|_| sender.subscribe()));
        let receivers = receivers
            .into_iter()
            .map(|mut receiver| {
                move |_deadline: Instant| receiver.blocking_recv().map_err(|e| e.to_string())
            })
            .collect();
        run_wake(
            setup,
            move |value| sender.send(value).map(drop).map_err(|e| e.to_string()),
            receivers,
        )
    }
}

/// `tokio::sync::broadcast` with `Receiver::recv().await` on [`block_on`].
#[derive(Debug, Clone, Copy)]
pub struct TokioAsync;

impl WakeContender for TokioAsync {
    fn name(&self) -> &'static str {
        "tokio-broadcast recv().await"
    }
    fn kind(&self) -> Kind {
        Kind::Peer
    }
    fn description(&self) -> &'static str {
        "tokio::sync::broadcast: send / Receiver::recv().await on the same park-the-thread executor as ours"
    }
    fn run(&self, setup: &WakeSetup) -> WakeTrial {
        let (sender, first) = tokio::sync::broadcast::channel::<u64>(setup.capacity);
        let mut receivers = vec![first];
        receivers.extend((1..setup.consumers).map(|_| sender.subscribe()));
        let receivers = receivers
            .into_iter()
            .map(|mut receiver| {
                move |deadline: Instant| match block_on(receiver.recv(), deadline) {
                    Some(result) => result.map_err(|e| e.to_string()),
                    None => Err("stalled: no value before the deadline".into()),
                }
            })
            .collect();
        run_wake(
            setup,
            move |value| sender.send(value).map(drop).map_err(|e| e.to_string()),
            receivers,
        )
    }
}

/// `async-broadcast` with `Receiver::recv().await` on [`block_on`].
#[derive(Debug, Clone, Copy)]
pub struct AsyncBroadcastAsync;

impl WakeContender for AsyncBroadcastAsync {
    fn name(&self) -> &'static str {
        "async-broadcast recv().await"
    }
    fn kind(&self) -> Kind {
        Kind::Peer
    }
    fn description(&self) -> &'static str {
        "async-broadcast 0.7: try_broadcast / Receiver::recv().await on the same park-the-thread executor as ours"
    }
    fn run(&self, setup: &WakeSetup) -> WakeTrial {
        let (mut sender, first) = async_broadcast::broadcast::<u64>(setup.capacity);
        sender.set_overflow(false);
        let mut receivers: Vec<_> = (1..setup.consumers).map(|_| first.clone()).collect();
        receivers.push(first);
        let receivers = receivers
            .into_iter()
            .map(|mut receiver| {
                move |deadline: Instant| match block_on(receiver.recv(), deadline) {
                    Some(result) => result.map_err(|e| e.to_string()),
                    None => Err("stalled: no value before the deadline".into()),
                }
            })
            .collect();
        run_wake(
            setup,
            move |value| sender.try_broadcast(value).map(drop).map_err(|e| e.to_string()),
            receivers,
        )
    }
}

/// crossbeam-channel fan-out (one bounded channel per consumer) with `recv_timeout`.
#[derive(Debug, Clone, Copy)]
pub struct CrossbeamBlocking;

impl WakeContender for CrossbeamBlocking {
    fn name(&self) -> &'static str {
        "crossbeam-fanout recv"
    }
    fn kind(&self) -> Kind {
        Kind::Peer
    }
    fn description(&self) -> &'static str {
        "crossbeam-channel: one bounded(capacity) channel per consumer, send to each in turn / recv_timeout"
    }
    fn run(&self, setup: &WakeSetup) -> WakeTrial {
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..setup.consumers).map(|_| crossbeam_channel::bounded::<u64>(setup.capacity)).unzip();
        let receivers = receivers
            .into_iter()
            .map(|receiver| {
                move |deadline: Instant| {
                    receiver.recv_timeout(remaining(deadline)).map_err(|e| e.to_string())
                }
            })
            .collect();
        run_wake(
            setup,
            move |value| {
                senders.iter().try_for_each(|sender| sender.send(value).map_err(|e| e.to_string()))
            },
            receivers,
        )
    }
}

/// `bus` with `BusReader::recv_timeout`.
#[derive(Debug, Clone, Copy)]
pub struct BusBlocking;

impl WakeContender for BusBlocking {
    fn name(&self) -> &'static str {
        "bus recv"
    }
    fn kind(&self) -> Kind {
        Kind::Peer
    }
    fn description(&self) -> &'static str {
        "bus 2: try_broadcast / BusReader::recv_timeout"
    }
    fn run(&self, setup: &WakeSetup) -> WakeTrial {
        let mut bus = bus::Bus::<u64>::new(setup.capacity);
        let receivers = (0..setup.consumers)
            .map(|_| {
                let mut reader = bus.add_rx();
                move |deadline: Instant| {
                    reader.recv_timeout(remaining(deadline)).map_err(|e| e.to_string())
                }
            })
            .collect();
        run_wake(
            setup,
            move |value| bus.try_broadcast(value).map_err(|_| "the bus is full".to_string()),
            receivers,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wake_contender_delivers_every_value() {
        for contender in wake_registry() {
            for consumers in [1, 2] {
                let setup = WakeSetup {
                    consumers,
                    capacity: 16,
                    samples: 20,
                    gap: Duration::from_micros(200),
                    deadline: Instant::now() + Duration::from_secs(60),
                };
                let trial = contender.run(&setup);
                assert_eq!(trial.error, None, "{} ({consumers} consumers)", contender.name());
                assert_eq!(trial.latency.len(), 20 * consumers as u64, "{}", contender.name());
            }
        }
    }
}
