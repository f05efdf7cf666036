//! The per-slot reference-count protocol and the consumer cursor. Everything here is private to
//! the crate; the types are `pub` only because the sealed [`Storage`](crate::Storage) trait
//! names them.

use core::mem::MaybeUninit;
use core::ptr;

use crate::sync::{AtomicUsize, Ordering, UnsafeCell};

/// Write word, bit 0: a call or a `Publisher` holds the producer role.
pub(crate) const LOCKED: usize = 1;
/// Write word, bit 1: the publisher has gone (`Publisher` dropped); nothing more will be
/// published. Consumers drain what is left and then get `Closed`.
pub(crate) const CLOSED: usize = 2;

/// Seat word, bit 0: a `Subscriber` holds this seat (the index API refuses it meanwhile).
pub(crate) const HELD: usize = 1;
/// Seat word, bit 1: this seat may not claim positions: it is vacant, detached, leaving or not
/// yet joined. The position then is the seat's frontier: the first position it never claimed.
pub(crate) const STOP: usize = 2;
/// Seat word, bit 2: the seat asks the producer to count it from the current write position.
pub(crate) const JOIN: usize = 4;
/// Seat word, bit 3: an index-API call (`Buffer::try_consume`) is reading this seat's position;
/// the producer leaves the seat's requests for its next look.
pub(crate) const BUSY: usize = 8;

/// The flag bits of a write or seat word.
pub(crate) const FLAGS: usize = 15;
/// One position in a write or seat word. Positions are stored times sixteen, so they wrap at
/// `2^(usize::BITS - 4)`.
pub(crate) const ONE: usize = 16;

/// The count a slot holds while no value is in it.
const EMPTY: usize = 0;
/// The count a slot holds when only one reader (the caller) still has to read it: that reader
/// may take the value out by move.
const LAST_READER: usize = 2;

/// One slot of the ring: a value and the count of parties that still hold it.
///
/// `count` is `EMPTY` (0) while the slot is free. The producer fills a free slot and sets the
/// count to `readers + 1`: one unit per consumer that has to read the value, plus one unit for
/// whoever takes the value out of the slot. Each consumer gives back its unit once it has read
/// the value; the consumer whose unit brings the count to 1 (`LAST_READER - 1`) is the last
/// reader and owns the value alone: it moves the value out (to return or drop it) and only then
/// stores `EMPTY`, which hands the slot back to the producer. So the producer never writes a slot
/// that someone still reads, and runs no destructor (except, with zero consumers, for the value
/// nobody can read).
pub struct Slot<T> {
    count: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: through `&Slot`, consumers on several threads read the value through `&T` at the same
// time, which needs `T: Sync`, and the last reader moves it out on its own thread, which needs
// `T: Send`. The count is atomic, and the protocol above keeps writes exclusive. (`Send` is
// automatic: `UnsafeCell<MaybeUninit<T>>` is `Send` when `T` is.)
unsafe impl<T: Send + Sync> Sync for Slot<T> {}

impl<T> Slot<T> {
    const_unless_loom! {
        pub(crate) fn new() -> Self {
            Self { count: AtomicUsize::new(EMPTY), value: UnsafeCell::new(MaybeUninit::uninit()) }
        }
    }

    /// Producer side: stores `value` for `readers` consumers, or gives it back if the slot is
    /// still held.
    ///
    /// # Safety
    ///
    /// The caller holds the producer role (no other `try_write` on this slot can run at the same
    /// time), `readers >= 1`, and the slot is not visible to consumers as published until the
    /// caller advances the write cursor with `Release` ordering afterwards.
    #[inline(always)]
    pub(crate) unsafe fn try_write(&self, value: T, readers: usize) -> Result<(), T> {
        // Acquire (in `is_free`): pairs with the Release store of `EMPTY` in `take_last`, so
        // everything the last reader did with the old value happens before we overwrite the slot.
        if !self.is_free() {
            return Err(value);
        }
        // SAFETY: the slot is free (just checked) and the caller's contract is ours.
        unsafe { self.write_free(value, readers) };
        Ok(())
    }

    /// Producer side: stores `value` for `readers` consumers in a slot known to be free.
    ///
    /// # Safety
    ///
    /// As for [`Slot::try_write`], and [`Slot::is_free`] returned `true` since the last write of
    /// this slot (only the producer makes a free slot busy).
    #[inline(always)]
    pub(crate) unsafe fn write_free(&self, value: T, readers: usize) {
        // SAFETY: the count is EMPTY, so no consumer holds the slot (consumers only touch a slot
        // between its publication and their own release), and we are the only producer.
        self.value.with_mut(|p| unsafe { (*p).write(value) });
        // Relaxed: consumers only look at this slot after an Acquire load of the write cursor,
        // whose Release store by the caller comes after this store.
        self.count.store(readers + 1, Ordering::Relaxed);
    }

    /// Producer side: whether the slot is free, with the same ordering as [`Slot::try_write`].
    #[inline(always)]
    pub(crate) fn is_free(&self) -> bool {
        // Acquire: as in `try_write`.
        self.count.load(Ordering::Acquire) == EMPTY
    }

    /// Consumer side: reads the value and gives back this consumer's unit. The last reader gets
    /// the value by move; the others get a clone. If this consumer turned out to be the last only
    /// after cloning, the original comes back as the second element, for the caller to drop after
    /// its bookkeeping (a destructor may panic).
    ///
    /// If `T::clone` panics, nothing has changed: the unit is still held.
    ///
    /// # Safety
    ///
    /// The slot holds a published value and the caller holds one of its units: the caller owns a
    /// consumer index whose read position is this slot's position, and has not released it.
    #[inline(always)]
    pub(crate) unsafe fn read(&self) -> (T, Option<T>)
    where
        T: Clone,
    {
        #[cfg(multicast_bug = "release-before-read")]
        {
            // Injected bug: give back our unit before reading the value.
            // SAFETY: none; this is the bug the checkers must find.
            if let Some(value) = unsafe { self.release_shared() } {
                return (value, None);
            }
            // SAFETY: none; after our release the producer may already be overwriting the slot.
            let copy = self.value.with(|p| unsafe { (*p).assume_init_ref() }.clone());
            return (copy, None);
        }
        // Acquire: pairs with the Release decrements in `release_shared` by the other readers, so
        // their clones happen before we move the value out.
        #[allow(unreachable_code)]
        let count = self.count.load(Ordering::Acquire);
        debug_assert!(count >= LAST_READER, "slot read before it was published (count {count})");
        if count == LAST_READER {
            // SAFETY: the other readers have all given back their units; ours is the last one
            // and nobody else reads or writes the slot until we store EMPTY.
            return (unsafe { self.take_last() }, None);
        }
        // SAFETY: the value is initialised (published, and not taken: the taker needs our unit
        // too). Other readers may clone it at the same time through `&T`, which `T: Sync` (a
        // bound of `Buffer: Sync`) allows.
        let copy = self.value.with(|p| unsafe { (*p).assume_init_ref() }.clone());
        // SAFETY: as above, we still hold our unit.
        (copy, unsafe { self.release_shared() })
    }

    /// Consumer side: the value, in place.
    ///
    /// # Safety
    ///
    /// As for [`Slot::read`], and the caller keeps its unit until the reference is gone.
    #[inline(always)]
    pub(crate) unsafe fn get(&self) -> &T {
        // SAFETY: the value is initialised and stays so while the caller holds its unit (the
        // taker needs every unit); only shared references to it exist meanwhile.
        self.value.with(|p| unsafe { (*p).assume_init_ref() })
    }

    /// Consumer side: gives back this consumer's unit without reading. If it was the last, the
    /// value is moved out and returned for the caller to drop (or hand out).
    ///
    /// # Safety
    ///
    /// As for [`Slot::read`].
    #[inline(always)]
    pub(crate) unsafe fn release(&self) -> Option<T> {
        // Acquire: as in `read`.
        if self.count.load(Ordering::Acquire) == LAST_READER {
            // SAFETY: as in `read`: ours is the last unit.
            return Some(unsafe { self.take_last() });
        }
        // SAFETY: the caller's contract.
        unsafe { self.release_shared() }
    }

    /// Gives back this consumer's unit by a read-modify-write, for when other readers may still
    /// hold theirs; takes the value out if ours turned out to be the last.
    ///
    /// # Safety
    ///
    /// As for [`Slot::read`].
    #[inline(always)]
    unsafe fn release_shared(&self) -> Option<T> {
        // AcqRel. Release: our reads of the value happen before the last reader moves it out.
        // Acquire: if we are the last reader, the other readers' reads happen before ours.
        // Pairs with the same operation by the other consumers (release sequence on `count`).
        if self.count.fetch_sub(1, Ordering::AcqRel) == LAST_READER {
            // SAFETY: our decrement left only the taker's unit, which is ours: every reader has
            // released, and the producer waits for EMPTY.
            Some(unsafe { self.take_last() })
        } else {
            None
        }
    }

    /// Moves the value out and frees the slot.
    ///
    /// # Safety
    ///
    /// The slot holds a value and the caller is its last reader (every other unit is released).
    #[inline(always)]
    unsafe fn take_last(&self) -> T {
        // SAFETY: by the caller's contract the value is initialised and nobody else accesses it.
        let value = self.value.with(|p| unsafe { ptr::read(p).assume_init() });
        // Release: pairs with the Acquire load in `try_write`: our move-out happens before the
        // producer overwrites the slot.
        self.count.store(EMPTY, Ordering::Release);
        value
    }

    /// Drops the value if the slot holds one; used when the whole buffer is dropped.
    ///
    /// # Safety
    ///
    /// Nobody else accesses the slot during or after the call (the caller has `&mut` to the
    /// buffer, so every other access happened before).
    pub(crate) unsafe fn drop_unshared(&self) {
        // Relaxed: the caller's exclusive access orders every other access before this one.
        if self.count.load(Ordering::Relaxed) != EMPTY {
            self.count.store(EMPTY, Ordering::Relaxed);
            // SAFETY: a non-EMPTY count means the slot holds an initialised value that nobody
            // took; we have exclusive access and mark it empty first, so it is dropped once.
            self.value.with_mut(|p| unsafe { (*p).assume_init_drop() });
        }
    }
}

impl<T> core::fmt::Debug for Slot<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Relaxed: observation only.
        f.debug_struct("Slot").field("count", &self.count.load(Ordering::Relaxed)).finish()
    }
}

/// A cursor on a cache line of its own: `crossbeam_utils::CachePadded`, the maintained successor
/// of the `cache-padded` crate. With the `no-cache-padding` feature, for cores without a data
/// cache (Cortex-M0/M3/M4), it is the bare value: padding would only cost RAM there.
#[cfg(not(feature = "no-cache-padding"))]
pub use crossbeam_utils::CachePadded as Padded;

/// A cursor without padding (feature `no-cache-padding`).
#[cfg(feature = "no-cache-padding")]
#[derive(Debug)]
#[repr(transparent)]
pub struct Padded<T>(T);

#[cfg(feature = "no-cache-padding")]
impl<T> Padded<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(value)
    }
}

#[cfg(feature = "no-cache-padding")]
impl<T> core::ops::Deref for Padded<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        &self.0
    }
}

/// One consumer seat, on a cache line of its own (see [`Padded`]).
#[derive(Debug)]
pub struct Cursor {
    /// The seat word: `position * ONE` plus the `HELD`, `STOP` and `JOIN` flags. While `STOP` is
    /// clear, the position is the next one this seat reads, and a consumer claims it (before
    /// reading the slot) by a compare-and-swap that advances it; setting `STOP` ends claiming,
    /// so every position is given back exactly once: by the consumer that claimed it, or by the
    /// producer for the positions at or after the frontier (see `Buffer::apply_requests`).
    pub(crate) read: AtomicUsize,
    /// A write word the producer published (flags clear), at or after this seat's position
    /// while the seat is subscribed and not held by a `Subscriber`, so that an index-API call
    /// reads the producer's cache line only when it has caught up. Accessed with Relaxed by
    /// whoever holds the seat (an index-API call under `BUSY`, a `Subscriber` when it takes or
    /// hands back the seat, the producer when it counts the seat again): the Acquire/Release
    /// operations on the seat word order those accesses.
    pub(crate) cached_write: AtomicUsize,
    /// Whether the producer counts this seat in the values it publishes (1) or not (0). Only
    /// accessed by the holder of the producer role.
    pub(crate) counted: AtomicUsize,
}

/// A subscriber's local word while it does not know its position yet (joining). `BUSY` is never
/// set on a held seat, so `UNKNOWN | HELD` is no seat word: every claim with it fails and asks
/// the seat. (Any other flag could match a real seat word, such as a seat counted at position 0
/// and detached, `STOP | HELD`, and claim a position the producer had given back: Miri found
/// that.) And no published position equals it, so `poll` never says `Empty` for it.
pub(crate) const UNKNOWN: usize = BUSY;

impl Cursor {
    /// Takes this seat for a `Subscriber`: its read word and the last write word it saw, or
    /// `UNKNOWN` for both if the seat was not subscribed and now asks to join; `None` if
    /// something holds it. Out of line and not generic: one copy however many handle types.
    #[inline(never)]
    pub(crate) fn take(&self, producer: &Producer) -> Option<(usize, usize)> {
        // Relaxed: the expected value of the compare-and-swap below.
        let mut seat = self.read.load(Ordering::Relaxed);
        loop {
            if seat & (HELD | BUSY) != 0 {
                return None;
            }
            // A seat that is not subscribed asks to join (unless it already does).
            let join = if seat & (STOP | JOIN) == STOP { JOIN } else { 0 };
            // Acquire: pairs with the Release read-modify-writes that ended the previous
            // holder's use of the seat, so its accesses (and `cached_write`) come before ours.
            // Release: pairs with the Acquire load in `apply_requests`.
            match self.read.compare_exchange(
                seat,
                seat | HELD | join,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => seat = now,
            }
        }
        if seat & STOP != 0 {
            producer.request();
            return Some((UNKNOWN, UNKNOWN));
        }
        // Relaxed: ordered by the Acquire above. A subscribed seat's `cached_write` is at or
        // after its position (see `Cursor`).
        Some((seat & !FLAGS, self.cached_write.load(Ordering::Relaxed)))
    }

    /// Stops this seat (`detach`): later claims fail, and the producer gives back its units from
    /// its frontier on. Whether it was not stopped already; the caller then raises the request
    /// flag.
    pub(crate) fn stop(&self) -> bool {
        // Release: pairs with the Acquire load in `apply_requests`. Relaxed would do for the
        // claim protocol itself: the modification order of the seat word decides.
        self.read.fetch_or(STOP, Ordering::Release) & STOP == 0
    }

    /// A `Subscriber` hands back a seat that was subscribed when it took it: lets go of it and
    /// leaves it subscribed at its position (or stopped, if it was detached meanwhile).
    #[inline(never)]
    pub(crate) fn hand_back(&self) {
        // Relaxed: the expected value of the compare-and-swap below.
        let mut seat = self.read.load(Ordering::Relaxed);
        loop {
            if seat & STOP == 0 {
                // The index API reads `cached_write` as a published write word at or after the
                // position: the position itself is one (it makes the next call look at the
                // producer's word). A stopped seat gets its value from the producer when it is
                // counted again. Relaxed: published by the Release below.
                self.cached_write.store(seat & !FLAGS, Ordering::Relaxed);
            }
            // Release: pairs with the Acquire compare-and-swap of the seat's next holder (an
            // index-API call, or a `Subscriber`), so our accesses come before theirs.
            match self.read.compare_exchange(
                seat,
                seat & !HELD,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(now) => seat = now,
            }
        }
    }

    /// A `Subscriber` leaves this seat: stops it (its frontier is its position) and lets go of
    /// it; the producer gives back its units before its next value.
    #[inline(never)]
    pub(crate) fn leave(&self, producer: &Producer) {
        // Relaxed: the expected value of the compare-and-swap below.
        let mut seat = self.read.load(Ordering::Relaxed);
        loop {
            // Release: pairs with the Acquire load in `apply_requests` and the Acquire
            // compare-and-swap of the seat's next holder, so our slot accesses come before theirs.
            match self.read.compare_exchange(
                seat,
                (seat & !(HELD | JOIN)) | STOP,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => seat = now,
            }
        }
        producer.request();
    }

    const_unless_loom! {
        /// A seat counted from position 0 (`subscribed`) or a vacant one.
        pub(crate) fn new(subscribed: bool) -> Self {
            Self {
                read: AtomicUsize::new(if subscribed { 0 } else { STOP }),
                cached_write: AtomicUsize::new(0),
                counted: AtomicUsize::new(subscribed as usize),
            }
        }
    }
}

/// Control word, top bit: a seat has asked to join or leave (or was detached) since the producer
/// last looked, or no seat is subscribed, or the buffer is closed; the producer takes its cold
/// path before its next value.
pub(crate) const REQUEST: usize = !(usize::MAX >> 1);

/// The producer's cache line: the write word and the control word.
#[derive(Debug)]
pub struct Producer {
    /// `position * ONE`, plus `LOCKED` while the producer role is held and `CLOSED` once the
    /// publisher has gone.
    pub(crate) word: AtomicUsize,
    /// The number of seats the producer counts in each value it publishes (changed only by the
    /// holder of the producer role), plus `REQUEST` (set by any seat, cleared by the producer).
    /// `REQUEST` is also kept set while the count is 0, so that the producer's hot path needs a
    /// single test: one load tells it both that there is nothing to apply and how many read.
    pub(crate) control: AtomicUsize,
}

impl Producer {
    /// Marks a seat's request (it already changed its seat word) for the producer's next look.
    #[inline]
    pub(crate) fn request(&self) {
        // Release: pairs with the Acquire `fetch_and` in `apply_requests`, after the seat word
        // change.
        self.control.fetch_or(REQUEST, Ordering::Release);
    }

    const_unless_loom! {
        pub(crate) fn new(readers: usize) -> Self {
            Self {
                word: AtomicUsize::new(0),
                control: AtomicUsize::new(if readers == 0 { REQUEST } else { readers }),
            }
        }
    }
}

/// Takes the producer role: returns the write word (`LOCKED` clear), or `None` when another
/// call or a `Publisher` holds it at this moment.
///
/// A `fetch_or` that sets `LOCKED`: one `lock bts` on x86. A caller refused because `LOCKED` was
/// already set writes the value that was there, which changes nothing; being a read-modify-write,
/// it also continues the release sequence of the owner's earlier Release store. Under loom the
/// same lock is a compare-and-swap that writes nothing when refused: loom's partial model of the
/// modification order does not capture that the owner's unlock store must come after such a
/// no-op write, and reports a false positive for `fetch_or`. (Miri and ThreadSanitizer check the
/// `fetch_or` form in the misuse tests.)
#[inline(always)]
pub(crate) fn lock(cursor: &AtomicUsize) -> Option<usize> {
    #[cfg(not(multicast_loom))]
    {
        // Acquire: pairs with the Release store that ended the previous holder's turn (either
        // store at the end of `Buffer::try_publish`, `Publisher::drop`), so its accesses to the
        // slots and the producer's line happen before ours.
        if cursor.fetch_or(LOCKED, Ordering::Acquire) & LOCKED != 0 {
            return None;
        }
        // Relaxed: the word is ours now; nobody else changes it until we store it back.
        Some(cursor.load(Ordering::Relaxed) & !LOCKED)
    }
    #[cfg(multicast_loom)]
    {
        // Relaxed: only the expected value for the compare-and-swap, which synchronises.
        let word = cursor.load(Ordering::Relaxed);
        if word & LOCKED != 0 {
            return None;
        }
        // Acquire: as above.
        cursor.compare_exchange(word, word | LOCKED, Ordering::Acquire, Ordering::Relaxed).ok()
    }
}

/// Ends an index-API call's hold on a seat (`BUSY`) when dropped, also on unwind, advancing its
/// position by `advance` (`ONE` once a value was read, 0 otherwise).
pub(crate) struct Unlock<'a> {
    pub(crate) seat: &'a AtomicUsize,
    pub(crate) advance: usize,
}

impl Drop for Unlock<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        // Clears BUSY (which is set) and adds `advance` in one read-modify-write, keeping a STOP
        // that `detach` may have set meanwhile. Release: pairs with the Acquire compare-and-swap
        // in `try_consume` by the next call with this index, and with the Acquire load in
        // `apply_requests`.
        self.seat.fetch_add(self.advance.wrapping_sub(BUSY), Ordering::Release);
    }
}

/// Asks for a stopped seat to be counted again: if its flags are exactly `STOP | expect` (so
/// not joining already, and not in an index-API call), adds `JOIN | add`. Returns whether it
/// did; the caller then raises the requests flag (`Buffer::request`).
pub(crate) fn join(seat: &AtomicUsize, expect: usize, add: usize) -> bool {
    // Relaxed: the expected value of the compare-and-swap below.
    let mut word = seat.load(Ordering::Relaxed);
    loop {
        if word & FLAGS != STOP | expect {
            return false;
        }
        // Acquire: pairs with the Release read-modify-writes of the seat word (a previous
        // holder's `Subscriber::drop`), so its accesses happen before ours. Release: pairs with
        // the Acquire load in `apply_requests`.
        match seat.compare_exchange(word, word | JOIN | add, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(now) => word = now,
        }
    }
}
