//! The protocol, in one place: the words it keeps, their states, and every transition, with the
//! code that makes each one. [`Buffer`] and the handles call these functions and
//! touch no atomic themselves.
//!
//! # Words
//!
//! | word | line | contents | written by |
//! |---|---|---|---|
//! | role | a line of its own | `LOCKED`: the producer role is held | whoever takes and gives back the role |
//! | write word | producer | position × `ONE`, `CLOSED` | the role holder |
//! | control | producer | `REQUEST` (top bit), `CLOSING`, the number of seats *not* counted | requesters set `REQUEST`; the role holder the rest |
//! | prepared | producer | position × `ONE`: lanes from the write position up to here are prepared | the role holder |
//! | ops | producer | the membership operations ([`Ops`]), once anyone changed membership | membership calls |
//! | seat word | seat | position × `ONE`, `HELD`, `TETHERED`, `STOP`, `OUT` | see *Seats* |
//! | progress | seat | position × `ONE` of a tethered holder | that holder |
//! | lane | counts | a slot's count, 0 to 255 | see *Slots* |
//!
//! Every word is zero in a buffer from `new()`: every seat subscribed at position 0, nothing
//! published, nothing prepared, no operations installed. An inline `static` therefore costs no
//! initial image (it goes to `.bss`). Positions wrap at `2^(usize::BITS - 4)`; real distances
//! are at most `capacity`, and `MAX_CAPACITY` is a quarter of the wrap, so the sign of a wrapping
//! difference tells ahead from behind (observers compare unsigned with the capacity).
//!
//! # Slots
//!
//! A slot holds a value and a *lane*: the count of units still out on it. A value published for
//! `N` readers gets `N + 1`: one unit per reader and one for whoever takes the value out. Lanes are
//! two bytes on 64-bit targets and one byte on smaller ones, so `N` is at most 65,534 or 254. A
//! buffer with one seat (*solo*) gives each lane an atomic of its own: its only reader is always
//! the last, and it releases with a plain store. A buffer with several seats (*shared*) packs
//! `LANES` (4) lanes into one count word, so
//! a reader of a run of slots gives back its units for a whole word with one `fetch_sub` (no lane
//! can borrow from the next: each holds the caller's unit), and the producer prepares a whole
//! free word with one plain store.
//!
//! | lane | meaning |
//! |---|---|
//! | 0 | free: no value; the producer may write the slot |
//! | `N + 1` at a position below the write position | published: each of its `N` readers that has not read it holds a unit, plus the taker's unit |
//! | `N + 1` at a position from the write position to `prepared` | prepared (shared mode): counted, not written yet |
//! | 2 (`LAST`) | only the caller's unit and the taker's are left: the caller is the last reader |
//! | 1 | only the taker's unit: a reader that turned out to be the last after cloning holds it |
//!
//! | transition | who | how |
//! |---|---|---|
//! | 0 → 2 | producer, solo | Acquire load sees 0 (pairs with the last reader's Release); writes the value; Relaxed store; the write word's Release store publishes it |
//! | a word's lanes from `j` on, all 0 → `N + 1` | producer, shared | Acquire load sees them 0; a Relaxed plain store when the whole word is 0 (nobody holds a lane of it), else a Relaxed `fetch_add` |
//! | prepared → 0 | producer, shared | Relaxed `fetch_sub`, before the reader count changes and when the buffer is dropped |
//! | `c > 2` → `c - 1` | a reader that cloned the value | AcqRel `fetch_sub` (Release: its clone happens before the move-out; Acquire: if it turned out last) |
//! | 2 → 0 | the last reader, after moving the value out | Release store (solo) or `fetch_sub` (shared); pairs with the producer's Acquire load |
//! | 1 → 0 | a reader that turned out last after cloning, after moving the original out | Release `fetch_sub` |
//!
//! A unit given back without reading (a subscriber leaving, the producer for a detached seat)
//! goes the same way: the last one moves the value out and drops it.
//!
//! # Seats
//!
//! The seat word's membership bits (`STOP`, `OUT`) give four states; the producer counts a seat in
//! the values it publishes exactly in the first two, and only the producer moves a seat between
//! counted and not counted, so the control word's count never needs a shadow per seat.
//!
//! | state | bits | counted | the position is |
//! |---|---|---|---|
//! | running | none | yes | the next position to claim |
//! | stopping | `STOP` | yes, until the producer applies it | the frontier: the first position not claimed |
//! | joining | `OUT` | no | the write position when it asked (for `missed`) |
//! | vacant or detached | `STOP` + `OUT` | no | the frontier it stopped at |
//!
//! `HELD`: a [`Subscriber`](crate::Subscriber) holds the seat (the index API refuses it).
//! `TETHERED` (with `HELD`): the holder claims nothing; its position lives in its handle and in
//! `progress`; the producer leaves a stop of it to the holder, who settles it at its next look.
//!
//! | transition | who | how |
//! |---|---|---|
//! | running `p` → running `p + k` (a claim) | an index-API call (`k = 1`), an evictable holder (a run) | AcqRel compare-and-swap: the seat's modification order decides who gives back each unit; Acquire pairs with a panicking clone's Release unclaim, Release makes the write word the claimer saw visible to whoever later reads the claimed position (a detacher's settle, a new holder) |
//! | running → stopping, joining → vacant | `detach`, anyone | Release `fetch_or(STOP)`, then `REQUEST` |
//! | running, evictable, lagging → stopping | `detach_lagging`, the lag limit | Release compare-and-swap from the word it judged (a seat tethered meanwhile is judged again), then `REQUEST` |
//! | stopping (not tethered) at `f` → vacant | producer | Acquire compare-and-swap; then it gives back `f..write` |
//! | stopping at `f` → stopping at `g` (held or not: `leave`) | the holder settling: ack of a stop, leaving | AcqRel compare-and-swap; then it gives back its own units up to `g`, then `REQUEST` |
//! | joining → running at the write position | producer | Release compare-and-swap (the joiner's Acquire load learns its position) |
//! | vacant → joining | `rejoin`, `subscribe` | AcqRel compare-and-swap, then `REQUEST` |
//! | stopping, not held → running, held | `subscribe`, on a seat given up and not applied yet | AcqRel compare-and-swap (the stop is cancelled: the seat stays counted); then it claims what was published since (a publish racing the leave) and gives it back (`skip_published`) |
//! | stopping → running | `rejoin` before the stop was applied | AcqRel compare-and-swap (the stop is cancelled; nothing was given back past the frontier) |
//! | not held → held | `Subscriber::new`, `subscribe` | AcqRel compare-and-swap |
//! | held → not held | the holder (hand back, leave) | Release compare-and-swap |
//!
//! Invariants (checked with `debug_assert!` where relied on):
//! 1. A unit of position `p` of a counted seat is given back exactly once: by whoever claimed
//!    `p` (a tethered holder has claimed everything up to the write position), and otherwise by
//!    whoever moved the frontier past `p` with a compare-and-swap (the holder settling), or by
//!    the producer from the frontier of a stopping seat.
//! 2. The control word's count equals the number of seats that are joining or vacant.
//! 3. `write <= prepared <= write + LANES` positions, and prepared lanes never cross a count
//!    word.
//! 4. A lane is 0 exactly when its slot holds no value (prepared lanes aside).
//! 5. A thread that reads a seat word with Acquire (or a read-modify-write after it) and then
//!    loads the write word sees a write word at or past the seat's position: every writer of a
//!    position had seen it published (the producer's join, a claim, a settle: each Release, and
//!    a stop continues their release sequence). A Relaxed `peek` has no such guarantee: who
//!    uses one (the index API's consume, observers) treats a write word behind it as nothing
//!    published; a settle clamps to its frontier.
//!
//! # Membership costs nothing until used
//!
//! Joining, leaving, detaching and the producer's application of those requests are reached only
//! through [`Ops`], a table of function pointers that the membership calls (`subscribe`,
//! `detach`, `rejoin`, a lag limit) install. Firmware with fixed consumers never installs it, so
//! the linker drops all of that code.

use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr;

use crate::sync::{AtomicPtr, AtomicUsize, Ordering, UnsafeCell};
use crate::{Buffer, Storage};

/// Role word: a call or a `Publisher` holds the producer role.
pub(crate) const LOCKED: usize = 1;
/// Write word, bit 1: the publisher has gone; nothing more will be published.
pub(crate) const CLOSED: usize = 2;

/// Seat word: a `Subscriber` holds this seat.
pub(crate) const HELD: usize = 1;
/// Seat word, with `HELD`: the holder claims nothing (see the module docs).
pub(crate) const TETHERED: usize = 2;
/// Seat word, membership bit: no claims; the producer is to stop counting it (or has).
pub(crate) const STOP: usize = 4;
/// Seat word, membership bit: not counted by the producer.
pub(crate) const OUT: usize = 8;
/// The membership bits of a seat word.
pub(crate) const MEMBERSHIP: usize = STOP | OUT;
/// Membership: counted, claiming.
pub(crate) const RUNNING: usize = 0;
/// Membership: counted until the producer applies the stop.
pub(crate) const STOPPING: usize = STOP;
/// Membership: asks to be counted.
pub(crate) const JOINING: usize = OUT;
/// Membership: not counted (never subscribed, left, or detached).
pub(crate) const VACANT: usize = STOP | OUT;

/// The flag bits of a write or seat word.
pub(crate) const FLAGS: usize = 15;
/// One position in a write or seat word.
pub(crate) const ONE: usize = 16;

/// Control word, top bit: the producer must look at the seats before its next value (a seat
/// asked for something), or nobody is counted.
pub(crate) const REQUEST: usize = !(usize::MAX >> 1);
/// Control word, next bit: the publisher has gone (set before `CLOSED` is published); from then
/// on, whoever asks for something looks at the seats itself (see `Buffer::request`).
pub(crate) const CLOSING: usize = REQUEST >> 1;
/// The control bits that send the producer to its slow path.
pub(crate) const COLD: usize = REQUEST | CLOSING;

/// A handle's local position while it does not know it (joining): never a clean position, so
/// `seen == word` for it sends every call to the cold path.
pub(crate) const UNKNOWN: usize = FLAGS;

/// Bits per lane: two bytes on 64-bit targets (a value may have up to `MAX_CONSUMERS` = 1024
/// readers there), one byte on smaller ones (up to 254 readers: firmware RAM is scarcer).
#[cfg(target_pointer_width = "64")]
pub(crate) const LANE_BITS: usize = 16;
#[cfg(not(target_pointer_width = "64"))]
pub(crate) const LANE_BITS: usize = 8;
/// One lane as an atomic (solo buffers) and as plain memory (inline storage).
#[cfg(target_pointer_width = "64")]
pub(crate) use crate::sync::AtomicU16 as AtomicLane;
#[cfg(target_pointer_width = "64")]
pub(crate) type Lane = u16;
#[cfg(not(target_pointer_width = "64"))]
pub(crate) use crate::sync::AtomicU8 as AtomicLane;
#[cfg(not(target_pointer_width = "64"))]
pub(crate) type Lane = u8;
/// Lanes per count word (shared mode).
pub(crate) const LANES: usize = usize::BITS as usize / LANE_BITS;
/// The largest count of a lane.
const LANE_MAX: usize = (1 << LANE_BITS) - 1;
/// One unit in every lane of a count word.
const LANE_ONES: usize = usize::MAX / LANE_MAX;
/// Every lane's bits but its top one.
const LANE_LOW: usize = LANE_ONES * (LANE_MAX >> 1);
/// The count of a lane whose only units left are the caller's and the taker's.
const LAST: usize = 2;

/// The most readers a value can have: its count, `readers + 1`, fits a lane.
pub(crate) const MAX_READERS: usize = LANE_MAX - 1;

/// The number of positions from `word` up to write word `write` (flags ignored): how many are
/// published for a consumer there. 0 also for a write word *behind* the position. The index
/// API meets one legitimately: its Relaxed peek may see a position that another thread's claim
/// (two callers of one index) or the producer's join of a rejoined seat wrote, and its Acquire
/// load of the write word may then still return an older write word (nothing orders the two
/// loads across threads); that call reports `Empty`. Elsewhere it would be a bug, and reading
/// nothing there is safer than reading an unpublished slot. (Real distances are at most
/// `MAX_CAPACITY`, a quarter of the positions' wrap, so the sign of the wrapping difference
/// tells ahead from behind.)
#[inline(always)]
pub(crate) fn available(write: usize, word: usize) -> usize {
    let ahead = (write & !FLAGS).wrapping_sub(word & !FLAGS);
    if (ahead as isize) > 0 {
        ahead / ONE
    } else {
        0
    }
}

/// How many positions a counted seat at `seat` is behind write word `write` (flags ignored), at
/// most `capacity`; 0 if it is ahead of a stale `write`. Unsigned, so it is right at
/// `MAX_CAPACITY` too.
#[inline]
pub(crate) fn behind(write: usize, seat: usize, capacity: usize) -> usize {
    let diff = (write & !FLAGS).wrapping_sub(seat & !FLAGS) / ONE;
    if diff <= capacity {
        diff
    } else {
        0
    }
}

/// The positions published since `from` (a difference modulo the positions' wrap, for
/// `Detached { missed }` and `lag`); 0 for a write word up to `MAX_CAPACITY` positions *behind*
/// `from`, which an observation (a Relaxed peek of the seat word, then the write word) may pair.
/// A real count lands there only after three quarters of the wrap (3 * 2^58 values on 64-bit
/// targets, 3 * 2^26 on 32-bit ones), where it is ambiguous anyway.
#[inline]
pub(crate) fn since(write: usize, from: usize) -> u64 {
    let ahead = (write & !FLAGS).wrapping_sub(from & !FLAGS) / ONE;
    let wrap = usize::MAX / ONE + 1;
    if ahead >= wrap - crate::MAX_CAPACITY {
        0
    } else {
        ahead as u64
    }
}

/// A slot's value cell. Who may touch it is decided by its lane (see the module docs).
pub struct Slot<T>(UnsafeCell<MaybeUninit<T>>);

// SAFETY: consumers on several threads read the value through `&T` at the same time (`T: Sync`),
// and the last reader moves it out on its own thread (`T: Send`); the lanes keep writes
// exclusive. (`Send` is automatic.)
unsafe impl<T: Send + Sync> Sync for Slot<T> {}

impl<T> Slot<T> {
    const_unless_loom! {
        pub(crate) fn new() -> Self {
            Self(UnsafeCell::new(MaybeUninit::uninit()))
        }
    }

    /// # Safety
    ///
    /// The slot is free (its lane is 0, or prepared and unpublished) and the caller holds the
    /// producer role.
    #[inline(always)]
    unsafe fn write(&self, value: T) {
        // SAFETY: the caller's contract: nobody else touches a free slot.
        self.0.with_mut(|p| unsafe { (*p).write(value) });
    }

    /// # Safety
    ///
    /// The slot holds a value and the caller is its last holder (every other unit is released).
    #[inline(always)]
    unsafe fn take(&self) -> T {
        // SAFETY: the caller's contract: initialised, and nobody else accesses it.
        self.0.with(|p| unsafe { ptr::read(p).assume_init() })
    }

    /// # Safety
    ///
    /// The slot holds a value and the caller holds one of its units until the reference is gone.
    #[inline(always)]
    pub(crate) unsafe fn get(&self) -> &T {
        // SAFETY: initialised while any unit is out (the taker needs them all); only shared
        // references exist meanwhile.
        self.0.with(|p| unsafe { (*p).assume_init_ref() })
    }
}

impl<T> core::fmt::Debug for Slot<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Slot")
    }
}

/// The lanes of a buffer's slots: a [`Lane`] per slot, word-aligned, covering at least one word.
/// Solo buffers use each lane as an atomic of its own, shared buffers use them as atomic words;
/// a buffer never mixes the two.
#[derive(Clone, Copy)]
pub struct Counts<'a> {
    #[cfg(not(multicast_loom))]
    base: ptr::NonNull<Lane>,
    #[cfg(multicast_loom)]
    lanes: &'a [AtomicLane],
    #[cfg(multicast_loom)]
    words: &'a [AtomicUsize],
    _life: PhantomData<&'a AtomicUsize>,
}

impl core::fmt::Debug for Counts<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Counts")
    }
}

impl<'a> Counts<'a> {
    /// # Safety
    ///
    /// `base` is aligned for `usize`, valid for `'a`, covers `max(capacity, LANES)` lanes that
    /// are only ever accessed atomically (lanes in a solo buffer, words in a shared one).
    #[cfg(not(multicast_loom))]
    pub(crate) unsafe fn new(base: *mut Lane) -> Self {
        debug_assert!(base as usize % core::mem::align_of::<usize>() == 0);
        // SAFETY: the caller's contract: not null.
        Self { base: unsafe { ptr::NonNull::new_unchecked(base) }, _life: PhantomData }
    }

    #[cfg(multicast_loom)]
    pub(crate) fn new(lanes: &'a [AtomicLane], words: &'a [AtomicUsize]) -> Self {
        Self { lanes, words, _life: PhantomData }
    }

    /// Slot `index`'s lane as an atomic of its own (solo buffers).
    ///
    /// # Safety
    ///
    /// `index` is below the capacity.
    #[inline(always)]
    unsafe fn lane(self, index: usize) -> &'a AtomicLane {
        #[cfg(not(multicast_loom))]
        // SAFETY: in bounds by the caller's contract; atomic access only (see `new`).
        unsafe {
            AtomicLane::from_ptr(self.base.as_ptr().add(index))
        }
        #[cfg(multicast_loom)]
        &self.lanes[index]
    }

    /// Count word `index` (shared buffers).
    ///
    /// # Safety
    ///
    /// `index` is below `max(capacity / LANES, 1)`.
    #[inline(always)]
    unsafe fn word(self, index: usize) -> &'a AtomicUsize {
        #[cfg(not(multicast_loom))]
        // SAFETY: in bounds and aligned by the caller's and `new`'s contracts.
        unsafe {
            AtomicUsize::from_ptr(self.base.as_ptr().cast::<usize>().add(index))
        }
        #[cfg(multicast_loom)]
        &self.words[index]
    }
}

/// The lane value `count` in lane `lane` (0 to `LANES - 1`) of a count word.
#[inline(always)]
const fn in_lane(count: usize, lane: usize) -> usize {
    count << (LANE_BITS * lane)
}

/// The count in lane `lane` of count word `word`.
#[inline(always)]
const fn lane_of(word: usize, lane: usize) -> usize {
    (word >> (LANE_BITS * lane)) & LANE_MAX
}

/// One unit in each of the `n` lanes from lane `first` on (`n >= 1`, `first + n <= LANES`).
#[inline(always)]
const fn ones(first: usize, n: usize) -> usize {
    (LANE_ONES >> (LANE_BITS * (LANES - n))) << (LANE_BITS * first)
}

/// 1 in the lowest bit of every lane of `word` whose count is `LAST`, 0 elsewhere (exact: no
/// carry crosses a lane).
#[inline(always)]
const fn last_lanes(word: usize) -> usize {
    let x = word ^ (LAST * LANE_ONES);
    // The top bit of every lane of `x` that is 0.
    let zero = !(((x & LANE_LOW).wrapping_add(LANE_LOW)) | x | LANE_LOW);
    zero >> (LANE_BITS - 1)
}

/// A buffer's slots and their lanes, as the protocol sees them.
pub(crate) struct Ring<'a, T> {
    pub(crate) slots: &'a [Slot<T>],
    pub(crate) counts: Counts<'a>,
    /// One seat: one atomic per lane, released with plain stores.
    pub(crate) solo: bool,
}

impl<'a, T> Ring<'a, T> {
    #[inline(always)]
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The slot index of position word `word`.
    #[inline(always)]
    fn index(&self, word: usize) -> usize {
        (word / ONE) & (self.slots.len() - 1)
    }

    /// The slot of position word `word`.
    #[inline(always)]
    pub(crate) fn slot(&self, word: usize) -> &'a Slot<T> {
        // SAFETY: the length is a non-zero power of two (checked at construction), so the masked
        // index is in bounds. (A checked index would keep a panic path in every call.)
        unsafe { self.slots.get_unchecked(self.index(word)) }
    }

    /// The count word and lane of slot `index` (shared buffers).
    #[inline(always)]
    fn lane(&self, index: usize) -> (&'a AtomicUsize, usize) {
        // SAFETY: `index` is below the capacity, so `index / LANES` is below
        // `max(capacity / LANES, 1)`.
        (unsafe { self.counts.word(index / LANES) }, index % LANES)
    }

    /// The lane of slot `index` (solo buffers).
    #[inline(always)]
    fn solo_lane(&self, index: usize) -> &'a AtomicLane {
        // SAFETY: `index` is below the capacity.
        unsafe { self.counts.lane(index) }
    }

    // ----- producer -----

    /// Producer, solo: whether the slot of write word `word` is free.
    #[inline(always)]
    pub(crate) fn solo_free(&self, word: usize) -> bool {
        debug_assert!(self.solo);
        // Acquire: pairs with the last reader's Release store, so its move-out happens before we
        // overwrite the slot.
        self.solo_lane(self.index(word)).load(Ordering::Acquire) == 0
    }

    /// Producer: makes the slot of write word `word` ready for a value for `readers` readers
    /// (1 to `MAX_READERS`), or says it is still held. Solo: checks its lane. Shared: unless
    /// `*prepared` (the end of the prepared lanes) says it is prepared already, prepares it (see
    /// [`prepare`](Self::prepare)) and moves `*prepared`.
    ///
    /// # Safety
    ///
    /// The caller holds the producer role; `*prepared` is the buffer's prepared end (invariant
    /// 3), and `word` at most that.
    #[inline(always)]
    pub(crate) unsafe fn ready(&self, word: usize, prepared: &mut usize, readers: usize) -> bool {
        if self.solo {
            return self.solo_free(word);
        }
        if *prepared != word {
            return true;
        }
        // The common case, a whole free word from its first lane (in a loop, `lanes` and `full`
        // are computed once).
        let lanes = LANES.min(self.capacity());
        let (count, lane) = self.lane(self.index(word));
        if lane == 0 {
            // Acquire: as in `prepare`.
            if count.load(Ordering::Acquire) == 0 {
                // Relaxed: as in `prepare` (nobody holds a lane of a free word).
                count.store((readers + 1) * ones(0, lanes), Ordering::Relaxed);
                *prepared = word.wrapping_add(lanes * ONE);
                return true;
            }
        }
        // SAFETY: the caller's contract; `word` is the end of the prepared lanes.
        match unsafe { self.prepare(word, readers) } {
            Some(end) => {
                *prepared = end;
                true
            }
            None => false,
        }
    }

    /// Producer, shared: prepares the lanes from write word `word` (the end of the prepared
    /// lanes) for `readers` readers (1 to `MAX_READERS`): with the rest of its count word when
    /// that is free too, else this lane alone; returns the new end of the prepared lanes, or
    /// `None` if the slot is still held. Rare: [`ready`](Self::ready) prepares a whole free word
    /// itself.
    ///
    /// # Safety
    ///
    /// The caller holds the producer role and `word` is the end of the prepared lanes.
    #[inline(never)]
    pub(crate) unsafe fn prepare(&self, word: usize, readers: usize) -> Option<usize> {
        debug_assert!(!self.solo && (1..=MAX_READERS).contains(&readers));
        let (count, lane) = self.lane(self.index(word));
        let lanes = LANES.min(self.capacity());
        // Acquire: pairs with the Release read-modify-writes of the last readers of these lanes,
        // so their move-outs happen before our writes.
        let current = count.load(Ordering::Acquire);
        if current >> (LANE_BITS * lane) == 0 {
            // This lane and every later one of the word are free: prepare them all.
            let n = lanes - lane;
            let add = (readers + 1) * ones(lane, n);
            // Injected bug: a plain store even while other lanes of the word are held.
            if current == 0 || cfg!(multicast_bug = "prepare-over-held") {
                // The whole word is free: nobody holds a lane of it, so nobody else writes it
                // until we publish into it. Relaxed: published by the write word.
                count.store(add, Ordering::Relaxed);
            } else {
                // Readers may be giving back the lanes below. Relaxed: as above.
                count.fetch_add(add, Ordering::Relaxed);
            }
            return Some(word.wrapping_add(n * ONE));
        }
        if lane_of(current, lane) == 0 {
            // Relaxed: as above.
            count.fetch_add(in_lane(readers + 1, lane), Ordering::Relaxed);
            return Some(word.wrapping_add(ONE));
        }
        None
    }

    /// Producer: writes `value` into the slot that [`ready`](Self::ready) (directly, or through
    /// [`Buffer::reserve`]) made ready at `word`. Published by the caller's Release store of the next write word.
    ///
    /// # Safety
    ///
    /// `ready(word, ..)` returned `true` and nothing was written there since.
    #[inline(always)]
    pub(crate) unsafe fn fill(&self, word: usize, value: T) {
        let index = self.index(word);
        // SAFETY: reserved: free, and we hold the producer role; `index` is below the capacity.
        unsafe { self.slots.get_unchecked(index).write(value) };
        if self.solo {
            // Relaxed: published by the write word's Release store.
            self.solo_lane(index).store(LAST as Lane, Ordering::Relaxed);
        }
    }

    /// Producer: takes back the prepared lanes `from..to` (shared buffers, `readers` as when
    /// they were prepared), before the reader count changes or the buffer goes.
    pub(crate) fn unprepare(&self, from: usize, to: usize, readers: usize) {
        let n = to.wrapping_sub(from) / ONE;
        if self.solo || n == 0 {
            return;
        }
        debug_assert!(n <= LANES);
        let (count, lane) = self.lane(self.index(from));
        // Relaxed: these lanes are not published; readers touch only the others.
        count.fetch_sub((readers + 1) * ones(lane, n), Ordering::Relaxed);
    }

    // ----- consumers -----

    /// Consumer: reads the value at `word` and gives back the caller's unit: by move if it is
    /// the last reader, as a clone otherwise. If it turned out to be the last only after cloning,
    /// the original comes back too, for the caller to drop after its bookkeeping (a destructor
    /// may panic). If `T::clone` panics, nothing has changed.
    ///
    /// # Safety
    ///
    /// `word` is published and the caller holds its unit there (and gives it back only here).
    #[inline(always)]
    pub(crate) unsafe fn read(&self, word: usize) -> (T, Option<T>)
    where
        T: Clone,
    {
        #[cfg(multicast_bug = "release-before-read")]
        {
            // Injected bug: give back our unit first, then read.
            // SAFETY: none; the checkers must find this.
            if let Some(value) = unsafe { self.release(word) } {
                return (value, None);
            }
            // SAFETY: none: after the release the producer may be overwriting the slot.
            return (unsafe { self.slot(word).get() }.clone(), None);
        }
        #[allow(unreachable_code)]
        let index = self.index(word);
        let slot = self.slot(word);
        if self.solo {
            debug_assert_eq!(self.solo_lane(index).load(Ordering::Relaxed), LAST as Lane);
            // SAFETY: the only reader is the last one.
            let value = unsafe { slot.take() };
            // Release: pairs with the producer's Acquire load in `reserve`.
            self.solo_lane(index).store(0, Ordering::Release);
            return (value, None);
        }
        let (count, lane) = self.lane(index);
        // Acquire: pairs with the other readers' Release `fetch_sub`s, so their clones happen
        // before we move the value out.
        let now = lane_of(count.load(Ordering::Acquire), lane);
        debug_assert!(now >= LAST, "a slot read before it was published (count {now})");
        if now == LAST {
            // SAFETY: every other reader has given back its unit.
            let value = unsafe { slot.take() };
            // Release: pairs with the producer's Acquire load in `prepare`.
            count.fetch_sub(in_lane(LAST, lane), Ordering::Release);
            return (value, None);
        }
        // SAFETY: we hold a unit: the value stays until we give it back.
        let copy = unsafe { slot.get() }.clone();
        // SAFETY: we hold a unit and give it back once.
        (copy, unsafe { self.give_shared(count, lane, slot) })
    }

    /// Consumer: gives back the caller's unit at `word` without reading; the value if it was
    /// the last unit (for the caller to drop or hand out).
    ///
    /// # Safety
    ///
    /// As for [`read`](Self::read).
    pub(crate) unsafe fn release(&self, word: usize) -> Option<T> {
        let index = self.index(word);
        let slot = self.slot(word);
        if self.solo {
            // SAFETY: the only reader is the last one.
            let value = unsafe { slot.take() };
            // Release: as in `read`.
            self.solo_lane(index).store(0, Ordering::Release);
            return Some(value);
        }
        let (count, lane) = self.lane(index);
        // Acquire: as in `read`.
        if lane_of(count.load(Ordering::Acquire), lane) == LAST {
            // SAFETY: every other reader has given back its unit.
            let value = unsafe { slot.take() };
            // Release: as in `read`.
            count.fetch_sub(in_lane(LAST, lane), Ordering::Release);
            return Some(value);
        }
        // SAFETY: the caller's contract.
        unsafe { self.give_shared(count, lane, slot) }
    }

    /// Gives back one unit of a shared lane whose count was above `LAST` when the caller looked;
    /// if it turned out to be the last reader's, moves the value out and frees the slot.
    ///
    /// # Safety
    ///
    /// The caller holds a unit of `slot`'s lane and gives it back only here.
    #[inline(always)]
    unsafe fn give_shared(&self, count: &AtomicUsize, lane: usize, slot: &Slot<T>) -> Option<T> {
        // AcqRel. Release: our read of the value happens before the last reader's move-out.
        // Acquire: if we turn out last, the other readers' reads happen before our move-out.
        let before = lane_of(count.fetch_sub(in_lane(1, lane), Ordering::AcqRel), lane);
        if before != LAST {
            return None;
        }
        // SAFETY: only the taker's unit is left, and it is ours.
        let value = unsafe { slot.take() };
        // Release: pairs with the producer's Acquire load in `prepare`.
        count.fetch_sub(in_lane(1, lane), Ordering::Release);
        Some(value)
    }

    /// Consumer: reads the positions from `*next` to `end` (at most one lap), handing each value
    /// to `f`; in a shared buffer with one `fetch_sub` per count word. `*next` is advanced past
    /// each value before `f` sees it, so after a panic (in `T::clone` or `f`) it says where the
    /// batch stopped: every unit before it is given back, none from it on.
    ///
    /// # Safety
    ///
    /// The positions are published and the caller holds their units.
    #[inline(always)]
    pub(crate) unsafe fn read_batch(&self, next: &mut usize, end: usize, f: &mut impl FnMut(T))
    where
        T: Clone,
    {
        let mask = self.capacity() - 1;
        if self.solo {
            while *next != end {
                let index = (*next / ONE) & mask;
                // SAFETY: in bounds (masked); the only reader is the last one.
                let value = unsafe { self.slots.get_unchecked(index).take() };
                // Release: as in `read`.
                self.solo_lane(index).store(0, Ordering::Release);
                *next = next.wrapping_add(ONE);
                f(value);
            }
            return;
        }
        // Lanes per count word (fewer in a buffer smaller than a word): a power of two.
        let word_mask = LANES.min(self.capacity()) - 1;
        while *next != end {
            let index = (*next / ONE) & mask;
            let lane = index & word_mask;
            let left = end.wrapping_sub(*next) / ONE;
            if lane == 0 && left >= LANES && word_mask == LANES - 1 {
                // A whole count word: the common case, with constant lanes.
                // SAFETY: the caller's contract; the word's `LANES` slots are contiguous.
                unsafe { self.read_run(index, 0, LANES, next, f) };
            } else {
                let n = (word_mask + 1 - lane).min(left);
                // SAFETY: the caller's contract; `n` stays within one count word.
                unsafe { self.read_run(index, lane, n, next, f) };
            }
        }
    }

    /// [`read_batch`](Self::read_batch) of the `n` positions from `*next`, at slot `index`, lane
    /// `lane` of its count word and on (shared buffers).
    ///
    /// # Safety
    ///
    /// As for `read_batch`; `lane + n <= LANES`.
    #[inline(always)]
    unsafe fn read_run(
        &self,
        index: usize,
        lane: usize,
        n: usize,
        next: &mut usize,
        f: &mut impl FnMut(T),
    ) where
        T: Clone,
    {
        let (count, _) = self.lane(index);
        // Acquire: as in `read`.
        let loaded = count.load(Ordering::Acquire);
        let last = last_lanes(loaded) >> (LANE_BITS * lane);
        // Gives back what was handed out, also on a panic.
        let mut run = Run { ring: self, count, loaded, first: index, lane, last, done: 0 };
        // SAFETY: `index + n` is at most the capacity (a count word's slots are contiguous).
        let slots = unsafe { self.slots.get_unchecked(index..index + n) };
        for (i, slot) in slots.iter().enumerate() {
            let value = if (last >> (LANE_BITS * i)) & 1 != 0 {
                // SAFETY: every other reader has given back its unit; `Run` frees the lane.
                unsafe { slot.take() }
            } else {
                // SAFETY: we hold a unit until `Run` gives it back.
                unsafe { slot.get() }.clone()
            };
            run.done += 1;
            *next = next.wrapping_add(ONE);
            f(value);
        }
    }
}

/// The lanes of a run that [`Ring::read_run`] handed out, given back when dropped.
struct Run<'r, 'a, T> {
    ring: &'r Ring<'a, T>,
    count: &'a AtomicUsize,
    /// The count word as the run loaded it.
    loaded: usize,
    /// The slot index of the run's first position.
    first: usize,
    /// The lane of the run's first position.
    lane: usize,
    /// 1 in the lowest bit of each lane (from the run's first) that was `LAST`: moved out.
    last: usize,
    /// Lanes handed out.
    done: usize,
}

impl<T> Drop for Run<'_, '_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        if self.done == 0 {
            return;
        }
        let ones = if self.done == LANES { LANE_ONES } else { ones(self.lane, self.done) };
        // Moved-out lanes give back two units (ours and the taker's), the others one.
        let moved = (self.last << (LANE_BITS * self.lane)) & ones;
        // AcqRel: as in `give_shared` (the Release also frees the moved-out lanes, pairing with
        // the producer's Acquire load in `prepare`).
        let before = self.count.fetch_sub(ones + moved, Ordering::AcqRel);
        // Lanes we cloned whose count was `LAST` just before: we turned out their last reader.
        // They were above `LAST` when we loaded the word, so only a word that changed meanwhile
        // can have one.
        if before != self.loaded {
            let turned = last_lanes(before) & ones & !moved;
            if turned != 0 {
                self.turned_last(turned);
            }
        }
    }
}

impl<T> Run<'_, '_, T> {
    /// Moves out and drops the originals of the lanes in `turned` (1 in each lane's low bit),
    /// freeing each; if a destructor panics, the rest are still freed (a second panic aborts).
    #[cold]
    fn turned_last(&self, turned: usize) {
        struct Rest<'g, 'r, 'a, T>(&'g Run<'r, 'a, T>, usize);
        impl<T> Drop for Rest<'_, '_, '_, T> {
            fn drop(&mut self) {
                if self.1 != 0 {
                    self.0.turned_last(self.1);
                }
            }
        }
        let lane = turned.trailing_zeros() as usize / LANE_BITS;
        // SAFETY: the lane is one of the run's, so the index is below the capacity.
        let slot = unsafe { self.ring.slots.get_unchecked(self.first + lane - self.lane) };
        // SAFETY: only the taker's unit is left, and it is ours.
        let value = unsafe { slot.take() };
        // Release: pairs with the producer's Acquire load in `prepare`.
        self.count.fetch_sub(in_lane(1, lane), Ordering::Release);
        // Runs only if the destructor below panics.
        let rest = turned & !in_lane(1, lane);
        let guard = Rest(self, rest);
        drop(value);
        core::mem::forget(guard);
        if rest != 0 {
            self.turned_last(rest);
        }
    }
}

impl<T> Ring<'_, T> {
    /// Gives back one seat's units of the positions `from..to`, dropping each value whose last
    /// unit it was; if a destructor panics, the rest are still given back (a second panic
    /// aborts).
    ///
    /// # Safety
    ///
    /// The caller holds one seat's units of those positions (invariant 1) and gives them back
    /// only here.
    pub(crate) unsafe fn give_back(&self, from: usize, to: usize) {
        struct Rest<'g, 'a, T>(&'g Ring<'a, T>, usize, usize);
        impl<T> Drop for Rest<'_, '_, T> {
            fn drop(&mut self) {
                // SAFETY: the contract of the `give_back` call that made this guard.
                unsafe { self.0.give_back(self.1, self.2) };
            }
        }
        let mut word = from;
        while word != to {
            let next = word.wrapping_add(ONE);
            // SAFETY: the caller's contract: we hold this unit and give it back once.
            let last = unsafe { self.release(word) };
            // Runs only if the destructor below panics.
            let rest = Rest(self, next, to);
            drop(last);
            core::mem::forget(rest);
            word = next;
        }
    }

    /// Drops the value of every slot that holds one, when the buffer goes: `write` and
    /// `prepared` are its write and prepared positions, `readers` its reader count. If a
    /// destructor panics, the rest are still dropped (a second panic aborts, as for slices).
    ///
    /// # Safety
    ///
    /// Nobody else accesses the buffer during or after the call.
    pub(crate) unsafe fn drop_values(&self, write: usize, prepared: usize, readers: usize) {
        self.unprepare(write, prepared, readers);
        // SAFETY: the caller's contract.
        unsafe { self.drop_from(0) };
    }

    /// # Safety
    ///
    /// As for [`drop_values`](Self::drop_values), after the prepared lanes were taken back.
    unsafe fn drop_from(&self, start: usize) {
        struct Rest<'g, 'a, T>(&'g Ring<'a, T>, usize);
        impl<T> Drop for Rest<'_, '_, T> {
            fn drop(&mut self) {
                // SAFETY: the contract of the `drop_from` call that made this guard.
                unsafe { self.0.drop_from(self.1) };
            }
        }
        for index in start..self.capacity() {
            // Relaxed: our exclusive access orders every other access before this one.
            let held = if self.solo {
                self.solo_lane(index).load(Ordering::Relaxed) != 0
            } else {
                let (count, lane) = self.lane(index);
                lane_of(count.load(Ordering::Relaxed), lane) != 0
            };
            if held {
                // Runs only if the destructor below panics.
                let rest = Rest(self, index + 1);
                // SAFETY: a lane above 0 (prepared lanes were taken back) means a value nobody
                // took; we have exclusive access, and the buffer is not used again.
                drop(unsafe { self.slots[index].take() });
                core::mem::forget(rest);
            }
        }
    }
}

/// One consumer seat, on a cache line of its own (see [`Padded`]).
#[derive(Debug)]
pub struct Seat {
    /// The seat word: position × `ONE` plus `HELD`, `TETHERED`, `STOP`, `OUT` (see the module
    /// docs). Zero: running at position 0, not held.
    pub(crate) word: AtomicUsize,
    /// A tethered holder's position (× `ONE`), for observers (`read_position`, `state`); only
    /// that holder writes it.
    pub(crate) progress: AtomicUsize,
}

impl Seat {
    const_unless_loom! {
        /// A seat running at position 0, or a vacant one.
        pub(crate) fn new(vacant: bool) -> Self {
            Self {
                word: AtomicUsize::new(if vacant { VACANT } else { 0 }),
                progress: AtomicUsize::new(0),
            }
        }
    }

    /// The seat word, for a look that orders nothing (observers, expected values).
    #[inline(always)]
    pub(crate) fn peek(&self) -> usize {
        // Relaxed: an observation, or the expected value of a compare-and-swap that synchronises.
        self.word.load(Ordering::Relaxed)
    }

    /// The seat word, after whatever changed it last (a holder learning its position or state).
    #[inline(always)]
    pub(crate) fn look(&self) -> usize {
        // Acquire: pairs with the Release compare-and-swaps of the producer (a join) and of
        // whoever settled or stopped the seat.
        self.word.load(Ordering::Acquire)
    }

    /// The position an observer reports for seat word `seat`: a tethered holder's progress, or
    /// the word's own.
    #[inline]
    pub(crate) fn position(&self, seat: usize) -> usize {
        if seat & TETHERED != 0 {
            // Relaxed: an observation.
            self.progress.load(Ordering::Relaxed)
        } else {
            seat & !FLAGS
        }
    }

    /// Claims the positions from seat word `expect` (with its flags: none for an index-API
    /// call, `HELD` for an evictable holder) for `count` words: whether the seat was still
    /// running there.
    #[inline(always)]
    pub(crate) fn claim(&self, expect: usize, count: usize) -> bool {
        // Who gives back each unit is decided by the seat word's modification order alone (a
        // stop is a read-modify-write on it too). Acquire: pairs with the Release `unclaim` of a
        // call whose clone panicked, so its read of the slot happens before our move-out.
        // Release: pairs with the Acquire reads of whoever later reads this word or a
        // read-modify-write after it (a detacher's stop, then its settle's `look`; a `take`),
        // so that our load of the write word, which showed these positions published, happens
        // before theirs: a frontier a claim wrote is never ahead of the write word a later
        // reader of the seat loads (without it, a settle on another thread could give back
        // unpublished positions). Free on x86 (`lock cmpxchg` either way).
        #[cfg(not(multicast_bug = "claim-without-release"))]
        let success = Ordering::AcqRel;
        #[cfg(multicast_bug = "claim-without-release")]
        let success = Ordering::Acquire;
        self.word
            .compare_exchange(expect, expect.wrapping_add(count), success, Ordering::Relaxed)
            .is_ok()
    }

    /// Gives back a claim that was not read (a panic in `T::clone` or in a batch's callback):
    /// moves the seat word from `claimed` back to `back` if nothing changed since. Whether it
    /// did; if not (the seat was stopped, or another caller claimed more), the caller gives back
    /// the units itself.
    #[cold]
    pub(crate) fn unclaim(&self, claimed: usize, back: usize) -> bool {
        // Release: pairs with the Acquire `claim` of the next caller (and the Acquire looks of
        // the producer and of a settler), so our read of the slot (the clone that panicked)
        // happens before whoever then takes the value.
        self.word.compare_exchange(claimed, back, Ordering::Release, Ordering::Relaxed).is_ok()
    }

    /// Stops the seat (`detach`): returns the seat word before. A running seat becomes stopping
    /// (claims fail from now on), a joining one vacant.
    pub(crate) fn stop(&self) -> usize {
        // Release: pairs with the Acquire loads of the producer (`apply_requests`) and the
        // holder (`look`).
        self.word.fetch_or(STOP, Ordering::Release)
    }

    /// Stops the seat if it is running, evictable (not tethered) and more than `max_lag`
    /// positions behind write word `write` (the lag limit, `detach_lagging`): whether it did.
    /// A compare-and-swap from the word it judged, so a seat that a `Subscriber` tethers (or
    /// that reads on) in between is judged again, never stopped on an old look.
    pub(crate) fn stop_lagging(&self, write: usize, capacity: usize, max_lag: usize) -> bool {
        let mut word = self.peek();
        while word & (MEMBERSHIP | TETHERED) == RUNNING && behind(write, word, capacity) > max_lag {
            // Release: as in `stop`. Relaxed on failure: the word is judged again.
            match self.word.compare_exchange(
                word,
                word | STOP,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => word = now,
            }
        }
        false
    }

    /// Changes the seat word from `current` to `new` (a holder taking, settling, handing back or
    /// rejoining); the word now if it changed meanwhile.
    #[inline]
    pub(crate) fn update(&self, current: usize, new: usize) -> Result<(), usize> {
        // AcqRel. Acquire: the previous holder's accesses (and a join's position) happen before
        // ours. Release: pairs with the Acquire loads of the producer and the next holder.
        self.word.compare_exchange(current, new, Ordering::AcqRel, Ordering::Relaxed).map(drop)
    }

    /// Takes the seat for a `Subscriber`: its word before (not held), or `None` if something
    /// holds it. `tethered` marks the holder as claiming nothing. Out of line and not generic:
    /// one copy however many handles a firmware makes.
    #[inline(never)]
    pub(crate) fn take(&self, tethered: bool) -> Option<usize> {
        let mut seat = self.peek();
        loop {
            if seat & HELD != 0 {
                return None;
            }
            // A stopping seat stays the producer's to apply (a tethered one it would skip).
            let tether = tethered && matches!(seat & MEMBERSHIP, RUNNING | JOINING);
            let new = seat | HELD | if tether { TETHERED } else { 0 };
            match self.update(seat, new) {
                Ok(()) => {
                    if tethered {
                        self.advance(seat & !FLAGS);
                    }
                    return Some(seat);
                }
                Err(now) => seat = now,
            }
        }
    }

    /// A holder hands back the seat it found as `word` (a stopping one is settled instead), as
    /// it is, with `local` as its position if it was tethered (then the
    /// seat word's own position is stale); the word now if it changed meanwhile. Out of line and
    /// not generic, as `take`.
    #[inline(never)]
    pub(crate) fn hand_back(&self, word: usize, local: usize) -> Result<(), usize> {
        let own = word & TETHERED != 0 && local != UNKNOWN;
        let position = if own { local } else { word & !FLAGS };
        self.update(word, position | (word & MEMBERSHIP))
    }

    /// A tethered holder's progress, for observers.
    #[inline(always)]
    pub(crate) fn advance(&self, word: usize) {
        // Relaxed: an observation.
        self.progress.store(word, Ordering::Relaxed);
    }
}

/// The producer's cache line.
#[derive(Debug)]
pub struct Producer {
    /// The write word: position × `ONE`, `CLOSED`.
    pub(crate) word: AtomicUsize,
    /// `REQUEST` and the number of seats the producer does not count (invariant 2).
    pub(crate) control: AtomicUsize,
    /// Shared buffers: the end of the prepared lanes (invariant 3). Only the role holder touches
    /// it; the role passes with an Acquire/Release pair on the write word.
    pub(crate) prepared: AtomicUsize,
    /// The membership operations ([`Ops`]) once installed, or null.
    pub(crate) ops: AtomicPtr<()>,
}

impl Producer {
    const_unless_loom! {
        /// With `uncounted` seats not counted (and `REQUEST` set if nobody is counted but seats
        /// exist).
        pub(crate) fn new(uncounted: usize, request: bool) -> Self {
            Self {
                word: AtomicUsize::new(0),
                control: AtomicUsize::new(if request { REQUEST | uncounted } else { uncounted }),
                prepared: AtomicUsize::new(0),
                ops: AtomicPtr::new(ptr::null_mut()),
            }
        }
    }

    /// The producer's look at the control word.
    #[inline(always)]
    pub(crate) fn control(&self) -> usize {
        // Relaxed: only the role holder changes the count, and the role passes with an
        // Acquire/Release pair on the write word; `REQUEST` is a hint here, and
        // `apply_requests` synchronises with the requests it applies.
        self.control.load(Ordering::Relaxed)
    }

    /// The prepared end (role holder only).
    #[inline(always)]
    pub(crate) fn prepared(&self) -> usize {
        // Relaxed: see the field.
        self.prepared.load(Ordering::Relaxed)
    }

    /// Sets the prepared end (role holder only).
    #[inline(always)]
    pub(crate) fn set_prepared(&self, prepared: usize) {
        // Relaxed: see the field.
        self.prepared.store(prepared, Ordering::Relaxed);
    }

    /// Marks a request (the requester changed its seat word first) for the producer's next
    /// look; whether the publisher has gone (`CLOSING`), so that the requester must look itself.
    #[inline]
    pub(crate) fn request(&self) -> bool {
        // Release: pairs with the Acquire `fetch_and` in `apply_requests`, after the requester's
        // change of its seat word. SeqCst: with the SeqCst `fetch_or(CLOSING)` of a closing
        // publisher (one of the two sees the other) and with `release_closed`.
        self.control.fetch_or(REQUEST, Ordering::SeqCst) & CLOSING != 0
    }

    /// Sets `REQUEST` for the role holder's own next look (or for good, on a closed buffer).
    #[inline]
    pub(crate) fn request_flag(&self) {
        // Relaxed: our own flag; ordered before the Release store that gives the role back.
        self.control.fetch_or(REQUEST, Ordering::Relaxed);
    }

    /// Publishes the write word `word` (flags included): the slots below it are visible to
    /// consumers. Pairs with the Acquire loads in the consumers' looks.
    #[inline(always)]
    pub(crate) fn publish(&self, word: usize) {
        // Release: as above.
        self.word.store(word, Ordering::Release);
    }

    /// A consumer's look at the write word.
    #[inline(always)]
    pub(crate) fn written(&self) -> usize {
        // Acquire: pairs with the Release stores of the write word (`publish`), so the slots
        // below it are written before we read them.
        self.word.load(Ordering::Acquire)
    }
}

/// Takes the producer role: sets `LOCKED` in the role word and returns the write word, or
/// `None` when another call or a `Publisher` holds the role at this moment.
///
/// The role word has a cache line of its own: consumers poll the write word's line, and a
/// locked instruction on a line that other cores keep reading is far dearer than one on a line
/// this core owns (the `&self` API's publish takes the role for every value).
///
/// A `fetch_or` that sets `LOCKED`: one `lock bts` on x86. A caller refused because `LOCKED` was
/// already set writes the value that was there, which changes nothing; being a read-modify-write,
/// it also continues the release sequence of the owner's earlier Release store. Under loom the
/// same lock is a compare-and-swap that writes nothing when refused: loom's partial model of the
/// modification order does not capture that the owner's unlock store must come after such a
/// no-op write, and reports a false positive for `fetch_or`. (Miri and ThreadSanitizer check the
/// `fetch_or` form in the misuse tests.)
#[inline(always)]
pub(crate) fn take_role(role: &AtomicUsize, producer: &Producer) -> Option<usize> {
    #[cfg(not(multicast_loom))]
    {
        // Acquire: pairs with the Release store that ended the previous holder's turn
        // (`give_role`), so its accesses to the slots and the producer's line happen before ours.
        if role.fetch_or(LOCKED, Ordering::Acquire) & LOCKED != 0 {
            return None;
        }
    }
    #[cfg(multicast_loom)]
    {
        // Acquire: as above. Relaxed on failure: refused, nothing read.
        if role.compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed).is_err() {
            return None;
        }
    }
    // Relaxed: the role is ours, and the Acquire above ordered the last holder's store of it.
    Some(producer.word.load(Ordering::Relaxed))
}

/// Gives the producer role back (after any store of the write word).
#[inline(always)]
pub(crate) fn give_role(role: &AtomicUsize) {
    // Release: pairs with the Acquire in `take_role` by the next holder.
    role.store(0, Ordering::Release);
}

/// A cache line of its own: `crossbeam_utils::CachePadded`, the maintained successor of the
/// `cache-padded` crate. With the `no-cache-padding` feature, for cores without a data cache, it
/// is the bare value: padding would only cost RAM there.
#[cfg(not(feature = "no-cache-padding"))]
pub use crossbeam_utils::CachePadded as Padded;

/// A value without padding (feature `no-cache-padding`).
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

/// Who settles a seat (see [`Buffer::settle`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Settle {
    /// An index-API call that finds its seat stopping: only a seat nobody holds.
    Index,
    /// The holder, told of its detach: keeps holding the seat.
    Ack,
    /// The holder, leaving: lets go of the seat.
    Leave,
}

/// The membership operations: reached only through the pointer in [`Producer::ops`], which the
/// membership calls install ([`Buffer::install_ops`]), so that firmware with fixed consumers
/// links none of them. The buffer is passed as a type-erased pointer (the table is `'static`
/// whatever the payload); only the buffer's own typed code installs it and calls it.
pub(crate) struct Ops {
    /// Producer: applies the seats' requests before it publishes at write word `word`.
    apply: unsafe fn(*const (), usize),
    /// A holder settles its seat (see [`Buffer::settle`]).
    settle: unsafe fn(*const (), usize, usize, Settle) -> usize,
}

impl<T, S: Storage<T>> Buffer<T, S> {
    const OPS: Ops = Ops { apply: Self::apply_erased, settle: Self::settle_erased };

    /// Installs the membership operations; every membership call does this before it changes a
    /// seat (so the producer finds them when it sees the request).
    #[inline]
    pub(crate) fn install_ops(&self) {
        let ops: &'static Ops = &Self::OPS;
        // Release: pairs with the Acquire load in `ops`.
        self.producer.ops.store(ops as *const Ops as *mut (), Ordering::Release);
    }

    /// The membership operations, if anyone installed them.
    #[inline]
    fn ops(&self) -> Option<&'static Ops> {
        // Acquire: pairs with the Release store in `install_ops`.
        let ops = self.producer.ops.load(Ordering::Acquire);
        // SAFETY: only `install_ops` stores a non-null pointer, to `OPS` of this buffer's type.
        (!ops.is_null()).then(|| unsafe { &*(ops as *const Ops) })
    }

    /// Applies the seats' requests (see [`apply_requests`](Self::apply_requests)), if anyone
    /// installed the membership operations; nothing to do otherwise.
    ///
    /// # Safety
    ///
    /// As for `apply_requests`.
    #[inline]
    pub(crate) unsafe fn apply_if_installed(&self, word: usize) {
        if let Some(ops) = self.ops() {
            // SAFETY: the table belongs to this buffer's type; the caller's contract.
            unsafe { (ops.apply)(self as *const Self as *const (), word) };
        }
    }

    /// Settles seat `index` (see [`settle`](Self::settle)) if the membership operations are
    /// installed (they are whenever a seat is stopping or was subscribed); returns the write
    /// position it settled at, or `None` if they are not.
    #[inline]
    pub(crate) fn settle_if_installed(
        &self,
        index: usize,
        local: usize,
        how: Settle,
    ) -> Option<usize> {
        // The caller saw the seat stopping, perhaps with a Relaxed load (or a failed
        // compare-and-swap): this Acquire look reads the stop or a later read-modify-write of the
        // seat word, so it pairs with the stop's Release and the `install_ops` before the stop
        // happens before the `ops` load below.
        let _ = self.storage.seats()[index].look();
        let ops = self.ops()?;
        // SAFETY: the table belongs to this buffer's type.
        Some(unsafe { (ops.settle)(self as *const Self as *const (), index, local, how) })
    }

    /// Asks the producer to look at the seats (after a change of one, with the membership
    /// operations installed). Once the publisher has gone there is no producer to look: the
    /// caller takes the free producer role and applies the requests itself (or, if someone holds
    /// the role, leaves them to it: see `hand_over_closed`).
    pub(crate) fn request(&self) {
        if self.producer.request() {
            self.apply_closed();
        }
    }

    /// [`request`](Self::request) once the publisher has gone.
    #[cold]
    #[inline(never)]
    fn apply_closed(&self) {
        // SeqCst: see `hand_over_closed`. (Also Acquire: pairs with the Release that gave the role
        // back, so the last holder's accesses happen before ours.)
        if self.role.fetch_or(LOCKED, Ordering::SeqCst) & LOCKED != 0 {
            return;
        }
        // Relaxed: ordered by the role's Acquire above.
        let word = self.producer.word.load(Ordering::Relaxed);
        self.apply_and_release_closed(word);
    }

    /// Applies the requests with the role held, then gives the role back (see
    /// `release_closed`), also if a destructor panics; again while requests made meanwhile are
    /// left to us (a loop, not a recursion: requesters that keep coming cannot grow the stack).
    fn apply_and_release_closed(&self, word: usize) {
        /// Gives the role back if a destructor panics.
        struct Release<'a, T, S: Storage<T>>(&'a Buffer<T, S>, usize);
        impl<T, S: Storage<T>> Drop for Release<'_, T, S> {
            fn drop(&mut self) {
                self.0.release_closed(self.1);
            }
        }
        loop {
            let release = Release(self, word);
            // The flag first (Acquire: pairs with the Release `fetch_or` of a requester, which
            // installed the operations before it, so `apply_if_installed` finds them). Without
            // them the flag can only be the one raised because nobody is counted, which means
            // nothing once closed (`apply_requests` does not raise it again then), so the look
            // at the flag below ends; and firmware with fixed consumers links no
            // `apply_requests`.
            self.producer.control.fetch_and(!REQUEST, Ordering::Acquire);
            // SAFETY: we hold the producer role and `word` is the write word.
            unsafe { self.apply_if_installed(word & !FLAGS) };
            core::mem::forget(release);
            if !self.hand_over_closed() {
                return;
            }
        }
    }

    /// Gives the producer role back once the publisher has gone (or is going), and applies what
    /// was left to us meanwhile (see [`hand_over_closed`](Self::hand_over_closed)).
    pub(crate) fn release_closed(&self, word: usize) {
        if self.hand_over_closed() {
            self.apply_and_release_closed(word);
        }
    }

    /// Gives the producer role back once the publisher has gone; whether we hold it again to
    /// apply a request that was left to us. A request made while we held the role found it
    /// taken and was left to us. Our look at the control word is a read-modify-write, so it and
    /// the requester's `fetch_or(REQUEST)` are ordered on that word: if the requester's comes
    /// first, our look sees the request (we take the role again and apply); if ours comes
    /// first, the requester's reads from ours (AcqRel), so our `swap` of the role happens before
    /// its `fetch_or` on the role, which finds the role free (it applies itself). (This needs
    /// no SeqCst order across the two words, so loom checks it.)
    fn hand_over_closed(&self) -> bool {
        // Release: pairs with the next holder's Acquire, and, through the AcqRel look below,
        // with the requester's take of the role.
        self.role.swap(0, Ordering::SeqCst);
        // AcqRel read-modify-write (`| 0` changes nothing): see above.
        if self.producer.control.fetch_or(0, Ordering::SeqCst) & REQUEST == 0 {
            return false;
        }
        // SeqCst: as in `apply_closed`.
        self.role.fetch_or(LOCKED, Ordering::SeqCst) & LOCKED == 0
    }

    /// # Safety
    ///
    /// `buffer` points to a live `Buffer<T, S>`; as for `apply_requests`.
    unsafe fn apply_erased(buffer: *const (), word: usize) {
        // SAFETY: the caller's contract.
        unsafe { (*(buffer as *const Self)).apply_requests(word) }
    }

    /// # Safety
    ///
    /// `buffer` points to a live `Buffer<T, S>`; as for `settle`.
    unsafe fn settle_erased(buffer: *const (), index: usize, local: usize, how: Settle) -> usize {
        // SAFETY: the caller's contract.
        unsafe { (*(buffer as *const Self)).settle(index, local, how) }
    }

    /// The producer's look at the seats' requests: a stopping seat (not tethered) is no longer
    /// counted and the producer gives back its units from its frontier to `word` (dropping a
    /// value if that was its last unit); a joining seat is counted from `word` on. Prepared lanes
    /// are taken back first (they count the readers of before). Bounded: one pass over the
    /// seats, at most `capacity` units each; a seat that changed under the producer's feet is
    /// left for its next look.
    ///
    /// # Safety
    ///
    /// The caller holds the producer role and `word` is the current write word (flags clear).
    unsafe fn apply_requests(&self, word: usize) {
        /// Raises the request flag again if a destructor panics, so that the seats not looked at
        /// yet are looked at next time.
        struct Again<'a>(&'a Producer);
        impl Drop for Again<'_> {
            fn drop(&mut self) {
                self.0.request_flag();
            }
        }
        let producer = &self.producer;
        // Acquire: pairs with the Release `fetch_or` in `request`, which comes after the
        // requester's change of its seat word: we see that change below. (Our own changes of the
        // count below are read-modify-writes, so a request made meanwhile stays set.)
        let control = producer.control.fetch_and(!REQUEST, Ordering::Acquire);
        let uncounted = control & !COLD;
        let seats = self.storage.seats();
        let ring = self.ring();
        ring.unprepare(word, producer.prepared(), seats.len() - uncounted);
        producer.set_prepared(word);
        let again = Again(producer);
        let mut deferred = false;
        for seat in seats {
            let current = seat.look();
            match current & MEMBERSHIP {
                STOPPING if current & (HELD | TETHERED) != HELD | TETHERED => {
                    // Acquire: as in `look`.
                    if seat
                        .word
                        .compare_exchange(
                            current,
                            current | OUT,
                            Ordering::Acquire,
                            Ordering::Relaxed,
                        )
                        .is_err()
                    {
                        deferred = true;
                        continue;
                    }
                    // Relaxed: the count is the role holder's (see `Producer::control`).
                    producer.control.fetch_add(1, Ordering::Relaxed);
                    // SAFETY: the seat was stopping, so nobody claims at or after its frontier;
                    // it was counted in every value from there to `word`, and the
                    // compare-and-swap made those units ours (invariant 1).
                    unsafe { ring.give_back(current & !FLAGS, word) };
                }
                JOINING => {
                    if current & TETHERED != 0 {
                        // Observers read a tethered seat's position there; its holder writes it
                        // only once it learns the position from the compare-and-swap below.
                        seat.advance(word);
                    }
                    let counted = word | (current & (HELD | TETHERED));
                    // Release: pairs with the joiner's Acquire `look`, which learns `word`.
                    if seat
                        .word
                        .compare_exchange(current, counted, Ordering::Release, Ordering::Relaxed)
                        .is_err()
                    {
                        deferred = true;
                        continue;
                    }
                    // Relaxed: as above.
                    producer.control.fetch_sub(1, Ordering::Relaxed);
                }
                _ => {}
            }
        }
        core::mem::forget(again);
        // With a seat left for later, or none counted, the next publish comes here again (none
        // counted does not matter once closed: the closed path comes here while anything is
        // asked).
        let nobody = producer.control() & !COLD == seats.len() && control & CLOSING == 0;
        if deferred || nobody {
            producer.request_flag();
        }
    }

    /// A new evictable holder of seat `index`, which it took running at `from` by cancelling a
    /// stop nobody applied (`Subscriber::subscribe` on a seat its last holder gave up), claims
    /// the positions published since and gives back their units, which the holder that left
    /// never read: it starts at the producer's next value, as a joiner does. Returns its
    /// position: the write position, or `from` if the seat was stopped again meanwhile (its
    /// next call is told). A destructor run here may panic; the caller's handle lets go then.
    pub(crate) fn skip_published(&self, index: usize, from: usize) -> usize {
        let seat = self.seat(index);
        // Acquire: as in `Producer::written`: we may drop values published up to here. At or
        // after `from`, which the caller's compare-and-swap read (invariant 5).
        let write = self.producer.written() & !FLAGS;
        if available(write, from) == 0 || !seat.claim(from | HELD, write.wrapping_sub(from)) {
            return from;
        }
        // SAFETY: the claim moved the seat from `from` to `write` while it was counted: those
        // units are ours (invariant 1), and nobody read them for this seat.
        unsafe { self.ring().give_back(from, write) };
        write
    }

    /// The holder of seat `index` (whose own position is `local`; for an index-API seat, which
    /// nobody holds, the caller that finds it stopping) settles it: if it is counted, moves its
    /// frontier to the write position and gives back its units up to there (on its own thread:
    /// the producer gives back, and may drop, only what is published meanwhile), then asks the
    /// producer to stop counting it. With `leave` it also lets go of the seat: a counted seat is
    /// left stopping, a joining one vacant. Returns the write position it settled at.
    fn settle(&self, index: usize, local: usize, how: Settle) -> usize {
        let seat = self.seat(index);
        let ring = self.ring();
        let leave = how == Settle::Leave;
        // A holder passes its position (`UNKNOWN` if it never learned it); an index-API caller,
        // which holds nothing, passes `UNKNOWN` too and settles only a seat nobody holds.
        let mut current = seat.look();
        let (from, hold, mut write) = loop {
            // Loaded after the seat word (Acquire), so it is at or after any frontier in it (a
            // frontier only moves to published positions). Acquire: as in
            // `Producer::written`: we may drop values published up to here.
            let write = self.producer.written() & !FLAGS;
            // A leave settles a running seat too; an ack only a stopping one (the producer may
            // have applied the stop meanwhile, a rejoin cancelled it, or, for an index seat, a
            // holder took it: nothing to settle).
            let counted = match current & MEMBERSHIP {
                STOPPING => how != Settle::Index || current & HELD == 0,
                RUNNING => leave,
                _ => false,
            };
            // Kept by an ack; not by a leave.
            let hold = if leave { 0 } else { current & HELD };
            // A tethered holder's frontier is its own position (once it knows it); otherwise
            // the seat word's.
            let from =
                if current & TETHERED != 0 && local != UNKNOWN { local } else { current & !FLAGS };
            // A frontier ahead of the write word (published positions past it: invariant 5
            // rules that out). Defence in depth: such a settle settles at the frontier and
            // gives nothing back, rather than give back positions that are not published, or
            // that the frontier's claimer read.
            let stale = counted && available(from, write) > 0;
            debug_assert!(!stale, "settling from a frontier ahead of the write position");
            let write = if stale { from } else { write };
            let new = if counted {
                write | STOPPING | hold
            } else if leave {
                (current & !(HELD | TETHERED)) | STOP
            } else {
                return write;
            };
            match seat.update(current, new) {
                Ok(()) if counted => break (from, hold, write),
                Ok(()) => return write,
                Err(_) => current = seat.look(),
            }
        };
        debug_assert!(from & FLAGS == 0, "settling from a position with flags: {from:#x}");
        // Asked before the destructors below run, so that a panicking one cannot leave the seat
        // counted for good. The producer gives back only from the new frontier on.
        // Once closed the ask applies the requests on this thread, which may run destructors:
        // our units are given back also if one of those panics.
        struct Ours<'g, 'a, T>(&'g Ring<'a, T>, usize, usize);
        impl<T> Drop for Ours<'_, '_, T> {
            fn drop(&mut self) {
                // SAFETY: the compare-and-swap moved the frontier from `from` to `write` while
                // the seat was counted: those units are ours (invariant 1).
                unsafe { self.0.give_back(self.1, self.2) };
            }
        }
        let ours = Ours(&ring, from, write);
        self.request();
        drop(ours);
        // What was published meanwhile, while the producer still counts the seat, is ours too
        // (once: the producer's look may be racing with us; it takes the rest).
        let now = self.producer.written() & !FLAGS;
        if available(now, write) > 0
            && seat.update(write | STOPPING | hold, now | STOPPING | hold).is_ok()
        {
            // SAFETY: as above, from `write` to `now`.
            unsafe { ring.give_back(write, now) };
            write = now;
        }
        write
    }
}
