// The README is the crate documentation, and its examples are doctests; the second one awaits,
// so a build without the default `async` feature gets a short stand-in instead.
#![cfg_attr(feature = "async", doc = include_str!("../README.md"))]
#![cfg_attr(
    not(feature = "async"),
    doc = "A lock-free, pre-allocated, single-producer multi-consumer multicast channel for \
           hosted (`std`) targets: [`channel()`] hands out a publisher and subscribers with \
           blocking waits; [`MulticastBuffer`] is the `&self` index API of LaminarDB's \
           `MulticastBuffer`. Built without the `async` feature; the crate's README, with its \
           examples, is the documentation of a default build."
)]
// docs.rs (`--cfg docsrs`, nightly): each item says which feature it needs (`doc_cfg` marks
// cfg-gated items by itself).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks, missing_docs, missing_debug_implementations)]

use std::fmt;

use multicast_buffer_core::HeapBuffer;
pub use multicast_buffer_core::{
    ConfigError, NoFreeSeat, SeatState, SeatStatus, State, TryConsumeError, TryPublishError,
    MAX_CAPACITY, MAX_CONSUMERS,
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
/// The name is that of the error type of LaminarDB's `MulticastBuffer`, whose API
/// [`MulticastBuffer`] offers: LaminarDB, a streaming database, uses that buffer in its DAG
/// executor (the part that runs a query's graph of operators, a directed acyclic graph) to hand
/// one operator's output to several downstream operators. It is kept so that code written
/// against that API compiles unchanged.
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
    /// Another thread was publishing at the same moment. The buffer has a single writer, and it
    /// refuses a second one instead of trusting callers to have only one.
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
/// Positions are `usize` counters, exposed as `u64`; they wrap at `2^(usize::BITS - 4)`: `2^60`
/// on 64-bit targets and `2^28` on 32-bit ones, and the buffer keeps working across the wrap.
/// (They are not 64-bit counters because 32-bit targets would need a lock for those.)
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
    /// `consumer_count` is above [`MAX_CONSUMERS`], or the memory cannot be allocated.
    /// [`try_new`](Self::try_new) returns an error instead.
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
    /// `consumer_count` is above [`MAX_CONSUMERS`]; [`ConfigError::AllocationFailed`] if the
    /// allocator cannot provide the memory (instead of aborting the process).
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
    /// the value is dropped, as LaminarDB's `MulticastBuffer::publish` does.
    /// [`try_publish`](Self::try_publish) gives it back instead.
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
    /// A `u32`, although [`new`](Self::new) takes a `usize`: these are the signatures of
    /// LaminarDB's `MulticastBuffer`, kept as they are so that code written against it compiles
    /// unchanged. The count is at most [`MAX_CONSUMERS`], so it always fits.
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
