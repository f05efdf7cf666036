//! Typed handles: a [`Publisher`] that owns the producer role and a [`Subscriber`] per consumer
//! index, for as long as they live. They take `&mut self`, so they need no run-time role check:
//! the check is made once, when the handle is created.

use core::fmt;
use core::ops::Deref;

use crate::raw::{join, lock, CLOSED, FLAGS, HELD, LOCKED, ONE, REQUEST, STOP, UNKNOWN};
use crate::sync::{AtomicUsize, Ordering};
use crate::{Buffer, NoFreeSeat, Storage, TryConsumeError, TryPublishError};

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
    /// something else holds it at this moment (another publisher, or a `try_publish` call) or
    /// the buffer is closed (a publisher was dropped).
    ///
    /// While the publisher lives, [`try_publish`](Self::try_publish) on the buffer returns
    /// [`TryPublishError::Busy`]; once it is dropped, the buffer is closed.
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

    /// Takes consumer seat `index` for as long as the returned [`Subscriber`] lives, or `None`
    /// if something else holds it at this moment. A subscribed seat continues from its
    /// position; a vacant or detached one joins at the producer's next value.
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

    /// Takes a vacant seat and subscribes it: the returned [`Subscriber`] receives every value
    /// published from the producer's next value on. Nothing is allocated.
    ///
    /// # Errors
    ///
    /// [`NoFreeSeat`] when every seat is taken.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::InlineBuffer;
    ///
    /// let buf: InlineBuffer<u32, 8, 1> = InlineBuffer::with_seats();
    /// let first = buf.subscribe().unwrap();
    /// assert!(buf.subscribe().is_err(), "one seat only");
    /// drop(first);
    /// assert!(buf.subscribe().is_ok(), "its seat is free again");
    /// ```
    pub fn subscribe(&self) -> Result<Subscriber<&Self>, NoFreeSeat> {
        Subscriber::subscribe(self)
    }
}

/// The producer role of a buffer, held until this handle is dropped; dropping it closes the
/// buffer: consumers drain what is left and then get [`TryConsumeError::Closed`].
///
/// Not `Clone`: there is one producer. Its methods take `&mut self`, so publishing needs no
/// run-time role check, which makes it the cheapest way to publish.
///
/// A `Publisher` borrows its buffer through a [`BufferRef`]: `&Buffer` or `Arc<Buffer>`.
///
/// Leaking it (`mem::forget`) keeps the producer role taken for good and the buffer open:
/// nothing else can publish. That is safe; the values in the buffer are still dropped with it.
///
/// ```compile_fail,E0599
/// use multicast_buffer_core::InlineBuffer;
/// static BUF: InlineBuffer<u32, 8, 1> = InlineBuffer::new();
/// let publisher = BUF.publisher().unwrap();
/// let second = publisher.clone(); // a publisher is not `Clone`
/// ```
pub struct Publisher<B: BufferRef, N: Notify = ()> {
    buffer: B,
    /// The write word (flags clear); the shared word holds it with `LOCKED` set.
    word: usize,
    /// Detach consumers more than this many values behind when the buffer is full.
    lag_limit: Option<usize>,
    /// Told after each publish (see `with_notify`).
    notify: N,
}

/// What a [`Publisher`] tells after each publish (see [`Publisher::with_notify`]): the
/// interrupt-safe way for firmware to be told that data arrived. `()` tells nothing and costs
/// nothing; any `Fn()` (a `fn()` item, or a closure) is called.
pub trait Notify {
    /// Called by the publisher after each successful publish (and batch), once the values are
    /// visible to consumers, in the publisher's context.
    fn notify(&self);
}

impl Notify for () {
    #[inline(always)]
    fn notify(&self) {}
}

impl<F: Fn()> Notify for F {
    #[inline(always)]
    fn notify(&self) {
        self()
    }
}

impl<B: BufferRef> Publisher<B> {
    /// Takes the producer role of `buffer`, or gives `None` if something holds it now or the
    /// buffer is closed.
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
        Publisher::with_notify(buffer, ())
    }
}

impl<B: BufferRef, N: Notify> Publisher<B, N> {
    /// Takes the producer role of `buffer` like [`new`](Publisher::new), with `notify` told after
    /// each successful publish (and batch), once the values are visible: the interrupt-safe way
    /// for firmware to be told that data arrived, for example by pending the interrupt of the
    /// consumer's task or signalling an event. It runs in the publisher's context (an interrupt
    /// handler, if that is where the publisher runs), so it must be short and must not block.
    /// A publisher made by `new` tells nothing, at no cost.
    ///
    /// # Examples
    ///
    /// ```
    /// use core::sync::atomic::{AtomicBool, Ordering};
    /// use multicast_buffer_core::{InlineBuffer, Publisher};
    ///
    /// static DATA_READY: AtomicBool = AtomicBool::new(false);
    /// static SAMPLES: InlineBuffer<u16, 8, 1> = InlineBuffer::new();
    ///
    /// // In firmware: `|| cortex_m::peripheral::NVIC::pend(Interrupt::SWI0)`, or a signal.
    /// let ready: fn() = || DATA_READY.store(true, Ordering::Release);
    /// let mut publisher = Publisher::with_notify(&SAMPLES, ready).unwrap();
    /// publisher.try_publish(512).unwrap();
    /// assert!(DATA_READY.swap(false, Ordering::Acquire));
    /// ```
    pub fn with_notify(buffer: B, notify: N) -> Option<Self> {
        let shared = &buffer.buffer().producer.word;
        // Acquire (in `lock`): pairs with the Release store that ended the previous producer's
        // hold, so its slot writes happen before ours.
        let word = lock(shared)?;
        if word & CLOSED != 0 {
            // Release: gives the role back unchanged; pairs with the Acquire in `lock`.
            shared.store(word, Ordering::Release);
            return None;
        }
        Some(Self { buffer, word, lag_limit: None, notify })
    }

    /// Publishes `value` to every subscribed consumer, or gives it back.
    ///
    /// # Errors
    ///
    /// - [`TryPublishError::Full`] when the slot it would go into is still held by a consumer
    ///   (after detaching the consumers beyond the [lag limit](Self::set_lag_limit), if set).
    /// - [`TryPublishError::Disconnected`] when no consumer is subscribed.
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
        let readers = self.buffer.buffer().control();
        if readers & REQUEST != 0 {
            return self.try_publish_cold(value);
        }
        self.publish_now(value, readers)
    }

    /// [`try_publish`](Self::try_publish) with requests to apply first, or nobody subscribed.
    #[cold]
    #[inline(never)]
    fn try_publish_cold(&mut self, value: B::Item) -> Result<(), TryPublishError<B::Item>> {
        // SAFETY: we hold the producer role and `self.word` is the write word.
        match unsafe { self.buffer.buffer().readers_after_requests(self.word) } {
            0 => Err(TryPublishError::Disconnected(value)),
            readers => self.publish_now(value, readers),
        }
    }

    /// [`try_publish`](Self::try_publish) for `readers` seats (not 0, no `REQUEST`).
    #[inline(always)]
    fn publish_now(
        &mut self,
        value: B::Item,
        readers: usize,
    ) -> Result<(), TryPublishError<B::Item>> {
        let buffer = self.buffer.buffer();
        // A local copy: the compiler need not reload it after the atomic accesses.
        let word = self.word;
        // SAFETY: we hold the producer role (taken in `new`), `word` is the write word and
        // `readers` is the current non-zero count.
        match unsafe { buffer.write_at(word, value, readers) } {
            Ok(()) => {
                let next = word.wrapping_add(ONE);
                self.word = next;
                // Release: publishes the slot. Pairs with the Acquire load in `poll`. LOCKED
                // stays set: we keep the role.
                buffer.producer.word.store(next | LOCKED, Ordering::Release);
                self.notify.notify();
                Ok(())
            }
            Err(value) => self.full(value),
        }
    }

    /// The slot is held: detaches the consumers beyond the lag limit and tries once more (a
    /// second time, nobody is left to detach), or says who holds it.
    #[cold]
    #[inline(never)]
    fn full(&mut self, value: B::Item) -> Result<(), TryPublishError<B::Item>> {
        if self.make_room() {
            return self.try_publish_cold(value);
        }
        Err(TryPublishError::Full(value))
    }

    /// Detaches the consumers beyond the lag limit, if one is set; whether it detached any.
    fn make_room(&self) -> bool {
        match self.lag_limit {
            Some(limit) => self.buffer.buffer().detach_lagging(limit) != 0,
            None => false,
        }
    }

    /// Sets the policy for a full buffer: with `Some(n)`, a publish that finds the buffer full
    /// detaches every consumer more than `n` values behind (see [`Buffer::detach`]) and tries
    /// again, so a stalled consumer cannot hold the pipeline for long; with `None` (the
    /// default), nothing is ever detached and the publisher sees backpressure.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::{InlineBuffer, TryConsumeError};
    ///
    /// let buf: InlineBuffer<u32, 4, 2> = InlineBuffer::new();
    /// let mut publisher = buf.publisher().unwrap();
    /// publisher.set_lag_limit(Some(2));
    /// let mut fast = buf.subscriber(0).unwrap();
    /// let mut stalled = buf.subscriber(1).unwrap();
    /// for v in 0..10 {
    ///     publisher.try_publish(v).unwrap(); // never full: the stalled one is detached
    ///     assert_eq!(fast.try_recv(), Ok(v));
    /// }
    /// assert!(matches!(stalled.try_recv(), Err(TryConsumeError::Detached { .. })));
    /// ```
    pub fn set_lag_limit(&mut self, limit: Option<usize>) {
        self.lag_limit = limit;
    }

    /// The number of subscribed consumers, after applying the latest subscriptions and
    /// departures: 0 means every consumer is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::InlineBuffer;
    ///
    /// let buf: InlineBuffer<u32, 4, 2> = InlineBuffer::with_seats();
    /// let mut publisher = buf.publisher().unwrap();
    /// let subscriber = buf.subscribe().unwrap();
    /// assert_eq!(publisher.subscribers(), 1);
    /// drop(subscriber);
    /// assert_eq!(publisher.subscribers(), 0);
    /// ```
    pub fn subscribers(&mut self) -> usize {
        // SAFETY: we hold the producer role and `self.word` is the write word.
        unsafe { self.buffer.buffer().readers(self.word) }
    }

    /// Publishes values from `values` while there is room, at most `capacity` of them, with one
    /// update of the write position for the whole batch; returns how many were published (0
    /// also when no consumer is subscribed).
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
        // SAFETY: we hold the producer role and `self.word` is the write word.
        let mut readers = unsafe { buffer.readers(self.word) };
        if readers != 0 && !buffer.slot(self.word / ONE).is_free() && self.make_room() {
            // SAFETY: as above.
            readers = unsafe { buffer.readers(self.word) };
        }
        if readers == 0 {
            return 0;
        }
        // Loaded once: the compiler may not reuse loads across the Acquire loads in `is_free`.
        let slots = buffer.storage.slots();
        let mask = slots.len() - 1;
        let mut values = values;
        let mut published = 0;
        let mut progress = Progress { local: self.word, word: &mut self.word };
        // At most one lap per call: bounded.
        while published <= mask {
            // SAFETY: the length is a non-zero power of two, so the masked index is in bounds.
            let slot = unsafe { slots.get_unchecked((progress.local / ONE) & mask) };
            if !slot.is_free() {
                break;
            }
            let Some(value) = values.next() else { break };
            // SAFETY: we hold the producer role and saw the slot free; it becomes visible only
            // with the Release store below.
            unsafe { slot.write_free(value, readers) };
            progress.local = progress.local.wrapping_add(ONE);
            published += 1;
        }
        let end = progress.local;
        drop(progress);
        if published != 0 {
            // Release: publishes the whole batch. Pairs with the Acquire load in `poll`.
            buffer.producer.word.store(end | LOCKED, Ordering::Release);
            self.notify.notify();
        }
        published
    }

    /// The buffer this publisher writes to.
    pub fn buffer(&self) -> &Buffer<B::Item, B::Storage> {
        self.buffer.buffer()
    }
}

/// A batch loop's position, kept in a local (the compiler need not reload it after each atomic
/// access) and written back to the handle when dropped: also if an iterator panics, so the
/// handle's position always covers the slots already written.
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

impl<B: BufferRef, N: Notify> Drop for Publisher<B, N> {
    fn drop(&mut self) {
        let producer = &self.buffer.buffer().producer;
        // Sends every later `Buffer::try_publish` to its cold path, which answers `Closed`; the
        // flag stays set, as nobody applies requests on a closed buffer. Relaxed: ordered before
        // the Release store below, which a later `lock` reads.
        producer.control.fetch_or(REQUEST, Ordering::Relaxed);
        // Release: publishes the close (and gives the role back). Pairs with the Acquire loads
        // in `poll` (consumers drain, then see CLOSED) and in `lock`.
        producer.word.store(self.word | CLOSED, Ordering::Release);
    }
}

impl<B: BufferRef, N: Notify> fmt::Debug for Publisher<B, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("write_position", &(self.word / ONE))
            .field("lag_limit", &self.lag_limit)
            .finish()
    }
}

/// One consumer seat of a buffer, held until this handle is dropped.
///
/// Its methods take `&mut self`, so consuming needs no run-time role check; it keeps its read
/// position and the last write position it saw to itself. Before reading a slot it claims the
/// position with one compare-and-swap on its own seat word, which is what lets the buffer
/// [detach](Buffer::detach) it at any moment without waiting for it.
///
/// Dropping it gives back what it took. A seat it subscribed ([`Buffer::subscribe`], or
/// [`Buffer::subscriber`] on a vacant seat) is unsubscribed: the values it has not read are
/// given back (by the producer, before its next value), later values no longer wait for it, and
/// the seat is free for [`Buffer::subscribe`]. A seat that was already subscribed (an index-API
/// seat of [`Buffer::new`], taken with [`Buffer::subscriber`]) is handed back still subscribed,
/// at its position, so nothing published meanwhile is lost; [`Buffer::detach`] ends it.
///
/// Leaking it (`mem::forget`) keeps the seat subscribed for good, and the slots it has not
/// read stay held until it is detached. That is safe.
pub struct Subscriber<B: BufferRef> {
    buffer: B,
    index: usize,
    /// The read word (flags clear); the seat word holds it with `HELD` set.
    word: usize,
    /// The last write word seen.
    seen: usize,
    /// Whether it took a seat that was already subscribed (an index-API seat): it hands it back
    /// subscribed when dropped, instead of unsubscribing it.
    keep: bool,
}

impl<B: BufferRef> Subscriber<B> {
    /// Takes consumer seat `index` of `buffer` (see [`Buffer::subscriber`]), or gives `None` if
    /// something holds it now.
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
        let this = buffer.buffer();
        let (word, seen) = this.cursor(index).take(&this.producer)?;
        Some(Self { buffer, index, word, seen, keep: word != UNKNOWN })
    }

    /// Takes a vacant seat of `buffer` and subscribes it (see [`Buffer::subscribe`]); the way
    /// to subscribe through an `Arc`.
    ///
    /// # Errors
    ///
    /// [`NoFreeSeat`] when every seat is taken.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "alloc")] {
    /// use std::sync::Arc;
    /// use multicast_buffer_core::{HeapBuffer, Subscriber};
    ///
    /// let buf = Arc::new(HeapBuffer::with_seats(64, 8));
    /// let mut publisher = buf.publisher().unwrap();
    /// let mut subscriber = Subscriber::subscribe(Arc::clone(&buf)).unwrap();
    /// publisher.try_publish(1).unwrap();
    /// assert_eq!(std::thread::spawn(move || subscriber.try_recv()).join().unwrap(), Ok(1));
    /// # }
    /// ```
    pub fn subscribe(buffer: B) -> Result<Self, NoFreeSeat> {
        let this = buffer.buffer();
        let cursors = this.storage.cursors();
        match cursors.iter().position(|cursor| join(&cursor.read, 0, HELD)) {
            Some(index) => {
                this.producer.request();
                Ok(Self { buffer, index, word: UNKNOWN, seen: UNKNOWN, keep: false })
            }
            None => Err(NoFreeSeat { seats: cursors.len() }),
        }
    }

    /// The consumer seat this subscriber holds.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Takes the next value: by move if this is the last consumer to read it, as a clone
    /// otherwise. If `T::clone` panics, nothing changes.
    ///
    /// # Errors
    ///
    /// - [`TryConsumeError::Empty`] when everything published has been read (or this subscriber
    ///   is still joining).
    /// - [`TryConsumeError::Closed`] when, moreover, the publisher has gone.
    /// - [`TryConsumeError::Detached`] when it was detached: see [`rejoin`](Self::rejoin).
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
        if buffer.poll(word, &mut self.seen).is_ok() {
            #[cfg(multicast_bug = "read-before-claim")]
            // Injected bug: look at the value before claiming the position.
            // SAFETY: none; a detach may let the producer give the slot away meanwhile.
            drop(unsafe { buffer.slot(word / ONE).get() }.clone());
            // SAFETY: the index was checked when this handle was made.
            if claim(unsafe { buffer.seat(self.index) }, word, ONE) {
                // SAFETY: `poll` saw the position published and we claimed it.
                return Ok(unsafe { self.read_claimed(word) });
            }
        }
        // Out of line and finishing the call itself, so that the hot path keeps nothing live
        // across a call.
        self.try_recv_cold()
    }

    /// [`try_recv`](Self::try_recv) when nothing was claimed: nothing new, or the seat is
    /// stopped (a detached seat that has read everything would otherwise hear `Empty` for
    /// ever), or counted again at a new position. Looks at the seat first.
    #[cold]
    #[inline(never)]
    fn try_recv_cold(&mut self) -> Result<B::Item, TryConsumeError>
    where
        B::Item: Clone,
    {
        let word = self.claim_after_looking()?;
        // SAFETY: `claim_after_looking` saw the position published and claimed it.
        Ok(unsafe { self.read_claimed(word) })
    }

    /// The cold paths' claim: looks at the seat first (stopped, or counted again at a new
    /// position), then polls and claims; the claimed position's word, or why there is none.
    #[inline(always)]
    fn claim_after_looking(&mut self) -> Result<usize, TryConsumeError> {
        loop {
            self.stopped()?;
            let buffer = self.buffer.buffer();
            let word = self.word;
            buffer.poll(word, &mut self.seen)?;
            // SAFETY: the index was checked when this handle was made.
            if claim(unsafe { buffer.seat(self.index) }, word, ONE) {
                return Ok(word);
            }
        }
    }

    /// Reads the value at claimed position `word` and advances past it.
    ///
    /// # Safety
    ///
    /// `word` is this handle's position, published, and claimed by this handle.
    #[inline(always)]
    unsafe fn read_claimed(&mut self, word: usize) -> B::Item
    where
        B::Item: Clone,
    {
        let buffer = self.buffer.buffer();
        // SAFETY: the index was checked when this handle was made.
        let seat = unsafe { buffer.seat(self.index) };
        // On a panic in `T::clone`, gives the position back (see `Claim`).
        let mut claim = Claim { buffer, seat, word: &mut self.word, next: word, end: word };
        claim.end = word.wrapping_add(ONE);
        // SAFETY: the caller's contract: the unit of this slot is ours.
        let (value, spare) = unsafe { buffer.slot(word / ONE).read() };
        claim.next = claim.end;
        drop(claim);
        // The original, when we became the last reader after cloning; dropped after the
        // bookkeeping, as a destructor may panic.
        drop(spare);
        value
    }

    /// Looks at the seat when nothing was claimed: `Err` if it is stopped (detached, or still
    /// joining); `Ok` once this handle has its position (which the producer may have set anew).
    #[cold]
    fn stopped(&mut self) -> Result<(), TryConsumeError> {
        let buffer = self.buffer.buffer();
        // Acquire: pairs with the Release compare-and-swap in `apply_requests` that counted this
        // seat again.
        // SAFETY: the index was checked when this handle was made.
        let seat = unsafe { buffer.seat(self.index) }.load(Ordering::Acquire);
        if seat & STOP == 0 {
            self.word = seat & !FLAGS;
            self.seen = self.word;
            return Ok(());
        }
        Err(buffer.stopped(seat))
    }

    /// After [`TryConsumeError::Detached`]: asks to be counted again, from the producer's next
    /// value on. Returns `false` if this subscriber was not detached or is already rejoining.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::{InlineBuffer, TryConsumeError};
    ///
    /// let buf: InlineBuffer<u32, 4, 1> = InlineBuffer::new();
    /// let mut subscriber = buf.subscriber(0).unwrap();
    /// buf.try_publish(1).unwrap();
    /// buf.detach(0);
    /// buf.try_publish(2).unwrap();
    /// assert_eq!(subscriber.try_recv(), Err(TryConsumeError::Detached { missed: 2 }));
    /// assert!(subscriber.rejoin());
    /// buf.try_publish(3).unwrap();
    /// assert_eq!(subscriber.try_recv(), Ok(3));
    /// ```
    pub fn rejoin(&mut self) -> bool {
        let buffer = self.buffer.buffer();
        // SAFETY: the index was checked when this handle was made.
        if !join(unsafe { buffer.seat(self.index) }, HELD, 0) {
            return false;
        }
        buffer.producer.request();
        // Forget the old position: the producer picks the new one, which after a wrap of the
        // position counter could equal the old one while the old `seen` would vouch for slots
        // not published at the new one. `UNKNOWN` makes the next call ask the seat.
        self.word = UNKNOWN;
        self.seen = UNKNOWN;
        true
    }

    /// Borrows the next value in place, without cloning: `T` need not be `Clone`. The slot is
    /// released when the guard is dropped.
    ///
    /// # Errors
    ///
    /// As [`try_recv`](Self::try_recv).
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
        let buffer = self.buffer.buffer();
        let word = self.word;
        // SAFETY: the index was checked when this handle was made.
        let seat = unsafe { buffer.seat(self.index) };
        if buffer.poll(word, &mut self.seen).is_ok() && claim(seat, word, ONE) {
            self.word = word.wrapping_add(ONE);
            return Ok(ReadGuard { subscriber: self, word });
        }
        self.try_read_cold()
    }

    /// [`try_read`](Self::try_read) when nothing was claimed (see `try_recv_cold`).
    #[cold]
    #[inline(never)]
    fn try_read_cold(&mut self) -> Result<ReadGuard<'_, B>, TryConsumeError> {
        let word = self.claim_after_looking()?;
        self.word = word.wrapping_add(ONE);
        Ok(ReadGuard { subscriber: self, word })
    }

    /// Takes the values available now (at most `max`, and at most `capacity`), handing each to
    /// `f`; one look at the producer's position and one claim for the batch. Returns how many
    /// were taken.
    ///
    /// If `f` (or `T::clone`) panics, the values not yet handed out stay unread.
    ///
    /// # Errors
    ///
    /// As [`try_recv`](Self::try_recv).
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
    /// assert_eq!(buf.subscriber(0).unwrap().recv_batch(usize::MAX, |v| sum += v), Ok(5));
    /// assert_eq!(sum, 15);
    /// ```
    pub fn recv_batch(
        &mut self,
        max: usize,
        mut f: impl FnMut(B::Item),
    ) -> Result<usize, TryConsumeError>
    where
        B::Item: Clone,
    {
        let mut checked = false;
        loop {
            let buffer = self.buffer.buffer();
            let word = self.word;
            // One look at the producer's position per batch: the batch is what is available now
            // (at most `capacity` values), so the call is bounded however fast the producer is.
            if let Err(err) = buffer.poll(word, &mut self.seen) {
                if checked {
                    return Err(err);
                }
                // Nothing new: the seat may be stopped (see `try_recv_cold`).
                self.stopped()?;
                checked = true;
                continue;
            }
            let run = (self.seen.wrapping_sub(word) / ONE).min(max);
            // SAFETY: the index was checked when this handle was made.
            let seat = unsafe { buffer.seat(self.index) };
            if claim(seat, word, run.wrapping_mul(ONE)) {
                let slots = buffer.storage.slots();
                let mask = slots.len() - 1;
                let end = word.wrapping_add(run.wrapping_mul(ONE));
                let mut claim = Claim { buffer, seat, word: &mut self.word, next: word, end };
                while claim.next != end {
                    // SAFETY: the length is a non-zero power of two: the index is in bounds.
                    let slot = unsafe { slots.get_unchecked((claim.next / ONE) & mask) };
                    // SAFETY: below the write position `poll` saw, and claimed by us.
                    let (value, spare) = unsafe { slot.read() };
                    // Advance before anything that may panic (`f`, a destructor).
                    claim.next = claim.next.wrapping_add(ONE);
                    drop(spare);
                    f(value);
                }
                return Ok(run);
            }
            self.stopped()?;
            checked = true;
        }
    }

    /// Moves every value available now into `out` while it has room; returns how many. For
    /// firmware: a fixed-capacity `heapless::Vec`, no allocator.
    ///
    /// # Errors
    ///
    /// As [`try_recv`](Self::try_recv).
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::InlineBuffer;
    ///
    /// let buf: InlineBuffer<u16, 8, 1> = InlineBuffer::new();
    /// buf.publisher().unwrap().publish_iter(0..6);
    /// let mut out: heapless::Vec<u16, 4> = heapless::Vec::new();
    /// assert_eq!(buf.subscriber(0).unwrap().drain_into(&mut out), Ok(4));
    /// assert_eq!(out, [0, 1, 2, 3]);
    /// ```
    #[cfg(feature = "heapless")]
    pub fn drain_into<const N: usize>(
        &mut self,
        out: &mut heapless::Vec<B::Item, N>,
    ) -> Result<usize, TryConsumeError>
    where
        B::Item: Clone,
    {
        let room = out.capacity() - out.len();
        self.recv_batch(room, |value| {
            // Cannot fail: at most `room` values are taken.
            let _ = out.push(value);
        })
    }

    /// Values published that this subscriber has not read yet (0 while it is joining).
    pub fn lag(&self) -> usize {
        if self.word == UNKNOWN {
            return 0;
        }
        // Relaxed: a snapshot for observation.
        let write = self.buffer.buffer().producer.word.load(Ordering::Relaxed) & !FLAGS;
        write.wrapping_sub(self.word) / ONE
    }

    /// Whether a value is ready to be read now (or the buffer is closed, or this subscriber
    /// detached: whether a call would return something other than
    /// [`TryConsumeError::Empty`]). For waiting loops and wakers.
    #[inline]
    pub fn is_ready(&mut self) -> bool {
        if self.word != UNKNOWN && self.buffer.buffer().poll(self.word, &mut self.seen).is_ok() {
            return true;
        }
        // Nothing new, or joining: what does the seat say?
        match self.stopped() {
            Ok(()) => {
                self.buffer.buffer().poll(self.word, &mut self.seen) != Err(TryConsumeError::Empty)
            }
            Err(err) => err != TryConsumeError::Empty,
        }
    }

    /// The buffer this subscriber reads from.
    pub fn buffer(&self) -> &Buffer<B::Item, B::Storage> {
        self.buffer.buffer()
    }
}

/// Claims the positions `word..word + count` (words) of a held seat for its holder, unless the
/// seat is stopped (or the producer moved it). The claim decides who gives back each unit: the
/// holder for what it claimed, the producer for the rest once the seat is stopped.
#[inline(always)]
fn claim(seat: &AtomicUsize, word: usize, count: usize) -> bool {
    // Relaxed: exclusivity comes from the modification order of the seat word alone (a stop is
    // a read-modify-write on it too); the slots are ordered by `poll` and the slot counts.
    seat.compare_exchange(
        word | HELD,
        word.wrapping_add(count) | HELD,
        Ordering::Relaxed,
        Ordering::Relaxed,
    )
    .is_ok()
}

/// Claimed positions `next..end` not yet read; written back to the handle when dropped. On a
/// panic before they are read, gives them back to the seat if it is still running (the next call
/// reads them again), and otherwise gives back their units (the seat was stopped meanwhile, so
/// the producer no longer counts them as ours).
struct Claim<'a, T, S: Storage<T>> {
    buffer: &'a Buffer<T, S>,
    seat: &'a AtomicUsize,
    word: &'a mut usize,
    next: usize,
    end: usize,
}

impl<T, S: Storage<T>> Drop for Claim<'_, T, S> {
    #[inline(always)]
    fn drop(&mut self) {
        if self.next != self.end {
            self.unwind();
        }
        *self.word = self.next;
    }
}

impl<T, S: Storage<T>> Claim<'_, T, S> {
    #[cold]
    fn unwind(&mut self) {
        // Relaxed: as in `claim`.
        if self
            .seat
            .compare_exchange(
                self.end | HELD,
                self.next | HELD,
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_err()
        {
            // SAFETY: we claimed these positions and hold their units; the seat is stopped past
            // them, so nobody else gives them back.
            unsafe { self.buffer.give_back(self.next, self.end) };
            self.next = self.end;
        }
    }
}

impl<B: BufferRef> Drop for Subscriber<B> {
    fn drop(&mut self) {
        let buffer = self.buffer.buffer();
        let cursor = buffer.cursor(self.index);
        if self.keep {
            cursor.hand_back();
        } else {
            cursor.leave(&buffer.producer);
        }
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
/// slot (the last consumer to release a value drops it). If it is leaked (`mem::forget`), its
/// slot stays held for good, as for a leaked `Subscriber`.
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
    /// The claimed position (word).
    word: usize,
}

impl<B: BufferRef> Deref for ReadGuard<'_, B> {
    type Target = B::Item;

    #[inline]
    fn deref(&self) -> &B::Item {
        // SAFETY: `try_read` saw the position published and claimed it; its unit is held until
        // this guard is dropped.
        unsafe { self.subscriber.buffer.buffer().slot(self.word / ONE).get() }
    }
}

impl<B: BufferRef> Drop for ReadGuard<'_, B> {
    fn drop(&mut self) {
        // SAFETY: we hold the unit of the claimed slot and give it back once; no reference from
        // `deref` outlives the guard. The last consumer to release the value drops it.
        drop(unsafe { self.subscriber.buffer.buffer().slot(self.word / ONE).release() });
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
