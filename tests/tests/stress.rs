//! One producer, 1 to 4 consumers on their own threads; each consumer checks every value, in
//! order. Every wait has a deadline, so a bug fails instead of hanging.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use multicast_buffer::MulticastBuffer;
use multicast_buffer_tests::{scaled, Patience};

const LIMIT: Duration = Duration::from_secs(60);

fn run(consumers: usize, capacity: usize, messages: u64) {
    let buf = MulticastBuffer::new(capacity, consumers);
    thread::scope(|s| {
        for idx in 0..consumers {
            let buf = &buf;
            s.spawn(move || {
                let mut patience = Patience::new(LIMIT);
                let mut expected = 0u64;
                while expected < messages {
                    match buf.consume(idx) {
                        Some(v) => {
                            assert_eq!(v, expected, "consumer {idx} out of order");
                            expected += 1;
                            patience.reset();
                        }
                        None => patience.wait("a value"),
                    }
                }
                assert_eq!(buf.consume(idx), None, "consumer {idx} got a value never published");
            });
        }
        let mut patience = Patience::new(LIMIT);
        for i in 0..messages {
            let mut value = i;
            while let Err(err) = buf.try_publish(value) {
                assert!(err.is_full());
                value = err.into_inner();
                patience.wait("a free slot");
            }
            patience.reset();
        }
    });
    assert_eq!(buf.write_position(), messages);
    for idx in 0..consumers {
        assert_eq!(buf.read_position(idx), messages);
    }
}

#[test]
fn one_consumer() {
    run(1, 64, scaled(200_000, 200) as u64);
}

#[test]
fn two_consumers() {
    run(2, 64, scaled(200_000, 200) as u64);
}

#[test]
fn three_consumers_small_ring() {
    run(3, 2, scaled(50_000, 100) as u64);
}

#[test]
fn four_consumers() {
    run(4, 256, scaled(200_000, 200) as u64);
}

#[test]
fn arc_payloads_are_delivered_intact_and_released() {
    let consumers = 3;
    let messages = scaled(50_000, 100);
    let payloads: Vec<Arc<[u64; 8]>> = (0..messages as u64).map(|i| Arc::new([i; 8])).collect();
    let buf: MulticastBuffer<Arc<[u64; 8]>> = MulticastBuffer::new(16, consumers);
    thread::scope(|s| {
        for idx in 0..consumers {
            let buf = &buf;
            s.spawn(move || {
                let mut patience = Patience::new(LIMIT);
                let mut expected = 0u64;
                while expected < messages as u64 {
                    match buf.consume(idx) {
                        Some(v) => {
                            assert_eq!(*v, [expected; 8]);
                            expected += 1;
                            patience.reset();
                        }
                        None => patience.wait("a value"),
                    }
                }
            });
        }
        let mut patience = Patience::new(LIMIT);
        for p in &payloads {
            let mut value = Arc::clone(p);
            while let Err(err) = buf.try_publish(value) {
                value = err.into_inner();
                patience.wait("a free slot");
            }
        }
    });
    // Every consumer has read everything, so the buffer holds no clone of any payload.
    assert!(payloads.iter().all(|p| Arc::strong_count(p) == 1));
}
