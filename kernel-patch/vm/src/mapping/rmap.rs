//! The reverse map of one object or one lineage: the mappings of it by object page range.
//!
//! An interval set kept sorted by first page. A query for the mappings overlapping a range
//! visits, by binary search, only entries starting before the range's end, and tests their
//! ends; with the few mappings a file has that is cheaper than a tree and allocates nothing
//! but the vector. One record per mapping, never per page: its memory grows with the
//! number of mappings, not with the pages mapped. Lives under its owner's lock.

use alloc::vec::Vec;

use crate::frame::AllocError;
use crate::sync::Arc;

use super::segment::MapSegment;

/// One mapping of object pages `first..end`.
pub(crate) struct RmapEntry {
    pub(crate) first: u64,
    pub(crate) end: u64,
    pub(crate) seg: Arc<MapSegment>,
}

/// The mappings of one object or lineage, sorted by `first`.
#[derive(Default)]
pub(crate) struct Rmap {
    entries: Vec<RmapEntry>,
}

impl Rmap {
    /// Adds the record of `seg` (object pages `first..end`). Fails only if the vector cannot
    /// grow, leaving the set as it was.
    pub(crate) fn insert(&mut self, seg: Arc<MapSegment>) -> Result<(), AllocError> {
        self.entries.try_reserve(1).map_err(|_| AllocError)?;
        let (first, end) = (seg.first, seg.first + seg.pages);
        let at = self.entries.partition_point(|entry| entry.first <= first);
        // Within the reserved capacity: no allocation.
        self.entries.insert(at, RmapEntry { first, end, seg });
        Ok(())
    }

    /// Makes room for `additional` more records, so that many [`replace`](Self::replace)
    /// growth cannot fail under the same lock hold. Fails leaving the set as it was.
    pub(crate) fn reserve(&mut self, additional: usize) -> Result<(), AllocError> {
        self.entries.try_reserve(additional).map_err(|_| AllocError)
    }

    /// Replaces the record of the mapping `serial` by those of `pieces` (a carve: the
    /// mappings that now map its range). Room for the growth must have been
    /// [`reserve`](Self::reserve)d under the same lock hold: then nothing allocates.
    pub(crate) fn replace(&mut self, serial: u64, pieces: &[Option<Arc<MapSegment>>]) {
        self.remove(serial);
        for seg in pieces.iter().flatten() {
            let (first, end) = (seg.first, seg.first + seg.pages);
            let at = self.entries.partition_point(|entry| entry.first <= first);
            // Within the reserved capacity: no allocation.
            self.entries.insert(
                at,
                RmapEntry {
                    first,
                    end,
                    seg: seg.clone(),
                },
            );
        }
    }

    /// Removes the record of the mapping `serial`; returns whether it was there.
    pub(crate) fn remove(&mut self, serial: u64) -> Option<Arc<MapSegment>> {
        let at = self
            .entries
            .iter()
            .position(|entry| entry.seg.serial == serial)?;
        Some(self.entries.remove(at).seg)
    }

    /// Calls `visit` for every mapping that overlaps object pages `first..end`.
    pub(crate) fn overlapping(&self, first: u64, end: u64, mut visit: impl FnMut(&RmapEntry)) {
        let candidates = self.entries.partition_point(|entry| entry.first < end);
        for entry in &self.entries[..candidates] {
            if entry.end > first {
                visit(entry);
            }
        }
    }

    /// Records in the set (for the checker).
    #[cfg(feature = "check")]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no mapping is recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every record, in order (for the checker).
    #[cfg(any(test, feature = "check"))]
    pub(crate) fn entries(&self) -> &[RmapEntry] {
        &self.entries
    }
}
