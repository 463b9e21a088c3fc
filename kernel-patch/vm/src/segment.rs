//! Segments: text (shared, read only), data (private, copy on write over the image's
//! pages), bss and stack (zero fill on demand); their page tables; fork; putseg. A page
//! table entry is a page of the pool (holding one reference of it) or the zero page
//! (holding nothing: `zero.rs`).
//!
//! Lock order: process segment lock (the kernel's) → segment lock → image lock → table
//! lock; the free-list lock is a leaf. A segment that has an image has its count
//! decremented under that image's lock (9front's A/B/A fix of June 2025): attach finds a
//! shared text segment in its image under the same lock, so it never revives a segment
//! whose count already reached 0.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use crate::file::FileIdentity;
use crate::frame::{AllocError, AllocSite, Frame, PAGE_BYTES};
use crate::image::ExecImage;
use crate::page::{PageIndex, NO_PAGE, ZERO_ENTRY};
use crate::sync::{Arc, AtomicU32, Mutex, Ordering};
use crate::vm::{ImageRef, LayoutError, Vm, VmError, VmState};

/// Pages in a leaf of a segment's page table.
const LEAF_PAGES: usize = 512;

/// What a segment holds and how its pages fault in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SegmentKind {
    /// Program text: shared between processes running the same file, read only, pages
    /// straight from the image cache.
    Text,
    /// Initialised data: private; pages from the image are mapped read only and copied on
    /// the first write; past the file range, zero fill.
    Data,
    /// Uninitialised data: private, zero fill on demand.
    Bss,
    /// A stack: private, zero fill on demand.
    Stack,
}

/// Where a segment's pages come from: `pages` pages at `base`, of which the first
/// `file_len` bytes come from the file at `file_start` (page aligned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) base: u64,
    pub(crate) pages: u64,
    pub(crate) file_start: u64,
    pub(crate) file_len: u64,
}

/// How one page of a segment is filled.
pub(crate) enum Backing {
    /// Zero fill.
    Zero,
    /// From the image's page at `offset` in the file; when `keep` is set only the first
    /// `keep` bytes belong to the segment and the rest must read as zero.
    File { offset: u64, keep: Option<usize> },
}

impl Geometry {
    /// The backing of page `page` (which is within the segment).
    pub(crate) fn backing(&self, page: u64) -> Backing {
        let start = page * PAGE_BYTES;
        if start >= self.file_len {
            return Backing::Zero;
        }
        let keep = self.file_len - start;
        Backing::File {
            offset: self.file_start + start,
            keep: (keep < PAGE_BYTES).then_some(keep as usize),
        }
    }

    pub(crate) fn end(&self) -> u64 {
        self.base + self.pages * PAGE_BYTES
    }
}

/// What a page table maps at one page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A page of the pool; the entry holds one reference of it.
    Page(PageIndex),
    /// The zero page, read only; the entry holds no reference (nothing counts them).
    Zero,
}

impl Entry {
    fn encode(self) -> u32 {
        match self {
            Self::Page(page) => page.0,
            Self::Zero => ZERO_ENTRY,
        }
    }

    fn decode(raw: u32) -> Option<Self> {
        match raw {
            NO_PAGE => None,
            ZERO_ENTRY => Some(Self::Zero),
            index => Some(Self::Page(PageIndex(index))),
        }
    }
}

/// A segment's page table: leaves of entries ([`Entry`], encoded), allocated on first use.
pub(crate) struct PageTable {
    leaves: Vec<Option<Box<[u32]>>>,
}

impl PageTable {
    pub(crate) fn empty() -> Self {
        Self { leaves: Vec::new() }
    }

    /// A table for `pages` pages with no leaf yet.
    pub(crate) fn new(pages: u64) -> Result<Self, AllocError> {
        let count = usize::try_from(pages.div_ceil(LEAF_PAGES as u64)).map_err(|_| AllocError)?;
        let mut leaves = Vec::new();
        leaves.try_reserve_exact(count).map_err(|_| AllocError)?;
        leaves.resize_with(count, || None);
        Ok(Self { leaves })
    }

    fn split(page: u64) -> (usize, usize) {
        let page = page as usize;
        (page / LEAF_PAGES, page % LEAF_PAGES)
    }

    fn new_leaf(shared: &VmState) -> Result<Box<[u32]>, AllocError> {
        shared.admit(AllocSite::PageTable)?;
        let mut leaf = Vec::new();
        leaf.try_reserve_exact(LEAF_PAGES).map_err(|_| AllocError)?;
        leaf.resize(LEAF_PAGES, NO_PAGE);
        Ok(leaf.into_boxed_slice())
    }

    /// What is mapped at `page`, if anything.
    pub(crate) fn get(&self, page: u64) -> Option<Entry> {
        let (leaf, slot) = Self::split(page);
        Entry::decode(*self.leaves.get(leaf)?.as_ref()?.get(slot)?)
    }

    /// Makes sure the leaf holding `page` exists, so [`set`](Self::set) cannot fail.
    pub(crate) fn ensure(&mut self, page: u64, shared: &VmState) -> Result<(), AllocError> {
        let (leaf, _) = Self::split(page);
        match self.leaves.get_mut(leaf) {
            Some(Some(_)) => Ok(()),
            Some(entry) => {
                *entry = Some(Self::new_leaf(shared)?);
                Ok(())
            }
            None => Err(AllocError),
        }
    }

    /// Maps `entry` at `page`; the leaf must exist ([`ensure`](Self::ensure) under the same
    /// lock hold).
    pub(crate) fn set(&mut self, page: u64, entry: Entry) {
        let (leaf, slot) = Self::split(page);
        let raw = self
            .leaves
            .get_mut(leaf)
            .and_then(|leaf| leaf.as_mut())
            .and_then(|leaf| leaf.get_mut(slot));
        debug_assert!(raw.is_some(), "page table leaf missing");
        if let Some(raw) = raw {
            *raw = entry.encode();
        }
    }

    /// Removes the entry at `page`, if its leaf exists; the caller drops its reference.
    pub(crate) fn clear(&mut self, page: u64) {
        let (leaf, slot) = Self::split(page);
        if let Some(raw) = self
            .leaves
            .get_mut(leaf)
            .and_then(|leaf| leaf.as_mut())
            .and_then(|leaf| leaf.get_mut(slot))
        {
            *raw = NO_PAGE;
        }
    }

    /// Calls `visit(page number, entry)` for every mapped page.
    pub(crate) fn for_each(&self, mut visit: impl FnMut(u64, Entry)) {
        for (leaf_number, leaf) in self.leaves.iter().enumerate() {
            let Some(leaf) = leaf else { continue };
            for (slot, raw) in leaf.iter().enumerate() {
                if let Some(entry) = Entry::decode(*raw) {
                    visit((leaf_number * LEAF_PAGES + slot) as u64, entry);
                }
            }
        }
    }

    /// Drops the reference of every entry that holds one and empties the table. Returns
    /// how many entries mapped the zero page.
    fn release(self, shared: &VmState) -> u64 {
        let mut zeros = 0;
        self.for_each(|_, entry| match entry {
            Entry::Page(page) => shared.pool.put(page),
            Entry::Zero => zeros += 1,
        });
        zeros
    }

    /// A copy of the table's structure and entries (taking no page references).
    pub(crate) fn duplicate(&self, shared: &VmState) -> Result<Self, AllocError> {
        let mut copy = Self::new((self.leaves.len() * LEAF_PAGES) as u64)?;
        for (number, leaf) in self.leaves.iter().enumerate() {
            if let Some(leaf) = leaf {
                let mut fresh = Self::new_leaf(shared)?;
                fresh.copy_from_slice(leaf);
                copy.leaves[number] = Some(fresh);
            }
        }
        Ok(copy)
    }
}

/// A segment. Reached through [`SegmentRef`]s, each of which holds one count.
pub(crate) struct Segment {
    /// Never reused; identifies the segment in its image's text list.
    pub(crate) serial: u64,
    pub(crate) kind: SegmentKind,
    pub(crate) geometry: Geometry,
    /// The image a text or data segment reads from; it holds one image reference.
    pub(crate) image: Option<Arc<ExecImage>>,
    /// Holders of the segment ([`SegmentRef`]s).
    pub(crate) count: AtomicU32,
    /// The segment lock.
    pub(crate) table: Mutex<PageTable>,
}

impl Segment {
    fn new(
        shared: &VmState,
        kind: SegmentKind,
        geometry: Geometry,
        image: Option<Arc<ExecImage>>,
        table: PageTable,
    ) -> Self {
        Self {
            serial: shared.serial(),
            kind,
            geometry,
            image,
            count: AtomicU32::new(1),
            table: Mutex::new(table),
        }
    }

    /// The page number of `addr` in the segment.
    pub(crate) fn page_number(&self, addr: u64) -> Option<u64> {
        let offset = addr.checked_sub(self.geometry.base)?;
        let page = offset / PAGE_BYTES;
        (page < self.geometry.pages).then_some(page)
    }
}

/// One count of a segment, as a process holds it. Dropping it is Plan 9's `putseg`: the last
/// one frees the segment's pages and drops its image reference.
pub struct SegmentRef {
    pub(crate) seg: Arc<Segment>,
    pub(crate) vm: Vm,
}

impl SegmentRef {
    /// What the segment is.
    pub fn kind(&self) -> SegmentKind {
        self.seg.kind
    }

    /// Its first address (page aligned).
    pub fn base(&self) -> u64 {
        self.seg.geometry.base
    }

    /// The address just past its end.
    pub fn end(&self) -> u64 {
        self.seg.geometry.end()
    }

    /// Whether `addr` is in the segment.
    pub fn contains(&self, addr: u64) -> bool {
        self.seg.page_number(addr).is_some()
    }

    /// The identity of the file a text or data segment reads from.
    pub fn identity(&self) -> Option<FileIdentity> {
        self.seg.image.as_ref().map(|image| image.identity)
    }

    /// Whether `self` and `other` are the same segment (shared text, for instance).
    pub fn same_segment(&self, other: &SegmentRef) -> bool {
        self.seg.serial == other.seg.serial
    }

    /// The frame mapped at `addr`, if a fault has put one there: the zero page's
    /// ([`Vm::zero_frame`]) where a read of untouched zero-fill memory mapped it.
    pub fn resident(&self, addr: u64) -> Option<Frame> {
        let page = self.seg.page_number(addr)?;
        let entry = self.seg.table.lock().get(page)?;
        let shared = &*self.vm.shared;
        Some(match entry {
            Entry::Page(page) => shared.pool.frame(page),
            Entry::Zero => shared.zero.frame(),
        })
    }

    /// Another count of the same segment (for a process sharing it).
    pub fn share(&self) -> SegmentRef {
        // We hold a count, so it is above 0 and nobody can be freeing the segment.
        self.seg.count.fetch_add(1, Ordering::AcqRel);
        SegmentRef {
            seg: self.seg.clone(),
            vm: self.vm.clone(),
        }
    }

    /// The segment as a child of fork gets it (Plan 9's `dupseg`): text is shared; data, bss
    /// and stack are copied, sharing every page copy-on-write; an entry of the zero page is
    /// copied as it is (no page, no count).
    ///
    /// Afterwards both segments' pages are shared: the kernel must write-protect the
    /// parent's existing writable mappings of this segment, so the next write faults and
    /// copies.
    pub fn fork(&self) -> Result<SegmentRef, VmError> {
        if self.seg.kind == SegmentKind::Text {
            return Ok(self.share());
        }
        let shared = &*self.vm.shared;
        shared.admit(AllocSite::Segment)?;
        // The child, allocated first with an empty table: until it holds page and image
        // references, dropping it on an error releases nothing.
        let seg = Segment::new(
            shared,
            self.seg.kind,
            self.seg.geometry,
            self.seg.image.clone(),
            PageTable::empty(),
        );
        let seg = Arc::try_new(seg).map_err(|_| VmError::NoMemory)?;
        let table = {
            let parent = self.seg.table.lock();
            let copy = parent.duplicate(shared)?;
            // The parent's lock is held: no fault of the parent can replace a page while
            // we take the child's references.
            let mut zeros = 0;
            copy.for_each(|_, entry| match entry {
                Entry::Page(page) => shared.pool.incref(page),
                Entry::Zero => zeros += 1,
            });
            shared.zero.entries_copied(zeros);
            copy
        };
        *seg.table.lock() = table;
        if let Some(image) = &self.seg.image {
            // Our segment holds a reference, so the image cannot go away meanwhile.
            image.refs.fetch_add(1, Ordering::AcqRel);
        }
        Ok(SegmentRef {
            seg,
            vm: self.vm.clone(),
        })
    }
}

impl Drop for SegmentRef {
    fn drop(&mut self) {
        let seg = &self.seg;
        let last = match &seg.image {
            Some(image) => {
                let mut state = image.state.lock();
                // vm-rule(putseg-under-image-lock): the count falls under the image lock,
                // where attach finds shared text (9front's A/B/A race of June 2025).
                let last = seg.count.fetch_sub(1, Ordering::AcqRel) == 1;
                let unlinked = if last {
                    state
                        .kind
                        .texts
                        .iter()
                        .position(|text| text.serial == seg.serial)
                        .map(|position| state.kind.texts.swap_remove(position))
                } else {
                    None
                };
                drop(state);
                drop(unlinked);
                last
            }
            None => seg.count.fetch_sub(1, Ordering::AcqRel) == 1,
        };
        if !last {
            return;
        }
        let shared = &*self.vm.shared;
        let table = core::mem::replace(&mut *seg.table.lock(), PageTable::empty());
        let zeros = table.release(shared);
        shared.zero.entries_released(zeros);
        if let Some(image) = &seg.image {
            shared.put(image);
        }
        // No vm lock is held: frames past the free pool's bound go back to the kernel.
        shared.trim_free_pool();
    }
}

impl fmt::Debug for SegmentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentRef")
            .field("kind", &self.seg.kind)
            .field("base", &self.seg.geometry.base)
            .field("pages", &self.seg.geometry.pages)
            .finish()
    }
}

impl ImageRef {
    /// A shared text segment for `geometry`: the image's existing one when its geometry
    /// (address, file range and so text length) matches, else a new one.
    /// `vm` is the instance the image is in.
    pub(crate) fn text_segment(&self, vm: &Vm, geometry: Geometry) -> Result<SegmentRef, VmError> {
        let image = &self.image;
        if let Some(seg) = Self::find_text(&image.state.lock().kind.texts, geometry) {
            return Ok(Self::wrap(vm, seg));
        }
        let shared = &*vm.shared;
        shared.admit(AllocSite::Segment)?;
        let table = PageTable::new(geometry.pages)?;
        let fresh = Arc::try_new(Segment::new(
            shared,
            SegmentKind::Text,
            geometry,
            Some(image.clone()),
            table,
        ))
        .map_err(|_| VmError::NoMemory)?;
        let mut state = image.state.lock();
        if let Some(seg) = Self::find_text(&state.kind.texts, geometry) {
            // Another exec made one meanwhile; `fresh` never took an image reference.
            drop(state);
            return Ok(Self::wrap(vm, seg));
        }
        if shared.admit(AllocSite::TextList).is_err() || state.kind.texts.try_reserve(1).is_err() {
            return Err(VmError::NoMemory);
        }
        image.refs.fetch_add(1, Ordering::AcqRel);
        state.kind.texts.push(fresh.clone());
        drop(state);
        Ok(SegmentRef {
            seg: fresh,
            vm: vm.clone(),
        })
    }

    /// Looks for a text segment of `geometry` and takes a count of it. Called under the
    /// image lock, where counts of text segments fall to 0.
    fn find_text(texts: &[Arc<Segment>], geometry: Geometry) -> Option<Arc<Segment>> {
        let seg = texts.iter().find(|seg| seg.geometry == geometry)?;
        seg.count.fetch_add(1, Ordering::AcqRel);
        Some(seg.clone())
    }

    fn wrap(vm: &Vm, seg: Arc<Segment>) -> SegmentRef {
        SegmentRef {
            seg,
            vm: vm.clone(),
        }
    }

    /// A private data segment for `geometry`, copy-on-write over the image's pages. `vm`
    /// is the instance the image is in.
    pub(crate) fn data_segment(&self, vm: &Vm, geometry: Geometry) -> Result<SegmentRef, VmError> {
        let shared = &*vm.shared;
        shared.admit(AllocSite::Segment)?;
        let table = PageTable::new(geometry.pages)?;
        let seg = Segment::new(
            shared,
            SegmentKind::Data,
            geometry,
            Some(self.image.clone()),
            table,
        );
        let seg = Arc::try_new(seg).map_err(|_| VmError::NoMemory)?;
        // This handle holds a reference, so taking another needs no lock.
        self.image.refs.fetch_add(1, Ordering::AcqRel);
        Ok(Self::wrap(vm, seg))
    }
}

impl Vm {
    /// A zero-fill-on-demand segment (`Bss` or `Stack`) of `len` bytes at `base`, both page
    /// aligned.
    pub fn zero_segment(
        &self,
        kind: SegmentKind,
        base: u64,
        len: u64,
    ) -> Result<SegmentRef, VmError> {
        if !matches!(kind, SegmentKind::Bss | SegmentKind::Stack) {
            return Err(VmError::BadLayout(LayoutError::NotZeroFill));
        }
        if !base.is_multiple_of(PAGE_BYTES) || !len.is_multiple_of(PAGE_BYTES) {
            return Err(VmError::BadLayout(LayoutError::Misaligned));
        }
        if len == 0 {
            return Err(VmError::BadLayout(LayoutError::Empty));
        }
        base.checked_add(len)
            .ok_or(VmError::BadLayout(LayoutError::Overflow))?;
        let geometry = Geometry {
            base,
            pages: len / PAGE_BYTES,
            file_start: 0,
            file_len: 0,
        };
        let shared = &*self.shared;
        shared.admit(AllocSite::Segment)?;
        let table = PageTable::new(geometry.pages)?;
        let seg = Segment::new(shared, kind, geometry, None, table);
        Ok(SegmentRef {
            seg: Arc::try_new(seg).map_err(|_| VmError::NoMemory)?,
            vm: self.clone(),
        })
    }
}
