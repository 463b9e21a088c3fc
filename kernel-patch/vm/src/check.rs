//! The invariant checker: walks every page and image and says whether the caches keep
//! their rules. For tests and for the hosted kernel, at a quiescent moment (no other vm
//! operation running); during concurrent operations it may report transient states.
//!
//! Lock order: the checker takes the table lock alone, then each image lock alone, then
//! the free-list lock, then each segment lock alone; it never holds two at once.
//!
//! Mount-cache images (`mcache/`) are walked like executable images, with their own
//! rules: every page at ref 0 with a sane valid range, `refs == pgref + 1`, the per-file
//! and total limits, and no identity (with its version) cached both by an executable image
//! and by the mount cache.
//!
//! The rules by subject: the mount cache's in `check/mount_cache.rs`, those needing every
//! live segment in `check/segments.rs`, the zero page's in `check/zero_page.rs`, the loans'
//! in `check/loans.rs`; what the checker reports is `check/violation.rs`.
//!
//! Some rules are type facts and have no check: a mount-cache image never holds a channel
//! (its kind, `McacheFile`, has no field for one, and the channel rules are written for
//! `ExecImage` alone), and each map holds images of its own kind only (the table's map
//! `ExecImage`s, the mount cache's `McacheImage`s).

use alloc::vec;
use alloc::vec::Vec;

use hashbrown::HashSet;

use crate::file::FileIdentity;
use crate::file::PathKey;
use crate::image::{Image, ImageKind, ImageState};
use crate::page::{PageIndex, PagePool};
use crate::segment::SegmentRef;
use crate::sync::Ordering;
use crate::table::{shard_of, IdentityHasher};
use crate::vm::Vm;

mod loans;
mod mount_cache;
mod segments;
mod violation;
mod zero_page;

pub use crate::mapping::check::{check_translations, MapViolation, Translation};
pub use violation::{CheckReport, Violation};

/// References to the instance alive now: `Vm` handles, segments, and the channels of
/// active images (each [`ImageRef`](crate::ImageRef) reaches the instance through its
/// image's channel and adds none). A snapshot, for tests of what an attach shares.
pub fn instance_handles(vm: &Vm) -> usize {
    crate::sync::Arc::count(&vm.shared)
}

/// Clones alive now of the channel of `identity`'s image (`None`: no image, or no channel):
/// the image's own, plus one a put holds for a moment. A snapshot, for tests of what an
/// attach shares (an `ImageRef` holds none).
pub fn channel_clones(vm: &Vm, identity: &FileIdentity) -> Option<usize> {
    // The table lock, then (released) the image lock: never both, as attach.
    let image = vm.shared.table.lock(identity).image(identity)?.clone();
    let state = image.state.lock();
    state.kind.chan.as_ref().map(crate::sync::Arc::count)
}

/// Checks every rule of the page and image caches:
///
/// - every bound page is free, or in exactly one chain (of the image its metadata names, in
///   the chain its offset hashes to), or private at ref > 0; no page is lost at ref 0;
/// - the free list holds only uncached, unreferenced pages and its count is right; no page
///   was freed twice; no page is loaned, nor marked as being loaded (the checker runs when
///   no fault does);
/// - the zero page's frame holds zeros and is no page's of the pool (so never free nor in a
///   chain);
/// - each executable image: `pgref` equals its chain population, `pgref <= refs`, the channel is present
///   exactly while `refs > pgref`, it is idle exactly while `refs == pgref`, no two of its
///   pages share an offset, its text segments are alive;
/// - table keys are identities and no two images share one;
/// - each mount-cache image: in the mount cache's map under its key and marked linked,
///   `pgref` equals its chain population and is within the per-file limit,
///   `refs == pgref + 1`, every page at ref 0 with a page-aligned offset and a valid range
///   `start < end <= PAGE_SIZE`; the pages in all are within the total limit and equal the
///   mount cache's count; no more files than the limit; and no mount-cache file's identity
///   (with the version it caches) is an executable image's in the table (no double
///   caching; in particular a file whose channel became an image's channel is gone).
///
/// That a mount-cache image holds no channel, and that each map holds images of its own
/// kind, are not checked: the types say so (see the module docs).
///
/// With `segments` = every live segment (each shared segment at least once), it also checks
/// that every page's count equals its mappings, that every image's `refs` is `pgref` plus
/// the segments using it, that each segment's image is the table's image of its
/// identity, that the zero page is mapped only where no file byte is and that the count
/// of its entries is theirs.
pub fn check_invariants(
    vm: &Vm,
    segments: Option<&[&SegmentRef]>,
) -> Result<CheckReport, Violation> {
    let shared = &*vm.shared;
    let pool = &shared.pool;
    let capacity = pool.capacity();
    let mut report = CheckReport::default();

    let (images, idle, mcache) = {
        let shards = shared.table.lock_all();
        let mut images = Vec::new();
        let mut idle: HashSet<u64, core::hash::BuildHasherDefault<IdentityHasher>> =
            HashSet::default();
        let mut mcache = Vec::new();
        let (mut idle_count, mut file_count) = (0u32, 0u32);
        for (index, table) in shards.iter().enumerate() {
            for (key, image) in table.keyed_images() {
                let Some(image) = image.filter(|image| *key == image.identity) else {
                    return Err(Violation::TableKeyMismatch { identity: *key });
                };
                if shard_of(&PathKey::of(key)) != index {
                    return Err(Violation::WrongShard { identity: *key });
                }
                images.push(image.clone());
            }
            let mut last_stamp = None;
            for (image, stamp) in table.idle_list() {
                if last_stamp.is_some_and(|last| stamp <= last) {
                    return Err(Violation::ListOutOfOrder {
                        identity: image.identity,
                    });
                }
                last_stamp = Some(stamp);
                idle.insert(image.serial);
            }
            let (map_len, files_len) = table.map_lens();
            if map_len != table.image_count() as usize
                || files_len != table.file_count() as usize
                || table.idle_list().count() != table.idle_count() as usize
            {
                return Err(Violation::ShardCountMismatch { shard: index });
            }
            idle_count += table.idle_count();
            file_count += table.file_count();
            for (key, image) in table.keyed_files() {
                let Some(image) = image.filter(|image| *key == PathKey::of(&image.identity)) else {
                    return Err(Violation::McacheKeyMismatch {
                        identity: key.identity(0),
                    });
                };
                if shard_of(key) != index {
                    return Err(Violation::WrongShard {
                        identity: image.identity,
                    });
                }
                // `vers` changes only under the table lock too, so this is exact.
                let identity = FileIdentity {
                    version: image.kind.vers.load(Ordering::Relaxed),
                    ..image.identity
                };
                if table.contains_image(&identity) {
                    return Err(Violation::DoubleCached { identity });
                }
                mcache.push((image.clone(), identity));
            }
            let [by_use, with_pages] = table.file_orders();
            for order in [by_use.collect::<Vec<_>>(), with_pages.collect()] {
                let mut last_stamp = None;
                for (image, stamp) in &order {
                    if last_stamp.is_some_and(|last| *stamp <= last) {
                        return Err(Violation::ListOutOfOrder {
                            identity: image.identity,
                        });
                    }
                    last_stamp = Some(*stamp);
                }
            }
            // Every file is on eviction's list; every file with pages on reclaim's.
            let [by_use, with_pages] = table.file_orders();
            let on_reclaims: HashSet<u64, core::hash::BuildHasherDefault<IdentityHasher>> =
                with_pages.map(|(image, _)| image.serial).collect();
            let missing = table.files().find(|image| {
                image.pgref.load(Ordering::Relaxed) > 0 && !on_reclaims.contains(&image.serial)
            });
            if let Some(image) = missing {
                return Err(Violation::McacheUnreclaimable {
                    identity: image.identity,
                });
            }
            if by_use.count() != files_len {
                return Err(Violation::ShardCountMismatch { shard: index });
            }
        }
        // Every shard is locked: the counts that span them are exact now.
        let counts = &shared.table.counts;
        let recorded = (
            counts.images.load(Ordering::Acquire),
            counts.idle.load(Ordering::Relaxed),
            counts.files.load(Ordering::Acquire),
        );
        if recorded != (images.len() as u32, idle_count, file_count) {
            return Err(Violation::TableCountMismatch {
                images: recorded.0,
                idle: recorded.1,
                files: recorded.2,
            });
        }
        drop(shards);
        (images, idle, mcache)
    };
    report.images = images.len() as u32;
    report.idle_images = idle.len() as u32;

    // Times each page is seen in a chain.
    let mut chained = vec![0u8; capacity as usize];
    for image in &images {
        let state = image.state.lock();
        let refs = image.refs.load(Ordering::Acquire);
        let pgref = image.pgref.load(Ordering::Acquire);
        let identity = image.identity;
        let count = walk_pages(pool, image, &state, identity, &mut chained, |_, _| None)?;
        if count != pgref {
            return Err(Violation::PgrefMismatch {
                identity,
                pgref,
                chained: count,
            });
        }
        if pgref > refs {
            return Err(Violation::PgrefAboveRef {
                identity,
                pgref,
                refs,
            });
        }
        if refs == 0 {
            return Err(Violation::UnreferencedImage { identity });
        }
        let has_channel = state.kind.chan.is_some();
        if has_channel != (refs > pgref) {
            return Err(Violation::ChannelPresence {
                identity,
                refs,
                pgref,
                has_channel,
            });
        }
        let is_idle = idle.contains(&image.serial);
        if is_idle != (refs == pgref) {
            return Err(Violation::IdleMismatch {
                identity,
                refs,
                pgref,
                idle: is_idle,
            });
        }
        if state
            .kind
            .texts
            .iter()
            .any(|text| text.count.load(Ordering::Acquire) == 0)
        {
            return Err(Violation::DeadTextSegment { identity });
        }
        report.cached_pages += count;
        report.open_channels += u32::from(has_channel);
    }
    mount_cache::check_mount_cache(vm, &mcache, &mut chained, &mut report)?;
    report.object_channels =
        crate::mapping::check::check_objects(vm, &mut chained).map_err(Violation::Mapping)?;

    let mut on_free_list = vec![false; capacity as usize];
    let mut counted = 0u32;
    let mut free_problem = None;
    let recorded = pool.walk_free(capacity, |page| {
        counted += 1;
        let view = pool.view(page);
        let seen = core::mem::replace(&mut on_free_list[page.0 as usize], true);
        if seen
            || !view.bound
            || !view.free
            || view.refs != 0
            || view.owner != 0
            || chained[page.0 as usize] != 0
        {
            free_problem.get_or_insert(Violation::FreePageInUse { page: page.0 });
        }
    });
    if let Some(problem) = free_problem {
        return Err(problem);
    }
    if counted != recorded {
        return Err(Violation::FreeCountMismatch { counted, recorded });
    }
    report.free_pages = counted;
    let double_frees = pool.double_frees();
    if double_frees != 0 {
        return Err(Violation::DoubleFree {
            count: double_frees,
        });
    }

    for index in 0..capacity {
        let view = pool.view(PageIndex(index));
        let page = index;
        if view.loading {
            return Err(Violation::PageLoading { page });
        }
        if !view.bound {
            continue;
        }
        report.bound_pages += 1;
        let is_free = on_free_list[index as usize];
        if view.free && !is_free {
            return Err(Violation::FreeFlagOffList { page });
        }
        if view.owner != 0 && chained[index as usize] == 0 {
            return Err(Violation::CachedPageNotInChain { page });
        }
        if !is_free && view.owner == 0 && !view.orphan {
            if view.refs == 0 {
                return Err(Violation::PageLost { page });
            }
            report.private_pages += 1;
        }
    }

    loans::check_loans(vm)?;
    zero_page::check_frame(vm)?;
    if let Some(segments) = segments {
        segments::check_segments(vm, segments, &images)?;
    }
    Ok(report)
}

/// Walks one image's chains: counts each page in `chained` and checks that it is in one
/// chain only, of the image its metadata names, in the chain its offset hashes to, at an
/// offset no other page of the image has; then `extra`. Returns the pages walked.
fn walk_pages<K: ImageKind>(
    pool: &PagePool,
    image: &Image<K>,
    state: &ImageState<K::Locked>,
    identity: FileIdentity,
    chained: &mut [u8],
    mut extra: impl FnMut(PageIndex, &crate::page::PageView) -> Option<Violation>,
) -> Result<u32, Violation> {
    let mut count = 0u32;
    let mut offsets: HashSet<u64, core::hash::BuildHasherDefault<IdentityHasher>> =
        HashSet::default();
    let mut found = None;
    image.walk_chains(state, pool, pool.capacity(), |chain, page| {
        count += 1;
        let view = pool.view(page);
        let slot = &mut chained[page.0 as usize];
        *slot = slot.saturating_add(1);
        let problem = if *slot > 1 {
            Some(Violation::PageInTwoChains { page: page.0 })
        } else if view.owner != image.serial {
            Some(Violation::PageOwnerMismatch {
                page: page.0,
                identity,
            })
        } else if state.chain_of(view.offset) != chain {
            Some(Violation::PageInWrongChain { page: page.0 })
        } else if !offsets.insert(view.offset) {
            Some(Violation::DuplicateOffset {
                identity,
                offset: view.offset,
            })
        } else {
            extra(page, &view)
        };
        if found.is_none() {
            found = problem;
        }
    });
    match found {
        Some(problem) => Err(problem),
        None => Ok(count),
    }
}

#[cfg(test)]
mod tests;
