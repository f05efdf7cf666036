//! The one place where the crate gets its atomics and interior mutability.
//!
//! Normally these are [`portable_atomic`]'s types (native atomics where the target has them, the
//! firmware's chosen backend where it does not). Built with `--cfg multicast_loom` they are
//! `loom`'s, so that the model checker sees every access of the protocol.

#[cfg(all(not(multicast_loom), target_pointer_width = "64"))]
pub(crate) use portable_atomic::AtomicU16;
#[cfg(all(not(multicast_loom), not(target_pointer_width = "64")))]
pub(crate) use portable_atomic::AtomicU8;
#[cfg(all(not(multicast_loom), not(multicast_bug = "relaxed-orderings")))]
pub(crate) use portable_atomic::Ordering;
#[cfg(not(multicast_loom))]
pub(crate) use portable_atomic::{AtomicPtr, AtomicUsize};

#[cfg(all(multicast_loom, target_pointer_width = "64"))]
pub(crate) use loom::sync::atomic::AtomicU16;
#[cfg(all(multicast_loom, not(target_pointer_width = "64")))]
pub(crate) use loom::sync::atomic::AtomicU8;
#[cfg(all(multicast_loom, not(multicast_bug = "relaxed-orderings")))]
pub(crate) use loom::sync::atomic::Ordering;
#[cfg(multicast_loom)]
pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicUsize};

/// Injected bug for the checkers' teeth (never on by default): every ordering is `Relaxed`.
#[cfg(multicast_bug = "relaxed-orderings")]
#[allow(non_snake_case, non_upper_case_globals, dead_code)]
pub(crate) mod Ordering {
    #[cfg(multicast_loom)]
    use loom::sync::atomic::Ordering as Real;
    #[cfg(not(multicast_loom))]
    use portable_atomic::Ordering as Real;

    pub(crate) const Relaxed: Real = Real::Relaxed;
    pub(crate) const Acquire: Real = Real::Relaxed;
    pub(crate) const Release: Real = Real::Relaxed;
    pub(crate) const AcqRel: Real = Real::Relaxed;
    pub(crate) const SeqCst: Real = Real::Relaxed;
}

/// `UnsafeCell` with loom's closure-based access API, so that the protocol code is the same
/// with and without loom.
#[cfg(not(multicast_loom))]
#[derive(Debug)]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(multicast_loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    /// Calls `f` with a shared pointer to the contents.
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Calls `f` with a unique pointer to the contents.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(multicast_loom)]
pub(crate) use loom::cell::UnsafeCell;

/// Defines a `const fn` normally and a plain `fn` under loom, whose constructors are not `const`.
macro_rules! const_unless_loom {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty $body:block) => {
        #[cfg(not(multicast_loom))]
        $(#[$meta])*
        $vis const fn $name($($arg: $ty),*) -> $ret $body
        #[cfg(multicast_loom)]
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) -> $ret $body
    };
}
