//! Reclaim of mapped objects' pages, through the reverse map: a clean page is unmapped from
//! every mapping that maps it (found in its object's interval set) and freed.
//!
//! Dirty pages are never taken: they are written back first (msync, unmap, exit), so a
//! page reclaim frees has no store the server lacks. Lock order as everywhere: the object
//! lock alone to pick a page and collect its mappings, then each mapping's lock alone to
//! remove its entry (and translation), then the object lock again to free the page if
//! nothing took it back meanwhile (a fault re-mapping it holds a reference; a store marks
//! it dirty) — the page stays otherwise.

use alloc::vec::Vec;

use crate::frame::PAGE_BYTES;
use crate::page::{PageIndex, NO_PAGE};
use crate::segment::Entry;
use crate::sync::{Arc, Ordering};
use crate::vm::VmState;

use super::object::MemObject;
use super::segment::MapSegment;

impl VmState {
    /// Frees up to `target` clean pages of mapped objects, unmapping them first; returns
    /// how many it freed. Called with no vm lock held.
    pub(crate) fn reclaim_mapped(&self, target: usize) -> usize {
        let objects: Vec<Arc<MemObject>> = {
            let table = self.maps.table.lock();
            let mut objects = Vec::new();
            if objects.try_reserve(table.objects.len()).is_err() {
                return 0;
            }
            objects.extend(table.objects.values().cloned());
            objects
        };
        let mut freed = 0;
        let mut list = NO_PAGE;
        for object in &objects {
            while freed < target {
                let Some((number, page, mappings)) = self.pick_clean(object) else {
                    break;
                };
                for seg in &mappings {
                    let Some(at) = number.checked_sub(seg.first).filter(|at| *at < seg.pages)
                    else {
                        continue;
                    };
                    let mut table = seg.table.lock();
                    if table.get(at) == Some(Entry::Page(page)) {
                        seg.space.invalidate(seg.base + at * PAGE_BYTES, PAGE_BYTES);
                        table.clear(at);
                        self.pool.put(page);
                    }
                }
                let mut state = object.state.lock();
                // A loan taken meanwhile (under this lock) keeps it too.
                let unused = self.pool.refs(page) == 0
                    && !self.pool.is_dirty(page)
                    && self.pool.loans(page) == 0;
                if unused && state.pages.get(&number) == Some(&page) {
                    state.pages.remove(&number);
                    self.pool.set_uncached(page);
                    self.pool.set_link(page, list);
                    list = page.0;
                    freed += 1;
                } else {
                    // Taken back meanwhile: leave this object for now.
                    break;
                }
            }
        }
        self.pool.free_list_of(list);
        self.counters
            .reclaimed_pages
            .fetch_add(freed as u64, Ordering::Relaxed);
        freed
    }

    /// A clean page of `object` and the mappings that may map it (the object lock held
    /// only here).
    fn pick_clean(&self, object: &MemObject) -> Option<(u64, PageIndex, Vec<Arc<MapSegment>>)> {
        let state = object.state.lock();
        let (&number, &page) = state
            .pages
            .iter()
            // A lent page would only become an orphan: reclaim frees nothing by taking it.
            .find(|(_, page)| !self.pool.is_dirty(**page) && self.pool.loans(**page) == 0)?;
        let mut count = 0;
        state.rmap.overlapping(number, number + 1, |_| count += 1);
        let mut mappings = Vec::new();
        mappings.try_reserve(count).ok()?;
        state
            .rmap
            .overlapping(number, number + 1, |entry| mappings.push(entry.seg.clone()));
        Some((number, page, mappings))
    }
}
