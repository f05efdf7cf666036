//! Ours, through each of its APIs:
//!
//! - [`OursIndex`]: the seed's `&self` API (`MulticastBuffer::try_publish` / `consume(idx)`),
//!   which takes the role (producer, or one consumer index) for each call with a
//!   compare-and-swap;
//! - [`OursHandles`]: the typed handles over an `Arc<HeapBuffer>` (`Publisher::try_publish` /
//!   `Subscriber::try_recv`), which hold their role for their lifetime;
//! - [`OursBatch`]: the same handles, batched (`Publisher::publish_iter` of up to
//!   [`PUBLISH_CHUNK`] values / `Subscriber::recv_batch` of everything available).

use std::sync::Arc;

use multicast_buffer::MulticastBuffer;
use multicast_buffer_core::{HeapBuffer, Publisher, Subscriber};

use super::{Contender, Kind};
use crate::harness::{drain, publish_all, run_scoped, CheckerOf, Setup, Trial};
use crate::latency::Probe;
use crate::payload::Payload;
use crate::wait::{Abort, Backoff};

/// The most values [`OursBatch`]'s producer offers to one `publish_iter` call. The write
/// position is published once per call, so consumers see a batch only when it is complete: a
/// chunk as large as the ring would keep them idle while the producer fills it.
pub const PUBLISH_CHUNK: usize = 64;

/// `multicast_buffer::MulticastBuffer`: `try_publish` (value handed back when full) and
/// `consume(idx)`, one value per call, each call taking its role with a compare-and-swap.
#[derive(Debug, Clone, Copy, Default)]
pub struct OursIndex;

impl<P: Payload> Contender<P> for OursIndex {
    fn name(&self) -> &'static str {
        "ours-index"
    }

    fn kind(&self) -> Kind {
        Kind::Ours
    }

    fn description(&self) -> &'static str {
        "MulticastBuffer (std adapter, the seed's &self API): try_publish / consume(idx), one value per call, a role compare-and-swap per call"
    }

    fn run<K: Probe>(&self, setup: Setup<P, K>) -> Trial {
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

/// A publisher over a shared heap buffer.
type ArcPublisher<P> = Publisher<Arc<HeapBuffer<P>>>;
/// A subscriber over a shared heap buffer.
type ArcSubscriber<P> = Subscriber<Arc<HeapBuffer<P>>>;

/// Takes the producer role and every consumer index of a fresh buffer, as handles.
///
/// # Panics
///
/// If a role is already taken, which cannot happen on a fresh buffer.
fn handles<P: Payload, K>(setup: &Setup<P, K>) -> (ArcPublisher<P>, Vec<ArcSubscriber<P>>) {
    let buffer = Arc::new(HeapBuffer::<P>::new(setup.capacity, setup.consumers));
    let publisher = Publisher::new(Arc::clone(&buffer)).expect("a fresh buffer has no producer");
    let subscribers = (0..setup.consumers)
        .map(|index| {
            Subscriber::new(Arc::clone(&buffer), index).expect("a fresh buffer has no consumers")
        })
        .collect();
    (publisher, subscribers)
}

/// The typed handles: `Publisher::try_publish` / `Subscriber::try_recv`, one value per call.
#[derive(Debug, Clone, Copy, Default)]
pub struct OursHandles;

impl<P: Payload> Contender<P> for OursHandles {
    fn name(&self) -> &'static str {
        "ours-handles"
    }

    fn kind(&self) -> Kind {
        Kind::Ours
    }

    fn description(&self) -> &'static str {
        "core Publisher / Subscriber over Arc<HeapBuffer>: try_publish / try_recv, one value per call, no per-call role check"
    }

    fn run<K: Probe>(&self, setup: Setup<P, K>) -> Trial {
        let (mut publisher, subscribers) = handles(&setup);
        let consumers = subscribers
            .into_iter()
            .map(|mut subscriber| {
                move |checker: &mut _, backoff: &mut _| {
                    drain(checker, backoff, || Ok(subscriber.try_recv().ok()))
                }
            })
            .collect();
        run_scoped(
            setup,
            move |values, backoff| {
                publish_all(values, backoff, |value| {
                    publisher.try_publish(value).map_err(|refused| refused.into_inner())
                })
            },
            consumers,
        )
    }
}

/// The typed handles, batched: `publish_iter` / `recv_batch`.
#[derive(Debug, Clone, Copy, Default)]
pub struct OursBatch;

impl<P: Payload> Contender<P> for OursBatch {
    fn name(&self) -> &'static str {
        "ours-batch"
    }

    fn kind(&self) -> Kind {
        Kind::Ours
    }

    fn description(&self) -> &'static str {
        "core Publisher / Subscriber over Arc<HeapBuffer>: publish_iter of up to 64 values (one write-position store per call) / recv_batch(usize::MAX) (one read-position store per call)"
    }

    fn run<K: Probe>(&self, setup: Setup<P, K>) -> Trial {
        let (mut publisher, subscribers) = handles(&setup);
        let consumers = subscribers
            .into_iter()
            .map(|mut subscriber| {
                move |checker: &mut CheckerOf<P, K>, backoff: &mut Backoff| -> Result<(), Abort> {
                    while !checker.done() {
                        if subscriber.recv_batch(usize::MAX, |value| checker.see(value)).is_err() {
                            backoff.snooze()?;
                        } else {
                            backoff.reset();
                        }
                    }
                    Ok(())
                }
            })
            .collect();
        run_scoped(
            setup,
            move |values, backoff| {
                let mut left = values.len();
                while left != 0 {
                    // `publish_iter` takes a value only once its slot is free: what does not fit
                    // stays in `values`. A paced producer offers only the values whose turn has
                    // come (one, at a low rate).
                    match publisher.publish_iter(values.due().take(PUBLISH_CHUNK)) {
                        0 => backoff.snooze()?,
                        published => {
                            left -= published;
                            backoff.reset();
                        }
                    }
                }
                Ok(())
            },
            consumers,
        )
    }
}
