//! A process's software MMU: the translations a program's accesses use without a fault.
//!
//! It is vm's [`AddressSpace`] for the process's mappings: vm installs a mapping's
//! translation ([`AddressSpace::map`]) and removes translations
//! ([`AddressSpace::invalidate`]: a write-back write-protecting a page in every process
//! mapping it, a fork write-protecting the parent's private mappings, an unmap), possibly
//! from another process's thread. So the table has a lock of its own, a leaf: nothing is
//! called under it, and vm may take it under its own locks (its rule for the trait).
//! Segments' translations are installed by the process's own faults, under its memory lock
//! and then this one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use vm::{AddressSpace, Frame};

/// A software page table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pte {
    pub(crate) frame: Frame,
    pub(crate) writable: bool,
}

/// Address space ids, never reused (vm's reverse map names spaces by them).
static NEXT_SPACE: AtomicU64 = AtomicU64::new(1);

/// One process's translations, by page address.
pub(crate) struct SoftMmu {
    id: u64,
    entries: Mutex<HashMap<u64, Pte>>,
}

impl SoftMmu {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            id: NEXT_SPACE.fetch_add(1, Ordering::Relaxed),
            entries: Mutex::new(HashMap::new()),
        })
    }

    /// The table, locked (a leaf lock).
    pub(crate) fn entries(&self) -> MutexGuard<'_, HashMap<u64, Pte>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl SoftMmu {
    /// Runs `store` on the frame of `page`'s translation if it is writable, under the
    /// table's lock, and says whether it did. An invalidation therefore never falls
    /// between the check and the store (as a TLB shootdown waits for a store in flight):
    /// a write-back that write-protected the page and then copied it has the store, or
    /// the store faults and marks the page dirty again.
    pub(crate) fn store_if_writable(&self, page: u64, store: impl FnOnce(Frame)) -> bool {
        let entries = self.entries();
        match entries.get(&page) {
            Some(pte) if pte.writable => {
                store(pte.frame);
                true
            }
            _ => false,
        }
    }
}

impl SoftMmu {
    /// Runs `load` on the frame of `page`'s translation, if there is one, under the
    /// table's lock, and says whether it did: vm frees a page only after invalidating its
    /// translations (reclaim, truncate), so the frame cannot be freed and reused while
    /// it is read.
    pub(crate) fn load_if_mapped(&self, page: u64, load: impl FnOnce(Frame)) -> bool {
        let entries = self.entries();
        match entries.get(&page) {
            Some(pte) => {
                load(pte.frame);
                true
            }
            None => false,
        }
    }
}

impl AddressSpace for SoftMmu {
    fn id(&self) -> u64 {
        self.id
    }

    fn map(&self, addr: u64, frame: Frame, writable: bool) {
        self.entries().insert(addr, Pte { frame, writable });
    }

    fn invalidate(&self, addr: u64, len: u64) {
        let end = addr.saturating_add(len);
        let mut entries = self.entries();
        if len / vm::PAGE_SIZE as u64 <= entries.len() as u64 {
            let mut page = addr;
            while page < end {
                entries.remove(&page);
                page += vm::PAGE_SIZE as u64;
            }
        } else {
            entries.retain(|page, _| *page < addr || *page >= end);
        }
    }
}
