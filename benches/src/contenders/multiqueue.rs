//! `multiqueue2`: a broadcast queue with one stream per consumer.

use std::sync::mpsc::{TryRecvError, TrySendError};

use multiqueue2::wait::BusyWait;

use super::{Contender, Kind};
use crate::harness::{drain, publish_all, run_scoped, Setup, Trial};
use crate::latency::Probe;
use crate::payload::Payload;
use crate::wait::Abort;

/// `multiqueue2::broadcast_queue_with(capacity, BusyWait)`, one `add_stream()` per consumer.
///
/// `BusyWait` only because nothing ever blocks inside the queue (we drive it with `try_*` and
/// our policy): it keeps `try_send` from notifying sleepers that cannot exist.
#[derive(Debug, Clone, Copy, Default)]
pub struct MultiQueue2;

impl<P: Payload> Contender<P> for MultiQueue2 {
    fn name(&self) -> &'static str {
        "multiqueue2"
    }

    fn kind(&self) -> Kind {
        Kind::Peer
    }

    fn description(&self) -> &'static str {
        "multiqueue2 broadcast_queue: one stream per consumer, try_send / try_recv"
    }

    fn run<K: Probe>(&self, setup: Setup<P, K>) -> Trial {
        let (sender, first) =
            multiqueue2::broadcast_queue_with::<P, _>(setup.capacity as u64, BusyWait::new());
        let mut streams: Vec<_> = (1..setup.consumers).map(|_| first.add_stream()).collect();
        if setup.consumers > 0 {
            streams.push(first);
        }
        let consumers = streams
            .into_iter()
            .map(|stream| {
                move |checker: &mut _, backoff: &mut _| {
                    drain(checker, backoff, || match stream.try_recv() {
                        Ok(value) => Ok(Some(value)),
                        Err(TryRecvError::Empty) => Ok(None),
                        Err(TryRecvError::Disconnected) => {
                            Err(Abort::Broken("queue disconnected".into()))
                        }
                    })
                }
            })
            .collect();
        run_scoped(
            setup,
            move |values, backoff| {
                let result = publish_all(values, backoff, |value| match sender.try_send(value) {
                    Ok(()) => Ok(()),
                    Err(TrySendError::Full(value) | TrySendError::Disconnected(value)) => {
                        Err(value)
                    }
                });
                // Dropping the sender only marks the queue closed: the streams still read
                // what is left.
                drop(sender);
                result
            },
            consumers,
        )
    }
}
