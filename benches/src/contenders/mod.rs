//! The contenders of the comparison, each behind [`Contender`], and the [`registry`] that lists
//! them in table order.
//!
//! To add one (another "ours" variant, or a peer): write a unit struct in a new file here,
//! implement [`Contender`] for it (usually with [`run_scoped`](crate::harness::run_scoped),
//! [`publish_all`](crate::harness::publish_all) and [`drain`](crate::harness::drain), which
//! apply the shared wait policy), and add it to [`registry`]. A contender of kind
//! [`Kind::Ours`] gets its own ratio column in every table.

mod async_broadcast;
mod baseline;
mod bus;
mod crossbeam;
mod disruptor;
mod multiqueue;
mod ours;
mod tokio;

use crate::harness::{Setup, Trial};
use crate::payload::Payload;

pub use self::async_broadcast::AsyncBroadcast;
pub use self::baseline::Baseline;
pub use self::bus::Bus;
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
    /// (through a [`Checker`](crate::payload::Checker)), waiting by the shared policy
    /// ([`crate::wait`]) whenever full or empty.
    fn run(&self, setup: Setup<P>) -> Trial;
}

/// Every contender, in table order: the baseline, ours, then the peers.
pub fn registry<P: Payload>() -> Vec<Box<dyn Contender<P>>> {
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
    ]
}
