//! A server-shaped use of the channel handles: one publisher thread streaming ticks, consumers
//! that block, one that awaits (feature `async`, on by default), a slow one that the publisher's
//! lag limit detaches (it reports what it missed and rejoins), and subscribers that join and leave
//! while the stream runs. Prints a summary and exits by itself after about two seconds.
//!
//! ```sh
//! cargo run --release --example server
//! ```

use std::thread;
use std::time::{Duration, Instant};

use multicast_buffer::{channel, PublishError, RecvError};

/// How long the publisher streams.
const RUN: Duration = Duration::from_millis(1500);
/// Slots in the buffer.
const CAPACITY: usize = 1024;
/// A subscriber this far behind when the buffer is full is detached.
const LAG_LIMIT: usize = 768;
/// The publisher sends bursts of this many ticks, then pauses for `PAUSE`.
const BURST: u64 = 16;
const PAUSE: Duration = Duration::from_micros(200);

fn main() {
    let (mut publisher, subscribers) = channel::<u64>(CAPACITY, 8);
    publisher.set_lag_limit(Some(LAG_LIMIT));

    // Subscribed before the first tick, so that each sees the stream from the start.
    let mut blocking = subscribers.subscribe().expect("a free seat");
    let mut slow = subscribers.subscribe().expect("a free seat");
    #[cfg(feature = "async")]
    let streaming = subscribers.subscribe().expect("a free seat");

    let producer = thread::spawn(move || {
        let start = Instant::now();
        let (mut tick, mut unheard) = (0u64, 0u64);
        while start.elapsed() < RUN {
            match publisher.publish_blocking(tick, Some(Duration::from_secs(1))) {
                Ok(()) => tick += 1,
                Err(PublishError::Timeout(_)) => eprintln!("publisher: no room for a second"),
                // Every subscriber gone or detached at this instant: the tick comes back.
                Err(_) => unheard += 1,
            }
            if tick % BURST == 0 {
                thread::sleep(PAUSE);
            }
        }
        (tick, unheard) // dropping the publisher closes the channel
    });

    // Blocks in `recv_blocking`; checks that the ticks come in order.
    let blocking = thread::spawn(move || {
        let (mut received, mut previous, mut detaches) = (0u64, None, 0u32);
        loop {
            match blocking.recv_blocking(None) {
                Ok(tick) => {
                    assert!(previous.map_or(true, |p| tick > p), "blocking consumer: out of order");
                    previous = Some(tick);
                    received += 1;
                }
                // Only if the machine stalled this thread for longer than the lag limit.
                Err(RecvError::Detached { .. }) => {
                    detaches += 1;
                    blocking.rejoin();
                }
                Err(RecvError::Closed) => return (received, detaches),
                Err(err) => panic!("blocking consumer: {err}"),
            }
        }
    });

    // Reads a tick every millisecond: soon more than LAG_LIMIT behind, so it is detached when
    // the buffer fills; it reports what it missed and rejoins at the live edge.
    let slow = thread::spawn(move || {
        let (mut received, mut detaches, mut missed_total) = (0u64, 0u32, 0u64);
        loop {
            match slow.recv_blocking(None) {
                Ok(_) => {
                    received += 1;
                    thread::sleep(Duration::from_millis(1));
                }
                Err(RecvError::Detached { missed }) => {
                    detaches += 1;
                    missed_total += missed;
                    if detaches <= 3 {
                        println!("slow consumer: Detached {{ missed: {missed} }}, rejoining");
                    }
                    slow.rejoin();
                }
                Err(RecvError::Closed) => return (received, detaches, missed_total),
                Err(err) => panic!("slow consumer: {err}"),
            }
        }
    });

    // A `Stream` in a task, on a minimal executor.
    #[cfg(feature = "async")]
    let streaming = thread::spawn(move || {
        use futures::StreamExt;
        futures::executor::block_on(async {
            let (mut received, mut previous, mut detaches) = (0u64, None, 0u32);
            let mut stream = streaming;
            while let Some(item) = stream.next().await {
                match item {
                    Ok(tick) => {
                        assert!(
                            previous.map_or(true, |p| tick > p),
                            "async consumer: out of order"
                        );
                        previous = Some(tick);
                        received += 1;
                    }
                    Err(_) => {
                        detaches += 1;
                        stream.rejoin();
                    }
                }
            }
            (received, detaches)
        })
    });

    // Subscribers that join while the stream runs, read a while, and leave.
    let handle = subscribers.clone();
    let churn = thread::spawn(move || {
        let (mut joined, mut received) = (0u32, 0u64);
        while !handle.is_closed() {
            thread::sleep(Duration::from_millis(50));
            let Ok(mut visitor) = handle.subscribe() else { continue };
            joined += 1;
            let mut previous = None;
            for _ in 0..1_000 {
                match visitor.recv_blocking(Some(Duration::from_millis(200))) {
                    Ok(tick) => {
                        // In order from wherever it joined.
                        assert!(previous.map_or(true, |p| tick == p + 1), "visitor: out of order");
                        previous = Some(tick);
                        received += 1;
                    }
                    Err(_) => break,
                }
            }
            // Dropped here: it leaves, and the ticks it did not read no longer wait for it.
        }
        (joined, received)
    });

    let (published, unheard) = producer.join().unwrap();
    let (in_order, blocking_detaches) = blocking.join().unwrap();
    let (slow_received, detaches, missed) = slow.join().unwrap();
    let (joined, visited) = churn.join().unwrap();
    println!("published {published} ticks in {RUN:?} ({unheard} found no subscriber)");
    println!("blocking consumer: {in_order} ticks in order, detached {blocking_detaches} times");
    #[cfg(feature = "async")]
    {
        let (received, detaches) = streaming.join().unwrap();
        println!("async consumer (Stream): {received} ticks in order, detached {detaches} times");
    }
    #[cfg(not(feature = "async"))]
    println!("async consumer: not built (feature `async` is off)");
    println!(
        "slow consumer: {slow_received} ticks read, detached {detaches} times (lag limit \
         {LAG_LIMIT}), {missed} ticks missed"
    );
    println!("{joined} subscribers joined and left while streaming, reading {visited} ticks");
    println!("state at the end: {:?}", subscribers.state());
}
