//! [`Arc`]: vm's shared, atomically counted box, whose allocation can fail.
//!
//! `alloc::sync::Arc::new` aborts the kernel when the heap is exhausted, and stable Rust
//! has no `Arc::try_new`. vm's objects (images, segments, channels, the instance) are made
//! on paths that must fail with [`AllocError`](crate::AllocError) instead, so they live in
//! this box: [`Arc::try_new`] hands the value back when the allocation fails. It has only
//! what vm uses: clone, deref, drop.
//!
//! The allocation is a boxed slice of one element, made through `Vec::try_reserve_exact`,
//! so it is fallible without unsafe code; only reaching the element through the shared
//! pointer and freeing it are unsafe. The count is never allowed to wrap: a count that
//! reaches `usize::MAX` is pinned there and the box is never freed (a leak, not a
//! use-after-free; no kernel makes that many handles).
//!
//! Under `--cfg loom` the count is loom's atomic, so the models explore it too.
#![allow(unsafe_code)]

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::marker::PhantomData;
use core::ops::Deref;
use core::ptr::NonNull;

use crate::sync::{AtomicUsize, Ordering};

/// A count at which the box is pinned for ever.
const PINNED: usize = usize::MAX;

/// `repr(C)`: the count first, so a value that lays its own hot fields first (an image's
/// `refs` and lock, `image.rs`) has them on the count's cache line.
#[repr(C)]
struct Inner<T> {
    count: AtomicUsize,
    value: T,
}

/// A shared reference to a `T` on the heap, freed with the last clone (like
/// `alloc::sync::Arc`), made with a fallible allocation.
pub(crate) struct Arc<T> {
    ptr: NonNull<Inner<T>>,
    /// The box owns an `Inner<T>` (for drop check and variance).
    _owns: PhantomData<Inner<T>>,
}

// SAFETY: an `Arc<T>` gives out `&T` to any thread holding a clone and drops the `T` on
// the thread that drops the last clone, exactly as `alloc::sync::Arc` does, which is Send
// and Sync under the same bounds.
unsafe impl<T: Send + Sync> Send for Arc<T> {}
// SAFETY: as for `Send` above.
unsafe impl<T: Send + Sync> Sync for Arc<T> {}

impl<T> Arc<T> {
    /// Moves `value` to the heap with a count of 1, or gives it back when no memory is left.
    pub(crate) fn try_new(value: T) -> Result<Self, T> {
        let mut slot: Vec<Inner<T>> = Vec::new();
        if slot.try_reserve_exact(1).is_err() {
            return Err(value);
        }
        slot.push(Inner {
            count: AtomicUsize::new(1),
            value,
        });
        // Length and capacity are both 1 (an exact reservation of a type that is never
        // zero-sized, it holds a counter), so this does not reallocate.
        let leaked: &mut [Inner<T>] = Box::leak(slot.into_boxed_slice());
        Ok(Self {
            ptr: NonNull::from(leaked).cast::<Inner<T>>(),
            _owns: PhantomData,
        })
    }

    /// The clones alive now (a snapshot: others may come and go meanwhile). For the
    /// checker.
    #[cfg(feature = "check")]
    pub(crate) fn count(this: &Self) -> usize {
        this.inner().count.load(Ordering::Relaxed)
    }

    fn inner(&self) -> &Inner<T> {
        // SAFETY: `ptr` points at the one element of a live boxed slice: it is freed only by
        // the drop of the last clone, and `self` is a clone that has not been dropped. Only
        // shared references to it are ever made.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> Clone for Arc<T> {
    fn clone(&self) -> Self {
        let count = &self.inner().count;
        let mut current = count.load(Ordering::Relaxed);
        // A new reference is made from an existing one, so no ordering is needed (as in
        // `alloc::sync::Arc`); a pinned count stays pinned.
        while current != PINNED {
            match count.compare_exchange(current, current + 1, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(seen) => current = seen,
            }
        }
        Self {
            ptr: self.ptr,
            _owns: PhantomData,
        }
    }
}

impl<T> Deref for Arc<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.inner().value
    }
}

impl<T> Drop for Arc<T> {
    fn drop(&mut self) {
        let count = &self.inner().count;
        let mut current = count.load(Ordering::Relaxed);
        loop {
            if current == PINNED {
                return;
            }
            // Release our uses of the value to the last dropper, which acquires them all.
            match count.compare_exchange(current, current - 1, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(seen) => current = seen,
            }
        }
        if current != 1 {
            return;
        }
        let slice = core::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), 1);
        // SAFETY: the count went from 1 to 0, so this was the last clone: nobody else can
        // reach the allocation any more. It was made by `Box::leak` of a boxed slice of
        // exactly one `Inner<T>` (`try_new`), which this rebuilds and drops.
        drop(unsafe { Box::from_raw(slice) });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use core::sync::atomic::{AtomicU32, Ordering as StdOrdering};

    struct CountsDrops<'a>(&'a AtomicU32);

    impl Drop for CountsDrops<'_> {
        fn drop(&mut self) {
            self.0.fetch_add(1, StdOrdering::SeqCst);
        }
    }

    #[test]
    fn the_value_is_dropped_once_with_the_last_clone() {
        let drops = AtomicU32::new(0);
        let first = Arc::try_new(CountsDrops(&drops)).unwrap_or_else(|_| panic!("no memory"));
        let second = first.clone();
        let third = second.clone();
        drop(first);
        drop(third);
        assert_eq!(drops.load(StdOrdering::SeqCst), 0);
        drop(second);
        assert_eq!(drops.load(StdOrdering::SeqCst), 1);
    }

    #[test]
    fn a_pinned_count_never_frees() {
        let drops = AtomicU32::new(0);
        let first = Arc::try_new(CountsDrops(&drops)).unwrap_or_else(|_| panic!("no memory"));
        first.inner().count.store(PINNED - 1, Ordering::Relaxed);
        let pinned = first.clone();
        assert_eq!(first.inner().count.load(Ordering::Relaxed), PINNED);
        let again = pinned.clone();
        drop((first, pinned, again));
        assert_eq!(drops.load(StdOrdering::SeqCst), 0);
    }
}
