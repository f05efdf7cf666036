//! The buffer: a write cursor, the slots and the consumer cursors, and the public API.

use core::fmt;
use core::marker::PhantomData;

use crate::raw::{
    join, lock, Cursor, Padded, Producer, Slot, Unlock, BUSY, CLOSED, FLAGS, HELD, JOIN, ONE,
    REQUEST, STOP,
};
use crate::sync::Ordering;
use crate::{Storage, TryConsumeError, TryPublishError};

/// The most consumers a buffer can have.
pub const MAX_CONSUMERS: usize = 1024;

/// The largest capacity a buffer can have: `2^(usize::BITS - 5)` slots, so that the distance
/// between two positions (which wrap at `2^(usize::BITS - 4)`) is never ambiguous.
pub const MAX_CAPACITY: usize = 1 << (usize::BITS - 5);

/// A single-producer multi-consumer multicast ring buffer with per-slot reference counts.
///
/// Every consumer receives every published value exactly once, in publish order. Each slot
/// counts the consumers that still have to read its value; [`try_publish`](Self::try_publish)
/// refuses a value (and gives it back) while the slot it would go into is still held, so nothing
/// is ever overwritten unread. The last consumer to read a value receives it by move (the others
/// get clones), so a value is released as soon as every consumer has read it.
///
/// `S` is where the slots live: [`InlineBuffer`](crate::InlineBuffer) keeps them inside the
/// buffer (a `static` in firmware), [`HeapBuffer`](crate::HeapBuffer) on the heap.
///
/// `Send` when `T: Send`; `Sync` only when `T: Send + Sync` (consumers on several threads
/// clone the same value through `&T`, and the last reader moves it out on its own thread).
///
/// # Roles and misuse
///
/// One producer and, per consumer index, one reader at a time. The API takes `&self`, so safe
/// code could break that; it cannot break the buffer: a call that finds another thread in the
/// same role at the same moment returns `Busy` ([`TryPublishError::Busy`],
/// [`TryConsumeError::Busy`]) without touching anything. The check is one atomic
/// read-modify-write on a cache line the caller owns anyway.
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
    /// The write word, the count of subscribed seats and the requests flag, on one cache line.
    pub(crate) producer: Padded<Producer>,
    pub(crate) storage: S,
    _values: PhantomData<T>,
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
        const {
            assert!(CAP.is_power_of_two(), "capacity must be a non-zero power of two");
            assert!(CAP <= MAX_CAPACITY, "capacity above MAX_CAPACITY");
            assert!(N <= MAX_CONSUMERS, "consumer count above MAX_CONSUMERS");
        }
        Self::from_storage(crate::Inline::new(true), N)
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
        const {
            assert!(CAP.is_power_of_two(), "capacity must be a non-zero power of two");
            assert!(CAP <= MAX_CAPACITY, "capacity above MAX_CAPACITY");
            assert!(N <= MAX_CONSUMERS, "consumer count above MAX_CONSUMERS");
        }
        Self::from_storage(crate::Inline::new(false), 0)
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
    /// above [`MAX_CONSUMERS`]. [`try_new`](Self::try_new) returns an error instead.
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
    /// [`MAX_CAPACITY`], or `consumers` is above [`MAX_CONSUMERS`].
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::{ConfigError, HeapBuffer};
    ///
    /// assert_eq!(HeapBuffer::<u8>::try_new(0, 1).unwrap_err(), ConfigError::ZeroCapacity);
    /// assert!(HeapBuffer::<u8>::try_new(8, 1).is_ok());
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
            let readers = if subscribed { consumers } else { 0 };
            Ok(Self::from_storage(crate::Heap::new(capacity, consumers, subscribed), readers))
        }
    }
}

impl<T, S: Storage<T>> Buffer<T, S> {
    const_unless_loom! {
        fn from_storage(storage: S, readers: usize) -> Self {
            Self { producer: Padded::new(Producer::new(readers)), storage, _values: PhantomData }
        }
    }

    #[inline(always)]
    fn slots(&self) -> &[Slot<T>] {
        self.storage.slots()
    }

    #[inline(always)]
    pub(crate) fn slot(&self, position: usize) -> &Slot<T> {
        let slots = self.slots();
        // SAFETY: the length is a non-zero power of two (checked by `try_new` and by the `const`
        // asserts of `InlineBuffer::new`), so the masked index is in bounds. (Indexing with a
        // check would keep a panic path, and with it an unwind landing pad, in every call.)
        unsafe { slots.get_unchecked(position & (slots.len() - 1)) }
    }

    /// The cursor of consumer `index`.
    ///
    /// # Panics
    ///
    /// If `index` is not below the consumer count, in every build.
    #[inline(always)]
    #[track_caller]
    pub(crate) fn cursor(&self, index: usize) -> &Cursor {
        let cursors = self.storage.cursors();
        match cursors.get(index) {
            Some(cursor) => cursor,
            None => bad_index(index, cursors.len()),
        }
    }

    /// The seat word of consumer `index`, without a bounds check (for the handles, which
    /// checked their index when made).
    ///
    /// # Safety
    ///
    /// `index` is below [`consumer_count`](Self::consumer_count).
    #[inline(always)]
    pub(crate) unsafe fn seat(&self, index: usize) -> &crate::sync::AtomicUsize {
        // SAFETY: the caller's contract.
        unsafe { &self.storage.cursors().get_unchecked(index).read }
    }

    /// The producer's look at the control word: the number of seats to publish for, with
    /// `REQUEST` set when the cold path (`readers_after_requests`) must run first.
    #[inline(always)]
    pub(crate) fn control(&self) -> usize {
        // Relaxed: only the holder of the producer role changes the count, and the role passes
        // with an Acquire/Release pair on the write word; `REQUEST` is a hint here, and
        // `apply_requests` synchronises with the requests it applies.
        self.producer.control.load(Ordering::Relaxed)
    }

    /// The producer's step, shared by [`try_publish`](Self::try_publish) and
    /// [`Publisher`](crate::Publisher): stores `value` in the slot at `word`'s position for
    /// `readers` seats, or gives it back if the slot is still held (backpressure).
    ///
    /// # Safety
    ///
    /// The caller holds the producer role, `word` is the current write word (flags clear), and
    /// `readers` is the count of the control word, without `REQUEST`, and not 0.
    #[inline(always)]
    pub(crate) unsafe fn write_at(&self, word: usize, value: T, readers: usize) -> Result<(), T> {
        debug_assert!(readers != 0 && readers & REQUEST == 0);
        #[cfg(multicast_bug = "publish-before-write")]
        // Injected bug: advance the write position before the slot is written.
        self.producer.word.store(word.wrapping_add(ONE) | crate::raw::LOCKED, Ordering::Release);
        // SAFETY: the caller holds the producer role, readers >= 1, and the slot becomes visible
        // to consumers only when the caller stores the next write word with Release.
        unsafe { self.slot(word / ONE).try_write(value, readers) }
    }

    /// The number of seats the next value is published for (0: none), after applying any
    /// requests.
    ///
    /// # Safety
    ///
    /// The caller holds the producer role and `word` is the current write word.
    #[inline(always)]
    pub(crate) unsafe fn readers(&self, word: usize) -> usize {
        let control = self.control();
        if control & REQUEST == 0 {
            return control;
        }
        // SAFETY: the caller's contract.
        unsafe { self.readers_after_requests(word) }
    }

    /// The producer's cold path: applies the requests, then gives the number of seats to publish
    /// for (0: none).
    ///
    /// # Safety
    ///
    /// As for [`readers`](Self::readers).
    #[cold]
    #[inline(never)]
    pub(crate) unsafe fn readers_after_requests(&self, word: usize) -> usize {
        // SAFETY: the caller's contract.
        unsafe { self.apply_requests(word) };
        self.control() & !REQUEST
    }

    /// Applies the seats' requests: a stopped seat that was counted is no longer counted, and
    /// the producer gives back its units of the positions from its frontier to `word` (dropping
    /// a value if that was its last unit); a seat asking to join is counted from `word` on.
    ///
    /// A seat whose position an index-API call is reading at this moment (`BUSY`) is left for
    /// the next look. Bounded: one pass over the seats, at most `capacity` units each.
    ///
    /// # Safety
    ///
    /// As for [`write_at`](Self::write_at).
    #[cold]
    #[inline(never)]
    pub(crate) unsafe fn apply_requests(&self, word: usize) {
        /// Raises the request flag again if a destructor panics, so that the seats not yet
        /// looked at are looked at by the next publish.
        struct Again<'a>(&'a Producer);
        impl Drop for Again<'_> {
            fn drop(&mut self) {
                // Relaxed: our own flag, for our next look.
                self.0.control.fetch_or(REQUEST, Ordering::Relaxed);
            }
        }
        // Acquire: pairs with the Release `fetch_or` in `request`, which comes after the
        // requester's change of its seat word: we see that change below. (Our own changes of the
        // count below are read-modify-writes, so a request made meanwhile stays set.)
        let control = &self.producer.control;
        control.fetch_and(!REQUEST, Ordering::Acquire);
        let again = Again(&self.producer);
        let mut deferred = false;
        for cursor in self.storage.cursors() {
            // Acquire: pairs with the Release read-modify-writes of the seat word (`detach`,
            // `join`, `Cursor::take`, `Cursor::leave`, `Cursor::hand_back`, the unlock in
            // `try_consume`), so the seat's earlier accesses to the slots happen before we give
            // back its units.
            let seat = cursor.read.load(Ordering::Acquire);
            // Relaxed: producer-only, ordered by the producer role.
            let mut counted = cursor.counted.load(Ordering::Relaxed) != 0;
            if seat & BUSY != 0 {
                deferred |= (counted && seat & STOP != 0) || (!counted && seat & JOIN != 0);
                continue;
            }
            if counted && seat & STOP != 0 {
                counted = false;
                // Relaxed: as above.
                cursor.counted.store(0, Ordering::Relaxed);
                // Relaxed: as in `control`.
                control.fetch_sub(1, Ordering::Relaxed);
                // SAFETY: the seat is stopped, so nobody claims its positions at or after its
                // frontier any more; it was counted in every value published from there to
                // `word`, and nobody else gives back those units.
                unsafe { self.give_back(seat & !FLAGS, word) };
            }
            // A seat may also ask to rejoin before its stop was applied.
            if !counted && seat & JOIN != 0 {
                // A subscribed seat's `cached_write` is at or after its position (the index API
                // relies on it); published with the compare-and-swap below. (If that fails, the
                // seat is not subscribed and the value does not matter.)
                cursor.cached_write.store(word, Ordering::Relaxed);
                // Release: pairs with the Acquire load in the seat's `Subscriber::stopped` (or the
                // next index-API call), which then starts at `word`.
                match cursor.read.compare_exchange(
                    seat,
                    word | (seat & HELD),
                    Ordering::Release,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        cursor.counted.store(1, Ordering::Relaxed);
                        // Relaxed: as in `control`.
                        control.fetch_add(1, Ordering::Relaxed);
                    }
                    // The seat changed meanwhile (its holder left or asked again): look at it at
                    // the next publish, so that this pass stays bounded.
                    Err(_) => deferred = true,
                }
            }
        }
        core::mem::forget(again);
        // With a seat left for later, or none subscribed, the next publish takes this path again.
        if deferred || control.load(Ordering::Relaxed) == 0 {
            // Relaxed: our own flag, for our next look.
            control.fetch_or(REQUEST, Ordering::Relaxed);
        }
    }

    /// Gives back one seat's units of the positions `from..to` (words), dropping each value
    /// whose last unit it was; if a destructor panics, the rest are still given back.
    ///
    /// # Safety
    ///
    /// The caller holds one seat's units of those positions (the producer on behalf of a stopped
    /// seat, or the seat's holder for positions it claimed): nobody else gives them back.
    pub(crate) unsafe fn give_back(&self, from: usize, to: usize) {
        struct Rest<'a, T, S: Storage<T>>(&'a Buffer<T, S>, usize, usize);
        impl<T, S: Storage<T>> Drop for Rest<'_, T, S> {
            fn drop(&mut self) {
                // SAFETY: the contract of the `give_back` call that made this guard.
                unsafe { self.0.give_back(self.1, self.2) };
            }
        }
        let mut word = from;
        while word != to {
            let next = word.wrapping_add(ONE);
            // SAFETY: the caller's contract: we hold this unit and give it back once.
            let last = unsafe { self.slot(word / ONE).release() };
            // Runs only if the destructor below panics.
            let rest = Rest(self, next, to);
            drop(last);
            core::mem::forget(rest);
            word = next;
        }
    }

    /// The consumer's check, shared by [`try_consume`](Self::try_consume) and
    /// [`Subscriber`](crate::Subscriber): is the position of word `word` (flags clear)
    /// published? `seen` is the last write word this consumer saw; it is refreshed from the
    /// producer's cache line only when the consumer has caught up with it.
    #[inline(always)]
    pub(crate) fn poll(&self, word: usize, seen: &mut usize) -> Result<(), TryConsumeError> {
        if *seen == word {
            // Acquire: pairs with the Release stores of the write word (`try_publish`,
            // `Publisher::try_publish`, `Publisher::publish_iter`, `Publisher::drop`), so the
            // slots below it are written before we read them.
            let write = self.producer.word.load(Ordering::Acquire);
            if write & !FLAGS == word {
                return Err(if write & CLOSED != 0 {
                    TryConsumeError::Closed
                } else {
                    TryConsumeError::Empty
                });
            }
            *seen = write & !FLAGS;
        }
        Ok(())
    }

    /// Publishes `value` to every subscribed consumer, or gives it back.
    ///
    /// With no subscribed consumer nobody can ever read the value, so it is dropped at once and
    /// the write position advances (the seed's behaviour; a [`Publisher`](crate::Publisher)
    /// returns [`TryPublishError::Disconnected`] instead).
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
        // Acquire (in `lock`): pairs with the Release store that ended the previous publish (on
        // this thread or another), so its slot writes happen before ours. The producer role is
        // ours until the store below.
        let Some(word) = lock(&self.producer.word) else {
            return Err(TryPublishError::Busy(value));
        };
        let readers = self.control();
        // A closed buffer has `REQUEST` set for good (see `Publisher::drop`): one test for both.
        if readers & REQUEST != 0 {
            // SAFETY: we hold the producer role and `word` is the current write word.
            return unsafe { self.try_publish_cold(word, value) };
        }
        // SAFETY: as above, the buffer is open and `readers` is a count without `REQUEST`.
        unsafe { self.publish_held(word, value, readers) }
    }

    /// [`try_publish`](Self::try_publish) on a closed buffer or with requests to apply.
    ///
    /// # Safety
    ///
    /// As for [`publish_held`](Self::publish_held).
    #[cold]
    #[inline(never)]
    unsafe fn try_publish_cold(&self, word: usize, value: T) -> Result<(), TryPublishError<T>> {
        if word & CLOSED != 0 {
            // Release: gives the role back unchanged; pairs with the Acquire in `lock`.
            self.producer.word.store(word, Ordering::Release);
            return Err(TryPublishError::Closed(value));
        }
        /// Gives the producer role back unchanged if a destructor run by `apply_requests` panics.
        struct Unlocked<'a>(&'a crate::sync::AtomicUsize, usize);
        impl Drop for Unlocked<'_> {
            fn drop(&mut self) {
                // Release: pairs with the Acquire in `lock` by the next publish.
                self.0.store(self.1, Ordering::Release);
            }
        }
        let unlocked = Unlocked(&self.producer.word, word);
        // SAFETY: the caller's contract.
        let readers = unsafe { self.readers_after_requests(word) };
        core::mem::forget(unlocked);
        if readers == 0 {
            // Nobody can ever read it: the seed's behaviour is to drop it and advance.
            // Release: as in `publish_held`.
            self.producer.word.store(word.wrapping_add(ONE), Ordering::Release);
            drop(value);
            return Ok(());
        }
        // SAFETY: the caller's contract, and `readers` is a non-zero count.
        unsafe { self.publish_held(word, value, readers) }
    }

    /// The rest of [`try_publish`](Self::try_publish), ending the hold of the producer role.
    ///
    /// # Safety
    ///
    /// The caller holds the producer role (for this call), `word` is the current write word,
    /// the buffer is not closed and `readers` is as for [`write_at`](Self::write_at).
    #[inline(always)]
    unsafe fn publish_held(
        &self,
        word: usize,
        value: T,
        readers: usize,
    ) -> Result<(), TryPublishError<T>> {
        // SAFETY: the caller's contract.
        match unsafe { self.write_at(word, value, readers) } {
            Ok(()) => {
                // Release: publishes the slot (and ends our hold of the producer role).
                // Pairs with the Acquire loads in `poll` and in `lock`.
                self.producer.word.store(word.wrapping_add(ONE), Ordering::Release);
                Ok(())
            }
            Err(value) => {
                // Release: pairs with the Acquire in `lock` by the next publish (nothing changed).
                self.producer.word.store(word, Ordering::Release);
                Err(TryPublishError::Full(value))
            }
        }
    }

    /// Takes consumer `index`'s next value: by move if it is the last consumer to read it, as a
    /// clone otherwise.
    ///
    /// If `T::clone` panics, nothing changes: the position does not advance and the next call
    /// delivers the same value.
    ///
    /// # Errors
    ///
    /// - [`TryConsumeError::Empty`] when this consumer has read everything published so far.
    /// - [`TryConsumeError::Closed`] when, moreover, the publisher has gone.
    /// - [`TryConsumeError::Busy`] when another thread is consuming with the same index at this
    ///   moment, or a [`Subscriber`](crate::Subscriber) holds it.
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
        let cursor = self.cursor(index);
        // Relaxed: only the expected value of the compare-and-swap below, which synchronises.
        let seat = cursor.read.load(Ordering::Relaxed);
        if seat & (HELD | STOP | BUSY) != 0 {
            return Err(self.refused(seat));
        }
        // Acquire: pairs with the Release read-modify-write that ended the previous call with
        // this index (the unlock below), so its slot accesses and `cached_write` store happen
        // before ours. From here until the unlock, this index is ours.
        if cursor
            .read
            .compare_exchange(seat, seat | BUSY, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(TryConsumeError::Busy);
        }
        // Ends our hold on the index on every path, also on a panic in `T::clone` (then the
        // position stays where it was). A read-modify-write, not a store: a `detach` may set
        // STOP meanwhile, which must stay.
        let mut unlock = Unlock { seat: &cursor.read, advance: 0 };
        // Relaxed: only the holder of the index touches `cached_write` (see `Cursor`), and the
        // hold passes with the Acquire/Release pair on the seat word.
        let cached = cursor.cached_write.load(Ordering::Relaxed);
        let mut seen = cached;
        self.poll(seat, &mut seen)?;
        if seen != cached {
            cursor.cached_write.store(seen, Ordering::Relaxed);
        }
        // SAFETY: `poll` saw our position published; the seat is counted (STOP was clear when we
        // took it, and the producer leaves a BUSY seat alone) and we hold the index, so the unit
        // of this slot is ours.
        let (value, spare) = unsafe { self.slot(seat / ONE).read() };
        unlock.advance = ONE;
        drop(unlock);
        // The original, when this consumer became the last reader after cloning; dropped here,
        // after the bookkeeping, because a destructor may panic.
        drop(spare);
        Ok(value)
    }

    /// Why a consumer call on seat word `seat` (with a flag set) is refused.
    #[cold]
    pub(crate) fn refused(&self, seat: usize) -> TryConsumeError {
        if seat & STOP == 0 || seat & HELD != 0 {
            TryConsumeError::Busy
        } else {
            self.stopped(seat)
        }
    }

    /// The error for a stopped seat word `seat`. Asked to join: nothing yet (the producer counts
    /// it from its next value), or `Closed` if there will be no next value. Otherwise detached,
    /// with how many values it has missed so far since its frontier.
    #[cold]
    pub(crate) fn stopped(&self, seat: usize) -> TryConsumeError {
        // Acquire: pairs with the Release store in `Publisher::drop`, as in `poll`.
        let write = self.producer.word.load(Ordering::Acquire);
        if seat & JOIN == 0 {
            // A seat may be asked to stop before the producer counted it (`behind` then is 0).
            TryConsumeError::Detached { missed: behind(write, seat) as u64 }
        } else if write & CLOSED != 0 {
            TryConsumeError::Closed
        } else {
            TryConsumeError::Empty
        }
    }

    /// Detaches consumer `index` so that the producer no longer waits for it: the values it has
    /// not read are given back (by the producer, before its next value) and it receives no
    /// more. Its next call returns [`TryConsumeError::Detached`], with how many values it has
    /// missed; it can then [`rejoin`](Self::rejoin) (or [`Subscriber::rejoin`]) at the current
    /// position. A value it is reading at this moment stays its own until it is done with it.
    ///
    /// Returns `false` if the seat was not subscribed. Lossless stays the default: nothing is
    /// detached unless the application asks (here, or with
    /// [`Publisher::set_lag_limit`](crate::Publisher::set_lag_limit)).
    ///
    /// [`Subscriber::rejoin`]: crate::Subscriber::rejoin
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
        // Release: pairs with the Acquire load in `apply_requests`. Relaxed would do for the
        // claim protocol itself: the modification order of the seat word decides.
        let stopped = self.cursor(index).stop();
        if stopped {
            self.producer.request();
        }
        stopped
    }

    /// Detaches every subscribed consumer more than `max_lag` values behind (see
    /// [`detach`](Self::detach)); returns how many.
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
        // Relaxed: a position to measure lags against; the detach itself is what counts.
        let write = self.producer.word.load(Ordering::Relaxed);
        let mut detached = 0;
        for cursor in self.storage.cursors() {
            // Relaxed: as above.
            let seat = cursor.read.load(Ordering::Relaxed);
            if seat & STOP == 0 && behind(write, seat) > max_lag && cursor.stop() {
                detached += 1;
            }
        }
        if detached != 0 {
            self.producer.request();
        }
        detached
    }

    /// Asks for consumer `index` (detached or vacant, and not held by a
    /// [`Subscriber`](crate::Subscriber)) to be counted again: from the producer's next value on,
    /// it receives every value. Returns `false` if the seat is subscribed, already rejoining, or
    /// held by a `Subscriber`.
    ///
    /// # Panics
    ///
    /// If `index` is not below [`consumer_count`](Self::consumer_count).
    #[track_caller]
    pub fn rejoin(&self, index: usize) -> bool {
        join(&self.cursor(index).read, 0, 0) && {
            self.producer.request();
            true
        }
    }

    /// Whether the publisher has gone: a [`Publisher`](crate::Publisher) of this buffer was
    /// dropped, and nothing more will be published.
    pub fn is_closed(&self) -> bool {
        // Relaxed: an observation.
        self.producer.word.load(Ordering::Relaxed) & CLOSED != 0
    }

    /// Takes consumer `index`'s next value, or `None` if there is none; the seed's `consume`.
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
        self.slots().len()
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
        self.storage.cursors().len()
    }

    /// The number of subscribed seats at this moment: those not detached, vacant or still
    /// joining.
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
        // Relaxed: an observation.
        self.storage.cursors().iter().filter(|c| c.read.load(Ordering::Relaxed) & STOP == 0).count()
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
        // Relaxed: a snapshot for observation; it orders nothing.
        word_to_position(self.producer.word.load(Ordering::Relaxed))
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
        // Relaxed: a snapshot for observation; it orders nothing.
        word_to_position(self.cursor(index).read.load(Ordering::Relaxed))
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
        // Relaxed throughout: a snapshot for observation; it orders nothing.
        let word = self.producer.word.load(Ordering::Relaxed);
        let write = word & !FLAGS;
        let mut slowest: Option<(usize, usize)> = None;
        let mut subscribed = 0;
        for (index, cursor) in self.storage.cursors().iter().enumerate() {
            let seat = cursor.read.load(Ordering::Relaxed);
            if seat & STOP != 0 {
                continue;
            }
            subscribed += 1;
            // A consumer may have moved past the `write` loaded above: `behind` counts it as
            // caught up.
            let behind = behind(write, seat);
            if !matches!(slowest, Some((_, most)) if most >= behind) {
                slowest = Some((index, behind));
            }
        }
        crate::State {
            capacity: self.capacity(),
            consumers: self.consumer_count(),
            subscribed,
            closed: word & CLOSED != 0,
            write_position: word_to_position(write),
            slowest_consumer: slowest.map(|(index, _)| index),
            held: slowest.map_or(0, |(_, behind)| behind),
        }
    }
}

/// How many positions seat word `seat` is behind write word `write` (flags ignored); 0 if it is
/// not behind. Real distances are at most `2 * capacity` positions, far below half the wrap, so
/// the sign of the wrapping difference tells ahead from behind.
fn behind(write: usize, seat: usize) -> usize {
    let diff = (write & !FLAGS).wrapping_sub(seat & !FLAGS);
    if (diff as isize) < 0 {
        0
    } else {
        diff / ONE
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
        // Every value still in a slot was published and not yet taken by its last reader: drop
        // each exactly once.
        // SAFETY: the buffer is being dropped (`&mut self`): no other reference to it exists.
        unsafe { drop_values(self.storage.slots()) };
    }
}

/// Drops the value of each slot that holds one; if a destructor panics, the rest are still
/// dropped (a second panic aborts, as for slices).
///
/// # Safety
///
/// Nobody else accesses the slots during or after the call.
unsafe fn drop_values<T>(slots: &[Slot<T>]) {
    struct Rest<'a, T>(&'a [Slot<T>]);
    impl<T> Drop for Rest<'_, T> {
        fn drop(&mut self) {
            // SAFETY: the contract of the `drop_values` call that made this guard.
            unsafe { drop_values(self.0) };
        }
    }
    for (i, slot) in slots.iter().enumerate() {
        // Runs only if the destructor below panics.
        let rest = Rest(&slots[i + 1..]);
        // SAFETY: the caller's contract: the slot is ours alone.
        unsafe { slot.drop_unshared() };
        core::mem::forget(rest);
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

#[cfg(test)]
impl<T, S: Storage<T>> Buffer<T, S> {
    /// Moves every cursor of a fresh buffer to `position`, to test the wrap of positions.
    pub(crate) fn start_at(self, position: usize) -> Self {
        assert_eq!(self.write_position(), 0, "start_at needs a fresh buffer");
        let word = position.wrapping_mul(ONE);
        // Relaxed: test set-up on the owning thread (`self` by value); threads spawned later are
        // ordered after it by their spawn.
        self.producer.word.store(word, Ordering::Relaxed);
        for cursor in self.storage.cursors() {
            let flags = cursor.read.load(Ordering::Relaxed) & FLAGS;
            cursor.read.store(word | flags, Ordering::Relaxed);
            cursor.cached_write.store(word, Ordering::Relaxed);
        }
        self
    }

    /// Marks a role as held by another call, as a second thread would while inside a call.
    #[cfg(not(multicast_loom))]
    pub(crate) fn hold(&self, consumer: Option<usize>, held: bool) {
        let (cursor, bit) = match consumer {
            Some(index) => (&self.cursor(index).read, BUSY),
            None => (&self.producer.word, crate::raw::LOCKED),
        };
        // Relaxed: single-threaded tests; it only flips the role bit as another call would.
        if held {
            cursor.fetch_or(bit, Ordering::Relaxed);
        } else {
            cursor.fetch_and(!bit, Ordering::Relaxed);
        }
    }
}
