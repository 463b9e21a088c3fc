//! Carving a mapping: the part of it a partial `munmap` or `mprotect` names becomes a
//! mapping of its own, and the parts before and after it stay as two more.
//!
//! A mapping's address range, object range and writability never change (faults,
//! write-back, truncate and migration read them without a lock), so a carve replaces the
//! mapping by up to three new ones, each with a page table of its own, its own record in
//! the object's interval set and in the lineage, and its own object reference. The
//! pages' references move from the old table to the new ones; no page is copied, no
//! translation changes (each new mapping maps the same addresses to the same frames), but
//! the middle's when its writability changes: those go, so the next access is judged
//! again.
//!
//! All or nothing: every allocation (the new segments, their tables' leaves, room in the
//! interval set and the lineage for the extra records) is made before anything changes;
//! one that fails leaves the mapping as it was, handed back in [`CarveError`].
//!
//! Locks: the old mapping's lock is held throughout, so its entries stay as copied (a
//! fault, a truncate's or reclaim's cleaning, a migration takes it); the new tables are
//! filled before anyone else can reach them. The records are swapped under the object
//! lock and the lineage lock together (order: mapping → object → lineage), so a
//! write-back, a truncate or a migration walking the interval set finds either the old
//! mapping or all the new ones. A truncate that collected the old mapping before the swap
//! cleans its table after it, which is empty by then: so each new mapping is cleaned here
//! of the pages past the size read at the swap, under its own lock, as truncate would
//! have done; a truncate published after the swap finds the new ones in the interval set.

use crate::frame::{AllocSite, PAGE_BYTES};
use crate::segment::{Entry, PageTable};
use crate::sync::{Arc, AtomicBool, Mutex, Ordering};
use crate::vm::{LayoutError, VmError, VmState};

use super::segment::{MapSegment, MappingRef};

/// What [`MappingRef::carve`] leaves: the range asked for, and the mapping's parts before
/// and after it (`None` where the range reached the mapping's start or end).
#[derive(Debug)]
pub struct Carved {
    /// The part before the range.
    pub head: Option<MappingRef>,
    /// The range, with the writability asked for.
    pub middle: MappingRef,
    /// The part after the range.
    pub tail: Option<MappingRef>,
}

/// A carve that could not be made: why, and the mapping, unchanged.
#[derive(Debug)]
pub struct CarveError {
    /// The mapping, as it was.
    pub mapping: MappingRef,
    /// Why: [`VmError::NoMemory`], or a range not page aligned or not inside the mapping
    /// ([`VmError::BadLayout`]).
    pub error: VmError,
}

/// One new mapping's address range and writability.
#[derive(Clone, Copy)]
struct Piece {
    base: u64,
    end: u64,
    writable: bool,
}

impl MappingRef {
    /// Splits off `[start, end)` (page aligned, inside the mapping) as a mapping of its
    /// own, writable or not as `writable` says (a shared mapping made writable here is
    /// the kernel's to allow: it must have the file open for writing), and keeps the
    /// parts before and after it as two more with the old writability; each maps the same
    /// pages at the same addresses, so the address space's contents do not change. With
    /// the whole range and the same writability it is the mapping itself. Fails changing
    /// nothing, handing the mapping back. Call with no vm lock held.
    ///
    /// A partial `munmap` unmaps the middle ([`unmap`](Self::unmap): its dirty pages are
    /// written back, its private pages freed); a partial `mprotect` keeps all three.
    pub fn carve(self, start: u64, end: u64, writable: bool) -> Result<Carved, CarveError> {
        let (base, stop, old) = (self.base(), self.end(), self.seg.writable);
        let aligned = start.is_multiple_of(PAGE_BYTES) && end.is_multiple_of(PAGE_BYTES);
        let error = if !aligned {
            Some(LayoutError::Misaligned)
        } else if start >= end || start < base || end > stop {
            Some(LayoutError::OutsideMapping)
        } else {
            None
        };
        if let Some(why) = error {
            return Err(CarveError {
                mapping: self,
                error: VmError::BadLayout(why),
            });
        }
        if start == base && end == stop && writable == old {
            return Ok(Carved {
                head: None,
                middle: self,
                tail: None,
            });
        }
        let pieces = [
            Piece {
                base,
                end: start,
                writable: old,
            },
            Piece {
                base: start,
                end,
                writable,
            },
            Piece {
                base: end,
                end: stop,
                writable: old,
            },
        ];
        let (head, middle, tail) = match self.carve_locked(&pieces) {
            Ok(made) => made,
            Err(error) => {
                return Err(CarveError {
                    mapping: self,
                    error,
                })
            }
        };
        let handle = |seg| MappingRef {
            seg,
            vm: self.vm.clone(),
            written_back: false,
        };
        let carved = Carved {
            head: head.map(handle),
            middle: handle(middle),
            tail: tail.map(handle),
        };
        // The old handle's drop lets only its object reference go (`carved`).
        drop(self);
        Ok(carved)
    }

    /// Makes the new mappings (`pieces`, the empty ones skipped) and swaps them in for
    /// this one; on an error nothing changed.
    #[allow(clippy::type_complexity)]
    fn carve_locked(
        &self,
        pieces: &[Piece; 3],
    ) -> Result<
        (
            Option<Arc<MapSegment>>,
            Arc<MapSegment>,
            Option<Arc<MapSegment>>,
        ),
        VmError,
    > {
        let seg = &*self.seg;
        let shared = &*self.vm.shared;
        let mut old = seg.table.lock();
        let mut tables: [Option<PageTable>; 3] = [None, None, None];
        for (slot, piece) in tables.iter_mut().zip(pieces) {
            if piece.base < piece.end {
                shared
                    .admit(AllocSite::Mapping)
                    .map_err(|_| VmError::NoMemory)?;
                let table = PageTable::new((piece.end - piece.base) / PAGE_BYTES)
                    .map_err(|_| VmError::NoMemory)?;
                *slot = Some(table);
            }
        }
        // Copy the entries; their page references move only at the swap below.
        let mut failed = false;
        old.for_each(|page, entry| {
            let addr = seg.base + page * PAGE_BYTES;
            let Some((at, piece)) = pieces
                .iter()
                .position(|piece| (piece.base..piece.end).contains(&addr))
                .map(|at| (at, pieces[at]))
            else {
                return;
            };
            let Some(table) = tables[at].as_mut() else {
                return;
            };
            let number = (addr - piece.base) / PAGE_BYTES;
            if failed || table.ensure(number, shared).is_err() {
                failed = true;
                return;
            }
            table.set(number, entry);
        });
        if failed {
            return Err(VmError::NoMemory);
        }
        let mut made: [Option<Arc<MapSegment>>; 3] = [None, None, None];
        for ((slot, piece), table) in made.iter_mut().zip(pieces).zip(tables) {
            let Some(table) = table else { continue };
            let fresh = MapSegment {
                serial: shared.serial(),
                space: seg.space.clone(),
                base: piece.base,
                pages: (piece.end - piece.base) / PAGE_BYTES,
                first: seg.first + (piece.base - seg.base) / PAGE_BYTES,
                shared: seg.shared,
                writable: piece.writable,
                object: seg.object.clone(),
                lineage: seg.lineage.clone(),
                table: Mutex::new(table),
                carved: AtomicBool::new(false),
            };
            // A failure drops the copied tables, which hold no references yet.
            *slot = Some(Arc::try_new(fresh).map_err(|_| VmError::NoMemory)?);
        }
        let count = made.iter().flatten().count();
        let [head, middle, tail] = made;
        // Always there: the middle's range is not empty (checked by `carve`).
        let middle = middle.ok_or(VmError::BadLayout(LayoutError::OutsideMapping))?;
        let made = [head.clone(), Some(middle.clone()), tail.clone()];
        let size = self.swap_records(&made, count)?;
        // The entries' references are the new tables' now.
        let emptied = core::mem::replace(&mut *old, PageTable::empty());
        drop(emptied);
        seg.carved.store(true, Ordering::Release);
        drop(old);
        let counters = &shared.maps.counters;
        counters.mappings.fetch_add(count as u64, Ordering::Relaxed);
        if let Some(object) = &seg.object {
            // Our mapping holds a reference: no lock needed for more.
            object.refs.fetch_add(count as u32, Ordering::AcqRel);
        }
        for (piece, fresh) in pieces.iter().zip(&made) {
            let Some(fresh) = fresh else { continue };
            if let Some(size) = size {
                clean_past(shared, fresh, size);
            }
            if piece.writable != seg.writable {
                fresh.space.invalidate(piece.base, piece.end - piece.base);
            }
        }
        Ok((head, middle, tail))
    }

    /// Swaps the records of this mapping in its object's interval set and its lineage
    /// for those of the `count` new ones in `made`, both under their locks at once, after
    /// making room in both. Returns the object's size read in that hold (`None` without
    /// an object).
    fn swap_records(
        &self,
        made: &[Option<Arc<MapSegment>>; 3],
        count: usize,
    ) -> Result<Option<u64>, VmError> {
        let seg = &*self.seg;
        let shared = &*self.vm.shared;
        let mut state = seg.object.as_ref().map(|object| object.state.lock());
        let mut members = seg.lineage.as_ref().map(|lineage| lineage.members.lock());
        let grow = count.saturating_sub(1);
        if let Some(state) = &mut state {
            state.rmap.reserve(grow).map_err(|_| VmError::NoMemory)?;
        }
        if let Some(members) = &mut members {
            members.reserve(grow).map_err(|_| VmError::NoMemory)?;
        }
        let mut records = 0;
        if let Some(state) = &mut state {
            state.rmap.replace(seg.serial, made);
            records += grow;
        }
        if let Some(members) = &mut members {
            members.replace(seg.serial, made);
            records += grow;
        }
        shared
            .maps
            .counters
            .rmap_records
            .fetch_add(records as u64, Ordering::Relaxed);
        Ok(state.map(|state| state.size))
    }
}

/// Removes `seg`'s entries of object pages wholly past `size`, and their translations,
/// under its own lock: a truncate that collected the mapping it replaced cleaned that
/// mapping's emptied table instead.
fn clean_past(shared: &VmState, seg: &MapSegment, size: u64) {
    let gone = size.div_ceil(PAGE_BYTES);
    let from = gone.saturating_sub(seg.first);
    if from >= seg.pages {
        return;
    }
    let mut table = seg.table.lock();
    seg.space.invalidate(
        seg.base + from * PAGE_BYTES,
        (seg.pages - from) * PAGE_BYTES,
    );
    for page in from..seg.pages {
        if let Some(Entry::Page(held)) = table.get(page) {
            table.clear(page);
            shared.pool.put(held);
        }
    }
}
