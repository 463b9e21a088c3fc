//! vm's [`PageWait`] on host threads: a fault that finds a page another fault is loading
//! sleeps (Plan 9's `sleep` on a `Rendez`) until a load finishes, and a note posted to its
//! process ends the sleep, as it would flush the page read itself.
//!
//! Every sleeper has a rendezvous point of its own, listed while it sleeps; a wakeup wakes
//! them all (each then looks at its condition again). The list's lock is a leaf, taken
//! before a rendezvous point's lock, never under a vm lock.

use std::sync::{Arc, Mutex, MutexGuard};

use mnt::host::StdRendez;
use mnt::Rendez;
use vm::{FileError, PageWait};

use crate::current;

/// The kernel's sleep for faults waiting on a page load.
#[derive(Default)]
pub(crate) struct HostPageWait {
    sleepers: Mutex<Vec<Arc<StdRendez>>>,
}

impl HostPageWait {
    fn sleepers(&self) -> MutexGuard<'_, Vec<Arc<StdRendez>>> {
        self.sleepers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl PageWait for HostPageWait {
    fn sleep(&self, done: &dyn Fn() -> bool) -> Result<(), FileError> {
        let rendez = Arc::new(StdRendez::new());
        // Listed before `done` is first looked at: a load that finishes after that look
        // finds this sleeper in the list and wakes it.
        self.sleepers().push(rendez.clone());
        let as_rendez: Arc<dyn Rendez> = rendez.clone();
        let interrupted = current::with_interrupt(|intr| {
            intr.sleep_on(&as_rendez, done);
            // A note ends the wait (and is consumed, as by an interrupted server call)
            // unless the load finished anyway.
            !done() && intr.take()
        });
        self.sleepers().retain(|other| !Arc::ptr_eq(other, &rendez));
        if interrupted {
            Err(FileError::Interrupted)
        } else {
            Ok(())
        }
    }

    fn wakeup(&self) {
        for sleeper in self.sleepers().iter() {
            sleeper.wakeup();
        }
    }
}
