//! The vm instance: its configuration, its shared state and its errors.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use crate::channel::{ImageChannel, ParkedCloses, QueueId};
use crate::fault::FaultError;
use crate::file::{FileError, FileIdentity, ImageFile};
use crate::frame::{AllocError, AllocSite, Frame, FrameAllocator, PAGE_SIZE};
use crate::hot::HotImages;
use crate::image::ExecImage;
use crate::mapping::Mappings;
use crate::mcache::MountCacheConfig;
use crate::page::{PageIndex, PagePool};
use crate::stats::AttachCountsByCpu;
use crate::sync::{Arc, AtomicU32, AtomicU64, Mutex, Ordering};
use crate::table::Table;
use crate::wait::{PageWait, SpinWait};
use crate::zero::ZeroPage;

/// Limits of a [`Vm`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Pages (frames) vm may hold at once, cached and mapped together.
    pub max_pages: u32,
    /// Images in the cache at once, active and idle (Plan 9's `conf.nimage`).
    pub max_images: u32,
    /// Idle images kept; past this the least recently used idle image loses its pages and
    /// goes away.
    pub max_idle_images: u32,
    /// Pages reclaim tries to free when a page allocation finds no free page.
    pub reclaim_batch: u32,
    /// Free pages vm keeps with their frames; past this, the frames of free pages go back
    /// to the kernel ([`FrameAllocator::free`]) when segments go away, faults end, reclaim
    /// runs, a device is forgotten and the mount cache frees pages (a wipe, forget,
    /// relabel or eviction). [`Vm::shrink`] gives back the rest.
    pub max_free_pages: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_pages: 16 * 1024,
            max_images: 1024,
            max_idle_images: 64,
            reclaim_batch: 64,
            max_free_pages: 64,
        }
    }
}

/// Why a layout given to [`Vm::exec`] or a segment constructor was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayoutError {
    /// The virtual address and the file offset differ modulo the page size.
    Misaligned,
    /// An address or length overflows.
    Overflow,
    /// More file bytes than memory bytes.
    FileLargerThanMemory,
    /// The file range runs past the end of the file.
    BeyondFile,
    /// A read-only (text) segment has pages past its file range: text is never zero-filled.
    TextBeyondFile,
    /// Two segments overlap.
    Overlap,
    /// A zero-length segment.
    Empty,
    /// A range to carve out of a mapping (`MappingRef::carve`) that is not inside it.
    OutsideMapping,
    /// A zero-fill segment was asked for with a kind other than `Bss` or `Stack`.
    NotZeroFill,
}

/// An error of a vm operation other than a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VmError {
    /// A page or a vm object could not be allocated, even after reclaim.
    NoMemory,
    /// The image table is full of active images.
    ImageTableFull,
    /// The requested segment layout is invalid.
    BadLayout(LayoutError),
    /// The file failed.
    Io(FileError),
}

impl fmt::Display for VmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoMemory => f.write_str("out of memory"),
            Self::ImageTableFull => f.write_str("image table full"),
            Self::BadLayout(why) => write!(f, "bad segment layout: {why:?}"),
            Self::Io(err) => write!(f, "file error: {err}"),
        }
    }
}

impl core::error::Error for VmError {}

impl From<AllocError> for VmError {
    fn from(_: AllocError) -> Self {
        Self::NoMemory
    }
}

/// Event counters behind [`Statistics`](crate::Statistics).
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) reclaim_runs: AtomicU64,
    pub(crate) reclaimed_pages: AtomicU64,
    pub(crate) pages_allocated: AtomicU64,
    pub(crate) mcache_hits: AtomicU64,
    pub(crate) mcache_misses: AtomicU64,
    pub(crate) mcache_wipes: AtomicU64,
    pub(crate) page_loads: AtomicU64,
    pub(crate) page_load_waits: AtomicU64,
    pub(crate) faults_would_block: AtomicU64,
    pub(crate) reclaim_channel_drops: AtomicU64,
    pub(crate) frames_released: AtomicU64,
}

/// Everything a vm instance shares between its handles.
pub(crate) struct VmState {
    pub(crate) frames: Box<dyn FrameAllocator>,
    pub(crate) pool: PagePool,
    /// The image table, in shards (`table.rs`); each shard's lock is "the table lock" for
    /// the files in it.
    pub(crate) table: Table,
    /// Serialises reclaim passes. Taken before any image or table lock, never under one.
    pub(crate) reclaim_lock: Mutex<()>,
    pub(crate) config: Config,
    pub(crate) mcache_config: MountCacheConfig,
    /// Pages in mount-cache chains, plus pages reserved for a fill in progress; at most
    /// the mount cache's page limit.
    pub(crate) mcache_pages: AtomicU32,
    /// Ticks for the mount cache's least-recently-used order.
    pub(crate) use_clock: AtomicU64,
    pub(crate) counters: Counters,
    /// Attach's hits and misses, a pair a CPU (`stats.rs`).
    pub(crate) attach_counts: AttachCountsByCpu,
    /// Each CPU's last attached image (`hot.rs`), in a box of its own: 2 KiB of slots
    /// inside the instance moved its other fields about and made every warm exec's faults
    /// about 7% slower (`exec_bench`).
    pub(crate) hot: Arc<HotImages>,
    /// How a fault sleeps until a page another fault loads is ready (`wait.rs`).
    pub(crate) page_wait: Box<dyn PageWait>,
    /// Page loads finished (read, or failed and taken out): what sleepers wait on.
    pub(crate) loads_finished: AtomicU64,
    /// Files of channels let go of, for the kernel to close (`channel.rs`).
    pub(crate) parked: Arc<ParkedCloses>,
    /// The frame of zeros read faults on zero-fill memory map (`zero.rs`).
    pub(crate) zero: ZeroPage,
    /// Mapped objects, lineages and their counters (`mapping/`).
    pub(crate) maps: Mappings,
    next_serial: AtomicU64,
}

impl VmState {
    /// A fresh serial for an image or a segment; never 0, never reused.
    pub(crate) fn serial(&self) -> u64 {
        self.next_serial.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn admit(&self, site: AllocSite) -> Result<(), AllocError> {
        self.frames.admit_allocation(site)
    }

    /// A page at ref 1 with undefined contents. Reclaims once when the pool is empty.
    /// Takes no vm lock of the caller's: call it with none held.
    pub(crate) fn new_page(&self) -> Result<PageIndex, AllocError> {
        self.admit(AllocSite::Page)?;
        let page = match self.pool.try_alloc(&*self.frames) {
            Some(page) => page,
            None => {
                let batch = self.config.reclaim_batch.max(1) as usize;
                if self.reclaim(batch) == 0 {
                    // Nothing cached at ref 0: clean mapped file pages, unmapped through
                    // the reverse map (`mapping/reclaim.rs`).
                    self.reclaim_mapped(batch);
                }
                self.pool.try_alloc(&*self.frames).ok_or(AllocError)?
            }
        };
        self.counters
            .pages_allocated
            .fetch_add(1, Ordering::Relaxed);
        Ok(page)
    }

    /// Reads the file's bytes at `offset` into `page` (zero past the end of file). Called
    /// with no lock held: the read may block. The page is the caller's (a loading page).
    ///
    /// The file is read into a bounce buffer of vm's, and only the copy into the frame runs
    /// inside [`FrameAllocator::with_frame_mut`]: a kernel whose frame mappings are short
    /// lived (a per-CPU window) cannot keep one across an RPC.
    pub(crate) fn read_page_into(
        &self,
        file: &ImageChannel,
        offset: u64,
        page: PageIndex,
    ) -> Result<(), FaultError> {
        self.admit(AllocSite::LoadBuffer)
            .map_err(|_| FaultError::NoMemory)?;
        let mut buffer = Vec::new();
        buffer
            .try_reserve_exact(PAGE_SIZE)
            .map_err(|_| FaultError::NoMemory)?;
        buffer.resize(PAGE_SIZE, 0);
        self.counters.page_loads.fetch_add(1, Ordering::Relaxed);
        file.read_page(offset, &mut buffer)
            .map_err(FaultError::Io)?;
        self.frames
            .with_frame_mut(self.pool.frame(page), &mut |bytes| {
                bytes.copy_from_slice(&buffer);
            });
        Ok(())
    }

    /// Gives the frames of free pages past [`Config::max_free_pages`] back to the kernel.
    /// Called with no vm lock held (`FrameAllocator::free` runs).
    pub(crate) fn trim_free_pool(&self) {
        let released =
            self.pool
                .release_free(&*self.frames, usize::MAX, self.config.max_free_pages);
        self.count_released(released);
    }

    fn count_released(&self, released: usize) {
        if released > 0 {
            self.counters
                .frames_released
                .fetch_add(released as u64, Ordering::Relaxed);
        }
    }

    /// See [`Vm::shrink`].
    pub(crate) fn shrink(&self, target: usize) -> usize {
        let mut released = self.pool.release_free(&*self.frames, target, 0);
        if released < target {
            self.reclaim(target - released);
            released += self.pool.release_free(&*self.frames, target - released, 0);
        }
        if released < target {
            self.reclaim_mapped(target - released);
            released += self.pool.release_free(&*self.frames, target - released, 0);
        }
        self.count_released(released);
        released
    }

    /// A page load finished (its loading mark is gone): counts it and wakes the faults
    /// waiting for one. Called with no lock held.
    pub(crate) fn load_finished(&self) {
        self.loads_finished.fetch_add(1, Ordering::AcqRel);
        self.page_wait.wakeup();
    }
}

impl Drop for VmState {
    fn drop(&mut self) {
        // Every handle is gone, so no segment maps a page: give the frames back.
        self.pool.release_all(&*self.frames);
        self.zero.release(&*self.frames);
    }
}

/// A page cache, image cache and segment factory: one per kernel.
///
/// Cheap to clone; clones share everything. Segments and image references keep the
/// instance alive.
#[derive(Clone)]
pub struct Vm {
    pub(crate) shared: Arc<VmState>,
}

impl Vm {
    /// A vm that takes frames from `frames`, within the limits of `config`, with a mount
    /// cache of the default limits ([`MountCacheConfig::default`]).
    pub fn new(frames: Box<dyn FrameAllocator>, config: Config) -> Result<Self, VmError> {
        Self::with_mount_cache(frames, config, MountCacheConfig::default())
    }

    /// A vm as [`new`](Self::new) makes it, with the mount cache's limits given.
    pub fn with_mount_cache(
        frames: Box<dyn FrameAllocator>,
        config: Config,
        mount_cache: MountCacheConfig,
    ) -> Result<Self, VmError> {
        Self::with_page_wait(frames, config, mount_cache, Box::new(SpinWait))
    }

    /// A vm as [`with_mount_cache`](Self::with_mount_cache) makes it, whose faults wait
    /// for a page another fault is loading with the kernel's `page_wait` (a sleep the
    /// process's notes interrupt) instead of spinning ([`SpinWait`]).
    pub fn with_page_wait(
        frames: Box<dyn FrameAllocator>,
        config: Config,
        mount_cache: MountCacheConfig,
        page_wait: Box<dyn PageWait>,
    ) -> Result<Self, VmError> {
        let pool = PagePool::new(config.max_pages)?;
        let parked = Arc::try_new(ParkedCloses::new()).map_err(|_| VmError::NoMemory)?;
        let hot = Arc::try_new(HotImages::new()).map_err(|_| VmError::NoMemory)?;
        // Last before the instance: from here a failure drops a `VmState`, which frees it.
        let zero = ZeroPage::new(&*frames)?;
        let shared = Arc::try_new(VmState {
            frames,
            pool,
            table: Table::new(),
            reclaim_lock: Mutex::new(()),
            config,
            mcache_config: mount_cache,
            mcache_pages: AtomicU32::new(0),
            use_clock: AtomicU64::new(0),
            counters: Counters::default(),
            attach_counts: Default::default(),
            hot,
            page_wait,
            loads_finished: AtomicU64::new(0),
            parked,
            zero,
            maps: Mappings::default(),
            next_serial: AtomicU64::new(1),
        })
        // No memory for the instance: the frames its pool and zero page took go back as it
        // drops.
        .map_err(|_| VmError::NoMemory)?;
        Ok(Self { shared })
    }

    /// The frame allocator, for the embedding kernel to reach the bytes of a mapped frame.
    pub fn frames(&self) -> &dyn FrameAllocator {
        &*self.shared.frames
    }

    /// The zero page's frame: every mapping of it vm returns is read only (a write fault
    /// replaces it with a private page), so a kernel never maps it writable. The kernel's
    /// own ([`FrameAllocator::zero_frame`]) or one vm allocated as it was created.
    pub fn zero_frame(&self) -> Frame {
        self.shared.zero.frame()
    }

    /// Which shard of the image table holds `identity`'s image and mount-cache file (a
    /// number below [`Vm::TABLE_SHARDS`]); every version of a file is in one shard. Files in
    /// different shards are attached without sharing a lock; for tests and benchmarks that
    /// want them so.
    pub fn table_shard(identity: &FileIdentity) -> usize {
        crate::table::shard_of(&crate::file::PathKey::of(identity))
    }

    /// Shards of the image table (16; 2 in loom's models, to keep them small).
    pub const TABLE_SHARDS: usize = crate::table::SHARDS;

    /// The limits this vm was built with.
    pub fn config(&self) -> Config {
        self.shared.config
    }

    /// Finds or creates the image of `file` and takes a reference to it (Plan 9's
    /// `attachimage`). `file` is one reference to an open file, handed over: the image keeps
    /// it as its channel if it has none, otherwise it is parked and closed by
    /// [`run_parked_closes`](Self::run_parked_closes) or any CPU's
    /// [`run_parked_closes_on`](Self::run_parked_closes_on). The file leaves the mount
    /// cache ([`MountCache::forget`]): its pages are cached by the image now.
    ///
    /// A kernel that knows which CPU it runs on calls [`attach_on`](Self::attach_on)
    /// instead, so that attaches on different CPUs share no park queue.
    ///
    /// [`MountCache::forget`]: crate::MountCache::forget
    ///
    /// Never holds the table lock and an image lock at once. When the table is full it
    /// reclaims an idle image and searches again (even when reclaim freed nothing), so no
    /// two images share an identity and a full table that holds the file's image is no
    /// error.
    pub fn attach(&self, file: Box<dyn ImageFile>) -> Result<ImageRef, VmError> {
        self.attach_in(QueueId::SHARED, file)
    }

    /// [`attach`](Self::attach) on CPU `cpu` (any number the kernel gives its CPUs; CPUs
    /// share queues past [`PARK_CPU_QUEUES`](Self::PARK_CPU_QUEUES)). When the image has a
    /// channel already (the hit path of a running program) the file handed over is parked
    /// in `cpu`'s queue, which [`run_parked_closes_on`](Self::run_parked_closes_on)`(cpu)`
    /// closes: two CPUs attaching share no park queue and never close each other's files.
    /// A file that becomes the image's channel parks, when its last reference goes on any
    /// CPU, where every CPU's drain looks.
    pub fn attach_on(&self, cpu: usize, file: Box<dyn ImageFile>) -> Result<ImageRef, VmError> {
        self.attach_in(QueueId::of_cpu(cpu), file)
    }

    fn attach_in(&self, queue: QueueId, file: Box<dyn ImageFile>) -> Result<ImageRef, VmError> {
        let image = self.shared.attach(self, file, queue)?;
        Ok(ImageRef { image })
    }

    /// CPU park queues: CPU `n` parks in queue `n % PARK_CPU_QUEUES` (16; 2 in loom's
    /// models), beside one queue every CPU's drain runs.
    pub const PARK_CPU_QUEUES: usize = crate::channel::CPU_QUEUES;

    /// What the image cache holds for `identity` at this moment, `None` when it has no
    /// image of it (never made, or freed). Does not attach, so it moves no counter and no
    /// image on the idle list: for the kernel's bookkeeping and for tests.
    ///
    /// Takes the table lock, then (after releasing it) the image lock; never blocks. The
    /// answer may be stale as soon as it is returned.
    pub fn image_status(&self, identity: &FileIdentity) -> Option<ImageStatus> {
        self.shared.image_status(identity)
    }

    /// Closes every parked file, of every CPU's queue and the shared one (the channels vm
    /// let go of, the files an attach found a channel for), one at a time, with no vm lock
    /// held, on the calling thread. Returns how many it closed. For an unmount, a shutdown,
    /// and kernels that do not say their CPU; a CPU's safe point calls
    /// [`run_parked_closes_on`](Self::run_parked_closes_on).
    ///
    /// vm never closes a file on its own paths, because the kernel may hold locks there (a
    /// fault runs under the process segment lock, and its reclaim may let an image go): it
    /// parks them ([`ImageFile`]'s contract). The kernel calls this where it holds none of
    /// its locks and a close may block: on the way back from a system call or a fault, in
    /// a close worker. Parked files wait until then; nothing else closes them while the vm
    /// lives.
    pub fn run_parked_closes(&self) -> usize {
        self.shared.parked.run()
    }

    /// Closes, as [`run_parked_closes`](Self::run_parked_closes) does, the files parked in
    /// CPU `cpu`'s queue (the files its attaches found a channel for) and in the shared
    /// queue (every channel's file, on whatever CPU it was let go of, and the files of
    /// [`attach`](Self::attach)). Another CPU's queue is not touched, so CPUs running their
    /// safe points at once share no park lock and no queue's counter. What a thread parks
    /// is closed by its own CPU's next call; a kernel whose thread may move between CPUs
    /// between an attach and its safe point leaves that file to the CPU it attached on.
    pub fn run_parked_closes_on(&self, cpu: usize) -> usize {
        self.shared.parked.run_on(cpu)
    }

    /// Files parked for [`run_parked_closes`](Self::run_parked_closes) now: channels no
    /// image holds any more that are not closed yet. Takes no lock (an atomic read a park
    /// queue); a file parked on another CPU a moment ago may not show yet.
    pub fn parked_closes(&self) -> usize {
        self.shared.parked.len()
    }

    /// Files [`run_parked_closes_on`](Self::run_parked_closes_on)`(cpu)` would close now:
    /// two atomic reads and no lock, so a kernel may ask on every way out of a fault.
    pub fn parked_closes_on(&self, cpu: usize) -> usize {
        self.shared.parked.len_on(cpu)
    }

    /// Frees up to `target` cached pages at ref 0: those of idle images first, least
    /// recently used image first, then the mount cache's, least recently used file first,
    /// then those of active images (never an active image itself). Returns the number
    /// freed.
    pub fn reclaim(&self, target: usize) -> usize {
        let freed = self.shared.reclaim(target);
        self.shared.trim_free_pool();
        freed
    }

    /// The shrinker: gives up to `target` frames back to the kernel
    /// ([`FrameAllocator::free`]) and returns how many it gave. Free pages go first; when
    /// they are not enough, cached pages at ref 0 are reclaimed (as [`reclaim`](Self::reclaim)
    /// chooses them) and their frames go too; then clean pages of mapped files, unmapped
    /// through the reverse map. Dirty pages, other mapped pages and active images stay. For a
    /// kernel under memory pressure; takes and releases vm's locks, never blocks but in
    /// `FrameAllocator::free`.
    pub fn shrink(&self, target: usize) -> usize {
        self.shared.shrink(target)
    }
}

/// One executable image as [`Vm::image_status`] saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageStatus {
    /// References: segments and holders using it, plus its cached pages (`pgref`).
    pub refs: u32,
    /// Pages in its hash chains.
    pub pgref: u32,
    /// Whether it holds its file's channel (exactly while `refs > pgref`).
    pub has_channel: bool,
    /// On the idle list: only cached pages keep it (`refs == pgref`).
    pub idle: bool,
}

/// One reference to an image, dropped (Plan 9's `putimage`) when this handle is dropped.
///
/// It holds nothing but the image: while it lives the image is active (`refs > pgref`), so
/// the image has its channel, whose handle keeps the instance alive (see `ExecChannel`).
/// An attach and a put of an active image so touch only the image's own lines (its lock,
/// `refs` and the box's count), not its channel's count nor any counter of the instance.
pub struct ImageRef {
    pub(crate) image: Arc<ExecImage>,
}

impl ImageRef {
    /// The identity of the image's file.
    pub fn identity(&self) -> FileIdentity {
        self.image.identity
    }
}

impl Drop for ImageRef {
    fn drop(&mut self) {
        let image = &self.image;
        let state = image.state.lock();
        // Under the image lock `refs` only grows behind our back (attach's reference, under
        // the table lock), and `pgref` does not change: when another non-page reference
        // stays after ours, this put neither makes the image idle nor frees it, and needs
        // nothing of the instance.
        let pgref = image.pgref.load(Ordering::Relaxed);
        if image.refs.load(Ordering::Acquire) > pgref.saturating_add(1) {
            image.refs.fetch_sub(1, Ordering::AcqRel);
            drop(state);
            return;
        }
        // Perhaps the last: the whole put, with the instance reached through the channel,
        // which this reference kept (`refs > pgref`) and the clone keeps through the put
        // (the put may take the image's own away).
        let Some(chan) = state.kind.chan.clone() else {
            // An active image without its channel breaks the rule the checker reports
            // (`ChannelPresence`); with no way to the instance, drop the reference alone.
            debug_assert!(false, "an active image without its channel");
            image.refs.fetch_sub(1, Ordering::AcqRel);
            drop(state);
            return;
        };
        let shared = &chan.vm.shared;
        let outcome = shared.put_locked(image, state);
        shared.finish_put(outcome);
        drop(chan);
    }
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageRef")
            .field("identity", &self.image.identity)
            .finish()
    }
}
