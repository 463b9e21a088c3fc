//! The mount cache's limits: pages a file and in all, entries in all. A new page is had
//! only within them, the least recently used file making room first; reclaim takes the
//! least recently used files' pages; a new entry past `max_files` evicts the least
//! recently used one.
//!
//! Locks: the table lock alone to choose a file, then that file's image lock alone to take
//! its pages; frames are allocated, and freed, with no lock held.

use crate::frame::{AllocSite, PAGE_BYTES};
use crate::page::{PageIndex, NO_PAGE};
use crate::sync::Ordering;
use crate::vm::VmState;

impl VmState {
    pub(super) fn file_page_limit(&self) -> u32 {
        u32::try_from(self.mcache_config.max_file_bytes / PAGE_BYTES).unwrap_or(u32::MAX)
    }

    pub(crate) fn mcache_page_limit(&self) -> u32 {
        u32::try_from(self.mcache_config.max_bytes / PAGE_BYTES).unwrap_or(u32::MAX)
    }

    /// Frees pages taken from mount-cache chains (a private list), uncounts them, and gives
    /// the frames of free pages past `Config::max_free_pages` back to the kernel at once (a
    /// wipe, forget, relabel or eviction may free a whole file's pages, which would
    /// otherwise stay bound until the next fault end, segment drop or reclaim). Called with
    /// no vm lock held, the reclaim lock included: `FrameAllocator::free` runs.
    pub(super) fn release(&self, list: u32, taken: usize) {
        self.free_taken(list, taken);
        if taken > 0 {
            self.trim_free_pool();
        }
    }

    /// [`release`](Self::release) without giving frames back, for reclaim: its callers
    /// hold the reclaim lock and trim after releasing it (`Vm::reclaim`,
    /// `MountCache::reclaim`), or take the freed pages at once (`mcache_new_page`).
    fn free_taken(&self, list: u32, taken: usize) {
        self.pool.free_list_of(list);
        if taken > 0 {
            self.mcache_pages.fetch_sub(taken as u32, Ordering::AcqRel);
        }
    }

    /// A page for the mount cache at ref 1, counted in `mcache_pages`; `None` when the cache
    /// or memory is full even after the mount cache gave up its least recently used pages,
    /// at most `needed` (the pages the caller still wants) and `reclaim_batch` of them: no
    /// more, or a fill would evict the pages it just cached. Never reclaims executable
    /// images' pages: the mount cache makes room in itself only. Called with no lock held
    /// (it may block in the frame allocator).
    pub(super) fn mcache_new_page(&self, needed: usize) -> Option<PageIndex> {
        self.admit(AllocSite::MountCachePage).ok()?;
        let limit = self.mcache_page_limit();
        let batch = needed.clamp(1, self.config.reclaim_batch.max(1) as usize);
        let mut reserved = false;
        for attempt in 0..2 {
            reserved = self
                .mcache_pages
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |pages| {
                    (pages < limit).then_some(pages + 1)
                })
                .is_ok();
            if reserved || attempt == 1 {
                break;
            }
            self.reclaim_mount_cache(batch);
        }
        if !reserved {
            return None;
        }
        let page = match self.pool.try_alloc(&*self.frames) {
            Some(page) => Some(page),
            None => {
                self.reclaim_mount_cache(batch);
                self.pool.try_alloc(&*self.frames)
            }
        };
        match page {
            Some(page) => {
                self.counters
                    .pages_allocated
                    .fetch_add(1, Ordering::Relaxed);
                Some(page)
            }
            None => {
                self.mcache_pages.fetch_sub(1, Ordering::AcqRel);
                None
            }
        }
    }

    /// Frees up to `want` mount-cache pages, the least recently used file's first. Takes
    /// each image lock alone, and no lock while freeing.
    pub(crate) fn reclaim_mount_cache(&self, want: usize) -> usize {
        let mut freed = 0;
        // Files used from now on are not this pass's business, nor those it has emptied.
        let bound = self.use_clock.load(Ordering::Relaxed) + 1;
        // Each step takes a page or moves a file behind the bound, so this many steps are
        // enough; the budget only guards against a file that would not move.
        let mut steps =
            (self.table.counts.files.load(Ordering::Relaxed) as usize).saturating_add(want);
        while freed < want && steps > 0 {
            steps -= 1;
            let Some(image) = self.table.oldest_file_with_pages(bound) else {
                break;
            };
            let mut list = NO_PAGE;
            let mut state = image.state.lock();
            // A file being unlinked keeps the map's reference until it is retired, so its
            // `refs` stays above `pgref` here as `reclaim_pages` needs.
            let taken = image.reclaim_pages(&mut state, &self.pool, want - freed, &mut list);
            drop(state);
            self.free_taken(list, taken);
            freed += taken;
            if freed < want {
                // Emptied (or it had nothing to give): off reclaim's list, or behind the
                // bound, so the pass goes on to the next file instead of finding this one
                // again: O(1) a step, however many files there are.
                let mut table = self.table.lock(&image.identity);
                let tick = self.use_tick();
                table.pass_over_file(&image, tick);
            }
        }
        self.counters
            .reclaimed_pages
            .fetch_add(freed as u64, Ordering::Relaxed);
        freed
    }
}
