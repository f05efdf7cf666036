//! The contenders of the comparison, each behind [`Contender`], and the [`registry`] that lists
//! them in table order.
//!
//! To add one (another "ours" variant, or a peer): write a unit struct in a new file here,
//! implement [`Contender`] for it (usually with [`run_scoped`](crate::harness::run_scoped),
//! [`publish_all`](crate::harness::publish_all) and [`drain`](crate::harness::drain), which
//! apply the shared wait policy and the trial's probe), and add it to [`registry`]. A contender
//! of kind [`Kind::Ours`] gets its own ratio column in every table.
//!
//! The same code of each contender runs in the throughput comparison and in the latency runs:
//! [`Contender::run`] is generic over the trial's [`Probe`], which is [`NoProbe`] (no code at
//! all) for throughput and [`Latency`] for latency. [`AnyContender`] is the object-safe face of
//! a contender that the registry hands out.

mod async_broadcast;
mod baseline;
mod bus;
mod codas;
mod crossbeam;
mod disruptor;
mod multiqueue;
mod ours;
mod tokio;

use crate::harness::{Setup, Trial};
use crate::latency::{Latency, NoProbe, Probe};
use crate::payload::Payload;

pub use self::async_broadcast::AsyncBroadcast;
pub use self::baseline::Baseline;
pub use self::bus::Bus;
pub use self::codas::CodasFlow;
pub use self::crossbeam::CrossbeamFanOut;
pub use self::disruptor::{DisruptorPoller, DisruptorProcessor};
pub use self::multiqueue::MultiQueue2;
pub use self::ours::{OursBatch, OursHandles, OursIndex, PUBLISH_CHUNK};
pub use self::tokio::TokioBroadcast;

/// What a contender is, for the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The harness alone, without a queue: a floor, not a competitor.
    Baseline,
    /// One of our buffer's APIs; each gets a ratio column.
    Ours,
    /// A peer crate.
    Peer,
}

/// A queue under test: runs one timed trial of one producer and `N` consumers.
pub trait Contender<P: Payload>: Send + Sync {
    /// The short name shown in the tables (also what `--only` matches).
    fn name(&self) -> &'static str;

    /// Whether this is ours, a peer or the baseline.
    fn kind(&self) -> Kind;

    /// One line on how it is driven, for the Markdown report.
    fn description(&self) -> &'static str;

    /// Runs one trial: publishes `setup.messages` in order from one thread to
    /// `setup.consumers` consumer threads, each of which must receive every value in order
    /// (through a [`Checker`](crate::payload::Checker)), waiting by the trial's policy
    /// ([`crate::wait`]) whenever full or empty, and calling the probe's hooks.
    fn run<K: Probe>(&self, setup: Setup<P, K>) -> Trial;
}

/// A [`Contender`] as the registry hands it out: object-safe, one method per probe.
pub trait AnyContender<P: Payload>: Send + Sync {
    /// [`Contender::name`].
    fn name(&self) -> &'static str;

    /// [`Contender::kind`].
    fn kind(&self) -> Kind;

    /// [`Contender::description`].
    fn description(&self) -> &'static str;

    /// [`Contender::run`] without a probe: the throughput comparison.
    fn run(&self, setup: Setup<P>) -> Trial;

    /// [`Contender::run`] with the latency probe.
    fn run_latency(&self, setup: Setup<P, Latency>) -> Trial;
}

impl<P: Payload, C: Contender<P>> AnyContender<P> for C {
    fn name(&self) -> &'static str {
        Contender::name(self)
    }

    fn kind(&self) -> Kind {
        Contender::kind(self)
    }

    fn description(&self) -> &'static str {
        Contender::description(self)
    }

    fn run(&self, setup: Setup<P, NoProbe>) -> Trial {
        Contender::run(self, setup)
    }

    fn run_latency(&self, setup: Setup<P, Latency>) -> Trial {
        Contender::run(self, setup)
    }
}

/// Every contender, in table order: the baseline, ours, then the peers.
pub fn registry<P: Payload>() -> Vec<Box<dyn AnyContender<P>>> {
    vec![
        Box::new(Baseline),
        Box::new(OursIndex),
        Box::new(OursHandles),
        Box::new(OursBatch),
        Box::new(DisruptorProcessor),
        Box::new(DisruptorPoller),
        Box::new(Bus),
        Box::new(TokioBroadcast),
        Box::new(CrossbeamFanOut),
        Box::new(MultiQueue2),
        Box::new(AsyncBroadcast),
        Box::new(CodasFlow),
    ]
}
