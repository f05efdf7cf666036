//! The buffer: a write cursor, the slots and the consumer cursors, and the public API.

use core::fmt;
use core::marker::PhantomData;

use crate::raw::{lock, Cursor, Padded, Slot, Unlock, LOCKED, ONE};
use crate::sync::{AtomicUsize, Ordering};
use crate::{Storage, TryConsumeError, TryPublishError};

/// The most consumers a buffer can have.
pub const MAX_CONSUMERS: usize = 1024;

/// The largest capacity a buffer can have: `2^(usize::BITS - 2)` slots, so that the distance
/// between two positions (which wrap at `2^(usize::BITS - 1)`) is never ambiguous.
pub const MAX_CAPACITY: usize = 1 << (usize::BITS - 2);

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
/// `2^(usize::BITS - 1)`: `2^63` on 64-bit targets, `2^31` on 32-bit ones, where the `u64`
/// accessors therefore return the position modulo `2^31`. The buffer works across the wrap.
pub struct Buffer<T, S: Storage<T>> {
    /// Write position times `ONE`, plus `LOCKED` while a call or a `Publisher` holds the
    /// producer role.
    pub(crate) write: Padded<AtomicUsize>,
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
        Self::from_storage(crate::Inline::new())
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
            Ok(Self::from_storage(crate::Heap::new(capacity, consumers)))
        }
    }
}

impl<T, S: Storage<T>> Buffer<T, S> {
    const_unless_loom! {
        fn from_storage(storage: S) -> Self {
            Self { write: Padded::new(AtomicUsize::new(0)), storage, _values: PhantomData }
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

    /// The producer's step, shared by [`try_publish`](Self::try_publish) and
    /// [`Publisher`](crate::Publisher): stores `value` in the slot at `word`'s position.
    ///
    /// `Ok(None)`: stored; the caller publishes it by storing the next write word. `Ok(Some(v))`:
    /// there are no consumers; the caller advances and then drops `v`. `Err(v)`: the slot is
    /// still held (backpressure).
    ///
    /// # Safety
    ///
    /// The caller owns the producer role and `word` is the current write word (`LOCKED` clear).
    #[inline(always)]
    pub(crate) unsafe fn write_at(&self, word: usize, value: T) -> Result<Option<T>, T> {
        let readers = self.consumer_count();
        if readers == 0 {
            return Ok(Some(value));
        }
        #[cfg(multicast_bug = "publish-before-write")]
        // Injected bug: advance the write position before the slot is written.
        self.write.store(word.wrapping_add(ONE) | LOCKED, Ordering::Release);
        // SAFETY: the caller owns the producer role, readers >= 1, and the slot becomes visible
        // to consumers only when the caller stores the next write word with Release.
        unsafe { self.slot(word / ONE).try_write(value, readers) }.map(|()| None)
    }

    /// The consumer's check, shared by [`try_consume`](Self::try_consume) and
    /// [`Subscriber`](crate::Subscriber): is the position of read word `word` published?
    /// `seen` is the last write word this consumer saw; it is refreshed from the producer's
    /// cache line only when the consumer has caught up with it.
    #[inline(always)]
    pub(crate) fn has_next(&self, word: usize, seen: &mut usize) -> bool {
        if *seen == word {
            // Acquire: pairs with the Release stores of the write word (`try_publish`,
            // `Publisher::try_publish`, `Publisher::publish_iter`, `Publisher::drop`), so the slots
            // below it are written before we read them.
            let write = self.write.load(Ordering::Acquire) & !LOCKED;
            if write == word {
                return false;
            }
            *seen = write;
        }
        true
    }

    /// Publishes `value` to every consumer, or gives it back.
    ///
    /// With zero consumers nobody can ever read the value, so it is dropped at once and the write
    /// position advances.
    ///
    /// # Errors
    ///
    /// - [`TryPublishError::Full`] when the slot the value would go into is still held by a
    ///   consumer, i.e. the slowest consumer is `capacity` values behind (backpressure).
    /// - [`TryPublishError::Busy`] when another thread is publishing at this moment.
    ///
    /// Either way the value comes back in the error.
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
        let Some(word) = lock(&self.write) else {
            return Err(TryPublishError::Busy(value));
        };
        // SAFETY: we own the producer role and `word` is the current write word.
        match unsafe { self.write_at(word, value) } {
            Ok(unread) => {
                // Release: publishes the slot (and ends our ownership of the producer role).
                // Pairs with the Acquire loads in `has_next` and in `lock`.
                self.write.store(word.wrapping_add(ONE), Ordering::Release);
                // Only with zero consumers: dropped after the bookkeeping, as it may panic.
                drop(unread);
                Ok(())
            }
            Err(value) => {
                // Release: pairs with the Acquire in `lock` by the next publish (nothing changed).
                self.write.store(word, Ordering::Release);
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
    /// - [`TryConsumeError::Busy`] when another thread is consuming with the same index at this
    ///   moment.
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
        // Acquire (in `lock`): pairs with the Release store (`Unlock`) that ended the previous call
        // with this index, so its slot accesses and cached write word happen before ours.
        let Some(word) = lock(&cursor.read) else {
            return Err(TryConsumeError::Busy);
        };
        // From here until `unlock` drops, this index is ours; dropping it (also on a panic in
        // `T::clone`) puts the unchanged position back.
        let mut unlock = Unlock { cursor: &cursor.read, word };
        // Relaxed: only the owner of the index touches `cached_write`, and ownership passes with
        // the Acquire/Release pair on `read`.
        let cached = cursor.cached_write.load(Ordering::Relaxed);
        let mut seen = cached;
        if !self.has_next(word, &mut seen) {
            return Err(TryConsumeError::Empty);
        }
        if seen != cached {
            cursor.cached_write.store(seen, Ordering::Relaxed);
        }
        // SAFETY: `has_next` saw our position published, and we hold its unit for this index: we
        // own the index and have not advanced past it.
        let (value, spare) = unsafe { self.slot(word / ONE).read() };
        unlock.word = word.wrapping_add(ONE);
        drop(unlock);
        // The original, when this consumer became the last reader after cloning; dropped here,
        // after the bookkeeping, because a destructor may panic.
        drop(spare);
        Ok(value)
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

    /// The number of consumers, fixed at construction.
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

    /// The number of values published so far (modulo `2^(usize::BITS - 1)`: see
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
        word_to_position(self.write.load(Ordering::Relaxed))
    }

    /// The number of values consumer `index` has read (modulo `2^(usize::BITS - 1)`).
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

    /// A snapshot of the buffer's state: shape, positions, the slowest consumer and how many
    /// values are held. Taken without stopping anyone, so under concurrent use the fields may
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
        let write = self.write.load(Ordering::Relaxed) & !LOCKED;
        let mut slowest: Option<(usize, usize)> = None;
        for (index, cursor) in self.storage.cursors().iter().enumerate() {
            let read = cursor.read.load(Ordering::Relaxed) & !LOCKED;
            // A consumer may have moved past the `write` loaded above: count it as caught up.
            // (Real distances are at most `2 * capacity <= 2^(usize::BITS - 1)` words, so the
            // sign of the wrapping difference tells ahead from behind.)
            let diff = write.wrapping_sub(read);
            let behind = if (diff as isize) < 0 { 0 } else { diff / ONE };
            if !matches!(slowest, Some((_, most)) if most >= behind) {
                slowest = Some((index, behind));
            }
        }
        crate::State {
            capacity: self.capacity(),
            consumers: self.consumer_count(),
            write_position: word_to_position(write),
            slowest_consumer: slowest.map(|(index, _)| index),
            held: slowest.map_or(0, |(_, behind)| behind),
        }
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
        self.write.store(word, Ordering::Relaxed);
        for cursor in self.storage.cursors() {
            cursor.read.store(word, Ordering::Relaxed);
            cursor.cached_write.store(word, Ordering::Relaxed);
        }
        self
    }

    /// Marks a role as held by another call, as a second thread would while inside a call.
    #[cfg(not(multicast_loom))]
    pub(crate) fn hold(&self, consumer: Option<usize>, held: bool) {
        let cursor = match consumer {
            Some(index) => &self.cursor(index).read,
            None => &*self.write,
        };
        // Relaxed: single-threaded tests; it only flips the role bit as another call would.
        if held {
            cursor.fetch_or(LOCKED, Ordering::Relaxed);
        } else {
            cursor.fetch_and(!LOCKED, Ordering::Relaxed);
        }
    }
}
