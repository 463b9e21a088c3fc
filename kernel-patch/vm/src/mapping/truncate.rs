//! Truncating a mapped file: publish the new size, unmap every page past it (private
//! copies included), drop the object's pages past it, zero the tail of the last page.
//!
//! The size is published under the object lock, where every fault checks it before it
//! looks a page up; so once it is out, no fault maps a page past it again. The mappings to
//! clean are collected from the object's interval set under the same hold; each is then
//! cleaned under its own lock alone (a fault holds a mapping lock, then the object lock:
//! the other order would deadlock). A fault that checked the old size and is still
//! installing holds its mapping's lock, so the cleaning waits for it and removes its
//! entry. Then it waits for the object's write-backs in flight (each took its page, and
//! the size it writes up to, under the object lock, perhaps before the new size was out):
//! once it returns, no write-back of a page past the new size can still reach the server.
//! So the kernel calls it *before* it truncates the file at the server, and a write-back
//! racing the truncate lands before the server's truncate cuts it (loom model 18). Only
//! then do the object's pages past the size go: nothing maps them, nothing writes them.

use alloc::vec::Vec;

use crate::file::FileIdentity;
use crate::frame::{PAGE_BYTES, PAGE_SIZE};
use crate::page::NO_PAGE;
use crate::segment::Entry;
use crate::sync::{Arc, Ordering};
use crate::vm::{Vm, VmError};

use super::object::{MemObject, ObjectState};
use super::segment::MapSegment;
use crate::vm::VmState;

/// Zeroes the bytes `from..to` of the object's resident pages (under the object lock).
/// A store through a shared mapping into the last page past the end of the file stays in
/// memory and is never written back (write-back stops at the size); when the file grows
/// over it, the server has zeros there, and so must the page, as Linux zeroes a partial
/// page's tail when the size moves past it.
pub(super) fn zero_between(shared: &VmState, state: &ObjectState, from: u64, to: u64) {
    if from >= to {
        return;
    }
    let pool = &shared.pool;
    let zero = |number: u64, page| {
        let start = from.max(number * PAGE_BYTES);
        let end = to.min((number + 1) * PAGE_BYTES);
        let (within, upto) = (
            (start % PAGE_BYTES) as usize,
            (end - number * PAGE_BYTES) as usize,
        );
        shared
            .frames
            .with_frame_mut(pool.frame(page), &mut |bytes| bytes[within..upto].fill(0));
    };
    let (first, past) = (from / PAGE_BYTES, to.div_ceil(PAGE_BYTES));
    // Whichever is shorter: the range's page numbers, or the resident pages (a file
    // grown by a terabyte has few of them).
    if past - first <= state.pages.len() as u64 {
        for number in first..past {
            if let Some(&page) = state.pages.get(&number) {
                zero(number, page);
            }
        }
    } else {
        for (&number, &page) in &state.pages {
            if (first..past).contains(&number) {
                zero(number, page);
            }
        }
    }
}

impl Vm {
    /// The kernel is truncating `identity`'s file to `size` bytes: call this first, then
    /// truncate the file at the server. Its mapped object, if any, takes the size; every
    /// mapping loses its pages past it (private copies too), so an access there is a bus
    /// error; write-backs of the object in flight finish (so none reaches the server after
    /// its truncate); the object's pages past the size are dropped (dirty ones
    /// unwritten); the bytes of the last page past the size read as zeros (a page read
    /// from the server before its truncate too). Returns the pages dropped from the
    /// object. Call with no vm lock held: it may sleep ([`PageWait`]) for the
    /// write-backs; [`VmError::Io`] if that sleep is interrupted, with the new size
    /// already in force in vm.
    ///
    /// [`PageWait`]: crate::PageWait
    pub fn truncate_mapped(&self, identity: &FileIdentity, size: u64) -> Result<usize, VmError> {
        Ok(self.begin_truncate(identity, size)?.commit())
    }

    /// vm's part of a truncate before the server's, for a kernel whose server may refuse
    /// the truncate: the size is published, every mapping loses its pages past it and the
    /// write-backs in flight finish, as [`truncate_mapped`](Self::truncate_mapped) does,
    /// but no page leaves the object yet. After the server's truncate,
    /// [`PendingTruncate::commit`] drops the pages past the size and zeroes the last
    /// page's tail; if the server refused, dropping the [`PendingTruncate`] (or
    /// [`abort`](PendingTruncate::abort)) puts the old size back, and the pages, dirty
    /// ones included, are still there: a refused truncate loses no store.
    pub fn begin_truncate(
        &self,
        identity: &FileIdentity,
        size: u64,
    ) -> Result<PendingTruncate, VmError> {
        let shared = &*self.shared;
        let Some(object) = shared.mapped_object(identity) else {
            return Ok(PendingTruncate {
                vm: self.clone(),
                object: None,
                size,
                old: size,
            });
        };
        let pool = &shared.pool;
        let mut pending = PendingTruncate {
            vm: self.clone(),
            object: Some(object.clone()),
            size,
            old: size,
        };
        // The first page wholly past the end.
        let gone = size.div_ceil(PAGE_BYTES);
        let mappings: Vec<Arc<MapSegment>> = {
            // Growing zeroes the pages past the old end: lent ones are copied first.
            let mut state = shared.lock_unlent(&object, |state| {
                if size > state.size {
                    (state.size / PAGE_BYTES, size.div_ceil(PAGE_BYTES))
                } else {
                    (0, 0)
                }
            });
            let mut count = 0;
            state.rmap.overlapping(gone, u64::MAX, |_| count += 1);
            let mut mappings = Vec::new();
            mappings.try_reserve(count).map_err(|_| VmError::NoMemory)?;
            let old = state.size;
            // From here, dropping `pending` (an error below, a refused truncate) puts it back.
            pending.old = old;
            state.size = size;
            state.writes += 1;
            // The gate: write-backs that have not taken their page yet wait until our
            // wait below is over (`writeback.rs`).
            object.truncating.fetch_add(1, Ordering::AcqRel);
            if size > old {
                // Growing: what a store left past the old end reads as the server's zeros.
                zero_between(shared, &state, old, size);
            }
            state
                .rmap
                .overlapping(gone, u64::MAX, |entry| mappings.push(entry.seg.clone()));
            mappings
        };
        for seg in &mappings {
            let mut table = seg.table.lock();
            let from = gone.saturating_sub(seg.first);
            if from >= seg.pages {
                continue;
            }
            seg.space.invalidate(
                seg.base + from * PAGE_BYTES,
                (seg.pages - from) * PAGE_BYTES,
            );
            for page in from..seg.pages {
                if let Some(Entry::Page(held)) = table.get(page) {
                    table.clear(page);
                    pool.put(held);
                }
            }
        }
        drop(mappings);
        let mut waited = Ok(());
        // vm-rule(truncate-waits-for-writebacks): a write-back that took the old size
        // must land before the kernel truncates the server (loom model 18).
        while object.writing.load(Ordering::Acquire) != 0 {
            let done = || object.writing.load(Ordering::Acquire) == 0;
            waited = shared.page_wait.sleep(&done).map_err(VmError::Io);
            if waited.is_err() {
                break;
            }
        }
        {
            // Under the object lock, where write-backs look at the gate.
            let _state = object.state.lock();
            object.truncating.fetch_sub(1, Ordering::AcqRel);
        }
        shared.page_wait.wakeup();
        waited.map(|()| pending)
    }
}

/// A truncate of a mapped file between vm's part before the server's truncate
/// ([`Vm::begin_truncate`]) and after it. Dropped without [`commit`](Self::commit), it
/// aborts: the server refused, and vm goes back to the old size.
#[must_use = "commit after the server's truncate; dropping it puts the old size back"]
pub struct PendingTruncate {
    vm: Vm,
    /// `None`: the file has no mapped object.
    object: Option<Arc<MemObject>>,
    size: u64,
    /// The size before; equal to `size` until the size was published.
    old: u64,
}

impl PendingTruncate {
    /// The server truncated the file: the object's pages past the size go (dirty ones
    /// unwritten) and the last page's bytes past it read as zeros. Returns the pages
    /// dropped. Call with no vm lock held.
    pub fn commit(mut self) -> usize {
        let Some(object) = self.object.take() else {
            return 0;
        };
        let shared = &*self.vm.shared;
        let pool = &shared.pool;
        let size = self.size;
        let gone = size.div_ceil(PAGE_BYTES);
        // The last page's tail is zeroed below: a lent last page is copied first.
        let tail = if size.is_multiple_of(PAGE_BYTES) {
            (0, 0)
        } else {
            (size / PAGE_BYTES, size / PAGE_BYTES + 1)
        };
        let mut state = shared.lock_unlent(&object, |_| tail);
        let mut head = NO_PAGE;
        let mut dropped = 0;
        let mut dirty = 0u32;
        state.pages.retain(|&number, &mut page| {
            if number < gone {
                return true;
            }
            // Nothing maps it now: at ref 0 (a short holder, a write-back in flight, keeps
            // it until it puts it: then it stays cached, past the end, for the next
            // truncate or the object's end).
            if pool.refs(page) != 0 {
                return true;
            }
            if pool.set_dirty(page, false) {
                dirty += 1;
            }
            pool.set_uncached(page);
            pool.set_link(page, head);
            head = page.0;
            dropped += 1;
            false
        });
        state.dirty -= dirty;
        if !size.is_multiple_of(PAGE_BYTES) {
            if let Some(&last) = state.pages.get(&(size / PAGE_BYTES)) {
                let tail = (size % PAGE_BYTES) as usize;
                shared
                    .frames
                    .with_frame_mut(pool.frame(last), &mut |bytes| {
                        bytes[tail..PAGE_SIZE].fill(0);
                    });
            }
        }
        drop(state);
        shared
            .maps
            .counters
            .dirty_pages
            .fetch_sub(u64::from(dirty), Ordering::Relaxed);
        pool.free_list_of(head);
        // An object nobody holds stayed only for its dirty pages: it may be clean now.
        shared.release_unused(&object);
        shared.trim_free_pool();
        dropped
    }

    /// The server refused the truncate: vm takes the old size back (unless a write moved
    /// it meanwhile), so the pages past the new size, dirty ones with their stores, are
    /// the file's again; a mapping faults them back in. Dropping it does the same.
    pub fn abort(mut self) {
        self.restore();
    }

    fn restore(&mut self) {
        let Some(object) = self.object.take() else {
            return;
        };
        let mut state = object.state.lock();
        if state.size == self.size && self.old != self.size {
            state.size = self.old;
            state.writes += 1;
        }
    }
}

impl Drop for PendingTruncate {
    fn drop(&mut self) {
        self.restore();
    }
}
