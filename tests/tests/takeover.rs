//! Subscribers taking over seats that others gave up (`subscribe` cancelling a stop nobody
//! applied yet) while the producer publishes and another thread detaches: a native stress test
//! from the adversarial review of that change (its loom models are in the core's
//! `loom_takeover`).

use multicast_buffer_core::{HeapBuffer, Publisher, Subscriber, TryConsumeError};
use multicast_buffer_tests::scaled;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

static ALIVE: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug)]
struct Live(u64);
impl Live {
    fn new(v: u64) -> Self {
        ALIVE.fetch_add(1, SeqCst);
        Live(v)
    }
}
impl Clone for Live {
    fn clone(&self) -> Self {
        Live::new(self.0)
    }
}
impl Drop for Live {
    fn drop(&mut self) {
        ALIVE.fetch_sub(1, SeqCst);
    }
}

/// Native stress of `subscribe` taking given-up seats at once (cancelling the stop) while
/// the producer publishes and another thread detaches seats: every subscriber that was not
/// detached receives consecutive values (lossless, in order, no duplicates); at the end
/// every value is dropped exactly once. `TAKEOVER_ROUNDS` sets the number of churns per
/// thread (default 20,000; under Miri 20).
#[test]
fn subscribe_cancel_churn_with_detaches() {
    let rounds: usize = std::env::var("TAKEOVER_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(scaled(20_000, 20));
    let buf = Arc::new(HeapBuffer::<Live>::with_seats(4, 3));
    let stop = Arc::new(AtomicBool::new(false));
    let mut publisher = Publisher::new(Arc::clone(&buf)).unwrap();
    let producer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut next = 0u64;
            while !stop.load(SeqCst) {
                match publisher.try_publish(Live::new(next)) {
                    Ok(()) => next += 1,
                    Err(_) => std::thread::yield_now(),
                }
            }
            drop(publisher);
        })
    };
    let detacher = {
        let (buf, stop) = (Arc::clone(&buf), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut i = 0usize;
            while !stop.load(SeqCst) {
                buf.detach(i % 3);
                i += 1;
                for _ in 0..50 {
                    std::thread::yield_now();
                }
            }
        })
    };
    let churners: Vec<_> = (0..2)
        .map(|_| {
            let buf = Arc::clone(&buf);
            std::thread::spawn(move || {
                for round in 0..rounds {
                    let Ok(mut sub) = Subscriber::subscribe(Arc::clone(&buf)) else {
                        std::thread::yield_now();
                        continue;
                    };
                    let mut last: Option<u64> = None;
                    for _ in 0..(round % 7 + 1) * 3 {
                        match sub.try_recv() {
                            Ok(v) => {
                                if let Some(l) = last {
                                    assert_eq!(v.0, l + 1, "lost or duplicated (round {round})");
                                }
                                last = Some(v.0);
                            }
                            Err(TryConsumeError::Detached { .. }) => {
                                last = None;
                                if round % 2 == 0 {
                                    sub.rejoin();
                                } else {
                                    break;
                                }
                            }
                            Err(_) => std::thread::yield_now(),
                        }
                    }
                    drop(sub);
                }
            })
        })
        .collect();
    for c in churners {
        c.join().unwrap();
    }
    stop.store(true, SeqCst);
    detacher.join().unwrap();
    producer.join().unwrap();
    drop(buf);
    assert_eq!(ALIVE.load(SeqCst), 0, "values leaked or dropped twice");
}

/// A seat whose subscriber left is reported vacant at once (it holds nothing, and `subscribe`
/// takes it), before the producer's next value applies the leave.
#[test]
fn a_left_seat_is_reported_vacant_and_taken_at_once() {
    use multicast_buffer_core::SeatStatus;
    let buf = Arc::new(HeapBuffer::<u64>::with_seats(4, 1));
    let mut publisher = Publisher::new(Arc::clone(&buf)).unwrap();
    let mut first = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
    publisher.publish_iter(0..3);
    assert_eq!(first.try_recv(), Ok(0));
    assert_eq!(buf.seat_state(0).status, SeatStatus::Subscribed);
    drop(first);
    assert_eq!(buf.seat_state(0).status, SeatStatus::Vacant);
    let mut second = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
    assert_eq!(buf.seat_state(0).status, SeatStatus::Subscribed);
    publisher.try_publish(3).unwrap();
    assert_eq!(second.try_recv(), Ok(3));
    assert_eq!(second.try_recv(), Err(TryConsumeError::Empty));
}
