//! Page buffers: a run's pages behind a reference count, so that a reply can hold the
//! pages it sends instead of a copy of them.
//!
//! **Sharing.** A run's slots are one allocation behind an `Arc` ([`Slots`]). A read may
//! hand a whole run to its reply as [`SharedPages`] (a clone of the `Arc`, no copy), and
//! the reply sends from the pages after the file's data lock is released. Every change
//! of a run's bytes goes through [`unshared`], which first replaces a run that a reply
//! still holds by a copy (copy on write), so a queued reply sends the bytes the read saw
//! and the file has the new ones. A run is shared only while a reply holds it, and only
//! runs with no lent page are handed out (a lent page must stay where the mapping has
//! it, and a write to it is seen by the mapping in place).
//!
//! **Why the count is right without a lock of its own.** A reply takes its clone under
//! the file's data lock, shared; every change of the pages holds the same lock alone, so
//! it sees every clone made before it. A reply dropping its clone needs no lock: a writer
//! that still saw it copies once for nothing.
//!
//! **Exported runs** (Linux). A reply sent by reference (`vmsplice`, then `splice` into
//! a socket) gives the kernel references to the run's physical pages, and the kernel
//! may keep them for as long as anyone likes: the client can splice them on from its
//! socket into a pipe of its own, which takes references too and leaves no trace we can
//! see. So a run once sent that way is *exported* ([`SharedPages::export`]) for good:
//! it is never written again (a change copies it, as for a held run) and its memory is
//! dropped from our mapping (`MADV_DONTNEED`) before it is freed or used again, so that
//! whoever still refers to those physical pages keeps the bytes they had, and our next
//! use of that memory gets fresh pages. The flag is set while the exporter holds a clone,
//! so a writer that finds the run unique (the `Arc`'s count is synchronised) sees it.

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Bytes in a page.
pub const PAGE_SIZE: usize = 4096;

/// One page of file data, aligned to its size so it can be mapped.
#[derive(Clone)]
#[repr(C, align(4096))]
pub struct Page(pub [u8; PAGE_SIZE]);

impl Page {
    pub(super) const ZERO: Page = Page([0; PAGE_SIZE]);

    /// A run of one page holding `bytes`, written straight into the new allocation: no
    /// zero fill first (a Twrite covering a whole new page) and no page-sized value on
    /// the stack.
    pub(super) fn run_of(bytes: &[u8; PAGE_SIZE]) -> Box<[Page]> {
        let mut slots = Box::<[Page]>::new_uninit_slice(1);
        for slot in slots.iter_mut() {
            // SAFETY: `slot` is one uninitialised `Page` of a fresh allocation: PAGE_SIZE
            // writable bytes, which `bytes` (borrowed, so allocated elsewhere) cannot
            // overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    bytes.as_ptr(),
                    slot.as_mut_ptr().cast::<u8>(),
                    PAGE_SIZE,
                );
            }
        }
        // SAFETY: the one slot's PAGE_SIZE bytes were all written above, and every byte
        // pattern is a valid `Page` (it is an array of bytes).
        unsafe { slots.assume_init() }
    }
}

/// What a hole reads as.
pub(super) static ZERO_PAGE: Page = Page::ZERO;

/// A run's pages, side by side, and whether they were exported (see the module's notes).
pub(super) struct RunPages {
    pages: Box<[Page]>,
    exported: AtomicBool,
}

impl From<Box<[Page]>> for RunPages {
    fn from(pages: Box<[Page]>) -> RunPages {
        RunPages {
            pages,
            exported: AtomicBool::new(false),
        }
    }
}

impl Clone for RunPages {
    /// A copy of the pages, not exported.
    fn clone(&self) -> RunPages {
        RunPages::from(self.pages.clone())
    }
}

impl Deref for RunPages {
    type Target = [Page];
    fn deref(&self) -> &[Page] {
        &self.pages
    }
}

impl RunPages {
    fn is_exported(&self) -> bool {
        self.exported.load(Ordering::Acquire)
    }

    /// The pages, to change: the one way to them, for runs never exported (or dropped
    /// from our mapping since).
    fn pages_mut(&mut self) -> &mut [Page] {
        debug_assert!(!self.is_exported(), "a write to an exported run");
        &mut self.pages
    }

    /// Drops the pages' memory from our mapping if they were exported: afterwards they
    /// read as zeros and are ours alone again. False if that failed (they stay exported).
    fn unexport(&mut self) -> bool {
        if !self.is_exported() {
            return true;
        }
        if !drop_from_mapping(&mut self.pages) {
            return false;
        }
        *self.exported.get_mut() = false;
        true
    }
}

impl Drop for RunPages {
    /// An exported run's memory goes back to the allocator only once dropped from our
    /// mapping; if that fails it is kept for good (logged), never reused.
    fn drop(&mut self) {
        if !self.unexport() {
            tracing::warn!(
                "{} exported pages kept for good: they cannot be dropped from our mapping",
                self.pages.len()
            );
            std::mem::forget(std::mem::take(&mut self.pages));
        }
    }
}

/// `madvise(MADV_DONTNEED)` on `pages`: the physical pages go from our mapping (whoever
/// else refers to them keeps them as they are) and the addresses read as zeros.
#[cfg(target_os = "linux")]
fn drop_from_mapping(pages: &mut [Page]) -> bool {
    if pages.is_empty() {
        return true;
    }
    // SAFETY: `pages` is memory we own exclusively (borrowed mutably), page-aligned and
    // a whole number of pages (`Page` is 4096 bytes aligned to 4096), so the call
    // affects no other object; afterwards it reads as zeros, a valid `Page` each.
    let rc = unsafe {
        libc::madvise(
            pages.as_mut_ptr().cast(),
            std::mem::size_of_val(pages),
            libc::MADV_DONTNEED,
        )
    };
    rc == 0
}

/// Nothing is exported where nothing is sent by reference.
#[cfg(not(target_os = "linux"))]
fn drop_from_mapping(_pages: &mut [Page]) -> bool {
    true
}

/// A run's pages, shared with the replies that hold them.
pub(super) type Slots = Arc<RunPages>;

/// True if `slots` may be written in place: nothing else holds it and it was never
/// exported.
fn writable(slots: &mut Slots) -> bool {
    Arc::get_mut(slots).is_some_and(|run| !run.is_exported())
}

/// A run's pages for changing: the run itself if nothing else holds it and it was not
/// exported, else a copy that takes its place, counted in `replaced`.
pub(super) fn unshared<'a>(slots: &'a mut Slots, replaced: &mut u64) -> &'a mut [Page] {
    if !writable(slots) {
        *replaced += 1;
        *slots = Arc::new(RunPages::clone(slots));
    }
    // Never a copy: the run is unique now.
    Arc::make_mut(slots).pages_mut()
}

/// Replaces a run of one page by a new page of `bytes`, without copying the old one
/// first: a write covering the whole page. Counted in `replaced` if a reply held the
/// old page or it was exported.
pub(super) fn replace_page(slots: &mut Slots, bytes: &[u8; PAGE_SIZE], replaced: &mut u64) {
    if writable(slots) {
        if let Some(page) = Arc::make_mut(slots).pages_mut().first_mut() {
            page.0.copy_from_slice(bytes);
        }
        return;
    }
    *replaced += 1;
    *slots = Arc::new(Page::run_of(bytes).into());
}

/// A page of a client's write data, received straight into a buffer of its own so
/// that it can become a file's page (a run of one page) without a copy
/// ([`FileData::write_gathered`](super::FileData::write_gathered)). It is a run of one
/// page already, so taking it into a file, or back from one, allocates nothing.
/// Nothing else refers to it: a buffer is made zeroed, or is a page a file let go of
/// that no reply held.
pub struct PageBuf(pub(super) Slots);

impl PageBuf {
    /// A zeroed page.
    pub fn new() -> PageBuf {
        PageBuf(Arc::new(vec![Page::ZERO].into_boxed_slice().into()))
    }

    /// Its bytes (a page of them), to receive into.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // Never a copy: nothing else holds the run (see the type's notes).
        match Arc::make_mut(&mut self.0).pages_mut().first_mut() {
            Some(page) => &mut page.0,
            None => &mut [],
        }
    }

    /// Its bytes (a page of them).
    pub fn bytes(&self) -> &[u8] {
        self.0.first().map_or(&[], |page| &page.0)
    }

    /// The run of one page `slots`, if nothing else holds it (an exported page is
    /// dropped from our mapping first, so it comes back zeroed).
    pub(super) fn reclaim(mut slots: Slots) -> Option<PageBuf> {
        let run = Arc::get_mut(&mut slots)?;
        (run.len() == 1 && run.unexport()).then_some(PageBuf(slots))
    }
}

impl Default for PageBuf {
    fn default() -> Self {
        PageBuf::new()
    }
}

/// Pages of a file that a reply holds until it is sent, and the bytes of them it sends
/// (a whole run, or a piece of a run of one page); they never change (a write replaces
/// them in the file instead). Cheap to clone.
#[derive(Clone)]
pub struct SharedPages {
    pub(super) slots: Slots,
    /// The bytes sent: `from..from + len` of the run.
    pub(super) from: usize,
    pub(super) len: usize,
}

impl SharedPages {
    /// All of the run `slots`.
    pub(super) fn whole(slots: Slots) -> SharedPages {
        let len = slots.len() * PAGE_SIZE;
        SharedPages {
            slots,
            from: 0,
            len,
        }
    }

    /// Bytes `from..from + len` of the run `slots` (clipped to it).
    pub(super) fn part(slots: Slots, from: usize, len: usize) -> SharedPages {
        let run = slots.len() * PAGE_SIZE;
        let from = from.min(run);
        SharedPages {
            slots,
            from,
            len: len.min(run - from),
        }
    }

    /// The bytes sent, a page (or the piece of one) at a time.
    pub fn pages(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let end = self.from + self.len;
        self.slots.iter().enumerate().filter_map(move |(i, page)| {
            let (lo, hi) = (i * PAGE_SIZE, (i + 1) * PAGE_SIZE);
            let (a, b) = (self.from.max(lo), end.min(hi));
            (a < b).then(|| &page.0[a - lo..b - lo])
        })
    }

    /// Bytes sent.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Pages the bytes sent lie in (a slice each in a write).
    pub fn page_count(&self) -> usize {
        if self.len == 0 {
            return 0;
        }
        (self.from + self.len).div_ceil(PAGE_SIZE) - self.from / PAGE_SIZE
    }

    /// True if no byte is sent (never for pages a read handed out).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Marks the run these pages are of exported, for good: the caller is about to give
    /// the kernel references to its physical pages (see the module's notes).
    pub fn export(&self) {
        self.slots.exported.store(true, Ordering::Release);
    }
}

/// A piece of a read, in order: bytes to copy now, or whole pages a reply may hold.
pub enum Piece<'a> {
    Bytes(&'a [u8]),
    Pages(SharedPages),
}
