//! File contents as sparse, page-aligned 4 KiB pages, kept in runs so that several
//! consecutive pages can be lent for a memory mapping at one address.
//!
//! **Runs.** A file's pages live in *runs*: one allocation holding the pages of file
//! pages `start..start + len` side by side, each aligned to its size. A page written for
//! the first time gets a run of its own (one page), so a plain file costs what it did
//! when every page was its own allocation. Holes read as zeros and cost nothing.
//!
//! **Lending.** A mapping front end (Redox's `mmap_prep`) needs the pages of a window
//! `first..end` at one address, side by side, and needs them to stay there until it
//! gives them back ([`FileData::lend`], [`FileData::give_back`]). If the window lies in
//! one run, it is lent in place. Otherwise the runs it touches are merged: one new run
//! covers the window, every run it touches, and the runs next to those for as long as
//! they are present and not lent; their pages are copied in and the old runs freed. So
//! the first mapping of a dense file moves the whole file into one run, and later
//! windows of it (an executable's data segment after its text, sharing a page with it)
//! fall inside that run and are lent in place. A hole in the window gets a zero page.
//!
//! **A lent page stays put.** Every rule below serves that one:
//! - a lent page is never moved: a window whose pages could only be made contiguous by
//!   moving a lent page is refused ([`LendError::Pinned`]);
//! - a lent page is never freed: a truncation that would drop one is refused
//!   ([`Pinned`]) and changes nothing;
//! - a run holding a lent page is never freed or reallocated. Truncation that drops other
//!   pages of it leaves their slots *vacant*: zero-filled, still allocated, counted in
//!   [`FileData::held_pages`]; a later write to such a page fills its slot again. When the
//!   run's last loan comes back its live pages move into right-sized runs and the vacant
//!   slots are freed. So vacant slots exist only in runs with lent pages.
//!
//! **Memory.** [`FileData::held_pages`] is exactly the pages allocated, every slot of
//! every run; [`FileData::allocated_pages`] the ones holding file data. Growing,
//! writing, lending and truncating change the held count by exactly the pages they
//! allocate or free, and say so, so the tree's account stays exact. Merging runs copies
//! pages: for that moment the old and the new run both exist.
//!
//! **Held by replies.** A read may hand whole runs to a reply to send uncopied
//! ([`FileData::read_pieces`]); a change of a run a reply holds replaces it by a copy
//! (`pages.rs`), which takes its place in the same slots of the count: the old run is
//! the reply's alone from then on, and goes when the reply has been written.

use std::collections::{BTreeMap, BTreeSet};
use std::ptr::NonNull;
use std::sync::Arc;

mod gathered;

use super::loans::Loans;
use super::pages::{replace_page, unshared, Slots, ZERO_PAGE};
pub use super::pages::{Page, PageBuf, Piece, SharedPages, PAGE_SIZE};
pub use gathered::Gathered;

/// [`PAGE_SIZE`] as a file offset.
const PAGE: u64 = PAGE_SIZE as u64;

/// The least piece of a page that a read whose reply is copied into a socket hands as
/// held pages rather than bytes (see [`FileData::read_pieces`]): below it, a reference
/// costs more than the copy.
pub const PIECE_SHARE_MIN: usize = 2048;

/// A change that would move or free a lent page: refused, nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pinned;

/// Why [`FileData::lend`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LendError<E> {
    /// The window is empty or reaches a page that holds no byte of the file.
    OutOfRange,
    /// Making the window contiguous would move a page that is lent.
    Pinned,
    /// The pages for the window's holes could not be reserved.
    Reserve(E),
}

/// The pages of file pages `start..start + slots.len()`, side by side.
struct Run {
    /// Shared with the replies holding them ([`SharedPages`]); changed only through
    /// [`unshared`].
    slots: Slots,
    /// Slots (offsets into `slots`) that hold no page of the file. Always zero-filled,
    /// so that filling one again reads as a fresh page.
    vacant: BTreeSet<u64>,
}

impl Run {
    fn len(&self) -> u64 {
        self.slots.len() as u64
    }

    fn live(&self) -> u64 {
        self.len() - self.vacant.len() as u64
    }

    fn is_live(&self, slot: u64) -> bool {
        !self.vacant.contains(&slot)
    }
}

/// The contents of a regular file: its length, its pages, and which of them are lent.
#[derive(Default)]
pub struct FileData {
    /// Runs by their first page index; they never overlap.
    runs: BTreeMap<u64, Run>,
    loans: Loans,
    size: u64,
    /// Pages holding file data (the live slots of all runs).
    live: u64,
    /// Pages allocated (all slots of all runs).
    held: u64,
    /// Runs replaced by a copy (or new data) because a reply still held them.
    replaced: u64,
    /// Received page buffers that became pages of the file ([`FileData::write_gathered`]).
    taken: u64,
}

/// What [`FileData::give_back`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GivenBack {
    /// Pages returned that had no loan (returned twice, or never lent).
    pub unmatched: u64,
    /// Pages of memory freed: vacant slots of runs whose last loan came back.
    pub freed: u64,
}

/// Page index of a byte offset.
fn page_of(offset: u64) -> u64 {
    offset / PAGE
}

impl FileData {
    /// Length in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Pages that hold data (the rest are holes).
    pub fn allocated_pages(&self) -> u64 {
        self.live
    }

    /// Pages of memory the file holds: [`FileData::allocated_pages`] plus the vacant
    /// slots kept for lent pages' runs.
    pub fn held_pages(&self) -> u64 {
        self.held
    }

    /// Loans outstanding over all pages of the file.
    pub fn lent_pages(&self) -> u64 {
        self.loans.total()
    }

    /// Loans of the page at `index`.
    pub fn loans_of(&self, index: u64) -> u32 {
        self.loans.of(index)
    }

    /// The run holding a slot for page `index`, with its first page index.
    fn run_of(&self, index: u64) -> Option<(u64, &Run)> {
        let (&start, run) = self.runs.range(..=index).next_back()?;
        (index - start < run.len()).then_some((start, run))
    }

    /// The runs with a slot in `first..end`, in order.
    fn runs_over(&self, first: u64, end: u64) -> impl Iterator<Item = (u64, &Run)> + '_ {
        let end = end.max(first);
        let before = self.run_of(first).filter(|(start, _)| *start < first);
        before
            .into_iter()
            .chain(self.runs.range(first..end).map(|(s, r)| (*s, r)))
    }

    /// Page indices in `first..end` that some run has a slot for.
    fn covered(&self, first: u64, end: u64) -> u64 {
        self.runs_over(first, end)
            .map(|(start, run)| (start + run.len()).min(end) - start.max(first))
            .sum()
    }

    fn run_is_lent(&self, start: u64, run: &Run) -> bool {
        self.loans.any_in(start, start + run.len())
    }

    /// The page at `index`, if it holds data.
    pub fn page(&self, index: u64) -> Option<&Page> {
        let (start, run) = self.run_of(index)?;
        let slot = index - start;
        run.is_live(slot).then(|| &run.slots[slot as usize])
    }

    fn page_mut(&mut self, index: u64) -> Option<&mut Page> {
        let start = self.run_of(index)?.0;
        let run = self.runs.get_mut(&start)?;
        let slot = index - start;
        if run.is_live(slot) {
            unshared(&mut run.slots, &mut self.replaced).get_mut(slot as usize)
        } else {
            None
        }
    }

    /// Runs replaced by a copy (or by a write's new data) because a reply still held
    /// their pages ([`FileData::read_pieces`]) or they were exported
    /// ([`SharedPages::export`](super::SharedPages::export)), since the file was made.
    pub fn replaced_while_held(&self) -> u64 {
        self.replaced
    }

    /// Page buffers of gathered writes that became the file's pages, uncopied
    /// ([`FileData::write_gathered`]), since the file was made.
    pub fn pages_taken(&self) -> u64 {
        self.taken
    }

    /// How many pages of memory a write of `len` bytes at `offset` would allocate: the
    /// pages it touches that have no slot yet (a vacant slot is filled for free).
    pub fn pages_needed(&self, offset: u64, len: usize) -> u64 {
        if len == 0 {
            return 0;
        }
        let first = page_of(offset);
        let end = page_of(offset + len as u64 - 1) + 1;
        (end - first) - self.covered(first, end)
    }

    /// Hands the bytes `offset..offset + count`, clipped to the file's length, to `put`
    /// in order, straight from the pages, and returns how many it handed: a front end
    /// copies them once, into its reply. A hole (or vacant slot) is handed as zeros from
    /// a shared zero page.
    pub fn read_with(&self, offset: u64, count: usize, mut put: impl FnMut(&[u8])) -> usize {
        self.walk(offset, count, None, &mut |piece| {
            if let Piece::Bytes(bytes) = piece {
                put(bytes);
            }
        })
    }

    /// [`FileData::read_with`], but a run the range covers whole, with no lent page and
    /// no vacant slot, is handed as [`Piece::Pages`]: the run itself, for a reply to
    /// hold and send uncopied; so is a piece of at least `piece_min` bytes of such a
    /// run of one page (the ends of a read not aligned to pages; [`PIECE_SHARE_MIN`]
    /// for a reply that is copied at last, 1 for one sent by reference). A later change
    /// of those pages replaces them in the file (copy on write), so what the reply holds
    /// stays what this read saw. The rest (smaller pieces, pieces of longer runs, holes,
    /// lent runs) is handed as bytes to copy.
    pub fn read_pieces(
        &self,
        offset: u64,
        count: usize,
        piece_min: usize,
        mut put: impl FnMut(Piece<'_>),
    ) -> usize {
        self.walk(offset, count, Some(piece_min.max(1)), &mut put)
    }

    fn walk(
        &self,
        offset: u64,
        count: usize,
        share: Option<usize>,
        put: &mut impl FnMut(Piece<'_>),
    ) -> usize {
        if offset >= self.size || count == 0 {
            return 0;
        }
        let len = (self.size - offset).min(count as u64) as usize;
        let end = offset + len as u64;
        // One walk over the runs the range touches, not a lookup a page: a file written
        // page by page has a run for each (16,384 for 64 MiB), and a lookup each page
        // was a quarter of a 64 KiB read's instructions.
        let mut runs = self
            .runs_over(page_of(offset), page_of(end - 1) + 1)
            .peekable();
        let mut pos = offset;
        while pos < end {
            let index = page_of(pos);
            let in_page = (pos % PAGE) as usize;
            let n = (PAGE_SIZE - in_page).min((end - pos) as usize);
            while runs
                .peek()
                .is_some_and(|(start, run)| start + run.len() <= index)
            {
                runs.next();
            }
            if let Some((start, run)) = runs.peek() {
                let whole = in_page == 0 && *start == index && end - pos >= run.len() * PAGE;
                let piece_min =
                    share.filter(|_| run.vacant.is_empty() && !self.run_is_lent(*start, run));
                let shareable = piece_min.is_some();
                if shareable && whole {
                    put(Piece::Pages(SharedPages::whole(Arc::clone(&run.slots))));
                    pos += run.len() * PAGE;
                    continue;
                }
                // A piece of a run of one page: held too when it is large enough that
                // a reference costs less than the copy (a reply then holds at most a
                // page it does not send all of at each end, never a longer run).
                if piece_min.is_some_and(|min| *start == index && run.len() == 1 && n >= min) {
                    put(Piece::Pages(SharedPages::part(
                        Arc::clone(&run.slots),
                        in_page,
                        n,
                    )));
                    pos += n as u64;
                    continue;
                }
            }
            let page = match runs.peek() {
                Some((start, run)) if *start <= index && run.is_live(index - start) => {
                    &run.slots[(index - start) as usize]
                }
                _ => &ZERO_PAGE,
            };
            put(Piece::Bytes(&page.0[in_page..in_page + n]));
            pos += n as u64;
        }
        len
    }

    /// Copies up to `count` bytes from `offset`, clipped to the file's length.
    #[cfg(test)]
    pub fn read(&self, offset: u64, count: usize) -> Vec<u8> {
        let mut out = Vec::new();
        self.read_with(offset, count, |bytes| out.extend_from_slice(bytes));
        out
    }

    /// Gives page `index`, which has no slot or a vacant one, the bytes `bytes` at
    /// `in_page`: a slot filled again, or a new run of one page. A new page the bytes
    /// cover whole is made from them, not zeroed first.
    fn fill_page(&mut self, index: u64, in_page: usize, bytes: &[u8]) {
        if let Some((start, _)) = self.run_of(index) {
            // A vacant slot (zero-filled) of a run kept for a lent page.
            let Some(run) = self.runs.get_mut(&start) else {
                return;
            };
            let slot = index - start;
            if run.vacant.remove(&slot) {
                self.live += 1;
            }
            if let Some(page) = unshared(&mut run.slots, &mut self.replaced).get_mut(slot as usize)
            {
                page.0[in_page..in_page + bytes.len()].copy_from_slice(bytes);
            }
            return;
        }
        let slots = match <&[u8; PAGE_SIZE]>::try_from(bytes) {
            Ok(whole) => Page::run_of(whole),
            Err(_) => {
                let mut slots = vec![Page::ZERO].into_boxed_slice();
                slots[0].0[in_page..in_page + bytes.len()].copy_from_slice(bytes);
                slots
            }
        };
        self.runs.insert(
            index,
            Run {
                slots: Arc::new(slots.into()),
                vacant: BTreeSet::new(),
            },
        );
        self.held += 1;
        self.live += 1;
    }

    /// Writes the front of `data` at `pos` into pages that hold data already, walking
    /// the runs once (not a lookup a page), up to the first page that has no slot or a
    /// vacant one. Returns the bytes written.
    fn write_in_place(&mut self, pos: u64, data: &[u8]) -> usize {
        let Some((start, _)) = self.run_of(page_of(pos)) else {
            return 0;
        };
        let mut done = 0;
        for (&first, run) in self.runs.range_mut(start..) {
            loop {
                if done == data.len() {
                    return done;
                }
                let at = pos + done as u64;
                let index = page_of(at);
                if index < first {
                    // A hole before this run.
                    return done;
                }
                let slot = index - first;
                if slot >= run.len() {
                    break;
                }
                if !run.is_live(slot) {
                    return done;
                }
                let in_page = (at % PAGE) as usize;
                let n = (PAGE_SIZE - in_page).min(data.len() - done);
                let bytes = &data[done..done + n];
                match <&[u8; PAGE_SIZE]>::try_from(bytes) {
                    // A run of one page written whole: a reply holding it keeps the old
                    // page, and the new one is made from the data (no copy of the old).
                    Ok(whole) if run.len() == 1 => {
                        replace_page(&mut run.slots, whole, &mut self.replaced)
                    }
                    _ => {
                        if let Some(page) =
                            unshared(&mut run.slots, &mut self.replaced).get_mut(slot as usize)
                        {
                            page.0[in_page..in_page + n].copy_from_slice(bytes);
                        }
                    }
                }
                done += n;
            }
        }
        done
    }

    /// Writes `data` at `offset`, allocating pages as needed and growing the length.
    /// The caller has checked the memory limit with [`FileData::pages_needed`] and that
    /// `offset + data.len()` does not overflow. Lent pages are written in place: a
    /// mapping sees the write. Pages a reply holds are replaced instead (see
    /// [`FileData::read_pieces`]). Writing nothing changes nothing, past the end
    /// included (as write(2) of 0 bytes).
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let mut done = 0usize;
        while done < data.len() {
            done += self.write_in_place(offset + done as u64, &data[done..]);
            if done == data.len() {
                break;
            }
            // A page with no slot, or a vacant one: give it one.
            let pos = offset + done as u64;
            let in_page = (pos % PAGE) as usize;
            let n = (PAGE_SIZE - in_page).min(data.len() - done);
            self.fill_page(page_of(pos), in_page, &data[done..done + n]);
            done += n;
        }
        self.size = self.size.max(offset + data.len() as u64);
    }

    /// Sets the length. Growing leaves a hole; shrinking frees the pages past the end and
    /// zeroes the tail of the last one, so a later grow reads zeros. Returns the pages of
    /// memory freed. Refused, changing nothing, if a page past the new end is lent.
    pub fn truncate(&mut self, size: u64) -> Result<u64, Pinned> {
        if size >= self.size {
            self.size = size;
            return Ok(0);
        }
        let keep = size.div_ceil(PAGE);
        if self.loans.any_from(keep) {
            return Err(Pinned);
        }
        let held_before = self.held;
        for run in self.runs.split_off(&keep).into_values() {
            self.held -= run.len();
            self.live -= run.live();
        }
        // A run reaching past the new end keeps its slots there, vacant, until it is
        // settled (now, unless a page of it is lent).
        if let Some(start) = self.run_of(keep).map(|(start, _)| start) {
            if let Some(run) = self.runs.get_mut(&start) {
                for slot in keep - start..run.len() {
                    if run.vacant.insert(slot) {
                        if let Some(page) =
                            unshared(&mut run.slots, &mut self.replaced).get_mut(slot as usize)
                        {
                            page.0.fill(0);
                        }
                        self.live -= 1;
                    }
                }
            }
            self.settle(start);
        }
        let tail = (size % PAGE) as usize;
        if tail != 0 {
            if let Some(page) = self.page_mut(page_of(size)) {
                page.0[tail..].fill(0);
            }
        }
        self.size = size;
        Ok(held_before - self.held)
    }

    /// Frees the vacant slots of the run at `start` if none of its pages is lent, by
    /// moving each stretch of its live pages into a run of its own.
    fn settle(&mut self, start: u64) {
        let Some(run) = self.runs.get(&start) else {
            return;
        };
        if run.vacant.is_empty() || self.run_is_lent(start, run) {
            return;
        }
        let Some(run) = self.runs.remove(&start) else {
            return;
        };
        self.held -= run.len();
        let mut slot = 0;
        while slot < run.len() {
            if !run.is_live(slot) {
                slot += 1;
                continue;
            }
            let from = slot;
            while slot < run.len() && run.is_live(slot) {
                slot += 1;
            }
            let piece = run.slots[from as usize..slot as usize].to_vec();
            self.held += piece.len() as u64;
            self.runs.insert(
                start + from,
                Run {
                    slots: Arc::new(piece.into_boxed_slice().into()),
                    vacant: BTreeSet::new(),
                },
            );
        }
    }

    /// The pages a new run for `first..end` would cover: the window, every run it
    /// touches (whole: a run moves entirely or not at all), and next to those the runs
    /// that are present and not lent.
    fn merge_extent(&self, first: u64, end: u64) -> (u64, u64) {
        let mut lo = self.run_of(first).map_or(first, |(start, _)| start);
        let mut hi = self
            .run_of(end - 1)
            .map_or(end, |(start, run)| start + run.len());
        while let Some((start, run)) = lo.checked_sub(1).and_then(|i| self.run_of(i)) {
            if self.run_is_lent(start, run) {
                break;
            }
            lo = start;
        }
        while let Some((start, run)) = self.run_of(hi) {
            if self.run_is_lent(start, run) {
                break;
            }
            hi = start + run.len();
        }
        (lo, hi)
    }

    /// Replaces the runs in `lo..hi` (each lying wholly inside it) by one run; the
    /// pages between them get vacant slots.
    fn merge(&mut self, lo: u64, hi: u64) {
        let mut middle = self.runs.split_off(&lo);
        let mut after = middle.split_off(&hi);
        self.runs.append(&mut after);
        let mut slots = Vec::with_capacity((hi - lo) as usize);
        let mut vacant = BTreeSet::new();
        let mut at = lo;
        for (start, run) in middle {
            while at < start {
                slots.push(Page::ZERO);
                vacant.insert(at - lo);
                at += 1;
            }
            slots.extend_from_slice(&run.slots);
            vacant.extend(run.vacant.iter().map(|slot| start - lo + slot));
            at = start + run.len();
            self.held -= run.len();
        }
        while at < hi {
            slots.push(Page::ZERO);
            vacant.insert(at - lo);
            at += 1;
        }
        self.held += hi - lo;
        self.runs.insert(
            lo,
            Run {
                slots: Arc::new(slots.into_boxed_slice().into()),
                vacant,
            },
        );
    }

    /// Lends the pages `first..end` for a memory mapping and returns the address of the
    /// first: the others follow it, side by side, and all stay where they are until
    /// given back with [`FileData::give_back`]. Every page must hold some of the file.
    /// A hole in the window gets a zero page: `reserve` is asked for those pages first
    /// (none when there is no hole) and its refusal refuses the loan. Neither the length
    /// nor the data changes.
    pub fn lend<E>(
        &mut self,
        first: u64,
        end: u64,
        reserve: impl FnOnce(u64) -> Result<(), E>,
    ) -> Result<NonNull<Page>, LendError<E>> {
        if first >= end || end > self.size.div_ceil(PAGE) {
            return Err(LendError::OutOfRange);
        }
        let holding = self
            .run_of(first)
            .filter(|(start, run)| end <= start + run.len())
            .map(|(start, run)| (start, start + run.len(), self.run_is_lent(start, run)));
        let target = match holding {
            // Lent already: the run stays as it is, and the window lies in it.
            Some((start, run_end, true)) => (start, run_end),
            // Free to move: take its neighbours along, so later windows fit too.
            Some((start, run_end, false)) => self.merge_extent(start, run_end),
            None => {
                if self
                    .runs_over(first, end)
                    .any(|(start, run)| self.run_is_lent(start, run))
                {
                    return Err(LendError::Pinned);
                }
                self.merge_extent(first, end)
            }
        };
        let new_pages = (end - first) - self.covered(first, end);
        reserve(new_pages).map_err(LendError::Reserve)?;
        if holding.map(|(start, run_end, _)| (start, run_end)) != Some(target) {
            self.merge(target.0, target.1);
        }
        // The run at target.0 now holds the whole window.
        let (start, _) = target;
        let Some(run) = self.runs.get_mut(&start) else {
            return Err(LendError::Pinned);
        };
        for index in first..end {
            if run.vacant.remove(&(index - start)) {
                self.live += 1;
            }
        }
        // A lent page is written in place, so no reply may go on holding it: a run a
        // reply holds is replaced by a copy first (and is never handed out while lent).
        let slots = unshared(&mut run.slots, &mut self.replaced);
        let Some(page) = slots.get((first - start) as usize) else {
            return Err(LendError::Pinned);
        };
        let page = NonNull::from(page);
        self.loans.lend(first, end);
        Ok(page)
    }

    /// Ends one loan of each page in `first..end`. Runs whose last loan came back free
    /// their vacant slots.
    pub fn give_back(&mut self, first: u64, end: u64) -> GivenBack {
        let unmatched = self.loans.give_back(first, end);
        let held_before = self.held;
        let unsettled: Vec<u64> = self
            .runs_over(first, end)
            .filter(|(_, run)| !run.vacant.is_empty())
            .map(|(start, _)| start)
            .collect();
        for start in unsettled {
            self.settle(start);
        }
        GivenBack {
            unmatched,
            freed: held_before - self.held,
        }
    }
}

#[cfg(test)]
#[path = "data_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "data_sharing_tests.rs"]
mod sharing_tests;
