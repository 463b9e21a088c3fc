//! A write whose data came in pieces: the bytes before the first whole page, whole pages
//! received into buffers of their own ([`PageBuf`]), and the bytes after. The pages
//! become the file's pages in place of the old ones, so the data is never copied after
//! the transport put it there.
//!
//! A received page is copied instead (and its buffer given back) where it cannot simply
//! take a page's place: it is not aligned to a file page (an append), the page it would
//! replace is lent (a mapping must see the write where the page is), or that page lies
//! in a run of several (merged for a mapping). A page it replaces is given back too,
//! unless a reply still holds it: then the reply has it alone, as after a copy on write.

use std::collections::BTreeSet;

use super::{page_of, FileData, Run, PAGE};
use crate::fs::pages::{PageBuf, PAGE_SIZE};

/// A write's data as it was received: `head`, then `pages`, then `tail`.
#[derive(Default)]
pub struct Gathered<'a> {
    pub head: &'a [u8],
    pub pages: Vec<PageBuf>,
    pub tail: &'a [u8],
}

impl Gathered<'_> {
    /// Bytes of data.
    pub fn len(&self) -> usize {
        self.head.len() + self.pages.len() * PAGE_SIZE + self.tail.len()
    }

    /// True if there is no data.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The data in one buffer (for the paths that take bytes).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        out.extend_from_slice(self.head);
        for page in &self.pages {
            out.extend_from_slice(page.bytes());
        }
        out.extend_from_slice(self.tail);
        out
    }
}

impl FileData {
    /// [`FileData::write`] of `data` at `offset`, taking `data`'s pages as the file's
    /// where it can (see the module's notes); the buffers left over (received pages
    /// that were copied, pages they replaced that no reply held) go to `spare`. The
    /// caller has checked the memory limit with [`FileData::pages_needed`] for
    /// `data.len()` bytes: a page that fills a hole is the one page that check counted
    /// for it.
    pub fn write_gathered(&mut self, offset: u64, data: Gathered<'_>, spare: &mut Vec<PageBuf>) {
        let end = offset + data.len() as u64;
        self.write(offset, data.head);
        let pos = offset + data.head.len() as u64;
        let tail_at = pos + (data.pages.len() * PAGE_SIZE) as u64;
        if pos.is_multiple_of(PAGE) {
            let first = page_of(pos);
            let rest = if self.loans.any_in(first, first + data.pages.len() as u64) {
                (first..).zip(data.pages).collect()
            } else {
                self.swap_one_page_runs(first, data.pages, spare)
            };
            for (index, page) in rest {
                spare.extend(self.adopt(index, page));
            }
        } else {
            for (at, page) in (pos..).step_by(PAGE_SIZE).zip(data.pages) {
                self.write(at, page.bytes());
                spare.push(page);
            }
        }
        self.write(tail_at, data.tail);
        if end > offset {
            self.size = self.size.max(end);
        }
    }

    /// Puts each of `pages` (for file pages `first`, `first + 1`, …, none of them lent)
    /// in place of the live run of one page at its index, in one walk of the runs (a
    /// file written by large Twrites is all such runs); the pages it replaces go to
    /// `spare` unless a reply holds them. Returns the pages that found no such run (a
    /// hole, a page of a longer run), with their indices, for [`FileData::adopt`].
    fn swap_one_page_runs(
        &mut self,
        first: u64,
        pages: Vec<PageBuf>,
        spare: &mut Vec<PageBuf>,
    ) -> Vec<(u64, PageBuf)> {
        let end = first + pages.len() as u64;
        let (mut taken, mut replaced) = (0, 0);
        let mut left = Vec::new();
        let mut runs = self.runs.range_mut(first..end).peekable();
        for (index, page) in (first..).zip(pages) {
            while runs.next_if(|(&start, _)| start < index).is_some() {}
            match runs.peek_mut() {
                Some((&start, run)) if start == index && run.len() == 1 && run.is_live(0) => {
                    let old = std::mem::replace(&mut run.slots, page.0);
                    taken += 1;
                    match PageBuf::reclaim(old) {
                        Some(old) => spare.push(old),
                        // A reply holds the old page: it keeps it, the file has the new.
                        None => replaced += 1,
                    }
                }
                _ => left.push((index, page)),
            }
        }
        self.taken += taken;
        self.replaced += replaced;
        left
    }

    /// Makes `page` the file's page `index`, or copies it there; returns the buffer
    /// left over, if any.
    fn adopt(&mut self, index: u64, page: PageBuf) -> Option<PageBuf> {
        let replaceable = self
            .run_of(index)
            .map(|(start, run)| start == index && run.len() == 1 && run.is_live(0));
        match replaceable {
            _ if self.loans_of(index) > 0 => self.copy_in(index, page),
            None => {
                self.runs.insert(
                    index,
                    Run {
                        slots: page.0,
                        vacant: BTreeSet::new(),
                    },
                );
                self.held += 1;
                self.live += 1;
                self.taken += 1;
                self.size = self.size.max((index + 1) * PAGE);
                None
            }
            Some(true) => {
                let run = self.runs.get_mut(&index)?;
                let old = std::mem::replace(&mut run.slots, page.0);
                self.taken += 1;
                self.size = self.size.max((index + 1) * PAGE);
                let old = PageBuf::reclaim(old);
                if old.is_none() {
                    // A reply holds the old page: it keeps it, the file has the new one.
                    self.replaced += 1;
                }
                old
            }
            Some(false) => self.copy_in(index, page),
        }
    }

    fn copy_in(&mut self, index: u64, page: PageBuf) -> Option<PageBuf> {
        self.write(index * PAGE, page.bytes());
        Some(page)
    }
}

#[cfg(test)]
#[path = "gathered_tests.rs"]
mod tests;
