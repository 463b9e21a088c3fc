//! Pages: per-frame metadata and the free list.
//!
//! A page is an index into one array of [`PageMeta`], one entry per frame vm may use.
//! Frames are bound to entries lazily, the first time an entry is needed; a freed page goes
//! to the free list with its frame, and frames of free pages go back to the kernel when the
//! free list grows past its bound or the kernel asks (`release_free`), leaving their entries
//! unbound for the next allocation. The free list holds only pages that
//! belong to no image: a cached page at ref 0 waits in its image's hash chain until reclaim
//! unlinks it (see `image.rs`).
//!
//! Lock order: the free-list lock is a leaf. Nothing is locked while it is held and it may be
//! taken under any other vm lock. [`FrameAllocator::allocate`], [`FrameAllocator::free`] and
//! [`FrameAllocator::in_use_elsewhere`] are called without it.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::frame::{AllocError, Frame, FrameAllocator};
use crate::sync::{AtomicU32, AtomicU64, Mutex, Ordering};

mod loans;

/// "No page": the end of a chain or of a list.
pub(crate) const NO_PAGE: u32 = u32::MAX;
/// What a segment's page table holds where it maps the zero page (`zero.rs`): no page
/// index is ever this (the pool is smaller).
pub(crate) const ZERO_ENTRY: u32 = u32::MAX - 1;
const NO_FRAME: u64 = u64::MAX;
/// A bit of `refs`: a loan break took the page from its object while others still held it
/// (`mapping/loan.rs`). In the count's own atomic, so that the put that drops the last
/// reference learns of it in the same step as it decrements (an owner read apart from the
/// decrement could be of a later life of the page: a lookup may revive an object's page at
/// ref 0 and a break detach it, between the two reads).
const REFS_DETACHED: u32 = 1 << 31;

/// The page is on the free list. Changed under the free-list lock.
const FLAG_FREE: u32 = 1 << 0;
/// The page is in an image's chain but its bytes are still being read from the file (see
/// `wait.rs`); nobody but its loader may take it. Changed under the owning image's lock.
const FLAG_LOADING: u32 = 1 << 1;
/// A mapped object's page written through a shared mapping and not written back yet
/// (`mapping/`). Changed under the owning object's lock.
const FLAG_DIRTY: u32 = 1 << 2;
/// A lent page its owner let go of (`mapping/loan.rs`): no owner, no reference, kept by its
/// loans alone and freed by the last one returned. Changed under the free-list lock.
const FLAG_ORPHAN: u32 = 1 << 3;
/// A mapping's fault may have installed a writable translation of the page since the last
/// loan removed them (`mapping/loan.rs`): the next first loan must remove them again, and
/// one without it need not ask the MMU at all. Set under the lock a writable translation
/// is installed under (the object's for an object page, the mapping's for a private one),
/// taken under the same lock by the loan.
const FLAG_MAPPED_WRITABLE: u32 = 1 << 4;

/// An index into the page metadata array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct PageIndex(pub(crate) u32);

/// Metadata of one frame. At most 64 bytes (asserted below); 8 bytes are left.
///
/// Which lock protects what: `owner`, `offset`, `valid`, the loading flag and, for a cached
/// page, `link` change only under the owning image's lock; `link` of a free page and the
/// free flag only under the free-list lock (the flags are atomic bits, each under its own
/// lock); `frame` is written only while the entry is unbound (by the one thread binding it)
/// or when a free page is unbound again (under the free-list lock), and while the page is
/// held only by a migration (`mapping/migrate.rs`, `exchange_frames`), under every lock
/// under which the frame is read to map or copy the page (its owner's and every mapping
/// lock of its reverse map). `refs` is atomic
/// and goes 0→1 for a cached page only under its image's lock (lookpage).
#[repr(C)]
pub(crate) struct PageMeta {
    /// The frame, or `NO_FRAME` while unbound.
    frame: AtomicU64,
    /// Serial of the image whose hash chain holds the page; 0 when uncached.
    owner: AtomicU64,
    /// The page's offset in its image's file (`daddr`).
    offset: AtomicU64,
    /// Mappings and short holders of the page. Hash chains hold no reference.
    refs: AtomicU32,
    /// Loans of the page (UVM style, `mapping/loan.rs`): taken while the page is held
    /// (by a mapping's entry, or in its object under the object lock), returned under the
    /// free-list lock, where a page at ref 0 with loans becomes an orphan instead of free.
    loans: AtomicU32,
    /// `FLAG_*` bits.
    flags: AtomicU32,
    /// Next page in the hash chain, the free list, the unbound list or a private list.
    link: AtomicU32,
    /// A mount-cache page's valid bytes, `start | end << 16` (`start < end <= PAGE_SIZE`):
    /// a file read or written a piece at a time fills a page a piece at a time. 0 for every
    /// other page (an executable image's page is always whole).
    valid: AtomicU32,
    /// The reverse map of a private page of a mapping (`mapping/lineage.rs`): the serial
    /// of the lineage whose mappings may map it, 0 for every other page; its page number
    /// in the mapped object is then in `offset`. Set by the fault that made the page,
    /// while only it holds the page; cleared as the page is freed.
    lineage: AtomicU64,
}

// The per-frame metadata budget of the design (loom's atomics are larger, so the check is
// for the real build only).
#[cfg(not(loom))]
const _: () = assert!(core::mem::size_of::<PageMeta>() <= 64);

impl PageMeta {
    fn unbound(link: u32) -> Self {
        Self {
            frame: AtomicU64::new(NO_FRAME),
            owner: AtomicU64::new(0),
            offset: AtomicU64::new(0),
            refs: AtomicU32::new(0),
            loans: AtomicU32::new(0),
            flags: AtomicU32::new(0),
            link: AtomicU32::new(link),
            valid: AtomicU32::new(0),
            lineage: AtomicU64::new(0),
        }
    }
}

/// The heads of the pool's lists.
struct Lists {
    /// Pages with a frame and no owner, at ref 0.
    free_head: u32,
    free_count: u32,
    /// Entries with no frame yet.
    unbound_head: u32,
    /// Entries with a frame.
    bound: u32,
}

/// What a page looks like to the invariant checker.
#[cfg(any(test, feature = "check"))]
#[derive(Clone, Copy, Debug)]
pub(crate) struct PageView {
    pub(crate) bound: bool,
    pub(crate) free: bool,
    pub(crate) owner: u64,
    pub(crate) offset: u64,
    pub(crate) refs: u32,
    pub(crate) loans: u32,
    /// An orphan: lent, let go of by its owner, kept by its loans.
    pub(crate) orphan: bool,
    /// Being loaded by a fault.
    pub(crate) loading: bool,
    /// `(start, end)` of a mount-cache page's valid bytes.
    pub(crate) valid: (usize, usize),
}

/// All page metadata and the free list.
pub(crate) struct PagePool {
    meta: Box<[PageMeta]>,
    lists: Mutex<Lists>,
    /// Pages found on the free list twice (a vm bug); reported by the checker.
    double_frees: AtomicU32,
    /// Free pages whose frames were let go instead of reused (`try_alloc`).
    frames_in_use_elsewhere: AtomicU64,
    /// Pages with the orphan flag.
    orphans: AtomicU64,
}

impl PagePool {
    /// A pool for at most `max_pages` pages, none bound yet.
    pub(crate) fn new(max_pages: u32) -> Result<Self, AllocError> {
        // Indices stop below `ZERO_ENTRY` and `NO_PAGE`.
        if max_pages > ZERO_ENTRY {
            return Err(AllocError);
        }
        let count = max_pages as usize;
        let mut meta = Vec::new();
        meta.try_reserve_exact(count).map_err(|_| AllocError)?;
        for index in 0..max_pages {
            let next = if index + 1 < max_pages {
                index + 1
            } else {
                NO_PAGE
            };
            meta.push(PageMeta::unbound(next));
        }
        Ok(Self {
            meta: meta.into_boxed_slice(),
            lists: Mutex::new(Lists {
                free_head: NO_PAGE,
                free_count: 0,
                unbound_head: if max_pages > 0 { 0 } else { NO_PAGE },
                bound: 0,
            }),
            double_frees: AtomicU32::new(0),
            frames_in_use_elsewhere: AtomicU64::new(0),
            orphans: AtomicU64::new(0),
        })
    }

    fn meta(&self, page: PageIndex) -> &PageMeta {
        &self.meta[page.0 as usize]
    }

    /// Number of entries (bound or not).
    pub(crate) fn capacity(&self) -> u32 {
        self.meta.len() as u32
    }

    /// Takes a page at ref 1 from the free list, or binds a new frame to an unused entry.
    /// `None` when neither is possible. Calls [`FrameAllocator::allocate`] (which may
    /// block) with no lock held.
    ///
    /// Before a free page's frame is reused, the kernel is asked whether something else
    /// still holds it ([`FrameAllocator::in_use_elsewhere`], with no lock held: the page is
    /// off the free list and nobody else can reach it). If so, the frame is let go
    /// ([`FrameAllocator::free`]: the kernel drops vm's reference and frees the frame when
    /// its other holders let go), the entry becomes unbound, and the next free page, or a
    /// fresh frame, is taken instead.
    pub(crate) fn try_alloc(&self, frames: &dyn FrameAllocator) -> Option<PageIndex> {
        loop {
            let mut lists = self.lists.lock();
            if lists.free_head != NO_PAGE {
                let page = PageIndex(lists.free_head);
                let meta = self.meta(page);
                lists.free_head = meta.link.load(Ordering::Relaxed);
                lists.free_count -= 1;
                meta.flags.fetch_and(!FLAG_FREE, Ordering::Relaxed);
                drop(lists);
                if frames.in_use_elsewhere(self.frame(page)) {
                    self.let_go(frames, page);
                    continue;
                }
                meta.link.store(NO_PAGE, Ordering::Relaxed);
                meta.refs.store(1, Ordering::Release);
                return Some(page);
            }
            if lists.unbound_head == NO_PAGE {
                return None;
            }
            let page = PageIndex(lists.unbound_head);
            let meta = self.meta(page);
            lists.unbound_head = meta.link.load(Ordering::Relaxed);
            drop(lists);
            return match frames.allocate() {
                Ok(frame) => {
                    meta.frame.store(frame.0, Ordering::Release);
                    meta.link.store(NO_PAGE, Ordering::Relaxed);
                    meta.refs.store(1, Ordering::Release);
                    self.lists.lock().bound += 1;
                    Some(page)
                }
                Err(AllocError) => {
                    let mut lists = self.lists.lock();
                    meta.link.store(lists.unbound_head, Ordering::Relaxed);
                    lists.unbound_head = page.0;
                    None
                }
            };
        }
    }

    /// Puts `page`'s entry back on the unbound list (under the free-list lock) and gives
    /// its frame back to the kernel ([`FrameAllocator::free`], no lock held). The caller
    /// owns the page: nobody else can reach it.
    fn unbind(&self, frames: &dyn FrameAllocator, page: PageIndex) {
        let meta = self.meta(page);
        let frame = {
            let mut lists = self.lists.lock();
            let frame = meta.frame.swap(NO_FRAME, Ordering::AcqRel);
            meta.link.store(lists.unbound_head, Ordering::Relaxed);
            lists.unbound_head = page.0;
            lists.bound -= 1;
            frame
        };
        frames.free(Frame(frame));
    }

    /// Unbinds `page`, just taken off the free list by [`try_alloc`](Self::try_alloc),
    /// whose frame the kernel says is still in use elsewhere, and lets go of the frame
    /// ([`FrameAllocator::free`], no lock held). The entry goes back to the unbound list.
    fn let_go(&self, frames: &dyn FrameAllocator, page: PageIndex) {
        self.unbind(frames, page);
        self.frames_in_use_elsewhere.fetch_add(1, Ordering::Relaxed);
    }

    /// Frames not reused because the kernel said they were still in use elsewhere.
    pub(crate) fn frames_in_use_elsewhere(&self) -> u64 {
        self.frames_in_use_elsewhere.load(Ordering::Relaxed)
    }

    /// The frame of a bound page.
    pub(crate) fn frame(&self, page: PageIndex) -> Frame {
        Frame(self.meta(page).frame.load(Ordering::Acquire))
    }

    pub(crate) fn refs(&self, page: PageIndex) -> u32 {
        self.meta(page).refs.load(Ordering::Acquire) & !REFS_DETACHED
    }

    pub(crate) fn owner(&self, page: PageIndex) -> u64 {
        self.meta(page).owner.load(Ordering::Acquire)
    }

    pub(crate) fn offset(&self, page: PageIndex) -> u64 {
        self.meta(page).offset.load(Ordering::Relaxed)
    }

    pub(crate) fn link(&self, page: PageIndex) -> u32 {
        self.meta(page).link.load(Ordering::Relaxed)
    }

    pub(crate) fn set_link(&self, page: PageIndex, next: u32) {
        self.meta(page).link.store(next, Ordering::Relaxed);
    }

    /// Marks a page (held at ref 1 by the caller, uncached) as cached by image `owner` at
    /// `offset`. Called under that image's lock.
    pub(crate) fn set_cached(&self, page: PageIndex, owner: u64, offset: u64) {
        let meta = self.meta(page);
        meta.offset.store(offset, Ordering::Relaxed);
        meta.owner.store(owner, Ordering::Release);
    }

    /// Clears a page's owner. Called under the owning image's lock, at ref 0 (or at ref 1
    /// by the loader of a loading page, which nobody else can take).
    pub(crate) fn set_uncached(&self, page: PageIndex) {
        let meta = self.meta(page);
        meta.offset.store(0, Ordering::Relaxed);
        meta.valid.store(0, Ordering::Relaxed);
        meta.owner.store(0, Ordering::Release);
    }

    /// Marks a page just cached by its loader as being read from the file. Called under
    /// the owning image's lock.
    pub(crate) fn set_loading(&self, page: PageIndex) {
        self.meta(page)
            .flags
            .fetch_or(FLAG_LOADING, Ordering::Relaxed);
    }

    /// The page's bytes are read: others may take it. Called under the owning image's
    /// lock.
    pub(crate) fn clear_loading(&self, page: PageIndex) {
        self.meta(page)
            .flags
            .fetch_and(!FLAG_LOADING, Ordering::Relaxed);
    }

    /// Whether the page is being loaded. Called under the owning image's lock.
    pub(crate) fn is_loading(&self, page: PageIndex) -> bool {
        self.meta(page).flags.load(Ordering::Relaxed) & FLAG_LOADING != 0
    }

    /// The valid bytes `start..end` of a mount-cache page. Called under its image's lock.
    pub(crate) fn valid(&self, page: PageIndex) -> (usize, usize) {
        let packed = self.meta(page).valid.load(Ordering::Relaxed);
        ((packed & 0xffff) as usize, (packed >> 16) as usize)
    }

    /// Sets the valid bytes of a mount-cache page (`start < end <= PAGE_SIZE`). Called under
    /// its image's lock, or on a page nobody else can reach yet.
    pub(crate) fn set_valid(&self, page: PageIndex, start: usize, end: usize) {
        debug_assert!(start < end && end <= crate::frame::PAGE_SIZE);
        let packed = (start as u32) | ((end as u32) << 16);
        self.meta(page).valid.store(packed, Ordering::Relaxed);
    }

    /// Marks a private page of a mapping (held by the caller alone, uncached) as made by
    /// lineage `lineage` for page `number` of the mapped object: the reverse map finds its
    /// mappings through the lineage.
    pub(crate) fn set_private_origin(&self, page: PageIndex, lineage: u64, number: u64) {
        let meta = self.meta(page);
        meta.offset.store(number, Ordering::Relaxed);
        meta.lineage.store(lineage, Ordering::Release);
    }

    /// `(lineage serial, object page number)` of a private page of a mapping; serial 0
    /// for every other page.
    pub(crate) fn private_origin(&self, page: PageIndex) -> (u64, u64) {
        let meta = self.meta(page);
        (
            meta.lineage.load(Ordering::Acquire),
            meta.offset.load(Ordering::Relaxed),
        )
    }

    /// Whether a mapped object's page is dirty. Called under the owning object's lock.
    pub(crate) fn is_dirty(&self, page: PageIndex) -> bool {
        self.meta(page).flags.load(Ordering::Relaxed) & FLAG_DIRTY != 0
    }

    /// Sets or clears a mapped object's page's dirty mark; returns the old one. Called
    /// under the owning object's lock.
    pub(crate) fn set_dirty(&self, page: PageIndex, dirty: bool) -> bool {
        let flags = &self.meta(page).flags;
        let old = if dirty {
            flags.fetch_or(FLAG_DIRTY, Ordering::Relaxed)
        } else {
            flags.fetch_and(!FLAG_DIRTY, Ordering::Relaxed)
        };
        old & FLAG_DIRTY != 0
    }

    /// Takes another reference to a page the caller already holds, or, under the owning
    /// image's lock, to a cached page (lookpage: the only 0→1 for a cached page).
    pub(crate) fn incref(&self, page: PageIndex) {
        self.meta(page).refs.fetch_add(1, Ordering::AcqRel);
    }

    /// Drops a reference (Plan 9's `putpage`). A cached page stays in its chain at ref 0
    /// for reclaim; an uncached page at ref 0 goes to the free list (or to the orphans,
    /// if lent), and so does a page a loan break detached from its object.
    pub(crate) fn put(&self, page: PageIndex) {
        let meta = self.meta(page);
        // The owner cannot change under us but by a detach (which says so in `refs`): it is
        // cleared only at ref 0 and set only on a page its sole holder is caching, and we
        // hold a reference.
        let owned = meta.owner.load(Ordering::Acquire) != 0;
        let before = meta.refs.fetch_sub(1, Ordering::AcqRel);
        if before & !REFS_DETACHED != 1 {
            return;
        }
        // vm-rule(put-sees-detach): a break may have taken the page from its object
        // between our look at the owner and our decrement (loom model 23).
        if owned && before & REFS_DETACHED == 0 {
            return;
        }
        // Nobody holds it now: the mark goes with the last reference.
        meta.refs.fetch_and(!REFS_DETACHED, Ordering::AcqRel);
        let mut lists = self.lists.lock();
        self.push_free(&mut lists, page);
    }

    /// Puts a private list of uncached ref-0 pages (linked through `link`) on the free list.
    pub(crate) fn free_list_of(&self, head: u32) {
        if head == NO_PAGE {
            return;
        }
        let mut lists = self.lists.lock();
        let mut cursor = head;
        while cursor != NO_PAGE {
            let page = PageIndex(cursor);
            cursor = self.link(page);
            self.push_free(&mut lists, page);
        }
    }

    fn push_free(&self, lists: &mut Lists, page: PageIndex) {
        let meta = self.meta(page);
        // A private page of a mapping leaves its lineage as it is freed (nobody holds it).
        if meta.lineage.swap(0, Ordering::Relaxed) != 0 {
            meta.offset.store(0, Ordering::Relaxed);
        }
        // vm-rule(lent-page-orphaned-not-freed): a lent page its owner lets go of stays
        // out of the free list, kept by its loans; the last one frees it (loom model 21).
        if meta.loans.load(Ordering::Acquire) != 0 {
            if meta.flags.fetch_or(FLAG_ORPHAN, Ordering::Relaxed) & FLAG_ORPHAN != 0 {
                self.double_frees.fetch_add(1, Ordering::Relaxed);
                log::error!("vm: orphan page {} let go of twice", page.0);
            } else {
                self.orphans.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        meta.flags
            .fetch_and(!FLAG_MAPPED_WRITABLE, Ordering::Relaxed);
        if meta.flags.fetch_or(FLAG_FREE, Ordering::Relaxed) & FLAG_FREE != 0 {
            // Already free: a double free. Keep the list intact and let the checker say so.
            self.double_frees.fetch_add(1, Ordering::Relaxed);
            log::error!("vm: page {} freed twice", page.0);
            return;
        }
        meta.link.store(lists.free_head, Ordering::Relaxed);
        lists.free_head = page.0;
        lists.free_count += 1;
    }

    /// Calls `visit` on every bound page whose frame lies in `frames` (a scan of the whole
    /// array, with no lock: a page bound or unbound meanwhile is the caller's to re-check
    /// under the lock that guards it). For `Vm::vacate`, which starts from frames.
    pub(crate) fn pages_in(
        &self,
        frames: &core::ops::Range<u64>,
        mut visit: impl FnMut(PageIndex),
    ) {
        for (index, meta) in self.meta.iter().enumerate() {
            let frame = meta.frame.load(Ordering::Acquire);
            if frame != NO_FRAME && frames.contains(&frame) {
                visit(PageIndex(index as u32));
            }
        }
    }

    /// Whether `page` is on the free list now.
    pub(crate) fn is_free(&self, page: PageIndex) -> bool {
        self.meta(page).flags.load(Ordering::Relaxed) & FLAG_FREE != 0
    }

    /// Gives `moved` the frame of `held` and `held` the frame of `moved` (a migration:
    /// `moved` keeps its index, so every page table entry of it stays, and only its frame
    /// changes). The caller holds every lock under which the frame of `moved` is read to
    /// map or copy it (its owner's, or every mapping's that maps it) and holds `held`
    /// alone (fresh from `try_alloc`, uncached).
    pub(crate) fn exchange_frames(&self, moved: PageIndex, held: PageIndex) {
        let old = self.meta(moved).frame.load(Ordering::Acquire);
        let new = self.meta(held).frame.swap(old, Ordering::AcqRel);
        self.meta(moved).frame.store(new, Ordering::Release);
    }

    /// Lets go of the frame of `page`, which the caller holds alone at ref 1, uncached (a
    /// migration's old frame, exchanged into the fresh page): the entry becomes unbound
    /// and the frame goes back to the kernel ([`FrameAllocator::free`], no lock held), so
    /// it is not reused by vm.
    pub(crate) fn unbind_held(&self, frames: &dyn FrameAllocator, page: PageIndex) {
        let meta = self.meta(page);
        meta.lineage.store(0, Ordering::Relaxed);
        meta.refs.store(0, Ordering::Release);
        self.unbind(frames, page);
    }

    /// Takes every free page whose frame lies in `range` off the free list and lets go of
    /// its frame (the entry becomes unbound): vacate's way with frames vm holds but uses
    /// for nothing. A batch at a time under the free-list lock, the frames freed with no
    /// lock held; nothing allocated. Returns how many went back.
    pub(crate) fn release_free_in(
        &self,
        frames: &dyn FrameAllocator,
        range: &core::ops::Range<u64>,
    ) -> usize {
        const BATCH: usize = 32;
        let mut released = 0;
        loop {
            let mut batch = [NO_FRAME; BATCH];
            let mut taken = 0;
            {
                let mut lists = self.lists.lock();
                let mut prev = NO_PAGE;
                let mut cursor = lists.free_head;
                while cursor != NO_PAGE && taken < BATCH {
                    let page = PageIndex(cursor);
                    let meta = self.meta(page);
                    let next = meta.link.load(Ordering::Relaxed);
                    let frame = meta.frame.load(Ordering::Acquire);
                    if !range.contains(&frame) {
                        prev = cursor;
                        cursor = next;
                        continue;
                    }
                    if prev == NO_PAGE {
                        lists.free_head = next;
                    } else {
                        self.set_link(PageIndex(prev), next);
                    }
                    lists.free_count -= 1;
                    meta.flags.fetch_and(!FLAG_FREE, Ordering::Relaxed);
                    batch[taken] = meta.frame.swap(NO_FRAME, Ordering::AcqRel);
                    meta.link.store(lists.unbound_head, Ordering::Relaxed);
                    lists.unbound_head = page.0;
                    lists.bound -= 1;
                    taken += 1;
                    cursor = next;
                }
            }
            for frame in &batch[..taken] {
                frames.free(Frame(*frame));
            }
            released += taken;
            if taken < BATCH {
                return released;
            }
        }
    }

    /// `(free pages, bound pages)`.
    pub(crate) fn counts(&self) -> (u32, u32) {
        let lists = self.lists.lock();
        (lists.free_count, lists.bound)
    }

    #[cfg(any(test, feature = "check"))]
    pub(crate) fn double_frees(&self) -> u32 {
        self.double_frees.load(Ordering::Relaxed)
    }

    /// A snapshot of one entry, for the checker.
    #[cfg(any(test, feature = "check"))]
    pub(crate) fn view(&self, page: PageIndex) -> PageView {
        let meta = self.meta(page);
        PageView {
            bound: meta.frame.load(Ordering::Acquire) != NO_FRAME,
            free: meta.flags.load(Ordering::Relaxed) & FLAG_FREE != 0,
            owner: meta.owner.load(Ordering::Acquire),
            offset: meta.offset.load(Ordering::Relaxed),
            refs: meta.refs.load(Ordering::Acquire) & !REFS_DETACHED,
            loans: meta.loans.load(Ordering::Relaxed),
            orphan: meta.flags.load(Ordering::Relaxed) & FLAG_ORPHAN != 0,
            loading: meta.flags.load(Ordering::Relaxed) & FLAG_LOADING != 0,
            valid: self.valid(page),
        }
    }

    /// Walks the free list under its lock: calls `visit` on each page, at most `limit`
    /// pages (a cycle would otherwise never end). Returns the recorded free count.
    #[cfg(any(test, feature = "check"))]
    pub(crate) fn walk_free(&self, limit: u32, mut visit: impl FnMut(PageIndex)) -> u32 {
        let lists = self.lists.lock();
        let mut cursor = lists.free_head;
        let mut steps = 0;
        while cursor != NO_PAGE && steps <= limit {
            visit(PageIndex(cursor));
            cursor = self.link(PageIndex(cursor));
            steps += 1;
        }
        lists.free_count
    }

    /// Gives the frames of free pages back to `frames`, at most `target` of them and only
    /// while more than `keep` pages are free: each page leaves the free list and becomes an
    /// unbound entry again (its next use binds a new frame). The frames are freed a batch
    /// at a time with no lock held, and nothing is allocated. Returns how many went back.
    pub(crate) fn release_free(
        &self,
        frames: &dyn FrameAllocator,
        target: usize,
        keep: u32,
    ) -> usize {
        const BATCH: usize = 32;
        let mut released = 0;
        loop {
            let mut batch = [NO_FRAME; BATCH];
            let mut taken = 0;
            {
                let mut lists = self.lists.lock();
                while taken < BATCH
                    && released + taken < target
                    && lists.free_count > keep
                    && lists.free_head != NO_PAGE
                {
                    let page = PageIndex(lists.free_head);
                    let meta = self.meta(page);
                    lists.free_head = meta.link.load(Ordering::Relaxed);
                    lists.free_count -= 1;
                    meta.flags.fetch_and(!FLAG_FREE, Ordering::Relaxed);
                    // A free page has no holder: nobody reads its frame any more.
                    batch[taken] = meta.frame.swap(NO_FRAME, Ordering::AcqRel);
                    meta.link.store(lists.unbound_head, Ordering::Relaxed);
                    lists.unbound_head = page.0;
                    lists.bound -= 1;
                    taken += 1;
                }
            }
            for frame in &batch[..taken] {
                frames.free(Frame(*frame));
            }
            released += taken;
            if taken < BATCH {
                return released;
            }
        }
    }

    /// Returns every bound frame to `frames`. Only for when the pool itself goes away.
    pub(crate) fn release_all(&self, frames: &dyn FrameAllocator) {
        for meta in self.meta.iter() {
            let frame = meta.frame.swap(NO_FRAME, Ordering::AcqRel);
            if frame != NO_FRAME {
                frames.free(Frame(frame));
            }
        }
    }
}
