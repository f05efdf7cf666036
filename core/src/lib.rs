//! A pre-allocated, lock-free, single-producer multi-consumer **multicast** ring buffer with
//! per-slot reference counts, for `no_std` targets with or without an allocator.
//!
//! Every consumer receives every published value exactly once, in publish order. Each slot counts
//! the consumers that still have to read it: the producer gets its value back
//! ([`TryPublishError::Full`]) while the slot it wants is held by the slowest consumer, and a
//! value is released (moved out to its last reader) as soon as every consumer has read it.
//!
//! - [`InlineBuffer`]: slots stored inline; `const fn new` makes a `static` (no allocator).
//! - [`HeapBuffer`] (feature `alloc`): capacity and consumer count chosen at run time.
//!
//! Both are the same [`Buffer`], generic over its [`Storage`].
//!
//! # Examples
//!
//! ```
//! use multicast_buffer_core::InlineBuffer;
//!
//! // 8 slots, 2 consumers, no allocation: fits in a `static`.
//! static BUS: InlineBuffer<u32, 8, 2> = InlineBuffer::new();
//!
//! BUS.try_publish(10).unwrap();
//! BUS.try_publish(20).unwrap();
//! assert_eq!(BUS.consume(0), Some(10));
//! assert_eq!(BUS.consume(0), Some(20));
//! assert_eq!(BUS.consume(1), Some(10)); // every consumer sees every value
//! assert_eq!(BUS.consume(0), None);
//! ```
//!
//! # Atomics on targets without compare-and-swap
//!
//! Atomics come from [`portable_atomic`] with its `require-cas` feature. On a target without
//! compare-and-swap (`thumbv6m-none-eabi`, `riscv32imc-unknown-none-elf`) the firmware chooses how
//! read-modify-write operations are done, never this crate: enable portable-atomic's
//! `critical-section` feature (and link a `critical-section` implementation, such as
//! `cortex-m`'s `critical-section-single-core`), or build a single-core firmware with
//! `RUSTFLAGS="--cfg portable_atomic_unsafe_assume_single_core"`.
//!
//! The crate uses no 64-bit atomics on 32-bit targets (portable-atomic would emulate them with a
//! lock, which can deadlock against an interrupt handler); see [Positions](Buffer#positions) for
//! what the `u64` position accessors mean there.
//!
//! # Progress and interrupts
//!
//! Publishing and consuming are wait-free: no lock, no spinning on another party. The producer
//! can run in an interrupt handler and the consumers in thread mode on the same core, or the
//! other way round.
//!
//! # Features
//!
//! | feature | what it adds |
//! |---|---|
//! | `alloc` | [`HeapBuffer`] and `Heap` storage |
//! | `defmt` | `defmt::Format` for the errors and [`State`] |
//! | `heapless` | `Subscriber::drain_into` a `heapless::Vec` |
//! | `no-cache-padding` | cursors without cache padding (cores without a data cache) |
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
