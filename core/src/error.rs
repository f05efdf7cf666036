//! Errors of the core crate. Each one that refuses a value gives it back.

use core::fmt;

/// Why a `try_publish` (of a buffer, or of a publisher handle) refused a value. The value comes
/// back with the error: nothing is lost.
///
/// # Examples
///
/// ```
/// use multicast_buffer_core::{InlineBuffer, TryPublishError};
///
/// let buf: InlineBuffer<u32, 2, 1> = InlineBuffer::new();
/// buf.try_publish(1).unwrap();
/// buf.try_publish(2).unwrap();
/// // Consumer 0 has not read slot 0 yet, so the third value does not fit.
/// let err = buf.try_publish(3).unwrap_err();
/// assert!(matches!(err, TryPublishError::Full(3)));
/// assert_eq!(err.into_inner(), 3);
/// // Who holds it: the consumer to wait for, or to detach.
/// assert_eq!(buf.slowest_consumer(), Some(0));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TryPublishError<T> {
    /// Backpressure: the slot the value would go into is still held by at least one consumer
    /// (the slowest consumer is `capacity` values behind). `slowest_consumer()` (or `state()`)
    /// names it, and `seat_states()` gives every consumer's lag.
    ///
    /// The error does not carry that name itself: finding it means reading every consumer's
    /// cache line, and a producer retrying on backpressure would then do so on every try,
    /// slowing down the very consumers it waits for (a 3-consumer, 2-slot stress test ran 3 to
    /// 50 times slower that way).
    Full(T),
    /// Another thread was publishing into this buffer at the same moment, or a
    /// [`Publisher`](crate::Publisher) holds the producer role. The buffer has a single
    /// producer; a second one is refused instead of corrupting it.
    Busy(T),
    /// No consumer is subscribed: every one has left or been detached (only from a
    /// [`Publisher`](crate::Publisher); the index API drops such a value, as LaminarDB's
    /// `MulticastBuffer` does).
    Disconnected(T),
    /// The publisher has gone: a `Publisher` of this buffer was dropped.
    Closed(T),
}

impl<T> TryPublishError<T> {
    /// Returns the value that was not published.
    #[inline]
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(value)
            | Self::Busy(value)
            | Self::Disconnected(value)
            | Self::Closed(value) => value,
        }
    }

    /// Whether this is backpressure ([`TryPublishError::Full`]).
    #[inline]
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }

    /// Whether no consumer is subscribed ([`TryPublishError::Disconnected`]).
    #[inline]
    pub fn is_disconnected(&self) -> bool {
        matches!(self, Self::Disconnected(_))
    }
}

impl TryPublishError<()> {
    /// The same error, handing `value` back (the slow paths decide why before they have it).
    #[inline]
    pub(crate) fn with<T>(self, value: T) -> TryPublishError<T> {
        match self {
            Self::Full(()) => TryPublishError::Full(value),
            Self::Busy(()) => TryPublishError::Busy(value),
            Self::Disconnected(()) => TryPublishError::Disconnected(value),
            Self::Closed(()) => TryPublishError::Closed(value),
        }
    }
}

// Written by hand so that neither needs `T: Debug` / `T: Format`: the payload is not shown.
impl<T> fmt::Debug for TryPublishError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("Full(..)"),
            Self::Busy(_) => f.write_str("Busy(..)"),
            Self::Disconnected(_) => f.write_str("Disconnected(..)"),
            Self::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for TryPublishError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => {
                f.write_str("multicast buffer full: the target slot is still held by a consumer")
            }
            Self::Busy(_) => f.write_str("another thread is publishing into this multicast buffer"),
            Self::Disconnected(_) => {
                f.write_str("no consumer is subscribed to this multicast buffer")
            }
            Self::Closed(_) => f.write_str("the publisher of this multicast buffer has gone"),
        }
    }
}

#[cfg(feature = "defmt")]
impl<T> defmt::Format for TryPublishError<T> {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self {
            Self::Full(_) => defmt::write!(f, "Full(..)"),
            Self::Busy(_) => defmt::write!(f, "Busy(..)"),
            Self::Disconnected(_) => defmt::write!(f, "Disconnected(..)"),
            Self::Closed(_) => defmt::write!(f, "Closed(..)"),
        }
    }
}

/// Why a receive (a subscriber's `try_recv`, `try_read` or `recv_batch`, or the index API's
/// `try_consume`) returned no value.
///
/// # Examples
///
/// ```
/// use multicast_buffer_core::{InlineBuffer, TryConsumeError};
///
/// let buf: InlineBuffer<u32, 4, 1> = InlineBuffer::new();
/// assert_eq!(buf.try_consume(0), Err(TryConsumeError::Empty));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TryConsumeError {
    /// This consumer has read everything published so far.
    Empty,
    /// Another thread is consuming with the same consumer index at this moment, or a
    /// [`Subscriber`](crate::Subscriber) holds it. Each index belongs to one consumer; a second
    /// reader is refused instead of corrupting the counts.
    Busy,
    /// This consumer has read everything, and the publisher has gone: nothing more will come.
    Closed,
    /// This consumer was detached (by a `detach` call, or a publisher's lag limit) or its seat is
    /// vacant: it receives nothing until it rejoins.
    Detached {
        /// Values published since its last one that it has not received (and will not).
        missed: u64,
    },
}

// The `defmt::Format` impls are written by hand, not derived, so that the docs mark them with
// their feature (rustdoc cannot see the cfg of a derive); the same output as the derive's.
#[cfg(feature = "defmt")]
impl defmt::Format for TryConsumeError {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self {
            Self::Empty => defmt::write!(f, "Empty"),
            Self::Busy => defmt::write!(f, "Busy"),
            Self::Closed => defmt::write!(f, "Closed"),
            Self::Detached { missed } => defmt::write!(f, "Detached {{ missed: {=u64} }}", missed),
        }
    }
}

impl fmt::Display for TryConsumeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("no new value for this consumer"),
            Self::Busy => f.write_str("another thread is consuming with this consumer index"),
            Self::Closed => f.write_str("the publisher has gone and every value was read"),
            Self::Detached { missed } => {
                write!(f, "this consumer was detached; it missed {missed} values so far")
            }
        }
    }
}

/// Why a buffer could not be built with the requested shape (or, on the heap, its memory could
/// not be allocated).
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "alloc")] {
/// use multicast_buffer_core::{ConfigError, HeapBuffer};
///
/// let err = HeapBuffer::<u64>::try_new(100, 2).unwrap_err();
/// assert_eq!(err, ConfigError::CapacityNotPowerOfTwo { capacity: 100 });
/// assert_eq!(
///     err.to_string(),
///     "multicast buffer capacity must be a power of two, got 100 (the next power of two is 128)"
/// );
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigError {
    /// The capacity was zero.
    ZeroCapacity,
    /// The capacity was not a power of two.
    CapacityNotPowerOfTwo {
        /// The capacity asked for.
        capacity: usize,
    },
    /// The capacity was above [`MAX_CAPACITY`](crate::MAX_CAPACITY).
    CapacityTooLarge {
        /// The capacity asked for.
        capacity: usize,
    },
    /// The consumer count was above [`MAX_CONSUMERS`](crate::MAX_CONSUMERS).
    TooManyConsumers {
        /// The consumer count asked for.
        consumers: usize,
    },
    /// The shape was allowed, but the allocator could not provide the memory for it (or its
    /// size in bytes would overflow `isize`). Only from the heap constructors (feature `alloc`);
    /// nothing was allocated.
    AllocationFailed {
        /// The capacity asked for.
        capacity: usize,
    },
    /// Zero seats were asked for where consumers join at run time (the std adapter's
    /// `channel`): no subscriber could ever join, and every publish would find nobody.
    NoSeats,
}

#[cfg(feature = "defmt")]
impl defmt::Format for ConfigError {
    fn format(&self, f: defmt::Formatter<'_>) {
        match *self {
            Self::ZeroCapacity => defmt::write!(f, "ZeroCapacity"),
            Self::CapacityNotPowerOfTwo { capacity } => {
                defmt::write!(f, "CapacityNotPowerOfTwo {{ capacity: {=usize} }}", capacity)
            }
            Self::CapacityTooLarge { capacity } => {
                defmt::write!(f, "CapacityTooLarge {{ capacity: {=usize} }}", capacity)
            }
            Self::TooManyConsumers { consumers } => {
                defmt::write!(f, "TooManyConsumers {{ consumers: {=usize} }}", consumers)
            }
            Self::AllocationFailed { capacity } => {
                defmt::write!(f, "AllocationFailed {{ capacity: {=usize} }}", capacity)
            }
            Self::NoSeats => defmt::write!(f, "NoSeats"),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::ZeroCapacity => {
                f.write_str("multicast buffer capacity must be greater than zero")
            }
            Self::CapacityNotPowerOfTwo { capacity } => {
                write!(f, "multicast buffer capacity must be a power of two, got {capacity}")?;
                match capacity.checked_next_power_of_two() {
                    Some(next) if next <= crate::MAX_CAPACITY => {
                        write!(f, " (the next power of two is {next})")
                    }
                    _ => Ok(()),
                }
            }
            Self::CapacityTooLarge { capacity } => write!(
                f,
                "multicast buffer capacity must be at most 2^{} (MAX_CAPACITY), got {capacity}",
                crate::MAX_CAPACITY.trailing_zeros()
            ),
            Self::TooManyConsumers { consumers } => write!(
                f,
                "multicast buffer supports at most {} consumers, got {consumers}",
                crate::MAX_CONSUMERS
            ),
            Self::AllocationFailed { capacity } => write!(
                f,
                "could not allocate the memory for a multicast buffer of {capacity} slots"
            ),
            Self::NoSeats => f.write_str(
                "a multicast channel needs at least one seat: with 0, no subscriber could join",
            ),
        }
    }
}

/// Every seat of the buffer is taken: `subscribe` found no vacant one. Seats are fixed at construction; one becomes free when its subscriber is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NoFreeSeat {
    /// The buffer's number of seats.
    pub seats: usize,
}

#[cfg(feature = "defmt")]
impl defmt::Format for NoFreeSeat {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "NoFreeSeat {{ seats: {=usize} }}", self.seats);
    }
}

impl fmt::Display for NoFreeSeat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "all {} seats of this multicast buffer are taken", self.seats)
    }
}

impl core::error::Error for NoFreeSeat {}
impl core::error::Error for ConfigError {}
impl core::error::Error for TryConsumeError {}
impl<T> core::error::Error for TryPublishError<T> {}
