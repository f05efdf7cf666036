//! Loom models from an adversarial review of the seat take-over and its neighbours: `subscribe`
//! cancelling a stop nobody applied (`skip_published`), the index API without a cached write
//! word, a tethered handle's stop check in `refresh`. Run one with
//! `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg multicast_loom -C debug-assertions" CARGO_TARGET_DIR=target/loom cargo test -p multicast-buffer-core --features alloc --lib --release loom_takeover_`.
//!
//! Every model checks: no value read twice by one consumer, in order, every value dropped exactly
//! once (alive count), and the control word's count of uncounted seats (invariant 2) at the end.

extern crate std;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::vec;
use std::vec::Vec;

use loom::thread;

use crate::protocol::{COLD, JOINING, MEMBERSHIP, VACANT};
use crate::{HeapBuffer, Publisher, Storage, Subscriber, TryConsumeError};

use super::loom_membership::{drain, in_order, Bomb, Buf, Live};

/// Invariant 2: the control word's count equals the number of joining or vacant seats.
fn assert_count<T>(buf: &HeapBuffer<T>) {
    let control = buf.producer.control.load(SeqCst) & !COLD;
    let uncounted = buf
        .storage
        .seats()
        .iter()
        .filter(|s| matches!(s.peek() & MEMBERSHIP, JOINING | VACANT))
        .count();
    assert_eq!(control, uncounted, "invariant 2: control {control}, uncounted seats {uncounted}");
}

/// An index seat (never held) detached; its index caller calls `try_consume` (settles it,
/// `Settle::Index`) while `subscribe` takes the stopping seat (cancels the stop, skips) and the
/// producer publishes (applies the stop, or not). Each unit given back once.
#[test]
fn loom_takeover_subscribe_cancel_races_index_settle_and_publish() {
    loom::model(|| {
        let alive = Arc::new(AtomicUsize::new(0));
        let buf: Buf = Arc::new(HeapBuffer::new(2, 2));
        buf.try_publish(Live::new(0, &alive)).unwrap();
        assert!(buf.detach(1));
        let index = {
            let buf = Arc::clone(&buf);
            thread::spawn(move || buf.try_consume(1).map(|v| v.id))
        };
        let taker = {
            let buf = Arc::clone(&buf);
            thread::spawn(move || {
                let mut sub = Subscriber::subscribe(buf).ok();
                let got = sub.as_mut().map(drain).unwrap_or_default();
                (got, sub)
            })
        };
        let sent = buf.try_publish(Live::new(1, &alive)).is_ok();
        let by_index = index.join().unwrap();
        let (got, sub) = taker.join().unwrap();
        assert!(
            matches!(by_index, Err(TryConsumeError::Detached { .. }) | Err(TryConsumeError::Busy)),
            "{by_index:?}"
        );
        assert!(sub.is_some(), "the given-up seat could not be taken");
        let mut sub = sub.unwrap();
        let mut got = got;
        got.extend(drain(&mut sub));
        assert!(in_order(&got), "{got:?}");
        assert!(!got.contains(&0), "value 0 was published before subscribe: {got:?}");
        let mut zero = Vec::new();
        while let Ok(v) = buf.try_consume(0) {
            zero.push(v.id);
        }
        assert_eq!(zero, if sent { vec![0, 1] } else { vec![0] });
        drop(sub);
        assert_count(&buf);
        assert_eq!(alive.load(SeqCst), 0, "everything read by every consumer, yet held");
        drop(buf);
    });
}

/// A subscriber with unread values leaves while the publisher is dropped (close: whoever asks
/// applies) and `subscribe` takes the seat at once (cancelling the stop if nobody applied it).
#[test]
fn loom_takeover_subscribe_cancel_races_leave_and_close() {
    loom::model(|| {
        let alive = Arc::new(AtomicUsize::new(0));
        let buf: Buf = Arc::new(HeapBuffer::with_seats(2, 2));
        let mut publisher = Publisher::new(Arc::clone(&buf)).unwrap();
        let mut stays = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
        let leaves = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
        publisher.try_publish(Live::new(0, &alive)).unwrap();
        publisher.try_publish(Live::new(1, &alive)).unwrap();
        let leaver = thread::spawn(move || drop(leaves));
        let closer = thread::spawn(move || drop(publisher));
        let taken = Subscriber::subscribe(Arc::clone(&buf));
        leaver.join().unwrap();
        closer.join().unwrap();
        let mut taken = taken.ok();
        let got = taken.as_mut().map(drain).unwrap_or_default();
        assert!(got.is_empty(), "the new subscriber got values published before it: {got:?}");
        assert_eq!(drain(&mut stays), [0, 1]);
        assert_eq!(stays.try_recv().map(|v| v.id), Err(TryConsumeError::Closed));
        assert_eq!(alive.load(SeqCst), 0, "held after every counted reader read");
        drop(taken);
        drop(stays);
        assert_count(&buf);
        drop(buf);
    });
}

/// `subscribe` takes a seat that was given up and not applied, while another thread detaches
/// that seat and the producer publishes: the new subscriber's skip, the detach's settle by the
/// producer (evictable) and its own ack must give each unit back once.
#[test]
fn loom_takeover_subscribe_cancel_races_detach_and_publish() {
    loom::model(|| {
        let alive = Arc::new(AtomicUsize::new(0));
        let buf: Buf = Arc::new(HeapBuffer::with_seats(4, 2));
        let mut publisher = Publisher::new(Arc::clone(&buf)).unwrap();
        let mut stays = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
        let leaves = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
        publisher.try_publish(Live::new(0, &alive)).unwrap(); // joins both at 0
        drop(leaves); // seat 1 stopping at 1, not applied
        let detacher = {
            let buf = Arc::clone(&buf);
            thread::spawn(move || buf.detach(1))
        };
        let producer = {
            let alive = Arc::clone(&alive);
            thread::spawn(move || {
                let sent = publisher.try_publish(Live::new(1, &alive)).is_ok();
                (sent, publisher)
            })
        };
        let mut taken = Subscriber::subscribe(Arc::clone(&buf)).expect("a given-up seat");
        let mut got = drain(&mut taken);
        detacher.join().unwrap();
        let (sent, publisher) = producer.join().unwrap();
        got.extend(drain(&mut taken));
        assert!(in_order(&got) && !got.contains(&0), "{got:?}");
        assert!(sent || got.is_empty());
        assert_eq!(drain(&mut stays), if sent { vec![0, 1] } else { vec![0] });
        drop(publisher);
        drop(taken);
        assert_eq!(alive.load(SeqCst), 0, "held after every counted reader read");
        drop(stays);
        assert_count(&buf);
        drop(buf);
    });
}

/// Two threads consume with one index while a tethered `Subscriber` takes that seat, reads, and
/// hands it back (invariant 5 without the seat's cache): nothing read twice, nothing lost
/// (solo buffer: one seat).
#[test]
fn loom_takeover_two_index_callers_and_a_tethered_take() {
    loom::model(|| {
        let alive = Arc::new(AtomicUsize::new(0));
        let buf: Buf = Arc::new(HeapBuffer::new(4, 1));
        buf.try_publish(Live::new(0, &alive)).unwrap();
        buf.try_publish(Live::new(1, &alive)).unwrap();
        let index = {
            let buf = Arc::clone(&buf);
            thread::spawn(move || buf.try_consume(0).map(|v| v.id).ok())
        };
        let taker = {
            let buf = Arc::clone(&buf);
            thread::spawn(move || {
                let mut sub = Subscriber::new(buf, 0)?;
                sub.try_recv().ok().map(|v| v.id)
            })
        };
        let sent = buf.try_publish(Live::new(2, &alive)).is_ok();
        let mut got: Vec<usize> = Vec::new();
        got.extend(buf.try_consume(0).ok().map(|v| v.id));
        got.extend(index.join().unwrap());
        got.extend(taker.join().unwrap());
        while let Ok(v) = buf.try_consume(0) {
            got.push(v.id);
        }
        got.sort_unstable();
        let want: Vec<usize> = if sent { vec![0, 1, 2] } else { vec![0, 1] };
        assert_eq!(got, want);
        assert_eq!(alive.load(SeqCst), 0);
    });
}

/// A tethered subscriber that saw two values is detached while it reads and the producer
/// publishes: it reads what it had seen, then is told, and the producer is then never held back
/// by it (two publishes fit a 2-slot buffer once the detached holder was told).
#[test]
fn loom_takeover_tethered_detach_told_then_producer_free() {
    loom::model(|| {
        let alive = Arc::new(AtomicUsize::new(0));
        let buf: Buf = Arc::new(HeapBuffer::new(2, 1));
        let mut sub = Subscriber::new(Arc::clone(&buf), 0).unwrap();
        buf.try_publish(Live::new(0, &alive)).unwrap();
        assert_eq!(sub.try_recv().map(|v| v.id), Ok(0));
        buf.try_publish(Live::new(1, &alive)).unwrap();
        let detacher = {
            let buf = Arc::clone(&buf);
            thread::spawn(move || assert!(buf.detach(0)))
        };
        let reader = thread::spawn(move || {
            let mut got = Vec::new();
            let mut told = false;
            for _ in 0..3 {
                match sub.try_recv() {
                    Ok(v) => got.push(v.id),
                    Err(TryConsumeError::Detached { .. }) => {
                        told = true;
                        break;
                    }
                    Err(_) => {}
                }
            }
            (got, told, sub)
        });
        detacher.join().unwrap();
        let (got, told, mut sub) = reader.join().unwrap();
        assert!(in_order(&got), "{got:?}");
        if !told {
            // Told at its next call at the latest.
            loop {
                match sub.try_recv() {
                    Ok(v) => {
                        let mut all = got.clone();
                        all.push(v.id);
                        panic!("read after a detach with nothing unseen: {all:?}");
                    }
                    Err(TryConsumeError::Detached { .. }) => break,
                    Err(e) => panic!("{e:?}"),
                }
            }
        }
        // Told: no longer counted once the producer looks; two publishes fit.
        buf.try_publish(Live::new(10, &alive)).unwrap();
        buf.try_publish(Live::new(11, &alive)).unwrap();
        drop(sub);
        assert_count(&buf);
        drop(buf);
        assert_eq!(alive.load(SeqCst), 0);
    });
}

/// A subscriber leaves while the publisher publishes a value whose destructor panics, and a new
/// subscriber takes the given-up seat at once: if the publish landed between the leave and the
/// producer's look, the new subscriber's skip gives back the unit and, the other subscriber
/// having read the value, drops it, and the destructor panics inside `subscribe`. Afterwards the
/// seat must be free (or held by a live handle), nothing held, invariant 2 intact.
#[test]
fn loom_takeover_a_panicking_drop_in_subscribes_skip() {
    loom::model(|| {
        let alive = Arc::new(AtomicUsize::new(0));
        let buf = Arc::new(HeapBuffer::<Bomb>::with_seats(2, 2));
        let mut publisher = Publisher::new(Arc::clone(&buf)).unwrap();
        let mut stays = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
        let leaves = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
        publisher.try_publish(Bomb::new(0, false, &alive)).unwrap(); // joins both
        assert_eq!(stays.try_recv().map(|v| v.id), Ok(0));
        let producer = {
            let alive = Arc::clone(&alive);
            thread::spawn(move || {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let _ = publisher.try_publish(Bomb::new(1, true, &alive));
                    if let Ok(mut v) = stays.try_recv() {
                        v.armed = false;
                    }
                }));
                (publisher, stays)
            })
        };
        // The leave's own settle may drop value 1 (published meanwhile) and panic.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(leaves)));
        let taken = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Subscriber::subscribe(Arc::clone(&buf)).ok()
        }));
        let (publisher, mut stays) = producer.join().unwrap();
        while let Ok(mut v) = stays.try_recv() {
            v.armed = false;
        }
        let taken = match taken {
            Ok(taken) => taken,
            // Panicked inside subscribe: the seat must be free again.
            Err(_) => {
                Some(Subscriber::subscribe(Arc::clone(&buf)).expect("seat leaked by a panic"))
            }
        };
        assert!(taken.is_some(), "the given-up seat could not be taken");
        let mut taken = taken.unwrap();
        let mut got = Vec::new();
        while let Ok(mut v) = taken.try_recv() {
            v.armed = false;
            got.push(v.id);
        }
        assert!(got.is_empty() || got == [1], "{got:?}");
        assert_eq!(alive.load(SeqCst), 0, "held after every counted reader read");
        drop(publisher);
        drop(taken);
        drop(stays);
        assert_count(&buf);
        drop(buf);
    });
}

/// `subscribe` and a tethered `Subscriber::new` race for a seat given up and not applied, while
/// the producer publishes: whoever wins, every unit is given back once.
#[test]
fn loom_takeover_subscribe_and_tethered_take_race_for_a_given_up_seat() {
    loom::model(|| {
        let alive = Arc::new(AtomicUsize::new(0));
        let buf: Buf = Arc::new(HeapBuffer::with_seats(2, 2));
        let mut publisher = Publisher::new(Arc::clone(&buf)).unwrap();
        let mut stays = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
        let leaves = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
        publisher.try_publish(Live::new(0, &alive)).unwrap(); // joins both
        drop(leaves); // seat 1 stopping at 1
        let producer = {
            let alive = Arc::clone(&alive);
            thread::spawn(move || {
                let _ = publisher.try_publish(Live::new(1, &alive));
                publisher
            })
        };
        let tether = {
            let buf = Arc::clone(&buf);
            thread::spawn(move || {
                let mut sub = Subscriber::new(buf, 1)?;
                let got = sub.try_recv().map(|v| v.id);
                Some((got, sub))
            })
        };
        let mut sub = Subscriber::subscribe(Arc::clone(&buf)).ok();
        let mut got = sub.as_mut().map(drain).unwrap_or_default();
        let publisher = producer.join().unwrap();
        let tethered = tether.join().unwrap();
        got.extend(sub.as_mut().map(drain).unwrap_or_default());
        assert!(sub.is_some() != tethered.is_some(), "both or neither got seat 1");
        assert!(in_order(&got) && !got.contains(&0), "{got:?}");
        if let Some((first, mut t)) = tethered {
            assert!(
                matches!(
                    first,
                    Err(TryConsumeError::Detached { .. }) | Err(TryConsumeError::Empty)
                ),
                "a tethered take of a stopping seat read {first:?}"
            );
            let _ = t.try_recv();
        }
        while stays.try_recv().is_ok() {}
        drop(publisher);
        drop(sub);
        assert_eq!(alive.load(SeqCst), 0, "held after every counted reader read");
        drop(stays);
        assert_count(&buf);
        drop(buf);
    });
}

/// An index seat detached and not applied: `rejoin(1)` (cancels the stop) races `subscribe`
/// (cancels it too, taking the seat) while the producer publishes. Exactly one wins; the index
/// consumer or the new subscriber reads on; every unit given back once; invariant 2.
#[test]
fn loom_takeover_index_rejoin_races_subscribe_for_a_detached_seat() {
    loom::model(|| {
        let alive = Arc::new(AtomicUsize::new(0));
        let buf: Buf = Arc::new(HeapBuffer::new(2, 2));
        buf.try_publish(Live::new(0, &alive)).unwrap();
        assert!(buf.detach(1));
        let rejoiner = {
            let buf = Arc::clone(&buf);
            thread::spawn(move || buf.rejoin(1))
        };
        let taker = {
            let buf = Arc::clone(&buf);
            thread::spawn(move || Subscriber::subscribe(buf).ok())
        };
        let sent = buf.try_publish(Live::new(1, &alive)).is_ok();
        let rejoined = rejoiner.join().unwrap();
        let sub = taker.join().unwrap();
        assert!(
            !(rejoined && sub.is_some() && sub.as_ref().unwrap().index() == 1) || {
                // A rejoin after the producer applied the stop goes joining, and subscribe
                // may then not take it: both "winning" the same seat is impossible.
                false
            },
            "both the rejoin and subscribe got seat 1"
        );
        let mut zero = Vec::new();
        while let Ok(v) = buf.try_consume(0) {
            zero.push(v.id);
        }
        assert_eq!(zero, if sent { vec![0, 1] } else { vec![0] });
        let mut one = Vec::new();
        for _ in 0..3 {
            if let Ok(v) = buf.try_consume(1) {
                one.push(v.id);
            }
        }
        assert!(in_order(&one), "{one:?}");
        let mut sub = sub;
        let got = sub.as_mut().map(drain).unwrap_or_default();
        assert!(in_order(&got) && !got.contains(&0), "{got:?}");
        drop(sub);
        // Seat 1 may still hold units for an index consumer that rejoined: drain again.
        while buf.try_consume(1).is_ok() {}
        assert_count(&buf);
        drop(buf);
        assert_eq!(alive.load(SeqCst), 0);
    });
}
