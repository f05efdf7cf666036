//! Drop accounting with a counting payload: each value is dropped exactly once, released as soon
//! as its last consumer has read it, and a panicking clone changes nothing.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use multicast_buffer::MulticastBuffer;
use multicast_buffer_tests::{scaled, Counted, Counters, Patience};

#[test]
fn values_are_released_when_the_last_consumer_reads_them() {
    let counters = Counters::new();
    let buf = MulticastBuffer::new(8, 2);
    buf.publish(counters.make(1)).unwrap();
    let first = buf.consume(0).unwrap();
    assert_eq!(counters.alive(), 2, "the buffer still holds the value for consumer 1");
    let second = buf.consume(1).unwrap();
    assert_eq!(counters.clones(), 1, "the last reader got the value by move");
    drop((first, second));
    assert_eq!(counters.alive(), 0, "nothing left in the buffer");
    assert_eq!(counters.drops(), 2);
}

#[test]
fn refused_publish_drops_the_value_once_and_try_publish_returns_it() {
    let counters = Counters::new();
    let buf = MulticastBuffer::new(1, 1);
    buf.publish(counters.make(1)).unwrap();
    assert!(buf.publish(counters.make(2)).is_err());
    assert_eq!(counters.drops(), 1, "publish drops the refused value, as the seed does");
    let back = buf.try_publish(counters.make(3)).unwrap_err().into_inner();
    assert_eq!(back.value, 3);
    drop(back);
    assert_eq!(counters.alive(), 1);
    drop(buf);
    assert_eq!(counters.alive(), 0);
}

#[test]
fn dropping_the_buffer_drops_what_it_holds_exactly_once() {
    for consumers in 0..4 {
        let counters = Counters::new();
        let buf = MulticastBuffer::new(8, consumers);
        for i in 0..8 {
            buf.publish(counters.make(i)).unwrap();
        }
        // Consumers read different amounts: some slots fully released, some partly.
        for idx in 0..consumers {
            for _ in 0..(idx * 3) {
                drop(buf.consume(idx));
            }
        }
        drop(buf);
        assert_eq!(counters.alive(), 0, "{consumers} consumers");
    }
}

#[test]
fn cross_thread_drop_accounting() {
    let counters = Counters::new();
    let (consumers, capacity) = (3, 8);
    let stall_at = scaled(20_000, 50) as u64;
    // Consumer 2 stops after `stall_at` values; the ring then takes `capacity` more.
    let messages = stall_at + capacity as u64;
    let buf: MulticastBuffer<Counted> = MulticastBuffer::new(capacity, consumers);
    thread::scope(|s| {
        for idx in 0..consumers {
            let buf = &buf;
            let stop = if idx == 2 { stall_at } else { messages };
            s.spawn(move || {
                let mut patience = Patience::new(Duration::from_secs(60));
                let mut expected = 0;
                while expected < stop {
                    match buf.consume(idx) {
                        Some(v) => {
                            assert_eq!(v.value, expected);
                            expected += 1;
                            patience.reset();
                        }
                        None => patience.wait("a value"),
                    }
                }
            });
        }
        let mut patience = Patience::new(Duration::from_secs(60));
        for i in 0..messages {
            let mut value = counters.make(i);
            while let Err(err) = buf.try_publish(value) {
                value = err.into_inner();
                patience.wait("a free slot");
            }
        }
    });
    assert_eq!(buf.try_publish(counters.make(messages)).map_err(|e| e.is_full()), Err(true));
    assert_eq!(counters.alive(), capacity, "only what the stalled consumer has not read is held");
    drop(buf);
    assert_eq!(counters.alive(), 0);
    // Two clones per value, three when a last reader found out it was last only after cloning.
    let clones = counters.clones() as u64;
    assert!((2 * messages..=3 * stall_at + 2 * capacity as u64).contains(&clones), "{clones}");
}

#[test]
fn a_panicking_clone_changes_nothing() {
    static FAIL: AtomicBool = AtomicBool::new(false);
    #[derive(Debug, PartialEq)]
    struct Fragile(u64);
    impl Clone for Fragile {
        fn clone(&self) -> Self {
            assert!(!FAIL.load(Ordering::SeqCst), "clone failed on purpose");
            Fragile(self.0)
        }
    }
    let buf = MulticastBuffer::new(4, 2);
    buf.publish(Fragile(1)).unwrap();
    buf.publish(Fragile(2)).unwrap();
    FAIL.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        assert!(catch_unwind(AssertUnwindSafe(|| buf.consume(0))).is_err());
        assert_eq!(buf.read_position(0), 0, "the position did not advance");
    }
    FAIL.store(false, Ordering::SeqCst);
    assert_eq!(buf.consume(0), Some(Fragile(1)), "the same value comes next");
    assert_eq!(buf.consume(1), Some(Fragile(1)));
    assert_eq!(buf.consume(1), Some(Fragile(2)));
    assert_eq!(buf.consume(0), Some(Fragile(2)));
    assert_eq!(buf.consume(0), None);
}

#[test]
fn a_panicking_clone_leaks_nothing() {
    let counters = Counters::new();
    static FAIL_ONCE: AtomicBool = AtomicBool::new(true);
    #[derive(Debug)]
    struct Once(Counted);
    impl Clone for Once {
        fn clone(&self) -> Self {
            assert!(!FAIL_ONCE.swap(false, Ordering::SeqCst), "first clone fails");
            Once(self.0.clone())
        }
    }
    let buf = MulticastBuffer::new(2, 2);
    buf.publish(Once(counters.make(5))).unwrap();
    assert!(catch_unwind(AssertUnwindSafe(|| buf.consume(0))).is_err());
    let a = buf.consume(0).unwrap();
    let b = buf.consume(1).unwrap();
    assert_eq!((a.0.value, b.0.value), (5, 5));
    drop((a, b));
    drop(buf);
    assert_eq!(counters.alive(), 0);
}
