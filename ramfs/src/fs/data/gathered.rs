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
        let mut pos = offset + data.head.len() as u64;
        let aligned = pos.is_multiple_of(PAGE);
        for page in data.pages {
            let left = if aligned {
                self.adopt(page_of(pos), page)
            } else {
                self.write(pos, page.bytes());
                Some(page)
            };
            spare.extend(left);
            pos += PAGE;
        }
        self.write(pos, data.tail);
        if end > offset {
            self.size = self.size.max(end);
        }
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
