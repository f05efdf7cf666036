//! Loom models of membership changes against the close, and of the handles' fast paths racing
//! them: the close applying requests through the installed operations, leavers and detaches
//! after the close, destructors that panic on the thread that applies, a rejoin that cancels a
//! stop of an unknown position, a handle taken on a seat being detached. Run one with
//! `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg multicast_loom -C debug-assertions" CARGO_TARGET_DIR=target/loom cargo test -p multicast-buffer-core --features alloc --lib --release loom_membership_`.
//!
//! Loom cannot run spin loops to completion, so every retry is bounded; each model checks what
//! the threads got (order, nothing duplicated), then drains on the main thread and checks that
//! every value was dropped exactly once and that nothing detached or left is still counted.

extern crate std;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::vec::Vec;

use loom::thread;

use crate::protocol::{HELD, MEMBERSHIP, VACANT};
use crate::{HeapBuffer, Publisher, Storage, Subscriber, TryConsumeError, TryPublishError};

/// A value with an id that counts its live instances.
#[derive(Debug)]
pub(super) struct Live {
    pub(super) id: usize,
    alive: Arc<AtomicUsize>,
}

impl Live {
    pub(super) fn new(id: usize, alive: &Arc<AtomicUsize>) -> Self {
        alive.fetch_add(1, SeqCst);
        Self { id, alive: Arc::clone(alive) }
    }
}

impl Clone for Live {
    fn clone(&self) -> Self {
        Self::new(self.id, &self.alive)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.alive.fetch_sub(1, SeqCst);
    }
}

pub(super) type Buf = Arc<HeapBuffer<Live>>;

/// Everything `sub` can take now, in order.
pub(super) fn drain(sub: &mut Subscriber<Buf>) -> Vec<usize> {
    core::iter::from_fn(|| sub.try_recv().ok().map(|v| v.id)).collect()
}

/// Whether `ids` is strictly increasing (in order, nothing twice).
pub(super) fn in_order(ids: &[usize]) -> bool {
    ids.windows(2).all(|w| w[0] < w[1])
}

/// Seat `index` is vacant and nobody holds it.
fn assert_vacant<T>(buf: &HeapBuffer<T>, index: usize) {
    let word = buf.storage.seats()[index].peek();
    assert_eq!(word & (MEMBERSHIP | HELD), VACANT, "seat {index} word {word:#x}");
}

/// The publisher is dropped (closing: it applies what was asked before, and the close path
/// applies what is asked after) while an evictable subscriber with two unread values leaves. The
/// leave's request either reaches the publisher's look, or finds the buffer closing and is
/// applied by the close path (`apply_and_release_closed`, through the installed operations).
/// Afterwards the one that stays reads both by move: nothing is left held for the leaver.
#[test]
fn loom_membership_close_races_an_evictable_leave() {
    loom::model(|| {
        let alive = Arc::new(AtomicUsize::new(0));
        let buf: Buf = Arc::new(HeapBuffer::with_seats(2, 2));
        let mut publisher = Publisher::new(Arc::clone(&buf)).unwrap();
        let mut stays = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
        let leaves = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
        publisher.try_publish(Live::new(0, &alive)).unwrap(); // joins both at 0
        publisher.try_publish(Live::new(1, &alive)).unwrap();
        let closer = thread::spawn(move || drop(publisher));
        let leaver = thread::spawn(move || drop(leaves));
        closer.join().unwrap();
        leaver.join().unwrap();
        assert_eq!(drain(&mut stays), [0, 1]);
        assert_eq!(stays.try_recv().map(|v| v.id), Err(TryConsumeError::Closed));
        assert_eq!(alive.load(SeqCst), 0, "the leaver's units were given back");
        assert_vacant(&buf, 1);
        assert_eq!(buf.subscribed(), 1);
    });
}

/// Two subscribers leave at once after the publisher has gone: both requests find the buffer
/// closed; one takes the role and applies, the other finds it taken and leaves its request to
/// the first one's `release_closed` (SeqCst hand-over). Neither stop may be lost.
#[test]
fn loom_membership_two_leavers_after_close() {
    loom::model(|| {
        let alive = Arc::new(AtomicUsize::new(0));
        let buf: Buf = Arc::new(HeapBuffer::with_seats(1, 3));
        let mut publisher = Publisher::new(Arc::clone(&buf)).unwrap();
        let mut stays = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
        let a = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
        let b = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
        publisher.try_publish(Live::new(0, &alive)).unwrap(); // joins all three at 0
        drop(publisher);
        let ta = thread::spawn(move || drop(a));
        let tb = thread::spawn(move || drop(b));
        ta.join().unwrap();
        tb.join().unwrap();
        assert_vacant(&buf, 1);
        assert_vacant(&buf, 2);
        let v = stays.try_recv().unwrap();
        assert_eq!(v.id, 0);
        drop(v);
        assert_eq!(alive.load(SeqCst), 0, "both leavers' units given back: read by move");
    });
}

/// After the close, an index seat is detached while another thread's `try_publish` takes the
/// role (it is refused `Closed`, and gives the role back through `release_closed`): whoever holds
/// the role when the request comes applies it, or leaves it to the holder, who looks again.
#[test]
fn loom_membership_detach_after_close_races_a_refused_publish() {
    loom::model(|| {
        let alive = Arc::new(AtomicUsize::new(0));
        let buf: Buf = Arc::new(HeapBuffer::new(2, 2));
        let mut publisher = Publisher::new(Arc::clone(&buf)).unwrap();
        publisher.try_publish(Live::new(0, &alive)).unwrap();
        drop(publisher);
        let publisher = {
            let (buf, alive) = (Arc::clone(&buf), Arc::clone(&alive));
            thread::spawn(move || {
                let refused = buf.try_publish(Live::new(9, &alive)).unwrap_err();
                assert!(
                    matches!(refused, TryPublishError::Closed(_) | TryPublishError::Busy(_)),
                    "{refused:?}"
                );
            })
        };
        let detacher = {
            let buf = Arc::clone(&buf);
            thread::spawn(move || assert!(buf.detach(1)))
        };
        publisher.join().unwrap();
        detacher.join().unwrap();
        assert_vacant(&buf, 1);
        let v = buf.try_consume(0).unwrap();
        assert_eq!(v.id, 0);
        drop(v);
        assert_eq!(alive.load(SeqCst), 0, "index 1's unit given back by the close path");
        assert_eq!(buf.try_consume(0).map(|v| v.id), Err(TryConsumeError::Closed));
    });
}

/// The publisher is dropped while an index seat is detached and a tethered holder of another
/// seat leaves: the tethered stop (left to its holder) and the index stop both end applied.
#[test]
fn loom_membership_close_races_a_detach_and_a_tethered_leave() {
    loom::model(|| {
        let alive = Arc::new(AtomicUsize::new(0));
        let buf: Buf = Arc::new(HeapBuffer::new(2, 3));
        let mut publisher = Publisher::new(Arc::clone(&buf)).unwrap();
        let mut tethered = Subscriber::new(Arc::clone(&buf), 2).unwrap();
        publisher.try_publish(Live::new(0, &alive)).unwrap();
        assert_eq!(tethered.try_recv().map(|v| v.id), Ok(0));
        publisher.try_publish(Live::new(1, &alive)).unwrap();
        let closer = thread::spawn(move || drop(publisher));
        let detacher = {
            let buf = Arc::clone(&buf);
            thread::spawn(move || {
                assert!(buf.detach(1));
                assert!(buf.detach(2));
                drop(tethered);
            })
        };
        closer.join().unwrap();
        detacher.join().unwrap();
        assert_vacant(&buf, 1);
        assert_vacant(&buf, 2);
        let got: Vec<_> = core::iter::from_fn(|| buf.try_consume(0).ok().map(|v| v.id)).collect();
        assert_eq!(got, [0, 1]);
        assert_eq!(alive.load(SeqCst), 0);
    });
}

/// A tethered subscriber that has not learned its position yet (joining, `UNKNOWN`) is detached
/// after the producer counted it, and rejoins: `rejoin` cancels the stop (its word is unknown, so
/// it continues from the seat's position, where the producer counted it), while the producer
/// publishes. It reads in order, nothing twice; the other subscriber gets everything; every value
/// dropped once.
#[test]
fn loom_membership_rejoin_cancels_a_stop_of_an_unknown_position() {
    loom::model(|| {
        let alive = Arc::new(AtomicUsize::new(0));
        let buf: Buf = Arc::new(HeapBuffer::with_seats(2, 2));
        let mut stays = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
        let mut sub = Subscriber::new(Arc::clone(&buf), 1).unwrap(); // vacant, tethered
        assert!(sub.rejoin()); // joining, word unknown
        buf.try_publish(Live::new(0, &alive)).unwrap(); // counts both from 0
        let reader = thread::spawn(move || {
            let mut got = Vec::new();
            // Before it looks: a stop seen here is cancelled with the word unknown, never told.
            let _ = sub.rejoin();
            let first = sub.try_recv();
            if let Ok(v) = &first {
                got.push(v.id);
            }
            let rejoined = sub.rejoin();
            if let Ok(v) = sub.try_recv() {
                got.push(v.id);
            }
            (sub, got, rejoined, first.map(|v| v.id))
        });
        assert!(buf.detach(1));
        let sent = 1 + usize::from(buf.try_publish(Live::new(1, &alive)).is_ok());
        let (mut sub, mut got, _rejoined, _first) = reader.join().unwrap();
        let _ = buf.try_publish(Live::new(2, &alive)).map(|()| ()); // applies what is pending
        got.extend(drain(&mut sub));
        assert!(in_order(&got), "{got:?}");
        let all = drain(&mut stays);
        assert!(all.len() >= sent && in_order(&all) && all[0] == 0, "{all:?}");
        drop((sub, stays));
        drop(buf);
        assert_eq!(alive.load(SeqCst), 0);
    });
}

/// An evictable subscriber reads a batch (one claim for both values, one `fetch_sub` for their
/// count word) while it is detached and the producer publishes: the producer gives back only what
/// it did not claim; the one that stays gets everything; every value dropped once.
#[test]
fn loom_membership_batch_read_races_a_detach_and_a_publish() {
    loom::model(|| {
        let alive = Arc::new(AtomicUsize::new(0));
        let buf: Buf = Arc::new(HeapBuffer::with_seats(2, 2));
        let mut publisher = Publisher::new(Arc::clone(&buf)).unwrap();
        let mut stays = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
        let mut ev = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
        publisher.try_publish(Live::new(0, &alive)).unwrap();
        assert_eq!(stays.try_recv().map(|v| v.id), Ok(0));
        publisher.try_publish(Live::new(1, &alive)).unwrap();
        let index = ev.index();
        let reader = thread::spawn(move || {
            let mut got = Vec::new();
            let r = ev.recv_batch(2, |v| got.push(v.id));
            (ev, got, r)
        });
        assert!(buf.detach(index));
        let sent = 2 + usize::from(publisher.try_publish(Live::new(2, &alive)).is_ok());
        let (mut ev, mut got, _r) = reader.join().unwrap();
        got.extend(drain(&mut ev));
        assert!(in_order(&got) && got.iter().all(|&id| id < sent), "{got:?}");
        let rest = drain(&mut stays);
        assert_eq!(rest, (1..sent).collect::<Vec<_>>());
        drop((ev, stays, publisher));
        drop(buf);
        assert_eq!(alive.load(SeqCst), 0);
    });
}

/// An evictable subscriber holds a value in place (`try_read`) while it is detached and the
/// producer applies the stop and wants the slot again: the slot is reused only after the guard
/// is gone (loom: no access to the slot races the guard's).
#[test]
fn loom_membership_read_guard_survives_an_applied_detach() {
    loom::model(|| {
        let alive = Arc::new(AtomicUsize::new(0));
        let buf: Buf = Arc::new(HeapBuffer::with_seats(1, 2));
        let mut publisher = Publisher::new(Arc::clone(&buf)).unwrap();
        let mut stays = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
        let mut ev = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
        publisher.try_publish(Live::new(0, &alive)).unwrap();
        let index = ev.index();
        let reader = thread::spawn(move || {
            let id = ev.try_read().ok().map(|g| g.id);
            (ev, id)
        });
        assert!(buf.detach(index));
        assert_eq!(stays.try_recv().map(|v| v.id), Ok(0));
        let sent = 1 + usize::from(publisher.try_publish(Live::new(1, &alive)).is_ok());
        let (ev, id) = reader.join().unwrap();
        assert!(id.is_none() || id == Some(0));
        let rest = drain(&mut stays);
        assert_eq!(rest, (1..sent).collect::<Vec<_>>());
        drop((ev, stays, publisher));
        drop(buf);
        assert_eq!(alive.load(SeqCst), 0);
    });
}

/// A tethered handle is taken on an index seat while the seat is detached and the producer
/// applies the detach: the handle must read only what it holds a unit of (the concurrent form of
/// `a_tethered_handle_on_a_detached_index_seat_reads_no_value_not_counted_for_it` in
/// tests/tests/membership.rs). Failed before `Subscriber::new` looked at the membership: the handle took the seat vacant and then read
/// value 1, published for index 0 alone (loom: a lane read before it was published, or the value
/// moved out twice).
#[test]
fn loom_membership_tethered_handle_taken_while_its_seat_is_detached() {
    loom::model(|| {
        let alive = Arc::new(AtomicUsize::new(0));
        let buf: Buf = Arc::new(HeapBuffer::new(2, 2));
        buf.try_publish(Live::new(0, &alive)).unwrap();
        assert_eq!(buf.try_consume(1).map(|v| v.id), Ok(0));
        let taker = {
            let buf = Arc::clone(&buf);
            thread::spawn(move || {
                let mut sub = Subscriber::new(Arc::clone(&buf), 1).unwrap();
                let mut got = Vec::new();
                for _ in 0..2 {
                    if let Ok(v) = sub.try_recv() {
                        got.push(v.id);
                    }
                }
                got
            })
        };
        assert!(buf.detach(1));
        let sent = 1 + usize::from(buf.try_publish(Live::new(1, &alive)).is_ok());
        let got = taker.join().unwrap();
        assert!(in_order(&got) && got.iter().all(|&id| id == 1), "{got:?}");
        let index0: Vec<_> =
            core::iter::from_fn(|| buf.try_consume(0).ok().map(|v| v.id)).collect();
        assert_eq!(index0, (0..sent).collect::<Vec<_>>(), "index 0 gets everything");
        drop(buf);
        assert_eq!(alive.load(SeqCst), 0);
    });
}

/// A value whose destructor panics if `armed` (its clones are not armed); it counts as dropped.
#[derive(Debug)]
pub(super) struct Bomb {
    pub(super) id: usize,
    pub(super) armed: bool,
    alive: Arc<AtomicUsize>,
}

impl Bomb {
    pub(super) fn new(id: usize, armed: bool, alive: &Arc<AtomicUsize>) -> Self {
        alive.fetch_add(1, SeqCst);
        Self { id, armed, alive: Arc::clone(alive) }
    }
}

impl Clone for Bomb {
    fn clone(&self) -> Self {
        Self::new(self.id, false, &self.alive)
    }
}

impl Drop for Bomb {
    fn drop(&mut self) {
        self.alive.fetch_sub(1, SeqCst);
        if self.armed && !std::thread::panicking() {
            panic!("value {} panics in drop", self.id);
        }
    }
}

/// A subscriber leaves once the publisher has gone: its settle moves its frontier (0 -> 1) and
/// asks, *then* gives back its own units 0..1. Once closed, the ask applies the requests on the
/// leaver's thread (`apply_closed`): if the publisher published value 1 after the settle loaded
/// the write position, the apply gives back the leaver's unit of value 1 and, the other
/// subscriber having read it, drops it; that destructor panics. The panic leaves `settle` before
/// its own `give_back(0, 1)`: the leaver's unit of value 0 is never given back, so value 0's
/// original stays in its slot (the other subscriber got a clone) until the buffer is dropped.
/// "Asked before the destructors below run" covered only the settle's own destructors, not those
/// the ask itself runs once closed. Failed before the settle's own give-back had a guard (alive 1
/// after everything was read).
#[test]
fn loom_membership_a_panicking_drop_in_the_close_path_apply_loses_the_leavers_units() {
    loom::model(|| {
        let alive = Arc::new(AtomicUsize::new(0));
        let buf = Arc::new(HeapBuffer::<Bomb>::with_seats(2, 2));
        let mut publisher = Publisher::new(Arc::clone(&buf)).unwrap();
        let mut stays = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
        let leaves = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
        publisher.try_publish(Bomb::new(0, false, &alive)).unwrap(); // joins both at 0
        let producer = {
            let alive = Arc::clone(&alive);
            thread::spawn(move || {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let _ = publisher.try_publish(Bomb::new(1, true, &alive));
                    for _ in 0..2 {
                        if let Ok(mut v) = stays.try_recv() {
                            v.armed = false;
                        }
                    }
                    drop(publisher);
                }));
                stays
            })
        };
        let leaver = thread::spawn(move || {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(leaves)));
        });
        let mut stays = producer.join().unwrap();
        leaver.join().unwrap();
        while let Ok(mut v) = stays.try_recv() {
            v.armed = false;
        }
        assert_vacant(&buf, 1);
        assert_eq!(
            alive.load(SeqCst),
            0,
            "every value read by the one that stays, yet one is still held for the leaver"
        );
        drop(stays);
        drop(buf);
    });
}

/// `Subscriber::subscribe` takes a vacant seat (`JOINING | HELD`) and then asks; once closed, the
/// ask applies the requests on the subscriber's thread, here a detach another thread made while a
/// refused `try_publish` held the role. Giving back the detached index's unit drops the value
/// whose destructor panics, and the panic leaves `subscribe` before the handle exists: nobody
/// will ever let go of the seat (it stays `HELD`, and `subscribe` finds no free seat for good).
/// Failed before `subscribe` made its handle before asking.
#[test]
fn loom_membership_a_panicking_drop_in_subscribes_ask_leaks_the_seat() {
    loom::model(|| {
        let alive = Arc::new(AtomicUsize::new(0));
        let buf = Arc::new(HeapBuffer::<Bomb>::new(2, 3));
        let mut publisher = Publisher::new(Arc::clone(&buf)).unwrap();
        assert!(buf.detach(2)); // applied by the first publish: seat 2 is vacant
        publisher.try_publish(Bomb::new(0, true, &alive)).unwrap(); // for indices 0 and 1
        let mut v = buf.try_consume(0).unwrap(); // a clone: index 1 still holds it
        v.armed = false;
        drop(v);
        drop(publisher); // closed
        let refused = {
            let (buf, alive) = (Arc::clone(&buf), Arc::clone(&alive));
            thread::spawn(move || {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let _ = buf.try_publish(Bomb::new(9, false, &alive));
                }));
            })
        };
        let detacher = {
            let buf = Arc::clone(&buf);
            thread::spawn(move || {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| buf.detach(1)));
            })
        };
        let subscriber = {
            let buf = Arc::clone(&buf);
            thread::spawn(move || {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    drop(Subscriber::subscribe(Arc::clone(&buf)));
                }));
            })
        };
        refused.join().unwrap();
        detacher.join().unwrap();
        subscriber.join().unwrap();
        let word = buf.storage.seats()[2].peek();
        assert_eq!(word & HELD, 0, "seat 2 held by no handle (word {word:#x})");
        assert_eq!(alive.load(SeqCst), 0);
    });
}

/// The lag limit (`detach_lagging`) judges a lagging evictable seat while a tethered
/// `Subscriber` takes it: the stop must not land on the tethered seat (issue 17, defect 3: the
/// stop was an unconditional `fetch_or` after the judgement, so it could). Either the stop comes
/// first (the taker finds a stopping seat, which it does not tether) or the judgement sees the
/// tether and skips it.
#[test]
fn loom_membership_lag_limit_races_a_tethered_take() {
    loom::model(|| {
        let alive = Arc::new(AtomicUsize::new(0));
        let buf: Buf = Arc::new(HeapBuffer::new(2, 2));
        buf.try_publish(Live::new(0, &alive)).unwrap();
        assert_eq!(buf.try_consume(0).map(|v| v.id), Ok(0));
        let taker = {
            let buf = Arc::clone(&buf);
            thread::spawn(move || Subscriber::new(buf, 1).unwrap())
        };
        let detached = buf.detach_lagging(0);
        let sub = taker.join().unwrap();
        let word = buf.storage.seats()[1].peek();
        assert!(
            word & crate::protocol::TETHERED == 0 || word & MEMBERSHIP == 0,
            "the lag limit stopped a tethered seat (detached {detached}, word {word:#x})"
        );
        drop(sub);
        drop(buf);
        assert_eq!(alive.load(SeqCst), 0);
    });
}

/// A subscriber leaves and a new one subscribes at once, with no publish in between on this
/// thread, while the publisher publishes on another: the new one gets the seat whether the
/// producer applied the leave first (vacant: it joins) or not (stopping at the write position:
/// it cancels the stop; issue 17, defect 5: it used to get `NoFreeSeat` until the producer's
/// next publish). It receives only what was published after the leave, in order, and every
/// value is dropped exactly once.
#[test]
fn loom_membership_a_left_seat_is_taken_at_once_while_the_producer_publishes() {
    loom::model(|| {
        let alive = Arc::new(AtomicUsize::new(0));
        let buf: Buf = Arc::new(HeapBuffer::with_seats(2, 1));
        let mut publisher = Publisher::new(Arc::clone(&buf)).unwrap();
        let first = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
        publisher.try_publish(Live::new(0, &alive)).ok().unwrap();
        let producer = {
            let alive = Arc::clone(&alive);
            thread::spawn(move || {
                let sent = publisher.try_publish(Live::new(1, &alive)).is_ok();
                (sent, publisher)
            })
        };
        drop(first);
        let mut second =
            Subscriber::subscribe(Arc::clone(&buf)).expect("a left seat is free at once");
        let (sent, publisher) = producer.join().unwrap();
        drop(publisher);
        let got = drain(&mut second);
        assert!(got.is_empty() || (sent && got == [1]), "{got:?}");
        drop(second);
        drop(buf);
        assert_eq!(alive.load(SeqCst), 0);
    });
}
