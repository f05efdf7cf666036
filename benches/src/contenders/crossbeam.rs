//! crossbeam-channel fan-out: one bounded channel per consumer; the producer sends a clone to
//! each (and moves the original into the last).

use crossbeam_channel::{bounded, TryRecvError};

use super::{Contender, Kind};
use crate::harness::{drain, push_one, run_scoped, Setup, Trial};
use crate::latency::Probe;
use crate::payload::Payload;
use crate::wait::Abort;

/// One `crossbeam_channel::bounded(capacity)` per consumer.
#[derive(Debug, Clone, Copy, Default)]
pub struct CrossbeamFanOut;

impl<P: Payload> Contender<P> for CrossbeamFanOut {
    fn name(&self) -> &'static str {
        "crossbeam-fanout"
    }

    fn kind(&self) -> Kind {
        Kind::Peer
    }

    fn description(&self) -> &'static str {
        "crossbeam-channel: one bounded(capacity) channel per consumer, try_send of a clone to each / try_recv"
    }

    fn run<K: Probe>(&self, setup: Setup<P, K>) -> Trial {
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..setup.consumers).map(|_| bounded::<P>(setup.capacity)).unzip();
        let consumers = receivers
            .into_iter()
            .map(|receiver| {
                move |checker: &mut _, backoff: &mut _| {
                    drain(checker, backoff, || match receiver.try_recv() {
                        Ok(value) => Ok(Some(value)),
                        Err(TryRecvError::Empty) => Ok(None),
                        Err(TryRecvError::Disconnected) => {
                            Err(Abort::Broken("channel disconnected".into()))
                        }
                    })
                }
            })
            .collect();
        let senders = &senders;
        run_scoped(
            setup,
            move |values, backoff| {
                let mut pushers: Vec<_> = senders
                    .iter()
                    .map(|sender| move |value| sender.try_send(value).map_err(|e| e.into_inner()))
                    .collect();
                let Some((last, others)) = pushers.split_last_mut() else { return Ok(()) };
                for value in values {
                    for push in others.iter_mut() {
                        push_one(value.clone(), backoff, push)?;
                    }
                    push_one(value, backoff, last)?;
                }
                Ok(())
            },
            consumers,
        )
    }
}
