//! The fault path: find or make the page behind a faulting address.
//!
//! Lock order: segment lock → image lock → table lock; the free-list lock is a leaf. A
//! missing image page is cached at once as a *loading* page, then read from the file with
//! every lock dropped; a fault that finds a loading page sleeps until a load finishes and
//! starts over (`wait.rs`), so each page of an image is read once however many faults want
//! it, and no two pages of an image share an offset. Pages are allocated with no lock held
//! as well: the fault asks for one, drops its locks, and starts over with it in hand.
//!
//! A write never touches a page that belongs to an image: a write fault on an image page,
//! or on a page shared with another segment, copies it first.
//!
//! A read of zero-fill memory nobody wrote maps the zero page read only and allocates
//! nothing; a write there, first or after such a read, allocates a private zeroed page
//! (`zero.rs`).

use crate::file::FileError;
use crate::frame::Frame;
use crate::image::{ExecChannel, ExecImage, Lookup};
use crate::page::{PageIndex, PagePool};
use crate::resident::PageIn;
use crate::segment::{Backing, Entry, PageTable, SegmentKind, SegmentRef};
use crate::sync::{Arc, Ordering};
use crate::vm::VmState;
use core::fmt;

/// The kind of access that faulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// A load or an instruction fetch.
    Read,
    /// A store.
    Write,
}

/// What the kernel should map after a successful fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The frame to map at the faulting page.
    pub frame: Frame,
    /// Whether the mapping may be writable. When false, a later write faults again and
    /// copies.
    pub writable: bool,
}

/// Why a fault failed (the process gets a note or a bus error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultError {
    /// The address is outside the segment.
    BadAddress,
    /// A write to a read-only (text) segment.
    ReadOnly,
    /// No page could be allocated, even after reclaim.
    NoMemory,
    /// Reading the page from the file failed.
    Io(FileError),
    /// The page is neither cached nor mapped (or is still being loaded by another fault),
    /// and the fault was not allowed to read it or wait for it
    /// ([`SegmentRef::fault_resident_only`]). Nothing was changed.
    WouldBlock,
    /// The page is wholly past the end of the mapped file (the kernel's bus error, not a
    /// segmentation fault: the address is mapped).
    PastEnd,
}

impl fmt::Display for FaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadAddress => f.write_str("bad address"),
            Self::ReadOnly => f.write_str("write to read-only segment"),
            Self::NoMemory => f.write_str("out of memory"),
            Self::Io(err) => write!(f, "i/o error loading page: {err}"),
            Self::WouldBlock => f.write_str("page not resident and the fault may not block"),
            Self::PastEnd => f.write_str("access past the end of the mapped file"),
        }
    }
}

impl core::error::Error for FaultError {}

/// A page the fault holds (at ref 1) but has not mapped yet; freed if it goes unused.
struct HeldPage<'a> {
    pool: &'a PagePool,
    page: Option<PageIndex>,
}

impl<'a> HeldPage<'a> {
    fn new(pool: &'a PagePool) -> Self {
        Self { pool, page: None }
    }
}

impl Drop for HeldPage<'_> {
    fn drop(&mut self) {
        if let Some(page) = self.page.take() {
            self.pool.put(page);
        }
    }
}

/// The pages a fault holds across its rounds: a page for copies and zero fill; a page to
/// load into; a page this fault loaded (cached, held at ref 1 until it is mapped or copied).
struct FaultPages<'a> {
    spare: HeldPage<'a>,
    fresh: HeldPage<'a>,
    loaded: HeldPage<'a>,
}

/// A loading page this fault cached and is reading (held at ref 1). Unless
/// [`finish`](Self::finish)ed, dropping it takes the page out of its image again and frees
/// it (the read failed, or the fault ended some other way); either way the faults waiting
/// for a load are woken.
struct PageLoad<'a> {
    shared: &'a VmState,
    image: Arc<ExecImage>,
    page: PageIndex,
    finished: bool,
}

impl PageLoad<'_> {
    /// The page's bytes are in: it becomes an ordinary cached page, still held at ref 1
    /// by the caller.
    fn finish(mut self) -> PageIndex {
        let state = self.image.state.lock();
        self.shared.pool.clear_loading(self.page);
        drop(state);
        self.finished = true;
        self.shared.load_finished();
        self.page
    }
}

impl Drop for PageLoad<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let pool = &self.shared.pool;
        let mut state = self.image.state.lock();
        self.image.unlink_loading(&mut state, pool, self.page);
        drop(state);
        // Uncached at ref 1: to the free list.
        pool.put(self.page);
        self.shared.load_finished();
    }
}

/// One round of the fault under the segment lock.
enum Step<'a> {
    Done(Mapping),
    Fail(FaultError),
    /// Allocate a spare page with no lock held and try again.
    NeedPage,
    /// Allocate a page to load an image page into, with no lock held, and try again.
    NeedLoadPage,
    /// Read the loading page `load` (the image's page at `offset`) from `file` with no
    /// lock held and try again.
    NeedLoad {
        offset: u64,
        file: Arc<ExecChannel>,
        load: PageLoad<'a>,
    },
    /// Another fault loads the page: sleep until a load finishes after `seen` loads, and
    /// try again.
    WaitLoad {
        seen: u64,
    },
}

impl SegmentRef {
    /// Resolves a fault at `addr` (Plan 9's `fixfault`). Takes the segment lock; must be
    /// called with no vm lock held (a process segment lock of the kernel's is fine). May
    /// read from the image's file and allocate frames, each with every vm lock dropped.
    pub fn fault(&self, addr: u64, access: Access) -> Result<Mapping, FaultError> {
        self.fault_with(addr, access, PageIn::MayBlock)
    }

    /// [`fault`](Self::fault), or with `PageIn::ResidentOnly` its form that never reads
    /// and never sleeps (`resident.rs`).
    pub(crate) fn fault_with(
        &self,
        addr: u64,
        access: Access,
        page_in: PageIn,
    ) -> Result<Mapping, FaultError> {
        let result = self.fault_unlocked(addr, access, page_in);
        // Every vm lock is released and the pages this fault did not use are freed: frames
        // past the free pool's bound go back to the kernel.
        self.vm.shared.trim_free_pool();
        result
    }

    fn fault_unlocked(
        &self,
        addr: u64,
        access: Access,
        page_in: PageIn,
    ) -> Result<Mapping, FaultError> {
        let seg = &*self.seg;
        let shared = &*self.vm.shared;
        let page = seg.page_number(addr).ok_or(FaultError::BadAddress)?;
        if access == Access::Write && seg.kind == SegmentKind::Text {
            return Err(FaultError::ReadOnly);
        }
        let mut pages = FaultPages {
            spare: HeldPage::new(&shared.pool),
            fresh: HeldPage::new(&shared.pool),
            loaded: HeldPage::new(&shared.pool),
        };
        loop {
            let step = {
                let mut table = seg.table.lock();
                self.fault_locked(&mut table, page, access, page_in, &mut pages)
            };
            match step {
                Step::Done(mapping) => return Ok(mapping),
                Step::Fail(err) => return Err(err),
                Step::NeedPage => {
                    let page = shared.new_page().map_err(|_| FaultError::NoMemory)?;
                    pages.spare.page = Some(page);
                }
                Step::NeedLoadPage => {
                    let page = shared.new_page().map_err(|_| FaultError::NoMemory)?;
                    pages.fresh.page = Some(page);
                }
                Step::NeedLoad { offset, file, load } => {
                    let result = shared.read_page_into(&file, offset, load.page);
                    // If the image let its channel go meanwhile, this was the last reference:
                    // dropping it parks the file (the kernel's lock may be held: no close).
                    drop(file);
                    result?;
                    pages.loaded.page = Some(load.finish());
                }
                Step::WaitLoad { seen } => {
                    shared
                        .counters
                        .page_load_waits
                        .fetch_add(1, Ordering::Relaxed);
                    let done = || shared.loads_finished.load(Ordering::Acquire) != seen;
                    shared.page_wait.sleep(&done).map_err(FaultError::Io)?;
                }
            }
        }
    }

    fn fault_locked(
        &self,
        table: &mut PageTable,
        page: u64,
        access: Access,
        page_in: PageIn,
        pages: &mut FaultPages<'_>,
    ) -> Step<'_> {
        let FaultPages {
            spare,
            fresh,
            loaded,
        } = pages;
        let seg = &*self.seg;
        let shared = &*self.vm.shared;
        let pool = &shared.pool;
        let frames = &*shared.frames;
        if table.ensure(page, shared).is_err() {
            return Step::Fail(FaultError::NoMemory);
        }
        match table.get(page) {
            Some(Entry::Page(resident)) => {
                return self.fault_resident(table, page, resident, access, spare);
            }
            Some(Entry::Zero) => return self.fault_zero(table, page, true, access, spare),
            None => {}
        }
        match seg.geometry.backing(page) {
            Backing::Zero => self.fault_zero(table, page, false, access, spare),
            Backing::File { offset, keep } => {
                // Data copies its partial last page (zeroing past the file range) and any
                // page it writes; text maps image pages as they are.
                let copy =
                    seg.kind != SegmentKind::Text && (keep.is_some() || access == Access::Write);
                if copy && spare.page.is_none() {
                    return Step::NeedPage;
                }
                let Some(image) = seg.image.as_ref() else {
                    return Step::Fail(FaultError::Io(FileError::Gone));
                };
                let mut state = image.state.lock();
                // The page this fault loaded stays cached while it holds it: reclaim takes
                // pages at ref 0 only.
                let cached = match loaded.page.take() {
                    Some(ours) => ours,
                    None => match image.lookpage(&mut state, pool, offset) {
                        Lookup::Cached(cached) => cached,
                        // Reading it, or waiting for its loader, is what the caller may not
                        // do: refused before anything is cached or marked.
                        Lookup::Loading | Lookup::Missing if page_in == PageIn::ResidentOnly => {
                            drop(state);
                            shared
                                .counters
                                .faults_would_block
                                .fetch_add(1, Ordering::Relaxed);
                            return Step::Fail(FaultError::WouldBlock);
                        }
                        Lookup::Loading => {
                            // Read while the page is marked: its loader counts after it
                            // clears the mark under this lock.
                            let seen = shared.loads_finished.load(Ordering::Acquire);
                            drop(state);
                            return Step::WaitLoad { seen };
                        }
                        Lookup::Missing => {
                            let Some(file) = state.kind.chan.clone() else {
                                // Impossible while the segment holds its image reference.
                                return Step::Fail(FaultError::Io(FileError::Gone));
                            };
                            let Some(page) = fresh.page.take() else {
                                drop(state);
                                return Step::NeedLoadPage;
                            };
                            image.insert(&mut state, pool, offset, page);
                            pool.set_loading(page);
                            drop(state);
                            return Step::NeedLoad {
                                offset,
                                file,
                                load: PageLoad {
                                    shared,
                                    image: image.clone(),
                                    page,
                                    finished: false,
                                },
                            };
                        }
                    },
                };
                drop(state);
                if !copy {
                    table.set(page, Entry::Page(cached));
                    return Step::Done(Mapping {
                        frame: pool.frame(cached),
                        writable: false,
                    });
                }
                let Some(fresh) = spare.page.take() else {
                    pool.put(cached);
                    return Step::NeedPage;
                };
                frames.copy(pool.frame(cached), pool.frame(fresh));
                if let Some(keep) = keep {
                    frames.with_frame_mut(pool.frame(fresh), &mut |bytes| {
                        bytes[keep..].fill(0);
                    });
                }
                pool.put(cached);
                table.set(page, Entry::Page(fresh));
                Step::Done(Mapping {
                    frame: pool.frame(fresh),
                    writable: true,
                })
            }
        }
    }

    /// A fault on zero-fill memory nobody wrote: at an empty entry, or at one that maps the
    /// zero page (`mapped`). A read maps the zero page, read only; a write allocates a
    /// private zeroed page and maps it writable, replacing the zero page if it was there.
    fn fault_zero(
        &self,
        table: &mut PageTable,
        page: u64,
        mapped: bool,
        access: Access,
        spare: &mut HeldPage<'_>,
    ) -> Step<'_> {
        let shared = &*self.vm.shared;
        let zero = &shared.zero;
        if access == Access::Read {
            if !mapped {
                table.set(page, Entry::Zero);
                zero.mapped_on_read();
            }
            return Step::Done(Mapping {
                frame: zero.frame(),
                writable: false,
            });
        }
        let Some(fresh) = spare.page.take() else {
            return Step::NeedPage;
        };
        let pool = &shared.pool;
        shared.frames.zero(pool.frame(fresh));
        table.set(page, Entry::Page(fresh));
        if mapped {
            zero.replaced_on_write();
        }
        Step::Done(Mapping {
            frame: pool.frame(fresh),
            writable: true,
        })
    }

    /// A fault on a page that is already mapped: a protection fault, or a refault.
    fn fault_resident(
        &self,
        table: &mut PageTable,
        page: u64,
        resident: PageIndex,
        access: Access,
        spare: &mut HeldPage<'_>,
    ) -> Step<'_> {
        let shared = &*self.vm.shared;
        let pool = &shared.pool;
        // Under the segment lock nobody else can take a reference to an uncached page of
        // ours (fork takes this lock too), so a private page at ref 1 stays ours.
        let exclusive = pool.owner(resident) == 0 && pool.refs(resident) == 1;
        let writable = self.seg.kind != SegmentKind::Text && exclusive;
        if access == Access::Read || writable {
            return Step::Done(Mapping {
                frame: pool.frame(resident),
                writable,
            });
        }
        // Copy on write.
        let Some(fresh) = spare.page.take() else {
            return Step::NeedPage;
        };
        shared.frames.copy(pool.frame(resident), pool.frame(fresh));
        table.set(page, Entry::Page(fresh));
        pool.put(resident);
        Step::Done(Mapping {
            frame: pool.frame(fresh),
            writable: true,
        })
    }
}
