//! Where a buffer keeps its slots, their counts and its seats: inline in the buffer (for
//! `static`s in firmware without an allocator) or on the heap (behind the `alloc` feature). The
//! protocol in [`Buffer`](crate::Buffer) is written once, generic over this sealed trait.

#[cfg(not(multicast_loom))]
use crate::protocol::Lane;
use crate::protocol::{Counts, Padded, Seat, Slot};

mod sealed {
    pub trait Sealed {}
}

/// Storage for a [`Buffer`](crate::Buffer): its slots, their counts (a lane each) and one seat
/// per consumer.
///
/// Sealed: implemented by [`Inline`] and, with the `alloc` feature, `Heap`.
pub trait Storage<T>: sealed::Sealed {
    #[doc(hidden)]
    fn slots(&self) -> &[Slot<T>];
    #[doc(hidden)]
    fn counts(&self) -> Counts<'_>;
    #[doc(hidden)]
    fn seats(&self) -> &[Padded<Seat>];
}

/// The counts of `CAP` slots, inline: a lane each, aligned for `usize` and padded so that the
/// last word of a shared buffer is whole even when `CAP` is below the lanes of a word.
#[cfg(not(multicast_loom))]
#[repr(C)]
struct CountBytes<const CAP: usize> {
    _align: [usize; 0],
    lanes: [Lane; CAP],
    tail: [Lane; crate::protocol::LANES - 1],
}

/// [`CountBytes`] behind an `UnsafeCell`: the protocol accesses them only atomically, through
/// `from_ptr` of a lane's atomic (one seat) or of `AtomicUsize` (several), never both.
#[cfg(not(multicast_loom))]
struct InlineCounts<const CAP: usize>(core::cell::UnsafeCell<CountBytes<CAP>>);

// SAFETY: every access after construction is atomic (see `Counts`).
#[cfg(not(multicast_loom))]
unsafe impl<const CAP: usize> Sync for InlineCounts<CAP> {}

/// Slots, counts and seats stored inline: `CAP` slots, `N` consumers, no allocation.
///
/// Used through [`InlineBuffer`](crate::InlineBuffer), whose `const fn new` can initialise a
/// `static`. A buffer from `new()` is all zeros, so such a `static` costs no flash for an initial
/// image (it goes to `.bss`).
#[cfg(not(multicast_loom))]
pub struct Inline<T, const CAP: usize, const N: usize> {
    slots: [Slot<T>; CAP],
    counts: InlineCounts<CAP>,
    seats: [Padded<Seat>; N],
}

#[cfg(not(multicast_loom))]
impl<T, const CAP: usize, const N: usize> Inline<T, CAP, N> {
    /// Every seat running from position 0, or every seat vacant.
    pub(crate) const fn new(vacant: bool) -> Self {
        Self {
            slots: [const { Slot::new() }; CAP],
            counts: InlineCounts(core::cell::UnsafeCell::new(CountBytes {
                _align: [],
                lanes: [0; CAP],
                tail: [0; crate::protocol::LANES - 1],
            })),
            seats: if vacant {
                [const { Padded::new(Seat::new(true)) }; N]
            } else {
                [const { Padded::new(Seat::new(false)) }; N]
            },
        }
    }
}

#[cfg(not(multicast_loom))]
impl<T, const CAP: usize, const N: usize> core::fmt::Debug for Inline<T, CAP, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Inline").field("capacity", &CAP).field("consumers", &N).finish()
    }
}

#[cfg(not(multicast_loom))]
impl<T, const CAP: usize, const N: usize> sealed::Sealed for Inline<T, CAP, N> {}

#[cfg(not(multicast_loom))]
impl<T, const CAP: usize, const N: usize> Storage<T> for Inline<T, CAP, N> {
    #[inline(always)]
    fn slots(&self) -> &[Slot<T>] {
        &self.slots
    }

    #[inline(always)]
    fn counts(&self) -> Counts<'_> {
        // SAFETY: `CountBytes` is aligned for `usize`, lives as long as `self`, and covers at
        // least `max(CAP, LANES)` initialised lanes (the tail makes up a word when `CAP` is
        // smaller), which only the protocol accesses, atomically.
        unsafe { Counts::new(self.counts.0.get().cast::<Lane>()) }
    }

    #[inline(always)]
    fn seats(&self) -> &[Padded<Seat>] {
        &self.seats
    }
}

/// Slots, counts and seats on the heap, allocated once by
/// [`HeapBuffer::new`](crate::HeapBuffer::new) and never again.
#[cfg(feature = "alloc")]
pub struct Heap<T> {
    slots: alloc::boxed::Box<[Slot<T>]>,
    /// `max(capacity / LANES, 1)` words: the counts' lanes.
    #[cfg(not(multicast_loom))]
    counts: alloc::boxed::Box<[crate::sync::AtomicUsize]>,
    /// Under loom, whose atomics are not plain memory: lanes for a solo buffer, words for a
    /// shared one (only one of them is used).
    #[cfg(multicast_loom)]
    counts: (
        alloc::boxed::Box<[crate::protocol::AtomicLane]>,
        alloc::boxed::Box<[crate::sync::AtomicUsize]>,
    ),
    seats: alloc::boxed::Box<[Padded<Seat>]>,
}

#[cfg(feature = "alloc")]
impl<T> Heap<T> {
    /// The storage of `capacity` slots and `consumers` seats, or `None` if the allocator
    /// refuses (nothing stays allocated then).
    pub(crate) fn try_new(capacity: usize, consumers: usize, vacant: bool) -> Option<Self> {
        use crate::sync::AtomicUsize;
        let words = (capacity / crate::protocol::LANES).max(1);
        Some(Self {
            slots: try_boxed(capacity, |_| Slot::new())?,
            #[cfg(not(multicast_loom))]
            counts: try_boxed(words, |_| AtomicUsize::new(0))?,
            #[cfg(multicast_loom)]
            counts: (
                try_boxed(capacity, |_| crate::protocol::AtomicLane::new(0))?,
                try_boxed(words, |_| AtomicUsize::new(0))?,
            ),
            seats: try_boxed(consumers, |_| Padded::new(Seat::new(vacant)))?,
        })
    }
}

/// A boxed slice of `len` items made by `item`, or `None` if the allocator refuses (or the size
/// overflows `isize`): a refusal is an error to return, not an abort.
#[cfg(feature = "alloc")]
fn try_boxed<X>(len: usize, item: impl FnMut(usize) -> X) -> Option<alloc::boxed::Box<[X]>> {
    let mut items = alloc::vec::Vec::new();
    items.try_reserve_exact(len).ok()?;
    items.extend((0..len).map(item));
    Some(items.into_boxed_slice())
}

#[cfg(feature = "alloc")]
impl<T> core::fmt::Debug for Heap<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Heap")
            .field("capacity", &self.slots.len())
            .field("consumers", &self.seats.len())
            .finish()
    }
}

#[cfg(feature = "alloc")]
impl<T> sealed::Sealed for Heap<T> {}

#[cfg(feature = "alloc")]
impl<T> Storage<T> for Heap<T> {
    #[inline(always)]
    fn slots(&self) -> &[Slot<T>] {
        &self.slots
    }

    #[inline(always)]
    fn counts(&self) -> Counts<'_> {
        #[cfg(not(multicast_loom))]
        // SAFETY: words are aligned for `usize`, live as long as `self`, and cover
        // `max(capacity, LANES)` lanes, which only the protocol accesses, atomically; a pointer
        // from a shared reference may write them, as atomics are interior-mutable.
        unsafe {
            Counts::new(self.counts.as_ptr().cast_mut().cast::<Lane>())
        }
        #[cfg(multicast_loom)]
        Counts::new(&self.counts.0, &self.counts.1)
    }

    #[inline(always)]
    fn seats(&self) -> &[Padded<Seat>] {
        &self.seats
    }
}
