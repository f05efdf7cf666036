//! The channel on a tokio runtime: a task publishes `Arc` events to a fast subscriber, a
//! subscriber that stalls, and a late one that joins halfway; a monitor task watches every seat's
//! lag from outside and detaches the stalled subscriber when it holds the publisher back. The
//! fast one waits in `tokio::select!` against a timer: dropping a pending `recv` loses nothing,
//! and the example checks that every subscriber got every value it was owed, in order. Exits by
//! itself in well under a second.
//!
//! ```sh
//! cargo run --example tokio
//! ```

use std::sync::Arc;
use std::time::Duration;

use multicast_buffer::{channel, RecvError, SeatStatus, Subscriber};

/// Events published.
const EVENTS: u64 = 2_000;
/// Slots in the channel.
const CAPACITY: usize = 64;
/// What the stalled subscriber reads before it stalls.
const BEFORE_STALL: u64 = 10;

/// An event fanned out to every subscriber: one allocation, shared.
#[derive(Debug)]
struct Event {
    id: u64,
    _payload: String,
}

#[tokio::main]
async fn main() {
    let (mut publisher, subscribers) = channel::<Arc<Event>>(CAPACITY, 4);
    let mut fast = subscribers.subscribe().expect("a free seat");
    let mut stalled = subscribers.subscribe().expect("a free seat");
    let stalled_seat = stalled.index();

    // Waits in `select!` against a timer; a `recv` dropped when the timer wins loses nothing.
    let fast = tokio::spawn(async move {
        let (mut next, mut timeouts) = (0, 0u64);
        loop {
            tokio::select! {
                got = fast.recv() => match got {
                    Ok(event) => {
                        assert_eq!(event.id, next, "every value, in order");
                        next += 1;
                    }
                    Err(RecvError::Closed) => return (next, timeouts),
                    Err(err) => panic!("fast subscriber: {err}"),
                },
                () = tokio::time::sleep(Duration::from_micros(50)) => timeouts += 1,
            }
        }
    });

    // Reads a few, stalls until it is detached, then rejoins and reads to the end.
    let stalled = tokio::spawn({
        let subscribers = subscribers.clone();
        async move {
            for id in 0..BEFORE_STALL {
                assert_eq!(stalled.recv().await.expect("a value").id, id);
            }
            // Stalls: holds the publisher back until the monitor detaches it.
            while subscribers.seat_state(stalled_seat).status != SeatStatus::Detached {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let missed = match stalled.recv().await {
                Err(RecvError::Detached { missed }) => missed,
                other => panic!("the stalled subscriber was not detached: {other:?}"),
            };
            assert!(stalled.rejoin());
            let tail = read_to_end(&mut stalled).await;
            (missed, tail)
        }
    });

    // Watches every seat from outside and detaches a subscribed one that stays a full buffer
    // behind (the publisher waits for it) without moving for 20 ms, as a server would a stalled
    // client; a busy subscriber may fall a buffer behind too, but it moves.
    let monitor = tokio::spawn({
        let subscribers = subscribers.clone();
        async move {
            let mut stuck = [(u64::MAX, 0); 4]; // per seat: position, checks without moving
            let mut detached = Vec::new();
            while !subscribers.is_closed() {
                for seat in subscribers.seat_states() {
                    let (position, checks) = &mut stuck[seat.index];
                    if seat.status != SeatStatus::Subscribed || seat.lag < CAPACITY {
                        *checks = 0;
                        continue;
                    }
                    *checks = if seat.position == *position { *checks + 1 } else { 0 };
                    *position = seat.position;
                    if *checks == 20 && subscribers.detach(seat.index) {
                        detached.push((seat.index, seat.position));
                    }
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            detached
        }
    });

    let mut late = None;
    for id in 0..EVENTS {
        if id == EVENTS / 2 {
            // Joins halfway: receives every event from the next one on.
            let mut subscriber = subscribers.subscribe().expect("a free seat");
            late = Some(tokio::spawn(async move { read_to_end(&mut subscriber).await }));
        }
        let event = Arc::new(Event { id, _payload: format!("event {id}") });
        // Waits for room while the slowest subscriber is a full buffer behind.
        publisher.publish(event).await.expect("someone is subscribed");
        if id % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(1)).await; // a stream, not one burst
        }
    }
    drop(publisher); // closes: the subscribers drain what is left, then get `Closed`

    let (fast_got, timeouts) = fast.await.expect("fast subscriber");
    let (missed, stalled_tail) = stalled.await.expect("stalled subscriber");
    let late = late.expect("spawned").await.expect("late subscriber");
    let detached = monitor.await.expect("monitor");

    assert_eq!(fast_got, EVENTS);
    assert_eq!(detached, [(stalled_seat, BEFORE_STALL)]);
    assert!(missed >= CAPACITY as u64, "it was a full buffer behind when detached");
    check_tail("stalled subscriber after rejoining", &stalled_tail);
    check_tail("late subscriber", &late);
    assert_eq!(late.first(), Some(&(EVENTS / 2)));
    println!(
        "fast: {fast_got} events ({timeouts} timer wake-ups, nothing lost); \
         stalled: detached after {BEFORE_STALL} (missed {missed}), then {} more; \
         late: {} events from event {}",
        stalled_tail.len(),
        late.len(),
        EVENTS / 2
    );
}

/// Every remaining event's id, until the channel closes.
async fn read_to_end(subscriber: &mut Subscriber<Arc<Event>>) -> Vec<u64> {
    let mut ids = Vec::new();
    loop {
        match subscriber.recv().await {
            Ok(event) => ids.push(event.id),
            Err(RecvError::Closed) => return ids,
            Err(err) => panic!("{err}"),
        }
    }
}

/// A tail of the stream: consecutive ids up to the last event.
fn check_tail(who: &str, ids: &[u64]) {
    assert!(ids.windows(2).all(|pair| pair[1] == pair[0] + 1), "{who}: in order, no gaps");
    assert!(ids.is_empty() || ids.last() == Some(&(EVENTS - 1)), "{who}: to the end");
}
