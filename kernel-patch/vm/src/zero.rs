//! The zero page: one frame of zeros that a read fault on untouched zero-fill memory (bss,
//! stack, the pages of a data segment wholly past its file bytes, private anonymous
//! mappings) maps read only, so that reading memory nobody wrote allocates nothing. The first write to such a page allocates
//! a private zeroed page and maps it writable in its place; fork copies the entry as it is.
//!
//! The frame is the kernel's when it keeps one ([`FrameAllocator::zero_frame`], Redox's
//! `THE_ZEROED_FRAME`); else vm allocates and zeroes one as it is created and gives it back
//! when the instance goes away. Either way it is never written (every mapping of it is read
//! only), never on the free list, never in an image's chain (the checker says so).
//!
//! It is not a page of the pool and nothing counts its references: a page table maps it by
//! an entry value of its own (`ZERO_ENTRY`), not by a page index, so mapping it, forking a
//! segment that maps it and releasing such a segment touch no count of the frame. (Linux
//! had to stop counting references to its zero page: every CPU's faults bounced the one
//! count, and a count of mappings can overflow.) What vm keeps are statistics:
//! `entries`, the page-table entries mapping it now, which cannot overflow because each
//! entry it counts is a 4-byte slot of a page table on the heap; and two event counters
//! of 64 bits, one step a fault.
//!
//! `entries` counts the entries of exec segments' and mappings' page tables alike (a
//! private anonymous mapping's read maps it too, `mapping/fault.rs`; fork copies, a
//! mapping's end releases them; a carve moves them to the new mappings' tables and
//! changes no count).
//!
//! Lock order: none of its own; `entries` changes under the segment or mapping lock of
//! the entry that changes (or with the table taken from one that is going away).

use crate::frame::{AllocError, AllocSite, Frame, FrameAllocator};
use crate::sync::{AtomicU64, Ordering};

/// The zero page of one vm instance.
pub(crate) struct ZeroPage {
    frame: Frame,
    /// Whether vm allocated the frame (and so frees it as the instance goes away).
    allocated: bool,
    /// Page-table entries that map it now.
    entries: AtomicU64,
    /// Read faults it answered (each a page allocation not made).
    maps: AtomicU64,
    /// Writes that replaced an entry mapping it with a private page.
    breaks: AtomicU64,
}

impl ZeroPage {
    /// The kernel's zero frame, or one allocated and zeroed now.
    pub(crate) fn new(frames: &dyn FrameAllocator) -> Result<Self, AllocError> {
        let (frame, allocated) = match frames.zero_frame() {
            Some(frame) => (frame, false),
            None => {
                frames.admit_allocation(AllocSite::ZeroPage)?;
                let frame = frames.allocate()?;
                frames.zero(frame);
                (frame, true)
            }
        };
        Ok(Self {
            frame,
            allocated,
            entries: AtomicU64::new(0),
            maps: AtomicU64::new(0),
            breaks: AtomicU64::new(0),
        })
    }

    pub(crate) fn frame(&self) -> Frame {
        self.frame
    }

    /// A read fault mapped it at an entry that was empty.
    pub(crate) fn mapped_on_read(&self) {
        self.maps.fetch_add(1, Ordering::Relaxed);
        self.entries.fetch_add(1, Ordering::Relaxed);
    }

    /// A write replaced an entry that mapped it with a private page.
    pub(crate) fn replaced_on_write(&self) {
        self.breaks.fetch_add(1, Ordering::Relaxed);
        self.entries.fetch_sub(1, Ordering::Relaxed);
    }

    /// Fork copied `count` entries that map it.
    pub(crate) fn entries_copied(&self, count: u64) {
        if count > 0 {
            self.entries.fetch_add(count, Ordering::Relaxed);
        }
    }

    /// A segment that went away had `count` entries mapping it.
    pub(crate) fn entries_released(&self, count: u64) {
        if count > 0 {
            self.entries.fetch_sub(count, Ordering::Relaxed);
        }
    }

    /// `(entries now, read faults answered, writes that replaced it)`.
    pub(crate) fn counts(&self) -> (u64, u64, u64) {
        (
            self.entries.load(Ordering::Relaxed),
            self.maps.load(Ordering::Relaxed),
            self.breaks.load(Ordering::Relaxed),
        )
    }

    /// Gives an allocated frame back; the kernel's own stays with the kernel. Only for
    /// when the instance goes away (no segment maps the frame any more).
    pub(crate) fn release(&self, frames: &dyn FrameAllocator) {
        if self.allocated {
            frames.free(self.frame);
        }
    }
}
