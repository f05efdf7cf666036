//! Ours through the seed's API: `MulticastBuffer` with `try_publish` and `consume(idx)`.

use multicast_buffer::MulticastBuffer;

use super::{Contender, Kind};
use crate::harness::{drain, publish_all, run_scoped, Setup, Trial};
use crate::payload::Payload;

/// `multicast_buffer::MulticastBuffer`: `try_publish` (value handed back when full) and
/// `consume(idx)`, one value per call.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ours;

impl<P: Payload> Contender<P> for Ours {
    fn name(&self) -> &'static str {
        "ours"
    }

    fn kind(&self) -> Kind {
        Kind::Ours
    }

    fn description(&self) -> &'static str {
        "MulticastBuffer (std adapter): try_publish / consume(idx), one value per call"
    }

    fn run(&self, setup: Setup<P>) -> Trial {
        let buffer = MulticastBuffer::<P>::new(setup.capacity, setup.consumers);
        let buffer = &buffer;
        let consumers = (0..setup.consumers)
            .map(|index| {
                move |checker: &mut _, backoff: &mut _| {
                    drain(checker, backoff, || Ok(buffer.consume(index)))
                }
            })
            .collect();
        run_scoped(
            setup,
            |values, backoff| {
                publish_all(values, backoff, |value| {
                    buffer.try_publish(value).map_err(|refused| refused.into_inner())
                })
            },
            consumers,
        )
    }
}
