//! `MulticastBuffer<T>`: a pre-allocated, lock-free, single-producer multi-consumer multicast
//! ring buffer with per-slot reference counts, for hosted (`std`) targets.
//!
//! This is the thin std face of [`multicast_buffer_core`]: the API of the system it replaces
//! (LaminarDB's `MulticastBuffer<T>`), with [`DagError`] implementing [`std::error::Error`], and
//! the same protocol underneath as the `no_std` core. Where the original only asked callers to
//! behave (one writer thread, one reader per index), this one checks at run time, cheaply, so safe
//! code can never corrupt it; and a value is released as soon as its last consumer has read it.
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//! use std::thread;
//! use multicast_buffer::MulticastBuffer;
//!
//! let buf = Arc::new(MulticastBuffer::new(64, 2));
//! let consumers: Vec<_> = (0..2)
//!     .map(|idx| {
//!         let buf = Arc::clone(&buf);
//!         thread::spawn(move || {
//!             let mut seen = Vec::new();
//!             while seen.len() < 100 {
//!                 match buf.consume(idx) {
//!                     Some(v) => seen.push(v),
//!                     None => thread::yield_now(),
//!                 }
//!             }
//!             seen
//!         })
//!     })
//!     .collect();
//! for i in 0..100u64 {
//!     let mut value = i;
//!     // `try_publish` gives the value back on backpressure, so it can be retried.
//!     while let Err(err) = buf.try_publish(value) {
//!         value = err.into_inner();
//!         thread::yield_now();
//!     }
//! }
//! for c in consumers {
//!     assert_eq!(c.join().unwrap(), (0..100).collect::<Vec<_>>());
//! }
//! ```
//!
//! # Waiting: blocking and async handles
//!
//! [`channel()`] hands out a [`Publisher`] and a cloneable [`SubscribeHandle`] over one shared
//! buffer; [`Subscriber`]s join and leave at run time, a slow one can be detached (by hand or by
//! the publisher's lag limit) and rejoin, and dropping the publisher closes the channel. On top of
//! the core's non-blocking calls they wait: [`Subscriber::recv_blocking`] and
//! [`Publisher::publish_blocking`] with a timeout and a [`WaitStrategy`] (spin, yield, then park),
//! and, with the `async` feature (on by default), `recv().await`, `publish(v).await`, a `Stream`
//! and a `Sink`, for any executor.
//!
//! Nobody waiting costs a publish or a receive one fence and one relaxed load: no lock, no
//! syscall (see [`mod@channel`]). A parked thread re-checks at least every
//! [`WaitStrategy::park`], so a missed wake-up cannot hang it.
//!
//! ```
//! use std::thread;
//! use std::time::Duration;
//! use multicast_buffer::{channel, RecvError};
//!
//! let (mut publisher, subscribers) = channel::<u64>(64, 4);
//!
//! // A thread that blocks for each tick.
//! let mut blocking = subscribers.subscribe().unwrap();
//! let blocking = thread::spawn(move || {
//!     let mut ticks = Vec::new();
//!     loop {
//!         match blocking.recv_blocking(Some(Duration::from_secs(60))) {
//!             Ok(tick) => ticks.push(tick),
//!             Err(RecvError::Closed) => return ticks,
//!             Err(err) => panic!("{err}"),
//!         }
//!     }
//! });
//!
//! // A task that awaits each tick (feature `async`; any executor will do).
//! # #[cfg(feature = "async")]
//! let awaiting = {
//!     let mut awaiting = subscribers.subscribe().unwrap();
//!     Some(thread::spawn(move || {
//!         futures::executor::block_on(async {
//!             let mut ticks = Vec::new();
//!             while let Ok(tick) = awaiting.recv().await {
//!                 ticks.push(tick);
//!             }
//!             ticks
//!         })
//!     }))
//! };
//! # #[cfg(not(feature = "async"))]
//! # let awaiting: Option<thread::JoinHandle<Vec<u64>>> = None;
//!
//! for tick in 0..1_000 {
//!     // Waits for room while the slowest subscriber is 64 ticks behind.
//!     publisher.publish_blocking(tick, None).unwrap();
//! }
//! drop(publisher); // closes: the subscribers drain, then get `Closed`
//!
//! assert_eq!(blocking.join().unwrap(), (0..1_000).collect::<Vec<_>>());
//! if let Some(awaiting) = awaiting {
//!     assert_eq!(awaiting.join().unwrap(), (0..1_000).collect::<Vec<_>>());
//! }
//! ```
//!
//! `examples/server.rs` (`cargo run --release --example server`) runs a publisher thread with
//! blocking, async, slow (detached by a lag limit, then rejoining) and short-lived subscribers.
#![deny(unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks, missing_docs, missing_debug_implementations)]

use std::fmt;

use multicast_buffer_core::HeapBuffer;
pub use multicast_buffer_core::{
    ConfigError, NoFreeSeat, State, TryConsumeError, TryPublishError, MAX_CAPACITY, MAX_CONSUMERS,
};

#[cfg(feature = "async")]
mod asynch;
pub mod channel;
pub mod wait;

#[cfg(feature = "async")]
pub use asynch::{Publish, Recv};
pub use channel::{
    channel, try_channel, PublishError, Publisher, ReadGuard, RecvError, SubscribeHandle,
    Subscriber,
};
pub use wait::WaitStrategy;

/// The error of [`MulticastBuffer::publish`].
///
/// # Examples
///
/// ```
/// use multicast_buffer::{DagError, MulticastBuffer};
///
/// let buf = MulticastBuffer::new(1, 1);
/// buf.publish(1).unwrap();
/// assert_eq!(buf.publish(2), Err(DagError::BackpressureFull));
/// assert_eq!(DagError::BackpressureFull.to_string(), "backpressure: the target slot is still held by a consumer");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DagError {
    /// The slot the value would go into is still held by a slow consumer.
    BackpressureFull,
    /// Another thread was publishing at the same moment. The buffer has a single writer; the
    /// original only documented that, this one refuses the second writer.
    ConcurrentPublish,
}

impl fmt::Display for DagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BackpressureFull => "backpressure: the target slot is still held by a consumer",
            Self::ConcurrentPublish => "another thread is publishing into this buffer",
        })
    }
}

impl std::error::Error for DagError {}

impl<T> From<TryPublishError<T>> for DagError {
    fn from(err: TryPublishError<T>) -> Self {
        if err.is_full() {
            Self::BackpressureFull
        } else {
            Self::ConcurrentPublish
        }
    }
}

/// Pre-allocated single-producer multi-consumer multicast buffer with reference-counted slots.
///
/// Every consumer (`0..consumer_count`) receives every published value exactly once, in publish
/// order. Publishing and consuming never allocate; all slots are allocated by [`new`](Self::new).
/// Each slot counts the consumers that still have to read it; a value is released as soon as the
/// last of them has (that consumer receives it by move, the others get clones), and
/// [`publish`](Self::publish) reports backpressure while the slot it wants is still held.
///
/// `Send` when `T: Send`; `Sync` only when `T: Send + Sync`, because consumers on several threads
/// clone the same value through `&T`:
///
/// ```compile_fail,E0277
/// fn shared<T: Sync>(_: &T) {}
/// // `Cell` is `Send` but not `Sync`: the buffer must not be shared between threads.
/// let buf = multicast_buffer::MulticastBuffer::<std::cell::Cell<u8>>::new(4, 2);
/// shared(&buf);
/// ```
///
/// # Misuse
///
/// The API takes `&self`. A second thread that publishes while another is publishing gets
/// [`DagError::ConcurrentPublish`]; a second thread that consumes with an index another thread is
/// consuming with at that moment gets `None`. Neither can lose, duplicate or corrupt a value.
///
/// # Positions
///
/// Positions are `usize` counters, exposed as `u64`; they wrap at `2^63` on 64-bit targets and
/// at `2^31` on 32-bit ones (the buffer keeps working across the wrap).
pub struct MulticastBuffer<T> {
    inner: HeapBuffer<T>,
}

impl<T> MulticastBuffer<T> {
    /// Creates a buffer with `capacity` slots for `consumer_count` consumers.
    ///
    /// All slots are allocated here; publishing and consuming never allocate.
    ///
    /// # Panics
    ///
    /// If `capacity` is zero or not a power of two (or above [`MAX_CAPACITY`]), or
    /// `consumer_count` is above [`MAX_CONSUMERS`]. [`try_new`](Self::try_new) returns an error
    /// instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer::MulticastBuffer;
    ///
    /// let buf = MulticastBuffer::<u64>::new(1024, 3);
    /// assert_eq!(buf.capacity(), 1024);
    /// assert_eq!(buf.consumer_count(), 3);
    /// ```
    ///
    /// ```should_panic
    /// multicast_buffer::MulticastBuffer::<u64>::new(1000, 3);
    /// ```
    #[track_caller]
    pub fn new(capacity: usize, consumer_count: usize) -> Self {
        Self { inner: HeapBuffer::new(capacity, consumer_count) }
    }

    /// Creates a buffer like [`new`](Self::new), or says why the shape is not allowed.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] if `capacity` is zero, not a power of two or above [`MAX_CAPACITY`], or
    /// `consumer_count` is above [`MAX_CONSUMERS`].
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer::{ConfigError, MulticastBuffer, MAX_CONSUMERS};
    ///
    /// let err = MulticastBuffer::<u64>::try_new(8, MAX_CONSUMERS + 1).unwrap_err();
    /// assert_eq!(err, ConfigError::TooManyConsumers { consumers: MAX_CONSUMERS + 1 });
    /// ```
    pub fn try_new(capacity: usize, consumer_count: usize) -> Result<Self, ConfigError> {
        HeapBuffer::try_new(capacity, consumer_count).map(|inner| Self { inner })
    }

    /// Publishes a value to all consumers.
    ///
    /// Must have one writer at a time: a second thread publishing at the same moment gets
    /// [`DagError::ConcurrentPublish`] (nothing is corrupted). With zero consumers the value is
    /// dropped at once, since nobody could ever read it.
    ///
    /// # Errors
    ///
    /// [`DagError::BackpressureFull`] if the target slot is still in use by a slow consumer;
    /// the value is dropped, as in the original API. [`try_publish`](Self::try_publish) gives it
    /// back instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer::{DagError, MulticastBuffer};
    ///
    /// let buf = MulticastBuffer::new(2, 1);
    /// assert_eq!(buf.publish("a"), Ok(()));
    /// assert_eq!(buf.publish("b"), Ok(()));
    /// assert_eq!(buf.publish("c"), Err(DagError::BackpressureFull));
    /// ```
    #[inline]
    pub fn publish(&self, value: T) -> Result<(), DagError> {
        self.inner.try_publish(value).map_err(DagError::from)
    }

    /// Publishes a value to all consumers, or gives it back.
    ///
    /// # Errors
    ///
    /// [`TryPublishError::Full`] on backpressure, [`TryPublishError::Busy`] when another thread
    /// is publishing at the same moment; [`TryPublishError::into_inner`] returns the value.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer::MulticastBuffer;
    ///
    /// let buf = MulticastBuffer::new(1, 1);
    /// buf.try_publish(String::from("first")).unwrap();
    /// let back = buf.try_publish(String::from("second")).unwrap_err().into_inner();
    /// assert_eq!(back, "second");
    /// ```
    #[inline]
    pub fn try_publish(&self, value: T) -> Result<(), TryPublishError<T>> {
        self.inner.try_publish(value)
    }

    /// Consumes the next value for consumer `consumer_idx`, or returns `None` if there is no new
    /// value for it (or another thread is consuming with the same index at this moment).
    ///
    /// The last consumer to read a value receives it by move; the others receive clones. If
    /// `T::clone` panics, nothing changes: the next call delivers the same value.
    ///
    /// # Panics
    ///
    /// If `consumer_idx >= consumer_count()`, in every build, with a message naming both.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer::MulticastBuffer;
    ///
    /// let buf = MulticastBuffer::new(4, 2);
    /// buf.publish(1).unwrap();
    /// assert_eq!(buf.consume(0), Some(1));
    /// assert_eq!(buf.consume(0), None);
    /// assert_eq!(buf.consume(1), Some(1));
    /// ```
    #[inline]
    #[track_caller]
    pub fn consume(&self, consumer_idx: usize) -> Option<T>
    where
        T: Clone,
    {
        self.inner.consume(consumer_idx)
    }

    /// Like [`consume`](Self::consume), but says why there was no value.
    ///
    /// # Errors
    ///
    /// [`TryConsumeError::Empty`] when the consumer has read everything published,
    /// [`TryConsumeError::Busy`] when another thread is consuming with the same index.
    ///
    /// # Panics
    ///
    /// If `consumer_idx >= consumer_count()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer::{MulticastBuffer, TryConsumeError};
    ///
    /// let buf = MulticastBuffer::<u8>::new(4, 1);
    /// assert_eq!(buf.try_consume(0), Err(TryConsumeError::Empty));
    /// ```
    #[inline]
    #[track_caller]
    pub fn try_consume(&self, consumer_idx: usize) -> Result<T, TryConsumeError>
    where
        T: Clone,
    {
        self.inner.try_consume(consumer_idx)
    }

    /// Returns the buffer capacity (number of slots).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multicast_buffer::MulticastBuffer::<u8>::new(16, 1).capacity(), 16);
    /// ```
    #[inline]
    pub fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    /// Returns the number of consumers.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(multicast_buffer::MulticastBuffer::<u8>::new(16, 5).consumer_count(), 5);
    /// ```
    #[inline]
    pub fn consumer_count(&self) -> u32 {
        // Cannot truncate: at most MAX_CONSUMERS (checked at construction).
        self.inner.consumer_count() as u32
    }

    /// Returns the current write position (total number of publishes; see
    /// [Positions](Self#positions) for the wrap).
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = multicast_buffer::MulticastBuffer::new(4, 1);
    /// buf.publish(9u8).unwrap();
    /// assert_eq!(buf.write_position(), 1);
    /// ```
    #[inline]
    pub fn write_position(&self) -> u64 {
        self.inner.write_position()
    }

    /// Returns the current read position for a consumer (the number of values it has read).
    ///
    /// # Panics
    ///
    /// If `consumer_idx` is out of bounds, with a message naming the index and the count.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = multicast_buffer::MulticastBuffer::new(4, 2);
    /// buf.publish(9u8).unwrap();
    /// buf.consume(0);
    /// assert_eq!((buf.read_position(0), buf.read_position(1)), (1, 0));
    /// ```
    #[inline]
    #[track_caller]
    pub fn read_position(&self, consumer_idx: usize) -> u64 {
        self.inner.read_position(consumer_idx)
    }

    /// A snapshot of the buffer's state: positions, the slowest consumer, values held.
    ///
    /// # Examples
    ///
    /// ```
    /// let buf = multicast_buffer::MulticastBuffer::new(4, 2);
    /// buf.publish(9u8).unwrap();
    /// buf.consume(1);
    /// assert_eq!(buf.state().slowest_consumer, Some(0));
    /// ```
    pub fn state(&self) -> State {
        self.inner.state()
    }
}

impl<T> fmt::Debug for MulticastBuffer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let read_positions: Vec<u64> =
            (0..self.inner.consumer_count()).map(|i| self.read_position(i)).collect();
        f.debug_struct("MulticastBuffer")
            .field("capacity", &self.capacity())
            .field("consumer_count", &self.consumer_count())
            .field("write_position", &self.write_position())
            .field("read_positions", &read_positions)
            .finish()
    }
}
