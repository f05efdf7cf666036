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

/// A snapshot of a buffer's state, from [`Buffer::state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct State {
    /// The number of slots.
    pub capacity: usize,
    /// The number of consumer seats.
    pub consumers: usize,
    /// The number of subscribed seats: running or joining (not detached or vacant).
    pub subscribed: usize,
    /// Whether the publisher has gone ([`Buffer::is_closed`]).
    pub closed: bool,
    /// Values published so far (see [Positions](Buffer#positions) for the wrap).
    pub write_position: u64,
    /// The index of the subscribed consumer furthest behind (the lowest index among equals), or
    /// `None` without subscribed consumers. A value that a tethered subscriber holds in a
    /// [`ReadGuard`](crate::ReadGuard) counts as not read until the guard is dropped, so a
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

#[cfg(all(test, feature = "alloc", not(multicast_loom)))]
mod tests;

#[cfg(all(test, feature = "alloc", multicast_loom))]
mod loom_tests;

#[cfg(all(test, feature = "alloc", multicast_loom))]
mod loom_membership;
