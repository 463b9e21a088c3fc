//! Statistics a user can read (a `/dev/swap`-like text file, or a struct).

use core::fmt;

use crate::channel::PARK_QUEUES;
use crate::sync::{AtomicU64, Ordering};
use crate::table::SHARDS;
use crate::vm::Vm;

/// A snapshot of the caches' state and counters. Taken without stopping other operations,
/// so the numbers may be a moment apart from each other.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Statistics {
    /// Images used by at least one segment or holder.
    pub images_active: u32,
    /// Images kept only for their cached pages (no channel held).
    pub images_idle: u32,
    /// Pages in executable images' hash chains (the mount cache's are `mcache_pages`).
    pub cached_pages: u64,
    /// Cached pages of idle images.
    pub idle_pages: u64,
    /// Pages on the free list.
    pub free_pages: u32,
    /// Pages with a frame (free, cached or mapped).
    pub pool_pages: u32,
    /// The most pages vm may hold.
    pub max_pages: u32,
    /// Reclaim passes run.
    pub reclaim_runs: u64,
    /// Cached pages reclaimed.
    pub reclaimed_pages: u64,
    /// Channels a reclaim pass let go of: the image's last user went away while reclaim
    /// held its short reference, so reclaim's put (on a fault's thread, perhaps) was the
    /// one that found `ref == pgref`. The files were parked, not closed.
    pub reclaim_channel_drops: u64,
    /// Frames given back to the kernel: free pages past `Config::max_free_pages` (after
    /// segment drops, fault ends, reclaims, forgets and the mount cache's wipes, forgets,
    /// relabels and evictions), and [`Vm::shrink`].
    pub frames_released: u64,
    /// Free pages whose frames were not reused because the kernel said something else
    /// still held them ([`FrameAllocator::in_use_elsewhere`]); vm let go of each
    /// ([`FrameAllocator::free`]) and bound a fresh frame instead.
    ///
    /// [`FrameAllocator::in_use_elsewhere`]: crate::FrameAllocator::in_use_elsewhere
    /// [`FrameAllocator::free`]: crate::FrameAllocator::free
    pub frames_in_use_elsewhere: u64,
    /// Files parked for [`Vm::run_parked_closes`] at the moment of the snapshot.
    pub parked_closes: u64,
    /// Attaches that found their image in the cache.
    pub attach_hits: u64,
    /// Attaches that made a new image.
    pub attach_misses: u64,
    /// Pages allocated (for loads, copies, zero fill and the mount cache) since the start.
    pub pages_allocated: u64,
    /// Files with a mount-cache entry.
    pub mcache_files: u32,
    /// Pages the mount cache holds.
    pub mcache_pages: u64,
    /// Mount-cache reads answered in full from the cache.
    pub mcache_hits: u64,
    /// Mount-cache reads of a cached file that needed the server for some or all bytes.
    pub mcache_misses: u64,
    /// Times a file's cached data was thrown away as possibly stale: a new version or
    /// length at open, a create or truncating open, a length change, an explicit wipe, a
    /// write whose outcome is unknown or that overlapped another.
    pub mcache_wipes: u64,
    /// Pages read from image files by faults (each page of an image once, unless reclaimed
    /// meanwhile or a read failed).
    pub page_loads: u64,
    /// Times a fault waited for a page another fault was loading, instead of reading it too.
    pub page_load_waits: u64,
    /// Faults that never block ([`SegmentRef::fault_resident_only`]) refused with
    /// [`FaultError::WouldBlock`]: the page had to be read or was being read. On a kernel
    /// that uses them for usercopies under its locks, each is an `EFAULT` a prefault missed.
    ///
    /// [`SegmentRef::fault_resident_only`]: crate::SegmentRef::fault_resident_only
    /// [`FaultError::WouldBlock`]: crate::FaultError::WouldBlock
    pub faults_would_block: u64,
    /// Read faults on untouched zero-fill memory that mapped the zero page: each one a
    /// page (and a frame) not allocated at that fault.
    pub zero_page_maps: u64,
    /// Writes that replaced a mapping of the zero page with a private zeroed page.
    pub zero_page_breaks: u64,
    /// Program segments' page-table entries that map the zero page now (a mapping's are
    /// not counted; its reads and writes are, in the two above), none of which holds a
    /// frame: the
    /// frames it saves at this moment against a zeroed page for each (an entry a fork
    /// copied included, where without the zero page parent and child would share one).
    pub zero_page_entries: u64,
    /// Mappings alive ([`MappingRef`](crate::MappingRef)s).
    pub mappings: u64,
    /// Reverse-map records: one per mapping in its object's interval set, one per private
    /// mapping in its lineage's; never one per page.
    pub rmap_records: u64,
    /// The memory those records take (their vectors' slots), in bytes.
    pub rmap_bytes: u64,
    /// Pages of mapped objects written through a shared mapping and not written back yet.
    pub dirty_pages: u64,
    /// Dirty pages written back to their files.
    pub writebacks: u64,
    /// Write-backs the file refused (the page stayed dirty).
    pub writeback_errors: u64,
    /// Dirty pages thrown away unwritten: their file's channel is gone (a dead mount).
    pub dirty_pages_dropped: u64,
    /// Times a write-back waited at an object's truncate gate (a truncate of the object
    /// was waiting for the write-backs in flight).
    pub truncate_gate_waits: u64,
    /// Faults on pages wholly past the end of a mapped file (bus errors).
    pub bus_errors: u64,
    /// Pages moved to another frame (`Vm::migrate`, `Vm::vacate`).
    pub migrations: u64,
    /// Loans made ([`MappingRef::lend`](crate::MappingRef::lend)).
    pub loans: u64,
    /// Pool pages lent now, one a page a loan (the zero page's loans are not counted:
    /// nothing counts them).
    pub pages_lent: u64,
    /// Pages lent as the zero page, since the start: each a page not allocated.
    pub zero_page_loans: u64,
    /// Lent pages their owner let go of, kept by their loans until the last returns.
    pub orphan_pages: u64,
    /// Stores that broke a loan (the writer got a copy; the loan kept the old bytes).
    pub loan_breaks: u64,
    /// Translations removed to write-protect pages at their first loan.
    pub loan_invalidations: u64,
    /// Lent dirty pages a write of the kernel's (`Vm::wrote_mapped`, a truncate's
    /// zeroing) changed in place, for want of memory for a copy: their loans saw the
    /// change. 0 unless memory ran out.
    pub loan_snapshots_lost: u64,
}

impl Vm {
    /// The current statistics.
    pub fn statistics(&self) -> Statistics {
        let shared = &*self.shared;
        let mut stats = Statistics::default();
        // One shard at a time: the sums are of moments close together, not of one instant.
        for shard in 0..SHARDS {
            let table = shared.table.lock_shard(shard);
            let idle = table.idle_count();
            stats.images_idle += idle;
            stats.images_active += table.image_count().saturating_sub(idle);
            for image in table.images() {
                let pgref = u64::from(image.pgref.load(Ordering::Relaxed));
                stats.cached_pages += pgref;
                if table.is_idle(image) {
                    stats.idle_pages += pgref;
                }
            }
            stats.mcache_files += table.file_count();
            stats.mcache_pages += table
                .files()
                .map(|image| u64::from(image.pgref.load(Ordering::Relaxed)))
                .sum::<u64>();
        }
        let (free, bound) = shared.pool.counts();
        stats.free_pages = free;
        stats.pool_pages = bound;
        stats.max_pages = shared.pool.capacity();
        for counts in &shared.attach_counts {
            stats.attach_hits += counts.hits.load(Ordering::Relaxed);
            stats.attach_misses += counts.misses.load(Ordering::Relaxed);
        }
        let counters = &shared.counters;
        stats.reclaim_runs = counters.reclaim_runs.load(Ordering::Relaxed);
        stats.reclaimed_pages = counters.reclaimed_pages.load(Ordering::Relaxed);
        stats.reclaim_channel_drops = counters.reclaim_channel_drops.load(Ordering::Relaxed);
        stats.parked_closes = shared.parked.len() as u64;
        stats.frames_released = counters.frames_released.load(Ordering::Relaxed);
        stats.frames_in_use_elsewhere = shared.pool.frames_in_use_elsewhere();
        stats.pages_allocated = counters.pages_allocated.load(Ordering::Relaxed);
        stats.mcache_hits = counters.mcache_hits.load(Ordering::Relaxed);
        stats.mcache_misses = counters.mcache_misses.load(Ordering::Relaxed);
        stats.mcache_wipes = counters.mcache_wipes.load(Ordering::Relaxed);
        stats.page_loads = counters.page_loads.load(Ordering::Relaxed);
        stats.page_load_waits = counters.page_load_waits.load(Ordering::Relaxed);
        stats.faults_would_block = counters.faults_would_block.load(Ordering::Relaxed);
        (
            stats.zero_page_entries,
            stats.zero_page_maps,
            stats.zero_page_breaks,
        ) = shared.zero.counts();
        let maps = &shared.maps.counters;
        stats.mappings = maps.mappings.load(Ordering::Relaxed);
        stats.rmap_records = maps.rmap_records.load(Ordering::Relaxed);
        stats.rmap_bytes = stats.rmap_records * crate::mapping::RMAP_RECORD_BYTES;
        stats.dirty_pages = maps.dirty_pages.load(Ordering::Relaxed);
        stats.writebacks = maps.writebacks.load(Ordering::Relaxed);
        stats.writeback_errors = maps.writeback_errors.load(Ordering::Relaxed);
        stats.dirty_pages_dropped = maps.dirty_pages_dropped.load(Ordering::Relaxed);
        stats.truncate_gate_waits = maps.truncate_gate_waits.load(Ordering::Relaxed);
        stats.bus_errors = maps.bus_errors.load(Ordering::Relaxed);
        stats.migrations = maps.migrations.load(Ordering::Relaxed);
        (
            stats.pages_lent,
            stats.zero_page_loans,
            stats.loan_breaks,
            stats.loan_invalidations,
            stats.loans,
            stats.loan_snapshots_lost,
        ) = shared.loan_counts();
        stats.orphan_pages = shared.pool.orphans();
        stats
    }
}

impl fmt::Display for Statistics {
    /// One `name value` line per field, for a text file a user reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "images_active {}", self.images_active)?;
        writeln!(f, "images_idle {}", self.images_idle)?;
        writeln!(f, "cached_pages {}", self.cached_pages)?;
        writeln!(f, "idle_pages {}", self.idle_pages)?;
        writeln!(f, "free_pages {}", self.free_pages)?;
        writeln!(f, "pool_pages {}", self.pool_pages)?;
        writeln!(f, "max_pages {}", self.max_pages)?;
        writeln!(f, "reclaim_runs {}", self.reclaim_runs)?;
        writeln!(f, "reclaimed_pages {}", self.reclaimed_pages)?;
        writeln!(f, "reclaim_channel_drops {}", self.reclaim_channel_drops)?;
        writeln!(f, "parked_closes {}", self.parked_closes)?;
        writeln!(f, "frames_released {}", self.frames_released)?;
        writeln!(
            f,
            "frames_in_use_elsewhere {}",
            self.frames_in_use_elsewhere
        )?;
        writeln!(f, "attach_hits {}", self.attach_hits)?;
        writeln!(f, "attach_misses {}", self.attach_misses)?;
        writeln!(f, "pages_allocated {}", self.pages_allocated)?;
        writeln!(f, "mcache_files {}", self.mcache_files)?;
        writeln!(f, "mcache_pages {}", self.mcache_pages)?;
        writeln!(f, "mcache_hits {}", self.mcache_hits)?;
        writeln!(f, "mcache_misses {}", self.mcache_misses)?;
        writeln!(f, "mcache_wipes {}", self.mcache_wipes)?;
        writeln!(f, "page_loads {}", self.page_loads)?;
        writeln!(f, "page_load_waits {}", self.page_load_waits)?;
        writeln!(f, "faults_would_block {}", self.faults_would_block)?;
        writeln!(f, "zero_page_maps {}", self.zero_page_maps)?;
        writeln!(f, "zero_page_breaks {}", self.zero_page_breaks)?;
        writeln!(f, "zero_page_entries {}", self.zero_page_entries)?;
        writeln!(f, "mappings {}", self.mappings)?;
        writeln!(f, "rmap_records {}", self.rmap_records)?;
        writeln!(f, "rmap_bytes {}", self.rmap_bytes)?;
        writeln!(f, "dirty_pages {}", self.dirty_pages)?;
        writeln!(f, "writebacks {}", self.writebacks)?;
        writeln!(f, "writeback_errors {}", self.writeback_errors)?;
        writeln!(f, "dirty_pages_dropped {}", self.dirty_pages_dropped)?;
        writeln!(f, "truncate_gate_waits {}", self.truncate_gate_waits)?;
        writeln!(f, "bus_errors {}", self.bus_errors)?;
        writeln!(f, "migrations {}", self.migrations)?;
        writeln!(f, "loans {}", self.loans)?;
        writeln!(f, "pages_lent {}", self.pages_lent)?;
        writeln!(f, "zero_page_loans {}", self.zero_page_loans)?;
        writeln!(f, "orphan_pages {}", self.orphan_pages)?;
        writeln!(f, "loan_breaks {}", self.loan_breaks)?;
        writeln!(f, "loan_invalidations {}", self.loan_invalidations)?;
        writeln!(f, "loan_snapshots_lost {}", self.loan_snapshots_lost)
    }
}

/// Attach's hits and misses counted by the CPU that attached (a park queue's number,
/// `channel::QueueId`; attaches that say no CPU count in the shared queue's pair), each
/// pair alone on its cache lines: two CPUs attaching, even the one executable, share no
/// counter here (per table shard, two attaches of one file bumped one line).
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct AttachCounts {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
}

/// One [`AttachCounts`] a park queue.
pub(crate) type AttachCountsByCpu = [AttachCounts; PARK_QUEUES];
