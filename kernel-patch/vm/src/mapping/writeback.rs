//! Write-back: a shared mapping's dirty pages go to the file through the object's channel.
//!
//! For each dirty page, under the object lock: clear the mark, take a reference, and remove
//! every translation of the page in the writable shared mappings of the object (found in
//! its reverse map), so the next store faults and marks it again. Then, with no lock held,
//! copy the page into a bounce buffer and write it (the part before the file's end only:
//! a write-back never grows the file). A store during the write marks the page again and
//! it is written again by the next write-back; a failed write marks the object's page at
//! that number again (the copy a loan break put there meanwhile, if one did). A file the
//! mount cache holds leaves it after a write-back (its pages there are older).
//!
//! A write in flight is counted in the object (`MemObject::writing`) from the moment it
//! takes its page and the size it writes up to, under the object lock, until it returns;
//! a truncate waits for the count to fall to zero (`truncate.rs`), so no page is written
//! back past a size the kernel then gives the server. While it waits, the object's gate
//! (`MemObject::truncating`) is closed and new write-backs wait before they take a page,
//! so the truncate waits only for those that began before it.

use alloc::vec::Vec;

use crate::file::FileIdentity;
use crate::frame::{AllocSite, PAGE_BYTES, PAGE_SIZE};
use crate::sync::Ordering;
use crate::vm::VmError;

use super::object::{MemObject, ObjectState};
use super::segment::{MapSegment, MappingRef};
use crate::sync::Arc;
use crate::sync::MutexGuard;
use crate::vm::Vm;

/// What `msync` needs of a mapping, held apart from its [`MappingRef`] so the kernel can
/// write back with its own locks released while the mapping may be unmapped or carved
/// meanwhile: it writes back the object's dirty pages of the range the mapping had, which
/// is what `msync` asks whoever maps them now. Holds an object reference (so the object,
/// and the pages a write-back holds, stay while it writes).
pub struct MappingSync {
    seg: Arc<MapSegment>,
    vm: Vm,
}

impl Drop for MappingSync {
    fn drop(&mut self) {
        if let Some(object) = &self.seg.object {
            self.vm.shared.put_object(object);
        }
    }
}

impl MappingSync {
    /// As [`MappingRef::sync`].
    pub fn sync(&self, addr: u64, len: u64) -> Result<u64, VmError> {
        sync_range(&self.vm, &self.seg, addr, len)
    }
}

impl MappingRef {
    /// Writes back the object's dirty pages this mapping maps in `[addr, addr + len)`
    /// (msync); returns how many pages were written. Nothing for a private or anonymous
    /// mapping. Call with no vm lock held: the writes may block.
    pub fn sync(&self, addr: u64, len: u64) -> Result<u64, VmError> {
        sync_range(&self.vm, &self.seg, addr, len)
    }

    /// A handle to [`sync`](MappingSync::sync) this mapping's range with no lock of the
    /// kernel's held.
    pub fn sync_handle(&self) -> MappingSync {
        if let Some(object) = &self.seg.object {
            // Our mapping holds a reference: no lock needed for another.
            object.refs.fetch_add(1, Ordering::AcqRel);
        }
        MappingSync {
            seg: self.seg.clone(),
            vm: self.vm.clone(),
        }
    }
}

fn sync_range(vm: &Vm, seg: &MapSegment, addr: u64, len: u64) -> Result<u64, VmError> {
    let Some(object) = seg.object.as_ref() else {
        return Ok(0);
    };
    if !seg.shared || object.key.is_none() {
        return Ok(0);
    }
    let start = addr.max(seg.base);
    let end = addr
        .saturating_add(len)
        .min(seg.base + seg.pages * PAGE_BYTES);
    if start >= end || object.state.lock().dirty == 0 {
        return Ok(0);
    }
    let first = seg.first + (start - seg.base) / PAGE_BYTES;
    let last = seg.first + (end - seg.base).div_ceil(PAGE_BYTES);
    write_back_pages(vm, object, first..last)
}

/// The truncate gate: while a truncate of `object` waits for the write-backs in flight, a
/// new one waits too, with the object lock released, so the truncate's wait is bounded by
/// the writes that began before it (a steady stream of write-backs could hold it off
/// forever otherwise). Returns the lock again, the gate open.
fn pass_gate<'a>(
    vm: &Vm,
    object: &'a MemObject,
    mut state: MutexGuard<'a, ObjectState>,
) -> Result<MutexGuard<'a, ObjectState>, VmError> {
    let shared = &*vm.shared;
    while object.truncating.load(Ordering::Acquire) != 0 {
        drop(state);
        shared
            .maps
            .counters
            .truncate_gate_waits
            .fetch_add(1, Ordering::Relaxed);
        let open = || object.truncating.load(Ordering::Acquire) == 0;
        shared.page_wait.sleep(&open).map_err(VmError::Io)?;
        state = object.state.lock();
    }
    Ok(state)
}

/// Writes back the dirty pages of `object` among page numbers `numbers` (those not
/// resident or clean are skipped); returns how many it wrote. With no vm lock held.
pub(super) fn write_back_pages(
    vm: &Vm,
    object: &MemObject,
    numbers: impl Iterator<Item = u64>,
) -> Result<u64, VmError> {
    let shared = &*vm.shared;
    let pool = &shared.pool;
    let counters = &shared.maps.counters;
    let mut buffer = Vec::new();
    let mut written = 0;
    for number in numbers {
        let (page, chan, bytes) = {
            let mut state = pass_gate(vm, object, object.state.lock())?;
            let Some(&page) = state.pages.get(&number) else {
                continue;
            };
            if !pool.is_dirty(page) {
                continue;
            }
            let Some(chan) = state.chan.clone() else {
                continue;
            };
            if buffer.is_empty() {
                drop(state);
                shared
                    .admit(AllocSite::WriteBackBuffer)
                    .map_err(|_| VmError::NoMemory)?;
                buffer
                    .try_reserve_exact(PAGE_SIZE)
                    .map_err(|_| VmError::NoMemory)?;
                buffer.resize(PAGE_SIZE, 0);
                state = pass_gate(vm, object, object.state.lock())?;
                if state.pages.get(&number) != Some(&page) || !pool.is_dirty(page) {
                    continue;
                }
            }
            pool.set_dirty(page, false);
            state.dirty -= 1;
            counters.dirty_pages.fetch_sub(1, Ordering::Relaxed);
            pool.incref(page);
            state.rmap.overlapping(number, number + 1, |entry| {
                let other = &entry.seg;
                if let (true, true, Some(at)) =
                    (other.shared, other.writable, other.address_of(number))
                {
                    // vm-rule(writeback-write-protects): a store after the copy must
                    // fault and mark the page dirty again (loom model 14).
                    other.space.invalidate(at, PAGE_BYTES);
                }
            });
            let offset = number * PAGE_BYTES;
            let bytes = state.size.saturating_sub(offset).min(PAGE_BYTES) as usize;
            // Counted with the size it writes up to, under the lock a truncate
            // publishes a new size under: the truncate waits for this write.
            object.writing.fetch_add(1, Ordering::AcqRel);
            (page, chan, bytes)
        };
        shared.frames.with_frame(pool.frame(page), &mut |frame| {
            buffer.copy_from_slice(frame);
        });
        let result = chan.write_all(number * PAGE_BYTES, &buffer[..bytes]);
        drop(chan);
        object.writing.fetch_sub(1, Ordering::AcqRel);
        shared.page_wait.wakeup();
        if let Err(err) = result {
            let mut state = object.state.lock();
            // The mark goes to the object's page at `number` now: ours, or the copy a
            // loan break put in its place during the write (which has our bytes and any
            // since). Ours marked after it left the object would be counted in an object
            // that no longer has it.
            if let Some(&now) = state.pages.get(&number) {
                if !pool.set_dirty(now, true) {
                    state.dirty += 1;
                    counters.dirty_pages.fetch_add(1, Ordering::Relaxed);
                }
            }
            drop(state);
            pool.put(page);
            counters.writeback_errors.fetch_add(1, Ordering::Relaxed);
            return Err(VmError::Io(err));
        }
        pool.put(page);
        counters.writebacks.fetch_add(1, Ordering::Relaxed);
        written += 1;
    }
    if written > 0 {
        // The server's bytes moved behind the mount cache's back: one copy a page.
        if let Some(key) = &object.key {
            vm.mount_cache().forget(FileIdentity {
                dev_type: key.dev_type,
                dev: key.dev,
                qid_path: key.qid_path,
                version: 0,
            });
        }
    }
    Ok(written)
}
