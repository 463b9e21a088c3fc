//! Lineages: the reverse map of private pages (Linux's `anon_vma` idea).
//!
//! A private mapping's copies and zero-filled pages are no object's. Each private mapping
//! belongs to one lineage: a new mapping starts one, and fork puts the child's copy of a
//! private mapping in its parent's, since the two share pages copy on write. A private
//! page names its lineage (by serial) and its page number in the mapped object
//! (`PagePool::set_private_origin`), and the lineage keeps the set of its mappings by
//! object page range, so the mappings that may map the page are found without a record
//! per page. A mapping that no longer maps a page (it copied it again, or was unmapped)
//! is skipped by comparing its page table entry.
//!
//! Lock order: mapping lock → lineage lock → object-table lock.

use crate::frame::AllocSite;
use crate::sync::{Arc, Mutex, Ordering};
use crate::vm::{VmError, VmState};

use super::rmap::Rmap;
use super::segment::MapSegment;

/// A family of private mappings that may share pages.
pub(crate) struct Lineage {
    pub(crate) serial: u64,
    /// Its mappings (the lineage lock).
    pub(crate) members: Mutex<Rmap>,
}

impl VmState {
    /// A new lineage, registered in the object table, with no member yet.
    pub(crate) fn new_lineage(&self) -> Result<Arc<Lineage>, VmError> {
        self.admit(AllocSite::MemObject)?;
        let lineage = Arc::try_new(Lineage {
            serial: self.serial(),
            members: Mutex::new(Rmap::default()),
        })
        .map_err(|_| VmError::NoMemory)?;
        let mut table = self.maps.table.lock();
        table
            .lineages
            .try_reserve(1)
            .map_err(|_| VmError::NoMemory)?;
        table.lineages.insert(lineage.serial, lineage.clone());
        Ok(lineage)
    }

    /// Adds `seg` to its lineage's members.
    pub(crate) fn join_lineage(
        &self,
        lineage: &Lineage,
        seg: &Arc<MapSegment>,
    ) -> Result<(), VmError> {
        lineage
            .members
            .lock()
            .insert(seg.clone())
            .map_err(|_| VmError::NoMemory)?;
        self.maps
            .counters
            .rmap_records
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Takes the mapping `serial` out of `lineage` (if it joined); the last member's
    /// leaving unregisters the lineage.
    pub(crate) fn leave_lineage(&self, lineage: &Lineage, serial: u64) {
        let mut members = lineage.members.lock();
        if members.remove(serial).is_some() {
            self.maps
                .counters
                .rmap_records
                .fetch_sub(1, Ordering::Relaxed);
        }
        if members.is_empty() {
            // Under the lineage lock: no fork can add a member (it needs a live one).
            self.maps.table.lock().lineages.remove(&lineage.serial);
        }
    }
}
