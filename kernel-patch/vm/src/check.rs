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
//! The zero page's rules are in `check/zero_page.rs`.
//!
//! Some rules are type facts and have no check: a mount-cache image never holds a channel
//! (its kind, `McacheFile`, has no field for one, and the channel rules are written for
//! `ExecImage` alone), and each map holds images of its own kind only (the table's map
//! `ExecImage`s, the mount cache's `McacheImage`s).

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use hashbrown::HashSet;

use crate::file::FileIdentity;
use crate::file::PathKey;
use crate::frame::{PAGE_BYTES, PAGE_SIZE};
use crate::image::{ExecImage, Image, ImageKind, ImageState};
use crate::mcache::McacheImage;
use crate::page::{PageIndex, PagePool};
use crate::segment::{Entry, SegmentRef};
use crate::sync::{Arc, Ordering};
use crate::table::{shard_of, IdentityHasher};
use crate::vm::Vm;

mod loans;
mod zero_page;

pub use crate::mapping::check::{check_translations, MapViolation, Translation};

/// A broken rule, with the page index or image identity it was found at.
///
/// Fields: `page` is a page's index in the metadata array, `identity` the image's file,
/// the counts are named after the image's and page's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[allow(missing_docs)] // the fields are described above, once for all variants
pub enum Violation {
    /// A rule of the mappings (`mapping/check.rs`).
    Mapping(MapViolation),
    /// A table entry's key is not its image's identity (or its slot holds no image).
    TableKeyMismatch { identity: FileIdentity },
    /// An image or a mount-cache file is in another shard than its identity hashes to.
    WrongShard { identity: FileIdentity },
    /// A shard's idle list or mount-cache order is not in stamp order (at this entry).
    ListOutOfOrder { identity: FileIdentity },
    /// A mount-cache file has pages but is not on its shard's reclaim list (reclaim would
    /// never find them).
    McacheUnreclaimable { identity: FileIdentity },
    /// A shard's maps, slabs and lists disagree on how many entries it has.
    ShardCountMismatch { shard: usize },
    /// The counts that span the shards (images, idle images, mount-cache files) are not
    /// the shards' sums; the recorded ones are given.
    TableCountMismatch { images: u32, idle: u32, files: u32 },
    /// An image reachable from a segment is not the table's image of its identity: two
    /// images share an identity, or a referenced image was unlinked.
    DuplicateIdentity { identity: FileIdentity },
    /// A page is in a chain of an image other than the one its metadata names.
    PageOwnerMismatch { page: u32, identity: FileIdentity },
    /// A page is in a chain its offset does not hash to.
    PageInWrongChain { page: u32 },
    /// A page is in more than one chain (or twice in one).
    PageInTwoChains { page: u32 },
    /// Two pages of one image at the same offset.
    DuplicateOffset { identity: FileIdentity, offset: u64 },
    /// `pgref` is not the number of pages in the image's chains.
    PgrefMismatch {
        identity: FileIdentity,
        pgref: u32,
        chained: u32,
    },
    /// `pgref > refs`.
    PgrefAboveRef {
        identity: FileIdentity,
        pgref: u32,
        refs: u32,
    },
    /// The channel is present although `refs == pgref`, or missing although `refs > pgref`.
    ChannelPresence {
        identity: FileIdentity,
        refs: u32,
        pgref: u32,
        has_channel: bool,
    },
    /// An image is on the idle list although `refs != pgref`, or off it although
    /// `refs == pgref`.
    IdleMismatch {
        identity: FileIdentity,
        refs: u32,
        pgref: u32,
        idle: bool,
    },
    /// An image with no reference is still in the table.
    UnreferencedImage { identity: FileIdentity },
    /// A text segment in an image's list has count 0.
    DeadTextSegment { identity: FileIdentity },
    /// A page on the free list is referenced, cached, in a chain or has no frame.
    FreePageInUse { page: u32 },
    /// A page is marked free but is not on the free list.
    FreeFlagOffList { page: u32 },
    /// The free list's length differs from its count (or it has a cycle).
    FreeCountMismatch { counted: u32, recorded: u32 },
    /// A page was freed twice.
    DoubleFree { count: u32 },
    /// A page at ref 0 that is neither free nor cached: lost.
    PageLost { page: u32 },
    /// A page names an owner image but is in no chain.
    CachedPageNotInChain { page: u32 },
    /// A lent page is on the free list.
    LentPageFree { page: u32 },
    /// An orphan without loans, or with an owner or a reference (or on the free list).
    OrphanPage { page: u32, loans: u32, refs: u32 },
    /// The pages' loans are not the loans outstanding, or the orphans not those counted.
    LoanCount {
        lent: u64,
        recorded: u64,
        orphans: u64,
    },
    /// A page is marked as being loaded although no fault runs (a load that never
    /// finished or was never taken back).
    PageLoading { page: u32 },
    /// A page's reference count differs from the number of segment mappings of it (only
    /// checked when every live segment is given).
    PageRefMismatch { page: u32, refs: u32, mapped: u32 },
    /// An image's `refs` differs from `pgref` plus the segments using it (only checked when
    /// every live segment is given).
    ImageRefMismatch {
        identity: FileIdentity,
        refs: u32,
        expected: u32,
    },
    /// A segment maps a page that is free or unbound.
    MappedPageFree { page: u32 },
    /// A mount-cache map key is not its image's file.
    McacheKeyMismatch { identity: FileIdentity },
    /// A mount-cache image is in the map but marked unlinked.
    McacheUnlinked { identity: FileIdentity },
    /// A mount-cache page is referenced (its pages live at ref 0 in the chains).
    McachePageInUse { page: u32, refs: u32 },
    /// A mount-cache page's valid range is empty, inverted, past the page, or the page's
    /// offset is not page aligned.
    McacheBadRange { page: u32, start: usize, end: usize },
    /// A linked mount-cache image's `refs` is not `pgref + 1` (its pages and the map).
    McacheRefMismatch {
        identity: FileIdentity,
        refs: u32,
        pgref: u32,
    },
    /// A file holds more mount-cache pages than the per-file limit.
    McacheFileOverLimit {
        identity: FileIdentity,
        pages: u32,
        limit: u32,
    },
    /// The mount cache holds more pages than its limit.
    McacheOverLimit { pages: u32, limit: u32 },
    /// The mount cache's page count differs from its chains' population.
    McacheCountMismatch { counted: u32, recorded: u32 },
    /// More mount-cache files than the limit.
    McacheTooManyFiles { files: u32, limit: u32 },
    /// The same identity (with its version) is cached by an executable image and by the
    /// mount cache.
    DoubleCached { identity: FileIdentity },
    /// The zero page's frame holds a byte other than zero at `offset`.
    ZeroFrameWritten { offset: usize },
    /// A page of the pool has the zero page's frame (so it may be free, cached or written).
    ZeroFrameInPool { page: u32 },
    /// A segment maps the zero page at `addr`, a page that holds file bytes.
    ZeroPageOverFile { addr: u64 },
    /// The count of entries mapping the zero page is not what the segments hold (only
    /// checked when every live segment is given).
    ZeroEntryMismatch { counted: u64, recorded: u64 },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vm invariant violated: {self:?}")
    }
}

impl core::error::Error for Violation {}

/// What the checker counted, on success.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Pages with a frame.
    pub bound_pages: u32,
    /// Pages on the free list.
    pub free_pages: u32,
    /// Pages in executable images' chains.
    pub cached_pages: u32,
    /// Pages neither free nor cached, at ref > 0 (private, mapped).
    pub private_pages: u32,
    /// Images in the table.
    pub images: u32,
    /// Images on the idle list.
    pub idle_images: u32,
    /// Images holding a channel.
    pub open_channels: u32,
    /// Files in the mount cache.
    pub mcache_files: u32,
    /// Pages in mount-cache images' chains.
    pub mcache_pages: u32,
    /// Mapped file objects, each holding its file's channel.
    pub object_channels: u32,
}

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
    check_mount_cache(vm, &mcache, &mut chained, &mut report)?;
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
        check_segments(vm, segments, &images)?;
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

/// The mount cache's rules (see [`check_invariants`]).
fn check_mount_cache(
    vm: &Vm,
    files: &[(Arc<McacheImage>, FileIdentity)],
    chained: &mut [u8],
    report: &mut CheckReport,
) -> Result<(), Violation> {
    let shared = &*vm.shared;
    let pool = &shared.pool;
    let config = shared.mcache_config;
    let file_limit = u32::try_from(config.max_file_bytes / PAGE_BYTES).unwrap_or(u32::MAX);
    let total_limit = shared.mcache_page_limit();
    let files_now = files.len() as u32;
    if files_now > config.max_files {
        return Err(Violation::McacheTooManyFiles {
            files: files_now,
            limit: config.max_files,
        });
    }
    let mut total = 0u32;
    for (image, identity) in files {
        let identity = *identity;
        let state = image.state.lock();
        if !state.kind.linked {
            return Err(Violation::McacheUnlinked { identity });
        }
        let count = walk_pages(pool, image, &state, identity, chained, |page, view| {
            let (start, end) = view.valid;
            if view.refs != 0 {
                Some(Violation::McachePageInUse {
                    page: page.0,
                    refs: view.refs,
                })
            } else if start >= end || end > PAGE_SIZE || view.offset % PAGE_BYTES != 0 {
                Some(Violation::McacheBadRange {
                    page: page.0,
                    start,
                    end,
                })
            } else {
                None
            }
        })?;
        let refs = image.refs.load(Ordering::Acquire);
        let pgref = image.pgref.load(Ordering::Acquire);
        if count != pgref {
            return Err(Violation::PgrefMismatch {
                identity,
                pgref,
                chained: count,
            });
        }
        if refs != pgref + 1 {
            return Err(Violation::McacheRefMismatch {
                identity,
                refs,
                pgref,
            });
        }
        if pgref > file_limit {
            return Err(Violation::McacheFileOverLimit {
                identity,
                pages: pgref,
                limit: file_limit,
            });
        }
        total += count;
    }
    if total > total_limit {
        return Err(Violation::McacheOverLimit {
            pages: total,
            limit: total_limit,
        });
    }
    let recorded = shared.mcache_pages.load(Ordering::Acquire);
    if recorded != total {
        return Err(Violation::McacheCountMismatch {
            counted: total,
            recorded,
        });
    }
    report.mcache_files = files_now;
    report.mcache_pages = total;
    Ok(())
}

/// The accounting checks that need every live segment.
fn check_segments(
    vm: &Vm,
    segments: &[&SegmentRef],
    images: &[Arc<ExecImage>],
) -> Result<(), Violation> {
    let shared = &*vm.shared;
    let pool = &shared.pool;
    let capacity = pool.capacity();
    let mut mapped = vec![0u32; capacity as usize];
    let mut seen: HashSet<u64, core::hash::BuildHasherDefault<IdentityHasher>> = HashSet::default();
    // (image serial, segments using it)
    let mut users: Vec<(u64, u32)> = Vec::new();
    let mut zero_entries = 0u64;
    for segment in segments {
        let seg = &*segment.seg;
        if !seen.insert(seg.serial) {
            continue;
        }
        if let Some(image) = &seg.image {
            let linked = images
                .iter()
                .any(|linked| linked.serial == image.serial && linked.identity == image.identity);
            if !linked {
                return Err(Violation::DuplicateIdentity {
                    identity: image.identity,
                });
            }
            match users.iter_mut().find(|(serial, _)| *serial == image.serial) {
                Some((_, count)) => *count += 1,
                None => users.push((image.serial, 1)),
            }
        }
        let table = seg.table.lock();
        let mut problem = None;
        table.for_each(|number, entry| {
            let page = match entry {
                Entry::Page(page) => page,
                Entry::Zero => {
                    zero_entries += 1;
                    if let Some(found) = zero_page::check_entry(seg, number) {
                        problem.get_or_insert(found);
                    }
                    return;
                }
            };
            let view = pool.view(page);
            if !view.bound || view.free {
                problem.get_or_insert(Violation::MappedPageFree { page: page.0 });
            }
            mapped[page.0 as usize] += 1;
        });
        if let Some(problem) = problem {
            return Err(problem);
        }
    }
    // Mappings hold page references too, and map the zero page too.
    zero_entries += crate::mapping::check::count_mapped(vm, &mut mapped);
    zero_page::check_entry_count(vm, zero_entries)?;
    for index in 0..capacity {
        let view = pool.view(PageIndex(index));
        if view.bound && view.refs != mapped[index as usize] {
            return Err(Violation::PageRefMismatch {
                page: index,
                refs: view.refs,
                mapped: mapped[index as usize],
            });
        }
    }
    for image in images {
        let using = users
            .iter()
            .find(|(serial, _)| *serial == image.serial)
            .map_or(0, |(_, count)| *count);
        let refs = image.refs.load(Ordering::Acquire);
        let expected = image.pgref.load(Ordering::Acquire) + using;
        if refs != expected {
            return Err(Violation::ImageRefMismatch {
                identity: image.identity,
                refs,
                expected,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
