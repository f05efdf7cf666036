//! Unit tests of the protocol, single-threaded; threads are in the `tests` crate and loom.

extern crate std;

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::vec::Vec;

use crate::{HeapBuffer, InlineBuffer, TryConsumeError, TryPublishError};

/// Counts clones and drops of its instances through shared counters.
#[derive(Debug)]
struct Counted {
    value: u32,
    clones: Rc<Cell<usize>>,
    drops: Rc<Cell<usize>>,
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        self.clones.set(self.clones.get() + 1);
        Self { value: self.value, clones: self.clones.clone(), drops: self.drops.clone() }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
    }
}

struct Counters {
    clones: Rc<Cell<usize>>,
    drops: Rc<Cell<usize>>,
}

impl Counters {
    fn new() -> Self {
        Self { clones: Rc::default(), drops: Rc::default() }
    }
    fn make(&self, value: u32) -> Counted {
        Counted { value, clones: self.clones.clone(), drops: self.drops.clone() }
    }
    /// Instances alive: made + cloned - dropped.
    fn alive(&self, made: usize) -> usize {
        made + self.clones.get() - self.drops.get()
    }
}

#[test]
fn every_consumer_gets_every_value_in_order() {
    let buf: InlineBuffer<u32, 8, 3> = InlineBuffer::new();
    let mut next = [0u32; 3];
    for round in 0..50u32 {
        for i in 0..5 {
            buf.try_publish(round * 5 + i).unwrap();
        }
        // Consumers read at different moments; each sees the full sequence.
        for (c, next) in next.iter_mut().enumerate() {
            while let Some(v) = buf.consume(c) {
                assert_eq!(v, *next, "consumer {c}");
                *next += 1;
            }
        }
    }
    assert_eq!(next, [250; 3]);
}

#[test]
fn backpressure_exactly_when_slowest_is_capacity_behind() {
    let buf = HeapBuffer::new(4, 2);
    for i in 0..4 {
        buf.try_publish(i).unwrap();
    }
    assert_eq!(buf.try_publish(4), Err(TryPublishError::Full(4)));
    assert_eq!(buf.slowest_consumer(), Some(0), "both behind: the lowest index");
    // The fast consumer reading everything does not help: the slow one still holds slot 0.
    for i in 0..4 {
        assert_eq!(buf.consume(0), Some(i));
    }
    assert!(buf.try_publish(4).unwrap_err().is_full());
    assert_eq!(buf.slowest_consumer(), Some(1));
    assert_eq!(buf.consume(1), Some(0));
    buf.try_publish(4).unwrap();
    assert!(buf.try_publish(5).unwrap_err().is_full());
    assert_eq!(buf.write_position(), 5);
}

#[test]
fn last_reader_gets_the_value_by_move_and_it_is_released_at_once() {
    let counters = Counters::new();
    let buf = HeapBuffer::new(8, 3);
    buf.try_publish(counters.make(1)).unwrap();
    let a = buf.consume(0).unwrap();
    let b = buf.consume(1).unwrap();
    assert_eq!(counters.clones.get(), 2);
    let c = buf.consume(2).unwrap();
    // The third consumer took the original: no third clone, nothing left in the buffer.
    assert_eq!(counters.clones.get(), 2);
    assert_eq!(counters.alive(1), 3);
    drop((a, b, c));
    assert_eq!(counters.alive(1), 0);
    assert_eq!(buf.state().held, 0);
}

#[test]
fn single_consumer_never_clones() {
    let counters = Counters::new();
    let buf = HeapBuffer::new(4, 1);
    for i in 0..10 {
        buf.try_publish(counters.make(i)).unwrap();
        assert_eq!(buf.consume(0).unwrap().value, i);
    }
    assert_eq!(counters.clones.get(), 0);
    assert_eq!(counters.drops.get(), 10);
}

#[test]
fn zero_consumers_drop_each_value_at_once() {
    let counters = Counters::new();
    let buf = HeapBuffer::new(2, 0);
    for i in 0..5 {
        buf.try_publish(counters.make(i)).unwrap();
        assert_eq!(counters.drops.get(), i as usize + 1);
    }
    assert_eq!(buf.write_position(), 5);
    assert_eq!(buf.state().slowest_consumer, None);
}

#[test]
fn dropping_the_buffer_drops_each_held_value_once() {
    let counters = Counters::new();
    {
        let buf = HeapBuffer::new(8, 2);
        for i in 0..6 {
            buf.try_publish(counters.make(i)).unwrap();
        }
        // Slots 0-1 read by both (released), 2-3 by one, 4-5 by none.
        for _ in 0..4 {
            drop(buf.consume(0));
        }
        for _ in 0..2 {
            drop(buf.consume(1));
        }
        buf.try_publish(counters.make(6)).unwrap();
    }
    assert_eq!(counters.alive(7), 0);
}

#[test]
fn panicking_clone_changes_nothing() {
    #[derive(Debug, PartialEq)]
    struct Fragile(u32, Rc<Cell<bool>>);
    impl Clone for Fragile {
        fn clone(&self) -> Self {
            assert!(!self.1.get(), "clone refused");
            Fragile(self.0, self.1.clone())
        }
    }
    let fail = Rc::new(Cell::new(true));
    let buf = HeapBuffer::new(2, 2);
    buf.try_publish(Fragile(7, fail.clone())).unwrap();
    let err = catch_unwind(AssertUnwindSafe(|| buf.consume(0))).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"clone refused"));
    assert_eq!(buf.read_position(0), 0);
    // The index is not left locked, and the same value comes next.
    fail.set(false);
    assert_eq!(buf.consume(0).map(|f| f.0), Some(7));
    assert_eq!(buf.consume(1).map(|f| f.0), Some(7));
    assert_eq!(buf.consume(0), None);
}

#[test]
#[should_panic(expected = "consumer index 3 out of range: this buffer has 3 consumers")]
fn bad_index_panics_with_index_and_count() {
    let buf: InlineBuffer<u8, 4, 3> = InlineBuffer::new();
    buf.consume(3);
}

#[test]
#[should_panic(expected = "consumer index 7 out of range: this buffer has 2 consumers")]
fn bad_index_in_read_position_panics() {
    HeapBuffer::<u8>::new(4, 2).read_position(7);
}

#[test]
fn config_errors() {
    use crate::ConfigError::*;
    assert_eq!(HeapBuffer::<u8>::try_new(0, 1).unwrap_err(), ZeroCapacity);
    assert_eq!(HeapBuffer::<u8>::try_new(6, 1).unwrap_err(), CapacityNotPowerOfTwo { capacity: 6 });
    assert_eq!(
        HeapBuffer::<u8>::try_new(4, crate::MAX_CONSUMERS + 1).unwrap_err(),
        TooManyConsumers { consumers: crate::MAX_CONSUMERS + 1 }
    );
    let huge = crate::MAX_CAPACITY * 2;
    assert_eq!(
        HeapBuffer::<u8>::try_new(huge, 1).unwrap_err(),
        CapacityTooLarge { capacity: huge }
    );
    assert!(HeapBuffer::<u8>::try_new(1, crate::MAX_CONSUMERS).is_ok());
}

#[test]
#[should_panic(expected = "capacity must be a power of two, got 3")]
fn new_panics_on_bad_capacity() {
    HeapBuffer::<u8>::new(3, 1);
}

#[test]
fn a_held_producer_role_refuses_without_losing_the_value() {
    let buf = HeapBuffer::new(4, 1);
    buf.hold(true);
    assert_eq!(buf.try_publish(1), Err(TryPublishError::Busy(1)));
    buf.hold(false);
    buf.try_publish(2).unwrap();
    assert_eq!(buf.consume(0), Some(2));
}

#[test]
fn a_held_consumer_index_refuses_without_moving() {
    let buf = HeapBuffer::new(4, 2);
    buf.try_publish(1).unwrap();
    let held = buf.subscriber(0).unwrap();
    assert_eq!(buf.try_consume(0), Err(TryConsumeError::Busy));
    assert_eq!(buf.read_position(0), 0);
    assert_eq!(buf.consume(1), Some(1));
    drop(held);
    assert_eq!(buf.consume(0), Some(1));
}

#[test]
fn positions_wrap() {
    // Start 3 values before the position counter wraps and run well past it.
    let start = (usize::MAX / crate::protocol::ONE) - 2;
    let buf = HeapBuffer::new(4, 2).start_at(start);
    let mut next = [0u32; 2];
    for round in 0..10u32 {
        for i in 0..3 {
            buf.try_publish(round * 3 + i).unwrap();
        }
        for (c, next) in next.iter_mut().enumerate() {
            while let Some(v) = buf.consume(c) {
                assert_eq!(v, *next);
                *next += 1;
            }
        }
    }
    assert_eq!(next, [30, 30]);
    assert_eq!(
        buf.write_position(),
        27,
        "wrapped: 30 values after position 2^60 - 3 (2^28 - 3 on 32-bit targets)"
    );
}

#[test]
fn state_reports_the_slowest_consumer() {
    let buf: InlineBuffer<u8, 8, 3> = InlineBuffer::new();
    for i in 0..5 {
        buf.try_publish(i).unwrap();
    }
    buf.consume(0);
    buf.consume(2);
    buf.consume(2);
    let state = buf.state();
    assert_eq!(state.slowest_consumer, Some(1));
    assert_eq!(state.held, 5);
    assert_eq!((state.capacity, state.consumers, state.write_position), (8, 3, 5));
}

#[test]
fn debug_shows_shape_and_positions() {
    let buf: InlineBuffer<u8, 8, 2> = InlineBuffer::new();
    buf.try_publish(1).unwrap();
    buf.consume(1);
    let text = std::format!("{buf:?}");
    assert_eq!(
        text,
        "Buffer { capacity: 8, consumer_count: 2, write_position: 1, read_positions: [0, 1] }"
    );
}

#[test]
fn values_vec_roundtrip() {
    // Heap payloads moved through: the buffer neither leaks nor double-frees them (Miri checks).
    let buf = HeapBuffer::new(2, 2);
    let mut got: Vec<Vec<u8>> = Vec::new();
    for i in 0..6u8 {
        buf.try_publish(std::vec![i; 3]).unwrap();
        got.push(buf.consume(0).unwrap());
        got.push(buf.consume(1).unwrap());
    }
    assert_eq!(got.len(), 12);
    assert!(got.chunks(2).enumerate().all(|(i, pair)| pair[0] == pair[1] && pair[0][0] == i as u8));
}

#[test]
fn handles_hold_their_roles_until_dropped() {
    let buf = HeapBuffer::new(4, 2);
    let mut publisher = buf.publisher().unwrap();
    assert!(buf.publisher().is_none());
    assert_eq!(buf.try_publish(9), Err(TryPublishError::Busy(9)));
    publisher.try_publish(1).unwrap();
    let mut subscriber = buf.subscriber(0).unwrap();
    assert!(buf.subscriber(0).is_none());
    assert_eq!(buf.try_consume(0), Err(TryConsumeError::Busy));
    assert_eq!(subscriber.try_recv(), Ok(1));
    assert_eq!(buf.read_position(0), 1, "position visible while the subscriber lives");
    publisher.try_publish(2).unwrap();
    // Another handle on the index-API seat 1 continues from its position.
    let mut other = buf.subscriber(1).unwrap();
    assert_eq!(other.try_recv(), Ok(1));
    assert_eq!(other.lag(), 1);
    drop((publisher, subscriber));
    // The subscriber handed index-API seat 0 back still subscribed (nothing published meanwhile
    // is lost); dropping the publisher closed the buffer.
    assert_eq!(buf.try_consume(0), Ok(2));
    assert_eq!(buf.try_consume(0), Err(TryConsumeError::Closed));
    assert_eq!(buf.try_publish(3), Err(TryPublishError::Closed(3)));
    assert_eq!(other.try_recv(), Ok(2));
    assert_eq!(other.try_recv(), Err(TryConsumeError::Closed));
    assert!(buf.publisher().is_none(), "closed for good");
}

#[test]
fn handles_deliver_in_order_with_backpressure() {
    let buf: InlineBuffer<u32, 4, 2> = InlineBuffer::new();
    let mut publisher = buf.publisher().unwrap();
    let mut subs = [buf.subscriber(0).unwrap(), buf.subscriber(1).unwrap()];
    let mut next = [0u32; 2];
    let mut value = 0u32;
    while value < 100 {
        match publisher.try_publish(value) {
            Ok(()) => value += 1,
            Err(err) => {
                assert!(err.is_full());
                assert_eq!(err.into_inner(), value);
                // Drain consumer 0 fully, consumer 1 by one: backpressure follows the slowest.
                while let Ok(v) = subs[0].try_recv() {
                    assert_eq!(v, next[0]);
                    next[0] += 1;
                }
                assert_eq!(subs[1].try_recv(), Ok(next[1]));
                next[1] += 1;
            }
        }
    }
    for (sub, next) in subs.iter_mut().zip(&mut next) {
        while let Ok(v) = sub.try_recv() {
            assert_eq!(v, *next);
            *next += 1;
        }
    }
    assert_eq!(next, [100, 100]);
}

#[test]
fn read_guard_reads_in_place_and_the_last_release_drops() {
    let counters = Counters::new();
    let buf = HeapBuffer::new(4, 2);
    buf.try_publish(counters.make(4)).unwrap();
    let mut a = buf.subscriber(0).unwrap();
    let mut b = buf.subscriber(1).unwrap();
    {
        let guard = a.try_read().unwrap();
        assert_eq!(guard.value, 4);
    }
    assert_eq!(counters.drops.get(), 0, "consumer 1 has not read it");
    {
        let guard = b.try_read().unwrap();
        assert_eq!(guard.value, 4);
        assert_eq!(counters.drops.get(), 0, "not while borrowed");
    }
    assert_eq!((counters.drops.get(), counters.clones.get()), (1, 0), "no clone, one drop");
    assert!(a.try_read().is_err());
    assert_eq!((buf.read_position(0), buf.read_position(1)), (1, 1));
}

#[test]
fn batches_publish_and_consume_with_one_position_update() {
    let buf: InlineBuffer<u32, 8, 2> = InlineBuffer::new();
    let mut publisher = buf.publisher().unwrap();
    let mut values = 0..20;
    assert_eq!(publisher.publish_iter(&mut values), 8);
    assert_eq!(publisher.publish_iter(&mut values), 0, "full");
    let mut sub0 = buf.subscriber(0).unwrap();
    let mut got = Vec::new();
    assert_eq!(sub0.recv_batch(3, |v| got.push(v)), Ok(3));
    assert_eq!(sub0.recv_batch(usize::MAX, |v| got.push(v)), Ok(5));
    assert_eq!(sub0.recv_batch(usize::MAX, |v| got.push(v)), Err(TryConsumeError::Empty));
    assert_eq!(got, (0..8).collect::<Vec<_>>());
    assert_eq!(publisher.publish_iter(&mut values), 0, "consumer 1 still holds every slot");
    let mut sub1 = buf.subscriber(1).unwrap();
    assert_eq!(sub1.recv_batch(2, drop), Ok(2));
    assert_eq!(publisher.publish_iter(&mut values), 2);
    assert_eq!(values.next(), Some(10), "nothing taken from the iterator was lost");
}

#[test]
fn zero_consumers_the_index_api_drops_and_a_publisher_gets_the_value_back() {
    let counters = Counters::new();
    let buf = HeapBuffer::new(2, 0);
    buf.try_publish(counters.make(0)).unwrap();
    assert_eq!((counters.drops.get(), buf.write_position()), (1, 1), "the seed's behaviour");
    let mut publisher = buf.publisher().unwrap();
    let err = publisher.try_publish(counters.make(1)).unwrap_err();
    assert!(err.is_disconnected());
    assert_eq!(err.into_inner().value, 1);
    let mut values = (2..5).map(|i| counters.make(i));
    assert_eq!(publisher.publish_iter(&mut values), 0);
    assert_eq!(values.next().map(|v| v.value), Some(2), "nothing taken from the iterator");
    assert_eq!(buf.write_position(), 1);
}

#[test]
fn a_panicking_destructor_while_the_buffer_drops_does_not_leak_the_rest() {
    #[derive(Clone)]
    #[allow(dead_code)] // the `Counted` field counts its drop
    struct Bomb(Counted, bool);
    impl Drop for Bomb {
        fn drop(&mut self) {
            assert!(!self.1, "boom");
        }
    }
    let counters = Counters::new();
    let buf = HeapBuffer::new(4, 1);
    buf.try_publish(Bomb(counters.make(0), false)).unwrap();
    buf.try_publish(Bomb(counters.make(1), true)).unwrap();
    buf.try_publish(Bomb(counters.make(2), false)).unwrap();
    assert!(catch_unwind(AssertUnwindSafe(|| drop(buf))).is_err());
    assert_eq!(counters.alive(3), 0, "the values after the panicking one were dropped too");
}

#[test]
fn recv_batch_survives_a_panicking_callback() {
    let counters = Counters::new();
    let buf = HeapBuffer::new(4, 1);
    for i in 0..3 {
        buf.try_publish(counters.make(i)).unwrap();
    }
    let mut sub = buf.subscriber(0).unwrap();
    let result = catch_unwind(AssertUnwindSafe(|| {
        sub.recv_batch(usize::MAX, |v| assert_ne!(v.value, 1, "callback refuses 1"))
    }));
    assert!(result.is_err());
    // Values 0 and 1 were delivered (1 to a callback that panicked); 2 comes next.
    assert_eq!(sub.try_recv().map(|v| v.value).ok(), Some(2));
    drop(sub);
    drop(buf);
    assert_eq!(counters.alive(3), 0);
}

#[cfg(feature = "heapless")]
#[test]
fn drain_into_a_heapless_vec() {
    let buf: InlineBuffer<u8, 8, 1> = InlineBuffer::new();
    buf.publisher().unwrap().publish_iter(0..8);
    let mut sub = buf.subscriber(0).unwrap();
    let mut out: heapless::Vec<u8, 5> = heapless::Vec::new();
    assert_eq!(sub.drain_into(&mut out), Ok(5));
    assert_eq!(sub.drain_into(&mut out), Ok(0), "full");
    out.clear();
    assert_eq!(sub.drain_into(&mut out), Ok(3));
    assert_eq!(out, [5, 6, 7]);
}

#[test]
fn subscribers_join_at_the_current_position_and_leaving_gives_back_their_slots() {
    let counters = Counters::new();
    let buf = HeapBuffer::with_seats(4, 2);
    let mut publisher = buf.publisher().unwrap();
    assert_eq!(publisher.subscribers(), 0);
    let mut early = buf.subscribe().unwrap();
    publisher.try_publish(counters.make(0)).unwrap();
    let mut late = buf.subscribe().unwrap();
    assert_eq!(buf.subscribe().unwrap_err(), crate::NoFreeSeat { seats: 2 });
    assert_eq!(late.try_recv().map(|v| v.value), Err(TryConsumeError::Empty), "joins after 0");
    publisher.try_publish(counters.make(1)).unwrap();
    assert_eq!(publisher.subscribers(), 2);
    assert_eq!(late.try_recv().map(|v| v.value), Ok(1));
    assert_eq!(early.try_recv().map(|v| v.value), Ok(0));
    publisher.try_publish(counters.make(2)).unwrap();
    publisher.try_publish(counters.make(3)).unwrap();
    // `late` leaves with 2 and 3 unread; `early` still has 1, 2, 3 to read.
    drop(late);
    assert_eq!(counters.alive(4), 3, "0 and 1 were read by both; 2 and 3 still held");
    publisher.try_publish(counters.make(4)).unwrap();
    assert_eq!(publisher.subscribers(), 1);
    let got: Vec<u32> = core::iter::from_fn(|| early.try_recv().ok()).map(|v| v.value).collect();
    assert_eq!(got, [1, 2, 3, 4]);
    assert_eq!(counters.alive(5), 0, "each value dropped exactly once");
    // The seat is free again, and with every subscriber gone the publisher learns it.
    drop(early);
    let err = publisher.try_publish(counters.make(5)).unwrap_err();
    assert!(err.is_disconnected());
    assert!(buf.subscribe().is_ok());
}

#[test]
fn a_leaving_subscriber_unblocks_a_full_buffer() {
    let buf: InlineBuffer<u32, 2, 2> = InlineBuffer::with_seats();
    let mut publisher = buf.publisher().unwrap();
    let mut reader = buf.subscribe().unwrap();
    let stalled = buf.subscribe().unwrap();
    publisher.try_publish(0).unwrap(); // counts both seats (their joins applied first)
    publisher.try_publish(1).unwrap();
    assert_eq!(reader.try_recv(), Ok(0));
    assert!(publisher.try_publish(2).unwrap_err().is_full());
    assert_eq!(buf.slowest_consumer(), Some(1), "the stalled one holds slot 0");
    drop(stalled);
    publisher.try_publish(2).unwrap();
    assert_eq!((reader.try_recv(), reader.try_recv()), (Ok(1), Ok(2)));
}

#[test]
fn a_detached_subscriber_is_told_what_it_missed_and_can_rejoin() {
    let counters = Counters::new();
    let buf = HeapBuffer::new(2, 2);
    let mut publisher = buf.publisher().unwrap();
    let mut fast = buf.subscriber(0).unwrap();
    let mut slow = buf.subscriber(1).unwrap();
    slow.set_evictable(true);
    for i in 0..2 {
        publisher.try_publish(counters.make(i)).unwrap();
        assert_eq!(fast.try_recv().map(|v| v.value), Ok(i));
    }
    assert_eq!(slow.lag(), 2);
    assert!(buf.detach(1));
    assert!(!buf.detach(1), "already detached");
    assert_eq!(buf.subscribed(), 1);
    // The producer gives back the slow one's units before its next value: 0 and 1 are dropped.
    publisher.try_publish(counters.make(2)).unwrap();
    assert_eq!(counters.alive(3), 1);
    assert_eq!(slow.try_recv().map(|v| v.value), Err(TryConsumeError::Detached { missed: 3 }));
    assert!(slow.rejoin());
    assert!(!slow.rejoin(), "already rejoining");
    assert_eq!(slow.try_recv().map(|v| v.value), Err(TryConsumeError::Empty));
    publisher.try_publish(counters.make(3)).unwrap();
    assert_eq!(slow.try_recv().map(|v| v.value), Ok(3));
    assert_eq!(fast.try_recv().map(|v| v.value), Ok(2));
    assert_eq!(fast.try_recv().map(|v| v.value), Ok(3));
    assert_eq!(counters.alive(4), 0);
}

#[test]
fn a_value_read_in_place_stays_valid_when_its_reader_is_detached() {
    let counters = Counters::new();
    let buf = HeapBuffer::new(2, 1);
    let mut publisher = buf.publisher().unwrap();
    let mut sub = buf.subscriber(0).unwrap();
    sub.set_evictable(true);
    publisher.try_publish(counters.make(7)).unwrap();
    publisher.try_publish(counters.make(8)).unwrap();
    let guard = sub.try_read().unwrap();
    buf.detach(0);
    // The producer gives back value 8 (never claimed) but not 7, which the guard still reads.
    assert_eq!(publisher.subscribers(), 0);
    assert_eq!(counters.alive(2), 1);
    assert_eq!(guard.value, 7);
    drop(guard);
    assert_eq!(counters.alive(2), 0, "the guard's release dropped 7");
    assert!(matches!(sub.try_recv(), Err(TryConsumeError::Detached { missed: 1 })));
}

#[test]
fn the_lag_limit_detaches_a_stalled_consumer_instead_of_blocking() {
    let buf = HeapBuffer::new(4, 3);
    let mut publisher = buf.publisher().unwrap();
    publisher.set_lag_limit(Some(2));
    let mut subs: Vec<_> = (0..3).map(|i| buf.subscriber(i).unwrap()).collect();
    for sub in &mut subs {
        sub.set_evictable(true);
    }
    for v in 0..20u32 {
        publisher.try_publish(v).unwrap();
        assert_eq!(subs[0].try_recv(), Ok(v));
        if v % 2 == 0 {
            // Two behind at most: keeps up well enough.
            while subs[1].try_recv().is_ok() {}
        }
    }
    assert_eq!(subs[2].try_recv(), Err(TryConsumeError::Detached { missed: 20 }));
    assert!(subs[1].try_recv().is_ok() || subs[1].lag() == 0, "never detached");
    // Without a limit, backpressure as before.
    publisher.set_lag_limit(None);
    for v in 20..24 {
        publisher.try_publish(v).unwrap();
    }
    assert!(publisher.try_publish(24).unwrap_err().is_full());
}

#[test]
fn the_index_api_detaches_and_rejoins_too() {
    let buf: InlineBuffer<u32, 2, 2> = InlineBuffer::new();
    buf.try_publish(1).unwrap();
    buf.try_publish(2).unwrap();
    assert_eq!(buf.detach_lagging(1), 2);
    assert_eq!(buf.state().subscribed, 0);
    assert_eq!(buf.try_consume(0), Err(TryConsumeError::Detached { missed: 2 }));
    assert!(buf.rejoin(0));
    assert_eq!(buf.try_consume(0), Err(TryConsumeError::Empty), "joining");
    buf.try_publish(3).unwrap();
    assert_eq!(buf.try_consume(0), Ok(3));
    assert_eq!(buf.try_consume(0), Err(TryConsumeError::Empty));
    assert_eq!(buf.state().subscribed, 1);
}

#[test]
fn closing_lets_consumers_drain_then_says_closed() {
    let buf = HeapBuffer::new(4, 2);
    let mut publisher = buf.publisher().unwrap();
    let mut sub = buf.subscriber(0).unwrap();
    publisher.publish_iter(0..3u8);
    drop(publisher);
    assert!(buf.is_closed() && buf.state().closed);
    assert_eq!(sub.recv_batch(2, drop), Ok(2));
    assert_eq!(sub.try_recv(), Ok(2));
    assert_eq!(sub.try_recv(), Err(TryConsumeError::Closed));
    assert!(sub.is_ready(), "a closed buffer wakes waiters");
    assert_eq!(buf.consume(1), Some(0));
    assert_eq!(buf.try_publish(9), Err(TryPublishError::Closed(9)));
    // With no producer left, a detach takes effect at once (its caller applies it).
    assert!(buf.detach(1));
    assert_eq!(buf.try_consume(1), Err(TryConsumeError::Detached { missed: 2 }));
    assert_eq!(buf.state().held, 0, "seat 1's values were given back");
    // A seat that asks to join after the close is told so, not left waiting for ever.
    assert!(buf.rejoin(1));
    assert_eq!(buf.try_consume(1), Err(TryConsumeError::Closed));
    drop(sub); // handed back still subscribed
    assert_eq!(buf.try_consume(0), Err(TryConsumeError::Closed));
    buf.detach(0);
    assert_eq!(buf.subscribe().unwrap().try_recv(), Err(TryConsumeError::Closed));
}

#[test]
fn a_panicking_clone_after_the_claim_gives_the_position_back() {
    #[derive(Debug, PartialEq)]
    struct Fragile(u32);
    impl Clone for Fragile {
        fn clone(&self) -> Self {
            assert_ne!(self.0, 1, "clone refuses 1");
            Fragile(self.0)
        }
    }
    let buf = HeapBuffer::new(4, 2);
    let mut sub = buf.subscriber(0).unwrap();
    buf.try_publish(Fragile(1)).unwrap();
    assert!(catch_unwind(AssertUnwindSafe(|| sub.try_recv())).is_err());
    assert_eq!(buf.read_position(0), 0, "given back");
    assert_eq!(sub.try_read().map(|v| v.0), Ok(1), "the same value comes again");
}

#[test]
fn a_subscriber_detached_before_it_learned_its_position_reads_nothing() {
    let counters = Counters::new();
    let buf = HeapBuffer::with_seats(4, 1);
    let mut publisher = buf.publisher().unwrap();
    let mut sub = buf.subscribe().unwrap();
    publisher.try_publish(counters.make(0)).unwrap(); // counts `sub` from position 0
    buf.detach(0);
    assert_eq!(sub.try_recv().map(|v| v.value), Err(TryConsumeError::Detached { missed: 1 }));
    publisher.try_publish(counters.make(1)).unwrap_err(); // gives back its unit: nobody left
    assert_eq!(counters.alive(2), 0, "value 0 dropped once, by the producer");
}

#[test]
fn a_detached_subscriber_that_read_everything_is_told_at_once() {
    let buf = HeapBuffer::with_seats(4, 2);
    let mut publisher = buf.publisher().unwrap();
    let mut sub = buf.subscribe().unwrap();
    publisher.try_publish(1).unwrap();
    assert_eq!(sub.try_recv(), Ok(1));
    assert!(!sub.is_ready());
    buf.detach(sub.index());
    // Nothing new is published (it was the only subscriber): it must still learn it.
    assert!(sub.is_ready());
    assert_eq!(sub.try_recv(), Err(TryConsumeError::Detached { missed: 0 }));
    assert!(matches!(sub.try_read(), Err(TryConsumeError::Detached { .. })));
    assert_eq!(sub.recv_batch(8, drop), Err(TryConsumeError::Detached { missed: 0 }));
    assert!(publisher.try_publish(2).unwrap_err().is_disconnected());
    assert!(sub.rejoin());
    assert_eq!(sub.lag(), 0);
    assert!(!sub.is_ready(), "joining: nothing yet");
    publisher.try_publish(3).unwrap();
    assert!(sub.is_ready());
    assert_eq!(sub.try_recv(), Ok(3));
}

#[test]
fn a_short_lived_handle_on_an_index_seat_loses_nothing() {
    let buf: InlineBuffer<u32, 8, 1> = InlineBuffer::new();
    buf.publisher().unwrap().publish_iter(1..=3);
    let mut got = Vec::new();
    assert_eq!(buf.subscriber(0).unwrap().recv_batch(2, |v| got.push(v)), Ok(2));
    // The handle is gone; the seat is still subscribed, at its position.
    assert_eq!(buf.subscribed(), 1);
    assert_eq!(buf.try_consume(0), Ok(3));
    assert_eq!(got, [1, 2]);
}

#[test]
fn a_panicking_destructor_while_applying_a_detach_gives_the_producer_role_back() {
    #[derive(Clone)]
    struct Bomb(bool);
    impl Drop for Bomb {
        fn drop(&mut self) {
            assert!(!self.0, "boom");
        }
    }
    let buf: InlineBuffer<Bomb, 4, 2> = InlineBuffer::new();
    buf.try_publish(Bomb(true)).ok().unwrap();
    // Consumer 0 reads a clone (the original stays for consumer 1); defuse the clone.
    core::mem::forget(buf.try_consume(0).ok().unwrap());
    buf.detach(1);
    // Giving back consumer 1's unit drops the original, which panics.
    assert!(catch_unwind(AssertUnwindSafe(|| buf.try_publish(Bomb(false)))).is_err());
    // The role was given back: the next publish goes through.
    assert!(buf.try_publish(Bomb(false)).is_ok());
    assert!(buf.publisher().is_some());
}

#[test]
fn distances_are_right_at_the_maximum_capacity() {
    use crate::protocol::{available, behind, since, FLAGS, ONE};
    // A consumer `MAX_CAPACITY` behind (a full buffer of that size, which cannot be allocated
    // here), across the wrap of the position counters too.
    let cap = crate::MAX_CAPACITY;
    for write in [cap, 3 * cap, 0, 7, usize::MAX & !FLAGS] {
        let write = write.wrapping_mul(ONE) & !FLAGS;
        let seat = write.wrapping_sub(cap * ONE);
        assert_eq!(behind(write, seat, cap), cap, "write {write:#x}");
        assert_eq!(available(write, seat), cap);
        assert_eq!(since(write, seat), cap as u64);
        // A seat one ahead of a stale write word is caught up, not `2^k` behind.
        assert_eq!(behind(write, write.wrapping_add(ONE), cap), 0);
        // A write word behind the position publishes nothing.
        assert_eq!(available(write, write.wrapping_add(ONE)), 0);
        // A stale write word behind a peeked position missed nothing; a long detach's count
        // is kept up to three quarters of the wrap.
        assert_eq!(since(write, write.wrapping_add(ONE)), 0);
        assert_eq!(since(write, write.wrapping_add(cap * ONE)), 0);
        let half = 1usize << (usize::BITS - 5);
        assert_eq!(since(write, write.wrapping_sub(half * ONE)), half as u64);
        assert_eq!(since(write, write.wrapping_add((cap + 1) * ONE)), 3 * cap as u64 - 1);
    }
}

#[test]
fn a_usize_model_of_a_32_bit_target_at_the_maximum() {
    // The same arithmetic in 32 bits, as `u32`: the maximum there is 2^26 slots, positions
    // wrap at 2^28.
    const BITS: u32 = 32;
    const ONE: u32 = 16;
    let cap: u32 = 1 << (BITS - 6);
    let behind = |write: u32, seat: u32| {
        let diff = write.wrapping_sub(seat) / ONE;
        if diff <= cap {
            diff
        } else {
            0
        }
    };
    let available = |write: u32, seat: u32| {
        let ahead = write.wrapping_sub(seat);
        if (ahead as i32) > 0 {
            ahead / ONE
        } else {
            0
        }
    };
    for write in [0u32, cap * ONE, !15] {
        let seat = write.wrapping_sub(cap * ONE);
        assert_eq!(behind(write, seat), cap);
        assert_eq!(available(write, seat), cap);
        assert_eq!(available(write, write.wrapping_add(ONE)), 0);
    }
    assert_eq!(crate::MAX_CAPACITY, 1 << (usize::BITS - 6), "the same rule as in 32 bits");
}

/// `seat_state` tells each seat's status, position and lag from outside, for index-API
/// consumers, tethered and evictable subscribers, across a detach, its application and a
/// rejoin.
#[test]
fn seat_state_follows_every_kind_of_consumer() {
    use crate::{SeatState, SeatStatus};
    let view = |state: SeatState| (state.status, state.position, state.lag);

    // Index API: all seats subscribed from position 0.
    let buf = HeapBuffer::new(4, 2);
    buf.try_publish(1u32).unwrap();
    buf.try_publish(2).unwrap();
    buf.consume(0);
    assert_eq!(view(buf.seat_state(0)), (SeatStatus::Subscribed, 1, 1));
    assert_eq!(view(buf.seat_state(1)), (SeatStatus::Subscribed, 0, 2));
    assert!(buf.detach(1));
    assert_eq!(view(buf.seat_state(1)), (SeatStatus::Detached, 0, 2), "requested");
    buf.try_publish(3).unwrap(); // the producer applies the detach
    assert_eq!(buf.seat_state(1).status, SeatStatus::Vacant, "applied: free for a rejoin");
    assert!(buf.rejoin(1));
    assert_eq!(view(buf.seat_state(1)), (SeatStatus::Joining, 3, 0));
    buf.try_publish(4).unwrap();
    assert_eq!(view(buf.seat_state(1)), (SeatStatus::Subscribed, 3, 1));
    assert_eq!(buf.seat_state(0).index, 0);

    // A tethered subscriber publishes its position for observers.
    let buf: InlineBuffer<u32, 4, 2> = InlineBuffer::new();
    let mut tethered = buf.subscriber(0).unwrap();
    let mut publisher = buf.publisher().unwrap();
    publisher.publish_iter(0..3);
    assert_eq!(tethered.try_recv(), Ok(0));
    assert_eq!(view(buf.seat_state(0)), (SeatStatus::Subscribed, 1, 2));
    assert_eq!(buf.seat_state(0).lag, tethered.lag());

    // Evictable subscribers: joining, subscribed, detached while held, left.
    let buf: InlineBuffer<u32, 4, 2> = InlineBuffer::with_seats();
    let mut publisher = buf.publisher().unwrap();
    assert_eq!(view(buf.seat_state(0)), (SeatStatus::Vacant, 0, 0));
    let mut subscriber = buf.subscribe().unwrap();
    assert_eq!(buf.seat_state(0).status, SeatStatus::Joining);
    publisher.try_publish(7).unwrap();
    assert_eq!(view(buf.seat_state(0)), (SeatStatus::Subscribed, 0, 1));
    assert!(buf.detach(0));
    assert_eq!(publisher.try_publish(8).unwrap_err().into_inner(), 8, "nobody counted");
    assert_eq!(view(buf.seat_state(0)), (SeatStatus::Detached, 0, 1), "held, not told");
    assert_eq!(subscriber.try_recv(), Err(TryConsumeError::Detached { missed: 1 }));
    assert_eq!(buf.seat_state(0).status, SeatStatus::Detached, "told, not rejoined");
    drop(subscriber);
    assert_eq!(buf.seat_state(0).status, SeatStatus::Vacant, "left");
}
