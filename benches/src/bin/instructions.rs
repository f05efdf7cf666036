//! Driver for `ci/instructions.sh`: runs `K` steady-state iterations of one variant (publish,
//! then every consumer consumes what was published), on one thread, for callgrind to count.
//!
//! Each publish call and each consume call goes through its own `#[no_mangle]`,
//! `#[inline(never)]` wrapper (`mb_ib_*`), so that `valgrind --tool=callgrind
//! --collect-atstart=no --toggle-collect=<wrapper>` counts exactly the instructions executed
//! inside one kind of operation (the wrapper's own few instructions included). Every value is
//! checked, so a wrong count cannot come from a broken run.
//!
//! Single-value variants publish one `u64` per iteration; batch variants publish [`BATCH`]
//! values per iteration with one call and each consumer takes them with one call. The script
//! divides by the values per iteration (`--symbols` prints it).
//!
//! ```text
//! instructions --list                 # the variants
//! instructions --symbols VARIANT      # "<publish wrapper> <consume wrapper> <consumers> <values per iteration>"
//! instructions VARIANT K              # run K iterations
//! ```
//!
//! Ours comes through the std `MulticastBuffer` for the `&self` index API (it forwards to the
//! core `HeapBuffer` call for call, so a core wrapper would compile to the same code, and LLVM
//! would merge the two identical wrappers into one symbol), and through the core handles over an
//! `Arc<HeapBuffer>` (run-time capacity and consumer count) and over a `&'static InlineBuffer`
//! (both known at compile time).

use std::hint::black_box;
use std::process::ExitCode;
use std::sync::Arc;

use disruptor::{
    build_single_producer, BusySpin, EventPoller, MultiConsumerBarrier, Producer,
    SingleConsumerBarrier, SingleProducer, SingleProducerBarrier,
};
use multicast_buffer::MulticastBuffer;
use multicast_buffer_core::{HeapBuffer, InlineBuffer, Publisher, Subscriber};

const CAPACITY: usize = 1024;
/// Values per call in the batch variants.
const BATCH: u64 = 64;

/// (variant, consumers, publish wrapper, consume wrapper, values per iteration)
const VARIANTS: [(&str, usize, &str, &str, u64); 16] = [
    ("ours-index-1", 1, "mb_ib_index_publish", "mb_ib_index_consume", 1),
    ("ours-index-4", 4, "mb_ib_index_publish", "mb_ib_index_consume", 1),
    ("ours-handles-1", 1, "mb_ib_handles_publish", "mb_ib_handles_recv", 1),
    ("ours-handles-4", 4, "mb_ib_handles_publish", "mb_ib_handles_recv", 1),
    ("ours-read-1", 1, "mb_ib_handles_publish", "mb_ib_handles_read", 1),
    ("ours-read-4", 4, "mb_ib_handles_publish", "mb_ib_handles_read", 1),
    ("ours-batch-1", 1, "mb_ib_batch_publish", "mb_ib_batch_recv", BATCH),
    ("ours-batch-4", 4, "mb_ib_batch_publish", "mb_ib_batch_recv", BATCH),
    ("ours-inline-1", 1, "mb_ib_inline1_publish", "mb_ib_inline1_recv", 1),
    ("ours-inline-4", 4, "mb_ib_inline4_publish", "mb_ib_inline4_recv", 1),
    ("ours-inline-batch-1", 1, "mb_ib_inline1_batch_publish", "mb_ib_inline1_batch_recv", BATCH),
    ("ours-inline-batch-4", 4, "mb_ib_inline4_batch_publish", "mb_ib_inline4_batch_recv", BATCH),
    ("disruptor-poller-1", 1, "mb_ib_disruptor1_publish", "mb_ib_disruptor_consume", 1),
    ("disruptor-poller-4", 4, "mb_ib_disruptorn_publish", "mb_ib_disruptor_consume", 1),
    ("disruptor-batch-1", 1, "mb_ib_disruptor1_batch_publish", "mb_ib_disruptor_batch_poll", BATCH),
    ("disruptor-batch-4", 4, "mb_ib_disruptorn_batch_publish", "mb_ib_disruptor_batch_poll", BATCH),
];

type HeapPublisher = Publisher<Arc<HeapBuffer<u64>>>;
type HeapSubscriber = Subscriber<Arc<HeapBuffer<u64>>>;
type Inline1 = &'static InlineBuffer<u64, CAPACITY, 1>;
type Inline4 = &'static InlineBuffer<u64, CAPACITY, 4>;

/// The `&self` API: `MulticastBuffer::try_publish`.
#[no_mangle]
#[inline(never)]
pub fn mb_ib_index_publish(buffer: &MulticastBuffer<u64>, value: u64) -> bool {
    buffer.try_publish(value).is_ok()
}

/// The `&self` API: `MulticastBuffer::consume`.
#[no_mangle]
#[inline(never)]
pub fn mb_ib_index_consume(buffer: &MulticastBuffer<u64>, consumer: usize) -> Option<u64> {
    buffer.consume(consumer)
}

/// `Publisher::try_publish` over an `Arc<HeapBuffer>`.
#[no_mangle]
#[inline(never)]
pub fn mb_ib_handles_publish(publisher: &mut HeapPublisher, value: u64) -> bool {
    publisher.try_publish(value).is_ok()
}

/// `Subscriber::try_recv` over an `Arc<HeapBuffer>`.
#[no_mangle]
#[inline(never)]
pub fn mb_ib_handles_recv(subscriber: &mut HeapSubscriber) -> Option<u64> {
    subscriber.try_recv().ok()
}

/// `Subscriber::try_read`: borrow in place, copy the value out, drop the guard (which releases
/// the slot and advances).
#[no_mangle]
#[inline(never)]
pub fn mb_ib_handles_read(subscriber: &mut HeapSubscriber) -> Option<u64> {
    subscriber.try_read().ok().map(|guard| *guard)
}

/// `Publisher::publish_iter` of `BATCH` values `first..first + BATCH`; returns how many.
#[no_mangle]
#[inline(never)]
pub fn mb_ib_batch_publish(publisher: &mut HeapPublisher, first: u64) -> usize {
    publisher.publish_iter(first..first + BATCH)
}

/// `Subscriber::recv_batch(usize::MAX, ..)`: (values taken, their sum).
#[no_mangle]
#[inline(never)]
pub fn mb_ib_batch_recv(subscriber: &mut HeapSubscriber) -> (usize, u64) {
    let mut sum = 0u64;
    let taken =
        subscriber.recv_batch(usize::MAX, |value| sum = sum.wrapping_add(value)).unwrap_or(0);
    (taken, sum)
}

/// `Publisher::try_publish` over a `&'static InlineBuffer` with 1 consumer.
#[no_mangle]
#[inline(never)]
pub fn mb_ib_inline1_publish(publisher: &mut Publisher<Inline1>, value: u64) -> bool {
    publisher.try_publish(value).is_ok()
}

/// `Subscriber::try_recv` over a `&'static InlineBuffer` with 1 consumer.
#[no_mangle]
#[inline(never)]
pub fn mb_ib_inline1_recv(subscriber: &mut Subscriber<Inline1>) -> Option<u64> {
    subscriber.try_recv().ok()
}

/// `Publisher::try_publish` over a `&'static InlineBuffer` with 4 consumers.
#[no_mangle]
#[inline(never)]
pub fn mb_ib_inline4_publish(publisher: &mut Publisher<Inline4>, value: u64) -> bool {
    publisher.try_publish(value).is_ok()
}

/// `Subscriber::try_recv` over a `&'static InlineBuffer` with 4 consumers.
#[no_mangle]
#[inline(never)]
pub fn mb_ib_inline4_recv(subscriber: &mut Subscriber<Inline4>) -> Option<u64> {
    subscriber.try_recv().ok()
}

/// `Publisher::publish_iter` over a `&'static InlineBuffer` with 1 consumer.
#[no_mangle]
#[inline(never)]
pub fn mb_ib_inline1_batch_publish(publisher: &mut Publisher<Inline1>, first: u64) -> usize {
    publisher.publish_iter(first..first + BATCH)
}

/// `Subscriber::recv_batch` over a `&'static InlineBuffer` with 1 consumer.
#[no_mangle]
#[inline(never)]
pub fn mb_ib_inline1_batch_recv(subscriber: &mut Subscriber<Inline1>) -> (usize, u64) {
    let mut sum = 0u64;
    let taken =
        subscriber.recv_batch(usize::MAX, |value| sum = sum.wrapping_add(value)).unwrap_or(0);
    (taken, sum)
}

/// `Publisher::publish_iter` over a `&'static InlineBuffer` with 4 consumers.
#[no_mangle]
#[inline(never)]
pub fn mb_ib_inline4_batch_publish(publisher: &mut Publisher<Inline4>, first: u64) -> usize {
    publisher.publish_iter(first..first + BATCH)
}

/// `Subscriber::recv_batch` over a `&'static InlineBuffer` with 4 consumers.
#[no_mangle]
#[inline(never)]
pub fn mb_ib_inline4_batch_recv(subscriber: &mut Subscriber<Inline4>) -> (usize, u64) {
    let mut sum = 0u64;
    let taken =
        subscriber.recv_batch(usize::MAX, |value| sum = sum.wrapping_add(value)).unwrap_or(0);
    (taken, sum)
}

/// disruptor's `try_publish` with the single-consumer barrier.
#[no_mangle]
#[inline(never)]
pub fn mb_ib_disruptor1_publish(
    producer: &mut SingleProducer<u64, SingleConsumerBarrier>,
    value: u64,
) -> bool {
    producer.try_publish(|slot| *slot = value).is_ok()
}

/// disruptor's `try_publish` with the multi-consumer barrier.
#[no_mangle]
#[inline(never)]
pub fn mb_ib_disruptorn_publish(
    producer: &mut SingleProducer<u64, MultiConsumerBarrier>,
    value: u64,
) -> bool {
    producer.try_publish(|slot| *slot = value).is_ok()
}

/// One value through an `EventPoller`: `poll()`, read the first event, drop the guard. (In this
/// steady state exactly one event is available, so `poll()` is `take(1)`.)
#[no_mangle]
#[inline(never)]
pub fn mb_ib_disruptor_consume(
    poller: &mut EventPoller<u64, SingleProducerBarrier>,
) -> Option<u64> {
    match poller.poll() {
        Ok(mut events) => (&mut events).next().copied(),
        Err(_) => None,
    }
}

/// disruptor's `try_batch_publish` of `BATCH` values, single-consumer barrier.
#[no_mangle]
#[inline(never)]
pub fn mb_ib_disruptor1_batch_publish(
    producer: &mut SingleProducer<u64, SingleConsumerBarrier>,
    first: u64,
) -> bool {
    producer
        .try_batch_publish(BATCH as usize, |slots| {
            for (value, slot) in (first..).zip(slots) {
                *slot = value;
            }
        })
        .is_ok()
}

/// disruptor's `try_batch_publish` of `BATCH` values, multi-consumer barrier.
#[no_mangle]
#[inline(never)]
pub fn mb_ib_disruptorn_batch_publish(
    producer: &mut SingleProducer<u64, MultiConsumerBarrier>,
    first: u64,
) -> bool {
    producer
        .try_batch_publish(BATCH as usize, |slots| {
            for (value, slot) in (first..).zip(slots) {
                *slot = value;
            }
        })
        .is_ok()
}

/// Every available event through an `EventPoller`'s `poll()`: (events, their sum).
#[no_mangle]
#[inline(never)]
pub fn mb_ib_disruptor_batch_poll(
    poller: &mut EventPoller<u64, SingleProducerBarrier>,
) -> (usize, u64) {
    match poller.poll() {
        Ok(mut events) => {
            let (mut taken, mut sum) = (0, 0u64);
            for value in &mut events {
                taken += 1;
                sum = sum.wrapping_add(*value);
            }
            (taken, sum)
        }
        Err(_) => (0, 0),
    }
}

fn check(consumer: usize, expected: u64, got: Option<u64>) -> Result<(), String> {
    if got == Some(expected) {
        Ok(())
    } else {
        Err(format!("consumer {consumer}: expected {expected}, got {got:?}"))
    }
}

/// One value per iteration: `publish(value)`, then `consume(consumer)` for every consumer.
fn run_single(
    consumers: usize,
    iterations: u64,
    mut publish: impl FnMut(u64) -> bool,
    mut consume: impl FnMut(usize) -> Option<u64>,
) -> Result<(), String> {
    for value in 0..iterations {
        if !publish(black_box(value)) {
            return Err(format!("publish {value} refused"));
        }
        for consumer in 0..consumers {
            check(consumer, value, consume(black_box(consumer)))?;
        }
    }
    Ok(())
}

/// `BATCH` values per iteration: `publish(first)` publishes `first..first + BATCH`, then
/// `consume(consumer)` takes them all for every consumer, returning (count, sum).
fn run_batch(
    consumers: usize,
    iterations: u64,
    mut publish: impl FnMut(u64) -> bool,
    mut consume: impl FnMut(usize) -> (usize, u64),
) -> Result<(), String> {
    for iteration in 0..iterations {
        let first = iteration * BATCH;
        if !publish(black_box(first)) {
            return Err(format!("batch from {first} refused"));
        }
        let expected = (first..first + BATCH).fold(0u64, u64::wrapping_add);
        for consumer in 0..consumers {
            let got = consume(black_box(consumer));
            if got != (BATCH as usize, expected) {
                return Err(format!(
                    "consumer {consumer}: expected ({BATCH}, {expected}), got {got:?}"
                ));
            }
        }
    }
    Ok(())
}

fn heap_handles(consumers: usize) -> (HeapPublisher, Vec<HeapSubscriber>) {
    let buffer = Arc::new(HeapBuffer::new(CAPACITY, consumers));
    let publisher = Publisher::new(Arc::clone(&buffer)).expect("fresh buffer");
    let subscribers = (0..consumers)
        .map(|index| Subscriber::new(Arc::clone(&buffer), index).expect("fresh buffer"))
        .collect();
    (publisher, subscribers)
}

fn inline_handles<const N: usize>() -> (
    Publisher<&'static InlineBuffer<u64, CAPACITY, N>>,
    Vec<Subscriber<&'static InlineBuffer<u64, CAPACITY, N>>>,
) {
    let buffer: &'static InlineBuffer<u64, CAPACITY, N> = Box::leak(Box::default());
    let publisher = buffer.publisher().expect("fresh buffer");
    let subscribers = (0..N).map(|index| buffer.subscriber(index).expect("fresh buffer")).collect();
    (publisher, subscribers)
}

fn disruptor1(
) -> (SingleProducer<u64, SingleConsumerBarrier>, Vec<EventPoller<u64, SingleProducerBarrier>>) {
    let (poller, builder) = build_single_producer(CAPACITY, || 0u64, BusySpin).new_event_poller();
    (builder.build(), vec![poller])
}

fn disruptor4(
) -> (SingleProducer<u64, MultiConsumerBarrier>, Vec<EventPoller<u64, SingleProducerBarrier>>) {
    let mut builder = build_single_producer(CAPACITY, || 0u64, BusySpin).with_multi_consumer();
    let mut pollers = Vec::new();
    for _ in 0..4 {
        let (poller, next) = builder.new_event_poller();
        pollers.push(poller);
        builder = next;
    }
    (builder.build(), pollers)
}

fn run(variant: &str, k: u64) -> Result<(), String> {
    let consumers = match variant.rsplit('-').next() {
        Some("1") => 1,
        Some("4") => 4,
        _ => return Err(format!("unknown variant {variant:?}; --list shows them")),
    };
    let family = &variant[..variant.len() - 2];
    match family {
        "ours-index" => {
            let buffer = MulticastBuffer::new(CAPACITY, consumers);
            run_single(
                consumers,
                k,
                |value| mb_ib_index_publish(black_box(&buffer), value),
                |consumer| mb_ib_index_consume(black_box(&buffer), consumer),
            )
        }
        "ours-handles" | "ours-read" => {
            let (mut publisher, mut subscribers) = heap_handles(consumers);
            let read = family == "ours-read";
            run_single(
                consumers,
                k,
                |value| mb_ib_handles_publish(black_box(&mut publisher), value),
                |consumer| {
                    let subscriber = black_box(&mut subscribers[consumer]);
                    if read {
                        mb_ib_handles_read(subscriber)
                    } else {
                        mb_ib_handles_recv(subscriber)
                    }
                },
            )
        }
        "ours-batch" => {
            let (mut publisher, mut subscribers) = heap_handles(consumers);
            run_batch(
                consumers,
                k,
                |first| mb_ib_batch_publish(black_box(&mut publisher), first) == BATCH as usize,
                |consumer| mb_ib_batch_recv(black_box(&mut subscribers[consumer])),
            )
        }
        "ours-inline" if consumers == 1 => {
            let (mut publisher, mut subscribers) = inline_handles::<1>();
            run_single(
                1,
                k,
                |value| mb_ib_inline1_publish(black_box(&mut publisher), value),
                |consumer| mb_ib_inline1_recv(black_box(&mut subscribers[consumer])),
            )
        }
        "ours-inline" => {
            let (mut publisher, mut subscribers) = inline_handles::<4>();
            run_single(
                4,
                k,
                |value| mb_ib_inline4_publish(black_box(&mut publisher), value),
                |consumer| mb_ib_inline4_recv(black_box(&mut subscribers[consumer])),
            )
        }
        "ours-inline-batch" if consumers == 1 => {
            let (mut publisher, mut subscribers) = inline_handles::<1>();
            run_batch(
                1,
                k,
                |first| {
                    mb_ib_inline1_batch_publish(black_box(&mut publisher), first) == BATCH as usize
                },
                |consumer| mb_ib_inline1_batch_recv(black_box(&mut subscribers[consumer])),
            )
        }
        "ours-inline-batch" => {
            let (mut publisher, mut subscribers) = inline_handles::<4>();
            run_batch(
                4,
                k,
                |first| {
                    mb_ib_inline4_batch_publish(black_box(&mut publisher), first) == BATCH as usize
                },
                |consumer| mb_ib_inline4_batch_recv(black_box(&mut subscribers[consumer])),
            )
        }
        "disruptor-poller" if consumers == 1 => {
            let (mut producer, mut pollers) = disruptor1();
            run_single(
                1,
                k,
                |value| mb_ib_disruptor1_publish(black_box(&mut producer), value),
                |consumer| mb_ib_disruptor_consume(black_box(&mut pollers[consumer])),
            )
        }
        "disruptor-poller" => {
            let (mut producer, mut pollers) = disruptor4();
            run_single(
                4,
                k,
                |value| mb_ib_disruptorn_publish(black_box(&mut producer), value),
                |consumer| mb_ib_disruptor_consume(black_box(&mut pollers[consumer])),
            )
        }
        "disruptor-batch" if consumers == 1 => {
            let (mut producer, mut pollers) = disruptor1();
            run_batch(
                1,
                k,
                |first| mb_ib_disruptor1_batch_publish(black_box(&mut producer), first),
                |consumer| mb_ib_disruptor_batch_poll(black_box(&mut pollers[consumer])),
            )
        }
        "disruptor-batch" => {
            let (mut producer, mut pollers) = disruptor4();
            run_batch(
                4,
                k,
                |first| mb_ib_disruptorn_batch_publish(black_box(&mut producer), first),
                |consumer| mb_ib_disruptor_batch_poll(black_box(&mut pollers[consumer])),
            )
        }
        _ => Err(format!("unknown variant {variant:?}; --list shows them")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["--list"] => {
            for (name, ..) in VARIANTS {
                println!("{name}");
            }
            Ok(())
        }
        ["--symbols", variant] => match VARIANTS.iter().find(|v| v.0 == *variant) {
            Some((_, consumers, publish, consume, per_iteration)) => {
                println!("{publish} {consume} {consumers} {per_iteration}");
                Ok(())
            }
            None => Err(format!("unknown variant {variant:?}; --list shows them")),
        },
        [variant, iterations] => match iterations.parse() {
            Ok(iterations) => run(variant, iterations),
            Err(_) => Err(format!("not an iteration count: {iterations:?}")),
        },
        _ => Err("usage: instructions --list | --symbols VARIANT | VARIANT K".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("instructions: {error}");
            ExitCode::FAILURE
        }
    }
}
