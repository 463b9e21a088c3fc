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

/// A run's pages, side by side, shared with the replies that hold them.
pub(super) type Slots = Arc<Box<[Page]>>;

/// A run's pages for changing: the run itself if nothing else holds it, else (a reply
/// holds it) a copy that takes its place, counted in `replaced`.
pub(super) fn unshared<'a>(slots: &'a mut Slots, replaced: &mut u64) -> &'a mut [Page] {
    let before = slots.as_ptr();
    // One uniqueness check: `make_mut` copies only if the run is shared, and the copy's
    // pages are elsewhere.
    let pages = Arc::make_mut(slots).as_mut();
    if !std::ptr::eq(before, pages.as_ptr()) {
        *replaced += 1;
    }
    pages
}

/// Replaces a run of one page by a new page of `bytes`, without copying the old one
/// first: a write covering the whole page. Counted in `replaced` if a reply held the
/// old page.
pub(super) fn replace_page(slots: &mut Slots, bytes: &[u8; PAGE_SIZE], replaced: &mut u64) {
    match Arc::get_mut(slots) {
        Some(pages) => pages[0].0.copy_from_slice(bytes),
        None => {
            *replaced += 1;
            *slots = Arc::new(Page::run_of(bytes));
        }
    }
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
        PageBuf(Arc::new(vec![Page::ZERO].into_boxed_slice()))
    }

    /// Its bytes (a page of them), to receive into.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // Never a copy: nothing else holds the run (see the type's notes).
        match Arc::make_mut(&mut self.0).first_mut() {
            Some(page) => &mut page.0,
            None => &mut [],
        }
    }

    /// Its bytes (a page of them).
    pub fn bytes(&self) -> &[u8] {
        self.0.first().map_or(&[], |page| &page.0)
    }

    /// The run of one page `slots`, if nothing else holds it.
    pub(super) fn reclaim(mut slots: Slots) -> Option<PageBuf> {
        let unique = Arc::get_mut(&mut slots).is_some_and(|pages| pages.len() == 1);
        unique.then_some(PageBuf(slots))
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

    /// How many hold these pages: the file (while they are its pages), and each clone.
    #[cfg(test)]
    pub fn holders(&self) -> usize {
        Arc::strong_count(&self.slots)
    }
}

/// A piece of a read, in order: bytes to copy now, or whole pages a reply may hold.
pub enum Piece<'a> {
    Bytes(&'a [u8]),
    Pages(SharedPages),
}
