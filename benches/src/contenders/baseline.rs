//! The harness floor: no queue. The producer only advances an atomic counter; each consumer
//! polls it and, for every new index, clones the value from a shared read-only copy of the
//! messages, checks it and drops it. No backpressure: the producer never waits.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

use super::{Contender, Kind};
use crate::harness::{run_scoped, Setup, Trial};
use crate::payload::Payload;

/// The harness-overhead baseline: a counter instead of a queue.
#[derive(Debug, Clone, Copy, Default)]
pub struct Baseline;

impl<P: Payload> Contender<P> for Baseline {
    fn name(&self) -> &'static str {
        "baseline"
    }

    fn kind(&self) -> Kind {
        Kind::Baseline
    }

    fn description(&self) -> &'static str {
        "harness floor: producer bumps an atomic counter, consumers poll it and clone from a shared copy (no queue, no backpressure)"
    }

    fn run(&self, setup: Setup<P>) -> Trial {
        let shared: Vec<P> = setup.messages.clone();
        let shared = &shared[..];
        let published = CachePadded::new(AtomicU64::new(0));
        let published = &published;
        let consumers = (0..setup.consumers)
            .map(|_| {
                move |checker: &mut crate::payload::Checker<P>,
                      backoff: &mut crate::wait::Backoff| {
                    let mut next = 0u64;
                    while !checker.done() {
                        // Acquire: pairs with the Release store of the producer (not needed
                        // for the read-only copy, but the same cost as a real queue's load).
                        let upto = published.load(Ordering::Acquire);
                        if upto == next {
                            backoff.snooze()?;
                            continue;
                        }
                        backoff.reset();
                        while next < upto {
                            checker.see(shared[next as usize].clone());
                            next += 1;
                        }
                    }
                    Ok(())
                }
            })
            .collect();
        run_scoped(
            setup,
            move |values, _backoff| {
                for index in 0..values.len() as u64 {
                    published.store(index + 1, Ordering::Release);
                }
                Ok(())
            },
            consumers,
        )
    }
}
