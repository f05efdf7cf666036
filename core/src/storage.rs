//! Where a buffer keeps its slots and consumer cursors: inline in the buffer (for `static`s in
//! firmware without an allocator) or on the heap (behind the `alloc` feature). The protocol in
//! [`Buffer`](crate::Buffer) is written once, generic over this sealed trait.

use crate::raw::Padded;

use crate::raw::{Cursor, Slot};

mod sealed {
    pub trait Sealed {}
}

/// Storage for a [`Buffer`](crate::Buffer): its slots and one cursor per consumer.
///
/// Sealed: implemented by [`Inline`] and, with the `alloc` feature, [`Heap`].
pub trait Storage<T>: sealed::Sealed {
    #[doc(hidden)]
    fn slots(&self) -> &[Slot<T>];
    #[doc(hidden)]
    fn cursors(&self) -> &[Padded<Cursor>];
}

/// Slots and cursors stored inline: `CAP` slots, `N` consumers, no allocation.
///
/// Used through [`InlineBuffer`](crate::InlineBuffer), whose `const fn new` can initialise a
/// `static`.
#[cfg(not(multicast_loom))]
pub struct Inline<T, const CAP: usize, const N: usize> {
    slots: [Slot<T>; CAP],
    cursors: [Padded<Cursor>; N],
}

#[cfg(not(multicast_loom))]
impl<T, const CAP: usize, const N: usize> Inline<T, CAP, N> {
    /// Every seat subscribed from position 0 (`subscribed`), or every seat vacant.
    pub(crate) const fn new(subscribed: bool) -> Self {
        Self {
            slots: [const { Slot::new() }; CAP],
            cursors: if subscribed {
                [const { Padded::new(Cursor::new(true)) }; N]
            } else {
                [const { Padded::new(Cursor::new(false)) }; N]
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
    fn cursors(&self) -> &[Padded<Cursor>] {
        &self.cursors
    }
}

/// Slots and cursors on the heap, allocated once by
/// [`HeapBuffer::new`](crate::HeapBuffer::new) and never again.
#[cfg(feature = "alloc")]
pub struct Heap<T> {
    slots: alloc::boxed::Box<[Slot<T>]>,
    cursors: alloc::boxed::Box<[Padded<Cursor>]>,
}

#[cfg(feature = "alloc")]
impl<T> Heap<T> {
    pub(crate) fn new(capacity: usize, consumers: usize, subscribed: bool) -> Self {
        Self {
            slots: (0..capacity).map(|_| Slot::new()).collect(),
            cursors: (0..consumers).map(|_| Padded::new(Cursor::new(subscribed))).collect(),
        }
    }
}

#[cfg(feature = "alloc")]
impl<T> core::fmt::Debug for Heap<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Heap")
            .field("capacity", &self.slots.len())
            .field("consumers", &self.cursors.len())
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
    fn cursors(&self) -> &[Padded<Cursor>] {
        &self.cursors
    }
}
