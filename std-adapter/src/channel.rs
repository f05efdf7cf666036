//! Handles over a shared heap buffer, with blocking (and, with the `async` feature, async) waits.
//!
//! [`channel`] builds an `Arc<HeapBuffer<T>>` with vacant seats and returns the [`Publisher`]
//! and a cloneable [`SubscribeHandle`]; each [`Subscriber`] takes a seat at run time and gives it
//! back when dropped. The handles delegate every operation to the core's
//! [`Publisher`](multicast_buffer_core::Publisher) and
//! [`Subscriber`](multicast_buffer_core::Subscriber): same guarantees, same errors. What this
//! module adds is waiting:
//!
//! - [`Subscriber::recv_blocking`] waits for a value, [`Publisher::publish_blocking`] for room,
//!   each with an optional timeout and following the handle's [`WaitStrategy`] (spin, yield,
//!   then park).
//! - With the `async` feature: `Subscriber::recv` and `Publisher::publish` futures,
//!   `Stream` for [`Subscriber`] and `Sink` for [`Publisher`].
//!
//! # Cost when nobody waits
//!
//! The waiter state (a flag, a thread slot and a task slot per seat, one set for the publisher)
//! is allocated by [`channel`]; waiting allocates nothing. Whatever the wait strategy:
//!
//! - [`Publisher::try_publish`] and [`Publisher::publish_iter`] add to the core's publish one
//!   `fence(SeqCst)`, one relaxed load of the waiter count and a branch not taken (per call, so
//!   per batch for `publish_iter`).
//! - Every call of a [`Subscriber`] into the core's receive side ([`Subscriber::try_recv`], each
//!   try of [`Subscriber::recv_blocking`] and of the async `recv`, [`Subscriber::recv_batch`],
//!   [`Subscriber::try_read`], [`Subscriber::is_ready`], [`Subscriber::rejoin`]) and the drop of
//!   a [`ReadGuard`] add one `fence(SeqCst)`, one relaxed load of the publisher's flag and a
//!   branch not taken, on every exit: a value, an error (`Empty` too) or unwinding. A call that
//!   returns no value may still have freed a slot (a detached subscriber gives back what it had
//!   not read; a claim whose `Clone` panicked gives its slot back), so every exit must look for
//!   a publisher to wake.
//!
//! No lock, no syscall, no shared read-modify-write. A waker that finds a waiter pays for a scan
//! of the seats' flags (publisher) and a lock and an unpark or a `Waker::wake` per waiter. See
//! the [`wait`](crate::wait) module for why the fences are needed.
//!
//! # Progress
//!
//! The `try_*` methods are wait-free, as in the core. The blocking and async ones wait for the
//! other side; a parked thread wakes up at least every [`WaitStrategy::park`] to check again, so a
//! missed wake-up cannot make it hang.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use multicast_buffer_core::{
    ConfigError, HeapBuffer, NoFreeSeat, SeatState, State, TryConsumeError, TryPublishError,
};

use crate::wait::{pause, Backoff, Step, WaitStrategy, Waiters, WakePublisher};

type Core<T> = Arc<HeapBuffer<T>>;

/// Creates a channel with `capacity` slots and `seats` vacant consumer seats; all memory,
/// including the waiter state, is allocated here.
///
/// # Panics
///
/// If `capacity` is zero, not a power of two or above [`MAX_CAPACITY`](crate::MAX_CAPACITY), or
/// `seats` is zero (no subscriber could ever join) or above
/// [`MAX_CONSUMERS`](crate::MAX_CONSUMERS), or the memory cannot be allocated; [`try_channel`]
/// returns an error instead.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use multicast_buffer::channel;
///
/// let (mut publisher, subscribers) = channel::<u64>(16, 4);
/// let mut subscriber = subscribers.subscribe().unwrap();
/// publisher.try_publish(1).unwrap();
/// assert_eq!(subscriber.recv_blocking(Some(Duration::from_secs(10))), Ok(1));
/// ```
#[track_caller]
pub fn channel<T>(capacity: usize, seats: usize) -> (Publisher<T>, SubscribeHandle<T>) {
    match try_channel(capacity, seats) {
        Ok(pair) => pair,
        Err(err) => panic!("{err}"),
    }
}

/// Creates a channel like [`channel`], or says why the shape is not allowed.
///
/// # Errors
///
/// [`ConfigError`] for a capacity that is zero, not a power of two or too large, for zero seats
/// ([`ConfigError::NoSeats`]) or too many, or when the memory cannot be allocated
/// ([`ConfigError::AllocationFailed`]).
///
/// # Examples
///
/// ```
/// use multicast_buffer::{try_channel, ConfigError};
///
/// let err = try_channel::<u8>(3, 1).unwrap_err();
/// assert_eq!(err, ConfigError::CapacityNotPowerOfTwo { capacity: 3 });
/// assert_eq!(try_channel::<u8>(8, 0).unwrap_err(), ConfigError::NoSeats);
/// ```
pub fn try_channel<T>(
    capacity: usize,
    seats: usize,
) -> Result<(Publisher<T>, SubscribeHandle<T>), ConfigError> {
    if seats == 0 {
        // Nobody could ever subscribe, and every publish would find nobody.
        return Err(ConfigError::NoSeats);
    }
    let buffer = Arc::new(HeapBuffer::try_with_seats(capacity, seats)?);
    let waiters = Arc::new(Waiters::new(seats));
    let inner = multicast_buffer_core::Publisher::new(Arc::clone(&buffer))
        .expect("a new buffer has no producer and is open");
    let publisher = Publisher {
        inner,
        wait: WaitStrategy::default(),
        #[cfg(feature = "async")]
        pending: None,
        closer: Closer(Arc::clone(&waiters)),
    };
    let handle = SubscribeHandle { buffer, waiters, wait: WaitStrategy::default() };
    Ok((publisher, handle))
}

/// Why [`Publisher::publish_blocking`] (or the async `publish`) did not publish; the value comes
/// back in each case.
///
/// # Examples
///
/// ```
/// use multicast_buffer::{channel, PublishError};
///
/// let (mut publisher, _subscribers) = channel::<String>(4, 1);
/// let err = publisher.publish_blocking("nobody listens".into(), None).unwrap_err();
/// assert!(matches!(err, PublishError::Disconnected(_)));
/// assert_eq!(err.into_inner(), "nobody listens");
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishError<T> {
    /// The buffer stayed full until the timeout: the slowest consumer is `capacity` values
    /// behind.
    Timeout(T),
    /// No consumer is subscribed (none joined yet, or all left or were detached).
    Disconnected(T),
}

impl<T> PublishError<T> {
    /// Returns the value that was not published.
    pub fn into_inner(self) -> T {
        match self {
            Self::Timeout(value) | Self::Disconnected(value) => value,
        }
    }
}

// By hand, so that it needs no `T: Debug`: the payload is not shown.
impl<T> fmt::Debug for PublishError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout(_) => "Timeout(..)",
            Self::Disconnected(_) => "Disconnected(..)",
        })
    }
}

impl<T> fmt::Display for PublishError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout(_) => "timed out waiting for room in the multicast buffer",
            Self::Disconnected(_) => "no consumer is subscribed to this multicast buffer",
        })
    }
}

impl<T> std::error::Error for PublishError<T> {}

/// Why [`Subscriber::recv_blocking`] (or the async `recv`) returned no value.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use multicast_buffer::{channel, RecvError};
///
/// let (publisher, subscribers) = channel::<u8>(4, 1);
/// let mut subscriber = subscribers.subscribe().unwrap();
/// assert_eq!(subscriber.recv_blocking(Some(Duration::ZERO)), Err(RecvError::Timeout));
/// drop(publisher);
/// assert_eq!(subscriber.recv_blocking(None), Err(RecvError::Closed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecvError {
    /// Nothing arrived before the timeout (never from the async API).
    Timeout,
    /// Everything was read and the publisher has gone: nothing more will come.
    Closed,
    /// This subscriber was detached (by [`SubscribeHandle::detach`] or the publisher's
    /// [lag limit](Publisher::set_lag_limit)); it receives nothing until it
    /// [rejoins](Subscriber::rejoin).
    Detached {
        /// Values published since its last one that it did not receive (and will not).
        missed: u64,
    },
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("timed out waiting for a value"),
            Self::Closed => f.write_str("the publisher has gone and every value was read"),
            Self::Detached { missed } => {
                write!(f, "this subscriber was detached; it missed {missed} values so far")
            }
        }
    }
}

impl std::error::Error for RecvError {}

/// The producer of a [`channel`]: the core's [`Publisher`](multicast_buffer_core::Publisher)
/// plus wake-ups for waiting subscribers. Not `Clone`; dropping it closes the channel (the
/// subscribers drain what is left, then get [`RecvError::Closed`]) and wakes every waiter.
pub struct Publisher<T> {
    inner: multicast_buffer_core::Publisher<Core<T>>,
    wait: WaitStrategy,
    /// The value `Sink::start_send` accepted and that did not fit yet.
    #[cfg(feature = "async")]
    pub(crate) pending: Option<T>,
    /// Declared last: dropped after `inner`, which closes the buffer, it wakes the waiters.
    closer: Closer,
}

// No field is ever pinned (the `Sink` moves its held value in and out by `&mut`), so the
// publisher can be `Unpin` whatever `T` is.
impl<T> Unpin for Publisher<T> {}

/// Wakes every waiter when dropped: the last field of [`Publisher`], so it runs after the core
/// publisher closed the buffer.
struct Closer(Arc<Waiters>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.after_publish();
    }
}

impl<T> Publisher<T> {
    /// Publishes `value` to every subscriber, or gives it back at once; wakes the waiting
    /// subscribers.
    ///
    /// # Errors
    ///
    /// As the core's [`try_publish`](multicast_buffer_core::Publisher::try_publish):
    /// [`TryPublishError::Full`] or [`TryPublishError::Disconnected`], with the value.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut publisher, subscribers) = multicast_buffer::channel(1, 1);
    /// let _subscriber = subscribers.subscribe().unwrap();
    /// publisher.try_publish(1).unwrap();
    /// assert!(publisher.try_publish(2).unwrap_err().is_full());
    /// ```
    #[inline]
    pub fn try_publish(&mut self, value: T) -> Result<(), TryPublishError<T>> {
        let result = self.inner.try_publish(value);
        if result.is_ok() {
            self.closer.0.after_publish();
        }
        result
    }

    /// Publishes `value`, waiting for room for at most `timeout` (`None`: as long as it takes),
    /// by the handle's [`WaitStrategy`].
    ///
    /// # Errors
    ///
    /// [`PublishError::Timeout`] if the buffer stayed full, [`PublishError::Disconnected`] if
    /// no consumer is subscribed (also when the last one leaves while this call waits); the
    /// value comes back in both.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (mut publisher, subscribers) = multicast_buffer::channel(1, 1);
    /// let mut subscriber = subscribers.subscribe().unwrap();
    /// publisher.publish_blocking(1, None).unwrap();
    /// let reader = std::thread::spawn(move || {
    ///     let first = subscriber.recv_blocking(None);
    ///     (first, subscriber.recv_blocking(None))
    /// });
    /// publisher.publish_blocking(2, Some(Duration::from_secs(60))).unwrap(); // waits for room
    /// assert_eq!(reader.join().unwrap(), (Ok(1), Ok(2)));
    /// ```
    pub fn publish_blocking(
        &mut self,
        value: T,
        timeout: Option<Duration>,
    ) -> Result<(), PublishError<T>> {
        let mut value = value;
        let mut backoff = Backoff::new(self.wait, timeout);
        let armed = ProducerArmed { waiters: &self.closer.0, armed: false };
        let mut armed = armed;
        loop {
            value = match self.inner.try_publish(value) {
                Ok(()) => {
                    armed.disarm();
                    armed.waiters.after_publish();
                    return Ok(());
                }
                Err(TryPublishError::Disconnected(value)) => {
                    return Err(PublishError::Disconnected(value))
                }
                // `Busy` and `Closed` cannot happen to the holder of the producer role; waiting
                // is the safe reading of either.
                Err(err) => err.into_inner(),
            };
            match backoff.next() {
                Step::TimedOut => return Err(PublishError::Timeout(value)),
                Step::Park(_) if !armed.armed => {
                    // Arm, then try again before sleeping (the Dekker pattern: see `wait`).
                    armed.waiters.arm_producer_thread();
                    armed.armed = true;
                }
                step => pause(&step),
            }
        }
    }

    /// Publishes values from `values` while there is room (at most `capacity`), with one
    /// update of the write position and one wake-up check for the batch; returns how many.
    /// What did not fit stays in the iterator.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut publisher, subscribers) = multicast_buffer::channel(4, 1);
    /// let mut subscriber = subscribers.subscribe().unwrap();
    /// let mut values = 0..10;
    /// assert_eq!(publisher.publish_iter(&mut values), 4);
    /// assert_eq!(values.next(), Some(4));
    /// assert_eq!(subscriber.try_recv(), Ok(0));
    /// ```
    pub fn publish_iter<I: Iterator<Item = T>>(&mut self, values: I) -> usize {
        let published = self.inner.publish_iter(values);
        if published != 0 {
            self.closer.0.after_publish();
        }
        published
    }

    /// Sets the lag limit: with `Some(n)`, a publish that finds the buffer full detaches every
    /// subscriber more than `n` values behind and tries again (see the core's
    /// [`set_lag_limit`](multicast_buffer_core::Publisher::set_lag_limit)). The detached ones
    /// get [`RecvError::Detached`] from their next receive.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer::RecvError;
    ///
    /// let (mut publisher, subscribers) = multicast_buffer::channel(2, 2);
    /// let mut fast = subscribers.subscribe().unwrap();
    /// let mut slow = subscribers.subscribe().unwrap();
    /// publisher.set_lag_limit(Some(1));
    /// publisher.try_publish(0).unwrap();
    /// assert_eq!((fast.try_recv(), slow.try_recv()), (Ok(0), Ok(0)));
    /// for v in 1..4 {
    ///     publisher.try_publish(v).unwrap(); // the third detaches `slow`
    ///     assert_eq!(fast.try_recv(), Ok(v));
    /// }
    /// assert_eq!(slow.recv_blocking(None), Err(RecvError::Detached { missed: 3 }));
    /// ```
    pub fn set_lag_limit(&mut self, limit: Option<usize>) {
        self.inner.set_lag_limit(limit);
    }

    /// The number of subscribed consumers: those the next publish counts (a subscriber that has
    /// just joined is counted, one that has left or was detached is not).
    ///
    /// # Examples
    ///
    /// ```
    /// let (publisher, subscribers) = multicast_buffer::channel::<u8>(4, 2);
    /// let subscriber = subscribers.subscribe().unwrap();
    /// assert_eq!(publisher.subscribers(), 1);
    /// drop(subscriber);
    /// assert_eq!(publisher.subscribers(), 0);
    /// ```
    pub fn subscribers(&self) -> usize {
        // An observation from `&self`; the next publish applies the joins and departures.
        self.inner.buffer().subscribed()
    }

    /// The wait strategy of [`publish_blocking`](Self::publish_blocking).
    pub fn wait_strategy(&self) -> WaitStrategy {
        self.wait
    }

    /// Sets the wait strategy of [`publish_blocking`](Self::publish_blocking) (and of nothing
    /// else: async waits never spin).
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer::WaitStrategy;
    ///
    /// let (mut publisher, _subscribers) = multicast_buffer::channel::<u8>(4, 1);
    /// publisher.set_wait_strategy(WaitStrategy::YIELD);
    /// assert_eq!(publisher.wait_strategy(), WaitStrategy::YIELD);
    /// ```
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.wait = strategy;
    }

    /// A snapshot of the channel's state: its shape, the write position, how many are
    /// subscribed, the slowest subscriber and how many values it holds (see [`State`]).
    ///
    /// The core buffer itself is not handed out: its `detach` and `rejoin` would wake nobody
    /// waiting here. [`SubscribeHandle::detach`] does.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut publisher, subscribers) = multicast_buffer::channel::<u8>(8, 2);
    /// let _subscriber = subscribers.subscribe().unwrap();
    /// publisher.try_publish(1).unwrap();
    /// assert_eq!(publisher.state().held, 1);
    /// ```
    pub fn state(&self) -> State {
        self.inner.buffer().state()
    }

    /// Every seat seen from outside, in index order: status (subscribed, joining, detached or
    /// vacant), position and lag; see [`SubscribeHandle::seat_state`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut publisher, subscribers) = multicast_buffer::channel::<u8>(8, 2);
    /// let _subscriber = subscribers.subscribe().unwrap();
    /// publisher.publish_iter(0..3);
    /// let lags: Vec<usize> = publisher.seat_states().map(|seat| seat.lag).collect();
    /// assert_eq!(lags, [3, 0]);
    /// ```
    pub fn seat_states(&self) -> impl Iterator<Item = SeatState> + '_ {
        self.inner.buffer().seat_states()
    }

    /// The waiter state.
    #[cfg(feature = "async")]
    pub(crate) fn waiters(&self) -> &Waiters {
        &self.closer.0
    }

    /// The core publisher.
    #[cfg(feature = "async")]
    pub(crate) fn core(&mut self) -> &mut multicast_buffer_core::Publisher<Core<T>> {
        &mut self.inner
    }
}

/// Disarms the producer's parker when dropped (also on a panic).
struct ProducerArmed<'a> {
    waiters: &'a Waiters,
    armed: bool,
}

impl ProducerArmed<'_> {
    fn disarm(&mut self) {
        if self.armed {
            self.waiters.disarm_producer();
            self.armed = false;
        }
    }
}

impl Drop for ProducerArmed<'_> {
    fn drop(&mut self) {
        self.disarm();
    }
}

impl<T> fmt::Debug for Publisher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("inner", &self.inner)
            .field("wait", &self.wait)
            .field("waiters", &self.closer.0)
            .finish_non_exhaustive()
    }
}

/// A cloneable handle to a [`channel`]'s seats: subscribes at run time, detaches, observes.
/// It does not keep the channel open: the publisher closes it when dropped.
#[derive(Debug)]
pub struct SubscribeHandle<T> {
    buffer: Core<T>,
    waiters: Arc<Waiters>,
    wait: WaitStrategy,
}

impl<T> Clone for SubscribeHandle<T> {
    fn clone(&self) -> Self {
        Self {
            buffer: Arc::clone(&self.buffer),
            waiters: Arc::clone(&self.waiters),
            wait: self.wait,
        }
    }
}

impl<T> SubscribeHandle<T> {
    /// Takes a vacant seat: the new [`Subscriber`] receives every value published from the
    /// publisher's next one on. Nothing is allocated but the handle's two `Arc` clones.
    ///
    /// # Errors
    ///
    /// [`NoFreeSeat`] when every seat is taken.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_publisher, subscribers) = multicast_buffer::channel::<u8>(4, 1);
    /// let first = subscribers.subscribe().unwrap();
    /// assert!(subscribers.subscribe().is_err());
    /// drop(first);
    /// assert!(subscribers.subscribe().is_ok());
    /// ```
    pub fn subscribe(&self) -> Result<Subscriber<T>, NoFreeSeat> {
        // Through `releasing`: taking a seat may settle what its last holder left.
        let inner = self
            .waiters
            .releasing(|| multicast_buffer_core::Subscriber::subscribe(Arc::clone(&self.buffer)))?;
        Ok(Subscriber { inner, wait: self.wait, leaver: Leaver(Arc::clone(&self.waiters)) })
    }

    /// Detaches the subscriber in seat `index` so that the publisher no longer waits for it, at
    /// once and without its cooperation, and wakes whoever waits on it: its next receive
    /// returns [`RecvError::Detached`] with the number of values it missed, and it can
    /// [`rejoin`](Subscriber::rejoin). Returns `false` if the seat was not subscribed.
    ///
    /// # Panics
    ///
    /// If `index` is not below the number of seats.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer::RecvError;
    ///
    /// let (mut publisher, subscribers) = multicast_buffer::channel(4, 1);
    /// let mut subscriber = subscribers.subscribe().unwrap();
    /// publisher.try_publish(1).unwrap();
    /// assert_eq!(subscriber.try_recv(), Ok(1));
    /// publisher.try_publish(2).unwrap();
    /// assert!(subscribers.detach(subscriber.index()));
    /// assert_eq!(subscriber.recv_blocking(None), Err(RecvError::Detached { missed: 1 }));
    /// ```
    #[track_caller]
    pub fn detach(&self, index: usize) -> bool {
        let detached = self.buffer.detach(index);
        if detached {
            self.waiters.wake_seat(index);
            self.waiters.after_release();
        }
        detached
    }

    /// Detaches every subscriber more than `max_lag` values behind; returns how many.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut publisher, subscribers) = multicast_buffer::channel(4, 2);
    /// let _slow = subscribers.subscribe().unwrap();
    /// let mut fast = subscribers.subscribe().unwrap();
    /// publisher.publish_iter(0..4);
    /// while fast.try_recv().is_ok() {}
    /// assert_eq!(subscribers.detach_lagging(2), 1);
    /// ```
    pub fn detach_lagging(&self, max_lag: usize) -> usize {
        let detached = self.buffer.detach_lagging(max_lag);
        if detached != 0 {
            self.waiters.wake_all();
        }
        detached
    }

    /// A snapshot of the buffer's state.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_publisher, subscribers) = multicast_buffer::channel::<u8>(8, 3);
    /// let state = subscribers.state();
    /// assert_eq!((state.capacity, state.consumers, state.subscribed), (8, 3, 0));
    /// ```
    pub fn state(&self) -> State {
        self.buffer.state()
    }

    /// Seat `index` seen from outside, without owning its subscriber: its
    /// [status](crate::SeatStatus) (subscribed, joining, detached or vacant), its
    /// position and its lag (for a subscriber detached but not told yet, every value published
    /// since its position: what its next receive reports as missed). For a monitor that watches
    /// the consumers and [detaches](Self::detach) a stalled one, or logs how far behind each is.
    ///
    /// # Panics
    ///
    /// If `index` is not below the number of seats.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer::SeatStatus;
    ///
    /// let (mut publisher, subscribers) = multicast_buffer::channel(4, 2);
    /// let mut fast = subscribers.subscribe().unwrap();
    /// let stalled = subscribers.subscribe().unwrap();
    /// publisher.publish_iter(0..4);
    /// while fast.try_recv().is_ok() {}
    /// let seat = subscribers.seat_state(stalled.index());
    /// assert_eq!((seat.status, seat.lag), (SeatStatus::Subscribed, 4));
    /// assert!(subscribers.detach(stalled.index()));
    /// assert_eq!(subscribers.seat_state(stalled.index()).status, SeatStatus::Detached);
    /// ```
    #[track_caller]
    pub fn seat_state(&self, index: usize) -> SeatState {
        self.buffer.seat_state(index)
    }

    /// Every seat seen from outside, in index order (see [`seat_state`](Self::seat_state)).
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer::SeatStatus;
    ///
    /// let (_publisher, subscribers) = multicast_buffer::channel::<u8>(4, 3);
    /// let _subscriber = subscribers.subscribe().unwrap();
    /// let joining = subscribers.seat_states().filter(|s| s.status == SeatStatus::Joining);
    /// assert_eq!(joining.count(), 1);
    /// ```
    pub fn seat_states(&self) -> impl Iterator<Item = SeatState> + '_ {
        self.buffer.seat_states()
    }

    /// Whether the publisher has gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let (publisher, subscribers) = multicast_buffer::channel::<u8>(8, 3);
    /// assert!(!subscribers.is_closed());
    /// drop(publisher);
    /// assert!(subscribers.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.buffer.is_closed()
    }

    /// Sets the wait strategy that subscribers made from now on by this handle start with.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer::WaitStrategy;
    ///
    /// let (_publisher, mut subscribers) = multicast_buffer::channel::<u8>(8, 1);
    /// subscribers.set_wait_strategy(WaitStrategy::SPIN);
    /// assert_eq!(subscribers.subscribe().unwrap().wait_strategy(), WaitStrategy::SPIN);
    /// ```
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.wait = strategy;
    }
}

/// One consumer seat of a [`channel`]: the core's
/// [`Subscriber`](multicast_buffer_core::Subscriber) plus waiting. Dropping it unsubscribes
/// (and wakes the publisher if it waits for room that the seat held).
pub struct Subscriber<T> {
    inner: multicast_buffer_core::Subscriber<Core<T>>,
    wait: WaitStrategy,
    /// Declared last: dropped after `inner` unsubscribed, it wakes the publisher.
    leaver: Leaver,
}

/// Wakes the publisher when dropped: the last field of [`Subscriber`], so it runs after the core
/// subscriber left its seat.
struct Leaver(Arc<Waiters>);

impl Drop for Leaver {
    fn drop(&mut self) {
        self.0.after_release();
    }
}

impl<T> Drop for Subscriber<T> {
    fn drop(&mut self) {
        // Before the seat is given up (by `inner`, dropped after this): nobody else can have
        // armed it.
        self.leaver.0.disarm_seat(self.inner.index());
    }
}

impl<T> Subscriber<T> {
    /// Takes the next value without waiting.
    ///
    /// # Errors
    ///
    /// As the core's [`try_recv`](multicast_buffer_core::Subscriber::try_recv):
    /// [`TryConsumeError::Empty`], [`TryConsumeError::Closed`] or
    /// [`TryConsumeError::Detached`]; `Closed` also for a subscriber that joined after the last
    /// publish, once the publisher has gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer::TryConsumeError;
    ///
    /// let (mut publisher, subscribers) = multicast_buffer::channel(4, 1);
    /// let mut subscriber = subscribers.subscribe().unwrap();
    /// assert_eq!(subscriber.try_recv(), Err(TryConsumeError::Empty));
    /// publisher.try_publish(7).unwrap();
    /// assert_eq!(subscriber.try_recv(), Ok(7));
    /// ```
    #[inline]
    pub fn try_recv(&mut self) -> Result<T, TryConsumeError>
    where
        T: Clone,
    {
        self.recv_now()
    }

    /// Takes the next value, waiting for at most `timeout` (`None`: as long as it takes), by the
    /// handle's [`WaitStrategy`].
    ///
    /// # Errors
    ///
    /// [`RecvError::Timeout`], [`RecvError::Closed`] once everything was read and the publisher
    /// has gone, [`RecvError::Detached`] after a detach.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (mut publisher, subscribers) = multicast_buffer::channel(4, 1);
    /// let mut subscriber = subscribers.subscribe().unwrap();
    /// let reader = std::thread::spawn(move || subscriber.recv_blocking(Some(Duration::from_secs(60))));
    /// publisher.publish_blocking("hello", None).unwrap();
    /// assert_eq!(reader.join().unwrap(), Ok("hello"));
    /// ```
    pub fn recv_blocking(&mut self, timeout: Option<Duration>) -> Result<T, RecvError>
    where
        T: Clone,
    {
        let mut backoff = Backoff::new(self.wait, timeout);
        let index = self.inner.index();
        let Self { inner, leaver, .. } = self;
        let mut armed = SeatArmed { waiters: &leaver.0, index, armed: false };
        loop {
            match armed.waiters.releasing(|| inner.try_recv()) {
                Ok(value) => {
                    armed.disarm();
                    return Ok(value);
                }
                Err(err) => {
                    if let Some(err) = final_error(err) {
                        return Err(err);
                    }
                }
            }
            match backoff.next() {
                Step::TimedOut => return Err(RecvError::Timeout),
                Step::Park(_) if !armed.armed => {
                    // Arm, then try again before sleeping (the Dekker pattern: see `wait`).
                    armed.waiters.arm_seat_thread(index);
                    armed.armed = true;
                }
                step => pause(&step),
            }
        }
    }

    /// Takes the values available now (at most `max`), handing each to `f`; returns how many.
    ///
    /// # Errors
    ///
    /// As [`try_recv`](Self::try_recv).
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut publisher, subscribers) = multicast_buffer::channel(8, 1);
    /// let mut subscriber = subscribers.subscribe().unwrap();
    /// publisher.publish_iter(1..=4);
    /// let mut sum = 0;
    /// assert_eq!(subscriber.recv_batch(usize::MAX, |v| sum += v), Ok(4));
    /// assert_eq!(sum, 10);
    /// ```
    pub fn recv_batch(&mut self, max: usize, f: impl FnMut(T)) -> Result<usize, TryConsumeError>
    where
        T: Clone,
    {
        // Also when `f` panics after some values were taken.
        self.leaver.0.releasing(|| self.inner.recv_batch(max, f))
    }

    /// Borrows the next value in place, without cloning (`T` need not be `Clone`); the slot is
    /// released, and a publisher waiting for room woken, when the guard is dropped.
    ///
    /// # Errors
    ///
    /// As [`try_recv`](Self::try_recv).
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut publisher, subscribers) = multicast_buffer::channel(4, 1);
    /// let mut subscriber = subscribers.subscribe().unwrap();
    /// publisher.try_publish(vec![1u8; 1024]).unwrap();
    /// assert_eq!(subscriber.try_read().unwrap().len(), 1024);
    /// ```
    pub fn try_read(&mut self) -> Result<ReadGuard<'_, T>, TryConsumeError> {
        let inner = self.leaver.0.releasing(|| self.inner.try_read())?;
        Ok(ReadGuard { inner, release: WakePublisher(&self.leaver.0) })
    }

    /// After [`RecvError::Detached`]: asks to be counted again, from the publisher's next value
    /// on. Returns `false` if this subscriber was not detached or is already rejoining.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut publisher, subscribers) = multicast_buffer::channel(4, 1);
    /// let mut subscriber = subscribers.subscribe().unwrap();
    /// publisher.try_publish(0).unwrap();
    /// assert_eq!(subscriber.try_recv(), Ok(0));
    /// publisher.try_publish(1).unwrap();
    /// subscribers.detach(subscriber.index());
    /// assert!(subscriber.recv_blocking(None).is_err());
    /// assert!(subscriber.rejoin());
    /// publisher.try_publish(2).unwrap();
    /// assert_eq!(subscriber.recv_blocking(None), Ok(2));
    /// ```
    pub fn rejoin(&mut self) -> bool {
        self.leaver.0.releasing(|| self.inner.rejoin())
    }

    /// Whether a call would return something other than "empty" now: a value, closed or
    /// detached.
    pub fn is_ready(&mut self) -> bool {
        // A look may settle a detach, giving slots back.
        self.leaver.0.releasing(|| self.inner.is_ready())
    }

    /// Values published that this subscriber has not read yet: at most the capacity while it is
    /// subscribed, 0 while it joins and once it was told it is detached.
    ///
    /// A subscriber that has been detached but not told yet (its next receive returns
    /// [`RecvError::Detached`]) counts every value published since its position: its lag grows
    /// past the capacity (2,010 on a 256-slot channel, say) and is the `missed` its next receive
    /// reports. A monitor reads every seat's lag, and whether it is detached, without owning the
    /// subscriber: [`SubscribeHandle::seat_state`].
    pub fn lag(&self) -> usize {
        self.inner.lag()
    }

    /// The seat this subscriber holds (for [`SubscribeHandle::detach`]).
    pub fn index(&self) -> usize {
        self.inner.index()
    }

    /// The wait strategy of [`recv_blocking`](Self::recv_blocking).
    pub fn wait_strategy(&self) -> WaitStrategy {
        self.wait
    }

    /// Sets the wait strategy of [`recv_blocking`](Self::recv_blocking).
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer::WaitStrategy;
    ///
    /// let (_publisher, subscribers) = multicast_buffer::channel::<u8>(4, 1);
    /// let mut subscriber = subscribers.subscribe().unwrap();
    /// subscriber.set_wait_strategy(WaitStrategy::PARK);
    /// assert_eq!(subscriber.wait_strategy(), WaitStrategy::PARK);
    /// ```
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.wait = strategy;
    }

    /// A snapshot of the channel's state (see [`Publisher::state`]).
    pub fn state(&self) -> State {
        self.inner.buffer().state()
    }

    /// The waiter state.
    #[cfg(feature = "async")]
    pub(crate) fn waiters(&self) -> &Waiters {
        &self.leaver.0
    }

    /// One receive attempt; wakes the publisher if it waits for room, whatever the outcome
    /// (see [`Waiters::releasing`]).
    #[inline]
    pub(crate) fn recv_now(&mut self) -> Result<T, TryConsumeError>
    where
        T: Clone,
    {
        self.leaver.0.releasing(|| self.inner.try_recv())
    }
}

/// The error a receive returns for a core error, or `None` for "empty: wait".
pub(crate) fn final_error(err: TryConsumeError) -> Option<RecvError> {
    match err {
        TryConsumeError::Closed => Some(RecvError::Closed),
        TryConsumeError::Detached { missed } => Some(RecvError::Detached { missed }),
        // `Empty`, and `Busy`, which cannot happen to a seat's holder: wait.
        _ => None,
    }
}

/// Disarms a seat's parker when dropped (also on a panic in `T::clone`).
struct SeatArmed<'a> {
    waiters: &'a Waiters,
    index: usize,
    armed: bool,
}

impl SeatArmed<'_> {
    fn disarm(&mut self) {
        if self.armed {
            self.waiters.disarm_seat(self.index);
            self.armed = false;
        }
    }
}

impl Drop for SeatArmed<'_> {
    fn drop(&mut self) {
        self.disarm();
    }
}

impl<T> fmt::Debug for Subscriber<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("inner", &self.inner)
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

/// A value read in place by [`Subscriber::try_read`]; derefs to `&T`. Dropping it releases the
/// slot and wakes a publisher waiting for room.
pub struct ReadGuard<'a, T> {
    inner: multicast_buffer_core::ReadGuard<'a, Core<T>>,
    /// Declared last: runs after `inner` released the slot.
    release: WakePublisher<'a>,
}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: fmt::Debug> fmt::Debug for ReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _ = &self.release;
        fmt::Debug::fmt(&**self, f)
    }
}
