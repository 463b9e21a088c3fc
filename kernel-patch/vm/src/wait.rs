//! Waiting for a page another fault is loading: the kernel's sleep and wakeup.
//!
//! Faults on one uncached page of an image read it once. The first caches a *loading*
//! page in the image's chain (held by it, marked in the page's metadata) and reads into it
//! with no lock held; a fault that finds a loading page does not take it, but sleeps until
//! some load finishes and then looks again. When the read ends the loader clears the mark
//! (or, if the read failed, takes the page out again) and wakes the sleepers.
//!
//! vm never sleeps holding a lock. The condition a sleeper waits for is the count of
//! finished loads moving past the value it read under the image lock, while the page was
//! still loading; the loader clears the mark under that lock before it counts and wakes, so
//! a wakeup is never lost (given the contract of [`PageWait::sleep`]).

use crate::file::FileError;
use crate::sync::spin_hint;

/// How a fault sleeps until a page another fault is loading is ready (Plan 9's `sleep` and
/// `wakeup` on a `Rendez`), given by the kernel to
/// [`Vm::with_page_wait`](crate::Vm::with_page_wait).
pub trait PageWait: Send + Sync {
    /// Blocks until `done()` is true, or the waiting process is interrupted. `done` only
    /// reads an atomic; the kernel evaluates it and goes to sleep atomically with respect
    /// to [`wakeup`](Self::wakeup) (so a wakeup after the change `done` looks at is never
    /// lost). May return `Ok` early: vm looks again and sleeps again if it must.
    ///
    /// Returns `Err` ([`FileError::Interrupted`]) when the process got a note: its fault
    /// then fails as an interrupted page read does. Called with no vm lock held.
    fn sleep(&self, done: &dyn Fn() -> bool) -> Result<(), FileError>;

    /// Wakes every sleeper, so each evaluates its `done` again. Called with no vm lock
    /// held; must not block on anything but the kernel's own short lock.
    fn wakeup(&self);
}

/// The wait vm uses when the kernel gives none ([`Vm::new`](crate::Vm::new)): a retry loop
/// that spins on the condition (with the CPU's spin-loop hint). It cannot be interrupted
/// and burns its CPU while the loader waits for the server; a kernel with a scheduler
/// should give its own sleep through [`Vm::with_page_wait`](crate::Vm::with_page_wait).
#[derive(Clone, Copy, Debug, Default)]
pub struct SpinWait;

impl PageWait for SpinWait {
    fn sleep(&self, done: &dyn Fn() -> bool) -> Result<(), FileError> {
        while !done() {
            spin_hint();
        }
        Ok(())
    }

    fn wakeup(&self) {}
}
