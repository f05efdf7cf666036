//! The harness floor: no queue. The producer takes each value from its source (as every
//! contender does), sets it aside and advances an atomic counter; each consumer polls the
//! counter and, for every new index, clones the value from a shared read-only copy of the
//! messages, checks it and drops it. No backpressure: the producer never waits.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

use super::{Contender, Kind};
use crate::harness::{run_scoped, CheckerOf, Setup, Trial};
use crate::latency::Probe;
use crate::payload::Payload;
use crate::wait::Backoff;

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
        "harness floor: producer takes each value and bumps an atomic counter, consumers poll it and clone from a shared copy (no queue, no backpressure)"
    }

    fn run<K: Probe>(&self, setup: Setup<P, K>) -> Trial {
        let shared: Vec<P> = setup.messages.clone();
        let shared = &shared[..];
        let published = CachePadded::new(AtomicU64::new(0));
        let published = &published;
        // Where the producer sets the values it takes aside: freed after the trial.
        let mut kept: Vec<P> = Vec::with_capacity(setup.messages.len());
        let kept = &mut kept;
        let consumers = (0..setup.consumers)
            .map(|_| {
                move |checker: &mut CheckerOf<P, K>, backoff: &mut Backoff| {
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
                let mut index = 0;
                for value in values {
                    kept.push(value);
                    index += 1;
                    published.store(index, Ordering::Release);
                }
                Ok(())
            },
            consumers,
        )
    }
}
