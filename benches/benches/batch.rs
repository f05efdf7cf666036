//! Single-thread cost of batches (`u64`, capacity 1024, 1 and 4 consumers): one round publishes
//! [`BATCH`] values with one call, then every consumer takes all of them with one call.
//!
//! Criterion's throughput is set to `BATCH × consumers` elements per round, so its
//! `thrpt` is deliveries (one value to one consumer) per second, and the time per round divided by
//! `BATCH × consumers` is the amortised cost per value per consumer, publish included.
//!
//! Contenders:
//!
//! - `ours-batch`: `Publisher::publish_iter` (one write-position store per call) and
//!   `Subscriber::recv_batch(usize::MAX, ..)` (one read-position store per call), handles over an
//!   `Arc<HeapBuffer>` (capacity and consumer count known at run time);
//! - `ours-batch-inline`: the same calls over a `&'static InlineBuffer` (known at compile time);
//! - `disruptor-batch`: disruptor-rs 4, `try_batch_publish(64, ..)` and `EventPoller::poll()`
//!   driven from the same thread.
//!
//! As in `single_thread.rs`, no other thread touches the buffer: a floor, not a cross-thread
//! figure (`src/bin/compare.rs` gives those).
//!
//! ```text
//! cargo bench -p multicast-buffer-benches --bench batch
//! ```

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use disruptor::{build_single_producer, BusySpin, EventPoller, Producer, SingleProducerBarrier};
use multicast_buffer_core::{BufferRef, HeapBuffer, InlineBuffer, Publisher, Subscriber};

const CAPACITY: usize = 1024;
/// Values per publish call and per consume call.
const BATCH: u64 = 64;

/// One round of a contender: publish `first..first + BATCH` with one call, then every consumer
/// takes everything with one call. Returns the sum of what the consumers received.
trait Round {
    fn round(&mut self, first: u64) -> u64;
}

/// Our handles, over whatever the publisher and subscribers reach the buffer by.
struct Ours<B: BufferRef<Item = u64>> {
    publisher: Publisher<B>,
    subscribers: Vec<Subscriber<B>>,
}

impl<B: BufferRef<Item = u64>> Round for Ours<B> {
    #[inline]
    fn round(&mut self, first: u64) -> u64 {
        let published = self.publisher.publish_iter(first..first + BATCH);
        debug_assert_eq!(published, BATCH as usize);
        let mut sum = 0u64;
        for subscriber in &mut self.subscribers {
            let _ = subscriber.recv_batch(usize::MAX, |value| sum = sum.wrapping_add(value));
        }
        sum
    }
}

fn ours_heap(consumers: usize) -> Ours<Arc<HeapBuffer<u64>>> {
    let buffer = Arc::new(HeapBuffer::new(CAPACITY, consumers));
    let publisher = Publisher::new(Arc::clone(&buffer)).expect("fresh buffer");
    let subscribers = (0..consumers)
        .map(|index| Subscriber::new(Arc::clone(&buffer), index).expect("fresh buffer"))
        .collect();
    Ours { publisher, subscribers }
}

fn ours_inline<const N: usize>() -> Ours<&'static InlineBuffer<u64, CAPACITY, N>> {
    // Leaked: one per bench, for the life of the process, like a firmware `static`.
    let buffer: &'static InlineBuffer<u64, CAPACITY, N> = Box::leak(Box::default());
    let publisher = buffer.publisher().expect("fresh buffer");
    let subscribers = (0..N).map(|index| buffer.subscriber(index).expect("fresh buffer")).collect();
    Ours { publisher, subscribers }
}

/// disruptor-rs with `EventPoller`s and no handler threads, driven from this thread.
struct Disruptor<P> {
    producer: P,
    pollers: Vec<EventPoller<u64, SingleProducerBarrier>>,
}

impl<P: Producer<u64>> Round for Disruptor<P> {
    #[inline]
    fn round(&mut self, first: u64) -> u64 {
        let published = self.producer.try_batch_publish(BATCH as usize, |slots| {
            for (value, slot) in (first..).zip(slots) {
                *slot = value;
            }
        });
        debug_assert!(published.is_ok());
        let mut sum = 0u64;
        for poller in &mut self.pollers {
            if let Ok(mut events) = poller.poll() {
                for value in &mut events {
                    sum = sum.wrapping_add(*value);
                }
            }
        }
        sum
    }
}

fn disruptor(consumers: usize, visit: &mut Visit<'_, '_>) {
    let builder = build_single_producer(CAPACITY, || 0u64, BusySpin);
    if consumers == 1 {
        let (poller, builder) = builder.new_event_poller();
        visit.run(
            "disruptor-batch",
            1,
            Disruptor { producer: builder.build(), pollers: vec![poller] },
        );
    } else {
        let mut builder = builder.with_multi_consumer();
        let mut pollers = Vec::new();
        for _ in 0..consumers {
            let (poller, next) = builder.new_event_poller();
            pollers.push(poller);
            builder = next;
        }
        visit.run("disruptor-batch", consumers, Disruptor { producer: builder.build(), pollers });
    }
}

struct Visit<'a, 'c>(&'a mut BenchmarkGroup<'c, WallTime>);

impl Visit<'_, '_> {
    fn run<R: Round>(&mut self, name: &str, consumers: usize, mut contender: R) {
        // Checked before it is timed: every consumer receives every value of a round.
        let expected = |first: u64| {
            (first..first + BATCH).fold(0u64, u64::wrapping_add).wrapping_mul(consumers as u64)
        };
        for round in 0..4 {
            let first = round * BATCH;
            assert_eq!(contender.round(first), expected(first), "{name}/{consumers}");
        }
        let mut first = 4 * BATCH;
        self.0.throughput(Throughput::Elements(BATCH * consumers as u64));
        self.0.bench_function(BenchmarkId::new(name, consumers), |b| {
            b.iter(|| {
                black_box(contender.round(black_box(first)));
                first += BATCH;
            })
        });
    }
}

fn batch(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch");
    let mut visit = Visit(&mut group);
    visit.run("ours-batch", 1, ours_heap(1));
    visit.run("ours-batch", 4, ours_heap(4));
    visit.run("ours-batch-inline", 1, ours_inline::<1>());
    visit.run("ours-batch-inline", 4, ours_inline::<4>());
    disruptor(1, &mut visit);
    disruptor(4, &mut visit);
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = batch
}
criterion_main!(benches);
