//! Mappings: one address space's view of an object page range (or of private anonymous
//! memory) at one address; making them, fork, unmap and the reverse map's query.

use alloc::vec::Vec;

use crate::frame::{AllocSite, PAGE_BYTES};
use crate::page::PageIndex;
use crate::segment::{Entry, PageTable};
use crate::sync::{Arc, AtomicBool, Mutex, Ordering};
use crate::vm::{LayoutError, Vm, VmError, VmState};

use super::lineage::Lineage;
use super::object::{MemObject, ObjectRef};
use super::{Mapper, SpaceRef};

/// Where and how to map: `len` bytes at `base` of the object from byte `offset` (all page
/// aligned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapSpec {
    /// The first address.
    pub base: u64,
    /// Bytes to map (> 0).
    pub len: u64,
    /// Where in the object the mapping starts.
    pub offset: u64,
    /// Shared (stores reach the object and every other shared mapping of it) or private
    /// (stores copy the page).
    pub shared: bool,
    /// Whether stores are allowed.
    pub writable: bool,
}

/// A mapping. Reached through its one [`MappingRef`].
pub(crate) struct MapSegment {
    /// Never reused; names the mapping in reverse maps.
    pub(crate) serial: u64,
    pub(crate) space: SpaceRef,
    pub(crate) base: u64,
    pub(crate) pages: u64,
    /// The object page number mapped at `base`.
    pub(crate) first: u64,
    pub(crate) shared: bool,
    pub(crate) writable: bool,
    /// The object mapped; `None` for private anonymous memory. Holds one object reference.
    pub(crate) object: Option<Arc<MemObject>>,
    /// The lineage of a private mapping.
    pub(crate) lineage: Option<Arc<Lineage>>,
    /// The mapping lock: its page table. An entry holds one reference of its page.
    pub(crate) table: Mutex<PageTable>,
    /// Set when a carve (`split.rs`) handed its entries and records to the mappings that
    /// replaced it: its handle's drop then only lets its object reference go.
    pub(crate) carved: AtomicBool,
}

impl MapSegment {
    /// The page number of `addr` in the mapping.
    pub(crate) fn page_number(&self, addr: u64) -> Option<u64> {
        let page = addr.checked_sub(self.base)? / PAGE_BYTES;
        (page < self.pages).then_some(page)
    }

    /// The address where the mapping maps object page `number`, if it covers it.
    pub(crate) fn address_of(&self, number: u64) -> Option<u64> {
        let page = number.checked_sub(self.first)?;
        (page < self.pages).then(|| self.base + page * PAGE_BYTES)
    }
}

/// A mapping, as its address space holds it. Dropping it (at exit) unmaps it as
/// [`unmap`](Self::unmap) does, ignoring a failed write-back (counted).
pub struct MappingRef {
    pub(crate) seg: Arc<MapSegment>,
    pub(crate) vm: Vm,
    /// Set by [`unmap`](Self::unmap) once it tried the write-back: the drop then does not
    /// try again (a refused page stays dirty for `Vm::write_back_dirty`).
    pub(crate) written_back: bool,
}

fn check_spec(spec: &MapSpec) -> Result<(), VmError> {
    let aligned = [spec.base, spec.len, spec.offset]
        .iter()
        .all(|value| value.is_multiple_of(PAGE_BYTES));
    if !aligned {
        return Err(VmError::BadLayout(LayoutError::Misaligned));
    }
    if spec.len == 0 {
        return Err(VmError::BadLayout(LayoutError::Empty));
    }
    spec.base
        .checked_add(spec.len)
        .and_then(|_| spec.offset.checked_add(spec.len))
        .ok_or(VmError::BadLayout(LayoutError::Overflow))?;
    Ok(())
}

impl VmState {
    /// A mapping of `object` (whose reference the caller hands over) or of private
    /// anonymous memory, registered in its reverse maps. On an error everything it took is
    /// given back (the object reference included).
    fn new_mapping(
        vm: &Vm,
        space: SpaceRef,
        spec: MapSpec,
        object: Option<Arc<MemObject>>,
        lineage: Option<Arc<Lineage>>,
        table: Option<PageTable>,
    ) -> Result<MappingRef, VmError> {
        let shared = &*vm.shared;
        let pages = spec.len / PAGE_BYTES;
        let made = match table {
            Some(table) => match shared.admit(AllocSite::Mapping) {
                Ok(()) => Ok(table),
                Err(_) => Err(table),
            },
            None => shared
                .admit(AllocSite::Mapping)
                .ok()
                .and_then(|()| PageTable::new(pages).ok())
                .ok_or_else(PageTable::empty),
        }
        .and_then(|table| {
            Arc::try_new(MapSegment {
                serial: shared.serial(),
                space,
                base: spec.base,
                pages,
                first: spec.offset / PAGE_BYTES,
                shared: spec.shared,
                writable: spec.writable,
                object: object.clone(),
                lineage,
                table: Mutex::new(table),
                carved: AtomicBool::new(false),
            })
            .map_err(|seg| {
                let table = core::mem::replace(&mut *seg.table.lock(), PageTable::empty());
                table
            })
        });
        let seg = match made {
            Ok(seg) => seg,
            Err(table) => {
                // A fork's copy holds page references: give them back.
                release_table(shared, table);
                if let Some(object) = &object {
                    shared.put_object(object);
                }
                return Err(VmError::NoMemory);
            }
        };
        shared
            .maps
            .counters
            .mappings
            .fetch_add(1, Ordering::Relaxed);
        // From here dropping the handle undoes everything.
        let mapping = MappingRef {
            seg: seg.clone(),
            vm: vm.clone(),
            written_back: false,
        };
        if let Some(object) = &object {
            object
                .state
                .lock()
                .rmap
                .insert(seg.clone())
                .map_err(|_| VmError::NoMemory)?;
            shared
                .maps
                .counters
                .rmap_records
                .fetch_add(1, Ordering::Relaxed);
        }
        if let Some(lineage) = &seg.lineage {
            shared.join_lineage(lineage, &seg)?;
        }
        Ok(mapping)
    }
}

impl ObjectRef {
    /// Maps `spec.len` bytes of the object from `spec.offset` at `spec.base` of `space`.
    /// A file mapping may reach past the file's end: a fault on a page wholly past it is
    /// [`FaultError::PastEnd`](crate::FaultError::PastEnd); the page holding the end reads
    /// zeros past it.
    pub fn map(&self, space: SpaceRef, spec: MapSpec) -> Result<MappingRef, VmError> {
        check_spec(&spec)?;
        let shared = &*self.vm.shared;
        let lineage = if spec.shared {
            None
        } else {
            Some(shared.new_lineage()?)
        };
        // The mapping's own reference; we hold one, so no lock is needed.
        self.object.refs.fetch_add(1, Ordering::AcqRel);
        VmState::new_mapping(
            &self.vm,
            space,
            spec,
            Some(self.object.clone()),
            lineage,
            None,
        )
    }
}

impl Vm {
    /// Private anonymous memory: `len` bytes at `base` of `space`, zero filled on demand
    /// (`spec.offset` and `spec.shared` are ignored: shared anonymous memory is an
    /// [`anon_object`](Self::anon_object) mapped shared).
    pub fn map_private_anon(&self, space: SpaceRef, spec: MapSpec) -> Result<MappingRef, VmError> {
        let spec = MapSpec {
            offset: 0,
            shared: false,
            ..spec
        };
        check_spec(&spec)?;
        let lineage = self.shared.new_lineage()?;
        VmState::new_mapping(self, space, spec, None, Some(lineage), None)
    }
}

impl MappingRef {
    /// Its first address.
    pub fn base(&self) -> u64 {
        self.seg.base
    }

    /// The address just past its end.
    pub fn end(&self) -> u64 {
        self.seg.base + self.seg.pages * PAGE_BYTES
    }

    /// Whether `addr` is in the mapping.
    pub fn contains(&self, addr: u64) -> bool {
        self.seg.page_number(addr).is_some()
    }

    /// Whether it is a shared mapping.
    pub fn is_shared(&self) -> bool {
        self.seg.shared
    }

    /// Whether stores are allowed.
    pub fn is_writable(&self) -> bool {
        self.seg.writable
    }

    /// The id of the address space it maps into.
    pub fn space_id(&self) -> u64 {
        self.seg.space.id()
    }

    /// The mapping as fork's child gets it, in the child's `space` at the same address: a
    /// shared mapping maps the same object (its pages fault in again from it); a private
    /// one joins this mapping's lineage and shares every page copy on write, and vm
    /// write-protects this mapping's translations ([`AddressSpace::invalidate`](crate::AddressSpace::invalidate)), so the
    /// next store of either copies.
    pub fn fork(&self, space: SpaceRef) -> Result<MappingRef, VmError> {
        let seg = &*self.seg;
        let shared = &*self.vm.shared;
        let spec = MapSpec {
            base: seg.base,
            len: seg.pages * PAGE_BYTES,
            offset: seg.first * PAGE_BYTES,
            shared: seg.shared,
            writable: seg.writable,
        };
        if let Some(object) = &seg.object {
            // Our mapping holds a reference: no lock needed for another.
            object.refs.fetch_add(1, Ordering::AcqRel);
        }
        if seg.shared {
            return VmState::new_mapping(&self.vm, space, spec, seg.object.clone(), None, None);
        }
        let table = {
            let parent = seg.table.lock();
            let copy = match parent.duplicate(shared) {
                Ok(copy) => copy,
                Err(_) => {
                    drop(parent);
                    if let Some(object) = &seg.object {
                        shared.put_object(object);
                    }
                    return Err(VmError::NoMemory);
                }
            };
            // Under the parent's lock no fault of the parent replaces a page meanwhile.
            let mut zeros = 0;
            copy.for_each(|_, entry| match entry {
                Entry::Page(page) => shared.pool.incref(page),
                Entry::Zero => zeros += 1,
            });
            shared.zero.entries_copied(zeros);
            if seg.writable {
                seg.space.invalidate(seg.base, seg.pages * PAGE_BYTES);
            }
            copy
        };
        VmState::new_mapping(
            &self.vm,
            space,
            spec,
            seg.object.clone(),
            seg.lineage.clone(),
            Some(table),
        )
    }

    /// Every (address space, address) that maps the page this mapping maps at `addr`
    /// (this mapping's own included), from the reverse maps: the object's interval set for
    /// an object's page, the lineage's for a private page. Empty where nothing is mapped.
    pub fn mappers_at(&self, addr: u64) -> Result<Vec<Mapper>, VmError> {
        let shared = &*self.vm.shared;
        let Some(number) = self.seg.page_number(addr) else {
            return Ok(Vec::new());
        };
        let page = {
            let table = self.seg.table.lock();
            match table.get(number) {
                Some(Entry::Page(page)) => {
                    // Held while we look, so it stays the same page.
                    shared.pool.incref(page);
                    page
                }
                _ => return Ok(Vec::new()),
            }
        };
        let found = shared.mappers_of(page);
        shared.pool.put(page);
        found
    }

    /// Writes the mapping's dirty pages back, then unmaps it (Plan 9's `putseg` of a
    /// mapping): its translations go ([`AddressSpace::invalidate`](crate::AddressSpace::invalidate)), its reverse-map
    /// records go, its pages lose its references. Returns the write-back's error, if any;
    /// the mapping is gone either way. Call with no vm lock held.
    pub fn unmap(mut self) -> Result<u64, VmError> {
        let result = self.write_back_all();
        self.written_back = true;
        drop(self);
        result
    }

    /// Writes back the dirty pages of a shared mapping's range: a writable one's stores,
    /// or those made before an `mprotect` took its write access (`carve`).
    fn write_back_all(&self) -> Result<u64, VmError> {
        if !self.seg.shared {
            return Ok(0);
        }
        self.sync(self.base(), self.end() - self.base())
    }
}

impl VmState {
    /// See [`MappingRef::mappers_at`]; `page` is held by the caller.
    pub(crate) fn mappers_of(&self, page: PageIndex) -> Result<Vec<Mapper>, VmError> {
        let owner = self.pool.owner(page);
        let mut candidates: Vec<Arc<MapSegment>> = Vec::new();
        let number;
        if owner != 0 {
            number = self.pool.offset(page) / PAGE_BYTES;
            let object = self.maps.table.lock().objects.get(&owner).cloned();
            let Some(object) = object else {
                return Ok(Vec::new());
            };
            let state = object.state.lock();
            collect(&state.rmap, number, &mut candidates)?;
        } else {
            let (serial, origin) = self.pool.private_origin(page);
            number = origin;
            let lineage = self.maps.table.lock().lineages.get(&serial).cloned();
            let Some(lineage) = lineage else {
                return Ok(Vec::new());
            };
            let members = lineage.members.lock();
            collect(&members, number, &mut candidates)?;
        }
        let mut found = Vec::new();
        found
            .try_reserve(candidates.len())
            .map_err(|_| VmError::NoMemory)?;
        for seg in candidates {
            let Some(addr) = seg.address_of(number) else {
                continue;
            };
            if seg.table.lock().get(number - seg.first) == Some(Entry::Page(page)) {
                found.push(Mapper {
                    space: seg.space.id(),
                    addr,
                });
            }
        }
        Ok(found)
    }
}

/// Drops the page reference of every entry of `table` (and the count of its entries
/// mapping the zero page).
pub(super) fn release_table(shared: &VmState, table: PageTable) {
    let mut zeros = 0;
    table.for_each(|_, entry| match entry {
        Entry::Page(page) => shared.pool.put(page),
        Entry::Zero => zeros += 1,
    });
    shared.zero.entries_released(zeros);
}

fn collect(
    rmap: &super::rmap::Rmap,
    number: u64,
    out: &mut Vec<Arc<MapSegment>>,
) -> Result<(), VmError> {
    let mut count = 0;
    rmap.overlapping(number, number + 1, |_| count += 1);
    out.try_reserve(count).map_err(|_| VmError::NoMemory)?;
    rmap.overlapping(number, number + 1, |entry| out.push(entry.seg.clone()));
    Ok(())
}

impl Drop for MappingRef {
    fn drop(&mut self) {
        let shared = &*self.vm.shared;
        let seg = &*self.seg;
        if seg.carved.load(Ordering::Acquire) {
            // Its pages, translations and records are the carved pieces' now.
            shared
                .maps
                .counters
                .mappings
                .fetch_sub(1, Ordering::Relaxed);
            if let Some(object) = &seg.object {
                shared.put_object(object);
            }
            return;
        }
        // A dirty page of a shared mapping goes back before the mapping does (unless
        // `unmap` tried already; what it could not write stays dirty in the object).
        if !self.written_back {
            if let Err(err) = self.write_back_all() {
                log::warn!("vm: write-back at unmap failed: {err}");
            }
        }
        // The kernel's translations first, then the records, then the pages.
        seg.space.invalidate(seg.base, seg.pages * PAGE_BYTES);
        if let Some(object) = &seg.object {
            if object.state.lock().rmap.remove(seg.serial).is_some() {
                shared
                    .maps
                    .counters
                    .rmap_records
                    .fetch_sub(1, Ordering::Relaxed);
            }
        }
        if let Some(lineage) = &seg.lineage {
            shared.leave_lineage(lineage, seg.serial);
        }
        let table = core::mem::replace(&mut *seg.table.lock(), PageTable::empty());
        release_table(shared, table);
        shared
            .maps
            .counters
            .mappings
            .fetch_sub(1, Ordering::Relaxed);
        if let Some(object) = &seg.object {
            shared.put_object(object);
        }
        shared.trim_free_pool();
    }
}

impl core::fmt::Debug for MappingRef {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MappingRef")
            .field("base", &self.seg.base)
            .field("pages", &self.seg.pages)
            .field("shared", &self.seg.shared)
            .field("writable", &self.seg.writable)
            .finish()
    }
}

impl MappingRef {
    /// Drops the mapping's pages in `[addr, addr + len)` (MADV_DONTNEED): their
    /// translations go, a private page is freed (the next access reads the file's bytes
    /// again, or zeros), a shared mapping's object page stays in the object (dirty pages
    /// are still written back). Returns the pages dropped.
    pub fn discard(&self, addr: u64, len: u64) -> u64 {
        let seg = &*self.seg;
        let shared = &*self.vm.shared;
        let start = addr.max(seg.base) & !(PAGE_BYTES - 1);
        let end = addr.saturating_add(len).min(self.end());
        if start >= end {
            return 0;
        }
        let mut dropped = 0;
        {
            let mut table = seg.table.lock();
            seg.space.invalidate(start, end - start);
            for number in (start - seg.base) / PAGE_BYTES..(end - seg.base).div_ceil(PAGE_BYTES) {
                if let Some(Entry::Page(page)) = table.get(number) {
                    table.clear(number);
                    shared.pool.put(page);
                    dropped += 1;
                }
            }
        }
        shared.trim_free_pool();
        dropped
    }
}
