//! `bus` 2: a lock-free broadcast channel; `try_broadcast` / `BusReader::try_recv`.

use std::sync::mpsc::TryRecvError;

use super::{Contender, Kind};
use crate::harness::{drain, publish_all, run_scoped, Setup, Trial};
use crate::latency::Probe;
use crate::payload::Payload;
use crate::wait::Abort;

/// `bus::Bus` with one `BusReader` per consumer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bus;

impl<P: Payload> Contender<P> for Bus {
    fn name(&self) -> &'static str {
        "bus"
    }

    fn kind(&self) -> Kind {
        Kind::Peer
    }

    fn description(&self) -> &'static str {
        "bus 2: try_broadcast / BusReader::try_recv (every reader gets a clone)"
    }

    fn run<K: Probe>(&self, setup: Setup<P, K>) -> Trial {
        let mut bus = bus::Bus::<P>::new(setup.capacity);
        let consumers = (0..setup.consumers)
            .map(|_| {
                let mut reader = bus.add_rx();
                move |checker: &mut _, backoff: &mut _| {
                    drain(checker, backoff, || match reader.try_recv() {
                        Ok(value) => Ok(Some(value)),
                        Err(TryRecvError::Empty) => Ok(None),
                        Err(TryRecvError::Disconnected) => {
                            Err(Abort::Broken("bus disconnected".into()))
                        }
                    })
                }
            })
            .collect();
        // The bus outlives the trial: it is dropped after the clock.
        let sender = &mut bus;
        run_scoped(
            setup,
            move |values, backoff| {
                publish_all(values, backoff, |value| sender.try_broadcast(value))
            },
            consumers,
        )
    }
}
