//! Every lock, atomic and `Arc` the crate uses, in one place (the `Arc` is vm's own,
//! `arc.rs`, built on these atomics).
//!
//! Normally these are `spin` 0.9 and `core`/`alloc` types, the ones the Redox kernel links.
//! Under `--cfg loom` (with vm's `loom` feature) they are loom's models, so `tests/loom.rs`
//! can explore every interleaving of the lock protocols. Nothing else in the crate names
//! `spin` or `core::sync` directly.

#[cfg(not(loom))]
mod imp {
    // `AtomicBool` is the test kit's.
    #[allow(unused_imports)]
    pub(crate) use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

    /// One turn of a retry loop: tells the CPU we are spinning.
    pub(crate) fn spin_hint() {
        core::hint::spin_loop();
    }

    /// A spin lock (the kernel's lock type; vm never sleeps while holding one).
    pub(crate) struct Mutex<T>(spin::Mutex<T>);

    /// The guard of [`Mutex`]; the lock is released when it is dropped.
    pub(crate) type MutexGuard<'a, T> = spin::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(spin::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }
    }
}

#[cfg(loom)]
mod imp {
    #[allow(unused_imports)]
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

    /// One turn of a retry loop: lets loom run another thread.
    pub(crate) fn spin_hint() {
        loom::thread::yield_now();
    }

    /// loom's model of a lock, so that loom can schedule around it.
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    /// The guard of [`Mutex`]; the lock is released when it is dropped.
    pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            // A poisoned lock means a test thread panicked; the panic is reported anyway,
            // so keep going with the data as it is.
            self.0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }
    }
}

pub(crate) use imp::*;

/// vm's own counted box, fallible to allocate (`arc.rs`); its count is an atomic of this
/// module, so loom's under `--cfg loom`.
pub(crate) use crate::arc::Arc;
