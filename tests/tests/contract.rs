//! The corners of the contract that an adversarial review and ports of peer crates' suites
//! found broken (issue "Contract"): each test failed on the code before its fix.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};

use multicast_buffer_core::{HeapBuffer, InlineBuffer, Subscriber, TryConsumeError};
use multicast_buffer_tests::Counters;

/// An iterator that yields `ok` values and then panics.
fn panicking_after(ok: usize) -> impl Iterator<Item = String> {
    (0..).map(move |i| {
        assert!(i < ok, "the iterator panics on item {i}");
        format!("value {i}")
    })
}

/// A panicking iterator in `publish_iter` must leave the buffer consistent: what it wrote before
/// the panic is published, and nobody is ever seated at a position that was not published (the
/// code before the fix seated a new subscriber there, and it read an uninitialised slot).
#[test]
fn a_panicking_iterator_publishes_what_it_wrote_and_seats_nobody_in_the_future() {
    let buf = HeapBuffer::<String>::with_seats(4, 2);
    let mut publisher = buf.publisher().unwrap();
    let mut first = buf.subscribe().unwrap();
    assert_eq!(publisher.subscribers(), 1);
    let unwound = catch_unwind(AssertUnwindSafe(|| publisher.publish_iter(panicking_after(1))));
    assert!(unwound.is_err());
    assert_eq!(buf.write_position(), 1, "the value written before the panic is published");
    let mut second = buf.subscribe().unwrap();
    assert_eq!(publisher.subscribers(), 2);
    assert_eq!(second.try_recv(), Err(TryConsumeError::Empty), "nothing after its join yet");
    assert_eq!(first.try_recv().as_deref(), Ok("value 0"));
    publisher.try_publish("next".into()).unwrap();
    assert_eq!(second.try_recv().as_deref(), Ok("next"));
    assert_eq!(first.try_recv().as_deref(), Ok("next"));
}

/// The same through the index API's `rejoin`, which seats an index at the producer's position.
#[test]
fn a_panicking_iterator_then_a_rejoin_seats_the_index_at_a_published_position() {
    let buf = HeapBuffer::<String>::new(4, 2);
    let mut publisher = buf.publisher().unwrap();
    assert!(buf.detach(1));
    assert_eq!(publisher.subscribers(), 1);
    assert!(catch_unwind(AssertUnwindSafe(|| publisher.publish_iter(panicking_after(1)))).is_err());
    assert!(buf.rejoin(1));
    assert_eq!(publisher.subscribers(), 2);
    assert_eq!(buf.try_consume(1), Err(TryConsumeError::Empty));
    assert_eq!(buf.try_consume(0).as_deref(), Ok("value 0"));
    assert_eq!(buf.try_consume(0), Err(TryConsumeError::Empty));
}

/// Closing applies what subscribers that left asked for: the remaining reader gets the values by
/// move, they are released as soon as it has read them, and `state` counts what is held.
#[test]
fn closing_gives_back_what_a_leaver_held() {
    let counters = Counters::new();
    let buf = HeapBuffer::with_seats(4, 2);
    let mut publisher = buf.publisher().unwrap();
    let mut stays = buf.subscribe().unwrap();
    let leaves = buf.subscribe().unwrap();
    assert_eq!(publisher.subscribers(), 2);
    for i in 0..3 {
        publisher.try_publish(counters.make(i)).unwrap();
    }
    drop(leaves);
    drop(publisher); // before any further publish
    assert_eq!(buf.state().held, 3);
    for i in 0..3 {
        let got = stays.try_recv().unwrap();
        assert_eq!(got.value, i);
        drop(got);
        assert_eq!(counters.alive(), (2 - i) as usize, "value {i} released once read");
    }
    assert_eq!(counters.clones(), 0, "the last reader gets each value by move");
    assert_eq!(stays.try_recv().map(|v| v.value), Err(TryConsumeError::Closed));
    assert_eq!(buf.state().held, 0);
}

/// A payload that records the thread that drops it.
#[derive(Clone)]
struct Witness(Arc<Mutex<Vec<ThreadId>>>);

impl Drop for Witness {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(thread::current().id());
    }
}

/// A subscriber that leaves gives back its own slots, on its own thread: the producer (which in
/// firmware may be an interrupt handler) runs no payload destructor for it.
#[test]
fn a_leaving_subscriber_drops_what_only_it_held_on_its_own_thread() {
    let drops = Arc::new(Mutex::new(Vec::new()));
    let buf = Arc::new(HeapBuffer::with_seats(8, 2));
    let mut publisher = buf.publisher().unwrap();
    let mut reader = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
    let leaver = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
    assert_eq!(publisher.subscribers(), 2);
    for _ in 0..3 {
        publisher.try_publish(Witness(Arc::clone(&drops))).ok().unwrap();
    }
    // The reader takes all three (clones), so the leaver holds the last unit of each.
    for _ in 0..3 {
        drop(reader.try_recv().ok().unwrap());
    }
    let reader_thread = thread::current().id();
    drops.lock().unwrap().clear();
    let leaver_thread = thread::spawn(move || {
        drop(leaver);
        thread::current().id()
    })
    .join()
    .unwrap();
    assert_eq!(*drops.lock().unwrap(), [leaver_thread; 3], "dropped by the leaver itself");
    drops.lock().unwrap().clear();
    assert_eq!(publisher.subscribers(), 1);
    publisher.try_publish(Witness(Arc::clone(&drops))).ok().unwrap();
    assert!(drops.lock().unwrap().is_empty(), "the producer dropped nothing");
    drop(reader.try_recv().ok().unwrap());
    assert_eq!(*drops.lock().unwrap(), [reader_thread]);
}

/// From the moment `subscribe()` returns, the subscriber is subscribed: a detach acts on it, and
/// its lag counts what the producer holds for it even before its first call.
#[test]
fn a_new_subscriber_can_be_detached_at_once_and_reports_its_lag() {
    let buf: InlineBuffer<u32, 8, 2> = InlineBuffer::with_seats();
    let mut publisher = buf.publisher().unwrap();
    let mut sub = buf.subscribe().unwrap();
    assert!(buf.detach(sub.index()), "detachable at once");
    assert!(!buf.detach(sub.index()), "already detached");
    assert!(matches!(sub.try_recv(), Err(TryConsumeError::Detached { .. })));
    assert!(publisher.try_publish(1).unwrap_err().is_disconnected());

    let mut late = buf.subscribe().unwrap();
    publisher.try_publish(2).unwrap();
    publisher.try_publish(3).unwrap();
    assert_eq!(late.lag(), 2, "counted from the first value after it subscribed");
    assert_eq!(buf.state().held, 2);
    assert!(sub.rejoin());
    publisher.try_publish(4).unwrap();
    assert_eq!(sub.lag(), 1, "counted again after rejoin");
    assert_eq!(late.lag(), 3);
    assert_eq!(late.try_recv(), Ok(2));
    assert_eq!(sub.try_recv(), Ok(4));
}

/// `recv_batch(usize::MAX, ..)` takes what is available now, not what the subscriber saw at its
/// last look.
#[test]
fn recv_batch_takes_everything_available_now() {
    let buf: InlineBuffer<u32, 16, 1> = InlineBuffer::new();
    let mut publisher = buf.publisher().unwrap();
    let mut sub = buf.subscriber(0).unwrap();
    publisher.publish_iter(0..2);
    assert_eq!(sub.try_recv(), Ok(0));
    publisher.publish_iter(2..6);
    let mut got = Vec::new();
    assert_eq!(sub.recv_batch(usize::MAX, |v| got.push(v)), Ok(5));
    assert_eq!(got, [1, 2, 3, 4, 5]);
}

// From the adversarial review of the protocol: each failed on the code before its fix.

/// An evictable subscriber that has seen more than it read is detached and the producer applies
/// the stop (giving back, and here dropping, the unread values). Switching it to tethered
/// (`set_evictable(false)`) before it looks keeps its stale `seen`, and a tethered hot path reads
/// without claiming: it reads a slot whose unit the producer gave back already (double take of
/// the same value: use after free / double drop).
#[test]
fn switching_to_tethered_after_an_applied_detach_reads_nothing_given_back() {
    let buf = HeapBuffer::<String>::with_seats(4, 1);
    let mut publisher = buf.publisher().unwrap();
    let mut sub = buf.subscribe().unwrap(); // evictable
    assert_eq!(publisher.subscribers(), 1);
    publisher.try_publish("a".to_string()).unwrap();
    publisher.try_publish("b".to_string()).unwrap();
    assert_eq!(sub.try_recv().as_deref(), Ok("a")); // its look saw "b" published too
    assert!(buf.detach(0));
    // The producer applies the stop: gives back (and drops) "b" for the detached seat.
    assert_eq!(publisher.subscribers(), 0);
    sub.set_evictable(false);
    let got = sub.try_recv();
    assert!(matches!(got, Err(TryConsumeError::Detached { .. })), "got {got:?}");
}

/// The same in a shared buffer (2 seats), where the second read clones a dropped value.
#[test]
fn switching_to_tethered_after_an_applied_detach_reads_nothing_given_back_shared() {
    let buf = HeapBuffer::<String>::with_seats(4, 2);
    let mut publisher = buf.publisher().unwrap();
    let mut other = buf.subscribe().unwrap();
    let mut sub = buf.subscribe().unwrap(); // evictable
    assert_eq!(publisher.subscribers(), 2);
    publisher.try_publish("a".to_string()).unwrap();
    publisher.try_publish("b".to_string()).unwrap();
    assert_eq!(sub.try_recv().as_deref(), Ok("a"));
    assert!(buf.detach(sub.index()));
    assert_eq!(publisher.subscribers(), 1);
    // The other consumer reads "b": it is the last holder now, and takes it by move.
    assert_eq!(other.try_recv().as_deref(), Ok("a"));
    assert_eq!(other.try_recv().as_deref(), Ok("b"));
    sub.set_evictable(false);
    let got = sub.try_recv();
    assert!(matches!(got, Err(TryConsumeError::Detached { .. })), "got {got:?}");
}

/// A joining seat counts as subscribed from the moment `subscribe()` returns (as documented).
#[test]
fn a_joining_seat_counts_as_subscribed() {
    let buf = HeapBuffer::<u32>::with_seats(4, 2);
    let _joining = buf.subscribe().unwrap(); // the producer has not counted it yet
    assert_eq!(buf.state().subscribed, 1);
    assert_eq!(buf.subscribed(), 1);
}
