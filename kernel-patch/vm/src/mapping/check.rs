//! The mappings' rules for the invariant checker (`check.rs`).
//!
//! - every object page is in its object's map once, names the object as its owner and its
//!   page number as its offset, at ref = the entries mapping it; the dirty count is the
//!   pages marked dirty; a linked object has a holder or (a file object) a dirty page
//!   whose write-back failed, and a linked file object its channel (held while
//!   `refs > 0` or a page is dirty);
//! - the reverse-map records are one per mapping in its object and one per private mapping
//!   in its lineage, each record's range its mapping's, their count the counter's: never
//!   more than two a mapping (the memory bound);
//! - [`check_translations`]: every translation an MMU holds is listed by the reverse map
//!   of the page it maps, and a writable one is a store the rules allow (a dirty page of a
//!   writable shared mapping, or a private page nobody else holds).
//!
//! Lock order as everywhere: the table lock alone, then each object or lineage lock, then
//! mapping locks, never two of one kind at once.

use alloc::vec::Vec;

use crate::frame::{Frame, PAGE_BYTES};
use crate::page::PageIndex;
use crate::segment::Entry;
use crate::sync::{Arc, Ordering};
use crate::vm::Vm;

use super::rmap::Rmap;
use super::segment::MapSegment;
use super::Mapper;

/// A broken mapping rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum MapViolation {
    /// An object page's metadata does not name its object or page number.
    ObjectPageMismatch { page: u32, object: u64 },
    /// An object page's count is not the entries mapping it.
    ObjectPageRefs { page: u32, refs: u32, mapped: u32 },
    /// An object's dirty count is not its pages marked dirty.
    DirtyCount {
        object: u64,
        counted: u32,
        recorded: u32,
    },
    /// A linked object with no holder and no dirty page, or a linked file object without
    /// its channel (the rule "channel while refs > 0 or a page is dirty").
    ObjectChannel {
        object: u64,
        refs: u32,
        has_channel: bool,
    },
    /// A record's range is not its mapping's, or a mapping is recorded twice.
    RmapRecord { mapping: u64 },
    /// The records are not one per mapping (and one per private mapping's lineage).
    RmapCount { records: u64, expected: u64 },
    /// A translation of an MMU is not listed by its page's reverse map.
    Unlisted { space: u64, addr: u64 },
    /// A writable translation of a page no store may reach in place (a lent page's
    /// included).
    WritableNotAllowed { space: u64, addr: u64 },
}

/// One translation of an MMU, as the kernel's checker hands it over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The address space's [`AddressSpace::id`](super::AddressSpace::id).
    pub space: u64,
    /// The page's address.
    pub addr: u64,
    /// The frame mapped there.
    pub frame: Frame,
    /// Whether stores go through without a fault.
    pub writable: bool,
}

/// Counts each object page in `chained` (so the page rules see it as cached) and checks
/// the objects' and reverse maps' rules.
/// Returns the file objects (each holds a channel).
pub(crate) fn check_objects(vm: &Vm, chained: &mut [u8]) -> Result<u32, MapViolation> {
    let shared = &*vm.shared;
    let pool = &shared.pool;
    let (objects, lineages) = {
        let table = shared.maps.table.lock();
        (
            table.objects.values().cloned().collect::<Vec<_>>(),
            table.lineages.values().cloned().collect::<Vec<_>>(),
        )
    };
    let mut records = 0u64;
    let mut private_mappings = 0u64;
    let file_objects = objects.iter().filter(|object| object.key.is_some()).count() as u32;
    let mut all_mappings: Vec<Arc<MapSegment>> = Vec::new();
    for object in &objects {
        let state = object.state.lock();
        let refs = object.refs.load(Ordering::Acquire);
        let has_channel = state.chan.is_some();
        // The channel rule: a linked object has a holder or a dirty page (its write-back
        // failed; `unheld.rs`), and a file object has its channel while it is linked.
        let held = refs > 0 || (state.dirty > 0 && object.key.is_some());
        if !held || (object.key.is_some() != has_channel) {
            return Err(MapViolation::ObjectChannel {
                object: object.serial,
                refs,
                has_channel,
            });
        }
        let mut dirty = 0;
        for (&number, &page) in state.pages.iter() {
            let slot = &mut chained[page.0 as usize];
            *slot = slot.saturating_add(1);
            if pool.owner(page) != object.serial || pool.offset(page) != number * PAGE_BYTES {
                return Err(MapViolation::ObjectPageMismatch {
                    page: page.0,
                    object: object.serial,
                });
            }
            dirty += u32::from(pool.is_dirty(page));
        }
        if dirty != state.dirty {
            return Err(MapViolation::DirtyCount {
                object: object.serial,
                counted: dirty,
                recorded: state.dirty,
            });
        }
        check_records(&state.rmap, &mut all_mappings)?;
        records += state.rmap.len() as u64;
    }
    for lineage in &lineages {
        let members = lineage.members.lock();
        check_records(&members, &mut Vec::new())?;
        records += members.len() as u64;
        private_mappings += members.len() as u64;
        for entry in members.entries() {
            if entry.seg.object.is_none() {
                all_mappings.push(entry.seg.clone());
            }
        }
    }
    let mappings = shared.maps.counters.mappings.load(Ordering::Relaxed);
    let recorded = shared.maps.counters.rmap_records.load(Ordering::Relaxed);
    // Every mapping of an object is in its rmap; every private mapping in its lineage.
    let expected = (all_mappings.len() as u64) + private_mappings
        - all_mappings
            .iter()
            .filter(|seg| seg.object.is_none())
            .count() as u64;
    if records != recorded
        || records != expected
        || all_mappings.len() as u64 != mappings
        || records > 2 * mappings
    {
        return Err(MapViolation::RmapCount { records, expected });
    }
    // Each object page's count is the entries of the mappings mapping it.
    for object in &objects {
        let pages: Vec<(u64, PageIndex)> = {
            let state = object.state.lock();
            state.pages.iter().map(|(&n, &p)| (n, p)).collect()
        };
        let users: Vec<Arc<MapSegment>> = {
            let state = object.state.lock();
            state.rmap.entries().iter().map(|e| e.seg.clone()).collect()
        };
        for (number, page) in pages {
            let mut mapped = 0;
            for seg in &users {
                if let Some(at) = number.checked_sub(seg.first) {
                    if seg.table.lock().get(at) == Some(Entry::Page(page)) {
                        mapped += 1;
                    }
                }
            }
            let refs = pool.refs(page);
            if refs != mapped {
                return Err(MapViolation::ObjectPageRefs {
                    page: page.0,
                    refs,
                    mapped,
                });
            }
        }
    }
    Ok(file_objects)
}

/// Adds the page references every live mapping's entries hold to `mapped` (by page);
/// returns the mappings' entries that map the zero page.
pub(crate) fn count_mapped(vm: &Vm, mapped: &mut [u32]) -> u64 {
    let shared = &*vm.shared;
    let (objects, lineages) = {
        let table = shared.maps.table.lock();
        (
            table.objects.values().cloned().collect::<Vec<_>>(),
            table.lineages.values().cloned().collect::<Vec<_>>(),
        )
    };
    let mut segs: Vec<Arc<MapSegment>> = Vec::new();
    let mut add = |seg: &Arc<MapSegment>| {
        if !segs.iter().any(|seen| seen.serial == seg.serial) {
            segs.push(seg.clone());
        }
    };
    for object in &objects {
        for entry in object.state.lock().rmap.entries() {
            add(&entry.seg);
        }
    }
    for lineage in &lineages {
        for entry in lineage.members.lock().entries() {
            add(&entry.seg);
        }
    }
    let mut zeros = 0;
    for seg in segs {
        seg.table.lock().for_each(|_, entry| match entry {
            Entry::Page(page) => mapped[page.0 as usize] += 1,
            Entry::Zero => zeros += 1,
        });
    }
    zeros
}

fn check_records(rmap: &Rmap, out: &mut Vec<Arc<MapSegment>>) -> Result<(), MapViolation> {
    for entry in rmap.entries() {
        let seg = &entry.seg;
        if entry.first != seg.first
            || entry.end != seg.first + seg.pages
            || out.iter().any(|seen| seen.serial == seg.serial)
        {
            return Err(MapViolation::RmapRecord {
                mapping: seg.serial,
            });
        }
        out.push(seg.clone());
    }
    Ok(())
}

/// Checks every translation of the kernel's MMUs against the reverse map: each is listed
/// by [`MappingRef::mappers_at`](super::MappingRef::mappers_at)'s rules for the page it
/// maps, and a writable one maps a dirty page through a writable shared mapping or a
/// private page at ref 1. Translations of frames that are no page of vm's (the zero page)
/// are skipped.
pub fn check_translations(vm: &Vm, translations: &[Translation]) -> Result<(), MapViolation> {
    let shared = &*vm.shared;
    let pool = &shared.pool;
    let by_frame: hashbrown::HashMap<
        u64,
        PageIndex,
        core::hash::BuildHasherDefault<crate::table::IdentityHasher>,
    > = (0..pool.capacity())
        .map(PageIndex)
        .filter(|&page| pool.view(page).bound)
        .map(|page| (pool.frame(page).0, page))
        .collect();
    for t in translations {
        let Some(&page) = by_frame.get(&t.frame.0) else {
            continue;
        };
        let listed = shared.mappers_of(page).unwrap_or_default();
        let me = Mapper {
            space: t.space,
            addr: t.addr,
        };
        if !listed.contains(&me) {
            return Err(MapViolation::Unlisted {
                space: t.space,
                addr: t.addr,
            });
        }
        if t.writable {
            let allowed = if pool.loans(page) != 0 {
                // A lent page is read only everywhere.
                false
            } else if pool.owner(page) != 0 {
                let object = shared
                    .maps
                    .table
                    .lock()
                    .objects
                    .get(&pool.owner(page))
                    .cloned();
                object.is_some_and(|object| {
                    let state = object.state.lock();
                    let mut ok = false;
                    state.rmap.overlapping(0, u64::MAX, |entry| {
                        let seg = &entry.seg;
                        if seg.space.id() == t.space
                            && seg.shared
                            && seg.writable
                            && seg.page_number(t.addr).is_some()
                        {
                            ok = true;
                        }
                    });
                    ok && pool.is_dirty(page)
                })
            } else {
                pool.refs(page) == 1
            };
            if !allowed {
                return Err(MapViolation::WritableNotAllowed {
                    space: t.space,
                    addr: t.addr,
                });
            }
        }
    }
    Ok(())
}
