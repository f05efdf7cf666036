//! Blocking and async waits of the `channel` handles.
//!
//! No timing assertion: waits that should end are given a long park (an hour), so that a missed
//! wake-up shows as a hang, and every cross-thread step runs under a generous deadline (a
//! deadlock guard) that fails the test instead of hanging it. Short sleeps only make it likely
//! that the other thread is already parked; the tests pass either way when the code is right.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use multicast_buffer::{channel, PublishError, RecvError, TryConsumeError, WaitStrategy};

/// How long a step may take before the test calls it a deadlock.
const GUARD: Duration = Duration::from_secs(60);

/// Parks at once, for up to an hour: only a wake-up ends the wait in time.
const WAKE_ONLY: WaitStrategy =
    WaitStrategy { spins: 0, yields: 0, park: Some(Duration::from_secs(3600)) };

/// Runs `f` on a new thread and returns its result, or fails if it takes longer than `GUARD`.
fn guarded<R: Send + 'static>(name: &str, f: impl FnOnce() -> R + Send + 'static) -> Guarded<R> {
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .unwrap();
    Guarded { rx, name: name.into() }
}

struct Guarded<R> {
    rx: mpsc::Receiver<R>,
    name: String,
}

impl<R> Guarded<R> {
    fn join(self) -> R {
        match self.rx.recv_timeout(GUARD) {
            Ok(result) => result,
            Err(err) => {
                panic!("{}: no result within {GUARD:?} ({err}): a lost wake-up?", self.name)
            }
        }
    }
}

/// Gives a spawned thread a moment to reach its wait (not needed for correctness).
fn settle() {
    thread::sleep(Duration::from_millis(20));
}

#[test]
fn blocking_recv_wakes_when_a_value_arrives() {
    let (mut publisher, subscribers) = channel::<u64>(4, 1);
    let mut subscriber = subscribers.subscribe().unwrap();
    subscriber.set_wait_strategy(WAKE_ONLY);
    let reader = guarded("reader", move || subscriber.recv_blocking(None));
    settle();
    publisher.try_publish(42).unwrap();
    assert_eq!(reader.join(), Ok(42));
}

#[test]
fn blocking_recv_times_out_with_every_strategy() {
    let strategies = [
        WaitStrategy::DEFAULT,
        WaitStrategy::SPIN,
        WaitStrategy::YIELD,
        WaitStrategy::PARK,
        WaitStrategy { spins: 0, yields: 0, park: Some(Duration::ZERO) },
        WAKE_ONLY,
    ];
    for strategy in strategies {
        let (_publisher, mut subscribers) = channel::<u64>(4, 1);
        subscribers.set_wait_strategy(strategy);
        let mut subscriber = subscribers.subscribe().unwrap();
        let got = guarded("reader", move || {
            (
                subscriber.recv_blocking(Some(Duration::from_millis(5))),
                subscriber.recv_blocking(Some(Duration::ZERO)),
            )
        })
        .join();
        assert_eq!(got, (Err(RecvError::Timeout), Err(RecvError::Timeout)), "{strategy:?}");
    }
}

#[test]
fn recv_returns_closed_after_the_rest_was_drained() {
    let (mut publisher, subscribers) = channel::<u64>(4, 1);
    let mut subscriber = subscribers.subscribe().unwrap();
    publisher.publish_iter(1..=2);
    drop(publisher);
    assert!(subscribers.is_closed());
    assert_eq!(subscriber.recv_blocking(None), Ok(1));
    assert_eq!(subscriber.recv_blocking(None), Ok(2));
    assert_eq!(subscriber.recv_blocking(None), Err(RecvError::Closed));
    assert_eq!(subscriber.recv_blocking(Some(Duration::ZERO)), Err(RecvError::Closed));
}

#[test]
fn dropping_the_publisher_wakes_a_parked_receiver() {
    let (publisher, subscribers) = channel::<u64>(4, 2);
    let mut subscriber = subscribers.subscribe().unwrap();
    subscriber.set_wait_strategy(WAKE_ONLY);
    let reader = guarded("reader", move || subscriber.recv_blocking(None));
    settle();
    drop(publisher);
    assert_eq!(reader.join(), Err(RecvError::Closed));
}

#[test]
fn publish_blocking_waits_for_room_and_succeeds_after_a_read() {
    let (mut publisher, subscribers) = channel::<String>(1, 1);
    let mut subscriber = subscribers.subscribe().unwrap();
    publisher.set_wait_strategy(WAKE_ONLY);
    publisher.publish_blocking("first".into(), None).unwrap();
    assert!(publisher.try_publish("full".into()).unwrap_err().is_full());
    let writer = guarded("writer", move || {
        let result = publisher.publish_blocking("second".into(), None);
        (result, publisher)
    });
    settle();
    assert_eq!(subscriber.try_recv().as_deref(), Ok("first"));
    let (result, _publisher) = writer.join();
    result.unwrap();
    assert_eq!(subscriber.try_recv().as_deref(), Ok("second"));
}

#[test]
fn publish_blocking_is_woken_by_a_guard_release_and_a_batch() {
    let (mut publisher, subscribers) = channel::<u64>(1, 1);
    let mut subscriber = subscribers.subscribe().unwrap();
    publisher.set_wait_strategy(WAKE_ONLY);
    publisher.try_publish(1).unwrap();
    let writer = guarded("writer", move || {
        let second = publisher.publish_blocking(2, None);
        let third = publisher.publish_blocking(3, None);
        (second, third, publisher)
    });
    settle();
    assert_eq!(*subscriber.try_read().unwrap(), 1); // released when the guard drops
    let mut got = Vec::new();
    while got.is_empty() {
        subscriber.recv_blocking(None).map(|v| got.push(v)).unwrap();
    }
    let (second, third, _publisher) = writer.join();
    second.unwrap();
    third.unwrap();
    subscriber.recv_batch(usize::MAX, |v| got.push(v)).unwrap();
    assert_eq!(got, [2, 3]);
}

#[test]
fn publish_blocking_times_out_and_gives_the_value_back() {
    let (mut publisher, subscribers) = channel::<String>(1, 1);
    let _subscriber = subscribers.subscribe().unwrap();
    publisher.try_publish("held".into()).unwrap();
    for strategy in [WaitStrategy::DEFAULT, WaitStrategy::SPIN, WaitStrategy::YIELD, WAKE_ONLY] {
        publisher.set_wait_strategy(strategy);
        let err =
            publisher.publish_blocking("late".into(), Some(Duration::from_millis(5))).unwrap_err();
        assert!(matches!(err, PublishError::Timeout(_)), "{strategy:?}");
        assert_eq!(err.into_inner(), "late");
    }
}

#[test]
fn publish_without_consumers_returns_disconnected_with_the_value() {
    let (mut publisher, subscribers) = channel::<String>(4, 2);
    let err = publisher.publish_blocking("nobody yet".into(), None).unwrap_err();
    assert!(matches!(&err, PublishError::Disconnected(v) if v == "nobody yet"));
    // One joins and leaves: nobody again.
    let subscriber = subscribers.subscribe().unwrap();
    publisher.publish_blocking("one".into(), None).unwrap();
    drop(subscriber);
    let err = publisher.publish_blocking("gone".into(), None).unwrap_err();
    assert_eq!(err.into_inner(), "gone");
}

#[test]
fn the_last_consumer_leaving_wakes_a_blocked_publisher_with_disconnected() {
    let (mut publisher, subscribers) = channel::<String>(1, 1);
    let subscriber = subscribers.subscribe().unwrap();
    publisher.set_wait_strategy(WAKE_ONLY);
    publisher.try_publish("held".into()).unwrap();
    let writer = guarded("writer", move || publisher.publish_blocking("blocked".into(), None));
    settle();
    drop(subscriber);
    match writer.join() {
        Err(PublishError::Disconnected(value)) => assert_eq!(value, "blocked"),
        other => panic!("expected Disconnected with the value, got {other:?}"),
    }
}

#[test]
fn a_detach_wakes_a_blocked_publisher() {
    let (mut publisher, subscribers) = channel::<u64>(1, 2);
    let mut fast = subscribers.subscribe().unwrap();
    let mut stalled = subscribers.subscribe().unwrap();
    publisher.set_wait_strategy(WAKE_ONLY);
    publisher.try_publish(1).unwrap();
    assert_eq!((fast.try_recv(), stalled.try_recv()), (Ok(1), Ok(1)));
    publisher.try_publish(2).unwrap();
    assert_eq!(fast.try_recv(), Ok(2));
    let writer = guarded("writer", move || (publisher.publish_blocking(3, None), publisher));
    settle();
    assert!(subscribers.detach(stalled.index()));
    let (result, _publisher) = writer.join();
    result.unwrap();
    assert_eq!(fast.recv_blocking(None), Ok(3));
    assert_eq!(stalled.recv_blocking(None), Err(RecvError::Detached { missed: 2 }));
}

#[test]
fn a_lagging_consumer_gets_detached_from_recv_blocking_and_can_rejoin() {
    let (mut publisher, subscribers) = channel::<u64>(2, 2);
    let mut fast = subscribers.subscribe().unwrap();
    let mut slow = subscribers.subscribe().unwrap();
    publisher.set_lag_limit(Some(1));
    publisher.publish_blocking(0, None).unwrap();
    assert_eq!((fast.recv_blocking(None), slow.recv_blocking(None)), (Ok(0), Ok(0)));
    for v in 1..4 {
        publisher.publish_blocking(v, None).unwrap();
        assert_eq!(fast.recv_blocking(None), Ok(v));
    }
    assert_eq!(slow.recv_blocking(None), Err(RecvError::Detached { missed: 3 }));
    assert!(slow.rejoin());
    publisher.publish_blocking(4, None).unwrap();
    assert_eq!(slow.recv_blocking(None), Ok(4));
    assert_eq!(fast.recv_blocking(None), Ok(4));
}

#[test]
fn a_parked_consumer_is_told_of_its_detach() {
    let (mut publisher, subscribers) = channel::<u64>(4, 2);
    let mut watcher = subscribers.subscribe().unwrap();
    let mut subscriber = subscribers.subscribe().unwrap();
    subscriber.set_wait_strategy(WAKE_ONLY);
    // Counted from the first value on; then caught up.
    publisher.try_publish(0).unwrap();
    assert_eq!((watcher.try_recv(), subscriber.try_recv()), (Ok(0), Ok(0)));
    let index = subscriber.index();
    let reader = guarded("reader", move || subscriber.recv_blocking(None));
    settle();
    assert!(subscribers.detach(index));
    publisher.try_publish(7).unwrap();
    // Woken by the detach itself (nothing missed yet) or, if it looks only after the publish,
    // having missed 7.
    let told = reader.join();
    assert!(matches!(told, Err(RecvError::Detached { missed: 0 | 1 })), "{told:?}");
    assert_eq!(watcher.try_recv(), Ok(7));
}

#[test]
fn every_strategy_delivers_every_value_in_order_across_threads() {
    const N: u64 = 2_000;
    for strategy in
        [WaitStrategy::DEFAULT, WaitStrategy::SPIN, WaitStrategy::YIELD, WaitStrategy::PARK]
    {
        let (mut publisher, mut subscribers) = channel::<u64>(8, 2);
        subscribers.set_wait_strategy(strategy);
        publisher.set_wait_strategy(strategy);
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let mut subscriber = subscribers.subscribe().unwrap();
                guarded("reader", move || {
                    let mut next = 0;
                    loop {
                        match subscriber.recv_blocking(None) {
                            Ok(v) => {
                                assert_eq!(v, next, "out of order");
                                next += 1;
                            }
                            Err(err) => return (next, err),
                        }
                    }
                })
            })
            .collect();
        let writer = guarded("writer", move || {
            for v in 0..N {
                publisher.publish_blocking(v, None).unwrap();
            }
        });
        writer.join();
        for reader in readers {
            assert_eq!(reader.join(), (N, RecvError::Closed), "{strategy:?}");
        }
    }
}

#[test]
fn try_recv_reports_empty_and_detached_like_the_core() {
    let (mut publisher, subscribers) = channel::<u64>(4, 1);
    let mut subscriber = subscribers.subscribe().unwrap();
    assert_eq!(subscriber.try_recv(), Err(TryConsumeError::Empty));
    publisher.try_publish(0).unwrap();
    assert_eq!(subscriber.try_recv(), Ok(0));
    assert!(!subscriber.is_ready());
    publisher.try_publish(1).unwrap();
    assert!(subscriber.is_ready());
    assert_eq!(subscriber.lag(), 1);
    subscribers.detach(subscriber.index());
    assert_eq!(subscriber.try_recv(), Err(TryConsumeError::Detached { missed: 1 }));
}

#[cfg(feature = "async")]
mod asynchronous {
    use futures::executor::block_on;
    use futures::{SinkExt, StreamExt};

    use super::*;

    #[test]
    fn recv_await_wakes_across_threads() {
        let (mut publisher, subscribers) = channel::<u64>(4, 1);
        let mut subscriber = subscribers.subscribe().unwrap();
        let reader = guarded("reader", move || {
            block_on(async {
                let mut got = Vec::new();
                for _ in 0..3 {
                    got.push(subscriber.recv().await);
                }
                got.push(subscriber.recv().await);
                got
            })
        });
        for v in 0..3 {
            settle();
            publisher.try_publish(v).unwrap();
        }
        settle();
        drop(publisher);
        assert_eq!(reader.join(), [Ok(0), Ok(1), Ok(2), Err(RecvError::Closed)]);
    }

    #[test]
    fn publish_await_waits_for_room() {
        let (mut publisher, subscribers) = channel::<u64>(1, 1);
        let mut subscriber = subscribers.subscribe().unwrap();
        let writer = guarded("writer", move || {
            block_on(async {
                for v in 0..5 {
                    publisher.publish(v).await.unwrap();
                }
            })
        });
        let reader = guarded("reader", move || {
            let got: Vec<_> = (0..5).map(|_| block_on(subscriber.recv()).unwrap()).collect();
            (got, subscriber)
        });
        let (got, mut subscriber) = reader.join();
        writer.join();
        assert_eq!(got, [0, 1, 2, 3, 4]);
        assert_eq!(block_on(subscriber.recv()), Err(RecvError::Closed));
    }

    #[test]
    fn publish_await_returns_disconnected_with_the_value() {
        let (mut publisher, subscribers) = channel::<String>(1, 1);
        let subscriber = subscribers.subscribe().unwrap();
        block_on(publisher.publish("held".into())).unwrap();
        let writer = guarded("writer", move || block_on(publisher.publish("blocked".into())));
        settle();
        drop(subscriber);
        match writer.join() {
            Err(PublishError::Disconnected(value)) => assert_eq!(value, "blocked"),
            other => panic!("expected Disconnected with the value, got {other:?}"),
        }
    }

    #[test]
    fn stream_and_sink_carry_every_value_in_order() {
        const N: u64 = if cfg!(miri) { 300 } else { 5_000 };
        let (mut publisher, subscribers) = channel::<u64>(4, 2);
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let subscriber = subscribers.subscribe().unwrap();
                guarded("reader", move || {
                    block_on(subscriber.map(Result::unwrap).collect::<Vec<_>>())
                })
            })
            .collect();
        let writer = guarded("writer", move || {
            block_on(async {
                let mut values = futures::stream::iter(0..N).map(Ok);
                publisher.send_all(&mut values).await.unwrap();
                publisher.close().await.unwrap();
            })
        });
        writer.join();
        for reader in readers {
            assert_eq!(reader.join(), (0..N).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_detached_consumer_gets_detached_from_recv_await_and_the_stream() {
        let (mut publisher, subscribers) = channel::<u64>(2, 2);
        let mut fast = subscribers.subscribe().unwrap();
        let mut slow = subscribers.subscribe().unwrap();
        publisher.set_lag_limit(Some(1));
        block_on(publisher.publish(0)).unwrap();
        assert_eq!((block_on(fast.recv()), block_on(slow.recv())), (Ok(0), Ok(0)));
        for v in 1..4 {
            block_on(publisher.publish(v)).unwrap();
            assert_eq!(block_on(fast.recv()), Ok(v));
        }
        assert_eq!(block_on(slow.recv()), Err(RecvError::Detached { missed: 3 }));
        assert_eq!(block_on(slow.next()), Some(Err(RecvError::Detached { missed: 3 })));
        assert!(slow.rejoin());
        block_on(publisher.publish(8)).unwrap();
        assert_eq!(block_on(slow.recv()), Ok(8));
        assert_eq!(block_on(fast.recv()), Ok(8));
        // Waiting in a task when the detach comes: woken by the detach itself (nothing missed
        // yet) or, if it looks only after the next publish, having missed 9.
        let index = slow.index();
        let reader = guarded("reader", move || block_on(slow.recv()));
        settle();
        assert!(subscribers.detach(index));
        block_on(publisher.publish(9)).unwrap();
        let told = reader.join();
        assert!(matches!(told, Err(RecvError::Detached { missed: 0 | 1 })), "{told:?}");
        assert_eq!(block_on(fast.recv()), Ok(9));
    }
}

/// A subscriber counted at position 0 and detached before its first call: once, the core's
/// claim for a position it did not know yet matched that seat word and read a slot it did not
/// own (fixed in the core by 1eb3659).
#[test]
fn a_subscriber_detached_before_its_first_call_gets_detached() {
    let (mut publisher, subscribers) = channel::<u64>(4, 1);
    let mut subscriber = subscribers.subscribe().unwrap();
    publisher.try_publish(1).unwrap();
    assert!(subscribers.detach(subscriber.index()));
    assert_eq!(subscriber.try_recv(), Err(TryConsumeError::Detached { missed: 1 }));
}

#[test]
fn a_subscriber_that_joined_after_the_last_publish_gets_closed() {
    let (mut publisher, subscribers) = channel::<u64>(4, 2);
    let mut early = subscribers.subscribe().unwrap();
    publisher.try_publish(1).unwrap();
    let mut late = subscribers.subscribe().unwrap();
    drop(publisher);
    assert_eq!(early.recv_blocking(None), Ok(1));
    assert_eq!(early.recv_blocking(None), Err(RecvError::Closed));
    assert_eq!(late.try_recv(), Err(TryConsumeError::Closed));
    assert_eq!(late.recv_blocking(None), Err(RecvError::Closed));
}
