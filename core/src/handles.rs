//! Typed handles: a [`Publisher`] that owns the producer role and a [`Subscriber`] per consumer
//! seat, for as long as they live. They take `&mut self`, so they need no run-time role check:
//! the check is made once, when the handle is created.

use core::fmt;
use core::ops::Deref;

use crate::protocol::{
    available, since, take_role, Seat, Settle, CLOSED, CLOSING, COLD, FLAGS, HELD, JOINING,
    MEMBERSHIP, ONE, RUNNING, STOP, STOPPING, TETHERED, UNKNOWN, VACANT,
};
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
    /// if something else holds it at this moment. The subscriber is *tethered* (see
    /// [`Subscriber`]): it continues from the seat's position, and a subscribed seat is handed
    /// back subscribed when it is dropped. A detached or vacant seat stays so: its calls return
    /// [`TryConsumeError::Detached`] until it [rejoins](Subscriber::rejoin).
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
    /// published from the producer's next value on. It is *evictable* (see [`Subscriber`]): a
    /// detach or a lag limit takes effect at once, without its cooperation. Nothing is
    /// allocated.
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
/// run-time role check, which makes it the cheapest way to publish: no atomic read-modify-write
/// per value.
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
    /// The write word (flags clear); the role word holds `LOCKED` while it lives.
    word: usize,
    /// The lag limit and the detach it calls: a pointer, so that a publisher without a limit
    /// links no detach code.
    lag_limit: Option<(usize, DetachLagging<B>)>,
    /// Told after each publish (see `with_notify`).
    notify: N,
}

/// [`Buffer::detach_lagging`] of a [`BufferRef`]'s buffer.
type DetachLagging<B> =
    fn(&Buffer<<B as BufferRef>::Item, <B as BufferRef>::Storage>, usize) -> usize;

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
        let this = buffer.buffer();
        // Acquire (in `take_role`): pairs with the Release store that ended the previous
        // producer's hold, so its slot writes happen before ours.
        let word = take_role(&this.role, &this.producer)?;
        if word & CLOSED != 0 {
            this.give_role(word);
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
        let buffer = self.buffer.buffer();
        let ring = buffer.ring();
        // A local copy: the compiler need not reload it after the atomic accesses.
        let word = self.word;
        let control = buffer.producer.control();
        // The slot is ready without further work: solo, its lane is free; shared, it is
        // prepared (once per count word it is not: the slow path prepares the word).
        let ready =
            if ring.solo { ring.solo_free(word) } else { buffer.producer.prepared() != word };
        if control & COLD != 0 || !ready {
            return self.publish_slow(value);
        }
        // SAFETY: we hold the producer role (taken in `new`), `word` is the write word, and its
        // slot is ready (above).
        self.word = unsafe { buffer.commit(&ring, word, value) };
        self.notify.notify();
        Ok(())
    }

    /// [`try_publish`](Self::try_publish) when the slot is not ready without further work. Out
    /// of line and called last, so that the fast path keeps nothing across a call.
    #[cold]
    #[inline(never)]
    fn publish_slow(&mut self, value: B::Item) -> Result<(), TryPublishError<B::Item>> {
        if let Err(refused) = self.make_ready() {
            return Err(refused.with(value));
        }
        let buffer = self.buffer.buffer();
        // SAFETY: as in `try_publish`; `make_ready` made the slot ready.
        self.word = unsafe { buffer.commit(&buffer.ring(), self.word, value) };
        self.notify.notify();
        Ok(())
    }

    /// [`try_publish`](Self::try_publish) with requests to apply first, nobody subscribed, a
    /// count word to prepare, or a full buffer (then the lag limit, if set, detaches the
    /// consumers beyond it and it tries once more): makes the slot of the write word ready, or
    /// says why it cannot.
    #[cold]
    #[inline(never)]
    fn make_ready(&self) -> Result<(), TryPublishError<()>> {
        let buffer = self.buffer.buffer();
        let mut control = buffer.producer.control();
        let mut tried = false;
        loop {
            if control & COLD != 0 {
                // SAFETY: we hold the producer role and `self.word` is the write word.
                control = unsafe { buffer.after_requests(self.word) };
                if buffer.readers(control) == 0 {
                    return Err(TryPublishError::Disconnected(()));
                }
            }
            // SAFETY: as above, and `control` counts readers, without `REQUEST`.
            if unsafe { buffer.reserve(self.word, control) } {
                return Ok(());
            }
            // A second time, nobody is left to detach.
            if tried || !self.make_room() {
                return Err(TryPublishError::Full(()));
            }
            tried = true;
            control = buffer.producer.control() | crate::protocol::REQUEST;
        }
    }

    /// Detaches the consumers beyond the lag limit, if one is set; whether it detached any.
    fn make_room(&self) -> bool {
        match self.lag_limit {
            Some((limit, detach_lagging)) => detach_lagging(self.buffer.buffer(), limit) != 0,
            None => false,
        }
    }

    /// Sets the policy for a full buffer: with `Some(n)`, a publish that finds the buffer full
    /// detaches every evictable consumer (index-API seats and subscribers from
    /// [`subscribe`](Buffer::subscribe), see [`Subscriber`]) more than `n` values behind (see
    /// [`Buffer::detach`]) and tries again, so a stalled consumer cannot hold the pipeline for
    /// long; with `None` (the default), nothing is ever detached and the publisher sees
    /// backpressure. It may detach every consumer: the publisher then gets
    /// [`TryPublishError::Disconnected`] until one subscribes or rejoins. Tethered subscribers
    /// are never detached by it.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::{InlineBuffer, TryConsumeError};
    ///
    /// let buf: InlineBuffer<u32, 4, 2> = InlineBuffer::with_seats();
    /// let mut publisher = buf.publisher().unwrap();
    /// publisher.set_lag_limit(Some(2));
    /// let mut fast = buf.subscribe().unwrap();
    /// let mut stalled = buf.subscribe().unwrap();
    /// for v in 0..10 {
    ///     publisher.try_publish(v).unwrap(); // never full: the stalled one is detached
    ///     assert_eq!(fast.try_recv(), Ok(v));
    /// }
    /// assert!(matches!(stalled.try_recv(), Err(TryConsumeError::Detached { .. })));
    /// ```
    pub fn set_lag_limit(&mut self, limit: Option<usize>) {
        self.lag_limit = limit.map(|limit| (limit, Buffer::detach_lagging as DetachLagging<B>));
    }

    /// The number of subscribed consumers, after applying the latest subscriptions and
    /// departures: 0 means every consumer is gone.
    ///
    /// `&mut self` because it applies them (which may drop the values that only departed
    /// consumers still held), as only the holder of the producer role may.
    /// [`Buffer::subscribed`] counts the same seats from `&self` (the joining ones with the
    /// subscribed, the departing ones not) without applying anything: the observer for a
    /// monitor.
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
        let buffer = self.buffer.buffer();
        let mut control = buffer.producer.control();
        if control & COLD != 0 {
            // SAFETY: we hold the producer role and `self.word` is the write word.
            control = unsafe { buffer.after_requests(self.word) };
        }
        buffer.readers(control)
    }

    /// Publishes values from `values` while there is room, at most `capacity` of them, with one
    /// update of the write position for the whole batch; returns how many were published (0
    /// also when no consumer is subscribed).
    ///
    /// A value is taken from the iterator only once its slot is known to be free, so nothing is
    /// lost: what did not fit is still in the iterator. If the iterator panics, the values taken
    /// before are published.
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
        let mut control = buffer.producer.control();
        if control & COLD != 0 {
            // SAFETY: we hold the producer role and `self.word` is the write word.
            control = unsafe { buffer.after_requests(self.word) };
            if buffer.readers(control) == 0 {
                return 0;
            }
        }
        // SAFETY: as above, and `control` counts readers.
        if !unsafe { buffer.reserve(self.word, control) } {
            if !self.make_room() {
                return 0;
            }
            // SAFETY: as above.
            control = unsafe { buffer.after_requests(self.word) };
            if buffer.readers(control) == 0 {
                return 0;
            }
        }
        let ring = buffer.ring();
        let readers = buffer.readers(control);
        let mut values = values;
        // Publishes what was written when dropped: also if the iterator panics.
        let start = self.word;
        let mut batch = Batch {
            producer: &buffer.producer,
            word: &mut self.word,
            end: start,
            prepared: buffer.producer.prepared(),
        };
        // At most one lap per call: bounded.
        for _ in 0..ring.capacity() {
            // SAFETY: we hold the producer role, `batch.end` is the next write word (the slots
            // before it are written, not yet published), `batch.prepared` the prepared end, and
            // `readers` the count of `control`.
            if !unsafe { ring.ready(batch.end, &mut batch.prepared, readers) } {
                break;
            }
            let Some(value) = values.next() else { break };
            // SAFETY: made ready just now.
            unsafe { ring.fill(batch.end, value) };
            batch.end = batch.end.wrapping_add(ONE);
        }
        let published = batch.publish();
        if published != 0 {
            self.notify.notify();
        }
        published
    }

    /// The buffer this publisher writes to.
    pub fn buffer(&self) -> &Buffer<B::Item, B::Storage> {
        self.buffer.buffer()
    }
}

/// A batch of written slots, published when dropped: the values written before a panic of the
/// iterator are published too, so the write word never lags behind the slots (a joining seat is
/// placed at the write word).
struct Batch<'a> {
    producer: &'a crate::protocol::Producer,
    /// The publisher's write word, updated when dropped.
    word: &'a mut usize,
    /// The next write word.
    end: usize,
    /// The end of the prepared lanes (shared buffers), kept locally during the batch and stored
    /// back with it (invariant 3).
    prepared: usize,
}

impl Batch<'_> {
    /// Publishes the batch (the role stays ours); how many values it holds.
    #[inline(always)]
    fn publish(self) -> usize {
        let published = self.end.wrapping_sub(*self.word) / ONE;
        self.producer.set_prepared(self.prepared);
        if published != 0 {
            *self.word = self.end;
            self.producer.publish(self.end);
        }
        core::mem::forget(self);
        published
    }
}

impl Drop for Batch<'_> {
    /// After a panic of the iterator: publishes what was written before it.
    fn drop(&mut self) {
        self.producer.set_prepared(self.prepared);
        if self.end != *self.word {
            *self.word = self.end;
            // Injected bug (the one this guard once had): the publisher moves on, the shared
            // write word does not, so a joining seat is placed at an unpublished position.
            #[cfg(not(multicast_bug = "unwind-unpublished"))]
            self.producer.publish(self.end);
        }
    }
}

impl<B: BufferRef, N: Notify> Drop for Publisher<B, N> {
    fn drop(&mut self) {
        /// Closes the buffer and gives the role back, also if a destructor run while applying
        /// requests panics.
        struct Close<'a, T, S: Storage<T>>(&'a Buffer<T, S>, usize);
        impl<T, S: Storage<T>> Drop for Close<'_, T, S> {
            fn drop(&mut self) {
                let closed = self.1 | CLOSED;
                // Publishes the close: consumers drain, then see `CLOSED`.
                self.0.producer.publish(closed);
                // With a look at what was asked while we closed.
                self.0.give_role(closed);
            }
        }
        let buffer = self.buffer.buffer();
        let close = Close(buffer, self.word);
        // From here on whoever asks for something looks itself (or leaves it to the role
        // holder); what was asked before is applied now: subscribers that left or were
        // detached give back their units now, not when the buffer goes. SeqCst: with the SeqCst
        // `fetch_or(REQUEST)` of a requester: one of the two sees the other.
        let before = buffer.producer.control.fetch_or(CLOSING, crate::sync::Ordering::SeqCst);
        if before & crate::protocol::REQUEST != 0 {
            // SAFETY: we hold the producer role and `self.word` is the write word.
            unsafe { buffer.after_requests(self.word) };
        }
        drop(close);
    }
}

impl<B: BufferRef, N: Notify> fmt::Debug for Publisher<B, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("write_position", &(self.word / ONE))
            .field("lag_limit", &self.lag_limit.map(|(limit, _)| limit))
            .finish()
    }
}

/// One consumer seat of a buffer, held until this handle is dropped.
///
/// Its methods take `&mut self`, so consuming needs no run-time role check; it keeps its read
/// position and the last write position it saw to itself.
///
/// # Tethered or evictable
///
/// - **Tethered** (the default of [`Buffer::subscriber`] and [`Subscriber::new`]: fixed
///   consumers, like a disruptor's handlers): it claims nothing, so a value costs no atomic
///   read-modify-write in a buffer with one seat, and one per count word (per value in single
///   calls, per up to 4 values in a batch) with several. A [detach](Buffer::detach) takes effect
///   at its next look at the producer, on its own thread; a [lag limit](Publisher::set_lag_limit)
///   never detaches it. A stalled tethered subscriber holds the producer back, as any lossless
///   consumer does.
/// - **Evictable** (the default of [`Buffer::subscribe`]: consumers that come and go): before it
///   reads, it claims its position with one compare-and-swap on its own seat word (one per
///   batch with [`recv_batch`](Self::recv_batch)), which lets anyone detach it at any moment
///   without its cooperation, so a dead or stalled one cannot freeze the producer.
///
/// [`set_evictable`](Self::set_evictable) switches between the two.
///
/// Dropping it gives back what it took. A seat it subscribed ([`Buffer::subscribe`], or a
/// [rejoin](Self::rejoin) of a seat that was vacant when it took it) is unsubscribed: the
/// subscriber gives back the values it has not read, on its own thread, later values no longer
/// wait for it, and the seat is free for [`Buffer::subscribe`]. A seat that was subscribed when
/// it took it (an index-API seat of [`Buffer::new`]) is handed back still subscribed, at its
/// position, so nothing published meanwhile is lost; [`Buffer::detach`] ends it.
///
/// Leaking it (`mem::forget`) keeps the seat subscribed for good, and the slots it has not
/// read stay held until it is detached (a tethered one: for good). That is safe.
pub struct Subscriber<B: BufferRef> {
    buffer: B,
    index: usize,
    /// The read word (flags clear), or `UNKNOWN` while joining.
    word: usize,
    /// A write word seen published (flags clear); `word` when there is nothing more to read
    /// without looking at the producer.
    seen: usize,
    /// Once told it is detached: its last value's position, where `Detached { missed }` counts
    /// from (`UNKNOWN` before).
    told: usize,
    /// Claims its positions (see the type's docs).
    evictable: bool,
    /// Unsubscribes its seat when dropped (it subscribed it), instead of handing it back.
    leaves: bool,
    /// The seat was not subscribed when taken: a rejoin makes this subscriber leave on drop.
    vacant: bool,
}

impl<B: BufferRef> Subscriber<B> {
    /// Takes consumer seat `index` of `buffer` (see [`Buffer::subscriber`]): tethered; `None`
    /// if something holds the seat now.
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
    #[inline(never)] // not on a hot path: one copy in firmware
    pub fn new(buffer: B, index: usize) -> Option<Self> {
        let before = buffer.buffer().seat(index).take(true)?;
        // Only a running seat's position is this handle's to read from; a joining one learns it
        // at its first look, and a stopping or vacant one holds nothing for it: it reads nothing
        // before it looks (and is told, from where the seat stopped).
        let (word, told) = match before & MEMBERSHIP {
            RUNNING => (before & !FLAGS, UNKNOWN),
            JOINING => (UNKNOWN, UNKNOWN),
            _ => (UNKNOWN, before & !FLAGS),
        };
        Some(Self {
            buffer,
            index,
            word,
            seen: word,
            told,
            evictable: false,
            leaves: false,
            vacant: before & MEMBERSHIP == VACANT,
        })
    }

    /// Takes a vacant seat of `buffer` and subscribes it (see [`Buffer::subscribe`]): evictable;
    /// the way to subscribe through an `Arc`.
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
        let seats = this.storage.seats();
        this.install_ops();
        // The position of a joining seat is where it asked, for `missed`.
        let asked = this.observe() & !FLAGS;
        for (index, seat) in seats.iter().enumerate() {
            let mut word = seat.peek();
            loop {
                let new = match word & (HELD | MEMBERSHIP) {
                    VACANT => asked | JOINING | HELD,
                    // Given up (a subscriber left, or a detached one let go) and not applied
                    // yet: the producer would make it vacant at its next publish, which may
                    // never come (a producer that waits for subscribers). Cancel the stop
                    // instead: the seat stays counted from its frontier, and what was published
                    // since is skipped, so this subscriber too receives from the producer's next
                    // value on.
                    STOPPING => (word & !STOP) | HELD,
                    _ => break,
                };
                if seat.update(word, new).is_err() {
                    word = seat.peek();
                    continue;
                }
                let joining = new & MEMBERSHIP == JOINING;
                let position = if joining { UNKNOWN } else { new & !FLAGS };
                // The handle first: once closed the ask applies the requests here, and if a
                // destructor panics there (or in the skip) the handle's drop lets go of the seat.
                let mut subscriber = Self {
                    buffer,
                    index,
                    word: position,
                    seen: position,
                    told: UNKNOWN,
                    evictable: true,
                    leaves: true,
                    vacant: true,
                };
                if joining {
                    subscriber.buffer.buffer().request();
                } else {
                    let start = subscriber.buffer.buffer().skip_published(index, position);
                    subscriber.word = start;
                    subscriber.seen = start;
                }
                return Ok(subscriber);
            }
        }
        Err(NoFreeSeat { seats: seats.len() })
    }

    /// The consumer seat this subscriber holds.
    pub fn index(&self) -> usize {
        self.index
    }

    /// This subscriber's seat.
    #[inline(always)]
    fn seat(&self) -> &Seat {
        // SAFETY: the index was checked when this handle was made.
        unsafe { self.buffer.buffer().seat_unchecked(self.index) }
    }

    /// Whether this subscriber is evictable (see the type's docs).
    pub fn is_evictable(&self) -> bool {
        self.evictable
    }

    /// Makes this subscriber evictable (it claims its positions, and can be detached at any
    /// moment) or tethered (it claims nothing; a detach waits for its next look). See the type's
    /// docs.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::{InlineBuffer, TryConsumeError};
    ///
    /// let buf: InlineBuffer<u32, 2, 2> = InlineBuffer::new();
    /// let mut publisher = buf.publisher().unwrap();
    /// publisher.set_lag_limit(Some(1));
    /// let mut fast = buf.subscriber(0).unwrap();
    /// let mut stalled = buf.subscriber(1).unwrap();
    /// stalled.set_evictable(true); // the lag limit may detach it
    /// for v in 0..4 {
    ///     publisher.try_publish(v).unwrap();
    ///     assert_eq!(fast.try_recv(), Ok(v));
    /// }
    /// assert!(matches!(stalled.try_recv(), Err(TryConsumeError::Detached { .. })));
    /// ```
    pub fn set_evictable(&mut self, evictable: bool) {
        if self.evictable == evictable {
            return;
        }
        // SAFETY: the index was checked when this handle was made.
        let seat = unsafe { self.buffer.buffer().seat_unchecked(self.index) };
        let mut word = seat.peek();
        let membership = loop {
            let membership = word & MEMBERSHIP;
            let new = if evictable {
                // Claims need the position in the seat word.
                let counted = matches!(membership, RUNNING | STOPPING);
                let position =
                    if counted && self.word != UNKNOWN { self.word } else { word & !FLAGS };
                position | (word & FLAGS & !TETHERED)
            } else if matches!(membership, RUNNING | JOINING) {
                // A tethered seat is counted without claims (a joining one once the producer
                // counts it): the producer leaves its stop to it.
                word | TETHERED
            } else {
                // Stopping or detached: what it saw is not its own any more. It reads nothing
                // before it looks at its seat.
                break membership;
            };
            match seat.update(word, new) {
                Ok(()) => break membership,
                Err(now) => word = now,
            }
        };
        self.evictable = evictable;
        if !evictable {
            if matches!(membership, STOPPING | VACANT) {
                if self.word != UNKNOWN {
                    self.told = self.word;
                }
                self.word = UNKNOWN;
                self.seen = UNKNOWN;
            } else if membership == RUNNING {
                // Observers read a tethered seat's position in its progress (a position it never
                // learned is the seat word's).
                seat.advance(if self.word != UNKNOWN { self.word } else { word & !FLAGS });
            }
        }
        if evictable && membership == STOPPING {
            // The producer may apply the stop now.
            self.buffer.buffer().request();
        }
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
        // Read before the atomic accesses: the compiler need not load them again.
        let ring = buffer.ring();
        // SAFETY: the index was checked when this handle was made.
        let seat = unsafe { buffer.seat_unchecked(self.index) };
        let (word, evictable) = (self.word, self.evictable);
        if !ready(&buffer.producer, seat, word, &mut self.seen, evictable) {
            return self.recv_slow();
        }
        #[cfg(multicast_bug = "read-before-claim")]
        // Injected bug: look at the value before claiming the position (the claim has happened
        // here; read the next one too, unclaimed).
        // SAFETY: none: the checkers must find this.
        drop(unsafe { ring.slot(word.wrapping_add(ONE)).get() }.clone());
        // On a panic in `T::clone`: an evictable subscriber gives its claim back (a tethered one
        // claimed nothing: nothing changed).
        let unclaim = Unclaim { ring: &ring, seat, word, armed: evictable };
        // SAFETY: below `seen`, so published; ours (tethered: counted and not read; evictable:
        // claimed).
        let (value, spare) = unsafe { ring.read(word) };
        core::mem::forget(unclaim);
        let next = word.wrapping_add(ONE);
        self.word = next;
        if !evictable {
            seat.advance(next);
        }
        // The original, when we became the last reader after cloning; dropped after the
        // bookkeeping, as a destructor may panic.
        drop(spare);
        Ok(value)
    }

    /// [`try_recv`](Self::try_recv) when nothing was seen, the subscriber is joining, or a claim
    /// was refused (the seat was stopped): a look at the seat and the producer, then the call
    /// once more. Bounded: after a successful look a value is ready, and a claim fails only if
    /// the seat was stopped, which the next look reports. Out of line and called last, so that
    /// the fast path keeps nothing across a call: measured, a call in the middle of the fast
    /// path made one producer and one consumer on two cores five times slower here (its empty
    /// polls got slower than the producer's publishes), at the price of a second copy of the
    /// read in code size.
    #[cold]
    #[inline(never)]
    fn recv_slow(&mut self) -> Result<B::Item, TryConsumeError>
    where
        B::Item: Clone,
    {
        self.look()?;
        self.try_recv()
    }

    /// When everything seen is read: a look at the producer's write position (see the free
    /// function [`refresh`]).
    #[inline(always)]
    fn refresh(&mut self) -> bool {
        let buffer = self.buffer.buffer();
        // SAFETY: the index was checked when this handle was made.
        let seat = unsafe { buffer.seat_unchecked(self.index) };
        refresh(&buffer.producer, seat, self.word, &mut self.seen, self.evictable)
    }

    /// The cold paths' step: looks (see [`look`](Self::look)), then claims `count` positions if
    /// evictable; the first position's word. A claim fails only if the seat changed (it was
    /// stopped), so the second look ends it.
    fn claim_after_looking(&mut self, count: usize) -> Result<usize, TryConsumeError> {
        loop {
            self.look()?;
            let word = self.word;
            let available = self.seen.wrapping_sub(word) / ONE;
            if !self.evictable || self.seat().claim(word | HELD, count.min(available) * ONE) {
                return Ok(word);
            }
        }
    }

    /// The cold path's look: at the seat (learns a position the producer gave it; a stopped seat
    /// is settled and told), then at the producer's write position. `Ok` once a value is ready
    /// at this subscriber's position (`seen` is past it).
    #[cold]
    #[inline(never)]
    fn look(&mut self) -> Result<(), TryConsumeError> {
        let buffer = self.buffer.buffer();
        // SAFETY: the index was checked when this handle was made.
        let seat = unsafe { buffer.seat_unchecked(self.index) };
        let current = seat.look();
        let membership = current & MEMBERSHIP;
        if self.word == UNKNOWN
            && (membership == RUNNING || (membership == STOPPING && self.told == UNKNOWN))
        {
            // Joining, now counted by the producer from the position it wrote into the seat (or,
            // after a rejoin that cancelled a stop, running from its frontier). A stopping seat
            // that told it already stays unknown: it reads nothing more.
            self.word = current & !FLAGS;
            self.seen = self.word;
            if !self.evictable {
                seat.advance(self.word);
            }
        }
        if membership != RUNNING {
            return Err(self.stopped(current));
        }
        let write = buffer.producer.written();
        // The handle's position came from an Acquire look at its seat or from its own reads
        // of published values, so the write word is never behind it (invariant 5): nothing is
        // published from the write word up to the position.
        debug_assert!(
            available(self.word, write) == 0,
            "a write word behind a subscriber's position"
        );
        let ready = available(write, self.word);
        if ready == 0 {
            return Err(if write & CLOSED != 0 {
                TryConsumeError::Closed
            } else {
                TryConsumeError::Empty
            });
        }
        self.seen = self.word.wrapping_add(ready * ONE);
        Ok(())
    }

    /// The error for a seat that is not running (seat word `current`): joining (`Empty`, or
    /// `Closed` if nothing more comes), or detached. A stopping seat is settled first: this
    /// subscriber gives back the values it had not read, on its own thread.
    #[cold]
    fn stopped(&mut self, current: usize) -> TryConsumeError {
        let buffer = self.buffer.buffer();
        if current & MEMBERSHIP == JOINING {
            return if buffer.producer.written() & CLOSED != 0 {
                TryConsumeError::Closed
            } else {
                TryConsumeError::Empty
            };
        }
        // Since its last value (or, if it never learned its position, since it asked to join).
        let from = match (self.word, self.told) {
            (UNKNOWN, UNKNOWN) => current & !FLAGS,
            (UNKNOWN, told) => told,
            (word, _) => word,
        };
        let local = self.word;
        // From here on it reads nothing before it looks at its seat again (a tethered handle's
        // hot path looks only at the producer, and the producer stops counting a settled seat):
        // set before the settle, whose destructors may panic.
        self.word = UNKNOWN;
        self.seen = UNKNOWN;
        self.told = from;
        let write = match current & MEMBERSHIP {
            // A stop installed the operations first.
            STOPPING => buffer.settle_if_installed(self.index, local, Settle::Ack),
            _ => None,
        }
        .unwrap_or_else(|| buffer.observe());
        TryConsumeError::Detached { missed: since(write, from) }
    }

    /// After [`TryConsumeError::Detached`]: asks to be counted again, from the producer's next
    /// value on (a detach the producer has not applied yet is cancelled: then it continues where
    /// it stopped). Returns `false` if this subscriber was not detached or is already rejoining.
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::{InlineBuffer, TryConsumeError};
    ///
    /// let buf: InlineBuffer<u32, 4, 1> = InlineBuffer::new();
    /// let mut subscriber = buf.subscriber(0).unwrap();
    /// subscriber.set_evictable(true); // detached at once, without its cooperation
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
        let seat = unsafe { buffer.seat_unchecked(self.index) };
        let tethered = if self.evictable { 0 } else { TETHERED };
        let mut word = seat.peek();
        loop {
            let new = match word & MEMBERSHIP {
                // Not applied yet: cancel the stop. A tethered seat that was not settled keeps
                // its own position; otherwise the seat's frontier is where it continues.
                STOPPING => (word & !STOP) | tethered,
                VACANT => (buffer.observe() & !FLAGS) | JOINING | HELD | tethered,
                _ => return false,
            };
            buffer.install_ops();
            match seat.update(word, new) {
                Ok(()) => break,
                Err(now) => word = now,
            }
        }
        if word & MEMBERSHIP == VACANT {
            // The producer picks the new position (after a wrap of the position counter it could
            // equal the old one, while the old `seen` would vouch for slots not published at the
            // new one): the next call asks the seat.
            self.word = UNKNOWN;
        } else if word & TETHERED == 0 || self.word == UNKNOWN {
            // An untethered seat's position is the frontier; a handle that was told of a detach
            // has forgotten its own, and the seat's (its last, or the join's) is where it goes on.
            self.word = word & !FLAGS;
            if !self.evictable {
                seat.advance(self.word);
            }
        }
        self.seen = self.word;
        self.told = UNKNOWN;
        self.leaves |= self.vacant;
        buffer.request();
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
        match self.read_now() {
            Some(word) => Ok(ReadGuard { subscriber: self, word }),
            None => self.read_slow(),
        }
    }

    /// [`try_read`](Self::try_read)'s slow path, as [`recv_slow`](Self::recv_slow).
    #[cold]
    #[inline(never)]
    fn read_slow(&mut self) -> Result<ReadGuard<'_, B>, TryConsumeError> {
        loop {
            self.look()?;
            if let Some(word) = self.read_now() {
                return Ok(ReadGuard { subscriber: self, word });
            }
        }
    }

    /// If the value at this subscriber's position is its own to read without a look (published
    /// and, if evictable, claimed): its word, for a guard that reads it in place; advances past
    /// it. A tethered subscriber's progress, which observers read, moves when the guard is
    /// dropped: until then it holds the slot, and `state()` must name it (issue 17, defect 4).
    #[inline(always)]
    fn read_now(&mut self) -> Option<usize> {
        let buffer = self.buffer.buffer();
        // SAFETY: the index was checked when this handle was made.
        let seat = unsafe { buffer.seat_unchecked(self.index) };
        let word = self.word;
        if !ready(&buffer.producer, seat, word, &mut self.seen, self.evictable) {
            return None;
        }
        self.word = word.wrapping_add(ONE);
        Some(word)
    }

    /// Takes the values available now (at most `max`, and at most `capacity`), handing each to
    /// `f`; one look at the producer's position, and for an evictable subscriber one claim, for
    /// the batch; in a buffer with several seats, one read-modify-write per count word (up to 4
    /// values) instead of one per value. Returns how many were taken.
    ///
    /// If `f` (or `T::clone`) panics, the values handed out count as taken; the others stay
    /// unread.
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
        let mut run = self.seen.wrapping_sub(self.word) / ONE;
        if run < max {
            // What the last look saw does not cover `max`: look again (once per batch).
            self.refresh();
            run = self.seen.wrapping_sub(self.word) / ONE;
        }
        let run = run.min(max);
        let word =
            if run != 0 && (!self.evictable || self.seat().claim(self.word | HELD, run * ONE)) {
                self.word
            } else {
                // Nothing seen, joining, or the claim failed (stopped): look at the seat.
                self.claim_after_looking(max)?
            };
        let run = (self.seen.wrapping_sub(word) / ONE).min(max);
        let buffer = self.buffer.buffer();
        let ring = buffer.ring();
        let end = word.wrapping_add(run * ONE);
        // Writes the position back, also after a panic, and gives back what was not read.
        let mut batch = Recv {
            // SAFETY: the index was checked when this handle was made.
            seat: unsafe { buffer.seat_unchecked(self.index) },
            ring: &ring,
            word: &mut self.word,
            seen: &mut self.seen,
            evictable: self.evictable,
            next: word,
            end,
        };
        // SAFETY: below the write position seen, and ours (tethered: counted; evictable:
        // claimed).
        unsafe { ring.read_batch(&mut batch.next, end, &mut f) };
        drop(batch);
        Ok(run)
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

    /// Values published that this subscriber has not read yet: at most the capacity while it is
    /// subscribed. 0 while it is joining and the producer has not counted it yet, and while it
    /// is detached and does not know its position (it was told, or it was detached before its
    /// first call).
    ///
    /// A subscriber that has been detached but not told yet (its next call returns
    /// [`TryConsumeError::Detached`]) counts every value published since its position, which it
    /// will not all receive: its lag grows past the capacity (2,010 on a 256-slot buffer, say),
    /// and is the `missed` that its next call would report. A monitor that does not own the
    /// subscriber reads the lag of every seat, and whether it is detached, from
    /// [`Buffer::seat_state`].
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer_core::{InlineBuffer, TryConsumeError};
    ///
    /// let buf: InlineBuffer<u32, 4, 2> = InlineBuffer::with_seats();
    /// let mut publisher = buf.publisher().unwrap();
    /// let mut fast = buf.subscribe().unwrap();
    /// let mut stalled = buf.subscribe().unwrap();
    /// publisher.publish_iter(0..2);
    /// assert_eq!((fast.try_recv(), fast.try_recv(), stalled.try_recv()), (Ok(0), Ok(1), Ok(0)));
    /// assert_eq!(stalled.lag(), 1);
    /// buf.detach(stalled.index());
    /// for v in 2..9 {
    ///     publisher.try_publish(v).unwrap();
    ///     fast.try_recv().unwrap();
    /// }
    /// assert_eq!(stalled.lag(), 8); // detached, not told yet: above the capacity
    /// assert_eq!(buf.seat_state(stalled.index()).lag, 8); // the same, seen from outside
    /// assert_eq!(stalled.try_recv(), Err(TryConsumeError::Detached { missed: 8 }));
    /// assert_eq!(stalled.lag(), 0); // told
    /// ```
    pub fn lag(&self) -> usize {
        let buffer = self.buffer.buffer();
        let word = if self.word == UNKNOWN {
            // Joining (counted once running) or detached (counted for nothing).
            let seat = self.seat().peek();
            if seat & MEMBERSHIP != RUNNING {
                return 0;
            }
            seat
        } else {
            self.word
        };
        since(buffer.observe(), word) as usize
    }

    /// Whether a value is ready to be read now (or the buffer is closed, or this subscriber
    /// detached: whether a call would return something other than
    /// [`TryConsumeError::Empty`]). For waiting loops and wakers.
    #[inline]
    pub fn is_ready(&mut self) -> bool {
        self.word != self.seen || self.look() != Err(TryConsumeError::Empty)
    }

    /// The buffer this subscriber reads from.
    pub fn buffer(&self) -> &Buffer<B::Item, B::Storage> {
        self.buffer.buffer()
    }
}

/// A subscriber at read word `word` that has read everything it saw (`*seen`) looks at the
/// producer's write position: whether more is published (then `*seen` moves to it). `false` for
/// a joining subscriber too (`UNKNOWN`), whose cold path asks its seat, and for a tethered one
/// whose seat was stopped: a detach takes effect once it has read what it had seen, also while
/// the producer keeps publishing and so keeps it behind. An evictable subscriber learns of a
/// stop from its failed claim.
#[inline(always)]
fn refresh(
    producer: &crate::protocol::Producer,
    seat: &Seat,
    word: usize,
    seen: &mut usize,
    evictable: bool,
) -> bool {
    // Its own line: a hint (the cold path's `look` acquires the stop).
    if !evictable && seat.peek() & MEMBERSHIP != RUNNING {
        return false;
    }
    let write = producer.written() & !FLAGS;
    // A write word behind the position (which the protocol never shows) publishes nothing.
    if word == UNKNOWN || (write.wrapping_sub(word) as isize) <= 0 {
        return false;
    }
    *seen = write;
    true
}

/// Whether the value at `word`, a subscriber's position, is its to read: published (below
/// `*seen`, or below the producer's write position, which then becomes `*seen`) and, if
/// `evictable`, claimed in `seat`.
#[inline(always)]
fn ready(
    producer: &crate::protocol::Producer,
    seat: &Seat,
    word: usize,
    seen: &mut usize,
    evictable: bool,
) -> bool {
    (word != *seen || refresh(producer, seat, word, seen, evictable))
        && (!evictable || seat.claim(word | HELD, ONE))
}

/// On a panic in `T::clone` of a single read: an evictable subscriber's claim of `word` goes
/// back to the seat (the next call reads it again), or, if the seat was stopped meanwhile, its
/// unit is given back.
struct Unclaim<'r, 'a, T> {
    ring: &'r crate::protocol::Ring<'a, T>,
    seat: &'r Seat,
    word: usize,
    armed: bool,
}

impl<T> Drop for Unclaim<'_, '_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        if self.armed {
            self.unwind();
        }
    }
}

impl<T> Unclaim<'_, '_, T> {
    #[cold]
    fn unwind(&self) {
        if !self.seat.unclaim(self.word.wrapping_add(ONE) | HELD, self.word | HELD) {
            // SAFETY: we claimed the position and did not read it; the seat is stopped past it,
            // so nobody else gives it back.
            drop(unsafe { self.ring.release(self.word) });
        }
    }
}

/// A batch being read: `next..end` are not read yet. Writes the position back when dropped;
/// after a panic, an evictable subscriber gives the unread claim back to its seat (or, if the
/// seat was stopped meanwhile, their units).
struct Recv<'r, 'a, T> {
    seat: &'a Seat,
    ring: &'r crate::protocol::Ring<'a, T>,
    word: &'r mut usize,
    seen: &'r mut usize,
    evictable: bool,
    next: usize,
    end: usize,
}

impl<T> Drop for Recv<'_, '_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        *self.word = self.next;
        if !self.evictable {
            self.seat.advance(self.next);
        } else if self.next != self.end {
            self.unwind();
        }
    }
}

impl<T> Recv<'_, '_, T> {
    #[cold]
    fn unwind(&mut self) {
        if !self.seat.unclaim(self.end | HELD, self.next | HELD) {
            // SAFETY: we claimed these positions and did not read them; the seat is stopped past
            // them, so nobody else gives them back.
            unsafe { self.ring.give_back(self.next, self.end) };
            *self.word = self.end;
        }
        *self.seen = *self.word;
    }
}

impl<B: BufferRef> Drop for Subscriber<B> {
    fn drop(&mut self) {
        let buffer = self.buffer.buffer();
        // SAFETY: the index was checked when this handle was made.
        let seat = unsafe { buffer.seat_unchecked(self.index) };
        // Leaving: settle the seat (on this thread). (The operations are installed: it
        // subscribed or rejoined.)
        if self.leaves && buffer.settle_if_installed(self.index, self.word, Settle::Leave).is_some()
        {
            return;
        }
        let mut current = seat.peek();
        loop {
            // A stopped seat is settled too, whenever the stop comes (a stop installed the
            // operations): handed back stopping, the producer would skip a tethered one.
            if current & MEMBERSHIP == STOPPING
                && buffer.settle_if_installed(self.index, self.word, Settle::Leave).is_some()
            {
                return;
            }
            // Otherwise handed back as it is, with this subscriber's position if tethered.
            match seat.hand_back(current, self.word) {
                Ok(()) => return,
                Err(now) => current = now,
            }
        }
    }
}

impl<B: BufferRef> fmt::Debug for Subscriber<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let position = (self.word != UNKNOWN).then_some(self.word / ONE);
        f.debug_struct("Subscriber")
            .field("index", &self.index)
            .field("read_position", &position)
            .field("evictable", &self.evictable)
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
    /// The position read (word).
    word: usize,
}

impl<B: BufferRef> Deref for ReadGuard<'_, B> {
    type Target = B::Item;

    #[inline]
    fn deref(&self) -> &B::Item {
        // SAFETY: `try_read` saw the position published and holds its unit until this guard is
        // dropped.
        unsafe { self.subscriber.buffer.buffer().ring().slot(self.word).get() }
    }
}

impl<B: BufferRef> Drop for ReadGuard<'_, B> {
    fn drop(&mut self) {
        let subscriber = &*self.subscriber;
        if !subscriber.evictable {
            // Observers see a tethered holder past the value once it let go of it (see
            // `read_now`); before the release, whose destructor may panic.
            subscriber.seat().advance(self.word.wrapping_add(ONE));
        }
        // SAFETY: we hold the unit of the slot and give it back once; no reference from `deref`
        // outlives the guard. The last consumer to release the value drops it.
        drop(unsafe { subscriber.buffer.buffer().ring().release(self.word) });
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
