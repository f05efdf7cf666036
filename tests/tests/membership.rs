//! Plain, panic and stress tests of membership corners: handles taken on vacant, stopping and
//! detached seats (they read nothing before they look, and are told); destructors that panic
//! while a detach, a leave or the close is applied; subscribing and rejoining around the close.

use std::sync::Arc;

use multicast_buffer_core::{HeapBuffer, Publisher, Subscriber, TryConsumeError};
use multicast_buffer_tests::{Counted, Counters};

type Buf<T> = Arc<HeapBuffer<T>>;

/// Fails the test without running the destructors of a buffer that the bug has corrupted (they
/// would crash the process instead of reporting).
#[track_caller]
fn fail_leaking<T>(corrupt: T, message: String) -> ! {
    std::mem::forget(corrupt);
    panic!("{message}");
}

/// A tethered `Subscriber::new` on a *vacant* seat (`with_seats`, nobody subscribed it) must not
/// read: the producer does not count the seat, so it holds no unit of any slot. Its docs: "A
/// detached or vacant seat stays so: its calls return `Detached` until it rejoins". Before the
/// fix the handle's position is the vacant seat's, its fast path never looks at the seat, and it
/// moves the value out from under the real subscriber (the lane goes 2 -> 0, the real reader's
/// release then wraps the count word, and the buffer's drop drops uninitialised slots: heap
/// corruption).
#[test]
fn a_tethered_handle_on_a_vacant_seat_reads_no_slot_it_holds_no_unit_of() {
    let counters = Counters::new();
    let buf: Buf<Counted> = Arc::new(HeapBuffer::with_seats(4, 2));
    let mut publisher = Publisher::new(Arc::clone(&buf)).unwrap();
    let real = Subscriber::subscribe(Arc::clone(&buf)).unwrap(); // seat 0, counted
    let mut ghost = Subscriber::new(Arc::clone(&buf), 1).unwrap(); // seat 1: vacant, tethered
    publisher.try_publish(counters.make(7)).unwrap(); // one reader: seat 0
    let got = ghost.try_recv().map(|v| v.value);
    if !matches!(got, Err(TryConsumeError::Detached { .. })) {
        fail_leaking((real, ghost, publisher, buf), format!("a vacant seat's handle read {got:?}"));
    }
    let mut real = real;
    assert_eq!(real.try_recv().map(|v| v.value), Ok(7));
    drop((real, ghost, publisher, buf));
    assert_eq!(counters.alive(), 0);
}

/// The same with the index API: index 1 is detached and the detach applied (vacant at its
/// frontier); a tethered handle taken afterwards reads the values published after the detach,
/// which were published for index 0 alone.
#[test]
fn a_tethered_handle_on_a_detached_index_seat_reads_no_value_not_counted_for_it() {
    let counters = Counters::new();
    let buf: Buf<Counted> = Arc::new(HeapBuffer::new(4, 2));
    assert!(buf.detach(1));
    buf.try_publish(counters.make(1)).unwrap(); // applies the detach: one reader, index 0
    let mut late = Subscriber::new(Arc::clone(&buf), 1).unwrap();
    let got = late.try_recv().map(|v| v.value);
    if !matches!(got, Err(TryConsumeError::Detached { .. })) {
        fail_leaking((late, buf), format!("a detached seat's handle read {got:?}"));
    }
    assert_eq!(buf.try_consume(0).map(|v| v.value), Ok(1));
    drop((late, buf));
    assert_eq!(counters.alive(), 0);
}

/// The same with the value read in place (`try_read`) and in a batch (`recv_batch`): every read
/// path of a tethered handle trusts its position.
#[test]
fn in_place_and_batch_reads_of_a_vacant_seat_handle_read_nothing() {
    let buf: Buf<u32> = Arc::new(HeapBuffer::with_seats(4, 2));
    let real = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
    buf.try_publish(1).unwrap();
    buf.try_publish(2).unwrap();
    let mut ghost = Subscriber::new(Arc::clone(&buf), 1).unwrap();
    let read = ghost.try_read().map(|v| *v);
    if read.is_ok() {
        fail_leaking((real, ghost, buf), format!("try_read on a vacant seat gave {read:?}"));
    }
    let mut got = Vec::new();
    let batch = ghost.recv_batch(8, |v| got.push(v));
    if batch.is_ok() {
        fail_leaking((real, ghost, buf), format!("recv_batch on a vacant seat gave {batch:?}"));
    }
    drop((real, ghost));
}

/// A tethered handle taken on a seat that is detached but whose detach the producer has not
/// applied yet (stopping) reads on, and makes the stop its own to settle (the producer skips a
/// tethered stopping seat): the detach that returned `true` is undone until the handle catches
/// up and looks. The contract ("A detached or vacant seat stays so: its calls return
/// `Detached`") says it is told, as the index API is at once.
#[test]
fn a_tethered_handle_on_a_stopping_seat_is_told_instead_of_reading() {
    let buf = HeapBuffer::<u32>::new(4, 2);
    buf.try_publish(1).unwrap();
    assert!(buf.detach(1)); // stopping: nothing published since, not applied
    let mut late = buf.subscriber(1).unwrap();
    let got = late.try_recv();
    assert!(
        matches!(got, Err(TryConsumeError::Detached { .. })),
        "a detached seat's handle: {got:?}"
    );
}

/// The worst form of the vacant-seat handle: in a buffer with one seat and nobody subscribed, a
/// publish writes nothing (nobody can read it: the value is dropped and the write position
/// advances), so a tethered handle taken on the vacant seat reads a slot that was never written:
/// uninitialised memory as a `u32` (Miri: "using uninitialized data"; with a `String` it would
/// free a garbage pointer).
#[test]
fn a_tethered_handle_on_a_vacant_solo_seat_reads_no_unwritten_slot() {
    let buf: Buf<u32> = Arc::new(HeapBuffer::with_seats(4, 1));
    buf.try_publish(5).unwrap(); // nobody subscribed: dropped, write position 1
    assert_eq!(buf.write_position(), 1);
    let mut ghost = Subscriber::new(Arc::clone(&buf), 0).unwrap();
    let got = ghost.try_recv();
    if !matches!(got, Err(TryConsumeError::Detached { .. })) {
        fail_leaking((ghost, buf), format!("read an unwritten slot: {got:?}"));
    }
}

// ----- the close path, panics, a rejoin that cancels a stop -----

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A value whose destructor panics while `armed` (clones are not armed); counted when dropped.
#[derive(Debug)]
struct Boom {
    id: u64,
    armed: bool,
    live: Arc<AtomicUsize>,
}

impl Boom {
    fn new(id: u64, armed: bool, live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::SeqCst);
        Self { id, armed, live: Arc::clone(live) }
    }
}

impl Clone for Boom {
    fn clone(&self) -> Self {
        Self::new(self.id, false, &self.live)
    }
}

impl Drop for Boom {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
        if self.armed && !std::thread::panicking() {
            panic!("Boom {} panics in drop", self.id);
        }
    }
}

/// After the close, a detach is applied on the detacher's thread (the close path) and drops the
/// value the detached index was the last to hold; its destructor panics out of `detach`. The
/// seat still ends vacant, nothing is dropped twice, and later requests are still applied.
#[test]
fn a_panicking_drop_in_a_detach_after_close_leaves_the_buffer_consistent() {
    let live = Arc::new(AtomicUsize::new(0));
    let buf = HeapBuffer::new(4, 3);
    let mut publisher = buf.publisher().unwrap();
    publisher.try_publish(Boom::new(0, true, &live)).unwrap();
    publisher.try_publish(Boom::new(1, false, &live)).unwrap();
    drop(publisher);
    assert!(buf.is_closed());
    for _ in 0..2 {
        drop(buf.try_consume(0).unwrap()); // clones (indices 1 and 2 hold units)
        drop(buf.try_consume(2).unwrap()); // value 0 by clone, value 1 by clone
    }
    assert_eq!(live.load(Ordering::SeqCst), 2, "the originals, held for index 1");
    let unwound = catch_unwind(AssertUnwindSafe(|| buf.detach(1)));
    assert!(unwound.is_err(), "value 0's original is dropped by the detach, and panics");
    assert_eq!(live.load(Ordering::SeqCst), 0, "both originals dropped, once");
    assert!(matches!(buf.try_consume(1), Err(TryConsumeError::Detached { .. })));
    assert_eq!(buf.subscribed(), 2);
    // Still applied by whoever asks next: a rejoin after the close joins at the end.
    assert!(buf.rejoin(1));
    assert_eq!(buf.try_consume(1).map(|v| v.id), Err(TryConsumeError::Closed));
    assert_eq!(buf.try_consume(0).map(|v| v.id), Err(TryConsumeError::Closed));
}

/// The publisher's drop applies a pending detach whose give-back panics: the buffer is still
/// closed, the role free, and the consumers drain then see `Closed`.
#[test]
fn a_panicking_drop_while_the_publisher_closes_still_closes() {
    let live = Arc::new(AtomicUsize::new(0));
    let buf = HeapBuffer::new(4, 2);
    let mut publisher = buf.publisher().unwrap();
    publisher.try_publish(Boom::new(0, true, &live)).unwrap();
    publisher.try_publish(Boom::new(1, false, &live)).unwrap();
    drop(buf.try_consume(0).unwrap());
    assert!(buf.detach(1)); // left to the producer: applied by the publisher's drop
    assert!(catch_unwind(AssertUnwindSafe(|| drop(publisher))).is_err());
    assert!(buf.is_closed());
    assert!(buf.publisher().is_none(), "closed for good");
    assert_eq!(buf.try_consume(0).map(|v| v.id), Ok(1));
    assert_eq!(buf.try_consume(0).map(|v| v.id), Err(TryConsumeError::Closed));
    assert_eq!(live.load(Ordering::SeqCst), 0);
}

/// A subscriber that subscribes after the close applies its own join (nobody else will) and
/// sees `Closed`, not `Empty` for ever; leaving again is applied too.
#[test]
fn subscribing_after_the_close_is_told_closed() {
    let buf = HeapBuffer::<u32>::with_seats(4, 2);
    let mut publisher = buf.publisher().unwrap();
    let mut early = buf.subscribe().unwrap();
    publisher.try_publish(1).unwrap();
    drop(publisher);
    let mut late = buf.subscribe().unwrap();
    assert_eq!(late.try_recv(), Err(TryConsumeError::Closed));
    assert_eq!(early.try_recv(), Ok(1));
    assert_eq!(early.try_recv(), Err(TryConsumeError::Closed));
    drop(late);
    drop(early);
    assert_eq!(buf.subscribed(), 0);
    assert_eq!(buf.state().held, 0);
}

/// A tethered subscriber told of its detach (its word forgotten)
/// rejoins before the producer applied the stop; the stop is cancelled and it goes on from where
/// the settle left the seat, missing nothing published after that, reading nothing twice.
#[test]
fn a_told_tethered_subscriber_rejoins_before_the_apply_and_reads_on() {
    let counters = Counters::new();
    let buf = HeapBuffer::new(4, 2);
    let mut publisher = buf.publisher().unwrap();
    let mut sub = buf.subscriber(1).unwrap();
    publisher.try_publish(counters.make(0)).unwrap();
    publisher.try_publish(counters.make(1)).unwrap();
    assert_eq!(sub.try_recv().map(|v| v.value), Ok(0));
    assert!(buf.detach(1));
    // Tethered: it reads what it holds until it looks; then it is told and settles.
    assert_eq!(sub.try_recv().map(|v| v.value), Ok(1));
    assert_eq!(sub.try_recv().map(|v| v.value), Err(TryConsumeError::Detached { missed: 0 }));
    assert!(sub.rejoin(), "cancels the stop the settle left for the producer");
    publisher.try_publish(counters.make(2)).unwrap();
    assert_eq!(sub.try_recv().map(|v| v.value), Ok(2));
    let index0: Vec<u64> =
        core::iter::from_fn(|| buf.try_consume(0).ok()).map(|v| v.value).collect();
    assert_eq!(index0, [0, 1, 2]);
    drop((sub, publisher));
    drop(buf);
    assert_eq!(counters.alive(), 0);
}

/// Churn after the close: threads subscribe, read, detach each other and leave while the
/// publisher goes away. Every request made after the close is applied by whoever makes it (or
/// by the role holder it found): once every subscriber has gone, nothing is held any more, so
/// every value is dropped before the buffer is.
#[test]
fn churn_across_the_close_leaves_nothing_held() {
    let rounds = multicast_buffer_tests::scaled(300, 6);
    for _ in 0..multicast_buffer_tests::scaled(20, 2) {
        let live = Arc::new(AtomicUsize::new(0));
        let buf: Buf<Boom> = Arc::new(HeapBuffer::with_seats(4, 3));
        let mut publisher = Publisher::new(Arc::clone(&buf)).unwrap();
        let churners: Vec<_> = (0..2)
            .map(|t| {
                let buf = Arc::clone(&buf);
                std::thread::spawn(move || {
                    for i in 0..rounds {
                        if let Ok(mut sub) = Subscriber::subscribe(Arc::clone(&buf)) {
                            for _ in 0..(i % 3) {
                                let _ = sub.try_recv();
                            }
                            if i % 4 == t {
                                buf.detach((sub.index() + 1) % 3);
                            }
                            if i % 5 == 0 {
                                let _ = sub.try_recv();
                                let _ = sub.rejoin();
                            }
                        }
                    }
                })
            })
            .collect();
        for v in 0..rounds as u64 {
            let _ = publisher.try_publish(Boom::new(v, false, &live));
            if v == rounds as u64 / 2 {
                break;
            }
        }
        drop(publisher);
        for c in churners {
            c.join().unwrap();
        }
        assert_eq!(buf.subscribed(), 0);
        assert_eq!(live.load(Ordering::SeqCst), 0, "values held for seats nobody holds");
        drop(buf);
        assert_eq!(live.load(Ordering::SeqCst), 0);
    }
}
