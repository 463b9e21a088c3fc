//! One copy of each page within the kernel: the kernel's `read` and `write` of a file meet
//! the pages its mappings hold.
//!
//! A store through a shared mapping is in the object's page before it is written back, so
//! a `read` copies resident object pages over what the server (or the mount cache)
//! returned ([`Vm::read_mapped`]); a `write` that reached the server is copied into the
//! resident pages ([`Vm::wrote_mapped`]), so every mapping sees it, and moves the size
//! the object knows (a fault that read a page from the file meanwhile reads it again; with
//! a writable shared mapping the page is marked dirty, since a write-back in flight may
//! be sending an older copy of it). Both hold the object lock only while they copy (no call of the
//! kernel's but the frame copy, which does not block). A lent page is not written: it is
//! replaced by a copy first (`loan.rs`, `lock_unlent`), so the loan keeps its snapshot.

use crate::file::FileIdentity;
use crate::frame::{PAGE_BYTES, PAGE_SIZE};
use crate::sync::Arc;
use crate::vm::{Vm, VmState};

use super::object::MemObject;
use crate::file::PathKey;

impl VmState {
    pub(crate) fn mapped_object(&self, identity: &FileIdentity) -> Option<Arc<MemObject>> {
        self.maps
            .table
            .lock()
            .files
            .get(&PathKey::of(identity))
            .cloned()
    }
}

/// Calls `visit(page, range in page, range in buf)` for each page of `offset..+len`.
fn pieces(offset: u64, len: usize, mut visit: impl FnMut(u64, usize, usize, usize)) {
    let mut done = 0;
    while done < len {
        let at = offset + done as u64;
        let within = (at % PAGE_BYTES) as usize;
        let n = (PAGE_SIZE - within).min(len - done);
        visit(at / PAGE_BYTES, within, done, n);
        done += n;
    }
}

impl Vm {
    /// Copies the resident pages of `identity`'s mapped object (if it has one) over
    /// `buf`, the bytes a read at `offset` got from the server: stores through shared
    /// mappings not written back yet are seen. Returns the pages copied.
    pub fn read_mapped(&self, identity: &FileIdentity, offset: u64, buf: &mut [u8]) -> usize {
        let shared = &*self.shared;
        let Some(object) = shared.mapped_object(identity) else {
            return 0;
        };
        let pool = &shared.pool;
        let state = object.state.lock();
        let mut copied = 0;
        pieces(offset, buf.len(), |number, within, at, n| {
            if let Some(&page) = state.pages.get(&number) {
                shared.frames.with_frame(pool.frame(page), &mut |bytes| {
                    buf[at..at + n].copy_from_slice(&bytes[within..within + n]);
                });
                copied += 1;
            }
        });
        copied
    }

    /// Tells the mapped object of `identity` (if any) that `data` was written at `offset`
    /// to the server: its resident pages take the bytes, and its size grows to the write's
    /// end. Returns the pages updated.
    pub fn wrote_mapped(&self, identity: &FileIdentity, offset: u64, data: &[u8]) -> usize {
        let shared = &*self.shared;
        let Some(object) = shared.mapped_object(identity) else {
            return 0;
        };
        let pool = &shared.pool;
        let end = offset.saturating_add(data.len() as u64);
        // The pages it changes (the hole's too) are not a loan's: lent ones are copied.
        let mut state = shared.lock_unlent(&object, |state| {
            (
                offset.min(state.size) / PAGE_BYTES,
                end.div_ceil(PAGE_BYTES),
            )
        });
        if offset > state.size {
            // The hole the write leaves reads as zeros, whatever a store left past the end.
            super::truncate::zero_between(shared, &state, state.size, offset);
        }
        state.size = state.size.max(end);
        // A fault reading a page from the file meanwhile reads it again.
        state.writes += 1;
        // With a writable shared mapping, a write-back may be copying an older state of
        // the page to the server right now: marked dirty, the page goes again.
        let mut writer = false;
        state.rmap.overlapping(0, u64::MAX, |entry| {
            writer |= entry.seg.shared && entry.seg.writable;
        });
        let mut updated = 0;
        let mut dirtied = 0;
        pieces(offset, data.len(), |number, within, at, n| {
            if let Some(&page) = state.pages.get(&number) {
                shared
                    .frames
                    .with_frame_mut(pool.frame(page), &mut |bytes| {
                        bytes[within..within + n].copy_from_slice(&data[at..at + n]);
                    });
                if writer && !pool.set_dirty(page, true) {
                    dirtied += 1;
                }
                updated += 1;
            }
        });
        state.dirty += dirtied;
        shared
            .maps
            .counters
            .dirty_pages
            .fetch_add(u64::from(dirtied), crate::sync::Ordering::Relaxed);
        updated
    }
}
