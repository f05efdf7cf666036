//! Subscribers that come and go, are detached and rejoin, on their own threads, while a producer
//! publishes through a `Publisher` and then closes the buffer. A steady subscriber must get
//! every value in order; every other one gets consecutive runs; each value is dropped exactly
//! once. Every wait has a deadline, so a bug fails instead of hanging.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use multicast_buffer_core::{HeapBuffer, Publisher, Subscriber, TryConsumeError};
use multicast_buffer_tests::{scaled, Counted, Counters, Patience};

const LIMIT: Duration = Duration::from_secs(60);

/// Reads until `Closed`, checking that values come in consecutive runs (a gap only right after
/// a `Detached`, which is answered by a rejoin). Returns how many values it read.
fn read_runs(mut subscriber: Subscriber<Arc<HeapBuffer<Counted>>>, gaps_allowed: bool) -> u64 {
    let mut patience = Patience::new(LIMIT);
    let mut last: Option<u64> = None;
    let mut read = 0;
    let mut may_skip = true; // it joined at some position
    loop {
        match subscriber.try_recv() {
            Ok(v) => {
                if let Some(last) = last.filter(|_| !may_skip) {
                    assert_eq!(v.value, last + 1, "a gap without a Detached");
                }
                assert!(last.is_none_or(|last| v.value > last), "out of order");
                last = Some(v.value);
                may_skip = false;
                read += 1;
                patience.reset();
            }
            Err(TryConsumeError::Empty) => patience.wait("a value"),
            Err(TryConsumeError::Closed) => return read,
            Err(TryConsumeError::Detached { missed }) => {
                assert!(gaps_allowed, "the steady subscriber was detached ({missed} missed)");
                assert!(subscriber.rejoin());
                may_skip = true;
            }
            Err(err) => panic!("unexpected {err}"),
        }
    }
}

#[test]
fn subscribers_join_leave_and_are_detached_while_values_flow() {
    let messages = scaled(50_000, 300) as u64;
    let counters = Counters::new();
    let buf = Arc::new(HeapBuffer::with_seats(16, 3));
    let steady = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
    let detachable = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
    let done = AtomicBool::new(false);
    /// Stops the helper threads also when an assertion fails, so the scope ends.
    struct Done<'a>(&'a AtomicBool);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    thread::scope(|s| {
        let done_guard = Done(&done);
        let steady = s.spawn(move || read_runs(steady, false));
        let detachable = s.spawn(move || read_runs(detachable, true));
        // Detaches the second subscriber now and then.
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                buf.detach(1);
                thread::yield_now();
            }
        });
        // Subscribes, reads a few, leaves; again and again, on the third seat.
        s.spawn(|| {
            let mut patience = Patience::new(LIMIT);
            while !done.load(Ordering::Relaxed) {
                let Ok(mut churner) = Subscriber::subscribe(Arc::clone(&buf)) else {
                    patience.wait("a free seat");
                    continue;
                };
                patience.reset();
                let mut last = None;
                for _ in 0..5 {
                    match churner.try_recv() {
                        Ok(v) => {
                            assert!(last.is_none_or(|l| v.value == l + 1), "gap while subscribed");
                            last = Some(v.value);
                        }
                        // Once the detachable subscriber has read everything and gone, the
                        // churner may take its seat 1, which is detached now and then.
                        Err(TryConsumeError::Detached { .. }) => {
                            assert_eq!(churner.index(), 1, "nobody detaches seat 2");
                            break;
                        }
                        Err(_) => thread::yield_now(),
                    }
                }
            }
        });
        let mut publisher = Publisher::new(Arc::clone(&buf)).unwrap();
        let mut patience = Patience::new(LIMIT);
        for i in 0..messages {
            let mut value = counters.make(i);
            while let Err(err) = publisher.try_publish(value) {
                assert!(err.is_full(), "{err}");
                value = err.into_inner();
                patience.wait("a free slot");
            }
            patience.reset();
        }
        drop(publisher); // closes: the readers drain and stop
        let (steady, detachable) = (steady.join(), detachable.join());
        drop(done_guard);
        assert_eq!(steady.unwrap(), messages, "the steady subscriber got every value");
        assert!(detachable.unwrap() <= messages);
    });
    drop(Arc::try_unwrap(buf).expect("every handle dropped"));
    assert_eq!(counters.alive(), 0, "each value dropped exactly once");
}
