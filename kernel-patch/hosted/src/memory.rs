//! A process's address space: its segments and a software MMU.
//!
//! The MMU caches what faults returned (frame and whether writable), as a page table
//! would: a touch that finds a good entry costs no fault; a write through a read-only
//! entry faults again (vm copies the page). After fork the parent's writable entries are
//! made read only, because its private pages are now shared copy-on-write with the child.
//! An entry stays valid while its segment maps the same page, and only this process's own
//! faults change what its private segments map; text never changes.
//!
//! Lock: the process's memory lock (the "process segment lock" of vm's lock order) is held
//! across faults, which may read from a server.

use std::collections::HashMap;

use vm::{Access, FaultError, Frame, FrameAllocator, SegmentKind, SegmentRef, VmError, PAGE_SIZE};

use crate::counters::Counters;
use crate::error::KernelError;

const PAGE: u64 = PAGE_SIZE as u64;

/// A segment as the process maps it.
pub(crate) struct Region {
    pub(crate) seg: SegmentRef,
    /// Whether the program may write it (its `PT_LOAD`'s `PF_W`, for the bss after it
    /// too; the stack always).
    pub(crate) writable: bool,
}

/// A software page table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pte {
    pub(crate) frame: Frame,
    pub(crate) writable: bool,
}

/// Segments and MMU of one process.
#[derive(Default)]
pub(crate) struct Memory {
    pub(crate) regions: Vec<Region>,
    mmu: HashMap<u64, Pte>,
    /// Set by [`take`](Self::take): the process exited, and an exec that was loading
    /// meanwhile must not install a program in it.
    released: bool,
}

/// What a segment of a process is, for callers of the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Text, data, bss or stack.
    pub kind: SegmentKind,
    /// First address (page aligned).
    pub base: u64,
    /// Address past the end.
    pub end: u64,
    /// Whether the program may write it.
    pub writable: bool,
    /// The file of a text or data segment.
    pub identity: Option<vm::FileIdentity>,
}

impl Memory {
    pub(crate) fn new(regions: Vec<Region>) -> Self {
        Self {
            regions,
            mmu: HashMap::new(),
            released: false,
        }
    }

    fn region_of(&self, addr: u64) -> Option<&Region> {
        self.regions.iter().find(|region| region.seg.contains(addr))
    }

    /// Makes `addr` accessible for `access`, faulting if the MMU has no good entry.
    pub(crate) fn touch(
        &mut self,
        addr: u64,
        access: Access,
        counters: &Counters,
    ) -> Result<Pte, KernelError> {
        let page = addr & !(PAGE - 1);
        if let Some(pte) = self.mmu.get(&page) {
            if access == Access::Read || pte.writable {
                Counters::bump(&counters.mmu_hits);
                return Ok(*pte);
            }
        }
        let region = self.region_of(addr).ok_or(KernelError::Fault {
            addr,
            error: FaultError::BadAddress,
        })?;
        if access == Access::Write && !region.writable {
            return Err(KernelError::ReadOnly(addr));
        }
        Counters::bump(&counters.faults);
        let mapping = region
            .seg
            .fault(addr, access)
            .map_err(|error| KernelError::Fault { addr, error })?;
        // vm maps a zero-fill or copied page writable whatever the program may do with it;
        // the entry must not let a later write past the region's protection.
        let pte = Pte {
            frame: mapping.frame,
            writable: mapping.writable && region.writable,
        };
        self.mmu.insert(page, pte);
        Ok(pte)
    }

    /// Copies `buf.len()` bytes at `addr` out of the process, faulting pages in.
    pub(crate) fn read(
        &mut self,
        frames: &dyn FrameAllocator,
        addr: u64,
        buf: &mut [u8],
        counters: &Counters,
    ) -> Result<(), KernelError> {
        let mut done = 0;
        while done < buf.len() {
            let at = addr.checked_add(done as u64).ok_or(KernelError::Fault {
                addr,
                error: FaultError::BadAddress,
            })?;
            let pte = self.touch(at, Access::Read, counters)?;
            let within = (at % PAGE) as usize;
            let n = (PAGE_SIZE - within).min(buf.len() - done);
            frames.with_frame(pte.frame, &mut |bytes| {
                buf[done..done + n].copy_from_slice(&bytes[within..within + n]);
            });
            done += n;
        }
        Ok(())
    }

    /// Copies `data` into the process at `addr`, faulting pages in for writing.
    pub(crate) fn write(
        &mut self,
        frames: &dyn FrameAllocator,
        addr: u64,
        data: &[u8],
        counters: &Counters,
    ) -> Result<(), KernelError> {
        let mut done = 0;
        while done < data.len() {
            let at = addr.checked_add(done as u64).ok_or(KernelError::Fault {
                addr,
                error: FaultError::BadAddress,
            })?;
            let pte = self.touch(at, Access::Write, counters)?;
            let within = (at % PAGE) as usize;
            let n = (PAGE_SIZE - within).min(data.len() - done);
            frames.with_frame_mut(pte.frame, &mut |bytes| {
                bytes[within..within + n].copy_from_slice(&data[done..done + n]);
            });
            done += n;
        }
        Ok(())
    }

    /// The child's address space at fork: text shared, the rest copy-on-write. The
    /// parent's writable entries become read only.
    pub(crate) fn fork(&mut self) -> Result<Memory, VmError> {
        let mut regions = Vec::with_capacity(self.regions.len());
        for region in &self.regions {
            regions.push(Region {
                seg: region.seg.fork()?,
                writable: region.writable,
            });
        }
        for pte in self.mmu.values_mut() {
            pte.writable = false;
        }
        Ok(Memory::new(regions))
    }

    /// What the segments are.
    pub(crate) fn describe(&self) -> Vec<SegmentInfo> {
        self.regions
            .iter()
            .map(|region| SegmentInfo {
                kind: region.seg.kind(),
                base: region.seg.base(),
                end: region.seg.end(),
                writable: region.writable,
                identity: region.seg.identity(),
            })
            .collect()
    }

    /// MMU entries whose frame is not what the segment maps (for the checker).
    pub(crate) fn stale_entries(&self) -> Vec<u64> {
        let mut stale: Vec<u64> = self
            .mmu
            .iter()
            .filter(|(page, pte)| {
                self.region_of(**page)
                    .and_then(|region| region.seg.resident(**page))
                    != Some(pte.frame)
            })
            .map(|(page, _)| *page)
            .collect();
        stale.sort_unstable();
        stale
    }

    /// The first MMU entry (lowest address) that maps `zero`, vm's zero page, writable;
    /// vm maps it read only, so a write faults and gets a page of its own (for the
    /// checker).
    pub(crate) fn writable_zero_entry(&self, zero: Frame) -> Option<u64> {
        self.mmu
            .iter()
            .filter(|(_, pte)| pte.frame == zero && pte.writable)
            .map(|(page, _)| *page)
            .min()
    }

    /// The MMU, for the checker's tests to break.
    #[cfg(test)]
    pub(crate) fn mmu_mut(&mut self) -> &mut HashMap<u64, Pte> {
        &mut self.mmu
    }

    /// Takes the segments and clears the MMU (exec replacing them, or exit).
    /// Takes everything out for a process that is going away; the memory left behind
    /// refuses a new program ([`released`](Self::released)).
    pub(crate) fn take(&mut self) -> Memory {
        let memory = std::mem::take(self);
        self.released = true;
        memory
    }

    /// Whether [`take`](Self::take) emptied this memory: its process exited.
    pub(crate) fn released(&self) -> bool {
        self.released
    }
}
