//! The interrupt of the call a thread is working on now (Plan 9's `up->notepending`).
//!
//! vm calls [`ImageFile::read_at`](vm::ImageFile::read_at) without telling whose fault it
//! is; the hosted kernel sets the call's interrupt (see `notes`) for the thread while the
//! call runs, so a note posted to the process flushes the page read.

use std::cell::RefCell;
use std::sync::Arc;

use mnt::Interrupt;

thread_local! {
    static CURRENT: RefCell<Option<Arc<Interrupt>>> = const { RefCell::new(None) };
}

/// While alive, the thread works for the process whose interrupt was given.
pub(crate) struct Current {
    previous: Option<Arc<Interrupt>>,
}

/// Makes `intr` the current interrupt of this thread until the guard drops.
pub(crate) fn enter(intr: &Arc<Interrupt>) -> Current {
    let previous = CURRENT.with(|current| current.replace(Some(intr.clone())));
    Current { previous }
}

impl Drop for Current {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|current| *current.borrow_mut() = previous);
    }
}

/// Runs `f` with the current process's interrupt (or one nobody posts).
pub(crate) fn with_interrupt<R>(f: impl FnOnce(&Interrupt) -> R) -> R {
    let current = CURRENT.with(|current| current.borrow().clone());
    match current {
        Some(intr) => f(&intr),
        // Work on no process's behalf: an interrupt nobody posts (one per call, as the
        // driver wants).
        None => f(&Interrupt::new()),
    }
}
