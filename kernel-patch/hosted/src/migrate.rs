//! Moving frames: `migrate` one page to another frame, `vacate` a range of frames so the
//! kernel can hand it out as physically contiguous memory (what a driver's DMA buffer
//! needs). vm moves the pages through its reverse map and invalidates this kernel's
//! translations of them through each process's MMU; every access after faults to the
//! new frame.

use std::ops::Range;

use vm::{Frame, Vacated};

use crate::error::KernelError;
use crate::kernel::Kernel;
use crate::process::{lock, Pid};

impl Kernel {
    /// Moves the page at `frame` to another frame; returns the new one. A page that
    /// cannot move (an executable's page, a page a write-back or a held fault holds) is
    /// [`KernelError::Unmovable`], with the frame and why.
    pub fn migrate(&self, frame: Frame) -> Result<Frame, KernelError> {
        let moved = self.inner.vm.migrate(frame);
        self.safe_point();
        Ok(moved?)
    }

    /// Empties the frames `range` (frame numbers) of every vm page and keeps them from
    /// being handed out, so the caller has them as one contiguous run; until
    /// [`release_range`](Self::release_range) they stay reserved. If a page of the range
    /// cannot move, the call fails with its frame and why and the reservation ends: when
    /// the failure was found by the check before any move (the usual case), nothing moved;
    /// a page that became unmovable during the moves leaves the earlier ones moved, each
    /// whole (see `Vm::vacate`).
    pub fn vacate(&self, range: Range<u64>) -> Result<Vacated, KernelError> {
        let frames = &self.inner.frames;
        // First, so no page vm allocates for a move lands in the range.
        frames.reserve(range.clone());
        let result = self.inner.vm.vacate(range.clone());
        self.safe_point();
        match result {
            Ok(done) => {
                let free = frames.reserved_free() as u64;
                if free == range.end.saturating_sub(range.start) {
                    Ok(done)
                } else {
                    // A frame of the range is still out: vm let go of every page of its
                    // own there, so something else holds it.
                    frames.release_reserved();
                    Err(KernelError::RangeInUse)
                }
            }
            Err(err) => {
                frames.release_reserved();
                Err(err.into())
            }
        }
    }

    /// The frame `pid`'s MMU translates `addr` to now, if any (no fault: `None` after an
    /// invalidation, until the next access).
    pub fn translation(&self, pid: Pid, addr: u64) -> Result<Option<Frame>, KernelError> {
        let proc = self.proc(pid)?;
        let mmu = lock(&proc.mem).mmu.clone();
        let page = addr & !(vm::PAGE_SIZE as u64 - 1);
        let frame = mmu.entries().get(&page).map(|pte| pte.frame);
        Ok(frame)
    }

    /// Ends a [`vacate`](Self::vacate)'s reservation: its frames go back to the free list.
    pub fn release_range(&self) {
        self.inner.frames.release_reserved();
    }
}
