#![doc = include_str!("../README.md")]
#![no_std]
// docs.rs (`--cfg docsrs`, nightly): each item says which feature it needs (`doc_cfg` marks
// cfg-gated items by itself); the loom cfg is CI's, not a user's choice, so it is not shown.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(docsrs, doc(auto_cfg(hide(multicast_loom))))]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, missing_docs, missing_debug_implementations)]

#[cfg(feature = "alloc")]
extern crate alloc;

#[macro_use]
mod sync;
mod buffer;
mod error;
mod handles;
mod protocol;
mod storage;

pub use buffer::{Buffer, MAX_CAPACITY, MAX_CONSUMERS};
pub use error::{ConfigError, NoFreeSeat, TryConsumeError, TryPublishError};
pub use handles::{BufferRef, Notify, Publisher, ReadGuard, Subscriber};
#[cfg(feature = "alloc")]
pub use storage::Heap;
#[cfg(not(multicast_loom))]
pub use storage::Inline;
pub use storage::Storage;

/// A buffer whose `CAP` slots and `N` consumer cursors are stored inline.
#[cfg(not(multicast_loom))]
pub type InlineBuffer<T, const CAP: usize, const N: usize> = Buffer<T, Inline<T, CAP, N>>;

/// A buffer whose slots and consumer cursors are allocated on the heap at construction.
#[cfg(feature = "alloc")]
pub type HeapBuffer<T> = Buffer<T, Heap<T>>;

/// A snapshot of a buffer's state, from `state()` (of a buffer, or of a handle to one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct State {
    /// The number of slots.
    pub capacity: usize,
    /// The number of consumer seats.
    pub consumers: usize,
    /// The number of subscribed seats: running or joining (not detached or vacant).
    pub subscribed: usize,
    /// Whether the publisher has gone (`is_closed()`).
    pub closed: bool,
    /// Values published so far, modulo `2^(usize::BITS - 4)` (`2^60` on 64-bit targets, `2^28`
    /// on 32-bit ones): positions are `usize` counters, and the buffer works across their wrap.
    pub write_position: u64,
    /// The index of the subscribed consumer furthest behind (the lowest index among equals), or
    /// `None` without subscribed consumers. A value that a tethered subscriber holds in a
    /// [`ReadGuard`] counts as not read until the guard is dropped, so a
    /// publish that is `Full` because of it names that subscriber. (An evictable subscriber's
    /// guarded value counts as read: its claim moved its position.)
    pub slowest_consumer: Option<usize>,
    /// Values published and not yet read by every consumer: the slowest consumer's lag.
    pub held: usize,
}

// By hand, not derived, so that the docs mark it with its feature (rustdoc cannot see the cfg of
// a derive); the same output as `derive(defmt::Format)`.
#[cfg(feature = "defmt")]
impl defmt::Format for State {
    fn format(&self, f: defmt::Formatter<'_>) {
        // Destructured so that a new field does not compile until it is logged too.
        let Self {
            capacity,
            consumers,
            subscribed,
            closed,
            write_position,
            slowest_consumer,
            held,
        } = self;
        defmt::write!(
            f,
            "State {{ capacity: {=usize:?}, consumers: {=usize:?}, subscribed: {=usize:?}, closed: {=bool:?}, write_position: {=u64:?}, slowest_consumer: {=?:?}, held: {=usize:?} }}",
            capacity,
            consumers,
            subscribed,
            closed,
            write_position,
            slowest_consumer,
            held
        );
    }
}

/// One consumer seat seen from outside, from `seat_state(index)` or `seat_states()` (of a
/// buffer, or of the std crate's channel handles): where it is, how far behind, and whether it
/// is counted. For a monitor (the task that owns the publisher, or any thread with a reference
/// to the buffer): it reads the seat's cache line and the producer's, and changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SeatState {
    /// The seat's index (the consumer index of the index API, a subscriber's `index()`).
    pub index: usize,
    /// Whether it is counted, joining, detached or vacant.
    pub status: SeatStatus,
    /// The number of values it has read or claimed (its read position, with the same wrap as
    /// [`State::write_position`]): for a seat that is not counted, where it stopped; for a
    /// joining one, where it asked to join.
    pub position: u64,
    /// Values published that it has not read: at most the capacity for a subscribed seat
    /// (the producer waits for it beyond that). For a detached one, every value published since
    /// its position, which it will not all receive, so it grows past the capacity: what its
    /// next call would report as `Detached { missed }`. 0 for joining and vacant seats.
    pub lag: usize,
}

/// Whether a seat is counted by the producer, in [`SeatState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SeatStatus {
    /// Counted: it receives every value, and the producer waits for it when the buffer is full.
    Subscribed,
    /// Asked to be counted (it subscribed or rejoined): counted from the producer's next value
    /// on.
    Joining,
    /// Detached: no longer counted (or about to stop being counted, once the producer applies
    /// the detach), and either held by a subscriber, whose next call reports
    /// [`TryConsumeError::Detached`] (or did, and it has not rejoined), or an index-API consumer
    /// whose detach is not applied yet.
    Detached,
    /// Not counted (or no longer holding anything: a seat whose subscriber left, before the
    /// producer's next value applies it) and held by no subscriber: free for `subscribe`. (An
    /// index-API consumer of a buffer from `new` is vacant once its detach was applied, or once
    /// it was detached with nothing left to read, until `rejoin`.)
    Vacant,
}

#[cfg(feature = "defmt")]
impl defmt::Format for SeatState {
    fn format(&self, f: defmt::Formatter<'_>) {
        // Destructured so that a new field does not compile until it is logged too.
        let Self { index, status, position, lag } = self;
        defmt::write!(
            f,
            "SeatState {{ index: {=usize:?}, status: {}, position: {=u64:?}, lag: {=usize:?} }}",
            index,
            status,
            position,
            lag
        );
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for SeatStatus {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self {
            Self::Subscribed => defmt::write!(f, "Subscribed"),
            Self::Joining => defmt::write!(f, "Joining"),
            Self::Detached => defmt::write!(f, "Detached"),
            Self::Vacant => defmt::write!(f, "Vacant"),
        }
    }
}

#[cfg(all(test, feature = "alloc", not(multicast_loom)))]
mod tests;

#[cfg(all(test, feature = "alloc", multicast_loom))]
mod loom_tests;

#[cfg(all(test, feature = "alloc", multicast_loom))]
mod loom_membership;

#[cfg(all(test, feature = "alloc", multicast_loom))]
mod loom_takeover;
