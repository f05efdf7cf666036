//! `async-broadcast` without overflow (lossless), driven synchronously with `try_broadcast` /
//! `try_recv` and our wait policy.

use async_broadcast::{TryRecvError, TrySendError};

use super::{Contender, Kind};
use crate::harness::{drain, publish_all, run_scoped, Setup, Trial};
use crate::latency::Probe;
use crate::payload::Payload;
use crate::wait::Abort;

/// `async_broadcast::broadcast(capacity)` with `set_overflow(false)`, one receiver per
/// consumer.
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncBroadcast;

impl<P: Payload> Contender<P> for AsyncBroadcast {
    fn name(&self) -> &'static str {
        "async-broadcast"
    }

    fn kind(&self) -> Kind {
        Kind::Peer
    }

    fn description(&self) -> &'static str {
        "async-broadcast 0.7, set_overflow(false): try_broadcast / try_recv, polled synchronously"
    }

    fn run<K: Probe>(&self, setup: Setup<P, K>) -> Trial {
        let (mut sender, first) = async_broadcast::broadcast::<P>(setup.capacity);
        sender.set_overflow(false);
        let mut receivers: Vec<_> = (1..setup.consumers).map(|_| first.clone()).collect();
        receivers.push(first);
        let consumers = receivers
            .into_iter()
            .map(|mut receiver| {
                move |checker: &mut _, backoff: &mut _| {
                    drain(checker, backoff, || match receiver.try_recv() {
                        Ok(value) => Ok(Some(value)),
                        Err(TryRecvError::Empty) => Ok(None),
                        Err(TryRecvError::Overflowed(missed)) => {
                            Err(Abort::Broken(format!("overflowed: lost {missed} values")))
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
                publish_all(values, backoff, |value| match sender.try_broadcast(value) {
                    Ok(_) => Ok(()),
                    Err(
                        TrySendError::Full(value)
                        | TrySendError::Inactive(value)
                        | TrySendError::Closed(value),
                    ) => Err(value),
                })
            },
            consumers,
        )
    }
}
