//! Misuse from several threads through the `&self` API: two threads publishing at once, two
//! threads consuming with the same index. The buffer must stay consistent: each successful
//! publish is delivered exactly once to each consumer index, in order. Also threads that learn
//! of another thread's index call only through an unsynchronised observation and then detach,
//! settle or take its seat (under Miri's weak memory, with several seeds: `ci/miri.sh`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use multicast_buffer::{DagError, MulticastBuffer, TryConsumeError};
use multicast_buffer_tests::{scaled, Patience};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn two_threads_publishing_deliver_each_success_exactly_once() {
    let per_thread = scaled(20_000, 100) as u64;
    let consumers = 2;
    let buf = MulticastBuffer::new(8, consumers);
    let producers_done = AtomicBool::new(false);
    let contended = std::sync::atomic::AtomicU64::new(0);
    let received: Vec<Vec<u64>> = thread::scope(|s| {
        let readers: Vec<_> = (0..consumers)
            .map(|idx| {
                let (buf, done) = (&buf, &producers_done);
                s.spawn(move || {
                    let mut got = Vec::new();
                    let mut patience = Patience::new(LIMIT);
                    loop {
                        // Read `done` before trying, so nothing published before it is missed.
                        let finished = done.load(Ordering::SeqCst);
                        match buf.consume(idx) {
                            Some(v) => {
                                got.push(v);
                                patience.reset();
                            }
                            None if finished => break got,
                            None => patience.wait("a value"),
                        }
                    }
                })
            })
            .collect();
        let writers: Vec<_> = (0..2u64)
            .map(|producer| {
                let (buf, contended) = (&buf, &contended);
                s.spawn(move || {
                    let mut sent = Vec::new();
                    let mut patience = Patience::new(LIMIT);
                    for i in 0..per_thread {
                        // Tag each value with its producer.
                        let value = producer << 32 | i;
                        match buf.publish(value) {
                            Ok(()) => sent.push(value),
                            Err(DagError::ConcurrentPublish) => {
                                contended.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(_) => patience.wait("a free slot"),
                        }
                    }
                    sent
                })
            })
            .collect();
        let sent: Vec<Vec<u64>> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        producers_done.store(true, Ordering::SeqCst);
        let received: Vec<Vec<u64>> = readers.into_iter().map(|r| r.join().unwrap()).collect();
        let total: usize = sent.iter().map(Vec::len).sum();
        for got in &received {
            assert_eq!(got.len(), total, "each success delivered exactly once");
            // Per producer, values arrive in the order that producer published them.
            for (producer, sent) in sent.iter().enumerate() {
                let mine: Vec<u64> =
                    got.iter().copied().filter(|v| v >> 32 == producer as u64).collect();
                assert_eq!(&mine, sent);
            }
        }
        received
    });
    assert_eq!(received[0], received[1], "both consumers saw the same sequence");
    assert_eq!(buf.write_position(), received[0].len() as u64);
}

#[test]
fn two_threads_consuming_with_one_index_split_the_values_without_duplicates() {
    let messages = scaled(50_000, 200) as u64;
    let buf = MulticastBuffer::new(16, 2);
    let shared_index_got = Mutex::new(Vec::new());
    let busy = std::sync::atomic::AtomicU64::new(0);
    thread::scope(|s| {
        // Two threads both consume as index 0.
        for _ in 0..2 {
            let (buf, got, busy) = (&buf, &shared_index_got, &busy);
            s.spawn(move || {
                let mut mine = Vec::new();
                let mut patience = Patience::new(LIMIT);
                while buf.read_position(0) < messages {
                    match buf.try_consume(0) {
                        Ok(v) => {
                            mine.push(v);
                            patience.reset();
                        }
                        Err(TryConsumeError::Busy) => {
                            busy.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(TryConsumeError::Empty) => patience.wait("a value"),
                        Err(err) => panic!("unexpected {err}"),
                    }
                }
                // Each thread's share is in order.
                assert!(mine.windows(2).all(|w| w[0] < w[1]));
                got.lock().unwrap().extend(mine);
            });
        }
        // Index 1 is used properly, by one thread.
        let buf1 = &buf;
        s.spawn(move || {
            let mut patience = Patience::new(LIMIT);
            for expected in 0..messages {
                loop {
                    if let Some(v) = buf1.consume(1) {
                        assert_eq!(v, expected);
                        break;
                    }
                    patience.wait("a value");
                }
            }
        });
        let mut patience = Patience::new(LIMIT);
        for i in 0..messages {
            let mut value = i;
            while let Err(err) = buf.try_publish(value) {
                value = err.into_inner();
                patience.wait("a free slot");
            }
        }
    });
    let mut got = shared_index_got.into_inner().unwrap();
    got.sort_unstable();
    assert_eq!(got, (0..messages).collect::<Vec<_>>(), "every value exactly once to index 0");
    assert_eq!(buf.read_position(0), messages);
    assert_eq!(buf.state().held, 0, "every slot released");
}

/// The claimer of the tests below: publishes one value into a one-seat `buf` and consumes it
/// with index 0 (its claim moves the seat's position to 1).
fn publish_and_claim(buf: &multicast_buffer_core::HeapBuffer<String>) {
    buf.try_publish("seven".to_string()).unwrap();
    assert_eq!(buf.try_consume(0).as_deref(), Ok("seven"));
}

/// Waits until index 0's position is 1, seen only through a Relaxed observation
/// (`read_position`): no synchronisation with the claimer.
fn see_the_claim(buf: &multicast_buffer_core::HeapBuffer<String>) {
    while buf.read_position(0) < 1 {
        thread::yield_now();
    }
}

/// Runs the claimer on one thread and `then` on another once it has seen the claim.
fn after_another_threads_claim(
    buf: &multicast_buffer_core::HeapBuffer<String>,
    then: impl FnOnce() + Send,
) {
    thread::scope(|s| {
        s.spawn(|| publish_and_claim(buf));
        s.spawn(|| {
            see_the_claim(buf);
            then();
        });
    });
}

/// A thread that learns a seat's position from another thread's index-API claim, with no
/// synchronisation of its own, then takes the seat for a `Subscriber`: the claim publishes the
/// write word its claimer saw, so the new holder never sees a write word behind its position
/// (a debug assertion in its look, and `Empty` here).
#[test]
fn a_subscriber_taken_after_another_threads_index_claim_reads_on_from_there() {
    for _ in 0..scaled(200, 8) {
        let buf = multicast_buffer_core::HeapBuffer::new(4, 1);
        after_another_threads_claim(&buf, || {
            let mut subscriber = buf.subscriber(0).expect("the seat is not held");
            assert_eq!(subscriber.try_recv(), Err(TryConsumeError::Empty));
            assert_eq!(subscriber.lag(), 0);
        });
    }
}

/// A detach from a thread that saw another thread's index-API claim only through a Relaxed
/// observation, then an index call on the detaching thread that settles the seat: the settle
/// must not start from the claimed frontier with an older write word (it gave back unpublished
/// positions: undefined behaviour, found by an adversarial review under Miri).
#[test]
fn a_detach_settled_after_another_threads_index_claim_gives_back_nothing_unpublished() {
    for _ in 0..scaled(200, 8) {
        let buf = multicast_buffer_core::HeapBuffer::new(4, 1);
        after_another_threads_claim(&buf, || {
            assert!(buf.detach(0));
            assert_eq!(buf.try_consume(0), Err(TryConsumeError::Detached { missed: 0 }));
        });
        assert_eq!(buf.state().held, 0);
    }
}

/// The same with the settle on a third thread, which learns of the detach only through a
/// Relaxed flag: the claim's Release reaches it through the release sequence (claim, stop, its
/// look). From the second review.
#[test]
fn a_third_thread_settles_a_detach_of_another_threads_claimed_seat() {
    for _ in 0..scaled(200, 6) {
        let buf = multicast_buffer_core::HeapBuffer::new(4, 1);
        let detached = AtomicBool::new(false);
        thread::scope(|s| {
            s.spawn(|| publish_and_claim(&buf));
            s.spawn(|| {
                see_the_claim(&buf);
                assert!(buf.detach(0));
                detached.store(true, Ordering::Relaxed);
            });
            s.spawn(|| {
                while !detached.load(Ordering::Relaxed) {
                    thread::yield_now();
                }
                loop {
                    match buf.try_consume(0) {
                        Err(TryConsumeError::Detached { missed }) => break assert_eq!(missed, 0),
                        Err(TryConsumeError::Empty) => thread::yield_now(),
                        other => panic!("{other:?}"),
                    }
                }
            });
        });
        assert_eq!(buf.state().held, 0);
    }
}

/// A thread that saw another thread's claim only through a Relaxed observation takes the seat
/// for a `Subscriber`, makes it evictable, detaches it and is told (a settle on its thread from
/// the claimed position). From the second review.
#[test]
fn an_evictable_subscriber_on_another_threads_claimed_seat_settles_its_detach() {
    for _ in 0..scaled(200, 6) {
        let buf = multicast_buffer_core::HeapBuffer::new(4, 1);
        thread::scope(|s| {
            s.spawn(|| {
                publish_and_claim(&buf);
                let _ = buf.try_publish("eight".to_string());
            });
            s.spawn(|| {
                see_the_claim(&buf);
                let mut subscriber = buf.subscriber(0).expect("the seat is not held");
                subscriber.set_evictable(true);
                assert!(buf.detach(0));
                assert!(matches!(subscriber.try_recv(), Err(TryConsumeError::Detached { .. })));
            });
        });
        // Its next value: the producer applies the settled stop (nobody is counted any more).
        let _ = buf.try_publish("nine".to_string());
        assert_eq!(buf.state().held, 0);
    }
}
