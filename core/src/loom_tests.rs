//! Loom models of the protocol: every interleaving of the threads below, up to the preemption
//! bound in `LOOM_MAX_PREEMPTIONS` (CI: 2; `ci/loom.sh` takes 3 too). Run with
//! `RUSTFLAGS="--cfg multicast_loom" cargo test -p multicast-buffer-core --features alloc --lib --release loom`.
//!
//! Loom cannot run spin loops to completion, so every retry is bounded: a model checks that what
//! the threads did get is right (order, nothing lost or duplicated), then the main thread drains
//! the rest and checks the whole.

extern crate std;

use loom::sync::Arc;
use loom::thread;
use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering::SeqCst};
use std::vec::Vec;

use crate::{HeapBuffer, TryConsumeError, TryPublishError};

/// How often a thread in a model retries before giving up.
const TRIES: usize = 2;

/// Counts live instances, to check that each value is dropped exactly once.
#[derive(Debug)]
struct Tracked {
    value: usize,
    alive: std::sync::Arc<StdAtomicUsize>,
}

impl Tracked {
    fn new(value: usize, alive: &std::sync::Arc<StdAtomicUsize>) -> Self {
        alive.fetch_add(1, SeqCst);
        Self { value, alive: alive.clone() }
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        Self::new(self.value, &self.alive)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.alive.fetch_sub(1, SeqCst);
    }
}

/// Publishes `values` in order, each retried up to `TRIES` times; returns how many went in.
fn publish_some(
    buf: &HeapBuffer<Tracked>,
    values: usize,
    alive: &std::sync::Arc<StdAtomicUsize>,
) -> usize {
    publish_some_from(buf, 0, values, alive)
}

/// [`publish_some`] of the values `first..first + values`.
fn publish_some_from(
    buf: &HeapBuffer<Tracked>,
    first: usize,
    values: usize,
    alive: &std::sync::Arc<StdAtomicUsize>,
) -> usize {
    let mut sent = 0;
    'values: for v in first..first + values {
        let mut value = Tracked::new(v, alive);
        for _ in 0..TRIES {
            match buf.try_publish(value) {
                Ok(()) => {
                    sent += 1;
                    continue 'values;
                }
                Err(err) => {
                    value = err.into_inner();
                    thread::yield_now();
                }
            }
        }
        break;
    }
    sent
}

/// Makes `calls` attempts to consume for `index`, without waiting in between.
fn consume_some(buf: &HeapBuffer<Tracked>, index: usize, calls: usize) -> Vec<usize> {
    (0..calls).filter_map(|_| buf.try_consume(index).ok().map(|v| v.value)).collect()
}

/// Drains what is left for `index` (single-threaded, after the model's threads joined).
fn drain(buf: &HeapBuffer<Tracked>, index: usize) -> Vec<usize> {
    core::iter::from_fn(|| buf.consume(index).map(|v| v.value)).collect()
}

/// One producer, two consumers, `capacity` 2, three publishes: slot 0 is recycled for the third
/// value while the other consumer may still be reading it.
fn producer_and_two_consumers(start: usize) {
    loom::model(move || {
        let alive = std::sync::Arc::new(StdAtomicUsize::new(0));
        let buf = Arc::new(HeapBuffer::new(2, 2).start_at(start));
        let readers: Vec<_> = (0..2)
            .map(|index| {
                let buf = buf.clone();
                thread::spawn(move || consume_some(&buf, index, 2))
            })
            .collect();
        let sent = publish_some(&buf, 3, &alive);
        for (index, reader) in readers.into_iter().enumerate() {
            let mut got = reader.join().unwrap();
            got.extend(drain(&buf, index));
            assert_eq!(got, (0..sent).collect::<Vec<_>>(), "consumer {index}");
        }
        assert_eq!(alive.load(SeqCst), 0, "every value released once read by both");
    });
}

#[test]
fn loom_slot_recycled_while_another_consumer_reads() {
    producer_and_two_consumers(0);
}

#[test]
fn loom_positions_near_wrap_around() {
    // The position counter wraps after the first publish.
    producer_and_two_consumers(usize::MAX / crate::protocol::ONE);
}

#[test]
fn loom_last_reader_moves_out_while_the_producer_waits_for_the_slot() {
    loom::model(|| {
        let alive = std::sync::Arc::new(StdAtomicUsize::new(0));
        let buf = Arc::new(HeapBuffer::new(1, 2));
        buf.try_publish(Tracked::new(0, &alive)).unwrap();
        let readers: Vec<_> = (0..2)
            .map(|index| {
                let buf = buf.clone();
                thread::spawn(move || {
                    let v = buf.consume(index).expect("value 0 was published before");
                    assert_eq!(v.value, 0);
                })
            })
            .collect();
        // The producer wants slot 0 again: it must not get it until both have read value 0.
        let sent = publish_some(&buf, 1, &alive);
        for reader in readers {
            reader.join().unwrap();
        }
        if sent == 1 {
            assert_eq!(buf.state().held, 1);
        }
        assert_eq!(alive.load(SeqCst), sent, "value 0 released; the new one (if any) held");
    });
}

#[test]
fn loom_two_threads_publishing() {
    loom::model(|| {
        let alive = std::sync::Arc::new(StdAtomicUsize::new(0));
        let buf = Arc::new(HeapBuffer::new(2, 1));
        let writers: Vec<_> = (0..2)
            .map(|v| {
                let (buf, alive) = (buf.clone(), alive.clone());
                thread::spawn(move || match buf.try_publish(Tracked::new(v, &alive)) {
                    Ok(()) => Some(v),
                    Err(TryPublishError::Busy(_)) => None,
                    Err(err) => panic!("unexpected {err}"),
                })
            })
            .collect();
        let reader = {
            let buf = buf.clone();
            thread::spawn(move || consume_some(&buf, 0, 2))
        };
        let mut sent: Vec<usize> = writers.into_iter().filter_map(|w| w.join().unwrap()).collect();
        let mut got = reader.join().unwrap();
        got.extend(drain(&buf, 0));
        assert!(!sent.is_empty(), "one of two publishers always gets through");
        // Both may succeed one after the other, in either order.
        sent.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, sent, "each successful publish delivered exactly once");
        assert_eq!(alive.load(SeqCst), 0);
    });
}

#[test]
fn loom_two_threads_consuming_with_one_index() {
    loom::model(|| {
        let alive = std::sync::Arc::new(StdAtomicUsize::new(0));
        let buf = Arc::new(HeapBuffer::new(2, 2));
        buf.try_publish(Tracked::new(0, &alive)).unwrap();
        buf.try_publish(Tracked::new(1, &alive)).unwrap();
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let buf = buf.clone();
                thread::spawn(move || match buf.try_consume(0) {
                    Ok(v) => Some(v.value),
                    Err(TryConsumeError::Busy) => None,
                    Err(err) => panic!("unexpected {err}"),
                })
            })
            .collect();
        let mut got: Vec<usize> = readers.into_iter().filter_map(|r| r.join().unwrap()).collect();
        // Each thread's value is the next one in order; together they are a prefix of 0, 1.
        got.sort_unstable();
        got.extend(drain(&buf, 0));
        assert_eq!(got, [0, 1]);
        assert_eq!(drain(&buf, 1), [0, 1]);
        assert_eq!(alive.load(SeqCst), 0);
    });
}

#[test]
fn loom_drop_with_partly_consumed_slots() {
    loom::model(|| {
        let alive = std::sync::Arc::new(StdAtomicUsize::new(0));
        let buf = Arc::new(HeapBuffer::new(4, 2));
        let reader = {
            let buf = buf.clone();
            thread::spawn(move || consume_some(&buf, 0, 2))
        };
        let sent = publish_some(&buf, 3, &alive);
        let got = reader.join().unwrap();
        assert_eq!(got, (0..got.len()).collect::<Vec<_>>());
        assert_eq!(sent, 3, "the ring has room for all three");
        // Consumer 1 read nothing; consumer 0 read part: the buffer holds all three.
        assert_eq!(alive.load(SeqCst), 3);
        drop(buf);
        assert_eq!(alive.load(SeqCst), 0, "dropped each held value exactly once");
    });
}

#[test]
fn loom_state_snapshot_while_consumers_move() {
    loom::model(|| {
        let alive = std::sync::Arc::new(StdAtomicUsize::new(0));
        let buf = Arc::new(HeapBuffer::new(2, 1));
        // The observer runs on its own thread (loom explores a loading main thread less).
        let observer = {
            let buf = buf.clone();
            thread::spawn(move || {
                let state = buf.state();
                assert!(state.held <= state.capacity + 1, "{state:?}");
            })
        };
        buf.try_publish(Tracked::new(0, &alive)).unwrap();
        assert_eq!(buf.consume(0).map(|v| v.value), Some(0));
        observer.join().unwrap();
    });
}

#[test]
fn loom_typed_handles_with_in_place_reads() {
    // `std::sync::Arc`: the handles take `alloc::sync::Arc` (a `BufferRef`); the main thread keeps
    // a reference until every thread has joined, so the buffer is dropped there.
    use std::sync::Arc;

    use crate::{Publisher, Subscriber};

    loom::model(|| {
        let alive = Arc::new(StdAtomicUsize::new(0));
        let buf = Arc::new(HeapBuffer::new(1, 2));
        let producer = {
            let (buf, alive) = (Arc::clone(&buf), Arc::clone(&alive));
            thread::spawn(move || {
                let mut publisher = Publisher::new(buf).unwrap();
                (0..2)
                    .take_while(|&v| publisher.try_publish(Tracked::new(v, &alive)).is_ok())
                    .count()
            })
        };
        let in_place = {
            let buf = Arc::clone(&buf);
            thread::spawn(move || {
                let mut subscriber = Subscriber::new(buf, 0).unwrap();
                let got: Vec<_> =
                    (0..2).filter_map(|_| subscriber.try_read().ok().map(|g| g.value)).collect();
                (got, subscriber)
            })
        };
        let by_value = {
            let buf = Arc::clone(&buf);
            thread::spawn(move || {
                let mut subscriber = Subscriber::new(buf, 1).unwrap();
                let got: Vec<_> =
                    (0..2).filter_map(|_| subscriber.try_recv().ok().map(|v| v.value)).collect();
                (got, subscriber)
            })
        };
        let sent = producer.join().unwrap();
        for (index, reader) in [in_place, by_value].into_iter().enumerate() {
            let (mut got, mut subscriber) = reader.join().unwrap();
            got.extend(core::iter::from_fn(|| subscriber.try_recv().ok().map(|v| v.value)));
            assert_eq!(got, (0..sent).collect::<Vec<_>>(), "consumer {index}");
        }
        assert_eq!(alive.load(SeqCst), 0, "every value released once read by both");
    });
}

/// Publishes up to `values` values through a `Publisher`, each retried up to `TRIES` times
/// (backpressure, or nobody subscribed yet); returns the values that went in.
fn publish_with<B: crate::BufferRef<Item = Tracked>>(
    publisher: &mut crate::Publisher<B>,
    values: usize,
    alive: &std::sync::Arc<StdAtomicUsize>,
) -> Vec<usize> {
    let mut sent = Vec::new();
    for v in 0..values {
        let mut value = Tracked::new(v, alive);
        for _ in 0..TRIES {
            match publisher.try_publish(value) {
                Ok(()) => {
                    sent.push(v);
                    break;
                }
                Err(err) => {
                    value = err.into_inner();
                    thread::yield_now();
                }
            }
        }
    }
    sent
}

#[test]
fn loom_detach_while_an_evictable_subscriber_reads() {
    // Seat 1 is detached while it may be claiming and reading; the producer gives back the units
    // it did not claim (or the subscriber settles them itself, whichever comes first) and reuses
    // slot 0 only once the value read there is released. A unit given back twice would drop a
    // value twice; a slot overwritten while read is a data race.
    use std::sync::Arc;

    use crate::Subscriber;

    loom::model(|| {
        let alive = Arc::new(StdAtomicUsize::new(0));
        let buf = Arc::new(HeapBuffer::new(2, 2));
        buf.try_publish(Tracked::new(0, &alive)).unwrap();
        buf.try_publish(Tracked::new(1, &alive)).unwrap();
        assert_eq!(drain(&buf, 0), [0, 1]);
        // Taken before the detach.
        let mut subscriber = Subscriber::new(Arc::clone(&buf), 1).unwrap();
        subscriber.set_evictable(true);
        let reader = {
            thread::spawn(move || {
                let got: Vec<_> =
                    (0..2).filter_map(|_| subscriber.try_recv().ok().map(|v| v.value)).collect();
                (got, subscriber)
            })
        };
        let producer = {
            let (buf, alive) = (Arc::clone(&buf), Arc::clone(&alive));
            thread::spawn(move || {
                assert!(buf.detach(1));
                publish_some(&buf, 1, &alive)
            })
        };
        let sent = producer.join().unwrap();
        let (got, mut subscriber) = reader.join().unwrap();
        assert_eq!(got, (0..got.len()).collect::<Vec<_>>(), "a prefix, in order");
        match subscriber.try_recv() {
            Err(TryConsumeError::Detached { .. }) => {}
            other => panic!("after a detach: {:?}", other.map(|v| v.value)),
        }
        if sent == 1 {
            assert_eq!(drain(&buf, 0).len(), 1, "seat 0 gets the value published after");
        }
        drop(subscriber);
        drop(buf);
        assert_eq!(alive.load(SeqCst), 0, "each value dropped exactly once");
    });
}

#[test]
fn loom_detach_of_a_tethered_subscriber_while_it_reads() {
    // A tethered subscriber claims nothing: the producer keeps counting it until it settles the
    // stop itself, at its next look, while the producer publishes more. It may receive what it
    // was counted for (in order), then is told; every value is dropped exactly once, and seat 0
    // gets everything.
    use std::sync::Arc;

    use crate::Subscriber;

    loom::model(|| {
        let alive = Arc::new(StdAtomicUsize::new(0));
        let buf: Arc<HeapBuffer<Tracked>> = Arc::new(HeapBuffer::new(2, 2));
        let mut subscriber = Subscriber::new(Arc::clone(&buf), 1).unwrap();
        let reader = thread::spawn(move || {
            let mut got = Vec::new();
            let mut told = false;
            for _ in 0..3 {
                match subscriber.try_recv() {
                    Ok(v) => got.push(v.value),
                    Err(TryConsumeError::Detached { .. }) => {
                        told = true;
                        break;
                    }
                    Err(_) => {}
                }
            }
            (got, told, subscriber)
        });
        let producer = {
            let (buf, alive) = (Arc::clone(&buf), Arc::clone(&alive));
            thread::spawn(move || {
                let first = publish_some(&buf, 1, &alive);
                assert!(buf.detach(1));
                // Values 1.. (`publish_some` numbers from 0: shifted below).
                first + publish_some_from(&buf, first, 2, &alive)
            })
        };
        let sent = producer.join().unwrap();
        let (got, told, mut subscriber) = reader.join().unwrap();
        assert_eq!(got, (0..got.len()).collect::<Vec<_>>(), "a prefix, in order");
        // Once it has read what it was counted for, it is told (once told, it reads nothing).
        let mut next = got.len();
        loop {
            match subscriber.try_recv() {
                Ok(v) => {
                    assert!(!told, "read {} after it was told", v.value);
                    assert_eq!(v.value, next, "in order");
                    next += 1;
                }
                Err(TryConsumeError::Detached { .. }) => break,
                Err(err) => panic!("a detached subscriber: {err}"),
            }
        }
        assert_eq!(drain(&buf, 0), (0..sent).collect::<Vec<_>>());
        drop(subscriber);
        drop(buf);
        assert_eq!(alive.load(SeqCst), 0, "each value dropped exactly once");
    });
}

#[test]
fn loom_two_batch_readers_share_a_count_word() {
    // Two consumers of a 2-slot buffer (one count word with two lanes) read in batches, one
    // `fetch_sub` per word, while the producer publishes into the lanes they free: the last
    // reader of each lane moves the value out (or turns last after cloning), and the producer
    // prepares a lane only once both readers gave it back.
    use std::sync::Arc;

    use crate::{Publisher, Subscriber};

    loom::model(|| {
        let alive = Arc::new(StdAtomicUsize::new(0));
        let buf = Arc::new(HeapBuffer::new(2, 2));
        let mut publisher = Publisher::new(Arc::clone(&buf)).unwrap();
        let mut values = (0..2).map(|v| Tracked::new(v, &alive));
        assert_eq!(publisher.publish_iter(&mut values), 2);
        let readers: Vec<_> = (0..2)
            .map(|index| {
                let mut subscriber = Subscriber::new(Arc::clone(&buf), index).unwrap();
                thread::spawn(move || {
                    let mut got = Vec::new();
                    for _ in 0..2 {
                        let _ = subscriber.recv_batch(usize::MAX, |v| got.push(v.value));
                    }
                    (got, subscriber)
                })
            })
            .collect();
        let third = (2..3).map(|v| Tracked::new(v, &alive));
        let sent = 2 + publisher.publish_iter(third);
        for (index, reader) in readers.into_iter().enumerate() {
            let (mut got, mut subscriber) = reader.join().unwrap();
            let _ = subscriber.recv_batch(usize::MAX, |v| got.push(v.value));
            assert_eq!(got, (0..sent).collect::<Vec<_>>(), "consumer {index}");
        }
        drop(publisher);
        assert_eq!(alive.load(SeqCst), 0, "every value released once read by both");
    });
}

#[test]
fn loom_subscribe_to_a_shared_buffer_while_lanes_are_prepared() {
    // A subscriber joins a two-seat buffer (shared counts) while the producer publishes into a
    // count word it prepared for one reader: the producer takes the prepared lanes back before
    // it counts the joiner, so each value has exactly its readers' units.
    use std::sync::Arc;

    use crate::{Publisher, Subscriber};

    loom::model(|| {
        let alive = Arc::new(StdAtomicUsize::new(0));
        let buf = Arc::new(HeapBuffer::with_seats(2, 2));
        let mut steady = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
        let producer = {
            let (buf, alive) = (Arc::clone(&buf), Arc::clone(&alive));
            thread::spawn(move || publish_with(&mut Publisher::new(buf).unwrap(), 2, &alive))
        };
        let joiner = {
            let buf = Arc::clone(&buf);
            thread::spawn(move || {
                let mut subscriber = Subscriber::subscribe(buf).unwrap();
                let got = subscriber.try_recv().ok().map(|v| v.value);
                (got, subscriber)
            })
        };
        let sent = producer.join().unwrap();
        let (got, mut joined) = joiner.join().unwrap();
        let mut all: Vec<_> = got.into_iter().collect();
        all.extend(core::iter::from_fn(|| joined.try_recv().ok().map(|v| v.value)));
        // The joiner gets a suffix of what was sent; the steady one everything.
        assert!(sent.ends_with(&all), "{all:?} of {sent:?}");
        let drained: Vec<_> =
            core::iter::from_fn(|| steady.try_recv().ok().map(|v| v.value)).collect();
        assert_eq!(drained, sent);
        drop((steady, joined));
        drop(buf);
        assert_eq!(alive.load(SeqCst), 0);
    });
}

#[test]
fn loom_subscriber_leaves_while_the_producer_publishes() {
    use std::sync::Arc;

    use crate::{Publisher, Subscriber};

    loom::model(|| {
        let alive = Arc::new(StdAtomicUsize::new(0));
        let buf = Arc::new(HeapBuffer::with_seats(2, 2));
        let mut stays = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
        let leaves = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
        let producer = {
            let (buf, alive) = (Arc::clone(&buf), Arc::clone(&alive));
            thread::spawn(move || publish_with(&mut Publisher::new(buf).unwrap(), 3, &alive))
        };
        let leaver = thread::spawn(move || {
            let mut leaves = leaves;
            let got = leaves.try_recv().ok().map(|v| v.value);
            drop(leaves);
            got
        });
        let sent = producer.join().unwrap();
        let got = leaver.join().unwrap();
        assert!(got.is_none() || got == Some(0), "the first value, if any");
        assert!(sent.len() >= 2, "the ring holds two before anyone reads");
        let drained: Vec<_> =
            core::iter::from_fn(|| stays.try_recv().ok().map(|v| v.value)).collect();
        assert_eq!(drained, sent, "the one that stays gets every value");
        drop(stays);
        drop(buf);
        assert_eq!(alive.load(SeqCst), 0, "the leaver's unread values dropped exactly once");
    });
}

#[test]
fn loom_subscribe_while_the_producer_publishes() {
    use std::sync::Arc;

    use crate::{Publisher, Subscriber};

    loom::model(|| {
        let alive = Arc::new(StdAtomicUsize::new(0));
        let buf = Arc::new(HeapBuffer::with_seats(2, 1));
        let producer = {
            let (buf, alive) = (Arc::clone(&buf), Arc::clone(&alive));
            thread::spawn(move || publish_with(&mut Publisher::new(buf).unwrap(), 2, &alive))
        };
        let joiner = {
            let buf = Arc::clone(&buf);
            thread::spawn(move || {
                let mut subscriber = Subscriber::subscribe(buf).unwrap();
                let got = subscriber.try_recv().ok().map(|v| v.value);
                (got, subscriber)
            })
        };
        let sent = producer.join().unwrap();
        let (got, mut subscriber) = joiner.join().unwrap();
        let mut all: Vec<_> = got.into_iter().collect();
        all.extend(core::iter::from_fn(|| subscriber.try_recv().ok().map(|v| v.value)));
        // A value published while nobody was subscribed came back to the producer; every value
        // that went in went to the subscriber.
        assert_eq!(all, sent);
        drop(subscriber);
        drop(buf);
        assert_eq!(alive.load(SeqCst), 0);
    });
}

#[test]
fn loom_close_while_draining() {
    use std::sync::Arc;

    use crate::{Publisher, Subscriber};

    loom::model(|| {
        let alive = Arc::new(StdAtomicUsize::new(0));
        let buf = Arc::new(HeapBuffer::new(2, 1));
        let mut subscriber = Subscriber::new(Arc::clone(&buf), 0).unwrap();
        let producer = {
            let (buf, alive) = (Arc::clone(&buf), Arc::clone(&alive));
            thread::spawn(move || {
                let mut publisher = Publisher::new(buf).unwrap();
                publisher.try_publish(Tracked::new(0, &alive)).unwrap();
                publisher.try_publish(Tracked::new(1, &alive)).unwrap();
                // Dropped here: closes the buffer.
            })
        };
        let mut got = Vec::new();
        for _ in 0..3 {
            match subscriber.try_recv() {
                Ok(v) => got.push(v.value),
                Err(TryConsumeError::Closed) => {
                    assert_eq!(got, [0, 1], "closed only after everything was read");
                    break;
                }
                Err(TryConsumeError::Empty) => thread::yield_now(),
                Err(err) => panic!("unexpected {err}"),
            }
        }
        producer.join().unwrap();
        got.extend(core::iter::from_fn(|| subscriber.try_recv().ok().map(|v| v.value)));
        assert_eq!(got, [0, 1]);
        assert_eq!(subscriber.try_recv().map(|v| v.value), Err(TryConsumeError::Closed));
        drop(subscriber);
        drop(buf);
        assert_eq!(alive.load(SeqCst), 0);
    });
}

#[test]
fn loom_detach_while_an_index_call_reads() {
    // Seat 1 is detached while an index-API call may have claimed a position and be reading it:
    // the producer (or the next index call, settling) gives back only what was not claimed.
    use std::sync::Arc;

    loom::model(|| {
        let alive = Arc::new(StdAtomicUsize::new(0));
        let buf = Arc::new(HeapBuffer::new(2, 2));
        buf.try_publish(Tracked::new(0, &alive)).unwrap();
        buf.try_publish(Tracked::new(1, &alive)).unwrap();
        assert_eq!(drain(&buf, 0), [0, 1]);
        let reader = {
            let buf = Arc::clone(&buf);
            thread::spawn(move || consume_some(&buf, 1, 2))
        };
        let producer = {
            let (buf, alive) = (Arc::clone(&buf), Arc::clone(&alive));
            thread::spawn(move || {
                assert!(buf.detach(1));
                publish_some(&buf, 2, &alive)
            })
        };
        let sent = producer.join().unwrap();
        let got = reader.join().unwrap();
        assert_eq!(got, (0..got.len()).collect::<Vec<_>>(), "a prefix, in order");
        assert!(matches!(buf.try_consume(1), Err(TryConsumeError::Detached { .. })));
        assert_eq!(drain(&buf, 0), (0..sent).collect::<Vec<_>>());
        drop(buf);
        assert_eq!(alive.load(SeqCst), 0, "each value dropped exactly once");
    });
}

// Models from the adversarial review of the protocol: each failed on the code before its fix.

/// With `std::sync::Arc`, which the handles take as a `BufferRef`.
mod review {
    extern crate std;

    use std::sync::Arc;

    use loom::thread;

    use crate::{HeapBuffer, Storage, Subscriber, TryConsumeError};

    /// A tethered subscriber of an index seat is dropped (handed back, not leaving) while the seat is
    /// detached and the producer looks at the requests. The drop peeks RUNNING, the detach sets STOP,
    /// the producer skips the (still tethered) stopping seat and clears REQUEST, then the drop's
    /// compare-and-swap retries and hands the seat back STOPPING, untethered, with no request: no
    /// one ever applies the stop, and the producer waits for a detached consumer with no holder for
    /// good.
    #[test]
    fn loom_tethered_hand_back_races_an_applied_detach() {
        loom::model(|| {
            let buf = Arc::new(HeapBuffer::<usize>::new(1, 1));
            let sub = Subscriber::new(Arc::clone(&buf), 0).unwrap(); // tethered
            buf.try_publish(0).unwrap(); // the only slot is full
            let dropper = thread::spawn(move || drop(sub));
            assert!(buf.detach(0));
            let _ = buf.try_publish(1); // the producer looks at the requests
            dropper.join().unwrap();
            // Seat 0 is detached and nobody holds it: nothing is counted any more, so a publish
            // (which applies whatever is pending) drops the value and returns Ok.
            let third = buf.try_publish(2);
            assert!(third.is_ok(), "producer still blocked by a detached, unheld seat: {third:?}");
            assert_eq!(buf.subscribed(), 0);
        });
    }

    /// Two index-API calls of a detached index settle it at once (documented as allowed: "nothing is
    /// duplicated, lost or released twice"). Y loads the write position (1), the producer publishes
    /// (write 2) before the detach's REQUEST, Z settles the seat to 2 and gives back 0..2, then Y's
    /// compare-and-swap moves the frontier *back* to 1 and calls `give_back(2, 1)`: a wrapping range
    /// of ~2^60 positions, releasing units it never held (the first two take seat 0's values).
    #[test]
    fn loom_two_index_settlers_move_the_frontier_back() {
        loom::model(|| {
            let buf = Arc::new(HeapBuffer::<usize>::new(2, 2));
            buf.try_publish(0).unwrap();
            let y = {
                let buf = Arc::clone(&buf);
                thread::spawn(move || buf.try_consume(1))
            };
            let producer = {
                let buf = Arc::clone(&buf);
                thread::spawn(move || buf.try_publish(1).is_ok())
            };
            buf.detach(1);
            let z = buf.try_consume(1);
            let y = y.join().unwrap();
            let sent = 1 + usize::from(producer.join().unwrap());
            let _ = (y, z);
            let drained: std::vec::Vec<_> = core::iter::from_fn(|| buf.consume(0)).collect();
            assert_eq!(drained, (0..sent).collect::<std::vec::Vec<_>>(), "seat 0 gets everything");
        });
    }

    /// A subscriber leaves (drop) while the producer joins its seat: its settle loads the write
    /// position (1) first, the producer, which read the control word before the subscribe's
    /// REQUEST, publishes (write 2), then applies the join at 2; the settle's compare-and-swap then
    /// finds the seat running at 2, moves it back to 1 and gives back `2..1`: a wrapping range.
    #[test]
    fn loom_leave_while_the_producer_joins_the_seat() {
        loom::model(|| {
            let buf = Arc::new(HeapBuffer::<usize>::with_seats(4, 2));
            let mut stays = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
            buf.try_publish(0).unwrap(); // joins `stays` at 0
            let leaver = {
                let buf = Arc::clone(&buf);
                thread::spawn(move || drop(Subscriber::subscribe(buf).unwrap()))
            };
            let sent = 1
                + usize::from(buf.try_publish(1).is_ok())
                + usize::from(buf.try_publish(2).is_ok());
            leaver.join().unwrap();
            let drained: std::vec::Vec<_> = core::iter::from_fn(|| stays.try_recv().ok()).collect();
            assert_eq!(drained, (0..sent).collect::<std::vec::Vec<_>>());
            assert!(matches!(stays.try_recv(), Err(TryConsumeError::Empty)));
        });
    }

    /// An index-API call finds detached index 1 stopping and settles it, while `Subscriber::new`
    /// takes the same seat (tethered) between the call's look and its compare-and-swap. The settle
    /// keeps `HELD`, drops `TETHERED`, and, the word having been tethered, starts from `local`, which
    /// for an index call is the seat word *with its flags* (`refused` passes the word it saw):
    /// `give_back(0 | STOP, 1)` never meets its end. (With a clean `from` it would still give back
    /// the units the new tethered holder reads without claiming.)
    #[test]
    fn loom_index_settle_races_a_new_tethered_holder() {
        loom::model(|| {
            let buf = Arc::new(HeapBuffer::<usize>::new(2, 2));
            buf.try_publish(0).unwrap();
            assert!(buf.detach(1)); // stopping, not applied (nothing published since)
            let y = {
                let buf = Arc::clone(&buf);
                thread::spawn(move || buf.try_consume(1))
            };
            let s = {
                let buf = Arc::clone(&buf);
                thread::spawn(move || {
                    let mut sub = Subscriber::new(Arc::clone(&buf), 1);
                    let got = sub.as_mut().map(|sub| sub.try_recv());
                    (got, sub)
                })
            };
            let y = y.join().unwrap();
            let (got, sub) = s.join().unwrap();
            let _ = (y, got);
            drop(sub);
            assert_eq!(buf.consume(0), Some(0));
        });
    }

    /// A value that counts the live instances.
    #[derive(Debug)]
    struct Live(std::sync::Arc<std::sync::atomic::AtomicUsize>);

    impl Live {
        fn new(alive: &std::sync::Arc<std::sync::atomic::AtomicUsize>) -> Self {
            alive.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Self(alive.clone())
        }
    }

    impl Clone for Live {
        fn clone(&self) -> Self {
            Self::new(&self.0)
        }
    }

    impl Drop for Live {
        fn drop(&mut self) {
            self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// A detach while the publisher is dropped: `Publisher::drop` reads the control word (no
    /// REQUEST yet), the detach sets STOP and REQUEST and then sees the buffer not closed yet (so it
    /// leaves the request to the producer), and the publisher publishes CLOSED. Nobody applies the
    /// request: the detached seat keeps its units, so after the other consumer has read the value
    /// it is still alive in its slot (it was cloned, not moved), until the buffer is dropped.
    #[test]
    fn loom_detach_while_the_publisher_closes_is_never_applied() {
        loom::model(|| {
            let alive = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let buf = Arc::new(HeapBuffer::<Live>::new(2, 2));
            let mut publisher = crate::Publisher::new(Arc::clone(&buf)).unwrap();
            publisher.try_publish(Live::new(&alive)).unwrap();
            let closer = thread::spawn(move || drop(publisher));
            assert!(buf.detach(1));
            closer.join().unwrap();
            drop(buf.consume(0).unwrap());
            assert_eq!(
                alive.load(std::sync::atomic::Ordering::SeqCst),
                0,
                "the only remaining consumer read the value, yet it is still held (seat word {:#x})",
                buf.storage.seats()[1].peek()
            );
        });
    }

    /// A value whose first clone panics (while `armed`).
    #[derive(Debug)]
    struct Bomb(std::sync::Arc<std::sync::atomic::AtomicBool>);

    impl Clone for Bomb {
        fn clone(&self) -> Self {
            if self.0.swap(false, std::sync::atomic::Ordering::Relaxed) {
                panic!("clone panics (review test)");
            }
            Self(self.0.clone())
        }
    }

    /// Index 1's first call clones the value (seat 0 has not read it), the clone panics, and the
    /// `Unclaim` guard puts the position back with a *Relaxed* compare-and-swap. A second thread
    /// claims it again (Relaxed), finds itself the last reader (seat 0 read meanwhile, on another
    /// thread) and moves the value out and frees the slot; the producer then overwrites the slot.
    /// Nothing orders the first thread's read of the slot (its clone) before that write: a data race
    /// (loom: causality violation on the slot).
    #[test]
    fn loom_unclaim_after_a_panicking_clone_does_not_order_the_read() {
        loom::model(|| {
            let armed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
            let buf = Arc::new(HeapBuffer::<Bomb>::new(1, 2));
            buf.try_publish(Bomb(armed.clone())).unwrap();
            let t1 = {
                let buf = Arc::clone(&buf);
                thread::spawn(move || {
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        buf.try_consume(1).is_ok()
                    }));
                    r.unwrap_or(false)
                })
            };
            let t2 = {
                let buf = Arc::clone(&buf);
                thread::spawn(move || {
                    for _ in 0..2 {
                        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            buf.try_consume(1).is_ok()
                        }));
                        if matches!(r, Ok(true)) {
                            return true;
                        }
                        thread::yield_now();
                    }
                    false
                })
            };
            thread::yield_now();
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| buf.try_consume(0)));
            let _ = t2.join().unwrap();
            // The producer reuses the slot once both seats gave it back.
            let _ = buf.try_publish(Bomb(armed.clone()));
            let _ = t1.join().unwrap();
        });
    }

    /// A tethered subscriber turns evictable while it is detached and the producer publishes: each
    /// value dropped exactly once, seat 0 gets everything, the subscriber reads a prefix in order.
    #[test]
    fn loom_set_evictable_true_while_detached() {
        loom::model(|| {
            let alive = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let buf = Arc::new(HeapBuffer::<Live>::new(2, 2));
            let mut sub = Subscriber::new(Arc::clone(&buf), 1).unwrap();
            buf.try_publish(Live::new(&alive)).unwrap();
            let reader = thread::spawn(move || {
                let first = sub.try_recv().is_ok();
                sub.set_evictable(true);
                let second = sub.try_recv();
                (first, second.is_ok(), sub)
            });
            assert!(buf.detach(1));
            let sent = 1 + usize::from(buf.try_publish(Live::new(&alive)).is_ok());
            let (_first, _second, mut sub) = reader.join().unwrap();
            while sub.try_recv().is_ok() {}
            let mut n = 0;
            while buf.try_consume(0).is_ok() {
                n += 1;
            }
            assert_eq!(n, sent);
            drop(sub);
            drop(buf);
            assert_eq!(alive.load(std::sync::atomic::Ordering::SeqCst), 0);
        });
    }

    /// `Buffer::rejoin` cancels a stop while the producer applies it: the index reads a
    /// gap-free suffix, every value is dropped once.
    #[test]
    fn loom_rejoin_cancel_races_the_apply() {
        loom::model(|| {
            let alive = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let buf = Arc::new(HeapBuffer::<Live>::new(2, 2));
            buf.try_publish(Live::new(&alive)).unwrap();
            assert!(buf.detach(1));
            let rejoiner = {
                let buf = Arc::clone(&buf);
                thread::spawn(move || buf.rejoin(1))
            };
            let sent = 1 + usize::from(buf.try_publish(Live::new(&alive)).is_ok());
            let _ = rejoiner.join().unwrap();
            let _ = buf.try_publish(Live::new(&alive)); // applies a pending join
            let mut n0 = 0;
            while buf.try_consume(0).is_ok() {
                n0 += 1;
            }
            assert!(n0 >= sent);
            while buf.try_consume(1).is_ok() {}
            drop(buf);
            assert_eq!(alive.load(std::sync::atomic::Ordering::SeqCst), 0);
        });
    }

    /// A tethered leaver that has read part of what it was counted for is dropped while it is
    /// detached and the producer publishes: every value dropped once, the stayer gets everything.
    #[test]
    fn loom_tethered_leaver_races_detach_and_publish() {
        loom::model(|| {
            let alive = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let buf = Arc::new(HeapBuffer::<Live>::with_seats(2, 2));
            let mut stays = Subscriber::new(Arc::clone(&buf), 0).unwrap();
            let mut leaves = Subscriber::new(Arc::clone(&buf), 1).unwrap();
            assert!(stays.rejoin() && leaves.rejoin()); // both tethered, both leave on drop
            buf.try_publish(Live::new(&alive)).unwrap(); // joins both at 0
            buf.try_publish(Live::new(&alive)).unwrap();
            assert!(leaves.try_recv().is_ok());
            let leaver = thread::spawn(move || drop(leaves));
            buf.detach(1);
            let sent = 2 + usize::from(buf.try_publish(Live::new(&alive)).is_ok());
            leaver.join().unwrap();
            let _ = buf.try_publish(Live::new(&alive)).map(|()| ()).is_ok();
            let mut n = 0;
            while stays.try_recv().is_ok() {
                n += 1;
            }
            assert!(n >= sent);
            drop(stays);
            drop(buf);
            assert_eq!(alive.load(std::sync::atomic::Ordering::SeqCst), 0);
        });
    }
}
