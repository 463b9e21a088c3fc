//! Every lock, atomic and `Arc` of the core, in one place.
//!
//! Normally these are `spin` 0.9 and `core`/`alloc` types, the ones the Redox kernel
//! links. Under `--cfg loom` the locks and the protocol's atomics are loom's models,
//! so `tests/loom.rs` can explore every interleaving of the reader hand-off, tag
//! exhaustion and flush settling. Nothing else in the core names `spin` or
//! `core::sync` directly (the std transports in `host` use std's own).
//!
//! Three kinds stay the same under loom, on purpose:
//! - `Arc` is alloc's: the public traits hand out `Arc<dyn Rendez>`, which loom's
//!   `Arc` cannot coerce to, and its counts order nothing the models check;
//! - [`StatCounter`] (statistics, relaxed and read by nobody in the protocol): as loom
//!   atomics they would multiply the interleavings without checking anything;
//! - [`StaticCounter`] (the global mount id counter): a `static` needs a `const`
//!   constructor, which loom's atomics lack.

pub(crate) use alloc::sync::Arc;

/// A relaxed statistics counter.
pub(crate) type StatCounter = core::sync::atomic::AtomicU64;

/// A counter that lives in a `static`.
pub(crate) type StaticCounter = core::sync::atomic::AtomicU64;

#[cfg(not(loom))]
mod imp {
    pub(crate) use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    /// A spin lock (the kernel's lock type; the core never sleeps holding one).
    pub(crate) struct Mutex<T>(spin::Mutex<T>);

    /// The guard of [`Mutex`]; the lock is released when it is dropped.
    pub(crate) type MutexGuard<'a, T> = spin::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub(crate) const fn new(value: T) -> Self {
            Self(spin::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }
    }
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    /// loom's model of a lock, so that loom can schedule around it.
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    /// The guard of [`Mutex`]; the lock is released when it is dropped.
    pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            // A poisoned lock means a model thread panicked; that panic is reported
            // anyway, so go on with the data as it is.
            self.0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }
    }
}

pub(crate) use imp::*;
