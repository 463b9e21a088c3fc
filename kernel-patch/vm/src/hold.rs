//! A fault whose page stays held: [`SegmentRef::fault_held`].
//!
//! [`SegmentRef::fault`] returns a frame and keeps no reference of its own: the segment's
//! entry holds the page, and once the segment lock is dropped another fault may replace
//! that entry (a copy on write, from another thread of the process) and put the old page,
//! which then goes to the free list, is reused for other contents, or goes back to the
//! kernel. A kernel that takes its own reference of the frame after the fault returned (a
//! page table entry's count, as Redox's `PageInfo`) has a window between the two in which
//! the frame can change hands. [`HeldMapping`] closes it: the page is held (one more
//! reference, taken under the segment lock while the entry still maps it) until the kernel
//! has taken its reference and drops the guard.
//!
//! Lock order: the segment lock alone, as [`SegmentRef::resident`]; the guard's drop takes
//! the free-list lock (a leaf) and may give frames back to the kernel
//! ([`FrameAllocator::free`](crate::FrameAllocator::free), which must not block).

use crate::fault::{Access, FaultError, Mapping};
use crate::page::{PageIndex, PagePool};
use crate::segment::{Entry, SegmentRef};

/// The page a fault found, held until this guard is dropped: vm neither frees nor reuses
/// its frame while the guard lives, whatever other faults do to the segment meanwhile.
///
/// The entry may still be replaced meanwhile (the held frame is then no longer the page at
/// that address), and a fork may share the page: a kernel that maps the frame later asks
/// [`current`](Self::current), under the lock that orders its own mappings, what to map.
/// Dropping it never blocks.
#[must_use = "the page is held only while the guard lives"]
pub struct HeldMapping<'a> {
    seg: &'a SegmentRef,
    /// The faulting address.
    address: u64,
    mapping: Mapping,
    /// The page held, or `None` for the zero page (nothing counts its references; it lives
    /// as long as the vm).
    page: Option<PageIndex>,
}

impl HeldMapping<'_> {
    /// What to map, as [`SegmentRef::fault`] returned it.
    pub fn mapping(&self) -> Mapping {
        self.mapping
    }

    /// What to map now: `None` if another fault replaced the page at the address since (map
    /// nothing; fault again); else the mapping, writable only if vm still lets it be (a
    /// fork since the fault shares a private page, which must then be mapped read only).
    ///
    /// A kernel calls it under the lock that orders its own mappings of the segment and
    /// vm's forks of it (Redox: the address-space lock) and maps what it says before it
    /// lets go of that lock. Takes the segment lock; never blocks.
    pub fn current(&self) -> Option<Mapping> {
        let seg = &*self.seg.seg;
        let pool = &self.seg.vm.shared.pool;
        let page = seg.page_number(self.address)?;
        let table = seg.table.lock();
        match (table.get(page)?, self.page) {
            (Entry::Zero, None) => Some(self.mapping),
            (Entry::Page(resident), Some(held)) if resident == held => {
                Some(held_mapping(pool, held, self.mapping))
            }
            _ => None,
        }
    }
}

/// Takes the hold's reference of `held`, if it is a page (the zero page has no count).
fn take_hold(pool: &PagePool, held: Option<PageIndex>) {
    if let Some(page) = held {
        pool.incref(page);
    }
}

/// `mapping` of the page `held` (which the caller holds, besides the entry's reference,
/// under the segment lock): writable only while the page is private and mapped by this
/// segment alone, the entry's reference and the hold's.
fn held_mapping(pool: &PagePool, held: PageIndex, mapping: Mapping) -> Mapping {
    let exclusive = pool.owner(held) == 0 && pool.refs(held) == 2;
    Mapping {
        frame: mapping.frame,
        writable: mapping.writable && exclusive,
    }
}

impl Drop for HeldMapping<'_> {
    fn drop(&mut self) {
        if let Some(page) = self.page.take() {
            let shared = &*self.seg.vm.shared;
            shared.pool.put(page);
            // If ours was the last reference, the page is free now: keep the free pool at
            // its bound, as the fault's own way out does.
            shared.trim_free_pool();
        }
    }
}

impl SegmentRef {
    /// [`fault`](Self::fault), with the page held until the returned guard is dropped.
    ///
    /// `Ok(None)` when another fault replaced the page between this fault's finding it and
    /// holding it (the page this fault found may already be free): fault again. Called
    /// with no vm lock held, as [`fault`](Self::fault). While the guard lives the page
    /// counts one more reference, so a write fault on it elsewhere copies it.
    pub fn fault_held(
        &self,
        addr: u64,
        access: Access,
    ) -> Result<Option<HeldMapping<'_>>, FaultError> {
        let mapping = self.fault(addr, access)?;
        Ok(self.hold(addr, mapping))
    }

    /// Holds the page `mapping` names if the entry at `addr` still maps it.
    pub(crate) fn hold(&self, addr: u64, mapping: Mapping) -> Option<HeldMapping<'_>> {
        let page = self.seg.page_number(addr)?;
        let shared = &*self.vm.shared;
        let table = self.seg.table.lock();
        let held = match table.get(page)? {
            Entry::Zero if mapping.frame == shared.zero.frame() => None,
            // Its frame may be the fault's although the page is another, bound to the frame
            // since: what is mapped is then that page, as it is now.
            Entry::Page(resident) if shared.pool.frame(resident) == mapping.frame => Some(resident),
            _ => return None,
        };
        // vm-rule(hold-under-segment-lock): the reference is taken while the entry still
        // holds its own, which it cannot drop while the segment lock is held: so the page
        // cannot reach the free list (and its frame be reused) before the hold.
        take_hold(&shared.pool, held);
        let mapping = held.map_or(mapping, |page| held_mapping(&shared.pool, page, mapping));
        drop(table);
        Some(HeldMapping {
            seg: self,
            address: addr,
            mapping,
            page: held,
        })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::testkit::HeapFrames;
    use crate::{Access, Config, SegmentKind, Vm, PAGE_SIZE};

    const STACK_VA: u64 = 0x7000_0000;

    /// The window `fault_held` closes, staged: the fault found the page, then another fault
    /// replaced it (and the page's last other mapper went) before the hold was taken.
    #[test]
    fn a_page_replaced_before_the_hold_is_not_held() {
        let frames = HeapFrames::new(16);
        let vm = Vm::new(frames.allocator(), Config::default()).expect("vm");
        let parent = vm
            .zero_segment(SegmentKind::Stack, STACK_VA, PAGE_SIZE as u64)
            .expect("stack");
        parent.fault(STACK_VA, Access::Write).expect("fault");
        let child = parent.fork().expect("fork");
        let found = parent.fault(STACK_VA, Access::Read).expect("fault");
        let copy = parent.fault(STACK_VA, Access::Write).expect("write");
        drop(child);
        assert_ne!(copy.frame, found.frame);
        assert_eq!(vm.statistics().free_pages, 1, "the page found is free now");
        assert!(
            parent.hold(STACK_VA, found).is_none(),
            "a free page was held"
        );
        // The page there now is held as it is.
        let held = parent.hold(STACK_VA, copy).expect("the copy is there");
        assert_eq!(held.current(), Some(copy));
    }
}
