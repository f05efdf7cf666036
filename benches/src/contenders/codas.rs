//! `codas-flow` 0.8: a lossless multicast ring ("flow") inspired by the LMAX disruptor; `no_std`
//! with `alloc`, zero-copy reads, synchronous and async APIs.
//!
//! Driven through its synchronous API: the producer claims the next slot with
//! `Flow::try_next` and writes it with `UnpublishedData::publish`; each subscriber reads the next
//! value in place with `FlowSubscriber::try_next` (a guard that marks it received when dropped)
//! and clones it out. Slots hold an `Option<P>` (a flow needs `T: Default`), so the producer drops
//! the value from one lap before when it writes, as disruptor does.
//!
//! The number of subscribers is a const generic of `Flow::new`, so this contender supports the
//! counts listed in [`CodasFlow::MAX_CONSUMERS`] (1 to 8).

use codas_flow::{Error as FlowError, Flow, FlowSubscriber};

use super::{Contender, Kind};
use crate::harness::{drain, publish_all, run_scoped, Setup, Trial};
use crate::latency::Probe;
use crate::payload::{ConsumerReport, Payload};
use crate::wait::Abort;

/// `codas_flow::Flow` with one `FlowSubscriber` per consumer.
#[derive(Debug, Clone, Copy, Default)]
pub struct CodasFlow;

impl CodasFlow {
    /// The largest consumer count this contender builds a flow for.
    pub const MAX_CONSUMERS: usize = 8;
}

impl<P: Payload> Contender<P> for CodasFlow {
    fn name(&self) -> &'static str {
        "codas-flow"
    }

    fn kind(&self) -> Kind {
        Kind::Peer
    }

    fn description(&self) -> &'static str {
        "codas-flow 0.8: Flow::try_next + publish / FlowSubscriber::try_next (read in place, cloned out), one value per call"
    }

    fn run<K: Probe>(&self, setup: Setup<P, K>) -> Trial {
        macro_rules! with_subscribers {
            ($($count:literal)*) => {
                match setup.consumers {
                    $($count => {
                        let (flow, subscribers) = Flow::<Option<P>>::new::<$count>(setup.capacity);
                        drive(flow, Vec::from(subscribers), setup)
                    })*
                    other => unsupported(other, setup.consumers),
                }
            };
        }
        with_subscribers!(1 2 3 4 5 6 7 8)
    }
}

/// A trial that cannot run: every consumer reports why.
fn unsupported(count: usize, consumers: usize) -> Trial {
    let why = format!(
        "codas-flow: {count} consumers: Flow::new takes the subscriber count as a const generic; \
         this contender builds 1 to {}",
        CodasFlow::MAX_CONSUMERS
    );
    Trial {
        started: std::time::Instant::now(),
        consumers: (0..consumers).map(|_| ConsumerReport::missing(why.clone())).collect(),
        error: Some(why),
    }
}

fn drive<P: Payload, K: Probe>(
    mut flow: Flow<Option<P>>,
    subscribers: Vec<FlowSubscriber<Option<P>>>,
    setup: Setup<P, K>,
) -> Trial {
    let consumers = subscribers
        .into_iter()
        .map(|mut subscriber| {
            move |checker: &mut _, backoff: &mut _| {
                drain(checker, backoff, || match subscriber.try_next() {
                    // The guard marks the value received when it is dropped, at the end of
                    // this arm.
                    Ok(slot) => match &*slot {
                        Some(value) => Ok(Some(value.clone())),
                        None => Err(Abort::Broken("read an empty slot".into())),
                    },
                    Err(FlowError::Ahead) => Ok(None),
                    Err(FlowError::Full) => Err(Abort::Broken("a subscriber was told Full".into())),
                })
            }
        })
        .collect();
    let flow = &mut flow;
    run_scoped(
        setup,
        move |values, backoff| {
            publish_all(values, backoff, |value| match flow.try_next() {
                Ok(slot) => {
                    slot.publish(Some(value));
                    Ok(())
                }
                Err(_) => Err(value),
            })
        },
        consumers,
    )
}
