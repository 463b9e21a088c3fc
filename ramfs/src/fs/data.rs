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

use std::collections::{BTreeMap, BTreeSet};
use std::ptr::NonNull;

use super::loans::Loans;

/// Bytes in a page.
pub const PAGE_SIZE: usize = 4096;

/// [`PAGE_SIZE`] as a file offset.
const PAGE: u64 = PAGE_SIZE as u64;

/// One page of file data, aligned to its size so it can be mapped.
#[derive(Clone)]
#[repr(C, align(4096))]
pub struct Page(pub [u8; PAGE_SIZE]);

impl Page {
    const ZERO: Page = Page([0; PAGE_SIZE]);
}

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
    slots: Box<[Page]>,
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
            Some(&mut run.slots[slot as usize])
        } else {
            None
        }
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

    /// Copies up to `count` bytes from `offset`, clipped to the file's length.
    pub fn read(&self, offset: u64, count: usize) -> Vec<u8> {
        if offset >= self.size || count == 0 {
            return Vec::new();
        }
        let len = (self.size - offset).min(count as u64) as usize;
        let mut out = vec![0u8; len];
        let end = offset + len as u64;
        for (start, run) in self.runs_over(page_of(offset), page_of(end - 1) + 1) {
            let run_start = start * PAGE;
            let from = offset.max(run_start);
            let to = end.min(run_start + run.len() * PAGE);
            let mut pos = from;
            while pos < to {
                let slot = page_of(pos - run_start);
                let in_page = (pos % PAGE) as usize;
                let n = (PAGE_SIZE - in_page).min((to - pos) as usize);
                // A vacant slot is zero-filled, like the hole it stands for; skipping it
                // just saves the copy.
                if run.is_live(slot) {
                    let src = &run.slots[slot as usize].0[in_page..in_page + n];
                    out[(pos - offset) as usize..(pos - offset) as usize + n].copy_from_slice(src);
                }
                pos += n as u64;
            }
        }
        out
    }

    /// The page at `index` for writing: its slot, filling a vacant one, or a new run
    /// of one page.
    fn page_for_write(&mut self, index: u64) -> &mut Page {
        let start = match self.run_of(index) {
            Some((start, _)) => start,
            None => {
                self.held += 1;
                index
            }
        };
        let run = self.runs.entry(start).or_insert_with(|| Run {
            slots: vec![Page::ZERO].into_boxed_slice(),
            // Vacant until written just below, so one count serves both cases.
            vacant: BTreeSet::from([0]),
        });
        let slot = index - start;
        if run.vacant.remove(&slot) {
            self.live += 1;
        }
        &mut run.slots[slot as usize]
    }

    /// Writes `data` at `offset`, allocating pages as needed and growing the length.
    /// The caller has checked the memory limit with [`FileData::pages_needed`] and that
    /// `offset + data.len()` does not overflow. Lent pages are written in place: a
    /// mapping sees the write. Writing nothing changes nothing, past the end included
    /// (as write(2) of 0 bytes).
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let mut done = 0usize;
        while done < data.len() {
            let pos = offset + done as u64;
            let in_page = (pos % PAGE) as usize;
            let n = (PAGE_SIZE - in_page).min(data.len() - done);
            let page = self.page_for_write(page_of(pos));
            page.0[in_page..in_page + n].copy_from_slice(&data[done..done + n]);
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
                        run.slots[slot as usize].0.fill(0);
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
                    slots: piece.into_boxed_slice(),
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
                slots: slots.into_boxed_slice(),
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
        self.loans.lend(first, end);
        Ok(NonNull::from(&run.slots[(first - start) as usize]))
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
mod tests {
    use super::*;

    /// Lends with no memory limit.
    fn lend(f: &mut FileData, first: u64, end: u64) -> Result<NonNull<Page>, LendError<()>> {
        f.lend(first, end, |_| Ok(()))
    }

    fn addr(p: NonNull<Page>) -> usize {
        p.as_ptr() as usize
    }

    /// The page at `index` as the file keeps it, by address.
    fn page_addr(f: &FileData, index: u64) -> usize {
        f.page(index).expect("a page") as *const Page as usize
    }

    /// Sum of held pages recomputed from the runs, to check the cached count.
    fn recount(f: &FileData) -> (u64, u64) {
        let live = f.runs.values().map(Run::live).sum();
        let held = f.runs.values().map(Run::len).sum();
        (live, held)
    }

    fn check_counts(f: &FileData) {
        assert_eq!(recount(f), (f.allocated_pages(), f.held_pages()));
    }

    /// A file of `pages` pages, page `i` filled with byte `i + 1`.
    fn dense(pages: u64) -> FileData {
        let mut f = FileData::default();
        for i in 0..pages {
            f.write(i * PAGE, &[i as u8 + 1; PAGE_SIZE]);
        }
        f
    }

    #[test]
    fn pages_are_page_aligned() {
        let mut f = FileData::default();
        f.write(5000, b"x");
        let p = f.page(1).expect("written page");
        assert_eq!(p as *const Page as usize % PAGE_SIZE, 0);
        assert!(f.page(0).is_none(), "the hole before it is not allocated");
    }

    #[test]
    fn holes_read_as_zeros_and_cost_nothing() {
        let mut f = FileData::default();
        f.write(3 * PAGE + 10, b"abc");
        assert_eq!(f.allocated_pages(), 1);
        assert_eq!(f.held_pages(), 1);
        assert_eq!(f.size(), 3 * PAGE + 13);
        let all = f.read(0, usize::MAX);
        assert_eq!(all.len() as u64, f.size());
        assert!(all[..3 * PAGE_SIZE + 10].iter().all(|&b| b == 0));
        assert_eq!(&all[3 * PAGE_SIZE + 10..], b"abc");
    }

    #[test]
    fn write_across_pages_and_read_back() {
        let mut f = FileData::default();
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(f.pages_needed(4000, data.len()), 4);
        f.write(4000, &data);
        assert_eq!(f.read(4000, 10_000), data);
        assert_eq!(f.read(4000 + 9_990, 100), data[9_990..]);
        assert_eq!(f.pages_needed(4000, data.len()), 0);
        check_counts(&f);
    }

    #[test]
    fn shrink_then_grow_reads_zeros() {
        let mut f = FileData::default();
        f.write(0, &[7u8; 9000]);
        assert_eq!(f.truncate(5), Ok(2));
        assert_eq!(f.read(0, 100), vec![7, 7, 7, 7, 7]);
        assert_eq!(f.truncate(9000), Ok(0));
        let back = f.read(0, 9000);
        assert_eq!(&back[..5], &[7; 5]);
        assert!(back[5..].iter().all(|&b| b == 0));
        assert_eq!(f.allocated_pages(), 1);
        check_counts(&f);
    }

    #[test]
    fn read_past_end_is_empty() {
        let mut f = FileData::default();
        f.write(0, b"hello");
        assert!(f.read(5, 10).is_empty());
        assert!(f.read(u64::MAX, 10).is_empty());
        assert_eq!(f.read(3, 10), b"lo");
    }

    #[test]
    fn zero_count_read_at_a_page_boundary() {
        let mut f = FileData::default();
        f.write(0, &[1; PAGE_SIZE + 10]);
        assert!(f.read(PAGE, 0).is_empty());
    }

    // ---- lending ------------------------------------------------------------------

    #[test]
    fn a_window_is_one_run_of_side_by_side_pages() {
        let mut f = dense(5);
        let base = lend(&mut f, 1, 4).expect("lent");
        assert_eq!(addr(base) % PAGE_SIZE, 0);
        for i in 1..4 {
            assert_eq!(page_addr(&f, i), addr(base) + (i as usize - 1) * PAGE_SIZE);
            assert_eq!(
                f.page(i).map(|p| p.0[0]),
                Some(i as u8 + 1),
                "data moved along"
            );
        }
        assert_eq!(f.lent_pages(), 3);
        assert_eq!(
            (f.allocated_pages(), f.held_pages()),
            (5, 5),
            "moving costs nothing"
        );
        check_counts(&f);
    }

    #[test]
    fn the_first_window_takes_the_whole_dense_file_along() {
        // An executable: text first, then data starting in text's last page.
        let mut f = dense(8);
        let text = lend(&mut f, 0, 5).expect("text");
        let data = lend(&mut f, 4, 8).expect("data, sharing page 4 with the text");
        assert_eq!(addr(data), addr(text) + 4 * PAGE_SIZE, "one run holds both");
        assert_eq!(f.loans_of(4), 2);
        assert_eq!(f.lent_pages(), 9);
        check_counts(&f);
    }

    #[test]
    fn lent_pages_stay_put_across_writes_growth_and_other_runs() {
        let mut f = dense(3);
        let base = addr(lend(&mut f, 0, 3).expect("lent"));
        let page1 = page_addr(&f, 1);
        // Writes into the lent pages land there (the mapping sees them)...
        f.write(PAGE + 7, b"seen");
        assert_eq!(page_addr(&f, 1), page1);
        assert_eq!(f.page(1).map(|p| &p.0[7..11]), Some(&b"seen"[..]));
        // ...growth elsewhere makes new runs and does not move them...
        f.write(10 * PAGE, &[9; 3 * PAGE_SIZE]);
        f.write(4 * PAGE, b"between");
        // ...nor does lending other windows, which builds runs of their own...
        let other = lend(&mut f, 10, 13).expect("a second run");
        assert_eq!(page_addr(&f, 11), addr(other) + PAGE_SIZE);
        // ...nor shrinking that keeps them.
        assert_eq!(f.truncate(3 * PAGE), Err(Pinned), "pages 10..13 are lent");
        assert_eq!(f.give_back(10, 13).unmatched, 0);
        // Pages 4 and 10..13 go; the lent run stays whole and in place.
        assert_eq!(f.truncate(3 * PAGE - 1), Ok(4));
        for i in 0..3 {
            assert_eq!(page_addr(&f, i), base + i as usize * PAGE_SIZE);
        }
        check_counts(&f);
    }

    #[test]
    fn a_window_over_a_lent_page_out_of_place_is_refused() {
        let mut f = FileData::default();
        f.write(0, &[1; PAGE_SIZE]);
        f.write(2 * PAGE, &[3; PAGE_SIZE]);
        // Page 1 is a hole: pages 0 and 2 are runs of their own, so lending page 0
        // alone lends it in place.
        let p0 = lend(&mut f, 0, 1).expect("page 0");
        assert_eq!(page_addr(&f, 0), addr(p0));
        assert_eq!(lend(&mut f, 0, 3), Err(LendError::Pinned));
        assert_eq!(f.lent_pages(), 1, "a refusal lends nothing");
        assert_eq!(
            (f.allocated_pages(), f.held_pages()),
            (2, 2),
            "and allocates nothing"
        );
        // Once page 0 is back the window can be built, filling the hole.
        assert_eq!(
            f.give_back(0, 1),
            GivenBack {
                unmatched: 0,
                freed: 0
            }
        );
        let base = lend(&mut f, 0, 3).expect("now movable");
        assert_eq!(page_addr(&f, 2), addr(base) + 2 * PAGE_SIZE);
        assert_eq!(f.read(PAGE, 2), [0, 0], "the hole reads as zeros still");
        assert_eq!((f.allocated_pages(), f.held_pages()), (3, 3));
        check_counts(&f);
    }

    #[test]
    fn windows_must_hold_some_of_the_file() {
        let mut f = FileData::default();
        f.write(0, &[1; 10]);
        assert_eq!(lend(&mut f, 0, 0), Err(LendError::OutOfRange));
        assert_eq!(lend(&mut f, 1, 2), Err(LendError::OutOfRange));
        assert_eq!(lend(&mut f, 0, 2), Err(LendError::OutOfRange));
        assert!(lend(&mut f, 0, 1).is_ok());
    }

    #[test]
    fn holes_are_reserved_then_filled_without_changing_the_data() {
        let mut f = FileData::default();
        assert_eq!(f.truncate(4 * PAGE), Ok(0));
        f.write(PAGE, &[2; PAGE_SIZE]);
        let mut asked = None;
        let refused = f.lend(0, 4, |pages| {
            asked = Some(pages);
            Err("full")
        });
        assert_eq!(refused, Err(LendError::Reserve("full")));
        assert_eq!(asked, Some(3), "three holes in the window");
        assert_eq!(
            (f.allocated_pages(), f.held_pages(), f.lent_pages()),
            (1, 1, 0)
        );
        let base = lend(&mut f, 0, 4).expect("lent");
        assert_eq!((f.allocated_pages(), f.held_pages()), (4, 4));
        assert_eq!(f.size(), 4 * PAGE);
        let mut want = vec![0u8; 4 * PAGE_SIZE];
        want[PAGE_SIZE..2 * PAGE_SIZE].fill(2);
        assert_eq!(f.read(0, usize::MAX), want);
        assert_eq!(page_addr(&f, 3), addr(base) + 3 * PAGE_SIZE);
        check_counts(&f);
    }

    #[test]
    fn truncation_keeps_a_lent_run_and_frees_it_when_the_loans_end() {
        let mut f = dense(6);
        let base = addr(lend(&mut f, 0, 2).expect("lent"));
        assert_eq!(f.truncate(PAGE), Err(Pinned), "page 1 is lent");
        assert_eq!(f.size(), 6 * PAGE, "a refusal changes nothing");
        // Dropping pages 2..6 leaves their slots in the lent run, vacant and held.
        assert_eq!(f.truncate(2 * PAGE), Ok(0));
        assert_eq!((f.allocated_pages(), f.held_pages()), (2, 6));
        assert!(f.page(3).is_none());
        // Growing again reads zeros there; a write fills the slot, in place.
        assert_eq!(f.truncate(6 * PAGE), Ok(0));
        assert_eq!(f.read(3 * PAGE, 4), [0; 4]);
        assert_eq!(f.pages_needed(3 * PAGE, 1), 0, "the slot is there");
        f.write(3 * PAGE + 1, b"z");
        assert_eq!(f.read(3 * PAGE, 3), [0, b'z', 0]);
        assert_eq!(page_addr(&f, 3), base + 3 * PAGE_SIZE);
        assert_eq!((f.allocated_pages(), f.held_pages()), (3, 6));
        // The last loan back: the vacant slots go, the live pages stay readable.
        assert_eq!(f.give_back(0, 1).freed, 0, "page 1 is still lent");
        assert_eq!(
            f.give_back(1, 2),
            GivenBack {
                unmatched: 0,
                freed: 3
            }
        );
        assert_eq!((f.allocated_pages(), f.held_pages()), (3, 3));
        assert_eq!(f.read(0, 1), [1]);
        assert_eq!(f.read(PAGE, 1), [2]);
        assert_eq!(f.read(3 * PAGE, 3), [0, b'z', 0]);
        check_counts(&f);
    }

    #[test]
    fn an_unlent_run_cut_by_truncation_frees_the_cut_at_once() {
        let mut f = dense(4);
        lend(&mut f, 0, 4).expect("lent");
        assert_eq!(f.give_back(0, 4).unmatched, 0);
        assert_eq!(f.truncate(PAGE + 1), Ok(2));
        assert_eq!((f.allocated_pages(), f.held_pages()), (2, 2));
        assert_eq!(f.read(0, usize::MAX).len(), PAGE_SIZE + 1);
        check_counts(&f);
    }

    #[test]
    fn giving_back_pages_never_lent_is_counted_apart() {
        let mut f = dense(2);
        lend(&mut f, 0, 1).expect("lent");
        assert_eq!(f.give_back(0, 2).unmatched, 1);
        assert_eq!(f.lent_pages(), 0);
        assert_eq!(f.give_back(5, 1_000_000_000_000).unmatched, 999_999_999_995);
    }

    // ---- against a model -------------------------------------------------------------

    mod model {
        use super::*;
        use proptest::prelude::*;

        /// Pages the model file spans at most.
        const SPAN: u64 = 12;

        #[derive(Debug, Clone)]
        enum Op {
            Write { offset: u64, len: usize, byte: u8 },
            Truncate { size: u64 },
            Lend { first: u64, count: u64 },
            GiveBack { which: usize },
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                3 => (0..SPAN * PAGE, 0..3 * PAGE_SIZE, 1..=255u8)
                    .prop_map(|(offset, len, byte)| Op::Write { offset, len, byte }),
                1 => (0..=SPAN * PAGE).prop_map(|size| Op::Truncate { size }),
                3 => (0..SPAN, 1..5u64).prop_map(|(first, count)| Op::Lend { first, count }),
                2 => any::<usize>().prop_map(|which| Op::GiveBack { which }),
            ]
        }

        /// One outstanding loan: its window and the address it was given.
        struct Loan {
            first: u64,
            end: u64,
            base: usize,
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Any mix of writes, truncations, loans and returns: the data is what a
            /// plain byte vector says, every outstanding window stays contiguous and in
            /// place, refusals change nothing, and the memory charged step by step is
            /// exactly what the file holds.
            #[test]
            fn file_data_matches_a_byte_vector(ops in proptest::collection::vec(op(), 1..60)) {
                let mut f = FileData::default();
                let mut model: Vec<u8> = Vec::new();
                let mut loans: Vec<Loan> = Vec::new();
                let mut charged: u64 = 0;
                for op in ops {
                    match op {
                        Op::Write { offset, len, byte } => {
                            let data = vec![byte; len];
                            charged += f.pages_needed(offset, len);
                            f.write(offset, &data);
                            if len > 0 {
                                let end = offset as usize + len;
                                if model.len() < end {
                                    model.resize(end, 0);
                                }
                                model[offset as usize..end].fill(byte);
                            }
                        }
                        Op::Truncate { size } => {
                            let keep = size.div_ceil(PAGE);
                            let shrinks = size < f.size();
                            let pinned = shrinks && loans.iter().any(|l| l.end > keep);
                            match f.truncate(size) {
                                Ok(freed) => {
                                    prop_assert!(!pinned);
                                    charged -= freed;
                                    model.resize(size as usize, 0);
                                }
                                Err(Pinned) => prop_assert!(pinned),
                            }
                        }
                        Op::Lend { first, count } => {
                            let end = first + count;
                            let before = (f.allocated_pages(), f.held_pages(), f.lent_pages());
                            let mut asked = 0;
                            match f.lend(first, end, |pages| {
                                asked = pages;
                                Ok::<(), ()>(())
                            }) {
                                Ok(base) => {
                                    charged += asked;
                                    loans.push(Loan { first, end, base: addr(base) });
                                }
                                Err(LendError::OutOfRange) => {
                                    prop_assert!(end > f.size().div_ceil(PAGE));
                                    prop_assert_eq!(before, (f.allocated_pages(), f.held_pages(), f.lent_pages()));
                                }
                                Err(LendError::Pinned) => {
                                    prop_assert!(!loans.is_empty());
                                    prop_assert_eq!(before, (f.allocated_pages(), f.held_pages(), f.lent_pages()));
                                }
                                Err(LendError::Reserve(())) => prop_assert!(false, "reserve never refuses"),
                            }
                        }
                        Op::GiveBack { which } => {
                            if !loans.is_empty() {
                                let loan = loans.remove(which % loans.len());
                                let back = f.give_back(loan.first, loan.end);
                                prop_assert_eq!(back.unmatched, 0);
                                charged -= back.freed;
                            }
                        }
                    }
                    prop_assert_eq!(f.read(0, usize::MAX), model.clone());
                    prop_assert_eq!(f.size(), model.len() as u64);
                    prop_assert_eq!(recount(&f), (f.allocated_pages(), f.held_pages()));
                    prop_assert_eq!(charged, f.held_pages());
                    let lent: u64 = loans.iter().map(|l| l.end - l.first).sum();
                    prop_assert_eq!(f.lent_pages(), lent);
                    for l in &loans {
                        for i in l.first..l.end {
                            prop_assert_eq!(page_addr(&f, i), l.base + (i - l.first) as usize * PAGE_SIZE);
                        }
                    }
                    // Vacant slots only where a run holds a lent page.
                    for (&start, run) in &f.runs {
                        prop_assert!(run.vacant.is_empty() || f.run_is_lent(start, run));
                    }
                }
            }
        }
    }
}
