//! Moving a page to another frame through the reverse map (`Vm::migrate`), and emptying a
//! range of frames of vm's pages (`Vm::vacate`), so the kernel can hand the range out as
//! physically contiguous memory.
//!
//! A migration keeps the page's index and changes only its frame: every page table entry
//! of it stays as it is, and only the kernel's translations (which hold the frame) go. For
//! a page of a mapped object, or a private page of a lineage:
//!
//! 1. a fresh page is allocated with no lock held (its frame is the new one);
//! 2. the mappings that may map the page are collected from its reverse map (the object's
//!    interval set, or the lineage's members), and each one's lock is taken, in order of
//!    serial (the only place that holds two mapping locks, so the order is the one rule);
//! 3. then the owner's lock (object or lineage): under it the page must still be the
//!    owner's at the same page number with the same frame, and the reverse map must list
//!    no mapping beyond those locked (else everything is released and it starts over);
//! 4. the page's references must be exactly the locked entries that map it: any other
//!    holder (a write-back copying it, a reverse-map query, a fork between copying its
//!    parent's table and joining the reverse map) pins it, and the move fails with
//!    [`Unmovable::Held`];
//! 5. every translation of it is invalidated ([`AddressSpace::invalidate`]: no store lands
//!    after it returns), the bytes are copied, and the two pages exchange frames;
//! 6. the locks go, and the old frame is given back to the kernel. Each mapping maps the
//!    new frame at its next fault.
//!
//! No translation of the old frame can appear meanwhile: an object page's translation is
//! installed under the object lock and a private page's under its mapping's lock, and both
//! are held from the invalidation to the exchange (rule `migrate-invalidates-under-locks`,
//! loom model 17). A page of an image's hash chains (an executable image's page no segment
//! maps, a mount-cache page) needs no reverse map, as nobody maps it: it moves under its
//! image's lock alone (`migrate_cached.rs`). Pages mapped through segments cannot move,
//! and say why: an executable image's page an attached segment maps
//! ([`Unmovable::SegmentMapped`]) and an exec segment's private page
//! ([`Unmovable::NoReverseMap`]), since segments keep no list of their mappers.
//!
//! [`AddressSpace::invalidate`]: super::AddressSpace::invalidate

use alloc::vec::Vec;
use core::ops::Range;

use crate::frame::{Frame, PAGE_BYTES};
use crate::page::PageIndex;
use crate::segment::{Entry, PageTable};
use crate::sync::{Arc, MutexGuard, Ordering};
use crate::vm::{Vm, VmState};

use super::lineage::Lineage;
use super::migrate_cached::CachedOwner;
use super::object::MemObject;
use super::rmap::Rmap;
use super::segment::MapSegment;

/// Why a frame's page cannot move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unmovable {
    /// No page of vm's has this frame (`migrate` only; `vacate` skips such frames).
    NotVms,
    /// Something besides its mappings holds the page: a kernel's held fault, a write-back
    /// copying it, a reverse-map query, a fork in progress.
    Held,
    /// An executable image's page that an attached segment maps (or a fault holds):
    /// segments keep no list of their mappers, so its mappings cannot be found. (An image
    /// page at ref 0, and every mount-cache page nobody is reading, can move.)
    SegmentMapped,
    /// A private page of an exec segment (data, bss, stack), or a page a fault has just
    /// allocated: no reverse map finds its mappers.
    NoReverseMap,
    /// vm's zero page.
    ZeroPage,
    /// The page is lent ([`MappingRef::lend`](crate::MappingRef::lend)): the kernel reads
    /// its frame until the loan returns, so the frame cannot change.
    Lent,
    /// No fresh page for the copy.
    NoMemory,
    /// The fresh page's frame lies in the range being vacated (the kernel handed out a
    /// frame of it).
    NewFrameInRange,
    /// The page's mappings kept changing under the move; try again.
    Busy,
}

/// A page that could not move: its frame and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MigrateError {
    /// The frame that stays.
    pub frame: Frame,
    /// Why.
    pub reason: Unmovable,
}

impl core::fmt::Display for MigrateError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "frame {:#x} cannot move: {:?}",
            self.frame.0, self.reason
        )
    }
}

impl core::error::Error for MigrateError {}

/// What `vacate` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Vacated {
    /// Pages moved to frames outside the range.
    pub moved: u64,
    /// Free pages of vm's whose frames in the range went back to the kernel.
    pub released: u64,
}

/// Who owns a page, as its metadata says (re-checked under the owner's lock).
enum Owner {
    Object(Arc<MemObject>, u64),
    Lineage(Arc<Lineage>, u64),
    /// A page of an image's hash chains (`migrate_cached.rs`).
    Cached(CachedOwner),
    Free,
}

/// The number of times a move starts over when its mappings change under it.
const ATTEMPTS: usize = 8;

impl Vm {
    /// Moves the page at `frame` to a new frame: copies it, and makes every mapping of it
    /// (found through the reverse map) map the new frame from its next fault. The old
    /// frame goes back to the kernel ([`FrameAllocator::free`]). Returns the new frame.
    /// A page of an image's hash chains that nobody maps (an idle executable image's
    /// page, a mount-cache page) moves too, under its image's lock; one an attached
    /// segment maps fails with [`Unmovable::SegmentMapped`]. Call with no vm lock held
    /// (it allocates).
    ///
    /// [`FrameAllocator::free`]: crate::FrameAllocator::free
    pub fn migrate(&self, frame: Frame) -> Result<Frame, MigrateError> {
        let shared = &*self.shared;
        let fail = |reason| MigrateError { frame, reason };
        let mut found = None;
        shared
            .pool
            .pages_in(&(frame.0..frame.0.saturating_add(1)), |page| {
                found = Some(page)
            });
        let page = found.ok_or_else(|| fail(Unmovable::NotVms))?;
        let owner = shared.owner_of(frame, page, &mut None)?;
        let moved = shared.move_page(frame, page, &owner, None);
        shared.trim_free_pool();
        moved
    }

    /// Moves every vm page out of the frames `range` (frame numbers) and gives the frames
    /// vm held there back to the kernel, so it can hand the range out as physically
    /// contiguous memory. The kernel must first stop handing out frames of the range
    /// itself (else a fresh page may land there: [`Unmovable::NewFrameInRange`]).
    ///
    /// Every page in the range is checked first; if one cannot move, nothing has moved
    /// and the error names its frame and why. A page that becomes unmovable after the
    /// check (a write-back or a held fault took it meanwhile, no memory for its copy)
    /// fails the call with its frame too; the pages moved before it stay moved. That is
    /// safe: each move is whole (the new frame has the bytes and every mapping faults to
    /// it), so the only cost is frames moved for nothing, while moving them back could
    /// fail for want of memory in turn. Call with no vm lock held.
    pub fn vacate(&self, range: Range<u64>) -> Result<Vacated, MigrateError> {
        let shared = &*self.shared;
        let zero = shared.zero.frame();
        if range.contains(&zero.0) {
            return Err(MigrateError {
                frame: zero,
                reason: Unmovable::ZeroPage,
            });
        }
        let mut done = Vacated::default();
        // The last image found: a range's cached pages are mostly a few images' runs.
        let mut last = None;
        // The check: every page in the range must have an owner that can move it.
        let mut failure = None;
        shared.pool.pages_in(&range, |page| {
            if failure.is_none() {
                let frame = shared.pool.frame(page);
                if let Err(err) = shared
                    .owner_of(frame, page, &mut last)
                    .and_then(|owner| shared.movable(frame, page, &owner))
                {
                    failure = Some(err);
                }
            }
        });
        if let Some(err) = failure {
            return Err(err);
        }
        done.released += shared.pool.release_free_in(&*shared.frames, &range) as u64;
        // The moves, one page at a time: `pages_in` holds no lock, and a move allocates.
        let mut failure = None;
        shared.pool.pages_in(&range, |page| {
            if failure.is_some() {
                return;
            }
            let frame = shared.pool.frame(page);
            let moved = shared
                .owner_of(frame, page, &mut last)
                .and_then(|owner| match owner {
                    // Freed since the release above.
                    Owner::Free => {
                        done.released +=
                            shared.pool.release_free_in(&*shared.frames, &range) as u64;
                        Ok(())
                    }
                    owner => shared
                        .move_page(frame, page, &owner, Some(&range))
                        .map(|_| {
                            done.moved += 1;
                        }),
                });
            failure = moved.err();
        });
        shared.trim_free_pool();
        match failure {
            Some(err) => Err(err),
            None => Ok(done),
        }
    }
}

impl VmState {
    /// Who owns `page` (at `frame`), from its metadata. Images and objects take their
    /// serials from one counter, so an image's page is never taken for an object's. `last`
    /// is the image the previous call found, kept by the caller across the pages of a
    /// range (serials are never reused, so it is still that serial's image).
    fn owner_of(
        &self,
        frame: Frame,
        page: PageIndex,
        last: &mut Option<CachedOwner>,
    ) -> Result<Owner, MigrateError> {
        let fail = |reason| MigrateError { frame, reason };
        let pool = &self.pool;
        if pool.loans(page) != 0 {
            return Err(fail(Unmovable::Lent));
        }
        let owner = pool.owner(page);
        if owner != 0 {
            let object = self.maps.table.lock().objects.get(&owner).cloned();
            if let Some(object) = object {
                return Ok(Owner::Object(object, pool.offset(page) / PAGE_BYTES));
            }
            // Not an object's: an image's (the table lock is released above, and no image
            // lock is held while the table's shards are searched).
            let found = match last.as_ref().filter(|image| image.serial() == owner) {
                Some(image) => Some(image.clone()),
                None => self.cached_owner(owner),
            };
            if let Some(image) = &found {
                *last = Some(image.clone());
            }
            return match found {
                Some(image) => Ok(Owner::Cached(image)),
                // An image that left the table: its pages are on their way out, or mapped.
                None if pool.refs(page) != 0 => Err(fail(Unmovable::SegmentMapped)),
                None => Err(fail(Unmovable::Busy)),
            };
        }
        let (serial, number) = pool.private_origin(page);
        if serial != 0 {
            let lineage = self.maps.table.lock().lineages.get(&serial).cloned();
            let lineage = lineage.ok_or_else(|| fail(Unmovable::NoReverseMap))?;
            return Ok(Owner::Lineage(lineage, number));
        }
        if pool.is_free(page) {
            return Ok(Owner::Free);
        }
        Err(fail(Unmovable::NoReverseMap))
    }

    /// vacate's check, with no lock but the owner's: whether the page's references are
    /// its reverse map's entries only (read without the mapping locks, so a move may
    /// still find it held; it then fails as the check would have).
    fn movable(&self, frame: Frame, page: PageIndex, owner: &Owner) -> Result<(), MigrateError> {
        let fail = |reason| MigrateError { frame, reason };
        let mut mappers = Vec::new();
        match owner {
            Owner::Free => return Ok(()),
            Owner::Cached(image) => return self.cached_movable(frame, page, image).map_err(fail),
            Owner::Object(object, number) => {
                collect(&object.state.lock().rmap, *number, &mut mappers)
                    .map_err(|()| fail(Unmovable::NoMemory))?;
            }
            Owner::Lineage(lineage, number) => {
                collect(&lineage.members.lock(), *number, &mut mappers)
                    .map_err(|()| fail(Unmovable::NoMemory))?;
            }
        }
        let number = match owner {
            Owner::Object(_, number) | Owner::Lineage(_, number) => *number,
            Owner::Free | Owner::Cached(_) => 0,
        };
        let entries = mappers
            .iter()
            .filter(|seg| entry_of(&seg.table.lock(), seg, number) == Some(page))
            .count();
        if self.pool.refs(page) as usize != entries {
            return Err(fail(Unmovable::Held));
        }
        Ok(())
    }

    /// Moves `page` (at `frame`, owned by `owner`) to a fresh frame, outside `avoid` if
    /// given. Returns the new frame.
    fn move_page(
        &self,
        frame: Frame,
        page: PageIndex,
        owner: &Owner,
        avoid: Option<&Range<u64>>,
    ) -> Result<Frame, MigrateError> {
        let fail = |reason| MigrateError { frame, reason };
        let mut fresh = None;
        for _ in 0..ATTEMPTS {
            let page = self.new_page().map_err(|_| fail(Unmovable::NoMemory))?;
            if avoid.is_some_and(|range| range.contains(&self.pool.frame(page).0)) {
                // A frame of the range came back to vm meanwhile: it goes to the kernel,
                // which keeps the range for the caller.
                self.pool.unbind_held(&*self.frames, page);
                continue;
            }
            fresh = Some(page);
            break;
        }
        let fresh = fresh.ok_or_else(|| fail(Unmovable::NewFrameInRange))?;
        let new = self.pool.frame(fresh);
        match self.move_locked(frame, page, fresh, owner) {
            Ok(()) => {
                // `fresh` now holds the old frame, and only we hold `fresh`.
                self.pool.unbind_held(&*self.frames, fresh);
                self.maps
                    .counters
                    .migrations
                    .fetch_add(1, Ordering::Relaxed);
                Ok(new)
            }
            Err(reason) => {
                self.pool.put(fresh);
                Err(fail(reason))
            }
        }
    }

    /// The locked part of a move (see the module's steps 2 to 5).
    fn move_locked(
        &self,
        frame: Frame,
        page: PageIndex,
        fresh: PageIndex,
        owner: &Owner,
    ) -> Result<(), Unmovable> {
        let number = match owner {
            Owner::Object(_, number) | Owner::Lineage(_, number) => *number,
            Owner::Cached(image) => return self.move_cached_locked(frame, page, fresh, image),
            Owner::Free => return Err(Unmovable::NotVms),
        };
        for _ in 0..ATTEMPTS {
            // Who may map it now, under the owner's lock alone.
            let mut mappers = Vec::new();
            let listed = match owner {
                Owner::Object(object, _) => {
                    let state = object.state.lock();
                    self.owns(owner, page)
                        .then(|| collect(&state.rmap, number, &mut mappers))
                }
                Owner::Lineage(lineage, _) => {
                    let members = lineage.members.lock();
                    self.owns(owner, page)
                        .then(|| collect(&members, number, &mut mappers))
                }
                Owner::Free | Owner::Cached(_) => None,
            };
            match listed {
                None => return Err(Unmovable::Busy),
                Some(Err(())) => return Err(Unmovable::NoMemory),
                Some(Ok(())) => {}
            }
            // Their locks in order of serial, then the owner's again.
            mappers.sort_by_key(|seg| seg.serial);
            let mut tables: Vec<MutexGuard<'_, PageTable>> = Vec::new();
            tables
                .try_reserve(mappers.len())
                .map_err(|_| Unmovable::NoMemory)?;
            // What each maps at the page number, read under its lock.
            let mut entries: Vec<Option<PageIndex>> = Vec::new();
            entries
                .try_reserve(mappers.len())
                .map_err(|_| Unmovable::NoMemory)?;
            for seg in &mappers {
                let table = seg.table.lock();
                entries.push(entry_of(&table, seg, number));
                // vm-rule(migrate-holds-mapping-locks): a fault looks a private page up
                // and maps (or copies) its frame under its mapping's lock alone: held
                // from the entries' reading to the exchange, no fault can map the old
                // frame after it (loom model 19).
                tables.push(table);
            }
            let moved = match owner {
                Owner::Object(object, _) => {
                    let state = object.state.lock();
                    self.exchange_locked(
                        &state.rmap,
                        owner,
                        (frame, page, fresh),
                        &mappers,
                        &entries,
                    )
                }
                Owner::Lineage(lineage, _) => {
                    let members = lineage.members.lock();
                    self.exchange_locked(&members, owner, (frame, page, fresh), &mappers, &entries)
                }
                Owner::Free | Owner::Cached(_) => Err(Unmovable::NotVms),
            };
            drop(tables);
            if moved? {
                return Ok(());
            }
        }
        Err(Unmovable::Busy)
    }

    /// Whether `owner` still owns `page` at its page number (under the owner's lock).
    fn owns(&self, owner: &Owner, page: PageIndex) -> bool {
        let pool = &self.pool;
        match owner {
            Owner::Object(object, number) => {
                pool.owner(page) == object.serial && pool.offset(page) / PAGE_BYTES == *number
            }
            Owner::Lineage(lineage, number) => {
                pool.owner(page) == 0 && pool.private_origin(page) == (lineage.serial, *number)
            }
            Owner::Free | Owner::Cached(_) => false,
        }
    }

    /// Steps 3 to 5 of a move, under every mapping lock of `mappers` (what each maps at
    /// the page number: `entries`, read under those locks) and the owner's lock (whose
    /// reverse map is `rmap`). `Ok(false)`: the mappings changed, start
    /// over.
    fn exchange_locked(
        &self,
        rmap: &Rmap,
        owner: &Owner,
        (frame, page, fresh): (Frame, PageIndex, PageIndex),
        mappers: &[Arc<MapSegment>],
        entries: &[Option<PageIndex>],
    ) -> Result<bool, Unmovable> {
        let number = match owner {
            Owner::Object(_, number) | Owner::Lineage(_, number) => *number,
            Owner::Free | Owner::Cached(_) => return Err(Unmovable::NotVms),
        };
        if !self.owns(owner, page) || self.pool.frame(page) != frame {
            return Err(Unmovable::Busy);
        }
        if !same_mappers(rmap, number, mappers) {
            return Ok(false);
        }
        // vm-rule(migrate-refuses-lent): a loan is taken under the owner's lock or the
        // lending mapping's, both held here, and its frame must not change.
        if self.pool.loans(page) != 0 {
            return Err(Unmovable::Lent);
        }
        let mapping = entries.iter().filter(|entry| **entry == Some(page)).count();
        if self.pool.refs(page) as usize != mapping {
            return Err(Unmovable::Held);
        }
        for (seg, entry) in mappers.iter().zip(entries) {
            if *entry == Some(page) {
                if let Some(addr) = seg.address_of(number) {
                    // vm-rule(migrate-invalidates-under-locks): no translation of the old
                    // frame may outlive the exchange (loom model 17).
                    seg.space.invalidate(addr, PAGE_BYTES);
                }
            }
        }
        self.frames.copy(frame, self.pool.frame(fresh));
        self.pool.exchange_frames(page, fresh);
        Ok(true)
    }
}

/// The entry of object page `number` in `seg`'s `table`, if it maps a page there.
fn entry_of(table: &PageTable, seg: &MapSegment, number: u64) -> Option<PageIndex> {
    let at = number.checked_sub(seg.first).filter(|at| *at < seg.pages)?;
    match table.get(at) {
        Some(Entry::Page(page)) => Some(page),
        _ => None,
    }
}

/// The mappings of `rmap` that cover object page `number`.
fn collect(rmap: &Rmap, number: u64, out: &mut Vec<Arc<MapSegment>>) -> Result<(), ()> {
    let mut count = 0;
    rmap.overlapping(number, number + 1, |_| count += 1);
    out.try_reserve(count).map_err(|_| ())?;
    rmap.overlapping(number, number + 1, |entry| out.push(entry.seg.clone()));
    Ok(())
}

/// Whether `rmap`'s mappings covering `number` are exactly `mappers` (no one joined or
/// left since they were collected).
fn same_mappers(rmap: &Rmap, number: u64, mappers: &[Arc<MapSegment>]) -> bool {
    let mut count = 0;
    let mut all_known = true;
    rmap.overlapping(number, number + 1, |entry| {
        count += 1;
        all_known &= mappers.iter().any(|seg| seg.serial == entry.seg.serial);
    });
    all_known && count == mappers.len()
}
