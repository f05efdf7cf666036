//! Typed handles: a [`Publisher`] that owns the producer role and a [`Subscriber`] per consumer
//! index, for as long as they live. They take `&mut self`, so they need no run-time role check:
//! the check is made once, when the handle is created.

use core::fmt;
use core::ops::Deref;

use crate::raw::{lock, LOCKED, ONE};
use crate::sync::Ordering;
use crate::{Buffer, Storage, TryConsumeError, TryPublishError};

mod sealed {
    pub trait Sealed {}
}

/// A way for a handle to reach its buffer: `&Buffer` (for example a `static` in firmware) or,
/// with the `alloc` feature, `Arc<Buffer>` (servers).
///
/// Sealed: the handles rely on reaching the same buffer every time, which an arbitrary `Deref`
/// does not promise.
pub trait BufferRef: sealed::Sealed {
    /// The payload type.
    type Item;
    /// The buffer's storage.
    type Storage: Storage<Self::Item>;
    /// The buffer.
    fn buffer(&self) -> &Buffer<Self::Item, Self::Storage>;
}

impl<T, S: Storage<T>> sealed::Sealed for &Buffer<T, S> {}

impl<T, S: Storage<T>> BufferRef for &Buffer<T, S> {
    type Item = T;
    type Storage = S;
    #[inline(always)]
    fn buffer(&self) -> &Buffer<T, S> {
        self
    }
}

// `alloc::sync::Arc` exists only on targets with pointer-sized atomic read-modify-write.
#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
impl<T, S: Storage<T>> sealed::Sealed for alloc::sync::Arc<Buffer<T, S>> {}

#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
impl<T, S: Storage<T>> BufferRef for alloc::sync::Arc<Buffer<T, S>> {
    type Item = T;
    type Storage = S;
    #[inline(always)]
    fn buffer(&self) -> &Buffer<T, S> {
        self
    }
}

impl<T, S: Storage<T>> Buffer<T, S> {
    /// Takes the producer role for as long as the returned [`Publisher`] lives, or `None` if
    /// something else holds it at this moment (another publisher, or a `try_publish` call).
    ///
    /// While the publisher lives, [`try_publish`](Self::try_publish) on the buffer returns
    /// [`TryPublishError::Busy`].
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::InlineBuffer;
    ///
    /// static BUF: InlineBuffer<u32, 8, 1> = InlineBuffer::new();
    /// let mut publisher = BUF.publisher().unwrap();
    /// assert!(BUF.publisher().is_none(), "one publisher at a time");
    /// publisher.try_publish(1).unwrap();
    /// assert_eq!(BUF.consume(0), Some(1));
    /// ```
    pub fn publisher(&self) -> Option<Publisher<&Self>> {
        Publisher::new(self)
    }

    /// Takes consumer index `index` for as long as the returned [`Subscriber`] lives, or `None`
    /// if something else holds it at this moment.
    ///
    /// # Panics
    ///
    /// If `index` is not below [`consumer_count`](Self::consumer_count).
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::InlineBuffer;
    ///
    /// let buf: InlineBuffer<u32, 8, 2> = InlineBuffer::new();
    /// let mut publisher = buf.publisher().unwrap();
    /// let mut subscriber = buf.subscriber(1).unwrap();
    /// publisher.try_publish(5).unwrap();
    /// assert_eq!(subscriber.try_recv(), Ok(5));
    /// ```
    #[track_caller]
    pub fn subscriber(&self, index: usize) -> Option<Subscriber<&Self>> {
        Subscriber::new(self, index)
    }
}

/// The producer role of a buffer, held until this handle is dropped.
///
/// Not `Clone`: there is one producer. Its methods take `&mut self`, so publishing needs no
/// run-time role check, which makes it the cheapest way to publish.
///
/// A `Publisher` borrows its buffer through a [`BufferRef`]: `&Buffer` or `Arc<Buffer>`.
///
/// Leaking it (`mem::forget`) keeps the producer role taken for good: nothing else can publish.
/// That is safe; the values in the buffer are still dropped with it.
///
/// ```compile_fail,E0599
/// use multicast_buffer_core::InlineBuffer;
/// static BUF: InlineBuffer<u32, 8, 1> = InlineBuffer::new();
/// let publisher = BUF.publisher().unwrap();
/// let second = publisher.clone(); // a publisher is not `Clone`
/// ```
pub struct Publisher<B: BufferRef> {
    buffer: B,
    /// The write word (`LOCKED` clear); the shared cursor holds it with `LOCKED` set.
    word: usize,
}

impl<B: BufferRef> Publisher<B> {
    /// Takes the producer role of `buffer`, or gives `None` if something holds it now.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "alloc")] {
    /// use std::sync::Arc;
    /// use multicast_buffer_core::{HeapBuffer, Publisher};
    ///
    /// let buf = Arc::new(HeapBuffer::new(64, 2));
    /// let mut publisher = Publisher::new(Arc::clone(&buf)).unwrap();
    /// std::thread::spawn(move || publisher.try_publish("hello").unwrap()).join().unwrap();
    /// assert_eq!(buf.consume(0), Some("hello"));
    /// # }
    /// ```
    pub fn new(buffer: B) -> Option<Self> {
        // Acquire (in `lock`): pairs with the Release store that ended the previous producer's
        // ownership, so its slot writes happen before ours.
        let word = lock(&buffer.buffer().write)?;
        Some(Self { buffer, word })
    }

    /// Publishes `value` to every consumer, or gives it back.
    ///
    /// # Errors
    ///
    /// [`TryPublishError::Full`] when the slot it would go into is still held by a consumer.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::InlineBuffer;
    ///
    /// let buf: InlineBuffer<u32, 1, 1> = InlineBuffer::new();
    /// let mut publisher = buf.publisher().unwrap();
    /// publisher.try_publish(1).unwrap();
    /// assert_eq!(publisher.try_publish(2).unwrap_err().into_inner(), 2);
    /// ```
    #[inline]
    pub fn try_publish(&mut self, value: B::Item) -> Result<(), TryPublishError<B::Item>> {
        let buffer = self.buffer.buffer();
        // A local copy: the compiler need not reload it after the atomic accesses.
        let word = self.word;
        // SAFETY: we own the producer role (taken in `new`) and `word` is the write word.
        match unsafe { buffer.write_at(word, value) } {
            Ok(unread) => {
                let next = word.wrapping_add(ONE);
                self.word = next;
                // Release: publishes the slot. Pairs with the Acquire load in `has_next`.
                // LOCKED stays set: we keep the role.
                buffer.write.store(next | LOCKED, Ordering::Release);
                drop(unread);
                Ok(())
            }
            Err(value) => Err(TryPublishError::Full(value)),
        }
    }

    /// Publishes values from `values` while there is room, at most `capacity` of them, with one
    /// update of the write position for the whole batch; returns how many were published.
    ///
    /// A value is taken from the iterator only once its slot is known to be free, so nothing is
    /// lost: what did not fit is still in the iterator.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::InlineBuffer;
    ///
    /// let buf: InlineBuffer<u32, 4, 1> = InlineBuffer::new();
    /// let mut publisher = buf.publisher().unwrap();
    /// let mut values = 0..10;
    /// assert_eq!(publisher.publish_iter(&mut values), 4);
    /// assert_eq!(values.next(), Some(4), "the rest stays in the iterator");
    /// ```
    pub fn publish_iter<I: Iterator<Item = B::Item>>(&mut self, values: I) -> usize {
        let buffer = self.buffer.buffer();
        let readers = buffer.consumer_count();
        // Loaded once: the compiler may not reuse loads across the Acquire loads in `is_free`.
        let slots = buffer.storage.slots();
        let mask = slots.len() - 1;
        let mut values = values;
        let mut published = 0;
        let mut progress = Progress { local: self.word, word: &mut self.word };
        // At most one lap per call: bounded, also with zero consumers (where there is always room).
        while published <= mask {
            // SAFETY: the length is a non-zero power of two, so the masked index is in bounds.
            let slot = unsafe { slots.get_unchecked((progress.local / ONE) & mask) };
            if readers != 0 && !slot.is_free() {
                break;
            }
            let Some(value) = values.next() else { break };
            progress.local = progress.local.wrapping_add(ONE);
            published += 1;
            if readers == 0 {
                // Nobody can ever read it.
                drop(value);
            } else {
                // SAFETY: we own the producer role and saw the slot free; it becomes visible only
                // with the Release store below.
                unsafe { slot.write_free(value, readers) };
            }
        }
        let end = progress.local;
        drop(progress);
        if published != 0 {
            // Release: publishes the whole batch. Pairs with the Acquire load in `has_next`.
            buffer.write.store(end | LOCKED, Ordering::Release);
        }
        published
    }

    /// The buffer this publisher writes to.
    pub fn buffer(&self) -> &Buffer<B::Item, B::Storage> {
        self.buffer.buffer()
    }
}

/// A batch loop's position, kept in a local (the compiler need not reload it after each atomic
/// access) and written back to the handle when dropped: also if an iterator, a callback or a
/// destructor panics, so the handle's position always covers the slots already handled.
struct Progress<'a> {
    word: &'a mut usize,
    local: usize,
}

impl Drop for Progress<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        *self.word = self.local;
    }
}

impl<B: BufferRef> Drop for Publisher<B> {
    fn drop(&mut self) {
        // Release: gives the producer role back. Pairs with the Acquire in `lock` by the next
        // producer.
        self.buffer.buffer().write.store(self.word, Ordering::Release);
    }
}

impl<B: BufferRef> fmt::Debug for Publisher<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher").field("write_position", &(self.word / ONE)).finish()
    }
}

/// One consumer index of a buffer, held until this handle is dropped.
///
/// Its methods take `&mut self`, so consuming needs no run-time role check; it keeps its read
/// position and the last write position it saw to itself. Dropping it gives the index back at
/// its current position (to the index API, or to a new `Subscriber`).
///
/// Leaking it (`mem::forget`) keeps the index taken for good, and the slots it has not read stay
/// held: the producer then sees backpressure once it is `capacity` ahead. That is safe.
pub struct Subscriber<B: BufferRef> {
    buffer: B,
    index: usize,
    /// The read word (`LOCKED` clear); the shared cursor holds it with `LOCKED` set.
    word: usize,
    /// The last write word seen.
    seen: usize,
}

impl<B: BufferRef> Subscriber<B> {
    /// Takes consumer index `index` of `buffer`, or gives `None` if something holds it now.
    ///
    /// # Panics
    ///
    /// If `index` is not below the buffer's consumer count.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "alloc")] {
    /// use std::sync::Arc;
    /// use multicast_buffer_core::{HeapBuffer, Subscriber};
    ///
    /// let buf = Arc::new(HeapBuffer::new(64, 1));
    /// buf.try_publish(7u64).unwrap();
    /// let mut subscriber = Subscriber::new(Arc::clone(&buf), 0).unwrap();
    /// let got = std::thread::spawn(move || subscriber.try_recv()).join().unwrap();
    /// assert_eq!(got, Ok(7));
    /// # }
    /// ```
    #[track_caller]
    pub fn new(buffer: B, index: usize) -> Option<Self> {
        let cursor = buffer.buffer().cursor(index);
        // Acquire (in `lock`): pairs with the Release store that ended the previous owner's use of
        // this index, so its slot accesses happen before ours.
        let word = lock(&cursor.read)?;
        // Relaxed: ordered by the Acquire above, like every access of the index's owner.
        let seen = cursor.cached_write.load(Ordering::Relaxed);
        Some(Self { buffer, index, word, seen })
    }

    /// The consumer index this subscriber holds.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Takes the next value: by move if this is the last consumer to read it, as a clone
    /// otherwise. If `T::clone` panics, nothing changes.
    ///
    /// # Errors
    ///
    /// [`TryConsumeError::Empty`] when everything published has been read.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::{InlineBuffer, TryConsumeError};
    ///
    /// let buf: InlineBuffer<u32, 4, 1> = InlineBuffer::new();
    /// let mut subscriber = buf.subscriber(0).unwrap();
    /// assert_eq!(subscriber.try_recv(), Err(TryConsumeError::Empty));
    /// buf.try_publish(3).unwrap();
    /// assert_eq!(subscriber.try_recv(), Ok(3));
    /// ```
    #[inline]
    pub fn try_recv(&mut self) -> Result<B::Item, TryConsumeError>
    where
        B::Item: Clone,
    {
        let buffer = self.buffer.buffer();
        // A local copy: the compiler need not reload it after the atomic accesses.
        let word = self.word;
        if !buffer.has_next(word, &mut self.seen) {
            return Err(TryConsumeError::Empty);
        }
        // SAFETY: `has_next` saw our position published; we own the index and hold the unit of
        // the slot at our position.
        let (value, spare) = unsafe { buffer.slot(word / ONE).read() };
        self.word = word.wrapping_add(ONE);
        self.store_position();
        drop(spare);
        Ok(value)
    }

    /// Borrows the next value in place, without cloning: `T` need not be `Clone`. The slot is
    /// released, and the position advances, when the guard is dropped.
    ///
    /// # Errors
    ///
    /// [`TryConsumeError::Empty`] when everything published has been read.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::InlineBuffer;
    ///
    /// struct Frame([u8; 256]); // neither `Clone` nor small
    ///
    /// let buf: InlineBuffer<Frame, 4, 2> = InlineBuffer::new();
    /// buf.publisher().unwrap().try_publish(Frame([7; 256])).ok().unwrap();
    /// let mut subscriber = buf.subscriber(0).unwrap();
    /// {
    ///     let frame = subscriber.try_read().ok().unwrap();
    ///     assert_eq!(frame.0[255], 7);
    /// } // released here
    /// assert_eq!(buf.read_position(0), 1);
    /// ```
    #[inline]
    pub fn try_read(&mut self) -> Result<ReadGuard<'_, B>, TryConsumeError> {
        if !self.buffer.buffer().has_next(self.word, &mut self.seen) {
            return Err(TryConsumeError::Empty);
        }
        Ok(ReadGuard { subscriber: self })
    }

    /// Takes the values available now (at most `max`, and at most `capacity`), handing each to
    /// `f`; one look at the producer's position and one update of the read position for the
    /// batch. Returns how many were taken.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::InlineBuffer;
    ///
    /// let buf: InlineBuffer<u32, 8, 1> = InlineBuffer::new();
    /// let mut publisher = buf.publisher().unwrap();
    /// publisher.publish_iter(1..=5);
    /// let mut sum = 0;
    /// assert_eq!(buf.subscriber(0).unwrap().recv_batch(usize::MAX, |v| sum += v), 5);
    /// assert_eq!(sum, 15);
    /// ```
    pub fn recv_batch(&mut self, max: usize, mut f: impl FnMut(B::Item)) -> usize
    where
        B::Item: Clone,
    {
        let buffer = self.buffer.buffer();
        // One look at the producer's position per batch: the batch is what is available now
        // (at most `capacity` values), so the call is bounded however fast the producer is.
        if !buffer.has_next(self.word, &mut self.seen) {
            return 0;
        }
        let slots = buffer.storage.slots();
        let mask = slots.len() - 1;
        let run = (self.seen.wrapping_sub(self.word) / ONE).min(max);
        let mut progress = Progress { local: self.word, word: &mut self.word };
        for _ in 0..run {
            // SAFETY: the length is a non-zero power of two, so the masked index is in bounds.
            let slot = unsafe { slots.get_unchecked((progress.local / ONE) & mask) };
            // SAFETY: as in `try_recv`: below the write position `has_next` saw.
            let (value, spare) = unsafe { slot.read() };
            // Advance before anything that may panic (`f`, a destructor).
            progress.local = progress.local.wrapping_add(ONE);
            drop(spare);
            f(value);
        }
        drop(progress);
        self.store_position();
        run
    }

    /// Moves every value available now into `out` while it has room; returns how many. For
    /// firmware: a fixed-capacity `heapless::Vec`, no allocator.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::InlineBuffer;
    ///
    /// let buf: InlineBuffer<u16, 8, 1> = InlineBuffer::new();
    /// buf.publisher().unwrap().publish_iter(0..6);
    /// let mut out: heapless::Vec<u16, 4> = heapless::Vec::new();
    /// assert_eq!(buf.subscriber(0).unwrap().drain_into(&mut out), 4);
    /// assert_eq!(out, [0, 1, 2, 3]);
    /// ```
    #[cfg(feature = "heapless")]
    pub fn drain_into<const N: usize>(&mut self, out: &mut heapless::Vec<B::Item, N>) -> usize
    where
        B::Item: Clone,
    {
        let room = out.capacity() - out.len();
        self.recv_batch(room, |value| {
            // Cannot fail: at most `room` values are taken.
            let _ = out.push(value);
        })
    }

    /// Values published that this subscriber has not read yet.
    pub fn lag(&self) -> usize {
        // Relaxed: a snapshot for observation.
        let write = self.buffer.buffer().write.load(Ordering::Relaxed) & !LOCKED;
        write.wrapping_sub(self.word) / ONE
    }

    /// The buffer this subscriber reads from.
    pub fn buffer(&self) -> &Buffer<B::Item, B::Storage> {
        self.buffer.buffer()
    }

    #[inline(always)]
    fn advance(&mut self) {
        self.word = self.word.wrapping_add(ONE);
        self.store_position();
    }

    #[inline(always)]
    fn store_position(&self) {
        // SAFETY: `new` checked the index against the consumer count, which never changes.
        let cursor = unsafe { self.buffer.buffer().storage.cursors().get_unchecked(self.index) };
        // Relaxed: the shared cursor is only observed (`read_position`, `state`) while we hold
        // the index; the Release store in `drop` orders our accesses for the next owner.
        cursor.read.store(self.word | LOCKED, Ordering::Relaxed);
    }
}

impl<B: BufferRef> Drop for Subscriber<B> {
    fn drop(&mut self) {
        let cursor = self.buffer.buffer().cursor(self.index);
        // Relaxed: ordered by the Release store below.
        cursor.cached_write.store(self.seen, Ordering::Relaxed);
        // Release: gives the index back. Pairs with the Acquire in `lock` by the next owner.
        cursor.read.store(self.word, Ordering::Release);
    }
}

impl<B: BufferRef> fmt::Debug for Subscriber<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("index", &self.index)
            .field("read_position", &(self.word / ONE))
            .finish()
    }
}

/// A value read in place by [`Subscriber::try_read`]; derefs to `&T`. Dropping it releases the
/// slot (the last consumer to release a value drops it) and advances the subscriber. If it is
/// leaked (`mem::forget`), the subscriber has not advanced: the next read sees the same value.
///
/// It borrows the subscriber, which borrows or owns the buffer, so it cannot outlive either:
///
/// ```compile_fail,E0597
/// use multicast_buffer_core::InlineBuffer;
/// let guard = {
///     let buf: InlineBuffer<u32, 4, 1> = InlineBuffer::new();
///     buf.try_publish(1).unwrap();
///     let mut subscriber = buf.subscriber(0).unwrap();
///     let guard = subscriber.try_read().ok().unwrap();
///     guard // error: `subscriber` and `buf` do not live long enough
/// };
/// ```
pub struct ReadGuard<'a, B: BufferRef> {
    subscriber: &'a mut Subscriber<B>,
}

impl<B: BufferRef> Deref for ReadGuard<'_, B> {
    type Target = B::Item;

    #[inline]
    fn deref(&self) -> &B::Item {
        let subscriber = &*self.subscriber;
        // SAFETY: `try_read` saw the position published, and the subscriber keeps its unit of the
        // slot until this guard is dropped.
        unsafe { subscriber.buffer.buffer().slot(subscriber.word / ONE).get() }
    }
}

impl<B: BufferRef> Drop for ReadGuard<'_, B> {
    fn drop(&mut self) {
        let subscriber = &mut *self.subscriber;
        // SAFETY: we hold the unit of the slot at the subscriber's position and give it back
        // once; no reference from `deref` outlives the guard.
        let last = unsafe { subscriber.buffer.buffer().slot(subscriber.word / ONE).release() };
        subscriber.advance();
        // The last consumer to release the value drops it, after the bookkeeping.
        drop(last);
    }
}

impl<B: BufferRef> fmt::Debug for ReadGuard<'_, B>
where
    B::Item: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
