//! A process's address space: its segments, its mappings and a software MMU (`mmu.rs`).
//!
//! A mapping's translations are installed and removed by vm through the MMU's
//! `AddressSpace` side; the process's protection (`Prot`) is the kernel's and is applied
//! here: an access it refuses faults before vm is asked, and a translation vm made
//! writable is kept read only where the protection says so.
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

#[cfg(test)]
use std::collections::HashMap;
use std::sync::Arc;

use vm::{
    Access, FaultError, Frame, FrameAllocator, MappingRef, SegmentKind, SegmentRef, SpaceRef,
    VmError, PAGE_SIZE,
};

use crate::counters::Counters;
use crate::error::KernelError;
pub(crate) use crate::mmu::Pte;
use crate::mmu::SoftMmu;
use crate::sysmap::Prot;

const PAGE: u64 = PAGE_SIZE as u64;

/// A segment as the process maps it.
pub(crate) struct Region {
    pub(crate) seg: SegmentRef,
    /// Whether the program may write it (its `PT_LOAD`'s `PF_W`, for the bss after it
    /// too; the stack always).
    pub(crate) writable: bool,
}

/// A mapping as the process maps it; dropping it unmaps it (`msync` writes back through a
/// [`vm::MappingSync`] with the memory lock released).
pub(crate) struct MapRegion {
    pub(crate) map: MappingRef,
    pub(crate) prot: Prot,
    /// Whether `mprotect` may make it writable: a shared file mapping only if the file
    /// was open for writing (POSIX's EACCES otherwise); anonymous and private ones always.
    pub(crate) may_write: bool,
}

/// Segments, mappings and MMU of one process.
pub(crate) struct Memory {
    pub(crate) regions: Vec<Region>,
    pub(crate) maps: Vec<MapRegion>,
    pub(crate) mmu: Arc<SoftMmu>,
    /// Set by [`take`](Self::take): the process exited, and an exec that was loading
    /// meanwhile must not install a program in it.
    released: bool,
}

impl Default for Memory {
    fn default() -> Self {
        Self::new(Vec::new())
    }
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
            maps: Vec::new(),
            mmu: SoftMmu::new(),
            released: false,
        }
    }

    fn region_of(&self, addr: u64) -> Option<&Region> {
        self.regions.iter().find(|region| region.seg.contains(addr))
    }

    pub(crate) fn map_of(&self, addr: u64) -> Option<&MapRegion> {
        self.maps.iter().find(|region| region.map.contains(addr))
    }

    /// Whether `[base, base + len)` meets a segment or a mapping.
    pub(crate) fn overlaps(&self, base: u64, len: u64) -> bool {
        let end = base.saturating_add(len);
        self.regions
            .iter()
            .map(|region| (region.seg.base(), region.seg.end()))
            .chain(self.maps.iter().map(|m| (m.map.base(), m.map.end())))
            .any(|(start, stop)| start < end && base < stop)
    }

    /// The lowest free range of `len` bytes at or above `floor`, above every mapping.
    pub(crate) fn free_range(&self, floor: u64, len: u64) -> Option<u64> {
        let mut base = floor;
        while self.overlaps(base, len) {
            let next = self
                .regions
                .iter()
                .map(|region| region.seg.end())
                .chain(self.maps.iter().map(|m| m.map.end()))
                .filter(|end| *end > base)
                .min()?;
            base = next;
        }
        base.checked_add(len).map(|_| base)
    }

    /// A fault in a mapping: the process's protection first, then vm (which installs the
    /// translation in the MMU).
    fn touch_mapping(
        &self,
        addr: u64,
        access: Access,
        counters: &Counters,
    ) -> Result<Pte, KernelError> {
        let page = addr & !(PAGE - 1);
        let Some(region) = self.map_of(addr) else {
            return Err(KernelError::Fault {
                addr,
                error: FaultError::BadAddress,
            });
        };
        if !region.prot.read && !region.prot.write {
            return Err(KernelError::Fault {
                addr,
                error: FaultError::BadAddress,
            });
        }
        if access == Access::Write && !region.prot.write {
            return Err(KernelError::ReadOnly(addr));
        }
        if let Some(pte) = self.mmu.entries().get(&page).copied() {
            if access == Access::Read || pte.writable {
                Counters::bump(&counters.mmu_hits);
                return Ok(pte);
            }
        }
        Counters::bump(&counters.faults);
        let mapping = region
            .map
            .fault(addr, access)
            .map_err(|error| match error {
                FaultError::PastEnd => KernelError::BusError { addr },
                error => KernelError::Fault { addr, error },
            })?;
        let pte = Pte {
            frame: mapping.frame,
            writable: mapping.writable && region.prot.write,
        };
        if pte.writable != mapping.writable {
            // vm may map a private page writable; the protection says no.
            self.mmu.entries().insert(page, pte);
        }
        Ok(pte)
    }

    /// Makes `addr` accessible for `access`, faulting if the MMU has no good entry.
    pub(crate) fn touch(
        &mut self,
        addr: u64,
        access: Access,
        counters: &Counters,
    ) -> Result<Pte, KernelError> {
        let page = addr & !(PAGE - 1);
        if self.map_of(addr).is_some() {
            return self.touch_mapping(addr, access, counters);
        }
        if let Some(pte) = self.mmu.entries().get(&page).copied() {
            if access == Access::Read || pte.writable {
                Counters::bump(&counters.mmu_hits);
                return Ok(pte);
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
        self.mmu.entries().insert(page, pte);
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
            let page = at & !(PAGE - 1);
            let within = (at % PAGE) as usize;
            let n = (PAGE_SIZE - within).min(buf.len() - done);
            // The load runs under the MMU's lock (`SoftMmu::load_if_mapped`): another
            // thread's reclaim or truncate that unmaps the page and frees its frame cannot
            // slip between the lookup and the copy.
            let mut first = true;
            loop {
                let loaded = self.mmu.load_if_mapped(page, |frame| {
                    frames.with_frame(frame, &mut |bytes| {
                        buf[done..done + n].copy_from_slice(&bytes[within..within + n]);
                    });
                });
                if loaded {
                    if first {
                        Counters::bump(&counters.mmu_hits);
                    }
                    break;
                }
                first = false;
                self.touch(at, Access::Read, counters)?;
            }
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
            let page = at & !(PAGE - 1);
            let within = (at % PAGE) as usize;
            let n = (PAGE_SIZE - within).min(data.len() - done);
            // The store runs under the MMU's lock, through a writable translation only
            // (`SoftMmu::store_if_writable`): a write-back on another thread that
            // write-protects the page cannot slip between the check and the store.
            let mut first = true;
            loop {
                let stored = self.mmu.store_if_writable(page, |frame| {
                    frames.with_frame_mut(frame, &mut |bytes| {
                        bytes[within..within + n].copy_from_slice(&data[done..done + n]);
                    });
                });
                if stored {
                    if first {
                        Counters::bump(&counters.mmu_hits);
                    }
                    break;
                }
                first = false;
                self.touch(at, Access::Write, counters)?;
            }
            done += n;
        }
        Ok(())
    }

    /// The child's address space at fork: text shared, the rest copy-on-write; shared
    /// mappings shared, private ones copy-on-write (vm write-protects the parent's). The
    /// parent's writable entries become read only.
    pub(crate) fn fork(&mut self) -> Result<Memory, VmError> {
        let mut regions = Vec::with_capacity(self.regions.len());
        for region in &self.regions {
            regions.push(Region {
                seg: region.seg.fork()?,
                writable: region.writable,
            });
        }
        let mut child = Memory::new(regions);
        for region in &self.maps {
            let space: SpaceRef = child.mmu.clone();
            child.maps.push(MapRegion {
                map: region.map.fork(space)?,
                prot: region.prot,
                may_write: region.may_write,
            });
        }
        for pte in self.mmu.entries().values_mut() {
            pte.writable = false;
        }
        Ok(child)
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

    /// MMU entries of segments whose frame is not what the segment maps (for the
    /// checker; mappings' entries are checked against vm's reverse map instead).
    pub(crate) fn stale_entries(&self) -> Vec<u64> {
        let mut stale: Vec<u64> = self
            .mmu
            .entries()
            .iter()
            .filter(|(page, _)| self.map_of(**page).is_none())
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
            .entries()
            .iter()
            .filter(|(_, pte)| pte.frame == zero && pte.writable)
            .map(|(page, _)| *page)
            .min()
    }

    /// The MMU's entries of mappings, for the checker to compare with vm's reverse map.
    pub(crate) fn mapping_translations(&self) -> Vec<vm::check::Translation> {
        let space = vm::AddressSpace::id(&*self.mmu);
        self.mmu
            .entries()
            .iter()
            .filter(|(page, _)| self.map_of(**page).is_some())
            .map(|(page, pte)| vm::check::Translation {
                space,
                addr: *page,
                frame: pte.frame,
                writable: pte.writable,
            })
            .collect()
    }

    /// The MMU, for the checker's tests to break.
    #[cfg(test)]
    pub(crate) fn mmu_mut(&mut self) -> std::sync::MutexGuard<'_, HashMap<u64, Pte>> {
        self.mmu.entries()
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
