//! The pool's side of page loans (`mapping/loan.rs`): the loan count, orphans, the detach
//! a loan break makes and the mark of a writable translation.
//!
//! Lock order: the free-list lock only (a leaf), in `unlend`.

use super::{PageIndex, PagePool, FLAG_MAPPED_WRITABLE, FLAG_ORPHAN, REFS_DETACHED};
use crate::sync::Ordering;

impl PagePool {
    /// Takes an object's page (held by the caller, who drops its reference after) out of
    /// its object for good, under the object lock: uncached, and whoever drops its last
    /// reference frees it (to the orphans, if lent), even one who saw it owned before.
    pub(crate) fn detach(&self, page: PageIndex) {
        self.meta(page)
            .refs
            .fetch_or(REFS_DETACHED, Ordering::AcqRel);
        self.set_uncached(page);
    }

    /// A writable translation of `page` is being installed.
    pub(crate) fn set_mapped_writable(&self, page: PageIndex) {
        self.meta(page)
            .flags
            .fetch_or(FLAG_MAPPED_WRITABLE, Ordering::Relaxed);
    }

    /// Whether a writable translation of `page` may exist (see `FLAG_MAPPED_WRITABLE`),
    /// clearing the mark: the caller removes them.
    pub(crate) fn take_mapped_writable(&self, page: PageIndex) -> bool {
        self.meta(page)
            .flags
            .fetch_and(!FLAG_MAPPED_WRITABLE, Ordering::Relaxed)
            & FLAG_MAPPED_WRITABLE
            != 0
    }

    /// Loans of `page` now.
    pub(crate) fn loans(&self, page: PageIndex) -> u32 {
        self.meta(page).loans.load(Ordering::Acquire)
    }

    /// Takes one more loan of `page`, which the caller holds (an entry of its, under the
    /// mapping lock) or finds in its object under the object lock, so its owner cannot
    /// let go of it meanwhile. Returns the loans before; `Err` (nothing taken) when the
    /// count would overflow.
    pub(crate) fn lend(&self, page: PageIndex) -> Result<u32, ()> {
        self.meta(page)
            .loans
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |loans| {
                loans.checked_add(1)
            })
            .map_err(|_| ())
    }

    /// Returns one loan of each page of `pages`, each under the free-list lock: an orphan
    /// whose last loan this was goes to the free list. Takes no other lock (so it needs no
    /// owner's lock, whatever the caller holds). Returns how many orphans it freed.
    pub(crate) fn unlend(&self, pages: impl Iterator<Item = PageIndex>) -> u64 {
        let mut freed = 0;
        for page in pages {
            let meta = self.meta(page);
            // vm-rule(unlend-under-free-list-lock): the owner's last put reads the loans
            // and sets the orphan flag under this lock (`push_free`); the last loan's
            // decrement and its read of the flag under it too, or an orphan is never freed
            // (loom model 22).
            let mut lists = self.lists.lock();
            let last = meta.loans.fetch_sub(1, Ordering::AcqRel) == 1;
            if last && meta.flags.fetch_and(!FLAG_ORPHAN, Ordering::Relaxed) & FLAG_ORPHAN != 0 {
                self.orphans.fetch_sub(1, Ordering::Relaxed);
                self.push_free(&mut lists, page);
                freed += 1;
            }
        }
        freed
    }

    /// Sets the loans of `page` (the test kit's overflow tests); returns the old count.
    #[cfg(any(test, feature = "testkit"))]
    pub(crate) fn set_loans(&self, page: PageIndex, loans: u32) -> u32 {
        self.meta(page).loans.swap(loans, Ordering::AcqRel)
    }

    /// Pages that are orphans now.
    pub(crate) fn orphans(&self) -> u64 {
        self.orphans.load(Ordering::Relaxed)
    }
}
