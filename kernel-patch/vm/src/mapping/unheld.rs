//! Dirty objects nobody holds: the channel rule of mapped files.
//!
//! DESIGN's rule for an image, "channel exactly while ref > pgref", becomes for a mapped
//! file object "channel while ref > pgref or a page is dirty": here `refs` counts the
//! holders (`ObjectRef`s, mappings) and no page counts as a holder, so the object keeps
//! its channel while `refs > 0` or a page is dirty. A shared mapping writes its dirty
//! pages back before it lets its reference go; when that write fails (the server refused
//! it, or the caller was interrupted), the object stays linked at `refs == 0` with its
//! dirty pages and its channel (`put_object` does not release it). Such objects are found
//! by a walk of the object table (no list of their own to allocate or keep in step: a
//! linked object at `refs == 0` is one) and written back by [`Vm::write_back_dirty`],
//! which the kernel calls when it likes, before it reclaims and at unmount; once clean,
//! the object goes as if its last reference had just been put. A reopen of the file in
//! between finds the object, dirty pages included: one copy of each page still.
//!
//! The only loss: a write that fails because the channel is gone
//! ([`FileError::Gone`]: the mount is dead, nothing can reach the server again) drops
//! the object's dirty pages, counted in `Statistics::dirty_pages_dropped`.

use alloc::vec::Vec;

use crate::file::FileError;
use crate::sync::{Arc, Ordering};
use crate::vm::{Vm, VmError, VmState};

use super::object::MemObject;
use super::writeback::write_back_pages;

impl Vm {
    /// Writes back the dirty pages of the mapped files nobody holds any more (their
    /// write-back at unmap or exit failed), and lets each object go once it is clean.
    /// Returns the pages written, or the first error but a dead channel's (whose pages
    /// are dropped, counted); the objects whose write failed otherwise stay for the next
    /// call. Call with no vm lock held: the writes may block.
    pub fn write_back_dirty(&self) -> Result<u64, VmError> {
        let shared = &*self.shared;
        let unheld = shared.unheld_dirty()?;
        let mut written = 0;
        let mut first_error = None;
        for object in &unheld {
            match write_back_object(self, object) {
                Ok(count) => written += count,
                Err(VmError::Io(FileError::Gone)) => shared.drop_dirty(object),
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
            // Our reference; the last put releases the object if it is clean now.
            shared.put_object(object);
        }
        match first_error {
            Some(err) => Err(err),
            None => Ok(written),
        }
    }
}

/// Writes back every dirty page of `object` (held by the caller).
fn write_back_object(vm: &Vm, object: &MemObject) -> Result<u64, VmError> {
    let numbers = {
        let state = object.state.lock();
        let pool = &vm.shared.pool;
        let mut numbers = Vec::new();
        numbers
            .try_reserve_exact(state.dirty as usize)
            .map_err(|_| VmError::NoMemory)?;
        numbers.extend(
            state
                .pages
                .iter()
                .filter(|(_, page)| pool.is_dirty(**page))
                .map(|(number, _)| *number)
                .take(state.dirty as usize),
        );
        numbers
    };
    write_back_pages(vm, object, numbers.into_iter())
}

impl VmState {
    /// The linked file objects nobody holds, each with a reference taken for the caller
    /// (so none is released while its pages are written).
    fn unheld_dirty(&self) -> Result<Vec<Arc<MemObject>>, VmError> {
        let table = self.maps.table.lock();
        let unheld = |object: &&Arc<MemObject>| {
            object.key.is_some() && object.refs.load(Ordering::Acquire) == 0
        };
        let count = table.objects.values().filter(unheld).count();
        let mut found = Vec::new();
        found
            .try_reserve_exact(count)
            .map_err(|_| VmError::NoMemory)?;
        for object in table.objects.values().filter(unheld) {
            // Under the table lock, as a lookup takes its reference.
            object.refs.fetch_add(1, Ordering::AcqRel);
            found.push(object.clone());
        }
        Ok(found)
    }

    /// The channel of `object` is gone: its dirty pages can never be written, so they
    /// lose their marks (counted as dropped) and the object can go.
    fn drop_dirty(&self, object: &MemObject) {
        let pool = &self.pool;
        let mut state = object.state.lock();
        let mut dropped = 0u64;
        for page in state.pages.values() {
            if pool.is_dirty(*page) {
                pool.set_dirty(*page, false);
                dropped += 1;
            }
        }
        state.dirty = 0;
        // A clean page is mapped read only (a mapping of a reopen may have it writable).
        state.rmap.overlapping(0, u64::MAX, |entry| {
            let seg = &entry.seg;
            if seg.shared && seg.writable {
                seg.space
                    .invalidate(seg.base, seg.pages * crate::frame::PAGE_BYTES);
            }
        });
        drop(state);
        let counters = &self.maps.counters;
        counters.dirty_pages.fetch_sub(dropped, Ordering::Relaxed);
        counters
            .dirty_pages_dropped
            .fetch_add(dropped, Ordering::Relaxed);
    }
}
