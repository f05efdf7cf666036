//! Benchmarks of `multicast-buffer` against its peers (unpublished).
//!
//! - `src/bin/compare/`: the side-by-side cross-thread comparison: throughput, latency
//!   percentiles, wake-up latency, their Markdown reports and SVG charts
//!   (`cargo run --release -p multicast-buffer-benches --bin compare -- --help`).
//! - `benches/single_thread.rs`: criterion, the single-thread cost of one publish and one consume.
//! - `src/bin/instructions.rs`: the driver that `ci/instructions.sh` runs under callgrind to count
//!   instructions per publish and per consume.
//!
//! This library holds what they share: the wait policy every contender uses ([`wait`]), the
//! payloads and the in-order check ([`payload`]), the timed-trial harness ([`harness`]), the
//! latency probe and clock ([`latency`]), the contenders themselves ([`contenders`]), the
//! wake-up latency of blocked consumers ([`wakeup`]) and the SVG charts ([`charts`]). Adding a
//! contender is one file in `src/contenders/` implementing [`contenders::Contender`] and one line
//! in [`contenders::registry`]; it then takes part in the throughput and the latency runs.

pub mod charts;
pub mod contenders;
pub mod harness;
pub mod latency;
pub mod payload;
pub mod wait;
pub mod wakeup;

/// Not benchmarks: a small lossless run of every contender, checked value by value, so that a
/// broken contender or harness fails `cargo test` instead of producing numbers. Nothing is timed.
#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::contenders::registry;
    use crate::harness::Setup;
    use crate::latency::Latency;
    use crate::payload::{expected_checksum, Payload, Record};
    use crate::wait::Policy;

    fn every_contender_delivers_everything<P: Payload>() {
        let messages = 3_000;
        for contender in registry::<P>() {
            for consumers in [1, 3] {
                let setup = Setup::new(
                    consumers,
                    64,
                    P::messages(messages),
                    Instant::now() + Duration::from_secs(60),
                );
                let trial = contender.run(setup);
                let checked =
                    trial.verify(messages as u64, expected_checksum::<P>(messages as u64));
                if let Err(why) = checked {
                    panic!("{} ({}, {consumers} consumers): {why}", contender.name(), P::NAME);
                }
            }
        }
    }

    #[test]
    fn every_contender_delivers_every_u64_in_order() {
        every_contender_delivers_everything::<u64>();
    }

    #[test]
    fn every_contender_delivers_every_record_in_order() {
        every_contender_delivers_everything::<Record>();
    }

    /// The latency probe: every value of every consumer is recorded, paced and saturated, and
    /// every contender still delivers everything in order with it.
    #[test]
    fn every_contender_records_every_latency() {
        let messages = 500;
        for contender in registry::<u64>() {
            for (consumers, interval) in [(1, Some(Duration::from_micros(20))), (2, None)] {
                let setup = Setup::new(
                    consumers,
                    64,
                    u64::messages(messages),
                    Instant::now() + Duration::from_secs(60),
                )
                .probed(Policy::LATENCY, Latency::new(messages, interval));
                let trial = contender.run_latency(setup);
                let checked =
                    trial.verify(messages as u64, expected_checksum::<u64>(messages as u64));
                if let Err(why) = checked {
                    panic!("{} ({consumers} consumers): {why}", contender.name());
                }
                let hist = trial.latency().expect("a latency probe records");
                assert_eq!(hist.len(), (messages * consumers) as u64, "{}", contender.name());
            }
        }
    }

    #[test]
    fn a_wrong_value_fails_the_check() {
        let mut checker = crate::payload::Checker::<u64>::new(2);
        checker.see(0);
        checker.see(5);
        let report = checker.report(Instant::now());
        assert!(report.error.is_some());
    }
}
