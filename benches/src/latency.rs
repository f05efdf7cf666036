//! Latency measurement: the clock, the probe that stamps each value just before it is published
//! and records, in each consumer, how long it took to arrive, and the percentile summary.
//!
//! The method, the same for every contender:
//!
//! - one clock, [`std::time::Instant`], read as nanoseconds since a per-trial epoch
//!   ([`Clock`]); what reading it costs is measured by [`clock_overhead`] and shown beside the
//!   results (it is included in every sample, not subtracted);
//! - the producer stamps value `i` just before it offers it to the queue (the stamp goes into a
//!   side array indexed by sequence number, so the payload is the same `u64` as in the throughput
//!   comparison); the queue's own release/acquire pair makes the stamp visible to a consumer that
//!   has the value;
//! - each consumer reads the clock as soon as it has value `i` and records `now - stamp[i]` in its
//!   own HDR histogram ([`hdrhistogram`], 3 significant digits); the histograms of all consumers
//!   and all runs of a configuration are merged;
//! - paced (a low fixed rate: one value per interval, so that queueing does not dominate) or
//!   saturated (as fast as the producer can go: then the time a value waits in a full queue is
//!   most of its latency).
//!
//! The probe is a type parameter of [`Setup`](crate::harness::Setup): the throughput comparison
//! runs with [`NoProbe`], whose hooks are empty and compile to nothing, the latency runs with
//! [`Latency`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// The largest latency a histogram records exactly (60 s); larger ones are recorded as this.
pub const HIGHEST_NS: u64 = 60_000_000_000;

/// A fresh latency histogram: nanoseconds, 1 ns to [`HIGHEST_NS`], 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_max(HIGHEST_NS, 3).expect("the bounds are valid")
}

/// The clock every latency sample is read from: nanoseconds since an epoch, from
/// [`Instant`] (on Linux `clock_gettime(CLOCK_MONOTONIC)` through the vDSO).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        Self { epoch: Instant::now() }
    }

    /// Nanoseconds since the epoch.
    #[inline(always)]
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// What reading the clock costs: the difference of two back-to-back [`Clock::now_ns`] calls,
/// `samples` times, in a histogram. Every latency sample includes about one such difference.
pub fn clock_overhead(samples: usize) -> Histogram<u64> {
    let clock = Clock::new();
    let mut hist = histogram();
    for _ in 0..samples {
        let first = clock.now_ns();
        let second = clock.now_ns();
        hist.saturating_record(second - first);
    }
    hist
}

/// The clock source the kernel uses (`tsc`, `kvm-clock`, ...), if it says.
pub fn clock_source() -> Option<String> {
    std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
        .ok()
        .map(|name| name.trim().to_string())
}

/// The hooks a trial calls: on the producer just before each value is offered, on each
/// consumer as soon as it has a value.
pub trait Probe: Send + Sync {
    /// The producer's side.
    type Stamper: Stamper;
    /// One consumer's side.
    type Recorder: Recorder;

    /// The producer's hook, made before the trial starts.
    fn stamper(&self) -> Self::Stamper;

    /// A consumer's hook, made before the trial starts.
    fn recorder(&self) -> Self::Recorder;
}

/// The producer's hook.
pub trait Stamper: Send + 'static {
    /// Called just before value number `index` (0-based, in publish order) is offered to the
    /// queue for the first time; may wait (a paced producer waits for the value's turn here).
    fn publishing(&mut self, index: u64);

    /// Whether [`publishing`](Self::publishing) of value `index` would go ahead without
    /// waiting for its turn.
    #[inline(always)]
    fn is_due(&self, index: u64) -> bool {
        let _ = index;
        true
    }
}

/// A consumer's hook.
pub trait Recorder: Send + 'static {
    /// Called as soon as the consumer has value number `index`.
    fn received(&mut self, index: u64);

    /// What was recorded, if anything.
    fn histogram(&self) -> Option<Histogram<u64>>;
}

/// No probe: the throughput comparison's hooks, which do nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProbe;

impl Probe for NoProbe {
    type Stamper = NoProbe;
    type Recorder = NoProbe;

    #[inline(always)]
    fn stamper(&self) -> Self::Stamper {
        NoProbe
    }

    #[inline(always)]
    fn recorder(&self) -> Self::Recorder {
        NoProbe
    }
}

impl Stamper for NoProbe {
    #[inline(always)]
    fn publishing(&mut self, _index: u64) {}
}

impl Recorder for NoProbe {
    #[inline(always)]
    fn received(&mut self, _index: u64) {}

    fn histogram(&self) -> Option<Histogram<u64>> {
        None
    }
}

/// A paced producer that is further than this from its next value's turn yields its core
/// instead of spinning (on a 2-core machine a consumer may need it).
const PACER_YIELD_ABOVE_NS: u64 = 2_000;

/// The state one latency trial shares between its threads.
#[derive(Debug)]
struct Shared {
    clock: Clock,
    /// `stamps[i]`: when value `i` was offered, in [`Clock`] nanoseconds.
    stamps: Box<[AtomicU64]>,
    /// One value per this many nanoseconds; `None`: as fast as possible.
    interval_ns: Option<u64>,
}

/// The latency probe of one trial: stamps in a side array, one histogram per consumer.
#[derive(Debug, Clone)]
pub struct Latency {
    shared: Arc<Shared>,
}

impl Latency {
    /// A probe for a trial of `messages` values, published one per `interval` (paced) or, with
    /// `None`, as fast as the queue takes them (saturated).
    pub fn new(messages: usize, interval: Option<Duration>) -> Self {
        let stamps = (0..messages).map(|_| AtomicU64::new(0)).collect();
        let interval_ns = interval.map(|interval| interval.as_nanos().max(1) as u64);
        Self { shared: Arc::new(Shared { clock: Clock::new(), stamps, interval_ns }) }
    }
}

impl Probe for Latency {
    type Stamper = LatencyStamper;
    type Recorder = LatencyRecorder;

    fn stamper(&self) -> LatencyStamper {
        LatencyStamper { shared: Arc::clone(&self.shared), next_turn: None }
    }

    fn recorder(&self) -> LatencyRecorder {
        LatencyRecorder { shared: Arc::clone(&self.shared), hist: histogram() }
    }
}

/// The producer's side of [`Latency`]: waits for each value's turn (if paced), then stamps it.
#[derive(Debug)]
pub struct LatencyStamper {
    shared: Arc<Shared>,
    /// When the next value is due (paced only); set by the first value.
    next_turn: Option<u64>,
}

impl Stamper for LatencyStamper {
    #[inline]
    fn is_due(&self, _index: u64) -> bool {
        match (self.shared.interval_ns, self.next_turn) {
            (Some(_), Some(turn)) => self.shared.clock.now_ns() >= turn,
            _ => true,
        }
    }

    #[inline]
    fn publishing(&mut self, index: u64) {
        let clock = &self.shared.clock;
        if let Some(interval) = self.shared.interval_ns {
            let turn = *self.next_turn.get_or_insert_with(|| clock.now_ns());
            loop {
                let now = clock.now_ns();
                if now >= turn {
                    // A producer that fell behind (held up by a full queue or the scheduler)
                    // starts a new schedule instead of publishing a burst to catch up.
                    self.next_turn = Some((turn + interval).max(now));
                    break;
                }
                if turn - now > PACER_YIELD_ABOVE_NS {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            }
        }
        if let Some(stamp) = self.shared.stamps.get(index as usize) {
            // Relaxed: made visible to the consumer by the queue's publish (Release) and
            // receive (Acquire) of the value that follows.
            stamp.store(clock.now_ns(), Ordering::Relaxed);
        }
    }
}

/// A consumer's side of [`Latency`]: `now - stamp` of each value, in a histogram.
#[derive(Debug)]
pub struct LatencyRecorder {
    shared: Arc<Shared>,
    hist: Histogram<u64>,
}

impl Recorder for LatencyRecorder {
    #[inline]
    fn received(&mut self, index: u64) {
        let now = self.shared.clock.now_ns();
        if let Some(stamp) = self.shared.stamps.get(index as usize) {
            // Relaxed: see `LatencyStamper::publishing`.
            let sent = stamp.load(Ordering::Relaxed);
            self.hist.saturating_record(now.saturating_sub(sent));
        }
    }

    fn histogram(&self) -> Option<Histogram<u64>> {
        Some(self.hist.clone())
    }
}

/// The percentiles every latency table shows, as (label, quantile).
pub const PERCENTILES: [(&str, f64); 4] =
    [("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p99.9", 0.999)];

/// A latency histogram's summary: the samples, the [`PERCENTILES`] and the maximum, in ns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// How many samples.
    pub samples: u64,
    /// The values at [`PERCENTILES`], in order, in ns.
    pub percentiles: [u64; 4],
    /// The largest sample, in ns.
    pub max: u64,
    /// The mean, in ns.
    pub mean: f64,
}

impl Summary {
    /// The summary of `hist`.
    pub fn of(hist: &Histogram<u64>) -> Self {
        Self {
            samples: hist.len(),
            percentiles: PERCENTILES.map(|(_, quantile)| hist.value_at_quantile(quantile)),
            max: hist.max(),
            mean: hist.mean(),
        }
    }

    /// The median, in ns.
    pub fn p50(&self) -> u64 {
        self.percentiles[0]
    }

    /// The 99th percentile, in ns.
    pub fn p99(&self) -> u64 {
        self.percentiles[2]
    }
}

/// A latency in ns, in the unit that keeps it short: `850 ns`, `9999 ns`, `12.3 µs`, `4.1 ms`,
/// `1.2 s`.
pub fn format_ns(ns: u64) -> String {
    let value = ns as f64;
    if ns < 10_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} µs", value / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.1} ms", value / 1e6)
    } else {
        format!("{:.1} s", value / 1e9)
    }
}

/// The points of a percentile-distribution curve of `hist` (HdrHistogram's plot): for each
/// point `x = log10(1 / (1 - q))` (0 for the minimum, 1 for p90, 2 for p99, ...) and the value at
/// quantile `q` in ns, up to the last quantile the samples resolve, then the maximum.
pub fn percentile_curve(hist: &Histogram<u64>) -> Vec<(f64, f64)> {
    if hist.is_empty() {
        return Vec::new();
    }
    let last = (hist.len() as f64).log10();
    let mut points = Vec::new();
    let mut x = 0.0;
    while x < last {
        let quantile = 1.0 - 10f64.powf(-x);
        points.push((x, hist.value_at_quantile(quantile).max(1) as f64));
        x += 0.05;
    }
    points.push((last, hist.max().max(1) as f64));
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_reads_the_percentiles() {
        let mut hist = histogram();
        for value in 1..=1000 {
            hist.record(value).unwrap();
        }
        let summary = Summary::of(&hist);
        assert_eq!(summary.samples, 1000);
        assert_eq!(summary.p50(), 500);
        assert_eq!(summary.p99(), 990);
        assert_eq!(summary.max, 1000);
    }

    #[test]
    fn short_units() {
        assert_eq!(format_ns(850), "850 ns");
        assert_eq!(format_ns(12_345), "12.3 µs");
        assert_eq!(format_ns(4_100_000), "4.1 ms");
        assert_eq!(format_ns(1_200_000_000), "1.2 s");
    }

    #[test]
    fn the_curve_ends_at_the_maximum() {
        let mut hist = histogram();
        for value in 1..=10_000 {
            hist.record(value).unwrap();
        }
        let curve = percentile_curve(&hist);
        assert_eq!(curve.first().map(|p| p.0), Some(0.0));
        let (x, y) = *curve.last().unwrap();
        assert!((x - 4.0).abs() < 1e-9);
        assert!((y - 10_000.0).abs() < 10.0);
    }
}
