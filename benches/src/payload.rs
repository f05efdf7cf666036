//! The payloads sent through the contenders, and the check that each consumer received every
//! value, in order.

use std::fmt::Debug;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use hdrhistogram::Histogram;

use crate::latency::{NoProbe, Recorder};

/// A value sent through a contender in the comparison.
///
/// Every message carries a tag, so that a consumer can check it received exactly the expected
/// sequence: message `i` has tag [`expected_tag(i)`](Payload::expected_tag).
pub trait Payload: Clone + Debug + Send + Sync + 'static {
    /// The name shown in the tables.
    const NAME: &'static str;

    /// Builds the `count` messages of one trial. Any allocation happens here, before the clock
    /// starts.
    fn messages(count: usize) -> Vec<Self>;

    /// The tag this value carries.
    fn tag(&self) -> u64;

    /// The tag message number `index` must carry.
    fn expected_tag(index: u64) -> u64;
}

impl Payload for u64 {
    const NAME: &'static str = "u64";

    fn messages(count: usize) -> Vec<Self> {
        (0..count as u64).collect()
    }

    #[inline(always)]
    fn tag(&self) -> u64 {
        *self
    }

    #[inline(always)]
    fn expected_tag(index: u64) -> u64 {
        index
    }
}

/// A shared 64-byte record, the shape of an `Arc<RecordBatch>`-like payload.
pub type Record = Arc<[u8; 64]>;

/// The number of distinct records in the pool. Larger than any capacity in the comparison, so
/// two values in flight at once never share an `Arc` (and its reference count).
pub const RECORD_POOL: usize = 8192;

fn record_pool() -> &'static [Record] {
    static POOL: OnceLock<Vec<Record>> = OnceLock::new();
    POOL.get_or_init(|| {
        (0..RECORD_POOL as u64)
            .map(|index| {
                let mut bytes = [0u8; 64];
                bytes[..8].copy_from_slice(&index.to_le_bytes());
                Arc::new(bytes)
            })
            .collect()
    })
}

impl Payload for Record {
    const NAME: &'static str = "Arc<[u8; 64]>";

    /// Clones of the pooled records, made in advance: message `i` is record `i % RECORD_POOL`,
    /// so no allocation happens during a trial.
    fn messages(count: usize) -> Vec<Self> {
        let pool = record_pool();
        (0..count).map(|index| Arc::clone(&pool[index % RECORD_POOL])).collect()
    }

    /// The pool index, stored in the record's first 8 bytes.
    #[inline(always)]
    fn tag(&self) -> u64 {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self[..8]);
        u64::from_le_bytes(first)
    }

    #[inline(always)]
    fn expected_tag(index: u64) -> u64 {
        index % RECORD_POOL as u64
    }
}

/// The checksum a consumer that received all `messages` values must report.
pub fn expected_checksum<P: Payload>(messages: u64) -> u64 {
    (0..messages).fold(0u64, |sum, index| sum.wrapping_add(P::expected_tag(index)))
}

/// One consumer's check: counts what it receives, sums the tags, and records the first value
/// that was out of order. Values are dropped once checked (a consumer drops what it receives).
///
/// `R` is the consumer's side of the trial's [`Probe`](crate::latency::Probe): told of each
/// value as soon as the consumer has it (nothing, in the throughput comparison).
#[derive(Debug)]
pub struct Checker<P, R = NoProbe> {
    target: u64,
    received: u64,
    checksum: u64,
    first_error: Option<String>,
    recorder: R,
    _payload: PhantomData<fn(P)>,
}

impl<P: Payload> Checker<P> {
    /// A checker for a consumer that must receive `target` values, without a probe.
    pub fn new(target: u64) -> Self {
        Self::with_recorder(target, NoProbe)
    }
}

impl<P: Payload, R: Recorder> Checker<P, R> {
    /// A checker for a consumer that must receive `target` values, telling `recorder` of each.
    pub fn with_recorder(target: u64, recorder: R) -> Self {
        Self {
            target,
            received: 0,
            checksum: 0,
            first_error: None,
            recorder,
            _payload: PhantomData,
        }
    }

    /// Records one received value and drops it.
    #[inline(always)]
    pub fn see(&mut self, value: P) {
        self.recorder.received(self.received);
        let tag = value.tag();
        if tag != P::expected_tag(self.received) {
            self.out_of_order(tag);
        }
        self.checksum = self.checksum.wrapping_add(tag);
        self.received += 1;
        drop(value);
    }

    #[cold]
    #[inline(never)]
    fn out_of_order(&mut self, tag: u64) {
        if self.first_error.is_none() {
            self.first_error = Some(format!(
                "value #{} had tag {tag}, expected {}",
                self.received,
                P::expected_tag(self.received)
            ));
        }
    }

    /// Whether this consumer has received all the values it expects.
    #[inline(always)]
    pub fn done(&self) -> bool {
        self.received >= self.target
    }

    /// What this consumer reports, finishing at `finished`.
    pub fn report(&self, finished: Instant) -> ConsumerReport {
        ConsumerReport {
            received: self.received,
            checksum: self.checksum,
            error: self.first_error.clone(),
            finished,
            latency: self.recorder.histogram(),
        }
    }
}

/// What one consumer received in one trial.
#[derive(Debug, Clone)]
pub struct ConsumerReport {
    /// How many values it received.
    pub received: u64,
    /// The wrapping sum of their tags.
    pub checksum: u64,
    /// The first problem seen: a value out of order, or why the consumer gave up.
    pub error: Option<String>,
    /// When it received its last value (or gave up).
    pub finished: Instant,
    /// The latency of each value it received, in ns, if the trial had a latency probe.
    pub latency: Option<Histogram<u64>>,
}

impl ConsumerReport {
    /// The report of a consumer that never reported (its thread panicked, or it never finished).
    pub fn missing(error: String) -> Self {
        Self {
            received: 0,
            checksum: 0,
            error: Some(error),
            finished: Instant::now(),
            latency: None,
        }
    }
}
