//! `tokio::sync::broadcast`, kept lossless by a credit check: the producer waits while
//! `sender.len() >= capacity` (a value stays queued until every receiver has seen it).

use tokio::sync::broadcast::{self, error::TryRecvError};

use super::{Contender, Kind};
use crate::harness::{drain, publish_all, run_scoped, Setup, Trial};
use crate::latency::Probe;
use crate::payload::Payload;
use crate::wait::Abort;

/// `tokio::sync::broadcast` with one receiver per consumer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioBroadcast;

impl<P: Payload> Contender<P> for TokioBroadcast {
    fn name(&self) -> &'static str {
        "tokio-broadcast"
    }

    fn kind(&self) -> Kind {
        Kind::Peer
    }

    fn description(&self) -> &'static str {
        "tokio::sync::broadcast: send after a credit check (len() < capacity, so never lossy) / try_recv"
    }

    fn run<K: Probe>(&self, setup: Setup<P, K>) -> Trial {
        let capacity = setup.capacity;
        let (sender, first) = broadcast::channel::<P>(capacity);
        let mut receivers = vec![first];
        receivers.extend((1..setup.consumers).map(|_| sender.subscribe()));
        let consumers = receivers
            .into_iter()
            .map(|mut receiver| {
                move |checker: &mut _, backoff: &mut _| {
                    drain(checker, backoff, || match receiver.try_recv() {
                        Ok(value) => Ok(Some(value)),
                        Err(TryRecvError::Empty) => Ok(None),
                        Err(TryRecvError::Lagged(missed)) => {
                            Err(Abort::Broken(format!("lagged: lost {missed} values")))
                        }
                        Err(TryRecvError::Closed) => Err(Abort::Broken("closed".into())),
                    })
                }
            })
            .collect();
        let sender = &sender;
        run_scoped(
            setup,
            move |values, backoff| {
                publish_all(values, backoff, |value| {
                    if sender.len() >= capacity {
                        return Err(value);
                    }
                    sender.send(value).map(drop).map_err(|refused| refused.0)
                })
            },
            consumers,
        )
    }
}
