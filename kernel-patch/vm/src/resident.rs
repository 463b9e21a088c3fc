//! Faults that never block: [`SegmentRef::fault_resident_only`].
//!
//! A kernel that copies to or from user memory while it holds one of its own locks (a
//! pipe's queue, an address space) takes a page fault there whenever the buffer is not
//! mapped yet. [`SegmentRef::fault`] may then read the page from the image's file, which on
//! a kernel with user-space file servers is a request to a daemon and a sleep for its
//! answer, with the lock held: a deadlock if the daemon needs that lock, or is the copying
//! process itself. The resident-only fault resolves what needs no file server and refuses
//! the rest:
//!
//! - a page the segment maps already (a refault, or a write that copies it);
//! - an image page some other segment loaded (cached in the image, mapped by this fault
//!   without a read);
//! - zero fill (the zero page on a read, a fresh zeroed page on a write);
//!
//! and gives [`FaultError::WouldBlock`], changing nothing, where the fault would read the
//! page or wait for another fault that is reading it. It may allocate a page (a copy or
//! zero fill) through [`FrameAllocator::allocate`](crate::FrameAllocator::allocate) and
//! reclaim cached pages to do so, as the kernel's own faults under such locks allocate
//! frames: an allocator that may block must not be used with it under locks.
//!
//! Lock order: as [`SegmentRef::fault`] (segment lock → image lock; the free-list lock a
//! leaf), called with no vm lock held.

use crate::fault::{Access, FaultError, Mapping};
use crate::hold::HeldMapping;
use crate::segment::SegmentRef;

/// Whether a fault may read from the image's file and sleep for another fault's load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PageIn {
    /// [`SegmentRef::fault`]: read, and wait, as needed.
    MayBlock,
    /// [`SegmentRef::fault_resident_only`]: never read, never wait.
    ResidentOnly,
}

impl SegmentRef {
    /// Resolves a fault at `addr` as [`fault`](Self::fault) does, but never reads from the
    /// image's file and never sleeps in [`PageWait::sleep`](crate::PageWait::sleep):
    /// [`FaultError::WouldBlock`] (nothing cached, marked or mapped) where it would have to.
    /// For a kernel's faults under its own locks.
    pub fn fault_resident_only(&self, addr: u64, access: Access) -> Result<Mapping, FaultError> {
        self.fault_with(addr, access, PageIn::ResidentOnly)
    }

    /// [`fault_held`](Self::fault_held) that never blocks: [`fault_resident_only`], with
    /// the page held until the returned guard is dropped (`Ok(None)`: replaced before it
    /// could be held; fault again).
    ///
    /// [`fault_resident_only`]: Self::fault_resident_only
    pub fn fault_held_resident_only(
        &self,
        addr: u64,
        access: Access,
    ) -> Result<Option<HeldMapping<'_>>, FaultError> {
        let mapping = self.fault_resident_only(addr, access)?;
        Ok(self.hold(addr, mapping))
    }
}
