//! Single-thread cost of one publish and one consume (`u64`, capacity 1024, 1 and 4 consumers).
//!
//! No other thread touches the buffer, so this is the cost of the instructions and of the
//! atomic read-modify-writes on lines this core already owns: a floor, not a cross-thread
//! figure (`src/bin/compare.rs` gives those).
//!
//! - `pair/*`: the steady state: publish one value, then every consumer consumes it. Time per
//!   publish-and-all-consumes.
//! - `try_publish/*`: time per `try_publish`, measured over runs of 64 publishes, each followed
//!   (off the clock) by every consumer consuming the 64 values.
//! - `consume/*`: time per consume, measured over runs of 64 values per consumer, each published
//!   off the clock first. Consumers read in turn (consumer 0 its 64, then consumer 1 ..), so with
//!   4 consumers three of the four reads clone and release, the last one moves the value out.
//!
//! Contenders: ours through the core `HeapBuffer`'s `&self` API (`ours-core`), through the std
//! `MulticastBuffer` (`ours-std`, the same calls behind the seed's names), through the typed
//! handles over an `Arc<HeapBuffer>` (`ours-handles`: `Publisher::try_publish` /
//! `Subscriber::try_recv`; `ours-read`: the same publish, `Subscriber::try_read` and the guard
//! dropped at once), and disruptor-rs 4's `EventPoller` driven from the same thread (no handler
//! threads): `take(1)` per value, and, for consume, `poll()` taking the whole run of 64 at once
//! (its batch path). Ours in batches (`publish_iter` / `recv_batch`) is in `benches/batch.rs`.
//!
//! ```text
//! cargo bench -p multicast-buffer-benches --bench single_thread
//! ```

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use disruptor::{
    build_single_producer, BusySpin, EventPoller, Producer, SingleProducer, SingleProducerBarrier,
};
use multicast_buffer::MulticastBuffer;
use multicast_buffer_core::{HeapBuffer, Publisher, Subscriber};

const CAPACITY: usize = 1024;
const RUN: u64 = 64;
const CONSUMER_COUNTS: [usize; 2] = [1, 4];

/// The operations every contender offers, one value per call.
trait SingleThread {
    fn publish(&mut self, value: u64) -> bool;
    fn consume(&mut self, consumer: usize) -> Option<u64>;
    /// Consumes everything available for `consumer` in one call (batch API), returning the
    /// count. The default consumes one value at a time.
    fn consume_batch(&mut self, consumer: usize) -> u64 {
        let mut count = 0;
        while black_box(self.consume(consumer)).is_some() {
            count += 1;
        }
        count
    }
}

struct Core(HeapBuffer<u64>);

impl SingleThread for Core {
    #[inline]
    fn publish(&mut self, value: u64) -> bool {
        self.0.try_publish(value).is_ok()
    }
    #[inline]
    fn consume(&mut self, consumer: usize) -> Option<u64> {
        self.0.consume(consumer)
    }
}

struct Std(MulticastBuffer<u64>);

impl SingleThread for Std {
    #[inline]
    fn publish(&mut self, value: u64) -> bool {
        self.0.try_publish(value).is_ok()
    }
    #[inline]
    fn consume(&mut self, consumer: usize) -> Option<u64> {
        self.0.consume(consumer)
    }
}

/// The typed handles over an `Arc<HeapBuffer>`; `read` consumes through `try_read` (the guard is
/// dropped at once, after copying the value out) instead of `try_recv`.
struct Handles {
    publisher: Publisher<Arc<HeapBuffer<u64>>>,
    subscribers: Vec<Subscriber<Arc<HeapBuffer<u64>>>>,
    read: bool,
}

impl Handles {
    fn new(consumers: usize, read: bool) -> Self {
        let buffer = Arc::new(HeapBuffer::new(CAPACITY, consumers));
        let publisher = Publisher::new(Arc::clone(&buffer)).expect("fresh buffer");
        let subscribers = (0..consumers)
            .map(|index| Subscriber::new(Arc::clone(&buffer), index).expect("fresh buffer"))
            .collect();
        Self { publisher, subscribers, read }
    }
}

impl SingleThread for Handles {
    #[inline]
    fn publish(&mut self, value: u64) -> bool {
        self.publisher.try_publish(value).is_ok()
    }
    #[inline]
    fn consume(&mut self, consumer: usize) -> Option<u64> {
        let subscriber = &mut self.subscribers[consumer];
        if self.read {
            subscriber.try_read().ok().map(|guard| *guard)
        } else {
            subscriber.try_recv().ok()
        }
    }
}

/// disruptor-rs with `EventPoller`s and no handler threads, driven from this thread.
struct Disruptor<P> {
    producer: P,
    pollers: Vec<EventPoller<u64, SingleProducerBarrier>>,
}

impl<B> SingleThread for Disruptor<SingleProducer<u64, B>>
where
    SingleProducer<u64, B>: Producer<u64>,
{
    #[inline]
    fn publish(&mut self, value: u64) -> bool {
        self.producer.try_publish(|slot| *slot = value).is_ok()
    }
    #[inline]
    fn consume(&mut self, consumer: usize) -> Option<u64> {
        match self.pollers[consumer].take(1) {
            Ok(mut events) => (&mut events).next().copied(),
            Err(_) => None,
        }
    }
    fn consume_batch(&mut self, consumer: usize) -> u64 {
        match self.pollers[consumer].poll() {
            Ok(mut events) => {
                let mut count = 0;
                for value in &mut events {
                    black_box(*value);
                    count += 1;
                }
                count
            }
            Err(_) => 0,
        }
    }
}

/// A benchmark over one contender, generic so that every call is inlined as in real use.
trait Visit {
    fn visit<Q: SingleThread>(&mut self, name: &str, consumers: usize, queue: Q);
}

/// Calls `visit` with every contender, with 1 and with 4 consumers.
fn each_case(visit: &mut impl Visit) {
    for consumers in CONSUMER_COUNTS {
        visit.visit("ours-core", consumers, Core(HeapBuffer::new(CAPACITY, consumers)));
    }
    for consumers in CONSUMER_COUNTS {
        visit.visit("ours-std", consumers, Std(MulticastBuffer::new(CAPACITY, consumers)));
    }
    for consumers in CONSUMER_COUNTS {
        visit.visit("ours-handles", consumers, Handles::new(consumers, false));
    }
    for consumers in CONSUMER_COUNTS {
        visit.visit("ours-read", consumers, Handles::new(consumers, true));
    }
    // One consumer: disruptor's single-consumer barrier, as its builder picks.
    let (poller, builder) = build_single_producer(CAPACITY, || 0u64, BusySpin).new_event_poller();
    visit.visit(
        "disruptor-poller",
        1,
        Disruptor { producer: builder.build(), pollers: vec![poller] },
    );
    let mut builder = build_single_producer(CAPACITY, || 0u64, BusySpin).with_multi_consumer();
    let mut pollers = Vec::new();
    for _ in 0..4 {
        let (poller, next) = builder.new_event_poller();
        pollers.push(poller);
        builder = next;
    }
    visit.visit("disruptor-poller", 4, Disruptor { producer: builder.build(), pollers });
}

struct Pair<'a, 'c>(&'a mut BenchmarkGroup<'c, WallTime>);

impl Visit for Pair<'_, '_> {
    fn visit<Q: SingleThread>(&mut self, name: &str, consumers: usize, mut queue: Q) {
        let mut next = 0u64;
        self.0.bench_function(BenchmarkId::new(name, consumers), |b| {
            b.iter(|| {
                assert!(queue.publish(black_box(next)));
                for consumer in 0..consumers {
                    black_box(queue.consume(consumer));
                }
                next += 1;
            })
        });
    }
}

struct Publish<'a, 'c>(&'a mut BenchmarkGroup<'c, WallTime>);

impl Visit for Publish<'_, '_> {
    fn visit<Q: SingleThread>(&mut self, name: &str, consumers: usize, mut queue: Q) {
        self.0.bench_function(BenchmarkId::new(name, consumers), |b| {
            // One iteration is one publish.
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let run = RUN.min(iters - done);
                    let start = Instant::now();
                    for value in 0..run {
                        assert!(queue.publish(black_box(value)));
                    }
                    timed += start.elapsed();
                    for consumer in 0..consumers {
                        for _ in 0..run {
                            black_box(queue.consume(consumer));
                        }
                    }
                    done += run;
                }
                timed
            })
        });
    }
}

struct Consume<'a, 'c> {
    group: &'a mut BenchmarkGroup<'c, WallTime>,
    batch: bool,
}

impl Visit for Consume<'_, '_> {
    fn visit<Q: SingleThread>(&mut self, name: &str, consumers: usize, mut queue: Q) {
        let batch = self.batch;
        if batch && !name.starts_with("disruptor") {
            return;
        }
        let name = if batch { format!("{name}-batch") } else { name.to_string() };
        self.group.bench_function(BenchmarkId::new(name, consumers), |b| {
            // One iteration is one consume call (one value for one consumer).
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    for value in 0..RUN {
                        assert!(queue.publish(value));
                    }
                    let start = Instant::now();
                    for consumer in 0..consumers {
                        if batch {
                            black_box(queue.consume_batch(consumer));
                        } else {
                            for _ in 0..RUN {
                                black_box(queue.consume(consumer));
                            }
                        }
                    }
                    timed += start.elapsed();
                    done += RUN * consumers as u64;
                }
                // Scale the (at most one run) overshoot away.
                timed.mul_f64(iters as f64 / done as f64)
            })
        });
    }
}

fn pair(c: &mut Criterion) {
    let mut group = c.benchmark_group("pair");
    group.throughput(Throughput::Elements(1));
    each_case(&mut Pair(&mut group));
    group.finish();
}

fn try_publish(c: &mut Criterion) {
    let mut group = c.benchmark_group("try_publish");
    group.throughput(Throughput::Elements(1));
    each_case(&mut Publish(&mut group));
    group.finish();
}

fn consume(c: &mut Criterion) {
    let mut group = c.benchmark_group("consume");
    group.throughput(Throughput::Elements(1));
    each_case(&mut Consume { group: &mut group, batch: false });
    // disruptor's batch path: one `poll()` takes the whole run of 64.
    each_case(&mut Consume { group: &mut group, batch: true });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = pair, try_publish, consume
}
criterion_main!(benches);
