//! Driver for `ci/instructions.sh`: runs `K` steady-state iterations of one variant (publish one
//! `u64`, then every consumer consumes it), on one thread, for callgrind to count.
//!
//! Each publish and each consume goes through its own `#[no_mangle]`, `#[inline(never)]` wrapper
//! (`mb_ib_*`), so that `valgrind --tool=callgrind --collect-atstart=no
//! --toggle-collect=<wrapper>` counts exactly the instructions executed inside one kind of
//! operation (the wrapper's own few instructions included). Every value is checked, so a wrong
//! count cannot come from a broken run.
//!
//! ```text
//! instructions --list                 # the variants
//! instructions --symbols VARIANT      # "<publish wrapper> <consume wrapper> <consumers>"
//! instructions VARIANT K              # run K iterations
//! ```

use std::hint::black_box;
use std::process::ExitCode;

use disruptor::{
    build_single_producer, BusySpin, EventPoller, MultiConsumerBarrier, Producer,
    SingleConsumerBarrier, SingleProducer, SingleProducerBarrier,
};
use multicast_buffer::MulticastBuffer;

const CAPACITY: usize = 1024;

/// (variant, consumers, publish wrapper, consume wrapper)
///
/// Ours is measured through the std `MulticastBuffer` only: a wrapper around the core
/// `HeapBuffer` would compile to the same code, and the linker may fold two identical wrappers
/// into one symbol, which callgrind then reports under one name only.
const VARIANTS: [(&str, usize, &str, &str); 4] = [
    ("ours-1", 1, "mb_ib_ours_publish", "mb_ib_ours_consume"),
    ("ours-4", 4, "mb_ib_ours_publish", "mb_ib_ours_consume"),
    ("disruptor-poller-1", 1, "mb_ib_disruptor1_publish", "mb_ib_disruptor_consume"),
    ("disruptor-poller-4", 4, "mb_ib_disruptorn_publish", "mb_ib_disruptor_consume"),
];

/// `MulticastBuffer::try_publish`.
#[no_mangle]
#[inline(never)]
pub fn mb_ib_ours_publish(buffer: &MulticastBuffer<u64>, value: u64) -> bool {
    buffer.try_publish(value).is_ok()
}

/// `MulticastBuffer::consume`.
#[no_mangle]
#[inline(never)]
pub fn mb_ib_ours_consume(buffer: &MulticastBuffer<u64>, consumer: usize) -> Option<u64> {
    buffer.consume(consumer)
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

fn check(consumer: usize, expected: u64, got: Option<u64>) -> Result<(), String> {
    if got == Some(expected) {
        Ok(())
    } else {
        Err(format!("consumer {consumer}: expected {expected}, got {got:?}"))
    }
}

fn run_ours(consumers: usize, iterations: u64) -> Result<(), String> {
    let buffer = MulticastBuffer::new(CAPACITY, consumers);
    for value in 0..iterations {
        if !mb_ib_ours_publish(black_box(&buffer), black_box(value)) {
            return Err(format!("publish {value} refused"));
        }
        for consumer in 0..consumers {
            check(consumer, value, mb_ib_ours_consume(black_box(&buffer), black_box(consumer)))?;
        }
    }
    Ok(())
}

fn run_disruptor<B>(
    mut producer: SingleProducer<u64, B>,
    mut pollers: Vec<EventPoller<u64, SingleProducerBarrier>>,
    publish: fn(&mut SingleProducer<u64, B>, u64) -> bool,
    iterations: u64,
) -> Result<(), String> {
    for value in 0..iterations {
        if !publish(black_box(&mut producer), black_box(value)) {
            return Err(format!("publish {value} refused"));
        }
        for (consumer, poller) in pollers.iter_mut().enumerate() {
            check(consumer, value, mb_ib_disruptor_consume(black_box(poller)))?;
        }
    }
    Ok(())
}

fn run(variant: &str, iterations: u64) -> Result<(), String> {
    match variant {
        "ours-1" => run_ours(1, iterations),
        "ours-4" => run_ours(4, iterations),
        "disruptor-poller-1" => {
            let (poller, builder) =
                build_single_producer(CAPACITY, || 0u64, BusySpin).new_event_poller();
            run_disruptor(builder.build(), vec![poller], mb_ib_disruptor1_publish, iterations)
        }
        "disruptor-poller-4" => {
            let mut builder =
                build_single_producer(CAPACITY, || 0u64, BusySpin).with_multi_consumer();
            let mut pollers = Vec::new();
            for _ in 0..4 {
                let (poller, next) = builder.new_event_poller();
                pollers.push(poller);
                builder = next;
            }
            run_disruptor(builder.build(), pollers, mb_ib_disruptorn_publish, iterations)
        }
        other => Err(format!("unknown variant {other:?}; --list shows them")),
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
            Some((_, consumers, publish, consume)) => {
                println!("{publish} {consume} {consumers}");
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
