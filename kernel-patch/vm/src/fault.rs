//! The fault path: find or make the page behind a faulting address.
//!
//! Lock order: segment lock → image lock → table lock; the free-list lock is a leaf. A
//! missing image page is read from the file with every lock dropped; then the segment is
//! locked again and the page looked up again, because another fault may have loaded it
//! meanwhile (no two pages of an image at one offset). Pages are allocated with no lock held
//! as well: the fault asks for one, drops its locks, and starts over with it in hand.
//!
//! A write never touches a page that belongs to an image: a write fault on an image page,
//! or on a page shared with another segment, copies it first.

use crate::file::{FileError, OpenFile};
use crate::frame::Frame;
use crate::page::{PageIndex, PagePool};
use crate::segment::{Backing, PageTable, SegmentKind, SegmentRef};
use crate::sync::Arc;
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
}

impl fmt::Display for FaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadAddress => f.write_str("bad address"),
            Self::ReadOnly => f.write_str("write to read-only segment"),
            Self::NoMemory => f.write_str("out of memory"),
            Self::Io(err) => write!(f, "i/o error loading page: {err}"),
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

/// One round of the fault under the segment lock.
enum Step {
    Done(Mapping),
    Fail(FaultError),
    /// Allocate a spare page with no lock held and try again.
    NeedPage,
    /// Read the image page at `offset` from `file` with no lock held and try again.
    NeedLoad {
        offset: u64,
        file: Arc<OpenFile>,
    },
}

impl SegmentRef {
    /// Resolves a fault at `addr` (Plan 9's `fixfault`). Takes the segment lock; must be
    /// called with no vm lock held (a process segment lock of the kernel's is fine). May
    /// read from the image's file and allocate frames, each with every vm lock dropped.
    pub fn fault(&self, addr: u64, access: Access) -> Result<Mapping, FaultError> {
        let seg = &*self.seg;
        let shared = &*self.vm.shared;
        let page = seg.page_number(addr).ok_or(FaultError::BadAddress)?;
        if access == Access::Write && seg.kind == SegmentKind::Text {
            return Err(FaultError::ReadOnly);
        }
        let mut spare = HeldPage::new(&shared.pool);
        let mut loaded = HeldPage::new(&shared.pool);
        loop {
            let step = {
                let mut table = seg.table.lock();
                self.fault_locked(&mut table, page, access, &mut spare, &mut loaded)
            };
            match step {
                Step::Done(mapping) => return Ok(mapping),
                Step::Fail(err) => return Err(err),
                Step::NeedPage => {
                    let fresh = shared.new_page().map_err(|_| FaultError::NoMemory)?;
                    spare.page = Some(fresh);
                }
                Step::NeedLoad { offset, file } => {
                    let fresh = shared.load_page(&file, offset)?;
                    loaded.page = Some(fresh);
                    // `file` is dropped here, with no lock held.
                }
            }
        }
    }

    fn fault_locked(
        &self,
        table: &mut PageTable,
        page: u64,
        access: Access,
        spare: &mut HeldPage<'_>,
        loaded: &mut HeldPage<'_>,
    ) -> Step {
        let seg = &*self.seg;
        let shared = &*self.vm.shared;
        let pool = &shared.pool;
        let frames = &*shared.frames;
        if table.ensure(page, shared).is_err() {
            return Step::Fail(FaultError::NoMemory);
        }
        if let Some(resident) = table.get(page) {
            return self.fault_resident(table, page, resident, access, spare);
        }
        match seg.geometry.backing(page) {
            Backing::Zero => {
                let Some(fresh) = spare.page.take() else {
                    return Step::NeedPage;
                };
                frames.zero(pool.frame(fresh));
                table.set(page, fresh);
                Step::Done(Mapping {
                    frame: pool.frame(fresh),
                    writable: true,
                })
            }
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
                let cached = match image.lookpage(&mut state, pool, offset) {
                    Some(cached) => cached,
                    None => match loaded.page.take() {
                        Some(fresh) => {
                            let (cached, unused) =
                                image.cache_or_get(&mut state, pool, offset, fresh);
                            loaded.page = unused;
                            cached
                        }
                        None => {
                            let file = state.chan.clone();
                            drop(state);
                            return match file {
                                Some(file) => Step::NeedLoad { offset, file },
                                // Impossible while the segment holds its image reference.
                                None => Step::Fail(FaultError::Io(FileError::Gone)),
                            };
                        }
                    },
                };
                drop(state);
                if !copy {
                    table.set(page, cached);
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
                table.set(page, fresh);
                Step::Done(Mapping {
                    frame: pool.frame(fresh),
                    writable: true,
                })
            }
        }
    }

    /// A fault on a page that is already mapped: a protection fault, or a refault.
    fn fault_resident(
        &self,
        table: &mut PageTable,
        page: u64,
        resident: PageIndex,
        access: Access,
        spare: &mut HeldPage<'_>,
    ) -> Step {
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
        table.set(page, fresh);
        pool.put(resident);
        Step::Done(Mapping {
            frame: pool.frame(fresh),
            writable: true,
        })
    }
}
