//! The buffer: the producer's line, the storage, and the public API of the index API and the
//! observers. The protocol itself is in [`protocol`](crate::protocol).

use core::fmt;
use core::marker::PhantomData;

use crate::protocol::{
    available, behind, give_role, since, take_role, Padded, Producer, Ring, Seat, Settle, CLOSED,
    COLD, FLAGS, HELD, JOINING, MAX_READERS, MEMBERSHIP, ONE, RUNNING, STOPPING, VACANT,
};
use crate::{Storage, TryConsumeError, TryPublishError};

/// The most consumers a buffer can have: 1024 on 64-bit targets, 254 on smaller ones (a value's
/// count, its readers plus one, is a byte there).
pub const MAX_CONSUMERS: usize = if MAX_READERS < 1024 { MAX_READERS } else { 1024 };

/// The largest capacity a buffer can have: `2^(usize::BITS - 6)` slots (`2^58` on 64-bit
/// targets, `2^26` on 32-bit ones), a quarter of the wrap of the position counters, so that a
/// distance between two positions is never ambiguous, and a wrapping difference's sign tells
/// ahead from behind.
pub const MAX_CAPACITY: usize = 1 << (usize::BITS - 6);

/// A single-producer multi-consumer multicast ring buffer with per-slot reference counts.
///
/// Every consumer receives every published value exactly once, in publish order. Each slot
/// counts the consumers that still have to read its value; [`try_publish`](Self::try_publish)
/// refuses a value (and gives it back) while the slot it would go into is still held, so nothing
/// is ever overwritten unread. The last consumer to read a value receives it by move (the others
/// get clones), so a value is released as soon as every consumer has read it.
///
/// `S` is where the slots live: [`InlineBuffer`](crate::InlineBuffer) keeps them inside the
/// buffer (a `static` in firmware), `HeapBuffer` (feature `alloc`) on the heap.
///
/// `Send` when `T: Send`; `Sync` only when `T: Send + Sync` (consumers on several threads
/// clone the same value through `&T`, and the last reader moves it out on its own thread).
///
/// # Roles and misuse
///
/// One producer and, per consumer index, one reader at a time. The API takes `&self`, so safe
/// code could break that; it cannot break the buffer. A publish that finds another thread
/// publishing gets [`TryPublishError::Busy`]; the check is the one atomic read-modify-write of a
/// publish. A consume claims its position with one compare-and-swap before it reads, so two
/// threads consuming with one index at once each get different values (in order, between them)
/// or [`TryConsumeError::Busy`]; nothing is duplicated, lost or released twice. (If `T::clone`
/// panics in one of them while the other claims the next position, the value whose clone
/// panicked is skipped for that index, as it cannot be put back in front of the other's.)
///
/// # Progress
///
/// `try_publish` and `try_consume` are wait-free: a bounded number of steps, no lock, no loop
/// waiting for another party. They can therefore run in an interrupt handler while the other
/// side runs in thread mode on the same core. The producer waits for the slowest consumer only in
/// the sense that it gets [`TryPublishError::Full`] until that consumer reads.
///
/// # Positions
///
/// Positions count values: [`write_position`](Self::write_position) is the number of values
/// published, [`read_position`](Self::read_position) the number a consumer has read. They are
/// kept in a `usize` (no 64-bit atomics on 32-bit targets: those would need a lock) and wrap at
/// `2^(usize::BITS - 4)`: `2^60` on 64-bit targets, `2^28` on 32-bit ones, where the `u64`
/// accessors therefore return the position modulo `2^28`. The buffer works across the wrap.
///
/// # Seats
///
/// A buffer has a fixed number of consumer *seats* ([`consumer_count`](Self::consumer_count)),
/// chosen at construction; nothing is allocated afterwards. A seat is either subscribed (the
/// producer counts it in every value it publishes) or vacant. [`new`](Self::new) subscribes
/// every seat from position 0, for the index API; [`with_seats`](Self::with_seats) leaves them
/// vacant, for [`subscribe`](Self::subscribe). A consumer that stops reading can be
/// [detached](Self::detach) so that the producer no longer waits for it.
pub struct Buffer<T, S: Storage<T>> {
    /// The write word, the control word, the prepared end and the membership operations.
    pub(crate) producer: Padded<Producer>,
    /// The producer role (`LOCKED`), on a line of its own (see `take_role`).
    pub(crate) role: Padded<crate::sync::AtomicUsize>,
    pub(crate) storage: S,
    _values: PhantomData<T>,
}

/// The compile-time check of an inline buffer's shape. An associated constant rather than an
/// inline `const` block, so that the compiler's error names it with the shape that failed
/// (`InlineShape::<12, 2>::CHECKED`), next to one of the messages below.
#[cfg(not(multicast_loom))]
struct InlineShape<const CAP: usize, const N: usize>;

#[cfg(not(multicast_loom))]
impl<const CAP: usize, const N: usize> InlineShape<CAP, N> {
    const CHECKED: () = {
        assert!(
            CAP.is_power_of_two(),
            "InlineBuffer<T, CAP, N>: the capacity CAP must be a non-zero power of two"
        );
        assert!(
            CAP <= MAX_CAPACITY,
            "InlineBuffer<T, CAP, N>: the capacity CAP must be at most MAX_CAPACITY"
        );
        assert!(
            N <= MAX_CONSUMERS,
            "InlineBuffer<T, CAP, N>: the consumer count N must be at most MAX_CONSUMERS"
        );
    };
}

#[cfg(not(multicast_loom))]
impl<T, const CAP: usize, const N: usize> Buffer<T, crate::Inline<T, CAP, N>> {
    /// Creates a buffer with `CAP` slots and `N` consumers, stored inline.
    ///
    /// A `const fn`, so it can initialise a `static` in firmware without an allocator. `CAP` and
    /// `N` are checked at compile time: `CAP` must be a power of two between 1 and
    /// [`MAX_CAPACITY`], `N` at most [`MAX_CONSUMERS`].
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::InlineBuffer;
    ///
    /// static SENSOR: InlineBuffer<u32, 16, 2> = InlineBuffer::new();
    ///
    /// SENSOR.try_publish(7).unwrap();
    /// assert_eq!(SENSOR.consume(0), Some(7));
    /// assert_eq!(SENSOR.consume(1), Some(7));
    /// assert_eq!(SENSOR.consume(1), None);
    /// ```
    ///
    /// A capacity that is not a power of two does not compile:
    ///
    /// ```compile_fail,E0080
    /// use multicast_buffer_core::InlineBuffer;
    /// static BAD: InlineBuffer<u32, 12, 2> = InlineBuffer::new();
    /// ```
    pub const fn new() -> Self {
        let () = InlineShape::<CAP, N>::CHECKED;
        Self::from_storage(crate::Inline::new(false), 0, N == 0)
    }

    /// Creates a buffer with `CAP` slots and `N` vacant seats, stored inline: consumers join at
    /// run time with [`subscribe`](Self::subscribe) and leave by dropping their
    /// [`Subscriber`](crate::Subscriber). Checked like [`new`](Self::new).
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::{InlineBuffer, TryConsumeError};
    ///
    /// static TELEMETRY: InlineBuffer<u16, 8, 2> = InlineBuffer::with_seats();
    ///
    /// let mut publisher = TELEMETRY.publisher().unwrap();
    /// let mut subscriber = TELEMETRY.subscribe().unwrap();
    /// publisher.try_publish(1).unwrap();
    /// assert_eq!(subscriber.try_recv(), Ok(1));
    /// drop(subscriber); // leaves: later values no longer wait for it
    /// assert!(publisher.try_publish(2).unwrap_err().is_disconnected());
    /// ```
    pub const fn with_seats() -> Self {
        let () = InlineShape::<CAP, N>::CHECKED;
        Self::from_storage(crate::Inline::new(true), N, true)
    }
}

#[cfg(not(multicast_loom))]
impl<T, const CAP: usize, const N: usize> Default for Buffer<T, crate::Inline<T, CAP, N>> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "alloc")]
impl<T> Buffer<T, crate::Heap<T>> {
    /// Creates a buffer with `capacity` slots and `consumers` consumers, allocated on the heap
    /// once; publishing and consuming never allocate.
    ///
    /// # Panics
    ///
    /// If `capacity` is zero, not a power of two or above [`MAX_CAPACITY`], or `consumers` is
    /// above [`MAX_CONSUMERS`], or the allocator cannot provide the memory.
    /// [`try_new`](Self::try_new) returns an error instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::HeapBuffer;
    ///
    /// let buf = HeapBuffer::new(1024, 3);
    /// assert_eq!(buf.capacity(), 1024);
    /// assert_eq!(buf.consumer_count(), 3);
    /// # buf.try_publish(1u8).unwrap();
    /// ```
    #[track_caller]
    pub fn new(capacity: usize, consumers: usize) -> Self {
        match Self::try_new(capacity, consumers) {
            Ok(buffer) => buffer,
            Err(err) => panic!("{err}"),
        }
    }

    /// Creates a buffer like [`new`](Self::new), or says why the shape is not allowed.
    ///
    /// # Errors
    ///
    /// [`ConfigError`](crate::ConfigError) if `capacity` is zero, not a power of two or above
    /// [`MAX_CAPACITY`], or `consumers` is above [`MAX_CONSUMERS`];
    /// [`ConfigError::AllocationFailed`](crate::ConfigError::AllocationFailed) if the allocator
    /// cannot provide the memory (the allocation is tried, not assumed, so this returns instead
    /// of aborting the process).
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::{ConfigError, HeapBuffer};
    ///
    /// assert_eq!(HeapBuffer::<u8>::try_new(0, 1).unwrap_err(), ConfigError::ZeroCapacity);
    /// assert!(HeapBuffer::<u8>::try_new(8, 1).is_ok());
    /// // 2^40 slots of a GiB each: an allowed shape, but more bytes than an address space has.
    /// let err = HeapBuffer::<[u8; 1 << 30]>::try_new(1 << 40, 2).unwrap_err();
    /// assert_eq!(err, ConfigError::AllocationFailed { capacity: 1 << 40 });
    /// ```
    pub fn try_new(capacity: usize, consumers: usize) -> Result<Self, crate::ConfigError> {
        Self::build(capacity, consumers, true)
    }

    /// Creates a buffer with `capacity` slots and `seats` vacant seats on the heap: consumers
    /// join at run time with [`subscribe`](Self::subscribe) (or
    /// [`Subscriber::subscribe`](crate::Subscriber::subscribe) through an `Arc`).
    ///
    /// # Panics
    ///
    /// As [`new`](Self::new).
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::{HeapBuffer, TryConsumeError};
    ///
    /// let buf = HeapBuffer::with_seats(16, 4);
    /// let mut publisher = buf.publisher().unwrap();
    /// publisher.try_publish(0).unwrap_err(); // nobody subscribed yet: the value comes back
    /// let mut late = buf.subscribe().unwrap();
    /// publisher.try_publish(1).unwrap();
    /// assert_eq!(late.try_recv(), Ok(1));
    /// assert_eq!(late.try_recv(), Err(TryConsumeError::Empty));
    /// ```
    #[track_caller]
    pub fn with_seats(capacity: usize, seats: usize) -> Self {
        match Self::try_with_seats(capacity, seats) {
            Ok(buffer) => buffer,
            Err(err) => panic!("{err}"),
        }
    }

    /// Creates a buffer like [`with_seats`](Self::with_seats), or says why the shape is not
    /// allowed.
    ///
    /// # Errors
    ///
    /// As [`try_new`](Self::try_new).
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::{ConfigError, HeapBuffer};
    ///
    /// let err = HeapBuffer::<u8>::try_with_seats(8, 5000).unwrap_err();
    /// assert_eq!(err, ConfigError::TooManyConsumers { consumers: 5000 });
    /// ```
    pub fn try_with_seats(capacity: usize, seats: usize) -> Result<Self, crate::ConfigError> {
        Self::build(capacity, seats, false)
    }

    fn build(
        capacity: usize,
        consumers: usize,
        subscribed: bool,
    ) -> Result<Self, crate::ConfigError> {
        use crate::ConfigError;
        if capacity == 0 {
            Err(ConfigError::ZeroCapacity)
        } else if !capacity.is_power_of_two() {
            Err(ConfigError::CapacityNotPowerOfTwo { capacity })
        } else if capacity > MAX_CAPACITY {
            Err(ConfigError::CapacityTooLarge { capacity })
        } else if consumers > MAX_CONSUMERS {
            Err(ConfigError::TooManyConsumers { consumers })
        } else {
            let uncounted = if subscribed { 0 } else { consumers };
            let storage = crate::Heap::try_new(capacity, consumers, !subscribed)
                .ok_or(ConfigError::AllocationFailed { capacity })?;
            Ok(Self::from_storage(storage, uncounted, uncounted == consumers))
        }
    }
}

impl<T, S: Storage<T>> Buffer<T, S> {
    const_unless_loom! {
        fn from_storage(storage: S, uncounted: usize, request: bool) -> Self {
            Self {
                producer: Padded::new(Producer::new(uncounted, request)),
                role: Padded::new(crate::sync::AtomicUsize::new(0)),
                storage,
                _values: PhantomData,
            }
        }
    }

    /// The slots and their lanes.
    #[inline(always)]
    pub(crate) fn ring(&self) -> Ring<'_, T> {
        Ring {
            slots: self.storage.slots(),
            counts: self.storage.counts(),
            solo: self.storage.seats().len() == 1,
        }
    }

    /// The seat of consumer `index`.
    ///
    /// # Panics
    ///
    /// If `index` is not below the consumer count, in every build.
    #[inline(always)]
    #[track_caller]
    pub(crate) fn seat(&self, index: usize) -> &Seat {
        let seats = self.storage.seats();
        match seats.get(index) {
            Some(seat) => seat,
            None => bad_index(index, seats.len()),
        }
    }

    /// The seat of consumer `index`, without a bounds check (for the handles, which checked
    /// their index when made).
    ///
    /// # Safety
    ///
    /// `index` is below [`consumer_count`](Self::consumer_count).
    #[inline(always)]
    pub(crate) unsafe fn seat_unchecked(&self, index: usize) -> &Seat {
        // SAFETY: the caller's contract.
        unsafe { self.storage.seats().get_unchecked(index) }
    }

    /// Gives the producer role back, after the write word `word` was published: once the
    /// publisher has gone, with a look at what was asked meanwhile (see `release_closed`).
    #[inline(always)]
    pub(crate) fn give_role(&self, word: usize) {
        if word & CLOSED != 0 {
            self.release_closed(word);
        } else {
            give_role(&self.role);
        }
    }

    /// The readers a value is published for, from a control word without `REQUEST`.
    #[inline(always)]
    pub(crate) fn readers(&self, control: usize) -> usize {
        self.storage.seats().len() - control
    }

    /// The producer's first step for write word `word`: makes its slot ready for a value for the
    /// readers that `control` counts, or says it is still held (backpressure).
    ///
    /// # Safety
    ///
    /// The caller holds the producer role, `word` is the write word (flags clear) and `control`
    /// the control word without `REQUEST` (so at least one reader is counted).
    #[inline(always)]
    pub(crate) unsafe fn reserve(&self, word: usize, control: usize) -> bool {
        debug_assert!(control & COLD == 0 && self.readers(control) != 0);
        let mut prepared = self.producer.prepared();
        let before = prepared;
        // SAFETY: the caller's contract; `prepared` is the buffer's.
        let ready = unsafe { self.ring().ready(word, &mut prepared, self.readers(control)) };
        if prepared != before {
            self.producer.set_prepared(prepared);
        }
        ready
    }

    /// The producer's cold path, with `REQUEST` set: applies the seats' requests (if anyone
    /// installed the membership operations), then returns the control word without `REQUEST`.
    ///
    /// # Safety
    ///
    /// The caller holds the producer role and `word` is the write word (flags clear).
    #[cold]
    #[inline(never)]
    pub(crate) unsafe fn after_requests(&self, word: usize) -> usize {
        // SAFETY: the caller's contract.
        unsafe { self.apply_if_installed(word) };
        self.producer.control() & !COLD
    }

    /// Publishes `value` to every subscribed consumer, or gives it back.
    ///
    /// With no subscribed consumer nobody can ever read the value, so it is dropped at once and
    /// the write position advances (as LaminarDB's `MulticastBuffer`, whose API this index API
    /// serves, does; a [`Publisher`](crate::Publisher) returns
    /// [`TryPublishError::Disconnected`] instead).
    ///
    /// # Errors
    ///
    /// - [`TryPublishError::Full`] when the slot the value would go into is still held by a
    ///   consumer, i.e. the slowest consumer is `capacity` values behind (backpressure).
    /// - [`TryPublishError::Busy`] when another thread is publishing at this moment, or a
    ///   [`Publisher`](crate::Publisher) holds the producer role.
    /// - [`TryPublishError::Closed`] once a `Publisher` of this buffer has been dropped.
    ///
    /// Each way the value comes back in the error.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::InlineBuffer;
    ///
    /// let buf: InlineBuffer<&str, 1, 1> = InlineBuffer::new();
    /// buf.try_publish("a").unwrap();
    /// let refused = buf.try_publish("b").unwrap_err();
    /// assert!(refused.is_full());
    /// assert_eq!(buf.consume(0), Some("a"));
    /// buf.try_publish(refused.into_inner()).unwrap();
    /// assert_eq!(buf.consume(0), Some("b"));
    /// ```
    #[inline]
    pub fn try_publish(&self, value: T) -> Result<(), TryPublishError<T>> {
        // Acquire (in `take_role`): pairs with the Release store that ended the previous
        // publish, so its slot writes happen before ours. The role is ours until we give it back.
        let Some(word) = take_role(&self.role, &self.producer) else {
            return Err(TryPublishError::Busy(value));
        };
        let ring = self.ring();
        let control = self.producer.control();
        // As in `Publisher::try_publish`. A closed buffer has `CLOSING` set (see
        // `Publisher::drop`): one test for both.
        let ready = if ring.solo { ring.solo_free(word) } else { self.producer.prepared() != word };
        if control & COLD != 0 || !ready {
            // Out of line and called last, so that the fast path keeps nothing across a call.
            // SAFETY: we hold the producer role and `word` is the write word.
            return unsafe { self.publish_slow(word, value) };
        }
        // SAFETY: we hold the producer role, and the slot is ready (above).
        unsafe { self.commit(&ring, word, value) };
        give_role(&self.role);
        Ok(())
    }

    /// [`try_publish`](Self::try_publish) when the slot is not ready without further work.
    ///
    /// # Safety
    ///
    /// The caller holds the producer role for this call and `word` is the write word.
    #[cold]
    #[inline(never)]
    unsafe fn publish_slow(&self, word: usize, value: T) -> Result<(), TryPublishError<T>> {
        // SAFETY: the caller's contract.
        match unsafe { self.make_ready(word) } {
            Ok(true) => {}
            // Nobody reads it: dropped (the role was given back first).
            Ok(false) => {
                drop(value);
                return Ok(());
            }
            Err(refused) => return Err(refused.with(value)),
        }
        // SAFETY: we hold the producer role, and `make_ready` made the slot ready.
        unsafe { self.commit(&self.ring(), word, value) };
        give_role(&self.role);
        Ok(())
    }

    /// Writes `value` into the slot of `word` and publishes it; the next write word.
    ///
    /// # Safety
    ///
    /// The caller holds the producer role, `word` is the write word, `ring` is this buffer's,
    /// and the slot is ready: its lanes free and, shared, prepared.
    #[inline(always)]
    pub(crate) unsafe fn commit(&self, ring: &Ring<'_, T>, word: usize, value: T) -> usize {
        let next = word.wrapping_add(ONE);
        #[cfg(multicast_bug = "publish-before-write")]
        // Injected bug: advance the write position before the slot is written.
        self.producer.publish(next);
        // SAFETY: the caller's contract.
        unsafe { ring.fill(word, value) };
        self.producer.publish(next);
        next
    }

    /// [`try_publish`](Self::try_publish) on a closed buffer, with requests to apply, with
    /// nobody counted, with a count word to prepare or with a full buffer: `Ok(true)` with the
    /// slot ready (the role still held); `Ok(false)` when nobody can ever read the value (the
    /// write position advanced past it, as `try_publish` documents, and the role given back:
    /// the caller drops it); or why not (the role given back).
    ///
    /// # Safety
    ///
    /// The caller holds the producer role for this call and `word` is the write word.
    #[cold]
    #[inline(never)]
    unsafe fn make_ready(&self, word: usize) -> Result<bool, TryPublishError<()>> {
        /// Gives the producer role back when dropped (also if a destructor run while applying
        /// requests panics).
        struct Unlock<'a, T, S: Storage<T>>(&'a Buffer<T, S>, usize);
        impl<T, S: Storage<T>> Drop for Unlock<'_, T, S> {
            fn drop(&mut self) {
                self.0.give_role(self.1);
            }
        }
        let unlock = Unlock(self, word);
        if word & CLOSED != 0 {
            return Err(TryPublishError::Closed(()));
        }
        let mut control = self.producer.control();
        if control & COLD != 0 {
            // SAFETY: the caller's contract.
            control = unsafe { self.after_requests(word) };
        }
        if self.readers(control) == 0 {
            // Nothing is prepared without readers: the prepared end moves with the position.
            let next = word.wrapping_add(ONE);
            self.producer.set_prepared(next);
            self.producer.publish(next);
            return Ok(false);
        }
        // SAFETY: the caller's contract; `control` counts readers, without `REQUEST`.
        if !unsafe { self.reserve(word, control) } {
            return Err(TryPublishError::Full(()));
        }
        core::mem::forget(unlock);
        Ok(true)
    }

    /// Takes consumer `index`'s next value: by move if it is the last consumer to read it, as a
    /// clone otherwise.
    ///
    /// If `T::clone` panics, nothing changes: the position does not advance and the next call
    /// delivers the same value.
    ///
    /// # Errors
    ///
    /// - [`TryConsumeError::Empty`] when this consumer has read everything published so far (or
    ///   it is rejoining and the producer has not counted it yet).
    /// - [`TryConsumeError::Closed`] when, moreover, the publisher has gone.
    /// - [`TryConsumeError::Busy`] when another thread took this index's next value at this
    ///   moment, or a [`Subscriber`](crate::Subscriber) holds the index.
    /// - [`TryConsumeError::Detached`] when the seat is not subscribed (detached, or vacant):
    ///   see [`rejoin`](Self::rejoin).
    ///
    /// # Panics
    ///
    /// If `index` is not below [`consumer_count`](Self::consumer_count), in every build.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::{InlineBuffer, TryConsumeError};
    ///
    /// let buf: InlineBuffer<u32, 4, 2> = InlineBuffer::new();
    /// buf.try_publish(1).unwrap();
    /// assert_eq!(buf.try_consume(1), Ok(1));
    /// assert_eq!(buf.try_consume(1), Err(TryConsumeError::Empty));
    /// assert_eq!(buf.try_consume(0), Ok(1));
    /// ```
    #[inline]
    #[track_caller]
    pub fn try_consume(&self, index: usize) -> Result<T, TryConsumeError>
    where
        T: Clone,
    {
        let seat = self.seat(index);
        let word = seat.peek();
        if word & FLAGS != 0 {
            return Err(self.refused(index, word));
        }
        // No view of the write word is kept between calls: a call with this index may come from
        // any thread, after a `Subscriber` moved the seat any distance (a shared cache of it was
        // once trusted modulo the positions' wrap: undefined behaviour after 2^28 values on
        // 32-bit targets).
        let write = self.producer.written();
        if available(write, word) == 0 {
            return Err(if write & CLOSED != 0 {
                TryConsumeError::Closed
            } else {
                TryConsumeError::Empty
            });
        }
        // The claim is the role check: the next call with this index (on any thread) reads the
        // next position.
        if !seat.claim(word, ONE) {
            return Err(self.refused(index, seat.peek()));
        }
        /// On a panic in `T::clone`, gives the claimed position back.
        struct Unclaim<'a, T, S: Storage<T>>(&'a Buffer<T, S>, &'a Seat, usize);
        impl<T, S: Storage<T>> Drop for Unclaim<'_, T, S> {
            fn drop(&mut self) {
                if !self.1.unclaim(self.2.wrapping_add(ONE), self.2) {
                    // The seat moved on (stopped, or another call claimed more): the unit is
                    // still ours to give back.
                    // SAFETY: we claimed it and did not read it.
                    drop(unsafe { self.0.ring().release(self.2) });
                }
            }
        }
        let unclaim = Unclaim(self, seat, word);
        // SAFETY: published (checked above) and claimed by us: its unit is ours.
        let (value, spare) = unsafe { self.ring().read(word) };
        core::mem::forget(unclaim);
        // The original, when this consumer became the last reader after cloning; dropped here,
        // after the bookkeeping, because a destructor may panic.
        drop(spare);
        Ok(value)
    }

    /// Why an index-API consume on seat word `seat` (with a flag set, or a claim lost) is
    /// refused.
    #[cold]
    fn refused(&self, index: usize, seat: usize) -> TryConsumeError {
        if seat & HELD != 0 {
            return TryConsumeError::Busy;
        }
        let write = self.producer.written();
        match seat & MEMBERSHIP {
            RUNNING => TryConsumeError::Busy,
            JOINING if write & CLOSED != 0 => TryConsumeError::Closed,
            JOINING => TryConsumeError::Empty,
            // Told now: its values are given back on this thread (a stop installed the
            // operations); the seat's frontier moves to here, so later calls count from here.
            STOPPING => {
                match self.settle_if_installed(index, crate::protocol::UNKNOWN, Settle::Index) {
                    Some(settled) => TryConsumeError::Detached { missed: since(settled, seat) },
                    None => TryConsumeError::Detached { missed: since(write, seat) },
                }
            }
            _ => TryConsumeError::Detached { missed: since(write, seat) },
        }
    }

    /// Detaches consumer `index` so that the producer no longer waits for it: the values it has
    /// not read are given back and it receives no more. Its next call returns
    /// [`TryConsumeError::Detached`], with how many values it has missed; it can then
    /// [`rejoin`](Self::rejoin) (or [`Subscriber::rejoin`]). A value it is reading at this moment
    /// stays its own until it is done with it.
    ///
    /// Who gives back the values, and when:
    /// - an index-API seat, or an *evictable* [`Subscriber`] (from [`subscribe`](Self::subscribe),
    ///   or [`Subscriber::set_evictable`]): at once, without its cooperation. The producer gives
    ///   them back before its next value, and drops each one that every other consumer has read
    ///   already; if the subscriber looks first, it gives them back itself, on its own thread.
    /// - a *tethered* `Subscriber` (the default of [`subscriber`](Self::subscriber)): at its next
    ///   look at the producer (when it has read what it saw published), on its own thread. Until
    ///   then the producer keeps counting it.
    ///
    /// Returns `false` if the seat was not subscribed (or joining) already. Lossless stays the
    /// default: nothing is detached unless the application asks (here, or with
    /// [`Publisher::set_lag_limit`](crate::Publisher::set_lag_limit)).
    ///
    /// [`Subscriber`]: crate::Subscriber
    /// [`Subscriber::rejoin`]: crate::Subscriber::rejoin
    /// [`Subscriber::set_evictable`]: crate::Subscriber::set_evictable
    ///
    /// # Panics
    ///
    /// If `index` is not below [`consumer_count`](Self::consumer_count).
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::{InlineBuffer, TryConsumeError};
    ///
    /// let buf: InlineBuffer<u32, 2, 2> = InlineBuffer::new();
    /// buf.try_publish(1).unwrap();
    /// buf.try_publish(2).unwrap();
    /// assert!(buf.try_publish(3).unwrap_err().is_full()); // consumer 1 never reads
    /// assert!(buf.detach(1));
    /// assert_eq!(buf.consume(0), Some(1));
    /// buf.try_publish(3).unwrap(); // no longer waits for consumer 1
    /// assert_eq!(buf.try_consume(1), Err(TryConsumeError::Detached { missed: 3 }));
    /// assert!(buf.rejoin(1));
    /// assert_eq!((buf.consume(0), buf.consume(0)), (Some(2), Some(3)));
    /// buf.try_publish(4).unwrap();
    /// assert_eq!(buf.consume(1), Some(4));
    /// ```
    #[track_caller]
    pub fn detach(&self, index: usize) -> bool {
        let seat = self.seat(index);
        self.install_ops();
        let stopped = matches!(seat.stop() & MEMBERSHIP, RUNNING | JOINING);
        if stopped {
            self.request();
        }
        stopped
    }

    /// Detaches every subscribed consumer more than `max_lag` values behind (see
    /// [`detach`](Self::detach)), except tethered subscribers; returns how many.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::InlineBuffer;
    ///
    /// let buf: InlineBuffer<u32, 4, 3> = InlineBuffer::new();
    /// for v in 0..4 {
    ///     buf.try_publish(v).unwrap();
    /// }
    /// buf.consume(0);
    /// buf.consume(1);
    /// assert_eq!(buf.detach_lagging(3), 1); // consumer 2 is 4 behind
    /// ```
    pub fn detach_lagging(&self, max_lag: usize) -> usize {
        // Relaxed: a position to measure lags against; the stop itself is what counts.
        let write = self.observe();
        let capacity = self.capacity();
        let mut detached = 0;
        // Before any stop, as every membership call (the producer finds them with the request).
        self.install_ops();
        for seat in self.storage.seats() {
            detached += usize::from(seat.stop_lagging(write, capacity, max_lag));
        }
        if detached != 0 {
            self.request();
        }
        detached
    }

    /// Asks for consumer `index` (detached or vacant, and not held by a
    /// [`Subscriber`](crate::Subscriber)) to be counted again: from the producer's next value on,
    /// it receives every value (a detach the producer has not applied yet is simply cancelled).
    /// Returns `false` if the seat is subscribed, already rejoining, or held by a `Subscriber`.
    ///
    /// # Panics
    ///
    /// If `index` is not below [`consumer_count`](Self::consumer_count).
    #[track_caller]
    pub fn rejoin(&self, index: usize) -> bool {
        let seat = self.seat(index);
        let mut word = seat.peek();
        loop {
            if word & HELD != 0 {
                return false;
            }
            let new = match word & MEMBERSHIP {
                STOPPING => word & !crate::protocol::STOP,
                // The position of a joining seat is where it asked, for `missed`.
                VACANT => (self.observe() & !FLAGS) | JOINING,
                _ => return false,
            };
            self.install_ops();
            match seat.update(word, new) {
                Ok(()) => break,
                Err(now) => word = now,
            }
        }
        self.request();
        true
    }

    /// Whether the publisher has gone: a [`Publisher`](crate::Publisher) of this buffer was
    /// dropped, and nothing more will be published.
    pub fn is_closed(&self) -> bool {
        self.observe() & CLOSED != 0
    }

    /// Takes consumer `index`'s next value, or `None` if there is none (the `consume` of
    /// LaminarDB's `MulticastBuffer`).
    ///
    /// `None` also when another thread is consuming with the same index at this moment: see
    /// [`try_consume`](Self::try_consume), which tells the two apart.
    ///
    /// # Panics
    ///
    /// If `index` is not below [`consumer_count`](Self::consumer_count), in every build.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::InlineBuffer;
    ///
    /// let buf: InlineBuffer<u32, 4, 1> = InlineBuffer::new();
    /// assert_eq!(buf.consume(0), None);
    /// buf.try_publish(5).unwrap();
    /// assert_eq!(buf.consume(0), Some(5));
    /// ```
    #[inline]
    #[track_caller]
    pub fn consume(&self, index: usize) -> Option<T>
    where
        T: Clone,
    {
        self.try_consume(index).ok()
    }

    /// The number of slots.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::InlineBuffer;
    ///
    /// let buf: InlineBuffer<u8, 32, 1> = InlineBuffer::new();
    /// assert_eq!(buf.capacity(), 32);
    /// ```
    #[inline]
    pub fn capacity(&self) -> usize {
        self.storage.slots().len()
    }

    /// The number of consumer seats (indices), fixed at construction; see
    /// [`subscribed`](Self::subscribed) for how many are in use.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::InlineBuffer;
    ///
    /// let buf: InlineBuffer<u8, 32, 3> = InlineBuffer::new();
    /// assert_eq!(buf.consumer_count(), 3);
    /// ```
    #[inline]
    pub fn consumer_count(&self) -> usize {
        self.storage.seats().len()
    }

    /// The number of subscribed seats at this moment: running or joining (asked to be counted
    /// from the producer's next value), not detached or vacant.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::InlineBuffer;
    ///
    /// let buf: InlineBuffer<u8, 8, 3> = InlineBuffer::new();
    /// buf.detach(2);
    /// assert_eq!(buf.subscribed(), 2);
    /// ```
    pub fn subscribed(&self) -> usize {
        let subscribed =
            |seat: &&Padded<Seat>| matches!(seat.peek() & MEMBERSHIP, RUNNING | JOINING);
        self.storage.seats().iter().filter(subscribed).count()
    }

    /// The consumer the producer waits for when the buffer is full: the subscribed consumer
    /// furthest behind (the lowest index among equals), as in [`state`](Self::state); `None`
    /// without subscribed consumers. It reads every consumer's cache line: call it when you
    /// need the name (to log, or to [`detach`](Self::detach)), not on every refused publish.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::InlineBuffer;
    ///
    /// let buf: InlineBuffer<u8, 2, 3> = InlineBuffer::new();
    /// buf.try_publish(1).unwrap();
    /// buf.try_publish(2).unwrap();
    /// buf.consume(0);
    /// buf.consume(2);
    /// assert!(buf.try_publish(3).unwrap_err().is_full());
    /// assert_eq!(buf.slowest_consumer(), Some(1));
    /// ```
    pub fn slowest_consumer(&self) -> Option<usize> {
        self.state().slowest_consumer
    }

    /// The number of values published so far (modulo `2^(usize::BITS - 4)`: see
    /// [Positions](Self#positions)).
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::InlineBuffer;
    ///
    /// let buf: InlineBuffer<u8, 4, 1> = InlineBuffer::new();
    /// buf.try_publish(1).unwrap();
    /// assert_eq!(buf.write_position(), 1);
    /// ```
    #[inline]
    pub fn write_position(&self) -> u64 {
        word_to_position(self.observe())
    }

    /// The number of values consumer `index` has read or claimed (modulo
    /// `2^(usize::BITS - 4)`); for a seat that is not subscribed, where it stopped.
    ///
    /// # Panics
    ///
    /// If `index` is not below [`consumer_count`](Self::consumer_count), in every build.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::InlineBuffer;
    ///
    /// let buf: InlineBuffer<u8, 4, 2> = InlineBuffer::new();
    /// buf.try_publish(1).unwrap();
    /// buf.consume(1);
    /// assert_eq!(buf.read_position(0), 0);
    /// assert_eq!(buf.read_position(1), 1);
    /// ```
    #[inline]
    #[track_caller]
    pub fn read_position(&self, index: usize) -> u64 {
        let seat = self.seat(index);
        word_to_position(seat.position(seat.peek()))
    }

    /// A snapshot of the buffer's state: shape, positions, the slowest subscribed consumer and
    /// how many values it holds. Taken without stopping anyone, so under concurrent use the fields may
    /// come from slightly different moments.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::InlineBuffer;
    ///
    /// let buf: InlineBuffer<u8, 8, 2> = InlineBuffer::new();
    /// buf.try_publish(1).unwrap();
    /// buf.try_publish(2).unwrap();
    /// buf.consume(0);
    /// let state = buf.state();
    /// assert_eq!(state.write_position, 2);
    /// assert_eq!(state.slowest_consumer, Some(1));
    /// assert_eq!(state.held, 2);
    /// ```
    pub fn state(&self) -> crate::State {
        let word = self.observe();
        let capacity = self.capacity();
        let mut slowest: Option<(usize, usize)> = None;
        let mut subscribed = 0;
        for (index, seat) in self.storage.seats().iter().enumerate() {
            let current = seat.peek();
            let membership = current & MEMBERSHIP;
            subscribed += usize::from(matches!(membership, RUNNING | JOINING));
            if !matches!(membership, RUNNING | STOPPING) {
                continue;
            }
            // Counted: it holds what it has not read. A consumer may have moved past the `word`
            // loaded above: `behind` counts it as caught up.
            let behind = behind(word, seat.position(current), capacity);
            if !matches!(slowest, Some((_, most)) if most >= behind) {
                slowest = Some((index, behind));
            }
        }
        crate::State {
            capacity,
            consumers: self.consumer_count(),
            subscribed,
            closed: word & CLOSED != 0,
            write_position: word_to_position(word),
            slowest_consumer: slowest.map(|(index, _)| index),
            held: slowest.map_or(0, |(_, behind)| behind),
        }
    }

    /// Seat `index` seen from outside: its status, position and lag (see
    /// [`SeatState`](crate::SeatState)), without holding it. Reads the seat's and the producer's cache lines; under concurrent use
    /// the two may come from slightly different moments.
    ///
    /// # Panics
    ///
    /// If `index` is not below [`consumer_count`](Self::consumer_count), in every build.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::{InlineBuffer, SeatStatus, TryConsumeError};
    ///
    /// let buf: InlineBuffer<u8, 4, 3> = InlineBuffer::with_seats();
    /// let mut publisher = buf.publisher().unwrap();
    /// let mut fast = buf.subscribe().unwrap();
    /// let mut stalled = buf.subscribe().unwrap();
    /// publisher.publish_iter(0..3);
    /// fast.try_recv().unwrap();
    /// let seats: Vec<_> = buf.seat_states().map(|s| (s.status, s.position, s.lag)).collect();
    /// assert_eq!(seats, [
    ///     (SeatStatus::Subscribed, 1, 2),
    ///     (SeatStatus::Subscribed, 0, 3),
    ///     (SeatStatus::Vacant, 0, 0),
    /// ]);
    /// assert!(buf.detach(stalled.index()));
    /// for v in 3..10 {
    ///     publisher.try_publish(v).unwrap();
    ///     fast.try_recv().unwrap();
    /// }
    /// // Detached and not told yet: it lags by every value published since its position, more
    /// // than the capacity, and that is what its next call reports as missed.
    /// let seat = buf.seat_state(stalled.index());
    /// assert_eq!((seat.status, seat.position, seat.lag), (SeatStatus::Detached, 0, 10));
    /// assert_eq!(stalled.try_recv(), Err(TryConsumeError::Detached { missed: 10 }));
    /// assert_eq!(buf.seat_state(stalled.index()).status, SeatStatus::Detached);
    /// ```
    #[track_caller]
    pub fn seat_state(&self, index: usize) -> crate::SeatState {
        use crate::SeatStatus;
        let seat = self.seat(index);
        let word = seat.peek();
        let status = match word & MEMBERSHIP {
            RUNNING => SeatStatus::Subscribed,
            JOINING => SeatStatus::Joining,
            // Given up by a subscriber that left (its units given back up to the write
            // position), not applied by the producer yet: it holds nothing, and `subscribe`
            // takes it at once.
            STOPPING if word & HELD == 0 && available(self.observe(), word) == 0 => {
                SeatStatus::Vacant
            }
            STOPPING => SeatStatus::Detached,
            _ if word & HELD != 0 => SeatStatus::Detached,
            _ => SeatStatus::Vacant,
        };
        let position = seat.position(word);
        let lag = match status {
            SeatStatus::Subscribed | SeatStatus::Detached => since(self.observe(), position),
            SeatStatus::Joining | SeatStatus::Vacant => 0,
        };
        crate::SeatState {
            index,
            status,
            position: word_to_position(position),
            // Cannot truncate: a difference of `usize` positions.
            lag: lag as usize,
        }
    }

    /// Every seat seen from outside, in index order: [`seat_state`](Self::seat_state) of each.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::InlineBuffer;
    ///
    /// let buf: InlineBuffer<u8, 4, 2> = InlineBuffer::new();
    /// buf.try_publish(1).unwrap();
    /// buf.consume(0);
    /// let lags: Vec<usize> = buf.seat_states().map(|seat| seat.lag).collect();
    /// assert_eq!(lags, [0, 1]);
    /// ```
    pub fn seat_states(&self) -> impl Iterator<Item = crate::SeatState> + '_ {
        (0..self.consumer_count()).map(|index| self.seat_state(index))
    }

    /// The write word, for an observation that orders nothing.
    #[inline(always)]
    pub(crate) fn observe(&self) -> usize {
        // Relaxed: an observation.
        self.producer.word.load(crate::sync::Ordering::Relaxed)
    }
}

#[inline(always)]
fn word_to_position(word: usize) -> u64 {
    (word / ONE) as u64
}

#[cold]
#[inline(never)]
#[track_caller]
fn bad_index(index: usize, count: usize) -> ! {
    panic!("consumer index {index} out of range: this buffer has {count} consumers")
}

impl<T, S: Storage<T>> Drop for Buffer<T, S> {
    fn drop(&mut self) {
        let producer = &self.producer;
        let write = self.observe() & !FLAGS;
        let readers = self.readers(producer.control() & !COLD);
        // SAFETY: the buffer is being dropped (`&mut self`): no other reference to it exists, so
        // every value still in a slot was published and not taken by its last reader.
        unsafe { self.ring().drop_values(write, producer.prepared(), readers) };
    }
}

impl<T, S: Storage<T>> fmt::Debug for Buffer<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Positions<'a, T, S: Storage<T>>(&'a Buffer<T, S>);
        impl<T, S: Storage<T>> fmt::Debug for Positions<'_, T, S> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list()
                    .entries((0..self.0.consumer_count()).map(|i| self.0.read_position(i)))
                    .finish()
            }
        }
        f.debug_struct("Buffer")
            .field("capacity", &self.capacity())
            .field("consumer_count", &self.consumer_count())
            .field("write_position", &self.write_position())
            .field("read_positions", &Positions(self))
            .finish()
    }
}

#[cfg(all(test, feature = "alloc"))]
impl<T, S: Storage<T>> Buffer<T, S> {
    /// Moves every position of a fresh buffer to `position`, to test the wrap of positions.
    pub(crate) fn start_at(self, position: usize) -> Self {
        use crate::sync::Ordering::Relaxed;
        assert_eq!(self.write_position(), 0, "start_at needs a fresh buffer");
        let word = position.wrapping_mul(ONE);
        // Relaxed: test set-up on the owning thread (`self` by value); threads spawned later are
        // ordered after it by their spawn.
        self.producer.word.store(word, Relaxed);
        self.producer.prepared.store(word, Relaxed);
        for seat in self.storage.seats() {
            let flags = seat.word.load(Relaxed) & FLAGS;
            seat.word.store(word | flags, Relaxed);
            seat.progress.store(word, Relaxed);
        }
        self
    }

    /// Marks the producer role as held by another call, as a second thread would while inside a
    /// call.
    #[cfg(not(multicast_loom))]
    pub(crate) fn hold(&self, held: bool) {
        let bit = crate::protocol::LOCKED;
        // Relaxed: single-threaded tests; it only flips the role bit as another call would.
        if held {
            self.role.fetch_or(bit, crate::sync::Ordering::Relaxed);
        } else {
            self.role.fetch_and(!bit, crate::sync::Ordering::Relaxed);
        }
    }
}
