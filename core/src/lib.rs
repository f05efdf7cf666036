#![doc = include_str!("../README.md")]
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, missing_docs, missing_debug_implementations)]

#[cfg(feature = "alloc")]
extern crate alloc;

#[macro_use]
mod sync;
mod buffer;
mod error;
mod handles;
mod raw;
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
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct State {
    /// The number of slots.
    pub capacity: usize,
    /// The number of consumer seats.
    pub consumers: usize,
    /// The number of subscribed seats (not detached, vacant or joining).
    pub subscribed: usize,
    /// Whether the publisher has gone ([`Buffer::is_closed`]).
    pub closed: bool,
    /// Values published so far (see [Positions](Buffer#positions) for the wrap).
    pub write_position: u64,
    /// The index of the subscribed consumer furthest behind (the lowest index among equals), or
    /// `None` without subscribed consumers.
    pub slowest_consumer: Option<usize>,
    /// Values published and not yet read by every consumer: the slowest consumer's lag.
    pub held: usize,
}

#[cfg(all(test, feature = "alloc", not(multicast_loom)))]
mod tests;

#[cfg(all(test, feature = "alloc", multicast_loom))]
mod loom_tests;
